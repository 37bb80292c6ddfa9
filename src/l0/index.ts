/** L0, the TypeScript hypervisor (first slice: one VM, one vCPU, EPT). */
export { Vm, GUEST_RAM_HPA, type VmEnd, type ExitCount } from './vm.js';
export { L0_COST } from './cost.js';
