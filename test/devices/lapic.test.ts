import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventQueue } from '../../src/hw/events-queue.js';
import {
  type ApicMessage,
  decodeMsi,
  encodeMsi,
  DM_FIXED,
  DM_LOWEST,
  DM_NMI,
  DM_INIT,
  DM_SIPI,
  DM_EXTINT,
} from '../../src/hw/devices/apic-message.js';
import {
  APIC_REG as REG,
  CYCLES_PER_BUS_TICK,
  ESR_ILLEGAL_REGISTER,
  ESR_RECV_ILLEGAL_VECTOR,
  ESR_SEND_ILLEGAL_VECTOR,
  Lapic,
  type LapicHost,
  LVT_MASKED,
  routeApicMessage,
  timerDivisor,
} from '../../src/hw/devices/lapic.js';

// ---- a fake machine: manual clock, recording hooks ------------------------------------

class FakeClock extends EventQueue {
  t = 0;
  constructor() {
    super();
    this.nowFn = () => this.t;
  }
  /** Advance simulated time to `to`, firing each event at its own time. */
  advance(to: number): void {
    for (;;) {
      const n = this.nextTime();
      if (n > to) break;
      this.t = Math.max(this.t, n);
      this.runDue(this.t);
    }
    this.t = to;
  }
}

interface Recorder {
  sent: ApicMessage[];
  eois: number[];
  inits: number;
  sipis: number[];
  nmis: number;
  kicks: number;
  baseChanges: number;
}

function makeHost(clock: FakeClock, extra: Partial<LapicHost> = {}): LapicHost & { rec: Recorder } {
  const rec: Recorder = { sent: [], eois: [], inits: 0, sipis: [], nmis: 0, kicks: 0, baseChanges: 0 };
  return {
    rec,
    clock,
    sendMessage: (m) => rec.sent.push(m),
    eoiBroadcast: (v) => rec.eois.push(v),
    onInit: () => rec.inits++,
    onSipi: (v) => rec.sipis.push(v),
    onNmi: () => rec.nmis++,
    kick: () => rec.kicks++,
    baseChanged: () => rec.baseChanges++,
    ...extra,
  };
}

function makeLapic(id = 0, extra: Partial<LapicHost> = {}): { l: Lapic; rec: Recorder; clock: FakeClock } {
  const clock = new FakeClock();
  const host = makeHost(clock, extra);
  return { l: new Lapic(id, host), rec: host.rec, clock };
}

/** Several APICs on one bus, messages routed as the machine does. */
function makeBus(n: number): { lapics: Lapic[]; recs: Recorder[]; clock: FakeClock } {
  const clock = new FakeClock();
  const lapics: Lapic[] = [];
  const recs: Recorder[] = [];
  for (let k = 0; k < n; k++) {
    const host = makeHost(clock, { sendMessage: (m) => routeApicMessage(m, lapics) });
    recs.push(host.rec);
    lapics.push(new Lapic(k, host));
  }
  return { lapics, recs, clock };
}

const rd = (l: Lapic, off: number): number => l.mmioRead(off, 4) >>> 0;
const wr = (l: Lapic, off: number, v: number): void => l.mmioWrite(off, 4, v | 0);
const enable = (l: Lapic, spurious = 0xff): void => wr(l, REG.SVR, 0x100 | spurious);
const bit = (l: Lapic, base: number, v: number): boolean =>
  ((rd(l, base + (v >>> 5) * 0x10) >>> (v & 31)) & 1) === 1;
const msg = (o: Partial<ApicMessage>): ApicMessage => ({
  vector: 0x40,
  deliveryMode: DM_FIXED,
  destMode: 0,
  dest: 0,
  shorthand: 0,
  level: true,
  trigger: 0,
  source: -1,
  ...o,
});
const fixed = (vector: number, trigger: 0 | 1 = 0): ApicMessage => msg({ vector, trigger });
const esr = (l: Lapic): number => {
  wr(l, REG.ESR, 0);
  return rd(l, REG.ESR);
};

// ---- registers ---------------------------------------------------------------------------

test('power-up register values', () => {
  const { l } = makeLapic(3);
  assert.equal(l.mode, 'xapic');
  assert.equal(rd(l, REG.ID), 0x03000000);
  assert.equal(rd(l, REG.VERSION), 0x00050014);
  for (const r of [REG.TPR, REG.APR, REG.PPR, REG.LDR, REG.ESR, REG.ICR_LO, REG.ICR_HI, REG.RRD])
    assert.equal(rd(l, r), 0, `reg ${r.toString(16)}`);
  assert.equal(rd(l, REG.DFR), 0xffffffff);
  assert.equal(rd(l, REG.SVR), 0xff);
  for (let k = 0; k < 8; k++) {
    assert.equal(rd(l, REG.ISR + k * 16), 0);
    assert.equal(rd(l, REG.TMR + k * 16), 0);
    assert.equal(rd(l, REG.IRR + k * 16), 0);
  }
  for (const r of [REG.LVT_TIMER, REG.LVT_THERMAL, REG.LVT_PERF, REG.LVT_LINT0, REG.LVT_LINT1, REG.LVT_ERROR])
    assert.equal(rd(l, r), LVT_MASKED, `LVT ${r.toString(16)}`);
  assert.equal(rd(l, REG.TIMER_INITIAL), 0);
  assert.equal(rd(l, REG.TIMER_CURRENT), 0);
  assert.equal(rd(l, REG.TIMER_DIVIDE), 0);
  assert.equal(l.apicBaseMsr, 0xfee00800n, 'AP: enabled, not BSP');
  assert.equal(l.apicBase, 0xfee00000);
});

test('the BSP: BSP flag set, LINT0 ExtINT as a BIOS leaves it', () => {
  const { l } = makeLapic(0);
  assert.equal(l.apicBaseMsr, 0xfee00900n);
  assert.equal(l.readMsr(0x1b), 0xfee00900n);
  assert.equal(rd(l, REG.LVT_LINT0), 0x700);
  assert.equal(l.acceptsPicInterrupts(), true);
});

test('writable bits of each register', () => {
  const { l } = makeLapic(1);
  enable(l);
  const cases: [number, number][] = [
    [REG.TPR, 0xff],
    [REG.LDR, 0xff000000],
    [REG.DFR, 0xffffffff],
    [REG.SVR, 0x3ff],
    [REG.ICR_HI, 0xff000000],
    [REG.LVT_THERMAL, 0x000107ff],
    [REG.LVT_PERF, 0x000107ff],
    [REG.LVT_LINT0, 0x0001a7ff],
    [REG.LVT_LINT1, 0x0001a7ff],
    [REG.LVT_ERROR, 0x000100ff],
    [REG.TIMER_DIVIDE, 0xb],
  ];
  for (const [r, mask] of cases) {
    wr(l, r, -1);
    assert.equal(rd(l, r), mask, `reg ${r.toString(16)}`);
  }
  wr(l, REG.LVT_TIMER, -1);
  assert.equal(rd(l, REG.LVT_TIMER), 0x000700ff);
  wr(l, REG.LVT_TIMER, 0x000200ff); // periodic
  assert.equal(rd(l, REG.LVT_TIMER), 0x000200ff);
  wr(l, REG.DFR, 0);
  assert.equal(rd(l, REG.DFR), 0x0fffffff, 'DFR bits 27:0 read as ones');
  wr(l, REG.ID, 0x2a000000);
  assert.equal(rd(l, REG.ID), 0x2a000000, 'xAPIC ID is writable');
  for (const r of [REG.VERSION, REG.PPR, REG.APR, REG.ISR, REG.TMR, REG.IRR, REG.TIMER_CURRENT]) {
    const before = rd(l, r);
    wr(l, r, 0x12345678);
    assert.equal(rd(l, r), before, `read-only ${r.toString(16)}`);
  }
  assert.equal(esr(l), 0, 'read-only registers are not illegal');
});

test('narrow and unaligned accesses', () => {
  const { l } = makeLapic(0x12);
  assert.equal(l.mmioRead(REG.ID + 3, 1), 0x12);
  assert.equal(l.mmioRead(REG.VERSION, 2), 0x0014);
  assert.equal(l.mmioRead(REG.VERSION + 2, 2), 0x0005);
  assert.equal(l.mmioRead(REG.VERSION + 4, 4), 0, 'bytes 4-15 of a register slot read 0');
  l.mmioWrite(REG.TPR, 1, 0x40);
  l.mmioWrite(REG.TPR + 4, 4, 0x40);
  assert.equal(rd(l, REG.TPR), 0, 'only aligned 32-bit writes count');
});

test('software disable masks every LVT entry and keeps them masked', () => {
  const { l } = makeLapic(1);
  wr(l, REG.LVT_TIMER, 0x20);
  assert.equal(rd(l, REG.LVT_TIMER), 0x10020, 'mask bit cannot be cleared while disabled');
  enable(l);
  wr(l, REG.LVT_TIMER, 0x20);
  wr(l, REG.LVT_LINT1, 0x400);
  assert.equal(rd(l, REG.LVT_TIMER), 0x20);
  wr(l, REG.SVR, 0xff);
  assert.equal(rd(l, REG.LVT_TIMER), 0x10020);
  assert.equal(rd(l, REG.LVT_LINT1), 0x10400);
});

test('unimplemented registers set ESR "illegal register address" and raise LVT error', () => {
  const { l } = makeLapic(1);
  enable(l);
  for (const off of [0x040, REG.LVT_CMCI, REG.SELF_IPI, 0x3a0, 0xff0]) {
    rd(l, off);
    assert.equal(esr(l), ESR_ILLEGAL_REGISTER, `read ${off.toString(16)}`);
    wr(l, off, 1);
    assert.equal(esr(l), ESR_ILLEGAL_REGISTER, `write ${off.toString(16)}`);
  }
  wr(l, REG.LVT_ERROR, 0xfe);
  rd(l, 0x040);
  assert.equal(l.pendingVector(), 0xfe);
});

test('ESR is write-then-read', () => {
  const { l } = makeLapic(1);
  enable(l);
  wr(l, REG.ICR_LO, 0x4005); // fixed IPI with vector 5
  assert.equal(rd(l, REG.ESR), 0, 'not visible before a write');
  wr(l, REG.ESR, 0);
  assert.equal(rd(l, REG.ESR), ESR_SEND_ILLEGAL_VECTOR);
  assert.equal(rd(l, REG.ESR), ESR_SEND_ILLEGAL_VECTOR, 'reading does not clear');
  wr(l, REG.ESR, 0);
  assert.equal(rd(l, REG.ESR), 0, 'the next write latches the (empty) new errors');
});

test('received illegal vectors are refused', () => {
  const { l } = makeLapic(1);
  enable(l);
  l.accept(fixed(0x0f));
  assert.equal(l.pendingVector(), -1);
  assert.equal(rd(l, REG.IRR), 0);
  assert.equal(esr(l), ESR_RECV_ILLEGAL_VECTOR);
  wr(l, REG.LVT_ERROR, 0x03); // an error LVT with an illegal vector does not loop
  l.accept(fixed(0x01));
  assert.equal(esr(l), ESR_RECV_ILLEGAL_VECTOR);
});

// ---- priorities --------------------------------------------------------------------------

test('highest IRR vector whose class exceeds PPR is pending; TPR masks by class', () => {
  const { l, rec } = makeLapic(1);
  enable(l);
  for (const v of [0x31, 0x52, 0x45]) l.accept(fixed(v));
  assert.equal(rec.kicks, 3, 'every accepted interrupt kicks the CPU');
  assert.equal(l.pendingVector(), 0x52);
  wr(l, REG.TPR, 0x50);
  assert.equal(rd(l, REG.PPR), 0x50);
  assert.equal(l.pendingVector(), -1, 'class 5 does not exceed TPR class 5');
  wr(l, REG.TPR, 0x4f);
  assert.equal(l.pendingVector(), 0x52);
  wr(l, REG.TPR, 0xf0);
  assert.equal(l.pendingVector(), -1);
  l.cr8 = 3;
  assert.equal(rd(l, REG.TPR), 0x30, 'CR8 writes TPR[7:4]');
  assert.equal(l.pendingVector(), 0x52);
  wr(l, REG.TPR, 0x7a);
  assert.equal(l.cr8, 7);
  assert.equal(l.tpr, 0x7a);
});

test('ISR nesting, PPR and EOI order', () => {
  const { l, rec } = makeLapic(1);
  enable(l);
  l.accept(fixed(0x40));
  assert.equal(l.acknowledge(), 0x40);
  assert.ok(bit(l, REG.ISR, 0x40));
  assert.ok(!bit(l, REG.IRR, 0x40));
  assert.equal(rd(l, REG.PPR), 0x40);
  l.accept(fixed(0x41));
  assert.equal(l.pendingVector(), -1, 'same class as the vector in service');
  l.accept(fixed(0x60));
  assert.equal(l.acknowledge(), 0x60, 'a higher class nests');
  assert.equal(rd(l, REG.PPR), 0x60);
  assert.equal(l.acknowledge(), 0xff, 'nothing deliverable: the spurious vector');
  wr(l, REG.EOI, 0);
  assert.ok(!bit(l, REG.ISR, 0x60), 'EOI retires the highest in-service vector');
  assert.ok(bit(l, REG.ISR, 0x40));
  assert.equal(l.pendingVector(), -1);
  wr(l, REG.EOI, 0);
  assert.equal(l.pendingVector(), 0x41);
  assert.equal(rd(l, REG.PPR), 0);
  assert.deepEqual(rec.eois, [], 'edge-triggered vectors are not broadcast');
  wr(l, REG.EOI, 0); // EOI with nothing in service: harmless
});

test('PPR from TPR and ISRV', () => {
  const { l } = makeLapic(1);
  enable(l);
  l.accept(fixed(0x4c));
  l.acknowledge();
  for (const [tpr, ppr] of [
    [0x00, 0x40],
    [0x35, 0x40],
    [0x45, 0x45],
    [0x80, 0x80],
  ]) {
    wr(l, REG.TPR, tpr);
    assert.equal(rd(l, REG.PPR), ppr, `TPR ${tpr.toString(16)}`);
  }
});

test('spurious vector and software disable', () => {
  const { l } = makeLapic(1);
  enable(l, 0xef);
  assert.equal(l.acknowledge(), 0xef);
  l.accept(fixed(0x50));
  wr(l, REG.SVR, 0xef);
  assert.equal(l.pendingVector(), -1, 'nothing is delivered while software-disabled');
  l.accept(fixed(0x60));
  assert.ok(!bit(l, REG.IRR, 0x60), 'fixed interrupts are dropped while software-disabled');
  enable(l);
  assert.equal(l.pendingVector(), 0x50, 'IRR was held');
});

test('level-triggered interrupts set TMR and broadcast their EOI', () => {
  const { l, rec } = makeLapic(1);
  enable(l);
  l.accept(fixed(0x70, 1));
  assert.ok(bit(l, REG.TMR, 0x70));
  l.accept(fixed(0x71, 0));
  assert.ok(!bit(l, REG.TMR, 0x71));
  assert.equal(l.acknowledge(), 0x71);
  wr(l, REG.EOI, 0);
  assert.equal(l.acknowledge(), 0x70);
  wr(l, REG.EOI, 0);
  assert.deepEqual(rec.eois, [0x70]);
  l.accept(msg({ vector: 0x72, trigger: 1, level: false }));
  assert.equal(l.pendingVector(), -1, 'a level de-assert message carries no interrupt');
});

test('NMI, INIT, SIPI and ExtINT messages', () => {
  const { l, rec } = makeLapic(1); // software-disabled: these are still accepted
  l.accept(msg({ deliveryMode: DM_NMI }));
  l.accept(msg({ deliveryMode: DM_INIT, trigger: 1, level: true }));
  l.accept(msg({ deliveryMode: DM_INIT, trigger: 1, level: false })); // INIT level de-assert
  l.accept(msg({ deliveryMode: DM_SIPI, vector: 0x9a }));
  assert.equal(rec.nmis, 1);
  assert.equal(rec.inits, 1);
  assert.deepEqual(rec.sipis, [0x9a]);
  assert.equal(l.extIntPending, false);
  l.accept(msg({ deliveryMode: DM_EXTINT }));
  assert.equal(l.extIntPending, true);
});

test('INIT reset keeps the id, base and mode', () => {
  const { l } = makeLapic(5);
  enable(l);
  wr(l, REG.TPR, 0x20);
  wr(l, REG.ID, 0x07000000);
  l.accept(fixed(0x80));
  l.initReset();
  assert.equal(rd(l, REG.ID), 0x07000000);
  assert.equal(rd(l, REG.TPR), 0);
  assert.equal(rd(l, REG.SVR), 0xff);
  assert.equal(rd(l, REG.IRR + 0x40), 0);
  assert.equal(l.writeMsr(0x1b, 0xfee00c00n), 'ok');
  l.initReset();
  assert.equal(l.mode, 'x2apic');
  assert.equal(l.readMsr(0x802), 5n);
});

// ---- sending IPIs --------------------------------------------------------------------------

test('ICR writes send messages with every delivery mode and shorthand', () => {
  const { l, rec } = makeLapic(4);
  wr(l, REG.ICR_HI, 0x02000000);
  const send = (lo: number): ApicMessage | undefined => {
    rec.sent.length = 0;
    wr(l, REG.ICR_LO, lo);
    assert.ok(rec.sent.length <= 1);
    return rec.sent[0];
  };
  const base = { destMode: 0, dest: 2, shorthand: 0, level: true, trigger: 0, source: 4 };
  assert.deepEqual(send(0x4041), { ...base, vector: 0x41, deliveryMode: DM_FIXED });
  assert.deepEqual(send(0x4141), { ...base, vector: 0x41, deliveryMode: DM_LOWEST });
  assert.deepEqual(send(0x4200), { ...base, vector: 0, deliveryMode: 2 });
  assert.deepEqual(send(0x4400), { ...base, vector: 0, deliveryMode: DM_NMI });
  assert.deepEqual(send(0xc500), { ...base, vector: 0, deliveryMode: DM_INIT, trigger: 1 });
  assert.deepEqual(send(0x8500), { ...base, vector: 0, deliveryMode: DM_INIT, trigger: 1, level: false });
  assert.deepEqual(send(0x4608), { ...base, vector: 8, deliveryMode: DM_SIPI });
  assert.equal(send(0x4300), undefined, 'delivery mode 3 is reserved');
  assert.equal(send(0x4700), undefined, 'ExtINT is reserved in the ICR');
  assert.deepEqual(send(0x4841), { ...base, vector: 0x41, deliveryMode: DM_FIXED, destMode: 1 });
  assert.deepEqual(send(0x44041), { ...base, vector: 0x41, deliveryMode: DM_FIXED, shorthand: 1 });
  assert.deepEqual(send(0x84041), { ...base, vector: 0x41, deliveryMode: DM_FIXED, shorthand: 2 });
  assert.deepEqual(send(0xc4041), { ...base, vector: 0x41, deliveryMode: DM_FIXED, shorthand: 3 });
  send(0xffffffff);
  assert.equal(rd(l, REG.ICR_LO), 0x000ccfff, 'delivery status (bit 12) reads 0: delivery is instant');
});

test('IPIs between APICs on the bus, shorthands and lowest priority', () => {
  const { lapics, recs } = makeBus(3);
  for (const l of lapics) enable(l);
  const [a, b, c] = lapics;
  wr(a, REG.ICR_HI, 0x02000000);
  wr(a, REG.ICR_LO, 0x4051);
  assert.equal(c.pendingVector(), 0x51);
  assert.equal(b.pendingVector(), -1);
  wr(a, REG.ICR_LO, 0xc4052); // all excluding self
  assert.deepEqual(
    lapics.map((l) => bit(l, REG.IRR, 0x52)),
    [false, true, true],
  );
  wr(b, REG.ICR_LO, 0x84053); // all including self
  assert.deepEqual(
    lapics.map((l) => bit(l, REG.IRR, 0x53)),
    [true, true, true],
  );
  wr(c, REG.ICR_LO, 0x44054); // self
  assert.deepEqual(
    lapics.map((l) => bit(l, REG.IRR, 0x54)),
    [false, false, true],
  );
  // Lowest priority to everyone (physical broadcast): one APIC, the lowest enabled id.
  wr(a, REG.SVR, 0xff);
  wr(c, REG.ICR_HI, 0xff000000);
  wr(c, REG.ICR_LO, 0x4155);
  assert.deepEqual(
    lapics.map((l) => bit(l, REG.IRR, 0x55)),
    [false, true, false],
  );
  // INIT and SIPI to APIC 1.
  wr(a, REG.ICR_HI, 0x01000000);
  wr(a, REG.ICR_LO, 0xc500);
  wr(a, REG.ICR_LO, 0x8500);
  wr(a, REG.ICR_LO, 0x4608);
  assert.equal(recs[1].inits, 1);
  assert.deepEqual(recs[1].sipis, [8]);
  assert.equal(recs[2].inits, 0);
  // IPIs to an absent APIC vanish.
  wr(a, REG.ICR_HI, 0x07000000);
  wr(a, REG.ICR_LO, 0x4056);
  assert.ok(lapics.every((l) => !bit(l, REG.IRR, 0x56)));
});

test('physical and flat/cluster logical destinations (xAPIC)', () => {
  const { l } = makeLapic(3);
  const phys = (dest: number): boolean => l.matches(msg({ dest }), false);
  assert.ok(phys(3));
  assert.ok(!phys(4));
  assert.ok(phys(0xff), 'physical broadcast');
  const logical = (dest: number): boolean => l.matches(msg({ dest, destMode: 1 }), false);
  wr(l, REG.LDR, 0x04000000);
  assert.ok(logical(0x06));
  assert.ok(!logical(0x01));
  assert.ok(logical(0xff));
  wr(l, REG.LDR, 0);
  assert.ok(!logical(0x01), 'an APIC with LDR 0 is in no flat group');
  wr(l, REG.DFR, 0x0fffffff); // cluster model
  wr(l, REG.LDR, 0x21000000); // cluster 2, member bit 0
  assert.ok(logical(0x21));
  assert.ok(logical(0x23));
  assert.ok(!logical(0x22));
  assert.ok(!logical(0x31));
  assert.ok(logical(0xff), 'broadcast to all clusters');
  // Shorthands ignore the destination.
  assert.ok(l.matches(msg({ dest: 9, shorthand: 1 }), true));
  assert.ok(!l.matches(msg({ dest: 3, shorthand: 1 }), false));
  assert.ok(l.matches(msg({ dest: 9, shorthand: 2 }), true));
  assert.ok(l.matches(msg({ dest: 9, shorthand: 3 }), false));
  assert.ok(!l.matches(msg({ dest: 3, shorthand: 3 }), true));
  // x2APIC-format destinations
  assert.ok(l.matches(msg({ dest: 0xffffffff, x2apic: true }), false));
  assert.ok(!l.matches(msg({ dest: 0x103, x2apic: true }), false));
  // A hardware-disabled APIC hears nothing.
  l.writeMsr(0x1b, 0xfee00000n);
  assert.ok(!l.matches(msg({ dest: 0xff }), false));
  assert.ok(!l.matches(msg({ shorthand: 2 }), false));
});

test('x2APIC destinations: physical 32-bit and cluster logical', () => {
  const { l } = makeLapic(35);
  assert.equal(l.writeMsr(0x1b, 0xfee00c00n), 'ok');
  assert.equal(l.readMsr(0x80d), 0x20008n, 'LDR: cluster 35>>4 = 2, bit 1<<(35&15)');
  const m = (o: Partial<ApicMessage>): boolean => l.matches(msg({ x2apic: true, ...o }), false);
  assert.ok(m({ dest: 35 }));
  assert.ok(!m({ dest: 36 }));
  assert.ok(m({ dest: 0xffffffff }));
  assert.ok(!m({ dest: 0xff }), '0xFF is an ordinary id in x2APIC format');
  assert.ok(l.matches(msg({ dest: 0xff }), false), 'but broadcast from an xAPIC-format source (IOAPIC)');
  assert.ok(m({ destMode: 1, dest: 0x20008 }));
  assert.ok(m({ destMode: 1, dest: 0x2000c }));
  assert.ok(!m({ destMode: 1, dest: 0x20004 }));
  assert.ok(!m({ destMode: 1, dest: 0x10008 }));
});

// ---- modes and MSRs ------------------------------------------------------------------------

test('xAPIC -> x2APIC -> disabled -> xAPIC, and the illegal transitions', () => {
  const { l, rec } = makeLapic(2);
  const base = 0xfee00000n;
  assert.equal(l.writeMsr(0x1b, base | 0x400n), 'gp', 'EXTD without EN is the invalid state');
  assert.equal(l.writeMsr(0x1b, base | 0xc00n), 'ok');
  assert.equal(l.mode, 'x2apic');
  assert.equal(rec.baseChanges, 1);
  assert.equal(l.readMsr(0x1b), base | 0xc00n);
  assert.equal(l.readMsr(0x802), 2n);
  assert.equal(l.mmioRead(REG.VERSION, 4) >>> 0, 0xffffffff, 'MMIO is gone in x2APIC mode');
  l.mmioWrite(REG.TPR, 4, 0x30);
  assert.equal(l.readMsr(0x808), 0n);
  assert.equal(l.writeMsr(0x1b, base | 0x800n), 'gp', 'x2APIC -> xAPIC directly');
  assert.equal(l.writeMsr(0x808, 0x20n), 'ok');
  assert.equal(l.writeMsr(0x1b, base), 'ok');
  assert.equal(l.mode, 'disabled');
  assert.equal(l.readMsr(0x808), undefined, 'x2APIC MSRs #GP when not in x2APIC mode');
  assert.equal(l.writeMsr(0x808, 0n), 'gp');
  assert.equal(l.writeMsr(0x1b, base | 0xc00n), 'gp', 'disabled -> x2APIC directly');
  assert.equal(l.acceptsPicInterrupts(), true);
  assert.equal(l.pendingVector(), -1);
  assert.equal(l.writeMsr(0x1b, base | 0x800n), 'ok');
  assert.equal(l.mode, 'xapic');
  assert.equal(rd(l, REG.TPR), 0, 'state was lost when disabled');
  assert.equal(rd(l, REG.ID), 0x02000000);
  assert.equal(l.readMsr(0x802), undefined);
});

test('disabling the APIC resets its state', () => {
  const { l } = makeLapic(1);
  enable(l);
  wr(l, REG.TPR, 0x20);
  wr(l, REG.LVT_TIMER, 0x20040);
  wr(l, REG.TIMER_INITIAL, 1000);
  l.accept(fixed(0x80));
  assert.equal(l.writeMsr(0x1b, 0xfee00000n), 'ok');
  assert.equal(l.writeMsr(0x1b, 0xfee00800n), 'ok');
  assert.equal(rd(l, REG.TPR), 0);
  assert.equal(rd(l, REG.SVR), 0xff);
  assert.equal(rd(l, REG.IRR + 0x40), 0);
  assert.equal(rd(l, REG.LVT_TIMER), LVT_MASKED);
  assert.equal(rd(l, REG.TIMER_INITIAL), 0);
  assert.equal(rd(l, REG.TIMER_CURRENT), 0);
});

test('IA32_APIC_BASE: relocation, reserved bits, BSP flag', () => {
  const { l, rec } = makeLapic(1);
  assert.equal(l.writeMsr(0x1b, 0xfed00800n), 'ok');
  assert.equal(l.apicBase, 0xfed00000);
  assert.equal(rec.baseChanges, 1);
  assert.equal(l.writeMsr(0x1b, 0xfed00800n), 'ok');
  assert.equal(rec.baseChanges, 1, 'no change, no remap');
  assert.equal(l.writeMsr(0x1b, 0xfee00900n), 'ok');
  assert.equal(l.readMsr(0x1b), 0xfee00800n, 'the BSP flag is read-only');
  for (const bad of [0xfee00801n, 0xfee00a00n, (1n << 40n) | 0xfee00800n, 1n << 63n])
    assert.equal(l.writeMsr(0x1b, bad), 'gp', bad.toString(16));
  assert.equal(l.writeMsr(0x10, 0n), 'not-mine');
  assert.equal(l.readMsr(0x10), undefined);
  assert.equal(l.writeMsr(0x900, 0n), 'not-mine');
  assert.equal(l.writeMsr(0x808, 0n), 'gp', 'x2APIC MSR in xAPIC mode');
});

test('x2APIC registers through MSRs, reserved bits and #GP cases', () => {
  const { l, rec } = makeLapic(7);
  assert.equal(l.writeMsr(0x1b, 0xfee00c00n), 'ok');
  assert.equal(l.readMsr(0x803), 0x50014n);
  assert.equal(l.writeMsr(0x80f, 0x1ffn), 'ok');
  assert.equal(l.readMsr(0x80f), 0x1ffn);
  assert.equal(l.writeMsr(0x80f, 0x11ffn), 'gp', 'SVR bit 12: EOI-broadcast suppression is not offered');
  assert.equal(l.writeMsr(0x808, 0x100n), 'gp');
  assert.equal(l.writeMsr(0x808, 0x1_0000_0020n), 'gp', 'upper half of a 32-bit register');
  assert.equal(l.writeMsr(0x808, 0x20n), 'ok');
  assert.equal(l.readMsr(0x808), 0x20n);
  assert.equal(l.readMsr(0x80a), 0x20n, 'PPR');
  assert.equal(l.writeMsr(0x80b, 1n), 'gp', 'EOI takes only 0');
  assert.equal(l.writeMsr(0x80b, 0n), 'ok');
  assert.equal(l.readMsr(0x80b), undefined, 'EOI is write-only');
  assert.equal(l.writeMsr(0x828, 1n), 'gp', 'ESR takes only 0');
  assert.equal(l.writeMsr(0x828, 0n), 'ok');
  for (const n of [0x809, 0x80c, 0x80e, 0x82f, 0x831, 0x83f, 0x801, 0x840, 0x8ff])
    assert.equal(l.readMsr(n), undefined, `read ${n.toString(16)} #GPs`);
  for (const n of [0x802, 0x803, 0x80a, 0x80d, 0x80e, 0x810, 0x818, 0x820, 0x839, 0x809, 0x831, 0x840])
    assert.equal(l.writeMsr(n, 0n), 'gp', `write ${n.toString(16)} #GPs`);
  assert.equal(l.writeMsr(0x832, 0x100n), 'gp', 'LVT timer has no delivery mode');
  assert.equal(l.writeMsr(0x832, 0x20040n), 'ok');
  assert.equal(l.readMsr(0x832), 0x20040n);
  assert.equal(l.writeMsr(0x835, 0x1f7ffn), 'ok', 'read-only LVT bits may be written back');
  assert.equal(l.writeMsr(0x83e, 4n), 'gp');
  assert.equal(l.writeMsr(0x83e, 0xbn), 'ok');
  // 64-bit ICR: destination in bits 63:32.
  assert.equal(l.writeMsr(0x830, (0x123n << 32n) | 0x4041n), 'ok');
  assert.deepEqual(rec.sent.at(-1), {
    vector: 0x41,
    deliveryMode: DM_FIXED,
    destMode: 0,
    dest: 0x123,
    shorthand: 0,
    level: true,
    trigger: 0,
    source: 7,
    x2apic: true,
  });
  assert.equal(l.readMsr(0x830), (0x123n << 32n) | 0x4041n);
  assert.equal(l.writeMsr(0x830, 0x6041n), 'gp', 'ICR bit 13 is reserved');
  assert.equal(l.writeMsr(0x830, 0x14041n), 'gp', 'ICR bit 16 is reserved');
  assert.equal(l.writeMsr(0x830, 0x5041n), 'ok', 'ICR bit 12 is ignored');
  // SELF IPI
  rec.sent.length = 0;
  assert.equal(l.writeMsr(0x83f, 0x155n), 'gp');
  assert.equal(l.writeMsr(0x83f, 0x55n), 'ok');
  assert.equal(rec.sent.length, 1);
  assert.equal(rec.sent[0].shorthand, 1);
  assert.equal(rec.sent[0].vector, 0x55);
  assert.equal(rec.sent[0].source, 7);
});

test('x2APIC self IPI and ICR IPIs on the bus', () => {
  const { lapics } = makeBus(2);
  for (const l of lapics) {
    assert.equal(l.writeMsr(0x1b, l.apicBaseMsr | 0x400n), 'ok');
    assert.equal(l.writeMsr(0x80f, 0x1ffn), 'ok');
  }
  lapics[0].writeMsr(0x83f, 0x66n);
  assert.equal(lapics[0].pendingVector(), 0x66);
  assert.equal(lapics[1].pendingVector(), -1);
  lapics[0].writeMsr(0x830, (1n << 32n) | 0x4067n);
  assert.equal(lapics[1].pendingVector(), 0x67);
  lapics[1].writeMsr(0x830, (0xffffffffn << 32n) | 0x4068n);
  assert.equal(lapics[0].pendingVector(), 0x68, 'x2APIC broadcast');
  assert.equal(lapics[1].pendingVector(), 0x68);
  lapics[1].writeMsr(0x830, (0x10001n << 32n) | 0x4869n); // logical: cluster 1 has no one
  assert.equal(lapics[0].pendingVector(), 0x68);
  lapics[1].writeMsr(0x830, (0x00001n << 32n) | 0x4869n); // logical: cluster 0, member 0
  assert.equal(lapics[0].pendingVector(), 0x69);
  assert.equal(lapics[1].pendingVector(), 0x68);
});

// ---- LINT pins and the PIC ---------------------------------------------------------------

test('LINT0/LINT1: ExtINT, NMI on rising edges, hardware-disabled pass-through', () => {
  const { l, rec } = makeLapic(1);
  assert.equal(l.acceptsPicInterrupts(), true, 'software-disabled');
  enable(l);
  assert.equal(l.acceptsPicInterrupts(), false, 'LINT0 masked');
  wr(l, REG.LVT_LINT0, 0x700);
  assert.equal(l.acceptsPicInterrupts(), true);
  l.setLint(0, true);
  assert.ok(rec.kicks > 0, 'an ExtINT line wakes the CPU');
  wr(l, REG.LVT_LINT0, 0x10700);
  assert.equal(l.acceptsPicInterrupts(), false);
  wr(l, REG.LVT_LINT1, 0x400);
  l.setLint(1, true);
  l.setLint(1, true);
  assert.equal(rec.nmis, 1, 'NMI on the rising edge only');
  l.setLint(1, false);
  l.setLint(1, true);
  assert.equal(rec.nmis, 2);
  l.setLint(1, false);
  assert.equal(l.writeMsr(0x1b, 0xfee00000n), 'ok');
  assert.equal(l.acceptsPicInterrupts(), true, 'hardware-disabled');
  l.setLint(1, true);
  assert.equal(rec.nmis, 3, 'LINT1 is the NMI pin without an APIC');
});

test('LINT fixed edge and level-triggered with remote IRR', () => {
  const { l, rec } = makeLapic(1);
  enable(l);
  wr(l, REG.LVT_LINT1, 0x51);
  l.setLint(1, true);
  assert.equal(l.acknowledge(), 0x51);
  l.setLint(1, true);
  assert.equal(l.pendingVector(), -1, 'edge: held high delivers once');
  wr(l, REG.EOI, 0);
  wr(l, REG.LVT_LINT0, 0x8050); // fixed, level
  l.setLint(0, true);
  assert.equal(rd(l, REG.LVT_LINT0), 0xc050, 'remote IRR set');
  assert.ok(bit(l, REG.TMR, 0x50));
  assert.equal(l.acknowledge(), 0x50);
  wr(l, REG.EOI, 0);
  assert.deepEqual(rec.eois, [0x50]);
  assert.equal(l.pendingVector(), 0x50, 'still asserted: delivered again after EOI');
  assert.equal(l.acknowledge(), 0x50);
  l.setLint(0, false);
  wr(l, REG.EOI, 0);
  assert.equal(rd(l, REG.LVT_LINT0), 0x8050);
  assert.equal(l.pendingVector(), -1);
});

// ---- timer -------------------------------------------------------------------------------

const T = CYCLES_PER_BUS_TICK;

test('bus clock: 100 MHz, 29 cycles per tick; divide configuration', () => {
  assert.equal(T, 29);
  const expect = [2, 4, 8, 16, 32, 64, 128, 1];
  for (let code = 0; code < 8; code++) {
    const tdcr = ((code & 4) << 1) | (code & 3);
    assert.equal(timerDivisor(tdcr), expect[code], `TDCR ${tdcr.toString(2)}`);
  }
});

function timerLapic(): { l: Lapic; clock: FakeClock; rec: Recorder } {
  const r = makeLapic(1);
  enable(r.l);
  return r;
}

test('one-shot timer expires exactly initial * 29 * divide cycles later', () => {
  const { l, clock } = timerLapic();
  clock.t = 1000;
  wr(l, REG.TIMER_DIVIDE, 0xb); // divide by 1
  wr(l, REG.LVT_TIMER, 0x40);
  wr(l, REG.TIMER_INITIAL, 1000);
  assert.equal(rd(l, REG.TIMER_CURRENT), 1000);
  clock.advance(1000 + 1000 * T - 1);
  assert.equal(rd(l, REG.TIMER_CURRENT), 1);
  assert.equal(l.pendingVector(), -1);
  clock.advance(1000 + 1000 * T);
  assert.equal(l.pendingVector(), 0x40);
  assert.equal(rd(l, REG.TIMER_CURRENT), 0);
  l.acknowledge();
  wr(l, REG.EOI, 0);
  clock.advance(1000 + 10_000 * T);
  assert.equal(l.pendingVector(), -1, 'one shot only');
  assert.equal(rd(l, REG.TIMER_INITIAL), 1000);
});

test('current count follows simulated time with each divider', () => {
  for (const [tdcr, div] of [
    [0x0, 2],
    [0x3, 16],
    [0xa, 128],
  ]) {
    const { l, clock } = timerLapic();
    wr(l, REG.TIMER_DIVIDE, tdcr);
    wr(l, REG.LVT_TIMER, 0x40);
    wr(l, REG.TIMER_INITIAL, 10);
    clock.advance(3 * T * div);
    assert.equal(rd(l, REG.TIMER_CURRENT), 7);
    clock.advance(4 * T * div - 1);
    assert.equal(rd(l, REG.TIMER_CURRENT), 7, 'the count changes only at whole counts');
    clock.advance(10 * T * div - 1);
    assert.equal(l.pendingVector(), -1);
    clock.advance(10 * T * div);
    assert.equal(l.pendingVector(), 0x40, `divide ${div}`);
  }
});

test('periodic timer re-arms from the previous deadline (no drift)', () => {
  const { l, clock } = timerLapic();
  wr(l, REG.LVT_TIMER, 0x20041); // periodic
  wr(l, REG.TIMER_INITIAL, 100); // divide 2: period 100 * 58 cycles
  const period = 100 * 2 * T;
  const fires: number[] = [];
  for (let k = 1; k <= 5; k++) {
    clock.advance(k * period - 1);
    assert.equal(l.pendingVector(), -1);
    clock.advance(k * period);
    assert.equal(l.acknowledge(), 0x41);
    wr(l, REG.EOI, 0);
    fires.push(clock.now());
    assert.equal(rd(l, REG.TIMER_CURRENT), 100, 'reloaded');
  }
  assert.deepEqual(
    fires,
    [1, 2, 3, 4, 5].map((k) => k * period),
  );
  clock.advance(5 * period + 30 * 2 * T);
  assert.equal(rd(l, REG.TIMER_CURRENT), 70);
  // A late event still fires on the original grid.
  clock.t = 8 * period + 7;
  clock.runDue(clock.t);
  assert.equal(clock.nextTime(), 9 * period);
});

test('masked timer counts without interrupting; initial count 0 stops it', () => {
  const { l, clock } = timerLapic();
  wr(l, REG.LVT_TIMER, 0x30040); // periodic, masked
  wr(l, REG.TIMER_INITIAL, 10);
  clock.advance(25 * 2 * T);
  assert.equal(l.pendingVector(), -1);
  assert.equal(rd(l, REG.TIMER_CURRENT), 5);
  wr(l, REG.LVT_TIMER, 0x20040); // unmask
  clock.advance(30 * 2 * T);
  assert.equal(l.pendingVector(), 0x40);
  wr(l, REG.TIMER_INITIAL, 0);
  assert.equal(rd(l, REG.TIMER_CURRENT), 0);
  assert.equal(clock.size, 0, 'no event left');
});

test('a new initial count restarts; a divide change keeps the count', () => {
  const { l, clock } = timerLapic();
  wr(l, REG.TIMER_DIVIDE, 0xb);
  wr(l, REG.LVT_TIMER, 0x40);
  wr(l, REG.TIMER_INITIAL, 1000);
  clock.advance(400 * T);
  wr(l, REG.TIMER_INITIAL, 1000);
  clock.advance(1399 * T);
  assert.equal(l.pendingVector(), -1);
  clock.advance(1400 * T);
  assert.equal(l.pendingVector(), 0x40);
  l.acknowledge();
  wr(l, REG.EOI, 0);
  const t0 = clock.now();
  wr(l, REG.TIMER_INITIAL, 1000);
  clock.advance(t0 + 400 * T);
  assert.equal(rd(l, REG.TIMER_CURRENT), 600);
  wr(l, REG.TIMER_DIVIDE, 0x0); // now divide by 2
  assert.equal(rd(l, REG.TIMER_CURRENT), 600);
  clock.advance(t0 + 400 * T + 600 * 2 * T - 1);
  assert.equal(l.pendingVector(), -1);
  clock.advance(t0 + 400 * T + 600 * 2 * T);
  assert.equal(l.pendingVector(), 0x40);
});

test('one-shot <-> periodic keeps counting; a masked LVT while software-disabled', () => {
  const { l, clock } = timerLapic();
  wr(l, REG.LVT_TIMER, 0x40);
  wr(l, REG.TIMER_INITIAL, 10);
  wr(l, REG.LVT_TIMER, 0x20040);
  clock.advance(10 * 2 * T);
  l.acknowledge();
  wr(l, REG.EOI, 0);
  clock.advance(20 * 2 * T);
  assert.equal(l.pendingVector(), 0x40, 'periodic after the switch');
  l.acknowledge();
  wr(l, REG.EOI, 0);
  wr(l, REG.SVR, 0xff); // software disable masks the timer
  clock.advance(50 * 2 * T);
  enable(l);
  assert.equal(l.pendingVector(), -1);
});

test('TSC-deadline timer', () => {
  const { l, clock } = timerLapic();
  assert.equal(l.writeMsr(0x6e0, 5000n), 'ok');
  assert.equal(l.readMsr(0x6e0), 0n, 'ignored outside TSC-deadline mode');
  wr(l, REG.LVT_TIMER, 0x40042);
  wr(l, REG.TIMER_INITIAL, 10);
  assert.equal(rd(l, REG.TIMER_INITIAL), 0, 'initial count writes are ignored');
  assert.equal(l.writeMsr(0x6e0, 50_000n), 'ok');
  assert.equal(l.readMsr(0x6e0), 50_000n);
  assert.equal(rd(l, REG.TIMER_CURRENT), 0);
  clock.advance(49_999);
  assert.equal(l.pendingVector(), -1);
  clock.advance(50_000);
  assert.equal(l.pendingVector(), 0x42);
  assert.equal(l.readMsr(0x6e0), 0n, 'cleared when it fires');
  l.acknowledge();
  wr(l, REG.EOI, 0);
  l.writeMsr(0x6e0, 60_000n);
  l.writeMsr(0x6e0, 0n);
  clock.advance(70_000);
  assert.equal(l.pendingVector(), -1, 'a write of 0 disarms');
  l.writeMsr(0x6e0, 100n);
  assert.equal(l.pendingVector(), 0x42, 'a deadline in the past fires at once');
  l.acknowledge();
  wr(l, REG.EOI, 0);
  l.writeMsr(0x6e0, 80_000n);
  wr(l, REG.LVT_TIMER, 0x42); // leaving TSC-deadline mode disarms
  clock.advance(90_000);
  assert.equal(l.pendingVector(), -1);
  wr(l, REG.LVT_TIMER, 0x40042);
  assert.equal(l.readMsr(0x6e0), 0n);
  l.writeMsr(0x6e0, 0xffffffffffffffffn);
  assert.equal(l.readMsr(0x6e0), 0xffffffffffffffffn, 'the full 64-bit value reads back');
});

test('TSC-deadline follows the TSC (cycles + offset); switching into it disarms the countdown', () => {
  const clock = new FakeClock();
  const host = makeHost(clock, { readTsc: () => clock.now() + 1000 });
  const l = new Lapic(1, host);
  enable(l);
  wr(l, REG.LVT_TIMER, 0x40);
  wr(l, REG.TIMER_INITIAL, 10);
  wr(l, REG.LVT_TIMER, 0x40040);
  clock.advance(100 * T);
  assert.equal(l.pendingVector(), -1, 'the countdown was disarmed');
  l.writeMsr(0x6e0, 5000n + 1000n + BigInt(clock.now()));
  clock.advance(clock.now() + 4999);
  assert.equal(l.pendingVector(), -1);
  clock.advance(clock.now() + 1);
  assert.equal(l.pendingVector(), 0x40);
});

test('timer with an illegal vector raises the error LVT', () => {
  const { l, clock } = timerLapic();
  wr(l, REG.LVT_ERROR, 0xfe);
  wr(l, REG.LVT_TIMER, 0x05);
  wr(l, REG.TIMER_INITIAL, 1);
  clock.advance(2 * T);
  assert.equal(l.pendingVector(), 0xfe);
  assert.equal(esr(l), ESR_RECV_ILLEGAL_VECTOR);
});

test('snapshot and restore keep registers and the armed timer', () => {
  const a = timerLapic();
  wr(a.l, REG.TPR, 0x10);
  wr(a.l, REG.LVT_TIMER, 0x20040);
  wr(a.l, REG.TIMER_INITIAL, 100);
  a.l.accept(fixed(0x90, 1));
  a.clock.advance(150 * 2 * T);
  const snap = JSON.parse(JSON.stringify(a.l.snapshot()));
  const b = makeLapic(1);
  b.clock.t = a.clock.t;
  b.l.restore(snap);
  assert.equal(rd(b.l, REG.TPR), 0x10);
  assert.equal(rd(b.l, REG.TIMER_CURRENT), 50);
  assert.ok(bit(b.l, REG.TMR, 0x90));
  b.clock.advance(200 * 2 * T);
  assert.ok(bit(b.l, REG.IRR, 0x40));
  assert.equal(b.clock.nextTime(), 300 * 2 * T);
});

// ---- MSI ---------------------------------------------------------------------------------

test('MSI address/data decoding', () => {
  assert.deepEqual(decodeMsi(0xfee02000, 0x4031), {
    vector: 0x31,
    deliveryMode: DM_FIXED,
    destMode: 0,
    dest: 2,
    shorthand: 0,
    level: true,
    trigger: 0,
    source: -1,
  });
  const m = decodeMsi(0xfeeff00c, 0x8141)!;
  assert.equal(m.dest, 0xff);
  assert.equal(m.destMode, 1);
  assert.equal(m.deliveryMode, DM_LOWEST);
  assert.equal(m.trigger, 1);
  assert.equal(m.level, false, 'level-triggered de-assert');
  assert.equal(decodeMsi(0xfee00000, 0x0021)!.level, true, 'edge messages always assert');
  assert.equal(decodeMsi(0xfed00000, 0x4031), undefined);
  assert.equal(decodeMsi(0xfee00000, 0x0331), undefined, 'reserved delivery mode');
  assert.equal(decodeMsi(0xfee00000, 0x0400)!.deliveryMode, DM_NMI);
  const enc = encodeMsi({ vector: 0x55, deliveryMode: DM_FIXED, destMode: 1, dest: 0x0c, trigger: 1 });
  const back = decodeMsi(enc.address, enc.data)!;
  assert.equal(back.vector, 0x55);
  assert.equal(back.destMode, 1);
  assert.equal(back.dest, 0x0c);
  assert.equal(back.trigger, 1);
  assert.equal(back.level, true);
});
