/**
 * Who handles an exit from L2 (KVM's nested_vmx_reflect_vmexit as two predicates):
 * `l0WantsExit` first — exits that exist because of L0's own choices (ept02 faults, L0's
 * timer) — then `l1WantsExit`: would this exit have happened had L1 run L2 on hardware
 * with vmcs12? That is decided from vmcs12's controls and L1's bitmaps in L1 memory
 * (SDM 3C §25.1-25.2, one row per exit reason). Exits neither wants are L0's work on L1's
 * behalf (e.g. a port L1 lets through reaches L1's virtual device, which L0 emulates).
 */
import { VMCS_FIELD as F, VMX_BITS as B, type ExitRecord, type Vmcs } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import { get12 } from './vmcs02.js';
import { l1Read8 } from './l1mem.js';
import { readGpr } from '../vmm/guest-state.js';

const R = B.R;

/**
 * EPT faults go to L0 first: ept02 is L0's (and without EPT in vmcs12, ept01 is L1's memory map).
 * So do physical interrupts and NMIs (vmcs02 has vmcs01's external-interrupt and NMI exiting):
 * they are L0's, and L1's own are virtual and reach it as exits L0 synthesizes (interrupts.ts).
 */
export function l0WantsExit(r: ExitRecord, l0Shadow = false): boolean {
  return (
    r.reason === R.EPT_VIOLATION ||
    r.reason === R.EPT_MISCONFIG ||
    r.reason === R.EXTERNAL_INTERRUPT ||
    (r.reason === R.EXCEPTION_NMI && ((r.interruptionInfo >> 8) & 7) === B.INTR_NMI) ||
    (l0Shadow && isPageFault(r))
  );
}

/**
 * A #PF exit. Under shadow-on-shadow (`l0Shadow`: L0 without EPT) L0 wants every one first: L2
 * runs on spt02, and only a walk of L1's tables tells whether the fault is L1's (spt02-exits.ts).
 */
export function isPageFault(r: ExitRecord): boolean {
  return r.reason === R.EXCEPTION_NMI && (r.interruptionInfo & 0x7ff) === ((B.INTR_HW_EXC << 8) | 14);
}

function secondary(v12: Vmcs): number {
  const proc = Number(get12(v12, F.CPU_BASED_VM_EXEC_CONTROL));
  return proc & B.CPU_SECONDARY ? Number(get12(v12, F.SECONDARY_VM_EXEC_CONTROL)) : 0;
}

/** I/O: L1's bitmaps (every port of the access), else unconditional I/O exiting (§25.1.3). */
function ioWanted(v: Vcpu, v12: Vmcs, q: bigint, proc: number): boolean {
  if (proc & B.CPU_USE_IO_BITMAPS) {
    const size = Number(q & 7n) + 1;
    const port = Number((q >> 16n) & 0xffffn);
    for (let p = port; p < port + size; p++) {
      if (p > 0xffff) return true; // wraps around
      const bitmap = Number(get12(v12, p < 0x8000 ? F.IO_BITMAP_A : F.IO_BITMAP_B));
      const bit = p & 0x7fff;
      if ((l1Read8(v.vm, bitmap + (bit >> 3)) >> (bit & 7)) & 1) return true;
    }
    return false;
  }
  return (proc & B.CPU_UNCOND_IO) !== 0;
}

/** RDMSR/WRMSR: L1's MSR bitmap, or always without one (§25.1.3). */
function msrWanted(v: Vcpu, v12: Vmcs, write: boolean, proc: number): boolean {
  if (!(proc & B.CPU_USE_MSR_BITMAPS)) return true;
  const ecx = Number(v.host.getReg(1) & 0xffffffffn);
  let base: number;
  if (ecx <= 0x1fff) base = write ? 0x800 : 0;
  else if (ecx >= 0xc0000000 && ecx <= 0xc0001fff) base = write ? 0xc00 : 0x400;
  else return true;
  const bit = ecx & 0x1fff;
  const bitmap = Number(get12(v12, F.MSR_BITMAP));
  return ((l1Read8(v.vm, bitmap + base + (bit >> 3)) >> (bit & 7)) & 1) === 1;
}

/** CR accesses (§25.1.3): masks and read shadows, CR3 target values, CR3/CR8 load/store exiting. */
function crWanted(v: Vcpu, v12: Vmcs, q: bigint, proc: number): boolean {
  const cr = Number(q & 15n),
    type = Number((q >> 4n) & 3n),
    reg = Number((q >> 8n) & 15n);
  const h = v.host;
  const maskShadow = (n: 0 | 4): [bigint, bigint] =>
    n === 0
      ? [get12(v12, F.CR0_GUEST_HOST_MASK), get12(v12, F.CR0_READ_SHADOW)]
      : [get12(v12, F.CR4_GUEST_HOST_MASK), get12(v12, F.CR4_READ_SHADOW)];
  if (type === 0) {
    // MOV to CR
    if (cr === 0 || cr === 4) {
      const [m, s] = maskShadow(cr);
      return ((readGpr(h, reg) ^ s) & m) !== 0n;
    }
    if (cr === 3) {
      if (!(proc & B.CPU_CR3_LOAD)) return false;
      const value = readGpr(h, reg);
      const n = Number(get12(v12, F.CR3_TARGET_COUNT));
      for (let k = 0; k < Math.min(n, 4); k++)
        if (get12(v12, F.CR3_TARGET_VALUE0 + 2 * k) === value) return false;
      return true;
    }
    if (cr === 8) return (proc & B.CPU_CR8_LOAD) !== 0;
    return true;
  }
  if (type === 1)
    return cr === 3 ? (proc & B.CPU_CR3_STORE) !== 0 : cr === 8 ? (proc & B.CPU_CR8_STORE) !== 0 : true;
  const [m, s] = maskShadow(0);
  if (type === 2) return (m & 8n) !== 0n && (s & 8n) !== 0n; // CLTS
  // LMSW: source in bits 31:16; exits if it would change a bit L1 owns (PE set, or MP/EM/TS changed).
  const src = (q >> 16n) & 0xffffn;
  if (m & 1n && !(s & 1n) && src & 1n) return true;
  return ((src ^ s) & m & 0xen) !== 0n;
}

export function l1WantsExit(v: Vcpu, v12: Vmcs, r: ExitRecord): boolean {
  const proc = Number(get12(v12, F.CPU_BASED_VM_EXEC_CONTROL));
  const proc2 = secondary(v12);
  const pin = Number(get12(v12, F.PIN_BASED_VM_EXEC_CONTROL));
  switch (r.reason) {
    case R.EXCEPTION_NMI: {
      const vec = r.interruptionInfo & 0xff,
        type = (r.interruptionInfo >> 8) & 7;
      if (type === 2) return (pin & B.PIN_NMI) !== 0;
      const bitmap = Number(get12(v12, F.EXCEPTION_BITMAP));
      if (vec === 14) {
        const mask = Number(get12(v12, F.PAGE_FAULT_ERROR_CODE_MASK)),
          match = Number(get12(v12, F.PAGE_FAULT_ERROR_CODE_MATCH));
        const bit = ((bitmap >> 14) & 1) === 1;
        return bit === ((r.interruptionErrorCode & mask) === match);
      }
      return ((bitmap >>> vec) & 1) === 1;
    }
    case R.EXTERNAL_INTERRUPT:
      return (pin & B.PIN_EXT_INTR) !== 0;
    case R.INTERRUPT_WINDOW:
      return (proc & B.CPU_INTR_WINDOW) !== 0;
    case R.NMI_WINDOW:
      return (proc & B.CPU_NMI_WINDOW) !== 0;
    case R.HLT:
      return (proc & B.CPU_HLT) !== 0;
    case R.INVLPG:
      return (proc & B.CPU_INVLPG) !== 0;
    case R.RDPMC:
      return (proc & B.CPU_RDPMC) !== 0;
    case R.RDTSC:
      return (proc & B.CPU_RDTSC) !== 0;
    case R.RDTSCP:
      return (proc & B.CPU_RDTSC) !== 0 && (proc2 & B.SEC_RDTSCP) !== 0;
    case R.CR_ACCESS:
      return crWanted(v, v12, r.qualification, proc);
    case R.DR_ACCESS:
      return (proc & B.CPU_MOV_DR) !== 0;
    case R.IO_INSTRUCTION:
      return ioWanted(v, v12, r.qualification, proc);
    case R.MSR_READ:
      return msrWanted(v, v12, false, proc);
    case R.MSR_WRITE:
      return msrWanted(v, v12, true, proc);
    case R.MWAIT:
      return (proc & B.CPU_MWAIT) !== 0;
    case R.MONITOR_TRAP_FLAG:
      return (proc & B.CPU_MTF) !== 0;
    case R.MONITOR:
      return (proc & B.CPU_MONITOR) !== 0;
    case R.PAUSE:
      return (proc & B.CPU_PAUSE) !== 0;
    case R.TPR_BELOW_THRESHOLD:
      return (proc & B.CPU_TPR_SHADOW) !== 0;
    case R.GDTR_IDTR:
    case R.LDTR_TR:
      return (proc2 & B.SEC_DESC_TABLE) !== 0;
    case R.PREEMPTION_TIMER:
      return (pin & B.PIN_PREEMPTION_TIMER) !== 0;
    case R.WBINVD:
      return (proc2 & B.SEC_WBINVD) !== 0;
    case R.RDRAND:
      return (proc2 & B.SEC_RDRAND) !== 0;
    case R.RDSEED:
      return (proc2 & B.SEC_RDSEED) !== 0;
    case R.INVPCID:
      return (proc & B.CPU_INVLPG) !== 0 && (proc2 & B.SEC_INVPCID) !== 0;
    default:
      // Unconditional exits (CPUID, INVD, GETSEC, triple fault, task switch, VMX instructions,
      // XSETBV, …): L1 would have seen them.
      return true;
  }
}
