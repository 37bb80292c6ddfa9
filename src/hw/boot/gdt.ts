/**
 * The flat GDT a multiboot loader leaves behind. Multiboot (§3.2) only requires
 * CS to be a 32-bit read/execute segment and DS/ES/FS/GS/SS read/write segments,
 * all with base 0 and limit 4 GiB; the selector values are the loader's choice.
 * We use QEMU's (pc-bios/optionrom/multiboot.S): code 0x08, data 0x10. The
 * descriptors have their accessed bit set, as the CPU would have set it when the
 * loader loaded them (SDM 3A §3.4.5.1).
 */
export const GDT_CODE_SELECTOR = 0x08;
export const GDT_DATA_SELECTOR = 0x10;
export const GDT_BYTES = 24;

// prettier-ignore
export const FLAT_GDT = new Uint8Array([
  0, 0, 0, 0, 0, 0, 0, 0, // null descriptor
  0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0, // 0x08: base 0, limit 0xfffff pages, code exec/read accessed, D=1 G=1
  0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0, // 0x10: base 0, limit 0xfffff pages, data read/write accessed, B=1 G=1
]);
