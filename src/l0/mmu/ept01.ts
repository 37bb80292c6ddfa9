/**
 * ept01: L1 guest-physical → host-physical (SDM 3C §29.3 formats). Guest RAM is one
 * contiguous host range mapped with 2 MiB pages, write-back, RWX; nothing else is
 * mapped, so MMIO and stray accesses exit as EPT violations.
 */
import type { PhysMem } from '../hw.js';

/** Host-physical layout of L0's own structures (below the guest RAM). */
export const EPT_ROOT = 0x20000;
const EPT_PDPT = 0x21000;
const EPT_PD = 0x22000; // up to four page directories: 4 GiB

/** Build ept01 mapping GPA [0, bytes) to HPA [base, base + bytes); bytes is a multiple of 2 MiB. */
export function buildEpt01(mem: PhysMem, base: number, bytes: number): void {
  for (let a = EPT_ROOT; a < EPT_PD + 4 * 4096; a += 4) mem.write32(a, 0);
  mem.write64(EPT_ROOT, EPT_PDPT | 7);
  const pages = bytes / 0x200000;
  for (let k = 0; k < pages; k++) {
    const pd = EPT_PD + 4096 * Math.floor(k / 512);
    if (k % 512 === 0) mem.write64(EPT_PDPT + 8 * Math.floor(k / 512), pd | 7);
    // RWX, memory type WB (6), 2 MiB page.
    mem.write64(pd + 8 * (k % 512), base + k * 0x200000 + (7 | (6 << 3) | 0x80));
  }
}
