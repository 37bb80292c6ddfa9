// Basic exit reasons and the exit-reason field (src/spec/vmx/exit-reasons.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ENTRY_FAILURE_REASONS,
  EXIT_REASON,
  EXIT_REASON_BITS,
  EXIT_REASON_NAME,
  INSTRUCTION_EXITS,
  basicExitReason,
  entryFailureReason,
} from '../../src/spec/vmx/index.js';

test('numbers are unique and cover 0-81 except the unused 35, 38, 42 and 71', () => {
  const values = Object.values(EXIT_REASON) as number[];
  assert.equal(new Set(values).size, values.length);
  const missing: number[] = [];
  for (let i = 0; i <= 81; i++) if (!values.includes(i)) missing.push(i);
  assert.deepEqual(missing, [35, 38, 42, 71]);
  assert.equal(Math.max(...values), 81);
  assert.equal(EXIT_REASON_NAME.size, values.length);
  for (const [name, v] of Object.entries(EXIT_REASON)) assert.equal(EXIT_REASON_NAME.get(v), name);
});

test('spot checks against SDM Appendix C', () => {
  const expect: [keyof typeof EXIT_REASON, number][] = [
    ['EXCEPTION_NMI', 0],
    ['EXTERNAL_INTERRUPT', 1],
    ['TRIPLE_FAULT', 2],
    ['INIT', 3],
    ['SIPI', 4],
    ['INTERRUPT_WINDOW', 7],
    ['NMI_WINDOW', 8],
    ['TASK_SWITCH', 9],
    ['CPUID', 10],
    ['HLT', 12],
    ['INVLPG', 14],
    ['RDTSC', 16],
    ['VMCALL', 18],
    ['VMXON', 27],
    ['CR_ACCESS', 28],
    ['MOV_DR', 29],
    ['IO_INSTRUCTION', 30],
    ['RDMSR', 31],
    ['WRMSR', 32],
    ['ENTRY_FAILURE_GUEST_STATE', 33],
    ['ENTRY_FAILURE_MSR_LOADING', 34],
    ['MWAIT', 36],
    ['MONITOR_TRAP_FLAG', 37],
    ['MONITOR', 39],
    ['PAUSE', 40],
    ['ENTRY_FAILURE_MACHINE_CHECK', 41],
    ['TPR_BELOW_THRESHOLD', 43],
    ['APIC_ACCESS', 44],
    ['GDTR_IDTR_ACCESS', 46],
    ['LDTR_TR_ACCESS', 47],
    ['EPT_VIOLATION', 48],
    ['EPT_MISCONFIG', 49],
    ['INVEPT', 50],
    ['RDTSCP', 51],
    ['PREEMPTION_TIMER', 52],
    ['INVVPID', 53],
    ['WBINVD', 54],
    ['XSETBV', 55],
    ['APIC_WRITE', 56],
    ['RDRAND', 57],
    ['INVPCID', 58],
    ['VMFUNC', 59],
    ['ENCLS', 60],
    ['RDSEED', 61],
    ['PML_FULL', 62],
    ['XSAVES', 63],
    ['XRSTORS', 64],
    ['BUS_LOCK', 74],
    ['INSTRUCTION_TIMEOUT', 75],
  ];
  for (const [name, v] of expect) assert.equal(EXIT_REASON[name], v, name);
});

test('exit-reason field: VM-entry failure is bit 31, basic reason bits 15:0', () => {
  assert.equal(entryFailureReason(EXIT_REASON.ENTRY_FAILURE_GUEST_STATE) >>> 0, 0x80000021);
  assert.equal(entryFailureReason(EXIT_REASON.ENTRY_FAILURE_MSR_LOADING) >>> 0, 0x80000022);
  assert.equal(basicExitReason(entryFailureReason(EXIT_REASON.ENTRY_FAILURE_MACHINE_CHECK)), 41);
  assert.equal(EXIT_REASON_BITS.ENTRY_FAILURE >>> 0, 0x80000000);
  assert.equal(EXIT_REASON_BITS.ENCLAVE_MODE, 0x08000000);
  assert.equal(basicExitReason(EXIT_REASON.EPT_VIOLATION | EXIT_REASON_BITS.ENCLAVE_MODE), 48);
  assert.deepEqual([...ENTRY_FAILURE_REASONS], [33, 34, 41]);
});

test('instruction exits are distinct known reasons and exclude events', () => {
  assert.equal(new Set(INSTRUCTION_EXITS).size, INSTRUCTION_EXITS.length);
  for (const r of INSTRUCTION_EXITS) assert.ok(EXIT_REASON_NAME.has(r));
  for (const r of [0, 1, 2, 3, 4, 7, 8, 33, 34, 41, 48, 49, 52])
    assert.ok(!INSTRUCTION_EXITS.includes(r as never), String(r));
});
