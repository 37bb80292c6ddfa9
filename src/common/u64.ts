/**
 * 64-bit helpers. The CPU keeps 64-bit values as a pair of int32 (hi, lo) in typed
 * arrays; these helpers convert at the edges (tests, loaders, MSRs) and do the few
 * operations that are awkward inline. Nothing in the hot loop allocates.
 */

export const TWO32 = 4294967296;
export const TWO47 = 140737488355328;
export const TWO48 = 281474976710656;

/** Signed 64-bit value of (hi, lo) as a double; exact when |value| < 2^53. */
export function toSignedNumber(hi: number, lo: number): number {
  return hi * TWO32 + (lo >>> 0);
}

/** Unsigned value of (hi, lo) as a double; exact when value < 2^53. */
export function toUnsignedNumber(hi: number, lo: number): number {
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

/** High int32 of an integral double (signed or unsigned view, |x| < 2^64). */
export function hiOf(x: number): number {
  return Math.floor(x / TWO32) | 0;
}

/** Low int32 of an integral double. */
export function loOf(x: number): number {
  return x | 0; // ToInt32 is exact modulo 2^32 for integral doubles
}

export function toBig(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function bigHi(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn) | 0;
}

export function bigLo(v: bigint): number {
  return Number(v & 0xffffffffn) | 0;
}

/** A canonical 48-bit linear address is the sign extension of its bit 47. */
export function isCanonical(hi: number, lo: number): boolean {
  void lo;
  const top = hi >> 15; // bits 63..47 must be all 0 or all 1
  return top === 0 || top === -1;
}

export function hex(v: number | bigint, width = 0): string {
  let s: string;
  if (typeof v === 'bigint') s = (v < 0n ? v + (1n << 64n) : v).toString(16);
  else s = (v < 0 ? v + TWO32 : v).toString(16);
  return '0x' + s.padStart(width, '0');
}

export function hex64(hi: number, lo: number): string {
  return '0x' + (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

/** Unsigned 64-bit multiply of (aHi,aLo)*(bHi,bLo); returns 128-bit product in out[0..3] (lo..hi words, int32). */
export function mul64x64(aHi: number, aLo: number, bHi: number, bLo: number, out: Int32Array): void {
  // Split into 16-bit limbs so every partial product fits in 2^53.
  const a0 = aLo & 0xffff,
    a1 = aLo >>> 16,
    a2 = aHi & 0xffff,
    a3 = aHi >>> 16;
  const b0 = bLo & 0xffff,
    b1 = bLo >>> 16,
    b2 = bHi & 0xffff,
    b3 = bHi >>> 16;
  const a = [a0, a1, a2, a3];
  const b = [b0, b1, b2, b3];
  const r = new Array<number>(9).fill(0);
  for (let i = 0; i < 4; i++) {
    let carry = 0;
    for (let j = 0; j < 4; j++) {
      const t = r[i + j] + a[i] * b[j] + carry;
      r[i + j] = t % 65536;
      carry = Math.floor(t / 65536);
    }
    r[i + 4] += carry;
  }
  out[0] = r[0] | (r[1] << 16) | 0;
  out[1] = r[2] | (r[3] << 16) | 0;
  out[2] = r[4] | (r[5] << 16) | 0;
  out[3] = r[6] | (r[7] << 16) | 0;
}
