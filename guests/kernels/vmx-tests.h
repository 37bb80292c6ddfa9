/* Shared helpers of vmx-tests.elf (kernels/vmx-*.c). */
#ifndef VMX_TESTS_H
#define VMX_TESTS_H

#include "asm_snippet.h"
#include "rt.h"
#include "vmx.h"

/* Every case goes through vt_run: "skip=a,b,c" on the command line reports those cases as
 * FAIL without running them (for implementations that crash on them, e.g. Bochs panics). */
void vt_run(const char *name, void (*fn)(void));
#undef RUN
#define RUN(name) vt_run(#name, test_##name)

/* Groups, one per file. */
void vmx_basic_tests(void); /* vmx-basic.c: discovery, VMXON/VMXOFF, VMCS pointer instructions */
void vmx_field_tests(void); /* vmx-fields.c: VMREAD/VMWRITE */
void vmx_entry_tests(void); /* vmx-entry.c: VM-entry checks, MSR load/store, state loading */
void vmx_exit_tests(void); /* vmx-exits.c: instruction and exception exits */
void vmx_event_tests(void); /* vmx-events.c: interrupts, NMIs, windows, injection, timer, MTF */
void vmx_ept_tests(void); /* vmx-ept.c: EPT, VPID, unrestricted guest, VMCS shadowing */
void vmx_fuzz_tests(void); /* vmx-fuzz.c: one-bit flips of a valid VMCS, outcomes printed (group=fuzz only) */
void vmx_hostile_tests(void); /* vmx-hostile.c: pointers to unclaimed addresses, EPT loops */

/* Skip the running test unless VMX exists, then make sure VMX operation is on. */
void need_vmx(void);
/* need_vmx() + a fresh valid VMCS (current) for a 64-bit guest starting at rip. */
void vm_setup(struct vmx_vm *vm, const void *rip);
void vm_set_rip(const void *rip);
/* Skip the running test with "not supported" unless the capability is there. */
void need_sec(uint32_t bits);
void need_proc(uint32_t bits);
void need_pin(uint32_t bits);
void need_exit_ctl(uint32_t bits);
void need_entry_ctl(uint32_t bits);
void need_ept(struct vmx_vm *vm); /* enables the identity EPT or skips */

/* For guests that would wait forever if the implementation under test missed the expected
 * exit or event (HLT, MWAIT, HLT activity): arm the VMX-preemption timer, when there is one,
 * far beyond the expected run time, so that such a bug ends in exit 52, not in a hang. */
void arm_watchdog(void);

/* Unblock NMIs in the host (an NMI that caused a VM exit leaves them blocked, SDM 3C §27.1). */
void host_iret_unblock_nmi(void);

/* Checks on a VM exit. */
#define EXPECT_EXIT(e, want)                                                                          \
	EXPECTF((e).status == VMX_EXITED && (e).reason == (uint32_t)(want),                           \
		"status %d reason 0x%x want 0x%x (qual 0x%lx rip 0x%lx intr 0x%x)", (e).status, (e).reason, \
		(uint32_t)(want), (e).qual, (e).guest_rip, (e).intr_info)
#define ASSERT_EXIT(e, want)                    \
	do {                                    \
		EXPECT_EXIT(e, want);           \
		ASSERT((e).status == VMX_EXITED && (e).reason == (uint32_t)(want)); \
	} while (0)
/* The guest function returned normally (VMCALL with RAX = VMX_GUEST_DONE). */
#define EXPECT_GUEST_DONE(vm, e)                                                                        \
	EXPECTF((e).status == VMX_EXITED && (e).reason == EXIT_VMCALL && (vm).regs.rax == VMX_GUEST_DONE, \
		"status %d reason 0x%x rax 0x%lx rip 0x%lx qual 0x%lx intr 0x%x", (e).status, (e).reason,   \
		(vm).regs.rax, (e).guest_rip, (e).qual, (e).intr_info)
/* The guest took an event through its IDT (VMCALL with RAX = VMX_GUEST_EVENT). */
#define EXPECT_GUEST_EVENT(vm, e, vec)                                                                  \
	EXPECTF((e).status == VMX_EXITED && (e).reason == EXIT_VMCALL && (vm).regs.rax == VMX_GUEST_EVENT && \
			vmx_guest_event.vector == (vec),                                                 \
		"status %d reason 0x%x rax 0x%lx event vector 0x%lx count %lu (want vector 0x%x)", (e).status, \
		(e).reason, (vm).regs.rax, vmx_guest_event.vector, vmx_guest_event.count, (unsigned)(vec))
#define EXPECT_RESULT(got, want) EXPECTF((got) == (want), "%s = %d, want %d", #got, (int)(got), (int)(want))

/* The exit happened at the instruction [site, end). */
#define EXPECT_AT(e, site, end)                                                                        \
	do {                                                                                           \
		EXPECTF((e).guest_rip == (uint64_t)(site), "guest rip 0x%lx want 0x%lx", (e).guest_rip, \
			(uint64_t)(site));                                                             \
		EXPECTF((e).insn_len == (uint64_t)((end) - (site)), "instruction length %u want %u", (e).insn_len, \
			(unsigned)((end) - (site)));                                                   \
	} while (0)

#endif
