/* tvisor: the devices a guest sees on port I/O. Every port exits (both I/O bitmaps all ones,
 * SDM 3C §24.6.4), and the guest gets the platform contract's PC devices that matter to a
 * single-CPU test kernel, each emulated per guest:
 *
 *   0x3F8-0x3FF  16550 UART (COM1). Transmitted bytes are collected per guest and forwarded to
 *                tvisor's own COM1 a line at a time as "[gN] line". Always ready to transmit
 *                (LSR = THRE|TEMT), never has input, raises no interrupts.
 *   0xF4         isa-debug-exit: a write of V ends the guest with exit code V.
 *   0x510/0x511  fw_cfg, legacy interface: signature "QEMU", ID (traditional interface),
 *                RAM_SIZE (the guest's RAM), NB_CPUS = MAX_CPUS = 1, an empty file directory.
 *   0xCF8/0xCFC  PCI configuration mechanism #1 with no devices: data reads are all ones.
 *   0x8900       the "Shutdown" string powers the guest off (as on QEMU's pc).
 *   anything else: reads all ones (a floating ISA bus), writes ignored. */
#include "tvisor.h"

uint64_t io_bitmap_a_pa, io_bitmap_b_pa;

void io_bitmaps_init(void)
{
	uint8_t *a = page_alloc_zero(), *b = page_alloc_zero();
	memset(a, 0xFF, PAGE_4K);
	memset(b, 0xFF, PAGE_4K);
	io_bitmap_a_pa = (uint64_t)a;
	io_bitmap_b_pa = (uint64_t)b;
}

/* ---- 16550 UART ---- */
#define COM1 0x3F8
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10

void uart_flush(struct guest *g)
{
	struct uart *u = &g->uart;
	if (!u->len)
		return;
	u->line[u->len] = 0;
	printf("[g%d] %s\n", g->id, u->line);
	u->len = 0;
}

void console_putc(struct guest *g, uint8_t c)
{
	struct uart *u = &g->uart;
	if (c == '\n') {
		if (u->len)
			uart_flush(g);
		else
			printf("[g%d] \n", g->id);
		return;
	}
	if (c == 0)
		c = ' '; /* keep the forwarded line a C string */
	u->line[u->len++] = (char)c;
	if (u->len == TV_LINE_MAX)
		uart_flush(g);
}

static uint8_t uart_in(struct guest *g, unsigned reg)
{
	struct uart *u = &g->uart;
	switch (reg) {
	case 0:
		return (u->lcr & LCR_DLAB) ? u->dll : 0; /* RBR: no input ever */
	case 1:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case 2:
		return (uint8_t)((u->fcr & 1) ? 0xC1 : 0x01); /* IIR: FIFOs on/off, no interrupt pending */
	case 3:
		return u->lcr;
	case 4:
		return u->mcr;
	case 5:
		return 0x60; /* LSR: THR empty, transmitter empty */
	case 6:
		if (u->mcr & MCR_LOOP) /* loopback: CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2 */
			return (uint8_t)(((u->mcr & 2) << 3) | ((u->mcr & 1) << 5) | ((u->mcr & 4) << 4) | ((u->mcr & 8) << 4));
		return 0xB0; /* DCD, DSR, CTS */
	default:
		return u->scr;
	}
}

static void uart_out(struct guest *g, unsigned reg, uint8_t v)
{
	struct uart *u = &g->uart;
	switch (reg) {
	case 0:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else if (!(u->mcr & MCR_LOOP))
			console_putc(g, v);
		break;
	case 1:
		if (u->lcr & LCR_DLAB)
			u->dlm = v;
		else
			u->ier = v & 0x0F;
		break;
	case 2:
		u->fcr = v;
		break;
	case 3:
		u->lcr = v;
		break;
	case 4:
		u->mcr = v & 0x1F;
		break;
	case 7:
		u->scr = v;
		break;
	default:
		break; /* LSR/MSR are read-only */
	}
}

/* ---- fw_cfg (QEMU docs/specs/fw_cfg.rst) ---- */
#define FWCFG_SEL 0x510
#define FWCFG_DATA 0x511

static uint8_t fwcfg_byte(struct guest *g)
{
	uint32_t off = g->fwcfg_off++;
	uint64_t v;
	unsigned len;
	switch (g->fwcfg_sel & 0xBFFF) { /* bit 14: write request, not supported */
	case 0x00:
		v = 'Q' | 'E' << 8 | 'M' << 16 | (uint64_t)'U' << 24;
		len = 4;
		break;
	case 0x01:
		v = 1; /* traditional interface only, no DMA */
		len = 4;
		break;
	case 0x03:
		v = g->ram_size;
		len = 8;
		break;
	case 0x05:
	case 0x0F:
		v = 1;
		len = 2;
		break;
	case 0x19:
		v = 0; /* file directory: a big-endian count of 0 */
		len = 4;
		break;
	default:
		return 0;
	}
	return off < len ? (uint8_t)(v >> (8 * off)) : 0;
}

/* ---- ports ---- */
#define DEBUG_EXIT 0xF4
#define PCI_ADDR 0xCF8
#define PCI_DATA 0xCFC
#define SHUTDOWN 0x8900

uint32_t io_in(struct guest *g, uint16_t port, unsigned size)
{
	uint32_t ones = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
	if (port >= COM1 && port < COM1 + 8) {
		uint32_t v = 0;
		for (unsigned i = 0; i < size && port + i < COM1 + 8; i++)
			v |= (uint32_t)uart_in(g, port + i - COM1) << (8 * i);
		return v;
	}
	if (port == FWCFG_DATA) {
		uint32_t v = 0;
		for (unsigned i = 0; i < size; i++)
			v |= (uint32_t)fwcfg_byte(g) << (8 * i);
		return v;
	}
	if (port == FWCFG_SEL && size == 2)
		return g->fwcfg_sel;
	if (port == PCI_ADDR && size == 4)
		return g->pci_addr;
	return ones; /* PCI data with no device behind it, and every port nothing decodes */
}

void io_out(struct guest *g, uint16_t port, unsigned size, uint32_t v)
{
	if (port >= COM1 && port < COM1 + 8) {
		for (unsigned i = 0; i < size && port + i < COM1 + 8; i++)
			uart_out(g, port + i - COM1, (uint8_t)(v >> (8 * i)));
		return;
	}
	if (port == DEBUG_EXIT) {
		guest_end(g, END_EXIT_CODE, (int)(v & (size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1)));
		return;
	}
	if (port == FWCFG_SEL && size >= 2) {
		g->fwcfg_sel = (uint16_t)v;
		g->fwcfg_off = 0;
		return;
	}
	if (port == PCI_ADDR && size == 4) {
		g->pci_addr = v;
		return;
	}
	if (port == SHUTDOWN && size == 1) {
		static const char word[] = "Shutdown";
		g->shutdown_match = (uint8_t)v == (uint8_t)word[g->shutdown_match] ? g->shutdown_match + 1
			: (uint8_t)v == 'S' ? 1 : 0;
		if (g->shutdown_match == 8)
			guest_end(g, END_POWER_OFF, 0);
		return;
	}
	/* everything else: ignored */
}
