import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pit8254, PIT_HZ } from '../../src/hw/devices/pit8254.js';
import { TickRate } from '../../src/hw/devices/tick-rate.js';
import { CPU_HZ } from '../../src/hw/cost.js';
import { SystemControlB } from '../../src/hw/devices/system-control-b.js';
import { SimClock } from './sim-clock.js';

const rate = new TickRate(PIT_HZ);
/** Exact reference: the first cycle at which `ticks` PIT clock pulses have happened. */
const cycleOf = (ticks: number): number =>
  Number((BigInt(ticks) * BigInt(CPU_HZ) + BigInt(PIT_HZ) - 1n) / BigInt(PIT_HZ));

interface Rig {
  clock: SimClock;
  pit: Pit8254;
  /** (cycle, level) of every change of counter 0's OUT as the IRQ line saw it. */
  edges: [number, boolean][];
}
function rig(initial: 'bios' | 'unprogrammed' = 'unprogrammed'): Rig {
  const clock = new SimClock();
  const edges: [number, boolean][] = [];
  const pit = new Pit8254(clock, (level) => edges.push([clock.now(), level]), { initial });
  return { clock, pit, edges };
}
const ctl = (pit: Pit8254, v: number): void => pit.portOut(3, 1, v);
const wr = (pit: Pit8254, ch: number, v: number): void => pit.portOut(ch, 1, v);
const rd = (pit: Pit8254, ch: number): number => pit.portIn(ch, 1);
function writeWord(pit: Pit8254, ch: number, v: number): void {
  wr(pit, ch, v & 0xff);
  wr(pit, ch, v >>> 8);
}
function latchRead(pit: Pit8254, ch: number): number {
  ctl(pit, ch << 6);
  const lo = rd(pit, ch);
  return lo | (rd(pit, ch) << 8);
}
const rises = (edges: [number, boolean][]): number[] => edges.filter(([, l]) => l).map(([c]) => c);

test('tick conversion is exact and never drifts', () => {
  for (const c of [0, 1, 2430, 2431, 2900000000, 123456789012345, 8.9e15]) {
    const ref = Number((BigInt(c) * BigInt(PIT_HZ)) / BigInt(CPU_HZ));
    assert.equal(rate.ticksAt(c), ref, `ticksAt(${c})`);
  }
  for (const t of [0, 1, 1193182, 65536 * 1000 + 7, 3.6e12]) {
    const c = rate.cycleOf(t);
    assert.equal(c, cycleOf(t));
    assert.equal(rate.ticksAt(c), t);
    if (t) assert.equal(rate.ticksAt(c - 1), t - 1);
  }
});

test('mode 2 on counter 0: an IRQ rising edge at the exact cycle of every terminal count', () => {
  const { clock, pit, edges } = rig();
  clock.advanceTo(12345);
  const t0 = rate.ticksAt(12345);
  ctl(pit, 0x34); // counter 0, LSB then MSB, mode 2, binary
  assert.deepEqual(edges, [[12345, true]], 'OUT rises from its unprogrammed low state');
  edges.length = 0;
  writeWord(pit, 0, 1193); // ~1 kHz
  clock.advanceTo(cycleOf(t0 + 1 + 1193 * 1000) + 1);
  const r = rises(edges);
  assert.equal(r.length, 1000);
  for (let k = 0; k < 1000; k++) assert.equal(r[k], cycleOf(t0 + 1 + 1193 * (k + 1)), `edge ${k}`);
  // OUT is low for exactly one pulse before each reload.
  const falls = edges.filter(([, l]) => !l).map(([c]) => c);
  assert.equal(falls[0], cycleOf(t0 + 1 + 1192));
});

test('BIOS state: counter 0 runs in mode 2 at 18.2 Hz from time 0', () => {
  const { clock, pit, edges } = rig('bios');
  clock.advanceTo(CPU_HZ); // one simulated second
  const r = rises(edges);
  assert.equal(r.length, 18);
  assert.equal(r[0], cycleOf(65536));
  assert.equal(r[17], cycleOf(65536 * 18));
  ctl(pit, 0xe2); // read-back status of counter 0
  assert.equal(rd(pit, 0), 0x80 | 0x30 | 0x04, 'OUT high, not null, LSB/MSB, mode 2, binary');
});

test('mode 0: OUT rises N+1 pulses after the count is written; counter wraps after', () => {
  const { clock, pit, edges } = rig();
  ctl(pit, 0x30); // counter 0, LSB/MSB, mode 0
  assert.equal(pit.out(0), false);
  writeWord(pit, 0, 100);
  assert.equal(latchRead(pit, 0), 0, 'CE not yet loaded reads what it held');
  clock.advanceTo(cycleOf(1));
  assert.equal(latchRead(pit, 0), 100, 'loaded on the next pulse, not decremented');
  clock.advanceTo(cycleOf(51));
  assert.equal(latchRead(pit, 0), 50);
  clock.advanceTo(cycleOf(101) - 1);
  assert.equal(pit.out(0), false);
  clock.advanceTo(cycleOf(101));
  assert.equal(pit.out(0), true);
  assert.deepEqual(edges, [[cycleOf(101), true]]);
  clock.advanceTo(cycleOf(103));
  assert.equal(latchRead(pit, 0), 0xfffe, 'keeps counting down through zero');
  clock.advanceTo(cycleOf(200000));
  assert.equal(edges.length, 1, 'one interrupt only');
});

test('mode 0: writing the first byte of a new count stops counting and drops OUT', () => {
  const { clock, pit, edges } = rig();
  ctl(pit, 0x30);
  writeWord(pit, 0, 10);
  clock.advanceTo(cycleOf(20));
  assert.equal(pit.out(0), true);
  wr(pit, 0, 5);
  assert.equal(pit.out(0), false);
  const held = latchRead(pit, 0);
  clock.advanceTo(cycleOf(30));
  assert.equal(latchRead(pit, 0), held, 'stopped');
  wr(pit, 0, 0);
  clock.advanceTo(cycleOf(30 + 6) - 1);
  assert.equal(pit.out(0), false);
  clock.advanceTo(cycleOf(30 + 6));
  assert.equal(pit.out(0), true);
  assert.deepEqual(
    edges.map(([, l]) => l),
    [true, false, true],
  );
});

test('access modes: LSB only, MSB only, and alternating LSB/MSB reads', () => {
  const { clock, pit } = rig();
  ctl(pit, 0x10); // counter 0, LSB only, mode 0
  wr(pit, 0, 0x80);
  clock.advanceTo(cycleOf(1 + 0x10));
  assert.equal(rd(pit, 0), 0x70);
  ctl(pit, 0x20); // MSB only
  wr(pit, 0, 0x12);
  clock.advanceTo(cycleOf(rate.ticksAt(clock.time) + 1));
  assert.equal(rd(pit, 0), 0x12);
  ctl(pit, 0x30);
  writeWord(pit, 0, 0x1234);
  clock.advance(cycleOf(2));
  const lo = rd(pit, 0),
    hi = rd(pit, 0);
  assert.equal(hi, 0x12);
  assert.ok(lo <= 0x34 && lo > 0x20);
});

test('counter latch holds the value until both bytes are read; a second latch is ignored', () => {
  const { clock, pit } = rig();
  ctl(pit, 0x30);
  writeWord(pit, 0, 1000);
  clock.advanceTo(cycleOf(101));
  ctl(pit, 0x00);
  clock.advanceTo(cycleOf(201));
  ctl(pit, 0x00); // ignored: already latched
  assert.equal(rd(pit, 0), 900 & 0xff);
  clock.advanceTo(cycleOf(301));
  assert.equal(rd(pit, 0), 900 >>> 8);
  assert.equal(latchRead(pit, 0), 700);
});

test('read-back: status before count, null count until the count is loaded', () => {
  const { clock, pit } = rig();
  ctl(pit, 0xb7); // counter 2, LSB/MSB, mode 3, BCD
  writeWord(pit, 2, 0x0100);
  ctl(pit, 0xc8); // read-back count and status of counter 2
  assert.equal(rd(pit, 2), 0x40 | 0x80 | 0x37, 'null count, OUT high, LSB/MSB, mode 3, BCD');
  pit.setGate2(true);
  clock.advanceTo(cycleOf(rate.ticksAt(clock.time) + 2));
  ctl(pit, 0xe8); // status only
  assert.equal(rd(pit, 2) & 0x40, 0, 'count loaded');
});

test('BCD counting reads back decimal digits', () => {
  const { clock, pit } = rig();
  ctl(pit, 0x31); // counter 0, LSB/MSB, mode 0, BCD
  writeWord(pit, 0, 0x1000);
  clock.advanceTo(cycleOf(1 + 1));
  assert.equal(latchRead(pit, 0), 0x0999);
  clock.advanceTo(cycleOf(1 + 1000 + 1));
  assert.equal(latchRead(pit, 0), 0x9999, 'wraps modulo 10000');
});

test('mode 3: square wave, odd counts high for (N+1)/2 pulses', () => {
  const { clock, pit, edges } = rig();
  ctl(pit, 0x36);
  edges.length = 0;
  writeWord(pit, 0, 5);
  clock.advanceTo(cycleOf(1 + 5 * 3));
  const seq = edges.map(([c, l]) => [rate.ticksAt(c) - 1, l]);
  assert.deepEqual(seq, [
    [3, false],
    [5, true],
    [8, false],
    [10, true],
    [13, false],
    [15, true],
  ]);
  ctl(pit, 0x36);
  const t = rate.ticksAt(clock.time);
  writeWord(pit, 0, 8);
  clock.advanceTo(cycleOf(t + 1 + 2));
  assert.equal(latchRead(pit, 0), 4, 'even counts decrement by two');
});

test('mode 2: a new count takes effect at the end of the current period', () => {
  const { clock, pit, edges } = rig();
  ctl(pit, 0x34);
  edges.length = 0;
  writeWord(pit, 0, 100);
  clock.advanceTo(cycleOf(1 + 150));
  writeWord(pit, 0, 10);
  clock.advanceTo(cycleOf(1 + 200 + 30));
  assert.deepEqual(rises(edges), [101, 201, 211, 221, 231].map(cycleOf));
});

test('mode 4 (Linux one-shot): OUT strobes low N+1 pulses after the write, IRQ on the rise', () => {
  const { clock, pit, edges } = rig();
  ctl(pit, 0x38);
  edges.length = 0;
  writeWord(pit, 0, 50);
  clock.advanceTo(cycleOf(100));
  assert.deepEqual(edges, [
    [cycleOf(51), false],
    [cycleOf(52), true],
  ]);
});

test('counter 2 gate through port 0x61: mode 0 PIT calibration loop', () => {
  const { clock, pit } = rig();
  ctl(pit, 0xb0); // counter 2, LSB/MSB, mode 0
  writeWord(pit, 2, 0xffff);
  clock.advanceTo(cycleOf(1000));
  assert.equal(latchRead(pit, 2), 0xffff, 'gate low: loaded but not counting');
  pit.setGate2(true);
  const t = rate.ticksAt(clock.time);
  clock.advanceTo(cycleOf(t + 0x100));
  assert.equal(latchRead(pit, 2), 0xffff - 0x100);
  pit.setGate2(false);
  clock.advanceTo(cycleOf(t + 0x1000));
  assert.equal(latchRead(pit, 2), 0xffff - 0x100, 'suspended while the gate is low');
  pit.setGate2(true);
  const t2 = rate.ticksAt(clock.time);
  clock.advanceTo(cycleOf(t2 + 0xffff - 0x100) - 1);
  assert.equal(pit.out2(), false);
  clock.advanceTo(cycleOf(t2 + 0xffff - 0x100));
  assert.equal(pit.out2(), true);
});

test('counter 2 in mode 2/3 reloads on the gate rising edge and holds OUT high while low', () => {
  const { clock, pit } = rig();
  ctl(pit, 0xb6); // counter 2, mode 3
  writeWord(pit, 2, 20);
  pit.setGate2(true);
  const t = rate.ticksAt(clock.time);
  clock.advanceTo(cycleOf(t + 1 + 10));
  assert.equal(pit.out2(), false);
  pit.setGate2(false);
  assert.equal(pit.out2(), true);
  clock.advance(10000);
  pit.setGate2(true);
  const t2 = rate.ticksAt(clock.time);
  clock.advanceTo(cycleOf(t2 + 1 + 9));
  assert.equal(pit.out2(), true);
  clock.advanceTo(cycleOf(t2 + 1 + 10));
  assert.equal(pit.out2(), false);
});

test('mode 1 on counter 2: gate-triggered one-shot', () => {
  const { clock, pit } = rig();
  ctl(pit, 0xb2);
  writeWord(pit, 2, 10);
  clock.advance(100000);
  assert.equal(pit.out2(), true, 'armed, waiting for a trigger');
  pit.setGate2(true);
  const t = rate.ticksAt(clock.time);
  clock.advanceTo(cycleOf(t + 1));
  assert.equal(pit.out2(), false);
  clock.advanceTo(cycleOf(t + 11));
  assert.equal(pit.out2(), true);
});

test('wide port accesses and the write-only control register', () => {
  const { pit } = rig();
  assert.equal(pit.portIn(3, 1), 0xff);
  pit.portOut(3, 1, 0x30);
  pit.portOut(0, 2, 0x0000); // two bytes to ports 0x40 and 0x41
  assert.equal(pit.portIn(2, 4) >>> 0 >= 0xffff0000, true, 'bytes beyond 0x43 float');
});

test('mode 3: a new count written in the high half-cycle takes over at the end of that half', () => {
  const { clock, pit, edges } = rig();
  ctl(pit, 0x36);
  writeWord(pit, 0, 10);
  edges.length = 0;
  clock.advanceTo(cycleOf(3));
  writeWord(pit, 0, 4);
  clock.advanceTo(cycleOf(13));
  assert.deepEqual(
    edges.map(([c, l]) => [rate.ticksAt(c), l]),
    [
      [6, false],
      [8, true],
      [10, false],
      [12, true],
    ],
  );
});

test('wired to system control port B: gate from bit 0, OUT2 in bit 5', () => {
  const { clock, pit } = rig();
  const portB = new SystemControlB();
  portB.status = () => (pit.out2() ? 0x20 : 0);
  portB.onWrite = (v) => pit.setGate2((v & 1) !== 0);
  portB.portOut(0, 1, 0x00);
  ctl(pit, 0xb0);
  writeWord(pit, 2, 1000);
  portB.portOut(0, 1, 0x01); // gate on, speaker off
  const t = rate.ticksAt(clock.time);
  let polls = 0;
  while ((portB.portIn(0, 1) & 0x20) === 0) {
    clock.advance(100);
    polls++;
  }
  assert.equal(rate.ticksAt(clock.time), t + 1001, 'loaded on the next pulse, then 1000 decrements');
  assert.ok(polls > 0);
});
