/**
 * The host interface (DESIGN.md "The hardware boundary"): how a hypervisor written
 * in TypeScript drives VT-x, the way KVM drives a real CPU. Each call mirrors one
 * VMX instruction and goes through the same implementation x86 code uses; the only
 * difference is at a VM exit, which is returned to the caller as an ExitRecord
 * instead of loading the host-state area.
 *
 * The TypeScript host presents itself as a 64-bit host at CPL 0: the host-state
 * area must describe a valid 64-bit host (the VM-entry checks of SDM 3C §26.2.2-4
 * still apply), although it is never loaded.
 */
import type { Cpu } from '../cpu/cpu.js';
import type { PhysMem } from '../mmu/physmem.js';
import type { EventQueue } from '../events-queue.js';
import { MachineStop } from '../cpu/fault.js';
import { F } from './f.js';
import * as B from './bits.js';
import { VMCS_REVISION_ID } from './caps.js';
import { cpuidLeaf } from '../cpu/cpuid.js';

/** Result of a VMX instruction: success, VMfailInvalid, or VMfailValid with its error number (§30.4). */
export type VmxStatus =
  { ok: true } | { ok: false; invalid: true } | { ok: false; invalid: false; error: number };

/** A VM exit as the TypeScript host sees it (the VM-exit information fields, §24.9). */
export interface ExitRecord {
  kind: 'exit';
  /** Basic exit reason (bits 15:0) and the full field. */
  reason: number;
  rawReason: number;
  qualification: bigint;
  guestLinearAddress: bigint;
  guestPhysicalAddress: bigint;
  instructionLength: number;
  instructionInfo: number;
  interruptionInfo: number;
  interruptionErrorCode: number;
  idtVectoringInfo: number;
  idtVectoringErrorCode: number;
  /**
   * A VMX abort during this exit (SDM 3C §27.7; 1: the VM-exit MSR-store list named an MSR
   * that cannot be read). On hardware the processor shuts down; a TypeScript host is told.
   */
  vmxAbort?: number;
}
/** A VM entry that failed after the VMLAUNCH/VMRESUME checks passed (§26.8: reason with bit 31). */
export interface EntryFailure {
  kind: 'entry-failure';
  reason: number;
  qualification: bigint;
  /** The name of the entry check that failed. */
  check: string;
}
/** VMLAUNCH/VMRESUME failed as an instruction (VMfailInvalid/VMfailValid). */
export interface EntryFail {
  kind: 'vmfail';
  status: VmxStatus;
  check: string;
}
/**
 * The guest ran out of the cycle budget without exiting: the host's timer. The guest state is
 * saved as on any VM exit (the exit and the next entry cost what they cost), so VMRESUME
 * continues where the guest was, whichever VMCS was loaded in between.
 */
export interface Timeout {
  kind: 'timeout';
}
/** A saved MSR file and TSC offset (VmxHost.saveMsrState). */
export interface MsrState {
  readonly msrs: ReadonlyMap<number, bigint>;
  readonly tscOffset: number;
}
export type RunOutcome = ExitRecord | EntryFailure | EntryFail | Timeout;

export class VmxHost {
  constructor(
    readonly cpu: Cpu,
    readonly clock: EventQueue,
  ) {}
  get mem(): PhysMem {
    return this.cpu.mem;
  }
  /**
   * Guest general-purpose registers (not part of the VMCS: on hardware the guest runs with the
   * CPU's registers, which the host saves and restores around VM entry; KVM_GET/SET_REGS).
   * Order: RAX RCX RDX RBX RSP(unused: in the VMCS) RBP RSI RDI R8-R15.
   */
  getReg(r: number): bigint {
    return BigInt.asUintN(64, (BigInt(this.cpu.rhi[r]) << 32n) | BigInt(this.cpu.rlo[r] >>> 0));
  }
  setReg(r: number, v: bigint | number): void {
    const b = BigInt.asUintN(64, BigInt(v));
    this.cpu.rlo[r] = Number(b & 0xffffffffn) | 0;
    this.cpu.rhi[r] = Number(b >> 32n) | 0;
  }
  /**
   * The guest's CR2. CR2 is not part of the VMCS: the guest runs with the CPU's CR2, and a host
   * that injects a #PF (VM-entry event injection does not write CR2, SDM 3C §26.6.1.1) or that
   * switches between vCPUs loads it itself, as KVM does before VM entry. 64-bit value.
   */
  getCr2(): bigint {
    return BigInt.asUintN(64, BigInt(this.cpu.cr2));
  }
  setCr2(v: bigint | number): void {
    this.cpu.cr2 = Number(BigInt.asIntN(64, BigInt(v)));
  }
  /** What CPUID reports on this hardware (KVM_GET_SUPPORTED_CPUID): [EAX, EBX, ECX, EDX]. */
  cpuid(leaf: number, sub: number): [number, number, number, number] {
    const o = cpuidLeaf(this.cpu, leaf >>> 0, sub >>> 0);
    return [o[0] >>> 0, o[1] >>> 0, o[2] >>> 0, o[3] >>> 0];
  }
  /** A VMX capability MSR (IA32_VMX_BASIC …), as a hypervisor reads it with RDMSR. */
  capability(msr: number): bigint {
    return this.cpu.vmx.caps.msrs.get(msr) ?? 0n;
  }
  /** Simulated cycles of this CPU; a TypeScript host charges its own work here (src/l0/cost.ts). */
  get cycles(): number {
    return this.cpu.cycles;
  }
  /**
   * The processor state VMX does not switch and a guest may change without a VM exit (its MSR
   * bitmap lets WRMSR through): the MSR file (SYSCALL MSRs, KERNEL_GS_BASE, TSC_AUX, MTRRs, …)
   * and the TSC. A host running several guests on this CPU saves it when it puts a vCPU and
   * restores it when it loads another, as KVM does at vcpu_put/vcpu_load.
   */
  saveMsrState(): MsrState {
    return { msrs: new Map(this.cpu.msrs), tscOffset: this.cpu.tscOffset };
  }
  /** Restore a saved MSR state; `undefined` is the power-on state (no MSR written, TSC from 0). */
  loadMsrState(s: MsrState | undefined): void {
    const msrs = this.cpu.msrs;
    msrs.clear();
    if (s) for (const [k, v] of s.msrs) msrs.set(k, v);
    this.cpu.tscOffset = s ? s.tscOffset : 0;
  }
  /** Instructions this CPU has retired (guest instructions: the TypeScript host executes none). */
  get instructions(): number {
    return this.cpu.instret;
  }
  charge(cycles: number): void {
    this.cpu.cycles += cycles;
  }

  /** The revision identifier a VMXON/VMCS region must start with (IA32_VMX_BASIC[30:0]). */
  get revisionId(): number {
    return VMCS_REVISION_ID;
  }
  private status(): VmxStatus {
    const s = this.cpu.vmx.status;
    if (s === 0) return { ok: true };
    if (s === -1) return { ok: false, invalid: true };
    return { ok: false, invalid: false, error: s };
  }

  vmxon(regionHpa: number): VmxStatus {
    const u = this.cpu.vmx;
    u.tsHost = true;
    if (u.on) {
      u.fail(B.E.VMXON_IN_ROOT);
      return this.status();
    }
    if (!u.validAddr(regionHpa) || (this.mem.read32(regionHpa) & 0x7fffffff) !== VMCS_REVISION_ID) {
      u.failInvalid();
      return this.status();
    }
    u.on = true;
    u.vmxonPtr = regionHpa;
    u.current = undefined;
    // The TypeScript host runs as an OS does after its firmware: caches enabled. VM entries and
    // exits leave CR0.CD/NW as they are (SDM 3C §26.3.2.1, §27.5.1), so without this every guest
    // would inherit the reset value's CD=NW=1.
    this.cpu.cr0 &= ~0x60000000;
    u.succeed();
    return this.status();
  }
  vmxoff(): VmxStatus {
    const u = this.cpu.vmx;
    for (const v of u.cache.values()) v.store(this.mem);
    u.cache.clear();
    u.on = false;
    u.current = undefined;
    u.succeed();
    return this.status();
  }
  vmclear(hpa: number): VmxStatus {
    const u = this.cpu.vmx;
    if (!u.validAddr(hpa)) u.fail(B.E.VMCLEAR_INVALID_ADDR);
    else if (hpa === u.vmxonPtr) u.fail(B.E.VMCLEAR_VMXON_PTR);
    else {
      u.clear(hpa);
      u.succeed();
    }
    return this.status();
  }
  vmptrld(hpa: number): VmxStatus {
    const u = this.cpu.vmx;
    const err = u.load(hpa);
    if (err) u.fail(err);
    else u.succeed();
    return this.status();
  }
  vmptrst(): number {
    return this.cpu.vmx.current ? this.cpu.vmx.current.addr : -1;
  }
  /** VMREAD: the field value (64-bit fields whole), or the failure. */
  vmread(enc: number): bigint | VmxStatus {
    const u = this.cpu.vmx;
    if (!u.current) {
      u.failInvalid();
      return this.status();
    }
    if (!u.supportsField(enc)) {
      u.failValid(B.E.VMRW_UNSUPPORTED_FIELD);
      return this.status();
    }
    const lo = u.readField(u.current, enc),
      hi = u.fieldHi;
    u.succeed();
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }
  vmwrite(enc: number, value: bigint | number): VmxStatus {
    const u = this.cpu.vmx;
    if (!u.current) u.failInvalid();
    else if (!u.supportsField(enc)) u.failValid(B.E.VMRW_UNSUPPORTED_FIELD);
    else if (u.isReadOnly(enc) && !u.caps.vmwriteAnyField) u.failValid(B.E.VMWRITE_READ_ONLY);
    else {
      const v = BigInt.asUintN(64, BigInt(value));
      u.writeField(u.current, enc, Number(v & 0xffffffffn) | 0, Number(v >> 32n) | 0);
      u.succeed();
    }
    return this.status();
  }
  invept(type: number, eptp: bigint): VmxStatus {
    const u = this.cpu.vmx;
    if (type !== 1 && type !== 2) u.fail(B.E.INVEPT_INVVPID_INVALID_OPERAND);
    else {
      u.tlbs.flushEptp(type === 1 ? Number(eptp) : undefined);
      u.succeed();
    }
    return this.status();
  }
  invvpid(type: number, vpid: number, linear = 0): VmxStatus {
    const u = this.cpu.vmx;
    if (type > 3 || (type !== 2 && vpid === 0)) u.fail(B.E.INVEPT_INVVPID_INVALID_OPERAND);
    else {
      if (type === 0) u.tlbs.flushAddress(vpid, Math.floor(linear / 4096));
      else if (type === 2) u.tlbs.flushAllVpids();
      else u.tlbs.flushVpid(vpid, type === 3);
      u.succeed();
    }
    return this.status();
  }

  vmlaunch(maxCycles = Infinity): RunOutcome {
    return this.run(true, maxCycles);
  }
  vmresume(maxCycles = Infinity): RunOutcome {
    return this.run(false, maxCycles);
  }

  /** VM entry, then run the guest (firing timer events) until it exits. */
  private run(launch: boolean, maxCycles: number): RunOutcome {
    const cpu = this.cpu;
    const u = cpu.vmx;
    u.tsHost = true;
    u.exitReady = false;
    u.status = 0;
    try {
      u.enter(launch);
    } catch (e) {
      // Event injection at VM entry can itself cause a VM exit (e.g. an EPT violation while delivering).
      if (!cpu.vmexitCaught(e)) throw e;
    }
    if (u.status !== 0) return { kind: 'vmfail', status: this.status(), check: u.lastEntryCheck };
    if (u.exitReady && (u.current!.get32(F.VM_EXIT_REASON) & 0x80000000) === 0) {
      cpu.deadline = Infinity;
      return this.exitRecord(); // the entry succeeded and the injected event exited at once
    }
    if (u.exitReady) {
      const v = u.current!;
      return {
        kind: 'entry-failure',
        reason: v.get32(F.VM_EXIT_REASON) & 0xffff,
        qualification: BigInt(v.getU(F.EXIT_QUALIFICATION)),
        check: u.lastEntryCheck,
      };
    }
    const end = cpu.cycles + maxCycles;
    while (!u.exitReady) {
      if (cpu.cycles >= end) {
        // The host's budget ran out: on hardware, the host's timer interrupt. It is a real VM
        // exit (guest state saved into the VMCS, back to root operation, the exit cost charged),
        // so the host may load another VMCS before it resumes this one. The VMCS records it as
        // an external-interrupt exit (reason 1, no vector acknowledged).
        u.setExit(B.R.EXTERNAL_INTERRUPT);
        u.completeExit();
        cpu.deadline = Infinity;
        return { kind: 'timeout' };
      }
      const next = Math.min(end, this.clock.nextTime(), u.preemptDeadline, cpu.cycles + 100_000);
      cpu.deadline = Math.max(next, cpu.cycles + 1);
      const n = cpu.run(1e9);
      if (n === 0 && (cpu.halted || cpu.waitForSipi || cpu.shutdownActivity) && !u.exitReady)
        cpu.cycles = Math.max(cpu.cycles, next);
      try {
        this.clock.runDue(cpu.cycles);
      } catch (e) {
        if (e instanceof MachineStop) throw e;
        throw e;
      }
    }
    cpu.deadline = Infinity;
    return this.exitRecord();
  }

  private exitRecord(): ExitRecord {
    const v = this.cpu.vmx.current!;
    const big = (enc: number): bigint =>
      BigInt.asUintN(64, (BigInt(v.getHi(enc)) << 32n) | BigInt(v.get32(enc)));
    const raw = v.get32(F.VM_EXIT_REASON);
    return {
      kind: 'exit',
      reason: raw & 0xffff,
      rawReason: raw,
      qualification: big(F.EXIT_QUALIFICATION),
      guestLinearAddress: big(F.GUEST_LINEAR_ADDRESS),
      guestPhysicalAddress: big(F.GUEST_PHYSICAL_ADDRESS),
      instructionLength: v.get32(F.VM_EXIT_INSTRUCTION_LEN),
      instructionInfo: v.get32(F.VMX_INSTRUCTION_INFO),
      interruptionInfo: v.get32(F.VM_EXIT_INTR_INFO),
      interruptionErrorCode: v.get32(F.VM_EXIT_INTR_ERROR_CODE),
      idtVectoringInfo: v.get32(F.IDT_VECTORING_INFO_FIELD),
      idtVectoringErrorCode: v.get32(F.IDT_VECTORING_ERROR_CODE),
      ...(this.cpu.vmx.vmxAbort ? { vmxAbort: this.cpu.vmx.vmxAbort } : {}),
    };
  }
}

/**
 * Write a flat guest segment state into the current VMCS: CS (with access rights `csAr`,
 * e.g. 0xa09b for 64-bit or 0xc09b for 32-bit code), SS/DS/ES/FS/GS as flat read/write data,
 * a busy TSS of `trLimit`, an unusable LDTR. A convenience for hosts building vmcs01.
 */
export function writeFlatSegments(
  h: VmxHost,
  seg: { cs: number; ds: number; csAr: number; tr?: number; trLimit: number },
): void {
  const w = (enc: number, v: number): void => {
    const r = h.vmwrite(enc, v);
    if (!r.ok) throw new Error(`VMWRITE 0x${enc.toString(16)} failed`);
  };
  w(F.GUEST_CS_SELECTOR, seg.cs);
  w(F.GUEST_CS_AR_BYTES, seg.csAr);
  w(F.GUEST_CS_LIMIT, 0xffffffff);
  for (const [sel, ar, lim] of [
    [F.GUEST_SS_SELECTOR, F.GUEST_SS_AR_BYTES, F.GUEST_SS_LIMIT],
    [F.GUEST_DS_SELECTOR, F.GUEST_DS_AR_BYTES, F.GUEST_DS_LIMIT],
    [F.GUEST_ES_SELECTOR, F.GUEST_ES_AR_BYTES, F.GUEST_ES_LIMIT],
    [F.GUEST_FS_SELECTOR, F.GUEST_FS_AR_BYTES, F.GUEST_FS_LIMIT],
    [F.GUEST_GS_SELECTOR, F.GUEST_GS_AR_BYTES, F.GUEST_GS_LIMIT],
  ]) {
    w(sel, seg.ds);
    w(ar, 0xc093);
    w(lim, 0xffffffff);
  }
  w(F.GUEST_TR_SELECTOR, seg.tr ?? 0);
  w(F.GUEST_TR_AR_BYTES, 0x8b);
  w(F.GUEST_TR_LIMIT, seg.trLimit);
  w(F.GUEST_LDTR_AR_BYTES, 0x10000);
}
