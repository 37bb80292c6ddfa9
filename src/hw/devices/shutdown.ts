/**
 * The Bochs/QEMU "Shutdown" port (0x8900): writing the bytes of the string
 * "Shutdown" one after another powers the machine off. Any other byte restarts
 * the match (an 'S' starts a new one), so stray writes never power off.
 */
import type { IoSize, PortDevice } from '../bus.js';

export const SHUTDOWN_PORT = 0x8900;

const MAGIC = Array.from('Shutdown', (c) => c.charCodeAt(0));

export class ShutdownPort implements PortDevice {
  readonly name = 'shutdown-port';
  private matched = 0;

  constructor(private readonly onPowerOff: () => void) {}

  /** Write-only port: reads float. */
  portIn(_offset: number, _size: IoSize): number {
    return 0xff;
  }

  /**
   * The port is one byte wide: a wider access would put its upper bytes on the
   * following ports, so only the low byte counts here.
   */
  portOut(_offset: number, _size: IoSize, value: number): void {
    const b = value & 0xff;
    if (b === MAGIC[this.matched]) this.matched++;
    else this.matched = b === MAGIC[0] ? 1 : 0;
    if (this.matched === MAGIC.length) {
      this.matched = 0;
      this.onPowerOff();
    }
  }
}
