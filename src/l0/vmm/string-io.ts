/**
 * String I/O: INS and OUTS, with or without REP, emulated by L0 on an IO_INSTRUCTION exit
 * (the hardware has checked IOPL and the TSS I/O bitmap before exiting). The exit tells the
 * port, element size, direction and REP (qualification, SDM 3C Table 27-5) and the address
 * size and segment (VM-exit instruction-information field, §27.2.5, Table 27-8); the memory
 * operand is ES:rDI (INS) or seg:rSI (OUTS), stepped by RFLAGS.DF, translated through the
 * guest's page tables (mmu/guest-walk.ts, setting accessed/dirty flags as the CPU would).
 *
 * A REP string is interruptible and restartable (SDM 2B "REP"): L0 moves at most
 * STRING_IO_BATCH elements per exit and leaves RIP on the instruction if the count is not
 * exhausted, so a huge RCX from a hostile guest costs its own time only. A page fault on an
 * element injects #PF (CR2 = the element's linear address) with RCX/RSI/RDI describing the
 * elements already moved, as the hardware leaves them.
 */
import { VMCS_FIELD as F, GUEST_SEG_BASE } from '../hw.js';
import { noteGuestWrite } from '../mmu/shadow.js';
import type { ExitContext } from './exits.js';
import { guestPaging, walkGuest, type GuestPaging } from '../mmu/guest-walk.js';
import {
  vmread,
  readGpr,
  writeGprSized,
  guestMode,
  completeInstruction,
  injectException,
  guestCpl,
} from './guest-state.js';
import { L0_COST } from '../cost.js';

/** Elements moved per exit at most (then the guest re-executes the REP instruction). */
export const STRING_IO_BATCH = 1024;

const RCX = 1,
  RSI = 6,
  RDI = 7;
const RFLAGS_DF = 0x400n,
  RFLAGS_AC = 0x40000n;

type Where =
  { gpas: number[] } | { fault: 'pf'; errorCode: number } | { fault: 'gp' } | { fault: 'stop'; why: string };

/** Guest-physical address of each byte of an element at linear `la` (one walk per page touched). */
function translate(
  c: ExitContext,
  paging: GuestPaging,
  la: bigint,
  size: number,
  write: boolean,
  user: boolean,
  ac: boolean,
): Where {
  const gpas: number[] = [];
  let k = 0;
  while (k < size) {
    const w = walkGuest(
      c.vm,
      paging,
      BigInt.asUintN(64, la + BigInt(k)),
      { write, user, fetch: false, ac },
      true,
    );
    if (!w.ok) {
      if (w.kind === 'page-fault') return { fault: 'pf', errorCode: w.errorCode };
      if (w.kind === 'non-canonical') return { fault: 'gp' };
      return {
        fault: 'stop',
        why: `a page table of the guest is outside its RAM (guest-physical 0x${(w.gpa ?? 0).toString(16)})`,
      };
    }
    const n = Math.min(size - k, 4096 - (w.gpa % 4096));
    for (let j = 0; j < n; j++) gpas.push(w.gpa + j);
    k += n;
  }
  return { gpas };
}

export function stringIo(c: ExitContext): void {
  const h = c.host,
    vm = c.vm;
  const q = Number(c.exit.qualification);
  const size = (q & 7) + 1,
    input = (q & 8) !== 0,
    rep = (q & 32) !== 0,
    port = Math.floor(q / 65536) & 0xffff;
  const info = c.exit.instructionInfo;
  const aszCode = (info >> 7) & 7;
  if (aszCode > 2)
    return c.vcpu.stop(
      `string I/O exit with a bad address size (instruction information 0x${info.toString(16)})`,
    );
  const asz = ([2, 4, 8] as const)[aszCode];
  const amask = asz === 8 ? 0xffffffffffffffffn : asz === 4 ? 0xffffffffn : 0xffffn;
  const seg = input ? 0 : (info >> 15) & 7;
  if (seg > 5)
    return c.vcpu.stop(`string I/O exit with a bad segment (instruction information 0x${info.toString(16)})`);
  const mode = guestMode(h);
  h.charge(L0_COST.io);
  // In 64-bit mode only FS and GS have bases (SDM 3A §3.4.4).
  const segBase = mode.long && seg < 4 ? 0n : vmread(h, GUEST_SEG_BASE[seg]);
  const rflags = vmread(h, F.GUEST_RFLAGS);
  const step = BigInt(rflags & RFLAGS_DF ? -size : size);
  const idx = input ? RDI : RSI;
  let off = readGpr(h, idx) & amask;
  let count = rep ? readGpr(h, RCX) & amask : 1n;
  const paging = guestPaging(c.vcpu);
  const user = guestCpl(c.host) === 3,
    ac = (rflags & RFLAGS_AC) !== 0n;
  let fault: Where | undefined;
  let faultLa = 0n;
  let done = 0;
  while (count > 0n && done < STRING_IO_BATCH && !vm.end) {
    const la = mode.long ? BigInt.asUintN(64, segBase + off) : (segBase + off) & 0xffffffffn;
    const where = translate(c, paging, la, size, input, user, ac);
    if (!('gpas' in where)) {
      fault = where;
      faultLa = la;
      break;
    }
    const p = vm.platform;
    const gpas = where.gpas;
    const contiguous = gpas[size - 1] === gpas[0] + size - 1;
    if (input) {
      const v = vm.io.in(port, size as 1 | 2 | 4) >>> 0;
      if (contiguous && vm.gpaToHpa(gpas[0]) < 0) p.mmioWrite(c.vcpu.index, gpas[0], size as 1 | 2 | 4, v);
      else
        for (let j = 0; j < size; j++) {
          const hpa = vm.gpaToHpa(gpas[j]);
          const b = (v >>> (8 * j)) & 0xff;
          if (hpa >= 0) {
            h.mem.write8(hpa, b);
            noteGuestWrite(vm, gpas[j], 1); // shadow paging: keep shadows exact (mmu/shadow.ts)
          } else p.mmioWrite(c.vcpu.index, gpas[j], 1, b);
        }
    } else {
      let v = 0;
      if (contiguous && vm.gpaToHpa(gpas[0]) < 0) v = p.mmioRead(c.vcpu.index, gpas[0], size as 1 | 2 | 4);
      else
        for (let j = 0; j < size; j++) {
          const hpa = vm.gpaToHpa(gpas[j]);
          const b = hpa >= 0 ? h.mem.read8(hpa) : p.mmioRead(c.vcpu.index, gpas[j], 1);
          v += b * 2 ** (8 * j);
        }
      vm.io.out(port, size as 1 | 2 | 4, v | 0);
    }
    off = (off + step) & amask;
    count--;
    done++;
  }
  h.charge(done * L0_COST.stringIoElement);
  // rSI/rDI and rCX as the address size writes them (16: low word; 32: zero-extended).
  const regSize = asz === 2 ? 2 : asz === 4 ? 4 : 8;
  writeGprSized(h, idx, regSize, off);
  if (rep) writeGprSized(h, RCX, regSize, count);
  if (fault && !('gpas' in fault)) {
    if (fault.fault === 'pf') return injectException(h, 14, fault.errorCode, faultLa);
    if (fault.fault === 'gp') return injectException(h, seg === 2 ? 12 : 13, 0);
    return c.vcpu.stop(`string I/O on port 0x${port.toString(16)}: ${fault.why}`);
  }
  // Done (or the VM ended): past the instruction; otherwise it runs again for the rest.
  if (count === 0n || !rep) completeInstruction(h, c.exit.instructionLength, mode);
}
