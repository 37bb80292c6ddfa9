/**
 * The dispatch table: every mnemonic of src/spec/opcodes.ts maps to a handler
 * factory of one instruction family. A mnemonic with no handler decodes to #UD.
 */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import { setResolver, setUdHandler, setTooLongHandler } from '../decode.js';
import type { Handler } from '../insn.js';
import { UD, GP } from '../regs.js';
import { aluHandlers } from './alu.js';
import { dataHandlers } from './data.js';
import { controlHandlers } from './control.js';
import { familyHandlers } from './families.js';

const ud: Handler = (cpu) => cpu.fault(UD);

export const HANDLERS: Record<string, (e: OpcodeEntry) => Handler> = {
  ...aluHandlers,
  ...dataHandlers,
  ...controlHandlers,
  ...familyHandlers,
};

let installed = false;
export function installHandlers(): void {
  if (installed) return;
  installed = true;
  setUdHandler(ud);
  setTooLongHandler((cpu) => cpu.fault(GP, 0));
  setResolver((e) => HANDLERS[e.mnemonic]?.(e) ?? ud);
}
