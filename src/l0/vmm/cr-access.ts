/**
 * Control-register access exits (SDM 3C §25.1.3, exit qualification Table 27-3) for an L1 guest.
 *
 * Under EPT (unrestricted guest) only CR0.NE and CR4.VMXE are host-owned: a write exits when it
 * would change what the read shadow shows of them, and L0 keeps NE/VMXE set in the real
 * registers. Under shadow paging L0 also owns everything that decides translation: CR0.PE/PG/WP
 * (PE and PG are forced on — without EPT there is no unrestricted guest, §26.3.1.1 — and WP is
 * forced on for the WP=0 emulation of shadow.ts), CR4.PSE/PAE/PGE/PCIDE/SMEP/SMAP/LA57, CR3
 * (load and store exiting: the guest's CR3 lives in vcpu.guestCr3, GUEST_CR3 holds the shadow
 * root) and EFER (msr exits, paging-exits.ts). Each write is checked as the processor would
 * check it (SDM 2A "MOV—Move to/from Control Registers") since the hardware does not check a
 * write that exits. A write that clears CR0.PE puts the vCPU in real mode, which L0 then
 * emulates instruction by instruction (realmode/): `shadowSetCr0`/`Cr3`/`Cr4` are shared with
 * that emulator, which executes MOV to CRn, LMSW and CLTS itself.
 */
import { VMCS_FIELD as F, VMX_BITS as B } from '../hw.js';
import { L0_COST } from '../cost.js';
import type { ExitContext, ExitHandler } from './exits.js';
import { skipInsn } from './exit-helpers.js';
import { guestMode, injectException, readGpr, writeGpr } from './guest-state.js';
import { guestPaging } from '../mmu/guest-walk.js';
import { shadowOf } from '../mmu/shadow.js';

const CR0_PE = 1n,
  CR0_TS = 8n,
  CR0_ET = 0x10n,
  CR0_NE = 0x20n,
  CR0_WP = 0x10000n,
  CR0_NW = 1n << 29n,
  CR0_CD = 1n << 30n,
  CR0_PG = 1n << 31n;
const CR4_PSE = 0x10n,
  CR4_PAE = 0x20n,
  CR4_PGE = 0x80n,
  CR4_LA57 = 0x1000n,
  CR4_VMXE = 0x2000n,
  CR4_PCIDE = 1n << 17n,
  CR4_SMEP = 1n << 20n,
  CR4_SMAP = 1n << 21n;
const EFER_LME = 0x100n,
  EFER_LMA = 0x400n;
const ENTRY_IA32E = BigInt(B.ENTRY_IA32E);

/** CR0 bits L0 owns under shadow paging (guest/host mask) and forces on in GUEST_CR0. */
export const SHADOW_CR0_MASK = CR0_PE | CR0_NE | CR0_WP | CR0_PG;
/** CR4 bits L0 owns under shadow paging. */
export const SHADOW_CR4_MASK =
  CR4_PSE | CR4_PAE | CR4_PGE | CR4_LA57 | CR4_VMXE | CR4_PCIDE | CR4_SMEP | CR4_SMAP;
/** CR4 bits a guest may set (what the CPU implements, less VMXE: VMX is hidden without --nested). */
const CR4_ALLOWED = 0xfffn | CR4_PCIDE | CR4_SMEP | CR4_SMAP;
/** The real CR4 under shadow paging: PAE paging always (shadow-tables.ts), no global pages, VMXE. */
export function shadowRealCr4(guestCr4: bigint): bigint {
  return (guestCr4 & ~(CR4_PSE | CR4_PGE | CR4_PCIDE)) | CR4_PAE | CR4_VMXE;
}
/** The EFER the hardware runs with under shadow paging: LME/LMA only while the guest is in IA-32e mode. */
export function shadowRealEfer(guestEfer: bigint): bigint {
  return (guestEfer & ~(EFER_LME | EFER_LMA)) | (guestEfer & EFER_LMA ? EFER_LME | EFER_LMA : 0n);
}

/** What a CR write changes: the vCPU's state through the host interface (no exit record needed). */
export type CrContext = Pick<ExitContext, 'vm' | 'vcpu' | 'host'>;

const rd = (c: CrContext, enc: number): bigint => c.host.vmread(enc) as bigint;

/** Load the EFER and the IA-32e-mode entry control that follow vcpu.guestEfer (shadow paging). */
export function applyShadowEfer(c: CrContext): void {
  const efer = c.vcpu.guestEfer;
  c.host.vmwrite(F.GUEST_IA32_EFER, shadowRealEfer(efer));
  const entry = rd(c, F.VM_ENTRY_CONTROLS);
  c.host.vmwrite(F.VM_ENTRY_CONTROLS, efer & EFER_LMA ? entry | ENTRY_IA32E : entry & ~ENTRY_IA32E);
}

/** A guest write of `v` to CR0 under shadow paging (MOV, LMSW, CLTS). Skips the instruction unless it faults. */
export function shadowWriteCr0(c: ExitContext, v: bigint): void {
  if (shadowSetCr0(c, v)) skipInsn(c);
  else injectException(c.host, 13, 0);
}
/**
 * Load CR0 with `v` under shadow paging; false when the write raises #GP(0). Clearing PE
 * enters real mode: VM entry cannot run it without unrestricted guest (SDM 3C §26.3.1.1), so
 * the vCPU's instructions are emulated by L0 from there on (realmode/emulate.ts).
 */
export function shadowSetCr0(c: CrContext, v: bigint): boolean {
  const g = guestPaging(c.vcpu);
  if (v >> 32n) return false;
  v |= CR0_ET;
  if (v & CR0_PG && !(v & CR0_PE)) return false;
  if (v & CR0_NW && !(v & CR0_CD)) return false;
  let efer = c.vcpu.guestEfer;
  const pgOn = (v & CR0_PG) !== 0n && (g.cr0 & CR0_PG) === 0n;
  const pgOff = (v & CR0_PG) === 0n && (g.cr0 & CR0_PG) !== 0n;
  if (pgOn && efer & EFER_LME) {
    // Activating IA-32e mode (SDM 3A §9.8.5): needs PAE, and CS.L must be 0.
    if (!(g.cr4 & CR4_PAE)) return false;
    if (rd(c, F.GUEST_CS_AR_BYTES) & (1n << 13n)) return false;
    efer |= EFER_LMA;
  }
  if (pgOff && efer & EFER_LMA) {
    if (guestMode(c.host).long || g.cr4 & CR4_PCIDE) return false;
    efer &= ~EFER_LMA;
  }
  if (!(v & CR0_PE)) c.vcpu.emulating = true;
  c.host.vmwrite(F.CR0_READ_SHADOW, v);
  c.host.vmwrite(F.GUEST_CR0, v | SHADOW_CR0_MASK);
  c.vcpu.guestEfer = efer;
  applyShadowEfer(c);
  if ((g.cr0 ^ v) & (CR0_PG | CR0_WP | CR0_PE)) shadowOf(c.vm).activate(c.vcpu);
  return true;
}

/** A guest write of `v` to CR4 under shadow paging. */
export function shadowWriteCr4(c: ExitContext, v: bigint): void {
  if (shadowSetCr4(c, v)) skipInsn(c);
  else injectException(c.host, 13, 0);
}
/** Load CR4 with `v` under shadow paging; false when the write raises #GP(0). */
export function shadowSetCr4(c: CrContext, v: bigint): boolean {
  const g = guestPaging(c.vcpu);
  const lma = (c.vcpu.guestEfer & EFER_LMA) !== 0n;
  if (v & ~CR4_ALLOWED) return false;
  if (lma && !(v & CR4_PAE)) return false;
  if (v & CR4_PCIDE && !(g.cr4 & CR4_PCIDE) && (!lma || c.vcpu.guestCr3 & 0xfffn)) return false;
  c.host.vmwrite(F.CR4_READ_SHADOW, v);
  c.host.vmwrite(F.GUEST_CR4, shadowRealCr4(v));
  if ((g.cr4 ^ v) & (CR4_PSE | CR4_PAE | CR4_PGE | CR4_PCIDE | CR4_SMEP | CR4_SMAP))
    shadowOf(c.vm).activate(c.vcpu);
  return true;
}

/** A guest write of `v` to CR3 under shadow paging: switch to the shadow root for it (the CR3 cache). */
export function shadowWriteCr3(c: ExitContext, v: bigint): void {
  if (shadowSetCr3(c, v)) skipInsn(c);
  else injectException(c.host, 13, 0);
}
/** Load CR3 with `v` under shadow paging; false when the write raises #GP(0). */
export function shadowSetCr3(c: CrContext, v: bigint): boolean {
  const lma = (c.vcpu.guestEfer & EFER_LMA) !== 0n;
  let val: bigint;
  if (lma) {
    // Bit 63 with PCIDE is "do not flush" and is not stored (SDM 3A §4.10.4.1); flushing anyway is allowed.
    const g = guestPaging(c.vcpu);
    val = g.cr4 & CR4_PCIDE ? v & ~(1n << 63n) : v;
    if (val >> 40n) return false; // bits above MAXPHYADDR
  } else val = v & 0xffffffffn;
  c.vcpu.guestCr3 = val;
  c.host.charge(L0_COST.cr3Switch);
  shadowOf(c.vm).activate(c.vcpu);
  return true;
}

function shadowCrAccess(c: ExitContext, q: number): void {
  const cr = q & 15,
    type = (q >> 4) & 3,
    reg = (q >> 8) & 15;
  const g = (): bigint => guestPaging(c.vcpu).cr0;
  if (type === 0) {
    const v = readGpr(c.host, reg);
    const value = guestMode(c.host).long ? v : v & 0xffffffffn;
    if (cr === 0) return shadowWriteCr0(c, value);
    if (cr === 3) return shadowWriteCr3(c, value);
    if (cr === 4) return shadowWriteCr4(c, value);
  } else if (type === 1 && cr === 3) {
    const v = c.vcpu.guestCr3;
    writeGpr(c.host, reg, guestMode(c.host).long ? v : v & 0xffffffffn);
    return skipInsn(c);
  } else if (type === 2) {
    return shadowWriteCr0(c, g() & ~CR0_TS); // CLTS
  } else if (type === 3) {
    // LMSW: loads CR0[3:0] from the source, can set PE but never clear it (SDM 2A LMSW).
    const src = BigInt((q >>> 16) & 0xf);
    const cr0 = g();
    return shadowWriteCr0(c, (cr0 & ~0xfn) | src | (cr0 & CR0_PE));
  }
  c.vcpu.stop(`unexpected CR access exit (qualification 0x${q.toString(16)})`);
}

/** EPT mode: only NE (CR0) and VMXE (CR4) are host-owned. */
function eptCrAccess(c: ExitContext, q: number): void {
  const cr = q & 15,
    type = (q >> 4) & 3,
    reg = (q >> 8) & 15;
  if (type !== 0 || (cr !== 0 && cr !== 4))
    return c.vcpu.stop(`unexpected CR access exit (qualification 0x${q.toString(16)})`);
  const value = readGpr(c.host, reg);
  if (cr === 4) {
    // The guest tried to set CR4.VMXE: without VMX in CPUID that bit is reserved (#GP).
    if (value & CR4_VMXE) return injectException(c.host, 13, 0);
    c.host.vmwrite(F.CR4_READ_SHADOW, value);
    c.host.vmwrite(F.GUEST_CR4, value | CR4_VMXE);
    return skipInsn(c);
  }
  // CR0: NE is host-owned; keep it set, show the guest its own value.
  const old = rd(c, F.GUEST_CR0);
  c.host.vmwrite(F.CR0_READ_SHADOW, value);
  c.host.vmwrite(F.GUEST_CR0, value | CR0_NE);
  // Paging turned on or off with EFER.LME: IA-32e mode follows (SDM 3A §9.8.5).
  const efer = rd(c, F.GUEST_IA32_EFER);
  const entry = rd(c, F.VM_ENTRY_CONTROLS);
  const pgOn = (value & CR0_PG) !== 0n && (old & CR0_PG) === 0n;
  const pgOff = (value & CR0_PG) === 0n && (old & CR0_PG) !== 0n;
  if (pgOn && efer & EFER_LME) {
    c.host.vmwrite(F.GUEST_IA32_EFER, efer | EFER_LMA);
    c.host.vmwrite(F.VM_ENTRY_CONTROLS, entry | ENTRY_IA32E);
  } else if (pgOff) {
    c.host.vmwrite(F.GUEST_IA32_EFER, efer & ~EFER_LMA);
    c.host.vmwrite(F.VM_ENTRY_CONTROLS, entry & ~ENTRY_IA32E);
  }
  skipInsn(c);
}

/** CR_ACCESS (exit reason 28): MOV to/from CR0/CR3/CR4, CLTS, LMSW. */
export const crAccess: ExitHandler = {
  name: 'CR_ACCESS',
  handle(c) {
    const q = Number(c.exit.qualification);
    c.host.charge(L0_COST.cr);
    if (c.vm.mmu === 'shadow') shadowCrAccess(c, q);
    else eptCrAccess(c, q);
  },
};
