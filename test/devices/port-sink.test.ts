import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatchPort } from '../../src/hw/devices/port-sink.js';
import { SystemControlB } from '../../src/hw/devices/system-control-b.js';

test('POST-code port latches the last byte', () => {
  const p = new LatchPort('post');
  assert.equal(p.portIn(0, 1), 0);
  p.portOut(0, 1, 0x1ab);
  assert.equal(p.portIn(0, 1), 0xab);
  assert.equal(p.value, 0xab);
});

test('system control port B: bits 3:0 stored, 7:4 from the status source', () => {
  const p = new SystemControlB();
  const writes: number[] = [];
  p.onWrite = (v) => writes.push(v);
  p.portOut(0, 1, 0xff);
  assert.equal(p.portIn(0, 1), 0x0f);
  assert.ok(p.timer2Gate && p.speakerEnabled);
  p.status = () => 0x20;
  p.portOut(0, 1, 0x02);
  assert.equal(p.portIn(0, 1), 0x22);
  assert.ok(!p.timer2Gate);
  assert.deepEqual(writes, [0x0f, 0x02]);
});
