/** L0, the TypeScript hypervisor. */
export { L0, GUEST_RAM_HPA, L0_POOL_START, SLICE, hostMemMiB, type VmSpec } from './l0.js';
export { Vm, type VmEnd } from './vm.js';
export { Stats, type ExitCount } from './stats.js';
export { L0_COST } from './cost.js';
export {
  validateScenario,
  MAX_TOTAL_MEM_MIB,
  type Scenario,
  type ScenarioVm,
  type ScenarioModule,
  type ScenarioGuest,
} from './scenario.js';
