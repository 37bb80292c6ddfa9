/* vmx-intr.elf: a hypervisor's own interrupts while its guest runs (SDM 3C §25.2, §26.6,
 * §26.7.4, §27.2.2, §27.3.4). The kernel is a small VMX hypervisor whose guest spins, halts or
 * enables interrupts while the hypervisor's LAPIC timer or PIT (through the 8259) fires:
 *  - with "external-interrupt exiting" the guest exits with reason 1 (with "acknowledge
 *    interrupt on exit": the vector in the exit interruption information, the interrupt in
 *    service; without: nothing acknowledged, the hypervisor takes it through its own IDT);
 *  - without it the interrupt goes through the guest's IDT when RFLAGS.IF = 1 and no STI
 *    shadow, later otherwise (after STI + one instruction), also with EPT on (the delivery
 *    touches guest pages for the first time) and out of HLT;
 *  - the hypervisor's interrupt-window exiting still exits first;
 *  - an event the hypervisor injects is delivered before an interrupt exit;
 *  - the VMX-preemption timer slices a spinning guest on time, with and without saving its
 *    value across interrupt exits.
 * Run on the bare machine it checks the hardware model; as L1 under L0 (turtles run --l0
 * --nested) it checks that L0 delivers L1's interrupts as the hardware would. Same output. */
#include "asm_snippet.h"
#include "platform.h"
#include "rt.h"
#include "vmx.h"

#define VEC_TIMER 0x50
#define VEC_WATCHDOG 0x51
#define VEC_INJECT 0x60
#define VEC_PIC 0x20
#define VEC_SPURIOUS 0xFF
#define TICKS 8

/* ---- guests ---- */

volatile uint64_t vi_spin_count;
/* Spin forever, counting. */
SNIPPET(g_spin, ASM_LABEL(g_spin_loop) "incq vi_spin_count(%rip)\n jmp g_spin_loop\n" ASM_LABEL(g_spin_end) "ud2")
LABEL(g_spin_loop);
LABEL(g_spin_end);
/* With IF = 0, count down a while (an interrupt arrives meanwhile), then STI and one more
 * instruction: the interrupt is due at g_after_shadow. */
SNIPPET(g_late_sti, "mov $3000000, %ecx\n 1: dec %ecx\n jnz 1b\n sti\n nop\n" ASM_LABEL(g_after_shadow) "nop\n cli\n"
		    "mov $0x600D600D, %eax\n vmcall\n ud2")
LABEL(g_after_shadow);
/* HLT in a loop (the hypervisor gives it no HLT exiting). */
SNIPPET(g_hlt, "1: hlt\n" ASM_LABEL(g_after_hlt) "jmp 1b")
LABEL(g_after_hlt);

/* ---- helpers ---- */

static bool need_vmx(void)
{
	if (!vmx_caps.vmx)
		test_skip("not supported: CPUID.1:ECX.VMX=0");
	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if ((fc & FEATURE_CONTROL_LOCK) && !(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX))
		test_skip("not supported: VMX disabled by firmware in IA32_FEATURE_CONTROL");
	vmx_on();
	return true;
}

static void vm_setup(struct vmx_vm *vm, const void *rip)
{
	need_vmx();
	vmx_vm_init(vm);
	vmx_vm_set_entry(vm, (void (*)(void))rip);
	vi_spin_count = 0;
}

static void need(bool ok)
{
	if (!ok)
		test_skip("not supported");
}

static uint64_t stub_of(unsigned vector) { return (uint64_t)vmx_guest_stubs + 16ull * vector; }
static bool in_spin_loop(uint64_t rip) { return rip >= (uint64_t)g_spin_loop && rip < (uint64_t)g_spin_end; }
static bool isr(uint8_t v) { return lapic_vector_bit(LAPIC_ISR0, v); }
static bool irr(uint8_t v) { return lapic_vector_bit(LAPIC_IRR0, v); }

/* LAPIC timer: a count of n at divide 16 (29 * 16 * n CPU cycles on turtles: 2000 ~ 0.93M). */
static void timer_periodic(uint32_t n) { lapic_timer_start(LVT_TIMER_PERIODIC, VEC_TIMER, 16, n); }
static void timer_oneshot(uint8_t vector, uint32_t n) { lapic_timer_start(LVT_TIMER_ONESHOT, vector, 16, n); }

static volatile int host_irqs;
static void host_isr(struct frame *f)
{
	(void)f;
	host_irqs++;
	lapic_eoi();
}

/* Leave the LAPIC clean: timer stopped, nothing requested or in service. */
static void timer_cleanup(void)
{
	lapic_timer_stop();
	idt_set_handler(VEC_TIMER, host_isr);
	idt_set_handler(VEC_WATCHDOG, host_isr);
	asm volatile("sti; nop; nop; cli" ::: "memory");
	idt_set_handler(VEC_TIMER, 0);
	idt_set_handler(VEC_WATCHDOG, 0);
	for (int i = 0; i < 8 && (isr(VEC_TIMER) || isr(VEC_WATCHDOG) || isr(VEC_INJECT)); i++)
		lapic_eoi();
}

/* A watchdog for guests that would spin forever if the interrupt under test got lost: the
 * VMX-preemption timer far beyond the expected run time (exit 52 = the failure). */
static void arm_watchdog(void)
{
	if (vmx_set_pin(PIN_PREEMPT_TIMER))
		vmw(GUEST_PREEMPT_TIMER, 400000000ull >> MISC_PREEMPT_RATE(vmx_caps.misc));
}

#define EXPECT_EXIT(e, want)                                                                          \
	EXPECTF((e).status == VMX_EXITED && (e).reason == (uint32_t)(want),                           \
		"status %d reason 0x%x want 0x%x (qual 0x%lx rip 0x%lx intr 0x%x)", (e).status, (e).reason, \
		(uint32_t)(want), (e).qual, (e).guest_rip, (e).intr_info)
#define EXPECT_GUEST_EVENT(vm, e, vec)                                                                  \
	EXPECTF((e).status == VMX_EXITED && (e).reason == EXIT_VMCALL && (vm).regs.rax == VMX_GUEST_EVENT && \
			vmx_guest_event.vector == (vec),                                                 \
		"status %d reason 0x%x rax 0x%lx rip 0x%lx event vector 0x%lx count %lu (want vector 0x%x)",   \
		(e).status, (e).reason, (vm).regs.rax, (e).guest_rip, vmx_guest_event.vector,             \
		vmx_guest_event.count, (unsigned)(vec))

/* ---- external-interrupt exiting ---- */

/* The timer fires TICKS times while the guest spins: each time an exit with the vector. */
TEST(timer_exits_with_vector_while_guest_spins)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need(vmx_set_pin(PIN_EXTINT_EXIT) && vmx_set_exit(EXIT_ACK_INTR));
	arm_watchdog();
	timer_periodic(2000);
	int good = 0;
	uint64_t last = 0;
	for (int i = 0; i < TICKS; i++) {
		vmx_vm_run(&vm, &e);
		EXPECT_EXIT(e, EXIT_EXTINT);
		if (e.reason != EXIT_EXTINT)
			break;
		EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_EXTINT | VEC_TIMER);
		EXPECT(!(e.idt_info & INTR_INFO_VALID));
		EXPECTF(in_spin_loop(e.guest_rip), "guest rip 0x%lx", e.guest_rip);
		EXPECTF(vi_spin_count > last, "no guest progress before tick %d", i);
		EXPECT(isr(VEC_TIMER)); /* acknowledged on exit: in service */
		EXPECT(!irr(VEC_TIMER));
		last = vi_spin_count;
		lapic_eoi();
		good++;
	}
	timer_cleanup();
	EXPECT_EQ(good, TICKS);
}

/* Without "acknowledge interrupt on exit": no vector, the interrupt stays requested and the
 * hypervisor takes it through its own IDT. */
TEST(timer_exits_without_ack_taken_by_host)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need(vmx_set_pin(PIN_EXTINT_EXIT));
	vmw_clear(VMCS_EXIT_CTLS, EXIT_ACK_INTR);
	arm_watchdog();
	idt_set_handler(VEC_TIMER, host_isr);
	host_irqs = 0;
	timer_periodic(2000);
	int good = 0;
	for (int i = 0; i < TICKS; i++) {
		vmx_vm_run(&vm, &e);
		EXPECT_EXIT(e, EXIT_EXTINT);
		if (e.reason != EXIT_EXTINT)
			break;
		EXPECT(!(e.intr_info & INTR_INFO_VALID));
		EXPECTF(in_spin_loop(e.guest_rip), "guest rip 0x%lx", e.guest_rip);
		EXPECT(irr(VEC_TIMER));
		EXPECT(!isr(VEC_TIMER));
		int before = host_irqs;
		asm volatile("sti; nop; nop; cli" ::: "memory");
		EXPECT_EQ(host_irqs, before + 1);
		good++;
	}
	timer_cleanup();
	EXPECT_EQ(good, TICKS);
	EXPECT_EQ(host_irqs, TICKS);
}

/* The PIT through the 8259 (LINT0 in ExtINT mode): the vector comes from the 8259's INTA. */
TEST(pit_through_8259_exits_with_vector)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need(vmx_set_pin(PIN_EXTINT_EXIT) && vmx_set_exit(EXIT_ACK_INTR));
	arm_watchdog();
	pic_init(VEC_PIC, VEC_PIC + 8);
	lapic_write(LAPIC_LVT_LINT0, LVT_DM_EXTINT);
	pit_ch0_periodic(1193); /* ~1 kHz */
	pic_mask(0, false);
	int good = 0;
	for (int i = 0; i < 3; i++) {
		vmx_vm_run(&vm, &e);
		EXPECT_EXIT(e, EXIT_EXTINT);
		if (e.reason != EXIT_EXTINT)
			break;
		EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_EXTINT | VEC_PIC);
		EXPECTF(in_spin_loop(e.guest_rip), "guest rip 0x%lx", e.guest_rip);
		EXPECT_EQ(pic_read_isr(), 1); /* IRQ0 in service at the 8259 */
		pic_eoi(0);
		good++;
	}
	pic_mask_all();
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	pit_ch0_stop();
	EXPECT_EQ(good, 3);
	EXPECT_EQ(pic_read_isr(), 0);
}

/* An event the hypervisor injects is delivered first; the interrupt exit follows before the
 * handler's first instruction, with no IDT-vectoring information. */
TEST(injected_event_delivered_before_interrupt_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need(vmx_set_pin(PIN_EXTINT_EXIT) && vmx_set_exit(EXIT_ACK_INTR));
	timer_oneshot(VEC_TIMER, 1);
	for (int i = 0; i < 100000 && !irr(VEC_TIMER); i++)
		cpu_pause();
	ASSERT(irr(VEC_TIMER));
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vmw(VMCS_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_EXTINT | VEC_INJECT);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXTINT);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_EXTINT | VEC_TIMER);
	EXPECT_EQ(e.guest_rip, stub_of(VEC_INJECT));
	EXPECT(!(e.idt_info & INTR_INFO_VALID));
	EXPECT(!(e.guest_rflags & RFLAGS_IF)); /* through the interrupt gate */
	EXPECT(!(vmr(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID)); /* the exit cleared the valid bit */
	lapic_eoi();
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, VEC_INJECT);
	EXPECT_EQ(vmx_guest_event.count, 1);
	timer_cleanup();
}

/* A guest in HLT (no HLT exiting): the exit saves the HLT activity state (§27.3.4). */
TEST(timer_exit_from_hlt_keeps_hlt_activity)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_hlt);
	need(vmx_set_pin(PIN_EXTINT_EXIT) && vmx_set_exit(EXIT_ACK_INTR));
	need((vmx_caps.misc & MISC_ACT_HLT) != 0);
	vmx_clear_proc(PROC_HLT_EXIT);
	arm_watchdog();
	timer_oneshot(VEC_TIMER, 2000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXTINT);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_EXTINT | VEC_TIMER);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_after_hlt);
	EXPECT_EQ(vmr(GUEST_ACTIVITY), ACTIVITY_HLT);
	lapic_eoi();
	timer_cleanup();
}

/* ---- delivery to the guest ---- */

/* No external-interrupt exiting, guest RFLAGS.IF = 1: each tick goes through the guest's IDT
 * (the stub VMCALLs; the hypervisor EOIs and resumes the guest, which IRETs to its loop). */
static void delivered_to_guest(bool ept)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	if (ept && !vmx_vm_enable_ept(&vm))
		test_skip("not supported: EPT");
	arm_watchdog();
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	timer_periodic(2000);
	int good = 0;
	for (int i = 0; i < TICKS; i++) {
		uint64_t count = vmx_guest_event.count;
		vmx_vm_run(&vm, &e);
		EXPECT_GUEST_EVENT(vm, e, VEC_TIMER);
		if (e.reason != EXIT_VMCALL)
			break;
		EXPECT_EQ(vmx_guest_event.count, count + 1);
		EXPECTF(in_spin_loop(vmx_guest_event.rip), "event rip 0x%lx", vmx_guest_event.rip);
		EXPECT(isr(VEC_TIMER));
		lapic_eoi();
		vmx_skip_insn(); /* past the stub's VMCALL: it returns to the loop */
		good++;
	}
	timer_cleanup();
	EXPECT_EQ(good, TICKS);
}
TEST(timer_delivered_to_guest) { delivered_to_guest(false); }
TEST(timer_delivered_to_guest_with_ept) { delivered_to_guest(true); }

/* The guest has IF = 0 when the interrupt arrives: it is delivered after STI and the
 * instruction STI blocks for, with no exit the hypervisor asked for. */
TEST(timer_waits_for_guest_sti)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_late_sti);
	arm_watchdog();
	timer_oneshot(VEC_TIMER, 2000);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, VEC_TIMER);
	EXPECT_EQ(vmx_guest_event.rip, (uint64_t)g_after_shadow);
	EXPECT(isr(VEC_TIMER));
	lapic_eoi();
	vmx_skip_insn();
	vmx_vm_run(&vm, &e);
	EXPECTF(e.reason == EXIT_VMCALL && vm.regs.rax == VMX_GUEST_DONE, "reason 0x%x rax 0x%lx", e.reason,
		vm.regs.rax);
	timer_cleanup();
}

/* The hypervisor's interrupt-window exiting takes priority over delivering its interrupt to
 * the guest: the window exit at g_after_shadow, then the delivery there. */
TEST(hypervisor_interrupt_window_exits_first)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_late_sti);
	need(vmx_set_proc(PROC_INTR_WINDOW));
	arm_watchdog();
	timer_oneshot(VEC_TIMER, 2000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_INTR_WINDOW);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_after_shadow);
	EXPECT(irr(VEC_TIMER)); /* still requested */
	vmx_clear_proc(PROC_INTR_WINDOW);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, VEC_TIMER);
	EXPECT_EQ(vmx_guest_event.rip, (uint64_t)g_after_shadow);
	lapic_eoi();
	timer_cleanup();
}

/* HLT without HLT exiting: the interrupt wakes the guest, delivered after the HLT. */
TEST(timer_wakes_guest_hlt)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_hlt);
	need((vmx_caps.misc & MISC_ACT_HLT) != 0);
	vmx_clear_proc(PROC_HLT_EXIT);
	arm_watchdog();
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	timer_oneshot(VEC_TIMER, 2000);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_EVENT(vm, e, VEC_TIMER);
	EXPECT_EQ(vmx_guest_event.rip, (uint64_t)g_after_hlt);
	lapic_eoi();
	timer_cleanup();
}

/* ---- the VMX-preemption timer ---- */

/* The hypervisor slices a spinning guest with the preemption timer (without saving its value:
 * rewritten before each entry, as a scheduler does); each slice ends on time. A LAPIC one-shot
 * is the watchdog. */
TEST(preemption_timer_slices_spinning_guest)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need(vmx_set_pin(PIN_PREEMPT_TIMER | PIN_EXTINT_EXIT) && vmx_set_exit(EXIT_ACK_INTR));
	const uint64_t slice = 2000000; /* TSC ticks */
	timer_oneshot(VEC_WATCHDOG, 400000);
	int good = 0;
	for (int i = 0; i < 4; i++) {
		vmw(GUEST_PREEMPT_TIMER, slice >> MISC_PREEMPT_RATE(vmx_caps.misc));
		uint64_t t0 = rdtsc();
		vmx_vm_run(&vm, &e);
		uint64_t dt = rdtsc() - t0;
		EXPECT_EXIT(e, EXIT_PREEMPT_TIMER);
		if (e.reason != EXIT_PREEMPT_TIMER)
			break;
		EXPECTF(dt >= slice && dt < 2 * slice, "slice %d took %lu TSC ticks (timer %lu)", i, dt, slice);
		EXPECTF(in_spin_loop(e.guest_rip), "guest rip 0x%lx", e.guest_rip);
		good++;
	}
	timer_cleanup();
	EXPECT_EQ(good, 4);
}

/* With "save VMX-preemption timer value" the timer keeps counting down across the interrupt
 * exits the hypervisor handles in between: it expires after the slice of guest time. */
TEST(preemption_timer_saved_across_interrupt_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_spin);
	need(vmx_set_pin(PIN_PREEMPT_TIMER | PIN_EXTINT_EXIT) && vmx_set_exit(EXIT_ACK_INTR | EXIT_SAVE_PREEMPT));
	const uint64_t slice = 3000000;
	vmw(GUEST_PREEMPT_TIMER, slice >> MISC_PREEMPT_RATE(vmx_caps.misc));
	timer_periodic(1000); /* every ~0.46M cycles on turtles */
	int ticks = 0, other = 0;
	uint64_t t0 = rdtsc(), dt = 0;
	for (int i = 0; i < 100; i++) {
		vmx_vm_run(&vm, &e);
		if (e.reason == EXIT_EXTINT && e.intr_info == (INTR_INFO_VALID | INTR_TYPE_EXTINT | VEC_TIMER)) {
			ticks++;
			lapic_eoi();
			continue;
		}
		dt = rdtsc() - t0;
		if (e.reason != EXIT_PREEMPT_TIMER)
			other++;
		break;
	}
	timer_cleanup();
	EXPECT_EXIT(e, EXIT_PREEMPT_TIMER);
	EXPECT_EQ(other, 0);
	EXPECTF(ticks >= 3, "%d timer exits before the preemption timer", ticks);
	EXPECTF(dt >= slice && dt < 3 * slice, "the timer expired after %lu TSC ticks (slice %lu)", dt, slice);
	EXPECT_EQ(vmr(GUEST_PREEMPT_TIMER), 0);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	vmx_caps_read();
	vmx_mask_legacy_pic();
	if (cpu_has_apic())
		lapic_init_cpu(VEC_SPURIOUS);
	RUN(timer_exits_with_vector_while_guest_spins);
	RUN(timer_exits_without_ack_taken_by_host);
	RUN(pit_through_8259_exits_with_vector);
	RUN(injected_event_delivered_before_interrupt_exit);
	RUN(timer_exit_from_hlt_keeps_hlt_activity);
	RUN(timer_delivered_to_guest);
	RUN(timer_delivered_to_guest_with_ept);
	RUN(timer_waits_for_guest_sti);
	RUN(hypervisor_interrupt_window_exits_first);
	RUN(timer_wakes_guest_hlt);
	RUN(preemption_timer_slices_spinning_guest);
	RUN(preemption_timer_saved_across_interrupt_exits);
	if (vmx_caps.vmx)
		vmx_off();
	test_finish();
}
