/* tvisor: shadow paging (mmu=shadow, or a CPU without EPT).
 *
 * The CPU always translates with tvisor's shadow page tables; the guest's own tables are only
 * data in its RAM that tvisor reads. A shadow leaf is made from a complete walk of the guest's
 * tables (gwalk.c) for the faulting address and maps it straight to host-physical memory
 * (guest RAM is one host block). So the shadow tables behave exactly like a TLB for the guest
 * -- a "virtual TLB" -- and follow the TLB rules of SDM 3A §4.10:
 *
 *  - filled on demand: every #PF exits (exception bitmap bit 14, PFEC mask/match 0). tvisor walks
 *    the guest's tables; if the guest's tables allow the access the shadow entry is (re)built and
 *    the instruction restarts, otherwise the guest gets the #PF its own tables call for (error
 *    code and CR2 from the guest walk). A fault on a stale shadow entry is thus never seen by the
 *    guest, as a processor re-walks before faulting;
 *  - kept unsynchronized with the guest's tables between the points where the architecture
 *    makes the guest invalidate: a guest write to its page tables is not trapped (its page-table
 *    pages are ordinary RAM to it); the shadow is resynchronized -- entries dropped, rebuilt on
 *    the next access -- at INVLPG (that page), INVPCID, MOV to CR3 and changes of CR0.PG/WP,
 *    CR4.PAE/PSE/PGE/PCIDE/SMEP/SMAP/PKE and EFER.NXE/LMA (everything). Global pages and PCIDs
 *    are therefore not kept across CR3 loads, which the architecture allows (SDM 3A §4.10.4.1);
 *  - accessed/dirty bits: the walk that fills a shadow entry sets A in every guest entry it used
 *    and D in the guest leaf for a write. A page whose guest leaf is still clean is shadowed
 *    read-only, so the first write faults into tvisor, which sets D then (SDM 3A §4.8);
 *  - CR0.WP=0: the shadow runs with WP=1 (the real CR0 is host-owned), so a supervisor write to
 *    a page the guest maps read-only faults; tvisor then maps it writable but supervisor-only,
 *    which is what WP=0 allows (a user access re-faults and gets the read-only user mapping).
 *
 * Formats: the shadow is PAE-format. With the guest in IA-32e mode it is a 4-level table; in
 * every other guest mode (paging off, 32-bit, PAE) the CPU runs PAE paging (32-bit linear
 * addresses, the four PDPTEs loaded from CR3 at VM entry). Guest pages of 2 MiB or more are
 * shadowed with 2 MiB pages where the guest-physical range is all RAM, else with 4 KiB pages.
 * Paging off is an identity map of the guest's RAM. Anything outside the guest's RAM (MMIO,
 * memory it does not have) is not mapped: such an access ends the guest, as an EPT violation
 * does with mmu=ept. */
#include "gwalk.h"

#define POOL_PAGES 512 /* shadow tables per guest; all are recycled when they run out */
#define SH_P PTE_P
#define SH_TABLE (PTE_P | PTE_W | PTE_U | PTE_A)
#define SH_BIG_GUEST (1ull << 9) /* AVL: the leaf shadows part of a guest page larger than itself */
#define LOOP_LIMIT 64 /* the same fault this many times in a row: tvisor's shadow is wrong */

struct shadow {
	bool long_mode; /* 4-level (guest IA-32e mode) or PAE */
	uint64_t *root; /* PML4 (4-level) or the PDPT (PAE; only 4 entries used) */
	uint64_t *pool[POOL_PAGES];
	unsigned npool, used;
	uint64_t last_gva;
	uint32_t last_err;
	unsigned repeat;
	/* statistics */
	uint64_t fills, guest_faults, flushes, invlpgs, recycles, cr3_writes;
};

static struct shadow shadows[TV_MAX_GUESTS];

static uint64_t *table_alloc(struct shadow *s)
{
	if (s->used == s->npool) {
		if (s->npool == POOL_PAGES)
			return 0;
		s->pool[s->npool++] = page_alloc_zero();
		return s->pool[s->used++];
	}
	uint64_t *t = s->pool[s->used++];
	memset(t, 0, PAGE_4K);
	return t;
}

static void load_root(struct guest *g)
{
	vmcs_write(G_CR3, (uint64_t)g->sh->root);
}

/* Drop every shadow translation. */
static void flush_all(struct guest *g)
{
	struct shadow *s = g->sh;
	s->flushes++;
	s->used = 0;
	s->long_mode = guest_efer(g) & EFER_LMA;
	s->root = table_alloc(s);
	load_root(g);
}

void shadow_init(struct guest *g)
{
	struct shadow *s = &shadows[g->id];
	memset(s, 0, sizeof(*s));
	g->sh = s;
	g->cr3 = 0;
	flush_all(g);
	s->flushes = 0;
}

void shadow_paging_changed(struct guest *g) { flush_all(g); }

bool shadow_cr3_write(struct guest *g, uint64_t v)
{
	struct shadow *s = g->sh;
	enum gmode mode = guest_paging_mode(g);
	if (mode == GM_LONG) {
		if ((g->cr4 & CR4_PCIDE))
			v &= ~(1ull << 63); /* "no flush" is a hint; it is not stored (SDM 2B MOV CR) */
		if (v >> caps.maxphyaddr)
			return inject_gp(g), false;
	} else if (mode == GM_PAE) {
		/* loading CR3 in PAE mode loads the PDPTEs: reserved bits set in a present one is #GP */
		uint64_t base = v & 0xFFFFFFE0u;
		if (!gpa_ok(g, base, 32))
			return inject_gp(g), false;
		uint64_t bad = 0x1E6 | ~((1ull << caps.maxphyaddr) - 1);
		for (int i = 0; i < 4; i++) {
			uint64_t e = ((volatile uint64_t *)gpa_ptr(g, base))[i];
			if ((e & PTE_P) && (e & bad & 0x000FFFFFFFFFFFFFull))
				return inject_gp(g), false;
			if ((e & PTE_P) && (e & 0x1E6))
				return inject_gp(g), false;
		}
	}
	g->cr3 = v;
	s->cr3_writes++;
	flush_all(g);
	return true;
}

static unsigned sh_index(uint64_t va, int level) { return (va >> (12 + 9 * (level - 1))) & 511; }

/* The shadow entry for va at `level` (1 = PTE, 2 = PDE), creating tables above it. NULL when
 * the pool is exhausted. */
static uint64_t *sh_entry(struct shadow *s, uint64_t va, int level)
{
	int top = s->long_mode ? 4 : 3;
	uint64_t *t = s->root;
	for (int l = top; l > level; l--) {
		uint64_t *e = &t[s->long_mode || l < 3 ? sh_index(va, l) : (va >> 30) & 3];
		if (!(*e & PTE_P) || (*e & PTE_PS)) {
			uint64_t *n = table_alloc(s);
			if (!n)
				return 0;
			/* PAE PDPTEs have no R/W, U/S or A bits (reserved, SDM 3A §4.4.1) */
			*e = (uint64_t)n | (!s->long_mode && l == 3 ? SH_P : SH_TABLE);
		}
		t = (uint64_t *)(*e & PTE_ADDR);
	}
	return &t[sh_index(va, level)];
}

/* Build the shadow translation for gva from a successful guest walk. Returns false if the
 * guest-physical page is not RAM (the guest is then stopped). */
static bool fill(struct guest *g, uint64_t gva, unsigned access, const struct gwalk *w)
{
	struct shadow *s = g->sh;
	bool user = access & ACC_USER, write = access & ACC_WRITE;
	bool writable = w->w, usr = w->u;
	if (!w->w && write && !user && !(g->cr0 & CR0_WP) && w->mode != GM_NONE) {
		writable = true; /* CR0.WP=0: supervisor writes ignore R/W (see the top) */
		usr = false;
	}
	/* a clean page stays read-only until its first write sets the guest's dirty bit */
	if (w->mode != GM_NONE && !(w->leaf & PTE_D) && !write)
		writable = false;
	uint64_t rights = SH_P | PTE_A | PTE_D | (writable ? PTE_W : 0) | (usr ? PTE_U : 0);
	if (w->nx)
		rights |= PTE_NX;
	if (!s->long_mode)
		gva = (uint32_t)gva;

	/* a 2 MiB shadow page when the guest page covers the aligned 2 MiB and it is all RAM */
	if (w->page_size >= PAGE_2M) {
		uint64_t gpa2 = w->gpa & ~(PAGE_2M - 1);
		if (gpa_ok(g, gpa2, PAGE_2M)) {
			uint64_t *e = sh_entry(s, gva, 2);
			if (!e)
				return false;
			*e = (g->ram_hpa + gpa2) | rights | PTE_PS | (w->page_size > PAGE_2M ? SH_BIG_GUEST : 0);
			return true;
		}
	}
	uint64_t gpa = w->gpa & ~0xFFFull;
	if (!gpa_ok(g, gpa, PAGE_4K)) {
		guest_fail(g, "%s guest-physical 0x%lx (linear 0x%lx): no RAM or device there (the guest has %lu MiB, no MMIO devices)",
			   (access & ACC_FETCH) ? "instruction fetch from" : write ? "write to" : "read of", w->gpa, gva,
			   g->ram_size >> 20);
		return false;
	}
	uint64_t *e = sh_entry(s, gva, 1);
	if (!e)
		return false;
	*e = (g->ram_hpa + gpa) | rights | (w->page_size > PAGE_4K ? SH_BIG_GUEST : 0);
	return true;
}

bool shadow_page_fault(struct guest *g, uint64_t gva, uint32_t error)
{
	struct shadow *s = g->sh;
	if (gva == s->last_gva && error == s->last_err) {
		if (++s->repeat >= LOOP_LIMIT) {
			guest_fail(g, "shadow paging: the same #PF (linear 0x%lx, error 0x%x) %u times in a row", gva, error,
				   s->repeat);
			return true;
		}
	} else {
		s->last_gva = gva;
		s->last_err = error;
		s->repeat = 0;
	}
	if (error & PFERR_RSVD) {
		guest_fail(g, "shadow paging: reserved-bit #PF at 0x%lx from tvisor's own tables", gva);
		return true;
	}
	unsigned access = ((error & PFERR_W) ? ACC_WRITE : 0) | ((error & PFERR_U) ? ACC_USER : 0) |
			  ((error & PFERR_I) ? ACC_FETCH : 0);
	struct gwalk w;
	uint32_t gerr = guest_walk(g, gva, access, true, &w);
	if (gerr == WALK_BAD_TABLE) {
		guest_fail(g, "shadow paging: the guest's page tables for 0x%lx are not in its RAM (CR3 0x%lx)", gva, g->cr3);
		return true;
	}
	if (gerr) {
		s->guest_faults++;
		/* the guest's own fault: deliver it (exits.c injects with CR2 = gva) */
		g->regs.cr2 = gva;
		inject_exception(g, VEC_PF, (int)(gerr & WALK_ERROR_CODE));
		return true;
	}
	s->fills++;
	if (fill(g, gva, access, &w))
		return true;
	if (g->state != G_RUNNABLE)
		return true;
	/* the pool ran out: start over with empty shadow tables */
	s->recycles++;
	flush_all(g);
	if (!fill(g, gva, access, &w) && g->state == G_RUNNABLE)
		guest_fail(g, "shadow paging: no room for one translation");
	return true;
}

/* Map gva in the shadow now if the guest's tables allow the access (no effect otherwise). */
static void prefill(struct guest *g, uint64_t gva, unsigned access)
{
	struct gwalk w;
	if (guest_walk(g, gva, access, true, &w) == 0)
		fill(g, gva, access, &w);
}

static void prefill_range(struct guest *g, uint64_t gva, uint64_t len, unsigned access)
{
	for (uint64_t p = gva & ~0xFFFull; p < gva + len && g->state == G_RUNNABLE; p += PAGE_4K)
		prefill(g, p < gva ? gva : p, access);
}

/* Before tvisor injects exception `vector`: map in the shadow what delivering it touches -- the
 * IDT gate, the GDT descriptor of the handler's CS, the TSS and the stack the CPU will push the
 * frame on -- when the guest's own tables map them. A #PF from the shadow in the middle of an
 * event delivery is architecturally a VM exit (#PF is in the exception bitmap, with the event
 * in the IDT-vectoring information, SDM 3C §25.2, §27.2.4), but turtles turns a #PF that hits
 * the delivery of a #PF into a #DF without consulting the exception bitmap (see the report in
 * guests/README.md "tvisor"), so tvisor makes sure no such fault happens for what it injects.
 * Called for the injected vector and for #DF, which the guest may need if its own tables
 * make the delivery fault. */
static void prepare_delivery(struct guest *g, unsigned vector)
{
	bool lm = guest_efer(g) & EFER_LMA;
	uint64_t idt = vmcs_read(G_IDTR_BASE), gate = idt + vector * (lm ? 16u : 8u);
	prefill_range(g, gate, lm ? 16 : 8, 0);
	uint32_t d[4] = { 0, 0, 0, 0 };
	if (!guest_read_linear(g, gate, d, lm ? 16 : 8))
		return;
	uint16_t sel = (uint16_t)(d[0] >> 16);
	uint64_t gdt = vmcs_read(G_GDTR_BASE);
	prefill_range(g, gdt + (sel & ~7u), 8, 0);
	uint64_t tss = vmcs_read(G_TR_BASE);
	unsigned ist = lm ? d[1] & 7 : 0;
	unsigned cpl = guest_cpl();
	uint64_t rsp = vmcs_read(G_RSP);
	if (ist) {
		prefill_range(g, tss + 0x24 + 8 * (ist - 1), 8, 0);
		guest_read_linear(g, tss + 0x24 + 8 * (ist - 1), &rsp, 8);
	} else if (cpl > 0) {
		/* RSP0 (64-bit TSS) or ESP0 (32-bit TSS), both at offset 4 */
		prefill_range(g, tss + 4, lm ? 8 : 4, 0);
		uint64_t r = 0;
		guest_read_linear(g, tss + 4, &r, lm ? 8 : 4);
		rsp = r;
	}
	if (!lm)
		rsp = (uint32_t)(rsp + vmcs_read(G_SS_BASE)); /* a flat stack in practice */
	rsp &= lm ? ~15ull : ~0ull;
	prefill_range(g, rsp - 64, 64, ACC_WRITE);
}

void shadow_prepare_injection(struct guest *g, unsigned vector)
{
	static int enabled = -1; /* prefill=0 on tvisor's command line turns this off (to reproduce) */
	if (enabled < 0)
		enabled = cmdline_u64("prefill", 1) != 0;
	if (!enabled)
		return;
	prepare_delivery(g, vector);
	if (g->state == G_RUNNABLE && vector != VEC_DF)
		prepare_delivery(g, VEC_DF);
}

void shadow_invlpg(struct guest *g, uint64_t gva)
{
	struct shadow *s = g->sh;
	s->invlpgs++;
	if (!s->long_mode)
		gva = (uint32_t)gva;
	/* find the shadow leaf without creating anything */
	int top = s->long_mode ? 4 : 3;
	uint64_t *t = s->root;
	for (int l = top; l >= 1; l--) {
		uint64_t *e = &t[s->long_mode || l < 3 ? sh_index(gva, l) : (gva >> 30) & 3];
		if (!(*e & PTE_P))
			return;
		if (l == 1 || (l == 2 && (*e & PTE_PS))) {
			/* part of a bigger guest page: other shadow leaves may map it too */
			if (*e & SH_BIG_GUEST)
				return flush_all(g);
			*e = 0;
			return;
		}
		t = (uint64_t *)(*e & PTE_ADDR);
	}
}

void shadow_invpcid(struct guest *g, unsigned type, uint64_t pcid, uint64_t gva)
{
	(void)pcid;
	if (type == 0)
		shadow_invlpg(g, gva); /* one address (of any PCID: the shadow has no PCIDs) */
	else
		flush_all(g);
}

void shadow_stats(struct guest *g)
{
	struct shadow *s = g->sh;
	if (!s)
		return;
	printf("tvisor: g%d shadow: %lu fills, %lu guest page faults, %lu flushes, %lu INVLPG, %lu CR3 loads, %u tables%s\n",
	       g->id, s->fills, s->guest_faults, s->flushes, s->invlpgs, s->cr3_writes, s->npool,
	       s->recycles ? " (recycled)" : "");
}
