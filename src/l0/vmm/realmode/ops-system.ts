/**
 * System instructions: CLI/STI, HLT, IN/OUT, LGDT/LIDT/SGDT/SIDT, SMSW/LMSW/CLTS, MOV to and
 * from CR0/2/3/4, INVLPG, WBINVD/INVD, RDTSC, and CPUID/RDMSR/WRMSR (which the hardware would
 * exit on: done by L0's exit handlers through the bus). Real mode is CPL 0 and IOPL does not
 * apply there (SDM 3A §20.1); in protected mode the emulator runs at the CPL the segments
 * say, and what needs a privilege check it does not model is reported.
 */
import type { Emu } from './emu.js';
import { BLOCK_STI, GP, IF, IOPL, UD, RmFault, type ExitingInsn } from './state.js';
import { operandsOf, readOp, sizeOf } from './operands.js';
import type { Handler } from './handler.js';

const gp0 = (): never => {
  throw new RmFault(GP, 0);
};
/** Privileged instructions: #GP(0) outside CPL 0 (SDM 3A §5.9). */
const cpl0 = (e: Emu): void => {
  if (e.s.cpl !== 0) gp0();
};
/** CLI/STI/IN/OUT: allowed when CPL <= IOPL (always in real mode, SDM 3A §20.1.3 and §19.5). */
const ioPrivileged = (e: Emu): boolean => e.s.real || e.s.cpl <= (e.s.eflags & IOPL) >> 12;

const cli: Handler = (e) => {
  if (!ioPrivileged(e)) gp0();
  e.s.eflags &= ~IF;
};
/** STI: interrupts stay blocked until after the next instruction if IF was 0 (SDM 2B STI). */
const sti: Handler = (e) => {
  if (!ioPrivileged(e)) gp0();
  if (!(e.s.eflags & IF)) e.s.interruptibility |= BLOCK_STI;
  e.s.eflags |= IF;
};
const hlt: Handler = (e) => {
  cpl0(e);
  e.s.halted = true;
};

/** IN AL/eAX, imm8|DX and OUT imm8|DX, AL/eAX. Protected mode above IOPL needs the TSS bitmap: reported. */
function io(out: boolean): Handler {
  return (e) => {
    if (!ioPrivileged(e)) e.unsupported('port I/O above IOPL in protected mode while L0 emulates it');
    const ops = operandsOf(e);
    const [portTok, dataTok] = out ? ops : [ops[1], ops[0]];
    const size = sizeOf(e, dataTok) as 1 | 2 | 4;
    const port = portTok === 'DX' ? e.getReg(2, 2) : e.d.imm & 0xff;
    if (out) e.bus.out(port, size, readOp(e, dataTok, size));
    else e.setReg(0, size, e.bus.in(port, size));
  };
}

/** LGDT/LIDT m16&32: with a 16-bit operand size only 24 bits of base are loaded (SDM 2A LGDT). */
function ldt(idt: boolean): Handler {
  return (e) => {
    cpl0(e);
    const { seg, off } = e.memOnly();
    const limit = e.rd(seg, off, 2);
    let base = e.rd(seg, (off + 2) & e.addrMask(), 4);
    if (e.d.osz === 2) base &= 0xffffff;
    const s = e.s;
    if (idt) {
      s.idtrBase = base;
      s.idtrLimit = limit;
    } else {
      s.gdtrBase = base;
      s.gdtrLimit = limit;
    }
  };
}
/** SGDT/SIDT: limit, then the full 32-bit base (the CPU model stores 32 bits for either operand size). */
function sdt(idt: boolean): Handler {
  return (e) => {
    const { seg, off } = e.memOnly();
    const s = e.s;
    e.wr(seg, off, 2, idt ? s.idtrLimit : s.gdtrLimit);
    e.wr(seg, (off + 2) & e.addrMask(), 4, idt ? s.idtrBase : s.gdtrBase);
  };
}

function writeCr(e: Emu, n: number, v: number): void {
  if (!e.bus.writeCr(e.s, n, v >>> 0)) gp0();
}

const smsw: Handler = (e) => {
  const cr0 = e.bus.readCr(e.s, 0);
  if (e.d.mod === 3) e.setReg(e.d.rm, e.d.osz, e.d.osz === 2 ? cr0 & 0xffff : cr0);
  else e.writeE(2, cr0 & 0xffff);
};
/** LMSW: loads CR0[3:0] (PE, MP, EM, TS); it can set PE but not clear it (SDM 2A LMSW). */
const lmsw: Handler = (e) => {
  cpl0(e);
  const v = e.readE(2);
  const cr0 = e.bus.readCr(e.s, 0);
  writeCr(e, 0, (cr0 & ~0xf) | (v & 0xf) | (cr0 & 1));
};
const clts: Handler = (e) => {
  cpl0(e);
  writeCr(e, 0, e.bus.readCr(e.s, 0) & ~8);
};
/** MOV r32, CRn / MOV CRn, r32 (0F 20 / 0F 22): CR0, CR2, CR3, CR4; others #UD (CR8 exists only in 64-bit mode). */
const movCr: Handler = (e) => {
  cpl0(e);
  const d = e.d;
  const n = d.reg;
  if (n !== 0 && n !== 2 && n !== 3 && n !== 4) throw new RmFault(UD);
  if (d.opcode === 0x0f20) e.setReg(d.rm, 4, e.bus.readCr(e.s, n));
  else writeCr(e, n, e.getReg(d.rm, 4));
};
const invlpg: Handler = (e) => {
  cpl0(e);
  const { seg, off } = e.memOnly();
  e.bus.invlpg((e.s.seg[seg].base + off) % 4294967296);
};
const rdtsc: Handler = (e) => {
  const t = e.bus.rdtsc();
  e.setReg(0, 4, Number(t & 0xffffffffn));
  e.setReg(2, 4, Number((t >> 32n) & 0xffffffffn));
};
/** An instruction the hardware would exit on: L0's handler does it (at the instruction's own EIP). */
function exiting(insn: ExitingInsn): Handler {
  return (e) => {
    if (insn !== 'CPUID') cpl0(e);
    e.s.eip = e.start;
    e.bus.exitingInsn(e.s, insn, e.d.len);
  };
}
/** Descriptor-table instructions that do not exist in real mode (#UD, SDM 2A LLDT/LTR/SLDT/STR/LAR/LSL/VERR/VERW). */
const notInRealMode =
  (name: string): Handler =>
  (e) => {
    if (e.s.real) throw new RmFault(UD);
    e.unsupported(`${name} in protected mode while L0 emulates it`);
  };
const ud: Handler = () => {
  throw new RmFault(UD);
};

export const SYSTEM_HANDLERS: Record<string, Handler> = {
  CLI: cli,
  STI: sti,
  HLT: hlt,
  IN: io(false),
  OUT: io(true),
  LGDT: ldt(false),
  LIDT: ldt(true),
  SGDT: sdt(false),
  SIDT: sdt(true),
  SMSW: smsw,
  LMSW: lmsw,
  CLTS: clts,
  MOVCR: movCr,
  INVLPG: invlpg,
  WBINVD: cpl0,
  INVD: cpl0,
  RDTSC: rdtsc,
  CPUID: exiting('CPUID'),
  RDMSR: exiting('RDMSR'),
  WRMSR: exiting('WRMSR'),
  UD2: ud,
  UD0: ud,
  UD1: ud,
  ...Object.fromEntries(
    ['SLDT', 'STR', 'LLDT', 'LTR', 'VERR', 'VERW', 'LAR', 'LSL', 'ARPL'].map((m) => [m, notInRealMode(m)]),
  ),
};
