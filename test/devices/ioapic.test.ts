import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventQueue } from '../../src/hw/events-queue.js';
import type { ApicMessage } from '../../src/hw/devices/apic-message.js';
import {
  IoApic,
  IOAPIC_EOI,
  IOREGSEL,
  IOWIN,
  REDIR_MASKED,
  REDIR_REMOTE_IRR,
} from '../../src/hw/devices/ioapic.js';
import { APIC_REG, Lapic, routeApicMessage } from '../../src/hw/devices/lapic.js';

function make(): { io: IoApic; sent: ApicMessage[] } {
  const sent: ApicMessage[] = [];
  return { io: new IoApic((m) => sent.push(m)), sent };
}
const read = (io: IoApic, reg: number): number => {
  io.mmioWrite(IOREGSEL, 4, reg);
  return io.mmioRead(IOWIN, 4) >>> 0;
};
const write = (io: IoApic, reg: number, v: number): void => {
  io.mmioWrite(IOREGSEL, 4, reg);
  io.mmioWrite(IOWIN, 4, v | 0);
};
/** Program pin `pin`: low dword `lo`, destination `dest`. */
const route = (io: IoApic, pin: number, lo: number, dest = 0): void => {
  write(io, 0x11 + 2 * pin, dest << 24);
  write(io, 0x10 + 2 * pin, lo);
};

test('reset values: id, version, arbitration, masked entries', () => {
  const { io } = make();
  assert.equal(read(io, 0), 0);
  assert.equal(read(io, 1), 0x00170020, '24 entries, version 0x20');
  assert.equal(read(io, 2), 0);
  for (let pin = 0; pin < 24; pin++) {
    assert.equal(read(io, 0x10 + 2 * pin), REDIR_MASKED);
    assert.equal(read(io, 0x11 + 2 * pin), 0);
  }
  assert.equal(read(io, 0x40), 0, 'unused register');
  assert.equal(new IoApic(() => {}, 2).mmioRead(IOWIN, 4) >>> 0, 0x02000000, 'initial id');
});

test('register writes: id bits, read-only version, writable entry bits, IOREGSEL', () => {
  const { io } = make();
  write(io, 0, -1);
  assert.equal(read(io, 0), 0x0f000000);
  assert.equal(read(io, 2), 0x0f000000, 'arbitration id follows the id');
  write(io, 1, 0);
  assert.equal(read(io, 1), 0x00170020);
  write(io, 0x10, -1);
  assert.equal(read(io, 0x10), 0x0001afff, 'delivery status and remote IRR are read-only');
  write(io, 0x11, -1);
  assert.equal(read(io, 0x11), 0xff000000);
  write(io, 0x7f, 123); // unused: ignored
  io.mmioWrite(IOREGSEL, 4, 0x1234);
  assert.equal(io.mmioRead(IOREGSEL, 4), 0x34);
  io.mmioWrite(IOREGSEL, 1, 0x12);
  assert.equal(io.mmioRead(IOREGSEL, 1), 0x12);
  io.mmioWrite(IOREGSEL, 4, 0x13);
  io.mmioWrite(IOWIN + 3, 1, 0x05);
  assert.equal(read(io, 0x13), 0x05000000, 'a byte write to IOWIN changes only that byte');
});

test('edge-triggered pin: a rising edge delivers once', () => {
  const { io, sent } = make();
  route(io, 4, 0x0131, 0x03); // lowest priority, physical, vector 0x31, unmasked
  io.setIrq(4, true);
  assert.deepEqual(sent, [
    {
      vector: 0x31,
      deliveryMode: 1,
      destMode: 0,
      dest: 3,
      shorthand: 0,
      level: true,
      trigger: 0,
      source: -1,
    },
  ]);
  io.setIrq(4, true);
  assert.equal(sent.length, 1, 'held high: no new edge');
  io.setIrq(4, false);
  io.setIrq(4, true);
  assert.equal(sent.length, 2);
  assert.equal(read(io, 0x18) & REDIR_REMOTE_IRR, 0, 'no remote IRR for edge');
});

test('an edge on a masked pin is lost', () => {
  const { io, sent } = make();
  route(io, 1, REDIR_MASKED | 0x21);
  io.setIrq(1, true);
  io.setIrq(1, false);
  io.setIrq(1, true);
  route(io, 1, 0x21);
  assert.equal(sent.length, 0);
  io.setIrq(1, false);
  io.setIrq(1, true);
  assert.equal(sent.length, 1);
});

test('level-triggered pin: remote IRR, EOI and re-delivery', () => {
  const { io, sent } = make();
  route(io, 10, 0x8000 | 0x0800 | 0x41, 0x01); // level, logical, vector 0x41
  io.setIrq(10, true);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].trigger, 1);
  assert.equal(sent[0].destMode, 1);
  assert.ok(read(io, 0x24) & REDIR_REMOTE_IRR);
  io.setIrq(10, true);
  assert.equal(sent.length, 1, 'remote IRR holds further deliveries');
  io.eoi(0x42);
  assert.equal(sent.length, 1, 'EOI of another vector does nothing');
  io.eoi(0x41);
  assert.equal(sent.length, 2, 'still asserted: delivered again');
  assert.ok(read(io, 0x24) & REDIR_REMOTE_IRR);
  io.setIrq(10, false);
  io.mmioWrite(IOAPIC_EOI, 4, 0x41); // the directed-EOI register
  assert.equal(sent.length, 2);
  assert.equal(read(io, 0x24) & REDIR_REMOTE_IRR, 0);
  io.setIrq(10, true);
  assert.equal(sent.length, 3);
});

test('level pin: masked while asserted, delivered on unmask; edge switch clears remote IRR', () => {
  const { io, sent } = make();
  route(io, 5, REDIR_MASKED | 0x8000 | 0x50);
  io.setIrq(5, true);
  assert.equal(sent.length, 0);
  route(io, 5, 0x8000 | 0x50);
  assert.equal(sent.length, 1);
  route(io, 5, 0x50); // now edge
  assert.equal(read(io, 0x1a) & REDIR_REMOTE_IRR, 0);
  assert.equal(sent.length, 1, 'unmasking an edge pin does not deliver');
});

test('polarity is stored but level means asserted; NMI and ExtINT entries act on edges', () => {
  const { io, sent } = make();
  route(io, 2, 0x2000 | 0x30); // active low, edge
  assert.equal(read(io, 0x14), 0x2030);
  io.setIrq(2, true);
  assert.equal(sent.length, 1);
  route(io, 0, 0x8000 | 0x0700); // ExtINT, "level"
  io.setIrq(0, true);
  io.setIrq(0, true);
  assert.equal(sent.length, 2);
  assert.equal(sent[1].deliveryMode, 7);
  assert.equal(sent[1].trigger, 0);
  route(io, 3, 0x0400);
  io.setIrq(3, true);
  assert.equal(sent[2].deliveryMode, 4);
  route(io, 6, 0x0300); // reserved delivery mode
  io.setIrq(6, true);
  assert.equal(sent.length, 3);
  io.setIrq(24, true);
  io.setIrq(-1, true);
  assert.equal(sent.length, 3, 'GSIs beyond 23 are ignored');
});

test('IOAPIC to LAPIC: a level interrupt, EOI broadcast and re-delivery', () => {
  const clock = new EventQueue();
  const lapics: Lapic[] = [];
  const io = new IoApic((m) => routeApicMessage(m, lapics));
  const host = {
    clock,
    sendMessage: (m: ApicMessage) => routeApicMessage(m, lapics),
    eoiBroadcast: (v: number) => io.eoi(v),
    onInit: () => {},
    onSipi: () => {},
    onNmi: () => {},
    kick: () => {},
  };
  lapics.push(new Lapic(0, host), new Lapic(1, host));
  for (const l of lapics) l.mmioWrite(APIC_REG.SVR, 4, 0x1ff);
  route(io, 9, 0x8000 | 0x61, 1); // level, fixed, to APIC 1
  io.setIrq(9, true);
  const [, l1] = lapics;
  assert.equal(lapics[0].pendingVector(), -1);
  assert.equal(l1.acknowledge(), 0x61);
  assert.ok((l1.mmioRead(APIC_REG.TMR + 0x30, 4) >>> 1) & 1, 'TMR set for a level interrupt');
  l1.mmioWrite(APIC_REG.EOI, 4, 0);
  assert.equal(l1.pendingVector(), 0x61, 'line still asserted: the EOI broadcast re-delivers');
  assert.equal(l1.acknowledge(), 0x61);
  io.setIrq(9, false);
  l1.mmioWrite(APIC_REG.EOI, 4, 0);
  assert.equal(l1.pendingVector(), -1);
  assert.equal(io.entry(9)[0] & REDIR_REMOTE_IRR, 0);
  // Physical broadcast reaches both.
  route(io, 11, 0x62, 0xff);
  io.setIrq(11, true);
  assert.deepEqual(
    lapics.map((l) => l.pendingVector()),
    [0x62, 0x62],
  );
});

test('snapshot and restore', () => {
  const { io } = make();
  route(io, 7, 0x8000 | 0x70, 2);
  io.setIrq(7, true);
  const s = JSON.parse(JSON.stringify(io.snapshot()));
  const b = make();
  b.io.restore(s);
  assert.deepEqual(b.io.entry(7), io.entry(7));
  b.io.eoi(0x70);
  assert.equal(b.sent.length, 1, 'the restored line is still asserted');
});
