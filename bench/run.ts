/**
 * `npm run bench [filter]`: speed of the simulated machine.
 * - guest MIPS on the part-1 kernels: a long-mode integer loop with paging (a) and a
 *   C workload built with gcc -O2 (b);
 * - the platform: a 10 kHz APIC-timer kernel and a 2-CPU run of the loop;
 * - VT-x: the loop as a VMX guest under EPT against bare, and CPUID exits per host second.
 * Wall-clock time is measured here and only here; tests never time anything.
 */
import { vmxBenchmarks } from './vmx.js';
import { bench } from './measure.js';
import { l0Benchmarks } from './l0.js';

const only = process.argv[2];
const runs: [string, string, string, number, string[]?][] = [
  ['(a) integer loop (long mode, paging)', 'guests/build/bench-loop.elf', 'iters=30000000', 1],
  ['(b) C workload (gcc -O2: fill, sort, hash 4 MiB)', 'guests/build/bench-workload.elf', 'mb=4', 1],
  ['10 kHz APIC timer + integer work', 'guests/build/bench-timer.elf', 'ms=200', 1],
  ['2 CPUs, integer loop on each', 'guests/build/bench-smp.elf', 'iters=10000000', 2],
  [
    '(a) as a tvisor guest (EPT)',
    'guests/build/tvisor.elf',
    'mmu=ept',
    1,
    ['guests/build/bench-loop.elf=iters=30000000'],
  ],
  [
    'page faults under tvisor, mmu=ept',
    'guests/build/tvisor.elf',
    'mmu=ept',
    1,
    ['guests/build/bench-pagefault.elf=pages=1024 rounds=10'],
  ],
  [
    'page faults under tvisor, mmu=shadow',
    'guests/build/tvisor.elf',
    'mmu=shadow',
    1,
    ['guests/build/bench-pagefault.elf=pages=1024 rounds=10'],
  ],
];
const rss0 = process.memoryUsage().rss;
for (const [name, image, args, cpus, modules] of runs) {
  if (only && !name.includes(only)) continue;
  const r = bench(image, args, cpus, modules);
  console.log(
    `${name.padEnd(48)} ${r.mips.toFixed(1).padStart(7)} MIPS  ${(r.instructions / 1e6).toFixed(1)}M insns in ${r.seconds.toFixed(2)} s, ${(r.cycles / 1e6).toFixed(1)}M simulated cycles  (${r.ended}; "${r.output}")`,
  );
}
if (!only || 'vmx'.includes(only)) for (const line of vmxBenchmarks()) console.log(line);
if (!only || 'l0'.includes(only)) for (const line of l0Benchmarks()) console.log(line);
console.log(
  `peak RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB (start ${(rss0 / 1048576).toFixed(0)} MiB, guest RAM 128 MiB)`,
);
