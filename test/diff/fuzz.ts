// Long-running differential fuzzer for the CPU core.
//
//   node dist/test/diff/fuzz.js [--cases N] [--seed S] [--group NAME[,NAME...]]
//                               [--batch B] [--max-report K] [--native-only]
//   node dist/test/diff/fuzz.js --group NAME --seed S --index I    (one case, in full)
//   node dist/test/diff/fuzz.js --list
//
// Cases are generated in batches, round-robin over the groups, executed on the
// host CPU and in the simulator, and every mismatch is printed with the
// arguments that reproduce it. Exit status: 0 all agree, 1 mismatches, 2 usage.
// --native-only checks the harness and generators without the simulator: each
// case runs twice with different bytes around the operand window (reads or
// writes outside it are generator bugs), and exceptions outside the groups
// that expect them are reported.
import { compareResults, describeCase, hex64, hexBytes, vectorName } from './compare.js';
import { GROUPS, availableGroups, findGroup, generate, generateOne } from './gen.js';
import type { Group } from './gen.js';
import { hostFeatures, runNative } from './native.js';
import { diffCases, nativeCheck } from './run.js';
import { REG_NAMES } from './types.js';
import type { DiffResult } from './types.js';

interface Args {
  cases: number;
  seed: string;
  groups: string[];
  batch: number;
  maxReport: number;
  nativeOnly: boolean;
  index: number | null;
  list: boolean;
}

const USAGE =
  'usage: fuzz [--cases N] [--seed S] [--group NAME[,NAME...]] [--batch B] [--max-report K] [--native-only]\n' +
  '       fuzz --group NAME --seed S --index I\n' +
  '       fuzz --list';

function parseArgs(argv: string[]): Args {
  const a: Args = {
    cases: 1_000_000,
    seed: 'fuzz-1',
    groups: [],
    batch: 5000,
    maxReport: 20,
    nativeOnly: false,
    index: null,
    list: false,
  };
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 0) usage(`${name} needs a non-negative integer`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--cases':
        a.cases = num(k, v);
        i++;
        break;
      case '--seed':
        if (v === undefined) usage('--seed needs a value');
        a.seed = v;
        i++;
        break;
      case '--group':
        if (v === undefined) usage('--group needs a value');
        a.groups.push(...v.split(',').filter((x) => x));
        i++;
        break;
      case '--batch':
        a.batch = Math.max(1, num(k, v));
        i++;
        break;
      case '--max-report':
        a.maxReport = num(k, v);
        i++;
        break;
      case '--index':
        a.index = num(k, v);
        i++;
        break;
      case '--native-only':
        a.nativeOnly = true;
        break;
      case '--list':
        a.list = true;
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        usage(`unknown argument ${k}`);
    }
  }
  return a;
}

function usage(msg: string): never {
  console.error(`fuzz: ${msg}\n${USAGE}`);
  process.exit(2);
}

function resultText(label: string, r: DiffResult): string {
  if (r.vector !== -1) return `  ${label}: exception ${vectorName(r.vector)}`;
  const lines = [`  ${label}: rflags=${hex64(r.rflags)}`];
  for (let i = 0; i < 16; i += 4) {
    lines.push(
      `  ${label}: ` +
        [0, 1, 2, 3].map((j) => `${REG_NAMES[i + j].padStart(3)}=${hex64(r.regs[i + j])}`).join(' '),
    );
  }
  lines.push(`  ${label}: mem=${hexBytes(r.mem)}`);
  return lines.join('\n');
}

async function showOne(g: Group, a: Args, index: number): Promise<number> {
  const c = generateOne(g, a.seed, index);
  const [nat] = runNative([c]);
  console.log(describeCase(c));
  console.log(resultText('native', nat));
  if (a.nativeOnly) return 0;
  const { runSnippet64 } = await import('./sim.js');
  const sim = runSnippet64(c);
  console.log(resultText('sim   ', sim));
  const msg = compareResults(c, nat, sim);
  console.log(msg ? 'MISMATCH' : 'agree');
  return msg ? 1 : 0;
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  if (a.list) {
    for (const g of GROUPS) {
      console.log(`${g.name.padEnd(12)} ${g.desc}${g.requires ? ` [needs ${g.requires.join(', ')}]` : ''}`);
    }
    return 0;
  }
  const feats = hostFeatures();
  let groups = a.groups.length ? a.groups.map(findGroup) : GROUPS;
  if (a.index !== null) {
    if (groups.length !== 1) usage('--index needs exactly one --group');
    return showOne(groups[0], a, a.index);
  }
  const avail = new Set(availableGroups(feats).map((g) => g.name));
  const skipped = groups.filter((g) => !avail.has(g.name));
  for (const g of skipped) console.error(`fuzz: skipping ${g.name}: host lacks ${g.requires?.join(', ')}`);
  groups = groups.filter((g) => avail.has(g.name));
  if (!groups.length) usage('no runnable groups');

  if (!a.nativeOnly) {
    const sim = await import('./sim.js');
    if (!sim.simAvailable) {
      console.error(`fuzz: ${sim.simUnavailableReason} (use --native-only to check the harness alone)`);
      return 2;
    }
  }
  console.error(
    `fuzz: ${a.cases} cases, seed ${a.seed}, ${groups.length} groups, host ${feats.vendor}` +
      (a.nativeOnly ? ' (native self-check)' : ''),
  );
  const perGroup = new Map<string, { cases: number; bad: number }>();
  let done = 0;
  let bad = 0;
  let reported = 0;
  const t0 = Date.now();
  for (let k = 0; done < a.cases; k++) {
    const g = groups[k % groups.length];
    const first = Math.floor(k / groups.length) * a.batch;
    const n = Math.min(a.batch, a.cases - done);
    let reports: string[];
    let mismatches: number;
    if (a.nativeOnly) {
      reports = nativeCheck(g, a.seed, first, n);
      mismatches = reports.length;
    } else {
      const cases = generate(g, n, a.seed, first);
      const r = diffCases(
        cases,
        Math.max(0, a.maxReport - reported),
        (i) => `reproduce: --seed ${a.seed} --group ${g.name} --index ${first + i}`,
      );
      reports = r.reports;
      mismatches = r.mismatches;
    }
    for (const rep of reports.slice(0, Math.max(0, a.maxReport - reported))) {
      console.log(rep + '\n');
      reported++;
    }
    done += n;
    bad += mismatches;
    const s = perGroup.get(g.name) ?? { cases: 0, bad: 0 };
    s.cases += n;
    s.bad += mismatches;
    perGroup.set(g.name, s);
    const secs = (Date.now() - t0) / 1000;
    const line = `fuzz: ${done}/${a.cases} cases, ${bad} mismatches, ${Math.round(done / secs)} cases/s`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}   `);
    else if (done === a.cases || Math.floor(done / 100000) !== Math.floor((done - n) / 100000))
      console.error(line);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  for (const [name, s] of perGroup) {
    if (s.bad) console.log(`${name}: ${s.bad}/${s.cases} mismatches`);
  }
  console.log(bad ? `FAIL: ${bad} of ${done} cases mismatched` : `ok: ${done} cases agree`);
  return bad ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`fuzz: ${(e as Error).stack ?? String(e)}`);
    process.exit(2);
  },
);
