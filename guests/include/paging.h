/* 4-level page-table helpers working on the live tables (CR3).
 *
 * The boot tables identity-map 0..4 GiB with 2 MiB supervisor pages. Mapping a 4 KiB page
 * inside a 2 MiB (or 1 GiB) page splits it into an equivalent table first. Tests should put their
 * own mappings at TEST_VA (PML4 slot 1), away from the identity map. Entries created for
 * intermediate levels are P|W|U, so the leaf alone decides access rights.
 * Changing an entry does not flush the TLB: call invlpg() or tlb_flush_all() as the test needs. */
#ifndef PAGING_H
#define PAGING_H

#include "types.h"

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_U (1ull << 2)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_G (1ull << 8)
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000FFFFFFFFFF000ull

#define PAGE_4K 0x1000ull
#define PAGE_2M 0x200000ull
#define PAGE_1G 0x40000000ull

#define TEST_VA 0x0000008000000000ull /* 512 GiB: PML4 entry 1, unused by the identity map */

/* levels: 1 = PTE (4K), 2 = PDE (2M), 3 = PDPTE (1G), 4 = PML4E.
 * Entries are returned as volatile: the CPU writes A/D bits behind the compiler's back. */
typedef volatile uint64_t pte_t;
uint64_t *paging_root(void); /* the PML4 CR3 points to */

/* Entry at `level` for va under root; creates tables (splitting large pages) if create is set,
 * otherwise returns NULL when the walk stops earlier. */
pte_t *pte_at(uint64_t *root, uint64_t va, int level, bool create);
/* The entry that currently translates va (a leaf at any level) and its level, or NULL. */
pte_t *pte_leaf(uint64_t *root, uint64_t va, int *level);

/* Map va -> pa with a page of the given level; flags should include PTE_P. */
void map_page(uint64_t *root, uint64_t va, uint64_t pa, uint64_t flags, int level);
void map_4k(uint64_t va, uint64_t pa, uint64_t flags); /* in the current address space */
/* Mark [start, end) user-accessible in the current address space (4K granularity). */
void paging_set_user(uint64_t start, uint64_t end);

/* Read/modify the leaf entry of va in the current address space (no TLB flush). */
uint64_t pte_get(uint64_t va);
void pte_set_bits(uint64_t va, uint64_t bits);
void pte_clear_bits(uint64_t va, uint64_t bits);
static inline bool pte_accessed(uint64_t va) { return pte_get(va) & PTE_A; }
static inline bool pte_dirty(uint64_t va) { return pte_get(va) & PTE_D; }

/* A new PML4 sharing the identity map (slot 0) with the current one; other slots empty. */
uint64_t *paging_new_root(void);

/* Flushes every TLB entry including global ones (toggles CR4.PGE if set, else reloads CR3). */
void tlb_flush_all(void);

/* Zeroed 4 KiB pages from a static pool (identity-mapped: virtual == physical). */
void *page_alloc(void);

#endif
