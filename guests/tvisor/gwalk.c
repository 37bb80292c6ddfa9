/* tvisor: a software walk of the guest's page tables (SDM 3A chapter 4) in the mode the guest
 * believes it is in (its CR0/CR4/EFER, not the real ones), with the guest's CR3. Tables are
 * read from the guest's RAM through gpa_ptr(): a table outside it is an error.
 *
 * Rights (SDM 3A §4.6): writes need W at every level for user accesses, and for supervisor
 * accesses when CR0.WP=1; user accesses need U at every level; fetches fault on NX (with
 * EFER.NXE) and, for supervisor fetches, on user pages with CR4.SMEP; supervisor data accesses
 * to user pages fault with CR4.SMAP unless RFLAGS.AC (tvisor's emulated accesses are explicit
 * ones of the current instruction). Reserved bits: physical-address bits above MAXPHYADDR, NX
 * without NXE, PS in a PML4E, bit 7 of a 4-KiB PTE is PAT (not reserved). */
#include "gwalk.h"

enum gmode guest_paging_mode(struct guest *g)
{
	if (!(g->cr0 & CR0_PG))
		return GM_NONE;
	if (!(g->cr4 & CR4_PAE))
		return GM_32;
	return (guest_efer(g) & EFER_LMA) ? GM_LONG : GM_PAE;
}

static bool read_entry(struct guest *g, uint64_t gpa, unsigned size, uint64_t *v)
{
	if (!gpa_ok(g, gpa, size))
		return false;
	*v = size == 8 ? *(volatile uint64_t *)gpa_ptr(g, gpa) : *(volatile uint32_t *)gpa_ptr(g, gpa);
	return true;
}

static void set_bits(struct guest *g, uint64_t gpa, unsigned size, uint64_t bits)
{
	/* a locked OR, like the processor's A/D update (SDM 3A §4.8) */
	if (size == 8)
		__atomic_fetch_or((uint64_t *)gpa_ptr(g, gpa), bits, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_or((uint32_t *)gpa_ptr(g, gpa), (uint32_t)bits, __ATOMIC_SEQ_CST);
}

uint32_t guest_walk(struct guest *g, uint64_t gva, unsigned access, bool set_ad, struct gwalk *w)
{
	memset(w, 0, sizeof(*w));
	w->mode = guest_paging_mode(g);
	w->w = w->u = true;
	w->nx = false;
	if (w->mode == GM_NONE) {
		w->gpa = (uint32_t)gva;
		w->page_size = PAGE_2M; /* no pages: any size will do; the shadow maps 2 MiB at a time */
		w->page_gpa = w->gpa & ~(PAGE_2M - 1);
		return 0;
	}
	uint64_t efer = guest_efer(g);
	bool nxe = efer & EFER_NXE;
	uint64_t maxpa_mask = ~((1ull << caps.maxphyaddr) - 1) & 0x000FFFFFFFFFFFFFull;
	uint64_t cr3 = guest_cr3(g);
	uint32_t err_base = WALK_FAULT | ((access & ACC_WRITE) ? PFERR_W : 0) | ((access & ACC_USER) ? PFERR_U : 0) |
			    ((access & ACC_FETCH) && (nxe || (g->cr4 & CR4_SMEP)) ? PFERR_I : 0);
	int level;
	uint64_t table;
	unsigned esz = w->mode == GM_32 ? 4 : 8;
	w->entry_size = esz;
	if (w->mode == GM_LONG) {
		level = 4;
		table = cr3 & 0x000FFFFFFFFFF000ull;
	} else if (w->mode == GM_PAE) {
		/* the PDPTE: SDM 3A §4.4.1 (the CPU caches the four at MOV CR3; we read them now) */
		uint64_t pdpte_gpa = (cr3 & 0xFFFFFFE0u) + ((gva >> 30) & 3) * 8, e;
		if (!read_entry(g, pdpte_gpa, 8, &e))
			return WALK_BAD_TABLE;
		w->table_gpa[0] = cr3 & 0xFFFFFFE0u;
		w->entry_gpa[0] = pdpte_gpa;
		w->nlevels = 1;
		if (!(e & PTE_P))
			return err_base;
		if (e & (maxpa_mask | 0x1E6))
			return err_base | PFERR_P | PFERR_RSVD;
		level = 2;
		table = e & 0x000FFFFFFFFFF000ull;
	} else {
		level = 2;
		table = cr3 & 0xFFFFF000u;
	}
	for (;; level--) {
		unsigned shift = w->mode == GM_32 ? (level == 2 ? 22 : 12) : 12 + 9 * (unsigned)(level - 1);
		unsigned index = w->mode == GM_32 ? (gva >> shift) & 1023 : (gva >> shift) & 511;
		uint64_t egpa = table + (uint64_t)index * esz, e;
		if (!read_entry(g, egpa, esz, &e))
			return WALK_BAD_TABLE;
		w->table_gpa[w->nlevels] = table;
		w->entry_gpa[w->nlevels] = egpa;
		w->nlevels++;
		if (!(e & PTE_P))
			return err_base;
		bool ps = (e & PTE_PS) && level > 1;
		if (w->mode == GM_32 && ps && !(g->cr4 & CR4_PSE))
			ps = false;
		/* reserved bits */
		uint64_t rsvd = 0;
		if (esz == 8) {
			rsvd = e & maxpa_mask;
			if (!nxe && (e & PTE_NX))
				rsvd = 1;
			if (level == 4 && (e & PTE_PS))
				rsvd = 1;
			if (ps && level == 3 && (e & 0x3FFFE000ull))
				rsvd = 1;
			if (ps && level == 2 && (e & 0x1FE000ull))
				rsvd = 1;
		} else if (ps && (e & (1u << 21))) {
			rsvd = 1;
		}
		if (rsvd)
			return err_base | PFERR_P | PFERR_RSVD;
		if (!(e & PTE_W))
			w->w = false;
		if (!(e & PTE_U))
			w->u = false;
		if (nxe && (e & PTE_NX))
			w->nx = true;
		if (level == 1 || ps) {
			w->leaf = e;
			w->leaf_level = level;
			if (w->mode == GM_32 && ps) {
				/* 4 MiB page: bits 31:22, and PSE-36 bits 20:13 -> 39:32 */
				w->page_size = 0x400000;
				w->page_gpa = (e & 0xFFC00000u) | ((e & 0x1FE000u) << 19);
			} else {
				w->page_size = 1ull << shift;
				w->page_gpa = e & 0x000FFFFFFFFFF000ull & ~(w->page_size - 1);
			}
			w->gpa = w->page_gpa + (gva & (w->page_size - 1));
			break;
		}
		table = e & (esz == 8 ? 0x000FFFFFFFFFF000ull : 0xFFFFF000ull);
	}
	/* rights */
	uint32_t err = err_base | PFERR_P;
	bool user = access & ACC_USER;
	if (user && !w->u)
		return err;
	if ((access & ACC_WRITE) && !w->w && (user || (g->cr0 & CR0_WP)))
		return err;
	if (access & ACC_FETCH) {
		if (w->nx)
			return err;
		if (!user && w->u && (g->cr4 & CR4_SMEP))
			return err;
	} else if (!user && w->u && (g->cr4 & CR4_SMAP) && !(vmcs_read(G_RFLAGS) & RFLAGS_AC)) {
		return err;
	}
	if (set_ad) {
		for (unsigned i = 0; i < w->nlevels; i++) {
			if (w->mode == GM_PAE && i == 0)
				continue; /* PDPTEs have no A bit */
			set_bits(g, w->entry_gpa[i], esz, PTE_A);
		}
		if (access & ACC_WRITE)
			set_bits(g, w->entry_gpa[w->nlevels - 1], esz, PTE_D);
	}
	return 0;
}

int gva_to_gpa(struct guest *g, uint64_t gva, unsigned access, uint64_t *gpa)
{
	struct gwalk w;
	uint32_t err = guest_walk(g, gva, access, true, &w);
	if (err)
		return err == WALK_BAD_TABLE ? -1 : (int)err; /* WALK_FAULT | error code */
	*gpa = w.gpa;
	return 0;
}

static bool copy_linear(struct guest *g, uint64_t gva, void *buf, unsigned n, bool write)
{
	unsigned access = (write ? ACC_WRITE : 0) | (guest_cpl() == 3 ? ACC_USER : 0);
	uint8_t *b = buf;
	while (n) {
		uint64_t gpa;
		if (gva_to_gpa(g, gva, access, &gpa) != 0)
			return false;
		unsigned chunk = (unsigned)(PAGE_4K - (gva & 0xFFF));
		if (chunk > n)
			chunk = n;
		if (!gpa_ok(g, gpa, chunk))
			return false;
		if (write)
			memcpy(gpa_ptr(g, gpa), b, chunk);
		else
			memcpy(b, gpa_ptr(g, gpa), chunk);
		gva += chunk;
		b += chunk;
		n -= chunk;
	}
	return true;
}

bool guest_read_linear(struct guest *g, uint64_t gva, void *buf, unsigned n) { return copy_linear(g, gva, buf, n, false); }

bool guest_write_linear(struct guest *g, uint64_t gva, const void *buf, unsigned n)
{
	return copy_linear(g, gva, (void *)buf, n, true);
}
