// The VMCS field table (src/spec/vmx/vmcs-fields.ts): every entry's width and type,
// derived from its encoding, agree with the Appendix B section it is listed in and with
// its name; encodings and names are unique; VMREAD/VMWRITE operand resolution.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  VMCS,
  VMCS_FIELDS,
  VMCS_FIELD_BY_ENCODING,
  VMCS_FIELD_BY_NAME,
  VMCS_MAX_INDEX,
  VMCS_SECTIONS,
  fieldBytes,
  fieldIndex,
  fieldType,
  fieldWidth,
  isHighAccess,
  lookupVmcsEncoding,
  makeEncoding,
  maxIndexOf,
  type VmcsType,
  type VmcsWidth,
} from '../../src/spec/vmx/index.js';

test('each entry lies in the section of Appendix B its encoding says (width bits 14:13, type bits 11:10)', () => {
  let n = 0;
  for (const s of VMCS_SECTIONS) {
    assert.ok(s.entries.length > 0, s.title);
    for (const [name, enc] of s.entries) {
      assert.equal(fieldWidth(enc), s.width, `${name} (${enc.toString(16)}) width, in ${s.title}`);
      assert.equal(fieldType(enc), s.type, `${name} (${enc.toString(16)}) type, in ${s.title}`);
      assert.equal(isHighAccess(enc), false, `${name}: table encodings use the full access type`);
      assert.equal(enc & 0x1000, 0, `${name}: bit 12 is reserved`);
      assert.equal(enc & ~0x7fff, 0, `${name}: bits 31:15 are 0`);
      n++;
    }
  }
  assert.equal(VMCS_FIELDS.length, n);
  // Every (width, type) combination has its section, once, except 16-bit read-only data:
  // the SDM defines no such field.
  const combos = new Set(VMCS_SECTIONS.map((s) => `${s.width}/${s.type}`));
  assert.equal(combos.size, VMCS_SECTIONS.length);
  assert.equal(combos.size, 15);
  assert.ok(!combos.has('bits16/readOnly'));
});

test('encodings and names are unique; the maps and the VMCS object agree with the table', () => {
  const encs = new Set(VMCS_FIELDS.map((f) => f.encoding));
  const names = new Set(VMCS_FIELDS.map((f) => f.name));
  assert.equal(encs.size, VMCS_FIELDS.length, 'duplicate encoding');
  assert.equal(names.size, VMCS_FIELDS.length, 'duplicate name');
  assert.equal(VMCS_FIELD_BY_ENCODING.size, VMCS_FIELDS.length);
  assert.equal(VMCS_FIELD_BY_NAME.size, VMCS_FIELDS.length);
  assert.equal(Object.keys(VMCS).length, VMCS_FIELDS.length);
  for (const f of VMCS_FIELDS) {
    assert.equal(VMCS_FIELD_BY_ENCODING.get(f.encoding), f);
    assert.equal(VMCS_FIELD_BY_NAME.get(f.name), f);
    assert.equal(VMCS[f.name], f.encoding);
    assert.equal(f.width, fieldWidth(f.encoding));
    assert.equal(f.type, fieldType(f.encoding));
    assert.equal(f.index, fieldIndex(f.encoding));
    assert.equal(makeEncoding(f.width, f.type, f.index), f.encoding);
    assert.match(f.name, /^[A-Z][A-Z0-9_]*[A-Z0-9]$/);
  }
});

test('within a section, indices are distinct and listed in ascending order', () => {
  for (const s of VMCS_SECTIONS) {
    const idx = s.entries.map(([, enc]) => fieldIndex(enc));
    assert.deepEqual(
      idx,
      [...idx].sort((a, b) => a - b),
      s.title,
    );
    assert.equal(new Set(idx).size, idx.length, s.title);
  }
});

/** Names outside the GUEST_/HOST_ prefix rule, with the section they belong to. */
const PREFIX_EXCEPTIONS: Record<string, VmcsType> = {
  VMCS_LINK_POINTER: 'guest',
  VMX_PREEMPTION_TIMER_VALUE: 'guest',
  GUEST_PHYSICAL_ADDRESS: 'readOnly',
  GUEST_LINEAR_ADDRESS: 'readOnly',
};

/** The read-only data fields of the SDM (B.2.2, B.3.2, B.4.2). */
const READ_ONLY = [
  'GUEST_PHYSICAL_ADDRESS',
  'ORIGINAL_EVENT_DATA',
  'VM_INSTRUCTION_ERROR',
  'EXIT_REASON',
  'VM_EXIT_INTERRUPTION_INFORMATION',
  'VM_EXIT_INTERRUPTION_ERROR_CODE',
  'IDT_VECTORING_INFORMATION',
  'IDT_VECTORING_ERROR_CODE',
  'VM_EXIT_INSTRUCTION_LENGTH',
  'VM_EXIT_INSTRUCTION_INFORMATION',
  'EXIT_QUALIFICATION',
  'IO_RCX',
  'IO_RSI',
  'IO_RDI',
  'IO_RIP',
  'GUEST_LINEAR_ADDRESS',
];

function typeByName(name: string): VmcsType {
  if (name in PREFIX_EXCEPTIONS) return PREFIX_EXCEPTIONS[name]!;
  if (READ_ONLY.includes(name)) return 'readOnly';
  if (name.startsWith('GUEST_')) return 'guest';
  if (name.startsWith('HOST_')) return 'host';
  return 'control';
}

test('names agree with types: GUEST_ fields are guest state, HOST_ host state, exit information read-only', () => {
  for (const f of VMCS_FIELDS) assert.equal(f.type, typeByName(f.name), f.name);
  assert.deepEqual(
    VMCS_FIELDS.filter((f) => f.type === 'readOnly')
      .map((f) => f.name)
      .sort(),
    [...READ_ONLY].sort(),
  );
});

/** Width implied by the name, where the name says (undefined: no rule). */
function widthByName(name: string): VmcsWidth | undefined {
  if (name.endsWith('_SELECTOR')) return 'bits16';
  if (name.endsWith('_LIMIT') || name.endsWith('_ACCESS_RIGHTS')) return 'bits32';
  if (name.endsWith('_BASE')) return 'natural';
  if (/^(GUEST|HOST)_CR[034]$/.test(name) || /^CR[04]_|^CR3_TARGET_VALUE/.test(name)) return 'natural';
  if (/^(GUEST|HOST)_R(SP|IP|FLAGS)$/.test(name) || name.startsWith('IO_R')) return 'natural';
  if (/_IA32_SYSENTER_CS$/.test(name)) return 'bits32';
  if (/_IA32_SYSENTER_E[SI]P$/.test(name)) return 'natural';
  if (/_(S_CET|SSP|INTERRUPT_SSP_TABLE_ADDR)$/.test(name)) return 'natural';
  if (name.includes('_IA32_')) return 'bits64'; // MSR images: DEBUGCTL, PAT, EFER, …
  if (/_PDPTE\d$/.test(name)) return 'bits64';
  if (
    /_(ADDRESS|POINTER|BITMAP(_\d)?)$/.test(name) &&
    name !== 'GUEST_LINEAR_ADDRESS' &&
    name !== 'EXCEPTION_BITMAP'
  )
    return 'bits64';
  if (name.endsWith('_COUNT') || name.endsWith('_CONTROLS') || name.endsWith('_LENGTH')) {
    // The 64-bit control words (tertiary, secondary exit, VM functions) are the exceptions.
    const wide = [
      'TERTIARY_PROC_BASED_VM_EXEC_CONTROLS',
      'SECONDARY_VM_EXIT_CONTROLS',
      'VM_FUNCTION_CONTROLS',
    ];
    return wide.includes(name) ? 'bits64' : 'bits32';
  }
  return undefined;
}

test('names agree with widths: selectors 16-bit, limits and access rights 32-bit, bases natural, addresses 64-bit', () => {
  let checked = 0;
  for (const f of VMCS_FIELDS) {
    const w = widthByName(f.name);
    if (w === undefined) continue;
    assert.equal(f.width, w, f.name);
    checked++;
  }
  assert.ok(checked > VMCS_FIELDS.length / 2, `the name rules cover most fields (${checked})`);
});

test('spot checks against Appendix B', () => {
  const expect: [string, number][] = [
    ['VIRTUAL_PROCESSOR_ID', 0x0000],
    ['GUEST_CS_SELECTOR', 0x0802],
    ['HOST_TR_SELECTOR', 0x0c0c],
    ['IO_BITMAP_A_ADDRESS', 0x2000],
    ['MSR_BITMAPS_ADDRESS', 0x2004],
    ['TSC_OFFSET', 0x2010],
    ['EPT_POINTER', 0x201a],
    ['EPTP_LIST_ADDRESS', 0x2024],
    ['VMREAD_BITMAP_ADDRESS', 0x2026],
    ['VMWRITE_BITMAP_ADDRESS', 0x2028],
    ['VIRTUALIZATION_EXCEPTION_INFORMATION_ADDRESS', 0x202a],
    ['XSS_EXITING_BITMAP', 0x202c],
    ['ENCLS_EXITING_BITMAP', 0x202e],
    ['TSC_MULTIPLIER', 0x2032],
    ['GUEST_PHYSICAL_ADDRESS', 0x2400],
    ['VMCS_LINK_POINTER', 0x2800],
    ['GUEST_IA32_EFER', 0x2806],
    ['GUEST_PDPTE3', 0x2810],
    ['GUEST_IA32_BNDCFGS', 0x2812],
    ['HOST_IA32_PERF_GLOBAL_CTRL', 0x2c04],
    ['PIN_BASED_VM_EXEC_CONTROLS', 0x4000],
    ['PRIMARY_PROC_BASED_VM_EXEC_CONTROLS', 0x4002],
    ['SECONDARY_PROC_BASED_VM_EXEC_CONTROLS', 0x401e],
    ['VM_INSTRUCTION_ERROR', 0x4400],
    ['EXIT_REASON', 0x4402],
    ['VM_EXIT_INSTRUCTION_INFORMATION', 0x440e],
    ['GUEST_TR_ACCESS_RIGHTS', 0x4822],
    ['GUEST_INTERRUPTIBILITY_STATE', 0x4824],
    ['VMX_PREEMPTION_TIMER_VALUE', 0x482e],
    ['HOST_IA32_SYSENTER_CS', 0x4c00],
    ['CR3_TARGET_VALUE_3', 0x600e],
    ['EXIT_QUALIFICATION', 0x6400],
    ['GUEST_LINEAR_ADDRESS', 0x640a],
    ['GUEST_RIP', 0x681e],
    ['GUEST_PENDING_DEBUG_EXCEPTIONS', 0x6822],
    ['HOST_RIP', 0x6c16],
  ];
  for (const [name, enc] of expect) assert.equal(VMCS_FIELD_BY_NAME.get(name as never)?.encoding, enc, name);
});

test('VMCS_MAX_INDEX is the highest index of the table', () => {
  assert.equal(VMCS_MAX_INDEX, Math.max(...VMCS_FIELDS.map((f) => f.index)));
  assert.equal(maxIndexOf(VMCS_FIELDS), VMCS_MAX_INDEX);
  assert.ok(VMCS_FIELDS.some((f) => f.index === VMCS_MAX_INDEX));
});

test('VMREAD/VMWRITE operands: full and high access, reserved bits, unknown encodings', () => {
  const efer = lookupVmcsEncoding(VMCS.GUEST_IA32_EFER);
  assert.equal(efer?.field.name, 'GUEST_IA32_EFER');
  assert.equal(efer?.high, false);
  const eferHigh = lookupVmcsEncoding(VMCS.GUEST_IA32_EFER | 1);
  assert.equal(eferHigh?.field.name, 'GUEST_IA32_EFER');
  assert.equal(eferHigh?.high, true);
  // The high access type exists only for 64-bit fields.
  assert.equal(lookupVmcsEncoding(VMCS.GUEST_CS_SELECTOR | 1), undefined);
  assert.equal(lookupVmcsEncoding(VMCS.GUEST_CS_LIMIT | 1), undefined);
  assert.equal(lookupVmcsEncoding(VMCS.GUEST_RIP | 1), undefined);
  // Bits 63:15 must be 0.
  assert.equal(lookupVmcsEncoding(VMCS.GUEST_RIP | 0x8000), undefined);
  assert.equal(lookupVmcsEncoding(VMCS.GUEST_RIP, 1), undefined);
  assert.equal(lookupVmcsEncoding(VMCS.GUEST_RIP | (1 << 31)), undefined);
  // Unused encodings.
  assert.equal(lookupVmcsEncoding(0x482c), undefined);
  assert.equal(lookupVmcsEncoding(0x0c0e), undefined);
  assert.equal(lookupVmcsEncoding(0x7fff), undefined);
  // Every table field resolves, and its high half only if 64-bit.
  for (const f of VMCS_FIELDS) {
    assert.equal(lookupVmcsEncoding(f.encoding)?.field, f);
    assert.equal(lookupVmcsEncoding(f.encoding | 1)?.field === f, f.width === 'bits64', f.name);
  }
});

test('field sizes', () => {
  assert.equal(fieldBytes('bits16'), 2);
  assert.equal(fieldBytes('bits32'), 4);
  assert.equal(fieldBytes('bits64'), 8);
  assert.equal(fieldBytes('natural'), 8);
});
