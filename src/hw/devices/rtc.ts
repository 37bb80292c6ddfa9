/**
 * Motorola MC146818 real-time clock and CMOS RAM (MC146818A datasheet), at ports
 * 0x70 (index; bit 7 disables NMI, as on the PC/AT) and 0x71 (data).
 *
 * Time is simulated time: the clock starts at RTC_START_TIME (2010-10-04
 * 00:00:00 UTC, the first day of OSDI 2010 where the Turtles paper was
 * presented) when the machine starts, and advances with simulated cycles through
 * the 32.768 kHz time base (exact arithmetic, tick-rate.ts). The time is kept as
 * a count of seconds and shown in the registers in the format register B asks
 * for (BCD or binary, 12- or 24-hour), so changing DM or 24/12 reinterprets the
 * time rather than leaving stale bytes as the chip would.
 *
 * - Register A: divider bits (6:4; "11x" holds the divider in reset, and the
 *   first update comes 500 ms after it is released), rate select (3:0) for the
 *   periodic interrupt, UIP (7) high during the 244 µs (8 time-base ticks)
 *   before each update; updates are instantaneous at the second boundary.
 * - Register B: SET stops updates (and clears UIE), PIE/AIE/UIE, DM, 24/12.
 *   SQWE and DSE are stored only.
 * - Register C: IRQF, PF, AF, UF; reading clears them and releases IRQ8. Flags are
 *   computed lazily; a clock event is scheduled only for the next flag that
 *   would raise IRQ8.
 * - Register D: VRT (battery good) always set.
 * - Alarm registers 1, 3, 5; values 0xC0-0xFF are "don't care".
 * - Day of week (register 6) follows the date; a write sets an offset to it.
 * - CMOS RAM 0x0E-0x7F is plain storage, initialised like QEMU's `pc` does for a
 *   given RAM size: base memory (0x15-0x16), extended memory (0x17-0x18,
 *   0x30-0x31), memory above 16 MiB in 64 KiB units (0x34-0x35), memory above
 *   4 GiB (0x5B-0x5D), CPU count - 1 (0x5F), century (0x32, BCD), equipment
 *   (0x14: FPU), and the checksum of 0x10-0x2D at 0x2E-0x2F.
 */
import type { IoSize, PortDevice } from '../bus.js';
import type { Clock, TimerHandle } from '../events-queue.js';
import { LOW_RAM_LIMIT } from '../mmu/physmem.js';
import { TickRate } from './tick-rate.js';

export const RTC_PORT = 0x70;
export const RTC_PORT_COUNT = 2;
/** 2010-10-04 00:00:00 UTC, in seconds since the Unix epoch. */
export const RTC_START_TIME = Date.UTC(2010, 9, 4) / 1000;
/** CMOS index of the century byte (for the FADT CENTURY field). */
export const RTC_CENTURY_INDEX = 0x32;

export const RTC_SECONDS = 0x00;
export const RTC_SECONDS_ALARM = 0x01;
export const RTC_MINUTES = 0x02;
export const RTC_MINUTES_ALARM = 0x03;
export const RTC_HOURS = 0x04;
export const RTC_HOURS_ALARM = 0x05;
export const RTC_DAY_OF_WEEK = 0x06;
export const RTC_DAY_OF_MONTH = 0x07;
export const RTC_MONTH = 0x08;
export const RTC_YEAR = 0x09;
export const RTC_REG_A = 0x0a;
export const RTC_REG_B = 0x0b;
export const RTC_REG_C = 0x0c;
export const RTC_REG_D = 0x0d;

export const REG_A_UIP = 0x80;
export const REG_B_SET = 0x80;
export const REG_B_PIE = 0x40;
export const REG_B_AIE = 0x20;
export const REG_B_UIE = 0x10;
export const REG_B_DM_BINARY = 0x04;
export const REG_B_24H = 0x02;
export const REG_C_IRQF = 0x80;
export const REG_C_PF = 0x40;
export const REG_C_AF = 0x20;
export const REG_C_UF = 0x10;

const TIME_BASE_HZ = 32768;
/** UIP rises 244 µs (8 ticks of the time base) before an update. */
const UIP_TICKS = 8;
const DAY = 86400;

export interface RtcOptions {
  /** Guest RAM in bytes, for the memory-size bytes (RAM beyond LOW_RAM_LIMIT counts as above 4 GiB). */
  ramBytes: number;
  cpus?: number;
  /** Seconds since the Unix epoch shown at simulated time 0 (default RTC_START_TIME). */
  startTime?: number;
}

const bcd2 = (v: number): number => ((Math.floor(v / 10) % 10) << 4) | (v % 10);
const unbcd2 = (v: number): number => (v >> 4) * 10 + (v & 0xf);

export class Rtc implements PortDevice {
  readonly name = 'rtc';
  readonly cmos = new Uint8Array(128);
  readonly rate = new TickRate(TIME_BASE_HZ);
  private index = 0;
  /** NMI disabled through bit 7 of the index port. */
  nmiDisabled = false;
  /** Called when the guest changes the NMI mask bit. */
  onNmiMask: (disabled: boolean) => void = () => {};

  // Time: while updating, seconds = base + whole seconds since `origin` (32 kHz ticks).
  private origin = 0;
  private base: number;
  private held = 0;
  private dowOffset = 0;
  private flags = 0;
  /** Time-base tick up to which flags are accounted. */
  private flagsTick = 0;
  private asserted = false;
  private event: TimerHandle | undefined;
  private lastTick = 0;

  constructor(
    private readonly clock: Clock,
    private readonly irq: (level: boolean) => void,
    opts: RtcOptions,
  ) {
    this.base = opts.startTime ?? RTC_START_TIME;
    const c = this.cmos;
    c[RTC_REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
    c[RTC_REG_B] = REG_B_24H; // BCD, 24-hour, no interrupts
    c[RTC_REG_D] = 0x80;
    const kib = 1024,
      mib = 1024 * 1024;
    const low = Math.min(opts.ramBytes, LOW_RAM_LIMIT);
    const high = opts.ramBytes - low;
    const base = Math.min(low / kib, 640);
    const ext = Math.min(low > mib ? Math.floor((low - mib) / kib) : 0, 0xffff);
    const above16 = Math.min(low > 16 * mib ? Math.floor((low - 16 * mib) / (64 * kib)) : 0, 0xffff);
    const above4g = Math.floor(high / (64 * kib));
    c[0x14] = 0x02; // equipment: math coprocessor present
    c[0x15] = base & 0xff;
    c[0x16] = base >>> 8;
    c[0x17] = c[0x30] = ext & 0xff;
    c[0x18] = c[0x31] = ext >>> 8;
    c[0x34] = above16 & 0xff;
    c[0x35] = above16 >>> 8;
    c[0x5b] = above4g & 0xff;
    c[0x5c] = (above4g >>> 8) & 0xff;
    c[0x5d] = (above4g >>> 16) & 0xff;
    c[0x5f] = Math.max(0, (opts.cpus ?? 1) - 1);
    c[RTC_CENTURY_INDEX] = bcd2(Math.floor(new Date(this.base * 1000).getUTCFullYear() / 100));
    let sum = 0;
    for (let i = 0x10; i <= 0x2d; i++) sum += c[i];
    c[0x2e] = sum >>> 8;
    c[0x2f] = sum & 0xff;
  }

  private tick(): number {
    const t = this.rate.ticksAt(this.clock.now());
    if (t > this.lastTick) this.lastTick = t;
    return this.lastTick;
  }

  private get dividerRunning(): boolean {
    return (this.cmos[RTC_REG_A] & 0x60) !== 0x60;
  }
  /** Updates happen: the divider runs and SET is clear. */
  private get updating(): boolean {
    return this.dividerRunning && !(this.cmos[RTC_REG_B] & REG_B_SET);
  }
  private get binary(): boolean {
    return (this.cmos[RTC_REG_B] & REG_B_DM_BINARY) !== 0;
  }
  private get h24(): boolean {
    return (this.cmos[RTC_REG_B] & REG_B_24H) !== 0;
  }
  /** Periodic interrupt period in time-base ticks, or 0 when off. */
  private get periodTicks(): number {
    const rs = this.cmos[RTC_REG_A] & 0xf;
    if (rs === 0 || !this.dividerRunning) return 0;
    return rs === 1 ? 128 : rs === 2 ? 256 : 1 << (rs - 1);
  }

  /** Seconds since the Unix epoch shown at time-base tick t. */
  private secondsAt(t: number): number {
    return this.updating ? this.base + Math.floor((t - this.origin) / TIME_BASE_HZ) : this.held;
  }
  /** Current time, in seconds since the Unix epoch. */
  seconds(): number {
    return this.secondsAt(this.tick());
  }
  private setSeconds(s: number, t: number): void {
    if (this.updating) this.base = s - Math.floor((t - this.origin) / TIME_BASE_HZ);
    else this.held = s;
  }
  /** Stop (or restart) counting seconds without losing the time or the divider phase. */
  private freeze(t: number): void {
    this.held = this.secondsAt(t);
  }
  private thaw(t: number): void {
    this.base = this.held - Math.floor((t - this.origin) / TIME_BASE_HZ);
  }

  private encode(v: number): number {
    return this.binary ? v : bcd2(v);
  }
  private decode(v: number): number {
    return this.binary ? v : unbcd2(v);
  }
  private encodeHour(h: number): number {
    if (this.h24) return this.encode(h);
    return this.encode(h % 12 || 12) | (h >= 12 ? 0x80 : 0);
  }
  /** Hour 0-23 from a register byte, or NaN when out of range. */
  private decodeHour(v: number): number {
    if (this.h24) return this.decode(v);
    const h = this.decode(v & 0x7f);
    if (h < 1 || h > 12) return NaN;
    return (h % 12) + (v & 0x80 ? 12 : 0);
  }
  private alarmField(reg: number, hour: boolean): number | null {
    const v = this.cmos[reg];
    if ((v & 0xc0) === 0xc0) return null;
    return hour ? this.decodeHour(v) : this.decode(v);
  }

  /** The first second after `after` at which the alarm matches, or Infinity. */
  private nextAlarm(after: number): number {
    const sec = this.alarmField(RTC_SECONDS_ALARM, false);
    const min = this.alarmField(RTC_MINUTES_ALARM, false);
    const hour = this.alarmField(RTC_HOURS_ALARM, true);
    const range = (v: number | null, n: number): number[] =>
      v === null ? Array.from({ length: n }, (_, i) => i) : Number.isInteger(v) && v >= 0 && v < n ? [v] : [];
    const hs = range(hour, 24),
      ms = range(min, 60),
      ss = range(sec, 60);
    const day0 = Math.floor(after / DAY) * DAY;
    for (let d = day0; d <= day0 + DAY; d += DAY)
      for (const h of hs) {
        if (d + h * 3600 + 3599 <= after) continue;
        for (const m of ms) {
          if (d + h * 3600 + m * 60 + 59 <= after) continue;
          for (const s of ss) {
            const c = d + h * 3600 + m * 60 + s;
            if (c > after) return c;
          }
        }
      }
    return Infinity;
  }

  /** Set PF/UF/AF for everything that happened in (flagsTick, t]. */
  private account(t: number): void {
    const from = this.flagsTick;
    if (t <= from) return;
    this.flagsTick = t;
    const period = this.periodTicks;
    if (period && Math.floor((t - this.origin) / period) > Math.floor((from - this.origin) / period))
      this.flags |= REG_C_PF;
    if (!this.updating) return;
    const s0 = this.secondsAt(from),
      s1 = this.secondsAt(t);
    if (s1 > s0) {
      this.flags |= REG_C_UF;
      if (this.nextAlarm(s0) <= s1) this.flags |= REG_C_AF;
    }
  }

  private irqf(): boolean {
    const b = this.cmos[RTC_REG_B];
    return (this.flags & b & (REG_C_PF | REG_C_AF | REG_C_UF)) !== 0;
  }

  private updateIrq(): void {
    const level = this.irqf();
    if (level !== this.asserted) {
      this.asserted = level;
      this.irq(level);
    }
    this.schedule();
  }

  /** Schedule an event for the next flag that would raise IRQ8 (none while it is raised). */
  private schedule(): void {
    this.clock.cancel(this.event);
    this.event = undefined;
    if (this.asserted) return;
    const t = this.flagsTick;
    const b = this.cmos[RTC_REG_B];
    let next = Infinity;
    const period = this.periodTicks;
    if (b & REG_B_PIE && period) next = this.origin + (Math.floor((t - this.origin) / period) + 1) * period;
    if (this.updating && b & (REG_B_UIE | REG_B_AIE)) {
      const boundaryOf = (s: number): number => this.origin + (s - this.base) * TIME_BASE_HZ;
      const now = this.secondsAt(t);
      if (b & REG_B_UIE) next = Math.min(next, boundaryOf(now + 1));
      if (b & REG_B_AIE) {
        const a = this.nextAlarm(now);
        if (a !== Infinity) next = Math.min(next, boundaryOf(a));
      }
    }
    if (next === Infinity) return;
    this.event = this.clock.schedule(this.rate.cycleOf(next), () => {
      this.event = undefined;
      if (next > this.lastTick) this.lastTick = next;
      this.account(this.lastTick);
      this.updateIrq();
    });
  }

  private readRegister(reg: number): number {
    const t = this.tick();
    const s = this.secondsAt(t);
    const d = new Date(s * 1000);
    switch (reg) {
      case RTC_SECONDS:
        return this.encode(d.getUTCSeconds());
      case RTC_MINUTES:
        return this.encode(d.getUTCMinutes());
      case RTC_HOURS:
        return this.encodeHour(d.getUTCHours());
      case RTC_DAY_OF_WEEK:
        return this.encode(((d.getUTCDay() + this.dowOffset) % 7) + 1);
      case RTC_DAY_OF_MONTH:
        return this.encode(d.getUTCDate());
      case RTC_MONTH:
        return this.encode(d.getUTCMonth() + 1);
      case RTC_YEAR:
        return this.encode(d.getUTCFullYear() % 100);
      case RTC_REG_A: {
        const uip = this.updating && (t - this.origin) % TIME_BASE_HZ >= TIME_BASE_HZ - UIP_TICKS;
        return (this.cmos[RTC_REG_A] & 0x7f) | (uip ? REG_A_UIP : 0);
      }
      case RTC_REG_C: {
        this.account(t);
        const v = this.flags | (this.irqf() ? REG_C_IRQF : 0);
        this.flags = 0;
        this.updateIrq();
        return v;
      }
      case RTC_REG_D:
        return 0x80;
      default:
        return this.cmos[reg];
    }
  }

  private writeTime(reg: number, v: number, t: number): void {
    const d = new Date(this.secondsAt(t) * 1000);
    let [year, month, day, h, m, s] = [
      d.getUTCFullYear(),
      d.getUTCMonth(),
      d.getUTCDate(),
      d.getUTCHours(),
      d.getUTCMinutes(),
      d.getUTCSeconds(),
    ];
    switch (reg) {
      case RTC_SECONDS:
        s = this.decode(v);
        break;
      case RTC_MINUTES:
        m = this.decode(v);
        break;
      case RTC_HOURS: {
        const hv = this.decodeHour(v);
        if (Number.isNaN(hv)) return;
        h = hv;
        break;
      }
      case RTC_DAY_OF_WEEK:
        this.dowOffset = (((this.decode(v) - 1 - d.getUTCDay()) % 7) + 7) % 7;
        return;
      case RTC_DAY_OF_MONTH:
        day = this.decode(v);
        break;
      case RTC_MONTH:
        month = this.decode(v) - 1;
        break;
      default:
        year = Math.floor(year / 100) * 100 + this.decode(v);
    }
    const ns = Date.UTC(year, month, day, h, m, s) / 1000;
    if (Number.isFinite(ns)) this.setSeconds(ns, t);
  }

  private writeRegister(reg: number, v: number): void {
    const t = this.tick();
    this.account(t);
    switch (reg) {
      case RTC_SECONDS:
      case RTC_MINUTES:
      case RTC_HOURS:
      case RTC_DAY_OF_WEEK:
      case RTC_DAY_OF_MONTH:
      case RTC_MONTH:
      case RTC_YEAR:
        this.writeTime(reg, v, t);
        break;
      case RTC_REG_A: {
        const wasRunning = this.dividerRunning,
          wasUpdating = this.updating;
        if (wasUpdating) this.freeze(t);
        this.cmos[RTC_REG_A] = v & 0x7f;
        if (!wasRunning && this.dividerRunning) this.origin = t - TIME_BASE_HZ / 2; // first update in 500 ms
        if (this.updating) this.thaw(t);
        break;
      }
      case RTC_REG_B: {
        const wasUpdating = this.updating;
        if (wasUpdating) this.freeze(t);
        this.cmos[RTC_REG_B] = v & REG_B_SET ? v & ~REG_B_UIE : v;
        if (this.updating) this.thaw(t);
        break;
      }
      case RTC_REG_C:
      case RTC_REG_D:
        return; // read-only
      default:
        this.cmos[reg] = v;
    }
    this.updateIrq();
  }

  portIn(offset: number, _size: IoSize): number {
    if (offset === 0) return 0xff; // the index register is write-only
    return this.readRegister(this.index);
  }

  portOut(offset: number, _size: IoSize, value: number): void {
    if (offset === 0) {
      this.index = value & 0x7f;
      const disabled = (value & 0x80) !== 0;
      if (disabled !== this.nmiDisabled) {
        this.nmiDisabled = disabled;
        this.onNmiMask(disabled);
      }
      return;
    }
    this.writeRegister(this.index, value & 0xff);
  }
}
