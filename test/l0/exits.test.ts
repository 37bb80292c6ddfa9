/**
 * L0's exit handlers fed synthetic exits (table-driven): each handler is called with an
 * ExitRecord as the hardware would report it, against a real vmcs01, and the guest state
 * it leaves is checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine, VMCS_FIELD as F, EXIT_REASON as R, type ExitRecord } from '../../src/hw/index.js';
import { L0, hostMemMiB, type Vm } from '../../src/l0/index.js';
import { EXIT_HANDLERS } from '../../src/l0/vmm/exits.js';

function vmWithHello(): { vm: Vm; out: number[] } {
  const m = new Machine({ memMiB: hostMemMiB([{ memMiB: 16 }]), serial: () => {} });
  const out: number[] = [];
  const l0 = new L0(m);
  const vm = l0.addVm({ name: 'hello', memMiB: 16, cpus: 1, serial: (b) => out.push(b) });
  vm.load(new Uint8Array(readFileSync('guests/build/hello.elf')), 'hello.elf', '', []);
  l0.switchTo(vm.vcpus[0]);
  return { vm, out };
}
function exit(reason: number, qualification: bigint, instructionLength: number): ExitRecord {
  return {
    kind: 'exit',
    reason,
    rawReason: reason,
    qualification,
    guestLinearAddress: 0n,
    guestPhysicalAddress: 0n,
    instructionLength,
    instructionInfo: 0,
    interruptionInfo: 0,
    interruptionErrorCode: 0,
    idtVectoringInfo: 0,
    idtVectoringErrorCode: 0,
  };
}
const handle = (vm: Vm, e: ExitRecord): void =>
  EXIT_HANDLERS[e.reason as keyof typeof EXIT_HANDLERS].handle({
    vm,
    vcpu: vm.vcpus[0],
    host: vm.host,
    exit: e,
  });

test('CPUID: the hardware leaf with VMX hidden, RIP advanced by the instruction length', () => {
  const { vm } = vmWithHello();
  const h = vm.host;
  h.setReg(0, 1);
  h.setReg(1, 0);
  const rip = h.vmread(F.GUEST_RIP) as bigint;
  handle(vm, exit(R.CPUID, 0n, 2));
  const [, , ecx] = h.cpuid(1, 0);
  assert.equal(ecx & (1 << 5), 1 << 5, 'the hardware has VMX');
  assert.equal(Number(h.getReg(1)) & (1 << 5), 0, 'L1 does not see it');
  assert.equal(h.vmread(F.GUEST_RIP), rip + 2n);
});

const ioCases: [string, bigint, bigint, (vm: Vm, out: number[]) => void][] = [
  // OUT DX, AL to the UART: qualification size-1=0, direction out, port 0x3f8 in bits 31:16.
  ['out al to COM1 reaches the VM serial', 0x3f8n << 16n, 0x41n, (_vm, out) => assert.deepEqual(out, [0x41])],
  // IN AL from fw_cfg data after selecting the signature: 'Q'.
  [
    'in al merges into RAX',
    (0x511n << 16n) | 8n,
    0x1122334455667700n,
    (vm) => assert.equal(vm.host.getReg(0), 0x1122334455667751n),
  ],
  // IN EAX from an unclaimed port: all ones, zero-extended into RAX.
  [
    'in eax zero-extends',
    (0x1234n << 16n) | 8n | 3n,
    0xffffffff00000000n,
    (vm) => assert.equal(vm.host.getReg(0), 0xffffffffn),
  ],
];
for (const [name, q, rax, check] of ioCases) {
  test(`I/O: ${name}`, () => {
    const { vm, out } = vmWithHello();
    vm.io.out(0x510, 2, 0); // fw_cfg: select the signature
    vm.host.setReg(0, rax);
    handle(vm, exit(R.IO_INSTRUCTION, q, 1));
    check(vm, out);
  });
}

test('MOV to CR4 setting VMXE injects #GP(0): VMX does not exist for L1', () => {
  const { vm } = vmWithHello();
  vm.host.setReg(0, 0x2020n);
  handle(vm, exit(R.CR_ACCESS, 4n | (0n << 8n), 3)); // mov cr4, rax
  assert.equal(
    vm.host.vmread(F.VM_ENTRY_INTR_INFO_FIELD),
    BigInt((0x80000000 | (3 << 8) | 13 | (1 << 11)) >>> 0),
  );
});

test('MOV to CR0 turning paging on with EFER.LME activates IA-32e mode', () => {
  const { vm } = vmWithHello();
  const h = vm.host;
  h.vmwrite(F.GUEST_IA32_EFER, 0x100);
  h.setReg(3, 0x80000031n);
  handle(vm, exit(R.CR_ACCESS, 0n | (3n << 8n), 3)); // mov cr0, rbx
  assert.equal(h.vmread(F.GUEST_IA32_EFER), 0x500n);
  assert.equal((h.vmread(F.VM_ENTRY_CONTROLS) as bigint) & (1n << 9n), 1n << 9n);
  assert.equal(h.vmread(F.CR0_READ_SHADOW), 0x80000031n);
});

test('HLT with interrupts disabled stops the VM: nothing can wake it', () => {
  const { vm } = vmWithHello();
  handle(vm, exit(R.HLT, 0n, 1));
  assert.equal(vm.end?.kind, 'stopped');
  assert.match(vm.end?.kind === 'stopped' ? vm.end.detail : '', /interrupts disabled/);
});

test('reading a VMX capability MSR injects #GP', () => {
  const { vm } = vmWithHello();
  vm.host.setReg(1, 0x480);
  handle(vm, exit(R.MSR_READ, 0n, 2));
  assert.equal((vm.host.vmread(F.VM_ENTRY_INTR_INFO_FIELD) as bigint) & 0xffn, 13n);
});
