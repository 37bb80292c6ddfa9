/* libgcc routines that gcc calls for some builtins when the target has no matching instruction
 * (baseline x86-64 has no POPCNT). We do not link libgcc, so provide them here. Written without
 * loops so gcc's popcount-idiom recognition cannot turn them back into calls to themselves. */
#include "types.h"

int __popcountdi2(uint64_t x);

int __popcountdi2(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (int)((x * 0x0101010101010101ull) >> 56);
}
