/* ACPI table discovery. See include/acpi.h. */
#include "acpi.h"
#include "kstring.h"

bool acpi_checksum_ok(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return sum == 0;
}

const struct acpi_rsdp *acpi_find_rsdp(void)
{
	for (uint64_t a = 0xE0000; a < 0x100000; a += 16) {
		const struct acpi_rsdp *r = (const struct acpi_rsdp *)a;
		if (memcmp(r->signature, "RSD PTR ", 8) == 0 && acpi_checksum_ok(r, 20))
			return r;
	}
	return 0;
}

static bool use_xsdt(const struct acpi_rsdp *r) { return r->revision >= 2 && r->xsdt != 0 && r->xsdt < (1ull << 32); }

const struct acpi_header *acpi_root(void)
{
	const struct acpi_rsdp *r = acpi_find_rsdp();
	if (!r)
		return 0;
	return (const struct acpi_header *)(use_xsdt(r) ? r->xsdt : (uint64_t)r->rsdt);
}

static unsigned entry_size(const struct acpi_header *root) { return memcmp(root->signature, "XSDT", 4) == 0 ? 8 : 4; }

unsigned acpi_root_entries(void)
{
	const struct acpi_header *root = acpi_root();
	if (!root || root->length < sizeof(*root))
		return 0;
	return (root->length - (uint32_t)sizeof(*root)) / entry_size(root);
}

const struct acpi_header *acpi_root_entry(unsigned i)
{
	const struct acpi_header *root = acpi_root();
	if (!root || i >= acpi_root_entries())
		return 0;
	const uint8_t *e = (const uint8_t *)(root + 1) + (size_t)i * entry_size(root);
	uint64_t addr;
	if (entry_size(root) == 8)
		memcpy(&addr, e, 8); /* XSDT entries are not 8-byte aligned */
	else {
		uint32_t a32;
		memcpy(&a32, e, 4);
		addr = a32;
	}
	return addr && addr < (1ull << 32) ? (const struct acpi_header *)addr : 0;
}

const struct acpi_header *acpi_find_table(const char *sig, unsigned index)
{
	unsigned n = acpi_root_entries();
	for (unsigned i = 0; i < n; i++) {
		const struct acpi_header *t = acpi_root_entry(i);
		if (t && memcmp(t->signature, sig, 4) == 0 && index-- == 0)
			return t;
	}
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

bool acpi_parse_madt(struct madt_info *m)
{
	memset(m, 0, sizeof(*m));
	const struct acpi_header *h = acpi_find_table("APIC", 0);
	if (!h || h->length < sizeof(*h) + 8)
		return false;
	const uint8_t *p = (const uint8_t *)h;
	m->lapic_addr = rd32(p + 36);
	m->flags = rd32(p + 40);
	for (uint32_t off = 44; off + 2 <= h->length;) {
		uint8_t type = p[off], len = p[off + 1];
		const uint8_t *e = p + off;
		if (len < 2 || off + len > h->length)
			return false;
		switch (type) {
		case MADT_LAPIC: /* processor UID, APIC ID, flags */
			if (len < 8)
				return false;
			m->n_lapic_entries++;
			if (rd32(e + 4) & MADT_LAPIC_ENABLED) {
				if (m->n_lapic < ACPI_MAX_CPUS)
					m->apic_id[m->n_lapic] = e[3];
				m->n_lapic++;
			}
			break;
		case MADT_X2APIC: /* reserved(2), x2APIC ID, flags, UID */
			if (len < 16)
				return false;
			m->n_lapic_entries++;
			if (rd32(e + 8) & MADT_LAPIC_ENABLED) {
				if (m->n_lapic < ACPI_MAX_CPUS)
					m->apic_id[m->n_lapic] = rd32(e + 4);
				m->n_lapic++;
			}
			break;
		case MADT_IOAPIC: /* ID, reserved, address, GSI base */
			if (len < 12)
				return false;
			if (m->n_ioapic++ == 0) {
				m->ioapic_id = e[2];
				m->ioapic_addr = rd32(e + 4);
				m->ioapic_gsi_base = rd32(e + 8);
			}
			break;
		case MADT_ISO: /* bus, source, GSI, flags */
			if (len < 10)
				return false;
			if (m->n_iso < ACPI_MAX_ISO) {
				m->iso[m->n_iso].bus = e[2];
				m->iso[m->n_iso].source = e[3];
				m->iso[m->n_iso].gsi = rd32(e + 4);
				m->iso[m->n_iso].flags = rd16(e + 8);
				m->n_iso++;
			}
			break;
		default:
			break;
		}
		off += len;
	}
	return true;
}

uint32_t acpi_isa_irq_gsi(const struct madt_info *m, uint8_t irq, uint16_t *flags)
{
	for (unsigned i = 0; i < m->n_iso; i++) {
		if (m->iso[i].bus == 0 && m->iso[i].source == irq) {
			if (flags)
				*flags = m->iso[i].flags;
			return m->iso[i].gsi;
		}
	}
	if (flags)
		*flags = 0;
	return irq;
}

uint16_t acpi_pm_timer_port(bool *ext32)
{
	const struct acpi_header *h = acpi_find_table("FACP", 0);
	if (!h)
		return 0;
	const uint8_t *p = (const uint8_t *)h;
	if (ext32)
		*ext32 = h->length >= 116 && (rd32(p + 112) >> 8) & 1;
	/* X_PM_TMR_BLK: a Generic Address Structure at 208 (space id 1 = system I/O) */
	if (h->length >= 220 && p[208] == 1) {
		uint64_t a;
		memcpy(&a, p + 212, 8);
		if (a && a < 0x10000)
			return (uint16_t)a;
	}
	if (h->length >= 80)
		return (uint16_t)rd32(p + 76); /* PM_TMR_BLK */
	return 0;
}
