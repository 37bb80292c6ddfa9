/**
 * The guest's own page walk, done by L0 in software over guest-physical memory: SDM Vol. 3A
 * chapter 4 (32-bit paging §4.3 with 4 MiB pages, PAE §4.4, 4-level §4.5 with 2 MiB and
 * 1 GiB pages; permissions §4.6 with U/S, R/W, NX, CR0.WP, SMEP and SMAP; the #PF error code
 * §4.7; accessed and dirty flags §4.8). Used by shadow paging (to fill shadow entries or
 * reflect a #PF) and by instruction emulation (MMIO, string I/O) to translate guest linear
 * addresses.
 *
 * The checks mirror the machine's walker (src/hw/mmu/paging.ts) so that a guest sees the
 * same faults bare and under L0, with one exception made on purpose: the I/D flag of the
 * error code follows the SDM footnote of §4.7 (set for fetches only when SMEP=1, or PAE
 * paging with EFER.NXE=1).
 *
 * Stable API (other parts of L0 depend on it): `guestPaging`, `walkGuest`, `GuestPaging`,
 * `GuestAccess`, `GuestWalk`.
 */
import type { PhysMem } from '../hw.js';
import { VMCS_FIELD as F } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';

/** The paging registers as the guest sees them (what MOV from CRn / RDMSR would return). */
export interface GuestPaging {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

/** The kind of access being translated. */
export interface GuestAccess {
  write: boolean;
  /** A user-mode access (CPL 3 and not an implicit supervisor access such as a GDT/IDT read). */
  user: boolean;
  /** An instruction fetch. */
  fetch: boolean;
  /** RFLAGS.AC, for SMAP (supervisor data accesses to user pages are allowed when AC=1). Default false. */
  ac?: boolean;
  /** An implicit supervisor access (descriptor tables, TSS…): SMAP applies even with AC=1 (§4.6). */
  implicit?: boolean;
}

export interface GuestWalkOk {
  ok: true;
  /** Guest-physical address of the accessed byte. */
  gpa: number;
  /** Guest-physical address of the 4 KiB frame holding it. */
  frameGpa: number;
  /** Size of the guest page that maps it: 4 KiB, 2 MiB, 4 MiB or 1 GiB (4 KiB with paging off). */
  pageSize: number;
  /** Effective rights of the translation (ANDed / ORed over the path, §4.6). */
  writable: boolean;
  user: boolean;
  nx: boolean;
  global: boolean;
  /** Dirty flag of the leaf after the walk (always true with paging off). */
  dirty: boolean;
  /**
   * Guest-physical addresses of every paging-structure entry the walk read, root first, leaf
   * last (PAE PDPTEs included). Empty with paging off. Shadow paging write-protects these.
   */
  entries: number[];
  /** Size of those entries in bytes (4 with 32-bit paging, else 8). */
  entrySize: 4 | 8;
}
export interface GuestWalkFault {
  ok: false;
  /**
   * 'page-fault': the guest gets #PF with `errorCode` (and CR2 = the linear address).
   * 'non-canonical': a 4-level linear address that is not canonical (#GP or #SS, the caller's choice).
   * 'table-outside-ram': a paging-structure entry lies outside the VM's RAM at `gpa`; there is
   * no architectural outcome L0 models for that (L0 stops the VM with a report, as for an EPT
   * violation on a walk under EPT).
   */
  kind: 'page-fault' | 'non-canonical' | 'table-outside-ram';
  /** The #PF error code (P=1, W/R=2, U/S=4, RSVD=8, I/D=16) when kind is 'page-fault', else 0. */
  errorCode: number;
  gpa?: number;
}
export type GuestWalk = GuestWalkOk | GuestWalkFault;

/** What the walker needs of a VM: its RAM in host memory. `Vm` satisfies it. */
export interface GuestMemory {
  gpaToHpa(gpa: number): number;
  readonly host: { readonly mem: PhysMem; cpuid?(leaf: number, sub: number): number[] };
}

const CR0_PG = 0x80000000n,
  CR0_WP = 0x10000n;
const CR4_PSE = 0x10n,
  CR4_PAE = 0x20n,
  CR4_PGE = 0x80n,
  CR4_SMEP = 1n << 20n,
  CR4_SMAP = 1n << 21n;
const EFER_LMA = 0x400n,
  EFER_NXE = 0x800n;
const P = 1,
  W = 2,
  U = 4,
  A = 0x20,
  D = 0x40,
  PS = 0x80,
  G = 0x100;
const TWO32 = 4294967296;

/**
 * The guest-visible paging registers of a vCPU (the vCPU must be loaded: its VMCS current).
 * CR0/CR4: bits the host owns (set in the guest/host mask) come from the read shadows, the rest
 * from GUEST_CR0/GUEST_CR4 (SDM 3C §25.3). CR3 and EFER: under EPT the guest's own (GUEST_CR3,
 * GUEST_IA32_EFER); under shadow paging the values L0 keeps for the guest (GUEST_CR3 then holds
 * the shadow root, and EFER.LME/LMA may differ while the guest has paging off).
 *
 * While the vCPU runs L2 under shadow-on-shadow (nested/spt02-exits.ts), L2's registers as L1
 * set them — CR3 is then L1's table for L2, in L1-physical memory, and CR0/CR4 are the values
 * the processor would translate with on L1's vmcs12 (not L2's read shadows).
 */
export function guestPaging(vcpu: Vcpu): GuestPaging {
  if (vcpu.level === 'L2' && vcpu.nested?.l2Paging) return vcpu.nested.l2Paging;
  const h = vcpu.host;
  const rd = (enc: number): bigint => h.vmread(enc) as bigint;
  const cr0m = rd(F.CR0_GUEST_HOST_MASK),
    cr4m = rd(F.CR4_GUEST_HOST_MASK);
  const cr0 = (rd(F.GUEST_CR0) & ~cr0m) | (rd(F.CR0_READ_SHADOW) & cr0m);
  const cr4 = (rd(F.GUEST_CR4) & ~cr4m) | (rd(F.CR4_READ_SHADOW) & cr4m);
  if (vcpu.vm.mmu === 'shadow') return { cr0, cr3: vcpu.guestCr3, cr4, efer: vcpu.guestEfer };
  return { cr0, cr3: rd(F.GUEST_CR3), cr4, efer: rd(F.GUEST_IA32_EFER) };
}

/** The paging mode a set of guest registers selects (SDM 3A §4.1.1, Table 4-1). */
export type PagingMode = 'off' | '32-bit' | 'pae' | '4-level';
export function pagingMode(p: GuestPaging): PagingMode {
  if (!(p.cr0 & CR0_PG)) return 'off';
  if (!(p.cr4 & CR4_PAE)) return '32-bit';
  return p.efer & EFER_LMA ? '4-level' : 'pae';
}

let maxPhyAddrBits = 0;
/** Reserved-bit mask of an entry's high dword: physical-address bits at or above MAXPHYADDR, below bit 52. */
function rsvdHi(vm: GuestMemory): number {
  if (maxPhyAddrBits === 0) {
    // CPUID.80000008H:EAX[7:0], what the guest sees (L0 passes it through).
    maxPhyAddrBits = vm.host.cpuid ? vm.host.cpuid(0x80000008, 0)[0] & 0xff || 36 : 40;
  }
  return ((1 << 20) - 1) & ~((1 << (maxPhyAddrBits - 32)) - 1);
}

/** A linear address as a signed number (canonical high half negative), or undefined if not canonical in 4-level paging. */
function toLinear(linear: number | bigint, fourLevel: boolean): number | undefined {
  if (typeof linear === 'bigint') {
    const s = BigInt.asIntN(64, linear);
    if (!fourLevel) return Number(BigInt.asUintN(32, s));
    if (s < -(1n << 47n) || s >= 1n << 47n) return undefined;
    return Number(s);
  }
  if (!fourLevel) return ((linear % TWO32) + TWO32) % TWO32;
  if (linear < -(2 ** 47) || linear >= 2 ** 47) return undefined;
  return linear;
}

/**
 * Translate guest linear address `linear` for `access` through the guest's page tables in
 * guest-physical memory, as the processor would (SDM 3A chapter 4). With `setAccessedDirty`,
 * a successful walk sets the accessed flags on the path and accessed (and, for writes, dirty)
 * on the leaf in guest memory (§4.8), as the hardware does; a faulting walk sets nothing.
 *
 * `linear`: a number (signed for the canonical upper half, e.g. -0x800000000000, or unsigned
 * below 2^53) or a bigint (any 64-bit value, as read from the VMCS). Outside 4-level paging only
 * its low 32 bits count.
 */
export function walkGuest(
  vm: GuestMemory,
  paging: GuestPaging,
  linear: number | bigint,
  access: GuestAccess,
  setAccessedDirty: boolean,
): GuestWalk {
  const mode = pagingMode(paging);
  const la = toLinear(linear, mode === '4-level');
  if (la === undefined) return { ok: false, kind: 'non-canonical', errorCode: 0 };
  if (mode === 'off') {
    // Paging off: linear = physical, 32-bit (§4.1.1).
    return {
      ok: true,
      gpa: la,
      frameGpa: la - (la % 4096),
      pageSize: 4096,
      writable: true,
      user: true,
      nx: false,
      global: false,
      dirty: true,
      entries: [],
      entrySize: 8,
    };
  }
  const mem = vm.host.mem;
  const cr4 = paging.cr4;
  const wp = (paging.cr0 & CR0_WP) !== 0n;
  const nxe = (paging.efer & EFER_NXE) !== 0n;
  const smep = (cr4 & CR4_SMEP) !== 0n,
    smap = (cr4 & CR4_SMAP) !== 0n,
    pge = (cr4 & CR4_PGE) !== 0n;
  const { write, user, fetch } = access;
  // §4.7 footnote: I/D is reported for fetches when SMEP=1, or with PAE/4-level paging and NXE=1.
  const idBit = fetch && (smep || (mode !== '32-bit' && nxe)) ? 16 : 0;
  const ecBase = (write ? W : 0) | (user ? U : 0) | idBit;
  const pf = (bits: number): GuestWalkFault => ({ ok: false, kind: 'page-fault', errorCode: bits | ecBase });
  const rsvd = (): GuestWalkFault => pf(P | 8);
  const outside = (gpa: number): GuestWalkFault => ({
    ok: false,
    kind: 'table-outside-ram',
    errorCode: 0,
    gpa,
  });

  const entries: number[] = [];
  /** Host address of the entry at `gpa` (whole entry inside one RAM page: entries are aligned). */
  const hostOf = (gpa: number): number => vm.gpaToHpa(gpa);

  let allowW = true,
    allowU = true,
    nx = false,
    global = false;
  let pageBase: number, pageSize: number, leafGpa: number, leafLo: number;
  /** Entries whose A flag is set on success (not PAE PDPTEs: they have none). */
  const setA: number[] = [];

  if (mode === '32-bit') {
    // 32-bit paging (§4.3): 1024 4-byte entries per table.
    const pdeGpa = Number(paging.cr3 & 0xfffff000n) + Math.floor(la / 4194304) * 4;
    const hp = hostOf(pdeGpa);
    if (hp < 0) return outside(pdeGpa);
    const pde = mem.read32(hp);
    entries.push(pdeGpa);
    if (!(pde & P)) return pf(0);
    allowW = (pde & W) !== 0;
    allowU = (pde & U) !== 0;
    if (pde & PS && cr4 & CR4_PSE) {
      // 4 MiB page; PSE-36: PDE bits 20:13 are physical-address bits 39:32, bit 21 reserved.
      if (pde & (1 << 21)) return rsvd();
      pageBase = (pde & 0xffc00000) >>> 0;
      pageBase += ((pde >>> 13) & 0xff) * TWO32;
      pageSize = 4194304;
      leafGpa = pdeGpa;
      leafLo = pde;
    } else {
      setA.push(pdeGpa);
      const pteGpa = ((pde & 0xfffff000) >>> 0) + (Math.floor(la / 4096) % 1024) * 4;
      const ht = hostOf(pteGpa);
      if (ht < 0) return outside(pteGpa);
      const pte = mem.read32(ht);
      entries.push(pteGpa);
      if (!(pte & P)) return pf(0);
      allowW = allowW && (pte & W) !== 0;
      allowU = allowU && (pte & U) !== 0;
      pageBase = (pte & 0xfffff000) >>> 0;
      pageSize = 4096;
      leafGpa = pteGpa;
      leafLo = pte;
    }
    global = (leafLo & G) !== 0 && pge;
  } else {
    const hiMask = rsvdHi(vm);
    const ula = la < 0 ? la + 2 ** 48 : la; // index extraction on the unsigned 48-bit value
    let tableBase: number;
    let level: number;
    if (mode === '4-level') {
      tableBase = Number(paging.cr3 & 0x000ffffffffff000n) % 2 ** 52;
      level = 4;
    } else {
      // PAE (§4.4.1): four PDPTEs at CR3[31:5]; bits 2:1 and 8:5 and 63 are reserved.
      const pdpteGpa = Number(paging.cr3 & 0xffffffe0n) + Math.floor(la / 2 ** 30) * 8;
      const hp = hostOf(pdpteGpa);
      if (hp < 0) return outside(pdpteGpa);
      const lo = mem.read32(hp),
        hi = mem.read32(hp + 4);
      entries.push(pdpteGpa);
      if (!(lo & P)) return pf(0);
      if (lo & 0x1e6 || hi & hiMask || hi & 0x80000000) return rsvd();
      tableBase = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
      level = 2;
    }
    for (;;) {
      const shift = 12 + 9 * (level - 1);
      const ea = tableBase + (Math.floor(ula / 2 ** shift) % 512) * 8;
      const he = hostOf(ea);
      if (he < 0) return outside(ea);
      const lo = mem.read32(he),
        hi = mem.read32(he + 4);
      entries.push(ea);
      if (!(lo & P)) return pf(0);
      // Reserved: address bits at/above MAXPHYADDR, XD without NXE, PS in a PML4E (§4.5, Table 4-x).
      if (hi & hiMask || (!nxe && hi & 0x80000000)) return rsvd();
      if (level === 4 && lo & PS) return rsvd();
      allowW = allowW && (lo & W) !== 0;
      allowU = allowU && (lo & U) !== 0;
      if (nxe && hi & 0x80000000) nx = true;
      const frame = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
      if (level === 1 || lo & PS) {
        if (level === 3 && lo & PS) {
          if (lo & 0x3fffe000) return rsvd(); // bits 29:13 of a 1 GiB PDPTE
          pageSize = 2 ** 30;
        } else if (level === 2 && lo & PS) {
          if (lo & 0x1fe000) return rsvd(); // bits 20:13 of a 2 MiB PDE
          pageSize = 2 ** 21;
        } else pageSize = 4096;
        pageBase = frame - (frame % pageSize);
        leafGpa = ea;
        leafLo = lo;
        global = (lo & G) !== 0 && pge;
        break;
      }
      setA.push(ea);
      tableBase = frame;
      level--;
    }
  }

  // Access rights (§4.6).
  if (user) {
    if (!allowU) return pf(P);
    if (write && !allowW) return pf(P);
    if (fetch && nx) return pf(P);
  } else {
    if (write && !allowW && wp) return pf(P);
    if (fetch && (nx || (smep && allowU))) return pf(P);
    if (!fetch && smap && allowU && (!access.ac || access.implicit)) return pf(P);
  }

  // Accessed and dirty flags (§4.8), only once the access is known to be allowed.
  let dirty = (leafLo & D) !== 0;
  if (setAccessedDirty) {
    for (const e of setA) {
      const h = hostOf(e);
      const v = mem.read32(h);
      if (!(v & A)) mem.write32(h, v | A);
    }
    const want = A | (write ? D : 0);
    if ((leafLo & want) !== want) {
      const h = hostOf(leafGpa);
      const v = mem.read32(h) | want;
      mem.write32(h, v);
      dirty = (v & D) !== 0;
    }
  }
  const ula = la < 0 ? la + 2 ** 48 : la;
  const gpa = pageBase + (ula % pageSize);
  return {
    ok: true,
    gpa,
    frameGpa: gpa - (gpa % 4096),
    pageSize,
    writable: allowW,
    user: allowU,
    nx,
    global,
    dirty,
    entries,
    entrySize: mode === '32-bit' ? 4 : 8,
  };
}
