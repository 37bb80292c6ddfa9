/* Time-stamp counter helpers: frequency calibrated against the 8254 PIT (pit.h), delays, and
 * 64-bit a*b/c arithmetic without libgcc. */
#ifndef TSC_H
#define TSC_H

#include "types.h"

/* a * b / c with a 128-bit intermediate (MUL, then DIV). The quotient must fit in 64 bits and
 * c must not be 0: callers pass values where that holds (rates and intervals of a few seconds). */
static inline uint64_t muldiv64(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t q, hi, lo;
	asm("mulq %3" : "=a"(lo), "=d"(hi) : "a"(a), "rm"(b) : "cc");
	asm("divq %4" : "=a"(q), "=d"(hi) : "a"(lo), "d"(hi), "rm"(c) : "cc");
	return q;
}

/* The TSC frequency in Hz. The first call calibrates (tsc_calibrate with 3 runs of 10 ms) unless
 * tsc_set_hz() provided a value. */
uint64_t tsc_hz(void);
void tsc_set_hz(uint64_t hz);

/* Measure the TSC against PIT channel 2 over `ms` milliseconds (at most 50), `runs` times, and
 * return the median. */
uint64_t tsc_calibrate(unsigned ms, unsigned runs);

/* Busy-wait (PAUSE loop) on the TSC. */
void tsc_delay_ticks(uint64_t ticks);
void tsc_delay_us(uint64_t us);

/* The frequency in the CPUID brand string ("... @ 2.90GHz"), in Hz, or 0 if it names none. */
uint64_t cpuid_brand_hz(void);

#endif
