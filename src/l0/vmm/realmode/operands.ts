/**
 * Operands named as in the opcode table (src/spec/opcodes.ts, SDM 2A Appendix A.2): E (ModRM
 * r/m), G (ModRM reg), Z (register in the opcode's low bits), fixed registers (AL, rAX, CL,
 * DX), immediates (I, sign-extended to the other operand's size), moffs (O), the constant 1.
 */
import type { Emu } from './emu.js';
import { MASK } from './alu.js';
import { sx } from './decode.js';
import { DS } from './state.js';

/** Size in bytes of an operand token (b, w, d; v and z: the operand size). */
export function sizeOf(e: Emu, token: string): number {
  switch (token) {
    case 'AL':
    case 'CL':
    case '1':
      return 1;
    case 'DX':
      return 2;
    case 'rAX':
    case 'eAX':
      return e.d.osz;
  }
  const c = token[1];
  return c === 'b' ? 1 : c === 'w' ? 2 : c === 'd' ? 4 : e.d.osz;
}

/** The operands of the current instruction's table entry. */
export function operandsOf(e: Emu): string[] {
  const o = e.d.entry?.operands ?? '';
  return o ? o.split(',') : [];
}

/** Read operand `token` as an unsigned value of `size` bytes (immediates sign-extended to it). */
export function readOp(e: Emu, token: string, size: number): number {
  const d = e.d;
  switch (token[0]) {
    case 'E':
      return e.readE(size);
    case 'G':
      return e.getReg(d.reg, size);
    case 'Z':
      return e.getReg(d.opcode & 7, size);
    case 'I':
      return (sx(d.imm, d.immSize) & MASK[size]) >>> 0;
    case 'O':
      return e.rd(d.seg >= 0 ? d.seg : DS, d.imm, size);
    case '1':
      return 1;
  }
  if (token === 'AL' || token === 'rAX' || token === 'eAX') return e.getReg(0, size);
  if (token === 'CL') return e.getReg(1, 1);
  if (token === 'DX') return e.getReg(2, 2);
  return e.unsupported(`operand ${token}`);
}

export function writeOp(e: Emu, token: string, size: number, v: number): void {
  const d = e.d;
  switch (token[0]) {
    case 'E':
      return e.writeE(size, v);
    case 'G':
      return e.setReg(d.reg, size, v);
    case 'Z':
      return e.setReg(d.opcode & 7, size, v);
    case 'O':
      return e.wr(d.seg >= 0 ? d.seg : DS, d.imm, size, v);
  }
  if (token === 'AL' || token === 'rAX' || token === 'eAX') return e.setReg(0, size, v);
  e.unsupported(`operand ${token}`);
}
