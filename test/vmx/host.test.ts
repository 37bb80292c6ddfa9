/**
 * The VT-x host interface with synthetic guests: a TypeScript host runs 64-bit
 * guest code under EPT and checks exits, qualifications, EPT violations and
 * VM-entry failures, through the same VMX implementation x86 code uses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine, VMCS_FIELD as F, EXIT_REASON as R, type VmxHost } from '../../src/hw/index.js';
import { simpleGuest, SG } from '../../src/hw/vmx/simple-guest.js';

const { VMCS, CODE } = SG;

/** A machine and a host interface with a current VMCS for a 64-bit guest at CODE running `code` (src/hw/vmx/simple-guest.ts). */
function setup(code: number[], tweak?: (h: VmxHost) => void): { m: Machine; h: VmxHost } {
  const m = new Machine({ memMiB: 64, serial: () => {} });
  const h = simpleGuest(m, new Uint8Array(code));
  tweak?.(h);
  return { m, h };
}

test('CPUID exits with its instruction length, then HLT exits after VMRESUME', () => {
  // xor eax, eax; cpuid; hlt
  const { h } = setup([0x31, 0xc0, 0x0f, 0xa2, 0xf4]);
  const e1 = h.vmlaunch(1e6);
  assert.equal(e1.kind, 'exit');
  if (e1.kind !== 'exit') return;
  assert.equal(e1.reason, R.CPUID);
  assert.equal(e1.instructionLength, 2);
  assert.equal(h.vmread(F.GUEST_RIP), BigInt(CODE + 2));
  h.vmwrite(F.GUEST_RIP, CODE + 4);
  const e2 = h.vmresume(1e6);
  assert.equal(e2.kind === 'exit' && e2.reason, R.HLT);
  assert.equal(e2.kind === 'exit' && e2.instructionLength, 1);
});

test('VMRESUME of a clear VMCS fails with VM-instruction error 5, VMLAUNCH of a launched one with 4', () => {
  const { h } = setup([0x0f, 0xa2]);
  const r = h.vmresume(1e6);
  assert.deepEqual(r.kind === 'vmfail' && r.status, { ok: false, invalid: false, error: 5 });
  assert.equal(h.vmread(F.VM_INSTRUCTION_ERROR), 5n);
  assert.equal(h.vmlaunch(1e6).kind, 'exit');
  const r2 = h.vmlaunch(1e6);
  assert.deepEqual(r2.kind === 'vmfail' && r2.status, { ok: false, invalid: false, error: 4 });
});

test('an access to guest-physical memory EPT does not map is an EPT violation with GPA and qualification', () => {
  // mov rax, [0x40000010] (via mov eax, moffs32 with REX.W + 0x67 is awkward: use mov rbx, imm; mov rax, [rbx])
  const code = [0x48, 0xbb, 0x10, 0, 0, 0x40, 0, 0, 0, 0, 0x48, 0x8b, 0x03, 0xf4];
  const { h } = setup(code);
  const e = h.vmlaunch(1e6);
  assert.equal(e.kind === 'exit' && e.reason, R.EPT_VIOLATION);
  if (e.kind !== 'exit') return;
  assert.equal(e.guestPhysicalAddress, 0x40000010n);
  assert.equal(e.guestLinearAddress, 0x40000010n);
  // Read access (bit 0), not readable/writable/executable (bits 5:3 = 0), linear address valid (7) and translated (8).
  assert.equal(e.qualification, (1n << 0n) | (1n << 7n) | (1n << 8n));
  assert.equal(h.vmread(F.GUEST_RIP), BigInt(CODE + 10));
});

test('an invalid guest state is a VM-entry failure (exit reason 33) naming the failed check', () => {
  const { h } = setup([0xf4], (h) => h.vmwrite(F.GUEST_RFLAGS, 0)); // RFLAGS bit 1 must be 1
  const r = h.vmlaunch(1e6);
  assert.equal(r.kind, 'entry-failure');
  if (r.kind !== 'entry-failure') return;
  assert.equal(r.reason, R.INVALID_GUEST_STATE);
  assert.match(r.check, /RFLAGS/);
  assert.equal(h.vmread(F.VM_EXIT_REASON), BigInt(0x80000000 + 33));
});

test('invalid controls fail with VMfailValid 7, an invalid host state with 8', () => {
  const a = setup([0xf4], (h) => h.vmwrite(F.CR3_TARGET_COUNT, 5));
  const r = a.h.vmlaunch(1e6);
  assert.deepEqual(r.kind === 'vmfail' && r.status, { ok: false, invalid: false, error: 7 });
  assert.match(r.kind === 'vmfail' ? r.check : '', /CR3-target count/);
  const b = setup([0xf4], (h) => h.vmwrite(F.HOST_CS_SELECTOR, 0));
  const r2 = b.h.vmlaunch(1e6);
  assert.deepEqual(r2.kind === 'vmfail' && r2.status, { ok: false, invalid: false, error: 8 });
});

test('VMREAD/VMWRITE of an unsupported encoding fail with error 12; no current VMCS is VMfailInvalid', () => {
  const { h } = setup([0xf4]);
  assert.deepEqual(h.vmread(0x7fff), { ok: false, invalid: false, error: 12 });
  assert.deepEqual(h.vmwrite(0x2001 + 0x100, 1), { ok: false, invalid: false, error: 12 });
  h.vmclear(VMCS);
  assert.deepEqual(h.vmread(F.GUEST_RIP), { ok: false, invalid: true });
});

test('the exception bitmap turns a guest #UD into an exit with interruption information', () => {
  const { h } = setup([0x0f, 0x0b], (h) => h.vmwrite(F.EXCEPTION_BITMAP, 1 << 6));
  const e = h.vmlaunch(1e6);
  assert.equal(e.kind === 'exit' && e.reason, R.EXCEPTION_NMI);
  // valid | hardware exception (type 3) | vector 6
  assert.equal(e.kind === 'exit' && e.interruptionInfo, (0x80000000 | (3 << 8) | 6) >>> 0);
});

test('guest code runs without exits at bare-metal speed in instructions (a counted loop)', () => {
  // mov ecx, 100000; l: dec ecx; jnz l; hlt
  const { m, h } = setup([0xb9, 0xa0, 0x86, 0x01, 0x00, 0xff, 0xc9, 0x75, 0xfc, 0xf4]);
  const before = m.cpus[0].instret;
  const e = h.vmlaunch(1e8);
  assert.equal(e.kind === 'exit' && e.reason, R.HLT);
  assert.ok(m.cpus[0].instret - before >= 200000);
});

test('entry checks: injecting #GP into a guest in HLT activity is an invalid guest state', () => {
  const { h } = setup([0xf4], (h) => {
    h.vmwrite(F.GUEST_ACTIVITY_STATE, 1);
    h.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, (0x80000000 | (3 << 8) | 13 | (1 << 11)) >>> 0);
    h.vmwrite(F.VM_ENTRY_EXCEPTION_ERROR_CODE, 0);
  });
  const r = h.vmlaunch(1e6);
  assert.equal(r.kind, 'entry-failure');
  assert.match(r.kind === 'entry-failure' ? r.check : '', /activity state/);
});

test('entry checks: a PAE guest under EPT with a reserved bit in a present PDPTE fails with qualification 2', () => {
  const { h } = setup([0xf4], (h) => {
    h.vmwrite(F.VM_ENTRY_CONTROLS, (h.vmread(F.VM_ENTRY_CONTROLS) as bigint) & ~(1n << 9n)); // 32-bit PAE guest
    h.vmwrite(F.GUEST_CS_AR_BYTES, 0xc09b);
    h.vmwrite(F.GUEST_PDPTE0, 0x1000 | 1 | 2); // bit 1 is reserved in a PAE PDPTE
  });
  const r = h.vmlaunch(1e6);
  assert.equal(r.kind, 'entry-failure');
  assert.equal(r.kind === 'entry-failure' && r.qualification, 2n);
});
