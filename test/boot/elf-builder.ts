/**
 * Builds small ELF32/ELF64 executables in memory for the loader tests: an ELF
 * header, program headers, optionally a multiboot header right after them, then
 * each segment's bytes. Returns the offsets so tests can corrupt chosen fields.
 */
export const MB_MAGIC = 0x1badb002;

export interface SegmentSpec {
  paddr: number | bigint;
  /** Defaults to paddr. */
  vaddr?: number | bigint;
  data: Uint8Array;
  /** Defaults to data.length. */
  memsz?: number | bigint;
  /** Defaults to PT_LOAD (1). */
  type?: number;
}

export interface MultibootSpec {
  flags?: number;
  /** Defaults to the correct checksum. */
  checksum?: number;
  /** The a.out kludge address fields (header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr). */
  aout?: [number, number, number, number, number];
}

export interface ElfSpec {
  bits: 32 | 64;
  entry: number | bigint;
  segments: SegmentSpec[];
  machine?: number;
  type?: number;
  /** false: no multiboot header. */
  multiboot?: MultibootSpec | false;
}

export interface BuiltElf {
  image: Uint8Array;
  phoff: number;
  phentsize: number;
  /** File offset of the multiboot header, or -1. */
  mbOffset: number;
  segmentOffsets: number[];
}

export function multibootHeader(spec: MultibootSpec = {}): Uint8Array {
  const flags = spec.flags ?? (spec.aout ? 0x10003 : 0x3);
  const out = new Uint8Array(spec.aout ? 32 : 12);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MB_MAGIC, true);
  dv.setUint32(4, flags >>> 0, true);
  dv.setUint32(8, spec.checksum ?? -(MB_MAGIC + flags) >>> 0, true);
  spec.aout?.forEach((v, i) => dv.setUint32(12 + 4 * i, v >>> 0, true));
  return out;
}

export function buildElf(spec: ElfSpec): BuiltElf {
  const is64 = spec.bits === 64;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phoff = ehsize;
  const mb = spec.multiboot === false ? undefined : multibootHeader(spec.multiboot);
  const mbOffset = mb ? phoff + phentsize * spec.segments.length : -1;
  let cursor = (mb ? mbOffset + mb.length : phoff + phentsize * spec.segments.length) + 15;
  cursor &= ~15;
  const segmentOffsets = spec.segments.map((s) => {
    const at = cursor;
    cursor = (cursor + s.data.length + 15) & ~15;
    return at;
  });
  const image = new Uint8Array(cursor);
  const dv = new DataView(image.buffer);
  image.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, 1, 1]);
  dv.setUint16(16, spec.type ?? 2, true);
  dv.setUint16(18, spec.machine ?? (is64 ? 62 : 3), true);
  dv.setUint32(20, 1, true);
  const word = (at: number, v: number | bigint): void => {
    if (is64) dv.setBigUint64(at, BigInt(v), true);
    else dv.setUint32(at, Number(v) >>> 0, true);
  };
  word(24, spec.entry);
  word(is64 ? 32 : 28, phoff);
  dv.setUint16(is64 ? 52 : 40, ehsize, true);
  dv.setUint16(is64 ? 54 : 42, phentsize, true);
  dv.setUint16(is64 ? 56 : 44, spec.segments.length, true);
  spec.segments.forEach((s, i) => {
    const at = phoff + i * phentsize;
    dv.setUint32(at, s.type ?? 1, true);
    if (is64) {
      dv.setUint32(at + 4, 7, true);
      word(at + 8, segmentOffsets[i]);
      word(at + 16, s.vaddr ?? s.paddr);
      word(at + 24, s.paddr);
      word(at + 32, s.data.length);
      word(at + 40, s.memsz ?? s.data.length);
      word(at + 48, 0x1000);
    } else {
      word(at + 4, segmentOffsets[i]);
      word(at + 8, s.vaddr ?? s.paddr);
      word(at + 12, s.paddr);
      word(at + 16, s.data.length);
      word(at + 20, s.memsz ?? s.data.length);
      dv.setUint32(at + 24, 7, true);
      word(at + 28, 0x1000);
    }
    image.set(s.data, segmentOffsets[i]);
  });
  if (mb) image.set(mb, mbOffset);
  return { image, phoff, phentsize, mbOffset, segmentOffsets };
}

/** Bytes 0, 1, 2, ... (mod 251, so runs are easy to tell apart) offset by `seed`. */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i + seed) % 251;
  return out;
}
