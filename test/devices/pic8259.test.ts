import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PicPair } from '../../src/hw/devices/pic-pair.js';
import { Pic8259 } from '../../src/hw/devices/pic8259.js';

/** The sequence BIOSes and kernels use: vectors 0x20/0x28, cascade on IR2, 8086 mode. */
function initPair(icw4 = 0x01): PicPair {
  const pics = new PicPair();
  for (const [chip, base, icw3] of [
    [pics.master, 0x20, 0x04],
    [pics.slave, 0x28, 0x02],
  ] as const) {
    chip.portOut(0, 1, 0x11);
    chip.portOut(1, 1, base);
    chip.portOut(1, 1, icw3);
    chip.portOut(1, 1, icw4);
  }
  return pics;
}
const eoi = (chip: Pic8259): void => chip.portOut(0, 1, 0x20);

test('initialization sequence: vectors, cascade, IMR cleared', () => {
  const pics = initPair();
  assert.equal(pics.master.portIn(1, 1), 0);
  assert.equal(pics.master.cascadeConfig, 0x04);
  assert.equal(pics.slave.cascadeConfig, 0x02);
  pics.master.portOut(1, 1, 0xfb);
  assert.equal(pics.master.portIn(1, 1), 0xfb, 'OCW1 after the sequence sets IMR');
  pics.master.portOut(0, 1, 0x11);
  assert.equal(pics.master.imr, 0, 'ICW1 clears IMR');
});

test('an edge on IRQ0 is delivered once, then held off until EOI', () => {
  const pics = initPair();
  assert.equal(pics.hasInterrupt(), false);
  pics.raiseIrq(0);
  assert.equal(pics.hasInterrupt(), true);
  assert.equal(pics.acknowledge(), 0x20);
  assert.equal(pics.master.isr, 0x01);
  assert.equal(pics.hasInterrupt(), false);
  pics.raiseIrq(0); // line still high: no new edge
  pics.lowerIrq(0);
  pics.raiseIrq(0);
  pics.raiseIrq(1);
  assert.equal(pics.hasInterrupt(), false, 'IRQ0 in service blocks IRQ0 and lower priorities');
  eoi(pics.master);
  assert.equal(pics.acknowledge(), 0x20);
  eoi(pics.master);
  assert.equal(pics.acknowledge(), 0x21);
  eoi(pics.master);
  assert.equal(pics.hasInterrupt(), false);
});

test('a higher priority request interrupts a lower one in service', () => {
  const pics = initPair();
  pics.raiseIrq(4);
  assert.equal(pics.acknowledge(), 0x24);
  pics.raiseIrq(1);
  assert.equal(pics.acknowledge(), 0x21);
  assert.equal(pics.master.isr, 0x12);
  eoi(pics.master); // non-specific EOI clears the highest priority: IR1
  assert.equal(pics.master.isr, 0x10);
});

test('masking holds a request in IRR; OCW3 selects IRR or ISR for reads', () => {
  const pics = initPair();
  pics.master.portOut(1, 1, 0x08);
  pics.raiseIrq(3);
  assert.equal(pics.hasInterrupt(), false);
  pics.master.portOut(0, 1, 0x0a);
  assert.equal(pics.master.portIn(0, 1), 0x08, 'IRR');
  pics.master.portOut(1, 1, 0x00);
  assert.equal(pics.acknowledge(), 0x23);
  assert.equal(pics.master.portIn(0, 1), 0x00, 'IRR after INTA');
  pics.master.portOut(0, 1, 0x0b);
  assert.equal(pics.master.portIn(0, 1), 0x08, 'ISR');
  pics.master.portOut(0, 1, 0x63); // specific EOI for IR3
  assert.equal(pics.master.portIn(0, 1), 0x00);
});

test('slave interrupts cascade through master IR2', () => {
  const pics = initPair();
  pics.raiseIrq(10);
  assert.equal(pics.hasInterrupt(), true);
  assert.equal(pics.acknowledge(), 0x2a);
  assert.equal(pics.master.isr, 0x04);
  assert.equal(pics.slave.isr, 0x04);
  pics.raiseIrq(9); // higher than 10 on the slave, but master IR2 is in service
  assert.equal(pics.hasInterrupt(), false);
  eoi(pics.slave);
  eoi(pics.master);
  assert.equal(pics.acknowledge(), 0x29);
  eoi(pics.slave);
  eoi(pics.master);
  assert.equal(pics.hasInterrupt(), false);
  pics.slave.portOut(1, 1, 0x01);
  pics.raiseIrq(8);
  assert.equal(pics.hasInterrupt(), false, 'masked on the slave');
  pics.master.portOut(1, 1, 0x04);
  pics.slave.portOut(1, 1, 0x00);
  assert.equal(pics.hasInterrupt(), false, 'cascade masked on the master');
  pics.master.portOut(1, 1, 0x00);
  assert.equal(pics.acknowledge(), 0x28);
});

test('spurious interrupts: IRQ7 from the master, IRQ15 from the slave', () => {
  const pics = initPair();
  assert.equal(pics.acknowledge(), 0x27);
  assert.equal(pics.master.isr, 0, 'spurious IRQ7 sets no ISR bit');
  pics.raiseIrq(12);
  pics.slave.portOut(1, 1, 0x10); // the request vanishes after the cascade edge was latched
  assert.equal(pics.hasInterrupt(), true);
  assert.equal(pics.acknowledge(), 0x2f);
  assert.equal(pics.slave.isr, 0);
  assert.equal(pics.master.isr, 0x04, 'the master did acknowledge IR2');
});

test('ELCR: level-triggered lines repeat until lowered; reserved bits stay 0', () => {
  const pics = initPair();
  pics.elcr.portOut(0, 1, 0xff);
  pics.elcr.portOut(1, 1, 0xff);
  assert.equal(pics.elcr.portIn(0, 1), 0xf8);
  assert.equal(pics.elcr.portIn(1, 1), 0xde);
  pics.raiseIrq(11);
  assert.equal(pics.acknowledge(), 0x2b);
  eoi(pics.slave);
  eoi(pics.master);
  assert.equal(pics.acknowledge(), 0x2b, 'still high: requested again');
  pics.lowerIrq(11); // the handler serviced the device before EOI
  eoi(pics.slave);
  eoi(pics.master);
  assert.equal(pics.hasInterrupt(), false);
  pics.raiseIrq(5);
  pics.lowerIrq(5);
  assert.equal(pics.hasInterrupt(), false, 'a level request that goes away is withdrawn');
});

test('edge requests stay latched after the line falls', () => {
  const pics = initPair();
  pics.raiseIrq(5);
  pics.lowerIrq(5);
  assert.equal(pics.acknowledge(), 0x25);
});

test('automatic EOI leaves ISR clear', () => {
  const pics = initPair(0x03);
  pics.raiseIrq(0);
  assert.equal(pics.acknowledge(), 0x20);
  assert.equal(pics.master.isr, 0);
  pics.raiseIrq(3);
  assert.equal(pics.acknowledge(), 0x23);
  pics.raiseIrq(10);
  assert.equal(pics.acknowledge(), 0x2a);
  pics.lowerIrq(10);
  pics.raiseIrq(10);
  assert.equal(pics.acknowledge(), 0x2a, 'a new slave edge reaches the master again');
});

test('priority rotation: set priority and rotate on EOI', () => {
  const pics = initPair();
  pics.master.portOut(0, 1, 0xc3); // IR3 lowest, so IR4 highest
  pics.raiseIrq(1);
  pics.raiseIrq(5);
  assert.equal(pics.acknowledge(), 0x25);
  pics.master.portOut(0, 1, 0xa0); // rotate on non-specific EOI: IR5 becomes lowest
  assert.equal(pics.acknowledge(), 0x21);
  pics.master.portOut(0, 1, 0xe1); // rotate on specific EOI for IR1: IR1 lowest
  pics.raiseIrq(0);
  pics.raiseIrq(3);
  assert.equal(pics.acknowledge(), 0x23);
});

test('poll command returns the pending level and acknowledges it', () => {
  const pics = initPair();
  pics.master.portOut(0, 1, 0x0c);
  assert.equal(pics.master.portIn(0, 1), 0x00, 'nothing pending');
  pics.raiseIrq(6);
  pics.master.portOut(0, 1, 0x0c);
  assert.equal(pics.master.portIn(0, 1), 0x86);
  assert.equal(pics.master.isr, 0x40);
});

test('special mask mode lets lower levels through while a masked level is in service', () => {
  const pics = initPair();
  pics.raiseIrq(2 + 1); // IR3
  assert.equal(pics.acknowledge(), 0x23);
  pics.raiseIrq(6);
  assert.equal(pics.hasInterrupt(), false);
  pics.master.portOut(1, 1, 0x08);
  pics.master.portOut(0, 1, 0x68); // set special mask
  assert.equal(pics.acknowledge(), 0x26);
  pics.master.portOut(0, 1, 0x48); // reset special mask
});

test('ICW1 variants: single mode skips ICW3, no IC4 skips ICW4', () => {
  const pic = new Pic8259('solo');
  pic.portOut(0, 1, 0x13); // single, IC4
  pic.portOut(1, 1, 0x40);
  pic.portOut(1, 1, 0x01); // ICW4
  pic.portOut(1, 1, 0xfe); // OCW1
  assert.equal(pic.imr, 0xfe);
  pic.portOut(0, 1, 0x10); // cascade, no IC4
  pic.portOut(1, 1, 0x70);
  pic.portOut(1, 1, 0x04); // ICW3
  pic.portOut(1, 1, 0x55); // OCW1
  assert.equal(pic.imr, 0x55);
  pic.portOut(1, 1, 0x00);
  pic.setLine(1, true);
  assert.equal(pic.acknowledge(), 0x71);
});

test('ICW1 with LTIM makes every line level-triggered', () => {
  const pic = new Pic8259('solo');
  pic.portOut(0, 1, 0x1b); // LTIM, single, IC4
  pic.portOut(1, 1, 0x08);
  pic.portOut(1, 1, 0x01);
  pic.setLine(4, true);
  assert.equal(pic.acknowledge(), 0x0c);
  pic.portOut(0, 1, 0x20);
  assert.equal(pic.hasInterrupt(), true);
  pic.setLine(4, false);
  assert.equal(pic.hasInterrupt(), false);
});
