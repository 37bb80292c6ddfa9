/**
 * I/O permission check for IN/OUT/INS/OUTS (SDM 3A §19.5): in protected mode with
 * CPL > IOPL, every byte of the port range must be allowed by the TSS I/O
 * permission bitmap, else #GP(0).
 */
import type { Cpu } from '../cpu.js';
import { TR, VM, Mode } from '../regs.js';

export function checkIoPermission(cpu: Cpu, port: number, size: number): void {
  if (cpu.mode === Mode.Real) return;
  const iopl = (cpu.fl.word >> 12) & 3;
  // In virtual-8086 mode the bitmap is consulted whatever the IOPL (SDM 3A §20.2.8.1).
  if (cpu.cpl <= iopl && !(cpu.fl.word & VM)) return;
  const tssType = cpu.segAttr[TR] & 0xf;
  // Only a 32-bit/64-bit TSS has a bitmap; a 16-bit TSS denies all.
  if (tssType !== 0xb && tssType !== 0x9) cpu.gp(0);
  const limit = cpu.segLimit[TR];
  if (limit < 0x67) cpu.gp(0);
  const base = cpu.segBase[TR];
  const mapOff = cpu.rd16(base + 0x66, false);
  const byteOff = mapOff + (port >>> 3);
  if (byteOff + 1 > limit) cpu.gp(0);
  const bits = cpu.rd16(base + byteOff, false);
  const mask = ((1 << size) - 1) << (port & 7);
  if (bits & mask) cpu.gp(0);
}
