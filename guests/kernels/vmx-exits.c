/* VM exits caused by guest instructions and exceptions (SDM 3C §25.1-25.2, chapter 27): exit
 * reason, exit qualification, guest RIP and instruction length (and instruction information
 * where the SDM defines it) for each, and that the guest continues after the host skips the
 * instruction. The CR0/CR4 guest/host masks and read shadows, the CR3-target values, the I/O
 * and MSR bitmaps and the exception bitmap with the page-fault error-code mask/match. */
#include "vmx-tests.h"

/* A guest function: setup, then the instruction under test at g_NAME_at ... g_NAME_end, then
 * return (to the VMCALL of vmx_guest_return). */
#define GUEST_INSN(name, setup, insn)                                                             \
	SNIPPET(g_##name, setup "\n" ASM_LABEL(g_##name##_at) insn "\n" ASM_LABEL(g_##name##_end) "ret") \
	LABEL(g_##name##_at);                                                                     \
	LABEL(g_##name##_end);

static uint64_t guest_scratch[4] ALIGNED(16) __attribute__((used));
static uint8_t io_buf[16] = "turtles";

/* Run until the first exit and check it is `reason` at [at, end). */
static void run_expect(struct vmx_vm *vm, struct vmx_exit *e, uint32_t reason, const char *at, const char *end)
{
	vmx_vm_run(vm, e);
	EXPECT_EXIT(*e, reason);
	EXPECT_AT(*e, at, end);
}

/* Skip the exiting instruction, resume, expect the guest function to return. */
static void finish(struct vmx_vm *vm)
{
	struct vmx_exit e;
	vmx_skip_insn();
	vmx_vm_run(vm, &e);
	EXPECT_GUEST_DONE(*vm, e);
}

#define SIMPLE_EXIT(tname, gname, reason)                            \
	TEST(tname)                                                  \
	{                                                            \
		struct vmx_vm vm;                                    \
		struct vmx_exit e;                                   \
		vm_setup(&vm, g_##gname);                            \
		run_expect(&vm, &e, reason, g_##gname##_at, g_##gname##_end); \
		finish(&vm);                                         \
	}

/* ---- unconditional exits ---- */

GUEST_INSN(cpuid, "xor %eax, %eax\n xor %ecx, %ecx", "cpuid")
TEST(exit_cpuid)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cpuid);
	run_expect(&vm, &e, EXIT_CPUID, g_cpuid_at, g_cpuid_end);
	EXPECT_EQ(e.qual, 0);
	EXPECT_EQ(vm.regs.rax, 0);
	finish(&vm);
}

GUEST_INSN(invd, "", "invd")
SIMPLE_EXIT(exit_invd, invd, EXIT_INVD)

GUEST_INSN(vmcall, "xor %eax, %eax", "vmcall")
SIMPLE_EXIT(exit_vmcall, vmcall, EXIT_VMCALL)

GUEST_INSN(xsetbv, "xor %ecx, %ecx\n xgetbv", "xsetbv")
TEST(exit_xsetbv)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!((cpuid(1, 0).ecx >> 26) & 1))
		test_skip("not supported: XSAVE");
	vm_setup(&vm, g_xsetbv);
	if (!(vmx_caps.cr4_fixed1 & CR4_OSXSAVE))
		test_skip("not supported: CR4.OSXSAVE in VMX operation");
	vmw_or(GUEST_CR4, CR4_OSXSAVE);
	run_expect(&vm, &e, EXIT_XSETBV, g_xsetbv_at, g_xsetbv_end);
	EXPECT_EQ(vm.regs.rcx, 0);
	finish(&vm);
}

GUEST_INSN(triple, "", "ud2")
TEST(exit_triple_fault)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_triple);
	vmw(GUEST_IDTR_LIMIT, 0); /* #UD -> #GP -> #DF -> shutdown */
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_TRIPLE_FAULT);
}

/* VMX instructions in VMX non-root operation always exit (SDM 3C §25.1.2) */
GUEST_INSN(vmxon, "lea guest_scratch(%rip), %rax", "vmxon (%rax)")
GUEST_INSN(vmxoff, "", "vmxoff")
GUEST_INSN(vmclear, "lea guest_scratch(%rip), %rax", "vmclear (%rax)")
GUEST_INSN(vmptrld, "lea guest_scratch(%rip), %rax", "vmptrld (%rax)")
GUEST_INSN(vmptrst, "lea guest_scratch(%rip), %rax", "vmptrst (%rax)")
GUEST_INSN(vmread, "mov $0x681E, %eax", "vmread %rax, %rbx")
GUEST_INSN(vmwrite, "mov $0x681C, %ebx", "vmwrite %rax, %rbx")
GUEST_INSN(vmlaunch, "", "vmlaunch")
GUEST_INSN(vmresume, "", "vmresume")
GUEST_INSN(invept, "lea guest_scratch(%rip), %rax\n mov $2, %ecx", "invept (%rax), %rcx")
GUEST_INSN(invvpid, "lea guest_scratch(%rip), %rax\n mov $2, %ecx", "invvpid (%rax), %rcx")
SIMPLE_EXIT(exit_vmxon, vmxon, EXIT_VMXON)
SIMPLE_EXIT(exit_vmxoff, vmxoff, EXIT_VMXOFF)
SIMPLE_EXIT(exit_vmclear, vmclear, EXIT_VMCLEAR)
SIMPLE_EXIT(exit_vmptrld, vmptrld, EXIT_VMPTRLD)
SIMPLE_EXIT(exit_vmptrst, vmptrst, EXIT_VMPTRST)
SIMPLE_EXIT(exit_vmlaunch, vmlaunch, EXIT_VMLAUNCH)
SIMPLE_EXIT(exit_vmresume, vmresume, EXIT_VMRESUME)

TEST(exit_vmread)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_vmread);
	run_expect(&vm, &e, EXIT_VMREAD, g_vmread_at, g_vmread_end);
	/* instruction information (SDM 3C Table 27-14): reg2 = RAX (encoding), reg1 = RBX, register form */
	EXPECTF(((e.insn_info >> 28) & 0xF) == 0 && ((e.insn_info >> 3) & 0xF) == 3 && (e.insn_info & (1u << 10)),
		"instruction information 0x%x", e.insn_info);
	finish(&vm);
}

TEST(exit_vmwrite)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_vmwrite);
	run_expect(&vm, &e, EXIT_VMWRITE, g_vmwrite_at, g_vmwrite_end);
	/* reg2 = RBX (the encoding), reg1 = RAX (the source), register form */
	EXPECTF(((e.insn_info >> 28) & 0xF) == 3 && ((e.insn_info >> 3) & 0xF) == 0 && (e.insn_info & (1u << 10)),
		"instruction information 0x%x", e.insn_info);
	finish(&vm);
}

TEST(exit_invept)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!vmx_caps.vmx || !vmx_has_ept() || !(vmx_caps.ept_vpid & EPTCAP_INVEPT))
		test_skip("not supported: INVEPT");
	vm_setup(&vm, g_invept);
	run_expect(&vm, &e, EXIT_INVEPT, g_invept_at, g_invept_end);
	/* reg2 = RCX (the type), memory operand with base RAX, no index */
	EXPECTF(((e.insn_info >> 28) & 0xF) == 1 && !(e.insn_info & (1u << 10)) && ((e.insn_info >> 23) & 0x1F) == 0 &&
			(e.insn_info & (1u << 22)),
		"instruction information 0x%x", e.insn_info);
	finish(&vm);
}

TEST(exit_invvpid)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!vmx_caps.vmx || !vmx_has_vpid() || !(vmx_caps.ept_vpid & VPIDCAP_INVVPID))
		test_skip("not supported: INVVPID");
	vm_setup(&vm, g_invvpid);
	run_expect(&vm, &e, EXIT_INVVPID, g_invvpid_at, g_invvpid_end);
	EXPECTF(((e.insn_info >> 28) & 0xF) == 1, "instruction information 0x%x", e.insn_info);
	finish(&vm);
}

/* ---- exits controlled by the processor-based controls ---- */

GUEST_INSN(hlt, "", "hlt")
TEST(exit_hlt)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_hlt);
	arm_watchdog();
	run_expect(&vm, &e, EXIT_HLT, g_hlt_at, g_hlt_end);
	finish(&vm);
}

GUEST_INSN(invlpg, "mov $0x123456789000, %rax", "invlpg (%rax)")
TEST(exit_invlpg)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_invlpg);
	if (!vmx_set_proc(PROC_INVLPG_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_INVLPG, g_invlpg_at, g_invlpg_end);
	EXPECT_EQ(e.qual, 0x123456789000ull); /* the linear-address operand */
	finish(&vm);
}

TEST(invlpg_no_exit_when_clear)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_invlpg);
	if (!vmx_can0(&vmx_caps.proc, PROC_INVLPG_EXIT))
		test_skip("not supported: INVLPG exiting cannot be 0");
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

GUEST_INSN(rdtsc, "", "rdtsc")
TEST(exit_rdtsc)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdtsc);
	if (!vmx_set_proc(PROC_RDTSC_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_RDTSC, g_rdtsc_at, g_rdtsc_end);
	finish(&vm);
}

SNIPPET(g_rdtsc_done, "rdtsc\n vmcall\n ud2")
static void tsc_offset_case(int64_t off)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdtsc_done);
	if (!vmx_set_proc(PROC_TSC_OFFSET))
		test_skip("not supported");
	vmx_clear_proc(PROC_RDTSC_EXIT);
	vmw(VMCS_TSC_OFFSET, (uint64_t)off);
	uint64_t before = rdtsc();
	vmx_vm_run(&vm, &e);
	uint64_t after = rdtsc();
	ASSERT_EXIT(e, EXIT_VMCALL);
	uint64_t g = (vm.regs.rdx << 32) | (uint32_t)vm.regs.rax;
	EXPECTF(g - (uint64_t)off >= before && g - (uint64_t)off <= after,
		"guest TSC 0x%lx - offset 0x%lx not within host [0x%lx, 0x%lx]", g, (uint64_t)off, before, after);
}
TEST(tsc_offset_positive) { tsc_offset_case(1ll << 50); }
TEST(tsc_offset_negative)
{
	int64_t off = -(int64_t)(rdtsc() / 2);
	tsc_offset_case(off);
}

GUEST_INSN(rdtscp, "", "rdtscp")
TEST(exit_rdtscp)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!cpu_has_leaf(0x80000001) || !((cpuid(0x80000001, 0).edx >> 27) & 1))
		test_skip("not supported: RDTSCP");
	vm_setup(&vm, g_rdtscp);
	if (!vmx_set_sec(SEC_RDTSCP) || !vmx_set_proc(PROC_RDTSC_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_RDTSCP, g_rdtscp_at, g_rdtscp_end);
	finish(&vm);
}

TEST(rdtscp_ud_without_enable_rdtscp)
{
	/* with "enable RDTSCP" = 0, RDTSCP raises #UD in the guest (SDM 3C §25.3) */
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!cpu_has_leaf(0x80000001) || !((cpuid(0x80000001, 0).edx >> 27) & 1))
		test_skip("not supported: RDTSCP");
	vm_setup(&vm, g_rdtscp);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_UD);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_UD);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_rdtscp_at);
}

GUEST_INSN(rdpmc, "xor %ecx, %ecx", "rdpmc")
TEST(exit_rdpmc)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdpmc);
	if (!vmx_set_proc(PROC_RDPMC_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_RDPMC, g_rdpmc_at, g_rdpmc_end);
	finish(&vm);
}

GUEST_INSN(pause, "", "pause")
TEST(exit_pause)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_pause);
	if (!vmx_set_proc(PROC_PAUSE_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_PAUSE, g_pause_at, g_pause_end);
	finish(&vm);
}

GUEST_INSN(monitor, "lea guest_scratch(%rip), %rax\n xor %ecx, %ecx\n xor %edx, %edx", "monitor")
GUEST_INSN(mwait, "xor %eax, %eax\n xor %ecx, %ecx", "mwait")
TEST(exit_monitor)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!((cpuid(1, 0).ecx >> 3) & 1))
		test_skip("not supported: MONITOR/MWAIT");
	vm_setup(&vm, g_monitor);
	if (!vmx_set_proc(PROC_MONITOR_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_MONITOR, g_monitor_at, g_monitor_end);
	finish(&vm);
}
TEST(exit_mwait)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!((cpuid(1, 0).ecx >> 3) & 1))
		test_skip("not supported: MONITOR/MWAIT");
	vm_setup(&vm, g_mwait);
	if (!vmx_set_proc(PROC_MWAIT_EXIT))
		test_skip("not supported");
	arm_watchdog();
	run_expect(&vm, &e, EXIT_MWAIT, g_mwait_at, g_mwait_end);
	finish(&vm);
}

GUEST_INSN(wbinvd, "", "wbinvd")
TEST(exit_wbinvd)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_wbinvd);
	if (!vmx_set_sec(SEC_WBINVD_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_WBINVD, g_wbinvd_at, g_wbinvd_end);
	finish(&vm);
}

GUEST_INSN(rdrand, "", "rdrand %rbx")
TEST(exit_rdrand)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!((cpuid(1, 0).ecx >> 30) & 1))
		test_skip("not supported: RDRAND");
	vm_setup(&vm, g_rdrand);
	if (!vmx_set_sec(SEC_RDRAND_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_RDRAND, g_rdrand_at, g_rdrand_end);
	/* instruction information: destination register bits 6:3, operand size bits 12:11 (2 = 64) */
	EXPECTF(((e.insn_info >> 3) & 0xF) == 3 && ((e.insn_info >> 11) & 3) == 2, "instruction information 0x%x",
		e.insn_info);
	finish(&vm);
}

GUEST_INSN(rdseed, "", "rdseed %ecx")
TEST(exit_rdseed)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!cpu_has_leaf7_ebx(18))
		test_skip("not supported: RDSEED");
	vm_setup(&vm, g_rdseed);
	if (!vmx_set_sec(SEC_RDSEED_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_RDSEED, g_rdseed_at, g_rdseed_end);
	EXPECTF(((e.insn_info >> 3) & 0xF) == 1 && ((e.insn_info >> 11) & 3) == 1, "instruction information 0x%x",
		e.insn_info);
	finish(&vm);
}

GUEST_INSN(invpcid, "lea guest_scratch(%rip), %rax\n mov $2, %ecx", "invpcid (%rax), %rcx")
TEST(exit_invpcid)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!cpu_has_invpcid())
		test_skip("not supported: INVPCID");
	vm_setup(&vm, g_invpcid);
	if (!vmx_set_sec(SEC_INVPCID) || !vmx_set_proc(PROC_INVLPG_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_INVPCID, g_invpcid_at, g_invpcid_end);
	EXPECTF(((e.insn_info >> 28) & 0xF) == 1, "instruction information 0x%x", e.insn_info);
	finish(&vm);
}

TEST(invpcid_ud_without_enable_invpcid)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!cpu_has_invpcid())
		test_skip("not supported: INVPCID");
	vm_setup(&vm, g_invpcid);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_UD);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_UD);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_invpcid_at);
}

/* ---- control registers ---- */

SNIPPET(g_read_cr0, "mov %cr0, %rax\n vmcall\n ud2")
SNIPPET(g_read_cr4, "mov %cr4, %rax\n vmcall\n ud2")

TEST(cr0_read_returns_shadow_for_masked_bits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_read_cr0);
	uint64_t cr0 = vmr(GUEST_CR0) | CR0_TS;
	vmw(GUEST_CR0, cr0);
	vmw(VMCS_CR0_MASK, CR0_TS);
	vmw(VMCS_CR0_SHADOW, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL); /* MOV from CR0 never exits */
	EXPECT_EQ(vm.regs.rax, cr0 & ~CR0_TS);
}

GUEST_INSN(cr0_write_ts, "mov %cr0, %rax\n or $8, %rax", "mov %rax, %cr0")
TEST(cr0_write_changing_masked_bit_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr0_write_ts);
	vmw(VMCS_CR0_MASK, CR0_TS);
	vmw(VMCS_CR0_SHADOW, vmr(GUEST_CR0) & ~CR0_TS);
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_cr0_write_ts_at, g_cr0_write_ts_end);
	/* qualification: CR 0, access type 0 (MOV to CR), GPR 0 (RAX) */
	EXPECT_EQ(e.qual, 0);
	EXPECT(vm.regs.rax & CR0_TS);
	EXPECT(!(vmr(GUEST_CR0) & CR0_TS)); /* not written */
	finish(&vm);
}

SNIPPET(g_cr0_toggle_mp, "mov %cr0, %rax\n xor $2, %rax\n mov %rax, %cr0\n vmcall\n ud2")
TEST(cr0_write_unmasked_bits_no_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr0_toggle_mp);
	uint64_t cr0 = vmr(GUEST_CR0);
	vmw(VMCS_CR0_MASK, CR0_TS);
	vmw(VMCS_CR0_SHADOW, cr0 & ~CR0_TS);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vmr(GUEST_CR0), cr0 ^ CR0_MP);
}

SNIPPET(g_cr0_rewrite, "mov %cr0, %rax\n mov %rax, %cr0\n vmcall\n ud2")
TEST(cr0_write_masked_bit_equal_to_shadow_keeps_host_value)
{
	/* TS is host-owned; the shadow says 1, the real value is 0. The guest writes back what it
	 * read (TS = 1 = shadow): no exit, and the masked bit keeps its real value (SDM 3C §25.3). */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr0_rewrite);
	uint64_t cr0 = vmr(GUEST_CR0) & ~CR0_TS;
	vmw(GUEST_CR0, cr0);
	vmw(VMCS_CR0_MASK, CR0_TS);
	vmw(VMCS_CR0_SHADOW, cr0 | CR0_TS);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT(vm.regs.rax & CR0_TS);
	EXPECT_EQ(vmr(GUEST_CR0), cr0);
}

GUEST_INSN(clts, "", "clts")
TEST(clts_exits_when_shadow_ts_set)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_clts);
	vmw(VMCS_CR0_MASK, CR0_TS);
	vmw(VMCS_CR0_SHADOW, vmr(GUEST_CR0) | CR0_TS);
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_clts_at, g_clts_end);
	EXPECT_EQ(e.qual, 2u << 4); /* access type 2 = CLTS */
	finish(&vm);
}

SNIPPET(g_clts_done, "clts\n vmcall\n ud2")
TEST(clts_keeps_ts_when_shadow_ts_clear)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_clts_done);
	vmw_or(GUEST_CR0, CR0_TS);
	vmw(VMCS_CR0_MASK, CR0_TS);
	vmw(VMCS_CR0_SHADOW, vmr(GUEST_CR0) & ~CR0_TS);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT(vmr(GUEST_CR0) & CR0_TS);
}

TEST(clts_clears_ts_when_unmasked)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_clts_done);
	vmw_or(GUEST_CR0, CR0_TS);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT(!(vmr(GUEST_CR0) & CR0_TS));
}

GUEST_INSN(lmsw, "mov %cr0, %rax\n or $8, %eax", "lmsw %ax")
TEST(lmsw_exit_qualification)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_lmsw);
	vmw(VMCS_CR0_MASK, CR0_TS);
	vmw(VMCS_CR0_SHADOW, vmr(GUEST_CR0) & ~CR0_TS);
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_lmsw_at, g_lmsw_end);
	/* CR 0, access type 3 (LMSW), register operand (bit 6 = 0), source data in bits 31:16 */
	EXPECT_EQ(e.qual, (3u << 4) | ((vm.regs.rax & 0xFFFF) << 16));
	finish(&vm);
}

TEST(cr4_read_returns_shadow_for_masked_bits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_read_cr4);
	uint64_t cr4 = vmr(GUEST_CR4);
	vmw(VMCS_CR4_MASK, CR4_VMXE);
	vmw(VMCS_CR4_SHADOW, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rax, cr4 & ~CR4_VMXE);
}

GUEST_INSN(cr4_write_vmxe, "mov %cr4, %rbx\n or $0x2000, %rbx", "mov %rbx, %cr4")
TEST(cr4_write_changing_masked_bit_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr4_write_vmxe);
	vmw(VMCS_CR4_MASK, CR4_VMXE);
	vmw(VMCS_CR4_SHADOW, 0);
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_cr4_write_vmxe_at, g_cr4_write_vmxe_end);
	EXPECT_EQ(e.qual, 4 | (3u << 8)); /* CR 4, MOV to CR, RBX */
	finish(&vm);
}

SNIPPET(g_cr4_rewrite, "mov %cr4, %rax\n mov %rax, %cr4\n vmcall\n ud2")
TEST(cr4_write_equal_to_shadow_no_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr4_rewrite);
	uint64_t cr4 = vmr(GUEST_CR4);
	vmw(VMCS_CR4_MASK, CR4_VMXE);
	vmw(VMCS_CR4_SHADOW, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vmr(GUEST_CR4), cr4); /* VMXE kept its real value 1 */
}

GUEST_INSN(cr3_load, "mov %cr3, %rax", "mov %rax, %cr3")
TEST(cr3_load_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr3_load);
	vmx_clear_proc(PROC_CR3_STORE_EXIT);
	if (!vmx_set_proc(PROC_CR3_LOAD_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_cr3_load_at, g_cr3_load_end);
	EXPECT_EQ(e.qual, 3); /* CR 3, MOV to CR, RAX */
	EXPECT_EQ(vm.regs.rax, read_cr3());
	finish(&vm);
}

TEST(cr3_load_matching_target_no_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr3_load);
	if (MISC_CR3_TARGETS(vmx_caps.misc) < 1)
		test_skip("not supported: CR3-target values");
	vmx_clear_proc(PROC_CR3_STORE_EXIT);
	if (!vmx_set_proc(PROC_CR3_LOAD_EXIT))
		test_skip("not supported");
	vmw(VMCS_CR3_TARGET_COUNT, 1);
	vmw(VMCS_CR3_TARGET0, read_cr3());
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

TEST(cr3_load_target_beyond_count_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr3_load);
	if (MISC_CR3_TARGETS(vmx_caps.misc) < 2)
		test_skip("not supported: two CR3-target values");
	vmx_clear_proc(PROC_CR3_STORE_EXIT);
	if (!vmx_set_proc(PROC_CR3_LOAD_EXIT))
		test_skip("not supported");
	vmw(VMCS_CR3_TARGET_COUNT, 1);
	vmw(VMCS_CR3_TARGET0, 0x1000);
	vmw(VMCS_CR3_TARGET1, read_cr3()); /* not counted */
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_cr3_load_at, g_cr3_load_end);
	finish(&vm);
}

GUEST_INSN(cr3_store, "", "mov %cr3, %rdx")
TEST(cr3_store_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr3_store);
	if (!vmx_set_proc(PROC_CR3_STORE_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_cr3_store_at, g_cr3_store_end);
	EXPECT_EQ(e.qual, 3 | (1u << 4) | (2u << 8)); /* CR 3, MOV from CR, RDX */
	finish(&vm);
}

GUEST_INSN(cr8_load, "xor %eax, %eax", "mov %rax, %cr8")
TEST(cr8_load_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr8_load);
	if (!vmx_set_proc(PROC_CR8_LOAD_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_cr8_load_at, g_cr8_load_end);
	EXPECT_EQ(e.qual, 8);
	finish(&vm);
}

GUEST_INSN(cr8_store, "", "mov %cr8, %rcx")
TEST(cr8_store_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr8_store);
	if (!vmx_set_proc(PROC_CR8_STORE_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_CR_ACCESS, g_cr8_store_at, g_cr8_store_end);
	EXPECT_EQ(e.qual, 8 | (1u << 4) | (1u << 8));
	finish(&vm);
}

/* TPR shadow (SDM 3C §29.1): CR8 reads and writes use VTPR (virtual-APIC page offset 80H) */
SNIPPET(g_cr8_read, "mov %cr8, %rax\n vmcall\n ud2")
SNIPPET(g_cr8_write, "mov $7, %eax\n mov %rax, %cr8\n vmcall\n ud2")
GUEST_INSN(cr8_write_low, "mov $2, %eax", "mov %rax, %cr8")

static uint8_t *tpr_shadow(uint8_t vtpr, uint32_t threshold)
{
	if (!vmx_set_proc(PROC_TPR_SHADOW))
		test_skip("not supported: TPR shadow");
	vmx_clear_proc(PROC_CR8_LOAD_EXIT | PROC_CR8_STORE_EXIT);
	uint8_t *vapic = vmx_page_alloc();
	vapic[0x80] = vtpr;
	vmw(VMCS_VIRTUAL_APIC_ADDR, (uint64_t)vapic);
	vmw(VMCS_TPR_THRESHOLD, threshold);
	return vapic;
}

TEST(tpr_shadow_cr8_read)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr8_read);
	tpr_shadow(0x50, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rax, 5);
}

TEST(tpr_shadow_cr8_write)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr8_write);
	uint8_t *vapic = tpr_shadow(0x50, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vapic[0x80], 0x70);
}

TEST(tpr_below_threshold_exit)
{
	/* trap-like: after the MOV to CR8 that drops VTPR[7:4] below the threshold (SDM 3C §29.1.2) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_cr8_write_low);
	uint8_t *vapic = tpr_shadow(0x60, 5);
	if (vmx_has_sec(SEC_VINTR_DELIVERY))
		vmw_clear(VMCS_PROC2_CTLS, SEC_VINTR_DELIVERY);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_TPR_BELOW);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_cr8_write_low_end);
	EXPECT_EQ(vapic[0x80], 0x20);
}

GUEST_INSN(dr_write, "xor %eax, %eax", "mov %rax, %dr0")
TEST(mov_dr_write_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_dr_write);
	if (!vmx_set_proc(PROC_MOV_DR_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_DR_ACCESS, g_dr_write_at, g_dr_write_end);
	EXPECT_EQ(e.qual, 0); /* DR0, MOV to DR, RAX */
	finish(&vm);
}

GUEST_INSN(dr_read, "", "mov %dr7, %rdx")
TEST(mov_dr_read_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_dr_read);
	if (!vmx_set_proc(PROC_MOV_DR_EXIT))
		test_skip("not supported");
	run_expect(&vm, &e, EXIT_DR_ACCESS, g_dr_read_at, g_dr_read_end);
	EXPECT_EQ(e.qual, 7 | (1u << 4) | (2u << 8)); /* DR7, MOV from DR, RDX */
	finish(&vm);
}

/* ---- I/O ---- */

GUEST_INSN(out_imm, "mov $0x5a, %al", "outb %al, $0x80")
GUEST_INSN(in_dx_word, "mov $0x3f8, %dx", "inw %dx, %ax")
GUEST_INSN(inl_imm, "", "inl $0x84, %eax")
GUEST_INSN(rep_outsb, "lea io_buf(%rip), %rsi\n mov $3, %ecx\n mov $0x80, %dx", "rep outsb")
GUEST_INSN(inb_9000, "mov $0x9000, %dx", "inb %dx, %al")
GUEST_INSN(inw_7fff, "mov $0x7fff, %dx", "inw %dx, %ax")
GUEST_INSN(inw_ffff, "mov $0xffff, %dx", "inw %dx, %ax")

static void io_uncond(void)
{
	if (!vmx_set_proc(PROC_UNCOND_IO))
		test_skip("not supported");
}
static void io_bitmaps(void)
{
	if (!vmx_set_proc(PROC_IO_BITMAPS))
		test_skip("not supported");
}
static void io_bit(struct vmx_vm *vm, uint16_t port)
{
	uint8_t *b = port < 0x8000 ? vm->io_bitmap_a : vm->io_bitmap_b;
	b[(port & 0x7FFF) / 8] |= (uint8_t)(1u << (port % 8));
}

TEST(io_out_imm8_unconditional)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_out_imm);
	io_uncond();
	run_expect(&vm, &e, EXIT_IO, g_out_imm_at, g_out_imm_end);
	/* size 1 (0), OUT (bit 3 = 0), not string, immediate operand (bit 6), port 0x80 */
	EXPECT_EQ(e.qual, (0x80u << 16) | (1u << 6));
	finish(&vm);
}

TEST(io_in_dx_word_unconditional)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_in_dx_word);
	io_uncond();
	run_expect(&vm, &e, EXIT_IO, g_in_dx_word_at, g_in_dx_word_end);
	EXPECT_EQ(e.qual, (0x3F8u << 16) | (1u << 3) | 1); /* size 2, IN, DX */
	finish(&vm);
}

TEST(io_inl_imm_unconditional)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_inl_imm);
	io_uncond();
	run_expect(&vm, &e, EXIT_IO, g_inl_imm_at, g_inl_imm_end);
	EXPECT_EQ(e.qual, (0x84u << 16) | (1u << 6) | (1u << 3) | 3); /* size 4, IN, immediate */
	finish(&vm);
}

TEST(io_rep_outsb_string)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rep_outsb);
	io_uncond();
	run_expect(&vm, &e, EXIT_IO, g_rep_outsb_at, g_rep_outsb_end);
	EXPECT_EQ(e.qual, (0x80u << 16) | (1u << 5) | (1u << 4)); /* string, REP, OUT, DX, size 1 */
	EXPECT_EQ(e.guest_linear, (uint64_t)io_buf); /* DS:RSI */
	if (vmx_caps.basic & BASIC_INS_OUTS_INFO)
		/* instruction information: address size bits 9:7 (2 = 64-bit), segment bits 17:15 (3 = DS) */
		EXPECTF(((e.insn_info >> 7) & 7) == 2 && ((e.insn_info >> 15) & 7) == 3, "instruction information 0x%x",
			e.insn_info);
}

TEST(io_bitmap_a_bit_set_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_out_imm);
	io_bitmaps();
	io_bit(&vm, 0x80);
	run_expect(&vm, &e, EXIT_IO, g_out_imm_at, g_out_imm_end);
	EXPECT_EQ(e.qual, (0x80u << 16) | (1u << 6));
	finish(&vm);
}

TEST(io_bitmap_bit_clear_no_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_out_imm);
	io_bitmaps();
	io_bit(&vm, 0x81);
	io_bit(&vm, 0x7F);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

TEST(io_bitmap_b_bit_set_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_inb_9000);
	io_bitmaps();
	io_bit(&vm, 0x9000);
	run_expect(&vm, &e, EXIT_IO, g_inb_9000_at, g_inb_9000_end);
	EXPECT_EQ(e.qual, (0x9000u << 16) | (1u << 3));
	finish(&vm);
}

TEST(io_bitmap_access_spanning_a_and_b)
{
	/* a word at 0x7FFF touches 0x8000, whose bit is in bitmap B */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_inw_7fff);
	io_bitmaps();
	io_bit(&vm, 0x8000);
	run_expect(&vm, &e, EXIT_IO, g_inw_7fff_at, g_inw_7fff_end);
	EXPECT_EQ(e.qual, (0x7FFFu << 16) | (1u << 3) | 1);
	finish(&vm);
}

TEST(io_bitmap_wraparound_exits)
{
	/* an access wrapping from 0xFFFF to 0 exits whatever the bitmaps say (SDM 3C §25.1.3) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_inw_ffff);
	io_bitmaps();
	run_expect(&vm, &e, EXIT_IO, g_inw_ffff_at, g_inw_ffff_end);
	finish(&vm);
}

TEST(io_bitmaps_override_unconditional)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_out_imm);
	io_bitmaps();
	io_uncond();
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

/* ---- MSRs ---- */

GUEST_INSN(rdmsr_174, "mov $0x174, %ecx", "rdmsr")
GUEST_INSN(wrmsr_175, "mov $0x175, %ecx\n rdmsr", "wrmsr")
GUEST_INSN(rdmsr_hi, "mov $0xC0000102, %ecx", "rdmsr")
GUEST_INSN(wrmsr_hi, "mov $0xC0000102, %ecx\n rdmsr", "wrmsr")
GUEST_INSN(rdmsr_out, "mov $0x40000000, %ecx", "rdmsr")
SNIPPET(g_rdmsr_174_done, "mov $0x174, %ecx\n rdmsr\n vmcall\n ud2")

static void msr_bitmaps(void)
{
	if (!vmx_set_proc(PROC_MSR_BITMAPS))
		test_skip("not supported: MSR bitmaps");
}
/* SDM 3C §24.6.9: read low, read high, write low, write high; 1 KiB each */
static void msr_bit(struct vmx_vm *vm, uint32_t msr, bool write)
{
	unsigned off = (write ? 2048 : 0) + (msr >= 0xC0000000u ? 1024 : 0);
	uint32_t i = msr & 0x1FFF;
	vm->msr_bitmap[off + i / 8] |= (uint8_t)(1u << (i % 8));
}

TEST(rdmsr_bitmap_low_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_174);
	msr_bitmaps();
	msr_bit(&vm, 0x174, false);
	run_expect(&vm, &e, EXIT_RDMSR, g_rdmsr_174_at, g_rdmsr_174_end);
	EXPECT_EQ(e.qual, 0);
	EXPECT_EQ(vm.regs.rcx, 0x174);
	finish(&vm);
}

TEST(rdmsr_bitmap_clear_no_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_174_done);
	msr_bitmaps();
	msr_bit(&vm, 0x174, true); /* the write bit does not matter for RDMSR */
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ((uint32_t)vm.regs.rax, (uint32_t)rdmsr(MSR_SYSENTER_CS));
}

TEST(wrmsr_bitmap_low_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_wrmsr_175);
	msr_bitmaps();
	msr_bit(&vm, 0x175, true);
	run_expect(&vm, &e, EXIT_WRMSR, g_wrmsr_175_at, g_wrmsr_175_end);
	EXPECT_EQ(vm.regs.rcx, 0x175);
	finish(&vm);
}

TEST(rdmsr_bitmap_high_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_hi);
	msr_bitmaps();
	msr_bit(&vm, 0xC0000102, false);
	run_expect(&vm, &e, EXIT_RDMSR, g_rdmsr_hi_at, g_rdmsr_hi_end);
	finish(&vm);
}

TEST(wrmsr_bitmap_high_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_wrmsr_hi);
	msr_bitmaps();
	msr_bit(&vm, 0xC0000102, true);
	run_expect(&vm, &e, EXIT_WRMSR, g_wrmsr_hi_at, g_wrmsr_hi_end);
	finish(&vm);
}

TEST(rdmsr_outside_bitmap_ranges_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_out);
	msr_bitmaps();
	run_expect(&vm, &e, EXIT_RDMSR, g_rdmsr_out_at, g_rdmsr_out_end);
	finish(&vm);
}

TEST(rdmsr_without_msr_bitmaps_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_174);
	vmx_clear_proc(PROC_MSR_BITMAPS);
	run_expect(&vm, &e, EXIT_RDMSR, g_rdmsr_174_at, g_rdmsr_174_end);
	finish(&vm);
}

/* ---- descriptor-table exiting ---- */

static struct dtr guest_dtr __attribute__((used));
GUEST_INSN(sgdt, "lea guest_dtr(%rip), %rax", "sgdt (%rax)")
GUEST_INSN(sidt, "lea guest_dtr(%rip), %rax", "sidt (%rax)")
GUEST_INSN(lgdt, "lea guest_dtr(%rip), %rax", "lgdt (%rax)")
GUEST_INSN(lidt, "lea guest_dtr(%rip), %rax", "lidt (%rax)")
GUEST_INSN(sldt, "lea guest_dtr(%rip), %rax", "sldt (%rax)")
GUEST_INSN(str, "lea guest_dtr(%rip), %rax", "str (%rax)")
GUEST_INSN(lldt, "lea guest_dtr(%rip), %rax", "lldt (%rax)")
GUEST_INSN(ltr, "lea guest_dtr(%rip), %rax", "ltr (%rax)")

static void desc_case(const void *fn, const char *at, const char *end, uint32_t reason, unsigned identity)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, fn);
	if (!vmx_set_sec(SEC_DESC_TABLE))
		test_skip("not supported");
	guest_dtr = sgdt();
	run_expect(&vm, &e, reason, at, end);
	EXPECT_EQ(e.qual, 0); /* displacement */
	/* instruction identity bits 29:28; memory operand based on RAX, no index, 64-bit address */
	EXPECTF(((e.insn_info >> 28) & 3) == identity, "instruction identity %u want %u (info 0x%x)",
		(e.insn_info >> 28) & 3, identity, e.insn_info);
	EXPECTF(((e.insn_info >> 23) & 0x1F) == 0 && !(e.insn_info & (1u << 27)) && (e.insn_info & (1u << 22)) &&
			((e.insn_info >> 7) & 7) == 2 && !(e.insn_info & (1u << 10)),
		"instruction information 0x%x", e.insn_info);
	finish(&vm);
}
TEST(exit_sgdt) { desc_case(g_sgdt, g_sgdt_at, g_sgdt_end, EXIT_GDTR_IDTR, 0); }
TEST(exit_sidt) { desc_case(g_sidt, g_sidt_at, g_sidt_end, EXIT_GDTR_IDTR, 1); }
TEST(exit_lgdt) { desc_case(g_lgdt, g_lgdt_at, g_lgdt_end, EXIT_GDTR_IDTR, 2); }
TEST(exit_lidt) { desc_case(g_lidt, g_lidt_at, g_lidt_end, EXIT_GDTR_IDTR, 3); }
TEST(exit_sldt) { desc_case(g_sldt, g_sldt_at, g_sldt_end, EXIT_LDTR_TR, 0); }
TEST(exit_str) { desc_case(g_str, g_str_at, g_str_end, EXIT_LDTR_TR, 1); }
TEST(exit_lldt) { desc_case(g_lldt, g_lldt_at, g_lldt_end, EXIT_LDTR_TR, 2); }
TEST(exit_ltr) { desc_case(g_ltr, g_ltr_at, g_ltr_end, EXIT_LDTR_TR, 3); }

/* ---- exceptions ---- */

GUEST_INSN(ud2, "", "ud2")
GUEST_INSN(int3, "", "int3")
GUEST_INSN(div0, "xor %ecx, %ecx\n mov $1, %eax\n xor %edx, %edx", "div %ecx")
GUEST_INSN(bad_ds, "mov $0xfff8, %eax", "mov %eax, %ds")
GUEST_INSN(pf_write, "mov $0x8000000010, %rax", "movq $1, (%rax)")
GUEST_INSN(pf_read, "mov $0x8000000010, %rax", "movq (%rax), %rbx")
GUEST_INSN(single_step, "pushfq\n orq $0x100, (%rsp)\n popfq\n nop", "nop\n pushfq\n andq $~0x100, (%rsp)\n popfq")

TEST(exception_bitmap_ud)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_ud2);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_UD);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_UD);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_ud2_at);
	EXPECT_EQ(e.qual, 0);
}

TEST(exception_bitmap_bp_software_exception)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_int3);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_BP);
	run_expect(&vm, &e, EXIT_EXCEPTION_NMI, g_int3_at, g_int3_end);
	/* INT3 is a software exception (type 6) and the instruction length is reported */
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_SW_EXC | VEC_BP);
}

TEST(exception_bitmap_de)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_div0);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_DE);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_DE);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_div0_at);
}

TEST(exception_bitmap_gp_error_code)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_bad_ds);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_GP);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_GP);
	EXPECT_EQ(e.intr_error, 0xFFF8);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_bad_ds_at);
}

TEST(exception_not_in_bitmap_goes_to_guest_idt)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_ud2);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, VEC_UD);
	EXPECT_EQ(vmx_guest_event.rip, (uint64_t)g_ud2_at);
}

TEST(exception_bitmap_db_single_step)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_single_step);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_DB);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_DB);
	/* the trap comes after the instruction following the POPF that set TF; the exit
	 * qualification holds what would have gone to DR6: BS (bit 14) */
	EXPECT_EQ(e.guest_rip, (uint64_t)g_single_step_at);
	EXPECT_EQ(e.qual, 1u << 14);
}

/* #PF: SDM 3C §25.2, the page-fault error-code mask and match */
static void pf_case(const void *fn, const char *at, uint32_t bit14, uint32_t mask, uint32_t match, bool want_exit,
		    uint32_t pfec)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, fn);
	vmw(VMCS_EXCEPTION_BITMAP, bit14 ? 1u << VEC_PF : 0);
	vmw(VMCS_PF_MASK, mask);
	vmw(VMCS_PF_MATCH, match);
	vmx_vm_run(&vm, &e);
	if (want_exit) {
		EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
		EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_PF);
		EXPECT_EQ(e.intr_error, pfec);
		EXPECT_EQ(e.qual, TEST_VA + 0x10); /* the linear address that would have gone to CR2 */
		EXPECT_EQ(e.guest_rip, (uint64_t)at);
	} else {
		EXPECT_GUEST_EVENT(vm, e, VEC_PF);
		EXPECT_EQ(vmx_guest_event.error, pfec);
		EXPECT_EQ(vmx_guest_event.cr2, TEST_VA + 0x10);
		EXPECT_EQ(vmx_guest_event.rip, (uint64_t)at);
	}
}
TEST(pf_bitmap_set_mask_0_exits) { pf_case(g_pf_write, g_pf_write_at, 1, 0, 0, true, 2); }
TEST(pf_bitmap_set_mask_mismatch_delivered) { pf_case(g_pf_write, g_pf_write_at, 1, 2, 0, false, 2); }
TEST(pf_bitmap_set_mask_match_read_exits) { pf_case(g_pf_read, g_pf_read_at, 1, 2, 0, true, 0); }
TEST(pf_bitmap_clear_mismatch_exits) { pf_case(g_pf_write, g_pf_write_at, 0, 2, 0, true, 2); }
TEST(pf_bitmap_clear_match_delivered) { pf_case(g_pf_write, g_pf_write_at, 0, 0, 0, false, 2); }
TEST(pf_bitmap_clear_match_nonzero_delivered) { pf_case(g_pf_write, g_pf_write_at, 0, 2, 2, false, 2); }

void vmx_exit_tests(void)
{
	RUN(exit_cpuid);
	RUN(exit_invd);
	RUN(exit_vmcall);
	RUN(exit_xsetbv);
	RUN(exit_triple_fault);
	RUN(exit_vmxon);
	RUN(exit_vmxoff);
	RUN(exit_vmclear);
	RUN(exit_vmptrld);
	RUN(exit_vmptrst);
	RUN(exit_vmread);
	RUN(exit_vmwrite);
	RUN(exit_vmlaunch);
	RUN(exit_vmresume);
	RUN(exit_invept);
	RUN(exit_invvpid);
	RUN(exit_hlt);
	RUN(exit_invlpg);
	RUN(invlpg_no_exit_when_clear);
	RUN(exit_rdtsc);
	RUN(tsc_offset_positive);
	RUN(tsc_offset_negative);
	RUN(exit_rdtscp);
	RUN(rdtscp_ud_without_enable_rdtscp);
	RUN(exit_rdpmc);
	RUN(exit_pause);
	RUN(exit_monitor);
	RUN(exit_mwait);
	RUN(exit_wbinvd);
	RUN(exit_rdrand);
	RUN(exit_rdseed);
	RUN(exit_invpcid);
	RUN(invpcid_ud_without_enable_invpcid);
	RUN(cr0_read_returns_shadow_for_masked_bits);
	RUN(cr0_write_changing_masked_bit_exits);
	RUN(cr0_write_unmasked_bits_no_exit);
	RUN(cr0_write_masked_bit_equal_to_shadow_keeps_host_value);
	RUN(clts_exits_when_shadow_ts_set);
	RUN(clts_keeps_ts_when_shadow_ts_clear);
	RUN(clts_clears_ts_when_unmasked);
	RUN(lmsw_exit_qualification);
	RUN(cr4_read_returns_shadow_for_masked_bits);
	RUN(cr4_write_changing_masked_bit_exits);
	RUN(cr4_write_equal_to_shadow_no_exit);
	RUN(cr3_load_exit);
	RUN(cr3_load_matching_target_no_exit);
	RUN(cr3_load_target_beyond_count_exits);
	RUN(cr3_store_exit);
	RUN(cr8_load_exit);
	RUN(cr8_store_exit);
	RUN(tpr_shadow_cr8_read);
	RUN(tpr_shadow_cr8_write);
	RUN(tpr_below_threshold_exit);
	RUN(mov_dr_write_exit);
	RUN(mov_dr_read_exit);
	RUN(io_out_imm8_unconditional);
	RUN(io_in_dx_word_unconditional);
	RUN(io_inl_imm_unconditional);
	RUN(io_rep_outsb_string);
	RUN(io_bitmap_a_bit_set_exits);
	RUN(io_bitmap_bit_clear_no_exit);
	RUN(io_bitmap_b_bit_set_exits);
	RUN(io_bitmap_access_spanning_a_and_b);
	RUN(io_bitmap_wraparound_exits);
	RUN(io_bitmaps_override_unconditional);
	RUN(rdmsr_bitmap_low_exit);
	RUN(rdmsr_bitmap_clear_no_exit);
	RUN(wrmsr_bitmap_low_exit);
	RUN(rdmsr_bitmap_high_exit);
	RUN(wrmsr_bitmap_high_exit);
	RUN(rdmsr_outside_bitmap_ranges_exits);
	RUN(rdmsr_without_msr_bitmaps_exits);
	RUN(exit_sgdt);
	RUN(exit_sidt);
	RUN(exit_lgdt);
	RUN(exit_lidt);
	RUN(exit_sldt);
	RUN(exit_str);
	RUN(exit_lldt);
	RUN(exit_ltr);
	RUN(exception_bitmap_ud);
	RUN(exception_bitmap_bp_software_exception);
	RUN(exception_bitmap_de);
	RUN(exception_bitmap_gp_error_code);
	RUN(exception_not_in_bitmap_goes_to_guest_idt);
	RUN(exception_bitmap_db_single_step);
	RUN(pf_bitmap_set_mask_0_exits);
	RUN(pf_bitmap_set_mask_mismatch_delivered);
	RUN(pf_bitmap_set_mask_match_read_exits);
	RUN(pf_bitmap_clear_mismatch_exits);
	RUN(pf_bitmap_clear_match_delivered);
	RUN(pf_bitmap_clear_match_nonzero_delivered);
}
