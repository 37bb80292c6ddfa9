/* 4-level paging: page sizes, accessed/dirty bits, CR0.WP, NX, U/S, SMEP, SMAP, global pages
 * and PCIDs (SDM 3A chapter 4). Test mappings live at TEST_VA and alias identity-mapped RAM, so
 * every translation can be checked against a direct access. */
#include "asm_snippet.h"
#include "quirks.h"
#include "rt.h"

#define PF_P 1
#define PF_W 2
#define PF_U 4
#define PF_I 16

static uint64_t scratch_2m(void) { return (mb_free_start() + PAGE_2M - 1) & ~(PAGE_2M - 1); }

static uint64_t peek(uint64_t va) { return *(volatile uint64_t *)va; }
static void poke(uint64_t va, uint64_t v) { *(volatile uint64_t *)va = v; }

SNIPPET(read_rdi, ASM_LABEL(read_rdi_site) "mov (%rdi), %rax\n ret")
SNIPPET(write_rdi, ASM_LABEL(write_rdi_site) "movq $0x77, (%rdi)\n ret")
LABEL(read_rdi_site);
LABEL(write_rdi_site);

TEST(page_4k_alias)
{
	uint64_t *phys = page_alloc();
	uint64_t va = TEST_VA + 0x5000;
	map_4k(va, (uint64_t)phys, PTE_P | PTE_W);
	invlpg(va);
	poke(va + 0x10, 0x1111222233334444ull);
	EXPECT_EQ(phys[2], 0x1111222233334444ull);
	phys[511] = 0xABCDEF;
	EXPECT_EQ(peek(va + 0xFF8), 0xABCDEF);
	int level = 0;
	EXPECT(pte_leaf(paging_root(), va, &level) && level == 1);
}

TEST(page_2m_alias)
{
	uint64_t pa = scratch_2m();
	uint64_t va = TEST_VA + PAGE_1G; /* 2 MiB-aligned */
	map_page(paging_root(), va, pa, PTE_P | PTE_W, 2);
	invlpg(va);
	poke(va + 0x1FF008, 0x2222);
	EXPECT_EQ(peek(pa + 0x1FF008), 0x2222);
	poke(pa + 0x12340, 0x3333);
	EXPECT_EQ(peek(va + 0x12340), 0x3333);
	int level = 0;
	EXPECT(pte_leaf(paging_root(), va + 0x12345, &level) && level == 2);
}

static volatile uint64_t one_gig_probe = 0x5151;

TEST(page_1g_alias)
{
	if (!cpu_has_1g_pages())
		test_skip("CPUID.80000001H:EDX.Page1GB=0");
	uint64_t va = TEST_VA + 2 * PAGE_1G;
	map_page(paging_root(), va, 0, PTE_P | PTE_W, 3); /* aliases physical 0..1 GiB */
	invlpg(va + (uint64_t)&one_gig_probe);
	EXPECT_EQ(peek(va + (uint64_t)&one_gig_probe), 0x5151);
	poke(va + (uint64_t)&one_gig_probe, 0x6161);
	EXPECT_EQ(one_gig_probe, 0x6161);
	int level = 0;
	EXPECT(pte_leaf(paging_root(), va + 0x3FFFFFFF, &level) && level == 3);
}

/* Hardware sets A on every entry used by a walk and D on the leaf when writing
 * (SDM 3A §4.8). INVLPG also drops paging-structure caches, forcing a full walk. */
TEST(accessed_dirty_4k)
{
	uint64_t va = TEST_VA + 0x8000;
	map_4k(va, (uint64_t)page_alloc(), PTE_P | PTE_W);
	pte_t *pte = pte_at(paging_root(), va, 1, false);
	pte_t *pde = pte_at(paging_root(), va, 2, false);
	pte_t *pdpte = pte_at(paging_root(), va, 3, false);
	*pde &= ~PTE_A;
	*pdpte &= ~PTE_A;
	invlpg(va);
	EXPECT_EQ(*pte & (PTE_A | PTE_D), 0);
	(void)peek(va);
	EXPECT_EQ(*pte & (PTE_A | PTE_D), PTE_A);
	EXPECT(*pde & PTE_A);
	EXPECT(*pdpte & PTE_A);
	poke(va, 1);
	EXPECT_EQ(*pte & (PTE_A | PTE_D), PTE_A | PTE_D);
	/* D is only defined for leaves; a non-leaf PDE keeps it clear */
	EXPECT_EQ(*pde & PTE_D, 0);
}

TEST(accessed_dirty_2m)
{
	uint64_t va = TEST_VA + PAGE_1G + PAGE_2M;
	map_page(paging_root(), va, scratch_2m() + PAGE_2M, PTE_P | PTE_W, 2);
	pte_t *pde = pte_at(paging_root(), va, 2, false);
	invlpg(va);
	EXPECT_EQ(*pde & (PTE_A | PTE_D), 0);
	(void)peek(va + 0x100000);
	EXPECT_EQ(*pde & (PTE_A | PTE_D), PTE_A);
	poke(va + 0x100000, 2);
	EXPECT_EQ(*pde & (PTE_A | PTE_D), PTE_A | PTE_D);
}

TEST(dirty_set_on_write_after_read)
{
	/* a read caches a translation without D; the first write must still set D */
	uint64_t va = TEST_VA + 0x9000;
	map_4k(va, (uint64_t)page_alloc(), PTE_P | PTE_W);
	invlpg(va);
	(void)peek(va);
	pte_t *pte = pte_at(paging_root(), va, 1, false);
	EXPECT_EQ(*pte & PTE_D, 0);
	poke(va + 8, 3);
	EXPECT(*pte & PTE_D);
}

TEST(wp_honoured_in_ring0)
{
	uint64_t va = TEST_VA + 0xA000;
	uint64_t *phys = page_alloc();
	map_4k(va, (uint64_t)phys, PTE_P); /* read-only */
	invlpg(va);
	uint64_t cr0 = read_cr0();
	write_cr0(cr0 | CR0_WP);
	struct frame f;
	bool faulted = catch_run(write_rdi, (void *)va, &f);
	EXPECT(faulted && f.vector == VEC_PF && f.error == (PF_P | PF_W) && f.cr2 == va);
	EXPECT_EQ(phys[0], 0);
	write_cr0(cr0 & ~CR0_WP); /* supervisor may write read-only pages when WP=0 (SDM 3A §4.6.1) */
	bool faulted2 = catch_run(write_rdi, (void *)va, &f);
	write_cr0(cr0);
	EXPECT(!faulted2);
	EXPECT_EQ(phys[0], 0x77);
}

TEST(nx_leaf_and_non_leaf)
{
	if (!cpu_has_nx())
		test_skip("CPUID.80000001H:EDX.NX=0");
	uint64_t efer = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer | EFER_NXE);
	uint64_t va = TEST_VA + PAGE_1G + 4 * PAGE_2M; /* its own page table */
	uint8_t *code = page_alloc();
	code[0] = 0xC3; /* ret */
	map_4k(va, (uint64_t)code, PTE_P | PTE_NX);
	invlpg(va);
	struct frame f;
	bool leaf_nx = catch_run((void (*)(void *))va, 0, &f);
	EXPECT(leaf_nx && f.vector == VEC_PF && f.error == (PF_P | PF_I) && f.cr2 == va && f.rip == va);

	pte_clear_bits(va, PTE_NX);
	invlpg(va);
	EXPECT(!catch_run((void (*)(void *))va, 0, 0));

	pte_t *pde = pte_at(paging_root(), va, 2, false);
	*pde |= PTE_NX; /* XD in any level applies to the whole region (SDM 3A §4.6.2) */
	invlpg(va);
	bool pde_nx = catch_run((void (*)(void *))va, 0, &f);
	*pde &= ~PTE_NX;
	invlpg(va);
	wrmsr(MSR_EFER, efer);
	EXPECT(pde_nx && f.vector == VEC_PF && f.error == (PF_P | PF_I));
	/* data reads from an NX page are fine */
	EXPECT_EQ(peek(va) & 0xFF, 0xC3);
}

uint64_t user_target USER_DATA; /* global: referenced from asm */
USER_SNIPPET(user_read_target, "mov user_target(%rip), %rax\n mov (%rax), %rax\n xor %eax, %eax\n syscall")

TEST(user_supervisor_leaf_and_non_leaf)
{
	uint64_t va = TEST_VA + PAGE_1G + 6 * PAGE_2M;
	map_4k(va, (uint64_t)page_alloc(), PTE_P | PTE_W);
	invlpg(va);
	user_target = va;
	struct frame f;
	user_run((void (*)(void))user_read_target, 0, &f);
	EXPECT(f.vector == VEC_PF && f.error == (PF_P | PF_U) && f.cr2 == va);

	pte_set_bits(va, PTE_U);
	invlpg(va);
	user_run((void (*)(void))user_read_target, 0, &f);
	EXPECT_EQ(f.vector, VEC_SYSCALL);

	pte_t *pde = pte_at(paging_root(), va, 2, false);
	*pde &= ~PTE_U; /* U/S must be 1 at every level for user access (SDM 3A §4.6.1) */
	invlpg(va);
	user_run((void (*)(void))user_read_target, 0, &f);
	*pde |= PTE_U;
	invlpg(va);
	EXPECT(f.vector == VEC_PF && f.error == (PF_P | PF_U) && f.cr2 == va);
}

TEST(smep)
{
	if (!cpu_has_smep())
		test_skip("CPUID.(EAX=7,ECX=0):EBX.SMEP=0");
	uint64_t va = TEST_VA + 0xB000;
	uint8_t *code = page_alloc();
	code[0] = 0xC3;
	map_4k(va, (uint64_t)code, PTE_P | PTE_U);
	invlpg(va);
	EXPECT(!catch_run((void (*)(void *))va, 0, 0));
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 | CR4_SMEP);
	struct frame f;
	bool faulted = catch_run((void (*)(void *))va, 0, &f);
	write_cr4(cr4);
	/* supervisor fetch from a user page: P=1, I/D=1, U/S=0 (SDM 3A §4.6.1, §4.7) */
	EXPECT(faulted && f.vector == VEC_PF && f.error == (PF_P | PF_I) && f.cr2 == va && f.rip == va);
}

TEST(smap)
{
	if (!cpu_has_smap())
		test_skip("CPUID.(EAX=7,ECX=0):EBX.SMAP=0");
	uint64_t va = TEST_VA + 0xC000;
	uint64_t *phys = page_alloc();
	phys[0] = 0x5A5A;
	map_4k(va, (uint64_t)phys, PTE_P | PTE_W | PTE_U);
	invlpg(va);
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 | CR4_SMAP);
	struct frame f;
	bool faulted_read = catch_run(read_rdi, (void *)va, &f);
	struct frame fr = f;
	bool faulted_write = catch_run(write_rdi, (void *)va, &f);
	stac(); /* EFLAGS.AC=1 allows explicit supervisor access to user pages */
	uint64_t v = peek(va);
	clac();
	write_cr4(cr4);
	EXPECT(faulted_read && fr.vector == VEC_PF && fr.error == PF_P && fr.cr2 == va);
	EXPECT(faulted_write && f.vector == VEC_PF && f.error == (PF_P | PF_W));
	EXPECT_EQ(v, 0x5A5A);
}

TEST(global_page)
{
	if (!cpu_has_pge())
		test_skip("CPUID.01H:EDX.PGE=0");
	uint64_t va = TEST_VA + 0xD000;
	uint64_t *a = page_alloc(), *b = page_alloc();
	a[0] = 0xA;
	b[0] = 0xB;
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 | CR4_PGE);
	map_4k(va, (uint64_t)a, PTE_P | PTE_W | PTE_G);
	invlpg(va);
	EXPECT_EQ(peek(va), 0xA);
	map_4k(va, (uint64_t)b, PTE_P | PTE_W | PTE_G);
	/* clearing CR4.PGE flushes global entries too (SDM 3A §4.10.4.1) */
	write_cr4(cr4 & ~CR4_PGE);
	write_cr4(cr4 | CR4_PGE);
	EXPECT_EQ(peek(va), 0xB);
	write_cr4(cr4);
}

TEST(pcid_address_spaces)
{
	if (!cpu_has_pcid())
		test_skip("CPUID.01H:ECX.PCID=0");
	uint64_t va = TEST_VA + 0xE000;
	uint64_t *a = page_alloc(), *b = page_alloc();
	a[0] = 0xAAAA;
	b[0] = 0xBBBB;
	uint64_t *root_a = paging_new_root(), *root_b = paging_new_root();
	map_page(root_a, va, (uint64_t)a, PTE_P | PTE_W, 1);
	map_page(root_b, va, (uint64_t)b, PTE_P | PTE_W, 1);
	uint64_t cr3 = read_cr3(), cr4 = read_cr4();
	write_cr4(cr4 | CR4_PCIDE);
	write_cr3((uint64_t)root_a | 1);
	uint64_t seen_cr3 = read_cr3();
	uint64_t va_a = peek(va);
	write_cr3((uint64_t)root_b | 2);
	uint64_t va_b = peek(va);
	/* bit 63: do not flush PCID 1; its cached translations still match root_a */
	write_cr3((uint64_t)root_a | 1 | (1ull << 63));
	uint64_t va_a2 = peek(va);
	uint64_t seen_cr3_nf = read_cr3();
	write_cr3(cr3);
	write_cr4(cr4);
	EXPECT_EQ(seen_cr3, (uint64_t)root_a | 1);
	EXPECT_EQ(seen_cr3_nf, (uint64_t)root_a | 1); /* bit 63 is not stored */
	EXPECT_EQ(va_a, 0xAAAA);
	EXPECT_EQ(va_b, 0xBBBB);
	EXPECT_EQ(va_a2, 0xAAAA);
}

SNIPPET(set_cr4_rdi, ASM_LABEL(set_cr4_site) "mov %rdi, %cr4\n ret")
LABEL(set_cr4_site);

TEST(pcide_needs_cr3_pcid_zero)
{
	if (!cpu_has_pcid())
		test_skip("CPUID.01H:ECX.PCID=0");
	/* MOV to CR4 setting PCIDE while CR3[11:0] != 0 is #GP(0) (SDM 2B MOV CR) */
	uint64_t cr3 = read_cr3(), cr4 = read_cr4();
	write_cr3(cr3 | PTE_PWT); /* bit 3 of CR3: a nonzero low bit that is harmless with PCIDE=0 */
	struct frame f;
	bool faulted = catch_run(set_cr4_rdi, (void *)(cr4 | CR4_PCIDE), &f);
	bool pcide = read_cr4() & CR4_PCIDE;
	write_cr4(cr4);
	write_cr3(cr3);
	EXPECT(!pcide);
	EXPECT(faulted && f.vector == VEC_GP && f.error == 0 && f.rip == (uint64_t)set_cr4_site);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	RUN(page_4k_alias);
	RUN(page_2m_alias);
	RUN(page_1g_alias);
	RUN(accessed_dirty_4k);
	RUN(accessed_dirty_2m);
	RUN(dirty_set_on_write_after_read);
	RUN(wp_honoured_in_ring0);
	RUN(nx_leaf_and_non_leaf);
	RUN(user_supervisor_leaf_and_non_leaf);
	RUN(smep);
	RUN(smap);
	RUN(global_page);
	RUN(pcid_address_spaces);
	RUN(pcide_needs_cr3_pcid_zero);
	test_finish();
}
