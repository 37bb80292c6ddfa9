import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AcpiPm,
  ACPI_PM_BASE,
  PM_TIMER_HZ,
  PM_TIMER_PORT,
  PM1_TMR_STS,
  PM1_PWRBTN_STS,
  SLP_TYP_S5,
} from '../../src/hw/devices/pm-timer.js';
import { CPU_HZ } from '../../src/hw/cost.js';
import { SimClock } from './sim-clock.js';

const refTicks = (c: number): number => Number((BigInt(c) * BigInt(PM_TIMER_HZ)) / BigInt(CPU_HZ));
const cycleOf = (t: number): number =>
  Number((BigInt(t) * BigInt(CPU_HZ) + BigInt(PM_TIMER_HZ) - 1n) / BigInt(PM_TIMER_HZ));

function rig() {
  const clock = new SimClock();
  const sci: [number, boolean][] = [];
  const sleeps: number[] = [];
  const pm = new AcpiPm(clock, { sci: (l) => sci.push([clock.now(), l]), onSleep: (t) => sleeps.push(t) });
  return { clock, pm, sci, sleeps };
}

test('the PM timer counts at 3.579545 MHz from simulated cycles, 24 bits wide', () => {
  const { clock, pm } = rig();
  assert.equal(PM_TIMER_PORT, ACPI_PM_BASE + 8);
  let last = -1;
  for (const c of [0, 810, 811, 1_000_000, CPU_HZ, 7 * CPU_HZ + 3, 123456789012345]) {
    clock.advanceTo(c);
    const v = pm.portIn(8, 4) >>> 0;
    assert.equal(v, refTicks(c) % 2 ** 24, `at cycle ${c}`);
    if (c < 4 * CPU_HZ) assert.ok(v >= last, 'monotonic before the first wrap (4.7 s)');
    last = v;
  }
  assert.equal(refTicks(810), 0);
  assert.equal(refTicks(811), 1, 'the first tick lands on cycle 811');
  clock.time = 200000 * CPU_HZ;
  assert.equal(pm.portIn(8, 1), refTicks(200000 * CPU_HZ) & 0xff);
  assert.equal(pm.portIn(9, 2), (refTicks(200000 * CPU_HZ) >>> 8) & 0xffff);
});

test('PM1 control: SCI_EN always set, SLP_TYP stored, SLP_EN reports the sleep type', () => {
  const { pm, sleeps } = rig();
  assert.equal(pm.portIn(4, 2), 0x0001);
  pm.portOut(4, 2, 0x1400); // SLP_TYP 5, no SLP_EN
  assert.equal(pm.portIn(4, 2), 0x1401);
  assert.deepEqual(sleeps, []);
  pm.portOut(4, 2, 0x2000); // QEMU's soft-off: SLP_TYP 0 | SLP_EN
  assert.deepEqual(sleeps, [SLP_TYP_S5]);
  assert.equal(pm.portIn(4, 2), 0x0001, 'SLP_EN reads 0');
});

test('PM1 status: TMR_STS when bit 23 of the timer changes, write 1 to clear, SCI when enabled', () => {
  const { clock, pm, sci } = rig();
  assert.equal(pm.portIn(0, 2), 0);
  clock.advanceTo(cycleOf(2 ** 23) - 1);
  assert.equal(pm.portIn(0, 2) & PM1_TMR_STS, 0);
  clock.advanceTo(cycleOf(2 ** 23));
  assert.equal(pm.portIn(0, 2) & PM1_TMR_STS, PM1_TMR_STS);
  pm.portOut(0, 2, PM1_TMR_STS);
  assert.equal(pm.portIn(0, 2) & PM1_TMR_STS, 0);
  pm.portOut(2, 2, 0xffff);
  assert.equal(pm.portIn(2, 2), 0x0721, 'only defined enable bits stick');
  assert.deepEqual(sci, []);
  clock.advanceTo(cycleOf(2 ** 24) + 5);
  assert.deepEqual(sci, [[cycleOf(2 ** 24), true]]);
  pm.portOut(0, 1, 0x01);
  assert.deepEqual(sci[1], [cycleOf(2 ** 24) + 5, false]);
  pm.setStatus(PM1_PWRBTN_STS);
  assert.deepEqual(sci[2][1], true, 'power button status with PWRBTN_EN');
  assert.equal(pm.portIn(1, 1), 0x01, 'byte access to the high half of PM1_STS');
  pm.portOut(1, 1, 0x01);
  assert.equal(sci[3][1], false);
  assert.equal(pm.portIn(6, 2), 0xffff, 'no register at 0x606');
});
