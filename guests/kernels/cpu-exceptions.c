/* Exceptions: vector, error code, saved RIP (fault vs trap) and CR2, per SDM 3A chapter 6. */
#include "asm_snippet.h"
#include "quirks.h"
#include "rt.h"

/* ---- #DE: faults, RIP = the divide (SDM 3A §6.15, interrupt 0) ---- */
SNIPPET(do_div0, "xor %ecx, %ecx\n mov $1, %eax\n xor %edx, %edx\n" ASM_LABEL(div0_site) "div %ecx\n ret")
SNIPPET(do_idiv_overflow,
	"movabs $0x8000000000000000, %rax\n cqo\n mov $-1, %rcx\n" ASM_LABEL(idiv_site) "idiv %rcx\n ret")
LABEL(div0_site);
LABEL(idiv_site);

TEST(de_div_zero)
{
	struct frame f;
	ASSERT(catch_run(do_div0, 0, &f));
	EXPECT_EQ(f.vector, VEC_DE);
	EXPECT_EQ(f.rip, (uint64_t)div0_site);
	EXPECT_EQ(f.cs, KERNEL_CS);
}

TEST(de_idiv_overflow)
{
	struct frame f;
	ASSERT(catch_run(do_idiv_overflow, 0, &f));
	EXPECT_EQ(f.vector, VEC_DE);
	EXPECT_EQ(f.rip, (uint64_t)idiv_site);
}

/* ---- #UD ---- */
SNIPPET(do_ud2, ASM_LABEL(ud2_site) "ud2\n ret")
LABEL(ud2_site);

TEST(ud_ud2)
{
	struct frame f;
	ASSERT(catch_run(do_ud2, 0, &f));
	EXPECT_EQ(f.vector, VEC_UD);
	EXPECT_EQ(f.rip, (uint64_t)ud2_site);
	EXPECT_EQ(f.error, 0);
}

/* One-byte opcodes that are invalid in 64-bit mode (SDM 2D Table A-2, "i64"), including INTO
 * (0xCE) and BOUND (0x62; with AVX-512 it is the EVEX prefix, which is #UD too while
 * CR4.OSXSAVE=0). Each is placed at the start of a fresh code buffer followed by zeros. */
static const uint8_t invalid64[] = { 0x06, 0x07, 0x0E, 0x16, 0x17, 0x1E, 0x1F, 0x27, 0x2F, 0x37,
				     0x3F, 0x60, 0x61, 0x62, 0x9A, 0xCE, 0xD4, 0xD5, 0xD6, 0xEA };

static void expect_ud_opcode(uint8_t op)
{
	uint8_t *code = page_alloc();
	code[0] = op;
	code[1] = 0x0A;
	struct frame f;
	bool faulted = catch_run((void (*)(void *))code, 0, &f);
	EXPECTF(faulted && f.vector == VEC_UD && f.rip == (uint64_t)code,
		"opcode 0x%02x: faulted=%d vector=%lu rip=0x%lx", op, faulted, f.vector, f.rip);
}

TEST(ud_into_64bit)
{
	expect_ud_opcode(0xCE);
}

TEST(ud_bound_64bit)
{
	expect_ud_opcode(0x62);
}

TEST(ud_invalid_opcodes_64bit)
{
	for (size_t i = 0; i < sizeof(invalid64); i++)
		expect_ud_opcode(invalid64[i]);
}

/* ---- #BP: a trap, RIP = the next instruction; execution continues after IRETQ ---- */
SNIPPET(do_int3, "mov $1, %eax\n int3\n" ASM_LABEL(int3_after) "mov $2, %eax\n ret")
SNIPPET(do_int_3, "mov $1, %eax\n int $3\n" ASM_LABEL(int_3_after) "mov $2, %eax\n ret")
LABEL(int3_after);
LABEL(int_3_after);

static struct frame bp_seen;
static int bp_count;
static void on_bp(struct frame *f)
{
	bp_seen = *f;
	bp_count++;
}

static uint64_t call_ret_rax(void (*fn)(void *))
{
	uint64_t rax;
	asm volatile("call *%1" : "=a"(rax) : "r"(fn) : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
	return rax;
}

TEST(bp_int3)
{
	bp_count = 0;
	idt_set_handler(VEC_BP, on_bp);
	uint64_t rax = call_ret_rax(do_int3);
	idt_set_handler(VEC_BP, 0);
	EXPECT_EQ(bp_count, 1);
	EXPECT_EQ(bp_seen.rip, (uint64_t)int3_after);
	EXPECT_EQ(bp_seen.rax, 1);
	EXPECT_EQ(rax, 2); /* resumed after the handler returned */
}

TEST(bp_int_3_two_byte)
{
	bp_count = 0;
	idt_set_handler(VEC_BP, on_bp);
	uint64_t rax = call_ret_rax(do_int_3);
	idt_set_handler(VEC_BP, 0);
	EXPECT_EQ(bp_count, 1);
	EXPECT_EQ(bp_seen.rip, (uint64_t)int_3_after);
	EXPECT_EQ(rax, 2);
}

/* ---- #DB single step: TF set by POPF traps after the *next* instruction (SDM 3A §17.3.1.4) ---- */
SNIPPET(do_single_step,
	"pushfq\n orq $0x100, (%rsp)\n popfq\n"
	"mov $7, %eax\n" ASM_LABEL(step_after) "nop\n ret")
LABEL(step_after);

static struct frame db_seen;
static int db_count;
static void on_db(struct frame *f)
{
	db_seen = *f;
	db_count++;
	f->rflags &= ~RFLAGS_TF;
}

TEST(db_single_step)
{
	db_count = 0;
	idt_set_handler(VEC_DB, on_db);
	catch_run(do_single_step, 0, 0);
	idt_set_handler(VEC_DB, 0);
	EXPECT_EQ(db_count, 1);
	EXPECT_EQ(db_seen.rip, (uint64_t)step_after);
	EXPECT_EQ(db_seen.rax, 7);
	EXPECT(db_seen.rflags & RFLAGS_TF);
}

/* ---- #GP / #NP on segment loads: error code = selector with RPL bits cleared (SDM 3A §6.13) ---- */
SNIPPET(load_ds, "mov %ds, %eax\n" ASM_LABEL(load_ds_site) "mov %edi, %ds\n mov %eax, %ds\n ret")
LABEL(load_ds_site);

static void expect_ds_fault(uint16_t sel, uint64_t vector, uint64_t error)
{
	struct frame f;
	bool faulted = catch_run(load_ds, (void *)(uint64_t)sel, &f);
	EXPECTF(faulted, "loading DS with 0x%x did not fault", sel);
	EXPECTF(f.vector == vector && f.error == error && f.rip == (uint64_t)load_ds_site,
		"selector 0x%x: vector=%lu error=0x%lx rip=0x%lx, want vector %lu error 0x%lx", sel, f.vector,
		f.error, f.rip, vector, error);
	asm volatile("mov %0, %%ds" : : "r"(KERNEL_DS));
}

TEST(gp_selector_beyond_gdt_limit)
{
	expect_ds_fault(0xFFF8, VEC_GP, 0xFFF8);
	expect_ds_fault(0x1003, VEC_GP, 0x1000);
}

TEST(gp_system_descriptor_into_ds)
{
	expect_ds_fault(TSS_SEL, VEC_GP, TSS_SEL);
}

TEST(gp_rpl_above_dpl)
{
	/* CPL 0, RPL 3, DPL 0: max(CPL, RPL) > DPL */
	expect_ds_fault(KERNEL_DS | 3, VEC_GP, KERNEL_DS);
}

TEST(np_segment_not_present)
{
	int idx = GDT_FIRST_SPARE;
	gdt_set(idx, SEG_DATA(0) & ~SEG_PRESENT);
	expect_ds_fault((uint16_t)(idx * 8), VEC_NP, (uint64_t)idx * 8);
	gdt_set(idx, 0);
}

SNIPPET(load_ss, "mov %ss, %eax\n" ASM_LABEL(load_ss_site) "mov %edi, %ss\n mov %eax, %ss\n ret")
LABEL(load_ss_site);

TEST(ss_stack_segment_not_present)
{
	/* MOV SS with a not-present writable data segment: #SS(selector), not #NP (SDM 2B MOV) */
	int idx = GDT_FIRST_SPARE;
	gdt_set(idx, SEG_DATA(0) & ~SEG_PRESENT);
	struct frame f;
	bool faulted = catch_run(load_ss, (void *)(uint64_t)(idx * 8), &f);
	gdt_set(idx, 0);
	ASSERT(faulted);
	EXPECT_EQ(f.vector, VEC_SS);
	EXPECT_EQ(f.error, idx * 8);
	EXPECT_EQ(f.rip, (uint64_t)load_ss_site);
}

SNIPPET(do_int_0x90, ASM_LABEL(int90_site) "int $0x90\n ret")
LABEL(int90_site);

TEST(np_gate_not_present)
{
	/* error code for an IDT gate: index << 3 | IDT bit (bit 1) */
	struct frame f;
	idt_set_present(0x90, false);
	bool faulted = catch_run(do_int_0x90, 0, &f);
	idt_reset_gate(0x90);
	ASSERT(faulted);
	EXPECT_EQ(f.vector, VEC_NP);
	EXPECT_EQ(f.rip, (uint64_t)int90_site);
	TCG_QUIRK(f.error == ((0x90 << 4) | 2), "IDT error code uses vector*16 in long mode");
	EXPECT_EQ(f.error, (0x90 << 3) | 2);
}

/* ---- non-canonical addresses: #GP(0), or #SS(0) when the SS segment is used ---- */
SNIPPET(read_rdi, ASM_LABEL(read_rdi_site) "mov (%rdi), %rax\n ret")
SNIPPET(read_rbp_based, "push %rbp\n mov %rdi, %rbp\n" ASM_LABEL(rbp_site) "mov 8(%rbp), %rax\n pop %rbp\n ret")
LABEL(read_rdi_site);
LABEL(rbp_site);

TEST(gp_noncanonical)
{
	static const uint64_t addrs[] = { 0x0000800000000000ull, 0x8000000000000000ull, 0xFFFF7FFFFFFFFFF8ull };
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++) {
		struct frame f;
		bool faulted = catch_run(read_rdi, (void *)addrs[i], &f);
		EXPECTF(faulted && f.vector == VEC_GP && f.error == 0 && f.rip == (uint64_t)read_rdi_site,
			"addr 0x%lx: faulted=%d vector=%lu error=0x%lx", addrs[i], faulted, f.vector, f.error);
	}
}

TEST(ss_noncanonical_stack_reference)
{
	/* RBP as base register selects SS (SDM 1 §3.7.4): non-canonical gives #SS(0), not #GP */
	struct frame f;
	ASSERT(catch_run(read_rbp_based, (void *)0x8000000000000000ull, &f));
	EXPECT_EQ(f.error, 0);
	EXPECT_EQ(f.rip, (uint64_t)rbp_site);
	TCG_QUIRK(f.vector == VEC_GP, "non-canonical SS references raise #GP, not #SS");
	EXPECT_EQ(f.vector, VEC_SS);
}

/* ---- #PF error codes (SDM 3A §4.7): P=1, W/R=2, U/S=4, RSVD=8, I/D=16 ---- */
#define PF_P 1
#define PF_W 2
#define PF_U 4
#define PF_RSVD 8
#define PF_I 16

SNIPPET(write_rdi, ASM_LABEL(write_rdi_site) "movq $0x5a, (%rdi)\n ret")
LABEL(write_rdi_site);

static uint64_t test_page(uint64_t slot, uint64_t flags)
{
	uint64_t va = TEST_VA + slot * PAGE_4K;
	map_4k(va, (uint64_t)page_alloc(), flags);
	invlpg(va);
	return va;
}

TEST(pf_not_present_read)
{
	uint64_t va = test_page(0, 0) + 0x123;
	struct frame f;
	ASSERT(catch_run(read_rdi, (void *)va, &f));
	EXPECT_EQ(f.vector, VEC_PF);
	EXPECT_EQ(f.error, 0);
	EXPECT_EQ(f.cr2, va);
	EXPECT_EQ(f.rip, (uint64_t)read_rdi_site);
}

TEST(pf_not_present_write)
{
	uint64_t va = test_page(1, 0) + 8;
	struct frame f;
	ASSERT(catch_run(write_rdi, (void *)va, &f));
	EXPECT_EQ(f.vector, VEC_PF);
	EXPECT_EQ(f.error, PF_W);
	EXPECT_EQ(f.cr2, va);
}

TEST(pf_write_to_read_only)
{
	write_cr0(read_cr0() | CR0_WP); /* supervisor writes honour R/W only with CR0.WP=1 */
	uint64_t va = test_page(2, PTE_P) + 0x10;
	struct frame f;
	ASSERT(catch_run(write_rdi, (void *)va, &f));
	EXPECT_EQ(f.vector, VEC_PF);
	EXPECT_EQ(f.error, PF_P | PF_W);
	EXPECT_EQ(f.cr2, va);
	EXPECT_EQ(f.rip, (uint64_t)write_rdi_site);
}

uint64_t user_target USER_DATA; /* global: referenced from asm */
USER_SNIPPET(user_read_target, "mov user_target(%rip), %rax\n" ASM_LABEL(user_read_site) "mov (%rax), %rax\n"
			       "xor %eax, %eax\n syscall")
USER_SNIPPET(user_write_target, "mov user_target(%rip), %rax\n" ASM_LABEL(user_write_site) "movq $1, (%rax)\n"
				"xor %eax, %eax\n syscall")
LABEL(user_read_site);
LABEL(user_write_site);

TEST(pf_user_reads_supervisor_page)
{
	uint64_t va = test_page(3, PTE_P | PTE_W) + 0x40;
	user_target = va;
	struct frame f;
	user_run((void (*)(void))user_read_target, 0, &f);
	EXPECT_EQ(f.vector, VEC_PF);
	EXPECT_EQ(f.error, PF_P | PF_U);
	EXPECT_EQ(f.cr2, va);
	EXPECT_EQ(f.rip, (uint64_t)user_read_site);
	EXPECT_EQ(f.cs, USER_CS64 | 3);
}

TEST(pf_user_writes_read_only_user_page)
{
	uint64_t va = test_page(4, PTE_P | PTE_U) + 0x80;
	user_target = va;
	struct frame f;
	user_run((void (*)(void))user_write_target, 0, &f);
	EXPECT_EQ(f.vector, VEC_PF);
	EXPECT_EQ(f.error, PF_P | PF_W | PF_U);
	EXPECT_EQ(f.cr2, va);
	EXPECT_EQ(f.rip, (uint64_t)user_write_site);
}

TEST(pf_user_read_user_page_ok)
{
	uint64_t va = test_page(5, PTE_P | PTE_U);
	user_target = va;
	struct frame f;
	user_run((void (*)(void))user_read_target, 0, &f);
	EXPECT_EQ(f.vector, VEC_SYSCALL);
}

TEST(pf_reserved_bit)
{
	/* a PTE bit between MAXPHYADDR and 51 is reserved (SDM 3A §4.5.4, Table 4-20) */
	if (!cpu_has_leaf(0x80000008))
		test_skip("no CPUID leaf 0x80000008");
	unsigned maxphy = cpuid(0x80000008, 0).eax & 0xFF;
	if (maxphy >= 52)
		test_skip("MAXPHYADDR is 52: no reserved address bits");
	uint64_t va = test_page(6, PTE_P | PTE_W);
	pte_set_bits(va, 1ull << maxphy);
	invlpg(va);
	struct frame f;
	ASSERT(catch_run(read_rdi, (void *)va, &f));
	EXPECT_EQ(f.vector, VEC_PF);
	/* "bit 3 of the error code can be set only if bit 0 is also set" (SDM 3A §4.7) */
	EXPECT_EQ(f.cr2, va);
	TCG_QUIRK(f.error == PF_RSVD, "reserved-bit #PF error code lacks P");
	EXPECT_EQ(f.error, PF_P | PF_RSVD);
}

TEST(pf_nx_instruction_fetch)
{
	if (!cpu_has_nx())
		test_skip("CPUID.80000001H:EDX.NX=0");
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	uint64_t va = test_page(7, PTE_P | PTE_W | PTE_NX);
	*(volatile uint8_t *)va = 0xC3; /* ret */
	struct frame f;
	bool faulted = catch_run((void (*)(void *))va, 0, &f);
	pte_clear_bits(va, PTE_NX);
	invlpg(va);
	bool ran = !catch_run((void (*)(void *))va, 0, 0);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_NXE);
	ASSERT(faulted);
	EXPECT_EQ(f.vector, VEC_PF);
	EXPECT_EQ(f.error, PF_P | PF_I);
	EXPECT_EQ(f.cr2, va);
	EXPECT_EQ(f.rip, va);
	EXPECT(ran);
}

/* ---- #DF: a #PF whose delivery faults again becomes #DF (SDM 3A §6.15, Table 6-5). The #PF
 * gate uses IST2, pointed at unmapped memory; #DF has its own good IST1 stack. ---- */
TEST(df_pf_with_bad_stack_via_ist)
{
	uint64_t bad_stack = TEST_VA + 0x100000; /* nothing is mapped there */
	uint64_t saved = tss()->ist[2];
	uint64_t va = test_page(8, 0);
	tss()->ist[2] = bad_stack;
	idt_set_ist(VEC_PF, 2);
	struct frame f;
	bool faulted = catch_run(read_rdi, (void *)va, &f);
	idt_set_ist(VEC_PF, 0);
	tss()->ist[2] = saved;
	ASSERT(faulted);
	EXPECT_EQ(f.vector, VEC_DF);
	EXPECT_EQ(f.error, 0);
	/* CR2 is from the #PF hit while pushing the frame below bad_stack (push order unspecified) */
	uint64_t cr2 = read_cr2();
	EXPECTF(cr2 >= bad_stack - 64 && cr2 < bad_stack, "cr2=0x%lx", cr2);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	RUN(de_div_zero);
	RUN(de_idiv_overflow);
	RUN(ud_ud2);
	RUN(ud_into_64bit);
	RUN(ud_bound_64bit);
	RUN(ud_invalid_opcodes_64bit);
	RUN(bp_int3);
	RUN(bp_int_3_two_byte);
	RUN(db_single_step);
	RUN(gp_selector_beyond_gdt_limit);
	RUN(gp_system_descriptor_into_ds);
	RUN(gp_rpl_above_dpl);
	RUN(np_segment_not_present);
	RUN(np_gate_not_present);
	RUN(ss_stack_segment_not_present);
	RUN(gp_noncanonical);
	RUN(ss_noncanonical_stack_reference);
	RUN(pf_not_present_read);
	RUN(pf_not_present_write);
	RUN(pf_write_to_read_only);
	RUN(pf_user_reads_supervisor_page);
	RUN(pf_user_writes_read_only_user_page);
	RUN(pf_user_read_user_page_ok);
	RUN(pf_reserved_bit);
	RUN(pf_nx_instruction_fetch);
	RUN(df_pf_with_bad_stack_via_ist);
	test_finish();
}
