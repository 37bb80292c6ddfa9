/**
 * A real L0 with one 16 MiB VM running with --nested (hello.elf loaded, never run), for unit
 * tests of the nesting code: vmcs01 is current, the vCPU's NestedVcpu exists, and vmcs12s are
 * built directly as L0 caches them (a Vmcs object for an address in L1 memory). L1's bitmaps,
 * MSR lists and ept12 tables are written into L1 guest-physical memory through ept01's
 * (contiguous) mapping.
 */
import { readFileSync } from 'node:fs';
import {
  Machine,
  VMCS_FIELD as F,
  VMX_BITS as B,
  VMCS_FIELD_INDEX,
  newVmcs,
  readVmcsField,
  writeVmcsField,
  type ExitRecord,
  type Vmcs,
  type VmxHost,
} from '../../../src/hw/index.js';
import { L0, hostMemMiB, type Vm } from '../../../src/l0/index.js';
import type { Vcpu } from '../../../src/l0/vmm/vcpu.js';
import type { NestedVcpu } from '../../../src/l0/nested/state.js';
import type { NestedOptions } from '../../../src/l0/nested/options.js';

export const L1_MIB = 16;
export const L1_BYTES = L1_MIB << 20;

/** Where the tests put L1's structures (hello.elf and its BSS end below 3 MiB). */
export const L1 = {
  VMCS12: 0x600000,
  VMCS12_B: 0x601000,
  IO_A: 0x610000,
  IO_B: 0x611000,
  MSR_BITMAP: 0x612000,
  ENTRY_MSR_LOAD: 0x613000,
  EXIT_MSR_STORE: 0x614000,
  EXIT_MSR_LOAD: 0x615000,
  VAPIC: 0x616000,
  /** ept12 tables are allocated from here on. */
  EPT12: 0x700000,
  /** Pages ept12 maps L2 memory to. */
  DATA: 0x900000,
} as const;

let image: Uint8Array | undefined;

export interface Fx {
  l0: L0;
  vm: Vm;
  v: Vcpu;
  n: NestedVcpu;
  h: VmxHost;
}

/** `l0Mmu`: how L0 virtualizes L1's memory ('shadow': shadow-on-shadow, test/l0/nested-shadow.test.ts). */
export function nestedFixture(opts: Partial<NestedOptions> = {}, l0Mmu: 'ept' | 'shadow' = 'ept'): Fx {
  image ??= new Uint8Array(readFileSync('guests/build/hello.elf'));
  const m = new Machine({ memMiB: hostMemMiB([{ memMiB: L1_MIB }]), serial: () => {} });
  const l0 = new L0(m);
  const vm = l0.addVm({
    name: 'l1',
    memMiB: L1_MIB,
    cpus: 1,
    serial: () => {},
    mmu: l0Mmu,
    nested: { mmu: 'ept', drw: false, dirtyMerge: true, bulkCopy: true, ...opts },
  });
  vm.load(image, 'hello.elf', '', []);
  const v = vm.vcpus[0];
  l0.switchTo(v);
  if (!v.nested) throw new Error('fixture: nesting is not enabled');
  return { l0, vm, v, n: v.nested, h: vm.host };
}

/** Host-physical address of L1 guest-physical `gpa` (must be L1 RAM). */
export function hpaOf(fx: Fx, gpa: number): number {
  const hpa = fx.vm.gpaToHpa(gpa);
  if (hpa < 0) throw new Error(`0x${gpa.toString(16)} is not L1 RAM`);
  return hpa;
}
export function l1Write8(fx: Fx, gpa: number, v: number): void {
  fx.h.mem.write8(hpaOf(fx, gpa), v);
}
export function l1Write64(fx: Fx, gpa: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  fx.h.mem.write32(hpaOf(fx, gpa), Number(u & 0xffffffffn) | 0);
  fx.h.mem.write32(hpaOf(fx, gpa) + 4, Number(u >> 32n) | 0);
}
export function l1Read64(fx: Fx, gpa: number): bigint {
  const lo = fx.h.mem.read32(hpaOf(fx, gpa)) >>> 0,
    hi = fx.h.mem.read32(hpaOf(fx, gpa) + 4) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}
/** Set bit `bit` of the bitmap at L1 address `gpa`. */
export function l1SetBit(fx: Fx, gpa: number, bit: number): void {
  const a = hpaOf(fx, gpa + (bit >> 3));
  fx.h.mem.write8(a, fx.h.mem.read8(a) | (1 << (bit & 7)));
}

/** A vmcs12 field (64-bit view). */
export function get12(v12: Vmcs, enc: number): bigint {
  const [lo, hi] = readVmcsField(v12, enc);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
/** VMWRITE into the cached vmcs12, as L0's emulation of L1's VMWRITE stores it. */
export function set12(v12: Vmcs, enc: number, value: bigint | number): void {
  const u = BigInt.asUintN(64, BigInt(value));
  writeVmcsField(v12, enc, Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0);
}

/** The EPTP of an ept12 rooted at `root`: write-back, 4-level walk (SDM 3C §24.6.11). */
export const eptpFor = (root: number): number => root | 6 | (3 << 3);

/**
 * A vmcs12 as a hypervisor would prepare it for a 64-bit L2 under EPT: default1 control bits
 * from L1's capabilities, EPT + VPID + unrestricted guest, flat 64-bit guest state. Not current
 * until `n.current` is set.
 */
export function baseVmcs12(fx: Fx, gpa: number = L1.VMCS12): Vmcs {
  const c = fx.n.caps;
  const v12 = newVmcs(gpa);
  v12.revision = fx.h.revisionId;
  const s = (enc: number, val: bigint | number): void => set12(v12, enc, val);
  s(F.PIN_BASED_VM_EXEC_CONTROL, c.truePin.must1);
  s(F.CPU_BASED_VM_EXEC_CONTROL, (c.trueProc.must1 | B.CPU_USE_MSR_BITMAPS | B.CPU_SECONDARY) >>> 0);
  s(F.SECONDARY_VM_EXEC_CONTROL, B.SEC_EPT | B.SEC_VPID);
  s(F.VM_EXIT_CONTROLS, c.trueExit.must1 | B.EXIT_HOST_ADDR_SPACE);
  s(F.VM_ENTRY_CONTROLS, c.trueEntry.must1 | B.ENTRY_IA32E);
  s(F.EPT_POINTER, eptpFor(L1.EPT12));
  s(F.VIRTUAL_PROCESSOR_ID, 1);
  s(F.VMCS_LINK_POINTER, 0xffffffffffffffffn);
  s(F.IO_BITMAP_A, L1.IO_A);
  s(F.IO_BITMAP_B, L1.IO_B);
  s(F.MSR_BITMAP, L1.MSR_BITMAP);
  // Host state (L1's), all distinct from vmcs01's.
  s(F.HOST_CR0, 0x80050033);
  s(F.HOST_CR3, 0x123000);
  s(F.HOST_CR4, 0x26a0);
  s(F.HOST_CS_SELECTOR, 0x10);
  s(F.HOST_SS_SELECTOR, 0x18);
  s(F.HOST_TR_SELECTOR, 0x28);
  s(F.HOST_RIP, 0x401000);
  s(F.HOST_RSP, 0x5ff000);
  // Guest state: a 64-bit L2 with paging.
  s(F.GUEST_CR0, 0x80000031);
  s(F.GUEST_CR3, 0x51000);
  s(F.GUEST_CR4, 0x2020);
  s(F.GUEST_IA32_EFER, 0x500);
  s(F.GUEST_IA32_PAT, 0x0007040600070406n);
  s(F.GUEST_CS_SELECTOR, 8);
  s(F.GUEST_CS_AR_BYTES, 0xa09b);
  s(F.GUEST_CS_LIMIT, 0xffffffff);
  for (const [sel, ar, lim] of [
    [F.GUEST_SS_SELECTOR, F.GUEST_SS_AR_BYTES, F.GUEST_SS_LIMIT],
    [F.GUEST_DS_SELECTOR, F.GUEST_DS_AR_BYTES, F.GUEST_DS_LIMIT],
    [F.GUEST_ES_SELECTOR, F.GUEST_ES_AR_BYTES, F.GUEST_ES_LIMIT],
    [F.GUEST_FS_SELECTOR, F.GUEST_FS_AR_BYTES, F.GUEST_FS_LIMIT],
    [F.GUEST_GS_SELECTOR, F.GUEST_GS_AR_BYTES, F.GUEST_GS_LIMIT],
  ]) {
    s(sel, 0x10);
    s(ar, 0xc093);
    s(lim, 0xffffffff);
  }
  s(F.GUEST_TR_SELECTOR, 0x18);
  s(F.GUEST_TR_AR_BYTES, 0x8b);
  s(F.GUEST_TR_LIMIT, 0x67);
  s(F.GUEST_LDTR_AR_BYTES, 0x10000);
  s(F.GUEST_GDTR_BASE, 0x52000);
  s(F.GUEST_GDTR_LIMIT, 0x37);
  s(F.GUEST_IDTR_BASE, 0x53000);
  s(F.GUEST_IDTR_LIMIT, 0xfff);
  s(F.GUEST_FS_BASE, 0x7f0000001000n);
  s(F.GUEST_GS_BASE, 0xffff800000002000n);
  s(F.GUEST_RIP, 0x100000);
  s(F.GUEST_RSP, 0x1ffff0);
  s(F.GUEST_RFLAGS, 0x202);
  s(F.GUEST_DR7, 0x400);
  s(F.GUEST_SYSENTER_CS, 0x8);
  s(F.GUEST_SYSENTER_ESP, 0x9000);
  s(F.GUEST_SYSENTER_EIP, 0xa000);
  return v12;
}

/** A VM exit as the hardware reports it (exit-information fields, SDM 3C §24.9). */
export function exitRecord(reason: number, f: Partial<Omit<ExitRecord, 'kind' | 'reason'>> = {}): ExitRecord {
  return {
    kind: 'exit',
    reason,
    rawReason: reason,
    qualification: 0n,
    guestLinearAddress: 0n,
    guestPhysicalAddress: 0n,
    instructionLength: 0,
    instructionInfo: 0,
    interruptionInfo: 0,
    interruptionErrorCode: 0,
    idtVectoringInfo: 0,
    idtVectoringErrorCode: 0,
    ...f,
  };
}

/** Every field of the current VMCS (VMREAD of each implemented encoding that succeeds). */
export function dumpCurrent(h: VmxHost): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const enc of VMCS_FIELD_INDEX.encodings) {
    const v = h.vmread(enc);
    if (typeof v === 'bigint') out.set(enc, v);
  }
  return out;
}

/** Read a VMCS field of the current VMCS, failing loudly. */
export function rd(h: VmxHost, enc: number): bigint {
  const v = h.vmread(enc);
  if (typeof v !== 'bigint') throw new Error(`VMREAD 0x${enc.toString(16)} failed: ${JSON.stringify(v)}`);
  return v;
}
/** Write a field of the current VMCS, failing loudly. */
export function wr(h: VmxHost, enc: number, value: bigint | number): void {
  const r = h.vmwrite(enc, value);
  if (!r.ok) throw new Error(`VMWRITE 0x${enc.toString(16)} failed: ${JSON.stringify(r)}`);
}

export const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
