/**
 * The I/O and MMIO buses. The bus owns the address map; devices see offsets from
 * the base they were registered at (as in rust-vmm), so a device can be mapped
 * anywhere (a relocated LAPIC, a PCI BAR) without knowing it.
 */
import { InternalError } from '../common/index.js';

export type IoSize = 1 | 2 | 4;

export interface PortDevice {
  readonly name: string;
  /** Read `size` bytes at `offset` from the device's base port. */
  portIn(offset: number, size: IoSize): number;
  portOut(offset: number, size: IoSize, value: number): void;
}

export interface MmioDevice {
  readonly name: string;
  /** Read `size` (1, 2, 4 or 8) bytes at `offset`; 8-byte reads return the low 32 bits in lo and high in hi via the out array. */
  mmioRead(offset: number, size: number): number;
  mmioWrite(offset: number, size: number, value: number): void;
}

interface PortRange {
  base: number;
  dev: PortDevice;
}

export class IoBus {
  private readonly map: (PortRange | undefined)[] = new Array(65536).fill(undefined);
  /** Unclaimed ports read all ones (floating ISA bus), writes are dropped. */
  register(base: number, count: number, dev: PortDevice): void {
    for (let p = base; p < base + count; p++) {
      if (this.map[p])
        throw new InternalError(`port ${p.toString(16)} claimed by ${this.map[p]!.dev.name} and ${dev.name}`);
      this.map[p] = { base, dev };
    }
  }
  unregister(base: number, count: number): void {
    for (let p = base; p < base + count; p++) this.map[p] = undefined;
  }
  in(port: number, size: IoSize): number {
    const r = this.map[port & 0xffff];
    if (!r) return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
    return r.dev.portIn(port - r.base, size);
  }
  out(port: number, size: IoSize, value: number): void {
    const r = this.map[port & 0xffff];
    if (r) r.dev.portOut(port - r.base, size, value);
  }
}

interface MmioRange {
  base: number;
  size: number;
  dev: MmioDevice;
}

export class MmioBus {
  private ranges: MmioRange[] = [];
  register(base: number, size: number, dev: MmioDevice): void {
    for (const r of this.ranges)
      if (base < r.base + r.size && r.base < base + size)
        throw new InternalError(`MMIO range of ${dev.name} overlaps ${r.dev.name}`);
    this.ranges.push({ base, size, dev });
  }
  unregister(dev: MmioDevice): void {
    this.ranges = this.ranges.filter((r) => r.dev !== dev);
  }
  find(pa: number): MmioRange | undefined {
    for (const r of this.ranges) if (pa >= r.base && pa < r.base + r.size) return r;
    return undefined;
  }
  /** Unclaimed physical addresses read all ones, writes are dropped (as on a PC). */
  read(pa: number, size: number): number {
    const r = this.find(pa);
    if (!r) return size >= 4 ? -1 : (1 << (size * 8)) - 1;
    return r.dev.mmioRead(pa - r.base, size);
  }
  write(pa: number, size: number, value: number): void {
    const r = this.find(pa);
    if (r) r.dev.mmioWrite(pa - r.base, size, value);
  }
}
