// The machine's VMX capability set (src/spec/vmx/capabilities.ts): internally consistent
// by the rules of SDM 3C Appendix A, every offered control named, TRUE MSRs consistent
// with the plain ones, VMCS_ENUM matching the fields VMREAD accepts, and the machine
// options that remove features keeping all of that true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CR4,
  CR4_IMPLEMENTED,
  ENTRY_CTLS,
  ENTRY_CTLS_DEFAULT1,
  EPT_VPID_CAP_BIT,
  EXIT_CTLS,
  EXIT_CTLS_DEFAULT1,
  NAMED_CONTROL_BITS,
  PIN_BASED_DEFAULT1,
  PROC_BASED,
  PROC_BASED2,
  PROC_BASED_DEFAULT1,
  VMCS,
  VMCS_FIELDS,
  VMCS_FIELD_BY_NAME,
  VMCS_MAX_INDEX,
  VMX_CAPABILITIES,
  VMX_MSR,
  checkVmxCapabilities,
  controlMsr,
  hasEptVpidCap,
  maxIndexOf,
  maxMsrListEntries,
  restrictVmxCapabilities,
  supportedVmcsFields,
  vmcsEnum,
  vmcsFieldSupported,
  vmxCapabilityMsrs,
  type ControlCapability,
  type VmxCapabilities,
  type VmxFeatureOptions,
} from '../../src/spec/vmx/index.js';
import { cr4Allowed } from '../../src/hw/cpu/exec/system.js';
import { makeCpu64 } from '../support/cpu64.js';

const C = VMX_CAPABILITIES;

function controls(c: VmxCapabilities): [string, ControlCapability][] {
  return [
    ['pin-based', c.pinBased],
    ['primary', c.procBased],
    ['secondary', c.procBased2],
    ['exit', c.exit],
    ['entry', c.entry],
    ['TRUE pin-based', c.truePinBased],
    ['TRUE primary', c.trueProcBased],
    ['TRUE exit', c.trueExit],
    ['TRUE entry', c.trueEntry],
  ];
}

test('the capability set is consistent (checkVmxCapabilities finds nothing)', () => {
  assert.deepEqual(checkVmxCapabilities(C), []);
});

test('allowed-0 settings are a subset of allowed-1 settings for every control MSR', () => {
  for (const [what, cap] of controls(C)) assert.equal(cap.allowed0 & ~cap.allowed1, 0, what);
});

test('TRUE MSRs: same allowed-1 settings; allowed-0 settings = TRUE ones plus the default1 class', () => {
  const pairs: [ControlCapability, ControlCapability, number][] = [
    [C.pinBased, C.truePinBased, PIN_BASED_DEFAULT1],
    [C.procBased, C.trueProcBased, PROC_BASED_DEFAULT1],
    [C.exit, C.trueExit, EXIT_CTLS_DEFAULT1],
    [C.entry, C.trueEntry, ENTRY_CTLS_DEFAULT1],
  ];
  for (const [plain, tru, d1] of pairs) {
    assert.equal(plain.allowed1, tru.allowed1);
    assert.equal(plain.allowed0, tru.allowed0 | d1);
    assert.equal(tru.allowed0 & ~plain.allowed0, 0);
  }
  // The default1 controls the TRUE MSRs let software clear.
  assert.equal(
    C.procBased.allowed0 & ~C.trueProcBased.allowed0,
    PROC_BASED.CR3_LOAD_EXITING | PROC_BASED.CR3_STORE_EXITING,
  );
  assert.equal(C.exit.allowed0 & ~C.trueExit.allowed0, EXIT_CTLS.SAVE_DEBUG_CONTROLS);
  assert.equal(C.entry.allowed0 & ~C.trueEntry.allowed0, ENTRY_CTLS.LOAD_DEBUG_CONTROLS);
  assert.equal(C.pinBased.allowed0, C.truePinBased.allowed0);
});

test('every control bit that may be 1 is either named in controls.ts or in the default1 class', () => {
  const rows: [string, number, number, number][] = [
    ['pin-based', C.pinBased.allowed1, NAMED_CONTROL_BITS.pinBased, PIN_BASED_DEFAULT1],
    ['primary', C.procBased.allowed1, NAMED_CONTROL_BITS.procBased, PROC_BASED_DEFAULT1],
    ['secondary', C.procBased2.allowed1, NAMED_CONTROL_BITS.procBased2, 0],
    ['exit', C.exit.allowed1, NAMED_CONTROL_BITS.exit, EXIT_CTLS_DEFAULT1],
    ['entry', C.entry.allowed1, NAMED_CONTROL_BITS.entry, ENTRY_CTLS_DEFAULT1],
  ];
  for (const [what, allowed1, names, d1] of rows) assert.equal(allowed1 & ~names & ~d1, 0, what);
});

test('MSR values of the Haswell-EP-like set', () => {
  const m = vmxCapabilityMsrs(C);
  const hex = (v: bigint | undefined): string => (v === undefined ? 'absent' : '0x' + v.toString(16));
  assert.equal(hex(m.get(VMX_MSR.BASIC)), '0xd8100074757274'); // rev "turt", 4 KiB, WB, INS/OUTS info, TRUE ctls
  assert.equal(hex(m.get(VMX_MSR.PINBASED_CTLS)), '0x7f00000016');
  assert.equal(hex(m.get(VMX_MSR.TRUE_PINBASED_CTLS)), '0x7f00000016');
  assert.equal(hex(m.get(VMX_MSR.PROCBASED_CTLS)), '0xfff9fffe0401e172');
  assert.equal(hex(m.get(VMX_MSR.TRUE_PROCBASED_CTLS)), '0xfff9fffe04006172');
  assert.equal(hex(m.get(VMX_MSR.PROCBASED_CTLS2)), '0x20178ee00000000');
  assert.equal(hex(m.get(VMX_MSR.EXIT_CTLS)), '0x7fefff00036dff');
  assert.equal(hex(m.get(VMX_MSR.TRUE_EXIT_CTLS)), '0x7fefff00036dfb');
  assert.equal(hex(m.get(VMX_MSR.ENTRY_CTLS)), '0xd3ff000011ff');
  assert.equal(hex(m.get(VMX_MSR.TRUE_ENTRY_CTLS)), '0xd3ff000011fb');
  assert.equal(hex(m.get(VMX_MSR.MISC)), '0x200401e5'); // rate 5, LMA, HLT/shutdown/SIPI, 4 CR3 targets, VMWRITE any
  assert.equal(hex(m.get(VMX_MSR.CR0_FIXED0)), '0x80000021');
  assert.equal(hex(m.get(VMX_MSR.CR0_FIXED1)), '0xffffffff');
  assert.equal(hex(m.get(VMX_MSR.CR4_FIXED0)), '0x2000');
  assert.equal(hex(m.get(VMX_MSR.CR4_FIXED1)), '0x322fff');
  assert.equal(hex(m.get(VMX_MSR.EPT_VPID_CAP)), '0xf0106334141'); // as on Haswell-EP
  assert.equal(hex(m.get(VMX_MSR.VMFUNC)), '0x1');
  assert.equal(m.has(VMX_MSR.PROCBASED_CTLS3), false);
  assert.equal(m.has(VMX_MSR.EXIT_CTLS2), false);
  assert.equal(m.size, 18);
  assert.equal(maxMsrListEntries(C), 512);
  for (const [what, cap] of controls(C))
    assert.equal(controlMsr(cap), (BigInt(cap.allowed1 >>> 0) << 32n) | BigInt(cap.allowed0 >>> 0), what);
});

test('EPT/VPID capabilities: execute-only, 4-level, UC/WB, 2M/1G, A/D, INVEPT and all INVVPID types', () => {
  const B = EPT_VPID_CAP_BIT;
  for (const p of [
    B.EXECUTE_ONLY,
    B.PAGE_WALK_4,
    B.MEMORY_TYPE_UC,
    B.MEMORY_TYPE_WB,
    B.PDE_2MB,
    B.PDPTE_1GB,
    B.INVEPT,
    B.ACCESSED_DIRTY,
    B.INVEPT_SINGLE_CONTEXT,
    B.INVEPT_ALL_CONTEXT,
    B.INVVPID,
    B.INVVPID_INDIVIDUAL_ADDRESS,
    B.INVVPID_SINGLE_CONTEXT,
    B.INVVPID_ALL_CONTEXT,
    B.INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS,
  ])
    assert.ok(hasEptVpidCap(C, p), String(p));
  for (const p of [B.PAGE_WALK_5, B.ADVANCED_EPT_VIOLATION_INFO, B.SUPERVISOR_SHADOW_STACK])
    assert.ok(!hasEptVpidCap(C, p), String(p));
});

test('CR4_FIXED1 = the CR4 bits the CPU implements (cr4Allowed in src/hw) plus VMXE', () => {
  const { cpu } = makeCpu64();
  assert.equal(cr4Allowed(cpu) & ~CR4.VMXE, CR4_IMPLEMENTED);
  assert.equal(C.cr4Fixed1, CR4_IMPLEMENTED | CR4.VMXE);
});

test('VMCS_ENUM reports the highest index of the fields VMREAD accepts', () => {
  const supported = supportedVmcsFields(C);
  const max = maxIndexOf(supported);
  assert.equal(vmcsEnum(C), BigInt(max << 1));
  assert.equal(vmxCapabilityMsrs(C).get(VMX_MSR.VMCS_ENUM), BigInt(max << 1));
  // With TSC scaling offered, the TSC multiplier (2032H, index 25) is the highest.
  assert.equal(max, VMCS_FIELD_BY_NAME.get('TSC_MULTIPLIER')!.index);
  assert.equal(vmcsEnum(C), 0x32n);
  assert.ok(max <= VMCS_MAX_INDEX);
  // Every field of the table with index > max is unsupported.
  for (const f of VMCS_FIELDS) if (f.index > max) assert.ok(!vmcsFieldSupported(f, C), f.name);
});

test('the supported fields: those of offered features, none of the omitted ones', () => {
  const ok = (n: keyof typeof VMCS): boolean => vmcsFieldSupported(VMCS_FIELD_BY_NAME.get(n)!, C);
  for (const n of [
    'VIRTUAL_PROCESSOR_ID',
    'GUEST_CS_SELECTOR',
    'EPT_POINTER',
    'EPTP_LIST_ADDRESS',
    'VM_FUNCTION_CONTROLS',
    'VMREAD_BITMAP_ADDRESS',
    'VMWRITE_BITMAP_ADDRESS',
    'TSC_MULTIPLIER',
    'VIRTUAL_APIC_ADDRESS',
    'TPR_THRESHOLD',
    'GUEST_PHYSICAL_ADDRESS',
    'GUEST_PDPTE0',
    'GUEST_IA32_PAT',
    'GUEST_IA32_EFER',
    'HOST_IA32_EFER',
    'VMX_PREEMPTION_TIMER_VALUE',
    'SECONDARY_PROC_BASED_VM_EXEC_CONTROLS',
    'EXECUTIVE_VMCS_POINTER',
    'GUEST_SMBASE',
    'CR3_TARGET_VALUE_3',
  ] as const)
    assert.ok(ok(n), n);
  for (const n of [
    'POSTED_INTERRUPT_NOTIFICATION_VECTOR',
    'EPTP_INDEX',
    'GUEST_INTERRUPT_STATUS',
    'GUEST_PML_INDEX',
    'PML_ADDRESS',
    'APIC_ACCESS_ADDRESS',
    'EOI_EXIT_BITMAP_0',
    'XSS_EXITING_BITMAP',
    'ENCLS_EXITING_BITMAP',
    'TERTIARY_PROC_BASED_VM_EXEC_CONTROLS',
    'SECONDARY_VM_EXIT_CONTROLS',
    'GUEST_IA32_PERF_GLOBAL_CTRL',
    'GUEST_IA32_BNDCFGS',
    'GUEST_IA32_S_CET',
    'HOST_IA32_PKRS',
    'PLE_GAP',
    'INSTRUCTION_TIMEOUT_CONTROL',
    'SHARED_EPT_POINTER',
    'GUEST_IA32_FRED_CONFIG',
  ] as const)
    assert.ok(!ok(n), n);
});

const OPTION_KEYS = ['ept', 'vpid', 'unrestrictedGuest', 'vmcsShadowing', 'vmwriteAnyField'] as const;

test('every combination of machine options gives a consistent set', () => {
  for (let mask = 0; mask < 1 << OPTION_KEYS.length; mask++) {
    const opts: Record<string, boolean> = {};
    OPTION_KEYS.forEach((k, i) => (opts[k] = (mask & (1 << i)) === 0));
    const c = restrictVmxCapabilities(C, opts as VmxFeatureOptions);
    assert.deepEqual(checkVmxCapabilities(c), [], JSON.stringify(opts));
    assert.equal(vmcsEnum(c), BigInt(maxIndexOf(supportedVmcsFields(c)) << 1));
    // Nothing is ever added.
    assert.equal(c.procBased2.allowed1 & ~C.procBased2.allowed1, 0);
    assert.equal(c.eptVpidCap & ~C.eptVpidCap, 0n);
  }
  assert.equal(restrictVmxCapabilities(C, {}).procBased2.allowed1, C.procBased2.allowed1);
});

test('without EPT: no unrestricted guest, no EPTP switching or VM functions, EPT capability bits 0', () => {
  const c = restrictVmxCapabilities(C, { ept: false });
  const p2 = c.procBased2.allowed1;
  assert.equal(
    p2 & (PROC_BASED2.ENABLE_EPT | PROC_BASED2.UNRESTRICTED_GUEST | PROC_BASED2.ENABLE_VM_FUNCTIONS),
    0,
  );
  assert.ok(p2 & PROC_BASED2.ENABLE_VPID);
  assert.equal(c.eptVpidCap, C.eptVpidCap & ~0xffffffffn);
  assert.equal(c.vmfunc, 0n);
  const m = vmxCapabilityMsrs(c);
  assert.equal(m.has(VMX_MSR.VMFUNC), false);
  assert.equal(m.get(VMX_MSR.EPT_VPID_CAP), 0xf0100000000n);
  for (const n of [
    'EPT_POINTER',
    'GUEST_PHYSICAL_ADDRESS',
    'GUEST_PDPTE2',
    'EPTP_LIST_ADDRESS',
    'VM_FUNCTION_CONTROLS',
  ] as const)
    assert.ok(!vmcsFieldSupported(VMCS_FIELD_BY_NAME.get(n)!, c), n);
});

test('without VPID, or without both EPT and VPID', () => {
  const noVpid = restrictVmxCapabilities(C, { vpid: false });
  assert.equal(noVpid.procBased2.allowed1 & PROC_BASED2.ENABLE_VPID, 0);
  assert.equal(noVpid.eptVpidCap, C.eptVpidCap & 0xffffffffn);
  assert.ok(!vmcsFieldSupported(VMCS_FIELD_BY_NAME.get('VIRTUAL_PROCESSOR_ID')!, noVpid));
  const neither = restrictVmxCapabilities(C, { ept: false, vpid: false });
  assert.equal(vmxCapabilityMsrs(neither).has(VMX_MSR.EPT_VPID_CAP), false);
});

test('without unrestricted guest, VMCS shadowing, or VMWRITE to any field', () => {
  const noUg = restrictVmxCapabilities(C, { unrestrictedGuest: false });
  assert.equal(noUg.procBased2.allowed1, C.procBased2.allowed1 & ~PROC_BASED2.UNRESTRICTED_GUEST);
  const noShadow = restrictVmxCapabilities(C, { vmcsShadowing: false });
  assert.equal(noShadow.procBased2.allowed1, C.procBased2.allowed1 & ~PROC_BASED2.VMCS_SHADOWING);
  assert.ok(!vmcsFieldSupported(VMCS_FIELD_BY_NAME.get('VMREAD_BITMAP_ADDRESS')!, noShadow));
  const noAny = restrictVmxCapabilities(C, { vmwriteAnyField: false });
  assert.equal(vmxCapabilityMsrs(noAny).get(VMX_MSR.MISC), 0x000401e5n);
});

test('a broken set is reported', () => {
  const bad: VmxCapabilities = {
    ...C,
    procBased2: {
      allowed0: 0,
      allowed1: PROC_BASED2.UNRESTRICTED_GUEST | PROC_BASED2.APIC_REGISTER_VIRTUALIZATION,
    },
    trueExit: { allowed0: C.trueExit.allowed0, allowed1: C.trueExit.allowed1 | (1 << 12) },
  };
  const errs = checkVmxCapabilities(bad);
  assert.ok(
    errs.some((e) => e.includes('needs EPT')),
    errs.join('; '),
  );
  assert.ok(
    errs.some((e) => e.includes('allowed-1 settings differ')),
    errs.join('; '),
  );
  assert.ok(
    errs.some((e) => e.includes('EPT_VPID_CAP bits 31:0')),
    errs.join('; '),
  );
});
