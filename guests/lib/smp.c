/* AP start-up with INIT-SIPI-SIPI. See include/smp.h and lib/smp_trampoline.S. */
#include "smp.h"
#include "gdt.h"
#include "kstring.h"
#include "lapic.h"
#include "pit.h"
#include "x86.h"

extern char smp_trampoline_start[], smp_trampoline_end[];
extern char tramp_cr3[], tramp_cr4[], tramp_cr0[], tramp_efer[], tramp_stack[], tramp_entry[], tramp_arg[];

_Static_assert(SMP_TRAMPOLINE_BASE % 4096 == 0 && SMP_TRAMPOLINE_BASE < 0x100000, "SIPI vector");

struct ap_boot {
	struct dtr gdtr, idtr;
	ap_fn fn;
	void *arg;
	unsigned index;
	volatile uint32_t alive;
};

static struct ap_boot boot;
static uint8_t ap_stacks[SMP_MAX_CPUS][SMP_AP_STACK_SIZE] ALIGNED(16);
static volatile unsigned aps_started;

unsigned smp_aps_started(void) { return aps_started; }

/* The trampoline's copy of a template symbol. */
static void *tramp_slot(const char *sym) { return (void *)(uint64_t)(SMP_TRAMPOLINE_BASE + (uint32_t)(sym - smp_trampoline_start)); }

/* First C code on an AP: in long mode on the trampoline's GDT, on its own stack. */
static void ap_main(struct ap_boot *b) NORETURN;
static void ap_main(struct ap_boot *b)
{
	lgdt(&b->gdtr);
	asm volatile("pushq %[cs]\n\t"
		     "leaq 1f(%%rip), %%rax\n\t"
		     "pushq %%rax\n\t"
		     "lretq\n"
		     "1:\n\t"
		     "movl %[ds], %%eax\n\t"
		     "movl %%eax, %%ds\n\t"
		     "movl %%eax, %%es\n\t"
		     "movl %%eax, %%ss\n\t"
		     "xorl %%eax, %%eax\n\t"
		     "movl %%eax, %%fs\n\t"
		     "movl %%eax, %%gs\n\t"
		     :
		     : [cs] "i"(KERNEL_CS), [ds] "i"(KERNEL_DS)
		     : "rax", "memory");
	lidt(&b->idtr);
	ap_fn fn = b->fn;
	void *arg = b->arg;
	unsigned index = b->index;
	lapic_init_cpu(SMP_SPURIOUS_VECTOR);
	__atomic_add_fetch(&aps_started, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&b->alive, 1, __ATOMIC_SEQ_CST); /* b may be reused from here on */
	fn(index, arg);
	for (;;)
		asm volatile("cli; hlt");
}

static bool wait_alive(uint64_t us)
{
	for (uint64_t t = 0; t < us; t += 100) {
		if (__atomic_load_n(&boot.alive, __ATOMIC_SEQ_CST))
			return true;
		pit_delay_us(100);
	}
	return __atomic_load_n(&boot.alive, __ATOMIC_SEQ_CST);
}

bool smp_start_ap(uint32_t apic_id, unsigned cpu_index, ap_fn fn, void *arg)
{
	if (cpu_index == 0 || cpu_index >= SMP_MAX_CPUS)
		return false;
	memcpy((void *)(uint64_t)SMP_TRAMPOLINE_BASE, smp_trampoline_start,
	       (size_t)(smp_trampoline_end - smp_trampoline_start));
	*(uint32_t *)tramp_slot(tramp_cr3) = (uint32_t)read_cr3();
	/* CR4.PCIDE cannot be set outside long mode; the AP does not need it to start */
	*(uint32_t *)tramp_slot(tramp_cr4) = (uint32_t)(read_cr4() & ~CR4_PCIDE);
	*(uint32_t *)tramp_slot(tramp_cr0) = (uint32_t)read_cr0();
	*(uint32_t *)tramp_slot(tramp_efer) = (uint32_t)(rdmsr(MSR_EFER) & ~EFER_LMA);
	*(uint64_t *)tramp_slot(tramp_stack) = (uint64_t)(ap_stacks[cpu_index] + SMP_AP_STACK_SIZE);
	*(uint64_t *)tramp_slot(tramp_entry) = (uint64_t)ap_main;
	*(uint64_t *)tramp_slot(tramp_arg) = (uint64_t)&boot;
	boot.gdtr = sgdt();
	boot.idtr = sidt();
	boot.fn = fn;
	boot.arg = arg;
	boot.index = cpu_index;
	__atomic_store_n(&boot.alive, 0, __ATOMIC_SEQ_CST);

	/* SDM 3A §9.4.4.1 (typical BSP sequence): INIT, 10 ms, SIPI, 200 us, SIPI, 200 us.
	 * INIT level de-assert is only for the 82489DX and is not sent. */
	lapic_send_ipi(apic_id, ICR_INIT | ICR_ASSERT);
	pit_delay_us(10000);
	uint32_t sipi = ICR_STARTUP | ICR_ASSERT | (SMP_TRAMPOLINE_BASE >> 12);
	lapic_send_ipi(apic_id, sipi);
	if (wait_alive(200))
		return true;
	lapic_send_ipi(apic_id, sipi);
	return wait_alive(100000);
}
