/* Benchmark: a page-fault-heavy kernel (demand paging). A window of `pages` 4 KiB pages above
 * 4 GiB starts unmapped; every first touch takes a #PF whose handler maps the page (a guest
 * page-table write); after each round the window is unmapped again (PTE writes + INVLPG).
 * cmdline: pages=N (default 2048), rounds=R (default 20). Prints the number of faults taken.
 * Under EPT the faults never leave the guest; under shadow paging each one involves the
 * hypervisor: the paper's MMU comparison in miniature. */
#include "rt.h"

#define WINDOW 0x100000000ull /* 4 GiB: not covered by the runtime's identity map */

static uint64_t pool;        /* physical pages backing the window */
static uint64_t faults;

static void on_pf(struct frame *f)
{
	uint64_t va = f->cr2 & ~(PAGE_4K - 1);
	if (va < WINDOW || (f->error & 1)) { /* not a demand fault of ours: report and stop */
		printf("bench-pagefault: unexpected #PF at 0x%lx error 0x%lx rip 0x%lx\n", f->cr2, f->error, f->rip);
		exit(1);
	}
	map_4k(va, pool + (va - WINDOW), PTE_P | PTE_W);
	faults++;
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	uint64_t pages = cmdline_u64("pages", 2048), rounds = cmdline_u64("rounds", 20);
	pool = (mb_free_start() + PAGE_2M - 1) & ~(PAGE_2M - 1);
	uint64_t ram_end = 0x100000 + (uint64_t)mb_mem_upper_kb() * 1024;
	if (pages == 0 || pool + pages * PAGE_4K + PAGE_2M > ram_end) {
		printf("bench-pagefault: pages=%lu does not fit\n", pages);
		exit(1);
	}
	idt_set_handler(14, on_pf);
	uint64_t sum = 0;
	for (uint64_t r = 0; r < rounds; r++) {
		for (uint64_t p = 0; p < pages; p++) {
			volatile uint64_t *q = (volatile uint64_t *)(WINDOW + p * PAGE_4K);
			*q = r + p;
			sum += *q;
		}
		for (uint64_t p = 0; p < pages; p++) {
			uint64_t va = WINDOW + p * PAGE_4K;
			pte_clear_bits(va, PTE_P);
			invlpg(va);
		}
	}
	printf("bench-pagefault: pages=%lu rounds=%lu faults=%lu sum=0x%lx\n", pages, rounds, faults, sum);
	exit(faults == pages * rounds ? 0 : 1);
}
