import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysMem } from '../../src/hw/mmu/physmem.js';
import {
  buildAcpiTables,
  acpiChecksum,
  FADT_F_HW_REDUCED_ACPI,
  FADT_F_RESET_REG_SUP,
  FADT_F_TMR_VAL_EXT,
  IAPC_8042,
} from '../../src/hw/acpi/tables.js';
import { pcMemoryMap, E820_RESERVED } from '../../src/hw/boot/memory-map.js';
import { PM_TIMER_PORT } from '../../src/hw/devices/pm-timer.js';

const MiB = 1024 * 1024;

/** Read back tables the way an OS does. */
class Reader {
  constructor(readonly mem: PhysMem) {}
  u8 = (a: number): number => this.mem.read8(a);
  u16 = (a: number): number => this.mem.read16(a);
  u32 = (a: number): number => this.mem.read32(a) >>> 0;
  u64 = (a: number): number => this.u32(a) + this.u32(a + 4) * 2 ** 32;
  str = (a: number, n: number): string => String.fromCharCode(...this.mem.readBytes(a, n));
  bytes = (a: number, n: number): Uint8Array => this.mem.readBytes(a, n);

  /** Scan 0xE0000-0xFFFFF on 16-byte boundaries for a valid RSDP (ACPI 6.5 §5.2.5.1). */
  findRsdp(): number | undefined {
    for (let a = 0xe0000; a < 0x100000; a += 16)
      if (this.str(a, 8) === 'RSD PTR ' && acpiChecksum(this.bytes(a, 20)) === 0) return a;
    return undefined;
  }
  /** A table's signature and length, after checking its checksum. */
  table(a: number): { sig: string; len: number; rev: number } {
    const len = this.u32(a + 4);
    assert.equal(acpiChecksum(this.bytes(a, len)), 0, `checksum of ${this.str(a, 4)} at 0x${a.toString(16)}`);
    assert.equal(this.str(a + 10, 6), 'TURTLE', 'OEM ID');
    return { sig: this.str(a, 4), len, rev: this.u8(a + 8) };
  }
  gas(a: number): { space: number; width: number; offset: number; access: number; address: number } {
    return {
      space: this.u8(a),
      width: this.u8(a + 1),
      offset: this.u8(a + 2),
      access: this.u8(a + 3),
      address: this.u64(a + 4),
    };
  }
}

function build(cpus: number) {
  const mem = new PhysMem(32 * MiB);
  const layout = buildAcpiTables(mem, { cpus, pmTimerPort: PM_TIMER_PORT });
  return { mem, layout, r: new Reader(mem) };
}

test('RSDP: found by the BIOS-area scan, revision 2, both checksums, RSDT and XSDT agree', () => {
  const { r, layout, mem } = build(2);
  const rsdp = r.findRsdp();
  assert.equal(rsdp, layout.rsdp);
  assert.equal(rsdp! % 16, 0);
  assert.equal(r.u8(rsdp! + 15), 2, 'revision');
  assert.equal(r.u32(rsdp! + 20), 36, 'length');
  assert.equal(acpiChecksum(r.bytes(rsdp!, 36)), 0, 'extended checksum');
  const rsdt = r.u32(rsdp! + 16),
    xsdt = r.u64(rsdp! + 24);
  assert.deepEqual(r.table(rsdt), { sig: 'RSDT', len: 36 + 8, rev: 1 });
  assert.deepEqual(r.table(xsdt), { sig: 'XSDT', len: 36 + 16, rev: 1 });
  const viaRsdt = [0, 1].map((i) => r.u32(rsdt + 36 + 4 * i));
  const viaXsdt = [0, 1].map((i) => r.u64(xsdt + 36 + 8 * i));
  assert.deepEqual(viaRsdt, viaXsdt);
  assert.deepEqual(
    viaRsdt.map((a) => r.table(a).sig),
    ['FACP', 'APIC'],
  );
  // Everything lies in the range the memory map reports reserved.
  const reserved = pcMemoryMap(mem).filter((m) => m.type === E820_RESERVED && m.base === 0xf0000)[0];
  assert.ok(reserved);
  for (const a of Object.values(layout))
    assert.ok(a >= reserved.base && a <= reserved.base + reserved.length);
});

test('MADT: a local APIC per CPU, the IOAPIC, IRQ0 → GSI2 and SCI overrides, LINT1 NMI', () => {
  for (const cpus of [1, 2, 8]) {
    const { r, layout } = build(cpus);
    const m = layout.madt;
    const { sig, len } = r.table(m);
    assert.equal(sig, 'APIC');
    assert.equal(r.u32(m + 36), 0xfee00000, 'local APIC address');
    assert.equal(r.u32(m + 40), 1, 'PCAT_COMPAT');
    const lapics: [number, number, number][] = [];
    const ioapics: [number, number, number][] = [];
    const overrides: [number, number, number, number][] = [];
    const nmis: [number, number, number][] = [];
    for (let p = m + 44; p < m + len;) {
      const type = r.u8(p),
        l = r.u8(p + 1);
      assert.ok(l >= 2 && p + l <= m + len, 'entry fits');
      if (type === 0) lapics.push([r.u8(p + 2), r.u8(p + 3), r.u32(p + 4)]);
      else if (type === 1) ioapics.push([r.u8(p + 2), r.u32(p + 4), r.u32(p + 8)]);
      else if (type === 2) overrides.push([r.u8(p + 2), r.u8(p + 3), r.u32(p + 4), r.u16(p + 8)]);
      else if (type === 4) nmis.push([r.u8(p + 2), r.u16(p + 3), r.u8(p + 5)]);
      else assert.fail(`unexpected MADT entry type ${type}`);
      p += l;
    }
    assert.deepEqual(
      lapics,
      Array.from({ length: cpus }, (_, i) => [i, i, 1]),
    );
    assert.deepEqual(ioapics, [[0, 0xfec00000, 0]]);
    assert.deepEqual(overrides, [
      [0, 0, 2, 0],
      [0, 9, 9, 0x000d],
    ]);
    assert.deepEqual(nmis, [[0xff, 0x0005, 1]]);
  }
});

test('FADT: PM blocks, PM timer, SCI, DSDT and FACS pointers, century, reset register', () => {
  const { r, layout } = build(1);
  const f = layout.fadt;
  const { sig, len, rev } = r.table(f);
  assert.deepEqual([sig, len, rev], ['FACP', 276, 6]);
  assert.equal(r.u8(f + 131), 5, 'minor version: ACPI 6.5');
  assert.equal(r.u16(f + 46), 9, 'SCI_INT');
  assert.equal(r.u32(f + 48), 0, 'no SMI_CMD: always in ACPI mode');
  assert.equal(r.u32(f + 56), 0x600, 'PM1a_EVT_BLK');
  assert.equal(r.u32(f + 64), 0x604, 'PM1a_CNT_BLK');
  assert.equal(r.u32(f + 76), 0x608, 'PM_TMR_BLK');
  assert.deepEqual([r.u8(f + 88), r.u8(f + 89), r.u8(f + 90), r.u8(f + 91), r.u8(f + 92)], [4, 2, 0, 4, 0]);
  assert.equal(r.u8(f + 108), 0x32, 'CENTURY');
  assert.equal(r.u16(f + 109) & IAPC_8042, 0, 'no 8042');
  const flags = r.u32(f + 112);
  assert.equal(flags & FADT_F_HW_REDUCED_ACPI, 0);
  assert.equal(flags & FADT_F_TMR_VAL_EXT, 0, '24-bit PM timer');
  assert.equal(flags & FADT_F_RESET_REG_SUP, FADT_F_RESET_REG_SUP);
  assert.deepEqual(r.gas(f + 116), { space: 1, width: 8, offset: 0, access: 1, address: 0xcf9 });
  assert.equal(r.u8(f + 128), 0x06);
  assert.deepEqual(
    r.gas(f + 208),
    { space: 1, width: 32, offset: 0, access: 3, address: 0x608 },
    'X_PM_TMR_BLK',
  );
  assert.equal(r.gas(f + 148).address, 0x600);
  assert.equal(r.gas(f + 148).width, 32);
  assert.equal(r.gas(f + 172).address, 0x604);
  assert.equal(r.gas(f + 172).width, 16);
  // DSDT, 32- and 64-bit pointers agree.
  const dsdt = r.u32(f + 40);
  assert.equal(r.u64(f + 140), dsdt);
  assert.equal(dsdt, layout.dsdt);
  const d = r.table(dsdt);
  assert.equal(d.sig, 'DSDT');
  assert.equal(d.rev, 2);
  assert.ok(d.len > 36, 'has an AML body');
  assert.ok(r.str(dsdt + 36, d.len - 36).includes('_S5_'));
  // FACS: 64-byte aligned, no checksum.
  const facs = r.u32(f + 36);
  assert.equal(r.u64(f + 132), facs);
  assert.equal(facs % 64, 0);
  assert.equal(r.str(facs, 4), 'FACS');
  assert.equal(r.u32(facs + 4), 64);
  assert.equal(r.u8(facs + 32), 2, 'FACS version');
});

test('bad options are internal errors', () => {
  const mem = new PhysMem(4 * MiB);
  assert.throws(() => buildAcpiTables(mem, { cpus: 0, pmTimerPort: 0x608 }));
  assert.throws(() => buildAcpiTables(mem, { cpus: 1, pmTimerPort: 0x608, base: 0xd0000 }));
});
