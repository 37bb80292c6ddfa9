/**
 * Scenario files with nested L1 hypervisors (docs/CLI.md "Scenario files"): `nested: true` gives
 * a VM a virtual VT-x with the options of `turtles run --l0 --nested`, and `guests` become the
 * L1 hypervisor's multiboot modules (tvisor runs each as an L2 guest). examples/two-tvisors.yaml
 * runs two tvisors side by side, two L2 guests each: every L2 kernel prints what it prints on
 * the bare machine, behind both prefixes, and the statistics count each VM's nested exits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../../src/common/index.js';
import { loadScenario } from '../../src/cli/scenario-file.js';
import { startScenario } from '../../src/cli/up.js';
import { SerialOut } from '../../src/cli/serial.js';
import { CLI } from '../support/run-kernel.js';

const dir = mkdtempSync(join(tmpdir(), 'turtles-scenario-nested-'));
const GUESTS = resolve('guests/build');
const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function loadError(name: string, text: string): string {
  try {
    loadScenario(file(name, text));
  } catch (e) {
    assert.ok(e instanceof UserError, `not a UserError: ${(e as Error).stack}`);
    assert.ok(!e.message.includes('\n'), `more than one line: ${e.message}`);
    return e.message;
  }
  assert.fail(`${name} was accepted`);
}

test('nested keys: validation with one line naming the file and the path of the value', () => {
  const tv = join(GUESTS, 'tvisor.elf');
  const hello = join(GUESTS, 'hello.elf');
  const vm = (extra: string): string => `vms:\n  - name: a\n    image: ${tv}\n${extra}`;
  const cases: [string, string, RegExp][] = [
    [
      'nestedno.yaml',
      vm('    nested: yes please\n'),
      /nestedno\.yaml: vms\[0\]\.nested: must be true or false/,
    ],
    [
      'guests-flat.yaml',
      vm(`    guests:\n      - ${hello}\n`),
      /vms\[0\]\.guests: L2 guests need an L1 hypervisor: set nested: true/,
    ],
    ['drw-flat.yaml', vm('    drw: false\n'), /vms\[0\]\.drw: applies to nested VMs only: set nested: true/],
    ['nmmu-flat.yaml', vm('    nestedMmu: shadow\n'), /vms\[0\]\.nestedMmu: applies to nested VMs only/],
    [
      'nmmu.yaml',
      vm('    nested: true\n    nestedMmu: npt\n'),
      /vms\[0\]\.nestedMmu: must be "ept" or "shadow" \(got "npt"\)/,
    ],
    [
      'merge.yaml',
      vm('    nested: true\n    dirtyMerge: 0\n'),
      /vms\[0\]\.dirtyMerge: must be true or false \(got 0\)/,
    ],
    [
      'bulk.yaml',
      vm('    nested: true\n    bulkCopy: "no"\n'),
      /vms\[0\]\.bulkCopy: must be true or false \(got "no"\)/,
    ],
    [
      'glist.yaml',
      vm(`    nested: true\n    guests: ${hello}\n`),
      /vms\[0\]\.guests: must be a list \(got "/,
    ],
    [
      'gkey.yaml',
      vm(`    nested: true\n    guests:\n      - file: ${hello}\n`),
      /vms\[0\]\.guests\[0\]\.file: unknown key \(expected one of: image, args\)/,
    ],
    [
      'gnoimg.yaml',
      vm('    nested: true\n    guests:\n      - args: x\n'),
      /vms\[0\]\.guests\[0\]\.image: is required/,
    ],
    [
      'gargs.yaml',
      vm(`    nested: true\n    guests:\n      - image: ${hello}\n        args: 3\n`),
      /vms\[0\]\.guests\[0\]\.args: must be a string \(got 3\)/,
    ],
    [
      'gmissing.yaml',
      vm('    nested: true\n    guests:\n      - nope.elf\n'),
      /vms\[0\]\.guests\[0\]: cannot read image .*nope\.elf: no such file/,
    ],
    [
      'gnotmb.yaml',
      vm(`    nested: true\n    guests:\n      - ${hello}\n      - ${resolve('package.json')}\n`),
      /vms\[0\]\.guests\[1\]: .*package\.json: not a multiboot image/,
    ],
  ];
  for (const [name, text, want] of cases) assert.match(loadError(name, text), want, name);
});

test('nested options and guests reach the VM as run --l0 --nested would set them', () => {
  const p = file(
    'opts.yaml',
    [
      'vms:',
      '  - name: plain',
      `    image: ${join(GUESTS, 'hello.elf')}`,
      '    memMiB: 8',
      '  - name: tv',
      `    image: ${join(GUESTS, 'tvisor.elf')}`,
      '    memMiB: 64',
      '    nested: true',
      '    nestedMmu: shadow',
      '    drw: false',
      '    dirtyMerge: false',
      '    modules: [{ file: ' + join(GUESTS, 'hello.elf') + ', args: first }]',
      '    guests:',
      `      - ${join(GUESTS, 'cpu-arith.elf')}`,
      `      - { image: ${join(GUESTS, 'bench-workload.elf')}, args: mb=1 }`,
      '',
    ].join('\n'),
  );
  const sc = loadScenario(p);
  assert.equal(sc.vms[0].nested, false);
  assert.deepEqual(sc.vms[0].guests, []);
  // modules first, then the guests, in file order, with their command lines
  assert.deepEqual(
    sc.vms[1].loadedModules.map((m) => [m.name.replace(/.*\//, ''), m.args]),
    [
      ['hello.elf', 'first'],
      ['cpu-arith.elf', ''],
      ['bench-workload.elf', 'mb=1'],
    ],
  );
  const { vms } = startScenario(sc, 1e9, (prefix) => new SerialOut(prefix, () => {}));
  assert.equal(vms[0].nested, undefined);
  assert.deepEqual(vms[1].nested, { mmu: 'shadow', drw: false, dirtyMerge: false, bulkCopy: true });
});

test('examples/two-tvisors.yaml: two tvisors, two L2 guests each, every L2 result as on the bare machine', () => {
  const bare = (image: string, args: string[] = []): string[] =>
    results(cli(['run', `guests/prebuilt/${image}.elf`, ...args]).stdout);
  const stats = join(dir, 'two-tvisors.json');
  const r = cli(['up', 'examples/two-tvisors.yaml', '--stats', stats]);
  assert.equal(r.status, 1, r.stderr + r.stdout.slice(-3000));
  const lines = (prefix: string): string[] =>
    r.stdout
      .split('\n')
      .filter((l) => l.startsWith(prefix))
      .map((l) => l.slice(prefix.length));
  // Each L2 kernel's results, behind "[VM] [gN] ".
  assert.deepEqual(results(lines('[tv-ept] [g0] ').join('\n')), bare('cpu-arith'));
  assert.deepEqual(lines('[tv-ept] [g1] '), ['bench-workload: mb=1 hash=0xeefc3c5687219927']);
  assert.deepEqual(results(lines('[tv-shadow] [g0] ').join('\n')), bare('cpu-exceptions'));
  assert.deepEqual(lines('[tv-shadow] [g1] '), ['hello from turtles']);
  for (const vm of ['tv-ept', 'tv-shadow']) {
    assert.ok(lines(`[${vm}] `).includes('tvisor: 2 of 2 guests ended with code 0'), vm);
    assert.match(
      r.stderr,
      new RegExp(`turtles: \\[${vm}\\] status 1, \\d+ exits, \\d+ cycles: debug-exit 0`),
    );
  }
  assert.ok(lines('[tv-ept] ').some((l) => /mmu=ept/.test(l)));
  assert.ok(lines('[tv-shadow] ').some((l) => /mmu=shadow/.test(l)));

  // Per-VM nested exits: L2 exits reflected to L1 and L0's exits per reflected exit.
  const s = JSON.parse(readFileSync(stats, 'utf8')) as {
    l0ExitsPerReflectedExit: number;
    exits: { level: string; reason: string; handledBy: string; count: number }[];
    vms: {
      name: string;
      status: number;
      l0ExitsPerReflectedExit: number;
      exits: { level: string; reason: string; handledBy: string; count: number }[];
    }[];
  };
  assert.deepEqual(
    s.vms.map((v) => [v.name, v.status]),
    [
      ['tv-ept', 1],
      ['tv-shadow', 1],
    ],
  );
  const l2 = (v: (typeof s.vms)[number], reason: string, by: string): number =>
    v.exits.find((e) => e.level === 'L2' && e.reason === reason && e.handledBy === by)?.count ?? 0;
  for (const v of s.vms) {
    const reflected = v.exits.filter((e) => e.level === 'L2' && e.handledBy === 'L1');
    assert.ok(reflected.length > 0, `${v.name}: no L2 exit reflected to L1`);
    assert.ok(l2(v, 'IO_INSTRUCTION', 'L1') > 0, `${v.name}: L2's port I/O goes to tvisor`);
    assert.ok(
      v.l0ExitsPerReflectedExit > 1,
      `${v.name}: l0ExitsPerReflectedExit ${v.l0ExitsPerReflectedExit}`,
    );
    // L1's own exits (its VMX instructions, handled by L0) are counted too.
    assert.ok(
      v.exits.some((e) => e.level === 'L1' && e.reason === 'VMRESUME'),
      v.name,
    );
  }
  const [ept, shadow] = s.vms;
  assert.ok(l2(ept, 'EPT_VIOLATION', 'L0') > 0, 'ept02 is built by L0 on EPT violations');
  assert.ok(
    l2(ept, 'PREEMPTION_TIMER', 'L1') > 0,
    "tvisor's time slices (the VMX-preemption timer) reach it",
  );
  assert.ok(l2(shadow, 'EXCEPTION_NMI', 'L1') > 0, 'tvisor shadows its guests: their #PFs exit to it');
  assert.equal(l2(shadow, 'EPT_VIOLATION', 'L1'), 0);
  // The totals merge the VMs.
  const total = (reason: string): number =>
    s.exits.find((e) => e.level === 'L2' && e.reason === reason && e.handledBy === 'L1')?.count ?? 0;
  assert.equal(total('IO_INSTRUCTION'), l2(ept, 'IO_INSTRUCTION', 'L1') + l2(shadow, 'IO_INSTRUCTION', 'L1'));
  assert.ok(s.l0ExitsPerReflectedExit > 1);
});

/**
 * Isolation with a hostile L1 hypervisor: vmx-tests.elf's `hostile` group points VMCS pointers,
 * EPT tables, bitmaps and MSR lists at physical addresses outside its RAM and builds an EPT loop,
 * next to a CPU self-test VM. The hostile VM gets the hardware's answers (its cases pass, as on
 * the bare machine); the neighbour passes, executes exactly the instructions it executes next to
 * a hypervisor that runs no case, and its RAM ends byte for byte the same.
 */
function runNextToHypervisor(group: string): { out: string; insns: number; ram: string; ends: unknown[] } {
  const f = file(
    `hostile-${group}.yaml`,
    [
      'vms:',
      '  - name: hostile',
      `    image: ${join(GUESTS, 'vmx-tests.elf')}`,
      `    args: "group=${group}"`,
      '    memMiB: 64',
      '    nested: true',
      '  - name: selftest',
      `    image: ${join(GUESTS, 'cpu-paging.elf')}`,
      '    memMiB: 32',
      '',
    ].join('\n'),
  );
  let out = '';
  const { l0, vms } = startScenario(
    loadScenario(f),
    20e9,
    (prefix) => new SerialOut(prefix, (c) => (out += c.toString())),
  );
  l0.run(20e9);
  const st = vms[1];
  const ram = createHash('sha256')
    .update(l0.machine.mem.u8.subarray(st.ramHpa, st.ramHpa + st.ramBytes))
    .digest('hex');
  return { out, insns: st.stats.instructions, ram, ends: vms.map((v) => v.end) };
}

test('a hostile L1 hypervisor gets the hardware answers and cannot reach its neighbour', () => {
  const lines = (out: string, name: string): string[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith(`[${name}] `))
      .map((l) => l.slice(name.length + 3));
  const wild = runNextToHypervisor('hostile');
  const calm = runNextToHypervisor('none');
  const hostile = results(lines(wild.out, 'hostile').join('\n'));
  assert.ok(hostile.length >= 9, wild.out.slice(-2000));
  assert.ok(
    hostile.every((l) => l.startsWith('PASS') || /^SUMMARY: \d+ passed, 0 failed$/.test(l)),
    hostile.join('\n'),
  );
  assert.deepEqual(wild.ends[0], { kind: 'exit', code: 0 });
  const bare = results(
    spawnSync(process.execPath, [CLI, 'run', join(GUESTS, 'cpu-paging.elf')], { encoding: 'utf8' }).stdout,
  );
  for (const r of [wild, calm]) {
    assert.deepEqual(results(lines(r.out, 'selftest').join('\n')), bare);
    assert.deepEqual(r.ends[1], { kind: 'exit', code: 0 });
  }
  assert.equal(wild.insns, calm.insns);
  assert.equal(wild.ram, calm.ram);
});
