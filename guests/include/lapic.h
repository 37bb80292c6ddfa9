/* Local APIC (SDM 3A chapter 11, "Advanced Programmable Interrupt Controller"), in xAPIC mode
 * (4 KiB MMIO page, default 0xFEE00000) and x2APIC mode (MSRs 0x800 + offset/16).
 *
 * Registers are named by their xAPIC MMIO offset; lapic_read/lapic_write turn that into the
 * MSR number in x2APIC mode. The mode is per CPU, so the helpers read IA32_APIC_BASE on every
 * access (one RDMSR) and follow the calling CPU's mode and MMIO base: an AP in xAPIC mode and a
 * BSP in x2APIC mode can share interrupt handlers. The xapic_* / x2apic_* accessors force one
 * interface (and fault when the CPU is in the other mode, as the hardware does).
 *
 * Nothing here relies on what firmware left behind: lapic_init_cpu() programs every LVT, the
 * TPR and the spurious-vector register of the calling CPU. */
#ifndef LAPIC_H
#define LAPIC_H

#include "types.h"
#include "x86.h"

#define MSR_APIC_BASE 0x1B
#define APIC_BASE_BSP (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10) /* x2APIC mode */
#define APIC_BASE_EN (1ull << 11) /* APIC globally enabled */
#define APIC_BASE_ADDR_MASK 0x000FFFFFFFFFF000ull
#define LAPIC_DEFAULT_BASE 0xFEE00000ull
#define MSR_TSC_DEADLINE 0x6E0
#define MSR_X2APIC_BASE 0x800

/* Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16), SDM 3A Table 11-1 / 11-6. */
#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_TPR 0x080
#define LAPIC_PPR 0x0A0
#define LAPIC_EOI 0x0B0
#define LAPIC_LDR 0x0D0
#define LAPIC_DFR 0x0E0 /* xAPIC only */
#define LAPIC_SVR 0x0F0
#define LAPIC_ISR0 0x100 /* 8 registers, 0x10 apart */
#define LAPIC_TMR0 0x180
#define LAPIC_IRR0 0x200
#define LAPIC_ESR 0x280
#define LAPIC_ICR_LO 0x300 /* x2APIC: one 64-bit MSR 0x830 */
#define LAPIC_ICR_HI 0x310 /* xAPIC only */
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_THERMAL 0x330
#define LAPIC_LVT_PERF 0x340
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3E0
#define LAPIC_SELF_IPI 0x3F0 /* x2APIC only */

#define APIC_SVR_ENABLE (1u << 8)

/* LVT fields (SDM 3A Figure 11-8) */
#define LVT_MASKED (1u << 16)
#define LVT_LEVEL (1u << 15)
#define LVT_ACTIVE_LOW (1u << 13)
#define LVT_DM_FIXED (0u << 8)
#define LVT_DM_NMI (4u << 8)
#define LVT_DM_EXTINT (7u << 8)
#define LVT_TIMER_ONESHOT (0u << 17)
#define LVT_TIMER_PERIODIC (1u << 17)
#define LVT_TIMER_DEADLINE (2u << 17)

/* ICR low word (SDM 3A Figure 11-12) */
#define ICR_FIXED (0u << 8)
#define ICR_LOWEST (1u << 8)
#define ICR_SMI (2u << 8)
#define ICR_NMI (4u << 8)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_LOGICAL (1u << 11)
#define ICR_BUSY (1u << 12) /* delivery status, xAPIC only */
#define ICR_ASSERT (1u << 14)
#define ICR_LEVEL (1u << 15)
#define ICR_SELF (1u << 18)
#define ICR_ALL (2u << 18)
#define ICR_ALL_BUT_SELF (3u << 18)

/* Raw accessors. */
uint32_t xapic_read(uint32_t reg);
void xapic_write(uint32_t reg, uint32_t v);
uint64_t x2apic_read(uint32_t reg);
void x2apic_write(uint32_t reg, uint64_t v);

/* The accessors the rest of the runtime uses: MSR in x2APIC mode, else MMIO at the base in
 * IA32_APIC_BASE (relocatable; identity-mapped, so virtual == physical). */
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
bool lapic_x2apic_mode(void); /* IA32_APIC_BASE.EXTD of the calling CPU */

/* Calling CPU: IA32_APIC_BASE.EN on (xAPIC if it was disabled; x2APIC stays), SVR enabled with
 * spurious_vector, TPR 0, ESR cleared, all LVTs masked (LINT0/LINT1 too: callers that want
 * ExtINT or NMI on them program them after), timer stopped, divide by 1. */
void lapic_init_cpu(uint8_t spurious_vector);
uint32_t lapic_id(void); /* xAPIC: ID[31:24]; x2APIC: the 32-bit ID */
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
bool lapic_is_bsp(void);

/* Vector bookkeeping: bit `vector` of the ISR/IRR/TMR register file starting at base. */
bool lapic_vector_bit(uint32_t base, uint8_t vector);

/* IPIs. dest is an APIC ID (ignored with a shorthand in icr_lo). Waits for the xAPIC delivery
 * status to clear (bounded; returns false if it never does). */
bool lapic_send_ipi(uint32_t dest, uint32_t icr_lo);
/* Fixed self-IPI through the ICR shorthand (both modes). */
void lapic_self_ipi(uint8_t vector);

/* Timer. divide is 1, 2, 4, ..., 128; encoded into the divide configuration register. */
uint32_t lapic_divide_code(uint32_t divide);
void lapic_timer_start(uint32_t lvt_mode, uint8_t vector, uint32_t divide, uint32_t initial_count);
void lapic_timer_stop(void); /* masks the LVT, writes initial count 0, disarms TSC deadline */
/* TSC-deadline mode (needs CPUID.1:ECX[24]): arm the LVT; then wrmsr(MSR_TSC_DEADLINE, tsc). */
void lapic_timer_deadline_mode(uint8_t vector);

/* LAPIC timer input frequency (divide by 1) measured against the TSC: a masked one-shot run
 * from 0xFFFFFFFF, the current count sampled at the start and after `tsc_ticks` (each sample
 * bracketed by RDTSC, the narrowest of 4 tries). The timer's LVT and divide are restored. */
uint64_t lapic_timer_measure_hz(uint64_t tsc_hz, uint64_t tsc_ticks);

static inline bool cpu_has_x2apic(void) { return (cpuid(1, 0).ecx >> 21) & 1; }
static inline bool cpu_has_tsc_deadline(void) { return (cpuid(1, 0).ecx >> 24) & 1; }
static inline bool cpu_has_apic(void) { return (cpuid(1, 0).edx >> 9) & 1; }

#endif
