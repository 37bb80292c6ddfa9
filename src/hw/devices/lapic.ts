/**
 * The local APIC of one CPU (Intel SDM Vol. 3A chapter 11), in xAPIC mode (a 4 KiB
 * MMIO page, 0xFEE00000 after reset, relocatable through IA32_APIC_BASE) and x2APIC
 * mode (MSRs 0x800-0x8FF).
 *
 * Time. The APIC timer counts at the bus clock APIC_BUS_HZ = 100 MHz, so one bus tick
 * is exactly CPU_HZ / APIC_BUS_HZ = 29 CPU cycles and one timer count is 29 * divide
 * cycles: a count of N with divide D expires exactly 29 * D * N cycles after the write
 * of the initial count. (QEMU uses 1 GHz, which is not a whole number of cycles at
 * 2.9 GHz.) The TSC-deadline timer compares against the TSC, which is simulated time
 * plus the CPU's TSC offset (LapicHost.readTsc; clock.now() when absent).
 *
 * Choices where the SDM leaves room (each matches QEMU or KVM):
 * - Version 0x00050014: six LVT entries (timer, thermal, performance, LINT0, LINT1,
 *   error); no CMCI entry (MCG_CAP reports no CMCI) and no EOI-broadcast suppression
 *   (version bit 24 clear, so SVR bit 12 is reserved).
 * - Delivery is instantaneous: ICR delivery status (bit 12) always reads 0.
 * - Lowest-priority messages go to the matching, software-enabled local APIC with the
 *   lowest initial APIC id (no focus processor, no arbitration); see routeApicMessage.
 * - A write to LVT timer that switches into or out of TSC-deadline mode disarms the
 *   timer (SDM 3A §11.5.4.1); one-shot <-> periodic keeps the countdown running.
 * - A divide-configuration write while counting keeps the current count and continues
 *   at the new rate (the partial count in progress is dropped).
 * - Fixed interrupts received while software-disabled are dropped; NMI, INIT and SIPI
 *   are still accepted (SDM 3A §11.4.7.2).
 * - LINT pin polarity is not modelled: setLint's level means "asserted".
 * - On hardware reset the BSP's LVT LINT0 is ExtINT, unmasked (0x700), as a PC BIOS
 *   leaves it (and QEMU's reset does), so PIC interrupts reach the BSP.
 * - INIT: accept() only calls host.onInit(); the CPU decides when INIT takes effect
 *   (it is blocked in VMX root operation) and then calls initReset().
 */
import type { MmioDevice } from '../bus.js';
import type { Clock, TimerHandle } from '../events-queue.js';
import { CPU_HZ } from '../cost.js';
import { InternalError } from '../../common/index.js';
import { ADDR_SIZES } from '../../spec/cpuid.js';
import {
  type ApicMessage,
  type DeliveryMode,
  DM_EXTINT,
  DM_FIXED,
  DM_INIT,
  DM_LOWEST,
  DM_NMI,
  DM_SIPI,
  DM_SMI,
  SH_NONE,
  SH_SELF,
  SH_ALL_INCLUDING_SELF,
} from './apic-message.js';

/** Bus clock of the APIC timer, chosen so one bus tick is a whole number of CPU cycles. */
export const APIC_BUS_HZ = 100_000_000;
/** CPU cycles per APIC bus tick (29 at 2.9 GHz). */
export const CYCLES_PER_BUS_TICK = CPU_HZ / APIC_BUS_HZ;
if (!Number.isInteger(CYCLES_PER_BUS_TICK))
  throw new InternalError('APIC bus clock must divide the CPU clock');

export const APIC_DEFAULT_BASE = 0xfee00000;
export const APIC_MMIO_SIZE = 0x1000;
export const LAPIC_VERSION = 0x00050014;

export const MSR_APIC_BASE = 0x1b;
export const MSR_TSC_DEADLINE = 0x6e0;
export const MSR_X2APIC_FIRST = 0x800;
export const MSR_X2APIC_LAST = 0x8ff;

/** IA32_APIC_BASE bits (SDM 3A Figure 11-5). */
export const APIC_BASE_BSP = 1 << 8;
export const APIC_BASE_EXTD = 1 << 10;
export const APIC_BASE_EN = 1 << 11;

/** xAPIC register offsets in the MMIO page (SDM 3A Table 11-1); the x2APIC MSR is 0x800 + offset / 16. */
export const APIC_REG = {
  ID: 0x020,
  VERSION: 0x030,
  TPR: 0x080,
  APR: 0x090,
  PPR: 0x0a0,
  EOI: 0x0b0,
  RRD: 0x0c0,
  LDR: 0x0d0,
  DFR: 0x0e0,
  SVR: 0x0f0,
  ISR: 0x100,
  TMR: 0x180,
  IRR: 0x200,
  ESR: 0x280,
  LVT_CMCI: 0x2f0,
  ICR_LO: 0x300,
  ICR_HI: 0x310,
  LVT_TIMER: 0x320,
  LVT_THERMAL: 0x330,
  LVT_PERF: 0x340,
  LVT_LINT0: 0x350,
  LVT_LINT1: 0x360,
  LVT_ERROR: 0x370,
  TIMER_INITIAL: 0x380,
  TIMER_CURRENT: 0x390,
  TIMER_DIVIDE: 0x3e0,
  SELF_IPI: 0x3f0,
} as const;

/** ESR bits (SDM 3A Figure 11-9). */
export const ESR_SEND_ILLEGAL_VECTOR = 1 << 5;
export const ESR_RECV_ILLEGAL_VECTOR = 1 << 6;
export const ESR_ILLEGAL_REGISTER = 1 << 7;

/** LVT and ICR bits. */
export const LVT_MASKED = 1 << 16;
export const LVT_LEVEL = 1 << 15;
export const LVT_REMOTE_IRR = 1 << 14;
export const LVT_TIMER_PERIODIC = 1 << 17;
export const LVT_TIMER_TSC_DEADLINE = 2 << 17;
export const SVR_ENABLE = 1 << 8;

/** LVT indices: register (offset >> 4) = 0x32 + index. */
const LVT_TIMER = 0;
const LVT_LINT0 = 3;
const LVT_ERROR = 5;
const LVT_COUNT = 6;

/** Writable bits of each LVT entry, and the bits defined at all (writable + read-only). */
const LVT_WRITABLE = [0x000700ff, 0x000107ff, 0x000107ff, 0x0001a7ff, 0x0001a7ff, 0x000100ff];
const LVT_DEFINED = [0x000710ff, 0x000117ff, 0x000117ff, 0x0001f7ff, 0x0001f7ff, 0x000110ff];

const TIMER_ONE_SHOT = 0;
const TIMER_PERIODIC = 1;
const TIMER_TSC_DEADLINE = 2;

/** ICR low: vector, delivery mode, destination mode, level, trigger, shorthand. */
const ICR_LO_WRITABLE = 0x000ccfff;
/** x2APIC ICR low bits that #GP when set (bit 12, delivery status, is ignored). */
const X2_ICR_RESERVED = 0xfff32000;
/** SVR: vector, APIC enable, focus processor checking; bit 12 reserved (no EOI-broadcast suppression). */
const SVR_WRITABLE = 0x3ff;
const TDCR_WRITABLE = 0xb;

/** Register indices (offset >> 4). */
const R = {
  ID: 0x02,
  VERSION: 0x03,
  TPR: 0x08,
  APR: 0x09,
  PPR: 0x0a,
  EOI: 0x0b,
  RRD: 0x0c,
  LDR: 0x0d,
  DFR: 0x0e,
  SVR: 0x0f,
  ISR: 0x10,
  TMR: 0x18,
  IRR: 0x20,
  ESR: 0x28,
  ICR_LO: 0x30,
  ICR_HI: 0x31,
  LVT0: 0x32,
  LVT_LAST: 0x37,
  TMICT: 0x38,
  TMCCT: 0x39,
  TDCR: 0x3e,
  SELF_IPI: 0x3f,
} as const;

const MAX_PHYS_ADDR = ADDR_SIZES & 0xff;
/** Writable bits of IA32_APIC_BASE: the base address below MAXPHYADDR, EN, EXTD and BSP (BSP writes are ignored). */
const APIC_BASE_VALID = (((1n << BigInt(MAX_PHYS_ADDR)) - 1n) & ~0xfffn) | 0xd00n;

export interface LapicHost {
  /** Simulated time (cycles). */
  clock: Clock;
  /** The machine routes IPIs to every local APIC (routeApicMessage does it). */
  sendMessage(msg: ApicMessage): void;
  /** EOI of a level-triggered vector: the IOAPIC(s) clear remote IRR. */
  eoiBroadcast(vector: number): void;
  onInit(): void;
  onSipi(vector: number): void;
  onNmi(): void;
  /** An interrupt may now be deliverable to this CPU (wake it from HLT). */
  kick(): void;
  /** The CPU's TSC (cycles + TSC offset); clock.now() when absent. */
  readTsc?(): number;
  /** IA32_APIC_BASE changed the base address or the mode: remap (or unmap) the MMIO page. */
  baseChanged?(): void;
}

export type LapicMode = 'disabled' | 'xapic' | 'x2apic';

export interface LapicOptions {
  /** Bootstrap processor flag in IA32_APIC_BASE; default: apicId === 0. */
  bsp?: boolean;
}

/** Plain-data state for snapshot/restore. */
export interface LapicSnapshot {
  base: number;
  en: boolean;
  extd: boolean;
  xapicId: number;
  tpr: number;
  ldr: number;
  dfr: number;
  svr: number;
  isr: number[];
  tmr: number[];
  irr: number[];
  esr: number;
  esrPending: number;
  icrLo: number;
  icrHi: number;
  lvt: number[];
  timerInitial: number;
  timerStart: number;
  tdcr: number;
  /** Absolute cycle time of the armed timer event, or -1. */
  timerEventTime: number;
  tscDeadline: string;
  lint: boolean[];
  extIntPending: boolean;
}

const bitIndex = (words: Uint32Array): number => {
  for (let w = 7; w >= 0; w--) {
    const x = words[w];
    if (x) return w * 32 + 31 - Math.clz32(x);
  }
  return -1;
};
const testBit = (words: Uint32Array, v: number): boolean => ((words[v >>> 5] >>> (v & 31)) & 1) !== 0;
const setBit = (words: Uint32Array, v: number): void => {
  words[v >>> 5] |= 1 << (v & 31);
};
const clearBit = (words: Uint32Array, v: number): void => {
  words[v >>> 5] &= ~(1 << (v & 31));
};
/** Divide configuration register → divisor (SDM 3A Figure 11-10): bits 3,1:0. */
export function timerDivisor(tdcr: number): number {
  const code = ((tdcr >>> 1) & 4) | (tdcr & 3);
  return code === 7 ? 1 : 2 << code;
}

export class Lapic implements MmioDevice {
  readonly name: string;
  readonly bsp: boolean;
  /**
   * Set when an ExtINT message (e.g. from an IOAPIC pin in ExtINT mode) arrived: the PIC
   * supplies the vector. The machine clears it after the PIC's INTA cycle.
   */
  extIntPending = false;

  private base = APIC_DEFAULT_BASE;
  private en = true;
  private extd = false;
  private xapicId: number;
  private tprReg = 0;
  private ldr = 0;
  private dfr = 0xffffffff;
  private svr = 0xff;
  private readonly isr = new Uint32Array(8);
  private readonly tmr = new Uint32Array(8);
  private readonly irr = new Uint32Array(8);
  private esr = 0;
  private esrPending = 0;
  private icrLo = 0;
  private icrHi = 0;
  private readonly lvt = new Uint32Array(LVT_COUNT);
  private timerInitial = 0;
  /** Start (cycles) of the current countdown period. */
  private timerStart = 0;
  private tdcr = 0;
  /** Cycles per timer count at the current divide. */
  private cyclesPerCount = CYCLES_PER_BUS_TICK * 2;
  private timerEvent: TimerHandle | undefined;
  private tscDeadline = 0n;
  private readonly lint = [false, false];

  constructor(
    readonly apicId: number,
    private readonly host: LapicHost,
    opts: LapicOptions = {},
  ) {
    this.name = `lapic${apicId}`;
    this.bsp = opts.bsp ?? apicId === 0;
    this.xapicId = apicId & 0xff;
    this.reset();
  }

  // ---- reset and modes -------------------------------------------------------------

  /** Hardware reset (SDM 3A §11.4.7.1 and §11.12.5.1): xAPIC mode at 0xFEE00000. */
  reset(): void {
    this.base = APIC_DEFAULT_BASE;
    this.en = true;
    this.extd = false;
    this.xapicId = this.apicId & 0xff;
    this.resetRegisters();
    if (this.bsp) this.lvt[LVT_LINT0] = DM_EXTINT << 8;
  }

  /** INIT (SDM 3A §11.4.7.3): every register but the APIC id, base and mode is reinitialized. */
  initReset(): void {
    this.resetRegisters();
  }

  private resetRegisters(): void {
    this.tprReg = 0;
    this.ldr = 0;
    this.dfr = 0xffffffff;
    this.svr = 0xff;
    this.isr.fill(0);
    this.tmr.fill(0);
    this.irr.fill(0);
    this.esr = 0;
    this.esrPending = 0;
    this.icrLo = 0;
    this.icrHi = 0;
    this.lvt.fill(LVT_MASKED);
    this.cancelTimer();
    this.timerInitial = 0;
    this.timerStart = 0;
    this.setTdcr(0);
    this.tscDeadline = 0n;
    this.extIntPending = false;
  }

  get mode(): LapicMode {
    return !this.en ? 'disabled' : this.extd ? 'x2apic' : 'xapic';
  }
  get hardwareEnabled(): boolean {
    return this.en;
  }
  get x2apicMode(): boolean {
    return this.en && this.extd;
  }
  /** Enabled in IA32_APIC_BASE and in SVR. */
  get softwareEnabled(): boolean {
    return this.en && (this.svr & SVR_ENABLE) !== 0;
  }
  /** Physical address of the xAPIC MMIO page (meaningful in xAPIC mode only). */
  get apicBase(): number {
    return this.base;
  }
  /** IA32_APIC_BASE. */
  get apicBaseMsr(): bigint {
    return (
      BigInt(this.base) |
      BigInt((this.en ? APIC_BASE_EN : 0) | (this.extd ? APIC_BASE_EXTD : 0) | (this.bsp ? APIC_BASE_BSP : 0))
    );
  }

  /** WRMSR IA32_APIC_BASE with the transitions of SDM 3A §11.12.5 (Figure 11-28). */
  private writeApicBase(v: bigint): 'ok' | 'gp' {
    if (v & ~APIC_BASE_VALID) return 'gp';
    const en = (v & BigInt(APIC_BASE_EN)) !== 0n;
    const extd = (v & BigInt(APIC_BASE_EXTD)) !== 0n;
    if (extd && !en) return 'gp'; // the invalid state
    const from = this.mode;
    const to: LapicMode = !en ? 'disabled' : extd ? 'x2apic' : 'xapic';
    if (from === 'x2apic' && to === 'xapic') return 'gp';
    if (from === 'disabled' && to === 'x2apic') return 'gp';
    const base = Number(v & ~0xfffn);
    const changed = base !== this.base || from !== to;
    this.base = base;
    this.en = en;
    this.extd = extd;
    // Disabling loses the APIC's state; the ids are preserved (§11.4.3, §11.12.5.1).
    if (to === 'disabled' && from !== 'disabled') this.resetRegisters();
    // Entering x2APIC mode: the x2APIC id is the initial APIC id and the LDR is derived from it.
    if (to === 'x2apic' && from === 'xapic') this.xapicId = this.apicId & 0xff;
    if (changed) this.host.baseChanged?.();
    return 'ok';
  }

  // ---- TPR / PPR / CR8 -------------------------------------------------------------

  get tpr(): number {
    return this.tprReg;
  }
  set tpr(v: number) {
    this.tprReg = v & 0xff;
  }
  /** MOV from CR8: TPR[7:4] (SDM 3A §11.8.6.1). */
  get cr8(): number {
    return this.tprReg >>> 4;
  }
  /** MOV to CR8: TPR[7:4] = CR8[3:0], TPR[3:0] = 0. */
  set cr8(v: number) {
    this.tprReg = (v & 0xf) << 4;
  }
  /** Processor priority (SDM 3A §11.8.3.1). */
  get ppr(): number {
    const isrv = Math.max(bitIndex(this.isr), 0);
    return this.tprReg >>> 4 >= isrv >>> 4 ? this.tprReg : isrv & 0xf0;
  }

  // ---- interrupt delivery to the CPU ---------------------------------------------

  /** Highest-priority IRR vector whose priority class exceeds PPR's, else -1 (also when disabled). */
  pendingVector(): number {
    if (!this.softwareEnabled) return -1;
    const v = bitIndex(this.irr);
    if (v < 0 || (v & 0xf0) <= (this.ppr & 0xf0)) return -1;
    return v;
  }

  /** INTA: IRR -> ISR for the pending vector; the spurious vector when nothing is deliverable. */
  acknowledge(): number {
    const v = this.pendingVector();
    if (v < 0) return this.svr & 0xff;
    clearBit(this.irr, v);
    setBit(this.isr, v);
    return v;
  }

  /** EOI: retire the highest in-service vector; level-triggered ones are broadcast to the IOAPICs. */
  eoi(): void {
    const v = bitIndex(this.isr);
    if (v < 0) return;
    clearBit(this.isr, v);
    if (!testBit(this.tmr, v)) return;
    for (let pin = 0; pin < 2; pin++) {
      const i = LVT_LINT0 + pin;
      const e = this.lvt[i];
      if (e & LVT_REMOTE_IRR && (e & 0xff) === v) {
        this.lvt[i] = e & ~LVT_REMOTE_IRR;
        this.serviceLevelLint(pin);
      }
    }
    this.host.eoiBroadcast(v);
  }

  /**
   * True when the 8259's INTR reaches this CPU: the APIC is disabled (in IA32_APIC_BASE or
   * SVR) or LINT0 is unmasked ExtINT (QEMU's rule for the pc machine).
   */
  acceptsPicInterrupts(): boolean {
    if (!this.softwareEnabled) return true;
    const l = this.lvt[LVT_LINT0];
    return (l & LVT_MASKED) === 0 && ((l >>> 8) & 7) === DM_EXTINT;
  }

  // ---- messages from the APIC bus -----------------------------------------------

  /** Whether a message on the bus is for this local APIC; `isSelf`: this APIC sent it. */
  matches(msg: ApicMessage, isSelf: boolean): boolean {
    if (!this.en) return false;
    switch (msg.shorthand) {
      case SH_SELF:
        return isSelf;
      case SH_ALL_INCLUDING_SELF:
        return true;
      case SH_NONE:
        break;
      default:
        return !isSelf;
    }
    const dest = msg.dest >>> 0;
    if (this.extd) {
      if (dest === 0xffffffff || (!msg.x2apic && dest === 0xff)) return true;
      if (msg.destMode === 0) return dest === this.apicId >>> 0;
      const ldr = this.x2apicLdr();
      return dest >>> 16 === ldr >>> 16 && (dest & ldr & 0xffff) !== 0;
    }
    if (msg.x2apic && dest === 0xffffffff) return true;
    if (dest > 0xff) return false;
    if (dest === 0xff) return true;
    if (msg.destMode === 0) return dest === this.xapicId;
    const logical = this.ldr >>> 24;
    if (this.dfr >>> 28 === 0xf) return (dest & logical) !== 0; // flat model
    return dest >>> 4 === logical >>> 4 && (dest & logical & 0xf) !== 0; // cluster model
  }

  /** Accept a message already addressed to this local APIC (SDM 3A §11.6.1 delivery modes). */
  accept(msg: ApicMessage): void {
    if (!this.en) return;
    switch (msg.deliveryMode) {
      case DM_FIXED:
      case DM_LOWEST:
        if (!this.softwareEnabled) return;
        if (msg.trigger === 1 && !msg.level) return; // a de-assert message carries no interrupt
        if (msg.vector < 16) {
          this.signalError(ESR_RECV_ILLEGAL_VECTOR);
          return;
        }
        this.setIrr(msg.vector, msg.trigger === 1);
        return;
      case DM_NMI:
        this.host.onNmi();
        return;
      case DM_INIT:
        if (msg.trigger === 1 && !msg.level) return; // INIT level de-assert: no effect since Pentium 4
        this.host.onInit();
        return;
      case DM_SIPI:
        this.host.onSipi(msg.vector & 0xff);
        return;
      case DM_EXTINT:
        this.extIntPending = true;
        this.host.kick();
        return;
      case DM_SMI:
        return; // no SMM
    }
  }

  private setIrr(vector: number, level: boolean): void {
    setBit(this.irr, vector);
    if (level) setBit(this.tmr, vector);
    else clearBit(this.tmr, vector);
    this.host.kick();
  }

  /** An interrupt from a local source (LVT entry); the error LVT never re-raises itself. */
  private raiseLocal(lvtIndex: number, vector: number, level: boolean): void {
    if (vector < 16) {
      if (lvtIndex === LVT_ERROR) this.esrPending |= ESR_RECV_ILLEGAL_VECTOR;
      else this.signalError(ESR_RECV_ILLEGAL_VECTOR);
      return;
    }
    this.setIrr(vector, level);
  }

  private deliverLvt(i: number): void {
    const e = this.lvt[i];
    if (e & LVT_MASKED) return;
    const dm = i === LVT_TIMER || i === LVT_ERROR ? DM_FIXED : (e >>> 8) & 7;
    switch (dm) {
      case DM_FIXED:
        this.raiseLocal(i, e & 0xff, false);
        return;
      case DM_NMI:
        this.host.onNmi();
        return;
      case DM_INIT:
        this.host.onInit();
        return;
      default:
        return; // SMI: no SMM; ExtINT: the PIC path (acceptsPicInterrupts)
    }
  }

  private signalError(bits: number): void {
    this.esrPending |= bits;
    this.deliverLvt(LVT_ERROR);
  }

  /** Drive LINT0 (pin 0, the 8259's INTR) or LINT1 (pin 1, NMI) to `level` (asserted). */
  setLint(pin: 0 | 1, level: boolean): void {
    const old = this.lint[pin];
    this.lint[pin] = level;
    if (!this.en) {
      // Without an APIC the pins are the CPU's INTR and NMI inputs.
      if (pin === 1 && level && !old) this.host.onNmi();
      else if (pin === 0 && level) this.host.kick();
      return;
    }
    const i = LVT_LINT0 + pin;
    const e = this.lvt[i];
    if (e & LVT_MASKED) return;
    const dm = (e >>> 8) & 7;
    if (dm === DM_EXTINT) {
      if (level) this.host.kick();
    } else if (dm === DM_FIXED && e & LVT_LEVEL) {
      this.serviceLevelLint(pin);
    } else if (level && !old) {
      this.deliverLvt(i);
    }
  }

  /** A level-triggered fixed LINT pin: deliver while asserted and not awaiting EOI (remote IRR). */
  private serviceLevelLint(pin: number): void {
    const i = LVT_LINT0 + pin;
    const e = this.lvt[i];
    if (!this.lint[pin] || e & (LVT_MASKED | LVT_REMOTE_IRR)) return;
    if (((e >>> 8) & 7) !== DM_FIXED || !(e & LVT_LEVEL)) return;
    this.lvt[i] = e | LVT_REMOTE_IRR;
    this.raiseLocal(i, e & 0xff, true);
  }

  // ---- sending -----------------------------------------------------------------------

  private sendIcr(): void {
    const lo = this.icrLo;
    const dm = (lo >>> 8) & 7;
    if (dm === 3 || dm === 7) return; // reserved in the ICR: nothing is sent
    const vector = lo & 0xff;
    if ((dm === DM_FIXED || dm === DM_LOWEST) && vector < 16) this.signalError(ESR_SEND_ILLEGAL_VECTOR);
    const msg: ApicMessage = {
      vector,
      deliveryMode: dm as DeliveryMode,
      destMode: ((lo >>> 11) & 1) as 0 | 1,
      dest: this.extd ? this.icrHi >>> 0 : this.icrHi >>> 24,
      shorthand: ((lo >>> 18) & 3) as 0 | 1 | 2 | 3,
      level: ((lo >>> 14) & 1) === 1,
      trigger: ((lo >>> 15) & 1) as 0 | 1,
      source: this.apicId,
    };
    if (this.extd) msg.x2apic = true;
    this.host.sendMessage(msg);
  }

  // ---- timer ---------------------------------------------------------------------------

  private timerMode(): number {
    const m = (this.lvt[LVT_TIMER] >>> 17) & 3;
    return m === 3 ? TIMER_ONE_SHOT : m;
  }

  private cancelTimer(): void {
    if (this.timerEvent) this.host.clock.cancel(this.timerEvent);
    this.timerEvent = undefined;
  }

  private setTdcr(v: number): void {
    this.tdcr = v & TDCR_WRITABLE;
    this.cyclesPerCount = CYCLES_PER_BUS_TICK * timerDivisor(this.tdcr);
  }

  private scheduleCountdown(): void {
    const t = this.timerStart + this.timerInitial * this.cyclesPerCount;
    this.timerEvent = this.host.clock.schedule(t, () => this.countdownExpired(t));
  }

  private countdownExpired(t: number): void {
    this.timerEvent = undefined;
    if (this.timerMode() === TIMER_PERIODIC) {
      // Re-arm from the previous deadline, not from "now": no drift.
      this.timerStart = t;
      this.scheduleCountdown();
    }
    this.deliverLvt(LVT_TIMER);
  }

  private writeInitialCount(v: number): void {
    if (this.timerMode() === TIMER_TSC_DEADLINE) return;
    this.cancelTimer();
    this.timerInitial = v >>> 0;
    if (this.timerInitial === 0) return; // a write of 0 stops the timer
    this.timerStart = this.host.clock.now();
    this.scheduleCountdown();
  }

  /** Current count, derived exactly from simulated time. */
  private currentCount(): number {
    if (!this.timerEvent || this.timerMode() === TIMER_TSC_DEADLINE || this.timerInitial === 0) return 0;
    const n = Math.floor((this.host.clock.now() - this.timerStart) / this.cyclesPerCount);
    if (n <= 0) return this.timerInitial;
    if (this.timerMode() === TIMER_PERIODIC) return this.timerInitial - (n % this.timerInitial);
    return Math.max(0, this.timerInitial - n);
  }

  private writeDivide(v: number): void {
    const counting = this.timerEvent !== undefined && this.timerMode() !== TIMER_TSC_DEADLINE;
    const cur = counting ? this.currentCount() : 0;
    this.setTdcr(v);
    if (!counting) return;
    this.cancelTimer();
    this.timerStart = this.host.clock.now() - (this.timerInitial - cur) * this.cyclesPerCount;
    this.scheduleCountdown();
  }

  private writeLvt(i: number, x: number): void {
    const old = this.lvt[i];
    let v = (x & LVT_WRITABLE[i]) | (old & LVT_REMOTE_IRR);
    if (!(this.svr & SVR_ENABLE)) v |= LVT_MASKED; // software-disabled: the mask bits stay set
    if ((v & LVT_LEVEL) === 0 || ((v >>> 8) & 7) !== DM_FIXED) v &= ~LVT_REMOTE_IRR;
    this.lvt[i] = v;
    if (i === LVT_TIMER) {
      const wasTsc = ((old >>> 17) & 3) === TIMER_TSC_DEADLINE;
      const isTsc = ((v >>> 17) & 3) === TIMER_TSC_DEADLINE;
      if (wasTsc !== isTsc) {
        this.cancelTimer();
        this.timerInitial = 0;
        this.tscDeadline = 0n;
      }
    } else if (i === LVT_LINT0 || i === LVT_LINT0 + 1) {
      this.serviceLevelLint(i - LVT_LINT0);
    }
  }

  private readTsc(): number {
    return Math.floor(this.host.readTsc ? this.host.readTsc() : this.host.clock.now());
  }

  private writeTscDeadline(v: bigint): void {
    if (!this.en || this.timerMode() !== TIMER_TSC_DEADLINE) return; // ignored in other modes
    this.cancelTimer();
    this.tscDeadline = BigInt.asUintN(64, v);
    if (this.tscDeadline === 0n) return;
    const delta = this.tscDeadline - BigInt(this.readTsc());
    if (delta <= 0n) {
      this.tscDeadlineExpired();
      return;
    }
    this.timerEvent = this.host.clock.schedule(this.host.clock.now() + Number(delta), () =>
      this.tscDeadlineExpired(),
    );
  }

  private tscDeadlineExpired(): void {
    this.timerEvent = undefined;
    this.tscDeadline = 0n;
    this.deliverLvt(LVT_TIMER);
  }

  // ---- register file ---------------------------------------------------------------

  private writeSvr(x: number): void {
    this.svr = x & SVR_WRITABLE;
    if (!(this.svr & SVR_ENABLE)) for (let i = 0; i < LVT_COUNT; i++) this.lvt[i] |= LVT_MASKED;
  }

  private x2apicLdr(): number {
    return (((this.apicId >>> 4) << 16) | (1 << (this.apicId & 15))) >>> 0;
  }

  /** Registers common to both modes; undefined for an unimplemented one. */
  private readCommon(r: number): number | undefined {
    if (r >= R.ISR && r < R.ISR + 8) return this.isr[r - R.ISR];
    if (r >= R.TMR && r < R.TMR + 8) return this.tmr[r - R.TMR];
    if (r >= R.IRR && r < R.IRR + 8) return this.irr[r - R.IRR];
    if (r >= R.LVT0 && r <= R.LVT_LAST) return this.lvt[r - R.LVT0];
    switch (r) {
      case R.VERSION:
        return LAPIC_VERSION;
      case R.TPR:
        return this.tprReg;
      case R.PPR:
        return this.ppr;
      case R.SVR:
        return this.svr;
      case R.ESR:
        return this.esr;
      case R.TMICT:
        return this.timerInitial;
      case R.TMCCT:
        return this.currentCount();
      case R.TDCR:
        return this.tdcr;
    }
    return undefined;
  }

  private readXapic(r: number): number | undefined {
    switch (r) {
      case R.ID:
        return (this.xapicId << 24) >>> 0;
      case R.APR:
      case R.RRD:
      case R.EOI:
        return 0;
      case R.LDR:
        return this.ldr;
      case R.DFR:
        return (this.dfr | 0x0fffffff) >>> 0;
      case R.ICR_LO:
        return this.icrLo;
      case R.ICR_HI:
        return this.icrHi;
    }
    return this.readCommon(r);
  }

  /** xAPIC write; false for an unimplemented register. */
  private writeXapic(r: number, x: number): boolean {
    if (r >= R.LVT0 && r <= R.LVT_LAST) {
      this.writeLvt(r - R.LVT0, x);
      return true;
    }
    if (r >= R.ISR && r < R.IRR + 8) return true; // ISR, TMR, IRR: read-only
    switch (r) {
      case R.ID:
        this.xapicId = x >>> 24;
        return true;
      case R.VERSION:
      case R.APR:
      case R.PPR:
      case R.RRD:
      case R.TMCCT:
        return true; // read-only
      case R.TPR:
        this.tprReg = x & 0xff;
        return true;
      case R.EOI:
        this.eoi();
        return true;
      case R.LDR:
        this.ldr = (x & 0xff000000) >>> 0;
        return true;
      case R.DFR:
        this.dfr = (x | 0x0fffffff) >>> 0;
        return true;
      case R.SVR:
        this.writeSvr(x);
        return true;
      case R.ESR:
        this.latchEsr();
        return true;
      case R.ICR_LO:
        this.icrLo = x & ICR_LO_WRITABLE;
        this.sendIcr();
        return true;
      case R.ICR_HI:
        this.icrHi = (x & 0xff000000) >>> 0;
        return true;
      case R.TMICT:
        this.writeInitialCount(x);
        return true;
      case R.TDCR:
        this.writeDivide(x);
        return true;
    }
    return false;
  }

  /** ESR is write-then-read: a write makes the errors seen since the last write readable (SDM 3A §11.5.3). */
  private latchEsr(): void {
    this.esr = this.esrPending;
    this.esrPending = 0;
  }

  // ---- MMIO (xAPIC) ----------------------------------------------------------------

  /** Registers are 32 bits at 16-byte strides; narrower reads see bytes of the dword. */
  mmioRead(offset: number, size: number): number {
    if (!this.en || this.extd) return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    const sub = offset & 0xf;
    const r = (offset >>> 4) & 0xff;
    let v = this.readXapic(r);
    if (v === undefined) {
      this.signalError(ESR_ILLEGAL_REGISTER);
      v = 0;
    }
    if (sub >= 4) return 0;
    v = v >>> (sub * 8);
    return size >= 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
  }

  /** Only aligned 32-bit writes take effect (the low dword of a wider write). */
  mmioWrite(offset: number, size: number, value: number): void {
    if (!this.en || this.extd) return;
    if (size < 4 || offset & 0xf) return;
    if (!this.writeXapic((offset >>> 4) & 0xff, value >>> 0)) this.signalError(ESR_ILLEGAL_REGISTER);
  }

  // ---- MSRs ------------------------------------------------------------------------

  /**
   * RDMSR of IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC range. Returns undefined for an
   * MSR that is not the APIC's and for every x2APIC MSR that must #GP (not in x2APIC mode,
   * reserved, write-only); the CPU's fallback raises #GP for those numbers.
   */
  readMsr(n: number): bigint | undefined {
    if (n === MSR_APIC_BASE) return this.apicBaseMsr;
    if (n === MSR_TSC_DEADLINE)
      return this.en && this.timerMode() === TIMER_TSC_DEADLINE ? this.tscDeadline : 0n;
    if (n < MSR_X2APIC_FIRST || n > MSR_X2APIC_LAST || !this.x2apicMode) return undefined;
    const r = n - MSR_X2APIC_FIRST;
    switch (r) {
      case R.ID:
        return BigInt(this.apicId >>> 0);
      case R.LDR:
        return BigInt(this.x2apicLdr());
      case R.ICR_LO:
        return (BigInt(this.icrHi >>> 0) << 32n) | BigInt(this.icrLo);
    }
    const v = this.readCommon(r);
    return v === undefined ? undefined : BigInt(v >>> 0);
  }

  /** WRMSR: 'gp' raises #GP(0); 'not-mine' lets the CPU handle the MSR. */
  writeMsr(n: number, v: bigint): 'ok' | 'gp' | 'not-mine' {
    if (n === MSR_APIC_BASE) return this.writeApicBase(v);
    if (n === MSR_TSC_DEADLINE) {
      this.writeTscDeadline(v);
      return 'ok';
    }
    if (n < MSR_X2APIC_FIRST || n > MSR_X2APIC_LAST) return 'not-mine';
    if (!this.x2apicMode) return 'gp';
    const r = n - MSR_X2APIC_FIRST;
    if (r === R.ICR_LO) {
      const lo = Number(v & 0xffffffffn);
      if (lo & X2_ICR_RESERVED) return 'gp';
      this.icrLo = lo & ICR_LO_WRITABLE;
      this.icrHi = Number((v >> 32n) & 0xffffffffn);
      this.sendIcr();
      return 'ok';
    }
    if (v >> 32n) return 'gp'; // every other x2APIC register is 32 bits
    const x = Number(v);
    if (r >= R.LVT0 && r <= R.LVT_LAST) {
      if (x & ~LVT_DEFINED[r - R.LVT0]) return 'gp';
      this.writeLvt(r - R.LVT0, x);
      return 'ok';
    }
    switch (r) {
      case R.TPR:
        if (x & ~0xff) return 'gp';
        this.tprReg = x;
        return 'ok';
      case R.EOI:
        if (x !== 0) return 'gp';
        this.eoi();
        return 'ok';
      case R.SVR:
        if (x & ~SVR_WRITABLE) return 'gp';
        this.writeSvr(x);
        return 'ok';
      case R.ESR:
        if (x !== 0) return 'gp';
        this.latchEsr();
        return 'ok';
      case R.TMICT:
        this.writeInitialCount(x);
        return 'ok';
      case R.TDCR:
        if (x & ~TDCR_WRITABLE) return 'gp';
        this.writeDivide(x);
        return 'ok';
      case R.SELF_IPI:
        if (x & ~0xff) return 'gp';
        if (x < 16) this.signalError(ESR_SEND_ILLEGAL_VECTOR);
        this.host.sendMessage({
          vector: x,
          deliveryMode: DM_FIXED,
          destMode: 0,
          dest: this.apicId,
          shorthand: SH_SELF,
          level: true,
          trigger: 0,
          source: this.apicId,
          x2apic: true,
        });
        return 'ok';
    }
    return 'gp'; // read-only (ID, version, PPR, LDR, ISR/TMR/IRR, current count) or reserved
  }

  // ---- snapshot ------------------------------------------------------------------------

  snapshot(): LapicSnapshot {
    return {
      base: this.base,
      en: this.en,
      extd: this.extd,
      xapicId: this.xapicId,
      tpr: this.tprReg,
      ldr: this.ldr,
      dfr: this.dfr,
      svr: this.svr,
      isr: [...this.isr],
      tmr: [...this.tmr],
      irr: [...this.irr],
      esr: this.esr,
      esrPending: this.esrPending,
      icrLo: this.icrLo,
      icrHi: this.icrHi,
      lvt: [...this.lvt],
      timerInitial: this.timerInitial,
      timerStart: this.timerStart,
      tdcr: this.tdcr,
      timerEventTime: this.timerEvent?.active ? this.timerEvent.time : -1,
      tscDeadline: this.tscDeadline.toString(),
      lint: [...this.lint],
      extIntPending: this.extIntPending,
    };
  }

  /** Restore a snapshot; a pending timer event is scheduled again on host.clock. */
  restore(s: LapicSnapshot): void {
    this.cancelTimer();
    this.base = s.base;
    this.en = s.en;
    this.extd = s.extd;
    this.xapicId = s.xapicId;
    this.tprReg = s.tpr;
    this.ldr = s.ldr;
    this.dfr = s.dfr;
    this.svr = s.svr;
    this.isr.set(s.isr);
    this.tmr.set(s.tmr);
    this.irr.set(s.irr);
    this.esr = s.esr;
    this.esrPending = s.esrPending;
    this.icrLo = s.icrLo;
    this.icrHi = s.icrHi;
    this.lvt.set(s.lvt);
    this.timerInitial = s.timerInitial;
    this.timerStart = s.timerStart;
    this.setTdcr(s.tdcr);
    this.tscDeadline = BigInt(s.tscDeadline);
    this.lint[0] = s.lint[0];
    this.lint[1] = s.lint[1];
    this.extIntPending = s.extIntPending;
    if (s.timerEventTime >= 0) {
      if (this.timerMode() === TIMER_TSC_DEADLINE)
        this.timerEvent = this.host.clock.schedule(s.timerEventTime, () => this.tscDeadlineExpired());
      else {
        const t = s.timerEventTime;
        this.timerEvent = this.host.clock.schedule(t, () => this.countdownExpired(t));
      }
    }
  }
}

/**
 * Deliver a message on the APIC bus to the local APICs (in array order). Lowest-priority
 * messages go to one APIC only: the matching, software-enabled one with the lowest initial
 * APIC id (a simplification of the SDM's arbitration; documented in the header).
 * Messages to absent APICs are dropped, as on hardware.
 */
export function routeApicMessage(msg: ApicMessage, lapics: readonly Lapic[]): void {
  if (msg.deliveryMode === DM_LOWEST) {
    let best: Lapic | undefined;
    for (const l of lapics)
      if (l.softwareEnabled && l.matches(msg, l.apicId === msg.source) && (!best || l.apicId < best.apicId))
        best = l;
    best?.accept(msg);
    return;
  }
  for (const l of lapics) if (l.matches(msg, l.apicId === msg.source)) l.accept(msg);
}
