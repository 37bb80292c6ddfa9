/* tvisor: EPT (SDM 3C §28.2). Each guest gets a 4-level EPT that maps guest-physical
 * [0, ram_size) onto its host block, read/write/execute, write-back, and nothing else: any other
 * guest-physical access (device MMIO, memory it does not own) is an EPT violation, which ends
 * that guest (exits.c). 2 MiB pages where the CPU offers them and the block allows. */
#include "tvisor.h"

static uint64_t *next_table(uint64_t *e)
{
	if (!(*e & EPT_RWX)) {
		uint64_t *t = page_alloc_zero();
		*e = (uint64_t)t | EPT_RWX;
	}
	return (uint64_t *)(*e & EPT_ADDR);
}

static unsigned idx(uint64_t gpa, int level) { return (gpa >> (12 + 9 * (level - 1))) & 511; }

void ept_build(struct guest *g)
{
	uint64_t mt = (caps.ept_vpid & EPTCAP_WB) ? MT_WB : MT_UC;
	g->ept_root = page_alloc_zero();
	bool big = (caps.ept_vpid & EPTCAP_2M) && !(g->ram_hpa & (PAGE_2M - 1));
	for (uint64_t gpa = 0; gpa < g->ram_size;) {
		uint64_t *pdpt = next_table(&g->ept_root[idx(gpa, 4)]);
		uint64_t *pd = next_table(&pdpt[idx(gpa, 3)]);
		uint64_t hpa = g->ram_hpa + gpa;
		if (big && !(gpa & (PAGE_2M - 1)) && g->ram_size - gpa >= PAGE_2M) {
			pd[idx(gpa, 2)] = hpa | EPT_RWX | (mt << EPT_MT_SHIFT) | EPT_LARGE;
			gpa += PAGE_2M;
			continue;
		}
		uint64_t *pt = next_table(&pd[idx(gpa, 2)]);
		pt[idx(gpa, 1)] = hpa | EPT_RWX | (mt << EPT_MT_SHIFT);
		gpa += PAGE_4K;
	}
	g->eptp = (uint64_t)g->ept_root | EPTP_WALK4 | ((caps.ept_vpid & EPTCAP_WB) ? MT_WB : MT_UC);
}

void ept_map_page(struct guest *g, uint64_t gpa, uint64_t hpa)
{
	uint64_t mt = (caps.ept_vpid & EPTCAP_WB) ? MT_WB : MT_UC;
	uint64_t *pdpt = next_table(&g->ept_root[idx(gpa, 4)]);
	uint64_t *pd = next_table(&pdpt[idx(gpa, 3)]);
	uint64_t *pt = next_table(&pd[idx(gpa, 2)]);
	pt[idx(gpa, 1)] = hpa | EPT_RWX | (mt << EPT_MT_SHIFT);
}
