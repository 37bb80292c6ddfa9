import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InternalError } from '../../src/common/index.js';
import { MmioBus } from '../../src/hw/bus.js';
import {
  PciFunction,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_VENDOR,
} from '../../src/hw/devices/pci-function.js';
import { PciHost } from '../../src/hw/devices/pci-host.js';
import { MsiCapability, MsixCapability } from '../../src/hw/devices/pci-msi.js';

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

interface Dev {
  host: PciHost;
  fn: PciFunction;
  msi: MsiCapability;
  msix: MsixCapability;
  sent: [number, number][];
}
function device(msiOpts: ConstructorParameters<typeof MsiCapability>[2] = {}): Dev {
  const fn = new PciFunction(
    'test-dev',
    { vendorId: 0x1af4, deviceId: 0x1041, classCode: 0x020000, interruptPin: 1 },
    [{ kind: 'mem32', size: 0x1000 }],
  );
  const sent: [number, number][] = [];
  const deliver = (a: number, d: number): void => {
    sent.push([a, d]);
  };
  const msi = new MsiCapability(fn, deliver, msiOpts);
  const msix = new MsixCapability(fn, deliver, {
    vectors: 3,
    tableBar: 0,
    tableOffset: 0,
    pbaBar: 0,
    pbaOffset: 0x800,
  });
  fn.addCapability(PCI_CAP_ID_VENDOR, 8);
  const host = new PciHost();
  host.add(3, 0, fn);
  return { host, fn, msi, msix, sent };
}
const cmdMaster = (d: Dev): void => cfgWrite(d.host, addr(3, 0, 0x04), 0x0006, 2);

test('capability list: status bit, pointer at 0x34, linked structures', () => {
  const d = device({ perVectorMask: true });
  assert.equal(cfgRead(d.host, addr(3, 0, 0x06), 2) & 0x10, 0x10, 'Status.Capabilities List');
  const ids: number[] = [];
  const offsets: number[] = [];
  for (let p = cfgRead(d.host, addr(3, 0, 0x34), 1); p; p = cfgRead(d.host, addr(3, 0, p + 1), 1)) {
    assert.equal(p & 3, 0, 'dword aligned');
    assert.ok(p >= 0x40);
    ids.push(cfgRead(d.host, addr(3, 0, p), 1));
    offsets.push(p);
    assert.ok(ids.length < 48, 'list terminates');
  }
  assert.deepEqual(ids, [PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_CAP_ID_VENDOR]);
  assert.deepEqual(offsets, [d.msi.offset, d.msix.offset, d.fn.findCapability(PCI_CAP_ID_VENDOR)]);
  assert.deepEqual(
    d.fn.capabilities.map((c) => c.size),
    [0x18, 12, 8],
  );
  cfgWrite(d.host, addr(3, 0, 0x34), 0, 1);
  cfgWrite(d.host, addr(3, 0, offsets[0]), 0xffff, 2);
  assert.equal(cfgRead(d.host, addr(3, 0, 0x34), 1), offsets[0], 'pointer is read-only');
  assert.equal(
    cfgRead(d.host, addr(3, 0, offsets[0]), 2),
    (offsets[1] << 8) | PCI_CAP_ID_MSI,
    'ID/next read-only',
  );
  const plain = new PciFunction('plain', { vendorId: 1, deviceId: 2, classCode: 0 });
  assert.equal(plain.readConfig(0x06, 2) & 0x10, 0);
  assert.equal(plain.readConfig(0x34, 1), 0);
  assert.throws(() => plain.addCapability(0x09, 8, { at: 0x3c }), InternalError);
  plain.addCapability(0x09, 8, { at: 0x80 });
  assert.throws(() => plain.addCapability(0x09, 8, { at: 0x84 }), InternalError, 'overlap');
});

test('MSI: enable sends the programmed 64-bit address and data', () => {
  const d = device();
  const o = d.msi.offset;
  assert.equal(cfgRead(d.host, addr(3, 0, o + 2), 2), 0x0080, '64-bit capable, 1 vector, disabled');
  assert.equal(d.msi.notify(), false, 'disabled: use INTx');
  cfgWrite(d.host, addr(3, 0, o + 4), 0xfee01003); // low bits are reserved
  cfgWrite(d.host, addr(3, 0, o + 8), 0x1);
  cfgWrite(d.host, addr(3, 0, o + 0xc), 0x4041, 2);
  cfgWrite(d.host, addr(3, 0, o + 2), 0x0001, 2);
  assert.equal(d.msi.enabled, true);
  assert.equal(d.msi.notify(), true);
  assert.deepEqual(d.sent, [], 'no bus mastering, no message');
  cmdMaster(d);
  d.msi.notify();
  assert.deepEqual(d.sent, [[0x1_fee01000, 0x4041]]);
});

test('MSI: multiple messages put the vector number in the low data bits', () => {
  const d = device({ vectors: 4, addr64: false });
  const o = d.msi.offset;
  assert.equal(cfgRead(d.host, addr(3, 0, o + 2), 2), 0x0004, 'MMC = 4 vectors, 32-bit');
  cmdMaster(d);
  cfgWrite(d.host, addr(3, 0, o + 4), 0xfee00000);
  cfgWrite(d.host, addr(3, 0, o + 8), 0x0050, 2);
  cfgWrite(d.host, addr(3, 0, o + 2), 0x0021 | 0x0070, 2); // enable; MME beyond MMC is clamped
  d.msi.notify(3);
  cfgWrite(d.host, addr(3, 0, o + 2), 0x0011, 2); // 2 vectors
  d.msi.notify(3);
  assert.deepEqual(d.sent, [
    [0xfee00000, 0x53],
    [0xfee00000, 0x51],
  ]);
});

test('MSI per-vector masking: masked vectors pend and are sent on unmask', () => {
  const d = device({ vectors: 2, perVectorMask: true });
  const o = d.msi.offset;
  cmdMaster(d);
  cfgWrite(d.host, addr(3, 0, o + 4), 0xfee00000);
  cfgWrite(d.host, addr(3, 0, o + 0xc), 0x30, 2);
  cfgWrite(d.host, addr(3, 0, o + 0x10), 0xffffffff);
  assert.equal(cfgRead(d.host, addr(3, 0, o + 0x10)), 0x3, 'only implemented mask bits stick');
  cfgWrite(d.host, addr(3, 0, o + 2), 0x0011, 2);
  d.msi.notify(1);
  assert.deepEqual(d.sent, []);
  assert.equal(cfgRead(d.host, addr(3, 0, o + 0x14)), 0x2, 'pending bit');
  cfgWrite(d.host, addr(3, 0, o + 0x14), 0);
  assert.equal(cfgRead(d.host, addr(3, 0, o + 0x14)), 0x2, 'pending bits are read-only');
  cfgWrite(d.host, addr(3, 0, o + 0x10), 0x1);
  assert.deepEqual(d.sent, [[0xfee00000, 0x31]]);
  assert.equal(cfgRead(d.host, addr(3, 0, o + 0x14)), 0);
});

test('MSI-X: table through MMIO, masked entries set the pending bit and deliver on unmask', () => {
  const d = device();
  const o = d.msix.offset;
  assert.equal(cfgRead(d.host, addr(3, 0, o + 2), 2), 0x0002, 'table size 3 (N-1), disabled');
  assert.equal(cfgRead(d.host, addr(3, 0, o + 4)), 0x0, 'table at BAR0 + 0');
  assert.equal(cfgRead(d.host, addr(3, 0, o + 8)), 0x800, 'PBA at BAR0 + 0x800');
  // Map the BAR's table and PBA as a device model would.
  const bus = new MmioBus();
  cfgWrite(d.host, addr(3, 0, 0x10), 0xfebf0000);
  const bar = d.fn.barAddress(0);
  bus.register(bar, d.msix.tableSize, d.msix.tableDevice);
  bus.register(bar + 0x800, d.msix.pbaSize, d.msix.pbaDevice);
  cmdMaster(d);
  assert.equal(bus.read(bar + 12, 4), 1, 'entries are masked at reset');
  for (let v = 0; v < 3; v++) {
    bus.write(bar + 16 * v, 4, 0xfee00000 | (v << 12));
    bus.write(bar + 16 * v + 4, 4, 0);
    bus.write(bar + 16 * v + 8, 4, 0x40 + v);
  }
  assert.equal(d.msix.notify(1), false, 'MSI-X disabled');
  cfgWrite(d.host, addr(3, 0, o + 2), 0x8000, 2);
  assert.equal(d.msix.notify(1), true);
  assert.deepEqual(d.sent, []);
  assert.equal(bus.read(bar + 0x800, 4), 0x2, 'pending bit in the PBA');
  bus.write(bar + 0x800, 4, 0);
  assert.equal(bus.read(bar + 0x800, 4), 0x2, 'PBA is read-only');
  bus.write(bar + 16 + 12, 4, 0); // unmask entry 1
  assert.deepEqual(d.sent, [[0xfee01000, 0x41]]);
  assert.equal(bus.read(bar + 0x800, 4), 0);
  d.msix.notify(1);
  assert.deepEqual(d.sent[1], [0xfee01000, 0x41], 'unmasked: sent at once');
  // Function mask holds every vector.
  bus.write(bar + 2 * 16 + 12, 4, 0);
  cfgWrite(d.host, addr(3, 0, o + 2), 0xc000, 2);
  d.msix.notify(2);
  d.msix.notify(1);
  assert.equal(d.sent.length, 2);
  assert.equal(d.msix.mmioRead(0, 0x800, 4), 0x6);
  cfgWrite(d.host, addr(3, 0, o + 2), 0x8000, 2);
  assert.deepEqual(d.sent.slice(2), [
    [0xfee01000, 0x41],
    [0xfee02000, 0x42],
  ]);
  assert.equal(bus.read(bar + 16 * 2 + 8, 4), 0x42);
  assert.equal(bus.read(bar + 16 * 2 + 12, 4), 0, 'vector control reserved bits read 0');
  bus.write(bar + 16 * 2 + 12, 4, 0xfffffffe);
  assert.equal(bus.read(bar + 16 * 2 + 12, 4), 0);
});

test('MSI-X: bad layouts are internal errors', () => {
  const mk = (): PciFunction =>
    new PciFunction('x', { vendorId: 1, deviceId: 2, classCode: 0 }, [
      { kind: 'mem32', size: 0x100 },
      { kind: 'io', size: 0x10 },
    ]);
  const nop = (): void => {};
  assert.throws(
    () =>
      new MsixCapability(mk(), nop, { vectors: 16, tableBar: 0, tableOffset: 0, pbaBar: 0, pbaOffset: 0x80 }),
  );
  assert.throws(
    () =>
      new MsixCapability(mk(), nop, { vectors: 4, tableBar: 1, tableOffset: 0, pbaBar: 0, pbaOffset: 0x80 }),
  );
  assert.throws(
    () =>
      new MsixCapability(mk(), nop, { vectors: 4, tableBar: 0, tableOffset: 0, pbaBar: 0, pbaOffset: 0x20 }),
  );
  assert.throws(() => new MsiCapability(mk(), nop, { vectors: 3 }));
});
