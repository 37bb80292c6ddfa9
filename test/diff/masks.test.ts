// Validates the undefined-flag tables of gen.ts on the host CPU: a small model
// written from the SDM pseudo-code ("Operation" and "Flags Affected") must
// agree with the host on every flag and register the tables call defined.
// If this fails, a table calls something defined that this CPU computes
// differently from the SDM, and a simulator that follows the SDM would
// mismatch for reasons that are not its fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { interesting, mask, sext } from './asm.js';
import { compareResults } from './compare.js';
import { UNDEF, shiftUndef, shldUndef } from './gen.js';
import { hostFeatures, runNative } from './native.js';
import { Rng } from './rng.js';
import type { DiffResult, GenCase } from './types.js';
import { AF, ARITH_FLAGS, CF, INIT_RSP, MEM_SIZE, OF, PF, SF, ZF } from './types.js';

type Size = 8 | 16 | 32 | 64;
const RAX = 0;
const RCX = 1;
const RDX = 2;
const RBX = 3;

const bit = (v: bigint, i: number) => (v >> BigInt(i)) & 1n;
const msb = (v: bigint, n: number) => bit(v, n - 1);

function popcount(v: bigint): number {
  let c = 0;
  for (let x = v; x; x >>= 1n) c += Number(x & 1n);
  return c;
}

function setFlag(f: bigint, flag: bigint, on: boolean | bigint): bigint {
  return on === true || on === 1n ? f | flag : f & ~flag;
}

/** SF, ZF, PF from a result. */
function szp(f: bigint, res: bigint, n: number): bigint {
  f = setFlag(f, SF, msb(res, n));
  f = setFlag(f, ZF, (res & mask(n)) === 0n);
  return setFlag(f, PF, popcount(res & 0xffn) % 2 === 0);
}

/** Register value after writing an n-bit result (32-bit writes zero-extend). */
function merge(old: bigint, res: bigint, n: number): bigint {
  if (n === 64 || n === 32) return res & mask(n);
  return (old & ~mask(n) & mask(64)) | (res & mask(n));
}

function prefixes(n: Size): number[] {
  return n === 16 ? [0x66] : n === 64 ? [0x48] : [];
}

interface Expect {
  regs: Partial<Record<number, bigint>>;
  flags: bigint;
  undef: bigint;
  undefRegs?: number;
}

interface ModelCase {
  c: GenCase;
  e: Expect;
}

function baseCase(r: Rng, group: string, code: number[], text: string, set: Record<number, bigint>): GenCase {
  const regs: bigint[] = [];
  for (let i = 0; i < 16; i++) regs.push(r.u64());
  regs[4] = INIT_RSP;
  for (const [k, v] of Object.entries(set)) regs[Number(k)] = v & mask(64);
  return {
    group,
    text,
    code: Uint8Array.from(code),
    regs,
    rflags: r.bits(12) & ARITH_FLAGS,
    mem: new Uint8Array(MEM_SIZE),
    undefFlags: 0n,
    undefRegs: 0,
  };
}

/** Runs model cases natively and returns reports for disagreements. */
function check(cases: ModelCase[]): string[] {
  const res = runNative(cases.map((m) => m.c));
  const bad: string[] = [];
  cases.forEach(({ c, e }, i) => {
    const want: DiffResult = { regs: c.regs.slice(), rflags: e.flags, mem: c.mem, vector: -1 };
    for (const [k, v] of Object.entries(e.regs)) want.regs[Number(k)] = v as bigint;
    const judged: GenCase = { ...c, undefFlags: e.undef, undefRegs: e.undefRegs ?? 0 };
    const msg = compareResults(judged, res[i], want);
    if (msg) bad.push(msg.replace(/sim/g, 'SDM model'));
  });
  return bad;
}

function expectAgree(cases: ModelCase[]): void {
  const bad = check(cases);
  assert.equal(
    bad.length,
    0,
    `${bad.length}/${cases.length} disagree with the SDM model:\n\n${bad.slice(0, 4).join('\n\n')}`,
  );
}

const SIZES: Size[] = [8, 16, 32, 64];
const NAMES = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', '', 'sar'];

function shiftModel(
  ext: number,
  n: number,
  v: bigint,
  count: number,
  fin: bigint,
): { res: bigint; flags: bigint } {
  const m = mask(n);
  const masked = count & (n === 64 ? 63 : 31);
  if (masked === 0) return { res: v, flags: fin };
  let d = v & m;
  let cf = (fin & CF) !== 0n ? 1n : 0n;
  let f = fin;
  let of = 0n;
  const sn = BigInt(n);
  switch (ext) {
    case 0: {
      const t = BigInt(masked % n);
      d = ((d << t) | (d >> (sn - t))) & m;
      cf = d & 1n;
      of = msb(d, n) ^ cf;
      break;
    }
    case 1: {
      const t = BigInt(masked % n);
      d = ((d >> t) | (d << (sn - t))) & m;
      cf = msb(d, n);
      of = msb(d, n) ^ bit(d, n - 2);
      break;
    }
    case 2: {
      const t = n === 8 ? masked % 9 : n === 16 ? masked % 17 : masked;
      for (let i = 0; i < t; i++) {
        const tmp = msb(d, n);
        d = ((d << 1n) | cf) & m;
        cf = tmp;
      }
      of = msb(d, n) ^ cf;
      break;
    }
    case 3: {
      const t = n === 8 ? masked % 9 : n === 16 ? masked % 17 : masked;
      of = msb(d, n) ^ cf;
      for (let i = 0; i < t; i++) {
        const tmp = d & 1n;
        d = (d >> 1n) | (cf << (sn - 1n));
        cf = tmp;
      }
      break;
    }
    case 4:
      for (let i = 0; i < masked; i++) {
        cf = msb(d, n);
        d = (d << 1n) & m;
      }
      of = msb(d, n) ^ cf;
      break;
    case 5:
      of = msb(v, n);
      for (let i = 0; i < masked; i++) {
        cf = d & 1n;
        d >>= 1n;
      }
      break;
    case 7:
      of = 0n;
      for (let i = 0; i < masked; i++) {
        cf = d & 1n;
        d = BigInt.asUintN(n, BigInt.asIntN(n, d) >> 1n);
      }
      break;
  }
  f = setFlag(f, CF, cf);
  if (masked === 1) f = setFlag(f, OF, of);
  if (ext >= 4) f = szp(f, d, n); // rotates leave SF ZF AF PF alone
  return { res: d, flags: f };
}

test('SDM model agrees with the host on ROL ROR RCL RCR SHL SHR SAR (all counts)', () => {
  const r = new Rng('mask-shift');
  const cases: ModelCase[] = [];
  for (const n of SIZES) {
    for (const ext of [0, 1, 2, 3, 4, 5, 7]) {
      for (let count = 0; count < 256; count += count < 70 ? 1 : 37) {
        for (let k = 0; k < 3; k++) {
          const v = interesting(r, n);
          const code = [...prefixes(n), n === 8 ? 0xd2 : 0xd3, 0xc0 | (ext << 3) | RBX];
          const c = baseCase(r, 'shift', code, `${NAMES[ext]} ${n}-bit, cl=${count}`, {
            [RBX]: (r.u64() & ~mask(n)) | v,
            [RCX]: (r.u64() & ~0xffn) | BigInt(count),
          });
          const out = shiftModel(ext, n, v, count, c.rflags);
          cases.push({
            c,
            e: {
              regs: { [RBX]: merge(c.regs[RBX], out.res, n) },
              flags: out.flags,
              undef: shiftUndef(ext, n, count),
            },
          });
        }
      }
    }
  }
  expectAgree(cases);
});

test('SDM model agrees with the host on SHLD SHRD (counts up to the operand size)', () => {
  const r = new Rng('mask-shld');
  const cases: ModelCase[] = [];
  for (const n of [16, 32, 64] as Size[]) {
    for (const right of [0, 1]) {
      for (let count = 0; count < 256; count += count < 70 ? 1 : 29) {
        const masked = count & (n === 64 ? 63 : 31);
        if (masked > n) continue;
        for (let k = 0; k < 3; k++) {
          const d = interesting(r, n);
          const s = interesting(r, n);
          const code = [...prefixes(n), 0x0f, right ? 0xad : 0xa5, 0xc0 | (RDX << 3) | RBX];
          const c = baseCase(r, 'shld', code, `${right ? 'shrd' : 'shld'} ${n}-bit, cl=${count}`, {
            [RBX]: (r.u64() & ~mask(n)) | d,
            [RDX]: (r.u64() & ~mask(n)) | s,
            [RCX]: BigInt(count),
          });
          let res = d;
          let f = c.rflags;
          if (masked) {
            const t = BigInt(masked);
            const sn = BigInt(n);
            const cf = right ? bit(d, masked - 1) : bit(d, n - masked);
            res = right ? ((d >> t) | (s << (sn - t))) & mask(n) : ((d << t) | (s >> (sn - t))) & mask(n);
            f = szp(setFlag(f, CF, cf), res, n);
            if (masked === 1) f = setFlag(f, OF, msb(res, n) ^ msb(d, n));
          }
          cases.push({
            c,
            e: { regs: { [RBX]: merge(c.regs[RBX], res, n) }, flags: f, undef: shldUndef(n, count) },
          });
        }
      }
    }
  }
  expectAgree(cases);
});

test('SDM model agrees with the host on BT BTS BTR BTC, BSF BSR TZCNT LZCNT POPCNT', () => {
  const r = new Rng('mask-bits');
  const feats = hostFeatures();
  const cases: ModelCase[] = [];
  for (let i = 0; i < 3000; i++) {
    const n = r.pick([16, 32, 64] as Size[]);
    const v = r.bool(0.1) ? 0n : interesting(r, n);
    const o = interesting(r, n);
    const kind = r.int(9);
    if (kind < 4) {
      const code = [...prefixes(n), 0x0f, 0xa3 + 8 * kind, 0xc0 | (RDX << 3) | RBX];
      const c = baseCase(r, 'bt', code, `${['bt', 'bts', 'btr', 'btc'][kind]} ${n}-bit`, {
        [RBX]: (r.u64() & ~mask(n)) | v,
        [RDX]: (r.u64() & ~mask(n)) | o,
      });
      const b = Number(o % BigInt(n));
      const sel = 1n << BigInt(b);
      const res = kind === 1 ? v | sel : kind === 2 ? v & ~sel : kind === 3 ? v ^ sel : v;
      const regs = kind === 0 ? {} : { [RBX]: merge(c.regs[RBX], res, n) };
      cases.push({ c, e: { regs, flags: setFlag(c.rflags, CF, bit(v, b)), undef: UNDEF.bt } });
      continue;
    }
    const which = ['bsf', 'bsr', 'tzcnt', 'lzcnt', 'popcnt'][kind - 4];
    if (which === 'tzcnt' && !feats.bmi1) continue;
    if (which === 'lzcnt' && !feats.lzcnt) continue;
    if (which === 'popcnt' && !feats.popcnt) continue;
    const op = ({ bsf: 0xbc, bsr: 0xbd, tzcnt: 0xbc, lzcnt: 0xbd, popcnt: 0xb8 } as Record<string, number>)[
      which
    ];
    const pre = n === 16 ? [0x66] : [];
    const rep = which === 'bsf' || which === 'bsr' ? [] : [0xf3];
    const code = [...pre, ...rep, ...(n === 64 ? [0x48] : []), 0x0f, op, 0xc0 | (RDX << 3) | RBX];
    const c = baseCase(r, which, code, `${which} ${n}-bit`, { [RBX]: (r.u64() & ~mask(n)) | v });
    let lo = -1;
    let hi = -1;
    for (let b = 0; b < n; b++) {
      if (bit(v, b)) {
        if (lo < 0) lo = b;
        hi = b;
      }
    }
    let f = c.rflags;
    let res: bigint | null = null;
    let undef: bigint = UNDEF.bsf;
    if (which === 'bsf' || which === 'bsr') {
      f = setFlag(f, ZF, v === 0n);
      if (v !== 0n) res = BigInt(which === 'bsf' ? lo : hi);
    } else if (which === 'popcnt') {
      res = BigInt(popcount(v));
      f = setFlag(f & ~ARITH_FLAGS, ZF, v === 0n);
      undef = UNDEF.popcnt;
    } else {
      res = v === 0n ? BigInt(n) : BigInt(which === 'tzcnt' ? lo : n - 1 - hi);
      f = setFlag(setFlag(f, CF, v === 0n), ZF, res === 0n);
      undef = UNDEF.tzcnt;
    }
    const e: Expect = { regs: {}, flags: f, undef };
    if (res === null) e.undefRegs = 1 << RDX;
    else e.regs[RDX] = merge(c.regs[RDX], res, n);
    cases.push({ c, e });
  }
  expectAgree(cases);
});

const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];

function addSub(n: number, a: bigint, b: bigint, carry: bigint, sub: boolean, fin: bigint) {
  const m = mask(n);
  const full = sub ? a - b - carry : a + b + carry;
  const res = full & m;
  let f = szp(fin, res, n);
  f = setFlag(f, CF, sub ? full < 0n : full > m);
  f = setFlag(f, AF, ((a ^ b ^ res) & 0x10n) !== 0n);
  const ov = sub ? msb((a ^ b) & (a ^ res), n) : msb(~(a ^ b) & (a ^ res), n);
  f = setFlag(f, OF, ov);
  return { res, flags: f };
}

test('SDM model agrees with the host on ALU, INC DEC NEG, MUL IMUL', () => {
  const r = new Rng('mask-alu');
  const cases: ModelCase[] = [];
  for (let i = 0; i < 6000; i++) {
    const n = r.pick(SIZES);
    const a = interesting(r, n);
    const b = interesting(r, n);
    const kind = r.int(4);
    const regsIn = { [RBX]: (r.u64() & ~mask(n)) | a, [RDX]: (r.u64() & ~mask(n)) | b };
    if (kind === 0) {
      // op rbx, rdx (op*8+0/1)
      const op = r.int(8);
      const code = [...prefixes(n), op * 8 + (n === 8 ? 0 : 1), 0xc0 | (RDX << 3) | RBX];
      const c = baseCase(r, 'alu', code, `${ALU[op]} ${n}-bit`, regsIn);
      const cin = c.rflags & CF;
      let out: { res: bigint; flags: bigint };
      if (op === 1 || op === 4 || op === 6) {
        const res = op === 1 ? a | b : op === 4 ? a & b : a ^ b;
        out = { res, flags: szp(c.rflags & ~(CF | OF), res, n) };
      } else {
        out = addSub(n, a, b, op === 2 || op === 3 ? cin : 0n, op >= 3, c.rflags);
      }
      const regs = op === 7 ? {} : { [RBX]: merge(c.regs[RBX], out.res, n) };
      const undef = op === 1 || op === 4 || op === 6 ? UNDEF.logic : UNDEF.arith;
      cases.push({ c, e: { regs, flags: out.flags, undef } });
    } else if (kind === 1) {
      // inc / dec / neg rbx
      const which = r.int(3);
      const code =
        which < 2
          ? [...prefixes(n), n === 8 ? 0xfe : 0xff, 0xc0 | (which << 3) | RBX]
          : [...prefixes(n), n === 8 ? 0xf6 : 0xf7, 0xc0 | (3 << 3) | RBX];
      const c = baseCase(r, 'incdec', code, `${['inc', 'dec', 'neg'][which]} ${n}-bit`, regsIn);
      let out;
      if (which < 2) {
        out = addSub(n, a, 1n, 0n, which === 1, c.rflags);
        out.flags = setFlag(out.flags, CF, c.rflags & CF); // CF unaffected
      } else {
        out = addSub(n, 0n, a, 0n, true, c.rflags);
        out.flags = setFlag(out.flags, CF, a !== 0n);
      }
      cases.push({
        c,
        e: { regs: { [RBX]: merge(c.regs[RBX], out.res, n) }, flags: out.flags, undef: UNDEF.arith },
      });
    } else if (kind === 2) {
      // mul / imul rbx (implicit rax, rdx)
      const signed = r.int(2) === 1;
      const code = [...prefixes(n), n === 8 ? 0xf6 : 0xf7, 0xc0 | ((4 + (signed ? 1 : 0)) << 3) | RBX];
      const c = baseCase(r, 'mul', code, `${signed ? 'imul' : 'mul'} ${n}-bit`, {
        [RBX]: regsIn[RBX],
        [RAX]: (r.u64() & ~mask(n)) | b,
      });
      const p = signed ? sext(a, n) * sext(b, n) : a * b;
      const lo = p & mask(n);
      const hi = (p >> BigInt(n)) & mask(n);
      const sig = signed ? p !== sext(lo, n) : hi !== 0n;
      const regs: Partial<Record<number, bigint>> = {};
      if (n === 8) regs[RAX] = merge(c.regs[RAX], BigInt.asUintN(16, p), 16);
      else {
        regs[RAX] = merge(c.regs[RAX], lo, n);
        regs[RDX] = merge(c.regs[RDX], hi, n);
      }
      const f = setFlag(setFlag(c.rflags, CF, sig), OF, sig);
      cases.push({ c, e: { regs, flags: f, undef: UNDEF.mul } });
    } else {
      // imul rdx, rbx
      if (n === 8) continue;
      const code = [...prefixes(n), 0x0f, 0xaf, 0xc0 | (RDX << 3) | RBX];
      const c = baseCase(r, 'imul', code, `imul ${n}-bit, 2 operands`, regsIn);
      const p = sext(a, n) * sext(b, n);
      const lo = p & mask(n);
      const sig = p !== sext(lo, n);
      const f = setFlag(setFlag(c.rflags, CF, sig), OF, sig);
      cases.push({ c, e: { regs: { [RDX]: merge(c.regs[RDX], lo, n) }, flags: f, undef: UNDEF.mul } });
    }
  }
  expectAgree(cases);
});
