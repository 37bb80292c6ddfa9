/**
 * ept01: L1 guest-physical → host-physical (SDM 3C §29.3 formats). A VM's RAM is one
 * contiguous host range mapped with 2 MiB pages, write-back, RWX; nothing else is
 * mapped, so MMIO and stray accesses exit as EPT violations.
 */
import type { HostPages } from '../alloc.js';

/** Build ept01 mapping GPA [0, bytes) to HPA [base, base + bytes); returns the PML4 address. */
export function buildEpt01(pages: HostPages, base: number, bytes: number): number {
  const mem = pages.mem;
  const root = pages.alloc();
  const pdpt = pages.alloc();
  mem.write64(root, pdpt | 7);
  const count = bytes / 0x200000;
  let pd = 0;
  for (let k = 0; k < count; k++) {
    if (k % 512 === 0) {
      pd = pages.alloc();
      mem.write64(pdpt + 8 * Math.floor(k / 512), pd | 7);
    }
    // RWX, memory type WB (6), 2 MiB page.
    mem.write64(pd + 8 * (k % 512), base + k * 0x200000 + (7 | (6 << 3) | 0x80));
  }
  return root;
}

/** The EPTP of an ept01: 4-level walk (3 in bits 5:3), write-back (6). */
export function eptp(root: number): number {
  return root | 6 | (3 << 3);
}
