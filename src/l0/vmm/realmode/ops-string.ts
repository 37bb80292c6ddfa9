/**
 * String instructions MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS with REP/REPE/REPNE (SDM 2B
 * REP): rSI/rDI (by the address size) step by RFLAGS.DF; the source segment may be overridden,
 * ES:rDI may not. REP is interruptible and restartable: at most STRING_BATCH elements move per
 * step, then EIP stays on the instruction (with the updated count) so interrupts are taken in
 * between and a huge count costs the guest its own time; an element that faults keeps the
 * progress made before it (`commitPoint`).
 */
import { sub } from './alu.js';
import { operandsOf, sizeOf } from './operands.js';
import { ARITH_FLAGS, DF, DS, ES, ZF } from './state.js';
import type { Handler } from './handler.js';

/** Elements a REP string instruction moves per emulation step. */
export const STRING_BATCH = 256;

type Kind = 'MOVS' | 'CMPS' | 'STOS' | 'LODS' | 'SCAS' | 'INS' | 'OUTS';

function stringOp(kind: Kind): Handler {
  return (e) => {
    const s = e.s,
      d = e.d;
    const ops = operandsOf(e);
    // The element size: the operand that is not DX (INS Yb,DX / OUTS DX,Xz).
    const size = sizeOf(e, ops[0] === 'DX' ? ops[1] : ops[0]);
    const asz = d.asz,
      am = asz === 4 ? 0xffffffff : 0xffff;
    const step = s.eflags & DF ? -size : size;
    const srcSeg = d.seg >= 0 ? d.seg : DS;
    const rep = d.rep !== 0;
    const compare = kind === 'CMPS' || kind === 'SCAS';
    let n = 0;
    for (;;) {
      if (rep && e.getReg(1, asz) === 0) break;
      const si = e.getReg(6, asz),
        di = e.getReg(7, asz);
      switch (kind) {
        case 'MOVS':
          e.wr(ES, di, size, e.rd(srcSeg, si, size));
          break;
        case 'STOS':
          e.wr(ES, di, size, e.getReg(0, size));
          break;
        case 'LODS':
          e.setReg(0, size, e.rd(srcSeg, si, size));
          break;
        case 'CMPS': {
          const a = e.rd(srcSeg, si, size),
            b = e.rd(ES, di, size);
          s.eflags = (s.eflags & ~ARITH_FLAGS) | sub(a, b, 0, size).f;
          break;
        }
        case 'SCAS': {
          const b = e.rd(ES, di, size);
          s.eflags = (s.eflags & ~ARITH_FLAGS) | sub(e.getReg(0, size), b, 0, size).f;
          break;
        }
        case 'INS': {
          e.lin(ES, di, size, true); // the segment checks come before the port is read
          e.wr(ES, di, size, e.bus.in(e.getReg(2, 2), size as 1 | 2 | 4));
          break;
        }
        case 'OUTS':
          e.bus.out(e.getReg(2, 2), size as 1 | 2 | 4, e.rd(srcSeg, si, size));
          break;
      }
      if (kind === 'MOVS' || kind === 'LODS' || kind === 'CMPS' || kind === 'OUTS')
        e.setReg(6, asz, (si + step) & am);
      if (kind !== 'LODS' && kind !== 'OUTS') e.setReg(7, asz, (di + step) & am);
      n++;
      if (!rep) break;
      e.setReg(1, asz, (e.getReg(1, asz) - 1) & am);
      e.commitPoint();
      // REPE/REPZ (F3) stops when ZF = 0, REPNE/REPNZ (F2) when ZF = 1: CMPS and SCAS only.
      if (compare && (d.rep === 0xf3) !== ((s.eflags & ZF) !== 0)) break;
      if (n >= STRING_BATCH) {
        if (e.getReg(1, asz) !== 0) s.eip = e.start;
        break;
      }
    }
    e.elements = n;
  };
}

export const STRING_HANDLERS: Record<string, Handler> = {
  MOVS: stringOp('MOVS'),
  CMPS: stringOp('CMPS'),
  STOS: stringOp('STOS'),
  LODS: stringOp('LODS'),
  SCAS: stringOp('SCAS'),
  INS: stringOp('INS'),
  OUTS: stringOp('OUTS'),
};
