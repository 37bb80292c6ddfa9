/**
 * String instructions: MOVS CMPS STOS LODS SCAS INS OUTS for byte/word/dword/qword
 * elements, with REP/REPE/REPNE (SDM Vol. 2 "REP/REPE/REPZ/REPNE/REPNZ").
 *
 * The address size selects SI/ESI/RSI, DI/EDI/RDI and CX/ECX/RCX (with their
 * wrap-around); the source segment may be overridden (default DS), the destination
 * is always ES. Restartability (SDM Vol. 1 §7.3.9.2): the registers are written
 * back with the number of completed iterations when an iteration faults, and RIP
 * still points at the instruction (the CPU restores it on every fault).
 *
 * A repeated instruction runs at most CHUNK iterations per execution; if more
 * remain, RIP is set back to the instruction so it runs again. Interrupts are thus
 * recognized between chunks, the machine stays responsive and the run is
 * deterministic. REP MOVS/STOS over RAM copy or fill one page-sized run of
 * elements at a time (fastChunk) with the same architectural result.
 */
import type { OpcodeEntry } from '../../../spec/opcodes.js';
import type { Cpu } from '../cpu.js';
import type { Handler, Insn } from '../insn.js';
import type { IoSize } from '../../bus.js';
import { ACC_READ, ACC_WRITE } from '../../mmu/paging.js';
import { DF, DS, ES, Mode } from '../regs.js';
import { alu, OP_CMP } from './alu.js';
import { checkIoPermission } from './io-perm.js';
import { ioExits, ioQual } from '../../vmx/intercepts.js';
import { R } from '../../vmx/bits.js';

const TWO32 = 4294967296;
/** Iterations of a repeated string instruction per execution. */
export const CHUNK = 4096;

const MOVS = 0,
  CMPS = 1,
  STOS = 2,
  LODS = 3,
  SCAS = 4,
  INS = 5,
  OUTS = 6;

const RCX = 1,
  RSI = 6,
  RDI = 7;

/** Offset held in register r for address size `asize` (64-bit: a signed double). */
function regOff(cpu: Cpu, r: number, asize: number): number {
  if (asize === 8) return cpu.rhi[r] * TWO32 + (cpu.rlo[r] >>> 0);
  return asize === 4 ? cpu.rlo[r] >>> 0 : cpu.rlo[r] & 0xffff;
}

/** Offset `base + adj` wrapped to the address size. */
function wrapOff(base: number, adj: number, asize: number): number {
  if (asize === 8) return base + adj;
  return asize === 4 ? (base + adj) >>> 0 : (base + adj) & 0xffff;
}

/** Add the small signed integer `adj` to register r as an `asize` register (32-bit writes zero-extend). */
function addReg(cpu: Cpu, r: number, asize: number, adj: number): void {
  if (adj === 0) return;
  const lo = cpu.rlo[r];
  if (asize === 8) {
    const s = (lo >>> 0) + adj;
    cpu.rlo[r] = s | 0;
    cpu.rhi[r] = (cpu.rhi[r] + Math.floor(s / TWO32)) | 0;
  } else if (asize === 4) {
    cpu.rlo[r] = lo + adj;
    cpu.rhi[r] = 0;
  } else cpu.rlo[r] = (lo & ~0xffff) | ((lo + adj) & 0xffff);
}

/** Repeat count for this execution: min(count register, CHUNK); sets `more` when iterations remain after it. */
let more = false;
function repCount(cpu: Cpu, asize: number): number {
  let c: number;
  if (asize === 8) c = cpu.rhi[RCX] !== 0 ? Infinity : cpu.rlo[RCX] >>> 0;
  else c = asize === 4 ? cpu.rlo[RCX] >>> 0 : cpu.rlo[RCX] & 0xffff;
  more = c > CHUNK;
  return more ? CHUNK : c;
}

/**
 * Try to perform up to `max` iterations of REP MOVS/STOS starting at iteration
 * offsets (si, di) as one RAM run inside a page. Returns the iterations done; 0
 * when the slow path must take the next iteration (page-straddling element, MMIO,
 * segment limit, address wrap, or an overlap whose element order matters).
 */
function fastChunk(
  cpu: Cpu,
  op: number,
  size: number,
  down: boolean,
  asize: number,
  srcSeg: number,
  si: number,
  di: number,
  max: number,
): number {
  if (max < 2) return 0;
  const bytesMax = max * size;
  // Offsets must not wrap inside the run.
  if (asize !== 8) {
    const top = asize === 4 ? TWO32 : 65536;
    if (down ? di - bytesMax + size < 0 : di + bytesMax > top) return 0;
    if (op === MOVS && (down ? si - bytesMax + size < 0 : si + bytesMax > top)) return 0;
  }
  const long = cpu.mode === Mode.Long64;
  const user = cpu.cpl === 3;
  // Same order of checks as the slow path: source first.
  const laS = op === MOVS ? cpu.lin(srcSeg, si, size, false) : 0;
  const laD = cpu.lin(ES, di, size, true);
  let k = pageRun(laD, size, down, max);
  if (op === MOVS) k = Math.min(k, pageRun(laS, size, down, max));
  if (k < 2) return 0;
  if (!long && cpu.mode !== Mode.Real) {
    // The first element passed the segment checks; the last must fit the (expand-up) limit too.
    const span = (k - 1) * size;
    if (!segFits(cpu, ES, down ? di - span : di + span, size)) return 0;
    if (op === MOVS && !segFits(cpu, srcSeg, down ? si - span : si + span, size)) return 0;
  }
  const mem = cpu.mem;
  const bytes = k * size;
  const oS = op === MOVS ? cpu.xlate(laS, ACC_READ, user) : 0;
  if (oS < 0) return 0;
  const oD = cpu.xlate(laD, ACC_WRITE, user);
  if (oD < 0) return 0;
  const startD = down ? oD - bytes + size : oD;
  if (op === STOS) {
    const v = cpu.getReg(0, size);
    const vh = cpu.hi;
    if (size === 1) mem.u8.fill(v, startD, startD + bytes);
    else {
      const dv = mem.dv;
      for (let p = startD; p < startD + bytes; p += size) {
        if (size === 2) dv.setUint16(p, v, true);
        else {
          dv.setInt32(p, v, true);
          if (size === 8) dv.setInt32(p + 4, vh, true);
        }
      }
    }
  } else {
    const startS = down ? oS - bytes + size : oS;
    // copyWithin is memmove; element-order semantics agree with it unless the destination
    // lies ahead of the source in the direction of travel and the ranges overlap.
    const ahead = down ? startD < startS : startD > startS;
    if (ahead && Math.abs(startD - startS) < bytes) return 0;
    mem.u8.copyWithin(startD, startS, startS + bytes);
  }
  if (mem.codePages[startD >>> 12]) mem.noteWrite(startD);
  return k;
}

/** Elements of `size` from linear `la` that stay inside its page, in the direction of travel (max `max`). */
function pageRun(la: number, size: number, down: boolean, max: number): number {
  const po = la & 0xfff;
  if (po + size > 4096) return 0;
  const n = down ? Math.floor(po / size) + 1 : Math.floor((4096 - po) / size);
  return n < max ? n : max;
}

/** Whether `off` .. off+size-1 lies within an expand-up segment's limit (no fault raised). */
function segFits(cpu: Cpu, seg: number, off: number, size: number): boolean {
  if ((cpu.segAttr[seg] & 0xc) === 4) return false; // expand-down data: let the slow path decide
  return off >= 0 && off + size - 1 <= cpu.segLimit[seg];
}

function stringHandler(op: number): Handler {
  const usesSi = op === MOVS || op === CMPS || op === LODS || op === OUTS;
  const usesDi = op === MOVS || op === CMPS || op === STOS || op === SCAS || op === INS;
  const compares = op === CMPS || op === SCAS;
  const io = op === INS || op === OUTS;
  return (cpu: Cpu, i: Insn): void => {
    // INS/OUTS move at most 32 bits (REX.W does not widen them).
    const size = io && i.size === 8 ? 4 : i.size;
    const asize = i.asize;
    const srcSeg = i.segOverride >= 0 ? i.segOverride : DS;
    const down = (cpu.fl.word & DF) !== 0;
    const delta = down ? -size : size;
    const port = cpu.rlo[2] & 0xffff;
    if (io) {
      checkIoPermission(cpu, port, size);
      // VM exit for INS/OUTS under I/O exiting (SDM 3C §25.1.3), qualification of Table 27-5.
      if (cpu.nonRoot && ioExits(cpu, port, size))
        cpu.vmx.exit(R.IO_INSTRUCTION, ioQual(size, op === INS, true, i.rep !== 0, false, port), i.len, {
          instructionInfo:
            ((i.asize === 2 ? 0 : i.asize === 4 ? 1 : 2) << 7) | ((op === OUTS ? srcSeg : 0) << 15),
          // Guest-linear address of the memory operand (ES:rDI for INS, seg:rSI for OUTS), §27.2.1.
          guestLinear: stringLinear(cpu, op === INS ? 0 : srcSeg, op === INS ? 7 : 6, asize),
        });
    }
    const rep = i.rep !== 0;
    let n = 1,
      again = false;
    if (rep) {
      n = repCount(cpu, asize);
      if (n === 0) return;
      again = more;
    }
    const si0 = usesSi ? regOff(cpu, RSI, asize) : 0;
    const di0 = usesDi ? regOff(cpu, RDI, asize) : 0;
    // REPE stops on ZF=0, REPNE on ZF=1 (only for CMPS/SCAS; F2 elsewhere acts as REP).
    const stopOnZf = i.rep === 0xf2;
    let done = 0;
    let stopped = false;
    try {
      const fast = rep && n > 1 && (op === MOVS || op === STOS);
      while (done < n) {
        const adj = done * delta;
        const si = usesSi ? wrapOff(si0, adj, asize) : 0;
        const di = usesDi ? wrapOff(di0, adj, asize) : 0;
        if (fast) {
          const k = fastChunk(cpu, op, size, down, asize, srcSeg, si, di, n - done);
          if (k > 0) {
            done += k;
            continue;
          }
        }
        switch (op) {
          case MOVS: {
            const v = cpu.rdN(cpu.lin(srcSeg, si, size, false), size);
            const vh = cpu.hi;
            cpu.wrN(cpu.lin(ES, di, size, true), size, v, vh);
            break;
          }
          case STOS: {
            const v = cpu.getReg(0, size);
            cpu.wrN(cpu.lin(ES, di, size, true), size, v, cpu.hi);
            break;
          }
          case LODS: {
            const v = cpu.rdN(cpu.lin(srcSeg, si, size, false), size);
            cpu.setReg(0, size, v, cpu.hi);
            break;
          }
          case CMPS: {
            const a = cpu.rdN(cpu.lin(srcSeg, si, size, false), size);
            const ah = cpu.hi;
            const b = cpu.rdN(cpu.lin(ES, di, size, false), size);
            alu(cpu, OP_CMP, size, a, ah, b, cpu.hi);
            break;
          }
          case SCAS: {
            const b = cpu.rdN(cpu.lin(ES, di, size, false), size);
            const bh = cpu.hi;
            const a = cpu.getReg(0, size);
            alu(cpu, OP_CMP, size, a, cpu.hi, b, bh);
            break;
          }
          case INS: {
            const la = cpu.lin(ES, di, size, true);
            // Check the destination before reading the port: a port read has side effects.
            cpu.probeWrite(la, size);
            const v = cpu.io.in(port, size as IoSize);
            cpu.wrN(la, size, v, 0);
            break;
          }
          default: {
            const v = cpu.rdN(cpu.lin(srcSeg, si, size, false), size);
            cpu.io.out(port, size as IoSize, v);
          }
        }
        done++;
        if (compares && rep && cpu.fl.zf() === stopOnZf) {
          stopped = true;
          break;
        }
      }
    } finally {
      if (done > 0) {
        if (usesSi) addReg(cpu, RSI, asize, done * delta);
        if (usesDi) addReg(cpu, RDI, asize, done * delta);
        if (rep) addReg(cpu, RCX, asize, -done);
      }
    }
    if (again && !stopped) cpu.rip = cpu.insnRip;
  };
}

export const stringHandlers: Record<string, (e: OpcodeEntry) => Handler> = {
  MOVS: () => stringHandler(MOVS),
  CMPS: () => stringHandler(CMPS),
  STOS: () => stringHandler(STOS),
  LODS: () => stringHandler(LODS),
  SCAS: () => stringHandler(SCAS),
  INS: () => stringHandler(INS),
  OUTS: () => stringHandler(OUTS),
};

/** Linear address of a string operand (segment base + rSI/rDI of the address size). */
function stringLinear(cpu: Cpu, seg: number, reg: number, asize: number): number {
  const off = asize === 8 ? cpu.regNum(reg) : asize === 4 ? cpu.rlo[reg] >>> 0 : cpu.rlo[reg] & 0xffff;
  if (cpu.bits === 64) return seg >= 4 ? cpu.segBase[seg] + off : off;
  return (cpu.segBase[seg] + off) % 4294967296;
}
