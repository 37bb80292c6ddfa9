import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/common/index.js';
import { parseElf } from '../../src/hw/boot/elf.js';
import { buildElf, pattern } from './elf-builder.js';

const text = pattern(64);

function rejects(image: Uint8Array, message: RegExp): void {
  assert.throws(
    () => parseElf(image),
    (e: unknown) => e instanceof UserError && message.test(e.message),
  );
}

test('parses an ELF32 executable and its PT_LOAD segments', () => {
  const b = buildElf({
    bits: 32,
    entry: 0x100010,
    segments: [
      { paddr: 0x100000, data: text, memsz: 0x200 },
      { paddr: 0, data: new Uint8Array(8), type: 4 }, // PT_NOTE: skipped
    ],
  });
  const elf = parseElf(b.image);
  assert.equal(elf.bits, 32);
  assert.equal(elf.machine, 3);
  assert.equal(elf.entry, 0x100010n);
  assert.equal(elf.segments.length, 1);
  assert.deepEqual(elf.segments[0], {
    offset: b.segmentOffsets[0],
    filesz: 64,
    vaddr: 0x100000n,
    paddr: 0x100000n,
    memsz: 0x200n,
    flags: 7,
  });
});

test('parses ELF64 with 64-bit virtual addresses exactly', () => {
  const b = buildElf({
    bits: 64,
    entry: 0xffffffff80100123n,
    segments: [{ paddr: 0x100000, vaddr: 0xffffffff80100000n, data: text }],
  });
  const elf = parseElf(b.image);
  assert.equal(elf.bits, 64);
  assert.equal(elf.entry, 0xffffffff80100123n);
  assert.equal(elf.segments[0].vaddr, 0xffffffff80100000n);
  assert.equal(elf.segments[0].paddr, 0x100000n);
});

test('rejects malformed headers with one-line UserErrors', () => {
  const good = buildElf({ bits: 32, entry: 0x100000, segments: [{ paddr: 0x100000, data: text }] }).image;
  rejects(new Uint8Array(0), /bad magic/);
  rejects(new Uint8Array([0x7f, 0x45, 0x4c]), /bad magic/);
  rejects(good.subarray(0, 10), /truncated ELF header/);
  rejects(good.subarray(0, 40), /truncated ELF header \(40 bytes, ELF32 needs 52\)/);
  const patch = (at: number, v: number): Uint8Array => {
    const c = good.slice();
    c[at] = v;
    return c;
  };
  rejects(patch(0, 0x7e), /bad magic/);
  rejects(patch(4, 3), /unsupported ELF class 3/);
  rejects(patch(5, 2), /not little-endian/);
  rejects(patch(6, 0), /unsupported ELF version 0/);
  rejects(patch(16, 3), /ELF type 3 is not an executable/);
  rejects(patch(18, 62), /ELF32 machine 62 is not i386/);
  rejects(buildElf({ bits: 64, machine: 3, entry: 0, segments: [] }).image, /ELF64 machine 3 is not x86-64/);
  rejects(buildElf({ bits: 32, entry: 0, segments: [] }).image, /no program headers/);
  rejects(patch(42, 16), /program header size 16 is too small/);
  rejects(patch(44, 0xff), /program headers .* lie outside the file/); // phnum 255
  rejects(patch(30, 0x40), /program headers .* lie outside the file/); // phoff huge
});

test('rejects bad PT_LOAD segments', () => {
  const b = buildElf({ bits: 32, entry: 0x100000, segments: [{ paddr: 0x100000, data: text }] });
  const bigFilesz = b.image.slice();
  new DataView(bigFilesz.buffer).setUint32(b.phoff + 16, 0x10000, true);
  new DataView(bigFilesz.buffer).setUint32(b.phoff + 20, 0x10000, true);
  rejects(bigFilesz, /segment 0: data \(0x[0-9a-f]+\+0x10000\) lies outside the file/);
  const memszSmall = b.image.slice();
  new DataView(memszSmall.buffer).setUint32(b.phoff + 20, 8, true);
  rejects(memszSmall, /segment 0: file size 0x40 exceeds memory size 0x8/);
  rejects(b.image.subarray(0, b.image.length - 16), /lies outside the file/);

  const b64 = buildElf({ bits: 64, entry: 0x100000, segments: [{ paddr: 0x100000, data: text }] });
  const hugeOffset = b64.image.slice();
  new DataView(hugeOffset.buffer).setBigUint64(b64.phoff + 8, 0xfffffffffffffff0n, true);
  rejects(hugeOffset, /lies outside the file/);
});

test('never throws anything but UserError on truncated or corrupted input', () => {
  const good = buildElf({
    bits: 64,
    entry: 0x100000,
    segments: [
      { paddr: 0x100000, data: text, memsz: 0x1000 },
      { paddr: 0x200000, data: text },
    ],
  }).image;
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let len = 0; len < good.length; len++) {
    try {
      parseElf(good.subarray(0, len));
    } catch (e) {
      assert.ok(e instanceof UserError, `length ${len}: ${String(e)}`);
    }
  }
  for (let i = 0; i < 2000; i++) {
    const c = good.slice();
    for (let k = 0; k < 3; k++) c[rand(200)] = rand(256);
    try {
      parseElf(c);
    } catch (e) {
      assert.ok(e instanceof UserError, `mutation ${i}: ${String(e)}`);
      assert.ok(!e.message.includes('\n'));
    }
  }
});
