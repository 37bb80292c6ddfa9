/**
 * vmcs02: how L0 really runs L2, built from vmcs12 (what L1 asked for) and vmcs01 (what L0
 * needs), KVM's prepare_vmcs02 split by how often fields change:
 *  - once per vmcs02: the host-state area (L0's, as in vmcs01);
 *  - when vmcs12 changes or L1 wrote a control: the merged controls (below);
 *  - on every nested entry: the guest state L1 wrote since the last entry (dirty merging), or all
 *    of it without that optimization, and the per-entry event injection and MSR lists.
 *
 * Merged controls (SDM 3C chapter 24 field by field):
 *  - pin-based: vmcs12's plus vmcs01's external-interrupt/NMI exiting and virtual NMIs (physical
 *    events are L0's; L1's virtual ones reach L1 as exits L0 synthesizes, interrupts.ts);
 *  - entry controls, CR3 targets, preemption timer: vmcs12's;
 *  - processor-based: vmcs12's, plus unconditional I/O exiting (L0 emulates L1's devices, so it
 *    sees every port access and forwards what L1's bitmaps want) and MSR bitmaps (merged each entry:
 *    an MSR exits if L1's bitmap or vmcs01's says so);
 *  - secondary: vmcs12's, with EPT (ept02, or ept01 when L1 gives L2 no EPT: L2's physical space is
 *    then L1's), VPID (vpid02) and without VMCS shadowing;
 *  - exception bitmap: vmcs12 | vmcs01; CR0/CR4 guest/host masks: vmcs12 | vmcs01, with read shadows
 *    showing L2 what L1 decided (its shadow for its bits, its guest value for L0's bits);
 *  - TSC offset: vmcs01's + vmcs12's; exit controls: L0's, plus saving the preemption timer whenever
 *    L1 uses it (L0's own exits from L2 must not restart L1's timer: vmcs12's value is loaded at
 *    each nested entry, and the remainder carries across the exits L0 handles itself).
 */
import { VMCS_FIELD as F, VMX_BITS as B, readVmcsField, type Vmcs, type VmxHost } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import type { NestedVcpu } from './state.js';
import { GUEST_GROUPS, GUEST_FIELDS } from './field-groups.js';
import { copy12ToCurrent } from './copy.js';
import { l1Read32, l1PageIsRam } from './l1mem.js';
import { ept02Pointer } from '../mmu/ept02.js';
import { eptp as ept01Pointer } from '../mmu/ept01.js';
import { L0_COST } from '../cost.js';
import { enterL2Paging, SPT02_PROC_EXITS } from './spt02-exits.js';

const HOST_FIELDS = [
  F.HOST_CR0,
  F.HOST_CR3,
  F.HOST_CR4,
  F.HOST_CS_SELECTOR,
  F.HOST_SS_SELECTOR,
  F.HOST_TR_SELECTOR,
  F.HOST_RIP,
  F.HOST_RSP,
  F.HOST_IA32_EFER,
  F.HOST_IA32_PAT,
];
/** Control fields whose VMWRITE by L1 makes L0 recompute the merged controls. */
const CONTROL_INPUTS = new Set([
  F.PIN_BASED_VM_EXEC_CONTROL,
  F.CPU_BASED_VM_EXEC_CONTROL,
  F.SECONDARY_VM_EXEC_CONTROL,
  F.EXCEPTION_BITMAP,
  F.PAGE_FAULT_ERROR_CODE_MASK,
  F.PAGE_FAULT_ERROR_CODE_MATCH,
  F.CR0_GUEST_HOST_MASK,
  F.CR4_GUEST_HOST_MASK,
  F.CR0_READ_SHADOW,
  F.CR4_READ_SHADOW,
  F.GUEST_CR0,
  F.GUEST_CR4,
  F.CR3_TARGET_COUNT,
  F.CR3_TARGET_VALUE0,
  F.CR3_TARGET_VALUE_1,
  F.CR3_TARGET_VALUE_2,
  F.CR3_TARGET_VALUE_3,
  F.TSC_OFFSET,
  F.VM_ENTRY_CONTROLS,
  F.VM_EXIT_CONTROLS,
  F.EPT_POINTER,
  F.VIRTUAL_APIC_PAGE_ADDR,
  F.TPR_THRESHOLD,
  F.VIRTUAL_PROCESSOR_ID,
]);

/** A vmcs12 field as a bigint. */
export function get12(v12: Vmcs, enc: number): bigint {
  const [lo, hi] = readVmcsField(v12, enc);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
const w = (h: VmxHost, enc: number, v: bigint | number): void => {
  const r = h.vmwrite(enc, v);
  if (!r.ok) throw new Error(`L0: VMWRITE 0x${enc.toString(16)} to vmcs02 failed: ${JSON.stringify(r)}`);
};

/** Merge L1's MSR bitmap (or "every MSR exits" without one) with vmcs01's into vmcs02's. */
function mergeMsrBitmap(v: Vcpu, n: NestedVcpu, v12: Vmcs): void {
  const mem = v.host.mem;
  const use12 = (get12(v12, F.CPU_BASED_VM_EXEC_CONTROL) & BigInt(B.CPU_USE_MSR_BITMAPS)) !== 0n;
  const addr12 = Number(get12(v12, F.MSR_BITMAP));
  const ram = use12 && l1PageIsRam(v.vm, addr12);
  for (let off = 0; off < 4096; off += 4) {
    const l1 = !use12 ? -1 : ram ? l1Read32(v.vm, addr12 + off) : -1;
    mem.write32(n.msrBitmap02 + off, l1 | mem.read32(v.vm.msrBitmap + off));
  }
  v.host.charge(L0_COST.msrBitmapMerge);
}

/** Copy vmcs12's MSR lists into L0's pages (L1 addresses mean nothing to the hardware). */
function prepareMsrLists(v: Vcpu, n: NestedVcpu, v12: Vmcs): void {
  const h = v.host;
  const mem = h.mem;
  const copyList = (countEnc: number, addrEnc: number, dst: number, values: boolean): number => {
    const count = Math.min(Number(get12(v12, countEnc)), 256);
    const src = Number(get12(v12, addrEnc));
    for (let k = 0; k < count; k++)
      for (let d = 0; d < 16; d += 4)
        mem.write32(dst + 16 * k + d, values || d < 8 ? l1Read32(v.vm, src + 16 * k + d) : 0);
    return count;
  };
  const nLoad = copyList(F.VM_ENTRY_MSR_LOAD_COUNT, F.VM_ENTRY_MSR_LOAD_ADDR, n.entryMsrLoad02, true);
  w(h, F.VM_ENTRY_MSR_LOAD_COUNT, nLoad);
  w(h, F.VM_ENTRY_MSR_LOAD_ADDR, n.entryMsrLoad02);
  const nStore = copyList(F.VM_EXIT_MSR_STORE_COUNT, F.VM_EXIT_MSR_STORE_ADDR, n.exitMsrStore02, false);
  w(h, F.VM_EXIT_MSR_STORE_COUNT, nStore);
  w(h, F.VM_EXIT_MSR_STORE_ADDR, n.exitMsrStore02);
  w(h, F.VM_EXIT_MSR_LOAD_COUNT, 0);
}

function prepareControls(v: Vcpu, n: NestedVcpu, v12: Vmcs, v01: Map<number, bigint>): void {
  const h = v.host;
  const g = (enc: number): bigint => get12(v12, enc);
  const proc12 = Number(g(F.CPU_BASED_VM_EXEC_CONTROL));
  const proc2_12 = proc12 & B.CPU_SECONDARY ? Number(g(F.SECONDARY_VM_EXEC_CONTROL)) : 0;
  const pin12 = Number(g(F.PIN_BASED_VM_EXEC_CONTROL));
  // Physical interrupts and NMIs exit to L0 (vmcs01's). Virtual NMIs too when L1 does not take
  // NMIs itself, for L0's NMI window when it delivers L1's NMIs to L2 (interrupts.ts); with NMI
  // exiting in vmcs12, its own setting stays, so L2's IRET affects NMI blocking as L1 set it (§25.3).
  const pin01 = Number(v01.get(F.PIN_BASED_VM_EXEC_CONTROL)!);
  let pin02 = pin12 | (pin01 & (B.PIN_EXT_INTR | B.PIN_NMI));
  if (!(pin12 & B.PIN_NMI)) pin02 |= pin01 & B.PIN_VIRTUAL_NMIS;
  w(h, F.PIN_BASED_VM_EXEC_CONTROL, pin02 >>> 0);
  // Shadow-on-shadow (L0 without EPT, spt02-exits.ts): L0 also needs L2's INVLPG and CR3 accesses.
  const l0Shadow = v.vm.mmu === 'shadow';
  // TSC offsetting: L2 reads the TSC as L1 would (vmcs01's offset, if L0 offsets L1) plus L1's.
  const tso01 = Number(v01.get(F.CPU_BASED_VM_EXEC_CONTROL)!) & B.CPU_TSC_OFFSETTING;
  const proc02 =
    ((proc12 |
      tso01 |
      B.CPU_UNCOND_IO |
      B.CPU_USE_MSR_BITMAPS |
      B.CPU_SECONDARY |
      (l0Shadow ? SPT02_PROC_EXITS : 0)) &
      ~B.CPU_USE_IO_BITMAPS) >>>
    0;
  w(h, F.CPU_BASED_VM_EXEC_CONTROL, proc02);
  const hwProc2 = Number(h.capability(0x48b) >> 32n);
  const ept12 = (proc2_12 & B.SEC_EPT) !== 0;
  let proc2 = proc2_12 & ~B.SEC_SHADOW_VMCS & ~B.SEC_VPID;
  // L0 runs on EPT (shadow-on-EPT when vmcs12 has none), or on spt02 without EPT (shadow-on-shadow).
  if (!l0Shadow) proc2 |= B.SEC_EPT;
  if (hwProc2 & B.SEC_VPID) {
    proc2 |= B.SEC_VPID;
    w(h, F.VIRTUAL_PROCESSOR_ID, n.vpid02);
  }
  w(h, F.SECONDARY_VM_EXEC_CONTROL, proc2 >>> 0);
  if (!l0Shadow)
    w(h, F.EPT_POINTER, ept12 ? ept02Pointer(v, n, Number(g(F.EPT_POINTER))) : ept01Pointer(v.vm.ept01));
  w(h, F.MSR_BITMAP, n.msrBitmap02);
  const exc01 = v01.get(F.EXCEPTION_BITMAP)!;
  w(h, F.EXCEPTION_BITMAP, g(F.EXCEPTION_BITMAP) | exc01);
  if (exc01 & (1n << 14n)) {
    // L0 wants every #PF: mask 0 / match 0 with bit 14 set makes them all exit (§25.2).
    w(h, F.PAGE_FAULT_ERROR_CODE_MASK, 0);
    w(h, F.PAGE_FAULT_ERROR_CODE_MATCH, 0);
  } else {
    w(h, F.PAGE_FAULT_ERROR_CODE_MASK, g(F.PAGE_FAULT_ERROR_CODE_MASK));
    w(h, F.PAGE_FAULT_ERROR_CODE_MATCH, g(F.PAGE_FAULT_ERROR_CODE_MATCH));
  }
  for (const [maskF, shadowF, guestF] of [
    [F.CR0_GUEST_HOST_MASK, F.CR0_READ_SHADOW, F.GUEST_CR0],
    [F.CR4_GUEST_HOST_MASK, F.CR4_READ_SHADOW, F.GUEST_CR4],
  ]) {
    const m12 = g(maskF);
    w(h, maskF, m12 | v01.get(maskF)!);
    w(h, shadowF, (g(shadowF) & m12) | (g(guestF) & ~m12));
  }
  // Under shadow-on-shadow no target: the processor would load L2's L1-physical CR3 (wants.ts checks them).
  w(h, F.CR3_TARGET_COUNT, l0Shadow ? 0 : g(F.CR3_TARGET_COUNT));
  for (let k = 0; k < 4; k++) w(h, F.CR3_TARGET_VALUE0 + 2 * k, g(F.CR3_TARGET_VALUE0 + 2 * k));
  w(
    h,
    F.TSC_OFFSET,
    (proc12 & B.CPU_TSC_OFFSETTING ? g(F.TSC_OFFSET) : 0n) + (tso01 ? v01.get(F.TSC_OFFSET)! : 0n),
  );
  // vmcs02 always loads DR7/DEBUGCTL (the hardware keeps no L1 value for it, vmcs01.ts); without
  // "load debug controls" in vmcs12, L2 gets L1's (prepareVmcs02).
  // Under shadow-on-shadow EFER is always loaded: L0 gives L2 the EFER spt02 was built for.
  w(
    h,
    F.VM_ENTRY_CONTROLS,
    g(F.VM_ENTRY_CONTROLS) | BigInt(B.ENTRY_LOAD_DEBUG | (l0Shadow ? B.ENTRY_LOAD_EFER : 0)),
  );
  w(
    h,
    F.VM_EXIT_CONTROLS,
    v01.get(F.VM_EXIT_CONTROLS)! |
      (pin12 & B.PIN_PREEMPTION_TIMER && h.capability(0x483) & (BigInt(B.EXIT_SAVE_PREEMPT) << 32n)
        ? BigInt(B.EXIT_SAVE_PREEMPT)
        : 0n),
  );
  if (proc12 & B.CPU_TPR_SHADOW) {
    const apic12 = Number(g(F.VIRTUAL_APIC_PAGE_ADDR));
    // A virtual-APIC page outside L1's RAM gets a scratch page of L0's (never L0's own memory).
    const hpa = l1PageIsRam(v.vm, apic12) ? v.vm.gpaToHpa(apic12) : n.scratchPage;
    w(h, F.VIRTUAL_APIC_PAGE_ADDR, hpa);
    w(h, F.TPR_THRESHOLD, g(F.TPR_THRESHOLD));
  }
  w(h, F.VMCS_LINK_POINTER, 0xffffffffffffffffn);
}

/**
 * Make vmcs02 current and bring it up to date for an entry to L2 from the current vmcs12: in
 * full when vmcs12 is not the one vmcs02 was last built from or dirty merging is off, else only
 * what L1 changed.
 */
export function prepareVmcs02(v: Vcpu, n: NestedVcpu): void {
  const h = v.host;
  const v12 = n.current!;
  // vmcs01's fields L0 needs, read while vmcs01 is current.
  const v01 = new Map<number, bigint>();
  for (const enc of [
    F.EXCEPTION_BITMAP,
    F.CPU_BASED_VM_EXEC_CONTROL,
    F.CR0_GUEST_HOST_MASK,
    F.CR4_GUEST_HOST_MASK,
    F.TSC_OFFSET,
    F.VM_EXIT_CONTROLS,
    F.PIN_BASED_VM_EXEC_CONTROL,
    F.GUEST_DR7,
    F.GUEST_IA32_DEBUGCTL,
    ...HOST_FIELDS,
  ])
    v01.set(enc, h.vmread(enc) as bigint);
  const fresh = n.builtFrom !== v12.addr;
  const full = fresh || n.allDirty || !n.opts.dirtyMerge;
  if (fresh) {
    h.mem.write32(n.vmcs02, h.revisionId);
    h.vmclear(n.vmcs02);
    n.launched02 = false;
  }
  h.vmptrld(n.vmcs02);
  h.charge(L0_COST.vmptrld);
  if (fresh) for (const enc of HOST_FIELDS) w(h, enc, v01.get(enc)!);
  const controlsDirty = full || [...n.dirty].some((e) => CONTROL_INPUTS.has(e));
  if (controlsDirty) prepareControls(v, n, v12, v01);
  mergeMsrBitmap(v, n, v12);
  // Guest state: everything, or only what L1 changed since the last entry.
  copy12ToCurrent(
    h,
    n,
    v12,
    GUEST_GROUPS,
    full ? undefined : (enc) => n.dirty.has(enc) && GUEST_FIELDS.has(enc),
  );
  // Without "load debug controls" the processor keeps its DR7 and IA32_DEBUGCTL: L1's (§26.3.2.1).
  if (!(get12(v12, F.VM_ENTRY_CONTROLS) & BigInt(B.ENTRY_LOAD_DEBUG))) {
    w(h, F.GUEST_DR7, v01.get(F.GUEST_DR7)!);
    w(h, F.GUEST_IA32_DEBUGCTL, v01.get(F.GUEST_IA32_DEBUGCTL)!);
  }
  // L1's preemption timer starts from vmcs12's value at each entry by L1 (§26.7.4); vmcs02 holds
  // the remainder only across L0's own exits.
  if (get12(v12, F.PIN_BASED_VM_EXEC_CONTROL) & BigInt(B.PIN_PREEMPTION_TIMER))
    w(h, F.VMX_PREEMPTION_TIMER_VALUE, get12(v12, F.VMX_PREEMPTION_TIMER_VALUE));
  // Per entry: event injection and the MSR lists.
  for (const enc of [F.VM_ENTRY_INTR_INFO_FIELD, F.VM_ENTRY_EXCEPTION_ERROR_CODE, F.VM_ENTRY_INSTRUCTION_LEN])
    w(h, enc, get12(v12, enc));
  prepareMsrLists(v, n, v12);
  // Without VPID in vmcs12, every entry to L2 starts with no cached translations (§28.3.3.3).
  const proc12 = Number(get12(v12, F.CPU_BASED_VM_EXEC_CONTROL));
  const vpid12 = proc12 & B.CPU_SECONDARY && Number(get12(v12, F.SECONDARY_VM_EXEC_CONTROL)) & B.SEC_VPID;
  // With it, every VPID of L1 shares vpid02: a change of VPID (or of vmcs12) since the last entry
  // to L2 flushes it, so one L2 never uses translations cached for another (§28.1, KVM's last_vpid).
  const vpidKey = vpid12 ? Number(get12(v12, F.VIRTUAL_PROCESSOR_ID) & 0xffffn) : -1;
  if (!vpid12 || vpidKey !== n.lastVpid12 || fresh) h.invvpid(1, n.vpid02);
  n.lastVpid12 = vpidKey;
  // Shadow-on-shadow: vmcs02's CR0/CR3/CR4/EFER for spt02; an entry without VPID is a flush point.
  if (v.vm.mmu === 'shadow') enterL2Paging(v, n, v12, !vpid12);
  n.builtFrom = v12.addr;
  n.dirty.clear();
  n.allDirty = false;
}
