/**
 * Write tracking for shadow paging: which guest paging-structure entries each shadow leaf was
 * derived from, and which shadow leaves map each guest frame (KVM's "rmap").
 *
 * A guest page that holds an entry some shadow leaf depends on is a *tracked* page: every
 * shadow mapping of it is read-only, so a guest write to it faults to L0, which then drops
 * exactly the shadow leaves derived from the entries that changed (shadow.ts). That is what
 * keeps every shadow root valid at all times, and therefore what makes the CR3-switch cache
 * correct: a root kept for a guest CR3 the guest left is still exact when it comes back.
 */
import type { ShadowRoot } from './shadow-tables.js';

/** What L0 knows about one present shadow leaf (keyed by the leaf's host address). */
export interface SlotInfo {
  root: ShadowRoot;
  /** The 4 KiB linear page it maps (signed number for the canonical upper half). */
  la: number;
  /** The guest frame (guest-physical >> 12) it maps. */
  gfn: number;
  /** Guest-physical addresses of the guest paging-structure entries it was derived from. */
  deps: number[];
  writable: boolean;
}

export class WriteTracker {
  readonly slots = new Map<number, SlotInfo>();
  /** gfn of a tracked page → entry gpa in it → slots derived from that entry. */
  private readonly pt = new Map<number, Map<number, Set<number>>>();
  /** gfn → slots mapping that frame. */
  private readonly rmap = new Map<number, Set<number>>();
  /** gfn → guest writes emulated since a shadow leaf was last derived from the page (flood detection). */
  readonly writes = new Map<number, number>();

  isTracked(gfn: number): boolean {
    return this.pt.has(gfn);
  }
  get trackedPages(): number {
    return this.pt.size;
  }

  /**
   * Record a new leaf. Returns the gfns that became tracked pages through it: the caller must
   * write-protect their existing mappings (`mappingsOf`).
   */
  add(slot: number, info: SlotInfo): number[] {
    const fresh: number[] = [];
    this.slots.set(slot, info);
    info.root.slots.add(slot);
    for (const e of info.deps) {
      const gfn = Math.floor(e / 4096);
      let page = this.pt.get(gfn);
      if (!page) {
        page = new Map();
        this.pt.set(gfn, page);
        fresh.push(gfn);
      }
      let s = page.get(e);
      if (!s) page.set(e, (s = new Set()));
      s.add(slot);
    }
    let m = this.rmap.get(info.gfn);
    if (!m) this.rmap.set(info.gfn, (m = new Set()));
    m.add(slot);
    return fresh;
  }

  /** Forget a leaf (the caller clears it in the shadow table and flushes the TLB). */
  remove(slot: number): SlotInfo | undefined {
    const info = this.slots.get(slot);
    if (!info) return undefined;
    this.slots.delete(slot);
    info.root.slots.delete(slot);
    for (const e of info.deps) {
      const gfn = Math.floor(e / 4096);
      const page = this.pt.get(gfn);
      const s = page?.get(e);
      if (!page || !s) continue;
      s.delete(slot);
      if (s.size === 0) page.delete(e);
      if (page.size === 0) {
        this.pt.delete(gfn);
        this.writes.delete(gfn);
      }
    }
    const m = this.rmap.get(info.gfn);
    if (m) {
      m.delete(slot);
      if (m.size === 0) this.rmap.delete(info.gfn);
    }
    return info;
  }

  /** Slots derived from the guest entry at `entryGpa`. */
  dependents(entryGpa: number): number[] {
    const s = this.pt.get(Math.floor(entryGpa / 4096))?.get(entryGpa);
    return s ? [...s] : [];
  }
  /** Slots derived from any entry in guest page `gfn`. */
  pageDependents(gfn: number): number[] {
    const page = this.pt.get(gfn);
    if (!page) return [];
    const out = new Set<number>();
    for (const s of page.values()) for (const x of s) out.add(x);
    return [...out];
  }
  /** Slots mapping guest frame `gfn`. */
  mappingsOf(gfn: number): number[] {
    const m = this.rmap.get(gfn);
    return m ? [...m] : [];
  }

  clear(): void {
    this.slots.clear();
    this.pt.clear();
    this.rmap.clear();
    this.writes.clear();
  }
}
