// The simulator side of the differential CPU tests (test/diff): runs one case of
// types.ts in a CPU set up as the native harness is: 64-bit mode, CPL 3, the code
// page at CODE_ADDR (user, read-only), the 4 KiB page holding the operand window
// at MEM_ADDR (user, writable; bytes outside the window are poison), nothing else
// mapped for user mode, no I/O ports allowed. The machine is built once and reset
// for every case.
import type { DiffCase, DiffResult } from '../diff/types.js';
import { CODE_ADDR, FLAGS_LOADABLE, MEM_ADDR, MEM_SIZE } from '../diff/types.js';
import { type Cpu64, makeCpu64, setCpl, vectorTaken, PTE_U, PTE_W } from './cpu64.js';

const WINDOW_PA = 0x100000;
const CODE_PA = 0x101000;
const POISON = 0xa5;

let machine: Cpu64 | undefined;

function setup(): Cpu64 {
  const m = makeCpu64({ identity: false, user: true });
  m.map4k(Number(MEM_ADDR) & ~0xfff, WINDOW_PA, PTE_U | PTE_W);
  m.map4k(Number(CODE_ADDR) & ~0xfff, CODE_PA, PTE_U);
  // A Linux process has no I/O permissions: every port access at CPL 3 raises #GP.
  m.ioAllow(0, 65536, false);
  return m;
}

export function runSnippet64(c: DiffCase): DiffResult {
  machine ??= setup();
  const { cpu, mem } = machine;
  // Operand window inside a poisoned page, code in its own page (padded with INT3).
  const winOff = Number(MEM_ADDR) & 0xfff;
  mem.u8.fill(POISON, WINDOW_PA, WINDOW_PA + 0x1000);
  mem.u8.set(c.mem.subarray(0, MEM_SIZE), WINDOW_PA + winOff);
  const codeOff = Number(CODE_ADDR) & 0xfff;
  const code = new Uint8Array(0x1000).fill(0xcc);
  code.set(c.code, codeOff);
  mem.writeBytes(CODE_PA, code);

  for (let r = 0; r < 16; r++) {
    const u = BigInt.asUintN(64, c.regs[r]);
    cpu.rlo[r] = Number(u & 0xffffffffn) | 0;
    cpu.rhi[r] = Number(u >> 32n) | 0;
  }
  setCpl(cpu, 3);
  cpu.setFlags(Number(c.rflags & FLAGS_LOADABLE) | 2);
  cpu.rip = Number(CODE_ADDR);
  cpu.cr2 = 0;
  cpu.halted = false;
  cpu.intShadow = 0;
  cpu.excVector = -1;
  cpu.tlb.flushAll();
  cpu.run(1);
  const vector = vectorTaken(cpu);

  const regs: bigint[] = [];
  for (let r = 0; r < 16; r++) regs.push((BigInt(cpu.rhi[r] >>> 0) << 32n) | BigInt(cpu.rlo[r] >>> 0));
  return {
    regs,
    rflags: BigInt(cpu.getFlags() >>> 0),
    mem: mem.u8.slice(WINDOW_PA + winOff, WINDOW_PA + winOff + MEM_SIZE),
    vector,
  };
}
