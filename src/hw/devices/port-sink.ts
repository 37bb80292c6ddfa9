/**
 * A one-byte latch for ports that guests write without caring what happens, so
 * they do not read the floating 0xFF of an unclaimed port. Used for port 0x80,
 * the POST-code port (the DMA page register on a PC/AT, which reads back what was
 * written), and usable for any similar scratch port.
 */
import type { IoSize, PortDevice } from '../bus.js';

export const POST_CODE_PORT = 0x80;

export class LatchPort implements PortDevice {
  /** The last byte written: for a POST-code port this is the last progress code. */
  value = 0;

  constructor(readonly name: string) {}

  portIn(_offset: number, _size: IoSize): number {
    return this.value;
  }

  portOut(_offset: number, _size: IoSize, value: number): void {
    this.value = value & 0xff;
  }
}
