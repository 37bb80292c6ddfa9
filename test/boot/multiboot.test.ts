import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadMultiboot } from '../../src/hw/boot/multiboot.js';
import { PhysMem } from '../../src/hw/mmu/physmem.js';
import { buildElf, multibootHeader, pattern } from './elf-builder.js';
import { cString, readMmap, readModules, u32 } from './mb-helpers.js';

const MiB = 1024 * 1024;
const noModules = { imageName: 'kernel.elf', args: '', modules: [] };

function freshMem(bytes = 8 * MiB): PhysMem {
  const mem = new PhysMem(bytes);
  mem.u8.fill(0xaa); // so that bss zeroing is visible
  return mem;
}

test('loads ELF32 segments by physical address and zeroes bss', () => {
  const text = pattern(300, 1);
  const data = pattern(40, 7);
  const { image } = buildElf({
    bits: 32,
    entry: 0x100004,
    segments: [
      { paddr: 0x100000, data: text },
      { paddr: 0x102000, vaddr: 0xc0102000, data, memsz: 0x1800 },
    ],
  });
  const mem = freshMem();
  const e = loadMultiboot(mem, image, noModules);
  assert.equal(e.entry, 0x100004);
  assert.equal(e.eax, 0x2badb002);
  assert.deepEqual(mem.readBytes(0x100000, 300), text);
  assert.deepEqual(mem.readBytes(0x102000, 40), data);
  assert.ok(
    mem.readBytes(0x102000 + 40, 0x1800 - 40).every((b) => b === 0),
    'bss zeroed',
  );
  assert.equal(mem.read8(0x102000 + 0x1800), 0xaa, 'nothing written past memsz');
  assert.equal(mem.read8(0x100000 + 300), 0xaa, 'nothing written past a segment without bss');
});

test('info block: flags, memory sizes, command line, boot loader name', () => {
  const { image } = buildElf({
    bits: 32,
    entry: 0x100000,
    segments: [{ paddr: 0x100000, data: pattern(16) }],
  });
  const mem = freshMem(8 * MiB);
  const e = loadMultiboot(mem, image, { imageName: 'guests/build/k.elf', args: 'a=1 b', modules: [] });
  assert.ok(
    e.ebx >= 0x1000 && e.ebx < 0x80000,
    `info at 0x${e.ebx.toString(16)} is in low memory, not page 0`,
  );
  const flags = u32(mem, e.ebx);
  for (const bit of [0, 2, 3, 6, 9]) assert.ok(flags & (1 << bit), `flag bit ${bit}`);
  assert.equal(flags & 0x2, 0, 'no boot device');
  assert.equal(u32(mem, e.ebx + 4), 639, 'mem_lower');
  assert.equal(u32(mem, e.ebx + 8), 7 * 1024, 'mem_upper: KiB from 1 MiB to the end of RAM');
  assert.equal(cString(mem, u32(mem, e.ebx + 16)), 'guests/build/k.elf a=1 b');
  assert.equal(u32(mem, e.ebx + 20), 0, 'no modules');
  assert.equal(cString(mem, u32(mem, e.ebx + 64)), 'turtles');
  for (const field of [16, 24, 48, 64])
    assert.ok(u32(mem, e.ebx + field) >= 0x1000, 'no structure in page 0');

  const mem2 = freshMem();
  const e2 = loadMultiboot(mem2, image, noModules);
  assert.equal(cString(mem2, u32(mem2, e2.ebx + 16)), 'kernel.elf', 'no trailing space without args');
});

test('memory map entries (size 20, 24-byte stride)', () => {
  const { image } = buildElf({
    bits: 32,
    entry: 0x100000,
    segments: [{ paddr: 0x100000, data: pattern(16) }],
  });
  const mem = freshMem(16 * MiB);
  const e = loadMultiboot(mem, image, noModules);
  assert.equal(u32(mem, e.ebx + 44), 4 * 24);
  assert.deepEqual(readMmap(mem, e.ebx), [
    { size: 20, base: 0, length: 0x9fc00, type: 1 },
    { size: 20, base: 0x9fc00, length: 0x400, type: 2 },
    { size: 20, base: 0xf0000, length: 0x10000, type: 2 },
    { size: 20, base: 0x100000, length: 15 * MiB, type: 1 },
  ]);
});

test('RAM above 3 GiB is reported at 4 GiB; mem_upper stops at the PCI hole', () => {
  const { image } = buildElf({
    bits: 64,
    entry: 0x100000,
    segments: [
      { paddr: 0x100000, data: pattern(16) },
      { paddr: 0x100000000, data: pattern(32, 3), memsz: 64 },
    ],
  });
  const mem = new PhysMem(3 * 1024 * MiB + 16 * MiB); // lazily committed by the host
  const e = loadMultiboot(mem, image, noModules);
  assert.equal(u32(mem, e.ebx + 8), (0xc0000000 - 0x100000) / 1024);
  const map = readMmap(mem, e.ebx);
  assert.deepEqual(map[3], { size: 20, base: 0x100000, length: 0xc0000000 - 0x100000, type: 1 });
  assert.deepEqual(map[4], { size: 20, base: 0x100000000, length: 16 * MiB, type: 1 });
  assert.deepEqual(mem.readBytes(0x100000000, 32), pattern(32, 3));
});

test('modules: page-aligned after the kernel, with their strings', () => {
  const { image } = buildElf({
    bits: 32,
    entry: 0x100000,
    segments: [{ paddr: 0x100000, data: pattern(100), memsz: 0x2345 }],
  });
  const m1 = pattern(5000, 9);
  const m2 = pattern(10, 4);
  const mem = freshMem();
  const e = loadMultiboot(mem, image, {
    imageName: 'k',
    args: '',
    modules: [
      { name: 'mod1.bin', data: m1, args: 'x y' },
      { name: 'mod2.bin', data: m2, args: '' },
    ],
  });
  const mods = readModules(mem, e.ebx);
  assert.deepEqual(mods, [
    { start: 0x103000, end: 0x103000 + 5000, string: 'mod1.bin x y' },
    { start: 0x105000, end: 0x105000 + 10, string: 'mod2.bin' },
  ]);
  assert.deepEqual(mem.readBytes(0x103000, 5000), m1);
  assert.deepEqual(mem.readBytes(0x105000, 10), m2);
});

test('writes a flat GDT with code 0x08 and data 0x10', () => {
  const { image } = buildElf({
    bits: 32,
    entry: 0x100000,
    segments: [{ paddr: 0x100000, data: pattern(16) }],
  });
  const mem = freshMem();
  const e = loadMultiboot(mem, image, noModules);
  assert.equal(e.gdtLimit, 23);
  assert.equal(e.codeSelector, 0x08);
  assert.equal(e.dataSelector, 0x10);
  assert.ok(e.gdtBase >= 0x1000 && e.gdtBase % 8 === 0);
  const gdt = mem.readBytes(e.gdtBase, 24);
  assert.deepEqual([...gdt.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...gdt.subarray(8, 16)], [0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0]);
  assert.deepEqual([...gdt.subarray(16, 24)], [0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0]);
});

test('ELF64: loads by p_paddr; a higher-half entry is translated through its segment', () => {
  const text = pattern(64);
  const { image } = buildElf({
    bits: 64,
    entry: 0xffffffff80100010n,
    segments: [{ paddr: 0x100000, vaddr: 0xffffffff80100000n, data: text }],
  });
  const mem = freshMem();
  const e = loadMultiboot(mem, image, noModules);
  assert.equal(e.entry, 0x100010);
  assert.deepEqual(mem.readBytes(0x100000, 64), text);
});

test('a.out kludge: the multiboot header gives the load addresses', () => {
  // Flat image: 16 bytes of code, then the header at file offset 16, then data.
  const body = new Uint8Array(0x100);
  body.set(pattern(16, 5), 0);
  body.set(multibootHeader({ aout: [0x200010, 0x200000, 0x200100, 0x200800, 0x200004] }), 16);
  const mem = freshMem();
  const e = loadMultiboot(mem, body, noModules);
  assert.equal(e.entry, 0x200004);
  assert.deepEqual(mem.readBytes(0x200000, 0x100), body);
  assert.ok(mem.readBytes(0x200100, 0x700).every((b) => b === 0));
  assert.equal(mem.read8(0x200800), 0xaa);
});
