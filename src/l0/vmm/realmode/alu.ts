/**
 * Integer arithmetic with its flags, eagerly computed (SDM 1 Appendix A, and each
 * instruction's "Flags Affected"). Values are unsigned numbers of `size` bytes (1, 2, 4).
 * Where the SDM leaves a flag undefined the emulator clears it (AF after logic operations and
 * shifts, SF/ZF/AF/PF after multiplications); the differential test masks those flags.
 */
import { AF, ARITH_FLAGS, CF, OF, PF, SF, ZF } from './state.js';

export const MASK = [0, 0xff, 0xffff, 0, 0xffffffff] as const;
const SIGN = [0, 0x80, 0x8000, 0, 0x80000000] as const;

/** PF: set when the low byte has an even number of 1 bits. */
export function parity(v: number): number {
  let b = v & 0xff;
  b ^= b >> 4;
  b ^= b >> 2;
  b ^= b >> 1;
  return b & 1 ? 0 : PF;
}
/** SF, ZF, PF of a result. */
export function szp(r: number, size: number): number {
  return (r & SIGN[size] ? SF : 0) | (r === 0 ? ZF : 0) | parity(r);
}

export interface Flagged {
  /** The result, unsigned. */
  r: number;
  /** The new arithmetic flags (ARITH_FLAGS bits). */
  f: number;
}
const out: Flagged = { r: 0, f: 0 };

/** The ALU operations of the 00-3F opcode rows and groups 80-83, by ModRM.reg / opcode bits 5:3. */
export const ALU_OPS = ['ADD', 'OR', 'ADC', 'SBB', 'AND', 'SUB', 'XOR', 'CMP'] as const;
export type AluOp = (typeof ALU_OPS)[number];

export function add(a: number, b: number, c: number, size: number): Flagged {
  const m = MASK[size];
  const full = a + b + c;
  const r = full % (m + 1);
  out.r = r;
  out.f =
    (full > m ? CF : 0) |
    ((a ^ b ^ r) & 0x10 ? AF : 0) |
    ((a ^ r) & (b ^ r) & SIGN[size] ? OF : 0) |
    szp(r, size);
  return out;
}
export function sub(a: number, b: number, c: number, size: number): Flagged {
  const m = MASK[size];
  const r = (a - b - c + (m + 1)) % (m + 1);
  out.r = r;
  out.f =
    (a < b + c ? CF : 0) |
    ((a ^ b ^ r) & 0x10 ? AF : 0) |
    ((a ^ b) & (a ^ r) & SIGN[size] ? OF : 0) |
    szp(r, size);
  return out;
}
export function logic(r: number, size: number): Flagged {
  out.r = r >>> 0;
  out.f = szp(out.r, size);
  return out;
}

/** One of ADD…CMP on `a` and `b` with the current flags (for ADC/SBB's carry). */
export function alu(op: AluOp, a: number, b: number, flags: number, size: number): Flagged {
  const c = flags & CF;
  switch (op) {
    case 'ADD':
      return add(a, b, 0, size);
    case 'ADC':
      return add(a, b, c, size);
    case 'SUB':
    case 'CMP':
      return sub(a, b, 0, size);
    case 'SBB':
      return sub(a, b, c, size);
    case 'OR':
      return logic(a | b, size);
    case 'AND':
      return logic(a & b, size);
    case 'XOR':
      return logic((a ^ b) & MASK[size], size);
  }
}

/** INC/DEC: like ADD/SUB 1, but CF keeps its value. */
export function incDec(a: number, dec: boolean, flags: number, size: number): Flagged {
  const x = dec ? sub(a, 1, 0, size) : add(a, 1, 0, size);
  x.f = (x.f & ~CF) | (flags & CF);
  return x;
}

/** The rotates and shifts of group 2, by ModRM.reg (SAL = SHL). */
export const SHIFT_OPS = ['ROL', 'ROR', 'RCL', 'RCR', 'SHL', 'SHR', 'SHL', 'SAR'] as const;

/**
 * Group-2 shift or rotate of `a` by `count` (already masked to 5 bits, SDM 2B SAL/SAR/SHL/SHR
 * "IA-32 Architecture Compatibility"). A count of 0 changes no flag. OF is defined for counts
 * of 1 only; for larger counts it is computed the same way.
 */
export function shift(kind: number, a: number, count: number, flags: number, size: number): Flagged {
  const bits = size * 8,
    m = MASK[size],
    sign = SIGN[size];
  const cin = flags & CF;
  out.r = a;
  out.f = flags & ARITH_FLAGS;
  if (count === 0) return out;
  let r = a,
    cf = 0,
    of = 0;
  switch (SHIFT_OPS[kind]) {
    case 'ROL': {
      const n = count % bits;
      r = n ? ((a * 2 ** n) % (m + 1)) + Math.floor(a / 2 ** (bits - n)) : a;
      cf = r & 1;
      of = (r & sign ? 1 : 0) ^ cf;
      out.r = r;
      out.f = (flags & ARITH_FLAGS & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return out;
    }
    case 'ROR': {
      const n = count % bits;
      r = n ? Math.floor(a / 2 ** n) + (a % 2 ** n) * 2 ** (bits - n) : a;
      cf = r & sign ? 1 : 0;
      of = cf ^ (r & (sign >>> 1) ? 1 : 0);
      out.r = r;
      out.f = (flags & ARITH_FLAGS & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return out;
    }
    case 'RCL': {
      // A rotate through CF: bits+1 positions (SDM 2B RCL: the count is taken modulo 9/17 for 8/16 bits).
      const n = count % (bits + 1);
      let c = cin;
      for (let k = 0; k < n; k++) {
        const top = r & sign ? 1 : 0;
        r = ((r * 2) % (m + 1)) + c;
        c = top;
      }
      of = (r & sign ? 1 : 0) ^ c;
      out.r = r;
      out.f = (flags & ARITH_FLAGS & ~(CF | OF)) | (c ? CF : 0) | (of ? OF : 0);
      return out;
    }
    case 'RCR': {
      const n = count % (bits + 1);
      let c = cin;
      of = (a & sign ? 1 : 0) ^ c;
      for (let k = 0; k < n; k++) {
        const low = r & 1;
        r = Math.floor(r / 2) + (c ? sign : 0);
        c = low;
      }
      out.r = r;
      out.f = (flags & ARITH_FLAGS & ~(CF | OF)) | (c ? CF : 0) | (of ? OF : 0);
      return out;
    }
    case 'SHL':
      r = count < bits ? (a * 2 ** count) % (m + 1) : 0;
      cf = count <= bits ? Math.floor(a / 2 ** (bits - count)) & 1 : 0;
      of = (r & sign ? 1 : 0) ^ cf;
      break;
    case 'SHR':
      r = count < bits ? Math.floor(a / 2 ** count) : 0;
      cf = count <= bits ? Math.floor(a / 2 ** (count - 1)) & 1 : 0;
      of = a & sign ? 1 : 0;
      break;
    case 'SAR': {
      const sv = size === 4 ? a | 0 : size === 2 ? (a << 16) >> 16 : (a << 24) >> 24;
      r = size === 4 ? (sv >> count) >>> 0 : (sv >> count) & m;
      cf = (sv >> (count - 1)) & 1;
      of = 0;
      break;
    }
  }
  out.r = r;
  out.f = (cf ? CF : 0) | (of ? OF : 0) | szp(r, size);
  return out;
}

/** Test condition `cc` (0-15, the low nibble of Jcc/SETcc/CMOVcc) against RFLAGS (SDM 1 Appendix B). */
export function condition(cc: number, f: number): boolean {
  let t: boolean;
  switch (cc >> 1) {
    case 0:
      t = (f & OF) !== 0;
      break;
    case 1:
      t = (f & CF) !== 0;
      break;
    case 2:
      t = (f & ZF) !== 0;
      break;
    case 3:
      t = (f & (CF | ZF)) !== 0;
      break;
    case 4:
      t = (f & SF) !== 0;
      break;
    case 5:
      t = (f & PF) !== 0;
      break;
    case 6:
      t = !(f & SF) !== !(f & OF);
      break;
    default:
      t = (f & ZF) !== 0 || !(f & SF) !== !(f & OF);
  }
  return cc & 1 ? !t : t;
}
