/**
 * Reflecting an exit to L1 (the paper §3.2, KVM's nested_vmx_vmexit): sync vmcs02's guest
 * state into vmcs12, fill vmcs12's exit-information fields with what L1 would see on
 * hardware, load L1's host state from vmcs12 into vmcs01, and resume L1 there.
 */
import { VMCS_FIELD as F, VMX_BITS as B, writeVmcsField, type ExitRecord } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import type { NestedVcpu } from './state.js';
import { GUEST_GROUPS } from './field-groups.js';
import { copyCurrentTo12 } from './copy.js';
import { loadL1HostState } from './host-state.js';
import { l2PagingTo12 } from './spt02-exits.js';
import { get12 } from './vmcs02.js';
import { l1Read32, l1Write32 } from './l1mem.js';
import { syncVmcs12ToShadow } from './drw.js';
import { L0_COST } from '../cost.js';

/**
 * The exit-information fields of a VM exit as L1 must see it: those of the hardware's exit
 * record, with `reason` the whole exit-reason field (bit 31 for VM-entry failures).
 */
export type Exit12 = Omit<ExitRecord, 'kind' | 'rawReason' | 'vmxAbort'>;

/**
 * An exit L0 makes up for L1 (a VM-entry failure, an interrupt arriving while L2 runs): every
 * exit-information field 0 but `reason` and what `fields` gives. It happens at an instruction
 * boundary, not while an event is delivered, so there is no IDT-vectoring information (§27.2.4).
 */
export function synthesizedExit12(reason: number, fields: Partial<Exit12> = {}): Exit12 {
  return {
    reason,
    qualification: 0n,
    guestLinearAddress: 0n,
    guestPhysicalAddress: 0n,
    instructionLength: 0,
    instructionInfo: 0,
    interruptionInfo: 0,
    interruptionErrorCode: 0,
    idtVectoringInfo: 0,
    idtVectoringErrorCode: 0,
    ...fields,
  };
}

export function exit12From(r: ExitRecord, override: Partial<Exit12> = {}): Exit12 {
  return {
    reason: r.rawReason,
    qualification: r.qualification,
    guestLinearAddress: r.guestLinearAddress,
    guestPhysicalAddress: r.guestPhysicalAddress,
    instructionLength: r.instructionLength,
    instructionInfo: r.instructionInfo,
    interruptionInfo: r.interruptionInfo,
    interruptionErrorCode: r.interruptionErrorCode,
    idtVectoringInfo: r.idtVectoringInfo,
    idtVectoringErrorCode: r.idtVectoringErrorCode,
    ...override,
  };
}

/** Guest-state fields a VM exit saves only under an exit control (SDM 3C §27.3.1, §27.3.4). */
const CONDITIONAL_SAVES: readonly (readonly [number, readonly number[]])[] = [
  [B.EXIT_SAVE_DEBUG, [F.GUEST_DR7, F.GUEST_IA32_DEBUGCTL]],
  [B.EXIT_SAVE_PAT, [F.GUEST_IA32_PAT]],
  [B.EXIT_SAVE_EFER, [F.GUEST_IA32_EFER]],
  [B.EXIT_SAVE_PREEMPT, [F.VMX_PREEMPTION_TIMER_VALUE]],
];

function put(v12: Parameters<typeof writeVmcsField>[0], enc: number, value: bigint | number): void {
  const b = BigInt.asUintN(64, BigInt(value));
  writeVmcsField(v12, enc, Number(b & 0xffffffffn) | 0, Number(b >> 32n) | 0);
}

/**
 * Reflect an exit to L1. vmcs02 is current on entry (L2 ran); vmcs01 is current on return and
 * the vCPU runs L1. `guestRan`: false for a VM-entry failure (no guest state to save, §26.8).
 */
export function reflectToL1(v: Vcpu, n: NestedVcpu, x: Exit12, guestRan: boolean): void {
  const h = v.host;
  const v12 = n.current!;
  if (guestRan) {
    // vmcs02 saves more than L1 may have asked for: the fields of a save control vmcs12 lacks
    // keep their vmcs12 values (§27.3.1).
    const exit12 = Number(get12(v12, F.VM_EXIT_CONTROLS));
    const kept = CONDITIONAL_SAVES.filter(([bit]) => !(exit12 & bit)).flatMap(([, fields]) =>
      fields.map((enc) => [enc, get12(v12, enc)] as const),
    );
    copyCurrentTo12(h, n, v12, GUEST_GROUPS);
    for (const [enc, value] of kept) put(v12, enc, value);
    // Shadow-on-shadow: L2's CR0/CR3/CR4 as L1 set them, not spt02's (spt02-exits.ts).
    l2PagingTo12(n, v12, (enc, value) => put(v12, enc, value));
    // VM-exit MSR-store list: the values the hardware stored into L0's copy go to L1's list.
    const count = Math.min(Number(get12(v12, F.VM_EXIT_MSR_STORE_COUNT)), 256);
    const addr = Number(get12(v12, F.VM_EXIT_MSR_STORE_ADDR));
    for (let k = 0; k < count; k++) {
      l1Write32(v.vm, addr + 16 * k + 8, h.mem.read32(n.exitMsrStore02 + 16 * k + 8));
      l1Write32(v.vm, addr + 16 * k + 12, h.mem.read32(n.exitMsrStore02 + 16 * k + 12));
    }
  }
  put(v12, F.VM_EXIT_REASON, x.reason >>> 0);
  put(v12, F.EXIT_QUALIFICATION, x.qualification);
  put(v12, F.GUEST_LINEAR_ADDRESS, x.guestLinearAddress);
  put(v12, F.GUEST_PHYSICAL_ADDRESS, x.guestPhysicalAddress);
  put(v12, F.VM_EXIT_INSTRUCTION_LEN, x.instructionLength);
  put(v12, F.VMX_INSTRUCTION_INFO, x.instructionInfo);
  put(v12, F.VM_EXIT_INTR_INFO, x.interruptionInfo >>> 0);
  put(v12, F.VM_EXIT_INTR_ERROR_CODE, x.interruptionErrorCode);
  put(v12, F.IDT_VECTORING_INFO_FIELD, guestRan ? x.idtVectoringInfo >>> 0 : 0);
  put(v12, F.IDT_VECTORING_ERROR_CODE, x.idtVectoringErrorCode);
  // Every VM exit clears the valid bit of the VM-entry interruption information (SDM 3C §24.8.3).
  put(v12, F.VM_ENTRY_INTR_INFO_FIELD, get12(v12, F.VM_ENTRY_INTR_INFO_FIELD) & 0x7fffffffn);
  h.vmptrld(v.vmcs01);
  h.charge(L0_COST.vmptrld + L0_COST.loadHostState);
  loadL1HostState(v, v12);
  // L1's VM-exit MSR-load list: loaded by the next entry to L1 through vmcs01's MSR-load list.
  const nLoad = Math.min(Number(get12(v12, F.VM_EXIT_MSR_LOAD_COUNT)), 256);
  const loadAddr = Number(get12(v12, F.VM_EXIT_MSR_LOAD_ADDR));
  for (let k = 0; k < nLoad; k++)
    for (let d = 0; d < 16; d += 4)
      h.mem.write32(n.exitMsrLoad01 + 16 * k + d, l1Read32(v.vm, loadAddr + 16 * k + d));
  h.vmwrite(F.VM_ENTRY_MSR_LOAD_COUNT, nLoad);
  h.vmwrite(F.VM_ENTRY_MSR_LOAD_ADDR, n.exitMsrLoad01);
  n.hostMsrLoadArmed = nLoad > 0;
  v.level = 'L1';
  if (n.opts.drw) syncVmcs12ToShadow(v, n);
}
