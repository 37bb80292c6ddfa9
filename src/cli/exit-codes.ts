/**
 * Process exit statuses of `turtles run` (docs/CLI.md). The guest's debug-exit
 * write of V gives (V << 1) | 1, always odd, as in QEMU; everything else the
 * runner reports uses distinct even statuses.
 */
export const EXIT_POWER_OFF = 0;
export const EXIT_BAD_INPUT = 2;
export const EXIT_TRIPLE_FAULT = 4;
export const EXIT_MAX_CYCLES = 6;
export const EXIT_HALTED = 8;
export const EXIT_INTERNAL = 10;
/** L0 stopped its VM (an exit it cannot handle, a guest halted forever, a triple fault); the reason is on stderr. */
export const EXIT_VM_STOPPED = 12;

export function debugExitStatus(v: number): number {
  return ((v << 1) | 1) & 0xff;
}
