/**
 * `turtles up FILE`: run the stack a scenario file describes (docs/CLI.md "turtles up"): every
 * VM an L1 guest of one L0 on one machine, scheduled round robin until each has ended.
 */
import { UserError } from '../common/index.js';
import type { L0, Vm } from '../l0/index.js';
import { EXIT_POWER_OFF, debugExitStatus } from './exit-codes.js';
import { addL1Vm, checkL0Options, newL0, vmEnding, type RunOptions } from './run.js';
import { loadScenario, type LoadedScenario } from './scenario-file.js';
import { SerialOut } from './serial.js';
import { statsJson, writeStats, type VmEnding } from './stats-json.js';

export interface UpOptions {
  stats?: string;
  maxCycles: number;
}

/** The run options one VM of a scenario stands for (so it passes the same checks as `run --l0`). */
function vmRunOptions(vm: LoadedScenario['vms'][number], maxCycles: number): RunOptions {
  return {
    append: vm.args,
    module: [],
    mem: vm.memMiB,
    cpus: vm.cpus,
    maxCycles,
    ept: true,
    vpid: true,
    unrestrictedGuest: true,
    vmcsShadowing: true,
    l0: true,
    mmu: vm.mmu,
    nested: vm.nested,
    nestedMmu: vm.nestedMmu,
    drw: vm.drw,
    dirtyMerge: vm.dirtyMerge,
    bulkCopy: vm.bulkCopy,
  };
}

export interface StartedScenario {
  l0: L0;
  vms: Vm[];
  outs: SerialOut[];
}

/**
 * Build L0 and every VM of a loaded scenario, ready to run. With more than one VM each VM's
 * serial lines carry a `[name] ` prefix. A problem with one VM is one line naming it.
 */
export function startScenario(
  sc: LoadedScenario,
  maxCycles: number,
  serial: (prefix: string) => SerialOut = (prefix) => new SerialOut(prefix),
): StartedScenario {
  const opts = sc.vms.map((vm) => vmRunOptions(vm, maxCycles));
  const named = <T>(i: number, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof UserError)
        throw new UserError(`${sc.file}: vms[${i}] (${sc.vms[i].name}): ${e.message}`);
      throw e;
    }
  };
  opts.forEach((o, i) => named(i, () => checkL0Options(o)));
  const l0 = newL0(sc.vms, opts[0]);
  const outs = sc.vms.map((vm) => serial(sc.vms.length > 1 ? `[${vm.name}] ` : ''));
  const vms = sc.vms.map((vm, i) =>
    named(i, () => addL1Vm(l0, vm.name, vm.imagePath, vm.kernel, vm.loadedModules, opts[i], outs[i].push)),
  );
  return { l0, vms, outs };
}

/**
 * The status of a whole stack (docs/CLI.md): each VM gets the status `turtles run --l0` would
 * give it; a VM succeeded with 1 (debug-exit 0) or 0 (powered off). If one did not, the status
 * of the first such VM in file order; else 1 if any VM exited with debug-exit 0, else 0.
 */
export function stackStatus(statuses: readonly number[]): number {
  const bad = statuses.find((s) => !succeeded(s));
  if (bad !== undefined) return bad;
  return statuses.includes(debugExitStatus(0)) ? debugExitStatus(0) : EXIT_POWER_OFF;
}
const succeeded = (status: number): boolean => status === debugExitStatus(0) || status === EXIT_POWER_OFF;

function describe(e: VmEnding, detail: string | undefined): string {
  switch (e.result) {
    case 'exit':
      return `debug-exit ${e.code}`;
    case 'shutdown':
      return 'powered its VM off';
    case 'max-cycles':
      return 'stopped at --max-cycles';
    default:
      return `L0 stopped the VM: ${detail ?? ''}`;
  }
}

export function upCommand(file: string, o: UpOptions): number {
  const sc = loadScenario(file);
  const { l0, vms, outs } = startScenario(sc, o.maxCycles);
  const t0 = process.hrtime.bigint();
  l0.run(o.maxCycles);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const out of outs) out.flush();
  const endings = vms.map(vmEnding);
  for (const [i, e] of endings.entries()) {
    const end = vms[i].end;
    const [first, ...rest] = end?.kind === 'stopped' ? end.detail.split('\n') : [];
    const exits = e.stats.exitCounts().reduce((n, x) => n + x.count, 0);
    process.stderr.write(
      `turtles: [${e.name}] status ${e.status}, ${exits} exits, ${e.stats.cycles()} cycles: ${describe(e, first)}\n`,
    );
    if (rest.length) process.stderr.write(rest.join('\n') + '\n');
  }
  if (o.stats) {
    const m = l0.machine;
    // The stack's result is that of the VM that decides its status (the first one that failed).
    const decider = endings.find((e) => !succeeded(e.status)) ?? endings[0];
    writeStats(
      o.stats,
      statsJson({
        cycles: m.cycles,
        instructions: m.instructions,
        wallSeconds: wall,
        result: decider.result,
        l0: { totals: l0.totals(), vms: endings },
      }),
    );
  }
  return stackStatus(endings.map((e) => e.status));
}
