/**
 * Operand access shared by the instruction families: the source operand of an
 * ALU-style form (register, memory or immediate) and the size masks.
 */
import type { Cpu } from '../cpu.js';
import type { Insn } from '../insn.js';

export const MASK = [0, 0xff, 0xffff, 0, 0xffffffff, 0, 0, 0, 0xffffffff];

/** Immediate masked to `size` (lo part, unsigned); the high part is i.immHi for size 8. */
export function immLo(i: Insn, size: number): number {
  return size === 1 ? i.imm & 0xff : size === 2 ? i.imm & 0xffff : i.imm >>> 0;
}

/** Kinds of operand for ALU forms. */
export const K_E = 0,
  K_G = 1,
  K_ACC = 2,
  K_IMM = 3,
  K_ONE = 4,
  K_CL = 5;

export function kindOf(op: string): number {
  if (op.startsWith('E') || op.startsWith('M') || op.startsWith('R')) return K_E;
  if (op.startsWith('G')) return K_G;
  if (op === 'AL' || op === 'rAX' || op === 'eAX') return K_ACC;
  if (op === '1') return K_ONE;
  if (op === 'CL') return K_CL;
  return K_IMM;
}

/** Read an operand of kind k (lo; 8-byte values leave the high half in cpu.hi). */
export function readOp(cpu: Cpu, i: Insn, k: number, size: number): number {
  switch (k) {
    case K_G:
      return cpu.getReg(i.reg, size, i.rex);
    case K_ACC:
      return cpu.getReg(0, size);
    case K_IMM:
      cpu.hi = i.immHi;
      return immLo(i, size);
    default:
      return cpu.readE(i, size);
  }
}
