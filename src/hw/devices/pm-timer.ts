/**
 * ACPI fixed-hardware power management registers (ACPI 6.5 §4.8), laid out like
 * QEMU's PIIX4 PM function as SeaBIOS programs it (PM base 0x600):
 *
 *   0x600 PM1a_STS  (16 bits, write 1 to clear)   PM1a_EVT_BLK, length 4
 *   0x602 PM1a_EN   (16 bits)
 *   0x604 PM1a_CNT  (16 bits)                      PM1a_CNT_BLK, length 2
 *   0x608 PM_TMR    (32-bit read, 24 bits valid)   PM_TMR_BLK, length 4
 *
 * The PM timer counts at 3.579545 MHz, derived exactly from simulated cycles
 * (tick-rate.ts); it is 24 bits wide (FADT TMR_VAL_EXT = 0), as on the PIIX4.
 * TMR_STS is set whenever bit 23 of the counter changes, and raises the SCI when
 * TMR_EN is set. The machine is always in ACPI mode: SCI_EN reads 1 and the FADT
 * has no SMI command port. Writing SLP_EN reports SLP_TYP through `onSleep`;
 * our DSDT's \_S5 uses SLP_TYP 0 (QEMU's PIIX4 value), so `outw(0x604, 0x2000)`
 * means soft-off as on QEMU. Fixed power and sleep buttons are absent (FADT
 * flags), but their status bits can be set through `setStatus` for tests.
 */
import type { IoSize, PortDevice } from '../bus.js';
import type { Clock, TimerHandle } from '../events-queue.js';
import { TickRate } from './tick-rate.js';

export const ACPI_PM_BASE = 0x600;
export const ACPI_PM_PORT_COUNT = 12;
export const PM1_EVT_OFFSET = 0;
export const PM1_EVT_LEN = 4;
export const PM1_CNT_OFFSET = 4;
export const PM1_CNT_LEN = 2;
export const PM_TMR_OFFSET = 8;
export const PM_TMR_LEN = 4;
export const PM_TIMER_PORT = ACPI_PM_BASE + PM_TMR_OFFSET;
export const PM_TIMER_HZ = 3_579_545;
/** The SCI is ISA IRQ 9, level-triggered active high (MADT interrupt source override). */
export const ACPI_SCI_IRQ = 9;
/** SLP_TYP value of \_S5 in our DSDT. */
export const SLP_TYP_S5 = 0;

export const PM1_TMR_STS = 1 << 0;
export const PM1_BM_STS = 1 << 4;
export const PM1_GBL_STS = 1 << 5;
export const PM1_PWRBTN_STS = 1 << 8;
export const PM1_SLPBTN_STS = 1 << 9;
export const PM1_RTC_STS = 1 << 10;
export const PM1_WAK_STS = 1 << 15;
const PM1_STS_MASK = 0x8731;
const PM1_EN_MASK = 0x0721;

export const PM1_CNT_SCI_EN = 1 << 0;
export const PM1_CNT_SLP_EN = 1 << 13;
const PM1_CNT_RW = 0x1c02; // BM_RLD and SLP_TYP; GBL_RLS and SLP_EN are write-only

const TMR_BIT = 2 ** 23;

/** The free-running 24-bit ACPI PM timer. */
export class PmTimer implements PortDevice {
  readonly name = 'acpi-pm-timer';
  readonly rate = new TickRate(PM_TIMER_HZ);
  private lastTick = 0;

  constructor(private readonly clock: Clock) {}

  /** Whole timer ticks since time 0 (not wrapped). */
  ticks(): number {
    const t = this.rate.ticksAt(this.clock.now());
    if (t > this.lastTick) this.lastTick = t;
    return this.lastTick;
  }

  /** The counter as software reads it. */
  value(): number {
    return this.ticks() % 0x1000000;
  }

  portIn(offset: number, size: IoSize): number {
    const v = Math.floor(this.value() / 2 ** (8 * offset));
    return size === 4 ? v | 0 : v & (size === 1 ? 0xff : 0xffff);
  }

  portOut(_offset: number, _size: IoSize, _value: number): void {}
}

export interface AcpiPmOptions {
  /** The SCI line level (the machine wires it to IRQ 9 / GSI 9). */
  sci?: (level: boolean) => void;
  /** SLP_EN written with this SLP_TYP (SLP_TYP_S5 = soft off). */
  onSleep?: (slpTyp: number) => void;
}

/** PM1a event and control blocks plus the PM timer, registered at ACPI_PM_BASE for ACPI_PM_PORT_COUNT ports. */
export class AcpiPm implements PortDevice {
  readonly name = 'acpi-pm';
  readonly timer: PmTimer;
  private status = 0;
  private enable = 0;
  private control = PM1_CNT_SCI_EN;
  /** The timer's bit-23 epoch when TMR_STS was last cleared. */
  private tmrEpoch = 0;
  private sciLevel = false;
  private event: TimerHandle | undefined;
  private readonly sci: (level: boolean) => void;
  private readonly onSleep: (slpTyp: number) => void;

  constructor(
    private readonly clock: Clock,
    opts: AcpiPmOptions = {},
  ) {
    this.timer = new PmTimer(clock);
    this.sci = opts.sci ?? (() => {});
    this.onSleep = opts.onSleep ?? (() => {});
  }

  /** PM1_STS as software reads it. */
  pm1Status(): number {
    const epoch = Math.floor(this.timer.ticks() / TMR_BIT);
    return this.status | (epoch > this.tmrEpoch ? PM1_TMR_STS : 0);
  }

  /** Set status bits from outside (a power button press, RTC alarm wake, ...). */
  setStatus(bits: number): void {
    this.status |= bits & PM1_STS_MASK & ~PM1_TMR_STS;
    this.update();
  }

  get sleepType(): number {
    return (this.control >>> 10) & 7;
  }

  private update(): void {
    const level = (this.pm1Status() & this.enable) !== 0;
    if (level !== this.sciLevel) {
      this.sciLevel = level;
      this.sci(level);
    }
    this.clock.cancel(this.event);
    this.event = undefined;
    if (!level && this.enable & PM1_TMR_STS) {
      // TMR_STS sets when bit 23 next changes.
      const next = (this.tmrEpoch + 1) * TMR_BIT;
      this.event = this.clock.schedule(this.timer.rate.cycleOf(next), () => {
        this.event = undefined;
        this.update();
      });
    }
  }

  private read16(reg: number): number {
    if (reg === 0) return this.pm1Status();
    if (reg === 2) return this.enable;
    if (reg === 4) return this.control;
    return 0xffff;
  }

  private write16(reg: number, value: number, bytes: number): void {
    if (reg === 0) {
      const clear = value & bytes & PM1_STS_MASK;
      this.status &= ~clear;
      if (clear & PM1_TMR_STS) this.tmrEpoch = Math.floor(this.timer.ticks() / TMR_BIT);
    } else if (reg === 2) {
      this.enable = (this.enable & ~bytes) | (value & bytes & PM1_EN_MASK);
    } else if (reg === 4) {
      this.control = (this.control & ~(bytes & PM1_CNT_RW)) | (value & bytes & PM1_CNT_RW) | PM1_CNT_SCI_EN;
      if (value & bytes & PM1_CNT_SLP_EN) {
        this.status |= PM1_WAK_STS;
        this.onSleep(this.sleepType);
      }
    }
    this.update();
  }

  portIn(offset: number, size: IoSize): number {
    if (offset >= PM_TMR_OFFSET) return this.timer.portIn(offset - PM_TMR_OFFSET, size);
    let v = 0;
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      const b = o < PM_TMR_OFFSET ? (this.read16(o & ~1) >>> (8 * (o & 1))) & 0xff : 0xff;
      v |= b << (8 * i);
    }
    return size === 4 ? v | 0 : v;
  }

  portOut(offset: number, size: IoSize, value: number): void {
    for (let reg = 0; reg < PM_TMR_OFFSET; reg += 2) {
      let bytes = 0,
        v = 0;
      for (let i = 0; i < size; i++) {
        const o = offset + i;
        if ((o & ~1) !== reg) continue;
        bytes |= 0xff << (8 * (o & 1));
        v |= ((value >>> (8 * i)) & 0xff) << (8 * (o & 1));
      }
      if (bytes) this.write16(reg, v, bytes);
    }
  }
}
