/**
 * The PC physical memory map the machine reports to a booting kernel (the
 * BIOS E820 map of QEMU's `pc`, reduced to what this machine has): base memory
 * up to 639 KiB, the EBDA and the BIOS area reserved, conventional RAM from
 * 1 MiB to the PCI hole, and RAM remapped above 4 GiB (physmem.ts).
 */
import { HIGH_RAM_BASE, type PhysMem } from '../mmu/physmem.js';

export const E820_RAM = 1;
export const E820_RESERVED = 2;

/** End of base memory: 639 KiB, the top KiB being the EBDA (as SeaBIOS leaves it). */
export const BASE_MEMORY_END = 0x9fc00;
export const VGA_START = 0xa0000;
export const BIOS_START = 0xf0000;
export const HIGH_MEMORY_START = 0x100000;

export interface MemoryRange {
  base: number;
  length: number;
  type: number;
}

export function pcMemoryMap(mem: PhysMem): MemoryRange[] {
  const map: MemoryRange[] = [
    { base: 0, length: BASE_MEMORY_END, type: E820_RAM },
    { base: BASE_MEMORY_END, length: VGA_START - BASE_MEMORY_END, type: E820_RESERVED },
    { base: BIOS_START, length: HIGH_MEMORY_START - BIOS_START, type: E820_RESERVED },
    { base: HIGH_MEMORY_START, length: mem.lowEnd - HIGH_MEMORY_START, type: E820_RAM },
  ];
  if (mem.highEnd > HIGH_RAM_BASE)
    map.push({ base: HIGH_RAM_BASE, length: mem.highEnd - HIGH_RAM_BASE, type: E820_RAM });
  return map;
}
