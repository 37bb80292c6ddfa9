/* I/O APIC (82093AA datasheet; ACPI MADT gives its address and GSI base): an index register at
 * base+0x00, a data window at base+0x10, the EOI register at base+0x40 (version >= 0x20).
 * Redirection entry n is the 64-bit register pair 0x10+2n / 0x11+2n. */
#ifndef IOAPIC_H
#define IOAPIC_H

#include "types.h"

#define IOAPIC_DEFAULT_BASE 0xFEC00000ull
#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REG_REDTBL 0x10

/* Redirection entry bits (low word, as the LVT; destination in bits 63:56) */
#define IOAPIC_MASKED (1ull << 16)
#define IOAPIC_LEVEL (1ull << 15)
#define IOAPIC_REMOTE_IRR (1ull << 14)
#define IOAPIC_ACTIVE_LOW (1ull << 13)
#define IOAPIC_PENDING (1ull << 12)
#define IOAPIC_LOGICAL (1ull << 11)
#define IOAPIC_DM_FIXED (0ull << 8)
#define IOAPIC_DM_LOWEST (1ull << 8)
#define IOAPIC_DM_NMI (4ull << 8)
#define IOAPIC_DM_EXTINT (7ull << 8)
#define IOAPIC_DEST(apic_id) ((uint64_t)(apic_id) << 56)

/* Use the IOAPIC at `base` (from the MADT) serving GSIs from gsi_base. */
void ioapic_set_base(uint64_t base, uint32_t gsi_base);
uint32_t ioapic_read(uint8_t reg);
void ioapic_write(uint8_t reg, uint32_t v);
unsigned ioapic_max_entry(void); /* version register bits 23:16 */
uint64_t ioapic_get_entry(uint32_t gsi);
void ioapic_set_entry(uint32_t gsi, uint64_t entry); /* writes the high word first, low last */
void ioapic_mask(uint32_t gsi, bool masked);
/* Every entry masked, edge, vector 0 (the state after reset, made explicit). */
void ioapic_init(void);

#endif
