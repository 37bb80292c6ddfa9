/**
 * Per-vCPU nested-VMX state L0 keeps for an L1 hypervisor (KVM's `struct nested_vmx`):
 * whether L1 is in VMX operation, its VMXON pointer, the current vmcs12 (cached), the
 * vmcs02 L0 runs L2 with, whether L2 is running, and what changed in vmcs12 since the
 * last nested entry.
 */
import type { Vmcs, VmxCaps } from '../hw.js';
import type { NestedOptions } from './options.js';
import type { Ept02 } from '../mmu/ept02.js';
import type { GuestPaging } from '../mmu/guest-walk.js';

export class NestedVcpu {
  vmxon = false;
  vmxonPtr = -1;
  /** The current vmcs12, cached (undefined: no current VMCS, VMPTRST gives all ones). */
  current: Vmcs | undefined;
  /** Host-physical vmcs02 (one per vCPU; rebuilt in full when the current vmcs12 changes). */
  readonly vmcs02: number;
  /** Which vmcs12 vmcs02 was last built from, and whether vmcs02 has been launched. */
  builtFrom = -1;
  launched02 = false;
  /** Encodings L1 wrote (VMWRITE, or changed in the shadow VMCS) since the last nested entry. */
  readonly dirty = new Set<number>();
  allDirty = true;
  /** L0 pages for the vmcs02 MSR bitmap and MSR lists. */
  readonly msrBitmap02: number;
  readonly entryMsrLoad02: number;
  readonly exitMsrStore02: number;
  readonly exitMsrLoad01: number;
  /** A page of L0's standing in for an L1 address that is not RAM (e.g. a virtual-APIC page). */
  readonly scratchPage: number;
  /** vmcs01's VM-entry MSR-load list carries L1's host MSRs for one entry after a reflected exit. */
  hostMsrLoadArmed = false;
  /** L0 exits counted when the last exit was reflected to L1 (for l0ExitsPerReflectedExit). */
  reflectedAtExits = -1;
  /** The name of the vmcs12 entry check that failed last ('' when it passed). */
  lastEntryCheck = '';
  /** The shadow VMCS linked from vmcs01 for DRW (hardware VMCS shadowing), or -1. */
  shadowVmcs = -1;
  /** ept02 per EPTP of L1's (mmu/ept02.ts). */
  readonly ept02 = new Map<number, Ept02>();
  /** L0's own interrupt/NMI-window bits in vmcs02, on top of vmcs12's (interrupts.ts). */
  windows02 = 0;
  /** L2 has been entered (and exited) since L1 last ran: vmcs02 holds a hardware exit's state. */
  l2Ran = false;
  /**
   * Shadow-on-shadow (L0 without EPT): L2's CR0/CR3/CR4/EFER as L1 set them, kept by L0 while
   * vmcs02 holds spt02's (nested/spt02-exits.ts); undefined otherwise.
   */
  l2Paging: GuestPaging | undefined;
  /** vmcs12's VPID at the last nested entry (-1: VPID off), to flush vpid02 when it changes. */
  lastVpid12 = -1;
  /** VPID L0 gives L2 (vpid02). */
  readonly vpid02: number;

  constructor(
    readonly caps: VmxCaps,
    readonly opts: NestedOptions,
    alloc: () => number,
    vpid02: number,
  ) {
    this.vmcs02 = alloc();
    this.msrBitmap02 = alloc();
    this.entryMsrLoad02 = alloc();
    this.exitMsrStore02 = alloc();
    this.exitMsrLoad01 = alloc();
    this.scratchPage = alloc();
    this.vpid02 = vpid02;
  }

  markDirty(enc: number): void {
    this.dirty.add(enc & ~1);
  }
}
