/**
 * L0: owns the machine's VT-x through the host interface, carves host memory into its
 * own structures and the VMs' RAM, and schedules every vCPU of every VM on the physical
 * CPU deterministically (round robin, fixed slices of host cycles).
 */
import { UserError, type Machine, type VmxHost } from './hw.js';
import { HostPages } from './alloc.js';
import { Vm, type VmEnd } from './vm.js';
import type { Vcpu } from './vmm/vcpu.js';

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
    const vm = new Vm(this.host, this.pages, this.vms.length, {
      name: spec.name,
      memMiB: roundMiB(spec.memMiB),
      cpus: spec.cpus,
      ramHpa: this.nextRam,
      serial: spec.serial,
    });
    this.nextRam += bytes;
    this.vms.push(vm);
    return vm;
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
          this.switchTo(v);
          const until = Math.min(maxCycles, h.cycles + SLICE, vm.nextEvent());
          v.run(Math.max(until, h.cycles + 1));
          vm.runDue(h.cycles);
        }
      }
      if (ran) continue;
      // Every vCPU is halted: let time pass to the next device event.
      const next = Math.min(...live.map((vm) => vm.nextEvent()));
      if (next === Infinity) {
        for (const vm of live)
          vm.stopWith({
            kind: 'stopped',
            detail: 'every vCPU halted and nothing can wake one (no timer, no interrupt source)',
          });
        return;
      }
      const to = Math.min(next, maxCycles);
      if (to > h.cycles) {
        const idle = to - h.cycles;
        h.charge(idle);
        for (const vm of live) vm.stats.idle += idle;
      }
      for (const vm of live) vm.runDue(h.cycles);
    }
  }
}

export type { VmEnd };
