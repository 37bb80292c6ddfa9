/**
 * The PCI-to-ISA bridge of QEMU's `pc` machine at 00:01.0: the Intel 82371SB
 * PIIX3 function 0 (vendor 0x8086, device 0x7000; class 06/01/00), with QEMU's
 * subsystem ids (1AF4:1100). It is a multi-function device (the header type has
 * bit 7 set), so software probes 00:01.1-7.
 *
 * Registers from the PIIX3 datasheet (order 290550), with the values SeaBIOS
 * leaves for a `-kernel` boot: PIRQ[A-D] route control (0x60-0x63) routing PCI
 * INTA#-INTD# to ISA IRQs 10, 10, 11, 11 (bit 7 set = routing disabled), IORT
 * (0x4C), XBCS (0x4E), top of memory (0x69), motherboard IRQ routing
 * (0x70-0x71, disabled), APIC base relocation (0x80) and deterministic latency
 * control (0x82). The chipset functions behind them (ISA DMA, X-bus decode) are
 * not modelled; the registers hold what software writes.
 *
 * `Piix4Pm` is the optional 00:01.3 function QEMU adds (82371AB PIIX4 power
 * management, 8086:7113, class 06/80/00) whose PMBA (0x40) tells software where
 * the ACPI PM registers are (pm-timer.ts); here that base is fixed (read-only).
 */
import { PciFunction } from './pci-function.js';
import { ACPI_PM_BASE } from './pm-timer.js';

export const PIIX3_VENDOR_ID = 0x8086;
export const PIIX3_ISA_DEVICE_ID = 0x7000;
export const PIIX_PIRQRC = 0x60;
/** Route-control bit 7: the PIRQ is not routed to an ISA IRQ. */
export const PIRQ_DISABLED = 0x80;
/** INTA#-INTD# → IRQ 10, 10, 11, 11 (SeaBIOS's choice on QEMU `pc`). */
export const DEFAULT_PIRQ_ROUTES = [10, 10, 11, 11] as const;

/** ISA IRQs a PIRQ may be routed to (PIIX3 datasheet, PIRQRC bits 3:0). */
const ROUTABLE_IRQS = 0xdef8; // 3-7, 9-12, 14, 15

export class PciIsaBridge extends PciFunction {
  /** Called when a PIRQ route changes (pirq 0-3 = INTA#-INTD#). */
  onPirqChange: (pirq: number) => void = () => {};

  constructor() {
    super('piix3-isa-bridge', {
      vendorId: PIIX3_VENDOR_ID,
      deviceId: PIIX3_ISA_DEVICE_ID,
      classCode: 0x060100,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x1100,
      command: 0x0007,
      status: 0x0200,
    });
    // I/O, memory and bus master are hardwired on; only special cycles/SERR# would be settable.
    this.initRegister(0x04, 2, 0x0007, 0x0108);
    this.markMultiFunction();
    this.initRegister(0x4c, 1, 0x4d, 0xff); // IORT
    this.initRegister(0x4e, 2, 0x0003, 0x07ff); // XBCS
    for (let i = 0; i < 4; i++) this.initRegister(PIIX_PIRQRC + i, 1, DEFAULT_PIRQ_ROUTES[i], 0x8f);
    this.initRegister(0x69, 1, 0x02, 0xfe); // TOM
    this.initRegister(0x6a, 2, 0x0000, 0x00ff); // MSTAT
    this.initRegister(0x70, 1, PIRQ_DISABLED, 0xcf); // MBIRQ0
    this.initRegister(0x71, 1, PIRQ_DISABLED, 0xcf); // MBIRQ1
    this.initRegister(0x76, 1, 0x04, 0x87); // MBDMA0
    this.initRegister(0x77, 1, 0x04, 0x87); // MBDMA1
    this.initRegister(0x80, 1, 0x00, 0x7f); // APICBASE
    this.initRegister(0x82, 1, 0x00, 0x0f); // DLC
  }

  /** The ISA IRQ that PIRQ `pirq` (0-3 = INTA#-INTD#) drives, or undefined when not routed. */
  pirqRoute(pirq: number): number | undefined {
    const v = this.config[PIIX_PIRQRC + (pirq & 3)];
    if (v & PIRQ_DISABLED) return undefined;
    const irq = v & 0xf;
    return ROUTABLE_IRQS & (1 << irq) ? irq : undefined;
  }

  protected override configWritten(reg: number, size: number): void {
    for (let i = 0; i < 4; i++)
      if (reg <= PIIX_PIRQRC + i && PIIX_PIRQRC + i < reg + size) this.onPirqChange(i);
  }
}

export const PIIX4_PM_DEVICE_ID = 0x7113;

/** The PIIX4 power-management function (00:01.3 on QEMU `pc`), describing the ACPI PM I/O base. */
export class Piix4Pm extends PciFunction {
  constructor(pmBase = ACPI_PM_BASE) {
    super('piix4-pm', {
      vendorId: PIIX3_VENDOR_ID,
      deviceId: PIIX4_PM_DEVICE_ID,
      revision: 0x03,
      classCode: 0x068000,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x1100,
      interruptPin: 1,
      status: 0x0280,
    });
    this.initRegister(0x40, 4, (pmBase | 1) >>> 0); // PMBA: I/O space indicator, base fixed
    this.initRegister(0x80, 1, 0x01); // PMREGMISC: PM I/O space enabled
    this.initRegister(0x90, 4, 0x00000001); // SMBBA: SMBus not configured
    this.initRegister(0xd2, 1, 0x00, 0x0f); // SMBHSTCFG: SMBus host disabled
  }
}
