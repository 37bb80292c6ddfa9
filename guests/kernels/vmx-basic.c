/* Discovery (SDM 3C §23.6-23.8, Appendix A), VMXON/VMXOFF, VMCLEAR/VMPTRLD/VMPTRST,
 * VMLAUNCH/VMRESUME launch-state rules, VMCALL in root operation, and the #UD/#GP conditions
 * of the VMX instructions (SDM 3C chapter 30). */
#include "vmx-tests.h"
#include "quirks.h"

/* IA32_FEATURE_CONTROL as found at boot (the first test may lock it). */
static uint64_t boot_feature_control;

/* ---- fault helpers ---- */

/* Runs fn(arg); returns the vector of the exception it raised, or -1. */
static int fault_of(void (*fn)(void *), void *arg, uint64_t *error)
{
	struct frame f;
	if (!catch_run(fn, arg, &f))
		return -1;
	if (error)
		*error = f.error;
	return (int)f.vector;
}

struct msr_write {
	uint32_t msr;
	uint64_t val;
};
static void do_wrmsr(void *p)
{
	struct msr_write *w = p;
	wrmsr(w->msr, w->val);
}
static void do_rdmsr(void *p) { *(uint64_t *)p = rdmsr((uint32_t) * (uint64_t *)p); }
static void do_write_cr4(void *p) { write_cr4(*(uint64_t *)p); }
static void do_write_cr0(void *p) { write_cr0(*(uint64_t *)p); }

/* Kernel-mode instruction snippets: the argument (RDI) points at the memory operand. */
SNIPPET(k_vmxon, "vmxon (%rdi)\n ret")
SNIPPET(k_vmxoff, "vmxoff\n ret")
SNIPPET(k_vmclear, "vmclear (%rdi)\n ret")
SNIPPET(k_vmptrld, "vmptrld (%rdi)\n ret")
SNIPPET(k_vmptrst, "vmptrst (%rdi)\n ret")
SNIPPET(k_vmread, "xor %eax, %eax\n vmread %rax, %rcx\n ret")
SNIPPET(k_vmwrite, "xor %eax, %eax\n vmwrite %rcx, %rax\n ret")
SNIPPET(k_vmlaunch, "vmlaunch\n ret")
SNIPPET(k_vmresume, "vmresume\n ret")
SNIPPET(k_invept, "mov $2, %eax\n invept (%rdi), %rax\n ret")
SNIPPET(k_invvpid, "mov $2, %eax\n invvpid (%rdi), %rax\n ret")
SNIPPET(k_vmcall, "vmcall\n ret")

/* Ring-3 versions: the operand is on the user stack; they end with the exit system call. */
#define U_END "\n xor %eax, %eax\n syscall\n"
USER_SNIPPET(u_vmxon, "vmxon -16(%rsp)" U_END)
USER_SNIPPET(u_vmxoff, "vmxoff" U_END)
USER_SNIPPET(u_vmclear, "vmclear -16(%rsp)" U_END)
USER_SNIPPET(u_vmptrld, "vmptrld -16(%rsp)" U_END)
USER_SNIPPET(u_vmptrst, "vmptrst -16(%rsp)" U_END)
USER_SNIPPET(u_vmread, "xor %eax, %eax\n vmread %rax, %rcx" U_END)
USER_SNIPPET(u_vmwrite, "xor %eax, %eax\n vmwrite %rcx, %rax" U_END)
USER_SNIPPET(u_vmlaunch, "vmlaunch" U_END)
USER_SNIPPET(u_vmresume, "vmresume" U_END)
USER_SNIPPET(u_invept, "mov $2, %eax\n invept -32(%rsp), %rax" U_END)
USER_SNIPPET(u_invvpid, "mov $2, %eax\n invvpid -32(%rsp), %rax" U_END)
USER_SNIPPET(u_vmcall, "vmcall" U_END)

/* ---- discovery ---- */

TEST(cpuid_vmx)
{
	if (!vmx_caps.vmx) {
		/* Without VMX, CR4.VMXE is reserved: setting it faults (SDM 3C §23.7). Not tried on
		 * QEMU TCG: QEMU 7.2 -cpu max loops forever in its SVM intercept path on that write. */
		if (!on_qemu_tcg()) {
			uint64_t cr4 = read_cr4() | CR4_VMXE;
			EXPECT_EQ(fault_of(do_write_cr4, &cr4, 0), VEC_GP);
		}
		test_skip("not supported: CPUID.1:ECX.VMX=0");
	}
	uint64_t cr4 = read_cr4();
	uint64_t v = cr4 | CR4_VMXE;
	EXPECT_EQ(fault_of(do_write_cr4, &v, 0), -1);
	write_cr4(cr4);
}

TEST(feature_control)
{
	if (!vmx_caps.vmx)
		test_skip("not supported: CPUID.1:ECX.VMX=0");
	ASSERT(!vmx_is_on());
	uint64_t fc = boot_feature_control;
	if (!(fc & FEATURE_CONTROL_LOCK)) {
		/* Unlocked: VMXON must #GP (SDM 3C §23.7), then lock with VMX outside SMX. */
		uint64_t cr0 = read_cr0(), cr4 = read_cr4();
		write_cr0((cr0 | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1);
		write_cr4((cr4 | vmx_caps.cr4_fixed0 | CR4_VMXE) & vmx_caps.cr4_fixed1);
		uint32_t *region = vmx_page_alloc();
		region[0] = vmx_caps.revision;
		uint64_t pa = (uint64_t)region, err = ~0ull;
		int v = fault_of(k_vmxon, &pa, &err);
		if (v == -1)
			vmxoff();
		EXPECTF(v == VEC_GP && err == 0, "VMXON with IA32_FEATURE_CONTROL unlocked: vector %d error 0x%lx", v, err);
		write_cr4(cr4);
		write_cr0(cr0);
		vmx_feature_control_prepare();
		uint64_t now = rdmsr(MSR_IA32_FEATURE_CONTROL);
		EXPECTF((now & (FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX)) ==
				(FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX),
			"IA32_FEATURE_CONTROL after locking = 0x%lx", now);
	} else if (!(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX)) {
		test_skip("not supported: VMX disabled (and locked) in IA32_FEATURE_CONTROL");
	}
	/* locked: further writes #GP */
	struct msr_write w = { MSR_IA32_FEATURE_CONTROL, rdmsr(MSR_IA32_FEATURE_CONTROL) };
	uint64_t err = ~0ull;
	EXPECTF(fault_of(do_wrmsr, &w, &err) == VEC_GP && err == 0, "WRMSR to locked IA32_FEATURE_CONTROL did not #GP(0)");
}

TEST(basic_msr)
{
	need_vmx();
	uint64_t b = vmx_caps.basic;
	EXPECTF(!(b & (1ull << 31)), "IA32_VMX_BASIC bit 31 = 1");
	EXPECTF(vmx_caps.revision != 0, "revision identifier 0");
	uint64_t size = BASIC_REGION_SIZE(b);
	EXPECTF(size > 0 && size <= 4096, "VMCS region size %lu", size);
	EXPECTF(!(b & BASIC_PA_32BIT), "bit 48 must be 0 on processors that support Intel 64");
	EXPECTF(BASIC_MEMTYPE(b) == 6 || BASIC_MEMTYPE(b) == 0, "VMCS memory type %lu", BASIC_MEMTYPE(b));
	EXPECTF((b & (7ull << 45)) == 0, "reserved bits 47:45 set: 0x%lx", b);
}

static void check_ctl(const char *what, struct vmx_ctl_cap c)
{
	EXPECTF((c.allowed0 & ~c.allowed1) == 0, "%s: bits that must be 1 but may not be: 0x%x (allowed0 0x%x allowed1 0x%x)",
		what, c.allowed0 & ~c.allowed1, c.allowed0, c.allowed1);
}

TEST(ctls_pinbased)
{
	need_vmx();
	check_ctl("pin", vmx_caps.pin_legacy);
	check_ctl("true pin", vmx_caps.pin);
	/* default1 class (SDM 3C A.3.1): bits 1, 2, 4 */
	EXPECTF((vmx_caps.pin_legacy.allowed0 & 0x16) == 0x16, "pin default1 bits 0x%x", vmx_caps.pin_legacy.allowed0);
}

TEST(ctls_procbased)
{
	need_vmx();
	check_ctl("proc", vmx_caps.proc_legacy);
	check_ctl("true proc", vmx_caps.proc);
	/* default1: bits 1, 4-6, 8, 13-16, 26 (SDM 3C A.3.2) */
	EXPECTF((vmx_caps.proc_legacy.allowed0 & 0x0401E172) == 0x0401E172, "proc default1 bits 0x%x",
		vmx_caps.proc_legacy.allowed0);
}

TEST(ctls_procbased2)
{
	need_vmx();
	if (!(vmx_caps.proc.allowed1 & PROC_SECONDARY)) {
		/* the MSR exists only with the 1-setting of "activate secondary controls" */
		uint64_t m = MSR_VMX_PROCBASED_CTLS2;
		EXPECT_EQ(fault_of(do_rdmsr, &m, 0), VEC_GP);
		test_skip("not supported: secondary controls");
	}
	check_ctl("proc2", vmx_caps.proc2);
	EXPECTF(vmx_caps.proc2.allowed0 == 0, "secondary controls have no default1 bits: 0x%x", vmx_caps.proc2.allowed0);
	/* unrestricted guest needs EPT (SDM 3C §26.2.1.1), so a CPU offering it offers EPT */
	if (vmx_caps.proc2.allowed1 & SEC_UNRESTRICTED)
		EXPECT(vmx_caps.proc2.allowed1 & SEC_EPT);
}

TEST(ctls_exit)
{
	need_vmx();
	check_ctl("exit", vmx_caps.exit_legacy);
	check_ctl("true exit", vmx_caps.exit);
	/* default1: bits 0-8, 10, 11, 13, 14, 16, 17 (SDM 3C A.4) */
	EXPECTF((vmx_caps.exit_legacy.allowed0 & 0x00036DFF) == 0x00036DFF, "exit default1 bits 0x%x",
		vmx_caps.exit_legacy.allowed0);
	EXPECTF(vmx_caps.exit.allowed1 & EXIT_HOST_64, "host address-space size cannot be 1");
}

TEST(ctls_entry)
{
	need_vmx();
	check_ctl("entry", vmx_caps.entry_legacy);
	check_ctl("true entry", vmx_caps.entry);
	/* default1: bits 0-8, 12 (SDM 3C A.5) */
	EXPECTF((vmx_caps.entry_legacy.allowed0 & 0x11FF) == 0x11FF, "entry default1 bits 0x%x",
		vmx_caps.entry_legacy.allowed0);
	EXPECTF(vmx_caps.entry.allowed1 & ENTRY_IA32E, "IA-32e mode guest cannot be 1");
}

TEST(ctls_true_variants)
{
	need_vmx();
	const struct vmx_caps *c = &vmx_caps;
	if (!(c->basic & BASIC_TRUE_CTLS)) {
		/* without IA32_VMX_BASIC[55] the TRUE MSRs do not exist */
		uint64_t m = MSR_VMX_TRUE_PINBASED_CTLS;
		EXPECT_EQ(fault_of(do_rdmsr, &m, 0), VEC_GP);
		test_skip("not supported: TRUE capability MSRs");
	}
	/* SDM 3C A.3-A.5: the TRUE MSRs report the same allowed-1 settings and may allow some
	 * default1 bits to be 0; every other bit's allowed-0 setting is the same. */
	struct {
		const char *n;
		struct vmx_ctl_cap t, l;
	} p[] = { { "pin", c->pin, c->pin_legacy },
		  { "proc", c->proc, c->proc_legacy },
		  { "exit", c->exit, c->exit_legacy },
		  { "entry", c->entry, c->entry_legacy } };
	for (unsigned i = 0; i < ARRAY_SIZE(p); i++) {
		EXPECTF(p[i].t.allowed1 == p[i].l.allowed1, "%s: TRUE allowed1 0x%x != 0x%x", p[i].n, p[i].t.allowed1,
			p[i].l.allowed1);
		EXPECTF((p[i].t.allowed0 & ~p[i].l.allowed0) == 0, "%s: TRUE allowed0 0x%x not within 0x%x", p[i].n,
			p[i].t.allowed0, p[i].l.allowed0);
	}
}

TEST(misc_msr)
{
	need_vmx();
	uint64_t m = vmx_caps.misc;
	EXPECTF(MISC_CR3_TARGETS(m) <= 256, "CR3-target count %lu", MISC_CR3_TARGETS(m));
	EXPECTF(MISC_MAX_MSRS(m) >= 512, "recommended MSR-list maximum %lu", MISC_MAX_MSRS(m));
	/* SDM 3C A.6: bit 5 (exits store EFER.LMA into "IA-32e mode guest") is 1 on every
	 * processor that supports unrestricted guest */
	if (vmx_has_sec(SEC_UNRESTRICTED))
		EXPECTF(m & MISC_STORE_LMA, "unrestricted guest without IA32_VMX_MISC[5]: 0x%lx", m);
	if (vmx_can1(&vmx_caps.exit, EXIT_SAVE_PREEMPT))
		EXPECTF(vmx_can1(&vmx_caps.pin, PIN_PREEMPT_TIMER), "save preemption timer without the timer");
}

TEST(cr0_fixed_msrs)
{
	need_vmx();
	uint64_t f0 = vmx_caps.cr0_fixed0, f1 = vmx_caps.cr0_fixed1;
	EXPECTF((f0 & ~f1) == 0, "CR0 fixed0 0x%lx not within fixed1 0x%lx", f0, f1);
	EXPECTF((f0 & (CR0_PE | CR0_NE | CR0_PG)) == (CR0_PE | CR0_NE | CR0_PG), "CR0_FIXED0 0x%lx lacks PE/NE/PG", f0);
	uint64_t cr0 = read_cr0();
	EXPECTF((cr0 & f0) == f0 && (cr0 & ~f1) == 0, "CR0 0x%lx in VMX operation violates the fixed bits", cr0);
}

TEST(cr4_fixed_msrs)
{
	need_vmx();
	uint64_t f0 = vmx_caps.cr4_fixed0, f1 = vmx_caps.cr4_fixed1;
	EXPECTF((f0 & ~f1) == 0, "CR4 fixed0 0x%lx not within fixed1 0x%lx", f0, f1);
	EXPECTF(f0 & CR4_VMXE, "CR4_FIXED0 0x%lx lacks VMXE", f0);
	uint64_t cr4 = read_cr4();
	EXPECTF((cr4 & f0) == f0 && (cr4 & ~f1) == 0, "CR4 0x%lx in VMX operation violates the fixed bits", cr4);
}

TEST(ept_vpid_cap_msr)
{
	need_vmx();
	if (!vmx_has_sec(SEC_EPT) && !vmx_has_sec(SEC_VPID)) {
		if (vmx_caps.proc.allowed1 & PROC_SECONDARY) {
			uint64_t m = MSR_VMX_EPT_VPID_CAP;
			EXPECT_EQ(fault_of(do_rdmsr, &m, 0), VEC_GP);
		}
		test_skip("not supported: EPT and VPID");
	}
	uint64_t c = vmx_caps.ept_vpid;
	if (vmx_has_ept()) {
		EXPECTF(c & EPTCAP_PWL4, "EPT without page-walk length 4: 0x%lx", c);
		EXPECTF(c & (EPTCAP_WB | EPTCAP_UC), "EPT paging structures neither WB nor UC: 0x%lx", c);
		if (c & EPTCAP_INVEPT)
			EXPECTF(c & (EPTCAP_INVEPT_SINGLE | EPTCAP_INVEPT_ALL), "INVEPT without any type: 0x%lx", c);
	}
	if (vmx_has_vpid())
		EXPECTF(c & VPIDCAP_INVVPID, "VPID without INVVPID: 0x%lx", c);
}

TEST(vmfunc_msr)
{
	need_vmx();
	if (!vmx_has_sec(SEC_VMFUNC))
		test_skip("not supported: VM functions");
	/* EPTP switching (VM function 0) works on EPTPs: it needs EPT */
	if (vmx_caps.vmfunc & 1)
		EXPECTF(vmx_has_ept(), "EPTP switching without EPT: IA32_VMX_VMFUNC 0x%lx", vmx_caps.vmfunc);
}

/* ---- VMXON ---- */

/* Leave VMX operation and set CR0/CR4 as VMXON needs them; returns the old values. */
struct cr_save {
	uint64_t cr0, cr4;
};
static struct cr_save prep_vmxon(void)
{
	vmx_off();
	struct cr_save s = { read_cr0(), read_cr4() };
	write_cr0((s.cr0 | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1);
	write_cr4((s.cr4 | vmx_caps.cr4_fixed0 | CR4_VMXE) & vmx_caps.cr4_fixed1);
	return s;
}
static void unprep_vmxon(struct cr_save s)
{
	write_cr4(s.cr4);
	write_cr0(s.cr0);
}
static uint64_t fresh_region(uint32_t rev)
{
	uint32_t *p = vmx_page_alloc();
	p[0] = rev;
	return (uint64_t)p;
}

TEST(vmxon_cr4_vmxe_clear_ud)
{
	need_vmx();
	vmx_off();
	uint64_t pa = fresh_region(vmx_caps.revision);
	int v = fault_of(k_vmxon, &pa, 0);
	if (v == -1)
		vmxoff();
	EXPECT_EQ(v, VEC_UD);
}

TEST(vmxon_cpl3_gp)
{
	need_vmx();
	struct cr_save s = prep_vmxon();
	struct frame f;
	user_run((void (*)(void))u_vmxon, 0, &f);
	unprep_vmxon(s);
	EXPECTF(f.vector == VEC_GP && f.error == 0, "vector %lu error 0x%lx", f.vector, f.error);
}

TEST(vmxon_cr0_fixed_gp)
{
	need_vmx();
	if (!(vmx_caps.cr0_fixed0 & CR0_NE))
		test_skip("not supported: CR0.NE not fixed to 1");
	struct cr_save s = prep_vmxon();
	write_cr0(read_cr0() & ~CR0_NE);
	uint64_t pa = fresh_region(vmx_caps.revision), err = ~0ull;
	int v = fault_of(k_vmxon, &pa, &err);
	if (v == -1)
		vmxoff();
	unprep_vmxon(s);
	EXPECTF(v == VEC_GP && err == 0, "VMXON with CR0.NE=0: vector %d error 0x%lx", v, err);
}

TEST(vmxon_cr4_fixed_gp)
{
	need_vmx();
	/* Any CR4 bit that can be set but is 0 in IA32_VMX_CR4_FIXED1 makes VMXON #GP(0). */
	int tested = 0;
	for (int bit = 0; bit < 32; bit++) {
		uint64_t b = 1ull << bit;
		if ((vmx_caps.cr4_fixed1 & b) || bit == 17 /* PCIDE needs CR3[11:0]=0: fine, but skip */)
			continue;
		struct cr_save s = prep_vmxon();
		uint64_t v4 = read_cr4() | b;
		if (fault_of(do_write_cr4, &v4, 0) != -1) {
			unprep_vmxon(s);
			continue;
		}
		tested++;
		uint64_t pa = fresh_region(vmx_caps.revision), err = ~0ull;
		int v = fault_of(k_vmxon, &pa, &err);
		if (v == -1)
			vmxoff();
		write_cr4(read_cr4() & ~b);
		unprep_vmxon(s);
		EXPECTF(v == VEC_GP && err == 0, "VMXON with CR4 bit %d set: vector %d", bit, v);
	}
	(void)tested;
}

TEST(vmxon_bad_revision)
{
	need_vmx();
	struct cr_save s = prep_vmxon();
	int r = vmxon(fresh_region(vmx_caps.revision ^ 1));
	if (r == VMX_OK)
		vmxoff();
	unprep_vmxon(s);
	EXPECT_RESULT(r, VMX_FAIL_INVALID);
}

TEST(vmxon_misaligned)
{
	need_vmx();
	struct cr_save s = prep_vmxon();
	int r = vmxon(fresh_region(vmx_caps.revision) + 0x800);
	if (r == VMX_OK)
		vmxoff();
	unprep_vmxon(s);
	EXPECT_RESULT(r, VMX_FAIL_INVALID);
}

TEST(vmxon_beyond_physical_width)
{
	need_vmx();
	struct cr_save s = prep_vmxon();
	int r = vmxon(vmx_unbacked_pa());
	if (r == VMX_OK)
		vmxoff();
	unprep_vmxon(s);
	EXPECT_RESULT(r, VMX_FAIL_INVALID);
}

TEST(vmxon_succeeds_no_current_vmcs)
{
	need_vmx();
	struct cr_save s = prep_vmxon();
	int r = vmxon(fresh_region(vmx_caps.revision));
	uint64_t cur = 0;
	int r2 = vmptrst(&cur);
	if (r == VMX_OK)
		vmxoff();
	unprep_vmxon(s);
	EXPECT_RESULT(r, VMX_OK);
	EXPECT_RESULT(r2, VMX_OK);
	EXPECT_EQ(cur, ~0ull);
}

static void clear_current(void)
{
	uint64_t cur = 0;
	ASSERT(vmptrst(&cur) == VMX_OK);
	if (cur != ~0ull)
		ASSERT(vmclear(cur) == VMX_OK);
}

TEST(vmxon_in_root_no_current_vmcs)
{
	need_vmx();
	clear_current();
	EXPECT_RESULT(vmxon(fresh_region(vmx_caps.revision)), VMX_FAIL_INVALID);
}

TEST(vmxon_in_root_failvalid_15)
{
	need_vmx();
	uint64_t v = vmx_new_vmcs();
	ASSERT(vmptrld(v) == VMX_OK);
	EXPECT_RESULT(vmxon(fresh_region(vmx_caps.revision)), VMERR_VMXON_IN_ROOT);
	EXPECT_EQ(vmr(VMCS_INSN_ERROR), VMERR_VMXON_IN_ROOT);
}

TEST(cr4_vmxe_clear_in_vmx_gp)
{
	need_vmx();
	uint64_t v = read_cr4() & ~CR4_VMXE, err = ~0ull;
	int vec = fault_of(do_write_cr4, &v, &err);
	EXPECTF(vec == VEC_GP && err == 0, "clearing CR4.VMXE in VMX operation: vector %d", vec);
	write_cr4(read_cr4() | CR4_VMXE);
}

TEST(cr0_ne_clear_in_vmx_gp)
{
	need_vmx();
	if (!(vmx_caps.cr0_fixed0 & CR0_NE))
		test_skip("not supported: CR0.NE not fixed to 1");
	uint64_t v = read_cr0() & ~CR0_NE, err = ~0ull;
	int vec = fault_of(do_write_cr0, &v, &err);
	EXPECTF(vec == VEC_GP && err == 0, "clearing CR0.NE in VMX operation: vector %d", vec);
	write_cr0(read_cr0() | CR0_NE);
}

TEST(vmxoff_succeeds)
{
	need_vmx();
	EXPECT_RESULT(vmx_off(), VMX_OK);
	/* outside VMX operation CR4.VMXE may be cleared again */
	EXPECT(!(read_cr4() & CR4_VMXE));
}

/* ---- #UD outside VMX operation, #GP at CPL 3 ---- */

struct insn_case {
	const char *name;
	void (*k)(void *);
	void (*u)(void *);
	int need; /* 0, 1 = INVEPT, 2 = INVVPID */
};
static const struct insn_case insns[] = {
	{ "vmxoff", k_vmxoff, u_vmxoff, 0 },	 { "vmclear", k_vmclear, u_vmclear, 0 },
	{ "vmptrld", k_vmptrld, u_vmptrld, 0 },	 { "vmptrst", k_vmptrst, u_vmptrst, 0 },
	{ "vmread", k_vmread, u_vmread, 0 },	 { "vmwrite", k_vmwrite, u_vmwrite, 0 },
	{ "vmlaunch", k_vmlaunch, u_vmlaunch, 0 }, { "vmresume", k_vmresume, u_vmresume, 0 },
	{ "invept", k_invept, u_invept, 1 },	 { "invvpid", k_invvpid, u_invvpid, 2 },
	{ "vmcall", k_vmcall, u_vmcall, 0 },
};
static const struct insn_case *cur_insn;

static bool insn_supported(const struct insn_case *c)
{
	if (c->need == 1)
		return vmx_has_ept() && (vmx_caps.ept_vpid & EPTCAP_INVEPT);
	if (c->need == 2)
		return vmx_has_vpid() && (vmx_caps.ept_vpid & VPIDCAP_INVVPID);
	return true;
}

static void ud_outside_case(void)
{
	need_vmx();
	vmx_off();
	struct vmx_inv_desc d = { 0, 0 };
	/* with CR4.VMXE = 0 and with CR4.VMXE = 1: both are "not in VMX operation" */
	for (int vmxe = 0; vmxe < 2; vmxe++) {
		uint64_t cr4 = read_cr4();
		if (vmxe)
			write_cr4((cr4 | CR4_VMXE) & vmx_caps.cr4_fixed1);
		int v = fault_of(cur_insn->k, &d, 0);
		write_cr4(cr4);
		EXPECTF(v == VEC_UD, "%s outside VMX operation (CR4.VMXE=%d): vector %d", cur_insn->name, vmxe, v);
	}
}

static void gp_cpl3_case(void)
{
	need_vmx();
	if (!insn_supported(cur_insn))
		test_skip("not supported");
	uint64_t v = vmx_new_vmcs();
	ASSERT(vmptrld(v) == VMX_OK);
	struct frame f;
	user_run((void (*)(void))cur_insn->u, 0, &f);
	EXPECTF(f.vector == VEC_GP && f.error == 0, "%s at CPL 3: vector %lu error 0x%lx", cur_insn->name, f.vector, f.error);
}

/* In compatibility mode (IA32_EFER.LMA = 1, CS.L = 0) the VMX instructions are #UD (SDM 3C
 * chapter 30, the first check of each). The snippet far-returns into the 32-bit code segment,
 * runs the instruction, and far-jumps back if it did not fault. */
#define COMPAT_SNIPPET(name, insn)                                                              \
	SNIPPET(name, "push %rbx\n mov %rsp, %rbx\n pushq $0x38\n lea 1f(%rip), %rax\n pushq %rax\n" \
		      "lretq\n .code32\n 1: xor %eax, %eax\n lea -16(%esp), %edx\n" insn "\n"       \
		      "ljmp $0x08, $2f\n .code64\n 2: mov %rbx, %rsp\n pop %rbx\n ret")
COMPAT_SNIPPET(c_vmread, "vmread %eax, %ecx")
COMPAT_SNIPPET(c_vmwrite, "vmwrite %ecx, %eax")
COMPAT_SNIPPET(c_vmptrst, "vmptrst (%edx)")
COMPAT_SNIPPET(c_vmlaunch, "vmlaunch")
COMPAT_SNIPPET(c_vmcall, "vmcall")
COMPAT_SNIPPET(c_vmxoff, "vmxoff")
COMPAT_SNIPPET(c_nop, "nop")

static void (*cur_compat)(void *);
static void compat_case(void)
{
	need_vmx();
	uint64_t v = vmx_new_vmcs();
	ASSERT(vmptrld(v) == VMX_OK);
	/* the trip through compatibility mode itself does not fault */
	ASSERT(fault_of(c_nop, 0, 0) == -1);
	int vec = fault_of(cur_compat, 0, 0);
	EXPECTF(vec == VEC_UD, "vector %d, want #UD", vec);
}

/* ---- VMCLEAR / VMPTRLD / VMPTRST ---- */

static uint64_t load_fresh(void)
{
	uint64_t v = vmx_new_vmcs();
	ASSERT(vmptrld(v) == VMX_OK);
	return v;
}

TEST(vmclear_misaligned_failvalid_2)
{
	need_vmx();
	uint64_t v = load_fresh();
	EXPECT_RESULT(vmclear(v + 0x10), VMERR_VMCLEAR_BAD_ADDR);
}

TEST(vmclear_misaligned_no_current_failinvalid)
{
	need_vmx();
	clear_current();
	EXPECT_RESULT(vmclear(vmx_new_vmcs() + 0x10), VMX_FAIL_INVALID);
}

TEST(vmclear_beyond_physical_width)
{
	need_vmx();
	load_fresh();
	EXPECT_RESULT(vmclear(vmx_unbacked_pa()), VMERR_VMCLEAR_BAD_ADDR);
}

TEST(vmclear_vmxon_pointer)
{
	need_vmx();
	load_fresh();
	EXPECT_RESULT(vmclear(vmx_vmxon_region()), VMERR_VMCLEAR_VMXON_PTR);
}

TEST(vmptrld_misaligned)
{
	need_vmx();
	load_fresh();
	EXPECT_RESULT(vmptrld(vmx_new_vmcs() + 8), VMERR_VMPTRLD_BAD_ADDR);
}

TEST(vmptrld_beyond_physical_width)
{
	need_vmx();
	load_fresh();
	EXPECT_RESULT(vmptrld(vmx_unbacked_pa()), VMERR_VMPTRLD_BAD_ADDR);
}

TEST(vmptrld_vmxon_pointer)
{
	need_vmx();
	load_fresh();
	EXPECT_RESULT(vmptrld(vmx_vmxon_region()), VMERR_VMPTRLD_VMXON_PTR);
}

TEST(vmptrld_wrong_revision)
{
	need_vmx();
	load_fresh();
	EXPECT_RESULT(vmptrld(fresh_region(vmx_caps.revision ^ 0x10)), VMERR_VMPTRLD_BAD_REVISION);
}

TEST(vmptrld_wrong_revision_no_current)
{
	need_vmx();
	clear_current();
	EXPECT_RESULT(vmptrld(fresh_region(vmx_caps.revision ^ 0x10)), VMX_FAIL_INVALID);
}

TEST(vmptrld_shadow_indicator)
{
	need_vmx();
	load_fresh();
	uint64_t r = fresh_region(vmx_caps.revision | 0x80000000u);
	int res = vmptrld(r);
	if (vmx_has_sec(SEC_SHADOW_VMCS)) {
		/* allowed when VMCS shadowing is supported (SDM 3C §30.3 VMPTRLD) */
		EXPECT_RESULT(res, VMX_OK);
	} else {
		EXPECT_RESULT(res, VMERR_VMPTRLD_BAD_REVISION);
	}
}

TEST(vmptrld_failure_keeps_current)
{
	need_vmx();
	uint64_t v = load_fresh();
	ASSERT(vmptrld(v + 8) != VMX_OK);
	uint64_t cur = 0;
	EXPECT_RESULT(vmptrst(&cur), VMX_OK);
	EXPECT_EQ(cur, v);
}

TEST(vmptrst_current_pointer)
{
	need_vmx();
	uint64_t v = load_fresh(), cur = 0;
	EXPECT_RESULT(vmptrst(&cur), VMX_OK);
	EXPECT_EQ(cur, v);
}

TEST(vmclear_current_invalidates_pointer)
{
	need_vmx();
	uint64_t v = load_fresh(), cur = 0, val = 0;
	EXPECT_RESULT(vmclear(v), VMX_OK);
	EXPECT_RESULT(vmptrst(&cur), VMX_OK);
	EXPECT_EQ(cur, ~0ull);
	EXPECT_RESULT(vmread(GUEST_RIP, &val), VMX_FAIL_INVALID);
	EXPECT_RESULT(vmwrite(GUEST_RIP, 0), VMX_FAIL_INVALID);
}

TEST(vmclear_other_keeps_current)
{
	need_vmx();
	uint64_t other = vmx_new_vmcs();
	uint64_t v = load_fresh(), cur = 0;
	EXPECT_RESULT(vmclear(other), VMX_OK);
	EXPECT_RESULT(vmptrst(&cur), VMX_OK);
	EXPECT_EQ(cur, v);
}

TEST(vmcs_contents_survive_vmclear)
{
	need_vmx();
	uint64_t a = load_fresh();
	vmw(GUEST_RIP, 0x123456789ull);
	vmw(VMCS_TSC_OFFSET, 0xFEDCBA9876543210ull);
	ASSERT(vmclear(a) == VMX_OK);
	load_fresh(); /* something else in between */
	ASSERT(vmptrld(a) == VMX_OK);
	EXPECT_EQ(vmr(GUEST_RIP), 0x123456789ull);
	EXPECT_EQ(vmr(VMCS_TSC_OFFSET), 0xFEDCBA9876543210ull);
}

TEST(two_vmcs_independent)
{
	need_vmx();
	uint64_t a = load_fresh();
	vmw(GUEST_RSP, 0xAAAA);
	uint64_t b = load_fresh();
	vmw(GUEST_RSP, 0xBBBB);
	ASSERT(vmptrld(a) == VMX_OK);
	EXPECT_EQ(vmr(GUEST_RSP), 0xAAAA);
	ASSERT(vmptrld(b) == VMX_OK);
	EXPECT_EQ(vmr(GUEST_RSP), 0xBBBB);
}

TEST(vmcall_in_root_failvalid_1)
{
	/* SDM 3C §30.3 VMCALL: in VMX root operation with IA32_SMM_MONITOR_CTL[0] = 0 (no
	 * dual-monitor treatment), VMfail(1) comes before the current-VMCS and launch-state
	 * checks. A launched current VMCS is used so that an implementation that checks the
	 * launch state first reports error 19 instead. (A clear one would ask for the SMM
	 * monitor activation path, which Bochs 2.7 does not implement: it panics.) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmx_vm_run(&vm, &e);
	ASSERT_EXIT(e, EXIT_VMCALL);
	/* IA32_SMM_MONITOR_CTL exists on every processor with VMX (SDM 4, MSR 9BH) */
	uint64_t smm = 0x9B;
	int v = fault_of(do_rdmsr, &smm, 0);
	EXPECTF(v == -1, "RDMSR IA32_SMM_MONITOR_CTL: vector %d", v);
	EXPECTF(v != -1 || !(smm & 1), "IA32_SMM_MONITOR_CTL[0] is set");
	EXPECT_RESULT(vmcall_root(), VMERR_VMCALL_ROOT);
}

TEST(vmcall_in_root_no_current_failinvalid)
{
	need_vmx();
	clear_current();
	EXPECT_RESULT(vmcall_root(), VMX_FAIL_INVALID);
}

/* ---- launch state ---- */

TEST(vmlaunch_no_current_vmcs)
{
	need_vmx();
	clear_current();
	struct vmx_vm vm;
	memset(&vm, 0, sizeof(vm));
	struct vmx_exit e;
	EXPECT_RESULT(vmx_vm_run(&vm, &e), VMX_FAIL_INVALID);
}

TEST(vmresume_no_current_vmcs)
{
	need_vmx();
	clear_current();
	struct vmx_vm vm;
	memset(&vm, 0, sizeof(vm));
	vm.launched = true;
	struct vmx_exit e;
	EXPECT_RESULT(vmx_vm_run(&vm, &e), VMX_FAIL_INVALID);
}

TEST(vmlaunch_then_vmresume)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT(vm.launched);
	vmx_skip_insn(); /* past the VMCALL: the stub loops back to it */
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

TEST(vmlaunch_launched_vmcs_failvalid_4)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmx_vm_run(&vm, &e);
	ASSERT_EXIT(e, EXIT_VMCALL);
	vm.launched = false; /* force VMLAUNCH */
	EXPECT_RESULT(vmx_vm_run(&vm, &e), VMERR_VMLAUNCH_NOT_CLEAR);
}

TEST(vmresume_clear_vmcs_failvalid_5)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vm.launched = true; /* force VMRESUME */
	EXPECT_RESULT(vmx_vm_run(&vm, &e), VMERR_VMRESUME_NOT_LAUNCHED);
}

TEST(vmclear_makes_launched_vmcs_clear)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmx_vm_run(&vm, &e);
	ASSERT_EXIT(e, EXIT_VMCALL);
	ASSERT(vmclear(vm.vmcs) == VMX_OK);
	ASSERT(vmptrld(vm.vmcs) == VMX_OK);
	EXPECT_RESULT(vmx_vm_run(&vm, &e), VMERR_VMRESUME_NOT_LAUNCHED);
	vm.launched = false;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

TEST(vmlaunch_after_mov_ss_failvalid_26)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	int r = vmx_vm_launch_after_mov_ss(&vm, &e);
	EXPECTF(r == VMERR_ENTRY_MOV_SS, "VMLAUNCH after MOV SS: result %d (exit reason 0x%x)", r, e.reason);
}

TEST(entry_failure_keeps_vmcs_clear)
{
	/* A VM-entry failure while loading guest state does not launch the VMCS (SDM 3C §26.8) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmw(GUEST_RFLAGS, 0); /* bit 1 must be 1 */
	vmx_vm_run(&vm, &e);
	ASSERT_EXIT(e, EXIT_REASON_ENTRY_FAIL | EXIT_INVALID_GUEST);
	vm.launched = true;
	EXPECT_RESULT(vmx_vm_run(&vm, &e), VMERR_VMRESUME_NOT_LAUNCHED);
	vm.launched = false;
	vmw(GUEST_RFLAGS, RFLAGS_FIXED);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

TEST(vmread_vmwrite_failvalid_no_current)
{
	need_vmx();
	clear_current();
	uint64_t v;
	EXPECT_RESULT(vmread(GUEST_RIP, &v), VMX_FAIL_INVALID);
	EXPECT_RESULT(vmwrite(GUEST_RIP, 0), VMX_FAIL_INVALID);
}

void vmx_basic_tests(void)
{
	boot_feature_control = vmx_caps.vmx ? rdmsr(MSR_IA32_FEATURE_CONTROL) : 0;
	RUN(cpuid_vmx);
	RUN(feature_control);
	RUN(basic_msr);
	RUN(ctls_pinbased);
	RUN(ctls_procbased);
	RUN(ctls_procbased2);
	RUN(ctls_exit);
	RUN(ctls_entry);
	RUN(ctls_true_variants);
	RUN(misc_msr);
	RUN(cr0_fixed_msrs);
	RUN(cr4_fixed_msrs);
	RUN(ept_vpid_cap_msr);
	RUN(vmfunc_msr);

	RUN(vmxon_cr4_vmxe_clear_ud);
	RUN(vmxon_cpl3_gp);
	RUN(vmxon_cr0_fixed_gp);
	RUN(vmxon_cr4_fixed_gp);
	RUN(vmxon_bad_revision);
	RUN(vmxon_misaligned);
	RUN(vmxon_beyond_physical_width);
	RUN(vmxon_succeeds_no_current_vmcs);
	RUN(vmxon_in_root_no_current_vmcs);
	RUN(vmxon_in_root_failvalid_15);
	RUN(cr4_vmxe_clear_in_vmx_gp);
	RUN(cr0_ne_clear_in_vmx_gp);
	RUN(vmxoff_succeeds);

	char name[48];
	for (unsigned i = 0; i < ARRAY_SIZE(insns); i++) {
		cur_insn = &insns[i];
		snprintf(name, sizeof(name), "%s_outside_vmx_ud", insns[i].name);
		vt_run(name, ud_outside_case);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(insns); i++) {
		cur_insn = &insns[i];
		snprintf(name, sizeof(name), "%s_cpl3_gp", insns[i].name);
		vt_run(name, gp_cpl3_case);
	}

	static const struct {
		const char *name;
		void (*fn)(void *);
	} compat[] = { { "vmread_compat_mode_ud", c_vmread },	  { "vmwrite_compat_mode_ud", c_vmwrite },
		       { "vmptrst_compat_mode_ud", c_vmptrst },	  { "vmlaunch_compat_mode_ud", c_vmlaunch },
		       { "vmcall_compat_mode_ud", c_vmcall },	  { "vmxoff_compat_mode_ud", c_vmxoff } };
	for (unsigned i = 0; i < ARRAY_SIZE(compat); i++) {
		cur_compat = compat[i].fn;
		vt_run(compat[i].name, compat_case);
	}

	RUN(vmclear_misaligned_failvalid_2);
	RUN(vmclear_misaligned_no_current_failinvalid);
	RUN(vmclear_beyond_physical_width);
	RUN(vmclear_vmxon_pointer);
	RUN(vmptrld_misaligned);
	RUN(vmptrld_beyond_physical_width);
	RUN(vmptrld_vmxon_pointer);
	RUN(vmptrld_wrong_revision);
	RUN(vmptrld_wrong_revision_no_current);
	RUN(vmptrld_shadow_indicator);
	RUN(vmptrld_failure_keeps_current);
	RUN(vmptrst_current_pointer);
	RUN(vmclear_current_invalidates_pointer);
	RUN(vmclear_other_keeps_current);
	RUN(vmcs_contents_survive_vmclear);
	RUN(two_vmcs_independent);
	RUN(vmcall_in_root_failvalid_1);
	RUN(vmcall_in_root_no_current_failinvalid);
	RUN(vmread_vmwrite_failvalid_no_current);

	RUN(vmlaunch_no_current_vmcs);
	RUN(vmresume_no_current_vmcs);
	RUN(vmlaunch_then_vmresume);
	RUN(vmlaunch_launched_vmcs_failvalid_4);
	RUN(vmresume_clear_vmcs_failvalid_5);
	RUN(vmclear_makes_launched_vmcs_clear);
	RUN(vmlaunch_after_mov_ss_failvalid_26);
	RUN(entry_failure_keeps_vmcs_clear);
}
