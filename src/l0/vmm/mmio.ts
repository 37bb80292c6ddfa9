/**
 * MMIO emulation: a guest load or store to a guest-physical address outside its RAM (an EPT
 * violation under ept01, which maps RAM only). L0 fetches the instruction at CS.base + RIP
 * through the guest's page tables (mmu/guest-walk.ts), decodes it (mmio-decode.ts), performs
 * the access on the VM's platform (the vCPU's xAPIC page, the IOAPIC, or nothing: all ones /
 * ignored, as on a PC) and completes the instruction. An instruction L0 cannot emulate stops
 * the VM with a report naming it; it never reaches L0's own state.
 */
import type { ExitContext } from './exits.js';
import { guestPaging, walkGuest, type GuestMemory } from '../mmu/guest-walk.js';
import { decodeMmio, type MmioInsn } from './mmio-decode.js';
import {
  guestMode,
  instructionPointer,
  completeInstruction,
  readGprSized,
  writeGprSized,
  guestCpl,
} from './guest-state.js';
import { L0_COST } from '../cost.js';

const MAX_INSN = 15;
const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/**
 * Fetch up to 15 bytes of the guest's current instruction (fewer if the next page is not
 * mapped: the decoder says so if it needed them). Returns an error text when even the first
 * byte cannot be read.
 */
export function fetchInstruction(c: ExitContext, la: bigint, mem: GuestMemory = c.vm): Uint8Array | string {
  const paging = guestPaging(c.vcpu);
  const user = guestCpl(c.host) === 3;
  const out: number[] = [];
  let at = la;
  while (out.length < MAX_INSN) {
    const w = walkGuest(mem, paging, at, { write: false, user, fetch: true }, false);
    if (!w.ok || mem.gpaToHpa(w.gpa) < 0) {
      if (out.length) break;
      return w.ok
        ? `the instruction at ${hex(la)} is outside RAM (guest-physical ${hex(w.gpa)})`
        : `the instruction at ${hex(la)} cannot be fetched (${w.kind}, error code ${w.errorCode})`;
    }
    const n = Math.min(MAX_INSN - out.length, 4096 - (w.gpa % 4096));
    const hpa = mem.gpaToHpa(w.gpa);
    for (let k = 0; k < n; k++) out.push(c.host.mem.read8(hpa + k));
    at = BigInt.asUintN(64, at + BigInt(n));
  }
  return Uint8Array.from(out);
}

/**
 * Emulate the guest's access to `gpa` (outside RAM) by its current instruction. `mem` is the
 * memory the running guest's page tables and code live in: the VM's own by default; for an L2
 * under ept12, L2-physical memory translated through ept12 (nested/dispatch.ts), while `gpa` is
 * then the L1-physical address of the device.
 */
export function emulateMmio(c: ExitContext, gpa: number, write: boolean, mem: GuestMemory = c.vm): void {
  const h = c.host;
  h.charge(L0_COST.mmio);
  const mode = guestMode(h);
  const la = instructionPointer(h, mode);
  const bytes = fetchInstruction(c, la, mem);
  const where = `MMIO ${write ? 'write' : 'read'} at guest-physical ${hex(gpa)} (${c.vm.platform.mmioName(c.vcpu.index, gpa)})`;
  if (typeof bytes === 'string') return c.vcpu.stop(`${where}: ${bytes}`);
  const d = decodeMmio(bytes, mode);
  if ('error' in d) return c.vcpu.stop(`${where} at RIP ${hex(la)}: ${d.error}`);
  if ((d.kind === 'store') !== write)
    return c.vcpu.stop(
      `${where} at RIP ${hex(la)}: the instruction does a ${d.kind}, the exit says otherwise`,
    );
  performMmio(c, gpa, d);
  completeInstruction(h, d.length, mode);
}

/** Do a decoded access on the platform; 8-byte accesses are two dword accesses, as the CPU makes them. */
export function performMmio(c: ExitContext, gpa: number, d: MmioInsn): void {
  const p = c.vm.platform,
    k = c.vcpu.index,
    h = c.host;
  if (d.kind === 'store') {
    const v = d.imm ?? readGprSized(h, d.reg, d.size, d.high8);
    if (d.size === 8) {
      p.mmioWrite(k, gpa, 4, Number(v & 0xffffffffn));
      p.mmioWrite(k, gpa + 4, 4, Number((v >> 32n) & 0xffffffffn));
    } else p.mmioWrite(k, gpa, d.size, Number(v));
    return;
  }
  let v: bigint;
  if (d.size === 8) {
    const lo = p.mmioRead(k, gpa, 4);
    v = (BigInt(p.mmioRead(k, gpa + 4, 4)) << 32n) | BigInt(lo);
  } else v = BigInt(p.mmioRead(k, gpa, d.size));
  if (d.extend === 'sign') v = BigInt.asUintN(64, BigInt.asIntN(d.size * 8, v));
  writeGprSized(h, d.reg, d.destSize, v, d.high8);
}
