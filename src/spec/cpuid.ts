/**
 * The CPUID feature set the machine reports: one consistent Intel-like set,
 * listing only what the simulator implements (see docs/CPU.md). Family 6 model
 * 0x1A stepping 5 is the Xeon 5500 ("Nehalem-EP") of the Turtles paper's testbed.
 * Leaves are data; the CPU fills in the per-CPU APIC ID.
 */

/** CPUID.1:EDX bits (SDM Vol. 2 Table 3-11). */
export const CPUID1_EDX = {
  PSE: 1 << 3,
  TSC: 1 << 4,
  MSR: 1 << 5,
  PAE: 1 << 6,
  CX8: 1 << 8,
  APIC: 1 << 9,
  SEP: 1 << 11,
  MTRR: 1 << 12,
  PGE: 1 << 13,
  CMOV: 1 << 15,
  PAT: 1 << 16,
  PSE36: 1 << 17,
  CLFSH: 1 << 19,
} as const;

/** CPUID.1:ECX bits (SDM Vol. 2 Table 3-10). */
export const CPUID1_ECX = {
  VMX: 1 << 5,
  CX16: 1 << 13,
  PCID: 1 << 17,
  X2APIC: 1 << 21,
  MOVBE: 1 << 22,
  POPCNT: 1 << 23,
  TSC_DEADLINE: 1 << 24,
  HYPERVISOR: 1 << 31,
} as const;

export const CPUID7_EBX = {
  BMI1: 1 << 3,
  SMEP: 1 << 7,
  INVPCID: 1 << 10,
  SMAP: 1 << 20,
} as const;

export const CPUID_80000001_EDX = {
  SYSCALL: 1 << 11,
  NX: 1 << 20,
  PAGE1GB: 1 << 26,
  RDTSCP: 1 << 27,
  LM: 1 << 29,
} as const;

export const CPUID_80000001_ECX = {
  LAHF_LM: 1 << 0,
  ABM: 1 << 5,
} as const;

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a | b, 0) | 0;

export const CPU_SIGNATURE = 0x000106a5;
export const MAX_BASIC_LEAF = 0xb;
/** CPUID.6:EAX bit 2: the APIC timer runs at a constant rate (ARAT). */
export const LEAF6_EAX_ARAT = 1 << 2;
export const MAX_EXT_LEAF = 0x80000008;

/** Base feature words; the machine may clear bits it is configured without. */
export const FEATURES = {
  leaf1Edx: sum(CPUID1_EDX),
  leaf1Ecx:
    CPUID1_ECX.VMX |
    CPUID1_ECX.CX16 |
    CPUID1_ECX.PCID |
    CPUID1_ECX.X2APIC |
    CPUID1_ECX.MOVBE |
    CPUID1_ECX.POPCNT |
    CPUID1_ECX.TSC_DEADLINE,
  leaf7Ebx: sum(CPUID7_EBX),
  ext1Edx: sum(CPUID_80000001_EDX),
  ext1Ecx: sum(CPUID_80000001_ECX),
};

/** "GenuineIntel" as EBX, EDX, ECX. */
export const VENDOR = [0x756e6547, 0x49656e69, 0x6c65746e];
/** Brand string, 48 bytes, leaves 0x80000002-4. */
/** At most 47 characters (leaves 0x80000002-4 hold 48 bytes with the terminating NUL). */
export const BRAND = 'turtles x86-64 CPU (Nehalem-EP-like) @ 2.90GHz';
/** CPUID.80000008H:EAX: 48 linear bits, 40 physical bits. */
export const ADDR_SIZES = (48 << 8) | 40;
