/* Polled 16550 driver: one byte at a time, waiting for THRE so no byte is dropped on real UARTs. */
#include "serial.h"
#include "x86.h"

#define UART_THR 0 /* transmit holding register (DLAB=0) */
#define UART_DLL 0 /* divisor latch low (DLAB=1) */
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20

void serial_init(void)
{
	outb(COM1_PORT + UART_IER, 0x00); /* no interrupts: we poll */
	outb(COM1_PORT + UART_LCR, 0x80); /* DLAB=1 to program the divisor */
	outb(COM1_PORT + UART_DLL, 0x01); /* 115200 baud */
	outb(COM1_PORT + UART_DLM, 0x00);
	outb(COM1_PORT + UART_LCR, 0x03); /* 8N1, DLAB=0 */
	outb(COM1_PORT + UART_FCR, 0x07); /* enable and clear FIFOs */
	outb(COM1_PORT + UART_MCR, 0x03); /* DTR, RTS */
}

void serial_putc(char c)
{
	while (!(inb(COM1_PORT + UART_LSR) & LSR_THRE)) {
	}
	outb(COM1_PORT + UART_THR, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		serial_putc(s[i]);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}
