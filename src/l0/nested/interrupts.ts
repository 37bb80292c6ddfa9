/**
 * L1's interrupts and NMIs while its vCPU runs L2 (KVM's vmx_check_nested_events and
 * inject_pending_event in guest mode).
 *
 * L1's virtual platform (vmm/vplatform.ts) raises interrupts for L1's CPU. On hardware, an
 * interrupt arriving while that CPU runs L2 meets vmcs12's pin-based controls (SDM 3C §25.2):
 *  - "external-interrupt exiting" = 1: a VM exit to L1, reason 1, whatever L2's RFLAGS.IF
 *    (only STI/MOV-SS blocking holds it for an instruction, as the hardware model does); with
 *    the exit control "acknowledge interrupt on exit" the interrupt controller is acknowledged
 *    and the vector goes into the VM-exit interruption information (§27.2.2), else it stays
 *    requested and L1 takes it through its own IDT once it sets RFLAGS.IF;
 *  - = 0: the interrupt is delivered to L2 through L2's IDT when L2 can take it (RFLAGS.IF = 1,
 *    no STI/MOV-SS blocking), acknowledged at L1's virtual LAPIC/PIC as L2 ran on L1's CPU.
 * NMIs likewise with "NMI exiting" (exit reason 0, interruption type NMI, vector 2; "VM exits
 * caused directly by NMIs cause blocking by NMI", SDM 3C §27.5 "Updating non-register state").
 *
 * L0 synthesizes the VM exit (no hardware exit from L2 stands behind it): the normal
 * reflection path (reflect.ts) with an exit record of its own. Delivery to L2 goes through
 * vmcs02's VM-entry interruption information, or, when L2 cannot take it yet, interrupt- or
 * NMI-window exiting in vmcs02 that is L0's own (`n.windows02`): its exit comes back to L0
 * unless vmcs12 has the same control (wants.ts reflects it then: L1's window).
 *
 * Priority and blocking, as at an instruction boundary of the hardware (src/hw/cpu/cpu.ts
 * `nonRootEvents`): an event being injected into L2 (L1's VM-entry injection, or L0's
 * re-injection of an IDT-vectored event) is delivered first, and the exit follows before the
 * handler's first instruction (the injection is part of VM entry, §26.6). So L0 enters L2 with
 * a budget of 0 cycles (`Vcpu.entryBudget`) and synthesizes the exit at the next boundary; it
 * does the same right after L1's VMLAUNCH/VMRESUME, so that vmcs02 always holds a hardware
 * exit's state (guest state, MSR-store list) when it is synced to vmcs12. L1's own NMI- and
 * interrupt-window exits, when open, come before an external-interrupt exit (the hardware
 * exits for them and L0 reflects them).
 *
 * Physical interrupts and NMIs are L0's (vmcs02 has vmcs01's external-interrupt and NMI
 * exiting, wants.ts `l0WantsExit`): L0 drives no physical device, so none reach L1.
 */
import { VMCS_FIELD as F, VMX_BITS as B } from '../hw.js';
import type { Vm } from '../vm.js';
import type { Vcpu } from '../vmm/vcpu.js';
import type { NestedVcpu } from './state.js';
import { vmread } from '../vmm/guest-state.js';
import { exitName } from '../vmm/exits.js';
import { get12 } from './vmcs02.js';
import { reflectToL1, synthesizedExit12, type Exit12 } from './reflect.js';
import { totalExits } from './entry.js';
import { L0_COST } from '../cost.js';

const VALID = 0x80000000;
const RFLAGS_IF = 0x200n;
const WINDOWS = B.CPU_INTR_WINDOW | B.CPU_NMI_WINDOW;

/** An exit L0 makes up for L1: an interrupt or NMI that arrives while L2 runs. */
const synthesizedExit = (reason: number, interruptionInfo: number): Exit12 =>
  synthesizedExit12(reason, { interruptionInfo });

/** Reflect a synthesized exit to L1; counted as an L2 exit handled by L1, like a reflected one. */
function exitToL1(v: Vcpu, n: NestedVcpu, x: Exit12): void {
  const h = v.host;
  h.charge(L0_COST.dispatch);
  v.vm.stats.countExit('L2', exitName(x.reason), 'L1');
  reflectToL1(v, n, x, true);
  // From here until L1 resumes L2, L0's exits are this exit's cost (as dispatch.ts `reflect`).
  n.reflectedAtExits = totalExits(v) - 1;
}

/**
 * Before an entry to L2 (vmcs02 current): L1's pending NMI and interrupts, as an exit to L1,
 * an injection into L2 or a window. After an exit to L1 the vCPU is at level L1 with vmcs01
 * current, and the caller goes on with L1's own injection (vmm/inject.ts).
 */
export function beforeL2Entry(vm: Vm, v: Vcpu, n: NestedVcpu): void {
  const h = vm.host,
    p = vm.platform,
    k = v.index;
  const v12 = n.current!;
  const nmi = v.nmiPending,
    irq = p.hasInterrupt(k);
  let want = 0;
  if (nmi || irq) {
    h.charge(L0_COST.inject);
    const pin12 = Number(get12(v12, F.PIN_BASED_VM_EXEC_CONTROL));
    const proc12 = Number(get12(v12, F.CPU_BASED_VM_EXEC_CONTROL));
    let busy = (Number(vmread(h, F.VM_ENTRY_INTR_INFO_FIELD)) & VALID) !== 0;
    const intr = Number(vmread(h, F.GUEST_INTERRUPTIBILITY_INFO));
    const movSs = (intr & B.BLOCK_MOV_SS) !== 0,
      shadow = (intr & (B.BLOCK_STI | B.BLOCK_MOV_SS)) !== 0;
    const ifSet = (vmread(h, F.GUEST_RFLAGS) & RFLAGS_IF) !== 0n;
    // L1's own windows, when open, exit before an external interrupt does (hardware order).
    const l1Window =
      (proc12 & B.CPU_NMI_WINDOW && !(intr & B.BLOCK_NMI) && !movSs) ||
      (proc12 & B.CPU_INTR_WINDOW && ifSet && !shadow);
    // An exit to L1 needs a hardware exit's state in vmcs02 (guest state, the VM-exit MSR-store
    // list): right after L1's VMLAUNCH/VMRESUME, L2 is entered for 0 cycles first.
    const fresh = !n.l2Ran;
    // An NMI exit to come: no interrupt goes to L2 before it (NMIs have priority).
    let nmiExitSoon = false;
    if (nmi) {
      if (pin12 & B.PIN_NMI) {
        // NMI exiting: the NMI exits whatever L2's (virtual-)NMI blocking; MOV-SS blocking holds
        // it for one instruction (§24.4.2 Table 24-3, §25.2).
        nmiExitSoon = busy || fresh || movSs;
        if (busy || fresh) v.entryBudget = 0;
        else if (movSs) v.entryBudget = 1;
        else {
          v.nmiPending = false;
          exitToL1(v, n, synthesizedExit(B.R.EXCEPTION_NMI, VALID | (B.INTR_NMI << 8) | 2));
          // A VM exit caused directly by an NMI leaves blocking by NMI in effect (§27.5): vmcs01
          // has virtual NMIs, so L1's next IRET lifts it.
          const i01 = Number(vmread(h, F.GUEST_INTERRUPTIBILITY_INFO));
          h.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, (i01 | B.BLOCK_NMI) >>> 0);
          return;
        }
      } else if (!busy && !(intr & (B.BLOCK_MOV_SS | B.BLOCK_NMI))) {
        // Delivered to L2 (§26.6: NMI injection; vmcs02 has virtual NMIs, so the delivery sets
        // the blocking bit L1 reads as L2's blocking by NMI).
        h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, (VALID | (B.INTR_NMI << 8) | 2) >>> 0);
        v.nmiPending = false;
        busy = true;
      } else want |= B.CPU_NMI_WINDOW;
    }
    if (irq) {
      if (pin12 & B.PIN_EXT_INTR) {
        if (busy || (fresh && !l1Window)) v.entryBudget = 0;
        else if (shadow) v.entryBudget = 1;
        else if (!l1Window) {
          const exit12 = Number(get12(v12, F.VM_EXIT_CONTROLS));
          if (!(exit12 & B.EXIT_ACK_INTR)) {
            // Not acknowledged: the interruption information is invalid and the interrupt stays
            // requested at L1's interrupt controller (§27.2.2).
            return exitToL1(v, n, synthesizedExit(B.R.EXTERNAL_INTERRUPT, 0));
          }
          const vector = p.acknowledge(k);
          if (vector >= 0)
            return exitToL1(
              v,
              n,
              synthesizedExit(B.R.EXTERNAL_INTERRUPT, (VALID | (B.INTR_EXT << 8) | vector) >>> 0),
            );
        }
      } else if (!nmiExitSoon) {
        const open = ifSet && !shadow;
        const vector = !busy && open ? p.acknowledge(k) : -1;
        if (vector >= 0) h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, (VALID | (B.INTR_EXT << 8) | vector) >>> 0);
        else if (!open || busy) want |= B.CPU_INTR_WINDOW;
      }
    }
  }
  if (want !== n.windows02 || want) {
    // vmcs02's window controls: L1's (vmcs12) plus L0's own. prepareVmcs02 may have rewritten
    // the processor-based controls since, so they are read back rather than cached.
    const ctl = Number(vmread(h, F.CPU_BASED_VM_EXEC_CONTROL));
    const proc12 = Number(get12(v12, F.CPU_BASED_VM_EXEC_CONTROL));
    const next = ((ctl & ~WINDOWS) | (proc12 & WINDOWS) | want) >>> 0;
    if (next !== ctl >>> 0) h.vmwrite(F.CPU_BASED_VM_EXEC_CONTROL, next);
    n.windows02 = want;
  }
}
