/**
 * A virtual CPU: its vmcs01, its general-purpose registers while another vCPU owns the
 * physical CPU, and its run loop — an explicit state machine over the host interface:
 *
 *   runnable --VM entry--> (guest runs) --VM exit--> dispatch --> runnable | halted | stopped
 *
 * L0 runs on one physical CPU and multiplexes every vCPU of every VM on it (l0.ts), so a
 * switch between vCPUs saves and restores the GPRs and loads the other vCPU's VMCS, as KVM
 * does at vcpu_load/vcpu_put.
 */
import { type VmxHost, type ExitRecord } from '../hw.js';
import type { Vm } from '../vm.js';
import { EXIT_HANDLERS, exitName, type ExitContext } from './exits.js';
import { L0_COST } from '../cost.js';
import { dumpGuest } from './dump.js';

export type VcpuState = 'runnable' | 'halted' | 'wait-sipi' | 'stopped';

/** What the hardware charges for one VM exit plus the VM entry back (src/hw/cost.ts: 500 + 500). */
export const SWITCH_CYCLES = 1000;

export class Vcpu {
  /** GPRs (RAX…R15 as lo/hi pairs) while the vCPU is not loaded on the physical CPU. */
  private readonly saved: bigint[] = new Array<bigint>(16).fill(0n);
  launched = false;
  state: VcpuState = 'runnable';
  /** The level whose code runs when this vCPU is entered ('L1'; 'L2' while L1 runs a nested guest). */
  level = 'L1';

  constructor(
    readonly vm: Vm,
    readonly index: number,
    /** Host-physical address of this vCPU's vmcs01. */
    readonly vmcs01: number,
  ) {}

  get host(): VmxHost {
    return this.vm.host;
  }

  /** Make this vCPU current on the physical CPU: its VMCS and its registers. */
  load(): void {
    const r = this.host.vmptrld(this.vmcs01);
    if (!r.ok) throw new Error(`L0: VMPTRLD of vmcs01 failed: ${JSON.stringify(r)}`);
    for (let k = 0; k < 16; k++) this.host.setReg(k, this.saved[k]);
  }
  /** Save the registers before another vCPU is loaded. */
  put(): void {
    for (let k = 0; k < 16; k++) this.saved[k] = this.host.getReg(k);
  }
  /** Set a register of a vCPU that is not loaded (boot state). */
  setSavedReg(k: number, v: number | bigint): void {
    this.saved[k] = BigInt(v);
  }

  /**
   * Run the vCPU until host cycle `until`, until it halts or stops, or until its VM ends.
   * The vCPU must be loaded.
   */
  run(until: number): void {
    const h = this.host;
    const vm = this.vm;
    while (!vm.end && this.state === 'runnable') {
      if (h.cycles >= until) return;
      vm.beforeEntry(this);
      const before = h.cycles;
      const r = this.launched ? h.vmresume(until - h.cycles) : h.vmlaunch(until - h.cycles);
      this.launched = true;
      if (r.kind === 'timeout') {
        // Guest time ran out for this slice (on hardware: L0's timer interrupt).
        vm.stats.addGuest(this.level, h.cycles - before);
        return;
      }
      if (r.kind === 'vmfail') return this.stop(`VM entry failed: ${JSON.stringify(r.status)} (${r.check})`);
      if (r.kind === 'entry-failure')
        return this.stop(`VM entry failure, exit reason ${r.reason}: ${r.check}`);
      vm.stats.switches += SWITCH_CYCLES;
      vm.stats.addGuest(this.level, h.cycles - before - SWITCH_CYCLES);
      this.dispatch(r);
    }
  }

  /** One VM exit through the handler table; L0's work is charged and attributed to L0. */
  dispatch(r: ExitRecord): void {
    const h = this.host;
    const t0 = h.cycles;
    h.charge(L0_COST.dispatch);
    const handler = EXIT_HANDLERS[r.reason as keyof typeof EXIT_HANDLERS];
    this.vm.stats.countExit(this.level, exitName(r.reason), 'L0');
    if (!handler)
      this.stop(
        `unexpected VM exit (reason ${r.reason}, qualification 0x${r.qualification.toString(16)})\n${dumpGuest(h)}`,
      );
    else {
      const ctx: ExitContext = { vm: this.vm, vcpu: this, host: h, exit: r };
      handler.handle(ctx);
    }
    this.vm.stats.l0 += h.cycles - t0;
  }

  /** End the whole VM with a report (a guest can stop itself, never L0 or another VM). */
  stop(detail: string): void {
    this.state = 'stopped';
    this.vm.stopWith({
      kind: 'stopped',
      detail: this.vm.vcpus.length > 1 ? `vCPU ${this.index}: ${detail}` : detail,
    });
  }
}
