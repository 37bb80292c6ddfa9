/**
 * Lazy arithmetic flags. The hot ALU instructions (ADD, ADC, SUB, SBB, CMP, logic,
 * INC, DEC) only record their operands and result; a flag is computed when read.
 * Everything else writes flags eagerly into `FlagState.word` and sets op = NONE.
 *
 * Operands and result are kept unsigned and masked to the operand size in `lo`;
 * for 64-bit operations the high halves are in `*Hi` (int32), else they are 0.
 */
import { AF, CF, OF, PF, SF, ZF, ARITH_FLAGS } from './regs.js';

export const LF_NONE = 0,
  LF_ADD = 1,
  LF_ADC = 2,
  LF_SUB = 3,
  LF_SBB = 4,
  LF_LOGIC = 5,
  LF_INC = 6,
  LF_DEC = 7;

/** PARITY[b] = PF for byte b (set when the number of 1 bits is even). */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i,
    n = 0;
  while (b) {
    n += b & 1;
    b >>= 1;
  }
  PARITY[i] = n & 1 ? 0 : 1;
}

export class FlagState {
  /** RFLAGS, authoritative for all bits when op = NONE, for non-arithmetic bits always. */
  word = 2;
  op = LF_NONE;
  size = 4;
  dst = 0;
  dstHi = 0;
  src = 0;
  srcHi = 0;
  res = 0;
  resHi = 0;
  /** Carry-in of ADC/SBB. */
  cin = 0;

  /** Record a lazily evaluated result; all values already masked to `size` (unsigned lo). */
  set(
    op: number,
    size: number,
    dst: number,
    dstHi: number,
    src: number,
    srcHi: number,
    res: number,
    resHi: number,
  ): void {
    this.op = op;
    this.size = size;
    this.dst = dst;
    this.dstHi = dstHi;
    this.src = src;
    this.srcHi = srcHi;
    this.res = res;
    this.resHi = resHi;
  }

  /** Set the arithmetic flags eagerly (and drop any lazy state). */
  setEager(bits: number): void {
    this.word = (this.word & ~ARITH_FLAGS) | (bits & ARITH_FLAGS);
    this.op = LF_NONE;
  }

  /** Top (sign) bit of a value of the current size: lo for size<8, hi for size 8. */
  private top(lo: number, hi: number): number {
    switch (this.size) {
      case 1:
        return (lo >>> 7) & 1;
      case 2:
        return (lo >>> 15) & 1;
      case 4:
        return lo >>> 31;
      default:
        return hi >>> 31;
    }
  }

  cf(): boolean {
    switch (this.op) {
      case LF_NONE:
      case LF_INC:
      case LF_DEC:
        return (this.word & CF) !== 0;
      case LF_ADD:
        return this.ltU(this.res, this.resHi, this.dst, this.dstHi);
      case LF_ADC:
        return this.cin
          ? !this.ltU(this.dst, this.dstHi, this.res, this.resHi)
          : this.ltU(this.res, this.resHi, this.dst, this.dstHi);
      case LF_SUB:
        return this.ltU(this.dst, this.dstHi, this.src, this.srcHi);
      case LF_SBB:
        return this.cin
          ? !this.ltU(this.src, this.srcHi, this.dst, this.dstHi)
          : this.ltU(this.dst, this.dstHi, this.src, this.srcHi);
      default:
        return false;
    }
  }
  /** Unsigned (aHi:a) < (bHi:b). */
  private ltU(a: number, aHi: number, b: number, bHi: number): boolean {
    if (this.size === 8) {
      const ah = aHi >>> 0,
        bh = bHi >>> 0;
      return ah < bh || (ah === bh && a >>> 0 < b >>> 0);
    }
    return a >>> 0 < b >>> 0;
  }
  zf(): boolean {
    if (this.op === LF_NONE) return (this.word & ZF) !== 0;
    return (this.res | this.resHi) === 0;
  }
  sf(): boolean {
    if (this.op === LF_NONE) return (this.word & SF) !== 0;
    return this.top(this.res, this.resHi) !== 0;
  }
  pf(): boolean {
    if (this.op === LF_NONE) return (this.word & PF) !== 0;
    return PARITY[this.res & 0xff] !== 0;
  }
  af(): boolean {
    switch (this.op) {
      case LF_NONE:
        return (this.word & AF) !== 0;
      case LF_LOGIC:
        return false;
      default:
        return ((this.dst ^ this.src ^ this.res) & 0x10) !== 0;
    }
  }
  of(): boolean {
    switch (this.op) {
      case LF_NONE:
        return (this.word & OF) !== 0;
      case LF_ADD:
      case LF_ADC:
      case LF_INC:
        return (
          this.top(
            (this.dst ^ this.res) & (this.src ^ this.res),
            (this.dstHi ^ this.resHi) & (this.srcHi ^ this.resHi),
          ) !== 0
        );
      case LF_SUB:
      case LF_SBB:
      case LF_DEC:
        return (
          this.top(
            (this.dst ^ this.src) & (this.dst ^ this.res),
            (this.dstHi ^ this.srcHi) & (this.dstHi ^ this.resHi),
          ) !== 0
        );
      default:
        return false;
    }
  }

  /** Fold the lazy state into `word` and return RFLAGS (low 32 bits). */
  get(): number {
    if (this.op !== LF_NONE) {
      let f = 0;
      if (this.cf()) f |= CF;
      if (this.pf()) f |= PF;
      if (this.af()) f |= AF;
      if (this.zf()) f |= ZF;
      if (this.sf()) f |= SF;
      if (this.of()) f |= OF;
      this.word = (this.word & ~ARITH_FLAGS) | f;
      this.op = LF_NONE;
    }
    return this.word;
  }

  /** Replace RFLAGS wholesale (bit 1 always reads 1). */
  put(v: number): void {
    this.word = (v | 2) & ~(8 | 32 | (1 << 15));
    this.op = LF_NONE;
  }

  /** Evaluate condition code cc (SDM Vol. 2 Appendix B.1.4.7). */
  cond(cc: number): boolean {
    let r: boolean;
    switch (cc >> 1) {
      case 0:
        r = this.of();
        break;
      case 1:
        r = this.cf();
        break;
      case 2:
        r = this.zf();
        break;
      case 3:
        r = this.cf() || this.zf();
        break;
      case 4:
        r = this.sf();
        break;
      case 5:
        r = this.pf();
        break;
      case 6:
        r = this.sf() !== this.of();
        break;
      default:
        r = this.zf() || this.sf() !== this.of();
        break;
    }
    return (cc & 1) !== 0 ? !r : r;
  }
}
