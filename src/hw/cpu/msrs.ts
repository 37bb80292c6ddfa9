/**
 * RDMSR/WRMSR (SDM Vol. 4): the architectural MSRs the machine implements.
 * Unknown MSRs and reserved bits raise #GP(0).
 */
import type { Cpu } from './cpu.js';
import { MSR } from '../../spec/msr.js';
import { FS, GS, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, CR0_PG } from './regs.js';

const isCanonical = (v: bigint): boolean => {
  const top = v >> 47n;
  return top === 0n || top === 0x1ffffn;
};
const toNum = (v: bigint): number => Number(BigInt.asIntN(64, v));
const toU = (n: number): bigint => BigInt.asUintN(64, BigInt(n));

function isMtrr(n: number): boolean {
  return (
    (n >= MSR.MTRR_PHYSBASE0 && n <= MSR.MTRR_PHYSMASK7) ||
    n === MSR.MTRR_FIX64K_00000 ||
    n === MSR.MTRR_FIX16K_80000 ||
    n === MSR.MTRR_FIX16K_A0000 ||
    (n >= MSR.MTRR_FIX4K_C0000 && n <= MSR.MTRR_FIX4K_F8000) ||
    n === MSR.MTRR_DEF_TYPE
  );
}

/** Extension point for MSRs owned by other parts of the machine (LAPIC, VMX capability MSRs). */
export interface MsrHook {
  read(cpu: Cpu, n: number): bigint | undefined;
  write(cpu: Cpu, n: number, v: bigint): boolean;
}

export function readMsr(cpu: Cpu, n: number): bigint {
  for (const h of cpu.msrHooks) {
    const v = h.read(cpu, n);
    if (v !== undefined) return v;
  }
  switch (n) {
    case MSR.TSC:
      return BigInt(cpu.readTsc());
    case MSR.EFER:
      return BigInt(cpu.efer >>> 0);
    case MSR.FS_BASE:
      return toU(cpu.segBase[FS]);
    case MSR.GS_BASE:
      return toU(cpu.segBase[GS]);
    case MSR.APIC_BASE:
      return cpu.msrs.get(n) ?? BigInt(0xfee00000 | 0x800 | (cpu.id === 0 ? 0x100 : 0));
    case MSR.PAT:
      return cpu.msrs.get(n) ?? 0x0007040600070406n;
    case MSR.MTRRCAP:
      return 0x508n; // 8 variable ranges, fixed ranges, write-combining
    case MSR.MISC_ENABLE:
      return cpu.msrs.get(n) ?? 1n;
    case MSR.SMM_MONITOR_CTL:
      return 0n; // no dual-monitor treatment of SMM (SDM 3C §34.15.5)
    case MSR.PLATFORM_ID:
    case MSR.BIOS_SIGN_ID:
    case MSR.MCG_CAP:
    case MSR.MCG_STATUS:
      return cpu.msrs.get(n) ?? 0n;
    case MSR.FEATURE_CONTROL:
    case MSR.STAR:
    case MSR.LSTAR:
    case MSR.CSTAR:
    case MSR.SFMASK:
    case MSR.KERNEL_GS_BASE:
    case MSR.TSC_AUX:
    case MSR.SYSENTER_CS:
    case MSR.SYSENTER_ESP:
    case MSR.SYSENTER_EIP:
    case MSR.TSC_ADJUST:
      return cpu.msrs.get(n) ?? 0n;
  }
  if (isMtrr(n)) return cpu.msrs.get(n) ?? 0n;
  return cpu.gp(0);
}

export function writeMsr(cpu: Cpu, n: number, v: bigint): void {
  for (const h of cpu.msrHooks) if (h.write(cpu, n, v)) return;
  switch (n) {
    case MSR.TSC:
      cpu.setTsc(Number(v));
      return;
    case MSR.EFER: {
      // Only SCE, LME, LMA (read-only in effect) and NXE are implemented (SDM 3A §2.2.1).
      if (v & ~BigInt(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) cpu.gp(0);
      let nv = Number(v) & (EFER_SCE | EFER_LME | EFER_NXE);
      if (!cpu.hasFeature('NX') && nv & EFER_NXE) cpu.gp(0);
      // LME cannot change while paging is on; LMA is kept as the CPU computed it.
      if (cpu.cr0 & CR0_PG && (nv ^ cpu.efer) & EFER_LME) cpu.gp(0);
      nv |= cpu.efer & EFER_LMA;
      if ((nv ^ cpu.efer) & EFER_NXE) cpu.tlb.flushAll();
      cpu.efer = nv;
      return;
    }
    case MSR.FS_BASE:
    case MSR.GS_BASE:
      if (!isCanonical(v)) cpu.gp(0);
      cpu.segBase[n === MSR.FS_BASE ? FS : GS] = toNum(v);
      return;
    case MSR.LSTAR:
    case MSR.CSTAR:
    case MSR.KERNEL_GS_BASE:
    case MSR.SYSENTER_ESP:
    case MSR.SYSENTER_EIP:
      if (!isCanonical(v)) cpu.gp(0);
      cpu.msrs.set(n, v);
      return;
    case MSR.STAR:
      cpu.msrs.set(n, v);
      return;
    case MSR.SFMASK:
    case MSR.TSC_AUX:
      if (v >> 32n) cpu.gp(0);
      cpu.msrs.set(n, v);
      return;
    case MSR.SYSENTER_CS:
      cpu.msrs.set(n, v & 0xffffffffn);
      return;
    case MSR.FEATURE_CONTROL: {
      // Writes are refused once the lock bit is set (SDM 3C §23.7).
      const cur = cpu.msrs.get(n) ?? 0n;
      if (cur & 1n) cpu.gp(0);
      if (v & ~0xff07n) cpu.gp(0);
      cpu.msrs.set(n, v);
      return;
    }
    case MSR.APIC_BASE:
      if (v & ~0xffffff000n & ~0xd00n) cpu.gp(0);
      cpu.msrs.set(n, v);
      return;
    case MSR.PAT: {
      // Each byte must be a valid memory type: 0, 1, 4, 5, 6, 7.
      for (let k = 0n; k < 8n; k++) {
        const t = (v >> (k * 8n)) & 0xffn;
        if (t === 2n || t === 3n || t > 7n) cpu.gp(0);
      }
      cpu.msrs.set(n, v);
      return;
    }
    case MSR.SMM_MONITOR_CTL:
      // Only writable in SMM on parts with dual-monitor treatment: #GP here.
      cpu.gp(0);
      return;
    case MSR.MISC_ENABLE:
    case MSR.BIOS_SIGN_ID:
    case MSR.MCG_STATUS:
    case MSR.TSC_ADJUST:
      cpu.msrs.set(n, v);
      return;
  }
  if (isMtrr(n)) {
    cpu.msrs.set(n, v);
    return;
  }
  cpu.gp(0);
}
