/** Readers for the multiboot structures a loaded image finds in memory. */
import type { PhysMem } from '../../src/hw/mmu/physmem.js';

export function u32(mem: PhysMem, pa: number): number {
  return mem.read32(pa) >>> 0;
}

export function cString(mem: PhysMem, pa: number): string {
  const bytes: number[] = [];
  for (let p = pa; mem.read8(p) !== 0; p++) bytes.push(mem.read8(p));
  return new TextDecoder().decode(new Uint8Array(bytes));
}

export interface MmapEntry {
  size: number;
  base: number;
  length: number;
  type: number;
}

export function readMmap(mem: PhysMem, info: number): MmapEntry[] {
  const out: MmapEntry[] = [];
  const addr = u32(mem, info + 48);
  const end = addr + u32(mem, info + 44);
  for (let p = addr; p < end; p += u32(mem, p) + 4)
    out.push({
      size: u32(mem, p),
      base: u32(mem, p + 4) + u32(mem, p + 8) * 2 ** 32,
      length: u32(mem, p + 12) + u32(mem, p + 16) * 2 ** 32,
      type: u32(mem, p + 20),
    });
  return out;
}

export interface ModuleEntry {
  start: number;
  end: number;
  string: string;
}

export function readModules(mem: PhysMem, info: number): ModuleEntry[] {
  const out: ModuleEntry[] = [];
  const addr = u32(mem, info + 24);
  for (let i = 0; i < u32(mem, info + 20); i++) {
    const p = addr + 16 * i;
    out.push({ start: u32(mem, p), end: u32(mem, p + 4), string: cString(mem, u32(mem, p + 8)) });
  }
  return out;
}
