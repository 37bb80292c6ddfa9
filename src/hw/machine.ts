/**
 * The board: RAM, buses, the CPU(s) and the first PC devices, wired as the
 * platform contract of DESIGN.md says (QEMU `pc` compatible for `-kernel` test
 * kernels). The machine runs deterministically: the CPU executes in fixed slices
 * and everything it observes derives from simulated cycles.
 */
import { UserError } from '../common/index.js';
import { IoBus } from './bus.js';
import { PhysMem } from './mmu/physmem.js';
import { Cpu } from './cpu/cpu.js';
import { MachineStop } from './cpu/fault.js';
import { EventQueue } from './events-queue.js';
import { Lapic, routeApicMessage, APIC_MMIO_SIZE } from './devices/lapic.js';
import { IoApic, IOAPIC_MMIO_SIZE } from './devices/ioapic.js';
import type { MmioDevice } from './bus.js';
import { Pit8254 } from './devices/pit8254.js';
import { Rtc } from './devices/rtc.js';
import { AcpiPm, PM_TIMER_PORT } from './devices/pm-timer.js';
import { buildAcpiTables } from './acpi/tables.js';

import { decodeMsi } from './devices/apic-message.js';
import { VmxHost } from './vmx/host.js';
import type { VmxOptions } from './vmx/caps.js';
import { CS, SS, DS, ES, FS, GS, TR, LDTR, IF } from './cpu/regs.js';
import { loadMultiboot, type MultibootModule } from './boot/multiboot.js';
import { Uart16550 } from './devices/uart16550.js';

import { FwCfg } from './devices/fwcfg.js';
import { PicPair } from './devices/pic-pair.js';
import { PciHost } from './devices/pci-host.js';

import { wirePcPorts } from './pc-ports.js';

export interface MachineOptions {
  memMiB: number;
  cpus?: number;
  /** Receives every byte the guest writes to COM1. */
  serial: (byte: number) => void;
  /** VT-x features the CPUs offer (all on by default). */
  vmx?: Partial<VmxOptions>;
}

export type RunResult =
  | { kind: 'exit'; code: number }
  | { kind: 'shutdown' }
  | { kind: 'triple-fault'; detail: string }
  | { kind: 'max-cycles'; cycles: number }
  | { kind: 'halted'; detail: string };

/** Cycles per scheduling round; fixed, so runs are deterministic. */
export const QUANTUM = 100_000;

export class Machine {
  readonly mem: PhysMem;
  readonly io = new IoBus();
  readonly cpus: Cpu[] = [];
  readonly uart: Uart16550;
  readonly pic: PicPair;
  readonly pci: PciHost;
  readonly fwcfg: FwCfg;

  constructor(readonly opts: MachineOptions) {
    const cpus = opts.cpus ?? 1;
    if (!Number.isInteger(opts.memMiB) || opts.memMiB < 2)
      throw new UserError(`--mem must be an integer of at least 2 MiB (got ${opts.memMiB})`);
    if (opts.memMiB > 4096) throw new UserError(`--mem ${opts.memMiB}: at most 4096 MiB is supported`);
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 8)
      throw new UserError(`--cpus must be between 1 and 8 (got ${cpus})`);
    this.mem = new PhysMem(opts.memMiB * 1024 * 1024);
    const io = this.io;
    const ports = wirePcPorts(io, this.clock, {
      ramBytes: this.mem.ramBytes,
      cpus,
      serial: opts.serial,
      isaIrq: (irq, l) => this.isaIrq(irq, l),
      exit: (v) => {
        throw new MachineStop('exit', v, `debug-exit ${v}`);
      },
      shutdown: (why) => {
        throw new MachineStop('shutdown', 0, why);
      },
    });
    this.uart = ports.uart;
    this.fwcfg = ports.fwcfg;
    this.pic = ports.pic;
    this.pci = ports.pci;
    this.pit = ports.pit;
    this.rtc = ports.rtc;
    this.acpiPm = ports.acpiPm;
    buildAcpiTables(this.mem, { cpus, pmTimerPort: PM_TIMER_PORT });
    this.ioapic = new IoApic((m) => routeApicMessage(m, this.lapics));
    this.mem.mmio.register(0xfec00000, IOAPIC_MMIO_SIZE, this.ioapic);
    for (let k = 0; k < cpus; k++) {
      const cpu = new Cpu(k, this.mem, io);
      if (opts.vmx)
        cpu.configureVmx({
          ept: true,
          vpid: true,
          unrestrictedGuest: true,
          vmcsShadowing: true,
          ...opts.vmx,
        });
      cpu.apicId = k;
      cpu.cpuCount = cpus;
      const lapic = new Lapic(k, {
        clock: this.clock,
        sendMessage: (m) => routeApicMessage(m, this.lapics),
        eoiBroadcast: (v) => this.ioapic.eoi(v),
        onInit: () => {
          // INIT is blocked in VMX root operation and causes a VM exit in non-root operation (SDM 3C §23.8, §25.2).
          if (cpu.vmx.on) {
            cpu.initPending = true;
            cpu.irqCheck = true;
            return;
          }
          cpu.init();
          lapic.initReset();
        },
        onSipi: (v) => {
          if (cpu.nonRoot && cpu.waitForSipi) {
            cpu.sipiPending = v;
            cpu.irqCheck = true;
          } else cpu.sipi(v);
        },
        onNmi: () => {
          cpu.nmiPending = true;
          cpu.irqCheck = true;
        },
        kick: () => {
          cpu.irqCheck = true;
        },
        readTsc: () => cpu.readTsc(),
        baseChanged: () => this.mapApic(),
      });
      this.lapics.push(lapic);
      cpu.pendingInit = () => {
        cpu.init();
        lapic.initReset();
      };
      // Interrupt acceptance in QEMU's order: the local APIC first, then the 8259 through LINT0 (ExtINT).
      cpu.pendingInterrupt = () => {
        if (lapic.pendingVector() >= 0) return 1;
        return (lapic.acceptsPicInterrupts() || lapic.extIntPending) && this.pic.hasInterrupt() ? 1 : -1;
      };
      cpu.ackInterrupt = () => {
        if (lapic.pendingVector() >= 0) return lapic.acknowledge();
        if ((lapic.acceptsPicInterrupts() || lapic.extIntPending) && this.pic.hasInterrupt()) {
          lapic.extIntPending = false;
          return this.pic.acknowledge();
        }
        return -1;
      };
      cpu.msrHooks.push({
        read: (_c, n) => lapic.readMsr(n),
        write: (c, n, v) => {
          const r = lapic.writeMsr(n, v);
          if (r === 'gp') c.gp(0);
          return r === 'ok';
        },
      });
      cpu.readCr8 = () => lapic.cr8;
      cpu.onTprWrite = () => {
        lapic.cr8 = cpu.cr8;
      };
      this.cpus.push(cpu);
      // Application processors wait for INIT/SIPI (SDM 3A §8.4).
      if (k > 0) cpu.init();
    }
    this.mapApic();
    this.clock.nowFn = () => (this.running ?? this.cpus[0]).cycles;
  }

  readonly pit: Pit8254;
  readonly rtc: Rtc;
  readonly acpiPm: AcpiPm;
  /** An ISA interrupt line: to the 8259 pair and to the IOAPIC (IRQ0 is wired to GSI 2). */
  isaIrq(irq: number, level: boolean): void {
    this.pic.setIrq(irq, level);
    this.ioapic.setIrq(irq === 0 ? 2 : irq, level);
    if (level) for (const c of this.cpus) c.irqCheck = true;
  }
  /** A PCI MSI write (address/data) delivered to the local APICs. */
  deliverMsi(address: number, data: number): void {
    const m = decodeMsi(address, data);
    if (m) routeApicMessage(m, this.lapics);
  }
  readonly lapics: Lapic[] = [];
  readonly ioapic: IoApic;
  /** The VT-x host interface of CPU `k`, for a hypervisor written in TypeScript. */
  vmxHost(k = 0): VmxHost {
    return new VmxHost(this.cpus[k], this.clock);
  }
  private apicMapped = -1;
  /**
   * The xAPIC page: one MMIO window forwarding to the local APIC of the CPU that is
   * running (every CPU sees its own APIC at the same address, SDM 3A §11.4.1).
   */
  private readonly apicWindow: MmioDevice = {
    name: 'lapic',
    mmioRead: (off, size) => this.currentLapic().mmioRead(off, size),
    mmioWrite: (off, size, v) => this.currentLapic().mmioWrite(off, size, v),
  };
  private currentLapic(): Lapic {
    return this.lapics[(this.running ?? this.cpus[0]).id];
  }
  /** (Re)map the xAPIC window at the BSP's APIC base (relocation through IA32_APIC_BASE). */
  private mapApic(): void {
    const l = this.lapics[0];
    if (!l) return;
    const base = l.mode === 'xapic' ? l.apicBase : -1;
    if (base === this.apicMapped) return;
    if (this.apicMapped >= 0) this.mem.mmio.unregister(this.apicWindow);
    this.apicMapped = -1;
    if (base >= 0 && !this.mem.mmio.find(base) && this.mem.ramOffset(base) < 0) {
      this.mem.mmio.register(base, APIC_MMIO_SIZE, this.apicWindow);
      this.apicMapped = base;
    }
  }

  /** Load a multiboot kernel and put CPU 0 in the state §3.2 of the spec describes. */
  loadMultiboot(image: Uint8Array, imageName: string, args: string, modules: MultibootModule[]): void {
    const e = loadMultiboot(this.mem, image, { imageName, args, modules });
    const cpu = this.cpus[0];
    cpu.cr0 = 0x11; // PE | ET, paging off
    cpu.gdtrBase = e.gdtBase;
    cpu.gdtrLimit = e.gdtLimit;
    cpu.idtrBase = 0;
    cpu.idtrLimit = 0x3ff;
    const code = 0xc09b, // 32-bit, 4 KiB granular, present, DPL 0, execute/read, accessed
      data = 0xc093;
    const set = (s: number, sel: number, attr: number): void => {
      cpu.segSel[s] = sel;
      cpu.segBase[s] = 0;
      cpu.segLimit[s] = 0xffffffff;
      cpu.segAttr[s] = attr;
    };
    set(CS, e.codeSelector, code);
    for (const s of [SS, DS, ES, FS, GS]) set(s, e.dataSelector, data);
    cpu.segSel[TR] = 0;
    cpu.segBase[TR] = 0;
    cpu.segLimit[TR] = 0xffff;
    cpu.segAttr[TR] = 0x8b;
    cpu.segSel[LDTR] = 0;
    cpu.segAttr[LDTR] = 0x10000;
    cpu.setFlags(2);
    cpu.rlo[0] = e.eax;
    cpu.rlo[3] = e.ebx;
    cpu.rip = e.entry >>> 0;
    cpu.updateMode();
    cpu.tlb.flushAll();
  }

  get cycles(): number {
    return this.cpus[0].cycles;
  }
  /** Instructions retired by all CPUs. */
  get instructions(): number {
    return this.cpus.reduce((a, c) => a + c.instret, 0);
  }

  /** Simulated time and timer events (cycles). */
  readonly clock = new EventQueue();
  private running: Cpu | undefined;

  /**
   * Run until the guest ends the run or `maxCycles` simulated cycles pass.
   *
   * Scheduling is deterministic: time advances in rounds of QUANTUM cycles; in
   * each round every CPU runs, in order, until its cycle counter reaches the end of
   * the round. A CPU stops early at the next timer event so that the event fires at
   * (about) its time. A halted CPU lets time pass until something can wake it.
   */
  run(maxCycles: number): RunResult {
    try {
      for (;;) {
        const roundEnd = this.time + QUANTUM;
        for (const cpu of this.cpus) {
          this.running = cpu;
          while (cpu.cycles < roundEnd) {
            const next = Math.min(roundEnd, this.clock.nextTime(), cpu.vmx.preemptDeadline);
            if (this.pic.hasInterrupt()) cpu.irqCheck = true;
            cpu.deadline = Math.max(next, cpu.cycles + 1);
            const n = cpu.run(1e9);
            if (n === 0 && (cpu.halted || cpu.waitForSipi || cpu.shutdownActivity))
              cpu.cycles = Math.max(cpu.cycles, next);
            this.clock.runDue(cpu.cycles);
          }
        }
        this.running = undefined;
        this.time = roundEnd;
        if (this.time >= maxCycles) return { kind: 'max-cycles', cycles: this.cpus[0].cycles };
        const stuck = this.stuck();
        if (stuck) return { kind: 'halted', detail: stuck };
      }
    } catch (e) {
      this.running = undefined;
      if (e instanceof MachineStop) {
        switch (e.reason) {
          case 'exit':
            return { kind: 'exit', code: e.code };
          case 'shutdown':
            return { kind: 'shutdown' };
          case 'triple-fault':
            return { kind: 'triple-fault', detail: e.detail };
          default:
            return { kind: 'halted', detail: e.detail };
        }
      }
      throw e;
    }
  }

  /** Round-end time of the scheduler. */
  private time = 0;

  /** A reason why no CPU can ever run again, or undefined. */
  private stuck(): string | undefined {
    if (this.clock.nextTime() !== Infinity) return undefined;
    for (const cpu of this.cpus) {
      if (cpu.vmx.preemptDeadline !== Infinity) return undefined; // the VMX-preemption timer will fire
      if (cpu.waitForSipi || cpu.shutdownActivity) continue;
      if (!cpu.halted) return undefined;
      if (cpu.nmiPending && !cpu.nmiBlocked) return undefined;
      if (cpu.fl.word & IF && cpu.pendingInterrupt() >= 0) return undefined;
    }
    const c = this.cpus[0];
    if (c.waitForSipi) return 'every CPU waits for a SIPI';
    if (c.shutdownActivity) return 'CPU 0 runs a guest in the shutdown activity state with nothing to end it';
    const why =
      c.fl.word & IF ? 'with interrupts enabled but no interrupt source pending' : 'with interrupts disabled';
    return `CPU 0 halted ${why} at RIP ${c.rip.toString(16)}`;
  }
}
