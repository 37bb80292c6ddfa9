/**
 * Interrupts and exceptions in real mode (SDM 3A §20.1.4 "Interrupt and Exception Handling"):
 * the interrupt vector table at IDTR.base (0 after reset; LIDT moves it) holds a 4-byte
 * segment:offset per vector; the CPU pushes FLAGS, CS and IP (16 bits each, no error code),
 * clears IF, TF and AC (SDM 2A INT n, real-address-mode operation) and jumps there. A vector
 * beyond the IDT limit raises #GP; a fault while delivering raises #DF; a fault while
 * delivering #DF is a shutdown (triple fault), which stops the VM (as a triple-fault exit does).
 */
import type { Emu } from './emu.js';
import { AC, CS, DF_, GP, IF, RF, TF, RmFault, RmStop } from './state.js';

/** Push FLAGS/CS/IP and vector through the IVT. `ip` is the return address (the next or the faulting instruction). */
function deliverOnce(e: Emu, vector: number, ip: number): void {
  const s = e.s;
  if (vector * 4 + 3 > s.idtrLimit) throw new RmFault(GP, vector * 8 + 2);
  const ent = e.readLinear((s.idtrBase + vector * 4) % 4294967296, 4);
  e.push(2, s.eflags);
  e.push(2, s.seg[CS].sel);
  e.push(2, ip);
  s.seg[CS].sel = ent >>> 16;
  s.seg[CS].base = (ent >>> 16) << 4;
  s.eip = ent & 0xffff;
  s.eflags &= ~(IF | TF | AC | RF);
  s.halted = false;
}

/**
 * Deliver `vector` in real mode with the double-fault rules (SDM 3A §6.15 Table 6-5 collapsed to
 * real mode, where every exception delivery fault is #GP or #SS): a fault on the way → #DF; a
 * fault delivering #DF → shutdown. SP is restored before the retry so a partial push does not
 * count (the bytes it wrote below SP are harmless).
 */
export function deliverReal(e: Emu, vector: number, ip: number): void {
  const s = e.s;
  const saved = { sp: s.gpr[4] };
  let v = vector;
  for (let attempt = 0; ; attempt++) {
    try {
      deliverOnce(e, v, ip);
      return;
    } catch (x) {
      if (!(x instanceof RmFault)) throw x;
      s.gpr[4] = saved.sp;
      if (attempt >= 1 || v === DF_)
        throw new RmStop(`triple fault in real mode (delivering vector ${vector} failed)`);
      v = DF_;
    }
  }
}
