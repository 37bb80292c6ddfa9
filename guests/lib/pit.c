/* 8254 PIT helpers. See include/pit.h. */
#include "pit.h"
#include "tsc.h"
#include "x86.h"

/* Control word (datasheet "Control Word Format"): SC1 SC0 RW1 RW0 M2 M1 M0 BCD */
#define PIT_SEL(ch) ((uint8_t)((ch) << 6))
#define PIT_LATCH 0x00
#define PIT_LOHI 0x30
#define PIT_MODE(m) ((uint8_t)((m) << 1))

#define POLL_LIMIT 50000000u

void pit_ch0_periodic(uint16_t divisor)
{
	outb(PIT_CMD, PIT_SEL(0) | PIT_LOHI | PIT_MODE(2));
	outb(PIT_CH0, (uint8_t)divisor);
	outb(PIT_CH0, (uint8_t)(divisor >> 8));
}

void pit_ch0_stop(void)
{
	outb(PIT_CMD, PIT_SEL(0) | PIT_LOHI | PIT_MODE(0));
	outb(PIT_CH0, 0xFF);
	outb(PIT_CH0, 0xFF);
}

uint16_t pit_ch0_read(void)
{
	outb(PIT_CMD, PIT_SEL(0) | PIT_LATCH);
	uint8_t lo = inb(PIT_CH0);
	uint8_t hi = inb(PIT_CH0);
	return (uint16_t)(lo | hi << 8);
}

static uint16_t ch2_read(void)
{
	outb(PIT_CMD, PIT_SEL(2) | PIT_LATCH);
	uint8_t lo = inb(PIT_CH2);
	uint8_t hi = inb(PIT_CH2);
	return (uint16_t)(lo | hi << 8);
}

/* Gate on, speaker off, then load channel 2 in mode 0: OUT2 goes low and rises when the count
 * reaches 0 (mode 0 "interrupt on terminal count"). */
static void ch2_start_mode0(uint16_t count)
{
	outb(PORT_SYS_CTRL_B, (uint8_t)((inb(PORT_SYS_CTRL_B) & ~0x02) | 0x01));
	outb(PIT_CMD, PIT_SEL(2) | PIT_LOHI | PIT_MODE(0));
	outb(PIT_CH2, (uint8_t)count);
	outb(PIT_CH2, (uint8_t)(count >> 8));
}

void pit_delay_us(uint64_t us)
{
	while (us > 0) {
		uint64_t chunk = us > 50000 ? 50000 : us;
		us -= chunk;
		uint64_t count = chunk * PIT_HZ / 1000000;
		if (count < 1)
			count = 1;
		ch2_start_mode0((uint16_t)count);
		/* bounded, so a missing PIT does not hang the kernel */
		for (uint32_t i = 0; i < POLL_LIMIT && !(inb(PORT_SYS_CTRL_B) & 0x20); i++)
			asm volatile("pause");
	}
}

/* A (TSC, count) sample: the TSC is the midpoint of RDTSC reads around the latch; of three
 * tries the one with the narrowest bracket (an emulator's port I/O can stall). */
static void sample(uint64_t *tsc, uint16_t *count)
{
	uint64_t best = ~0ull;
	for (int i = 0; i < 3; i++) {
		uint64_t a = rdtsc();
		uint16_t c = ch2_read();
		uint64_t b = rdtsc();
		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			*count = c;
		}
	}
}

uint64_t pit_measure_tsc_hz(unsigned ms)
{
	if (ms < 1)
		ms = 1;
	if (ms > 50)
		ms = 50;
	uint32_t ticks = (uint32_t)((uint64_t)PIT_HZ * ms / 1000);
	ch2_start_mode0(0xFFFF);
	uint64_t t0, t1;
	uint16_t c0, c1;
	/* The count is loaded on the first input clock after it is written; until then a latch
	 * may return anything, so start from a sample that is clearly counting down. */
	uint32_t n = 0;
	do
		sample(&t0, &c0);
	while ((c0 > 0xFFF0 || c0 < 0x8000) && ++n < POLL_LIMIT);
	do
		sample(&t1, &c1);
	while ((uint16_t)(c0 - c1) < ticks && c1 <= c0 && ++n < POLL_LIMIT);
	if (n >= POLL_LIMIT || c1 >= c0)
		return 0;
	return muldiv64(t1 - t0, PIT_HZ, (uint16_t)(c0 - c1));
}
