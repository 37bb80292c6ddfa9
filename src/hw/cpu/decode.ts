/**
 * The instruction decoder (SDM Vol. 2 chapter 2): legacy prefixes, REX, one- and
 * two-byte opcodes, ModRM/SIB with 16/32/64-bit addressing and RIP-relative forms,
 * immediates. The opcode table in src/spec/opcodes.ts says which forms take a
 * ModRM byte and which immediates follow.
 */
import { OPCODES, OPCODE_RANGES, type OpcodeEntry } from '../../spec/opcodes.js';
import { Insn, type Handler } from './insn.js';
import { CS, DS, ES, FS, GS, SS } from './regs.js';

export interface DecodeEnv {
  /** Read the instruction byte at offset `i` from the start (may raise #PF/#GP). */
  fetch(i: number): number;
  /** 16, 32 or 64: the default operand/address size of the code segment. */
  bits: number;
}

type Resolver = (e: OpcodeEntry) => Handler;

/** A handler that can offer a specialized variant once the instruction is decoded. */
export type SpecializableHandler = Handler & { specialize?: (i: Insn) => Handler | undefined };

interface Row {
  entries: OpcodeEntry[];
}

const rows = new Map<number, Row>();
for (const e of OPCODES) {
  const n = OPCODE_RANGES[e.opcode] ?? 1;
  for (let k = 0; k < n; k++) {
    const key = e.opcode + k;
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { entries: [] }));
    r.entries.push(e);
  }
}

let resolver: Resolver | undefined;
const handlerCache = new Map<OpcodeEntry, Handler>();
/** The CPU installs the function mapping an opcode entry to its handler. */
export function setResolver(r: Resolver): void {
  resolver = r;
  handlerCache.clear();
}
let udHandler: Handler = () => {};
export function setUdHandler(h: Handler): void {
  udHandler = h;
}
let gpHandler: Handler = () => {};
/** Handler for instructions longer than 15 bytes (#GP(0), SDM Vol. 2 §2.3.11). */
export function setTooLongHandler(h: Handler): void {
  gpHandler = h;
}

function handlerFor(e: OpcodeEntry): Handler {
  let h = handlerCache.get(e);
  if (!h) {
    h = resolver ? resolver(e) : udHandler;
    handlerCache.set(e, h);
  }
  return h;
}

class TooLong extends Error {}

const LOCKABLE = new Set([
  'ADD',
  'ADC',
  'AND',
  'BTC',
  'BTR',
  'BTS',
  'CMPXCHG',
  'CMPXCHG8B',
  'DEC',
  'INC',
  'NEG',
  'NOT',
  'OR',
  'SBB',
  'SUB',
  'XOR',
  'XADD',
  'XCHG',
]);

/** Decode one instruction. Raises only through env.fetch (paging faults); invalid encodings get the #UD handler. */
export function decode(env: DecodeEnv, out: Insn): Insn {
  let pos = 0;
  const fetch = (): number => {
    if (pos >= 15) throw new TooLong();
    return env.fetch(pos++);
  };
  const bits = env.bits;
  try {
    return decodeInner(out, bits, fetch, () => pos);
  } catch (e) {
    if (e instanceof TooLong) {
      out.fn = gpHandler;
      out.mnemonic = '(too long)';
      out.len = 15;
      return out;
    }
    throw e;
  }
}

function decodeInner(i: Insn, bits: number, fetch: () => number, posOf: () => number): Insn {
  let opsizePrefix = false,
    asizePrefix = false,
    rep = 0,
    lock = false,
    seg = -1,
    rex = 0;
  let b: number;
  for (;;) {
    b = fetch();
    if (b === 0x66) opsizePrefix = true;
    else if (b === 0x67) asizePrefix = true;
    else if (b === 0xf2 || b === 0xf3) rep = b;
    else if (b === 0xf0) lock = true;
    else if (b === 0x26) seg = ES;
    else if (b === 0x2e) seg = CS;
    else if (b === 0x36) seg = SS;
    else if (b === 0x3e) seg = DS;
    else if (b === 0x64) seg = FS;
    else if (b === 0x65) seg = GS;
    else if (bits === 64 && b >= 0x40 && b <= 0x4f) {
      // REX must come right before the opcode; a REX followed by a legacy prefix is ignored.
      rex = b;
      b = fetch();
      if (b >= 0x40 && b <= 0x4f) {
        for (;;) {
          rex = b;
          b = fetch();
          if (b < 0x40 || b > 0x4f) break;
        }
      }
      if (isLegacyPrefix(b)) {
        rex = 0;
        // reprocess b as a prefix
        if (b === 0x66) opsizePrefix = true;
        else if (b === 0x67) asizePrefix = true;
        else if (b === 0xf2 || b === 0xf3) rep = b;
        else if (b === 0xf0) lock = true;
        else seg = segOf(b);
        continue;
      }
      break;
    } else break;
  }
  // In 64-bit mode, CS/SS/DS/ES overrides are ignored (SDM Vol. 1 §3.3.7.1).
  if (bits === 64 && seg >= 0 && seg !== FS && seg !== GS) seg = -1;

  let opcode = b;
  if (b === 0x0f) {
    const b2 = fetch();
    opcode = 0x0f00 | b2;
    if (b2 === 0x38 || b2 === 0x3a) opcode = (opcode << 8) | fetch();
  }
  i.opcode = opcode;
  i.rex = rex;
  i.rep = rep;
  i.lock = lock;
  i.segOverride = seg;
  i.low3 = opcode & 0xf;
  const row = rows.get(opcode);
  const rexW = (rex & 8) !== 0,
    rexR = (rex & 4) !== 0 ? 8 : 0,
    rexX = (rex & 2) !== 0 ? 8 : 0,
    rexB = (rex & 1) !== 0 ? 8 : 0;

  // Does any candidate need ModRM?
  let needModrm = false;
  if (row) for (const e of row.entries) if (takesModrm(e)) needModrm = true;
  let modrm = -1;
  if (needModrm) modrm = fetch();
  const mod = modrm >> 6,
    regField = (modrm >> 3) & 7,
    rmField = modrm & 7;

  let entry: OpcodeEntry | undefined;
  if (row) {
    let best: OpcodeEntry | undefined;
    for (const e of row.entries) {
      if (e.reg >= 0 && e.reg !== regField) continue;
      if (e.modClass === 'mem' && mod === 3) continue;
      if (e.modClass === 'reg' && mod !== 3) continue;
      if (e.rm >= 0 && e.rm !== rmField) continue;
      if (e.prefix && e.prefix !== rep && !(e.prefix === 0x66 && opsizePrefix)) continue;
      // Prefer the most specific match (mandatory prefix, then rm).
      if (!best || specificity(e) > specificity(best)) best = e;
    }
    entry = best;
  }
  const bits64 = bits === 64;
  if (entry && bits64 && entry.attrs.includes('i64')) entry = undefined;
  if (entry && !bits64 && entry.attrs.includes('o64')) entry = undefined;

  // Operand size (SDM Vol. 1 §3.6): REX.W wins over 0x66; d64/f64 entries default to 64.
  let size: number;
  if (bits64) {
    if (entry?.attrs.includes('f64')) size = 8;
    else if (rexW) size = 8;
    else if (entry?.attrs.includes('d64')) size = opsizePrefix ? 2 : 8;
    else size = opsizePrefix ? 2 : 4;
  } else {
    const def = bits === 32 ? 4 : 2;
    size = opsizePrefix ? 6 - def : def;
  }
  // Jcc/CALL/JMP near with 0x66 in 64-bit mode: Intel ignores the prefix (stays 64).
  const asize = bits64 ? (asizePrefix ? 4 : 8) : bits === 32 ? (asizePrefix ? 2 : 4) : asizePrefix ? 4 : 2;
  i.asize = asize;

  const ops = entry ? entry.operands : '';
  // Byte-sized operations: any byte register/memory operand and no v/z-sized one.
  if (
    entry &&
    /(^|,)(Eb|Gb|AL|Zb|Ob|Xb|Yb)(,|$)/.test(ops) &&
    !/(^|,)(Gv|Ev|Zv|rAX|eAX|Gz|Xv|Yv|Xz|Yz|Ov)(,|$)/.test(ops)
  )
    size = 1;
  i.size = size;

  // ModRM and SIB.
  i.hasModrm = needModrm;
  i.mem = false;
  i.base = -1;
  i.index = -1;
  i.scale = 0;
  i.disp = 0;
  i.seg = seg >= 0 ? seg : DS;
  if (needModrm) {
    i.mod = mod;
    i.reg = regField | rexR;
    if (mod === 3) {
      i.rm = rmField | rexB;
    } else {
      i.mem = true;
      i.rm = rmField;
      let defSeg = DS;
      if (asize === 2) {
        // 16-bit addressing (SDM Vol. 2 Table 2-1).
        const BASES = [3, 3, 5, 5, 6, 7, 5, 3];
        const INDEX = [6, 7, 6, 7, -1, -1, -1, -1];
        if (mod === 0 && rmField === 6) {
          i.disp = s16(fetch() | (fetch() << 8));
        } else {
          i.base = BASES[rmField];
          i.index = INDEX[rmField];
          if (rmField === 2 || rmField === 3 || rmField === 6) defSeg = SS;
          if (mod === 1) i.disp = s8(fetch());
          else if (mod === 2) i.disp = s16(fetch() | (fetch() << 8));
        }
      } else {
        let rm = rmField;
        if (rm === 4) {
          const sib = fetch();
          const ss = sib >> 6,
            idx = ((sib >> 3) & 7) | rexX,
            base = sib & 7;
          i.scale = ss;
          i.index = idx === 4 ? -1 : idx;
          if (base === 5 && mod === 0) {
            i.base = -1;
            i.disp = fetch32(fetch);
          } else i.base = base | rexB;
          rm = -1;
        } else if (rm === 5 && mod === 0) {
          if (bits64) i.base = 16; // RIP-relative
          i.disp = fetch32(fetch);
          rm = -1;
        } else {
          i.base = rm | rexB;
        }
        if (mod === 1) i.disp = s8(fetch());
        else if (mod === 2) i.disp = fetch32(fetch);
        // rSP- and rBP-based forms default to SS (SDM Vol. 1 §3.7.5); R12/R13 do not.
        if (i.base === 4 || i.base === 5) defSeg = SS;
      }
      i.seg = seg >= 0 ? seg : defSeg;
    }
  } else {
    i.reg = 0;
    i.rm = (opcode & 7) | rexB;
  }
  // Z-form register (opcode low bits + REX.B).
  if (/Z[bvq]/.test(ops) || (entry && entry.mnemonic === 'BSWAP')) i.rm = (opcode & 7) | rexB;

  // Immediates, in operand order: the first one lands in imm/immHi (sign-extended),
  // a second one (ENTER's Ib, far pointers' selector) in imm2.
  i.imm = 0;
  i.immHi = 0;
  i.imm2 = 0;
  let nImm = 0;
  const put = (v: number): void => {
    if (nImm++ === 0) {
      i.imm = v | 0;
      i.immHi = v < 0 ? -1 : 0;
    } else i.imm2 = v;
  };
  if (entry) {
    for (const op of ops.split(',')) {
      switch (op) {
        case 'Ib':
        case 'Jb':
          put(nImm === 0 ? s8(fetch()) : fetch());
          break;
        case 'Iw':
          put(fetch() | (fetch() << 8));
          break;
        case 'Iz':
          put(size === 2 ? s16(fetch() | (fetch() << 8)) : fetch32(fetch));
          break;
        case 'Iv':
          if (size === 8) {
            i.imm = fetch32(fetch);
            i.immHi = fetch32(fetch);
            nImm++;
          } else put(size === 2 ? fetch() | (fetch() << 8) : fetch32(fetch));
          break;
        case 'Jz':
          put(size === 2 && !bits64 ? s16(fetch() | (fetch() << 8)) : fetch32(fetch));
          break;
        case 'Ob':
        case 'Ov':
          i.mem = true;
          i.base = -1;
          i.index = -1;
          i.seg = seg >= 0 ? seg : DS;
          if (asize === 8) {
            const lo = fetch32(fetch),
              hi = fetch32(fetch);
            i.disp = hi * 4294967296 + (lo >>> 0);
          } else if (asize === 4) i.disp = fetch32(fetch) >>> 0;
          else i.disp = fetch() | (fetch() << 8);
          break;
        case 'Ap':
          i.imm = size === 2 ? fetch() | (fetch() << 8) : fetch32(fetch) >>> 0;
          i.imm2 = fetch() | (fetch() << 8);
          break;
      }
    }
  }
  i.len = posOf();
  // LOCK is valid only on the read-modify-write instructions with a memory destination (SDM Vol. 2 LOCK).
  if (lock && entry && !(LOCKABLE.has(entry.mnemonic) && i.mem && /^[EM]/.test(ops))) entry = undefined;
  if (entry) {
    const h = handlerFor(entry) as SpecializableHandler;
    // A family may pick a faster handler for this exact form (size, register vs memory).
    i.fn = (h.specialize && h.specialize(i)) || h;
  } else i.fn = udHandler;
  i.mnemonic = entry ? entry.mnemonic : '(bad)';
  i.operands = ops;
  return i;
}

function isLegacyPrefix(b: number): boolean {
  return (
    b === 0x66 ||
    b === 0x67 ||
    b === 0xf2 ||
    b === 0xf3 ||
    b === 0xf0 ||
    b === 0x26 ||
    b === 0x2e ||
    b === 0x36 ||
    b === 0x3e ||
    b === 0x64 ||
    b === 0x65
  );
}
function segOf(b: number): number {
  return b === 0x26 ? ES : b === 0x2e ? CS : b === 0x36 ? SS : b === 0x3e ? DS : b === 0x64 ? FS : GS;
}
function specificity(e: OpcodeEntry): number {
  return (e.prefix ? 4 : 0) + (e.rm >= 0 ? 2 : 0) + (e.modClass ? 1 : 0) + (e.reg >= 0 ? 1 : 0);
}
/** ModRM-coded operands are a method letter and a lower-case size ("Ev", "Gb", "M", "Cd"); "DX" and "CL" are fixed registers. */
function takesModrm(e: OpcodeEntry): boolean {
  return e.reg >= 0 || e.operands.split(',').some((op) => /^[EGMRSCD][a-z]*$/.test(op));
}
function s8(v: number): number {
  return (v << 24) >> 24;
}
function s16(v: number): number {
  return (v << 16) >> 16;
}
function fetch32(fetch: () => number): number {
  return fetch() | (fetch() << 8) | (fetch() << 16) | (fetch() << 24) | 0;
}
