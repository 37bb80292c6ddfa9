/**
 * Turning nesting on for a vCPU (`--nested`): its NestedVcpu with the virtual VT-x, the MSR
 * bitmap bits for IA32_FEATURE_CONTROL and the capability MSRs, and DRW's shadow VMCS when the
 * hardware has VMCS shadowing. vmcs01 must be current.
 */
import { UserError } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import { NestedVcpu } from './state.js';
import { l1VmxCaps, MSR_FEATURE_CONTROL } from './caps.js';
import { setupDrw, hardwareHasShadowing } from './drw.js';
import type { NestedOptions } from './options.js';

export function enableNested(v: Vcpu, opts: NestedOptions): void {
  const vm = v.vm;
  // L0 without EPT cannot give L1 EPT (ept02 is built on ept01): L1 shadows L2 itself and L0
  // shadows that (shadow-on-shadow, nested/spt02-exits.ts).
  if (vm.mmu === 'shadow' && opts.mmu === 'ept')
    throw new UserError(
      `VM ${vm.name}: nested mmu ept (EPT for L1) needs L0 on EPT; with L0 on shadow paging L1 gets no EPT (nested mmu shadow)`,
    );
  const drw = opts.drw && hardwareHasShadowing(v);
  const n = new NestedVcpu(
    l1VmxCaps(v.host, opts.mmu),
    { ...opts, drw },
    () => vm.pages.alloc(),
    0x100 + vm.vpid(v.index),
  );
  v.nested = n;
  // RDMSR and WRMSR of IA32_FEATURE_CONTROL and the VMX capability MSRs exit (MSR bitmap, SDM 3C §24.6.9).
  const mem = v.host.mem;
  const setBit = (off: number, msr: number): void =>
    mem.write8(
      vm.msrBitmap + off + (msr >> 3),
      mem.read8(vm.msrBitmap + off + (msr >> 3)) | (1 << (msr & 7)),
    );
  for (const msr of [MSR_FEATURE_CONTROL, ...Array.from({ length: 0x14 }, (_, k) => 0x480 + k)]) {
    setBit(0, msr);
    setBit(0x800, msr);
  }
  if (drw) setupDrw(v, n);
}
