// MOVS CMPS STOS LODS SCAS INS OUTS: element sizes, REP/REPE/REPNE, DF, address
// sizes and their wrap-around, segment overrides, restartability after a fault in
// the middle, the per-execution iteration limit, and I/O permission for INS/OUTS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CODE, makeCpu64, runBytes, runN, reg64, setCpl, setReg64, lastErrorCode } from '../support/cpu64.js';
import { CHUNK } from '../../src/hw/cpu/exec/string.js';
import { CS, DS, ES, FS } from '../../src/hw/cpu/regs.js';

const ZF = 0x40,
  CF = 1,
  DF = 0x400;
const RAX = 0,
  RCX = 1,
  RDX = 2,
  RSI = 6,
  RDI = 7;
const SRC = 0x10000,
  DST = 0x20000;

function fillPattern(u8: Uint8Array, at: number, n: number, seed: number): void {
  for (let k = 0; k < n; k++) u8[at + k] = (k * 7 + seed) & 0xff;
}

/** Reference REP MOVS: element by element in architectural order. */
function refMovs(buf: Uint8Array, si: number, di: number, n: number, size: number, down: boolean): void {
  for (let k = 0; k < n; k++) {
    const d = down ? -k * size : k * size;
    const el = buf.slice(si + d, si + d + size);
    buf.set(el, di + d);
  }
}

test('REP MOVS matches element-order copying (sizes, DF, overlap, page crossings)', () => {
  const { cpu, mem } = makeCpu64();
  const sizes: [number, number[]][] = [
    [1, [0xa4]],
    [2, [0x66, 0xa5]],
    [4, [0xa5]],
    [8, [0x48, 0xa5]],
  ];
  const layouts = [
    [0, 0x2000, 37], // disjoint
    [0, 0x1, 100], // destination just ahead of the source (replicates in element order)
    [0x1, 0, 100], // destination behind
    [0xff0, 0x2ffd, 300], // crossing pages at odd places
    [0, 0x3, 9000], // more than one chunk
    [0x8, 0x0, 700],
  ];
  for (const [size, op] of sizes) {
    for (const [soff, doff, n] of layouts) {
      for (const down of [false, true]) {
        const base = 0x40000;
        const span = n * size + 0x3000;
        fillPattern(mem.u8, base - span, 2 * span + 0x4000, n + size);
        const ref = mem.u8.slice(0, 0x100000);
        const si = base + soff + (down ? (n - 1) * size : 0);
        const di = base + doff + (down ? (n - 1) * size : 0);
        refMovs(ref, si, di, n, size, down);
        setReg64(cpu, RSI, BigInt(si));
        setReg64(cpu, RDI, BigInt(di));
        setReg64(cpu, RCX, BigInt(n));
        cpu.setFlags(down ? 2 | DF : 2);
        runBytes(cpu, [0xf3, ...op]);
        let guard = 0;
        while (cpu.rip === CODE && guard++ < 100) runN(cpu, 1);
        const what = `rep movs${size} si+${soff} di+${doff} n=${n} ${down ? 'down' : 'up'}`;
        assert.equal(cpu.rip, CODE + 1 + op.length, what);
        assert.equal(reg64(cpu, RCX), 0n, what);
        const adv = BigInt((down ? -n : n) * size);
        assert.equal(reg64(cpu, RSI), BigInt(si) + adv, what);
        assert.equal(reg64(cpu, RDI), BigInt(di) + adv, what);
        assert.ok(Buffer.from(mem.u8.subarray(0, 0x100000)).equals(Buffer.from(ref)), what);
      }
    }
  }
});

test('REP STOS fills, LODS loads, single forms step by the element size', () => {
  const { cpu, mem } = makeCpu64();
  setReg64(cpu, RAX, 0x1122334455667788n);
  for (const [size, op] of [
    [1, [0xaa]],
    [2, [0x66, 0xab]],
    [4, [0xab]],
    [8, [0x48, 0xab]],
  ] as [number, number[]][]) {
    mem.u8.fill(0, DST - 16, DST + 0x3000);
    setReg64(cpu, RDI, BigInt(DST));
    setReg64(cpu, RCX, 1000n);
    cpu.setFlags(2);
    runBytes(cpu, [0xf3, ...op]);
    const pat = new Uint8Array(new BigUint64Array([0x1122334455667788n]).buffer).slice(0, size);
    for (let k = 0; k < 1000 * size; k++)
      assert.equal(mem.u8[DST + k], pat[k % size], `stos${size} byte ${k}`);
    assert.equal(mem.u8[DST + 1000 * size], 0);
    assert.equal(mem.u8[DST - 1], 0);
    assert.equal(reg64(cpu, RDI), BigInt(DST + 1000 * size));
    // lods backwards
    setReg64(cpu, RSI, BigInt(DST + 8));
    cpu.setFlags(2 | DF);
    setReg64(cpu, RAX, 0xffffffffffffffffn);
    runBytes(cpu, op.slice(0, -1).concat([op[op.length - 1] + 2])); // ab -> ad, aa -> ac
    const expect = size === 4 ? 0n : 0xffffffffffffffffn & ~((1n << BigInt(8 * size)) - 1n);
    const v =
      size === 8
        ? 0x1122334455667788n
        : BigInt(mem.dv.getUint32(DST + 8, true)) & ((1n << BigInt(8 * size)) - 1n);
    assert.equal(reg64(cpu, RAX), expect | v, `lods${size}`);
    assert.equal(reg64(cpu, RSI), BigInt(DST + 8 - size));
    setReg64(cpu, RAX, 0x1122334455667788n);
  }
});

test('REPE CMPS stops after the first difference, REPNE SCAS after the first match', () => {
  const { cpu, mem } = makeCpu64();
  const a = Buffer.from('hello, world');
  const b = Buffer.from('hello, there');
  mem.u8.set(a, SRC);
  mem.u8.set(b, DST);
  setReg64(cpu, RSI, BigInt(SRC));
  setReg64(cpu, RDI, BigInt(DST));
  setReg64(cpu, RCX, 100n);
  cpu.setFlags(2);
  runBytes(cpu, [0xf3, 0xa6]); // repe cmpsb
  // 'w' vs 't' at index 7: eight comparisons done.
  assert.equal(reg64(cpu, RCX), 92n);
  assert.equal(reg64(cpu, RSI), BigInt(SRC + 8));
  assert.equal(reg64(cpu, RDI), BigInt(DST + 8));
  assert.equal(cpu.getFlags() & (ZF | CF), 0); // 'w' > 't'
  assert.equal(cpu.rip, CODE + 2);
  // Equal strings: runs to the end of the count with ZF = 1.
  setReg64(cpu, RSI, BigInt(SRC));
  setReg64(cpu, RDI, BigInt(DST));
  setReg64(cpu, RCX, 7n);
  runBytes(cpu, [0xf3, 0xa6]);
  assert.equal(reg64(cpu, RCX), 0n);
  assert.equal(cpu.getFlags() & ZF, ZF);
  // strlen idiom: repne scasb with AL = 0
  mem.u8.set(Buffer.from('abcdefg\0'), DST);
  setReg64(cpu, RAX, 0n);
  setReg64(cpu, RDI, BigInt(DST));
  setReg64(cpu, RCX, -1n);
  runBytes(cpu, [0xf2, 0xae]);
  assert.equal(reg64(cpu, RCX), BigInt.asUintN(64, -1n - 8n));
  assert.equal(reg64(cpu, RDI), BigInt(DST + 8));
  assert.equal(cpu.getFlags() & ZF, ZF);
  // repne cmpsd: stops at the first equal dword
  mem.dv.setUint32(SRC, 1, true);
  mem.dv.setUint32(SRC + 4, 2, true);
  mem.dv.setUint32(SRC + 8, 3, true);
  mem.dv.setUint32(DST, 9, true);
  mem.dv.setUint32(DST + 4, 9, true);
  mem.dv.setUint32(DST + 8, 3, true);
  setReg64(cpu, RSI, BigInt(SRC));
  setReg64(cpu, RDI, BigInt(DST));
  setReg64(cpu, RCX, 10n);
  runBytes(cpu, [0xf2, 0xa7]);
  assert.equal(reg64(cpu, RCX), 7n);
  assert.equal(reg64(cpu, RSI), BigInt(SRC + 12));
  // A zero count does nothing at all (flags included).
  setReg64(cpu, RCX, 0n);
  cpu.setFlags(2 | CF);
  runBytes(cpu, [0xf3, 0xa6]);
  assert.equal(reg64(cpu, RSI), BigInt(SRC + 12));
  assert.equal(cpu.getFlags() & (CF | ZF), CF);
});

test('a fault in iteration k leaves k iterations done and RIP at the instruction', () => {
  const m = makeCpu64();
  const { cpu, mem } = m;
  // 0x40000000 is mapped, 0x40001000 is not.
  m.map4k(0x40000000, 0x150000, 7);
  fillPattern(mem.u8, SRC, 256, 3);
  for (const [size, op] of [
    [1, [0xf3, 0xa4]],
    [4, [0xf3, 0xa5]],
    [8, [0xf3, 0x48, 0xa5]],
  ] as [number, number[]][]) {
    const before = 32;
    setReg64(cpu, RSI, BigInt(SRC));
    setReg64(cpu, RDI, BigInt(0x40001000 - before));
    setReg64(cpu, RCX, 100n);
    cpu.setFlags(2);
    const v = runBytes(cpu, op);
    assert.equal(v, 14);
    const k = before / size;
    assert.equal(reg64(cpu, RCX), BigInt(100 - k));
    assert.equal(reg64(cpu, RSI), BigInt(SRC + before));
    assert.equal(reg64(cpu, RDI), 0x40001000n);
    assert.equal(cpu.cr2, 0x40001000);
    assert.equal(lastErrorCode(cpu), 2); // write, not present, supervisor
    // The frame's RIP is the string instruction itself.
    assert.equal(cpu.rd32(cpu.regNum(4) + 8, false), CODE);
    assert.deepEqual(mem.u8.slice(0x151000 - before, 0x151000), mem.u8.slice(SRC, SRC + before));
  }
  // A faulting single (non-REP) MOVS changes nothing.
  setReg64(cpu, RSI, BigInt(SRC));
  setReg64(cpu, RDI, 0x40001000n);
  assert.equal(runBytes(cpu, [0xa4]), 14);
  assert.equal(reg64(cpu, RSI), BigInt(SRC));
  assert.equal(reg64(cpu, RDI), 0x40001000n);
});

test('a long REP runs CHUNK iterations per execution and re-executes itself', () => {
  const { cpu, mem } = makeCpu64();
  mem.u8.fill(0, DST, DST + 10000);
  setReg64(cpu, RAX, 0x5an);
  setReg64(cpu, RDI, BigInt(DST));
  setReg64(cpu, RCX, 10000n);
  cpu.setFlags(2);
  // rep stosb; a second copy of the instruction's bytes is never reached before the end
  runBytes(cpu, [0xf3, 0xaa, 0x90]);
  assert.equal(cpu.rip, CODE);
  assert.equal(reg64(cpu, RCX), BigInt(10000 - CHUNK));
  assert.equal(mem.u8[DST + CHUNK - 1], 0x5a);
  assert.equal(mem.u8[DST + CHUNK], 0);
  runN(cpu, 1);
  runN(cpu, 1);
  assert.equal(cpu.rip, CODE + 2);
  assert.equal(reg64(cpu, RCX), 0n);
  assert.equal(mem.u8[DST + 9999], 0x5a);
  assert.equal(mem.u8[DST + 10000], 0);
});

test('address size 32 uses ESI/EDI/ECX, zero-extends them and wraps at 4 GiB', () => {
  const m = makeCpu64();
  const { cpu, mem } = m;
  mem.u8[SRC] = 0x42;
  setReg64(cpu, RSI, 0xdead000000000000n | BigInt(SRC));
  setReg64(cpu, RAX, 0n);
  cpu.setFlags(2);
  assert.equal(runBytes(cpu, [0x67, 0xac]), -1); // lodsb via [esi]
  assert.equal(reg64(cpu, RAX), 0x42n);
  assert.equal(reg64(cpu, RSI), BigInt(SRC + 1));
  // Wrap: ESI = 0xffffffff reads the last byte below 4 GiB, then ESI = 0.
  m.map4k(0xfffff000, 0x160000, 7);
  mem.u8[0x160fff] = 0x99;
  setReg64(cpu, RSI, 0xffffffffn);
  assert.equal(runBytes(cpu, [0x67, 0xac]), -1);
  assert.equal(reg64(cpu, RAX), 0x99n);
  assert.equal(reg64(cpu, RSI), 0n);
  // rep movsb with ECX: the upper half of RCX is ignored and cleared.
  fillPattern(mem.u8, SRC, 16, 1);
  setReg64(cpu, RSI, BigInt(SRC));
  setReg64(cpu, RDI, BigInt(DST));
  setReg64(cpu, RCX, 0x1234567800000004n);
  assert.equal(runBytes(cpu, [0x67, 0xf3, 0xa4]), -1);
  assert.equal(reg64(cpu, RCX), 0n);
  assert.deepEqual(mem.u8.slice(DST, DST + 5), Uint8Array.from([...mem.u8.slice(SRC, SRC + 4), 0]));
  // Backwards across the wrap: ESI = 1, DF = 1, three bytes: offsets 1, 0, 0xffffffff.
  mem.u8[0] = 0xa0;
  mem.u8[1] = 0xa1;
  mem.u8[0x160fff] = 0xaf;
  setReg64(cpu, RSI, 1n);
  setReg64(cpu, RDI, BigInt(DST + 2));
  setReg64(cpu, RCX, 3n);
  cpu.setFlags(2 | DF);
  assert.equal(runBytes(cpu, [0x67, 0xf3, 0xa4]), -1);
  assert.deepEqual(Array.from(mem.u8.slice(DST, DST + 3)), [0xaf, 0xa0, 0xa1]);
  assert.equal(reg64(cpu, RSI), 0xfffffffen);
});

test('segment override applies to the source only; 16-bit addressing wraps SI/DI (compatibility mode)', () => {
  const { cpu, mem } = makeCpu64();
  // FS override in 64-bit mode adds the FS base to the source.
  cpu.segBase[FS] = 0x1000;
  mem.u8[SRC + 0x1000] = 0x77;
  mem.u8[SRC] = 0x11;
  setReg64(cpu, RSI, BigInt(SRC));
  setReg64(cpu, RDI, BigInt(DST));
  cpu.setFlags(2);
  assert.equal(runBytes(cpu, [0x64, 0xa4]), -1); // movsb fs:[rsi] -> es:[rdi]
  assert.equal(mem.u8[DST], 0x77);
  cpu.segBase[FS] = 0;

  // 32-bit compatibility mode with based segments.
  cpu.segAttr[CS] = 0xc09b;
  cpu.updateMode();
  cpu.segBase[DS] = 0x30000;
  cpu.segBase[ES] = 0x50000;
  cpu.segBase[FS] = 0x60000;
  mem.u8[0x30000 + 0x100] = 0xd5;
  mem.u8[0x60000 + 0x101] = 0xf5; // RSI has advanced by then
  setReg64(cpu, RSI, 0x100n);
  setReg64(cpu, RDI, 0x200n);
  assert.equal(runBytes(cpu, [0xa4]), -1);
  assert.equal(mem.u8[0x50200], 0xd5);
  assert.equal(runBytes(cpu, [0x64, 0xa4]), -1); // FS source, ES destination (not FS)
  assert.equal(mem.u8[0x50201], 0xf5);
  // 16-bit addressing (67): SI = 0xffff wraps to 0 and the upper bits of ESI stay.
  mem.u8[0x30000 + 0xffff] = 0x3c;
  setReg64(cpu, RSI, 0x7777ffffn);
  setReg64(cpu, RDI, 0x8888fffen);
  setReg64(cpu, RCX, 0x99990002n);
  mem.u8[0x30000] = 0x3d;
  assert.equal(runBytes(cpu, [0x67, 0xf3, 0xa4]), -1);
  assert.deepEqual(Array.from(mem.u8.slice(0x5fffe, 0x60000)), [0x3c, 0x3d]);
  assert.equal(reg64(cpu, RSI), 0x77770001n);
  assert.equal(reg64(cpu, RDI), 0x88880000n);
  assert.equal(reg64(cpu, RCX), 0x99990000n);
  // ES limit: a store beyond it raises #GP(0) and leaves EDI/ECX as they were.
  cpu.segLimit[ES] = 0x2ff;
  setReg64(cpu, RDI, 0x2fen);
  setReg64(cpu, RCX, 4n);
  setReg64(cpu, RAX, 0x41n);
  const v = runBytes(cpu, [0xf3, 0xaa]);
  assert.equal(v, 13);
  assert.equal(reg64(cpu, RDI), 0x300n);
  assert.equal(reg64(cpu, RCX), 2n);
});

function portLog(m: ReturnType<typeof makeCpu64>): { outs: [number, number, number][] } {
  const log = { outs: [] as [number, number, number][] };
  let n = 0;
  m.io.register(0x300, 8, {
    name: 'test-port',
    portIn: (off, size) => (0x10 + n++ + off) * (size === 1 ? 1 : size === 2 ? 0x101 : 0x01010101),
    portOut: (off, size, v) => {
      log.outs.push([0x300 + off, size, v >>> 0]);
    },
  });
  return log;
}

test('INS/OUTS move between ports and memory; REX.W does not widen them', () => {
  const m = makeCpu64();
  const { cpu, mem } = m;
  const log = portLog(m);
  setReg64(cpu, RDX, 0x300n);
  setReg64(cpu, RDI, BigInt(DST));
  setReg64(cpu, RCX, 3n);
  cpu.setFlags(2);
  assert.equal(runBytes(cpu, [0xf3, 0x6c]), -1); // rep insb
  assert.deepEqual(Array.from(mem.u8.slice(DST, DST + 4)), [0x10, 0x11, 0x12, 0]);
  assert.equal(reg64(cpu, RDI), BigInt(DST + 3));
  mem.dv.setUint32(SRC, 0xcafebabe, true);
  mem.dv.setUint32(SRC + 4, 0x12345678, true);
  setReg64(cpu, RSI, BigInt(SRC));
  assert.equal(runBytes(cpu, [0x48, 0x6f]), -1); // outsd (REX.W ignored)
  assert.deepEqual(log.outs, [[0x300, 4, 0xcafebabe]]);
  assert.equal(reg64(cpu, RSI), BigInt(SRC + 4));
  assert.equal(cpu.rip, CODE + 2);
});

test('INS/OUTS at CPL 3 obey IOPL and the TSS I/O permission bitmap', () => {
  const m = makeCpu64();
  const { cpu, mem } = m;
  const log = portLog(m);
  setCpl(cpu, 3);
  setReg64(cpu, RDX, 0x302n);
  setReg64(cpu, RSI, BigInt(SRC));
  mem.dv.setUint16(SRC, 0xbeef, true);
  cpu.setFlags(2); // IOPL 0
  m.ioAllow(0x302, 2, true);
  assert.equal(runBytes(cpu, [0x66, 0x6f]), -1); // outsw to 0x302-0x303: allowed
  assert.deepEqual(log.outs, [[0x302, 2, 0xbeef]]);
  m.ioAllow(0x303, 1, false);
  setReg64(cpu, RSI, BigInt(SRC));
  assert.equal(runBytes(cpu, [0x66, 0x6f]), 13); // one byte of the range denied: #GP(0)
  assert.equal(lastErrorCode(cpu), 0);
  assert.equal(reg64(cpu, RSI), BigInt(SRC));
  // IOPL 3 bypasses the bitmap.
  setCpl(cpu, 3);
  cpu.setFlags(2 | (3 << 12));
  setReg64(cpu, RSI, BigInt(SRC));
  assert.equal(runBytes(cpu, [0x66, 0x6f]), -1);
  assert.equal(log.outs.length, 2);
});
