/**
 * Finding the Multiboot (v0.6.96) header: a 32-bit aligned magic 0x1BADB002,
 * flags and checksum (magic + flags + checksum = 0 mod 2^32), entirely inside
 * the first 8192 bytes of the image (Multiboot spec §3.1.1-§3.1.3). When flags
 * bit 16 is set, the address fields that follow (the "a.out kludge") say where
 * to load the image instead of its ELF headers (§3.1.3).
 */
import { UserError } from '../../common/index.js';

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
const SEARCH_LIMIT = 8192;
const HEADER_SIZE = 12;
const AOUT_HEADER_SIZE = 32;
/** Flags bit 16: the address fields are valid. */
export const MULTIBOOT_AOUT_KLUDGE = 0x10000;

export interface AoutKludge {
  headerAddr: number;
  loadAddr: number;
  loadEndAddr: number;
  bssEndAddr: number;
  entryAddr: number;
}

export interface MultibootHeader {
  /** File offset of the header. */
  offset: number;
  flags: number;
  aout?: AoutKludge;
}

export function findMultibootHeader(image: Uint8Array): MultibootHeader {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const limit = Math.min(image.length, SEARCH_LIMIT);
  let badChecksumAt = -1;
  for (let at = 0; at + HEADER_SIZE <= limit; at += 4) {
    if (dv.getUint32(at, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = dv.getUint32(at + 4, true);
    const checksum = dv.getUint32(at + 8, true);
    if (((MULTIBOOT_HEADER_MAGIC + flags + checksum) & 0xffffffff) !== 0) {
      if (badChecksumAt < 0) badChecksumAt = at;
      continue;
    }
    if (!(flags & MULTIBOOT_AOUT_KLUDGE)) return { offset: at, flags };
    if (at + AOUT_HEADER_SIZE > limit)
      throw new UserError(
        `multiboot header at offset 0x${at.toString(16)} is cut off before its address fields`,
      );
    return {
      offset: at,
      flags,
      aout: {
        headerAddr: dv.getUint32(at + 12, true),
        loadAddr: dv.getUint32(at + 16, true),
        loadEndAddr: dv.getUint32(at + 20, true),
        bssEndAddr: dv.getUint32(at + 24, true),
        entryAddr: dv.getUint32(at + 28, true),
      },
    };
  }
  if (badChecksumAt >= 0)
    throw new UserError(`multiboot header at offset 0x${badChecksumAt.toString(16)} has a bad checksum`);
  throw new UserError('not a multiboot image (no multiboot header in the first 8192 bytes)');
}
