/**
 * Reflection decisions (src/l0/nested/wants.ts), table-driven: each row is a synthetic exit from
 * L2 (reason, qualification, interruption information, registers) with vmcs12's controls and
 * L1's bitmaps in L1 memory, and whether L1 would have seen that exit running L2 on hardware with
 * vmcs12 (SDM 3C §25.1-25.2: instructions that cause VM exits unconditionally or by control, the
 * exception bitmap with #PF error-code mask/match, I/O and MSR bitmaps, CR masks and shadows).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VMCS_FIELD as F, VMX_BITS as B } from '../../../src/hw/index.js';
import { l0WantsExit, l1WantsExit } from '../../../src/l0/nested/wants.js';
import { nestedFixture, baseVmcs12, set12, exitRecord, l1SetBit, hpaOf, wr, hex, L1 } from './fixture.js';

const R = B.R;
const PROC_BASE = 0x04006172; // L1's true default1 processor-based bits
/** vmcs12's processor-based controls: the default1 bits, secondary controls active, plus `bits`. */
const P = (bits = 0): number => (PROC_BASE | B.CPU_SECONDARY | bits) >>> 0;
const PIN_BASE = 0x16;

// Qualifications (SDM 3C §27.2.1, Tables 27-3 and 27-5).
/** Control-register access: CR number, access type (0 MOV to, 1 MOV from, 2 CLTS, 3 LMSW), GPR, LMSW source. */
const crQ = (cr: number, type: number, reg = 0, lmsw = 0): bigint =>
  BigInt(cr) | (BigInt(type) << 4n) | (BigInt(reg) << 8n) | (BigInt(lmsw) << 16n);
const MOV_TO = 0,
  MOV_FROM = 1,
  CLTS = 2,
  LMSW = 3;
/** I/O instruction: size in bytes, IN (1) or OUT (0), string, port. */
const ioQ = (port: number, size: 1 | 2 | 4, dirIn = false, string = false): bigint =>
  BigInt(size - 1) | (dirIn ? 8n : 0n) | (string ? 16n : 0n) | (BigInt(port) << 16n);
/** VM-exit interruption information: vector, type, valid (error-code valid for #DF/#GP/#PF/…). */
const intr = (vector: number, type: number, err = false): number =>
  (0x80000000 | (type << 8) | vector | (err ? 1 << 11 : 0)) >>> 0;
const HW = B.INTR_HW_EXC,
  SWX = B.INTR_SW_EXC,
  PRIV = B.INTR_PRIV_SW_EXC;

const RD_LO = 0,
  RD_HI = 0x400,
  WR_LO = 0x800,
  WR_HI = 0xc00;

interface Row {
  name: string;
  reason: number;
  q?: bigint;
  info?: number;
  err?: number;
  pin?: number;
  proc?: number;
  proc2?: number;
  /** Other vmcs12 fields. */
  w12?: readonly (readonly [number, bigint | number])[];
  /** GPRs at the exit (4 = RSP, which lives in the VMCS). */
  regs?: readonly (readonly [number, bigint])[];
  /** Ports whose bit is set in L1's I/O bitmaps. */
  ports?: readonly number[];
  /** [offset, bit] set in L1's MSR bitmap. */
  msrBits?: readonly (readonly [number, number])[];
  /** Does L1 want it? */
  l1: boolean;
}

const VMX_INSNS: [string, number][] = [
  ['VMCALL', R.VMCALL],
  ['VMCLEAR', R.VMCLEAR],
  ['VMLAUNCH', R.VMLAUNCH],
  ['VMPTRLD', R.VMPTRLD],
  ['VMPTRST', R.VMPTRST],
  ['VMREAD', R.VMREAD],
  ['VMRESUME', R.VMRESUME],
  ['VMWRITE', R.VMWRITE],
  ['VMXOFF', R.VMXOFF],
  ['VMXON', R.VMXON],
  ['INVEPT', R.INVEPT],
  ['INVVPID', R.INVVPID],
];

/** A control-dependent instruction exit: [name, reason, controls that make it exit]. */
const BY_CONTROL: [string, number, { proc?: number; proc2?: number; pin?: number }][] = [
  ['HLT', R.HLT, { proc: B.CPU_HLT }],
  ['INVLPG', R.INVLPG, { proc: B.CPU_INVLPG }],
  ['RDPMC', R.RDPMC, { proc: B.CPU_RDPMC }],
  ['RDTSC', R.RDTSC, { proc: B.CPU_RDTSC }],
  ['RDTSCP', R.RDTSCP, { proc: B.CPU_RDTSC, proc2: B.SEC_RDTSCP }],
  ['MOV DR', R.DR_ACCESS, { proc: B.CPU_MOV_DR }],
  ['MWAIT', R.MWAIT, { proc: B.CPU_MWAIT }],
  ['MONITOR', R.MONITOR, { proc: B.CPU_MONITOR }],
  ['PAUSE', R.PAUSE, { proc: B.CPU_PAUSE }],
  ['monitor trap flag', R.MONITOR_TRAP_FLAG, { proc: B.CPU_MTF }],
  ['interrupt window', R.INTERRUPT_WINDOW, { proc: B.CPU_INTR_WINDOW }],
  ['NMI window', R.NMI_WINDOW, { proc: B.CPU_NMI_WINDOW, pin: B.PIN_NMI | B.PIN_VIRTUAL_NMIS }],
  ['TPR below threshold', R.TPR_BELOW_THRESHOLD, { proc: B.CPU_TPR_SHADOW }],
  ['INVPCID', R.INVPCID, { proc: B.CPU_INVLPG, proc2: B.SEC_INVPCID }],
  ['LGDT/SGDT/LIDT/SIDT', R.GDTR_IDTR, { proc2: B.SEC_DESC_TABLE }],
  ['LLDT/SLDT/LTR/STR', R.LDTR_TR, { proc2: B.SEC_DESC_TABLE }],
  ['WBINVD', R.WBINVD, { proc2: B.SEC_WBINVD }],
  ['RDRAND', R.RDRAND, { proc2: B.SEC_RDRAND }],
  ['RDSEED', R.RDSEED, { proc2: B.SEC_RDSEED }],
  ['VMX-preemption timer expired', R.PREEMPTION_TIMER, { pin: B.PIN_PREEMPTION_TIMER }],
];

const ROWS: Row[] = [
  // Unconditional exits (SDM 3C §25.1.2).
  { name: 'CPUID, every control clear', reason: R.CPUID, proc: P(), proc2: 0, l1: true },
  {
    name: 'CPUID, many controls set',
    reason: R.CPUID,
    proc: P(B.CPU_HLT | B.CPU_USE_IO_BITMAPS),
    proc2: B.SEC_EPT | B.SEC_VPID,
    l1: true,
  },
  { name: 'GETSEC', reason: R.GETSEC, l1: true },
  { name: 'INVD', reason: R.INVD, l1: true },
  { name: 'XSETBV', reason: R.XSETBV, l1: true },
  { name: 'triple fault', reason: R.TRIPLE_FAULT, l1: true },
  { name: 'task switch', reason: R.TASK_SWITCH, q: 0x18n, l1: true },
  ...VMX_INSNS.map(([n, reason]) => ({
    name: `${n} by L2 (VMX instructions always exit)`,
    reason,
    l1: true,
  })),
  // By control: with the control, without, and (for secondary controls) with the bit set in a
  // secondary field vmcs12 does not activate (§24.6.2: then every secondary control is 0).
  ...BY_CONTROL.flatMap(([n, reason, c]): Row[] => [
    {
      name: `${n} with its exiting control`,
      reason,
      proc: P(c.proc),
      proc2: c.proc2 ?? 0,
      pin: PIN_BASE | (c.pin ?? 0),
      l1: true,
    },
    { name: `${n} without`, reason, proc: P(), proc2: 0, pin: PIN_BASE, l1: false },
  ]),
  {
    name: 'RDTSCP with enable-RDTSCP but no RDTSC exiting',
    reason: R.RDTSCP,
    proc2: B.SEC_RDTSCP,
    l1: false,
  },
  {
    name: 'INVPCID with enable-INVPCID but no INVLPG exiting',
    reason: R.INVPCID,
    proc2: B.SEC_INVPCID,
    l1: false,
  },
  ...(
    [
      ['WBINVD', R.WBINVD, B.SEC_WBINVD],
      ['LGDT', R.GDTR_IDTR, B.SEC_DESC_TABLE],
      ['RDRAND', R.RDRAND, B.SEC_RDRAND],
    ] as const
  ).map(([n, reason, bit]) => ({
    name: `${n}: exiting bit in an inactive secondary field`,
    reason,
    proc: (PROC_BASE | B.CPU_USE_MSR_BITMAPS) >>> 0,
    proc2: bit,
    l1: false,
  })),
  // Control-register accesses (§25.1.3).
  {
    name: 'MOV to CR3 with CR3-load exiting and no CR3-target values',
    reason: R.CR_ACCESS,
    q: crQ(3, MOV_TO, 0),
    proc: P(B.CPU_CR3_LOAD),
    regs: [[0, 0x51000n]],
    l1: true,
  },
  {
    name: 'MOV to CR3 of CR3-target value 0 (count 1)',
    reason: R.CR_ACCESS,
    q: crQ(3, MOV_TO, 1),
    proc: P(B.CPU_CR3_LOAD),
    w12: [
      [F.CR3_TARGET_COUNT, 1],
      [F.CR3_TARGET_VALUE0, 0x51000],
    ],
    regs: [[1, 0x51000n]],
    l1: false,
  },
  {
    name: 'MOV to CR3 of CR3-target value 3 (count 4)',
    reason: R.CR_ACCESS,
    q: crQ(3, MOV_TO, 2),
    proc: P(B.CPU_CR3_LOAD),
    w12: [
      [F.CR3_TARGET_COUNT, 4],
      [F.CR3_TARGET_VALUE_3, 0x99000],
    ],
    regs: [[2, 0x99000n]],
    l1: false,
  },
  {
    name: 'MOV to CR3 of CR3-target value 2 when the count is 2 (only values 0-1 count)',
    reason: R.CR_ACCESS,
    q: crQ(3, MOV_TO, 3),
    proc: P(B.CPU_CR3_LOAD),
    w12: [
      [F.CR3_TARGET_COUNT, 2],
      [F.CR3_TARGET_VALUE_2, 0x77000],
    ],
    regs: [[3, 0x77000n]],
    l1: true,
  },
  {
    name: 'MOV to CR3 with a value differing from the target in bits 63:32',
    reason: R.CR_ACCESS,
    q: crQ(3, MOV_TO, 0),
    proc: P(B.CPU_CR3_LOAD),
    w12: [
      [F.CR3_TARGET_COUNT, 1],
      [F.CR3_TARGET_VALUE0, 0x51000],
    ],
    regs: [[0, 0x8000000000051000n]],
    l1: true,
  },
  {
    name: 'MOV to CR3 without CR3-load exiting',
    reason: R.CR_ACCESS,
    q: crQ(3, MOV_TO, 0),
    proc: P(),
    l1: false,
  },
  {
    name: 'MOV from CR3 with CR3-store exiting',
    reason: R.CR_ACCESS,
    q: crQ(3, MOV_FROM, 0),
    proc: P(B.CPU_CR3_STORE),
    l1: true,
  },
  {
    name: 'MOV from CR3 without CR3-store exiting',
    reason: R.CR_ACCESS,
    q: crQ(3, MOV_FROM, 0),
    proc: P(),
    l1: false,
  },
  {
    name: 'MOV to CR8 with CR8-load exiting',
    reason: R.CR_ACCESS,
    q: crQ(8, MOV_TO, 0),
    proc: P(B.CPU_CR8_LOAD),
    l1: true,
  },
  {
    name: 'MOV to CR8 without CR8-load exiting',
    reason: R.CR_ACCESS,
    q: crQ(8, MOV_TO, 0),
    proc: P(),
    l1: false,
  },
  {
    name: 'MOV from CR8 with CR8-store exiting',
    reason: R.CR_ACCESS,
    q: crQ(8, MOV_FROM, 0),
    proc: P(B.CPU_CR8_STORE),
    l1: true,
  },
  {
    name: 'MOV from CR8 without CR8-store exiting',
    reason: R.CR_ACCESS,
    q: crQ(8, MOV_FROM, 0),
    proc: P(),
    l1: false,
  },
  ...crRows(),
  // I/O instructions (§25.1.3): unconditional I/O exiting, or the I/O bitmaps when used (then
  // unconditional I/O exiting is ignored); an access exits if the bit of any port it touches is
  // set, or if it wraps around the 64K port space.
  {
    name: 'OUT 0x80 with unconditional I/O exiting',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x80, 1),
    proc: P(B.CPU_UNCOND_IO),
    l1: true,
  },
  {
    name: 'OUT 0x80 with neither I/O control',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x80, 1),
    proc: P(),
    l1: false,
  },
  {
    name: 'OUT 0x80 with I/O bitmaps (bit clear) and unconditional I/O exiting: the bitmap decides',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x80, 1),
    proc: P(B.CPU_UNCOND_IO | B.CPU_USE_IO_BITMAPS),
    l1: false,
  },
  {
    name: 'OUT 0x80 with I/O bitmaps, bit set',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x80, 1),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x80],
    l1: true,
  },
  {
    name: 'IN from 0x3f8 with the bit of a neighbouring port set',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x3f8, 1, true),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x3f9, 0x3f7],
    l1: false,
  },
  {
    name: 'port 0x8001: bitmap B',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x8001, 1),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x8001],
    l1: true,
  },
  {
    name: 'port 0x8001 with only bit 1 of bitmap A set (that is port 0x0001)',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x8001, 1),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x0001],
    l1: false,
  },
  {
    name: '2-byte access at 0x7fff spanning into bitmap B (0x8000 set)',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x7fff, 2),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x8000],
    l1: true,
  },
  {
    name: '4-byte access at 0x3fc with only its last port (0x3ff) set',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x3fc, 4, true),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x3ff],
    l1: true,
  },
  {
    name: '4-byte access at 0x3fc with only the port after it (0x400) set',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x3fc, 4, true),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x400, 0x3fb],
    l1: false,
  },
  {
    name: '2-byte access at 0xcfe with 0xcff set',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0xcfe, 2),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0xcff],
    l1: true,
  },
  {
    name: '1-byte access at 0xffff, bit set (last bit of bitmap B)',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0xffff, 1),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0xffff],
    l1: true,
  },
  {
    name: '1-byte access at 0xffff, bit clear',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0xffff, 1),
    proc: P(B.CPU_USE_IO_BITMAPS),
    l1: false,
  },
  {
    name: '2-byte access at 0xffff wraps around the port space: exits with no bit set',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0xffff, 2),
    proc: P(B.CPU_USE_IO_BITMAPS),
    l1: true,
  },
  {
    name: '4-byte access at 0xfffe wraps: exits',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0xfffe, 4, true),
    proc: P(B.CPU_USE_IO_BITMAPS),
    l1: true,
  },
  {
    name: 'INSB (string) from 0x60, bit set',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x60, 1, true, true),
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x60],
    l1: true,
  },
  {
    name: 'REP OUTSW (string) to 0x1f0, bit clear',
    reason: R.IO_INSTRUCTION,
    q: ioQ(0x1f0, 2, false, true) | 0x20n,
    proc: P(B.CPU_USE_IO_BITMAPS),
    ports: [0x1ef, 0x1f2],
    l1: false,
  },
  // RDMSR/WRMSR (§25.1.3, §24.6.9): without MSR bitmaps every access exits; with them, the bit
  // for ECX in the read-low/read-high/write-low/write-high quarter; outside 0-1FFFH and
  // C0000000H-C0001FFFH, always.
  { name: 'RDMSR 0x10 without MSR bitmaps', reason: R.MSR_READ, proc: P(), regs: [[1, 0x10n]], l1: true },
  { name: 'WRMSR 0x10 without MSR bitmaps', reason: R.MSR_WRITE, proc: P(), regs: [[1, 0x10n]], l1: true },
  ...msrRows(),
  // Exceptions (§25.2): the exception bitmap; #PF filtered by error-code mask and match.
  ...excRows(),
];

function crRows(): Row[] {
  const cr0 = (
    name: string,
    q: bigint,
    mask: number,
    shadow: number,
    regs: Row['regs'],
    l1: boolean,
  ): Row => ({
    name,
    reason: R.CR_ACCESS,
    q,
    w12: [
      [F.CR0_GUEST_HOST_MASK, mask],
      [F.CR0_READ_SHADOW, shadow],
      [F.GUEST_CR0, 0x80000031],
    ],
    regs,
    l1,
  });
  const cr4 = (name: string, mask: number, shadow: number, value: bigint, l1: boolean): Row => ({
    name,
    reason: R.CR_ACCESS,
    q: crQ(4, MOV_TO, 6),
    w12: [
      [F.CR4_GUEST_HOST_MASK, mask],
      [F.CR4_READ_SHADOW, shadow],
      // CR0's mask and shadow differ, so a decision read from the wrong register shows.
      [F.CR0_GUEST_HOST_MASK, 0xffffffff],
      [F.CR0_READ_SHADOW, 0],
    ],
    regs: [[6, value]],
    l1,
  });
  const PEPG = 0x80000001;
  return [
    cr0(
      'MOV to CR0 keeping the bits L1 owns as its shadow shows them',
      crQ(0, MOV_TO, 0),
      PEPG,
      PEPG,
      [[0, 0x80000031n]],
      false,
    ),
    cr0('MOV to CR0 clearing PG, which L1 owns', crQ(0, MOV_TO, 0), PEPG, PEPG, [[0, 0x31n]], true),
    cr0(
      'MOV to CR0 changing only TS, which L1 does not own',
      crQ(0, MOV_TO, 0),
      PEPG,
      PEPG,
      [[0, 0x80000039n]],
      false,
    ),
    cr0('MOV to CR0 with an empty mask', crQ(0, MOV_TO, 0), 0, 0, [[0, 0x11n]], false),
    cr0(
      'MOV to CR0 from RSP (held in the VMCS), clearing PE',
      crQ(0, MOV_TO, 4),
      PEPG,
      PEPG,
      [
        [4, 0x80000030n],
        [0, 0x80000031n],
      ],
      true,
    ),
    cr0(
      'MOV to CR0 from R15, value equal to the shadow',
      crQ(0, MOV_TO, 15),
      PEPG,
      PEPG,
      [
        [15, 0x80000011n],
        [0, 0n],
      ],
      false,
    ),
    cr0(
      'MOV to CR0 setting CD, owned by L1 and clear in its shadow',
      crQ(0, MOV_TO, 0),
      0x40000000,
      0,
      [[0, 0xc0000031n]],
      true,
    ),
    cr4('MOV to CR4 keeping PAE as shown (L1 owns PAE)', 0x20, 0x20, 0x2020n, false),
    cr4('MOV to CR4 clearing PAE (L1 owns it)', 0x20, 0x20, 0x2000n, true),
    cr4('MOV to CR4 setting PGE (L1 owns PAE only)', 0x20, 0x20, 0x20a0n, false),
    cr4('MOV to CR4 setting VMXE, which L1 owns and shows clear', 0x2000, 0, 0x2020n, true),
    cr0('CLTS with TS owned by L1 and set in its shadow', crQ(0, CLTS), 0x8, 0x8, [], true),
    cr0('CLTS with TS owned by L1 and clear in its shadow', crQ(0, CLTS), 0x8, 0, [], false),
    cr0('CLTS with TS not owned by L1', crQ(0, CLTS), 0x1, 0x9, [], false),
    cr0('LMSW setting PE, owned by L1 and clear in its shadow', crQ(0, LMSW, 0, 0x1), 0x1, 0x0, [], true),
    cr0(
      'LMSW with PE clear, PE owned and set in the shadow (LMSW cannot clear PE)',
      crQ(0, LMSW, 0, 0x0),
      0x1,
      0x1,
      [],
      false,
    ),
    cr0('LMSW with PE clear, PE owned and clear in the shadow', crQ(0, LMSW, 0, 0x0), 0x1, 0x0, [], false),
    cr0('LMSW changing MP, owned by L1', crQ(0, LMSW, 0, 0x3), 0xe, 0x0, [], true),
    cr0('LMSW changing TS, owned by L1', crQ(0, LMSW, 0, 0x9), 0x8, 0x1, [], true),
    cr0('LMSW with MP/EM/TS as the shadow shows them', crQ(0, LMSW, 0, 0xb), 0xf, 0xb, [], false),
    cr0('LMSW changing EM, not owned by L1 (L1 owns TS)', crQ(0, LMSW, 0, 0x5), 0x8, 0x1, [], false),
    cr0(
      'LMSW source bits above 3 are not loaded (NE owned, differs)',
      crQ(0, LMSW, 0, 0x21),
      0x20,
      0x1,
      [],
      false,
    ),
  ];
}

function msrRows(): Row[] {
  const m = (name: string, reason: number, ecx: bigint, bits: [number, number][], l1: boolean): Row => ({
    name,
    reason,
    proc: P(B.CPU_USE_MSR_BITMAPS),
    regs: [[1, ecx]],
    msrBits: bits,
    l1,
  });
  return [
    m('RDMSR 0x10, read-low bit set', R.MSR_READ, 0x10n, [[RD_LO, 0x10]], true),
    m('RDMSR 0x10, bitmap clear', R.MSR_READ, 0x10n, [], false),
    m('WRMSR 0x10 with only its read bit set', R.MSR_WRITE, 0x10n, [[RD_LO, 0x10]], false),
    m('WRMSR 0x10, write-low bit set', R.MSR_WRITE, 0x10n, [[WR_LO, 0x10]], true),
    m('RDMSR 0x10 with only its write bit set', R.MSR_READ, 0x10n, [[WR_LO, 0x10]], false),
    m('RDMSR 0x1fff (last low MSR), bit set', R.MSR_READ, 0x1fffn, [[RD_LO, 0x1fff]], true),
    m('RDMSR EFER (0xc0000080), read-high bit set', R.MSR_READ, 0xc0000080n, [[RD_HI, 0x80]], true),
    m('RDMSR EFER with only the low-range bit 0x80 set', R.MSR_READ, 0xc0000080n, [[RD_LO, 0x80]], false),
    m('WRMSR EFER, write-high bit set', R.MSR_WRITE, 0xc0000080n, [[WR_HI, 0x80]], true),
    m('WRMSR EFER with only its read-high bit set', R.MSR_WRITE, 0xc0000080n, [[RD_HI, 0x80]], false),
    m('WRMSR 0xc0001fff (last high MSR), bit set', R.MSR_WRITE, 0xc0001fffn, [[WR_HI, 0x1fff]], true),
    m('RDMSR 0x2000 (outside both ranges) always exits', R.MSR_READ, 0x2000n, [], true),
    m('RDMSR 0x40000000 (outside) always exits', R.MSR_READ, 0x40000000n, [], true),
    m('WRMSR 0xbfffffff (outside) always exits', R.MSR_WRITE, 0xbfffffffn, [], true),
    m('RDMSR 0xc0002000 (outside) always exits', R.MSR_READ, 0xc0002000n, [], true),
    m(
      'RDMSR uses ECX only: RCX bits 63:32 ignored (0x10, clear)',
      R.MSR_READ,
      0xffffffff00000010n,
      [],
      false,
    ),
    m(
      'WRMSR uses ECX only: RCX bits 63:32 ignored (0x10, set)',
      R.MSR_WRITE,
      0x1234567800000010n,
      [[WR_LO, 0x10]],
      true,
    ),
  ];
}

function excRows(): Row[] {
  const e = (
    name: string,
    info: number,
    err: number,
    bitmap: number,
    mask: number,
    match: number,
    l1: boolean,
  ): Row => ({
    name,
    reason: R.EXCEPTION_NMI,
    info,
    err,
    w12: [
      [F.EXCEPTION_BITMAP, bitmap],
      [F.PAGE_FAULT_ERROR_CODE_MASK, mask],
      [F.PAGE_FAULT_ERROR_CODE_MATCH, match],
    ],
    l1,
  });
  const PF = 1 << 14;
  return [
    e('#UD with bit 6 set', intr(6, HW), 0, 1 << 6, 0, 0, true),
    e('#UD with bit 6 clear (others set)', intr(6, HW), 0, ~(1 << 6) >>> 0, 0, 0, false),
    e('#BP from INT3 (software exception) with bit 3 set', intr(3, SWX), 0, 1 << 3, 0, 0, true),
    e('#BP from INT3 with bit 3 clear', intr(3, SWX), 0, 0, 0, 0, false),
    e('#OF from INTO with bit 4 set', intr(4, SWX), 0, 1 << 4, 0, 0, true),
    e('#DB from ICEBP (privileged software exception) with bit 1 set', intr(1, PRIV), 0, 1 << 1, 0, 0, true),
    e('#DB with bit 1 clear', intr(1, HW), 0, 1 << 3, 0, 0, false),
    e('#GP(0) with bit 13 set', intr(13, HW, true), 0, 1 << 13, 0, 0, true),
    e('#DF with bit 8 set', intr(8, HW, true), 0, 1 << 8, 0, 0, true),
    e('#AC with bit 17 set', intr(17, HW, true), 0, 1 << 17, 0, 0, true),
    e('#MC with bit 18 clear', intr(18, HW), 0, 1 << 17, 0, 0, false),
    e('#PF, bit 14 set, mask 0 match 0: every #PF', intr(14, HW, true), 0x2, PF, 0, 0, true),
    e('#PF, bit 14 clear, mask 0 match 0: no #PF', intr(14, HW, true), 0x2, 0, 0, 0, false),
    e('#PF, bit 14 set, P=1 wanted, PFEC P=0', intr(14, HW, true), 0x2, PF, 1, 1, false),
    e('#PF, bit 14 set, P=1 wanted, PFEC P=1', intr(14, HW, true), 0x3, PF, 1, 1, true),
    e('#PF, bit 14 clear, mask P match 0: PFEC P=1 differs, exits', intr(14, HW, true), 0x1, 0, 1, 0, true),
    e(
      '#PF, bit 14 clear, mask P match 0: PFEC P=0 matches, no exit',
      intr(14, HW, true),
      0x6,
      0,
      1,
      0,
      false,
    ),
    e('#PF, user write wanted (mask 6 match 6), supervisor write', intr(14, HW, true), 0x3, PF, 6, 6, false),
    e('#PF, user write wanted, user write', intr(14, HW, true), 0x7, PF, 6, 6, true),
    e('#PF, fetch wanted (mask 0x10 match 0x10), fetch', intr(14, HW, true), 0x15, PF, 0x10, 0x10, true),
    e('#PF, bit 14 set, match outside mask never matches', intr(14, HW, true), 0x1, PF, 1, 3, false),
    e('#PF, bit 14 clear, match outside mask: every #PF', intr(14, HW, true), 0x1, 0, 1, 3, true),
  ];
}

// One fixture for the whole table: each row gets a fresh vmcs12 and clean bitmap pages.
const fx = nestedFixture();
function clearL1Pages(): void {
  for (const gpa of [L1.IO_A, L1.IO_B, L1.MSR_BITMAP])
    fx.h.mem.u8.fill(0, hpaOf(fx, gpa), hpaOf(fx, gpa) + 4096);
}

for (const row of ROWS) {
  test(`l1WantsExit: ${row.name} → ${row.l1 ? 'L1' : 'not L1'}`, () => {
    clearL1Pages();
    const v12 = baseVmcs12(fx);
    set12(v12, F.PIN_BASED_VM_EXEC_CONTROL, row.pin ?? PIN_BASE);
    set12(v12, F.CPU_BASED_VM_EXEC_CONTROL, row.proc ?? P());
    set12(v12, F.SECONDARY_VM_EXEC_CONTROL, row.proc2 ?? B.SEC_EPT | B.SEC_VPID);
    for (const [enc, v] of row.w12 ?? []) set12(v12, enc, v);
    for (const port of row.ports ?? []) l1SetBit(fx, port < 0x8000 ? L1.IO_A : L1.IO_B, port & 0x7fff);
    for (const [off, bit] of row.msrBits ?? []) l1SetBit(fx, L1.MSR_BITMAP + off, bit);
    for (let r = 0; r < 16; r++) fx.h.setReg(r, 0x5a5a5a5a5a5a5a5an);
    wr(fx.h, F.GUEST_RSP, 0x5a5a5a5a5a5a5a5an);
    for (const [r, v] of row.regs ?? []) {
      if (r === 4) wr(fx.h, F.GUEST_RSP, v);
      else fx.h.setReg(r, v);
    }
    const exit = exitRecord(row.reason, {
      qualification: row.q ?? 0n,
      interruptionInfo: row.info ?? 0,
      interruptionErrorCode: row.err ?? 0,
    });
    assert.equal(
      l1WantsExit(fx.v, v12, exit),
      row.l1,
      `reason ${row.reason}, qualification ${hex(row.q ?? 0n)}`,
    );
  });
}

test('l1WantsExit: an L1 I/O bitmap outside L1 RAM reads as all ones (every port exits)', () => {
  const v12 = baseVmcs12(fx);
  set12(v12, F.CPU_BASED_VM_EXEC_CONTROL, P(B.CPU_USE_IO_BITMAPS));
  set12(v12, F.IO_BITMAP_A, 0x40000000);
  assert.equal(l1WantsExit(fx.v, v12, exitRecord(R.IO_INSTRUCTION, { qualification: ioQ(0x80, 1) })), true);
});

// ---------------------------------------------------------------------------------------------
// l0WantsExit: exits that exist because of L0's own choices whatever vmcs12 says — faults in the
// EPT L0 built (ept02, or ept01 under L2), and physical interrupts and NMIs (L0 runs vmcs02 with
// vmcs01's external-interrupt and NMI exiting).
// ---------------------------------------------------------------------------------------------
const L0_ROWS: [string, number, number, boolean][] = [
  ['EPT violation', R.EPT_VIOLATION, 0, true],
  ['EPT misconfiguration', R.EPT_MISCONFIG, 0, true],
  ['external interrupt', R.EXTERNAL_INTERRUPT, 0, true],
  ['NMI', R.EXCEPTION_NMI, intr(2, B.INTR_NMI), true],
  ['#PF (an exception, not an NMI)', R.EXCEPTION_NMI, intr(14, HW, true), false],
  ['#UD', R.EXCEPTION_NMI, intr(6, HW), false],
  ['CPUID', R.CPUID, 0, false],
  ['HLT', R.HLT, 0, false],
  ['I/O instruction', R.IO_INSTRUCTION, 0, false],
  ['RDMSR', R.MSR_READ, 0, false],
  ['triple fault', R.TRIPLE_FAULT, 0, false],
  ['VMCALL', R.VMCALL, 0, false],
  ['VMX-preemption timer (only L1 uses one)', R.PREEMPTION_TIMER, 0, false],
];
for (const [name, reason, info, want] of L0_ROWS) {
  test(`l0WantsExit: ${name} → ${want ? 'L0' : 'not L0'}`, () => {
    assert.equal(l0WantsExit(exitRecord(reason, { interruptionInfo: info })), want);
  });
}
