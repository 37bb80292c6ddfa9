import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Uart16550 } from '../../src/hw/devices/uart16550.js';

const [RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR] = [0, 1, 2, 3, 4, 5, 6, 7];
const FCR = IIR;

function make(): { uart: Uart16550; out: number[]; irq: boolean[] } {
  const out: number[] = [];
  const irq: boolean[] = [];
  const uart = new Uart16550(
    (b) => out.push(b),
    (l) => irq.push(l),
  );
  return { uart, out, irq };
}
const rd = (u: Uart16550, r: number): number => u.portIn(r, 1);
const wr = (u: Uart16550, r: number, v: number): void => u.portOut(r, 1, v);

test('reset state: transmitter empty, nothing pending, terminal attached', () => {
  const { uart, irq } = make();
  assert.equal(rd(uart, LSR), 0x60);
  assert.equal(rd(uart, IIR), 0x01);
  assert.equal(rd(uart, IER), 0);
  assert.equal(rd(uart, LCR), 0);
  assert.equal(rd(uart, MCR), 0);
  assert.equal(rd(uart, MSR), 0xb0);
  assert.deepEqual(irq, []);
});

test('THR writes go to the sink at once', () => {
  const { uart, out } = make();
  for (const c of 'hi\n') wr(uart, RBR, c.charCodeAt(0));
  assert.deepEqual(out, [0x68, 0x69, 0x0a]);
  assert.equal(rd(uart, LSR) & 0x60, 0x60);
});

test('DLAB switches offsets 0 and 1 to the divisor latch', () => {
  const { uart, out } = make();
  wr(uart, IER, 0x05);
  wr(uart, LCR, 0x83);
  wr(uart, RBR, 0x01);
  wr(uart, IER, 0x00);
  assert.equal(rd(uart, RBR), 0x01);
  assert.equal(rd(uart, IER), 0x00);
  wr(uart, LCR, 0x03);
  assert.deepEqual(out, [], 'DLL write does not transmit');
  assert.equal(rd(uart, IER), 0x05, 'DLM write left IER alone');
  assert.equal(rd(uart, LCR), 0x03);
  wr(uart, LCR, 0x80);
  assert.equal(rd(uart, RBR) | (rd(uart, IER) << 8), 0x0001);
});

test('scratch register', () => {
  const { uart } = make();
  wr(uart, SCR, 0x5a);
  assert.equal(rd(uart, SCR), 0x5a);
});

test('input: DR set while data is queued; RBR reads in order', () => {
  const { uart } = make();
  assert.equal(rd(uart, RBR), 0);
  uart.pushInput([0x41, 0x42, 0x43]);
  assert.equal(rd(uart, LSR) & 1, 1);
  assert.equal(uart.pendingInput, 2, 'non-FIFO mode: one byte in RBR, the rest held back');
  assert.equal(rd(uart, RBR), 0x41);
  assert.equal(rd(uart, RBR), 0x42);
  assert.equal(rd(uart, RBR), 0x43);
  assert.equal(rd(uart, LSR) & 1, 0);
});

test('FIFO mode: 16-byte receiver, IIR bits 7:6 set, FCR clears the receiver', () => {
  const { uart } = make();
  wr(uart, FCR, 0x01);
  assert.equal(rd(uart, IIR), 0xc1);
  uart.pushInput(new Array(20).fill(0x33));
  assert.equal(uart.pendingInput, 4);
  wr(uart, FCR, 0x03); // clear RX FIFO; refilled from the host backlog
  assert.equal(uart.pendingInput, 0);
  let n = 0;
  while (rd(uart, LSR) & 1) {
    rd(uart, RBR);
    n++;
  }
  assert.equal(n, 4);
  wr(uart, FCR, 0x00);
  assert.equal(rd(uart, IIR), 0x01);
  wr(uart, IER, 0x01);
  uart.pushInput([1, 2]);
  wr(uart, FCR, 0xc0); // trigger 14 without FCR0: not programmed, FIFO stays off
  assert.equal(rd(uart, IIR), 0x04);
  assert.equal(uart.pendingInput, 1);
});

test('received-data interrupt follows IER and data availability', () => {
  const { uart, irq } = make();
  wr(uart, IER, 0x01);
  assert.deepEqual(irq, []);
  uart.pushInput([1, 2]);
  assert.deepEqual(irq, [true]);
  assert.equal(rd(uart, IIR), 0x04);
  rd(uart, RBR);
  assert.deepEqual(irq, [true], 'second byte moves in: still pending');
  rd(uart, RBR);
  assert.deepEqual(irq, [true, false]);
  assert.equal(rd(uart, IIR), 0x01);
});

test('FIFO trigger level: below it, data is reported as a character timeout', () => {
  const { uart } = make();
  wr(uart, FCR, 0x41); // enable, trigger level 4
  wr(uart, IER, 0x01);
  uart.pushInput([1, 2, 3]);
  assert.equal(rd(uart, IIR), 0xcc);
  uart.pushInput([4]);
  assert.equal(rd(uart, IIR), 0xc4);
});

test('THRE interrupt: raised on enabling, cleared by reading IIR, raised again by a THR write', () => {
  const { uart, irq } = make();
  wr(uart, IER, 0x02);
  assert.deepEqual(irq, [true]);
  assert.equal(rd(uart, IIR), 0x02);
  assert.deepEqual(irq, [true, false]);
  assert.equal(rd(uart, IIR), 0x01);
  wr(uart, RBR, 0x41);
  assert.deepEqual(irq, [true, false, true]);
  wr(uart, IER, 0x00);
  assert.deepEqual(irq, [true, false, true, false]);
});

test('interrupt priority: line status > received data > THRE > modem status', () => {
  const { uart } = make();
  wr(uart, MCR, 0x10); // loopback, to cause an overrun and modem-status changes
  wr(uart, IER, 0x0f);
  wr(uart, RBR, 1);
  wr(uart, RBR, 2); // non-FIFO: overrun, 2 replaces 1
  wr(uart, MCR, 0x13); // DTR, RTS -> DSR, CTS deltas
  assert.equal(rd(uart, IIR), 0x06);
  assert.equal(rd(uart, LSR), 0x63, 'OE|DR|THRE|TEMT; reading LSR clears OE');
  assert.equal(rd(uart, LSR), 0x61);
  assert.equal(rd(uart, IIR), 0x04);
  assert.equal(rd(uart, RBR), 2);
  assert.equal(rd(uart, IIR), 0x02);
  assert.equal(rd(uart, IIR), 0x00, 'modem status');
  // Entering loopback dropped CTS, DSR, DCD (deltas 0x0b); DTR/RTS raised CTS, DSR again.
  assert.equal(rd(uart, MSR), 0x3b);
  assert.equal(rd(uart, MSR), 0x30, 'deltas clear on read');
  assert.equal(rd(uart, IIR), 0x01);
});

test('loopback: transmitted bytes come back, modem inputs mirror MCR', () => {
  const { uart, out } = make();
  wr(uart, FCR, 0x01);
  wr(uart, MCR, 0x1f);
  assert.equal(rd(uart, MSR) & 0xf0, 0xf0);
  wr(uart, RBR, 0x55);
  wr(uart, RBR, 0xaa);
  assert.deepEqual(out, []);
  assert.equal(rd(uart, RBR), 0x55);
  assert.equal(rd(uart, RBR), 0xaa);
  rd(uart, MSR);
  wr(uart, MCR, 0x10); // RI (OUT1) falls: trailing-edge indicator
  assert.equal(rd(uart, MSR), 0x0f);
  wr(uart, MCR, 0x00);
  assert.equal(rd(uart, MSR) & 0xf0, 0xb0);
  wr(uart, RBR, 0x41);
  assert.deepEqual(out, [0x41]);
});

test('FIFO overrun keeps the FIFO and drops the new character', () => {
  const { uart } = make();
  wr(uart, FCR, 0x01);
  wr(uart, MCR, 0x10);
  for (let i = 0; i < 17; i++) wr(uart, RBR, i);
  assert.equal(rd(uart, LSR) & 0x02, 0x02);
  for (let i = 0; i < 16; i++) assert.equal(rd(uart, RBR), i);
  assert.equal(rd(uart, LSR) & 0x01, 0);
});
