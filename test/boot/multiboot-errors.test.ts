import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/common/index.js';
import { loadMultiboot, type MultibootOptions } from '../../src/hw/boot/multiboot.js';
import { PhysMem } from '../../src/hw/mmu/physmem.js';
import { buildElf, type ElfSpec, multibootHeader, pattern } from './elf-builder.js';

const MiB = 1024 * 1024;
const opts: MultibootOptions = { imageName: 'k.elf', args: '', modules: [] };

function rejects(
  image: Uint8Array,
  message: RegExp,
  o: MultibootOptions = opts,
  mem = new PhysMem(4 * MiB),
): void {
  assert.throws(
    () => loadMultiboot(mem, image, o),
    (e: unknown) => {
      assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
      assert.match(e.message, /^k\.elf: /, 'message names the image');
      assert.match(e.message, message);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    },
  );
}

const elf32 = (segments: ElfSpec['segments'], entry = 0x100000, extra: Partial<ElfSpec> = {}): Uint8Array =>
  buildElf({ bits: 32, entry, segments, ...extra }).image;
const small = [{ paddr: 0x100000, data: pattern(64) }];

test('no or bad multiboot header', () => {
  rejects(new Uint8Array(0), /not a multiboot image/);
  rejects(pattern(20000), /not a multiboot image/);
  rejects(elf32(small, 0x100000, { multiboot: false }), /not a multiboot image \(no multiboot header/);
  rejects(
    elf32(small, 0x100000, { multiboot: { checksum: 0 } }),
    /multiboot header at offset 0x[0-9a-f]+ has a bad checksum/,
  );
  // A header beyond the first 8192 bytes does not count.
  const late = new Uint8Array(9000);
  late.set(multibootHeader(), 8192);
  rejects(late, /not a multiboot image/);
  // Straddling the 8192-byte limit does not count either.
  const straddle = new Uint8Array(9000);
  straddle.set(multibootHeader(), 8184);
  rejects(straddle, /not a multiboot image/);
  // Misaligned headers are not headers.
  const misaligned = new Uint8Array(64);
  misaligned.set(multibootHeader(), 2);
  rejects(misaligned, /not a multiboot image/);
});

test('malformed ELF behind a valid multiboot header', () => {
  const b = buildElf({ bits: 32, entry: 0x100000, segments: small });
  rejects(b.image.subarray(0, b.image.length - 32), /segment 0: data .* lies outside the file/);
  const wrongMachine = b.image.slice();
  wrongMachine[18] = 40;
  rejects(wrongMachine, /ELF32 machine 40 is not i386/);
  const noMagic = b.image.slice();
  noMagic[1] = 0;
  rejects(noMagic, /not ELF and its header has no load addresses/);
  rejects(elf32([{ paddr: 0x100000, data: new Uint8Array(0), type: 4 }]), /no loadable segments/);
});

test('segments outside RAM, overlapping, or over reserved areas', () => {
  rejects(
    elf32([{ paddr: 0x300000, data: pattern(64), memsz: 2 * MiB }]),
    /kernel segment 0x300000-0x500000 lies outside RAM \(4 MiB; try a larger --mem\)/,
  );
  rejects(elf32([{ paddr: 0xfffff000, data: pattern(64) }]), /lies outside RAM/);
  rejects(
    elf32([
      { paddr: 0x100000, data: pattern(64), memsz: 0x2000 },
      { paddr: 0x101000, data: pattern(64) },
    ]),
    /kernel segments 0x100000-0x102000 and 0x101000-0x101040 overlap/,
  );
  rejects(
    elf32([{ paddr: 0x10000, data: pattern(64) }]),
    /overlaps the boot loader's structures at 0x10000-0x/,
  );
  rejects(elf32([{ paddr: 0x9f000, data: pattern(0x1000) }]), /overlaps the reserved area 0x9fc00-0x100000/);
  rejects(elf32([{ paddr: 0xb8000, data: pattern(16) }]), /overlaps the reserved area/);
  const b64 = buildElf({
    bits: 64,
    entry: 0x100000,
    segments: [{ paddr: 0x7ffffffffffff000n, data: pattern(16) }],
  });
  rejects(b64.image, /lies outside RAM/);
});

test('kernel below the loader structures but clear of them loads', () => {
  const mem = new PhysMem(4 * MiB);
  const e = loadMultiboot(mem, elf32([{ paddr: 0x8000, data: pattern(0x1000) }], 0x8000), opts);
  assert.equal(e.entry, 0x8000);
  assert.deepEqual(mem.readBytes(0x8000, 0x1000), pattern(0x1000));
});

test('entry points that a 32-bit entry cannot reach', () => {
  const b = buildElf({ bits: 64, entry: 0x100000000n, segments: small });
  rejects(b.image, /ELF64 entry point 0x100000000 is above 4 GiB/);
  const hh = buildElf({
    bits: 64,
    entry: 0xffffffff80000000n,
    segments: [{ paddr: 0x100000, vaddr: 0xffffffff80100000n, data: pattern(64) }],
  });
  rejects(hh.image, /entry point 0xffffffff80000000 is above 4 GiB/);
});

test('memory too small for modules; strings too long', () => {
  const mod = { name: 'big.bin', data: new Uint8Array(4 * MiB), args: '' };
  rejects(elf32(small), /module big.bin \(4194304 bytes at 0x101000\) does not fit below 0x400000/, {
    ...opts,
    modules: [mod],
  });
  rejects(elf32(small), /command line, module strings and boot structures need more than/, {
    ...opts,
    args: 'x'.repeat(0x80000),
  });
});

test('a.out kludge with inconsistent addresses', () => {
  const flat = (fields: [number, number, number, number, number], size = 0x100): Uint8Array => {
    const img = new Uint8Array(size);
    img.set(multibootHeader({ aout: fields }).subarray(0, size - 16), 16);
    return img;
  };
  rejects(flat([0x200000, 0x200010, 0, 0, 0x200000]), /header_addr 0x200000 is below load_addr 0x200010/);
  rejects(flat([0x200100, 0x200000, 0, 0, 0x200000]), /would start before the beginning of the file/);
  rejects(
    flat([0x200010, 0x200000, 0x201000, 0, 0x200000]),
    /load_end_addr 0x201000 lies beyond the end of the file/,
  );
  rejects(flat([0x200010, 0x200000, 0x200008, 0, 0x200000]), /load_end_addr 0x200008 is below header_addr/);
  rejects(
    flat([0x200010, 0x200000, 0, 0x200080, 0x200000]),
    /bss_end_addr 0x200080 is below the end of the loaded image/,
  );
  rejects(flat([0x200010, 0x200000, 0, 0, 0x200000], 40), /cut off before its address fields/);
  rejects(flat([0x3ff010, 0x3ff000, 0, 0x500000, 0x3ff000]), /lies outside RAM/);
});

test('truncations and corruptions of a kernel only ever give UserErrors', () => {
  const good = buildElf({
    bits: 32,
    entry: 0x100000,
    segments: [
      { paddr: 0x100000, data: pattern(200), memsz: 0x3000 },
      { paddr: 0x104000, data: pattern(50) },
    ],
  }).image;
  const mem = new PhysMem(4 * MiB);
  let seed = 99;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const attempt = (img: Uint8Array, what: string): void => {
    try {
      loadMultiboot(mem, img, opts);
    } catch (e) {
      assert.ok(e instanceof UserError, `${what}: ${String(e)}`);
    }
  };
  for (let len = 0; len <= good.length; len++) attempt(good.subarray(0, len), `length ${len}`);
  for (let i = 0; i < 3000; i++) {
    const c = good.slice();
    for (let k = 0; k < 2; k++) c[rand(140)] = rand(256);
    attempt(c, `mutation ${i}`);
  }
});
