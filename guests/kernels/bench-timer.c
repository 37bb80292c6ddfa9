/* Benchmark: timer interrupts. The local APIC timer runs periodic at 10 kHz for `ms=N`
 * milliseconds of TSC time (default 200) while the main loop does integer work (the loop of
 * bench-loop in chunks); the handler counts ticks and sends EOI. Prints
 * "bench-timer: ms=N ticks=T" and exits 0; exits 1 if no tick came or more than 10 per
 * millisecond (+1%). No lower bound: QEMU, whose clocks are the host's, merges ticks when the
 * host is busy (a quarter of them were seen to go); on turtles the count is deterministic and
 * platform-tests.elf checks the timer's rate.
 *
 * The TSC is calibrated against PIT channel 2 (3 x 10 ms) and the APIC timer against the TSC
 * (2 ms); the PICs, IOAPIC entries and LVTs are masked first so only the timer interrupts. */
#include "rt.h"
#include "platform.h"

#define VEC_TICK 0x40
#define TICK_HZ 10000

uint64_t bench_loop(uint64_t iterations);

static volatile uint64_t ticks;
static volatile uint64_t sink;

static void tick_isr(struct frame *f)
{
	(void)f;
	ticks++;
	lapic_eoi();
}

static void spurious_isr(struct frame *f) { (void)f; }

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	uint64_t ms = cmdline_u64("ms", 200);

	lapic_init_cpu(SMP_SPURIOUS_VECTOR);
	pic_init(0x20, 0x28);
	pic_mask_all();
	ioapic_init();
	idt_set_handler(SMP_SPURIOUS_VECTOR, spurious_isr);
	idt_set_handler(VEC_TICK, tick_isr);

	uint64_t hz = tsc_hz();
	uint64_t apic_hz = lapic_timer_measure_hz(hz, hz / 500);
	uint32_t count = (uint32_t)(apic_hz / TICK_HZ);
	if (!hz || !count) {
		printf("bench-timer: calibration failed (TSC %lu Hz, APIC timer %lu Hz)\n", hz, apic_hz);
		exit(1);
	}

	uint64_t end = rdtsc() + muldiv64(ms, hz, 1000);
	lapic_timer_start(LVT_TIMER_PERIODIC, VEC_TICK, 1, count);
	sti();
	while (rdtsc() < end)
		sink += bench_loop(1000);
	cli();
	lapic_timer_stop();

	uint64_t t = ticks, want = ms * (TICK_HZ / 1000);
	printf("bench-timer: ms=%lu ticks=%lu\n", ms, t);
	exit(t > 0 && t <= want + want / 100 + 1 ? 0 : 1);
}
