/**
 * A virtual machine of L0: guest RAM carved from host physical memory and mapped by
 * ept01, a per-VM PC (vmm/vplatform.ts: the machine's device models on the VM's own I/O bus
 * and event queue, ACPI tables in its RAM), its vCPUs, and its accounting. VMs are created
 * and scheduled by L0 (l0.ts).
 *
 * vCPU lifecycle (SMP): vCPU 0 starts where the multiboot loader leaves a kernel; the others
 * wait for SIPI ('wait-sipi', L0-side: their vmcs01 is built when a start-up IPI arrives, in
 * real mode at vector × 4096, vmm/vcpu-setup.ts; under shadow paging L0 emulates that real-mode
 * code, vmm/realmode/). INIT puts a vCPU back in wait-for-SIPI.
 * HLT makes a vCPU 'halted' until an interrupt it can take (or an NMI) arrives; the vLAPICs'
 * kicks wake it, and ask the running vCPU to yield so that the woken one runs promptly.
 */
import {
  IoBus,
  PhysMem,
  loadMultiboot,
  buildAcpiTables,
  PM_TIMER_PORT,
  MSR_APIC_BASE,
  MSR_TSC_DEADLINE,
  MSR_X2APIC_FIRST,
  MSR_X2APIC_LAST,
  type VmxHost,
  type MultibootModule,
  type ExitRecord,
} from './hw.js';
import type { HostPages } from './alloc.js';
import { buildEpt01, eptp } from './mmu/ept01.js';
import { setupVmcs01, setupMsrBitmap, type Vmcs01Layout } from './vmm/vmcs01.js';
import { Vcpu } from './vmm/vcpu.js';
import { VPlatform, type VcpuSignals } from './vmm/vplatform.js';
import { beforeEntry, afterExit, reinjectVectored } from './vmm/inject.js';
import { beforeL2Entry } from './nested/interrupts.js';
import { platformControls, startupVmcs01 } from './vmm/vcpu-setup.js';
import { vmread } from './vmm/guest-state.js';
import { L0_COST } from './cost.js';
import { VMCS_FIELD as F } from './hw.js';
import { Stats } from './stats.js';
import type { MmuMode } from './mmu/mode.js';
import { bootShadowRoot } from './mmu/shadow.js';
import type { NestedOptions } from './nested/options.js';
import { enableNested } from './nested/setup.js';

export type VmEnd =
  | { kind: 'exit'; code: number }
  | { kind: 'shutdown' }
  | { kind: 'stopped'; detail: string }
  | { kind: 'max-cycles' };

export interface VmConfig {
  name: string;
  memMiB: number;
  cpus: number;
  /** Host-physical base of the VM's RAM (2 MiB aligned). */
  ramHpa: number;
  /** Receives the bytes the guest writes to its COM1. */
  serial: (b: number) => void;
  /** How guest memory is virtualized (default 'ept'). */
  mmu?: MmuMode;
  /** --nested: L1 is a hypervisor and gets a virtual VT-x (src/l0/nested). */
  nested?: NestedOptions;
}

export class Vm {
  readonly io = new IoBus();
  readonly ramBytes: number;
  readonly ramHpa: number;
  readonly name: string;
  readonly vcpus: Vcpu[] = [];
  readonly stats = new Stats();
  /** 'ept' (ept01) or 'shadow' (shadow paging, mmu/shadow*.ts); fixed at creation. */
  readonly mmu: MmuMode;
  /** Nested VMX for L1 (undefined: VMX stays hidden). */
  readonly nested: NestedOptions | undefined;
  /** Root of ept01 and the EPTP vmcs01 uses. */
  readonly ept01: number;
  readonly msrBitmap: number;
  /** The VM's PC: interrupt controllers, timers, LAPICs, IOAPIC, PCI, fw_cfg, UART… */
  readonly platform: VPlatform;
  /** The vCPU in its run loop (vcpu.ts sets it), and whether it should give the CPU up early. */
  running: Vcpu | undefined;
  yieldRequested = false;
  end: VmEnd | undefined;

  constructor(
    readonly host: VmxHost,
    readonly pages: HostPages,
    readonly id: number,
    cfg: VmConfig,
  ) {
    this.name = cfg.name;
    this.mmu = cfg.mmu ?? 'ept';
    this.nested = cfg.nested;
    this.ramBytes = cfg.memMiB * 1024 * 1024;
    this.ramHpa = cfg.ramHpa;
    this.platform = new VPlatform(
      this.io,
      { ramBytes: this.ramBytes, cpus: cfg.cpus, now: () => host.cycles, serial: cfg.serial },
      this.signals,
    );
    this.ept01 = buildEpt01(pages, this.ramHpa, this.ramBytes);
    this.msrBitmap = pages.alloc();
    setupMsrBitmap(host, this.msrBitmap);
    // The local APIC's MSRs exit to the vLAPIC (reads and writes: bitmap offsets 0 and 2048).
    const trap = (msr: number): void => {
      for (const half of [0, 2048]) {
        const a = this.msrBitmap + half + (msr >> 3);
        host.mem.write8(a, host.mem.read8(a) | (1 << (msr & 7)));
      }
    };
    trap(MSR_APIC_BASE);
    trap(MSR_TSC_DEADLINE);
    for (let msr = MSR_X2APIC_FIRST; msr <= MSR_X2APIC_LAST; msr++) trap(msr);
    for (let k = 0; k < cfg.cpus; k++) {
      const v = new Vcpu(this, k, pages.alloc());
      v.virtualApic = pages.alloc();
      // Application processors wait for INIT/SIPI (SDM 3A §8.4), as on the bare machine.
      if (k > 0) v.state = 'wait-sipi';
      this.vcpus.push(v);
    }
  }

  /** How the platform's devices reach the vCPUs (INIT, SIPI, NMI, wake-ups) and end the VM. */
  private readonly signals: VcpuSignals = {
    init: (k) => {
      const v = this.vcpus[k];
      if (!v || v.state === 'stopped') return;
      // INIT (SDM 3A §8.4.1 / §9.1): the vCPU waits for a SIPI; its local APIC is reinitialized.
      v.state = 'wait-sipi';
      v.nmiPending = false;
      v.sipiVector = -1;
      this.platform.lapics[k].initReset();
    },
    sipi: (k, vector) => {
      const v = this.vcpus[k];
      // A SIPI is ignored unless the vCPU waits for one (SDM 3A §8.4.4).
      if (!v || v.state !== 'wait-sipi') return;
      v.sipiVector = vector;
      v.state = 'runnable';
      if (v !== this.running) this.yieldRequested = true;
    },
    nmi: (k) => {
      const v = this.vcpus[k];
      if (!v) return;
      v.nmiPending = true;
      this.wake(v);
    },
    kick: (k) => {
      const v = this.vcpus[k];
      if (v) this.wake(v);
    },
    exit: (code) => this.stopWith({ kind: 'exit', code }),
    shutdown: () => this.stopWith({ kind: 'shutdown' }),
  };

  /** Something may be deliverable to `v`: a halted vCPU that can take it becomes runnable. */
  private wake(v: Vcpu): void {
    if (v.state === 'halted' && (v.nmiPending || (v.haltIf && this.platform.hasInterrupt(v.index))))
      v.state = 'runnable';
    if (v !== this.running && v.state === 'runnable') this.yieldRequested = true;
  }

  /**
   * The vCPU executed HLT (RIP already past it). It stays runnable if an event it can take is
   * pending (injected at the next entry); otherwise it halts. A HLT with IF=0 that nothing can
   * end — no NMI source, no other vCPU that could send an NMI or INIT — stops the VM.
   */
  halt(v: Vcpu): void {
    const h = this.host;
    v.haltIf = (vmread(h, F.GUEST_RFLAGS) & 0x200n) !== 0n;
    v.haltRip = vmread(h, F.GUEST_RIP);
    if (v.nmiPending || (v.haltIf && this.platform.hasInterrupt(v.index))) return;
    v.state = 'halted';
    if (v.haltIf) return;
    const others = this.vcpus.some(
      (o) => o !== v && (o.state === 'runnable' || (o.state === 'halted' && o.haltIf)),
    );
    if (!others && !this.platform.nmiSourceFor(v.index))
      v.stop(
        `the guest halted with interrupts disabled at RIP 0x${v.haltRip.toString(16)}; nothing can wake it`,
      );
  }

  /** Why no vCPU of this VM can run while no device event is pending (for L0's report). */
  idleReport(): string {
    const live = this.vcpus.filter((v) => v.state !== 'stopped');
    if (live.every((v) => v.state === 'wait-sipi')) return 'every vCPU waits for a start-up IPI';
    const v = live.find((x) => x.state === 'halted') ?? live[0];
    const who = this.vcpus.length > 1 ? `vCPU ${v.index}` : 'the guest';
    const why = v.haltIf
      ? 'with interrupts enabled but no interrupt source pending'
      : 'with interrupts disabled';
    return `${who} halted ${why} at RIP 0x${v.haltRip.toString(16)}; nothing can wake it`;
  }

  /** Layout of vCPU k's vmcs01. */
  private layout(v: Vcpu): Vmcs01Layout {
    return { vmcs01: v.vmcs01, msrBitmap: this.msrBitmap, eptp: eptp(this.ept01), vpid: this.vpid(v.index) };
  }

  /** A start-up IPI reached `v` in wait-for-SIPI: a fresh vmcs01 in real mode (called as it is loaded). */
  startAtSipi(v: Vcpu): void {
    const h = this.host;
    const t0 = h.cycles;
    const vector = v.sipiVector;
    v.sipiVector = -1;
    // Under shadow paging the AP starts on the identity shadow root, its real mode emulated by L0.
    const shadow = this.mmu === 'shadow';
    startupVmcs01(h, { ...this.layout(v), shadowCr3: shadow ? bootShadowRoot(this, v) : undefined }, vector);
    platformControls(h, v.virtualApic);
    v.tprThreshold = 0;
    v.windows = 0;
    v.launched = false;
    for (let k = 0; k < 16; k++) v.setSavedReg(k, 0);
    // EDX holds the processor signature after INIT (SDM 3A §9.1.4).
    v.setSavedReg(2, h.cpuid(1, 0)[0]);
    h.charge(L0_COST.vcpuStartup);
    this.stats.l0 += h.cycles - t0;
    // Real mode needs unrestricted guest, which needs EPT: under shadow paging L0 emulates it.
    v.emulating = shadow;
  }

  /** The first end wins (a debug-exit after a stop does not overwrite the report). */
  stopWith(end: VmEnd): void {
    this.end ??= end;
  }

  /** Host-physical address of guest-physical `gpa`, or -1 outside the VM's RAM. */
  gpaToHpa(gpa: number): number {
    return gpa >= 0 && gpa < this.ramBytes ? this.ramHpa + gpa : -1;
  }

  /** Load a multiboot kernel into guest RAM and prepare the boot vCPU to enter it. */
  load(image: Uint8Array, imageName: string, args: string, modules: MultibootModule[]): void {
    // The loader writes a guest-physical image; it is then copied into the VM's host RAM.
    const gmem = new PhysMem(this.ramBytes);
    // ACPI tables as the bare machine's firmware area has them; the MADT lists this VM's vCPUs.
    buildAcpiTables(gmem, { cpus: this.vcpus.length, pmTimerPort: PM_TIMER_PORT });
    const e = loadMultiboot(gmem, image, { imageName, args, modules });
    this.host.mem.writeBytes(this.ramHpa, gmem.u8);
    const bsp = this.vcpus[0];
    setupVmcs01(
      this.host,
      {
        vmcs01: bsp.vmcs01,
        msrBitmap: this.msrBitmap,
        eptp: eptp(this.ept01),
        vpid: this.vpid(0),
        shadowCr3: this.mmu === 'shadow' ? bootShadowRoot(this, bsp) : undefined,
      },
      e,
    );
    platformControls(this.host, bsp.virtualApic);
    if (this.nested) enableNested(bsp, this.nested);
    bsp.setSavedReg(0, e.eax);
    bsp.setSavedReg(3, e.ebx);
  }

  /** VPID of a vCPU: unique per (VM, vCPU), never 0 (that is the host's). */
  vpid(vcpu: number): number {
    return 1 + this.id * 8 + vcpu;
  }

  /**
   * Called before every VM entry of a loaded vCPU: event injection (vmm/inject.ts). While the
   * vCPU runs L2 (--nested), L1's interrupts go to L2 or exit to L1 (nested/interrupts.ts); after
   * such an exit L1 runs and gets its own injection.
   */
  beforeEntry(vcpu: Vcpu): void {
    if (vcpu.level === 'L2' && vcpu.nested) beforeL2Entry(this, vcpu, vcpu.nested);
    if (vcpu.level === 'L1') beforeEntry(this, vcpu);
  }
  /** Called after every VM exit (`r`) or end of slice (undefined), before the exit is handled. */
  afterExit(vcpu: Vcpu, r: ExitRecord | undefined): void {
    if (vcpu.nested) vcpu.nested.l2Ran = vcpu.level === 'L2';
    if (vcpu.level !== 'L1') {
      // An L2 exit L0 handles resumes L2 with the interrupted event; a reflected one overwrites it.
      if (r) reinjectVectored(this.host, r);
      return;
    }
    if (r) afterExit(this, vcpu, r);
    else this.platform.lapics[vcpu.index].tpr = this.host.mem.read8(vcpu.virtualApic + 0x80);
  }
  /** Host cycle of the VM's next device event (timers), or Infinity. */
  nextEvent(): number {
    return this.platform.clock.nextTime();
  }
  /** Run the VM's device events due at host cycle `now`. */
  runDue(now: number): void {
    this.platform.clock.runDue(now);
  }
}
