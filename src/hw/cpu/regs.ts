/** Register numbering shared by the decoder and the executor (SDM Vol. 2 §2.1.5). */
export const RAX = 0,
  RCX = 1,
  RDX = 2,
  RBX = 3,
  RSP = 4,
  RBP = 5,
  RSI = 6,
  RDI = 7;

/** Segment registers in ModRM.reg (Sreg) order, then LDTR and TR. */
export const ES = 0,
  CS = 1,
  SS = 2,
  DS = 3,
  FS = 4,
  GS = 5,
  LDTR = 6,
  TR = 7;
export const SEG_NAMES = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'LDTR', 'TR'];
export const GPR_NAMES = [
  'RAX',
  'RCX',
  'RDX',
  'RBX',
  'RSP',
  'RBP',
  'RSI',
  'RDI',
  'R8',
  'R9',
  'R10',
  'R11',
  'R12',
  'R13',
  'R14',
  'R15',
];

/** RFLAGS bits (SDM Vol. 1 §3.4.3). */
export const CF = 1 << 0,
  PF = 1 << 2,
  AF = 1 << 4,
  ZF = 1 << 6,
  SF = 1 << 7,
  TF = 1 << 8,
  IF = 1 << 9,
  DF = 1 << 10,
  OF = 1 << 11,
  IOPL = 3 << 12,
  NT = 1 << 14,
  RF = 1 << 16,
  VM = 1 << 17,
  AC = 1 << 18,
  VIF = 1 << 19,
  VIP = 1 << 20,
  ID = 1 << 21;
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;

/** CR0 / CR4 / EFER bits. */
export const CR0_PE = 1 << 0,
  CR0_MP = 1 << 1,
  CR0_EM = 1 << 2,
  CR0_TS = 1 << 3,
  CR0_ET = 1 << 4,
  CR0_NE = 1 << 5,
  CR0_WP = 1 << 16,
  CR0_AM = 1 << 18,
  CR0_NW = 1 << 29,
  CR0_CD = 1 << 30,
  CR0_PG = 1 << 31;
export const CR4_VME = 1 << 0,
  CR4_PVI = 1 << 1,
  CR4_TSD = 1 << 2,
  CR4_DE = 1 << 3,
  CR4_PSE = 1 << 4,
  CR4_PAE = 1 << 5,
  CR4_MCE = 1 << 6,
  CR4_PGE = 1 << 7,
  CR4_PCE = 1 << 8,
  CR4_OSFXSR = 1 << 9,
  CR4_OSXMMEXCPT = 1 << 10,
  CR4_UMIP = 1 << 11,
  CR4_VMXE = 1 << 13,
  CR4_SMXE = 1 << 14,
  CR4_FSGSBASE = 1 << 16,
  CR4_PCIDE = 1 << 17,
  CR4_OSXSAVE = 1 << 18,
  CR4_SMEP = 1 << 20,
  CR4_SMAP = 1 << 21;
export const EFER_SCE = 1 << 0,
  EFER_LME = 1 << 8,
  EFER_LMA = 1 << 10,
  EFER_NXE = 1 << 11;

/** Exception vectors (SDM Vol. 3A §6.3.1). */
export const DE = 0,
  DB = 1,
  NMI = 2,
  BP = 3,
  OFV = 4,
  BR = 5,
  UD = 6,
  NM = 7,
  DF_ = 8,
  TS = 10,
  NP = 11,
  SS_ = 12,
  GP = 13,
  PF_ = 14,
  MF = 16,
  AC_ = 17,
  MC = 18,
  XM = 19;
export { EXCEPTION_NAMES as EXC_NAMES } from '../../spec/exceptions.js';

/** Execution modes. */
export enum Mode {
  Real = 0,
  Prot16 = 1,
  Prot32 = 2,
  Compat16 = 3,
  Compat32 = 4,
  Long64 = 5,
}
