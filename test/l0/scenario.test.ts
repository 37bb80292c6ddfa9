/**
 * Scenario files and `turtles up`: validation with one clear line naming the file and the
 * value's path; several VMs with prefixed serial output, per-VM summaries and the stack's
 * status; and isolation: a VM that scribbles over all of its RAM and pokes every port and MMIO
 * page ends at worst itself, while the self-test next to it passes and L0's memory is untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { UserError } from '../../src/common/index.js';
import { validateScenario, MAX_TOTAL_MEM_MIB, L0_POOL_START } from '../../src/l0/index.js';
import { loadScenario, parseScenarioText } from '../../src/cli/scenario-file.js';
import { startScenario, stackStatus } from '../../src/cli/up.js';
import { SerialOut } from '../../src/cli/serial.js';
import { CLI, runKernel } from '../support/run-kernel.js';

const GUESTS = resolve('guests/build');
const dir = mkdtempSync(join(tmpdir(), 'turtles-scenario-'));
const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));

function up(file: string, args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'up', file, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
/** The one-line error loading `text` as scenario file `name` gives (the message after "turtles: "). */
function loadError(name: string, text: string): string {
  const p = file(name, text);
  try {
    loadScenario(p);
  } catch (e) {
    assert.ok(e instanceof UserError, `not a UserError: ${(e as Error).stack}`);
    assert.ok(!e.message.includes('\n'), `more than one line: ${e.message}`);
    return e.message;
  }
  assert.fail(`${name} was accepted`);
}

test('validation: each problem is one line naming the file and the path of the value', () => {
  const hello = join(GUESTS, 'hello.elf');
  const vm = (extra: string): string => `vms:\n  - name: a\n    image: ${hello}\n${extra}`;
  const cases: [string, string, RegExp][] = [
    ['empty.yaml', '', /empty\.yaml: the file is empty/],
    ['top.yaml', 'vm: []\n', /top\.yaml: vm: unknown key \(expected one of: description, vms\)/],
    ['novms.yaml', 'description: x\n', /novms\.yaml: vms: is required/],
    ['nolist.yaml', 'vms: 3\n', /vms: must be a list of VMs \(got 3\)/],
    ['none.yaml', 'vms: []\n', /vms: must list at least one VM/],
    [
      'key.yaml',
      vm('    memory: 64\n'),
      /key\.yaml: vms\[0\]\.memory: unknown key \(expected one of: name, image/,
    ],
    ['mem.yaml', vm('    memMiB: x\n'), /vms\[0\]\.memMiB: must be an integer between 2 and \d+ \(got "x"\)/],
    ['mem1.yaml', vm('    memMiB: 1\n'), /vms\[0\]\.memMiB: must be an integer between 2 and/],
    ['memf.yaml', vm('    memMiB: 2.5\n'), /vms\[0\]\.memMiB: must be an integer .*\(got 2\.5\)/],
    ['cpus0.yaml', vm('    cpus: 0\n'), /vms\[0\]\.cpus: must be an integer between 1 and 8 \(got 0\)/],
    ['cpus9.yaml', vm('    cpus: 9\n'), /vms\[0\]\.cpus: must be an integer between 1 and 8 \(got 9\)/],
    ['mmu.yaml', vm('    mmu: npt\n'), /vms\[0\]\.mmu: must be "ept" or "shadow" \(got "npt"\)/],
    ['args.yaml', vm('    args: 5\n'), /vms\[0\]\.args: must be a string \(got 5\)/],
    ['nestedno.yaml', vm('    nested: no\n'), /vms\[0\]\.nested: must be true or false \(got "no"\)/],
    [
      'guests.yaml',
      vm('    guests: []\n'),
      /vms\[0\]\.guests: L2 guests need an L1 hypervisor: set nested: true/,
    ],
    ['mods.yaml', vm('    modules: x.elf\n'), /vms\[0\]\.modules: must be a list \(got "x.elf"\)/],
    ['modkey.yaml', vm('    modules:\n      - path: x\n'), /vms\[0\]\.modules\[0\]\.path: unknown key/],
    ['name.yaml', `vms:\n  - name: "a b"\n    image: ${hello}\n`, /vms\[0\]\.name: must be 1-32 letters/],
    ['noname.yaml', `vms:\n  - image: ${hello}\n`, /vms\[0\]\.name: is required/],
    ['noimage.yaml', `vms:\n  - name: a\n`, /vms\[0\]\.image: is required/],
    [
      'dup.yaml',
      `vms:\n  - { name: a, image: ${hello} }\n  - { name: a, image: ${hello} }\n`,
      /vms\[1\]\.name: duplicate name "a" \(also vms\[0\]\.name\)/,
    ],
    [
      'total.yaml',
      `vms:\n  - { name: a, image: ${hello}, memMiB: 2000 }\n  - { name: b, image: ${hello}, memMiB: 2000 }\n`,
      new RegExp(
        `total\\.yaml: vms: the VMs need 4000 MiB of RAM together; L0 can give its VMs at most ${MAX_TOTAL_MEM_MIB} MiB`,
      ),
    ],
    [
      'missing.yaml',
      `vms:\n  - name: a\n    image: nothere.elf\n`,
      /missing\.yaml: vms\[0\]\.image: cannot read .*nothere\.elf: no such file/,
    ],
    [
      'missingmod.yaml',
      vm('    modules:\n      - file: gone.elf\n        args: x=1\n'),
      /vms\[0\]\.modules\[0\]: cannot read module .*gone\.elf: no such file/,
    ],
    [
      'dir.yaml',
      `vms:\n  - name: a\n    image: .\n`,
      /vms\[0\]\.image: cannot read image .*: is a directory/,
    ],
    ['bad.yaml', 'vms:\n  - name: a\n  - [\n', /bad\.yaml: line \d+, column \d+: not valid YAML/],
    [
      'dupkey.yaml',
      `vms: []\nvms: []\n`,
      /dupkey\.yaml: line 2, column 1: not valid YAML: Map keys must be unique/,
    ],
    [
      'bad.json',
      '{\n  "vms": [\n    {"name": "a",}\n  ]\n}\n',
      /bad\.json: line 3, column \d+: not valid JSON/,
    ],
  ];
  for (const [name, text, re] of cases) assert.match(loadError(name, text), re, name);
});

test('validation is pure data: defaults, module forms, relative paths resolve against the file', () => {
  const sc = validateScenario(
    { vms: [{ name: 'x', image: 'k.elf', modules: ['m.elf', { file: 'n.elf', args: 'a=1' }] }] },
    's.json',
  );
  assert.deepEqual(sc.vms[0], {
    name: 'x',
    image: 'k.elf',
    args: '',
    modules: [
      { file: 'm.elf', args: '' },
      { file: 'n.elf', args: 'a=1' },
    ],
    memMiB: 128,
    cpus: 1,
    mmu: 'ept',
    nested: false,
    guests: [],
  });
  assert.deepEqual(parseScenarioText('{"vms": []}', 'a.json'), { vms: [] });
  // An image next to the scenario file, named relatively, is found from any working directory.
  copyFileSync(join(GUESTS, 'hello.elf'), join(dir, 'local.elf'));
  const p = file('rel.yaml', 'vms:\n  - name: h\n    image: local.elf\n    memMiB: 8\n');
  const loaded = loadScenario(relative(process.cwd(), p));
  assert.equal(resolve(loaded.vms[0].imagePath), join(dir, 'local.elf'));
  assert.ok(loaded.vms[0].kernel.length > 0);
});

test('the status of a stack: the first VM that failed, else 1 if any exited 0, else 0', () => {
  assert.equal(stackStatus([1, 1]), 1);
  assert.equal(stackStatus([0, 0]), 0);
  assert.equal(stackStatus([0, 1]), 1);
  assert.equal(stackStatus([1, 3, 12]), 3);
  assert.equal(stackStatus([12, 3]), 12);
  assert.equal(stackStatus([185]), 185);
});

test('turtles up: bad input is one line on stderr and status 2', () => {
  for (const [f, re] of [
    [join(dir, 'does-not-exist.yaml'), /cannot read scenario file .*: no such file/],
    [
      file('cli-key.json', JSON.stringify({ vms: [{ name: 'a', image: 'x', ram: 1 }] })),
      /vms\[0\]\.ram: unknown key/,
    ],
  ] as const) {
    const r = up(f);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
});

test('turtles up: two VMs, serial lines prefixed with [name], a summary line each, stats per VM', () => {
  const bare = results(runKernel('cpu-paging').stdout);
  const f = file(
    'two.json',
    JSON.stringify({
      description: 'a self-test next to hello',
      vms: [
        { name: 'paging', image: join(GUESTS, 'cpu-paging.elf'), memMiB: 32 },
        { name: 'hello', image: relative(dir, join(GUESTS, 'hello.elf')), memMiB: 8, args: 'x=1' },
      ],
    }),
  );
  const stats = join(dir, 'two-stats.json');
  const r = up(f, ['--stats', stats]);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.ok(
    lines.every((l) => /^\[(paging|hello)\] /.test(l)),
    r.stdout,
  );
  assert.deepEqual(
    lines.filter((l) => l.startsWith('[hello] ')),
    ['[hello] hello from turtles'],
  );
  const paging = lines.filter((l) => l.startsWith('[paging] ')).map((l) => l.slice('[paging] '.length));
  assert.deepEqual(results(paging.join('\n')), bare);
  const summary = r.stderr.trim().split('\n');
  assert.equal(summary.length, 2, r.stderr);
  assert.match(summary[0], /^turtles: \[paging\] status 1, \d+ exits, \d+ cycles: debug-exit 0$/);
  assert.match(summary[1], /^turtles: \[hello\] status 1, \d+ exits, \d+ cycles: debug-exit 0$/);
  const s = JSON.parse(readFileSync(stats, 'utf8'));
  assert.deepEqual(
    s.vms.map((v: { name: string; result: string; code: number; status: number }) => [
      v.name,
      v.result,
      v.code,
      v.status,
    ]),
    [
      ['paging', 'exit', 0, 1],
      ['hello', 'exit', 0, 1],
    ],
  );
  assert.equal(s.result, 'exit');
});

test('turtles up with one VM: output unprefixed, the same as turtles run --l0', () => {
  const f = file(
    'one.yaml',
    `vms:\n  - name: only\n    image: ${join(GUESTS, 'cpu-tlb.elf')}\n    memMiB: 64\n`,
  );
  const r = up(f);
  const run = runKernel('cpu-tlb', ['--l0', '--mem', '64']);
  assert.equal(r.stdout, run.stdout);
  assert.equal(r.status, run.status);
  assert.match(r.stderr, /^turtles: \[only\] status 1, /);
});

/** Host memory outside the scribbler's RAM, in 64 KiB pieces: [address, hash]. */
type MemPieces = [number, string][];
function runIsolation(scribbleArgs: string): {
  out: string;
  ends: unknown[];
  insns: number[];
  pieces: MemPieces;
  accounted: [number, number];
  owners: Map<number, string>;
} {
  const f = file(
    'isolation.yaml',
    [
      'description: the isolation test of issue 6',
      'vms:',
      '  - name: scribble',
      `    image: ${join(GUESTS, 'l0-scribble.elf')}`,
      `    args: "${scribbleArgs}"`,
      '    memMiB: 16',
      '  - name: selftest',
      `    image: ${join(GUESTS, 'cpu-paging.elf')}`,
      '    memMiB: 32',
      '',
    ].join('\n'),
  );
  const sc = loadScenario(f);
  let out = '';
  const { l0, vms } = startScenario(
    sc,
    20e9,
    (prefix) => new SerialOut(prefix, (c) => (out += c.toString())),
  );
  l0.run(20e9);
  const mem = l0.machine.mem.u8;
  const [scribbler] = vms;
  const pieces: MemPieces = [];
  const PIECE = 0x10000;
  for (let a = 0; a < mem.length; a += PIECE)
    if (a + PIECE <= scribbler.ramHpa || a >= scribbler.ramHpa + scribbler.ramBytes)
      pieces.push([
        a,
        createHash('sha256')
          .update(mem.subarray(a, a + PIECE))
          .digest('hex'),
      ]);
  // What lives where, to name a piece that changed.
  const owners = new Map<number, string>();
  for (const vm of vms) {
    owners.set(vm.ept01 & ~(PIECE - 1), `${vm.name}'s ept01 region`);
    owners.set(vm.msrBitmap & ~(PIECE - 1), `${vm.name}'s MSR bitmap region`);
    for (const v of vm.vcpus) owners.set(v.vmcs01 & ~(PIECE - 1), `${vm.name}'s vmcs01 region`);
    for (let a = vm.ramHpa; a < vm.ramHpa + vm.ramBytes; a += PIECE) owners.set(a, `${vm.name}'s RAM`);
  }
  return {
    out,
    ends: vms.map((v) => v.end),
    insns: vms.map((v) => v.stats.instructions),
    pieces,
    accounted: [l0.accountedCycles(), l0.machine.cycles],
    owners,
  };
}

test('isolation: a VM that scribbles over its RAM and pokes every port and MMIO page ends at worst itself', () => {
  const bare = results(runKernel('cpu-paging').stdout);
  // The same stack twice: with the scribbler doing everything, and with it ending at once.
  const wild = runIsolation('');
  const calm = runIsolation('ram=0 ports=0 mmio=0');
  const lines = (out: string, name: string): string[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith(`[${name}] `))
      .map((l) => l.slice(name.length + 3));

  // The scribbler did its work and ended itself: with its own exit code, or stopped by L0 with
  // a report (an access L0 does not emulate), never anything worse.
  const sl = lines(wild.out, 'scribble');
  assert.match(sl.join('\n'), /l0-scribble: ram: wrote and checked \d+ KiB in \d+ ranges, 0 mismatches/);
  assert.match(sl.join('\n'), /l0-scribble: ports: read and wrote 65521 ports as bytes and 16378 as dwords/);
  const end = wild.ends[0] as { kind: string; code?: number; detail?: string };
  assert.ok(
    (end.kind === 'exit' && end.code === 0x5c) || (end.kind === 'stopped' && (end.detail ?? '').length > 0),
    `the scribbler ended ${JSON.stringify(end)}`,
  );
  if (end.kind === 'exit') assert.ok(sl.includes('l0-scribble: done'), sl.join('\n'));
  assert.deepEqual(calm.ends[0], { kind: 'exit', code: 0x5c });

  // The self-test next to it passed, exactly as on the bare machine, executing exactly the
  // same instructions as next to a scribbler that does nothing.
  for (const r of [wild, calm]) {
    assert.deepEqual(results(lines(r.out, 'selftest').join('\n')), bare);
    assert.deepEqual(r.ends[1], { kind: 'exit', code: 0 });
  }
  assert.equal(wild.insns[1], calm.insns[1]);

  // Outside the scribbler's own RAM, host memory ends up byte for byte as in the calm run: L0's
  // VMXON region and page pool (ept01 tables, MSR bitmaps, VMCS regions) and the self-test's RAM.
  const changed = wild.pieces
    .filter(([a, h], i) => calm.pieces[i][0] !== a || calm.pieces[i][1] !== h)
    .map(
      ([a]) => `0x${a.toString(16)} (${wild.owners.get(a) ?? (a < L0_POOL_START ? 'below the pool' : 'L0')})`,
    );
  assert.deepEqual(changed, [], `host memory changed by the scribbler: ${changed.join(', ')}`);

  // L0 went on accounting for every cycle.
  assert.equal(wild.accounted[0], wild.accounted[1]);
});
