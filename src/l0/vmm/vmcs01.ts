/**
 * vmcs01: how L0 runs its L1 guest. Controls come from the capability MSRs (the
 * default1 bits) plus what L0 needs; the guest starts the way a multiboot loader leaves
 * a kernel (32-bit protected mode, paging off) thanks to unrestricted guest under ept01.
 * CR0.NE and CR4.VMXE are host-owned (fixed in VMX operation) and hidden by read shadows.
 * With `shadowCr3` (shadow paging, mmu/shadow.ts) there is no EPT and so no unrestricted
 * guest: CR0.PE/PG/WP and the paging bits of CR4 are host-owned too, CR3 accesses, INVLPG and
 * every #PF exit, and the guest starts on the identity shadow root (cr-access.ts).
 */
import { VMCS_FIELD as F, VMX_BITS as B, writeFlatSegments, type VmxHost } from '../hw.js';
import { SHADOW_CR0_MASK, SHADOW_CR4_MASK, shadowRealCr4, shadowRealEfer } from './cr-access.js';

/** A host CR3 for the host-state area: checked by VM entry, never loaded (L0 is TypeScript). */
const HOST_CR3 = 0x30000;

// DR7 and IA32_DEBUGCTL are per-VM state kept in the VMCS: the TypeScript host never loads
// the processor's own at a VM exit, so each entry loads the guest's (ENTRY_LOAD_DEBUG) and
// each exit saves it (EXIT_SAVE_DEBUG).

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
  /**
   * Shadow paging (mmu/shadow.ts) instead of EPT: the shadow root the guest starts on (its
   * paging-off identity root). Absent: EPT with unrestricted guest.
   */
  shadowCr3?: number;
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
  const shadow = l.shadowCr3 !== undefined;
  w(F.PIN_BASED_VM_EXEC_CONTROL, must1(h, 0x48d));
  w(
    F.CPU_BASED_VM_EXEC_CONTROL,
    must1(h, 0x48e) |
      B.CPU_UNCOND_IO |
      B.CPU_HLT |
      B.CPU_USE_MSR_BITMAPS |
      B.CPU_SECONDARY |
      (shadow ? B.CPU_INVLPG | B.CPU_CR3_LOAD | B.CPU_CR3_STORE : 0),
  );
  w(
    F.SECONDARY_VM_EXEC_CONTROL,
    B.SEC_RDTSCP | B.SEC_VPID | B.SEC_INVPCID | (shadow ? 0 : B.SEC_EPT | B.SEC_UNRESTRICTED),
  );
  w(
    F.VM_EXIT_CONTROLS,
    must1(h, 0x48f) |
      B.EXIT_SAVE_DEBUG |
      B.EXIT_HOST_ADDR_SPACE |
      B.EXIT_SAVE_PAT |
      B.EXIT_LOAD_PAT |
      B.EXIT_SAVE_EFER |
      B.EXIT_LOAD_EFER,
  );
  w(F.VM_ENTRY_CONTROLS, must1(h, 0x490) | B.ENTRY_LOAD_DEBUG | B.ENTRY_LOAD_PAT | B.ENTRY_LOAD_EFER);
  w(F.MSR_BITMAP, l.msrBitmap);
  if (!shadow) w(F.EPT_POINTER, l.eptp);
  w(F.VIRTUAL_PROCESSOR_ID, l.vpid);
  w(F.VMCS_LINK_POINTER, 0xffffffffffffffffn);
  // Shadow paging sees every #PF (error-code mask and match 0: all match, SDM 3C §25.2).
  w(F.EXCEPTION_BITMAP, shadow ? 1 << 14 : 0);
  w(F.PAGE_FAULT_ERROR_CODE_MASK, 0);
  w(F.PAGE_FAULT_ERROR_CODE_MATCH, 0);
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
  if (shadow) {
    // Shadow paging (cr-access.ts): PE/PG/WP/NE and the paging bits of CR4 are L0's; the guest
    // starts with paging off on the identity shadow root, which the hardware walks as PAE paging.
    w(F.CR0_GUEST_HOST_MASK, SHADOW_CR0_MASK);
    w(F.CR0_READ_SHADOW, 0x11);
    w(F.GUEST_CR0, 0x11n | SHADOW_CR0_MASK);
    w(F.CR4_GUEST_HOST_MASK, SHADOW_CR4_MASK);
    w(F.CR4_READ_SHADOW, 0);
    w(F.GUEST_CR4, shadowRealCr4(0n));
    w(F.GUEST_CR3, l.shadowCr3!);
    w(F.GUEST_IA32_EFER, shadowRealEfer(0n));
    // IA32_EFER reads and writes exit (L0 keeps the guest's EFER: paging-exits.ts).
    const efer = 0xc0000080 & 0x1fff;
    for (const base of [1024, 3072]) {
      const a = l.msrBitmap + base + (efer >> 3);
      h.mem.write8(a, h.mem.read8(a) | (1 << (efer & 7)));
    }
  } else {
    w(F.CR0_GUEST_HOST_MASK, 0x20); // NE is fixed to 1 in VMX operation
    w(F.CR0_READ_SHADOW, 0x11);
    w(F.GUEST_CR0, 0x31);
    w(F.CR4_GUEST_HOST_MASK, 0x2000); // VMXE
    w(F.CR4_READ_SHADOW, 0);
    w(F.GUEST_CR4, 0x2000);
    w(F.GUEST_CR3, 0);
    w(F.GUEST_IA32_EFER, 0);
  }
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
