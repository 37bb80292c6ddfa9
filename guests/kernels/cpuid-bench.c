/* Benchmark: a CPUID loop (cmdline n=N, default 100000). Bare, it measures the instruction;
 * as a guest, the cost of one exit handled by the hypervisor (the paper's Table 2 experiment). */
#include "rt.h"

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	uint64_t n = cmdline_u64("n", 100000);
	uint64_t t0 = rdtsc();
	for (uint64_t i = 0; i < n; i++) {
		uint32_t a = 0, b, c = 0, d;
		asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	}
	uint64_t t1 = rdtsc();
	printf("cpuid-bench: n=%lu cycles/cpuid=%lu\n", n, (t1 - t0) / (n ? n : 1));
	exit(0);
}
