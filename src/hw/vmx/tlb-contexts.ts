/**
 * TLBs tagged by VPID and EPTP (SDM 3C §28.3): each (VPID, EPTP) context has its
 * own TLB instance, so VM entries and exits switch TLBs instead of flushing them
 * when VPIDs are enabled. Linear mappings of the root are the context of VPID 0.
 * Without "enable VPID", entries and exits invalidate the VPID-0 mappings (§28.3.3.3).
 * INVVPID and INVEPT flush the contexts their type selects. Contexts are created on
 * demand; beyond MAX_CONTEXTS the oldest is dropped (dropping cached translations
 * is always allowed).
 */
import { Tlb } from '../mmu/tlb.js';

const MAX_CONTEXTS = 64;

interface Ctx {
  vpid: number;
  eptp: number;
  tlb: Tlb;
}

export class TlbContexts {
  private readonly ctx = new Map<string, Ctx>();
  constructor(private readonly root: Tlb) {}

  /** The TLB for guest mappings tagged (vpid, eptp); eptp = -1 without EPT. VPID 0 without EPT is the root. */
  get(vpid: number, eptp: number): Tlb {
    if (vpid === 0 && eptp < 0) return this.root;
    const key = `${vpid}:${eptp}`;
    let c = this.ctx.get(key);
    if (!c) {
      if (this.ctx.size >= MAX_CONTEXTS) {
        const first = this.ctx.keys().next().value as string;
        this.ctx.delete(first);
      }
      c = { vpid, eptp, tlb: new Tlb() };
      this.ctx.set(key, c);
    }
    return c.tlb;
  }
  /** INVVPID individual-address (type 0): one page in every context of `vpid`. */
  flushAddress(vpid: number, vpn: number): void {
    for (const c of this.ctx.values()) if (c.vpid === vpid) c.tlb.flushPage(vpn);
    if (vpid === 0) this.root.flushPage(vpn);
  }
  /** INVVPID single-context (1) and single-context-retaining-globals (3). */
  flushVpid(vpid: number, keepGlobals: boolean): void {
    for (const c of this.ctx.values()) {
      if (c.vpid !== vpid) continue;
      if (keepGlobals) c.tlb.flushNonGlobal();
      else c.tlb.flushAll();
    }
  }
  /** INVVPID all-context (2): every VPID except 0. */
  flushAllVpids(): void {
    for (const c of this.ctx.values()) if (c.vpid !== 0) c.tlb.flushAll();
  }
  /** INVEPT single-context (1): combined mappings of one EPTP; all-context (2): every EPTP. */
  flushEptp(eptp: number | undefined): void {
    for (const c of this.ctx.values())
      if (c.eptp >= 0 && (eptp === undefined || c.eptp === eptp)) c.tlb.flushAll();
  }
  /** VPID 0 mappings (root and guests without VPID), flushed on transitions without VPID. */
  flushVpid0(): void {
    this.root.flushAll();
    for (const c of this.ctx.values()) if (c.vpid === 0) c.tlb.flushAll();
  }
}
