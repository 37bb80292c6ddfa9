/**
 * VMREAD/VMWRITE semantics on a cached VMCS, independent of which processor holds it
 * (SDM 3C §24.11.2, §30.3 VMREAD/VMWRITE): the width comes from the encoding (bits 14:13),
 * "high" accesses (bit 0) reach bits 63:32 of 64-bit fields only, 16- and 32-bit fields
 * are zero-extended. Used by the VMX unit and by software that emulates VMX on top of it
 * (L0's vmcs12).
 */
import { Vmcs, FieldIndex } from './vmcs.js';
import { VMCS_FIELD_ENCODINGS, isReadOnlyField } from './fields.js';

/** The dense field index every VMCS of this implementation uses. */
export const VMCS_FIELD_INDEX = new FieldIndex(VMCS_FIELD_ENCODINGS);

/** A cached VMCS for region `addr` in this implementation's layout (see vmcs.ts). */
export function newVmcs(addr: number): Vmcs {
  return new Vmcs(addr, VMCS_FIELD_INDEX);
}

/** Is `enc` a well-formed encoding of a field in `fields` (otherwise VM-instruction error 12)? */
export function fieldSupported(fields: ReadonlySet<number>, enc: number): boolean {
  if (enc < 0 || enc > 0xffff || enc & 0x9000) return false; // bits 31:15 and 12 reserved
  if (!fields.has(enc & ~1)) return false;
  // High access is valid only for 64-bit fields (bits 14:13 = 1).
  if (enc & 1 && ((enc >> 13) & 3) !== 1) return false;
  return true;
}

export function fieldReadOnly(enc: number): boolean {
  return isReadOnlyField(enc & ~1);
}

/** VMREAD of a supported encoding: [bits 31:0, bits 63:32]. */
export function readVmcsField(v: Vmcs, enc: number): [number, number] {
  const base = enc & ~1;
  const k = VMCS_FIELD_INDEX.index.get(base)!;
  const width = (base >> 13) & 3;
  if (enc & 1) return [v.hi[k], 0];
  if (width === 0) return [v.lo[k] & 0xffff, 0];
  return [v.lo[k], width === 2 ? 0 : v.hi[k]];
}

/** VMWRITE of a supported encoding (the value truncated to the field's width). */
export function writeVmcsField(v: Vmcs, enc: number, lo: number, hi: number): void {
  const base = enc & ~1;
  const k = VMCS_FIELD_INDEX.index.get(base)!;
  const width = (base >> 13) & 3;
  if (enc & 1) v.hi[k] = lo;
  else if (width === 0) {
    v.lo[k] = lo & 0xffff;
    v.hi[k] = 0;
  } else if (width === 2) {
    v.lo[k] = lo;
    v.hi[k] = 0;
  } else {
    v.lo[k] = lo;
    v.hi[k] = hi;
  }
}
