/**
 * PCI configuration mechanism #1 (PCI Local Bus Spec 3.0 §3.2.2.3.2): CONFIG_ADDRESS
 * at 0xCF8 (a dword: enable bit 31, bus 23:16, device 15:11, function 10:8,
 * register 7:2) and CONFIG_DATA at 0xCFC-0xCFF, where byte and word accesses
 * reach the matching bytes of the selected dword. Registered at 0xCF8 for 8 ports.
 *
 * Only bus 0 exists. Functions are added with `add`; an absent function (and any
 * access with the enable bit clear) reads all ones, which is how software detects
 * "no device". The PIIX3 reset control register at 0xCF9 sits inside this range
 * on a PC, so it lives here: writing bit 2 (RCPU) requests a reset.
 */
import { InternalError } from '../../common/index.js';
import type { IoSize, PortDevice } from '../bus.js';
import { PciFunction } from './pci-function.js';
import { PciHostBridge } from './pci-host-bridge.js';

export const PCI_CONFIG_PORT = 0xcf8;
export const PCI_CONFIG_PORT_COUNT = 8;

/** Bits 30:24 are reserved and bits 1:0 read as zero (PCI 3.0 §3.2.2.3.2). */
const ADDRESS_MASK = 0x80fffffc;
const ENABLE = 0x80000000;
const RESET_CONTROL_OFFSET = 1;
const RESET_CPU = 0x04;
const RESET_KEEP = 0x02; // SRST (hard vs soft reset): the only bit that sticks

export class PciHost implements PortDevice {
  readonly name = 'pci-host';
  private address = 0;
  private resetControl = 0;
  private readonly functions = new Map<number, PciFunction>();
  /** Called when the guest asks for a reset through 0xCF9. */
  onReset: (hard: boolean) => void = () => {};

  constructor() {
    this.add(0, 0, new PciHostBridge());
  }

  /** Place `fn` at 00:dev.func. Function 0 must come first; others make the device multi-function. */
  add(device: number, func: number, fn: PciFunction): void {
    if (device < 0 || device > 31 || func < 0 || func > 7)
      throw new InternalError(`bad PCI location ${device}.${func}`);
    const key = (device << 3) | func;
    if (this.functions.has(key)) throw new InternalError(`PCI 00:${device}.${func} is taken`);
    if (func !== 0) {
      const fn0 = this.functions.get(device << 3);
      if (!fn0) throw new InternalError(`PCI 00:${device}.${func} added before function 0`);
      fn0.markMultiFunction();
    }
    this.functions.set(key, fn);
  }

  get(device: number, func: number): PciFunction | undefined {
    return this.functions.get((device << 3) | func);
  }

  /** The function CONFIG_ADDRESS selects, or undefined (disabled, other bus, absent). */
  private selected(): PciFunction | undefined {
    if (!(this.address & ENABLE)) return undefined;
    if ((this.address >>> 16) & 0xff) return undefined;
    return this.functions.get((this.address >>> 8) & 0xff);
  }

  portIn(offset: number, size: IoSize): number {
    const ones = size === 1 ? 0xff : size === 2 ? 0xffff : -1;
    if (offset < 4) {
      if (offset === 0 && size === 4) return this.address | 0;
      if (offset === RESET_CONTROL_OFFSET && size === 1) return this.resetControl;
      return ones;
    }
    const fn = this.selected();
    if (!fn) return ones;
    const reg = (this.address & 0xfc) + (offset - 4);
    if (offset + size <= 8) return size === 4 ? fn.readConfig(reg, 4) | 0 : fn.readConfig(reg, size);
    // An access running past 0xCFF: the bytes beyond are not ours and float.
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | (offset + i < 8 ? fn.readConfig(reg + i, 1) : 0xff);
    return size === 4 ? v | 0 : v;
  }

  portOut(offset: number, size: IoSize, value: number): void {
    if (offset < 4) {
      // Only a dword access latches CONFIG_ADDRESS; narrower ones are ordinary I/O.
      if (offset === 0 && size === 4) this.address = (value & ADDRESS_MASK) >>> 0;
      else if (offset === RESET_CONTROL_OFFSET && size === 1) {
        this.resetControl = value & RESET_KEEP;
        if (value & RESET_CPU) this.onReset((value & RESET_KEEP) !== 0);
      }
      return;
    }
    const fn = this.selected();
    if (!fn) return;
    const reg = (this.address & 0xfc) + (offset - 4);
    if (offset + size <= 8) fn.writeConfig(reg, size, value);
    else for (let i = 0; offset + i < 8; i++) fn.writeConfig(reg + i, 1, value >>> (8 * i));
  }
}
