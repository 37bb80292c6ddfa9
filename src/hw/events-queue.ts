/**
 * Simulated time and timer events. Time is measured in CPU cycles (nominal
 * 2.9 GHz, src/hw/cost.ts). Devices schedule callbacks at absolute times; the
 * machine runs each CPU up to the next due event and fires events in (time,
 * sequence) order, so everything is deterministic.
 */

export interface TimerHandle {
  readonly time: number;
  /** False once fired or cancelled. */
  readonly active: boolean;
}

class Entry implements TimerHandle {
  active = true;
  constructor(
    readonly time: number,
    readonly seq: number,
    readonly fn: () => void,
  ) {}
}

export interface Clock {
  /** Current simulated time in cycles. */
  now(): number;
  /** Run `fn` when simulated time reaches `time` (cycles). */
  schedule(time: number, fn: () => void): TimerHandle;
  cancel(h: TimerHandle | undefined): void;
}

/** A binary min-heap of timer events ordered by (time, sequence number). */
export class EventQueue implements Clock {
  private heap: Entry[] = [];
  private seq = 0;
  /** Supplied by the machine: the time of the CPU currently running. */
  nowFn: () => number = () => 0;

  now(): number {
    return this.nowFn();
  }
  schedule(time: number, fn: () => void): TimerHandle {
    const e = new Entry(Math.max(time, 0), this.seq++, fn);
    this.heap.push(e);
    this.up(this.heap.length - 1);
    return e;
  }
  cancel(h: TimerHandle | undefined): void {
    if (h) (h as Entry).active = false;
  }
  /** Time of the earliest active event, or Infinity. */
  nextTime(): number {
    this.dropInactive();
    return this.heap.length ? this.heap[0].time : Infinity;
  }
  /** Fire every active event due at or before `now`, in order. Returns how many fired. */
  runDue(now: number): number {
    let n = 0;
    for (;;) {
      this.dropInactive();
      const top = this.heap[0];
      if (!top || top.time > now) return n;
      this.pop();
      top.active = false;
      top.fn();
      n++;
    }
  }
  get size(): number {
    return this.heap.filter((e) => e.active).length;
  }
  private dropInactive(): void {
    while (this.heap.length && !this.heap[0].active) this.pop();
  }
  private less(a: Entry, b: Entry): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }
  private up(k: number): void {
    const h = this.heap;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (!this.less(h[k], h[p])) break;
      [h[k], h[p]] = [h[p], h[k]];
      k = p;
    }
  }
  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (!h.length) return;
    h[0] = last;
    let k = 0;
    for (;;) {
      const l = 2 * k + 1,
        r = l + 1;
      let m = k;
      if (l < h.length && this.less(h[l], h[m])) m = l;
      if (r < h.length && this.less(h[r], h[m])) m = r;
      if (m === k) return;
      [h[k], h[m]] = [h[m], h[k]];
      k = m;
    }
  }
}
