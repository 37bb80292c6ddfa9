/**
 * Message Signalled Interrupts for PCI functions (PCI Local Bus Spec 3.0 §6.8):
 * the MSI capability (§6.8.1) and MSI-X (§6.8.2). A device model creates one of
 * these on its PciFunction and calls `notify(vector)` when it wants an interrupt;
 * the helper decides whether a message is sent (through `deliverMsi(address,
 * data)`, which the machine routes to the LAPICs), held pending behind a mask,
 * or not sent at all because the capability is disabled (then `notify` returns
 * false and the device uses INTx).
 *
 * A function may only write memory, and so send messages, while Bus Master
 * Enable is set in its command register: with it clear, messages are dropped, as
 * a bus-mastering write would be.
 */
import { InternalError } from '../../common/index.js';
import type { MmioDevice } from '../bus.js';
import { PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_COMMAND_MASTER, type PciFunction } from './pci-function.js';

export type DeliverMsi = (address: number, data: number) => void;

// MSI Message Control (§6.8.1.3).
export const MSI_CTRL_ENABLE = 0x0001;
export const MSI_CTRL_64BIT = 0x0080;
export const MSI_CTRL_PER_VECTOR_MASK = 0x0100;

// MSI-X Message Control (§6.8.2.3) and table entries (§6.8.2.6-9).
export const MSIX_CTRL_FUNCTION_MASK = 0x4000;
export const MSIX_CTRL_ENABLE = 0x8000;
export const MSIX_ENTRY_SIZE = 16;
export const MSIX_ENTRY_VECTOR_CTRL_MASK = 0x1;

function bytesOf(word32: number, offset: number, size: number): number {
  const v = Math.floor((word32 >>> 0) / 2 ** (8 * (offset & 3)));
  return size >= 4 ? v >>> 0 : v & ((1 << (8 * size)) - 1);
}

export interface MsiOptions {
  /** Vectors the function can use (Multiple Message Capable): 1, 2, 4, 8, 16 or 32. */
  vectors?: number;
  /** 64-bit message address (default true). */
  addr64?: boolean;
  /** Per-vector masking with Mask and Pending Bits registers (default false). */
  perVectorMask?: boolean;
  /** Offset of the structure in configuration space (default: next free). */
  at?: number;
}

/** The MSI capability structure of one function. */
export class MsiCapability {
  readonly offset: number;
  readonly vectors: number;
  readonly addr64: boolean;
  readonly perVectorMask: boolean;
  private readonly dataReg: number;
  private readonly maskReg: number;
  private readonly pendingReg: number;
  private pendingBits = 0;

  constructor(
    private readonly fn: PciFunction,
    private readonly deliverMsi: DeliverMsi,
    opts: MsiOptions = {},
  ) {
    this.vectors = opts.vectors ?? 1;
    const mmc = Math.log2(this.vectors);
    if (!Number.isInteger(mmc) || mmc < 0 || mmc > 5)
      throw new InternalError(`${fn.name}: MSI vector count ${this.vectors} is not 1, 2, 4, 8, 16 or 32`);
    this.addr64 = opts.addr64 ?? true;
    this.perVectorMask = opts.perVectorMask ?? false;
    const size = (this.addr64 ? 0x10 : 0x0c) + (this.perVectorMask ? 8 : 0);
    const o = fn.addCapability(PCI_CAP_ID_MSI, size, { at: opts.at, written: () => this.written() });
    this.offset = o;
    this.dataReg = o + (this.addr64 ? 0x0c : 0x08);
    this.maskReg = this.perVectorMask ? this.dataReg + 4 : -1;
    this.pendingReg = this.perVectorMask ? this.dataReg + 8 : -1;
    const ctrl =
      (mmc << 1) | (this.addr64 ? MSI_CTRL_64BIT : 0) | (this.perVectorMask ? MSI_CTRL_PER_VECTOR_MASK : 0);
    fn.initRegister(o + 2, 2, ctrl, MSI_CTRL_ENABLE | 0x70);
    fn.initRegister(o + 4, 4, 0, 0xfffffffc);
    if (this.addr64) fn.initRegister(o + 8, 4, 0, 0xffffffff);
    fn.initRegister(this.dataReg, 2, 0, 0xffff);
    if (this.perVectorMask) {
      const all = this.vectors === 32 ? 0xffffffff : (1 << this.vectors) - 1;
      fn.initRegister(this.maskReg, 4, 0, all);
      fn.initRegister(this.pendingReg, 4, 0);
    }
  }

  private get control(): number {
    return this.fn.readConfig(this.offset + 2, 2);
  }
  get enabled(): boolean {
    return (this.control & MSI_CTRL_ENABLE) !== 0;
  }
  /** Vectors software allocated (Multiple Message Enable), at most what the function asked for. */
  get enabledVectors(): number {
    return Math.min(1 << ((this.control >>> 4) & 7), this.vectors);
  }
  get address(): number {
    const lo = this.fn.readConfig(this.offset + 4, 4);
    return this.addr64 ? this.fn.readConfig(this.offset + 8, 4) * 2 ** 32 + lo : lo;
  }
  get data(): number {
    return this.fn.readConfig(this.dataReg, 2);
  }
  get maskBits(): number {
    return this.perVectorMask ? this.fn.readConfig(this.maskReg, 4) : 0;
  }
  get pending(): number {
    return this.pendingBits >>> 0;
  }

  /**
   * The function signals `vector`. Returns false when MSI is disabled (the device
   * should use INTx instead); otherwise the message is sent, or held pending
   * while the vector is masked.
   */
  notify(vector = 0): boolean {
    if (!this.enabled) return false;
    const v = vector & (this.enabledVectors - 1);
    if (this.maskBits & (1 << v)) {
      this.setPending(this.pendingBits | (1 << v));
      return true;
    }
    this.send(v);
    return true;
  }

  private send(v: number): void {
    if (!(this.fn.command & PCI_COMMAND_MASTER)) return;
    const n = this.enabledVectors;
    this.deliverMsi(this.address, (this.data & ~(n - 1)) | v);
  }

  private setPending(bits: number): void {
    this.pendingBits = bits >>> 0;
    if (this.perVectorMask) this.fn.initRegister(this.pendingReg, 4, this.pendingBits);
  }

  /** A config write touched the structure: unmasked pending vectors are sent now. */
  private written(): void {
    if (!this.enabled) return;
    const ready = this.pendingBits & ~this.maskBits;
    if (!ready) return;
    this.setPending(this.pendingBits & ~ready);
    for (let v = 0; v < 32; v++) if (ready & (1 << v)) this.send(v);
  }
}

export interface MsixOptions {
  /** Table size, 1-2048. */
  vectors: number;
  /** BAR index (BIR) and byte offset of the table (offset 8-byte aligned). */
  tableBar: number;
  tableOffset: number;
  /** BAR index and offset of the Pending Bit Array. */
  pbaBar: number;
  pbaOffset: number;
  at?: number;
}

/**
 * The MSI-X capability of one function with its table and PBA. The table and the
 * PBA live in memory BARs; `tableDevice` and `pbaDevice` are MMIO devices for
 * those regions (offsets from the region start) that the BAR's owner maps at
 * barAddress(bar) + offset, or routes to with `mmioRead`/`mmioWrite`.
 */
export class MsixCapability {
  readonly offset: number;
  readonly vectors: number;
  /** Four dwords per entry: address low, address high, data, vector control. */
  readonly table: Uint32Array;
  /** Pending bits, one per vector, in qwords (as two dwords each). */
  readonly pba: Uint32Array;
  readonly tableDevice: MmioDevice;
  readonly pbaDevice: MmioDevice;
  readonly tableSize: number;
  readonly pbaSize: number;

  constructor(
    private readonly fn: PciFunction,
    private readonly deliverMsi: DeliverMsi,
    readonly opts: MsixOptions,
  ) {
    const n = opts.vectors;
    if (!Number.isInteger(n) || n < 1 || n > 2048)
      throw new InternalError(`${fn.name}: MSI-X table size ${n}`);
    for (const bar of [opts.tableBar, opts.pbaBar])
      if (!fn.bars[bar] || fn.bars[bar]!.kind === 'io')
        throw new InternalError(`${fn.name}: MSI-X structures need a memory BAR (BAR${bar})`);
    if (opts.tableOffset & 7 || opts.pbaOffset & 7)
      throw new InternalError(`${fn.name}: MSI-X offsets must be 8-byte aligned`);
    this.vectors = n;
    this.tableSize = n * MSIX_ENTRY_SIZE;
    this.pbaSize = Math.ceil(n / 64) * 8;
    const fits = (bar: number, off: number, len: number): boolean => off + len <= fn.bars[bar]!.size;
    if (
      !fits(opts.tableBar, opts.tableOffset, this.tableSize) ||
      !fits(opts.pbaBar, opts.pbaOffset, this.pbaSize)
    )
      throw new InternalError(`${fn.name}: MSI-X table or PBA does not fit in its BAR`);
    if (
      opts.tableBar === opts.pbaBar &&
      opts.tableOffset < opts.pbaOffset + this.pbaSize &&
      opts.pbaOffset < opts.tableOffset + this.tableSize
    )
      throw new InternalError(`${fn.name}: MSI-X table and PBA overlap`);
    this.table = new Uint32Array(n * 4);
    for (let i = 0; i < n; i++) this.table[i * 4 + 3] = MSIX_ENTRY_VECTOR_CTRL_MASK; // masked at reset
    this.pba = new Uint32Array(this.pbaSize / 4);
    const o = fn.addCapability(PCI_CAP_ID_MSIX, 12, { at: opts.at, written: () => this.kick() });
    this.offset = o;
    fn.initRegister(o + 2, 2, n - 1, MSIX_CTRL_ENABLE | MSIX_CTRL_FUNCTION_MASK);
    fn.initRegister(o + 4, 4, (opts.tableOffset | opts.tableBar) >>> 0);
    fn.initRegister(o + 8, 4, (opts.pbaOffset | opts.pbaBar) >>> 0);
    this.tableDevice = {
      name: `${fn.name}-msix-table`,
      mmioRead: (off, size) => this.readTable(off, size),
      mmioWrite: (off, size, v) => this.writeTable(off, size, v),
    };
    this.pbaDevice = {
      name: `${fn.name}-msix-pba`,
      mmioRead: (off, size) => this.readPba(off, size),
      mmioWrite: () => {}, // read-only
    };
  }

  private get control(): number {
    return this.fn.readConfig(this.offset + 2, 2);
  }
  get enabled(): boolean {
    return (this.control & MSIX_CTRL_ENABLE) !== 0;
  }
  get functionMasked(): boolean {
    return (this.control & MSIX_CTRL_FUNCTION_MASK) !== 0;
  }
  entryMasked(v: number): boolean {
    return (this.table[v * 4 + 3] & MSIX_ENTRY_VECTOR_CTRL_MASK) !== 0;
  }
  isPending(v: number): boolean {
    return (this.pba[v >>> 5] & (1 << (v & 31))) !== 0;
  }
  /** Address and data programmed in entry `v`. */
  entry(v: number): { address: number; data: number } {
    const e = v * 4;
    return { address: this.table[e + 1] * 2 ** 32 + this.table[e], data: this.table[e + 2] };
  }

  /**
   * The function signals vector `v`. Returns false when MSI-X is disabled (use
   * INTx); otherwise the message is sent, or its pending bit set while masked.
   */
  notify(v: number): boolean {
    if (!this.enabled) return false;
    if (v < 0 || v >= this.vectors) return true; // no such entry: nothing to send
    if (this.functionMasked || this.entryMasked(v)) this.pba[v >>> 5] |= 1 << (v & 31);
    else this.send(v);
    return true;
  }

  /** The function no longer needs vector `v` (its condition was serviced): clear the pending bit. */
  clearPending(v: number): void {
    this.pba[v >>> 5] &= ~(1 << (v & 31));
  }

  private send(v: number): void {
    if (!(this.fn.command & PCI_COMMAND_MASTER)) return;
    const { address, data } = this.entry(v);
    this.deliverMsi(address, data);
  }

  /** Send every pending vector that is no longer masked. */
  private kick(): void {
    if (!this.enabled || this.functionMasked) return;
    for (let v = 0; v < this.vectors; v++)
      if (this.isPending(v) && !this.entryMasked(v)) {
        this.clearPending(v);
        this.send(v);
      }
  }

  readTable(off: number, size: number): number {
    if (off < 0 || off >= this.tableSize) return 0;
    if (size === 8) return this.table[off >>> 2] >>> 0; // low dword; the CPU splits 8-byte accesses
    return bytesOf(this.table[off >>> 2], off, size);
  }

  writeTable(off: number, size: number, value: number): void {
    if (off < 0 || off >= this.tableSize) return;
    if (size === 8) size = 4;
    const i = off >>> 2;
    const shift = 8 * (off & 3);
    const laneMask = size >= 4 ? 0xffffffff : ((1 << (8 * size)) - 1) << shift;
    let v = ((this.table[i] & ~laneMask) | ((value << shift) & laneMask)) >>> 0;
    const field = i & 3;
    if (field === 0) v = (v & ~3) >>> 0; // address bits 1:0 are zero (dword aligned)
    if (field === 3) v &= MSIX_ENTRY_VECTOR_CTRL_MASK; // other vector control bits are reserved
    this.table[i] = v;
    if (field === 3) this.kick();
  }

  readPba(off: number, size: number): number {
    if (off < 0 || off >= this.pbaSize) return 0;
    if (size === 8) size = 4;
    return bytesOf(this.pba[off >>> 2], off, size);
  }

  /** For a BAR owner that routes its own accesses: the value if `off` in BAR `bar` is the table or PBA. */
  mmioRead(bar: number, off: number, size: number): number | undefined {
    const o = this.opts;
    if (bar === o.tableBar && off >= o.tableOffset && off < o.tableOffset + this.tableSize)
      return this.readTable(off - o.tableOffset, size);
    if (bar === o.pbaBar && off >= o.pbaOffset && off < o.pbaOffset + this.pbaSize)
      return this.readPba(off - o.pbaOffset, size);
    return undefined;
  }

  /** As `mmioRead`; returns whether the write hit the table or PBA. */
  mmioWrite(bar: number, off: number, size: number, value: number): boolean {
    const o = this.opts;
    if (bar === o.tableBar && off >= o.tableOffset && off < o.tableOffset + this.tableSize) {
      this.writeTable(off - o.tableOffset, size, value);
      return true;
    }
    return bar === o.pbaBar && off >= o.pbaOffset && off < o.pbaOffset + this.pbaSize;
  }
}
