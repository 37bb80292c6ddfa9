/**
 * The interrupt message of the APIC bus (SDM 3A §11.6 "Issuing Interprocessor
 * Interrupts", §11.11 "Message Signalled Interrupts"; 82093AA datasheet §3.2.4).
 * Interprocessor interrupts, IOAPIC redirection entries and PCI MSIs all become one
 * of these; the machine hands it to every local APIC whose `matches()` accepts it.
 */

/** Delivery modes (SDM 3A Figure 11-12); 3 is reserved everywhere. */
export const DM_FIXED = 0;
export const DM_LOWEST = 1;
export const DM_SMI = 2;
export const DM_NMI = 4;
export const DM_INIT = 5;
/** StartUp (SIPI) for IPIs; reserved for the IOAPIC and MSIs. */
export const DM_SIPI = 6;
export const DM_EXTINT = 7;

export type DeliveryMode = 0 | 1 | 2 | 4 | 5 | 6 | 7;

/** ICR destination shorthands (SDM 3A §11.6.1). */
export const SH_NONE = 0;
export const SH_SELF = 1;
export const SH_ALL_INCLUDING_SELF = 2;
export const SH_ALL_EXCLUDING_SELF = 3;

export interface ApicMessage {
  vector: number;
  deliveryMode: DeliveryMode;
  /** 0 physical, 1 logical. */
  destMode: 0 | 1;
  /** 8-bit xAPIC destination, or 32-bit when `x2apic` is set. */
  dest: number;
  shorthand: 0 | 1 | 2 | 3;
  /** Level bit: assert (true) or de-assert (false; only meaningful with INIT level de-assert). */
  level: boolean;
  /** 0 edge, 1 level. */
  trigger: 0 | 1;
  /** Initial APIC id of the sending local APIC; -1 for the IOAPIC and MSIs. */
  source: number;
  /**
   * The destination is in the 32-bit x2APIC format (sent through an x2APIC ICR),
   * where broadcast is 0xFFFFFFFF; otherwise it is 8-bit and broadcast is 0xFF.
   */
  x2apic?: boolean;
}

/** The MSI address window: 0xFEExxxxx (SDM 3A §11.11.1). */
export const MSI_ADDRESS_BASE = 0xfee00000;

/**
 * Decode a PCI MSI address/data pair (SDM 3A Figures 11-24 and 11-25).
 * Address: bits 31:20 = 0xFEE, destination id 19:12, redirection hint 3, destination mode 2.
 * Data: vector 7:0, delivery mode 10:8, level 14, trigger 15.
 * Returns undefined for an address outside the window or a reserved delivery mode (3, 6),
 * which the platform drops. As in QEMU and KVM, the DM bit alone selects the destination
 * mode; RH only permits redirection, which the lowest-priority delivery mode already implies.
 * Edge-triggered messages always assert; a level-triggered de-assert message is returned
 * with `level: false` (local APICs ignore it).
 */
export function decodeMsi(address: number, data: number): ApicMessage | undefined {
  const addr = address >>> 0;
  if (addr >>> 20 !== MSI_ADDRESS_BASE >>> 20) return undefined;
  const dm = (data >>> 8) & 7;
  if (dm === 3 || dm === DM_SIPI) return undefined;
  const trigger = ((data >>> 15) & 1) as 0 | 1;
  return {
    vector: data & 0xff,
    deliveryMode: dm as DeliveryMode,
    destMode: ((addr >>> 2) & 1) as 0 | 1,
    dest: (addr >>> 12) & 0xff,
    shorthand: SH_NONE,
    level: trigger === 0 ? true : ((data >>> 14) & 1) === 1,
    trigger,
    source: -1,
  };
}

/** Encode the MSI address/data pair for a message (the inverse of decodeMsi, for tests and device models). */
export function encodeMsi(
  msg: Pick<ApicMessage, 'vector' | 'deliveryMode' | 'destMode' | 'dest' | 'trigger'>,
): {
  address: number;
  data: number;
} {
  return {
    address: (MSI_ADDRESS_BASE | ((msg.dest & 0xff) << 12) | (msg.destMode << 2)) >>> 0,
    data: (msg.vector & 0xff) | (msg.deliveryMode << 8) | (1 << 14) | (msg.trigger << 15),
  };
}
