/**
 * Bit instructions: BT BTS BTR BTC (Ev,Gv and Ev,Ib), BSF BSR, TZCNT LZCNT POPCNT
 * (SDM Vol. 2). 64-bit operands are handled as (hi, lo) int32 pairs, no BigInt.
 *
 * Flags the SDM leaves undefined (OF SF AF PF of BTx; CF OF SF AF PF of BSF/BSR;
 * OF SF AF PF of TZCNT/LZCNT) are left unchanged. BSF/BSR with a zero source set
 * ZF and leave the destination register untouched (all 64 bits), as AMD documents
 * and Intel processors do. LOCK validity (#UD) is decided by the decoder.
 */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import type { Cpu } from '../cpu.js';
import type { Handler, Insn } from '../insn.js';
import { AF, CF, OF, PF, SF, ZF } from '../regs.js';

const TWO32 = 4294967296;

const OP_BT = 0,
  OP_BTS = 1,
  OP_BTR = 2,
  OP_BTC = 3;

/** Apply BTS/BTR/BTC to bit `b` of the 32-bit word `w`. */
function modify(op: number, w: number, b: number): number {
  const m = 1 << b;
  return op === OP_BTS ? w | m : op === OP_BTR ? w & ~m : w ^ m;
}

function setCf(cpu: Cpu, cf: number): void {
  cpu.fl.setEager((cpu.fl.get() & ~CF) | (cf ? CF : 0));
}

/**
 * Linear address of the operand-size unit holding bit `off` relative to the memory
 * operand, for a signed register bit offset (SDM Vol. 2 BT: "bit base" addressing).
 * The unit is at EA + size * floor(offset / (8 * size)).
 */
function bitUnitLin(cpu: Cpu, i: Insn, size: number, offLo: number, offHi: number, write: boolean): number {
  let dLo: number, dHi: number;
  if (size === 8) {
    // (offHi:offLo) >> 6, then * 8: arithmetic shift right by 3 with the low 3 bits cleared.
    dLo = ((offLo >>> 3) | (offHi << 29)) & ~7;
    dHi = offHi >> 3;
  } else {
    const bits = size * 8;
    const s = size === 4 ? offLo | 0 : (offLo << 16) >> 16;
    dLo = (s >> (bits === 32 ? 5 : 4)) * size;
    dHi = dLo < 0 ? -1 : 0;
  }
  let off: number;
  if (i.asize === 8) {
    const lo = cpu.ea64(i);
    const hi = cpu.hi;
    const sum = (lo >>> 0) + (dLo >>> 0);
    const h = (hi + dHi + (sum >= TWO32 ? 1 : 0)) | 0;
    off = h * TWO32 + (sum >>> 0);
  } else if (i.asize === 4) off = (cpu.ea(i) + dLo) >>> 0;
  else off = (cpu.ea(i) + dLo) & 0xffff;
  return cpu.lin(i.seg, off, size, write);
}

function btHandler(op: number, e: OpcodeEntry): Handler {
  const immForm = e.operands.endsWith('Ib');
  const write = op !== OP_BT;
  return (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    let offLo: number, offHi: number;
    if (immForm) {
      offLo = i.imm & (size * 8 - 1);
      offHi = 0;
    } else {
      offLo = cpu.getReg(i.reg, size, i.rex);
      offHi = cpu.hi;
    }
    if (!i.mem) {
      const b = offLo & (size * 8 - 1);
      if (size === 8) {
        const r = i.rm;
        const inHi = b >= 32;
        const w = inHi ? cpu.rhi[r] : cpu.rlo[r];
        const bb = b & 31;
        const cf = (w >>> bb) & 1;
        if (write) {
          if (inHi) cpu.rhi[r] = modify(op, w, bb);
          else cpu.rlo[r] = modify(op, w, bb);
        }
        setCf(cpu, cf);
        return;
      }
      const w = cpu.getReg(i.rm, size, i.rex);
      const cf = (w >>> b) & 1;
      if (write) cpu.setReg(i.rm, size, modify(op, w, b), 0, i.rex);
      setCf(cpu, cf);
      return;
    }
    const la = immForm ? cpu.memLin(i, size, write) : bitUnitLin(cpu, i, size, offLo, offHi, write);
    // BTS/BTR/BTC are read-modify-write: translate for writing first (a #PF reports W=1).
    if (write) cpu.probeWrite(la, size);
    const b = offLo & (size * 8 - 1);
    if (size === 8) {
      const lo = cpu.rd64(la);
      const hi = cpu.hi;
      const inHi = b >= 32;
      const w = inHi ? hi : lo;
      const cf = (w >>> (b & 31)) & 1;
      if (write) {
        if (inHi) cpu.wr64(la, lo, modify(op, hi, b & 31));
        else cpu.wr64(la, modify(op, lo, b), hi);
      }
      setCf(cpu, cf);
      return;
    }
    const w = cpu.rdN(la, size);
    const cf = (w >>> b) & 1;
    if (write) cpu.wrN(la, size, modify(op, w, b), 0);
    setCf(cpu, cf);
  };
}

/** Trailing zeros of (hi:lo) within `bits` bits (bits when zero). */
function tz(lo: number, hi: number, bits: number): number {
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  if (bits === 64 && hi !== 0) return 63 - Math.clz32(hi & -hi);
  return bits;
}
/** Index of the highest set bit of (hi:lo), -1 when zero. */
function msbIndex(lo: number, hi: number): number {
  if (hi !== 0) return 63 - Math.clz32(hi);
  if (lo !== 0) return 31 - Math.clz32(lo);
  return -1;
}
function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Source operand of a scan: lo returned, hi (0 below 64 bits) in `srcHi`. */
let srcHi = 0;
function source(cpu: Cpu, i: Insn, size: number): number {
  const lo = cpu.readE(i, size);
  srcHi = size === 8 ? cpu.hi : 0;
  return lo;
}

function bsf(reverse: boolean): Handler {
  return (cpu: Cpu, i: Insn): void => {
    const size = i.size;
    const lo = source(cpu, i, size),
      hi = srcHi;
    const f = cpu.fl.get();
    if ((lo | hi) === 0) {
      cpu.fl.setEager(f | ZF);
      return;
    }
    const r = reverse ? msbIndex(lo, hi) : tz(lo, hi, 64);
    cpu.setReg(i.reg, size, r, 0, i.rex);
    cpu.fl.setEager(f & ~ZF);
  };
}

function tzcnt(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const lo = source(cpu, i, size),
    hi = srcHi;
  const r = tz(lo, hi, size * 8);
  cpu.setReg(i.reg, size, r, 0, i.rex);
  const f = cpu.fl.get() & ~(CF | ZF);
  cpu.fl.setEager(f | (r === size * 8 ? CF : 0) | (r === 0 ? ZF : 0));
}

function lzcnt(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const lo = source(cpu, i, size),
    hi = srcHi;
  const bits = size * 8;
  const top = msbIndex(lo, hi);
  const r = bits - 1 - top; // bits when the source is zero
  cpu.setReg(i.reg, size, r, 0, i.rex);
  const f = cpu.fl.get() & ~(CF | ZF);
  cpu.fl.setEager(f | (top < 0 ? CF : 0) | (r === 0 ? ZF : 0));
}

function popcnt(cpu: Cpu, i: Insn): void {
  const size = i.size;
  const lo = source(cpu, i, size),
    hi = srcHi;
  const r = popcount32(lo) + popcount32(hi);
  cpu.setReg(i.reg, size, r, 0, i.rex);
  const f = cpu.fl.get() & ~(CF | OF | SF | AF | PF | ZF);
  cpu.fl.setEager(f | (r === 0 ? ZF : 0));
}

export const bitHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  BT: (e) => btHandler(OP_BT, e),
  BTS: (e) => btHandler(OP_BTS, e),
  BTR: (e) => btHandler(OP_BTR, e),
  BTC: (e) => btHandler(OP_BTC, e),
  BSF: () => bsf(false),
  BSR: () => bsf(true),
  TZCNT: () => tzcnt,
  LZCNT: () => lzcnt,
  POPCNT: () => popcnt,
};
