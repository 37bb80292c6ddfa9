/* The runtime GDT and the 64-bit TSS.
 *
 * Layout is dictated by SYSCALL/SYSRET and SYSENTER/SYSEXIT, which derive selectors from one
 * MSR value by fixed offsets (SDM 2B SYSRET, SYSEXIT):
 *   STAR[47:32] = KERNEL_CS        -> SYSCALL: CS = 0x08, SS = 0x10
 *   STAR[63:48] = USER_CS32        -> SYSRET: 64-bit CS = 0x18+16 = 0x28, SS = 0x18+8 = 0x20;
 *                                     32-bit CS = 0x18
 *   SYSENTER_CS = KERNEL_CS        -> SYSEXIT: 64-bit CS = 0x08+32 = 0x28, SS = 0x08+40 = 0x30;
 *                                     32-bit CS = 0x08+16 = 0x18, SS = 0x08+24 = 0x20
 */
#ifndef GDT_H
#define GDT_H

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_CS32 0x18 /* use with RPL 3: 0x1B */
#define USER_DS 0x20 /* 0x23 */
#define USER_CS64 0x28 /* 0x2B */
#define USER_DS2 0x30 /* 0x33: the SS that 64-bit SYSEXIT loads */
#define KERNEL_CS32 0x38 /* compatibility-mode code segment, DPL 0 */
#define TSS_SEL 0x40 /* 16-byte system descriptor: occupies 0x40 and 0x48 */
#define GDT_FIRST_SPARE 10 /* entries 10..15 (selectors 0x50..0x78) are free for tests */
#define GDT_ENTRIES 16

#ifndef __ASSEMBLER__
#include "types.h"

/* Segment descriptor builders (SDM 3A §3.4.5). Flat base 0, limit 4 GiB, accessed bit preset. */
#define SEG_CODE64(dpl) (0x00AF9B000000FFFFull | ((uint64_t)(dpl) << 45))
#define SEG_CODE32(dpl) (0x00CF9B000000FFFFull | ((uint64_t)(dpl) << 45))
#define SEG_DATA(dpl) (0x00CF93000000FFFFull | ((uint64_t)(dpl) << 45))
#define SEG_PRESENT (1ull << 47)

/* 64-bit TSS (SDM 3A §8.7, Figure 8-11) followed by an I/O permission bitmap for ports
 * 0..0x3FF. Ports above are beyond the TSS limit and so always denied when CPL > IOPL. */
#define TSS_IO_PORTS 0x400
struct PACKED tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t ist[8]; /* ist[1..7] = IST1..IST7; ist[0] is the reserved quadword at offset 0x1C */
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
	uint8_t iomap[TSS_IO_PORTS / 8];
	uint8_t iomap_end; /* must be 0xFF: the CPU may read one byte past the last port's byte */
};
_Static_assert(__builtin_offsetof(struct tss64, ist[1]) == 0x24, "TSS layout");
_Static_assert(__builtin_offsetof(struct tss64, iomap_base) == 0x66, "TSS layout");

void gdt_init(void);
void gdt_set(int index, uint64_t desc);
uint64_t gdt_get(int index);
struct tss64 *tss(void);

/* Stacks provided by the runtime. */
uint64_t ring0_stack_top(void); /* what TSS.RSP0 points to */
uint64_t ist_stack_top(int ist); /* IST1 serves #DF; IST2..7 are free for tests */

/* Allow (or deny) ring-3 access to a port through the TSS I/O bitmap. */
void tss_io_allow(uint16_t port, bool allow);

#endif /* __ASSEMBLER__ */
#endif
