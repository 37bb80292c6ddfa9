/**
 * Segment register loads and far transfers, in real mode (SDM 3A §20.1.1: the selector and
 * base = selector × 16 change; the cached limit and attributes stay, which is how "unreal"
 * mode works) and in protected mode (descriptor tables, SDM 3A §3.4-3.5 and §5.8; SDM 2A/2B
 * MOV, POP, LDS/LES/LFS/LGS/LSS, JMP, CALL, RET). Protected mode is emulated only while the
 * segment caches are still invalid for VM entry (invalid.ts), which in practice is the few
 * instructions between setting CR0.PE and the far jump: gates, task switches and privilege
 * changes are reported instead of emulated.
 */
import type { Emu } from './emu.js';
import { AR_UNUSABLE, CS, GP, NP, SS, SSF, RmFault, type Segment } from './state.js';

export interface Descriptor {
  base: number;
  limit: number;
  /** Access rights in the VMX format (type, S, DPL, P, AVL, L, D/B, G). */
  ar: number;
  /** Linear address of the descriptor (to set its accessed bit). */
  at: number;
}

const gp = (sel: number): never => {
  throw new RmFault(GP, sel & 0xfffc);
};

/** Read the descriptor of `sel` from the GDT or LDT, or raise #GP(selector) if it is outside the table. */
export function readDescriptor(e: Emu, sel: number): Descriptor {
  const s = e.s;
  const ldt = (sel & 4) !== 0;
  if (ldt && !s.ldtrUsable) gp(sel);
  const base = ldt ? s.ldtrBase : s.gdtrBase,
    limit = ldt ? s.ldtrLimit : s.gdtrLimit;
  const idx = sel & 0xfff8;
  if (idx + 7 > limit) gp(sel);
  const at = (base + idx) % 4294967296;
  const lo = e.readLinear(at, 4),
    hi = e.readLinear((at + 4) % 4294967296, 4);
  let limit20 = (lo & 0xffff) | (hi & 0xf0000);
  if (hi & 0x800000) limit20 = limit20 * 4096 + 0xfff;
  return {
    base: ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0,
    limit: limit20 >>> 0,
    ar: ((hi >>> 8) & 0xff) | ((hi >>> 8) & 0xf000),
    at,
  };
}

/** Set the accessed bit of a descriptor the CPU loads (SDM 3A §3.4.5.1). */
function setAccessed(e: Emu, d: Descriptor): void {
  if (d.ar & 1) return;
  d.ar |= 1;
  const b = e.readLinear(d.at + 5, 1);
  e.writeLinear(d.at + 5, 1, b | 1);
}

function put(sg: Segment, sel: number, d: Descriptor): void {
  sg.sel = sel & 0xffff;
  sg.base = d.base;
  sg.limit = d.limit;
  sg.ar = d.ar;
}

/** MOV/POP/LxS to segment register `sr` (not CS). */
export function loadSegment(e: Emu, sr: number, sel: number): void {
  const s = e.s;
  sel &= 0xffff;
  const sg = s.seg[sr];
  if (s.real) {
    sg.sel = sel;
    sg.base = sel << 4;
    return;
  }
  const cpl = s.cpl,
    rpl = sel & 3;
  if ((sel & 0xfffc) === 0) {
    // A null selector: #GP(0) for SS; the other registers become unusable (SDM 2A MOV).
    if (sr === SS) gp(0);
    sg.sel = sel;
    sg.base = 0;
    sg.limit = 0;
    sg.ar = AR_UNUSABLE;
    return;
  }
  const d = readDescriptor(e, sel);
  const dpl = (d.ar >> 5) & 3,
    isCode = (d.ar & 0x18) === 0x18,
    isSeg = (d.ar & 0x10) !== 0,
    present = (d.ar & 0x80) !== 0;
  if (sr === SS) {
    // A writable data segment with RPL = DPL = CPL (SDM 2A MOV, protected-mode exceptions).
    if (rpl !== cpl || dpl !== cpl || !isSeg || isCode || !(d.ar & 2)) gp(sel);
    if (!present) throw new RmFault(SSF, sel & 0xfffc);
  } else {
    const conforming = isCode && (d.ar & 4) !== 0;
    if (!isSeg || (isCode && !(d.ar & 2))) gp(sel);
    if (!conforming && (rpl > dpl || cpl > dpl)) gp(sel);
    if (!present) throw new RmFault(NP, sel & 0xfffc);
  }
  setAccessed(e, d);
  put(sg, sel, d);
}

/**
 * Far JMP or CALL to `sel:off` (`size`: operand size, for the pushed return address and the
 * offset's width). Real mode: CS = sel, base sel × 16. Protected mode: a code segment at the
 * current privilege only (SDM 2A JMP/CALL: "far jump to a conforming/non-conforming code
 * segment"); gates and TSSs are not emulated.
 */
export function farTransfer(e: Emu, sel: number, off: number, size: number, call: boolean): void {
  const s = e.s;
  sel &= 0xffff;
  const target = size === 4 ? off >>> 0 : off & 0xffff;
  if (s.real) {
    if (call) {
      e.push(size, s.seg[CS].sel);
      e.push(size, s.eip);
    }
    s.seg[CS].sel = sel;
    s.seg[CS].base = sel << 4;
    s.eip = target;
    return;
  }
  const d = codeDescriptor(e, sel, 'jmp');
  if (target > d.limit) gp(0);
  if (call) {
    e.push(size, s.seg[CS].sel);
    e.push(size, s.eip);
  }
  setAccessed(e, d);
  put(s.seg[CS], (sel & 0xfffc) | s.cpl, d);
  s.eip = target;
}

/** The code-segment descriptor of a far JMP/CALL (`jmp`) or a far RET (`ret`) to the same privilege level. */
export function codeDescriptor(e: Emu, sel: number, kind: 'jmp' | 'ret'): Descriptor {
  const s = e.s;
  if ((sel & 0xfffc) === 0) gp(0);
  const d = readDescriptor(e, sel);
  if (!(d.ar & 0x10))
    e.unsupported(
      `a far transfer through the system descriptor ${hex(sel)} (gate or TSS) while L0 emulates protected mode`,
    );
  if ((d.ar & 0x18) !== 0x18) gp(sel);
  const dpl = (d.ar >> 5) & 3,
    rpl = sel & 3,
    cpl = s.cpl;
  const conforming = (d.ar & 4) !== 0;
  if (kind === 'ret' && rpl !== cpl)
    e.unsupported(`a far return to privilege level ${rpl} while L0 emulates protected mode`);
  if (conforming ? dpl > cpl : rpl > cpl || dpl !== cpl) gp(sel);
  if (!(d.ar & 0x80)) throw new RmFault(NP, sel & 0xfffc);
  return d;
}

/** Far RET (`size`: operand size), popping `extra` more bytes of parameters. */
export function farReturn(e: Emu, size: number, extra: number): void {
  const s = e.s;
  const ip = e.peek(0, size);
  const sel = e.peek(size, size) & 0xffff;
  const target = size === 4 ? ip >>> 0 : ip & 0xffff;
  if (s.real) {
    s.seg[CS].sel = sel;
    s.seg[CS].base = sel << 4;
  } else {
    const d = codeDescriptor(e, sel, 'ret');
    if (target > d.limit) gp(0);
    setAccessed(e, d);
    put(s.seg[CS], sel, d);
  }
  e.sp = e.sp + 2 * size + extra;
  s.eip = target;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
