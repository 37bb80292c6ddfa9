/**
 * One emulated instruction: fetch at CS:EIP, decode (decode.ts, from the machine's opcode
 * table), run the handler of its mnemonic, and deliver what it raises. The handler table is
 * data: mnemonics of src/spec/opcodes.ts → semantics; a mnemonic without a handler (x87, SSE,
 * VMX, …) stops the VM with a report naming the bytes and the address, never a guess.
 *
 * Faults: the instruction's effects are undone (the snapshot, `Emu.snap`; a REP string keeps
 * its completed elements) and, in real mode, the exception goes through the IVT with the
 * faulting instruction's IP (events.ts). In protected mode — emulated only until the segment
 * caches are valid for VM entry — exceptions are reported instead (delivery through the IDT
 * is not emulated).
 */
import { Emu } from './emu.js';
import { TooLong, decode, hexBytes } from './decode.js';
import { deliverReal } from './events.js';
import { ARITH_HANDLERS } from './ops-arith.js';
import { CONTROL_HANDLERS } from './ops-control.js';
import { DATA_HANDLERS } from './ops-data.js';
import { STRING_HANDLERS } from './ops-string.js';
import { SYSTEM_HANDLERS } from './ops-system.js';
import { BLOCK_MOV_SS, BLOCK_STI, CS, DB, GP, TF, RmFault, RmStop } from './state.js';
import type { Handler } from './handler.js';
import { EXCEPTION_NAMES } from '../../../spec/exceptions.js';

/** Mnemonic → semantics, for every instruction the emulator implements. */
export const HANDLERS: Readonly<Record<string, Handler>> = {
  ...ARITH_HANDLERS,
  ...DATA_HANDLERS,
  ...CONTROL_HANDLERS,
  ...STRING_HANDLERS,
  ...SYSTEM_HANDLERS,
};

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Where the current instruction is, for reports: CS:IP and the linear address. */
export function where(e: Emu, ip = e.s.eip): string {
  const cs = e.s.seg[CS];
  return `${cs.sel.toString(16).padStart(4, '0')}:${ip.toString(16).padStart(4, '0')} (linear ${hex((cs.base + ip) % 4294967296)})`;
}

/** Raise exception `vector` with return address `ip` (real mode: the IVT; otherwise reported). */
export function raise(e: Emu, vector: number, errorCode: number, ip: number): void {
  if (e.s.real) return deliverReal(e, vector, ip);
  const name = EXCEPTION_NAMES[vector] || `vector ${vector}`;
  throw new RmStop(
    `${name}${errorCode >= 0 ? `(${hex(errorCode)})` : ''} at ${where(e, ip)} in protected mode with ` +
      `segment state VM entry refuses; L0 does not emulate delivery through the IDT`,
    true,
  );
}

/** Execute one instruction (or one batch of a REP string instruction). */
export function step(e: Emu): void {
  const s = e.s;
  e.snap.copyFrom(s);
  e.start = s.eip;
  e.elements = 0;
  e.resetEa();
  const tf = (s.eflags & TF) !== 0;
  // Blocking by STI / MOV SS covers the boundary after one instruction only (SDM 3A §6.8.3).
  s.interruptibility &= ~(BLOCK_STI | BLOCK_MOV_SS);
  try {
    const code32 = e.code32;
    const csSeg = s.seg[CS];
    const d = decode((i) => {
      // The offset wraps at 64 KiB in 16-bit code, as IP does.
      const off = (e.start + i) % (code32 ? 4294967296 : 65536);
      if (!s.real && off > csSeg.limit) throw new RmFault(GP, 0);
      return e.bus.read((csSeg.base + off) % 4294967296, 1, 'fetch');
    }, code32);
    e.d = d;
    s.eip = (e.start + d.len) % (code32 ? 4294967296 : 65536);
    const h = d.entry ? HANDLERS[d.entry.mnemonic] : undefined;
    if (!h) {
      const what = d.entry ? d.entry.mnemonic : 'an opcode the machine does not implement';
      throw new RmStop(
        `the instruction ${hexBytes(d.bytes)} (${what}) at ${where(e, e.start)} is not emulated`,
        true,
      );
    }
    h(e);
  } catch (x) {
    let f = x;
    if (f instanceof RmStop && !f.located) throw new RmStop(`${f.why}, at ${where(e, e.start)}`, true);
    if (f instanceof TooLong) f = new RmFault(GP, 0);
    if (!(f instanceof RmFault)) throw f;
    s.copyFrom(e.snap);
    raise(e, f.vector, f.errorCode, e.start);
    return;
  }
  // A single-step trap after an instruction that began with TF = 1 (SDM 3A §17.3.1.4); INT n,
  // INT3 and INTO clear TF on the way to their handler, which runs without the trap.
  const m = e.d.entry?.mnemonic;
  if (tf && !s.halted && m !== 'INT' && m !== 'INT3' && m !== 'INTO') raise(e, DB, -1, s.eip);
}

export { Emu };
