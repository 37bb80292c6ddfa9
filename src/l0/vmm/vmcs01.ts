/**
 * vmcs01: how L0 runs its L1 guest. Controls come from the capability MSRs (the
 * default1 bits) plus what L0 needs; the guest starts the way a multiboot loader leaves
 * a kernel (32-bit protected mode, paging off) thanks to unrestricted guest under ept01.
 * CR0.NE and CR4.VMXE are host-owned (fixed in VMX operation) and hidden by read shadows.
 */
import { VMCS_FIELD as F, writeFlatSegments, type VmxHost } from '../hw.js';

/** A host CR3 for the host-state area: checked by VM entry, never loaded (L0 is TypeScript). */
const HOST_CR3 = 0x30000;

// Control bits used here (SDM 3C §24.6-24.8).
const CPU_UNCOND_IO = 1 << 24,
  CPU_HLT = 1 << 7,
  CPU_MSR_BITMAPS = 1 << 28,
  CPU_SECONDARY = 1 << 31;
const SEC_EPT = 1 << 1,
  SEC_RDTSCP = 1 << 3,
  SEC_VPID = 1 << 5,
  SEC_UNRESTRICTED = 1 << 7,
  SEC_INVPCID = 1 << 12;
const EXIT_HOST_64 = 1 << 9,
  EXIT_SAVE_PAT = 1 << 18,
  EXIT_LOAD_PAT = 1 << 19,
  EXIT_SAVE_EFER = 1 << 20,
  EXIT_LOAD_EFER = 1 << 21;
const ENTRY_LOAD_PAT = 1 << 14,
  ENTRY_LOAD_EFER = 1 << 15;

export interface GuestEntry {
  entry: number;
  eax: number;
  ebx: number;
  gdtBase: number;
  gdtLimit: number;
  codeSelector: number;
  dataSelector: number;
}

/** TRUE control capability MSRs: bits 31:0 must be 1, bits 63:32 may be 1. */
function must1(h: VmxHost, msr: number): number {
  return Number(h.capability(msr) & 0xffffffffn) | 0;
}

/** Where a vCPU's vmcs01 and the VM's structures live in host-physical memory. */
export interface Vmcs01Layout {
  vmcs01: number;
  msrBitmap: number;
  eptp: number;
  vpid: number;
}

const ok = (r: { ok: boolean }, what: string): void => {
  if (!r.ok) throw new Error(`L0: ${what} failed: ${JSON.stringify(r)}`);
};

/** Fill a VM's MSR bitmap: the VMX capability MSRs exit (VMX is hidden from L1: they #GP). */
export function setupMsrBitmap(h: VmxHost, bitmap: number): void {
  const mem = h.mem;
  for (let msr = 0x480; msr <= 0x493; msr++)
    mem.write8(bitmap + (msr >> 3), mem.read8(bitmap + (msr >> 3)) | (1 << (msr & 7)));
}

/** Create vmcs01 for a vCPU, make it current, and write its controls, host and guest state. */
export function setupVmcs01(h: VmxHost, l: Vmcs01Layout, e: GuestEntry): void {
  h.mem.write32(l.vmcs01, h.revisionId);
  ok(h.vmclear(l.vmcs01), 'VMCLEAR vmcs01');
  ok(h.vmptrld(l.vmcs01), 'VMPTRLD vmcs01');
  const w = (enc: number, v: number | bigint): void => ok(h.vmwrite(enc, v), `VMWRITE 0x${enc.toString(16)}`);
  w(F.PIN_BASED_VM_EXEC_CONTROL, must1(h, 0x48d));
  w(F.CPU_BASED_VM_EXEC_CONTROL, must1(h, 0x48e) | CPU_UNCOND_IO | CPU_HLT | CPU_MSR_BITMAPS | CPU_SECONDARY);
  w(F.SECONDARY_VM_EXEC_CONTROL, SEC_EPT | SEC_RDTSCP | SEC_VPID | SEC_UNRESTRICTED | SEC_INVPCID);
  w(
    F.VM_EXIT_CONTROLS,
    must1(h, 0x48f) | EXIT_HOST_64 | EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_SAVE_EFER | EXIT_LOAD_EFER,
  );
  w(F.VM_ENTRY_CONTROLS, must1(h, 0x490) | ENTRY_LOAD_PAT | ENTRY_LOAD_EFER);
  w(F.MSR_BITMAP, l.msrBitmap);
  w(F.EPT_POINTER, l.eptp);
  w(F.VIRTUAL_PROCESSOR_ID, l.vpid);
  w(F.VMCS_LINK_POINTER, 0xffffffffffffffffn);
  w(F.EXCEPTION_BITMAP, 0);
  // Host state: a valid 64-bit host (checked by VM entry, never loaded: L0 is TypeScript).
  w(F.HOST_CR0, 0x80000031);
  w(F.HOST_CR3, HOST_CR3);
  w(F.HOST_CR4, 0x2020);
  w(F.HOST_CS_SELECTOR, 8);
  w(F.HOST_SS_SELECTOR, 0x10);
  w(F.HOST_TR_SELECTOR, 0x18);
  w(F.HOST_RIP, 0x1000);
  w(F.HOST_RSP, 0x2000);
  w(F.HOST_IA32_EFER, 0x500);
  w(F.HOST_IA32_PAT, 0x0007040600070406n);
  // Guest: as a multiboot loader leaves it (the multiboot spec §3.2).
  w(F.CR0_GUEST_HOST_MASK, 0x20); // NE is fixed to 1 in VMX operation
  w(F.CR0_READ_SHADOW, 0x11);
  w(F.GUEST_CR0, 0x31);
  w(F.CR4_GUEST_HOST_MASK, 0x2000); // VMXE
  w(F.CR4_READ_SHADOW, 0);
  w(F.GUEST_CR4, 0x2000);
  w(F.GUEST_CR3, 0);
  w(F.GUEST_IA32_EFER, 0);
  w(F.GUEST_IA32_PAT, 0x0007040600070406n);
  // Flat 32-bit code and data, as the multiboot loader's GDT describes them.
  writeFlatSegments(h, { cs: e.codeSelector, ds: e.dataSelector, csAr: 0xc09b, trLimit: 0xffff });
  w(F.GUEST_GDTR_BASE, e.gdtBase);
  w(F.GUEST_GDTR_LIMIT, e.gdtLimit);
  w(F.GUEST_IDTR_LIMIT, 0x3ff);
  w(F.GUEST_RIP, e.entry);
  w(F.GUEST_RSP, 0);
  w(F.GUEST_RFLAGS, 2);
}
