/**
 * L0's exit handlers for the virtual platform: port and string I/O, MSRs of the local APIC,
 * MMIO (EPT violations outside RAM), HLT, the interrupt/NMI windows, TPR below threshold,
 * external interrupts. exits.ts puts them in the handler table.
 */
import { MSR_APIC_BASE, MSR_TSC_DEADLINE, MSR_X2APIC_FIRST, MSR_X2APIC_LAST } from '../hw.js';
import type { ExitContext, ExitHandler } from './exits.js';
import { completeInstruction, guestMode, injectException } from './guest-state.js';
import { emulateMmio } from './mmio.js';
import { stringIo } from './string-io.js';
import { L0_COST } from '../cost.js';

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/** The instruction that exited is done: RIP past it (its length from the exit). */
function skip(c: ExitContext): void {
  completeInstruction(c.host, c.exit.instructionLength, guestMode(c.host));
}

/** Port I/O (IN/OUT) to the VM's bus, string I/O (INS/OUTS) through string-io.ts. */
export const ioHandler: ExitHandler = {
  name: 'IO_INSTRUCTION',
  handle(c) {
    const q = Number(c.exit.qualification);
    if (q & 16) return stringIo(c);
    const size = ((q & 7) + 1) as 1 | 2 | 4,
      input = (q & 8) !== 0,
      port = Math.floor(q / 65536) & 0xffff;
    c.host.charge(L0_COST.io);
    if (input) {
      const v = c.vm.io.in(port, size) >>> 0;
      const rax = c.host.getReg(0);
      // IN AL/AX merge; IN EAX zero-extends into RAX (SDM Vol. 1 §3.4.1.1).
      const mask = size === 4 ? 0xffffffffffffffffn : BigInt((1 << (size * 8)) - 1);
      c.host.setReg(0, size === 4 ? BigInt(v) : (rax & ~mask) | (BigInt(v) & mask));
    } else {
      c.vm.io.out(port, size, Number(c.host.getReg(0) & 0xffffffffn) | 0);
    }
    skip(c);
  },
};

/** MSRs that belong to the local APIC: IA32_APIC_BASE, IA32_TSC_DEADLINE, the x2APIC range. */
export function isApicMsr(n: number): boolean {
  return n === MSR_APIC_BASE || n === MSR_TSC_DEADLINE || (n >= MSR_X2APIC_FIRST && n <= MSR_X2APIC_LAST);
}

/** RDMSR: the vLAPIC's MSRs; any other MSR that exits goes to `other` (L0's MSR policy, exits.ts). */
export function msrReadHandler(other: ExitHandler): ExitHandler {
  return {
    name: 'MSR_READ',
    handle(c) {
      const n = Number(c.host.getReg(1) & 0xffffffffn);
      if (!isApicMsr(n)) return other.handle(c);
      c.host.charge(L0_COST.msr);
      const v = c.vm.platform.lapics[c.vcpu.index].readMsr(n);
      // Not in x2APIC mode, reserved or write-only: #GP(0), as on the bare machine.
      if (v === undefined) return injectException(c.host, 13, 0);
      c.host.setReg(0, v & 0xffffffffn);
      c.host.setReg(2, v >> 32n);
      skip(c);
    },
  };
}

/** WRMSR: the vLAPIC's MSRs; any other MSR that exits goes to `other`. */
export function msrWriteHandler(other: ExitHandler): ExitHandler {
  return {
    name: 'MSR_WRITE',
    handle(c) {
      const n = Number(c.host.getReg(1) & 0xffffffffn);
      if (!isApicMsr(n)) return other.handle(c);
      c.host.charge(L0_COST.msr);
      const v = ((c.host.getReg(2) & 0xffffffffn) << 32n) | (c.host.getReg(0) & 0xffffffffn);
      const r = c.vm.platform.lapics[c.vcpu.index].writeMsr(n, v);
      if (r === 'ok') return skip(c);
      if (r === 'gp') return injectException(c.host, 13, 0);
      other.handle(c);
    },
  };
}

/**
 * EPT violation: ept01 maps all of the VM's RAM, so this is an access to a guest-physical
 * address outside it — MMIO (the vCPU's xAPIC page, the IOAPIC, or nothing there).
 */
export const eptViolationHandler: ExitHandler = {
  name: 'EPT_VIOLATION',
  handle(c) {
    const gpa = Number(c.exit.guestPhysicalAddress);
    const q = Number(c.exit.qualification);
    if (c.vm.gpaToHpa(gpa) >= 0)
      return c.vcpu.stop(
        `EPT violation inside the VM's RAM at guest-physical ${hex(gpa)} (qualification ${hex(q)})`,
      );
    if (q & 4)
      return c.vcpu.stop(
        `the guest executes code at guest-physical ${hex(gpa)}, outside its RAM (qualification ${hex(q)})`,
      );
    if (c.exit.idtVectoringInfo & 0x80000000)
      return c.vcpu.stop(
        `delivering an event (IDT-vectoring information ${hex(c.exit.idtVectoringInfo >>> 0)}) touched guest-physical ${hex(gpa)}, outside RAM`,
      );
    emulateMmio(c, gpa, (q & 2) !== 0);
  },
};

/** HLT: the vCPU halts until an interrupt (or NMI) can wake it (Vm.halt decides). */
export const hltHandler: ExitHandler = {
  name: 'HLT',
  handle(c) {
    c.host.charge(L0_COST.hlt);
    // Past the HLT; blocking by STI ends there (the `sti; hlt` idiom), so a pending interrupt is taken.
    skip(c);
    c.vm.halt(c.vcpu);
  },
};

/** Interrupt/NMI window open, or the guest lowered CR8 below the TPR threshold: injection follows at entry (inject.ts). */
export const windowHandler = (name: string): ExitHandler => ({
  name,
  handle(c) {
    c.host.charge(L0_COST.window);
  },
});

/**
 * An interrupt of the physical machine arrived while the guest ran (external-interrupt exiting,
 * acknowledged on exit): L0 drives no physical device, so there is nothing to do but resume.
 */
export const externalInterruptHandler: ExitHandler = {
  name: 'EXTERNAL_INTERRUPT',
  handle() {},
};
