/**
 * Host-physical memory: RAM in one ArrayBuffer plus the MMIO bus for everything
 * else. RAM below 3 GiB is mapped 1:1; RAM beyond 3 GiB is remapped above 4 GiB so
 * that the PCI/APIC hole (0xC0000000-0xFFFFFFFF) stays free, as on a PC.
 *
 * The CPU reads RAM directly through `u8`/`dv` for speed; every write path that
 * may hit code must call `noteWrite` so decoded-instruction caches stay coherent.
 */
import { UserError } from '../../common/index.js';
import { MmioBus } from '../bus.js';

export const LOW_RAM_LIMIT = 0xc0000000;
export const HIGH_RAM_BASE = 0x100000000;
export const PAGE = 4096;

export class PhysMem {
  readonly ram: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly ramBytes: number;
  /** End of RAM below 4 GiB. */
  readonly lowEnd: number;
  /** End of the remapped RAM above 4 GiB (HIGH_RAM_BASE when none). */
  readonly highEnd: number;
  readonly mmio = new MmioBus();
  /** Per RAM page (4 KiB): non-zero when some CPU holds decoded code from it. */
  readonly codePages: Uint8Array;
  /** Called with a RAM offset when a page flagged in codePages is written. */
  onCodeWrite: (ramPage: number) => void = () => {};

  constructor(bytes: number) {
    if (bytes < 2 * 1024 * 1024)
      throw new UserError(`--mem too small: ${bytes / 1048576} MiB (need at least 2 MiB)`);
    try {
      this.ram = new ArrayBuffer(bytes);
    } catch {
      throw new UserError(`cannot allocate ${bytes / 1048576} MiB of guest RAM on this host`);
    }
    this.ramBytes = bytes;
    this.u8 = new Uint8Array(this.ram);
    this.dv = new DataView(this.ram);
    this.lowEnd = Math.min(bytes, LOW_RAM_LIMIT);
    this.highEnd = HIGH_RAM_BASE + (bytes - this.lowEnd);
    this.codePages = new Uint8Array(bytes / PAGE);
  }

  /** RAM offset of physical address `pa`, or -1 when `pa` is not RAM. */
  ramOffset(pa: number): number {
    if (pa < this.lowEnd) return pa;
    if (pa >= HIGH_RAM_BASE && pa < this.highEnd) return pa - HIGH_RAM_BASE + this.lowEnd;
    return -1;
  }

  noteWrite(off: number): void {
    const page = (off / PAGE) | 0;
    if (this.codePages[page]) {
      this.codePages[page] = 0;
      this.onCodeWrite(page);
    }
  }

  read8(pa: number): number {
    const o = this.ramOffset(pa);
    return o >= 0 ? this.u8[o] : this.mmio.read(pa, 1) & 0xff;
  }
  read16(pa: number): number {
    const o = this.ramOffset(pa);
    if (o >= 0 && o + 2 <= this.ramBytes && (pa & 0xfff) <= 0xffe) return this.dv.getUint16(o, true);
    if (o < 0) return this.mmio.read(pa, 2) & 0xffff;
    return this.read8(pa) | (this.read8(pa + 1) << 8);
  }
  read32(pa: number): number {
    const o = this.ramOffset(pa);
    if (o >= 0 && (pa & 0xfff) <= 0xffc) return this.dv.getInt32(o, true);
    if (o < 0 && (pa & 3) === 0) return this.mmio.read(pa, 4) | 0;
    return this.read16(pa) | (this.read16(pa + 2) << 16) | 0;
  }
  write8(pa: number, v: number): void {
    const o = this.ramOffset(pa);
    if (o >= 0) {
      this.u8[o] = v;
      this.noteWrite(o);
    } else this.mmio.write(pa, 1, v & 0xff);
  }
  write16(pa: number, v: number): void {
    const o = this.ramOffset(pa);
    if (o >= 0 && (pa & 0xfff) <= 0xffe) {
      this.dv.setUint16(o, v & 0xffff, true);
      this.noteWrite(o);
    } else if (o < 0) this.mmio.write(pa, 2, v & 0xffff);
    else {
      this.write8(pa, v);
      this.write8(pa + 1, v >>> 8);
    }
  }
  write32(pa: number, v: number): void {
    const o = this.ramOffset(pa);
    if (o >= 0 && (pa & 0xfff) <= 0xffc) {
      this.dv.setInt32(o, v, true);
      this.noteWrite(o);
    } else if (o < 0 && (pa & 3) === 0) this.mmio.write(pa, 4, v | 0);
    else {
      this.write16(pa, v);
      this.write16(pa + 2, v >>> 16);
    }
  }
  /** Write a 64-bit value given as an unsigned double (exact below 2^53: page-table entries, addresses). */
  write64(pa: number, v: number): void {
    this.write32(pa, v % 4294967296);
    this.write32(pa + 4, Math.floor(v / 4294967296));
  }
  /** Copy bytes into guest-physical RAM (loaders, DMA). Throws UserError outside RAM. */
  writeBytes(pa: number, data: Uint8Array): void {
    for (let i = 0; i < data.length;) {
      const o = this.ramOffset(pa + i);
      if (o < 0) throw new UserError(`physical range 0x${(pa + i).toString(16)} is not RAM`);
      const n = Math.min(data.length - i, PAGE - ((pa + i) & 0xfff));
      this.u8.set(data.subarray(i, i + n), o);
      for (let p = o; p < o + n; p += PAGE) this.noteWrite(p);
      this.noteWrite(o + n - 1);
      i += n;
    }
  }
  readBytes(pa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = this.read8(pa + i);
    return out;
  }
  isRam(pa: number, len = 1): boolean {
    return this.ramOffset(pa) >= 0 && this.ramOffset(pa + len - 1) >= 0;
  }
}
