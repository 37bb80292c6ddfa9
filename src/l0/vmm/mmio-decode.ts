/**
 * Decoding of the instructions a guest uses to touch MMIO, for L0's MMIO emulation
 * (mmio.ts). Under EPT an access to a guest-physical address outside RAM is an EPT
 * violation whose exit gives the guest-physical address but not the instruction length or
 * its operands (SDM 3C §27.2.1: the VM-exit instruction length is defined only for exits
 * caused by instruction execution of the listed kinds, not EPT violations), so L0 decodes
 * the instruction itself, as KVM's emulator does.
 *
 * Only the forms compilers emit for volatile loads and stores are accepted (the data address
 * comes from the exit, so the ModRM/SIB/displacement bytes are only measured):
 *   88 /r  MOV r/m8, r8          89 /r  MOV r/m, r          C6 /0 ib  MOV r/m8, imm8
 *   8A /r  MOV r8, r/m8          8B /r  MOV r, r/m          C7 /0 iz  MOV r/m, imm
 *   0F B6/B7 /r  MOVZX r, r/m8/16     0F BE/BF /r  MOVSX r, r/m8/16
 *   A0-A3  MOV AL/rAX <-> moffs
 * with legacy prefixes (operand/address size, segment, LOCK, REP) and REX (SDM 2A §2.1-2.2).
 * Anything else is reported, and L0 stops the VM with that report (never guesses).
 */

export interface CpuMode {
  /** 64-bit mode (IA-32e with CS.L = 1). */
  long: boolean;
  /** Default operand/address size outside 64-bit mode: CS.D ? 32 : 16 (real mode: 16). */
  default32: boolean;
}

/** A decoded MMIO access. Registers are numbered as the GPRs (RAX=0 … R15=15). */
export interface MmioInsn {
  /** Instruction length in bytes. */
  length: number;
  /** The memory access: 'load' reads memory into a register, 'store' writes memory. */
  kind: 'load' | 'store';
  /** Bytes accessed in memory. */
  size: 1 | 2 | 4 | 8;
  /** Register operand (destination of a load, source of a store without immediate); -1 for none. */
  reg: number;
  /** The register is AH/CH/DH/BH (bits 15:8 of register reg). */
  high8: boolean;
  /** Store of an immediate (already sign-extended to `size` bytes, as an unsigned value). */
  imm?: bigint;
  /** Loads: how the value goes into the register, and the register's operand size. */
  extend: 'none' | 'zero' | 'sign';
  destSize: 1 | 2 | 4 | 8;
}

export type DecodeResult = MmioInsn | { error: string };

const MAX_LENGTH = 15;

const hex = (b: number): string => b.toString(16).padStart(2, '0');

/** Decode the instruction at the start of `bytes` (as many bytes as could be fetched, up to 15). */
export function decodeMmio(bytes: Uint8Array, mode: CpuMode): DecodeResult {
  let p = 0;
  let opsize16 = false,
    addr16or32 = false,
    rex = 0;
  const avail = Math.min(bytes.length, MAX_LENGTH);
  const byte = (): number => {
    if (p >= avail) throw new RangeError();
    return bytes[p++];
  };
  // The bytes decoded so far and a few more (the report names the instruction).
  const shown = (): string => [...bytes.subarray(0, Math.min(avail, Math.max(p + 2, 4)))].map(hex).join(' ');
  try {
    // Legacy prefixes in any order, then REX (64-bit mode only, immediately before the opcode).
    let b = byte();
    for (;;) {
      if (b === 0x66) opsize16 = true;
      else if (b === 0x67) addr16or32 = true;
      else if (b === 0xf0 || b === 0xf2 || b === 0xf3) {
        /* LOCK/REP: no effect on MOV */
      } else if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65) {
        /* segment override: the exit gives the guest-physical address */
      } else break;
      b = byte();
    }
    if (mode.long && (b & 0xf0) === 0x40) {
      rex = b;
      b = byte();
    }
    const w = (rex & 8) !== 0;
    const opSize: 2 | 4 | 8 = mode.long ? (w ? 8 : opsize16 ? 2 : 4) : mode.default32 !== opsize16 ? 4 : 2;
    const addrSize: 2 | 4 | 8 = mode.long ? (addr16or32 ? 4 : 8) : mode.default32 !== addr16or32 ? 4 : 2;
    const regOf = (r: number, byteReg: boolean): { reg: number; high8: boolean } =>
      byteReg && !rex && r >= 4 && r < 8 ? { reg: r - 4, high8: true } : { reg: r, high8: false };

    /** Skip a memory ModRM operand; returns the reg field (with REX.R), or an error for a register operand. */
    const modrm = (): number | string => {
      const m = byte();
      const mod = m >> 6,
        rm = m & 7;
      if (mod === 3) return 'register operand';
      if (addrSize === 2) {
        if (mod === 1) p += 1;
        else if (mod === 2 || (mod === 0 && rm === 6)) p += 2;
      } else {
        if (rm === 4) {
          const sib = byte();
          if (mod === 0 && (sib & 7) === 5) p += 4;
        } else if (mod === 0 && rm === 5) p += 4; // disp32 (RIP-relative in 64-bit mode)
        if (mod === 1) p += 1;
        else if (mod === 2) p += 4;
      }
      if (p > avail) throw new RangeError();
      return ((m >> 3) & 7) | (rex & 4 ? 8 : 0);
    };
    const imm = (n: 1 | 2 | 4): bigint => {
      let v = 0;
      for (let k = 0; k < n; k++) v += byte() * 2 ** (8 * k);
      return BigInt(v);
    };
    const signExtend = (v: bigint, from: number, to: number): bigint =>
      BigInt.asUintN(to * 8, BigInt.asIntN(from * 8, v));
    const bad = (why: string): { error: string } => ({
      error: `instruction ${shown()}: ${why} (L0 emulates MOV/MOVZX/MOVSX to and from MMIO only)`,
    });

    switch (b) {
      case 0x88:
      case 0x89:
      case 0x8a:
      case 0x8b: {
        const byteOp = (b & 1) === 0;
        const r = modrm();
        if (typeof r === 'string') return bad(r);
        const size = byteOp ? 1 : opSize;
        const { reg, high8 } = regOf(r, byteOp);
        return {
          length: p,
          kind: b < 0x8a ? 'store' : 'load',
          size,
          reg,
          high8,
          extend: 'none',
          destSize: size,
        };
      }
      case 0xc6:
      case 0xc7: {
        const byteOp = b === 0xc6;
        const r = modrm();
        if (typeof r === 'string') return bad(r);
        if ((r & 7) !== 0) return bad(`opcode ${hex(b)} /${r & 7}`);
        const size = byteOp ? 1 : opSize;
        const n = byteOp ? 1 : opSize === 2 ? 2 : 4;
        const v = signExtend(imm(n), n, size);
        return {
          length: p,
          kind: 'store',
          size,
          reg: -1,
          high8: false,
          imm: v,
          extend: 'none',
          destSize: size,
        };
      }
      case 0xa0:
      case 0xa1:
      case 0xa2:
      case 0xa3: {
        p += addrSize; // moffs
        if (p > avail) throw new RangeError();
        const size = (b & 1) === 0 ? 1 : opSize;
        return {
          length: p,
          kind: b < 0xa2 ? 'load' : 'store',
          size,
          reg: 0,
          high8: false,
          extend: 'none',
          destSize: size,
        };
      }
      case 0x0f: {
        const b2 = byte();
        if (b2 !== 0xb6 && b2 !== 0xb7 && b2 !== 0xbe && b2 !== 0xbf) return bad(`opcode 0f ${hex(b2)}`);
        const r = modrm();
        if (typeof r === 'string') return bad(r);
        const size = b2 & 1 ? 2 : 1;
        return {
          length: p,
          kind: 'load',
          size,
          reg: r,
          high8: false,
          extend: b2 < 0xbe ? 'zero' : 'sign',
          destSize: opSize,
        };
      }
    }
    return bad(`opcode ${hex(b)}`);
  } catch (e) {
    if (e instanceof RangeError) return { error: `instruction ${shown()}…: could not fetch all of it` };
    throw e;
  }
}
