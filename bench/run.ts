/**
 * `npm run bench`: guest MIPS of the simulated CPU on the benchmark kernels.
 * (a) bench-loop.elf: a long-mode add/xor/dec/jnz loop with paging on;
 * (b) bench-workload.elf: C built with gcc -O2 (PRNG fill, sort, FNV hash).
 * Wall-clock time is measured here and only here; tests never time anything.
 */
import { readFileSync } from 'node:fs';
import { Machine } from '../src/hw/index.js';

interface BenchResult {
  name: string;
  instructions: number;
  cycles: number;
  seconds: number;
  mips: number;
  output: string;
  ended: string;
}

function bench(name: string, image: string, args: string): BenchResult {
  let out = '';
  const m = new Machine({ memMiB: 128, serial: (b) => (out += String.fromCharCode(b)) });
  m.loadMultiboot(new Uint8Array(readFileSync(image)), image, args, []);
  const t0 = process.hrtime.bigint();
  const r = m.run(1e12);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const instructions = m.instructions;
  return {
    name,
    instructions,
    cycles: m.cycles,
    seconds,
    mips: instructions / seconds / 1e6,
    output: out.trim().split('\n').slice(-1)[0] ?? '',
    ended: r.kind === 'exit' ? `exit ${r.code}` : r.kind,
  };
}

const only = process.argv[2];
const runs: [string, string, string][] = [
  ['integer loop (long mode, paging)', 'guests/build/bench-loop.elf', 'iters=30000000'],
  ['C workload (gcc -O2: fill, sort, hash 4 MiB)', 'guests/build/bench-workload.elf', 'mb=4'],
];
const rss0 = process.memoryUsage().rss;
for (const [name, image, args] of runs) {
  if (only && !name.includes(only)) continue;
  const r = bench(name, image, args);
  console.log(
    `${r.name.padEnd(46)} ${r.mips.toFixed(1).padStart(7)} MIPS  ${(r.instructions / 1e6).toFixed(1)}M insns in ${r.seconds.toFixed(2)} s  (${r.ended}; "${r.output}")`,
  );
}
console.log(
  `peak RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB (start ${(rss0 / 1048576).toFixed(0)} MiB, guest RAM 128 MiB)`,
);
