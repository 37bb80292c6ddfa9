import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShutdownPort } from '../../src/hw/devices/shutdown.js';

function feed(s: string): number {
  let offs = 0;
  const dev = new ShutdownPort(() => offs++);
  for (const c of s) dev.portOut(0, 1, c.charCodeAt(0));
  return offs;
}

test('"Shutdown" written byte by byte powers off', () => {
  assert.equal(feed('Shutdown'), 1);
  assert.equal(feed('xxShutdownyy'), 1);
  assert.equal(feed('ShutShutdown'), 1, "an 'S' restarts the match");
  assert.equal(feed('SShutdown'), 1);
  assert.equal(feed('ShutdownShutdown'), 2);
});

test('anything else does not', () => {
  assert.equal(feed('Shutdow'), 0);
  assert.equal(feed('shutdown'), 0);
  assert.equal(feed('Shut down'), 0);
});

test('only the low byte of a wide write counts', () => {
  let offs = 0;
  const dev = new ShutdownPort(() => offs++);
  for (const c of 'Shutdown') dev.portOut(0, 2, 0x4100 | c.charCodeAt(0));
  assert.equal(offs, 1);
});
