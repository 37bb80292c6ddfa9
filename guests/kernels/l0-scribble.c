/* l0-scribble: a VM that tries everything a kernel can do to reach outside itself -- the
 * isolation test of L0 (test/l0/scenario.test.ts runs it next to a self-test kernel).
 *
 *  1. RAM: every byte of every RAM range of the multiboot memory map (below 4 GiB) is
 *     overwritten with a pattern and read back, except the kernel image [__image_start, _end),
 *     which holds its code, data, stacks, page tables and page pool. The multiboot structures
 *     are read first: they are scribbled over like the rest.
 *  2. Ports: every port 0-0xFFFF is read and written as a byte, and every 4-aligned port as a
 *     dword, except
 *       0xF4-0xF7      isa-debug-exit (a write ends the run: the kernel uses it at the end),
 *       0x3F8-0x3FF    COM1 (the kernel reports through it),
 *       0x64, 0x92, 0xCF9  the reset controls (a reset would restart this kernel, which would then
 *                      scribble forever).
 *     0x8900 is included: two writes cannot spell "Shutdown". A power-off through another device
 *     (e.g. ACPI PM1 control) would be a legitimate way for the kernel to end; the values below
 *     do not request one from turtles' PM1 control at 0x604.
 *  3. MMIO: one dword read and written in every 4 KiB page of 0xC0000000-0xFFFFFFFF (the boot
 *     identity map covers it), then in the first and last page of 2 MiB windows mapped above
 *     4 GiB: at 4 GiB, 5 GiB, 64 GiB and just below 2^MAXPHYADDR. The LAPIC and IOAPIC pages
 *     are among them.
 * Each step reports on COM1; the kernel then exits with 0x5C (status 185). Under L0 a step may
 * also end the VM earlier (L0 stops a VM whose access it cannot emulate): that is the VM ending
 * itself, which is fine; what must never happen is another VM or L0 noticing.
 *   ram=0 ports=0 mmio=0   skip a step */
#include "rt.h"

#define SCRIBBLE_DONE 0x5C

extern char __image_start[], _end[];

struct PACKED mmap_entry {
	uint32_t size;
	uint64_t base, len;
	uint32_t type;
};

#define MAX_RANGES 32
static struct {
	uint64_t start, end;
} ram[MAX_RANGES];
static unsigned nram;

static uint64_t pattern(uint64_t a) { return a * 0x9E3779B97F4A7C15ull ^ 0x5C5C5C5C5C5C5C5Cull; }

/* Add [start, end) minus the kernel image to the ranges to scribble. */
static void add_range(uint64_t start, uint64_t end)
{
	uint64_t is = (uint64_t)__image_start, ie = (uint64_t)_end;
	if (end > 0x100000000ull)
		end = 0x100000000ull; /* the identity map ends at 4 GiB; turtles' VMs here are small */
	if (start >= end)
		return;
	if (start < ie && end > is) {
		add_range(start, is);
		add_range(ie, end);
		return;
	}
	if (nram < MAX_RANGES) {
		ram[nram].start = start;
		ram[nram].end = end;
		nram++;
	}
}

static void collect_ram(void)
{
	const struct multiboot_info *mbi = mb_info();
	if (mbi && (mbi->flags & MBI_FLAG_MMAP)) {
		uint64_t p = mbi->mmap_addr, end = p + mbi->mmap_length;
		while (p < end) {
			const struct mmap_entry *e = (const struct mmap_entry *)p;
			if (e->type == 1)
				add_range(e->base, e->base + e->len);
			p += e->size + 4;
		}
	} else {
		add_range(0, (uint64_t)mb_mem_lower_kb() * 1024);
		add_range(0x100000, 0x100000 + (uint64_t)mb_mem_upper_kb() * 1024);
	}
}

static uint64_t scribble(uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a < end && (a & 7); a++)
		*(volatile uint8_t *)a = (uint8_t)pattern(a);
	uint64_t s8 = (start + 7) & ~7ull, e8 = end & ~7ull;
	for (uint64_t a = s8; a < e8; a += 8)
		*(volatile uint64_t *)a = pattern(a);
	for (uint64_t a = e8 > s8 ? e8 : end; a < end; a++)
		*(volatile uint8_t *)a = (uint8_t)pattern(a);
	uint64_t bad = 0;
	for (uint64_t a = start; a < end && (a & 7); a++)
		bad += *(volatile uint8_t *)a != (uint8_t)pattern(a);
	for (uint64_t a = s8; a < e8; a += 8)
		bad += *(volatile uint64_t *)a != pattern(a);
	for (uint64_t a = e8 > s8 ? e8 : end; a < end; a++)
		bad += *(volatile uint8_t *)a != (uint8_t)pattern(a);
	return bad;
}

/* Values written to ports (byte and dword). Chosen so that the writes to turtles' ACPI PM1
 * control (0x604/0x605) do not request S5 (SLP_EN with SLP_TYP 5): 0x605 gets 0xB9 (type 6) and
 * the dword at 0x604 0x601DA961 (type 2). */
static uint8_t port_byte(uint32_t p) { return (uint8_t)(p * 0x9D ^ 0xA8); }
static uint32_t port_dword(uint32_t p) { return p * 0x9E3779B1u ^ 0xA5A5A5A5u; }

static bool port_excluded(uint32_t p)
{
	return (p >= 0xF4 && p <= 0xF7) || (p >= 0x3F8 && p <= 0x3FF) || p == 0x64 || p == 0x92 || p == 0xCF9;
}

static void poke_ports(void)
{
	unsigned n = 0, skipped = 0;
	for (uint32_t p = 0; p <= 0xFFFF; p++) {
		if (port_excluded(p)) {
			skipped++;
			continue;
		}
		(void)inb((uint16_t)p);
		outb((uint16_t)p, port_byte(p));
		n++;
	}
	unsigned nd = 0;
	for (uint32_t p = 0; p <= 0xFFFC; p += 4) {
		if (port_excluded(p) || port_excluded(p + 1) || port_excluded(p + 2) || port_excluded(p + 3))
			continue;
		(void)inl((uint16_t)p);
		outl((uint16_t)p, port_dword(p));
		nd++;
	}
	printf("l0-scribble: ports: read and wrote %u ports as bytes and %u as dwords (%u excluded)\n", n, nd, skipped);
}

static void touch(uint64_t a)
{
	volatile uint32_t *p = (volatile uint32_t *)a;
	(void)*p;
	*p = (uint32_t)pattern(a);
}

/* A dword in each page, at an offset that varies from page to page (so that device registers
 * other than offset 0 are hit too). */
static uint64_t in_page(uint64_t page) { return page + ((page >> 12) * 68 & 0xFFC); }

static void poke_mmio(void)
{
	unsigned n = 0;
	for (uint64_t page = 0xC0000000ull; page < 0x100000000ull; page += 4096, n++)
		touch(in_page(page));
	printf("l0-scribble: mmio: touched %u pages in 0xc0000000-0xffffffff\n", n);
	unsigned maxphys = cpu_has_leaf(0x80000008) ? (cpuid(0x80000008, 0).eax & 0xFF) : 36;
	const uint64_t windows[] = { 0x100000000ull, 0x140000000ull, 0x1000000000ull,
				     (1ull << maxphys) - PAGE_2M };
	for (unsigned i = 0; i < ARRAY_SIZE(windows); i++) {
		uint64_t w = windows[i];
		map_page(paging_root(), w, w, PTE_P | PTE_W | PTE_PCD | PTE_PWT, 2);
		invlpg(w);
		printf("l0-scribble: mmio: touching 0x%lx and 0x%lx\n", (unsigned long)w,
		       (unsigned long)(w + PAGE_2M - 4096));
		touch(in_page(w));
		touch(in_page(w + PAGE_2M - 4096));
	}
	printf("l0-scribble: mmio: done\n");
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	bool do_ram = cmdline_u64("ram", 1), do_ports = cmdline_u64("ports", 1), do_mmio = cmdline_u64("mmio", 1);
	collect_ram(); /* the memory map lives in RAM that is about to be scribbled over */
	if (do_ram) {
		uint64_t bytes = 0, bad = 0;
		for (unsigned i = 0; i < nram; i++) {
			bytes += ram[i].end - ram[i].start;
			bad += scribble(ram[i].start, ram[i].end);
		}
		printf("l0-scribble: ram: wrote and checked %lu KiB in %u ranges, %lu mismatches\n", bytes / 1024, nram,
		       bad);
		if (bad)
			exit(1);
	}
	if (do_ports)
		poke_ports();
	if (do_mmio)
		poke_mmio();
	printf("l0-scribble: done\n");
	exit(SCRIBBLE_DONE);
}
