/**
 * A decoded instruction. Decoding is done once per instruction address and the
 * result cached (see decode-cache.ts), so everything the executor needs is
 * precomputed here: operand size, the memory operand's parts, immediates and the
 * handler to call.
 */
import type { Cpu } from './cpu.js';
import type { Block } from './blocks.js';

export type Handler = (cpu: Cpu, i: Insn) => void;

export class Insn {
  fn: Handler = () => {};
  mnemonic = '';
  operands = '';
  opcode = 0;
  len = 0;
  /** Operand size in bytes: 1, 2, 4 or 8. */
  size = 4;
  /** Address size in bytes: 2, 4 or 8. */
  asize = 4;
  /** ModRM fields with REX extensions applied; rm is a register number when !mem. */
  hasModrm = false;
  mod = 0;
  reg = 0;
  rm = 0;
  /** Memory operand: segment, base (-1 none, 16 = RIP), index (-1 none), scale shift, displacement. */
  mem = false;
  seg = 3;
  base = -1;
  index = -1;
  scale = 0;
  disp = 0;
  /** Immediate (sign-extended to 64 bits as lo/hi int32), second immediate (ENTER, far pointers). */
  imm = 0;
  immHi = 0;
  imm2 = 0;
  /** 0, 0xf3 (REP/REPE) or 0xf2 (REPNE). */
  rep = 0;
  lock = false;
  rex = 0;
  /** Segment override prefix given (-1 none). */
  segOverride = -1;
  /** Condition code for Jcc/SETcc/CMOVcc or the register number for Z forms. */
  low3 = 0;
  /** Cost in cycles from the cost table. */
  cost = 1;
  /** Decoding mode this entry is valid for (cache key). */
  modeKey = 0;
  /** Times executed by the interpreter (blocks are compiled from hot instructions). */
  hot = 0;
  /** The compiled block starting here, if any. */
  block: Block | undefined = undefined;
}
