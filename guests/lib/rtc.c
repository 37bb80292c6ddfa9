/* CMOS RTC. See include/rtc.h. */
#include "rtc.h"
#include "kstring.h"
#include "x86.h"

uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg & 0x7F);
	return inb(0x71);
}

static unsigned bcd(uint8_t v) { return (v >> 4) * 10u + (v & 0xF); }

static void read_raw(uint8_t r[10])
{
	/* UIP set means an update begins within 244 us; wait it out (bounded) */
	for (int i = 0; i < 1000000 && (cmos_read(0x0A) & 0x80); i++)
		asm volatile("pause");
	static const uint8_t regs[] = { 0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32, 0x0B };
	for (unsigned i = 0; i < sizeof(regs); i++)
		r[i] = cmos_read(regs[i]);
}

void rtc_read(struct rtc_time *t)
{
	uint8_t a[10], b[10];
	read_raw(a);
	for (int i = 0; i < 10; i++) {
		read_raw(b);
		if (memcmp(a, b, 8) == 0)
			break;
		memcpy(a, b, 8);
	}
	bool binary = a[7] & 0x04, h24 = a[7] & 0x02;
	unsigned hour_raw = a[2] & 0x7F;
	bool pm = a[2] & 0x80;
	t->second = binary ? a[0] : bcd(a[0]);
	t->minute = binary ? a[1] : bcd(a[1]);
	t->hour = binary ? hour_raw : bcd((uint8_t)hour_raw);
	if (!h24) {
		t->hour %= 12;
		if (pm)
			t->hour += 12;
	}
	t->day = binary ? a[3] : bcd(a[3]);
	t->month = binary ? a[4] : bcd(a[4]);
	unsigned cent = binary ? a[6] : bcd(a[6]);
	if (cent != 19 && cent != 20)
		cent = 20;
	t->year = cent * 100 + (binary ? a[5] : bcd(a[5]));
}
