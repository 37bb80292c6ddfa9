/* Integer arithmetic as gcc compiles it, at -O2 (cpu-arith.elf) and -O0 (cpu-arith-O0.elf):
 * every width, signed and unsigned division, shifts, rotates, bit-counting builtins, byte swaps,
 * overflow builtins and 128-bit arithmetic. Expected values come from
 * kernels/cpu-arith-vectors.h, computed independently by tools/gen-arith-vectors.py. */
#include "rt.h"

#include "cpu-arith-vectors.h"

typedef unsigned __int128 u128;
typedef __int128 s128;

/* Hides a value from the optimiser so nothing below is constant-folded at compile time. */
static inline uint64_t opaque(uint64_t x)
{
	asm volatile("" : "+r"(x));
	return x;
}

/* Divisors that keep C division defined: no division by zero, no INT_MIN / -1.
 * tools/gen-arith-vectors.py applies the same substitutions. */
static int64_t fix_sdiv(int64_t a, int64_t b, int64_t min)
{
	if (b == 0)
		return 7;
	if (b == -1 && a == min)
		return 3;
	return b;
}
static uint64_t fix_udiv(uint64_t b) { return b ? b : 7; }

static uint64_t rol64(uint64_t x, unsigned n) { return (x << n) | (x >> (-n & 63)); }
static uint64_t ror64(uint64_t x, unsigned n) { return (x >> n) | (x << (-n & 63)); }
static uint32_t rol32(uint32_t x, unsigned n) { return (x << n) | (x >> (-n & 31)); }

static uint64_t cmp_bits(uint64_t a, uint64_t b)
{
	return ((int64_t)a < (int64_t)b ? 1 : 0) | (a < b ? 2 : 0) | ((int64_t)a <= (int64_t)b ? 4 : 0) |
	       (a >= b ? 8 : 0) | (a == b ? 16 : 0);
}

static u128 pair(uint64_t hi, uint64_t lo) { return ((u128)hi << 64) | lo; }

static uint64_t ovf_sadd(uint64_t a, uint64_t b)
{
	int64_t r;
	return __builtin_add_overflow((int64_t)a, (int64_t)b, &r);
}
static uint64_t ovf_uadd(uint64_t a, uint64_t b)
{
	uint64_t r;
	return __builtin_add_overflow(a, b, &r);
}
static uint64_t ovf_ssub(uint64_t a, uint64_t b)
{
	int64_t r;
	return __builtin_sub_overflow((int64_t)a, (int64_t)b, &r);
}
static uint64_t ovf_usub(uint64_t a, uint64_t b)
{
	uint64_t r;
	return __builtin_sub_overflow(a, b, &r);
}
static uint64_t ovf_smul(uint64_t a, uint64_t b)
{
	int64_t r;
	return __builtin_mul_overflow((int64_t)a, (int64_t)b, &r);
}
static uint64_t ovf_umul(uint64_t a, uint64_t b)
{
	uint64_t r;
	return __builtin_mul_overflow(a, b, &r);
}

/* One test per operation: evaluate expr for every input pair (a, b) and compare. */
#define OP(name, expr)                                                                          \
	TEST(name)                                                                              \
	{                                                                                       \
		for (int i = 0; i < ARITH_N; i++) {                                             \
			uint64_t a = opaque(arith_in[i][0]), b = opaque(arith_in[i][1]);        \
			uint64_t got = (uint64_t)(expr);                                        \
			EXPECTF(got == want_##name[i], "input %d (a=0x%lx b=0x%lx): got 0x%lx, want 0x%lx", \
				i, a, b, got, want_##name[i]);                                  \
		}                                                                               \
	}

OP(add64, a + b)
OP(sub64, a - b)
OP(mul64, a * b)
OP(neg64, -a)
OP(umulhi64, ((u128)a * b) >> 64)
OP(smulhi64, (uint64_t)(((s128)(int64_t)a * (int64_t)b) >> 64))
OP(udiv64, a / fix_udiv(b))
OP(umod64, a % fix_udiv(b))
OP(sdiv64, (int64_t)a / fix_sdiv((int64_t)a, (int64_t)b, INT64_MIN))
OP(smod64, (int64_t)a % fix_sdiv((int64_t)a, (int64_t)b, INT64_MIN))
OP(shl64, a << (b & 63))
OP(shr64, a >> (b & 63))
OP(sar64, (int64_t)a >> (b & 63))
OP(rol64, rol64(a, b & 63))
OP(ror64, ror64(a, b & 63))
OP(mul32, (uint32_t)a * (uint32_t)b)
OP(udiv32, (uint32_t)a / (uint32_t)fix_udiv((uint32_t)b))
OP(sdiv32, (int64_t)((int32_t)a / (int32_t)fix_sdiv((int32_t)a, (int32_t)b, INT32_MIN)))
OP(smod32, (int64_t)((int32_t)a % (int32_t)fix_sdiv((int32_t)a, (int32_t)b, INT32_MIN)))
OP(shl32, (uint32_t)a << (b & 31))
OP(sar32, (int64_t)((int32_t)a >> (b & 31)))
OP(rol32, rol32((uint32_t)a, b & 31))
OP(mul16, (uint16_t)((uint32_t)(uint16_t)a * (uint16_t)b))
OP(udiv16, (uint16_t)a / (uint16_t)fix_udiv((uint16_t)b))
OP(sdiv8, (int64_t)((int8_t)a / (int8_t)fix_sdiv((int8_t)a, (int8_t)b, INT8_MIN)))
OP(umod8, (uint8_t)a % (uint8_t)fix_udiv((uint8_t)b))
OP(sext8, (int64_t)(int8_t)a)
OP(sext16, (int64_t)(int16_t)a)
OP(sext32, (int64_t)(int32_t)a)
OP(zext32, (uint32_t)a)
OP(cmp, cmp_bits(a, b))
OP(smax, (int64_t)a > (int64_t)b ? a : b)
OP(umin, a < b ? a : b)
OP(popcount, __builtin_popcountll(a))
OP(parity, __builtin_parityll(a))
OP(clz, __builtin_clzll(a | 1))
OP(ctz, __builtin_ctzll(a | 0x8000000000000000ull))
OP(ffs, __builtin_ffsll((long long)a))
OP(clrsb, __builtin_clrsbll((long long)a))
OP(clz32, __builtin_clz((uint32_t)a | 1))
OP(bswap64, __builtin_bswap64(a))
OP(bswap32, __builtin_bswap32((uint32_t)a))
OP(bswap16, __builtin_bswap16((uint16_t)a))
OP(sadd_ovf, ovf_sadd(a, b))
OP(uadd_carry, ovf_uadd(a, b))
OP(ssub_ovf, ovf_ssub(a, b))
OP(usub_borrow, ovf_usub(a, b))
OP(smul_ovf, ovf_smul(a, b))
OP(umul_ovf, ovf_umul(a, b))
OP(add128_hi, (pair(a, b) + pair(b, a)) >> 64)
OP(sub128_hi, (pair(a, b) - pair(b, a)) >> 64)
OP(mul128_lo_hi, (pair(a, b) * pair(b, a)) >> 64)
OP(shl128_hi, (pair(a, b) << (b & 127)) >> 64)
OP(shr128_lo, pair(a, b) >> (b & 127))
OP(sar128_lo, (s128)pair(a, b) >> (b & 127))

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	RUN(add64);
	RUN(sub64);
	RUN(mul64);
	RUN(neg64);
	RUN(umulhi64);
	RUN(smulhi64);
	RUN(udiv64);
	RUN(umod64);
	RUN(sdiv64);
	RUN(smod64);
	RUN(shl64);
	RUN(shr64);
	RUN(sar64);
	RUN(rol64);
	RUN(ror64);
	RUN(mul32);
	RUN(udiv32);
	RUN(sdiv32);
	RUN(smod32);
	RUN(shl32);
	RUN(sar32);
	RUN(rol32);
	RUN(mul16);
	RUN(udiv16);
	RUN(sdiv8);
	RUN(umod8);
	RUN(sext8);
	RUN(sext16);
	RUN(sext32);
	RUN(zext32);
	RUN(cmp);
	RUN(smax);
	RUN(umin);
	RUN(popcount);
	RUN(parity);
	RUN(clz);
	RUN(ctz);
	RUN(ffs);
	RUN(clrsb);
	RUN(clz32);
	RUN(bswap64);
	RUN(bswap32);
	RUN(bswap16);
	RUN(sadd_ovf);
	RUN(uadd_carry);
	RUN(ssub_ovf);
	RUN(usub_borrow);
	RUN(smul_ovf);
	RUN(umul_ovf);
	RUN(add128_hi);
	RUN(sub128_hi);
	RUN(mul128_lo_hi);
	RUN(shl128_hi);
	RUN(shr128_lo);
	RUN(sar128_lo);
	test_finish();
}
