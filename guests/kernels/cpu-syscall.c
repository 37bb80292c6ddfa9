/* Fast system calls and segment bases: SYSCALL/SYSRET (STAR, LSTAR, SFMASK, RCX/R11),
 * SYSENTER/SYSEXIT, SWAPGS with IA32_KERNEL_GS_BASE, FS/GS base MSRs and the FSGSBASE
 * instructions (SDM 2B SYSCALL, SYSRET, SYSENTER, SYSEXIT, SWAPGS; SDM 3A §5.8.7-5.8.8). */
#include "asm_snippet.h"
#include "quirks.h"
#include "rt.h"

#define USER(fn) ((void (*)(void))(fn))
#define VEC_RETURN 0x80 /* ring 3 in compatibility mode returns to the kernel with INT 0x80 */

uint64_t u_flags_after USER_DATA, u_rax_after USER_DATA, u_cs USER_DATA, u_ss USER_DATA;
uint32_t u_cs32 USER_DATA, u_ss32 USER_DATA;

/* ---- SYSCALL / SYSRET in 64-bit mode ---- */
#define USER_FLAGS (RFLAGS_AC | RFLAGS_DF | RFLAGS_CF)

USER_SNIPPET(user_syscall_flags,
	     "pushfq\n orq $0x40401, (%rsp)\n popfq\n" /* AC | DF | CF */
	     "mov $1, %eax\n syscall\n" ASM_LABEL(user_after_syscall1)
	     "pushfq\n popq u_flags_after(%rip)\n cld\n mov %rax, u_rax_after(%rip)\n"
	     "mov %cs, %eax\n mov %rax, u_cs(%rip)\n mov %ss, %eax\n mov %rax, u_ss(%rip)\n"
	     "xor %eax, %eax\n syscall")
LABEL(user_after_syscall1);

static struct frame sc_seen;
static struct syscall_entry_state sc_state;
static void on_syscall(struct frame *f)
{
	sc_seen = *f;
	sc_state = syscall_entry_state;
	f->rax = 0x1234;
}

TEST(syscall_sysret_64)
{
	syscall_set_handler(on_syscall);
	struct frame f;
	user_run(USER(user_syscall_flags), 0, &f);
	syscall_set_handler(0);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
	EXPECT_EQ(sc_seen.rax, 1);
	EXPECT_EQ(sc_seen.rcx, (uint64_t)user_after_syscall1); /* RCX = RIP of the next instruction */
	EXPECT_EQ(sc_seen.r11, RFLAGS_FIXED | USER_FLAGS); /* R11 = RFLAGS */
	EXPECT_EQ(sc_state.cs, KERNEL_CS); /* STAR[47:32] */
	EXPECT_EQ(sc_state.ss, KERNEL_DS); /* STAR[47:32] + 8 */
	EXPECT_EQ(u_rax_after, 0x1234);
	EXPECT_EQ(u_flags_after & (USER_FLAGS | RFLAGS_IF), USER_FLAGS); /* SYSRET: RFLAGS = R11 */
	EXPECT_EQ(u_cs, USER_CS64 | 3); /* STAR[63:48] + 16, RPL 3 */
	EXPECT_EQ(u_ss, USER_DS | 3); /* STAR[63:48] + 8, RPL 3 */
	TCG_QUIRK(sc_state.rflags == RFLAGS_FIXED, "SYSCALL clears the arithmetic flags");
	EXPECT_EQ(sc_state.rflags, RFLAGS_FIXED | RFLAGS_CF); /* RFLAGS &= ~SFMASK (AC, DF cleared) */
}

TEST(sfmask_selects_cleared_flags)
{
	uint64_t sfmask = rdmsr(MSR_SFMASK);
	wrmsr(MSR_SFMASK, sfmask | RFLAGS_CF);
	syscall_set_handler(on_syscall);
	struct frame f;
	user_run(USER(user_syscall_flags), 0, &f);
	syscall_set_handler(0);
	wrmsr(MSR_SFMASK, sfmask);
	EXPECT_EQ(sc_state.rflags, RFLAGS_FIXED);
	EXPECT_EQ(sc_seen.r11, RFLAGS_FIXED | USER_FLAGS);
}

/* SYSRETL (no REX.W) returns to compatibility mode: CS = STAR[63:48] | 3. */
SNIPPET(lstar_sysret32,
	"mov $user_code32, %ecx\n"
	"mov $0x2, %r11d\n"
	"sysretl")
USER_SNIPPET(user_syscall_to32, "mov $2, %eax\n syscall\n ud2")
asm(".pushsection .user.text, \"ax\"\n"
    ".code32\n"
    "user_code32:\n"
    /* IRET to ring 3 nulled DS (its DPL 0 < CPL 3, SDM Vol. 2 IRET); a null DS is usable in
       64-bit mode but faults in compatibility mode, so load the user data selector from SS. */
    " mov %ss, %eax\n mov %eax, %ds\n"
    " mov %cs, %eax\n mov %eax, u_cs32\n"
    " mov %ss, %eax\n mov %eax, u_ss32\n"
    " int $0x80\n"
    ".code64\n"
    ".popsection\n");

TEST(sysret_to_compatibility_mode)
{
	idt_set_dpl(VEC_RETURN, 3);
	uint64_t lstar = rdmsr(MSR_LSTAR);
	wrmsr(MSR_LSTAR, (uint64_t)lstar_sysret32);
	struct frame f;
	u_cs32 = u_ss32 = 0;
	user_run(USER(user_syscall_to32), 0, &f);
	wrmsr(MSR_LSTAR, lstar);
	idt_reset_gate(VEC_RETURN);
	EXPECT_EQ(f.vector, VEC_RETURN);
	EXPECT_EQ(f.cs, USER_CS32 | 3);
	EXPECT_EQ(u_cs32, USER_CS32 | 3);
	EXPECT_EQ(u_ss32, USER_DS | 3);
}

SNIPPET(do_syscall, ASM_LABEL(syscall_site) "syscall\n ret")
LABEL(syscall_site);
USER_SNIPPET(user_sysret, ASM_LABEL(user_sysret_site) "sysretq")
LABEL(user_sysret_site);

TEST(syscall_ud_without_efer_sce)
{
	uint64_t efer = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer & ~EFER_SCE);
	struct frame f;
	bool faulted = catch_run(do_syscall, 0, &f);
	wrmsr(MSR_EFER, efer);
	EXPECT(faulted && f.vector == VEC_UD && f.rip == (uint64_t)syscall_site);
}

TEST(sysret_gp_in_ring3)
{
	struct frame f;
	user_run(USER(user_sysret), 0, &f);
	EXPECT(f.vector == VEC_GP && f.error == 0 && f.rip == (uint64_t)user_sysret_site);
}

/* ---- SYSENTER / SYSEXIT ---- */
uint64_t se_rsp, se_cs, se_ss, se_flags;

SNIPPET(sysenter_entry,
	"mov %rsp, se_rsp(%rip)\n"
	"mov %cs, %eax\n mov %rax, se_cs(%rip)\n"
	"mov %ss, %eax\n mov %rax, se_ss(%rip)\n"
	"pushfq\n popq se_flags(%rip)\n"
	"cmp $32, %rbx\n je 1f\n"
	"sysexitq\n" /* REX.W: to 64-bit code at RDX with RSP = RCX */
	"1: sysexitl") /* to compatibility mode at EDX with ESP = ECX */
USER_SNIPPET(user_sysenter64,
	"mov %rsp, %rcx\n lea 1f(%rip), %rdx\n mov $0, %ebx\n" /* mov, not xor: keep CF */
	"sysenter\n"
	"1: mov %cs, %eax\n mov %rax, u_cs(%rip)\n mov %ss, %eax\n mov %rax, u_ss(%rip)\n"
	"xor %eax, %eax\n syscall")
USER_SNIPPET(user_sysenter32,
	"mov %rsp, %rcx\n mov $user_code32, %edx\n mov $32, %ebx\n"
	"sysenter")
SNIPPET(do_sysenter, ASM_LABEL(sysenter_site) "sysenter\n ret")
LABEL(sysenter_site);

static uint8_t sysenter_stack[4096] ALIGNED(16);

static void setup_sysenter(void)
{
	wrmsr(MSR_SYSENTER_CS, KERNEL_CS);
	wrmsr(MSR_SYSENTER_ESP, (uint64_t)(sysenter_stack + sizeof(sysenter_stack)));
	wrmsr(MSR_SYSENTER_EIP, (uint64_t)sysenter_entry);
}

TEST(sysenter_sysexit_64)
{
	setup_sysenter();
	if (!cpu_is_intel()) {
		/* AMD: SYSENTER is invalid in long mode (AMD APM vol. 3, SYSENTER) */
		struct frame f;
		EXPECT(catch_run(do_sysenter, 0, &f) && f.vector == VEC_UD && f.rip == (uint64_t)sysenter_site);
		return;
	}
	struct frame f;
	u_cs = u_ss = 0;
	user_run(USER(user_sysenter64), RFLAGS_CF, &f);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
	EXPECT_EQ(se_rsp, (uint64_t)(sysenter_stack + sizeof(sysenter_stack)));
	EXPECT_EQ(se_cs, KERNEL_CS); /* SYSENTER_CS */
	EXPECT_EQ(se_ss, KERNEL_DS); /* SYSENTER_CS + 8 */
	EXPECT_EQ(u_cs, (KERNEL_CS + 32) | 3);
	EXPECT_EQ(u_ss, (KERNEL_CS + 40) | 3);
	TCG_QUIRK((se_flags & RFLAGS_CF) == 0, "SYSENTER clears the arithmetic flags");
	EXPECT_EQ(se_flags & (RFLAGS_IF | RFLAGS_CF), RFLAGS_CF); /* IF, VM, RF cleared; others kept */
}

TEST(sysenter_sysexit_to_compatibility_mode)
{
	if (!cpu_is_intel()) {
		setup_sysenter();
		struct frame f;
		EXPECT(catch_run(do_sysenter, 0, &f) && f.vector == VEC_UD);
		return;
	}
	setup_sysenter();
	idt_set_dpl(VEC_RETURN, 3);
	struct frame f;
	u_cs32 = u_ss32 = 0;
	user_run(USER(user_sysenter32), 0, &f);
	idt_reset_gate(VEC_RETURN);
	EXPECT_EQ(f.vector, VEC_RETURN);
	EXPECT_EQ(u_cs32, (KERNEL_CS + 16) | 3);
	EXPECT_EQ(u_ss32, (KERNEL_CS + 24) | 3);
}

/* ---- segment bases ---- */
static uint64_t area_a[4] = { 0xA0, 0xA1, 0xA2, 0xA3 };
static uint64_t area_b[4] = { 0xB0, 0xB1, 0xB2, 0xB3 };

static uint64_t read_gs8(void)
{
	uint64_t v;
	asm volatile("mov %%gs:8, %0" : "=r"(v));
	return v;
}
static uint64_t read_fs16(void)
{
	uint64_t v;
	asm volatile("mov %%fs:16, %0" : "=r"(v));
	return v;
}

TEST(fs_gs_base_msrs)
{
	wrmsr(MSR_FS_BASE, (uint64_t)area_a);
	wrmsr(MSR_GS_BASE, (uint64_t)area_b);
	EXPECT_EQ(rdmsr(MSR_FS_BASE), (uint64_t)area_a);
	EXPECT_EQ(read_fs16(), 0xA2);
	EXPECT_EQ(read_gs8(), 0xB1);
	wrmsr(MSR_FS_BASE, 0);
	wrmsr(MSR_GS_BASE, 0);
}

SNIPPET(wrmsr_rdi_to_fs_base, "mov %rdi, %rax\n mov %rdi, %rdx\n shr $32, %rdx\n mov $0xc0000100, %ecx\n"
			      ASM_LABEL(wrmsr_fs_site) "wrmsr\n ret")
LABEL(wrmsr_fs_site);

TEST(fs_base_noncanonical_gp)
{
	/* WRMSR of a non-canonical address to IA32_FS_BASE is #GP(0) (SDM 2B WRMSR) */
	struct frame f;
	wrmsr(MSR_FS_BASE, 0);
	bool faulted = catch_run(wrmsr_rdi_to_fs_base, (void *)0x0000800000000000ull, &f);
	uint64_t base = rdmsr(MSR_FS_BASE);
	wrmsr(MSR_FS_BASE, 0);
	TCG_QUIRK(!faulted, "WRMSR accepts a non-canonical FS base");
	EXPECT(faulted && f.vector == VEC_GP && f.error == 0 && f.rip == (uint64_t)wrmsr_fs_site);
	EXPECT_EQ(base, 0);
}

TEST(swapgs_kernel_gs_base)
{
	wrmsr(MSR_GS_BASE, (uint64_t)area_a);
	wrmsr(MSR_KERNEL_GS_BASE, (uint64_t)area_b);
	asm volatile("swapgs" ::: "memory");
	uint64_t gs = rdmsr(MSR_GS_BASE), kgs = rdmsr(MSR_KERNEL_GS_BASE), v = read_gs8();
	asm volatile("swapgs" ::: "memory");
	uint64_t v2 = read_gs8();
	wrmsr(MSR_GS_BASE, 0);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
	EXPECT_EQ(gs, (uint64_t)area_b);
	EXPECT_EQ(kgs, (uint64_t)area_a);
	EXPECT_EQ(v, 0xB1);
	EXPECT_EQ(v2, 0xA1);
}

USER_SNIPPET(user_swapgs, ASM_LABEL(user_swapgs_site) "swapgs\n xor %eax, %eax\n syscall")
LABEL(user_swapgs_site);

TEST(swapgs_gp_in_ring3)
{
	struct frame f;
	user_run(USER(user_swapgs), 0, &f);
	EXPECT(f.vector == VEC_GP && f.error == 0 && f.rip == (uint64_t)user_swapgs_site);
}

SNIPPET(do_rdfsbase, ASM_LABEL(rdfsbase_site) "rdfsbase %rax\n ret")
LABEL(rdfsbase_site);
uint64_t u_base USER_DATA;
USER_SNIPPET(user_rdgsbase, "rdgsbase %rax\n mov %rax, u_base(%rip)\n xor %eax, %eax\n syscall")

TEST(fsgsbase_instructions)
{
	if (!cpu_has_fsgsbase())
		test_skip("CPUID.(EAX=7,ECX=0):EBX.FSGSBASE=0");
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 & ~CR4_FSGSBASE);
	struct frame f;
	bool ud = catch_run(do_rdfsbase, 0, &f) && f.vector == VEC_UD && f.rip == (uint64_t)rdfsbase_site;
	write_cr4(cr4 | CR4_FSGSBASE);
	uint64_t fs = 0, gs = 0;
	asm volatile("wrfsbase %0" : : "r"((uint64_t)area_a));
	asm volatile("wrgsbase %0" : : "r"((uint64_t)area_b));
	asm volatile("rdfsbase %0" : "=r"(fs));
	asm volatile("rdgsbase %0" : "=r"(gs));
	uint64_t fs_msr = rdmsr(MSR_FS_BASE);
	u_base = 0;
	user_run(USER(user_rdgsbase), 0, &f); /* CPL 3 may use them too */
	write_cr4(cr4);
	wrmsr(MSR_FS_BASE, 0);
	wrmsr(MSR_GS_BASE, 0);
	EXPECT(ud);
	EXPECT_EQ(fs, (uint64_t)area_a);
	EXPECT_EQ(gs, (uint64_t)area_b);
	EXPECT_EQ(fs_msr, (uint64_t)area_a);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
	EXPECT_EQ(u_base, (uint64_t)area_b);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	RUN(syscall_sysret_64);
	RUN(sfmask_selects_cleared_flags);
	RUN(sysret_to_compatibility_mode);
	RUN(syscall_ud_without_efer_sce);
	RUN(sysret_gp_in_ring3);
	RUN(sysenter_sysexit_64);
	RUN(sysenter_sysexit_to_compatibility_mode);
	RUN(fs_gs_base_msrs);
	RUN(fs_base_noncanonical_gp);
	RUN(swapgs_kernel_gs_base);
	RUN(swapgs_gp_in_ring3);
	RUN(fsgsbase_instructions);
	test_finish();
}
