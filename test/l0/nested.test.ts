/**
 * Nested VMX (the Turtles design): tvisor, an unmodified VMX hypervisor, runs as L1 under
 * L0 with --nested and runs every CPU self-test kernel as L2; each prints the same results
 * as on the bare machine, under EPT-on-EPT (ept02), shadow-on-EPT, with and without DRW and
 * dirty merging. The paper's cost figures: L0 exits per reflected L2 CPUID and the nested
 * CPUID cost relative to single level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKernel } from '../support/run-kernel.js';

const KERNELS = [
  'cpu-exceptions',
  'cpu-paging',
  'cpu-privilege',
  'cpu-syscall',
  'cpu-string',
  'cpu-tlb',
  'cpu-arith',
  'cpu-modes',
];
const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));
const bare = new Map(KERNELS.map((k) => [k, results(runKernel(k).stdout)]));

/** Lines of guest gN in tvisor's output, without the prefix. */
function guestLines(out: string, n: number): string[] {
  const p = `[g${n}] `;
  return out
    .split('\n')
    .filter((l) => l.startsWith(p))
    .map((l) => l.slice(p.length));
}

for (const [label, flags] of [
  ['EPT-on-EPT with DRW and dirty merging', []],
  ['EPT-on-EPT without DRW (VMREAD/VMWRITE trapped)', ['--no-drw']],
  ['EPT-on-EPT without dirty merging or bulk copies', ['--no-dirty-merge', '--no-bulk-copy']],
  ['shadow-on-EPT (L1 gets no EPT)', ['--nested-mmu', 'shadow']],
] as const) {
  test(`tvisor as L1 runs every CPU self-test as L2, same results as bare: ${label}`, () => {
    const mods = KERNELS.flatMap((k) => ['--module', `guests/build/${k}.elf`]);
    const r = runKernel('tvisor', ['--l0', '--nested', ...flags, '--mem', '640', ...mods]);
    assert.equal(r.status, 1, r.stderr + r.stdout.slice(-2000));
    KERNELS.forEach((k, n) => {
      assert.deepEqual(results(guestLines(r.stdout, n).join('\n')), bare.get(k), `${k} as L2 (${label})`);
    });
    assert.match(r.stdout, new RegExp(`${KERNELS.length} of ${KERNELS.length} guests ended with code 0`));
    if ((flags as readonly string[]).includes('shadow')) assert.match(r.stdout, /mmu=shadow/);
    else assert.match(r.stdout, /mmu=ept/);
  });
}

/**
 * vmx-tests.elf, a VMX conformance suite in C, as L1: every case gives what it gives on the bare
 * machine, except cases of a feature L0's virtual VT-x does not offer (VMCS shadowing, VM
 * functions, EPT A/D flags, and EPT itself with --nested-mmu shadow), which the suite reports as
 * skipped from L1's capability MSRs — never as failed.
 */
const vmxBare = results(runKernel('vmx-tests').stdout);
for (const [label, flags] of [
  ['EPT-on-EPT with DRW', []],
  ['EPT-on-EPT without DRW', ['--no-drw']],
  ['without dirty merging', ['--no-dirty-merge']],
  ['shadow-on-EPT', ['--nested-mmu', 'shadow']],
  ['shadow-on-shadow', ['--mmu', 'shadow']],
] as const) {
  test(`vmx-tests.elf as L1 under --l0 --nested: bare results or skipped for absent features (${label})`, () => {
    const r = runKernel('vmx-tests', ['--l0', '--nested', ...flags]);
    const nested = results(r.stdout);
    assert.equal(r.status, 1, r.stderr + r.stdout.slice(-1500)); // debug-exit 0: every case passed
    assert.equal(nested.length, vmxBare.length, r.stdout.slice(-1500));
    const name = (l: string): string => l.split(' ')[1];
    const skipped = (l: string): boolean => / \(skipped: /.test(l);
    let differ = 0;
    nested.forEach((l, i) => {
      const b = vmxBare[i];
      assert.equal(name(l), name(b), `case ${i}`);
      if (l === b) return;
      differ++;
      if (l.startsWith('SUMMARY')) return;
      assert.ok(l.startsWith('PASS') && (skipped(l) || skipped(b)), `bare: ${b}\nL1:   ${l}`);
      if (skipped(l)) assert.match(l, /not supported/, l);
    });
    assert.match(nested[nested.length - 1], /^SUMMARY: \d+ passed, 0 failed$/);
    // The skips are the absent features' cases, not a large part of the suite.
    assert.ok(differ < nested.length / 4, `${differ} of ${nested.length} cases differ`);
  });
}

/**
 * Differential fuzzing of L0's VM-entry emulation: vmx-tests.elf's `fuzz` group flips one bit of
 * one field of a valid VMCS per case and prints what VMLAUNCH gave (VMfail and error, entry
 * failure and reason, or the exit). L0 runs the hardware's check list on vmcs12 and then the
 * real entry on vmcs02: every outcome must be the bare machine's.
 */
test('one-bit flips of a VMCS: L1 under --l0 --nested gets what the bare machine gives (500 cases, with and without DRW)', () => {
  const args = ['--append', 'group=fuzz fuzz=500 seed=11'];
  const outcomes = (out: string): string[] => out.split('\n').filter((l) => l.startsWith('fuzz '));
  const bareRun = runKernel('vmx-tests', args);
  const want = outcomes(bareRun.stdout);
  assert.equal(want.length, 500, bareRun.stdout.slice(-500));
  // The flips reach every kind of outcome.
  for (const kind of [/VMfailValid 7$/, /entry failure 33 /, /exit 18 /])
    assert.ok(
      want.some((l) => kind.test(l)),
      `no ${kind} among the bare outcomes`,
    );
  for (const flags of [[], ['--no-drw']]) {
    const r = runKernel('vmx-tests', ['--l0', '--nested', ...flags, ...args]);
    assert.equal(r.status, 1, r.stderr);
    const got = outcomes(r.stdout);
    const diff = got.map((l, i) => (l === want[i] ? '' : `bare: ${want[i]}\nL1:   ${l}`)).filter((d) => d);
    assert.deepEqual(diff, [], diff.slice(0, 5).join('\n'));
    assert.equal(got.length, want.length);
  }
});

function nestedCpuid(flags: string[]): {
  cycles: number;
  perReflected: number;
  exits: { reason: string; level: string; handledBy: string; count: number }[];
} {
  const dir = mkdtempSync(join(tmpdir(), 'turtles-nested-'));
  const stats = join(dir, 's.json');
  const r = runKernel('tvisor', [
    '--l0',
    '--nested',
    ...flags,
    '--module',
    'guests/build/cpuid-bench.elf=n=1000',
    '--stats',
    stats,
  ]);
  assert.equal(r.status, 1, r.stderr);
  const m = /cycles\/cpuid=(\d+)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  const s = JSON.parse(readFileSync(stats, 'utf8'));
  return { cycles: Number(m[1]), perReflected: s.l0ExitsPerReflectedExit, exits: s.exits };
}

test('a reflected L2 CPUID costs 2 L0 exits with DRW, many more without (the paper: 2 vs 13)', () => {
  const drw = nestedCpuid([]);
  const trap = nestedCpuid(['--no-drw']);
  assert.ok(drw.perReflected >= 2 && drw.perReflected < 2.2, `with DRW: ${drw.perReflected}`);
  assert.ok(trap.perReflected > 8, `without DRW: ${trap.perReflected}`);
  const l2cpuid = drw.exits.find((e) => e.level === 'L2' && e.reason === 'CPUID');
  assert.ok(l2cpuid && l2cpuid.handledBy === 'L1' && l2cpuid.count >= 1000, JSON.stringify(drw.exits));
  // Single-level CPUID is ~2.5k cycles (test/l0/l0.test.ts); nested with every optimization ≤ 5×.
  assert.ok(drw.cycles <= 5 * 2500, `nested cpuid ${drw.cycles} cycles`);
  assert.ok(trap.cycles > drw.cycles, `trapping ${trap.cycles} vs DRW ${drw.cycles}`);
});

test('without --nested VMX stays hidden; bad nesting options are refused with one line', () => {
  const r = runKernel('hello', ['--l0', '--nested-mmu', 'ept']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /apply to --nested runs/);
  const r2 = runKernel('hello', ['--l0', '--nested', '--nested-mmu', 'bogus']);
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /--nested-mmu must be ept or shadow/);
  assert.equal(r2.stderr.trim().split('\n').length, 1);
  // DESIGN.md's CLI contract: --drw (the default) and --no-drw, with --nested only.
  assert.equal(runKernel('hello', ['--l0', '--nested', '--drw']).status, 1);
  const r3 = runKernel('hello', ['--l0', '--drw']);
  assert.equal(r3.status, 2);
  assert.match(r3.stderr, /apply to --nested runs/);
});
