/* MC146818 CMOS real-time clock: index port 0x70 (bit 7 is the NMI mask on PCs; written 0
 * here), data port 0x71. Registers 0-9: seconds, minutes, hours, weekday, day, month, year;
 * A (0x0A, bit 7 update in progress), B (0x0B, bit 2 binary, bit 1 24-hour), century 0x32. */
#ifndef RTC_H
#define RTC_H

#include "types.h"

struct rtc_time {
	unsigned year, month, day, hour, minute, second;
};

uint8_t cmos_read(uint8_t reg);
/* A consistent reading: waits for no update in progress, reads twice until equal, converts
 * BCD and 12-hour formats. The century comes from register 0x32 when it holds 19 or 20, else
 * 20 is assumed. */
void rtc_read(struct rtc_time *t);

#endif
