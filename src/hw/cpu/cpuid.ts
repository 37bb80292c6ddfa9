/** CPUID (SDM Vol. 2 CPUID): the leaves of src/spec/cpuid.ts for this CPU. */
import type { Cpu } from './cpu.js';
import {
  VENDOR,
  BRAND,
  CPU_SIGNATURE,
  MAX_BASIC_LEAF,
  MAX_EXT_LEAF,
  ADDR_SIZES,
  LEAF6_EAX_ARAT,
} from '../../spec/cpuid.js';
import { CR4_OSXSAVE } from './regs.js';

const out = new Int32Array(4);

function brandWords(): Int32Array {
  const b = new Uint8Array(48);
  for (let k = 0; k < BRAND.length && k < 47; k++) b[k] = BRAND.charCodeAt(k);
  return new Int32Array(b.buffer);
}
const BRAND_WORDS = brandWords();

/** Returns [EAX, EBX, ECX, EDX] (a shared buffer: copy before the next call). */
export function cpuidLeaf(cpu: Cpu, leaf: number, sub: number): Int32Array {
  out.fill(0);
  const f = cpu.features;
  // Leaves beyond the maximum report the highest basic leaf (Intel behaviour, SDM Vol. 2 CPUID).
  if (leaf > MAX_BASIC_LEAF && leaf < 0x80000000) leaf = MAX_BASIC_LEAF;
  if (leaf > MAX_EXT_LEAF) leaf = MAX_BASIC_LEAF;
  switch (leaf) {
    case 0:
      out[0] = MAX_BASIC_LEAF;
      out[1] = VENDOR[0];
      out[3] = VENDOR[1];
      out[2] = VENDOR[2];
      break;
    case 1:
      out[0] = CPU_SIGNATURE;
      // EBX: APIC ID, logical processor count, CLFLUSH line size (8 x 8 bytes).
      out[1] = (cpu.apicId << 24) | (1 << 16) | (8 << 8);
      out[2] = f.leaf1Ecx | (cpu.cr4 & CR4_OSXSAVE ? 1 << 27 : 0);
      out[3] = f.leaf1Edx;
      break;
    case 6:
      out[0] = LEAF6_EAX_ARAT;
      break;
    case 7:
      if (sub === 0) out[1] = f.leaf7Ebx;
      break;
    case 0xb:
      // Extended topology: one thread per core, one core per package level; EDX = x2APIC ID.
      if (sub === 0) {
        out[0] = 0;
        out[1] = 1;
        out[2] = (1 << 8) | sub;
      } else if (sub === 1) {
        out[0] = 3;
        out[1] = cpu.cpuCount;
        out[2] = (2 << 8) | sub;
      } else out[2] = sub;
      out[3] = cpu.apicId;
      break;
    case 0x80000000:
      out[0] = MAX_EXT_LEAF;
      break;
    case 0x80000001:
      out[2] = f.ext1Ecx;
      out[3] = f.ext1Edx;
      break;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004: {
      const k = (leaf - 0x80000002) * 4;
      for (let j = 0; j < 4; j++) out[j] = BRAND_WORDS[k + j];
      break;
    }
    case 0x80000007:
      out[3] = 1 << 8; // invariant TSC: the TSC follows simulated cycles at a constant rate
      break;
    case 0x80000008:
      out[0] = ADDR_SIZES;
      break;
  }
  return out;
}
