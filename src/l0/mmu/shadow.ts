/**
 * Shadow paging for a VM (`--mmu shadow`, and automatically when the machine has no EPT): L0
 * runs the guest on page tables of its own — shadow roots — built from the guest's tables, as
 * KVM did before EPT. The guest's CR3 is kept by L0 (vcpu.guestCr3); GUEST_CR3 holds the root
 * of the shadow for the guest's current (CR3, paging mode).
 *
 * - Filling: every guest #PF exits (exception bitmap bit 14). L0 walks the guest's tables
 *   (guest-walk.ts, setting accessed/dirty as the hardware would); a guest fault is reflected
 *   with its error code and CR2, otherwise one 4 KiB shadow leaf is built (`fill`).
 * - Rights: U/S, NX as the guest's walk says; R/W only once the guest's dirty flag is set (so
 *   the first write faults to L0, which sets D, SDM 3A §4.8) and never for a tracked page.
 *   CR0.WP=0 (supervisor writes ignore R/W, §4.6) is virtualized the way KVM did it: the
 *   hardware always runs with WP=1, and a supervisor write to a guest-read-only page gets a
 *   writable, supervisor-only leaf (a later user access faults and rebuilds it).
 * - Write tracking (shadow-track.ts): every guest page holding an entry a leaf was derived from
 *   is mapped read-only in every root. A guest write to it faults; L0 lets that one instruction
 *   run with the page writable under the monitor trap flag (SDM 3C §25.5.2), then compares the
 *   page with a snapshot and drops exactly the leaves derived from the entries that changed
 *   (`ptWrite`/`endPtWrites`). A page written again and again without being walked in between
 *   stops being a page table for L0 ("write flooding", as KVM): its dependent leaves are dropped
 *   and it is mapped writable.
 * - Because tracked writes keep every root exact, roots stay valid when the guest leaves them:
 *   the CR3-switch cache keeps the last ROOT_CACHE roots by (guest CR3, mode) (`activate`), and
 *   INVLPG only flushes the hardware TLB. Dropped leaves are flushed with INVVPID.
 * - Memory: shadow tables come from L0's page pool; past SHADOW_PAGE_CAP pages per VM, roots no
 *   vCPU uses are freed, then the leaves of the roots in use are dropped (`reclaim`).
 */
import { VMCS_FIELD as F, VMX_BITS as B } from '../hw.js';
import type { Vm } from '../vm.js';
import type { Vcpu } from '../vmm/vcpu.js';
import { L0_COST } from '../cost.js';
import {
  guestPaging,
  pagingMode,
  type GuestAccess,
  type GuestPaging,
  type GuestWalkOk,
} from './guest-walk.js';
import { ShadowRoot, ShadowPages, shadowLeaf, readOnlyLeaf } from './shadow-tables.js';
import { WriteTracker } from './shadow-track.js';

/** Shadow roots kept for recently used guest CR3s (KVM kept 4 "previous roots"; we keep a few more). */
export const ROOT_CACHE = 8;
/** Shadow page-table pages a VM may hold before L0 reclaims (4 KiB each: 8 MiB). */
export const SHADOW_PAGE_CAP = 2048;
/** Emulated writes to one guest page-table page, without a walk through it, before L0 unprotects it. */
export const FLOOD_WRITES = 4;

const W = 2,
  D = 0x40;

/** What the shadow MMU did, for tests and reports. */
export interface ShadowCounters {
  fills: number;
  reflected: number;
  ptWrites: number;
  floods: number;
  zaps: number;
  rootHits: number;
  rootMisses: number;
  reclaims: number;
}

/** A page-table write being single-stepped: the page, its content before, the writable leaf. */
interface Step {
  gpa: number;
  hpa: number;
  before: Uint8Array;
  slot: number;
}

/**
 * The shadow root a guest paging state needs: guest paging off (one identity root), or the
 * guest's root table plus every control bit that changes what the guest's tables mean or the
 * rights L0 derives from them (CR0.WP, CR4.PSE, EFER.NXE, CR4.SMEP/SMAP). PCID bits are not
 * part of the key: the shadow is exact, so one root serves every PCID of a guest root.
 */
export function rootKey(p: GuestPaging): string {
  const mode = pagingMode(p);
  if (mode === 'off') return 'off';
  const base =
    mode === '32-bit'
      ? p.cr3 & 0xfffff000n
      : mode === 'pae'
        ? p.cr3 & 0xffffffe0n
        : p.cr3 & 0x000ffffffffff000n;
  const bit = (v: bigint, b: bigint): string => ((v & b) !== 0n ? '1' : '0');
  const flags =
    bit(p.cr0, 0x10000n) +
    bit(p.cr4, 0x10n) +
    bit(p.efer, 0x800n) +
    bit(p.cr4, 1n << 20n) +
    bit(p.cr4, 1n << 21n);
  return `${mode}:${base.toString(16)}:${flags}`;
}

const mmus = new WeakMap<Vm, ShadowMmu>();
/** The shadow MMU of a VM (created on first use). */
export function shadowOf(vm: Vm): ShadowMmu {
  let m = mmus.get(vm);
  if (!m) mmus.set(vm, (m = new ShadowMmu(vm)));
  return m;
}

export class ShadowMmu {
  readonly tracker = new WriteTracker();
  readonly counters: ShadowCounters = {
    fills: 0,
    reflected: 0,
    ptWrites: 0,
    floods: 0,
    zaps: 0,
    rootHits: 0,
    rootMisses: 0,
    reclaims: 0,
  };
  /** Cached roots, least recently used first. */
  private readonly roots: ShadowRoot[] = [];
  private readonly active = new Map<Vcpu, ShadowRoot>();
  private readonly steps = new Map<Vcpu, Step[]>();
  /** Shadow table pages held from L0's pool. */
  private readonly pool: ShadowPages;
  get pagesInUse(): number {
    return this.pool.inUse;
  }
  pageCap = SHADOW_PAGE_CAP;
  /**
   * Called with each guest frame that becomes a tracked page table (its mappings in this MMU's
   * roots were just made read-only): spt02 (mmu/spt02.ts) write-protects its own mappings of it.
   */
  readonly onPageTable: ((gfn: number) => void)[] = [];
  /**
   * Dirty logging (for spt02, mmu/spt02.ts): the write epoch of each logged guest frame, which
   * changes whenever the guest may have written the frame since the previous `writeEpoch`. The
   * writable leaves of a logged frame are built with the dirty flag clear, so the processor sets
   * it at the guest's first write (SDM 3A §4.8) without any exit; `writeEpoch` reads and clears
   * those flags. Writes the flags cannot show — a leaf dropped or rebuilt after a write, L0's own
   * writes, single-stepped page-table writes — bump the epoch where they happen.
   */
  private readonly logged = new Map<number, number>();
  /** Writable mappings of guest frames outside this MMU's roots (spt02's leaves): such a frame counts as written. */
  readonly foreignWritable = new Map<number, number>();

  constructor(readonly vm: Vm) {
    this.pool = new ShadowPages(vm);
  }

  private get mem() {
    return this.vm.host.mem;
  }

  /** The root a vCPU runs on, if any. */
  rootOf(vcpu: Vcpu): ShadowRoot | undefined {
    return this.active.get(vcpu);
  }
  get cachedRoots(): number {
    return this.roots.length;
  }

  /**
   * Make `vcpu` run on the shadow root for guest paging state `p` (from the cache or new) and
   * flush its TLB, as the guest's MOV to CR3 / CR0 / CR4 would. Returns the root's address for
   * GUEST_CR3; `activate` also writes it into the current VMCS.
   */
  activateWith(vcpu: Vcpu, p: GuestPaging): number {
    const key = rootKey(p);
    let r = this.active.get(vcpu);
    if (!r || r.key !== key) {
      const k = this.roots.findIndex((x) => x.key === key);
      if (k >= 0) {
        r = this.roots[k];
        this.roots.splice(k, 1);
        this.counters.rootHits++;
      } else {
        if (this.pagesInUse >= this.pageCap) this.reclaim();
        r = new ShadowRoot(key, p.efer & 0x400n ? '4-level' : 'pae', this.mem, this.pool.alloc);
        this.counters.rootMisses++;
      }
      this.roots.push(r);
      this.active.set(vcpu, r);
      this.evictOld();
    } else {
      // Keep the LRU order: the root in use is the most recent.
      const k = this.roots.indexOf(r);
      if (k >= 0 && k !== this.roots.length - 1) {
        this.roots.splice(k, 1);
        this.roots.push(r);
      }
    }
    this.flushVcpu(vcpu);
    return r.cr3;
  }
  /** `activateWith` the vCPU's current guest paging state, writing GUEST_CR3 (the vCPU's VMCS is current). */
  activate(vcpu: Vcpu): void {
    const cr3 = this.activateWith(vcpu, guestPaging(vcpu));
    this.vm.host.vmwrite(F.GUEST_CR3, cr3);
  }

  private inUse(r: ShadowRoot): boolean {
    for (const x of this.active.values()) if (x === r) return true;
    return false;
  }
  private evictOld(): void {
    for (let k = 0; this.roots.length > ROOT_CACHE && k < this.roots.length;) {
      const r = this.roots[k];
      if (this.inUse(r)) k++;
      else this.dropRoot(r);
    }
  }
  /** Free a root no vCPU uses (its translations were flushed when the vCPUs left it). */
  private dropRoot(r: ShadowRoot): void {
    for (const s of [...r.slots]) {
      const info = this.tracker.remove(s);
      if (info) this.retireLeaf(s, info.gfn);
    }
    const k = this.roots.indexOf(r);
    if (k >= 0) this.roots.splice(k, 1);
    r.free(this.pool.release);
  }
  /** Over the page cap: free every root not in use, then drop the leaves of those in use. */
  reclaim(): void {
    this.counters.reclaims++;
    for (const r of [...this.roots]) if (!this.inUse(r)) this.dropRoot(r);
    if (this.pagesInUse >= (this.pageCap * 3) / 4)
      for (const r of this.roots) for (const s of [...r.slots]) this.zap(s);
  }

  /**
   * Build the shadow leaf for linear page `la` (4 KiB aligned; signed for the upper half) from
   * a successful guest walk done for `access`, in the vCPU's current root.
   */
  fill(
    vcpu: Vcpu,
    la: number,
    w: GuestWalkOk,
    access: GuestAccess,
    p: GuestPaging,
    forWrite = false,
  ): number {
    const root = this.active.get(vcpu);
    if (!root) throw new Error('L0: shadow fill without an active root');
    if (this.pagesInUse >= this.pageCap) this.reclaim();
    const hpa = this.vm.gpaToHpa(w.frameGpa);
    if (hpa < 0) throw new Error('L0: shadow fill of a frame outside the VM RAM');
    const slot = root.leafSlot(la, true);
    const old = this.tracker.remove(slot);
    const had = old !== undefined;
    if (old) this.retireLeaf(slot, old.gfn);
    const gfn = w.frameGpa / 4096;
    const info = { root, la, gfn, deps: w.entries, writable: false };
    const fresh = this.tracker.add(slot, info);
    for (const g of fresh) {
      this.writeProtect(g, slot);
      for (const f of this.onPageTable) f(g);
    }
    // A walk through a page (other than for a write to it) shows it is in use as a page table.
    if (!forWrite) for (const e of w.entries) this.tracker.writes.delete(Math.floor(e / 4096));
    let user = w.user;
    let writable = w.writable && w.dirty;
    if (!(p.cr0 & 0x10000n) && !w.writable && access.write && !access.user) {
      // CR0.WP=0: a supervisor write to a read-only page is allowed (§4.6). Map it writable
      // for the supervisor only; a user access then faults and gets the guest's own rights.
      writable = w.dirty;
      user = false;
    }
    if (this.tracker.isTracked(gfn)) writable = false;
    info.writable = writable;
    const [lo, hi] = shadowLeaf(hpa, { writable, user, nx: w.nx });
    this.mem.write32(slot, this.logged.has(gfn) ? lo & ~D : lo);
    this.mem.write32(slot + 4, hi);
    if (had) this.flushLa(la);
    this.counters.fills++;
    this.vm.host.charge(L0_COST.shadowEntry);
    return slot;
  }

  /** Make every writable mapping of guest frame `gfn` read-only (it became a page-table page). */
  private writeProtect(gfn: number, except: number): void {
    for (const s of this.tracker.mappingsOf(gfn)) {
      const info = this.tracker.slots.get(s)!;
      if (s === except || !info.writable) continue;
      info.writable = false;
      this.retireLeaf(s, gfn);
      this.mem.write32(s, readOnlyLeaf(this.mem.read32(s)));
      this.flushLa(info.la);
      this.vm.host.charge(L0_COST.shadowZap);
    }
  }

  /** Drop one shadow leaf. */
  zap(slot: number): void {
    const info = this.tracker.remove(slot);
    if (!info) return;
    this.retireLeaf(slot, info.gfn);
    this.mem.write32(slot, 0);
    this.mem.write32(slot + 4, 0);
    this.flushLa(info.la);
    this.counters.zaps++;
    this.vm.host.charge(L0_COST.shadowZap);
  }
  /** The guest entry at `entryGpa` changed: drop the leaves derived from it. */
  entryChanged(entryGpa: number): void {
    for (const s of this.tracker.dependents(entryGpa)) this.zap(s);
  }

  /**
   * L0 itself wrote guest memory [gpa, gpa+len) (instruction emulation: MMIO reads into RAM,
   * INS, …): keep the shadow exact, as for a guest write. Anything in L0 that writes guest RAM
   * of a shadow-paged VM must call this (`noteGuestWrite`).
   */
  guestWrote(gpa: number, len: number): void {
    for (let g = Math.floor(gpa / 4096); g * 4096 < gpa + len; g++) this.wrote(g);
    for (let a = gpa - (gpa % 4); a < gpa + len; a += 4) {
      if (!this.tracker.isTracked(Math.floor(a / 4096))) {
        a = Math.floor(a / 4096) * 4096 + 4092; // skip the rest of an untracked page
        continue;
      }
      this.entryChanged(a);
      if (a % 8) this.entryChanged(a - 4);
    }
  }

  /**
   * A guest write to a tracked page-table page at linear page `la` that the guest's own walk
   * allows: let the instruction run with the page writable, single-stepped by the monitor trap
   * flag; `endPtWrites` then drops the leaves derived from what changed. A page written over
   * and over without being walked is no page table any more (FLOOD_WRITES): unprotected.
   */
  ptWrite(vcpu: Vcpu, la: number, w: GuestWalkOk, access: GuestAccess, p: GuestPaging): void {
    const gfn = w.frameGpa / 4096;
    const n = (this.tracker.writes.get(gfn) ?? 0) + 1;
    if (n > FLOOD_WRITES) {
      this.counters.floods++;
      this.unprotect(gfn);
      this.fill(vcpu, la, w, access, p, true);
      return;
    }
    this.tracker.writes.set(gfn, n);
    this.wrote(gfn); // the dirty flag set for the single step is cleared before anyone reads it
    const slot = this.fill(vcpu, la, w, access, p, true);
    const hpa = this.vm.gpaToHpa(w.frameGpa);
    const list = this.steps.get(vcpu) ?? [];
    list.push({ gpa: w.frameGpa, hpa, before: this.mem.u8.slice(hpa, hpa + 4096), slot });
    this.mem.write32(slot, this.mem.read32(slot) | W | D);
    this.flushLa(la);
    if (!this.steps.has(vcpu)) {
      this.steps.set(vcpu, list);
      const h = this.vm.host;
      h.vmwrite(
        F.CPU_BASED_VM_EXEC_CONTROL,
        (h.vmread(F.CPU_BASED_VM_EXEC_CONTROL) as bigint) | BigInt(B.CPU_MTF),
      );
    }
    this.counters.ptWrites++;
    this.vm.host.charge(L0_COST.ptWrite);
  }

  /**
   * The write epoch of guest frame `gfn` (dirty logging, see `logged`), logging it from now on:
   * it differs from the value of the previous call iff the guest may have written the frame in
   * between (through this MMU's leaves, or a writable mapping of spt02's).
   */
  writeEpoch(gfn: number): number {
    const e = this.logged.get(gfn);
    let written = false;
    for (const s of this.tracker.mappingsOf(gfn)) {
      const lo = this.mem.read32(s);
      if (!(lo & D)) continue;
      // The processor set it (or the leaf predates logging): clear it and its TLB copy.
      written = true;
      this.mem.write32(s, lo & ~D);
      this.flushLa(this.tracker.slots.get(s)!.la);
    }
    if (e === undefined) {
      this.logged.set(gfn, 0);
      return 0;
    }
    if (!written && !this.foreignWritable.get(gfn)) return e;
    this.logged.set(gfn, e + 1);
    return e + 1;
  }
  /** The guest may have written logged frame `gfn` in a way no dirty flag shows. */
  private wrote(gfn: number): void {
    const e = this.logged.get(gfn);
    if (e !== undefined) this.logged.set(gfn, e + 1);
  }
  /** A leaf mapping `gfn` is being cleared, rebuilt or write-protected: keep what its dirty flag says. */
  private retireLeaf(slot: number, gfn: number): void {
    if (this.mem.read32(slot) & D) this.wrote(gfn);
  }

  /**
   * Stop treating guest frame `gfn` as a page table: drop the leaves derived from its entries,
   * so that it is no longer tracked and may be mapped writable (write flooding; a write to it
   * from L2 under shadow-on-shadow, mmu/spt02.ts). A later walk through it tracks it again.
   */
  unprotect(gfn: number): void {
    for (const s of this.tracker.pageDependents(gfn)) this.zap(s);
    this.tracker.writes.delete(gfn);
  }

  /** True while `vcpu` single-steps a page-table write. */
  stepping(vcpu: Vcpu): boolean {
    return this.steps.has(vcpu);
  }

  /**
   * End a single-stepped page-table write (the monitor-trap-flag exit): compare each page
   * with its snapshot, drop the leaves derived from changed entries, protect the page again.
   * Returns false when `vcpu` was not stepping.
   */
  endPtWrites(vcpu: Vcpu): boolean {
    const list = this.steps.get(vcpu);
    if (!list) return false;
    this.steps.delete(vcpu);
    const h = this.vm.host;
    h.vmwrite(
      F.CPU_BASED_VM_EXEC_CONTROL,
      (h.vmread(F.CPU_BASED_VM_EXEC_CONTROL) as bigint) & ~BigInt(B.CPU_MTF),
    );
    const dv = this.mem.dv;
    for (const st of list) {
      const b = new DataView(st.before.buffer, st.before.byteOffset, 4096);
      for (let o = 0; o < 4096; o += 4) {
        if (dv.getInt32(st.hpa + o, true) === b.getInt32(o, true)) continue;
        this.entryChanged(st.gpa + o);
        if (o % 8) this.entryChanged(st.gpa + o - 4);
      }
      const info = this.tracker.slots.get(st.slot);
      if (info && !info.writable) {
        this.mem.write32(st.slot, readOnlyLeaf(this.mem.read32(st.slot)));
        this.flushLa(info.la);
      }
    }
    return true;
  }

  /** INVLPG by the guest: the shadow is exact, so only the hardware TLB needs the flush. */
  invlpg(vcpu: Vcpu, la: number): void {
    const vpid = this.vm.vpid(vcpu.index);
    this.vm.host.invvpid(0, vpid, la);
  }

  /** Flush every translation of a vCPU's VPID (MOV to CR3/CR4, INVPCID). */
  flushVcpu(vcpu: Vcpu): void {
    this.vm.host.invvpid(1, this.vm.vpid(vcpu.index));
  }
  /** Flush linear page `la` on every vCPU of the VM (a leaf changed or went away). */
  private flushLa(la: number): void {
    for (const v of this.vm.vcpus) this.vm.host.invvpid(0, this.vm.vpid(v.index), la);
  }
}

/** Keep a shadow-paged VM's shadow exact after L0 wrote its guest RAM (no-op under EPT). */
export function noteGuestWrite(vm: Vm, gpa: number, len: number): void {
  if (vm.mmu === 'shadow') mmus.get(vm)?.guestWrote(gpa, len);
}

/** The shadow root a vCPU starts on (guest paging off, as a multiboot loader leaves a kernel): its GUEST_CR3. */
export function bootShadowRoot(vm: Vm, vcpu: Vcpu): number {
  vcpu.guestCr3 = 0n;
  vcpu.guestEfer = 0n;
  return shadowOf(vm).activateWith(vcpu, { cr0: 0x11n, cr3: 0n, cr4: 0n, efer: 0n });
}
