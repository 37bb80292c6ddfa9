import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Rtc,
  RTC_START_TIME,
  RTC_REG_A,
  RTC_REG_B,
  RTC_REG_C,
  RTC_REG_D,
  REG_B_PIE,
  REG_B_UIE,
  REG_B_AIE,
  REG_B_SET,
  REG_B_24H,
  REG_B_DM_BINARY,
} from '../../src/hw/devices/rtc.js';
import { CPU_HZ } from '../../src/hw/cost.js';
import { SimClock } from './sim-clock.js';

const MiB = 1024 * 1024;

function rig(ramBytes = 128 * MiB, cpus = 1) {
  const clock = new SimClock();
  const irqs: [number, boolean][] = [];
  const rtc = new Rtc(clock, (level) => irqs.push([clock.now(), level]), { ramBytes, cpus });
  const read = (reg: number): number => {
    rtc.portOut(0, 1, reg);
    return rtc.portIn(1, 1);
  };
  const write = (reg: number, v: number): void => {
    rtc.portOut(0, 1, reg);
    rtc.portOut(1, 1, v);
  };
  return { clock, rtc, irqs, read, write };
}
/** The exact cycle at which `ticks` periods of the 32.768 kHz time base have passed. */
const cyc32k = (ticks: number): number => Math.ceil((ticks * CPU_HZ) / 32768);

test('starts at 2010-10-04 00:00:00 (a Monday), BCD and 24-hour', () => {
  const { read } = rig();
  assert.equal(RTC_START_TIME, Date.UTC(2010, 9, 4) / 1000);
  assert.deepEqual([0, 2, 4, 6, 7, 8, 9, 0x32].map(read), [0x00, 0x00, 0x00, 0x02, 0x04, 0x10, 0x10, 0x20]);
  assert.equal(read(RTC_REG_A), 0x26);
  assert.equal(read(RTC_REG_B), REG_B_24H);
  assert.equal(read(RTC_REG_D), 0x80, 'valid RAM and time');
});

test('time follows simulated cycles', () => {
  const { clock, read } = rig();
  clock.advanceTo(3725 * CPU_HZ - 1);
  assert.deepEqual([4, 2, 0].map(read), [0x01, 0x02, 0x04]);
  clock.advanceTo(3725 * CPU_HZ);
  assert.equal(read(0), 0x05);
  clock.advanceTo((86400 * 30 + 13 * 3600) * CPU_HZ);
  assert.deepEqual(
    [9, 8, 7, 6, 4].map(read),
    [0x10, 0x11, 0x03, 0x04, 0x13],
    '2010-11-03, a Wednesday, 13:00',
  );
});

test('binary and 12-hour formats follow register B', () => {
  const { clock, read, write } = rig();
  clock.advanceTo((13 * 3600 + 59) * CPU_HZ);
  write(RTC_REG_B, REG_B_DM_BINARY);
  assert.equal(read(4), 0x81, '1 PM');
  assert.equal(read(0), 59);
  assert.equal(read(9), 10);
  write(RTC_REG_B, REG_B_DM_BINARY | REG_B_24H);
  assert.equal(read(4), 13);
  write(RTC_REG_B, 0);
  assert.equal(read(4), 0x81, 'BCD 12-hour');
  clock.advanceTo(24 * 3600 * CPU_HZ);
  assert.equal(read(4), 0x12, 'midnight is 12 AM');
});

test('SET stops updates; written time resumes when SET is cleared', () => {
  const { clock, read, write } = rig();
  write(RTC_REG_B, REG_B_24H | REG_B_SET | REG_B_UIE);
  assert.equal(read(RTC_REG_B) & REG_B_UIE, 0, 'SET clears UIE');
  write(9, 0x24);
  write(8, 0x02);
  write(7, 0x29);
  write(4, 0x23);
  write(2, 0x59);
  write(0, 0x58);
  clock.advance(5 * CPU_HZ);
  assert.equal(read(0), 0x58, 'frozen while SET');
  write(RTC_REG_B, REG_B_24H);
  clock.advance(2 * CPU_HZ);
  assert.deepEqual([9, 8, 7, 4, 2, 0].map(read), [0x24, 0x03, 0x01, 0x00, 0x00, 0x00], '2024 is a leap year');
});

test('periodic interrupt at the register A rate, re-armed by reading register C', () => {
  const { clock, read, write, irqs } = rig();
  write(RTC_REG_A, 0x26); // 1024 Hz
  write(RTC_REG_B, REG_B_24H | REG_B_PIE);
  clock.advanceTo(cyc32k(32) - 1);
  assert.equal(irqs.length, 0);
  clock.advanceTo(cyc32k(32));
  assert.deepEqual(irqs, [[cyc32k(32), true]]);
  clock.advanceTo(cyc32k(100));
  assert.equal(irqs.length, 1, 'IRQ stays asserted until C is read');
  assert.equal(read(RTC_REG_C), 0xc0, 'IRQF | PF');
  assert.deepEqual(irqs[1], [cyc32k(100), false]);
  assert.equal(read(RTC_REG_C), 0, 'read clears');
  clock.advanceTo(cyc32k(128));
  assert.deepEqual(irqs[2], [cyc32k(128), true]);
  read(RTC_REG_C);
  write(RTC_REG_A, 0x2f); // 2 Hz
  clock.advanceTo(cyc32k(16384) + 1);
  assert.equal(irqs.length, 5);
  assert.deepEqual(irqs[4], [cyc32k(16384), true]);
});

test('PF is set even with PIE clear; enabling PIE then raises IRQ8 at once', () => {
  const { clock, read, write, irqs } = rig();
  clock.advanceTo(cyc32k(40));
  write(RTC_REG_B, REG_B_24H | REG_B_PIE);
  assert.equal(irqs.length, 1);
  assert.equal(read(RTC_REG_C), 0xc0);
});

test('update-ended and alarm interrupts', () => {
  const { clock, read, write, irqs } = rig();
  write(RTC_REG_A, 0x20); // no periodic rate, so PF stays clear
  write(RTC_REG_B, REG_B_24H | REG_B_UIE);
  clock.advanceTo(CPU_HZ);
  assert.deepEqual(irqs, [[CPU_HZ, true]]);
  assert.equal(read(RTC_REG_C), 0x90, 'IRQF | UF');
  write(1, 0x30); // alarm at hh:mm:30 (seconds, others don't care)
  write(3, 0xff);
  write(5, 0xc0);
  write(RTC_REG_B, REG_B_24H | REG_B_AIE);
  irqs.length = 0;
  clock.advanceTo(31 * CPU_HZ);
  assert.deepEqual(irqs, [[30 * CPU_HZ, true]]);
  assert.equal(read(RTC_REG_C), 0xb0, 'IRQF | AF | UF');
  write(1, 0x00);
  write(3, 0x15); // 00:15:00
  write(5, 0x00);
  clock.advanceTo(3600 * CPU_HZ);
  assert.deepEqual(irqs.slice(2), [[15 * 60 * CPU_HZ, true]]);
});

test('UIP is high in the 244 µs before each update', () => {
  const { clock, read } = rig();
  clock.advanceTo(cyc32k(32768 - 9));
  assert.equal(read(RTC_REG_A) & 0x80, 0);
  clock.advanceTo(cyc32k(32768 - 8));
  assert.equal(read(RTC_REG_A) & 0x80, 0x80);
  assert.equal(read(0), 0x00, 'the old time is still readable');
  clock.advanceTo(cyc32k(32768));
  assert.equal(read(RTC_REG_A) & 0x80, 0);
  assert.equal(read(0), 0x01);
});

test('holding the divider in reset stops time; the first update comes 500 ms after release', () => {
  const { clock, read, write } = rig();
  clock.advanceTo(cyc32k(16384)); // 00:00:00.5
  write(RTC_REG_A, 0x66);
  clock.advance(10 * CPU_HZ);
  assert.equal(read(0), 0x00);
  write(RTC_REG_A, 0x26);
  const t = clock.time;
  clock.advanceTo(t + CPU_HZ / 2 - 100000);
  assert.equal(read(0), 0x00);
  clock.advanceTo(t + CPU_HZ / 2 + 100000);
  assert.equal(read(0), 0x01);
});

test('day-of-week register can be set and then follows the date', () => {
  const { clock, read, write } = rig();
  write(6, 0x05);
  assert.equal(read(6), 0x05);
  clock.advance(86400 * CPU_HZ);
  assert.equal(read(6), 0x06);
  clock.advance(2 * 86400 * CPU_HZ);
  assert.equal(read(6), 0x01, 'wraps from Saturday (7) to Sunday (1)');
});

test('CMOS memory size bytes like QEMU pc, RAM storage, checksum', () => {
  const { read, write } = rig(128 * MiB, 4);
  const w = (lo: number): number => read(lo) | (read(lo + 1) << 8);
  assert.equal(w(0x15), 640);
  assert.equal(w(0x17), 0xffff, 'extended memory is capped at 65535 KiB');
  assert.equal(w(0x30), 0xffff);
  assert.equal(w(0x34), (128 - 16) * 16);
  assert.equal(read(0x5f), 3, 'CPUs - 1');
  let sum = 0;
  for (let i = 0x10; i <= 0x2d; i++) sum += read(i);
  assert.equal(w(0x2e), ((sum & 0xff) << 8) | (sum >>> 8), 'checksum is stored high byte first');
  const small = rig(8 * MiB);
  assert.equal(small.read(0x17) | (small.read(0x18) << 8), 7 * 1024);
  assert.equal(small.read(0x34) | (small.read(0x35) << 8), 0);
  const big = rig(4096 * MiB);
  assert.equal(big.read(0x34) | (big.read(0x35) << 8), (3072 - 16) * 16);
  assert.equal(
    big.read(0x5b) | (big.read(0x5c) << 8) | (big.read(0x5d) << 16),
    16384,
    '1 GiB above 4 GiB in 64 KiB units',
  );
  write(0x40, 0xa5);
  assert.equal(read(0x40), 0xa5);
  write(RTC_REG_D, 0);
  assert.equal(read(RTC_REG_D), 0x80, 'register D is read-only');
});

test('index port: bit 7 masks NMI, the index register is write-only', () => {
  const { rtc, read } = rig();
  const masks: boolean[] = [];
  rtc.onNmiMask = (d) => masks.push(d);
  rtc.portOut(0, 1, 0x80 | 0x0d);
  assert.equal(rtc.nmiDisabled, true);
  assert.equal(rtc.portIn(1, 1), 0x80, 'register D through the masked index');
  rtc.portOut(0, 1, 0x0d);
  assert.deepEqual(masks, [true, false]);
  assert.equal(rtc.portIn(0, 1), 0xff);
  assert.equal(read(0x0e), 0);
});
