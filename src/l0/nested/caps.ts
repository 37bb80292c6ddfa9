/**
 * The virtual VT-x L0 gives an L1 hypervisor with --nested: the hardware's capability set
 * (same revision, same fixed CR0/CR4 bits) minus what L0 does not virtualize — VMCS
 * shadowing and VM functions for L1, EPT (and unrestricted guest, which needs it) when
 * L1 is given no EPT (--nested-mmu shadow), and EPT accessed/dirty flags (ept02 would have
 * to propagate them into ept12). The capability MSRs are derived from one VmxCaps object,
 * so they are consistent with each other and with the VMCS fields VMREAD/VMWRITE accept.
 */
import { VmxCaps, type VmxHost } from '../hw.js';

export type NestedMmu = 'ept' | 'shadow';

export const MSR_FEATURE_CONTROL = 0x3a;
/** IA32_FEATURE_CONTROL as L0's firmware leaves it: locked, VMX outside SMX enabled (SDM 3C §23.7). */
export const FEATURE_CONTROL_VALUE = 0x5n;

export function l1VmxCaps(h: VmxHost, mmu: NestedMmu): VmxCaps {
  const hwProc2 = h.capability(0x48b) >> 32n;
  const hwEpt = (hwProc2 & 2n) !== 0n;
  const ept = mmu === 'ept' && hwEpt;
  const caps = new VmxCaps(
    {
      ept,
      vpid: (hwProc2 & 0x20n) !== 0n,
      unrestrictedGuest: ept && (hwProc2 & 0x80n) !== 0n,
      vmcsShadowing: false,
      vmFunctions: false,
      eptAccessedDirty: false,
    },
    Number(h.capability(0x489) & 0xffffffffn),
  );
  return caps;
}
