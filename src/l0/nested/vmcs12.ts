/**
 * vmcs12: the VMCS L1 prepares for its L2, in L1 memory. Layout (documented in docs/L0.md):
 * the hardware's own region layout (src/hw/vmx/vmcs.ts) — revision identifier at offset 0
 * (the revision L0 reports in L1's IA32_VMX_BASIC), VMX-abort indicator at 4, launch state
 * at 8 (0 clear, 1 launched), field k of the VMCS field table as a 64-bit value at 16 + 8k.
 *
 * Like a processor, L0 caches the current vmcs12 (a Vmcs object) from VMPTRLD on and writes
 * it back to L1 memory at VMCLEAR, at a VMPTRLD of another VMCS and at VMXOFF (SDM 3C
 * §24.11.1 allows exactly that); software must not touch an active VMCS region.
 */
import { newVmcs, VMCS_FIELD_INDEX, type Vmcs } from '../hw.js';
import type { Vm } from '../vm.js';
import { l1Read32, l1Write32 } from './l1mem.js';

export const LAUNCH_STATE_OFFSET = 8;
export const FIELDS_OFFSET = 16;

export function loadVmcs12(vm: Vm, gpa: number): Vmcs {
  const v = newVmcs(gpa);
  const rev = l1Read32(vm, gpa);
  v.revision = rev & 0x7fffffff;
  v.shadow = (rev & 0x80000000) !== 0;
  v.launch = l1Read32(vm, gpa + LAUNCH_STATE_OFFSET) === 1 ? 1 : 0;
  for (let k = 0; k < VMCS_FIELD_INDEX.size; k++) {
    v.lo[k] = l1Read32(vm, gpa + FIELDS_OFFSET + 8 * k);
    v.hi[k] = l1Read32(vm, gpa + FIELDS_OFFSET + 4 + 8 * k);
  }
  return v;
}

export function storeVmcs12(vm: Vm, v: Vmcs): void {
  l1Write32(vm, v.addr, (v.revision & 0x7fffffff) | (v.shadow ? 0x80000000 : 0));
  l1Write32(vm, v.addr + LAUNCH_STATE_OFFSET, v.launch);
  for (let k = 0; k < VMCS_FIELD_INDEX.size; k++) {
    l1Write32(vm, v.addr + FIELDS_OFFSET + 8 * k, v.lo[k]);
    l1Write32(vm, v.addr + FIELDS_OFFSET + 4 + 8 * k, v.hi[k]);
  }
}
