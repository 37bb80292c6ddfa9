/**
 * Bit-field descriptions for the 32-bit VMX formats (exit qualifications, instruction
 * information, interruption information, …). A layout is data: `{ NAME: { lsb, width } }`.
 * Values are int32 as JS bit operators produce them (bit 31 set ⇒ negative); compare
 * with `&` and `===`, never with `<`.
 */

export interface BitField {
  /** Lowest bit of the field. */
  readonly lsb: number;
  /** Number of bits; lsb + width <= 32. */
  readonly width: number;
}

/** A named set of fields of one 32-bit format. */
export type BitLayout = Readonly<Record<string, BitField>>;

/** A one-bit field at position n. */
export const bit = (n: number): BitField => ({ lsb: n, width: 1 });

/** The field of bits msb:lsb (SDM notation, both inclusive). */
export const bits = (msb: number, lsb: number): BitField => ({ lsb, width: msb - lsb + 1 });

/** int32 mask of a field in place. */
export function fieldMask(f: BitField): number {
  return f.width >= 32 ? -1 : (((1 << f.width) - 1) << f.lsb) | 0;
}

/** The field's value, unsigned (0 … 2^width - 1). */
export function getField(v: number, f: BitField): number {
  return f.width >= 32 ? v >>> 0 : (v >>> f.lsb) & ((1 << f.width) - 1);
}

/** v with the field replaced by x (x is truncated to the field width). */
export function setField(v: number, f: BitField, x: number): number {
  const m = fieldMask(f);
  return (v & ~m) | ((x << f.lsb) & m) | 0;
}

/** int32 mask with the given bit positions (0-31) set. */
export function maskOf(...positions: readonly number[]): number {
  let m = 0;
  for (const p of positions) m |= 1 << p;
  return m | 0;
}

/** The set bit positions of an int32 mask, ascending. */
export function positionsOf(mask: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < 32; i++) if (mask & (1 << i)) out.push(i);
  return out;
}
