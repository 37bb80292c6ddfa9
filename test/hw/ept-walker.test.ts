/**
 * The hardware's EPT walker (src/hw/mmu/ept.ts), table-driven on large-page leaves. SDM 3C
 * §29.3.3.1 and Table 29-2/29-3 (formats of EPT entries): in an EPT PDPTE that maps a 1 GiB page
 * (bit 7 set) bits 29:12 are reserved, in a PDE that maps a 2 MiB page bits 20:12; a present entry
 * with a reserved bit set is an EPT misconfiguration, whatever the access. Bits 11:8 are ignored
 * (A/D flags without EPTP[6]), bit 6 is IPAT, and bits 30 and up (2 MiB: 21 and up) are the
 * address, read as an unsigned physical address below MAXPHYADDR (40).
 * Last, the same through a VM entry: a guest access through such a 1 GiB leaf is an EPT
 * misconfiguration exit (reason 49), and through a clean one it completes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine, VMCS_FIELD as F, EXIT_REASON as R } from '../../src/hw/index.js';
import { PhysMem } from '../../src/hw/mmu/physmem.js';
import {
  EptWalker,
  EPT_OK,
  EPT_VIOLATION,
  EPT_MISCONFIG,
  EPT_READ,
  EPT_WRITE,
  EPT_FETCH,
  type EptCaps,
} from '../../src/hw/mmu/ept.js';
import { simpleGuest, SG } from '../../src/hw/vmx/simple-guest.js';

const PML4 = 0x1000,
  PDPT = 0x2000,
  PD = 0x3000,
  PT = 0x4000;
const EPTP = PML4 | 6 | (3 << 3);
const RWX = 7,
  WB = 6 << 3,
  LARGE = 0x80;
const CAPS: EptCaps = { executeOnly: true, page1G: true, page2M: true, adFlags: false };

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;
function put(mem: PhysMem, pa: number, v: bigint): void {
  mem.write32(pa, Number(v & 0xffffffffn) | 0);
  mem.write32(pa + 4, Number(v >> 32n) | 0);
}

type Expect =
  { status: typeof EPT_OK; hpa: number } | { status: typeof EPT_MISCONFIG | typeof EPT_VIOLATION };
interface Row {
  name: string;
  /** 3: the PDPTE (1 GiB leaf), 2: the PDE (2 MiB leaf), 1: the PTE. */
  level: 1 | 2 | 3;
  entry: bigint;
  gpa: number;
  access?: number;
  caps?: Partial<EptCaps>;
  expect: Expect;
}

const G1 = 0x40000000; // the 1 GiB region walked (PDPT index 1)
const leaf1g = (frame: bigint, extra = 0n, rights = RWX): bigint =>
  frame | BigInt(rights | WB | LARGE) | extra;
const leaf2m = (frame: bigint, extra = 0n): bigint => frame | BigInt(RWX | WB | LARGE) | extra;

const ROWS: Row[] = [
  // ---- 1 GiB leaves: bits 29:12 reserved (each one alone), the rest as the SDM says
  {
    name: '1 GiB leaf, no reserved bit: translates',
    level: 3,
    entry: leaf1g(0x40000000n),
    gpa: G1 + 0x12345678,
    expect: { status: EPT_OK, hpa: 0x40000000 + 0x12345678 },
  },
  ...Array.from({ length: 18 }, (_, k): Row => ({
    name: `1 GiB leaf with reserved bit ${12 + k} set: misconfiguration`,
    level: 3,
    entry: leaf1g(0x40000000n, 1n << BigInt(12 + k)),
    gpa: G1 + 0x1000,
    expect: { status: EPT_MISCONFIG },
  })),
  {
    name: '1 GiB leaf with every bit of 29:12 set: misconfiguration',
    level: 3,
    entry: leaf1g(0x40000000n, 0x3ffff000n),
    gpa: G1,
    expect: { status: EPT_MISCONFIG },
  },
  {
    name: '1 GiB leaf with bit 12 set, fetch access: misconfiguration',
    level: 3,
    entry: leaf1g(0x40000000n, 0x1000n),
    gpa: G1 + 0x2000,
    access: EPT_FETCH,
    expect: { status: EPT_MISCONFIG },
  },
  {
    name: '1 GiB read-only leaf with bit 12 set, write: misconfiguration, not violation',
    level: 3,
    entry: leaf1g(0x40000000n, 0x1000n, 1),
    gpa: G1,
    access: EPT_WRITE,
    expect: { status: EPT_MISCONFIG },
  },
  {
    name: '1 GiB leaf, ignored bits 11:8 and IPAT (bit 6) set: translates',
    level: 3,
    entry: leaf1g(0x40000000n, 0xf40n),
    gpa: G1 + 0x3ffffff8,
    expect: { status: EPT_OK, hpa: 0x7ffffff8 },
  },
  {
    name: '1 GiB leaf with address bits 31:30 set (frame 0xc0000000): an unsigned host address',
    level: 3,
    entry: leaf1g(0xc0000000n),
    gpa: G1 + 0x1234,
    expect: { status: EPT_OK, hpa: 0xc0001234 },
  },
  {
    name: '1 GiB leaf above 4 GiB (address bit 32)',
    level: 3,
    entry: leaf1g(0x140000000n),
    gpa: G1 + 0x10,
    expect: { status: EPT_OK, hpa: 0x140000010 },
  },
  {
    name: '1 GiB leaf with address bit 40 (beyond MAXPHYADDR 40): misconfiguration',
    level: 3,
    entry: leaf1g(0x40000000n, 1n << 40n),
    gpa: G1,
    expect: { status: EPT_MISCONFIG },
  },
  {
    name: '1 GiB leaf without 1 GiB-page support: misconfiguration',
    level: 3,
    entry: leaf1g(0x40000000n),
    gpa: G1,
    caps: { page1G: false },
    expect: { status: EPT_MISCONFIG },
  },
  {
    name: '1 GiB read-only leaf, write: violation with rights R',
    level: 3,
    entry: leaf1g(0x40000000n, 0n, 1),
    gpa: G1,
    access: EPT_WRITE,
    expect: { status: EPT_VIOLATION },
  },
  // ---- 2 MiB leaves: bits 20:12 reserved, bit 21 is the address
  {
    name: '2 MiB leaf with reserved bit 12 set: misconfiguration',
    level: 2,
    entry: leaf2m(0x200000n, 0x1000n),
    gpa: 0x1000,
    expect: { status: EPT_MISCONFIG },
  },
  {
    name: '2 MiB leaf with reserved bit 20 set: misconfiguration',
    level: 2,
    entry: leaf2m(0x200000n, 0x100000n),
    gpa: 0x1000,
    expect: { status: EPT_MISCONFIG },
  },
  {
    name: '2 MiB leaf, frame with bits 21 and 31 set: translates, unsigned',
    level: 2,
    entry: leaf2m(0x80200000n),
    gpa: 0x1ffff8,
    expect: { status: EPT_OK, hpa: 0x803ffff8 },
  },
  // ---- 4 KiB leaf: bit 12 is an address bit there
  {
    name: '4 KiB leaf with frame bit 12 (and 31) set: translates',
    level: 1,
    entry: 0x80001000n | BigInt(RWX | WB),
    gpa: 0x10,
    expect: { status: EPT_OK, hpa: 0x80001010 },
  },
];

/** EPT for `row`: PML4[all] → PDPT; for levels 2 and 1, PDPT[gpa] → PD, PD[gpa] → PT. */
function walkRow(row: Row) {
  const mem = new PhysMem(4 << 20);
  const gpa = row.gpa;
  const idx = (level: number): number => Math.floor(gpa / 2 ** (12 + 9 * (level - 1))) % 512;
  put(mem, PML4 + 8 * idx(4), BigInt(PDPT | RWX));
  if (row.level === 3) put(mem, PDPT + 8 * idx(3), row.entry);
  else {
    put(mem, PDPT + 8 * idx(3), BigInt(PD | RWX));
    if (row.level === 2) put(mem, PD + 8 * idx(2), row.entry);
    else {
      put(mem, PD + 8 * idx(2), BigInt(PT | RWX));
      put(mem, PT + 8 * idx(1), row.entry);
    }
  }
  const w = new EptWalker(mem, { ...CAPS, ...row.caps });
  const r = w.walk(EPTP, gpa, row.access ?? EPT_READ);
  return { status: r.status, hpa: r.hpa, qual: r.qual };
}

const STATUS = ['ok', 'violation', 'misconfig'];
for (const row of ROWS) {
  test(`EptWalker: ${row.name}`, () => {
    const r = walkRow(row);
    assert.equal(STATUS[r.status], STATUS[row.expect.status], `entry ${hex(row.entry)}`);
    if (row.expect.status === EPT_OK) assert.equal(hex(r.hpa), hex(row.expect.hpa));
    if (row.expect.status === EPT_MISCONFIG) assert.equal(r.qual, 0);
    if (row.expect.status === EPT_VIOLATION) assert.equal(r.qual, (row.access ?? EPT_READ) | (1 << 3));
  });
}

// ---- the same through a VM entry: simpleGuest's EPT gets a 1 GiB leaf for guest-physical 1-2 GiB
for (const [name, extra, misconfig] of [
  ['bit 12 set: EPT misconfiguration exit', 0x1000n, true],
  ['bit 29 set: EPT misconfiguration exit', 0x20000000n, true],
  ['no reserved bit: the load completes (HLT exit)', 0n, false],
] as const) {
  test(`VM entry under EPT, a guest load through a 1 GiB EPT leaf with ${name}`, () => {
    // mov rbx, 0x40000010; mov rax, [rbx]; hlt
    const code = [0x48, 0xbb, 0x10, 0, 0, 0x40, 0, 0, 0, 0, 0x48, 0x8b, 0x03, 0xf4];
    const m = new Machine({ memMiB: 64, serial: () => {} });
    const h = simpleGuest(m, new Uint8Array(code));
    // Guest-physical 0x40000000 → host-physical 0 (1 GiB page, RWX, WB).
    put(m.mem, SG.EPT_PDPT + 8, leaf1g(0n, extra));
    m.mem.write32(0x10, 0x5a5a1234);
    const e = h.vmlaunch(1e6);
    assert.equal(e.kind, 'exit');
    if (e.kind !== 'exit') return;
    if (misconfig) {
      assert.equal(e.reason, R.EPT_MISCONFIG);
      assert.equal(hex(e.guestPhysicalAddress), hex(0x40000010));
      assert.equal(h.vmread(F.GUEST_RIP), BigInt(SG.CODE + 10), 'the load did not complete');
    } else {
      assert.equal(e.reason, R.HLT);
      assert.equal(h.getReg(0), 0x5a5a1234n);
    }
  });
}
