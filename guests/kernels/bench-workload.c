/* Benchmark: a memory-heavy C workload. Fills mb MiB (cmdline mb=N, default 4) with 32-bit
 * values from a xorshift64* generator, sorts them with a bottom-up merge sort, checks the
 * order, and prints the FNV-1a 64-bit hash of the sorted bytes. The result depends only on mb. */
#include "rt.h"

#define MIB (1024ull * 1024)

static uint64_t prng_state = 0x0123456789ABCDEFull;

static uint32_t prng_next(void)
{
	uint64_t x = prng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	prng_state = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

static void insertion_sort(uint32_t *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint32_t v = a[i];
		size_t j = i;
		while (j > 0 && a[j - 1] > v) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = v;
	}
}

static void merge(const uint32_t *src, uint32_t *dst, size_t lo, size_t mid, size_t hi)
{
	size_t i = lo, j = mid, k = lo;
	while (i < mid && j < hi)
		dst[k++] = src[j] < src[i] ? src[j++] : src[i++];
	while (i < mid)
		dst[k++] = src[i++];
	while (j < hi)
		dst[k++] = src[j++];
}

/* Sorts a[0..n) using tmp[0..n); returns whichever buffer holds the result. */
static uint32_t *merge_sort(uint32_t *a, uint32_t *tmp, size_t n)
{
	const size_t run = 32;
	for (size_t lo = 0; lo < n; lo += run)
		insertion_sort(a + lo, n - lo < run ? n - lo : run);
	uint32_t *src = a, *dst = tmp;
	for (size_t width = run; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			merge(src, dst, lo, mid, hi);
		}
		uint32_t *t = src;
		src = dst;
		dst = t;
	}
	return src;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xCBF29CE484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001B3ull;
	}
	return h;
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	uint64_t mb = cmdline_u64("mb", 4);
	uint64_t base = (mb_free_start() + PAGE_2M - 1) & ~(PAGE_2M - 1);
	uint64_t ram_end = 0x100000 + (uint64_t)mb_mem_upper_kb() * 1024;
	if (mb == 0 || base + 2 * mb * MIB > ram_end) {
		printf("bench-workload: mb=%lu does not fit (free 0x%lx..0x%lx)\n", mb, base, ram_end);
		exit(1);
	}
	size_t n = mb * MIB / sizeof(uint32_t);
	uint32_t *data = (uint32_t *)base;
	uint32_t *tmp = (uint32_t *)(base + mb * MIB);
	for (size_t i = 0; i < n; i++)
		data[i] = prng_next();
	uint32_t *sorted = merge_sort(data, tmp, n);
	for (size_t i = 1; i < n; i++) {
		if (sorted[i - 1] > sorted[i]) {
			printf("bench-workload: not sorted at %zu\n", i);
			exit(1);
		}
	}
	printf("bench-workload: mb=%lu hash=0x%016lx\n", mb, fnv1a((const uint8_t *)sorted, n * sizeof(uint32_t)));
	exit(0);
}
