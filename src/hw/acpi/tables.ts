/**
 * ACPI tables built by the machine (ACPI Specification 6.5, chapter 5), as
 * firmware would leave them for the OS:
 *
 *   RSDP (revision 2) → RSDT (32-bit pointers) and XSDT (64-bit pointers)
 *                          → FADT ("FACP", revision 6.5) → FACS, DSDT
 *                          → MADT ("APIC")
 *
 * Where they go: the RSDP must sit on a 16-byte boundary in 0xE0000-0xFFFFF
 * (§5.2.5.1), where OSes scan for it. Everything is placed from ACPI_TABLES_BASE
 * (0xF0000) upwards, in the BIOS area that the memory map (boot/memory-map.ts)
 * reports reserved, so the OS will not reuse it, and which the multiboot loader
 * refuses to load kernels into. The RSDP comes first, at 0xF0000 itself.
 *
 * Contents, matching the devices of this machine:
 * - MADT: local APIC at 0xFEE00000, PCAT_COMPAT (8259s present); a Processor
 *   Local APIC entry per CPU (UID = APIC ID = index, enabled); the IOAPIC at
 *   0xFEC00000 with GSI base 0; interrupt source overrides IRQ0 → GSI2 (the PIT)
 *   and IRQ9 → GSI9 level/active-high (the SCI); LINT1 of every CPU is NMI.
 * - FADT: SCI on IRQ 9, no SMI command port (always in ACPI mode), PM1a event
 *   and control blocks and the 24-bit PM timer (pm-timer.ts), no GPE blocks,
 *   C2/C3 unsupported, RTC century byte at CMOS 0x32, reset register 0xCF9 ← 6,
 *   boot flags: legacy devices, no 8042, no VGA. Both 32-bit and X_ 64-bit
 *   addresses are filled in and agree.
 * - FACS (64 bytes, 64-byte aligned), required because the hardware is not
 *   "reduced".
 * - DSDT: just \_S5 = Package {0, 0, 0, 0}, the SLP_TYP for soft-off.
 * All checksums are valid; OEM ID "TURTLE", creator "TRTL".
 */
import { InternalError } from '../../common/index.js';
import type { PhysMem } from '../mmu/physmem.js';

export const ACPI_TABLES_BASE = 0xf0000;
export const ACPI_TABLES_LIMIT = 0x100000;
export const LAPIC_DEFAULT_ADDRESS = 0xfee00000;
export const IOAPIC_DEFAULT_ADDRESS = 0xfec00000;

export const ACPI_OEM_ID = 'TURTLE';
export const ACPI_OEM_TABLE_ID = 'TURTLES ';
export const ACPI_CREATOR_ID = 'TRTL';
const HEADER_SIZE = 36;

// FADT flags (ACPI 6.5 Table 5.10).
export const FADT_F_WBINVD = 1 << 0;
export const FADT_F_PROC_C1 = 1 << 2;
export const FADT_F_PWR_BUTTON = 1 << 4;
export const FADT_F_SLP_BUTTON = 1 << 5;
export const FADT_F_FIX_RTC = 1 << 6;
export const FADT_F_TMR_VAL_EXT = 1 << 8;
export const FADT_F_RESET_REG_SUP = 1 << 10;
export const FADT_F_USE_PLATFORM_CLOCK = 1 << 15;
export const FADT_F_HW_REDUCED_ACPI = 1 << 20;
// IA-PC boot architecture flags (Table 5.11).
export const IAPC_LEGACY_DEVICES = 1 << 0;
export const IAPC_8042 = 1 << 1;
export const IAPC_VGA_NOT_PRESENT = 1 << 2;

export const FADT_LENGTH = 276;
export const FACS_LENGTH = 64;

// MADT structure types (Table 5.21).
export const MADT_LOCAL_APIC = 0;
export const MADT_IO_APIC = 1;
export const MADT_INTERRUPT_OVERRIDE = 2;
export const MADT_LOCAL_APIC_NMI = 4;
export const MADT_PCAT_COMPAT = 1;
/** MPS INTI flags: active high, edge / level triggered. */
export const MPS_INTI_HIGH_EDGE = 0x0005;
export const MPS_INTI_HIGH_LEVEL = 0x000d;

/** Generic Address Structure address space: system I/O. */
const GAS_SYSTEM_IO = 1;

export interface AcpiOptions {
  cpus: number;
  /** PM_TMR_BLK port (4 bytes). */
  pmTimerPort: number;
  /** PM1a_EVT_BLK (4 bytes: status, enable); default pmTimerPort - 8 (the PIIX4 layout). */
  pm1EventPort?: number;
  /** PM1a_CNT_BLK (2 bytes); default pmTimerPort - 4. */
  pm1ControlPort?: number;
  /** ISA IRQ of the SCI (default 9). */
  sciIrq?: number;
  lapicAddress?: number;
  ioapicAddress?: number;
  /** IOAPIC ID (default 0, as QEMU). */
  ioapicId?: number;
  /** CMOS index of the RTC century byte (default 0x32; 0 = none). */
  centuryIndex?: number;
  /** Reset register (an I/O port) and value; default 0xCF9 ← 6. */
  resetPort?: number;
  resetValue?: number;
  /** Where to start placing tables (default ACPI_TABLES_BASE); must leave the RSDP in 0xE0000-0xFFFFF. */
  base?: number;
}

export interface AcpiLayout {
  rsdp: number;
  rsdt: number;
  xsdt: number;
  fadt: number;
  facs: number;
  dsdt: number;
  madt: number;
  /** First byte after the tables. */
  end: number;
}

/** A little-endian byte builder. */
class Bytes {
  private buf: number[] = [];
  get length(): number {
    return this.buf.length;
  }
  u8(v: number): this {
    this.buf.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  u64(v: number): this {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
  ascii(s: string, len: number): this {
    for (let i = 0; i < len; i++) this.u8(i < s.length ? s.charCodeAt(i) : 0x20);
    return this;
  }
  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.u8(b[i]);
    return this;
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.u8(0);
    return this;
  }
  /** Generic Address Structure (§5.2.3.2) for an I/O port block. */
  gasIo(port: number, bitWidth: number, accessSize: number): this {
    if (!port) return this.zeros(12);
    return this.u8(GAS_SYSTEM_IO).u8(bitWidth).u8(0).u8(accessSize).u64(port);
  }
  toArray(): Uint8Array {
    return Uint8Array.from(this.buf);
  }
}

/** Sets byte `at` so that the 8-bit sum of `data[from..to)` is zero. */
function fixChecksum(data: Uint8Array, at: number, from = 0, to = data.length): void {
  data[at] = 0;
  let sum = 0;
  for (let i = from; i < to; i++) sum += data[i];
  data[at] = -sum & 0xff;
}

/** 8-bit sum of bytes (0 for a valid ACPI checksum). */
export function acpiChecksum(data: Uint8Array): number {
  let sum = 0;
  for (const b of data) sum += b;
  return sum & 0xff;
}

/** A System Description Table: the 36-byte header (§5.2.6) followed by `body`; checksum set. */
function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const h = new Bytes()
    .ascii(signature, 4)
    .u32(HEADER_SIZE + body.length)
    .u8(revision)
    .u8(0) // checksum
    .ascii(ACPI_OEM_ID, 6)
    .ascii(ACPI_OEM_TABLE_ID, 8)
    .u32(1) // OEM revision
    .ascii(ACPI_CREATOR_ID, 4)
    .u32(1) // creator revision
    .bytes(body)
    .toArray();
  fixChecksum(h, 9);
  return h;
}

function buildMadt(o: Required<AcpiOptions>): Uint8Array {
  const b = new Bytes().u32(o.lapicAddress).u32(MADT_PCAT_COMPAT);
  for (let i = 0; i < o.cpus; i++) b.u8(MADT_LOCAL_APIC).u8(8).u8(i).u8(i).u32(1); // enabled
  b.u8(MADT_IO_APIC).u8(12).u8(o.ioapicId).u8(0).u32(o.ioapicAddress).u32(0);
  b.u8(MADT_INTERRUPT_OVERRIDE).u8(10).u8(0).u8(0).u32(2).u16(0); // ISA IRQ0 → GSI2, conforming
  if (o.sciIrq)
    b.u8(MADT_INTERRUPT_OVERRIDE).u8(10).u8(0).u8(o.sciIrq).u32(o.sciIrq).u16(MPS_INTI_HIGH_LEVEL);
  b.u8(MADT_LOCAL_APIC_NMI).u8(6).u8(0xff).u16(MPS_INTI_HIGH_EDGE).u8(1); // all CPUs, LINT1
  return sdt('APIC', 3, b.toArray());
}

function buildFadt(o: Required<AcpiOptions>, facs: number, dsdt: number): Uint8Array {
  const b = new Bytes()
    .u32(facs) // FIRMWARE_CTRL
    .u32(dsdt) // DSDT
    .u8(0) // reserved (ACPI 1.0 INT_MODEL)
    .u8(0) // Preferred_PM_Profile: unspecified
    .u16(o.sciIrq) // SCI_INT
    .u32(0) // SMI_CMD: none, the hardware is always in ACPI mode
    .u8(0) // ACPI_ENABLE
    .u8(0) // ACPI_DISABLE
    .u8(0) // S4BIOS_REQ
    .u8(0) // PSTATE_CNT
    .u32(o.pm1EventPort) // PM1a_EVT_BLK
    .u32(0) // PM1b_EVT_BLK
    .u32(o.pm1ControlPort) // PM1a_CNT_BLK
    .u32(0) // PM1b_CNT_BLK
    .u32(0) // PM2_CNT_BLK
    .u32(o.pmTimerPort) // PM_TMR_BLK
    .u32(0) // GPE0_BLK
    .u32(0) // GPE1_BLK
    .u8(4) // PM1_EVT_LEN
    .u8(2) // PM1_CNT_LEN
    .u8(0) // PM2_CNT_LEN
    .u8(4) // PM_TMR_LEN
    .u8(0) // GPE0_BLK_LEN
    .u8(0) // GPE1_BLK_LEN
    .u8(0) // GPE1_BASE
    .u8(0) // CST_CNT
    .u16(0x0fff) // P_LVL2_LAT > 100: C2 not supported
    .u16(0x0fff) // P_LVL3_LAT > 1000: C3 not supported
    .u16(0) // FLUSH_SIZE
    .u16(0) // FLUSH_STRIDE
    .u8(0) // DUTY_OFFSET
    .u8(0) // DUTY_WIDTH
    .u8(0) // DAY_ALRM
    .u8(0) // MON_ALRM
    .u8(o.centuryIndex) // CENTURY
    .u16(IAPC_LEGACY_DEVICES | IAPC_VGA_NOT_PRESENT) // IAPC_BOOT_ARCH
    .u8(0) // reserved
    .u32(
      FADT_F_WBINVD |
        FADT_F_PROC_C1 |
        FADT_F_PWR_BUTTON |
        FADT_F_SLP_BUTTON |
        FADT_F_FIX_RTC |
        FADT_F_USE_PLATFORM_CLOCK |
        (o.resetPort ? FADT_F_RESET_REG_SUP : 0),
    )
    .gasIo(o.resetPort, 8, 1) // RESET_REG
    .u8(o.resetValue) // RESET_VALUE
    .u16(0) // ARM_BOOT_ARCH
    .u8(5) // FADT minor version: ACPI 6.5
    .u64(facs) // X_FIRMWARE_CTRL
    .u64(dsdt) // X_DSDT
    .gasIo(o.pm1EventPort, 32, 2) // X_PM1a_EVT_BLK
    .gasIo(0, 0, 0) // X_PM1b_EVT_BLK
    .gasIo(o.pm1ControlPort, 16, 2) // X_PM1a_CNT_BLK
    .gasIo(0, 0, 0) // X_PM1b_CNT_BLK
    .gasIo(0, 0, 0) // X_PM2_CNT_BLK
    .gasIo(o.pmTimerPort, 32, 3) // X_PM_TMR_BLK
    .gasIo(0, 0, 0) // X_GPE0_BLK
    .gasIo(0, 0, 0) // X_GPE1_BLK
    .gasIo(0, 0, 0) // SLEEP_CONTROL_REG (hardware-reduced only)
    .gasIo(0, 0, 0) // SLEEP_STATUS_REG
    .u64(0) // Hypervisor Vendor Identity
    .toArray();
  const t = sdt('FACP', 6, b);
  if (t.length !== FADT_LENGTH) throw new InternalError(`FADT is ${t.length} bytes`);
  return t;
}

function buildFacs(): Uint8Array {
  const b = new Bytes()
    .ascii('FACS', 4)
    .u32(FACS_LENGTH)
    .u32(0) // hardware signature
    .u32(0) // firmware waking vector
    .u32(0) // global lock
    .u32(0) // flags
    .u64(0) // X firmware waking vector
    .u8(2) // version
    .zeros(3)
    .u32(0) // OSPM flags
    .zeros(24);
  return b.toArray();
}

/** DSDT body: Name (\_S5, Package (4) {0, 0, 0, 0}) in AML (§20). */
function buildDsdt(): Uint8Array {
  const aml = new Bytes()
    .u8(0x08) // NameOp
    .u8(0x5c) // RootChar
    .ascii('_S5_', 4)
    .u8(0x12) // PackageOp
    .u8(0x06) // PkgLength: this byte, NumElements and 4 elements
    .u8(0x04) // NumElements
    .bytes([0x00, 0x00, 0x00, 0x00]) // ZeroOp x4: SLP_TYPa, SLP_TYPb, reserved
    .toArray();
  return sdt('DSDT', 2, aml);
}

function buildRsdp(rsdt: number, xsdt: number): Uint8Array {
  const r = new Bytes()
    .ascii('RSD PTR ', 8)
    .u8(0) // checksum of the first 20 bytes
    .ascii(ACPI_OEM_ID, 6)
    .u8(2) // revision: ACPI 2.0+
    .u32(rsdt)
    .u32(36) // length
    .u64(xsdt)
    .u8(0) // extended checksum
    .zeros(3)
    .toArray();
  fixChecksum(r, 8, 0, 20);
  fixChecksum(r, 32);
  return r;
}

const align = (v: number, a: number): number => Math.ceil(v / a) * a;

/** Build the tables into guest memory and return where each one went. */
export function buildAcpiTables(mem: PhysMem, opts: AcpiOptions): AcpiLayout {
  const o: Required<AcpiOptions> = {
    pm1EventPort: opts.pmTimerPort - 8,
    pm1ControlPort: opts.pmTimerPort - 4,
    sciIrq: 9,
    lapicAddress: LAPIC_DEFAULT_ADDRESS,
    ioapicAddress: IOAPIC_DEFAULT_ADDRESS,
    ioapicId: 0,
    centuryIndex: 0x32,
    resetPort: 0xcf9,
    resetValue: 0x06,
    base: ACPI_TABLES_BASE,
    ...opts,
  };
  if (!Number.isInteger(o.cpus) || o.cpus < 1 || o.cpus > 255)
    throw new InternalError(`ACPI: bad CPU count ${o.cpus}`);
  const rsdp = align(o.base, 16);
  if (rsdp < 0xe0000 || rsdp + 36 > ACPI_TABLES_LIMIT)
    throw new InternalError('ACPI: RSDP outside 0xE0000-0xFFFFF');
  let at = rsdp + 36;
  const place = (len: number, alignment = 16): number => {
    const p = align(at, alignment);
    at = p + len;
    return p;
  };
  const facsBytes = buildFacs();
  const facs = place(facsBytes.length, 64);
  const dsdtBytes = buildDsdt();
  const dsdt = place(dsdtBytes.length);
  const fadtBytes = buildFadt(o, facs, dsdt);
  const fadt = place(fadtBytes.length);
  const madtBytes = buildMadt(o);
  const madt = place(madtBytes.length);
  const pointers = [fadt, madt];
  const rsdtBytes = sdt('RSDT', 1, pointers.reduce((b, p) => b.u32(p), new Bytes()).toArray());
  const rsdt = place(rsdtBytes.length);
  const xsdtBytes = sdt('XSDT', 1, pointers.reduce((b, p) => b.u64(p), new Bytes()).toArray());
  const xsdt = place(xsdtBytes.length);
  if (at > ACPI_TABLES_LIMIT) throw new InternalError('ACPI tables do not fit below 1 MiB');
  mem.writeBytes(rsdp, buildRsdp(rsdt, xsdt));
  mem.writeBytes(facs, facsBytes);
  mem.writeBytes(dsdt, dsdtBytes);
  mem.writeBytes(fadt, fadtBytes);
  mem.writeBytes(madt, madtBytes);
  mem.writeBytes(rsdt, rsdtBytes);
  mem.writeBytes(xsdt, xsdtBytes);
  return { rsdp, rsdt, xsdt, fadt, facs, dsdt, madt, end: at };
}
