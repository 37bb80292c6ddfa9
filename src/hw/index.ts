/** The machine's public surface: what L0, the CLI and benchmarks may use. */
export { Machine, QUANTUM, type MachineOptions, type RunResult } from './machine.js';
export { wirePcPorts, type PcPorts, type PcPortsConfig } from './pc-ports.js';
export { PhysMem, LOW_RAM_LIMIT } from './mmu/physmem.js';
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
  type MsrState,
} from './vmx/host.js';
export { F as VMCS_FIELD, GUEST_SEG_SEL, GUEST_SEG_BASE, GUEST_SEG_LIMIT, GUEST_SEG_AR } from './vmx/f.js';
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
// The rest of the PC, for a hypervisor that gives each VM its own (L0's virtual platform).
export {
  Lapic,
  routeApicMessage,
  APIC_DEFAULT_BASE,
  APIC_MMIO_SIZE,
  MSR_APIC_BASE,
  MSR_TSC_DEADLINE,
  MSR_X2APIC_FIRST,
  MSR_X2APIC_LAST,
  type LapicHost,
} from './devices/lapic.js';
export { IoApic, IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE, IOAPIC_PINS } from './devices/ioapic.js';
export { DM_NMI, type ApicMessage } from './devices/apic-message.js';
export { Pit8254, PIT_PORT, PIT_PORT_COUNT } from './devices/pit8254.js';
export { Rtc, RTC_PORT, RTC_PORT_COUNT } from './devices/rtc.js';
export { AcpiPm, ACPI_PM_BASE, ACPI_PM_PORT_COUNT, PM_TIMER_PORT, SLP_TYP_S5 } from './devices/pm-timer.js';
export { SystemControlB, SYSTEM_CONTROL_B_PORT } from './devices/system-control-b.js';
export { PciIsaBridge } from './devices/pci-isa-bridge.js';
export { buildAcpiTables } from './acpi/tables.js';
export { DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE } from './devices/debug-exit.js';
export { SHUTDOWN_PORT } from './devices/shutdown.js';
export { FW_CFG_PORT, FW_CFG_PORT_COUNT } from './devices/fwcfg.js';
export {
  PIC_MASTER_PORT,
  PIC_SLAVE_PORT,
  PIC_PORT_COUNT,
  ELCR_PORT,
  ELCR_PORT_COUNT,
} from './devices/pic-pair.js';
export { PCI_CONFIG_PORT, PCI_CONFIG_PORT_COUNT } from './devices/pci-host.js';
export { POST_CODE_PORT } from './devices/port-sink.js';
export { MachineStop } from './cpu/fault.js';
// VMX as data and rules, for software that emulates VMX on top of the hardware (L0's nesting).
export { type Vmcs } from './vmx/vmcs.js';
export {
  VMCS_FIELD_INDEX,
  newVmcs,
  fieldSupported,
  fieldReadOnly,
  readVmcsField,
  writeVmcsField,
} from './vmx/field-access.js';
export { checkVmEntry, type EntryEnv, type EntryCheckResult } from './vmx/entry.js';
export { VmxCaps, VMCS_REVISION_ID } from './vmx/caps.js';
export * as VMX_BITS from './vmx/bits.js';
