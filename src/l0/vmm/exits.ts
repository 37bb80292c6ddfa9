/**
 * L0's exit handlers: one per exit reason L0 expects from its L1 guest, in a typed
 * table. A reason without a handler takes the deliberate "unexpected exit" path in
 * vm.ts (the VM stops with a report; L0 and other VMs go on).
 */
import { VMCS_FIELD as F, EXIT_REASON as R, EXIT_REASON_NAME, type ExitRecord, type VmxHost } from '../hw.js';
import type { Vm } from '../vm.js';
import type { Vcpu } from './vcpu.js';
import { L0_COST } from '../cost.js';
import { skipInsn } from './exit-helpers.js';
import { injectException } from './guest-state.js';
import { crAccess } from './cr-access.js';
import {
  exceptionExit,
  invlpgExit,
  invpcidExit,
  mtfExit,
  withShadowEfer,
  setShadowMmioHandler,
} from './paging-exits.js';
import { vcpuTopology } from './topology.js';
import {
  ioHandler,
  msrReadHandler,
  msrWriteHandler,
  hltHandler,
  windowHandler,
  externalInterruptHandler,
  eptViolationHandler,
} from './platform-exits.js';

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

function stop(c: ExitContext, why: string): void {
  c.vcpu.stop(why);
}

const cpuid: ExitHandler = {
  name: 'CPUID',
  handle(c) {
    const leaf = Number(c.host.getReg(0) & 0xffffffffn),
      sub = Number(c.host.getReg(1) & 0xffffffffn);
    const [a, b, cc, d] = vcpuTopology(leaf, sub, c.vcpu.index, c.vm.vcpus.length, c.host.cpuid(leaf, sub));
    // VMX is hidden from L1 (nesting comes with --nested); everything else is the hardware's.
    const ecx = leaf === 1 ? cc & ~(1 << 5) : cc;
    c.host.setReg(0, a);
    c.host.setReg(3, b);
    c.host.setReg(1, ecx >>> 0);
    c.host.setReg(2, d);
    c.host.charge(L0_COST.cpuid);
    skipInsn(c);
  },
};

const rdmsr: ExitHandler = {
  name: 'MSR_READ',
  handle(c) {
    // Only the VMX capability MSRs exit (MSR bitmap): without --nested they do not exist for L1.
    c.host.charge(L0_COST.msr);
    injectException(c.host, 13, 0);
  },
};
const wrmsr: ExitHandler = {
  name: 'MSR_WRITE',
  handle(c) {
    c.host.charge(L0_COST.msr);
    injectException(c.host, 13, 0);
  },
};

const tripleFault: ExitHandler = {
  name: 'TRIPLE_FAULT',
  handle(c) {
    stop(c, `triple fault in the guest at RIP 0x${(c.host.vmread(F.GUEST_RIP) as bigint).toString(16)}`);
  },
};

const invd: ExitHandler = { name: 'INVD', handle: (c) => skipInsn(c) };
/** VMX instructions: VMX is hidden from L1, so they are #UD (SDM 3C §30.3: CR4.VMXE is 0). */
const vmxInsn: ExitHandler = { name: 'VMX instruction', handle: (c) => injectException(c.host, 6) };

/** The handler table: exit reasons L0 handles for an L1 guest. */
export const EXIT_HANDLERS = {
  [R.CPUID]: cpuid,
  [R.IO_INSTRUCTION]: ioHandler,
  [R.MSR_READ]: withShadowEfer(false, msrReadHandler(rdmsr)),
  [R.MSR_WRITE]: withShadowEfer(true, msrWriteHandler(wrmsr)),
  [R.CR_ACCESS]: crAccess,
  [R.EXCEPTION_NMI]: exceptionExit,
  [R.INVLPG]: invlpgExit,
  [R.INVPCID]: invpcidExit,
  [R.MONITOR_TRAP_FLAG]: mtfExit,
  [R.HLT]: hltHandler,
  [R.INTERRUPT_WINDOW]: windowHandler('INTERRUPT_WINDOW'),
  [R.NMI_WINDOW]: windowHandler('NMI_WINDOW'),
  [R.TPR_BELOW_THRESHOLD]: windowHandler('TPR_BELOW_THRESHOLD'),
  [R.EXTERNAL_INTERRUPT]: externalInterruptHandler,
  [R.TRIPLE_FAULT]: tripleFault,
  [R.EPT_VIOLATION]: eptViolationHandler,
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
// Under shadow paging, guest accesses to non-RAM guest-physical addresses take the EPT-violation path.
setShadowMmioHandler(EXIT_HANDLERS[R.EPT_VIOLATION]);
