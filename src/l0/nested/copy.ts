/** Copying VMCS fields in software, and what it costs (per field, or per group with bulk copy). */
import { readVmcsField, writeVmcsField, type Vmcs, type VmxHost } from '../hw.js';
import { L0_COST } from '../cost.js';
import type { FieldGroup } from './field-groups.js';
import type { NestedVcpu } from './state.js';

/** Charge L0 for copying `fields` fields spread over `groups` groups. */
export function chargeCopy(h: VmxHost, n: NestedVcpu, fields: number, groups: number): void {
  if (fields === 0) return;
  h.charge(n.opts.bulkCopy ? groups * L0_COST.groupCopy : fields * L0_COST.fieldCopy);
}

/** vmcs12 (cache) → current hardware VMCS, for the fields in `groups` accepted by `want`. */
export function copy12ToCurrent(
  h: VmxHost,
  n: NestedVcpu,
  v12: Vmcs,
  groups: readonly FieldGroup[],
  want: (enc: number) => boolean = () => true,
): number {
  let fields = 0,
    touched = 0;
  for (const g of groups) {
    let any = false;
    for (const enc of g.encodings) {
      if (!want(enc)) continue;
      const [lo, hi] = readVmcsField(v12, enc);
      h.vmwrite(enc, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
      fields++;
      any = true;
    }
    if (any) touched++;
  }
  chargeCopy(h, n, fields, touched);
  return fields;
}

/** Current hardware VMCS → vmcs12 (cache); returns the encodings whose value changed. */
export function copyCurrentTo12(
  h: VmxHost,
  n: NestedVcpu,
  v12: Vmcs,
  groups: readonly FieldGroup[],
): number[] {
  const changed: number[] = [];
  let fields = 0;
  for (const g of groups)
    for (const enc of g.encodings) {
      const v = h.vmread(enc);
      if (typeof v !== 'bigint') continue;
      const lo = Number(v & 0xffffffffn) | 0,
        hi = Number(v >> 32n) | 0;
      const [olo, ohi] = readVmcsField(v12, enc);
      if (olo !== lo || ohi !== hi) {
        writeVmcsField(v12, enc, lo, hi);
        changed.push(enc);
      }
      fields++;
    }
  chargeCopy(h, n, fields, groups.length);
  return changed;
}
