/**
 * Basic exit reasons (SDM Vol. 3 Appendix C, "VMX Basic Exit Reasons") and the layout of
 * the exit-reason field ("Format of Exit Reason", SDM 3C §27.2.1; chapter numbers of the
 * 2016-2022 editions, as in DESIGN.md). Names are the SDM's descriptions in UPPER_SNAKE, shortened where the
 * SDM's text is a sentence (e.g. 33 "VM-entry failure due to invalid guest state").
 * Numbers the SDM leaves unused (35, 38, 42, 71) have no entry.
 */

export const EXIT_REASON = {
  /** Exception (incl. #DB/#BP from INT1/INT3) or NMI; see the interruption information. */
  EXCEPTION_NMI: 0,
  EXTERNAL_INTERRUPT: 1,
  TRIPLE_FAULT: 2,
  INIT: 3,
  /** Start-up IPI arrived while in the wait-for-SIPI activity state. */
  SIPI: 4,
  /** I/O system-management interrupt (SMI immediately after an I/O instruction). */
  IO_SMI: 5,
  OTHER_SMI: 6,
  INTERRUPT_WINDOW: 7,
  NMI_WINDOW: 8,
  TASK_SWITCH: 9,
  CPUID: 10,
  GETSEC: 11,
  HLT: 12,
  INVD: 13,
  INVLPG: 14,
  RDPMC: 15,
  RDTSC: 16,
  RSM: 17,
  VMCALL: 18,
  VMCLEAR: 19,
  VMLAUNCH: 20,
  VMPTRLD: 21,
  VMPTRST: 22,
  VMREAD: 23,
  VMRESUME: 24,
  VMWRITE: 25,
  VMXOFF: 26,
  VMXON: 27,
  /** MOV to/from CR0/3/4/8, CLTS, LMSW. */
  CR_ACCESS: 28,
  MOV_DR: 29,
  /** IN, INS, OUT, OUTS. */
  IO_INSTRUCTION: 30,
  RDMSR: 31,
  WRMSR: 32,
  /** VM-entry failure due to invalid guest state (with bit 31 set). */
  ENTRY_FAILURE_GUEST_STATE: 33,
  /** VM-entry failure due to MSR loading (with bit 31 set). */
  ENTRY_FAILURE_MSR_LOADING: 34,
  MWAIT: 36,
  MONITOR_TRAP_FLAG: 37,
  MONITOR: 39,
  PAUSE: 40,
  /** VM-entry failure due to a machine-check event (with bit 31 set). */
  ENTRY_FAILURE_MACHINE_CHECK: 41,
  TPR_BELOW_THRESHOLD: 43,
  APIC_ACCESS: 44,
  VIRTUALIZED_EOI: 45,
  /** LGDT, LIDT, SGDT, SIDT with descriptor-table exiting. */
  GDTR_IDTR_ACCESS: 46,
  /** LLDT, LTR, SLDT, STR with descriptor-table exiting. */
  LDTR_TR_ACCESS: 47,
  EPT_VIOLATION: 48,
  EPT_MISCONFIG: 49,
  INVEPT: 50,
  RDTSCP: 51,
  /** VMX-preemption timer expired. */
  PREEMPTION_TIMER: 52,
  INVVPID: 53,
  /** WBINVD or WBNOINVD. */
  WBINVD: 54,
  XSETBV: 55,
  APIC_WRITE: 56,
  RDRAND: 57,
  INVPCID: 58,
  VMFUNC: 59,
  ENCLS: 60,
  RDSEED: 61,
  /** Page-modification log full. */
  PML_FULL: 62,
  XSAVES: 63,
  XRSTORS: 64,
  PCONFIG: 65,
  /** SPP-related event. */
  SPP_EVENT: 66,
  UMWAIT: 67,
  TPAUSE: 68,
  LOADIWKEY: 69,
  ENCLV: 70,
  ENQCMD_PASID_TRANSLATION_FAILURE: 72,
  ENQCMDS_PASID_TRANSLATION_FAILURE: 73,
  BUS_LOCK: 74,
  INSTRUCTION_TIMEOUT: 75,
  SEAMCALL: 76,
  TDCALL: 77,
  RDMSRLIST: 78,
  WRMSRLIST: 79,
  URDMSR: 80,
  UWRMSR: 81,
} as const;

export type ExitReasonName = keyof typeof EXIT_REASON;
/** A basic exit reason number. `Record<ExitReason, Handler>` makes a missing handler a compile error. */
export type ExitReason = (typeof EXIT_REASON)[ExitReasonName];

/** Name of each basic exit reason, by number (undefined for numbers the SDM leaves unused). */
export const EXIT_REASON_NAME: ReadonlyMap<number, ExitReasonName> = new Map(
  (Object.entries(EXIT_REASON) as [ExitReasonName, ExitReason][]).map(([n, v]) => [v, n]),
);

/** Basic exit reasons reported (with ENTRY_FAILURE set) when a VM entry fails after loading guest state. */
export const ENTRY_FAILURE_REASONS: readonly ExitReason[] = [
  EXIT_REASON.ENTRY_FAILURE_GUEST_STATE,
  EXIT_REASON.ENTRY_FAILURE_MSR_LOADING,
  EXIT_REASON.ENTRY_FAILURE_MACHINE_CHECK,
];

/** Bits of the 32-bit exit-reason field. */
export const EXIT_REASON_BITS = {
  /** Bits 15:0: the basic exit reason. Bit 16 is always 0. */
  BASIC_MASK: 0xffff,
  /** Bit 26: a bus lock was asserted while delivering the exit's cause (VMM bus-lock detection). */
  BUS_LOCK_DETECTED: 1 << 26,
  /** Bit 27: the exit was incident to enclave mode. */
  ENCLAVE_MODE: 1 << 27,
  /** Bit 28: pending MTF VM exit (SMM dual-monitor treatment only). */
  PENDING_MTF: 1 << 28,
  /** Bit 29: VM exit from VMX root operation (SMM dual-monitor treatment only). */
  FROM_VMX_ROOT: 1 << 29,
  /** Bit 31: VM-entry failure (0 = true VM exit, 1 = VM-entry failure). */
  ENTRY_FAILURE: 1 << 31,
} as const;

/** The exit-reason field of a failed VM entry with the given basic reason. */
export function entryFailureReason(basic: ExitReason): number {
  return basic | EXIT_REASON_BITS.ENTRY_FAILURE | 0;
}

/** The basic exit reason of an exit-reason field value. */
export function basicExitReason(exitReasonField: number): number {
  return exitReasonField & EXIT_REASON_BITS.BASIC_MASK;
}

/**
 * Exits caused by instructions whose VM-exit instruction length is saved (SDM 3C §27.2.5,
 * "VM-exit instruction length"): all instruction exits, plus task switches caused by
 * CALL/JMP/IRET and exception/NMI exits of software-type events and EPT violations/APIC
 * accesses during their delivery (those depend on the case, and are not listed here).
 */
export const INSTRUCTION_EXITS: readonly ExitReason[] = [
  EXIT_REASON.CPUID,
  EXIT_REASON.GETSEC,
  EXIT_REASON.HLT,
  EXIT_REASON.INVD,
  EXIT_REASON.INVLPG,
  EXIT_REASON.RDPMC,
  EXIT_REASON.RDTSC,
  EXIT_REASON.RSM,
  EXIT_REASON.VMCALL,
  EXIT_REASON.VMCLEAR,
  EXIT_REASON.VMLAUNCH,
  EXIT_REASON.VMPTRLD,
  EXIT_REASON.VMPTRST,
  EXIT_REASON.VMREAD,
  EXIT_REASON.VMRESUME,
  EXIT_REASON.VMWRITE,
  EXIT_REASON.VMXOFF,
  EXIT_REASON.VMXON,
  EXIT_REASON.CR_ACCESS,
  EXIT_REASON.MOV_DR,
  EXIT_REASON.IO_INSTRUCTION,
  EXIT_REASON.RDMSR,
  EXIT_REASON.WRMSR,
  EXIT_REASON.MWAIT,
  EXIT_REASON.MONITOR,
  EXIT_REASON.PAUSE,
  EXIT_REASON.GDTR_IDTR_ACCESS,
  EXIT_REASON.LDTR_TR_ACCESS,
  EXIT_REASON.INVEPT,
  EXIT_REASON.RDTSCP,
  EXIT_REASON.INVVPID,
  EXIT_REASON.WBINVD,
  EXIT_REASON.XSETBV,
  EXIT_REASON.RDRAND,
  EXIT_REASON.INVPCID,
  EXIT_REASON.VMFUNC,
  EXIT_REASON.ENCLS,
  EXIT_REASON.RDSEED,
  EXIT_REASON.XSAVES,
  EXIT_REASON.XRSTORS,
  EXIT_REASON.PCONFIG,
  EXIT_REASON.UMWAIT,
  EXIT_REASON.TPAUSE,
  EXIT_REASON.LOADIWKEY,
  EXIT_REASON.ENCLV,
  EXIT_REASON.SEAMCALL,
  EXIT_REASON.TDCALL,
  EXIT_REASON.RDMSRLIST,
  EXIT_REASON.WRMSRLIST,
  EXIT_REASON.URDMSR,
  EXIT_REASON.UWRMSR,
];
