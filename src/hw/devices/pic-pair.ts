/**
 * The PC/AT pair of 8259As: master at 0x20-0x21 (IRQ 0-7), slave at 0xA0-0xA1
 * (IRQ 8-15) whose INT output drives master input 2; plus the PIIX edge/level
 * control registers (ELCR) at 0x4D0/0x4D1 (Intel 82371SB PIIX3 datasheet §4.1.11).
 * The CPU asks `hasInterrupt()` and runs `acknowledge()` for the INTA cycle.
 */
import type { IoSize, PortDevice } from '../bus.js';
import { Pic8259 } from './pic8259.js';

export const PIC_MASTER_PORT = 0x20;
export const PIC_SLAVE_PORT = 0xa0;
export const PIC_PORT_COUNT = 2;
export const ELCR_PORT = 0x4d0;
export const ELCR_PORT_COUNT = 2;

/** Master input the slave is wired to on every PC. */
const CASCADE_IRQ = 2;
/** ELCR bits that are reserved (forced edge): IRQ 0, 1, 2 and IRQ 8, 13 (PIIX3 §4.1.11). */
const ELCR_MASK = [0xf8, 0xde];

export class PicPair {
  readonly master: Pic8259;
  readonly slave: Pic8259;
  readonly elcr: PortDevice;

  constructor() {
    this.master = new Pic8259('pic-master');
    this.master.cascadeInputs = 1 << CASCADE_IRQ;
    this.slave = new Pic8259('pic-slave', () => this.updateCascade());
    const chips = [this.master, this.slave];
    this.elcr = {
      name: 'elcr',
      portIn: (offset: number, _size: IoSize) => chips[offset & 1].elcr,
      portOut: (offset: number, _size: IoSize, value: number) =>
        chips[offset & 1].setElcr(value & ELCR_MASK[offset & 1]),
    };
  }

  private updateCascade(): void {
    this.master.setLine(CASCADE_IRQ, this.slave.hasInterrupt());
  }

  /** Drive ISA IRQ line `irq` (0-15) high or low. IRQ 2 is the cascade and is not a free input. */
  setIrq(irq: number, level: boolean): void {
    if (irq < 8) this.master.setLine(irq, level);
    else this.slave.setLine(irq - 8, level);
  }

  raiseIrq(irq: number): void {
    this.setIrq(irq, true);
  }

  lowerIrq(irq: number): void {
    this.setIrq(irq, false);
  }

  /** The master's INT output, the CPU's INTR pin. */
  hasInterrupt(): boolean {
    return this.master.hasInterrupt();
  }

  /**
   * INTA: returns the vector. A master request on IR2 is the slave's: the slave
   * supplies the vector (IRQ15's if its request vanished, leaving master ISR2 set,
   * so the guest must EOI the master only). Nothing pending anywhere: IRQ7's vector.
   */
  acknowledge(): number {
    const irq = this.master.acknowledgeLevel();
    if (irq !== CASCADE_IRQ) return this.master.vectorFor(irq);
    // Drop the cascade line for the INTA so that a slave still requesting after
    // this cycle (e.g. in AEOI mode) makes a fresh edge on master IR2.
    this.master.setLine(CASCADE_IRQ, false);
    const vector = this.slave.acknowledge();
    this.updateCascade();
    return vector;
  }
}
