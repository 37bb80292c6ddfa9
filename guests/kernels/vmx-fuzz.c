/* Differential fuzzing of VM entry (group "fuzz", not run by default: `group=fuzz`, `fuzz=N`
 * cases, `seed=S`): start from the valid VMCS of vm_setup, flip one bit of one control or
 * guest-state field (a deterministic xorshift sequence picks which), VMLAUNCH a guest that does
 * a VMCALL, and print the outcome: VMfail and its error number, a VM-entry failure with its
 * reason and qualification, or the exit with its reason and interruption information.
 *
 * The same kernel on two implementations prints the same lines if they agree bit for bit on
 * every check of SDM 3C chapter 26 that one-bit flips reach: test/l0/nested.test.ts compares the
 * bare machine with L0's virtual VT-x (`--l0 --nested`), which runs the checks on vmcs12.
 *
 * Fields left alone: those whose flipped values would make either implementation write to
 * memory this kernel uses (host state, guest RIP/RSP/CR3, MSR-list and other addresses, the
 * EPTP), and controls of features L0's virtual VT-x does not offer (VMCS shadowing, VM
 * functions), whose 1-setting is allowed on one side only. */
#include "vmx-tests.h"

static const uint32_t fields[] = {
	VMCS_PIN_CTLS, VMCS_PROC_CTLS, VMCS_PROC2_CTLS, VMCS_EXIT_CTLS, VMCS_ENTRY_CTLS,
	VMCS_EXCEPTION_BITMAP, VMCS_PF_MASK, VMCS_PF_MATCH, VMCS_CR3_TARGET_COUNT, VMCS_ENTRY_INTR_INFO,
	VMCS_ENTRY_EXC_ERROR, VMCS_ENTRY_INSN_LEN, VMCS_TPR_THRESHOLD, VMCS_CR0_MASK, VMCS_CR4_MASK,
	VMCS_CR0_SHADOW, VMCS_CR4_SHADOW, GUEST_CR0, GUEST_CR4, GUEST_DR7, GUEST_RFLAGS,
	GUEST_PENDING_DBG, GUEST_INTERRUPTIBILITY, GUEST_ACTIVITY, GUEST_LINK_PTR, GUEST_EFER, GUEST_PAT,
	GUEST_DEBUGCTL, GUEST_ES_SEL, GUEST_CS_SEL, GUEST_SS_SEL, GUEST_DS_SEL, GUEST_TR_SEL,
	GUEST_LDTR_SEL, GUEST_ES_LIMIT, GUEST_CS_LIMIT, GUEST_SS_LIMIT, GUEST_TR_LIMIT, GUEST_GDTR_LIMIT,
	GUEST_IDTR_LIMIT, GUEST_ES_AR, GUEST_CS_AR, GUEST_SS_AR, GUEST_DS_AR, GUEST_FS_AR, GUEST_GS_AR,
	GUEST_LDTR_AR, GUEST_TR_AR, GUEST_FS_BASE, GUEST_GS_BASE, GUEST_TR_BASE, GUEST_CS_BASE,
	GUEST_SYSENTER_CS,
};
static const char *const names[] = {
	"PIN_CTLS", "PROC_CTLS", "PROC2_CTLS", "EXIT_CTLS", "ENTRY_CTLS", "EXCEPTION_BITMAP", "PF_MASK",
	"PF_MATCH", "CR3_TARGET_COUNT", "ENTRY_INTR_INFO", "ENTRY_EXC_ERROR", "ENTRY_INSN_LEN",
	"TPR_THRESHOLD", "CR0_MASK", "CR4_MASK", "CR0_SHADOW", "CR4_SHADOW", "GUEST_CR0", "GUEST_CR4",
	"GUEST_DR7", "GUEST_RFLAGS", "GUEST_PENDING_DBG", "GUEST_INTERRUPTIBILITY", "GUEST_ACTIVITY",
	"GUEST_LINK_PTR", "GUEST_EFER", "GUEST_PAT", "GUEST_DEBUGCTL", "GUEST_ES_SEL", "GUEST_CS_SEL",
	"GUEST_SS_SEL", "GUEST_DS_SEL", "GUEST_TR_SEL", "GUEST_LDTR_SEL", "GUEST_ES_LIMIT",
	"GUEST_CS_LIMIT", "GUEST_SS_LIMIT", "GUEST_TR_LIMIT", "GUEST_GDTR_LIMIT", "GUEST_IDTR_LIMIT",
	"GUEST_ES_AR", "GUEST_CS_AR", "GUEST_SS_AR", "GUEST_DS_AR", "GUEST_FS_AR", "GUEST_GS_AR",
	"GUEST_LDTR_AR", "GUEST_TR_AR", "GUEST_FS_BASE", "GUEST_GS_BASE", "GUEST_TR_BASE",
	"GUEST_CS_BASE", "GUEST_SYSENTER_CS",
};
_Static_assert(ARRAY_SIZE(fields) == ARRAY_SIZE(names), "one name per field");

/* Secondary controls L0's virtual VT-x does not offer: VM functions (13), VMCS shadowing (14). */
#define PROC2_ABSENT_IN_L1 ((1u << 13) | (1u << 14))

static uint64_t rng;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Bits the field has: its width (SDM 3C Appendix B: bits 14:13 of the encoding). */
static unsigned width_bits(uint32_t enc)
{
	switch ((enc >> 13) & 3) {
	case 0: return 16;
	case 1: return 64;
	case 2: return 32;
	default: return 64; /* natural width */
	}
}

SNIPPET(g_fuzz_vmcall, "mov $0x600D600D, %eax\n vmcall\n ud2")

static void fuzz_case(unsigned k)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	unsigned f = next() % ARRAY_SIZE(fields);
	unsigned bit = next() % width_bits(fields[f]);
	if (fields[f] == VMCS_PROC2_CTLS && (PROC2_ABSENT_IN_L1 >> bit) & 1)
		bit = 0;
	vm_setup(&vm, g_fuzz_vmcall);
	arm_watchdog();
	uint64_t before = 0;
	int rr = vmread(fields[f], &before);
	if (rr != VMX_OK) {
		printf("fuzz %u: %s unsupported (VMREAD %d)\n", k, names[f], rr);
		return;
	}
	uint64_t after = before ^ (1ull << bit);
	int rw = vmwrite(fields[f], after);
	int r = rw == VMX_OK ? vmx_vm_run(&vm, &e) : rw;
	printf("fuzz %u: %s bit %u (0x%lx -> 0x%lx): ", k, names[f], bit, before, after);
	if (rw != VMX_OK)
		printf("VMWRITE %d\n", rw);
	else if (r == VMX_FAIL_INVALID)
		printf("VMfailInvalid\n");
	else if (r != VMX_OK)
		printf("VMfailValid %d\n", r);
	else if (e.reason & EXIT_REASON_ENTRY_FAIL)
		printf("entry failure %u qual %lu\n", e.reason & 0xFFFF, e.qual);
	else
		printf("exit %u intr 0x%x\n", e.reason, e.reason == EXIT_EXCEPTION_NMI ? e.intr_info : 0);
}

TEST(fuzz_one_bit_flips)
{
	need_vmx();
	rng = cmdline_u64("seed", 0x7475727465730001ull) | 1;
	uint64_t n = cmdline_u64("fuzz", 200);
	for (unsigned k = 0; k < n; k++)
		fuzz_case(k);
}

void vmx_fuzz_tests(void) { RUN(fuzz_one_bit_flips); }
