/**
 * Shadow page tables: the tables the hardware really walks while an L1 guest runs under
 * shadow paging (GUEST_CR3 points at a ShadowRoot). They live in L0's page pool and map guest
 * linear pages to host-physical frames of the VM's RAM, 4 KiB at a time, with the rights L0
 * computed from the guest's own walk (shadow.ts).
 *
 * Format: 4-level paging when the guest runs in IA-32e mode (EFER.LMA=1, SDM 3A §4.5), PAE
 * paging otherwise (§4.4: guest paging off, 32-bit paging and PAE paging are all shadowed with
 * PAE tables, which cover the whole 32-bit linear space). Non-leaf shadow entries grant
 * everything (P, R/W, U/S; never XD): every restriction is in the leaf, built by `shadowLeaf`.
 */
import type { PhysMem } from '../hw.js';
import type { Vm } from '../vm.js';
import { L0_COST } from '../cost.js';

export type ShadowFormat = 'pae' | '4-level';

const P = 1,
  W = 2,
  U = 4,
  A = 0x20,
  D = 0x40;
const TWO32 = 4294967296;

/** Rights of a shadow leaf. */
export interface LeafRights {
  writable: boolean;
  user: boolean;
  nx: boolean;
}

/**
 * A shadow leaf (PTE) mapping host frame `hpa` as [low dword, high dword]. A and D are preset
 * (D only when writable) so the hardware never needs to write the shadow tables: the guest's
 * accessed and dirty flags are kept by L0 in the guest's tables (SDM 3A §4.8).
 */
export function shadowLeaf(hpa: number, r: LeafRights): [number, number] {
  const lo = ((hpa % TWO32) & ~0xfff) | P | A | (r.writable ? W | D : 0) | (r.user ? U : 0);
  const hi = Math.floor(hpa / TWO32) | (r.nx ? 0x80000000 : 0);
  return [lo | 0, hi | 0];
}

/** The low dword of a shadow leaf with write access (and so the preset dirty flag) taken away. */
export function readOnlyLeaf(lo: number): number {
  return lo & ~(W | D);
}

/** Linear address (signed number for the canonical upper half) as an unsigned 48-bit value. */
function u48(la: number): number {
  return la < 0 ? la + 2 ** 48 : la;
}

/** Shadow table pages from L0's page pool for a VM, counted (for a cap) and charged as built. */
export class ShadowPages {
  inUse = 0;
  constructor(private readonly vm: Pick<Vm, 'pages' | 'host'>) {}
  readonly alloc = (): number => {
    const p = this.vm.pages.alloc();
    this.inUse++;
    this.vm.host.charge(L0_COST.shadowTable);
    return p;
  };
  readonly release = (p: number): void => {
    this.vm.pages.release(p);
    this.inUse--;
  };
}

export class ShadowRoot {
  /** Host-physical address of the top table: what GUEST_CR3 holds while this root is in use. */
  readonly cr3: number;
  /** Every page of this root's tables (released when the root is dropped). */
  readonly pages: number[] = [];
  /** Host addresses of the leaf slots that hold a mapping (shadow.ts keeps their records). */
  readonly slots = new Set<number>();

  constructor(
    /** The guest's root (CR3) and paging mode this shadow stands for (shadow.ts `rootKey`). */
    readonly key: string,
    readonly format: ShadowFormat,
    private readonly mem: PhysMem,
    private readonly alloc: () => number,
  ) {
    this.cr3 = this.newTable();
    if (format === 'pae') {
      // The four PDPTEs (bits 2:1 and 8:5 reserved, §4.4.1): each points at a page directory,
      // allocated up front so PDPTEs never change while the root is in use.
      for (let k = 0; k < 4; k++) this.mem.write32(this.cr3 + 8 * k, this.newTable() | P);
    }
  }

  private newTable(): number {
    const p = this.alloc();
    this.pages.push(p);
    return p;
  }

  /** Host address of the next-level table named by the entry at `ea`, creating it if `create`. */
  private next(ea: number, create: boolean): number {
    const lo = this.mem.read32(ea);
    if (lo & P) return (lo & ~0xfff) >>> 0;
    if (!create) return -1;
    const t = this.newTable();
    this.mem.write32(ea, t | P | W | U);
    this.mem.write32(ea + 4, 0);
    return t;
  }

  /**
   * Host address of the leaf slot (PTE) for linear address `la`, creating the tables on the
   * way when `create` (else -1 when a table is missing). `la` is a 32-bit value for PAE roots,
   * a signed canonical number for 4-level roots.
   */
  leafSlot(la: number, create: boolean): number {
    const a = this.format === 'pae' ? la >>> 0 : u48(la);
    let t = this.cr3;
    if (this.format === 'pae') {
      t = (this.mem.read32(t + 8 * Math.floor(a / 2 ** 30)) & ~0xfff) >>> 0;
    } else {
      t = this.next(t + 8 * (Math.floor(a / 2 ** 39) % 512), create);
      if (t < 0) return -1;
      t = this.next(t + 8 * (Math.floor(a / 2 ** 30) % 512), create);
      if (t < 0) return -1;
    }
    t = this.next(t + 8 * (Math.floor(a / 2 ** 21) % 512), create);
    if (t < 0) return -1;
    return t + 8 * (Math.floor(a / 4096) % 512);
  }

  /** Release the tables to `release` (the root must no longer be in any vCPU's GUEST_CR3). */
  free(release: (page: number) => void): void {
    for (const p of this.pages) release(p);
    this.pages.length = 0;
    this.slots.clear();
  }
}
