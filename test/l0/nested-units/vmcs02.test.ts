/**
 * vmcs02 preparation (src/l0/nested/vmcs02.ts), table-driven: each row gives vmcs01 settings and
 * vmcs12 fields (what L1 wrote) and the vmcs02 L0 must run L2 with. Where the SDM fixes the
 * meaning rather than the bits (TSC offsets, CR read shadows, #PF filtering, MSR bitmaps), the
 * rows are checked semantically: L2 must observe under vmcs02 what it would observe with L1
 * running it on hardware with vmcs12, and every exit vmcs12 or vmcs01 asks for must happen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  VMCS_FIELD as F,
  VMX_BITS as B,
  VMCS_FIELD_INDEX,
  checkVmEntry,
  type Vmcs,
} from '../../../src/hw/index.js';
import { prepareVmcs02 } from '../../../src/l0/nested/vmcs02.js';
import { GUEST_FIELDS } from '../../../src/l0/nested/field-groups.js';
import {
  nestedFixture,
  baseVmcs12,
  set12,
  get12,
  rd,
  wr,
  dumpCurrent,
  l1Write64,
  l1SetBit,
  hpaOf,
  eptpFor,
  hex,
  L1,
  type Fx,
} from './fixture.js';

const ALL_ONES = 0xffffffffffffffffn;
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

interface Built {
  fx: Fx;
  v12: Vmcs;
  /** vmcs01 as it was just before the nested entry. */
  v01: Map<number, bigint>;
  /** vmcs02 after preparation. */
  v02: Map<number, bigint>;
}

type Writes = readonly (readonly [number, bigint | number])[];

/** vmcs01 gets `w01`, a base vmcs12 gets `w12`, then L0 prepares vmcs02 for the nested entry. */
function build(w01: Writes = [], w12: Writes = [], fx: Fx = nestedFixture()): Built {
  for (const [enc, val] of w01) wr(fx.h, enc, val);
  const v01 = dumpCurrent(fx.h);
  const v12 = baseVmcs12(fx);
  for (const [enc, val] of w12) set12(v12, enc, val);
  fx.n.current = v12;
  prepareVmcs02(fx.v, fx.n);
  assert.equal(fx.h.vmptrst(), fx.n.vmcs02, 'vmcs02 is current after preparation');
  return { fx, v12, v01, v02: dumpCurrent(fx.h) };
}
const f02 = (b: Built, enc: number): bigint => {
  const v = b.v02.get(enc);
  assert.ok(v !== undefined, `vmcs02 field ${hex(enc)} readable`);
  return v;
};

// ---------------------------------------------------------------------------------------------
// Table 1: merged control fields. `expect` is evaluated on the built state, so a row can say
// "vmcs12's value", "vmcs01's value" or "an L0 address" as data.
// ---------------------------------------------------------------------------------------------
const PROC_BASE = 0x04006172; // L1's true default1 processor-based bits (checked below)
const FORCED = B.CPU_UNCOND_IO | B.CPU_USE_MSR_BITMAPS | B.CPU_SECONDARY;
type Expect = (b: Built) => bigint;
const is =
  (v: bigint | number): Expect =>
  () =>
    BigInt(v) >= 0n ? BigInt(v) : u64(BigInt(v));
const from12 =
  (enc: number): Expect =>
  (b) =>
    get12(b.v12, enc);
const from01 =
  (enc: number): Expect =>
  (b) =>
    b.v01.get(enc)!;

/** Pin-based bits L0 keeps for physical events (vmcs01's external-interrupt/NMI exiting, virtual NMIs). */
const L0_PIN = B.PIN_EXT_INTR | B.PIN_NMI | B.PIN_VIRTUAL_NMIS;
const pinWith =
  (pin12: number): Expect =>
  (b) =>
    BigInt(pin12) | (b.v01.get(F.PIN_BASED_VM_EXEC_CONTROL)! & BigInt(L0_PIN));
/** vmcs02's entry controls with the IA-32e / load-EFER / load-PAT bits replaced by `bits`. */
const ENTRY_STATE = B.ENTRY_IA32E | B.ENTRY_LOAD_EFER | B.ENTRY_LOAD_PAT;
const entryBits =
  (bits: number): Expect =>
  (b) =>
    (f02(b, F.VM_ENTRY_CONTROLS) & ~BigInt(ENTRY_STATE)) | BigInt(bits);

interface ControlRow {
  name: string;
  w01?: Writes;
  w12: Writes;
  expect: readonly (readonly [number, Expect])[];
}
const PIN_ALL = 0x16 | B.PIN_EXT_INTR | B.PIN_NMI | B.PIN_VIRTUAL_NMIS | B.PIN_PREEMPTION_TIMER;
const CONTROL_ROWS: ControlRow[] = [
  {
    name: 'pin-based: every exit vmcs12 asks for (external interrupts, NMIs, virtual NMIs, timer)',
    w12: [[F.PIN_BASED_VM_EXEC_CONTROL, PIN_ALL]],
    expect: [[F.PIN_BASED_VM_EXEC_CONTROL, pinWith(PIN_ALL)]],
  },
  {
    name: 'pin-based: the default1 bits and L0s physical-event exiting when L1 asks for nothing',
    w12: [[F.PIN_BASED_VM_EXEC_CONTROL, 0x16]],
    expect: [[F.PIN_BASED_VM_EXEC_CONTROL, pinWith(0x16)]],
  },
  {
    name: 'pin-based: the preemption timer is L1s alone (L0 does not use one)',
    w12: [[F.PIN_BASED_VM_EXEC_CONTROL, 0x16 | B.PIN_PREEMPTION_TIMER]],
    expect: [[F.PIN_BASED_VM_EXEC_CONTROL, pinWith(0x16 | B.PIN_PREEMPTION_TIMER)]],
  },
  {
    name: 'processor-based: L1s exiting controls kept; unconditional I/O, MSR bitmaps, secondary forced',
    w12: [
      [
        F.CPU_BASED_VM_EXEC_CONTROL,
        PROC_BASE | B.CPU_HLT | B.CPU_INVLPG | B.CPU_RDTSC | B.CPU_MOV_DR | B.CPU_CR8_LOAD | B.CPU_MTF,
      ],
      [F.SECONDARY_VM_EXEC_CONTROL, 0],
    ],
    expect: [
      [
        F.CPU_BASED_VM_EXEC_CONTROL,
        is(
          (PROC_BASE |
            B.CPU_HLT |
            B.CPU_INVLPG |
            B.CPU_RDTSC |
            B.CPU_MOV_DR |
            B.CPU_CR8_LOAD |
            B.CPU_MTF |
            FORCED) >>>
            0,
        ),
      ],
    ],
  },
  {
    name: 'processor-based: L1s I/O bitmaps give way to unconditional I/O exiting (L0 filters by them)',
    w12: [[F.CPU_BASED_VM_EXEC_CONTROL, (PROC_BASE | B.CPU_USE_IO_BITMAPS | B.CPU_SECONDARY) >>> 0]],
    expect: [[F.CPU_BASED_VM_EXEC_CONTROL, is((PROC_BASE | FORCED) >>> 0)]],
  },
  {
    name: 'processor-based: interrupt/NMI-window exiting and TPR shadow come from vmcs12',
    w12: [
      [
        F.CPU_BASED_VM_EXEC_CONTROL,
        (PROC_BASE | B.CPU_INTR_WINDOW | B.CPU_NMI_WINDOW | B.CPU_TPR_SHADOW | B.CPU_SECONDARY) >>> 0,
      ],
      [F.PIN_BASED_VM_EXEC_CONTROL, 0x16 | B.PIN_NMI | B.PIN_VIRTUAL_NMIS],
      [F.VIRTUAL_APIC_PAGE_ADDR, L1.VAPIC],
    ],
    expect: [
      [
        F.CPU_BASED_VM_EXEC_CONTROL,
        is((PROC_BASE | B.CPU_INTR_WINDOW | B.CPU_NMI_WINDOW | B.CPU_TPR_SHADOW | FORCED) >>> 0),
      ],
    ],
  },
  {
    name: 'secondary controls are ignored when vmcs12 does not activate them (SDM 3C §24.6.2)',
    w12: [
      [F.CPU_BASED_VM_EXEC_CONTROL, PROC_BASE],
      [F.SECONDARY_VM_EXEC_CONTROL, B.SEC_DESC_TABLE | B.SEC_WBINVD | B.SEC_RDTSCP | B.SEC_EPT],
    ],
    expect: [[F.SECONDARY_VM_EXEC_CONTROL, is(B.SEC_EPT | B.SEC_VPID)]],
  },
  {
    name: 'secondary: L1s bits kept, EPT and VPID on',
    w12: [
      [
        F.SECONDARY_VM_EXEC_CONTROL,
        B.SEC_DESC_TABLE |
          B.SEC_WBINVD |
          B.SEC_RDTSCP |
          B.SEC_INVPCID |
          B.SEC_RDRAND |
          B.SEC_RDSEED |
          B.SEC_EPT |
          B.SEC_UNRESTRICTED,
      ],
    ],
    expect: [
      [
        F.SECONDARY_VM_EXEC_CONTROL,
        is(
          B.SEC_DESC_TABLE |
            B.SEC_WBINVD |
            B.SEC_RDTSCP |
            B.SEC_INVPCID |
            B.SEC_RDRAND |
            B.SEC_RDSEED |
            B.SEC_EPT |
            B.SEC_UNRESTRICTED |
            B.SEC_VPID,
        ),
      ],
    ],
  },
  {
    name: 'secondary: never VMCS shadowing for L2 (that is L0s, through vmcs01)',
    w12: [[F.SECONDARY_VM_EXEC_CONTROL, B.SEC_EPT | B.SEC_VPID | B.SEC_SHADOW_VMCS]],
    expect: [[F.SECONDARY_VM_EXEC_CONTROL, is(B.SEC_EPT | B.SEC_VPID)]],
  },
  {
    name: 'VPID: vmcs12s VPID becomes vpid02',
    w12: [[F.VIRTUAL_PROCESSOR_ID, 7]],
    expect: [[F.VIRTUAL_PROCESSOR_ID, (b) => BigInt(b.fx.n.vpid02)]],
  },
  {
    name: 'VPID: L2 of an L1 without VPID still runs tagged with vpid02',
    w12: [
      [F.SECONDARY_VM_EXEC_CONTROL, B.SEC_EPT],
      [F.VIRTUAL_PROCESSOR_ID, 0],
    ],
    expect: [
      [F.VIRTUAL_PROCESSOR_ID, (b) => BigInt(b.fx.n.vpid02)],
      [F.SECONDARY_VM_EXEC_CONTROL, is(B.SEC_EPT | B.SEC_VPID)],
    ],
  },
  {
    name: 'EPT: vmcs12s EPTP becomes the root of an ept02 of L0s (write-back, 4-level walk)',
    w12: [[F.EPT_POINTER, eptpFor(L1.EPT12)]],
    expect: [[F.EPT_POINTER, (b) => BigInt(eptpFor(b.fx.n.ept02.get(L1.EPT12)!.root))]],
  },
  {
    name: 'EPT: without EPT in vmcs12 L2 runs on ept01 (L2-physical is L1-physical)',
    w12: [
      [F.SECONDARY_VM_EXEC_CONTROL, B.SEC_VPID],
      [F.EPT_POINTER, 0],
    ],
    expect: [
      [F.EPT_POINTER, (b) => BigInt(eptpFor(b.fx.vm.ept01))],
      [F.SECONDARY_VM_EXEC_CONTROL, is(B.SEC_EPT | B.SEC_VPID)],
    ],
  },
  {
    name: 'exception bitmap: vmcs12 | vmcs01',
    w01: [[F.EXCEPTION_BITMAP, (1 << 6) | (1 << 17)]],
    w12: [[F.EXCEPTION_BITMAP, (1 << 3) | (1 << 13) | (1 << 17)]],
    expect: [[F.EXCEPTION_BITMAP, is((1 << 3) | (1 << 6) | (1 << 13) | (1 << 17))]],
  },
  {
    name: 'exception bitmap: L0 intercepting nothing leaves vmcs12s',
    w12: [[F.EXCEPTION_BITMAP, 0xffffffff]],
    expect: [[F.EXCEPTION_BITMAP, is(0xffffffff)]],
  },
  {
    name: 'CR0 guest/host mask: vmcs12 | vmcs01 (NE is L0s)',
    w12: [[F.CR0_GUEST_HOST_MASK, 0x80000001]],
    expect: [[F.CR0_GUEST_HOST_MASK, (b) => 0x80000001n | b.v01.get(F.CR0_GUEST_HOST_MASK)!]],
  },
  {
    name: 'CR4 guest/host mask: vmcs12 | vmcs01 (VMXE is L0s)',
    w12: [[F.CR4_GUEST_HOST_MASK, 0x20]],
    expect: [[F.CR4_GUEST_HOST_MASK, (b) => 0x20n | b.v01.get(F.CR4_GUEST_HOST_MASK)!]],
  },
  {
    name: 'CR3-target count and values are vmcs12s',
    w12: [
      [F.CR3_TARGET_COUNT, 3],
      [F.CR3_TARGET_VALUE0, 0x1000],
      [F.CR3_TARGET_VALUE_1, 0x2000],
      [F.CR3_TARGET_VALUE_2, 0x3000],
      [F.CR3_TARGET_VALUE_3, 0x4000],
    ],
    expect: [
      [F.CR3_TARGET_COUNT, is(3)],
      [F.CR3_TARGET_VALUE0, is(0x1000)],
      [F.CR3_TARGET_VALUE_1, is(0x2000)],
      [F.CR3_TARGET_VALUE_2, is(0x3000)],
      [F.CR3_TARGET_VALUE_3, is(0x4000)],
    ],
  },
  {
    name: 'VMX-preemption timer: activated as vmcs12 says, value from vmcs12, saved when L1 asks',
    w12: [
      [F.PIN_BASED_VM_EXEC_CONTROL, 0x16 | B.PIN_PREEMPTION_TIMER],
      [F.VM_EXIT_CONTROLS, 0x36dfb | B.EXIT_HOST_ADDR_SPACE | B.EXIT_SAVE_PREEMPT],
      [F.VMX_PREEMPTION_TIMER_VALUE, 12345],
    ],
    expect: [
      [F.VMX_PREEMPTION_TIMER_VALUE, is(12345)],
      [F.VM_EXIT_CONTROLS, (b) => f02(b, F.VM_EXIT_CONTROLS) | BigInt(B.EXIT_SAVE_PREEMPT)],
    ],
  },
  {
    name: 'VMX-preemption timer: value from vmcs12 when L1 does not save it',
    w12: [
      [F.PIN_BASED_VM_EXEC_CONTROL, 0x16 | B.PIN_PREEMPTION_TIMER],
      [F.VMX_PREEMPTION_TIMER_VALUE, 777],
    ],
    expect: [[F.VMX_PREEMPTION_TIMER_VALUE, is(777)]],
  },
  {
    name: 'VM-exit controls: everything L0 needs from vmcs01 (exits from L2 return to L0)',
    w12: [[F.VM_EXIT_CONTROLS, 0x36dfb]],
    expect: [[F.VM_EXIT_CONTROLS, (b) => f02(b, F.VM_EXIT_CONTROLS) | b.v01.get(F.VM_EXIT_CONTROLS)!]],
  },
  {
    name: 'VM-entry controls: IA-32e mode guest, load EFER, load PAT as vmcs12 says (set)',
    w12: [[F.VM_ENTRY_CONTROLS, 0x11fb | B.ENTRY_IA32E | B.ENTRY_LOAD_EFER | B.ENTRY_LOAD_PAT]],
    expect: [[F.VM_ENTRY_CONTROLS, entryBits(B.ENTRY_IA32E | B.ENTRY_LOAD_EFER | B.ENTRY_LOAD_PAT)]],
  },
  {
    name: 'VM-entry controls: IA-32e mode guest, load EFER, load PAT as vmcs12 says (clear)',
    w12: [[F.VM_ENTRY_CONTROLS, 0x11fb]],
    expect: [[F.VM_ENTRY_CONTROLS, entryBits(0)]],
  },
  {
    name: 'event injection is vmcs12s (interruption info, error code, instruction length)',
    w12: [
      [F.VM_ENTRY_INTR_INFO_FIELD, 0x80000b0e], // #PF, hardware exception, with error code
      [F.VM_ENTRY_EXCEPTION_ERROR_CODE, 6],
      [F.VM_ENTRY_INSTRUCTION_LEN, 3],
    ],
    expect: [
      [F.VM_ENTRY_INTR_INFO_FIELD, is(0x80000b0e)],
      [F.VM_ENTRY_EXCEPTION_ERROR_CODE, is(6)],
      [F.VM_ENTRY_INSTRUCTION_LEN, is(3)],
    ],
  },
  {
    name: 'virtual-APIC page in L1 RAM: its host-physical address; TPR threshold from vmcs12',
    w12: [
      [F.CPU_BASED_VM_EXEC_CONTROL, (PROC_BASE | B.CPU_TPR_SHADOW | B.CPU_SECONDARY) >>> 0],
      [F.VIRTUAL_APIC_PAGE_ADDR, L1.VAPIC],
      [F.TPR_THRESHOLD, 5],
    ],
    expect: [
      [F.VIRTUAL_APIC_PAGE_ADDR, (b) => BigInt(hpaOf(b.fx, L1.VAPIC))],
      [F.TPR_THRESHOLD, is(5)],
    ],
  },
  {
    name: 'virtual-APIC page outside L1 RAM: a scratch page of L0s, never another address',
    w12: [
      [F.CPU_BASED_VM_EXEC_CONTROL, (PROC_BASE | B.CPU_TPR_SHADOW | B.CPU_SECONDARY) >>> 0],
      [F.VIRTUAL_APIC_PAGE_ADDR, 0x40000000],
    ],
    expect: [[F.VIRTUAL_APIC_PAGE_ADDR, (b) => BigInt(b.fx.n.scratchPage)]],
  },
  {
    name: 'VMCS link pointer is all ones (vmcs02 has no shadow VMCS), whatever vmcs12 holds',
    w12: [[F.VMCS_LINK_POINTER, 0x620000]],
    expect: [[F.VMCS_LINK_POINTER, is(ALL_ONES)]],
  },
  {
    name: 'host state is L0s (vmcs01s), not L1s host state in vmcs12',
    w12: [
      [F.HOST_RIP, 0xdead000],
      [F.HOST_CR3, 0xbeef000],
    ],
    expect: [
      [F.HOST_RIP, from01(F.HOST_RIP)],
      [F.HOST_RSP, from01(F.HOST_RSP)],
      [F.HOST_CR0, from01(F.HOST_CR0)],
      [F.HOST_CR3, from01(F.HOST_CR3)],
      [F.HOST_CR4, from01(F.HOST_CR4)],
      [F.HOST_CS_SELECTOR, from01(F.HOST_CS_SELECTOR)],
      [F.HOST_TR_SELECTOR, from01(F.HOST_TR_SELECTOR)],
      [F.HOST_IA32_EFER, from01(F.HOST_IA32_EFER)],
    ],
  },
  {
    name: 'MSR bitmap: an L0 page, never L1s address',
    w12: [[F.MSR_BITMAP, L1.MSR_BITMAP]],
    expect: [[F.MSR_BITMAP, (b) => BigInt(b.fx.n.msrBitmap02)]],
  },
  {
    name: 'guest RIP, RSP, CR3 and EFER are vmcs12s',
    w12: [
      [F.GUEST_RIP, 0x123456],
      [F.GUEST_RSP, 0x7ffff000],
      [F.GUEST_CR3, 0x77000],
    ],
    expect: [
      [F.GUEST_RIP, is(0x123456)],
      [F.GUEST_RSP, is(0x7ffff000)],
      [F.GUEST_CR3, is(0x77000)],
      [F.GUEST_IA32_EFER, from12(F.GUEST_IA32_EFER)],
    ],
  },
];

test('vmcs02 table fixture: L1s true default1 processor-based bits are what the rows assume', () => {
  const fx = nestedFixture();
  assert.equal(fx.n.caps.trueProc.must1 >>> 0, PROC_BASE);
  assert.equal(fx.n.caps.truePin.must1, 0x16);
  assert.equal(fx.n.caps.trueExit.must1, 0x36dfb);
  assert.equal(fx.n.caps.trueEntry.must1, 0x11fb);
});

for (const row of CONTROL_ROWS) {
  test(`vmcs02 controls: ${row.name}`, () => {
    const b = build(row.w01, row.w12);
    for (const [enc, exp] of row.expect) assert.equal(hex(f02(b, enc)), hex(exp(b)), `field ${hex(enc)}`);
  });
}

test('vmcs02 from a vmcs12 that passes the VM-entry checks passes them on the hardware', () => {
  const fx = nestedFixture();
  const v12 = baseVmcs12(fx);
  const env = {
    read8: (pa: number) => fx.h.mem.read8(hpaOf(fx, pa)),
    read32: (pa: number) => fx.h.mem.read32(hpaOf(fx, pa)),
    hostLma: true,
  };
  assert.deepEqual(checkVmEntry(v12, fx.n.caps, env), { kind: 'ok' }, 'the base vmcs12 is valid for L1');
  fx.n.current = v12;
  prepareVmcs02(fx.v, fx.n);
  // ept02 starts empty: L2's first reference (its PML4, a guest paging-structure access) is an
  // EPT violation — an exit, so every VM-entry check on vmcs02 passed.
  const r = fx.h.vmlaunch(100_000);
  assert.equal(r.kind, 'exit', r.kind === 'exit' ? '' : `${r.kind}: ${'check' in r ? r.check : ''}`);
  if (r.kind !== 'exit') return;
  assert.equal(r.reason, B.R.EPT_VIOLATION);
  assert.equal(r.guestPhysicalAddress, 0x51000n);
});

test('vmcs02 preparation leaves vmcs01 untouched', () => {
  const b = build([[F.EXCEPTION_BITMAP, 1 << 6]], [[F.EXCEPTION_BITMAP, 1 << 14]]);
  assert.ok(b.fx.h.vmptrld(b.fx.v.vmcs01).ok);
  assert.deepEqual(dumpCurrent(b.fx.h), b.v01);
});

// ---------------------------------------------------------------------------------------------
// Table 2: guest state — every guest-state field is vmcs12's (the VMCS link pointer excepted).
// ---------------------------------------------------------------------------------------------
test('vmcs02 guest state: every guest-state field of vmcs12 is copied (full build)', () => {
  const fx = nestedFixture();
  const w12: [number, bigint][] = [];
  let k = 1;
  for (const enc of GUEST_FIELDS) {
    const width = (enc >> 13) & 3; // 0: 16-bit, 1: 64-bit, 2: 32-bit, 3: natural
    const v = 0x0123456789abcdefn ^ (BigInt(k++) * 0x10001n);
    w12.push([enc, width === 0 ? v & 0xffffn : width === 2 ? v & 0xffffffffn : v]);
  }
  // With "load debug controls", DR7 and IA32_DEBUGCTL are guest state loaded at entry too.
  w12.push([F.VM_ENTRY_CONTROLS, BigInt(0x11fb | B.ENTRY_IA32E | B.ENTRY_LOAD_DEBUG)]);
  const b = build([], w12, fx);
  assert.ok(w12.length >= 50, `${w12.length} guest fields`);
  for (const [enc, v] of w12) assert.equal(hex(f02(b, enc)), hex(v), `guest field ${hex(enc)}`);
});

// ---------------------------------------------------------------------------------------------
// Table 3: TSC offsets. SDM 3C §25.3: with "use TSC offsetting", RDTSC in the guest returns
// TSC + offset. L2 on hardware under L1 would read (L1's TSC) + offset12, and L1's TSC is the
// host's + offset01: the offset vmcs02 applies must be the sum of the offsets in force.
// ---------------------------------------------------------------------------------------------
interface TscRow {
  name: string;
  tsc01: bigint | undefined; // vmcs01: undefined = no TSC offsetting
  tsc12: bigint | undefined;
  /** A value left in a VMCS's TSC-offset field while its "use TSC offsetting" is 0 (ignored, §25.3). */
  stale01?: bigint;
  stale12?: bigint;
  /** TSC offset L2 must see, relative to the host TSC. */
  effective: bigint;
}
const TSC_ROWS: TscRow[] = [
  { name: 'no offsetting anywhere', tsc01: undefined, tsc12: undefined, effective: 0n },
  { name: 'L1 offsets L2 (L0 does not offset L1)', tsc01: undefined, tsc12: 1000n, effective: 1000n },
  { name: 'both offset: the offsets add', tsc01: 5000n, tsc12: 1000n, effective: 6000n },
  {
    name: 'a negative offset12 (two-complement) adds modulo 2^64',
    tsc01: 5000n,
    tsc12: -3000n,
    effective: 2000n,
  },
  { name: 'both negative', tsc01: -5000n, tsc12: -7n, effective: -5007n },
  // L2 reads the TSC L1 reads (host + offset01) when L1 does not offset it.
  {
    name: 'L0 offsets L1, L1 does not offset L2: L2 sees L1s TSC',
    tsc01: 5000n,
    tsc12: undefined,
    effective: 5000n,
  },
  {
    name: 'L0 offsets L1 by a negative offset, L1 does not offset L2',
    tsc01: -123456789n,
    tsc12: undefined,
    effective: -123456789n,
  },
  {
    name: 'L0 offsets L1; vmcs12 holds an offset but L1 has offsetting off (ignored)',
    tsc01: 5000n,
    tsc12: undefined,
    stale12: 777n,
    effective: 5000n,
  },
  {
    name: 'L1 offsets L2; vmcs01 holds an offset but L0 has offsetting off (ignored)',
    tsc01: undefined,
    stale01: 0x9999n,
    tsc12: 1000n,
    effective: 1000n,
  },
  {
    name: 'neither offsets, both fields hold values (ignored)',
    tsc01: undefined,
    stale01: 0x9999n,
    tsc12: undefined,
    stale12: 777n,
    effective: 0n,
  },
  {
    name: 'both offset and the sum wraps modulo 2^64',
    tsc01: 0x7fffffffffffffffn,
    tsc12: 0x7fffffffffffffffn,
    effective: -2n,
  },
];
for (const row of TSC_ROWS) {
  test(`vmcs02 TSC offset: ${row.name}`, () => {
    const fx = nestedFixture();
    const proc01 = rd(fx.h, F.CPU_BASED_VM_EXEC_CONTROL);
    const w01: [number, bigint][] =
      row.tsc01 === undefined
        ? [
            [F.CPU_BASED_VM_EXEC_CONTROL, proc01 & ~BigInt(B.CPU_TSC_OFFSETTING)],
            [F.TSC_OFFSET, u64(row.stale01 ?? 0n)],
          ]
        : [
            [F.CPU_BASED_VM_EXEC_CONTROL, proc01 | BigInt(B.CPU_TSC_OFFSETTING)],
            [F.TSC_OFFSET, u64(row.tsc01)],
          ];
    const proc12 = BigInt((PROC_BASE | B.CPU_SECONDARY) >>> 0);
    const w12: [number, bigint][] = [
      [F.CPU_BASED_VM_EXEC_CONTROL, row.tsc12 === undefined ? proc12 : proc12 | BigInt(B.CPU_TSC_OFFSETTING)],
      [F.TSC_OFFSET, row.tsc12 === undefined ? u64(row.stale12 ?? 0n) : u64(row.tsc12)],
    ];
    const b = build(w01, w12, fx);
    const on = (f02(b, F.CPU_BASED_VM_EXEC_CONTROL) & BigInt(B.CPU_TSC_OFFSETTING)) !== 0n;
    const effective = on ? f02(b, F.TSC_OFFSET) : 0n;
    assert.equal(hex(effective), hex(u64(row.effective)));
  });
}

// L1 switching its offsetting off and on between entries (VMWRITEs, dirty merging): L2's offset
// follows, L0's offset of L1 staying in force throughout.
for (const dirtyMerge of [true, false]) {
  test(`vmcs02 TSC offset across entries (dirty merging ${dirtyMerge ? 'on' : 'off'}): L1 toggles its offsetting`, () => {
    const fx = nestedFixture({ dirtyMerge });
    const proc01 = rd(fx.h, F.CPU_BASED_VM_EXEC_CONTROL);
    const proc12 = (PROC_BASE | B.CPU_SECONDARY) >>> 0;
    const b = build(
      [
        [F.CPU_BASED_VM_EXEC_CONTROL, proc01 | BigInt(B.CPU_TSC_OFFSETTING)],
        [F.TSC_OFFSET, 5000],
      ],
      [
        [F.CPU_BASED_VM_EXEC_CONTROL, (proc12 | B.CPU_TSC_OFFSETTING) >>> 0],
        [F.TSC_OFFSET, 1000],
      ],
      fx,
    );
    const effective = (): bigint =>
      rd(fx.h, F.CPU_BASED_VM_EXEC_CONTROL) & BigInt(B.CPU_TSC_OFFSETTING) ? rd(fx.h, F.TSC_OFFSET) : 0n;
    assert.equal(hex(effective()), hex(6000n), 'entry 1: both offsets');
    const steps: [string, Writes, bigint][] = [
      ['L1 clears "use TSC offsetting"', [[F.CPU_BASED_VM_EXEC_CONTROL, proc12]], 5000n],
      ['L1 writes an offset with offsetting still off', [[F.TSC_OFFSET, 300]], 5000n],
      [
        'L1 sets "use TSC offsetting" again',
        [[F.CPU_BASED_VM_EXEC_CONTROL, (proc12 | B.CPU_TSC_OFFSETTING) >>> 0]],
        5300n,
      ],
    ];
    for (const [what, writes, want] of steps) {
      for (const [enc, val] of writes) {
        set12(b.v12, enc, val);
        fx.n.markDirty(enc);
      }
      assert.ok(fx.h.vmptrld(fx.v.vmcs01).ok);
      prepareVmcs02(fx.v, fx.n);
      assert.equal(hex(effective()), hex(want), what);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Table 3b: debug controls. SDM 3C §26.3.2.1: DR7 and IA32_DEBUGCTL are loaded from the guest-state
// area only with "load debug controls"; otherwise L2 keeps the processor's, i.e. L1's.
// ---------------------------------------------------------------------------------------------
for (const [name, load, dr7, debugctl] of [
  ['L1 loads them: vmcs12s', true, 0x401n, 0x1n],
  ['L1 does not: L2 runs with L1s', false, 0x455n, 0x2n],
] as const) {
  test(`vmcs02 debug controls: ${name}`, () => {
    const fx = nestedFixture();
    const b = build(
      [
        [F.GUEST_DR7, 0x455],
        [F.GUEST_IA32_DEBUGCTL, 0x2],
      ],
      [
        [F.VM_ENTRY_CONTROLS, 0x11fb | B.ENTRY_IA32E | (load ? B.ENTRY_LOAD_DEBUG : 0)],
        [F.GUEST_DR7, 0x401],
        [F.GUEST_IA32_DEBUGCTL, 0x1],
      ],
      fx,
    );
    const loads = (f02(b, F.VM_ENTRY_CONTROLS) & BigInt(B.ENTRY_LOAD_DEBUG)) !== 0n;
    assert.equal(hex(loads ? f02(b, F.GUEST_DR7) : b.v01.get(F.GUEST_DR7)!), hex(dr7));
    assert.equal(
      hex(loads ? f02(b, F.GUEST_IA32_DEBUGCTL) : b.v01.get(F.GUEST_IA32_DEBUGCTL)!),
      hex(debugctl),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Table 4: CR0/CR4 masks and read shadows. SDM 3C §25.3: a MOV from CR0/CR4 returns, for each
// bit set in the guest/host mask, the read-shadow bit, else the register's. L2 must read what it
// would under vmcs12; every MOV to CR that exits under vmcs12 must exit under vmcs02 (§25.1.3).
// ---------------------------------------------------------------------------------------------
interface CrRow {
  name: string;
  cr: 0 | 4;
  mask01?: number;
  mask12: number;
  shadow12: number;
  guest12: number;
}
const CR_ROWS: CrRow[] = [
  { name: 'CR0: L1 owns nothing', cr: 0, mask12: 0, shadow12: 0, guest12: 0x80000031 },
  {
    name: 'CR0: L1 owns PG and PE, shadows them set',
    cr: 0,
    mask12: 0x80000001,
    shadow12: 0x80000001,
    guest12: 0x80000031,
  },
  {
    name: 'CR0: L1 owns TS and shows it clear while it is set',
    cr: 0,
    mask12: 0x8,
    shadow12: 0,
    guest12: 0x80000039,
  },
  {
    name: 'CR0: L1 also owns NE (L0s bit) and shadows it clear',
    cr: 0,
    mask12: 0x20,
    shadow12: 0,
    guest12: 0x80000031,
  },
  { name: 'CR0: L1 owns every bit', cr: 0, mask12: 0xffffffff, shadow12: 0x60000010, guest12: 0x80000031 },
  {
    name: 'CR0: L0 owns CD/NW too (vmcs01), L1 owns WP',
    cr: 0,
    mask01: 0x60000020,
    mask12: 0x10000,
    shadow12: 0,
    guest12: 0x80010031,
  },
  {
    name: 'CR4: L1 owns nothing (VMXE is L0s, L2 sees vmcs12s guest CR4)',
    cr: 4,
    mask12: 0,
    shadow12: 0,
    guest12: 0x2020,
  },
  {
    name: 'CR4: L1 owns PAE and VMXE, shows VMXE clear',
    cr: 4,
    mask12: 0x2020,
    shadow12: 0x20,
    guest12: 0x2020,
  },
  { name: 'CR4: L1 owns PGE and OSXSAVE', cr: 4, mask12: 0x40080, shadow12: 0x80, guest12: 0x42020 },
];
for (const row of CR_ROWS) {
  test(`vmcs02 ${row.name}`, () => {
    const [maskF, shadowF, guestF] =
      row.cr === 0
        ? [F.CR0_GUEST_HOST_MASK, F.CR0_READ_SHADOW, F.GUEST_CR0]
        : [F.CR4_GUEST_HOST_MASK, F.CR4_READ_SHADOW, F.GUEST_CR4];
    const b = build(row.mask01 === undefined ? [] : [[maskF, row.mask01]], [
      [maskF, row.mask12],
      [shadowF, row.shadow12],
      [guestF, row.guest12],
    ]);
    const m01 = b.v01.get(maskF)!;
    const m12 = BigInt(row.mask12),
      s12 = BigInt(row.shadow12),
      g12 = BigInt(row.guest12);
    const m02 = f02(b, maskF),
      s02 = f02(b, shadowF),
      g02 = f02(b, guestF);
    assert.equal(hex(m02), hex(m01 | m12), 'mask02 = mask01 | mask12');
    assert.equal(hex(g02), hex(g12), 'the register itself is vmcs12s guest value');
    const view = (m: bigint, s: bigint, g: bigint): bigint => (s & m) | (g & ~m & 0xffffffffn);
    assert.equal(hex(view(m02, s02, g02)), hex(view(m12, s12, g12)), 'MOV from CR reads the same');
    // MOV to CR with each single-bit change of what L1 shows L2, and of L2's register.
    const exits = (m: bigint, s: bigint, value: bigint): boolean => ((value ^ s) & m) !== 0n;
    for (let bit = 0n; bit < 32n; bit++)
      for (const value of [s12 ^ (1n << bit), g12 ^ (1n << bit), view(m12, s12, g12) ^ (1n << bit)])
        if (exits(m12, s12, value))
          assert.ok(exits(m02, s02, value), `MOV to CR${row.cr} ${hex(value)} exits`);
  });
}

// ---------------------------------------------------------------------------------------------
// Table 5: #PF filtering. SDM 3C §25.2: with bit 14 of the exception bitmap set, a #PF exits iff
// (PFEC & mask) == match; with it clear, iff they differ. Every #PF L1 or L0 wants must exit under
// vmcs02; when L0 wants none, exactly those L1 wants.
// ---------------------------------------------------------------------------------------------
interface PfRow {
  name: string;
  exc01: number;
  mask01?: number;
  match01?: number;
  exc12: number;
  mask12: number;
  match12: number;
}
const PF_ROWS: PfRow[] = [
  { name: 'L1 wants every #PF (mask 0, match 0)', exc01: 0, exc12: 1 << 14, mask12: 0, match12: 0 },
  { name: 'L1 wants no #PF', exc01: 0, exc12: 0, mask12: 0, match12: 0 },
  { name: 'L1 wants only not-present #PFs (P=0)', exc01: 0, exc12: 1 << 14, mask12: 1, match12: 0 },
  { name: 'L1 wants user-mode write #PFs', exc01: 0, exc12: 1 << 14, mask12: 6, match12: 6 },
  {
    name: 'bit 14 clear: #PFs whose PFEC does not match exit (present ones)',
    exc01: 0,
    exc12: 0,
    mask12: 1,
    match12: 0,
  },
  { name: 'bit 14 clear with mask 0, match 1: every #PF exits', exc01: 0, exc12: 0, mask12: 0, match12: 1 },
  { name: 'L0 wants every #PF, L1 filters', exc01: 1 << 14, exc12: 1 << 14, mask12: 1, match12: 1 },
  { name: 'L0 wants every #PF, L1 none', exc01: 1 << 14, exc12: 0, mask12: 0, match12: 0 },
  {
    name: 'L0 wants instruction-fetch #PFs, L1 write #PFs',
    exc01: 1 << 14,
    mask01: 0x10,
    match01: 0x10,
    exc12: 1 << 14,
    mask12: 2,
    match12: 2,
  },
];
const pfExits = (exc: number, mask: number, match: number, pfec: number): boolean =>
  (((exc >> 14) & 1) === 1) === ((pfec & mask) === match);
for (const row of PF_ROWS) {
  test(`vmcs02 #PF filter: ${row.name}`, () => {
    const b = build(
      [
        [F.EXCEPTION_BITMAP, row.exc01],
        [F.PAGE_FAULT_ERROR_CODE_MASK, row.mask01 ?? 0],
        [F.PAGE_FAULT_ERROR_CODE_MATCH, row.match01 ?? 0],
      ],
      [
        [F.EXCEPTION_BITMAP, row.exc12],
        [F.PAGE_FAULT_ERROR_CODE_MASK, row.mask12],
        [F.PAGE_FAULT_ERROR_CODE_MATCH, row.match12],
      ],
    );
    const exc02 = Number(f02(b, F.EXCEPTION_BITMAP)),
      mask02 = Number(f02(b, F.PAGE_FAULT_ERROR_CODE_MASK)),
      match02 = Number(f02(b, F.PAGE_FAULT_ERROR_CODE_MATCH));
    const l0Wants = ((row.exc01 >> 14) & 1) === 1;
    // PFEC bits: P, W/R, U/S, RSVD, I/D, PK, and SGX (bit 15).
    for (const pfec of [...Array.from({ length: 64 }, (_, k) => k), 0x8000, 0x8007]) {
      const e01 = l0Wants && pfExits(row.exc01, row.mask01 ?? 0, row.match01 ?? 0, pfec);
      const e12 = pfExits(row.exc12, row.mask12, row.match12, pfec);
      const e02 = pfExits(exc02, mask02, match02, pfec);
      if (e01 || e12) assert.ok(e02, `PFEC ${hex(pfec)} must exit (L0 ${e01}, L1 ${e12})`);
      if (!l0Wants) assert.equal(e02, e12, `PFEC ${hex(pfec)}: exactly L1s #PF exits`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Table 6: MSR bitmaps (SDM 3C §24.6.9): an RDMSR/WRMSR exits under vmcs02 iff vmcs01's or
// vmcs12's bitmap says so; without MSR bitmaps in vmcs12 (or with a bitmap that is not RAM,
// which reads as all ones) every MSR access is L1's.
// ---------------------------------------------------------------------------------------------
const RD_LO = 0,
  RD_HI = 0x400,
  WR_LO = 0x800,
  WR_HI = 0xc00;
const MSR_PROBES: [number, number][] = [
  [RD_LO, 0x10],
  [WR_LO, 0x10],
  [RD_LO, 0x1b], // IA32_APIC_BASE: L0 traps it (vLAPIC)
  [WR_LO, 0x1b],
  [RD_LO, 0x3a], // IA32_FEATURE_CONTROL: L0 traps it (--nested)
  [RD_LO, 0x174],
  [WR_LO, 0x174],
  [RD_LO, 0x480],
  [RD_LO, 0x830], // x2APIC ICR
  [WR_LO, 0x1fff],
  [RD_HI, 0x80], // IA32_EFER (0xc0000080)
  [WR_HI, 0x80],
  [RD_HI, 0x100], // FS.base
  [WR_HI, 0x102], // KERNEL_GS_BASE
  [RD_HI, 0x1fff],
];
interface MsrRow {
  name: string;
  useBitmaps: boolean;
  bitmapAt: number;
  l1Bits: [number, number][];
}
const MSR_ROWS: MsrRow[] = [
  { name: 'L1 bitmap empty: only L0s MSRs exit', useBitmaps: true, bitmapAt: L1.MSR_BITMAP, l1Bits: [] },
  {
    name: 'L1 traps reads of 0x10 and writes of EFER: those exit too',
    useBitmaps: true,
    bitmapAt: L1.MSR_BITMAP,
    l1Bits: [
      [RD_LO, 0x10],
      [WR_HI, 0x80],
    ],
  },
  {
    name: 'L1 traps an MSR L0 also traps: still exits',
    useBitmaps: true,
    bitmapAt: L1.MSR_BITMAP,
    l1Bits: [
      [RD_LO, 0x1b],
      [WR_LO, 0x1fff],
      [RD_HI, 0x1fff],
    ],
  },
  { name: 'L1 without MSR bitmaps: every MSR exits', useBitmaps: false, bitmapAt: L1.MSR_BITMAP, l1Bits: [] },
  {
    name: 'L1 bitmap outside its RAM reads as all ones: every MSR exits',
    useBitmaps: true,
    bitmapAt: 0x40000000,
    l1Bits: [],
  },
];
for (const row of MSR_ROWS) {
  test(`vmcs02 MSR bitmap: ${row.name}`, () => {
    const fx = nestedFixture();
    for (const [off, msr] of row.l1Bits) l1SetBit(fx, L1.MSR_BITMAP + off, msr);
    const proc = (PROC_BASE | B.CPU_SECONDARY | (row.useBitmaps ? B.CPU_USE_MSR_BITMAPS : 0)) >>> 0;
    const b = build(
      [],
      [
        [F.CPU_BASED_VM_EXEC_CONTROL, proc],
        [F.MSR_BITMAP, row.bitmapAt],
      ],
      fx,
    );
    const mem = fx.h.mem;
    const bit = (base: number, off: number, msr: number): boolean =>
      ((mem.read8(base + off + (msr >> 3)) >> (msr & 7)) & 1) === 1;
    const bm02 = Number(f02(b, F.MSR_BITMAP));
    assert.ok(f02(b, F.CPU_BASED_VM_EXEC_CONTROL) & BigInt(B.CPU_USE_MSR_BITMAPS));
    const l1All = !row.useBitmaps || row.bitmapAt !== L1.MSR_BITMAP;
    for (const [off, msr] of MSR_PROBES) {
      const l0 = bit(fx.vm.msrBitmap, off, msr);
      const l1 = l1All || row.l1Bits.some(([o, m]) => o === off && m === msr);
      assert.equal(
        bit(bm02, off, msr),
        l0 || l1,
        `offset ${hex(off)} MSR bit ${hex(msr)} (L0 ${l0}, L1 ${l1})`,
      );
    }
    // The whole page: vmcs02's bitmap is exactly the OR.
    for (let off = 0; off < 4096; off += 4) {
      const l1 = l1All ? -1 : mem.read32(hpaOf(fx, L1.MSR_BITMAP) + off);
      assert.equal(
        mem.read32(bm02 + off),
        l1 | mem.read32(fx.vm.msrBitmap + off),
        `bitmap dword ${hex(off)}`,
      );
    }
  });
}

test('vmcs02 MSR bitmap follows L1s bitmap memory at every entry (no VMWRITE needed)', () => {
  const fx = nestedFixture();
  const b = build([], [], fx);
  const bm02 = Number(f02(b, F.MSR_BITMAP));
  const rd10 = (): number => fx.h.mem.read8(bm02 + (0x10 >> 3)) & 1;
  assert.equal(rd10(), 0);
  l1SetBit(fx, L1.MSR_BITMAP, 0x10); // L1 now traps RDMSR 0x10 (writes its bitmap page)
  assert.ok(fx.h.vmptrld(fx.v.vmcs01).ok);
  prepareVmcs02(fx.v, fx.n); // next nested entry, nothing marked dirty
  assert.equal(rd10(), 1);
});

// ---------------------------------------------------------------------------------------------
// I/O: vmcs02 exits on every I/O instruction (unconditional I/O exiting, no I/O bitmaps), so an
// access L1's bitmaps or vmcs01 trap always exits; l1WantsExit then filters (wants.test.ts).
// ---------------------------------------------------------------------------------------------
for (const [name, proc12] of [
  ['L1 with I/O bitmaps', PROC_BASE | B.CPU_USE_IO_BITMAPS | B.CPU_SECONDARY],
  ['L1 with unconditional I/O exiting', PROC_BASE | B.CPU_UNCOND_IO | B.CPU_SECONDARY],
  ['L1 letting every port through', PROC_BASE | B.CPU_SECONDARY],
] as const) {
  test(`vmcs02 I/O: every port access exits to L0 (${name})`, () => {
    const b = build([], [[F.CPU_BASED_VM_EXEC_CONTROL, proc12 >>> 0]]);
    const proc02 = Number(f02(b, F.CPU_BASED_VM_EXEC_CONTROL));
    assert.ok(proc02 & B.CPU_UNCOND_IO, 'unconditional I/O exiting');
    assert.equal(proc02 & B.CPU_USE_IO_BITMAPS, 0, 'no I/O bitmaps (they would override it, §25.1.3)');
  });
}

// ---------------------------------------------------------------------------------------------
// MSR-load/store lists: L1's lists copied to L0 pages (the hardware only sees host addresses).
// ---------------------------------------------------------------------------------------------
test('vmcs02 MSR lists: entry MSR-load list copied to an L0 page, exit MSR-store list indexes kept', () => {
  const fx = nestedFixture();
  const load: [number, bigint][] = [
    [0xc0000081, 0x0023001000000000n],
    [0x174, 0x10n],
  ];
  load.forEach(([msr, val], k) => {
    l1Write64(fx, L1.ENTRY_MSR_LOAD + 16 * k, BigInt(msr));
    l1Write64(fx, L1.ENTRY_MSR_LOAD + 16 * k + 8, val);
  });
  l1Write64(fx, L1.EXIT_MSR_STORE, 0xc0000102n);
  l1Write64(fx, L1.EXIT_MSR_STORE + 8, 0x1234n); // stale value: the store list's data is L1s output
  const b = build(
    [],
    [
      [F.VM_ENTRY_MSR_LOAD_COUNT, 2],
      [F.VM_ENTRY_MSR_LOAD_ADDR, L1.ENTRY_MSR_LOAD],
      [F.VM_EXIT_MSR_STORE_COUNT, 1],
      [F.VM_EXIT_MSR_STORE_ADDR, L1.EXIT_MSR_STORE],
      [F.VM_EXIT_MSR_LOAD_COUNT, 1],
      [F.VM_EXIT_MSR_LOAD_ADDR, L1.EXIT_MSR_LOAD],
    ],
    fx,
  );
  const mem = fx.h.mem;
  const r64 = (a: number): bigint => (BigInt(mem.read32(a + 4) >>> 0) << 32n) | BigInt(mem.read32(a) >>> 0);
  assert.equal(f02(b, F.VM_ENTRY_MSR_LOAD_COUNT), 2n);
  const at = Number(f02(b, F.VM_ENTRY_MSR_LOAD_ADDR));
  assert.equal(at, fx.n.entryMsrLoad02);
  load.forEach(([msr, val], k) => {
    assert.equal(r64(at + 16 * k) & 0xffffffffn, BigInt(msr));
    assert.equal(r64(at + 16 * k + 8), val);
  });
  assert.equal(f02(b, F.VM_EXIT_MSR_STORE_COUNT), 1n);
  const st = Number(f02(b, F.VM_EXIT_MSR_STORE_ADDR));
  assert.equal(st, fx.n.exitMsrStore02);
  assert.equal(r64(st) & 0xffffffffn, 0xc0000102n);
  // L1's VM-exit MSR-load list is loaded when L1 resumes (reflect.ts), not at an exit from L2 to L0.
  assert.equal(f02(b, F.VM_EXIT_MSR_LOAD_COUNT), 0n);
});

// ---------------------------------------------------------------------------------------------
// VPID (SDM 3C §28.3.3.3): without VPID in vmcs12, every VM entry to L2 must start with no
// cached linear translations for it.
// ---------------------------------------------------------------------------------------------
const NO_VPID: [string, Writes][] = [
  ['VPID disabled in the secondary controls', [[F.SECONDARY_VM_EXEC_CONTROL, B.SEC_EPT]]],
  [
    'secondary controls not activated (so no VPID, no EPT)',
    [[F.CPU_BASED_VM_EXEC_CONTROL, (PROC_BASE | B.CPU_USE_MSR_BITMAPS) >>> 0]],
  ],
];
for (const [name, w12] of NO_VPID) {
  test(`vmcs02 VPID: L1 without VPID (${name}): vpid02 flushed at every nested entry`, () => {
    const fx = nestedFixture();
    build([], w12, fx);
    const calls: [number, number][] = [];
    const orig = fx.h.invvpid.bind(fx.h);
    fx.h.invvpid = (type: number, vpid: number, linear = 0) => {
      calls.push([type, vpid]);
      return orig(type, vpid, linear);
    };
    assert.ok(fx.h.vmptrld(fx.v.vmcs01).ok);
    prepareVmcs02(fx.v, fx.n); // the next entry of the same L2
    // Single-context (1) or all-context (2) INVVPID covering vpid02, the VPID L2 runs with.
    const flushed = calls.some(([t, vpid]) => (t === 1 && vpid === fx.n.vpid02) || t === 2);
    assert.ok(flushed, JSON.stringify(calls));
  });
}

// ---------------------------------------------------------------------------------------------
// Table 6b: VPID sequences. Every VPID of L1 runs as vpid02, so vpid02's cached translations are
// those of the last L2 that ran. On hardware L1's VPIDs tag separate TLB contexts (SDM 3C §28.1,
// §28.3.3.3): an L2 entered with VPID v must not use translations cached for another VPID, nor
// for an L2 without VPID. So vpid02 must be flushed (INVVPID single-context of vpid02, or
// all-context) at an entry whose vmcs12 has VPID off, or whose VPID differs from the previous
// nested entry's (VPID or off). Same VPID as before (even from another vmcs12): no flush is
// required, so none is asserted. Observed twice: the INVVPID L0 issues on the VmxHost, and the
// hardware TLB context (vpid02, eptp02) losing translations cached in it (global ones too).
// Both vmcs12s use the same ept12, so their L2s share one ept02 and one TLB context.
// ---------------------------------------------------------------------------------------------
interface VpidStep {
  /** Which vmcs12 L1 enters with (VMPTRLD + VMLAUNCH/VMRESUME). */
  vmcs: 'A' | 'B';
  /** vmcs12's VPID, or 'off' (the "enable VPID" secondary control clear). */
  vpid: number | 'off';
}
interface VpidRow {
  name: string;
  steps: VpidStep[];
}
const VPID_ROWS: VpidRow[] = [
  {
    name: 'two vmcs12 with different VPIDs (A 1, B 2), alternating',
    steps: [
      { vmcs: 'A', vpid: 1 },
      { vmcs: 'B', vpid: 2 },
      { vmcs: 'A', vpid: 1 },
      { vmcs: 'B', vpid: 2 },
    ],
  },
  {
    name: 'one vmcs12 whose VPID L1 changes with VMWRITE (1 → 2 → 1)',
    steps: [
      { vmcs: 'A', vpid: 1 },
      { vmcs: 'A', vpid: 2 },
      { vmcs: 'A', vpid: 1 },
    ],
  },
  {
    name: 'the same VPID twice (no flush required), then another VPID',
    steps: [
      { vmcs: 'A', vpid: 5 },
      { vmcs: 'A', vpid: 5 },
      { vmcs: 'A', vpid: 6 },
    ],
  },
  {
    name: 'the same VPID in two vmcs12 (no flush required), then another VPID in the second',
    steps: [
      { vmcs: 'A', vpid: 3 },
      { vmcs: 'B', vpid: 3 },
      { vmcs: 'B', vpid: 4 },
      { vmcs: 'A', vpid: 3 },
    ],
  },
  {
    name: 'VPID off: every entry flushes',
    steps: [
      { vmcs: 'A', vpid: 'off' },
      { vmcs: 'A', vpid: 'off' },
      { vmcs: 'A', vpid: 'off' },
    ],
  },
  {
    name: 'VPID on → off → on with the same VPID (the off L2 ran tagged vpid02 too)',
    steps: [
      { vmcs: 'A', vpid: 1 },
      { vmcs: 'A', vpid: 'off' },
      { vmcs: 'A', vpid: 1 },
    ],
  },
  {
    name: 'VPID off in one vmcs12, VPID 1 in another',
    steps: [
      { vmcs: 'A', vpid: 'off' },
      { vmcs: 'B', vpid: 1 },
      { vmcs: 'A', vpid: 'off' },
      { vmcs: 'B', vpid: 1 },
    ],
  },
];
const sameVpid = (a: VpidStep, b: VpidStep | undefined): boolean => b !== undefined && a.vpid === b.vpid;
for (const dirtyMerge of [true, false]) {
  for (const row of VPID_ROWS) {
    test(`vmcs02 VPID flush (dirty merging ${dirtyMerge ? 'on' : 'off'}): ${row.name}`, () => {
      const fx = nestedFixture({ dirtyMerge });
      assert.equal(fx.v.host, fx.h, 'L0 uses the host interface the spy wraps');
      const calls: [number, number][] = [];
      const orig = fx.h.invvpid.bind(fx.h);
      fx.h.invvpid = (type: number, vpid: number, linear = 0) => {
        calls.push([type, vpid]);
        return orig(type, vpid, linear);
      };
      const tlbs = fx.h.cpu.vmx.tlbs;
      const v12s = { A: baseVmcs12(fx, L1.VMCS12), B: baseVmcs12(fx, L1.VMCS12_B) };
      /** L1's VMWRITEs of the VPID controls into vmcs12 (marked dirty, as the emulation does). */
      const setVpid = (v12: Vmcs, vpid: number | 'off', mark: boolean): void => {
        const writes: [number, number][] = [
          [F.SECONDARY_VM_EXEC_CONTROL, vpid === 'off' ? B.SEC_EPT : B.SEC_EPT | B.SEC_VPID],
          [F.VIRTUAL_PROCESSOR_ID, vpid === 'off' ? 0 : vpid],
        ];
        for (const [enc, val] of writes) {
          if (get12(v12, enc) === BigInt(val)) continue;
          set12(v12, enc, val);
          if (mark) fx.n.markDirty(enc);
        }
      };
      const VPN_G = 0x123,
        VPN_NG = 0x456;
      let prev: VpidStep | undefined;
      row.steps.forEach((step, k) => {
        const v12 = v12s[step.vmcs];
        // Translations L2 cached in vpid02's context while it ran (the previous step's vmcs02).
        let ctx: ReturnType<typeof tlbs.get> | undefined;
        if (k > 0) {
          ctx = tlbs.get(fx.n.vpid02, Number(rd(fx.h, F.EPT_POINTER)));
          ctx.fill(VPN_G, 0x5000, 0x5000, 0x3f, true, false);
          ctx.fill(VPN_NG, 0x6000, 0x6000, 0x3f, false, false);
          assert.ok(fx.h.vmptrld(fx.v.vmcs01).ok, 'back in L1 (vmcs01 current)');
        }
        setVpid(v12, step.vpid, fx.n.current === v12);
        fx.n.current = v12;
        calls.length = 0;
        prepareVmcs02(fx.v, fx.n);
        assert.equal(fx.h.vmptrst(), fx.n.vmcs02);
        assert.equal(rd(fx.h, F.VIRTUAL_PROCESSOR_ID), BigInt(fx.n.vpid02), 'L2 runs tagged vpid02');
        const required = step.vpid === 'off' || (k > 0 && !sameVpid(step, prev));
        const what = `step ${k} (vmcs12 ${step.vmcs}, VPID ${step.vpid}; before: ${prev ? `${prev.vmcs}, ${prev.vpid}` : 'none'})`;
        if (required) {
          assert.ok(
            calls.some(([t, vpid]) => (t === 1 && vpid === fx.n.vpid02) || t === 2),
            `${what}: INVVPID of vpid02 ${fx.n.vpid02} required, issued ${JSON.stringify(calls)}`,
          );
          if (ctx) {
            assert.ok(Number.isNaN(ctx.tag[VPN_G]), `${what}: global translation of the previous L2 gone`);
            assert.ok(Number.isNaN(ctx.tag[VPN_NG]), `${what}: translation of the previous L2 gone`);
          }
        }
        prev = step;
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Table 7: dirty merging. After a first (full) build, L1 writes some vmcs12 fields (L0's VMWRITE
// emulation marks them dirty) and enters again: the vmcs02 built from the dirty fields only must
// equal the one a full copy gives.
// ---------------------------------------------------------------------------------------------
interface DirtyRow {
  name: string;
  writes: Writes;
}
const DIRTY_ROWS: DirtyRow[] = [
  { name: 'nothing written', writes: [] },
  {
    name: 'guest RIP, RSP, RFLAGS (an exit handler skipping an instruction)',
    writes: [
      [F.GUEST_RIP, 0x100002],
      [F.GUEST_RSP, 0x1fffe0],
      [F.GUEST_RFLAGS, 0x246],
    ],
  },
  { name: 'guest CR0 (the read shadow depends on it)', writes: [[F.GUEST_CR0, 0x80000033]] },
  {
    name: 'CR0 mask and read shadow',
    writes: [
      [F.CR0_GUEST_HOST_MASK, 0x80000001],
      [F.CR0_READ_SHADOW, 0x1],
    ],
  },
  {
    name: 'guest CR4 with CR4 mask and shadow',
    writes: [
      [F.GUEST_CR4, 0x22a0],
      [F.CR4_GUEST_HOST_MASK, 0x80],
      [F.CR4_READ_SHADOW, 0],
    ],
  },
  { name: 'exception bitmap', writes: [[F.EXCEPTION_BITMAP, (1 << 6) | (1 << 14)]] },
  {
    name: '#PF error-code mask and match',
    writes: [
      [F.PAGE_FAULT_ERROR_CODE_MASK, 1],
      [F.PAGE_FAULT_ERROR_CODE_MATCH, 1],
    ],
  },
  {
    name: 'processor-based controls (HLT and interrupt-window exiting)',
    writes: [
      [F.CPU_BASED_VM_EXEC_CONTROL, (PROC_BASE | B.CPU_SECONDARY | B.CPU_HLT | B.CPU_INTR_WINDOW) >>> 0],
    ],
  },
  {
    name: 'secondary controls (WBINVD exiting, no VPID)',
    writes: [[F.SECONDARY_VM_EXEC_CONTROL, B.SEC_EPT | B.SEC_WBINVD]],
  },
  { name: 'pin-based controls (NMI exiting)', writes: [[F.PIN_BASED_VM_EXEC_CONTROL, 0x16 | B.PIN_NMI]] },
  {
    name: 'TSC offsetting switched on with an offset',
    writes: [
      [F.CPU_BASED_VM_EXEC_CONTROL, (PROC_BASE | B.CPU_SECONDARY | B.CPU_TSC_OFFSETTING) >>> 0],
      [F.TSC_OFFSET, 0x100000],
    ],
  },
  { name: 'a new EPTP (another ept12)', writes: [[F.EPT_POINTER, eptpFor(L1.EPT12 + 0x80000)]] },
  { name: 'a new VPID', writes: [[F.VIRTUAL_PROCESSOR_ID, 9]] },
  {
    name: 'CR3-target count and values',
    writes: [
      [F.CR3_TARGET_COUNT, 2],
      [F.CR3_TARGET_VALUE0, 0x51000],
      [F.CR3_TARGET_VALUE_1, 0x61000],
    ],
  },
  {
    name: 'preemption timer: activated, value, save at exit',
    writes: [
      [F.PIN_BASED_VM_EXEC_CONTROL, 0x16 | B.PIN_PREEMPTION_TIMER],
      [F.VMX_PREEMPTION_TIMER_VALUE, 4242],
      [F.VM_EXIT_CONTROLS, 0x36dfb | B.EXIT_HOST_ADDR_SPACE | B.EXIT_SAVE_PREEMPT],
    ],
  },
  { name: 'VM-entry controls', writes: [[F.VM_ENTRY_CONTROLS, 0x11fb | B.ENTRY_IA32E | B.ENTRY_LOAD_EFER]] },
  {
    name: 'TPR shadow with a virtual-APIC page and threshold',
    writes: [
      [F.CPU_BASED_VM_EXEC_CONTROL, (PROC_BASE | B.CPU_SECONDARY | B.CPU_TPR_SHADOW) >>> 0],
      [F.VIRTUAL_APIC_PAGE_ADDR, L1.VAPIC],
      [F.TPR_THRESHOLD, 3],
    ],
  },
  {
    name: 'event injection',
    writes: [
      [F.VM_ENTRY_INTR_INFO_FIELD, 0x80000020],
      [F.VM_ENTRY_INSTRUCTION_LEN, 0],
    ],
  },
  {
    name: 'interruptibility, activity state, pending debug exceptions',
    writes: [
      [F.GUEST_INTERRUPTIBILITY_INFO, 1],
      [F.GUEST_ACTIVITY_STATE, 1],
      [F.GUEST_PENDING_DBG_EXCEPTIONS, 0x4000],
    ],
  },
  {
    name: 'segment state (FS/GS bases and selectors)',
    writes: [
      [F.GUEST_FS_BASE, 0x7f1234560000n],
      [F.GUEST_GS_SELECTOR, 0x2b],
      [F.GUEST_GS_BASE, 0xffff888000000000n],
    ],
  },
  { name: 'MSR bitmap address (re-merged each entry)', writes: [[F.MSR_BITMAP, L1.MSR_BITMAP + 0x10000]] },
  {
    name: 'entry MSR-load list',
    writes: [
      [F.VM_ENTRY_MSR_LOAD_COUNT, 1],
      [F.VM_ENTRY_MSR_LOAD_ADDR, L1.ENTRY_MSR_LOAD],
    ],
  },
  { name: 'I/O bitmap address (not a vmcs02 input)', writes: [[F.IO_BITMAP_A, L1.IO_A + 0x10000]] },
  {
    name: 'L1s host state (not a vmcs02 input)',
    writes: [
      [F.HOST_RIP, 0x402000],
      [F.HOST_RSP, 0x5fe000],
    ],
  },
  { name: 'VMCS link pointer (never copied)', writes: [[F.VMCS_LINK_POINTER, 0x620000]] },
];
for (const row of DIRTY_ROWS) {
  test(`vmcs02 dirty merging equals a full copy: ${row.name}`, () => {
    const fx = nestedFixture({ dirtyMerge: true });
    l1Write64(fx, L1.ENTRY_MSR_LOAD, 0x174n);
    l1Write64(fx, L1.ENTRY_MSR_LOAD + 8, 0x8n);
    const b = build([], [], fx);
    for (const [enc, val] of row.writes) {
      set12(b.v12, enc, val);
      fx.n.markDirty(enc);
    }
    assert.ok(fx.h.vmptrld(fx.v.vmcs01).ok);
    prepareVmcs02(fx.v, fx.n);
    const merged = dumpCurrent(fx.h);
    assert.ok(fx.h.vmptrld(fx.v.vmcs01).ok);
    fx.n.allDirty = true; // as if every field had been written: a full copy
    prepareVmcs02(fx.v, fx.n);
    const full = dumpCurrent(fx.h);
    for (const enc of VMCS_FIELD_INDEX.encodings)
      assert.equal(hex(merged.get(enc) ?? -1n), hex(full.get(enc) ?? -1n), `field ${hex(enc)}`);
    for (const [enc, val] of row.writes)
      if (GUEST_FIELDS.has(enc))
        assert.equal(hex(merged.get(enc)!), hex(BigInt(val)), `guest field ${hex(enc)}`);
  });
}

// Dirty merging copies only what L1 wrote: a vmcs12 change L0 was not told about (no VMWRITE)
// stays out of vmcs02; without the optimization every entry copies everything.
for (const [dirtyMerge, copied] of [
  [true, false],
  [false, true],
] as const) {
  test(`vmcs02 guest state with dirty merging ${dirtyMerge ? 'on' : 'off'}: an unwritten change is ${copied ? '' : 'not '}copied`, () => {
    const fx = nestedFixture({ dirtyMerge });
    const b = build([], [], fx);
    set12(b.v12, F.GUEST_RIP, 0xabcdef); // not marked dirty
    fx.n.markDirty(F.GUEST_RSP);
    set12(b.v12, F.GUEST_RSP, 0x8000);
    assert.ok(fx.h.vmptrld(fx.v.vmcs01).ok);
    prepareVmcs02(fx.v, fx.n);
    assert.equal(rd(fx.h, F.GUEST_RSP), 0x8000n);
    assert.equal(rd(fx.h, F.GUEST_RIP), copied ? 0xabcdefn : get12(baseVmcs12(fx), F.GUEST_RIP));
  });
}

test('vmcs02 rebuilt in full when L1 switches to another vmcs12', () => {
  const fx = nestedFixture({ dirtyMerge: true });
  build([], [], fx);
  const other = baseVmcs12(fx, L1.VMCS12_B);
  set12(other, F.GUEST_RIP, 0x222000);
  set12(other, F.EXCEPTION_BITMAP, 1 << 13);
  fx.n.current = other;
  assert.ok(fx.h.vmptrld(fx.v.vmcs01).ok);
  prepareVmcs02(fx.v, fx.n);
  assert.equal(rd(fx.h, F.GUEST_RIP), 0x222000n);
  assert.equal(rd(fx.h, F.EXCEPTION_BITMAP) & (1n << 13n), 1n << 13n);
});
