/**
 * ept02 construction (src/l0/mmu/ept02.ts), table-driven: each row writes an ept12 into L1
 * memory, reports the EPT violation the hardware gave L0 for an L2 access under ept02, and says
 * what must follow (SDM 3C §28.3 / §29.3 EPT, Table 28-7):
 *  - ept12 maps it and L1's RAM backs it: an ept02 entry such that the hardware, walking ept02,
 *    gives L2 exactly ept12 ∘ ept01 — the same host byte, rights = ept12's (AND along the walk)
 *    ∩ ept01's (RWX for RAM), a valid memory type;
 *  - ept12 does not allow it: an EPT violation for L1 with the access, ept12's rights and the
 *    hardware's bits 7, 8, 12;
 *  - ept12 is misconfigured on the walk: an EPT misconfiguration for L1;
 *  - ept12 maps it outside L1's RAM: L0's (L1's MMIO), no ept02 entry.
 * Every row also checks that L0 read nothing but L1's RAM and its own ept02 pages, wrote nothing
 * but ept02 pages, and that no ept02 leaf points outside L1's RAM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VMCS_FIELD as F, VMX_BITS as B } from '../../../src/hw/index.js';
import { EptWalker, EPT_OK, EPT_VIOLATION } from '../../../src/hw/mmu/ept.js';
import {
  ept02Pointer,
  handleEpt02Violation,
  invalidateEpt02,
  type Ept02Outcome,
} from '../../../src/l0/mmu/ept02.js';
import { prepareVmcs02 } from '../../../src/l0/nested/vmcs02.js';
import { GUEST_RAM_HPA } from '../../../src/l0/index.js';
import {
  nestedFixture,
  baseVmcs12,
  set12,
  exitRecord,
  l1Write64,
  l1Read64,
  hpaOf,
  eptpFor,
  rd,
  hex,
  L1,
  L1_BYTES,
  type Fx,
} from './fixture.js';

const R_ = 1,
  W_ = 2,
  X_ = 4;
const RWX = 7;
const WB = 6,
  UC = 0;
/** Hardware qualification bits for an access through a linear address (bits 7 and 8). */
const LIN = 0x180n;
const KIB4 = 0x1000,
  MIB2 = 0x200000;

/** ept12 tables in L1 memory: a PML4 at `root`, lower tables allocated after it. */
class Ept12 {
  private next: number;
  constructor(
    readonly fx: Fx,
    readonly root: number = L1.EPT12,
  ) {
    this.next = root + KIB4;
  }
  get eptp(): number {
    return eptpFor(this.root);
  }
  /** Write the level-`level` entry for `gpa2` (4 = PML4E), creating the tables above it with `upper` rights. */
  entry(level: number, gpa2: number, value: bigint, upper: readonly number[] = [RWX, RWX, RWX]): void {
    let table = this.root;
    for (let lv = 4; lv > level; lv--) {
      const at = table + 8 * (Math.floor(gpa2 / 2 ** (12 + 9 * (lv - 1))) % 512);
      let e = l1Read64(this.fx, at);
      if ((e & 7n) === 0n) {
        const t = this.next;
        this.next += KIB4;
        this.fx.h.mem.u8.fill(0, hpaOf(this.fx, t), hpaOf(this.fx, t) + KIB4);
        e = BigInt(t) | BigInt(upper[4 - lv]);
        l1Write64(this.fx, at, e);
      }
      table = Number(e & 0xffffffff000n);
    }
    l1Write64(this.fx, table + 8 * (Math.floor(gpa2 / 2 ** (12 + 9 * (level - 1))) % 512), value);
  }
  map4k(gpa2: number, l1: number, rights: number, mt = WB, extra = 0n, upper?: number[]): void {
    this.entry(1, gpa2, BigInt(l1) | BigInt(rights) | BigInt(mt << 3) | extra, upper);
  }
  map2m(gpa2: number, l1: number, rights: number, mt = WB, extra = 0n): void {
    this.entry(2, gpa2, BigInt(l1) | BigInt(rights) | BigInt(mt << 3) | 0x80n | extra);
  }
  map1g(gpa2: number, l1: number, rights: number, mt = WB, extra = 0n): void {
    this.entry(3, gpa2, BigInt(l1) | BigInt(rights) | BigInt(mt << 3) | 0x80n | extra);
  }
}

type Expected =
  | { kind: 'fixed'; l1: number; rights: number }
  | { kind: 'violation'; q: bigint }
  | { kind: 'misconfig' }
  | { kind: 'l1-mmio'; l1: number };

interface Row {
  name: string;
  ept12: (e: Ept12) => void;
  /** L2 guest-physical address of the access. */
  gpa: number;
  /** The hardware's exit qualification for the violation under ept02. */
  hwq: bigint;
  expect: Expected;
  /** Where the ept12 root is (default L1.EPT12; outside L1 RAM for the hostile rows). */
  eptp?: number;
}

const D = L1.DATA; // 0x900000
const ROWS: Row[] = [
  // ---- ept12 maps it: ept02 = ept12 ∘ ept01, rights ∩
  {
    name: '4 KiB RWX page, read',
    ept12: (e) => e.map4k(0x1000, D, RWX),
    gpa: 0x1234,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D + 0x234, rights: RWX },
  },
  {
    name: '4 KiB read-only page, read',
    ept12: (e) => e.map4k(0x5000, D + 0x3000, R_),
    gpa: 0x5ff8,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D + 0x3ff8, rights: R_ },
  },
  {
    name: '4 KiB read+execute page, instruction fetch',
    ept12: (e) => e.map4k(0x7000, D + 0x1000, R_ | X_),
    gpa: 0x7010,
    hwq: BigInt(X_) | LIN,
    expect: { kind: 'fixed', l1: D + 0x1010, rights: R_ | X_ },
  },
  {
    name: 'execute-only page (IA32_VMX_EPT_VPID_CAP bit 0 offered), fetch',
    ept12: (e) => e.map4k(0x8000, D + 0x2000, X_),
    gpa: 0x8000,
    hwq: BigInt(X_) | LIN,
    expect: { kind: 'fixed', l1: D + 0x2000, rights: X_ },
  },
  {
    name: 'rights are ANDed along the walk: RX PDPTE above an RWX page',
    ept12: (e) => e.map4k(0x40001000, D, RWX, WB, 0n, [RWX, R_ | X_, RWX]),
    gpa: 0x40001008,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D + 8, rights: R_ | X_ },
  },
  {
    name: 'rights are ANDed along the walk: R PML4E, RW PDE, RWX page',
    ept12: (e) => e.map4k(0x3000, D + 0x5000, RWX, WB, 0n, [R_, RWX, R_ | W_]),
    gpa: 0x3000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D + 0x5000, rights: R_ },
  },
  {
    name: '2 MiB ept12 page: split into a 4 KiB ept02 entry at the right offset',
    ept12: (e) => e.map2m(0x40000000, 0x800000, RWX),
    gpa: 0x40123456,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'fixed', l1: 0x923456, rights: RWX },
  },
  {
    name: '1 GiB ept12 page over ept01s 2 MiB pages: one 4 KiB ept02 entry',
    ept12: (e) => e.map1g(0x80000000, 0, R_ | W_),
    gpa: 0x80a01234,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: 0xa01234, rights: R_ | W_ },
  },
  {
    name: '1 GiB ept12 page, last RAM page of L1',
    ept12: (e) => e.map1g(0x1c0000000, 0, RWX),
    gpa: 0x1c0000000 + L1_BYTES - 8,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: L1_BYTES - 8, rights: RWX },
  },
  {
    name: 'an L2 address above 4 GiB (PML4 index 1)',
    ept12: (e) => e.map4k(0x8000001000, D + 0x7000, R_ | W_),
    gpa: 0x8000001ffc,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'fixed', l1: D + 0x7ffc, rights: R_ | W_ },
  },
  {
    name: 'memory type UC in ept12: a valid mapping (not a misconfiguration)',
    ept12: (e) => e.map4k(0x9000, D, RWX, UC),
    gpa: 0x9000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D, rights: RWX },
  },
  ...[1, 4, 5].map((mt): Row => ({
    name: `memory type ${['UC', 'WC', '', '', 'WT', 'WP', 'WB'][mt]} (${mt}) in ept12: valid`,
    ept12: (e) => e.map4k(0xa000, D, RWX, mt),
    gpa: 0xa000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D, rights: RWX },
  })),
  {
    name: 'ignored bits of a PTE (6 IPAT, 7, 8-11) and 63:52 do not matter',
    ept12: (e) => e.map4k(0xb000, D, RWX, WB, 0xfc0n | (0x7ffn << 52n)),
    gpa: 0xb000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D, rights: RWX },
  },
  {
    name: 'accessed flag (bit 8) in upper entries is ignored without A/D enabled',
    ept12: (e) => {
      e.map4k(0xc000, D, RWX);
      l1Write64(e.fx, e.root, l1Read64(e.fx, e.root) | 0x100n);
    },
    gpa: 0xc000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D, rights: RWX },
  },
  {
    name: 'a self-referencing PML4E: the walk ends after 4 levels, mapping the PML4 page itself',
    ept12: (e) => e.entry(4, 0, BigInt(e.root) | BigInt(RWX)),
    gpa: 0x10,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: L1.EPT12 + 0x10, rights: RWX },
  },
  // ---- ept12 does not allow it: an EPT violation for L1 (Table 28-7)
  {
    name: 'not present at the PML4',
    ept12: () => {},
    gpa: 0x1000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'violation', q: BigInt(R_) | LIN },
  },
  {
    name: 'not present at the PTE (other PTEs present)',
    ept12: (e) => e.map4k(0x2000, D, RWX),
    gpa: 0x3000,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'violation', q: BigInt(W_) | LIN },
  },
  {
    name: 'not present at the PDPTE (PML4E RWX): rights 0',
    ept12: (e) => e.map4k(0x40000000, D, RWX),
    gpa: 0x1000,
    hwq: BigInt(X_) | LIN,
    expect: { kind: 'violation', q: BigInt(X_) | LIN },
  },
  {
    name: 'write to a read-only page: rights R in bits 5:3',
    ept12: (e) => e.map4k(0x4000, D, R_),
    gpa: 0x4010,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'violation', q: BigInt(W_ | (R_ << 3)) | LIN },
  },
  {
    name: 'fetch from an RW page',
    ept12: (e) => e.map4k(0x4000, D, R_ | W_),
    gpa: 0x4000,
    hwq: BigInt(X_) | LIN,
    expect: { kind: 'violation', q: BigInt(X_ | ((R_ | W_) << 3)) | LIN },
  },
  {
    name: 'read of an execute-only page',
    ept12: (e) => e.map4k(0x4000, D, X_),
    gpa: 0x4000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'violation', q: BigInt(R_ | (X_ << 3)) | LIN },
  },
  {
    name: 'write under a read-only PDE: rights ANDed along the walk',
    ept12: (e) => e.map4k(0x6000, D, RWX, WB, 0n, [RWX, RWX, R_ | X_]),
    gpa: 0x6000,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'violation', q: BigInt(W_ | ((R_ | X_) << 3)) | LIN },
  },
  {
    name: 'read+write access (a locked RMW) on a read-only page',
    ept12: (e) => e.map4k(0x4000, D, R_),
    gpa: 0x4000,
    hwq: BigInt(R_ | W_) | LIN,
    expect: { kind: 'violation', q: BigInt(R_ | W_ | (R_ << 3)) | LIN },
  },
  {
    name: 'write to a read-only 2 MiB page',
    ept12: (e) => e.map2m(0x200000, 0x800000, R_ | X_),
    gpa: 0x3ff000,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'violation', q: BigInt(W_ | ((R_ | X_) << 3)) | LIN },
  },
  {
    name: 'the hardwares bits 5:3 (ept02s rights) are replaced by ept12s',
    ept12: (e) => e.map4k(0x4000, D, R_ | X_),
    gpa: 0x4000,
    hwq: BigInt(W_ | (RWX << 3)) | LIN,
    expect: { kind: 'violation', q: BigInt(W_ | ((R_ | X_) << 3)) | LIN },
  },
  {
    name: 'NMI unblocking due to IRET (bit 12) is kept',
    ept12: () => {},
    gpa: 0x1000,
    hwq: BigInt(R_) | LIN | 0x1000n,
    expect: { kind: 'violation', q: BigInt(R_) | LIN | 0x1000n },
  },
  {
    name: 'an access to a guest paging structure (bit 7 set, bit 8 clear) is kept as such',
    ept12: () => {},
    gpa: 0x51000,
    hwq: BigInt(R_ | W_) | 0x80n,
    expect: { kind: 'violation', q: BigInt(R_ | W_) | 0x80n },
  },
  {
    name: 'no guest linear address (bits 7, 8 clear)',
    ept12: (e) => e.map4k(0x4000, D, R_),
    gpa: 0x4000,
    hwq: BigInt(W_),
    expect: { kind: 'violation', q: BigInt(W_ | (R_ << 3)) },
  },
  {
    name: 'a not-present entry with reserved bits set is not present, not misconfigured',
    ept12: (e) => e.entry(1, 0xd000, BigInt(D) | 0xf8n),
    gpa: 0xd000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'violation', q: BigInt(R_) | LIN },
  },
  {
    name: 'a not-present PDPTE hides a misconfigured entry below the address it would map',
    ept12: (e) => {
      e.map4k(0x40000000, D, W_); // misconfigured, in another 1 GiB region
      e.entry(3, 0x0, 0x38n);
    },
    gpa: 0x1000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'violation', q: BigInt(R_) | LIN },
  },
  // ---- ept12 misconfigured on the walk (SDM 3C §29.3.3.1): an EPT misconfiguration for L1
  ...(
    [
      ['write-only leaf', (e: Ept12) => e.map4k(0x1000, D, W_)],
      ['write+execute leaf without read', (e: Ept12) => e.map4k(0x1000, D, W_ | X_)],
      ['write-only PML4E', (e: Ept12) => e.map4k(0x1000, D, RWX, WB, 0n, [W_, RWX, RWX])],
      ['write-only PDE', (e: Ept12) => e.map4k(0x1000, D, RWX, WB, 0n, [RWX, RWX, W_])],
      ['PML4E reserved bit 3', (e: Ept12) => e.entry(4, 0x1000, BigInt(L1.EPT12 + 0x10000) | 7n | 0x8n)],
      [
        'PML4E bit 7 (no large pages at level 4)',
        (e: Ept12) => e.entry(4, 0x1000, BigInt(L1.EPT12 + 0x10000) | 7n | 0x80n),
      ],
      [
        'non-leaf PDPTE reserved bit 5',
        (e: Ept12) => e.entry(3, 0x1000, BigInt(L1.EPT12 + 0x10000) | 7n | 0x20n),
      ],
      [
        'non-leaf PDE reserved bit 6',
        (e: Ept12) => e.entry(2, 0x1000, BigInt(L1.EPT12 + 0x10000) | 7n | 0x40n),
      ],
      ['leaf memory type 2', (e: Ept12) => e.map4k(0x1000, D, RWX, 2)],
      ['leaf memory type 3', (e: Ept12) => e.map4k(0x1000, D, RWX, 3)],
      ['leaf memory type 7', (e: Ept12) => e.map4k(0x1000, D, RWX, 7)],
      ['2 MiB page memory type 7', (e: Ept12) => e.map2m(0x0, 0x800000, RWX, 7)],
      ['2 MiB page reserved bit 12', (e: Ept12) => e.map2m(0x0, 0x800000, RWX, WB, 0x1000n)],
      ['2 MiB page reserved bit 20', (e: Ept12) => e.map2m(0x0, 0x800000, RWX, WB, 0x100000n)],
      ['1 GiB page reserved bit 12', (e: Ept12) => e.map1g(0x0, 0, RWX, WB, 0x1000n)],
      ['1 GiB page reserved bit 29', (e: Ept12) => e.map1g(0x0, 0, RWX, WB, 0x20000000n)],
      ['PTE address bit 40 (MAXPHYADDR is 40)', (e: Ept12) => e.map4k(0x1000, D, RWX, WB, 1n << 40n)],
      ['PDE address bit 51', (e: Ept12) => e.entry(2, 0x1000, BigInt(L1.EPT12 + 0x10000) | 7n | (1n << 51n))],
      [
        'a misconfigured PTE below an upper entry that denies the access (misconfiguration wins)',
        (e: Ept12) => e.map4k(0x1000, D, W_, WB, 0n, [R_, RWX, RWX]),
      ],
    ] as const
  ).map(([name, ept12]): Row => ({
    name,
    ept12,
    gpa: 0x1000,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'misconfig' },
  })),
  // ---- hostile pointers: L0 reads L1 memory only; unclaimed addresses read as all ones
  {
    name: 'EPTP12 outside L1 RAM: all-ones entries (reserved bits set) are a misconfiguration',
    ept12: () => {},
    eptp: eptpFor(0x40000000),
    gpa: 0x1000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'misconfig' },
  },
  {
    name: 'EPTP12 naming the host-physical address right after L1s RAM (not an L1 address)',
    ept12: () => {},
    eptp: eptpFor(GUEST_RAM_HPA + L1_BYTES),
    gpa: 0x1000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'misconfig' },
  },
  {
    name: 'PDPTE pointing outside L1 RAM',
    ept12: (e) => e.entry(3, 0x1000, BigInt(0x7fff000000) | 7n),
    gpa: 0x1000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'misconfig' },
  },
  {
    name: 'PDE pointing at the last page of L1 RAM (inside)',
    ept12: (e) => {
      e.entry(2, 0x1000, BigInt(L1_BYTES - KIB4) | 7n);
      l1Write64(e.fx, L1_BYTES - KIB4 + 8, BigInt(D) | 3n | BigInt(WB << 3));
    },
    gpa: 0x1000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'fixed', l1: D, rights: R_ | W_ },
  },
  // ---- ept12 maps it outside L1's RAM: L0's (ept01 does not map it), no ept02 entry
  {
    name: '1 GiB ept12 page: an L1 address beyond L1 RAM is L0s',
    ept12: (e) => e.map1g(0x80000000, 0, RWX),
    gpa: 0x80000000 + L1_BYTES + 0x1230,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'l1-mmio', l1: L1_BYTES + 0x1230 },
  },
  {
    name: 'PTE mapping the L1 page right after its RAM',
    ept12: (e) => e.map4k(0x1000, L1_BYTES, R_ | W_, UC),
    gpa: 0x1030,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'l1-mmio', l1: L1_BYTES + 0x30 },
  },
  {
    name: 'PTE mapping an L1 address at 2^39 (below MAXPHYADDR, not RAM)',
    ept12: (e) => e.map4k(0x1000, 2 ** 39, RWX),
    gpa: 0x1000,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'l1-mmio', l1: 2 ** 39 },
  },
  // ---- frames with bit 31 set: an EPT entry's bits 51:12 are an unsigned physical address
  // (SDM 3C Table 29-6), so the L1 address is frame + the offset in the page, never negative
  {
    name: 'PTE 0x1_8090_0037 (frame bits 32 and 31 set): L1 address 0x1_8090_0234',
    ept12: (e) => e.entry(1, 0x1234, 0x180900037n),
    gpa: 0x1234,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'l1-mmio', l1: 0x180900234 },
  },
  {
    name: 'PTE 0xfee00007 (L1s local-APIC page, UC): L1 address 0xfee00010',
    ept12: (e) => e.entry(1, 0x2010, 0xfee00007n),
    gpa: 0x2010,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'l1-mmio', l1: 0xfee00010 },
  },
  {
    name: 'PTE 0x80000037 (frame is bit 31 alone): L1 address 0x80000ff8',
    ept12: (e) => e.entry(1, 0x3ff8, 0x80000037n),
    gpa: 0x3ff8,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'l1-mmio', l1: 0x80000ff8 },
  },
  {
    name: '2 MiB ept12 page at L1 0x80200000: offset within the page kept',
    ept12: (e) => e.map2m(0x400000, 0x80200000, RWX),
    gpa: 0x512345,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'l1-mmio', l1: 0x80312345 },
  },
  {
    name: '1 GiB ept12 page at L1 0x80000000',
    ept12: (e) => e.map1g(0x40000000, 0x80000000, R_ | W_),
    gpa: 0x40001234,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'l1-mmio', l1: 0x80001234 },
  },
  {
    name: '1 GiB ept12 page at L1 0xc0000000 (bits 31:30)',
    ept12: (e) => e.map1g(0x40000000, 0xc0000000, RWX),
    gpa: 0x7fee0010,
    hwq: BigInt(R_) | LIN,
    expect: { kind: 'l1-mmio', l1: 0xffee0010 },
  },
  {
    name: 'bit-31 frame, write to a read-only page: still L1s violation (rights R)',
    ept12: (e) => e.entry(1, 0x2010, 0xfee00001n),
    gpa: 0x2010,
    hwq: BigInt(W_) | LIN,
    expect: { kind: 'violation', q: BigInt(W_ | (R_ << 3)) | LIN },
  },
];

/** The hardware's own EPT walker over host memory, for checking what ept02 gives L2. */
const walker = (fx: Fx): EptWalker =>
  new EptWalker(fx.h.mem, { executeOnly: true, page1G: true, page2M: true, adFlags: false });

/** Every leaf of an ept02 (host-physical tables): [gpa2, entry bits 11:0, host-physical frame]. */
function ept02Leaves(fx: Fx, root: number): [number, number, number][] {
  const mem = fx.h.mem;
  const out: [number, number, number][] = [];
  const walk = (table: number, level: number, base: number): void => {
    for (let i = 0; i < 512; i++) {
      const lo = mem.read32(table + 8 * i) >>> 0,
        hi = mem.read32(table + 8 * i + 4) >>> 0;
      if ((lo & 7) === 0) continue;
      const gpa = base + i * 2 ** (12 + 9 * (level - 1));
      const frame = (hi & 0xfffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
      if (level === 1 || lo & 0x80) out.push([gpa, lo & 0xfff, frame]);
      else walk(frame, level - 1, gpa);
    }
  };
  walk(root, 4, 0);
  return out;
}

interface Spy {
  reads: number[];
  writes: number[];
  stop(): void;
}
/** Record every physical address L0 reads or writes (PhysMem's accessors). */
function spyMemory(fx: Fx): Spy {
  const mem = fx.h.mem;
  const reads: number[] = [],
    writes: number[] = [];
  const saved = {
    read8: mem.read8,
    read16: mem.read16,
    read32: mem.read32,
    write8: mem.write8,
    write16: mem.write16,
    write32: mem.write32,
  };
  mem.read8 = (pa) => (reads.push(pa), saved.read8.call(mem, pa));
  mem.read16 = (pa) => (reads.push(pa), saved.read16.call(mem, pa));
  mem.read32 = (pa) => (reads.push(pa), saved.read32.call(mem, pa));
  mem.write8 = (pa, v) => (writes.push(pa), saved.write8.call(mem, pa, v));
  mem.write16 = (pa, v) => (writes.push(pa), saved.write16.call(mem, pa, v));
  mem.write32 = (pa, v) => (writes.push(pa), saved.write32.call(mem, pa, v));
  return {
    reads,
    writes,
    stop: () => Object.assign(mem, saved),
  };
}

const inL1Ram = (fx: Fx, hpa: number): boolean => hpa >= fx.vm.ramHpa && hpa < fx.vm.ramHpa + L1_BYTES;

function violationAt(gpa: number, q: bigint, gla = 0n) {
  return exitRecord(B.R.EPT_VIOLATION, {
    qualification: q,
    guestPhysicalAddress: BigInt(gpa),
    guestLinearAddress: gla,
  });
}

for (const row of ROWS) {
  test(`ept02: ${row.name} → ${row.expect.kind}`, () => {
    const fx = nestedFixture();
    const e = new Ept12(fx);
    row.ept12(e);
    const eptp12 = row.eptp ?? e.eptp;
    const root = Number(BigInt(ept02Pointer(fx.v, fx.n, eptp12)) & ~0xfffn);
    const spy = spyMemory(fx);
    let out: Ept02Outcome;
    try {
      out = handleEpt02Violation(fx.v, fx.n, violationAt(row.gpa, row.hwq), eptp12);
    } finally {
      spy.stop();
    }
    const ept02 = fx.n.ept02.get(Math.floor(eptp12 / KIB4) * KIB4)!;
    assert.equal(ept02.root, root, 'the ept02 of this EPTP');
    // L0 touched L1's RAM and its own ept02 pages only.
    const own = new Set(ept02.pages);
    for (const pa of spy.reads)
      assert.ok(inL1Ram(fx, pa) || own.has(pa - (pa % KIB4)), `read of host-physical ${hex(pa)}`);
    for (const pa of spy.writes) assert.ok(own.has(pa - (pa % KIB4)), `write to host-physical ${hex(pa)}`);
    for (const [gpa2, , hpa] of ept02Leaves(fx, root))
      assert.ok(inL1Ram(fx, hpa), `ept02 leaf for ${hex(gpa2)} points into L1 RAM (${hex(hpa)})`);

    const x = row.expect;
    assert.equal(
      out.kind,
      x.kind,
      JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? hex(v) : v)),
    );
    const w = walker(fx);
    const eptp02 = eptpFor(root);
    if (x.kind === 'fixed') {
      // The hardware, walking ept02, gives L2 exactly ept12 ∘ ept01.
      for (const access of [R_, W_, X_]) {
        const r = w.walk(eptp02, row.gpa, access);
        if (x.rights & access) {
          assert.equal(r.status, EPT_OK, `access ${access} allowed`);
          assert.equal(hex(r.hpa), hex(hpaOf(fx, x.l1)), 'same host byte as ept01(ept12(gpa))');
          assert.equal((r.qual >> 3) & 7, x.rights, 'rights = ept12 ∩ ept01');
        } else {
          assert.equal(r.status, EPT_VIOLATION, `access ${access} denied`);
          assert.equal((r.qual >> 3) & 7, x.rights, 'rights = ept12 ∩ ept01');
        }
      }
      // Built on demand, one 4 KiB entry: the neighbouring pages are not mapped yet.
      const leaves = ept02Leaves(fx, root);
      assert.equal(leaves.length, 1, 'one ept02 leaf');
      const [gpa2, lo] = leaves[0];
      assert.equal(hex(gpa2), hex(row.gpa - (row.gpa % KIB4)), 'a 4 KiB leaf for the faulting page');
      const mt = (lo >> 3) & 7;
      assert.ok([0, 1, 4, 5, 6].includes(mt), `valid memory type ${mt}`);
    } else {
      assert.equal(ept02Leaves(fx, root).length, 0, 'no ept02 entry');
      assert.equal(w.walk(eptp02, row.gpa, R_).status, EPT_VIOLATION);
      if (x.kind === 'violation' && out.kind === 'violation') assert.equal(hex(out.qualification), hex(x.q));
      if (x.kind === 'l1-mmio' && out.kind === 'l1-mmio') assert.equal(hex(out.l1Gpa), hex(x.l1));
    }
  });
}

test('ept02: memory type of an ept02 leaf for write-back L1 RAM is write-back (ept01s type)', () => {
  const fx = nestedFixture();
  const e = new Ept12(fx);
  e.map4k(0x1000, D, RWX, WB);
  const root = Number(BigInt(ept02Pointer(fx.v, fx.n, e.eptp)) & ~0xfffn);
  assert.equal(handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(R_)), e.eptp).kind, 'fixed');
  const [[, lo]] = ept02Leaves(fx, root);
  assert.equal((lo >> 3) & 7, WB);
});

// ---------------------------------------------------------------------------------------------
// ept02 over time: on-demand growth, rights raised by L1, INVEPT, EPTP identity.
// ---------------------------------------------------------------------------------------------
test('ept02 starts empty and grows one 4 KiB entry per faulting page of a 2 MiB ept12 page', () => {
  const fx = nestedFixture();
  const e = new Ept12(fx);
  e.map2m(0x600000, 0x800000, RWX);
  const root = Number(BigInt(ept02Pointer(fx.v, fx.n, e.eptp)) & ~0xfffn);
  assert.equal(ept02Leaves(fx, root).length, 0);
  const w = walker(fx);
  for (const [k, gpa] of [0x600010, 0x7ff008, 0x654321].entries()) {
    assert.equal(handleEpt02Violation(fx.v, fx.n, violationAt(gpa, BigInt(R_)), e.eptp).kind, 'fixed');
    assert.equal(ept02Leaves(fx, root).length, k + 1);
    const r = w.walk(eptpFor(root), gpa, W_);
    assert.equal(r.status, EPT_OK);
    assert.equal(hex(r.hpa), hex(hpaOf(fx, 0x800000 + (gpa - 0x600000))));
  }
});

test('ept02: rights L1 raises in ept12 take effect at the next violation (re-walk, stale entry flushed)', () => {
  const fx = nestedFixture();
  const e = new Ept12(fx);
  e.map4k(0x1000, D, R_);
  const root = Number(BigInt(ept02Pointer(fx.v, fx.n, e.eptp)) & ~0xfffn);
  assert.equal(handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(R_)), e.eptp).kind, 'fixed');
  const w1 = handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(W_ | (R_ << 3))), e.eptp);
  assert.equal(w1.kind, 'violation', 'not writable yet: L1s');
  e.map4k(0x1000, D, R_ | W_); // L1 grants write (no INVEPT needed to add rights)
  const flushes: bigint[] = [];
  const orig = fx.h.invept.bind(fx.h);
  fx.h.invept = (type, eptp) => (flushes.push(eptp), orig(type, eptp));
  assert.equal(
    handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(W_ | (R_ << 3))), e.eptp).kind,
    'fixed',
  );
  assert.equal(walker(fx).walk(eptpFor(root), 0x1000, W_).status, EPT_OK);
  // The hardware may cache the read-only translation of ept02: L0 must invalidate it, or L2 would
  // fault on the same write forever.
  assert.ok(
    flushes.some((p) => (p & ~0xfffn) === BigInt(root)),
    `INVEPT of ept02 (${flushes.map(hex).join(', ')})`,
  );
});

test('ept02: L1 removes a mapping and executes INVEPT (single context): that ept02 is dropped, others stay', () => {
  const fx = nestedFixture();
  const a = new Ept12(fx, L1.EPT12);
  const b = new Ept12(fx, L1.EPT12 + 0x80000);
  a.map4k(0x1000, D, RWX);
  b.map4k(0x1000, D + 0x1000, RWX);
  const rootA = Number(BigInt(ept02Pointer(fx.v, fx.n, a.eptp)) & ~0xfffn);
  const rootB = Number(BigInt(ept02Pointer(fx.v, fx.n, b.eptp)) & ~0xfffn);
  assert.notEqual(rootA, rootB, 'one ept02 per ept12');
  for (const e of [a, b])
    assert.equal(handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(R_)), e.eptp).kind, 'fixed');
  const flushes: [number, bigint][] = [];
  const orig = fx.h.invept.bind(fx.h);
  fx.h.invept = (type, eptp) => (flushes.push([type, eptp]), orig(type, eptp));
  a.map4k(0x1000, 0, 0); // not present
  invalidateEpt02(fx.v, a.eptp);
  assert.ok(!fx.n.ept02.has(L1.EPT12), 'ept02 of EPTP A dropped');
  assert.ok(fx.n.ept02.has(L1.EPT12 + 0x80000), 'ept02 of EPTP B kept');
  assert.ok(
    flushes.some(([, p]) => (p & ~0xfffn) === BigInt(rootA)),
    'hardware INVEPT of the dropped ept02',
  );
  // L2 under A: a fresh ept02, and the access is now L1's violation.
  const newA = Number(BigInt(ept02Pointer(fx.v, fx.n, a.eptp)) & ~0xfffn);
  assert.equal(ept02Leaves(fx, newA).length, 0, 'the new ept02 maps nothing');
  const out = handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(R_) | LIN), a.eptp);
  assert.deepEqual(out, { kind: 'violation', qualification: BigInt(R_) | LIN });
  // L2 under B still translates.
  const r = walker(fx).walk(eptpFor(rootB), 0x1000, R_);
  assert.equal(r.status, EPT_OK);
  assert.equal(hex(r.hpa), hex(hpaOf(fx, D + 0x1000)));
});

test('ept02: INVEPT all-context drops every ept02 and releases its pages', () => {
  const fx = nestedFixture();
  const a = new Ept12(fx, L1.EPT12);
  const b = new Ept12(fx, L1.EPT12 + 0x80000);
  a.map4k(0x1000, D, RWX);
  b.map4k(0x200000, D, RWX);
  const used0 = fx.vm.pages.used;
  ept02Pointer(fx.v, fx.n, a.eptp);
  ept02Pointer(fx.v, fx.n, b.eptp);
  handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(R_)), a.eptp);
  handleEpt02Violation(fx.v, fx.n, violationAt(0x200000, BigInt(R_)), b.eptp);
  assert.ok(fx.vm.pages.used > used0 + 2);
  invalidateEpt02(fx.v, undefined);
  assert.equal(fx.n.ept02.size, 0);
  assert.equal(fx.vm.pages.used, used0, 'every ept02 page returned to L0s pool');
});

test('ept02: INVEPT single-context drops the mappings of the EP4TA, whatever the EPTPs low bits', () => {
  // Cached EPT mappings are associated with the EP4TA, bits 51:12 of the EPTP; single-context
  // INVEPT invalidates those of the EP4TA its descriptor names (SDM 3C §28.3.1, §30.3 INVEPT).
  const fx = nestedFixture();
  const e = new Ept12(fx);
  e.map4k(0x1000, D, RWX);
  const wb = eptpFor(L1.EPT12);
  ept02Pointer(fx.v, fx.n, wb);
  assert.equal(handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(R_)), wb).kind, 'fixed');
  e.map4k(0x1000, 0, 0); // L1 unmaps the page, then invalidates naming a UC EPTP of the same PML4
  invalidateEpt02(fx.v, L1.EPT12 | 0 | (3 << 3));
  const root = Number(BigInt(ept02Pointer(fx.v, fx.n, wb)) & ~0xfffn);
  assert.equal(walker(fx).walk(eptpFor(root), 0x1000, R_).status, EPT_VIOLATION, 'the stale mapping is gone');
  assert.equal(handleEpt02Violation(fx.v, fx.n, violationAt(0x1000, BigInt(R_)), wb).kind, 'violation');
});

test('ept02 capped: when full it is dropped and rebuilt, vmcs02 pointing at the new one', () => {
  const fx = nestedFixture();
  const e = new Ept12(fx);
  // 5 GiB of L2 space in 2 MiB ept12 pages, all onto one L1 2 MiB region: every 2 MiB of L2
  // needs its own ept02 page table.
  for (let k = 0; k < 2600; k++) e.map2m(k * MIB2, 0x800000, RWX);
  const v12 = baseVmcs12(fx);
  set12(v12, F.EPT_POINTER, e.eptp);
  fx.n.current = v12;
  prepareVmcs02(fx.v, fx.n); // vmcs02 current, as while L2 runs
  const used0 = fx.vm.pages.used;
  let maxPages = 0;
  for (let k = 0; k < 2600; k++) {
    assert.equal(
      handleEpt02Violation(fx.v, fx.n, violationAt(k * MIB2 + 0x5000, BigInt(R_)), e.eptp).kind,
      'fixed',
    );
    maxPages = Math.max(maxPages, fx.n.ept02.get(L1.EPT12)!.pages.length);
  }
  const cur = fx.n.ept02.get(L1.EPT12)!;
  assert.ok(cur.pages.length < maxPages, `dropped once full (max ${maxPages}, now ${cur.pages.length})`);
  assert.equal(rd(fx.h, F.EPT_POINTER), BigInt(eptpFor(cur.root)), 'vmcs02 uses the live ept02');
  assert.ok(fx.vm.pages.used - used0 <= cur.pages.length, 'the old ept02 pages were released');
  // The last pages are mapped in the new ept02.
  const r = walker(fx).walk(eptpFor(cur.root), 2599 * MIB2 + 0x5000, R_);
  assert.equal(r.status, EPT_OK);
  assert.equal(hex(r.hpa), hex(hpaOf(fx, 0x805000)));
});
