/** Completing an emulated instruction of L1: RIP past it, or an exception injected instead. */
import { VMCS_FIELD as F, type VmxHost } from '../hw.js';

/** Advance past the exiting instruction and drop the STI/MOV-SS blocking it ended. */
export function skipInsn(h: VmxHost, len: number): void {
  h.vmwrite(F.GUEST_RIP, (h.vmread(F.GUEST_RIP) as bigint) + BigInt(len));
  const intr = h.vmread(F.GUEST_INTERRUPTIBILITY_INFO) as bigint;
  if (intr & 3n) h.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, intr & ~3n);
}

/** Inject a hardware exception at the next VM entry (SDM 3C §24.8.3); #PF also sets CR2. */
export function injectException(h: VmxHost, vector: number, errorCode?: number, cr2?: bigint): void {
  const info = 0x80000000 | (3 << 8) | vector | (errorCode !== undefined ? 1 << 11 : 0);
  h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
  if (errorCode !== undefined) h.vmwrite(F.VM_ENTRY_EXCEPTION_ERROR_CODE, errorCode);
  if (cr2 !== undefined) {
    const setCr2 = (h as unknown as { setCr2?: (v: bigint) => void }).setCr2;
    if (setCr2) setCr2.call(h, cr2);
  }
}
export const UD = 6,
  GP = 13,
  PF = 14;
