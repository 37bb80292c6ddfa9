import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FwCfg } from '../../src/hw/devices/fwcfg.js';

function read(dev: FwCfg, selector: number, n: number): number[] {
  dev.portOut(0, 2, selector);
  return Array.from({ length: n }, () => dev.portIn(1, 1));
}
const le = (bytes: number[]): number => bytes.reduceRight((acc, b) => acc * 256 + b, 0);

test('signature, id, cpus', () => {
  const dev = new FwCfg({ ramBytes: 64 << 20, cpus: 2 });
  assert.equal(String.fromCharCode(...read(dev, 0x0000, 4)), 'QEMU');
  assert.equal(le(read(dev, 0x0001, 4)), 1, 'traditional interface, no DMA');
  assert.equal(le(read(dev, 0x0005, 2)), 2);
  assert.equal(le(read(dev, 0x000f, 2)), 2, 'max cpus defaults to cpus');
  assert.equal(le(read(new FwCfg({ ramBytes: 1 << 30, cpus: 1, maxCpus: 8 }), 0x000f, 2)), 8);
});

test('RAM size is a u64, including RAM above 4 GiB', () => {
  assert.equal(le(read(new FwCfg({ ramBytes: 64 << 20, cpus: 1 }), 0x0003, 8)), 64 << 20);
  assert.equal(le(read(new FwCfg({ ramBytes: 5 * 2 ** 30, cpus: 1 }), 0x0003, 8)), 5 * 2 ** 30);
});

test('selecting rewinds; reads past the end and unknown items give 0', () => {
  const dev = new FwCfg({ ramBytes: 1 << 24, cpus: 1 });
  assert.deepEqual(read(dev, 0x0000, 6), [0x51, 0x45, 0x4d, 0x55, 0, 0]);
  assert.deepEqual(read(dev, 0x0000, 2), [0x51, 0x45]);
  assert.deepEqual(read(dev, 0x1234, 4), [0, 0, 0, 0]);
  assert.deepEqual(read(dev, 0x8003, 2), [0, 0]);
});

test('file directory: empty, then with a file', () => {
  const dev = new FwCfg({ ramBytes: 1 << 24, cpus: 1 });
  assert.deepEqual(read(dev, 0x0019, 4), [0, 0, 0, 0]);
  const sel = dev.addFile('etc/test', new Uint8Array([9, 8, 7]));
  assert.equal(sel, 0x20);
  const dir = read(dev, 0x0019, 4 + 64);
  assert.deepEqual(dir.slice(0, 4), [0, 0, 0, 1], 'count, big-endian');
  assert.deepEqual(dir.slice(4, 8), [0, 0, 0, 3], 'size, big-endian');
  assert.deepEqual(dir.slice(8, 10), [0, 0x20], 'select, big-endian');
  assert.equal(String.fromCharCode(...dir.slice(12, 20)), 'etc/test');
  assert.equal(dir[20], 0);
  assert.deepEqual(read(dev, sel, 4), [9, 8, 7, 0]);
});

test('invalid access widths: byte selector writes ignored, wide data reads float', () => {
  const dev = new FwCfg({ ramBytes: 1 << 24, cpus: 1 });
  dev.portOut(0, 2, 0x0000);
  dev.portIn(1, 1);
  dev.portOut(0, 1, 0x01); // not a selector write: the current item continues
  assert.equal(dev.portIn(1, 1), 0x45);
  assert.equal(dev.portIn(1, 2), 0xffff);
  assert.equal(dev.portIn(0, 2), 0xffff);
  dev.portOut(1, 1, 0x99); // data writes are ignored
  assert.equal(dev.portIn(1, 1), 0x4d);
});
