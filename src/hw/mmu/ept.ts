/**
 * The EPT walker (SDM 3C §29.3): 4-level extended page tables translating
 * guest-physical to host-physical addresses, with R/W/X permissions (execute-only
 * when allowed), 2 MiB and 1 GiB pages, the accessed/dirty flags when EPTP[6] is
 * set, EPT misconfigurations (§29.3.3.1) and EPT violations (§29.3.3.2) with the
 * exit qualification of Table 28-7. Every memory reference is counted so the
 * cost model can charge the 2-D walk.
 */
import type { PhysMem } from './physmem.js';
import { MAXPHYADDR } from './paging.js';

const TWO32 = 4294967296;

/** Access kinds as the qualification encodes them. */
export const EPT_READ = 1,
  EPT_WRITE = 2,
  EPT_FETCH = 4;

/** Why a walk failed. */
export const EPT_OK = 0,
  EPT_VIOLATION = 1,
  EPT_MISCONFIG = 2;

export interface EptCaps {
  executeOnly: boolean;
  page1G: boolean;
  page2M: boolean;
  adFlags: boolean;
}

/** Result of the last walk (no allocation). */
export class EptResult {
  status = EPT_OK;
  hpa = 0;
  /** Exit qualification bits 0-5 for a violation (access and the combined permissions). */
  qual = 0;
  /** Memory references the walk made (for the cost model). */
  refs = 0;
}

/** Reserved high bits (above MAXPHYADDR, below bit 52) in the high word of an entry. */
const RSVD_HI = ((1 << (52 - 32)) - 1) & ~((1 << (MAXPHYADDR - 32)) - 1);

export class EptWalker {
  readonly r = new EptResult();
  constructor(
    private readonly mem: PhysMem,
    readonly caps: EptCaps,
  ) {}

  /**
   * Translate `gpa` for `access` (EPT_READ/EPT_WRITE/EPT_FETCH) under `eptp`
   * (a number: the EPTP as unsigned, exact below 2^53). Sets this.r.
   */
  walk(eptp: number, gpa: number, access: number): EptResult {
    const r = this.r;
    const mem = this.mem;
    r.status = EPT_OK;
    r.refs = 0;
    const ad = this.caps.adFlags && eptp % 128 >= 64;
    let table = Math.floor(eptp / 4096) * 4096;
    let perm = 7; // R|W|X combined over the levels
    let level = 4;
    for (;;) {
      const shift = 12 + 9 * (level - 1);
      const idx = Math.floor(gpa / 2 ** shift) % 512;
      const ea = table + idx * 8;
      const lo = mem.read32(ea),
        hi = mem.read32(ea + 4);
      r.refs++;
      const rwx = lo & 7;
      if (rwx === 0) {
        // Not present: violation, with the permissions of the entries walked so far being irrelevant (0).
        r.status = EPT_VIOLATION;
        r.qual = access;
        return r;
      }
      // Misconfigurations: write-only / write-execute without read, execute-only when unsupported,
      // reserved bits, bad memory types (§29.3.3.1).
      if ((rwx & 3) === 2 || (rwx === 4 && !this.caps.executeOnly) || hi & RSVD_HI) return this.misconfig();
      const large = (lo & 0x80) !== 0;
      const leaf = level === 1 || large;
      if (level === 4 && lo & 0xf8) return this.misconfig(); // bits 7:3 reserved in a PML4E
      if (large && (level === 4 || (level === 3 && !this.caps.page1G) || (level === 2 && !this.caps.page2M)))
        return this.misconfig();
      if (!leaf && lo & 0x78) return this.misconfig(); // bits 6:3 reserved in non-leaf entries
      if (leaf) {
        const mt = (lo >> 3) & 7;
        if (mt === 2 || mt === 3 || mt === 7) return this.misconfig();
        if (level === 3 && lo & 0x3ffff000) return this.misconfig(); // bits 29:12 reserved in a 1 GiB entry
        if (level === 2 && lo & 0x1ff000) return this.misconfig(); // bits 20:12 reserved in a 2 MiB entry
      }
      perm &= rwx;
      if (ad && !(lo & 0x100)) mem.write32(ea, lo | 0x100);
      const frame = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
      if (leaf) {
        const size = 2 ** shift;
        const base = frame - (frame % size);
        if ((access & perm) !== access) {
          r.status = EPT_VIOLATION;
          r.qual = access | (perm << 3);
          return r;
        }
        if (ad && access & EPT_WRITE && !(lo & 0x200)) mem.write32(ea, mem.read32(ea) | 0x200 | 0x100);
        r.hpa = base + (gpa % size);
        r.qual = perm << 3;
        return r;
      }
      table = frame;
      level--;
    }
  }
  private misconfig(): EptResult {
    this.r.status = EPT_MISCONFIG;
    this.r.qual = 0;
    return this.r;
  }
}
