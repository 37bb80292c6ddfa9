/**
 * Loading L1's host state from vmcs12 into vmcs01's guest-state area: what the processor
 * does at a VM exit to a host (SDM 3C §27.5: control registers, debug register, MSRs,
 * segments and descriptor tables, RIP/RSP/RFLAGS), done by L0 because L1's "VM exit" is
 * an entry from L0 to L1 on vmcs01.
 */
import { VMCS_FIELD as F, VMX_BITS as B, type Vmcs } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import { get12 } from './vmcs02.js';
import { SHADOW_CR0_MASK, shadowRealCr4, shadowRealEfer } from '../vmm/cr-access.js';
import { shadowOf } from '../mmu/shadow.js';

/**
 * vmcs01 must be current. Under shadow paging of L1 (shadow-on-shadow) CR0/CR4 go through L0's
 * masks and read shadows, and CR3 and EFER are the ones L0 keeps for L1 (vmm/cr-access.ts): L1
 * resumes on the spt01 root of its host CR3.
 */
export function loadL1HostState(v: Vcpu, v12: Vmcs): void {
  const h = v.host;
  const shadow = v.vm.mmu === 'shadow';
  const g = (enc: number): bigint => get12(v12, enc);
  const w = (enc: number, val: bigint | number): void => {
    h.vmwrite(enc, val);
  };
  const exit12 = Number(g(F.VM_EXIT_CONTROLS));
  const long = (exit12 & B.EXIT_HOST_ADDR_SPACE) !== 0;
  // CR0/CR4: L0 keeps NE and VMXE set (fixed in VMX operation) and shows L1 its own values.
  w(F.GUEST_CR0, g(F.HOST_CR0) | (shadow ? SHADOW_CR0_MASK : 0x20n));
  w(F.CR0_READ_SHADOW, g(F.HOST_CR0));
  if (shadow) v.guestCr3 = g(F.HOST_CR3);
  else w(F.GUEST_CR3, g(F.HOST_CR3));
  w(F.GUEST_CR4, shadow ? shadowRealCr4(g(F.HOST_CR4)) : g(F.HOST_CR4) | 0x2000n);
  w(F.CR4_READ_SHADOW, g(F.HOST_CR4));
  w(F.GUEST_DR7, 0x400);
  w(F.GUEST_IA32_DEBUGCTL, 0);
  w(F.GUEST_SYSENTER_CS, g(F.HOST_IA32_SYSENTER_CS));
  w(F.GUEST_SYSENTER_ESP, g(F.HOST_IA32_SYSENTER_ESP));
  w(F.GUEST_SYSENTER_EIP, g(F.HOST_IA32_SYSENTER_EIP));
  const efer01 = shadow ? v.guestEfer : (h.vmread(F.GUEST_IA32_EFER) as bigint);
  let efer = exit12 & B.EXIT_LOAD_EFER ? g(F.HOST_IA32_EFER) : efer01;
  // LMA and LME follow the host address-space size (§27.5.1).
  efer = long ? efer | 0x500n : efer & ~0x500n;
  if (shadow) v.guestEfer = efer;
  w(F.GUEST_IA32_EFER, shadow ? shadowRealEfer(efer) : efer);
  const entry01 = h.vmread(F.VM_ENTRY_CONTROLS) as bigint;
  w(F.VM_ENTRY_CONTROLS, long ? entry01 | BigInt(B.ENTRY_IA32E) : entry01 & ~BigInt(B.ENTRY_IA32E));
  if (exit12 & B.EXIT_LOAD_PAT) w(F.GUEST_IA32_PAT, g(F.HOST_IA32_PAT));
  // Segments (§27.5.2): flat, CS 64-bit when the host is; a null data selector is unusable.
  w(F.GUEST_CS_SELECTOR, g(F.HOST_CS_SELECTOR));
  w(F.GUEST_CS_BASE, 0);
  w(F.GUEST_CS_LIMIT, 0xffffffff);
  w(F.GUEST_CS_AR_BYTES, 0x809b | (long ? 0x2000 : 0x4000));
  const data = (selF: number, sel: number, arF: number, limF: number, baseF: number, base: bigint): void => {
    w(selF, sel);
    w(arF, sel & 0xfffc ? 0xc093 : 0x1c093);
    w(limF, 0xffffffff);
    w(baseF, base);
  };
  data(
    F.GUEST_SS_SELECTOR,
    Number(g(F.HOST_SS_SELECTOR)),
    F.GUEST_SS_AR_BYTES,
    F.GUEST_SS_LIMIT,
    F.GUEST_SS_BASE,
    0n,
  );
  data(
    F.GUEST_DS_SELECTOR,
    Number(g(F.HOST_DS_SELECTOR)),
    F.GUEST_DS_AR_BYTES,
    F.GUEST_DS_LIMIT,
    F.GUEST_DS_BASE,
    0n,
  );
  data(
    F.GUEST_ES_SELECTOR,
    Number(g(F.HOST_ES_SELECTOR)),
    F.GUEST_ES_AR_BYTES,
    F.GUEST_ES_LIMIT,
    F.GUEST_ES_BASE,
    0n,
  );
  data(
    F.GUEST_FS_SELECTOR,
    Number(g(F.HOST_FS_SELECTOR)),
    F.GUEST_FS_AR_BYTES,
    F.GUEST_FS_LIMIT,
    F.GUEST_FS_BASE,
    g(F.HOST_FS_BASE),
  );
  data(
    F.GUEST_GS_SELECTOR,
    Number(g(F.HOST_GS_SELECTOR)),
    F.GUEST_GS_AR_BYTES,
    F.GUEST_GS_LIMIT,
    F.GUEST_GS_BASE,
    g(F.HOST_GS_BASE),
  );
  w(F.GUEST_TR_SELECTOR, g(F.HOST_TR_SELECTOR));
  w(F.GUEST_TR_BASE, g(F.HOST_TR_BASE));
  w(F.GUEST_TR_LIMIT, 0x67);
  w(F.GUEST_TR_AR_BYTES, 0x8b);
  w(F.GUEST_LDTR_SELECTOR, 0);
  w(F.GUEST_LDTR_AR_BYTES, 0x10000);
  w(F.GUEST_GDTR_BASE, g(F.HOST_GDTR_BASE));
  w(F.GUEST_GDTR_LIMIT, 0xffff);
  w(F.GUEST_IDTR_BASE, g(F.HOST_IDTR_BASE));
  w(F.GUEST_IDTR_LIMIT, 0xffff);
  w(F.GUEST_RIP, g(F.HOST_RIP));
  w(F.GUEST_RSP, g(F.HOST_RSP));
  w(F.GUEST_RFLAGS, 2);
  w(F.GUEST_INTERRUPTIBILITY_INFO, 0);
  w(F.GUEST_ACTIVITY_STATE, 0);
  w(F.GUEST_PENDING_DBG_EXCEPTIONS, 0);
  w(F.VM_ENTRY_INTR_INFO_FIELD, 0);
  // L1 resumes on the spt01 root of its host paging state (the vCPU still counts as in L2 here).
  if (shadow) {
    const p = { cr0: g(F.HOST_CR0), cr3: v.guestCr3, cr4: g(F.HOST_CR4), efer };
    w(F.GUEST_CR3, shadowOf(v.vm).activateWith(v, p));
  }
}
