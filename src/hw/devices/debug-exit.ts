/**
 * QEMU's isa-debug-exit device (iobase 0xF4, iosize 4 in the QEMU `pc` test setup).
 * Any write in its range ends the run; QEMU exits with status (V << 1) | 1 where V
 * is the value written, so a guest can never report status 0 by accident. The
 * machine applies that formula; this device only reports V.
 */
import type { IoSize, PortDevice } from '../bus.js';

export const DEBUG_EXIT_PORT = 0xf4;
export const DEBUG_EXIT_SIZE = 4;

const SIZE_MASK = { 1: 0xff, 2: 0xffff, 4: 0xffffffff } as const;

export class DebugExit implements PortDevice {
  readonly name = 'isa-debug-exit';

  constructor(private readonly onExit: (value: number) => void) {}

  /** QEMU's device reads as 0. */
  portIn(_offset: number, _size: IoSize): number {
    return 0;
  }

  /** The offset inside the range does not matter (QEMU ignores the address too). */
  portOut(_offset: number, size: IoSize, value: number): void {
    this.onExit((value & SIZE_MASK[size]) >>> 0);
  }
}
