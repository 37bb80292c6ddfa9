/* I/O APIC. See include/ioapic.h. */
#include "ioapic.h"

static uint64_t base = IOAPIC_DEFAULT_BASE;
static uint32_t first_gsi;

void ioapic_set_base(uint64_t b, uint32_t gsi_base)
{
	base = b;
	first_gsi = gsi_base;
}

uint32_t ioapic_read(uint8_t reg)
{
	*(volatile uint32_t *)base = reg;
	return *(volatile uint32_t *)(base + 0x10);
}

void ioapic_write(uint8_t reg, uint32_t v)
{
	*(volatile uint32_t *)base = reg;
	*(volatile uint32_t *)(base + 0x10) = v;
}

unsigned ioapic_max_entry(void) { return (ioapic_read(IOAPIC_REG_VER) >> 16) & 0xFF; }

static uint8_t entry_reg(uint32_t gsi) { return (uint8_t)(IOAPIC_REG_REDTBL + 2 * (gsi - first_gsi)); }

uint64_t ioapic_get_entry(uint32_t gsi)
{
	uint8_t r = entry_reg(gsi);
	return ioapic_read(r) | (uint64_t)ioapic_read((uint8_t)(r + 1)) << 32;
}

void ioapic_set_entry(uint32_t gsi, uint64_t e)
{
	uint8_t r = entry_reg(gsi);
	/* Mask first, so a half-written entry never delivers; the low word (with the real
	 * mask bit) goes last. */
	ioapic_write(r, (uint32_t)(ioapic_read(r) | IOAPIC_MASKED));
	ioapic_write((uint8_t)(r + 1), (uint32_t)(e >> 32));
	ioapic_write(r, (uint32_t)e);
}

void ioapic_mask(uint32_t gsi, bool masked)
{
	uint8_t r = entry_reg(gsi);
	uint32_t lo = ioapic_read(r);
	ioapic_write(r, masked ? lo | (uint32_t)IOAPIC_MASKED : lo & ~(uint32_t)IOAPIC_MASKED);
}

void ioapic_init(void)
{
	unsigned n = ioapic_max_entry();
	for (unsigned i = 0; i <= n; i++)
		ioapic_set_entry(first_gsi + i, IOAPIC_MASKED);
}
