/**
 * Reflecting an exit to L1 (src/l0/nested/reflect.ts), table-driven: after L2 ran on vmcs02 and
 * exited, L1 must find in vmcs12 what a processor would have stored (SDM 3C §27.2 exit
 * information, §27.3 guest state — some fields only under a "save" exit control, §24.8.3 the
 * entry interruption information's valid bit cleared, §27.4 the MSR-store list) and resume at its
 * host state (§27.5), with vmcs01 current.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VMCS_FIELD as F, VMX_BITS as B } from '../../../src/hw/index.js';
import { prepareVmcs02 } from '../../../src/l0/nested/vmcs02.js';
import { reflectToL1, exit12From, type Exit12 } from '../../../src/l0/nested/reflect.js';
import {
  nestedFixture,
  baseVmcs12,
  set12,
  get12,
  exitRecord,
  rd,
  wr,
  l1Write64,
  l1Read64,
  hex,
  L1,
  type Fx,
} from './fixture.js';
import type { Vmcs } from '../../../src/hw/index.js';

const R = B.R;
const EXIT_BASE = 0x36dfb | B.EXIT_HOST_ADDR_SPACE;

/** L1 enters L2 with vmcs12 (+ `w12`), L2 runs and changes `l2` in vmcs02, then exits with `x`. */
function reflectAfter(
  w12: readonly (readonly [number, bigint | number])[],
  l2: readonly (readonly [number, bigint | number])[],
  x: Exit12,
  fx: Fx = nestedFixture(),
): { fx: Fx; v12: Vmcs } {
  const v12 = baseVmcs12(fx);
  for (const [enc, val] of w12) set12(v12, enc, val);
  fx.n.current = v12;
  prepareVmcs02(fx.v, fx.n);
  fx.v.level = 'L2';
  for (const [enc, val] of l2) wr(fx.h, enc, val);
  reflectToL1(fx.v, fx.n, x, true);
  assert.equal(fx.h.vmptrst(), fx.v.vmcs01, 'vmcs01 current: L1 runs next');
  assert.equal(fx.v.level, 'L1');
  return { fx, v12 };
}

// ---------------------------------------------------------------------------------------------
// Table 1: exit-information fields, as the hardware reported them to L0.
// ---------------------------------------------------------------------------------------------
const EXITS: [string, Exit12][] = [
  ['CPUID (instruction length)', exit12From(exitRecord(R.CPUID, { instructionLength: 2 }))],
  [
    'EPT violation (qualification, guest-linear and guest-physical addresses)',
    exit12From(
      exitRecord(R.EPT_VIOLATION, {
        qualification: 0x182n,
        guestLinearAddress: 0x7fff12345678n,
        guestPhysicalAddress: 0x40123678n,
      }),
    ),
  ],
  [
    '#PF in the exception bitmap (interruption information and error code)',
    exit12From(
      exitRecord(R.EXCEPTION_NMI, {
        qualification: 0xdead000n,
        interruptionInfo: 0x80000b0e,
        interruptionErrorCode: 6,
      }),
    ),
  ],
  [
    'an exit during event delivery (IDT-vectoring information and error code)',
    exit12From(
      exitRecord(R.EPT_VIOLATION, {
        qualification: 0x82n,
        guestPhysicalAddress: 0x53000n,
        idtVectoringInfo: 0x80000b0d,
        idtVectoringErrorCode: 0x10,
      }),
    ),
  ],
  [
    'VMREAD by L2 (VM-exit instruction information)',
    exit12From(exitRecord(R.VMREAD, { instructionLength: 3, instructionInfo: 0x30400000 })),
  ],
  [
    'OUT to a port (qualification)',
    exit12From(exitRecord(R.IO_INSTRUCTION, { qualification: 0x3f80000n, instructionLength: 1 })),
  ],
];
for (const [name, x] of EXITS) {
  test(`reflect: exit information for ${name}`, () => {
    const { v12 } = reflectAfter([], [], x);
    const want: [number, bigint][] = [
      [F.VM_EXIT_REASON, BigInt(x.reason >>> 0)],
      [F.EXIT_QUALIFICATION, x.qualification],
      [F.GUEST_LINEAR_ADDRESS, x.guestLinearAddress],
      [F.GUEST_PHYSICAL_ADDRESS, x.guestPhysicalAddress],
      [F.VM_EXIT_INSTRUCTION_LEN, BigInt(x.instructionLength)],
      [F.VMX_INSTRUCTION_INFO, BigInt(x.instructionInfo)],
      [F.VM_EXIT_INTR_INFO, BigInt(x.interruptionInfo >>> 0)],
      [F.VM_EXIT_INTR_ERROR_CODE, BigInt(x.interruptionErrorCode)],
      [F.IDT_VECTORING_INFO_FIELD, BigInt(x.idtVectoringInfo >>> 0)],
      [F.IDT_VECTORING_ERROR_CODE, BigInt(x.idtVectoringErrorCode)],
    ];
    for (const [enc, v] of want) assert.equal(hex(get12(v12, enc)), hex(v), `field ${hex(enc)}`);
  });
}

test('reflect: every VM exit clears the valid bit of vmcs12s VM-entry interruption information (§24.8.3)', () => {
  const { v12 } = reflectAfter(
    [[F.VM_ENTRY_INTR_INFO_FIELD, 0x80000b0e]],
    [],
    exit12From(exitRecord(R.CPUID)),
  );
  assert.equal(hex(get12(v12, F.VM_ENTRY_INTR_INFO_FIELD)), hex(0x00000b0e));
});

// ---------------------------------------------------------------------------------------------
// Table 2: guest state saved into vmcs12 (§27.3). Unconditional fields take L2's values; the
// fields of a "save" exit control take them only when vmcs12 has that control, else keep
// vmcs12's.
// ---------------------------------------------------------------------------------------------
interface SaveRow {
  name: string;
  exit12: number;
  /** vmcs12's value before the entry, and what L2 left in vmcs02. */
  field: number;
  before: bigint;
  l2: bigint;
  saved: boolean;
  w12?: readonly (readonly [number, bigint | number])[];
}
const SAVE_ROWS: SaveRow[] = [
  {
    name: 'RIP (always)',
    exit12: EXIT_BASE,
    field: F.GUEST_RIP,
    before: 0x100000n,
    l2: 0x100abcn,
    saved: true,
  },
  {
    name: 'RSP (always)',
    exit12: EXIT_BASE,
    field: F.GUEST_RSP,
    before: 0x1ffff0n,
    l2: 0x1fff00n,
    saved: true,
  },
  {
    name: 'RFLAGS (always)',
    exit12: EXIT_BASE,
    field: F.GUEST_RFLAGS,
    before: 0x202n,
    l2: 0x246n,
    saved: true,
  },
  {
    name: 'CR3 (always)',
    exit12: EXIT_BASE,
    field: F.GUEST_CR3,
    before: 0x51000n,
    l2: 0x61000n,
    saved: true,
  },
  {
    name: 'interruptibility state (always)',
    exit12: EXIT_BASE,
    field: F.GUEST_INTERRUPTIBILITY_INFO,
    before: 0n,
    l2: 1n,
    saved: true,
  },
  {
    name: 'FS base (always)',
    exit12: EXIT_BASE,
    field: F.GUEST_FS_BASE,
    before: 0x7f0000001000n,
    l2: 0x7f0000009000n,
    saved: true,
  },
  {
    name: 'SYSENTER_EIP (always)',
    exit12: EXIT_BASE,
    field: F.GUEST_SYSENTER_EIP,
    before: 0xa000n,
    l2: 0xb000n,
    saved: true,
  },
  {
    name: 'EFER with "save IA32_EFER"',
    exit12: EXIT_BASE | B.EXIT_SAVE_EFER,
    field: F.GUEST_IA32_EFER,
    before: 0x500n,
    l2: 0xd01n,
    saved: true,
  },
  {
    name: 'EFER without "save IA32_EFER"',
    exit12: EXIT_BASE,
    field: F.GUEST_IA32_EFER,
    before: 0x500n,
    l2: 0xd01n,
    saved: false,
  },
  {
    name: 'PAT with "save IA32_PAT"',
    exit12: EXIT_BASE | B.EXIT_SAVE_PAT,
    field: F.GUEST_IA32_PAT,
    before: 0x0007040600070406n,
    l2: 0x0606060606060606n,
    saved: true,
  },
  {
    name: 'PAT without "save IA32_PAT"',
    exit12: EXIT_BASE,
    field: F.GUEST_IA32_PAT,
    before: 0x0007040600070406n,
    l2: 0x0606060606060606n,
    saved: false,
  },
  {
    name: 'DR7 with "save debug controls"',
    exit12: EXIT_BASE | B.EXIT_SAVE_DEBUG,
    field: F.GUEST_DR7,
    before: 0x400n,
    l2: 0x401n,
    saved: true,
    w12: [[F.VM_ENTRY_CONTROLS, 0x11fb | B.ENTRY_IA32E | B.ENTRY_LOAD_DEBUG]],
  },
  {
    name: 'DR7 without "save debug controls"',
    exit12: EXIT_BASE,
    field: F.GUEST_DR7,
    before: 0x400n,
    l2: 0x401n,
    saved: false,
    w12: [[F.VM_ENTRY_CONTROLS, 0x11fb | B.ENTRY_IA32E | B.ENTRY_LOAD_DEBUG]],
  },
  {
    name: 'preemption timer with "save VMX-preemption timer value"',
    exit12: EXIT_BASE | B.EXIT_SAVE_PREEMPT,
    field: F.VMX_PREEMPTION_TIMER_VALUE,
    before: 100000n,
    l2: 4000n,
    saved: true,
    w12: [[F.PIN_BASED_VM_EXEC_CONTROL, 0x16 | B.PIN_PREEMPTION_TIMER]],
  },
  {
    name: 'preemption timer without "save VMX-preemption timer value"',
    exit12: EXIT_BASE,
    field: F.VMX_PREEMPTION_TIMER_VALUE,
    before: 100000n,
    l2: 4000n,
    saved: false,
    w12: [[F.PIN_BASED_VM_EXEC_CONTROL, 0x16 | B.PIN_PREEMPTION_TIMER]],
  },
];
for (const row of SAVE_ROWS) {
  test(`reflect: guest state saved to vmcs12: ${row.name}`, () => {
    const { v12 } = reflectAfter(
      [[F.VM_EXIT_CONTROLS, row.exit12], [row.field, row.before], ...(row.w12 ?? [])],
      [[row.field, row.l2]],
      exit12From(exitRecord(R.CPUID, { instructionLength: 2 })),
    );
    assert.equal(hex(get12(v12, row.field)), hex(row.saved ? row.l2 : row.before));
  });
}

// ---------------------------------------------------------------------------------------------
// Table 3: L1 resumes at its host state (§27.5): vmcs01's guest state from vmcs12's host state.
// ---------------------------------------------------------------------------------------------
test('reflect: L1 resumes at vmcs12s host state (RIP, RSP, CR0/CR3/CR4 as L1 sees them, selectors, RFLAGS)', () => {
  const { fx, v12 } = reflectAfter(
    [
      [F.HOST_GDTR_BASE, 0x7000],
      [F.HOST_IDTR_BASE, 0x8000],
      [F.HOST_TR_BASE, 0x9000],
      [F.HOST_FS_BASE, 0x11000],
      [F.HOST_GS_BASE, 0x12000],
      [F.HOST_IA32_SYSENTER_EIP, 0x13000],
    ],
    [[F.GUEST_RFLAGS, 0x246]],
    exit12From(exitRecord(R.CPUID, { instructionLength: 2 })),
  );
  const h = fx.h;
  const host = (enc: number): bigint => get12(v12, enc);
  assert.equal(rd(h, F.GUEST_RIP), host(F.HOST_RIP));
  assert.equal(rd(h, F.GUEST_RSP), host(F.HOST_RSP));
  assert.equal(rd(h, F.GUEST_CR3), host(F.HOST_CR3));
  assert.equal(rd(h, F.CR0_READ_SHADOW), host(F.HOST_CR0), 'L1 reads its host CR0');
  assert.equal(rd(h, F.CR4_READ_SHADOW), host(F.HOST_CR4), 'L1 reads its host CR4');
  assert.equal(rd(h, F.GUEST_CR0) & ~0x20n, host(F.HOST_CR0) & ~0x20n);
  assert.equal(rd(h, F.GUEST_CR4) & ~0x2000n, host(F.HOST_CR4) & ~0x2000n);
  assert.equal(rd(h, F.GUEST_CS_SELECTOR), host(F.HOST_CS_SELECTOR));
  assert.equal(rd(h, F.GUEST_SS_SELECTOR), host(F.HOST_SS_SELECTOR));
  assert.equal(rd(h, F.GUEST_TR_SELECTOR), host(F.HOST_TR_SELECTOR));
  assert.equal(rd(h, F.GUEST_TR_BASE), 0x9000n);
  assert.equal(rd(h, F.GUEST_GDTR_BASE), 0x7000n);
  assert.equal(rd(h, F.GUEST_IDTR_BASE), 0x8000n);
  assert.equal(rd(h, F.GUEST_FS_BASE), 0x11000n);
  assert.equal(rd(h, F.GUEST_GS_BASE), 0x12000n);
  assert.equal(rd(h, F.GUEST_SYSENTER_EIP), 0x13000n);
  assert.equal(rd(h, F.GUEST_RFLAGS), 2n, 'RFLAGS cleared but bit 1 (§27.5.3)');
  assert.equal(rd(h, F.GUEST_GDTR_LIMIT), 0xffffn);
  assert.equal(rd(h, F.GUEST_IDTR_LIMIT), 0xffffn);
  assert.equal(rd(h, F.GUEST_DR7), 0x400n, 'DR7 = 400H (§27.5.1)');
  // A 64-bit host: IA32_EFER.LMA/LME set, CS.L set, IA-32e mode for the next entry to L1.
  assert.equal(rd(h, F.GUEST_IA32_EFER) & 0x500n, 0x500n);
  assert.equal(rd(h, F.GUEST_CS_AR_BYTES) & 0x2000n, 0x2000n);
  assert.equal(rd(h, F.VM_ENTRY_CONTROLS) & BigInt(B.ENTRY_IA32E), BigInt(B.ENTRY_IA32E));
});

for (const [name, exit12, efer, pat] of [
  [
    'load IA32_EFER and IA32_PAT',
    EXIT_BASE | B.EXIT_LOAD_EFER | B.EXIT_LOAD_PAT,
    0xd01n,
    0x0606060606060606n,
  ],
] as const) {
  test(`reflect: L1s host MSRs with ${name}`, () => {
    const { fx } = reflectAfter(
      [
        [F.VM_EXIT_CONTROLS, exit12],
        [F.HOST_IA32_EFER, efer],
        [F.HOST_IA32_PAT, pat],
      ],
      [],
      exit12From(exitRecord(R.CPUID)),
    );
    assert.equal(hex(rd(fx.h, F.GUEST_IA32_EFER)), hex(efer | 0x500n));
    assert.equal(hex(rd(fx.h, F.GUEST_IA32_PAT)), hex(pat));
  });
}

// ---------------------------------------------------------------------------------------------
// MSR lists (§27.4): the values the exit stored reach L1's MSR-store list; L1's MSR-load list is
// loaded before L1 runs again.
// ---------------------------------------------------------------------------------------------
test('reflect: the VM-exit MSR-store list gets the values stored at the exit, in L1 memory', () => {
  const fx = nestedFixture();
  l1Write64(fx, L1.EXIT_MSR_STORE, 0xc0000102n);
  l1Write64(fx, L1.EXIT_MSR_STORE + 8, 0n);
  l1Write64(fx, L1.EXIT_MSR_LOAD, 0xc0000100n);
  l1Write64(fx, L1.EXIT_MSR_LOAD + 8, 0x4000n);
  const v12 = baseVmcs12(fx);
  for (const [enc, val] of [
    [F.VM_EXIT_MSR_STORE_COUNT, 1],
    [F.VM_EXIT_MSR_STORE_ADDR, L1.EXIT_MSR_STORE],
    [F.VM_EXIT_MSR_LOAD_COUNT, 1],
    [F.VM_EXIT_MSR_LOAD_ADDR, L1.EXIT_MSR_LOAD],
  ] as const)
    set12(v12, enc, val);
  fx.n.current = v12;
  prepareVmcs02(fx.v, fx.n);
  fx.v.level = 'L2';
  // What the hardware stored into vmcs02's (L0's) copy of the list at the exit from L2.
  const st = Number(rd(fx.h, F.VM_EXIT_MSR_STORE_ADDR));
  fx.h.mem.write32(st + 8, 0x5678);
  fx.h.mem.write32(st + 12, 0x1234);
  reflectToL1(fx.v, fx.n, exit12From(exitRecord(R.CPUID)), true);
  assert.equal(hex(l1Read64(fx, L1.EXIT_MSR_STORE + 8)), hex(0x123400005678n));
  assert.equal(hex(l1Read64(fx, L1.EXIT_MSR_STORE)), hex(0xc0000102n), 'the index L1 wrote stays');
  // L1's exit MSR-load list takes effect before L1's next instruction: the entry to L1 loads it.
  assert.equal(rd(fx.h, F.VM_ENTRY_MSR_LOAD_COUNT), 1n);
  const ld = Number(rd(fx.h, F.VM_ENTRY_MSR_LOAD_ADDR));
  assert.equal(fx.h.mem.read32(ld) >>> 0, 0xc0000100);
  assert.equal(fx.h.mem.read32(ld + 8), 0x4000);
});
