/**
 * Data movement: MOV (incl. to and from segment registers), LEA, XCHG, PUSH/POP (incl.
 * segment registers, PUSHA/POPA, PUSHF/POPF), LAHF/SAHF, CBW/CWD, MOVZX/MOVSX, BSWAP, XLAT,
 * LDS/LES/LFS/LGS/LSS, ENTER/LEAVE, the flag instructions (SDM 2A/2B).
 */
import type { Emu } from './emu.js';
import { operandsOf, readOp, sizeOf, writeOp } from './operands.js';
import { loadSegment } from './segments.js';
import {
  AC,
  BLOCK_MOV_SS,
  CF,
  CS,
  DF,
  DS,
  ES,
  FS,
  GS,
  ID,
  IF,
  IOPL,
  NT,
  RF,
  SS,
  TF,
  UD,
  VIF,
  VIP,
  VM,
  RmFault,
} from './state.js';
import type { Handler } from './handler.js';

const SEG_TOKEN: Record<string, number> = { ES, CS, SS, DS, FS, GS };

const mov: Handler = (e) => {
  const [dt, st] = operandsOf(e);
  const size = sizeOf(e, dt);
  writeOp(e, dt, size, readOp(e, st, size));
};

/** Load segment register `sr`; a load of SS blocks interrupts for one instruction (SDM 3A §6.8.3). */
function setSeg(e: Emu, sr: number, sel: number): void {
  loadSegment(e, sr, sel);
  if (sr === SS) e.s.interruptibility |= BLOCK_MOV_SS;
}

/** MOV Sw,Ew / MOV Ew,Sw (8E / 8C). MOV to CS is #UD, so are Sreg encodings 6 and 7. */
const movSeg: Handler = (e) => {
  const d = e.d;
  if (d.reg > 5) throw new RmFault(UD);
  if (d.opcode === 0x8e) {
    if (d.reg === CS) throw new RmFault(UD);
    setSeg(e, d.reg, e.readE(2));
  } else {
    // To a 32-bit register the selector is zero-extended; to memory 16 bits are written.
    const v = e.s.seg[d.reg].sel;
    if (d.mod === 3) e.setReg(d.rm, d.osz, v);
    else e.writeE(2, v);
  }
};

const lea: Handler = (e) => {
  const { off } = e.memOnly();
  e.setReg(e.d.reg, e.d.osz, off);
};

const xchg: Handler = (e) => {
  const [a, b] = operandsOf(e);
  const size = sizeOf(e, a);
  const va = readOp(e, a, size),
    vb = readOp(e, b, size);
  writeOp(e, a, size, vb);
  writeOp(e, b, size, va);
};

const push: Handler = (e) => {
  const [t] = operandsOf(e);
  if (t in SEG_TOKEN) return e.push(e.d.osz, e.s.seg[SEG_TOKEN[t]].sel);
  const size = e.d.osz;
  e.push(size, readOp(e, t, size)); // PUSH SP pushes the value before the decrement (since the 286)
};
const pop: Handler = (e) => {
  const [t] = operandsOf(e);
  const size = e.d.osz;
  if (t in SEG_TOKEN) {
    const sel = e.peek(0, size) & 0xffff;
    setSeg(e, SEG_TOKEN[t], sel);
    e.sp = e.sp + size;
    return;
  }
  // POP r/m computes the address with the incremented stack pointer (SDM 2B POP).
  const v = e.pop(size);
  writeOp(e, t, size, v);
};

const pusha: Handler = (e) => {
  const size = e.d.osz;
  const sp = e.getReg(4, size);
  for (let r = 0; r < 8; r++) e.push(size, r === 4 ? sp : e.getReg(r, size));
};
const popa: Handler = (e) => {
  const size = e.d.osz;
  for (let r = 7; r >= 0; r--) {
    const v = e.pop(size);
    if (r !== 4) e.setReg(r, size, v);
  }
};

const pushf: Handler = (e) => {
  const f = e.s.eflags;
  e.push(e.d.osz, e.d.osz === 2 ? f & 0xffff : f & ~(VM | RF));
};
/** POPF: IOPL only at CPL 0, IF only when CPL <= IOPL; VM, VIF, VIP kept, RF cleared (SDM 2B POPF). */
const popf: Handler = (e) => {
  const s = e.s;
  const old = s.eflags;
  const v = e.pop(e.d.osz);
  let mask = CF | 4 | 0x10 | 0x40 | 0x80 | TF | DF | 0x800 | NT;
  if (e.d.osz === 4) mask |= AC | ID;
  const cpl = s.cpl,
    iopl = (old & IOPL) >> 12;
  if (cpl === 0) mask |= IOPL | IF;
  else if (cpl <= iopl) mask |= IF;
  const nf = (old & ~mask) | (v & mask);
  s.eflags = ((nf & ~(RF | VM | VIF | VIP)) | (old & (VM | VIF | VIP)) | 2) >>> 0;
};
const lahf: Handler = (e) => e.setReg(4, 1, (e.s.eflags & 0xd5) | 2);
const sahf: Handler = (e) => {
  e.s.eflags = (e.s.eflags & ~0xd5) | (e.getReg(4, 1) & 0xd5);
};

/** CBW/CWDE (98) and CWD/CDQ (99). */
const cbw: Handler = (e) => {
  if (e.d.osz === 2) e.setReg(0, 2, ((e.getReg(0, 1) << 24) >> 24) & 0xffff);
  else e.setReg(0, 4, (e.getReg(0, 2) << 16) >> 16);
};
const cwd: Handler = (e) => {
  const size = e.d.osz;
  const top = e.getReg(0, size) & (size === 2 ? 0x8000 : 0x80000000);
  e.setReg(2, size, top ? 0xffffffff : 0);
};

function movx(signExtend: boolean): Handler {
  return (e) => {
    const [, st] = operandsOf(e);
    const from = sizeOf(e, st);
    let v = e.readE(from);
    if (signExtend) v = from === 1 ? (v << 24) >> 24 : (v << 16) >> 16;
    e.setReg(e.d.reg, e.d.osz, v);
  };
}

/** BSWAP with a 16-bit operand is undefined (SDM 2A): the register is cleared, as most CPUs do. */
const bswap: Handler = (e) => {
  const r = e.d.opcode & 7;
  if (e.d.osz === 2) return e.setReg(r, 2, 0);
  const v = e.getReg(r, 4);
  e.setReg(r, 4, ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24));
};

const xlat: Handler = (e) => {
  const d = e.d;
  const off = (e.getReg(3, d.asz) + e.getReg(0, 1)) & e.addrMask();
  e.setReg(0, 1, e.rd(d.seg >= 0 ? d.seg : DS, off >>> 0, 1));
};

/** LDS/LES/LFS/LGS/LSS r, m16:16/32: offset then selector. */
function loadFar(sr: number): Handler {
  return (e) => {
    const size = e.d.osz;
    const { seg, off } = e.memOnly();
    const o = e.rd(seg, off, size);
    const sel = e.rd(seg, (off + size) & e.addrMask(), 2);
    setSeg(e, sr, sel);
    e.setReg(e.d.reg, size, o);
  };
}

/** ENTER imm16, imm8 (SDM 2A ENTER): nesting levels copy the outer frame pointers. */
const enter: Handler = (e) => {
  const size = e.d.osz;
  const frame = e.d.imm & 0xffff,
    level = e.d.imm2 & 31;
  const bpSize = e.stack32 ? 4 : 2;
  e.push(size, e.getReg(5, size));
  const frameTemp = e.sp;
  if (level > 0) {
    let bp = e.getReg(5, bpSize);
    for (let k = 1; k < level; k++) {
      bp = (bp - size) & (bpSize === 4 ? 0xffffffff : 0xffff);
      e.push(size, e.rd(SS, bp >>> 0, size));
    }
    e.push(size, frameTemp);
  }
  e.setReg(5, bpSize, frameTemp);
  e.sp = e.sp - frame;
};
const leave: Handler = (e) => {
  e.sp = e.getReg(5, e.stack32 ? 4 : 2);
  e.setReg(5, e.d.osz, e.pop(e.d.osz));
};

const nop: Handler = () => {};

export const DATA_HANDLERS: Record<string, Handler> = {
  MOV: mov,
  MOVSEG: movSeg,
  LEA: lea,
  XCHG: xchg,
  PUSH: push,
  POP: pop,
  PUSHA: pusha,
  POPA: popa,
  PUSHF: pushf,
  POPF: popf,
  LAHF: lahf,
  SAHF: sahf,
  CBW: cbw,
  CWD: cwd,
  MOVZX: movx(false),
  MOVSX: movx(true),
  BSWAP: bswap,
  XLAT: xlat,
  LES: loadFar(ES),
  LDS: loadFar(DS),
  LSS: loadFar(SS),
  LFS: loadFar(FS),
  LGS: loadFar(GS),
  ENTER: enter,
  LEAVE: leave,
  NOPM: nop,
  FENCE: nop,
  FWAIT: nop,
  CLC: (e) => void (e.s.eflags &= ~CF),
  STC: (e) => void (e.s.eflags |= CF),
  CMC: (e) => void (e.s.eflags ^= CF),
  CLD: (e) => void (e.s.eflags &= ~DF),
  STD: (e) => void (e.s.eflags |= DF),
};
