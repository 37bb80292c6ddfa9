/**
 * L0's accounting and the `--stats` document: every cycle has one owner (guest code at a
 * level, L0's work, the hardware's switches, idle time) and the parts add up to the machine's
 * total, for one VM (`run --l0`), for a stack (`up`, per VM and in total), and on the bare machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Stats } from '../../src/l0/index.js';
import { cyclesJson, type StatsJson, type CyclesJson } from '../../src/cli/stats-json.js';
import { CLI, runKernel } from '../support/run-kernel.js';

const dir = mkdtempSync(join(tmpdir(), 'turtles-stats-'));

const parts = (c: CyclesJson): number =>
  Object.values(c.byLevel).reduce((a, b) => a + b, 0) + c.switches + c.idle;
const exitTotal = (exits: { count: number }[]): number => exits.reduce((a, e) => a + e.count, 0);

function statsOf(args: string[], image: string): { status: number | null; s: StatsJson } {
  const f = join(dir, `${image}-${args.length}.json`);
  const r = runKernel(image, [...args, '--stats', f]);
  return { status: r.status, s: JSON.parse(readFileSync(f, 'utf8')) as StatsJson };
}

test('Stats: cycles() adds every part; merge adds counters; cyclesJson names a gap', () => {
  const a = new Stats();
  a.l0 = 10;
  a.switches = 1000;
  a.addGuest('L1', 500);
  a.countExit('L1', 'CPUID', 'L0', 2);
  const b = new Stats();
  b.idle = 7;
  b.addGuest('L2', 3);
  b.countExit('L1', 'CPUID', 'L0');
  b.instructions = 5;
  b.merge(a);
  assert.equal(b.cycles(), 10 + 1000 + 500 + 7 + 3);
  assert.equal(b.exitCount('CPUID'), 3);
  assert.equal(b.instructions, 5);
  assert.deepEqual(cyclesJson(b), {
    total: 1520,
    byLevel: { L0: 10, L1: 500, L2: 3 },
    switches: 1000,
    idle: 7,
  });
  // A total the parts do not explain is reported, not hidden.
  assert.equal(cyclesJson(b, 1600).unattributed, 80);
});

test('run --l0 --stats: the DESIGN.md fields, and L1 + L0 + switches + idle = total', () => {
  for (const [image, args] of [
    ['cpu-paging', []],
    ['cpuid-bench', ['--append', 'n=3000']],
    // Long enough to span several of L0's slices (each ends with a timer exit).
    ['bench-loop', ['--append', 'iters=1000000']],
  ] as const) {
    const { status, s } = statsOf(['--l0', ...args], image);
    assert.equal(status, 1);
    for (const k of ['cycles', 'instructions', 'exits', 'l0ExitsPerReflectedExit', 'wallSeconds', 'mips'])
      assert.ok(k in s, `${image}: no ${k}`);
    const c = s.cycles;
    const vms = s.vms ?? [];
    assert.ok(c.total > 0 && c.byLevel.L1 > 0 && c.byLevel.L0 > 0 && c.switches > 0, JSON.stringify(c));
    assert.equal(c.unattributed, undefined, `${image}: ${JSON.stringify(c)}`);
    assert.equal(parts(c), c.total, `${image}: ${JSON.stringify(c)}`);
    // One VM: its own account is the whole machine's (L0 did nothing for nobody).
    assert.equal(vms.length, 1);
    assert.equal(parts(vms[0].cycles), c.total);
    assert.equal(vms[0].instructions, s.instructions);
    assert.equal(exitTotal(vms[0].exits), exitTotal(s.exits));
    assert.ok(s.instructions > 0 && s.mips > 0 && s.wallSeconds > 0);
    // Switches: 1,000 cycles for each exit L0 handled and each slice that ended.
    assert.ok(c.switches >= 1000 * exitTotal(s.exits), `${image}: switches ${c.switches}`);
  }
});

test('up --stats: per-VM parts add up to each VM total, and the VMs (with idle) to the machine total', () => {
  const f = join(dir, 'stack.json');
  writeFileSync(
    f,
    JSON.stringify({
      vms: [
        { name: 'a', image: resolve('guests/build/cpu-paging.elf'), memMiB: 32 },
        { name: 'b', image: resolve('guests/build/bench-loop.elf'), args: 'iters=600000', memMiB: 16 },
        { name: 'c', image: resolve('guests/build/cpuid-bench.elf'), args: 'n=500', memMiB: 16 },
      ],
    }),
  );
  const out = join(dir, 'stack-stats.json');
  const r = spawnSync(process.execPath, [CLI, 'up', f, '--stats', out], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  const s = JSON.parse(readFileSync(out, 'utf8')) as StatsJson;
  const vms = s.vms ?? [];
  assert.equal(vms.length, 3);
  assert.equal(parts(s.cycles), s.cycles.total);
  let sum = 0,
    vmL0 = 0,
    insns = 0,
    exits = 0;
  for (const v of vms) {
    assert.equal(parts(v.cycles), v.cycles.total, v.name);
    assert.equal(v.cycles.idle, 0, `${v.name}: idle time belongs to no VM`);
    sum += v.cycles.total;
    vmL0 += v.cycles.byLevel.L0;
    insns += v.instructions;
    exits += exitTotal(v.exits);
  }
  // What is not any VM's is L0's work for nobody (before the first entry) and idle time.
  assert.equal(s.cycles.total - sum, s.cycles.byLevel.L0 - vmL0 + s.cycles.idle);
  assert.equal(insns, s.instructions);
  assert.equal(exits, exitTotal(s.exits));
  assert.ok(vms[2].exits.some((e) => e.reason === 'CPUID' && e.count >= 500));
});

test('run --stats on the bare machine: every cycle counts as L0', () => {
  const { status, s } = statsOf([], 'hello');
  assert.equal(status, 1);
  assert.equal(s.cycles.byLevel.L0, s.cycles.total);
  assert.equal(parts(s.cycles), s.cycles.total);
  assert.deepEqual(s.exits, []);
  assert.equal(s.vms, undefined);
});
