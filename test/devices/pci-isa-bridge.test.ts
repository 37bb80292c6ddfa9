import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PciHost } from '../../src/hw/devices/pci-host.js';
import { PciIsaBridge, Piix4Pm } from '../../src/hw/devices/pci-isa-bridge.js';

const addr = (dev: number, fn: number, reg: number): number =>
  (0x80000000 | (dev << 11) | (fn << 8) | reg) >>> 0;
function cfgRead(host: PciHost, a: number, size: 1 | 2 | 4 = 4): number {
  host.portOut(0, 4, a & ~3);
  return host.portIn(4 + (a & 3), size) >>> 0;
}
function cfgWrite(host: PciHost, a: number, value: number, size: 1 | 2 | 4 = 4): void {
  host.portOut(0, 4, a & ~3);
  host.portOut(4 + (a & 3), size, value);
}

function board(withPm = true): { host: PciHost; isa: PciIsaBridge } {
  const host = new PciHost();
  const isa = new PciIsaBridge();
  host.add(1, 0, isa);
  if (withPm) host.add(1, 3, new Piix4Pm());
  return { host, isa };
}

test('ISA bridge at 00:01.0 is a multi-function PIIX3', () => {
  const { host } = board(false);
  assert.equal(cfgRead(host, addr(1, 0, 0)), 0x70008086);
  assert.equal(cfgRead(host, addr(1, 0, 0x08)) >>> 8, 0x060100, 'class 06/01/00');
  assert.equal(cfgRead(host, addr(1, 0, 0x0e), 1), 0x80, 'multi-function header');
  assert.equal(cfgRead(host, addr(1, 0, 0x2c)), 0x11001af4);
  assert.equal(cfgRead(host, addr(1, 0, 0x04), 2), 0x0007);
  assert.equal(cfgRead(host, addr(1, 0, 0x06), 2), 0x0200);
  assert.equal(cfgRead(host, addr(1, 1, 0)), 0xffffffff, '00:01.1 absent');
});

test('enumeration of bus 0 finds the host bridge and the ISA bridge functions', () => {
  const { host } = board();
  const found: string[] = [];
  for (let dev = 0; dev < 32; dev++) {
    const id0 = cfgRead(host, addr(dev, 0, 0));
    if (id0 === 0xffffffff) continue;
    const multi = (cfgRead(host, addr(dev, 0, 0x0e), 1) & 0x80) !== 0;
    for (let fn = 0; fn < (multi ? 8 : 1); fn++) {
      const id = cfgRead(host, addr(dev, fn, 0));
      if (id === 0xffffffff) continue;
      const cls = cfgRead(host, addr(dev, fn, 0x08)) >>> 8;
      found.push(`${dev}.${fn} ${id.toString(16)} ${cls.toString(16).padStart(6, '0')}`);
    }
  }
  assert.deepEqual(found, ['0.0 12378086 060000', '1.0 70008086 060100', '1.3 71138086 068000']);
});

test('PIRQ route control registers route INTA#-INTD#', () => {
  const { host, isa } = board();
  assert.equal(cfgRead(host, addr(1, 0, 0x60)), 0x0b0b0a0a);
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => isa.pirqRoute(i)),
    [10, 10, 11, 11],
  );
  const changed: number[] = [];
  isa.onPirqChange = (p) => changed.push(p);
  cfgWrite(host, addr(1, 0, 0x62), 0x8005, 2);
  assert.deepEqual(changed, [2, 3]);
  assert.equal(isa.pirqRoute(2), 5);
  assert.equal(isa.pirqRoute(3), undefined, 'bit 7: not routed');
  cfgWrite(host, addr(1, 0, 0x60), 0x0d, 1);
  assert.equal(isa.pirqRoute(0), undefined, 'IRQ 13 is not routable');
  cfgWrite(host, addr(1, 0, 0x60), 0xff, 1);
  assert.equal(cfgRead(host, addr(1, 0, 0x60), 1), 0x8f, 'reserved bits 6:4 read 0');
});

test('PIIX4 PM function at 00:01.3 reports the ACPI PM base', () => {
  const { host } = board();
  assert.equal(cfgRead(host, addr(1, 3, 0x40)), 0x601);
  cfgWrite(host, addr(1, 3, 0x40), 0xb001);
  assert.equal(cfgRead(host, addr(1, 3, 0x40)), 0x601, 'fixed base');
  assert.equal(cfgRead(host, addr(1, 3, 0x80), 1), 0x01);
  assert.equal(cfgRead(host, addr(1, 3, 0x3d), 1), 0x01, 'INTA#');
});
