/**
 * DRW — direct VMREAD/VMWRITE (the paper's §3.5 optimization), for an unmodified L1 through
 * hardware VMCS shadowing (SDM 3C §24.10, §30.3 VMREAD/VMWRITE in non-root operation): vmcs01
 * links a shadow VMCS of L0's, and its VMREAD/VMWRITE bitmaps let L1's accesses to the
 * shadowed fields (field-groups.ts) go to it without a VM exit. vmcs12 stays coherent at every
 * transition: the shadow's fields are copied into vmcs12 when L1 enters L2 or gives up the VMCS
 * (VMCLEAR, VMPTRLD of another, VMXOFF), and vmcs12's into the shadow when L1 gets a new current
 * VMCS or an exit from L2. Fields that changed in the shadow count as written (dirty merging).
 */
import { VMCS_FIELD as F, VMX_BITS as B, fieldReadOnly } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import type { NestedVcpu } from './state.js';
import { SHADOWED_FIELDS, SHADOWED_GROUPS } from './field-groups.js';
import { copy12ToCurrent, copyCurrentTo12 } from './copy.js';
import { L0_COST } from '../cost.js';

const NO_LINK = 0xffffffffffffffffn;

/** Does the hardware offer VMCS shadowing (IA32_VMX_PROCBASED_CTLS2 allowed-1 bit 14)? */
export function hardwareHasShadowing(v: Vcpu): boolean {
  return ((v.host.capability(0x48b) >> 32n) & BigInt(B.SEC_SHADOW_VMCS)) !== 0n;
}

/** Create the shadow VMCS and the bitmaps, and turn VMCS shadowing on in vmcs01 (current). */
export function setupDrw(v: Vcpu, n: NestedVcpu): void {
  const h = v.host;
  const mem = h.mem;
  n.shadowVmcs = v.vm.pages.alloc();
  mem.write32(n.shadowVmcs, h.revisionId | 0x80000000);
  const readBitmap = v.vm.pages.alloc();
  const writeBitmap = v.vm.pages.alloc();
  for (let off = 0; off < 4096; off += 4) {
    mem.write32(readBitmap + off, -1);
    mem.write32(writeBitmap + off, -1);
  }
  const clear = (bitmap: number, enc: number): void => {
    const bit = enc & 0x7fff;
    mem.write8(bitmap + (bit >> 3), mem.read8(bitmap + (bit >> 3)) & ~(1 << (bit & 7)));
  };
  // Read-only (exit-information) fields are writable in the shadow too when L1's
  // IA32_VMX_MISC[29] says VMWRITE may write any field (the hardware then allows it as well,
  // SDM 3C §30.3 VMWRITE); otherwise L1's write exits and L0 fails it with error 13.
  const writable = (enc: number): boolean => !fieldReadOnly(enc) || n.caps.vmwriteAnyField;
  for (const enc of SHADOWED_FIELDS) {
    if (!n.caps.fields.has(enc)) continue;
    clear(readBitmap, enc);
    if (writable(enc)) clear(writeBitmap, enc);
    // 64-bit fields: the "high" encoding too.
    if (((enc >> 13) & 3) === 1) {
      clear(readBitmap, enc | 1);
      if (writable(enc)) clear(writeBitmap, enc | 1);
    }
  }
  h.vmclear(n.shadowVmcs);
  h.vmwrite(F.VMREAD_BITMAP_ADDRESS, readBitmap);
  h.vmwrite(F.VMWRITE_BITMAP_ADDRESS, writeBitmap);
  const proc2 = h.vmread(F.SECONDARY_VM_EXEC_CONTROL) as bigint;
  h.vmwrite(F.SECONDARY_VM_EXEC_CONTROL, proc2 | BigInt(B.SEC_SHADOW_VMCS));
  h.vmwrite(F.VMCS_LINK_POINTER, NO_LINK);
}

/** L1's writes to the shadow → vmcs12 (vmcs01 current before and after). */
export function syncShadowToVmcs12(v: Vcpu, n: NestedVcpu): void {
  if (n.shadowVmcs < 0 || !n.current) return;
  const h = v.host;
  h.vmptrld(n.shadowVmcs);
  const changed = copyCurrentTo12(h, n, n.current, SHADOWED_GROUPS);
  for (const enc of changed) n.markDirty(enc);
  h.vmptrld(v.vmcs01);
  h.charge(2 * L0_COST.vmptrld);
}

/** vmcs12 → the shadow, and link it from vmcs01 (or unlink when L1 has no current VMCS). */
export function syncVmcs12ToShadow(v: Vcpu, n: NestedVcpu): void {
  if (n.shadowVmcs < 0) return;
  const h = v.host;
  if (!n.current) {
    h.vmwrite(F.VMCS_LINK_POINTER, NO_LINK);
    return;
  }
  h.vmptrld(n.shadowVmcs);
  copy12ToCurrent(h, n, n.current, SHADOWED_GROUPS);
  h.vmptrld(v.vmcs01);
  h.vmwrite(F.VMCS_LINK_POINTER, n.shadowVmcs);
  h.charge(2 * L0_COST.vmptrld);
}
