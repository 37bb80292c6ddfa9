/**
 * VMX control bits and the fixed formats of VMCS fields and exit information, from the
 * SDM Vol. 3C chapters on the VMCS (ch. 24), VM entries (ch. 26), VM exits (ch. 27) and
 * the VMX instruction reference (ch. 30), and Appendix A. Section numbers here follow the
 * 2016-2022 editions, as DESIGN.md does; editions from 2023 add one to the chapter.
 *
 * 32-bit masks are int32 as JS bit operators produce them (bit 31 ⇒ negative number).
 * Control names are the SDM's in UPPER_SNAKE. Layouts of 32-bit formats are BitLayouts
 * (see bitfield.ts); one-bit flags are masks.
 */
import { bit, bits, maskOf, type BitLayout } from './bitfield.js';

// ---------------------------------------------------------------------------------------
// VM-execution, VM-exit and VM-entry controls
// ---------------------------------------------------------------------------------------

/** Pin-based VM-execution controls (SDM 3C §24.6.1). */
export const PIN_BASED = {
  EXTERNAL_INTERRUPT_EXITING: 1 << 0,
  NMI_EXITING: 1 << 3,
  VIRTUAL_NMIS: 1 << 5,
  ACTIVATE_VMX_PREEMPTION_TIMER: 1 << 6,
  PROCESS_POSTED_INTERRUPTS: 1 << 7,
} as const;

/** Primary processor-based VM-execution controls (SDM 3C §24.6.2). */
export const PROC_BASED = {
  INTERRUPT_WINDOW_EXITING: 1 << 2,
  USE_TSC_OFFSETTING: 1 << 3,
  HLT_EXITING: 1 << 7,
  INVLPG_EXITING: 1 << 9,
  MWAIT_EXITING: 1 << 10,
  RDPMC_EXITING: 1 << 11,
  RDTSC_EXITING: 1 << 12,
  /** Default1: may be 0 only where IA32_VMX_TRUE_PROCBASED_CTLS allows it. */
  CR3_LOAD_EXITING: 1 << 15,
  /** Default1: may be 0 only where IA32_VMX_TRUE_PROCBASED_CTLS allows it. */
  CR3_STORE_EXITING: 1 << 16,
  ACTIVATE_TERTIARY_CONTROLS: 1 << 17,
  CR8_LOAD_EXITING: 1 << 19,
  CR8_STORE_EXITING: 1 << 20,
  USE_TPR_SHADOW: 1 << 21,
  NMI_WINDOW_EXITING: 1 << 22,
  MOV_DR_EXITING: 1 << 23,
  UNCONDITIONAL_IO_EXITING: 1 << 24,
  USE_IO_BITMAPS: 1 << 25,
  MONITOR_TRAP_FLAG: 1 << 27,
  USE_MSR_BITMAPS: 1 << 28,
  MONITOR_EXITING: 1 << 29,
  PAUSE_EXITING: 1 << 30,
  ACTIVATE_SECONDARY_CONTROLS: 1 << 31,
} as const;

/** Secondary processor-based VM-execution controls (SDM 3C §24.6.2). */
export const PROC_BASED2 = {
  VIRTUALIZE_APIC_ACCESSES: 1 << 0,
  ENABLE_EPT: 1 << 1,
  DESCRIPTOR_TABLE_EXITING: 1 << 2,
  ENABLE_RDTSCP: 1 << 3,
  VIRTUALIZE_X2APIC_MODE: 1 << 4,
  ENABLE_VPID: 1 << 5,
  WBINVD_EXITING: 1 << 6,
  UNRESTRICTED_GUEST: 1 << 7,
  APIC_REGISTER_VIRTUALIZATION: 1 << 8,
  VIRTUAL_INTERRUPT_DELIVERY: 1 << 9,
  PAUSE_LOOP_EXITING: 1 << 10,
  RDRAND_EXITING: 1 << 11,
  ENABLE_INVPCID: 1 << 12,
  ENABLE_VM_FUNCTIONS: 1 << 13,
  VMCS_SHADOWING: 1 << 14,
  ENABLE_ENCLS_EXITING: 1 << 15,
  RDSEED_EXITING: 1 << 16,
  ENABLE_PML: 1 << 17,
  EPT_VIOLATION_VE: 1 << 18,
  CONCEAL_VMX_FROM_PT: 1 << 19,
  ENABLE_XSAVES_XRSTORS: 1 << 20,
  PASID_TRANSLATION: 1 << 21,
  MODE_BASED_EXECUTE_CONTROL_FOR_EPT: 1 << 22,
  SUB_PAGE_WRITE_PERMISSIONS_FOR_EPT: 1 << 23,
  PT_USES_GUEST_PHYSICAL_ADDRESSES: 1 << 24,
  USE_TSC_SCALING: 1 << 25,
  ENABLE_USER_WAIT_AND_PAUSE: 1 << 26,
  ENABLE_PCONFIG: 1 << 27,
  ENABLE_ENCLV_EXITING: 1 << 28,
  VMM_BUS_LOCK_DETECTION: 1 << 30,
  INSTRUCTION_TIMEOUT: 1 << 31,
} as const;

/**
 * Tertiary processor-based VM-execution controls (a 64-bit field; SDM 3C §24.6.2).
 * Bit positions, not masks. The machine does not offer them (see capabilities.ts).
 */
export const PROC_BASED3_BIT = {
  LOADIWKEY_EXITING: 0,
  ENABLE_HLAT: 1,
  EPT_PAGING_WRITE_CONTROL: 2,
  GUEST_PAGING_VERIFICATION: 3,
  IPI_VIRTUALIZATION: 4,
  VIRTUALIZE_IA32_SPEC_CTRL: 7,
} as const;

/** Primary VM-exit controls (SDM 3C §24.7.1). */
export const EXIT_CTLS = {
  /** Default1: may be 0 only where IA32_VMX_TRUE_EXIT_CTLS allows it. */
  SAVE_DEBUG_CONTROLS: 1 << 2,
  HOST_ADDRESS_SPACE_SIZE: 1 << 9,
  LOAD_IA32_PERF_GLOBAL_CTRL: 1 << 12,
  ACKNOWLEDGE_INTERRUPT_ON_EXIT: 1 << 15,
  SAVE_IA32_PAT: 1 << 18,
  LOAD_IA32_PAT: 1 << 19,
  SAVE_IA32_EFER: 1 << 20,
  LOAD_IA32_EFER: 1 << 21,
  SAVE_VMX_PREEMPTION_TIMER_VALUE: 1 << 22,
  CLEAR_IA32_BNDCFGS: 1 << 23,
  CONCEAL_VMX_FROM_PT: 1 << 24,
  CLEAR_IA32_RTIT_CTL: 1 << 25,
  CLEAR_IA32_LBR_CTL: 1 << 26,
  CLEAR_UINV: 1 << 27,
  LOAD_CET_STATE: 1 << 28,
  LOAD_PKRS: 1 << 29,
  SAVE_IA32_PERF_GLOBAL_CTL: 1 << 30,
  ACTIVATE_SECONDARY_CONTROLS: 1 << 31,
} as const;

/** Secondary VM-exit controls (a 64-bit field; bit positions). Not offered by the machine. */
export const EXIT_CTLS2_BIT = {
  SAVE_IA32_FRED: 0,
  LOAD_IA32_FRED: 1,
} as const;

/** VM-entry controls (SDM 3C §24.8.1). */
export const ENTRY_CTLS = {
  /** Default1: may be 0 only where IA32_VMX_TRUE_ENTRY_CTLS allows it. */
  LOAD_DEBUG_CONTROLS: 1 << 2,
  IA32E_MODE_GUEST: 1 << 9,
  ENTRY_TO_SMM: 1 << 10,
  DEACTIVATE_DUAL_MONITOR_TREATMENT: 1 << 11,
  LOAD_IA32_PERF_GLOBAL_CTRL: 1 << 13,
  LOAD_IA32_PAT: 1 << 14,
  LOAD_IA32_EFER: 1 << 15,
  LOAD_IA32_BNDCFGS: 1 << 16,
  CONCEAL_VMX_FROM_PT: 1 << 17,
  LOAD_IA32_RTIT_CTL: 1 << 18,
  LOAD_UINV: 1 << 19,
  LOAD_CET_STATE: 1 << 20,
  LOAD_GUEST_IA32_LBR_CTL: 1 << 21,
  LOAD_PKRS: 1 << 22,
  LOAD_IA32_FRED: 1 << 23,
} as const;

/**
 * The default1 class of each 32-bit control (SDM 3C Appendix A.2-A.5): bits that the
 * non-TRUE capability MSRs report as fixed to 1. Most are reserved; the named ones among
 * them (CR3-load/-store exiting, save/load debug controls) may be cleared only where the
 * TRUE MSR allows it.
 */
export const PIN_BASED_DEFAULT1 = maskOf(1, 2, 4); // 0x00000016
export const PROC_BASED_DEFAULT1 = maskOf(1, 4, 5, 6, 8, 13, 14, 15, 16, 26); // 0x0401e172
export const EXIT_CTLS_DEFAULT1 = maskOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14, 16, 17); // 0x00036dff
export const ENTRY_CTLS_DEFAULT1 = maskOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 12); // 0x000011ff

// ---------------------------------------------------------------------------------------
// VM-instruction errors (SDM 3C §30.4, "VM Instruction Error Numbers")
// ---------------------------------------------------------------------------------------

export const VM_INSTRUCTION_ERROR = {
  VMCALL_IN_VMX_ROOT: 1,
  VMCLEAR_INVALID_ADDRESS: 2,
  VMCLEAR_VMXON_POINTER: 3,
  VMLAUNCH_NON_CLEAR_VMCS: 4,
  VMRESUME_NON_LAUNCHED_VMCS: 5,
  VMRESUME_AFTER_VMXOFF: 6,
  ENTRY_INVALID_CONTROL_FIELDS: 7,
  ENTRY_INVALID_HOST_STATE_FIELDS: 8,
  VMPTRLD_INVALID_ADDRESS: 9,
  VMPTRLD_VMXON_POINTER: 10,
  VMPTRLD_INCORRECT_REVISION: 11,
  UNSUPPORTED_VMCS_COMPONENT: 12,
  VMWRITE_READ_ONLY_COMPONENT: 13,
  VMXON_IN_VMX_ROOT: 15,
  ENTRY_INVALID_EXECUTIVE_VMCS_POINTER: 16,
  ENTRY_NON_LAUNCHED_EXECUTIVE_VMCS: 17,
  ENTRY_EXECUTIVE_VMCS_POINTER_NOT_VMXON_POINTER: 18,
  VMCALL_NON_CLEAR_VMCS: 19,
  VMCALL_INVALID_EXIT_CONTROLS: 20,
  VMCALL_INCORRECT_MSEG_REVISION: 22,
  VMXOFF_UNDER_DUAL_MONITOR: 23,
  VMCALL_INVALID_SMM_MONITOR_FEATURES: 24,
  ENTRY_INVALID_EXECUTIVE_VMCS_EXEC_CONTROLS: 25,
  ENTRY_EVENTS_BLOCKED_BY_MOV_SS: 26,
  INVALID_INVEPT_INVVPID_OPERAND: 28,
} as const;

export type VmInstructionError = (typeof VM_INSTRUCTION_ERROR)[keyof typeof VM_INSTRUCTION_ERROR];

/** The SDM's description of each VM-instruction error number. */
export const VM_INSTRUCTION_ERROR_TEXT: { readonly [N in VmInstructionError]: string } = {
  1: 'VMCALL executed in VMX root operation',
  2: 'VMCLEAR with invalid physical address',
  3: 'VMCLEAR with VMXON pointer',
  4: 'VMLAUNCH with non-clear VMCS',
  5: 'VMRESUME with non-launched VMCS',
  6: 'VMRESUME after VMXOFF (VMXOFF and VMXON between VMLAUNCH and VMRESUME)',
  7: 'VM entry with invalid control field(s)',
  8: 'VM entry with invalid host-state field(s)',
  9: 'VMPTRLD with invalid physical address',
  10: 'VMPTRLD with VMXON pointer',
  11: 'VMPTRLD with incorrect VMCS revision identifier',
  12: 'VMREAD/VMWRITE from/to unsupported VMCS component',
  13: 'VMWRITE to read-only VMCS component',
  15: 'VMXON executed in VMX root operation',
  16: 'VM entry with invalid executive-VMCS pointer',
  17: 'VM entry with non-launched executive VMCS',
  18: 'VM entry with executive-VMCS pointer not VMXON pointer (when attempting to deactivate the dual-monitor treatment of SMIs and SMM)',
  19: 'VMCALL with non-clear VMCS (when attempting to activate the dual-monitor treatment of SMIs and SMM)',
  20: 'VMCALL with invalid VM-exit control fields',
  22: 'VMCALL with incorrect MSEG revision identifier (when attempting to activate the dual-monitor treatment of SMIs and SMM)',
  23: 'VMXOFF under dual-monitor treatment of SMIs and SMM',
  24: 'VMCALL with invalid SMM-monitor features (when attempting to activate the dual-monitor treatment of SMIs and SMM)',
  25: 'VM entry with invalid VM-execution control fields in executive VMCS (when attempting to return from SMM)',
  26: 'VM entry with events blocked by MOV SS',
  28: 'Invalid operand to INVEPT/INVVPID',
};

/** VMX-abort indicator values (SDM 3C §27.7, "VMX Aborts"). */
export const VMX_ABORT = {
  SAVING_GUEST_MSRS: 1,
  HOST_PDPTE_CHECK: 2,
  VMCS_CORRUPTED: 3,
  LOADING_HOST_MSRS: 4,
  MACHINE_CHECK_DURING_EXIT: 5,
  HOST_ADDRESS_SPACE_SIZE_IN_IA32E: 6,
} as const;

// ---------------------------------------------------------------------------------------
// Event information: VM-entry/VM-exit interruption information, IDT-vectoring information
// (SDM 3C §24.8.3, §27.2.2, §27.2.4)
// ---------------------------------------------------------------------------------------

/**
 * Interruption-information format, shared by VM-entry interruption information, VM-exit
 * interruption information and IDT-vectoring information. NMI_UNBLOCKING_DUE_TO_IRET is
 * meaningful only in VM-exit interruption information (and reserved on entry).
 */
export const INTERRUPTION_INFO = {
  VECTOR: bits(7, 0),
  TYPE: bits(10, 8),
  /** On entry: deliver error code. On exit: error code valid. */
  ERROR_CODE_VALID: bit(11),
  NMI_UNBLOCKING_DUE_TO_IRET: bit(12),
  VALID: bit(31),
} as const satisfies BitLayout;

/** Masks of the one-bit flags of the interruption-information format. */
export const INTR_INFO_ERROR_CODE_VALID = 1 << 11;
export const INTR_INFO_NMI_UNBLOCKING = 1 << 12;
export const INTR_INFO_VALID = 1 << 31;

/** Interruption types (bits 10:8). 1 is reserved. */
export const INTERRUPTION_TYPE = {
  EXTERNAL_INTERRUPT: 0,
  NMI: 2,
  HARDWARE_EXCEPTION: 3,
  SOFTWARE_INTERRUPT: 4,
  PRIVILEGED_SOFTWARE_EXCEPTION: 5,
  SOFTWARE_EXCEPTION: 6,
  /** Other event: injection of a pending MTF VM exit. */
  OTHER_EVENT: 7,
} as const;

/** Build an interruption-information value (valid bit set). */
export function interruptionInfo(vector: number, type: number, errorCodeValid: boolean): number {
  return (
    INTR_INFO_VALID |
    (errorCodeValid ? INTR_INFO_ERROR_CODE_VALID : 0) |
    ((type & 7) << 8) |
    (vector & 0xff) |
    0
  );
}

// ---------------------------------------------------------------------------------------
// Guest non-register state (SDM 3C §24.4.2)
// ---------------------------------------------------------------------------------------

/** Guest interruptibility state (32-bit field). Bits 31:5 are reserved. */
export const INTERRUPTIBILITY = {
  BLOCKING_BY_STI: 1 << 0,
  BLOCKING_BY_MOV_SS: 1 << 1,
  BLOCKING_BY_SMI: 1 << 2,
  BLOCKING_BY_NMI: 1 << 3,
  ENCLAVE_INTERRUPTION: 1 << 4,
} as const;

/** Guest activity state values. */
export const ACTIVITY_STATE = {
  ACTIVE: 0,
  HLT: 1,
  SHUTDOWN: 2,
  WAIT_FOR_SIPI: 3,
} as const;

/** Guest pending debug exceptions (natural-width field). Other bits are reserved. */
export const PENDING_DEBUG = {
  /** B3:B0, bits 3:0: breakpoint conditions met. */
  B0: 1 << 0,
  B1: 1 << 1,
  B2: 1 << 2,
  B3: 1 << 3,
  ENABLED_BREAKPOINT: 1 << 12,
  BS: 1 << 14,
  RTM: 1 << 16,
} as const;

/** Access-rights format of the guest segment-register fields (SDM 3C §24.4.1). */
export const ACCESS_RIGHTS = {
  TYPE: bits(3, 0),
  /** Descriptor type: 0 system, 1 code or data. */
  S: bit(4),
  DPL: bits(6, 5),
  P: bit(7),
  AVL: bit(12),
  /** 64-bit mode active (CS only). */
  L: bit(13),
  D_B: bit(14),
  G: bit(15),
  /** Segment unusable (0 = usable). */
  UNUSABLE: bit(16),
} as const satisfies BitLayout;

/** Bits of the access-rights fields that must be 0: 11:8 and 31:17. */
export const ACCESS_RIGHTS_RESERVED = 0xf00 | ~0x1ffff | 0;
export const ACCESS_RIGHTS_UNUSABLE = 1 << 16;

// ---------------------------------------------------------------------------------------
// Exit qualifications (SDM 3C §27.2.1)
// ---------------------------------------------------------------------------------------
// INVLPG: the linear-address operand. INVEPT, INVPCID, INVVPID, LGDT/LIDT/SGDT/SIDT,
// LLDT/LTR/SLDT/STR, VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMXON, XRSTORS, XSAVES:
// the displacement of the memory operand (0 for register operands). SIPI: the vector in
// bits 7:0. EPT violations: see ept.ts. Exits without a qualification store 0.

/** Debug exceptions (#DB exits via the exception bitmap). */
export const DEBUG_EXCEPTION_QUAL = {
  B0: 1 << 0,
  B1: 1 << 1,
  B2: 1 << 2,
  B3: 1 << 3,
  BD: 1 << 13,
  BS: 1 << 14,
  RTM: 1 << 16,
} as const;

/** Task switch. */
export const TASK_SWITCH_QUAL = {
  SELECTOR: bits(15, 0),
  SOURCE: bits(31, 30),
} as const satisfies BitLayout;

export const TASK_SWITCH_SOURCE = {
  CALL: 0,
  IRET: 1,
  JMP: 2,
  TASK_GATE_IN_IDT: 3,
} as const;

/** Control-register accesses. */
export const CR_ACCESS_QUAL = {
  /** Number of the control register (0 for CLTS and LMSW). */
  CR_NUMBER: bits(3, 0),
  ACCESS_TYPE: bits(5, 4),
  /** LMSW operand type: 0 register, 1 memory. */
  LMSW_OPERAND_TYPE: bit(6),
  /** For MOV CR: the general-purpose register (0 RAX … 15 R15). */
  GPR: bits(11, 8),
  /** For LMSW: the source data. */
  LMSW_SOURCE_DATA: bits(31, 16),
} as const satisfies BitLayout;

export const CR_ACCESS_TYPE = {
  MOV_TO_CR: 0,
  MOV_FROM_CR: 1,
  CLTS: 2,
  LMSW: 3,
} as const;

/** MOV DR. */
export const MOV_DR_QUAL = {
  DR_NUMBER: bits(2, 0),
  /** 0 = MOV to DR, 1 = MOV from DR. */
  DIRECTION: bit(4),
  GPR: bits(11, 8),
} as const satisfies BitLayout;

export const MOV_DR_DIRECTION = { TO_DR: 0, FROM_DR: 1 } as const;

/** I/O instructions. */
export const IO_QUAL = {
  /** Size of access: 0 = 1 byte, 1 = 2 bytes, 3 = 4 bytes. */
  SIZE: bits(2, 0),
  /** 0 = OUT, 1 = IN. */
  DIRECTION: bit(3),
  STRING: bit(4),
  REP: bit(5),
  /** 0 = DX, 1 = immediate. */
  OPERAND_ENCODING: bit(6),
  PORT: bits(31, 16),
} as const satisfies BitLayout;

export const IO_DIRECTION = { OUT: 0, IN: 1 } as const;
/** I/O access size in bytes → the SIZE field. */
export const IO_SIZE_CODE: { readonly [bytes: number]: number } = { 1: 0, 2: 1, 4: 3 };

/** MWAIT: bit 0 is set if the monitoring hardware was armed. */
export const MWAIT_QUAL_ARMED = 1 << 0;

/** APIC access (APIC-access page, "virtualize APIC accesses"). */
export const APIC_ACCESS_QUAL = {
  /** Offset of the access within the APIC page (linear accesses). */
  OFFSET: bits(11, 0),
  ACCESS_TYPE: bits(15, 12),
  /** The access was asynchronous to instruction execution. */
  ASYNCHRONOUS: bit(16),
} as const satisfies BitLayout;

export const APIC_ACCESS_TYPE = {
  LINEAR_READ: 0,
  LINEAR_WRITE: 1,
  LINEAR_FETCH: 2,
  LINEAR_DURING_EVENT_DELIVERY: 3,
  GUEST_PHYSICAL_DURING_EVENT_DELIVERY: 10,
  GUEST_PHYSICAL_FETCH_OR_EXECUTION: 15,
} as const;

// ---------------------------------------------------------------------------------------
// VM-exit instruction information (SDM 3C §27.2.5)
// ---------------------------------------------------------------------------------------

/** Address size of a memory operand (bits 9:7 of most formats). */
export const ADDRESS_SIZE = { A16: 0, A32: 1, A64: 2 } as const;
/** Segment register numbering of instruction information (ES CS SS DS FS GS). */
export const SEGMENT_REG = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5 } as const;

/** Memory-operand part shared by most formats (scaling, address size, segment, index, base). */
const MEMORY_OPERAND = {
  /** 0 no scaling, 1 ×2, 2 ×4, 3 ×8. */
  SCALING: bits(1, 0),
  ADDRESS_SIZE: bits(9, 7),
  SEGMENT: bits(17, 15),
  INDEX_REG: bits(21, 18),
  INDEX_INVALID: bit(22),
  BASE_REG: bits(26, 23),
  BASE_INVALID: bit(27),
} as const satisfies BitLayout;

/** INS and OUTS (requires IA32_VMX_BASIC bit 54). */
export const INS_OUTS_INFO = {
  ADDRESS_SIZE: bits(9, 7),
  /** OUTS only; INS always uses ES. */
  SEGMENT: bits(17, 15),
} as const satisfies BitLayout;

/** INVEPT, INVPCID, INVVPID. REG2 holds the type (register operand). */
export const INVEPT_INVPCID_INVVPID_INFO = {
  ...MEMORY_OPERAND,
  REG2: bits(31, 28),
} as const satisfies BitLayout;

/** LGDT, LIDT, SGDT, SIDT. */
export const DESCRIPTOR_TABLE_INFO = {
  ...MEMORY_OPERAND,
  /** 0 = 16-bit, 1 = 32-bit (undefined in 64-bit mode). */
  OPERAND_SIZE: bit(11),
  INSTRUCTION_IDENTITY: bits(29, 28),
} as const satisfies BitLayout;

export const DESCRIPTOR_TABLE_INSTRUCTION = { SGDT: 0, SIDT: 1, LGDT: 2, LIDT: 3 } as const;

/** LLDT, LTR, SLDT, STR. */
export const LDTR_TR_INFO = {
  ...MEMORY_OPERAND,
  /** Register operand (when MEM_REG = 1). */
  REG1: bits(6, 3),
  /** 0 = memory operand, 1 = register operand. */
  MEM_REG: bit(10),
  INSTRUCTION_IDENTITY: bits(29, 28),
} as const satisfies BitLayout;

export const LDTR_TR_INSTRUCTION = { SLDT: 0, STR: 1, LLDT: 2, LTR: 3 } as const;

/** RDRAND and RDSEED. */
export const RDRAND_RDSEED_INFO = {
  DEST_REG: bits(6, 3),
  /** 0 = 16-bit, 1 = 32-bit, 2 = 64-bit. */
  OPERAND_SIZE: bits(12, 11),
} as const satisfies BitLayout;

/** VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMXON, XRSTORS, XSAVES. */
export const VMX_INSTRUCTION_INFO = {
  ...MEMORY_OPERAND,
  /** Register operand (when MEM_REG = 1): VMREAD destination, VMWRITE source. */
  REG1: bits(6, 3),
  /** 0 = memory operand, 1 = register operand. */
  MEM_REG: bit(10),
  /** VMREAD/VMWRITE: the register holding the field encoding. */
  REG2: bits(31, 28),
} as const satisfies BitLayout;

// ---------------------------------------------------------------------------------------
// Data structures referenced by the VMCS
// ---------------------------------------------------------------------------------------

/** VMCS region: revision identifier (bit 31 = shadow-VMCS indicator) and VMX-abort indicator. */
export const VMCS_REGION = {
  REVISION_OFFSET: 0,
  ABORT_OFFSET: 4,
  /** Bit 31 of the first dword: shadow-VMCS indicator. */
  SHADOW_VMCS_INDICATOR: 1 << 31,
} as const;

/** MSR bitmaps: one 4-KiB page; a set bit makes the access exit (SDM 3C §24.6.9). */
export const MSR_BITMAP = {
  /** Reads of MSRs 00000000H-00001FFFH. */
  READ_LOW: 0x000,
  /** Reads of MSRs C0000000H-C0001FFFH. */
  READ_HIGH: 0x400,
  WRITE_LOW: 0x800,
  WRITE_HIGH: 0xc00,
} as const;

/** I/O bitmap A covers ports 0000H-7FFFH, B covers 8000H-FFFFH; one bit per port. */
export const IO_BITMAP_B_FIRST_PORT = 0x8000;

/**
 * VMREAD/VMWRITE bitmaps (VMCS shadowing, SDM 3C §24.6.15): 4 KiB each; bit n (byte n >> 3,
 * bit n & 7) governs the field with encoding n in bits 14:0. Encodings with any of bits
 * 63:15 set always cause a VM exit.
 */
export const VMREAD_VMWRITE_BITMAP_BITS = 0x8000;

/** An MSR-load/-store list entry: 16 bytes (SDM 3C §24.7.2, "Format of an MSR Entry"). */
export const MSR_ENTRY = {
  SIZE: 16,
  INDEX_OFFSET: 0,
  RESERVED_OFFSET: 4,
  DATA_OFFSET: 8,
} as const;

/** INVEPT types (register operand). */
export const INVEPT_TYPE = { SINGLE_CONTEXT: 1, ALL_CONTEXT: 2 } as const;
/** INVVPID types (register operand). */
export const INVVPID_TYPE = {
  INDIVIDUAL_ADDRESS: 0,
  SINGLE_CONTEXT: 1,
  ALL_CONTEXT: 2,
  SINGLE_CONTEXT_RETAINING_GLOBALS: 3,
} as const;

/** VM functions: leaf numbers (EAX of VMFUNC) and bits of the VM-function controls field. */
export const VMFUNC = {
  EPTP_SWITCHING: 0,
} as const;
/** EPTP list: one 4-KiB page of 512 EPTP values; ECX of VMFUNC leaf 0 selects one. */
export const EPTP_LIST_ENTRIES = 512;
