/**
 * System control port B (0x61) of the PC/AT. Bits 3:0 are read/write: timer 2
 * gate (0), speaker data enable (1), parity/channel-check enables (2, 3). Bits 7:4
 * are status, read-only: bit 5 is the output of PIT counter 2 and bit 4 the DRAM
 * refresh toggle. We do not model refresh; a status source (the PIT, later) can be
 * plugged in through `status`.
 */
import type { IoSize, PortDevice } from '../bus.js';

export const SYSTEM_CONTROL_B_PORT = 0x61;

const WRITABLE = 0x0f;

export class SystemControlB implements PortDevice {
  readonly name = 'system-control-b';
  private latch = 0;
  /** Returns bits 7:4 (e.g. PIT counter 2 output in bit 5); 0 until something drives them. */
  status: () => number = () => 0;
  /** Called after a write, so the PIT can follow the counter 2 gate. */
  onWrite: (value: number) => void = () => {};

  /** Timer 2 gate (bit 0), as the PIT needs it. */
  get timer2Gate(): boolean {
    return (this.latch & 1) !== 0;
  }

  /** Speaker data enable (bit 1). */
  get speakerEnabled(): boolean {
    return (this.latch & 2) !== 0;
  }

  portIn(_offset: number, _size: IoSize): number {
    return (this.status() & 0xf0) | this.latch;
  }

  portOut(_offset: number, _size: IoSize, value: number): void {
    this.latch = value & WRITABLE;
    this.onWrite(this.latch);
  }
}
