/**
 * The page walker: 32-bit, PAE and 4-level paging (SDM Vol. 3A chapter 4), with
 * 4 KiB / 2 MiB / 4 MiB / 1 GiB pages, U/S, R/W, NX, CR0.WP, SMEP and SMAP, and the
 * accessed and dirty bits set as hardware sets them (§4.8). A successful walk fills
 * the TLB; a failed one raises #PF with the error code of §4.7.
 */
import { PhysMem } from './physmem.js';
import { Tlb, P_SR, P_SW, P_UR, P_UW, P_SX, P_UX } from './tlb.js';

export const ACC_READ = 0,
  ACC_WRITE = 1,
  ACC_EXEC = 2;

/** Physical-address width reported by CPUID.80000008H (bits). */
export const MAXPHYADDR = 40;
const TWO32 = 4294967296;

export interface PagingRegs {
  cr0: number;
  cr3: number;
  cr4: number;
  efer: number;
}

/** Raised through the CPU's fault mechanism; `raisePf` never returns. */
export type RaisePf = (la: number, errorCode: number) => never;

const PTE_P = 1,
  PTE_W = 2,
  PTE_U = 4,
  PTE_A = 0x20,
  PTE_D = 0x40,
  PTE_PS = 0x80,
  PTE_G = 0x100;

/** High-word mask of reserved physical-address bits (above MAXPHYADDR, below bit 52). */
const RSVD_HI = ((1 << (52 - 32)) - 1) & ~((1 << (MAXPHYADDR - 32)) - 1);

/**
 * EPT hook: translate a guest-physical address for an access (1 read, 2 write,
 * 4 fetch; paging-structure accesses pass walk=true). Raises the EPT exit itself.
 */
export type EptHook = (gpa: number, access: number, la: number, walk: boolean) => number;

export class PageWalker {
  /** Set while the CPU runs a guest with EPT (SDM 3C §29.3): every guest-physical address goes through it. */
  ept: EptHook | undefined = undefined;
  /** Combined EPT permissions (R=1, W=2, X=4) of the last final translation. */
  eptPerm = 7;
  constructor(
    private readonly mem: PhysMem,
    public tlb: Tlb,
  ) {}

  /** Host-physical address of a paging-structure entry at guest-physical `gpa`. */
  private tx(gpa: number, la: number, write: boolean): number {
    return this.ept ? this.ept(gpa, write ? 3 : 1, la, true) : gpa;
  }

  /**
   * Translate linear address `la` for an access of `kind` at user privilege `user`
   * (CPL 3 and not an implicit supervisor access). `acFlag` is RFLAGS.AC (for SMAP).
   * Returns the physical address and fills the TLB.
   */
  walk(r: PagingRegs, la: number, kind: number, user: boolean, acFlag: boolean, raisePf: RaisePf): number {
    const mem = this.mem;
    const cr0 = r.cr0,
      cr4 = r.cr4;
    const nxe = (r.efer & (1 << 11)) !== 0;
    const vpn = Math.floor(la / 4096);
    if ((cr0 & 0x80000000) === 0) {
      // Paging off: linear = physical (32-bit linear addresses), then EPT if active.
      let pa = (vpn * 4096) % TWO32;
      let perm = 0x3f;
      if (this.ept) {
        const off = la & 0xfff;
        pa = this.ept(pa + off, kind === ACC_WRITE ? 2 : kind === ACC_EXEC ? 4 : 1, la, false) - off;
        perm = eptMask(this.eptPerm, perm);
      }
      this.tlb.fill(vpn, pa, mem.ramOffset(pa), perm, false, false);
      return pa + (la & 0xfff);
    }
    const wp = (cr0 & 0x10000) !== 0;
    const smep = (cr4 & (1 << 20)) !== 0,
      smap = (cr4 & (1 << 21)) !== 0;
    const write = kind === ACC_WRITE,
      exec = kind === ACC_EXEC;
    // Error code bits: P=1 protection, W=2, U=4, RSVD=8, I/D=16.
    const ecBase = (write ? 2 : 0) | (user ? 4 : 0) | (exec && (nxe || smep) ? 16 : 0);

    let allowW = true,
      allowU = true,
      nx = false;
    // Entries on the path, to set their A bits once the access is known to be allowed.
    const pathAddr: number[] = [];
    const pathSize: number[] = [];
    let pageBase: number; // physical address of the page frame
    let pageSize: number;
    let leafAddr: number;
    let leafLo: number;
    let leafIs64: boolean;
    let global = false;

    const fault = (ec: number): never => raisePf(la, ec | ecBase);

    if ((cr4 & 0x20) === 0) {
      // 32-bit paging (§4.3).
      const la32 = la >>> 0;
      const pdeAddr = (r.cr3 & 0xfffff000) >>> 0;
      const pdeA = pdeAddr + ((la32 >>> 22) << 2);
      const pde = mem.read32(this.tx(pdeA, la, false));
      if (!(pde & PTE_P)) fault(0);
      allowW = (pde & PTE_W) !== 0;
      allowU = (pde & PTE_U) !== 0;
      pathAddr.push(pdeA);
      pathSize.push(4);
      if (pde & PTE_PS && cr4 & 0x10) {
        // 4 MiB page; PSE-36: bits 20:13 are physical bits 39:32; bit 21 reserved.
        if (pde & (1 << 21)) fault(1 | 8);
        pageBase = (pde & 0xffc00000) >>> 0;
        pageBase += ((pde >>> 13) & 0xff) * TWO32;
        pageSize = 1 << 22;
        leafAddr = pdeA;
        leafLo = pde;
        leafIs64 = false;
        global = (pde & PTE_G) !== 0 && (cr4 & 0x80) !== 0;
      } else {
        const pteA = ((pde & 0xfffff000) >>> 0) + (((la32 >>> 12) & 0x3ff) << 2);
        const pte = mem.read32(this.tx(pteA, la, false));
        if (!(pte & PTE_P)) fault(0);
        allowW = allowW && (pte & PTE_W) !== 0;
        allowU = allowU && (pte & PTE_U) !== 0;
        pageBase = (pte & 0xfffff000) >>> 0;
        pageSize = 4096;
        leafAddr = pteA;
        leafLo = pte;
        leafIs64 = false;
        global = (pte & PTE_G) !== 0 && (cr4 & 0x80) !== 0;
      }
    } else {
      const longMode = (r.efer & (1 << 10)) !== 0;
      let tableBase: number;
      let level: number;
      if (longMode) {
        tableBase = (Math.floor(r.cr3 / 4096) * 4096) % 2 ** MAXPHYADDR;
        level = 4;
      } else {
        // PAE (§4.4): 4 PDPTEs at CR3[31:5].
        const pdpteA = ((r.cr3 & 0xffffffe0) >>> 0) + (((la >>> 30) & 3) << 3);
        const hpdpte = this.tx(pdpteA, la, false);
        const lo = mem.read32(hpdpte),
          hi = mem.read32(hpdpte + 4);
        if (!(lo & PTE_P)) fault(0);
        if (lo & 0x1e6 || hi & RSVD_HI || hi & 0x80000000) fault(1 | 8);
        tableBase = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
        level = 2;
      }
      // la as an unsigned 48-bit number for index extraction.
      const ula = la < 0 ? la + 2 ** 48 : la;
      for (;;) {
        const shift = 12 + 9 * (level - 1);
        const idx = Math.floor(ula / 2 ** shift) & 511;
        const ea = tableBase + idx * 8;
        const hea = this.tx(ea, la, false);
        const lo = mem.read32(hea),
          hi = mem.read32(hea + 4);
        if (!(lo & PTE_P)) fault(0);
        // Reserved bits: above MAXPHYADDR, XD without NXE, PS at PML4 level (§4.5 Table 4-x).
        if (hi & RSVD_HI || (!nxe && hi & 0x80000000)) fault(1 | 8);
        if (level === 4 && lo & PTE_PS) fault(1 | 8);
        allowW = allowW && (lo & PTE_W) !== 0;
        allowU = allowU && (lo & PTE_U) !== 0;
        if (nxe && hi & 0x80000000) nx = true;
        const frame = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
        if (level === 1 || lo & PTE_PS) {
          if (level === 3 && lo & PTE_PS) {
            if (lo & 0x3fffe000) fault(1 | 8); // bits 29:13 reserved in a 1 GiB PDPTE
            pageSize = 1 << 30;
          } else if (level === 2 && lo & PTE_PS) {
            if (lo & 0x1fe000) fault(1 | 8); // bits 20:13 reserved in a 2 MiB PDE
            pageSize = 1 << 21;
          } else pageSize = 4096;
          pageBase = pageSize === 4096 ? frame : frame - (frame % pageSize);
          leafAddr = ea;
          leafLo = lo;
          leafIs64 = true;
          global = (lo & PTE_G) !== 0 && (cr4 & 0x80) !== 0;
          break;
        }
        pathAddr.push(ea);
        pathSize.push(8);
        tableBase = frame;
        level--;
      }
    }

    // Permission checks (§4.6).
    if (user) {
      if (!allowU) fault(1);
      if (write && !allowW) fault(1);
      if (exec && nx) fault(1);
    } else {
      if (write && !allowW && wp) fault(1);
      if (exec && (nx || (smep && allowU))) fault(1);
      if (!exec && smap && allowU && !acFlag) fault(1);
    }

    // Set accessed bits along the path and accessed/dirty on the leaf (§4.8).
    for (let k = 0; k < pathAddr.length; k++) {
      const a = pathAddr[k];
      const v = mem.read32(this.tx(a, la, false));
      if (!(v & PTE_A)) mem.write32(this.tx(a, la, true), v | PTE_A);
    }
    const want = PTE_A | (write ? PTE_D : 0);
    let leaf = leafLo;
    if ((leaf & want) !== want) {
      const h = this.tx(leafAddr, la, true);
      leaf = mem.read32(h) | want;
      mem.write32(h, leaf);
    }
    void leafIs64;
    const dirty = (leaf & PTE_D) !== 0;

    let pa = pageBase + (((la < 0 ? la + 2 ** 48 : la) % pageSize) - (la & 0xfff)) + (la & 0xfff);
    let physPage = pa - (la & 0xfff);
    if (this.ept) {
      pa = this.ept(pa, write ? 2 : exec ? 4 : 1, la, false);
      physPage = pa - (la & 0xfff);
    }
    let perm = 0;
    const supData = !smap || !allowU; // SMAP-sensitive supervisor accesses take the slow path
    if (supData) perm |= P_SR;
    if (supData && dirty && (allowW || !wp)) perm |= P_SW;
    if (allowU) perm |= P_UR;
    if (allowU && allowW && dirty) perm |= P_UW;
    if (!nx && !(smep && allowU)) perm |= P_SX;
    if (!nx && allowU) perm |= P_UX;
    if (this.ept) perm = eptMask(this.eptPerm, perm);
    this.tlb.fill(vpn, physPage, mem.ramOffset(physPage), perm, global, pageSize !== 4096);
    return pa;
  }
}

/** Restrict TLB permission bits to what the EPT entry allows (R=1, W=2, X=4). */
function eptMask(eptPerm: number, perm: number): number {
  if (!(eptPerm & 1)) perm &= ~(P_SR | P_UR);
  if (!(eptPerm & 2)) perm &= ~(P_SW | P_UW);
  if (!(eptPerm & 4)) perm &= ~(P_SX | P_UX);
  return perm;
}
