/* Local APIC access and set-up (SDM 3A chapter 11). See include/lapic.h. */
#include "lapic.h"
#include "tsc.h"
#include "x86.h"

static volatile uint32_t *mmio(uint32_t reg) { return (volatile uint32_t *)((rdmsr(MSR_APIC_BASE) & APIC_BASE_ADDR_MASK) + reg); }

uint32_t xapic_read(uint32_t reg) { return *mmio(reg); }
void xapic_write(uint32_t reg, uint32_t v) { *mmio(reg) = v; }
uint64_t x2apic_read(uint32_t reg) { return rdmsr(MSR_X2APIC_BASE + reg / 16); }
void x2apic_write(uint32_t reg, uint64_t v) { wrmsr(MSR_X2APIC_BASE + reg / 16, v); }

bool lapic_x2apic_mode(void) { return rdmsr(MSR_APIC_BASE) & APIC_BASE_EXTD; }

/* One RDMSR per access decides the mode and gives the MMIO base. */
uint32_t lapic_read(uint32_t reg)
{
	uint64_t b = rdmsr(MSR_APIC_BASE);
	if (b & APIC_BASE_EXTD)
		return (uint32_t)x2apic_read(reg);
	return *(volatile uint32_t *)((b & APIC_BASE_ADDR_MASK) + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
	uint64_t b = rdmsr(MSR_APIC_BASE);
	if (b & APIC_BASE_EXTD)
		x2apic_write(reg, v);
	else
		*(volatile uint32_t *)((b & APIC_BASE_ADDR_MASK) + reg) = v;
}

uint32_t lapic_id(void) { return lapic_x2apic_mode() ? (uint32_t)x2apic_read(LAPIC_ID) : xapic_read(LAPIC_ID) >> 24; }
bool lapic_is_bsp(void) { return rdmsr(MSR_APIC_BASE) & APIC_BASE_BSP; }

bool lapic_vector_bit(uint32_t base, uint8_t vector)
{
	return (lapic_read(base + (uint32_t)(vector / 32) * 0x10) >> (vector % 32)) & 1;
}

void lapic_init_cpu(uint8_t spurious_vector)
{
	/* Enable globally (EN) if disabled, at the base it has, in xAPIC mode (a disabled
	 * APIC cannot go to x2APIC directly). An x2APIC stays in x2APIC mode. */
	uint64_t base = rdmsr(MSR_APIC_BASE);
	if (!(base & APIC_BASE_EN))
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_EN);
	bool x2 = base & APIC_BASE_EXTD;
	/* Software-enable first: while SVR[8]=0 the LVT mask bits cannot be cleared (SDM 3A
	 * §11.4.7.2), and we want a known state either way. */
	lapic_write(LAPIC_SVR, APIC_SVR_ENABLE | spurious_vector);
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
	lapic_write(LAPIC_TIMER_INITIAL, 0);
	lapic_write(LAPIC_TIMER_DIVIDE, lapic_divide_code(1));
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
	lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
	/* The thermal and performance-counter LVTs exist when the version register says
	 * max LVT >= 4 / 5; writing a masked value is harmless either way on xAPIC, but an
	 * x2APIC MSR that does not exist raises #GP, so check. */
	uint32_t max_lvt = (lapic_read(LAPIC_VERSION) >> 16) & 0xFF;
	if (max_lvt >= 4)
		lapic_write(LAPIC_LVT_PERF, LVT_MASKED);
	if (max_lvt >= 5)
		lapic_write(LAPIC_LVT_THERMAL, LVT_MASKED);
	/* ESR: a write arms it, the next read returns the errors (SDM 3A §11.5.3). */
	lapic_write(LAPIC_ESR, 0);
	(void)lapic_read(LAPIC_ESR);
	if (!x2) {
		/* flat logical model, as after reset; logical destinations are not used here */
		lapic_write(LAPIC_DFR, 0xFFFFFFFF);
	}
}

bool lapic_send_ipi(uint32_t dest, uint32_t icr_lo)
{
	if (lapic_x2apic_mode()) {
		/* x2APIC: one 64-bit write, no delivery status to poll (SDM 3A §11.12.9) */
		x2apic_write(LAPIC_ICR_LO, ((uint64_t)dest << 32) | icr_lo);
		return true;
	}
	for (int i = 0; i < 1000000 && (xapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++)
		asm volatile("pause");
	xapic_write(LAPIC_ICR_HI, dest << 24);
	xapic_write(LAPIC_ICR_LO, icr_lo);
	for (int i = 0; i < 1000000; i++) {
		if (!(xapic_read(LAPIC_ICR_LO) & ICR_BUSY))
			return true;
		asm volatile("pause");
	}
	return false;
}

void lapic_self_ipi(uint8_t vector) { lapic_send_ipi(0, ICR_SELF | ICR_FIXED | ICR_ASSERT | vector); }

uint32_t lapic_divide_code(uint32_t divide)
{
	/* SDM 3A Figure 11-10: bits 0,1,3; 1011b = divide by 1, 0000b = 2, ..., 1010b = 128 */
	uint32_t log2 = 0;
	while ((1u << log2) < divide)
		log2++;
	uint32_t v = (log2 - 1) & 7;
	return (v & 3) | ((v & 4) << 1);
}

void lapic_timer_start(uint32_t lvt_mode, uint8_t vector, uint32_t divide, uint32_t initial_count)
{
	lapic_write(LAPIC_TIMER_DIVIDE, lapic_divide_code(divide));
	lapic_write(LAPIC_LVT_TIMER, lvt_mode | vector);
	lapic_write(LAPIC_TIMER_INITIAL, initial_count); /* starts counting */
}

void lapic_timer_deadline_mode(uint8_t vector)
{
	lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_DEADLINE | vector);
	/* The LVT write must be ordered before the IA32_TSC_DEADLINE write (SDM 3A §11.5.4.1). */
	asm volatile("mfence" ::: "memory");
}

void lapic_timer_stop(void)
{
	uint32_t lvt = lapic_read(LAPIC_LVT_TIMER);
	if ((lvt & (3u << 17)) == LVT_TIMER_DEADLINE)
		wrmsr(MSR_TSC_DEADLINE, 0);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | (lvt & 0xFF));
	lapic_write(LAPIC_TIMER_INITIAL, 0);
}

/* A (TSC, current count) pair: of a few tries, the one with the fewest TSC ticks between the
 * RDTSCs around the read (an emulator may take a long way round for an APIC access). */
static void sample_ccr(uint64_t *tsc, uint32_t *count)
{
	uint64_t best = ~0ull;
	for (int i = 0; i < 4; i++) {
		uint64_t a = rdtsc();
		uint32_t c = lapic_read(LAPIC_TIMER_CURRENT);
		uint64_t b = rdtsc();
		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			*count = c;
		}
	}
}

uint64_t lapic_timer_measure_hz(uint64_t tsc_hz, uint64_t tsc_ticks)
{
	uint32_t lvt = lapic_read(LAPIC_LVT_TIMER);
	uint32_t div = lapic_read(LAPIC_TIMER_DIVIDE);
	/* masked one-shot: it counts but never interrupts */
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | LVT_TIMER_ONESHOT);
	lapic_write(LAPIC_TIMER_DIVIDE, lapic_divide_code(1));
	lapic_write(LAPIC_TIMER_INITIAL, 0xFFFFFFFF);
	uint64_t t0, t1;
	uint32_t c0, c1;
	sample_ccr(&t0, &c0);
	while (rdtsc() - t0 < tsc_ticks)
		asm volatile("pause");
	sample_ccr(&t1, &c1);
	lapic_write(LAPIC_TIMER_INITIAL, 0);
	lapic_write(LAPIC_TIMER_DIVIDE, div);
	lapic_write(LAPIC_LVT_TIMER, lvt);
	return t1 > t0 && c0 > c1 ? muldiv64(c0 - c1, tsc_hz, t1 - t0) : 0;
}
