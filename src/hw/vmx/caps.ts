/**
 * The VMX capability MSRs this machine reports (SDM 3C Appendix A), derived from
 * what src/hw/vmx implements. Machine options remove EPT, VPID, unrestricted
 * guest and VMCS shadowing consistently.
 */
import * as B from './bits.js';
import {
  VMX_CAPABILITIES,
  VMX_MSR,
  restrictVmxCapabilities,
  vmxCapabilityMsrs,
  supportedVmcsFields,
  type ControlCapability,
  type VmxCapabilities,
} from '../../spec/vmx/capabilities.js';
import { SUPPORTED_FIELDS } from './fields.js';
import {
  PIN_BASED_DEFAULT1,
  PROC_BASED_DEFAULT1,
  EXIT_CTLS_DEFAULT1,
  ENTRY_CTLS_DEFAULT1,
} from '../../spec/vmx/controls.js';

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
  /** Off for a virtual VMX that does not offer VM functions (L0's nesting); on by default. */
  vmFunctions?: boolean;
  /** Off for a virtual VMX without EPT accessed/dirty flags; on by default. */
  eptAccessedDirty?: boolean;
}

/**
 * The machine reports the spec's Haswell-EP capability set (src/spec/vmx/capabilities.ts),
 * restricted by the machine options and then by what this implementation does: a
 * control bit is allowed to be 1 only if the hardware implements it. So the MSRs are
 * one consistent set, and every allowed setting works.
 */
export const VMCS_REVISION_ID = VMX_CAPABILITIES.basic.revisionId;

/** Control bits the implementation supports (allowed-1 is masked with these). */
const IMPL_PIN =
  PIN_BASED_DEFAULT1 | B.PIN_EXT_INTR | B.PIN_NMI | B.PIN_VIRTUAL_NMIS | B.PIN_PREEMPTION_TIMER;
const IMPL_PROC =
  PROC_BASED_DEFAULT1 |
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
  B.CPU_TPR_SHADOW |
  B.CPU_NMI_WINDOW |
  B.CPU_MOV_DR |
  B.CPU_UNCOND_IO |
  B.CPU_USE_IO_BITMAPS |
  B.CPU_MTF |
  B.CPU_USE_MSR_BITMAPS |
  B.CPU_MONITOR |
  B.CPU_PAUSE |
  B.CPU_SECONDARY;
const IMPL_PROC2 =
  B.SEC_EPT |
  B.SEC_DESC_TABLE |
  B.SEC_RDTSCP |
  B.SEC_VPID |
  B.SEC_WBINVD |
  B.SEC_UNRESTRICTED |
  B.SEC_RDRAND |
  B.SEC_INVPCID |
  B.SEC_VMFUNC |
  B.SEC_SHADOW_VMCS |
  B.SEC_RDSEED;
const IMPL_EXIT =
  EXIT_CTLS_DEFAULT1 |
  B.EXIT_HOST_ADDR_SPACE |
  B.EXIT_ACK_INTR |
  B.EXIT_SAVE_PAT |
  B.EXIT_LOAD_PAT |
  B.EXIT_SAVE_EFER |
  B.EXIT_LOAD_EFER |
  B.EXIT_SAVE_PREEMPT;
const IMPL_ENTRY = ENTRY_CTLS_DEFAULT1 | B.ENTRY_IA32E | B.ENTRY_LOAD_PAT | B.ENTRY_LOAD_EFER;

function cap(c: ControlCapability, impl: number): CtlCap {
  return { must1: c.allowed0 | 0, may1: (c.allowed1 & impl) | 0 };
}

export class VmxCaps {
  readonly spec: VmxCapabilities;
  readonly pin: CtlCap;
  readonly proc: CtlCap;
  readonly proc2: CtlCap;
  readonly exit: CtlCap;
  readonly entry: CtlCap;
  readonly truePin: CtlCap;
  readonly trueProc: CtlCap;
  readonly trueExit: CtlCap;
  readonly trueEntry: CtlCap;
  readonly cr0Fixed0: number;
  readonly cr0Fixed1: number;
  readonly cr4Fixed0: number;
  readonly cr4Fixed1: number;
  /** The capability MSRs (0x480-0x491) as the CPU reports them. */
  readonly msrs: Map<number, bigint>;
  /** Encodings VMREAD/VMWRITE accept: implemented fields whose feature these capabilities offer. */
  readonly fields: ReadonlySet<number>;

  constructor(
    readonly opts: VmxOptions,
    cr4Supported: number,
  ) {
    const c = restrictVmxCapabilities(VMX_CAPABILITIES, opts);
    this.spec = c;
    this.pin = cap(c.pinBased, IMPL_PIN);
    this.proc = cap(c.procBased, IMPL_PROC);
    this.proc2 = cap(c.procBased2, IMPL_PROC2);
    this.exit = cap(c.exit, IMPL_EXIT);
    this.entry = cap(c.entry, IMPL_ENTRY);
    this.truePin = cap(c.truePinBased, IMPL_PIN);
    this.trueProc = cap(c.trueProcBased, IMPL_PROC);
    this.trueExit = cap(c.trueExit, IMPL_EXIT);
    this.trueEntry = cap(c.trueEntry, IMPL_ENTRY);
    this.cr0Fixed0 = c.cr0Fixed0 | 0;
    this.cr0Fixed1 = c.cr0Fixed1 | 0;
    this.cr4Fixed0 = c.cr4Fixed0 | 0;
    this.cr4Fixed1 = (cr4Supported | 0x2000) & c.cr4Fixed1;
    const m = vmxCapabilityMsrs(c);
    const put = (n: number, v: CtlCap): void => {
      if (m.has(n)) m.set(n, VmxCaps.msr(v));
    };
    put(VMX_MSR.PINBASED_CTLS, this.pin);
    put(VMX_MSR.PROCBASED_CTLS, this.proc);
    put(VMX_MSR.PROCBASED_CTLS2, this.proc2);
    put(VMX_MSR.EXIT_CTLS, this.exit);
    put(VMX_MSR.ENTRY_CTLS, this.entry);
    put(VMX_MSR.TRUE_PINBASED_CTLS, this.truePin);
    put(VMX_MSR.TRUE_PROCBASED_CTLS, this.trueProc);
    put(VMX_MSR.TRUE_EXIT_CTLS, this.trueExit);
    put(VMX_MSR.TRUE_ENTRY_CTLS, this.trueEntry);
    if (m.has(VMX_MSR.CR4_FIXED1)) m.set(VMX_MSR.CR4_FIXED1, BigInt(this.cr4Fixed1 >>> 0));
    const offered = new Set(supportedVmcsFields(c).map((f) => f.encoding));
    const fields = SUPPORTED_FIELDS.filter((f) => offered.has(f.encoding));
    this.fields = new Set(fields.map((f) => f.encoding));
    // VMCS_ENUM: the highest index VMREAD accepts here.
    if (m.has(VMX_MSR.VMCS_ENUM))
      m.set(VMX_MSR.VMCS_ENUM, BigInt(Math.max(...fields.map((f) => f.index)) << 1));
    this.msrs = m;
  }

  get vmwriteAnyField(): boolean {
    return this.spec.misc.vmwriteAnyField;
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
