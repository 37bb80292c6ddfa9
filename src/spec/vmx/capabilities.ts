/**
 * VMX capability reporting (SDM 3C Appendix A, "VMX Capability Reporting Facility") and the
 * one capability set the machine reports.
 *
 * ## The modelled processor
 * The set is modelled on Intel Xeon E5-2600 v3 ("Haswell-EP", family 6 model 0x3F): EPT
 * with execute-only pages, 4-level walks, UC/WB paging-structure memory types, 2-MiB and
 * 1-GiB pages and accessed/dirty flags; VPID with all four INVVPID types; unrestricted
 * guest; VMCS shadowing with VMWRITE to any field (IA32_VMX_MISC bit 29); VM functions
 * with EPTP switching; the VMX-preemption timer (rate 5: it counts down every 32 TSC
 * ticks) with save-on-exit; HLT, shutdown and wait-for-SIPI activity states; four CR3
 * target values; MSR lists of up to 512 entries; INS/OUTS instruction information; TRUE
 * capability MSRs that let CR3-load/-store exiting and save/load debug controls be 0.
 *
 * ## Deliberate differences from a real Haswell-EP
 * Left out (each reads as 0 in the allowed-1 settings, so software sees an older part):
 *  - APIC virtualization: virtualize APIC accesses, virtualize x2APIC mode, APIC-register
 *    virtualization, virtual-interrupt delivery, posted-interrupt processing (a later
 *    issue; TPR shadow with TPR threshold *is* offered);
 *  - PAUSE-loop exiting (PAUSE exiting is offered);
 *  - IA32_PERF_GLOBAL_CTRL load on entry/exit (the machine has no architectural PMU);
 *  - entry to SMM / deactivate dual-monitor treatment, RDMSR of IA32_SMBASE in SMM and the
 *    other SMM-monitor features (the machine has no SMM);
 *  - Intel PT in VMX operation.
 * Later-generation features that Haswell-EP never had stay out too: PML, EPT-violation #VE,
 *  ENCLS/ENCLV exiting, XSAVES/XRSTORS, mode-based execute control, sub-page permissions,
 *  5-level EPT, advanced EPT-violation information, tertiary and secondary-exit controls,
 *  MPX/CET/PKRS/FRED state, user wait and pause, bus-lock detection, instruction timeout.
 * Added beyond Haswell-EP, because the project's issue asks for the exits they govern:
 *  - RDSEED exiting (Broadwell) — needs CPUID to report RDSEED to be reachable;
 *  - use TSC scaling (Skylake-SP), with the TSC-multiplier field.
 * (RDRAND exiting is a Haswell control; like RDSEED exiting it only matters once the CPU
 * reports RDRAND.)
 *
 * ## Our VMCS revision identifier
 * 0x74757274 — the ASCII bytes "turt" read big-endian. Real Intel parts use small numbers
 * (Haswell: 0x12); a distinct value makes a VMCS prepared for real hardware fail VMPTRLD
 * with error 11 here, as it would on another real part. Bit 31 is 0, as it must be.
 *
 * Control masks are int32 (see controls.ts); 64-bit MSR values are bigint.
 */
import {
  ENTRY_CTLS,
  ENTRY_CTLS_DEFAULT1,
  EXIT_CTLS,
  EXIT_CTLS_DEFAULT1,
  PIN_BASED,
  PIN_BASED_DEFAULT1,
  PROC_BASED,
  PROC_BASED2,
  PROC_BASED_DEFAULT1,
  VMFUNC,
} from './controls.js';
import { MEMORY_TYPE } from './ept.js';
import { VMCS_FIELDS, maxIndexOf, type VmcsFeature, type VmcsField } from './vmcs-fields.js';

/** Capability MSR numbers (SDM Vol. 4 Table 2-2; SDM 3C Appendix A). */
export const VMX_MSR = {
  BASIC: 0x480,
  PINBASED_CTLS: 0x481,
  PROCBASED_CTLS: 0x482,
  EXIT_CTLS: 0x483,
  ENTRY_CTLS: 0x484,
  MISC: 0x485,
  CR0_FIXED0: 0x486,
  CR0_FIXED1: 0x487,
  CR4_FIXED0: 0x488,
  CR4_FIXED1: 0x489,
  VMCS_ENUM: 0x48a,
  PROCBASED_CTLS2: 0x48b,
  EPT_VPID_CAP: 0x48c,
  TRUE_PINBASED_CTLS: 0x48d,
  TRUE_PROCBASED_CTLS: 0x48e,
  TRUE_EXIT_CTLS: 0x48f,
  TRUE_ENTRY_CTLS: 0x490,
  VMFUNC: 0x491,
  PROCBASED_CTLS3: 0x492,
  EXIT_CTLS2: 0x493,
} as const;

/** IA32_FEATURE_CONTROL (MSR 3AH) bits that govern VMXON (SDM 3C §23.7). */
export const FEATURE_CONTROL = {
  LOCK: 1 << 0,
  VMX_INSIDE_SMX: 1 << 1,
  VMX_OUTSIDE_SMX: 1 << 2,
} as const;

/** CR0 bits (SDM 3A §2.5). */
export const CR0 = {
  PE: 1 << 0,
  MP: 1 << 1,
  EM: 1 << 2,
  TS: 1 << 3,
  ET: 1 << 4,
  NE: 1 << 5,
  WP: 1 << 16,
  AM: 1 << 18,
  NW: 1 << 29,
  CD: 1 << 30,
  PG: 1 << 31,
} as const;

/** CR4 bits (SDM 3A §2.5). */
export const CR4 = {
  VME: 1 << 0,
  PVI: 1 << 1,
  TSD: 1 << 2,
  DE: 1 << 3,
  PSE: 1 << 4,
  PAE: 1 << 5,
  MCE: 1 << 6,
  PGE: 1 << 7,
  PCE: 1 << 8,
  OSFXSR: 1 << 9,
  OSXMMEXCPT: 1 << 10,
  UMIP: 1 << 11,
  LA57: 1 << 12,
  VMXE: 1 << 13,
  SMXE: 1 << 14,
  FSGSBASE: 1 << 16,
  PCIDE: 1 << 17,
  OSXSAVE: 1 << 18,
  KL: 1 << 19,
  SMEP: 1 << 20,
  SMAP: 1 << 21,
  PKE: 1 << 22,
  CET: 1 << 23,
  PKS: 1 << 24,
} as const;

/**
 * The CR4 bits the machine's CPU implements outside VMX — the same list as cr4Allowed() in
 * src/hw/cpu/exec/system.ts (a test compares them). CR4_FIXED1 is this plus VMXE.
 */
export const CR4_IMPLEMENTED =
  CR4.VME |
  CR4.PVI |
  CR4.TSD |
  CR4.DE |
  CR4.PSE |
  CR4.PAE |
  CR4.MCE |
  CR4.PGE |
  CR4.PCE |
  CR4.OSFXSR |
  CR4.OSXMMEXCPT |
  CR4.UMIP |
  CR4.PCIDE |
  CR4.SMEP |
  CR4.SMAP;

/** Bit positions of IA32_VMX_EPT_VPID_CAP (SDM 3C Appendix A.10). */
export const EPT_VPID_CAP_BIT = {
  EXECUTE_ONLY: 0,
  PAGE_WALK_4: 6,
  PAGE_WALK_5: 7,
  MEMORY_TYPE_UC: 8,
  MEMORY_TYPE_WB: 14,
  PDE_2MB: 16,
  PDPTE_1GB: 17,
  INVEPT: 20,
  ACCESSED_DIRTY: 21,
  ADVANCED_EPT_VIOLATION_INFO: 22,
  SUPERVISOR_SHADOW_STACK: 23,
  INVEPT_SINGLE_CONTEXT: 25,
  INVEPT_ALL_CONTEXT: 26,
  INVVPID: 32,
  INVVPID_INDIVIDUAL_ADDRESS: 40,
  INVVPID_SINGLE_CONTEXT: 41,
  INVVPID_ALL_CONTEXT: 42,
  INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS: 43,
} as const;

/** Bits 31:0 of IA32_VMX_EPT_VPID_CAP describe EPT, bits 63:32 VPID. */
export const EPT_CAP_MASK = 0xffffffffn;
export const VPID_CAP_MASK = 0xffffffffn << 32n;

/** A 32-bit control's capability: bits that must be 1 and bits that may be 1. */
export interface ControlCapability {
  /** Allowed 0-settings, MSR bits 31:0: a 1 here means the control must be 1. */
  readonly allowed0: number;
  /** Allowed 1-settings, MSR bits 63:32: a 1 here means the control may be 1. */
  readonly allowed1: number;
}

/** IA32_VMX_BASIC, field by field (SDM 3C Appendix A.1). */
export interface VmxBasic {
  /** Bits 30:0. */
  readonly revisionId: number;
  /** Bits 44:32: bytes to allocate for a VMXON or VMCS region (at most 4096). */
  readonly vmcsSize: number;
  /** Bit 48: physical addresses of VMXON/VMCS/… limited to 32 bits. 0 on x86-64 parts. */
  readonly physAddr32: boolean;
  /** Bit 49: dual-monitor treatment of SMIs and SMM. */
  readonly dualMonitorSmm: boolean;
  /** Bits 53:50: memory type for the VMCS and the structures it points to (6 = WB). */
  readonly memoryType: number;
  /** Bit 54: VM exits due to INS/OUTS report instruction information. */
  readonly insOutsInfo: boolean;
  /** Bit 55: the TRUE_* control MSRs exist (default1 controls may be 0). */
  readonly trueControls: boolean;
  /** Bit 56: hardware exceptions may be injected without an error code, whatever the vector. */
  readonly noErrorCodeCheck: boolean;
}

/** IA32_VMX_MISC, field by field (SDM 3C Appendix A.6). */
export interface VmxMisc {
  /** Bits 4:0: the preemption timer counts down by 1 every 2^rate TSC ticks. */
  readonly preemptionTimerRate: number;
  /** Bit 5: VM exits store EFER.LMA into the "IA-32e mode guest" entry control. */
  readonly storesLmaOnExit: boolean;
  /** Bits 8:6: activity states HLT, shutdown, wait-for-SIPI supported. */
  readonly activityHlt: boolean;
  readonly activityShutdown: boolean;
  readonly activityWaitForSipi: boolean;
  /** Bit 14: Intel PT may be used in VMX operation. */
  readonly ptInVmx: boolean;
  /** Bit 15: RDMSR can read IA32_SMBASE in SMM. */
  readonly rdmsrSmbase: boolean;
  /** Bits 24:16: number of CR3-target values supported. */
  readonly cr3TargetCount: number;
  /** Bits 27:25: N; the recommended maximum MSR-list length is 512 × (N + 1). */
  readonly msrListCountCode: number;
  /** Bit 28: IA32_SMM_MONITOR_CTL bit 2 can be set. */
  readonly smmMonitorCtlBit2: boolean;
  /** Bit 29: VMWRITE may write any supported field, including the VM-exit information fields. */
  readonly vmwriteAnyField: boolean;
  /** Bit 30: VM entry may inject software interrupts/exceptions with instruction length 0. */
  readonly zeroLengthInjection: boolean;
  /** Bits 63:32: MSEG revision identifier. */
  readonly msegRevisionId: number;
}

/** Everything the VMX capability MSRs report. */
export interface VmxCapabilities {
  readonly basic: VmxBasic;
  readonly pinBased: ControlCapability;
  readonly procBased: ControlCapability;
  readonly exit: ControlCapability;
  readonly entry: ControlCapability;
  readonly truePinBased: ControlCapability;
  readonly trueProcBased: ControlCapability;
  readonly trueExit: ControlCapability;
  readonly trueEntry: ControlCapability;
  /** IA32_VMX_PROCBASED_CTLS2 (no default1 bits: allowed0 is 0). */
  readonly procBased2: ControlCapability;
  /** IA32_VMX_PROCBASED_CTLS3: allowed-1 settings of the 64-bit tertiary controls. */
  readonly procBased3: bigint;
  /** IA32_VMX_EXIT_CTLS2: allowed-1 settings of the 64-bit secondary VM-exit controls. */
  readonly exit2: bigint;
  readonly misc: VmxMisc;
  /** CR0/CR4 bits fixed to 1 (FIXED0) and allowed to be 1 (FIXED1) in VMX operation; the low 32 bits (int32), the high ones are 0. */
  readonly cr0Fixed0: number;
  readonly cr0Fixed1: number;
  readonly cr4Fixed0: number;
  readonly cr4Fixed1: number;
  /** IA32_VMX_EPT_VPID_CAP. */
  readonly eptVpidCap: bigint;
  /** IA32_VMX_VMFUNC: allowed-1 settings of the VM-function controls. */
  readonly vmfunc: bigint;
}

const ctl = (allowed0: number, allowed1: number): ControlCapability =>
  Object.freeze({ allowed0: allowed0 | 0, allowed1: allowed1 | 0 });

const PIN_ALLOWED1 =
  PIN_BASED_DEFAULT1 |
  PIN_BASED.EXTERNAL_INTERRUPT_EXITING |
  PIN_BASED.NMI_EXITING |
  PIN_BASED.VIRTUAL_NMIS |
  PIN_BASED.ACTIVATE_VMX_PREEMPTION_TIMER;

const PROC_ALLOWED1 =
  PROC_BASED_DEFAULT1 |
  PROC_BASED.INTERRUPT_WINDOW_EXITING |
  PROC_BASED.USE_TSC_OFFSETTING |
  PROC_BASED.HLT_EXITING |
  PROC_BASED.INVLPG_EXITING |
  PROC_BASED.MWAIT_EXITING |
  PROC_BASED.RDPMC_EXITING |
  PROC_BASED.RDTSC_EXITING |
  PROC_BASED.CR3_LOAD_EXITING |
  PROC_BASED.CR3_STORE_EXITING |
  PROC_BASED.CR8_LOAD_EXITING |
  PROC_BASED.CR8_STORE_EXITING |
  PROC_BASED.USE_TPR_SHADOW |
  PROC_BASED.NMI_WINDOW_EXITING |
  PROC_BASED.MOV_DR_EXITING |
  PROC_BASED.UNCONDITIONAL_IO_EXITING |
  PROC_BASED.USE_IO_BITMAPS |
  PROC_BASED.MONITOR_TRAP_FLAG |
  PROC_BASED.USE_MSR_BITMAPS |
  PROC_BASED.MONITOR_EXITING |
  PROC_BASED.PAUSE_EXITING |
  PROC_BASED.ACTIVATE_SECONDARY_CONTROLS;

const PROC2_ALLOWED1 =
  PROC_BASED2.ENABLE_EPT |
  PROC_BASED2.DESCRIPTOR_TABLE_EXITING |
  PROC_BASED2.ENABLE_RDTSCP |
  PROC_BASED2.ENABLE_VPID |
  PROC_BASED2.WBINVD_EXITING |
  PROC_BASED2.UNRESTRICTED_GUEST |
  PROC_BASED2.RDRAND_EXITING |
  PROC_BASED2.ENABLE_INVPCID |
  PROC_BASED2.ENABLE_VM_FUNCTIONS |
  PROC_BASED2.VMCS_SHADOWING |
  PROC_BASED2.RDSEED_EXITING |
  PROC_BASED2.USE_TSC_SCALING;

const EXIT_ALLOWED1 =
  EXIT_CTLS_DEFAULT1 |
  EXIT_CTLS.SAVE_DEBUG_CONTROLS |
  EXIT_CTLS.HOST_ADDRESS_SPACE_SIZE |
  EXIT_CTLS.ACKNOWLEDGE_INTERRUPT_ON_EXIT |
  EXIT_CTLS.SAVE_IA32_PAT |
  EXIT_CTLS.LOAD_IA32_PAT |
  EXIT_CTLS.SAVE_IA32_EFER |
  EXIT_CTLS.LOAD_IA32_EFER |
  EXIT_CTLS.SAVE_VMX_PREEMPTION_TIMER_VALUE;

const ENTRY_ALLOWED1 =
  ENTRY_CTLS_DEFAULT1 |
  ENTRY_CTLS.LOAD_DEBUG_CONTROLS |
  ENTRY_CTLS.IA32E_MODE_GUEST |
  ENTRY_CTLS.LOAD_IA32_PAT |
  ENTRY_CTLS.LOAD_IA32_EFER;

const capBits = (...positions: number[]): bigint => positions.reduce((v, p) => v | (1n << BigInt(p)), 0n);

const B = EPT_VPID_CAP_BIT;

/** The machine's VMX capabilities (Haswell-EP-like; see the header comment). */
export const VMX_CAPABILITIES: VmxCapabilities = Object.freeze({
  basic: Object.freeze({
    revisionId: 0x74757274,
    vmcsSize: 4096,
    physAddr32: false,
    dualMonitorSmm: false,
    memoryType: MEMORY_TYPE.WB,
    insOutsInfo: true,
    trueControls: true,
    noErrorCodeCheck: false,
  }),
  pinBased: ctl(PIN_BASED_DEFAULT1, PIN_ALLOWED1),
  procBased: ctl(PROC_BASED_DEFAULT1, PROC_ALLOWED1),
  exit: ctl(EXIT_CTLS_DEFAULT1, EXIT_ALLOWED1),
  entry: ctl(ENTRY_CTLS_DEFAULT1, ENTRY_ALLOWED1),
  truePinBased: ctl(PIN_BASED_DEFAULT1, PIN_ALLOWED1),
  trueProcBased: ctl(
    PROC_BASED_DEFAULT1 & ~(PROC_BASED.CR3_LOAD_EXITING | PROC_BASED.CR3_STORE_EXITING),
    PROC_ALLOWED1,
  ),
  trueExit: ctl(EXIT_CTLS_DEFAULT1 & ~EXIT_CTLS.SAVE_DEBUG_CONTROLS, EXIT_ALLOWED1),
  trueEntry: ctl(ENTRY_CTLS_DEFAULT1 & ~ENTRY_CTLS.LOAD_DEBUG_CONTROLS, ENTRY_ALLOWED1),
  procBased2: ctl(0, PROC2_ALLOWED1),
  procBased3: 0n,
  exit2: 0n,
  misc: Object.freeze({
    preemptionTimerRate: 5,
    storesLmaOnExit: true,
    activityHlt: true,
    activityShutdown: true,
    activityWaitForSipi: true,
    ptInVmx: false,
    rdmsrSmbase: false,
    cr3TargetCount: 4,
    msrListCountCode: 0,
    smmMonitorCtlBit2: false,
    vmwriteAnyField: true,
    zeroLengthInjection: false,
    msegRevisionId: 0,
  }),
  cr0Fixed0: CR0.PE | CR0.NE | CR0.PG,
  cr0Fixed1: -1,
  cr4Fixed0: CR4.VMXE,
  cr4Fixed1: CR4_IMPLEMENTED | CR4.VMXE,
  eptVpidCap: capBits(
    B.EXECUTE_ONLY,
    B.PAGE_WALK_4,
    B.MEMORY_TYPE_UC,
    B.MEMORY_TYPE_WB,
    B.PDE_2MB,
    B.PDPTE_1GB,
    B.INVEPT,
    B.ACCESSED_DIRTY,
    B.INVEPT_SINGLE_CONTEXT,
    B.INVEPT_ALL_CONTEXT,
    B.INVVPID,
    B.INVVPID_INDIVIDUAL_ADDRESS,
    B.INVVPID_SINGLE_CONTEXT,
    B.INVVPID_ALL_CONTEXT,
    B.INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS,
  ), // 0x00000f0106334141, as on Haswell-EP
  vmfunc: 1n << BigInt(VMFUNC.EPTP_SWITCHING),
});

// ---------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------

/** May the primary processor-based control be 1? */
export const canSetProc = (c: VmxCapabilities, m: number): boolean => (c.procBased.allowed1 & m) === m;

/** May the secondary control be 1? (False when secondary controls cannot be activated.) */
export function canSetProc2(c: VmxCapabilities, m: number): boolean {
  return canSetProc(c, PROC_BASED.ACTIVATE_SECONDARY_CONTROLS) && (c.procBased2.allowed1 & m) === m;
}

export const canSetPin = (c: VmxCapabilities, m: number): boolean => (c.pinBased.allowed1 & m) === m;
export const canSetExit = (c: VmxCapabilities, m: number): boolean => (c.exit.allowed1 & m) === m;
export const canSetEntry = (c: VmxCapabilities, m: number): boolean => (c.entry.allowed1 & m) === m;

/** Is an IA32_VMX_EPT_VPID_CAP bit set? */
export const hasEptVpidCap = (c: VmxCapabilities, position: number): boolean =>
  ((c.eptVpidCap >> BigInt(position)) & 1n) === 1n;

/** Recommended maximum number of entries in each MSR list: 512 × (N + 1). */
export const maxMsrListEntries = (c: VmxCapabilities): number => 512 * (c.misc.msrListCountCode + 1);

const tert = (c: VmxCapabilities, position: number): boolean =>
  canSetProc(c, PROC_BASED.ACTIVATE_TERTIARY_CONTROLS) && ((c.procBased3 >> BigInt(position)) & 1n) === 1n;

/**
 * When each VMCS feature (see vmcs-fields.ts) is present: the SDM's "exists only on
 * processors that support the 1-setting of …" for each field of Appendix B.
 */
export const VMCS_FEATURE_PRESENT: { readonly [F in VmcsFeature]: (c: VmxCapabilities) => boolean } = {
  vpid: (c) => canSetProc2(c, PROC_BASED2.ENABLE_VPID),
  postedInterrupts: (c) => canSetPin(c, PIN_BASED.PROCESS_POSTED_INTERRUPTS),
  eptViolationVe: (c) => canSetProc2(c, PROC_BASED2.EPT_VIOLATION_VE),
  hlat: (c) => tert(c, 1),
  ipiVirtualization: (c) => tert(c, 4),
  virtualInterruptDelivery: (c) => canSetProc2(c, PROC_BASED2.VIRTUAL_INTERRUPT_DELIVERY),
  pml: (c) => canSetProc2(c, PROC_BASED2.ENABLE_PML),
  uinv: (c) => canSetEntry(c, ENTRY_CTLS.LOAD_UINV) || canSetExit(c, EXIT_CTLS.CLEAR_UINV),
  tprShadow: (c) => canSetProc(c, PROC_BASED.USE_TPR_SHADOW),
  apicAccess: (c) => canSetProc2(c, PROC_BASED2.VIRTUALIZE_APIC_ACCESSES),
  vmFunctions: (c) => canSetProc2(c, PROC_BASED2.ENABLE_VM_FUNCTIONS),
  ept: (c) => canSetProc2(c, PROC_BASED2.ENABLE_EPT),
  eptpSwitching: (c) =>
    canSetProc2(c, PROC_BASED2.ENABLE_VM_FUNCTIONS) &&
    ((c.vmfunc >> BigInt(VMFUNC.EPTP_SWITCHING)) & 1n) === 1n,
  vmcsShadowing: (c) => canSetProc2(c, PROC_BASED2.VMCS_SHADOWING),
  xsaves: (c) => canSetProc2(c, PROC_BASED2.ENABLE_XSAVES_XRSTORS),
  enclsExiting: (c) => canSetProc2(c, PROC_BASED2.ENABLE_ENCLS_EXITING),
  spp: (c) => canSetProc2(c, PROC_BASED2.SUB_PAGE_WRITE_PERMISSIONS_FOR_EPT),
  tscScaling: (c) => canSetProc2(c, PROC_BASED2.USE_TSC_SCALING),
  tertiaryControls: (c) => canSetProc(c, PROC_BASED.ACTIVATE_TERTIARY_CONTROLS),
  enclvExiting: (c) => canSetProc2(c, PROC_BASED2.ENABLE_ENCLV_EXITING),
  pasidTranslation: (c) => canSetProc2(c, PROC_BASED2.PASID_TRANSLATION),
  // Present only on processors with SEAM (TDX); never on this machine.
  sharedEpt: () => false,
  pconfig: (c) => canSetProc2(c, PROC_BASED2.ENABLE_PCONFIG),
  secondaryExitControls: (c) => canSetExit(c, EXIT_CTLS.ACTIVATE_SECONDARY_CONTROLS),
  specCtrlVirtualization: (c) => tert(c, 7),
  pat: (c) =>
    canSetEntry(c, ENTRY_CTLS.LOAD_IA32_PAT) ||
    canSetExit(c, EXIT_CTLS.SAVE_IA32_PAT) ||
    canSetExit(c, EXIT_CTLS.LOAD_IA32_PAT),
  efer: (c) =>
    canSetEntry(c, ENTRY_CTLS.LOAD_IA32_EFER) ||
    canSetExit(c, EXIT_CTLS.SAVE_IA32_EFER) ||
    canSetExit(c, EXIT_CTLS.LOAD_IA32_EFER),
  perfGlobalCtrl: (c) =>
    canSetEntry(c, ENTRY_CTLS.LOAD_IA32_PERF_GLOBAL_CTRL) ||
    canSetExit(c, EXIT_CTLS.LOAD_IA32_PERF_GLOBAL_CTRL) ||
    canSetExit(c, EXIT_CTLS.SAVE_IA32_PERF_GLOBAL_CTL),
  bndcfgs: (c) => canSetEntry(c, ENTRY_CTLS.LOAD_IA32_BNDCFGS) || canSetExit(c, EXIT_CTLS.CLEAR_IA32_BNDCFGS),
  rtitCtl: (c) =>
    canSetEntry(c, ENTRY_CTLS.LOAD_IA32_RTIT_CTL) || canSetExit(c, EXIT_CTLS.CLEAR_IA32_RTIT_CTL),
  lbrCtl: (c) =>
    canSetEntry(c, ENTRY_CTLS.LOAD_GUEST_IA32_LBR_CTL) || canSetExit(c, EXIT_CTLS.CLEAR_IA32_LBR_CTL),
  pkrs: (c) => canSetEntry(c, ENTRY_CTLS.LOAD_PKRS) || canSetExit(c, EXIT_CTLS.LOAD_PKRS),
  cet: (c) => canSetEntry(c, ENTRY_CTLS.LOAD_CET_STATE) || canSetExit(c, EXIT_CTLS.LOAD_CET_STATE),
  fred: (c) => canSetEntry(c, ENTRY_CTLS.LOAD_IA32_FRED),
  preemptionTimer: (c) => canSetPin(c, PIN_BASED.ACTIVATE_VMX_PREEMPTION_TIMER),
  pauseLoopExiting: (c) => canSetProc2(c, PROC_BASED2.PAUSE_LOOP_EXITING),
  secondaryControls: (c) => canSetProc(c, PROC_BASED.ACTIVATE_SECONDARY_CONTROLS),
  instructionTimeout: (c) => canSetProc2(c, PROC_BASED2.INSTRUCTION_TIMEOUT),
};

/** Does the machine with these capabilities support the field (VMREAD/VMWRITE accept it)? */
export function vmcsFieldSupported(f: VmcsField, c: VmxCapabilities): boolean {
  if (f.feature !== undefined && !VMCS_FEATURE_PRESENT[f.feature](c)) return false;
  // CR3-target value n exists only if n < the supported CR3-target count.
  const cr3Target = /^CR3_TARGET_VALUE_(\d+)$/.exec(f.name);
  if (cr3Target && Number(cr3Target[1]) >= c.misc.cr3TargetCount) return false;
  return true;
}

/** The fields VMREAD/VMWRITE accept on a machine with these capabilities. */
export function supportedVmcsFields(c: VmxCapabilities): VmcsField[] {
  return VMCS_FIELDS.filter((f) => vmcsFieldSupported(f, c));
}

/** IA32_VMX_VMCS_ENUM: bits 9:1 = the highest index of any supported field. */
export function vmcsEnum(c: VmxCapabilities): bigint {
  return BigInt(maxIndexOf(supportedVmcsFields(c)) << 1);
}

// ---------------------------------------------------------------------------------------
// MSR values
// ---------------------------------------------------------------------------------------

const u32 = (v: number): bigint => BigInt(v >>> 0);

/** A control capability MSR: allowed-0 settings in bits 31:0, allowed-1 settings in 63:32. */
export function controlMsr(c: ControlCapability): bigint {
  return (u32(c.allowed1) << 32n) | u32(c.allowed0);
}

export function encodeVmxBasic(b: VmxBasic): bigint {
  return (
    BigInt(b.revisionId & 0x7fffffff) |
    (BigInt(b.vmcsSize & 0x1fff) << 32n) |
    (b.physAddr32 ? 1n << 48n : 0n) |
    (b.dualMonitorSmm ? 1n << 49n : 0n) |
    (BigInt(b.memoryType & 0xf) << 50n) |
    (b.insOutsInfo ? 1n << 54n : 0n) |
    (b.trueControls ? 1n << 55n : 0n) |
    (b.noErrorCodeCheck ? 1n << 56n : 0n)
  );
}

export function encodeVmxMisc(m: VmxMisc): bigint {
  const lo =
    (m.preemptionTimerRate & 0x1f) |
    (m.storesLmaOnExit ? 1 << 5 : 0) |
    (m.activityHlt ? 1 << 6 : 0) |
    (m.activityShutdown ? 1 << 7 : 0) |
    (m.activityWaitForSipi ? 1 << 8 : 0) |
    (m.ptInVmx ? 1 << 14 : 0) |
    (m.rdmsrSmbase ? 1 << 15 : 0) |
    ((m.cr3TargetCount & 0x1ff) << 16) |
    ((m.msrListCountCode & 7) << 25) |
    (m.smmMonitorCtlBit2 ? 1 << 28 : 0) |
    (m.vmwriteAnyField ? 1 << 29 : 0) |
    (m.zeroLengthInjection ? 1 << 30 : 0);
  return (u32(m.msegRevisionId) << 32n) | u32(lo);
}

/**
 * The value of every capability MSR that exists on a machine with these capabilities
 * (SDM 3C Appendix A: PROCBASED_CTLS2 only if secondary controls can be activated,
 * EPT_VPID_CAP only with EPT or VPID, TRUE_* only if IA32_VMX_BASIC bit 55, VMFUNC only
 * with "enable VM functions", CTLS3 / EXIT_CTLS2 only with tertiary / secondary exit
 * controls). RDMSR of a VMX MSR missing from the map raises #GP.
 */
export function vmxCapabilityMsrs(c: VmxCapabilities): Map<number, bigint> {
  const m = new Map<number, bigint>();
  m.set(VMX_MSR.BASIC, encodeVmxBasic(c.basic));
  m.set(VMX_MSR.PINBASED_CTLS, controlMsr(c.pinBased));
  m.set(VMX_MSR.PROCBASED_CTLS, controlMsr(c.procBased));
  m.set(VMX_MSR.EXIT_CTLS, controlMsr(c.exit));
  m.set(VMX_MSR.ENTRY_CTLS, controlMsr(c.entry));
  m.set(VMX_MSR.MISC, encodeVmxMisc(c.misc));
  m.set(VMX_MSR.CR0_FIXED0, u32(c.cr0Fixed0));
  m.set(VMX_MSR.CR0_FIXED1, u32(c.cr0Fixed1));
  m.set(VMX_MSR.CR4_FIXED0, u32(c.cr4Fixed0));
  m.set(VMX_MSR.CR4_FIXED1, u32(c.cr4Fixed1));
  m.set(VMX_MSR.VMCS_ENUM, vmcsEnum(c));
  if (canSetProc(c, PROC_BASED.ACTIVATE_SECONDARY_CONTROLS)) {
    m.set(VMX_MSR.PROCBASED_CTLS2, controlMsr(c.procBased2));
    if (canSetProc2(c, PROC_BASED2.ENABLE_EPT) || canSetProc2(c, PROC_BASED2.ENABLE_VPID))
      m.set(VMX_MSR.EPT_VPID_CAP, c.eptVpidCap);
    if (canSetProc2(c, PROC_BASED2.ENABLE_VM_FUNCTIONS)) m.set(VMX_MSR.VMFUNC, c.vmfunc);
  }
  if (c.basic.trueControls) {
    m.set(VMX_MSR.TRUE_PINBASED_CTLS, controlMsr(c.truePinBased));
    m.set(VMX_MSR.TRUE_PROCBASED_CTLS, controlMsr(c.trueProcBased));
    m.set(VMX_MSR.TRUE_EXIT_CTLS, controlMsr(c.trueExit));
    m.set(VMX_MSR.TRUE_ENTRY_CTLS, controlMsr(c.trueEntry));
  }
  if (canSetProc(c, PROC_BASED.ACTIVATE_TERTIARY_CONTROLS)) m.set(VMX_MSR.PROCBASED_CTLS3, c.procBased3);
  if (canSetExit(c, EXIT_CTLS.ACTIVATE_SECONDARY_CONTROLS)) m.set(VMX_MSR.EXIT_CTLS2, c.exit2);
  return m;
}

// ---------------------------------------------------------------------------------------
// Machine options
// ---------------------------------------------------------------------------------------

/** Features a machine option can turn off. Absent or true: keep; false: remove. */
export interface VmxFeatureOptions {
  readonly ept?: boolean;
  readonly vpid?: boolean;
  readonly unrestrictedGuest?: boolean;
  readonly vmcsShadowing?: boolean;
  /** VM functions (EPTP switching); off removes IA32_VMX_VMFUNC and the control. */
  readonly vmFunctions?: boolean;
  /** EPT accessed and dirty flags (EPT_VPID_CAP bit 21). */
  readonly eptAccessedDirty?: boolean;
  /**
   * IA32_VMX_MISC bit 29. Off, VMWRITE to a VM-exit information field fails with error 13
   * (useful to test that path); on, it succeeds, which software that fills a shadow VMCS
   * with exit information relies on.
   */
  readonly vmwriteAnyField?: boolean;
}

/** Secondary controls that need EPT (SDM 3C §26.2.1.1). */
const NEEDS_EPT =
  PROC_BASED2.UNRESTRICTED_GUEST |
  PROC_BASED2.ENABLE_PML |
  PROC_BASED2.EPT_VIOLATION_VE |
  PROC_BASED2.MODE_BASED_EXECUTE_CONTROL_FOR_EPT |
  PROC_BASED2.SUB_PAGE_WRITE_PERMISSIONS_FOR_EPT;

/**
 * The capabilities with some features turned off, kept consistent: without EPT, the
 * secondary controls that need it go too (unrestricted guest, …), so does EPTP switching
 * (and with it "enable VM functions" when no VM function is left), and EPT_VPID_CAP
 * bits 31:0 read 0; without VPID, bits 63:32 read 0. The VMCS fields of removed features
 * disappear from supportedVmcsFields() and VMCS_ENUM follows.
 */
export function restrictVmxCapabilities(base: VmxCapabilities, opts: VmxFeatureOptions): VmxCapabilities {
  let proc2 = base.procBased2.allowed1;
  let eptVpidCap = base.eptVpidCap;
  let vmfunc = base.vmfunc;
  if (opts.ept === false) {
    proc2 &= ~(PROC_BASED2.ENABLE_EPT | NEEDS_EPT);
    eptVpidCap &= ~EPT_CAP_MASK;
    vmfunc &= ~(1n << BigInt(VMFUNC.EPTP_SWITCHING));
  }
  if (opts.vpid === false) {
    proc2 &= ~PROC_BASED2.ENABLE_VPID;
    eptVpidCap &= ~VPID_CAP_MASK;
  }
  if (opts.unrestrictedGuest === false) proc2 &= ~PROC_BASED2.UNRESTRICTED_GUEST;
  if (opts.vmcsShadowing === false) proc2 &= ~PROC_BASED2.VMCS_SHADOWING;
  if (opts.vmFunctions === false) vmfunc = 0n;
  if (opts.eptAccessedDirty === false) eptVpidCap &= ~(1n << BigInt(EPT_VPID_CAP_BIT.ACCESSED_DIRTY));
  if (vmfunc === 0n) proc2 &= ~PROC_BASED2.ENABLE_VM_FUNCTIONS;
  return Object.freeze({
    ...base,
    procBased2: ctl(base.procBased2.allowed0 & proc2, proc2),
    eptVpidCap,
    vmfunc,
    misc: Object.freeze({
      ...base.misc,
      vmwriteAnyField: base.misc.vmwriteAnyField && opts.vmwriteAnyField !== false,
    }),
  });
}

// ---------------------------------------------------------------------------------------
// Consistency
// ---------------------------------------------------------------------------------------

const named = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a | b, 0);

/** Bits of each 32-bit control that have a name in controls.ts. */
export const NAMED_CONTROL_BITS = {
  pinBased: named(PIN_BASED),
  procBased: named(PROC_BASED),
  procBased2: named(PROC_BASED2),
  exit: named(EXIT_CTLS),
  entry: named(ENTRY_CTLS),
} as const;

/**
 * Every inconsistency of a capability set, as sentences (empty when consistent): the
 * rules of SDM 3C Appendix A plus the dependencies between features.
 */
export function checkVmxCapabilities(c: VmxCapabilities): string[] {
  const errs: string[] = [];
  const pairs: [string, ControlCapability, ControlCapability, number, number][] = [
    ['pin-based', c.pinBased, c.truePinBased, PIN_BASED_DEFAULT1, NAMED_CONTROL_BITS.pinBased],
    [
      'primary processor-based',
      c.procBased,
      c.trueProcBased,
      PROC_BASED_DEFAULT1,
      NAMED_CONTROL_BITS.procBased,
    ],
    ['VM-exit', c.exit, c.trueExit, EXIT_CTLS_DEFAULT1, NAMED_CONTROL_BITS.exit],
    ['VM-entry', c.entry, c.trueEntry, ENTRY_CTLS_DEFAULT1, NAMED_CONTROL_BITS.entry],
  ];
  for (const [what, plain, tru, default1, names] of pairs) {
    if (plain.allowed0 & ~plain.allowed1) errs.push(`${what}: a control must be 1 but may not be 1`);
    if (tru.allowed0 & ~tru.allowed1) errs.push(`${what} (TRUE): a control must be 1 but may not be 1`);
    if (plain.allowed0 !== (tru.allowed0 | default1))
      errs.push(`${what}: allowed-0 settings are not the TRUE ones plus the default1 class`);
    if (plain.allowed1 !== tru.allowed1) errs.push(`${what}: allowed-1 settings differ from the TRUE MSR`);
    if ((default1 & ~names & ~tru.allowed0) !== 0)
      errs.push(`${what} (TRUE): a reserved default1 bit is allowed to be 0`);
    if ((plain.allowed1 & ~default1 & ~names) !== 0) errs.push(`${what}: an allowed-1 bit has no name`);
  }
  if (c.procBased2.allowed0 !== 0)
    errs.push('secondary controls have no default1 class: allowed-0 settings must be 0');
  if (c.procBased2.allowed1 & ~NAMED_CONTROL_BITS.procBased2)
    errs.push('secondary: an allowed-1 bit has no name');
  if (c.procBased3 !== 0n && !canSetProc(c, PROC_BASED.ACTIVATE_TERTIARY_CONTROLS))
    errs.push('tertiary controls reported without "activate tertiary controls"');
  if (c.exit2 !== 0n && !canSetExit(c, EXIT_CTLS.ACTIVATE_SECONDARY_CONTROLS))
    errs.push('secondary VM-exit controls reported without "activate secondary controls"');

  const ept = canSetProc2(c, PROC_BASED2.ENABLE_EPT);
  const vpid = canSetProc2(c, PROC_BASED2.ENABLE_VPID);
  if (!ept && c.procBased2.allowed1 & NEEDS_EPT)
    errs.push('a secondary control that needs EPT is offered without EPT');
  if (ept !== ((c.eptVpidCap & EPT_CAP_MASK) !== 0n))
    errs.push('EPT_VPID_CAP bits 31:0 do not match "enable EPT"');
  if (vpid !== ((c.eptVpidCap & VPID_CAP_MASK) !== 0n))
    errs.push('EPT_VPID_CAP bits 63:32 do not match "enable VPID"');
  if (ept) {
    if (!hasEptVpidCap(c, B.PAGE_WALK_4)) errs.push('EPT without 4-level page walks');
    if (!hasEptVpidCap(c, B.MEMORY_TYPE_UC) && !hasEptVpidCap(c, B.MEMORY_TYPE_WB))
      errs.push('EPT without a usable EPT paging-structure memory type');
    if (!hasEptVpidCap(c, B.INVEPT)) errs.push('EPT without INVEPT');
  }
  if (
    hasEptVpidCap(c, B.INVEPT) !==
    (hasEptVpidCap(c, B.INVEPT_SINGLE_CONTEXT) || hasEptVpidCap(c, B.INVEPT_ALL_CONTEXT))
  )
    errs.push('INVEPT support and its types disagree');
  if (vpid && !hasEptVpidCap(c, B.INVVPID)) errs.push('VPID without INVVPID');
  const invvpidTypes = [
    B.INVVPID_INDIVIDUAL_ADDRESS,
    B.INVVPID_SINGLE_CONTEXT,
    B.INVVPID_ALL_CONTEXT,
    B.INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS,
  ].some((p) => hasEptVpidCap(c, p));
  if (hasEptVpidCap(c, B.INVVPID) !== invvpidTypes) errs.push('INVVPID support and its types disagree');
  const vmFunctions = canSetProc2(c, PROC_BASED2.ENABLE_VM_FUNCTIONS);
  if (vmFunctions !== (c.vmfunc !== 0n)) errs.push('IA32_VMX_VMFUNC does not match "enable VM functions"');
  if (c.vmfunc & ~1n) errs.push('a VM function other than EPTP switching is reported');
  if (c.vmfunc & 1n && !ept) errs.push('EPTP switching without EPT');

  if (c.basic.revisionId & ~0x7fffffff) errs.push('VMCS revision identifier has bit 31 set');
  if (c.basic.vmcsSize <= 0 || c.basic.vmcsSize > 4096) errs.push('VMCS region size must be 1..4096 bytes');
  if (c.basic.memoryType !== MEMORY_TYPE.WB && c.basic.memoryType !== MEMORY_TYPE.UC)
    errs.push('VMCS memory type must be UC or WB');
  if (c.misc.preemptionTimerRate > 31) errs.push('preemption-timer rate has 5 bits');
  if (c.misc.cr3TargetCount > 256) errs.push('at most 256 CR3-target values');

  if (c.cr0Fixed0 & ~c.cr0Fixed1) errs.push('CR0: a bit fixed to 1 is not allowed to be 1');
  if (c.cr4Fixed0 & ~c.cr4Fixed1) errs.push('CR4: a bit fixed to 1 is not allowed to be 1');
  if (!(c.cr4Fixed0 & CR4.VMXE)) errs.push('CR4.VMXE must be fixed to 1 in VMX operation');
  if ((c.cr0Fixed0 & (CR0.PE | CR0.NE | CR0.PG)) !== (CR0.PE | CR0.NE | CR0.PG))
    errs.push('CR0.PE, NE and PG must be reported fixed to 1 (unrestricted guest relaxes PE/PG at entry)');
  return errs;
}
