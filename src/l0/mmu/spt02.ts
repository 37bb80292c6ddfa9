/**
 * spt02: L0's shadow of L2's page tables under shadow-on-shadow (L0 without EPT shadows L1,
 * L1 without EPT shadows L2). L1 runs L2 on page tables of its own — vmcs12's GUEST_CR3, in
 * L1-physical memory, mapping L2-linear to L1-physical addresses —; the hardware cannot walk
 * them (L1-physical is not host-physical), so L0 runs L2 on vmcs02 with GUEST_CR3 = an spt02
 * root: the same translations, L1-physical frames replaced by host frames of L1's RAM. It is
 * the paper's third MMU mode (Ben-Yehuda et al., OSDI 2010, §3.3) and KVM's nested shadow MMU.
 *
 * The tables are the shadow paging code's (shadow-tables.ts: PAE or 4-level format, 4 KiB
 * leaves built from a software walk, rights from `shadowLeaf`), filled on demand from #PF exits
 * of L2 (nested/spt02-exits.ts) by walking L1's tables with the shadow walker (guest-walk.ts,
 * which sets accessed/dirty flags in L1's tables as the processor would, SDM 3A §4.8). The
 * rights follow the same rules as spt01 (shadow.ts): R/W only once L1's leaf is dirty, CR0.WP=0
 * as a writable supervisor-only leaf. Only L1 RAM is ever mapped; anything else L1's tables
 * name is L1's MMIO and emulated (never mapped into L2).
 *
 * Coherence: spt02 behaves as a TLB of L2, kept the way the architecture lets a TLB be kept
 * (SDM 3A §4.10, SDM 3C §28.3.3): L1's writes to its tables for L2 are not trapped; instead spt02
 * is brought back in line with L1's tables at the points where the architecture makes L1 or L2
 * invalidate — the "flush points":
 *  - every VM entry and VM exit when vmcs12 does not enable VPID (they invalidate the linear
 *    translations of VPID 0000H, SDM 3C §28.3.3.3), which is what tvisor relies on; with VPID,
 *    L1's INVVPID;
 *  - L2's own MOV to CR3, INVPCID, and changes of the paging controls (CR0.WP, CR4.PSE/PAE/PGE/
 *    PCIDE/SMEP/SMAP, EFER.NXE) that L0 handles on L1's behalf; INVLPG drops that one page.
 * Each leaf remembers the L1 entries it was derived from and their values (`Page02`); at a
 * flush point (`flush`) every root becomes stale, and a stale root is resynchronized when it is
 * next used (`activate`): the remembered entries are compared with L1's memory and the leaves
 * derived from a changed one are dropped (KVM's "unsync" shadow pages, synced at the guest's
 * TLB flush). Only the pages of L1's tables that L1 may have written since they were last
 * checked are compared: spt01 logs L1's writes to them in the dirty flags of its own leaves,
 * which the processor sets without an exit (`ShadowMmu.writeEpoch`), so a resync costs a check
 * per page plus a comparison per entry of the pages L1 wrote, not one per leaf. What survives is
 * exactly what a fresh walk would build now, so roots are kept across nested entries, and a
 * root per L2 CR3 and paging mode is cached as for spt01 (ROOT_CACHE). Between flush points
 * spt02 may be more up to date than L1's TLB model requires (a leaf is rebuilt on every #PF
 * exit), never less: a processor may drop TLB entries at any time.
 *
 * L1's own page tables (the pages spt01 write-protects, shadow-track.ts) stay write-protected
 * under L2 too: an spt02 leaf mapping one is read-only, and when spt01 starts tracking a frame
 * (`ShadowMmu.onPageTable`) spt02 write-protects its mappings of it. A write by L2 that L1's
 * tables allow makes spt01 stop tracking that frame (`ShadowMmu.unprotect`) before spt02 maps
 * it writable.
 */
import type { Vm } from '../vm.js';
import { L0_COST } from '../cost.js';
import type { GuestAccess, GuestPaging, GuestWalkOk } from './guest-walk.js';
import { ShadowRoot, ShadowPages, shadowLeaf, readOnlyLeaf } from './shadow-tables.js';
import { WriteTracker, type SlotInfo } from './shadow-track.js';
import { ROOT_CACHE, rootKey, shadowOf, type ShadowMmu } from './shadow.js';

/** spt02 table pages one vCPU may hold before L0 reclaims (4 KiB each: 4 MiB). */
export const SPT02_PAGE_CAP = 1024;

/** What spt02 did, for tests and reports. */
export interface Spt02Counters {
  /** Leaves built from a walk of L1's tables. */
  fills: number;
  /** Flush points (entries/exits without VPID, INVVPID, L2's CR3 loads, INVPCID, mode changes). */
  flushes: number;
  /** Stale roots resynchronized; L1 table pages checked, pages L1 had written, entries compared, leaves dropped. */
  syncs: number;
  syncedPages: number;
  writtenPages: number;
  syncedEntries: number;
  syncDrops: number;
  /** Leaves dropped for INVLPG. */
  invlpgs: number;
  rootHits: number;
  rootMisses: number;
  reclaims: number;
}

/** What an spt02 root remembers of one page of L1's tables. */
interface Page02 {
  /** spt01's write epoch of the page when its entries below were last known current. */
  epoch: number;
  /** L1-physical address of each entry some leaf came from → [low, high] dword then. */
  entries: Map<number, [number, number]>;
}

/** One spt02 root: the shadow tables for one (L2 CR3, paging mode), and what its leaves came from. */
interface Root02 {
  shadow: ShadowRoot;
  /** Leaves ↔ the L1 entries they were derived from; L1 frames ↔ the leaves mapping them. */
  tracker: WriteTracker;
  /** The pages of L1's tables the leaves came from, by frame number. */
  pages: Map<number, Page02>;
  /** The flush generation this root was last resynchronized at. */
  synced: number;
}

export class Spt02 {
  readonly counters: Spt02Counters = {
    fills: 0,
    flushes: 0,
    syncs: 0,
    syncedPages: 0,
    writtenPages: 0,
    syncedEntries: 0,
    syncDrops: 0,
    invlpgs: 0,
    rootHits: 0,
    rootMisses: 0,
    reclaims: 0,
  };
  /** Cached roots, least recently used first. */
  private readonly roots: Root02[] = [];
  private active: Root02 | undefined;
  /** Incremented at every flush point: a root whose `synced` differs is stale. */
  private gen = 1;
  private readonly pool: ShadowPages;
  get pagesInUse(): number {
    return this.pool.inUse;
  }
  pageCap = SPT02_PAGE_CAP;

  constructor(
    readonly vm: Vm,
    /** The VPID L2 runs with (vpid02): the hardware TLB entries spt02 must flush. */
    readonly vpid: number,
  ) {
    this.pool = new ShadowPages(vm);
    this.sm.onPageTable.push((gfn) => this.writeProtect(gfn));
  }

  /** L0's shadow MMU of L1 (spt01): its write protection and dirty logging of L1's frames. */
  private get sm(): ShadowMmu {
    return shadowOf(this.vm);
  }

  get cachedRoots(): number {
    return this.roots.length;
  }
  /** Leaves of every cached root. */
  get leaves(): number {
    let n = 0;
    for (const r of this.roots) n += r.tracker.slots.size;
    return n;
  }

  /** An architectural flush point of L2's translations: every root must be resynchronized before use. */
  flush(): void {
    this.gen++;
    this.counters.flushes++;
    this.vm.host.invvpid(1, this.vpid);
  }

  /**
   * The root for L2 paging state `p` (cached or new), resynchronized with L1's tables if a flush
   * point passed since it was last used. Returns its address for vmcs02's GUEST_CR3.
   */
  activate(p: GuestPaging): number {
    const key = rootKey(p);
    let r = this.active;
    if (!r || r.shadow.key !== key) {
      const k = this.roots.findIndex((x) => x.shadow.key === key);
      if (k >= 0) {
        r = this.roots.splice(k, 1)[0];
        this.counters.rootHits++;
      } else {
        if (this.pagesInUse >= this.pageCap) this.reclaim();
        r = {
          shadow: new ShadowRoot(key, p.efer & 0x400n ? '4-level' : 'pae', this.vm.host.mem, this.pool.alloc),
          tracker: new WriteTracker(),
          pages: new Map(),
          synced: this.gen,
        };
        this.counters.rootMisses++;
      }
      this.roots.push(r);
      this.active = r;
      this.evictOld();
    } else {
      const k = this.roots.indexOf(r);
      if (k !== this.roots.length - 1) {
        this.roots.splice(k, 1);
        this.roots.push(r);
      }
    }
    if (r.synced !== this.gen) this.resync(r);
    return r.shadow.cr3;
  }

  private evictOld(): void {
    while (this.roots.length > ROOT_CACHE) {
      const k = this.roots.findIndex((r) => r !== this.active);
      this.dropRoot(this.roots[k]);
    }
  }
  private dropRoot(r: Root02): void {
    const k = this.roots.indexOf(r);
    if (k >= 0) this.roots.splice(k, 1);
    if (r === this.active) this.active = undefined;
    for (const info of r.tracker.slots.values()) if (info.writable) this.foreign(info.gfn, -1);
    r.tracker.clear();
    r.shadow.free(this.pool.release);
  }
  /**
   * Over the page cap: free every root but the active one, then the active one too if that is
   * not enough (the caller activates a fresh root and reloads GUEST_CR3).
   */
  private reclaim(): void {
    this.counters.reclaims++;
    for (const r of [...this.roots]) if (r !== this.active) this.dropRoot(r);
    if (this.active && this.pagesInUse >= (this.pageCap * 3) / 4) {
      this.dropRoot(this.active);
      this.vm.host.invvpid(1, this.vpid);
    }
  }

  /** A writable spt02 mapping of L1 frame `gfn` appears (+1) or goes (-1): spt01 counts it as written. */
  private foreign(gfn: number, d: 1 | -1): void {
    const m = this.sm.foreignWritable;
    const n = (m.get(gfn) ?? 0) + d;
    if (n > 0) m.set(gfn, n);
    else m.delete(gfn);
  }

  /** The current value of L1's entry at `gpa` ([-1, -1] outside L1's RAM). */
  private entryValue(gpa: number, size: number): [number, number] {
    const hpa = this.vm.gpaToHpa(gpa);
    if (hpa < 0) return [-1, -1];
    const mem = this.vm.host.mem;
    return [mem.read32(hpa), size === 8 ? mem.read32(hpa + 4) : 0];
  }

  /**
   * Bring root `r` in line with L1's tables: each page of them its leaves came from that L1 may
   * have written since (spt01's dirty logging) has its remembered entries compared with L1's
   * memory; the leaves derived from a changed entry are dropped.
   */
  private resync(r: Root02): void {
    this.counters.syncs++;
    let n = 0;
    for (const [gfn, pg] of r.pages) {
      n++;
      this.syncPage(r, gfn, pg);
    }
    this.counters.syncedPages += n;
    this.vm.host.charge(n * L0_COST.shadowSyncEntry);
    r.synced = this.gen;
  }
  /** `resync` for one page of L1's tables (whose write epoch may not have moved). */
  private syncPage(r: Root02, gfn: number, pg: Page02): void {
    const epoch = this.sm.writeEpoch(gfn);
    if (epoch === pg.epoch) return;
    pg.epoch = epoch;
    this.counters.writtenPages++;
    const size = r.shadow.key.startsWith('32-bit') ? 4 : 8;
    let n = 0;
    for (const [e, [lo, hi]] of pg.entries) {
      n++;
      const [clo, chi] = this.entryValue(e, size);
      if (clo === lo && chi === hi) continue;
      pg.entries.delete(e);
      for (const s of r.tracker.dependents(e)) {
        this.zap(r, s);
        this.counters.syncDrops++;
      }
    }
    if (pg.entries.size === 0) r.pages.delete(gfn);
    this.counters.syncedEntries += n;
    this.vm.host.charge(n * L0_COST.shadowSyncEntry);
  }

  /** Forget leaf `slot` of root `r` (the caller clears or rewrites it). */
  private forget(r: Root02, slot: number): SlotInfo | undefined {
    const info = r.tracker.remove(slot);
    if (info?.writable) this.foreign(info.gfn, -1);
    return info;
  }
  /** Drop one leaf of root `r`, and forget the entries no other leaf came from. */
  private zap(r: Root02, slot: number): void {
    const info = this.forget(r, slot);
    if (!info) return;
    const mem = this.vm.host.mem;
    mem.write32(slot, 0);
    mem.write32(slot + 4, 0);
    this.vm.host.invvpid(0, this.vpid, info.la);
    this.vm.host.charge(L0_COST.shadowZap);
    for (const e of info.deps) {
      if (r.tracker.dependents(e).length) continue;
      const gfn = Math.floor(e / 4096);
      const pg = r.pages.get(gfn);
      pg?.entries.delete(e);
      if (pg?.entries.size === 0) r.pages.delete(gfn);
    }
  }

  /**
   * Build the leaf for L2-linear page `la` (4 KiB aligned; signed for the canonical upper half)
   * in the active root, from a successful walk `w` of L1's tables for `access` under `p`. The
   * frame must be L1 RAM. Returns the active root's address when a reclaim replaced it (the
   * caller reloads GUEST_CR3), else undefined.
   */
  fill(la: number, w: GuestWalkOk, access: GuestAccess, p: GuestPaging): number | undefined {
    let newRoot: number | undefined;
    if (this.pagesInUse >= this.pageCap) {
      this.reclaim();
      if (!this.active) newRoot = this.activate(p);
    }
    const r = this.active;
    if (!r) throw new Error('L0: spt02 fill without an active root');
    const hpa = this.vm.gpaToHpa(w.frameGpa);
    if (hpa < 0) throw new Error('L0: spt02 fill of a frame outside L1 RAM');
    // Every leaf agrees with the remembered value of each entry it came from. A page of L1's
    // tables written since it was last checked is checked first (its epoch then starts anew);
    // an entry that differs anyway (this walk set its accessed or dirty flag) takes the older
    // leaves with it.
    for (const e of w.entries) {
      const gfn = Math.floor(e / 4096);
      const pg = r.pages.get(gfn);
      if (pg) this.syncPage(r, gfn, pg);
      else r.pages.set(gfn, { epoch: this.sm.writeEpoch(gfn), entries: new Map() });
    }
    const now = w.entries.map((e) => this.entryValue(e, w.entrySize));
    w.entries.forEach((e, k) => {
      const old = r.pages.get(Math.floor(e / 4096))?.entries.get(e);
      if (old && (old[0] !== now[k][0] || old[1] !== now[k][1]))
        for (const s of r.tracker.dependents(e)) this.zap(r, s);
    });
    const slot = r.shadow.leafSlot(la, true);
    const had = this.forget(r, slot) !== undefined;
    const gfn = w.frameGpa / 4096;
    let user = w.user;
    let writable = w.writable && w.dirty;
    if (!(p.cr0 & 0x10000n) && !w.writable && access.write && !access.user) {
      // CR0.WP=0 (L1 lets L2 run without WP): the supervisor write gets a writable
      // supervisor-only leaf, as in shadow.ts (SDM 3A §4.6).
      writable = w.dirty;
      user = false;
    }
    if (writable && this.sm.tracker.isTracked(gfn)) {
      // One of L1's own page tables: a write by L2 that L1's tables allow ends its tracking.
      if (access.write) this.sm.unprotect(gfn);
      else writable = false;
    }
    r.tracker.add(slot, { root: r.shadow, la, gfn, deps: w.entries, writable });
    if (writable) this.foreign(gfn, 1);
    w.entries.forEach((e, k) => {
      const gfnE = Math.floor(e / 4096);
      let pg = r.pages.get(gfnE);
      // (a zap above may have emptied and removed the page)
      if (!pg) r.pages.set(gfnE, (pg = { epoch: this.sm.writeEpoch(gfnE), entries: new Map() }));
      pg.entries.set(e, now[k]);
    });
    const [lo, hi] = shadowLeaf(hpa, { writable, user, nx: w.nx });
    const mem = this.vm.host.mem;
    mem.write32(slot, lo);
    mem.write32(slot + 4, hi);
    if (had) this.vm.host.invvpid(0, this.vpid, la);
    this.counters.fills++;
    this.vm.host.charge(L0_COST.shadowEntry);
    return newRoot;
  }

  /** L2's INVLPG of linear page `la` (L0 handles it on L1's behalf): drop it from every root. */
  invlpg(la: number): void {
    for (const r of this.roots) {
      const slot = r.shadow.leafSlot(la, false);
      if (slot >= 0 && r.tracker.slots.has(slot)) {
        this.zap(r, slot);
        this.counters.invlpgs++;
      }
    }
    this.vm.host.invvpid(0, this.vpid, la);
  }

  /** spt01 started tracking L1 frame `gfn` (one of L1's page tables): no writable mapping of it in L2. */
  private writeProtect(gfn: number): void {
    const mem = this.vm.host.mem;
    for (const r of this.roots)
      for (const s of r.tracker.mappingsOf(gfn)) {
        const info = r.tracker.slots.get(s)!;
        if (!info.writable) continue;
        info.writable = false;
        this.foreign(gfn, -1);
        mem.write32(s, readOnlyLeaf(mem.read32(s)));
        this.vm.host.invvpid(0, this.vpid, info.la);
        this.vm.host.charge(L0_COST.shadowZap);
      }
  }
}
