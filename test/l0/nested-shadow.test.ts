/**
 * Shadow-on-shadow (L0 without EPT, `--l0 --mmu shadow --nested`): L0 shadows L1, L1 (tvisor)
 * shadows L2, and L0 runs L2 on spt02, its shadow of L1's tables for L2 (src/l0/mmu/spt02.ts,
 * src/l0/nested/spt02-exits.ts).
 *
 * End to end: tvisor runs every CPU self-test kernel as L2 and each prints the same results as
 * bare, with and without DRW (and through --no-ept). Unit rows on a real L0 (one 16 MiB VM under
 * shadow paging, never run): what vmcs02 holds, #PF exits filled by L0 / reflected to L1 /
 * delivered to L2 as vmcs12's exception bitmap says, L1's MMIO, coherence at the flush points
 * (entries without VPID, INVVPID), and L2's CR/INVLPG exits L0 handles on L1's behalf.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VMCS_FIELD as F, VMX_BITS as B, type Vmcs, type VmxHost } from '../../src/hw/index.js';
import { prepareVmcs02 } from '../../src/l0/nested/vmcs02.js';
import { spt02Of } from '../../src/l0/nested/spt02-exits.js';
import { noteGuestWrite, shadowOf } from '../../src/l0/mmu/shadow.js';
import { walkGuest } from '../../src/l0/mmu/guest-walk.js';
import { runKernel } from '../support/run-kernel.js';
import {
  nestedFixture,
  baseVmcs12,
  set12,
  get12,
  exitRecord,
  rd,
  wr,
  hex,
  type Fx,
} from './nested-units/fixture.js';

// ---------------------------------------------------------------- end to end (tvisor as L1)

/** Every CPU self-test kernel (cpu-NAME.elf; not the -O0 variants). */
const KERNELS = readdirSync('guests/build')
  .filter((f) => /^cpu-[a-z]+\.elf$/.test(f))
  .map((f) => f.slice(0, -4));
const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));
/** Lines of tvisor's guest gN, without the prefix. */
const guestLines = (out: string, n: number): string =>
  out
    .split('\n')
    .filter((l) => l.startsWith(`[g${n}] `))
    .map((l) => l.slice(`[g${n}] `.length))
    .join('\n');

interface Stats {
  exits: { level: string; reason: string; handledBy: string; count: number }[];
  l0ExitsPerReflectedExit: number;
}
/** tvisor as L1 under `turtles run --l0 --nested ARGS`: its output, and the run's --stats. */
function tvisor(args: string[]): { stdout: string; stats: Stats } {
  const file = join(mkdtempSync(join(tmpdir(), 'turtles-sos-')), 's.json');
  const r = runKernel('tvisor', ['--l0', '--nested', '--stats', file, ...args]);
  assert.equal(r.status, 1, r.stderr + r.stdout.slice(-2000));
  return { stdout: r.stdout, stats: JSON.parse(readFileSync(file, 'utf8')) as Stats };
}
const count = (s: Stats, level: string, reason: string, by: string): number =>
  s.exits.find((e) => e.level === level && e.reason === reason && e.handledBy === by)?.count ?? 0;

for (const [label, flags] of [
  ['--mmu shadow, with DRW', ['--mmu', 'shadow']],
  ['--no-ept, without DRW', ['--no-ept', '--no-drw']],
] as const) {
  test(`shadow-on-shadow (${label}): tvisor runs every CPU self-test as L2, same results as bare`, () => {
    assert.ok(KERNELS.length >= 8, KERNELS.join());
    const bare = KERNELS.map((k) => results(runKernel(k).stdout));
    const mods = KERNELS.flatMap((k) => ['--module', `guests/build/${k}.elf`]);
    const { stdout, stats } = tvisor([...flags, '--mem', '640', ...mods]);
    KERNELS.forEach((k, n) =>
      assert.deepEqual(results(guestLines(stdout, n)), bare[n], `${k} as L2 (${label})`),
    );
    assert.match(stdout, new RegExp(`${KERNELS.length} of ${KERNELS.length} guests ended with code 0`));
    assert.match(stdout, /mmu=shadow/);
    // L2's #PFs: spt02 fills by L0, L1's own (tvisor's shadow faults) reflected; L1's #PFs are spt01's.
    const why = JSON.stringify(stats.exits);
    assert.ok(count(stats, 'L2', 'EXCEPTION_NMI', 'L0') > 100, why);
    assert.ok(count(stats, 'L2', 'EXCEPTION_NMI', 'L1') > 100, why);
    assert.ok(count(stats, 'L1', 'EXCEPTION_NMI', 'L0') > 100, why);
  });
}

test('shadow-on-shadow: a reflected L2 CPUID costs 2 L0 exits with DRW, about as under shadow-on-EPT', () => {
  const cpuid = (flags: string[]): { cycles: number; perReflected: number } => {
    const { stdout, stats } = tvisor([...flags, '--module', 'guests/build/cpuid-bench.elf=n=1000']);
    const cycles = Number(/cycles\/cpuid=(\d+)/.exec(stdout)?.[1]);
    assert.ok(cycles > 0, stdout);
    return { cycles, perReflected: stats.l0ExitsPerReflectedExit };
  };
  const sos = cpuid(['--mmu', 'shadow']);
  const soe = cpuid(['--nested-mmu', 'shadow']);
  assert.ok(sos.perReflected >= 2 && sos.perReflected < 2.2, `shadow-on-shadow: ${sos.perReflected}`);
  // The entry's resync of spt02 (no VPID in tvisor's vmcs12) is all that is added.
  assert.ok(sos.cycles < soe.cycles * 1.1, `shadow-on-shadow ${sos.cycles} vs shadow-on-EPT ${soe.cycles}`);
});

test('--nested-mmu ept with L0 on shadow paging is refused with one line', () => {
  for (const args of [
    ['--l0', '--nested', '--mmu', 'shadow', '--nested-mmu', 'ept'],
    ['--l0', '--nested', '--no-ept', '--nested-mmu', 'ept'],
  ]) {
    const r = runKernel('hello', args);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--nested-mmu ept needs L0 on EPT/);
  }
});

// ---------------------------------------------------------------- unit rows

const L1_MIB = 16;
/** L1's structures in L1-physical memory (hello.elf ends below 3 MiB). */
const VMCS12 = 0x600000,
  INVVPID_DESC = 0x620000,
  PML4 = 0x800000,
  PDPT = 0x801000,
  PD = 0x802000,
  PT = 0x803000,
  PT2 = 0x804000,
  CODE = 0xa00000,
  DATA = 0x900000,
  DATA2 = 0x910000;
/** L2 linear addresses. */
const RIP = 0x100000,
  LA = 0x400000,
  LA_RO = 0x401000,
  LA_MMIO = 0x402000,
  LA_NOTHING = 0x403000,
  LA_UNMAPPED = 0x404000;
const P = 1n,
  RW = 2n,
  US = 4n,
  A = 0x20n,
  D = 0x40n;
const PF_INFO = 0x80000b0e;

/** A real L0 with one 16 MiB VM under shadow paging with --nested (hello.elf loaded, never run). */
function sosFixture(vpid = false): Fx & { v12: Vmcs } {
  const fx = nestedFixture({ mmu: 'shadow' }, 'shadow');
  // L1's 4-level tables for L2: code at RIP, data pages, L1's MMIO, and a hole.
  const w64 = (gpa: number, val: bigint): void => l1Write64(fx, gpa, val);
  w64(PML4, BigInt(PDPT) | P | RW | US | A);
  w64(PDPT, BigInt(PD) | P | RW | US | A);
  w64(PD, BigInt(PT2) | P | RW | US | A); // 0-2 MiB
  w64(PD + 8 * 2, BigInt(PT) | P | RW | US | A); // 4-6 MiB
  w64(PT2 + 8 * (RIP >> 12), BigInt(CODE) | P | A); // RIP: supervisor, read-only
  w64(PT + 8 * 0, BigInt(DATA) | P | RW | A); // LA: writable, clean
  w64(PT + 8 * 1, BigInt(DATA2) | P | US | A | D); // LA_RO: read-only, user, dirty
  w64(PT + 8 * 2, 0xfec00000n | P | RW | A | D); // LA_MMIO: the IOAPIC (L1's device)
  w64(PT + 8 * 3, 0x40000000n | P | RW | A | D); // LA_NOTHING: beyond L1's RAM, no device
  // L2's code: mov eax, [rbx]; nop.
  fx.h.mem.write8(hpa(fx, CODE), 0x8b);
  fx.h.mem.write8(hpa(fx, CODE) + 1, 0x03);
  const v12 = baseVmcs12(fx, VMCS12);
  set12(v12, F.SECONDARY_VM_EXEC_CONTROL, vpid ? B.SEC_VPID : 0);
  set12(v12, F.GUEST_CR3, PML4);
  set12(v12, F.GUEST_RIP, RIP);
  set12(v12, F.EXCEPTION_BITMAP, 1 << 14);
  fx.n.current = v12;
  return { ...fx, v12 };
}
function hpa(fx: Fx, gpa: number): number {
  const h = fx.vm.gpaToHpa(gpa);
  assert.ok(h >= 0, `${hex(gpa)} is not L1 RAM`);
  return h;
}
function l1Write64(fx: Fx, gpa: number, val: bigint): void {
  fx.h.mem.write32(hpa(fx, gpa), Number(val & 0xffffffffn) | 0);
  fx.h.mem.write32(hpa(fx, gpa) + 4, Number(val >> 32n) | 0);
}
function l1Read64(fx: Fx, gpa: number): bigint {
  return (
    (BigInt(fx.h.mem.read32(hpa(fx, gpa) + 4) >>> 0) << 32n) | BigInt(fx.h.mem.read32(hpa(fx, gpa)) >>> 0)
  );
}
function read64(h: VmxHost, a: number): bigint {
  return (BigInt(h.mem.read32(a + 4) >>> 0) << 32n) | BigInt(h.mem.read32(a) >>> 0);
}
/** The spt02 leaf for `la` under vmcs02's GUEST_CR3 (4-level), as the processor walks it, or 0. */
function sptLeaf(fx: Fx, la: number): bigint {
  let t = Number(rd(fx.h, F.GUEST_CR3) & ~0xfffn);
  for (const shift of [39, 30, 21, 12]) {
    assert.ok(fx.vm.gpaToHpa(0) > t || t >= fx.vm.gpaToHpa(0) + (L1_MIB << 20), 'spt02 tables are L0 pages');
    const e = read64(fx.h, t + 8 * (Math.floor(la / 2 ** shift) % 512));
    if (!(e & P)) return 0n;
    if (shift === 12) return e;
    t = Number(e & 0xffffffffff000n);
  }
  return 0n;
}
/** A nested entry (L1's VMRESUME, vmcs01 current): vmcs02 prepared from vmcs12, the vCPU in L2. */
function enter(fx: Fx): void {
  fx.h.vmptrld(fx.v.vmcs01);
  prepareVmcs02(fx.v, fx.n);
  fx.v.level = 'L2';
}
/** A #PF exit from L2 at `la` with the hardware's error code `ec` (not-present unless P). */
function pf(fx: Fx, la: number, ec: number): void {
  fx.v.dispatch(
    exitRecord(B.R.EXCEPTION_NMI, {
      qualification: BigInt(la),
      interruptionInfo: PF_INFO,
      interruptionErrorCode: ec,
    }),
  );
}
/** L1 writes its table entry at `gpa` (L0 sees it as spt01 would: a logged write). */
function l1Writes(fx: Fx, gpa: number, val: bigint): void {
  l1Write64(fx, gpa, val);
  noteGuestWrite(fx.vm, gpa, 8);
}

test('vmcs02 under shadow-on-shadow: no EPT, L0 paging exits, spt02 root, L0-owned CR0/CR4 bits', () => {
  const fx = sosFixture();
  enter(fx);
  const h = fx.h;
  assert.equal(Number(rd(h, F.SECONDARY_VM_EXEC_CONTROL)) & B.SEC_EPT, 0);
  const proc = Number(rd(h, F.CPU_BASED_VM_EXEC_CONTROL));
  for (const bit of [B.CPU_INVLPG, B.CPU_CR3_LOAD, B.CPU_CR3_STORE]) assert.ok(proc & bit, hex(bit));
  assert.equal(rd(h, F.CR3_TARGET_COUNT), 0n);
  assert.ok(rd(h, F.EXCEPTION_BITMAP) & (1n << 14n));
  assert.equal(rd(h, F.PAGE_FAULT_ERROR_CODE_MASK) | rd(h, F.PAGE_FAULT_ERROR_CODE_MATCH), 0n);
  assert.ok(rd(h, F.VM_ENTRY_CONTROLS) & BigInt(B.ENTRY_LOAD_EFER));
  assert.equal(rd(h, F.GUEST_IA32_EFER) & 0x500n, 0x500n);
  const cr3 = Number(rd(h, F.GUEST_CR3));
  assert.notEqual(cr3, PML4);
  assert.ok(cr3 < fx.vm.ramHpa || cr3 >= fx.vm.ramHpa + fx.vm.ramBytes, 'the root is an L0 page');
  // L1 runs L2 with CR0.WP=0: the processor runs with WP=1 (emulated by spt02), L2 reads 0.
  assert.equal(rd(h, F.GUEST_CR0) & 0x80010021n, 0x80010021n);
  assert.equal(rd(h, F.CR0_READ_SHADOW) & 0x10000n, 0n);
  assert.equal(fx.n.l2Paging?.cr3, BigInt(PML4));
  assert.equal(sptLeaf(fx, LA), 0n, 'spt02 starts empty');
});

test("an L2 #PF that L1's tables map is L0's: spt02 maps L1's frame with L1's rights, writable once dirty", () => {
  const fx = sosFixture();
  enter(fx);
  pf(fx, LA, 0); // read
  assert.equal(fx.v.level, 'L2', 'L2 resumes');
  let leaf = sptLeaf(fx, LA);
  assert.equal(Number(leaf & 0xffffffffff000n), hpa(fx, DATA));
  assert.equal(leaf & RW, 0n, "read-only until L1's PTE is dirty (the first write sets D, SDM 3A §4.8)");
  assert.equal(leaf & US, 0n);
  pf(fx, LA, 3); // write, present
  leaf = sptLeaf(fx, LA);
  assert.equal(leaf & RW, RW);
  assert.equal(l1Read64(fx, PT) & D, D, "D set in L1's table");
  // CR0.WP=0 in L2: a supervisor write to a read-only user page gets a writable supervisor leaf.
  pf(fx, LA_RO, 2);
  assert.equal(sptLeaf(fx, LA_RO) & (RW | US), RW);
  assert.equal(fx.v.vm.end, undefined);
  assert.equal(spt02Of(fx.v, fx.n).counters.fills, 3);
});

test("an L2 #PF L1's tables do not map: a #PF exit for L1, or a #PF for L2, as vmcs12 says", () => {
  // L1 intercepts #PF (tvisor's shadow paging): the exit with the error code of L1's tables.
  let fx = sosFixture();
  enter(fx);
  pf(fx, LA_UNMAPPED, 2);
  assert.equal(fx.v.level, 'L1');
  assert.equal(fx.h.vmptrst(), fx.v.vmcs01);
  assert.equal(get12(fx.v12, F.VM_EXIT_REASON), 0n);
  assert.equal(get12(fx.v12, F.EXIT_QUALIFICATION), BigInt(LA_UNMAPPED));
  assert.equal(get12(fx.v12, F.VM_EXIT_INTR_ERROR_CODE), 2n);
  // vmcs12 holds L2's registers as L1 set them, not spt02's root or L0's forced WP.
  assert.equal(get12(fx.v12, F.GUEST_CR3), BigInt(PML4));
  assert.equal(get12(fx.v12, F.GUEST_CR0) & 0x10000n, 0n);
  // L1 resumes on spt01's root for its host CR3, which L0 keeps.
  assert.equal(fx.v.guestCr3, get12(fx.v12, F.HOST_CR3));
  assert.notEqual(rd(fx.h, F.GUEST_CR3), get12(fx.v12, F.HOST_CR3));
  assert.equal(rd(fx.h, F.CR0_READ_SHADOW), get12(fx.v12, F.HOST_CR0));
  // A protection fault L1 filters out with PFEC mask/match (SDM 3C §25.2): L2 gets it, with CR2.
  fx = sosFixture();
  set12(fx.v12, F.PAGE_FAULT_ERROR_CODE_MASK, 1);
  set12(fx.v12, F.PAGE_FAULT_ERROR_CODE_MATCH, 0);
  enter(fx);
  // A user write to L1's read-only user page: the hardware reports not-present (spt02 is empty,
  // error code 6), L1's tables say protection (7), which L1's filter (P = 0 only) lets through.
  pf(fx, LA_RO, 6);
  assert.equal(fx.v.level, 'L2', "the #PF does not match L1's filter: not an exit");
  assert.equal(rd(fx.h, F.VM_ENTRY_INTR_INFO_FIELD), BigInt(PF_INFO));
  assert.equal(rd(fx.h, F.VM_ENTRY_EXCEPTION_ERROR_CODE), 7n);
  assert.equal(fx.h.getCr2(), BigInt(LA_RO));
});

test("L1's MMIO through its tables for L2 is emulated on L1's platform, never mapped", () => {
  const fx = sosFixture();
  enter(fx);
  fx.h.setReg(3, BigInt(LA_MMIO)); // rbx
  fx.h.setReg(0, 0xdeadbeefn);
  pf(fx, LA_MMIO, 0);
  assert.equal(sptLeaf(fx, LA_MMIO), 0n);
  assert.equal(fx.h.getReg(0), 0n, 'IOREGSEL of the IOAPIC reads 0');
  assert.equal(rd(fx.h, F.GUEST_RIP), BigInt(RIP + 2));
  fx.h.setReg(3, BigInt(LA_NOTHING));
  wr(fx.h, F.GUEST_RIP, RIP);
  pf(fx, LA_NOTHING, 0);
  assert.equal(sptLeaf(fx, LA_NOTHING), 0n);
  assert.equal(fx.h.getReg(0), 0xffffffffn, 'no device: all ones');
  assert.equal(fx.v.vm.end, undefined);
});

test("coherence: without VPID every nested entry resyncs spt02 with L1's tables; with VPID, INVVPID does", () => {
  for (const vpid of [false, true]) {
    const fx = sosFixture(vpid);
    enter(fx);
    pf(fx, LA, 0);
    assert.equal(Number(sptLeaf(fx, LA) & 0xffffffffff000n), hpa(fx, DATA));
    // L1 remaps LA (its own TLB rules: it relies on the entry's flush, or INVVPID).
    fx.v.level = 'L1';
    l1Writes(fx, PT, BigInt(DATA2) | P | RW | A | D);
    enter(fx);
    const s = spt02Of(fx.v, fx.n);
    if (!vpid) {
      assert.equal(sptLeaf(fx, LA), 0n, 'dropped at the entry (SDM 3C §28.3.3.3)');
      continue;
    }
    assert.equal(Number(sptLeaf(fx, LA) & 0xffffffffff000n), hpa(fx, DATA), 'kept: a VPID-tagged TLB may');
    // L1's INVVPID (single context, VPID 1), emulated by L0, is a flush point.
    fx.v.level = 'L1';
    fx.h.vmptrld(fx.v.vmcs01);
    fx.n.vmxon = true;
    wr(fx.h, F.CR4_READ_SHADOW, 0x2000);
    l1Write64(fx, INVVPID_DESC, 1n);
    l1Write64(fx, INVVPID_DESC + 8, 0n);
    fx.h.setReg(0, 1n);
    fx.h.setReg(3, BigInt(INVVPID_DESC));
    const flushes = s.counters.flushes;
    // Instruction information: 32-bit address, DS, no index, base RBX, type in RAX (SDM 3C §27.2.5).
    fx.v.dispatch(
      exitRecord(B.R.INVVPID, {
        instructionLength: 4,
        instructionInfo: (1 << 7) | (3 << 15) | (1 << 22) | (3 << 23) | (0 << 28),
      }),
    );
    assert.equal(rd(fx.h, F.GUEST_RFLAGS) & 0x41n, 0n, 'INVVPID succeeded');
    assert.equal(s.counters.flushes, flushes + 1);
    enter(fx);
    assert.equal(sptLeaf(fx, LA), 0n, 'dropped after INVVPID');
    pf(fx, LA, 0);
    assert.equal(Number(sptLeaf(fx, LA) & 0xffffffffff000n), hpa(fx, DATA2), 'rebuilt from the new entry');
  }
});

test("an unchanged page of L1's tables costs one check at a resync; what L1 did not write stays", () => {
  const fx = sosFixture();
  enter(fx);
  pf(fx, LA, 0);
  pf(fx, LA_RO, 0);
  const s = spt02Of(fx.v, fx.n);
  const before = { ...s.counters };
  fx.v.level = 'L1';
  enter(fx);
  assert.ok(sptLeaf(fx, LA) !== 0n && sptLeaf(fx, LA_RO) !== 0n);
  assert.equal(s.counters.syncs, before.syncs + 1);
  assert.equal(s.counters.syncedEntries, before.syncedEntries, 'no page was written: no entry compared');
  // L1 writes a neighbouring entry of the same table page: that page's entries are compared.
  fx.v.level = 'L1';
  l1Writes(fx, PT + 8 * 5, BigInt(DATA) | P | A);
  enter(fx);
  assert.ok(sptLeaf(fx, LA) !== 0n && sptLeaf(fx, LA_RO) !== 0n, 'unchanged entries keep their leaves');
  assert.ok(s.counters.syncedEntries > before.syncedEntries);
  assert.ok(shadowOf(fx.vm).writeEpoch(PT / 4096) > 0);
});

test("L2's CR3 load, CR0.WP and INVLPG that L1 does not intercept are L0's, against L2's registers", () => {
  const fx = sosFixture();
  enter(fx);
  pf(fx, LA, 0);
  const h = fx.h;
  const root = rd(h, F.GUEST_CR3);
  // MOV CR3, RCX with a copy of L1's PML4 elsewhere: a new root; MOV RDX, CR3 reads L2's value.
  const PML4B = 0x805000;
  l1Write64(fx, PML4B, l1Read64(fx, PML4));
  h.setReg(1, BigInt(PML4B));
  fx.v.dispatch(exitRecord(B.R.CR_ACCESS, { qualification: BigInt(3 | (1 << 8)), instructionLength: 3 }));
  assert.equal(fx.v.level, 'L2');
  assert.equal(fx.n.l2Paging?.cr3, BigInt(PML4B));
  assert.notEqual(rd(h, F.GUEST_CR3), root);
  assert.equal(sptLeaf(fx, LA), 0n, 'MOV to CR3 flushes');
  fx.v.dispatch(
    exitRecord(B.R.CR_ACCESS, { qualification: BigInt(3 | (1 << 4) | (2 << 8)), instructionLength: 3 }),
  );
  assert.equal(h.getReg(2), BigInt(PML4B));
  // MOV CR0, RAX setting WP (L0 owns it, L1 does not): L2's CR0 has it, the read shadow shows it.
  h.setReg(0, 0x80010031n);
  fx.v.dispatch(exitRecord(B.R.CR_ACCESS, { qualification: 0n, instructionLength: 3 }));
  assert.equal(fx.n.l2Paging!.cr0 & 0x10000n, 0x10000n);
  assert.equal(rd(h, F.CR0_READ_SHADOW) & 0x10000n, 0x10000n);
  // INVLPG of a mapped page drops its leaf.
  pf(fx, LA, 0);
  assert.ok(sptLeaf(fx, LA) !== 0n);
  fx.v.dispatch(exitRecord(B.R.INVLPG, { qualification: BigInt(LA), instructionLength: 3 }));
  assert.equal(sptLeaf(fx, LA), 0n);
  // A reflected exit (CPUID) gives L1 L2's CR3 and CR0 as L2 set them.
  fx.v.dispatch(exitRecord(B.R.CPUID, { instructionLength: 2 }));
  assert.equal(fx.v.level, 'L1');
  assert.equal(get12(fx.v12, F.GUEST_CR3), BigInt(PML4B));
  assert.equal(get12(fx.v12, F.GUEST_CR0), 0x80010031n);
  assert.equal(fx.v.vm.end, undefined);
});

test("L1's own page tables stay write-protected under L2: an L2 write L1 allows ends their tracking", () => {
  const fx = sosFixture();
  const sm = shadowOf(fx.vm);
  // L1 runs on its own 4-level tables: spt01 fills one leaf and so tracks L1_PT (SDM 3A §4.5).
  const L1_PML4 = 0x810000,
    L1_PDPT = 0x811000,
    L1_PD = 0x812000,
    L1_PT = 0x813000;
  l1Write64(fx, L1_PML4, BigInt(L1_PDPT) | P | RW | A);
  l1Write64(fx, L1_PDPT, BigInt(L1_PD) | P | RW | A);
  l1Write64(fx, L1_PD + 8 * 2, BigInt(L1_PT) | P | RW | A);
  l1Write64(fx, L1_PT, BigInt(DATA) | P | RW | A | D);
  const p1 = { cr0: 0x80010031n, cr3: BigInt(L1_PML4), cr4: 0x20n, efer: 0x500n };
  const l1Fill = (): void => {
    sm.activateWith(fx.v, p1);
    const access = { write: false, user: false, fetch: false };
    const w = walkGuest(fx.vm, p1, LA, access, true);
    assert.ok(w.ok);
    sm.fill(fx.v, LA, w, access, p1);
  };
  l1Fill();
  const gfn = L1_PT / 4096;
  assert.ok(sm.tracker.isTracked(gfn));
  // L1 maps that page into L2, writable and dirty.
  const LA5 = LA + 5 * 4096;
  l1Write64(fx, PT + 8 * 5, BigInt(L1_PT) | P | RW | A | D);
  enter(fx);
  pf(fx, LA5, 0);
  assert.equal(sptLeaf(fx, LA5) & RW, 0n, 'read-only while spt01 tracks it');
  pf(fx, LA5, 3);
  assert.equal(sptLeaf(fx, LA5) & RW, RW, "L2's write: writable");
  assert.ok(!sm.tracker.isTracked(gfn), 'spt01 dropped what it derived from the page');
  assert.equal(sm.foreignWritable.get(gfn), 1);
  // L1 walks through the page again: tracked again, and spt02's mapping write-protected at once.
  l1Fill();
  assert.ok(sm.tracker.isTracked(gfn));
  assert.equal(sptLeaf(fx, LA5) & RW, 0n);
  assert.equal(sm.foreignWritable.get(gfn), undefined);
});
