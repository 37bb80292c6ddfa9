/**
 * L0 benchmarks (issue 6 "Speed"):
 * - the CPU-bound loop (bench-loop.elf) as an L1 guest of L0 against the same loop bare, in the
 *   same process, alternating, best of 3 each: wall-clock MIPS and the ratio (target >= 90%);
 * - a CPUID loop at L1: simulated cycles per CPUID and their split between L0 and switches,
 *   side by side with the paper's ~2.5k = ~1.5k + ~1.0k (OSDI 2010 §4.3);
 * - the page-fault-heavy kernel (bench-pagefault.elf) under --mmu ept and --mmu shadow:
 *   simulated cycles, exits and wall time ("not available" when L0 refuses or stops the VM).
 * The L1 runs go through the same path as `turtles run --l0` (src/cli/run.ts).
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../src/common/index.js';
import { checkL0Options, newL0, addL1Vm, type RunOptions } from '../src/cli/run.js';
import type { Stats, VmEnd } from '../src/l0/index.js';
import { bench } from './measure.js';

export interface L1Result {
  instructions: number;
  cycles: number;
  seconds: number;
  mips: number;
  cpuSeconds: number;
  cpuMips: number;
  output: string;
  end: VmEnd;
  stats: Stats;
}

/** Run `image` as the one L1 guest of L0 with these `run --l0` options; wall clock around L0.run only. */
export function runL1(image: string, args: string, opts: Partial<RunOptions> = {}): L1Result {
  const o: RunOptions = {
    append: args,
    module: [],
    mem: 128,
    cpus: 1,
    maxCycles: 1e12,
    ept: true,
    vpid: true,
    unrestrictedGuest: true,
    vmcsShadowing: true,
    l0: true,
    ...opts,
  };
  checkL0Options(o);
  const l0 = newL0([{ memMiB: o.mem }], o);
  let out = '';
  const vm = addL1Vm(l0, image, image, new Uint8Array(readFileSync(image)), [], o, (b) => {
    out += String.fromCharCode(b);
  });
  const i0 = l0.machine.instructions;
  const t0 = process.hrtime.bigint(),
    c0 = process.cpuUsage();
  l0.run(o.maxCycles);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0),
    cpuSeconds = (c.user + c.system) / 1e6;
  const instructions = l0.machine.instructions - i0;
  return {
    instructions,
    cycles: l0.machine.cycles,
    seconds,
    mips: instructions / seconds / 1e6,
    cpuSeconds,
    cpuMips: instructions / cpuSeconds / 1e6,
    output: out.trim().split('\n').pop() ?? '',
    end: vm.end!,
    stats: vm.stats,
  };
}

const ended = (e: VmEnd): string =>
  e.kind === 'exit'
    ? `exit ${e.code}`
    : e.kind === 'stopped'
      ? `stopped: ${e.detail.split('\n')[0]}`
      : e.kind;
const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(' ');

/**
 * (a) The integer loop bare and as L1, alternating, `rounds` times each; best wall-clock MIPS of
 * each and their ratio, and the same by process CPU time (steadier when the host is busy).
 */
export function loopL1VsBare(rounds = 3, iters = 30_000_000): string {
  const bare: { mips: number; cpuMips: number }[] = [],
    l1: L1Result[] = [];
  for (let k = 0; k < rounds; k++) {
    bare.push(bench('guests/build/bench-loop.elf', `iters=${iters}`));
    l1.push(runL1('guests/build/bench-loop.elf', `iters=${iters}`));
  }
  const best = (xs: { mips: number; cpuMips: number }[], k: 'mips' | 'cpuMips'): number =>
    Math.max(...xs.map((x) => x[k]));
  const [b, g, bc, gc] = [best(bare, 'mips'), best(l1, 'mips'), best(bare, 'cpuMips'), best(l1, 'cpuMips')];
  const last = l1[l1.length - 1],
    s = last.stats;
  return (
    `(a) loop as L1 under L0 (best of ${rounds})          ${g.toFixed(1).padStart(7)} MIPS  bare ${b.toFixed(1)} MIPS  ratio ${((g / b) * 100).toFixed(0)}% (target >= 90%);` +
    ` by CPU time ${gc.toFixed(1)} vs ${bc.toFixed(1)}, ${((gc / bc) * 100).toFixed(0)}%` +
    `  [wall MIPS, L1: ${fmt(l1.map((r) => r.mips))}; bare: ${fmt(bare.map((r) => r.mips))}; ${(last.instructions / 1e6).toFixed(0)}M insns, ${s.slices} slices, ${s.exitCounts().reduce((n, e) => n + e.count, 0)} exits; ${ended(last.end)}]`
  );
}

/** (b) CPUID at L1: simulated cycles per exit, split between L0 and switches. */
export function cpuidSplit(n = 100_000): string {
  const r = runL1('guests/build/cpuid-bench.elf', `n=${n}`, { mem: 64 });
  const cpuids = r.stats.exitCount('CPUID');
  return `CPUID loop at L1 under L0: ${(r.stats.l0 / cpuids).toFixed(0)} cycles in L0 + ${(r.stats.switches / cpuids).toFixed(0)} in switches per CPUID (paper: ~1.5k + ~1.0k = ~2.5k); guest says "${r.output}"; ${(cpuids / r.seconds / 1e3).toFixed(0)}k exits/host-second (${ended(r.end)})`;
}

/** (c) Page faults at L1: --mmu ept against --mmu shadow. */
export function pagefaultEptVsShadow(args = 'pages=1024 rounds=10'): string[] {
  const out: string[] = [];
  let ept: L1Result | undefined;
  for (const mmu of ['ept', 'shadow'] as const) {
    let r: L1Result;
    try {
      r = runL1('guests/build/bench-pagefault.elf', args, { mmu, mem: 64 });
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      out.push(`page faults at L1, --mmu ${mmu}: not available (${e.message})`);
      continue;
    }
    if (r.end.kind !== 'exit' || r.end.code !== 0) {
      out.push(`page faults at L1, --mmu ${mmu}: not available (the VM ended ${ended(r.end)})`);
      continue;
    }
    const exits = r.stats.exitCounts().reduce((n, e) => n + e.count, 0);
    const vsEpt =
      mmu === 'shadow' && ept ? `, ${(r.cycles / ept.cycles).toFixed(2)}x the simulated cycles of ept` : '';
    out.push(
      `page faults at L1, --mmu ${mmu.padEnd(6)}          ${(r.cycles / 1e6).toFixed(1).padStart(7)}M simulated cycles (L0 ${(r.stats.l0 / 1e6).toFixed(1)}M, switches ${(r.stats.switches / 1e6).toFixed(1)}M), ${exits} exits, ${r.seconds.toFixed(2)} s wall${vsEpt}; guest says "${r.output}"`,
    );
    if (mmu === 'ept') ept = r;
  }
  return out;
}

export function l0Benchmarks(): string[] {
  return [loopL1VsBare(), cpuidSplit(), ...pagefaultEptVsShadow()];
}
