/**
 * VMCS fields as the nested code copies them, derived from the spec's field table: the
 * guest-state area and the exit-information fields, grouped by Appendix B section (one
 * width and type per group: the unit of the paper's "copy in bulk" optimization), and the
 * set of fields DRW shadows in hardware.
 */
import { VMCS_SECTIONS } from '../../spec/vmx/vmcs-fields.js';
import { VMCS_FIELD as F, VMCS_FIELD_INDEX } from '../hw.js';

const implemented = new Set(VMCS_FIELD_INDEX.encodings);

export interface FieldGroup {
  title: string;
  encodings: number[];
}

function groups(type: string, except: ReadonlySet<number> = new Set()): FieldGroup[] {
  return VMCS_SECTIONS.filter((s) => s.type === type)
    .map((s) => ({
      title: s.title,
      encodings: s.entries.map((e) => e[1]).filter((enc) => implemented.has(enc) && !except.has(enc)),
    }))
    .filter((g) => g.encodings.length > 0);
}

/** Guest-state fields copied between vmcs12 and vmcs02 (the VMCS link pointer is L0's own). */
export const GUEST_GROUPS = groups('guest', new Set([F.VMCS_LINK_POINTER]));
export const GUEST_FIELDS = new Set(GUEST_GROUPS.flatMap((g) => g.encodings));
/** VM-exit information fields (read-only for L1), written by L0 at a reflected exit. */
export const EXIT_INFO_GROUPS = groups('readOnly');

/**
 * Fields DRW serves from the shadow VMCS without an exit: what an L1 exit handler reads and
 * writes on every exit (exit information, guest RIP/RSP/RFLAGS, control registers, segment
 * state, interruptibility, event injection, the processor-based controls it toggles for
 * interrupt windows). Addresses and pointers (EPTP, bitmaps, MSR lists) are not shadowed, so
 * L0 sees every change to them as it happens.
 */
export const SHADOWED_FIELDS: readonly number[] = [
  ...GUEST_FIELDS,
  ...EXIT_INFO_GROUPS.flatMap((g) => g.encodings),
  F.CPU_BASED_VM_EXEC_CONTROL,
  F.EXCEPTION_BITMAP,
  F.VM_ENTRY_INTR_INFO_FIELD,
  F.VM_ENTRY_EXCEPTION_ERROR_CODE,
  F.VM_ENTRY_INSTRUCTION_LEN,
  F.CR0_GUEST_HOST_MASK,
  F.CR4_GUEST_HOST_MASK,
  F.CR0_READ_SHADOW,
  F.CR4_READ_SHADOW,
  F.TSC_OFFSET,
  // Host state L1 rewrites before entries (tvisor and KVM write HOST_RSP when their stack moves).
  F.HOST_RSP,
  F.HOST_RIP,
  F.HOST_FS_BASE,
  F.HOST_GS_BASE,
].filter((e) => implemented.has(e));

/** Groups of the shadowed fields (for bulk copies). */
export const SHADOWED_GROUPS: FieldGroup[] = VMCS_SECTIONS.map((s) => ({
  title: s.title,
  encodings: s.entries.map((e) => e[1]).filter((enc) => SHADOWED_FIELDS.includes(enc)),
})).filter((g) => g.encodings.length > 0);
