/**
 * 64-bit helpers. The CPU keeps 64-bit values as a pair of int32 (hi, lo) in typed
 * arrays; these helpers convert at the edges (tests, loaders, MSRs) and do the few
 * operations that are awkward inline. Nothing in the hot loop allocates.
 */

export const TWO32 = 4294967296;
export const TWO47 = 140737488355328;

export function hex(v: number | bigint, width = 0): string {
  let s: string;
  if (typeof v === 'bigint') s = (v < 0n ? v + (1n << 64n) : v).toString(16);
  else s = (v < 0 ? v + TWO32 : v).toString(16);
  return '0x' + s.padStart(width, '0');
}

export function hex64(hi: number, lo: number): string {
  return '0x' + (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}
