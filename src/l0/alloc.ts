/**
 * Host-physical pages for L0's own structures (VMCS regions, EPT and shadow page
 * tables, bitmaps): a free list over a fixed region below the guests' RAM. Pages
 * are zeroed when handed out. Running out is a clear error, never a silent overlap.
 */
import { UserError, type PhysMem } from './hw.js';

export const PAGE = 4096;

export class HostPages {
  private next: number;
  private readonly free: number[] = [];
  used = 0;
  constructor(
    readonly mem: PhysMem,
    readonly start: number,
    readonly end: number,
  ) {
    this.next = start;
  }
  /** One zeroed 4 KiB page. */
  alloc(): number {
    let a = this.free.pop();
    if (a === undefined) {
      if (this.next >= this.end)
        throw new UserError(
          `L0 ran out of host memory for its own structures (${(this.end - this.start) >> 20} MiB)`,
        );
      a = this.next;
      this.next += PAGE;
    }
    this.mem.u8.fill(0, a, a + PAGE);
    this.mem.noteWrite(a);
    this.used++;
    return a;
  }
  release(a: number): void {
    this.free.push(a);
    this.used--;
  }
}
