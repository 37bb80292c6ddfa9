/**
 * Integer instructions: ADD…CMP, TEST, INC/DEC, NOT/NEG, MUL/IMUL/DIV/IDIV, the shifts and
 * rotates, SHLD/SHRD, BT/BTS/BTR/BTC, BSF/BSR, CMPXCHG, XADD, and the BCD adjustments
 * (SDM 2A/2B, each instruction's "Operation" and "Flags Affected").
 */
import type { Emu } from './emu.js';
import { ALU_OPS, MASK, add, alu, condition, incDec, logic, shift, sub, szp, type AluOp } from './alu.js';
import { operandsOf, readOp, sizeOf, writeOp } from './operands.js';
import { AF, ARITH_FLAGS, CF, DE, OF, ZF, RmFault } from './state.js';
import type { Handler } from './handler.js';

const setFlags = (e: Emu, f: number): void => {
  e.s.eflags = (e.s.eflags & ~ARITH_FLAGS) | f;
};

function aluHandler(op: AluOp): Handler {
  return (e) => {
    const [dt, st] = operandsOf(e);
    const size = sizeOf(e, dt);
    const a = readOp(e, dt, size),
      b = readOp(e, st, size);
    const x = alu(op, a, b, e.s.eflags, size);
    const r = x.r;
    setFlags(e, x.f);
    if (op !== 'CMP') writeOp(e, dt, size, r);
  };
}

const test: Handler = (e) => {
  const [dt, st] = operandsOf(e);
  const size = sizeOf(e, dt);
  setFlags(e, logic(readOp(e, dt, size) & readOp(e, st, size), size).f);
};

const incDecHandler =
  (dec: boolean): Handler =>
  (e) => {
    const [dt] = operandsOf(e);
    const size = sizeOf(e, dt);
    const x = incDec(readOp(e, dt, size), dec, e.s.eflags, size);
    const r = x.r;
    setFlags(e, x.f);
    writeOp(e, dt, size, r);
  };

const not: Handler = (e) => {
  const size = sizeOf(e, operandsOf(e)[0]);
  e.writeE(size, ~e.readE(size) & MASK[size]);
};
const neg: Handler = (e) => {
  const size = sizeOf(e, operandsOf(e)[0]);
  const x = sub(0, e.readE(size), 0, size);
  const r = x.r;
  setFlags(e, x.f);
  e.writeE(size, r);
};

const signed = (v: number, size: number): number =>
  size === 1 ? (v << 24) >> 24 : size === 2 ? (v << 16) >> 16 : v | 0;

/** MUL/IMUL with one operand: AX, DX:AX or EDX:EAX ← accumulator × r/m (CF = OF = the upper half matters). */
function mulHandler(isSigned: boolean): Handler {
  return (e) => {
    const size = sizeOf(e, operandsOf(e)[0]);
    const src = e.readE(size),
      acc = e.getReg(0, size);
    const bits = BigInt(size * 8);
    const p = isSigned ? BigInt(signed(acc, size)) * BigInt(signed(src, size)) : BigInt(acc) * BigInt(src);
    const lo = Number(BigInt.asUintN(size * 8, p)),
      hi = Number(BigInt.asUintN(size * 8, p >> bits));
    const overflow = isSigned ? BigInt.asIntN(size * 8, p) !== p : hi !== 0;
    if (size === 1) e.setReg(0, 2, (hi << 8) | lo);
    else {
      e.setReg(0, size, lo);
      e.setReg(2, size, hi);
    }
    // SF, ZF, AF and PF are undefined (SDM 2A MUL): from the low half here, AF clear.
    setFlags(e, (overflow ? CF | OF : 0) | szp(lo, size));
  };
}

/** IMUL r, r/m (, imm): the product truncated to the operand size. */
const imulN: Handler = (e) => {
  const ops = operandsOf(e);
  const size = e.d.osz;
  const a = ops.length === 3 ? readOp(e, ops[1], size) : e.getReg(e.d.reg, size);
  const b = ops.length === 3 ? readOp(e, ops[2], size) : e.readE(size);
  const p = BigInt(signed(a, size)) * BigInt(signed(b, size));
  const r = Number(BigInt.asUintN(size * 8, p));
  e.setReg(e.d.reg, size, r);
  setFlags(e, (BigInt.asIntN(size * 8, p) !== p ? CF | OF : 0) | szp(r, size));
};

/** DIV/IDIV: #DE for a zero divisor or a quotient that does not fit (SDM 2A DIV); flags undefined (unchanged). */
function divHandler(isSigned: boolean): Handler {
  return (e) => {
    const size = sizeOf(e, operandsOf(e)[0]);
    const bits = size * 8;
    const src = e.readE(size);
    if (src === 0) throw new RmFault(DE);
    let dividend: bigint;
    if (size === 1) dividend = BigInt(e.getReg(0, 2));
    else dividend = (BigInt(e.getReg(2, size)) << BigInt(bits)) | BigInt(e.getReg(0, size));
    let q: bigint, r: bigint;
    if (isSigned) {
      const n = BigInt.asIntN(bits * 2, dividend),
        dv = BigInt(signed(src, size));
      q = n / dv; // BigInt division truncates toward zero, as IDIV does
      r = n % dv;
      if (q !== BigInt.asIntN(bits, q)) throw new RmFault(DE);
    } else {
      q = dividend / BigInt(src);
      r = dividend % BigInt(src);
      if (q >> BigInt(bits)) throw new RmFault(DE);
    }
    const qn = Number(BigInt.asUintN(bits, q)),
      rn = Number(BigInt.asUintN(bits, r));
    if (size === 1) e.setReg(0, 2, (rn << 8) | qn);
    else {
      e.setReg(0, size, qn);
      e.setReg(2, size, rn);
    }
  };
}

/** Group 2: the count is masked to 5 bits (SDM 2B SAL/SAR/SHL/SHR, IA-32 compatibility). */
function shiftHandler(kind: number): Handler {
  return (e) => {
    const [dt, ct] = operandsOf(e);
    const size = sizeOf(e, dt);
    const a = readOp(e, dt, size);
    const count = readOp(e, ct, 1) & 0x1f;
    const x = shift(kind, a, count, e.s.eflags, size);
    const r = x.r;
    setFlags(e, x.f);
    if (count) writeOp(e, dt, size, r);
  };
}

/** SHLD/SHRD r/m, r, imm8/CL: a double-width shift (SDM 2B SHLD). Counts above the size are undefined. */
function shiftDouble(left: boolean): Handler {
  return (e) => {
    const ops = operandsOf(e);
    const size = e.d.osz,
      bits = size * 8;
    const count = readOp(e, ops[2], 1) & 0x1f;
    if (count === 0) return;
    const dst = BigInt(e.readE(size)),
      src = BigInt(e.getReg(e.d.reg, size));
    const b = BigInt(bits),
      n = BigInt(count);
    let r: bigint, cf: bigint;
    if (left) {
      const w = (dst << b) | src;
      r = BigInt.asUintN(bits, (w << n) >> b);
      cf = (dst >> (b - n)) & 1n;
    } else {
      const w = (src << b) | dst;
      r = BigInt.asUintN(bits, w >> n);
      cf = (dst >> (n - 1n)) & 1n;
    }
    const rv = Number(r);
    const sign = 2 ** (bits - 1);
    const of = (rv >= sign ? 1 : 0) ^ (Number(dst) >= sign ? 1 : 0);
    setFlags(e, (cf ? CF : 0) | (of ? OF : 0) | szp(rv, size));
    e.writeE(size, rv);
  };
}

/**
 * BT/BTS/BTR/BTC (kind 0-3). With a register bit offset and a memory operand the offset is
 * signed and selects any bit of the bit string (SDM 2A BT); with an immediate it is taken
 * modulo the operand size.
 */
function btHandler(kind: number): Handler {
  return (e) => {
    const [, st] = operandsOf(e);
    const size = e.d.osz,
      bits = size * 8;
    const raw = readOp(e, st, st[0] === 'I' ? 1 : size);
    let bit: number;
    let read: () => number, write: (v: number) => void;
    if (e.d.mod !== 3 && st[0] === 'G') {
      const off = signed(raw, size);
      const { seg, off: base } = e.ea();
      const at = (base + Math.floor(off / bits) * size) & e.addrMask();
      bit = ((off % bits) + bits) % bits;
      read = () => e.rd(seg, at >>> 0, size);
      write = (v) => e.wr(seg, at >>> 0, size, v);
    } else {
      bit = raw % bits;
      read = () => e.readE(size);
      write = (v) => e.writeE(size, v);
    }
    const v = read();
    const m = 2 ** bit;
    const set = Math.floor(v / m) % 2 === 1;
    e.s.eflags = (e.s.eflags & ~CF) | (set ? CF : 0);
    if (kind === 0) return;
    const nv = kind === 1 ? (set ? v : v + m) : kind === 2 ? (set ? v - m : v) : set ? v - m : v + m;
    write(nv);
  };
}

function bitScan(reverse: boolean): Handler {
  return (e) => {
    const size = e.d.osz;
    const v = e.readE(size);
    if (v === 0) {
      e.s.eflags |= ZF; // the destination is left unchanged
      return;
    }
    e.s.eflags &= ~ZF;
    e.setReg(e.d.reg, size, reverse ? 31 - Math.clz32(v) : 31 - Math.clz32(v & -v));
  };
}

const cmpxchg: Handler = (e) => {
  const [dt] = operandsOf(e);
  const size = sizeOf(e, dt);
  const dst = e.readE(size),
    acc = e.getReg(0, size);
  const x = sub(acc, dst, 0, size);
  setFlags(e, x.f);
  // The destination is always written (SDM 2A CMPXCHG): with itself when the compare fails.
  if (acc === dst) e.writeE(size, e.getReg(e.d.reg, size));
  else {
    e.writeE(size, dst);
    e.setReg(0, size, dst);
  }
};
const xadd: Handler = (e) => {
  const [dt] = operandsOf(e);
  const size = sizeOf(e, dt);
  const dst = e.readE(size),
    src = e.getReg(e.d.reg, size);
  const x = add(dst, src, 0, size);
  const r = x.r;
  setFlags(e, x.f);
  e.setReg(e.d.reg, size, dst);
  e.writeE(size, r);
};

// ---- BCD (SDM 2A DAA, DAS, AAA, AAS, AAM, AAD)
const daa: Handler = (e) => {
  const s = e.s;
  const al = e.getReg(0, 1),
    cf = s.eflags & CF,
    af = s.eflags & AF;
  let r = al,
    f = 0;
  if ((al & 0xf) > 9 || af) {
    r = al + 6;
    f |= AF | (cf || r > 0xff ? CF : 0);
    r &= 0xff;
  }
  if (al > 0x99 || cf) {
    r = (r + 0x60) & 0xff;
    f |= CF;
  } else f &= ~CF;
  e.setReg(0, 1, r);
  setFlags(e, f | szp(r, 1));
};
const das: Handler = (e) => {
  const s = e.s;
  const al = e.getReg(0, 1),
    cf = s.eflags & CF,
    af = s.eflags & AF;
  let r = al,
    f = 0;
  if ((al & 0xf) > 9 || af) {
    f |= AF | (cf || al < 6 ? CF : 0);
    r = (al - 6) & 0xff;
  }
  if (al > 0x99 || cf) {
    r = (r - 0x60) & 0xff;
    f |= CF;
  }
  e.setReg(0, 1, r);
  setFlags(e, f | szp(r, 1));
};
function asciiAdjust(subtract: boolean): Handler {
  return (e) => {
    const s = e.s;
    const al = e.getReg(0, 1);
    let f = 0;
    if ((al & 0xf) > 9 || s.eflags & AF) {
      const ax = e.getReg(0, 2);
      // AAS: AX ← AX − 6, then AH ← AH − 1; AAA: AX ← AX + 106H (the borrow/carry reaches AH).
      if (subtract) e.setReg(0, 2, (ax - 6 - 0x100) & 0xffff);
      else e.setReg(0, 2, (ax + 0x106) & 0xffff);
      f = AF | CF;
    }
    e.setReg(0, 1, e.getReg(0, 1) & 0xf);
    setFlags(e, f | szp(e.getReg(0, 1), 1));
  };
}
const aam: Handler = (e) => {
  const base = e.d.imm & 0xff;
  if (base === 0) throw new RmFault(DE);
  const al = e.getReg(0, 1);
  const r = al % base;
  e.setReg(0, 2, (Math.floor(al / base) << 8) | r);
  setFlags(e, szp(r, 1));
};
const aad: Handler = (e) => {
  const base = e.d.imm & 0xff;
  const ax = e.getReg(0, 2);
  const r = ((ax & 0xff) + (ax >> 8) * base) & 0xff;
  e.setReg(0, 2, r);
  setFlags(e, szp(r, 1));
};
const salc: Handler = (e) => e.setReg(0, 1, e.s.eflags & CF ? 0xff : 0);

/** CMOVcc r, r/m: the source is read (and may fault) whatever the condition (SDM 2A CMOVcc). */
const cmov: Handler = (e) => {
  const size = e.d.osz;
  const v = e.readE(size);
  if (condition(e.d.opcode & 15, e.s.eflags)) e.setReg(e.d.reg, size, v);
};
const setcc: Handler = (e) => e.writeE(1, condition(e.d.opcode & 15, e.s.eflags) ? 1 : 0);

export const ARITH_HANDLERS: Record<string, Handler> = {
  ...Object.fromEntries(ALU_OPS.map((op) => [op, aluHandler(op)])),
  TEST: test,
  INC: incDecHandler(false),
  DEC: incDecHandler(true),
  NOT: not,
  NEG: neg,
  MUL: mulHandler(false),
  IMUL: mulHandler(true),
  IMUL2: imulN,
  IMUL3: imulN,
  DIV: divHandler(false),
  IDIV: divHandler(true),
  ROL: shiftHandler(0),
  ROR: shiftHandler(1),
  RCL: shiftHandler(2),
  RCR: shiftHandler(3),
  SHL: shiftHandler(4),
  SHR: shiftHandler(5),
  SAR: shiftHandler(7),
  SHLD: shiftDouble(true),
  SHRD: shiftDouble(false),
  BT: btHandler(0),
  BTS: btHandler(1),
  BTR: btHandler(2),
  BTC: btHandler(3),
  BSF: bitScan(false),
  BSR: bitScan(true),
  CMPXCHG: cmpxchg,
  XADD: xadd,
  DAA: daa,
  DAS: das,
  AAA: asciiAdjust(false),
  AAS: asciiAdjust(true),
  AAM: aam,
  AAD: aad,
  SALC: salc,
  CMOVCC: cmov,
  SETCC: setcc,
};
