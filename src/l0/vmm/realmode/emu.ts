/**
 * The emulator's view of one instruction being executed: registers by size, the effective
 * address of a ModRM memory operand (16- and 32-bit addressing, SDM 2A §2.1.5 Tables 2-1/2-2),
 * segmented memory with the checks of real mode (SDM 3A §20.1: the cached limit still applies)
 * and protected mode (§5.3: usable, type, limit), and the stack (SS.B chooses SP or ESP).
 */
import type { Decoded } from './decode.js';
import { AR_D, AR_UNUSABLE, CS, DS, GP, SS, SSF, RmFault, RmStop, RmState, type RmBus } from './state.js';
import { MASK } from './alu.js';

/** 16-bit addressing (SDM 2A Table 2-1): base and index registers, and the default segment, by ModRM.rm. */
const EA16: readonly (readonly [number, number, number])[] = [
  [3, 6, DS], // BX+SI
  [3, 7, DS], // BX+DI
  [5, 6, SS], // BP+SI
  [5, 7, SS], // BP+DI
  [-1, 6, DS], // SI
  [-1, 7, DS], // DI
  [5, -1, SS], // BP (disp16 alone when mod = 0)
  [3, -1, DS], // BX
];

export class Emu {
  /** The instruction being executed and the EIP it started at. */
  d!: Decoded;
  start = 0;
  /** Elements moved by a string instruction in this step (for the cost model). */
  elements = 0;
  private eaSeg = -1;
  private eaOff = 0;
  /** The state to go back to if the instruction faults (restartable instructions, SDM 3A §6.5). */
  readonly snap: RmState;

  constructor(
    readonly s: RmState,
    readonly bus: RmBus,
  ) {
    this.snap = new RmState();
  }

  /** A REP string instruction finished one element: a fault from now on keeps that progress. */
  commitPoint(): void {
    this.snap.copyFrom(this.s);
    this.snap.eip = this.start;
  }

  /** Default operand/address size of the code segment: 32 bits if CS.D in protected mode (never in real mode). */
  get code32(): boolean {
    return !this.s.real && (this.s.seg[CS].ar & AR_D) !== 0;
  }
  /** Stack address size: SS.B (honoured in real mode too, as the CPU model does). */
  get stack32(): boolean {
    return (this.s.seg[SS].ar & AR_D) !== 0;
  }

  // ---- registers
  /** Register `r` of `size` bytes; 8-bit registers 4-7 are AH, CH, DH, BH (no REX outside 64-bit mode). */
  getReg(r: number, size: number): number {
    const g = this.s.gpr;
    if (size === 1) return r < 4 ? g[r] & 0xff : (g[r - 4] >>> 8) & 0xff;
    return size === 2 ? g[r] & 0xffff : g[r];
  }
  setReg(r: number, size: number, v: number): void {
    const g = this.s.gpr;
    if (size === 1) {
      if (r < 4) g[r] = (g[r] & ~0xff) | (v & 0xff);
      else g[r - 4] = (g[r - 4] & ~0xff00) | ((v & 0xff) << 8);
    } else if (size === 2) g[r] = (g[r] & ~0xffff) | (v & 0xffff);
    else g[r] = v >>> 0;
  }

  // ---- the ModRM operand
  /** Segment and offset of the memory operand (segment override applied). */
  ea(): { seg: number; off: number } {
    if (this.eaSeg < 0) this.computeEa();
    return { seg: this.eaSeg, off: this.eaOff };
  }
  /** Forget the effective address (a new instruction). */
  resetEa(): void {
    this.eaSeg = -1;
  }
  private computeEa(): void {
    const d = this.d,
      g = this.s.gpr;
    let seg: number, off: number;
    if (d.asz === 2) {
      const [base, index, dseg] = EA16[d.rm];
      if (d.mod === 0 && d.rm === 6) {
        off = d.disp;
        seg = DS;
      } else {
        off = (base >= 0 ? g[base] : 0) + (index >= 0 ? g[index] : 0) + d.disp;
        seg = dseg;
      }
      off &= 0xffff;
    } else {
      seg = DS;
      off = d.disp;
      if (d.rm === 4) {
        const sib = d.sib;
        const scale = sib >> 6,
          index = (sib >> 3) & 7,
          base = sib & 7;
        if (index !== 4) off += g[index] * (1 << scale);
        if (base === 5 && d.mod === 0) {
          /* disp32, no base */
        } else {
          off += g[base];
          if (base === 4 || base === 5) seg = SS;
        }
      } else if (d.mod === 0 && d.rm === 5) {
        /* disp32 */
      } else {
        off += g[d.rm];
        if (d.rm === 5) seg = SS;
      }
      off = off >>> 0;
    }
    this.eaSeg = d.seg >= 0 ? d.seg : seg;
    this.eaOff = off;
  }
  /** The r/m operand of `size` bytes (register or memory). */
  readE(size: number): number {
    if (this.d.mod === 3) return this.getReg(this.d.rm, size);
    const { seg, off } = this.ea();
    return this.rd(seg, off, size);
  }
  writeE(size: number, v: number): void {
    if (this.d.mod === 3) return this.setReg(this.d.rm, size, v);
    const { seg, off } = this.ea();
    this.wr(seg, off, size, v);
  }
  /** A memory-only operand: #UD for a register form (LEA, LGDT, far pointers…). */
  memOnly(): { seg: number; off: number } {
    if (this.d.mod === 3) throw new RmFault(6);
    return this.ea();
  }

  // ---- segmented memory
  /** Linear address of [seg:off] for an access of `size` bytes, with the segment checks. */
  lin(seg: number, off: number, size: number, write: boolean): number {
    const sg = this.s.seg[seg];
    const fault = (): never => {
      throw new RmFault(seg === SS ? SSF : GP, 0);
    };
    if (this.s.real) {
      if (off + size - 1 > sg.limit) fault();
    } else {
      if (sg.ar & AR_UNUSABLE) fault();
      const type = sg.ar & 0xf;
      if (write && (type & 0xa) !== 2) fault(); // not a writable data segment
      if (!write && (type & 0xa) === 8) fault(); // execute-only code
      if ((type & 0xc) === 4) {
        // Expand-down data segment (SDM 3A §5.3).
        const upper = sg.ar & AR_D ? 0xffffffff : 0xffff;
        if (off <= sg.limit || off + size - 1 > upper) fault();
      } else if (off + size - 1 > sg.limit) fault();
    }
    return (sg.base + off) % 4294967296;
  }
  rd(seg: number, off: number, size: number): number {
    return this.readLinear(this.lin(seg, off, size, false), size);
  }
  wr(seg: number, off: number, size: number, v: number): void {
    this.writeLinear(this.lin(seg, off, size, true), size, v);
  }
  readLinear(la: number, size: number): number {
    return this.bus.read(la, size as 1 | 2 | 4, 'read');
  }
  writeLinear(la: number, size: number, v: number): void {
    this.bus.write(la, size as 1 | 2 | 4, (v & MASK[size]) >>> 0);
  }
  /** Offsets wrap at the address size. */
  addrMask(): number {
    return this.d.asz === 4 ? 0xffffffff : 0xffff;
  }

  // ---- the stack
  get sp(): number {
    return this.stack32 ? this.s.gpr[4] : this.s.gpr[4] & 0xffff;
  }
  set sp(v: number) {
    if (this.stack32) this.s.gpr[4] = v >>> 0;
    else this.s.gpr[4] = (this.s.gpr[4] & ~0xffff) | (v & 0xffff);
  }
  push(size: number, v: number): void {
    const sp = (this.sp - size) & (this.stack32 ? 0xffffffff : 0xffff);
    this.wr(SS, sp >>> 0, size, v);
    this.sp = sp;
  }
  pop(size: number): number {
    const v = this.rd(SS, this.sp, size);
    this.sp = this.sp + size;
    return v;
  }
  /** The stack word `k` bytes above the top, without popping. */
  peek(k: number, size: number): number {
    return this.rd(SS, (this.sp + k) & (this.stack32 ? 0xffffffff : 0xffff), size);
  }

  /** Instruction pointer wrapping as the operand size of a branch does. */
  ipMask(size: number): number {
    return size === 4 ? 0xffffffff : 0xffff;
  }

  /** Stop the VM: the instruction is not one L0 emulates. */
  unsupported(why?: string): never {
    throw new RmStop(why ?? 'not emulated');
  }
}
