/**
 * Small helpers for exit handlers outside exits.ts (CR access, paging exits): advance the
 * guest past an instruction, inject an exception, read and write guest GPRs.
 */
import { VMCS_FIELD as F } from '../hw.js';
import { L0_COST } from '../cost.js';
import type { ExitContext } from './exits.js';

const RSP = 4;

/** Advance the guest past the exiting instruction (and drop STI/MOV-SS blocking it ended). */
export function skipInsn(c: ExitContext): void {
  const rip = c.host.vmread(F.GUEST_RIP) as bigint;
  c.host.vmwrite(F.GUEST_RIP, rip + BigInt(c.exit.instructionLength));
  const intr = c.host.vmread(F.GUEST_INTERRUPTIBILITY_INFO) as bigint;
  if (intr & 3n) c.host.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, intr & ~3n);
  c.host.charge(3 * L0_COST.vmcsAccess);
}
/** Inject a hardware exception at the next VM entry (SDM 3C §24.8.3). */
export function injectException(c: ExitContext, vector: number, errorCode?: number): void {
  const info = 0x80000000 | (3 << 8) | vector | (errorCode !== undefined ? 1 << 11 : 0);
  c.host.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
  if (errorCode !== undefined) c.host.vmwrite(F.VM_ENTRY_EXCEPTION_ERROR_CODE, errorCode);
}
export function readGpr(c: ExitContext, r: number): bigint {
  return r === RSP ? (c.host.vmread(F.GUEST_RSP) as bigint) : c.host.getReg(r);
}
export function writeGpr(c: ExitContext, r: number, v: bigint): void {
  if (r === RSP) c.host.vmwrite(F.GUEST_RSP, v);
  else c.host.setReg(r, v);
}
/** The guest runs 64-bit code (IA-32e mode and CS.L): operands of MOV CR are 64-bit. */
export function guestIn64BitMode(c: ExitContext): boolean {
  const entry = c.host.vmread(F.VM_ENTRY_CONTROLS) as bigint;
  const csAr = c.host.vmread(F.GUEST_CS_AR_BYTES) as bigint;
  return (entry & (1n << 9n)) !== 0n && (csAr & (1n << 13n)) !== 0n;
}
