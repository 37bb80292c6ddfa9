/* printf to the serial port, and snprintf into a buffer.
 * Conversions: %d %i %u %x %X %p %s %c %%, length modifiers l and ll (also z),
 * flags '-' (left-justify) and '0' (zero-pad), and a decimal width. */
#ifndef PRINTF_H
#define PRINTF_H

#include "types.h"

int printf(const char *fmt, ...) PRINTF_LIKE(1, 2);
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
