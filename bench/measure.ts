/** Boot a kernel image on a fresh machine, run it to the end, and time it (wall clock, benchmarks only). */
import { readFileSync } from 'node:fs';
import { Machine } from '../src/hw/index.js';

export interface BenchResult {
  instructions: number;
  cycles: number;
  seconds: number;
  mips: number;
  /** Process CPU time (user + system) of the run: steadier than wall time on a busy host. */
  cpuSeconds: number;
  cpuMips: number;
  output: string;
  ended: string;
}

export function bench(image: string, args: string, cpus = 1, modules: string[] = []): BenchResult {
  let out = '';
  const m = new Machine({
    memMiB: modules.length ? 256 : 128,
    cpus,
    serial: (b) => (out += String.fromCharCode(b)),
  });
  const mods = modules.map((spec) => {
    const [file, margs] = spec.split('=', 2);
    return { name: file, data: new Uint8Array(readFileSync(file)), args: margs ?? '' };
  });
  m.loadMultiboot(new Uint8Array(readFileSync(image)), image, args, mods);
  const t0 = process.hrtime.bigint(),
    c0 = process.cpuUsage();
  const r = m.run(1e12);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0),
    cpuSeconds = (c.user + c.system) / 1e6;
  const instructions = m.cpus.reduce((a, c) => a + c.instret, 0);
  return {
    instructions,
    cycles: m.cycles,
    seconds,
    mips: instructions / seconds / 1e6,
    cpuSeconds,
    cpuMips: instructions / cpuSeconds / 1e6,
    output: out.trim().split('\n').slice(-1)[0] ?? '',
    ended: r.kind === 'exit' ? `exit ${r.code}` : r.kind,
  };
}
