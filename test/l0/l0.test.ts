/**
 * L0, the TypeScript hypervisor (first slice): unmodified kernels as L1 guests under
 * ept01 print the same results as on the bare machine; VMX stays hidden from L1; bad
 * options are refused with one clear line; the exit accounting matches the calibration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKernel } from '../support/run-kernel.js';

const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));

test('hello.elf as an L1 guest of L0', () => {
  const r = runKernel('hello', ['--l0']);
  assert.equal(r.stdout, 'hello from turtles\n');
  assert.equal(r.status, 1, r.stderr);
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
  test(`${k}.elf under --l0 --mmu ept prints the same results as bare`, () => {
    const bare = results(runKernel(k).stdout);
    const r = runKernel(k, ['--l0', '--mmu', 'ept']);
    assert.deepEqual(results(r.stdout), bare, r.stderr);
    assert.equal(r.status, 1, r.stderr);
  });
}

test('tvisor under --l0 without --nested finds no VMX and ends with a non-zero code', () => {
  const r = runKernel('tvisor', ['--l0', '--module', 'guests/build/hello.elf']);
  assert.match(r.stdout, /no VMX/);
  assert.ok(r.status !== 0 && r.status !== 1, `status ${r.status}`);
});

test('a single-level CPUID exit costs ~2.5k cycles: ~1.5k in L0, ~1.0k in switches (the paper, §4.3)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'turtles-l0-'));
  const stats = join(dir, 's.json');
  const r = runKernel('cpuid-bench', ['--l0', '--append', 'n=2000', '--stats', stats]);
  assert.equal(r.status, 1, r.stderr);
  const s = JSON.parse(readFileSync(stats, 'utf8'));
  const cpuid = s.exits.find((e: { reason: string }) => e.reason === 'CPUID');
  assert.equal(cpuid.count, 2000);
  assert.equal(cpuid.level, 'L1');
  assert.equal(cpuid.handledBy, 'L0');
  const l0 = s.cycles.byLevel.L0 / cpuid.count,
    sw = s.cycles.switches / cpuid.count;
  assert.ok(l0 > 1300 && l0 < 1700, `L0 cycles per CPUID ${l0}`);
  assert.ok(sw > 950 && sw < 1100, `switch cycles per CPUID ${sw}`);
  assert.match(r.stdout, /cycles\/cpuid=2[45]\d\d/);
});

test('bad --l0 options: one clear line', () => {
  for (const [args, re] of [
    [['--l0', '--mmu', 'ept', '--no-ept'], /needs EPT/],
    [['--l0', '--nested', '--mmu', 'shadow', '--nested-mmu', 'ept'], /--nested-mmu ept needs L0 on EPT/],
    [['--l0', '--mmu', 'nommu'], /ept or shadow/],
    [['--mmu', 'ept'], /apply to --l0/],
  ] as const) {
    const r = runKernel('hello', [...args]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
});

test('an L1 run is deterministic: same output, cycles and exits twice', () => {
  const dir = mkdtempSync(join(tmpdir(), 'turtles-l0det-'));
  const runs = [0, 1].map((k) => {
    const f = join(dir, `s${k}.json`);
    const r = runKernel('cpu-paging', ['--l0', '--stats', f]);
    const s = JSON.parse(readFileSync(f, 'utf8'));
    return { out: r.stdout, cycles: s.cycles, exits: s.exits, insns: s.instructions };
  });
  assert.ok(runs[0].cycles.total > 0);
  assert.deepEqual(runs[0], runs[1]);
});
