/**
 * Operands of L1's VMX instructions, from the VM-exit instruction-information field and
 * the exit qualification (SDM 3C §27.2.5, Tables 27-13 and 27-14): the register operand or
 * the memory operand's linear address, and reading/writing that memory through L1's own
 * page tables (a fault there is L1's #PF, as it would be on hardware).
 */
import { GUEST_SEG_BASE, type ExitRecord, type VmxHost } from '../hw.js';
import type { Vcpu } from '../vmm/vcpu.js';
import { guestPaging, walkGuest } from '../mmu/guest-walk.js';
import { noteGuestWrite } from '../mmu/shadow.js';
import { readGpr, guestMode, guestCpl } from '../vmm/guest-state.js';

/** Fields of the instruction-information field. */
export interface InsnInfo {
  scale: number;
  addrSize: number;
  isReg: boolean;
  reg1: number;
  seg: number;
  index: number;
  base: number;
  reg2: number;
}
export function decodeInfo(info: number): InsnInfo {
  return {
    scale: info & 3,
    reg1: (info >> 3) & 15,
    addrSize: (info >> 7) & 7,
    isReg: ((info >> 10) & 1) === 1,
    seg: (info >> 15) & 7,
    index: (info >> 22) & 1 ? -1 : (info >> 18) & 15,
    base: (info >> 27) & 1 ? -1 : (info >> 23) & 15,
    reg2: (info >>> 28) & 15,
  };
}

/** Linear address of the memory operand (base + index·scale + displacement, then the segment base). */
export function operandAddress(h: VmxHost, e: ExitRecord, i: InsnInfo): bigint {
  let ea = BigInt.asUintN(64, e.qualification);
  if (i.base >= 0) ea += readGpr(h, i.base);
  if (i.index >= 0) ea += readGpr(h, i.index) << BigInt(i.scale);
  const bits = i.addrSize === 0 ? 16 : i.addrSize === 1 ? 32 : 64;
  ea = BigInt.asUintN(bits, ea);
  // In 64-bit mode only FS and GS have a base (SDM 3A §3.4.4); outside it every segment does.
  const segBase = i.seg < 6 ? (h.vmread(GUEST_SEG_BASE[i.seg]) as bigint) : 0n;
  const useBase = !guestMode(h).long || i.seg === 4 || i.seg === 5;
  return BigInt.asUintN(guestMode(h).long ? 64 : 32, ea + (useBase ? segBase : 0n));
}

/** A memory operand's value, or the fault L1 gets: #PF (with CR2 = `linear`) or #GP(0). */
export type MemResult =
  { ok: true; value: bigint } | { ok: false; vector: 13 | 14; errorCode: number; linear: bigint };

type Fault = Extract<MemResult, { ok: false }>;

/**
 * The guest-physical address of each of `bytes` bytes at L1 linear address `la`, through L1's
 * paging (accessed and dirty flags set as the processor would), or the fault of the first byte
 * that cannot be reached.
 */
function translateL1(v: Vcpu, la: bigint, bytes: number, write: boolean): number[] | Fault {
  const p = guestPaging(v);
  const user = guestCpl(v.host) === 3;
  const gpas: number[] = [];
  for (let k = 0; k < bytes; k++) {
    const linear = BigInt.asUintN(64, la + BigInt(k));
    const w = walkGuest(v.vm, p, linear, { write, user, fetch: false }, true);
    if (!w.ok)
      return {
        ok: false,
        vector: w.kind === 'page-fault' ? 14 : 13,
        errorCode: w.kind === 'page-fault' ? w.errorCode : 0,
        linear: la + BigInt(k),
      };
    gpas.push(w.gpa);
  }
  return gpas;
}

/** Read `bytes` (1-8) at L1 linear address `la` through L1's paging. */
export function readL1(v: Vcpu, la: bigint, bytes: number): MemResult {
  const gpas = translateL1(v, la, bytes, false);
  if (!Array.isArray(gpas)) return gpas;
  let value = 0n;
  gpas.forEach((gpa, k) => {
    const hpa = v.vm.gpaToHpa(gpa);
    value |= BigInt(hpa < 0 ? 0xff : v.host.mem.read8(hpa)) << BigInt(8 * k);
  });
  return { ok: true, value };
}

/** Write `bytes` (1-8) at L1 linear address `la`; on a fault nothing is written. */
export function writeL1(v: Vcpu, la: bigint, bytes: number, value: bigint): MemResult {
  const gpas = translateL1(v, la, bytes, true);
  if (!Array.isArray(gpas)) return gpas;
  gpas.forEach((gpa, k) => {
    const hpa = v.vm.gpaToHpa(gpa);
    if (hpa < 0) return;
    v.host.mem.write8(hpa, Number((value >> BigInt(8 * k)) & 0xffn));
    noteGuestWrite(v.vm, gpa, 1); // L0 shadowing L1 (mmu/shadow.ts)
  });
  return { ok: true, value };
}
