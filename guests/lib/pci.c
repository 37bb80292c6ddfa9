/* PCI configuration mechanism #1. See include/pci.h. */
#include "pci.h"
#include "x86.h"

static void select(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	outl(PCI_CONFIG_ADDRESS, 0x80000000u | (uint32_t)bus << 16 | (uint32_t)(dev & 31) << 11 |
					 (uint32_t)(fn & 7) << 8 | (off & 0xFC));
}

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	select(bus, dev, fn, off);
	return inl(PCI_CONFIG_DATA);
}

uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	select(bus, dev, fn, off);
	return inw((uint16_t)(PCI_CONFIG_DATA + (off & 2)));
}

uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	select(bus, dev, fn, off);
	return inb((uint16_t)(PCI_CONFIG_DATA + (off & 3)));
}

void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v)
{
	select(bus, dev, fn, off);
	outl(PCI_CONFIG_DATA, v);
}
