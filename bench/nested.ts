/**
 * `npm run bench:nested`: the paper's Figure 10 beside ours — cycles per CPUID at L1 (single
 * level) and at L2 (tvisor as L1 under L0 with --nested), split into L0, L1, L2 and mode
 * switches, with L0 exits per L2 CPUID, for each combination of the optimizations; and a
 * CPU-bound loop at L2 against L1 (wall clock).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = 'dist/src/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'turtles-bench-nested-'));

interface Run {
  stdout: string;
  stats: {
    cycles: { total: number; byLevel: { L0: number; L1: number; L2: number }; switches: number };
    instructions: number;
    l0ExitsPerReflectedExit: number;
    wallSeconds: number;
  };
}
function run(args: string[]): Run {
  const stats = join(dir, 's.json');
  const r = spawnSync(process.execPath, [CLI, 'run', ...args, '--stats', stats], { encoding: 'utf8' });
  if (r.status !== 1) throw new Error(`turtles run ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  return { stdout: r.stdout, stats: JSON.parse(readFileSync(stats, 'utf8')) };
}
const perCpuid = (out: string): number => Number(/cycles\/cpuid=(\d+)/.exec(out)?.[1] ?? NaN);

const N = 5000;
const single = run(['--l0', 'guests/build/cpuid-bench.elf', '--append', `n=${N}`]);
const s1 = single.stats;
console.log('CPUID exit cost (simulated cycles per CPUID; the paper: OSDI 2010 §4.3, Figure 10)');
console.log(
  `  L1 (single level): ${perCpuid(single.stdout)}: L0 ${(s1.cycles.byLevel.L0 / N).toFixed(0)} + switches ${(s1.cycles.switches / N).toFixed(0)}   [paper: ~2.5k = ~1.5k + ~1.0k]`,
);
const configs: [string, string[], string][] = [
  ['L2, no optimization', ['--no-drw', '--no-dirty-merge', '--no-bulk-copy'], 'paper: ~58k, 13 L0 exits'],
  ['L2, dirty merge + bulk copy', ['--no-drw'], ''],
  ['L2, DRW only', ['--no-dirty-merge', '--no-bulk-copy'], ''],
  ['L2, all optimizations', [], 'paper (PV DRW): ~11.9k, 2 L0 exits'],
  ['L2, all opts, shadow-on-shadow', ['--mmu', 'shadow'], ''],
];
for (const [label, flags, paper] of configs) {
  const r = run([
    '--l0',
    '--nested',
    ...flags,
    'guests/build/tvisor.elf',
    '--module',
    `guests/build/cpuid-bench.elf=n=${N}`,
  ]);
  const s = r.stats;
  const c = perCpuid(r.stdout);
  console.log(
    `  ${label.padEnd(30)} ${String(c).padStart(6)} (${(c / perCpuid(single.stdout)).toFixed(1)}x): L0 ${(s.cycles.byLevel.L0 / N).toFixed(0)}, L1 ${(s.cycles.byLevel.L1 / N).toFixed(0)}, switches ${(s.cycles.switches / N).toFixed(0)}; L0 exits per L2 CPUID ${s.l0ExitsPerReflectedExit.toFixed(2)}${paper ? `   [${paper}]` : ''}`,
  );
}
// CPU-bound loop: L2 (tvisor guest) against L1 (wall-clock MIPS of the guest's instructions).
const iters = 'iters=30000000';
const l1 = run(['--l0', 'guests/build/bench-loop.elf', '--append', iters]);
const l2 = run([
  '--l0',
  '--nested',
  'guests/build/tvisor.elf',
  '--module',
  `guests/build/bench-loop.elf=${iters}`,
]);
const mips = (s: Run['stats']): number => s.instructions / s.wallSeconds / 1e6;
console.log(
  `CPU-bound loop: L1 ${mips(l1.stats).toFixed(1)} MIPS, L2 ${mips(l2.stats).toFixed(1)} MIPS (${((100 * mips(l2.stats)) / mips(l1.stats)).toFixed(0)}% of L1; target >= 90%)`,
);
