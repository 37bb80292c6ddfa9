/* PCI configuration mechanism #1 (PCI Local Bus spec 3.0 §3.2.2.3.2): CONFIG_ADDRESS at
 * 0xCF8 (enable bit 31, bus, device, function, dword register), CONFIG_DATA at 0xCFC-0xCFF. */
#ifndef PCI_H
#define PCI_H

#include "types.h"

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_CLASS_REV 0x08 /* revision, prog-if, subclass, class */
#define PCI_HEADER_TYPE 0x0E

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);

#endif
