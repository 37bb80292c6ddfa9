/**
 * The hardware cost table: simulated cycles charged per event. Deterministic by
 * construction (no wall clock). Sources are given per entry; where the paper
 * (Ben-Yehuda et al., OSDI 2010, on a 2.9 GHz Xeon X5570 "Nehalem") gives a figure we use it,
 * otherwise Agner Fog's instruction tables for Nehalem (latency/throughput, rounded).
 */
export const CPU_HZ = 2_900_000_000;

/** Cycles per instruction by mnemonic; default 1 (simple integer ops retire ~1/cycle). */
export const INSN_CYCLES: Readonly<Record<string, number>> = {
  MUL: 3,
  IMUL: 3,
  IMUL2: 3,
  IMUL3: 3,
  DIV: 25, // Nehalem DIV r64 is 28-90; DIV r32 ~17-28
  IDIV: 25,
  CPUID: 100, // Agner: ~100-200 on Nehalem when not trapped
  RDTSC: 24,
  RDTSCP: 30,
  RDMSR: 100,
  WRMSR: 100,
  IN: 50, // port I/O on ISA-speed devices is slow; value is a round figure
  OUT: 50,
  INT: 50,
  IRET: 50,
  SYSCALL: 30,
  SYSRET: 30,
  MOVCR: 20,
  LGDT: 20,
  LIDT: 20,
  LTR: 20,
  INVLPG: 40,
  WBINVD: 1000,
  HLT: 1,
  CALLF: 30,
  JMPF: 30,
  RETF: 30,
};

export class CpuCost {
  /** Extra cycles for delivering an exception or interrupt through the IDT. */
  readonly exception = 100;
  /**
   * VM exit and VM entry: the paper measures ~1,000 cycles for an exit+entry pair
   * on its 2.9 GHz Xeon X5570 (Ben-Yehuda et al., OSDI 2010, §4.3); split evenly.
   */
  readonly vmExit = 500;
  readonly vmEntry = 500;
  /** One memory reference of a page walk (an L1/L2-cache hit on Nehalem is ~4-10 cycles). */
  readonly walkRef = 5;
  of(mnemonic: string): number {
    return INSN_CYCLES[mnemonic] ?? 1;
  }
}
