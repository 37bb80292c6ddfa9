/**
 * One logical processor: architectural state, memory access through segmentation
 * and paging, the decoded-instruction cache, and the step loop. Instruction
 * semantics live in exec/ (one file per family); event delivery in events.ts;
 * segment loads in segments.ts.
 */
import { TWO32, TWO47, hex64 } from '../../common/index.js';
import type { IoBus } from '../bus.js';
import type { PhysMem } from '../mmu/physmem.js';
import { Tlb, TLB_MASK, P_SR, P_SW, P_UR, P_UW, P_SX, P_UX } from '../mmu/tlb.js';
import { PageWalker, ACC_READ, ACC_WRITE, ACC_EXEC } from '../mmu/paging.js';
import { FlagState } from './flags.js';
import { ABORT, MachineStop } from './fault.js';
import { Insn } from './insn.js';
import { decode } from './decode.js';
import { Block, buildBlock, MAX_BLOCK } from './blocks.js';

/** Executions of an instruction before a block is compiled from it. */
const BLOCK_THRESHOLD = 32;
import {
  CS,
  SS,
  DS,
  ES,
  FS,
  GS,
  TR,
  LDTR,
  GP,
  SS_,
  PF_,
  AC,
  CR0_PE,
  CR0_PG,
  EFER_LMA,
  Mode,
  GPR_NAMES,
  SEG_NAMES,
  IF,
  TF,
  RF,
} from './regs.js';
import { installHandlers } from './exec/index.js';
import { deliverEvent, EV_HW_EXC } from './events.js';
import { CpuCost } from '../cost.js';
import { FEATURES, CPUID_80000001_EDX, CPUID7_EBX, CPUID1_ECX } from '../../spec/cpuid.js';
import type { MsrHook } from './msrs.js';
import { VmxUnit, VMEXIT_MARK } from '../vmx/unit.js';
import type { VmxOptions } from '../vmx/caps.js';
import { exceptionExits } from '../vmx/intercepts.js';
import { R, PIN_NMI, PIN_EXT_INTR, CPU_NMI_WINDOW, CPU_INTR_WINDOW, EXIT_ACK_INTR } from '../vmx/bits.js';
import { cr4Allowed } from './exec/system.js';

installHandlers();

const PERM_NEED = [P_SR, P_SW, P_SX, P_UR, P_UW, P_UX];

export class Cpu {
  readonly id: number;
  readonly mem: PhysMem;
  readonly io: IoBus;
  // General-purpose registers as (hi, lo) int32 pairs.
  readonly rlo = new Int32Array(16);
  readonly rhi = new Int32Array(16);
  /** RIP: in 64-bit mode the canonical address as a signed double, else the 32-bit offset. */
  rip = 0;
  /** RIP of the instruction being executed (faults restart it). */
  insnRip = 0;
  readonly fl = new FlagState();
  // Segment registers: selector, cached base/limit, access rights in VMX format (SDM 3C §24.4.1).
  readonly segSel = new Int32Array(8);
  readonly segBase = new Float64Array(8);
  readonly segLimit = new Float64Array(8);
  readonly segAttr = new Int32Array(8);
  gdtrBase = 0;
  gdtrLimit = 0xffff;
  idtrBase = 0;
  idtrLimit = 0xffff;
  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  cr8 = 0;
  efer = 0;
  xcr0 = 1;
  readonly dr = new Float64Array(8);
  /** Model-specific registers kept as bigint (rarely accessed). */
  readonly msrs = new Map<number, bigint>();
  cpl = 0;
  mode: Mode = Mode.Prot32;
  /** Default code size in bits (16/32/64) for decoding. */
  bits = 32;
  /** Stack address size in bytes (2, 4 or 8). */
  stackSize = 4;
  halted = false;
  /** Interrupt shadow after STI / MOV SS (blocks interrupts for one instruction). */
  intShadow = 0;
  cycles = 0;
  instret = 0;
  /** Pending exception (set before throwing ABORT). */
  excVector = -1;
  excError = -1;
  /** For 64-bit memory reads: the high half of the last value read. */
  hi = 0;
  /** Physical address of the last MMIO translation. */
  private mmioPa = 0;
  /** The TLB of the current context (root, or a guest's VPID/EPTP: see vmx/tlb-contexts.ts). */
  tlb = new Tlb();
  /** The root-mode TLB (VPID 0 without EPT). */
  readonly rootTlb: Tlb;
  readonly walker: PageWalker;
  /** Set by devices when an interrupt may be pending; checked between instructions. */
  irqCheck = false;
  /** Interrupt controller hook: returns a vector or -1. */
  pendingInterrupt: () => number = () => -1;
  ackInterrupt: () => number = () => -1;
  /** NMI pending, and NMI delivery blocked (from an NMI's delivery until the next IRET). */
  nmiPending = false;
  nmiBlocked = false;
  /** Interruption info (and error code) of the event being delivered in non-root operation, else 0. */
  vectoringInfo = 0;
  vectoringError = 0;
  vectoringLen = 0;
  /** An MTF VM exit is pending (after an injected event, SDM 3C §25.5.2). */
  mtfPending = false;
  /** A TPR-below-threshold VM exit is due after the current instruction (TPR shadow, §29.1.2). */
  tprBelowThreshold = false;
  /** A single-step #DB from the VMCS pending-debug-exceptions field awaits delivery (§26.6.3). */
  pendingDbgBs = false;
  /** An INIT held while in VMX operation, and a SIPI for a guest in wait-for-SIPI (vector, or -1). */
  initPending = false;
  /** Perform a held INIT (set by the machine: CPU INIT and local-APIC INIT reset). */
  pendingInit: (() => void) | undefined;
  sipiPending = -1;
  /** Wait-for-SIPI state after INIT (APs start here). */
  waitForSipi = false;
  /**
   * A guest entered with activity state "shutdown" (SDM 3C §24.4.2, §26.6.2): it executes
   * nothing; only events that cause VM exits end the state.
   */
  shutdownActivity = false;
  /** The machine stops a run() when `cycles` reaches this value. */
  deadline = Infinity;
  /** TSC offset added on RDTSC (VMX adds its own later). */
  tscBase = 0;
  readonly cost = new CpuCost();
  /** Monitor trap flag active (non-root): a VM exit after each guest instruction (SDM 3C §25.5.2). */
  mtf = 0;
  private mtfExit(): void {
    this.vmx.setExit(R.MONITOR_TRAP_FLAG);
    this.vmx.completeExit();
  }
  /** VMX non-root operation (a guest runs under a VMCS). */
  nonRoot = false;
  /** TSC offset of the running guest (TSC offsetting control). */
  tscGuestOffset = 0;
  /** EPT translation active for the running guest. */
  eptActive = false;
  /** The interrupt shadow comes from MOV SS / POP SS (not STI). */
  movSsShadow = false;
  /** The VMX unit (SDM 3C): VMX operation, VMCS, entry/exit. */
  vmx: VmxUnit;
  /** Local APIC ID reported by CPUID, and the number of CPUs of the machine. */
  apicId = 0;
  cpuCount = 1;
  /** CPUID feature words (the machine may clear bits it is configured without). */
  features = { ...FEATURES };
  /** CR4 bits allowed beyond the base set (e.g. VMXE once VMX exists). */
  cr4Extra = 0;
  /** MSR handlers owned by other parts of the machine (LAPIC, VMX). */
  readonly msrHooks: MsrHook[] = [];
  /** TSC = cycles + tscOffset (WRMSR to IA32_TSC adjusts the offset). */
  tscOffset = 0;
  // Decoded instruction cache: per RAM page, 4096 slots.
  private readonly icache = new Map<number, (Insn | undefined)[]>();
  private curPageLin = NaN;
  private curPageSlots: (Insn | undefined)[] | undefined;
  private curPageRam = -1;
  private curModeKey = 0;
  private readonly scratch = new Insn();
  /** Instruction trace hook (turtles run --trace): called before each instruction; disables compiled blocks. */
  trace: ((cpu: Cpu, i: Insn) => void) | undefined = undefined;
  /** Set when code was written: a compiled block must stop after the current instruction. */
  brk = false;
  private curBlock: Block | undefined = undefined;
  private curBlockRip = 0;

  constructor(id: number, mem: PhysMem, io: IoBus) {
    this.id = id;
    this.mem = mem;
    this.io = io;
    this.walker = new PageWalker(mem, this.tlb);
    this.rootTlb = this.tlb;
    this.vmx = new VmxUnit(
      this,
      { ept: true, vpid: true, unrestrictedGuest: true, vmcsShadowing: true },
      cr4Allowed(this),
    );
    this.cr4Extra = 0x2000; // CR4.VMXE (VMX is advertised in CPUID.1:ECX)
    // The VMX capability MSRs are read-only (writes #GP, SDM 3C Appendix A).
    this.msrHooks.push({
      read: (_c, n) => this.vmx.caps.msrs.get(n),
      write: (c, n) => (this.vmx.caps.msrs.has(n) ? c.gp(0) : false),
    });
    this.setTlb(this.tlb);
    const prev = mem.onCodeWrite;
    mem.onCodeWrite = (page) => {
      prev(page);
      this.icache.delete(page);
      this.brk = true; // a running compiled block stops after the writing instruction
      if (page === this.curPageRam) this.curPageLin = NaN;
    };
    this.resetState();
  }

  /** Power-on state (SDM Vol. 3A §9.1.1), except that the machine enters protected mode through the loader. */
  resetState(): void {
    this.rlo.fill(0);
    this.rhi.fill(0);
    this.fl.put(2);
    this.cr0 = 0x60000010;
    this.cr3 = this.cr4 = this.cr2 = this.efer = 0;
    for (let s = 0; s < 8; s++) {
      this.segSel[s] = 0;
      this.segBase[s] = 0;
      this.segLimit[s] = 0xffff;
      this.segAttr[s] = s === CS ? 0x9b : s === TR ? 0x8b : s === LDTR ? 0x82 : 0x93;
    }
    this.segSel[CS] = 0xf000;
    this.segBase[CS] = 0xffff0000;
    this.rip = 0xfff0;
    this.rlo[2] = 0x000806c1; // EDX = family/model/stepping
    this.msrs.clear();
    this.updateMode();
    this.tlb.flushAll();
  }

  // ---------------------------------------------------------------- modes
  updateMode(): void {
    const csAttr = this.segAttr[CS];
    if (!(this.cr0 & CR0_PE)) {
      this.mode = Mode.Real;
      this.bits = 16;
    } else if (this.efer & EFER_LMA) {
      if (csAttr & (1 << 13)) {
        this.mode = Mode.Long64;
        this.bits = 64;
      } else if (csAttr & (1 << 14)) {
        this.mode = Mode.Compat32;
        this.bits = 32;
      } else {
        this.mode = Mode.Compat16;
        this.bits = 16;
      }
    } else if (csAttr & (1 << 14)) {
      this.mode = Mode.Prot32;
      this.bits = 32;
    } else {
      this.mode = Mode.Prot16;
      this.bits = 16;
    }
    this.stackSize = this.mode === Mode.Long64 ? 8 : this.segAttr[SS] & (1 << 14) ? 4 : 2;
    // CPL is SS.DPL (it equals CS.RPL; SDM 3A §5.5, and VMX relies on SS.DPL, 3C §26.3.1.2).
    this.cpl = this.mode === Mode.Real ? 0 : (this.segAttr[SS] >> 5) & 3;
    this.curModeKey = this.bits;
    this.curPageLin = NaN;
  }
  get long64(): boolean {
    return this.mode === Mode.Long64;
  }

  // ---------------------------------------------------------------- faults
  /** Raise exception `vector` (with `errorCode`, or -1 for none) for the current instruction. */
  fault(vector: number, errorCode = -1): never {
    this.excVector = vector;
    this.excError = errorCode;
    throw ABORT;
  }
  gp(code = 0): never {
    return this.fault(GP, code);
  }
  private raisePf = (la: number, ec: number): never => {
    // A #PF that becomes a VM exit leaves CR2 unchanged (SDM 3C §27.1): keep the old value.
    this.prevCr2 = this.cr2;
    this.pfAddr = la;
    this.cr2 = la;
    return this.fault(PF_, ec);
  };
  /** CR2 before the last #PF and that #PF's linear address (a #PF that exits leaves CR2 alone). */
  prevCr2 = 0;
  pfAddr = 0;

  // ---------------------------------------------------------------- registers
  /** Signed 64-bit value of a GPR as a double (exact below 2^53 in magnitude). */
  regNum(r: number): number {
    return this.rhi[r] * TWO32 + (this.rlo[r] >>> 0);
  }
  /** Read a GPR of `size` bytes (1, 2, 4: unsigned; 8: lo, with this.hi). Byte regs honour REX. */
  getReg(r: number, size: number, rex = 1): number {
    switch (size) {
      case 1:
        if (rex === 0 && r >= 4 && r < 8) return (this.rlo[r - 4] >>> 8) & 0xff;
        return this.rlo[r] & 0xff;
      case 2:
        return this.rlo[r] & 0xffff;
      case 4:
        return this.rlo[r] >>> 0;
      default:
        this.hi = this.rhi[r];
        return this.rlo[r] >>> 0;
    }
  }
  /** Write a GPR; 32-bit writes zero-extend (SDM Vol. 1 §3.4.1.1), 8/16-bit writes merge. */
  setReg(r: number, size: number, lo: number, hi: number, rex = 1): void {
    switch (size) {
      case 1:
        if (rex === 0 && r >= 4 && r < 8) this.rlo[r - 4] = (this.rlo[r - 4] & ~0xff00) | ((lo & 0xff) << 8);
        else this.rlo[r] = (this.rlo[r] & ~0xff) | (lo & 0xff);
        return;
      case 2:
        this.rlo[r] = (this.rlo[r] & ~0xffff) | (lo & 0xffff);
        return;
      case 4:
        this.rlo[r] = lo;
        this.rhi[r] = 0;
        return;
      default:
        this.rlo[r] = lo;
        this.rhi[r] = hi;
    }
  }

  // ---------------------------------------------------------------- addressing
  /**
   * Effective address (offset within the segment) of the memory operand. In 64-bit
   * address size the result is a signed double; a non-canonical or inexact sum
   * returns NaN-free exact values via the slow path.
   */
  ea(i: Insn): number {
    let a = i.disp;
    const b = i.base,
      x = i.index;
    if (i.asize === 8) {
      if (b >= 0) {
        if (b === 16) a += this.rip;
        else {
          const h = this.rhi[b];
          if (h > 0xffff || h < -0x10000) return this.eaSlow64(i);
          a += h * TWO32 + (this.rlo[b] >>> 0);
        }
      }
      if (x >= 0) {
        const h = this.rhi[x];
        if (h > 0xffff || h < -0x10000) return this.eaSlow64(i);
        a += (h * TWO32 + (this.rlo[x] >>> 0)) * (1 << i.scale);
      }
      return a;
    }
    if (i.asize === 4) {
      if (b >= 0) a += b === 16 ? this.rip : this.rlo[b] >>> 0;
      if (x >= 0) a += (this.rlo[x] >>> 0) * (1 << i.scale);
      return a >>> 0;
    }
    if (b >= 0) a += this.rlo[b] & 0xffff;
    if (x >= 0) a += this.rlo[x] & 0xffff;
    return a & 0xffff;
  }
  /** Exact 64-bit effective address as (hi, lo); returns lo and sets this.hi. */
  ea64(i: Insn): number {
    let lo = i.disp | 0,
      hi = i.disp < 0 ? -1 : 0;
    if (i.base === 16) {
      hi = Math.floor(i.disp / TWO32) | 0;
      lo = i.disp | 0;
      const r = this.rip;
      const rl = r | 0,
        rh = Math.floor(r / TWO32) | 0;
      const s = (lo >>> 0) + (rl >>> 0);
      hi = (hi + rh + (s >= TWO32 ? 1 : 0)) | 0;
      lo = s | 0;
    } else if (i.base >= 0) {
      const s = (lo >>> 0) + (this.rlo[i.base] >>> 0);
      hi = (hi + this.rhi[i.base] + (s >= TWO32 ? 1 : 0)) | 0;
      lo = s | 0;
    }
    if (i.index >= 0) {
      let xl = this.rlo[i.index],
        xh = this.rhi[i.index];
      for (let k = 0; k < i.scale; k++) {
        xh = (xh << 1) | (xl >>> 31);
        xl <<= 1;
      }
      const s = (lo >>> 0) + (xl >>> 0);
      hi = (hi + xh + (s >= TWO32 ? 1 : 0)) | 0;
      lo = s | 0;
    }
    this.hi = hi;
    return lo;
  }
  private eaSlow64(i: Insn): number {
    const lo = this.ea64(i);
    const hi = this.hi;
    const top = hi >> 15;
    if (top !== 0 && top !== -1) return Infinity; // non-canonical: the caller raises #GP/#SS
    return hi * TWO32 + (lo >>> 0);
  }

  /**
   * Linear address of `off` in segment `seg` for an access of `size` bytes, with the
   * segment checks of SDM Vol. 3A §5.3 (limits, types) or, in 64-bit mode, the
   * canonical check (§3.3.7.1): #SS(0) for stack references, #GP(0) otherwise.
   */
  lin(seg: number, off: number, size: number, write: boolean): number {
    if (this.mode === Mode.Long64) {
      let la = off;
      if (seg >= FS) la += this.segBase[seg];
      // Every byte of the access must be canonical (NaN/Infinity from eaSlow64 fail too).
      if (!(la >= -TWO47 && la <= TWO47 - size)) this.fault(seg === SS ? SS_ : GP, 0);
      return la;
    }
    const attr = this.segAttr[seg];
    if (this.mode === Mode.Real) {
      // Real mode: the cached limit still applies (64 KiB unless "unreal"), SDM 3A §20.1.1.
      if (off + size - 1 > this.segLimit[seg]) this.fault(seg === SS ? SS_ : GP, 0);
    } else {
      if (attr & 0x10000) this.fault(seg === SS ? SS_ : GP, 0); // null/unusable selector
      const type = attr & 0xf;
      if (write && (type & 0xa) !== 2) this.fault(seg === SS ? SS_ : GP, 0); // not a writable data segment
      if (!write && (type & 0xa) === 8) this.fault(seg === SS ? SS_ : GP, 0); // execute-only code
      const limit = this.segLimit[seg];
      if ((type & 0xc) === 4) {
        // Expand-down data segment (§5.3).
        const upper = attr & (1 << 14) ? 0xffffffff : 0xffff;
        if (off <= limit || off + size - 1 > upper) this.fault(seg === SS ? SS_ : GP, 0);
      } else if (off + size - 1 > limit) this.fault(seg === SS ? SS_ : GP, 0);
    }
    return (this.segBase[seg] + off) % TWO32;
  }

  /** Translate a linear address; returns the RAM offset or -1 (MMIO at this.mmioPa). */
  xlate(la: number, kind: number, user: boolean): number {
    const vpn = Math.floor(la / 4096);
    const idx = vpn & TLB_MASK;
    const tlb = this.tlb;
    if (tlb.tag[idx] === vpn && (tlb.perm[idx] & PERM_NEED[kind + (user ? 3 : 0)]) !== 0) {
      const ro = tlb.ram[idx];
      if (ro >= 0) return ro + (la & 0xfff);
      this.mmioPa = tlb.phys[idx] + (la & 0xfff);
      return -1;
    }
    const pa = this.walker.walk(this, la, kind, user, (this.fl.word & AC) !== 0, this.raisePf);
    const ro = this.mem.ramOffset(pa);
    if (ro >= 0) return ro;
    this.mmioPa = pa;
    return -1;
  }

  // Linear-address reads/writes. `user` = CPL 3 data access (implicit supervisor accesses pass false).
  rd8(la: number, user = this.cpl === 3): number {
    const o = this.xlate(la, ACC_READ, user);
    return o >= 0 ? this.mem.u8[o] : this.mem.mmio.read(this.mmioPa, 1) & 0xff;
  }
  rd16(la: number, user = this.cpl === 3): number {
    if ((la & 0xfff) > 0xffe) return this.rd8(la, user) | (this.rd8(la + 1, user) << 8);
    const o = this.xlate(la, ACC_READ, user);
    return o >= 0 ? this.mem.dv.getUint16(o, true) : this.mem.mmio.read(this.mmioPa, 2) & 0xffff;
  }
  rd32(la: number, user = this.cpl === 3): number {
    if ((la & 0xfff) > 0xffc) return (this.rd16(la, user) | (this.rd16(la + 2, user) << 16)) >>> 0;
    const o = this.xlate(la, ACC_READ, user);
    return o >= 0 ? this.mem.dv.getUint32(o, true) : this.mem.mmio.read(this.mmioPa, 4) >>> 0;
  }
  /** 64-bit read: returns lo (unsigned), high half in this.hi. */
  rd64(la: number, user = this.cpl === 3): number {
    if ((la & 0xfff) > 0xff8) {
      const lo = this.rd32(la, user);
      this.hi = this.rd32(la + 4, user) | 0;
      return lo;
    }
    const o = this.xlate(la, ACC_READ, user);
    if (o >= 0) {
      this.hi = this.mem.dv.getInt32(o + 4, true);
      return this.mem.dv.getUint32(o, true);
    }
    const pa = this.mmioPa;
    const lo = this.mem.mmio.read(pa, 4) >>> 0;
    this.hi = this.mem.mmio.read(pa + 4, 4) | 0;
    return lo;
  }
  /** Check that a write would succeed (for multi-part writes that must not half-complete). */
  probeWrite(la: number, size: number, user = this.cpl === 3): void {
    this.xlate(la, ACC_WRITE, user);
    if (((la & 0xfff) + size - 1) >> 12) this.xlate(la + size - 1, ACC_WRITE, user);
  }
  wr8(la: number, v: number, user = this.cpl === 3): void {
    const o = this.xlate(la, ACC_WRITE, user);
    if (o >= 0) {
      this.mem.u8[o] = v;
      if (this.mem.codePages[o >>> 12]) this.mem.noteWrite(o);
    } else this.mem.mmio.write(this.mmioPa, 1, v & 0xff);
  }
  wr16(la: number, v: number, user = this.cpl === 3): void {
    if ((la & 0xfff) > 0xffe) {
      this.probeWrite(la, 2, user);
      this.wr8(la, v, user);
      this.wr8(la + 1, v >>> 8, user);
      return;
    }
    const o = this.xlate(la, ACC_WRITE, user);
    if (o >= 0) {
      this.mem.dv.setUint16(o, v & 0xffff, true);
      if (this.mem.codePages[o >>> 12]) this.mem.noteWrite(o);
    } else this.mem.mmio.write(this.mmioPa, 2, v & 0xffff);
  }
  wr32(la: number, v: number, user = this.cpl === 3): void {
    if ((la & 0xfff) > 0xffc) {
      this.probeWrite(la, 4, user);
      this.wr16(la, v, user);
      this.wr16(la + 2, v >>> 16, user);
      return;
    }
    const o = this.xlate(la, ACC_WRITE, user);
    if (o >= 0) {
      this.mem.dv.setInt32(o, v, true);
      if (this.mem.codePages[o >>> 12]) this.mem.noteWrite(o);
    } else this.mem.mmio.write(this.mmioPa, 4, v | 0);
  }
  wr64(la: number, lo: number, hi: number, user = this.cpl === 3): void {
    if ((la & 0xfff) > 0xff8) {
      this.probeWrite(la, 8, user);
      this.wr32(la, lo, user);
      this.wr32(la + 4, hi, user);
      return;
    }
    const o = this.xlate(la, ACC_WRITE, user);
    if (o >= 0) {
      this.mem.dv.setInt32(o, lo, true);
      this.mem.dv.setInt32(o + 4, hi, true);
      if (this.mem.codePages[o >>> 12]) this.mem.noteWrite(o);
    } else {
      const pa = this.mmioPa;
      this.mem.mmio.write(pa, 4, lo | 0);
      this.mem.mmio.write(pa + 4, 4, hi | 0);
    }
  }
  /** Read `size` bytes at linear `la` (lo returned; 8-byte reads set this.hi). */
  rdN(la: number, size: number): number {
    switch (size) {
      case 1:
        return this.rd8(la);
      case 2:
        return this.rd16(la);
      case 4:
        return this.rd32(la);
      default:
        return this.rd64(la);
    }
  }
  wrN(la: number, size: number, lo: number, hi: number): void {
    switch (size) {
      case 1:
        return this.wr8(la, lo);
      case 2:
        return this.wr16(la, lo);
      case 4:
        return this.wr32(la, lo);
      default:
        return this.wr64(la, lo, hi);
    }
  }

  // ---------------------------------------------------------------- operands
  /** Linear address of the instruction's memory operand. */
  memLin(i: Insn, size: number, write: boolean): number {
    return this.lin(i.seg, this.ea(i), size, write);
  }
  /** Read the E operand (register or memory) of size i.size. */
  readE(i: Insn, size = i.size): number {
    if (!i.mem) return this.getReg(i.rm, size, i.rex);
    return this.rdN(this.memLin(i, size, false), size);
  }
  writeE(i: Insn, lo: number, hi: number, size = i.size): void {
    if (!i.mem) this.setReg(i.rm, size, lo, hi, i.rex);
    else this.wrN(this.memLin(i, size, true), size, lo, hi);
  }

  // ---------------------------------------------------------------- stack
  /** Current stack pointer as an offset (64-bit: signed double). */
  spGet(): number {
    switch (this.stackSize) {
      case 8:
        return this.rhi[4] * TWO32 + (this.rlo[4] >>> 0);
      case 4:
        return this.rlo[4] >>> 0;
      default:
        return this.rlo[4] & 0xffff;
    }
  }
  spSet(v: number): void {
    switch (this.stackSize) {
      case 8:
        this.rlo[4] = v | 0;
        this.rhi[4] = Math.floor(v / TWO32) | 0;
        return;
      case 4:
        this.rlo[4] = v | 0;
        if (this.mode === Mode.Compat32 || this.mode === Mode.Compat16) this.rhi[4] = 0;
        return;
      default:
        this.rlo[4] = (this.rlo[4] & ~0xffff) | (v & 0xffff);
    }
  }
  private wrapSp(v: number): number {
    if (this.stackSize === 8) return v;
    return this.stackSize === 4 ? v >>> 0 : v & 0xffff;
  }
  push(size: number, lo: number, hi: number): void {
    const sp = this.wrapSp(this.spGet() - size);
    const la = this.lin(SS, sp, size, true);
    this.wrN(la, size, lo, hi);
    this.spSet(sp);
  }
  /** Pop `size` bytes; returns lo (and this.hi for 8). */
  pop(size: number): number {
    const sp = this.spGet();
    const la = this.lin(SS, sp, size, false);
    const v = this.rdN(la, size);
    const h = this.hi;
    this.spSet(this.wrapSp(sp + size));
    this.hi = h;
    return v;
  }
  /** Read a stack slot at sp+delta without moving sp. */
  peekStack(delta: number, size: number): number {
    const la = this.lin(SS, this.wrapSp(this.spGet() + delta), size, false);
    return this.rdN(la, size);
  }

  // ---------------------------------------------------------------- control transfer
  /** Jump to `target` (an offset in CS; in 64-bit mode a signed double). */
  jump(target: number, size: number): void {
    if (this.mode === Mode.Long64) {
      if (size !== 8) target = size === 4 ? target >>> 0 : target & 0xffff;
      if (!(target >= -TWO47 && target < TWO47)) this.gp(0);
    } else {
      target = size === 2 ? target & 0xffff : target >>> 0;
      if (this.mode !== Mode.Real && target > this.segLimit[CS]) this.gp(0);
    }
    this.rip = target;
  }
  /** Relative branch: target = next RIP + displacement. */
  jumpRel(disp: number, size: number): void {
    this.jump(this.rip + disp, size);
  }

  // ---------------------------------------------------------------- flags
  getFlags(): number {
    return this.fl.get();
  }
  setFlags(v: number): void {
    this.fl.put(v);
    // IF may have become 1 (POPF, IRET, VM entry): pending interrupts and window exits are re-checked.
    if (v & IF) this.irqCheck = true;
  }

  // ---------------------------------------------------------------- fetch & step
  private fetchByte(ipOff: number): number {
    let la: number;
    if (this.mode === Mode.Long64) {
      la = this.rip + ipOff;
      if (!(la >= -TWO47 && la < TWO47)) this.gp(0);
    } else {
      const off = this.bits === 16 ? (this.rip + ipOff) & 0xffff : (this.rip + ipOff) % TWO32;
      if (this.mode !== Mode.Real && off > this.segLimit[CS]) this.gp(0);
      la = (this.segBase[CS] + off) % TWO32;
    }
    const o = this.xlate(la, ACC_EXEC, this.cpl === 3);
    if (o >= 0) return this.mem.u8[o];
    return this.mem.mmio.read(this.mmioPa, 1) & 0xff;
  }
  private readonly decodeEnv = {
    bits: 32,
    fetch: (i: number): number => this.fetchByte(i),
  };

  private fetchSlow(la: number): Insn {
    const pageLin = la - (la & 0xfff);
    const o = this.xlate(la, ACC_EXEC, this.cpl === 3);
    this.decodeEnv.bits = this.bits;
    if (o < 0) {
      // Executing from MMIO: decode every time, never cache.
      this.curPageLin = NaN;
      return decode(this.decodeEnv, this.scratch);
    }
    const ramPage = o >>> 12;
    let slots = this.icache.get(ramPage);
    if (!slots) {
      slots = new Array<Insn | undefined>(4096);
      this.icache.set(ramPage, slots);
    }
    this.mem.codePages[ramPage] = 1;
    this.curPageLin = pageLin;
    this.curPageSlots = slots;
    this.curPageRam = ramPage;
    const pOff = la & 0xfff;
    let insn = slots[pOff];
    if (insn && insn.modeKey === this.curModeKey) return insn;
    insn = decode(this.decodeEnv, new Insn());
    insn.modeKey = this.curModeKey;
    insn.cost = this.cost.of(insn.mnemonic);
    // Instructions that cross into the next page are not cached (their bytes live in two pages).
    if (pOff + insn.len <= 4096) slots[pOff] = insn;
    else {
      this.curPageLin = NaN;
    }
    return insn;
  }

  /** Compile the block starting at instruction `first` (at linear `la`, in the current fetch page). */
  private compileBlock(first: Insn, la: number): void {
    const slots = this.curPageSlots!;
    const pageLin = this.curPageLin;
    const start = la - pageLin;
    const b = buildBlock(start, (off) => {
      const c = slots[off];
      if (c !== undefined && c.modeKey === this.curModeKey) return c;
      // Decode the following instruction in place; stop at anything that leaves the page.
      const save = this.rip;
      try {
        this.decodeEnv.bits = this.bits;
        this.rip = save + (off - start);
        const insn = decode(this.decodeEnv, new Insn());
        if (off + insn.len > 4096) return undefined;
        insn.modeKey = this.curModeKey;
        insn.cost = this.cost.of(insn.mnemonic);
        slots[off] = insn;
        return insn;
      } catch (e) {
        if (e === ABORT) {
          this.excVector = -1;
          return undefined;
        }
        throw e;
      } finally {
        this.rip = save;
      }
    });
    if (b && b.insns[0] === first) first.block = b;
    else first.hot = -1_000_000; // nothing worth compiling here
  }

  /** Configure VT-x features (machine options: EPT, VPID, unrestricted guest, VMCS shadowing). */
  configureVmx(opts: VmxOptions): void {
    this.vmx = new VmxUnit(this, opts, cr4Allowed(this));
  }

  /** Switch the current TLB (VMX transitions between tagged contexts). */
  setTlb(t: Tlb): void {
    this.tlb = t;
    this.walker.tlb = t;
    // Any TLB invalidation also drops the fetch shortcut (the page may map elsewhere now).
    t.onFlush = () => {
      this.curPageLin = NaN;
    };
    this.curPageLin = NaN;
  }

  /** Invalidate decoded instructions and the fetch shortcut (mode switches, CR3/CR0/CR4 writes). */
  flushFetch(): void {
    this.curPageLin = NaN;
  }

  /**
   * Run up to `budget` instructions. Returns the number executed. Exceptions are
   * delivered here; MachineStop propagates to the machine.
   */
  run(budget: number): number {
    const n = this.runInner(budget);
    this.instret += n;
    return n;
  }
  private runInner(budget: number): number {
    let n = 0;
    while (n < budget && this.cycles < this.deadline) {
      if (this.waitForSipi || this.shutdownActivity) {
        if (
          this.nonRoot &&
          (this.irqCheck || this.cycles >= this.vmx.preemptDeadline) &&
          this.checkInterrupts()
        ) {
          if (this.vmx.exitReady) return n;
          continue;
        }
        return n;
      }
      if (this.halted) {
        if (!this.checkInterrupts()) return n;
        continue;
      }
      try {
        if (this.irqCheck || this.intShadow || (this.nonRoot && this.cycles >= this.vmx.preemptDeadline)) {
          this.checkInterrupts();
          if (this.vmx.exitReady) return n;
        }
        while (n < budget) {
          // insnRip is set before the fetch so that a fetch fault reports the right RIP.
          const rip = this.rip;
          this.insnRip = rip;
          const la = this.bits === 64 ? rip : (this.segBase[CS] + rip) % TWO32;
          const off = la - this.curPageLin;
          let i: Insn | undefined;
          if (off >= 0 && off < 4096) i = this.curPageSlots![off];
          if (i === undefined) i = this.fetchSlow(la);
          const tf = (this.fl.word & TF) | this.mtf;
          if (this.trace !== undefined) this.trace(this, i);
          else if (i.block !== undefined && !tf && budget - n >= MAX_BLOCK) {
            // Compiled block: runs to its end unless an instruction faults or writes its own code.
            const b = i.block;
            this.brk = false;
            this.curBlock = b;
            this.curBlockRip = rip;
            const k = b.fn(this, rip);
            this.curBlock = undefined;
            this.cycles += b.prefixCost[k];
            n += k;
            if (this.irqCheck || this.intShadow || this.halted || this.cycles >= this.deadline) {
              if (this.intShadow) this.intShadow--;
              break;
            }
            continue;
          }
          if (
            ++i.hot === BLOCK_THRESHOLD &&
            this.trace === undefined &&
            this.bits !== 16 &&
            this.curPageLin === la - (la & 0xfff)
          )
            this.compileBlock(i, la);
          if (this.bits === 64) this.rip = rip + i.len;
          else this.rip = this.bits === 16 ? (rip + i.len) & 0xffff : (rip + i.len) % TWO32;
          i.fn(this, i);
          this.cycles += i.cost;
          n++;
          if (tf) {
            if (this.mtf) {
              this.mtfExit();
              if (this.vmx.exitReady) return n;
              break;
            }
            this.singleStepTrap();
            // A #DB that exits (exception bitmap) ends the run for a TypeScript host.
            if (this.vmx.exitReady) return n;
          }
          if (this.irqCheck || this.intShadow || this.halted || this.cycles >= this.deadline) {
            if (this.intShadow) this.intShadow--;
            break;
          }
        }
      } catch (e) {
        if (this.curBlock !== undefined) {
          // A fault (or a machine stop) inside a compiled block: account for the instructions before it.
          const b = this.curBlock;
          this.curBlock = undefined;
          const done = b.completedBefore(this.curBlockRip, this.insnRip);
          this.cycles += b.prefixCost[done];
          n += done;
        }
        if (e !== ABORT) throw e;
        n++;
        this.rip = this.insnRip;
        const v = this.excVector,
          ec = this.excError;
        this.excVector = -1;
        if (v === VMEXIT_MARK) {
          this.vmx.completeExit();
          if (this.vmx.exitReady) return n;
          continue;
        }
        this.cycles += this.cost.exception;
        this.raiseException(v, ec);
        if (this.vmx.exitReady) return n;
      }
    }
    return n;
  }

  /**
   * Single-step trap (SDM 3A §17.3.1.4): an instruction that began with TF=1 is
   * followed by #DB with DR6.BS set; the return address is the next instruction.
   */
  private singleStepTrap(): void {
    this.dr[6] = ((this.dr[6] || 0xffff0ff0) | 0x4000) >>> 0;
    if (this.nonRoot && exceptionExits(this, 1, -1)) {
      // A #DB that exits: DR6 is not written; the exit qualification carries BS (SDM 3C §27.1).
      this.exitForEvent(1, 3, -1, 0x4000);
      return;
    }
    deliverEvent(this, 1, EV_HW_EXC, -1);
  }

  /**
   * Deliver a hardware exception raised by the current instruction; in non-root
   * operation the exception bitmap may turn it into a VM exit (SDM 3C §25.2), and a
   * triple fault always exits.
   */
  raiseException(v: number, ec: number): void {
    if (this.nonRoot && exceptionExits(this, v, ec)) {
      this.exitForEvent(v, 3, ec);
      return;
    }
    try {
      deliverEvent(this, v, EV_HW_EXC, ec);
    } catch (e) {
      if (e instanceof MachineStop && e.reason === 'triple-fault' && this.nonRoot) {
        this.vmx.setExit(R.TRIPLE_FAULT);
        this.vmx.completeExit();
        return;
      }
      if (e === ABORT && this.excVector === VMEXIT_MARK) {
        this.excVector = -1;
        this.vmx.completeExit();
        return;
      }
      throw e;
    }
  }
  /**
   * Events at an instruction boundary in non-root operation that cause VM exits
   * (SDM 3C §25.2, §25.5, §26.7.5): preemption-timer expiry, NMIs with NMI exiting,
   * interrupt-window and NMI-window exiting, external interrupts with external-
   * interrupt exiting (RFLAGS.IF does not block them then). Returns true after an exit.
   */
  private nonRootEvents(): boolean {
    const u = this.vmx;
    const simple = (reason: number): boolean => {
      u.setExit(reason);
      u.completeExit();
      return true;
    };
    if (this.initPending) {
      this.initPending = false;
      this.halted = false;
      return simple(R.INIT);
    }
    if (this.sipiPending >= 0) {
      const vec = this.sipiPending;
      this.sipiPending = -1;
      u.setExit(R.SIPI, vec); // exit qualification: the SIPI vector (§27.2.1)
      u.completeExit();
      return true;
    }
    if (this.tprBelowThreshold) {
      this.tprBelowThreshold = false;
      return simple(R.TPR_BELOW_THRESHOLD);
    }
    if (this.mtfPending) {
      this.mtfPending = false;
      return simple(R.MONITOR_TRAP_FLAG);
    }
    if (this.pendingDbgBs && !this.intShadow) {
      this.pendingDbgBs = false;
      this.dr[6] = ((this.dr[6] || 0xffff0ff0) | 0x4000) >>> 0;
      this.raiseException(1, -1);
      return true;
    }
    // The saved activity state stays HLT when the exit interrupts a halted guest (§27.3.4);
    // the saved preemption-timer value is 0 for a timer exit (completeExit disarms it after saving).
    if (this.cycles >= u.preemptDeadline) return simple(R.PREEMPTION_TIMER);
    const movSs = this.intShadow > 0 && this.movSsShadow;
    if (this.nmiPending && u.pin & PIN_NMI && !movSs) {
      this.nmiPending = false;
      this.exitForEvent(2, 2, -1);
      return true;
    }
    if (u.proc & CPU_NMI_WINDOW && !u.virtualNmiBlocked && !movSs) return simple(R.NMI_WINDOW);
    if (u.proc & CPU_INTR_WINDOW && this.fl.word & IF && !this.intShadow) return simple(R.INTERRUPT_WINDOW);
    if (u.pin & PIN_EXT_INTR && !this.intShadow && this.pendingInterrupt() >= 0) {
      if (u.exitCtls & EXIT_ACK_INTR) {
        const vec = this.ackInterrupt();
        this.exitForEvent(vec, 0, -1);
      } else {
        simple(R.EXTERNAL_INTERRUPT);
      }
      return true;
    }
    return false;
  }

  /** A VM exit caused by an event (exception, NMI, external interrupt) with its interruption info. */
  exitForEvent(vector: number, type: number, ec: number, qualification = 0): void {
    const pf = vector === 14 && type === 3;
    this.vmx.setExit(
      type === 0 ? R.EXTERNAL_INTERRUPT : R.EXCEPTION_NMI,
      pf ? this.pfAddr : qualification,
      0,
      {
        intrInfo: vector | (type << 8) | (ec >= 0 ? 1 << 11 : 0) | 0x80000000 | 0,
        intrError: ec >= 0 ? ec : 0,
      },
    );
    if (pf) this.cr2 = this.prevCr2;
    this.vmx.completeExit();
  }

  /** Between instructions: deliver a pending NMI or external interrupt. Returns true if one was taken. */
  checkInterrupts(): boolean {
    if (this.nonRoot && this.nonRootEvents()) return true;
    if (this.intShadow || this.waitForSipi || this.shutdownActivity) return false;
    if (this.nmiPending && !this.nmiBlocked) {
      // NMIs are blocked from delivery until the next IRET (SDM 3A §6.7.1).
      this.nmiPending = false;
      this.nmiBlocked = true;
      this.halted = false;
      try {
        deliverEvent(this, 2, 2, -1);
      } catch (e) {
        if (!this.vmexitCaught(e)) throw e;
      }
      return true;
    }
    // Nothing can be delivered with IF=0: stop checking until IF is set again (STI, POPF, IRET,
    // VM entry all set irqCheck) or a new event arrives.
    if (!(this.fl.word & IF)) {
      this.irqCheck = false;
      return false;
    }
    const v = this.pendingInterrupt();
    if (v < 0) {
      this.irqCheck = false;
      return false;
    }
    const vec = this.ackInterrupt();
    if (vec < 0) return false;
    this.halted = false;
    try {
      deliverEvent(this, vec, 0, -1);
    } catch (e) {
      if (!this.vmexitCaught(e)) throw e;
    }
    return true;
  }

  /** Complete a VM exit that aborted event delivery outside an instruction; true if `e` was one. */
  vmexitCaught(e: unknown): boolean {
    if (e !== ABORT || this.excVector !== VMEXIT_MARK) return false;
    this.excVector = -1;
    this.vmx.completeExit();
    return true;
  }

  /**
   * INIT (SDM 3A §9.1, Table 9-1): the processor state is reset (MSRs such as EFER,
   * the TSC and the APIC base are kept) and the CPU waits for a SIPI.
   */
  init(): void {
    const keep = new Map(this.msrs);
    const tsc = this.tscOffset;
    this.resetState();
    for (const [k, v] of keep) this.msrs.set(k, v);
    this.tscOffset = tsc;
    this.halted = false;
    this.waitForSipi = true;
    this.nmiPending = false;
    this.nmiBlocked = false;
    this.intShadow = 0;
    this.rlo[2] = 0x000106a5; // EDX after INIT holds the processor signature
  }
  /** Start-up IPI: leave wait-for-SIPI and start in real mode at vector << 12 (SDM 3A §8.4.4). */
  sipi(vector: number): void {
    if (!this.waitForSipi) return; // SIPIs are ignored unless the CPU waits for one
    this.waitForSipi = false;
    this.segSel[CS] = (vector & 0xff) << 8;
    this.segBase[CS] = (vector & 0xff) << 12;
    this.segLimit[CS] = 0xffff;
    this.rip = 0;
    this.updateMode();
    this.flushFetch();
  }

  readTsc(): number {
    return this.cycles + this.tscOffset + this.tscGuestOffset;
  }
  setTsc(v: number): void {
    this.tscOffset = v - this.cycles;
  }
  /** Hook for the local APIC: CR8 writes change the TPR. */
  onTprWrite(): void {}
  /** Hook for the local APIC: CR8 reads return TPR[7:4]. */
  readCr8(): number {
    return this.cr8;
  }
  hasFeature(name: 'NX' | 'SMAP' | 'SMEP' | 'INVPCID' | 'RDTSCP' | 'PCID'): boolean {
    const f = this.features;
    switch (name) {
      case 'NX':
        return (f.ext1Edx & CPUID_80000001_EDX.NX) !== 0;
      case 'RDTSCP':
        return (f.ext1Edx & CPUID_80000001_EDX.RDTSCP) !== 0;
      case 'SMAP':
        return (f.leaf7Ebx & CPUID7_EBX.SMAP) !== 0;
      case 'SMEP':
        return (f.leaf7Ebx & CPUID7_EBX.SMEP) !== 0;
      case 'INVPCID':
        return (f.leaf7Ebx & CPUID7_EBX.INVPCID) !== 0;
      case 'PCID':
        return (f.leaf1Ecx & CPUID1_ECX.PCID) !== 0;
    }
  }

  stop(reason: MachineStop['reason'], code: number, detail: string): never {
    throw new MachineStop(reason, code, detail);
  }

  /** A register dump for triple faults and unexpected stops. */
  dump(): string {
    const lines: string[] = [];
    for (let r = 0; r < 16; r += 2)
      lines.push(
        `${GPR_NAMES[r].padEnd(3)}=${hex64(this.rhi[r], this.rlo[r])} ${GPR_NAMES[r + 1].padEnd(3)}=${hex64(this.rhi[r + 1], this.rlo[r + 1])}`,
      );
    const ripHi = Math.floor(this.rip / TWO32) | 0;
    lines.push(
      `RIP=${hex64(ripHi, this.rip | 0)} RFLAGS=${hex64(0, this.fl.get())} CPL=${this.cpl} mode=${Mode[this.mode]}`,
    );
    for (let s = 0; s < 8; s++)
      lines.push(
        `${SEG_NAMES[s].padEnd(4)} sel=${(this.segSel[s] & 0xffff).toString(16).padStart(4, '0')} base=${hex64(Math.floor(this.segBase[s] / TWO32) | 0, this.segBase[s] | 0)} limit=${(this.segLimit[s] >>> 0).toString(16)} attr=${(this.segAttr[s] >>> 0).toString(16)}`,
      );
    lines.push(
      `CR0=${(this.cr0 >>> 0).toString(16)} CR2=${hex64(Math.floor(this.cr2 / TWO32) | 0, this.cr2 | 0)} CR3=${this.cr3.toString(16)} CR4=${(this.cr4 >>> 0).toString(16)} EFER=${(this.efer >>> 0).toString(16)}`,
    );
    lines.push(
      `GDTR=${this.gdtrBase.toString(16)}/${this.gdtrLimit.toString(16)} IDTR=${this.idtrBase.toString(16)}/${this.idtrLimit.toString(16)}`,
    );
    return lines.join('\n');
  }
}

export { ACC_READ, ACC_WRITE, ACC_EXEC, CS, SS, DS, ES, FS, GS, TF, RF, CR0_PG };
