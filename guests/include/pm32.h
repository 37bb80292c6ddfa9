/* Results of the 32-bit protected-mode stage of cpu-modes.elf, shared between the 32-bit code
 * that fills them (kernels/cpu-modes-pm32.m32.c, runs before long mode) and the 64-bit code that
 * reports them. Fixed-width fields only: pointers differ in size between the two sides. */
#ifndef PM32_H
#define PM32_H

#include <stdint.h>

enum {
	PM32_RAN, /* the stage ran at all, from the boot32_hook */
	PM32_PAGING_OFF, /* CR0.PE=1, CR0.PG=0, EFER.LMA=0, linear == physical */
	PM32_DECODE_32BIT, /* 0x40 is INC EAX (a REX prefix in 64-bit mode) */
	PM32_PSE_4M_ALIAS, /* 32-bit paging, CR4.PSE: a 4 MiB page aliases RAM */
	PM32_PSE_4M_AD, /* A and D set in the 4 MiB PDE */
	PM32_PT_4K_ALIAS, /* 32-bit paging with a page table: 4 KiB alias */
	PM32_PT_4K_AD, /* A and D in the PTE, A in the PDE */
	PM32_PAE_2M_ALIAS, /* PAE paging: a 2 MiB page aliases RAM */
	PM32_PAE_2M_AD, /* A and D in the PAE PDE */
	PM32_PAGING_OFF_AGAIN, /* paging can be turned off again (CR0.PG=0) */
	PM32_COUNT
};

struct pm32_result {
	uint32_t ok; /* 1 pass, 0 fail, 2 skipped (feature absent) */
	uint32_t got;
	uint32_t want;
	uint32_t pad;
};

extern struct pm32_result pm32_results[PM32_COUNT];

#endif
