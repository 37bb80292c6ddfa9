/**
 * Segment descriptors and segment-register loads (SDM Vol. 3A chapters 3 and 5):
 * descriptor fetch from the GDT/LDT, the checks of MOV/POP to a segment register,
 * and the cached base/limit/access-rights update. Access rights are kept in the
 * VMX layout (SDM 3C §24.4.1): bits 7:0 type/S/DPL/P, 12 AVL, 13 L, 14 D/B, 15 G,
 * 16 unusable.
 */
import type { Cpu } from './cpu.js';
import { CS, SS, DS, ES, FS, GS, LDTR, TR, GP, NP, SS_, Mode } from './regs.js';

export const ATTR_UNUSABLE = 0x10000;

/** A descriptor read from a table: raw words and the decoded fields. */
export class Descriptor {
  lo = 0;
  hi = 0;
  /** Upper 8 bytes of 16-byte system descriptors in IA-32e mode. */
  hi2 = 0;
  base = 0;
  limit = 0;
  attr = 0;
  /** Linear address of the descriptor (for setting the accessed bit). */
  addr = 0;
  get type(): number {
    return this.attr & 0xf;
  }
  get s(): boolean {
    return (this.attr & 0x10) !== 0;
  }
  get dpl(): number {
    return (this.attr >> 5) & 3;
  }
  get present(): boolean {
    return (this.attr & 0x80) !== 0;
  }
  get isCode(): boolean {
    return this.s && (this.attr & 8) !== 0;
  }
  get conforming(): boolean {
    return this.isCode && (this.attr & 4) !== 0;
  }
  get long(): boolean {
    return (this.attr & (1 << 13)) !== 0;
  }
  decode(lo: number, hi: number): void {
    this.lo = lo;
    this.hi = hi;
    this.base = ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
    let limit = (lo & 0xffff) | (hi & 0xf0000);
    this.attr = ((hi >>> 8) & 0xff) | ((hi >>> 8) & 0xf000);
    if (this.attr & 0x8000) limit = limit * 4096 + 0xfff;
    this.limit = limit >>> 0;
  }
}

/**
 * Read the descriptor for `sel` into `d`. Returns false for a selector beyond the
 * table limit (the caller raises the fault its instruction specifies).
 */
export function readDescriptor(cpu: Cpu, sel: number, d: Descriptor, system16 = false): boolean {
  const idx = sel & 0xfff8;
  let base: number, limit: number;
  if (sel & 4) {
    if (cpu.segAttr[LDTR] & ATTR_UNUSABLE || (cpu.segSel[LDTR] & 0xfffc) === 0) return false;
    base = cpu.segBase[LDTR];
    limit = cpu.segLimit[LDTR];
  } else {
    base = cpu.gdtrBase;
    limit = cpu.gdtrLimit;
  }
  const size = system16 ? 16 : 8;
  if (idx + size - 1 > limit) return false;
  const la = canonicalize(cpu, base + idx);
  d.addr = la;
  const lo = cpu.rd32(la, false) | 0;
  const hi = cpu.rd32(la + 4, false) | 0;
  d.decode(lo, hi);
  if (system16) {
    d.hi2 = cpu.rd32(la + 8, false) | 0;
    d.base += (d.hi2 >>> 0) * 4294967296;
    if (d.base >= 2 ** 63) d.base -= 2 ** 64;
  }
  return true;
}

function canonicalize(cpu: Cpu, la: number): number {
  if (cpu.mode === Mode.Long64 || cpu.efer & (1 << 10)) return la;
  return la % 4294967296;
}

/** Set the accessed bit of a code/data descriptor (SDM 3A §3.4.5.1). */
export function setAccessed(cpu: Cpu, d: Descriptor): void {
  if (d.s && !(d.attr & 1)) {
    d.attr |= 1;
    cpu.wr8(d.addr + 5, (d.hi >>> 8) | 1, false);
  }
}

/** Load the hidden part of a segment register directly. */
export function setSegCache(
  cpu: Cpu,
  seg: number,
  sel: number,
  base: number,
  limit: number,
  attr: number,
): void {
  cpu.segSel[seg] = sel & 0xffff;
  cpu.segBase[seg] = base;
  cpu.segLimit[seg] = limit;
  cpu.segAttr[seg] = attr;
  if (seg === CS || seg === SS) cpu.updateMode();
}

const scratch = new Descriptor();

/**
 * MOV/POP/LxS to a data or stack segment register, with the checks of
 * SDM Vol. 2 "MOV—Move" (protected-mode exceptions) and §5.10.
 */
export function loadSegment(cpu: Cpu, seg: number, sel: number): void {
  sel &= 0xffff;
  if (cpu.mode === Mode.Real) {
    cpu.segSel[seg] = sel;
    cpu.segBase[seg] = sel << 4;
    if (seg === CS || seg === SS) cpu.updateMode();
    return;
  }
  const cpl = cpu.cpl;
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) {
    if (seg === SS) {
      // A null SS is allowed only in 64-bit mode at CPL < 3 with RPL = CPL (SDM Vol. 2 MOV).
      if (!(cpu.mode === Mode.Long64 && cpl !== 3 && rpl === cpl)) cpu.gp(0);
    }
    setSegCache(cpu, seg, sel, 0, 0, ATTR_UNUSABLE | (seg === SS ? cpl << 5 : 0));
    return;
  }
  const d = scratch;
  if (!readDescriptor(cpu, sel, d)) cpu.gp(sel & 0xfffc);
  if (seg === SS) {
    if (rpl !== cpl || d.dpl !== cpl || !d.s || d.isCode || !(d.attr & 2)) cpu.gp(sel & 0xfffc);
    if (!d.present) cpu.fault(SS_, sel & 0xfffc);
  } else {
    if (!d.s || (d.isCode && !(d.attr & 2))) cpu.gp(sel & 0xfffc);
    if (!d.conforming && (rpl > d.dpl || cpl > d.dpl)) cpu.gp(sel & 0xfffc);
    if (!d.present) cpu.fault(NP, sel & 0xfffc);
  }
  setAccessed(cpu, d);
  setSegCache(cpu, seg, sel, d.base, d.limit, d.attr);
}

/** After a return to an outer privilege level, null data segments the new CPL may not use (SDM Vol. 2 RET/IRET). */
export function nullInaccessibleSegments(cpu: Cpu): void {
  for (const s of [ES, DS, FS, GS]) {
    const a = cpu.segAttr[s];
    if (a & ATTR_UNUSABLE) continue;
    const dpl = (a >> 5) & 3;
    const conformingCode = (a & 0x1c) === 0x1c;
    if (!conformingCode && dpl < cpu.cpl) {
      cpu.segSel[s] = 0;
      cpu.segAttr[s] = ATTR_UNUSABLE;
      if (cpu.mode !== Mode.Long64 || s < FS) cpu.segBase[s] = 0;
    }
  }
}

/**
 * Checks for loading CS through a far JMP/CALL/RET/IRET to a code segment
 * (no gates). `targetCpl` is the CPL after the transfer. Raises #GP/#NP.
 */
export function checkCodeSegment(cpu: Cpu, sel: number, d: Descriptor, kind: 'jmp' | 'ret'): void {
  if ((sel & 0xfffc) === 0) cpu.gp(0);
  if (!readDescriptor(cpu, sel, d)) cpu.gp(sel & 0xfffc);
  if (!d.isCode) cpu.gp(sel & 0xfffc);
  const rpl = sel & 3,
    cpl = cpu.cpl;
  if (kind === 'jmp') {
    if (d.conforming) {
      if (d.dpl > cpl) cpu.gp(sel & 0xfffc);
    } else if (rpl > cpl || d.dpl !== cpl) cpu.gp(sel & 0xfffc);
  } else {
    if (rpl < cpl) cpu.gp(sel & 0xfffc);
    if (d.conforming ? d.dpl > rpl : d.dpl !== rpl) cpu.gp(sel & 0xfffc);
  }
  if (cpu.efer & (1 << 10) && d.long && d.attr & (1 << 14)) cpu.gp(sel & 0xfffc); // L and D both set
  if (!d.present) cpu.fault(NP, sel & 0xfffc);
}

/**
 * Load CS from a checked descriptor; its RPL becomes `cpl`. The CPU's CPL itself
 * follows SS.DPL, so callers changing privilege load SS too.
 */
export function loadCs(cpu: Cpu, sel: number, d: Descriptor, cpl: number): void {
  setAccessed(cpu, d);
  cpu.segSel[CS] = (sel & 0xfffc) | cpl;
  cpu.segBase[CS] = d.base;
  cpu.segLimit[CS] = d.limit;
  cpu.segAttr[CS] = d.attr | 1;
  cpu.updateMode();
}

export { TR, LDTR, GP };
