/* Privilege levels: entering ring 3 with IRETQ, returning with SYSCALL or interrupts, stack
 * switching through TSS.RSP0 and IST, gate DPL checks, IOPL and the I/O bitmap, and
 * privileged instructions (SDM 3A chapters 5, 6, 8; SDM 1 §19.5 for I/O protection). */
#include "asm_snippet.h"
#include "quirks.h"
#include "rt.h"

#define USER(fn) ((void (*)(void))(fn))

/* ---- ring 3 state as ring 3 sees it ---- */
uint64_t u_cs USER_DATA, u_ss USER_DATA, u_rsp USER_DATA, u_marker USER_DATA;

USER_SNIPPET(user_read_segments,
	     "mov %cs, %eax\n mov %rax, u_cs(%rip)\n mov %ss, %eax\n mov %rax, u_ss(%rip)\n"
	     "xor %eax, %eax\n syscall\n" ASM_LABEL(user_after_exit) "ud2")
LABEL(user_after_exit);

TEST(iretq_to_ring3_cpl_in_cs)
{
	struct frame f;
	u_cs = u_ss = 0;
	user_run(USER(user_read_segments), 0, &f);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
	EXPECT_EQ(u_cs, USER_CS64 | 3);
	EXPECT_EQ(u_cs & 3, 3); /* CPL is CS.RPL */
	EXPECT_EQ(u_ss, USER_DS | 3);
}

TEST(syscall_back_to_ring0)
{
	struct frame f;
	user_run(USER(user_read_segments), 0, &f);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
	EXPECT_EQ(f.rip, (uint64_t)user_after_exit); /* RCX = next RIP */
	EXPECT_EQ(syscall_entry_state.cs, KERNEL_CS);
	EXPECT_EQ(syscall_entry_state.ss, KERNEL_DS);
	EXPECT_EQ(read_cs(), KERNEL_CS);
}

/* ---- interrupts from ring 3: stack from TSS.RSP0, SS becomes NULL (SDM 3A §6.14.4) ---- */
#define VEC_USER_INT 0x81
#define VEC_IST_INT 0x82
#define VEC_DPL0_INT 0x83

static struct frame seen;
static uint64_t seen_top, seen_ss_now, seen_count;
static void record(struct frame *f)
{
	seen = *f;
	seen_top = (uint64_t)(f + 1);
	seen_ss_now = read_ss();
	seen_count++;
}

USER_SNIPPET(user_int_0x81, "mov %rsp, u_rsp(%rip)\n int $0x81\n" ASM_LABEL(user_after_int81)
			    "movq $0x42, u_marker(%rip)\n xor %eax, %eax\n syscall")
LABEL(user_after_int81);

TEST(int_from_ring3_uses_rsp0)
{
	idt_set_dpl(VEC_USER_INT, 3);
	idt_set_handler(VEC_USER_INT, record);
	seen_count = 0;
	u_marker = 0;
	struct frame f;
	user_run(USER(user_int_0x81), 0, &f);
	idt_set_handler(VEC_USER_INT, 0);
	idt_reset_gate(VEC_USER_INT);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
	EXPECT_EQ(seen_count, 1);
	EXPECT_EQ(seen_top, tss()->rsp[0]);
	EXPECT_EQ(seen.cs, USER_CS64 | 3);
	EXPECT_EQ(seen.ss, USER_DS | 3);
	EXPECT_EQ(seen.rsp, u_rsp);
	EXPECT_EQ(seen.rip, (uint64_t)user_after_int81);
	EXPECT_EQ(seen_ss_now, 0);
	EXPECT_EQ(u_marker, 0x42); /* IRETQ went back to ring 3 */
}

SNIPPET(kernel_int_0x82, "int $0x82\n ret")
USER_SNIPPET(user_int_0x82, "int $0x82\n xor %eax, %eax\n syscall")

TEST(ist_stack_used)
{
	idt_set_dpl(VEC_IST_INT, 3);
	idt_set_ist(VEC_IST_INT, 3);
	idt_set_handler(VEC_IST_INT, record);
	seen_count = 0;
	kernel_int_0x82(0);
	uint64_t top_ring0 = seen_top;
	struct frame f;
	user_run(USER(user_int_0x82), 0, &f);
	uint64_t top_ring3 = seen_top;
	idt_set_handler(VEC_IST_INT, 0);
	idt_reset_gate(VEC_IST_INT);
	EXPECT_EQ(seen_count, 2);
	EXPECT_EQ(top_ring0, ist_stack_top(3)); /* IST switches stacks even without a CPL change */
	EXPECT_EQ(top_ring3, ist_stack_top(3)); /* and takes precedence over RSP0 */
	EXPECT_EQ(f.vector, VEC_SYSCALL);
}

USER_SNIPPET(user_int_0x83, ASM_LABEL(user_int83_site) "int $0x83\n xor %eax, %eax\n syscall")
LABEL(user_int83_site);

TEST(int_n_dpl3_gate_from_ring3)
{
	idt_set_dpl(VEC_DPL0_INT, 3);
	idt_set_handler(VEC_DPL0_INT, record);
	seen_count = 0;
	struct frame f;
	user_run(USER(user_int_0x83), 0, &f);
	idt_set_handler(VEC_DPL0_INT, 0);
	idt_reset_gate(VEC_DPL0_INT);
	EXPECT_EQ(seen_count, 1);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
}

TEST(int_n_dpl0_gate_from_ring3_gp)
{
	/* INT n checks gate DPL >= CPL: #GP(vector * 8 + 2), IDT bit set (SDM 3A §6.12.1.1) */
	idt_set_handler(VEC_DPL0_INT, record);
	seen_count = 0;
	struct frame f;
	user_run(USER(user_int_0x83), 0, &f);
	idt_set_handler(VEC_DPL0_INT, 0);
	EXPECT_EQ(seen_count, 0);
	EXPECT_EQ(f.vector, VEC_GP);
	EXPECT_EQ(f.rip, (uint64_t)user_int83_site);
	EXPECT_EQ(f.cs, USER_CS64 | 3);
	TCG_QUIRK(f.error == ((VEC_DPL0_INT << 4) | 2), "IDT error code uses vector*16 in long mode");
	EXPECT_EQ(f.error, (VEC_DPL0_INT << 3) | 2);
}

/* ---- I/O: CPL > IOPL needs the TSS I/O bitmap to allow the port ---- */
USER_SNIPPET(user_in_lsr, "mov $0x3fd, %edx\n" ASM_LABEL(user_in_site) "in %dx, %al\n xor %eax, %eax\n syscall")
USER_SNIPPET(user_in_high_port, "mov $0x510, %edx\n in %dx, %al\n xor %eax, %eax\n syscall")
USER_SNIPPET(user_cli, ASM_LABEL(user_cli_site) "cli\n xor %eax, %eax\n syscall")
LABEL(user_in_site);
LABEL(user_cli_site);

TEST(in_from_ring3_iopl0_gp)
{
	struct frame f;
	user_run(USER(user_in_lsr), 0, &f);
	EXPECT_EQ(f.vector, VEC_GP);
	EXPECT_EQ(f.error, 0);
	EXPECT_EQ(f.rip, (uint64_t)user_in_site);
}

TEST(in_from_ring3_iopl3_ok)
{
	struct frame f;
	user_run(USER(user_in_lsr), RFLAGS_IOPL(3), &f);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
	EXPECT_EQ(f.rflags & RFLAGS_IOPL_MASK, RFLAGS_IOPL(3)); /* R11 = ring-3 RFLAGS */
}

TEST(in_from_ring3_io_bitmap)
{
	struct frame f;
	tss_io_allow(0x3fd, true);
	user_run(USER(user_in_lsr), 0, &f);
	tss_io_allow(0x3fd, false);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
	user_run(USER(user_in_high_port), 0, &f); /* beyond the TSS limit: denied */
	EXPECT_EQ(f.vector, VEC_GP);
}

TEST(cli_from_ring3)
{
	struct frame f;
	user_run(USER(user_cli), 0, &f);
	EXPECT(f.vector == VEC_GP && f.error == 0 && f.rip == (uint64_t)user_cli_site);
	user_run(USER(user_cli), RFLAGS_IOPL(3), &f);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
}

/* ---- privileged instructions at CPL 3 raise #GP(0); each snippet starts with one ---- */
USER_SNIPPET(user_hlt, "hlt\n xor %eax, %eax\n syscall")
USER_SNIPPET(user_mov_cr3, "mov %cr3, %rax\n xor %eax, %eax\n syscall")
USER_SNIPPET(user_wrmsr, "wrmsr\n xor %eax, %eax\n syscall") /* CPL is checked before ECX */
USER_SNIPPET(user_rdmsr, "rdmsr\n xor %eax, %eax\n syscall")
USER_SNIPPET(user_lidt, "lidt u_marker(%rip)\n xor %eax, %eax\n syscall")
USER_SNIPPET(user_invlpg, "invlpg u_marker(%rip)\n xor %eax, %eax\n syscall")

TEST(privileged_instructions_gp_in_ring3)
{
	static void (*const fns[])(void *) = { user_hlt, user_mov_cr3, user_wrmsr, user_rdmsr, user_lidt, user_invlpg };
	for (size_t i = 0; i < ARRAY_SIZE(fns); i++) {
		struct frame f;
		user_run(USER(fns[i]), 0, &f);
		EXPECTF(f.vector == VEC_GP && f.error == 0 && f.rip == (uint64_t)fns[i],
			"instruction %zu: vector=%lu error=0x%lx rip=0x%lx", i, f.vector, f.error, f.rip);
	}
}

TEST(user_fetch_from_supervisor_page)
{
	/* NXE=0 and SMEP=0, so the error code has no I/D bit (SDM 3A §4.7) */
	struct frame f;
	user_run((void (*)(void))kernel_int_0x82, 0, &f);
	EXPECT_EQ(f.vector, VEC_PF);
	EXPECT_EQ(f.error, 5);
	EXPECT_EQ(f.cr2, (uint64_t)kernel_int_0x82);
	EXPECT_EQ(f.rip, (uint64_t)kernel_int_0x82);
}

TEST(iretq_to_ring3_with_rpl0_ss_gp)
{
	/* IRETQ to CPL 3 checks SS.RPL == new CPL: #GP(SS selector) (SDM 2A IRET) */
	struct user_entry e = { (uint64_t)user_read_segments, user_stack_top(), 0, USER_CS64 | 3, USER_DS };
	struct frame f;
	user_run_entry(&e, &f);
	EXPECT_EQ(f.vector, VEC_GP);
	EXPECT_EQ(f.error, USER_DS);
	EXPECT_EQ(f.cs, KERNEL_CS); /* raised by IRETQ itself, in ring 0 */
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	RUN(iretq_to_ring3_cpl_in_cs);
	RUN(syscall_back_to_ring0);
	RUN(int_from_ring3_uses_rsp0);
	RUN(ist_stack_used);
	RUN(int_n_dpl3_gate_from_ring3);
	RUN(int_n_dpl0_gate_from_ring3_gp);
	RUN(in_from_ring3_iopl0_gp);
	RUN(in_from_ring3_iopl3_ok);
	RUN(in_from_ring3_io_bitmap);
	RUN(cli_from_ring3);
	RUN(privileged_instructions_gp_in_ring3);
	RUN(user_fetch_from_supervisor_page);
	RUN(iretq_to_ring3_with_rpl0_ss_gp);
	test_finish();
}
