// A small x86-64 instruction builder for the case generators: it chooses
// operands (registers, memory operands that land inside the operand window,
// immediates), fills in their initial values, and encodes the instruction
// together with a disassembly-like text.
import type { Rng } from './rng.js';
import type { GenCase } from './types.js';
import { ARITH_FLAGS, CODE_ADDR, DF, INIT_RSP, MEM_ADDR, MEM_SIZE } from './types.js';

export type Size = 8 | 16 | 32 | 64;

export const mask = (bits: number): bigint => (1n << BigInt(bits)) - 1n;
const M64 = mask(64);

const R64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi'];
const R32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const R16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'];
const R8 = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil'];
const R8H = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'];

export function regName(n: number, size: Size, legacy8 = false): string {
  if (n >= 8) return `r${n}${size === 64 ? '' : size === 32 ? 'd' : size === 16 ? 'w' : 'b'}`;
  if (size === 64) return R64[n];
  if (size === 32) return R32[n];
  if (size === 16) return R16[n];
  return legacy8 ? R8H[n] : R8[n];
}

export function ptrName(bytes: number): string {
  return { 1: 'byte', 2: 'word', 4: 'dword', 8: 'qword', 10: 'tbyte', 16: 'oword' }[bytes] ?? `${bytes}-byte`;
}

export function hex(v: bigint | number): string {
  const x = BigInt(v);
  return x < 0n ? `-0x${(-x).toString(16)}` : `0x${x.toString(16)}`;
}

/** A value whose low `bits` bits are "interesting" (edges, small, single bits, random). */
export function interesting(r: Rng, bits: number): bigint {
  const m = mask(bits);
  const sign = 1n << BigInt(bits - 1);
  switch (r.int(16)) {
    case 0:
      return 0n;
    case 1:
      return 1n;
    case 2:
      return m;
    case 3:
      return sign;
    case 4:
      return sign - 1n;
    case 5:
      return (sign + BigInt(r.range(-2, 2))) & m;
    case 6:
      return BigInt(r.int(bits + 3)) & m;
    case 7:
      return 1n << BigInt(r.int(bits));
    case 8:
      return mask(r.range(1, bits));
    case 9:
      return m ^ (1n << BigInt(r.int(bits)));
    case 10:
      return (m - BigInt(r.int(4))) & m;
    case 11:
      return r.bits(bits) & r.bits(bits) & r.bits(bits); // sparse
    default:
      return r.bits(bits);
  }
}

/** A 64-bit register value with an interesting low part and random upper bits. */
export function regValue(r: Rng, bits: number): bigint {
  if (bits >= 64 || r.bool(0.2)) return bits >= 64 && r.bool(0.2) ? r.u64() : interesting(r, 64);
  return (r.u64() & ~mask(bits) & M64) | interesting(r, bits);
}

/** Sign-extends the low `bits` of v to a signed BigInt. */
export function sext(v: bigint, bits: number): bigint {
  return BigInt.asIntN(bits, v);
}

export interface MemOpts {
  /** Window offset of the operand (default: random, aligned to `align`). */
  off?: number;
  align?: number;
  /** Registers that must not be used for addressing (their values are chosen elsewhere). */
  exclude?: number[];
  /** Value of RSP when the address is computed (POP r/m computes it after the increment). */
  rspValue?: bigint;
  /** Probability of the 0x67 address-size prefix. */
  addr32Prob?: number;
  /** Operand size name used in the text (bytes); default = size. */
  textBytes?: number;
}

export interface MemRef {
  off: number;
  text: string;
}

/** Builder for one case. */
export class B {
  readonly r: Rng;
  readonly group: string;
  regs: bigint[] = [];
  rflags: bigint;
  mem = new Uint8Array(MEM_SIZE);

  prefixes: number[] = [];
  rexW = false;
  rexR = false;
  rexX = false;
  rexB = false;
  /** Emit a REX byte even if it is 0x40. */
  forceRex = false;
  /** No REX byte allowed (8-bit registers 4..7 are AH, CH, DH, BH). */
  legacy8 = false;
  op: number[] = [];
  modrm = -1;
  sib = -1;
  disp: number[] = [];
  imm: number[] = [];
  /** For RIP-relative operands: the absolute target; disp32 is patched in finish(). */
  ripTarget: bigint | null = null;
  /** Raw bytes emitted instead of the composed encoding (for hand-written cases). */
  raw: number[] | null = null;
  addr32 = false;
  /** Registers holding an address; later writes to them are generator bugs. */
  addrRegs = new Set<number>();

  undefFlags = 0n;
  undefRegs = 0;

  constructor(r: Rng, group: string) {
    this.r = r;
    this.group = group;
    for (let i = 0; i < 16; i++) this.regs.push(regValue(r, r.pick([8, 16, 32, 64])));
    this.regs[4] = INIT_RSP;
    // Arithmetic flags random; DF set now and then (string groups choose their own).
    this.rflags = r.bits(12) & ARITH_FLAGS;
    if (r.bool(0.25)) this.rflags |= DF;
    // Memory: random bytes, sometimes from a tiny alphabet (equal compares).
    if (r.bool(0.25)) {
      const alpha = [r.int(256), r.int(256), 0, 0xff];
      for (let i = 0; i < MEM_SIZE; i++) this.mem[i] = r.pick(alpha);
    } else {
      for (let i = 0; i < MEM_SIZE; i++) this.mem[i] = r.int(256);
    }
  }

  // ---- modes and sizes ------------------------------------------------------

  /** For instructions with 8-bit register operands: legacy (AH..BH, no REX) or REX (SPL..DIL, R8B..). */
  mode8(allowLegacy = true): void {
    if (allowLegacy && this.r.bool(0.5)) this.legacy8 = true;
    else this.forceRex = true;
  }

  /** For other instructions: REX only when needed, sometimes a redundant 0x40. */
  modeAny(): void {
    if (this.r.bool(0.08)) this.forceRex = true;
  }

  /** Sets the operand size (66 / REX.W) and the REX mode. */
  size(size: Size, opts: { redundant66?: boolean } = {}): void {
    if (size === 8) this.mode8();
    else this.modeAny();
    if (size === 16) this.prefixes.push(0x66);
    if (size === 64) {
      this.rexW = true;
      if (opts.redundant66 && this.r.bool(0.05)) this.prefixes.push(0x66); // REX.W wins over 66
    }
    if (size === 8 && opts.redundant66 && this.r.bool(0.03)) this.prefixes.push(0x66);
  }

  nregs(): number {
    return this.legacy8 ? 8 : 16;
  }

  pickReg(exclude: number[] = []): number {
    const n = this.nregs();
    const ok: number[] = [];
    for (let i = 0; i < n; i++) if (!exclude.includes(i)) ok.push(i);
    return this.r.pick(ok);
  }

  rn(n: number, size: Size): string {
    return regName(n, size, this.legacy8);
  }

  // ---- register values ------------------------------------------------------

  private loc8(n: number): { reg: number; shift: bigint } {
    if (this.legacy8 && n >= 4 && n < 8) return { reg: n - 4, shift: 8n };
    return { reg: n, shift: 0n };
  }

  readReg(n: number, size: Size): bigint {
    if (size === 8) {
      const { reg, shift } = this.loc8(n);
      return (this.regs[reg] >> shift) & 0xffn;
    }
    return this.regs[n] & mask(size);
  }

  /** Writes the low `size` bits of register n (or AH..BH), keeping the other bits. */
  writeReg(n: number, size: Size, v: bigint): void {
    let reg = n;
    let shift = 0n;
    if (size === 8) ({ reg, shift } = this.loc8(n));
    if (this.addrRegs.has(reg))
      throw new Error(`${this.group}: writing ${regName(reg, 64)}, which holds an address`);
    if (reg === 4) throw new Error(`${this.group}: RSP is fixed at INIT_RSP`);
    const m = mask(size) << shift;
    this.regs[reg] = ((this.regs[reg] & ~m) | ((v << shift) & m)) & M64;
  }

  /** Gives register n an interesting value of the given size (RSP keeps INIT_RSP). */
  fillReg(n: number, size: Size): void {
    const base = size === 8 ? this.loc8(n).reg : n;
    if (base === 4 || this.addrRegs.has(base)) return;
    this.writeReg(n, size, interesting(this.r, size));
  }

  readMem(off: number, bytes: number): bigint {
    let v = 0n;
    for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.mem[off + i]);
    return v;
  }

  writeMem(off: number, bytes: number, v: bigint): void {
    if (off < 0 || off + bytes > MEM_SIZE) throw new Error(`${this.group}: memory write outside window`);
    for (let i = 0; i < bytes; i++) this.mem[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  }

  // ---- operands -------------------------------------------------------------

  /** ModRM.reg = register n. */
  setReg(n: number): void {
    this.modrmReg(n & 7);
    if (n >= 8) this.rexR = true;
  }

  /** ModRM.reg = opcode extension. */
  setExt(e: number): void {
    this.modrmReg(e);
  }

  /** ModRM.rm = register n (mod 3). */
  setRmReg(n: number): void {
    this.modrm = (this.modrm < 0 ? 0 : this.modrm & 0x38) | 0xc0 | (n & 7);
    if (n >= 8) this.rexB = true;
  }

  private modrmReg(v: number): void {
    this.modrm = (this.modrm < 0 ? 0 : this.modrm & 0xc7) | (v << 3);
  }

  private setModRm(mod: number, rm: number): void {
    const reg = this.modrm < 0 ? 0 : this.modrm & 0x38;
    this.modrm = (mod << 6) | reg | rm;
  }

  /** ModRM.rm = [base] with no displacement (disp8 0 for rbp/r13, SIB for rsp/r12). */
  setRmMem(base: number): void {
    if ((base & 7) === 5) {
      this.setModRm(1, 5);
      this.disp.push(0);
    } else if ((base & 7) === 4) {
      this.setModRm(0, 4);
      this.sib = (4 << 3) | 4;
    } else {
      this.setModRm(0, base & 7);
    }
    if (base >= 8) this.rexB = true;
  }

  /** A register operand in ModRM.reg with an interesting value. */
  regOp(size: Size, exclude: number[] = []): { n: number; text: string } {
    const n = this.pickReg(exclude);
    this.setReg(n);
    this.fillReg(n, size);
    return { n, text: this.rn(n, size) };
  }

  /**
   * An r/m operand: a register (mod 3) or a memory operand inside the window,
   * given an interesting value. Call after the ModRM.reg operand is chosen.
   */
  rmOp(
    size: Size,
    memProb = 0.5,
    mopts: MemOpts = {},
    regExclude: number[] = [],
  ): { isMem: boolean; n: number; off: number; text: string } {
    if (this.r.bool(memProb)) {
      const bytes = size / 8;
      const m = this.memOperand(bytes, mopts);
      this.writeMem(m.off, bytes, interesting(this.r, size));
      return { isMem: true, n: -1, off: m.off, text: m.text };
    }
    const n = this.pickReg(regExclude);
    this.setRmReg(n);
    this.fillReg(n, size);
    return { isMem: false, n, off: -1, text: this.rn(n, size) };
  }

  /**
   * A memory operand whose effective address is MEM_ADDR + off, using a random
   * addressing form: [base], [base+disp8/32], SIB with index and scale,
   * [index*s+disp32], [disp32], [rip+disp32], [rsp+...], with or without 0x67.
   */
  memOperand(bytes: number, o: MemOpts = {}): MemRef {
    const r = this.r;
    const align = o.align ?? 1;
    const off = o.off ?? align * r.int(Math.floor((MEM_SIZE - bytes) / align) + 1);
    if (off < 0 || off + bytes > MEM_SIZE) throw new Error(`${this.group}: operand outside window`);
    const target = MEM_ADDR + BigInt(off);
    const addr32 = r.bool(o.addr32Prob ?? 0.12);
    if (addr32) {
      this.addr32 = true;
      this.prefixes.push(0x67);
    }
    if (r.bool(0.06)) this.prefixes.push(r.pick([0x2e, 0x36, 0x3e, 0x26])); // ignored in 64-bit mode
    const aw = addr32 ? 32 : 64;
    const am = mask(aw);
    const exclude = new Set(o.exclude ?? []);
    const rspValue = o.rspValue ?? INIT_RSP;
    const ptr = ptrName(o.textBytes ?? bytes);
    const an = (n: number) => regName(n, addr32 ? 32 : 64);
    const candidates: number[] = [];
    for (let i = 0; i < this.nregs(); i++) if (!exclude.has(i)) candidates.push(i);
    const nonRsp = candidates.filter((n) => n !== 4);
    // Sets an addressing register's value: low `aw` bits fixed, upper bits random if addr32.
    const setAddrReg = (n: number, v: bigint) => {
      if (n === 4) throw new Error('rsp value is fixed');
      this.regs[n] = addr32 ? (r.u64() & ~am) | (v & am) : v & M64;
      this.addrRegs.add(n);
    };
    const fmtDisp = (d: bigint) => (d === 0n ? '' : d < 0n ? `-${hex(-d)}` : `+${hex(d)}`);
    const dispBytes = (d: bigint, n: number) => {
      for (let i = 0; i < n; i++) this.disp.push(Number((BigInt.asUintN(64, d) >> BigInt(8 * i)) & 0xffn));
    };

    const form = r.pick(['base', 'base', 'base', 'sib', 'sib', 'sib', 'index', 'abs', 'rip', 'rsp'] as const);
    if (form === 'rip') {
      this.setModRm(0, 5);
      this.ripTarget = target;
      this.disp.push(0, 0, 0, 0);
      return { off, text: `${ptr} [${addr32 ? 'eip' : 'rip'}+disp → ${hex(target)}]` };
    }
    if (form === 'abs' || nonRsp.length === 0) {
      this.setModRm(0, 4);
      this.sib = (0 << 6) | (4 << 3) | 5; // no index, no base: [disp32]
      dispBytes(target, 4);
      return { off, text: `${ptr} [${hex(target)}]` };
    }
    if (form === 'index') {
      const idx = r.pick(nonRsp);
      const sc = r.int(4);
      const s = 1n << BigInt(sc);
      const v = BigInt(r.int(1 << 22));
      const d = target - v * s; // fits in int32: target ~ 2^28
      setAddrReg(idx, v);
      this.setModRm(0, 4);
      this.sib = (sc << 6) | ((idx & 7) << 3) | 5;
      if (idx >= 8) this.rexX = true;
      dispBytes(d, 4);
      return { off, text: `${ptr} [${an(idx)}*${s}${fmtDisp(d)}]` };
    }
    if (form === 'rsp' && candidates.includes(4)) {
      // [rsp+disp] or [rsp+index*s+disp]; RSP holds rspValue.
      const useIndex = r.bool(0.4) && nonRsp.length > 0;
      let d = target - rspValue;
      let text = 'rsp';
      let sibIndex = 4;
      let sc = 0;
      if (useIndex) {
        const idx = r.pick(nonRsp);
        sc = r.int(4);
        const k = BigInt(r.range(-8, 8));
        setAddrReg(idx, k);
        d -= k << BigInt(sc);
        sibIndex = idx & 7;
        if (idx >= 8) this.rexX = true;
        text += `+${an(idx)}*${1 << sc}`;
      }
      const mod = d === 0n && r.bool(0.5) ? 0 : d >= -128n && d <= 127n && r.bool(0.7) ? 1 : 2;
      this.setModRm(mod, 4);
      this.sib = (sc << 6) | (sibIndex << 3) | 4;
      dispBytes(d, mod === 0 ? 0 : mod === 1 ? 1 : 4);
      return { off, text: `${ptr} [${addr32 ? 'esp' : 'rsp'}${text.slice(3)}${fmtDisp(d)}]` };
    }
    // Displacement: none (not with rbp/r13 as base), disp8 or disp32.
    const pickMod = (base: number) => {
      const mod = r.pick([0, 1, 1, 2]);
      return mod === 0 && (base & 7) === 5 ? 1 : mod;
    };
    const pickDisp = (mod: number) =>
      mod === 0
        ? 0n
        : mod === 1
          ? BigInt(r.range(-128, 127))
          : r.bool(0.5)
            ? BigInt(r.range(-4096, 4096))
            : sext(r.bits(32), 32);
    if (form === 'base' || nonRsp.length < 2) {
      const base = r.pick(nonRsp);
      const mod = pickMod(base);
      const d = pickDisp(mod);
      setAddrReg(base, target - d);
      if ((base & 7) === 4) {
        // r12 as base needs a SIB byte (index none).
        this.setModRm(mod, 4);
        this.sib = (r.int(4) << 6) | (4 << 3) | (base & 7); // scale is ignored without index
      } else {
        this.setModRm(mod, base & 7);
      }
      if (base >= 8) this.rexB = true;
      dispBytes(d, mod === 0 ? 0 : mod === 1 ? 1 : 4);
      return { off, text: `${ptr} [${an(base)}${fmtDisp(d)}]` };
    }
    // SIB: base + index*scale + disp. Index may equal base.
    const base = r.pick(nonRsp);
    const idx = r.bool(0.1) ? base : r.pick(nonRsp);
    const sc = idx === base ? r.range(1, 3) : r.int(4); // base == index: 1+s must be odd
    const s = 1n << BigInt(sc);
    const mod = pickMod(base);
    const d = pickDisp(mod);
    if (idx === base) {
      // v*(1+s) = target - d (mod 2^aw), 1+s odd hence invertible.
      const v = (((target - d) & am) * modInverse(1n + s, aw)) & am;
      setAddrReg(base, v);
    } else {
      const iv = r.bool(0.5) ? BigInt(r.range(-64, 64)) : r.u64();
      setAddrReg(idx, iv);
      setAddrReg(base, target - d - ((this.regs[idx] & am) << BigInt(sc)));
    }
    this.setModRm(mod, 4);
    this.sib = (sc << 6) | ((idx & 7) << 3) | (base & 7);
    if (base >= 8) this.rexB = true;
    if (idx >= 8) this.rexX = true;
    dispBytes(d, mod === 0 ? 0 : mod === 1 ? 1 : 4);
    return { off, text: `${ptr} [${an(base)}+${an(idx)}*${s}${fmtDisp(d)}]` };
  }

  /** A memory operand that is never accessed (LEA, NOP): random registers, any form. */
  freeMemOperand(addr32Prob = 0.2): string {
    const r = this.r;
    const addr32 = r.bool(addr32Prob);
    if (addr32) {
      this.addr32 = true;
      this.prefixes.push(0x67);
    }
    const an = (n: number) => regName(n, addr32 ? 32 : 64);
    const fmtDisp = (d: bigint) => (d === 0n ? '' : d < 0n ? `-${hex(-d)}` : `+${hex(d)}`);
    const disp = (d: bigint, n: number) => {
      for (let i = 0; i < n; i++) this.disp.push(Number((BigInt.asUintN(64, d) >> BigInt(8 * i)) & 0xffn));
    };
    const nr = this.nregs();
    const form = r.int(6);
    if (form === 0) {
      const d = sext(r.bits(32), 32);
      this.setModRm(0, 5);
      disp(d, 4);
      return `[${addr32 ? 'eip' : 'rip'}${fmtDisp(d)}]`;
    }
    if (form === 1) {
      const d = sext(r.bits(32), 32);
      const idx = r.int(nr);
      const sc = r.int(4);
      this.setModRm(0, 4);
      this.sib = (sc << 6) | ((idx & 7) << 3) | 5;
      if (idx >= 8) this.rexX = true;
      disp(d, 4);
      return idx === 4 ? `[${hex(BigInt.asUintN(32, d))}]` : `[${an(idx)}*${1 << sc}${fmtDisp(d)}]`;
    }
    const mod = r.int(3);
    const d = mod === 0 ? 0n : mod === 1 ? BigInt(r.range(-128, 127)) : sext(r.bits(32), 32);
    const base = r.int(nr);
    if (form === 2 && (base & 7) !== 4) {
      if (mod === 0 && (base & 7) === 5) {
        this.setModRm(0, 5);
        this.ripTarget = null;
        disp(d, 4);
        return `[${addr32 ? 'eip' : 'rip'}${fmtDisp(d)}]`;
      }
      this.setModRm(mod, base & 7);
      if (base >= 8) this.rexB = true;
      disp(d, mod === 0 ? 0 : mod === 1 ? 1 : 4);
      return `[${an(base)}${fmtDisp(d)}]`;
    }
    const idx = r.int(nr);
    const sc = r.int(4);
    this.setModRm(mod, 4);
    this.sib = (sc << 6) | ((idx & 7) << 3) | (base & 7);
    if (base >= 8) this.rexB = true;
    if (idx >= 8) this.rexX = true;
    let d2 = d;
    if (mod === 0 && (base & 7) === 5) {
      d2 = sext(r.bits(32), 32);
      disp(d2, 4);
    } else {
      disp(d, mod === 0 ? 0 : mod === 1 ? 1 : 4);
    }
    const parts: string[] = [];
    if (!(mod === 0 && (base & 7) === 5)) parts.push(an(base));
    if (idx !== 4) parts.push(`${an(idx)}*${1 << sc}`);
    return `[${parts.join('+')}${fmtDisp(d2)}]`;
  }

  immBytes(bytes: number, v: bigint): void {
    for (let i = 0; i < bytes; i++) this.imm.push(Number((BigInt.asUintN(64, v) >> BigInt(8 * i)) & 0xffn));
  }

  // ---- encoding -------------------------------------------------------------

  bytes(): Uint8Array {
    if (this.raw) return Uint8Array.from(this.raw);
    const out: number[] = [...this.prefixes];
    const rex = 0x40 | (this.rexW ? 8 : 0) | (this.rexR ? 4 : 0) | (this.rexX ? 2 : 0) | (this.rexB ? 1 : 0);
    if (rex !== 0x40 || this.forceRex) {
      if (this.legacy8) throw new Error(`${this.group}: REX needed in legacy 8-bit mode`);
      out.push(rex);
    }
    out.push(...this.op);
    if (this.modrm >= 0) out.push(this.modrm);
    if (this.sib >= 0) out.push(this.sib);
    const dispAt = out.length;
    out.push(...this.disp, ...this.imm);
    if (this.ripTarget !== null) {
      const next = CODE_ADDR + BigInt(out.length);
      const d = this.ripTarget - next;
      for (let i = 0; i < 4; i++) out[dispAt + i] = Number((BigInt.asUintN(32, d) >> BigInt(8 * i)) & 0xffn);
    }
    if (out.length > 15) throw new Error(`${this.group}: instruction longer than 15 bytes`);
    return Uint8Array.from(out);
  }

  finish(text: string): GenCase {
    return {
      group: this.group,
      code: this.bytes(),
      regs: this.regs.slice(),
      rflags: this.rflags,
      mem: this.mem.slice(),
      text,
      undefFlags: this.undefFlags,
      undefRegs: this.undefRegs,
    };
  }
}

function modInverse(a: bigint, bits: number): bigint {
  // Newton iteration for the inverse of an odd number modulo 2^bits.
  const m = mask(bits);
  let x = a;
  for (let i = 0; i < 7; i++) x = (x * (2n - a * x)) & m;
  return x;
}
