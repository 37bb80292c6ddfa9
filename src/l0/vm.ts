/**
 * A virtual machine of L0: guest RAM carved from host physical memory and mapped by
 * ept01, a per-VM I/O bus with the machine's device models, its vCPUs, and its
 * accounting. VMs are created and scheduled by L0 (l0.ts).
 */
import {
  IoBus,
  Uart16550,
  DebugExit,
  ShutdownPort,
  FwCfg,
  PicPair,
  PciHost,
  LatchPort,
  PhysMem,
  loadMultiboot,
  type VmxHost,
  type MultibootModule,
} from './hw.js';
import type { HostPages } from './alloc.js';
import { buildEpt01, eptp } from './mmu/ept01.js';
import { setupVmcs01, setupMsrBitmap } from './vmm/vmcs01.js';
import { Vcpu } from './vmm/vcpu.js';
import { Stats } from './stats.js';

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
}

export class Vm {
  readonly io = new IoBus();
  readonly ramBytes: number;
  readonly ramHpa: number;
  readonly name: string;
  readonly vcpus: Vcpu[] = [];
  readonly stats = new Stats();
  /** Root of ept01 and the EPTP vmcs01 uses. */
  readonly ept01: number;
  readonly msrBitmap: number;
  end: VmEnd | undefined;

  constructor(
    readonly host: VmxHost,
    readonly pages: HostPages,
    readonly id: number,
    cfg: VmConfig,
  ) {
    this.name = cfg.name;
    this.ramBytes = cfg.memMiB * 1024 * 1024;
    this.ramHpa = cfg.ramHpa;
    const stop = (end: VmEnd): void => this.stopWith(end);
    this.io.register(0x3f8, 8, new Uart16550(cfg.serial));
    this.io.register(0xf4, 4, new DebugExit((v) => stop({ kind: 'exit', code: v })));
    this.io.register(0x8900, 1, new ShutdownPort(() => stop({ kind: 'shutdown' })));
    this.io.register(0x510, 2, new FwCfg({ ramBytes: this.ramBytes, cpus: cfg.cpus }));
    const pic = new PicPair();
    this.io.register(0x20, 2, pic.master);
    this.io.register(0xa0, 2, pic.slave);
    this.io.register(0x4d0, 2, pic.elcr);
    this.io.register(0xcf8, 8, new PciHost());
    this.io.register(0x80, 1, new LatchPort('post'));
    this.io.register(0x61, 1, new LatchPort('port61'));
    this.ept01 = buildEpt01(pages, this.ramHpa, this.ramBytes);
    this.msrBitmap = pages.alloc();
    setupMsrBitmap(host, this.msrBitmap);
    for (let k = 0; k < cfg.cpus; k++) this.vcpus.push(new Vcpu(this, k, pages.alloc()));
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
    const e = loadMultiboot(gmem, image, { imageName, args, modules });
    this.host.mem.writeBytes(this.ramHpa, gmem.u8);
    const bsp = this.vcpus[0];
    setupVmcs01(
      this.host,
      { vmcs01: bsp.vmcs01, msrBitmap: this.msrBitmap, eptp: eptp(this.ept01), vpid: this.vpid(0) },
      e,
    );
    bsp.setSavedReg(0, e.eax);
    bsp.setSavedReg(3, e.ebx);
  }

  /** VPID of a vCPU: unique per (VM, vCPU), never 0 (that is the host's). */
  vpid(vcpu: number): number {
    return 1 + this.id * 8 + vcpu;
  }

  /** Called before every VM entry of a vCPU (event injection goes here). */
  beforeEntry(_vcpu: Vcpu): void {}
  /** Host cycle of the VM's next device event (timers), or Infinity. */
  nextEvent(): number {
    return Infinity;
  }
  /** Run the VM's device events due at host cycle `now`. */
  runDue(_now: number): void {}
}
