/**
 * Shadow-on-shadow (L0 without EPT, `--mmu shadow --nested`): what L0 does for L2's paging.
 * L1 has no EPT (caps.ts) and runs L2 on its own shadow tables for it (vmcs12's GUEST_CR3, in
 * L1-physical memory); L0 runs L2 on vmcs02 with GUEST_CR3 = an spt02 root (mmu/spt02.ts).
 *
 * - vmcs02 (`enterL2Paging`, at every nested entry, from vmcs02.ts): L2's CR0/CR3/CR4/EFER as L1
 *   set them are kept in `n.l2Paging`; vmcs02 gets the real values L0 runs L2 with — CR0 with
 *   PE/PG/NE/WP forced, CR4 with PAE and without PSE/PGE/PCIDE (spt02 is PAE or 4-level, never
 *   global: shadowRealCr4), EFER always loaded at entry, GUEST_CR3 = the spt02 root — and, in
 *   prepareControls, INVLPG and CR3-load/store exiting without CR3 target values (a target
 *   would let L2 load an L1-physical CR3 into the processor). Entries without VPID in vmcs12
 *   are a flush point of spt02 (SDM 3C §28.3.3.3).
 * - L2's exits (dispatch.ts): every #PF exits to L0 first (vmcs02's exception bitmap has
 *   vmcs01's bit 14, PFEC mask = match = 0). L0 walks L1's tables for the access: if they map
 *   it, spt02 gets the leaf and L2 resumes (handled by L0); if not, the fault is L1's, with the
 *   error code of L1's tables — reflected as a #PF exit when vmcs12's exception bitmap, PFEC
 *   mask and match say L1 takes it (SDM 3C §25.2), else delivered to L2 with CR2 (and the
 *   double-fault rules of SDM 3A Table 6-5). CR accesses, INVLPG, INVPCID and RDMSR/WRMSR of
 *   IA32_EFER that vmcs12 does not intercept are done here on L1's behalf against `n.l2Paging`
 *   (L0's handlers for L1 keep L1's own registers).
 * - Reflection (`l2PagingTo12`, from reflect.ts): vmcs12 gets L2's registers as L1 set them,
 *   not spt02's root or L0's forced bits.
 */
import {
  VMCS_FIELD as F,
  VMX_BITS as B,
  EXIT_REASON as R,
  UserError,
  type ExitRecord,
  type Vmcs,
} from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import type { NestedVcpu } from './state.js';
import { get12 } from './vmcs02.js';
import { exit12From, type Exit12 } from './reflect.js';
import { L0_COST } from '../cost.js';
import { walkGuest, type GuestAccess } from '../mmu/guest-walk.js';
import { Spt02 } from '../mmu/spt02.js';
import { shadowMmio } from '../vmm/paging-exits.js';
import { SHADOW_CR0_MASK, SHADOW_CR4_MASK, shadowRealCr4, shadowRealEfer } from '../vmm/cr-access.js';
import {
  vmread,
  readGpr,
  writeGpr,
  guestMode,
  injectException,
  skipInstruction,
  GP,
  PF,
} from '../vmm/guest-state.js';

const DF = 8;
const MSR_EFER = 0xc0000080;
/** Control-register and EFER bits (SDM 3A §2.5, §2.2.1). */
const CR0 = { PE: 1n, TS: 8n, ET: 0x10n, WP: 0x10000n, NW: 1n << 29n, CD: 1n << 30n, PG: 1n << 31n };
const CR4 = { PSE: 0x10n, PAE: 0x20n, PGE: 0x80n, PCIDE: 1n << 17n, SMEP: 1n << 20n, SMAP: 1n << 21n };
const EFER = { LME: 0x100n, LMA: 0x400n, NXE: 0x800n };
/** CR4 bits whose change makes spt02 a different root (and flushes, SDM 3A §4.10.4.1). */
const CR4_PAGING = CR4.PSE | CR4.PAE | CR4.PGE | CR4.PCIDE | CR4.SMEP | CR4.SMAP;

/** Faults at one (RIP, address, error code) in a row after which L0 gives up (no progress). */
const MAX_REPEATS = 64;
const repeats = new WeakMap<NestedVcpu, { key: string; n: number }>();
const spts = new WeakMap<NestedVcpu, Spt02>();
/** The spt02 of a vCPU's L2 (created on first use). */
export function spt02Of(v: Vcpu, n: NestedVcpu): Spt02 {
  let s = spts.get(n);
  if (!s) spts.set(n, (s = new Spt02(v.vm, n.vpid02)));
  return s;
}

const w = (v: Vcpu, enc: number, val: bigint | number): void => {
  const r = v.host.vmwrite(enc, val);
  if (!r.ok) throw new Error(`L0: VMWRITE 0x${enc.toString(16)} to vmcs02 failed: ${JSON.stringify(r)}`);
};

/** Switch L2 to the spt02 root for `n.l2Paging` (after a flush point or a paging-mode change). */
function reload(v: Vcpu, n: NestedVcpu, flush: boolean): void {
  const s = spt02Of(v, n);
  // Leaves may go here: a fault that comes back after this is progress, not a fill that fails.
  repeats.delete(n);
  if (flush) s.flush();
  w(v, F.GUEST_CR3, s.activate(n.l2Paging!));
}

/**
 * At a nested entry, after vmcs12's guest state went into vmcs02 (vmcs02 current): take L2's
 * paging registers from vmcs12 and give vmcs02 the ones L0 runs L2 with. `flush`: the entry is
 * a flush point (vmcs12 without VPID).
 */
export function enterL2Paging(v: Vcpu, n: NestedVcpu, v12: Vmcs, flush: boolean): void {
  const g = (enc: number): bigint => get12(v12, enc);
  const entry12 = Number(g(F.VM_ENTRY_CONTROLS));
  let efer: bigint;
  if (entry12 & B.ENTRY_LOAD_EFER) efer = g(F.GUEST_IA32_EFER);
  else {
    // Without "load IA32_EFER", L2 keeps L1's EFER with LMA/LME from "IA-32e mode guest" (SDM 3C §26.3.2.1).
    efer = v.guestEfer & ~(EFER.LMA | EFER.LME);
    if (entry12 & B.ENTRY_IA32E) efer |= EFER.LMA | EFER.LME;
  }
  n.l2Paging = { cr0: g(F.GUEST_CR0), cr3: g(F.GUEST_CR3), cr4: g(F.GUEST_CR4), efer };
  w(v, F.GUEST_CR0, n.l2Paging.cr0 | SHADOW_CR0_MASK);
  w(v, F.GUEST_CR4, shadowRealCr4(n.l2Paging.cr4));
  w(v, F.GUEST_IA32_EFER, shadowRealEfer(efer));
  reload(v, n, flush);
}

/** vmcs02's processor-based controls under shadow-on-shadow: L0's paging exits on top of vmcs12's. */
export const SPT02_PROC_EXITS = B.CPU_INVLPG | B.CPU_CR3_LOAD | B.CPU_CR3_STORE;

/**
 * A reflected exit (reflect.ts, after vmcs02's guest state went into vmcs12): vmcs12 gets L2's
 * CR3 and, for the CR0/CR4 bits L0 owns, L2's values as L1 set them; bits nobody intercepts
 * are what L2 left in vmcs02.
 */
export function l2PagingTo12(n: NestedVcpu, v12: Vmcs, put: (enc: number, value: bigint) => void): void {
  const p = n.l2Paging;
  if (!p) return;
  put(F.GUEST_CR0, (get12(v12, F.GUEST_CR0) & ~SHADOW_CR0_MASK) | (p.cr0 & SHADOW_CR0_MASK));
  put(F.GUEST_CR4, (get12(v12, F.GUEST_CR4) & ~SHADOW_CR4_MASK) | (p.cr4 & SHADOW_CR4_MASK));
  put(F.GUEST_CR3, p.cr3);
}

/** L1's INVVPID: a flush point of spt02 (its root is resynchronized at the next nested entry). */
export function l1Invvpid(v: Vcpu, n: NestedVcpu): void {
  if (v.vm.mmu === 'shadow') spt02Of(v, n).flush();
}

export type L2PageFaultOutcome = { kind: 'handled' } | { kind: 'reflect'; exit: Exit12 };
const HANDLED: L2PageFaultOutcome = { kind: 'handled' };

function hex(x: bigint | number): string {
  return `0x${x.toString(16)}`;
}

/**
 * A #PF exit from L2 (vmcs02 current). `l1Wants` is wants.ts's `l1WantsExit` for vmcs12. Either
 * handled here (spt02 filled, L1's MMIO emulated, or the #PF delivered to L2) or to be reflected.
 */
export function l2PageFault(
  v: Vcpu,
  n: NestedVcpu,
  r: ExitRecord,
  l1Wants: (x: ExitRecord) => boolean,
): L2PageFaultOutcome {
  const h = v.host;
  h.charge(L0_COST.pageFault);
  const p = n.l2Paging!;
  const la = r.qualification;
  const ec = r.interruptionErrorCode;
  const access: GuestAccess = {
    write: (ec & 2) !== 0,
    user: (ec & 4) !== 0,
    fetch: (ec & 16) !== 0,
    ac: (vmread(h, F.GUEST_RFLAGS) & 0x40000n) !== 0n,
  };
  const walk = walkGuest(v.vm, p, la, access, true);
  h.charge(L0_COST.guestWalkRef * (walk.ok ? Math.max(1, walk.entries.length) : 4));
  if (!walk.ok) {
    if (walk.kind === 'page-fault') return l1Fault(v, r, la, walk.errorCode, l1Wants);
    v.stop(
      walk.kind === 'table-outside-ram'
        ? `L2's page walk for linear ${hex(la)} reads an entry of L1's tables at L1-physical ${hex(walk.gpa ?? 0)}, outside L1's RAM`
        : `#PF exit from L2 at a non-canonical linear address ${hex(la)}`,
    );
    return HANDLED;
  }
  // Not L1 RAM: L1's MMIO (its virtual devices), emulated as for L1; never mapped into L2.
  if (v.vm.gpaToHpa(walk.frameGpa) < 0) {
    shadowMmio({ vm: v.vm, vcpu: v, host: h, exit: r }, la, walk.gpa, access);
    return HANDLED;
  }
  const key = `${vmread(h, F.GUEST_RIP)}:${la}:${ec}`;
  const rep = repeats.get(n);
  if (rep && rep.key === key) {
    if (++rep.n > MAX_REPEATS) {
      v.stop(`shadow-on-shadow cannot resolve L2's #PF at linear ${hex(la)} (error code ${hex(ec)})`);
      return HANDLED;
    }
  } else repeats.set(n, { key, n: 1 });
  const lin = p.efer & EFER.LMA ? Number(BigInt.asIntN(64, la)) : Number(la & 0xffffffffn);
  try {
    const root = spt02Of(v, n).fill(Math.floor(lin / 4096) * 4096, walk, access, p);
    if (root !== undefined) w(v, F.GUEST_CR3, root);
  } catch (e) {
    if (e instanceof UserError) v.stop(`shadow-on-shadow: ${e.message}`);
    else throw e;
  }
  return HANDLED;
}

/**
 * L1's tables do not allow the access: the #PF L2 would get on hardware, with their error code.
 * L1 takes it as an exit if its exception bitmap and PFEC mask/match say so (SDM 3C §25.2);
 * else L2 gets it (CR2 = the address: VM-entry injection does not write CR2, §26.6.1.1), or #DF
 * when it interrupted the delivery of a #PF, or a triple fault (an exit to L1, §25.2) when it
 * interrupted a #DF (SDM 3A Table 6-5).
 */
function l1Fault(
  v: Vcpu,
  r: ExitRecord,
  la: bigint,
  errorCode: number,
  l1Wants: (x: ExitRecord) => boolean,
): L2PageFaultOutcome {
  const h = v.host;
  const pf: ExitRecord = { ...r, interruptionErrorCode: errorCode };
  if (l1Wants(pf)) return { kind: 'reflect', exit: exit12From(pf) };
  h.charge(L0_COST.pfReflect);
  const vi = r.idtVectoringInfo;
  if (vi & B.INTR_VALID && ((vi >> 8) & 7) === B.INTR_HW_EXC) {
    const first = vi & 0xff;
    if (first === DF)
      return {
        kind: 'reflect',
        exit: exit12From(r, {
          reason: R.TRIPLE_FAULT,
          qualification: 0n,
          guestLinearAddress: 0n,
          interruptionInfo: 0,
          interruptionErrorCode: 0,
          idtVectoringInfo: 0,
        }),
      };
    if (first === PF) {
      const df: ExitRecord = {
        ...r,
        qualification: 0n,
        interruptionInfo: (B.INTR_VALID | B.INTR_ERRCODE_VALID | (B.INTR_HW_EXC << 8) | DF) >>> 0,
        interruptionErrorCode: 0,
        idtVectoringInfo: 0,
      };
      if (l1Wants(df)) return { kind: 'reflect', exit: exit12From(df) };
      injectException(h, DF, 0);
      return HANDLED;
    }
  }
  injectException(h, PF, errorCode, la);
  return HANDLED;
}

/** Exits of L2 that L0 handles itself against `n.l2Paging` when vmcs12 does not intercept them. */
export function isL2PagingExit(v: Vcpu, r: ExitRecord): boolean {
  if (v.vm.mmu !== 'shadow') return false;
  if (r.reason === R.CR_ACCESS || r.reason === R.INVLPG || r.reason === R.INVPCID) return true;
  if (r.reason !== R.RDMSR && r.reason !== R.WRMSR) return false;
  return Number(v.host.getReg(1) & 0xffffffffn) === MSR_EFER;
}

/** Handle an exit `isL2PagingExit` accepted, on L1's behalf (vmcs02 current). */
export function l2PagingExit(v: Vcpu, n: NestedVcpu, r: ExitRecord): void {
  const h = v.host;
  const p = n.l2Paging!;
  // Bits neither L0 nor L1 intercept change in vmcs02 without an exit: start from them.
  p.cr0 = (vmread(h, F.GUEST_CR0) & ~SHADOW_CR0_MASK) | (p.cr0 & SHADOW_CR0_MASK);
  p.cr4 = (vmread(h, F.GUEST_CR4) & ~SHADOW_CR4_MASK) | (p.cr4 & SHADOW_CR4_MASK);
  switch (r.reason) {
    case R.CR_ACCESS:
      h.charge(L0_COST.cr);
      return crAccess(v, n, r);
    case R.INVLPG: {
      h.charge(L0_COST.invlpg);
      const lin =
        p.efer & EFER.LMA
          ? Number(BigInt.asIntN(64, r.qualification))
          : Number(r.qualification & 0xffffffffn);
      // INVLPG of a non-canonical address does nothing (SDM 2A INVLPG).
      if (lin >= -(2 ** 47) && lin < 2 ** 47) spt02Of(v, n).invlpg(lin);
      return skipInstruction(h, r.instructionLength);
    }
    case R.INVPCID: {
      h.charge(L0_COST.invlpg);
      const type = readGpr(h, (r.instructionInfo >>> 28) & 15);
      if (type > 3n) return injectException(h, GP, 0);
      // Every valid type flushes all of L2's translations (more than it must, which is allowed).
      reload(v, n, true);
      return skipInstruction(h, r.instructionLength);
    }
    default:
      h.charge(L0_COST.msr);
      return eferAccess(v, n, r.reason === R.WRMSR, r);
  }
}

/** Write L2's CR0 (`nv` already merged with L1's bits) after the checks of MOV to CR0 in VMX operation. */
function writeCr0(v: Vcpu, n: NestedVcpu, r: ExitRecord, nv: bigint): void {
  const h = v.host;
  const p = n.l2Paging!;
  nv |= CR0.ET;
  const fixed0 = BigInt(n.caps.cr0Fixed0 >>> 0),
    fixed1 = BigInt(n.caps.cr0Fixed1 >>> 0);
  // Reserved bits, PG without PE, NW without CD (SDM 2A MOV CR0), and the bits fixed in VMX
  // operation (PE, NE, PG without unrestricted guest, SDM 3C §23.8): #GP.
  if (nv >> 32n || (nv & CR0.PG && !(nv & CR0.PE)) || (nv & CR0.NW && !(nv & CR0.CD)))
    return injectException(h, GP, 0);
  if ((nv & fixed0) !== fixed0 || nv & ~fixed1 & 0xffffffffn) return injectException(h, GP, 0);
  const old = p.cr0;
  p.cr0 = nv;
  const m12 = get12(n.current!, F.CR0_GUEST_HOST_MASK);
  w(v, F.GUEST_CR0, nv | SHADOW_CR0_MASK);
  w(v, F.CR0_READ_SHADOW, (vmread(h, F.CR0_READ_SHADOW) & m12) | (nv & ~m12));
  if ((old ^ nv) & (CR0.PG | CR0.WP | CR0.PE)) reload(v, n, true);
  skipInstruction(h, r.instructionLength);
}

function writeCr4(v: Vcpu, n: NestedVcpu, r: ExitRecord, nv: bigint): void {
  const h = v.host;
  const p = n.l2Paging!;
  const lma = (p.efer & EFER.LMA) !== 0n;
  const fixed0 = BigInt(n.caps.cr4Fixed0 >>> 0),
    fixed1 = BigInt(n.caps.cr4Fixed1 >>> 0);
  if ((nv & fixed0) !== fixed0 || nv & ~fixed1) return injectException(h, GP, 0);
  if (lma && !(nv & CR4.PAE)) return injectException(h, GP, 0);
  if (nv & CR4.PCIDE && !(p.cr4 & CR4.PCIDE) && (!lma || p.cr3 & 0xfffn)) return injectException(h, GP, 0);
  const old = p.cr4;
  p.cr4 = nv;
  const m12 = get12(n.current!, F.CR4_GUEST_HOST_MASK);
  w(v, F.GUEST_CR4, shadowRealCr4(nv));
  w(v, F.CR4_READ_SHADOW, (vmread(h, F.CR4_READ_SHADOW) & m12) | (nv & ~m12));
  if ((old ^ nv) & CR4_PAGING) reload(v, n, true);
  skipInstruction(h, r.instructionLength);
}

/**
 * MOV to/from CR0/CR3/CR4, CLTS, LMSW by L2 that vmcs12 lets through (exit qualification,
 * SDM 3C Table 27-3). In VMX non-root operation the bits L1 owns (vmcs12's guest/host mask)
 * keep their value and the others take the new one (SDM 3C §25.3).
 */
function crAccess(v: Vcpu, n: NestedVcpu, r: ExitRecord): void {
  const h = v.host;
  const p = n.l2Paging!;
  const q = Number(r.qualification);
  const cr = q & 15,
    type = (q >> 4) & 3,
    reg = (q >> 8) & 15;
  const long = guestMode(h).long;
  const m0 = get12(n.current!, F.CR0_GUEST_HOST_MASK);
  const merge0 = (val: bigint): bigint => (val & ~m0) | (p.cr0 & m0);
  if (type === 0) {
    const val = long ? readGpr(h, reg) : readGpr(h, reg) & 0xffffffffn;
    if (cr === 0) return writeCr0(v, n, r, merge0(val));
    if (cr === 4) {
      const m4 = get12(n.current!, F.CR4_GUEST_HOST_MASK);
      return writeCr4(v, n, r, (val & ~m4) | (p.cr4 & m4));
    }
    if (cr === 3) {
      let cr3 = val;
      if (p.efer & EFER.LMA) {
        // Bit 63 with PCIDE is "do not flush" and is not stored (SDM 3A §4.10.4.1); we flush anyway.
        if (p.cr4 & CR4.PCIDE) cr3 &= ~(1n << 63n);
        if (cr3 >> 40n) return injectException(h, GP, 0);
      }
      p.cr3 = cr3;
      h.charge(L0_COST.cr3Switch);
      reload(v, n, true);
      return skipInstruction(h, r.instructionLength);
    }
  } else if (type === 1 && cr === 3) {
    writeGpr(h, reg, long ? p.cr3 : p.cr3 & 0xffffffffn);
    return skipInstruction(h, r.instructionLength);
  } else if (type === 2) {
    return writeCr0(v, n, r, merge0(p.cr0 & ~CR0.TS)); // CLTS
  } else if (type === 3) {
    // LMSW: CR0[3:0] from the source; it can set PE but not clear it (SDM 2A LMSW).
    const src = BigInt((q >>> 16) & 0xf);
    return writeCr0(v, n, r, merge0((p.cr0 & ~0xen) | (src & 0xen) | ((p.cr0 | src) & CR0.PE)));
  }
  v.stop(`unexpected CR access exit from L2 (qualification ${hex(q)})`);
}

/** RDMSR/WRMSR of IA32_EFER by L2 that L1's MSR bitmap lets through (L0's bitmap makes them exit). */
function eferAccess(v: Vcpu, n: NestedVcpu, write: boolean, r: ExitRecord): void {
  const h = v.host;
  const p = n.l2Paging!;
  if (!write) {
    h.setReg(0, p.efer & 0xffffffffn);
    h.setReg(2, p.efer >> 32n);
    return skipInstruction(h, r.instructionLength);
  }
  const val = ((h.getReg(2) & 0xffffffffn) << 32n) | (h.getReg(0) & 0xffffffffn);
  // SCE, LME, LMA (read-only), NXE if the CPU has NX (SDM 4 Table 2-2); L2 always pages (CR0.PG
  // is fixed without unrestricted guest), so changing LME is #GP.
  const nx = (h.cpuid(0x80000001, 0)[3] & (1 << 20)) !== 0;
  if (val & ~(0x1n | EFER.LME | EFER.LMA | (nx ? EFER.NXE : 0n))) return injectException(h, GP, 0);
  if ((val ^ p.efer) & EFER.LME) return injectException(h, GP, 0);
  const old = p.efer;
  p.efer = (val & ~EFER.LMA) | (old & EFER.LMA);
  w(v, F.GUEST_IA32_EFER, shadowRealEfer(p.efer));
  if ((old ^ p.efer) & EFER.NXE) reload(v, n, true);
  skipInstruction(h, r.instructionLength);
}
