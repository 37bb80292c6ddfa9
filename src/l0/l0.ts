/**
 * L0: owns the machine's VT-x through the host interface, carves host memory into its
 * own structures and the VMs' RAM, and schedules every vCPU of every VM on the physical
 * CPU deterministically (round robin, fixed slices of host cycles).
 */
import { UserError, type Machine, type VmxHost } from './hw.js';
import { HostPages } from './alloc.js';
import { Vm, type VmEnd } from './vm.js';
import type { Vcpu } from './vmm/vcpu.js';
import type { MmuMode } from './mmu/mode.js';
import type { NestedOptions } from './nested/options.js';
import { Stats } from './stats.js';

/** Host-physical layout: the VMXON region at 64 KiB, L0's page pool, then the VMs' RAM. */
const VMXON_REGION = 0x10000;
export const L0_POOL_START = 0x100000;
export const L0_POOL_END = 0x2000000;
export const GUEST_RAM_HPA = L0_POOL_END;
/** Host cycles a vCPU runs before the next runnable vCPU gets the CPU. */
export const SLICE = 1_000_000;

export interface VmSpec {
  name: string;
  memMiB: number;
  cpus: number;
  serial: (b: number) => void;
  /** 'ept' or 'shadow'; default: ept when the machine has EPT, else shadow paging. */
  mmu?: MmuMode;
  /** --nested: give L1 a virtual VT-x (src/l0/nested). */
  nested?: NestedOptions;
}

/** How much host RAM a machine needs for L0 and these VMs. */
export function hostMemMiB(vms: readonly { memMiB: number }[]): number {
  return (GUEST_RAM_HPA >> 20) + vms.reduce((s, v) => s + roundMiB(v.memMiB), 0);
}
const roundMiB = (m: number): number => Math.ceil(m / 2) * 2;

export class L0 {
  readonly host: VmxHost;
  readonly pages: HostPages;
  readonly vms: Vm[] = [];
  /**
   * What belongs to no VM: idle time (every vCPU halted) and L0's work before the first
   * VM entry (`l0`: building the VMs). With every VM's Stats this accounts for every cycle
   * of the machine (`accountedCycles`).
   */
  readonly stats = new Stats();
  private nextRam = GUEST_RAM_HPA;
  private current: Vcpu | undefined;

  constructor(readonly machine: Machine) {
    this.host = machine.vmxHost(0);
    this.pages = new HostPages(machine.mem, L0_POOL_START, L0_POOL_END);
    machine.mem.write32(VMXON_REGION, this.host.revisionId);
    const r = this.host.vmxon(VMXON_REGION);
    if (!r.ok) throw new Error(`L0: VMXON failed: ${JSON.stringify(r)}`);
  }

  addVm(spec: VmSpec): Vm {
    const bytes = roundMiB(spec.memMiB) * 1048576;
    if (this.nextRam + bytes > this.machine.mem.lowEnd)
      throw new UserError(`VM ${spec.name}: --mem ${spec.memMiB}: the machine has no room for it`);
    // EPT support: IA32_VMX_PROCBASED_CTLS2 allowed-1 bit 1 (SDM 3C Appendix A.3.3).
    const hasEpt = ((this.host.capability(0x48b) >> 32n) & 2n) !== 0n;
    if (spec.mmu === 'ept' && !hasEpt)
      throw new UserError(`VM ${spec.name}: mmu ept needs EPT in the machine (use shadow paging)`);
    const mmu: MmuMode = spec.mmu ?? (hasEpt ? 'ept' : 'shadow');
    const vm = new Vm(this.host, this.pages, this.vms.length, {
      name: spec.name,
      memMiB: roundMiB(spec.memMiB),
      cpus: spec.cpus,
      ramHpa: this.nextRam,
      serial: spec.serial,
      mmu,
      nested: spec.nested,
    });
    this.nextRam += bytes;
    this.vms.push(vm);
    return vm;
  }

  /** Cycles attributed so far: L0's own stats plus every VM's (equals the machine's cycles after run). */
  accountedCycles(): number {
    return this.totals().cycles();
  }
  /** L0's own stats and every VM's, merged (the totals of a whole stack). */
  totals(): Stats {
    const all = new Stats();
    all.merge(this.stats);
    for (const vm of this.vms) all.merge(vm.stats);
    return all;
  }

  /** Put the current vCPU and load `v` (its VMCS and registers). */
  switchTo(v: Vcpu): void {
    if (this.current === v) return;
    this.current?.put();
    v.load();
    this.current = v;
  }

  /**
   * Run every VM until all have ended or the machine reaches `maxCycles`. Each round gives
   * each runnable vCPU a slice (shortened to its VM's next device event); when no vCPU can
   * run, time jumps to the next device event (idle), and VMs that nothing can wake stop.
   */
  run(maxCycles: number): void {
    const h = this.host;
    // Cycles charged before the first entry (building VMs) are L0's work.
    this.stats.l0 += h.cycles - this.accountedCycles();
    for (;;) {
      const live = this.vms.filter((vm) => !vm.end);
      if (live.length === 0) return;
      if (h.cycles >= maxCycles) {
        for (const vm of live) vm.stopWith({ kind: 'max-cycles' });
        return;
      }
      let ran = false;
      for (const vm of live) {
        for (const v of vm.vcpus) {
          if (vm.end || v.state !== 'runnable') continue;
          ran = true;
          this.onBehalfOf(vm, () => {
            this.switchTo(v);
            // The vCPU's run loop itself stops at each of its VM's device events and fires them.
            const until = Math.min(maxCycles, h.cycles + SLICE);
            v.run(Math.max(until, h.cycles + 1));
            vm.runDue(h.cycles);
          });
        }
      }
      // A VM none of whose vCPUs can run, with no device event pending, never runs again
      // (VMs are isolated: nothing else can wake it). It stops with the reason.
      for (const vm of live)
        if (!vm.end && vm.nextEvent() === Infinity && !vm.vcpus.some((v) => v.state === 'runnable'))
          vm.stopWith({ kind: 'stopped', detail: vm.idleReport() });
      if (ran) continue;
      // Every vCPU is halted: let time pass to the next device event.
      const next = Math.min(...live.map((vm) => vm.nextEvent()));
      if (next === Infinity) return;
      const to = Math.min(next, maxCycles);
      if (to > h.cycles) {
        // Idle time is the machine's, not any VM's: counted once, in L0's own stats.
        const idle = to - h.cycles;
        h.charge(idle);
        this.stats.idle += idle;
      }
      for (const vm of live) this.onBehalfOf(vm, () => vm.runDue(h.cycles));
    }
  }

  /**
   * Run L0 work for `vm`. The cycles it takes that the vCPU loop did not attribute itself
   * (guest code, switches, exit handlers) are L0's work for that VM: loading its vCPU,
   * event injection before entry, its device events. So every cycle has one owner.
   */
  private onBehalfOf(vm: Vm, work: () => void): void {
    const c0 = this.host.cycles,
      a0 = vm.stats.cycles();
    work();
    vm.stats.l0 += this.host.cycles - c0 - (vm.stats.cycles() - a0);
  }
}

export type { VmEnd };
