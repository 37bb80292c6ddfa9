/**
 * QEMU's firmware configuration device, legacy I/O interface (QEMU docs/specs/
 * fw_cfg.rst): a 16-bit selector at 0x510 and a byte-wide data port at 0x511.
 * Writing the selector picks an item and rewinds it; each data read returns the
 * next byte of the item, and 0 past its end or for an unknown item. No DMA
 * interface: the ID item says "traditional interface only".
 *
 * Besides the fixed items, files can be added (`addFile`); they appear in
 * FILE_DIR with selectors from 0x0020, as QEMU does for etc/acpi/tables etc.
 */
import { InternalError } from '../../common/index.js';
import type { IoSize, PortDevice } from '../bus.js';

export const FW_CFG_PORT = 0x510;
export const FW_CFG_PORT_COUNT = 2;

export const FW_CFG_SIGNATURE = 0x0000;
export const FW_CFG_ID = 0x0001;
export const FW_CFG_RAM_SIZE = 0x0003;
export const FW_CFG_NB_CPUS = 0x0005;
export const FW_CFG_MAX_CPUS = 0x000f;
export const FW_CFG_FILE_DIR = 0x0019;
export const FW_CFG_FILE_FIRST = 0x0020;

/** Selector bit 14 asks for a write (unsupported); bit 15 selects the arch-local items. */
const SELECTOR_KEY_MASK = 0xbfff;
/** A FILE_DIR entry: u32 size, u16 select, u16 reserved, char name[56], all big-endian. */
const FILE_ENTRY_SIZE = 64;
const FILE_NAME_MAX = 56;

export interface FwCfgConfig {
  /** Total guest RAM in bytes (QEMU reports ram_size, including RAM above 4 GiB). */
  ramBytes: number;
  cpus: number;
  maxCpus?: number;
}

interface FwCfgFile {
  name: string;
  select: number;
  data: Uint8Array;
}

function le(value: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  return out;
}

export class FwCfg implements PortDevice {
  readonly name = 'fw_cfg';
  private readonly items = new Map<number, Uint8Array>();
  private readonly files: FwCfgFile[] = [];
  private current: Uint8Array | undefined;
  private offset = 0;

  constructor(cfg: FwCfgConfig) {
    this.items.set(FW_CFG_SIGNATURE, new TextEncoder().encode('QEMU'));
    this.items.set(FW_CFG_ID, le(1, 4)); // bit 0: traditional interface; bit 1 (DMA) clear
    this.items.set(FW_CFG_RAM_SIZE, le(cfg.ramBytes, 8));
    this.items.set(FW_CFG_NB_CPUS, le(cfg.cpus, 2));
    this.items.set(FW_CFG_MAX_CPUS, le(cfg.maxCpus ?? cfg.cpus, 2));
    this.rebuildFileDir();
  }

  /** Add (or replace) a fixed item. */
  setItem(key: number, data: Uint8Array): void {
    this.items.set(key, data);
  }

  /** Add a named file; returns its selector. */
  addFile(name: string, data: Uint8Array): number {
    const encoded = new TextEncoder().encode(name);
    if (encoded.length >= FILE_NAME_MAX) throw new InternalError(`fw_cfg file name too long: ${name}`);
    const select = FW_CFG_FILE_FIRST + this.files.length;
    this.files.push({ name, select, data });
    this.items.set(select, data);
    this.rebuildFileDir();
    return select;
  }

  private rebuildFileDir(): void {
    const dir = new Uint8Array(4 + FILE_ENTRY_SIZE * this.files.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, this.files.length, false);
    this.files.forEach((f, i) => {
      const at = 4 + i * FILE_ENTRY_SIZE;
      dv.setUint32(at, f.data.length, false);
      dv.setUint16(at + 4, f.select, false);
      dir.set(new TextEncoder().encode(f.name), at + 8);
    });
    this.items.set(FW_CFG_FILE_DIR, dir);
  }

  private select(selector: number): void {
    this.current = this.items.get(selector & SELECTOR_KEY_MASK);
    this.offset = 0;
  }

  /**
   * QEMU accepts only a 16-bit access to the selector and 8-bit accesses to the
   * data port; anything else is an invalid access, which reads all ones.
   */
  portIn(offset: number, size: IoSize): number {
    if (offset !== 1 || size !== 1) return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
    const item = this.current;
    if (!item || this.offset >= item.length) return 0;
    return item[this.offset++];
  }

  portOut(offset: number, size: IoSize, value: number): void {
    // Data-port writes were removed in QEMU 2.4; they are ignored.
    if (offset === 0 && size === 2) this.select(value & 0xffff);
  }
}
