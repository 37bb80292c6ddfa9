/**
 * The VMX unit of one logical processor (SDM 3C chapters 23-30): VMX operation,
 * the current-VMCS pointer, the VMX instructions, VM entry and VM exit, and the
 * state non-root operation needs (cached controls, the exiting decisions).
 *
 * One implementation, two callers (DESIGN.md "The hardware boundary"): x86 code in
 * root mode executes VMX instructions (exec handlers call into this unit), and the
 * TypeScript L0 drives the same unit through the host interface (host.ts). The
 * difference is only what happens at a VM exit: for x86 root code the host state
 * is loaded from the VMCS; for the TypeScript host the exit is returned to it.
 */
import type { Cpu } from '../cpu/cpu.js';
import { ABORT } from '../cpu/fault.js';
import { CF, PF, AF, ZF, SF, OF, UD, GP, Mode } from '../cpu/regs.js';
import { type Vmcs, LAUNCH_CLEAR, LAUNCH_LAUNCHED } from './vmcs.js';
import { VmxCaps, VMCS_REVISION_ID, type VmxOptions } from './caps.js';
import { F } from './f.js';
import * as B from './bits.js';
import { saveGuestState, loadHostState, exitMsrLists, exitMsrStore, exitMsrLoad } from './exit.js';
import { vmEntry } from './entry.js';
import { MAXPHYADDR } from '../mmu/paging.js';
import { EptWalker, EPT_OK, EPT_VIOLATION } from '../mmu/ept.js';
import { TlbContexts } from './tlb-contexts.js';
import { newVmcs, fieldSupported, fieldReadOnly, readVmcsField, writeVmcsField } from './field-access.js';

export { VMEXIT_MARK } from '../cpu/fault.js';
import { VMEXIT_MARK } from '../cpu/fault.js';

export interface ExitInfo {
  reason: number;
  qualification: number;
  guestLinear: number;
  guestPhysical: number;
  instructionLength: number;
  instructionInfo: number;
  intrInfo: number;
  intrError: number;
}

export class VmxUnit {
  readonly caps: VmxCaps;
  /** In VMX operation (after VMXON). */
  on = false;
  vmxonPtr = -1;
  /** Current VMCS (undefined = invalid pointer, all ones). */
  current: Vmcs | undefined;
  /** VMCSs cached on the processor, by region address (the "active" ones). */
  readonly cache = new Map<number, Vmcs>();
  /** Cached execution controls of the running guest. */
  pin = 0;
  proc = 0;
  proc2 = 0;
  exitCtls = 0;
  entryCtls = 0;
  exceptionBitmap = 0;
  virtualNmiBlocked = false;
  /** Set when a TypeScript host drives the unit (exits return to it instead of loading host state). */
  tsHost = false;
  /** The exit being delivered (filled by exit()). */
  readonly exitInfo: ExitInfo = {
    reason: 0,
    qualification: 0,
    guestLinear: 0,
    guestPhysical: 0,
    instructionLength: 0,
    instructionInfo: 0,
    intrInfo: 0,
    intrError: 0,
  };
  /** Set by a completed exit for the TypeScript host. */
  exitReady = false;
  /** VMX-abort indicator of the last exit for the TypeScript host (§27.7), 0 if none. */
  vmxAbort = 0;
  /** Name of the last VM-entry check that failed (diagnostics, tests). */
  lastEntryCheck = '';
  /** Preemption timer: cycle at which it expires (Infinity when not armed). */
  preemptDeadline = Infinity;
  readonly ept: EptWalker;
  /** TLBs tagged by (VPID, EPTP). */
  readonly tlbs: TlbContexts;
  /** VPID of the running guest (0 when "enable VPID" is off). */
  guestVpid = 0;

  constructor(
    readonly cpu: Cpu,
    opts: VmxOptions,
    cr4Supported: number,
  ) {
    this.caps = new VmxCaps(opts, cr4Supported);
    this.tlbs = new TlbContexts(cpu.rootTlb);
    this.ept = new EptWalker(cpu.mem, {
      executeOnly: opts.ept,
      page1G: opts.ept,
      page2M: opts.ept,
      adFlags: opts.ept,
    });
  }

  // ---------------------------------------------------------------- status flags (§30.2)
  /** Outcome of the last VMX instruction: 0 success, -1 VMfailInvalid, else the VMfailValid error number. */
  status = 0;
  succeed(): void {
    this.status = 0;
    const cpu = this.cpu;
    cpu.setFlags(cpu.getFlags() & ~(CF | PF | AF | ZF | SF | OF));
  }
  failInvalid(): void {
    this.status = -1;
    const cpu = this.cpu;
    cpu.setFlags((cpu.getFlags() & ~(PF | AF | ZF | SF | OF)) | CF);
  }
  failValid(err: number): void {
    const cpu = this.cpu;
    if (!this.current) return this.failInvalid();
    this.status = err;
    cpu.setFlags((cpu.getFlags() & ~(CF | PF | AF | SF | OF)) | ZF);
    this.current.set(F.VM_INSTRUCTION_ERROR, err);
  }
  /** VMfail: VMfailValid when there is a current VMCS, else VMfailInvalid. */
  fail(err: number): void {
    if (this.current) this.failValid(err);
    else this.failInvalid();
  }

  // ---------------------------------------------------------------- common checks (§30.3 "Operation")
  /** #UD outside VMX operation or in real/v8086/compatibility mode; #GP(0) at CPL > 0. Non-root: VM exit. */
  checkVmxInstruction(reason: number, insnLen: number, needOn = true, info = 0, qual = 0): void {
    const cpu = this.cpu;
    if (!(cpu.cr4 & 0x2000)) cpu.fault(UD);
    if (cpu.mode === Mode.Real || cpu.mode === Mode.Compat16 || cpu.mode === Mode.Compat32) cpu.fault(UD);
    if (needOn && !this.on) cpu.fault(UD);
    if (cpu.nonRoot) this.exit(reason, qual, insnLen, { instructionInfo: info });
    if (cpu.cpl > 0) cpu.gp(0);
  }
  /** A VMCS/VMXON region address must be 4 KiB aligned and within MAXPHYADDR. */
  validAddr(pa: number): boolean {
    return pa % 4096 === 0 && pa >= 0 && pa < 2 ** MAXPHYADDR;
  }

  // ---------------------------------------------------------------- VMCS management
  vmcsAt(pa: number): Vmcs {
    let v = this.cache.get(pa);
    if (!v) {
      v = newVmcs(pa);
      v.load(this.cpu.mem);
      this.cache.set(pa, v);
    }
    return v;
  }
  /** VMCLEAR semantics on an address (write back, launch state clear, drop from cache). */
  clear(pa: number): void {
    const v = this.cache.get(pa);
    if (v) {
      v.launch = LAUNCH_CLEAR;
      v.store(this.cpu.mem);
      this.cache.delete(pa);
    } else {
      this.cpu.mem.write32(pa + 8, LAUNCH_CLEAR);
    }
    if (this.current && this.current.addr === pa) this.current = undefined;
  }
  /** VMPTRLD semantics; returns an error number or 0. */
  load(pa: number): number {
    if (!this.validAddr(pa)) return B.E.VMPTRLD_INVALID_ADDR;
    if (pa === this.vmxonPtr) return B.E.VMPTRLD_VMXON_PTR;
    const rev = this.cpu.mem.read32(pa);
    const shadowOk = this.caps.opts.vmcsShadowing;
    if ((rev & 0x7fffffff) !== VMCS_REVISION_ID || (rev & 0x80000000 && !shadowOk))
      return B.E.VMPTRLD_BAD_REVISION;
    this.current = this.vmcsAt(pa);
    return 0;
  }

  /** Does VMREAD/VMWRITE accept this encoding? (Unsupported encodings give error 12.) */
  supportsField(enc: number): boolean {
    return fieldSupported(this.caps.fields, enc);
  }
  /** High half of the last readField (so VMREAD allocates nothing). */
  fieldHi = 0;
  /** Read a field as VMREAD does; returns bits 31:0 (bits 63:32 in fieldHi). */
  readField(v: Vmcs, enc: number): number {
    const [lo, hi] = readVmcsField(v, enc);
    this.fieldHi = hi;
    return lo;
  }
  writeField(v: Vmcs, enc: number, lo: number, hi: number): void {
    writeVmcsField(v, enc, lo, hi);
  }
  isReadOnly(enc: number): boolean {
    return fieldReadOnly(enc);
  }

  // ---------------------------------------------------------------- VM exits
  /**
   * Cause a VM exit from non-root operation: record the exit information and abort
   * the current instruction. The step loop completes the exit (completeExit).
   */
  exit(reason: number, qualification: number, insnLen = 0, extra?: Partial<ExitInfo>): never {
    this.setExit(reason, qualification, insnLen, extra);
    this.cpu.excVector = VMEXIT_MARK;
    throw ABORT;
  }
  /** Fill the exit information for an exit completed right away (at an instruction boundary). */
  setExit(reason: number, qualification = 0, insnLen = 0, extra?: Partial<ExitInfo>): void {
    const e = this.exitInfo;
    e.reason = reason;
    e.qualification = qualification;
    e.instructionLength = insnLen;
    e.guestLinear = extra?.guestLinear ?? 0;
    e.guestPhysical = extra?.guestPhysical ?? 0;
    e.instructionInfo = extra?.instructionInfo ?? 0;
    e.intrInfo = extra?.intrInfo ?? 0;
    e.intrError = extra?.intrError ?? 0;
  }

  /** Complete a VM exit whose information is in exitInfo (§27.1-27.6). RIP is the guest's. */
  completeExit(idtVectoring = 0, idtError = 0): void {
    const cpu = this.cpu;
    const v = this.current!;
    const e = this.exitInfo;
    cpu.cycles += cpu.cost.vmExit;
    v.set(F.VM_EXIT_REASON, e.reason);
    v.setNum(F.EXIT_QUALIFICATION, e.qualification);
    v.setNum(F.GUEST_LINEAR_ADDRESS, e.guestLinear);
    v.setNum(F.GUEST_PHYSICAL_ADDRESS, e.guestPhysical);
    v.set(F.VM_EXIT_INSTRUCTION_LEN, e.instructionLength);
    v.set(F.VMX_INSTRUCTION_INFO, e.instructionInfo);
    v.set(F.VM_EXIT_INTR_INFO, e.intrInfo);
    v.set(F.VM_EXIT_INTR_ERROR_CODE, e.intrError);
    // An exit during event delivery reports that event in the IDT-vectoring fields (§27.2.4).
    if (!idtVectoring && cpu.vectoringInfo) {
      idtVectoring = cpu.vectoringInfo;
      idtError = cpu.vectoringError;
    }
    if (idtVectoring && cpu.vectoringInfo === idtVectoring && e.instructionLength === 0) {
      const type = (idtVectoring >> 8) & 7;
      if (type === 4 || type === 5 || type === 6) v.set(F.VM_EXIT_INSTRUCTION_LEN, cpu.vectoringLen);
    }
    cpu.vectoringInfo = 0;
    v.set(F.IDT_VECTORING_INFO_FIELD, idtVectoring);
    v.set(F.IDT_VECTORING_ERROR_CODE, idtError);
    saveGuestState(cpu, v, this.exitCtls);
    // The activity state is saved; root operation is always active.
    cpu.shutdownActivity = false;
    cpu.waitForSipi = false;
    // IA32_VMX_MISC[5]: VM exits store EFER.LMA into the "IA-32e mode guest" entry control (§27.2).
    const entryCtl = v.get32(F.VM_ENTRY_CONTROLS);
    v.set(F.VM_ENTRY_CONTROLS, cpu.efer & 0x400 ? entryCtl | B.ENTRY_IA32E : entryCtl & ~B.ENTRY_IA32E);
    cpu.nonRoot = false;
    cpu.mtf = 0;
    this.preemptDeadline = Infinity;
    cpu.tscGuestOffset = 0;
    cpu.eptActive = false;
    cpu.walker.ept = undefined;
    // Back to the root's TLB; without VPID the VPID-0 mappings are invalidated (SDM 3C §28.3.3.3).
    if (this.guestVpid === 0) this.tlbs.flushVpid0();
    cpu.setTlb(cpu.rootTlb);
    cpu.mtfPending = false;
    cpu.pendingDbgBs = false;
    // Guest MSRs are stored before the host state is loaded (§27.4, then §27.5).
    const storeFail = exitMsrStore(cpu, v);
    if (this.tsHost) {
      // A TypeScript host has no state to load; it learns of a VMX abort from the exit record.
      this.exitReady = true;
      this.vmxAbort = storeFail;
      if (storeFail) cpu.mem.write32(v.addr + 4, storeFail);
      cpu.excVector = -1;
      cpu.halted = false;
      cpu.updateMode();
      return;
    }
    loadHostState(cpu, v, this.exitCtls);
    const msrFail = storeFail || exitMsrLoad(cpu, v);
    if (msrFail) {
      // VMX abort (§27.7): the indicator goes into the VMCS region (offset 4) and the logical
      // processor shuts down; turtles stops the machine with the reason.
      cpu.excVector = -1;
      cpu.mem.write32(v.addr + 4, msrFail);
      cpu.stop(
        'triple-fault',
        0,
        `VMX abort ${msrFail}: failure ${msrFail === 1 ? 'saving guest' : 'loading host'} MSRs on VM exit (SDM 3C §27.7)`,
      );
    }
  }

  /** A VM-entry failure after the guest-state checks (§26.8): exit reason with bit 31. */
  entryFailure(reason: number, qual: number): void {
    const cpu = this.cpu;
    const v = this.current!;
    v.set(F.VM_EXIT_REASON, reason | B.EXIT_REASON_ENTRY_FAILURE | 0);
    v.setNum(F.EXIT_QUALIFICATION, qual);
    if (this.tsHost) {
      this.exitReady = true;
      return;
    }
    loadHostState(cpu, v, v.get32(F.VM_EXIT_CONTROLS));
    exitMsrLists(cpu, v);
  }

  // ---------------------------------------------------------------- VM entry
  /** VMLAUNCH (launch=true) / VMRESUME. Returns after the guest starts (or the entry failed). */
  enter(launch: boolean): void {
    const v = this.current;
    // No current VMCS, or a shadow VMCS as the current one: VMfailInvalid (SDM 3C §30.3 VMLAUNCH).
    if (!v || v.shadow) return this.failInvalid();
    // A TypeScript host executes no MOV SS: the CPU's shadow is the guest's, saved in its VMCS.
    if (!this.tsHost && this.cpu.intShadow && this.cpu.movSsShadow)
      return this.failValid(B.E.ENTRY_EVENTS_BLOCKED_BY_MOV_SS);
    if (launch && v.launch !== LAUNCH_CLEAR) return this.failValid(B.E.VMLAUNCH_NOT_CLEAR);
    if (!launch && v.launch !== LAUNCH_LAUNCHED) return this.failValid(B.E.VMRESUME_NOT_LAUNCHED);
    this.cpu.cycles += this.cpu.cost.vmEntry;
    vmEntry(this, v, launch);
  }

  /** Walk EPT for a guest-physical access; raises the EPT-violation / misconfiguration exit. */
  translateGpa(gpa: number, access: number, la: number, walk: boolean): number {
    const cpu = this.cpu;
    const eptp = this.current!.getU(F.EPT_POINTER);
    const r = this.ept.walk(eptp, gpa, access);
    cpu.cycles += r.refs * cpu.cost.walkRef;
    if (r.status === EPT_OK) {
      cpu.walker.eptPerm = (r.qual >> 3) & 7;
      return r.hpa;
    }
    if (r.status === EPT_VIOLATION) {
      // Qualification (Table 28-7): access bits, permissions, linear-address validity and kind.
      let q = r.qual;
      if (!Number.isNaN(la)) q |= 1 << 7;
      if (!Number.isNaN(la) && !walk) q |= 1 << 8;
      this.exit(B.R.EPT_VIOLATION, q, 0, { guestPhysical: gpa, guestLinear: Number.isNaN(la) ? 0 : la });
    }
    return this.exit(B.R.EPT_MISCONFIG, 0, 0, { guestPhysical: gpa });
  }

  /** Remaining preemption-timer value (in timer ticks: TSC >> rate). */
  preemptionTimerValue(): number {
    if (this.preemptDeadline === Infinity)
      return this.current ? this.current.get32(F.VMX_PREEMPTION_TIMER_VALUE) : 0;
    const left = Math.max(0, this.preemptDeadline - this.cpu.cycles);
    return Math.ceil(left / 32) >>> 0;
  }
}

export { GP, VMCS_REVISION_ID };
