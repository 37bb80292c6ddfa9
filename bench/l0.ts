/** L0 benchmarks: a CPUID loop in an L1 guest (simulated cycles per exit and their split). */
import { readFileSync } from 'node:fs';
import { Machine } from '../src/hw/index.js';
import { Vm } from '../src/l0/index.js';

export function l0Benchmarks(): string[] {
  const n = 100_000;
  const m = new Machine({ memMiB: 64 + 32, serial: () => {} });
  let out = '';
  const vm = new Vm(m, m.vmxHost(0), 64, (b) => (out += String.fromCharCode(b)));
  vm.load(new Uint8Array(readFileSync('guests/build/bench-cpuid.elf')), 'bench-cpuid.elf', `n=${n}`, []);
  const t0 = process.hrtime.bigint();
  const end = vm.run(1e12);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuids = vm.exits.get('CPUID') ?? 0;
  const line = out.trim().split('\n').pop() ?? '';
  return [
    `CPUID loop at L1 under L0: ${(vm.l0Cycles / cpuids).toFixed(0)} cycles in L0 + ${(vm.switchCycles / cpuids).toFixed(0)} in switches per CPUID (paper: ~1.5k + ~1.0k = ~2.5k); guest says "${line}"; ${(cpuids / s / 1e3).toFixed(0)}k exits/host-second (${end.kind})`,
  ];
}
