// Compares a native result with a simulator result under a case's masks and
// explains any difference.
import type { DiffCase, DiffResult, GenCase } from './types.js';
import { AF, CF, DF, FLAGS_LOADABLE, OF, PF, REG_NAMES, SF, ZF } from './types.js';

const FLAG_BITS: [bigint, string][] = [
  [CF, 'CF'],
  [PF, 'PF'],
  [AF, 'AF'],
  [ZF, 'ZF'],
  [SF, 'SF'],
  [DF, 'DF'],
  [OF, 'OF'],
];

const VECTORS: Record<number, string> = {
  [-1]: 'none',
  0: '#DE',
  1: '#DB',
  3: '#BP',
  4: '#OF',
  5: '#BR',
  6: '#UD',
  7: '#NM',
  8: '#DF',
  10: '#TS',
  11: '#NP',
  12: '#SS',
  13: '#GP',
  14: '#PF',
  16: '#MF',
  17: '#AC',
  18: '#MC',
  19: '#XM',
};

export function vectorName(v: number): string {
  return `${VECTORS[v] ?? 'vector'}(${v})`;
}

export function hex64(v: bigint): string {
  return '0x' + BigInt.asUintN(64, v).toString(16).padStart(16, '0');
}

export function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** "CF ZF" style list of the set flags among `which`. */
export function flagNames(f: bigint, which = FLAGS_LOADABLE): string {
  return FLAG_BITS.filter(([bit]) => (which & bit) !== 0n && (f & bit) !== 0n)
    .map(([, n]) => n)
    .join(' ');
}

function flagsText(f: bigint): string {
  return `0x${(f & FLAGS_LOADABLE).toString(16)} [${flagNames(f)}]`;
}

/** The initial state of a case, one register per column, for messages. */
export function describeCase(c: DiffCase | GenCase): string {
  const lines: string[] = [];
  const g = c as Partial<GenCase>;
  lines.push(`${g.group ? `[${g.group}] ` : ''}${g.text ?? '(no text)'}`);
  lines.push(`  bytes: ${hexBytes(c.code)}`);
  const regs: string[] = [];
  for (let i = 0; i < 16; i++) regs.push(`${REG_NAMES[i].padStart(3)}=${hex64(c.regs[i])}`);
  for (let i = 0; i < 16; i += 4) lines.push(`  in  ${regs.slice(i, i + 4).join(' ')}`);
  lines.push(`  in  rflags=${flagsText(c.rflags)}`);
  lines.push(`  in  mem=${hexBytes(c.mem)}`);
  if (g.undefFlags) lines.push(`  undefined flags (ignored): ${flagNames(g.undefFlags)}`);
  if (g.undefRegs) {
    const names = REG_NAMES.filter((_, i) => (g.undefRegs! >> i) & 1);
    lines.push(`  undefined registers (ignored): ${names.join(' ')}`);
  }
  return lines.join('\n');
}

/** Lists the differences between two results under the case's masks; [] if they agree. */
export function differences(c: GenCase, expected: DiffResult, actual: DiffResult): string[] {
  const out: string[] = [];
  if (expected.vector !== -1 || actual.vector !== -1) {
    if (expected.vector !== actual.vector) {
      out.push(`exception: native ${vectorName(expected.vector)}, sim ${vectorName(actual.vector)}`);
    }
    return out; // faulting cases compare the vector only
  }
  for (let i = 0; i < 16; i++) {
    if ((c.undefRegs >> i) & 1) continue;
    const e = BigInt.asUintN(64, expected.regs[i]);
    const a = BigInt.asUintN(64, actual.regs[i]);
    if (e !== a) out.push(`${REG_NAMES[i]}: native ${hex64(e)}, sim ${hex64(a)} (xor ${hex64(e ^ a)})`);
  }
  const fm = FLAGS_LOADABLE & ~c.undefFlags;
  const fd = (expected.rflags ^ actual.rflags) & fm;
  if (fd !== 0n) {
    const parts = FLAG_BITS.filter(([bit]) => (fd & bit) !== 0n).map(
      ([bit, n]) =>
        `${n} native ${(expected.rflags & bit) !== 0n ? 1 : 0} sim ${(actual.rflags & bit) !== 0n ? 1 : 0}`,
    );
    out.push(`flags: ${parts.join(', ')}`);
  }
  const bad: string[] = [];
  for (let i = 0; i < expected.mem.length; i++) {
    if (expected.mem[i] !== actual.mem[i]) {
      bad.push(`+${i}: ${hx(expected.mem[i])}/${hx(actual.mem[i])}`);
    }
  }
  if (bad.length) out.push(`mem (native/sim): ${bad.join(' ')}`);
  return out;
}

function hx(b: number | undefined): string {
  return b === undefined ? '--' : b.toString(16).padStart(2, '0');
}

/** A full mismatch report, or null if the results agree. */
export function compareResults(c: GenCase, expected: DiffResult, actual: DiffResult): string | null {
  const d = differences(c, expected, actual);
  if (d.length === 0) return null;
  const lines = [describeCase(c)];
  if (expected.vector === -1) lines.push(`  native rflags=${flagsText(expected.rflags)}`);
  if (actual.vector === -1) lines.push(`  sim    rflags=${flagsText(actual.rflags)}`);
  for (const x of d) lines.push(`  DIFF ${x}`);
  return lines.join('\n');
}
