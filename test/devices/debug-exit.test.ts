import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DebugExit } from '../../src/hw/devices/debug-exit.js';

test('a write reports the value masked to the access size', () => {
  const seen: number[] = [];
  const dev = new DebugExit((v) => seen.push(v));
  dev.portOut(0, 1, 0x142);
  dev.portOut(0, 2, 0x12345);
  dev.portOut(0, 4, -1);
  dev.portOut(2, 1, 0);
  assert.deepEqual(seen, [0x42, 0x2345, 0xffffffff, 0]);
  assert.equal(dev.portIn(0, 1), 0);
});
