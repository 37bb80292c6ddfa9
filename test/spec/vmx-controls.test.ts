// Control bits, default1 classes, VM-instruction errors and the bit-field layouts of
// src/spec/vmx/controls.ts and ept.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACCESS_RIGHTS,
  APIC_ACCESS_QUAL,
  CR_ACCESS_QUAL,
  DESCRIPTOR_TABLE_INFO,
  ENTRY_CTLS,
  ENTRY_CTLS_DEFAULT1,
  EPTP,
  EPT_BIT,
  EPT_HI,
  EPT_LO,
  EPT_VIOLATION_QUAL,
  EXIT_CTLS,
  EXIT_CTLS_DEFAULT1,
  INS_OUTS_INFO,
  INTERRUPTION_INFO,
  INTERRUPTION_TYPE,
  INVEPT_INVPCID_INVVPID_INFO,
  IO_QUAL,
  LDTR_TR_INFO,
  MOV_DR_QUAL,
  PIN_BASED,
  PIN_BASED_DEFAULT1,
  PROC_BASED,
  PROC_BASED2,
  PROC_BASED_DEFAULT1,
  RDRAND_RDSEED_INFO,
  TASK_SWITCH_QUAL,
  VMX_INSTRUCTION_INFO,
  VM_INSTRUCTION_ERROR,
  VM_INSTRUCTION_ERROR_TEXT,
  fieldMask,
  getField,
  interruptionInfo,
  setField,
  type BitLayout,
} from '../../src/spec/vmx/index.js';

const CONTROLS: [string, Record<string, number>][] = [
  ['pin-based', PIN_BASED],
  ['primary processor-based', PROC_BASED],
  ['secondary processor-based', PROC_BASED2],
  ['VM-exit', EXIT_CTLS],
  ['VM-entry', ENTRY_CTLS],
];

test('each control is one bit, and no two controls of a field share it', () => {
  for (const [what, ctls] of CONTROLS) {
    let seen = 0;
    for (const [name, m] of Object.entries(ctls)) {
      assert.ok(m !== 0 && (m & (m - 1)) === 0, `${what} ${name} is a single bit`);
      assert.equal(seen & m, 0, `${what} ${name} overlaps another control`);
      seen |= m;
    }
  }
});

test('default1 classes are the SDM values (Appendix A.3-A.5)', () => {
  assert.equal(PIN_BASED_DEFAULT1, 0x00000016);
  assert.equal(PROC_BASED_DEFAULT1, 0x0401e172);
  assert.equal(EXIT_CTLS_DEFAULT1, 0x00036dff);
  assert.equal(ENTRY_CTLS_DEFAULT1, 0x000011ff);
});

test('the only named controls in the default1 classes are CR3-load/-store exiting and save/load debug controls', () => {
  const named = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a | b, 0);
  assert.equal(PIN_BASED_DEFAULT1 & named(PIN_BASED), 0);
  assert.equal(
    PROC_BASED_DEFAULT1 & named(PROC_BASED),
    PROC_BASED.CR3_LOAD_EXITING | PROC_BASED.CR3_STORE_EXITING,
  );
  assert.equal(EXIT_CTLS_DEFAULT1 & named(EXIT_CTLS), EXIT_CTLS.SAVE_DEBUG_CONTROLS);
  assert.equal(ENTRY_CTLS_DEFAULT1 & named(ENTRY_CTLS), ENTRY_CTLS.LOAD_DEBUG_CONTROLS);
});

test('control positions (spot checks)', () => {
  assert.equal(PIN_BASED.ACTIVATE_VMX_PREEMPTION_TIMER, 0x40);
  assert.equal(PROC_BASED.ACTIVATE_SECONDARY_CONTROLS >>> 0, 0x80000000);
  assert.equal(PROC_BASED.USE_MSR_BITMAPS, 0x10000000);
  assert.equal(PROC_BASED2.ENABLE_EPT, 0x2);
  assert.equal(PROC_BASED2.UNRESTRICTED_GUEST, 0x80);
  assert.equal(PROC_BASED2.VMCS_SHADOWING, 0x4000);
  assert.equal(PROC_BASED2.USE_TSC_SCALING, 0x02000000);
  assert.equal(EXIT_CTLS.HOST_ADDRESS_SPACE_SIZE, 0x200);
  assert.equal(EXIT_CTLS.ACKNOWLEDGE_INTERRUPT_ON_EXIT, 0x8000);
  assert.equal(EXIT_CTLS.SAVE_VMX_PREEMPTION_TIMER_VALUE, 0x400000);
  assert.equal(ENTRY_CTLS.IA32E_MODE_GUEST, 0x200);
  assert.equal(ENTRY_CTLS.LOAD_IA32_EFER, 0x8000);
});

test('VM-instruction errors 1-28 (14, 21 and 27 unused) each have the SDM text', () => {
  const nums = Object.values(VM_INSTRUCTION_ERROR) as number[];
  assert.equal(new Set(nums).size, nums.length);
  const expected = [];
  for (let i = 1; i <= 28; i++) if (![14, 21, 27].includes(i)) expected.push(i);
  assert.deepEqual(
    [...nums].sort((a, b) => a - b),
    expected,
  );
  assert.deepEqual(
    Object.keys(VM_INSTRUCTION_ERROR_TEXT)
      .map(Number)
      .sort((a, b) => a - b),
    expected,
  );
  assert.equal(VM_INSTRUCTION_ERROR.UNSUPPORTED_VMCS_COMPONENT, 12);
  assert.equal(VM_INSTRUCTION_ERROR_TEXT[12], 'VMREAD/VMWRITE from/to unsupported VMCS component');
  assert.equal(VM_INSTRUCTION_ERROR.INVALID_INVEPT_INVVPID_OPERAND, 28);
});

const LAYOUTS: [string, BitLayout][] = [
  ['interruption information', INTERRUPTION_INFO],
  ['access rights', ACCESS_RIGHTS],
  ['task switch', TASK_SWITCH_QUAL],
  ['CR access', CR_ACCESS_QUAL],
  ['MOV DR', MOV_DR_QUAL],
  ['I/O', IO_QUAL],
  ['APIC access', APIC_ACCESS_QUAL],
  ['INS/OUTS', INS_OUTS_INFO],
  ['INVEPT/INVPCID/INVVPID', INVEPT_INVPCID_INVVPID_INFO],
  ['descriptor table', DESCRIPTOR_TABLE_INFO],
  ['LDTR/TR', LDTR_TR_INFO],
  ['RDRAND/RDSEED', RDRAND_RDSEED_INFO],
  ['VMX instruction', VMX_INSTRUCTION_INFO],
  ['EPTP', EPTP],
];

test('bit-field layouts fit in 32 bits and their fields do not overlap', () => {
  for (const [what, layout] of LAYOUTS) {
    let seen = 0;
    for (const [name, f] of Object.entries(layout)) {
      assert.ok(f.width >= 1 && f.lsb >= 0 && f.lsb + f.width <= 32, `${what} ${name}`);
      assert.equal(seen & fieldMask(f), 0, `${what} ${name} overlaps`);
      seen |= fieldMask(f);
    }
  }
});

test('getField/setField round-trip, including bit 31 and the 16-bit port field', () => {
  let v = 0;
  v = setField(v, IO_QUAL.PORT, 0xcf8);
  v = setField(v, IO_QUAL.SIZE, 3);
  v = setField(v, IO_QUAL.DIRECTION, 1);
  assert.equal(v >>> 0, 0x0cf8000b);
  assert.equal(getField(v, IO_QUAL.PORT), 0xcf8);
  assert.equal(getField(v, IO_QUAL.SIZE), 3);
  assert.equal(getField(setField(0, IO_QUAL.PORT, 0xffff), IO_QUAL.PORT), 0xffff);
  const info = interruptionInfo(14, INTERRUPTION_TYPE.HARDWARE_EXCEPTION, true);
  assert.equal(info >>> 0, 0x80000b0e);
  assert.equal(getField(info, INTERRUPTION_INFO.VALID), 1);
  assert.equal(getField(info, INTERRUPTION_INFO.TYPE), 3);
  assert.equal(getField(info, INTERRUPTION_INFO.VECTOR), 14);
  assert.equal(getField(setField(info, INTERRUPTION_INFO.VALID, 0), INTERRUPTION_INFO.VALID), 0);
  assert.equal(getField(0xabcd0003 | 0, CR_ACCESS_QUAL.LMSW_SOURCE_DATA), 0xabcd);
});

test('EPT entry masks agree with the bit positions', () => {
  for (const [name, m] of Object.entries(EPT_LO)) {
    if (name === 'RWX' || name === 'MEMORY_TYPE') continue;
    assert.equal(m, 1 << EPT_BIT[name as keyof typeof EPT_BIT], name);
  }
  for (const [name, m] of Object.entries(EPT_HI)) {
    const pos = EPT_BIT[name as keyof typeof EPT_BIT];
    assert.ok(pos >= 32, name);
    assert.equal(m, 1 << (pos - 32), name);
  }
  assert.equal(EPT_LO.MEMORY_TYPE, 7 << EPT_BIT.MEMORY_TYPE_LSB);
  assert.equal(EPT_HI.SUPPRESS_VE >>> 0, 0x80000000);
  assert.equal(EPT_VIOLATION_QUAL.GLA_VALID, 0x80);
  assert.equal(EPT_VIOLATION_QUAL.NMI_UNBLOCKING_DUE_TO_IRET, 0x1000);
});
