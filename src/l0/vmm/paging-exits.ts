/**
 * The exits shadow paging takes (mmu/shadow.ts): #PF (exception bitmap bit 14, every #PF),
 * INVLPG and INVPCID (INVLPG exiting), the monitor trap flag that ends a single-stepped guest
 * page-table write, and RDMSR/WRMSR of IA32_EFER (L0 keeps the guest's EFER: while the guest
 * has paging off the hardware still pages, so EFER.LME/LMA must differ from the guest's).
 *
 * MMIO: a guest linear address whose guest-physical address is not RAM is handed to the
 * EPT-violation path (`setShadowMmioHandler`, wired in exits.ts) with a synthesized exit record
 * — guest-physical address, linear address, and an EPT-violation qualification (bit 0 read,
 * bit 1 write, bit 2 fetch, bit 7 linear address valid, bit 8 access to the translation) — so
 * one MMIO emulator serves both MMUs. Handlers that emulate an instruction there must advance
 * RIP themselves and, when they write guest RAM, call `noteGuestWrite` (mmu/shadow.ts).
 */
import { VMCS_FIELD as F, EXIT_REASON as R, UserError } from '../hw.js';
import { L0_COST } from '../cost.js';
import type { ExitContext, ExitHandler } from './exits.js';
import { skipInsn } from './exit-helpers.js';
import { injectException, readGpr } from './guest-state.js';
import { guestPaging, walkGuest, type GuestAccess } from '../mmu/guest-walk.js';
import { shadowOf } from '../mmu/shadow.js';
import { applyShadowEfer } from './cr-access.js';

const MSR_EFER = 0xc0000080;
const PF = 14,
  DF = 8;

let mmioPath: ExitHandler | undefined;
/** The handler for guest accesses to non-RAM guest-physical addresses (the EPT-violation handler). */
export function setShadowMmioHandler(h: ExitHandler | undefined): void {
  mmioPath = h;
}

/** Faults at one (RIP, address) in a row after which L0 gives up (a fill that cannot make progress). */
const MAX_REPEATS = 64;
const repeats = new WeakMap<object, { key: string; n: number }>();

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/**
 * An event whose delivery the exit interrupted (IDT-vectoring information, SDM 3C §27.2.4) is
 * delivered again at the next entry, as KVM's vmx_complete_interrupts does.
 */
function reinjectVectoring(c: ExitContext): void {
  const v = c.exit.idtVectoringInfo;
  if (!(v & 0x80000000)) return;
  c.host.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, (v & 0x80000fff) >>> 0);
  if (v & 0x800) c.host.vmwrite(F.VM_ENTRY_EXCEPTION_ERROR_CODE, c.exit.idtVectoringErrorCode);
  const type = (v >> 8) & 7;
  if (type === 4 || type === 5 || type === 6)
    c.host.vmwrite(F.VM_ENTRY_INSTRUCTION_LEN, c.exit.instructionLength);
}

/**
 * Give the guest the #PF its own tables produce: error code, CR2 (VM-entry injection does not
 * write CR2, SDM 3C §26.6.1.1, so L0 loads it), and the double-fault rules of SDM 3A Table 6-5
 * when the #PF happened while delivering another event.
 */
function reflectPf(c: ExitContext, la: bigint, errorCode: number): void {
  c.host.charge(L0_COST.pfReflect);
  shadowOf(c.vm).counters.reflected++;
  const v = c.exit.idtVectoringInfo;
  c.host.setCr2(la);
  if (v & 0x80000000 && ((v >> 8) & 7) === 3) {
    const first = v & 0xff;
    if (first === DF)
      return c.vcpu.stop(`triple fault in the guest (a #PF while delivering #DF) at linear ${hex(la)}`);
    if (first === PF) return injectException(c.host, DF, 0);
  }
  injectException(c.host, PF, errorCode);
}

/**
 * A guest access through shadow-paged tables to guest-physical `gpa`, which is not RAM: hand it
 * to the EPT-violation (MMIO) handler with a synthesized exit record, as if EPT had faulted on
 * it. Also used for L2's accesses to L1's MMIO under shadow-on-shadow (nested/spt02-exits.ts).
 */
export function shadowMmio(c: ExitContext, la: bigint, gpa: number, access: GuestAccess): void {
  const synth = {
    ...c.exit,
    reason: R.EPT_VIOLATION,
    rawReason: R.EPT_VIOLATION,
    qualification: BigInt((access.write ? 2 : access.fetch ? 4 : 1) | (1 << 7) | (1 << 8)),
    guestPhysicalAddress: BigInt(gpa),
    guestLinearAddress: la,
  };
  if (!mmioPath)
    return c.vcpu.stop(`access to guest-physical ${hex(gpa)} (linear ${hex(la)}) outside the VM's RAM`);
  mmioPath.handle({ ...c, exit: synth });
}

function shadowPageFault(c: ExitContext): void {
  const { vm, vcpu, host } = c;
  host.charge(L0_COST.pageFault);
  const sm = shadowOf(vm);
  const la = c.exit.qualification;
  const ec = c.exit.interruptionErrorCode;
  const rip = host.vmread(F.GUEST_RIP) as bigint;
  const rflags = host.vmread(F.GUEST_RFLAGS) as bigint;

  const p = guestPaging(vcpu);
  const access: GuestAccess = {
    write: (ec & 2) !== 0,
    user: (ec & 4) !== 0,
    fetch: (ec & 16) !== 0,
    ac: (rflags & 0x40000n) !== 0n,
  };
  const w = walkGuest(vm, p, la, access, true);
  host.charge(L0_COST.guestWalkRef * (w.ok ? Math.max(1, w.entries.length) : 4));
  if (!w.ok) {
    if (w.kind === 'page-fault') return reflectPf(c, la, w.errorCode);
    if (w.kind === 'table-outside-ram')
      return vcpu.stop(
        `the guest's page walk for linear ${hex(la)} reads a paging-structure entry at guest-physical ${hex(w.gpa ?? 0)}, outside the VM's RAM`,
      );
    return vcpu.stop(`#PF exit at a non-canonical linear address ${hex(la)}`);
  }
  // Not RAM: MMIO (or nothing). The EPT-violation path emulates it.
  if (vm.gpaToHpa(w.frameGpa) < 0) return shadowMmio(c, la, w.gpa, access);
  // Guard: the same fault filled over and over means L0 cannot resolve it; stop rather than spin.
  const key = `${rip}:${la}:${ec}`;
  const r = repeats.get(vcpu);
  if (r && r.key === key) {
    if (++r.n > MAX_REPEATS)
      return vcpu.stop(
        `shadow paging cannot resolve a #PF at linear ${hex(la)} (error code ${hex(ec)}, RIP ${hex(rip)})`,
      );
  } else repeats.set(vcpu, { key, n: 1 });
  const lin = p.efer & 0x400n ? Number(BigInt.asIntN(64, la)) : Number(la & 0xffffffffn);
  const page = Math.floor(lin / 4096) * 4096;
  try {
    if (access.write && sm.tracker.isTracked(w.frameGpa / 4096)) sm.ptWrite(vcpu, page, w, access, p);
    else sm.fill(vcpu, page, w, access, p);
  } catch (e) {
    if (e instanceof UserError) return vcpu.stop(`shadow paging: ${e.message}`);
    throw e;
  }
  reinjectVectoring(c);
}

/** EXCEPTION_NMI (exit reason 0): under shadow paging, the #PF of the exception bitmap. */
export const exceptionExit: ExitHandler = {
  name: 'EXCEPTION_NMI',
  handle(c) {
    const info = c.exit.interruptionInfo;
    const vector = info & 0xff,
      type = (info >> 8) & 7;
    if (c.vm.mmu === 'shadow' && vector === PF && type === 3) return shadowPageFault(c);
    c.vcpu.stop(
      `unexpected exception exit (vector ${vector}, type ${type}, interruption info ${hex(info >>> 0)})`,
    );
  },
};

/** INVLPG (reason 14): the shadow is exact (tracked writes), so only the hardware TLB is flushed. */
export const invlpgExit: ExitHandler = {
  name: 'INVLPG',
  handle(c) {
    c.host.charge(L0_COST.invlpg);
    if (c.vm.mmu === 'shadow') {
      const la = c.exit.qualification;
      const lin =
        guestPaging(c.vcpu).efer & 0x400n ? Number(BigInt.asIntN(64, la)) : Number(la & 0xffffffffn);
      shadowOf(c.vm).invlpg(c.vcpu, lin);
    }
    skipInsn(c);
  },
};

/**
 * INVPCID (reason 58; exits with INVLPG exiting and "enable INVPCID"): the type comes from the
 * register in instruction-information bits 31:28; an invalid type is #GP(0). Every valid type
 * flushes the whole VPID (allowed: INVPCID may invalidate more than it must). Deviation: the
 * descriptor's checks (PCID > 4095, non-canonical address) are not made.
 */
export const invpcidExit: ExitHandler = {
  name: 'INVPCID',
  handle(c) {
    c.host.charge(L0_COST.invlpg);
    const type = readGpr(c.host, (c.exit.instructionInfo >>> 28) & 15);
    if (type > 3n) return injectException(c.host, 13, 0);
    if (c.vm.mmu === 'shadow') shadowOf(c.vm).flushVcpu(c.vcpu);
    else c.host.invvpid(1, c.vm.vpid(c.vcpu.index));
    skipInsn(c);
  },
};

/** MONITOR_TRAP_FLAG (reason 37): the single-stepped page-table write is done. */
export const mtfExit: ExitHandler = {
  name: 'MONITOR_TRAP_FLAG',
  handle(c) {
    if (c.vm.mmu === 'shadow' && shadowOf(c.vm).endPtWrites(c.vcpu)) return;
    const ctl = c.host.vmread(F.CPU_BASED_VM_EXEC_CONTROL) as bigint;
    c.host.vmwrite(F.CPU_BASED_VM_EXEC_CONTROL, ctl & ~(1n << 27n));
  },
};

/**
 * RDMSR/WRMSR of IA32_EFER under shadow paging (the MSR bitmap makes them exit); any other
 * MSR goes to `inner` (the table's own MSR handler).
 */
export function withShadowEfer(write: boolean, inner: ExitHandler): ExitHandler {
  return {
    name: inner.name,
    handle(c) {
      const ecx = Number(c.host.getReg(1) & 0xffffffffn);
      if (c.vm.mmu !== 'shadow' || ecx !== MSR_EFER) return inner.handle(c);
      c.host.charge(L0_COST.msr);
      const old = c.vcpu.guestEfer;
      if (!write) {
        c.host.setReg(0, old & 0xffffffffn);
        c.host.setReg(2, old >> 32n);
        return skipInsn(c);
      }
      const v = ((c.host.getReg(2) & 0xffffffffn) << 32n) | (c.host.getReg(0) & 0xffffffffn);
      // SCE, LME, LMA (read-only), NXE (SDM 4 Table 2-2); NXE needs CPUID.80000001H:EDX.NX.
      const nx = (c.host.cpuid(0x80000001, 0)[3] & (1 << 20)) !== 0;
      if (v & ~(0x1n | 0x100n | 0x400n | (nx ? 0x800n : 0n))) return injectException(c.host, 13, 0);
      const p = guestPaging(c.vcpu);
      if (p.cr0 & 0x80000000n && (v ^ old) & 0x100n) return injectException(c.host, 13, 0);
      const nv = (v & ~0x400n) | (old & 0x400n);
      c.vcpu.guestEfer = nv;
      applyShadowEfer(c);
      if ((nv ^ old) & 0x800n) shadowOf(c.vm).activate(c.vcpu);
      skipInsn(c);
    },
  };
}
