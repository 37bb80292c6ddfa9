/**
 * Data movement: MOV forms, MOVZX/MOVSX/MOVSXD, LEA, XCHG, XADD, CMPXCHG(8B/16B),
 * CBW..CQO, PUSH/POP (incl. segment registers), PUSHF/POPF, LAHF/SAHF, CMOVcc,
 * SETcc, flag instructions, ENTER/LEAVE, XLAT, BSWAP, segment-register moves and
 * far-pointer loads, NOPs (SDM Vol. 2).
 */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import type { Cpu } from '../cpu.js';
import type { Handler, Insn } from '../insn.js';
import { alu, OP_CMP } from './alu.js';
import { K_E, K_G, K_ACC, K_IMM, kindOf, readOp, MASK } from './operands.js';
import {
  CF,
  DF,
  IF,
  ZF,
  AC,
  ID,
  IOPL,
  NT,
  TF,
  RF,
  VM,
  VIF,
  VIP,
  ES,
  CS,
  SS,
  DS,
  FS,
  GS,
  UD,
  Mode,
} from '../regs.js';
import { loadSegment } from '../segments.js';
import { R, CPU_PAUSE } from '../../vmx/bits.js';

const TWO32 = 4294967296;

function mov(e: OpcodeEntry): Handler {
  const [dk, sk] = e.operands.split(',').map(kindOf);
  if (e.operands.startsWith('O')) {
    // moffs destination: MOV Ob/Ov, AL/rAX
    return (cpu, i) => {
      const v = cpu.getReg(0, i.size);
      cpu.wrN(cpu.memLin(i, i.size, true), i.size, v, cpu.hi);
    };
  }
  if (e.operands.endsWith('Ob') || e.operands.endsWith('Ov')) {
    return (cpu, i) => {
      const v = cpu.rdN(cpu.memLin(i, i.size, false), i.size);
      cpu.setReg(0, i.size, v, cpu.hi);
    };
  }
  if (e.operands.startsWith('Z')) {
    return (cpu, i) => cpu.setReg(i.rm, i.size, i.imm, i.immHi, i.rex);
  }
  return (cpu, i) => {
    const size = i.size;
    const v = readOp(cpu, i, sk, size);
    const vh = size === 8 ? (sk === K_IMM ? i.immHi : cpu.hi) : 0;
    if (dk === K_E) cpu.writeE(i, v, vh, size);
    else cpu.setReg(dk === K_G ? i.reg : 0, size, v, vh, dk === K_G ? i.rex : 1);
  };
}

function movx(signExt: boolean, srcSize: number): Handler {
  return (cpu, i) => {
    let v = cpu.readE(i, srcSize);
    let h = 0;
    if (signExt) {
      if (srcSize === 1) v = (v << 24) >> 24;
      else if (srcSize === 2) v = (v << 16) >> 16;
      else v = v | 0;
      h = v < 0 ? -1 : 0;
    }
    const size = i.size;
    if (size < 8) v = (v & MASK[size]) >>> 0;
    cpu.setReg(i.reg, size, v, h);
  };
}

function movsxd(cpu: Cpu, i: Insn): void {
  const v = cpu.readE(i, 4) | 0;
  if (i.size === 8) cpu.setReg(i.reg, 8, v, v < 0 ? -1 : 0);
  else cpu.setReg(i.reg, i.size, v & MASK[i.size], 0);
}

function lea(cpu: Cpu, i: Insn): void {
  if (!i.mem) cpu.fault(UD);
  const size = i.size;
  if (i.asize === 8) {
    // Exact 64-bit sum, then truncated to the operand size (SDM Vol. 2 LEA).
    const lo = cpu.ea64(i);
    if (size === 8) cpu.setReg(i.reg, 8, lo, cpu.hi);
    else cpu.setReg(i.reg, size, (lo & MASK[size]) >>> 0, 0);
    return;
  }
  const a = cpu.ea(i);
  cpu.setReg(i.reg, size, (a & MASK[size]) >>> 0, 0);
}

function xchg(e: OpcodeEntry): Handler {
  if (e.operands === 'Zv,rAX')
    return (cpu, i) => {
      // 90 without REX.B is NOP (and PAUSE with F3): it does not zero-extend EAX.
      if (i.rm === 0) {
        if (i.rep === 0xf3 && cpu.nonRoot && cpu.vmx.proc & CPU_PAUSE) cpu.vmx.exit(R.PAUSE, 0, i.len);
        return;
      }
      const size = i.size;
      const a = cpu.getReg(0, size),
        ah = cpu.hi;
      const b = cpu.getReg(i.rm, size),
        bh = cpu.hi;
      cpu.setReg(0, size, b, bh);
      cpu.setReg(i.rm, size, a, ah);
    };
  return (cpu, i) => {
    const size = i.size;
    const g = cpu.getReg(i.reg, size, i.rex),
      gh = cpu.hi;
    if (i.mem) {
      const la = cpu.memLin(i, size, true);
      cpu.probeWrite(la, size);
      const m = cpu.rdN(la, size),
        mh = cpu.hi;
      cpu.wrN(la, size, g, gh);
      cpu.setReg(i.reg, size, m, mh, i.rex);
    } else {
      const m = cpu.getReg(i.rm, size, i.rex),
        mh = cpu.hi;
      cpu.setReg(i.rm, size, g, gh, i.rex);
      cpu.setReg(i.reg, size, m, mh, i.rex);
    }
  };
}

function xadd(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const g = cpu.getReg(i.reg, size, i.rex),
    gh = size === 8 ? cpu.hi : 0;
  const la = i.mem ? cpu.memLin(i, size, true) : 0;
  if (i.mem) cpu.probeWrite(la, size);
  const d = i.mem ? cpu.rdN(la, size) : cpu.getReg(i.rm, size, i.rex);
  const dh = size === 8 ? cpu.hi : 0;
  const r = alu(cpu, 0, size, d, dh, g, gh),
    rh = cpu.hi;
  if (i.mem) cpu.wrN(la, size, r, rh);
  cpu.setReg(i.reg, size, d, dh, i.rex);
  if (!i.mem) cpu.setReg(i.rm, size, r, rh, i.rex);
}

function cmpxchg(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const la = i.mem ? cpu.memLin(i, size, true) : 0;
  if (i.mem) cpu.probeWrite(la, size);
  const d = i.mem ? cpu.rdN(la, size) : cpu.getReg(i.rm, size, i.rex);
  const dh = size === 8 ? cpu.hi : 0;
  const a = cpu.getReg(0, size),
    ah = size === 8 ? cpu.hi : 0;
  alu(cpu, OP_CMP, size, a, ah, d, dh);
  if (cpu.fl.zf()) {
    const s = cpu.getReg(i.reg, size, i.rex),
      sh = size === 8 ? cpu.hi : 0;
    if (i.mem) cpu.wrN(la, size, s, sh);
    else cpu.setReg(i.rm, size, s, sh, i.rex);
  } else {
    // The destination is written back even on failure (SDM Vol. 2 CMPXCHG), then the accumulator loaded.
    if (i.mem) cpu.wrN(la, size, d, dh);
    cpu.setReg(0, size, d, dh);
  }
}

function cmpxchg8b(cpu: Cpu, i: Insn): void {
  const wide = i.size === 8; // REX.W: CMPXCHG16B
  if (wide) {
    const la = cpu.memLin(i, 16, true);
    if (la % 16 !== 0) cpu.gp(0);
    cpu.probeWrite(la, 16);
    const m0 = cpu.rd64(la),
      m0h = cpu.hi;
    const m1 = cpu.rd64(la + 8),
      m1h = cpu.hi;
    const f = cpu.fl.get();
    if ((m0 | 0) === cpu.rlo[0] && m0h === cpu.rhi[0] && (m1 | 0) === cpu.rlo[2] && m1h === cpu.rhi[2]) {
      cpu.wr64(la, cpu.rlo[3], cpu.rhi[3]);
      cpu.wr64(la + 8, cpu.rlo[1], cpu.rhi[1]);
      cpu.fl.put(f | ZF);
    } else {
      cpu.wr64(la, m0, m0h);
      cpu.wr64(la + 8, m1, m1h);
      cpu.setReg(0, 8, m0, m0h);
      cpu.setReg(2, 8, m1, m1h);
      cpu.fl.put(f & ~ZF);
    }
    return;
  }
  const la = cpu.memLin(i, 8, true);
  const lo = cpu.rd32(la),
    hi = cpu.rd32(la + 4);
  const f = cpu.fl.get();
  if ((lo | 0) === cpu.rlo[0] && (hi | 0) === cpu.rlo[2]) {
    cpu.wr64(la, cpu.rlo[3], cpu.rlo[1]);
    cpu.fl.put(f | ZF);
  } else {
    cpu.wr64(la, lo, hi);
    cpu.setReg(0, 4, lo, 0);
    cpu.setReg(2, 4, hi, 0);
    cpu.fl.put(f & ~ZF);
  }
}

function cbw(cpu: Cpu, i: Insn): void {
  switch (i.size) {
    case 2:
      cpu.setReg(0, 2, ((cpu.rlo[0] << 24) >> 24) & 0xffff, 0);
      break;
    case 4:
      cpu.setReg(0, 4, (cpu.rlo[0] << 16) >> 16, 0);
      break;
    default:
      cpu.setReg(0, 8, cpu.rlo[0], cpu.rlo[0] >> 31);
  }
}
function cwd(cpu: Cpu, i: Insn): void {
  switch (i.size) {
    case 2:
      cpu.setReg(2, 2, (cpu.rlo[0] << 16) >> 31, 0);
      break;
    case 4:
      cpu.setReg(2, 4, cpu.rlo[0] >> 31, 0);
      break;
    default:
      cpu.setReg(2, 8, cpu.rhi[0] >> 31, cpu.rhi[0] >> 31);
  }
}

// ---- stack ----------------------------------------------------------------------
const SEG_BY_NAME: Record<string, number> = { ES, CS, SS, DS, FS, GS };

function push(e: OpcodeEntry): Handler {
  const op = e.operands;
  if (op in SEG_BY_NAME) {
    const seg = SEG_BY_NAME[op];
    return (cpu, i) => {
      // A segment push with 32/64-bit operand size writes only 16 bits on most Intel parts;
      // we write the zero-extended selector (allowed by SDM Vol. 2 PUSH).
      cpu.push(i.size, cpu.segSel[seg] & 0xffff, 0);
    };
  }
  if (op === 'Zv') return (cpu, i) => cpu.push(i.size, cpu.getReg(i.rm, i.size), cpu.hi);
  if (op === 'Ib' || op === 'Iz')
    return (cpu, i) => cpu.push(i.size, i.size === 2 ? i.imm & 0xffff : i.imm, i.immHi);
  return (cpu, i) => {
    const v = cpu.readE(i, i.size);
    cpu.push(i.size, v, cpu.hi);
  };
}

function pop(e: OpcodeEntry): Handler {
  const op = e.operands;
  if (op in SEG_BY_NAME) {
    const seg = SEG_BY_NAME[op];
    return (cpu, i) => {
      const v = cpu.peekStack(0, i.size);
      loadSegment(cpu, seg, v & 0xffff);
      cpu.pop(i.size);
      if (seg === SS) {
        cpu.intShadow = 2; // POP SS blocks interrupts for one instruction (SDM Vol. 2 POP)
        cpu.movSsShadow = true;
      }
    };
  }
  if (op === 'Zv')
    return (cpu, i) => {
      const v = cpu.pop(i.size);
      cpu.setReg(i.rm, i.size, v, cpu.hi);
    };
  return (cpu, i) => {
    // POP to memory: the address is computed after RSP is incremented (SDM Vol. 2 POP).
    const save = cpu.spGet();
    const v = cpu.pop(i.size),
      h = cpu.hi;
    try {
      cpu.writeE(i, v, h, i.size);
    } catch (err) {
      cpu.spSet(save);
      throw err;
    }
  };
}

function pushf(cpu: Cpu, i: Insn): void {
  const f = cpu.getFlags();
  if (f & VM && ((f >> 12) & 3) < 3) cpu.gp(0);
  cpu.push(i.size, i.size === 2 ? f & 0xffff : f & ~(VM | RF), 0);
}

/** POPF with the privilege rules of SDM Vol. 2 POPF (IOPL changes only at CPL 0, IF only if CPL <= IOPL). */
function popf(cpu: Cpu, i: Insn): void {
  const old = cpu.getFlags();
  const v = cpu.pop(i.size);
  let mask = CF | 4 | 0x10 | ZF | 0x80 | TF | DF | 0x800 | NT;
  if (i.size !== 2) mask |= AC | ID;
  const iopl = (old >> 12) & 3;
  if (cpu.cpl === 0) mask |= IOPL | IF;
  else if (cpu.cpl <= iopl) mask |= IF;
  const nf = (old & ~mask) | (v & mask);
  cpu.setFlags((nf & ~(RF | VM | VIF | VIP)) | (old & (VM | VIF | VIP)));
}

function lahf(cpu: Cpu): void {
  const f = cpu.getFlags();
  cpu.rlo[0] = (cpu.rlo[0] & ~0xff00) | (((f & 0xd5) | 2) << 8);
}
function sahf(cpu: Cpu): void {
  const f = cpu.getFlags();
  const ah = (cpu.rlo[0] >> 8) & 0xd5;
  cpu.setFlags((f & ~0xd5) | ah);
}

function enter(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const frame = i.imm & 0xffff,
    level = i.imm2 & 31;
  const bp = cpu.getReg(5, size),
    bph = cpu.hi;
  cpu.push(size, bp, bph);
  const frameTemp = cpu.spGet();
  if (level > 0) {
    let cur = cpu.stackSize === 8 ? cpu.regNum(5) : cpu.getReg(5, cpu.stackSize);
    for (let k = 1; k < level; k++) {
      cur -= size;
      const la = cpu.lin(
        SS,
        cpu.stackSize === 8 ? cur : cpu.stackSize === 4 ? cur >>> 0 : cur & 0xffff,
        size,
        false,
      );
      const v = cpu.rdN(la, size);
      cpu.push(size, v, cpu.hi);
    }
    cpu.push(size, frameTemp | 0, Math.floor(frameTemp / TWO32) | 0);
  }
  const ft = frameTemp;
  cpu.setReg(5, size === 8 ? 8 : size, ft | 0, Math.floor(ft / TWO32) | 0);
  const nsp = cpu.spGet() - frame;
  // Probe the lowest byte of the new frame (ENTER faults before changing RSP).
  cpu.lin(SS, cpu.stackSize === 8 ? nsp : cpu.stackSize === 4 ? nsp >>> 0 : nsp & 0xffff, 1, true);
  cpu.spSet(cpu.stackSize === 8 ? nsp : cpu.stackSize === 4 ? nsp >>> 0 : nsp & 0xffff);
}

function leave(cpu: Cpu, i: Insn): void {
  const bp = cpu.stackSize === 8 ? cpu.regNum(5) : cpu.getReg(5, cpu.stackSize);
  const la = cpu.lin(SS, bp, i.size, false);
  const v = cpu.rdN(la, i.size),
    h = cpu.hi;
  cpu.spSet(
    cpu.stackSize === 8 ? bp + i.size : cpu.stackSize === 4 ? (bp + i.size) >>> 0 : (bp + i.size) & 0xffff,
  );
  cpu.setReg(5, i.size, v, h);
}

function pusha(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const sp = cpu.getReg(4, size);
  for (let r = 0; r < 8; r++) cpu.push(size, r === 4 ? sp : cpu.getReg(r, size), 0);
}
function popa(cpu: Cpu, i: Insn): void {
  const size = i.size;
  for (let r = 7; r >= 0; r--) {
    const v = cpu.pop(size);
    if (r !== 4) cpu.setReg(r, size, v, 0);
  }
}

// ---- conditionals -------------------------------------------------------------------
function cmov(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const v = cpu.readE(i, size); // the source is read (and may fault) even when false
  if (cpu.fl.cond(i.low3)) cpu.setReg(i.reg, size, v, cpu.hi);
  else if (size === 4) cpu.rhi[i.reg] = 0; // 32-bit CMOV zero-extends even when false in 64-bit mode
}
function setcc(cpu: Cpu, i: Insn): void {
  cpu.writeE(i, cpu.fl.cond(i.low3) ? 1 : 0, 0, 1);
}

// ---- misc ----------------------------------------------------------------------------
function xlat(cpu: Cpu, i: Insn): void {
  const base = i.asize === 8 ? cpu.regNum(3) : i.asize === 4 ? cpu.rlo[3] >>> 0 : cpu.rlo[3] & 0xffff;
  let off = base + (cpu.rlo[0] & 0xff);
  if (i.asize === 4) off >>>= 0;
  else if (i.asize === 2) off &= 0xffff;
  const v = cpu.rd8(cpu.lin(i.segOverride >= 0 ? i.segOverride : DS, off, 1, false));
  cpu.rlo[0] = (cpu.rlo[0] & ~0xff) | v;
}
function bswap(cpu: Cpu, i: Insn): void {
  const sw = (x: number): number => (x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24) | 0;
  if (i.size === 8) {
    const lo = cpu.rlo[i.rm],
      hi = cpu.rhi[i.rm];
    cpu.setReg(i.rm, 8, sw(hi), sw(lo));
  } else if (i.size === 4) cpu.setReg(i.rm, 4, sw(cpu.rlo[i.rm]), 0);
  else cpu.setReg(i.rm, 2, 0, 0); // BSWAP with a 16-bit operand is undefined; hardware gives 0
}

function movSeg(e: OpcodeEntry): Handler {
  if (e.operands === 'Ew,Sw')
    return (cpu, i) => {
      const sreg = i.reg & 7;
      if (sreg > 5) cpu.fault(UD);
      const v = cpu.segSel[sreg] & 0xffff;
      if (i.mem) cpu.writeE(i, v, 0, 2);
      else cpu.setReg(i.rm, i.size === 2 ? 2 : i.size, v, 0);
    };
  return (cpu, i) => {
    const sreg = i.reg & 7;
    if (sreg > 5 || sreg === CS) cpu.fault(UD);
    const v = cpu.readE(i, 2);
    loadSegment(cpu, sreg, v);
    if (sreg === SS) {
      cpu.intShadow = 2;
      cpu.movSsShadow = true;
    }
  };
}

function lxs(seg: number): Handler {
  return (cpu, i) => {
    if (!i.mem) cpu.fault(UD);
    const size = i.size;
    const la = cpu.memLin(i, size + 2, false);
    const off = cpu.rdN(la, size),
      offh = cpu.hi;
    const sel = cpu.rd16(la + size);
    loadSegment(cpu, seg, sel);
    cpu.setReg(i.reg, size, off, offh);
    if (seg === SS) {
      cpu.intShadow = 2;
      cpu.movSsShadow = true;
    }
  };
}

/** MOVBE (0F 38 F0/F1): load or store with the bytes reversed; memory operand only. */
function movbe(load: boolean): Handler {
  const sw32 = (x: number): number => (x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24) | 0;
  return (cpu, i) => {
    if (!i.mem) cpu.fault(UD);
    const size = i.size;
    if (load) {
      const la = cpu.memLin(i, size, false);
      const v = cpu.rdN(la, size),
        h = cpu.hi;
      if (size === 2) cpu.setReg(i.reg, 2, ((v & 0xff) << 8) | ((v >> 8) & 0xff), 0);
      else if (size === 4) cpu.setReg(i.reg, 4, sw32(v), 0);
      else cpu.setReg(i.reg, 8, sw32(h), sw32(v));
    } else {
      const v = cpu.getReg(i.reg, size),
        h = cpu.hi;
      const la = cpu.memLin(i, size, true);
      if (size === 2) cpu.wr16(la, ((v & 0xff) << 8) | ((v >> 8) & 0xff));
      else if (size === 4) cpu.wr32(la, sw32(v));
      else cpu.wr64(la, sw32(h), sw32(v));
    }
  };
}

const nop: Handler = () => {};

export const dataHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  MOV: mov,
  MOVZX: (e) => movx(false, e.operands.endsWith('b') ? 1 : 2),
  MOVSX: (e) => movx(true, e.operands.endsWith('b') ? 1 : 2),
  MOVSXD: () => movsxd,
  MOVBE: (e) => movbe(e.operands.startsWith('G')),
  LEA: () => lea,
  XCHG: xchg,
  XADD: () => xadd,
  CMPXCHG: () => cmpxchg,
  CMPXCHG8B: () => cmpxchg8b,
  CBW: () => cbw,
  CWD: () => cwd,
  PUSH: push,
  POP: pop,
  PUSHF: () => pushf,
  POPF: () => popf,
  PUSHA: () => pusha,
  POPA: () => popa,
  LAHF: () => lahf,
  SAHF: () => sahf,
  ENTER: () => enter,
  LEAVE: () => leave,
  CMOVCC: () => cmov,
  SETCC: () => setcc,
  XLAT: () => xlat,
  BSWAP: () => bswap,
  MOVSEG: movSeg,
  LES: () => lxs(ES),
  LDS: () => lxs(DS),
  LSS: () => lxs(SS),
  LFS: () => lxs(FS),
  LGS: () => lxs(GS),
  NOPM: () => nop,
  FENCE: () => nop,
  CLC: () => (cpu) => cpu.setFlags(cpu.getFlags() & ~CF),
  STC: () => (cpu) => cpu.setFlags(cpu.getFlags() | CF),
  CMC: () => (cpu) => cpu.setFlags(cpu.getFlags() ^ CF),
  CLD: () => (cpu) => {
    cpu.fl.word &= ~DF;
  },
  STD: () => (cpu) => {
    cpu.fl.word |= DF;
  },
};
export { K_ACC, Mode };
