/**
 * L1 guest-physical memory as L0 reads and writes it on L1's behalf (vmcs12, bitmaps,
 * MSR lists, ept12). Through ept01 a VM's RAM is one host range; anything outside it reads
 * as all ones and ignores writes, as an unclaimed physical address does on a PC — so a
 * hostile L1 pointing L0 at L0's or another VM's memory only ever reaches its own RAM.
 */
import type { Vm } from '../vm.js';
import { noteGuestWrite } from '../mmu/shadow.js';

export function l1Read32(vm: Vm, gpa: number): number {
  const hpa = vm.gpaToHpa(gpa);
  if (hpa < 0 || vm.gpaToHpa(gpa + 3) < 0) return -1;
  return vm.host.mem.read32(hpa);
}
export function l1Read8(vm: Vm, gpa: number): number {
  const hpa = vm.gpaToHpa(gpa);
  return hpa < 0 ? 0xff : vm.host.mem.read8(hpa);
}
export function l1Write32(vm: Vm, gpa: number, v: number): void {
  const hpa = vm.gpaToHpa(gpa);
  if (hpa < 0 || vm.gpaToHpa(gpa + 3) < 0) return;
  vm.host.mem.write32(hpa, v);
  noteGuestWrite(vm, gpa, 4); // L0 shadowing L1: a write to one of L1's page tables (mmu/shadow.ts)
}
/** Is the 4 KiB page at `gpa` L1 RAM? */
export function l1PageIsRam(vm: Vm, gpa: number): boolean {
  return gpa % 4096 === 0 && vm.gpaToHpa(gpa) >= 0 && vm.gpaToHpa(gpa + 4095) >= 0;
}
