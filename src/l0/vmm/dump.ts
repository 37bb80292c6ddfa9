/** A register dump of the current guest, for reports of exits L0 cannot handle. */
import { VMCS_FIELD as F, type VmxHost } from '../hw.js';

export function dumpGuest(h: VmxHost): string {
  const names = ['RAX', 'RCX', 'RDX', 'RBX', 'RSP', 'RBP', 'RSI', 'RDI'];
  const regs = names.map(
    (n, k) => `${n}=${(k === 4 ? (h.vmread(F.GUEST_RSP) as bigint) : h.getReg(k)).toString(16)}`,
  );
  const f = (enc: number): string => (h.vmread(enc) as bigint).toString(16);
  return `${regs.join(' ')} RIP=${f(F.GUEST_RIP)} RFLAGS=${f(F.GUEST_RFLAGS)} CR0=${f(F.GUEST_CR0)} CR3=${f(F.GUEST_CR3)} CR4=${f(F.GUEST_CR4)}`;
}
