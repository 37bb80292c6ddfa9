/**
 * The VMCS fields this implementation supports: every field of the spec table
 * (src/spec/vmx/vmcs-fields.ts) that exists without a feature, or whose feature
 * the machine implements. VMREAD/VMWRITE of any other encoding fail with
 * VM-instruction error 12, and IA32_VMX_VMCS_ENUM reports the highest index here.
 */
import { VMCS_FIELDS, type VmcsFeature } from '../../spec/vmx/vmcs-fields.js';

const IMPLEMENTED: ReadonlySet<VmcsFeature> = new Set<VmcsFeature>([
  'vpid',
  'ept',
  'vmFunctions',
  'eptpSwitching',
  'vmcsShadowing',
  'pat',
  'efer',
  'preemptionTimer',
  'secondaryControls',
  'tprShadow',
]);

export const SUPPORTED_FIELDS = VMCS_FIELDS.filter(
  (f) => f.feature === undefined || IMPLEMENTED.has(f.feature),
);
export const VMCS_FIELD_ENCODINGS: readonly number[] = SUPPORTED_FIELDS.map((f) => f.encoding);
const READ_ONLY = new Set(SUPPORTED_FIELDS.filter((f) => f.type === 'readOnly').map((f) => f.encoding));
export function isReadOnlyField(enc: number): boolean {
  return READ_ONLY.has(enc);
}
