/**
 * VT-x benchmarks through the host interface:
 * - the integer loop of part 1 as a VMX guest under EPT, against the same loop bare;
 * - a CPUID loop in a guest: VM exits handled per host second.
 */
import { Machine, VMCS_FIELD } from '../src/hw/index.js';
import { simpleGuest } from '../src/hw/vmx/simple-guest.js';
import { bench } from './measure.js';

function bareLoopMips(): number {
  return bench('guests/build/bench-loop.elf', 'iters=20000000').mips;
}

const LOOP = (iters: number): number[] => [
  0xb9,
  iters & 0xff,
  (iters >> 8) & 0xff,
  (iters >> 16) & 0xff,
  (iters >>> 24) & 0xff, // mov ecx, iters
  0x48,
  0x01,
  0xd0, // l: add rax, rdx
  0x48,
  0x31,
  0xca, // xor rdx, rcx
  0xff,
  0xc9, // dec ecx
  0x75,
  0xf6, // jnz l
  0xf4, // hlt
];

export function vmxBenchmarks(): string[] {
  const out: string[] = [];
  const iters = 20_000_000;
  // Guest.
  const m = new Machine({ memMiB: 64, serial: () => {} });
  const h = simpleGuest(m, new Uint8Array(LOOP(iters)));
  const cpu = m.cpus[0];
  let t0 = process.hrtime.bigint();
  const i0 = cpu.instret;
  const e = h.vmlaunch(1e12);
  let s = Number(process.hrtime.bigint() - t0) / 1e9;
  const guestMips = (cpu.instret - i0) / s / 1e6;
  // Bare: the same loop code in the part-1 kernel on the bare machine.
  const bareMips = bareLoopMips();
  out.push(
    `loop as a VMX guest (EPT)                      ${guestMips.toFixed(1).padStart(7)} MIPS  bare ${bareMips.toFixed(1)} MIPS  ratio ${((guestMips / bareMips) * 100).toFixed(0)}%  (${e.kind === 'exit' ? 'exit ' + e.reason : e.kind})`,
  );
  // CPUID exits.
  const m3 = new Machine({ memMiB: 64, serial: () => {} });
  const h3 = simpleGuest(m3, new Uint8Array([0x31, 0xc0, 0x0f, 0xa2, 0xeb, 0xfa])); // l: xor eax,eax; cpuid; jmp l
  const n = 200_000;
  t0 = process.hrtime.bigint();
  let r = h3.vmlaunch(1e9);
  for (let k = 1; k < n && r.kind === 'exit'; k++) {
    const rip = h3.vmread(VMCS_FIELD.GUEST_RIP) as bigint;
    h3.vmwrite(VMCS_FIELD.GUEST_RIP, rip + BigInt(r.instructionLength));
    r = h3.vmresume(1e9);
  }
  s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cyc = m3.cpus[0].cycles;
  out.push(
    `CPUID-exit loop (TypeScript host)              ${(n / s / 1e3).toFixed(0).padStart(7)} k exits/host-second  (${(cyc / n).toFixed(0)} simulated cycles per exit+entry round trip)`,
  );
  return out;
}
