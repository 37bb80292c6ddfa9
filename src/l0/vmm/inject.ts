/**
 * Virtual interrupts into a vCPU through VM entry (SDM 3C §26.6 "Event Injection"), the way
 * KVM's inject_pending_event does it:
 *
 * - Before every VM entry (`beforeEntry`): if no event is already being injected, the
 *   highest-priority pending event goes into the VM-entry interruption-information field
 *   when the guest can take it — an NMI unless NMIs are blocked (virtual-NMI blocking, MOV SS);
 *   else an external interrupt (the vLAPIC's first, then the 8259's through LINT0, as the
 *   bare machine accepts them) when RFLAGS.IF = 1 and there is no STI/MOV SS blocking. What
 *   cannot be taken now arms NMI-window or interrupt-window exiting (SDM 3C §25.2), whose
 *   exit simply comes back here. The guest is never entered in the HLT activity state: HLT
 *   exits and L0 keeps the vCPU 'halted' until an event can wake it (vcpu.ts).
 * - After every VM exit (`afterExit`): an event whose delivery the exit interrupted (the
 *   IDT-vectoring information, SDM 3C §27.2.4) is re-injected unchanged (§28.x: the VMM
 *   must, or the event is lost); and VTPR, which the guest writes with MOV to CR8 without
 *   exiting, goes back into the vLAPIC's TPR.
 *
 * CR8 and the TPR: "use TPR shadow" (SDM 3C §29.1). The virtual-APIC page holds VTPR, a copy
 * of the vLAPIC's TPR written before each entry; MOV from CR8 reads it and MOV to CR8 writes
 * it without a VM exit. The TPR threshold is the priority class of the highest interrupt the
 * TPR holds back, so a MOV to CR8 that lowers the TPR below it exits (TPR below threshold)
 * and the interrupt is injected; the xAPIC TPR register and x2APIC MSR 0x808 go to the vLAPIC
 * itself (MMIO/MSR exits). So CR8, the xAPIC TPR and the x2APIC TPR are one register, as on
 * hardware (SDM 3A §11.8.6).
 */
import { VMCS_FIELD as F, VMX_BITS as B, type ExitRecord, type Lapic, type VmxHost } from '../hw.js';
import type { Vm } from '../vm.js';
import type { Vcpu } from './vcpu.js';
import { vmread } from './guest-state.js';
import { L0_COST } from '../cost.js';

const VALID = 0x80000000;
const RFLAGS_IF = 0x200n;
const WINDOWS = B.CPU_INTR_WINDOW | B.CPU_NMI_WINDOW;
/** Offset of VTPR in the virtual-APIC page (SDM 3C §29.1.1). */
export const VTPR = 0x80;

/** The highest vector in the IRR of a local APIC (whatever the PPR), or -1. */
export function highestIrr(l: Lapic): number {
  if (l.mode === 'disabled') return -1;
  for (let w = 7; w >= 0; w--) {
    const x =
      l.mode === 'xapic' ? l.mmioRead(0x200 + 0x10 * w, 4) >>> 0 : Number(l.readMsr(0x820 + w) ?? 0n) >>> 0;
    if (x) return w * 32 + 31 - Math.clz32(x);
  }
  return -1;
}

/** Before VM entry of a loaded vCPU: VTPR, the TPR threshold, the event to inject, the windows. */
export function beforeEntry(vm: Vm, v: Vcpu): void {
  const h = vm.host,
    p = vm.platform,
    k = v.index;
  const lapic = p.lapics[k];
  const tpr = lapic.tpr;
  h.mem.write32(v.virtualApic + VTPR, tpr);
  const nmi = v.nmiPending,
    irq = p.hasInterrupt(k);
  let want = 0;
  if (nmi || irq) {
    h.charge(L0_COST.inject);
    const busy = (Number(vmread(h, F.VM_ENTRY_INTR_INFO_FIELD)) & VALID) !== 0;
    const intr = Number(vmread(h, F.GUEST_INTERRUPTIBILITY_INFO));
    let injected = busy;
    if (nmi) {
      // NMI injection needs no MOV SS and no (virtual-)NMI blocking (SDM 3C §26.3.1.5).
      if (!injected && !(intr & (B.BLOCK_MOV_SS | B.BLOCK_NMI))) {
        h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, (VALID | (B.INTR_NMI << 8) | 2) >>> 0);
        v.nmiPending = false;
        injected = true;
      } else want |= B.CPU_NMI_WINDOW;
    }
    if (irq) {
      const open = (vmread(h, F.GUEST_RFLAGS) & RFLAGS_IF) !== 0n && !(intr & (B.BLOCK_STI | B.BLOCK_MOV_SS));
      let vector = -1;
      if (!injected && open) vector = p.acknowledge(k);
      if (vector >= 0) {
        h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, (VALID | (B.INTR_EXT << 8) | vector) >>> 0);
      } else want |= B.CPU_INTR_WINDOW;
    }
  }
  // TPR threshold: the class of the highest interrupt the TPR alone holds back (never above
  // VTPR[7:4], SDM 3C §26.2.1.1), so that lowering CR8 under it exits.
  let threshold = 0;
  if (!irq) {
    const top = highestIrr(lapic);
    if (top >= 0) threshold = Math.min(top >> 4, tpr >> 4);
  }
  if (threshold !== v.tprThreshold) {
    h.vmwrite(F.TPR_THRESHOLD, threshold);
    v.tprThreshold = threshold;
  }
  if (want !== v.windows) {
    const ctl = Number(vmread(h, F.CPU_BASED_VM_EXEC_CONTROL));
    h.vmwrite(F.CPU_BASED_VM_EXEC_CONTROL, ((ctl & ~WINDOWS) | want) >>> 0);
    v.windows = want;
  }
}

/** After a VM exit of a loaded vCPU, before its handler: VTPR back to the vLAPIC, re-inject an interrupted event. */
export function afterExit(vm: Vm, v: Vcpu, r: ExitRecord): void {
  vm.platform.lapics[v.index].tpr = vm.host.mem.read8(v.virtualApic + VTPR);
  reinjectVectored(vm.host, r);
}

/**
 * The event whose delivery exit `r` interrupted (IDT-vectoring information), back into the
 * current VMCS's VM-entry interruption information, for an exit whose handler then resumes the
 * same guest (L1 on vmcs01, or L2 on vmcs02 when L0 handles an L2 exit itself).
 */
export function reinjectVectored(h: VmxHost, r: ExitRecord): void {
  const idt = r.idtVectoringInfo >>> 0;
  if (idt & VALID) {
    // SDM 3C §27.2.4: the event was being delivered when the exit happened; inject it again
    // (bits 30:12 of the entry field are reserved: drop bit 12, "undefined" here).
    h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, (idt & 0x80000fff) >>> 0);
    if (idt & B.INTR_ERRCODE_VALID) h.vmwrite(F.VM_ENTRY_EXCEPTION_ERROR_CODE, r.idtVectoringErrorCode);
    const type = (idt >> 8) & 7;
    // Software interrupts and exceptions: the entry re-executes the INT n / INT3 / INTO (§26.6.1.1).
    if (type === B.INTR_SW_INT || type === B.INTR_SW_EXC || type === B.INTR_PRIV_SW_EXC)
      h.vmwrite(F.VM_ENTRY_INSTRUCTION_LEN, r.instructionLength);
    h.charge(L0_COST.inject);
  }
}
