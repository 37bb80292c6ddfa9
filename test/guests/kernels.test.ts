/**
 * End to end: every guest self-test kernel boots on the bare machine, prints its
 * PASS lines and no FAIL line, and ends with debug-exit code 0 (status 1).
 * Kernels come from `make -C guests` (guests/build/); a missing image fails the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { runKernel } from '../support/run-kernel.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SELF_TESTS = [
  'cpu-exceptions',
  'cpu-paging',
  'cpu-privilege',
  'cpu-syscall',
  'cpu-string',
  'cpu-tlb',
  'cpu-arith',
  'cpu-arith-O0',
  'cpu-modes',
];

test('hello.elf prints the greeting and exits with code 0 (status 1)', () => {
  const r = runKernel('hello');
  assert.equal(r.stdout, 'hello from turtles\n');
  assert.equal(r.status, 1, r.stderr);
});

const KERNEL_ARGS: Record<string, string[]> = { 'platform-tests': ['--cpus', '2'] };
SELF_TESTS.push('platform-tests', 'vmx-tests');
for (const k of SELF_TESTS) {
  test(`${k}.elf passes on the bare machine`, () => {
    const r = runKernel(k, KERNEL_ARGS[k] ?? []);
    const fails = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    assert.deepEqual(fails, [], `${k}: failures\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^PASS /m, `${k}: no PASS line\n${r.stdout}`);
    assert.match(
      r.stdout,
      /SUMMARY: \d+ passed, 0 failed/,
      `${k}: no clean summary\n${r.stdout}\n${r.stderr}`,
    );
    assert.equal(r.status, 1, `${k}: status ${r.status}\n${r.stdout}\n${r.stderr}`);
  });
}

for (const opts of [['--no-ept'], ['--no-vpid', '--no-vmcs-shadowing'], ['--no-unrestricted-guest']]) {
  test(`vmx-tests.elf passes with ${opts.join(' ')}`, () => {
    const r = runKernel('vmx-tests', opts);
    assert.match(
      r.stdout,
      /SUMMARY: \d+ passed, 0 failed/,
      r.stdout
        .split('\n')
        .filter((l) => !l.startsWith('PASS'))
        .join('\n'),
    );
    assert.equal(r.status, 1);
  });
}

test('the same SMP run twice gives identical output and cycle counts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'turtles-det-'));
  const runs = [0, 1].map((k) => {
    const statsFile = join(dir, `s${k}.json`);
    const r = runKernel('platform-tests', ['--cpus', '2', '--stats', statsFile]);
    const stats = JSON.parse(readFileSync(statsFile, 'utf8'));
    return { out: r.stdout, cycles: stats.cycles.total, insns: stats.instructions };
  });
  assert.ok(runs[0].cycles > 0);
  assert.deepEqual(runs[0], runs[1]);
});
