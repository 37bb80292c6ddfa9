/**
 * What a multiboot kernel asks to be loaded: byte ranges at physical addresses,
 * plus the entry point. Two sources: the ELF program headers (p_paddr, as QEMU
 * and GRUB use), or the a.out kludge of the multiboot header.
 */
import { UserError } from '../../common/index.js';
import { EM_X86_64, isElf, parseElf } from './elf.js';
import type { AoutKludge, MultibootHeader } from './multiboot-header.js';

export interface KernelSegment {
  paddr: number;
  /** Bytes to copy; memsz - data.length bytes of zeros follow (bss). */
  data: Uint8Array;
  memsz: number;
}

export interface KernelImage {
  segments: KernelSegment[];
  entry: number;
}

const FOUR_GIB = 2n ** 32n;
/** Beyond this no RAM exists, and numbers stay exact. */
const ADDRESS_LIMIT = 2n ** 52n;
const hexb = (v: bigint | number): string => '0x' + v.toString(16);

export function kernelFromImage(image: Uint8Array, header: MultibootHeader): KernelImage {
  if (header.aout) return kernelFromAout(image, header.offset, header.aout);
  if (!isElf(image))
    throw new UserError('multiboot image is not ELF and its header has no load addresses (flag bit 16)');
  return kernelFromElf(image);
}

function kernelFromElf(image: Uint8Array): KernelImage {
  const elf = parseElf(image);
  const segments: KernelSegment[] = [];
  for (const [i, s] of elf.segments.entries()) {
    if (s.memsz === 0n) continue;
    if (s.paddr + s.memsz > ADDRESS_LIMIT)
      throw new UserError(`ELF segment ${i} at ${hexb(s.paddr)} (size ${hexb(s.memsz)}) lies outside RAM`);
    segments.push({
      paddr: Number(s.paddr),
      data: image.subarray(s.offset, s.offset + s.filesz),
      memsz: Number(s.memsz),
    });
  }
  if (segments.length === 0) throw new UserError('ELF file has no loadable segments');
  // GRUB 2 translates a virtual entry point through the segment that holds it, so
  // kernels linked at a higher-half address but loaded low still boot.
  let entry = elf.entry;
  for (const s of elf.segments)
    if (s.vaddr !== s.paddr && entry >= s.vaddr && entry < s.vaddr + s.memsz) {
      entry = entry - s.vaddr + s.paddr;
      break;
    }
  if (entry >= FOUR_GIB) {
    const what = elf.machine === EM_X86_64 ? 'ELF64 entry point' : 'entry point';
    throw new UserError(`${what} ${hexb(elf.entry)} is above 4 GiB (multiboot enters in 32-bit mode)`);
  }
  return { segments, entry: Number(entry) };
}

function kernelFromAout(image: Uint8Array, headerOffset: number, k: AoutKludge): KernelImage {
  if (k.headerAddr < k.loadAddr)
    throw new UserError(`multiboot header_addr ${hexb(k.headerAddr)} is below load_addr ${hexb(k.loadAddr)}`);
  const fileStart = headerOffset - (k.headerAddr - k.loadAddr);
  if (fileStart < 0)
    throw new UserError(
      `multiboot load_addr ${hexb(k.loadAddr)} would start before the beginning of the file`,
    );
  const fileEnd = k.loadEndAddr === 0 ? image.length : fileStart + (k.loadEndAddr - k.loadAddr);
  if (k.loadEndAddr !== 0 && k.loadEndAddr < k.headerAddr)
    throw new UserError(`multiboot load_end_addr ${hexb(k.loadEndAddr)} is below header_addr`);
  if (fileEnd > image.length)
    throw new UserError(`multiboot load_end_addr ${hexb(k.loadEndAddr)} lies beyond the end of the file`);
  const loadSize = fileEnd - fileStart;
  if (k.bssEndAddr !== 0 && k.bssEndAddr < k.loadAddr + loadSize)
    throw new UserError(`multiboot bss_end_addr ${hexb(k.bssEndAddr)} is below the end of the loaded image`);
  const memsz = k.bssEndAddr === 0 ? loadSize : k.bssEndAddr - k.loadAddr;
  return {
    segments: memsz > 0 ? [{ paddr: k.loadAddr, data: image.subarray(fileStart, fileEnd), memsz }] : [],
    entry: k.entryAddr,
  };
}
