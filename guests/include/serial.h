/* COM1 16550 UART output (the platform routes COM1 to the run's stdout). */
#ifndef SERIAL_H
#define SERIAL_H

#include "types.h"

#define COM1_PORT 0x3F8

void serial_init(void);
void serial_putc(char c);
void serial_write(const char *s, size_t n);
void serial_puts(const char *s); /* no newline appended */

#endif
