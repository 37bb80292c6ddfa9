/**
 * The I/O APIC (Intel 82093AA datasheet; version 0x20 as in the ICH/PCH, which adds the
 * directed-EOI register at offset 0x40). Memory-mapped at 0xFEC00000: IOREGSEL at 0x00
 * selects a register, IOWIN at 0x10 reads or writes it. 24 inputs (GSIs), each with a
 * 64-bit redirection entry that turns the pin into an ApicMessage for the local APICs.
 *
 * Edge-triggered pins deliver on a rising edge; an edge on a masked pin is lost (datasheet
 * §3.2.4, "Interrupt Mask"). Level-triggered pins deliver while asserted unless remote IRR
 * is set; remote IRR is set on delivery and cleared by an EOI broadcast of the entry's
 * vector (or a write of the vector to the EOI register), after which a still-asserted
 * line delivers again. Unmasking an asserted level pin delivers. As in QEMU, the polarity
 * bit is stored but `setIrq`'s level means "asserted". Remote IRR applies only to fixed and
 * lowest-priority entries; NMI, SMI, INIT and ExtINT entries behave as edge-triggered.
 * Delivery is instantaneous, so delivery status (bit 12) reads 0.
 */
import type { MmioDevice } from '../bus.js';
import {
  type ApicMessage,
  type DeliveryMode,
  DM_FIXED,
  DM_LOWEST,
  DM_SIPI,
  SH_NONE,
} from './apic-message.js';

export const IOAPIC_DEFAULT_BASE = 0xfec00000;
export const IOAPIC_MMIO_SIZE = 0x1000;
export const IOAPIC_PINS = 24;
/** Version 0x20, maximum redirection entry 23. */
export const IOAPIC_VERSION = ((IOAPIC_PINS - 1) << 16) | 0x20;

export const IOREGSEL = 0x00;
export const IOWIN = 0x10;
export const IOAPIC_EOI = 0x40;

/** Register indices selected through IOREGSEL. */
export const IOAPIC_REG_ID = 0x00;
export const IOAPIC_REG_VERSION = 0x01;
export const IOAPIC_REG_ARB = 0x02;
export const IOAPIC_REG_REDIR = 0x10;

/** Redirection entry low dword bits. */
export const REDIR_DEST_LOGICAL = 1 << 11;
export const REDIR_ACTIVE_LOW = 1 << 13;
export const REDIR_REMOTE_IRR = 1 << 14;
export const REDIR_LEVEL = 1 << 15;
export const REDIR_MASKED = 1 << 16;

/** Writable: vector, delivery mode, destination mode, polarity, trigger, mask. */
const REDIR_LO_WRITABLE = 0x0001afff;
const REDIR_HI_WRITABLE = 0xff000000;

export interface IoApicSnapshot {
  regsel: number;
  id: number;
  lo: number[];
  hi: number[];
  lines: boolean[];
}

export class IoApic implements MmioDevice {
  readonly name = 'ioapic';
  private regsel = 0;
  /** IOAPIC id in bits 27:24 of register 0. */
  private id: number;
  private readonly lo = new Uint32Array(IOAPIC_PINS);
  private readonly hi = new Uint32Array(IOAPIC_PINS);
  private readonly lines: boolean[] = new Array<boolean>(IOAPIC_PINS).fill(false);

  constructor(
    private readonly send: (msg: ApicMessage) => void,
    private readonly initialId = 0,
  ) {
    this.id = initialId & 0xf;
    this.reset();
  }

  /** Power-on state: every entry masked, the rest zero. */
  reset(): void {
    this.regsel = 0;
    this.id = this.initialId & 0xf;
    this.lo.fill(REDIR_MASKED);
    this.hi.fill(0);
  }

  /** Drive global system interrupt `gsi` (0-23) to `level` (asserted or not); others are ignored. */
  setIrq(gsi: number, level: boolean): void {
    if (!(gsi >= 0 && gsi < IOAPIC_PINS)) return;
    const old = this.lines[gsi];
    this.lines[gsi] = level;
    if (this.usesRemoteIrr(gsi)) this.serviceLevel(gsi);
    else if (level && !old && !(this.lo[gsi] & REDIR_MASKED)) this.deliver(gsi);
  }

  /** EOI broadcast from a local APIC (or a write to the EOI register): clear remote IRR for `vector`. */
  eoi(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const e = this.lo[pin];
      if ((e & 0xff) !== (vector & 0xff) || !(e & REDIR_REMOTE_IRR)) continue;
      this.lo[pin] = e & ~REDIR_REMOTE_IRR;
      if (this.usesRemoteIrr(pin)) this.serviceLevel(pin);
    }
  }

  /** Current redirection entry (64 bits as [low, high]), for tests and debugging. */
  entry(pin: number): [number, number] {
    return [this.lo[pin], this.hi[pin]];
  }

  private usesRemoteIrr(pin: number): boolean {
    const e = this.lo[pin];
    const dm = (e >>> 8) & 7;
    return (e & REDIR_LEVEL) !== 0 && (dm === DM_FIXED || dm === DM_LOWEST);
  }

  private serviceLevel(pin: number): void {
    const e = this.lo[pin];
    if (!this.lines[pin] || e & (REDIR_MASKED | REDIR_REMOTE_IRR)) return;
    this.lo[pin] = e | REDIR_REMOTE_IRR;
    this.deliver(pin);
  }

  private deliver(pin: number): void {
    const e = this.lo[pin];
    const dm = (e >>> 8) & 7;
    if (dm === 3 || dm === DM_SIPI) return; // reserved delivery modes
    this.send({
      vector: e & 0xff,
      deliveryMode: dm as DeliveryMode,
      destMode: e & REDIR_DEST_LOGICAL ? 1 : 0,
      dest: this.hi[pin] >>> 24,
      shorthand: SH_NONE,
      level: true,
      trigger: this.usesRemoteIrr(pin) ? 1 : 0,
      source: -1,
    });
  }

  private readReg(r: number): number {
    if (r >= IOAPIC_REG_REDIR && r < IOAPIC_REG_REDIR + 2 * IOAPIC_PINS) {
      const pin = (r - IOAPIC_REG_REDIR) >>> 1;
      return r & 1 ? this.hi[pin] : this.lo[pin];
    }
    switch (r) {
      case IOAPIC_REG_ID:
      case IOAPIC_REG_ARB:
        return (this.id << 24) >>> 0;
      case IOAPIC_REG_VERSION:
        return IOAPIC_VERSION;
    }
    return 0;
  }

  private writeReg(r: number, v: number): void {
    if (r >= IOAPIC_REG_REDIR && r < IOAPIC_REG_REDIR + 2 * IOAPIC_PINS) {
      const pin = (r - IOAPIC_REG_REDIR) >>> 1;
      if (r & 1) {
        this.hi[pin] = (v & REDIR_HI_WRITABLE) >>> 0;
        return;
      }
      this.lo[pin] = (this.lo[pin] & REDIR_REMOTE_IRR) | (v & REDIR_LO_WRITABLE);
      if (this.usesRemoteIrr(pin)) this.serviceLevel(pin);
      else this.lo[pin] &= ~REDIR_REMOTE_IRR;
      return;
    }
    if (r === IOAPIC_REG_ID) this.id = (v >>> 24) & 0xf;
    // version and arbitration are read-only; other indices are unused
  }

  mmioRead(offset: number, size: number): number {
    const dword = offset & ~3;
    let v: number;
    if (dword === IOREGSEL) v = this.regsel;
    else if (dword === IOWIN) v = this.readReg(this.regsel);
    else return 0; // the EOI register is write-only; the rest of the page is unused
    v = v >>> ((offset & 3) * 8);
    return size >= 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
  }

  mmioWrite(offset: number, size: number, value: number): void {
    const dword = offset & ~3;
    if (dword === IOREGSEL) {
      if ((offset & 3) === 0) this.regsel = value & 0xff;
    } else if (dword === IOWIN) {
      // A narrow write replaces only its bytes of the selected register.
      const shift = (offset & 3) * 8;
      const bytes = size >= 4 ? 0xffffffff : ((1 << (size * 8)) - 1) << shift;
      const old = this.readReg(this.regsel);
      this.writeReg(this.regsel, ((old & ~bytes) | ((value << shift) & bytes)) >>> 0);
    } else if (dword === IOAPIC_EOI) {
      if ((offset & 3) === 0) this.eoi(value & 0xff);
    }
  }

  snapshot(): IoApicSnapshot {
    return { regsel: this.regsel, id: this.id, lo: [...this.lo], hi: [...this.hi], lines: [...this.lines] };
  }

  restore(s: IoApicSnapshot): void {
    this.regsel = s.regsel;
    this.id = s.id;
    this.lo.set(s.lo);
    this.hi.set(s.hi);
    for (let k = 0; k < IOAPIC_PINS; k++) this.lines[k] = s.lines[k];
  }
}
