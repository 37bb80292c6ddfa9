/**
 * L0's virtual machine: guest RAM carved from host physical memory and mapped by
 * ept01, a per-VM I/O bus with the machine's device models, one vCPU driven through
 * the VT-x host interface, and the exit accounting of DESIGN.md.
 *
 * This is the first slice of the L0 milestone: single-level virtualization with EPT
 * for kernels that need the PC's port devices (UART, debug-exit, fw_cfg, 8259 ports,
 * PCI configuration). Not yet: interrupt injection and the LAPIC/IOAPIC/timers,
 * shadow paging (--mmu shadow), SMP guests, nesting.
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
  UserError,
  VMCS_FIELD as F,
  type Machine,
  type VmxHost,
  type MultibootModule,
} from './hw.js';
import { buildEpt01, EPT_ROOT } from './mmu/ept01.js';
import { setupVmcs01, VMXON_REGION, VMCS01 } from './vmm/vmcs01.js';
import { EXIT_HANDLERS, type ExitContext } from './vmm/exits.js';
import { L0_COST } from './cost.js';

/** Where L0 puts guest RAM in host physical memory (below: L0's own structures). */
export const GUEST_RAM_HPA = 0x1000000;

export type VmEnd =
  | { kind: 'exit'; code: number }
  | { kind: 'shutdown' }
  | { kind: 'stopped'; detail: string }
  | { kind: 'max-cycles' };

export interface ExitCount {
  level: string;
  reason: string;
  handledBy: string;
  count: number;
}

export class Vm {
  readonly io = new IoBus();
  readonly ramBytes: number;
  end: VmEnd | undefined;
  /** Exits by reason name, cycles charged to L0 handlers and to VM transitions. */
  readonly exits = new Map<string, number>();
  l0Cycles = 0;
  switchCycles = 0;
  guestCycles = 0;

  constructor(
    readonly machine: Machine,
    readonly host: VmxHost,
    memMiB: number,
    serial: (b: number) => void,
  ) {
    this.ramBytes = memMiB * 1024 * 1024;
    if (GUEST_RAM_HPA + this.ramBytes > machine.mem.lowEnd)
      throw new UserError(`--mem ${memMiB}: the machine has no room for it`);
    const stop = (end: VmEnd): void => {
      this.end = end;
    };
    this.io.register(0x3f8, 8, new Uart16550(serial));
    this.io.register(0xf4, 4, new DebugExit((v) => stop({ kind: 'exit', code: v })));
    this.io.register(0x8900, 1, new ShutdownPort(() => stop({ kind: 'shutdown' })));
    this.io.register(0x510, 2, new FwCfg({ ramBytes: this.ramBytes, cpus: 1 }));
    const pic = new PicPair();
    this.io.register(0x20, 2, pic.master);
    this.io.register(0xa0, 2, pic.slave);
    this.io.register(0x4d0, 2, pic.elcr);
    this.io.register(0xcf8, 8, new PciHost());
    this.io.register(0x80, 1, new LatchPort('post'));
    this.io.register(0x61, 1, new LatchPort('port61'));
  }

  /** Load a multiboot kernel into guest RAM and prepare the vCPU to enter it. */
  load(image: Uint8Array, imageName: string, args: string, modules: MultibootModule[]): void {
    // The loader writes a guest-physical image; it is then copied into the VM's host RAM.
    const gmem = new PhysMem(this.ramBytes);
    const e = loadMultiboot(gmem, image, { imageName, args, modules });
    this.machine.mem.u8.set(gmem.u8, GUEST_RAM_HPA);
    buildEpt01(this.machine.mem, GUEST_RAM_HPA, this.ramBytes);
    setupVmcs01(this.host, e, EPT_ROOT);
  }

  /** The vCPU run loop: VM entry, exit, dispatch through the handler table, until the VM ends. */
  run(maxCycles: number): VmEnd {
    const h = this.host;
    let launched = false;
    while (!this.end) {
      if (h.cycles >= maxCycles) return { kind: 'max-cycles' };
      const before = h.cycles;
      const r = launched ? h.vmresume(maxCycles - h.cycles) : h.vmlaunch(maxCycles - h.cycles);
      launched = true;
      if (r.kind === 'timeout') return { kind: 'max-cycles' };
      if (r.kind === 'vmfail')
        return { kind: 'stopped', detail: `VM entry failed: ${JSON.stringify(r.status)} (${r.check})` };
      if (r.kind === 'entry-failure')
        return { kind: 'stopped', detail: `VM entry failure, exit reason ${r.reason}: ${r.check}` };
      this.switchCycles += 1000; // hardware VM exit + VM entry (src/hw/cost.ts)
      this.guestCycles += h.cycles - before - 1000;
      const handler = EXIT_HANDLERS[r.reason as keyof typeof EXIT_HANDLERS];
      const name = handler ? handler.name : `reason ${r.reason}`;
      this.exits.set(name, (this.exits.get(name) ?? 0) + 1);
      const ctx: ExitContext = { vm: this, host: h, exit: r };
      const t0 = h.cycles;
      h.charge(L0_COST.dispatch);
      if (!handler) {
        this.end = {
          kind: 'stopped',
          detail: `unexpected VM exit (reason ${r.reason}, qualification 0x${r.qualification.toString(16)})\n${dumpGuest(h)}`,
        };
        break;
      }
      handler.handle(ctx);
      this.l0Cycles += h.cycles - t0;
    }
    return this.end!;
  }

  exitCounts(): ExitCount[] {
    return [...this.exits].map(([reason, count]) => ({ level: 'L1', reason, handledBy: 'L0', count }));
  }
}

/** A register dump of the guest for reports of unexpected exits. */
export function dumpGuest(h: VmxHost): string {
  const names = ['RAX', 'RCX', 'RDX', 'RBX', 'RSP', 'RBP', 'RSI', 'RDI'];
  const regs = names.map(
    (n, k) => `${n}=${(k === 4 ? (h.vmread(F.GUEST_RSP) as bigint) : h.getReg(k)).toString(16)}`,
  );
  return `${regs.join(' ')} RIP=${(h.vmread(F.GUEST_RIP) as bigint).toString(16)} CR0=${(h.vmread(F.GUEST_CR0) as bigint).toString(16)} CR3=${(h.vmread(F.GUEST_CR3) as bigint).toString(16)}`;
}

export { VMXON_REGION, VMCS01 };
