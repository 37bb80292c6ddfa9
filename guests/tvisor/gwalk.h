/* tvisor: walking a guest's own page tables (gwalk.c), for instruction emulation and for the
 * shadow MMU. */
#ifndef TVISOR_GWALK_H
#define TVISOR_GWALK_H

#include "tvisor.h"

enum gmode { GM_NONE, GM_32, GM_PAE, GM_LONG }; /* paging off, 32-bit, PAE, 4-level */

struct gwalk {
	enum gmode mode;
	uint64_t gpa; /* the translation of the address walked */
	uint64_t page_gpa; /* guest-physical start of the page it lies in */
	uint64_t page_size;
	bool w, u, nx; /* effective rights over all levels */
	uint64_t leaf; /* the leaf entry (0 when paging is off) */
	int leaf_level; /* 1 = PTE, 2 = PDE, 3 = PDPTE */
	unsigned nlevels; /* entries read: table_gpa/entry_gpa[0] is the top level */
	uint64_t table_gpa[4];
	uint64_t entry_gpa[4];
	unsigned entry_size; /* 4 (32-bit paging) or 8 */
};

enum gmode guest_paging_mode(struct guest *g);
/* Walk gva through the guest's tables. Returns 0 and fills *w; WALK_FAULT | the #PF error
 * code (P/W/U/RSVD/I bits of SDM 3A §4.7) when the access faults; WALK_BAD_TABLE when a table
 * is outside the guest's RAM.
 * `access` is ACC_WRITE/ACC_USER/ACC_FETCH; set_ad also sets the accessed/dirty bits the
 * access would set, as the CPU does. */
uint32_t guest_walk(struct guest *g, uint64_t gva, unsigned access, bool set_ad, struct gwalk *w);
#define WALK_BAD_TABLE (1u << 31)
#define WALK_FAULT (1u << 30)
#define WALK_ERROR_CODE 0xFFFFu
#define PFERR_P 1u
#define PFERR_W 2u
#define PFERR_U 4u
#define PFERR_RSVD 8u
#define PFERR_I 16u

#endif
