/** L0, the TypeScript hypervisor. */
export { L0, GUEST_RAM_HPA, SLICE, hostMemMiB, type VmSpec } from './l0.js';
export { Vm, type VmEnd } from './vm.js';
export { Stats, type ExitCount } from './stats.js';
export { L0_COST } from './cost.js';
