/**
 * System instructions (SDM Vol. 2 and Vol. 3A chapter 2): control and debug
 * registers, descriptor tables, task register, LAR/LSL/VERR/VERW, MSRs, CPUID,
 * time stamp counter, port I/O, HLT, CLI/STI, SYSCALL/SYSRET, SYSENTER/SYSEXIT,
 * SWAPGS, XGETBV/XSETBV, cache and TLB control, and the #UD/#NM behaviour of the
 * x87/SSE/VMX instructions the machine does not implement yet.
 */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import type { Cpu } from '../cpu.js';
import type { Handler, Insn } from '../insn.js';
import { CS, SS, FS, GS, LDTR, TR, UD, NM, GP, IF, RF, VM, AC, ZF, IOPL, Mode } from '../regs.js';
import {
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR0_CD,
  CR0_NW,
  CR0_TS,
  CR0_EM,
  CR0_MP,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
  CR4_PCIDE,
  CR4_SMEP,
  CR4_SMAP,
  CR4_OSXSAVE,
  CR4_TSD,
  CR4_PCE,
  CR4_UMIP,
  CR4_DE,
  EFER_LME,
  EFER_LMA,
  EFER_SCE,
  EFER_NXE,
} from '../regs.js';
import { Descriptor, readDescriptor, setSegCache, ATTR_UNUSABLE } from '../segments.js';
import { checkIoPermission } from './io-perm.js';
import { cpuidLeaf } from '../cpuid.js';
import { readMsr, writeMsr } from '../msrs.js';
import { MSR } from '../../../spec/msr.js';
import {
  R,
  CPU_RDTSC,
  CPU_RDPMC,
  CPU_HLT,
  CPU_INVLPG,
  CPU_MOV_DR,
  CPU_CR3_STORE,
  CPU_CR8_LOAD,
  CPU_CR8_STORE,
  CPU_TPR_SHADOW,
  SEC_RDTSCP,
  SEC_INVPCID,
  SEC_WBINVD,
  SEC_DESC_TABLE,
} from '../../vmx/bits.js';
import {
  exitAlways,
  exitIfProc,
  exitIfProc2,
  msrExits,
  ioExits,
  ioQual,
  crQual,
  crWriteExits,
  crRead,
  cr3LoadExits,
  instructionInfo,
  descTableInfo,
  crMaskedWrite,
  readVtpr,
  writeVtpr,
} from '../../vmx/intercepts.js';
import { F as VF } from '../../vmx/f.js';

const TWO32 = 4294967296;

function requireCpl0(cpu: Cpu): void {
  if (cpu.cpl !== 0) cpu.gp(0);
}

// ---- control registers -------------------------------------------------------------
/** Bits of CR4 this CPU lets software set (others are reserved: #GP). */
export function cr4Allowed(cpu: Cpu): number {
  void cpu;
  return (
    0x1 |
    0x2 |
    CR4_TSD |
    CR4_DE |
    CR4_PSE |
    CR4_PAE |
    0x40 |
    CR4_PGE |
    CR4_PCE |
    0x200 |
    0x400 |
    CR4_UMIP |
    CR4_PCIDE |
    CR4_SMEP |
    CR4_SMAP |
    cpu.cr4Extra
  );
}

export function writeCr0(cpu: Cpu, v: number, vh: number): void {
  if (vh !== 0) cpu.gp(0);
  v |= 0x10; // ET is hard-wired to 1
  if (v & CR0_PG && !(v & CR0_PE)) cpu.gp(0);
  if (v & CR0_NW && !(v & CR0_CD)) cpu.gp(0);
  const old = cpu.cr0;
  // In VMX root operation PE, NE and PG are fixed to 1 (IA32_VMX_CR0_FIXED0, SDM 3C §23.8).
  if (cpu.vmx.on && !cpu.nonRoot && (v & 0x80000021) !== (0x80000021 | 0)) cpu.gp(0);
  if (v & CR0_PG && !(old & CR0_PG) && cpu.efer & EFER_LME) {
    // Activating IA-32e mode (SDM 3A §9.8.5): needs PAE, and CS.L must be 0.
    if (!(cpu.cr4 & CR4_PAE)) cpu.gp(0);
    if (cpu.segAttr[CS] & (1 << 13)) cpu.gp(0);
    cpu.efer |= EFER_LMA;
  }
  if (!(v & CR0_PG) && old & CR0_PG && cpu.efer & EFER_LMA) {
    if (cpu.mode === Mode.Long64) cpu.gp(0);
    cpu.efer &= ~EFER_LMA;
  }
  if (cpu.efer & EFER_LMA && !(v & CR0_PE)) cpu.gp(0);
  cpu.cr0 = v | 0;
  if ((old ^ v) & (CR0_PG | CR0_WP | CR0_PE)) cpu.tlb.flushAll();
  cpu.updateMode();
}

export function writeCr3(cpu: Cpu, v: number, vh: number): void {
  const lma = (cpu.efer & EFER_LMA) !== 0;
  let val: number;
  if (lma) {
    // Bit 63 with PCIDE set means "do not flush" (SDM 3A §4.10.4.1); it is not stored.
    const noFlush = cpu.cr4 & CR4_PCIDE && vh & 0x80000000;
    const hi = vh & 0x7fffffff;
    if (hi >>> (40 - 32)) cpu.gp(0); // bits above MAXPHYADDR
    val = hi * TWO32 + (v >>> 0);
    cpu.cr3 = val;
    // The TLB is not tagged by PCID yet, so even a "no flush" write drops the non-global
    // entries: translations of the old PCID must not be used under the new one, and keeping
    // those of the new PCID is allowed but not required (SDM 3A §4.10.4.1).
    void noFlush;
    cpu.tlb.flushNonGlobal();
  } else {
    cpu.cr3 = v >>> 0;
    cpu.tlb.flushNonGlobal();
  }
  cpu.flushFetch();
}

export function writeCr4(cpu: Cpu, v: number, vh: number): void {
  if (vh !== 0 || v & ~cr4Allowed(cpu)) cpu.gp(0);
  // In VMX operation CR4 must respect IA32_VMX_CR4_FIXED0/1 (SDM 3C §23.8): VMXE cannot be cleared.
  if (cpu.vmx.on && !cpu.nonRoot && !(v & 0x2000)) cpu.gp(0);
  const old = cpu.cr4;
  if (cpu.efer & EFER_LMA && !(v & CR4_PAE)) cpu.gp(0);
  if (v & CR4_PCIDE && !(old & CR4_PCIDE) && (!(cpu.efer & EFER_LMA) || cpu.cr3 % 4096 !== 0)) cpu.gp(0);
  cpu.cr4 = v | 0;
  if ((old ^ v) & (CR4_PGE | CR4_PAE | CR4_PSE | CR4_PCIDE | CR4_SMEP | CR4_SMAP)) cpu.tlb.flushAll();
  cpu.flushFetch();
}

function movCr(toCr: boolean): Handler {
  return (cpu, i) => {
    if (cpu.mode === Mode.Real) {
      /* allowed in real mode */
    } else requireCpl0(cpu);
    const n = i.reg; // includes REX.R: CR8
    const size = cpu.mode === Mode.Long64 ? 8 : 4;
    if (![0, 2, 3, 4, 8].includes(n)) cpu.fault(UD);
    if (n === 8 && cpu.mode !== Mode.Long64) cpu.fault(UD);
    const r = i.rm;
    if (cpu.nonRoot) movCrIntercept(cpu, i, n, toCr, size);
    if (toCr) {
      const v = cpu.rlo[r],
        vh = size === 8 ? cpu.rhi[r] : 0;
      switch (n) {
        case 0:
          writeCr0(cpu, cpu.nonRoot ? crMaskedWrite(cpu, 0, v, cpu.cr0) : v, vh);
          break;
        case 2:
          cpu.cr2 = size === 8 ? vh * TWO32 + (v >>> 0) : v >>> 0;
          break;
        case 3:
          writeCr3(cpu, v, vh);
          break;
        case 4:
          writeCr4(cpu, cpu.nonRoot ? crMaskedWrite(cpu, 4, v, cpu.cr4) : v, vh);
          break;
        case 8:
          if (vh !== 0 || v & ~0xf) cpu.gp(0);
          if (cpu.nonRoot && cpu.vmx.proc & CPU_TPR_SHADOW) {
            writeVtpr(cpu, v);
            break;
          }
          cpu.cr8 = v & 0xf;
          cpu.onTprWrite();
          break;
      }
    } else {
      let v = 0;
      switch (n) {
        case 0:
          v = cpu.nonRoot ? crRead(cpu, 0, cpu.cr0) : cpu.cr0 >>> 0;
          break;
        case 2:
          v = cpu.cr2;
          break;
        case 3:
          v = cpu.cr3;
          break;
        case 4:
          v = cpu.nonRoot ? crRead(cpu, 4, cpu.cr4) : cpu.cr4 >>> 0;
          break;
        case 8:
          v = cpu.nonRoot && cpu.vmx.proc & CPU_TPR_SHADOW ? readVtpr(cpu) : cpu.readCr8();
          break;
      }
      if (size === 8) cpu.setReg(r, 8, v | 0, Math.floor(v / TWO32) | 0);
      else cpu.setReg(r, 4, v | 0, 0);
    }
  };
}

/** MOV to/from CR in non-root operation: the exits of SDM 3C §25.1.3. */
function movCrIntercept(cpu: Cpu, i: Insn, n: number, toCr: boolean, size: number): void {
  const r = i.rm;
  const u = cpu.vmx;
  const q = crQual(n, toCr ? 0 : 1, r);
  if (toCr) {
    const v = cpu.rlo[r];
    if ((n === 0 || n === 4) && crWriteExits(cpu, n, v)) exitAlways(cpu, R.CR_ACCESS, i, q);
    if (n === 3 && cr3LoadExits(cpu, size === 8 ? cpu.rhi[r] * TWO32 + (v >>> 0) : v >>> 0))
      exitAlways(cpu, R.CR_ACCESS, i, q);
    if (n === 8) exitIfProc(cpu, CPU_CR8_LOAD, R.CR_ACCESS, i, q);
  } else {
    if (n === 3) exitIfProc(cpu, CPU_CR3_STORE, R.CR_ACCESS, i, q);
    if (n === 8) exitIfProc(cpu, CPU_CR8_STORE, R.CR_ACCESS, i, q);
  }
  void u;
}

function movDr(toDr: boolean): Handler {
  return (cpu, i) => {
    requireCpl0(cpu);
    let n = i.reg;
    if (n > 7) cpu.fault(UD);
    if (n === 4 || n === 5) {
      if (cpu.cr4 & CR4_DE) cpu.fault(UD);
      n += 2;
    }
    const size = cpu.mode === Mode.Long64 ? 8 : 4;
    if (cpu.nonRoot)
      exitIfProc(cpu, CPU_MOV_DR, R.DR_ACCESS, i, (n & 7) | (toDr ? 0 : 16) | ((i.rm & 15) << 8));
    if (toDr) {
      const v = cpu.rlo[i.rm],
        vh = size === 8 ? cpu.rhi[i.rm] : 0;
      if ((n === 6 || n === 7) && vh !== 0) cpu.gp(0);
      let val = size === 8 ? vh * TWO32 + (v >>> 0) : v >>> 0;
      if (n === 6) val = (val | 0xffff0ff0) >>> 0;
      if (n === 7) val = ((val | 0x400) & ~0x1000) >>> 0;
      cpu.dr[n] = val;
    } else {
      let v = cpu.dr[n];
      if (n === 6 && v === 0) v = 0xffff0ff0;
      if (n === 7 && v === 0) v = 0x400;
      if (size === 8) cpu.setReg(i.rm, 8, v | 0, Math.floor(v / TWO32) | 0);
      else cpu.setReg(i.rm, 4, v | 0, 0);
    }
  };
}

// ---- descriptor tables --------------------------------------------------------------
/** Descriptor-table exit (§25.1.3): qualification = displacement, instruction information with the identity. */
function descExit(cpu: Cpu, i: Insn, reason: number, identity: number): void {
  if (!(cpu.vmx.proc2 & SEC_DESC_TABLE)) return;
  cpu.vmx.exit(reason, i.mem ? i.disp : 0, i.len, {
    instructionInfo: descTableInfo(i, identity, i.size !== 2),
  });
}

function lgdt(idt: boolean): Handler {
  return (cpu, i) => {
    requireCpl0(cpu);
    if (cpu.nonRoot) descExit(cpu, i, R.GDTR_IDTR, idt ? 3 : 2);
    const la = cpu.memLin(i, cpu.mode === Mode.Long64 ? 10 : 6, false);
    const limit = cpu.rd16(la);
    let base: number;
    if (cpu.mode === Mode.Long64) {
      const lo = cpu.rd64(la + 2);
      base = cpu.hi * TWO32 + lo;
      if (!(base >= -(2 ** 47) && base < 2 ** 47)) cpu.gp(0);
    } else {
      base = cpu.rd32(la + 2);
      if (i.size === 2) base &= 0xffffff;
    }
    if (idt) {
      cpu.idtrBase = base;
      cpu.idtrLimit = limit;
    } else {
      cpu.gdtrBase = base;
      cpu.gdtrLimit = limit;
    }
  };
}
function sgdt(idt: boolean): Handler {
  return (cpu, i) => {
    if (cpu.cr4 & CR4_UMIP && cpu.cpl > 0) cpu.gp(0);
    if (cpu.nonRoot) descExit(cpu, i, R.GDTR_IDTR, idt ? 1 : 0);
    const base = idt ? cpu.idtrBase : cpu.gdtrBase,
      limit = idt ? cpu.idtrLimit : cpu.gdtrLimit;
    const la = cpu.memLin(i, cpu.mode === Mode.Long64 ? 10 : 6, true);
    cpu.wr16(la, limit);
    if (cpu.mode === Mode.Long64) cpu.wr64(la + 2, base | 0, Math.floor(base / TWO32) | 0);
    else cpu.wr32(la + 2, base | 0);
  };
}

const sysDesc = new Descriptor();

function lldt(cpu: Cpu, i: Insn): void {
  if (cpu.mode === Mode.Real) cpu.fault(UD);
  requireCpl0(cpu);
  if (cpu.nonRoot) descExit(cpu, i, R.LDTR_TR, 2);
  const sel = cpu.readE(i, 2);
  if ((sel & 0xfffc) === 0) {
    setSegCache(cpu, LDTR, sel, 0, 0, ATTR_UNUSABLE);
    return;
  }
  if (sel & 4) cpu.gp(sel & 0xfffc);
  const lma = (cpu.efer & EFER_LMA) !== 0;
  const d = sysDesc;
  if (!readDescriptor(cpu, sel, d, lma)) cpu.gp(sel & 0xfffc);
  if (d.s || d.type !== 2) cpu.gp(sel & 0xfffc);
  if (!d.present) cpu.fault(11, sel & 0xfffc);
  setSegCache(cpu, LDTR, sel, d.base, d.limit, d.attr);
}

function ltr(cpu: Cpu, i: Insn): void {
  if (cpu.mode === Mode.Real) cpu.fault(UD);
  requireCpl0(cpu);
  if (cpu.nonRoot) descExit(cpu, i, R.LDTR_TR, 3);
  const sel = cpu.readE(i, 2);
  if ((sel & 0xfffc) === 0 || sel & 4) cpu.gp(sel & 0xfffc);
  const lma = (cpu.efer & EFER_LMA) !== 0;
  const d = sysDesc;
  if (!readDescriptor(cpu, sel, d, lma)) cpu.gp(sel & 0xfffc);
  // Must be an available TSS: type 9 (or 1, 16-bit, outside IA-32e mode).
  if (d.s || (d.type !== 9 && (lma || d.type !== 1))) cpu.gp(sel & 0xfffc);
  if (!d.present) cpu.fault(11, sel & 0xfffc);
  // Mark it busy in the GDT (SDM Vol. 2 LTR).
  cpu.wr8(d.addr + 5, ((d.hi >>> 8) & 0xff) | 2, false);
  setSegCache(cpu, TR, sel, d.base, d.limit, d.attr | 2);
}

function storeSel(seg: number): Handler {
  return (cpu, i) => {
    if (cpu.mode === Mode.Real) cpu.fault(UD);
    if (cpu.cr4 & CR4_UMIP && cpu.cpl > 0) cpu.gp(0);
    if (cpu.nonRoot) descExit(cpu, i, R.LDTR_TR, seg === TR ? 1 : 0);
    const v = cpu.segSel[seg] & 0xffff;
    if (i.mem) cpu.writeE(i, v, 0, 2);
    else cpu.setReg(i.rm, i.size, v, 0);
  };
}

/** LAR/LSL/VERR/VERW: ZF=1 when the descriptor is visible at the current CPL/RPL. */
function descCheck(kind: 'lar' | 'lsl' | 'verr' | 'verw'): Handler {
  return (cpu, i) => {
    if (cpu.mode === Mode.Real) cpu.fault(UD);
    const sel = cpu.readE(i, 2);
    const d = sysDesc;
    let ok = (sel & 0xfffc) !== 0 && readDescriptor(cpu, sel, d, false);
    if (ok) {
      const rpl = sel & 3;
      const conforming = d.conforming;
      if (!conforming && (d.dpl < cpu.cpl || d.dpl < rpl)) ok = false;
      if (kind === 'verr') ok = ok && d.s && (!d.isCode || (d.attr & 2) !== 0);
      else if (kind === 'verw') ok = ok && d.s && !d.isCode && (d.attr & 2) !== 0;
      else if (!d.s) {
        // Valid system types for LAR: LDT, TSS (avail/busy), call gates; LSL: LDT and TSS.
        const t = d.type;
        const lma = (cpu.efer & EFER_LMA) !== 0;
        const larTypes = lma ? [2, 9, 0xb, 0xc] : [1, 2, 3, 4, 5, 9, 0xb, 0xc];
        const lslTypes = lma ? [2, 9, 0xb] : [1, 2, 3, 9, 0xb];
        ok = ok && (kind === 'lar' ? larTypes : lslTypes).includes(t);
      }
    }
    const f = cpu.getFlags();
    cpu.setFlags(ok ? f | ZF : f & ~ZF);
    if (!ok) return;
    if (kind === 'lar') {
      const v = (d.hi & 0x00f0ff00) >>> 0;
      cpu.setReg(i.reg, i.size, i.size === 2 ? v & 0xff00 : v, 0);
    } else if (kind === 'lsl') cpu.setReg(i.reg, i.size, i.size === 2 ? d.limit & 0xffff : d.limit, 0);
  };
}

function smsw(cpu: Cpu, i: Insn): void {
  if (cpu.cr4 & CR4_UMIP && cpu.cpl > 0) cpu.gp(0);
  if (i.mem) cpu.writeE(i, cpu.cr0 & 0xffff, 0, 2);
  else cpu.setReg(i.rm, i.size, i.size === 2 ? cpu.cr0 & 0xffff : cpu.cr0, 0);
}
function lmsw(cpu: Cpu, i: Insn): void {
  requireCpl0(cpu);
  const v = cpu.readE(i, 2);
  let nv = (cpu.cr0 & ~0xe) | (v & 0xf) | (cpu.cr0 & 1);
  if (cpu.nonRoot) {
    // LMSW exits when it would set a host-owned PE the shadow has clear, or change a host-owned
    // MP/EM/TS bit relative to the shadow (SDM 3C §25.1.3); otherwise host-owned bits stay.
    const vm = cpu.vmx.current!;
    const mask = vm.get32(VF.CR0_GUEST_HOST_MASK),
      shadow = vm.get32(VF.CR0_READ_SHADOW);
    if ((mask & 1 && v & 1 && !(shadow & 1)) || (mask & 0xe & (v ^ shadow)) !== 0)
      exitAlways(cpu, R.CR_ACCESS, i, crQual(0, 3, 0, v, i.mem));
    nv = crMaskedWrite(cpu, 0, nv, cpu.cr0);
  }
  // LMSW changes only PE/MP/EM/TS and cannot clear PE (SDM Vol. 2 LMSW).
  writeCr0(cpu, nv, 0);
}

// ---- MSRs, CPUID, TSC ----------------------------------------------------------------
function rdmsr(cpu: Cpu, i: Insn): void {
  requireCpl0(cpu);
  if (cpu.nonRoot && msrExits(cpu, cpu.rlo[1] >>> 0, false)) exitAlways(cpu, R.MSR_READ, i);
  const v = readMsr(cpu, cpu.rlo[1] >>> 0);
  cpu.setReg(0, 4, Number(v & 0xffffffffn) | 0, 0);
  cpu.setReg(2, 4, Number(v >> 32n) | 0, 0);
}
function wrmsr(cpu: Cpu, i: Insn): void {
  requireCpl0(cpu);
  if (cpu.nonRoot && msrExits(cpu, cpu.rlo[1] >>> 0, true)) exitAlways(cpu, R.MSR_WRITE, i);
  const v = (BigInt(cpu.rlo[2] >>> 0) << 32n) | BigInt(cpu.rlo[0] >>> 0);
  writeMsr(cpu, cpu.rlo[1] >>> 0, v);
}
function cpuid(cpu: Cpu, i: Insn): void {
  if (cpu.nonRoot) exitAlways(cpu, R.CPUID, i);
  const out = cpuidLeaf(cpu, cpu.rlo[0] >>> 0, cpu.rlo[1] >>> 0);
  cpu.setReg(0, 4, out[0], 0);
  cpu.setReg(3, 4, out[1], 0);
  cpu.setReg(1, 4, out[2], 0);
  cpu.setReg(2, 4, out[3], 0);
}
function rdtsc(cpu: Cpu, i?: Insn): void {
  if (cpu.cr4 & CR4_TSD && cpu.cpl > 0) cpu.gp(0);
  if (cpu.nonRoot && i) exitIfProc(cpu, CPU_RDTSC, R.RDTSC, i);
  const t = cpu.readTsc();
  cpu.setReg(0, 4, t | 0, 0);
  cpu.setReg(2, 4, Math.floor(t / TWO32) | 0, 0);
}
function rdtscp(cpu: Cpu, i: Insn): void {
  if (cpu.nonRoot) {
    // Without "enable RDTSCP" the guest gets #UD (SDM 3C §25.3).
    if (!(cpu.vmx.proc2 & SEC_RDTSCP)) cpu.fault(UD);
    if (cpu.cr4 & CR4_TSD && cpu.cpl > 0) cpu.gp(0);
    exitIfProc(cpu, CPU_RDTSC, R.RDTSCP, i);
  }
  rdtsc(cpu);
  const aux = cpu.msrs.get(MSR.TSC_AUX) ?? 0n;
  cpu.setReg(1, 4, Number(aux & 0xffffffffn) | 0, 0);
}
function rdpmc(cpu: Cpu, i: Insn): void {
  if (!(cpu.cr4 & CR4_PCE) && cpu.cpl > 0) cpu.gp(0);
  if (cpu.nonRoot) exitIfProc(cpu, CPU_RDPMC, R.RDPMC, i);
  const n = cpu.rlo[1] >>> 0;
  if (n > 3) cpu.gp(0);
  cpu.setReg(0, 4, 0, 0); // performance counters are not modelled: they read 0
  cpu.setReg(2, 4, 0, 0);
}

// ---- port I/O, interrupts, halting --------------------------------------------------
function inOut(e: OpcodeEntry, out: boolean): Handler {
  const immPort = e.operands.includes('Ib');
  return (cpu, i) => {
    const size = i.size === 1 ? 1 : i.size === 2 ? 2 : 4;
    const port = immPort ? i.imm & 0xff : cpu.rlo[2] & 0xffff;
    checkIoPermission(cpu, port, size);
    if (cpu.nonRoot && ioExits(cpu, port, size))
      exitAlways(cpu, R.IO_INSTRUCTION, i, ioQual(size, !out, false, false, immPort, port));
    if (out) cpu.io.out(port, size as 1 | 2 | 4, cpu.getReg(0, size));
    else {
      const v = cpu.io.in(port, size as 1 | 2 | 4);
      cpu.setReg(0, size, size === 4 ? v | 0 : v & (size === 1 ? 0xff : 0xffff), 0);
    }
  };
}

function hlt(cpu: Cpu, i: Insn): void {
  requireCpl0(cpu);
  if (cpu.nonRoot) exitIfProc(cpu, CPU_HLT, R.HLT, i);
  cpu.halted = true;
}
function cli(cpu: Cpu): void {
  if (cpu.mode !== Mode.Real && cpu.cpl > (cpu.fl.word & IOPL) >> 12) cpu.gp(0);
  cpu.fl.word &= ~IF;
}
function sti(cpu: Cpu): void {
  if (cpu.mode !== Mode.Real && cpu.cpl > (cpu.fl.word & IOPL) >> 12) cpu.gp(0);
  // STI blocks interrupts until after the next instruction if IF was 0 (SDM Vol. 2 STI).
  if (!(cpu.fl.word & IF)) {
    cpu.intShadow = 2;
    cpu.movSsShadow = false;
  }
  cpu.fl.word |= IF;
  cpu.irqCheck = true;
}
function clts(cpu: Cpu, i: Insn): void {
  requireCpl0(cpu);
  if (cpu.nonRoot) {
    // CLTS exits when CR0.TS is host-owned and the shadow has TS set (SDM 3C §25.1.3).
    // Host-owned TS with the shadow clear: CLTS leaves TS alone (§25.3).
    const v = cpu.vmx.current!;
    if (v.get32(VF.CR0_GUEST_HOST_MASK) & CR0_TS) {
      if (v.get32(VF.CR0_READ_SHADOW) & CR0_TS) exitAlways(cpu, R.CR_ACCESS, i, crQual(0, 2, 0));
      return;
    }
  }
  cpu.cr0 &= ~CR0_TS;
}

// ---- fast system calls ----------------------------------------------------------------
function msrNum(cpu: Cpu, n: number): number {
  const v = cpu.msrs.get(n) ?? 0n;
  return Number(BigInt.asIntN(64, v));
}

/** SYSCALL (SDM Vol. 2): Intel CPUs support it only in 64-bit mode. */
function syscall(cpu: Cpu): void {
  if (cpu.mode !== Mode.Long64 || !(cpu.efer & EFER_SCE)) cpu.fault(UD);
  const star = cpu.msrs.get(MSR.STAR) ?? 0n;
  const sel = Number((star >> 32n) & 0xffffn);
  const rip = cpu.rip;
  cpu.setReg(1, 8, rip | 0, Math.floor(rip / TWO32) | 0);
  const f = cpu.getFlags();
  cpu.setReg(11, 8, f & ~RF, 0);
  const lstar = msrNum(cpu, MSR.LSTAR);
  const mask = Number((cpu.msrs.get(MSR.SFMASK) ?? 0n) & 0xffffffffn);
  setSegCache(cpu, CS, sel & 0xfffc, 0, 0xffffffff, 0xa09b);
  setSegCache(cpu, SS, (sel + 8) & 0xfffc, 0, 0xffffffff, 0xc093);
  cpu.setFlags(f & ~mask & ~RF);
  cpu.rip = lstar;
}

function sysret(cpu: Cpu, i: Insn): void {
  if (!(cpu.efer & EFER_SCE)) cpu.fault(UD);
  if (cpu.mode !== Mode.Long64) cpu.fault(UD);
  requireCpl0(cpu);
  const star = cpu.msrs.get(MSR.STAR) ?? 0n;
  const sel = Number((star >> 48n) & 0xffffn);
  let rip: number;
  if (i.size === 8) {
    rip = cpu.regNum(1);
    // Intel raises #GP(0) in ring 0 for a non-canonical RCX (SDM Vol. 2 SYSRET).
    if (!(rip >= -(2 ** 47) && rip < 2 ** 47)) cpu.gp(0);
    setSegCache(cpu, CS, ((sel + 16) & 0xfffc) | 3, 0, 0xffffffff, 0xa0fb);
  } else {
    rip = cpu.rlo[1] >>> 0;
    setSegCache(cpu, CS, (sel & 0xfffc) | 3, 0, 0xffffffff, 0xc0fb);
  }
  // SS selector is STAR[63:48]+8 with RPL 3; its cached attributes are fixed (DPL 3).
  cpu.segSel[SS] = ((sel + 8) & 0xfffc) | 3;
  cpu.segAttr[SS] = 0xc0f3;
  cpu.segBase[SS] = 0;
  cpu.segLimit[SS] = 0xffffffff;
  cpu.updateMode();
  cpu.setFlags((cpu.rlo[11] & 0x3c7fd7) | 2);
  cpu.rip = rip;
}

function sysenter(cpu: Cpu): void {
  if (cpu.mode === Mode.Real) cpu.gp(0);
  const cs = Number((cpu.msrs.get(MSR.SYSENTER_CS) ?? 0n) & 0xffffn);
  if ((cs & 0xfffc) === 0) cpu.gp(0);
  const lma = (cpu.efer & EFER_LMA) !== 0;
  cpu.setFlags(cpu.getFlags() & ~(VM | IF | RF));
  setSegCache(cpu, CS, cs & 0xfffc, 0, 0xffffffff, lma ? 0xa09b : 0xc09b);
  setSegCache(cpu, SS, (cs + 8) & 0xfffc, 0, 0xffffffff, 0xc093);
  const esp = msrNum(cpu, MSR.SYSENTER_ESP),
    eip = msrNum(cpu, MSR.SYSENTER_EIP);
  if (lma) {
    cpu.setReg(4, 8, esp | 0, Math.floor(esp / TWO32) | 0);
    cpu.rip = eip;
  } else {
    cpu.setReg(4, 4, esp | 0, 0);
    cpu.rip = eip >>> 0;
  }
}

function sysexit(cpu: Cpu, i: Insn): void {
  if (cpu.mode === Mode.Real) cpu.gp(0);
  requireCpl0(cpu);
  const cs = Number((cpu.msrs.get(MSR.SYSENTER_CS) ?? 0n) & 0xffffn);
  if ((cs & 0xfffc) === 0) cpu.gp(0);
  if (i.size === 8) {
    const rip = cpu.regNum(2);
    if (!(rip >= -(2 ** 47) && rip < 2 ** 47)) cpu.gp(0);
    setSegCache(cpu, CS, ((cs + 32) & 0xfffc) | 3, 0, 0xffffffff, 0xa0fb);
    setSegCache(cpu, SS, ((cs + 40) & 0xfffc) | 3, 0, 0xffffffff, 0xc0f3);
    cpu.setReg(4, 8, cpu.rlo[1], cpu.rhi[1]);
    cpu.rip = rip;
  } else {
    setSegCache(cpu, CS, ((cs + 16) & 0xfffc) | 3, 0, 0xffffffff, 0xc0fb);
    setSegCache(cpu, SS, ((cs + 24) & 0xfffc) | 3, 0, 0xffffffff, 0xc0f3);
    cpu.setReg(4, 4, cpu.rlo[1], 0);
    cpu.rip = cpu.rlo[2] >>> 0;
  }
}

function swapgs(cpu: Cpu): void {
  requireCpl0(cpu);
  const k = cpu.msrs.get(MSR.KERNEL_GS_BASE) ?? 0n;
  const g = BigInt.asUintN(64, BigInt(cpu.segBase[GS]));
  cpu.msrs.set(MSR.KERNEL_GS_BASE, g);
  cpu.segBase[GS] = Number(BigInt.asIntN(64, k));
}

function xgetbv(cpu: Cpu): void {
  if (!(cpu.cr4 & CR4_OSXSAVE)) cpu.fault(UD);
  if (cpu.rlo[1] >>> 0 !== 0) cpu.gp(0);
  cpu.setReg(0, 4, cpu.xcr0, 0);
  cpu.setReg(2, 4, 0, 0);
}
function xsetbv(cpu: Cpu, i: Insn): void {
  if (!(cpu.cr4 & CR4_OSXSAVE)) cpu.fault(UD);
  if (cpu.nonRoot) exitAlways(cpu, R.XSETBV, i);
  requireCpl0(cpu);
  if (cpu.rlo[1] >>> 0 !== 0 || cpu.rlo[2] !== 0 || cpu.rlo[0] !== 1) cpu.gp(0);
  cpu.xcr0 = 1;
}

// ---- caches and TLBs ------------------------------------------------------------------
function invlpg(cpu: Cpu, i: Insn): void {
  requireCpl0(cpu);
  // INVLPG takes the linear address without access checks; non-canonical is a no-op in 64-bit mode.
  let la = cpu.ea(i);
  if (cpu.mode === Mode.Long64) {
    if (i.seg >= FS) la += cpu.segBase[i.seg];
  } else la = (cpu.segBase[i.seg] + la) % TWO32;
  if (cpu.nonRoot) exitIfProc(cpu, CPU_INVLPG, R.INVLPG, i, la);
  cpu.tlb.flushPage(Math.floor(la / 4096));
}
function invpcid(cpu: Cpu, i: Insn): void {
  if (!cpu.hasFeature('INVPCID')) cpu.fault(UD);
  if (cpu.nonRoot && !(cpu.vmx.proc2 & SEC_INVPCID)) cpu.fault(UD);
  requireCpl0(cpu);
  if (cpu.nonRoot && cpu.vmx.proc & CPU_INVLPG)
    cpu.vmx.exit(R.INVPCID, 0, i.len, { instructionInfo: instructionInfo(i) });
  if (!i.mem) cpu.fault(UD);
  const type = cpu.mode === Mode.Long64 ? cpu.rlo[i.reg] >>> 0 : cpu.rlo[i.reg] >>> 0;
  if (cpu.mode === Mode.Long64 && cpu.rhi[i.reg] !== 0) cpu.gp(0);
  const la = cpu.memLin(i, 16, false);
  const pcid = cpu.rd32(la) & 0xffffffff;
  const hi0 = cpu.rd32(la + 4);
  const addrLo = cpu.rd32(la + 8),
    addrHi = cpu.rd32(la + 12) | 0;
  if (type > 3) cpu.gp(0);
  if (pcid > 0xfff || hi0 !== 0) cpu.gp(0);
  if (type === 0) {
    const a = addrHi * TWO32 + addrLo;
    if (!(a >= -(2 ** 47) && a < 2 ** 47)) cpu.gp(0);
    cpu.tlb.flushPage(Math.floor(a / 4096));
  } else if (type === 3) cpu.tlb.flushNonGlobal();
  else cpu.tlb.flushAll(); // single-context (1) is over-approximated by a full flush; 2 = all incl. global
}
function wbinvd(cpu: Cpu, i: Insn): void {
  requireCpl0(cpu);
  if (cpu.nonRoot) exitIfProc2(cpu, SEC_WBINVD, R.WBINVD, i);
}
function invd(cpu: Cpu, i: Insn): void {
  requireCpl0(cpu);
  if (cpu.nonRoot) exitAlways(cpu, R.INVD, i);
}
function clflush(cpu: Cpu, i: Insn): void {
  cpu.rd8(cpu.memLin(i, 1, false)); // CLFLUSH faults like a byte read; caches are not modelled
}
function clacStac(set: boolean): Handler {
  return (cpu) => {
    if (!cpu.hasFeature('SMAP') || cpu.cpl > 0) cpu.fault(UD);
    if (set) cpu.fl.word |= AC;
    else cpu.fl.word &= ~AC;
  };
}

// ---- unimplemented extensions: the architectural #UD / #NM --------------------------
/** x87 (D8-DF): #NM when CR0.EM or CR0.TS (SDM 3A §2.5); the FPU itself is not modelled (#UD, not advertised by CPUID). */
function x87(cpu: Cpu): void {
  if (cpu.cr0 & (CR0_EM | CR0_TS)) cpu.fault(NM);
  cpu.fault(UD);
}
/** SSE/FXSAVE family: #UD when CR0.EM or !CR4.OSFXSR, #NM when CR0.TS (SDM 3A §13.1); otherwise not implemented (#UD). */
function sse(cpu: Cpu): void {
  if (cpu.cr0 & CR0_EM || !(cpu.cr4 & 0x200)) cpu.fault(UD);
  if (cpu.cr0 & CR0_TS) cpu.fault(NM);
  cpu.fault(UD);
}
function fwait(cpu: Cpu): void {
  if ((cpu.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) cpu.fault(NM);
}
const ud: Handler = (cpu) => cpu.fault(UD);

export const systemHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  MOVCR: (e) => movCr(e.operands.startsWith('C')),
  MOVDR: (e) => movDr(e.operands.startsWith('D')),
  LGDT: () => lgdt(false),
  LIDT: () => lgdt(true),
  SGDT: () => sgdt(false),
  SIDT: () => sgdt(true),
  LLDT: () => lldt,
  LTR: () => ltr,
  SLDT: () => storeSel(LDTR),
  STR: () => storeSel(TR),
  LAR: () => descCheck('lar'),
  LSL: () => descCheck('lsl'),
  VERR: () => descCheck('verr'),
  VERW: () => descCheck('verw'),
  SMSW: () => smsw,
  LMSW: () => lmsw,
  CLTS: () => clts,
  RDMSR: () => rdmsr,
  WRMSR: () => wrmsr,
  CPUID: () => cpuid,
  RDTSC: () => rdtsc,
  RDTSCP: () => (cpu, i) => {
    if (!cpu.hasFeature('RDTSCP')) cpu.fault(UD);
    rdtscp(cpu, i);
  },
  RDPMC: () => rdpmc,
  IN: (e) => inOut(e, false),
  OUT: (e) => inOut(e, true),
  HLT: () => hlt,
  CLI: () => cli,
  STI: () => sti,
  SYSCALL: () => syscall,
  SYSRET: () => sysret,
  SYSENTER: () => sysenter,
  SYSEXIT: () => sysexit,
  SWAPGS: () => swapgs,
  XGETBV: () => xgetbv,
  XSETBV: () => xsetbv,
  INVLPG: () => invlpg,
  INVPCID: () => invpcid,
  WBINVD: () => wbinvd,
  INVD: () => invd,
  CLFLUSH: () => clflush,
  CLAC: () => clacStac(false),
  STAC: () => clacStac(true),
  X87: () => x87,
  SSE: () => sse,
  FXSAVE: () => sse,
  FXRSTOR: () => sse,
  LDMXCSR: () => sse,
  STMXCSR: () => sse,
  XSAVE: () => (cpu) => (cpu.cr4 & CR4_OSXSAVE ? sse(cpu) : cpu.fault(UD)),
  XRSTOR: () => (cpu) => (cpu.cr4 & CR4_OSXSAVE ? sse(cpu) : cpu.fault(UD)),
  FWAIT: () => fwait,
  UD2: () => ud,
  UD0: () => ud,
  UD1: () => ud,
};
export { SS, GP, IOPL, EFER_NXE, CR0_PG };
