/** Instruction families contributed in their own files (shifts, bits, strings, system). */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import type { Handler } from '../insn.js';
import { systemHandlers } from './system.js';
import { shiftHandlers } from './shift.js';
import { bitHandlers } from './bits.js';
import { stringHandlers } from './string.js';
import { vmxHandlers } from '../../vmx/instructions.js';

export const familyHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  ...systemHandlers,
  ...shiftHandlers,
  ...bitHandlers,
  ...stringHandlers,
  ...vmxHandlers,
};
