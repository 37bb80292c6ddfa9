import { EXIT_REASON } from '../../spec/vmx/exit-reasons.js';
/**
 * VMX control bits, exit reasons and error numbers used by the implementation
 * (SDM 3C chapter 24 and Appendix C). The spec tables in src/spec/vmx carry the
 * complete lists with names; these are the constants the hot code paths use.
 */
// Pin-based VM-execution controls (§24.6.1).
export const PIN_EXT_INTR = 1 << 0,
  PIN_NMI = 1 << 3,
  PIN_VIRTUAL_NMIS = 1 << 5,
  PIN_PREEMPTION_TIMER = 1 << 6;
// Primary processor-based controls (§24.6.2).
export const CPU_INTR_WINDOW = 1 << 2,
  CPU_TSC_OFFSETTING = 1 << 3,
  CPU_HLT = 1 << 7,
  CPU_INVLPG = 1 << 9,
  CPU_MWAIT = 1 << 10,
  CPU_RDPMC = 1 << 11,
  CPU_RDTSC = 1 << 12,
  CPU_CR3_LOAD = 1 << 15,
  CPU_CR3_STORE = 1 << 16,
  CPU_CR8_LOAD = 1 << 19,
  CPU_CR8_STORE = 1 << 20,
  CPU_TPR_SHADOW = 1 << 21,
  CPU_NMI_WINDOW = 1 << 22,
  CPU_MOV_DR = 1 << 23,
  CPU_UNCOND_IO = 1 << 24,
  CPU_USE_IO_BITMAPS = 1 << 25,
  CPU_MTF = 1 << 27,
  CPU_USE_MSR_BITMAPS = 1 << 28,
  CPU_MONITOR = 1 << 29,
  CPU_PAUSE = 1 << 30,
  CPU_SECONDARY = 1 << 31;
// Secondary processor-based controls.
export const SEC_VIRT_APIC_ACCESS = 1 << 0,
  SEC_EPT = 1 << 1,
  SEC_DESC_TABLE = 1 << 2,
  SEC_RDTSCP = 1 << 3,
  SEC_VIRT_X2APIC = 1 << 4,
  SEC_VPID = 1 << 5,
  SEC_WBINVD = 1 << 6,
  SEC_UNRESTRICTED = 1 << 7,
  SEC_RDRAND = 1 << 11,
  SEC_INVPCID = 1 << 12,
  SEC_VMFUNC = 1 << 13,
  SEC_SHADOW_VMCS = 1 << 14,
  SEC_RDSEED = 1 << 16;
// VM-exit controls (§24.7.1).
export const EXIT_SAVE_DEBUG = 1 << 2,
  EXIT_HOST_ADDR_SPACE = 1 << 9,
  EXIT_ACK_INTR = 1 << 15,
  EXIT_SAVE_PAT = 1 << 18,
  EXIT_LOAD_PAT = 1 << 19,
  EXIT_SAVE_EFER = 1 << 20,
  EXIT_LOAD_EFER = 1 << 21,
  EXIT_SAVE_PREEMPT = 1 << 22;
// VM-entry controls (§24.8.1).
export const ENTRY_LOAD_DEBUG = 1 << 2,
  ENTRY_IA32E = 1 << 9,
  ENTRY_SMM = 1 << 10,
  ENTRY_DEACT_DUAL = 1 << 11,
  ENTRY_LOAD_PAT = 1 << 14,
  ENTRY_LOAD_EFER = 1 << 15;

/**
 * Basic exit reasons: the spec table (src/spec/vmx/exit-reasons.ts, SDM Appendix C), with the
 * short names the implementation uses for a few of them.
 */
export const R = {
  ...EXIT_REASON,
  DR_ACCESS: EXIT_REASON.MOV_DR,
  MSR_READ: EXIT_REASON.RDMSR,
  MSR_WRITE: EXIT_REASON.WRMSR,
  INVALID_GUEST_STATE: EXIT_REASON.ENTRY_FAILURE_GUEST_STATE,
  MSR_LOADING: EXIT_REASON.ENTRY_FAILURE_MSR_LOADING,
  GDTR_IDTR: EXIT_REASON.GDTR_IDTR_ACCESS,
  LDTR_TR: EXIT_REASON.LDTR_TR_ACCESS,
} as const;
export const EXIT_REASON_ENTRY_FAILURE = 0x80000000;

/** VM-instruction error numbers (§30.4). */
export const E = {
  VMCALL_IN_ROOT: 1,
  VMCLEAR_INVALID_ADDR: 2,
  VMCLEAR_VMXON_PTR: 3,
  VMLAUNCH_NOT_CLEAR: 4,
  VMRESUME_NOT_LAUNCHED: 5,
  VMRESUME_AFTER_VMXOFF: 6,
  ENTRY_INVALID_CONTROLS: 7,
  ENTRY_INVALID_HOST_STATE: 8,
  VMPTRLD_INVALID_ADDR: 9,
  VMPTRLD_VMXON_PTR: 10,
  VMPTRLD_BAD_REVISION: 11,
  VMRW_UNSUPPORTED_FIELD: 12,
  VMWRITE_READ_ONLY: 13,
  VMXON_IN_ROOT: 15,
  ENTRY_INVALID_EXEC_VMCS: 16,
  ENTRY_NONLAUNCHED_EXEC_VMCS: 17,
  ENTRY_EXEC_VMCS_PTR: 18,
  VMCALL_NONCLEAR: 19,
  VMCALL_INVALID_EXIT_CTLS: 20,
  VMCALL_BAD_MSEG_REV: 22,
  VMXOFF_DUAL_MONITOR: 23,
  VMCALL_BAD_SMM_FEATURES: 24,
  ENTRY_INVALID_EXEC_CTLS_EXEC_VMCS: 25,
  ENTRY_EVENTS_BLOCKED_BY_MOV_SS: 26,
  INVEPT_INVVPID_INVALID_OPERAND: 28,
} as const;

/** Interruption types of the interruption-information fields (§24.8.3). */
export const INTR_EXT = 0,
  INTR_NMI = 2,
  INTR_HW_EXC = 3,
  INTR_SW_INT = 4,
  INTR_PRIV_SW_EXC = 5,
  INTR_SW_EXC = 6,
  INTR_OTHER = 7;
export const INTR_VALID = 0x80000000,
  INTR_ERRCODE_VALID = 1 << 11;

/** Guest interruptibility state bits (§24.4.2). */
export const BLOCK_STI = 1,
  BLOCK_MOV_SS = 2,
  BLOCK_SMI = 4,
  BLOCK_NMI = 8;
/** Activity states. */
export const ACT_ACTIVE = 0,
  ACT_HLT = 1,
  ACT_SHUTDOWN = 2,
  ACT_WAIT_SIPI = 3;
