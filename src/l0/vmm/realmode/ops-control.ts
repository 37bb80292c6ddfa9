/**
 * Control transfers: Jcc, JMP/CALL near (relative and indirect) and far (pointer and memory),
 * RET/RETF, LOOP/LOOPE/LOOPNE/JCXZ, INT n/INT3/INTO and IRET (SDM 2A/2B). A near target wraps
 * at the operand size; in protected mode it must lie within CS's limit (#GP(0)).
 */
import type { Emu } from './emu.js';
import { condition } from './alu.js';
import { sx } from './decode.js';
import { deliverReal } from './events.js';
import { farReturn, farTransfer } from './segments.js';
import { BLOCK_NMI, BP, CS, GP, OF, OFV, ZF, RmFault } from './state.js';
import type { Handler } from './handler.js';

/** EIP ← target (wrapped to the operand size; checked against CS.limit outside real mode). */
function jumpTo(e: Emu, target: number, size: number): void {
  const t = size === 4 ? target >>> 0 : target & 0xffff;
  if (!e.s.real && t > e.s.seg[CS].limit) throw new RmFault(GP, 0);
  e.s.eip = t;
}
const rel = (e: Emu): number => e.s.eip + sx(e.d.imm, e.d.immSize);

const jcc: Handler = (e) => {
  if (condition(e.d.opcode & 15, e.s.eflags)) jumpTo(e, rel(e), e.d.osz);
};
const jmp: Handler = (e) => jumpTo(e, rel(e), e.d.osz);
const call: Handler = (e) => {
  const t = rel(e);
  const size = e.d.osz;
  const ret = e.s.eip;
  jumpTo(e, t, size);
  e.s.eip = ret;
  e.push(size, ret);
  jumpTo(e, t, size);
};
const jmpNear: Handler = (e) => jumpTo(e, e.readE(e.d.osz), e.d.osz);
const callNear: Handler = (e) => {
  const size = e.d.osz;
  const t = e.readE(size);
  const ret = e.s.eip;
  jumpTo(e, t, size);
  e.s.eip = ret;
  e.push(size, ret);
  jumpTo(e, t, size);
};

/** JMPF/CALLF: ptr16:16/32 in the instruction (Ap) or in memory (Mp). */
function far(call: boolean): Handler {
  return (e) => {
    const d = e.d,
      size = d.osz;
    if (d.entry?.operands === 'Ap') return farTransfer(e, d.imm2, d.imm, size, call);
    const { seg, off } = e.memOnly();
    const o = e.rd(seg, off, size);
    const sel = e.rd(seg, (off + size) & e.addrMask(), 2);
    farTransfer(e, sel, o, size, call);
  };
}

const ret: Handler = (e) => {
  const size = e.d.osz;
  const ip = e.peek(0, size);
  const extra = e.d.entry?.operands === 'Iw' ? e.d.imm & 0xffff : 0;
  jumpTo(e, ip, size);
  e.sp = e.sp + size + extra;
};
const retf: Handler = (e) => farReturn(e, e.d.osz, e.d.entry?.operands === 'Iw' ? e.d.imm & 0xffff : 0);

/** LOOP (kind 2), LOOPE (1), LOOPNE (0): the count register is CX or ECX by the address size. */
function loop(kind: number): Handler {
  return (e) => {
    const asz = e.d.asz;
    const c = (e.getReg(1, asz) - 1) & (asz === 4 ? 0xffffffff : 0xffff);
    e.setReg(1, asz, c);
    const zf = (e.s.eflags & ZF) !== 0;
    const taken = c !== 0 && (kind === 2 || (kind === 1 ? zf : !zf));
    if (taken) jumpTo(e, rel(e), e.d.osz);
  };
}
const jcxz: Handler = (e) => {
  if (e.getReg(1, e.d.asz) === 0) jumpTo(e, rel(e), e.d.osz);
};

/** INT n / INT3 / INTO in real mode: through the IVT with the address of the next instruction. */
function softInt(e: Emu, vector: number): void {
  if (!e.s.real) e.unsupported(`INT ${vector} in protected mode while L0 emulates it`);
  deliverReal(e, vector, e.s.eip);
}

/** IRET in real mode (SDM 2A IRET, real-address mode); it ends NMI blocking (SDM 3A §6.7.1). */
const iret: Handler = (e) => {
  const s = e.s;
  if (!s.real) e.unsupported('IRET in protected mode while L0 emulates it');
  const size = e.d.osz;
  const ip = e.peek(0, size),
    cs = e.peek(size, size) & 0xffff,
    f = e.peek(2 * size, size);
  e.sp = e.sp + 3 * size;
  s.seg[CS].sel = cs;
  s.seg[CS].base = cs << 4;
  s.eip = size === 4 ? ip >>> 0 : ip & 0xffff;
  if (size === 2) s.eflags = ((s.eflags & ~0xffff) | (f & 0x7fd5) | 2) >>> 0;
  else s.eflags = ((f & 0x257fd5) | (s.eflags & 0x1a0000) | 2) >>> 0;
  s.interruptibility &= ~BLOCK_NMI;
};

export const CONTROL_HANDLERS: Record<string, Handler> = {
  JCC: jcc,
  JMP: jmp,
  CALL: call,
  JMPN: jmpNear,
  CALLN: callNear,
  JMPF: far(false),
  CALLF: far(true),
  RET: ret,
  RETF: retf,
  LOOPNE: loop(0),
  LOOPE: loop(1),
  LOOP: loop(2),
  JRCXZ: jcxz,
  INT: (e) => softInt(e, e.d.imm & 0xff),
  INT3: (e) => softInt(e, BP),
  INTO: (e) => {
    if (e.s.eflags & OF) softInt(e, OFV);
  },
  IRET: iret,
};
