/* TSC frequency (calibrated against the PIT) and delays. See include/tsc.h. */
#include "tsc.h"
#include "kstring.h"
#include "pit.h"
#include "x86.h"

static uint64_t cached_hz;

void tsc_set_hz(uint64_t hz) { cached_hz = hz; }

uint64_t tsc_hz(void)
{
	if (!cached_hz)
		cached_hz = tsc_calibrate(10, 3);
	return cached_hz;
}

uint64_t tsc_calibrate(unsigned ms, unsigned runs)
{
	uint64_t v[9];
	if (runs < 1)
		runs = 1;
	if (runs > ARRAY_SIZE(v))
		runs = ARRAY_SIZE(v);
	for (unsigned i = 0; i < runs; i++) {
		/* insertion sort as we go; the median discards a run disturbed by the host */
		uint64_t x = pit_measure_tsc_hz(ms);
		unsigned j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	return v[runs / 2];
}

void tsc_delay_ticks(uint64_t ticks)
{
	uint64_t t0 = rdtsc();
	while (rdtsc() - t0 < ticks)
		asm volatile("pause");
}

void tsc_delay_us(uint64_t us) { tsc_delay_ticks(muldiv64(us, tsc_hz(), 1000000)); }

uint64_t cpuid_brand_hz(void)
{
	if (!cpu_has_leaf(0x80000004))
		return 0;
	char brand[49];
	for (uint32_t i = 0; i < 3; i++) {
		struct cpuid_regs r = cpuid(0x80000002 + i, 0);
		memcpy(brand + 16 * i, &r, 16);
	}
	brand[48] = 0;
	/* "<model> @ 2.90GHz" (Intel's format, SDM 2A CPUID "brand string") */
	const char *p = 0;
	for (const char *s = brand; *s; s++)
		if (s[0] == '@' && s[1] == ' ')
			p = s + 2;
	if (!p)
		return 0;
	uint64_t whole = 0, frac = 0, scale = 1;
	while (*p >= '0' && *p <= '9')
		whole = whole * 10 + (uint64_t)(*p++ - '0');
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			frac = frac * 10 + (uint64_t)(*p++ - '0');
			scale *= 10;
		}
	}
	uint64_t unit = p[0] == 'G' ? 1000000000ull : p[0] == 'M' ? 1000000ull : p[0] == 'T' ? 1000000000000ull : 0;
	if (!unit || p[1] != 'H' || p[2] != 'z')
		return 0;
	return whole * unit + frac * unit / scale;
}
