/**
 * Integer arithmetic and logic: ADD OR ADC SBB AND SUB XOR CMP TEST, INC DEC NEG
 * NOT, MUL IMUL DIV IDIV (SDM Vol. 2). Flags are recorded lazily where possible.
 */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import type { Cpu } from '../cpu.js';
import type { Handler, Insn } from '../insn.js';
import type { SpecializableHandler } from '../decode.js';
import { LF_ADD, LF_ADC, LF_SUB, LF_SBB, LF_LOGIC, LF_INC, LF_DEC, PARITY } from '../flags.js';
import { CF, OF, SF, ZF, PF, DE } from '../regs.js';
import { K_E, K_G, K_IMM, kindOf, readOp, MASK } from './operands.js';

const TWO32 = 4294967296;
export const OP_ADD = 0,
  OP_OR = 1,
  OP_ADC = 2,
  OP_SBB = 3,
  OP_AND = 4,
  OP_SUB = 5,
  OP_XOR = 6,
  OP_CMP = 7,
  OP_TEST = 8;

/** Compute `d op s` for `size`; returns the low part and leaves the high part in cpu.hi. */
export function alu(
  cpu: Cpu,
  op: number,
  size: number,
  d: number,
  dh: number,
  s: number,
  sh: number,
): number {
  const fl = cpu.fl;
  let r = 0,
    rh = 0;
  if (size !== 8) {
    const m = MASK[size];
    dh = sh = 0;
    switch (op) {
      case OP_ADD:
        r = (d + s) & m;
        fl.set(LF_ADD, size, d, 0, s, 0, r >>> 0, 0);
        break;
      case OP_ADC: {
        const c = fl.cf() ? 1 : 0;
        r = (d + s + c) & m;
        fl.set(LF_ADC, size, d, 0, s, 0, r >>> 0, 0);
        fl.cin = c;
        break;
      }
      case OP_SUB:
      case OP_CMP:
        r = (d - s) & m;
        fl.set(LF_SUB, size, d, 0, s, 0, r >>> 0, 0);
        break;
      case OP_SBB: {
        const c = fl.cf() ? 1 : 0;
        r = (d - s - c) & m;
        fl.set(LF_SBB, size, d, 0, s, 0, r >>> 0, 0);
        fl.cin = c;
        break;
      }
      case OP_OR:
        r = (d | s) & m;
        fl.set(LF_LOGIC, size, d, 0, s, 0, r >>> 0, 0);
        break;
      case OP_AND:
      case OP_TEST:
        r = d & s & m;
        fl.set(LF_LOGIC, size, d, 0, s, 0, r >>> 0, 0);
        break;
      default:
        r = (d ^ s) & m;
        fl.set(LF_LOGIC, size, d, 0, s, 0, r >>> 0, 0);
        break;
    }
    cpu.hi = 0;
    return r >>> 0;
  }
  d >>>= 0;
  s >>>= 0;
  switch (op) {
    case OP_ADD:
    case OP_ADC: {
      const c = op === OP_ADC && fl.cf() ? 1 : 0;
      const t = d + s + c;
      r = t >>> 0;
      rh = (dh + sh + (t >= TWO32 ? 1 : 0)) | 0;
      fl.set(op === OP_ADD ? LF_ADD : LF_ADC, 8, d, dh, s, sh, r, rh);
      fl.cin = c;
      break;
    }
    case OP_SUB:
    case OP_CMP:
    case OP_SBB: {
      const c = op === OP_SBB && fl.cf() ? 1 : 0;
      const t = d - s - c;
      r = t >>> 0;
      rh = (dh - sh - (t < 0 ? 1 : 0)) | 0;
      fl.set(op === OP_SBB ? LF_SBB : LF_SUB, 8, d, dh, s, sh, r, rh);
      fl.cin = c;
      break;
    }
    case OP_OR:
      r = (d | s) >>> 0;
      rh = dh | sh;
      fl.set(LF_LOGIC, 8, d, dh, s, sh, r, rh);
      break;
    case OP_AND:
    case OP_TEST:
      r = (d & s) >>> 0;
      rh = dh & sh;
      fl.set(LF_LOGIC, 8, d, dh, s, sh, r, rh);
      break;
    default:
      r = (d ^ s) >>> 0;
      rh = dh ^ sh;
      fl.set(LF_LOGIC, 8, d, dh, s, sh, r, rh);
      break;
  }
  cpu.hi = rh;
  return r;
}

function binary(op: number, e: OpcodeEntry): Handler {
  const [dk, sk] = e.operands.split(',').map(kindOf);
  const write = op !== OP_CMP && op !== OP_TEST;
  const h: SpecializableHandler = (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    const s = readOp(cpu, i, sk, size);
    const sh = size === 8 ? (sk === K_IMM ? i.immHi : cpu.hi) : 0;
    if (dk === K_E && i.mem) {
      const la = cpu.memLin(i, size, write);
      // Read-modify-write: check the write first, so a fault leaves flags unchanged and reports W=1.
      if (write) cpu.probeWrite(la, size);
      const d = cpu.rdN(la, size);
      const r = alu(cpu, op, size, d, cpu.hi, s, sh);
      if (write) cpu.wrN(la, size, r, cpu.hi);
      return;
    }
    const reg = dk === K_E ? i.rm : dk === K_IMM ? 0 : dk === 1 ? i.reg : 0;
    const rex = dk === K_E || dk === 1 ? i.rex : 1;
    const d = cpu.getReg(reg, size, rex);
    const r = alu(cpu, op, size, d, size === 8 ? cpu.hi : 0, s, sh);
    if (write) cpu.setReg(reg, size, r, cpu.hi, rex);
  };
  // Register-to-register forms of 32/64-bit ADD/SUB/CMP/AND/OR/XOR/TEST are the hottest
  // instructions in compiled code: give them straight-line handlers.
  if ((dk === K_E && sk === K_G) || (dk === K_G && sk === K_E) || (dk === K_E && sk === K_IMM)) {
    h.specialize = (i: Insn): Handler | undefined => {
      if (i.mem || (i.size !== 4 && i.size !== 8)) return undefined;
      const f = FAST[op];
      if (!f) return undefined;
      return sk === K_IMM
        ? i.size === 8
          ? f.ri64
          : f.ri32
        : dk === K_E
          ? i.size === 8
            ? f.rr64
            : f.rr32
          : i.size === 8
            ? f.rr64rev
            : f.rr32rev;
    };
  }
  return h;
}

interface FastSet {
  rr64: Handler;
  rr32: Handler;
  rr64rev: Handler;
  rr32rev: Handler;
  ri64: Handler;
  ri32: Handler;
}
/**
 * Build the fast handlers of one operation from a 64-bit and a 32-bit kernel
 * (d = destination register, sLo/sHi = source value).
 */
function fastSet(
  k64: (cpu: Cpu, d: number, sLo: number, sHi: number) => void,
  k32: (cpu: Cpu, d: number, s: number) => void,
): FastSet {
  return {
    rr64: (cpu, i) => k64(cpu, i.rm, cpu.rlo[i.reg], cpu.rhi[i.reg]),
    rr32: (cpu, i) => k32(cpu, i.rm, cpu.rlo[i.reg]),
    rr64rev: (cpu, i) => k64(cpu, i.reg, cpu.rlo[i.rm], cpu.rhi[i.rm]),
    rr32rev: (cpu, i) => k32(cpu, i.reg, cpu.rlo[i.rm]),
    ri64: (cpu, i) => k64(cpu, i.rm, i.imm, i.immHi),
    ri32: (cpu, i) => k32(cpu, i.rm, i.imm),
  };
}
function addSub(sub: boolean, write: boolean): FastSet {
  return fastSet(
    (cpu, d, sLo, sHi) => {
      const rlo = cpu.rlo,
        rhi = cpu.rhi;
      const a = rlo[d] >>> 0,
        ah = rhi[d],
        b = sLo >>> 0;
      const t = sub ? a - b : a + b;
      const rh = sub ? (ah - sHi - (t < 0 ? 1 : 0)) | 0 : (ah + sHi + (t >= TWO32 ? 1 : 0)) | 0;
      const fl = cpu.fl;
      fl.op = sub ? LF_SUB : LF_ADD;
      fl.size = 8;
      fl.dst = a;
      fl.dstHi = ah;
      fl.src = b;
      fl.srcHi = sHi;
      fl.res = t >>> 0;
      fl.resHi = rh;
      if (write) {
        rlo[d] = t | 0;
        rhi[d] = rh;
      }
    },
    (cpu, d, s) => {
      const rlo = cpu.rlo;
      const a = rlo[d] >>> 0,
        b = s >>> 0;
      const r = (sub ? a - b : a + b) >>> 0;
      const fl = cpu.fl;
      fl.op = sub ? LF_SUB : LF_ADD;
      fl.size = 4;
      fl.dst = a;
      fl.dstHi = 0;
      fl.src = b;
      fl.srcHi = 0;
      fl.res = r;
      fl.resHi = 0;
      if (write) {
        rlo[d] = r | 0;
        cpu.rhi[d] = 0;
      }
    },
  );
}
function logic(kind: number, write: boolean): FastSet {
  const f = (a: number, b: number): number => (kind === OP_OR ? a | b : kind === OP_XOR ? a ^ b : a & b);
  return fastSet(
    (cpu, d, sLo, sHi) => {
      const rlo = cpu.rlo,
        rhi = cpu.rhi;
      const r = f(rlo[d], sLo),
        rh = f(rhi[d], sHi);
      const fl = cpu.fl;
      fl.op = LF_LOGIC;
      fl.size = 8;
      fl.res = r >>> 0;
      fl.resHi = rh;
      fl.dst = fl.src = fl.dstHi = fl.srcHi = 0;
      if (write) {
        rlo[d] = r;
        rhi[d] = rh;
      }
    },
    (cpu, d, s) => {
      const r = f(cpu.rlo[d], s);
      const fl = cpu.fl;
      fl.op = LF_LOGIC;
      fl.size = 4;
      fl.res = r >>> 0;
      fl.resHi = 0;
      fl.dst = fl.src = fl.dstHi = fl.srcHi = 0;
      if (write) {
        cpu.rlo[d] = r;
        cpu.rhi[d] = 0;
      }
    },
  );
}
const FAST: (FastSet | undefined)[] = [];
FAST[OP_ADD] = addSub(false, true);
FAST[OP_SUB] = addSub(true, true);
FAST[OP_CMP] = addSub(true, false);
FAST[OP_AND] = logic(OP_AND, true);
FAST[OP_OR] = logic(OP_OR, true);
FAST[OP_XOR] = logic(OP_XOR, true);
FAST[OP_TEST] = logic(OP_AND, false);

/** INC/DEC of a 32/64-bit register: the loop-counter case, kept straight-line. */
function incdecReg(dec: boolean, size: number): Handler {
  return (cpu: Cpu, i: Insn): void => {
    const fl = cpu.fl;
    const c = fl.cf();
    const r = i.rm;
    const d = cpu.rlo[r] >>> 0;
    const dh = size === 8 ? cpu.rhi[r] : 0;
    const t = dec ? d - 1 : d + 1;
    const lo = t >>> 0;
    const hi = size === 8 ? (dh + (t >= TWO32 ? 1 : t < 0 ? -1 : 0)) | 0 : 0;
    fl.word = (fl.word & ~CF) | (c ? CF : 0);
    fl.op = dec ? LF_DEC : LF_INC;
    fl.size = size;
    fl.dst = d;
    fl.dstHi = dh;
    fl.src = 1;
    fl.srcHi = 0;
    fl.res = lo;
    fl.resHi = hi;
    cpu.rlo[r] = lo | 0;
    cpu.rhi[r] = hi;
  };
}

function incdec(dec: boolean): Handler {
  const fast4 = incdecReg(dec, 4),
    fast8 = incdecReg(dec, 8);
  const h: SpecializableHandler = (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    const fl = cpu.fl;
    const c = fl.cf();
    const la = i.mem ? cpu.memLin(i, size, true) : 0;
    if (i.mem) cpu.probeWrite(la, size);
    const d = i.mem ? cpu.rdN(la, size) : cpu.getReg(i.rm, size, i.rex);
    const dh = size === 8 ? cpu.hi : 0;
    let r: number, rh: number;
    if (size !== 8) {
      r = ((dec ? d - 1 : d + 1) & MASK[size]) >>> 0;
      rh = 0;
    } else {
      const t = dec ? d - 1 : d + 1;
      r = t >>> 0;
      rh = (dh + (t >= TWO32 ? 1 : t < 0 ? -1 : 0)) | 0;
    }
    fl.word = (fl.word & ~CF) | (c ? CF : 0);
    fl.set(dec ? LF_DEC : LF_INC, size, d >>> 0, dh, 1, 0, r, rh);
    if (i.mem) cpu.wrN(la, size, r, rh);
    else cpu.setReg(i.rm, size, r, rh, i.rex);
  };
  h.specialize = (i) => (i.mem ? undefined : i.size === 8 ? fast8 : i.size === 4 ? fast4 : undefined);
  return h;
}

function unary(neg: boolean): Handler {
  return (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    const la = i.mem ? cpu.memLin(i, size, true) : 0;
    if (i.mem) cpu.probeWrite(la, size);
    const d = i.mem ? cpu.rdN(la, size) : cpu.getReg(i.rm, size, i.rex);
    const dh = size === 8 ? cpu.hi : 0;
    let r: number, rh: number;
    if (neg) {
      r = alu(cpu, OP_SUB, size, 0, 0, d, dh);
      rh = cpu.hi;
    } else if (size === 8) {
      r = ~d >>> 0;
      rh = ~dh;
    } else {
      r = (~d & MASK[size]) >>> 0;
      rh = 0;
    }
    if (i.mem) cpu.wrN(la, size, r, rh);
    else cpu.setReg(i.rm, size, r, rh, i.rex);
  };
}

// ---- multiplication -------------------------------------------------------
/** 128-bit product words (little-endian int32) of the last mulU64. */
const prod = new Int32Array(4);

/** Unsigned 64x64 -> 128 multiply into `prod`, with 16-bit limbs (no allocation, exact in doubles). */
export function mulU64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff,
    a1 = al >>> 16,
    a2 = ah & 0xffff,
    a3 = ah >>> 16;
  const b0 = bl & 0xffff,
    b1 = bl >>> 16,
    b2 = bh & 0xffff,
    b3 = bh >>> 16;
  let c = a0 * b0;
  const r0 = c & 0xffff;
  c = Math.floor(c / 65536) + a0 * b1 + a1 * b0;
  const r1 = c % 65536;
  c = Math.floor(c / 65536) + a0 * b2 + a1 * b1 + a2 * b0;
  const r2 = c % 65536;
  c = Math.floor(c / 65536) + a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0;
  const r3 = c % 65536;
  c = Math.floor(c / 65536) + a1 * b3 + a2 * b2 + a3 * b1;
  const r4 = c % 65536;
  c = Math.floor(c / 65536) + a2 * b3 + a3 * b2;
  const r5 = c % 65536;
  c = Math.floor(c / 65536) + a3 * b3;
  const r6 = c % 65536;
  const r7 = Math.floor(c / 65536) % 65536;
  prod[0] = r0 | (r1 << 16);
  prod[1] = r2 | (r3 << 16);
  prod[2] = r4 | (r5 << 16);
  prod[3] = r6 | (r7 << 16);
}

/** Signed 64x64 -> 128 multiply into `prod`. */
function mulS64(ah: number, al: number, bh: number, bl: number): void {
  mulU64(ah, al, bh, bl);
  // Signed correction of the high half: subtract b if a < 0 and a if b < 0 (mod 2^64).
  let hl = prod[2] >>> 0,
    hh = prod[3];
  if (ah < 0) {
    const t = hl - (bl >>> 0);
    hh = (hh - bh - (t < 0 ? 1 : 0)) | 0;
    hl = t >>> 0;
  }
  if (bh < 0) {
    const t = hl - (al >>> 0);
    hh = (hh - ah - (t < 0 ? 1 : 0)) | 0;
    hl = t >>> 0;
  }
  prod[2] = hl | 0;
  prod[3] = hh;
}

function mulFlags(cpu: Cpu, overflow: boolean, lo: number, size: number): void {
  // SF/ZF/AF/PF are undefined after MUL/IMUL (SDM Vol. 2); we set them from the low result.
  const m = MASK[size] || 0xffffffff;
  let f = 0;
  if (overflow) f |= CF | OF;
  if (size !== 8 && (lo & m) === 0) f |= ZF;
  if (size !== 8 && (lo >>> (size * 8 - 1)) & 1) f |= SF;
  if (PARITY[lo & 0xff]) f |= PF;
  cpu.fl.setEager(f);
}

/** Two- and three-operand IMUL: dst = src1 * src2 truncated; CF=OF when the product does not fit. */
function imulTrunc(cpu: Cpu, size: number, a: number, ah: number, b: number, bh: number): number {
  if (size === 8) {
    mulS64(ah, a, bh, b);
    const lo = prod[0],
      hi = prod[1];
    const ovf = !(
      (hi < 0 && prod[2] === -1 && prod[3] === -1) ||
      (hi >= 0 && prod[2] === 0 && prod[3] === 0)
    );
    mulFlags(cpu, ovf, lo, 8);
    cpu.fl.setEager((cpu.fl.word & ~(SF | ZF)) | (hi < 0 ? SF : 0) | ((lo | hi) === 0 ? ZF : 0));
    cpu.hi = hi;
    return lo >>> 0;
  }
  const bits = size * 8;
  const sa = (a << (32 - bits)) >> (32 - bits),
    sb = (b << (32 - bits)) >> (32 - bits);
  let lo: number;
  let ovf: boolean;
  if (size === 4) {
    const p = Math.imul(sa, sb);
    const exact = sa * sb; // exact in doubles (|p| < 2^62 loses precision only beyond 2^53)
    lo = p;
    ovf = Math.abs(exact) >= 2 ** 53 ? true : exact !== p;
    if (Math.abs(exact) >= 2 ** 53) ovf = true;
  } else {
    const p = sa * sb;
    lo = p;
    ovf = (p << (32 - bits)) >> (32 - bits) !== p;
  }
  mulFlags(cpu, ovf, lo, size);
  cpu.hi = 0;
  return (lo & MASK[size]) >>> 0;
}

function mul1(signed: boolean): Handler {
  return (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    const s = cpu.readE(i, size);
    const sh = size === 8 ? cpu.hi : 0;
    const fl = cpu.fl;
    void fl;
    if (size === 1) {
      const a = cpu.rlo[0] & 0xff;
      const p = signed ? ((a << 24) >> 24) * ((s << 24) >> 24) : a * s;
      cpu.rlo[0] = (cpu.rlo[0] & ~0xffff) | (p & 0xffff);
      const ovf = signed ? (p << 24) >> 24 !== p : p > 0xff;
      mulFlags(cpu, ovf, p, 1);
      return;
    }
    if (size === 2) {
      const a = cpu.rlo[0] & 0xffff;
      const p = signed ? ((a << 16) >> 16) * ((s << 16) >> 16) : a * s;
      cpu.rlo[0] = (cpu.rlo[0] & ~0xffff) | (p & 0xffff);
      cpu.rlo[2] = (cpu.rlo[2] & ~0xffff) | ((p >> 16) & 0xffff);
      const ovf = signed ? (p << 16) >> 16 !== p : p > 0xffff;
      mulFlags(cpu, ovf, p, 2);
      return;
    }
    if (size === 4) {
      const a = cpu.rlo[0];
      if (signed) mulS64(a >> 31, a, s >> 31, s | 0);
      else mulU64(0, a, 0, s | 0);
      const lo = prod[0],
        hi = prod[1];
      cpu.setReg(0, 4, lo, 0);
      cpu.setReg(2, 4, hi, 0);
      const ovf = signed ? hi !== lo >> 31 : hi !== 0;
      mulFlags(cpu, ovf, lo, 4);
      return;
    }
    if (signed) mulS64(cpu.rhi[0], cpu.rlo[0], sh, s | 0);
    else mulU64(cpu.rhi[0], cpu.rlo[0], sh, s | 0);
    const p0 = prod[0],
      p1 = prod[1],
      p2 = prod[2],
      p3 = prod[3];
    cpu.setReg(0, 8, p0, p1);
    cpu.setReg(2, 8, p2, p3);
    const ovf = signed
      ? !((p1 < 0 && p2 === -1 && p3 === -1) || (p1 >= 0 && p2 === 0 && p3 === 0))
      : (p2 | p3) !== 0;
    mulFlags(cpu, ovf, p0, 8);
  };
}

function imul2(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const s = cpu.readE(i, size);
  const sh = size === 8 ? cpu.hi : 0;
  const d = cpu.getReg(i.reg, size);
  const dh = size === 8 ? cpu.hi : 0;
  const r = imulTrunc(cpu, size, d, dh, s, sh);
  cpu.setReg(i.reg, size, r, cpu.hi);
}
function imul3(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const s = cpu.readE(i, size);
  const sh = size === 8 ? cpu.hi : 0;
  const r = imulTrunc(cpu, size, s, sh, i.imm & (MASK[size] || -1), i.immHi);
  cpu.setReg(i.reg, size, r, cpu.hi);
}

// ---- division ---------------------------------------------------------------
function div1(signed: boolean): Handler {
  return (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    const s = cpu.readE(i, size);
    const sh = size === 8 ? cpu.hi : 0;
    if (size === 1) {
      const a = cpu.rlo[0] & 0xffff;
      if (s === 0) cpu.fault(DE);
      let q: number, r: number;
      if (signed) {
        const n = (a << 16) >> 16,
          dv = (s << 24) >> 24;
        q = Math.trunc(n / dv);
        r = n - q * dv;
        if (q > 127 || q < -128) cpu.fault(DE);
      } else {
        q = Math.floor(a / s);
        r = a - q * s;
        if (q > 0xff) cpu.fault(DE);
      }
      cpu.rlo[0] = (cpu.rlo[0] & ~0xffff) | (q & 0xff) | ((r & 0xff) << 8);
      return;
    }
    if (size === 2 || size === 4) {
      const bits = size * 8;
      const lo = cpu.rlo[0] & MASK[size],
        hi = cpu.rlo[2] & MASK[size];
      if (s === 0) cpu.fault(DE);
      const two = size === 2 ? 65536 : TWO32;
      if (!signed) {
        const n = (hi >>> 0) * two + (lo >>> 0);
        let q: number, r: number;
        if (n < 2 ** 53) {
          q = Math.floor(n / s);
          r = n - q * s;
        } else {
          const bn = (BigInt(hi >>> 0) << BigInt(bits)) | BigInt(lo >>> 0);
          q = Number(bn / BigInt(s));
          r = Number(bn % BigInt(s));
        }
        if (q >= two) cpu.fault(DE);
        cpu.setReg(0, size, q, 0);
        cpu.setReg(2, size, r, 0);
      } else {
        const shi = (hi << (32 - bits)) >> (32 - bits);
        const dv = (s << (32 - bits)) >> (32 - bits);
        let q: number, r: number;
        const n = shi * two + (lo >>> 0);
        if (Math.abs(n) < 2 ** 53) {
          q = Math.trunc(n / dv);
          r = n - q * dv;
        } else {
          const bn = (BigInt(shi) << BigInt(bits)) + BigInt(lo >>> 0);
          q = Number(bn / BigInt(dv));
          r = Number(bn % BigInt(dv));
        }
        if (q >= two / 2 || q < -two / 2) cpu.fault(DE);
        cpu.setReg(0, size, q & MASK[size], 0);
        cpu.setReg(2, size, r & MASK[size], 0);
      }
      return;
    }
    // 128 / 64 bits.
    if (s === 0 && sh === 0) cpu.fault(DE);
    const nlo = cpu.rlo[0] >>> 0,
      nhi = cpu.rhi[0],
      xlo = cpu.rlo[2] >>> 0,
      xhi = cpu.rhi[2];
    // Fast path: unsigned, RDX = 0, dividend and divisor below 2^53.
    if (!signed && (xlo | xhi) === 0 && nhi >= 0 && nhi < 0x200000 && sh >= 0 && sh < 0x200000) {
      const n = nhi * TWO32 + nlo,
        dv = sh * TWO32 + (s >>> 0);
      const q = Math.floor(n / dv),
        r = n - q * dv;
      cpu.setReg(0, 8, q | 0, Math.floor(q / TWO32) | 0);
      cpu.setReg(2, 8, r | 0, Math.floor(r / TWO32) | 0);
      return;
    }
    const u = (h: number, l: number): bigint => (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0);
    let n = (u(xhi, xlo) << 64n) | u(nhi, nlo);
    let dv = u(sh, s);
    if (signed) {
      if (n >= 1n << 127n) n -= 1n << 128n;
      if (dv >= 1n << 63n) dv -= 1n << 64n;
    }
    const q = n / dv,
      r = n % dv;
    if (signed ? q >= 1n << 63n || q < -(1n << 63n) : q >= 1n << 64n) cpu.fault(DE);
    const qu = BigInt.asUintN(64, q),
      ru = BigInt.asUintN(64, r);
    cpu.setReg(0, 8, Number(qu & 0xffffffffn) | 0, Number(qu >> 32n) | 0);
    cpu.setReg(2, 8, Number(ru & 0xffffffffn) | 0, Number(ru >> 32n) | 0);
  };
}

export const aluHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  ADD: (e) => binary(OP_ADD, e),
  OR: (e) => binary(OP_OR, e),
  ADC: (e) => binary(OP_ADC, e),
  SBB: (e) => binary(OP_SBB, e),
  AND: (e) => binary(OP_AND, e),
  SUB: (e) => binary(OP_SUB, e),
  XOR: (e) => binary(OP_XOR, e),
  CMP: (e) => binary(OP_CMP, e),
  TEST: (e) => binary(OP_TEST, e),
  INC: () => incdec(false),
  DEC: () => incdec(true),
  NEG: () => unary(true),
  NOT: () => unary(false),
  MUL: () => mul1(false),
  IMUL: () => mul1(true),
  IMUL2: () => imul2,
  IMUL3: () => imul3,
  DIV: () => div1(false),
  IDIV: () => div1(true),
};
export { K_E };
