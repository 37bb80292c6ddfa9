/* The 32-bit stage of cpu-modes.elf: runs from boot32_hook in lib/boot.S, in protected mode
 * with paging off, before the runtime or long mode exist. Compiled with -m32 and assembled as
 * .code32 into the 64-bit link (see Makefile). It may call nothing outside this file. Results
 * go to pm32_results for kmain() to report once the serial port and printf are available.
 *
 * Paging structures are identity maps plus one alias at 0xC0000000 of the frame that holds
 * `probe`, so a write through the alias is visible through the identity address (SDM 3A §4.3
 * for 32-bit paging, §4.4 for PAE). */
#include "pm32.h"

#define CR0_PG 0x80000000u
#define CR4_PSE 0x00000010u
#define CR4_PAE 0x00000020u
#define P 0x001u
#define W 0x002u
#define A 0x020u
#define D 0x040u
#define PS 0x080u
#define ALIAS 0xC0000000u

struct pm32_result pm32_results[PM32_COUNT];

/* volatile: the CPU writes A/D bits into these behind the compiler's back */
static volatile uint32_t pd32[1024] __attribute__((aligned(4096)));
static volatile uint32_t pt32[1024] __attribute__((aligned(4096)));
static volatile uint64_t pae_pdpt[4] __attribute__((aligned(32)));
static volatile uint64_t pae_pd[4][512] __attribute__((aligned(4096)));
static volatile uint32_t probe[1024] __attribute__((aligned(4096)));

static uint32_t rd_cr0(void) { uint32_t v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static uint32_t rd_cr4(void) { uint32_t v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static void wr_cr0(uint32_t v) { asm volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static void wr_cr3(uint32_t v) { asm volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static void wr_cr4(uint32_t v) { asm volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

static void cpuid32(uint32_t leaf, uint32_t *a, uint32_t *d)
{
	uint32_t b, c;
	asm volatile("cpuid" : "=a"(*a), "=b"(b), "=c"(c), "=d"(*d) : "a"(leaf), "c"(0));
}

static uint64_t rd_efer(void)
{
	uint32_t lo, hi;
	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0xC0000080u));
	return ((uint64_t)hi << 32) | lo;
}

static void record(int i, int ok, uint32_t got, uint32_t want)
{
	pm32_results[i].ok = (uint32_t)ok;
	pm32_results[i].got = got;
	pm32_results[i].want = want;
}

static void check(int i, uint32_t got, uint32_t want) { record(i, got == want, got, want); }

static volatile uint32_t *alias_of(volatile uint32_t *p, uint32_t frame_mask, uint32_t alias_base)
{
	return (volatile uint32_t *)(alias_base + ((uint32_t)p & frame_mask));
}

static void paging_off(void) { wr_cr0(rd_cr0() & ~CR0_PG); }

static void test_paging_off(void)
{
	uint32_t cr0 = rd_cr0();
	uint32_t ext_max, edx;
	cpuid32(0x80000000u, &ext_max, &edx);
	uint32_t lma = ext_max >= 0x80000001u ? (uint32_t)(rd_efer() >> 10) & 1 : 0;
	probe[3] = 0x12345678;
	uint32_t via_phys = *(volatile uint32_t *)((uint32_t)&probe[3]);
	/* bits: PE, !PG, !LMA, memory works */
	uint32_t got = (cr0 & 1) | ((cr0 & CR0_PG) ? 0 : 2) | (lma ? 0 : 4) | (via_phys == 0x12345678 ? 8 : 0);
	check(PM32_PAGING_OFF, got, 0xF);

	uint32_t x = 5;
	asm volatile(".byte 0x40" : "+a"(x)); /* INC EAX in 32-bit code */
	check(PM32_DECODE_32BIT, x, 6);
}

static void test_pse_4m(void)
{
	uint32_t max, edx;
	cpuid32(1, &max, &edx);
	if (!((edx >> 3) & 1)) { /* CPUID.01H:EDX.PSE */
		record(PM32_PSE_4M_ALIAS, 2, 0, 0);
		record(PM32_PSE_4M_AD, 2, 0, 0);
		return;
	}
	for (uint32_t i = 0; i < 1024; i++)
		pd32[i] = (i << 22) | P | W | PS | A | D;
	uint32_t frame = (uint32_t)probe & 0xFFC00000u;
	pd32[ALIAS >> 22] = frame | P | W | PS; /* A and D clear: the CPU must set them */
	wr_cr4(rd_cr4() | CR4_PSE);
	wr_cr3((uint32_t)pd32);
	wr_cr0(rd_cr0() | CR0_PG);

	volatile uint32_t *alias = alias_of(&probe[5], 0x003FFFFFu, ALIAS);
	probe[5] = 0xA1A1A1A1;
	uint32_t r1 = *alias;
	uint32_t pde_after_read = pd32[ALIAS >> 22];
	*alias = 0xB2B2B2B2;
	uint32_t r2 = probe[5];
	uint32_t pde_after_write = pd32[ALIAS >> 22];

	paging_off();
	wr_cr4(rd_cr4() & ~CR4_PSE);
	check(PM32_PSE_4M_ALIAS, (r1 == 0xA1A1A1A1) | (r2 == 0xB2B2B2B2) << 1, 3);
	check(PM32_PSE_4M_AD, (pde_after_read & (A | D)) | (pde_after_write & (A | D)) << 8, A | (A | D) << 8);
}

static void test_pt_4k(void)
{
	/* identity map with 4 MiB pages as before; the alias goes through one 4 KiB page table */
	uint32_t max, edx;
	cpuid32(1, &max, &edx);
	if (!((edx >> 3) & 1)) {
		record(PM32_PT_4K_ALIAS, 2, 0, 0);
		record(PM32_PT_4K_AD, 2, 0, 0);
		return;
	}
	for (uint32_t i = 0; i < 1024; i++)
		pd32[i] = (i << 22) | P | W | PS | A | D;
	pd32[ALIAS >> 22] = (uint32_t)pt32 | P | W; /* non-leaf, A clear */
	pt32[7] = ((uint32_t)probe & 0xFFFFF000u) | P | W;
	wr_cr4(rd_cr4() | CR4_PSE);
	wr_cr3((uint32_t)pd32);
	wr_cr0(rd_cr0() | CR0_PG);

	volatile uint32_t *alias = (volatile uint32_t *)(ALIAS + 7 * 4096 + 0x10);
	probe[4] = 0xC3C3C3C3;
	uint32_t r1 = *alias;
	uint32_t pte_after_read = pt32[7];
	*alias = 0xD4D4D4D4;
	uint32_t r2 = probe[4];
	uint32_t pte_after_write = pt32[7];
	uint32_t pde = pd32[ALIAS >> 22];

	paging_off();
	wr_cr4(rd_cr4() & ~CR4_PSE);
	check(PM32_PT_4K_ALIAS, (r1 == 0xC3C3C3C3) | (r2 == 0xD4D4D4D4) << 1, 3);
	check(PM32_PT_4K_AD, (pte_after_read & (A | D)) | (pte_after_write & (A | D)) << 8 | (pde & A) << 16,
	      A | (A | D) << 8 | A << 16);
}

static void test_pae(void)
{
	uint32_t max, edx;
	cpuid32(1, &max, &edx);
	if (!((edx >> 6) & 1)) { /* CPUID.01H:EDX.PAE */
		record(PM32_PAE_2M_ALIAS, 2, 0, 0);
		record(PM32_PAE_2M_AD, 2, 0, 0);
		return;
	}
	for (uint32_t i = 0; i < 4; i++) {
		/* PAE PDPTEs have only P, PWT, PCD: R/W and U/S are reserved (SDM 3A §4.4.1) */
		pae_pdpt[i] = (uint32_t)pae_pd[i] | P;
		for (uint32_t j = 0; j < 512; j++)
			pae_pd[i][j] = ((uint64_t)(i * 512 + j) << 21) | P | W | PS | A | D;
	}
	uint32_t frame = (uint32_t)probe & 0xFFE00000u;
	pae_pd[3][0] = frame | P | W | PS; /* 0xC0000000 */
	wr_cr4(rd_cr4() | CR4_PAE);
	wr_cr3((uint32_t)pae_pdpt); /* loads the four PDPTEs (SDM 3A §4.4.1) */
	wr_cr0(rd_cr0() | CR0_PG);

	volatile uint32_t *alias = alias_of(&probe[9], 0x001FFFFFu, ALIAS);
	probe[9] = 0xE5E5E5E5;
	uint32_t r1 = *alias;
	uint32_t pde_after_read = (uint32_t)pae_pd[3][0];
	*alias = 0xF6F6F6F6;
	uint32_t r2 = probe[9];
	uint32_t pde_after_write = (uint32_t)pae_pd[3][0];

	paging_off();
	wr_cr4(rd_cr4() & ~CR4_PAE);
	check(PM32_PAE_2M_ALIAS, (r1 == 0xE5E5E5E5) | (r2 == 0xF6F6F6F6) << 1, 3);
	check(PM32_PAE_2M_AD, (pde_after_read & (A | D)) | (pde_after_write & (A | D)) << 8, A | (A | D) << 8);
}

void boot32_hook(uint32_t magic, uint32_t mbi);
void boot32_hook(uint32_t magic, uint32_t mbi)
{
	(void)magic;
	(void)mbi;
	check(PM32_RAN, 1, 1);
	test_paging_off();
	test_pse_4m();
	test_pt_4k();
	test_pae();
	/* paging is off again and CR4 is back to its entry value; boot.S now enters long mode */
	probe[0] = 0x600D;
	check(PM32_PAGING_OFF_AGAIN, ((rd_cr0() & CR0_PG) ? 0 : 1) | (probe[0] == 0x600D) << 1, 3);
}
