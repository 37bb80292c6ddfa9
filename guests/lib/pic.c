/* 8259A pair. See include/pic.h. */
#include "pic.h"
#include "x86.h"

#define ICW1_INIT 0x10
#define ICW1_ICW4 0x01
#define ICW4_8086 0x01
#define OCW2_EOI 0x20
#define OCW3_READ_IRR 0x0A
#define OCW3_READ_ISR 0x0B

void pic_init(uint8_t master_base, uint8_t slave_base)
{
	/* ICW1 starts the sequence: edge-triggered, cascade mode, ICW4 needed */
	outb(PIC1_CMD, ICW1_INIT | ICW1_ICW4);
	outb(PIC2_CMD, ICW1_INIT | ICW1_ICW4);
	outb(PIC1_DATA, master_base); /* ICW2: vector base (low 3 bits ignored) */
	outb(PIC2_DATA, slave_base);
	outb(PIC1_DATA, 1u << 2); /* ICW3 master: a slave on IR2 */
	outb(PIC2_DATA, 2); /* ICW3 slave: its cascade identity */
	outb(PIC1_DATA, ICW4_8086); /* ICW4: 8086 mode, normal EOI, not buffered */
	outb(PIC2_DATA, ICW4_8086);
	/* OCW1: everything masked except the cascade input */
	outb(PIC1_DATA, 0xFF & ~(1u << 2));
	outb(PIC2_DATA, 0xFF);
	/* edge-triggered for all: only ISA devices are used here */
	outb(PIC_ELCR1, 0);
	outb(PIC_ELCR2, 0);
}

void pic_mask(unsigned irq, bool masked)
{
	uint16_t port = irq < 8 ? PIC1_DATA : PIC2_DATA;
	uint8_t bit = (uint8_t)(1u << (irq & 7));
	uint8_t v = inb(port);
	outb(port, masked ? (uint8_t)(v | bit) : (uint8_t)(v & ~bit));
}

void pic_mask_all(void)
{
	outb(PIC1_DATA, 0xFF);
	outb(PIC2_DATA, 0xFF);
}

void pic_eoi(unsigned irq)
{
	if (irq >= 8)
		outb(PIC2_CMD, OCW2_EOI);
	outb(PIC1_CMD, OCW2_EOI);
}

static uint16_t read_reg(uint8_t ocw3)
{
	outb(PIC1_CMD, ocw3);
	outb(PIC2_CMD, ocw3);
	return (uint16_t)(inb(PIC1_CMD) | inb(PIC2_CMD) << 8);
}

uint16_t pic_read_isr(void) { return read_reg(OCW3_READ_ISR); }
uint16_t pic_read_irr(void) { return read_reg(OCW3_READ_IRR); }
