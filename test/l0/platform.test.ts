/**
 * L0's virtual platform: interrupt controllers and timers per VM, event injection, MMIO and
 * string-I/O emulation, the vLAPIC's MSRs, SMP start-up. End to end (the platform kernel with
 * two vCPUs prints what it prints on the bare machine), and handler by handler with synthetic
 * exits against a real vmcs01 (the table-driven style of exits.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine, VMCS_FIELD as F, EXIT_REASON as R, type ExitRecord } from '../../src/hw/index.js';
import { L0, hostMemMiB, type Vm } from '../../src/l0/index.js';
import { EXIT_HANDLERS } from '../../src/l0/vmm/exits.js';
import { decodeMmio, type CpuMode, type MmioInsn } from '../../src/l0/vmm/mmio-decode.js';
import { STRING_IO_BATCH } from '../../src/l0/vmm/string-io.js';
import { runKernel } from '../support/run-kernel.js';

// ---------------------------------------------------------------------------------------------
// End to end

const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));

test('platform-tests.elf --cpus 2 under --l0 prints the same results as bare (23 passed)', () => {
  const bare = runKernel('platform-tests', ['--cpus', '2']);
  const l1 = runKernel('platform-tests', ['--cpus', '2', '--l0']);
  assert.equal(l1.status, 1, l1.stderr);
  assert.deepEqual(results(l1.stdout), results(bare.stdout));
  assert.ok(l1.stdout.includes('SUMMARY: 23 passed, 0 failed'), l1.stdout);
  // The AP comes up in long mode with its own APIC ID, as on the bare machine.
  assert.match(l1.stdout, /it sees LAPIC ID 1, CPUID ID 1, EFER 0x501, APIC_BASE 0xfee00800, CR0 0x80010011/);
});

test('bench-timer.elf under --l0: periodic LAPIC timer interrupts at 10 kHz', () => {
  const r = runKernel('bench-timer', ['--l0', '--append', 'ms=20']);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  const m = /bench-timer: ms=20 ticks=(\d+)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  const ticks = Number(m[1]);
  assert.ok(ticks >= 198 && ticks <= 200, `ticks ${ticks}`);
});

test('an SMP L1 run is deterministic: same output, cycles and exits twice', () => {
  const dir = mkdtempSync(join(tmpdir(), 'turtles-smp-'));
  const runs = [0, 1].map((k) => {
    const f = join(dir, `s${k}.json`);
    const r = runKernel('bench-smp', ['--l0', '--cpus', '2', '--append', 'iters=100000', '--stats', f]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /smp done/);
    const s = JSON.parse(readFileSync(f, 'utf8'));
    return { out: r.stdout, cycles: s.cycles, instructions: s.instructions, exits: s.exits };
  });
  assert.deepEqual(runs[0], runs[1]);
});

test('--l0 --cpus 2 on a kernel that never starts the AP: the AP stays in wait-for-SIPI', () => {
  const r = runKernel('hello', ['--l0', '--cpus', '2']);
  assert.equal(r.stdout, 'hello from turtles\n');
  assert.equal(r.status, 1, r.stderr);
});

// ---------------------------------------------------------------------------------------------
// Synthetic exits

function vmWithHello(cpus = 1): { vm: Vm; l0: L0; out: number[] } {
  const m = new Machine({ memMiB: hostMemMiB([{ memMiB: 16 }]), serial: () => {} });
  const out: number[] = [];
  const l0 = new L0(m);
  const vm = l0.addVm({ name: 'hello', memMiB: 16, cpus, serial: (b) => out.push(b) });
  vm.load(new Uint8Array(readFileSync('guests/build/hello.elf')), 'hello.elf', '', []);
  l0.switchTo(vm.vcpus[0]);
  return { vm, l0, out };
}
function exit(reason: number, fields: Partial<ExitRecord> = {}): ExitRecord {
  return {
    kind: 'exit',
    reason,
    rawReason: reason,
    qualification: 0n,
    guestLinearAddress: 0n,
    guestPhysicalAddress: 0n,
    instructionLength: 0,
    instructionInfo: 0,
    interruptionInfo: 0,
    interruptionErrorCode: 0,
    idtVectoringInfo: 0,
    idtVectoringErrorCode: 0,
    ...fields,
  };
}
const handle = (vm: Vm, e: ExitRecord, k = 0): void =>
  EXIT_HANDLERS[e.reason as keyof typeof EXIT_HANDLERS].handle({
    vm,
    vcpu: vm.vcpus[k],
    host: vm.host,
    exit: e,
  });
const rd = (vm: Vm, enc: number): bigint => vm.host.vmread(enc) as bigint;
const stopDetail = (vm: Vm): string => (vm.end?.kind === 'stopped' ? vm.end.detail : '');
/** Write guest-physical memory of a VM. */
const poke = (vm: Vm, gpa: number, bytes: number[]): void =>
  vm.host.mem.writeBytes(vm.gpaToHpa(gpa), Uint8Array.from(bytes));
const peek = (vm: Vm, gpa: number, n: number): number[] => [...vm.host.mem.readBytes(vm.gpaToHpa(gpa), n)];
/** Put an instruction at the guest's RIP (32-bit protected mode, paging off: linear = physical). */
const atRip = (vm: Vm, bytes: number[]): bigint => {
  const rip = rd(vm, F.GUEST_RIP);
  poke(vm, Number(rip), bytes);
  return rip;
};

/** The guest state a case starts from, and what it checks afterwards. */
interface MmioCase {
  name: string;
  insn: number[];
  gpa: number;
  write: boolean;
  regs?: [number, bigint][];
  /** Register RAX…R15 → expected value after the exit. */
  want?: [number, bigint][];
  /** The VM stops with a report matching this. */
  stops?: RegExp;
}
const mmioCases: MmioCase[] = [
  {
    name: 'mov eax, [edx]: the LAPIC version register',
    insn: [0x8b, 0x02],
    gpa: 0xfee00030,
    write: false,
    want: [[0, 0x50014n]],
  },
  {
    name: 'mov [eax], edi then mov eax, [eax+0x10]: IOAPIC IOREGSEL/IOWIN (version)',
    insn: [0x89, 0x38],
    gpa: 0xfec00000,
    write: true,
    regs: [[7, 1n]],
  },
  {
    name: 'unclaimed guest-physical address reads all ones',
    insn: [0x8b, 0x02],
    gpa: 0xe0000000,
    write: false,
    want: [[0, 0xffffffffn]],
  },
  {
    name: 'movl $imm32 to an unclaimed address is ignored',
    insn: [0xc7, 0x00, 1, 2, 3, 4],
    gpa: 0xe0000000,
    write: true,
  },
  {
    name: '16-bit load merges into AX',
    insn: [0x66, 0x8b, 0x02],
    gpa: 0xe0000000,
    write: false,
    regs: [[0, 0x12345678n]],
    want: [[0, 0x1234ffffn]],
  },
  {
    name: 'movzx eax, byte',
    insn: [0x0f, 0xb6, 0x02],
    gpa: 0xe0000000,
    write: false,
    regs: [[0, 5n]],
    want: [[0, 0xffn]],
  },
  {
    name: 'movsx eax, byte',
    insn: [0x0f, 0xbe, 0x02],
    gpa: 0xe0000000,
    write: false,
    want: [[0, 0xffffffffn]],
  },
  {
    name: 'mov ah, [edx] (high byte register)',
    insn: [0x8a, 0x22],
    gpa: 0xe0000000,
    write: false,
    regs: [[0, 0n]],
    want: [[0, 0xff00n]],
  },
  {
    name: 'inc dword [edx] is not emulated: the VM stops naming it',
    insn: [0xff, 0x02],
    gpa: 0xfee00030,
    write: true,
    stops: /ff 02/,
  },
  {
    name: 'a load the exit calls a write: the VM stops',
    insn: [0x8b, 0x02],
    gpa: 0xfee00030,
    write: true,
    stops: /exit says otherwise/,
  },
];
for (const c of mmioCases) {
  test(`MMIO (EPT violation): ${c.name}`, () => {
    const { vm } = vmWithHello();
    const h = vm.host;
    for (const [r, v] of c.regs ?? []) h.setReg(r, v);
    const rip = atRip(vm, c.insn);
    handle(
      vm,
      exit(R.EPT_VIOLATION, { qualification: c.write ? 2n : 1n, guestPhysicalAddress: BigInt(c.gpa) }),
    );
    if (c.stops) {
      assert.equal(vm.end?.kind, 'stopped');
      assert.match(stopDetail(vm), c.stops);
      return;
    }
    assert.equal(vm.end, undefined, stopDetail(vm));
    assert.equal(rd(vm, F.GUEST_RIP), rip + BigInt(c.insn.length));
    for (const [r, v] of c.want ?? []) assert.equal(h.getReg(r), v, `register ${r}`);
  });
}

test('MMIO: IOAPIC register select then window read returns the version (0x170020)', () => {
  const { vm } = vmWithHello();
  vm.host.setReg(7, 1n);
  atRip(vm, [0x89, 0x38]);
  handle(vm, exit(R.EPT_VIOLATION, { qualification: 2n, guestPhysicalAddress: 0xfec00000n }));
  atRip(vm, [0x8b, 0x40, 0x10]);
  handle(vm, exit(R.EPT_VIOLATION, { qualification: 1n, guestPhysicalAddress: 0xfec00010n }));
  assert.equal(vm.host.getReg(0), 0x170020n);
});

const LONG: CpuMode = { long: true, default32: false };
const PM32: CpuMode = { long: false, default32: true };
const REAL: CpuMode = { long: false, default32: false };
const decodeCases: [string, number[], CpuMode, Partial<MmioInsn> | RegExp][] = [
  ['mov rax, [rdx]', [0x48, 0x8b, 0x02], LONG, { length: 3, kind: 'load', size: 8, reg: 0 }],
  [
    'mov [rax+0x10], r8d (REX.R, disp8)',
    [0x44, 0x89, 0x40, 0x10],
    LONG,
    { length: 4, kind: 'store', size: 4, reg: 8 },
  ],
  [
    'mov [disp32], ah (SIB, no base)',
    [0x88, 0x24, 0x25, 0, 0, 0xe0, 0xfe],
    LONG,
    { length: 7, size: 1, reg: 0, high8: true },
  ],
  [
    'mov [disp32], spl (any REX: no high byte)',
    [0x40, 0x88, 0x24, 0x25, 0, 0, 0xe0, 0xfe],
    LONG,
    { length: 8, reg: 4, high8: false },
  ],
  [
    'movl $imm32, [rip+disp32]',
    [0xc7, 0x05, 1, 2, 3, 4, 0x78, 0x56, 0x34, 0x12],
    LONG,
    { length: 10, kind: 'store', size: 4, imm: 0x12345678n },
  ],
  [
    'movq $-1 (imm32 sign-extended)',
    [0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff],
    LONG,
    { length: 7, size: 8, imm: 0xffffffffffffffffn },
  ],
  [
    'movw $imm16 (operand-size prefix)',
    [0x66, 0xc7, 0x00, 0x34, 0x12],
    LONG,
    { length: 5, size: 2, imm: 0x1234n },
  ],
  [
    'mov eax, moffs64',
    [0xa1, 0x30, 0, 0xe0, 0xfe, 0, 0, 0, 0],
    LONG,
    { length: 9, kind: 'load', size: 4, reg: 0 },
  ],
  [
    'movzx ecx, word [rax+4]',
    [0x0f, 0xb7, 0x48, 0x04],
    LONG,
    { length: 4, size: 2, reg: 1, extend: 'zero', destSize: 4 },
  ],
  [
    'movsx rdx, byte [rax] (REX.W)',
    [0x48, 0x0f, 0xbe, 0x10],
    LONG,
    { length: 4, size: 1, reg: 2, extend: 'sign', destSize: 8 },
  ],
  ['fs: mov eax, [rbx+rcx*4+disp32]', [0x64, 0x8b, 0x84, 0x8b, 0, 0, 0, 0], LONG, { length: 8, size: 4 }],
  ['32-bit: mov eax, [disp32]', [0x8b, 0x05, 0x30, 0, 0xe0, 0xfe], PM32, { length: 6, size: 4 }],
  ['32-bit: mov eax, moffs32', [0xa1, 0x30, 0, 0xe0, 0xfe], PM32, { length: 5, size: 4 }],
  ['32-bit: 0x48 is DEC, not REX', [0x48], PM32, /opcode 48/],
  ['real mode: mov ax, [bx+0x10]', [0x8b, 0x47, 0x10], REAL, { length: 3, size: 2 }],
  ['real mode: mov ax, [disp16]', [0x8b, 0x06, 0x34, 0x12], REAL, { length: 4, size: 2 }],
  ['real mode: mov eax, [bx] (66)', [0x66, 0x8b, 0x07], REAL, { length: 3, size: 4 }],
  ['real mode: mov ax, [ebx+disp32] (67)', [0x67, 0x8b, 0x83, 1, 2, 3, 4], REAL, { length: 7, size: 2 }],
  ['a register operand is not memory', [0x8b, 0xc0], LONG, /register operand/],
  ['add [rax], eax is not a MOV', [0x01, 0x00], LONG, /opcode 01/],
  ['mov r/m, imm with /1 is undefined', [0xc7, 0x08, 0, 0, 0, 0], LONG, /c7 \/1/],
  ['truncated instruction', [0x8b], LONG, /could not fetch/],
];
for (const [name, bytes, mode, want] of decodeCases) {
  test(`MMIO decode: ${name}`, () => {
    const d = decodeMmio(Uint8Array.from(bytes), mode);
    if (want instanceof RegExp) {
      assert.ok(
        'error' in d,
        JSON.stringify(d, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
      );
      assert.match(d.error, want);
      return;
    }
    assert.ok(!('error' in d), 'error' in d ? d.error : '');
    for (const [k, v] of Object.entries(want))
      assert.equal((d as unknown as Record<string, unknown>)[k], v, k);
  });
}

/** Make vector `v` pending in vCPU k's vLAPIC: enable it (SVR) and send a fixed self-IPI. */
function selfIpi(vm: Vm, v: number, k = 0): void {
  const l = vm.platform.lapics[k];
  l.mmioWrite(0xf0, 4, 0x1ff);
  l.mmioWrite(0x300, 4, (1 << 18) | v);
}
const ctl = (vm: Vm): number => Number(rd(vm, F.CPU_BASED_VM_EXEC_CONTROL));
const INTR_WINDOW = 1 << 2,
  NMI_WINDOW = 1 << 22;

test('injection: IF=0 arms interrupt-window exiting; IF=1 injects the vLAPIC vector (IRR to ISR)', () => {
  const { vm } = vmWithHello();
  const v = vm.vcpus[0];
  selfIpi(vm, 0x45);
  vm.beforeEntry(v);
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD) & 0x80000000n, 0n, 'nothing injected with IF=0');
  assert.ok(ctl(vm) & INTR_WINDOW, 'interrupt window armed');
  vm.host.vmwrite(F.GUEST_RFLAGS, 0x202);
  handle(vm, exit(R.INTERRUPT_WINDOW));
  vm.beforeEntry(v);
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000045n);
  assert.equal(ctl(vm) & INTR_WINDOW, 0, 'window disarmed');
  assert.equal(vm.platform.lapics[0].pendingVector(), -1);
  assert.equal(vm.platform.lapics[0].mmioRead(0x100 + 0x20, 4), 1 << 5, 'vector 0x45 in service');
});

test('injection: blocking by STI or MOV SS defers the interrupt to the window', () => {
  for (const block of [1, 2]) {
    const { vm } = vmWithHello();
    selfIpi(vm, 0x45);
    vm.host.vmwrite(F.GUEST_RFLAGS, 0x202);
    vm.host.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, block);
    vm.beforeEntry(vm.vcpus[0]);
    assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD) & 0x80000000n, 0n);
    assert.ok(ctl(vm) & INTR_WINDOW);
  }
});

test('injection: an event already being injected (an exception) is not overwritten', () => {
  const { vm } = vmWithHello();
  selfIpi(vm, 0x45);
  vm.host.vmwrite(F.GUEST_RFLAGS, 0x202);
  vm.host.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, 0x80000b0d);
  vm.beforeEntry(vm.vcpus[0]);
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000b0dn);
  assert.ok(ctl(vm) & INTR_WINDOW);
  assert.equal(vm.platform.lapics[0].pendingVector(), 0x45, 'still pending');
});

test('injection: the 8259 through LINT0 (ExtINT) when the vLAPIC has nothing', () => {
  const { vm } = vmWithHello();
  const io = vm.io;
  // ICW1-4: master at vector 0x20, slave 0x28; unmask IRQ0 only.
  for (const [p, v] of [
    [0x20, 0x11],
    [0x21, 0x20],
    [0x21, 4],
    [0x21, 1],
    [0xa0, 0x11],
    [0xa1, 0x28],
    [0xa1, 2],
    [0xa1, 1],
    [0x21, 0xfe],
    [0xa1, 0xff],
  ])
    io.out(p, 1, v);
  vm.platform.isaIrq(0, true);
  vm.host.vmwrite(F.GUEST_RFLAGS, 0x202);
  vm.beforeEntry(vm.vcpus[0]);
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000020n);
});

test('injection: NMI waits for the NMI window while NMIs are blocked, then goes first', () => {
  const { vm } = vmWithHello();
  const v = vm.vcpus[0];
  v.nmiPending = true;
  vm.host.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 8);
  vm.beforeEntry(v);
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD) & 0x80000000n, 0n);
  assert.ok(ctl(vm) & NMI_WINDOW);
  vm.host.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 0);
  handle(vm, exit(R.NMI_WINDOW));
  selfIpi(vm, 0x45);
  vm.host.vmwrite(F.GUEST_RFLAGS, 0x202);
  vm.beforeEntry(v);
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000202n, 'NMI (type 2, vector 2)');
  assert.equal(v.nmiPending, false);
  assert.equal(ctl(vm) & NMI_WINDOW, 0);
  assert.ok(ctl(vm) & INTR_WINDOW, 'the interrupt waits for its window');
});

test('an event whose delivery an exit interrupted is re-injected (IDT-vectoring information)', () => {
  const { vm } = vmWithHello();
  vm.afterExit(
    vm.vcpus[0],
    exit(R.EPT_VIOLATION, {
      idtVectoringInfo: 0x80000b0e | 0,
      idtVectoringErrorCode: 2,
      instructionLength: 3,
    }),
  );
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000b0en);
  assert.equal(rd(vm, F.VM_ENTRY_EXCEPTION_ERROR_CODE), 2n);
  // A software interrupt (INT n, type 4) is re-injected with its instruction length.
  vm.afterExit(
    vm.vcpus[0],
    exit(R.EPT_VIOLATION, { idtVectoringInfo: 0x80000480 | 0, instructionLength: 2 }),
  );
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000480n);
  assert.equal(rd(vm, F.VM_ENTRY_INSTRUCTION_LEN), 2n);
});

test('TPR shadow: VTPR mirrors the vLAPIC TPR; a held-back interrupt sets the TPR threshold; MOV to CR8 reaches the vLAPIC', () => {
  const { vm } = vmWithHello();
  const v = vm.vcpus[0];
  const l = vm.platform.lapics[0];
  l.tpr = 0x50;
  selfIpi(vm, 0x45);
  vm.host.vmwrite(F.GUEST_RFLAGS, 0x202);
  vm.beforeEntry(v);
  assert.equal(vm.host.mem.read8(v.virtualApic + 0x80), 0x50);
  assert.equal(rd(vm, F.TPR_THRESHOLD), 4n, 'class of vector 0x45');
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD) & 0x80000000n, 0n);
  // The guest writes CR8 = 3 (VTPR = 0x30) without exiting; the next exit carries it back.
  vm.host.mem.write32(v.virtualApic + 0x80, 0x30);
  vm.afterExit(v, exit(R.TPR_BELOW_THRESHOLD));
  handle(vm, exit(R.TPR_BELOW_THRESHOLD));
  assert.equal(l.tpr, 0x30);
  vm.beforeEntry(v);
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000045n);
  assert.equal(rd(vm, F.TPR_THRESHOLD), 0n);
});

test('HLT with IF=1 halts until an interrupt arrives; with one pending the vCPU stays runnable', () => {
  const { vm } = vmWithHello();
  const v = vm.vcpus[0];
  vm.host.vmwrite(F.GUEST_RFLAGS, 0x202);
  const rip = rd(vm, F.GUEST_RIP);
  handle(vm, exit(R.HLT, { instructionLength: 1 }));
  assert.equal(rd(vm, F.GUEST_RIP), rip + 1n);
  assert.equal(v.state, 'halted');
  selfIpi(vm, 0x45);
  assert.equal(v.state, 'runnable', 'woken by the interrupt');
  handle(vm, exit(R.HLT, { instructionLength: 1 }));
  assert.equal(v.state, 'runnable', 'an interrupt is pending: HLT does not halt');
  assert.equal(vm.end, undefined);
});

test('HLT right after STI: the STI shadow ends with the HLT', () => {
  const { vm } = vmWithHello();
  vm.host.vmwrite(F.GUEST_RFLAGS, 0x202);
  vm.host.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 1);
  selfIpi(vm, 0x45);
  handle(vm, exit(R.HLT, { instructionLength: 1 }));
  assert.equal(rd(vm, F.GUEST_INTERRUPTIBILITY_INFO) & 3n, 0n);
  vm.beforeEntry(vm.vcpus[0]);
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000045n);
});

/** RDMSR/WRMSR through the handlers: ECX, EDX:EAX. */
function rdmsr(vm: Vm, n: number): bigint | 'gp' {
  vm.host.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, 0);
  vm.host.setReg(1, n);
  handle(vm, exit(R.MSR_READ, { instructionLength: 2 }));
  if (rd(vm, F.VM_ENTRY_INTR_INFO_FIELD) & 0x80000000n) return 'gp';
  return (vm.host.getReg(2) << 32n) | vm.host.getReg(0);
}
function wrmsr(vm: Vm, n: number, v: bigint): 'ok' | 'gp' {
  vm.host.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, 0);
  vm.host.setReg(1, n);
  vm.host.setReg(0, v & 0xffffffffn);
  vm.host.setReg(2, v >> 32n);
  handle(vm, exit(R.MSR_WRITE, { instructionLength: 2 }));
  return rd(vm, F.VM_ENTRY_INTR_INFO_FIELD) & 0x80000000n ? 'gp' : 'ok';
}

test('the vLAPIC MSRs: IA32_APIC_BASE, x2APIC registers (#GP in xAPIC mode), TSC deadline', () => {
  const { vm } = vmWithHello();
  assert.equal(rdmsr(vm, 0x1b), 0xfee00900n, 'BSP, enabled, at 0xFEE00000');
  assert.equal(rdmsr(vm, 0x803), 'gp', 'x2APIC version register in xAPIC mode');
  assert.equal(wrmsr(vm, 0x1b, 0xfee00d00n), 'ok', 'enter x2APIC mode');
  assert.equal(rdmsr(vm, 0x803), 0x50014n);
  assert.equal(rdmsr(vm, 0x802), 0n, 'x2APIC ID of vCPU 0');
  assert.equal(wrmsr(vm, 0x1b, 0xfee00900n), 'gp', 'x2APIC to xAPIC directly');
  assert.equal(wrmsr(vm, 0x808, 0x20n), 'ok');
  assert.equal(vm.platform.lapics[0].tpr, 0x20, 'x2APIC TPR is the vLAPIC TPR');
  // TSC deadline in TSC-deadline mode: the VM's event queue gets the timer.
  assert.equal(wrmsr(vm, 0x80f, 0x1ffn), 'ok', 'SVR: enable');
  assert.equal(wrmsr(vm, 0x832, BigInt((2 << 17) | 0x40)), 'ok', 'LVT timer: TSC deadline, vector 0x40');
  const deadline = vm.host.cycles + 100_000;
  assert.equal(wrmsr(vm, 0x6e0, BigInt(deadline)), 'ok');
  assert.equal(vm.nextEvent(), deadline);
  vm.runDue(deadline);
  assert.equal(vm.platform.lapics[0].pendingVector(), 0x40);
});

test('string I/O: REP OUTSB from guest memory to COM1', () => {
  const { vm, out } = vmWithHello();
  const h = vm.host;
  poke(vm, 0x9000, [...Buffer.from('hi!')]);
  h.setReg(6, 0x9000n);
  h.setReg(1, 3n);
  const rip = rd(vm, F.GUEST_RIP);
  // Qualification: size 1, string, REP, port 0x3F8; instruction information: 32-bit address, DS.
  handle(
    vm,
    exit(R.IO_INSTRUCTION, {
      qualification: (0x3f8n << 16n) | 16n | 32n,
      instructionInfo: (1 << 7) | (3 << 15),
      instructionLength: 2,
    }),
  );
  assert.equal(Buffer.from(out).toString(), 'hi!');
  assert.equal(h.getReg(1), 0n);
  assert.equal(h.getReg(6), 0x9003n);
  assert.equal(rd(vm, F.GUEST_RIP), rip + 2n);
});

test('string I/O: REP INSB with DF=1 writes memory downwards; 16-bit address size wraps DI', () => {
  const { vm } = vmWithHello();
  const h = vm.host;
  vm.io.out(0x510, 2, 0); // fw_cfg: select the signature "QEMU"
  h.setReg(7, 0xa000n);
  h.setReg(1, 2n);
  h.vmwrite(F.GUEST_RFLAGS, 0x402);
  // INSB (size 1, in, string, REP), port 0x511, 32-bit addresses: ES:EDI, then EDI -= 1.
  const q = (0x511n << 16n) | 8n | 16n;
  handle(
    vm,
    exit(R.IO_INSTRUCTION, { qualification: q | 32n, instructionInfo: 1 << 7, instructionLength: 2 }),
  );
  assert.deepEqual(peek(vm, 0x9fff, 2), [0x45, 0x51]); // 'Q' at 0xA000, then 'E' below it
  assert.equal(h.getReg(7), 0x9ffen);
  assert.equal(h.getReg(1), 0n);
  // 16-bit address size: DI wraps at 64 KiB and only DI changes.
  h.vmwrite(F.GUEST_RFLAGS, 0x2);
  h.setReg(7, 0x1234ffffn);
  vm.io.out(0x510, 2, 0);
  handle(vm, exit(R.IO_INSTRUCTION, { qualification: q, instructionInfo: 0, instructionLength: 1 }));
  assert.equal(h.getReg(7), 0x12340000n);
  assert.deepEqual(peek(vm, 0xffff, 1), [0x51]);
});

test(`string I/O: a long REP moves ${STRING_IO_BATCH} elements per exit and restarts the instruction`, () => {
  const { vm } = vmWithHello();
  const h = vm.host;
  h.setReg(6, 0x10000n);
  h.setReg(1, BigInt(STRING_IO_BATCH + 5));
  const rip = rd(vm, F.GUEST_RIP);
  const q = (0x1234n << 16n) | 16n | 32n;
  handle(
    vm,
    exit(R.IO_INSTRUCTION, { qualification: q, instructionInfo: (1 << 7) | (3 << 15), instructionLength: 2 }),
  );
  assert.equal(h.getReg(1), 5n);
  assert.equal(rd(vm, F.GUEST_RIP), rip, 'RIP stays on the REP OUTSB');
  handle(
    vm,
    exit(R.IO_INSTRUCTION, { qualification: q, instructionInfo: (1 << 7) | (3 << 15), instructionLength: 2 }),
  );
  assert.equal(h.getReg(1), 0n);
  assert.equal(rd(vm, F.GUEST_RIP), rip + 2n);
});

test('string I/O: a not-present page injects #PF (error code: write) and leaves RIP on the instruction', () => {
  const { vm } = vmWithHello();
  const h = vm.host;
  // 32-bit paging with an empty page directory at 0x30000.
  poke(vm, 0x30000, new Array<number>(4096).fill(0));
  h.vmwrite(F.GUEST_CR3, 0x30000);
  h.vmwrite(F.GUEST_CR0, rd(vm, F.GUEST_CR0) | 0x80000000n);
  h.setReg(7, 0x400000n);
  const rip = rd(vm, F.GUEST_RIP);
  handle(
    vm,
    exit(R.IO_INSTRUCTION, {
      qualification: (0x511n << 16n) | 8n | 16n,
      instructionInfo: 1 << 7,
      instructionLength: 1,
    }),
  );
  assert.equal(rd(vm, F.VM_ENTRY_INTR_INFO_FIELD), 0x80000b0en);
  assert.equal(rd(vm, F.VM_ENTRY_EXCEPTION_ERROR_CODE), 2n);
  assert.equal(h.getCr2(), 0x400000n, 'CR2: the faulting address');
  assert.equal(rd(vm, F.GUEST_RIP), rip);
});

test('SMP: the AP waits for SIPI; INIT + SIPI from the BSP start it in real mode at vector × 4096', () => {
  const { vm, l0 } = vmWithHello(2);
  const ap = vm.vcpus[1];
  assert.equal(ap.state, 'wait-sipi');
  const bsp = vm.platform.lapics[0];
  bsp.mmioWrite(0xf0, 4, 0x1ff);
  bsp.mmioWrite(0x310, 4, 1 << 24); // destination: APIC ID 1
  bsp.mmioWrite(0x300, 4, 0x4500); // INIT, assert
  assert.equal(ap.state, 'wait-sipi');
  bsp.mmioWrite(0x300, 4, 0x4608); // SIPI, vector 8
  assert.equal(ap.state, 'runnable');
  assert.ok(vm.yieldRequested, 'the BSP gives the CPU up so the AP starts');
  bsp.mmioWrite(0x300, 4, 0x4609); // a second SIPI is ignored: the AP no longer waits
  l0.switchTo(ap);
  assert.equal(rd(vm, F.GUEST_CS_SELECTOR), 0x800n);
  assert.equal(rd(vm, F.GUEST_CS_BASE), 0x8000n);
  assert.equal(rd(vm, F.GUEST_RIP), 0n);
  assert.equal(rd(vm, F.CR0_READ_SHADOW), 0x60000010n);
  assert.equal(rd(vm, F.CR0_GUEST_HOST_MASK), 0x60000020n, "CD, NW (not loaded by VM entry) and NE are L0's");
  assert.equal(vm.host.getReg(2), BigInt(vm.host.cpuid(1, 0)[0]), 'EDX: the processor signature');
  // CPUID reports the vCPU's own APIC ID and the VM's CPU count.
  vm.host.setReg(0, 0xb);
  vm.host.setReg(1, 1);
  handle(vm, exit(R.CPUID, { instructionLength: 2 }), 1);
  assert.equal(vm.host.getReg(2), 1n, 'x2APIC ID');
  assert.equal(vm.host.getReg(3), 2n, 'logical processors');
});

test('SMP: a HLT with IF=0 stops the VM only when no other vCPU could wake it', () => {
  const { vm } = vmWithHello(2);
  vm.vcpus[1].state = 'runnable';
  handle(vm, exit(R.HLT, { instructionLength: 1 }));
  assert.equal(vm.vcpus[0].state, 'halted');
  assert.equal(vm.end, undefined, 'vCPU 1 may still send an NMI');
  vm.vcpus[1].state = 'wait-sipi';
  handle(vm, exit(R.HLT, { instructionLength: 1 }));
  assert.match(stopDetail(vm), /vCPU 0: the guest halted with interrupts disabled/);
});
