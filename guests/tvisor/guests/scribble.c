/* tvisor test guest: overwrite all of its RAM, check it reads back, then write beyond the end
 * of its RAM. Under tvisor the last step is an access to guest-physical memory the guest does
 * not own: tvisor must stop this guest and nothing else. On a bare machine the write beyond RAM
 * goes nowhere and the kernel exits with 0.
 *   beyond=0  skip the last step (exit 0 after the scribble) */
#include "rt.h"

extern char __image_start[], _end[];

static uint64_t pattern(uint64_t a) { return a * 0x9E3779B97F4A7C15ull ^ 0x5C5C5C5C5C5C5C5Cull; }

static uint64_t scribble(uint64_t start, uint64_t end)
{
	start = (start + 7) & ~7ull;
	end &= ~7ull;
	for (uint64_t a = start; a < end; a += 8)
		*(volatile uint64_t *)a = pattern(a);
	uint64_t bad = 0;
	for (uint64_t a = start; a < end; a += 8)
		if (*(volatile uint64_t *)a != pattern(a))
			bad++;
	return bad;
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	/* read everything from the multiboot info first: it is in low memory, scribbled below */
	uint64_t top = 0x100000 + (uint64_t)mb_mem_upper_kb() * 1024;
	uint64_t free = mb_free_start(), low = (uint64_t)mb_mem_lower_kb() * 1024;
	bool beyond = cmdline_u64("beyond", 1);
	/* everything but the kernel image (code, data, stacks): above it and below 1 MiB */
	uint64_t bad = scribble(free, top);
	bad += scribble(0x1000, low);
	printf("scribble: wrote and checked %lu KiB of RAM, %lu mismatches\n", (top - free + low - 0x1000) / 1024, bad);
	if (bad)
		exit(1);
	if (beyond) {
		static const uint64_t targets[] = { 0, 0x10000000, 0xFEE00000, 0xFFFFF000 };
		for (unsigned i = 0; i < ARRAY_SIZE(targets); i++) {
			uint64_t a = targets[i] ? targets[i] : top;
			if (a < top)
				continue;
			printf("scribble: writing beyond RAM at 0x%lx\n", a);
			for (uint64_t k = 0; k < 4096; k += 8)
				*(volatile uint64_t *)(a + k) = pattern(a + k);
		}
		printf("scribble: the writes beyond RAM went nowhere\n");
	}
	exit(0);
}
