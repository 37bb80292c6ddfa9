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
import { type VmxHost, type ExitRecord, type MsrState } from '../hw.js';
import type { Vm } from '../vm.js';
import { EXIT_HANDLERS, exitName, type ExitContext } from './exits.js';
import { L0_COST } from '../cost.js';
import { dumpGuest } from './dump.js';
import type { NestedVcpu } from '../nested/state.js';
import { nestedDispatch, vmcs02EntryFailed } from '../nested/dispatch.js';
import { emulateInvalidState, needsEmulation } from './realmode/emulate.js';

export type VcpuState = 'runnable' | 'halted' | 'wait-sipi' | 'stopped';

/** Exit reason of a VM entry that failed its guest-state checks (SDM 3C Appendix C). */
const INVALID_GUEST_STATE = 33;

/** What the hardware charges for one VM exit plus the VM entry back (src/hw/cost.ts: 500 + 500). */
export const SWITCH_CYCLES = 1000;

export class Vcpu {
  /** GPRs (RAX…R15 as lo/hi pairs) while the vCPU is not loaded on the physical CPU. */
  private readonly saved: bigint[] = new Array<bigint>(16).fill(0n);
  /** The MSR file and TSC while the vCPU is not loaded (undefined: the power-on state). */
  private msrs: MsrState | undefined;
  launched = false;
  state: VcpuState = 'runnable';
  /** The level whose code runs when this vCPU is entered ('L1'; 'L2' while L1 runs a nested guest). */
  level = 'L1';
  /** Nested-VMX state when the VM runs with --nested (L1 is a hypervisor). */
  nested: NestedVcpu | undefined;
  /**
   * Under shadow paging (vm.mmu === 'shadow') L0 keeps the guest's CR3 and EFER: GUEST_CR3
   * holds the shadow root and GUEST_IA32_EFER the EFER the hardware runs with (mmu/shadow*.ts).
   */
  guestCr3 = 0n;
  guestEfer = 0n;
  /** The guest's CR2 while another vCPU owns the physical CPU. */
  private cr2 = 0n;
  /**
   * The guest state is one VM entry refuses without unrestricted guest (shadow paging: real
   * mode, or protected mode with real-mode segment caches): L0 emulates the vCPU's
   * instructions instead of entering it until the state is valid (realmode/emulate.ts).
   */
  emulating = false;

  // ---- virtual interrupts (inject.ts) and SMP (vm.ts)
  /** An NMI waits to be injected (NMI IPI, LINT1, an IOAPIC entry in NMI mode). */
  nmiPending = false;
  /** RFLAGS.IF and RIP when the vCPU halted (only an interrupt the guest can take wakes it). */
  haltIf = false;
  haltRip = 0n;
  /** A start-up IPI arrived in wait-for-SIPI: vmcs01 is rebuilt in real mode at vector × 4096 at the next load. */
  sipiVector = -1;
  /** Host-physical address of the virtual-APIC page (TPR shadow: VTPR at 0x80). */
  virtualApic = -1;
  /** The TPR threshold and the window-exiting controls currently in vmcs01 (to skip redundant VMWRITEs). */
  tprThreshold = 0;
  windows = 0;
  /**
   * At most this many cycles for the next entry only (0: exit right after the entry's event
   * injection; nested/interrupts.ts asks for it so that an exit to L1 follows a delivery to L2).
   */
  entryBudget = Infinity;

  constructor(
    readonly vm: Vm,
    readonly index: number,
    /** Host-physical address of this vCPU's vmcs01. */
    readonly vmcs01: number,
  ) {}

  get host(): VmxHost {
    return this.vm.host;
  }

  /** Make this vCPU current on the physical CPU: its VMCS, its registers and its MSRs. */
  load(): void {
    // An AP leaving wait-for-SIPI: a fresh vmcs01 in real mode (vm.ts), then as usual.
    if (this.sipiVector >= 0) this.vm.startAtSipi(this);
    // A vCPU whose L1 runs a nested guest is resumed on vmcs02 (src/l0/nested).
    const r = this.host.vmptrld(this.level === 'L2' && this.nested ? this.nested.vmcs02 : this.vmcs01);
    if (!r.ok) throw new Error(`L0: VMPTRLD of vmcs01 failed: ${JSON.stringify(r)}`);
    for (let k = 0; k < 16; k++) this.host.setReg(k, this.saved[k]);
    // MSRs the guest writes without exiting (SYSCALL entry points, …): another VM's must not leak in.
    this.host.loadMsrState(this.msrs);
    // CR2 is not in the VMCS: each vCPU has its own (KVM loads it before VM entry).
    this.host.setCr2(this.cr2);
  }
  /** Save the registers and MSRs before another vCPU is loaded. */
  put(): void {
    for (let k = 0; k < 16; k++) this.saved[k] = this.host.getReg(k);
    this.msrs = this.host.saveMsrState();
    this.cr2 = this.host.getCr2();
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
    vm.running = this;
    vm.yieldRequested = false;
    while (!vm.end && this.state === 'runnable') {
      if (h.cycles >= until) return;
      // Device events that came due (an exit handler's work may pass one) fire before the entry;
      // the entry runs at most until the VM's next event, so timers fire on time (vplatform.ts).
      vm.runDue(h.cycles);
      // An IPI or interrupt woke another vCPU of this VM: let the scheduler run it now (l0.ts).
      if (vm.yieldRequested || vm.end || this.state !== 'runnable') return;
      const stopAt = Math.min(until, vm.nextEvent());
      if (this.emulating && this.level === 'L1') {
        emulateInvalidState(this, stopAt);
        continue;
      }
      const tb = h.cycles;
      vm.beforeEntry(this);
      vm.stats.l0 += h.cycles - tb;
      const before = h.cycles,
        insns = h.instructions;
      const l2 = this.level === 'L2' && this.nested !== undefined;
      const launched = l2 ? this.nested!.launched02 : this.launched;
      const budget = Math.min(stopAt - h.cycles, this.entryBudget);
      this.entryBudget = Infinity;
      const r = launched ? h.vmresume(budget) : h.vmlaunch(budget);
      const entered = r.kind === 'exit' || r.kind === 'timeout';
      if (l2) this.nested!.launched02 ||= entered;
      else this.launched = true;
      vm.stats.instructions += h.instructions - insns;
      if (l2 && !entered) {
        // vmcs02 failed an entry check vmcs12 passed (e.g. its MSR-load list): L1 sees the failure.
        vm.stats.switches += h.cycles - before;
        vmcs02EntryFailed(this, this.nested!, r);
        continue;
      }
      if (r.kind === 'vmfail' || r.kind === 'entry-failure') {
        // No guest code ran: whatever the failed entry cost is switch time.
        vm.stats.switches += h.cycles - before;
        // Guest state VM entry refuses without unrestricted guest: emulate instead (SDM 3C §26.3.1).
        if (r.kind === 'entry-failure' && r.reason === INVALID_GUEST_STATE && !l2 && needsEmulation(this)) {
          this.launched = launched; // a failed VMLAUNCH leaves the VMCS clear
          this.emulating = true;
          continue;
        }
        return r.kind === 'vmfail'
          ? this.stop(`VM entry failed: ${JSON.stringify(r.status)} (${r.check})`)
          : this.stop(`VM entry failure, exit reason ${r.reason}: ${r.check}`);
      }
      // An exit, or the end of the slice (on hardware: L0's timer interrupt, also an exit).
      vm.stats.switches += SWITCH_CYCLES;
      vm.stats.addGuest(this.level, h.cycles - before - SWITCH_CYCLES);
      vm.afterExit(this, r.kind === 'exit' ? r : undefined);
      if (r.kind === 'timeout') {
        // L0's timer: the slice ended, or the VM's next device event is due (the loop fires it).
        vm.stats.slices++;
        if (h.cycles < until) continue;
        return;
      }
      this.dispatch(r);
    }
  }

  /** One VM exit through the handler table; L0's work is charged and attributed to L0. */
  dispatch(r: ExitRecord): void {
    if (this.nested) return nestedDispatch(this, this.nested, r);
    this.handleInL0(r);
  }

  /** Handle an exit with L0's own handler table (for L1, or for L2 on L1's behalf). */
  handleInL0(r: ExitRecord): void {
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
