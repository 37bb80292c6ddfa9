/** `turtles run`: boot a multiboot image on the bare machine and report how it ended. */
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../common/index.js';
import { Machine, CPU_HZ } from '../hw/index.js';
import {
  EXIT_BAD_INPUT,
  EXIT_HALTED,
  EXIT_MAX_CYCLES,
  EXIT_POWER_OFF,
  EXIT_TRIPLE_FAULT,
  EXIT_VM_STOPPED,
  debugExitStatus,
} from './exit-codes.js';
import { L0, hostMemMiB } from '../l0/index.js';

export interface RunOptions {
  append?: string;
  module: string[];
  mem: number;
  cpus: number;
  stats?: string;
  maxCycles: number;
  trace?: string;
  ept: boolean;
  vpid: boolean;
  unrestrictedGuest: boolean;
  vmcsShadowing: boolean;
  l0?: boolean;
  mmu?: string;
  nested?: boolean;
}

function readImage(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : String(code ?? e);
    throw new UserError(`cannot read ${what} ${path}: ${why}`);
  }
}

/** Serial output is written synchronously as it arrives (line-buffered), so nothing is lost on exit. */
class SerialOut {
  private buf: number[] = [];
  push = (b: number): void => {
    this.buf.push(b);
    if (b === 10 || this.buf.length >= 4096) this.flush();
  };
  flush(): void {
    if (this.buf.length) {
      writeSync(1, Buffer.from(this.buf));
      this.buf = [];
    }
  }
}

export function runCommand(image: string, o: RunOptions): number {
  const kernel = readImage(image, 'image');
  const modules = o.module.map((spec) => {
    const eq = spec.indexOf('=');
    const file = eq >= 0 ? spec.slice(0, eq) : spec;
    const args = eq >= 0 ? spec.slice(eq + 1) : '';
    return { name: file, data: readImage(file, 'module'), args };
  });
  const out = new SerialOut();
  if (o.l0) return runUnderL0(image, kernel, modules, o, out);
  if (o.mmu !== undefined || o.nested) throw new UserError('--mmu and --nested apply to --l0 runs');
  const m = new Machine({
    memMiB: o.mem,
    cpus: o.cpus,
    serial: out.push,
    vmx: { ept: o.ept, vpid: o.vpid, unrestrictedGuest: o.unrestrictedGuest, vmcsShadowing: o.vmcsShadowing },
  });
  m.loadMultiboot(kernel, image, o.append ?? '', modules);
  const trace = o.trace ? openTrace(o.trace, m) : undefined;
  const t0 = process.hrtime.bigint();
  const r = m.run(o.maxCycles);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  out.flush();
  trace?.close();
  let status: number;
  switch (r.kind) {
    case 'exit':
      status = debugExitStatus(r.code);
      break;
    case 'shutdown':
      process.stderr.write('turtles: the guest powered the machine off\n');
      status = EXIT_POWER_OFF;
      break;
    case 'triple-fault':
      process.stderr.write(`turtles: ${basename(image)}: triple fault, machine stopped\n${r.detail}\n`);
      status = EXIT_TRIPLE_FAULT;
      break;
    case 'max-cycles':
      process.stderr.write(`turtles: stopped after --max-cycles ${o.maxCycles} (${r.cycles} cycles run)\n`);
      status = EXIT_MAX_CYCLES;
      break;
    case 'halted':
      process.stderr.write(`turtles: ${r.detail}; nothing can wake it, machine stopped\n`);
      status = EXIT_HALTED;
      break;
  }
  if (o.stats) {
    const cycles = m.cycles;
    const stats = {
      cycles: { total: cycles, byLevel: { L0: cycles, L1: 0, L2: 0 }, switches: 0 },
      instructions: m.instructions,
      exits: [] as unknown[],
      l0ExitsPerReflectedExit: 0,
      wallSeconds: wall,
      mips: wall > 0 ? m.instructions / wall / 1e6 : 0,
      simulatedSeconds: cycles / CPU_HZ,
      result: r.kind,
    };
    try {
      writeFileSync(o.stats, JSON.stringify(stats, null, 2) + '\n');
    } catch (e) {
      throw new UserError(`cannot write --stats file ${o.stats}: ${(e as Error).message}`);
    }
  }
  return status;
}
export { EXIT_BAD_INPUT };

/**
 * --trace FILE: one line per executed instruction (CPU, RIP, mnemonic and bytes
 * length, RFLAGS), written through a buffer. Tracing disables compiled blocks.
 */
function openTrace(path: string, m: Machine): { close(): void } {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (e) {
    throw new UserError(`cannot open --trace file ${path}: ${(e as Error).message}`);
  }
  let buf = '';
  const flush = (): void => {
    writeSync(fd, buf);
    buf = '';
  };
  for (const cpu of m.cpus) {
    cpu.trace = (c, i) => {
      const rip = BigInt.asUintN(64, BigInt(c.rip));
      buf += `${c.id} ${rip.toString(16).padStart(16, '0')} ${i.mnemonic.toLowerCase()} ${i.operands} len=${i.len} rflags=${c.getFlags().toString(16)}\n`;
      if (buf.length > 1 << 16) flush();
    };
  }
  return {
    close(): void {
      flush();
      closeSync(fd);
    },
  };
}

/**
 * `turtles run --l0 IMAGE`: IMAGE is an L1 guest of the TypeScript L0. The machine gets
 * the guest's RAM plus room for L0's own structures.
 */
function runUnderL0(
  image: string,
  kernel: Uint8Array,
  modules: { name: string; data: Uint8Array; args: string }[],
  o: RunOptions,
  out: SerialOut,
): number {
  if (o.mmu !== undefined && !['ept', 'shadow'].includes(o.mmu))
    throw new UserError(`--mmu must be ept or shadow`);
  if (o.mmu === 'shadow') throw new UserError('--mmu shadow: only ept is implemented in L0 so far');
  if (o.nested) throw new UserError('--nested is not implemented yet');
  if (!o.ept)
    throw new UserError(
      '--l0 needs EPT in the machine (drop --no-ept): shadow paging in L0 is not implemented yet',
    );
  if (o.cpus !== 1) throw new UserError('--l0 runs one vCPU so far (--cpus 1)');
  const m = new Machine({
    memMiB: hostMemMiB([{ memMiB: o.mem }]),
    cpus: 1,
    serial: () => {},
    vmx: { ept: true, vpid: o.vpid, unrestrictedGuest: true, vmcsShadowing: o.vmcsShadowing },
  });
  const l0 = new L0(m);
  const vm = l0.addVm({ name: basename(image), memMiB: o.mem, cpus: 1, serial: out.push });
  vm.load(kernel, image, o.append ?? '', modules);
  const t0 = process.hrtime.bigint();
  l0.run(o.maxCycles);
  const end = vm.end!;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  out.flush();
  let status: number;
  switch (end.kind) {
    case 'exit':
      status = debugExitStatus(end.code);
      break;
    case 'shutdown':
      process.stderr.write('turtles: the L1 guest powered its VM off\n');
      status = EXIT_POWER_OFF;
      break;
    case 'max-cycles':
      process.stderr.write(`turtles: stopped after --max-cycles ${o.maxCycles}\n`);
      status = EXIT_MAX_CYCLES;
      break;
    case 'stopped':
      process.stderr.write(`turtles: L0 stopped the VM: ${end.detail}\n`);
      status = EXIT_VM_STOPPED;
      break;
  }
  if (o.stats) {
    const cycles = m.cycles;
    const stats = {
      cycles: {
        total: cycles,
        byLevel: { L0: vm.stats.l0, L1: vm.stats.guestCycles('L1'), L2: vm.stats.guestCycles('L2') },
        switches: vm.stats.switches,
        idle: vm.stats.idle,
      },
      instructions: m.instructions,
      exits: vm.stats.exitCounts(),
      l0ExitsPerReflectedExit: 0,
      wallSeconds: wall,
      mips: wall > 0 ? m.instructions / wall / 1e6 : 0,
      simulatedSeconds: cycles / CPU_HZ,
      result: end.kind,
    };
    try {
      writeFileSync(o.stats, JSON.stringify(stats, null, 2) + '\n');
    } catch (e) {
      throw new UserError(`cannot write --stats file ${o.stats}: ${(e as Error).message}`);
    }
  }
  return status;
}
