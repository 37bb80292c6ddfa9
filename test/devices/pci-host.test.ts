import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InternalError } from '../../src/common/index.js';
import { PciFunction } from '../../src/hw/devices/pci-function.js';
import { PciHost } from '../../src/hw/devices/pci-host.js';

const addr = (dev: number, fn: number, reg: number, bus = 0): number =>
  (0x80000000 | (bus << 16) | (dev << 11) | (fn << 8) | reg) >>> 0;

function cfgRead(host: PciHost, a: number, size: 1 | 2 | 4 = 4): number {
  host.portOut(0, 4, a & ~3);
  return host.portIn(4 + (a & 3), size) >>> 0;
}
function cfgWrite(host: PciHost, a: number, value: number, size: 1 | 2 | 4 = 4): void {
  host.portOut(0, 4, a & ~3);
  host.portOut(4 + (a & 3), size, value);
}

test('host bridge at 00:00.0 is an i440FX', () => {
  const host = new PciHost();
  assert.equal(cfgRead(host, addr(0, 0, 0)), 0x12378086);
  assert.equal(cfgRead(host, addr(0, 0, 0x08)), 0x06000002, 'class 06/00/00, revision 2');
  assert.equal(cfgRead(host, addr(0, 0, 0x0e), 1), 0, 'header type 0, single function');
  assert.equal(cfgRead(host, addr(0, 0, 0x02), 2), 0x1237);
  assert.equal(cfgRead(host, addr(0, 0, 0x0b), 1), 0x06);
  assert.equal(cfgRead(host, addr(0, 0, 0x2c)), 0x11001af4);
});

test('absent functions, other buses and disabled accesses read all ones', () => {
  const host = new PciHost();
  assert.equal(cfgRead(host, addr(1, 0, 0)), 0xffffffff);
  assert.equal(cfgRead(host, addr(0, 1, 0)), 0xffffffff);
  assert.equal(cfgRead(host, addr(0, 0, 0, 1)), 0xffffffff);
  assert.equal(cfgRead(host, addr(0, 0, 0) & 0x7fffffff), 0xffffffff);
  assert.equal(cfgRead(host, addr(5, 0, 0), 1), 0xff);
  assert.equal(cfgRead(host, addr(5, 0, 0), 2), 0xffff);
});

test('CONFIG_ADDRESS: dword only, reserved and low bits read 0', () => {
  const host = new PciHost();
  host.portOut(0, 4, 0xffffffff);
  assert.equal(host.portIn(0, 4) >>> 0, 0x80fffffc);
  host.portOut(0, 1, 0x00);
  host.portOut(2, 2, 0x0000);
  assert.equal(host.portIn(0, 4) >>> 0, 0x80fffffc, 'narrow writes do not touch it');
  assert.equal(host.portIn(0, 2), 0xffff);
});

test('0xCF9 reset control', () => {
  const host = new PciHost();
  const resets: boolean[] = [];
  host.onReset = (hard) => resets.push(hard);
  host.portOut(1, 1, 0x02);
  assert.equal(host.portIn(1, 1), 0x02);
  host.portOut(1, 1, 0x06);
  host.portOut(1, 1, 0x04);
  assert.deepEqual(resets, [true, false]);
});

function nic(): PciFunction {
  return new PciFunction(
    'test-nic',
    { vendorId: 0x8086, deviceId: 0x100e, classCode: 0x020000, interruptPin: 1, status: 0x8000 },
    [
      { kind: 'mem32', size: 0x20000 },
      { kind: 'io', size: 0x40 },
      { kind: 'mem64', size: 0x100000, prefetchable: true },
    ],
  );
}

test('BAR sizing: writing all ones reads back the size mask and type bits', () => {
  const host = new PciHost();
  host.add(3, 0, nic());
  for (let i = 0; i < 6; i++) cfgWrite(host, addr(3, 0, 0x10 + 4 * i), 0xffffffff);
  assert.equal(cfgRead(host, addr(3, 0, 0x10)), 0xfffe0000);
  assert.equal(cfgRead(host, addr(3, 0, 0x14)), 0xffffffc1);
  assert.equal(cfgRead(host, addr(3, 0, 0x18)), 0xfff0000c);
  assert.equal(cfgRead(host, addr(3, 0, 0x1c)), 0xffffffff, 'upper half of the 64-bit BAR');
  assert.equal(cfgRead(host, addr(3, 0, 0x20)), 0, 'unimplemented BAR');
  assert.equal(cfgRead(host, addr(3, 0, 0x24)), 0);
});

test('BAR programming and decoding', () => {
  const host = new PciHost();
  const f = nic();
  host.add(3, 0, f);
  cfgWrite(host, addr(3, 0, 0x10), 0xfebc1234);
  cfgWrite(host, addr(3, 0, 0x14), 0xc0c3);
  cfgWrite(host, addr(3, 0, 0x18), 0x12300000);
  cfgWrite(host, addr(3, 0, 0x1c), 0x8);
  assert.equal(f.barAddress(0), 0xfebc0000);
  assert.equal(f.barAddress(1), 0xc0c0);
  assert.equal(f.barAddress(2), 0x8_1230_0000);
  cfgWrite(host, addr(3, 0, 0x12), 0xfed0, 2);
  assert.equal(f.barAddress(0), 0xfed00000, 'word write to the upper half');
});

test('read-only, writable and write-1-to-clear registers', () => {
  const host = new PciHost();
  host.add(3, 0, nic());
  cfgWrite(host, addr(3, 0, 0), 0);
  assert.equal(cfgRead(host, addr(3, 0, 0)), 0x100e8086, 'ids are read-only');
  cfgWrite(host, addr(3, 0, 0x04), 0xffff, 2);
  assert.equal(cfgRead(host, addr(3, 0, 0x04), 2), 0x0547);
  assert.equal(cfgRead(host, addr(3, 0, 0x06), 2), 0x8000);
  cfgWrite(host, addr(3, 0, 0x06), 0x0000, 2);
  assert.equal(cfgRead(host, addr(3, 0, 0x06), 2), 0x8000, 'writing 0 keeps status bits');
  cfgWrite(host, addr(3, 0, 0x06), 0x8000, 2);
  assert.equal(cfgRead(host, addr(3, 0, 0x06), 2), 0x0000, 'writing 1 clears them');
  cfgWrite(host, addr(3, 0, 0x3c), 0x0b, 1);
  assert.equal(cfgRead(host, addr(3, 0, 0x3c), 2), 0x010b, 'interrupt line writable, pin read-only');
  cfgWrite(host, addr(0, 0, 0x04), 0xffff, 2);
  assert.equal(cfgRead(host, addr(0, 0, 0x04), 2), 0x0146, 'host bridge command: only SERR#/parity settable');
});

test('multi-function devices', () => {
  const host = new PciHost();
  host.add(4, 0, nic());
  assert.equal(cfgRead(host, addr(4, 0, 0x0e), 1), 0x00);
  host.add(4, 1, nic());
  assert.equal(cfgRead(host, addr(4, 0, 0x0e), 1), 0x80);
  assert.equal(cfgRead(host, addr(4, 1, 0)), 0x100e8086);
  assert.throws(() => host.add(5, 1, nic()), InternalError);
  assert.throws(() => host.add(4, 1, nic()), InternalError);
  assert.equal(host.get(4, 1)?.name, 'test-nic');
});

test('configWritten hook lets a device react to BAR moves', () => {
  const moves: number[] = [];
  class Dev extends PciFunction {
    protected override configWritten(reg: number): void {
      if (reg === 0x10) moves.push(this.barAddress(0));
    }
  }
  const host = new PciHost();
  host.add(
    6,
    0,
    new Dev('dev', { vendorId: 1, deviceId: 2, classCode: 0xff0000 }, [{ kind: 'mem32', size: 4096 }]),
  );
  cfgWrite(host, addr(6, 0, 0x10), 0xe0001000);
  assert.deepEqual(moves, [0xe0001000]);
});

test('bad BAR definitions are internal errors', () => {
  const id = { vendorId: 1, deviceId: 2, classCode: 0 };
  assert.throws(() => new PciFunction('x', id, [{ kind: 'mem32', size: 3000 }]), InternalError);
  assert.throws(() => new PciFunction('x', id, [{ kind: 'io', size: 2 }]), InternalError);
  assert.throws(
    () =>
      new PciFunction('x', id, [
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        { kind: 'mem64', size: 16 },
      ]),
    InternalError,
  );
});
