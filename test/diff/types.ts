// Shared types and the execution environment of the differential CPU tester.
//
// A case is ONE x86-64 instruction (code) executed in 64-bit mode at CPL 3 with
// the given registers, arithmetic flags and a 64-byte operand window. The
// native harness (native.c) and the simulator (runSnippet64) must set up the
// same environment:
//   - the instruction's first byte is at CODE_ADDR (RIP-relative operands
//     depend on it); execution stops after that one instruction;
//   - all 16 GPRs are loaded from regs, INCLUDING RSP (the generator always sets
//     regs[4] = INIT_RSP, which points into the window, so PUSH/POP and
//     [rsp+disp] operands stay inside it);
//   - RFLAGS = (rflags & FLAGS_LOADABLE) | 2;
//   - mem is loaded at MEM_ADDR; every memory access of a non-faulting case
//     stays inside [MEM_ADDR, MEM_ADDR + MEM_SIZE). A simulator may map the
//     whole 4 KiB page there (the native harness does, with poison outside the
//     window); everything else at low addresses is unmapped.
// Results compare regs (all 16), the arithmetic flags + DF minus the case's
// undefined flags, and the window. For a faulting case only the vector is
// compared.

/** One instruction with its initial state. */
export interface DiffCase {
  code: Uint8Array;
  /** 16 registers, order RAX RCX RDX RBX RSP RBP RSI RDI R8..R15. */
  regs: bigint[];
  rflags: bigint;
  /** MEM_SIZE bytes loaded at MEM_ADDR. */
  mem: Uint8Array;
}

/** The state after the instruction, or the exception vector it raised. */
export interface DiffResult {
  regs: bigint[];
  rflags: bigint;
  mem: Uint8Array;
  /** x86 exception vector (0 #DE, 3 #BP, 6 #UD, 13 #GP, 14 #PF, ...), or -1 if none. */
  vector: number;
}

/** Address of the operand window. */
export const MEM_ADDR = 0x10000000n;
export const MEM_SIZE = 64;
/** Address of the instruction's first byte. */
export const CODE_ADDR = 0x20000000n;
/** Initial RSP of every case: the middle of the window (room for 4 pushes and 4 pops). */
export const INIT_RSP = MEM_ADDR + 32n;

export const CF = 1n << 0n;
export const PF = 1n << 2n;
export const AF = 1n << 4n;
export const ZF = 1n << 6n;
export const SF = 1n << 7n;
export const DF = 1n << 10n;
export const OF = 1n << 11n;
/** The six arithmetic flags. */
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;
/** The flags a case may set on input, and the flags that are compared on output. */
export const FLAGS_LOADABLE = ARITH_FLAGS | DF;

export const REG_NAMES = [
  'rax',
  'rcx',
  'rdx',
  'rbx',
  'rsp',
  'rbp',
  'rsi',
  'rdi',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
] as const;

/** A generated case: the DiffCase plus what is needed to judge and explain it. */
export interface GenCase extends DiffCase {
  /** Generator group name (e.g. "alu"). */
  group: string;
  /** Disassembly-like text, e.g. "adc ecx, dword [rbx+0x10]". */
  text: string;
  /** Flags (within FLAGS_LOADABLE) whose output value is architecturally undefined. */
  undefFlags: bigint;
  /** Bitmask (bit i = regs[i]) of registers whose output value is undefined. */
  undefRegs: number;
}
