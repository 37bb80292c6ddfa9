/**
 * What vmcs01 needs for the virtual platform, beyond vmcs01.ts's base setup:
 *
 * - `platformControls`: NMI exiting with virtual NMIs (so L0 can inject NMIs and use
 *   NMI-window exiting, SDM 3C §24.6.1, §26.2.1.1), external-interrupt exiting with
 *   acknowledge-on-exit (physical interrupts belong to L0, never to the guest), and "use TPR
 *   shadow" with the vCPU's virtual-APIC page (CR8 without exits, inject.ts).
 * - `startupVmcs01`: the state an application processor starts in after INIT and a start-up
 *   IPI with vector V (SDM 3A §8.4.4, §9.1.1 Table 9-1): real mode, CS = V << 8 with base
 *   V << 12, IP 0, the other segments 0 with 64 KiB limits, CR0 = 0x60000010 (CD, NW and NE
 *   through the read shadow), EDX = the processor signature. Under EPT real mode runs under
 *   VT-x thanks to "unrestricted guest" (§26.3.1.1); under shadow paging (no unrestricted
 *   guest) vmcs01 gets the shadow-paging setup (paging forced on over the identity root, the
 *   guest's CR0/CR4 in the read shadows) and L0 emulates the real-mode code (realmode/).
 */
import { VMCS_FIELD as F, VMX_BITS as B, type VmxHost } from '../hw.js';
import { setupVmcs01, type Vmcs01Layout } from './vmcs01.js';
import { SHADOW_CR0_MASK, shadowRealCr4, shadowRealEfer } from './cr-access.js';
import { vmread } from './guest-state.js';

const must = (h: VmxHost, enc: number, v: number | bigint): void => {
  const r = h.vmwrite(enc, v);
  if (!r.ok) throw new Error(`L0: VMWRITE 0x${enc.toString(16)} failed: ${JSON.stringify(r)}`);
};

/** Allowed-1 bits of a TRUE control capability MSR (bits 63:32). */
const allowed1 = (h: VmxHost, msr: number): number => Number(h.capability(msr) >> 32n) | 0;

/** Add the platform's controls to the current vmcs01 (a vCPU's, just set up). */
export function platformControls(h: VmxHost, virtualApic: number): void {
  const pinWant = B.PIN_EXT_INTR | B.PIN_NMI | B.PIN_VIRTUAL_NMIS;
  const procWant = B.CPU_TPR_SHADOW;
  const missing = (pinWant & ~allowed1(h, 0x48d)) | (procWant & ~allowed1(h, 0x48e));
  if (missing)
    throw new Error(`L0 needs NMI exiting, virtual NMIs, external-interrupt exiting and the TPR shadow`);
  const pin = Number(vmread(h, F.PIN_BASED_VM_EXEC_CONTROL));
  must(h, F.PIN_BASED_VM_EXEC_CONTROL, (pin | pinWant) >>> 0);
  const proc = Number(vmread(h, F.CPU_BASED_VM_EXEC_CONTROL));
  // With the TPR shadow CR8 accesses use VTPR: no CR8 exits (SDM 3C §29.1.2).
  must(
    h,
    F.CPU_BASED_VM_EXEC_CONTROL,
    ((proc | procWant) & ~(B.CPU_CR8_LOAD | B.CPU_CR8_STORE | B.CPU_INTR_WINDOW | B.CPU_NMI_WINDOW)) >>> 0,
  );
  must(h, F.VIRTUAL_APIC_PAGE_ADDR, virtualApic);
  must(h, F.TPR_THRESHOLD, 0);
  const exit = Number(vmread(h, F.VM_EXIT_CONTROLS));
  must(h, F.VM_EXIT_CONTROLS, (exit | B.EXIT_ACK_INTR) >>> 0);
}

/** Build a vCPU's vmcs01 (made current) in the state a start-up IPI with `vector` leaves an AP. */
export function startupVmcs01(h: VmxHost, layout: Vmcs01Layout, vector: number): void {
  // The base setup (controls, host state); every guest field that matters is rewritten below.
  setupVmcs01(h, layout, {
    entry: 0,
    eax: 0,
    ebx: 0,
    gdtBase: 0,
    gdtLimit: 0xffff,
    codeSelector: 0,
    dataSelector: 0,
  });
  const cs = (vector & 0xff) << 8;
  // CR0 = 0x60000010 after INIT. VM entry does not load CD and NW (SDM 3C §26.3.2.1) and the
  // physical CPU runs with caches enabled, so L0 owns them, with NE, through the guest/host mask
  // (as KVM does): the guest reads them from the read shadow; a write that changes them exits.
  must(h, F.CR0_READ_SHADOW, 0x60000010);
  must(h, F.CR4_READ_SHADOW, 0);
  if (layout.shadowCr3 !== undefined) {
    // Shadow paging (cr-access.ts): PE/PG/WP/NE are L0's too; the hardware pages on the
    // identity root while the guest is in real mode, which L0 emulates.
    must(h, F.CR0_GUEST_HOST_MASK, BigInt(0x60000000) | SHADOW_CR0_MASK);
    must(h, F.GUEST_CR0, BigInt(0x60000010) | SHADOW_CR0_MASK);
    must(h, F.GUEST_CR4, shadowRealCr4(0n));
    must(h, F.GUEST_CR3, layout.shadowCr3);
    must(h, F.GUEST_IA32_EFER, shadowRealEfer(0n));
  } else {
    must(h, F.CR0_GUEST_HOST_MASK, 0x60000020);
    must(h, F.GUEST_CR0, 0x60000010 | 0x20); // NE is fixed to 1 in VMX operation
    must(h, F.GUEST_CR4, 0x2000); // VMXE likewise
    must(h, F.GUEST_CR3, 0);
    must(h, F.GUEST_IA32_EFER, 0);
  }
  must(h, F.GUEST_DR7, 0x400);
  const segs: [number, number, number, number, number][] = [
    [F.GUEST_CS_SELECTOR, F.GUEST_CS_BASE, F.GUEST_CS_LIMIT, F.GUEST_CS_AR_BYTES, 0x9b],
    [F.GUEST_SS_SELECTOR, F.GUEST_SS_BASE, F.GUEST_SS_LIMIT, F.GUEST_SS_AR_BYTES, 0x93],
    [F.GUEST_DS_SELECTOR, F.GUEST_DS_BASE, F.GUEST_DS_LIMIT, F.GUEST_DS_AR_BYTES, 0x93],
    [F.GUEST_ES_SELECTOR, F.GUEST_ES_BASE, F.GUEST_ES_LIMIT, F.GUEST_ES_AR_BYTES, 0x93],
    [F.GUEST_FS_SELECTOR, F.GUEST_FS_BASE, F.GUEST_FS_LIMIT, F.GUEST_FS_AR_BYTES, 0x93],
    [F.GUEST_GS_SELECTOR, F.GUEST_GS_BASE, F.GUEST_GS_LIMIT, F.GUEST_GS_AR_BYTES, 0x93],
    [F.GUEST_TR_SELECTOR, F.GUEST_TR_BASE, F.GUEST_TR_LIMIT, F.GUEST_TR_AR_BYTES, 0x8b],
    [F.GUEST_LDTR_SELECTOR, F.GUEST_LDTR_BASE, F.GUEST_LDTR_LIMIT, F.GUEST_LDTR_AR_BYTES, 0x82],
  ];
  for (const [sel, base, limit, ar, attr] of segs) {
    const isCs = sel === F.GUEST_CS_SELECTOR;
    must(h, sel, isCs ? cs : 0);
    must(h, base, isCs ? cs << 4 : 0);
    must(h, limit, 0xffff);
    must(h, ar, attr);
  }
  must(h, F.GUEST_GDTR_BASE, 0);
  must(h, F.GUEST_GDTR_LIMIT, 0xffff);
  must(h, F.GUEST_IDTR_BASE, 0);
  must(h, F.GUEST_IDTR_LIMIT, 0xffff);
  must(h, F.GUEST_RIP, 0);
  must(h, F.GUEST_RSP, 0);
  must(h, F.GUEST_RFLAGS, 2);
  must(h, F.GUEST_INTERRUPTIBILITY_INFO, 0);
  must(h, F.GUEST_ACTIVITY_STATE, 0);
  must(h, F.GUEST_PENDING_DBG_EXCEPTIONS, 0);
  must(h, F.VM_ENTRY_INTR_INFO_FIELD, 0);
}
