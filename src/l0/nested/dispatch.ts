/**
 * Exits of a vCPU whose VM runs with --nested. From L1: its VMX instructions are emulated
 * (vmx-insns.ts, entry.ts), CPUID and the VMX MSRs show the virtual VT-x (caps.ts), the rest
 * goes to L0's table as for any guest. From L2: `l0WantsExit`, then `l1WantsExit`
 * (wants.ts); reflected exits go back to L1 (reflect.ts); the rest L0 handles on L1's behalf.
 */
import { VMCS_FIELD as F, VMX_BITS as B, type ExitRecord, type RunOutcome } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import { exitName } from '../vmm/exits.js';
import type { NestedVcpu } from './state.js';
import { l1Write32 } from './l1mem.js';
import { emulateVmxInstruction, vmFailValid } from './vmx-insns.js';
import { nestedEntry, entryFailureToL1, totalExits } from './entry.js';
import { reflectToL1, exit12From } from './reflect.js';
import { l0WantsExit, l1WantsExit, isPageFault } from './wants.js';
import { l2PageFault, isL2PagingExit, l2PagingExit } from './spt02-exits.js';
import { get12 } from './vmcs02.js';
import { handleEpt02Violation, walkEpt12 } from '../mmu/ept02.js';
import { emulateMmio } from '../vmm/mmio.js';
import { injectException, skipInstruction, readGpr, GP } from '../vmm/guest-state.js';
import { MSR_FEATURE_CONTROL, FEATURE_CONTROL_VALUE } from './caps.js';
import { shadowSetCr4 } from '../vmm/cr-access.js';
import { L0_COST } from '../cost.js';

const R = B.R;
const VMX_REASONS = new Set<number>([
  R.VMXON,
  R.VMXOFF,
  R.VMCLEAR,
  R.VMPTRLD,
  R.VMPTRST,
  R.VMREAD,
  R.VMWRITE,
  R.INVEPT,
  R.INVVPID,
  R.VMCALL,
]);

export function nestedDispatch(v: Vcpu, n: NestedVcpu, r: ExitRecord): void {
  if (v.level === 'L2') return l2Exit(v, n, r);
  const h = v.host;
  if (n.hostMsrLoadArmed) {
    // The entry that loaded L1's host MSRs is done: vmcs01's MSR-load list is empty again.
    h.vmwrite(F.VM_ENTRY_MSR_LOAD_COUNT, 0);
    n.hostMsrLoadArmed = false;
  }
  if (
    r.reason === R.VMLAUNCH ||
    r.reason === R.VMRESUME ||
    VMX_REASONS.has(r.reason) ||
    isVmxMsr(v, r) ||
    isCr4Write(r)
  )
    return inL0(v, r, () => {
      if (r.reason === R.VMLAUNCH || r.reason === R.VMRESUME) nestedEntry(v, n, r, r.reason === R.VMLAUNCH);
      else if (VMX_REASONS.has(r.reason)) emulateVmxInstruction(v, n, r);
      else if (r.reason === R.CR_ACCESS) cr4Write(v, r);
      else vmxMsr(v, n, r);
    });
  if (cr0FixedViolation(v, n, r)) return inL0(v, r, () => injectException(h, GP, 0));
  if (r.reason === R.CPUID) {
    const leaf = Number(h.getReg(0) & 0xffffffffn);
    v.handleInL0(r);
    // L1 sees VMX (CPUID.1:ECX.VMX, SDM 3C §23.6).
    if (leaf === 1) h.setReg(1, h.getReg(1) | 0x20n);
    return;
  }
  v.handleInL0(r);
}

/** Run `work` as L0 handler work for exit `r` (counted and charged like the table's handlers). */
function inL0(v: Vcpu, r: ExitRecord, work: () => void, level = v.level, handledBy = 'L0'): void {
  const h = v.host;
  const t0 = h.cycles;
  h.charge(L0_COST.dispatch);
  v.vm.stats.countExit(level, exitName(r.reason), handledBy);
  work();
  v.vm.stats.l0 += h.cycles - t0;
}

function isVmxMsr(v: Vcpu, r: ExitRecord): boolean {
  if (r.reason !== R.MSR_READ && r.reason !== R.MSR_WRITE) return false;
  const ecx = Number(v.host.getReg(1) & 0xffffffffn);
  return ecx === MSR_FEATURE_CONTROL || (ecx >= 0x480 && ecx <= 0x493);
}
/** RDMSR of IA32_FEATURE_CONTROL and the capability MSRs; WRMSR to them #GP (locked / read-only). */
function vmxMsr(v: Vcpu, n: NestedVcpu, r: ExitRecord): void {
  const h = v.host;
  h.charge(L0_COST.msr);
  const ecx = Number(h.getReg(1) & 0xffffffffn);
  if (r.reason === R.MSR_WRITE) return injectException(h, GP, 0);
  const value = ecx === MSR_FEATURE_CONTROL ? FEATURE_CONTROL_VALUE : n.caps.msrs.get(ecx);
  if (value === undefined) return injectException(h, GP, 0);
  h.setReg(0, value & 0xffffffffn);
  h.setReg(2, value >> 32n);
  skipInstruction(h, r.instructionLength);
}

function isCr4Write(r: ExitRecord): boolean {
  return r.reason === R.CR_ACCESS && (r.qualification & 0x3fn) === 4n;
}
/** MOV to CR0 by L1 in VMX operation that clears a fixed-1 bit (PE, NE, PG): #GP (SDM 3C §23.8). */
function cr0FixedViolation(v: Vcpu, n: NestedVcpu, r: ExitRecord): boolean {
  if (!n.vmxon || r.reason !== R.CR_ACCESS || (r.qualification & 0x3fn) !== 0n) return false;
  const value = readGpr(v.host, Number((r.qualification >> 8n) & 15n));
  const fixed0 = BigInt(n.caps.cr0Fixed0 >>> 0);
  return (value & fixed0) !== fixed0;
}
/** MOV to CR4 by L1: with --nested, CR4.VMXE is L1's to set (L0 keeps it set underneath). */
function cr4Write(v: Vcpu, r: ExitRecord): void {
  const h = v.host;
  h.charge(L0_COST.cr);
  const value = readGpr(h, Number((r.qualification >> 8n) & 15n));
  const n = v.nested!;
  // Clearing VMXE in VMX operation is #GP (fixed bit, §23.8).
  if (n.vmxon && !(value & 0x2000n)) return injectException(h, GP, 0);
  if (value & ~BigInt(n.caps.cr4Fixed1 >>> 0)) return injectException(h, GP, 0);
  if (v.vm.mmu === 'shadow') {
    // L0 shadowing L1: shadow paging's checks and root switch (which know no VMXE: VMX is hidden
    // without --nested); the read shadow then shows L1 its VMXE.
    if (!shadowSetCr4({ vm: v.vm, vcpu: v, host: h }, value & ~0x2000n)) return injectException(h, GP, 0);
    h.vmwrite(F.CR4_READ_SHADOW, value);
    return skipInstruction(h, r.instructionLength);
  }
  h.vmwrite(F.CR4_READ_SHADOW, value);
  h.vmwrite(F.GUEST_CR4, value | 0x2000n);
  skipInstruction(h, r.instructionLength);
}

/** An exit while L2 ran on vmcs02. */
function l2Exit(v: Vcpu, n: NestedVcpu, r: ExitRecord): void {
  const h = v.host;
  const v12 = n.current!;
  if (r.vmxAbort) {
    // vmcs02's MSR-store list is L1's: an MSR it names cannot be read. On hardware L1's logical
    // processor takes a VMX abort and shuts down (SDM 3C §27.7); here at the first exit from L2.
    l1Write32(v.vm, v12.addr + 4, r.vmxAbort);
    return v.stop(`VMX abort ${r.vmxAbort}: L1's VM-exit MSR-store list names an MSR that cannot be read`);
  }
  const t0 = h.cycles;
  h.charge(L0_COST.reflectDecision);
  const proc12 = Number(get12(v12, F.CPU_BASED_VM_EXEC_CONTROL));
  const ept12 =
    proc12 & B.CPU_SECONDARY && Number(get12(v12, F.SECONDARY_VM_EXEC_CONTROL)) & B.SEC_EPT
      ? Number(get12(v12, F.EPT_POINTER))
      : -1;
  const eptFault = r.reason === R.EPT_VIOLATION || r.reason === R.EPT_MISCONFIG;
  const l0Shadow = v.vm.mmu === 'shadow';
  if (l0WantsExit(r, l0Shadow) && !(eptFault && ept12 >= 0)) {
    // A physical interrupt or NMI, or an EPT fault in ept01 (L1 gave L2 its own physical address
    // space: an access outside RAM is L1's MMIO, emulated on L1's platform as for L1).
    v.vm.stats.l0 += h.cycles - t0;
    // Shadow-on-shadow: every #PF of L2 goes to spt02 first (spt02-exits.ts).
    if (l0Shadow && isPageFault(r)) return l2PageFaultExit(v, n, r);
    return v.handleInL0(r);
  }
  if (eptFault) {
    v.vm.stats.l0 += h.cycles - t0;
    if (r.reason === R.EPT_MISCONFIG)
      // ept02 entries are L0's and well formed: a misconfiguration cannot come from them.
      return inL0(v, r, () =>
        v.stop(`EPT misconfiguration in ept02 at 0x${r.guestPhysicalAddress.toString(16)}`),
      );
    let out: ReturnType<typeof handleEpt02Violation> | undefined;
    inL0(
      v,
      r,
      () => {
        out = handleEpt02Violation(v, n, r, ept12);
      },
      'L2',
      'L0',
    );
    if (!out || out.kind === 'fixed') return;
    if (out.kind === 'l1-mmio') {
      // ept12 maps the page to one of L1's devices (e.g. L1 passes its xAPIC page through):
      // L0 emulates the access on L1's platform, fetching L2's instruction through L2's page
      // tables in L2-physical memory, which ept12 translates (as KVM does for nested MMIO).
      const l1Gpa = out.l1Gpa;
      const l2Memory = {
        host: v.vm.host,
        gpaToHpa: (gpa2: number): number => {
          const w = walkEpt12(v, ept12, gpa2);
          return w.ok ? v.vm.gpaToHpa(w.l1Gpa) : -1;
        },
      };
      return inL0(
        v,
        r,
        () =>
          emulateMmio(
            { vm: v.vm, vcpu: v, host: h, exit: r },
            l1Gpa,
            (Number(r.qualification) & 2) !== 0,
            l2Memory,
          ),
        'L2',
        'L0',
      );
    }
    const x =
      out.kind === 'violation'
        ? exit12From(r, { qualification: out.qualification })
        : exit12From(r, { reason: R.EPT_MISCONFIG, qualification: 0n });
    return reflect(v, n, r, x);
  }
  if (l1WantsExit(v, v12, r)) {
    v.vm.stats.l0 += h.cycles - t0;
    return reflect(v, n, r, exit12From(r));
  }
  v.vm.stats.l0 += h.cycles - t0;
  // Shadow-on-shadow: L2's CR accesses, INVLPG, INVPCID and EFER accesses act on L2's registers.
  if (isL2PagingExit(v, r)) return inL0(v, r, () => l2PagingExit(v, n, r), 'L2', 'L0');
  v.handleInL0(r);
}

/** A #PF exit from L2 under shadow-on-shadow: spt02 filled (or #PF to L2) by L0, or reflected. */
function l2PageFaultExit(v: Vcpu, n: NestedVcpu, r: ExitRecord): void {
  const h = v.host;
  const t0 = h.cycles;
  const out = l2PageFault(v, n, r, (x) => l1WantsExit(v, n.current!, x));
  v.vm.stats.l0 += h.cycles - t0;
  if (out.kind === 'reflect') return reflect(v, n, r, out.exit);
  inL0(v, r, () => {}, 'L2', 'L0');
}

function reflect(v: Vcpu, n: NestedVcpu, r: ExitRecord, x: ReturnType<typeof exit12From>): void {
  inL0(
    v,
    r,
    () => {
      reflectToL1(v, n, x, true);
      // From here until L1 resumes L2, L0's exits are this reflected exit's cost.
      n.reflectedAtExits = totalExits(v) - 1;
    },
    'L2',
    'L1',
  );
}

/** vmcs02 failed a VM-entry check vmcs12 passed (its MSR-load list): L1 sees the entry failure. */
export function vmcs02EntryFailed(v: Vcpu, n: NestedVcpu, r: RunOutcome): void {
  if (r.kind === 'entry-failure') return entryFailureToL1(v, n, r.reason, Number(r.qualification));
  if (r.kind === 'vmfail' && !r.status.ok && !r.status.invalid) {
    // VMfailValid on vmcs02 (e.g. 26, events blocked by MOV SS): L1's VMLAUNCH/VMRESUME fails so.
    const h = v.host;
    h.vmptrld(v.vmcs01);
    v.level = 'L1';
    vmFailValid(n, h, r.status.error);
    return skipInstruction(h, Number(h.vmread(F.VM_EXIT_INSTRUCTION_LEN) as bigint));
  }
  v.stop(`VM entry to L2 failed: ${JSON.stringify(r)}`);
}
