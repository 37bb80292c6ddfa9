/**
 * The host bridge at 00:00.0 of QEMU's `pc` machine: the Intel 82441FX PMC of
 * the 440FX chipset (vendor 0x8086, device 0x1237, revision 2; class 06/00/00),
 * with QEMU's subsystem ids (1AF4:1100). Default command/status from the 440FX
 * datasheet (PCICMD 0006h, PCISTS 0280h). Chipset registers (PAM, SMRAM) are not
 * modelled: RAM is always RAM here, so they read 0 and ignore writes.
 */
import { PciFunction } from './pci-function.js';

export class PciHostBridge extends PciFunction {
  constructor() {
    super('i440fx-host-bridge', {
      vendorId: 0x8086,
      deviceId: 0x1237,
      revision: 0x02,
      classCode: 0x060000,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x1100,
      command: 0x0006,
      status: 0x0280,
    });
    // The bridge always decodes memory and masters; only SERR# and parity response are settable.
    this.setWritable(0x04, 2, 0x0140);
  }
}
