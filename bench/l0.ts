/** L0 benchmarks: a CPUID loop in an L1 guest (simulated cycles per exit and their split). */
import { readFileSync } from 'node:fs';
import { Machine } from '../src/hw/index.js';
import { L0, hostMemMiB } from '../src/l0/index.js';

export function l0Benchmarks(): string[] {
  const n = 100_000;
  const m = new Machine({ memMiB: hostMemMiB([{ memMiB: 64 }]), serial: () => {} });
  let out = '';
  const l0 = new L0(m);
  const vm = l0.addVm({
    name: 'bench-cpuid',
    memMiB: 64,
    cpus: 1,
    serial: (b) => (out += String.fromCharCode(b)),
  });
  vm.load(new Uint8Array(readFileSync('guests/build/bench-cpuid.elf')), 'bench-cpuid.elf', `n=${n}`, []);
  const t0 = process.hrtime.bigint();
  l0.run(1e12);
  const end = vm.end!;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuids = vm.stats.exitCount('CPUID');
  const line = out.trim().split('\n').pop() ?? '';
  return [
    `CPUID loop at L1 under L0: ${(vm.stats.l0 / cpuids).toFixed(0)} cycles in L0 + ${(vm.stats.switches / cpuids).toFixed(0)} in switches per CPUID (paper: ~1.5k + ~1.0k = ~2.5k); guest says "${line}"; ${(cpuids / s / 1e3).toFixed(0)}k exits/host-second (${end.kind})`,
  ];
}
