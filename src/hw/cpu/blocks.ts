/**
 * Basic-block compilation: a run of decoded instructions within one page is
 * turned into one JavaScript function that calls each instruction's handler in
 * turn. Every call site in that function sees a single handler, so the JS engine
 * can inline it: this removes most of the interpreter's dispatch cost.
 *
 * A block is a sequence of "straight-line" instructions (they neither branch nor
 * change the mode, privilege, interrupt state or paging) ended by at most one
 * instruction of any kind. Semantics are unchanged: RIP and insnRip are set before
 * each handler exactly as the interpreter does, faults unwind through the same
 * mechanism, and a write into the block's own code (self-modifying code) stops the
 * block after the writing instruction.
 */
import type { Insn, Handler } from './insn.js';
import type { Cpu } from './cpu.js';

/** Mnemonics that may appear only as the last instruction of a block. */
const TERMINATORS = new Set([
  'JMP',
  'JCC',
  'CALL',
  'CALLN',
  'JMPN',
  'RET',
  'RETF',
  'CALLF',
  'JMPF',
  'IRET',
  'INT',
  'INT3',
  'INTO',
  'INT1',
  'LOOP',
  'LOOPE',
  'LOOPNE',
  'JRCXZ',
  'HLT',
  'STI',
  'CLI',
  'POPF',
  'MOVSEG',
  'LSS',
  'LDS',
  'LES',
  'LFS',
  'LGS',
  'MOVCR',
  'MOVDR',
  'LGDT',
  'LIDT',
  'LLDT',
  'LTR',
  'LMSW',
  'CLTS',
  'WRMSR',
  'RDMSR',
  'IN',
  'OUT',
  'INS',
  'OUTS',
  'SYSCALL',
  'SYSRET',
  'SYSENTER',
  'SYSEXIT',
  'SWAPGS',
  'XSETBV',
  'INVLPG',
  'INVPCID',
  'INVD',
  'WBINVD',
  'CPUID',
  'RDTSC',
  'RDTSCP',
  'VMCALL',
  'VMLAUNCH',
  'VMRESUME',
  'VMXOFF',
  'VMPTRLD',
  'VMPTRST',
  'VMREAD',
  'VMWRITE',
  '(bad)',
  '(too long)',
]);
/** String instructions are straight-line only without a REP prefix (REP re-executes itself). */
const STRING = new Set(['MOVS', 'CMPS', 'STOS', 'LODS', 'SCAS']);
/** POP to a segment register changes segmentation; PUSH/POP of GPRs are fine. */
function isTerminator(i: Insn): boolean {
  if (TERMINATORS.has(i.mnemonic)) return true;
  if (STRING.has(i.mnemonic) && i.rep) return true;
  if ((i.mnemonic === 'POP' || i.mnemonic === 'PUSH') && /^(ES|CS|SS|DS|FS|GS)$/.test(i.operands))
    return true;
  return false;
}

export const MAX_BLOCK = 64;

/**
 * Instructions that only touch registers and flags and cannot fault: inside a block they
 * need no RIP bookkeeping and no self-modifying-code check.
 */
const PURE = new Set([
  'ADD',
  'OR',
  'ADC',
  'SBB',
  'AND',
  'SUB',
  'XOR',
  'CMP',
  'TEST',
  'INC',
  'DEC',
  'NOT',
  'NEG',
  'MOV',
  'MOVZX',
  'MOVSX',
  'MOVSXD',
  'LEA',
  'XCHG',
  'CMOVCC',
  'SETCC',
  'BSWAP',
  'ROL',
  'ROR',
  'RCL',
  'RCR',
  'SHL',
  'SHR',
  'SAR',
  'SHLD',
  'SHRD',
  'BSF',
  'BSR',
  'TZCNT',
  'LZCNT',
  'POPCNT',
  'CBW',
  'CWD',
  'CLC',
  'STC',
  'CMC',
  'CLD',
  'STD',
  'LAHF',
  'SAHF',
  'IMUL2',
  'IMUL3',
  'NOPM',
]);
function isPure(i: Insn): boolean {
  if (!PURE.has(i.mnemonic) || i.lock) return false;
  // Memory forms access memory (and may fault); LEA and NOP only compute an address, but a
  // RIP-relative one reads RIP, and a moffs MOV is a memory access.
  if (i.mem) return (i.mnemonic === 'LEA' || i.mnemonic === 'NOPM') && i.base !== 16;
  // XCHG rAX with PAUSE may exit in non-root operation.
  if (i.mnemonic === 'XCHG' && i.rep) return false;
  return true;
}

export class Block {
  /** Offsets of each instruction from the block start, and the end offset. */
  readonly offsets: number[];
  /** prefixCost[k] = cycles of the first k instructions. */
  readonly prefixCost: number[];
  constructor(
    readonly insns: Insn[],
    readonly fn: (cpu: Cpu, rip: number) => number,
  ) {
    this.offsets = [];
    this.prefixCost = [0];
    let off = 0,
      c = 0;
    for (const i of insns) {
      this.offsets.push(off);
      off += i.len;
      c += i.cost;
      this.prefixCost.push(c);
    }
    this.offsets.push(off);
  }
  get length(): number {
    return this.insns.length;
  }
  /** Number of instructions that completed before the one at `rip` (used when a fault unwinds). */
  completedBefore(blockRip: number, rip: number): number {
    const off = rip - blockRip;
    for (let k = 0; k < this.insns.length; k++) if (this.offsets[k] === off) return k;
    return 0;
  }
}

/**
 * Collect the block starting at page offset `start` (instructions already decoded
 * in `slots`, or decoded on demand with `decodeAt`) and compile it. Returns
 * undefined when no useful block exists there.
 */
export function buildBlock(
  start: number,
  decodeAt: (pageOff: number) => Insn | undefined,
): Block | undefined {
  const insns: Insn[] = [];
  let off = start;
  while (insns.length < MAX_BLOCK && off < 4096) {
    const i = decodeAt(off);
    if (!i) break;
    insns.push(i);
    off += i.len;
    if (isTerminator(i)) break;
  }
  if (insns.length < 2) return undefined;
  const last = insns.length - 1;
  let body = '';
  let o = 0;
  let ripSet = true;
  for (let k = 0; k < insns.length; k++) {
    const e = o + insns[k].len;
    if (isPure(insns[k])) {
      // Register-only and fault-free: neither RIP nor insnRip is observable while it runs.
      body += `F${k}(c, I${k});\n`;
      ripSet = false;
    } else {
      body += `c.insnRip = r + ${o}; c.rip = r + ${e}; F${k}(c, I${k});\n`;
      ripSet = true;
      if (k < last && !isTerminator(insns[k])) body += `if (c.brk) return ${k + 1};\n`;
    }
    o = e;
  }
  if (!ripSet) body += `c.rip = r + ${o};\n`;
  body += `return ${insns.length};`;
  const names = insns.map((_, k) => `F${k}`).concat(insns.map((_, k) => `I${k}`));
  const make = new Function(...names, `return function block(c, r) {\n${body}\n};`) as (
    ...args: (Handler | Insn)[]
  ) => (cpu: Cpu, rip: number) => number;
  const fn = make(...insns.map((i) => i.fn), ...insns);
  return new Block(insns, fn);
}
