/**
 * A PCI function's 256-byte configuration space (PCI Local Bus Spec 3.0 §6.1),
 * with per-bit write masks: read-only bits keep their value, writable bits take the
 * written one, write-1-to-clear bits (status) clear where a 1 is written. BARs get
 * their masks from their size, which gives the sizing protocol for free (§6.2.5.1):
 * software writes all ones and reads back ~(size-1) plus the read-only type bits.
 *
 * Devices (host bridge, ISA bridge, NICs, virtio) are instances or subclasses;
 * a subclass reacts to writes in `configWritten` (e.g. to remap a moved BAR).
 *
 * Capabilities (§6.7): `addCapability` links a new structure into the list that
 * starts at the capabilities pointer (0x34) and sets Status.Capabilities List;
 * structures are placed dword-aligned from 0x40 up unless an offset is given.
 * Helpers such as pci-msi.ts define the registers of their structure with
 * `initRegister` and are told of writes to it through the `written` callback.
 */
import { InternalError } from '../../common/index.js';

export type PciBarKind = 'io' | 'mem32' | 'mem64';

export interface PciBar {
  kind: PciBarKind;
  /** Power of two; at least 4 for I/O and 16 for memory. */
  size: number;
  prefetchable?: boolean;
}

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  /** Base class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  revision?: number;
  /** Bits 6:0 of the header type (0 = general device); bit 7 (multi-function) is set by the host. */
  headerType?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** 0 = none, 1-4 = INTA#-INTD#. */
  interruptPin?: number;
  command?: number;
  status?: number;
}

// Configuration header offsets (PCI 3.0 figure 6-1).
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION = 0x08;
export const PCI_CLASS = 0x09;
export const PCI_CACHE_LINE = 0x0c;
export const PCI_LATENCY = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BAR0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;

export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS_CAP_LIST = 0x10;

// Capability IDs (PCI Code and ID Assignment Specification).
export const PCI_CAP_ID_PM = 0x01;
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_VENDOR = 0x09;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;

/** Start of the device-specific area where capabilities go by default. */
const CAP_AREA_START = 0x40;

export interface PciCapability {
  readonly id: number;
  /** Offset of the structure (its ID byte) in configuration space. */
  readonly offset: number;
  readonly size: number;
}

interface CapEntry extends PciCapability {
  written?: (reg: number, size: number) => void;
}

/** Command bits a plain function implements: I/O, memory, bus master, parity response, SERR#, INTx disable. */
const COMMAND_WRITABLE = 0x0547;
/** Status error bits are write-1-to-clear (PCI 3.0 §6.2.3). */
const STATUS_W1C = 0xf900;
const BAR_COUNT = 6;

export class PciFunction {
  readonly config = new Uint8Array(256);
  protected readonly writable = new Uint8Array(256);
  protected readonly w1c = new Uint8Array(256);
  readonly bars: (PciBar | undefined)[] = [];
  private readonly caps: CapEntry[] = [];
  private capEnd = CAP_AREA_START;

  constructor(
    readonly name: string,
    id: PciIdentity,
    bars: (PciBar | undefined)[] = [],
  ) {
    this.set16(PCI_VENDOR_ID, id.vendorId);
    this.set16(PCI_DEVICE_ID, id.deviceId);
    this.set16(PCI_COMMAND, id.command ?? 0);
    this.set16(PCI_STATUS, id.status ?? 0);
    this.config[PCI_REVISION] = id.revision ?? 0;
    this.set8(PCI_CLASS, id.classCode & 0xff);
    this.set16(PCI_CLASS + 1, id.classCode >>> 8);
    this.config[PCI_HEADER_TYPE] = (id.headerType ?? 0) & 0x7f;
    this.set16(PCI_SUBSYSTEM_VENDOR_ID, id.subsystemVendorId ?? 0);
    this.set16(PCI_SUBSYSTEM_ID, id.subsystemId ?? 0);
    this.config[PCI_INTERRUPT_PIN] = id.interruptPin ?? 0;
    this.setWritable(PCI_COMMAND, 2, COMMAND_WRITABLE);
    this.setW1c(PCI_STATUS, 2, STATUS_W1C);
    this.setWritable(PCI_CACHE_LINE, 1, 0xff);
    this.setWritable(PCI_LATENCY, 1, 0xff);
    this.setWritable(PCI_INTERRUPT_LINE, 1, 0xff);
    this.defineBars(bars);
  }

  private defineBars(bars: (PciBar | undefined)[]): void {
    if (bars.length > BAR_COUNT) throw new InternalError(`${this.name}: more than ${BAR_COUNT} BARs`);
    for (let i = 0; i < bars.length; i++) {
      const bar = bars[i];
      if (!bar) continue;
      const min = bar.kind === 'io' ? 4 : 16;
      if (bar.size < min || Math.log2(bar.size) % 1 !== 0)
        throw new InternalError(`${this.name}: BAR${i} size ${bar.size} is not a power of two >= ${min}`);
      const reg = PCI_BAR0 + 4 * i;
      this.bars[i] = bar;
      if (bar.kind === 'io') {
        if (bar.size > 0x10000) throw new InternalError(`${this.name}: I/O BAR${i} larger than 64 KiB`);
        this.set32(reg, 0x1); // bit 0: I/O space indicator
        this.setWritable(reg, 4, ~(bar.size - 1) & ~0x3);
        continue;
      }
      const typeBits = (bar.kind === 'mem64' ? 0x4 : 0) | (bar.prefetchable ? 0x8 : 0);
      this.set32(reg, typeBits);
      if (bar.kind === 'mem32') {
        if (bar.size > 0x80000000) throw new InternalError(`${this.name}: 32-bit BAR${i} too large`);
        this.setWritable(reg, 4, ~(bar.size - 1) & ~0xf);
        continue;
      }
      if (i + 1 >= BAR_COUNT || bars[i + 1])
        throw new InternalError(`${this.name}: 64-bit BAR${i} needs BAR${i + 1} free for its upper half`);
      const sizeHi = Math.floor(bar.size / 2 ** 32);
      this.setWritable(reg, 4, sizeHi > 0 ? 0 : ~(bar.size - 1) & ~0xf);
      this.setWritable(reg + 4, 4, sizeHi > 0 ? ~(sizeHi - 1) : 0xffffffff);
      i++;
    }
  }

  protected set8(reg: number, v: number): void {
    this.config[reg] = v & 0xff;
  }
  protected set16(reg: number, v: number): void {
    this.config[reg] = v & 0xff;
    this.config[reg + 1] = (v >>> 8) & 0xff;
  }
  protected set32(reg: number, v: number): void {
    for (let i = 0; i < 4; i++) this.config[reg + i] = (v >>> (8 * i)) & 0xff;
  }
  protected setWritable(reg: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.writable[reg + i] = (mask >>> (8 * i)) & 0xff;
  }
  protected setW1c(reg: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.w1c[reg + i] = (mask >>> (8 * i)) & 0xff;
  }

  /**
   * Give register bytes reg..reg+size-1 an initial value and write masks (bits set
   * in `writable` take written values, bits set in `w1c` clear when written with 1).
   */
  initRegister(reg: number, size: number, value: number, writable = 0, w1c = 0): void {
    if (reg < 0 || reg + size > 256)
      throw new InternalError(`${this.name}: register 0x${reg.toString(16)} out of range`);
    for (let i = 0; i < size; i++) {
      this.config[reg + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
      this.writable[reg + i] = (writable >>> (8 * i)) & 0xff;
      this.w1c[reg + i] = (w1c >>> (8 * i)) & 0xff;
    }
  }

  /**
   * Link a capability structure of `size` bytes (ID and next pointer included)
   * into the list and return its offset. `written` runs after any config write
   * that touches the structure.
   */
  addCapability(
    id: number,
    size: number,
    opts: { at?: number; written?: (reg: number, size: number) => void } = {},
  ): number {
    const offset = opts.at ?? this.capEnd;
    if (size < 2 || offset < CAP_AREA_START || offset & 3 || offset + size > 256)
      throw new InternalError(
        `${this.name}: capability 0x${id.toString(16)} does not fit at 0x${offset.toString(16)}`,
      );
    for (const c of this.caps)
      if (offset < c.offset + c.size && c.offset < offset + size)
        throw new InternalError(`${this.name}: capability at 0x${offset.toString(16)} overlaps another`);
    this.config[offset] = id & 0xff;
    this.config[offset + 1] = 0;
    this.writable[offset] = this.writable[offset + 1] = 0;
    const last = this.caps[this.caps.length - 1];
    if (last) this.config[last.offset + 1] = offset;
    else {
      this.config[PCI_CAPABILITY_LIST] = offset;
      this.config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    }
    this.caps.push({ id, offset, size, written: opts.written });
    this.capEnd = Math.max(this.capEnd, (offset + size + 3) & ~3);
    return offset;
  }

  /** The capabilities in list order. */
  get capabilities(): readonly PciCapability[] {
    return this.caps.map(({ id, offset, size }) => ({ id, offset, size }));
  }

  /** Offset of the first capability with this ID, if any. */
  findCapability(id: number): number | undefined {
    return this.caps.find((c) => c.id === id)?.offset;
  }

  /** Set the multi-function bit of the header type (done by the host for function 0). */
  markMultiFunction(): void {
    this.config[PCI_HEADER_TYPE] |= 0x80;
  }

  /** Read `size` bytes at `reg`; the access does not cross a dword (the host splits it). */
  readConfig(reg: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | this.config[reg + i];
    return v >>> 0;
  }

  writeConfig(reg: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) {
      const r = reg + i;
      const b = (value >>> (8 * i)) & 0xff;
      const wr = this.writable[r];
      this.config[r] = ((this.config[r] & ~wr) | (b & wr)) & ~(b & this.w1c[r]);
    }
    for (const c of this.caps)
      if (c.written && reg < c.offset + c.size && c.offset < reg + size) c.written(reg, size);
    this.configWritten(reg, size);
  }

  /** Hook for subclasses: bytes reg..reg+size-1 were written. */
  protected configWritten(_reg: number, _size: number): void {}

  /** Address currently programmed into BAR `i` (the low type bits removed). */
  barAddress(i: number): number {
    const bar = this.bars[i];
    if (!bar) throw new InternalError(`${this.name}: no BAR${i}`);
    const lo = this.readConfig(PCI_BAR0 + 4 * i, 4);
    if (bar.kind === 'io') return (lo & ~0x3) >>> 0;
    const base = (lo & ~0xf) >>> 0;
    return bar.kind === 'mem64' ? this.readConfig(PCI_BAR0 + 4 * i + 4, 4) * 2 ** 32 + base : base;
  }

  get command(): number {
    return this.readConfig(PCI_COMMAND, 2);
  }
}
