/**
 * Reading and changing a loaded vCPU's guest state for L0's device emulation (MMIO, string
 * I/O, MSRs, CR accesses, L1's VMX instructions): general-purpose registers (RSP lives in the VMCS), the CPU mode, completing an
 * emulated instruction, injecting an exception. Every VMREAD/VMWRITE here is one the host
 * interface performs; the callers charge L0's software cost.
 */
import { VMCS_FIELD as F, type VmxHost } from '../hw.js';
import type { CpuMode } from './mmio-decode.js';

const RSP = 4;
const CR0_PE = 1n,
  EFER_LMA = 0x400n,
  RFLAGS_TF = 0x100n,
  CS_L = 1 << 13,
  CS_D = 1 << 14;
/** Interruptibility state: blocking by STI and by MOV SS (SDM 3C §24.4.2). */
const BLOCK_STI_MOVSS = 3n;
/** Pending debug exceptions: BS, a single-step trap pending (SDM 3C §24.4.2). */
const PENDING_BS = 0x4000n;

const num = (v: bigint | unknown): bigint => (typeof v === 'bigint' ? v : 0n);

export function vmread(h: VmxHost, enc: number): bigint {
  return num(h.vmread(enc));
}

/** A 64-bit GPR of the guest (RAX=0 … R15=15). */
export function readGpr(h: VmxHost, r: number): bigint {
  return r === RSP ? vmread(h, F.GUEST_RSP) : h.getReg(r);
}
export function writeGpr(h: VmxHost, r: number, v: bigint): void {
  if (r === RSP) h.vmwrite(F.GUEST_RSP, BigInt.asUintN(64, v));
  else h.setReg(r, BigInt.asUintN(64, v));
}

/**
 * Write the low `size` bytes of a register as an instruction with that operand size does:
 * 8- and 16-bit writes keep the other bits, 32-bit writes zero-extend (SDM 1 §3.4.1.1),
 * `high8` writes bits 15:8 (AH, CH, DH, BH).
 */
export function writeGprSized(h: VmxHost, r: number, size: 1 | 2 | 4 | 8, v: bigint, high8 = false): void {
  const old = readGpr(h, r);
  if (high8) return writeGpr(h, r, (old & ~0xff00n) | ((v & 0xffn) << 8n));
  if (size === 8) return writeGpr(h, r, v);
  if (size === 4) return writeGpr(h, r, v & 0xffffffffn);
  const mask = size === 2 ? 0xffffn : 0xffn;
  writeGpr(h, r, (old & ~mask) | (v & mask));
}
/** The low `size` bytes of a register (`high8`: bits 15:8). */
export function readGprSized(h: VmxHost, r: number, size: 1 | 2 | 4 | 8, high8 = false): bigint {
  const v = readGpr(h, r);
  if (high8) return (v >> 8n) & 0xffn;
  return size === 8 ? v : v & ((1n << BigInt(size * 8)) - 1n);
}

/** The guest's execution mode from CR0.PE, EFER.LMA and CS's access rights. */
export function guestMode(h: VmxHost): CpuMode {
  const pe = (vmread(h, F.GUEST_CR0) & CR0_PE) !== 0n;
  const ar = Number(vmread(h, F.GUEST_CS_AR_BYTES));
  const lma = (vmread(h, F.GUEST_IA32_EFER) & EFER_LMA) !== 0n;
  if (!pe) return { long: false, default32: false };
  return { long: lma && (ar & CS_L) !== 0, default32: (ar & CS_D) !== 0 };
}

/** Linear address of the guest's current instruction (CS.base + RIP; 32-bit wrap outside 64-bit mode). */
export function instructionPointer(h: VmxHost, mode: CpuMode): bigint {
  const rip = vmread(h, F.GUEST_RIP);
  if (mode.long) return rip;
  const ip = mode.default32 ? rip & 0xffffffffn : rip & 0xffffn;
  return (vmread(h, F.GUEST_CS_BASE) + ip) & 0xffffffffn;
}

/**
 * Complete an instruction L0 emulated: RIP past it (wrapping as the code size does), blocking
 * by STI/MOV SS ends, and a single-step trap is made pending when RFLAGS.TF is set (the #DB
 * the instruction would have raised, delivered after VM entry: SDM 3C §26.6.3).
 */
export function completeInstruction(h: VmxHost, length: number, mode: CpuMode): void {
  const rip = vmread(h, F.GUEST_RIP) + BigInt(length);
  h.vmwrite(F.GUEST_RIP, mode.long ? rip : mode.default32 ? rip & 0xffffffffn : rip & 0xffffn);
  const intr = vmread(h, F.GUEST_INTERRUPTIBILITY_INFO);
  if (intr & BLOCK_STI_MOVSS) h.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, intr & ~BLOCK_STI_MOVSS);
  if (vmread(h, F.GUEST_RFLAGS) & RFLAGS_TF)
    h.vmwrite(F.GUEST_PENDING_DBG_EXCEPTIONS, vmread(h, F.GUEST_PENDING_DBG_EXCEPTIONS) | PENDING_BS);
}

/** Complete an exiting instruction of `length` bytes in the guest's current mode. */
export function skipInstruction(h: VmxHost, length: number): void {
  completeInstruction(h, length, guestMode(h));
}

export const UD = 6,
  GP = 13,
  PF = 14;

/**
 * Inject a hardware exception at the next VM entry (SDM 3C §24.8.3). A #PF also sets CR2,
 * which is the guest's register, not a VMCS field (set through the host interface).
 */
export function injectException(h: VmxHost, vector: number, errorCode?: number, cr2?: bigint): void {
  const info = 0x80000000 | (3 << 8) | vector | (errorCode !== undefined ? 1 << 11 : 0);
  h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
  if (errorCode !== undefined) h.vmwrite(F.VM_ENTRY_EXCEPTION_ERROR_CODE, errorCode);
  if (cr2 !== undefined) h.setCr2(cr2);
}

/** The guest's CPL: SS.DPL (SDM 3A §5.5, SDM 3C §24.4.1). */
export function guestCpl(h: VmxHost): number {
  return (Number(vmread(h, F.GUEST_SS_AR_BYTES)) >> 5) & 3;
}
