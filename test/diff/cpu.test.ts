// Differential CPU test: every opcode group, thousands of seeded cases each,
// executed on the host CPU (native.c) and in the simulator (runSnippet64);
// results must agree outside the flags/registers the SDM leaves undefined.
// Reproduce one case with: node dist/test/diff/fuzz.js --seed <SEED> --group <g> --index <i>
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GROUPS, generate } from './gen.js';
import type { Group } from './gen.js';
import { hostFeatures } from './native.js';
import { diffCases } from './run.js';
import { simAvailable, simUnavailableReason } from './sim.js';

/** Fixed seed: the suite is deterministic. fuzz.ts explores other seeds. */
const SEED = 'turtles-cpu-diff-1';

function skipReason(g: Group): string | false {
  const f = hostFeatures();
  const missing = (g.requires ?? []).filter((k) => f[k] !== true);
  return missing.length ? `host CPU lacks ${missing.join(', ')}` : false;
}

if (!simAvailable) {
  test('differential CPU tests: simulator side', () => {
    assert.fail(`cannot run the differential CPU tests: ${simUnavailableReason}`);
  });
} else {
  for (const g of GROUPS) {
    const n = g.count ?? 2000;
    test(`diff ${g.name}: ${g.desc} (${n} cases)`, { skip: skipReason(g) }, () => {
      const cases = generate(g, n, SEED);
      const r = diffCases(cases, 8, (i) => `--seed ${SEED} --group ${g.name} --index ${i}`);
      if (r.mismatches) {
        assert.fail(
          `${r.mismatches}/${n} mismatches in group ${g.name}; first ${r.reports.length}:\n\n` +
            r.reports.join('\n\n'),
        );
      }
    });
  }
}
