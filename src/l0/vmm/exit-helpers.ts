/** Completing an exiting instruction from an exit handler, with L0's software cost charged. */
import { L0_COST } from '../cost.js';
import type { ExitContext } from './exits.js';
import { skipInstruction } from './guest-state.js';

/** Advance the guest past the exiting instruction (blocking by STI/MOV SS ends; TF traps). */
export function skipInsn(c: ExitContext): void {
  skipInstruction(c.host, c.exit.instructionLength);
  c.host.charge(3 * L0_COST.vmcsAccess);
}
