/**
 * Trap and emulate L1's VMX instructions (SDM 3C §30.3, each instruction's "Operation"):
 * the #UD/#GP checks against L1's own view of its state, VMfailInvalid/VMfailValid with
 * the hardware's error numbers, and the effect on L1's vmcs12. VMLAUNCH/VMRESUME are in
 * entry.ts. With DRW the VMREAD/VMWRITE of shadowed fields never get here.
 */
import {
  VMCS_FIELD as F,
  VMX_BITS as B,
  fieldSupported,
  fieldReadOnly,
  readVmcsField,
  writeVmcsField,
  VMCS_REVISION_ID,
  type ExitRecord,
  type VmxHost,
} from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import type { NestedVcpu } from './state.js';
import { L0_COST } from '../cost.js';
import { decodeInfo, operandAddress, readL1, writeL1, type MemResult } from './operands.js';
import {
  skipInstruction,
  injectException,
  readGpr,
  writeGpr,
  guestMode,
  UD,
  GP,
} from '../vmm/guest-state.js';
import { loadVmcs12, storeVmcs12, LAUNCH_STATE_OFFSET } from './vmcs12.js';
import { l1Read32, l1Write32 } from './l1mem.js';
import { syncShadowToVmcs12, syncVmcs12ToShadow } from './drw.js';
import { invalidateEpt02 } from '../mmu/ept02.js';
import { l1Invvpid } from './spt02-exits.js';

const MAXPHYADDR = 40;
const FLAGS6 = 0x8d5n; // CF PF AF ZF SF OF

function setFlags(h: VmxHost, set: bigint): void {
  const f = h.vmread(F.GUEST_RFLAGS) as bigint;
  h.vmwrite(F.GUEST_RFLAGS, (f & ~FLAGS6) | set);
}
export function vmSucceed(h: VmxHost): void {
  setFlags(h, 0n);
}
export function vmFailInvalid(h: VmxHost): void {
  setFlags(h, 1n);
}
export function vmFailValid(n: NestedVcpu, h: VmxHost, error: number): void {
  if (!n.current) return vmFailInvalid(h);
  setFlags(h, 0x40n);
  writeVmcsField(n.current, F.VM_INSTRUCTION_ERROR, error, 0);
  if (n.shadowVmcs >= 0) {
    // DRW: L1 reads the error number from the shadow VMCS without an exit (vmcs01 is current here).
    const back = h.vmptrst();
    h.vmptrld(n.shadowVmcs);
    h.vmwrite(F.VM_INSTRUCTION_ERROR, error);
    h.vmptrld(back);
  }
}
/** VMfail(n): VMfailValid when there is a current VMCS, else VMfailInvalid. */
export function vmFail(n: NestedVcpu, h: VmxHost, error: number): void {
  if (n.current) vmFailValid(n, h, error);
  else vmFailInvalid(h);
}

/**
 * The checks every VMX instruction makes first (§30.3): #UD when L1 has CR4.VMXE clear, runs in
 * real, virtual-8086 or compatibility mode, or (except VMXON) is not in VMX operation; #GP(0) at
 * CPL > 0. Returns false when an exception was injected.
 */
export function vmxPreChecks(v: Vcpu, n: NestedVcpu, isVmxon: boolean): boolean {
  const h = v.host;
  const cr4Shadow = h.vmread(F.CR4_READ_SHADOW) as bigint;
  const cr0 = h.vmread(F.GUEST_CR0) as bigint;
  const rflags = h.vmread(F.GUEST_RFLAGS) as bigint;
  const lma = ((h.vmread(F.GUEST_IA32_EFER) as bigint) & 0x400n) !== 0n;
  if (!(cr4Shadow & 0x2000n) || !(cr0 & 1n) || rflags & 0x20000n || (lma && !guestMode(h).long)) {
    injectException(h, UD);
    return false;
  }
  if (!isVmxon && !n.vmxon) {
    injectException(h, UD);
    return false;
  }
  const cpl = Number(((h.vmread(F.GUEST_SS_AR_BYTES) as bigint) >> 5n) & 3n);
  if (cpl > 0) {
    injectException(h, GP, 0);
    return false;
  }
  return true;
}

function fault(h: VmxHost, r: Extract<MemResult, { ok: false }>): void {
  if (r.vector === 14) injectException(h, 14, r.errorCode, r.linear);
  else injectException(h, GP, 0);
}

/** The 64-bit memory operand of VMXON/VMCLEAR/VMPTRLD, or undefined after injecting the fault. */
function pointerOperand(v: Vcpu, e: ExitRecord): number | undefined {
  const h = v.host;
  const la = operandAddress(h, e, decodeInfo(e.instructionInfo));
  h.charge(L0_COST.guestMemOperand);
  const r = readL1(v, la, 8);
  if (!r.ok) {
    fault(h, r);
    return undefined;
  }
  return Number(r.value > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(2 ** 60) : r.value);
}
const validAddr = (pa: number): boolean => pa % 4096 === 0 && pa >= 0 && pa < 2 ** MAXPHYADDR;

/** Make `gpa` the current vmcs12 (writing the previous one back). */
function makeCurrent(v: Vcpu, n: NestedVcpu, gpa: number): void {
  if (n.current?.addr === gpa) return;
  putCurrent(v, n);
  n.current = loadVmcs12(v.vm, gpa);
  n.allDirty = true;
  if (n.opts.drw) syncVmcs12ToShadow(v, n);
}
/** Write the current vmcs12 back to L1 memory and forget it (VMCLEAR, VMXOFF, VMPTRLD of another). */
export function putCurrent(v: Vcpu, n: NestedVcpu): void {
  if (!n.current) return;
  if (n.opts.drw) syncShadowToVmcs12(v, n);
  storeVmcs12(v.vm, n.current);
  n.current = undefined;
  if (n.opts.drw) syncVmcs12ToShadow(v, n); // unlinks the shadow: L1's VMREAD now fails as it should
}

type Emulate = (v: Vcpu, n: NestedVcpu, e: ExitRecord) => boolean;

const vmxon: Emulate = (v, n, e) => {
  const h = v.host;
  if (n.vmxon) {
    vmFail(n, h, B.E.VMXON_IN_ROOT);
    return true;
  }
  // CR0/CR4 must respect IA32_VMX_CR0/CR4_FIXED0/1 in L1's view (§23.8, VMXON #GP).
  const cr0 = (h.vmread(F.CR0_READ_SHADOW) as bigint) & (h.vmread(F.CR0_GUEST_HOST_MASK) as bigint);
  const cr0v = cr0 | ((h.vmread(F.GUEST_CR0) as bigint) & ~(h.vmread(F.CR0_GUEST_HOST_MASK) as bigint));
  const fixed0 = BigInt(n.caps.cr0Fixed0 >>> 0);
  if ((cr0v & fixed0) !== fixed0) {
    injectException(h, GP, 0);
    return false;
  }
  const pa = pointerOperand(v, e);
  if (pa === undefined) return false;
  if (!validAddr(pa) || (l1Read32(v.vm, pa) & 0x7fffffff) !== VMCS_REVISION_ID) {
    vmFailInvalid(h);
    return true;
  }
  n.vmxon = true;
  n.vmxonPtr = pa;
  n.current = undefined;
  vmSucceed(h);
  return true;
};

const vmxoff: Emulate = (v, n) => {
  putCurrent(v, n);
  n.vmxon = false;
  n.vmxonPtr = -1;
  invalidateEpt02(v, undefined);
  vmSucceed(v.host);
  return true;
};

const vmclear: Emulate = (v, n, e) => {
  const h = v.host;
  const pa = pointerOperand(v, e);
  if (pa === undefined) return false;
  if (!validAddr(pa)) vmFail(n, h, B.E.VMCLEAR_INVALID_ADDR);
  else if (pa === n.vmxonPtr) vmFail(n, h, B.E.VMCLEAR_VMXON_PTR);
  else {
    if (n.current?.addr === pa) {
      n.current.launch = 0;
      putCurrent(v, n);
    } else l1Write32(v.vm, pa + LAUNCH_STATE_OFFSET, 0);
    if (n.builtFrom === pa) n.builtFrom = -1;
    vmSucceed(h);
  }
  return true;
};

const vmptrld: Emulate = (v, n, e) => {
  const h = v.host;
  const pa = pointerOperand(v, e);
  if (pa === undefined) return false;
  if (!validAddr(pa)) vmFail(n, h, B.E.VMPTRLD_INVALID_ADDR);
  else if (pa === n.vmxonPtr) vmFail(n, h, B.E.VMPTRLD_VMXON_PTR);
  else if (l1Read32(v.vm, pa) >>> 0 !== VMCS_REVISION_ID)
    // Not our revision, or the shadow-VMCS indicator set (L1 is offered no VMCS shadowing).
    vmFail(n, h, B.E.VMPTRLD_BAD_REVISION);
  else {
    makeCurrent(v, n, pa);
    vmSucceed(h);
  }
  return true;
};

const vmptrst: Emulate = (v, n, e) => {
  const h = v.host;
  const la = operandAddress(h, e, decodeInfo(e.instructionInfo));
  h.charge(L0_COST.guestMemOperand);
  const r = writeL1(v, la, 8, n.current ? BigInt(n.current.addr) : 0xffffffffffffffffn);
  if (!r.ok) {
    fault(h, r);
    return false;
  }
  vmSucceed(h);
  return true;
};

/**
 * The field encoding of VMREAD/VMWRITE (register operand 2): outside 64-bit mode its low 32
 * bits; in 64-bit mode all 64, and an encoding with bits 63:32 set names no field (SDM 3C
 * §30.3 VMREAD: "unsupported VMCS component"), returned as -1.
 */
function fieldEncoding(h: VmxHost, reg: number): number {
  const r = readGpr(h, reg);
  if (guestMode(h).long && r >> 32n !== 0n) return -1;
  return Number(r & 0xffffffffn);
}

const vmread: Emulate = (v, n, e) => {
  const h = v.host;
  const i = decodeInfo(e.instructionInfo);
  if (!n.current) {
    vmFailInvalid(h);
    return true;
  }
  const enc = fieldEncoding(h, i.reg2);
  if (!fieldSupported(n.caps.fields, enc)) {
    vmFailValid(n, h, B.E.VMRW_UNSUPPORTED_FIELD);
    return true;
  }
  const [lo, hi] = readVmcsField(n.current, enc);
  const value = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  const long = guestMode(h).long;
  if (i.isReg) writeGpr(h, i.reg1, long ? value : value & 0xffffffffn);
  else {
    h.charge(L0_COST.guestMemOperand);
    const r = writeL1(v, operandAddress(h, e, i), long ? 8 : 4, value);
    if (!r.ok) {
      fault(h, r);
      return false;
    }
  }
  vmSucceed(h);
  return true;
};

const vmwrite: Emulate = (v, n, e) => {
  const h = v.host;
  const i = decodeInfo(e.instructionInfo);
  const long = guestMode(h).long;
  let value: bigint;
  if (i.isReg) value = readGpr(h, i.reg1);
  else {
    h.charge(L0_COST.guestMemOperand);
    const r = readL1(v, operandAddress(h, e, i), long ? 8 : 4);
    if (!r.ok) {
      fault(h, r);
      return false;
    }
    value = r.value;
  }
  if (!long) value &= 0xffffffffn;
  if (!n.current) {
    vmFailInvalid(h);
    return true;
  }
  const enc = fieldEncoding(h, i.reg2);
  if (!fieldSupported(n.caps.fields, enc)) vmFailValid(n, h, B.E.VMRW_UNSUPPORTED_FIELD);
  else if (fieldReadOnly(enc) && !n.caps.vmwriteAnyField) vmFailValid(n, h, B.E.VMWRITE_READ_ONLY);
  else {
    writeVmcsField(n.current, enc, Number(value & 0xffffffffn) | 0, Number(value >> 32n) | 0);
    n.markDirty(enc);
    vmSucceed(h);
  }
  return true;
};

/** INVEPT/INVVPID: type in a register, a 128-bit descriptor in memory (§30.3). */
function descriptor(v: Vcpu, e: ExitRecord): { type: number; lo: bigint; hi: bigint } | undefined {
  const h = v.host;
  const i = decodeInfo(e.instructionInfo);
  const type = Number(readGpr(h, i.reg2) & (guestMode(h).long ? 0xffffffffffffffffn : 0xffffffffn));
  const la = operandAddress(h, e, i);
  h.charge(L0_COST.guestMemOperand);
  const lo = readL1(v, la, 8);
  if (!lo.ok) return (fault(h, lo), undefined);
  const hi = readL1(v, la + 8n, 8);
  if (!hi.ok) return (fault(h, hi), undefined);
  return { type, lo: lo.value, hi: hi.value };
}

const invept: Emulate = (v, n, e) => {
  const h = v.host;
  if (!(n.caps.proc2.may1 & B.SEC_EPT)) {
    injectException(h, UD);
    return false;
  }
  const d = descriptor(v, e);
  if (!d) return false;
  const cap = n.caps.msrs.get(0x48c) ?? 0n;
  const supported = d.type === 1 ? (cap >> 25n) & 1n : d.type === 2 ? (cap >> 26n) & 1n : 0n;
  if (!supported) {
    vmFail(n, h, B.E.INVEPT_INVVPID_INVALID_OPERAND);
    return true;
  }
  invalidateEpt02(v, d.type === 1 ? Number(d.lo & ~0xfffn) : undefined);
  vmSucceed(h);
  return true;
};

const invvpid: Emulate = (v, n, e) => {
  const h = v.host;
  if (!(n.caps.proc2.may1 & B.SEC_VPID)) {
    injectException(h, UD);
    return false;
  }
  const d = descriptor(v, e);
  if (!d) return false;
  const vpid = Number(d.lo & 0xffffn);
  const cap = (n.caps.msrs.get(0x48c) ?? 0n) >> 32n;
  const supported = d.type <= 3 && ((cap >> BigInt(8 + d.type)) & 1n) === 1n;
  const canonical = d.hi < 0x800000000000n || d.hi >= 0xffff800000000000n;
  if (
    !supported ||
    (d.lo & ~0xffffn) !== 0n ||
    (d.type !== 2 && vpid === 0) ||
    (d.type === 0 && !canonical)
  ) {
    vmFail(n, h, B.E.INVEPT_INVVPID_INVALID_OPERAND);
    return true;
  }
  // Every VPID of L1 maps to vpid02: flushing all of vpid02 is a superset, which the SDM allows.
  if (vpid !== 0 || d.type === 2) h.invvpid(1, n.vpid02);
  l1Invvpid(v, n); // shadow-on-shadow: a flush point of spt02 (spt02-exits.ts)
  vmSucceed(h);
  return true;
};

/** VMCALL in VMX root operation fails (§30.3 VMCALL: VMfail "VMCALL executed in VMX root operation"). */
const vmcall: Emulate = (v, n) => {
  vmFail(n, v.host, B.E.VMCALL_IN_ROOT);
  return true;
};

export const VMX_EMULATORS: Partial<Record<number, Emulate>> = {
  [B.R.VMXON]: vmxon,
  [B.R.VMXOFF]: vmxoff,
  [B.R.VMCLEAR]: vmclear,
  [B.R.VMPTRLD]: vmptrld,
  [B.R.VMPTRST]: vmptrst,
  [B.R.VMREAD]: vmread,
  [B.R.VMWRITE]: vmwrite,
  [B.R.INVEPT]: invept,
  [B.R.INVVPID]: invvpid,
  [B.R.VMCALL]: vmcall,
};

/** Emulate one VMX instruction of L1 (not VMLAUNCH/VMRESUME); RIP advances unless it faulted. */
export function emulateVmxInstruction(v: Vcpu, n: NestedVcpu, e: ExitRecord): void {
  const h = v.host;
  h.charge(L0_COST.vmxInsn);
  if (!vmxPreChecks(v, n, e.reason === B.R.VMXON)) return;
  const f = VMX_EMULATORS[e.reason];
  if (!f) return injectException(h, UD);
  if (f(v, n, e)) skipInstruction(h, e.instructionLength);
}
