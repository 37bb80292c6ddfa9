/**
 * The VMX instructions (SDM 3C chapter 30): VMXON, VMXOFF, VMCLEAR, VMPTRLD,
 * VMPTRST, VMREAD, VMWRITE, VMLAUNCH, VMRESUME, INVEPT, INVVPID, VMCALL, VMFUNC,
 * with their #UD/#GP conditions, VM exits in non-root operation, and the
 * VMsucceed / VMfailInvalid / VMfailValid outcomes.
 */
import type { OpcodeEntry } from '../../spec/opcodes.js';
import type { Cpu } from '../cpu/cpu.js';
import type { Handler, Insn } from '../cpu/insn.js';
import { UD, Mode } from '../cpu/regs.js';
import { MSR } from '../../spec/msr.js';
import { MAXPHYADDR } from '../mmu/paging.js';
import { VMCS_REVISION_ID } from './caps.js';
import { F } from './f.js';
import type { Vmcs } from './vmcs.js';
import * as B from './bits.js';
import { instructionInfo } from './intercepts.js';

const TWO32 = 4294967296;

/** Read the 64-bit memory operand as an unsigned physical address (exact below 2^53). */
function m64(cpu: Cpu, i: Insn): number {
  if (!i.mem) cpu.fault(UD);
  const lo = cpu.rd64(cpu.memLin(i, 8, false));
  return (cpu.hi >>> 0) * TWO32 + lo;
}

const vmxon: Handler = (cpu, i) => {
  const u = cpu.vmx;
  if (!(cpu.cr4 & 0x2000) || !i.mem) cpu.fault(UD);
  if (cpu.mode === Mode.Real || cpu.mode === Mode.Compat16 || cpu.mode === Mode.Compat32) cpu.fault(UD);
  if (cpu.nonRoot) u.exit(B.R.VMXON, i.disp, i.len, { instructionInfo: instructionInfo(i) });
  if (cpu.cpl > 0) cpu.gp(0);
  if (u.on) return u.fail(B.E.VMXON_IN_ROOT);
  // CR0/CR4 fixed bits and IA32_FEATURE_CONTROL (lock + VMX outside SMX) (§23.7, §23.8).
  const c = u.caps;
  if ((cpu.cr0 & c.cr0Fixed0) !== (c.cr0Fixed0 | 0) || cpu.cr0 & ~c.cr0Fixed1) cpu.gp(0);
  if ((cpu.cr4 & c.cr4Fixed0) !== c.cr4Fixed0 || cpu.cr4 & ~c.cr4Fixed1) cpu.gp(0);
  const fc = cpu.msrs.get(MSR.FEATURE_CONTROL) ?? 0n;
  if ((fc & 5n) !== 5n) cpu.gp(0);
  const pa = m64(cpu, i);
  if (pa % 4096 !== 0 || pa >= 2 ** MAXPHYADDR) return u.failInvalid();
  const rev = cpu.mem.read32(pa);
  if ((rev & 0x7fffffff) !== VMCS_REVISION_ID || rev & 0x80000000) return u.failInvalid();
  u.on = true;
  u.vmxonPtr = pa;
  u.current = undefined;
  u.succeed();
};

const vmxoff: Handler = (cpu, i) => {
  const u = cpu.vmx;
  u.checkVmxInstruction(B.R.VMXOFF, i.len, true, instructionInfo(i), i.mem ? i.disp : 0);
  // Leaving VMX operation: write back the VMCSs the processor caches (software should have VMCLEARed them).
  for (const v of u.cache.values()) v.store(cpu.mem);
  u.cache.clear();
  u.on = false;
  u.current = undefined;
  u.vmxonPtr = -1;
  u.succeed();
  // An INIT held during VMX operation is recognized once it ends (SDM 3C §23.8).
  if (cpu.initPending) {
    cpu.initPending = false;
    cpu.pendingInit?.();
  }
};

const vmclear: Handler = (cpu, i) => {
  const u = cpu.vmx;
  u.checkVmxInstruction(B.R.VMCLEAR, i.len, true, instructionInfo(i), i.mem ? i.disp : 0);
  const pa = m64(cpu, i);
  if (!u.validAddr(pa)) return u.fail(B.E.VMCLEAR_INVALID_ADDR);
  if (pa === u.vmxonPtr) return u.fail(B.E.VMCLEAR_VMXON_PTR);
  u.clear(pa);
  u.succeed();
};

const vmptrld: Handler = (cpu, i) => {
  const u = cpu.vmx;
  u.checkVmxInstruction(B.R.VMPTRLD, i.len, true, instructionInfo(i), i.mem ? i.disp : 0);
  const pa = m64(cpu, i);
  const err = u.load(pa);
  if (err) return u.fail(err);
  u.succeed();
};

const vmptrst: Handler = (cpu, i) => {
  const u = cpu.vmx;
  if (!i.mem) cpu.fault(UD);
  u.checkVmxInstruction(B.R.VMPTRST, i.len, true, instructionInfo(i), i.mem ? i.disp : 0);
  const p = u.current ? u.current.addr : -1;
  cpu.wr64(cpu.memLin(i, 8, true), p | 0, p < 0 ? -1 : Math.floor(p / TWO32) | 0);
  u.succeed();
};

/** VMREAD/VMWRITE operand size: 64 bits in 64-bit mode, else 32 (§30.3). */
const opSize = (cpu: Cpu): number => (cpu.mode === Mode.Long64 ? 8 : 4);

/** In non-root operation with VMCS shadowing, may the access use the shadow VMCS without an exit? */
function shadowAccess(cpu: Cpu, enc: number, write: boolean): boolean {
  const u = cpu.vmx;
  if (!(u.proc2 & B.SEC_SHADOW_VMCS)) return false;
  if (enc < 0 || enc > 0x7fff) return false;
  const bitmap = u.current!.getU(write ? F.VMWRITE_BITMAP : F.VMREAD_BITMAP);
  return (cpu.mem.read8(bitmap + (enc >> 3)) & (1 << (enc & 7))) === 0;
}
function shadowVmcs(cpu: Cpu): ReturnType<Cpu['vmx']['vmcsAt']> | undefined {
  const link = cpu.vmx.current!.getU(F.VMCS_LINK_POINTER);
  if (
    cpu.vmx.current!.get32(F.VMCS_LINK_POINTER) === 0xffffffff &&
    cpu.vmx.current!.getHi(F.VMCS_LINK_POINTER) === -1
  )
    return undefined;
  return cpu.vmx.vmcsAt(link);
}

/**
 * What VMREAD and VMWRITE check first (SDM 3C §30.3): #UD outside VMX operation and in real or
 * compatibility mode; in non-root operation a VM exit unless VMCS shadowing serves the field,
 * whose VMCS is then the one the link pointer names; #GP(0) at CPL > 0; VMfailInvalid without a
 * VMCS. Returns the encoding and the VMCS the instruction acts on, or undefined once it failed.
 */
function vmrwOperands(cpu: Cpu, i: Insn, write: boolean): { enc: number; target: Vmcs } | undefined {
  const u = cpu.vmx;
  if (!(cpu.cr4 & 0x2000) || !u.on) cpu.fault(UD);
  if (cpu.mode === Mode.Real || cpu.mode === Mode.Compat16 || cpu.mode === Mode.Compat32) cpu.fault(UD);
  const enc = opSize(cpu) === 8 && cpu.rhi[i.reg] !== 0 ? -1 : cpu.rlo[i.reg] >>> 0;
  let target = u.current;
  if (cpu.nonRoot) {
    if (!shadowAccess(cpu, enc, write))
      u.exit(write ? B.R.VMWRITE : B.R.VMREAD, i.mem ? i.disp : 0, i.len, {
        instructionInfo: instructionInfo(i),
      });
    target = shadowVmcs(cpu);
  }
  if (cpu.cpl > 0) cpu.gp(0);
  if (!target) {
    u.failInvalid(); // no current VMCS, or an invalid link pointer in non-root operation
    return undefined;
  }
  return { enc, target };
}

const vmread: Handler = (cpu, i) => {
  const u = cpu.vmx;
  const op = vmrwOperands(cpu, i, false);
  if (!op) return;
  if (!u.supportsField(op.enc)) return u.failValid(B.E.VMRW_UNSUPPORTED_FIELD);
  const size = opSize(cpu);
  const lo = u.readField(op.target, op.enc),
    hi = u.fieldHi;
  if (i.mem) cpu.wrN(cpu.memLin(i, size, true), size, lo, size === 8 ? hi : 0);
  else cpu.setReg(i.rm, size, lo, size === 8 ? hi : 0);
  u.succeed();
};

const vmwrite: Handler = (cpu, i) => {
  const u = cpu.vmx;
  const op = vmrwOperands(cpu, i, true);
  if (!op) return;
  const size = opSize(cpu);
  const lo = cpu.readE(i, size);
  const hi = size === 8 ? cpu.hi : 0;
  if (!u.supportsField(op.enc)) return u.failValid(B.E.VMRW_UNSUPPORTED_FIELD);
  // IA32_VMX_MISC[29] is set: VMWRITE may write the read-only exit-information fields.
  u.writeField(op.target, op.enc, lo, hi);
  u.succeed();
};

function launch(isLaunch: boolean): Handler {
  return (cpu, i) => {
    const u = cpu.vmx;
    u.checkVmxInstruction(
      isLaunch ? B.R.VMLAUNCH : B.R.VMRESUME,
      i.len,
      true,
      instructionInfo(i),
      i.mem ? i.disp : 0,
    );
    u.enter(isLaunch);
  };
}

/** INVEPT/INVVPID type from the register operand (64 bits in 64-bit mode). */
function invType(cpu: Cpu, i: Insn): number {
  if (cpu.mode === Mode.Long64 && cpu.rhi[i.reg] !== 0) return -1;
  return cpu.rlo[i.reg] >>> 0;
}

const invept: Handler = (cpu, i) => {
  const u = cpu.vmx;
  if (!u.caps.opts.ept || !i.mem) cpu.fault(UD);
  u.checkVmxInstruction(B.R.INVEPT, i.len, true, instructionInfo(i), i.mem ? i.disp : 0);
  const type = invType(cpu, i);
  const la = cpu.memLin(i, 16, false);
  const eptpLo = cpu.rd64(la);
  const eptp = (cpu.hi >>> 0) * TWO32 + eptpLo;
  if (type !== 1 && type !== 2) return u.fail(B.E.INVEPT_INVVPID_INVALID_OPERAND);
  // Combined mappings of one EPTP (single-context) or of all EPTPs (all-context), §28.3.3.1.
  u.tlbs.flushEptp(type === 1 ? eptp : undefined);
  u.succeed();
};

const invvpid: Handler = (cpu, i) => {
  const u = cpu.vmx;
  if (!u.caps.opts.vpid || !i.mem) cpu.fault(UD);
  u.checkVmxInstruction(B.R.INVVPID, i.len, true, instructionInfo(i), i.mem ? i.disp : 0);
  const type = invType(cpu, i);
  const la = cpu.memLin(i, 16, false);
  const d0 = cpu.rd64(la);
  const d0hi = cpu.hi;
  const addrLo = cpu.rd64(la + 8);
  const addr = cpu.hi * TWO32 + addrLo;
  const vpid = d0 & 0xffff;
  if (type > 3 || type < 0) return u.fail(B.E.INVEPT_INVVPID_INVALID_OPERAND);
  if ((d0 & 0xffff0000) !== 0 || d0hi !== 0) return u.fail(B.E.INVEPT_INVVPID_INVALID_OPERAND);
  if (type !== 2 && vpid === 0) return u.fail(B.E.INVEPT_INVVPID_INVALID_OPERAND);
  if (type === 0 && !(addr >= -(2 ** 47) && addr < 2 ** 47))
    return u.fail(B.E.INVEPT_INVVPID_INVALID_OPERAND);
  if (type === 0) u.tlbs.flushAddress(vpid, Math.floor(addr / 4096));
  else if (type === 2) u.tlbs.flushAllVpids();
  else u.tlbs.flushVpid(vpid, type === 3);
  u.succeed();
};

const vmcall: Handler = (cpu, i) => {
  const u = cpu.vmx;
  if (cpu.nonRoot) u.exit(B.R.VMCALL, 0, i.len);
  if (!u.on) cpu.fault(UD);
  if (cpu.mode === Mode.Real || cpu.mode === Mode.Compat16 || cpu.mode === Mode.Compat32) cpu.fault(UD);
  if (cpu.cpl > 0) cpu.gp(0);
  // No dual-monitor treatment: VMCALL in VMX root operation fails (§30.3 VMCALL, error 1).
  u.fail(B.E.VMCALL_IN_ROOT);
};

/** VMFUNC (§25.5.6): function 0 is EPTP switching; anything not enabled exits. */
const vmfunc: Handler = (cpu, i) => {
  const u = cpu.vmx;
  if (!cpu.nonRoot || !(u.proc2 & B.SEC_VMFUNC)) cpu.fault(UD);
  const fn = cpu.rlo[0] >>> 0;
  const v = u.current!;
  const ctl = v.getU(F.VM_FUNCTION_CONTROL);
  if (fn !== 0 || !(ctl & 1)) u.exit(B.R.VMFUNC, 0, i.len);
  const idx = cpu.rlo[1] >>> 0;
  if (idx >= 512) u.exit(B.R.VMFUNC, 0, i.len);
  const list = v.getU(F.EPTP_LIST_ADDRESS);
  const lo = cpu.mem.read32(list + idx * 8),
    hi = cpu.mem.read32(list + idx * 8 + 4);
  const eptp = (hi >>> 0) * TWO32 + (lo >>> 0);
  const mt = eptp % 8,
    walk = Math.floor(eptp / 8) % 8;
  if ((mt !== 0 && mt !== 6) || walk !== 3 || Math.floor(eptp / 128) % 32 !== 0) u.exit(B.R.VMFUNC, 0, i.len);
  v.set(F.EPT_POINTER, lo, hi);
  v.set(F.EPTP_INDEX, idx);
  cpu.setTlb(u.tlbs.get(u.guestVpid, eptp));
};

export const vmxHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  VMXON: () => vmxon,
  VMXOFF: () => vmxoff,
  VMCLEAR: () => vmclear,
  VMPTRLD: () => vmptrld,
  VMPTRST: () => vmptrst,
  VMREAD: () => vmread,
  VMWRITE: () => vmwrite,
  VMLAUNCH: () => launch(true),
  VMRESUME: () => launch(false),
  INVEPT: () => invept,
  INVVPID: () => invvpid,
  VMCALL: () => vmcall,
  VMFUNC: () => vmfunc,
};
