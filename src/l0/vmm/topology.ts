/**
 * What CPUID says about a vCPU's place in its VM (SDM 2A CPUID leaves 01H and 0BH): the
 * hardware's answer describes physical CPU 0 of the machine L0 runs on; a vCPU reports its
 * own initial APIC ID (its index, as its vLAPIC's ID) and the VM's number of logical
 * processors, as each CPU of a bare machine with that many CPUs reports (src/hw/cpu/cpuid.ts).
 */
export function vcpuTopology(
  leaf: number,
  sub: number,
  apicId: number,
  cpus: number,
  regs: [number, number, number, number],
): [number, number, number, number] {
  const [a, b, c, d] = regs;
  if (leaf === 1) return [a, ((b & 0x00ffffff) | (apicId << 24)) >>> 0, c, d];
  if (leaf === 0xb) return [a, sub === 1 ? cpus : b, c, apicId >>> 0];
  return regs;
}
