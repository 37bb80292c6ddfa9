/* Selectors and descriptors of the boot GDT (lib/boot.S). Usable from asm and C.
 * Descriptors have the accessed bit preset so the CPU never needs to write to them. */
#ifndef BOOT_GDT_H
#define BOOT_GDT_H

#define BOOT_CS32 0x08
#define BOOT_DS 0x10
#define BOOT_CS64 0x18

/* flat, 4 GiB, G=1; code: type 0xB (exec/read/accessed), data: type 0x3 (read/write/accessed) */
#define BOOT_GDT_CODE32 0x00CF9B000000FFFF
#define BOOT_GDT_DATA 0x00CF93000000FFFF
#define BOOT_GDT_CODE64 0x00AF9B000000FFFF /* L=1, D=0 (SDM 3A §5.2.1) */

#endif
