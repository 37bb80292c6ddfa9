/**
 * Exact conversion between simulated CPU cycles and the ticks of a slower
 * device clock (the PIT's 1.193182 MHz, the PM timer's 3.579545 MHz, the RTC's
 * 32.768 kHz). The ratio is kept as a reduced fraction num/den, and both
 * directions are computed by splitting the operand into a quotient and a
 * remainder, so every intermediate product stays below 2^53: the result is the
 * exact floor (or ceiling), with no drift however long the machine runs.
 */
import { InternalError } from '../../common/index.js';
import { CPU_HZ } from '../cost.js';

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** floor(a / b) for non-negative safe integers, without floating-point rounding. */
function idiv(a: number, b: number): number {
  return (a - (a % b)) / b;
}

export class TickRate {
  /** ticks = cycles * num / den. */
  readonly num: number;
  readonly den: number;

  constructor(
    readonly hz: number,
    readonly cpuHz: number = CPU_HZ,
  ) {
    if (!Number.isInteger(hz) || !Number.isInteger(cpuHz) || hz <= 0 || hz > cpuHz)
      throw new InternalError(`bad tick rate ${hz} Hz for a ${cpuHz} Hz CPU`);
    const g = gcd(hz, cpuHz);
    this.num = hz / g;
    this.den = cpuHz / g;
    if (this.num * this.den >= Number.MAX_SAFE_INTEGER)
      throw new InternalError(`tick rate ${hz}/${cpuHz} too fine for exact arithmetic`);
  }

  /** Whole ticks elapsed at `cycles`: floor(cycles * hz / cpuHz). */
  ticksAt(cycles: number): number {
    const c = Math.floor(cycles);
    const q = idiv(c, this.den);
    const r = c - q * this.den;
    return q * this.num + idiv(r * this.num, this.den);
  }

  /** The first cycle at which `ticks` whole ticks have elapsed: ceil(ticks * cpuHz / hz). */
  cycleOf(ticks: number): number {
    const q = idiv(ticks, this.num);
    const r = ticks - q * this.num;
    return q * this.den + idiv(r * this.den + this.num - 1, this.num);
  }
}
