/* Known deviations of QEMU TCG (the emulator we validate these kernels against) from the SDM.
 * A test asserts the architectural behaviour; only when it observes the documented deviation
 * *and* runs under QEMU TCG does it report "PASS name (skipped: known QEMU TCG deviation: ...)".
 * turtles itself must show the architectural behaviour. See README.md for the list. */
#ifndef QUIRKS_H
#define QUIRKS_H

#include "test.h"
#include "x86.h"

/* QEMU TCG advertises the hypervisor vendor "TCGTCGTCGTCG" at CPUID leaf 0x40000000. */
static inline bool on_qemu_tcg(void)
{
	if (!((cpuid(1, 0).ecx >> 31) & 1))
		return false;
	struct cpuid_regs r = cpuid(0x40000000, 0);
	return r.ebx == 0x54474354 && r.ecx == 0x43544743 && r.edx == 0x47435447;
}

#define TCG_QUIRK(observed, reason)                                              \
	do {                                                                     \
		if ((observed) && on_qemu_tcg())                                 \
			test_skip("known QEMU TCG deviation: " reason);          \
	} while (0)

#endif
