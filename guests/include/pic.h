/* The 8259A pair (master at 0x20/0x21, slave at 0xA0/0xA1 cascaded on IRQ2) and the edge/level
 * control registers at 0x4D0/0x4D1 (PIIX3). Intel 8259A datasheet for ICW/OCW. */
#ifndef PIC_H
#define PIC_H

#include "types.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1
#define PIC_ELCR1 0x4D0
#define PIC_ELCR2 0x4D1

/* Full initialisation (ICW1-ICW4: edge, cascade, 8086 mode, normal EOI), IRQs 0-7 at vectors
 * master_base.., 8-15 at slave_base..; all IRQs masked except the cascade (IRQ2) on the
 * master; every IRQ edge-triggered in the ELCR. */
void pic_init(uint8_t master_base, uint8_t slave_base);
void pic_mask(unsigned irq, bool masked);
void pic_mask_all(void); /* both IMRs 0xFF */
void pic_eoi(unsigned irq); /* non-specific EOI to the slave (IRQ 8-15) and the master */
uint16_t pic_read_isr(void); /* OCW3 read ISR, slave << 8 | master */
uint16_t pic_read_irr(void);

#endif
