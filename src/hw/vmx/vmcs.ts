/**
 * A VMCS as the processor caches it: every field of the spec table (src/spec/vmx)
 * as a 64-bit (hi, lo) pair, plus the launch state. In memory a VMCS region holds
 * the revision identifier at offset 0 and the VMX-abort indicator at offset 4
 * (SDM 3C §24.2); the rest of the region is implementation-specific. Ours: the
 * launch state at offset 8 and field k of the table at 16 + 8k. The region is
 * read by VMPTRLD and written back by VMCLEAR, as the SDM allows (§24.11.1).
 */
import type { PhysMem } from '../mmu/physmem.js';

export const LAUNCH_CLEAR = 0,
  LAUNCH_LAUNCHED = 1;

/** Maps a field encoding to its dense index; built once from the spec table. */
export class FieldIndex {
  readonly index = new Map<number, number>();
  readonly encodings: number[];
  /** Width class from the encoding (bits 14:13): 0 = 16-bit, 1 = 64-bit, 2 = 32-bit, 3 = natural. */
  constructor(encodings: readonly number[]) {
    this.encodings = [...encodings].filter((e) => (e & 1) === 0);
    this.encodings.forEach((e, k) => this.index.set(e, k));
  }
  get size(): number {
    return this.encodings.length;
  }
}

export class Vmcs {
  readonly lo: Int32Array;
  readonly hi: Int32Array;
  launch = LAUNCH_CLEAR;
  /** Shadow-VMCS indicator (bit 31 of the revision dword). */
  shadow = false;
  revision = 0;
  constructor(
    readonly addr: number,
    readonly fields: FieldIndex,
  ) {
    this.lo = new Int32Array(fields.size);
    this.hi = new Int32Array(fields.size);
  }
  /** Low 32 bits of a field (unsigned). */
  get32(enc: number): number {
    const k = this.fields.index.get(enc)!;
    return this.lo[k] >>> 0;
  }
  /** Field as a signed double (exact for canonical addresses and values below 2^53). */
  getNum(enc: number): number {
    const k = this.fields.index.get(enc)!;
    return this.hi[k] * 4294967296 + (this.lo[k] >>> 0);
  }
  /** Field as an unsigned double (exact below 2^53: physical addresses). */
  getU(enc: number): number {
    const k = this.fields.index.get(enc)!;
    return (this.hi[k] >>> 0) * 4294967296 + (this.lo[k] >>> 0);
  }
  getHi(enc: number): number {
    return this.hi[this.fields.index.get(enc)!];
  }
  set(enc: number, lo: number, hi = 0): void {
    const k = this.fields.index.get(enc)!;
    this.lo[k] = lo;
    this.hi[k] = hi;
  }
  setNum(enc: number, v: number): void {
    this.set(enc, v | 0, Math.floor(v / 4294967296) | 0);
  }
  /** Write the cached VMCS to its region (VMCLEAR). */
  store(mem: PhysMem): void {
    mem.write32(this.addr, (this.revision & 0x7fffffff) | (this.shadow ? 0x80000000 : 0));
    mem.write32(this.addr + 8, this.launch);
    for (let k = 0; k < this.fields.size; k++) {
      mem.write32(this.addr + 16 + 8 * k, this.lo[k]);
      mem.write32(this.addr + 20 + 8 * k, this.hi[k]);
    }
  }
  /** Read the region into the cache (VMPTRLD). */
  load(mem: PhysMem): void {
    const rev = mem.read32(this.addr);
    this.revision = rev & 0x7fffffff;
    this.shadow = (rev & 0x80000000) !== 0;
    this.launch = mem.read32(this.addr + 8) === LAUNCH_LAUNCHED ? LAUNCH_LAUNCHED : LAUNCH_CLEAR;
    for (let k = 0; k < this.fields.size; k++) {
      this.lo[k] = mem.read32(this.addr + 16 + 8 * k);
      this.hi[k] = mem.read32(this.addr + 20 + 8 * k);
    }
  }
}
