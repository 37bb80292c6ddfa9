// Case generators for the differential CPU tests, one per opcode group, each
// with the SDM's undefined flags / registers for the case it produces.
//
// Every generated case is one instruction whose memory accesses stay inside the
// operand window (see types.ts). Generation is deterministic: case i of group g
// under seed s depends only on (s, g, i), so a mismatch is reproducible alone.
import { B, hex, interesting, mask, ptrName, regName, sext } from './asm.js';
import type { Size } from './asm.js';
import type { HostFeatures } from './native.js';
import { Rng } from './rng.js';
import type { GenCase } from './types.js';
import { AF, ARITH_FLAGS, CF, DF, INIT_RSP, MEM_ADDR, MEM_SIZE, OF, PF, SF, ZF } from './types.js';

export { Rng } from './rng.js';

export interface Group {
  name: string;
  /** What the group covers, for listings. */
  desc: string;
  /** One case, or null to ask for another draw (an excluded combination). */
  gen: (r: Rng) => GenCase | null;
  /** Host CPUID features the group needs (skipped without them). */
  requires?: (keyof HostFeatures)[];
  /** Cases per test run (default 2000). */
  count?: number;
  /** True if the group relies on CPL 3 (privileged instructions must #GP). */
  cpl3?: boolean;
  /** Some cases raise exceptions on purpose (elsewhere an exception is a generator bug). */
  faults?: boolean;
}

const SIZES: Size[] = [8, 16, 32, 64];
const VSIZES: Size[] = [16, 32, 64];
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

/**
 * Undefined arithmetic flags per instruction family (Intel SDM Vol. 2, "Flags
 * Affected"). Flags an instruction leaves unaffected are *defined* (they must
 * keep their input value). Count-dependent families have functions below.
 */
export const UNDEF = {
  /** ADD ADC SUB SBB CMP NEG INC DEC XADD CMPXCHG CMPS SCAS: all defined. */
  arith: 0n,
  /** OR AND XOR TEST: OF = CF = 0, SF ZF PF by result, AF undefined. */
  logic: AF,
  /** MUL, IMUL (all forms): CF = OF = "high half significant"; SF ZF AF PF undefined. */
  mul: SF | ZF | AF | PF,
  /** DIV IDIV: all six undefined. */
  div: ARITH_FLAGS,
  /** BT BTS BTR BTC: CF = the bit; ZF unaffected; OF SF AF PF undefined. */
  bt: OF | SF | AF | PF,
  /** BSF BSR: ZF = (source == 0); the rest undefined (and the destination if the source is 0). */
  bsf: CF | OF | SF | AF | PF,
  /** TZCNT LZCNT: CF = (source == 0), ZF = (result == 0); OF SF AF PF undefined. */
  tzcnt: OF | SF | AF | PF,
  /** POPCNT: ZF = (source == 0), OF SF AF CF PF cleared. */
  popcnt: 0n,
} as const;

const sfx = (size: Size) => ({ 8: 'b', 16: 'w', 32: 'd', 64: 'q' })[size];

/** Operand-size opcode pair: op8 for byte operands, op8+1 otherwise. */
const opv = (size: Size, op8: number) => (size === 8 ? op8 : op8 + 1);

/** Immediate of the given operand size as encoded (16/32/64 -> 2/4/4 bytes), returns text. */
function immV(b: B, size: Size): string {
  const bytes = size === 8 ? 1 : size === 16 ? 2 : 4;
  const v = interesting(b.r, bytes * 8);
  b.immBytes(bytes, v);
  return hex(size === 64 ? sext(v, 32) : v);
}

function imm8(b: B): bigint {
  const v = interesting(b.r, 8);
  b.immBytes(1, v);
  return v;
}

function lockMaybe(b: B, isMem: boolean, p = 0.15): string {
  if (isMem && b.r.bool(p)) {
    b.prefixes.push(0xf0);
    return 'lock ';
  }
  return '';
}

// ---- ADD OR ADC SBB AND SUB XOR CMP -----------------------------------------

const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const LOGIC = new Set([1, 4, 6]);

function genAlu(r: Rng): GenCase {
  const b = new B(r, 'alu');
  const op = r.int(8);
  const mn = ALU[op];
  const size = r.pick(SIZES);
  b.size(size, { redundant66: true });
  // SDM: OR/AND/XOR clear OF and CF; AF is undefined.
  b.undefFlags = LOGIC.has(op) ? UNDEF.logic : UNDEF.arith;
  const form = r.pick(['EG', 'EG', 'GE', 'GE', 'AI', 'EI', 'EI8'] as const);
  switch (form) {
    case 'EG': {
      b.op = [op * 8 + opv(size, 0)];
      const g = b.regOp(size);
      const e = b.rmOp(size);
      const lock = op !== 7 ? lockMaybe(b, e.isMem) : '';
      return b.finish(`${lock}${mn} ${e.text}, ${g.text}`);
    }
    case 'GE': {
      b.op = [op * 8 + opv(size, 2)];
      const g = b.regOp(size);
      const e = b.rmOp(size);
      return b.finish(`${mn} ${g.text}, ${e.text}`);
    }
    case 'AI': {
      b.op = [op * 8 + opv(size, 4)];
      b.fillReg(0, size);
      return b.finish(`${mn} ${regName(0, size)}, ${immV(b, size)}`);
    }
    case 'EI': {
      b.op = [opv(size, 0x80)];
      b.setExt(op);
      const e = b.rmOp(size);
      const lock = op !== 7 ? lockMaybe(b, e.isMem) : '';
      return b.finish(`${lock}${mn} ${e.text}, ${immV(b, size)}`);
    }
    case 'EI8': {
      // 83 /op ib: sign-extended imm8 (80 for byte operands).
      b.op = [size === 8 ? 0x80 : 0x83];
      b.setExt(op);
      const e = b.rmOp(size);
      const lock = op !== 7 ? lockMaybe(b, e.isMem) : '';
      const v = imm8(b);
      return b.finish(`${lock}${mn} ${e.text}, ${hex(size === 8 ? v : sext(v, 8))}`);
    }
  }
}

// ---- TEST ---------------------------------------------------------------------

function genTest(r: Rng): GenCase {
  const b = new B(r, 'test');
  const size = r.pick(SIZES);
  b.size(size, { redundant66: true });
  b.undefFlags = UNDEF.logic;
  const form = r.int(3);
  if (form === 0) {
    b.op = [opv(size, 0x84)];
    const g = b.regOp(size);
    const e = b.rmOp(size);
    return b.finish(`test ${e.text}, ${g.text}`);
  }
  if (form === 1) {
    b.op = [opv(size, 0xa8)];
    b.fillReg(0, size);
    return b.finish(`test ${regName(0, size)}, ${immV(b, size)}`);
  }
  b.op = [opv(size, 0xf6)];
  b.setExt(0);
  const e = b.rmOp(size);
  return b.finish(`test ${e.text}, ${immV(b, size)}`);
}

// ---- INC DEC NOT NEG --------------------------------------------------------

function genIncDec(r: Rng): GenCase {
  const b = new B(r, 'incdec');
  const size = r.pick(SIZES);
  b.size(size, { redundant66: true });
  const dec = r.int(2);
  b.op = [opv(size, 0xfe)];
  b.setExt(dec);
  const e = b.rmOp(size);
  const lock = lockMaybe(b, e.isMem);
  return b.finish(`${lock}${dec ? 'dec' : 'inc'} ${e.text}`); // CF unaffected, others defined
}

function genNotNeg(r: Rng): GenCase {
  const b = new B(r, 'notneg');
  const size = r.pick(SIZES);
  b.size(size, { redundant66: true });
  const neg = r.int(2);
  b.op = [opv(size, 0xf6)];
  b.setExt(2 + neg);
  const e = b.rmOp(size);
  const lock = lockMaybe(b, e.isMem);
  return b.finish(`${lock}${neg ? 'neg' : 'not'} ${e.text}`); // NOT: no flags; NEG: all defined
}

// ---- MUL IMUL (one operand), IMUL (two/three operands) ------------------------

function genMul(r: Rng): GenCase {
  const b = new B(r, 'mul');
  const size = r.pick(SIZES);
  b.size(size, { redundant66: true });
  const signed = r.int(2);
  b.fillReg(0, size);
  b.op = [opv(size, 0xf6)];
  b.setExt(4 + signed);
  const e = b.rmOp(size);
  b.undefFlags = UNDEF.mul;
  return b.finish(`${signed ? 'imul' : 'mul'} ${e.text}`);
}

function genImul2(r: Rng): GenCase {
  const b = new B(r, 'imul');
  const size = r.pick(VSIZES);
  b.size(size);
  b.undefFlags = UNDEF.mul;
  const form = r.int(3);
  b.op = form === 0 ? [0x0f, 0xaf] : form === 1 ? [0x69] : [0x6b];
  const g = b.regOp(size);
  const e = b.rmOp(size);
  if (form === 0) return b.finish(`imul ${g.text}, ${e.text}`);
  if (form === 1) return b.finish(`imul ${g.text}, ${e.text}, ${immV(b, size)}`);
  return b.finish(`imul ${g.text}, ${e.text}, ${hex(sext(imm8(b), 8))}`);
}

// ---- DIV IDIV -------------------------------------------------------------------

function genDiv(r: Rng): GenCase {
  const b = new B(r, 'div');
  const size = r.pick(SIZES);
  const n = size;
  b.size(size, { redundant66: true });
  const signed = r.int(2) === 1;
  b.op = [opv(size, 0xf6)];
  b.setExt(6 + (signed ? 1 : 0));
  b.undefFlags = UNDEF.div;
  // Divisor: memory or a register that does not overlap the dividend (sometimes it may).
  const overlap = r.bool(0.05);
  const noReg = size === 8 ? (b.legacy8 ? [0, 4] : [0, 4]) : [0, 2, 4];
  const e = b.rmOp(size, 0.5, { exclude: [0, 2] }, overlap ? [4] : noReg);
  const mn = `${signed ? 'idiv' : 'div'} ${e.text}`;
  if (overlap && !e.isMem) return b.finish(mn);

  const setDivisor = (v: bigint) => {
    if (e.isMem) b.writeMem(e.off, n / 8, v & mask(n));
    else b.writeReg(e.n, size, v);
  };
  const setDividend = (v: bigint) => {
    const u = BigInt.asUintN(2 * n, v);
    if (size === 8) b.writeReg(0, 16, u);
    else {
      b.writeReg(0, size, u & mask(n));
      b.writeReg(2, size, u >> BigInt(n));
    }
  };
  const kind = r.int(100);
  if (kind < 6) {
    setDivisor(0n); // #DE: divide by zero
    return b.finish(mn);
  }
  let d = interesting(r, n);
  if (d === 0n) d = 1n + r.bits(Math.min(n, 16) - 1);
  setDivisor(d);
  if (kind < 14) {
    // #DE: quotient too large.
    if (!signed) {
      const hi = d + (r.bits(n) * (mask(n) - d)) / mask(n);
      setDividend((hi << BigInt(n)) | r.bits(n));
    } else {
      const ds = r.pick([1n, -1n, 2n, -2n, 3n, -7n]);
      setDivisor(ds);
      const big = (1n << BigInt(n - 1)) + BigInt(r.int(4));
      setDividend(r.bool() ? big * ds : -(big + 1n) * ds);
    }
    return b.finish(mn);
  }
  if (!signed) {
    const q = interesting(r, n);
    const rem = r.bits(n) % d;
    setDividend(q * d + rem);
  } else {
    const ds = sext(d, n);
    const q = sext(interesting(r, n), n);
    const absd = ds < 0n ? -ds : ds;
    const remAbs = r.bits(n) % absd;
    const prod = q * ds;
    const neg = prod < 0n || (prod === 0n && r.bool());
    setDividend(prod + (neg ? -remAbs : remAbs));
  }
  return b.finish(mn);
}

// ---- shifts and rotates ----------------------------------------------------------

const SHIFT = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', '', 'sar'];

function countValue(r: Rng, size: number): number {
  return r.pick([
    0,
    1,
    1,
    2,
    3,
    size - 1,
    size,
    size + 1,
    9,
    17,
    31,
    32,
    33,
    63,
    64,
    65,
    0xff,
    r.int(256),
    r.int(size),
  ]);
}

/** Undefined flags of ROL..SAR for a given (unmasked) count. */
export function shiftUndef(ext: number, size: number, count: number): bigint {
  const masked = count & (size === 64 ? 63 : 31);
  if (masked === 0) return 0n; // flags unaffected
  let u = masked === 1 ? 0n : OF; // OF defined only for 1-bit shifts/rotates
  if (ext >= 4) {
    u |= AF; // shifts: AF undefined for a non-zero count
    // SDM: CF undefined for SHL/SHR when the count >= the operand size (8/16-bit).
    if ((ext === 4 || ext === 5) && masked >= size) u |= CF;
  }
  return u;
}

/** Undefined flags of SHLD/SHRD (count <= operand size; larger counts are excluded). */
export function shldUndef(size: number, count: number): bigint {
  const masked = count & (size === 64 ? 63 : 31);
  if (masked === 0) return 0n; // flags unaffected
  return AF | (masked === 1 ? 0n : OF); // OF defined only for 1-bit shifts
}

function genShift(r: Rng): GenCase {
  const b = new B(r, 'shift');
  const size = r.pick(SIZES);
  b.size(size, { redundant66: true });
  const ext = r.pick([0, 1, 2, 3, 4, 5, 7]);
  const form = r.pick(['1', 'imm', 'imm', 'cl', 'cl'] as const);
  b.op = [form === '1' ? opv(size, 0xd0) : form === 'imm' ? opv(size, 0xc0) : opv(size, 0xd2)];
  b.setExt(ext);
  const e = b.rmOp(size, 0.4, { exclude: form === 'cl' ? [1] : [] });
  let count: number;
  let ctext: string;
  if (form === '1') {
    count = 1;
    ctext = '1';
  } else if (form === 'imm') {
    count = countValue(r, size);
    b.immBytes(1, BigInt(count));
    ctext = hex(count);
  } else {
    if (e.isMem || e.n !== 1 || (size === 8 && b.legacy8)) b.writeReg(1, 8, BigInt(countValue(r, size)));
    count = Number(b.regs[1] & 0xffn);
    ctext = 'cl';
  }
  b.undefFlags = shiftUndef(ext, size, count);
  return b.finish(`${SHIFT[ext]} ${e.text}, ${ctext}${form === 'cl' ? ` (cl=${count})` : ''}`);
}

// ---- SHLD SHRD -------------------------------------------------------------------

function genShld(r: Rng): GenCase | null {
  const b = new B(r, 'shld');
  const size = r.pick(VSIZES);
  b.size(size);
  const right = r.int(2);
  const byCl = r.int(2);
  b.op = [0x0f, (right ? 0xac : 0xa4) + byCl];
  const g = b.regOp(size, byCl ? [] : []);
  const e = b.rmOp(size, 0.4, { exclude: byCl ? [1] : [] });
  let count: number;
  if (!byCl) {
    count = countValue(r, size);
    b.immBytes(1, BigInt(count));
  } else {
    const rcxUsed = (!e.isMem && e.n === 1) || g.n === 1;
    if (!rcxUsed) b.writeReg(1, 8, BigInt(countValue(r, size)));
    count = Number(b.regs[1] & 0xffn);
  }
  // SDM: a count greater than the operand size leaves destination and flags undefined.
  if ((count & (size === 64 ? 63 : 31)) > size) return null;
  b.undefFlags = shldUndef(size, count);
  const mn = right ? 'shrd' : 'shld';
  return b.finish(`${mn} ${e.text}, ${g.text}, ${byCl ? `cl (cl=${count})` : hex(count)}`);
}

// ---- BT BTS BTR BTC ----------------------------------------------------------------

const BT = ['bt', 'bts', 'btr', 'btc'];

function genBt(r: Rng): GenCase {
  const b = new B(r, 'bt');
  const size = r.pick(VSIZES);
  const w = size / 8;
  b.size(size);
  const op = r.int(4);
  const mn = BT[op];
  b.undefFlags = UNDEF.bt;
  const isMem = r.bool(0.5);
  const lock = isMem && op !== 0 && r.bool(0.15) ? 'lock ' : '';
  if (lock) b.prefixes.push(0xf0);
  if (r.bool(0.5)) {
    // 0F A3/AB/B3/BB: bit offset in a register
    b.op = [0x0f, 0xa3 + 8 * op];
    const g = b.regOp(size, isMem ? [4] : []);
    if (!isMem) {
      const e = b.rmOp(size, 0);
      return b.finish(`${mn} ${e.text}, ${g.text}`);
    }
    // The register offset is signed and selects the unit EA + w*floor(off/(8w)).
    const base = r.int(MEM_SIZE);
    const kmin = Math.ceil(-base / w);
    const kmax = Math.floor((MEM_SIZE - Math.max(w, 4) - base) / w);
    if (kmax < kmin) {
      const m = b.memOperand(w);
      b.writeReg(g.n, size, BigInt(r.int(8 * w)));
      return b.finish(`${lock}${mn} ${m.text}, ${g.text}`);
    }
    const k = r.range(kmin, kmax);
    const bit = BigInt(k * 8 * w + r.int(8 * w));
    b.writeReg(g.n, size, BigInt.asUintN(size, bit));
    const m = b.memOperand(1, { off: base, exclude: [g.n], textBytes: w }); // EA itself need not be accessed
    return b.finish(`${lock}${mn} ${m.text}, ${g.text} (bit ${bit})`);
  }
  // 0F BA /4../7 ib: immediate offset, masked to the operand size
  b.op = [0x0f, 0xba];
  b.setExt(4 + op);
  const e = b.rmOp(size, isMem ? 1 : 0);
  const v = r.bool(0.7) ? BigInt(r.int(size)) : BigInt(r.int(256));
  b.immBytes(1, v);
  return b.finish(`${lock}${mn} ${e.text}, ${hex(v)}`);
}

// ---- BSF BSR TZCNT LZCNT POPCNT -------------------------------------------------

function srcValue(b: B, e: { isMem: boolean; n: number; off: number }, size: Size): bigint {
  return e.isMem ? b.readMem(e.off, size / 8) : b.readReg(e.n, size);
}

function zeroSrcSometimes(b: B, e: { isMem: boolean; n: number; off: number }, size: Size): void {
  if (!b.r.bool(0.15)) return;
  if (e.isMem) b.writeMem(e.off, size / 8, 0n);
  else if (e.n !== 4 && !b.addrRegs.has(e.n)) b.writeReg(e.n, size, 0n);
}

function genBsfBsr(r: Rng): GenCase {
  const b = new B(r, 'bsf');
  const size = r.pick(VSIZES);
  b.size(size);
  const rev = r.int(2);
  b.op = [0x0f, 0xbc + rev];
  const g = b.regOp(size);
  const e = b.rmOp(size);
  zeroSrcSometimes(b, e, size);
  b.undefFlags = UNDEF.bsf;
  // Source 0: the destination is undefined (AMD documents "unchanged", Intel does not).
  if (srcValue(b, e, size) === 0n) b.undefRegs |= 1 << g.n;
  return b.finish(`${rev ? 'bsr' : 'bsf'} ${g.text}, ${e.text}`);
}

function genCnt(r: Rng, which: 'tzcnt' | 'lzcnt' | 'popcnt'): GenCase {
  const b = new B(r, which);
  const size = r.pick(VSIZES);
  b.size(size);
  b.prefixes.push(0xf3); // mandatory prefix, after 66
  b.op = [0x0f, which === 'tzcnt' ? 0xbc : which === 'lzcnt' ? 0xbd : 0xb8];
  const g = b.regOp(size);
  const e = b.rmOp(size);
  zeroSrcSometimes(b, e, size);
  // TZCNT/LZCNT: CF = (src == 0), ZF = (result == 0), others undefined.
  // POPCNT: ZF = (src == 0), OF SF AF CF PF cleared.
  b.undefFlags = which === 'popcnt' ? UNDEF.popcnt : UNDEF.tzcnt;
  return b.finish(`${which} ${g.text}, ${e.text}`);
}

// ---- BSWAP, MOVZX/MOVSX/MOVSXD, CBW family ----------------------------------------

function genBswap(r: Rng): GenCase {
  const b = new B(r, 'bswap');
  const size = r.pick([32, 64] as Size[]); // 16-bit BSWAP is undefined: excluded
  b.size(size);
  const n = b.pickReg();
  if (n >= 8) b.rexB = true;
  b.fillReg(n, size);
  b.op = [0x0f, 0xc8 + (n & 7)];
  return b.finish(`bswap ${regName(n, size)}`);
}

function genMovx(r: Rng): GenCase {
  const b = new B(r, 'movx');
  const kind = r.int(5);
  if (kind === 4) {
    // MOVSXD r64, r/m32 (REX.W) or the plain 32-bit form
    const wide = r.bool(0.75);
    b.size(wide ? 64 : 32);
    b.op = [0x63];
    const g = b.regOp(wide ? 64 : 32);
    const e = b.rmOp(32);
    return b.finish(`movsxd ${g.text}, ${e.text}`);
  }
  const signed = kind >= 2;
  const srcSize: Size = kind % 2 === 0 ? 8 : 16;
  let dst: Size = r.pick(srcSize === 8 ? VSIZES : ([16, 32, 64] as Size[]));
  if (srcSize === 8) {
    b.mode8(dst !== 64);
    if (b.legacy8 && dst === 64) dst = 32;
  } else {
    b.modeAny();
  }
  if (dst === 16) b.prefixes.push(0x66);
  if (dst === 64) b.rexW = true;
  b.op = [0x0f, (signed ? 0xbe : 0xb6) + (srcSize === 16 ? 1 : 0)];
  const g = b.regOp(dst);
  const e = b.rmOp(srcSize);
  return b.finish(`${signed ? 'movsx' : 'movzx'} ${g.text}, ${e.text}`);
}

function genCbw(r: Rng): GenCase {
  const b = new B(r, 'cbw');
  const size = r.pick(VSIZES);
  b.size(size);
  const dx = r.int(2);
  b.op = [0x98 + dx];
  b.fillReg(0, size === 16 ? 8 : ((size / 2) as Size));
  b.fillReg(2, size);
  const names = dx ? { 16: 'cwd', 32: 'cdq', 64: 'cqo' } : { 16: 'cbw', 32: 'cwde', 64: 'cdqe' };
  return b.finish(names[size as 16 | 32 | 64]);
}

// ---- CMOVcc SETcc ---------------------------------------------------------------------

function genCmov(r: Rng): GenCase {
  const b = new B(r, 'cmov');
  const size = r.pick(VSIZES);
  b.size(size);
  const cc = r.int(16);
  b.op = [0x0f, 0x40 + cc];
  const g = b.regOp(size);
  const e = b.rmOp(size);
  return b.finish(`cmov${CC[cc]} ${g.text}, ${e.text}`);
}

function genSetcc(r: Rng): GenCase {
  const b = new B(r, 'setcc');
  b.mode8();
  const cc = r.int(16);
  b.op = [0x0f, 0x90 + cc];
  b.setExt(0);
  const e = b.rmOp(8);
  return b.finish(`set${CC[cc]} ${e.text}`);
}

// ---- XCHG XADD CMPXCHG CMPXCHG8B/16B -----------------------------------------------

function genXchg(r: Rng): GenCase {
  const b = new B(r, 'xchg');
  const size = r.pick(SIZES);
  if (size !== 8 && r.bool(0.3)) {
    // 90+r: xchg rAX, r. Plain 90 is NOP (no zero-extension), F3 90 is PAUSE.
    b.size(size);
    const n = b.pickReg();
    if (n >= 8) b.rexB = true;
    b.fillReg(n, size);
    b.fillReg(0, size);
    b.op = [0x90 + (n & 7)];
    if (n === 0 && size === 32 && b.r.bool(0.2)) {
      b.prefixes.push(0xf3);
      return b.finish('pause');
    }
    if (n === 0 && size !== 16) return b.finish(size === 64 ? 'xchg rax, rax (nop)' : 'nop');
    return b.finish(`xchg ${regName(n, size)}, ${regName(0, size)}`);
  }
  b.size(size, { redundant66: true });
  b.op = [opv(size, 0x86)];
  const g = b.regOp(size);
  const e = b.rmOp(size);
  const lock = lockMaybe(b, e.isMem, 0.1); // implicit with memory anyway
  return b.finish(`${lock}xchg ${e.text}, ${g.text}`);
}

function genXadd(r: Rng): GenCase {
  const b = new B(r, 'xadd');
  const size = r.pick(SIZES);
  b.size(size);
  b.op = [0x0f, opv(size, 0xc0)];
  const g = b.regOp(size);
  const e = b.rmOp(size);
  const lock = lockMaybe(b, e.isMem);
  return b.finish(`${lock}xadd ${e.text}, ${g.text}`); // flags as ADD
}

function genCmpxchg(r: Rng): GenCase {
  const b = new B(r, 'cmpxchg');
  const size = r.pick(SIZES);
  b.size(size);
  b.op = [0x0f, opv(size, 0xb0)];
  const g = b.regOp(size);
  const e = b.rmOp(size, 0.5, { exclude: [0] });
  const lock = lockMaybe(b, e.isMem);
  // Half the time the accumulator equals the destination.
  if (r.bool(0.5) && !(size === 8 && b.legacy8 && !e.isMem && e.n === 4)) {
    const v = srcValue(b, e, size);
    if (!b.addrRegs.has(0)) b.writeReg(0, size, v);
  } else {
    b.fillReg(0, size);
  }
  return b.finish(`${lock}cmpxchg ${e.text}, ${g.text}`); // flags as CMP
}

function genCmpxchg8b(r: Rng, wide: boolean): GenCase {
  const b = new B(r, wide ? 'cmpxchg16b' : 'cmpxchg8b');
  b.modeAny();
  if (wide) b.rexW = true;
  b.op = [0x0f, 0xc7];
  b.setExt(1);
  const bytes = wide ? 16 : 8;
  // CMPXCHG16B needs a 16-byte aligned operand (#GP otherwise): mostly aligned.
  const align = wide ? (r.bool(0.9) ? 16 : 1) : r.pick([1, 8]);
  const m = b.memOperand(bytes, { align, exclude: [0, 2] });
  const lock = r.bool(0.3) ? 'lock ' : '';
  if (lock) b.prefixes.push(0xf0);
  const half = wide ? 64 : 32;
  if (r.bool(0.5)) {
    const v = b.readMem(m.off, bytes);
    b.writeReg(0, half as Size, v & mask(half));
    b.writeReg(2, half as Size, v >> BigInt(half));
  }
  b.undefFlags = 0n; // ZF set by the comparison, others unaffected
  return b.finish(`${lock}${wide ? 'cmpxchg16b' : 'cmpxchg8b'} ${m.text}`);
}

// ---- LEA --------------------------------------------------------------------------------

function genLea(r: Rng): GenCase {
  const b = new B(r, 'lea');
  const size = r.pick(VSIZES);
  b.size(size);
  b.op = [0x8d];
  const g = b.regOp(size);
  if (r.bool(0.02)) {
    b.setRmReg(b.pickReg()); // LEA with a register operand: #UD
    return b.finish(`lea ${g.text}, <register> (#UD)`);
  }
  const m = b.freeMemOperand(0.25);
  return b.finish(`lea ${g.text}, ${m}`);
}

// ---- MOV ------------------------------------------------------------------------------------

function genMov(r: Rng): GenCase {
  const b = new B(r, 'mov');
  const size = r.pick(SIZES);
  const form = r.int(6);
  if (form === 0 || form === 1) {
    b.size(size, { redundant66: true });
    b.op = [opv(size, form === 0 ? 0x88 : 0x8a)];
    const g = b.regOp(size);
    const e = b.rmOp(size);
    return b.finish(form === 0 ? `mov ${e.text}, ${g.text}` : `mov ${g.text}, ${e.text}`);
  }
  if (form === 2) {
    b.size(size, { redundant66: true });
    b.op = [opv(size, 0xc6)];
    b.setExt(0);
    const e = b.rmOp(size);
    return b.finish(`mov ${e.text}, ${immV(b, size)}`);
  }
  if (form === 3) {
    // B0+r ib, B8+r iw/id/io
    b.size(size);
    const n = b.pickReg(size === 8 ? [] : [4]);
    if (n >= 8) b.rexB = true;
    b.op = [(size === 8 ? 0xb0 : 0xb8) + (n & 7)];
    const bytes = size / 8;
    const v = size === 64 && r.bool(0.5) ? r.u64() : interesting(r, size);
    b.immBytes(bytes, v);
    return b.finish(`mov ${b.rn(n, size)}, ${hex(v)}`);
  }
  if (form === 4) {
    // A0..A3: moffs (8-byte absolute address, 4 with 0x67)
    b.size(size);
    const store = r.int(2);
    b.op = [opv(size, 0xa0 + 2 * store)];
    const bytes = size / 8;
    const off = r.int(MEM_SIZE - bytes + 1);
    const a32 = r.bool(0.2);
    if (a32) b.prefixes.push(0x67);
    b.immBytes(a32 ? 4 : 8, MEM_ADDR + BigInt(off));
    b.fillReg(0, size);
    const mtext = `${ptrName(bytes)} [${hex(MEM_ADDR + BigInt(off))}]`;
    return b.finish(store ? `mov ${mtext}, ${regName(0, size)}` : `mov ${regName(0, size)}, ${mtext}`);
  }
  // XLAT: AL = [rBX + AL]
  b.modeAny();
  const off = r.int(MEM_SIZE);
  const al = r.int(MEM_SIZE - off);
  const a32 = r.bool(0.2);
  if (a32) b.prefixes.push(0x67);
  if (r.bool(0.2)) b.rexW = true;
  b.op = [0xd7];
  b.writeReg(0, 8, BigInt(al));
  b.regs[3] = (a32 ? r.u64() & ~mask(32) : 0n) | (MEM_ADDR + BigInt(off));
  return b.finish(`xlatb (${a32 ? 'ebx' : 'rbx'}=${hex(MEM_ADDR + BigInt(off))}, al=${al})`);
}

// ---- LAHF SAHF CLC STC CMC CLD STD --------------------------------------------------

function genFlagOps(r: Rng): GenCase {
  const b = new B(r, 'flagops');
  b.modeAny();
  const k = r.int(7);
  const ops: [number, string][] = [
    [0x9f, 'lahf'],
    [0x9e, 'sahf'],
    [0xf8, 'clc'],
    [0xf9, 'stc'],
    [0xf5, 'cmc'],
    [0xfc, 'cld'],
    [0xfd, 'std'],
  ];
  b.op = [ops[k][0]];
  if (k === 1) b.regs[0] = (b.regs[0] & ~0xff00n) | (interesting(r, 8) << 8n); // SAHF reads AH
  return b.finish(ops[k][1]);
}

// ---- string instructions ---------------------------------------------------------------

const STR = [
  { mn: 'movs', op: 0xa4, si: true, di: true, cmp: false },
  { mn: 'cmps', op: 0xa6, si: true, di: true, cmp: true },
  { mn: 'stos', op: 0xaa, si: false, di: true, cmp: false },
  { mn: 'lods', op: 0xac, si: true, di: false, cmp: false },
  { mn: 'scas', op: 0xae, si: false, di: true, cmp: true },
];

function genString(r: Rng): GenCase {
  const b = new B(r, 'string');
  const s = r.pick(STR);
  const size = r.pick(SIZES);
  const w = size / 8;
  b.modeAny();
  if (size === 16) b.prefixes.push(0x66);
  if (size === 64) b.rexW = true;
  const a32 = r.bool(0.2);
  if (a32) b.prefixes.push(0x67);
  const rep = r.pick(s.cmp ? ['', 'repe ', 'repne '] : ['', 'rep ']);
  if (rep === 'rep ' || rep === 'repe ') b.prefixes.push(0xf3);
  if (rep === 'repne ') b.prefixes.push(0xf2);
  b.op = [opv(size, s.op)];
  const df = r.bool(0.4);
  b.rflags = (b.rflags & ~DF) | (df ? DF : 0n);
  const maxN = Math.min(7, MEM_SIZE / w);
  const n = rep ? r.int(maxN + 1) : 1;
  const span = Math.max(n, 1);
  const pickPtr = () => (df ? r.range((span - 1) * w, MEM_SIZE - w) : r.int(MEM_SIZE - span * w + 1));
  const setPtr = (reg: number, off: number) => {
    b.regs[reg] = (a32 ? r.u64() & ~mask(32) : 0n) | (MEM_ADDR + BigInt(off));
  };
  const si = pickPtr();
  const di = pickPtr();
  if (s.si) setPtr(6, si);
  if (s.di) setPtr(7, di);
  if (rep) b.regs[1] = (a32 ? r.u64() & ~mask(32) : 0n) | BigInt(n);
  if (s.cmp && r.bool(0.6)) {
    // Make equal elements likely, so REPE/REPNE stop at interesting places.
    const src = s.si ? si : di;
    const len = span * w;
    const pattern = r.int(256);
    for (let i = 0; i < len; i++) {
      const off = df ? src - (span - 1) * w + i : src + i;
      if (r.bool(0.85)) b.mem[off] = pattern;
      if (s.mn === 'cmps') {
        const o2 = df ? di - (span - 1) * w + i : di + i;
        b.mem[o2] = r.bool(0.85) ? b.mem[off] : r.int(256);
      }
    }
    if (s.mn === 'scas')
      b.regs[0] = (b.regs[0] & ~mask(size)) | ((BigInt(pattern) * 0x0101010101010101n) & mask(size));
  }
  const regsText = [
    s.si ? `${a32 ? 'esi' : 'rsi'}=+${si}` : '',
    s.di ? `${a32 ? 'edi' : 'rdi'}=+${di}` : '',
    rep ? `${a32 ? 'ecx' : 'rcx'}=${n}` : '',
    df ? 'DF=1' : 'DF=0',
  ].filter((x) => x);
  return b.finish(`${rep}${s.mn}${sfx(size)} (${regsText.join(' ')})`);
}

// ---- PUSH POP ENTER LEAVE --------------------------------------------------------------

function genStack(r: Rng): GenCase {
  const b = new B(r, 'stack');
  b.modeAny();
  const o16 = r.bool(0.15);
  if (o16) b.prefixes.push(0x66);
  const size: Size = o16 ? 16 : 64;
  const form = r.int(8);
  switch (form) {
    case 0:
    case 1: {
      const pop = form === 1;
      const n = b.pickReg();
      if (n >= 8) b.rexB = true;
      b.fillReg(n, size);
      b.op = [(pop ? 0x58 : 0x50) + (n & 7)];
      return b.finish(`${pop ? 'pop' : 'push'} ${regName(n, size)}`);
    }
    case 2: {
      const wide = r.int(2);
      b.op = [wide ? 0x68 : 0x6a];
      const v = wide ? immV(b, o16 ? 16 : 32) : hex(sext(imm8(b), 8));
      return b.finish(`push${o16 ? 'w' : ''} ${v}`);
    }
    case 3: {
      b.op = [0xff];
      b.setExt(6);
      const e = b.rmOp(size, 0.7);
      return b.finish(`push ${e.text}`);
    }
    case 4: {
      // POP r/m: an RSP-based address is computed after the increment.
      b.op = [0x8f];
      b.setExt(0);
      const e = b.rmOp(size, 0.7, { rspValue: INIT_RSP + BigInt(size / 8) });
      return b.finish(`pop ${e.text}`);
    }
    case 5:
    case 6: {
      // LEAVE: RSP = RBP, then pop RBP; RBP points into the window.
      b.op = [0xc9];
      const off = r.int(MEM_SIZE - size / 8 + 1);
      b.regs[5] = MEM_ADDR + BigInt(off);
      return b.finish(`leave${o16 ? 'w' : ''} (rbp=+${off})`);
    }
    default: {
      // ENTER imm16, level 0 or 1 (higher levels read the old frame chain).
      // The new RSP stays inside the window (the CPU may probe the new top of stack).
      const level = r.pick([0, 1]);
      const frame = r.int(32 - (o16 ? 2 : 8) * (1 + level) + 1);
      b.op = [0xc8];
      b.immBytes(2, BigInt(frame));
      b.immBytes(1, BigInt(level));
      b.fillReg(5, 64);
      return b.finish(`enter${o16 ? 'w' : ''} ${hex(frame)}, ${level}`);
    }
  }
}

// ---- exceptions: #UD, #BP, privileged, memory faults ----------------------------

function genUd(r: Rng): GenCase {
  const b = new B(r, 'ud');
  const modrm = r.int(256);
  const memModrm = (r.int(192) & ~7) | r.pick([0, 1, 2, 3, 6, 7]); // mod != 3, no SIB/RIP
  const regModrm = 0xc0 | r.int(64);
  const far = () => [r.int(256), r.int(256), r.int(256), r.int(256), r.int(256), r.int(256)];
  const cases: [number[], string][] = [
    [[0x06], 'push es (invalid in 64-bit mode)'],
    [[0x07], 'pop es'],
    [[0x0e], 'push cs'],
    [[0x16], 'push ss'],
    [[0x17], 'pop ss'],
    [[0x1e], 'push ds'],
    [[0x1f], 'pop ds'],
    [[0x27], 'daa'],
    [[0x2f], 'das'],
    [[0x37], 'aaa'],
    [[0x3f], 'aas'],
    [[0x60], 'pusha'],
    [[0x61], 'popa'],
    [[0xce], 'into'],
    [[0xd4, 0x0a], 'aam'],
    [[0xd5, 0x0a], 'aad'],
    [[0xd6], 'salc'],
    [[0x9a, ...far()], 'call far ptr16:32'],
    [[0xea, ...far()], 'jmp far ptr16:32'],
    [[0x82, regModrm, r.int(256)], '82 /r ib (invalid in 64-bit mode)'],
    [[0x0f, 0x0b], 'ud2'],
    [[0x0f, 0xb9, modrm], 'ud1'],
    [[0x0f, 0x04], '0f 04 (reserved)'],
    [[0x0f, 0x0a], '0f 0a (reserved)'],
    [[0x0f, 0x0c], '0f 0c (reserved)'],
    [[0x8d, regModrm], 'lea with a register operand'],
    [[0x0f, 0xc7, 0xc8 | r.int(8)], 'cmpxchg8b with a register operand'],
    [
      [0xf0, r.pick([0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x28, 0x29, 0x30, 0x31]), regModrm],
      'lock with a register destination',
    ],
    [[0xf0, 0x90], 'lock nop'],
    [[0xf0, 0x8b, memModrm], 'lock mov'],
    [[0xf0, 0x39, memModrm], 'lock cmp (not lockable)'],
    [[0xf0, 0x85, memModrm], 'lock test (not lockable)'],
    [[0xf0, 0xf8], 'lock clc'],
    [[0xcc], 'int3 (#BP)'],
    [[...Array(15).fill(0x66), 0x90], '16-byte instruction (#GP)'],
  ];
  const [bytes, text] = r.pick(cases);
  // Memory ModRM forms are never reached (the instruction faults first); point rbx etc. at the window anyway.
  for (let i = 0; i < 16; i++) if (i !== 4) b.regs[i] = MEM_ADDR + BigInt(r.int(32));
  b.raw = bytes;
  return b.finish(text);
}

function genPriv(r: Rng): GenCase {
  const b = new B(r, 'priv');
  for (let i = 0; i < 16; i++) if (i !== 4) b.regs[i] = MEM_ADDR + BigInt(r.int(32));
  const cases: [number[], string][] = [
    [[0xf4], 'hlt'],
    [[0xfa], 'cli'],
    [[0xfb], 'sti'],
    [[0xec], 'in al, dx'],
    [[0xed], 'in eax, dx'],
    [[0xe4, r.int(256)], 'in al, imm8'],
    [[0xee], 'out dx, al'],
    [[0xe6, r.int(256)], 'out imm8, al'],
    [[0x0f, 0x32], 'rdmsr'],
    [[0x0f, 0x30], 'wrmsr'],
    [[0x0f, 0x20, 0xc0 | r.int(8)], 'mov r64, cr0'],
    [[0x0f, 0x22, 0xc0 | r.int(8)], 'mov cr0, r64'],
    [[0x0f, 0x22, 0xd8 | r.int(8)], 'mov cr3, r64'],
    [[0x0f, 0x23, 0xf8 | r.int(8)], 'mov dr7, r64'],
    [[0x0f, 0x01, 0x13], 'lgdt [rbx]'],
    [[0x0f, 0x01, 0x1b], 'lidt [rbx]'],
    [[0x0f, 0x01, 0x3b], 'invlpg [rbx]'],
    [[0x0f, 0x00, 0xd0 | r.int(8)], 'lldt r16'],
    [[0x0f, 0x00, 0xd8 | r.int(8)], 'ltr r16'],
    [[0x0f, 0x06], 'clts'],
    [[0x0f, 0x08], 'invd'],
    [[0x0f, 0x09], 'wbinvd'],
    [[0x0f, 0x01, 0xf8], 'swapgs'],
  ];
  const [bytes, text] = r.pick(cases);
  b.raw = bytes;
  return b.finish(`${text} (CPL 3: #GP)`);
}

function genFault(r: Rng): GenCase {
  const b = new B(r, 'fault');
  b.modeAny();
  const size = r.pick([8, 16, 32, 64] as Size[]);
  if (size === 16) b.prefixes.push(0x66);
  if (size === 64) b.rexW = true;
  const store = r.int(2);
  const kind = r.pick(['noncanon', 'noncanon', 'unmapped', 'unmapped', 'straddle', 'ss'] as const);
  b.op = [opv(size, store ? 0x88 : 0x8a)];
  const g = b.pickReg([4]);
  b.setReg(g);
  // Address registers: base (not RSP/RBP unless #SS is wanted), disp8 0.
  let base = b.pickReg([4, 5, 12, 13, g]);
  if (kind === 'ss') base = r.pick([5, 13].filter((x) => x !== g));
  let addr: bigint;
  let vec: string;
  if (kind === 'noncanon' || kind === 'ss') {
    addr = (r.bool() ? 0x8000000000000000n : 0x0000800000000000n) + r.bits(40);
    vec = kind === 'ss' && base === 5 ? '#SS' : '#GP';
  } else if (kind === 'unmapped') {
    addr = BigInt(r.range(0x1000, 0xfff0));
    vec = '#PF';
  } else {
    addr = MEM_ADDR - BigInt(r.range(1, size / 8 - 1 || 1)); // crosses into the unmapped page below
    if (size === 8) addr = MEM_ADDR - 1n;
    vec = '#PF';
  }
  b.regs[base] = addr;
  b.setRmMem(base);
  const m = `${ptrName(size / 8)} [${regName(base, 64)}]`;
  const gt = regName(g, size);
  return b.finish(`${store ? `mov ${m}, ${gt}` : `mov ${gt}, ${m}`} (${hex(addr)}: ${vec})`);
}

// ---- prefix oddities ------------------------------------------------------------------------

function genPrefixes(r: Rng): GenCase {
  // An ALU or MOV register/memory instruction with prefixes that must be ignored.
  const b = new B(r, 'prefixes');
  const kind = r.int(5);
  const op = r.int(8);
  const useMov = r.bool(0.3);
  const opc = useMov ? 0x89 : op * 8 + 1;
  const mn = useMov ? 'mov' : ALU[op];
  if (LOGIC.has(op) && !useMov) b.undefFlags = UNDEF.logic;
  if (kind === 0) {
    // REX followed by a legacy prefix is ignored: 4x 66 op = 16-bit op, low registers only.
    b.legacy8 = false;
    const rex = 0x40 | r.int(16);
    b.prefixes.push(rex, 0x66);
    b.op = [opc];
    const g = b.pickReg([...range(8, 16)]);
    b.setReg(g);
    b.fillReg(g, 16);
    const e = b.pickReg([...range(8, 16)]);
    b.setRmReg(e);
    b.fillReg(e, 16);
    return b.finish(`${mn} ${regName(e, 16)}, ${regName(g, 16)} (ignored rex ${hex(rex)} before 66)`);
  }
  const size = r.pick(VSIZES);
  b.modeAny();
  let note = '';
  if (kind === 1) {
    const k = r.range(2, 4);
    for (let i = 0; i < k; i++) b.prefixes.push(0x66);
    note = `${k}x 66`;
    b.op = [opc];
    const g = b.regOp(16);
    const e = b.rmOp(16);
    return b.finish(`${mn} ${e.text}, ${g.text} (${note})`);
  }
  if (size === 16) b.prefixes.push(0x66);
  if (size === 64) b.rexW = true;
  if (kind === 2) {
    const segs = [0x26, 0x2e, 0x36, 0x3e];
    const k = r.range(1, 3);
    for (let i = 0; i < k; i++) b.prefixes.push(r.pick(segs));
    note = 'segment prefixes';
  } else if (kind === 3) {
    b.prefixes.push(0x67);
    note = '67 without memory operand';
  } else {
    b.forceRex = true;
    note = 'redundant rex';
  }
  b.op = [opc];
  const g = b.regOp(size);
  const e = b.rmOp(size, kind === 3 ? 0 : 0.4);
  return b.finish(`${mn} ${e.text}, ${g.text} (${note})`);
}

function range(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let i = lo; i < hi; i++) out.push(i);
  return out;
}

// ---- NOP forms, MOVBE -----------------------------------------------------------------------

function genNop(r: Rng): GenCase {
  const b = new B(r, 'nop');
  b.modeAny();
  const k = r.int(4);
  if (k === 0) {
    b.op = [0x90];
    return b.finish('nop');
  }
  if (k === 1) {
    b.prefixes.push(0x66);
    b.op = [0x90];
    return b.finish('xchg ax, ax (66 90)');
  }
  // 0F 1F /0: multi-byte NOP; the memory operand is not accessed.
  if (r.bool(0.3)) b.prefixes.push(0x66);
  b.op = [0x0f, 0x1f];
  b.setExt(0);
  if (k === 2) {
    b.setRmReg(b.pickReg());
    return b.finish('nop r/m (register)');
  }
  return b.finish(`nop ${b.freeMemOperand()}`);
}

function genMovbe(r: Rng): GenCase {
  const b = new B(r, 'movbe');
  const size = r.pick(VSIZES);
  b.size(size);
  const store = r.int(2);
  b.op = [0x0f, 0x38, 0xf0 + store];
  const g = b.regOp(size);
  const e = b.rmOp(size, 1);
  return b.finish(store ? `movbe ${e.text}, ${g.text}` : `movbe ${g.text}, ${e.text}`);
}

// ---- registry -----------------------------------------------------------------------------

export const GROUPS: Group[] = [
  { name: 'alu', desc: 'ADD OR ADC SBB AND SUB XOR CMP: 00-3D, 80, 81, 83', gen: genAlu, count: 6000 },
  { name: 'test', desc: 'TEST 84 85 A8 A9 F6/0 F7/0', gen: genTest },
  { name: 'incdec', desc: 'INC DEC FE/FF /0 /1', gen: genIncDec },
  { name: 'notneg', desc: 'NOT NEG F6/F7 /2 /3', gen: genNotNeg },
  { name: 'mul', desc: 'MUL IMUL F6/F7 /4 /5', gen: genMul },
  { name: 'imul', desc: 'IMUL 0F AF, 69, 6B', gen: genImul2 },
  { name: 'div', desc: 'DIV IDIV F6/F7 /6 /7 incl. #DE', gen: genDiv, count: 4000, faults: true },
  { name: 'shift', desc: 'ROL ROR RCL RCR SHL SHR SAR: C0 C1 D0 D1 D2 D3', gen: genShift, count: 6000 },
  { name: 'shld', desc: 'SHLD SHRD 0F A4 A5 AC AD', gen: genShld, count: 3000 },
  { name: 'bt', desc: 'BT BTS BTR BTC 0F A3 AB B3 BB, 0F BA /4-/7', gen: genBt, count: 3000 },
  { name: 'bsf', desc: 'BSF BSR 0F BC BD', gen: genBsfBsr },
  { name: 'tzcnt', desc: 'TZCNT F3 0F BC', gen: (r) => genCnt(r, 'tzcnt'), requires: ['bmi1'] },
  { name: 'lzcnt', desc: 'LZCNT F3 0F BD', gen: (r) => genCnt(r, 'lzcnt'), requires: ['lzcnt'] },
  { name: 'popcnt', desc: 'POPCNT F3 0F B8', gen: (r) => genCnt(r, 'popcnt'), requires: ['popcnt'] },
  { name: 'bswap', desc: 'BSWAP 0F C8+r (32/64)', gen: genBswap },
  { name: 'movx', desc: 'MOVZX MOVSX 0F B6 B7 BE BF, MOVSXD 63', gen: genMovx },
  { name: 'cbw', desc: 'CBW CWDE CDQE CWD CDQ CQO', gen: genCbw },
  { name: 'cmov', desc: 'CMOVcc 0F 40-4F', gen: genCmov },
  { name: 'setcc', desc: 'SETcc 0F 90-9F', gen: genSetcc },
  { name: 'xchg', desc: 'XCHG 86 87 90+r, NOP, PAUSE', gen: genXchg },
  { name: 'xadd', desc: 'XADD 0F C0 C1', gen: genXadd },
  { name: 'cmpxchg', desc: 'CMPXCHG 0F B0 B1', gen: genCmpxchg },
  { name: 'cmpxchg8b', desc: 'CMPXCHG8B 0F C7 /1', gen: (r) => genCmpxchg8b(r, false) },
  {
    name: 'cmpxchg16b',
    desc: 'CMPXCHG16B REX.W 0F C7 /1 (incl. misaligned #GP)',
    gen: (r) => genCmpxchg8b(r, true),
    requires: ['cx16'],
    faults: true,
  },
  { name: 'lea', desc: 'LEA 8D, all addressing forms, 66/67', gen: genLea, count: 4000, faults: true },
  { name: 'mov', desc: 'MOV 88-8B C6 C7 B0-BF A0-A3, XLAT', gen: genMov, count: 4000 },
  { name: 'flagops', desc: 'LAHF SAHF CLC STC CMC CLD STD', gen: genFlagOps, requires: ['lahfsahf'] },
  {
    name: 'string',
    desc: 'MOVS CMPS STOS LODS SCAS with REP/REPE/REPNE, DF, 67',
    gen: genString,
    count: 4000,
  },
  { name: 'stack', desc: 'PUSH POP (50-5F 6A 68 FF/6 8F/0) ENTER LEAVE', gen: genStack, count: 3000 },
  { name: 'nop', desc: 'NOP 90, 66 90, 0F 1F /0', gen: genNop },
  { name: 'movbe', desc: 'MOVBE 0F 38 F0 F1', gen: genMovbe, requires: ['movbe'] },
  { name: 'prefixes', desc: 'ignored prefixes: REX before 66, repeated 66, segment, 67', gen: genPrefixes },
  {
    name: 'ud',
    desc: '#UD (invalid in 64-bit mode, UD2, LOCK misuse), #BP, #GP (too long)',
    gen: genUd,
    faults: true,
  },
  {
    name: 'fault',
    desc: '#GP non-canonical, #SS, #PF unmapped / page-crossing',
    gen: genFault,
    faults: true,
  },
  { name: 'priv', desc: 'privileged instructions at CPL 3: #GP', gen: genPriv, cpl3: true, faults: true },
];

export function findGroup(name: string): Group {
  const g = GROUPS.find((x) => x.name === name);
  if (!g) throw new Error(`unknown group "${name}" (groups: ${GROUPS.map((x) => x.name).join(', ')})`);
  return g;
}

/** Case `index` of a group under a seed (independent of the other cases). */
export function generateOne(group: Group, seed: string | number, index: number): GenCase {
  const r = new Rng(`${seed}/${group.name}/${index}`);
  for (let attempt = 0; attempt < 100; attempt++) {
    const c = group.gen(r);
    if (c) return c;
  }
  throw new Error(`${group.name}: generator keeps excluding cases`);
}

/** `n` cases of a group, indices [first, first+n). */
export function generate(group: Group, n: number, seed: string | number, first = 0): GenCase[] {
  const out: GenCase[] = [];
  for (let i = 0; i < n; i++) out.push(generateOne(group, seed, first + i));
  return out;
}

/** Groups the host can run. */
export function availableGroups(f: HostFeatures): Group[] {
  return GROUPS.filter((g) => (g.requires ?? []).every((k) => f[k] === true));
}
