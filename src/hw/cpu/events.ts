/**
 * Delivery of exceptions and interrupts (SDM Vol. 3A chapter 6): real-mode IVT,
 * 32-bit IDT gates with TSS stack switch, 64-bit IDT gates with IST, error codes,
 * and the double-fault / triple-fault rules of §6.15 (Table 6-5).
 *
 * Event types use the VMX interruption-type encoding (SDM 3C §24.8.3) so that the
 * VMX code can reuse them: 0 external interrupt, 2 NMI, 3 hardware exception,
 * 4 software interrupt (INT n), 5 privileged software exception (INT1),
 * 6 software exception (INT3, INTO).
 */
import type { Cpu } from './cpu.js';
import { ABORT, VMEXIT_MARK } from './fault.js';
import { exceptionExits } from '../vmx/intercepts.js';
import { CS, SS, TR, GP, NP, TS, DF_, PF_, SS_, IF, TF, NT, RF, VM, AC, Mode } from './regs.js';
import { Descriptor, readDescriptor, setAccessed, setSegCache, ATTR_UNUSABLE } from './segments.js';

export const EV_EXT = 0,
  EV_NMI = 2,
  EV_HW_EXC = 3,
  EV_SW_INT = 4,
  EV_PRIV_SW = 5,
  EV_SW_EXC = 6;

/** Vectors that push an error code (SDM 3A Table 6-1). */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21;
}

const BENIGN = 0,
  CONTRIBUTORY = 1,
  PAGEFAULT = 2;
function klass(v: number): number {
  if (v === PF_) return PAGEFAULT;
  if (v === 0 || (v >= 10 && v <= 13)) return CONTRIBUTORY;
  return BENIGN;
}

const GATES_64 = (1 << 0xe) | (1 << 0xf),
  GATES_32 = (1 << 0x5) | (1 << 0x6) | (1 << 0x7) | GATES_64;
const csDesc = new Descriptor();

/**
 * Deliver an event. For hardware exceptions `cpu.rip` must already point at the
 * faulting instruction (or the next one for traps); for software interrupts at the
 * next instruction. Faults during delivery escalate per §6.15.
 */
export function deliverEvent(cpu: Cpu, vector: number, type: number, errorCode: number): void {
  let v = vector,
    t = type,
    ec = type === EV_HW_EXC && hasErrorCode(vector) ? (errorCode < 0 ? 0 : errorCode) : -1;
  for (let depth = 0; ; depth++) {
    // In non-root operation, remember the event being delivered: a VM exit during its
    // delivery reports it as IDT-vectoring information (SDM 3C §27.2.4).
    if (cpu.nonRoot) {
      cpu.vectoringInfo = 0x80000000 | (t << 8) | v | (ec >= 0 ? 1 << 11 : 0) | 0;
      cpu.vectoringError = ec >= 0 ? ec : 0;
      // Software events: an exit during delivery reports the instruction length (§27.2.5).
      cpu.vectoringLen = t === EV_SW_INT || t === EV_SW_EXC || t === EV_PRIV_SW ? cpu.rip - cpu.insnRip : 0;
    }
    try {
      deliverOnce(cpu, v, t, ec);
      cpu.vectoringInfo = 0;
      return;
    } catch (e) {
      if (e !== ABORT || cpu.excVector === VMEXIT_MARK) throw e;
      const v2 = cpu.excVector,
        ec2 = cpu.excError;
      cpu.excVector = -1;
      // A fault while delivering INT n/INT3/INTO points at that instruction (it is a fault, not a trap).
      if (t === EV_SW_INT || t === EV_SW_EXC || t === EV_PRIV_SW) cpu.rip = cpu.insnRip;
      const ec2n = hasErrorCode(v2) ? (ec2 < 0 ? 0 : ec2) : -1;
      // In non-root operation the new exception itself may exit (exception bitmap), with the first
      // event as IDT-vectoring information, before any double-fault rule applies (SDM 3C §25.2, §27.2.4).
      if (cpu.nonRoot && exceptionExits(cpu, v2, ec2n)) {
        if (v2 === PF_) cpu.cr2 = cpu.prevCr2;
        cpu.vmx.exit(0, v2 === PF_ ? cpu.pfAddr : 0, 0, {
          intrInfo: 0x80000000 | (3 << 8) | v2 | (ec2n >= 0 ? 1 << 11 : 0) | 0,
          intrError: ec2n >= 0 ? ec2n : 0,
        });
      }
      if (v === DF_ || depth > 3) {
        // Triple fault: a VM exit in non-root operation (§25.2), else the machine stops.
        if (cpu.nonRoot) {
          cpu.vectoringInfo = 0;
          cpu.vmx.exit(2, 0, 0);
        }
        cpu.stop('triple-fault', 0, `triple fault: ${exName(v2)} while delivering #DF\n${cpu.dump()}`);
      }
      const k1 = t === EV_HW_EXC ? klass(v) : BENIGN,
        k2 = klass(v2);
      if ((k1 === CONTRIBUTORY && k2 === CONTRIBUTORY) || (k1 === PAGEFAULT && k2 !== BENIGN)) {
        v = DF_;
        ec = 0;
        // The #DF itself may exit through the exception bitmap (vector 8).
        if (cpu.nonRoot && exceptionExits(cpu, DF_, 0)) {
          cpu.vmx.exit(0, 0, 0, { intrInfo: 0x80000000 | (3 << 8) | DF_ | (1 << 11) | 0, intrError: 0 });
        }
      } else {
        v = v2;
        ec = ec2n;
      }
      // Faults raised while delivering an external event carry EXT=1 in their error codes.
      if (ec >= 0 && v !== DF_ && v !== PF_ && (t === EV_EXT || t === EV_NMI || t === EV_HW_EXC)) ec |= 1;
      t = EV_HW_EXC;
    }
  }
}

function exName(v: number): string {
  return `vector ${v}`;
}

function deliverOnce(cpu: Cpu, vector: number, type: number, ec: number): void {
  cpu.halted = false;
  const ext = type === EV_EXT || type === EV_NMI || type === EV_HW_EXC ? 1 : 0;
  const soft = type === EV_SW_INT || type === EV_SW_EXC;
  if (cpu.mode === Mode.Real) return deliverReal(cpu, vector);
  const lma = (cpu.efer & (1 << 10)) !== 0;
  const gsize = lma ? 16 : 8;
  const idtErr = (vector << 3) | 2 | ext;
  if (vector * gsize + gsize - 1 > cpu.idtrLimit) cpu.gp(idtErr);
  const ga = cpu.idtrBase + vector * gsize;
  const lo = cpu.rd32(ga, false) | 0,
    hi = cpu.rd32(ga + 4, false) | 0;
  const gtype = (hi >>> 8) & 0x1f;
  const gdpl = (hi >>> 13) & 3;
  const present = (hi & 0x8000) !== 0;
  // Valid gate types: 64-bit interrupt/trap gates in IA-32e mode; task, 16- and 32-bit gates otherwise.
  if (!((lma ? GATES_64 : GATES_32) & (1 << (gtype & 0xf))) || gtype & 0x10) cpu.gp(idtErr);
  if (soft && gdpl < cpu.cpl) cpu.gp(idtErr & ~1);
  if (!present) cpu.fault(NP, idtErr);
  if ((gtype & 0xf) === 5) cpu.gp(idtErr); // task gates: task switching is not modelled
  const trapGate = (gtype & 1) === 1;
  const sel = lo >>> 16;
  let offset = (lo & 0xffff) | (hi & 0xffff0000);
  offset >>>= 0;
  let ist = 0;
  if (lma) {
    const hi2 = cpu.rd32(ga + 8, false) | 0;
    offset = hi2 * 4294967296 + offset;
    ist = hi & 7;
  }
  if ((gtype & 0xf) < 8) offset &= 0xffff; // 16-bit gates
  // Target code segment (§6.12.1.1).
  if ((sel & 0xfffc) === 0) cpu.gp(ext);
  const d = csDesc;
  if (!readDescriptor(cpu, sel, d)) cpu.gp((sel & 0xfffc) | ext);
  if (!d.isCode || d.dpl > cpu.cpl) cpu.gp((sel & 0xfffc) | ext);
  if (!d.present) cpu.fault(NP, (sel & 0xfffc) | ext);
  if (lma && (!d.long || d.attr & (1 << 14))) cpu.gp((sel & 0xfffc) | ext);

  const flags = cpu.getFlags();
  const oldCs = cpu.segSel[CS],
    oldRip = cpu.rip;
  const oldSs = cpu.segSel[SS];
  const oldRsp = cpu.regNum(4);
  const newCpl = d.conforming ? cpu.cpl : d.dpl;
  const changePriv = newCpl < cpu.cpl;

  if (lma) {
    // 64-bit delivery (§6.14): 8-byte pushes, RSP from TSS (or IST), aligned to 16.
    let rsp: number;
    if (ist || changePriv) {
      const off = ist ? 36 + (ist - 1) * 8 : 4 + newCpl * 8;
      if (off + 7 > cpu.segLimit[TR]) cpu.fault(TS, (cpu.segSel[TR] & 0xfffc) | ext);
      const lo2 = cpu.rd32(cpu.segBase[TR] + off, false);
      const hi3 = cpu.rd32(cpu.segBase[TR] + off + 4, false) | 0;
      rsp = hi3 * 4294967296 + lo2;
      if (!(rsp >= -(2 ** 47) && rsp < 2 ** 47)) cpu.fault(SS_, ext);
    } else rsp = oldRsp;
    rsp -= ((rsp % 16) + 16) % 16;
    const frame = [oldSs & 0xffff, oldRsp, flags, oldCs & 0xffff, oldRip];
    if (ec >= 0) frame.push(ec >>> 0);
    // Write the whole frame first (a #PF here must not leave state changed).
    let sp = rsp;
    const writeSp = (val: number): void => {
      sp -= 8;
      if (!(sp >= -(2 ** 47) && sp < 2 ** 47)) cpu.fault(SS_, ext);
      cpu.wr64(sp, val | 0, Math.floor(val / 4294967296) | 0, false);
    };
    for (const val of frame) writeSp(val);
    setAccessed(cpu, d);
    if (changePriv) {
      // SS becomes a null selector with RPL = new CPL (§6.14.4).
      setSegCache(cpu, SS, newCpl, 0, 0, ATTR_UNUSABLE | (newCpl << 5) | 0x13);
    }
    cpu.segSel[CS] = (sel & 0xfffc) | newCpl;
    cpu.segBase[CS] = 0;
    cpu.segLimit[CS] = d.limit;
    cpu.segAttr[CS] = d.attr | 1;
    cpu.updateMode();
    cpu.rlo[4] = sp | 0;
    cpu.rhi[4] = Math.floor(sp / 4294967296) | 0;
    if (!(offset >= -(2 ** 47) && offset < 2 ** 47)) cpu.gp(ext);
    cpu.rip = offset;
  } else {
    // Protected-mode delivery (§6.12.1).
    const gate32 = (gtype & 8) !== 0;
    const psize = gate32 ? 4 : 2;
    let ssSel = oldSs,
      sp = cpu.spGet();
    let ssBase = cpu.segBase[SS],
      ssLimit = cpu.segLimit[SS],
      ssAttr = cpu.segAttr[SS];
    if (changePriv) {
      // New stack from the 32-bit TSS (§7.2.1): ESPn at 4+8n, SSn at 8+8n.
      const tss32 = (cpu.segAttr[TR] & 0xf) === 0xb || (cpu.segAttr[TR] & 0xf) === 0x9;
      const off = tss32 ? 4 + newCpl * 8 : 2 + newCpl * 4;
      if (off + (tss32 ? 5 : 3) > cpu.segLimit[TR]) cpu.fault(TS, (cpu.segSel[TR] & 0xfffc) | ext);
      sp = tss32 ? cpu.rd32(cpu.segBase[TR] + off, false) : cpu.rd16(cpu.segBase[TR] + off, false);
      ssSel = tss32 ? cpu.rd16(cpu.segBase[TR] + off + 4, false) : cpu.rd16(cpu.segBase[TR] + off + 2, false);
      const sd = new Descriptor();
      if ((ssSel & 0xfffc) === 0 || !readDescriptor(cpu, ssSel, sd)) cpu.fault(TS, (ssSel & 0xfffc) | ext);
      if ((ssSel & 3) !== newCpl || sd.dpl !== newCpl || !sd.s || sd.isCode || !(sd.attr & 2))
        cpu.fault(TS, (ssSel & 0xfffc) | ext);
      if (!sd.present) cpu.fault(SS_, (ssSel & 0xfffc) | ext);
      ssBase = sd.base;
      ssLimit = sd.limit;
      ssAttr = sd.attr | 1;
    }
    const big = (ssAttr & (1 << 14)) !== 0;
    const frame: number[] = [];
    if (changePriv) frame.push(oldSs & 0xffff, cpu.spGet());
    frame.push(flags, oldCs & 0xffff, oldRip);
    if (ec >= 0) frame.push(ec);
    for (const val of frame) {
      sp = big ? (sp - psize) >>> 0 : (sp - psize) & 0xffff;
      // Stack limit check against the new SS (expand-up stacks only).
      if (!(ssAttr & 4) && sp + psize - 1 > ssLimit)
        cpu.fault(SS_, changePriv ? (ssSel & 0xfffc) | ext : ext);
      const la = (ssBase + sp) % 4294967296;
      if (psize === 4) cpu.wr32(la, val, false);
      else cpu.wr16(la, val, false);
    }
    setAccessed(cpu, d);
    if (changePriv) setSegCache(cpu, SS, ssSel, ssBase, ssLimit, ssAttr);
    cpu.segSel[CS] = (sel & 0xfffc) | newCpl;
    cpu.segBase[CS] = d.base;
    cpu.segLimit[CS] = d.limit;
    cpu.segAttr[CS] = d.attr | 1;
    cpu.updateMode();
    if (big) cpu.rlo[4] = sp | 0;
    else cpu.rlo[4] = (cpu.rlo[4] & ~0xffff) | sp;
    if (offset > d.limit) cpu.gp(ext);
    cpu.rip = offset;
  }
  let nf = flags & ~(TF | NT | RF | VM);
  if (!trapGate) nf &= ~IF;
  void AC;
  cpu.setFlags(nf);
}

/** Real-mode delivery through the IVT (SDM 3A §20.1.4). */
function deliverReal(cpu: Cpu, vector: number): void {
  if (vector * 4 + 3 > cpu.idtrLimit) cpu.gp(0);
  const ent = cpu.rd32(cpu.idtrBase + vector * 4, false);
  const flags = cpu.getFlags();
  cpu.push(2, flags, 0);
  cpu.push(2, cpu.segSel[CS], 0);
  cpu.push(2, cpu.rip, 0);
  cpu.segSel[CS] = ent >>> 16;
  cpu.segBase[CS] = (ent >>> 16) << 4;
  cpu.rip = ent & 0xffff;
  cpu.setFlags(flags & ~(IF | TF | AC | RF));
}

export { GP };
