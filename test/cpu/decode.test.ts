/** Decoder unit tests: lengths, operand sizes, ModRM/SIB/displacement and immediates for a table of encodings. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '../../src/hw/cpu/decode.js';
import { Insn } from '../../src/hw/cpu/insn.js';
import '../../src/hw/cpu/cpu.js'; // installs the handler table

function dec(bytes: number[], bits = 64): Insn {
  return decode({ bits, fetch: (k) => (k < bytes.length ? bytes[k] : 0x90) }, new Insn());
}

interface Row {
  bytes: number[];
  bits?: number;
  len: number;
  mnemonic: string;
  size?: number;
  asize?: number;
  base?: number;
  index?: number;
  scale?: number;
  disp?: number;
  imm?: number;
  immHi?: number;
  rm?: number;
  reg?: number;
  mem?: boolean;
}

const rows: Row[] = [
  { bytes: [0x48, 0x01, 0xd8], len: 3, mnemonic: 'ADD', size: 8, rm: 0, reg: 3, mem: false }, // add rax, rbx
  { bytes: [0x01, 0xd8], len: 2, mnemonic: 'ADD', size: 4 },
  { bytes: [0x66, 0x01, 0xd8], len: 3, mnemonic: 'ADD', size: 2 },
  { bytes: [0x00, 0xe0], len: 2, mnemonic: 'ADD', size: 1 }, // add al, ah
  { bytes: [0x4d, 0x01, 0xc8], len: 3, mnemonic: 'ADD', size: 8, rm: 8, reg: 9 }, // add r8, r9
  {
    bytes: [0x48, 0x8b, 0x44, 0x8b, 0x10],
    len: 5,
    mnemonic: 'MOV',
    base: 3,
    index: 1,
    scale: 2,
    disp: 0x10,
    mem: true,
  }, // mov rax,[rbx+rcx*4+0x10]
  { bytes: [0x8b, 0x05, 0x78, 0x56, 0x34, 0x12], len: 6, mnemonic: 'MOV', base: 16, disp: 0x12345678 }, // mov eax,[rip+disp32]
  {
    bytes: [0x67, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00],
    len: 7,
    mnemonic: 'MOV',
    asize: 4,
    base: 16,
    disp: 0x1000,
  },
  {
    bytes: [0x8b, 0x04, 0x25, 0x00, 0x20, 0x00, 0x00],
    len: 7,
    mnemonic: 'MOV',
    base: -1,
    index: -1,
    disp: 0x2000,
  }, // [disp32] via SIB
  { bytes: [0x8b, 0x45, 0xf8], len: 3, mnemonic: 'MOV', base: 5, disp: -8 }, // [rbp-8]
  { bytes: [0x42, 0x8b, 0x04, 0xe0], len: 4, mnemonic: 'MOV', base: 0, index: 12, scale: 3 }, // [rax+r12*8]
  {
    bytes: [0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 0x88],
    len: 10,
    mnemonic: 'MOV',
    size: 8,
    imm: 0x04030201,
    immHi: 0x88070605 | 0,
  },
  { bytes: [0x48, 0x83, 0xc0, 0xff], len: 4, mnemonic: 'ADD', size: 8, imm: -1, immHi: -1 },
  {
    bytes: [0x48, 0x81, 0xc0, 0x00, 0x00, 0x00, 0x80],
    len: 7,
    mnemonic: 'ADD',
    size: 8,
    imm: -0x80000000,
    immHi: -1,
  },
  { bytes: [0x66, 0x81, 0xc0, 0x34, 0x12], len: 5, mnemonic: 'ADD', size: 2, imm: 0x1234 },
  { bytes: [0x50], len: 1, mnemonic: 'PUSH', size: 8 }, // push defaults to 64 bits
  { bytes: [0x66, 0x50], len: 2, mnemonic: 'PUSH', size: 2 },
  { bytes: [0x41, 0x57], len: 2, mnemonic: 'PUSH', rm: 15 }, // push r15
  { bytes: [0xe8, 0, 0, 0, 0], len: 5, mnemonic: 'CALL', size: 8 },
  { bytes: [0x75, 0xfe], len: 2, mnemonic: 'JCC', imm: -2 },
  { bytes: [0x0f, 0x85, 0x10, 0, 0, 0], len: 6, mnemonic: 'JCC', imm: 0x10 },
  { bytes: [0xc8, 0x10, 0x00, 0x02], len: 4, mnemonic: 'ENTER', imm: 0x10 },
  { bytes: [0xf3, 0x48, 0xab], len: 3, mnemonic: 'STOS', size: 8 },
  { bytes: [0xa1, 1, 0, 0, 0, 0, 0, 0, 0], len: 9, mnemonic: 'MOV', disp: 1, mem: true }, // mov eax, moffs64
  { bytes: [0xa1, 1, 0, 0, 0], bits: 32, len: 5, mnemonic: 'MOV', disp: 1 },
  { bytes: [0x8b, 0x47, 0x02], bits: 16, len: 3, mnemonic: 'MOV', size: 2, asize: 2, base: 3, disp: 2 }, // mov ax,[bx+2]
  { bytes: [0x8b, 0x02], bits: 16, len: 2, mnemonic: 'MOV', base: 5, index: 6 }, // mov ax,[bp+si]
  { bytes: [0x8b, 0x06, 0x34, 0x12], bits: 16, len: 4, mnemonic: 'MOV', base: -1, disp: 0x1234 },
  { bytes: [0x40], bits: 32, len: 1, mnemonic: 'INC', rm: 0 }, // inc eax in 32-bit mode
  { bytes: [0xee], len: 1, mnemonic: 'OUT' }, // out dx, al: no ModRM
  { bytes: [0x6c], len: 1, mnemonic: 'INS' },
  { bytes: [0xd3, 0xe0], len: 2, mnemonic: 'SHL' }, // shl eax, cl
  { bytes: [0xf3, 0x0f, 0x1e, 0xfa], len: 4, mnemonic: 'NOPM' }, // endbr64
  { bytes: [0x0f, 0x1f, 0x44, 0x00, 0x00], len: 5, mnemonic: 'NOPM' },
  { bytes: [0xf3, 0x0f, 0xb8, 0xc1], len: 4, mnemonic: 'POPCNT' },
  { bytes: [0x0f, 0xbc, 0xc1], len: 3, mnemonic: 'BSF' },
  { bytes: [0xf3, 0x0f, 0xbc, 0xc1], len: 4, mnemonic: 'TZCNT' },
  { bytes: [0x0f, 0x01, 0xf8], len: 3, mnemonic: 'SWAPGS' },
  { bytes: [0x0f, 0x01, 0x38], len: 3, mnemonic: 'INVLPG', mem: true },
  { bytes: [0x66, 0x0f, 0x38, 0x82, 0x01], len: 5, mnemonic: 'INVPCID' },
  { bytes: [0x0f, 0x20, 0xd8], len: 3, mnemonic: 'MOVCR', reg: 3, rm: 0 }, // mov rax, cr3
  { bytes: [0x44, 0x0f, 0x20, 0xc0], len: 4, mnemonic: 'MOVCR', reg: 8 }, // mov rax, cr8
  { bytes: [0xf0, 0x48, 0x0f, 0xc1, 0x07], len: 5, mnemonic: 'XADD' }, // lock xadd [rdi], rax
  { bytes: [0xf0, 0x01, 0xc0], len: 3, mnemonic: '(bad)' }, // lock with a register destination: #UD
  { bytes: [0xf0, 0x90], len: 2, mnemonic: '(bad)' },
  { bytes: [0x06], len: 1, mnemonic: '(bad)' }, // push es is invalid in 64-bit mode
  { bytes: [0x06], bits: 32, len: 1, mnemonic: 'PUSH' },
  { bytes: [0x0f, 0xff, 0xc0], len: 3, mnemonic: 'UD0' },
  { bytes: [0x26, 0x8b, 0x00], len: 3, mnemonic: 'MOV', mem: true }, // ES override ignored in 64-bit mode
  { bytes: [0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0], len: 9, mnemonic: 'MOV', disp: 0x28 }, // mov rax, fs:0x28
];

for (const r of rows) {
  const name = `${r.bits ?? 64}-bit ${r.bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ')} → ${r.mnemonic}`;
  test(name, () => {
    const i = dec(r.bytes, r.bits ?? 64);
    assert.equal(i.mnemonic, r.mnemonic);
    assert.equal(i.len, r.len, 'length');
    for (const k of [
      'size',
      'asize',
      'base',
      'index',
      'scale',
      'disp',
      'imm',
      'immHi',
      'rm',
      'reg',
      'mem',
    ] as const)
      if (r[k] !== undefined) assert.equal(i[k], r[k], k);
  });
}

test('FS override is kept, and is the memory operand segment', () => {
  assert.equal(dec([0x64, 0x8b, 0x00]).seg, 4);
});
test('rBP-based addressing defaults to SS, r13-based to DS', () => {
  assert.equal(dec([0x8b, 0x45, 0x00]).seg, 2);
  assert.equal(dec([0x41, 0x8b, 0x45, 0x00]).seg, 3);
});
test('an instruction longer than 15 bytes decodes to the #GP handler with length 15', () => {
  const i = dec([
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x01, 0xc0,
  ]);
  assert.equal(i.mnemonic, '(too long)');
  assert.equal(i.len, 15);
});
