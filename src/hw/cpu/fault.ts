/**
 * The one control-flow mechanism for aborting an instruction: a fault (exception)
 * or, later, a VM exit. The CPU records what happened in its own fields and throws
 * this preallocated sentinel; the step loop catches it. No allocation per fault.
 */
export class CpuAbort {
  readonly kind = 'cpu-abort';
}
export const ABORT = new CpuAbort();

/** cpu.excVector value that marks a VM exit in flight (not an exception). */
export const VMEXIT_MARK = -2;

/** Thrown when the machine must stop (debug-exit, power-off, triple fault, …). */
export class MachineStop {
  constructor(
    readonly reason: 'exit' | 'shutdown' | 'triple-fault' | 'max-cycles' | 'halted' | 'error',
    readonly code: number,
    readonly detail: string,
  ) {}
}
