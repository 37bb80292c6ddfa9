/**
 * A direct-mapped TLB over 4 KiB linear pages, as flat typed arrays. Each entry
 * holds the physical page, the RAM offset of that page (-1 for MMIO), and a
 * permission mask precomputed from the page walk so that the hit path is one
 * compare and one AND. Large pages are cached 4 KiB at a time; INVLPG of a large
 * page therefore flushes everything when any large page is cached.
 *
 * Entries can be tagged later (VPID, PCID, EPTP): `flushNonGlobal` and `flushAll`
 * are the only invalidation primitives the architecture needs from us today.
 */
export const TLB_BITS = 12;
export const TLB_SIZE = 1 << TLB_BITS;
export const TLB_MASK = TLB_SIZE - 1;

/** Permission bits: which access kinds may hit this entry without a page walk. */
export const P_SR = 1, // supervisor read
  P_SW = 2, // supervisor write (and the dirty bit is already set)
  P_UR = 4,
  P_UW = 8,
  P_SX = 16,
  P_UX = 32;

export class Tlb {
  readonly tag = new Float64Array(TLB_SIZE).fill(NaN);
  readonly phys = new Float64Array(TLB_SIZE);
  readonly ram = new Float64Array(TLB_SIZE);
  readonly perm = new Uint8Array(TLB_SIZE);
  readonly global = new Uint8Array(TLB_SIZE);
  /** Number of large-page fills since the last full flush. */
  largeFills = 0;
  /** Called on every invalidation (the CPU drops its fetch shortcut). */
  onFlush: () => void = () => {};

  fill(vpn: number, phys: number, ramOff: number, perm: number, global: boolean, large: boolean): void {
    const idx = vpn & TLB_MASK;
    this.tag[idx] = vpn;
    this.phys[idx] = phys;
    this.ram[idx] = ramOff;
    this.perm[idx] = perm;
    this.global[idx] = global ? 1 : 0;
    if (large) this.largeFills++;
  }
  flushAll(): void {
    this.tag.fill(NaN);
    this.largeFills = 0;
    this.onFlush();
  }
  flushNonGlobal(): void {
    for (let i = 0; i < TLB_SIZE; i++) if (!this.global[i]) this.tag[i] = NaN;
    this.onFlush();
  }
  flushPage(vpn: number): void {
    if (this.largeFills) {
      this.flushAll();
      return;
    }
    const idx = vpn & TLB_MASK;
    if (this.tag[idx] === vpn) this.tag[idx] = NaN;
    this.onFlush();
  }
}
