/* Benchmark: a tight add/xor/dec/jnz loop in long mode with paging on.
 * Command line: iters=N (default 100000000). Prints "loop done" and exits 0. */
#include "rt.h"

uint64_t bench_loop(uint64_t iterations);

static volatile uint64_t sink;

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	uint64_t iters = cmdline_u64("iters", 100000000);
	sink = bench_loop(iters);
	printf("loop done\n");
	exit(0);
}
