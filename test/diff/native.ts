// Builds and drives the native harness (native.c): the reference side of the
// differential CPU tests. The binary is compiled once per source hash into
// os.tmpdir() and reused by later runs.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiffCase, DiffResult } from './types.js';
import { MEM_SIZE } from './types.js';

const REC = 256;
const HDR = 16;
const MAX_CODE = 32;

/** Status bits reported by the harness besides the result. */
export const STATUS_WROTE_OUTSIDE = 1;
export const STATUS_READ_OUTSIDE = 2;

export interface NativeResult extends DiffResult {
  /** Harness status bits (STATUS_*); 0 for a well-formed case. */
  status: number;
  /** Signal number and trap number if the case faulted (diagnostics). */
  signal: number;
  trapno: number;
  faultAddr: bigint;
}

export interface HostFeatures {
  vendor: string;
  popcnt: boolean;
  movbe: boolean;
  cx16: boolean;
  lzcnt: boolean;
  lahfsahf: boolean;
  bmi1: boolean;
  bmi2: boolean;
  adx: boolean;
}

/** Finds test/diff/native.c whether we run from test/diff or dist/test/diff. */
function sourcePath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'native.c'), resolve(here, '../../../test/diff/native.c')];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(`native.c not found (looked in ${candidates.join(', ')})`);
}

let built: string | undefined;

/** Compiles native.c (cached by source hash) and returns the binary's path. */
export function buildNative(): string {
  if (built) return built;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the native harness needs Linux on x86-64 (this is ${process.platform}/${process.arch})`);
  }
  const src = sourcePath();
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'turtles-diff');
  const bin = join(dir, `native-exec-${hash}`);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    // Build under a private name, then rename: concurrent test processes may race.
    const tmp = `${bin}.${process.pid}.tmp`;
    const r = spawnSync('gcc', ['-O1', '-o', tmp, src], { encoding: 'utf8' });
    if (r.error) throw new Error(`cannot run gcc: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`gcc failed building ${src}:\n${r.stderr}`);
    renameSync(tmp, bin);
  }
  built = bin;
  return bin;
}

let features: HostFeatures | undefined;

/** CPUID features of the host (decides which optional groups can run). */
export function hostFeatures(): HostFeatures {
  if (features) return features;
  const r = spawnSync(buildNative(), ['--features'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`native-exec --features failed: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as Record<string, string | number>;
  features = {
    vendor: String(j.vendor),
    popcnt: j.popcnt === 1,
    movbe: j.movbe === 1,
    cx16: j.cx16 === 1,
    lzcnt: j.lzcnt === 1,
    lahfsahf: j.lahfsahf === 1,
    bmi1: j.bmi1 === 1,
    bmi2: j.bmi2 === 1,
    adx: j.adx === 1,
  };
  return features;
}

export function encodeCases(cases: DiffCase[]): Buffer {
  const buf = Buffer.alloc(HDR + cases.length * REC);
  buf.write('TDIFIN01', 0, 'latin1');
  buf.writeUInt32LE(cases.length, 8);
  cases.forEach((c, i) => {
    const o = HDR + i * REC;
    if (c.code.length === 0 || c.code.length > MAX_CODE)
      throw new Error(`case ${i}: bad code length ${c.code.length}`);
    if (c.regs.length !== 16) throw new Error(`case ${i}: need 16 registers`);
    if (c.mem.length !== MEM_SIZE) throw new Error(`case ${i}: mem must be ${MEM_SIZE} bytes`);
    buf.writeUInt32LE(c.code.length, o);
    buf.writeBigUInt64LE(BigInt.asUintN(64, c.rflags), o + 8);
    buf.set(c.code, o + 16);
    for (let r = 0; r < 16; r++) buf.writeBigUInt64LE(BigInt.asUintN(64, c.regs[r]), o + 48 + 8 * r);
    buf.set(c.mem, o + 176);
  });
  return buf;
}

export function decodeResults(buf: Buffer, n: number): NativeResult[] {
  if (
    buf.length !== HDR + n * REC ||
    buf.toString('latin1', 0, 8) !== 'TDIFOUT1' ||
    buf.readUInt32LE(8) !== n
  ) {
    throw new Error('native-exec: malformed output file');
  }
  const out: NativeResult[] = [];
  for (let i = 0; i < n; i++) {
    const o = HDR + i * REC;
    const regs: bigint[] = [];
    for (let r = 0; r < 16; r++) regs.push(buf.readBigUInt64LE(o + 48 + 8 * r));
    out.push({
      vector: buf.readInt32LE(o),
      status: buf.readUInt32LE(o + 4),
      rflags: buf.readBigUInt64LE(o + 8),
      signal: buf.readUInt32LE(o + 16),
      trapno: Number(buf.readBigUInt64LE(o + 24)),
      faultAddr: buf.readBigUInt64LE(o + 32),
      regs,
      mem: new Uint8Array(buf.subarray(o + 176, o + 176 + MEM_SIZE)),
    });
  }
  return out;
}

let seq = 0;

export interface RunNativeOptions {
  /** Run every case twice with different bytes outside the window and report
   *  STATUS_READ_OUTSIDE when the results differ (checks the generators). */
  checkWindow?: boolean;
}

/** Executes the cases on the host CPU. */
export function runNative(cases: DiffCase[], opts: RunNativeOptions = {}): NativeResult[] {
  if (cases.length === 0) return [];
  const bin = buildNative();
  const dir = join(tmpdir(), 'turtles-diff');
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `io-${process.pid}-${seq++}`);
  const inPath = `${base}.in`;
  const outPath = `${base}.out`;
  try {
    writeFileSync(inPath, encodeCases(cases));
    const args = [inPath, outPath];
    if (opts.checkWindow) args.push('--check-window');
    const r = spawnSync(bin, args, { encoding: 'utf8' });
    if (r.error) throw new Error(`cannot run ${bin}: ${r.error.message}`);
    if (r.status !== 0) {
      throw new Error(`native-exec exited with ${r.status ?? r.signal}: ${r.stderr}`);
    }
    return decodeResults(readFileSync(outPath), cases.length);
  } finally {
    rmSync(inPath, { force: true });
    rmSync(outPath, { force: true });
  }
}
