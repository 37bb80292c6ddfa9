#include "paging.h"
#include "x86.h"

#define TABLE_FLAGS (PTE_P | PTE_W | PTE_U)

static unsigned index_of(uint64_t va, int level) { return (va >> (12 + 9 * (level - 1))) & 511; }
static uint64_t level_size(int level) { return 1ull << (12 + 9 * (level - 1)); }

uint64_t *paging_root(void) { return (uint64_t *)(read_cr3() & PTE_ADDR); }

/* Replace the large page at *e (a leaf at `level`) by a table of equivalent smaller pages.
 * Bit 7 means PS in a PDE/PDPTE but PAT in a PTE, and PAT for large pages is bit 12, so the
 * flags are carried over without either (we never use PAT). */
static void split(pte_t *e, int level)
{
	uint64_t *t = page_alloc();
	uint64_t base = *e & PTE_ADDR & ~(level_size(level) - 1);
	uint64_t flags = *e & ~PTE_ADDR & ~PTE_PS;
	uint64_t child_ps = level - 1 > 1 ? PTE_PS : 0;
	for (int i = 0; i < 512; i++)
		t[i] = (base + (uint64_t)i * level_size(level - 1)) | flags | child_ps;
	*e = (uint64_t)t | TABLE_FLAGS;
}

pte_t *pte_at(uint64_t *root, uint64_t va, int level, bool create)
{
	pte_t *table = root;
	for (int l = 4; l > level; l--) {
		pte_t *e = &table[index_of(va, l)];
		if (!(*e & PTE_P)) {
			if (!create)
				return 0;
			*e = (uint64_t)page_alloc() | TABLE_FLAGS;
		} else if (l < 4 && (*e & PTE_PS)) {
			if (!create)
				return 0;
			split(e, l);
		}
		table = (pte_t *)(*e & PTE_ADDR);
	}
	return &table[index_of(va, level)];
}

pte_t *pte_leaf(uint64_t *root, uint64_t va, int *level)
{
	pte_t *table = root;
	for (int l = 4; l >= 1; l--) {
		pte_t *e = &table[index_of(va, l)];
		if (!(*e & PTE_P))
			return 0;
		if (l == 1 || (l < 4 && (*e & PTE_PS))) {
			if (level)
				*level = l;
			return e;
		}
		table = (pte_t *)(*e & PTE_ADDR);
	}
	return 0;
}

void map_page(uint64_t *root, uint64_t va, uint64_t pa, uint64_t flags, int level)
{
	pte_t *e = pte_at(root, va, level, true);
	*e = pa | flags | (level > 1 ? PTE_PS : 0);
}

void map_4k(uint64_t va, uint64_t pa, uint64_t flags) { map_page(paging_root(), va, pa, flags, 1); }

void paging_set_user(uint64_t start, uint64_t end)
{
	for (uint64_t va = start & ~(PAGE_4K - 1); va < end; va += PAGE_4K)
		*pte_at(paging_root(), va, 1, true) |= PTE_U;
	tlb_flush_all();
}

uint64_t pte_get(uint64_t va)
{
	pte_t *e = pte_leaf(paging_root(), va, 0);
	return e ? *e : 0;
}

/* A leaf that is not present is still found here (pte_leaf stops at non-present entries). */
static pte_t *leaf_or_slot(uint64_t va)
{
	int level;
	pte_t *e = pte_leaf(paging_root(), va, &level);
	return e ? e : pte_at(paging_root(), va, 1, true);
}

void pte_set_bits(uint64_t va, uint64_t bits) { *leaf_or_slot(va) |= bits; }
void pte_clear_bits(uint64_t va, uint64_t bits) { *leaf_or_slot(va) &= ~bits; }

uint64_t *paging_new_root(void)
{
	uint64_t *root = page_alloc();
	root[0] = paging_root()[0];
	return root;
}

void tlb_flush_all(void)
{
	uint64_t cr4 = read_cr4();
	if (cr4 & CR4_PGE) {
		/* SDM 3A §4.10.4.1: clearing CR4.PGE invalidates all TLB entries, global included */
		write_cr4(cr4 & ~CR4_PGE);
		write_cr4(cr4);
	} else {
		write_cr3(read_cr3());
	}
}
