/** The machine's public surface: what L0, the CLI and benchmarks may use. */
export { Machine, QUANTUM, type MachineOptions, type RunResult } from './machine.js';
export { PhysMem } from './mmu/physmem.js';
export { IoBus, type PortDevice, type MmioDevice } from './bus.js';
export { Cpu } from './cpu/cpu.js';
export { CPU_HZ } from './cost.js';
export {
  VmxHost,
  writeFlatSegments,
  type VmxStatus,
  type ExitRecord,
  type EntryFailure,
  type RunOutcome,
} from './vmx/host.js';
export { F as VMCS_FIELD } from './vmx/f.js';
export { R as EXIT_REASON } from './vmx/bits.js';
export { EventQueue } from './events-queue.js';
export type { VmxOptions } from './vmx/caps.js';
// Device models, for hypervisors that give their VMs the same PC (per-VM buses).
export { Uart16550 } from './devices/uart16550.js';
export { DebugExit } from './devices/debug-exit.js';
export { ShutdownPort } from './devices/shutdown.js';
export { FwCfg } from './devices/fwcfg.js';
export { PicPair } from './devices/pic-pair.js';
export { PciHost } from './devices/pci-host.js';
export { LatchPort } from './devices/port-sink.js';
export { loadMultiboot, type MultibootModule } from './boot/multiboot.js';
export { MachineStop } from './cpu/fault.js';
