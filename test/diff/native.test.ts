// Self-checks of the differential tester that need no simulator: the native
// harness gives known results for hand-assembled instructions, is
// deterministic, and the generators stay inside the operand window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GROUPS, availableGroups, generate } from './gen.js';
import { hostFeatures, runNative } from './native.js';
import type { NativeResult } from './native.js';
import { nativeCheck } from './run.js';
import type { DiffCase } from './types.js';
import {
  AF,
  CF,
  CODE_ADDR,
  DF,
  FLAGS_LOADABLE,
  INIT_RSP,
  MEM_ADDR,
  MEM_SIZE,
  OF,
  PF,
  SF,
  ZF,
} from './types.js';

const RAX = 0;
const RCX = 1;
const RBX = 3;
const RSP = 4;
const RSI = 6;
const RDI = 7;

function mk(code: number[], regs: Record<number, bigint> = {}, rflags = 0n, mem?: Uint8Array): DiffCase {
  const r: bigint[] = [];
  for (let i = 0; i < 16; i++) r.push(0x1111111111111111n * BigInt(i));
  r[RSP] = INIT_RSP;
  for (const [k, v] of Object.entries(regs)) r[Number(k)] = v;
  const m = mem ?? Uint8Array.from({ length: MEM_SIZE }, (_, i) => i);
  return { code: Uint8Array.from(code), regs: r, rflags, mem: m };
}

function le64(v: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

function run1(c: DiffCase): NativeResult {
  return runNative([c])[0];
}

const arith = (r: NativeResult) => r.rflags & FLAGS_LOADABLE;

test('native harness: host CPU features', () => {
  const f = hostFeatures();
  assert.match(f.vendor, /^(GenuineIntel|AuthenticAMD|\w+)$/);
});

test('native harness: known results for hand-assembled instructions', () => {
  // add rax, rbx
  let r = run1(mk([0x48, 0x01, 0xd8], { [RAX]: 5n, [RBX]: 7n }));
  assert.equal(r.vector, -1);
  assert.equal(r.regs[RAX], 12n);
  assert.equal(arith(r), PF);

  // add eax, ebx: 32-bit result zero-extends; carry out, zero, aux carry, parity
  r = run1(mk([0x01, 0xd8], { [RAX]: 0xffffffffffffffffn, [RBX]: 1n }));
  assert.equal(r.regs[RAX], 0n);
  assert.equal(arith(r), CF | ZF | PF | AF);

  // sub al, 1 keeps bits 8..63
  r = run1(mk([0x2c, 0x01], { [RAX]: 0x1234567800000000n }));
  assert.equal(r.regs[RAX], 0x12345678000000ffn);
  assert.equal(arith(r), CF | SF | AF | PF);

  // adc rax, rbx with CF = 1
  r = run1(mk([0x48, 0x11, 0xd8], { [RAX]: 1n, [RBX]: 2n }, CF));
  assert.equal(r.regs[RAX], 4n);

  // add al, 0x7f overflows into the sign bit: OF
  r = run1(mk([0x04, 0x7f], { [RAX]: 1n }));
  assert.equal(r.regs[RAX] & 0xffn, 0x80n);
  assert.equal(arith(r) & (OF | SF | CF), OF | SF);

  // mov eax, ebx zero-extends; 90 (nop) does not touch rax; 87 c0 (xchg eax, eax) zero-extends
  r = run1(mk([0x89, 0xd8], { [RAX]: -1n & 0xffffffffffffffffn, [RBX]: 0xaaaaaaaa_12345678n }));
  assert.equal(r.regs[RAX], 0x12345678n);
  r = run1(mk([0x90], { [RAX]: 0xdeadbeef_00000001n }));
  assert.equal(r.regs[RAX], 0xdeadbeef_00000001n);
  r = run1(mk([0x87, 0xc0], { [RAX]: 0xdeadbeef_00000001n }));
  assert.equal(r.regs[RAX], 1n);

  // mov rax, [rip+disp32]: the instruction sits at CODE_ADDR
  const disp = MEM_ADDR + 8n - (CODE_ADDR + 7n);
  r = run1(mk([0x48, 0x8b, 0x05, ...le64(BigInt.asUintN(32, disp)).slice(0, 4)]));
  assert.equal(r.regs[RAX], 0x0f0e0d0c0b0a0908n);

  // mov [rbx], rax
  r = run1(mk([0x48, 0x89, 0x03], { [RAX]: 0x1122334455667788n, [RBX]: MEM_ADDR }));
  assert.deepEqual(Array.from(r.mem.subarray(0, 8)), le64(0x1122334455667788n));

  // push rax / pop rcx: the stack is the middle of the window
  r = run1(mk([0x50], { [RAX]: 0xa1a2a3a4a5a6a7a8n }));
  assert.equal(r.regs[RSP], INIT_RSP - 8n);
  assert.deepEqual(Array.from(r.mem.subarray(24, 32)), le64(0xa1a2a3a4a5a6a7a8n));
  r = run1(mk([0x59]));
  assert.equal(r.regs[RSP], INIT_RSP + 8n);
  assert.equal(r.regs[RCX], 0x2726252423222120n);

  // rep movsb
  r = run1(mk([0xf3, 0xa4], { [RSI]: MEM_ADDR, [RDI]: MEM_ADDR + 40n, [RCX]: 4n }));
  assert.deepEqual(Array.from(r.mem.subarray(40, 44)), [0, 1, 2, 3]);
  assert.equal(r.regs[RCX], 0n);
  assert.equal(r.regs[RSI], MEM_ADDR + 4n);
  assert.equal(r.regs[RDI], MEM_ADDR + 44n);

  // flags pass through a NOP; STD/CLD
  r = run1(mk([0x90], {}, FLAGS_LOADABLE));
  assert.equal(arith(r), FLAGS_LOADABLE);
  r = run1(mk([0xfd]));
  assert.equal(arith(r), DF);
  r = run1(mk([0xfc], {}, DF | CF));
  assert.equal(arith(r), CF);

  // all registers come back unchanged from a NOP
  const c = mk([0x90]);
  r = run1(c);
  assert.deepEqual(r.regs, c.regs);
});

test('native harness: exceptions are reported as x86 vectors', () => {
  assert.equal(run1(mk([0x48, 0xf7, 0xf1], { [RCX]: 0n })).vector, 0, 'div rcx by zero: #DE');
  assert.equal(run1(mk([0x0f, 0x0b])).vector, 6, 'ud2: #UD');
  assert.equal(run1(mk([0xcc])).vector, 3, 'int3: #BP');
  assert.equal(run1(mk([0x48, 0x8b, 0x03], { [RBX]: 0x8000000000000000n })).vector, 13, 'non-canonical: #GP');
  assert.equal(run1(mk([0x48, 0x8b, 0x03], { [RBX]: 0x1000n })).vector, 14, 'unmapped: #PF');
  assert.equal(run1(mk([0xf4])).vector, 13, 'hlt at CPL 3: #GP');
  // a fault does not disturb the next case
  const rs = runNative([mk([0x0f, 0x0b]), mk([0x48, 0x01, 0xd8], { [RAX]: 5n, [RBX]: 7n })]);
  assert.equal(rs[1].vector, -1);
  assert.equal(rs[1].regs[RAX], 12n);
});

test('generators are deterministic', () => {
  for (const g of GROUPS) {
    const a = generate(g, 50, 'det');
    const b = generate(g, 50, 'det');
    assert.deepEqual(a, b, g.name);
    const c = generate(g, 5, 'det', 45);
    assert.deepEqual(c, a.slice(45), `${g.name}: case i depends only on (seed, group, i)`);
  }
});

test('generators: cases stay in the window, are deterministic, fault only where expected', () => {
  const problems: string[] = [];
  for (const g of availableGroups(hostFeatures())) {
    problems.push(...nativeCheck(g, 'self-check', 0, 400));
  }
  assert.deepEqual(problems.slice(0, 5), []);
});

test('generators: exception groups raise the expected vectors', () => {
  const f = hostFeatures();
  const vectors = (name: string) => {
    const g = availableGroups(f).find((x) => x.name === name);
    if (!g) return new Set<number>();
    return new Set(runNative(generate(g, 400, 'vec')).map((r) => r.vector));
  };
  assert.deepEqual(
    [...vectors('ud')].sort((a, b) => a - b),
    [3, 6, 13],
  );
  assert.deepEqual([...vectors('priv')], [13]);
  assert.deepEqual(
    [...vectors('fault')].sort((a, b) => a - b),
    [12, 13, 14],
  );
  assert.ok(vectors('div').has(0) && vectors('div').has(-1));
});
