/**
 * The guest state L0's instruction emulator works on, and what it needs from outside.
 *
 * L0 emulates a vCPU's instructions in software while its guest state is one VM entry refuses
 * without "unrestricted guest" (SDM 3C §26.3.1.1-26.3.1.2): real mode, or protected mode whose
 * segment registers still hold real-mode caches (invalid.ts). The state is a copy of vmcs01's
 * guest-state area and the GPRs (emulate.ts loads it before a run of emulated instructions and
 * writes it back after), so the emulator itself knows nothing of VMX: the differential test
 * runs it on plain memory against the bare CPU.
 */

/** Segment registers in the order of the ModRM.reg / Sreg encoding (SDM 2A Table 3-6). */
export const ES = 0,
  CS = 1,
  SS = 2,
  DS = 3,
  FS = 4,
  GS = 5;
export const SEG_NAMES = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS'] as const;

/** A segment register with its descriptor cache; `ar` in the VMX access-rights format (SDM 3C §24.4.1). */
export interface Segment {
  sel: number;
  base: number;
  limit: number;
  ar: number;
}
/** Access-rights bit 16: the segment is unusable (a null selector loaded in protected mode). */
export const AR_UNUSABLE = 0x10000;
export const AR_D = 0x4000;

// RFLAGS bits (SDM 1 §3.4.3).
export const CF = 0x1,
  PF = 0x4,
  AF = 0x10,
  ZF = 0x40,
  SF = 0x80,
  TF = 0x100,
  IF = 0x200,
  DF = 0x400,
  OF = 0x800,
  IOPL = 0x3000,
  NT = 0x4000,
  RF = 0x10000,
  VM = 0x20000,
  AC = 0x40000,
  VIF = 0x80000,
  VIP = 0x100000,
  ID = 0x200000;
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;

/** Interruptibility state as VMX keeps it (SDM 3C §24.4.2 Table 24-3). */
export const BLOCK_STI = 1,
  BLOCK_MOV_SS = 2,
  BLOCK_NMI = 8;

/** Exception vectors the emulator raises (SDM 3A Table 6-1). */
export const DE = 0,
  DB = 1,
  NMI = 2,
  BP = 3,
  OFV = 4,
  UD = 6,
  DF_ = 8,
  NP = 11,
  SSF = 12,
  GP = 13;

export class RmState {
  /** EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI (the low 32 bits of the GPRs). */
  readonly gpr = new Uint32Array(8);
  eip = 0;
  eflags = 2;
  readonly seg: Segment[] = [0, 1, 2, 3, 4, 5].map((k) => ({
    sel: 0,
    base: 0,
    limit: 0xffff,
    ar: k === CS ? 0x9b : 0x93,
  }));
  gdtrBase = 0;
  gdtrLimit = 0xffff;
  idtrBase = 0;
  idtrLimit = 0x3ff;
  /** LDTR, for selectors with TI=1 in protected mode (base, limit, usable). */
  ldtrBase = 0;
  ldtrLimit = 0;
  ldtrUsable = false;
  /** CR0 as the guest sees it (the bus keeps it current when the guest writes CR0). */
  cr0 = 0x10;
  /** Blocking by STI / MOV SS and NMI blocking, VMX format (BLOCK_*). */
  interruptibility = 0;
  /** The guest executed HLT. */
  halted = false;

  copyFrom(o: RmState): void {
    this.gpr.set(o.gpr);
    this.eip = o.eip;
    this.eflags = o.eflags;
    for (let k = 0; k < 6; k++) Object.assign(this.seg[k], o.seg[k]);
    this.gdtrBase = o.gdtrBase;
    this.gdtrLimit = o.gdtrLimit;
    this.idtrBase = o.idtrBase;
    this.idtrLimit = o.idtrLimit;
    this.ldtrBase = o.ldtrBase;
    this.ldtrLimit = o.ldtrLimit;
    this.ldtrUsable = o.ldtrUsable;
    this.cr0 = o.cr0;
    this.interruptibility = o.interruptibility;
    this.halted = o.halted;
  }
  /** Real-address mode (CR0.PE = 0, SDM 3A §20.1). */
  get real(): boolean {
    return (this.cr0 & 1) === 0;
  }
  /** Current privilege level: 0 in real mode, else SS.DPL (SDM 3A §5.5; VMX keeps it there, 3C §26.3.1.2). */
  get cpl(): number {
    return this.real ? 0 : (this.seg[SS].ar >> 5) & 3;
  }
}

export type Access = 'read' | 'write' | 'fetch';

/** An exception the instruction raises (delivered through the IVT in real mode). */
export class RmFault {
  constructor(
    readonly vector: number,
    readonly errorCode = -1,
  ) {}
}
/** Something L0 does not emulate, or cannot do for this guest: the VM stops with `why`. */
export class RmStop {
  constructor(
    readonly why: string,
    /** The report already says where (CS:IP). */
    readonly located = false,
  ) {}
}

/** Instructions the hardware would exit on, which L0 emulates with its exit handlers. */
export type ExitingInsn = 'CPUID' | 'RDMSR' | 'WRMSR';

/** What the emulator needs from the machine around the vCPU (L0's VM, or a test's memory). */
export interface RmBus {
  /** Read `size` bytes at linear address `la` (may throw RmFault, or RmStop). */
  read(la: number, size: 1 | 2 | 4, access: Access): number;
  write(la: number, size: 1 | 2 | 4, value: number): void;
  in(port: number, size: 1 | 2 | 4): number;
  out(port: number, size: 1 | 2 | 4, value: number): void;
  /** MOV from CR0/2/3/4 (the guest-visible value). */
  readCr(s: RmState, n: number): number;
  /** MOV to CR0/2/3/4, LMSW, CLTS: false when the write faults (#GP(0)); keeps `s.cr0` current. */
  writeCr(s: RmState, n: number, value: number): boolean;
  /** INVLPG of linear address `la`. */
  invlpg(la: number): void;
  /**
   * CPUID, RDMSR, WRMSR at `s.eip` (`length` bytes): done as the exit handler would do it;
   * on return `s` holds the result with EIP past the instruction, or a fault was thrown.
   */
  exitingInsn(s: RmState, insn: ExitingInsn, length: number): void;
  /** The guest's time-stamp counter (RDTSC). */
  rdtsc(): bigint;
}
