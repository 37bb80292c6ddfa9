// ROL ROR RCL RCR SHL SHR SAR SHLD SHRD against a bit-by-bit model written from the
// SDM Vol. 2 pseudo-code (one loop step per count), on registers and memory, for
// every operand size; plus a few hand-checked values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCpu64, runBytes, reg64, setReg64 } from '../support/cpu64.js';

const CF = 1,
  PF = 4,
  AF = 0x10,
  ZF = 0x40,
  SF = 0x80,
  OF = 0x800;
const ARITH = CF | PF | AF | ZF | SF | OF;
const NAMES = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', '(sal)', 'sar'];

/** A small deterministic generator (xorshift64*). */
function rng(seed: bigint): () => bigint {
  let s = seed;
  return () => {
    s ^= s >> 12n;
    s ^= (s << 25n) & 0xffffffffffffffffn;
    s ^= s >> 27n;
    return (s * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
  };
}

function parity(v: bigint): boolean {
  let n = 0;
  for (let b = v & 0xffn; b; b >>= 1n) n += Number(b & 1n);
  return n % 2 === 0;
}

function szp(v: bigint, bits: number): number {
  return (v === 0n ? ZF : 0) | ((v >> BigInt(bits - 1)) & 1n ? SF : 0) | (parity(v) ? PF : 0);
}

/** The SDM pseudo-code, one step per count; returns null when nothing changes. */
function model(
  ext: number,
  bits: number,
  d0: bigint,
  count: number,
  f0: number,
): { v: bigint; f: number } | null {
  const N = BigInt(bits);
  const mask = (1n << N) - 1n;
  const msb = (x: bigint): number => Number((x >> (N - 1n)) & 1n);
  const c = count & (bits === 64 ? 63 : 31);
  if (c === 0) return null;
  let d = d0;
  let cf = f0 & CF ? 1 : 0;
  let of: number;
  switch (ext) {
    case 0:
    case 1: {
      for (let k = c % bits; k > 0; k--) {
        if (ext === 0) d = ((d << 1n) | BigInt(msb(d))) & mask;
        else d = (d >> 1n) | ((d & 1n) << (N - 1n));
      }
      if (ext === 0) {
        cf = Number(d & 1n);
        of = msb(d) ^ cf;
      } else {
        cf = msb(d);
        of = cf ^ Number((d >> (N - 2n)) & 1n);
      }
      return { v: d, f: (f0 & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0) };
    }
    case 2:
    case 3: {
      const k0 = bits === 8 ? c % 9 : bits === 16 ? c % 17 : c;
      if (k0 === 0) return null;
      of = ext === 3 ? msb(d) ^ cf : 0;
      for (let k = k0; k > 0; k--) {
        if (ext === 2) {
          const t = msb(d);
          d = ((d << 1n) | BigInt(cf)) & mask;
          cf = t;
        } else {
          const t = Number(d & 1n);
          d = (d >> 1n) | (BigInt(cf) << (N - 1n));
          cf = t;
        }
      }
      if (ext === 2) of = msb(d) ^ cf;
      return { v: d, f: (f0 & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0) };
    }
    default: {
      of = ext === 5 ? msb(d) : 0;
      for (let k = c; k > 0; k--) {
        if (ext === 4 || ext === 6) {
          cf = msb(d);
          d = (d << 1n) & mask;
        } else {
          cf = Number(d & 1n);
          d = ext === 5 ? d >> 1n : (d >> 1n) | (BigInt(msb(d)) << (N - 1n));
        }
      }
      if (ext === 4 || ext === 6) of = msb(d) ^ cf;
      return { v: d, f: (f0 & ~ARITH) | szp(d, bits) | (cf ? CF : 0) | (of ? OF : 0) };
    }
  }
}

/** Encoding of `<shift> ebx-sized reg or [rsi], count` for a form: 0 = by 1, 1 = by CL, 2 = by imm8. */
function encShift(ext: number, bits: number, form: number, mem: boolean, count: number): number[] {
  const pre = bits === 16 ? [0x66] : bits === 64 ? [0x48] : [];
  const base = form === 0 ? 0xd0 : form === 1 ? 0xd2 : 0xc0;
  const op = base + (bits === 8 ? 0 : 1);
  const modrm = (mem ? 0x06 : 0xc3) | (ext << 3);
  return [...pre, op, modrm, ...(form === 2 ? [count & 0xff] : [])];
}

const DATA = 0x8000;

test('shifts and rotates match the SDM pseudo-code (registers and memory, all sizes)', () => {
  const { cpu, mem } = makeCpu64();
  const next = rng(0x1234567n);
  const counts = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255];
  let n = 0;
  for (const bits of [8, 16, 32, 64]) {
    const mask = (1n << BigInt(bits)) - 1n;
    for (const ext of [0, 1, 2, 3, 4, 5, 6, 7]) {
      for (let k = 0; k < 60; k++) {
        const form = k % 3;
        const count = form === 0 ? 1 : k < counts.length * 2 ? counts[k >> 1] : Number(next() & 0xffn);
        const isMem = (k & 4) !== 0;
        const init = next();
        const f0 = Number(next() & BigInt(ARITH)) | 2;
        setReg64(cpu, 3, init);
        setReg64(cpu, 1, BigInt(count) | 0x1200n);
        setReg64(cpu, 6, BigInt(DATA));
        mem.dv.setBigUint64(DATA, init, true);
        cpu.setFlags(f0);
        const v = runBytes(cpu, encShift(ext, bits, form, isMem, count));
        assert.equal(v, -1);
        const exp = model(ext, bits, init & mask, count, f0);
        const what = `${NAMES[ext]} ${bits}-bit ${isMem ? 'mem' : 'reg'} by ${count} of 0x${(init & mask).toString(16)}`;
        let got: bigint;
        if (isMem) got = mem.dv.getBigUint64(DATA, true);
        else got = reg64(cpu, 3);
        const expVal = exp ? exp.v : init & mask;
        // Upper bits: kept for 8/16-bit and memory, zero-extended for a 32-bit register.
        const keep = !isMem && bits === 32 ? 0n : init & ~mask & 0xffffffffffffffffn;
        assert.equal(got, keep | expVal, `${what}: value`);
        assert.equal(cpu.getFlags() & ARITH, (exp ? exp.f : f0) & ARITH, `${what}: flags`);
        n++;
      }
    }
  }
  assert.ok(n > 1000);
});

function modelDouble(
  left: boolean,
  bits: number,
  d: bigint,
  s: bigint,
  count: number,
  f0: number,
): { v: bigint; f: number } | null {
  const N = BigInt(bits);
  const mask = (1n << N) - 1n;
  const c = count & (bits === 64 ? 63 : 31);
  if (c === 0) return null;
  // 16-bit counts above 16 shift the string dest:src:dest (see shift.ts).
  const width = bits === 16 && c > 16 ? 48n : 2n * N;
  const str = bits === 16 && c > 16 ? (d << 32n) | (s << 16n) | d : left ? (d << N) | s : (s << N) | d;
  const wmask = (1n << width) - 1n;
  let v: bigint, cf: number;
  if (left) {
    const sh = (str << BigInt(c)) & wmask;
    v = (sh >> (width - N)) & mask;
    cf = Number((str >> (width - BigInt(c))) & 1n);
  } else {
    v = (str >> BigInt(c)) & mask;
    cf = Number((str >> BigInt(c - 1)) & 1n);
  }
  const of = ((v ^ d) >> (N - 1n)) & 1n ? OF : 0;
  return { v, f: (f0 & ~ARITH) | szp(v, bits) | (cf ? CF : 0) | of };
}

test('SHLD/SHRD match a model on the concatenated operands', () => {
  const { cpu, mem } = makeCpu64();
  const next = rng(0xabcdefn);
  for (const bits of [16, 32, 64]) {
    const mask = (1n << BigInt(bits)) - 1n;
    for (const left of [true, false]) {
      for (let k = 0; k < 120; k++) {
        const byCl = (k & 1) === 1;
        const isMem = (k & 2) !== 0;
        const count = k < 40 ? k : Number(next() & 0xffn);
        const d = next(),
          s = next();
        const f0 = Number(next() & BigInt(ARITH)) | 2;
        setReg64(cpu, 3, d);
        setReg64(cpu, 2, s); // source: rdx
        setReg64(cpu, 1, BigInt(count));
        setReg64(cpu, 6, BigInt(DATA));
        mem.dv.setBigUint64(DATA, d, true);
        cpu.setFlags(f0);
        const pre = bits === 16 ? [0x66] : bits === 64 ? [0x48] : [];
        const op = (left ? 0xa4 : 0xac) + (byCl ? 1 : 0);
        const modrm = isMem ? 0x16 : 0xd3; // reg = rdx, rm = [rsi] or rbx
        assert.equal(runBytes(cpu, [...pre, 0x0f, op, modrm, ...(byCl ? [] : [count])]), -1);
        const exp = modelDouble(left, bits, d & mask, s & mask, count, f0);
        const what = `${left ? 'shld' : 'shrd'} ${bits}-bit ${isMem ? 'mem' : 'reg'} by ${count}`;
        const got = isMem ? mem.dv.getBigUint64(DATA, true) : reg64(cpu, 3);
        const keep = !isMem && bits === 32 ? 0n : d & ~mask & 0xffffffffffffffffn;
        assert.equal(got, keep | (exp ? exp.v : d & mask), `${what}: value`);
        assert.equal(cpu.getFlags() & ARITH, (exp ? exp.f : f0) & ARITH, `${what}: flags`);
      }
    }
  }
});

test('hand-checked shift results', () => {
  const { cpu } = makeCpu64();
  // shl eax, 1 with EAX = 0x80000001 -> 2, CF = 1, OF = 1 (MSB 0 xor CF 1)
  setReg64(cpu, 0, 0xffffffff80000001n);
  cpu.setFlags(2);
  runBytes(cpu, [0xd1, 0xe0]);
  assert.equal(reg64(cpu, 0), 2n);
  assert.equal(cpu.getFlags() & (CF | OF | ZF), CF | OF);
  // sar rax, 63 of a negative value -> all ones, CF = bit 62
  setReg64(cpu, 0, 0x8000000000000000n);
  runBytes(cpu, [0x48, 0xc1, 0xf8, 63]);
  assert.equal(reg64(cpu, 0), 0xffffffffffffffffn);
  assert.equal(cpu.getFlags() & (CF | SF | ZF), SF);
  // rcl al, 9 rotates through CF back to the start: no change, flags unchanged
  setReg64(cpu, 0, 0x5an);
  cpu.setFlags(2 | CF | OF);
  runBytes(cpu, [0xc0, 0xd0, 9]);
  assert.equal(reg64(cpu, 0), 0x5an);
  assert.equal(cpu.getFlags() & (CF | OF), CF | OF);
  // rcr ax, 1 with CF = 1: 0x0001 -> 0x8000, CF = 1, OF = 1
  setReg64(cpu, 0, 0x0001n);
  cpu.setFlags(2 | CF);
  runBytes(cpu, [0x66, 0xd1, 0xd8]);
  assert.equal(reg64(cpu, 0), 0x8000n);
  assert.equal(cpu.getFlags() & (CF | OF), CF | OF);
  // ror ah, cl honours the legacy byte registers
  setReg64(cpu, 0, 0x0100n);
  setReg64(cpu, 1, 1n);
  runBytes(cpu, [0xd2, 0xcc]);
  assert.equal(reg64(cpu, 0), 0x8000n);
  // shr ebx, cl with CL = 32: the count is masked to 0; EBX still zero-extends
  setReg64(cpu, 3, 0x1234567887654321n);
  setReg64(cpu, 1, 32n);
  cpu.setFlags(2 | ZF);
  runBytes(cpu, [0xd3, 0xeb]);
  assert.equal(reg64(cpu, 3), 0x87654321n);
  assert.equal(cpu.getFlags() & ARITH, ZF);
  // shld ax, dx, 20 (count above 16): bits of dest:src:dest
  setReg64(cpu, 0, 0x1234n);
  setReg64(cpu, 2, 0xabcdn);
  runBytes(cpu, [0x66, 0x0f, 0xa4, 0xd0, 20]);
  assert.equal(reg64(cpu, 0), 0xbcd1n);
});

test('LOCK on a shift raises #UD; a faulting memory write leaves flags and memory alone', () => {
  const m = makeCpu64();
  const { cpu } = m;
  assert.equal(runBytes(cpu, [0xf0, 0xd1, 0x26]), 6);
  // shl dword [rsi], 1 on a read-only page: #PF, flags unchanged
  m.map4k(0x40000000, 0x150000, 0 /* read-only, supervisor */);
  m.mem.dv.setUint32(0x150000, 0x80000000, true);
  setReg64(cpu, 6, 0x40000000n);
  cpu.setFlags(2 | ZF | PF);
  assert.equal(runBytes(cpu, [0xd1, 0x26]), 14);
  assert.equal(m.mem.dv.getUint32(0x150000, true), 0x80000000);
  // The flags pushed by the exception are those before the instruction.
  const pushedFlags = cpu.rd32(cpu.regNum(4) + 24, false);
  assert.equal(pushedFlags & ARITH, ZF | PF);
});

test('a read-modify-write on a not-present page reports a write access (#PF error code W=1)', () => {
  const m = makeCpu64();
  const { cpu } = m;
  m.unmap4k(0x40000000);
  setReg64(cpu, 6, 0x40000000n);
  assert.equal(runBytes(cpu, [0xd1, 0x26]), 14); // shl dword [rsi], 1
  assert.equal(cpu.rd32(cpu.regNum(4), false), 2);
  assert.equal(runBytes(cpu, [0x0f, 0xa4, 0x16, 3]), 14); // shld [rsi], edx, 3
  assert.equal(cpu.rd32(cpu.regNum(4), false), 2);
  assert.equal(runBytes(cpu, [0x0f, 0xba, 0x2e, 3]), 14); // bts dword [rsi], 3
  assert.equal(cpu.rd32(cpu.regNum(4), false), 2);
  assert.equal(runBytes(cpu, [0x0f, 0xba, 0x26, 3]), 14); // bt dword [rsi], 3: a read
  assert.equal(cpu.rd32(cpu.regNum(4), false), 0);
});
