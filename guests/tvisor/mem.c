/* tvisor host memory: the RAM the multiboot memory map reports, minus tvisor's image, the
 * boot structures and the modules (mb_free_start), below 4 GiB (the boot page tables map
 * 0-4 GiB). Two allocators over one set of free ranges: small zeroed pages for VMX structures
 * and page tables from the bottom, and large aligned blocks for guest RAM from the top.
 * Nothing is freed: guests live until tvisor exits. */
#include "tvisor.h"

#define MAX_RANGES 16
#define LIMIT_4G 0x100000000ull

struct range {
	uint64_t start, end;
};
static struct range ranges[MAX_RANGES];
static int nranges;

struct PACKED mmap_entry {
	uint32_t size;
	uint64_t base, len;
	uint32_t type;
};

static void add_range(uint64_t s, uint64_t e)
{
	s = (s + 0xFFF) & ~0xFFFull;
	e &= ~0xFFFull;
	if (e <= s || nranges == MAX_RANGES)
		return;
	ranges[nranges++] = (struct range){ s, e };
}

void mem_init(void)
{
	const struct multiboot_info *mbi = mb_info();
	uint64_t lo = mb_free_start();
	if (mbi && (mbi->flags & MBI_FLAG_MMAP)) {
		uint64_t p = mbi->mmap_addr, end = p + mbi->mmap_length;
		while (p + sizeof(struct mmap_entry) <= end) {
			const struct mmap_entry *m = (const struct mmap_entry *)p;
			if (m->type == 1) {
				uint64_t s = m->base, e = m->base + m->len;
				if (s < lo)
					s = lo;
				if (e > LIMIT_4G)
					e = LIMIT_4G;
				if (s < e)
					add_range(s, e);
			}
			p += m->size + 4;
		}
	} else {
		/* no map: mem_upper is the RAM above 1 MiB up to the first hole */
		add_range(lo, 0x100000 + (uint64_t)mb_mem_upper_kb() * 1024);
	}
}

void *page_alloc_zero(void)
{
	for (int i = 0; i < nranges; i++) {
		if (ranges[i].end - ranges[i].start >= PAGE_4K) {
			uint64_t p = ranges[i].start;
			ranges[i].start += PAGE_4K;
			memset((void *)p, 0, PAGE_4K);
			return (void *)p;
		}
	}
	printf("tvisor: FATAL: out of memory for VMX structures and page tables\n");
	exit(2);
}

uint64_t ram_alloc(uint64_t size, uint64_t align)
{
	for (int i = nranges - 1; i >= 0; i--) {
		struct range *r = &ranges[i];
		if (r->end < size)
			continue;
		uint64_t s = (r->end - size) & ~(align - 1);
		if (s < r->start)
			continue;
		/* the piece above the block (alignment slack) stays free as its own range */
		if (s + size < r->end && nranges < MAX_RANGES)
			ranges[nranges++] = (struct range){ s + size, r->end };
		r->end = s;
		memset((void *)s, 0, size);
		return s;
	}
	return 0;
}

uint64_t mem_free_bytes(void)
{
	uint64_t best = 0;
	for (int i = 0; i < nranges; i++)
		if (ranges[i].end - ranges[i].start > best)
			best = ranges[i].end - ranges[i].start;
	return best;
}
