/* Benchmark: two CPUs. The BSP starts the AP with INIT-SIPI-SIPI (lib/smp.c), then both run
 * the integer loop of bench-loop for `iters=N` iterations each (default 100000000). The AP
 * reports its result and wakes the BSP with an IPI; the BSP checks both results agree, prints
 * "smp done" and exits 0 (1 if the AP does not start or the results differ). */
#include "rt.h"
#include "platform.h"

#define VEC_DONE 0x50

uint64_t bench_loop(uint64_t iterations);

static uint32_t bsp_id;
static volatile uint64_t ap_result;
static volatile uint32_t ap_done;

static void done_isr(struct frame *f)
{
	(void)f;
	lapic_eoi();
}
static void spurious_isr(struct frame *f) { (void)f; }

static void ap_main(unsigned index, void *arg)
{
	(void)index;
	uint64_t iters = *(uint64_t *)arg;
	ap_result = bench_loop(iters);
	__atomic_store_n(&ap_done, 1, __ATOMIC_SEQ_CST);
	lapic_send_ipi(bsp_id, ICR_FIXED | ICR_ASSERT | VEC_DONE);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	static uint64_t iters;
	iters = cmdline_u64("iters", 100000000);

	lapic_init_cpu(SMP_SPURIOUS_VECTOR);
	pic_init(0x20, 0x28);
	pic_mask_all();
	ioapic_init();
	idt_set_handler(SMP_SPURIOUS_VECTOR, spurious_isr);
	idt_set_handler(VEC_DONE, done_isr);
	bsp_id = lapic_id();

	/* the other CPU: the first MADT LAPIC that is not us, else APIC ID 1 */
	uint32_t ap_id = 1;
	struct madt_info m;
	if (acpi_parse_madt(&m))
		for (unsigned i = 0; i < m.n_lapic && i < ACPI_MAX_CPUS; i++)
			if (m.apic_id[i] != bsp_id) {
				ap_id = m.apic_id[i];
				break;
			}
	if (!smp_start_ap(ap_id, 1, ap_main, &iters)) {
		printf("bench-smp: AP %u did not start\n", ap_id);
		exit(1);
	}
	uint64_t mine = bench_loop(iters);
	for (;;) {
		cli();
		if (__atomic_load_n(&ap_done, __ATOMIC_SEQ_CST))
			break;
		sti_hlt();
	}
	if (ap_result != mine) {
		printf("bench-smp: results differ: BSP 0x%lx AP 0x%lx\n", mine, ap_result);
		exit(1);
	}
	printf("smp done\n");
	exit(0);
}
