// BT BTS BTR BTC (register and memory, immediate and register bit offsets incl.
// negative ones), BSF BSR, TZCNT LZCNT POPCNT.
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
const PRE: Record<number, number[]> = { 16: [0x66], 32: [], 64: [0x48] };
const DATA = 0x9000;
/** 0F A3/AB/B3/BB for BT/BTS/BTR/BTC Ev,Gv and 0F BA /4../7 for Ev,Ib. */
const OPS = [0xa3, 0xab, 0xb3, 0xbb];

function applyBit(op: number, v: bigint, bit: bigint): bigint {
  const m = 1n << bit;
  return op === 0 ? v : op === 1 ? v | m : op === 2 ? v & ~m : v ^ m;
}

test('BTx on registers: bit offset modulo the operand size, CF = old bit, other flags kept', () => {
  const { cpu } = makeCpu64();
  for (const bits of [16, 32, 64]) {
    const mask = (1n << BigInt(bits)) - 1n;
    for (let op = 0; op < 4; op++) {
      for (const off of [0n, 1n, 15n, 31n, 33n, 63n, 64n + 5n, -1n]) {
        for (const imm of [false, true]) {
          const init = 0x8123456789abcdefn;
          setReg64(cpu, 3, init);
          setReg64(cpu, 2, off);
          const f0 = 2 | ZF | SF | OF;
          cpu.setFlags(f0);
          const code = imm
            ? [...PRE[bits], 0x0f, 0xba, 0xc3 | ((4 + op) << 3), Number(BigInt.asUintN(8, off))]
            : [...PRE[bits], 0x0f, OPS[op], 0xd3];
          assert.equal(runBytes(cpu, code), -1);
          const bit = BigInt.asUintN(64, off) % BigInt(bits);
          const old = (init >> bit) & 1n;
          const what = `${['bt', 'bts', 'btr', 'btc'][op]} ${bits} ${imm ? 'imm' : 'reg'} ${off}`;
          assert.equal(cpu.getFlags() & ARITH, (f0 & ~CF & ARITH) | (old ? CF : 0), what);
          const newLow = applyBit(op, init & mask, bit);
          let exp: bigint;
          if (op === 0) exp = init;
          else if (bits === 32) exp = newLow;
          else exp = (init & ~mask & 0xffffffffffffffffn) | newLow;
          assert.equal(reg64(cpu, 3), exp, what);
        }
      }
    }
  }
});

test('BTx on memory with a register offset addresses relative to the operand (signed)', () => {
  const { cpu, mem } = makeCpu64();
  for (const bits of [16, 32, 64]) {
    for (let op = 0; op < 4; op++) {
      for (const off of [0n, 7n, 8n, 100n, 1000n, -1n, -9n, -200n, -1000n]) {
        mem.u8.fill(0, DATA - 0x400, DATA + 0x400);
        for (let k = -0x400; k < 0x400; k++) mem.u8[DATA + k] = (k * 37) & 0xff;
        const before = mem.u8.slice(DATA - 0x400, DATA + 0x400);
        setReg64(cpu, 6, BigInt(DATA));
        setReg64(cpu, 2, off);
        cpu.setFlags(2);
        // btx [rsi], rdx/edx/dx
        assert.equal(runBytes(cpu, [...PRE[bits], 0x0f, OPS[op], 0x16]), -1);
        const byte = DATA + Number(off >> 3n);
        const bit = Number(off & 7n);
        const old = (before[byte - DATA + 0x400] >> bit) & 1;
        const what = `${['bt', 'bts', 'btr', 'btc'][op]} ${bits} [rsi], ${off}`;
        assert.equal(cpu.getFlags() & CF, old, what);
        const exp = before.slice();
        exp[byte - DATA + 0x400] = Number(applyBit(op, BigInt(before[byte - DATA + 0x400]), BigInt(bit)));
        assert.deepEqual(mem.u8.slice(DATA - 0x400, DATA + 0x400), exp, what);
      }
    }
  }
  // A 16-bit offset is sign-extended from 16 bits: 0xffff is -1 -> the word below.
  mem.u8.fill(0, DATA - 8, DATA + 8);
  setReg64(cpu, 2, 0x1234ffffn);
  assert.equal(runBytes(cpu, [0x66, 0x0f, 0xab, 0x16]), -1);
  assert.equal(mem.u8[DATA - 1], 0x80);
  // The immediate form masks the offset and addresses the operand itself.
  mem.u8.fill(0, DATA - 8, DATA + 8);
  assert.equal(runBytes(cpu, [0x0f, 0xba, 0x2e, 33]), -1); // bts dword [rsi], 33 -> bit 1
  assert.equal(mem.u8[DATA], 2);
});

test('LOCK: allowed on BTS/BTR/BTC to memory, #UD on BT and register forms', () => {
  const { cpu, mem } = makeCpu64();
  setReg64(cpu, 6, BigInt(DATA));
  setReg64(cpu, 2, 3n);
  mem.u8[DATA] = 0;
  assert.equal(runBytes(cpu, [0xf0, 0x0f, 0xab, 0x16]), -1);
  assert.equal(mem.u8[DATA], 8);
  assert.equal(runBytes(cpu, [0xf0, 0x0f, 0xa3, 0x16]), 6);
  assert.equal(runBytes(cpu, [0xf0, 0x0f, 0xab, 0xd3]), 6);
});

test('BSF/BSR: index of the lowest/highest set bit; zero source sets ZF and keeps the destination', () => {
  const { cpu } = makeCpu64();
  const cases: [number, bigint, bigint, bigint][] = [
    // bits, source, bsf, bsr
    [16, 0x0180n, 7n, 8n],
    [32, 0x80000000n, 31n, 31n],
    [32, 0x00010001n, 0n, 16n],
    [64, 0x8000000000000000n, 63n, 63n],
    [64, 0x0000000100000000n, 32n, 32n],
    [64, 0x0000000100000010n, 4n, 32n],
  ];
  for (const [bits, src, f, r] of cases) {
    for (const [rev, exp] of [
      [0, f],
      [1, r],
    ] as const) {
      setReg64(cpu, 3, src | (bits === 16 ? 0xabcd0000n : 0n));
      setReg64(cpu, 0, 0x1111222233334444n);
      cpu.setFlags(2 | ZF);
      assert.equal(runBytes(cpu, [...PRE[bits], 0x0f, 0xbc + rev, 0xc3]), -1); // bsf/bsr eax, ebx
      const keep = bits === 16 ? 0x1111222233330000n : 0n;
      assert.equal(reg64(cpu, 0), keep | exp, `${rev ? 'bsr' : 'bsf'} ${bits} ${src}`);
      assert.equal(cpu.getFlags() & ZF, 0);
    }
  }
  for (const bits of [16, 32, 64]) {
    setReg64(cpu, 3, bits === 16 ? 0xffff0000n : 0n);
    setReg64(cpu, 0, 0x1111222233334444n);
    cpu.setFlags(2 | CF);
    assert.equal(runBytes(cpu, [...PRE[bits], 0x0f, 0xbc, 0xc3]), -1);
    assert.equal(reg64(cpu, 0), 0x1111222233334444n);
    assert.equal(cpu.getFlags() & (ZF | CF), ZF | CF);
  }
});

test('TZCNT/LZCNT/POPCNT values and flags', () => {
  const { cpu } = makeCpu64();
  const pop = (v: bigint): number => v.toString(2).replace(/0/g, '').length;
  const values = [
    0n,
    1n,
    0x8000n,
    0x80000000n,
    0xffffn,
    0x00f0f000n,
    0x8000000000000000n,
    0x0000010000000000n,
    0xffffffffffffffffn,
  ];
  for (const bits of [16, 32, 64]) {
    const mask = (1n << BigInt(bits)) - 1n;
    for (const v0 of values) {
      const v = v0 & mask;
      const tz = v === 0n ? bits : v.toString(2).length - v.toString(2).lastIndexOf('1') - 1;
      const lz = v === 0n ? bits : bits - v.toString(2).length;
      const pc = pop(v);
      for (const [op, exp, flags] of [
        [0xbc, tz, (v === 0n ? CF : 0) | (tz === 0 ? ZF : 0)],
        [0xbd, lz, (v === 0n ? CF : 0) | (lz === 0 ? ZF : 0)],
        [0xb8, pc, v === 0n ? ZF : 0],
      ] as const) {
        setReg64(cpu, 3, v);
        setReg64(cpu, 0, 0x7777777777777777n);
        const f0 = 2 | SF | OF | AF | PF | CF | ZF;
        cpu.setFlags(f0);
        // f3 [66|48] 0f xx c3 : op eax, ebx
        assert.equal(
          runBytes(cpu, [
            ...(bits === 16 ? [0x66, 0xf3] : [0xf3]),
            ...(bits === 64 ? [0x48] : []),
            0x0f,
            op,
            0xc3,
          ]),
          -1,
        );
        const keep = bits === 16 ? 0x7777777777770000n : 0n;
        const what = `op ${op.toString(16)} ${bits} 0x${v.toString(16)}`;
        assert.equal(reg64(cpu, 0), keep | BigInt(exp), what);
        // TZCNT/LZCNT keep the undefined flags; POPCNT clears them.
        const kept = op === 0xb8 ? 0 : f0 & (SF | OF | AF | PF);
        assert.equal(cpu.getFlags() & ARITH, kept | flags, what);
      }
    }
  }
});
