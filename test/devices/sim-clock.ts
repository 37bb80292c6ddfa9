/** A test clock: an EventQueue whose time moves only when the test says so, firing events at their exact cycles. */
import { EventQueue } from '../../src/hw/events-queue.js';

export class SimClock extends EventQueue {
  time = 0;
  constructor() {
    super();
    this.nowFn = () => this.time;
  }
  /** Advance to `cycles`, running every event due on the way at its own time. */
  advanceTo(cycles: number): void {
    for (;;) {
      const next = this.nextTime();
      if (next > cycles) break;
      this.time = Math.max(this.time, next);
      this.runDue(this.time);
    }
    this.time = Math.max(this.time, cycles);
  }
  advance(cycles: number): void {
    this.advanceTo(this.time + cycles);
  }
}
