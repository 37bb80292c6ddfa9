/**
 * L0's side of instruction emulation (KVM's handle_invalid_guest_state): while a vCPU's guest
 * state is one VM entry refuses without unrestricted guest (invalid.ts) — under shadow paging
 * there is no unrestricted guest, SDM 3C §26.2.1.1 — the vCPU run loop (vcpu.ts) calls
 * `emulateInvalidState` instead of entering the guest. It loads the guest state from vmcs01
 * and the GPRs, executes instructions one at a time in software (exec.ts), and writes the
 * changed fields back; as soon as the state is valid again the loop enters the guest as usual.
 *
 * - Memory: guest linear addresses go through the guest's paging (off in real mode: linear =
 *   guest-physical, A20 enabled), RAM through the VM's host RAM (writes reported to shadow
 *   paging, `noteGuestWrite`), anything else through the VM's MMIO devices; ports through the
 *   VM's I/O bus.
 * - CR0/CR3/CR4 writes go through the same code as a CR-access exit (cr-access.ts); CPUID and
 *   the MSRs the MSR bitmap intercepts through L0's exit handlers, given an exit record built
 *   for the instruction; an MSR the hardware would access directly is reported.
 * - Interrupts (SDM 3A §20.1.4, §6.8): in real mode, at each instruction boundary, an NMI
 *   (unless NMI or MOV-SS blocking) and then an external interrupt from the vLAPIC or the 8259s
 *   (when RFLAGS.IF = 1 and no STI/MOV-SS blocking) go through the IVT — the order and the
 *   conditions of inject.ts at VM entry. An event L0 had queued for VM entry (a re-injection,
 *   an exception an exit handler raised) is delivered first. In protected mode with invalid
 *   segments (a few instructions at most) interrupts stay pending until VM entry injects them.
 * - HLT: the state is written back and the vCPU halts as after a HLT exit (Vm.halt); when an
 *   interrupt wakes it, emulation resumes by delivering it.
 * - Bounds: each call runs at most EMULATION_BATCH instructions and stops at `stopAt` (the
 *   slice end or the VM's next device event); every instruction is charged (cost.ts), so
 *   `--max-cycles` bounds a guest that never leaves real mode. An instruction the emulator does
 *   not implement, or an exception it cannot deliver, stops that VM with a report naming the
 *   instruction's bytes and address.
 */
import {
  VMCS_FIELD as F,
  EXIT_REASON as R,
  GUEST_SEG_SEL,
  GUEST_SEG_BASE,
  GUEST_SEG_LIMIT,
  GUEST_SEG_AR,
  type ExitRecord,
  type VmxHost,
} from '../../hw.js';
import type { Vcpu } from '../vcpu.js';
import type { ExitContext } from '../exits.js';
import { EXIT_HANDLERS } from '../exits.js';
import { vmread } from '../guest-state.js';
import { guestPaging, walkGuest, type GuestPaging } from '../../mmu/guest-walk.js';
import { noteGuestWrite, shadowOf } from '../../mmu/shadow.js';
import { shadowSetCr0, shadowSetCr3, shadowSetCr4 } from '../cr-access.js';
import { L0_COST } from '../../cost.js';
import { Emu, step, where } from './exec.js';
import { deliverReal } from './events.js';
import { invalidStateReason } from './invalid.js';
import {
  BLOCK_MOV_SS,
  BLOCK_NMI,
  BLOCK_STI,
  IF,
  NMI,
  RmFault,
  RmState,
  RmStop,
  type Access,
  type ExitingInsn,
  type RmBus,
} from './state.js';

/** Instructions emulated per call at most (the run loop then checks device events and yields). */
export const EMULATION_BATCH = 4096;

const INTR_BITS = BLOCK_STI | BLOCK_MOV_SS | BLOCK_NMI;
const VALID = 0x80000000;
const RSP = 4;
/** VMCS fields read to load the state (for the cost model). */
const LOAD_FIELDS = 46;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const lo32 = (v: bigint): number => Number(v & 0xffffffffn);

/** The guest state of the loaded vCPU (its vmcs01 current), as the emulator sees it. */
export function loadState(vcpu: Vcpu, s: RmState): void {
  const h = vcpu.host;
  for (let k = 0; k < 8; k++) s.gpr[k] = lo32(k === RSP ? vmread(h, F.GUEST_RSP) : h.getReg(k));
  s.eip = lo32(vmread(h, F.GUEST_RIP));
  s.eflags = lo32(vmread(h, F.GUEST_RFLAGS));
  for (let k = 0; k < 6; k++) {
    const sg = s.seg[k];
    sg.sel = Number(vmread(h, GUEST_SEG_SEL[k]));
    sg.base = lo32(vmread(h, GUEST_SEG_BASE[k]));
    sg.limit = lo32(vmread(h, GUEST_SEG_LIMIT[k]));
    sg.ar = Number(vmread(h, GUEST_SEG_AR[k]));
  }
  s.gdtrBase = lo32(vmread(h, F.GUEST_GDTR_BASE));
  s.gdtrLimit = Number(vmread(h, F.GUEST_GDTR_LIMIT));
  s.idtrBase = lo32(vmread(h, F.GUEST_IDTR_BASE));
  s.idtrLimit = Number(vmread(h, F.GUEST_IDTR_LIMIT));
  s.ldtrBase = lo32(vmread(h, F.GUEST_LDTR_BASE));
  s.ldtrLimit = lo32(vmread(h, F.GUEST_LDTR_LIMIT));
  s.ldtrUsable = (Number(vmread(h, F.GUEST_LDTR_AR_BYTES)) & 0x10000) === 0;
  s.cr0 = lo32(guestPaging(vcpu).cr0);
  s.interruptibility = Number(vmread(h, F.GUEST_INTERRUPTIBILITY_INFO)) & INTR_BITS;
  s.halted = false;
}

/** Does the loaded vCPU's state need emulation (shadow paging: no unrestricted guest)? */
export function needsEmulation(vcpu: Vcpu): boolean {
  if (vcpu.vm.mmu !== 'shadow') return false;
  const s = new RmState();
  loadState(vcpu, s);
  return invalidStateReason(s) !== '';
}

/** The emulator's window on a VM: its memory, ports, control registers and exit handlers. */
class VmBus implements RmBus {
  private paging: GuestPaging;
  /** The state as it is in vmcs01 (to write back only what changed). */
  readonly base = new RmState();

  constructor(
    readonly vcpu: Vcpu,
    readonly s: RmState,
  ) {
    this.paging = guestPaging(vcpu);
  }
  private get h(): VmxHost {
    return this.vcpu.host;
  }

  load(): void {
    loadState(this.vcpu, this.s);
    this.base.copyFrom(this.s);
    this.paging = guestPaging(this.vcpu);
    this.h.charge(LOAD_FIELDS * L0_COST.vmcsAccess);
  }
  /** Write back the fields the emulated instructions changed (one VMWRITE or register write each). */
  commit(): void {
    const h = this.h,
      s = this.s,
      b = this.base;
    let n = 0;
    const w = (enc: number, v: number | bigint): void => {
      h.vmwrite(enc, v);
      n++;
    };
    for (let k = 0; k < 8; k++) {
      if (s.gpr[k] === b.gpr[k]) continue;
      // A 32-bit value outside 64-bit mode; the upper half is written as 0 (it is undefined).
      if (k === RSP) w(F.GUEST_RSP, s.gpr[k]);
      else h.setReg(k, s.gpr[k]);
    }
    if (s.eip !== b.eip) w(F.GUEST_RIP, s.eip);
    if (s.eflags !== b.eflags) w(F.GUEST_RFLAGS, s.eflags);
    for (let k = 0; k < 6; k++) {
      const x = s.seg[k],
        y = b.seg[k];
      if (x.sel !== y.sel) w(GUEST_SEG_SEL[k], x.sel);
      if (x.base !== y.base) w(GUEST_SEG_BASE[k], x.base);
      if (x.limit !== y.limit) w(GUEST_SEG_LIMIT[k], x.limit);
      if (x.ar !== y.ar) w(GUEST_SEG_AR[k], x.ar);
    }
    if (s.gdtrBase !== b.gdtrBase) w(F.GUEST_GDTR_BASE, s.gdtrBase);
    if (s.gdtrLimit !== b.gdtrLimit) w(F.GUEST_GDTR_LIMIT, s.gdtrLimit);
    if (s.idtrBase !== b.idtrBase) w(F.GUEST_IDTR_BASE, s.idtrBase);
    if (s.idtrLimit !== b.idtrLimit) w(F.GUEST_IDTR_LIMIT, s.idtrLimit);
    if (s.interruptibility !== b.interruptibility) {
      const old = Number(vmread(h, F.GUEST_INTERRUPTIBILITY_INFO));
      w(F.GUEST_INTERRUPTIBILITY_INFO, (old & ~INTR_BITS) | s.interruptibility);
    }
    b.copyFrom(s);
    h.charge(n * L0_COST.vmcsAccess);
  }

  private ctx(): ExitContext {
    const v = this.vcpu;
    return { vm: v.vm, vcpu: v, host: v.host, exit: exitRecord(0, 0) };
  }

  // ---- memory
  private translate(la: number, access: Access): number {
    const p = this.paging;
    if (!(p.cr0 & 0x80000000n)) return la; // paging off: linear = guest-physical
    const vm = this.vcpu.vm;
    const w = walkGuest(
      vm,
      p,
      BigInt(la),
      { write: access === 'write', user: this.s.cpl === 3, fetch: access === 'fetch' },
      true,
    );
    if (!w.ok)
      throw new RmStop(
        w.kind === 'page-fault'
          ? `a page fault (error code ${hex(w.errorCode)}) at linear ${hex(la)} in protected mode with segment state VM entry refuses`
          : `linear ${hex(la)}: ${w.kind}`,
      );
    return w.gpa;
  }
  read(la: number, size: 1 | 2 | 4, access: Access): number {
    if ((la & 0xfff) + size > 0x1000) return this.bytewise(la, size, access);
    const vm = this.vcpu.vm,
      mem = this.h.mem;
    const gpa = this.translate(la, access);
    const hpa = vm.gpaToHpa(gpa);
    if (hpa >= 0) return size === 1 ? mem.read8(hpa) : size === 2 ? mem.read16(hpa) : mem.read32(hpa) >>> 0;
    if (access === 'fetch')
      throw new RmStop(`the guest executes code at guest-physical ${hex(gpa)}, outside its RAM`);
    return vm.platform.mmioRead(this.vcpu.index, gpa, size);
  }
  private bytewise(la: number, size: number, access: Access): number {
    let v = 0;
    for (let k = 0; k < size; k++) v += this.read((la + k) % 4294967296, 1, access) * 2 ** (8 * k);
    return v;
  }
  write(la: number, size: 1 | 2 | 4, value: number): void {
    if ((la & 0xfff) + size > 0x1000) {
      for (let k = 0; k < size; k++) this.write((la + k) % 4294967296, 1, (value >>> (8 * k)) & 0xff);
      return;
    }
    const vm = this.vcpu.vm,
      mem = this.h.mem;
    const gpa = this.translate(la, 'write');
    const hpa = vm.gpaToHpa(gpa);
    if (hpa < 0) return vm.platform.mmioWrite(this.vcpu.index, gpa, size, value);
    if (size === 1) mem.write8(hpa, value);
    else if (size === 2) mem.write16(hpa, value);
    else mem.write32(hpa, value | 0);
    noteGuestWrite(vm, gpa, size); // shadow paging keeps its tables exact (mmu/shadow.ts)
  }

  // ---- ports
  in(port: number, size: 1 | 2 | 4): number {
    const v = this.vcpu.vm.io.in(port, size);
    return size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  }
  out(port: number, size: 1 | 2 | 4, value: number): void {
    this.vcpu.vm.io.out(port, size, value | 0);
  }

  // ---- control registers
  readCr(_s: RmState, n: number): number {
    const v = this.vcpu;
    switch (n) {
      case 0:
        return lo32(guestPaging(v).cr0);
      case 2:
        return lo32(this.h.getCr2());
      case 3:
        return lo32(v.vm.mmu === 'shadow' ? v.guestCr3 : vmread(this.h, F.GUEST_CR3));
      default:
        return lo32(guestPaging(v).cr4);
    }
  }
  writeCr(s: RmState, n: number, value: number): boolean {
    if (n === 2) {
      this.h.setCr2(value);
      return true;
    }
    // The CR-access code reads CS and the mode from vmcs01: bring it up to date first.
    this.commit();
    const c = this.ctx();
    const v = BigInt(value >>> 0);
    const ok = n === 0 ? shadowSetCr0(c, v) : n === 3 ? shadowSetCr3(c, v) : shadowSetCr4(c, v);
    this.h.charge(L0_COST.cr);
    this.paging = guestPaging(this.vcpu);
    s.cr0 = lo32(this.paging.cr0);
    this.base.cr0 = s.cr0;
    return ok;
  }
  invlpg(la: number): void {
    if (this.vcpu.vm.mmu === 'shadow') shadowOf(this.vcpu.vm).invlpg(this.vcpu, la);
  }
  rdtsc(): bigint {
    // The guest's TSC is the host's (L0 uses no TSC offset: docs/L0.md "Time").
    const h = this.h;
    return BigInt(h.cycles + h.saveMsrState().tscOffset);
  }

  /** CPUID, or RDMSR/WRMSR of an MSR the MSR bitmap intercepts: L0's exit handler does it. */
  exitingInsn(s: RmState, insn: ExitingInsn, length: number): void {
    const vm = this.vcpu.vm;
    if (insn !== 'CPUID' && !msrExits(this.vcpu, s.gpr[1], insn === 'WRMSR'))
      throw new RmStop(
        `${insn} of MSR ${hex(s.gpr[1])}: the MSR is not intercepted (the hardware would access it ` +
          `directly), and L0 does not emulate it`,
      );
    const reason = insn === 'CPUID' ? R.CPUID : insn === 'RDMSR' ? R.MSR_READ : R.MSR_WRITE;
    this.commit();
    const c = this.ctx();
    c.exit = exitRecord(reason, length);
    EXIT_HANDLERS[reason].handle(c);
    this.load();
    if (vm.end) throw new RmStop(`${insn}: the VM ended`);
    // A fault the handler injected (#GP for a refused MSR): delivered by the emulator instead.
    const info = Number(vmread(this.h, F.VM_ENTRY_INTR_INFO_FIELD));
    if (info & VALID) {
      this.h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, 0);
      throw new RmFault(info & 0xff);
    }
  }
}

/** An exit record for an instruction L0 emulates through its exit handler table. */
function exitRecord(reason: number, length: number): ExitRecord {
  return {
    kind: 'exit',
    reason,
    rawReason: reason,
    qualification: 0n,
    guestLinearAddress: 0n,
    guestPhysicalAddress: 0n,
    instructionLength: length,
    instructionInfo: 0,
    interruptionInfo: 0,
    interruptionErrorCode: 0,
    idtVectoringInfo: 0,
    idtVectoringErrorCode: 0,
  };
}

/** Does RDMSR/WRMSR of `msr` exit (the MSR bitmap, SDM 3C §25.1.3)? Outside its two ranges always. */
function msrExits(vcpu: Vcpu, msr: number, write: boolean): boolean {
  const low = msr >>> 0 <= 0x1fff,
    high = msr >>> 0 >= 0xc0000000 && msr >>> 0 <= 0xc0001fff;
  if (!low && !high) return true;
  const bit = msr & 0x1fff;
  const a = vcpu.vm.msrBitmap + (write ? 2048 : 0) + (high ? 1024 : 0) + (bit >> 3);
  return ((vcpu.host.mem.read8(a) >> (bit & 7)) & 1) !== 0;
}

/**
 * Emulate the loaded vCPU's instructions until its state is valid for VM entry, it halts or
 * stops, its VM ends or wants the CPU for another vCPU, EMULATION_BATCH instructions ran, or
 * the host reached cycle `stopAt` (at least one instruction runs).
 */
export function emulateInvalidState(vcpu: Vcpu, stopAt: number): void {
  const vm = vcpu.vm,
    h = vcpu.host;
  const t0 = h.cycles;
  const s = new RmState();
  const bus = new VmBus(vcpu, s);
  bus.load();
  const e = new Emu(s, bus);
  let n = 0;
  let reason = invalidStateReason(s);
  try {
    if (s.real) takeQueuedEvent(e, vcpu);
    for (;;) {
      if (vm.end || vcpu.state !== 'runnable' || vm.yieldRequested) break;
      reason = invalidStateReason(s);
      if (reason === '') {
        vcpu.emulating = false;
        break;
      }
      if (n >= EMULATION_BATCH || (n > 0 && h.cycles >= stopAt)) break;
      if (s.real) takeInterrupt(e, vcpu);
      step(e);
      n++;
      h.charge(L0_COST.emulatedInsn + e.elements * L0_COST.emulatedStringElement);
      if (s.halted) {
        // As after a HLT exit: the vCPU halts unless an interrupt it can take is pending (Vm.halt).
        s.halted = false;
        bus.commit();
        h.charge(L0_COST.hlt);
        vm.halt(vcpu);
      }
    }
    bus.commit();
  } catch (x) {
    // Never a host stack trace: what the emulator cannot do stops this VM with a report.
    if (!(x instanceof RmStop) && !(x instanceof Error)) throw x;
    const why = x instanceof RmStop ? x.why : `L0's instruction emulator failed: ${x.message}`;
    const at = x instanceof RmStop && x.located ? '' : `, at ${where(e)}`;
    vcpu.stop(`${why}${at} (L0 emulates the vCPU's instructions: ${reason || 'invalid guest state'})`);
  }
  vm.stats.emulatedInstructions += n;
  vm.stats.l0 += h.cycles - t0;
}

/** An event L0 queued for VM entry (VM-entry interruption information): delivered through the IVT now. */
function takeQueuedEvent(e: Emu, vcpu: Vcpu): void {
  const h = vcpu.host;
  const info = Number(vmread(h, F.VM_ENTRY_INTR_INFO_FIELD));
  if (!(info & VALID)) return;
  h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, 0);
  const type = (info >> 8) & 7,
    vector = info & 0xff;
  // Software interrupts and exceptions return past the instruction (SDM 3C §26.6.1.1).
  const soft = type === 4 || type === 5 || type === 6;
  const ip = soft ? e.s.eip + Number(vmread(h, F.VM_ENTRY_INSTRUCTION_LEN)) : e.s.eip;
  if (type === 2) e.s.interruptibility |= BLOCK_NMI;
  h.charge(L0_COST.inject);
  deliverReal(e, vector, ip & 0xffff);
}

/**
 * At an instruction boundary in real mode: an NMI unless blocked by NMI or MOV SS blocking,
 * else an external interrupt when RFLAGS.IF = 1 and no STI/MOV-SS blocking (SDM 3A §6.8.3,
 * §6.7.1): the vLAPIC's, then the 8259s' (Vplatform.acknowledge), delivered through the IVT.
 */
function takeInterrupt(e: Emu, vcpu: Vcpu): void {
  const s = e.s,
    p = vcpu.vm.platform,
    h = vcpu.host;
  if (vcpu.nmiPending && !(s.interruptibility & (BLOCK_NMI | BLOCK_MOV_SS))) {
    vcpu.nmiPending = false;
    s.interruptibility |= BLOCK_NMI;
    h.charge(L0_COST.inject);
    return deliverReal(e, NMI, s.eip);
  }
  if (!(s.eflags & IF) || s.interruptibility & (BLOCK_STI | BLOCK_MOV_SS)) return;
  if (!p.hasInterrupt(vcpu.index)) return;
  const vector = p.acknowledge(vcpu.index);
  if (vector < 0) return;
  h.charge(L0_COST.inject);
  deliverReal(e, vector, s.eip);
}
