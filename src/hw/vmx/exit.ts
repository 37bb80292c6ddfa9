/**
 * VM exits (SDM 3C chapter 27): record the exit information, save the guest state
 * into the current VMCS, and load the host state — or, when the host is the
 * TypeScript L0 (the host interface), hand the exit to it instead of loading x86
 * host state.
 */
import type { Cpu } from '../cpu/cpu.js';
import { CS, SS, DS, ES, FS, GS, LDTR, TR, IF } from '../cpu/regs.js';
import { F, GUEST_SEG_SEL, GUEST_SEG_LIMIT, GUEST_SEG_AR, GUEST_SEG_BASE } from './f.js';
import {
  EXIT_SAVE_DEBUG,
  EXIT_HOST_ADDR_SPACE,
  EXIT_SAVE_PAT,
  EXIT_LOAD_PAT,
  EXIT_SAVE_EFER,
  EXIT_LOAD_EFER,
  EXIT_SAVE_PREEMPT,
  BLOCK_STI,
  BLOCK_MOV_SS,
  BLOCK_NMI,
  ACT_ACTIVE,
  ACT_HLT,
  ACT_SHUTDOWN,
  ACT_WAIT_SIPI,
  EXIT_REASON_ENTRY_FAILURE,
  PIN_VIRTUAL_NMIS,
} from './bits.js';
import type { Vmcs } from './vmcs.js';
import { MSR } from '../../spec/msr.js';
import { readMsr, writeMsr } from '../cpu/msrs.js';

const TWO32 = 4294967296;

/** Save the processor state into the guest-state area (§27.3). */
export function saveGuestState(cpu: Cpu, v: Vmcs, exitCtls: number): void {
  v.setNum(F.GUEST_CR0, cpu.cr0 >>> 0);
  v.setNum(F.GUEST_CR3, cpu.cr3);
  v.setNum(F.GUEST_CR4, cpu.cr4 >>> 0);
  if (exitCtls & EXIT_SAVE_DEBUG) {
    v.setNum(F.GUEST_DR7, cpu.dr[7] || 0x400);
    v.setNum(F.GUEST_IA32_DEBUGCTL, 0);
  }
  v.setNum(F.GUEST_RSP, cpu.regNum(4));
  v.setNum(F.GUEST_RIP, cpu.rip);
  v.setNum(F.GUEST_RFLAGS, cpu.getFlags() >>> 0);
  for (let s = 0; s < 8; s++) {
    v.set(GUEST_SEG_SEL[s], cpu.segSel[s] & 0xffff);
    v.setNum(GUEST_SEG_BASE[s], cpu.segBase[s]);
    v.set(GUEST_SEG_LIMIT[s], cpu.segLimit[s] | 0);
    v.set(GUEST_SEG_AR[s], cpu.segAttr[s] & 0x1f0ff);
  }
  v.setNum(F.GUEST_GDTR_BASE, cpu.gdtrBase);
  v.set(F.GUEST_GDTR_LIMIT, cpu.gdtrLimit & 0xffff);
  v.setNum(F.GUEST_IDTR_BASE, cpu.idtrBase);
  v.set(F.GUEST_IDTR_LIMIT, cpu.idtrLimit & 0xffff);
  v.set(F.GUEST_SYSENTER_CS, Number((cpu.msrs.get(MSR.SYSENTER_CS) ?? 0n) & 0xffffffffn) | 0);
  v.setNum(F.GUEST_SYSENTER_ESP, Number(BigInt.asIntN(64, cpu.msrs.get(MSR.SYSENTER_ESP) ?? 0n)));
  v.setNum(F.GUEST_SYSENTER_EIP, Number(BigInt.asIntN(64, cpu.msrs.get(MSR.SYSENTER_EIP) ?? 0n)));
  if (exitCtls & EXIT_SAVE_PAT) {
    const pat = readMsr(cpu, MSR.PAT);
    v.set(F.GUEST_IA32_PAT, Number(pat & 0xffffffffn) | 0, Number(pat >> 32n) | 0);
  }
  if (exitCtls & EXIT_SAVE_EFER) v.set(F.GUEST_IA32_EFER, cpu.efer, 0);
  // Activity and interruptibility state (§27.3.4).
  v.set(
    F.GUEST_ACTIVITY_STATE,
    cpu.shutdownActivity ? ACT_SHUTDOWN : cpu.waitForSipi ? ACT_WAIT_SIPI : cpu.halted ? ACT_HLT : ACT_ACTIVE,
  );
  let intr = 0;
  // The shadow after MOV SS/POP SS is blocking by MOV SS; after STI, by STI (Table 24-3).
  if (cpu.intShadow) intr |= cpu.movSsShadow ? BLOCK_MOV_SS : BLOCK_STI;
  const pin = cpu.vmx.pin;
  if (pin & PIN_VIRTUAL_NMIS ? cpu.vmx.virtualNmiBlocked : cpu.nmiBlocked) intr |= BLOCK_NMI;
  v.set(F.GUEST_INTERRUPTIBILITY_INFO, intr);
  v.setNum(F.GUEST_PENDING_DBG_EXCEPTIONS, 0);
  if (exitCtls & EXIT_SAVE_PREEMPT) v.set(F.VMX_PREEMPTION_TIMER_VALUE, cpu.vmx.preemptionTimerValue());
  void IF;
}

/** Load the host state (§27.5) for an x86 host. Failures here are VMX aborts. */
export function loadHostState(cpu: Cpu, v: Vmcs, exitCtls: number): void {
  const long = (exitCtls & EXIT_HOST_ADDR_SPACE) !== 0;
  cpu.cr0 = v.get32(F.HOST_CR0) | 0x10 | 0;
  cpu.cr3 = v.getU(F.HOST_CR3);
  cpu.cr4 = v.get32(F.HOST_CR4) | 0;
  cpu.dr[7] = 0x400;
  writeMsr(cpu, MSR.SYSENTER_CS, BigInt(v.get32(F.HOST_IA32_SYSENTER_CS)));
  cpu.msrs.set(MSR.SYSENTER_ESP, BigInt.asUintN(64, BigInt(v.getNum(F.HOST_IA32_SYSENTER_ESP))));
  cpu.msrs.set(MSR.SYSENTER_EIP, BigInt.asUintN(64, BigInt(v.getNum(F.HOST_IA32_SYSENTER_EIP))));
  if (exitCtls & EXIT_LOAD_PAT)
    cpu.msrs.set(
      MSR.PAT,
      BigInt.asUintN(64, (BigInt(v.getHi(F.HOST_IA32_PAT)) << 32n) | BigInt(v.get32(F.HOST_IA32_PAT))),
    );
  if (exitCtls & EXIT_LOAD_EFER) cpu.efer = v.get32(F.HOST_IA32_EFER) & (1 | 0x100 | 0x400 | 0x800);
  // EFER.LMA and LME follow the host address-space size (§27.5.1).
  if (long) cpu.efer |= 0x500;
  else cpu.efer &= ~0x500;
  const set = (s: number, sel: number, base: number, limit: number, attr: number): void => {
    cpu.segSel[s] = sel & 0xffff;
    cpu.segBase[s] = base;
    cpu.segLimit[s] = limit;
    cpu.segAttr[s] = attr;
  };
  // §27.5.2: CS is a flat execute/read accessed code segment, 64-bit if the host is.
  set(CS, v.get32(F.HOST_CS_SELECTOR), 0, 0xffffffff, 0x809b | (long ? 0x2000 : 0x4000));
  const dataAttr = (sel: number): number => (sel & 0xfffc ? 0xc093 : 0x10000 | 0xc093);
  const ss = v.get32(F.HOST_SS_SELECTOR);
  set(SS, ss, 0, 0xffffffff, ss & 0xfffc ? 0xc093 : 0x1c093);
  for (const [s, enc] of [
    [DS, F.HOST_DS_SELECTOR],
    [ES, F.HOST_ES_SELECTOR],
  ] as const) {
    const sel = v.get32(enc);
    set(s, sel, 0, 0xffffffff, dataAttr(sel));
  }
  const fs = v.get32(F.HOST_FS_SELECTOR),
    gs = v.get32(F.HOST_GS_SELECTOR);
  set(FS, fs, v.getNum(F.HOST_FS_BASE), 0xffffffff, dataAttr(fs));
  set(GS, gs, v.getNum(F.HOST_GS_BASE), 0xffffffff, dataAttr(gs));
  set(TR, v.get32(F.HOST_TR_SELECTOR), v.getNum(F.HOST_TR_BASE), 0x67, 0x8b);
  set(LDTR, 0, 0, 0, 0x10000);
  cpu.gdtrBase = v.getNum(F.HOST_GDTR_BASE);
  cpu.gdtrLimit = 0xffff;
  cpu.idtrBase = v.getNum(F.HOST_IDTR_BASE);
  cpu.idtrLimit = 0xffff;
  const rsp = v.getNum(F.HOST_RSP);
  cpu.rlo[4] = rsp | 0;
  cpu.rhi[4] = Math.floor(rsp / TWO32) | 0;
  cpu.rip = long ? v.getNum(F.HOST_RIP) : v.get32(F.HOST_RIP);
  cpu.setFlags(2);
  cpu.halted = false;
  cpu.intShadow = 0;
  cpu.updateMode();
}

/**
 * Process the VM-exit MSR-store and MSR-load lists (§27.4, §27.6). Returns 0, or the
 * VMX-abort indicator: 1 failure saving guest MSRs, 4 failure loading host MSRs (§27.7).
 */
export function exitMsrLists(cpu: Cpu, v: Vmcs): number {
  return exitMsrStore(cpu, v) || exitMsrLoad(cpu, v);
}

/** The VM-exit MSR-store list (§27.4): guest MSRs saved. 0, or VMX-abort indicator 1. */
export function exitMsrStore(cpu: Cpu, v: Vmcs): number {
  const nStore = v.get32(F.VM_EXIT_MSR_STORE_COUNT);
  const storeAddr = v.getU(F.VM_EXIT_MSR_STORE_ADDR);
  for (let k = 0; k < nStore; k++) {
    const e = storeAddr + 16 * k;
    const idx = cpu.mem.read32(e) >>> 0;
    let val = 0n;
    try {
      val = readMsr(cpu, idx);
    } catch {
      cpu.excVector = -1;
      return 1;
    }
    cpu.mem.write32(e + 8, Number(val & 0xffffffffn) | 0);
    cpu.mem.write32(e + 12, Number(val >> 32n) | 0);
  }
  return 0;
}

/** The VM-exit MSR-load list (§27.6): host MSRs loaded. 0, or VMX-abort indicator 4. */
export function exitMsrLoad(cpu: Cpu, v: Vmcs): number {
  const nLoad = v.get32(F.VM_EXIT_MSR_LOAD_COUNT);
  const loadAddr = v.getU(F.VM_EXIT_MSR_LOAD_ADDR);
  for (let k = 0; k < nLoad; k++) {
    const e = loadAddr + 16 * k;
    const idx = cpu.mem.read32(e) >>> 0;
    const val = (BigInt(cpu.mem.read32(e + 12) >>> 0) << 32n) | BigInt(cpu.mem.read32(e + 8) >>> 0);
    try {
      writeMsr(cpu, idx, val);
    } catch {
      cpu.excVector = -1;
      return 4;
    }
  }
  return 0;
}

export { EXIT_REASON_ENTRY_FAILURE };
