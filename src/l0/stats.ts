/**
 * L0's accounting (DESIGN.md "Cycles, time and determinism"): every exit counted by
 * (level, reason, handler), every cycle attributed to guest code at a level, L0
 * handler work, mode switches, or idle time (all vCPUs halted).
 */
export interface ExitCount {
  level: string;
  reason: string;
  handledBy: string;
  count: number;
}

export class Stats {
  private readonly exits = new Map<string, ExitCount>();
  /** Cycles of guest code by level ('L1', 'L2', …). */
  readonly guest = new Map<string, number>();
  /** Cycles of L0's own work (exit handlers, and for L0 itself its setup). */
  l0 = 0;
  /** Cycles of the hardware's VM exits and entries (also the slice-end exits). */
  switches = 0;
  /** Cycles during which no vCPU could run (only in L0's own Stats: idle time belongs to no VM). */
  idle = 0;
  /** Guest instructions retired (by this VM's vCPUs). */
  instructions = 0;
  /** Slices that ended by L0's timer (a VM exit that is not the guest's doing). */
  slices = 0;
  /** Guest instructions L0 emulated in software (guest state VM entry refuses: vmm/realmode/). */
  emulatedInstructions = 0;
  /** L2 exits reflected to L1, and the L0 exits they caused (the paper's Figure 10). */
  reflected = 0;
  l0ExitsForReflected = 0;

  /** Every exit counted, whoever handled it (each one reached L0 first). */
  totalExits = 0;

  countExit(level: string, reason: string, handledBy: string, n = 1): void {
    this.totalExits += n;
    const key = `${level}\u0000${reason}\u0000${handledBy}`;
    const e = this.exits.get(key);
    if (e) e.count += n;
    else this.exits.set(key, { level, reason, handledBy, count: n });
  }
  exitCount(reason: string, level?: string): number {
    let n = 0;
    for (const e of this.exits.values())
      if (e.reason === reason && (!level || e.level === level)) n += e.count;
    return n;
  }
  exitCounts(): ExitCount[] {
    return [...this.exits.values()].sort(
      (a, b) => a.level.localeCompare(b.level) || b.count - a.count || a.reason.localeCompare(b.reason),
    );
  }
  addGuest(level: string, cycles: number): void {
    this.guest.set(level, (this.guest.get(level) ?? 0) + cycles);
  }
  guestCycles(level: string): number {
    return this.guest.get(level) ?? 0;
  }
  /** Every cycle this Stats attributes: guest code at every level, L0, switches, idle. */
  cycles(): number {
    let n = this.l0 + this.switches + this.idle;
    for (const c of this.guest.values()) n += c;
    return n;
  }
  /** L0 exits caused per L2 exit reflected to L1 (0 when nothing was reflected). */
  l0ExitsPerReflectedExit(): number {
    return this.reflected ? this.l0ExitsForReflected / this.reflected : 0;
  }
  /** Add another VM's counters into this one (totals for a whole stack). */
  merge(o: Stats): void {
    for (const e of o.exits.values()) this.countExit(e.level, e.reason, e.handledBy, e.count);
    for (const [l, c] of o.guest) this.addGuest(l, c);
    this.l0 += o.l0;
    this.switches += o.switches;
    this.idle += o.idle;
    this.slices += o.slices;
    this.instructions += o.instructions;
    this.emulatedInstructions += o.emulatedInstructions;
    this.reflected += o.reflected;
    this.l0ExitsForReflected += o.l0ExitsForReflected;
  }
}
