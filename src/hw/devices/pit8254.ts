/**
 * Intel 8254 programmable interval timer (Intel 8254 datasheet, order 231164),
 * at ports 0x40-0x43: counters 0-2 at offsets 0-2, the control word register at
 * offset 3. The input clock is the PC's 1.193182 MHz.
 *
 * Time: nothing ticks. Each counter remembers the clock pulse (`origin`) at which
 * its counting element (CE) was loaded and the count in effect; CE and OUT at any
 * later pulse are pure functions of the number of pulses since, and pulses are
 * derived exactly from simulated cycles (tick-rate.ts). A counter with an OUT
 * listener (counter 0 → IRQ0) schedules a clock event at the exact cycle of each
 * OUT transition, so periodic modes never drift.
 *
 * Datasheet behaviour modelled:
 * - Control word: counter select, access (latch / LSB / MSB / LSB then MSB),
 *   mode (0-5; x10 and x11 mean 2 and 3), BCD. Writing it stops the counter,
 *   sets Null Count and puts OUT in the mode's initial state (low for mode 0,
 *   high otherwise).
 * - Counter latch command, read-back command (latch count and/or status of
 *   several counters; a second latch before the read is ignored; status is read
 *   before the count).
 * - A count is loaded into CE on the pulse after it is written (that pulse does
 *   not decrement), so mode 0 raises OUT N+1 pulses after the write.
 *   Mode 0: writing the first byte of a two-byte count stops counting and drops
 *   OUT; a new count restarts. Modes 2/3: a new count written while counting
 *   takes effect at the end of the current period (mode 2) or half-cycle (mode
 *   3). Mode 4: a new count is loaded on the next pulse. Modes 1/5 load on a gate
 *   trigger.
 * - Gate: modes 0/4 suspend counting while low; modes 2/3 stop and force OUT
 *   high while low and reload on the rising edge; modes 1/5 are (re)triggered by
 *   the rising edge. Counters 0 and 1 have their gates tied high on a PC; counter
 *   2's gate is port 0x61 bit 0 (`setGate2`), its OUT is port 0x61 bit 5 (`out2`).
 * - Mode 3 odd counts: OUT high for (N+1)/2 pulses and low for (N-1)/2, CE counts
 *   down by two from N-1. Counts of 1 in modes 2 and 3 (illegal per the
 *   datasheet) behave as 2.
 * - BCD counting: CE counts down modulo 10000 and reads back in BCD; a BCD count
 *   with digits above 9 is taken at face value.
 *
 * Initial state: by default the counters are as QEMU + SeaBIOS leave them for a
 * `-kernel` boot: counter 0 in mode 2 with count 65536 (18.2 Hz), counters 1 and
 * 2 in mode 3 with count 65536 (counter 2 waits for its gate). `{ initial:
 * 'unprogrammed' }` leaves all three stopped in mode 0 awaiting a count.
 */
import type { IoSize, PortDevice } from '../bus.js';
import type { Clock, TimerHandle } from '../events-queue.js';
import { TickRate } from './tick-rate.js';

export const PIT_PORT = 0x40;
export const PIT_PORT_COUNT = 4;
export const PIT_HZ = 1_193_182;

const ACCESS_LATCH = 0;
const ACCESS_LSB = 1;
const ACCESS_MSB = 2;
const ACCESS_WORD = 3;

function toBcd(v: number): number {
  return (
    (v % 10) |
    ((Math.floor(v / 10) % 10) << 4) |
    ((Math.floor(v / 100) % 10) << 8) |
    ((Math.floor(v / 1000) % 10) << 12)
  );
}
function fromBcd(v: number): number {
  return ((v >> 12) & 0xf) * 1000 + ((v >> 8) & 0xf) * 100 + ((v >> 4) & 0xf) * 10 + (v & 0xf);
}

/** A pending count for modes 2/3: from pulse `at` on, the counter runs with `period` from `origin`. */
interface PendingLoad {
  at: number;
  origin: number;
  period: number;
}

export interface PitOptions {
  /** 'bios' (default): as SeaBIOS leaves it; 'unprogrammed': every counter stopped. */
  initial?: 'bios' | 'unprogrammed';
}

class Counter {
  /** Mode field as programmed (bits 3:1 of the control word), for the read-back status. */
  modeBits = 0;
  mode = 0;
  access = ACCESS_WORD;
  bcd = false;
  gate: boolean;
  /** A count has been written since the last control word. */
  armed = false;
  /** Count register as written (raw 16 bits). */
  cr = 0;
  private writeHigh = false;
  private crLow = 0;
  private readHigh = false;
  private latched: number | undefined;
  private latchHigh = false;
  private status: number | undefined;

  // Counting state: while running, progress p = t - origin pulses since CE was loaded.
  private running = false;
  private origin = 0;
  private period = 0x10000;
  /** CE and OUT before the load pulse, or while stopped. */
  private heldCe = 0;
  private heldOut = true;
  /** Modes 0/4 suspended by the gate: the progress to resume from. */
  private resumeP: number | undefined;
  private pending: PendingLoad | undefined;
  /** Pulse at which the count register reaches CE (Null Count until then). */
  private loadTick = Infinity;

  event: TimerHandle | undefined;
  reported = false;

  constructor(
    readonly index: number,
    readonly onOut: ((level: boolean) => void) | undefined,
  ) {
    this.gate = index !== 2;
  }

  private get modulus(): number {
    return this.bcd ? 10000 : 0x10000;
  }
  private countValue(): number {
    const n = this.bcd ? fromBcd(this.cr) % 10000 : this.cr;
    return n === 0 ? this.modulus : n;
  }
  private periodic(): boolean {
    return this.mode === 2 || this.mode === 3;
  }

  /** Apply a mode 2/3 reload that has come due by pulse t. */
  sync(t: number): void {
    const p = this.pending;
    if (p && t >= p.at) {
      this.origin = p.origin;
      this.period = p.period;
      this.pending = undefined;
    }
  }

  private ceAt(p: number): number {
    const n = this.period,
      m = this.modulus;
    switch (this.mode) {
      case 2:
        return (n - (p % n)) % m;
      case 3: {
        const k = p % n,
          h = Math.ceil(n / 2);
        const base = n & 1 ? n - 1 : n;
        return (k < h ? base - 2 * k : base - 2 * (k - h)) % m;
      }
      default:
        return (((n - p) % m) + m) % m;
    }
  }
  private outAt(p: number): boolean {
    const n = this.period;
    switch (this.mode) {
      case 0:
      case 1:
        return p >= n;
      case 2:
        return p % n !== n - 1;
      case 3:
        return p % n < Math.ceil(n / 2);
      default:
        return p !== n;
    }
  }
  /** The first progress after p where OUT changes, or Infinity. */
  private nextChange(p: number): number {
    const n = this.period;
    switch (this.mode) {
      case 0:
      case 1:
        return p < n ? n : Infinity;
      case 2: {
        const k = p % n;
        return k < n - 1 ? p - k + n - 1 : p - k + n;
      }
      case 3: {
        const k = p % n,
          h = Math.ceil(n / 2);
        return k < h ? p - k + h : p - k + n;
      }
      default:
        return p < n ? n : p === n ? n + 1 : Infinity;
    }
  }

  ce(t: number): number {
    if (!this.running || t < this.origin) return this.heldCe;
    return this.ceAt(t - this.origin);
  }
  out(t: number): boolean {
    if (!this.running || t < this.origin) return this.heldOut;
    return this.outAt(t - this.origin);
  }
  nullCount(t: number): boolean {
    return t < this.loadTick;
  }

  /** The first pulse after t at which OUT may change (a pending reload counts), or Infinity. */
  nextEventTick(t: number): number {
    if (!this.running) return Infinity;
    let next: number;
    if (t < this.origin)
      next = this.outAt(0) !== this.heldOut ? this.origin : this.origin + this.nextChange(0);
    else next = this.origin + this.nextChange(t - this.origin);
    if (this.pending && this.pending.at < next) next = this.pending.at;
    return next;
  }

  /** Start counting `period` pulses, CE loaded at pulse `origin`. */
  private start(origin: number, period: number, t: number, loadTick = origin): void {
    this.heldCe = this.ce(t);
    this.heldOut = this.out(t);
    this.running = true;
    this.origin = origin;
    this.period = period;
    this.pending = undefined;
    this.resumeP = undefined;
    this.loadTick = loadTick;
  }
  private stop(t: number, out: boolean): void {
    this.heldCe = this.ce(t);
    this.heldOut = out;
    this.running = false;
    this.pending = undefined;
  }

  control(mode: number, access: number, bcd: boolean, t: number): void {
    this.sync(t);
    this.stop(t, true); // CE keeps its value; the new mode sets OUT below
    this.modeBits = mode;
    this.mode = mode > 5 ? mode & 3 : mode;
    this.access = access;
    this.bcd = bcd;
    this.armed = false;
    this.writeHigh = this.readHigh = this.latchHigh = false;
    this.latched = undefined;
    this.heldOut = this.mode !== 0;
    this.resumeP = undefined;
    this.loadTick = Infinity;
  }

  /** A count byte written to the counter's port. */
  writeByte(b: number, t: number): void {
    this.sync(t);
    if (this.access === ACCESS_LSB) this.cr = b;
    else if (this.access === ACCESS_MSB) this.cr = b << 8;
    else if (!this.writeHigh) {
      this.crLow = b;
      this.writeHigh = true;
      if (this.mode === 0) {
        // Mode 0: the first byte disables counting and drops OUT at once.
        this.stop(t, false);
        this.resumeP = undefined;
      }
      return;
    } else {
      this.cr = this.crLow | (b << 8);
      this.writeHigh = false;
    }
    this.loadCount(t);
  }

  private loadCount(t: number): void {
    const n = this.countValue();
    const first = !this.armed;
    this.armed = true;
    switch (this.mode) {
      case 0:
      case 4:
        if (this.gate) {
          this.start(t + 1, n, t);
          this.heldOut = this.mode === 4; // OUT before the load pulse
        } else {
          this.stop(t, this.mode === 4);
          this.heldCe = n % this.modulus;
          this.period = n;
          this.resumeP = 0;
          this.loadTick = t + 1;
        }
        return;
      case 1:
      case 5:
        this.loadTick = Infinity; // loaded by the next gate trigger
        return;
      default: {
        if (!this.gate) return; // loaded by the gate's rising edge
        if (first || !this.running) {
          this.start(t + 1, Math.max(n, 2), t);
          this.heldOut = true;
          return;
        }
        // Counting: the new count waits for the end of the period (mode 2) or half-cycle (mode 3).
        const p = t - this.origin;
        const period = Math.max(n, 2);
        if (p < 0) {
          this.start(this.origin, period, t);
          return;
        }
        const old = this.period,
          k = p % old,
          h = Math.ceil(old / 2);
        let at: number, origin: number;
        if (this.mode === 3 && k < h) {
          at = this.origin + p - k + h; // start of the low half-cycle
          origin = at - Math.ceil(period / 2);
        } else {
          at = this.origin + p - k + old;
          origin = at;
        }
        this.pending = { at, origin, period };
        this.loadTick = at;
      }
    }
  }

  setGate(level: boolean, t: number): void {
    this.sync(t);
    const was = this.gate;
    this.gate = level;
    if (was === level) return;
    if (level) {
      switch (this.mode) {
        case 0:
        case 4:
          if (this.resumeP !== undefined) {
            // CE was (or will be) loaded at loadTick; counting resumes on the next pulse.
            this.start(Math.max(t - this.resumeP, this.loadTick), this.period, t, this.loadTick);
          }
          return;
        default:
          if (!this.armed) return;
          // Modes 1/5 trigger, modes 2/3 reload: the count is loaded on the next pulse.
          this.start(t + 1, this.periodic() ? Math.max(this.countValue(), 2) : this.countValue(), t);
          return;
      }
    }
    switch (this.mode) {
      case 0:
      case 4:
        if (this.running) {
          const beforeLoad = t < this.origin;
          const p = beforeLoad ? 0 : t - this.origin;
          this.stop(t, this.out(t));
          if (beforeLoad) this.heldCe = this.period % this.modulus;
          this.resumeP = p;
        }
        return;
      case 2:
      case 3:
        if (this.running) this.stop(t, true);
        this.heldOut = true;
        return;
      default:
        return;
    }
  }

  latchCount(t: number): void {
    if (this.latched !== undefined) return;
    const v = this.ce(t);
    this.latched = this.bcd ? toBcd(v) : v;
    this.latchHigh = false;
  }
  latchStatus(t: number): void {
    if (this.status !== undefined) return;
    this.status =
      (this.out(t) ? 0x80 : 0) |
      (this.nullCount(t) ? 0x40 : 0) |
      (this.access << 4) |
      (this.modeBits << 1) |
      (this.bcd ? 1 : 0);
  }

  readByte(t: number): number {
    if (this.status !== undefined) {
      const s = this.status;
      this.status = undefined;
      return s;
    }
    if (this.latched !== undefined) {
      const v = this.latched;
      if (this.access === ACCESS_LSB) {
        this.latched = undefined;
        return v & 0xff;
      }
      if (this.access === ACCESS_MSB) {
        this.latched = undefined;
        return v >>> 8;
      }
      if (!this.latchHigh) {
        this.latchHigh = true;
        return v & 0xff;
      }
      this.latched = undefined;
      this.latchHigh = false;
      return v >>> 8;
    }
    this.sync(t);
    const ce = this.ce(t);
    const v = this.bcd ? toBcd(ce) : ce;
    if (this.access === ACCESS_LSB) return v & 0xff;
    if (this.access === ACCESS_MSB) return v >>> 8;
    this.readHigh = !this.readHigh;
    return this.readHigh ? v & 0xff : v >>> 8;
  }

  /** The SeaBIOS state: `mode` with count 65536, loaded at pulse 0 (if the gate is high). */
  biosInit(mode: number): void {
    this.control(mode, ACCESS_WORD, false, 0);
    this.cr = 0;
    this.armed = true;
    if (this.gate) this.start(0, 0x10000, 0);
    this.heldOut = true;
  }
}

export class Pit8254 implements PortDevice {
  readonly name = 'pit8254';
  readonly rate = new TickRate(PIT_HZ);
  private readonly counters: Counter[];
  /** Pulses never go backwards, even if CPUs report slightly different times. */
  private lastTick = 0;

  /** `irq0` receives counter 0's OUT level on every change (the machine wires it to IRQ0 and GSI2). */
  constructor(
    private readonly clock: Clock,
    irq0: (level: boolean) => void,
    opts: PitOptions = {},
  ) {
    this.counters = [new Counter(0, irq0), new Counter(1, undefined), new Counter(2, undefined)];
    if ((opts.initial ?? 'bios') === 'bios') {
      this.counters[0].biosInit(2);
      this.counters[1].biosInit(3);
      this.counters[2].biosInit(3);
    } else for (const c of this.counters) c.control(0, ACCESS_WORD, false, 0);
    // The line starts where OUT is, so the first edge the machine sees is a real one.
    for (const c of this.counters) c.reported = c.out(0);
    this.schedule(this.counters[0]);
  }

  private tick(): number {
    const t = this.rate.ticksAt(this.clock.now());
    if (t > this.lastTick) this.lastTick = t;
    return this.lastTick;
  }

  /** Counter 2's gate (port 0x61 bit 0). */
  setGate2(level: boolean): void {
    const c = this.counters[2];
    c.setGate(level, this.tick());
    this.changed(c);
  }

  /** Counter 2's OUT (port 0x61 bit 5). */
  out2(): boolean {
    const t = this.tick();
    const c = this.counters[2];
    c.sync(t);
    return c.out(t);
  }

  /** OUT of counter `i` now (for tests and debugging). */
  out(i: number): boolean {
    const t = this.tick();
    this.counters[i].sync(t);
    return this.counters[i].out(t);
  }

  private changed(c: Counter): void {
    if (!c.onOut) return;
    this.report(c, this.lastTick);
    this.schedule(c);
  }
  private report(c: Counter, t: number): void {
    const level = c.out(t);
    if (level !== c.reported) {
      c.reported = level;
      c.onOut!(level);
    }
  }
  private schedule(c: Counter): void {
    this.clock.cancel(c.event);
    c.event = undefined;
    if (!c.onOut) return;
    const next = c.nextEventTick(this.lastTick);
    if (next === Infinity) return;
    c.event = this.clock.schedule(this.rate.cycleOf(next), () => {
      c.event = undefined;
      if (next > this.lastTick) this.lastTick = next;
      c.sync(this.lastTick);
      this.report(c, this.lastTick);
      this.schedule(c);
    });
  }

  private readPort(offset: number): number {
    if (offset === 3) return 0xff; // the control word register is write-only
    return this.counters[offset].readByte(this.tick());
  }

  private writePort(offset: number, v: number): void {
    const t = this.tick();
    if (offset < 3) {
      const c = this.counters[offset];
      c.writeByte(v & 0xff, t);
      this.changed(c);
      return;
    }
    const sel = v >>> 6;
    if (sel === 3) {
      // Read-back: bit 5 clear = latch count, bit 4 clear = latch status, bits 3:1 select counters.
      for (let i = 0; i < 3; i++) {
        if (!(v & (2 << i))) continue;
        const c = this.counters[i];
        c.sync(t);
        if (!(v & 0x20)) c.latchCount(t);
        if (!(v & 0x10)) c.latchStatus(t);
      }
      return;
    }
    const c = this.counters[sel];
    c.sync(t);
    const access = (v >>> 4) & 3;
    if (access === ACCESS_LATCH) {
      c.latchCount(t);
      return;
    }
    c.control((v >>> 1) & 7, access, (v & 1) !== 0, t);
    this.changed(c);
  }

  portIn(offset: number, size: IoSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= (offset + i < 4 ? this.readPort(offset + i) : 0xff) << (8 * i);
    return size === 4 ? v | 0 : v;
  }

  portOut(offset: number, size: IoSize, value: number): void {
    for (let i = 0; i < size && offset + i < 4; i++) this.writePort(offset + i, (value >>> (8 * i)) & 0xff);
  }
}
