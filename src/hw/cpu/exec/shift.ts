/**
 * Shifts and rotates: ROL ROR RCL RCR SHL SHR SAR (forms Eb/Ev with 1, CL, Ib) and
 * the double-precision shifts SHLD SHRD (Ib, CL), for 8/16/32/64-bit operands
 * (SDM Vol. 2 "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR", "SHLD", "SHRD").
 *
 * Choices where the SDM leaves results undefined (all deterministic):
 * - OF for counts other than 1 uses the count-1 formula of the SDM pseudo-code
 *   (SHL/ROL/RCL: MSB(result) XOR CF; SHR: MSB(original); SAR: 0; ROR: XOR of the
 *   two top result bits; RCR: MSB(original) XOR old CF; SHLD/SHRD: sign change).
 * - AF is cleared by every shift with a non-zero count; rotates leave it alone.
 * - SHL/SHR of an 8/16-bit operand by more than its width follow the pseudo-code
 *   loop (CF ends up 0, the result 0).
 * - SHLD/SHRD of a 16-bit operand by 17..31 shift the 48-bit string dest:src:dest,
 *   which is what Intel processors from the P6 on produce.
 * A masked count of 0 changes neither the destination nor any flag; RCL/RCR of
 * 8/16-bit operands whose count is a multiple of 9/17 leave the flags alone too.
 */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import type { Cpu } from '../cpu.js';
import type { Handler, Insn } from '../insn.js';
import { PARITY } from '../flags.js';
import { AF, CF, OF, PF, SF, ZF } from '../regs.js';
import { MASK } from './operands.js';

const ROL = 0,
  ROR = 1,
  RCL = 2,
  RCR = 3,
  SHL = 4,
  SHR = 5,
  SAR = 7;

/** Count source of a form: the constant 1, CL, or the immediate byte. */
const C_ONE = 0,
  C_CL = 1,
  C_IMM = 2;

function countKind(operands: string): number {
  const last = operands.slice(operands.lastIndexOf(',') + 1);
  return last === '1' ? C_ONE : last === 'CL' ? C_CL : C_IMM;
}

function rawCount(cpu: Cpu, i: Insn, kind: number): number {
  return kind === C_ONE ? 1 : kind === C_CL ? cpu.rlo[1] & 0xff : i.imm & 0xff;
}

// ---- 64-bit helpers on (hi, lo) int32 pairs; the high half of a result goes to `H`.
let H = 0;

/** (h:l) << k for k in 0..64. */
function shl64(h: number, l: number, k: number): number {
  if (k === 0) {
    H = h;
    return l;
  }
  if (k < 32) {
    H = (h << k) | (l >>> (32 - k));
    return l << k;
  }
  H = k < 64 ? l << (k - 32) : 0;
  return 0;
}
/** (h:l) >>> k (logical) for k in 0..64. */
function shr64(h: number, l: number, k: number): number {
  if (k === 0) {
    H = h;
    return l;
  }
  if (k < 32) {
    H = h >>> k;
    return (l >>> k) | (h << (32 - k));
  }
  H = 0;
  return k < 64 ? h >>> (k - 32) : 0;
}
/** (h:l) >> k (arithmetic) for k in 0..63. */
function sar64(h: number, l: number, k: number): number {
  if (k === 0) {
    H = h;
    return l;
  }
  if (k < 32) {
    H = h >> k;
    return (l >>> k) | (h << (32 - k));
  }
  H = h >> 31;
  return h >> (k - 32);
}
/** Bit k (0..63) of (h:l). */
function bit64(h: number, l: number, k: number): number {
  return k < 32 ? (l >>> k) & 1 : (h >>> (k - 32)) & 1;
}
/** x << k for k in 0..32 (JavaScript shifts are mod 32). */
function shl32(x: number, k: number): number {
  return k >= 32 ? 0 : x << k;
}
function shr32(x: number, k: number): number {
  return k >= 32 ? 0 : x >>> k;
}

/** SF, ZF and PF of a result (lo unsigned masked, hi for 64-bit). */
function szp(lo: number, hi: number, size: number): number {
  let f = PARITY[lo & 0xff] ? PF : 0;
  if (size === 8) {
    if ((lo | hi) === 0) f |= ZF;
    if (hi < 0) f |= SF;
  } else {
    if (lo === 0) f |= ZF;
    if ((lo >>> (size * 8 - 1)) & 1) f |= SF;
  }
  return f;
}

/**
 * Compute `op` on d (size < 8, unsigned masked) by masked count c (1..31) and
 * store the new arithmetic flags in `outFlags`; returns the result, or -1 when the
 * operation changes nothing (RCL/RCR by a multiple of 9/17).
 */
let outFlags = 0;
function shift32(op: number, size: number, d: number, c: number, flags: number): number {
  const n = size * 8;
  const m = MASK[size];
  const msb = n - 1;
  let r: number, cf: number, of: number;
  switch (op) {
    case ROL: {
      const k = c % n;
      r = k ? ((d << k) | (d >>> (n - k))) & m : d;
      r >>>= 0;
      cf = r & 1;
      of = ((r >>> msb) & 1) ^ cf;
      outFlags = (flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return r;
    }
    case ROR: {
      const k = c % n;
      r = k ? ((d >>> k) | (d << (n - k))) & m : d;
      r >>>= 0;
      cf = (r >>> msb) & 1;
      of = cf ^ ((r >>> (msb - 1)) & 1);
      outFlags = (flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return r;
    }
    case RCL: {
      const k = n < 32 ? c % (n + 1) : c;
      if (k === 0) return -1;
      const cin = flags & CF;
      r = ((shl32(d, k) | (cin << (k - 1)) | shr32(d, n + 1 - k)) & m) >>> 0;
      cf = (d >>> (n - k)) & 1;
      of = ((r >>> msb) & 1) ^ cf;
      outFlags = (flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return r;
    }
    case RCR: {
      const k = n < 32 ? c % (n + 1) : c;
      if (k === 0) return -1;
      const cin = flags & CF;
      r = ((shr32(d, k) | (cin << (n - k)) | shl32(d, n + 1 - k)) & m) >>> 0;
      cf = (d >>> (k - 1)) & 1;
      of = ((d >>> msb) & 1) ^ cin;
      outFlags = (flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return r;
    }
    case SHL:
      r = ((d << c) & m) >>> 0;
      cf = c <= n ? (d >>> (n - c)) & 1 : 0;
      of = ((r >>> msb) & 1) ^ cf;
      break;
    case SHR:
      r = d >>> c;
      cf = c <= n ? (d >>> (c - 1)) & 1 : 0;
      of = (d >>> msb) & 1;
      break;
    default: {
      // SAR
      const sd = (d << (32 - n)) >> (32 - n);
      r = ((sd >> c) & m) >>> 0;
      cf = (sd >> Math.min(c - 1, 31)) & 1;
      of = 0;
    }
  }
  outFlags = (flags & ~(CF | OF | AF | SF | ZF | PF)) | szp(r, 0, size) | (cf ? CF : 0) | (of ? OF : 0);
  return r;
}

/** The same for 64-bit operands, c in 1..63; the high half of the result in H. */
function shift64(op: number, dh: number, d: number, c: number, flags: number): number {
  let r: number, rh: number, cf: number, of: number;
  switch (op) {
    case ROL:
    case ROR: {
      const left = op === ROL ? c : 64 - c;
      const a = shl64(dh, d, left),
        ah = H;
      const b = shr64(dh, d, 64 - left),
        bh = H;
      r = (a | b) >>> 0;
      rh = ah | bh;
      if (op === ROL) {
        cf = r & 1;
        of = (rh >>> 31) ^ cf;
      } else {
        cf = rh >>> 31;
        of = cf ^ ((rh >>> 30) & 1);
      }
      H = rh;
      outFlags = (flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return r;
    }
    case RCL: {
      const cin = flags & CF;
      const a = shl64(dh, d, c),
        ah = H;
      const b = shl64(0, cin, c - 1),
        bh = H;
      const e = shr64(dh, d, 65 - c),
        eh = H;
      r = (a | b | e) >>> 0;
      rh = ah | bh | eh;
      cf = bit64(dh, d, 64 - c);
      of = (rh >>> 31) ^ cf;
      H = rh;
      outFlags = (flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return r;
    }
    case RCR: {
      const cin = flags & CF;
      const a = shr64(dh, d, c),
        ah = H;
      const b = shl64(0, cin, 64 - c),
        bh = H;
      const e = shl64(dh, d, 65 - c),
        eh = H;
      r = (a | b | e) >>> 0;
      rh = ah | bh | eh;
      cf = bit64(dh, d, c - 1);
      of = (dh >>> 31) ^ cin;
      H = rh;
      outFlags = (flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
      return r;
    }
    case SHL:
      r = shl64(dh, d, c) >>> 0;
      rh = H;
      cf = bit64(dh, d, 64 - c);
      of = (rh >>> 31) ^ cf;
      break;
    case SHR:
      r = shr64(dh, d, c) >>> 0;
      rh = H;
      cf = bit64(dh, d, c - 1);
      of = dh >>> 31;
      break;
    default:
      r = sar64(dh, d, c) >>> 0;
      rh = H;
      cf = bit64(dh, d, c - 1);
      of = 0;
  }
  H = rh;
  outFlags = (flags & ~(CF | OF | AF | SF | ZF | PF)) | szp(r, rh, 8) | (cf ? CF : 0) | (of ? OF : 0);
  return r;
}

function shiftHandler(op: number, e: OpcodeEntry): Handler {
  const ck = countKind(e.operands);
  return (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    const c = rawCount(cpu, i, ck) & (size === 8 ? 63 : 31);
    if (!i.mem) {
      const d = cpu.getReg(i.rm, size, i.rex);
      const dh = cpu.hi;
      if (c === 0) {
        // The register is still written: a 32-bit destination is zero-extended.
        if (size === 4) cpu.rhi[i.rm] = 0;
        return;
      }
      const flags = cpu.fl.get();
      if (size === 8) {
        const r = shift64(op, dh, d, c, flags);
        cpu.setReg(i.rm, 8, r, H);
      } else {
        const r = shift32(op, size, d, c, flags);
        if (r < 0) return;
        cpu.setReg(i.rm, size, r, 0, i.rex);
      }
      cpu.fl.setEager(outFlags);
      return;
    }
    // Memory: a read-modify-write access (translated for writing, so a #PF reports W=1)
    // even for a zero count.
    const la = cpu.memLin(i, size, true);
    cpu.probeWrite(la, size);
    const d = cpu.rdN(la, size);
    const dh = cpu.hi;
    if (c === 0) return;
    const flags = cpu.fl.get();
    let r: number, rh: number;
    if (size === 8) {
      r = shift64(op, dh, d, c, flags);
      rh = H;
    } else {
      r = shift32(op, size, d, c, flags);
      rh = 0;
      if (r < 0) return;
    }
    const nf = outFlags;
    // Write before touching the flags: a fault on the write must leave RFLAGS intact.
    cpu.wrN(la, size, r, rh);
    cpu.fl.setEager(nf);
  };
}

// ---- SHLD / SHRD --------------------------------------------------------------

/** Double shift of d (dest) with bits from s (source) by c (1..31 or 1..63); flags in outFlags. */
function dshift(
  left: boolean,
  size: number,
  dh: number,
  d: number,
  sh: number,
  s: number,
  c: number,
  flags: number,
): number {
  let r: number, rh: number, cf: number;
  if (size === 8) {
    if (left) {
      const a = shl64(dh, d, c),
        ah = H;
      const b = shr64(sh, s, 64 - c),
        bh = H;
      r = (a | b) >>> 0;
      rh = ah | bh;
      cf = bit64(dh, d, 64 - c);
    } else {
      const a = shr64(dh, d, c),
        ah = H;
      const b = shl64(sh, s, 64 - c),
        bh = H;
      r = (a | b) >>> 0;
      rh = ah | bh;
      cf = bit64(dh, d, c - 1);
    }
  } else if (size === 4) {
    rh = 0;
    if (left) {
      r = ((d << c) | (s >>> (32 - c))) >>> 0;
      cf = (d >>> (32 - c)) & 1;
    } else {
      r = ((d >>> c) | (s << (32 - c))) >>> 0;
      cf = (d >>> (c - 1)) & 1;
    }
  } else {
    // 16-bit: the 48-bit string dest:src:dest (exact in a double).
    rh = 0;
    const v = d * 4294967296 + s * 65536 + d;
    if (left) {
      r = Math.floor(v / 2 ** (32 - c)) % 65536;
      cf = Math.floor(v / 2 ** (48 - c)) % 2;
    } else {
      r = Math.floor(v / 2 ** c) % 65536;
      cf = Math.floor(v / 2 ** (c - 1)) % 2;
    }
  }
  const top = size * 8 - 1;
  const signOld = size === 8 ? dh >>> 31 : (d >>> top) & 1;
  const signNew = size === 8 ? rh >>> 31 : (r >>> top) & 1;
  H = rh;
  outFlags =
    (flags & ~(CF | OF | AF | SF | ZF | PF)) |
    szp(r, rh, size) |
    (cf ? CF : 0) |
    (signOld !== signNew ? OF : 0);
  return r;
}

function dshiftHandler(left: boolean, e: OpcodeEntry): Handler {
  const byCl = e.operands.endsWith('CL');
  return (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    const c = (byCl ? cpu.rlo[1] : i.imm) & (size === 8 ? 63 : 31);
    const s = cpu.getReg(i.reg, size, i.rex);
    const sh = cpu.hi;
    if (!i.mem) {
      if (c === 0) {
        if (size === 4) cpu.rhi[i.rm] = 0; // zero-extended even for a zero count
        return;
      }
      const d = cpu.getReg(i.rm, size, i.rex);
      const r = dshift(left, size, cpu.hi, d, sh, s, c, cpu.fl.get());
      cpu.setReg(i.rm, size, r, H, i.rex);
      cpu.fl.setEager(outFlags);
      return;
    }
    const la = cpu.memLin(i, size, true);
    cpu.probeWrite(la, size);
    const d = cpu.rdN(la, size);
    const dh = cpu.hi;
    if (c === 0) return;
    const r = dshift(left, size, dh, d, sh, s, c, cpu.fl.get());
    const rh = H,
      nf = outFlags;
    cpu.wrN(la, size, r, rh);
    cpu.fl.setEager(nf);
  };
}

export const shiftHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  ROL: (e) => shiftHandler(ROL, e),
  ROR: (e) => shiftHandler(ROR, e),
  RCL: (e) => shiftHandler(RCL, e),
  RCR: (e) => shiftHandler(RCR, e),
  SHL: (e) => shiftHandler(SHL, e),
  SHR: (e) => shiftHandler(SHR, e),
  SAR: (e) => shiftHandler(SAR, e),
  SHLD: (e) => dshiftHandler(true, e),
  SHRD: (e) => dshiftHandler(false, e),
};
