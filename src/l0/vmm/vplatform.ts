/**
 * A VM's PC: the machine's own device models (src/hw/devices), wired per VM by the same
 * code that wires the bare machine's (hw/pc-ports.ts), on the VM's I/O bus and with the VM's
 * own event queue. Nothing here is shared between VMs, so one VM's devices can neither see
 * nor disturb another's.
 *
 * Time: the event queue's clock is the host CPU's cycle counter. L0 runs every vCPU on
 * physical CPU 0 and the guest TSC is the host TSC (no TSC offset), so every clock the guest
 * can read (TSC, LAPIC timer, PIT, PM timer, RTC) is the same simulated time as on the bare
 * machine; L0's scheduler bounds each slice by the VM's next event (l0.ts, vcpu.ts).
 *
 * Interrupt wiring (as machine.ts): ISA IRQs go to the 8259 pair and to the IOAPIC (IRQ0 to
 * GSI 2, as the MADT override says); the IOAPIC and IPIs reach the local APICs through
 * routeApicMessage; a vCPU takes its local APIC's interrupts first, then the 8259's through
 * LINT0 (ExtINT) — QEMU's order. Injection into the guest is inject.ts's business.
 *
 * MMIO: the xAPIC page of each vCPU's local APIC (at its own IA32_APIC_BASE, only in xAPIC
 * mode, as a CPU sees its own APIC) and the IOAPIC page; any other guest-physical address
 * outside RAM reads all ones and ignores writes, as on a PC.
 */
import {
  EventQueue,
  wirePcPorts,
  IoBus,
  Uart16550,
  PicPair,
  PciHost,
  Pit8254,
  Rtc,
  AcpiPm,
  IoApic,
  Lapic,
  routeApicMessage,
  APIC_MMIO_SIZE,
  IOAPIC_DEFAULT_BASE,
  IOAPIC_MMIO_SIZE,
  IOAPIC_PINS,
  DM_NMI,
} from '../hw.js';

/** How the platform reaches the vCPUs and the VM (implemented by Vm). */
export interface VcpuSignals {
  /** INIT reached vCPU k's local APIC. */
  init(k: number): void;
  /** A start-up IPI with this vector reached vCPU k's local APIC. */
  sipi(k: number, vector: number): void;
  /** An NMI for vCPU k. */
  nmi(k: number): void;
  /** An interrupt may now be deliverable to vCPU k (wake it from HLT). */
  kick(k: number): void;
  /** The guest ended its run: debug-exit, the shutdown port, ACPI S5. */
  exit(code: number): void;
  shutdown(): void;
}

export interface VPlatformConfig {
  ramBytes: number;
  cpus: number;
  /** The host CPU's cycle counter: the VM's time and TSC. */
  now: () => number;
  serial: (b: number) => void;
}

export class VPlatform {
  readonly clock = new EventQueue();
  readonly pic: PicPair;
  readonly pci: PciHost;
  readonly uart: Uart16550;
  readonly pit: Pit8254;
  readonly rtc: Rtc;
  readonly acpiPm: AcpiPm;
  readonly ioapic: IoApic;
  readonly lapics: Lapic[] = [];

  constructor(
    readonly io: IoBus,
    cfg: VPlatformConfig,
    private readonly vcpus: VcpuSignals,
  ) {
    this.clock.nowFn = cfg.now;
    const ports = wirePcPorts(io, this.clock, {
      ramBytes: cfg.ramBytes,
      cpus: cfg.cpus,
      serial: cfg.serial,
      isaIrq: (irq, l) => this.isaIrq(irq, l),
      exit: (v) => vcpus.exit(v),
      shutdown: () => vcpus.shutdown(),
    });
    this.uart = ports.uart;
    this.pic = ports.pic;
    this.pci = ports.pci;
    this.pit = ports.pit;
    this.rtc = ports.rtc;
    this.acpiPm = ports.acpiPm;
    this.ioapic = new IoApic((m) => routeApicMessage(m, this.lapics));
    for (let k = 0; k < cfg.cpus; k++) {
      this.lapics.push(
        new Lapic(k, {
          clock: this.clock,
          sendMessage: (m) => routeApicMessage(m, this.lapics),
          eoiBroadcast: (v) => this.ioapic.eoi(v),
          onInit: () => vcpus.init(k),
          onSipi: (v) => vcpus.sipi(k, v),
          onNmi: () => vcpus.nmi(k),
          kick: () => vcpus.kick(k),
          // Guest TSC = host TSC (no offset).
          readTsc: cfg.now,
        }),
      );
    }
  }

  /** An ISA interrupt line: to the 8259 pair and to the IOAPIC (IRQ0 is wired to GSI 2). */
  isaIrq(irq: number, level: boolean): void {
    this.pic.setIrq(irq, level);
    this.ioapic.setIrq(irq === 0 ? 2 : irq, level);
    if (level) for (let k = 0; k < this.lapics.length; k++) this.vcpus.kick(k);
  }

  /** An external interrupt (not NMI) is pending for vCPU k: its local APIC's, else the 8259's through LINT0. */
  hasInterrupt(k: number): boolean {
    const l = this.lapics[k];
    if (l.pendingVector() >= 0) return true;
    return (l.acceptsPicInterrupts() || l.extIntPending) && this.pic.hasInterrupt();
  }

  /** INTA for vCPU k: the vector to deliver (the local APIC first, then the 8259), or -1. */
  acknowledge(k: number): number {
    const l = this.lapics[k];
    if (l.pendingVector() >= 0) return l.acknowledge();
    if ((l.acceptsPicInterrupts() || l.extIntPending) && this.pic.hasInterrupt()) {
      l.extIntPending = false;
      return this.pic.acknowledge();
    }
    return -1;
  }

  /**
   * Can a device ever raise an NMI for vCPU k (an unmasked LVT or IOAPIC entry in NMI delivery
   * mode)? Used only to decide whether a vCPU halted with IF=0 can be woken.
   */
  nmiSourceFor(k: number): boolean {
    const lvt = this.lapics[k].snapshot().lvt;
    for (const e of lvt) if (!(e & (1 << 16)) && ((e >>> 8) & 7) === DM_NMI) return true;
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const [lo] = this.ioapic.entry(pin);
      if (!(lo & (1 << 16)) && ((lo >>> 8) & 7) === DM_NMI) return true;
    }
    return false;
  }

  /** The MMIO device vCPU k sees at guest-physical `gpa`, with the offset into it. */
  private mmioTarget(k: number, gpa: number): { dev: Lapic | IoApic; off: number } | undefined {
    const l = this.lapics[k];
    if (l.mode === 'xapic' && gpa >= l.apicBase && gpa < l.apicBase + APIC_MMIO_SIZE)
      return { dev: l, off: gpa - l.apicBase };
    if (gpa >= IOAPIC_DEFAULT_BASE && gpa < IOAPIC_DEFAULT_BASE + IOAPIC_MMIO_SIZE)
      return { dev: this.ioapic, off: gpa - IOAPIC_DEFAULT_BASE };
    return undefined;
  }

  /** Name of what vCPU k sees at `gpa` (for reports and statistics). */
  mmioName(k: number, gpa: number): string {
    return this.mmioTarget(k, gpa)?.dev.name ?? 'unclaimed';
  }

  /** A read of 1, 2 or 4 bytes by vCPU k; unclaimed addresses read all ones (as on a PC). */
  mmioRead(k: number, gpa: number, size: 1 | 2 | 4): number {
    const t = this.mmioTarget(k, gpa);
    if (!t) return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    const v = t.dev.mmioRead(t.off, size);
    return size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
  }

  /** A write of 1, 2 or 4 bytes by vCPU k; unclaimed addresses ignore it. */
  mmioWrite(k: number, gpa: number, size: 1 | 2 | 4, value: number): void {
    const t = this.mmioTarget(k, gpa);
    if (t) t.dev.mmioWrite(t.off, size, value);
  }
}
