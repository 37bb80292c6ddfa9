/**
 * The "invalid guest state" predicate: is this a state VM entry refuses when "unrestricted
 * guest" is 0 — which it must be under shadow paging, since unrestricted guest requires EPT
 * (SDM 3C §26.2.1.1)? Then L0 emulates the guest's instructions instead of entering it (KVM's
 * emulate_invalid_guest_state), until the predicate turns false.
 *
 * - CR0.PE = 0: real mode. Without unrestricted guest CR0.PE and PG must be 1 (§26.3.1.1, the
 *   CR0 fixed bits), and this CPU model has no virtual-8086 mode to run real mode in.
 * - CR0.PE = 1 with segment registers that fail the protected-mode checks of §26.3.1.2 (the
 *   ones unrestricted guest waives): right after MOV CR0 sets PE, the caches still hold what
 *   real mode loaded (a selector with RPL ≠ 0 in SS or CS, a data segment whose DPL is below its
 *   RPL, …) until the far jump and the segment loads replace them. A real-mode cache that
 *   happens to pass (the SIPI state: CS = V << 8, DPL 0, type 0x9b) is entered directly, as
 *   the hardware would run it: 16-bit protected mode with the old bases.
 *
 * The checks are those of the hardware's list (src/hw/vmx/entry.ts, "guest CS/SS/DS/ES/FS/GS…")
 * restricted to what a guest can change without L0 (segments and CR0.PE), in the same order.
 */
import { AR_UNUSABLE, CS, DS, ES, FS, GS, SS, type Segment } from './state.js';

export interface SegmentState {
  /** CR0 as the guest sees it. */
  cr0: number;
  /** ES, CS, SS, DS, FS, GS. */
  seg: readonly Segment[];
}

const usable = (s: Segment): boolean => !(s.ar & AR_UNUSABLE);
const dpl = (s: Segment): number => (s.ar >> 5) & 3;
const limitOk = (s: Segment): boolean => {
  const g = (s.ar & 0x8000) !== 0;
  if (g && (s.limit & 0xfff) !== 0xfff) return false;
  if (!g && s.limit > 0xfffff) return false;
  return true;
};

/** Why VM entry (without unrestricted guest) would refuse this state; '' when it would accept it. */
export function invalidStateReason(st: SegmentState): string {
  if (!(st.cr0 & 1)) return 'real mode (CR0.PE = 0)';
  const seg = st.seg;
  const cs = seg[CS],
    ss = seg[SS];
  const data = [DS, ES, FS, GS].map((k) => seg[k]);
  const all = [cs, ss, ...data];
  const checks: [string, () => boolean][] = [
    ['SS.RPL equals CS.RPL', () => (ss.sel & 3) === (cs.sel & 3)],
    ['CS is an accessed code segment', () => [9, 11, 13, 15].includes(cs.ar & 0xf)],
    ['SS is a read/write data segment', () => !usable(ss) || [3, 7].includes(ss.ar & 0xf)],
    [
      'DS/ES/FS/GS accessed, and readable if code',
      () => data.every((s) => !usable(s) || (!!(s.ar & 1) && (!(s.ar & 8) || !!(s.ar & 2)))),
    ],
    [
      'segments are code or data (S = 1)',
      () => all.every((s) => (s !== cs && !usable(s)) || !!(s.ar & 0x10)),
    ],
    [
      'CS.DPL equals SS.DPL (non-conforming) or is at most SS.DPL (conforming)',
      () => ((cs.ar & 0xf) <= 11 ? dpl(cs) === dpl(ss) : dpl(cs) <= dpl(ss)),
    ],
    ['SS.DPL equals SS.RPL', () => dpl(ss) === (ss.sel & 3)],
    [
      'DS/ES/FS/GS DPL at least RPL (non-conforming)',
      () => data.every((s) => !usable(s) || (s.ar & 0xf) >= 12 || dpl(s) >= (s.sel & 3)),
    ],
    ['segments present', () => all.every((s) => (s !== cs && !usable(s)) || !!(s.ar & 0x80))],
    ['access-rights reserved bits zero', () => all.every((s) => !usable(s) || (s.ar & 0xfffe0f00) === 0)],
    ['limits consistent with granularity', () => all.every((s) => (s !== cs && !usable(s)) || limitOk(s))],
  ];
  for (const [name, ok] of checks) if (!ok()) return `protected mode with ${name} failing (SDM 3C §26.3.1.2)`;
  return '';
}
