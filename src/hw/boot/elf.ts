/**
 * Just enough ELF (System V gABI, "ELF-64 Object File Format") to load a kernel:
 * the file header and the PT_LOAD program headers of a little-endian executable
 * for i386 (ELF32, EM_386) or x86-64 (ELF64, EM_X86_64). Every malformed input
 * becomes a one-line UserError; nothing here may throw anything else, so all
 * offsets are checked against the file before they are used.
 *
 * Addresses and sizes stay bigint: ELF64 fields are 64-bit and a higher-half
 * address (0xffffffff80100000) does not survive a double. File offsets and file
 * sizes are checked to lie in the file, so they are plain numbers.
 */
import { UserError } from '../../common/index.js';

export const EM_386 = 3;
export const EM_X86_64 = 62;
export const ET_EXEC = 2;
export const PT_LOAD = 1;

const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const PN_XNUM = 0xffff;

export interface ElfSegment {
  /** File offset and size of the bytes to copy (both within the file). */
  offset: number;
  filesz: number;
  vaddr: bigint;
  paddr: bigint;
  memsz: bigint;
  flags: number;
}

export interface ElfImage {
  bits: 32 | 64;
  machine: number;
  entry: bigint;
  /** The PT_LOAD segments, in program header order. */
  segments: ElfSegment[];
}

/** Layout of the two header classes: offsets of the fields that differ. */
interface Layout {
  ehsize: number;
  phentsize: number;
  entry: number;
  phoff: number;
  phentsizeAt: number;
  phnumAt: number;
  word: 4 | 8;
  // Program header field offsets.
  pType: number;
  pFlags: number;
  pOffset: number;
  pVaddr: number;
  pPaddr: number;
  pFilesz: number;
  pMemsz: number;
}

const ELF32: Layout = {
  ehsize: 52,
  phentsize: 32,
  entry: 24,
  phoff: 28,
  phentsizeAt: 42,
  phnumAt: 44,
  word: 4,
  pType: 0,
  pOffset: 4,
  pVaddr: 8,
  pPaddr: 12,
  pFilesz: 16,
  pMemsz: 20,
  pFlags: 24,
};

const ELF64: Layout = {
  ehsize: 64,
  phentsize: 56,
  entry: 24,
  phoff: 32,
  phentsizeAt: 54,
  phnumAt: 56,
  word: 8,
  pType: 0,
  pFlags: 4,
  pOffset: 8,
  pVaddr: 16,
  pPaddr: 24,
  pFilesz: 32,
  pMemsz: 40,
};

export function isElf(image: Uint8Array): boolean {
  return (
    image.length >= 4 && image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46
  );
}

const hexb = (v: bigint | number): string => '0x' + v.toString(16);

export function parseElf(image: Uint8Array): ElfImage {
  if (!isElf(image)) throw new UserError('not an ELF file (bad magic)');
  if (image.length < 16) throw new UserError(`truncated ELF header (${image.length} bytes)`);
  const cls = image[4];
  if (cls !== ELFCLASS32 && cls !== ELFCLASS64) throw new UserError(`unsupported ELF class ${cls}`);
  if (image[5] !== ELFDATA2LSB) throw new UserError('ELF file is not little-endian');
  if (image[6] !== EV_CURRENT) throw new UserError(`unsupported ELF version ${image[6]}`);
  const L = cls === ELFCLASS32 ? ELF32 : ELF64;
  const bits = cls === ELFCLASS32 ? 32 : 64;
  if (image.length < L.ehsize)
    throw new UserError(`truncated ELF header (${image.length} bytes, ELF${bits} needs ${L.ehsize})`);

  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const word = (at: number): bigint =>
    L.word === 4 ? BigInt(dv.getUint32(at, true)) : dv.getBigUint64(at, true);

  const type = dv.getUint16(16, true);
  if (type !== ET_EXEC) throw new UserError(`ELF type ${type} is not an executable (ET_EXEC)`);
  const machine = dv.getUint16(18, true);
  const wanted = bits === 32 ? EM_386 : EM_X86_64;
  if (machine !== wanted)
    throw new UserError(`ELF${bits} machine ${machine} is not ${bits === 32 ? 'i386 (3)' : 'x86-64 (62)'}`);
  const entry = word(L.entry);
  const phoff = word(L.phoff);
  const phentsize = dv.getUint16(L.phentsizeAt, true);
  const phnum = dv.getUint16(L.phnumAt, true);
  if (phnum === 0) throw new UserError('ELF file has no program headers');
  if (phnum === PN_XNUM)
    throw new UserError('ELF files with more than 65534 program headers are not supported');
  if (phentsize < L.phentsize) throw new UserError(`ELF program header size ${phentsize} is too small`);
  const phEnd = phoff + BigInt(phnum) * BigInt(phentsize);
  if (phEnd > BigInt(image.length))
    throw new UserError(`ELF program headers (${hexb(phoff)}..${hexb(phEnd)}) lie outside the file`);

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = Number(phoff) + i * phentsize;
    if (dv.getUint32(at + L.pType, true) !== PT_LOAD) continue;
    const offset = word(at + L.pOffset);
    const filesz = word(at + L.pFilesz);
    const memsz = word(at + L.pMemsz);
    if (filesz > memsz)
      throw new UserError(`ELF segment ${i}: file size ${hexb(filesz)} exceeds memory size ${hexb(memsz)}`);
    if (offset + filesz > BigInt(image.length))
      throw new UserError(`ELF segment ${i}: data (${hexb(offset)}+${hexb(filesz)}) lies outside the file`);
    segments.push({
      offset: Number(offset),
      filesz: Number(filesz),
      vaddr: word(at + L.pVaddr),
      paddr: word(at + L.pPaddr),
      memsz,
      flags: dv.getUint32(at + L.pFlags, true),
    });
  }
  return { bits, machine, entry, segments };
}
