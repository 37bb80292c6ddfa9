/* tvisor: entering VMX operation (SDM 3C §23.6-23.7) and the capability MSRs (Appendix A).
 * Everything a processor may or may not support is read here, never assumed. */
#include "tvisor.h"

struct tv_caps caps;
static uint64_t vmxon_pa;

static struct ctl_cap read_cap(uint32_t msr)
{
	uint64_t v = rdmsr(msr);
	return (struct ctl_cap){ (uint32_t)v, (uint32_t)(v >> 32) };
}

uint64_t vmcs_read(uint64_t enc)
{
	uint64_t v;
	if (tv_vmread(enc, &v) != 0) {
		printf("tvisor: FATAL: VMREAD 0x%lx failed\n", enc);
		exit(2);
	}
	return v;
}

void vmcs_write(uint64_t enc, uint64_t v)
{
	int r = tv_vmwrite(enc, v);
	if (r != 0) {
		uint64_t err = 0;
		if (r > 0)
			tv_vmread(INSN_ERROR, &err);
		printf("tvisor: FATAL: VMWRITE 0x%lx <- 0x%lx failed (%d, VM-instruction error %lu)\n", enc, v, r, err);
		exit(2);
	}
}

static void read_caps(void)
{
	struct tv_caps *c = &caps;
	c->basic = rdmsr(MSR_VMX_BASIC);
	c->misc = rdmsr(MSR_VMX_MISC);
	c->cr0_fixed0 = rdmsr(MSR_VMX_CR0_FIXED0);
	c->cr0_fixed1 = rdmsr(MSR_VMX_CR0_FIXED1);
	c->cr4_fixed0 = rdmsr(MSR_VMX_CR4_FIXED0);
	c->cr4_fixed1 = rdmsr(MSR_VMX_CR4_FIXED1);
	/* SDM 3C A.2: with IA32_VMX_BASIC[55] the TRUE MSRs say which default-1 controls may be 0 */
	bool t = c->basic & VMX_BASIC_TRUE_CTLS;
	c->pin = read_cap(t ? MSR_VMX_TRUE_PINBASED : MSR_VMX_PINBASED);
	c->proc = read_cap(t ? MSR_VMX_TRUE_PROCBASED : MSR_VMX_PROCBASED);
	c->exit = read_cap(t ? MSR_VMX_TRUE_EXIT : MSR_VMX_EXIT);
	c->entry = read_cap(t ? MSR_VMX_TRUE_ENTRY : MSR_VMX_ENTRY);
	if (c->proc.may1 & PROC_SECONDARY)
		c->proc2 = read_cap(MSR_VMX_PROCBASED2);
	if (c->proc2.may1 & (PROC2_EPT | PROC2_VPID))
		c->ept_vpid = rdmsr(MSR_VMX_EPT_VPID_CAP);
	c->ept = (c->proc2.may1 & PROC2_EPT) && (c->ept_vpid & EPTCAP_PWL4) && (c->ept_vpid & (EPTCAP_WB | EPTCAP_UC));
	c->vpid = (c->proc2.may1 & PROC2_VPID) && (c->ept_vpid & VPIDCAP_INVVPID);
	/* unrestricted guest requires enable EPT (SDM 3C §26.2.1.1) */
	c->unrestricted = c->ept && (c->proc2.may1 & PROC2_UNRESTRICTED);
	c->preempt = ctl_can(&c->pin, PIN_PREEMPT);
	c->preempt_rate = VMX_MISC_PREEMPT_RATE(c->misc);
	c->maxphyaddr = 36;
	if (cpuid(0x80000000, 0).eax >= 0x80000008)
		c->maxphyaddr = cpuid(0x80000008, 0).eax & 0xFF;
}

bool vmx_start(void)
{
	if (!((cpuid(1, 0).ecx >> 5) & 1)) {
		printf("tvisor: this CPU has no VMX (CPUID.1:ECX.VMX = 0)\n");
		return false;
	}
	/* IA32_FEATURE_CONTROL (SDM 3C §23.7): VMXON needs lock=1 and "VMX outside SMX"=1. If the
	 * firmware left it unlocked we may set it; if it locked it with VMX off we cannot. */
	uint64_t fc = rdmsr(MSR_FEATURE_CONTROL);
	if (!(fc & FC_LOCK)) {
		fc |= FC_LOCK | FC_VMX_OUTSIDE_SMX;
		wrmsr(MSR_FEATURE_CONTROL, fc);
	}
	if (!(fc & FC_VMX_OUTSIDE_SMX)) {
		printf("tvisor: VMX is disabled and locked in IA32_FEATURE_CONTROL (0x%lx)\n", fc);
		return false;
	}
	read_caps();
	/* CR0/CR4 must respect the fixed bits in VMX operation (SDM 3C §23.8) */
	uint64_t cr0 = (read_cr0() | caps.cr0_fixed0) & caps.cr0_fixed1;
	uint64_t cr4 = (read_cr4() | caps.cr4_fixed0 | CR4_VMXE) & caps.cr4_fixed1;
	write_cr0(cr0);
	write_cr4(cr4);
	uint32_t *region = page_alloc_zero();
	region[0] = VMX_BASIC_REVISION(caps.basic); /* never hard-coded: SDM 3C §24.2 */
	vmxon_pa = (uint64_t)region;
	int r = tv_vmxon(vmxon_pa);
	if (r != 0) {
		printf("tvisor: VMXON failed (%d)\n", r);
		return false;
	}
	return true;
}

static const char *const reason_names[ER_COUNT] = {
	[ER_EXCEPTION_NMI] = "EXCEPTION_NMI",
	[ER_EXTINT] = "EXTERNAL_INTERRUPT",
	[ER_TRIPLE_FAULT] = "TRIPLE_FAULT",
	[ER_INIT] = "INIT",
	[ER_SIPI] = "SIPI",
	[ER_IO_SMI] = "IO_SMI",
	[ER_OTHER_SMI] = "OTHER_SMI",
	[ER_INTR_WINDOW] = "INTERRUPT_WINDOW",
	[ER_NMI_WINDOW] = "NMI_WINDOW",
	[ER_TASK_SWITCH] = "TASK_SWITCH",
	[ER_CPUID] = "CPUID",
	[ER_GETSEC] = "GETSEC",
	[ER_HLT] = "HLT",
	[ER_INVD] = "INVD",
	[ER_INVLPG] = "INVLPG",
	[ER_RDPMC] = "RDPMC",
	[ER_RDTSC] = "RDTSC",
	[ER_RSM] = "RSM",
	[ER_VMCALL] = "VMCALL",
	[ER_VMCLEAR] = "VMCLEAR",
	[ER_VMLAUNCH] = "VMLAUNCH",
	[ER_VMPTRLD] = "VMPTRLD",
	[ER_VMPTRST] = "VMPTRST",
	[ER_VMREAD] = "VMREAD",
	[ER_VMRESUME] = "VMRESUME",
	[ER_VMWRITE] = "VMWRITE",
	[ER_VMXOFF] = "VMXOFF",
	[ER_VMXON] = "VMXON",
	[ER_CR_ACCESS] = "CR_ACCESS",
	[ER_DR_ACCESS] = "DR_ACCESS",
	[ER_IO] = "IO_INSTRUCTION",
	[ER_RDMSR] = "RDMSR",
	[ER_WRMSR] = "WRMSR",
	[ER_INVALID_GUEST] = "ENTRY_FAIL_GUEST_STATE",
	[ER_MSR_LOADING] = "ENTRY_FAIL_MSR_LOADING",
	[ER_MWAIT] = "MWAIT",
	[ER_MTF] = "MONITOR_TRAP_FLAG",
	[ER_MONITOR] = "MONITOR",
	[ER_PAUSE] = "PAUSE",
	[ER_MCE_ENTRY] = "ENTRY_FAIL_MACHINE_CHECK",
	[ER_TPR_BELOW] = "TPR_BELOW_THRESHOLD",
	[ER_APIC_ACCESS] = "APIC_ACCESS",
	[ER_VEOI] = "VIRTUALIZED_EOI",
	[ER_GDTR_IDTR] = "GDTR_IDTR",
	[ER_LDTR_TR] = "LDTR_TR",
	[ER_EPT_VIOLATION] = "EPT_VIOLATION",
	[ER_EPT_MISCONFIG] = "EPT_MISCONFIG",
	[ER_INVEPT] = "INVEPT",
	[ER_RDTSCP] = "RDTSCP",
	[ER_PREEMPT_TIMER] = "PREEMPTION_TIMER",
	[ER_INVVPID] = "INVVPID",
	[ER_WBINVD] = "WBINVD",
	[ER_XSETBV] = "XSETBV",
	[ER_APIC_WRITE] = "APIC_WRITE",
	[ER_RDRAND] = "RDRAND",
	[ER_INVPCID] = "INVPCID",
	[ER_VMFUNC] = "VMFUNC",
	[ER_ENCLS] = "ENCLS",
	[ER_RDSEED] = "RDSEED",
	[ER_PML_FULL] = "PML_FULL",
	[ER_XSAVES] = "XSAVES",
	[ER_XRSTORS] = "XRSTORS",
};

const char *exit_reason_name(uint32_t reason)
{
	reason &= 0xFFFF;
	if (reason < ER_COUNT && reason_names[reason])
		return reason_names[reason];
	return "UNKNOWN";
}
