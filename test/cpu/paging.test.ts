/** Page walker unit tests: every paging mode and page size, A/D bits, and #PF error codes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysMem } from '../../src/hw/mmu/physmem.js';
import { Tlb } from '../../src/hw/mmu/tlb.js';
import { PageWalker, ACC_READ, ACC_WRITE, ACC_EXEC } from '../../src/hw/mmu/paging.js';

const P = 1,
  W = 2,
  U = 4,
  A = 0x20,
  D = 0x40,
  PS = 0x80;
const PG = 0x80000000 | 1,
  WP = 1 << 16;

class PfError {
  constructor(
    readonly la: number,
    readonly ec: number,
  ) {}
}
const raise = (la: number, ec: number): never => {
  throw new PfError(la, ec);
};

function setup(): { mem: PhysMem; walker: PageWalker; tlb: Tlb } {
  const mem = new PhysMem(8 << 20);
  const tlb = new Tlb();
  return { mem, walker: new PageWalker(mem, tlb), tlb };
}
function w64(mem: PhysMem, pa: number, lo: number, hi = 0): void {
  mem.write32(pa, lo);
  mem.write32(pa + 4, hi);
}
function pf(fn: () => void): PfError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PfError) return e;
    throw e;
  }
  assert.fail('expected #PF');
}

test('4-level paging, 4 KiB page: translation, A and D bits', () => {
  const { mem, walker } = setup();
  const regs = { cr0: PG, cr3: 0x1000, cr4: 0x20, efer: 0x500 };
  w64(mem, 0x1000, 0x2000 | P | W | U);
  w64(mem, 0x2000, 0x3000 | P | W | U);
  w64(mem, 0x3000 + 8 * 1, 0x4000 | P | W | U); // PD[1]: 2 MiB..4 MiB
  w64(mem, 0x4000 + 8 * 5, 0x123000 | P | W | U); // PT[5]
  const la = 0x200000 + 5 * 4096 + 0x10;
  assert.equal(walker.walk(regs, la, ACC_READ, false, false, raise), 0x123010);
  assert.equal(mem.read32(0x4000 + 40) & (A | D), A, 'read sets A only');
  assert.equal(mem.read32(0x1000) & A, A, 'A set on the PML4E');
  walker.walk(regs, la, ACC_WRITE, false, false, raise);
  assert.equal(mem.read32(0x4000 + 40) & (A | D), A | D, 'write sets D');
});

test('4-level paging: 2 MiB and 1 GiB pages, and the high half', () => {
  const { mem, walker } = setup();
  const regs = { cr0: PG, cr3: 0x1000, cr4: 0x20, efer: 0x500 };
  w64(mem, 0x1000, 0x2000 | P | W);
  w64(mem, 0x2000, 0x3000 | P | W);
  w64(mem, 0x3000, 0x400000 | P | W | PS); // 2 MiB page at 0
  w64(mem, 0x2000 + 8, 0x40000000 | P | PS); // 1 GiB page at 1 GiB
  w64(mem, 0x1000 + 8 * 511, 0x2000 | P | W); // PML4[511] -> same PDPT
  assert.equal(walker.walk(regs, 0x12345, ACC_READ, false, false, raise), 0x412345);
  assert.equal(walker.walk(regs, 0x40000000 + 0x1234567, ACC_READ, false, false, raise), 0x41234567);
  // 0xffffff8000012345 = -2^39 + 0x12345
  assert.equal(walker.walk(regs, -(2 ** 39) + 0x12345, ACC_READ, false, false, raise), 0x412345);
});

test('#PF error codes: not present, protection, user, write, fetch, reserved bit', () => {
  const { mem, walker } = setup();
  const regs = { cr0: PG | WP, cr3: 0x1000, cr4: 0x20, efer: 0x500 | 0x800 };
  w64(mem, 0x1000, 0x2000 | P | W | U);
  w64(mem, 0x2000, 0x3000 | P | W | U);
  w64(mem, 0x3000, 0x4000 | P | W | U);
  w64(mem, 0x4000 + 8, 0x10000 | P); // page 1: supervisor, read-only
  w64(mem, 0x4000 + 16, 0x11000 | P | W | U, 0x80000000 | 0); // page 2: user, NX
  w64(mem, 0x4000 + 24, 0x12000 | P | U | ((1 << 7) * 0), 0x00100000); // page 3: reserved bit 52? (bit 52 is ignored)
  w64(mem, 0x4000 + 32, 0x13000 | P | U, 0x00000100); // page 4: physical bit 40 set: reserved (MAXPHYADDR 40)
  assert.equal(pf(() => walker.walk(regs, 0x0, ACC_READ, false, false, raise)).ec, 0, 'not present read');
  assert.equal(
    pf(() => walker.walk(regs, 0x0, ACC_WRITE, true, false, raise)).ec,
    2 | 4,
    'not present user write',
  );
  assert.equal(
    pf(() => walker.walk(regs, 0x1000, ACC_READ, true, false, raise)).ec,
    1 | 4,
    'user read of supervisor page',
  );
  assert.equal(
    pf(() => walker.walk(regs, 0x1000, ACC_WRITE, false, false, raise)).ec,
    1 | 2,
    'write to read-only with WP',
  );
  assert.equal(
    pf(() => walker.walk(regs, 0x2000, ACC_EXEC, true, false, raise)).ec,
    1 | 4 | 16,
    'fetch from NX page',
  );
  assert.equal(
    pf(() => walker.walk(regs, 0x4000, ACC_READ, true, false, raise)).ec,
    1 | 4 | 8,
    'reserved bit',
  );
  // Without WP, a supervisor write to a read-only page succeeds.
  walker.walk({ ...regs, cr0: PG }, 0x1000, ACC_WRITE, false, false, raise);
});

test('SMEP and SMAP', () => {
  const { mem, walker } = setup();
  const regs = { cr0: PG, cr3: 0x1000, cr4: 0x20 | (1 << 20) | (1 << 21), efer: 0x500 };
  w64(mem, 0x1000, 0x2000 | P | W | U);
  w64(mem, 0x2000, 0x3000 | P | W | U);
  w64(mem, 0x3000, 0x4000 | P | W | U);
  w64(mem, 0x4000, 0x10000 | P | W | U);
  assert.equal(pf(() => walker.walk(regs, 0x10, ACC_EXEC, false, false, raise)).ec, 1 | 16, 'SMEP');
  assert.equal(pf(() => walker.walk(regs, 0x10, ACC_READ, false, false, raise)).ec, 1, 'SMAP');
  assert.equal(walker.walk(regs, 0x10, ACC_READ, false, true, raise), 0x10010, 'SMAP with EFLAGS.AC');
});

test('32-bit paging with 4 MiB pages (PSE) and 4 KiB pages', () => {
  const { mem, walker } = setup();
  const regs = { cr0: PG, cr3: 0x1000, cr4: 0x10, efer: 0 };
  mem.write32(0x1000 + 4 * 1, 0x400000 | P | W | PS); // 4 MiB page: 0x400000.. -> 0x400000
  mem.write32(0x1000 + 4 * 2, 0x5000 | P | W); // PT at 0x5000 for 8 MiB..12 MiB
  mem.write32(0x5000 + 4 * 3, 0x7000 | P | W);
  assert.equal(walker.walk(regs, 0x400000 + 0x3456, ACC_READ, false, false, raise), 0x403456);
  assert.equal(walker.walk(regs, 0x800000 + 3 * 4096 + 8, ACC_WRITE, false, false, raise), 0x7008);
  assert.equal(mem.read32(0x5000 + 12) & (A | D), A | D);
});

test('PAE paging: PDPTE, 2 MiB page, and NX with EFER.NXE', () => {
  const { mem, walker } = setup();
  const regs = { cr0: PG, cr3: 0x1000, cr4: 0x20, efer: 0x800 };
  w64(mem, 0x1000 + 8 * 2, 0x2000 | P); // PDPTE[2]: 2 GiB..3 GiB
  w64(mem, 0x2000 + 8 * 1, 0x600000 | P | W | PS, 0x80000000 | 0); // 2 MiB NX page at 2 GiB + 2 MiB
  assert.equal(walker.walk(regs, 0x80200000 + 0x1234, ACC_READ, false, false, raise), 0x601234);
  assert.equal(pf(() => walker.walk(regs, 0x80200000, ACC_EXEC, false, false, raise)).ec, 1 | 16);
});

test('paging off: linear is physical and the TLB is filled', () => {
  const { walker, tlb } = setup();
  assert.equal(
    walker.walk({ cr0: 1, cr3: 0, cr4: 0, efer: 0 }, 0x12345, ACC_WRITE, false, false, raise),
    0x12345,
  );
  assert.equal(tlb.tag[0x12], 0x12);
});
