/* ACPI tables (ACPI 6.x §5.2): the RSDP found by scanning the BIOS area 0xE0000-0xFFFFF on
 * 16-byte boundaries (§5.2.5.1; the EBDA is not searched: kernels do not rely on the BIOS data
 * area), the RSDT/XSDT, the MADT ("APIC") and the FADT ("FACP"). Tables are below 4 GiB and
 * read in place through the identity map. */
#ifndef ACPI_H
#define ACPI_H

#include "types.h"

struct PACKED acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum; /* first 20 bytes sum to 0 */
	char oem_id[6];
	uint8_t revision; /* 0: ACPI 1.0 (20 bytes), >= 2: the extended fields below */
	uint32_t rsdt;
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum; /* all `length` bytes sum to 0 */
	uint8_t reserved[3];
};

struct PACKED acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
};

/* MADT entry types (§5.2.12) */
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2 /* interrupt source override */
#define MADT_LAPIC_NMI 4
#define MADT_X2APIC 9
#define MADT_LAPIC_ENABLED 1u /* flags bit 0 */

#define ACPI_MAX_CPUS 16
#define ACPI_MAX_ISO 16

struct madt_info {
	uint32_t lapic_addr;
	uint32_t flags; /* bit 0: PC-AT compatible 8259s present */
	unsigned n_lapic; /* LAPIC (and x2APIC) entries with the enabled flag */
	unsigned n_lapic_entries; /* all of them */
	uint32_t apic_id[ACPI_MAX_CPUS]; /* of the enabled ones, in table order */
	unsigned n_ioapic;
	uint8_t ioapic_id;
	uint32_t ioapic_addr, ioapic_gsi_base; /* the first IOAPIC */
	unsigned n_iso;
	struct {
		uint8_t bus, source;
		uint32_t gsi;
		uint16_t flags; /* bits 1:0 polarity, 3:2 trigger mode (0 = bus default) */
	} iso[ACPI_MAX_ISO];
};

/* MPS INTI flags of an override (§5.2.12.5) */
#define MPS_POLARITY_MASK 0x3
#define MPS_POLARITY_HIGH 0x1
#define MPS_POLARITY_LOW 0x3
#define MPS_TRIGGER_MASK 0xC
#define MPS_TRIGGER_EDGE 0x4
#define MPS_TRIGGER_LEVEL 0xC

bool acpi_checksum_ok(const void *p, size_t len);
/* First "RSD PTR " on a 16-byte boundary in 0xE0000-0xFFFFF whose 20-byte checksum is 0. */
const struct acpi_rsdp *acpi_find_rsdp(void);
/* The index-th table with this signature listed in the XSDT (RSDP revision >= 2 with a
 * non-zero XSDT address) or else the RSDT. NULL if absent. */
const struct acpi_header *acpi_find_table(const char *sig, unsigned index);
/* Root table used by acpi_find_table, and its entries. */
const struct acpi_header *acpi_root(void);
unsigned acpi_root_entries(void);
const struct acpi_header *acpi_root_entry(unsigned i);

bool acpi_parse_madt(struct madt_info *out);
/* GSI for an ISA IRQ (identity unless the MADT overrides it) and its MPS flags (0 = ISA
 * default: edge, active high). */
uint32_t acpi_isa_irq_gsi(const struct madt_info *m, uint8_t irq, uint16_t *flags);

/* FADT (§5.2.9): the PM timer I/O port (X_PM_TMR_BLK when the FADT has it and it is an I/O
 * address, else PM_TMR_BLK), 0 if none; *ext32 from flags bit 8 TMR_VAL_EXT (32-bit counter,
 * else 24 bits). */
uint16_t acpi_pm_timer_port(bool *ext32);
#define ACPI_PM_TIMER_HZ 3579545u

#endif
