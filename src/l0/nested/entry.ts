/**
 * L1's VMLAUNCH/VMRESUME (SDM 3C §30.3 and chapter 26, done for L1 by L0): the instruction's
 * own checks, then the hardware's VM-entry check list (src/hw/vmx/entry.ts, not a copy of it)
 * on vmcs12 against the capabilities L1 was given, then vmcs02 and the switch to L2.
 */
import { VMCS_FIELD as F, VMX_BITS as B, checkVmEntry, type EntryEnv, type ExitRecord } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import type { NestedVcpu } from './state.js';
import { vmxPreChecks, vmFailInvalid, vmFailValid } from './vmx-insns.js';
import { skipInstruction } from '../vmm/guest-state.js';
import { syncShadowToVmcs12 } from './drw.js';
import { l1Read32, l1Read8 } from './l1mem.js';
import { prepareVmcs02 } from './vmcs02.js';
import { reflectToL1, synthesizedExit12 } from './reflect.js';
import { L0_COST } from '../cost.js';

/** A VM-entry failure L1 sees as an exit (§26.8): reason with bit 31, L1's host state loaded. */
export function entryFailureToL1(v: Vcpu, n: NestedVcpu, reason: number, qualification: number): void {
  reflectToL1(
    v,
    n,
    synthesizedExit12((reason | 0x80000000) >>> 0, { qualification: BigInt(qualification) }),
    false,
  );
}

export function nestedEntry(v: Vcpu, n: NestedVcpu, e: ExitRecord, launch: boolean): void {
  const h = v.host;
  h.charge(L0_COST.vmxInsn);
  if (!vmxPreChecks(v, n, false)) return;
  if (!n.current) {
    vmFailInvalid(h);
    return skipInstruction(h, e.instructionLength);
  }
  if ((h.vmread(F.GUEST_INTERRUPTIBILITY_INFO) as bigint) & BigInt(B.BLOCK_MOV_SS)) {
    vmFailValid(n, h, B.E.ENTRY_EVENTS_BLOCKED_BY_MOV_SS);
    return skipInstruction(h, e.instructionLength);
  }
  if (n.opts.drw) syncShadowToVmcs12(v, n);
  const v12 = n.current;
  if (launch && v12.launch !== 0) {
    vmFailValid(n, h, B.E.VMLAUNCH_NOT_CLEAR);
    return skipInstruction(h, e.instructionLength);
  }
  if (!launch && v12.launch !== 1) {
    vmFailValid(n, h, B.E.VMRESUME_NOT_LAUNCHED);
    return skipInstruction(h, e.instructionLength);
  }
  h.charge(L0_COST.nestedEntryChecks);
  const env: EntryEnv = {
    read8: (pa) => l1Read8(v.vm, pa),
    read32: (pa) => l1Read32(v.vm, pa),
    hostLma: ((h.vmread(F.GUEST_IA32_EFER) as bigint) & 0x400n) !== 0n,
  };
  const r = checkVmEntry(v12, n.caps, env);
  n.lastEntryCheck = r.kind === 'ok' ? '' : r.check;
  if (r.kind === 'vmfail') {
    vmFailValid(n, h, r.error);
    return skipInstruction(h, e.instructionLength);
  }
  if (r.kind === 'entry-failure') return entryFailureToL1(v, n, r.reason, r.qualification);
  // The L0 exits since the last reflected exit belong to it (the paper's Figure 10).
  if (n.reflectedAtExits >= 0) {
    const stats = v.vm.stats;
    stats.reflected++;
    stats.l0ExitsForReflected += totalExits(v) - n.reflectedAtExits;
    n.reflectedAtExits = -1;
  }
  prepareVmcs02(v, n);
  if (launch) v12.launch = 1;
  v.level = 'L2';
}

export function totalExits(v: Vcpu): number {
  return v.vm.stats.totalExits;
}
