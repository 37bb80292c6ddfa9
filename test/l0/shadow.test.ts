/**
 * Shadow paging in L0 (--mmu shadow, and --no-ept): the guest page walk as a table of cases
 * (modes, rights, faults with their error codes, accessed/dirty flags), shadow entries and
 * tables, the shadow MMU fed synthetic #PF/MTF exits against a real vmcs01 (fill, reflect,
 * write tracking, flooding, the CR3 cache, hostile tables), and whole kernels that must print
 * the same results bare and under shadow paging.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine, PhysMem, VMCS_FIELD as F, EXIT_REASON as R, type ExitRecord } from '../../src/hw/index.js';
import { L0, hostMemMiB, type Vm } from '../../src/l0/index.js';
import { EXIT_HANDLERS } from '../../src/l0/vmm/exits.js';
import {
  walkGuest,
  type GuestPaging,
  type GuestAccess,
  type GuestWalk,
} from '../../src/l0/mmu/guest-walk.js';
import { ShadowRoot, shadowLeaf } from '../../src/l0/mmu/shadow-tables.js';
import { shadowOf, rootKey } from '../../src/l0/mmu/shadow.js';
import { runKernel } from '../support/run-kernel.js';

// ---------------------------------------------------------------- the guest walk

const P = 1n,
  W = 2n,
  U = 4n,
  A = 0x20n,
  D = 0x40n,
  PS = 0x80n,
  XD = 1n << 63n;
const PG = 0x80000000n,
  PE = 1n,
  WP = 0x10000n;
const PSE = 0x10n,
  PAE = 0x20n,
  SMEP = 1n << 20n,
  SMAP = 1n << 21n;
const LME = 0x100n,
  LMA = 0x400n,
  NXE = 0x800n;

/** Guest memory for walk tests: 2 MiB of RAM (anything above is "outside RAM"). */
function ram(): { g: { gpaToHpa(gpa: number): number; host: { mem: PhysMem } }; mem: PhysMem } {
  const mem = new PhysMem(4 * 1048576);
  return { g: { gpaToHpa: (a) => (a >= 0 && a < 2 * 1048576 ? a : -1), host: { mem } }, mem };
}
const put64 = (mem: PhysMem, a: number, v: bigint): void => {
  mem.write32(a, Number(v & 0xffffffffn) | 0);
  mem.write32(a + 4, Number(v >> 32n) | 0);
};
const get64 = (mem: PhysMem, a: number): bigint =>
  (BigInt(mem.read32(a + 4) >>> 0) << 32n) | BigInt(mem.read32(a) >>> 0);

const long = (cr0 = PG | PE | WP, cr4 = PAE, efer = LME | LMA | NXE): GuestPaging => ({
  cr0,
  cr3: 0x1000n,
  cr4,
  efer,
});
const R_ = { write: false, user: false, fetch: false };
const Wr = { write: true, user: false, fetch: false };
const UR = { write: false, user: true, fetch: false };
const UW = { write: true, user: true, fetch: false };
const X = { write: false, user: false, fetch: true };

/** 4-level tables: PML4 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000; la 0x400000 → frame 0x10000. */
function fourLevel(leaf: bigint): PhysMem {
  const { mem } = ram();
  put64(mem, 0x1000, 0x2000n | P | W | U);
  put64(mem, 0x2000, 0x3000n | P | W | U);
  put64(mem, 0x3000 + 8 * 2, 0x4000n | P | W | U);
  put64(mem, 0x4000, leaf);
  return mem;
}
const g4 = (mem: PhysMem) => ({
  gpaToHpa: (a: number) => (a >= 0 && a < 2 * 1048576 ? a : -1),
  host: { mem },
});

interface WalkCase {
  name: string;
  leaf: bigint;
  paging?: GuestPaging;
  la?: number | bigint;
  access: GuestAccess;
  /** gpa on success, or the fault. */
  want: { gpa: number } | { errorCode: number } | { kind: string };
  setup?: (mem: PhysMem) => void;
}
const walkCases: WalkCase[] = [
  { name: 'read of a present user page', leaf: 0x10000n | P | W | U, access: UR, want: { gpa: 0x10123 } },
  { name: 'not present: error code 0 plus W/U', leaf: 0x10000n, access: UW, want: { errorCode: 6 } },
  { name: 'not present supervisor read: error code 0', leaf: 0n, access: R_, want: { errorCode: 0 } },
  { name: 'user read of a supervisor page: P|U', leaf: 0x10000n | P | W, access: UR, want: { errorCode: 5 } },
  {
    name: 'user write to a read-only page: P|W|U',
    leaf: 0x10000n | P | U,
    access: UW,
    want: { errorCode: 7 },
  },
  {
    name: 'supervisor write to read-only, WP=1: P|W',
    leaf: 0x10000n | P | U,
    access: Wr,
    want: { errorCode: 3 },
  },
  {
    name: 'supervisor write to read-only, WP=0: allowed',
    leaf: 0x10000n | P | U,
    paging: long(PG | PE),
    access: Wr,
    want: { gpa: 0x10123 },
  },
  {
    name: 'fetch from an XD page with NXE: P|I/D',
    leaf: 0x10000n | P | XD,
    access: X,
    want: { errorCode: 0x11 },
  },
  {
    name: 'XD set without NXE is a reserved bit: P|RSVD',
    leaf: 0x10000n | P | XD,
    paging: long(PG | PE | WP, PAE, LME | LMA),
    access: R_,
    want: { errorCode: 9 },
  },
  {
    name: 'address bits above MAXPHYADDR are reserved',
    leaf: (1n << 45n) | P,
    access: R_,
    want: { errorCode: 9 },
  },
  {
    name: 'SMEP: supervisor fetch from a user page: P|I/D',
    leaf: 0x10000n | P | U,
    paging: long(PG | PE | WP, PAE | SMEP),
    access: X,
    want: { errorCode: 0x11 },
  },
  {
    name: 'SMAP: supervisor read of a user page with AC=0: P',
    leaf: 0x10000n | P | U,
    paging: long(PG | PE | WP, PAE | SMAP),
    access: R_,
    want: { errorCode: 1 },
  },
  {
    name: 'SMAP: with AC=1 allowed',
    leaf: 0x10000n | P | U,
    paging: long(PG | PE | WP, PAE | SMAP),
    access: { ...R_, ac: true },
    want: { gpa: 0x10123 },
  },
  {
    name: 'SMAP: implicit supervisor access ignores AC',
    leaf: 0x10000n | P | U,
    paging: long(PG | PE | WP, PAE | SMAP),
    access: { ...R_, ac: true, implicit: true },
    want: { errorCode: 1 },
  },
  {
    name: '2 MiB page',
    leaf: 0n,
    la: 0x600123,
    setup: (m) => put64(m, 0x3000 + 8 * 3, 0x1a00000n | P | PS),
    access: R_,
    want: { gpa: 0x1a00123 },
  },
  {
    name: '2 MiB page with bit 13 set: reserved',
    leaf: 0n,
    la: 0x600123,
    setup: (m) => put64(m, 0x3000 + 8 * 3, 0x1a02000n | P | PS),
    access: R_,
    want: { errorCode: 9 },
  },
  {
    name: '1 GiB page',
    leaf: 0n,
    la: 0x40000000 + 0x345678,
    setup: (m) => put64(m, 0x2000 + 8, 0x80000000n | P | PS),
    access: R_,
    want: { gpa: 0x80345678 },
  },
  {
    name: 'PS in a PML4 entry is reserved',
    leaf: 0n,
    la: 2 ** 39,
    setup: (m) => put64(m, 0x1000 + 8, 0x2000n | P | PS),
    access: R_,
    want: { errorCode: 9 },
  },
  { name: 'non-canonical address', leaf: 0n, la: 2 ** 47, access: R_, want: { kind: 'non-canonical' } },
  {
    name: 'upper-half address as a 64-bit bigint',
    leaf: 0n,
    la: 0xfffffffffffff123n,
    setup: (m) => {
      put64(m, 0x1000 + 8 * 511, 0x5000n | P | W);
      put64(m, 0x5000 + 8 * 511, 0x6000n | P | W);
      put64(m, 0x6000 + 8 * 511, 0x7000n | P | W);
      put64(m, 0x7000 + 8 * 511, 0x9000n | P | W);
    },
    access: R_,
    want: { gpa: 0x9123 },
  },
  {
    name: 'a table outside RAM',
    leaf: 0n,
    la: 2 * 2 ** 39,
    setup: (m) => put64(m, 0x1000 + 16, 0x40000000n | P | W),
    access: R_,
    want: { kind: 'table-outside-ram' },
  },
  {
    name: 'a PML4 entry pointing at the PML4 itself: the walk ends (4 levels)',
    leaf: 0n,
    la: 3 * 2 ** 39 + 3 * 2 ** 30 + 3 * 2 ** 21 + 3 * 4096 + 8,
    setup: (m) => put64(m, 0x1000 + 24, 0x1000n | P | W),
    access: R_,
    want: { gpa: 0x1008 },
  },
  // 32-bit paging: PD at 0x1000, PT at 0x2000; la 0x00401123 → PDE[1] → PTE[1] → 0x5000.
  {
    name: '32-bit paging, 4 KiB page',
    leaf: 0n,
    paging: { cr0: PG | PE | WP, cr3: 0x1000n, cr4: 0n, efer: 0n },
    la: 0x00401123,
    setup: (m) => {
      m.write32(0x1000 + 4, 0x2000 | 7);
      m.write32(0x2000 + 4, 0x5000 | 7);
    },
    access: UW,
    want: { gpa: 0x5123 },
  },
  {
    name: '32-bit paging, 4 MiB page with PSE',
    leaf: 0n,
    paging: { cr0: PG | PE, cr3: 0x1000n, cr4: PSE, efer: 0n },
    la: 0x00812345,
    setup: (m) => m.write32(0x1000 + 8, 0x800000 | 0x83),
    access: Wr,
    want: { gpa: 0x812345 },
  },
  {
    name: '32-bit paging, PS without PSE: the PDE points at a page table (outside RAM here)',
    leaf: 0n,
    paging: { cr0: PG | PE, cr3: 0x1000n, cr4: 0n, efer: 0n },
    la: 0x00812345,
    setup: (m) => m.write32(0x1000 + 8, 0x800000 | 0x83),
    access: R_,
    want: { kind: 'table-outside-ram' },
  },
  {
    name: '32-bit paging, 4 MiB page with bit 21 set: reserved',
    leaf: 0n,
    paging: { cr0: PG | PE, cr3: 0x1000n, cr4: PSE, efer: 0n },
    la: 0x00812345,
    setup: (m) => m.write32(0x1000 + 8, 0x800000 | (1 << 21) | 0x83),
    access: R_,
    want: { errorCode: 9 },
  },
  {
    name: '32-bit paging with NXE: a not-present fetch has no I/D flag (SDM 3A §4.7)',
    leaf: 0n,
    paging: { cr0: PG | PE, cr3: 0x1000n, cr4: 0n, efer: NXE },
    la: 0x00c00000,
    access: X,
    want: { errorCode: 0 },
  },
  // PAE: PDPT at 0x1000 (4 entries), PDPTE[1] → PD 0x2000; PDE[0] a 2 MiB page.
  {
    name: 'PAE, 2 MiB page',
    leaf: 0n,
    paging: { cr0: PG | PE, cr3: 0x1000n, cr4: PAE, efer: NXE },
    la: 0x40012345,
    setup: (m) => {
      put64(m, 0x1000 + 8, 0x2000n | P);
      put64(m, 0x2000, 0x600000n | P | W | PS);
    },
    access: Wr,
    want: { gpa: 0x612345 },
  },
  {
    name: 'PAE, a PDPTE with R/W set: reserved',
    leaf: 0n,
    paging: { cr0: PG | PE, cr3: 0x1000n, cr4: PAE, efer: 0n },
    la: 0x40012345,
    setup: (m) => put64(m, 0x1000 + 8, 0x2000n | P | W),
    access: R_,
    want: { errorCode: 9 },
  },
  {
    name: 'PAE with NXE: a not-present fetch reports I/D',
    leaf: 0n,
    paging: { cr0: PG | PE, cr3: 0x1000n, cr4: PAE, efer: NXE },
    la: 0xc0000000,
    access: X,
    want: { errorCode: 0x10 },
  },
  {
    name: 'paging off: linear = physical (32 bits)',
    leaf: 0n,
    paging: { cr0: PE, cr3: 0n, cr4: 0n, efer: 0n },
    la: 0x1_0001_2345,
    access: UW,
    want: { gpa: 0x12345 },
  },
];

for (const c of walkCases) {
  test(`guest walk: ${c.name}`, () => {
    const mem = fourLevel(c.leaf);
    if (c.paging && !(c.paging.efer & LMA)) mem.u8.fill(0, 0x1000, 0x5000); // not the 4-level tables
    c.setup?.(mem);
    const r: GuestWalk = walkGuest(g4(mem), c.paging ?? long(), c.la ?? 0x400123, c.access, true);
    if ('gpa' in c.want) {
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.gpa, c.want.gpa);
    } else if ('errorCode' in c.want) {
      assert.ok(!r.ok && r.kind === 'page-fault', JSON.stringify(r));
      assert.equal(r.errorCode, c.want.errorCode);
    } else {
      assert.ok(!r.ok, JSON.stringify(r));
      assert.equal(r.kind, c.want.kind);
    }
  });
}

test('guest walk: accessed on the path, dirty on writes, nothing on a fault or without setAccessedDirty', () => {
  const mem = fourLevel(0x10000n | P | W | U);
  const g = g4(mem);
  const path = [0x1000, 0x2000, 0x3000 + 16, 0x4000];
  let r = walkGuest(g, long(), 0x400000, UR, false);
  assert.ok(r.ok);
  assert.deepEqual(r.entries, path);
  for (const a of path) assert.equal(get64(mem, a) & (A | D), 0n, 'no A/D without setAccessedDirty');
  r = walkGuest(g, long(), 0x400000, { ...UW, fetch: false }, true);
  assert.ok(r.ok && r.dirty && r.writable && r.user && !r.nx);
  for (const a of path.slice(0, 3)) assert.equal(get64(mem, a) & (A | D), A, `A on ${a.toString(16)}`);
  assert.equal(get64(mem, 0x4000) & (A | D), A | D);
  // A faulting walk (user write to a page made read-only) sets nothing new.
  const m2 = fourLevel(0x10000n | P | U);
  const f = walkGuest(g4(m2), long(), 0x400000, UW, true);
  assert.ok(!f.ok && f.errorCode === 7);
  for (const a of path) assert.equal(get64(m2, a) & (A | D), 0n);
  // 32-bit paging: 4-byte entries; a read sets A but not D.
  const { mem: m3 } = ram();
  m3.write32(0x1000 + 4, 0x2000 | 7);
  m3.write32(0x2000 + 4, 0x5000 | 7);
  const r3 = walkGuest(g4(m3), { cr0: PG | PE, cr3: 0x1000n, cr4: 0n, efer: 0n }, 0x401000, UR, true);
  assert.ok(r3.ok && r3.entrySize === 4 && !r3.dirty);
  assert.deepEqual(r3.entries, [0x1004, 0x2004]);
  assert.equal(m3.read32(0x2004) & 0x60, 0x20);
});

// ---------------------------------------------------------------- shadow entries and tables

test('shadow leaf: frame, P, A, W+D only when writable, U, XD', () => {
  assert.deepEqual(shadowLeaf(0x12345000, { writable: true, user: true, nx: false }), [0x12345000 | 0x67, 0]);
  assert.deepEqual(shadowLeaf(0x12345000, { writable: false, user: false, nx: true }), [
    0x12345000 | 0x21,
    0x80000000 | 0,
  ]);
  assert.deepEqual(shadowLeaf(0x312345000, { writable: false, user: true, nx: false }), [
    0x12345000 | 0x25,
    3,
  ]);
});

for (const format of ['pae', '4-level'] as const) {
  test(`shadow root (${format}): leaves land where the hardware walk finds them`, () => {
    const mem = new PhysMem(4 * 1048576);
    let next = 0x100000;
    const alloc = (): number => {
      const p = next;
      next += 4096;
      mem.u8.fill(0, p, p + 4096);
      return p;
    };
    const root = new ShadowRoot('k', format, mem, alloc);
    const g = { gpaToHpa: (a: number) => (a < 4 * 1048576 ? a : -1), host: { mem } };
    const paging: GuestPaging =
      format === 'pae'
        ? { cr0: PG | PE | WP, cr3: BigInt(root.cr3), cr4: PAE, efer: NXE }
        : { cr0: PG | PE | WP, cr3: BigInt(root.cr3), cr4: PAE, efer: LME | LMA | NXE };
    const las =
      format === 'pae'
        ? [0, 0x3ffff000, 0xc0001000, 0xfffff000]
        : [0, 0x7fff_ffff_f000, -0x1000, 0x40_0000_0000];
    las.forEach((la, k) => {
      assert.equal(root.leafSlot(la, false), -1, 'no page table before the first fill');
      const slot = root.leafSlot(la, true);
      const [lo, hi] = shadowLeaf(0x200000 + k * 4096, { writable: k % 2 === 0, user: k < 2, nx: k === 3 });
      mem.write32(slot, lo);
      mem.write32(slot + 4, hi);
      assert.equal(root.leafSlot(la, false), slot);
    });
    las.forEach((la, k) => {
      const r = walkGuest(g, paging, la + 0x10, { write: false, user: false, fetch: false }, false);
      assert.ok(r.ok, `la ${la.toString(16)}: ${JSON.stringify(r)}`);
      assert.equal(r.gpa, 0x200000 + k * 4096 + 0x10);
      assert.equal(r.writable, k % 2 === 0);
      assert.equal(r.user, k < 2);
      assert.equal(r.nx, k === 3);
    });
    const pages = root.pages.length;
    assert.ok(pages >= (format === 'pae' ? 5 : 4));
    const freed: number[] = [];
    root.free((p) => freed.push(p));
    assert.equal(freed.length, pages);
  });
}

test('root keys: the guest root and the bits that change translation, not the PCID', () => {
  const k = rootKey(long());
  assert.equal(rootKey({ ...long(), cr3: 0x1005n }), k);
  assert.notEqual(rootKey({ ...long(), cr3: 0x2000n }), k);
  assert.notEqual(rootKey(long(PG | PE)), k, 'WP');
  assert.notEqual(rootKey(long(PG | PE | WP, PAE, LME | LMA)), k, 'NXE');
  assert.equal(rootKey({ cr0: PE, cr3: 0x5000n, cr4: 0n, efer: 0n }), 'off');
});

// ---------------------------------------------------------------- the shadow MMU, fed synthetic exits

/** A VM under shadow paging with hello.elf loaded, its vCPU current, running on 4-level guest tables. */
function shadowVm(): { vm: Vm; l0: L0 } {
  const m = new Machine({
    memMiB: hostMemMiB([{ memMiB: 16 }]),
    serial: () => {},
    vmx: { ept: false, unrestrictedGuest: false },
  });
  const l0 = new L0(m);
  const vm = l0.addVm({ name: 'hello', memMiB: 16, cpus: 1, serial: () => {} });
  assert.equal(vm.mmu, 'shadow', 'no EPT in the machine: shadow paging');
  vm.load(new Uint8Array(readFileSync('guests/build/hello.elf')), 'hello.elf', '', []);
  l0.switchTo(vm.vcpus[0]);
  // Guest tables at 8 MiB: PML4 0x800000 → PDPT 0x801000 → PD 0x802000 → PT 0x803000.
  const g = (a: number): number => vm.gpaToHpa(a);
  const mem = vm.host.mem;
  put64(mem, g(0x800000), 0x801000n | P | W | U);
  put64(mem, g(0x801000), 0x802000n | P | W | U);
  put64(mem, g(0x802000 + 8 * 2), 0x803000n | P | W | U);
  put64(mem, g(0x803000), 0x900000n | P | W | U); // la 0x400000 → 0x900000
  put64(mem, g(0x803000 + 8), 0x803000n | P | W); // la 0x401000 → the page table itself
  const v = vm.vcpus[0];
  v.guestCr3 = 0x800000n;
  v.guestEfer = LME | LMA | NXE;
  const h = vm.host;
  h.vmwrite(F.CR0_READ_SHADOW, PG | PE | WP | 0x10n);
  h.vmwrite(F.CR4_READ_SHADOW, PAE);
  shadowOf(vm).activate(v);
  return { vm, l0 };
}
function pfExit(la: bigint, ec: number): ExitRecord {
  return {
    kind: 'exit',
    reason: R.EXCEPTION_NMI,
    rawReason: R.EXCEPTION_NMI,
    qualification: la,
    guestLinearAddress: 0n,
    guestPhysicalAddress: 0n,
    instructionLength: 0,
    instructionInfo: 0,
    interruptionInfo: 0x80000b0e,
    interruptionErrorCode: ec,
    idtVectoringInfo: 0,
    idtVectoringErrorCode: 0,
  };
}
const mtf: ExitRecord = {
  ...pfExit(0n, 0),
  reason: R.MONITOR_TRAP_FLAG,
  rawReason: R.MONITOR_TRAP_FLAG,
  interruptionInfo: 0,
};
const handle = (vm: Vm, e: ExitRecord): void =>
  EXIT_HANDLERS[e.reason as keyof typeof EXIT_HANDLERS].handle({
    vm,
    vcpu: vm.vcpus[0],
    host: vm.host,
    exit: e,
  });
/** The shadow leaf for `la` in the vCPU's root (0n when none). */
function leaf(vm: Vm, la: number): bigint {
  const root = shadowOf(vm).rootOf(vm.vcpus[0])!;
  const s = root.leafSlot(la, false);
  return s < 0 ? 0n : get64(vm.host.mem, s);
}
const injected = (vm: Vm): number => Number(vm.host.vmread(F.VM_ENTRY_INTR_INFO_FIELD) as bigint);
const mtfOn = (vm: Vm): boolean =>
  ((vm.host.vmread(F.CPU_BASED_VM_EXEC_CONTROL) as bigint) & (1n << 27n)) !== 0n;

test('shadow #PF: a fill maps the guest frame, sets the guest A flag, injects nothing', () => {
  const { vm } = shadowVm();
  handle(vm, pfExit(0x400010n, 0));
  const e = leaf(vm, 0x400000);
  assert.equal(e & ~0xfffn & ((1n << 52n) - 1n), BigInt(vm.gpaToHpa(0x900000)));
  assert.equal(e & (P | W | U), P | U, 'read-only until the guest page is dirty');
  assert.equal(get64(vm.host.mem, vm.gpaToHpa(0x803000)) & (A | D), A);
  assert.equal(injected(vm) & 0x80000000, 0);
  // A write: D set in the guest, the leaf becomes writable.
  handle(vm, pfExit(0x400010n, 3));
  assert.equal(leaf(vm, 0x400000) & (P | W | U), P | W | U);
  assert.equal(get64(vm.host.mem, vm.gpaToHpa(0x803000)) & (A | D), A | D);
  assert.equal(vm.end, undefined);
});

test("shadow #PF: the guest's own fault is reflected with its error code and CR2", () => {
  const { vm } = shadowVm();
  handle(vm, pfExit(0x405000n, 4)); // PTE 5 is not present: user read
  assert.equal(injected(vm) >>> 0, 0x80000b0e);
  assert.equal(Number(vm.host.vmread(F.VM_ENTRY_EXCEPTION_ERROR_CODE) as bigint), 4);
  assert.equal(vm.host.getCr2(), 0x405000n);
  assert.equal(leaf(vm, 0x405000) & P, 0n);
  assert.equal(shadowOf(vm).counters.reflected, 1);
});

test('write tracking: a guest page-table write is single-stepped and drops exactly the leaves it changed', () => {
  const { vm } = shadowVm();
  const sm = shadowOf(vm);
  const mem = vm.host.mem;
  handle(vm, pfExit(0x400000n, 3)); // la 0x400000: writable leaf, derived from PT entry 0
  put64(mem, vm.gpaToHpa(0x803000 + 16), 0x904000n | P | W | U | A | D);
  handle(vm, pfExit(0x402000n, 3)); // la 0x402000: derived from PT entry 2
  assert.ok(sm.tracker.isTracked(0x803), 'the page table is tracked');
  // The guest maps its page table at 0x401000 (PTE 1, writable): the mapping is read-only.
  handle(vm, pfExit(0x401000n, 0));
  assert.equal(leaf(vm, 0x401000) & (P | W), P);
  // It writes PTE 2 through it: single-stepped with the page writable.
  handle(vm, pfExit(0x401010n, 3));
  assert.ok(mtfOn(vm), 'monitor trap flag on');
  assert.equal(leaf(vm, 0x401000) & W, W);
  put64(mem, vm.gpaToHpa(0x803000 + 16), 0x905000n | P | W | U); // what the instruction wrote
  handle(vm, mtf);
  assert.ok(!mtfOn(vm), 'monitor trap flag off');
  assert.equal(leaf(vm, 0x402000), 0n, 'the leaf of the changed entry is gone');
  assert.notEqual(leaf(vm, 0x400000) & P, 0n, 'the other leaf stays');
  assert.equal(leaf(vm, 0x401000) & (P | W), P, 'the page table is read-only again');
  assert.equal(sm.counters.ptWrites, 1);
  // The next access walks the new entry.
  handle(vm, pfExit(0x402000n, 0));
  assert.equal(leaf(vm, 0x402000) & ~0xfffn & ((1n << 52n) - 1n), BigInt(vm.gpaToHpa(0x905000)));
});

test('write flooding: a page table written again and again without walks stops being tracked', () => {
  const { vm } = shadowVm();
  const sm = shadowOf(vm);
  // la 0x600000: a 2 MiB guest page over guest-physical 0x800000, which holds the tables: the
  // page table at 0x803000 is reachable at la 0x603000 without walking through itself.
  put64(vm.host.mem, vm.gpaToHpa(0x802000 + 24), 0x800000n | P | W | PS | A | D);
  handle(vm, pfExit(0x400000n, 0));
  handle(vm, pfExit(0x603000n, 0));
  assert.equal(leaf(vm, 0x603000) & (P | W), P, 'tracked: read-only');
  for (let k = 0; k < 5; k++) {
    handle(vm, pfExit(0x603800n, 3));
    if (mtfOn(vm)) handle(vm, mtf);
  }
  assert.equal(sm.counters.floods, 1);
  assert.equal(sm.counters.ptWrites, 4);
  assert.ok(!sm.tracker.isTracked(0x803));
  assert.equal(leaf(vm, 0x400000), 0n, 'leaves derived from it are gone');
  assert.equal(leaf(vm, 0x603000) & (P | W), P | W, 'and it is mapped writable');
  // Walking through it again makes it a page table again: its mapping goes read-only.
  handle(vm, pfExit(0x400000n, 0));
  assert.ok(sm.tracker.isTracked(0x803));
  assert.equal(leaf(vm, 0x603000) & W, 0n);
});

test('CR3 switch cache: a root kept for a guest CR3 is reused, still exact', () => {
  const { vm } = shadowVm();
  const sm = shadowOf(vm);
  const v = vm.vcpus[0];
  handle(vm, pfExit(0x400000n, 0));
  const first = sm.rootOf(v)!;
  // A second address space at 0xa00000 sharing the PDPT.
  put64(vm.host.mem, vm.gpaToHpa(0xa00000), 0x801000n | P | W | U);
  const mov = (reg: number): ExitRecord => ({
    ...pfExit(0n, 0),
    reason: R.CR_ACCESS,
    rawReason: R.CR_ACCESS,
    interruptionInfo: 0,
    qualification: BigInt(3 | (reg << 8)),
    instructionLength: 3,
  });
  vm.host.setReg(0, 0xa00000n);
  handle(vm, mov(0));
  assert.equal(v.guestCr3, 0xa00000n);
  assert.notEqual(sm.rootOf(v), first);
  assert.equal(BigInt(sm.rootOf(v)!.cr3), vm.host.vmread(F.GUEST_CR3));
  vm.host.setReg(0, 0x800000n);
  handle(vm, mov(0));
  assert.equal(sm.rootOf(v), first);
  assert.ok(sm.counters.rootHits >= 1);
  assert.notEqual(leaf(vm, 0x400000) & P, 0n, 'the leaf built before the switch is still there');
  // MOV from CR3 gives the guest its own CR3, not the shadow root.
  const store = { ...mov(1), qualification: BigInt(3 | (1 << 4) | (1 << 8)) };
  handle(vm, store);
  assert.equal(vm.host.getReg(1), 0x800000n);
});

test('hostile tables: a page table outside RAM stops the VM with a report, never maps it', () => {
  const { vm } = shadowVm();
  put64(vm.host.mem, vm.gpaToHpa(0x800000 + 8), 0x40000000n | P | W); // PML4[1] → 1 GiB, outside the 16 MiB of RAM
  handle(vm, pfExit(BigInt(2 ** 39), 0));
  assert.equal(vm.end?.kind, 'stopped');
  assert.match((vm.end as { detail: string }).detail, /outside the VM's RAM/);
});

test('a guest leaf pointing outside RAM takes the MMIO path, never a shadow mapping', () => {
  const { vm } = shadowVm();
  put64(vm.host.mem, vm.gpaToHpa(0x803000 + 24), 0xfec00000n | P | W); // la 0x403000 → the IOAPIC page
  handle(vm, pfExit(0x403000n, 0));
  assert.equal(leaf(vm, 0x403000) & P, 0n);
});

test('the shadow page cap: roots no vCPU uses are freed, pages stay bounded', () => {
  const { vm } = shadowVm();
  const sm = shadowOf(vm);
  sm.pageCap = 24;
  const v = vm.vcpus[0];
  for (let k = 0; k < 16; k++) {
    // 16 address spaces, each mapping la 0x400000 through its own PML4.
    const pml4 = 0xb00000 + k * 4096;
    put64(vm.host.mem, vm.gpaToHpa(pml4), 0x801000n | P | W | U);
    v.guestCr3 = BigInt(pml4);
    sm.activate(v);
    handle(vm, pfExit(0x400000n, 0));
    assert.ok(sm.pagesInUse <= 24 + 8, `pages ${sm.pagesInUse}`);
  }
  assert.ok(sm.counters.reclaims > 0);
  assert.ok(sm.cachedRoots <= 8);
  assert.equal(vm.end, undefined);
});

// ---------------------------------------------------------------- whole kernels

const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));

test('hello.elf under --l0 --mmu shadow and --l0 --no-ept', () => {
  for (const args of [
    ['--l0', '--mmu', 'shadow'],
    ['--l0', '--no-ept'],
  ]) {
    const r = runKernel('hello', args);
    assert.equal(r.stdout, 'hello from turtles\n');
    assert.equal(r.status, 1, r.stderr);
  }
});

for (const k of [
  'cpu-exceptions',
  'cpu-paging',
  'cpu-privilege',
  'cpu-syscall',
  'cpu-string',
  'cpu-tlb',
  'cpu-arith',
  'cpu-modes',
]) {
  test(`${k}.elf prints the same results bare, under --l0 --mmu shadow and under --l0 --no-ept`, () => {
    const bare = results(runKernel(k).stdout);
    assert.ok(bare.length > 1);
    for (const args of [
      ['--l0', '--mmu', 'shadow'],
      ['--l0', '--no-ept'],
    ]) {
      const r = runKernel(k, args);
      assert.deepEqual(results(r.stdout), bare, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.status, 1, r.stderr);
    }
  });
}

test('bench-pagefault.elf under both MMUs: same result; shadow paging takes the #PF exits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'turtles-shadow-'));
  const out: string[] = [];
  for (const mmu of ['ept', 'shadow']) {
    const stats = join(dir, `${mmu}.json`);
    const r = runKernel('bench-pagefault', [
      '--l0',
      '--mmu',
      mmu,
      '--append',
      'pages=128 rounds=3',
      '--stats',
      stats,
    ]);
    assert.equal(r.status, 1, r.stderr);
    out.push(r.stdout);
    const s = JSON.parse(readFileSync(stats, 'utf8'));
    const pf = s.exits.find((e: { reason: string }) => e.reason === 'EXCEPTION_NMI');
    if (mmu === 'ept') assert.equal(pf, undefined);
    else assert.ok(pf.count >= 3 * 128, `#PF exits ${pf.count}`);
  }
  assert.match(out[0], /faults=384 /);
  assert.equal(out[1], out[0]);
});

test('--no-ept with --mmu ept is refused; --no-ept alone runs shadow paging', () => {
  const bad = runKernel('hello', ['--l0', '--no-ept', '--mmu', 'ept']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /--mmu ept needs EPT/);
  const dir = mkdtempSync(join(tmpdir(), 'turtles-noept-'));
  const stats = join(dir, 's.json');
  const r = runKernel('cpu-paging', ['--l0', '--no-ept', '--stats', stats]);
  assert.equal(r.status, 1, r.stderr);
  const s = JSON.parse(readFileSync(stats, 'utf8'));
  const reasons = s.exits.map((e: { reason: string }) => e.reason);
  assert.ok(reasons.includes('EXCEPTION_NMI') && reasons.includes('CR_ACCESS'), reasons.join(' '));
});

test('real mode under shadow paging (the 2-CPU AP trampoline) is emulated by L0: the same results as bare', () => {
  // Without EPT there is no unrestricted guest: L0 emulates the AP's real-mode start-up
  // (src/l0/vmm/realmode/, more in test/l0/realmode.test.ts).
  const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));
  const bare = runKernel('platform-tests', ['--cpus', '2']);
  const r = runKernel('platform-tests', ['--l0', '--mmu', 'shadow', '--cpus', '2']);
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(results(r.stdout), results(bare.stdout));
  assert.ok(r.stdout.includes('SUMMARY: 23 passed, 0 failed'), r.stdout);
});
