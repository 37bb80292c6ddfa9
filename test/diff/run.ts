// Runs cases on both sides (host CPU and simulator) and collects mismatches.
import { compareResults, describeCase, vectorName } from './compare.js';
import { generate } from './gen.js';
import type { Group } from './gen.js';
import { STATUS_READ_OUTSIDE, STATUS_WROTE_OUTSIDE, runNative } from './native.js';
import type { NativeResult } from './native.js';
import { runSnippet64 } from './sim.js';
import type { DiffResult, GenCase } from './types.js';

export interface DiffOutcome {
  /** Number of cases that disagree (or made the simulator throw). */
  mismatches: number;
  /** Reports for the first `maxReports` of them. */
  reports: string[];
  /** Indices (within the input) of the mismatching cases. */
  failed: number[];
}

export function diffCases(
  cases: GenCase[],
  maxReports = 8,
  label = (i: number) => `case #${i}`,
): DiffOutcome {
  const native = runNative(cases);
  const out: DiffOutcome = { mismatches: 0, reports: [], failed: [] };
  cases.forEach((c, i) => {
    let msg: string | null;
    let sim: DiffResult;
    try {
      sim = runSnippet64(c);
      msg = compareResults(c, native[i], sim);
    } catch (e) {
      msg = `[${c.group}] ${c.text}: simulator threw: ${(e as Error).stack ?? String(e)}`;
    }
    if (msg) {
      out.mismatches++;
      out.failed.push(i);
      if (out.reports.length < maxReports) out.reports.push(`${label(i)}\n${msg}`);
    }
  });
  return out;
}

/** Harness/generator self-check for one batch; returns problem reports. */
export function nativeCheck(g: Group, seed: string, first: number, n: number): string[] {
  const cases = generate(g, n, seed, first);
  const a = runNative(cases, { checkWindow: true });
  const b = runNative(cases);
  const problems: string[] = [];
  const same = (x: NativeResult, y: NativeResult) =>
    x.vector === y.vector &&
    (x.vector !== -1 ||
      (x.rflags === y.rflags &&
        x.regs.every((v, i) => v === y.regs[i]) &&
        x.mem.every((v, i) => v === y.mem[i])));
  cases.forEach((c, i) => {
    const why: string[] = [];
    if (a[i].status & STATUS_WROTE_OUTSIDE) why.push('wrote outside the operand window');
    if (a[i].status & STATUS_READ_OUTSIDE) why.push('result depends on bytes outside the operand window');
    if (a[i].vector !== -1 && !g.faults) why.push(`unexpected ${vectorName(a[i].vector)}`);
    if (!same(a[i], b[i])) why.push('not deterministic');
    if (why.length) {
      problems.push(
        `--seed ${seed} --group ${g.name} --index ${first + i}: ${why.join(', ')}\n${describeCase(c)}`,
      );
    }
  });
  return problems;
}
