/**
 * VM entry (SDM 3C chapter 26): the checks of §26.2 (controls, host state) and
 * §26.3 (guest state), each an ordered, named step so a failure says which check
 * failed; then loading the guest state (§26.4), the MSR-load list, and event
 * injection (§26.6).
 */
import type { Vmcs } from './vmcs.js';
import type { VmxUnit } from './unit.js';
import { VmxCaps, VMCS_REVISION_ID } from './caps.js';
import { F, GUEST_SEG_SEL, GUEST_SEG_LIMIT, GUEST_SEG_AR, GUEST_SEG_BASE } from './f.js';
import * as B from './bits.js';
import { MAXPHYADDR } from '../mmu/paging.js';
import { CS, SS, DS, ES, FS, GS, LDTR, TR } from '../cpu/regs.js';
import { MSR } from '../../spec/msr.js';
import { writeMsr } from '../cpu/msrs.js';
import { ABORT } from '../cpu/fault.js';
import { deliverEvent, EV_EXT, EV_NMI, EV_HW_EXC, EV_SW_INT, EV_PRIV_SW, EV_SW_EXC } from '../cpu/events.js';
import { LAUNCH_LAUNCHED } from './vmcs.js';

const TWO32 = 4294967296;
const canonical = (v: number): boolean => v >= -(2 ** 47) && v < 2 ** 47;
const physOk = (pa: number): boolean => pa >= 0 && pa < 2 ** MAXPHYADDR;
const aligned = (pa: number, n: number): boolean => pa % n === 0 && physOk(pa);

/** What the checks may read besides the VMCS: physical memory (virtual-APIC page, link pointer). */
export interface EntryEnv {
  read8(pa: number): number;
  read32(pa: number): number;
  /** Is the processor doing the VM entry in IA-32e mode? */
  hostLma: boolean;
}

interface Ctx {
  v: Vmcs;
  mem: EntryEnv;
  caps: VmxCaps;
  pin: number;
  proc: number;
  proc2: number;
  exit: number;
  entry: number;
  /** Is the processor doing the VM entry in IA-32e mode? */
  hostLma: boolean;
}

type Check = readonly [name: string, ok: (c: Ctx) => boolean];

const EXC_WITH_ERROR = new Set([8, 10, 11, 12, 13, 14, 17]);

/** §26.2.1: checks on VM-execution, VM-exit and VM-entry control fields (failure: VMfailValid 7). */
const CONTROL_CHECKS: readonly Check[] = [
  [
    'pin-based controls within IA32_VMX_TRUE_PINBASED_CTLS',
    (c) => VmxCaps.ok(c.caps.pin, c.pin, c.caps.truePin),
  ],
  [
    'primary processor-based controls within IA32_VMX_TRUE_PROCBASED_CTLS',
    (c) => VmxCaps.ok(c.caps.proc, c.proc, c.caps.trueProc),
  ],
  [
    'secondary processor-based controls within IA32_VMX_PROCBASED_CTLS2',
    (c) => VmxCaps.ok(c.caps.proc2, c.proc2),
  ],
  ['CR3-target count at most 4', (c) => c.v.get32(F.CR3_TARGET_COUNT) <= 4],
  [
    'I/O-bitmap addresses aligned and within the physical-address width',
    (c) =>
      !(c.proc & B.CPU_USE_IO_BITMAPS) ||
      (aligned(c.v.getU(F.IO_BITMAP_A), 4096) && aligned(c.v.getU(F.IO_BITMAP_B), 4096)),
  ],
  [
    'MSR-bitmap address aligned and within the physical-address width',
    (c) => !(c.proc & B.CPU_USE_MSR_BITMAPS) || aligned(c.v.getU(F.MSR_BITMAP), 4096),
  ],
  [
    'use TPR shadow: virtual-APIC address aligned and within the physical-address width',
    (c) => !(c.proc & B.CPU_TPR_SHADOW) || aligned(c.v.getU(F.VIRTUAL_APIC_PAGE_ADDR), 4096),
  ],
  [
    'use TPR shadow: TPR threshold bits 31:4 zero',
    (c) => !(c.proc & B.CPU_TPR_SHADOW) || (c.v.get32(F.TPR_THRESHOLD) & ~0xf) === 0,
  ],
  [
    'use TPR shadow: TPR threshold[3:0] not above VTPR[7:4]',
    (c) =>
      !(c.proc & B.CPU_TPR_SHADOW) ||
      (c.v.get32(F.TPR_THRESHOLD) & 0xf) <=
        ((c.mem.read8(c.v.getU(F.VIRTUAL_APIC_PAGE_ADDR) + 0x80) >> 4) & 0xf),
  ],
  ['virtual NMIs require NMI exiting', (c) => !!(c.pin & B.PIN_NMI) || !(c.pin & B.PIN_VIRTUAL_NMIS)],
  [
    'NMI-window exiting requires virtual NMIs',
    (c) => !!(c.pin & B.PIN_VIRTUAL_NMIS) || !(c.proc & B.CPU_NMI_WINDOW),
  ],
  [
    'enable VPID requires a non-zero VPID',
    (c) => !(c.proc2 & B.SEC_VPID) || (c.v.get32(F.VIRTUAL_PROCESSOR_ID) & 0xffff) !== 0,
  ],
  [
    'EPT pointer valid (memory type, walk length, A/D, reserved bits)',
    (c) => !(c.proc2 & B.SEC_EPT) || eptpValid(c.v.getU(F.EPT_POINTER), c.caps),
  ],
  [
    'unrestricted guest requires enable EPT',
    (c) => !(c.proc2 & B.SEC_UNRESTRICTED) || !!(c.proc2 & B.SEC_EPT),
  ],
  ['VM-function controls valid (EPTP switching needs EPT and an aligned EPTP list)', (c) => vmfuncValid(c)],
  [
    'VMREAD/VMWRITE-bitmap addresses aligned',
    (c) =>
      !(c.proc2 & B.SEC_SHADOW_VMCS) ||
      (aligned(c.v.getU(F.VMREAD_BITMAP), 4096) && aligned(c.v.getU(F.VMWRITE_BITMAP), 4096)),
  ],
  [
    'VM-exit controls within IA32_VMX_TRUE_EXIT_CTLS',
    (c) => VmxCaps.ok(c.caps.exit, c.exit, c.caps.trueExit),
  ],
  [
    'save VMX-preemption timer requires activating it',
    (c) => !!(c.pin & B.PIN_PREEMPTION_TIMER) || !(c.exit & B.EXIT_SAVE_PREEMPT),
  ],
  [
    'VM-exit MSR-store address 16-byte aligned',
    (c) => listOk(c.v.getU(F.VM_EXIT_MSR_STORE_ADDR), c.v.get32(F.VM_EXIT_MSR_STORE_COUNT)),
  ],
  [
    'VM-exit MSR-load address 16-byte aligned',
    (c) => listOk(c.v.getU(F.VM_EXIT_MSR_LOAD_ADDR), c.v.get32(F.VM_EXIT_MSR_LOAD_COUNT)),
  ],
  [
    'VM-entry controls within IA32_VMX_TRUE_ENTRY_CTLS',
    (c) => VmxCaps.ok(c.caps.entry, c.entry, c.caps.trueEntry),
  ],
  ['VM-entry interruption-information field valid', (c) => injectionValid(c)],
  [
    'VM-entry MSR-load area 16-byte aligned and within the physical-address width',
    (c) => listOk(c.v.getU(F.VM_ENTRY_MSR_LOAD_ADDR), c.v.get32(F.VM_ENTRY_MSR_LOAD_COUNT)),
  ],
  [
    'entry to SMM and deactivate dual-monitor treatment are 0 outside SMM',
    (c) => !(c.entry & (B.ENTRY_SMM | B.ENTRY_DEACT_DUAL)),
  ],
];

/** An MSR list: 16-byte aligned, and its last byte within MAXPHYADDR (§26.2.1.2, §26.2.1.3). */
function listOk(addr: number, count: number): boolean {
  if (count === 0) return true;
  return addr % 16 === 0 && physOk(addr + 16 * count - 1);
}

/**
 * EPTP checks (SDM 3C §26.2.1.1): a memory type and a walk length IA32_VMX_EPT_VPID_CAP
 * reports (bit 8 UC, bit 14 WB; bit 6 a 4-level walk), bit 6 (accessed/dirty flags) only if
 * bit 21 says they are supported, bits 11:7 and above the physical-address width clear.
 */
function eptpValid(eptp: number, caps: VmxCaps): boolean {
  const cap = caps.msrs.get(0x48c) ?? 0n;
  const has = (bit: number): boolean => ((cap >> BigInt(bit)) & 1n) !== 0n;
  const mt = eptp % 8;
  const walk = Math.floor(eptp / 8) % 8;
  if (!((mt === 0 && has(8)) || (mt === 6 && has(14)))) return false;
  if (walk !== 3 || !has(6)) return false;
  if (Math.floor(eptp / 64) % 2 === 1 && !has(21)) return false;
  if (Math.floor(eptp / 128) % 32 !== 0) return false; // bits 11:7 reserved
  return physOk(eptp);
}
function vmfuncValid(c: Ctx): boolean {
  if (!(c.proc2 & B.SEC_VMFUNC)) return true;
  const ctl = c.v.getU(F.VM_FUNCTION_CONTROL);
  if (ctl & ~1 || ctl >= TWO32) return false;
  if (ctl & 1) return !!(c.proc2 & B.SEC_EPT) && aligned(c.v.getU(F.EPTP_LIST_ADDRESS), 4096);
  return true;
}
function injectionValid(c: Ctx): boolean {
  const info = c.v.get32(F.VM_ENTRY_INTR_INFO_FIELD);
  if (!(info & B.INTR_VALID)) return true;
  const vector = info & 0xff,
    type = (info >> 8) & 7;
  if (type === 1) return false; // reserved
  if (type === B.INTR_OTHER) return !!(c.proc & B.CPU_MTF) && vector === 0;
  if (type === B.INTR_NMI && vector !== 2) return false;
  if (type === B.INTR_HW_EXC && vector > 31) return false;
  if (info & 0x7ffff000) return false; // bits 30:12 reserved
  const errValid = (info & B.INTR_ERRCODE_VALID) !== 0;
  const unrestrictedRealMode = !!(c.proc2 & B.SEC_UNRESTRICTED) && !(c.v.get32(F.GUEST_CR0) & 1);
  const wantsErr = type === B.INTR_HW_EXC && EXC_WITH_ERROR.has(vector) && !unrestrictedRealMode;
  if (errValid !== wantsErr) return false;
  if (errValid && c.v.get32(F.VM_ENTRY_EXCEPTION_ERROR_CODE) & 0xffff8000) return false;
  if (type === B.INTR_SW_INT || type === B.INTR_SW_EXC || type === B.INTR_PRIV_SW_EXC) {
    const len = c.v.get32(F.VM_ENTRY_INSTRUCTION_LEN);
    if (len > 15 || len === 0) return false;
  }
  return true;
}

/** §26.2.2-26.2.4: host-state checks (failure: VMfailValid 8). */
const HOST_CHECKS: readonly Check[] = [
  [
    'host CR0 fixed bits',
    (c) => fixed(c.v.get32(F.HOST_CR0), c.caps.cr0Fixed0, c.caps.cr0Fixed1) && c.v.getHi(F.HOST_CR0) === 0,
  ],
  [
    'host CR4 fixed bits',
    (c) => fixed(c.v.get32(F.HOST_CR4), c.caps.cr4Fixed0, c.caps.cr4Fixed1) && c.v.getHi(F.HOST_CR4) === 0,
  ],
  ['host CR3 within the physical-address width', (c) => physOk(c.v.getU(F.HOST_CR3))],
  [
    'host SYSENTER_ESP/EIP canonical',
    (c) => canonical(c.v.getNum(F.HOST_IA32_SYSENTER_ESP)) && canonical(c.v.getNum(F.HOST_IA32_SYSENTER_EIP)),
  ],
  ['host PAT valid', (c) => !(c.exit & B.EXIT_LOAD_PAT) || patValid(c.v, F.HOST_IA32_PAT)],
  [
    'host EFER valid and LMA/LME match the host address-space size',
    (c) =>
      !(c.exit & B.EXIT_LOAD_EFER) ||
      eferValid(
        c.v.get32(F.HOST_IA32_EFER),
        c.v.getHi(F.HOST_IA32_EFER),
        !!(c.exit & B.EXIT_HOST_ADDR_SPACE),
        true,
      ),
  ],
  [
    'host selectors have RPL 0 and TI 0',
    (c) =>
      [
        F.HOST_ES_SELECTOR,
        F.HOST_CS_SELECTOR,
        F.HOST_SS_SELECTOR,
        F.HOST_DS_SELECTOR,
        F.HOST_FS_SELECTOR,
        F.HOST_GS_SELECTOR,
        F.HOST_TR_SELECTOR,
      ].every((e) => (c.v.get32(e) & 7) === 0),
  ],
  ['host CS selector not null', (c) => (c.v.get32(F.HOST_CS_SELECTOR) & 0xffff) !== 0],
  ['host TR selector not null', (c) => (c.v.get32(F.HOST_TR_SELECTOR) & 0xffff) !== 0],
  [
    'host SS selector not null without a 64-bit host',
    (c) => !!(c.exit & B.EXIT_HOST_ADDR_SPACE) || (c.v.get32(F.HOST_SS_SELECTOR) & 0xffff) !== 0,
  ],
  [
    'host FS/GS/GDTR/IDTR/TR bases canonical',
    (c) =>
      [F.HOST_FS_BASE, F.HOST_GS_BASE, F.HOST_GDTR_BASE, F.HOST_IDTR_BASE, F.HOST_TR_BASE].every((e) =>
        canonical(c.v.getNum(e)),
      ),
  ],
  [
    'host address-space size matches IA-32e mode of the processor',
    (c) =>
      c.hostLma
        ? !!(c.exit & B.EXIT_HOST_ADDR_SPACE)
        : !(c.exit & B.EXIT_HOST_ADDR_SPACE) && !(c.entry & B.ENTRY_IA32E),
  ],
  [
    '64-bit host: CR4.PAE set and RIP canonical',
    (c) =>
      !(c.exit & B.EXIT_HOST_ADDR_SPACE) ||
      (!!(c.v.get32(F.HOST_CR4) & 0x20) && canonical(c.v.getNum(F.HOST_RIP))),
  ],
  [
    '32-bit host: RIP below 4 GiB and CR4.PCIDE clear',
    (c) =>
      !!(c.exit & B.EXIT_HOST_ADDR_SPACE) ||
      (c.v.getHi(F.HOST_RIP) === 0 && !(c.v.get32(F.HOST_CR4) & (1 << 17))),
  ],
];

function fixed(v: number, f0: number, f1: number): boolean {
  return (v & f0) === f0 >>> 0 || (v & f0) >>> 0 === f0 >>> 0 ? (v & ~f1) === 0 : false;
}
function patValid(v: Vmcs, enc: number): boolean {
  const lo = v.get32(enc),
    hi = v.getHi(enc) >>> 0;
  for (const w of [lo, hi])
    for (let k = 0; k < 4; k++) {
      const t = (w >>> (8 * k)) & 0xff;
      if (t === 2 || t === 3 || t > 7) return false;
    }
  return true;
}
function eferValid(lo: number, hi: number, lma: boolean, checkLme: boolean): boolean {
  if (hi !== 0 || lo & ~(1 | 0x100 | 0x400 | 0x800)) return false;
  if (!!(lo & 0x400) !== lma) return false;
  if (checkLme && !!(lo & 0x100) !== lma) return false;
  return true;
}

/** §26.3.1: guest-state checks (failure: VM-entry failure, exit reason 33). */
function guestChecks(c: Ctx): readonly Check[] {
  const v = c.v;
  const unrestricted = !!(c.proc2 & B.SEC_UNRESTRICTED);
  const ia32e = !!(c.entry & B.ENTRY_IA32E);
  const cr0 = v.get32(F.GUEST_CR0);
  const ar = (s: number): number => v.get32(GUEST_SEG_AR[s]);
  const sel = (s: number): number => v.get32(GUEST_SEG_SEL[s]) & 0xffff;
  const usable = (s: number): boolean => !(ar(s) & 0x10000);
  const rflags = v.getNum(F.GUEST_RFLAGS);
  const v86 = !!(rflags % 2 ** 18 >= 2 ** 17);
  const limitGOk = (s: number): boolean => {
    const lim = v.get32(GUEST_SEG_LIMIT[s]) >>> 0,
      g = !!(ar(s) & 0x8000);
    if ((lim & 0xfff) !== 0xfff && g) return false;
    if (lim > 0xfffff && !g) return false;
    return true;
  };
  const f0 = unrestricted ? c.caps.cr0Fixed0 & ~0x80000001 : c.caps.cr0Fixed0;
  const info = v.get32(F.VM_ENTRY_INTR_INFO_FIELD);
  const injType = info & B.INTR_VALID ? (info >> 8) & 7 : -1;
  const intr = v.get32(F.GUEST_INTERRUPTIBILITY_INFO);
  const act = v.get32(F.GUEST_ACTIVITY_STATE);
  return [
    ['guest CR0 fixed bits', () => fixed(cr0, f0 >>> 0, c.caps.cr0Fixed1) && v.getHi(F.GUEST_CR0) === 0],
    ['guest CR0.PG requires CR0.PE', () => !(cr0 & 0x80000000) || !!(cr0 & 1)],
    [
      'guest CR4 fixed bits',
      () => fixed(v.get32(F.GUEST_CR4), c.caps.cr4Fixed0, c.caps.cr4Fixed1) && v.getHi(F.GUEST_CR4) === 0,
    ],
    ['guest DR7 bits 63:32 zero', () => !(c.entry & B.ENTRY_LOAD_DEBUG) || v.getHi(F.GUEST_DR7) === 0],
    [
      'guest IA32_DEBUGCTL reserved bits zero',
      () =>
        !(c.entry & B.ENTRY_LOAD_DEBUG) ||
        (v.getHi(F.GUEST_IA32_DEBUGCTL) === 0 && (v.get32(F.GUEST_IA32_DEBUGCTL) & 0xffff003c) === 0),
    ],
    [
      'IA-32e mode guest requires CR0.PG and CR4.PAE',
      () => !ia32e || (!!(cr0 & 0x80000000) && !!(v.get32(F.GUEST_CR4) & 0x20)),
    ],
    ['guest CR4.PCIDE requires IA-32e mode guest', () => ia32e || !(v.get32(F.GUEST_CR4) & (1 << 17))],
    ['guest CR3 within the physical-address width', () => physOk(v.getU(F.GUEST_CR3))],
    [
      'guest SYSENTER_ESP/EIP canonical',
      () => canonical(v.getNum(F.GUEST_SYSENTER_ESP)) && canonical(v.getNum(F.GUEST_SYSENTER_EIP)),
    ],
    ['guest PAT valid', () => !(c.entry & B.ENTRY_LOAD_PAT) || patValid(v, F.GUEST_IA32_PAT)],
    [
      'guest EFER valid: LMA equals IA-32e mode guest, LME equals LMA when paging',
      () =>
        !(c.entry & B.ENTRY_LOAD_EFER) ||
        (eferValid(v.get32(F.GUEST_IA32_EFER), v.getHi(F.GUEST_IA32_EFER), ia32e, false) &&
          (!(cr0 & 0x80000000) || !!(v.get32(F.GUEST_IA32_EFER) & 0x100) === ia32e)),
    ],
    ['guest TR selector TI flag 0', () => !(sel(TR) & 4)],
    ['guest LDTR selector TI flag 0 when usable', () => !usable(LDTR) || !(sel(LDTR) & 4)],
    ['guest SS.RPL equals CS.RPL', () => unrestricted || v86 || (sel(SS) & 3) === (sel(CS) & 3)],
    [
      'guest TR, FS, GS bases canonical; LDTR base canonical when usable',
      () =>
        canonical(v.getNum(GUEST_SEG_BASE[TR])) &&
        canonical(v.getNum(GUEST_SEG_BASE[FS])) &&
        canonical(v.getNum(GUEST_SEG_BASE[GS])) &&
        (!usable(LDTR) || canonical(v.getNum(GUEST_SEG_BASE[LDTR]))),
    ],
    ['guest CS base bits 63:32 zero', () => v.getHi(GUEST_SEG_BASE[CS]) === 0],
    [
      'guest SS, DS, ES bases bits 63:32 zero when usable',
      () => [SS, DS, ES].every((s) => !usable(s) || v.getHi(GUEST_SEG_BASE[s]) === 0),
    ],
    [
      'guest CS type (accessed code, or read/write data with unrestricted guest)',
      () => [9, 11, 13, 15].includes(ar(CS) & 0xf) || (unrestricted && (ar(CS) & 0xf) === 3),
    ],
    ['guest SS type 3 or 7 when usable', () => !usable(SS) || [3, 7].includes(ar(SS) & 0xf)],
    [
      'guest DS/ES/FS/GS: accessed, and readable if code, when usable',
      () => [DS, ES, FS, GS].every((s) => !usable(s) || (!!(ar(s) & 1) && (!(ar(s) & 8) || !!(ar(s) & 2)))),
    ],
    [
      'guest CS/SS/DS/ES/FS/GS are code/data segments (S=1) when usable',
      () => [CS, SS, DS, ES, FS, GS].every((s) => (s !== CS && !usable(s)) || !!(ar(s) & 0x10)),
    ],
    [
      'guest CS DPL: 0 for data type, = SS.DPL if non-conforming, <= SS.DPL if conforming',
      () => {
        const t = ar(CS) & 0xf,
          d = (ar(CS) >> 5) & 3,
          sd = (ar(SS) >> 5) & 3;
        if (t === 3) return d === 0;
        if (t === 9 || t === 11) return d === sd;
        return d <= sd;
      },
    ],
    [
      'guest SS.DPL equals SS.RPL (not unrestricted); 0 if CS is a data segment or CR0.PE=0',
      () => {
        const sd = (ar(SS) >> 5) & 3;
        if (!unrestricted && sd !== (sel(SS) & 3)) return false;
        if (((ar(CS) & 0xf) === 3 || !(cr0 & 1)) && sd !== 0) return false;
        return true;
      },
    ],
    [
      'guest DS/ES/FS/GS DPL >= RPL for non-conforming usable segments',
      () =>
        unrestricted ||
        [DS, ES, FS, GS].every(
          (s) => !usable(s) || (ar(s) & 0xf) >= 12 || ((ar(s) >> 5) & 3) >= (sel(s) & 3),
        ),
    ],
    [
      'guest segments present when usable',
      () => [CS, SS, DS, ES, FS, GS].every((s) => (s !== CS && !usable(s)) || !!(ar(s) & 0x80)),
    ],
    [
      'guest access-rights reserved bits zero',
      () => [CS, SS, DS, ES, FS, GS, LDTR, TR].every((s) => !usable(s) || (ar(s) & 0xfffe0f00) === 0),
    ],
    [
      'guest segment limits consistent with granularity',
      () => [CS, SS, DS, ES, FS, GS].every((s) => (s !== CS && !usable(s)) || limitGOk(s)),
    ],
    [
      'guest CS.L and CS.D not both set in IA-32e mode',
      () => !ia32e || !(ar(CS) & 0x2000 && ar(CS) & 0x4000),
    ],
    [
      'guest TR: busy TSS type, S=0, present, usable, limit/G consistent',
      () => {
        const t = ar(TR) & 0xf;
        if (!(t === 11 || (!ia32e && t === 3))) return false;
        return !(ar(TR) & 0x10) && !!(ar(TR) & 0x80) && usable(TR) && limitGOk(TR);
      },
    ],
    [
      'guest LDTR (usable): type 2, S=0, present, limit/G consistent',
      () =>
        !usable(LDTR) ||
        ((ar(LDTR) & 0xf) === 2 && !(ar(LDTR) & 0x10) && !!(ar(LDTR) & 0x80) && limitGOk(LDTR)),
    ],
    [
      'guest GDTR/IDTR bases canonical and limits below 64 KiB',
      () =>
        canonical(v.getNum(F.GUEST_GDTR_BASE)) &&
        canonical(v.getNum(F.GUEST_IDTR_BASE)) &&
        v.get32(F.GUEST_GDTR_LIMIT) <= 0xffff &&
        v.get32(F.GUEST_IDTR_LIMIT) <= 0xffff,
    ],
    [
      'guest RIP: bits 63:32 zero unless 64-bit code, canonical if 64-bit',
      () => (ia32e && ar(CS) & 0x2000 ? canonical(v.getNum(F.GUEST_RIP)) : v.getHi(F.GUEST_RIP) === 0),
    ],
    [
      'guest RFLAGS reserved bits zero and bit 1 set',
      () =>
        v.getHi(F.GUEST_RFLAGS) === 0 &&
        (v.get32(F.GUEST_RFLAGS) & 0xffc08028) === 0 &&
        !!(v.get32(F.GUEST_RFLAGS) & 2),
    ],
    ['guest RFLAGS.VM clear in IA-32e mode or with CR0.PE clear', () => !v86 || (!ia32e && !!(cr0 & 1))],
    [
      'guest RFLAGS.IF set when injecting an external interrupt',
      () => injType !== B.INTR_EXT || !!(v.get32(F.GUEST_RFLAGS) & 0x200),
    ],
    ['guest activity state supported (active, HLT, shutdown, wait-for-SIPI)', () => act <= 3],
    ['guest activity state HLT requires SS.DPL 0', () => act !== B.ACT_HLT || ((ar(SS) >> 5) & 3) === 0],
    [
      'event injection allowed in the activity state (HLT: external interrupt, NMI, #DB, #MC, MTF; shutdown: NMI, #MC; wait-for-SIPI: none)',
      () => {
        if (injType < 0 || act === B.ACT_ACTIVE) return true;
        const vec = info & 0xff;
        if (act === B.ACT_WAIT_SIPI) return false;
        if (act === B.ACT_SHUTDOWN)
          return injType === B.INTR_NMI || (injType === B.INTR_HW_EXC && vec === 18);
        return (
          injType === B.INTR_EXT ||
          injType === B.INTR_NMI ||
          (injType === B.INTR_HW_EXC && (vec === 1 || vec === 18)) ||
          (injType === B.INTR_OTHER && vec === 0)
        );
      },
    ],
    [
      'guest activity state active when blocking by STI or MOV SS',
      () => !(intr & (B.BLOCK_STI | B.BLOCK_MOV_SS)) || act === B.ACT_ACTIVE,
    ],
    [
      // Bit 4 (enclave interruption) needs SGX, which this processor does not have (§26.3.1.5).
      'guest interruptibility reserved bits zero (31:5, and 4 without SGX); not both STI and MOV SS blocking',
      () => (intr & ~0xf) === 0 && (intr & 3) !== 3,
    ],
    [
      'guest blocking by STI requires RFLAGS.IF',
      () => !(intr & B.BLOCK_STI) || !!(v.get32(F.GUEST_RFLAGS) & 0x200),
    ],
    [
      'injecting an external interrupt requires no STI or MOV SS blocking',
      () => injType !== B.INTR_EXT || !(intr & 3),
    ],
    [
      'injecting an NMI requires no MOV SS blocking (and no virtual-NMI blocking)',
      () =>
        injType !== B.INTR_NMI ||
        (!(intr & B.BLOCK_MOV_SS) && (!(c.pin & B.PIN_VIRTUAL_NMIS) || !(intr & B.BLOCK_NMI))),
    ],
    ['guest blocking by SMI is 0 outside SMM', () => !(intr & B.BLOCK_SMI)],
    [
      'guest pending debug exception BS consistent with RFLAGS.TF when blocking by STI/MOV SS or in HLT',
      () => {
        if (!(intr & 3) && act !== B.ACT_HLT) return true;
        const tf = (v.get32(F.GUEST_RFLAGS) & 0x100) !== 0;
        const btf = (v.get32(F.GUEST_IA32_DEBUGCTL) & 2) !== 0;
        const bs = (v.get32(F.GUEST_PENDING_DBG_EXCEPTIONS) & 0x4000) !== 0;
        return bs === (tf && !btf);
      },
    ],
    [
      'guest pending debug exceptions reserved bits zero',
      () =>
        v.getHi(F.GUEST_PENDING_DBG_EXCEPTIONS) === 0 &&
        (v.get32(F.GUEST_PENDING_DBG_EXCEPTIONS) & ~0x1500f) === 0,
    ],
  ];
}

/** Run an ordered check list; returns the name of the first failing check, or ''. */
function firstFailure(checks: readonly Check[], c: Ctx): string {
  for (const [name, ok] of checks) if (!ok(c)) return name;
  return '';
}

/** The outcome of the checks of §26.2-26.3 on a VMCS. */
export type EntryCheckResult =
  | { kind: 'ok' }
  | { kind: 'vmfail'; error: number; check: string }
  | { kind: 'entry-failure'; reason: number; qualification: number; check: string };

function context(v: Vmcs, caps: VmxCaps, env: EntryEnv): Ctx {
  const proc = v.get32(F.CPU_BASED_VM_EXEC_CONTROL);
  return {
    v,
    mem: env,
    caps,
    pin: v.get32(F.PIN_BASED_VM_EXEC_CONTROL),
    proc,
    proc2: proc & B.CPU_SECONDARY ? v.get32(F.SECONDARY_VM_EXEC_CONTROL) : 0,
    exit: v.get32(F.VM_EXIT_CONTROLS),
    entry: v.get32(F.VM_ENTRY_CONTROLS),
    hostLma: env.hostLma,
  };
}

/**
 * Every check VM entry makes before loading guest state, in the SDM's order: controls
 * (VMfailValid 7), host state (VMfailValid 8), guest state (exit reason 33), the PDPTEs of a
 * PAE guest (qualification 2) and the VMCS link pointer (qualification 4). One
 * check list for the hardware and for software that emulates VMX (L0 checking vmcs12 with the
 * capabilities it gives its guest).
 */
export function checkVmEntry(v: Vmcs, caps: VmxCaps, env: EntryEnv): EntryCheckResult {
  const c = context(v, caps, env);
  let failed = firstFailure(CONTROL_CHECKS, c);
  if (failed) return { kind: 'vmfail', error: B.E.ENTRY_INVALID_CONTROLS, check: failed };
  failed = firstFailure(HOST_CHECKS, c);
  if (failed) return { kind: 'vmfail', error: B.E.ENTRY_INVALID_HOST_STATE, check: failed };
  failed = firstFailure(guestChecks(c), c);
  if (failed)
    return { kind: 'entry-failure', reason: B.R.INVALID_GUEST_STATE, qualification: 0, check: failed };
  // PDPTEs of a PAE guest (§26.3.1.6): under EPT those in the VMCS, otherwise the four the
  // guest's CR3 points to (bits 31:5), read from memory; a present entry with reserved bits set
  // is an entry failure with qualification 2.
  const cr0g = v.get32(F.GUEST_CR0),
    cr4g = v.get32(F.GUEST_CR4);
  if (cr0g & 0x80000000 && cr4g & 0x20 && !(c.entry & B.ENTRY_IA32E)) {
    const ept = (c.proc2 & B.SEC_EPT) !== 0;
    const table = (v.get32(F.GUEST_CR3) & 0xffffffe0) >>> 0;
    for (let k = 0; k < 4; k++) {
      const lo = ept ? v.get32(F.GUEST_PDPTE0 + 2 * k) : env.read32(table + 8 * k),
        hi = (ept ? v.getHi(F.GUEST_PDPTE0 + 2 * k) : env.read32(table + 8 * k + 4)) >>> 0;
      if (lo & 1 && (lo & 0x1e6 || hi >= 2 ** (MAXPHYADDR - 32)))
        return {
          kind: 'entry-failure',
          reason: B.R.INVALID_GUEST_STATE,
          qualification: 2,
          check: `guest PDPTE${k} reserved bits`,
        };
    }
  }
  // VMCS link pointer (§26.3.1.5): all ones, or a valid VMCS of the right kind (qualification 4).
  const link = v.getU(F.VMCS_LINK_POINTER);
  if (!(v.get32(F.VMCS_LINK_POINTER) === 0xffffffff && v.getHi(F.VMCS_LINK_POINTER) === -1)) {
    const rev = aligned(link, 4096) ? env.read32(link) : 0;
    const shadowWanted = !!(c.proc2 & B.SEC_SHADOW_VMCS);
    if (
      !aligned(link, 4096) ||
      (rev & 0x7fffffff) !== VMCS_REVISION_ID ||
      !!(rev & 0x80000000) !== shadowWanted
    )
      return {
        kind: 'entry-failure',
        reason: B.R.INVALID_GUEST_STATE,
        qualification: 4,
        check: 'VMCS link pointer: aligned, valid revision and shadow indicator',
      };
  }
  return { kind: 'ok' };
}

/** The whole VM entry. On success the CPU is in non-root operation at the guest's RIP. */
export function vmEntry(u: VmxUnit, v: Vmcs, launch: boolean): void {
  const cpu = u.cpu;
  const env: EntryEnv = {
    read8: (pa) => cpu.mem.read8(pa),
    read32: (pa) => cpu.mem.read32(pa),
    hostLma: u.tsHost ? true : (cpu.efer & 0x400) !== 0,
  };
  const r = checkVmEntry(v, u.caps, env);
  if (r.kind !== 'ok') u.lastEntryCheck = r.check;
  if (r.kind === 'vmfail') return u.failValid(r.error);
  if (r.kind === 'entry-failure') return u.entryFailure(r.reason, r.qualification);
  const c = context(v, u.caps, env);
  u.lastEntryCheck = '';
  loadGuestState(u, v, c);
  // MSR-load list (§26.4): a failure is an entry failure with the 1-based index as qualification.
  const n = v.get32(F.VM_ENTRY_MSR_LOAD_COUNT);
  const addr = v.getU(F.VM_ENTRY_MSR_LOAD_ADDR);
  for (let k = 0; k < n; k++) {
    const e = addr + 16 * k;
    const idx = cpu.mem.read32(e) >>> 0;
    const val = (BigInt(cpu.mem.read32(e + 12) >>> 0) << 32n) | BigInt(cpu.mem.read32(e + 8) >>> 0);
    // Entries that may not be loaded (§26.4): reserved bits, FS/GS base, x2APIC MSRs, SMBASE, SMM_MONITOR_CTL.
    let ok =
      cpu.mem.read32(e + 4) === 0 &&
      idx !== 0xc0000100 &&
      idx !== 0xc0000101 &&
      idx >>> 8 !== 0x8 &&
      idx !== 0x9e &&
      idx !== 0x9b;
    if (ok) {
      try {
        writeMsr(cpu, idx, val);
      } catch (err) {
        if (err !== ABORT) throw err;
        cpu.excVector = -1;
        ok = false;
      }
    }
    if (!ok) {
      cpu.nonRoot = false;
      u.lastEntryCheck = `VM-entry MSR-load entry ${k + 1}`;
      return u.entryFailure(B.R.MSR_LOADING, k + 1);
    }
  }
  if (launch) v.launch = LAUNCH_LAUNCHED;
  startNonRoot(u, v, c);
}

function loadGuestState(u: VmxUnit, v: Vmcs, c: Ctx): void {
  const cpu = u.cpu;
  // CR0.ET, CD, NW and the reserved bits are not loaded from the guest-state area (§26.3.2.1).
  const keep = 0x10 | 0x60000000 | 0x1ff80000 | 0x20000 | 0xffc0;
  cpu.cr0 = (v.get32(F.GUEST_CR0) & ~keep) | (cpu.cr0 & keep) | 0x10 | 0;
  cpu.cr3 = v.getU(F.GUEST_CR3);
  cpu.cr4 = v.get32(F.GUEST_CR4) | 0;
  if (c.entry & B.ENTRY_LOAD_DEBUG) cpu.dr[7] = v.get32(F.GUEST_DR7);
  cpu.msrs.set(MSR.SYSENTER_CS, BigInt(v.get32(F.GUEST_SYSENTER_CS)));
  cpu.msrs.set(MSR.SYSENTER_ESP, BigInt.asUintN(64, BigInt(v.getNum(F.GUEST_SYSENTER_ESP))));
  cpu.msrs.set(MSR.SYSENTER_EIP, BigInt.asUintN(64, BigInt(v.getNum(F.GUEST_SYSENTER_EIP))));
  if (c.entry & B.ENTRY_LOAD_PAT)
    cpu.msrs.set(
      MSR.PAT,
      BigInt.asUintN(64, (BigInt(v.getHi(F.GUEST_IA32_PAT)) << 32n) | BigInt(v.get32(F.GUEST_IA32_PAT))),
    );
  const ia32e = !!(c.entry & B.ENTRY_IA32E);
  if (c.entry & B.ENTRY_LOAD_EFER) cpu.efer = v.get32(F.GUEST_IA32_EFER) & 0xd01;
  else {
    // §26.4.1.1: LMA = IA-32e mode guest; LME = LMA when CR0.PG is set.
    cpu.efer = (cpu.efer & ~0x500) | (ia32e ? 0x400 : 0) | (ia32e && cpu.cr0 & 0x80000000 ? 0x100 : 0);
  }
  for (let s = 0; s < 8; s++) {
    cpu.segSel[s] = v.get32(GUEST_SEG_SEL[s]) & 0xffff;
    cpu.segBase[s] =
      s === CS || s === SS || s === DS || s === ES
        ? v.getU(GUEST_SEG_BASE[s]) % TWO32
        : v.getNum(GUEST_SEG_BASE[s]);
    cpu.segLimit[s] = v.get32(GUEST_SEG_LIMIT[s]);
    cpu.segAttr[s] = v.get32(GUEST_SEG_AR[s]) & 0x1f0ff;
  }
  cpu.gdtrBase = v.getNum(F.GUEST_GDTR_BASE);
  cpu.gdtrLimit = v.get32(F.GUEST_GDTR_LIMIT) & 0xffff;
  cpu.idtrBase = v.getNum(F.GUEST_IDTR_BASE);
  cpu.idtrLimit = v.get32(F.GUEST_IDTR_LIMIT) & 0xffff;
  const rsp = v.getNum(F.GUEST_RSP);
  cpu.rlo[4] = rsp | 0;
  cpu.rhi[4] = Math.floor(rsp / TWO32) | 0;
  cpu.setFlags(v.get32(F.GUEST_RFLAGS));
  const ripCsL = ia32e && cpu.segAttr[CS] & 0x2000;
  cpu.rip = ripCsL ? v.getNum(F.GUEST_RIP) : v.get32(F.GUEST_RIP);
  const intr = v.get32(F.GUEST_INTERRUPTIBILITY_INFO);
  // Blocking by STI/MOV SS covers the guest's first instruction. The step loop counts the
  // shadow down after each instruction, VMLAUNCH/VMRESUME included when the host is x86 code;
  // a TypeScript host's entry is no instruction of the loop, so one step less.
  cpu.intShadow = intr & 3 ? (u.tsHost ? 1 : 2) : 0;
  cpu.movSsShadow = (intr & B.BLOCK_MOV_SS) !== 0;
  if (c.pin & B.PIN_VIRTUAL_NMIS) u.virtualNmiBlocked = (intr & B.BLOCK_NMI) !== 0;
  else cpu.nmiBlocked = (intr & B.BLOCK_NMI) !== 0;
  const act = v.get32(F.GUEST_ACTIVITY_STATE);
  cpu.halted = act === B.ACT_HLT;
  cpu.waitForSipi = act === B.ACT_WAIT_SIPI;
  cpu.shutdownActivity = act === B.ACT_SHUTDOWN;
  cpu.updateMode();
}

function startNonRoot(u: VmxUnit, v: Vmcs, c: Ctx): void {
  const cpu = u.cpu;
  u.pin = c.pin;
  u.proc = c.proc;
  u.proc2 = c.proc2;
  u.exitCtls = c.exit;
  u.entryCtls = c.entry;
  u.exceptionBitmap = v.get32(F.EXCEPTION_BITMAP);
  cpu.nonRoot = true;
  cpu.mtf = c.proc & B.CPU_MTF ? 1 : 0;
  cpu.tscGuestOffset = c.proc & B.CPU_TSC_OFFSETTING ? v.getNum(F.TSC_OFFSET) : 0;
  cpu.eptActive = (c.proc2 & B.SEC_EPT) !== 0;
  cpu.walker.ept = cpu.eptActive
    ? (gpa, access, la, walk) => u.translateGpa(gpa, access, la, walk)
    : undefined;
  // Switch to the TLB context of (VPID, EPTP); without VPID, VPID-0 mappings are invalidated (§28.3.3.3).
  u.guestVpid = c.proc2 & B.SEC_VPID ? v.get32(F.VIRTUAL_PROCESSOR_ID) & 0xffff : 0;
  if (u.guestVpid === 0) u.tlbs.flushVpid0();
  cpu.setTlb(u.tlbs.get(u.guestVpid, cpu.eptActive ? v.getU(F.EPT_POINTER) : -1));
  cpu.updateMode();
  if (c.pin & B.PIN_PREEMPTION_TIMER) {
    const ticks = v.get32(F.VMX_PREEMPTION_TIMER_VALUE);
    u.preemptDeadline = cpu.cycles + ticks * 32;
  } else u.preemptDeadline = Infinity;
  cpu.irqCheck = true;
  // Event injection (§26.6): delivered through the guest IDT as if it occurred right after entry.
  const info = v.get32(F.VM_ENTRY_INTR_INFO_FIELD);
  v.set(F.VM_ENTRY_INTR_INFO_FIELD, info & ~B.INTR_VALID); // cleared on every entry (§24.8.3)
  // Pending debug exceptions (BS): a single-step #DB is delivered right after VM entry unless
  // an event is injected (SDM 3C §26.6.3).
  if (!(info & B.INTR_VALID) && v.get32(F.GUEST_PENDING_DBG_EXCEPTIONS) & 0x4000) cpu.pendingDbgBs = true;
  if (info & B.INTR_VALID) {
    const vector = info & 0xff,
      type = (info >> 8) & 7;
    const ec = info & B.INTR_ERRCODE_VALID ? v.get32(F.VM_ENTRY_EXCEPTION_ERROR_CODE) : -1;
    const evType = [EV_EXT, EV_EXT, EV_NMI, EV_HW_EXC, EV_SW_INT, EV_PRIV_SW, EV_SW_EXC, EV_EXT][type];
    cpu.halted = false;
    cpu.insnRip = cpu.rip;
    if (type === B.INTR_SW_INT || type === B.INTR_SW_EXC || type === B.INTR_PRIV_SW_EXC)
      cpu.rip += v.get32(F.VM_ENTRY_INSTRUCTION_LEN);
    if (type === B.INTR_NMI) {
      if (c.pin & B.PIN_VIRTUAL_NMIS) u.virtualNmiBlocked = true;
      else cpu.nmiBlocked = true;
    }
    // With the monitor trap flag, an MTF exit is pending right after the injected event is delivered (§25.5.2).
    if (c.proc & B.CPU_MTF) cpu.mtfPending = true;
    if (type !== B.INTR_OTHER) deliverEvent(cpu, vector, evType, ec);
  }
}
