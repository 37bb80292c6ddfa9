/**
 * The PC's port devices, wired on an I/O bus as DESIGN.md's platform contract says: COM1,
 * isa-debug-exit, the shutdown port, fw_cfg, the 8259 pair and ELCR, PCI configuration ports
 * (host bridge plus the ISA bridge at 00:01.0), the POST port, the PIT with port 61h, the RTC
 * and the ACPI PM block. One wiring for the bare machine (machine.ts) and for each VM's
 * virtual platform (L0); what differs is passed in: the event queue, where ISA IRQs go, and
 * what ending the run means.
 */
import type { IoBus } from './bus.js';
import type { EventQueue } from './events-queue.js';
import { Uart16550 } from './devices/uart16550.js';
import { DebugExit, DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE } from './devices/debug-exit.js';
import { ShutdownPort, SHUTDOWN_PORT } from './devices/shutdown.js';
import { FwCfg, FW_CFG_PORT, FW_CFG_PORT_COUNT } from './devices/fwcfg.js';
import {
  PicPair,
  PIC_MASTER_PORT,
  PIC_SLAVE_PORT,
  PIC_PORT_COUNT,
  ELCR_PORT,
  ELCR_PORT_COUNT,
} from './devices/pic-pair.js';
import { PciHost, PCI_CONFIG_PORT, PCI_CONFIG_PORT_COUNT } from './devices/pci-host.js';
import { PciIsaBridge } from './devices/pci-isa-bridge.js';
import { LatchPort, POST_CODE_PORT } from './devices/port-sink.js';
import { Pit8254, PIT_PORT, PIT_PORT_COUNT } from './devices/pit8254.js';
import { SystemControlB, SYSTEM_CONTROL_B_PORT } from './devices/system-control-b.js';
import { Rtc, RTC_PORT, RTC_PORT_COUNT } from './devices/rtc.js';
import { AcpiPm, ACPI_PM_BASE, ACPI_PM_PORT_COUNT, SLP_TYP_S5 } from './devices/pm-timer.js';

export interface PcPortsConfig {
  ramBytes: number;
  cpus: number;
  /** Every byte written to COM1. */
  serial: (byte: number) => void;
  /** An ISA interrupt line changed (the caller routes it to the 8259s and the IOAPIC). */
  isaIrq: (irq: number, level: boolean) => void;
  /** isa-debug-exit written with `value`. */
  exit: (value: number) => void;
  /** Power off: the shutdown port, or ACPI sleep state S5. */
  shutdown: (why: string) => void;
}

export interface PcPorts {
  readonly uart: Uart16550;
  readonly fwcfg: FwCfg;
  readonly pic: PicPair;
  readonly pci: PciHost;
  readonly pit: Pit8254;
  readonly rtc: Rtc;
  readonly acpiPm: AcpiPm;
}

export function wirePcPorts(io: IoBus, clock: EventQueue, cfg: PcPortsConfig): PcPorts {
  const uart = new Uart16550(cfg.serial, (l) => cfg.isaIrq(4, l));
  io.register(0x3f8, 8, uart);
  io.register(DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, new DebugExit((v) => cfg.exit(v)));
  io.register(SHUTDOWN_PORT, 1, new ShutdownPort(() => cfg.shutdown('power off')));
  const fwcfg = new FwCfg({ ramBytes: cfg.ramBytes, cpus: cfg.cpus });
  io.register(FW_CFG_PORT, FW_CFG_PORT_COUNT, fwcfg);
  const pic = new PicPair();
  io.register(PIC_MASTER_PORT, PIC_PORT_COUNT, pic.master);
  io.register(PIC_SLAVE_PORT, PIC_PORT_COUNT, pic.slave);
  io.register(ELCR_PORT, ELCR_PORT_COUNT, pic.elcr);
  const pci = new PciHost();
  io.register(PCI_CONFIG_PORT, PCI_CONFIG_PORT_COUNT, pci);
  pci.add(1, 0, new PciIsaBridge());
  io.register(POST_CODE_PORT, 1, new LatchPort('post'));
  // Timers. The PIT starts unprogrammed (there is no BIOS): nothing ticks until the guest
  // programs it. IRQ0 is GSI 2 on the IOAPIC (the MADT override; the caller routes it).
  const pit = new Pit8254(clock, (l) => cfg.isaIrq(0, l), { initial: 'unprogrammed' });
  io.register(PIT_PORT, PIT_PORT_COUNT, pit);
  const portB = new SystemControlB();
  portB.status = () => (pit.out2() ? 0x20 : 0);
  portB.onWrite = (v) => pit.setGate2((v & 1) !== 0);
  io.register(SYSTEM_CONTROL_B_PORT, 1, portB);
  const rtc = new Rtc(clock, (l) => cfg.isaIrq(8, l), { ramBytes: cfg.ramBytes, cpus: cfg.cpus });
  io.register(RTC_PORT, RTC_PORT_COUNT, rtc);
  const acpiPm = new AcpiPm(clock, {
    sci: (l) => cfg.isaIrq(9, l),
    onSleep: (t) => {
      if (t === SLP_TYP_S5) cfg.shutdown('ACPI S5 power off');
    },
  });
  io.register(ACPI_PM_BASE, ACPI_PM_PORT_COUNT, acpiPm);
  return { uart, fwcfg, pic, pci, pit, rtc, acpiPm };
}
