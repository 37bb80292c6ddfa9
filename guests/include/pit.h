/* 8254 programmable interval timer (Intel 82C54 datasheet): channel 0 drives IRQ0 (GSI 2 on
 * the IOAPIC per the MADT override), channel 2 is gated by port 0x61 bit 0 and its OUT is
 * readable at port 0x61 bit 5. Input clock 1.193182 MHz. */
#ifndef PIT_H
#define PIT_H

#include "types.h"

#define PIT_HZ 1193182u
#define PIT_CH0 0x40
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_SYS_CTRL_B 0x61 /* bit 0: channel 2 gate, bit 1: speaker data, bit 5: channel 2 OUT */

/* Channel 0 in mode 2 (rate generator): an IRQ0 edge every `divisor` input clocks
 * (0 means 65536). */
void pit_ch0_periodic(uint16_t divisor);
/* Channel 0 in mode 0 with the longest count: at most one more IRQ0 edge (about 55 ms later),
 * then OUT stays high. Callers also mask IRQ0 wherever it is routed. */
void pit_ch0_stop(void);
/* Channel 0 current count (counter latch command). */
uint16_t pit_ch0_read(void);

/* Busy-wait on channel 2 in mode 0 (gate on through port 0x61, speaker off), polling OUT2. */
void pit_delay_us(uint64_t us);

/* One calibration run of the TSC against channel 2 over `ms` milliseconds (1..50): the channel
 * counts down from 0xFFFF in mode 0 and is sampled with the counter-latch command at both
 * ends, each sample bracketed by RDTSC. Returns TSC ticks per second. */
uint64_t pit_measure_tsc_hz(unsigned ms);

#endif
