/**
 * The VMX capability MSRs this machine reports (SDM 3C Appendix A), derived from
 * what src/hw/vmx implements. Machine options remove EPT, VPID, unrestricted
 * guest and VMCS shadowing consistently.
 */
import * as B from './bits.js';

export interface CtlCap {
  /** Bits that must be 1 (allowed-0 settings, MSR bits 31:0). */
  must1: number;
  /** Bits that may be 1 (allowed-1 settings, MSR bits 63:32). */
  may1: number;
}

export interface VmxOptions {
  ept: boolean;
  vpid: boolean;
  unrestrictedGuest: boolean;
  vmcsShadowing: boolean;
}

export const VMCS_REVISION_ID = 0x7475; // "tu": turtles' own VMCS layout (src/hw/vmx/vmcs.ts)

export class VmxCaps {
  readonly pin: CtlCap;
  readonly proc: CtlCap;
  readonly proc2: CtlCap;
  readonly exit: CtlCap;
  readonly entry: CtlCap;
  readonly truePin: CtlCap;
  readonly trueProc: CtlCap;
  readonly trueExit: CtlCap;
  readonly trueEntry: CtlCap;
  readonly basic: bigint;
  readonly misc: bigint;
  readonly cr0Fixed0 = 0x80000021;
  readonly cr0Fixed1 = 0xffffffff;
  readonly cr4Fixed0 = 0x2000;
  readonly cr4Fixed1: number;
  readonly eptVpidCap: bigint;
  readonly vmfunc: bigint;

  constructor(
    readonly opts: VmxOptions,
    cr4Supported: number,
  ) {
    const pinDefault1 = (1 << 1) | (1 << 2) | (1 << 4);
    const procDefault1 = 0x0401e172;
    const exitDefault1 = 0x00036dff;
    const entryDefault1 = 0x000011ff;
    const pinMay = pinDefault1 | B.PIN_EXT_INTR | B.PIN_NMI | B.PIN_VIRTUAL_NMIS | B.PIN_PREEMPTION_TIMER;
    const procMay =
      procDefault1 |
      B.CPU_INTR_WINDOW |
      B.CPU_TSC_OFFSETTING |
      B.CPU_HLT |
      B.CPU_INVLPG |
      B.CPU_MWAIT |
      B.CPU_RDPMC |
      B.CPU_RDTSC |
      B.CPU_CR3_LOAD |
      B.CPU_CR3_STORE |
      B.CPU_CR8_LOAD |
      B.CPU_CR8_STORE |
      B.CPU_NMI_WINDOW |
      B.CPU_MOV_DR |
      B.CPU_UNCOND_IO |
      B.CPU_USE_IO_BITMAPS |
      B.CPU_MTF |
      B.CPU_USE_MSR_BITMAPS |
      B.CPU_MONITOR |
      B.CPU_PAUSE |
      B.CPU_SECONDARY;
    let proc2May = B.SEC_DESC_TABLE | B.SEC_RDTSCP | B.SEC_WBINVD | B.SEC_RDRAND | B.SEC_INVPCID | B.SEC_RDSEED;
    if (opts.ept) proc2May |= B.SEC_EPT | B.SEC_VMFUNC;
    if (opts.vpid) proc2May |= B.SEC_VPID;
    if (opts.ept && opts.unrestrictedGuest) proc2May |= B.SEC_UNRESTRICTED;
    if (opts.vmcsShadowing) proc2May |= B.SEC_SHADOW_VMCS;
    const exitMay =
      exitDefault1 |
      B.EXIT_HOST_ADDR_SPACE |
      B.EXIT_ACK_INTR |
      B.EXIT_SAVE_PAT |
      B.EXIT_LOAD_PAT |
      B.EXIT_SAVE_EFER |
      B.EXIT_LOAD_EFER |
      B.EXIT_SAVE_PREEMPT;
    const entryMay = entryDefault1 | B.ENTRY_IA32E | B.ENTRY_LOAD_PAT | B.ENTRY_LOAD_EFER;
    this.pin = { must1: pinDefault1, may1: pinMay };
    this.proc = { must1: procDefault1, may1: procMay };
    this.proc2 = { must1: 0, may1: proc2May };
    this.exit = { must1: exitDefault1, may1: exitMay };
    this.entry = { must1: entryDefault1, may1: entryMay };
    // TRUE controls (§A.3): the default1 bits that can be 0 on this implementation.
    this.truePin = { must1: pinDefault1, may1: pinMay };
    this.trueProc = { must1: procDefault1 & ~(B.CPU_CR3_LOAD | B.CPU_CR3_STORE | (1 << 13) | (1 << 14)), may1: procMay | (1 << 13) | (1 << 14) };
    this.trueExit = { must1: exitDefault1 & ~B.EXIT_SAVE_DEBUG, may1: exitMay };
    this.trueEntry = { must1: entryDefault1 & ~B.ENTRY_LOAD_DEBUG, may1: entryMay };
    // IA32_VMX_BASIC: revision, 4 KiB regions, write-back, INS/OUTS info, TRUE controls.
    this.basic = BigInt(VMCS_REVISION_ID) | (4096n << 32n) | (6n << 50n) | (1n << 54n) | (1n << 55n);
    // IA32_VMX_MISC: preemption timer = TSC >> 5, LMA stored on exit, HLT/shutdown/wait-for-SIPI,
    // 4 CR3-target values, 512 MSR-list entries, VMWRITE to read-only fields allowed.
    this.misc = 5n | (1n << 5n) | (1n << 6n) | (1n << 7n) | (1n << 8n) | (4n << 16n) | (1n << 29n);
    this.cr4Fixed1 = (cr4Supported | 0x2000) >>> 0;
    let ept = 0n;
    if (opts.ept)
      ept |= 1n | (1n << 6n) | (1n << 8n) | (1n << 14n) | (1n << 16n) | (1n << 17n) | (1n << 20n) | (1n << 21n) | (1n << 25n) | (1n << 26n);
    if (opts.vpid) ept |= (1n << 32n) | (1n << 40n) | (1n << 41n) | (1n << 42n) | (1n << 43n);
    this.eptVpidCap = ept;
    this.vmfunc = opts.ept ? 1n : 0n; // EPTP switching
  }

  static msr(c: CtlCap): bigint {
    return (BigInt(c.may1 >>> 0) << 32n) | BigInt(c.must1 >>> 0);
  }
  /** True when `v` sets every must-be-1 bit and no bit outside may-be-1. */
  static ok(c: CtlCap, v: number, useTrue?: CtlCap): boolean {
    const cap = useTrue ?? c;
    return (v & cap.must1) === cap.must1 && (v & ~cap.may1) === 0;
  }
}
