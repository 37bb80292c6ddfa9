/** `turtles run`: boot a multiboot image on the bare machine and report how it ended. */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../common/index.js';
import { Machine } from '../hw/index.js';
import {
  EXIT_BAD_INPUT,
  EXIT_HALTED,
  EXIT_MAX_CYCLES,
  EXIT_POWER_OFF,
  EXIT_TRIPLE_FAULT,
  EXIT_VM_STOPPED,
  debugExitStatus,
} from './exit-codes.js';
import { L0, hostMemMiB, type Vm, type VmEnd } from '../l0/index.js';
import type { NestedOptions } from '../l0/nested/options.js';
import { SerialOut } from './serial.js';
import { statsJson, writeStats, type VmEnding } from './stats-json.js';

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
  nestedMmu?: string;
  drw?: boolean;
  dirtyMerge?: boolean;
  bulkCopy?: boolean;
}

/** Read a kernel or module file; a problem is one clear line naming `what` (e.g. "image"). */
export function readImage(path: string, what: string): Uint8Array {
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
  if (o.mmu !== undefined || o.nested || o.nestedMmu !== undefined)
    throw new UserError('--mmu, --nested and --nested-mmu apply to --l0 runs');
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
  if (o.stats)
    writeStats(
      o.stats,
      statsJson({ cycles: m.cycles, instructions: m.instructions, wallSeconds: wall, result: r.kind }),
    );
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
 * The option checks of an L1 VM, shared by `turtles run --l0` and `turtles up` (each VM of a
 * scenario goes through them too).
 */
export function checkL0Options(o: RunOptions): void {
  if (o.mmu !== undefined && !['ept', 'shadow'].includes(o.mmu))
    throw new UserError(`--mmu must be ept or shadow`);
  // Without EPT in the machine L0 uses shadow paging (--mmu shadow) on its own.
  if (o.mmu === 'ept' && !o.ept)
    throw new UserError('--mmu ept needs EPT in the machine: drop --no-ept, or use --mmu shadow');
  if (o.nestedMmu !== undefined && !['ept', 'shadow'].includes(o.nestedMmu))
    throw new UserError('--nested-mmu must be ept or shadow');
  if (
    !o.nested &&
    (o.nestedMmu !== undefined || o.drw !== undefined || o.dirtyMerge === false || o.bulkCopy === false)
  )
    throw new UserError(
      '--nested-mmu, --drw/--no-drw, --no-dirty-merge and --no-bulk-copy apply to --nested runs',
    );
  // With L0 on shadow paging, L1 gets no EPT and shadows L2 itself: shadow-on-shadow.
  if (o.nested && o.nestedMmu === 'ept' && (o.mmu === 'shadow' || !o.ept))
    throw new UserError(
      '--nested-mmu ept needs L0 on EPT: with --mmu shadow or --no-ept, L1 gets no EPT (shadow-on-shadow); drop --nested-mmu ept',
    );
}

/** The nesting options of a run (undefined without --nested). */
export function nestedOptions(o: RunOptions): NestedOptions | undefined {
  if (!o.nested) return undefined;
  return {
    // L0 on shadow paging (--mmu shadow, --no-ept) can only give L1 no EPT: shadow-on-shadow.
    mmu: o.nestedMmu === 'shadow' || o.mmu === 'shadow' || !o.ept ? 'shadow' : 'ept',
    drw: o.drw !== false,
    dirtyMerge: o.dirtyMerge !== false,
    bulkCopy: o.bulkCopy !== false,
  };
}

/** A machine for L0 and VMs of these sizes (`o` gives the VT-x features), with L0 on it. */
export function newL0(vms: readonly { memMiB: number }[], o: RunOptions): L0 {
  const m = new Machine({
    memMiB: hostMemMiB(vms),
    cpus: 1,
    serial: () => {},
    // Unrestricted guest requires EPT (SDM 3C §26.2.1.1): --no-ept takes it away too.
    vmx: {
      ept: o.ept,
      vpid: o.vpid,
      unrestrictedGuest: o.ept && o.unrestrictedGuest,
      vmcsShadowing: o.vmcsShadowing,
    },
  });
  return new L0(m);
}

/** Add an L1 VM to L0 as `o` (a `run --l0` command line or one VM of a scenario) describes it, and load its kernel. */
export function addL1Vm(
  l0: L0,
  name: string,
  image: string,
  kernel: Uint8Array,
  modules: { name: string; data: Uint8Array; args: string }[],
  o: RunOptions,
  serial: (b: number) => void,
): Vm {
  const mmu = o.mmu === 'ept' || o.mmu === 'shadow' ? o.mmu : undefined;
  const vm = l0.addVm({ name, memMiB: o.mem, cpus: o.cpus, serial, mmu, nested: nestedOptions(o) });
  vm.load(kernel, image, o.append ?? '', modules);
  return vm;
}

/** The process status `turtles run --l0` gives a VM that ended this way (docs/CLI.md). */
export function vmEndStatus(end: VmEnd): number {
  switch (end.kind) {
    case 'exit':
      return debugExitStatus(end.code);
    case 'shutdown':
      return EXIT_POWER_OFF;
    case 'max-cycles':
      return EXIT_MAX_CYCLES;
    case 'stopped':
      return EXIT_VM_STOPPED;
  }
}

/** A VM's ending for the stats document and reports. */
export function vmEnding(vm: Vm): VmEnding {
  const end: VmEnd = vm.end ?? { kind: 'stopped', detail: 'did not end (internal error)' };
  return {
    name: vm.name,
    result: end.kind,
    ...(end.kind === 'exit' ? { code: end.code } : {}),
    status: vmEndStatus(end),
    ...(end.kind === 'stopped' ? { detail: end.detail.split('\n')[0] } : {}),
    stats: vm.stats,
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
  checkL0Options(o);
  const l0 = newL0([{ memMiB: o.mem }], o);
  const m = l0.machine;
  const vm = addL1Vm(l0, basename(image), image, kernel, modules, o, out.push);
  const t0 = process.hrtime.bigint();
  l0.run(o.maxCycles);
  const end = vm.end!;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  out.flush();
  switch (end.kind) {
    case 'shutdown':
      process.stderr.write('turtles: the L1 guest powered its VM off\n');
      break;
    case 'max-cycles':
      process.stderr.write(`turtles: stopped after --max-cycles ${o.maxCycles}\n`);
      break;
    case 'stopped':
      process.stderr.write(`turtles: L0 stopped the VM: ${end.detail}\n`);
      break;
  }
  if (o.stats)
    writeStats(
      o.stats,
      statsJson({
        cycles: m.cycles,
        instructions: m.instructions,
        wallSeconds: wall,
        result: end.kind,
        l0: { totals: l0.totals(), vms: [vmEnding(vm)] },
      }),
    );
  return vmEndStatus(end);
}
