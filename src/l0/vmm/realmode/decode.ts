/**
 * The emulator's instruction decoder for 16- and 32-bit code (SDM 2A chapter 2: legacy
 * prefixes, one- and two-byte opcodes, ModRM and SIB with 16- and 32-bit addressing,
 * displacements, immediates). Which forms take a ModRM byte and which immediates follow comes
 * from the machine's opcode table (src/spec/opcodes.ts), the one table the CPU's own decoder
 * reads: the emulator adds no opcode map of its own, only the handlers (exec.ts).
 */
import { OPCODES, OPCODE_RANGES, type OpcodeEntry } from '../../../spec/opcodes.js';
import { CS, DS, ES, FS, GS, SS } from './state.js';

export interface Decoded {
  /** Length in bytes (prefixes included). */
  len: number;
  /** 0x00-0xff, or 0x0f00-0x0fff for two-byte opcodes. */
  opcode: number;
  /** The opcode-table entry (undefined: no entry, the instruction is reported). */
  entry: OpcodeEntry | undefined;
  /** Operand and address size in bytes. */
  osz: 2 | 4;
  asz: 2 | 4;
  /** Segment override (ES…GS), or -1. */
  seg: number;
  /** 0xf2 / 0xf3 prefix, or 0. */
  rep: number;
  lock: boolean;
  /** ModRM fields (modrm = -1 when the instruction has none). */
  modrm: number;
  mod: number;
  reg: number;
  rm: number;
  sib: number;
  disp: number;
  /** Immediates, as unsigned values of their encoded size (imm2: the second one of ENTER / far pointers). */
  imm: number;
  imm2: number;
  /** Size of the first immediate in bytes (for sign extension). */
  immSize: number;
  /** The instruction's bytes (for reports). */
  bytes: number[];
}

/** Per table entry: does it take a ModRM byte, and which immediates follow. */
interface Form {
  modrm: boolean;
  imms: string[];
}
const forms = new Map<OpcodeEntry, Form>();
function formOf(e: OpcodeEntry): Form {
  let f = forms.get(e);
  if (!f) {
    const ops = e.operands ? e.operands.split(',') : [];
    const modrm = e.reg >= 0 || ops.some((o) => /^[EGMRCDS][a-z]/.test(o) || o === 'M');
    f = { modrm, imms: ops.filter((o) => /^[IJOA][a-z]/.test(o)) };
    forms.set(e, f);
  }
  return f;
}

const rows = new Map<number, OpcodeEntry[]>();
for (const e of OPCODES) {
  const n = OPCODE_RANGES[e.opcode] ?? 1;
  for (let k = 0; k < n; k++) {
    const key = e.opcode + k;
    const list = rows.get(key) ?? [];
    list.push(e);
    rows.set(key, list);
  }
}

const SEG_PREFIX: Record<number, number> = { 0x26: ES, 0x2e: CS, 0x36: SS, 0x3e: DS, 0x64: FS, 0x65: GS };

/** The entry among `list` for these prefixes and ModRM byte (most specific first), or undefined. */
function select(list: OpcodeEntry[], modrm: number, opsize: boolean, rep: number): OpcodeEntry | undefined {
  const mod = modrm >> 6,
    reg = (modrm >> 3) & 7,
    rm = modrm & 7;
  let best: OpcodeEntry | undefined;
  let bestScore = -1;
  for (const e of list) {
    if (e.prefix === 0x66 && !opsize) continue;
    if ((e.prefix === 0xf2 || e.prefix === 0xf3) && rep !== e.prefix) continue;
    if (e.reg >= 0 && e.reg !== reg) continue;
    if (e.modClass === 'mem' && mod === 3) continue;
    if (e.modClass === 'reg' && mod !== 3) continue;
    if (e.rm >= 0 && (mod !== 3 || e.rm !== rm)) continue;
    const score = (e.prefix ? 8 : 0) + (e.rm >= 0 ? 4 : 0) + (e.modClass ? 2 : 0) + (e.reg >= 0 ? 1 : 0);
    if (score > bestScore) {
      best = e;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Decode the instruction whose bytes `fetch(i)` returns (i = 0, 1, …; it may throw the
 * fault of a fetch), for code whose default operand and address size is 32 bits if `code32`.
 */
export function decode(fetch: (i: number) => number, code32: boolean): Decoded {
  const bytes: number[] = [];
  const next = (): number => {
    // An instruction longer than 15 bytes raises #GP(0) (SDM 2A §2.3.11): reported as too long.
    if (bytes.length >= 15) throw new TooLong(bytes);
    const b = fetch(bytes.length);
    bytes.push(b);
    return b;
  };
  let opsize = false,
    adsize = false,
    rep = 0,
    lock = false,
    seg = -1;
  let b = next();
  for (;;) {
    if (b === 0x66) opsize = true;
    else if (b === 0x67) adsize = true;
    else if (b === 0xf2 || b === 0xf3) rep = b;
    else if (b === 0xf0) lock = true;
    else if (b in SEG_PREFIX) seg = SEG_PREFIX[b];
    else break;
    b = next();
  }
  let opcode = b;
  if (b === 0x0f) opcode = 0x0f00 | next();
  const osz: 2 | 4 = code32 !== opsize ? 4 : 2;
  const asz: 2 | 4 = code32 !== adsize ? 4 : 2;
  const d: Decoded = {
    len: 0,
    opcode,
    entry: undefined,
    osz,
    asz,
    seg,
    rep,
    lock,
    modrm: -1,
    mod: 0,
    reg: 0,
    rm: 0,
    sib: -1,
    disp: 0,
    imm: 0,
    imm2: 0,
    immSize: 0,
    bytes,
  };
  const list = rows.get(opcode);
  if (!list) {
    d.len = bytes.length;
    return d;
  }
  // Does any entry of this opcode take a ModRM byte? (Groups select their entry by it.)
  const needModrm = list.some((e) => formOf(e).modrm);
  if (needModrm) {
    const m = next();
    d.modrm = m;
    d.mod = m >> 6;
    d.reg = (m >> 3) & 7;
    d.rm = m & 7;
  }
  const e = select(list, d.modrm < 0 ? 0 : d.modrm, opsize, rep);
  d.entry = e;
  if (d.modrm >= 0 && d.mod !== 3) {
    if (asz === 2) {
      if (d.mod === 1) d.disp = sx(le(next, 1), 1);
      else if (d.mod === 2 || (d.mod === 0 && d.rm === 6)) d.disp = sx(le(next, 2), 2);
    } else {
      if (d.rm === 4) d.sib = next();
      if (d.mod === 1) d.disp = sx(le(next, 1), 1);
      else if (d.mod === 2 || (d.mod === 0 && (d.rm === 5 || (d.rm === 4 && (d.sib & 7) === 5))))
        d.disp = le(next, 4) | 0;
    }
  }
  if (e) {
    const imms = formOf(e).imms;
    for (let k = 0; k < imms.length; k++) {
      const t = imms[k];
      let n: number;
      if (t === 'Ib' || t === 'Jb') n = 1;
      else if (t === 'Iw') n = 2;
      else if (t === 'Iz' || t === 'Iv' || t === 'Jz') n = osz;
      else if (t === 'Ob' || t === 'Ov') n = asz;
      else n = osz; // Ap: offset (the selector follows)
      const v = le(next, n);
      if (k === 0) {
        d.imm = v;
        d.immSize = n;
      } else d.imm2 = v;
      if (t === 'Ap') d.imm2 = le(next, 2);
    }
  }
  d.len = bytes.length;
  return d;
}

export class TooLong {
  constructor(readonly bytes: number[]) {}
}

function le(next: () => number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) v += next() * 2 ** (8 * k);
  return v;
}
/** Sign-extend the low `n` bytes of v (to a signed number). */
export function sx(v: number, n: number): number {
  if (n === 1) return (v << 24) >> 24;
  if (n === 2) return (v << 16) >> 16;
  return v | 0;
}

/** The instruction's bytes in hex, for reports. */
export function hexBytes(bytes: readonly number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
}
