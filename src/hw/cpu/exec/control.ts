/**
 * Control transfer: JMP/Jcc/CALL/RET near, LOOPcc/JrCXZ, far JMP/CALL/RET to code
 * segments, IRET, INT n/INT3/INTO/INT1 (SDM Vol. 2; privilege rules SDM 3A §5.8).
 * Call gates and task switches are not modelled: they raise #GP (documented).
 */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import type { Cpu } from '../cpu.js';
import type { Handler, Insn } from '../insn.js';
import type { SpecializableHandler } from '../decode.js';
import {
  CS,
  SS,
  CF,
  PF,
  AF,
  ZF,
  SF,
  TF,
  DF,
  OF,
  NT,
  IF,
  IOPL,
  AC,
  ID,
  RF,
  VM,
  VIF,
  VIP,
  UD,
  Mode,
} from '../regs.js';
import {
  Descriptor,
  checkCodeSegment,
  loadCs,
  loadSegment,
  readDescriptor,
  nullInaccessibleSegments,
  setSegCache,
  ATTR_UNUSABLE,
} from '../segments.js';
import { deliverEvent, EV_SW_INT, EV_SW_EXC, EV_PRIV_SW } from '../events.js';
import { exceptionExits } from '../../vmx/intercepts.js';
import { R, PIN_NMI, PIN_VIRTUAL_NMIS } from '../../vmx/bits.js';

const TWO32 = 4294967296;

/** Normalize and check a near-branch target for operand size `size` (faults #GP(0)). */
function target(cpu: Cpu, t: number, size: number): number {
  if (cpu.mode === Mode.Long64) {
    if (size === 2) t &= 0xffff;
    if (!(t >= -(2 ** 47) && t < 2 ** 47)) cpu.gp(0);
    return t;
  }
  t = size === 2 ? t & 0xffff : t >>> 0;
  if (cpu.mode !== Mode.Real && t > cpu.segLimit[CS]) cpu.gp(0);
  return t;
}

function pushRip(cpu: Cpu, size: number): void {
  const r = cpu.rip;
  cpu.push(size, r | 0, Math.floor(r / TWO32) | 0);
}

const jmpRel: Handler = (cpu, i) => {
  cpu.rip = target(cpu, cpu.rip + i.imm, i.size);
};
const jccGeneric: Handler = (cpu, i) => {
  if (cpu.fl.cond(i.low3)) cpu.rip = target(cpu, cpu.rip + i.imm, i.size);
};
/** One handler per condition code, with the 64-bit-mode target check inlined (the hottest branch path). */
function jccFor(cc: number): Handler {
  return (cpu, i) => {
    if (cpu.fl.cond(cc)) {
      const t = cpu.rip + i.imm;
      if (cpu.bits === 64 && t >= -(2 ** 47) && t < 2 ** 47) cpu.rip = t;
      else cpu.rip = target(cpu, t, i.size);
    }
  };
}
const JCC_BY_CC = Array.from({ length: 16 }, (_, cc) => jccFor(cc));
const jcc = jccGeneric as SpecializableHandler;
jcc.specialize = (i) => JCC_BY_CC[i.low3];
const callRel: Handler = (cpu, i) => {
  const t = target(cpu, cpu.rip + i.imm, i.size);
  pushRip(cpu, i.size);
  cpu.rip = t;
};
const callInd: Handler = (cpu, i) => {
  const lo = cpu.readE(i, i.size);
  const v = i.size === 8 ? cpu.hi * TWO32 + lo : lo;
  const t = target(cpu, v, i.size);
  pushRip(cpu, i.size);
  cpu.rip = t;
};
const jmpInd: Handler = (cpu, i) => {
  const lo = cpu.readE(i, i.size);
  const v = i.size === 8 ? cpu.hi * TWO32 + lo : lo;
  cpu.rip = target(cpu, v, i.size);
};
function ret(e: OpcodeEntry): Handler {
  const hasImm = e.operands === 'Iw';
  return (cpu, i) => {
    const lo = cpu.peekStack(0, i.size);
    const v = i.size === 8 ? cpu.hi * TWO32 + lo : lo;
    const t = target(cpu, v, i.size);
    cpu.pop(i.size);
    if (hasImm) adjustSp(cpu, i.imm & 0xffff);
    cpu.rip = t;
  };
}
function adjustSp(cpu: Cpu, n: number): void {
  const sp = cpu.spGet() + n;
  cpu.spSet(cpu.stackSize === 8 ? sp : cpu.stackSize === 4 ? sp >>> 0 : sp & 0xffff);
}

/** Count register for LOOP/JrCXZ follows the address size. */
function counter(cpu: Cpu, i: Insn): number {
  if (i.asize === 8) return cpu.rlo[1] | cpu.rhi[1] ? 1 : 0;
  return i.asize === 4 ? cpu.rlo[1] : cpu.rlo[1] & 0xffff;
}
function decCounter(cpu: Cpu, i: Insn): boolean {
  if (i.asize === 8) {
    const lo = cpu.rlo[1];
    cpu.rlo[1] = lo - 1;
    if (lo === 0) cpu.rhi[1] = cpu.rhi[1] - 1;
    return (cpu.rlo[1] | cpu.rhi[1]) !== 0;
  }
  if (i.asize === 4) {
    cpu.setReg(1, 4, cpu.rlo[1] - 1, 0);
    if (cpu.mode !== Mode.Long64) cpu.rhi[1] = 0;
    return cpu.rlo[1] !== 0;
  }
  cpu.setReg(1, 2, (cpu.rlo[1] - 1) & 0xffff, 0);
  return (cpu.rlo[1] & 0xffff) !== 0;
}
function loop(kind: number): Handler {
  return (cpu, i) => {
    const t = cpu.rip + i.imm;
    const nz = decCounter(cpu, i);
    const ok = kind === 0 ? nz : kind === 1 ? nz && cpu.fl.zf() : nz && !cpu.fl.zf();
    if (ok) cpu.rip = target(cpu, t, i.size);
  };
}
const jrcxz: Handler = (cpu, i) => {
  if (counter(cpu, i) === 0) cpu.rip = target(cpu, cpu.rip + i.imm, i.size);
};

// ---- far transfers ------------------------------------------------------------------
const farDesc = new Descriptor();

function farJump(cpu: Cpu, sel: number, off: number, size: number, call: boolean): void {
  if (cpu.mode === Mode.Real) {
    if (call) {
      cpu.push(size, cpu.segSel[CS], 0);
      pushRip(cpu, size);
    }
    cpu.segSel[CS] = sel;
    cpu.segBase[CS] = sel << 4;
    cpu.rip = size === 2 ? off & 0xffff : off >>> 0;
    return;
  }
  const d = farDesc;
  if ((sel & 0xfffc) !== 0 && readDescriptor(cpu, sel, d) && !d.s) cpu.gp(sel & 0xfffc); // gates: not modelled
  checkCodeSegment(cpu, sel, d, 'jmp');
  const lma = (cpu.efer & (1 << 10)) !== 0;
  const to64 = lma && d.long;
  let t = off;
  if (!to64) {
    t = size === 2 ? off & 0xffff : off >>> 0;
    if (t > d.limit) cpu.gp(0);
  } else if (!(t >= -(2 ** 47) && t < 2 ** 47)) cpu.gp(0);
  if (call) {
    cpu.push(size, cpu.segSel[CS], 0);
    pushRip(cpu, size);
  }
  loadCs(cpu, sel, d, cpu.cpl);
  cpu.rip = t;
}

function farPtr(e: OpcodeEntry, call: boolean): Handler {
  if (e.operands === 'Ap') return (cpu, i) => farJump(cpu, i.imm2, i.imm, i.size, call);
  return (cpu, i) => {
    if (!i.mem) cpu.fault(UD);
    const size = i.size;
    const la = cpu.memLin(i, size + 2, false);
    const lo = cpu.rdN(la, size);
    const off = size === 8 ? cpu.hi * TWO32 + lo : lo;
    const sel = cpu.rd16(la + size);
    farJump(cpu, sel, off, size, call);
  };
}

function retf(e: OpcodeEntry): Handler {
  const hasImm = e.operands === 'Iw';
  return (cpu, i) => {
    const size = i.size;
    const n = hasImm ? i.imm & 0xffff : 0;
    const lo = cpu.peekStack(0, size);
    const off = size === 8 ? cpu.hi * TWO32 + lo : lo;
    const sel = cpu.peekStack(size, size) & 0xffff;
    if (cpu.mode === Mode.Real) {
      cpu.pop(size);
      cpu.pop(size);
      adjustSp(cpu, n);
      cpu.segSel[CS] = sel;
      cpu.segBase[CS] = sel << 4;
      cpu.rip = size === 2 ? off & 0xffff : off >>> 0;
      return;
    }
    const d = farDesc;
    checkCodeSegment(cpu, sel, d, 'ret');
    const rpl = sel & 3;
    if (rpl > cpu.cpl) {
      // Return to an outer privilege level: SS:rSP follow on the stack.
      const splo = cpu.peekStack(2 * size + n, size);
      const sp = size === 8 ? cpu.hi * TWO32 + splo : splo;
      const ssSel = cpu.peekStack(3 * size + n, size) & 0xffff;
      const ssd = checkSsForReturn(cpu, ssSel, rpl, cpu.mode === Mode.Long64 && d.long);
      loadCs(cpu, sel, d, rpl);
      commitSs(cpu, ssSel, rpl, ssd);
      cpu.spSet(sp);
      adjustSp(cpu, n);
      nullInaccessibleSegments(cpu);
    } else {
      cpu.pop(size);
      cpu.pop(size);
      adjustSp(cpu, n);
      loadCs(cpu, sel, d, cpu.cpl);
    }
    cpu.rip = d.long && cpu.efer & (1 << 10) ? off : size === 2 ? off & 0xffff : off >>> 0;
  };
}

/**
 * Check the SS selector of a return to privilege `rpl` (RET far / IRET) without
 * changing any state; returns the descriptor, or null for an allowed null SS
 * (only when returning to 64-bit code at CPL < 3). Raises #GP/#SS.
 */
function checkSsForReturn(cpu: Cpu, ssSel: number, rpl: number, allowNull: boolean): Descriptor | null {
  if ((ssSel & 0xfffc) === 0) {
    if (allowNull && rpl !== 3) return null;
    cpu.gp(0);
  }
  const d = new Descriptor();
  if (!readDescriptor(cpu, ssSel, d)) cpu.gp(ssSel & 0xfffc);
  if ((ssSel & 3) !== rpl || d.dpl !== rpl || !d.s || d.isCode || !(d.attr & 2)) cpu.gp(ssSel & 0xfffc);
  if (!d.present) cpu.fault(12, ssSel & 0xfffc);
  return d;
}
function commitSs(cpu: Cpu, ssSel: number, rpl: number, d: Descriptor | null): void {
  if (d === null) setSegCache(cpu, SS, ssSel, 0, 0, ATTR_UNUSABLE | (rpl << 5) | 0x13);
  else setSegCache(cpu, SS, ssSel, d.base, d.limit, d.attr | 1);
}

/** IRET/IRETD/IRETQ (SDM Vol. 2 IRET; real, protected and IA-32e forms). */
const iret: Handler = (cpu, i) => {
  const size = i.size;
  // IRET ends NMI blocking (SDM 3A §6.7.1); in non-root operation with virtual NMIs it ends
  // virtual-NMI blocking instead, and with NMI exiting it leaves physical NMIs alone (SDM 3C §25.3).
  if (cpu.nonRoot && cpu.vmx.pin & PIN_VIRTUAL_NMIS) {
    cpu.vmx.virtualNmiBlocked = false;
    cpu.irqCheck = true;
  } else if (!cpu.nonRoot || !(cpu.vmx.pin & PIN_NMI)) cpu.nmiBlocked = false;
  const old = cpu.getFlags();
  if (cpu.mode === Mode.Real) {
    const ip = cpu.pop(size);
    const cs = cpu.pop(size) & 0xffff;
    const f = cpu.pop(size);
    cpu.segSel[CS] = cs;
    cpu.segBase[CS] = cs << 4;
    cpu.rip = size === 2 ? ip & 0xffff : ip >>> 0;
    const mask = size === 2 ? 0x7fd5 | IF | DF | TF | IOPL | NT : 0x257fd5;
    cpu.setFlags((old & ~mask) | (f & mask));
    return;
  }
  if (old & NT && !(cpu.efer & (1 << 10))) cpu.gp(0); // task return: not modelled
  if (old & NT && cpu.efer & (1 << 10)) cpu.gp(0); // NT in IA-32e mode: #GP (SDM Vol. 2 IRET)
  const lo = cpu.peekStack(0, size);
  const ip = size === 8 ? cpu.hi * TWO32 + lo : lo;
  const sel = cpu.peekStack(size, size) & 0xffff;
  const f = cpu.peekStack(2 * size, size);
  const d = farDesc;
  if (f & VM && cpu.cpl === 0 && cpu.mode !== Mode.Long64) cpu.gp(0); // virtual-8086 mode: not modelled
  checkCodeSegment(cpu, sel, d, 'ret');
  const rpl = sel & 3;
  const cplBefore = cpu.cpl;
  const long64 = cpu.mode === Mode.Long64;
  let sp = 0,
    ssSel = 0;
  const outer = rpl > cplBefore;
  if (outer || long64) {
    const splo = cpu.peekStack(3 * size, size);
    sp = size === 8 ? cpu.hi * TWO32 + splo : splo;
    ssSel = cpu.peekStack(4 * size, size) & 0xffff;
  }
  const to64 = (cpu.efer & (1 << 10)) !== 0 && d.long;
  let t = ip;
  if (!to64) {
    t = size === 2 ? ip & 0xffff : ip >>> 0;
    if (t > d.limit) cpu.gp(0);
  } else if (!(t >= -(2 ** 47) && t < 2 ** 47)) cpu.gp(0);
  // Flags: which bits IRET may change depends on the CPL before the return (SDM Vol. 2 IRET).
  let mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT | RF | AC | ID;
  if (size === 2) mask &= 0xffff;
  const iopl = (old >> 12) & 3;
  if (cplBefore === 0) mask |= IOPL | VIF | VIP;
  if (cplBefore <= iopl) mask |= IF;
  // Every check happens before any state changes (a fault leaves the old context intact).
  const ssd = outer || long64 ? checkSsForReturn(cpu, ssSel, rpl, long64 && to64) : null;
  if (!(outer || long64)) {
    cpu.pop(size);
    cpu.pop(size);
    cpu.pop(size);
  }
  loadCs(cpu, sel, d, rpl);
  if (outer || long64) {
    commitSs(cpu, ssSel, rpl, ssd);
    if (cpu.mode === Mode.Long64 || cpu.stackSize === 8) {
      cpu.rlo[4] = sp | 0;
      cpu.rhi[4] = Math.floor(sp / TWO32) | 0;
    } else cpu.spSet(sp);
    if (outer) nullInaccessibleSegments(cpu);
  }
  cpu.setFlags((old & ~mask) | (f & mask));
  cpu.rip = t;
};

const int: Handler = (cpu, i) => deliverEvent(cpu, i.imm & 0xff, EV_SW_INT, -1);
/** Software exceptions (INT3, INTO) are subject to the exception bitmap in non-root operation (SDM 3C §25.2). */
function softwareException(cpu: Cpu, i: Insn, vector: number): void {
  if (cpu.nonRoot && exceptionExits(cpu, vector, -1)) {
    cpu.vmx.exit(R.EXCEPTION_NMI, 0, i.len, { intrInfo: 0x80000000 | (6 << 8) | vector | 0 });
  }
  deliverEvent(cpu, vector, EV_SW_EXC, -1);
}
const int3: Handler = (cpu, i) => softwareException(cpu, i, 3);
const into: Handler = (cpu, i) => {
  if (cpu.fl.of()) softwareException(cpu, i, 4);
};
const int1: Handler = (cpu) => deliverEvent(cpu, 1, EV_PRIV_SW, -1);

export const controlHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  JMP: () => jmpRel,
  JCC: () => jcc,
  CALL: () => callRel,
  CALLN: () => callInd,
  JMPN: () => jmpInd,
  RET: ret,
  LOOP: () => loop(0),
  LOOPE: () => loop(1),
  LOOPNE: () => loop(2),
  JRCXZ: () => jrcxz,
  JMPF: (e) => farPtr(e, false),
  CALLF: (e) => farPtr(e, true),
  RETF: retf,
  IRET: () => iret,
  INT: () => int,
  INT3: () => int3,
  INTO: () => into,
  INT1: () => int1,
};
export { loadSegment };
