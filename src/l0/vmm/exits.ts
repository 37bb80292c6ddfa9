/**
 * L0's exit handlers: one per exit reason L0 expects from its L1 guest, in a typed
 * table. A reason without a handler takes the deliberate "unexpected exit" path in
 * vm.ts (the VM stops with a report; L0 and other VMs go on).
 */
import { VMCS_FIELD as F, EXIT_REASON as R, EXIT_REASON_NAME, type ExitRecord, type VmxHost } from '../hw.js';
import type { Vm } from '../vm.js';
import type { Vcpu } from './vcpu.js';
import { L0_COST } from '../cost.js';

export interface ExitContext {
  vm: Vm;
  vcpu: Vcpu;
  host: VmxHost;
  exit: ExitRecord;
}

/** The SDM name of an exit reason (Appendix C), for counters and reports. */
export function exitName(reason: number): string {
  return EXIT_REASON_NAME.get(reason) ?? `reason ${reason}`;
}
export interface ExitHandler {
  readonly name: string;
  handle(ctx: ExitContext): void;
}

const RSP = 4;

/** Advance the guest past the exiting instruction (and drop STI/MOV-SS blocking it ended). */
function skip(c: ExitContext): void {
  const rip = c.host.vmread(F.GUEST_RIP) as bigint;
  c.host.vmwrite(F.GUEST_RIP, rip + BigInt(c.exit.instructionLength));
  const intr = c.host.vmread(F.GUEST_INTERRUPTIBILITY_INFO) as bigint;
  if (intr & 3n) c.host.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, intr & ~3n);
  c.host.charge(3 * L0_COST.vmcsAccess);
}
/** Inject a hardware exception into the guest at the next VM entry (SDM 3C §24.8.3). */
function inject(c: ExitContext, vector: number, errorCode?: number): void {
  const info = 0x80000000 | (3 << 8) | vector | (errorCode !== undefined ? 1 << 11 : 0);
  c.host.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
  if (errorCode !== undefined) c.host.vmwrite(F.VM_ENTRY_EXCEPTION_ERROR_CODE, errorCode);
}
function gpr(c: ExitContext, r: number): bigint {
  return r === RSP ? (c.host.vmread(F.GUEST_RSP) as bigint) : c.host.getReg(r);
}
function stop(c: ExitContext, why: string): void {
  c.vcpu.stop(why);
}

const cpuid: ExitHandler = {
  name: 'CPUID',
  handle(c) {
    const leaf = Number(c.host.getReg(0) & 0xffffffffn),
      sub = Number(c.host.getReg(1) & 0xffffffffn);
    const [a, b, cc, d] = c.host.cpuid(leaf, sub);
    // VMX is hidden from L1 (nesting comes with --nested); everything else is the hardware's.
    const ecx = leaf === 1 ? cc & ~(1 << 5) : cc;
    c.host.setReg(0, a);
    c.host.setReg(3, b);
    c.host.setReg(1, ecx >>> 0);
    c.host.setReg(2, d);
    c.host.charge(L0_COST.cpuid);
    skip(c);
  },
};

const io: ExitHandler = {
  name: 'IO_INSTRUCTION',
  handle(c) {
    const q = Number(c.exit.qualification);
    const size = ((q & 7) + 1) as 1 | 2 | 4,
      input = (q & 8) !== 0,
      string = (q & 16) !== 0,
      port = Math.floor(q / 65536) & 0xffff;
    if (string) return stop(c, `string I/O (INS/OUTS) on port 0x${port.toString(16)} is not emulated yet`);
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

const rdmsr: ExitHandler = {
  name: 'MSR_READ',
  handle(c) {
    // Only the VMX capability MSRs exit (MSR bitmap): without --nested they do not exist for L1.
    c.host.charge(L0_COST.msr);
    inject(c, 13, 0);
  },
};
const wrmsr: ExitHandler = {
  name: 'MSR_WRITE',
  handle(c) {
    c.host.charge(L0_COST.msr);
    inject(c, 13, 0);
  },
};

const crAccess: ExitHandler = {
  name: 'CR_ACCESS',
  handle(c) {
    const q = Number(c.exit.qualification);
    const cr = q & 15,
      type = (q >> 4) & 3,
      reg = (q >> 8) & 15;
    c.host.charge(L0_COST.cr);
    if (type !== 0 || (cr !== 0 && cr !== 4))
      return stop(c, `unexpected CR access exit (qualification 0x${q.toString(16)})`);
    const value = gpr(c, reg);
    if (cr === 4) {
      // The guest tried to set CR4.VMXE: without VMX in CPUID that bit is reserved (#GP).
      if (value & 0x2000n) return inject(c, 13, 0);
      c.host.vmwrite(F.CR4_READ_SHADOW, value);
      c.host.vmwrite(F.GUEST_CR4, value | 0x2000n);
      return skip(c);
    }
    // CR0: NE is host-owned; keep it set, show the guest its own value.
    const old = c.host.vmread(F.GUEST_CR0) as bigint;
    c.host.vmwrite(F.CR0_READ_SHADOW, value);
    c.host.vmwrite(F.GUEST_CR0, value | 0x20n);
    // Paging turned on or off with EFER.LME: IA-32e mode follows (SDM 3A §9.8.5).
    const efer = c.host.vmread(F.GUEST_IA32_EFER) as bigint;
    const entry = c.host.vmread(F.VM_ENTRY_CONTROLS) as bigint;
    const pgOn = (value & 0x80000000n) !== 0n && (old & 0x80000000n) === 0n;
    const pgOff = (value & 0x80000000n) === 0n && (old & 0x80000000n) !== 0n;
    if (pgOn && efer & 0x100n) {
      c.host.vmwrite(F.GUEST_IA32_EFER, efer | 0x400n);
      c.host.vmwrite(F.VM_ENTRY_CONTROLS, entry | (1n << 9n));
    } else if (pgOff) {
      c.host.vmwrite(F.GUEST_IA32_EFER, efer & ~0x400n);
      c.host.vmwrite(F.VM_ENTRY_CONTROLS, entry & ~(1n << 9n));
    }
    skip(c);
  },
};

const hlt: ExitHandler = {
  name: 'HLT',
  handle(c) {
    const rflags = c.host.vmread(F.GUEST_RFLAGS) as bigint;
    // No virtual interrupt sources yet: nothing can ever wake the guest.
    stop(
      c,
      rflags & 0x200n
        ? 'the guest halted waiting for an interrupt (interrupt injection is not implemented yet)'
        : 'the guest halted with interrupts disabled',
    );
  },
};

const tripleFault: ExitHandler = {
  name: 'TRIPLE_FAULT',
  handle(c) {
    stop(c, `triple fault in the guest at RIP 0x${(c.host.vmread(F.GUEST_RIP) as bigint).toString(16)}`);
  },
};

const eptViolation: ExitHandler = {
  name: 'EPT_VIOLATION',
  handle(c) {
    stop(
      c,
      `access to guest-physical 0x${c.exit.guestPhysicalAddress.toString(16)} outside the VM's RAM (MMIO devices are not emulated yet), qualification 0x${c.exit.qualification.toString(16)}`,
    );
  },
};

const invd: ExitHandler = { name: 'INVD', handle: (c) => skip(c) };
/** VMX instructions: VMX is hidden from L1, so they are #UD (SDM 3C §30.3: CR4.VMXE is 0). */
const vmxInsn: ExitHandler = { name: 'VMX instruction', handle: (c) => inject(c, 6) };

/** The handler table: exit reasons L0 handles for an L1 guest. */
export const EXIT_HANDLERS = {
  [R.CPUID]: cpuid,
  [R.IO_INSTRUCTION]: io,
  [R.MSR_READ]: rdmsr,
  [R.MSR_WRITE]: wrmsr,
  [R.CR_ACCESS]: crAccess,
  [R.HLT]: hlt,
  [R.TRIPLE_FAULT]: tripleFault,
  [R.EPT_VIOLATION]: eptViolation,
  [R.INVD]: invd,
  [R.VMCALL]: vmxInsn,
  [R.VMCLEAR]: vmxInsn,
  [R.VMLAUNCH]: vmxInsn,
  [R.VMPTRLD]: vmxInsn,
  [R.VMPTRST]: vmxInsn,
  [R.VMREAD]: vmxInsn,
  [R.VMRESUME]: vmxInsn,
  [R.VMWRITE]: vmxInsn,
  [R.VMXOFF]: vmxInsn,
  [R.VMXON]: vmxInsn,
} satisfies Partial<Record<number, ExitHandler>>;
