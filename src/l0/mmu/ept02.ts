/**
 * ept02: multi-dimensional paging (the paper §3.3). L1 maps L2 guest-physical → L1
 * guest-physical with ept12; L0 maps L1 guest-physical → host-physical with ept01; the
 * hardware walks only one EPT, so L0 runs L2 on ept02, a shadow of ept12 ∘ ept01 built on
 * demand: ept02 starts empty, an EPT violation from L2 makes L0 walk ept12 in L1 memory and
 *  - install a 4 KiB ept02 entry (rights = ept12's along the walk ∩ ept01's, which are RWX), or
 *  - reflect an EPT violation to L1 (ept12 does not allow the access: the qualification carries
 *    the access and ept12's rights, SDM 3C §27.2.1 Table 27-7), or
 *  - reflect an EPT misconfiguration (ept12 entry misconfigured, §28.3.3.1).
 * ept12 changes take effect as the SDM requires: a violation re-walks ept12 (so new rights are
 * seen at once), and L1's INVEPT drops the ept02 built from that EPTP (L1 must INVEPT after
 * removing rights, §28.3.3.4). One ept02 per (vCPU, EPTP12), capped in size (dropped when full).
 */
import { VMCS_FIELD as F, type ExitRecord } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import type { NestedVcpu } from '../nested/state.js';
import { l1Read32 } from '../nested/l1mem.js';
import { L0_COST } from '../cost.js';

const MAXPHYADDR = 40;
/** Pages one vCPU's ept02 tables may use before they are dropped and rebuilt. */
const EPT02_PAGE_LIMIT = 2048;

export interface Ept02 {
  eptp12: number;
  root: number;
  pages: number[];
}

/** The EPTP vmcs02 uses for vmcs12's EPTP (creating an empty ept02 for it). */
export function ept02Pointer(v: Vcpu, n: NestedVcpu, eptp12: number): number {
  const key = Math.floor(eptp12 / 4096) * 4096;
  let e = n.ept02.get(key);
  if (!e) {
    const root = v.vm.pages.alloc();
    e = { eptp12: key, root, pages: [root] };
    n.ept02.set(key, e);
  }
  return e.root | 6 | (3 << 3);
}

/** INVEPT by L1 (or VMXOFF): drop the ept02 built from `eptp12` (all when undefined). */
export function invalidateEpt02(v: Vcpu, eptp12: number | undefined): void {
  const n = v.nested!;
  for (const [key, e] of [...n.ept02]) {
    if (eptp12 !== undefined && key !== Math.floor(eptp12 / 4096) * 4096) continue;
    for (const p of e.pages) v.vm.pages.release(p);
    n.ept02.delete(key);
    v.host.invept(1, BigInt(e.root | 6 | (3 << 3)));
  }
  n.builtFrom = -1; // vmcs02's EPTP may name a dropped ept02
}

export type Ept02Outcome =
  | { kind: 'fixed' }
  | { kind: 'violation'; qualification: bigint }
  | { kind: 'misconfig' }
  | { kind: 'l1-mmio'; l1Gpa: number };

interface Ept12Walk {
  ok: boolean;
  misconfig: boolean;
  rights: number;
  l1Gpa: number;
}

/** Walk ept12 (4 levels, 2 MiB / 1 GiB leaves) for L2 guest-physical `gpa2` (SDM 3C §28.3.2). */
export function walkEpt12(v: Vcpu, eptp12: number, gpa2: number): Ept12Walk {
  let table = Math.floor(eptp12 / 4096) * 4096;
  let rights = 7;
  for (let level = 4; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const idx = Math.floor(gpa2 / 2 ** shift) % 512;
    const lo = l1Read32(v.vm, table + 8 * idx) >>> 0,
      hi = l1Read32(v.vm, table + 8 * idx + 4) >>> 0;
    const r = lo & 7;
    if (r === 0) return { ok: false, misconfig: false, rights: 0, l1Gpa: 0 };
    // Misconfigurations (§28.3.3.1): write without read; reserved physical-address bits; large-page
    // bit at level 4; reserved bits of large pages; memory types 2, 3, 7 in a leaf.
    const leaf = level === 1 || ((level === 2 || level === 3) && (lo & 0x80) !== 0);
    const physHiBad = (hi & 0xfffff) >= 2 ** (MAXPHYADDR - 32);
    let bad = (r & 3) === 2 || physHiBad || (level === 4 && (lo & 0xf8) !== 0);
    if (!leaf && level < 4 && (lo & 0xf8) !== 0) bad = true;
    if (leaf) {
      const mt = (lo >> 3) & 7;
      if (mt === 2 || mt === 3 || mt === 7) bad = true;
      if (level === 3 && (lo & 0x3ffff000) !== 0) bad = true;
      if (level === 2 && (lo & 0x1ff000) !== 0) bad = true;
    }
    if (bad) return { ok: false, misconfig: true, rights: 0, l1Gpa: 0 };
    rights &= r;
    const frame = (hi & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0);
    if (leaf) {
      const size = 2 ** shift;
      return { ok: true, misconfig: false, rights, l1Gpa: frame - (frame % size) + (gpa2 % size) };
    }
    table = frame;
  }
  return { ok: false, misconfig: false, rights: 0, l1Gpa: 0 };
}

/** Install (or upgrade) the 4 KiB ept02 entry for `gpa2` → `hpa` with `rights`. */
function install(v: Vcpu, e: Ept02, gpa2: number, hpa: number, rights: number): void {
  const mem = v.host.mem;
  if (e.pages.length >= EPT02_PAGE_LIMIT) {
    invalidateEpt02(v, e.eptp12);
    throw new Ept02Dropped();
  }
  let table = e.root;
  for (let level = 4; level > 1; level--) {
    const idx = Math.floor(gpa2 / 2 ** (12 + 9 * (level - 1))) % 512;
    const a = table + 8 * idx;
    let next = mem.read32(a) >>> 0;
    if ((next & 7) === 0) {
      const p = v.vm.pages.alloc();
      e.pages.push(p);
      mem.write64(a, p | 7);
      next = p | 7;
    }
    table = Math.floor((next >>> 0) / 4096) * 4096 + (mem.read32(a + 4) >>> 0) * 4294967296;
  }
  const a = table + 8 * (Math.floor(gpa2 / 4096) % 512);
  const had = mem.read32(a) & 7;
  mem.write64(a, Math.floor(hpa / 4096) * 4096 + (rights | (6 << 3)));
  v.host.charge(L0_COST.ept02Entry);
  // Rights only grow here; a present entry with fewer rights may be cached: flush this ept02.
  if (had) v.host.invept(1, BigInt(e.root | 6 | (3 << 3)));
}
class Ept02Dropped extends Error {}

/** An EPT violation while L2 ran on ept02: fix ept02, or say what L1 must see. */
export function handleEpt02Violation(v: Vcpu, n: NestedVcpu, r: ExitRecord, eptp12: number): Ept02Outcome {
  const h = v.host;
  const gpa2 = Number(r.guestPhysicalAddress);
  h.charge(L0_COST.ept12Walk);
  const wk = walkEpt12(v, eptp12, gpa2);
  if (wk.misconfig) return { kind: 'misconfig' };
  const access = Number(r.qualification & 7n);
  if (!wk.ok || (access & ~wk.rights) !== 0) {
    // Bits 2:0 the access, 5:3 ept12's rights (AND along the walk), 7/8/12 as the hardware reported.
    const q = (r.qualification & 0x1187n) | BigInt(wk.rights << 3);
    return { kind: 'violation', qualification: q };
  }
  const hpa = v.vm.gpaToHpa(wk.l1Gpa);
  if (hpa < 0) return { kind: 'l1-mmio', l1Gpa: wk.l1Gpa };
  const key = Math.floor(eptp12 / 4096) * 4096;
  const e = n.ept02.get(key);
  if (!e) return { kind: 'fixed' }; // dropped meanwhile: the next entry rebuilds it
  try {
    install(v, e, gpa2, hpa, wk.rights);
  } catch (err) {
    if (!(err instanceof Ept02Dropped)) throw err;
    // ept02 was full and is gone: vmcs02 must point at a fresh one before L2 resumes.
    h.vmwrite(F.EPT_POINTER, ept02Pointer(v, n, eptp12));
  }
  return { kind: 'fixed' };
}
