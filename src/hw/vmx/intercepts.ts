/**
 * Non-root operation (SDM 3C chapter 25): the decisions whether an instruction or
 * event causes a VM exit, with the exit qualification of §27.2.1. The instruction
 * handlers call these only when cpu.nonRoot is set, so root-mode and bare-metal
 * execution pay nothing.
 */
import type { Cpu } from '../cpu/cpu.js';
import type { Insn } from '../cpu/insn.js';
import { F } from './f.js';
import * as B from './bits.js';

/** Unconditional exits (CPUID, INVD, XSETBV, GETSEC …). */
export function exitAlways(cpu: Cpu, reason: number, i: Insn, qual = 0): never {
  return cpu.vmx.exit(reason, qual, i.len);
}

/** Exit when a primary processor-based control is set. */
export function exitIfProc(cpu: Cpu, bit: number, reason: number, i: Insn, qual = 0): void {
  if (cpu.vmx.proc & bit) cpu.vmx.exit(reason, qual, i.len);
}
/** Exit when a secondary processor-based control is set. */
export function exitIfProc2(cpu: Cpu, bit: number, reason: number, i: Insn, qual = 0): void {
  if (cpu.vmx.proc2 & bit) cpu.vmx.exit(reason, qual, i.len);
}

/** CR-access exit qualification (Table 27-3). */
export function crQual(cr: number, type: number, gpr: number, lmswData = 0, lmswMem = false): number {
  return ((cr & 15) | (type << 4) | (lmswMem ? 1 << 6 : 0) | ((gpr & 15) << 8)) + (lmswData & 0xffff) * 65536;
}

/**
 * MOV to CR0/CR4 (§25.1.3): exits if any bit owned by the host (set in the
 * guest/host mask) would change relative to the read shadow.
 */
export function crWriteExits(cpu: Cpu, cr: 0 | 4, value: number): boolean {
  const v = cpu.vmx.current!;
  const mask = v.get32(cr === 0 ? F.CR0_GUEST_HOST_MASK : F.CR4_GUEST_HOST_MASK);
  const shadow = v.get32(cr === 0 ? F.CR0_READ_SHADOW : F.CR4_READ_SHADOW);
  return ((value ^ shadow) & mask) !== 0;
}
/** MOV from CR0/CR4: host-owned bits read from the shadow. */
export function crRead(cpu: Cpu, cr: 0 | 4, actual: number): number {
  const v = cpu.vmx.current!;
  const mask = v.get32(cr === 0 ? F.CR0_GUEST_HOST_MASK : F.CR4_GUEST_HOST_MASK);
  const shadow = v.get32(cr === 0 ? F.CR0_READ_SHADOW : F.CR4_READ_SHADOW);
  return ((actual & ~mask) | (shadow & mask)) >>> 0;
}
/** MOV to CR3 exits unless the value is one of the first CR3-target-count target values (§25.1.3). */
export function cr3LoadExits(cpu: Cpu, value: number): boolean {
  if (!(cpu.vmx.proc & B.CPU_CR3_LOAD)) return false;
  const v = cpu.vmx.current!;
  const n = v.get32(F.CR3_TARGET_COUNT);
  for (let k = 0; k < n && k < 4; k++) if (v.getU(F.CR3_TARGET_VALUE0 + 2 * k) === value) return false;
  return true;
}

/** Does I/O to `port` (size bytes) exit? Unconditional I/O exiting or the I/O bitmaps (§25.1.3). */
export function ioExits(cpu: Cpu, port: number, size: number): boolean {
  const u = cpu.vmx;
  if (u.proc & B.CPU_USE_IO_BITMAPS) {
    const v = u.current!;
    for (let p = port; p < port + size; p++) {
      // Wrapping past 0xFFFF exits (§25.1.3).
      if (p > 0xffff) return true;
      const base = p < 0x8000 ? v.getU(F.IO_BITMAP_A) : v.getU(F.IO_BITMAP_B);
      const bit = p & 0x7fff;
      if (cpu.mem.read8(base + (bit >> 3)) & (1 << (bit & 7))) return true;
    }
    return false;
  }
  return (u.proc & B.CPU_UNCOND_IO) !== 0;
}
/** I/O exit qualification (Table 27-5). */
export function ioQual(
  size: number,
  input: boolean,
  string: boolean,
  rep: boolean,
  imm: boolean,
  port: number,
): number {
  return ((size - 1) | (input ? 8 : 0) | (string ? 16 : 0) | (rep ? 32 : 0) | (imm ? 64 : 0)) + port * 65536;
}

/** Does RDMSR/WRMSR of `msr` exit? MSR bitmaps, or always without them (§25.1.3). */
export function msrExits(cpu: Cpu, msr: number, write: boolean): boolean {
  const u = cpu.vmx;
  if (!(u.proc & B.CPU_USE_MSR_BITMAPS)) return true;
  let off: number;
  if (msr <= 0x1fff) off = 0;
  else if (msr >= 0xc0000000 && msr <= 0xc0001fff) off = 1024;
  else return true;
  if (write) off += 2048;
  const bit = msr & 0x1fff;
  const base = u.current!.getU(F.MSR_BITMAP);
  return (cpu.mem.read8(base + off + (bit >> 3)) & (1 << (bit & 7))) !== 0;
}

/** Exception bitmap with the page-fault error-code mask/match rule (§25.2). */
export function exceptionExits(cpu: Cpu, vector: number, errorCode: number): boolean {
  const u = cpu.vmx;
  const inBitmap = (u.exceptionBitmap & (1 << vector)) !== 0;
  if (vector !== 14) return inBitmap;
  const v = u.current!;
  const match =
    (errorCode & v.get32(F.PAGE_FAULT_ERROR_CODE_MASK)) >>> 0 === v.get32(F.PAGE_FAULT_ERROR_CODE_MATCH);
  return inBitmap ? match : !match;
}

/**
 * VM-exit instruction-information for VMX instructions and descriptor-table
 * exits (Tables 27-13/27-14): scaling, address size, register/memory, segment,
 * index, base, and reg2 in bits 31:28.
 */
export function instructionInfo(i: Insn, reg2 = i.reg): number {
  const asz = i.asize === 2 ? 0 : i.asize === 4 ? 1 : 2;
  let info = (asz << 7) | ((reg2 & 15) << 28);
  if (!i.mem) {
    info |= 1 << 10;
    info |= (i.rm & 15) << 3;
    return info;
  }
  info |= i.scale;
  info |= (i.seg & 7) << 15;
  if (i.index >= 0) info |= (i.index & 15) << 18;
  else info |= 1 << 22;
  if (i.base >= 0 && i.base < 16) info |= (i.base & 15) << 23;
  else info |= 1 << 27;
  return info | 0;
}

/**
 * Instruction information for descriptor-table exits (Tables 27-10/27-11): the memory
 * operand as in instructionInfo, operand size bit 11, and the instruction identity in
 * bits 29:28 (SGDT 0, SIDT 1, LGDT 2, LIDT 3; SLDT 0, STR 1, LLDT 2, LTR 3).
 */
export function descTableInfo(i: Insn, identity: number, size32: boolean): number {
  const base = instructionInfo(i, 0) & 0x0fffffff;
  return base | (size32 ? 1 << 11 : 0) | ((identity & 3) << 28) | 0;
}

/** Apply host-owned CR0/CR4 bits on a non-exiting write: masked bits keep their current values (§25.3). */
export function crMaskedWrite(cpu: Cpu, cr: 0 | 4, value: number, current: number): number {
  const v = cpu.vmx.current!;
  const mask = v.get32(cr === 0 ? F.CR0_GUEST_HOST_MASK : F.CR4_GUEST_HOST_MASK);
  return (value & ~mask) | (current & mask) | 0;
}

/**
 * TPR shadow (SDM 3C §29.1.1-29.1.2): with "use TPR shadow", CR8 accesses that do not exit
 * use VTPR, byte 0x80 of the virtual-APIC page: reads give VTPR[7:4]; writes set
 * VTPR = value << 4 (clearing bytes 0x81-0x83) and cause a TPR-below-threshold VM exit
 * (trap-like) when VTPR[7:4] drops below TPR threshold[3:0].
 */
export function vtprAddr(cpu: Cpu): number {
  return cpu.vmx.current!.getU(F.VIRTUAL_APIC_PAGE_ADDR) + 0x80;
}
export function readVtpr(cpu: Cpu): number {
  return (cpu.mem.read8(vtprAddr(cpu)) >> 4) & 0xf;
}
export function writeVtpr(cpu: Cpu, v: number): void {
  cpu.mem.write32(vtprAddr(cpu), (v & 0xf) << 4);
  if ((v & 0xf) < (cpu.vmx.current!.get32(F.TPR_THRESHOLD) & 0xf)) {
    cpu.tprBelowThreshold = true;
    cpu.irqCheck = true;
  }
}
