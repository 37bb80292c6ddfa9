/* TLB maintenance (SDM 3A §4.10). After a PTE changes, a stale translation may or may not be
 * used until it is invalidated, so the old value is read but never asserted. What is asserted
 * is what the architecture guarantees: after INVLPG, a CR3 load (for non-global pages), a
 * CR4.PGE toggle, or INVPCID, the *new* translation is used. */
#include "rt.h"

#define VAL_A 0xAAAA0000AAAA0000ull
#define VAL_B 0xBBBB0000BBBB0000ull

static uint64_t page_with(uint64_t v)
{
	uint64_t *p = page_alloc();
	p[0] = v;
	return (uint64_t)p;
}

static uint64_t peek(uint64_t va) { return *(volatile uint64_t *)va; }

static void touch(void *va) { (void)peek((uint64_t)va); }

static uint64_t slot_va(int slot) { return TEST_VA + (uint64_t)slot * PAGE_4K; }

/* Maps va -> page A, touches it so the TLB likely caches it, then remaps to page B without
 * any invalidation. Returns what a read sees right after (A or B: both are allowed). */
static uint64_t remap_behind_tlb(uint64_t va, uint64_t flags)
{
	map_4k(va, page_with(VAL_A), flags);
	invlpg(va);
	(void)peek(va);
	map_4k(va, page_with(VAL_B), flags);
	return peek(va);
}

TEST(stale_translation_allowed_invlpg_required)
{
	uint64_t va = slot_va(1);
	uint64_t seen = remap_behind_tlb(va, PTE_P | PTE_W);
	EXPECT(seen == VAL_A || seen == VAL_B);
	invlpg(va);
	EXPECT_EQ(peek(va), VAL_B);
}

TEST(mov_cr3_flushes_non_global)
{
	uint64_t va = slot_va(2);
	remap_behind_tlb(va, PTE_P | PTE_W);
	write_cr3(read_cr3());
	EXPECT_EQ(peek(va), VAL_B);
}

TEST(not_present_to_present_needs_no_flush)
{
	/* no TLB entry is created from an entry with P=0 (SDM 3A §4.10.4.3) */
	uint64_t va = slot_va(3);
	map_4k(va, page_with(VAL_A), 0);
	invlpg(va);
	struct frame f;
	EXPECT(catch_run(touch, (void *)va, &f) && f.vector == VEC_PF);
	pte_set_bits(va, PTE_P);
	EXPECT_EQ(peek(va), VAL_A);
}

TEST(global_page_pge_toggle_flushes)
{
	if (!cpu_has_pge())
		test_skip("CPUID.01H:EDX.PGE=0");
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 | CR4_PGE);
	uint64_t va = slot_va(4);
	remap_behind_tlb(va, PTE_P | PTE_W | PTE_G);
	write_cr3(read_cr3()); /* global entries may survive this: not asserted */
	uint64_t after_cr3 = peek(va);
	write_cr4(cr4 & ~CR4_PGE); /* clearing PGE flushes everything, global included */
	write_cr4(cr4 | CR4_PGE);
	uint64_t after_toggle = peek(va);
	write_cr4(cr4);
	EXPECT(after_cr3 == VAL_A || after_cr3 == VAL_B);
	EXPECT_EQ(after_toggle, VAL_B);
}

TEST(invlpg_flushes_global_page)
{
	if (!cpu_has_pge())
		test_skip("CPUID.01H:EDX.PGE=0");
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 | CR4_PGE);
	uint64_t va = slot_va(5);
	remap_behind_tlb(va, PTE_P | PTE_W | PTE_G);
	invlpg(va); /* INVLPG invalidates global translations too (SDM 2A INVLPG) */
	uint64_t seen = peek(va);
	write_cr4(cr4);
	EXPECT_EQ(seen, VAL_B);
}

TEST(invlpg_any_address_in_large_page)
{
	/* INVLPG of any address inside a 2 MiB page invalidates the whole page */
	uint64_t va = TEST_VA + PAGE_1G;
	uint64_t pa = (mb_free_start() + PAGE_2M - 1) & ~(PAGE_2M - 1);
	*(volatile uint64_t *)(pa + 0x1000) = VAL_A;
	*(volatile uint64_t *)(pa + PAGE_2M + 0x1000) = VAL_B;
	map_page(paging_root(), va, pa, PTE_P | PTE_W, 2);
	invlpg(va);
	(void)peek(va + 0x1000);
	map_page(paging_root(), va, pa + PAGE_2M, PTE_P | PTE_W, 2);
	invlpg(va + 0x1FF000);
	EXPECT_EQ(peek(va + 0x1000), VAL_B);
}

TEST(cr3_reload_flushes_paging_structure_caches)
{
	/* repoint a PDE at a different page table: stale PDE caches must be gone after CR3 */
	uint64_t va = TEST_VA + PAGE_1G + 8 * PAGE_2M;
	map_4k(va, page_with(VAL_A), PTE_P | PTE_W);
	invlpg(va);
	(void)peek(va);
	uint64_t *pt = page_alloc();
	pt[0] = page_with(VAL_B) | PTE_P | PTE_W;
	*pte_at(paging_root(), va, 2, false) = (uint64_t)pt | PTE_P | PTE_W | PTE_U;
	write_cr3(read_cr3());
	EXPECT_EQ(peek(va), VAL_B);
}

TEST(pcid_cr3_write_flushes_that_pcid)
{
	if (!cpu_has_pcid())
		test_skip("CPUID.01H:ECX.PCID=0");
	uint64_t va = slot_va(6);
	uint64_t *root = paging_new_root();
	uint64_t cr3 = read_cr3(), cr4 = read_cr4();
	write_cr4(cr4 | CR4_PCIDE);
	write_cr3((uint64_t)root | 5);
	map_page(root, va, page_with(VAL_A), PTE_P | PTE_W, 1);
	invlpg(va);
	(void)peek(va);
	map_page(root, va, page_with(VAL_B), PTE_P | PTE_W, 1);
	write_cr3((uint64_t)root | 5 | (1ull << 63)); /* no flush: A or B */
	uint64_t no_flush = peek(va);
	write_cr3((uint64_t)root | 5); /* bit 63 clear: flushes PCID 5 */
	uint64_t flushed = peek(va);
	write_cr3(cr3);
	write_cr4(cr4);
	EXPECT(no_flush == VAL_A || no_flush == VAL_B);
	EXPECT_EQ(flushed, VAL_B);
}

/* INVPCID (SDM 2A): type 0 one address in one PCID, 1 one PCID, 2 all incl. global,
 * 3 all except global. With CR4.PCIDE=0 the current PCID is 0. */
struct PACKED invpcid_desc {
	uint64_t pcid;
	uint64_t addr;
};

static void invpcid(uint64_t type, uint64_t pcid, uint64_t addr)
{
	struct invpcid_desc d = { pcid, addr };
	asm volatile("invpcid %0, %1" : : "m"(d), "r"(type) : "memory");
}

TEST(invpcid_types)
{
	if (!cpu_has_invpcid())
		test_skip("CPUID.(EAX=7,ECX=0):EBX.INVPCID=0");
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 | (cpu_has_pge() ? CR4_PGE : 0));
	uint64_t va0 = slot_va(7), va1 = slot_va(8), va2 = slot_va(9), va3 = slot_va(10);
	uint64_t g = cpu_has_pge() ? PTE_G : 0;

	remap_behind_tlb(va0, PTE_P | PTE_W);
	invpcid(0, 0, va0);
	EXPECT_EQ(peek(va0), VAL_B);

	remap_behind_tlb(va1, PTE_P | PTE_W);
	invpcid(1, 0, 0);
	EXPECT_EQ(peek(va1), VAL_B);

	remap_behind_tlb(va2, PTE_P | PTE_W | g);
	invpcid(2, 0, 0);
	EXPECT_EQ(peek(va2), VAL_B);

	remap_behind_tlb(va3, PTE_P | PTE_W);
	invpcid(3, 0, 0);
	EXPECT_EQ(peek(va3), VAL_B);
	write_cr4(cr4);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	RUN(stale_translation_allowed_invlpg_required);
	RUN(mov_cr3_flushes_non_global);
	RUN(not_present_to_present_needs_no_flush);
	RUN(global_page_pge_toggle_flushes);
	RUN(invlpg_flushes_global_page);
	RUN(invlpg_any_address_in_large_page);
	RUN(cr3_reload_flushes_paging_structure_caches);
	RUN(pcid_cr3_write_flushes_that_pcid);
	RUN(invpcid_types);
	test_finish();
}
