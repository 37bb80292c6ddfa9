// A tiny 64-bit machine for CPU unit tests: one Cpu on 4 MiB of RAM, in long mode
// with 4-level paging, a GDT, a 64-bit TSS and an IDT whose 256 gates lead to
// distinct handler addresses (so the vector of a fault is read back from RIP).
//
// Physical layout:
//   0x000000-0x1fffff  free for tests; identity-mapped (user, writable) unless
//                      makeCpu64({ identity: false })
//   0x200000-0x3fffff  system area, mapped supervisor-only at KBASE + (pa - 0x200000):
//                      page tables, GDT, IDT, TSS, the IST stack, handler stubs
import { Cpu } from '../../src/hw/cpu/cpu.js';
import { PhysMem } from '../../src/hw/mmu/physmem.js';
import { IoBus } from '../../src/hw/bus.js';
import { CS, DS, ES, FS, GS, SS, TR, LDTR } from '../../src/hw/cpu/regs.js';

export const RAM_BYTES = 4 * 1024 * 1024;
/** Linear base of the system area (PML4 slot 511). */
export const KBASE = -(2 ** 39);
const SYS = 0x200000;
const PML4 = SYS;
const TABLES = SYS + 0x1000; // bump-allocated page tables up to GDT_PA
const GDT_PA = SYS + 0x20000;
const IDT_PA = SYS + 0x21000;
const TSS_PA = SYS + 0x22000;
const TSS_LIMIT = 0x67 + 8192 + 1; // with a full I/O permission bitmap and its 0xff terminator
const IST_TOP_PA = SYS + 0x30000;
const STUBS_PA = SYS + 0x40000;
/** Linear address of the handler of vector v is HANDLERS + 16 * v. */
export const HANDLERS = KBASE + (STUBS_PA - SYS);
/** Default place where runBytes puts the code (identity-mapped). */
export const CODE = 0x100000;

/** Selectors of the GDT. */
export const SEL_CODE0 = 0x08,
  SEL_DATA0 = 0x10,
  SEL_CODE3 = 0x18 | 3,
  SEL_DATA3 = 0x20 | 3,
  SEL_TSS = 0x28;

export const PTE_P = 1,
  PTE_W = 2,
  PTE_U = 4,
  PTE_PS = 0x80;

export interface Cpu64 {
  cpu: Cpu;
  mem: PhysMem;
  io: IoBus;
  /** Map the 4 KiB page at linear `la` to physical `pa` with leaf flags (P is implied). */
  map4k(la: number, pa: number, flags: number): void;
  /** Remove the mapping of the 4 KiB page at `la` (flushes the TLB). */
  unmap4k(la: number): void;
  /** Allow or deny ports [port, port+count) in the TSS I/O permission bitmap (all allowed at first). */
  ioAllow(port: number, count: number, allowed: boolean): void;
}

export interface Cpu64Options {
  /** Identity-map 0..2 MiB for user and supervisor (default true). */
  identity?: boolean;
  /** Start at CPL 3 (default false: CPL 0). */
  user?: boolean;
}

function w64(mem: PhysMem, pa: number, lo: number, hi: number): void {
  mem.dv.setInt32(pa, lo, true);
  mem.dv.setInt32(pa + 4, hi, true);
}

/** A CPU in 64-bit mode; see the file comment for the memory layout. */
export function makeCpu64(opts: Cpu64Options = {}): Cpu64 {
  const mem = new PhysMem(RAM_BYTES);
  const io = new IoBus();
  const cpu = new Cpu(0, mem, io);
  let next = TABLES;
  const alloc = (): number => {
    const pa = next;
    next += 0x1000;
    if (next > GDT_PA) throw new Error('cpu64: out of page-table pages');
    mem.u8.fill(0, pa, pa + 0x1000);
    return pa;
  };
  mem.u8.fill(0, PML4, PML4 + 0x1000);
  // Walk to (allocating) the table of `level` (3 = PDPT, 2 = PD, 1 = PT) for `la`.
  const table = (la: number, level: number): number => {
    const ula = la < 0 ? la + 2 ** 48 : la;
    let t = PML4;
    for (let l = 4; l > level; l--) {
      const idx = Math.floor(ula / 2 ** (12 + 9 * (l - 1))) % 512;
      const e = t + idx * 8;
      let lo = mem.dv.getInt32(e, true);
      if (!(lo & PTE_P) || lo & PTE_PS) {
        const nt = alloc();
        lo = nt | PTE_P | PTE_W | PTE_U;
        w64(mem, e, lo, 0);
      }
      t = lo & ~0xfff;
    }
    return t;
  };
  const idx = (la: number, level: number): number => {
    const ula = la < 0 ? la + 2 ** 48 : la;
    return Math.floor(ula / 2 ** (12 + 9 * (level - 1))) % 512;
  };
  const map4k = (la: number, pa: number, flags: number): void => {
    w64(mem, table(la, 1) + idx(la, 1) * 8, (pa & ~0xfff) | (flags & 0xfff) | PTE_P, 0);
    cpu.tlb.flushAll();
  };
  const unmap4k = (la: number): void => {
    w64(mem, table(la, 1) + idx(la, 1) * 8, 0, 0);
    cpu.tlb.flushAll();
  };
  const map2m = (la: number, pa: number, flags: number): void => {
    w64(mem, table(la, 2) + idx(la, 2) * 8, pa | flags | PTE_P | PTE_PS, 0);
  };
  if (opts.identity !== false) map2m(0, 0, PTE_W | PTE_U);
  map2m(KBASE, SYS, PTE_W);

  // GDT: null, code64 DPL0, data DPL0, code64 DPL3, data DPL3, 64-bit TSS (16 bytes).
  const gdt: [number, number][] = [
    [0, 0],
    [0x0000ffff, 0x00af9a00],
    [0x0000ffff, 0x00cf9200],
    [0x0000ffff, 0x00affa00],
    [0x0000ffff, 0x00cff200],
  ];
  gdt.forEach(([lo, hi], n) => w64(mem, GDT_PA + n * 8, lo, hi));
  const tssLin = KBASE + (TSS_PA - SYS);
  const tb = TSS_PA - SYS; // low 32 bits of the TSS base (KBASE contributes only to the high half)
  const tssLo = (TSS_LIMIT & 0xffff) | ((tb & 0xffff) << 16);
  const tssHi = ((tb >>> 16) & 0xff) | 0x8900 | (TSS_LIMIT & 0xf0000) | (tb & 0xff000000);
  w64(mem, GDT_PA + 5 * 8, tssLo, tssHi);
  w64(mem, GDT_PA + 6 * 8, Math.floor(tssLin / 2 ** 32) | 0, 0);

  // TSS: RSP0 and IST1 at the top of the IST stack; I/O bitmap after the header, all ports allowed.
  mem.u8.fill(0, TSS_PA, TSS_PA + TSS_LIMIT + 1);
  const istTop = KBASE + (IST_TOP_PA - SYS);
  w64(mem, TSS_PA + 4, istTop | 0, Math.floor(istTop / 2 ** 32) | 0);
  w64(mem, TSS_PA + 36, istTop | 0, Math.floor(istTop / 2 ** 32) | 0);
  mem.dv.setUint16(TSS_PA + 0x66, 0x68, true);
  mem.u8[TSS_PA + 0x68 + 8192] = 0xff;

  // IDT: 64-bit interrupt gates, DPL 3 (so INT3/INT n from CPL 3 reach them), IST 1.
  for (let v = 0; v < 256; v++) {
    const target = HANDLERS + v * 16;
    const tlo = target - Math.floor(target / 2 ** 32) * 2 ** 32;
    const g = IDT_PA + v * 16;
    w64(mem, g, (SEL_CODE0 << 16) | (tlo & 0xffff), (tlo & 0xffff0000) | 0xee00 | 1);
    w64(mem, g + 8, Math.floor(target / 2 ** 32) | 0, 0);
  }
  mem.u8.fill(0xf4, STUBS_PA, STUBS_PA + 0x1000); // HLT

  cpu.gdtrBase = KBASE + (GDT_PA - SYS);
  cpu.gdtrLimit = 7 * 8 - 1;
  cpu.idtrBase = KBASE + (IDT_PA - SYS);
  cpu.idtrLimit = 256 * 16 - 1;
  cpu.cr3 = PML4;
  cpu.cr4 = 1 << 5; // PAE
  cpu.efer = (1 << 8) | (1 << 10); // LME | LMA
  cpu.cr0 = 0x80010011; // PG | WP | ET | PE
  for (const s of [ES, SS, DS, FS, GS]) {
    cpu.segSel[s] = SEL_DATA0;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = 0xffffffff;
    cpu.segAttr[s] = 0xc093;
  }
  cpu.segSel[CS] = SEL_CODE0;
  cpu.segBase[CS] = 0;
  cpu.segLimit[CS] = 0xffffffff;
  cpu.segAttr[CS] = 0xa09b;
  cpu.segSel[TR] = SEL_TSS;
  cpu.segBase[TR] = tssLin;
  cpu.segLimit[TR] = TSS_LIMIT;
  cpu.segAttr[TR] = 0x8b;
  cpu.segSel[LDTR] = 0;
  cpu.segAttr[LDTR] = 0x10000;
  if (opts.user) setCpl(cpu, 3);
  cpu.fl.put(2);
  cpu.updateMode();
  cpu.tlb.flushAll();
  const ioAllow = (port: number, count: number, allowed: boolean): void => {
    for (let p = port; p < port + count; p++) {
      const a = TSS_PA + 0x68 + (p >>> 3);
      mem.u8[a] = allowed ? mem.u8[a] & ~(1 << (p & 7)) : mem.u8[a] | (1 << (p & 7));
    }
  };
  return { cpu, mem, io, map4k, unmap4k, ioAllow };
}

/** Switch between CPL 0 and CPL 3 by loading CS and SS caches (64-bit mode stays). */
export function setCpl(cpu: Cpu, cpl: 0 | 3): void {
  cpu.segSel[CS] = cpl ? SEL_CODE3 : SEL_CODE0;
  cpu.segAttr[CS] = cpl ? 0xa0fb : 0xa09b;
  cpu.segSel[SS] = cpl ? SEL_DATA3 : SEL_DATA0;
  cpu.segAttr[SS] = cpl ? 0xc0f3 : 0xc093;
  cpu.updateMode();
}

/** Set a 64-bit register from a bigint (two's complement). */
export function setReg64(cpu: Cpu, r: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  cpu.rlo[r] = Number(u & 0xffffffffn) | 0;
  cpu.rhi[r] = Number(u >> 32n) | 0;
}

/** A 64-bit register as an unsigned bigint. */
export function reg64(cpu: Cpu, r: number): bigint {
  return (BigInt(cpu.rhi[r] >>> 0) << 32n) | BigInt(cpu.rlo[r] >>> 0);
}

/**
 * Write `bytes` at `at` (a physical address, identity-mapped; default CODE), point
 * RIP at them and run `n` instructions. Returns the fault vector taken (read back
 * from RIP), or -1.
 */
export function runBytes(cpu: Cpu, bytes: number[], n = 1, at = CODE): number {
  cpu.mem.writeBytes(at, Uint8Array.from(bytes));
  cpu.rip = at;
  return runN(cpu, n);
}

/** Run `n` instructions from the current RIP; returns the fault vector taken, or -1. */
export function runN(cpu: Cpu, n: number): number {
  cpu.run(n);
  return vectorTaken(cpu);
}

/** The vector whose handler RIP points at, if an event was just delivered, else -1. */
export function vectorTaken(cpu: Cpu): number {
  const off = cpu.rip - HANDLERS;
  // The gates lead to a DPL 0 code segment: an event leaves the CPU at CPL 0 on a stub.
  if (cpu.cpl === 0 && off >= 0 && off < 256 * 16 && off % 16 === 0) return off / 16;
  return -1;
}

/** The error code pushed by the last exception (on the IST stack), for vectors that push one. */
export function lastErrorCode(cpu: Cpu): number {
  return cpu.rd32(cpu.regNum(4), false);
}
