/* Interrupts, NMIs and events (SDM 3C §24.6.1, §25.2-25.5, §26.6, §27.2): external-interrupt
 * exiting with and without "acknowledge interrupt on exit" (a LAPIC self-IPI), NMI exiting (an
 * NMI IPI the guest sends itself), interrupt-window and NMI-window exiting, event injection seen
 * by the guest's IDT handlers, IDT-vectoring information, the VMX-preemption timer, the
 * monitor trap flag and the HLT activity state. */
#include "vmx-tests.h"

#define APIC_ISR 0x100
#define APIC_IRR 0x200
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310

static void need_apic(void)
{
	if (!vmx_apic_init())
		test_skip("not supported: xAPIC");
}

static bool apic_bit(uint32_t base, uint8_t v) { return (vmx_apic_read(base + 0x10 * (v / 32)) >> (v % 32)) & 1; }

static volatile int host_irqs;
static void host_eoi_handler(struct frame *f)
{
	(void)f;
	host_irqs++;
	vmx_apic_eoi();
}

/* Take a pending LAPIC interrupt in the host (briefly IF = 1) and EOI it. */
static void host_drain(uint8_t vector)
{
	host_irqs = 0;
	idt_set_handler(vector, host_eoi_handler);
	asm volatile("sti; nop; nop; cli" ::: "memory");
	idt_set_handler(vector, 0);
}

/* Leave no trace of `vector` in the LAPIC whatever the test saw: take it if still requested,
 * EOI it while in service. */
static void apic_cleanup(uint8_t vector)
{
	if (apic_bit(APIC_IRR, vector))
		host_drain(vector);
	for (int i = 0; i < 4 && apic_bit(APIC_ISR, vector); i++)
		vmx_apic_eoi();
}

static uint64_t stub_of(unsigned vector) { return (uint64_t)vmx_guest_stubs + 16ull * vector; }

/* ---- external interrupts ---- */

TEST(extint_exit_ack_on_exit_ignores_guest_if)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	need_apic();
	if (!vmx_set_pin(PIN_EXTINT_EXIT) || !vmx_set_exit(EXIT_ACK_INTR))
		test_skip("not supported");
	vmx_apic_self_ipi(0x41); /* pending: the host runs with IF = 0 */
	vmx_vm_run(&vm, &e); /* the guest has RFLAGS.IF = 0: does not matter (SDM 3C §25.2) */
	EXPECT_EXIT(e, EXIT_EXTINT);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x41);
	EXPECT_EQ(e.guest_rip, (uint64_t)vmx_guest_return); /* before the first guest instruction */
	/* acknowledged: in service, no longer requested */
	EXPECT(apic_bit(APIC_ISR, 0x41));
	EXPECT(!apic_bit(APIC_IRR, 0x41));
	vmx_apic_eoi();
	EXPECT(!apic_bit(APIC_ISR, 0x41));
	apic_cleanup(0x41);
}

TEST(extint_exit_ack_on_exit_guest_if1)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	need_apic();
	if (!vmx_set_pin(PIN_EXTINT_EXIT) || !vmx_set_exit(EXIT_ACK_INTR))
		test_skip("not supported");
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vmx_apic_self_ipi(0x4C);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXTINT);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x4C);
	EXPECT_EQ(e.guest_rip, (uint64_t)vmx_guest_return);
	EXPECT(apic_bit(APIC_ISR, 0x4C));
	apic_cleanup(0x4C);
}

TEST(extint_exit_without_ack)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	need_apic();
	if (!vmx_set_pin(PIN_EXTINT_EXIT))
		test_skip("not supported");
	vmw_clear(VMCS_EXIT_CTLS, EXIT_ACK_INTR);
	vmx_apic_self_ipi(0x42);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXTINT);
	EXPECT(!(e.intr_info & INTR_INFO_VALID)); /* not acknowledged: no vector */
	EXPECT(apic_bit(APIC_IRR, 0x42));
	host_drain(0x42);
	EXPECT_EQ(host_irqs, 1);
	apic_cleanup(0x42);
}

TEST(extint_delivered_to_guest_without_exiting)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	need_apic();
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vmx_apic_self_ipi(0x43);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, 0x43);
	EXPECT_EQ(vmx_guest_event.rip, (uint64_t)vmx_guest_return);
	EXPECT(apic_bit(APIC_ISR, 0x43));
	apic_cleanup(0x43);
}

TEST(extint_blocked_by_guest_if_without_exiting)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	need_apic();
	vmx_apic_self_ipi(0x44); /* guest IF = 0: stays pending */
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT(apic_bit(APIC_IRR, 0x44));
	apic_cleanup(0x44);
}

/* RDI = APIC MMIO base, ESI = vector: the guest sends itself a fixed IPI, then spins a while. */
SNIPPET(g_self_ipi, "or $0x44000, %esi\n movl $0, 0x310(%rdi)\n mov %esi, 0x300(%rdi)\n"
		    "mov $2000000, %ecx\n 1: dec %ecx\n jnz 1b\n"
		    "mov $0x600D600D, %eax\n vmcall\n ud2")

TEST(extint_exit_interrupt_arriving_in_guest)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_self_ipi);
	need_apic();
	if (!vmx_set_pin(PIN_EXTINT_EXIT) || !vmx_set_exit(EXIT_ACK_INTR))
		test_skip("not supported");
	vm.regs.rdi = vmx_apic_base();
	vm.regs.rsi = 0x4A;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXTINT);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x4A);
	EXPECT(apic_bit(APIC_ISR, 0x4A));
	apic_cleanup(0x4A);
}

TEST(extint_arriving_in_guest_delivered_to_guest)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_self_ipi);
	need_apic();
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vm.regs.rdi = vmx_apic_base();
	vm.regs.rsi = 0x4B;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, 0x4B);
	apic_cleanup(0x4B);
}

/* ---- NMIs ---- */

/* RDI = APIC MMIO base, RSI = ICR high (destination). Sends itself an NMI, then spins a while. */
SNIPPET(g_self_nmi, "mov %esi, 0x310(%rdi)\n movl $0x4400, 0x300(%rdi)\n"
		    "mov $2000000, %ecx\n 1: dec %ecx\n jnz 1b\n"
		    "mov $0x600D600D, %eax\n vmcall\n ud2")

static void setup_self_nmi(struct vmx_vm *vm)
{
	need_apic();
	vm->regs.rdi = vmx_apic_base();
	vm->regs.rsi = (uint64_t)vmx_apic_id() << 24;
}

TEST(nmi_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_self_nmi);
	if (!vmx_set_pin(PIN_NMI_EXIT))
		test_skip("not supported");
	setup_self_nmi(&vm);
	vmx_vm_run(&vm, &e);
	host_iret_unblock_nmi(); /* an NMI that causes a VM exit blocks NMIs (SDM 3C §27.1) */
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_NMI | VEC_NMI);
}

TEST(nmi_delivered_to_guest_without_exiting)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_self_nmi);
	setup_self_nmi(&vm);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, VEC_NMI);
	/* the guest is in its NMI handler: blocking by NMI is saved */
	EXPECT(vmr(GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_NMI);
	host_iret_unblock_nmi();
}

/* ---- interrupt and NMI windows ---- */

SNIPPET(g_sti_nop, "sti\n nop\n" ASM_LABEL(g_sti_window) "nop\n cli\n ret")
LABEL(g_sti_window);
SNIPPET(g_nop_nop, "nop\n" ASM_LABEL(g_nop_window) "nop\n ret")
LABEL(g_nop_window);

TEST(interrupt_window_immediate)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_nop_nop);
	if (!vmx_set_proc(PROC_INTR_WINDOW))
		test_skip("not supported");
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_INTR_WINDOW);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_nop_nop);
	EXPECT_EQ(e.qual, 0);
}

TEST(interrupt_window_after_sti_shadow)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_sti_nop);
	if (!vmx_set_proc(PROC_INTR_WINDOW))
		test_skip("not supported");
	vmx_vm_run(&vm, &e);
	/* STI blocks for one more instruction: the exit comes after the NOP that follows it */
	EXPECT_EXIT(e, EXIT_INTR_WINDOW);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_sti_window);
	EXPECT_EQ(vmr(GUEST_INTERRUPTIBILITY) & 3, 0);
}

TEST(interrupt_window_sti_blocking_at_entry)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_nop_nop);
	if (!vmx_set_proc(PROC_INTR_WINDOW))
		test_skip("not supported");
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_STI);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_INTR_WINDOW);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_nop_window);
}

static void need_vnmi(void)
{
	if (!vmx_set_pin(PIN_NMI_EXIT | PIN_VIRTUAL_NMI) || !vmx_set_proc(PROC_NMI_WINDOW))
		test_skip("not supported: virtual NMIs / NMI-window exiting");
}

TEST(nmi_window_immediate)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_nop_nop);
	need_vnmi();
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_NMI_WINDOW);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_nop_nop);
}

SNIPPET(g_iret, "mov %rsp, %rax\n pushq $0x10\n pushq %rax\n pushfq\n pushq $0x8\n"
		"lea g_iret_target(%rip), %rax\n pushq %rax\n iretq\n" ASM_LABEL(g_iret_target) "nop\n ret")
LABEL(g_iret_target);

TEST(nmi_window_opens_at_iret)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_iret);
	need_vnmi();
	vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_NMI); /* virtual-NMI blocking */
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_NMI_WINDOW);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_iret_target);
	EXPECT_EQ(vmr(GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_NMI, 0);
}

TEST(nmi_window_blocked_by_movss)
{
	/* blocking by MOV SS holds the NMI window closed for one instruction (SDM 3C §25.2) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_nop_nop);
	need_vnmi();
	vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_MOV_SS);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_NMI_WINDOW);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_nop_window);
}

/* ---- event injection (SDM 3C §26.6) ---- */

static void inject(uint32_t info, uint32_t err, uint32_t len)
{
	vmw(VMCS_ENTRY_INTR_INFO, info);
	vmw(VMCS_ENTRY_EXC_ERROR, err);
	vmw(VMCS_ENTRY_INSN_LEN, len);
}

static void inject_case(uint32_t info, uint32_t err, uint32_t len, uint64_t vector, uint64_t want_err, uint64_t rip_off)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	inject(info, err, len);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, vector);
	EXPECT_EQ(vmx_guest_event.count, 1);
	EXPECT_EQ(vmx_guest_event.error, want_err);
	EXPECT_EQ(vmx_guest_event.rip, (uint64_t)vmx_guest_return + rip_off);
	EXPECT_EQ(vmx_guest_event.cs, KERNEL_CS);
	/* the valid bit of the VM-entry interruption-information field is cleared by the VM exit */
	EXPECT(!(vmr(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID));
}

TEST(inject_external_interrupt) { inject_case(INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x45, 0, 0, 0x45, 0, 0); }
TEST(inject_nmi)
{
	inject_case(INTR_INFO_VALID | INTR_TYPE_NMI | VEC_NMI, 0, 0, VEC_NMI, 0, 0);
	EXPECT(vmr(GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_NMI);
}
TEST(inject_hw_exception_with_error_code)
{
	inject_case(INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_GP, 0x1234, 0, VEC_GP, 0x1234, 0);
}
TEST(inject_hw_exception_without_error_code) { inject_case(INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_UD, 0, 0, VEC_UD, 0, 0); }
TEST(inject_software_interrupt) { inject_case(INTR_INFO_VALID | INTR_TYPE_SW_INT | 0x80, 0, 2, 0x80, 0, 2); }
TEST(inject_software_exception) { inject_case(INTR_INFO_VALID | INTR_TYPE_SW_EXC | VEC_BP, 0, 1, VEC_BP, 0, 1); }
TEST(inject_privileged_software_exception)
{
	inject_case(INTR_INFO_VALID | INTR_TYPE_PRIV_SW_EXC | VEC_DB, 0, 1, VEC_DB, 0, 1);
}
TEST(inject_pf_error_code)
{
	inject_case(INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_PF, 0x7, 0, VEC_PF, 0x7, 0);
}

TEST(injection_not_blocked_by_if_for_exceptions)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	inject(INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_UD, 0, 0); /* RFLAGS.IF = 0 */
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, VEC_UD);
	/* delivery through an interrupt gate cleared IF (it was 0 anyway) and pushed RFLAGS */
	EXPECT_EQ(vmx_guest_event.rflags & RFLAGS_IF, 0);
}

TEST(idt_vectoring_info_external_interrupt)
{
	/* An injected event whose delivery causes an exit: the exit records the event in the
	 * IDT-vectoring information (SDM 3C §27.2.4). Gate 0x46 is not present: #NP(0x46*8+2+EXT). */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_NP);
	inject(INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x46, 0, 0);
	vmx_guest_idt_set_present(0x46, false);
	vmx_vm_run(&vm, &e);
	vmx_guest_idt_set_present(0x46, true);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_NP);
	EXPECT_EQ(e.intr_error, 0x46 * 8 + 2 + 1);
	EXPECT_EQ(e.idt_info, INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x46);
}

TEST(idt_vectoring_info_software_interrupt)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_NP);
	inject(INTR_INFO_VALID | INTR_TYPE_SW_INT | 0x47, 0, 2);
	vmx_guest_idt_set_present(0x47, false);
	vmx_vm_run(&vm, &e);
	vmx_guest_idt_set_present(0x47, true);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_NP);
	EXPECT_EQ(e.intr_error, 0x47 * 8 + 2); /* EXT = 0 for INT n */
	EXPECT_EQ(e.idt_info, INTR_INFO_VALID | INTR_TYPE_SW_INT | 0x47);
	EXPECT_EQ(e.insn_len, 2); /* the software interrupt's length is reported */
	EXPECT_EQ(e.guest_rip, (uint64_t)vmx_guest_return);
}

SNIPPET(g_ud_for_vect, "ud2\n ret")
TEST(idt_vectoring_info_guest_exception)
{
	/* an exception raised by a guest instruction whose delivery faults (#NP on a not-present
	 * gate): IDT-vectoring information = the original #UD, hardware exception */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_ud_for_vect);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_NP);
	vmx_guest_idt_set_present(VEC_UD, false);
	vmx_vm_run(&vm, &e);
	vmx_guest_idt_set_present(VEC_UD, true);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_NP);
	EXPECT_EQ(e.intr_error, VEC_UD * 8 + 2 + 1);
	EXPECT_EQ(e.idt_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_UD);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_ud_for_vect);
}

/* ---- VMX-preemption timer (SDM 3C §25.5.1) ---- */

SNIPPET(g_spin, "mov $5000000, %ecx\n" ASM_LABEL(g_spin_loop) "dec %ecx\n jnz g_spin_loop\n" ASM_LABEL(g_spin_end)
		"mov $0x600D600D, %eax\n vmcall\n ud2")
LABEL(g_spin_loop);
LABEL(g_spin_end);
SNIPPET(g_spin_cpuid, "mov $100000, %ecx\n 1: dec %ecx\n jnz 1b\n xor %eax, %eax\n cpuid\n ret")

static void need_timer(void)
{
	if (!vmx_set_pin(PIN_PREEMPT_TIMER))
		test_skip("not supported");
}

TEST(preemption_timer_zero_exits_before_first_instruction)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need_timer();
	vmw(GUEST_PREEMPT_TIMER, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_PREEMPT_TIMER);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_spin);
	EXPECT_EQ(e.qual, 0);
}

TEST(preemption_timer_expires_in_guest_loop)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need_timer();
	vmw(GUEST_PREEMPT_TIMER, 2000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_PREEMPT_TIMER);
	EXPECTF(e.guest_rip >= (uint64_t)g_spin_loop && e.guest_rip < (uint64_t)g_spin_end, "guest rip 0x%lx", e.guest_rip);
	/* without "save VMX-preemption timer value" the field keeps what VM entry used */
	EXPECT_EQ(vmr(GUEST_PREEMPT_TIMER), 2000);
}

TEST(preemption_timer_value_saved)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin_cpuid);
	need_timer();
	if (!vmx_set_exit(EXIT_SAVE_PREEMPT))
		test_skip("not supported: saving the timer value");
	vmw(GUEST_PREEMPT_TIMER, 0x7FFFFFFF);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_CPUID);
	uint64_t left = vmr(GUEST_PREEMPT_TIMER);
	EXPECTF(left < 0x7FFFFFFF && left > 0x70000000, "saved timer value 0x%lx", left);
}

TEST(preemption_timer_saved_zero_on_timer_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need_timer();
	if (!vmx_set_exit(EXIT_SAVE_PREEMPT))
		test_skip("not supported: saving the timer value");
	vmw(GUEST_PREEMPT_TIMER, 1000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_PREEMPT_TIMER);
	EXPECT_EQ(vmr(GUEST_PREEMPT_TIMER), 0);
}

TEST(preemption_timer_wakes_hlt_activity)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need_timer();
	if (!(vmx_caps.misc & MISC_ACT_HLT))
		test_skip("not supported: HLT activity state");
	vmw(GUEST_ACTIVITY, ACTIVITY_HLT);
	vmw(GUEST_PREEMPT_TIMER, 1000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_PREEMPT_TIMER);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_spin);
	EXPECT_EQ(vmr(GUEST_ACTIVITY), ACTIVITY_HLT); /* the exit happened in the HLT state */
}

TEST(shutdown_activity_executes_nothing_until_the_timer)
{
	/* A guest entered in the shutdown state executes no instruction; the preemption timer still
	 * counts (SDM 3C §25.5.1) and its exit saves the shutdown state (§27.3.4) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need_timer();
	if (!(vmx_caps.misc & MISC_ACT_SHUTDOWN))
		test_skip("not supported: shutdown activity state");
	vmw(GUEST_ACTIVITY, ACTIVITY_SHUTDOWN);
	vmw(GUEST_PREEMPT_TIMER, 1000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_PREEMPT_TIMER);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_spin);
	EXPECT_EQ(vmr(GUEST_ACTIVITY), ACTIVITY_SHUTDOWN);
}

TEST(hlt_activity_woken_by_injected_interrupt)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	if (!(vmx_caps.misc & MISC_ACT_HLT))
		test_skip("not supported: HLT activity state");
	vmw(GUEST_ACTIVITY, ACTIVITY_HLT);
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	inject(INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x48, 0, 0);
	arm_watchdog();
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, 0x48);
	EXPECT_EQ(vmr(GUEST_ACTIVITY), ACTIVITY_ACTIVE);
}

/* ---- monitor trap flag (SDM 3C §25.5.2) ---- */

TEST(mtf_exit_after_one_instruction)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_nop_nop);
	if (!vmx_set_proc(PROC_MTF))
		test_skip("not supported");
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_MTF);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_nop_window);
	EXPECT_EQ(e.qual, 0);
	vmx_vm_run(&vm, &e); /* and again */
	EXPECT_EXIT(e, EXIT_MTF);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_nop_window + 1);
}

TEST(mtf_exit_after_injected_event_delivery)
{
	/* an MTF exit is pending after delivery of an injected event: before the handler's first
	 * instruction (SDM 3C §26.7.2) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	if (!vmx_set_proc(PROC_MTF))
		test_skip("not supported");
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	inject(INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x49, 0, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_MTF);
	EXPECT_EQ(e.guest_rip, stub_of(0x49));
	EXPECT_EQ(vmx_guest_event.count, 0);
}

TEST(mtf_not_after_vmcall_exit)
{
	/* an instruction that causes a VM exit does not also produce an MTF exit */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return + 5);
	if (!vmx_set_proc(PROC_MTF))
		test_skip("not supported");
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
}

void vmx_event_tests(void)
{
	RUN(extint_exit_ack_on_exit_ignores_guest_if);
	RUN(extint_exit_ack_on_exit_guest_if1);
	RUN(extint_exit_without_ack);
	RUN(extint_delivered_to_guest_without_exiting);
	RUN(extint_blocked_by_guest_if_without_exiting);
	RUN(extint_exit_interrupt_arriving_in_guest);
	RUN(extint_arriving_in_guest_delivered_to_guest);
	RUN(nmi_exit);
	RUN(nmi_delivered_to_guest_without_exiting);
	RUN(interrupt_window_immediate);
	RUN(interrupt_window_after_sti_shadow);
	RUN(interrupt_window_sti_blocking_at_entry);
	RUN(nmi_window_immediate);
	RUN(nmi_window_opens_at_iret);
	RUN(nmi_window_blocked_by_movss);
	RUN(inject_external_interrupt);
	RUN(inject_nmi);
	RUN(inject_hw_exception_with_error_code);
	RUN(inject_hw_exception_without_error_code);
	RUN(inject_software_interrupt);
	RUN(inject_software_exception);
	RUN(inject_privileged_software_exception);
	RUN(inject_pf_error_code);
	RUN(injection_not_blocked_by_if_for_exceptions);
	RUN(idt_vectoring_info_external_interrupt);
	RUN(idt_vectoring_info_software_interrupt);
	RUN(idt_vectoring_info_guest_exception);
	RUN(preemption_timer_zero_exits_before_first_instruction);
	RUN(preemption_timer_expires_in_guest_loop);
	RUN(preemption_timer_value_saved);
	RUN(preemption_timer_saved_zero_on_timer_exit);
	RUN(preemption_timer_wakes_hlt_activity);
	RUN(hlt_activity_woken_by_injected_interrupt);
	RUN(shutdown_activity_executes_nothing_until_the_timer);
	RUN(mtf_exit_after_one_instruction);
	RUN(mtf_exit_after_injected_event_delivery);
	RUN(mtf_not_after_vmcall_exit);
}
