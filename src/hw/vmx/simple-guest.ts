/**
 * A minimal 64-bit guest for users of the host interface (tests, benchmarks,
 * examples): identity EPT over the first GiB, guest page tables mapping 2 GiB
 * with 1 GiB pages (the second GiB has no EPT mapping, so touching it is an EPT
 * violation), flat segments, and the guest code at 1 MiB. The VMCS is prepared as
 * a hypervisor would: capability MSRs decide the default1 bits.
 */
import type { Machine } from '../machine.js';
import { writeFlatSegments, type VmxHost } from './host.js';
import { F } from './f.js';
import { CPU_HLT, CPU_SECONDARY, SEC_EPT, EXIT_HOST_ADDR_SPACE, ENTRY_IA32E } from './bits.js';

export const SG = {
  VMXON: 0x10000,
  VMCS: 0x11000,
  EPT_PML4: 0x20000,
  EPT_PDPT: 0x21000,
  EPT_PD: 0x22000,
  G_PML4: 0x30000,
  G_PDPT: 0x31000,
  CODE: 0x100000,
  STACK: 0x200000,
} as const;

/** Prepare memory and a current VMCS; returns the host interface. Throws if a VMX instruction fails. */
export function simpleGuest(m: Machine, code: Uint8Array, extraProc = 0): VmxHost {
  const h = m.vmxHost();
  m.mem.write32(SG.VMXON, h.revisionId);
  m.mem.write32(SG.VMCS, h.revisionId);
  m.mem.write64(SG.EPT_PML4, SG.EPT_PDPT | 7);
  m.mem.write64(SG.EPT_PDPT, SG.EPT_PD | 7);
  for (let k = 0; k < 512; k++) m.mem.write64(SG.EPT_PD + 8 * k, k * 0x200000 + (7 | (6 << 3) | 0x80));
  m.mem.write64(SG.G_PML4, SG.G_PDPT | 3);
  m.mem.write64(SG.G_PDPT, 0x83);
  m.mem.write64(SG.G_PDPT + 8, 0x40000000 + 0x83);
  m.mem.writeBytes(SG.CODE, code);
  const must = (r: { ok: boolean }, what: string): void => {
    if (!r.ok) throw new Error(`simpleGuest: ${what} failed`);
  };
  must(h.vmxon(SG.VMXON), 'VMXON');
  must(h.vmclear(SG.VMCS), 'VMCLEAR');
  must(h.vmptrld(SG.VMCS), 'VMPTRLD');
  const caps = m.cpus[0].vmx.caps;
  const wr = (enc: number, v: number | bigint): void =>
    must(h.vmwrite(enc, v), `VMWRITE ${enc.toString(16)}`);
  wr(F.PIN_BASED_VM_EXEC_CONTROL, caps.truePin.must1);
  wr(F.CPU_BASED_VM_EXEC_CONTROL, caps.trueProc.must1 | CPU_HLT | CPU_SECONDARY | extraProc);
  wr(F.SECONDARY_VM_EXEC_CONTROL, SEC_EPT);
  wr(F.VM_EXIT_CONTROLS, caps.trueExit.must1 | EXIT_HOST_ADDR_SPACE);
  wr(F.VM_ENTRY_CONTROLS, caps.trueEntry.must1 | ENTRY_IA32E);
  wr(F.EPT_POINTER, SG.EPT_PML4 | 6 | (3 << 3));
  wr(F.VMCS_LINK_POINTER, 0xffffffffffffffffn);
  for (const [cr0, cr3, cr4] of [
    [F.HOST_CR0, F.HOST_CR3, F.HOST_CR4],
    [F.GUEST_CR0, F.GUEST_CR3, F.GUEST_CR4],
  ]) {
    wr(cr0, 0x80000031);
    wr(cr3, SG.G_PML4);
    wr(cr4, 0x2020);
  }
  wr(F.HOST_CS_SELECTOR, 8);
  wr(F.HOST_SS_SELECTOR, 0x10);
  wr(F.HOST_TR_SELECTOR, 0x18);
  wr(F.HOST_RIP, 0x1000);
  wr(F.HOST_RSP, 0x2000);
  writeFlatSegments(h, { cs: 8, ds: 0x10, csAr: 0xa09b, tr: 0x18, trLimit: 0x67 });
  wr(F.GUEST_GDTR_LIMIT, 0xffff);
  wr(F.GUEST_IDTR_LIMIT, 0xffff);
  wr(F.GUEST_RIP, SG.CODE);
  wr(F.GUEST_RSP, SG.STACK);
  wr(F.GUEST_RFLAGS, 2);
  return h;
}
