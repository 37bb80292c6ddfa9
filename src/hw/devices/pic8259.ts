/**
 * One Intel 8259A programmable interrupt controller (8259A datasheet, "Programming
 * the 8259A"). A PC has two, master at 0x20 and slave at 0xA0; see pic-pair.ts
 * for the cascade. The device sees offsets 0 (ICW1, OCW2, OCW3; IRR/ISR/poll
 * reads) and 1 (ICW2-4, OCW1 = IMR).
 *
 * Triggering: a line is level-triggered when ICW1.LTIM is set or its ELCR bit is
 * (the PIIX edge/level control register overrides per line); otherwise IRR latches
 * a rising edge and keeps it until acknowledged, even if the line falls again.
 * Only x86 mode is modelled (ICW4.uPM = 1; MCS-80 call vectors are not).
 */
import type { IoSize, PortDevice } from '../bus.js';

const ICW1_IC4 = 0x01;
const ICW1_SNGL = 0x02;
const ICW1_LTIM = 0x08;
const ICW1_INIT = 0x10;
const OCW3_SELECT = 0x08;
const ICW4_AEOI = 0x02;
const ICW4_SFNM = 0x10;

/** Where the initialization sequence stands: which ICW the next write to offset 1 is. */
const enum Init {
  Done,
  Icw2,
  Icw3,
  Icw4,
}

export class Pic8259 implements PortDevice {
  irr = 0;
  isr = 0;
  imr = 0;
  /** Edge/level control (ELCR): 1 = level-triggered. */
  elcr = 0;
  /** Input lines whose ISR bit must not block new requests at their level (SFNM, master only). */
  cascadeInputs = 0;
  private lines = 0;
  private vectorBase = 0;
  private init = Init.Done;
  private needIcw4 = false;
  private single = false;
  private ltim = false;
  private icw3 = 0;
  private autoEoi = false;
  private rotateOnAutoEoi = false;
  private specialFullyNested = false;
  private specialMask = false;
  private readIsr = false;
  private poll = false;
  /** Priority rotation: IR `priorityAdd` has the highest priority, IR `priorityAdd-1` the lowest. */
  private priorityAdd = 0;

  /** `onChange` runs after anything that may change the INT output. */
  constructor(
    readonly name: string,
    private readonly onChange: () => void = () => {},
  ) {}

  /** ICW3 as written: on a master, a bit per input with a slave; on a slave, its id. */
  get cascadeConfig(): number {
    return this.icw3;
  }

  private levelMask(): number {
    return this.ltim ? 0xff : this.elcr;
  }

  /** Priority (0 = highest) of the highest-priority bit of `mask`, or 8 when empty. */
  private priorityOf(mask: number): number {
    for (let p = 0; p < 8; p++) if (mask & (1 << ((p + this.priorityAdd) & 7))) return p;
    return 8;
  }

  /** The IR level the chip would signal now, or -1 when INT is low. */
  pendingIrq(): number {
    const p = this.priorityOf(this.irr & ~this.imr);
    if (p === 8) return -1;
    let inService = this.isr;
    // Special mask mode: masked levels in service do not hold off other levels.
    if (this.specialMask) inService &= ~this.imr;
    // Special fully nested mode: a slave in service may still interrupt with a higher request.
    if (this.specialFullyNested) inService &= ~this.cascadeInputs;
    return p < this.priorityOf(inService) ? (p + this.priorityAdd) & 7 : -1;
  }

  /** The INT output. */
  hasInterrupt(): boolean {
    return this.pendingIrq() >= 0;
  }

  setLine(irq: number, level: boolean): void {
    const bit = 1 << irq;
    if (level) {
      if (!(this.lines & bit) || this.levelMask() & bit) this.irr |= bit;
      this.lines |= bit;
    } else {
      this.lines &= ~bit;
      if (this.levelMask() & bit) this.irr &= ~bit;
    }
    this.onChange();
  }

  setElcr(value: number): void {
    this.elcr = value & 0xff;
    const level = this.levelMask();
    this.irr = (this.irr & ~level) | (this.lines & level);
    this.onChange();
  }

  /**
   * The INTA cycle: returns the IR level being serviced and moves it from IRR to
   * ISR. With nothing pending (the request went away) the chip answers IR7 without
   * setting ISR: the spurious interrupt (datasheet, "Interrupt Sequence").
   */
  acknowledgeLevel(): number {
    const irq = this.pendingIrq();
    if (irq < 0) return 7;
    const bit = 1 << irq;
    // A level-triggered request stays in IRR as long as its line is high.
    if (!(this.levelMask() & bit)) this.irr &= ~bit;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.priorityAdd = (irq + 1) & 7;
    } else this.isr |= bit;
    this.onChange();
    return irq;
  }

  vectorFor(irq: number): number {
    return (this.vectorBase + irq) & 0xff;
  }

  /** INTA for a chip used alone: the vector. */
  acknowledge(): number {
    return this.vectorFor(this.acknowledgeLevel());
  }

  private eoi(irq: number, rotate: boolean): void {
    this.isr &= ~(1 << irq);
    if (rotate) this.priorityAdd = (irq + 1) & 7;
  }

  private writeCommand(v: number): void {
    if (v & ICW1_INIT) {
      // ICW1 resets the edge sense, clears IMR and ISR, IR7 lowest priority, no
      // special mask, IRR selected for reads, and ICW4 functions off.
      this.init = Init.Icw2;
      this.needIcw4 = (v & ICW1_IC4) !== 0;
      this.single = (v & ICW1_SNGL) !== 0;
      this.ltim = (v & ICW1_LTIM) !== 0;
      this.imr = 0;
      this.isr = 0;
      this.irr = this.lines & this.levelMask();
      this.priorityAdd = 0;
      this.specialMask = false;
      this.readIsr = false;
      this.poll = false;
      this.autoEoi = false;
      this.rotateOnAutoEoi = false;
      this.specialFullyNested = false;
    } else if (v & OCW3_SELECT) {
      if (v & 0x40) this.specialMask = (v & 0x20) !== 0; // ESMM/SMM
      if (v & 0x04) this.poll = true;
      if (v & 0x02) this.readIsr = (v & 0x01) !== 0; // RR/RIS
    } else {
      // OCW2: R, SL, EOI in bits 7:5; level L in bits 2:0.
      const level = v & 7;
      switch (v >> 5) {
        case 0: // rotate in automatic EOI mode (clear)
          this.rotateOnAutoEoi = false;
          break;
        case 4: // rotate in automatic EOI mode (set)
          this.rotateOnAutoEoi = true;
          break;
        case 1: // non-specific EOI
        case 5: {
          // rotate on non-specific EOI
          const p = this.priorityOf(this.isr);
          if (p < 8) this.eoi((p + this.priorityAdd) & 7, v >> 5 === 5);
          break;
        }
        case 3: // specific EOI
          this.eoi(level, false);
          break;
        case 7: // rotate on specific EOI
          this.eoi(level, true);
          break;
        case 6: // set priority: L becomes the lowest
          this.priorityAdd = (level + 1) & 7;
          break;
        case 2: // no operation
          break;
      }
    }
  }

  private writeData(v: number): void {
    switch (this.init) {
      case Init.Icw2:
        this.vectorBase = v & 0xf8;
        this.init = !this.single ? Init.Icw3 : this.needIcw4 ? Init.Icw4 : Init.Done;
        break;
      case Init.Icw3:
        this.icw3 = v;
        this.init = this.needIcw4 ? Init.Icw4 : Init.Done;
        break;
      case Init.Icw4:
        this.autoEoi = (v & ICW4_AEOI) !== 0;
        this.specialFullyNested = (v & ICW4_SFNM) !== 0;
        this.init = Init.Done;
        break;
      case Init.Done:
        this.imr = v; // OCW1
        break;
    }
  }

  /** Poll command: the read is the INTA; bit 7 says whether anything was pending. */
  private pollRead(): number {
    const irq = this.pendingIrq();
    if (irq < 0) return 0;
    this.acknowledgeLevel();
    return 0x80 | irq;
  }

  portIn(offset: number, _size: IoSize): number {
    if (this.poll) {
      this.poll = false;
      return this.pollRead();
    }
    if (offset === 0) return this.readIsr ? this.isr : this.irr;
    return this.imr;
  }

  portOut(offset: number, _size: IoSize, value: number): void {
    if (offset === 0) this.writeCommand(value & 0xff);
    else this.writeData(value & 0xff);
    this.onChange();
  }
}
