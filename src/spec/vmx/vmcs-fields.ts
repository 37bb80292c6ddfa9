/**
 * The VMCS field table: SDM Vol. 3 Appendix B ("Field Encoding in VMCS"), one entry per
 * field: its name and its encoding. The width, type, access type and index are *derived*
 * from the encoding (SDM 3C §24.11.2, "VMREAD, VMWRITE, and Encodings of VMCS Fields"),
 * and a test checks each entry against the section of Appendix B it is listed in.
 *
 * Names: the SDM describes fields in prose ("Guest CS selector"); the table spells that
 * prose in UPPER_SNAKE (GUEST_CS_SELECTOR), with the SDM's own abbreviations (VPID,
 * EPTP, PML, TSC, PLE) and EXEC/PROC for "execution"/"processor" in the control names.
 * Code uses the camelCase of the same name.
 *
 * `feature` names the capability a field depends on: the SDM says such a field "exists
 * only on processors that support the 1-setting of" some control (or a VM function, …).
 * VMREAD/VMWRITE of a field whose feature the machine does not advertise fail with
 * VM-instruction error 12 like any unsupported encoding; `capabilities.ts` maps each
 * feature to the capability MSR bits that enable it.
 *
 * Coverage: every field of Appendix B up to the editions that add CET, PKRS, FRED, IPI
 * virtualization and IA32_SPEC_CTRL virtualization. Not included: a few fields of the
 * newest editions whose governing controls were not checked here (APIC-timer
 * virtualization, the MSR-list "MSR data" field, guest/host IA32_SPEC_CTRL images).
 */

/** Bits 14:13 of an encoding. */
export type VmcsWidth = 'bits16' | 'bits64' | 'bits32' | 'natural';
/** Bits 11:10 of an encoding. */
export type VmcsType = 'control' | 'readOnly' | 'guest' | 'host';

const WIDTHS: readonly VmcsWidth[] = ['bits16', 'bits64', 'bits32', 'natural'];
const TYPES: readonly VmcsType[] = ['control', 'readOnly', 'guest', 'host'];

/** Width of the field an encoding names (bits 14:13). */
export function fieldWidth(enc: number): VmcsWidth {
  return WIDTHS[(enc >>> 13) & 3]!;
}

/** Type of the field an encoding names (bits 11:10). */
export function fieldType(enc: number): VmcsType {
  return TYPES[(enc >>> 10) & 3]!;
}

/** Access type (bit 0): 1 = "high", the upper 32 bits of a 64-bit field. */
export function isHighAccess(enc: number): boolean {
  return (enc & 1) !== 0;
}

/** Index (bits 9:1). */
export function fieldIndex(enc: number): number {
  return (enc >>> 1) & 0x1ff;
}

/** Build an encoding from its parts (access type full). */
export function makeEncoding(width: VmcsWidth, type: VmcsType, index: number): number {
  return (WIDTHS.indexOf(width) << 13) | (TYPES.indexOf(type) << 10) | ((index & 0x1ff) << 1);
}

/** Bytes a field occupies when stored in full (natural width is 64 bits on x86-64). */
export function fieldBytes(width: VmcsWidth): 2 | 4 | 8 {
  return width === 'bits16' ? 2 : width === 'bits32' ? 4 : 8;
}

/**
 * The capability a field depends on. Fields without one exist on every VMX processor.
 * Mapped to capability bits by VMCS_FEATURE_PRESENT in capabilities.ts.
 */
export type VmcsFeature =
  | 'vpid'
  | 'postedInterrupts'
  | 'eptViolationVe'
  | 'hlat'
  | 'ipiVirtualization'
  | 'virtualInterruptDelivery'
  | 'pml'
  | 'uinv'
  | 'tprShadow'
  | 'apicAccess'
  | 'vmFunctions'
  | 'ept'
  | 'eptpSwitching'
  | 'vmcsShadowing'
  | 'xsaves'
  | 'enclsExiting'
  | 'spp'
  | 'tscScaling'
  | 'tertiaryControls'
  | 'enclvExiting'
  | 'pasidTranslation'
  | 'sharedEpt'
  | 'pconfig'
  | 'secondaryExitControls'
  | 'specCtrlVirtualization'
  | 'pat'
  | 'efer'
  | 'perfGlobalCtrl'
  | 'bndcfgs'
  | 'rtitCtl'
  | 'lbrCtl'
  | 'pkrs'
  | 'cet'
  | 'fred'
  | 'preemptionTimer'
  | 'pauseLoopExiting'
  | 'secondaryControls'
  | 'instructionTimeout';

type Entry = readonly [name: string, encoding: number, feature?: VmcsFeature];

/** One section of Appendix B: fields of one width and one type. */
export interface VmcsSection {
  /** Appendix B section, e.g. "B.1.1 16-Bit Control Fields". */
  readonly title: string;
  readonly width: VmcsWidth;
  readonly type: VmcsType;
  readonly entries: readonly Entry[];
}

const SECTIONS = [
  {
    title: 'B.1.1 16-Bit Control Fields',
    width: 'bits16',
    type: 'control',
    entries: [
      ['VIRTUAL_PROCESSOR_ID', 0x0000, 'vpid'],
      ['POSTED_INTERRUPT_NOTIFICATION_VECTOR', 0x0002, 'postedInterrupts'],
      ['EPTP_INDEX', 0x0004, 'eptViolationVe'],
      ['HLAT_PREFIX_SIZE', 0x0006, 'hlat'],
      ['LAST_PID_POINTER_INDEX', 0x0008, 'ipiVirtualization'],
    ],
  },
  {
    title: 'B.1.2 16-Bit Guest-State Fields',
    width: 'bits16',
    type: 'guest',
    entries: [
      ['GUEST_ES_SELECTOR', 0x0800],
      ['GUEST_CS_SELECTOR', 0x0802],
      ['GUEST_SS_SELECTOR', 0x0804],
      ['GUEST_DS_SELECTOR', 0x0806],
      ['GUEST_FS_SELECTOR', 0x0808],
      ['GUEST_GS_SELECTOR', 0x080a],
      ['GUEST_LDTR_SELECTOR', 0x080c],
      ['GUEST_TR_SELECTOR', 0x080e],
      ['GUEST_INTERRUPT_STATUS', 0x0810, 'virtualInterruptDelivery'],
      ['GUEST_PML_INDEX', 0x0812, 'pml'],
      ['GUEST_UINV', 0x0814, 'uinv'],
    ],
  },
  {
    title: 'B.1.3 16-Bit Host-State Fields',
    width: 'bits16',
    type: 'host',
    entries: [
      ['HOST_ES_SELECTOR', 0x0c00],
      ['HOST_CS_SELECTOR', 0x0c02],
      ['HOST_SS_SELECTOR', 0x0c04],
      ['HOST_DS_SELECTOR', 0x0c06],
      ['HOST_FS_SELECTOR', 0x0c08],
      ['HOST_GS_SELECTOR', 0x0c0a],
      ['HOST_TR_SELECTOR', 0x0c0c],
    ],
  },
  {
    title: 'B.2.1 64-Bit Control Fields',
    width: 'bits64',
    type: 'control',
    entries: [
      ['IO_BITMAP_A_ADDRESS', 0x2000],
      ['IO_BITMAP_B_ADDRESS', 0x2002],
      ['MSR_BITMAPS_ADDRESS', 0x2004],
      ['VM_EXIT_MSR_STORE_ADDRESS', 0x2006],
      ['VM_EXIT_MSR_LOAD_ADDRESS', 0x2008],
      ['VM_ENTRY_MSR_LOAD_ADDRESS', 0x200a],
      ['EXECUTIVE_VMCS_POINTER', 0x200c],
      ['PML_ADDRESS', 0x200e, 'pml'],
      ['TSC_OFFSET', 0x2010],
      ['VIRTUAL_APIC_ADDRESS', 0x2012, 'tprShadow'],
      ['APIC_ACCESS_ADDRESS', 0x2014, 'apicAccess'],
      ['POSTED_INTERRUPT_DESCRIPTOR_ADDRESS', 0x2016, 'postedInterrupts'],
      ['VM_FUNCTION_CONTROLS', 0x2018, 'vmFunctions'],
      ['EPT_POINTER', 0x201a, 'ept'],
      ['EOI_EXIT_BITMAP_0', 0x201c, 'virtualInterruptDelivery'],
      ['EOI_EXIT_BITMAP_1', 0x201e, 'virtualInterruptDelivery'],
      ['EOI_EXIT_BITMAP_2', 0x2020, 'virtualInterruptDelivery'],
      ['EOI_EXIT_BITMAP_3', 0x2022, 'virtualInterruptDelivery'],
      ['EPTP_LIST_ADDRESS', 0x2024, 'eptpSwitching'],
      ['VMREAD_BITMAP_ADDRESS', 0x2026, 'vmcsShadowing'],
      ['VMWRITE_BITMAP_ADDRESS', 0x2028, 'vmcsShadowing'],
      ['VIRTUALIZATION_EXCEPTION_INFORMATION_ADDRESS', 0x202a, 'eptViolationVe'],
      ['XSS_EXITING_BITMAP', 0x202c, 'xsaves'],
      ['ENCLS_EXITING_BITMAP', 0x202e, 'enclsExiting'],
      ['SUB_PAGE_PERMISSION_TABLE_POINTER', 0x2030, 'spp'],
      ['TSC_MULTIPLIER', 0x2032, 'tscScaling'],
      ['TERTIARY_PROC_BASED_VM_EXEC_CONTROLS', 0x2034, 'tertiaryControls'],
      ['ENCLV_EXITING_BITMAP', 0x2036, 'enclvExiting'],
      ['LOW_PASID_DIRECTORY_ADDRESS', 0x2038, 'pasidTranslation'],
      ['HIGH_PASID_DIRECTORY_ADDRESS', 0x203a, 'pasidTranslation'],
      ['SHARED_EPT_POINTER', 0x203c, 'sharedEpt'],
      ['PCONFIG_EXITING_BITMAP', 0x203e, 'pconfig'],
      ['HLAT_POINTER', 0x2040, 'hlat'],
      ['PID_POINTER_TABLE_ADDRESS', 0x2042, 'ipiVirtualization'],
      ['SECONDARY_VM_EXIT_CONTROLS', 0x2044, 'secondaryExitControls'],
      ['IA32_SPEC_CTRL_MASK', 0x204a, 'specCtrlVirtualization'],
      ['IA32_SPEC_CTRL_SHADOW', 0x204c, 'specCtrlVirtualization'],
      ['INJECTED_EVENT_DATA', 0x2052, 'fred'],
    ],
  },
  {
    title: 'B.2.2 64-Bit Read-Only Data Fields',
    width: 'bits64',
    type: 'readOnly',
    entries: [
      ['GUEST_PHYSICAL_ADDRESS', 0x2400, 'ept'],
      ['ORIGINAL_EVENT_DATA', 0x2404, 'fred'],
    ],
  },
  {
    title: 'B.2.3 64-Bit Guest-State Fields',
    width: 'bits64',
    type: 'guest',
    entries: [
      ['VMCS_LINK_POINTER', 0x2800],
      ['GUEST_IA32_DEBUGCTL', 0x2802],
      ['GUEST_IA32_PAT', 0x2804, 'pat'],
      ['GUEST_IA32_EFER', 0x2806, 'efer'],
      ['GUEST_IA32_PERF_GLOBAL_CTRL', 0x2808, 'perfGlobalCtrl'],
      ['GUEST_PDPTE0', 0x280a, 'ept'],
      ['GUEST_PDPTE1', 0x280c, 'ept'],
      ['GUEST_PDPTE2', 0x280e, 'ept'],
      ['GUEST_PDPTE3', 0x2810, 'ept'],
      ['GUEST_IA32_BNDCFGS', 0x2812, 'bndcfgs'],
      ['GUEST_IA32_RTIT_CTL', 0x2814, 'rtitCtl'],
      ['GUEST_IA32_LBR_CTL', 0x2816, 'lbrCtl'],
      ['GUEST_IA32_PKRS', 0x2818, 'pkrs'],
      ['GUEST_IA32_FRED_CONFIG', 0x281a, 'fred'],
      ['GUEST_IA32_FRED_RSP1', 0x281c, 'fred'],
      ['GUEST_IA32_FRED_RSP2', 0x281e, 'fred'],
      ['GUEST_IA32_FRED_RSP3', 0x2820, 'fred'],
      ['GUEST_IA32_FRED_STKLVLS', 0x2822, 'fred'],
      ['GUEST_IA32_FRED_SSP1', 0x2824, 'fred'],
      ['GUEST_IA32_FRED_SSP2', 0x2826, 'fred'],
      ['GUEST_IA32_FRED_SSP3', 0x2828, 'fred'],
    ],
  },
  {
    title: 'B.2.4 64-Bit Host-State Fields',
    width: 'bits64',
    type: 'host',
    entries: [
      ['HOST_IA32_PAT', 0x2c00, 'pat'],
      ['HOST_IA32_EFER', 0x2c02, 'efer'],
      ['HOST_IA32_PERF_GLOBAL_CTRL', 0x2c04, 'perfGlobalCtrl'],
      ['HOST_IA32_PKRS', 0x2c06, 'pkrs'],
      ['HOST_IA32_FRED_CONFIG', 0x2c08, 'fred'],
      ['HOST_IA32_FRED_RSP1', 0x2c0a, 'fred'],
      ['HOST_IA32_FRED_RSP2', 0x2c0c, 'fred'],
      ['HOST_IA32_FRED_RSP3', 0x2c0e, 'fred'],
      ['HOST_IA32_FRED_STKLVLS', 0x2c10, 'fred'],
      ['HOST_IA32_FRED_SSP1', 0x2c12, 'fred'],
      ['HOST_IA32_FRED_SSP2', 0x2c14, 'fred'],
      ['HOST_IA32_FRED_SSP3', 0x2c16, 'fred'],
    ],
  },
  {
    title: 'B.3.1 32-Bit Control Fields',
    width: 'bits32',
    type: 'control',
    entries: [
      ['PIN_BASED_VM_EXEC_CONTROLS', 0x4000],
      ['PRIMARY_PROC_BASED_VM_EXEC_CONTROLS', 0x4002],
      ['EXCEPTION_BITMAP', 0x4004],
      ['PAGE_FAULT_ERROR_CODE_MASK', 0x4006],
      ['PAGE_FAULT_ERROR_CODE_MATCH', 0x4008],
      ['CR3_TARGET_COUNT', 0x400a],
      ['VM_EXIT_CONTROLS', 0x400c],
      ['VM_EXIT_MSR_STORE_COUNT', 0x400e],
      ['VM_EXIT_MSR_LOAD_COUNT', 0x4010],
      ['VM_ENTRY_CONTROLS', 0x4012],
      ['VM_ENTRY_MSR_LOAD_COUNT', 0x4014],
      ['VM_ENTRY_INTERRUPTION_INFORMATION', 0x4016],
      ['VM_ENTRY_EXCEPTION_ERROR_CODE', 0x4018],
      ['VM_ENTRY_INSTRUCTION_LENGTH', 0x401a],
      ['TPR_THRESHOLD', 0x401c, 'tprShadow'],
      ['SECONDARY_PROC_BASED_VM_EXEC_CONTROLS', 0x401e, 'secondaryControls'],
      ['PLE_GAP', 0x4020, 'pauseLoopExiting'],
      ['PLE_WINDOW', 0x4022, 'pauseLoopExiting'],
      ['INSTRUCTION_TIMEOUT_CONTROL', 0x4024, 'instructionTimeout'],
    ],
  },
  {
    title: 'B.3.2 32-Bit Read-Only Data Fields',
    width: 'bits32',
    type: 'readOnly',
    entries: [
      ['VM_INSTRUCTION_ERROR', 0x4400],
      ['EXIT_REASON', 0x4402],
      ['VM_EXIT_INTERRUPTION_INFORMATION', 0x4404],
      ['VM_EXIT_INTERRUPTION_ERROR_CODE', 0x4406],
      ['IDT_VECTORING_INFORMATION', 0x4408],
      ['IDT_VECTORING_ERROR_CODE', 0x440a],
      ['VM_EXIT_INSTRUCTION_LENGTH', 0x440c],
      ['VM_EXIT_INSTRUCTION_INFORMATION', 0x440e],
    ],
  },
  {
    title: 'B.3.3 32-Bit Guest-State Fields',
    width: 'bits32',
    type: 'guest',
    entries: [
      ['GUEST_ES_LIMIT', 0x4800],
      ['GUEST_CS_LIMIT', 0x4802],
      ['GUEST_SS_LIMIT', 0x4804],
      ['GUEST_DS_LIMIT', 0x4806],
      ['GUEST_FS_LIMIT', 0x4808],
      ['GUEST_GS_LIMIT', 0x480a],
      ['GUEST_LDTR_LIMIT', 0x480c],
      ['GUEST_TR_LIMIT', 0x480e],
      ['GUEST_GDTR_LIMIT', 0x4810],
      ['GUEST_IDTR_LIMIT', 0x4812],
      ['GUEST_ES_ACCESS_RIGHTS', 0x4814],
      ['GUEST_CS_ACCESS_RIGHTS', 0x4816],
      ['GUEST_SS_ACCESS_RIGHTS', 0x4818],
      ['GUEST_DS_ACCESS_RIGHTS', 0x481a],
      ['GUEST_FS_ACCESS_RIGHTS', 0x481c],
      ['GUEST_GS_ACCESS_RIGHTS', 0x481e],
      ['GUEST_LDTR_ACCESS_RIGHTS', 0x4820],
      ['GUEST_TR_ACCESS_RIGHTS', 0x4822],
      ['GUEST_INTERRUPTIBILITY_STATE', 0x4824],
      ['GUEST_ACTIVITY_STATE', 0x4826],
      ['GUEST_SMBASE', 0x4828],
      ['GUEST_IA32_SYSENTER_CS', 0x482a],
      ['VMX_PREEMPTION_TIMER_VALUE', 0x482e, 'preemptionTimer'],
    ],
  },
  {
    title: 'B.3.4 32-Bit Host-State Field',
    width: 'bits32',
    type: 'host',
    entries: [['HOST_IA32_SYSENTER_CS', 0x4c00]],
  },
  {
    title: 'B.4.1 Natural-Width Control Fields',
    width: 'natural',
    type: 'control',
    entries: [
      ['CR0_GUEST_HOST_MASK', 0x6000],
      ['CR4_GUEST_HOST_MASK', 0x6002],
      ['CR0_READ_SHADOW', 0x6004],
      ['CR4_READ_SHADOW', 0x6006],
      ['CR3_TARGET_VALUE_0', 0x6008],
      ['CR3_TARGET_VALUE_1', 0x600a],
      ['CR3_TARGET_VALUE_2', 0x600c],
      ['CR3_TARGET_VALUE_3', 0x600e],
    ],
  },
  {
    title: 'B.4.2 Natural-Width Read-Only Data Fields',
    width: 'natural',
    type: 'readOnly',
    entries: [
      ['EXIT_QUALIFICATION', 0x6400],
      ['IO_RCX', 0x6402],
      ['IO_RSI', 0x6404],
      ['IO_RDI', 0x6406],
      ['IO_RIP', 0x6408],
      ['GUEST_LINEAR_ADDRESS', 0x640a],
    ],
  },
  {
    title: 'B.4.3 Natural-Width Guest-State Fields',
    width: 'natural',
    type: 'guest',
    entries: [
      ['GUEST_CR0', 0x6800],
      ['GUEST_CR3', 0x6802],
      ['GUEST_CR4', 0x6804],
      ['GUEST_ES_BASE', 0x6806],
      ['GUEST_CS_BASE', 0x6808],
      ['GUEST_SS_BASE', 0x680a],
      ['GUEST_DS_BASE', 0x680c],
      ['GUEST_FS_BASE', 0x680e],
      ['GUEST_GS_BASE', 0x6810],
      ['GUEST_LDTR_BASE', 0x6812],
      ['GUEST_TR_BASE', 0x6814],
      ['GUEST_GDTR_BASE', 0x6816],
      ['GUEST_IDTR_BASE', 0x6818],
      ['GUEST_DR7', 0x681a],
      ['GUEST_RSP', 0x681c],
      ['GUEST_RIP', 0x681e],
      ['GUEST_RFLAGS', 0x6820],
      ['GUEST_PENDING_DEBUG_EXCEPTIONS', 0x6822],
      ['GUEST_IA32_SYSENTER_ESP', 0x6824],
      ['GUEST_IA32_SYSENTER_EIP', 0x6826],
      ['GUEST_IA32_S_CET', 0x6828, 'cet'],
      ['GUEST_SSP', 0x682a, 'cet'],
      ['GUEST_IA32_INTERRUPT_SSP_TABLE_ADDR', 0x682c, 'cet'],
    ],
  },
  {
    title: 'B.4.4 Natural-Width Host-State Fields',
    width: 'natural',
    type: 'host',
    entries: [
      ['HOST_CR0', 0x6c00],
      ['HOST_CR3', 0x6c02],
      ['HOST_CR4', 0x6c04],
      ['HOST_FS_BASE', 0x6c06],
      ['HOST_GS_BASE', 0x6c08],
      ['HOST_TR_BASE', 0x6c0a],
      ['HOST_GDTR_BASE', 0x6c0c],
      ['HOST_IDTR_BASE', 0x6c0e],
      ['HOST_IA32_SYSENTER_ESP', 0x6c10],
      ['HOST_IA32_SYSENTER_EIP', 0x6c12],
      ['HOST_RSP', 0x6c14],
      ['HOST_RIP', 0x6c16],
      ['HOST_IA32_S_CET', 0x6c18, 'cet'],
      ['HOST_SSP', 0x6c1a, 'cet'],
      ['HOST_IA32_INTERRUPT_SSP_TABLE_ADDR', 0x6c1c, 'cet'],
    ],
  },
] as const satisfies readonly VmcsSection[];

/** The sections of Appendix B, as listed there (for the table test and documentation). */
export const VMCS_SECTIONS: readonly VmcsSection[] = SECTIONS;

/** Every field name of the table, as a literal union. */
export type VmcsFieldName = (typeof SECTIONS)[number]['entries'][number][0];

/** One VMCS field: SDM name and encoding, with the parts derived from the encoding. */
export interface VmcsField {
  readonly name: VmcsFieldName;
  /** Encoding with access type "full" (bit 0 clear). */
  readonly encoding: number;
  readonly width: VmcsWidth;
  readonly type: VmcsType;
  /** Bits 9:1 of the encoding. */
  readonly index: number;
  /** The capability the field depends on; absent: present on every VMX processor. */
  readonly feature?: VmcsFeature;
}

function build(): VmcsField[] {
  const out: VmcsField[] = [];
  for (const s of VMCS_SECTIONS) {
    for (const [name, encoding, feature] of s.entries) {
      const f: VmcsField = {
        name: name as VmcsFieldName,
        encoding,
        width: fieldWidth(encoding),
        type: fieldType(encoding),
        index: fieldIndex(encoding),
        ...(feature === undefined ? {} : { feature }),
      };
      out.push(Object.freeze(f));
    }
  }
  return out;
}

/** Every field, in Appendix B order. */
export const VMCS_FIELDS: readonly VmcsField[] = Object.freeze(build());

/** Fields by encoding (full access encodings only; see lookupVmcsEncoding for "high"). */
export const VMCS_FIELD_BY_ENCODING: ReadonlyMap<number, VmcsField> = new Map(
  VMCS_FIELDS.map((f) => [f.encoding, f]),
);

/** Fields by SDM name. */
export const VMCS_FIELD_BY_NAME: ReadonlyMap<VmcsFieldName, VmcsField> = new Map(
  VMCS_FIELDS.map((f) => [f.name, f]),
);

/** Encodings by name: `VMCS.GUEST_RIP === 0x681e`. */
export const VMCS: { readonly [K in VmcsFieldName]: number } = Object.freeze(
  Object.fromEntries(VMCS_FIELDS.map((f) => [f.name, f.encoding])) as { [K in VmcsFieldName]: number },
);

/** The highest index among all fields of the table. */
export const VMCS_MAX_INDEX: number = maxIndexOf(VMCS_FIELDS);

/** The highest index among some fields (IA32_VMX_VMCS_ENUM bits 9:1 for a supported set). */
export function maxIndexOf(fields: readonly VmcsField[]): number {
  let m = 0;
  for (const f of fields) m = Math.max(m, f.index);
  return m;
}

/** What a VMREAD/VMWRITE operand names, or undefined if no field of the table. */
export interface VmcsAccess {
  readonly field: VmcsField;
  /** The "high" access of a 64-bit field: the upper 32 bits, as a 32-bit value. */
  readonly high: boolean;
}

/**
 * Resolve a VMREAD/VMWRITE encoding (the full 64-bit register operand given as its
 * high and low dwords). Bits 63:15 must be 0 and bit 12 is reserved; the high access
 * type exists only for 64-bit fields. Anything else is an unsupported component
 * (VM-instruction error 12); whether the field is supported by the machine's
 * capabilities is checked by the caller.
 */
export function lookupVmcsEncoding(encLo: number, encHi = 0): VmcsAccess | undefined {
  if (encHi !== 0 || (encLo & ~0x7fff) !== 0) return undefined;
  const high = isHighAccess(encLo);
  const field = VMCS_FIELD_BY_ENCODING.get(encLo & ~1);
  if (!field) return undefined;
  if (high && field.width !== 'bits64') return undefined;
  return { field, high };
}
