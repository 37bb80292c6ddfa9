/**
 * The `--stats FILE.json` document (DESIGN.md "CLI (contract)", docs/CLI.md), built in one
 * place for `turtles run` (bare and `--l0`) and `turtles up`.
 *
 * Cycles: `total` is the machine's simulated cycles; `byLevel` (guest code per level, and
 * L0's own work), `switches` (hardware VM exits and entries) and `idle` (no vCPU could run)
 * add up to it exactly. On the bare machine the guest runs where L0 would, so all cycles
 * count as L0. A non-zero `unattributed` would be a bug in the accounting; it is written
 * only then, so that it cannot go unnoticed.
 */
import { writeFileSync } from 'node:fs';
import { UserError } from '../common/index.js';
import { CPU_HZ } from '../hw/index.js';
import type { Stats, ExitCount } from '../l0/index.js';

export interface CyclesJson {
  total: number;
  byLevel: Record<string, number>;
  switches: number;
  idle: number;
  unattributed?: number;
}
export interface VmStatsJson {
  name: string;
  /** How the VM ended: exit, shutdown, stopped, max-cycles. */
  result: string;
  /** The debug-exit value (result "exit"). */
  code?: number;
  /** The process status `turtles run --l0` would give this VM alone. */
  status: number;
  /** The report of L0 when it stopped the VM (first line). */
  detail?: string;
  cycles: CyclesJson;
  instructions: number;
  exits: ExitCount[];
  l0ExitsPerReflectedExit: number;
  /** Instructions L0 emulated in software (real mode under shadow paging). */
  emulatedInstructions: number;
}
export interface StatsJson {
  cycles: CyclesJson;
  instructions: number;
  exits: ExitCount[];
  l0ExitsPerReflectedExit: number;
  /** Under L0: instructions L0 emulated in software (real mode under shadow paging). */
  emulatedInstructions?: number;
  wallSeconds: number;
  mips: number;
  simulatedSeconds: number;
  result: string;
  vms?: VmStatsJson[];
}

/** Cycles of a Stats by level, switches and idle; `total` defaults to the sum of the parts. */
export function cyclesJson(s: Stats, total = s.cycles()): CyclesJson {
  const byLevel: Record<string, number> = { L0: s.l0, L1: 0, L2: 0 };
  for (const [level, c] of [...s.guest].sort(([a], [b]) => a.localeCompare(b))) byLevel[level] = c;
  const out: CyclesJson = { total, byLevel, switches: s.switches, idle: s.idle };
  const missing = total - s.cycles();
  if (missing !== 0) out.unattributed = missing;
  return out;
}

export interface VmEnding {
  name: string;
  result: string;
  code?: number;
  status: number;
  detail?: string;
  stats: Stats;
}

/**
 * The stats document. `l0` is undefined for a bare-machine run; otherwise it carries L0's
 * totals (its own stats merged with every VM's) and each VM's.
 */
export function statsJson(run: {
  cycles: number;
  instructions: number;
  wallSeconds: number;
  result: string;
  l0?: { totals: Stats; vms: VmEnding[] };
}): StatsJson {
  const { cycles, instructions, wallSeconds } = run;
  const base = {
    instructions,
    wallSeconds,
    mips: wallSeconds > 0 ? instructions / wallSeconds / 1e6 : 0,
    simulatedSeconds: cycles / CPU_HZ,
    result: run.result,
  };
  if (!run.l0)
    return {
      cycles: { total: cycles, byLevel: { L0: cycles, L1: 0, L2: 0 }, switches: 0, idle: 0 },
      exits: [],
      l0ExitsPerReflectedExit: 0,
      ...base,
    };
  const t = run.l0.totals;
  return {
    cycles: cyclesJson(t, cycles),
    exits: t.exitCounts(),
    l0ExitsPerReflectedExit: t.l0ExitsPerReflectedExit(),
    emulatedInstructions: t.emulatedInstructions,
    ...base,
    vms: run.l0.vms.map((v) => ({
      name: v.name,
      result: v.result,
      ...(v.code !== undefined ? { code: v.code } : {}),
      status: v.status,
      ...(v.detail !== undefined ? { detail: v.detail } : {}),
      cycles: cyclesJson(v.stats),
      instructions: v.stats.instructions,
      exits: v.stats.exitCounts(),
      l0ExitsPerReflectedExit: v.stats.l0ExitsPerReflectedExit(),
      emulatedInstructions: v.stats.emulatedInstructions,
    })),
  };
}

export function writeStats(path: string, doc: StatsJson): void {
  try {
    writeFileSync(path, JSON.stringify(doc, null, 2) + '\n');
  } catch (e) {
    throw new UserError(`cannot write --stats file ${path}: ${(e as Error).message}`);
  }
}
