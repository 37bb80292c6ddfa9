/**
 * Multiboot v1 loader (Multiboot Specification 0.6.96), behaving like QEMU's
 * `-kernel` for multiboot images: the kernel is loaded by physical address, its
 * modules are placed page-aligned after it, and the machine state of §3.2 is
 * described by the returned `MultibootEntry` (EAX magic, EBX info address, a flat
 * GDT for CS/DS/ES/FS/GS/SS).
 *
 * The loader's own structures (GDT, info block, memory map, module table,
 * strings) go in low memory from LOADER_AREA_START (64 KiB) and must end below
 * LOADER_AREA_LIMIT (512 KiB): never in page 0, clear of the BIOS data area and
 * of the usual kernel load address (1 MiB). A kernel segment overlapping the part
 * actually used, the EBDA/VGA/BIOS area or anything that is not RAM is refused.
 *
 * Errors are UserErrors whose message starts with the image name.
 */
import { UserError } from '../../common/index.js';
import { HIGH_RAM_BASE, PAGE, type PhysMem } from '../mmu/physmem.js';
import { FLAT_GDT, GDT_BYTES, GDT_CODE_SELECTOR, GDT_DATA_SELECTOR } from './gdt.js';
import { type KernelSegment, kernelFromImage } from './kernel-image.js';
import { BASE_MEMORY_END, HIGH_MEMORY_START, pcMemoryMap } from './memory-map.js';
import { findMultibootHeader } from './multiboot-header.js';

export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
export const LOADER_AREA_START = 0x10000;
export const LOADER_AREA_LIMIT = 0x80000;
export const BOOT_LOADER_NAME = 'turtles';

// Info block flags (§3.3).
export const MBI_FLAG_MEM = 1 << 0;
export const MBI_FLAG_CMDLINE = 1 << 2;
export const MBI_FLAG_MODS = 1 << 3;
export const MBI_FLAG_MMAP = 1 << 6;
export const MBI_FLAG_LOADER_NAME = 1 << 9;

// Info block field offsets (§3.3).
const MBI_FLAGS = 0;
const MBI_MEM_LOWER = 4;
const MBI_MEM_UPPER = 8;
const MBI_CMDLINE = 16;
const MBI_MODS_COUNT = 20;
const MBI_MODS_ADDR = 24;
const MBI_MMAP_LENGTH = 44;
const MBI_MMAP_ADDR = 48;
const MBI_BOOT_LOADER_NAME = 64;
/** The info block up to and including the framebuffer fields is 116 bytes. */
const MBI_SIZE = 128;
/** A memory map entry: u32 size (20, not counting itself), u64 base, u64 length, u32 type. */
const MMAP_ENTRY_SIZE = 24;
const MODULE_ENTRY_SIZE = 16;

export interface MultibootModule {
  name: string;
  data: Uint8Array;
  args: string;
}

export interface MultibootOptions {
  imageName: string;
  args: string;
  modules: MultibootModule[];
}

export interface MultibootEntry {
  /** EIP, in 32-bit protected mode with paging off. */
  entry: number;
  eax: number;
  ebx: number;
  gdtBase: number;
  gdtLimit: number;
  codeSelector: number;
  dataSelector: number;
}

const hex = (v: number): string => '0x' + v.toString(16);
const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;

/** Is [base, base+len) all RAM, in one of the two RAM regions (the PCI hole splits them)? */
function inRam(mem: PhysMem, base: number, len: number): boolean {
  const end = base + len;
  return end <= mem.lowEnd || (base >= HIGH_RAM_BASE && end <= mem.highEnd);
}

function overlaps(a: number, aEnd: number, b: number, bEnd: number): boolean {
  return a < bEnd && b < aEnd;
}

/** Bump allocator over a scratch copy of the loader area, written to RAM at the end. */
class LoaderArea {
  readonly bytes = new Uint8Array(LOADER_AREA_LIMIT - LOADER_AREA_START);
  readonly dv = new DataView(this.bytes.buffer);
  private next = 0;

  alloc(size: number, align: number): number {
    const at = alignUp(this.next, align);
    if (at + size > this.bytes.length)
      throw new UserError(
        `command line, module strings and boot structures need more than ${hex(this.bytes.length)} bytes`,
      );
    this.next = at + size;
    return LOADER_AREA_START + at;
  }

  /** Address of a NUL-terminated copy of `s` (UTF-8). */
  string(s: string): number {
    const enc = new TextEncoder().encode(s);
    const at = this.alloc(enc.length + 1, 1);
    this.bytes.set(enc, at - LOADER_AREA_START);
    return at;
  }

  set32(addr: number, v: number): void {
    this.dv.setUint32(addr - LOADER_AREA_START, v >>> 0, true);
  }

  set64(addr: number, v: number): void {
    this.set32(addr, v % 2 ** 32);
    this.set32(addr + 4, Math.floor(v / 2 ** 32));
  }

  get end(): number {
    return LOADER_AREA_START + this.next;
  }
}

function checkSegments(mem: PhysMem, segments: KernelSegment[], loaderEnd: number): void {
  const sorted = [...segments].sort((a, b) => a.paddr - b.paddr);
  for (const [i, s] of sorted.entries()) {
    const end = s.paddr + s.memsz;
    const range = `${hex(s.paddr)}-${hex(end)}`;
    if (!inRam(mem, s.paddr, s.memsz))
      throw new UserError(
        `kernel segment ${range} lies outside RAM (${mem.ramBytes / 1048576} MiB; try a larger --mem)`,
      );
    if (overlaps(s.paddr, end, BASE_MEMORY_END, HIGH_MEMORY_START))
      throw new UserError(
        `kernel segment ${range} overlaps the reserved area ${hex(BASE_MEMORY_END)}-0x100000`,
      );
    if (overlaps(s.paddr, end, LOADER_AREA_START, loaderEnd))
      throw new UserError(
        `kernel segment ${range} overlaps the boot loader's structures at ${hex(LOADER_AREA_START)}-${hex(loaderEnd)}`,
      );
    const next = sorted[i + 1];
    if (next && next.paddr < end)
      throw new UserError(
        `kernel segments ${range} and ${hex(next.paddr)}-${hex(next.paddr + next.memsz)} overlap`,
      );
  }
}

function zeroRam(mem: PhysMem, pa: number, len: number): void {
  for (let done = 0; done < len;) {
    const o = mem.ramOffset(pa + done);
    const n = Math.min(len - done, PAGE - ((pa + done) % PAGE));
    mem.u8.fill(0, o, o + n);
    mem.noteWrite(o);
    done += n;
  }
}

export function loadMultiboot(mem: PhysMem, image: Uint8Array, opts: MultibootOptions): MultibootEntry {
  try {
    return load(mem, image, opts);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`${opts.imageName}: ${e.message}`);
    throw e;
  }
}

function load(mem: PhysMem, image: Uint8Array, opts: MultibootOptions): MultibootEntry {
  const header = findMultibootHeader(image);
  const kernel = kernelFromImage(image, header);

  // Lay out the loader's structures first: their extent is what kernels must avoid.
  const area = new LoaderArea();
  const gdt = area.alloc(GDT_BYTES, 8);
  area.bytes.set(FLAT_GDT, gdt - LOADER_AREA_START);
  const info = area.alloc(MBI_SIZE, 8);
  const mmap = pcMemoryMap(mem);
  const mmapAddr = area.alloc(mmap.length * MMAP_ENTRY_SIZE, 8);
  const modsAddr = area.alloc(opts.modules.length * MODULE_ENTRY_SIZE, 16);
  const cmdline = area.string(opts.args ? `${opts.imageName} ${opts.args}` : opts.imageName);
  const loaderName = area.string(BOOT_LOADER_NAME);
  const moduleStrings = opts.modules.map((m) => area.string(m.args ? `${m.name} ${m.args}` : m.name));

  checkSegments(mem, kernel.segments, area.end);

  // Modules go page-aligned after the highest kernel byte below 4 GiB (never below 1 MiB).
  let next = HIGH_MEMORY_START;
  for (const s of kernel.segments) if (s.paddr < HIGH_RAM_BASE) next = Math.max(next, s.paddr + s.memsz);
  const modStarts: number[] = [];
  for (const m of opts.modules) {
    const start = alignUp(next, PAGE);
    if (start + m.data.length > mem.lowEnd)
      throw new UserError(
        `module ${m.name} (${m.data.length} bytes at ${hex(start)}) does not fit below ${hex(mem.lowEnd)}; try a larger --mem`,
      );
    modStarts.push(start);
    next = start + m.data.length;
  }

  // Info block (§3.3). mem_lower is 639 KiB, consistent with the map's first entry.
  area.set32(
    info + MBI_FLAGS,
    MBI_FLAG_MEM | MBI_FLAG_CMDLINE | MBI_FLAG_MODS | MBI_FLAG_MMAP | MBI_FLAG_LOADER_NAME,
  );
  area.set32(info + MBI_MEM_LOWER, BASE_MEMORY_END / 1024);
  area.set32(info + MBI_MEM_UPPER, Math.floor((mem.lowEnd - HIGH_MEMORY_START) / 1024));
  area.set32(info + MBI_CMDLINE, cmdline);
  area.set32(info + MBI_MODS_COUNT, opts.modules.length);
  area.set32(info + MBI_MODS_ADDR, modsAddr);
  area.set32(info + MBI_MMAP_LENGTH, mmap.length * MMAP_ENTRY_SIZE);
  area.set32(info + MBI_MMAP_ADDR, mmapAddr);
  area.set32(info + MBI_BOOT_LOADER_NAME, loaderName);
  mmap.forEach((r, i) => {
    const at = mmapAddr + i * MMAP_ENTRY_SIZE;
    area.set32(at, MMAP_ENTRY_SIZE - 4);
    area.set64(at + 4, r.base);
    area.set64(at + 12, r.length);
    area.set32(at + 20, r.type);
  });
  opts.modules.forEach((m, i) => {
    const at = modsAddr + i * MODULE_ENTRY_SIZE;
    area.set32(at, modStarts[i]);
    area.set32(at + 4, modStarts[i] + m.data.length);
    area.set32(at + 8, moduleStrings[i]);
  });

  mem.writeBytes(LOADER_AREA_START, area.bytes.subarray(0, area.end - LOADER_AREA_START));
  for (const s of kernel.segments) {
    mem.writeBytes(s.paddr, s.data);
    zeroRam(mem, s.paddr + s.data.length, s.memsz - s.data.length);
  }
  opts.modules.forEach((m, i) => mem.writeBytes(modStarts[i], m.data));

  return {
    entry: kernel.entry,
    eax: MULTIBOOT_BOOTLOADER_MAGIC,
    ebx: info,
    gdtBase: gdt,
    gdtLimit: GDT_BYTES - 1,
    codeSelector: GDT_CODE_SELECTOR,
    dataSelector: GDT_DATA_SELECTOR,
  };
}
