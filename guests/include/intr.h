/* Interrupt-flag helpers for kernels that take hardware interrupts (the runtime itself keeps
 * IF=0; see README "Boot and machine state"). */
#ifndef INTR_H
#define INTR_H

#include "types.h"
#include "x86.h"

static inline void sti(void) { asm volatile("sti" ::: "memory"); }
static inline void cpu_pause(void) { asm volatile("pause" ::: "memory"); }

/* STI; HLT: STI blocks interrupts until after the next instruction (SDM 3A §6.8.3, the STI
 * interrupt shadow), so an interrupt that is already pending wakes the HLT instead of being
 * taken before it and leaving the CPU asleep. Returns with IF=1. */
static inline void sti_hlt(void) { asm volatile("sti; hlt" ::: "memory"); }

/* Disable interrupts, returning the previous RFLAGS.IF for irq_restore(). */
static inline uint64_t irq_save(void)
{
	uint64_t f = read_rflags();
	cli();
	return f & RFLAGS_IF;
}
static inline void irq_restore(uint64_t was_enabled)
{
	if (was_enabled)
		sti();
}

#endif
