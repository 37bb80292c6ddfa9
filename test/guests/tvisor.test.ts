/**
 * tvisor, the VMX hypervisor in C (guests/tvisor), on the bare machine: unmodified
 * kernels as its guests under EPT and under shadow paging, several guests at once,
 * isolation, and bad input. Each guest's PASS/FAIL lines must equal its bare run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runKernel } from '../support/run-kernel.js';

const B = 'guests/build';
const results = (out: string, prefix = ''): string[] =>
  out
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length))
    .filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));

test('tvisor runs hello.elf: "[g0] hello from turtles", status 1', () => {
  const r = runKernel('tvisor', ['--module', `${B}/hello.elf`]);
  assert.match(r.stdout, /^\[g0\] hello from turtles$/m);
  assert.equal(r.status, 1, r.stdout + r.stderr);
});

const SELF = [
  'cpu-exceptions',
  'cpu-paging',
  'cpu-privilege',
  'cpu-syscall',
  'cpu-string',
  'cpu-tlb',
  'cpu-arith',
  'cpu-modes',
];
const bare = new Map<string, string[]>();
for (const mmu of ['ept', 'shadow']) {
  for (const k of SELF) {
    test(`${k}.elf as a tvisor guest with mmu=${mmu}: the same results as bare`, () => {
      if (!bare.has(k)) bare.set(k, results(runKernel(k).stdout));
      const r = runKernel('tvisor', ['--append', `mmu=${mmu}`, '--module', `${B}/${k}.elf`]);
      assert.deepEqual(results(r.stdout, '[g0] '), bare.get(k), r.stdout.slice(-2000));
      assert.equal(r.status, 1, r.stderr);
    });
  }
}

test('four guests at once each finish with their own result', () => {
  const mods = ['cpu-paging.elf', 'bench-loop.elf=iters=3000000', 'cpu-tlb.elf', 'cpu-exceptions.elf'];
  const r = runKernel(
    'tvisor',
    mods.flatMap((m) => ['--module', `${B}/${m}`]),
  );
  assert.match(r.stdout, /4 of 4 guests ended with code 0/);
  assert.match(r.stdout, /^\[g0\] SUMMARY: \d+ passed, 0 failed/m);
  assert.match(r.stdout, /^\[g3\] SUMMARY: \d+ passed, 0 failed/m);
  assert.equal(r.status, 1);
});

test('a scribbling guest and a triple-faulting guest stop alone; the others pass', () => {
  const mods = ['tvisor-scribble.elf', 'cpu-paging.elf', 'tvisor-triple.elf', 'cpu-syscall.elf'];
  const r = runKernel(
    'tvisor',
    mods.flatMap((m) => ['--module', `${B}/${m}`]),
  );
  assert.match(r.stdout, /^\[g1\] SUMMARY: \d+ passed, 0 failed/m);
  assert.match(r.stdout, /^\[g3\] SUMMARY: \d+ passed, 0 failed/m);
  assert.match(r.stdout, /g2 .*: triple fault/);
  assert.match(r.stdout, /g0 .*: stopped by tvisor/);
  assert.equal(r.status, 3); // not every guest ended with code 0
});

test('the virtual platform tvisor gives its guests (incl. single-step over emulated instructions)', () => {
  const r = runKernel('tvisor', ['--append', 'mem=24', '--module', `${B}/tvisor-platform.elf=mem=24`]);
  assert.match(r.stdout, /^\[g0\] SUMMARY: \d+ passed, 0 failed/m, r.stdout);
  assert.equal(r.status, 1);
});

test('bad input: a module that is not a multiboot image, a guest too large, no module', () => {
  for (const [args, pat] of [
    [['--module', 'guests/README.md'], /not a multiboot image/],
    [['--append', 'mem=2', '--module', `${B}/cpu-paging.elf`], /does not fit/],
    [[], /no guests/],
  ] as const) {
    const r = runKernel('tvisor', [...args]);
    assert.match(r.stdout, pat);
    assert.ok(r.status !== 0 && r.status !== 1, `status ${r.status}`);
  }
});
