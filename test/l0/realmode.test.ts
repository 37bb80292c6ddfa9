/**
 * L0's instruction emulator for guest state VM entry refuses without unrestricted guest
 * (src/l0/vmm/realmode/): real mode and protected mode with real-mode segment caches under
 * shadow paging.
 *
 * 1. Differential: each snippet of 16-bit real-mode code (assembled with GNU as, `.code16`; the
 *    source is in `asm`) runs on the simulated bare CPU in real mode and through the emulator
 *    from the same state (registers, flags, segments, a 64 KiB memory image with an IVT whose
 *    vectors lead to HLT stubs, a port device that logs); registers, flags (less those the SDM
 *    leaves undefined: `undef`), segments, CR0, memory and the port log must agree.
 * 2. The invalid-state predicate (SDM 3C §26.3.1.2) as a table.
 * 3. End to end under L0 with shadow paging: platform-tests.elf --cpus 2 (the AP trampoline) and
 *    bench-smp.elf print what they print bare; hand-made real-mode guests: interrupts through the
 *    IVT, an unemulated instruction, a guest that never leaves real mode, HLT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cpu } from '../../src/hw/cpu/cpu.js';
import { PhysMem } from '../../src/hw/mmu/physmem.js';
import { IoBus, type PortDevice } from '../../src/hw/bus.js';
import { Machine, VMCS_FIELD as F } from '../../src/hw/index.js';
import { L0, hostMemMiB, type Vm } from '../../src/l0/index.js';
import { Emu, step } from '../../src/l0/vmm/realmode/exec.js';
import { RmState, RmStop, type RmBus, type Segment } from '../../src/l0/vmm/realmode/state.js';
import { invalidStateReason } from '../../src/l0/vmm/realmode/invalid.js';
import { shadowSetCr0 } from '../../src/l0/vmm/cr-access.js';
import { runKernel } from '../support/run-kernel.js';

// ---------------------------------------------------------------------------------------------
// 1. Differential: bare CPU vs emulator

interface Case {
  name: string;
  /** The snippet's source (GNU as, AT&T syntax, .code16), for reading; `code` is what it assembles to. */
  asm: string;
  code: string;
  regs?: Partial<Record<Reg, number>>;
  flags?: number;
  /** Flags the SDM leaves undefined after the snippet's last instructions (not compared). */
  undef?: number;
  /** Bytes to patch into the initial memory image: [linear address, bytes]. */
  mem?: [number, number[]][];
  /** Compare segment limits and access rights too (the protected-mode round trip). */
  compareSegmentCaches?: boolean;
}

const CASES: Case[] = [
  {
    name: 'ALU 16-bit: add/adc/sub/sbb/cmp/and/or/xor with flags',
    asm: 'add %bx, %ax; pushf; adc %dx, %cx; pushf; sub %di, %si; pushf; sbb %ax, %bp; pushf; cmp $0x8000, %ax; pushf; and $0x00ff, %bx; pushf; or %cx, %dx; pushf; xor $0x5a5a, %si; pushf; adc $-1, %di; pushf; sbb $1, %bp; pushf; hlt',
    code: '01d89c11d19c29fe9c19c59c3d00809c81e3ff009c09ca9c81f65a5a9c83d7ff9c83dd019cf4',
  },
  {
    name: 'ALU 8-bit incl. AH/BH/CH/DH, INC/DEC/NEG/NOT',
    asm: 'add %bl, %ah; pushf; sub %dh, %ch; pushf; xor $0x5a, %al; inc %bh; pushf; dec %dl; pushf; neg %cl; pushf; not %ch; neg %bl; pushf; inc %al; dec %ah; pushf; cmp %ah, %cl; pushf; test $0x81, %dh; pushf; hlt',
    code: '00dc9c28f59c345afec79cfeca9cf6d99cf6d5f6db9cfec0fecc9c38e19cf6c6819cf4',
    regs: { eax: 0x80ff, ebx: 0x7f01, ecx: 0x80, edx: 0x1ff },
  },
  {
    name: 'ALU 32-bit through the operand-size prefix',
    asm: 'add $0x12345678, %eax; pushf; sub %ecx, %ebx; pushf; adc $-1, %edx; pushf; cmp %edi, %esi; pushf; test $0x80000000, %eax; pushf; sbb %eax, %eax; pushf; inc %ebp; dec %esi; pushf; neg %edi; pushf; hlt',
    code: '6605785634129c6629cb9c6683d2ff9c6639fe9c66a9000000809c6619c09c6645664e9c66f7df9cf4',
    regs: {
      eax: 0x7fffffff,
      ebx: 0x1,
      ecx: 0x2,
      edx: 0xffffffff,
      esi: 0x80000000,
      edi: 0x1,
      ebp: 0xffffffff,
    },
  },
  {
    name: 'ALU with memory operands (16-bit addressing: every ModRM form)',
    asm: 'add %ax, (%bx,%si); adc (%bx,%di), %cx; sub %dx, (%bp,%si); or (%bp,%di), %ax; and %bx, (%si); xor (%di), %dx; addw $7, 0x100; cmpw $0x1234, (%bx); pushf; adcb $0x80, 4(%bx,%si); sbbw $-3, -2(%bp,%di); orw $0x100, 0x200(%si); incw 0x10(%di); decb 0x300(%bx); negw 6(%bp); notb 8(%di); pushf; hlt',
    code: '0100130929120b03211c33158306000107813f34129c80500480835bfefd818c00020001ff4510fe8f0003f75e06f655089cf4',
    regs: { ebx: 0x100, esi: 0x40, edi: 0x60, ebp: 0x80 },
  },
  {
    name: 'MOV, XCHG, LEA, MOVZX/MOVSX, CBW/CWD, segment overrides',
    asm: 'mov %ax, 4(%bx,%si); mov -2(%bp,%di), %cx; mov $0x1234, %dx; movb $0x99, 0x20(%bx); movw $0xbeef, %es:0x30(%bx); mov %es:0x32(%bx), %si; xchg %dx, (%di); xchg %al, %ah; xchg %bx, %cx; lea 0x1234(%bx,%si), %ax; mov 0x22, %al; mov %ax, 0x44; mov %cs:0, %bl; movzbw (%si), %dx; movsbw 1(%si), %di; movzbl %ah, %ebp; movswl 2(%si), %esi; cbw; cwd; cwtl; cltd; hlt',
    code: '8940048b4bfeba3412c647209926c74730efbe268b7732871586c487d98d803412a02200a344002e8a1e00000fb6140fbe7c01660fb6ec660fbf7402989966986699f4',
    regs: { ebx: 0x100, esi: 0x40, edi: 0x60, ebp: 0x80, eax: 0x12345680 },
  },
  {
    name: '32-bit addressing (67 prefix): SIB, scale, displacement',
    asm: 'mov 8(%ebx,%ecx,4), %eax; mov %ax, (%esi,%edi,2); lea 0x10(%eax,%eax,8), %edx; addl $5, 0x20(,%ecx,8); mov 0x100, %ecx; lea (%esp), %ebp; hlt',
    code: '67668b448b086789047e67668d54c01067668304cd2000000005668b0e000167668d2c24f4',
    regs: { ebx: 0x100, ecx: 0x3, esi: 0x40, edi: 0x60, eax: 0x7 },
  },
  {
    name: 'PUSH/POP, PUSHA/POPA, PUSHF/POPF, LAHF/SAHF, ENTER/LEAVE',
    asm: 'push %ax; push $0x1234; push $-5; pushl $0x12345678; pushw (%si); push %sp; pusha; mov $0, %ax; mov $0, %bx; popa; pushal; popal; pop %cx; pop (%di); pushf; pop %dx; push $0x08d5; popf; lahf; mov $0xc5, %ah; sahf; enter $8, $0; push %bx; leave; enter $4, $2; leave; pushfl; popfl; hlt',
    code: '506834126afb666878563412ff345460b80000bb00006166606661598f059c5a68d5089d9fb4c59ec808000053c9c8040002c9669c669df4',
    regs: { esi: 0x40, edi: 0x60, ebp: 0x200 },
  },
  {
    name: 'segment registers: MOV, PUSH/POP, LDS/LES/LSS/LFS/LGS',
    asm: 'mov $0x0250, %ax; mov %ax, %es; mov %es, %bx; push %ds; pop %fs; push %cs; pop %gs; mov %ss, %cx; les 0x44, %di; lfs 0x48, %dx; lgs 0x4c, %bp; lss 0x50, %sp; push %ax; mov %gs, %eax; lds 0x40, %si; hlt',
    code: 'b850028ec08cc31e0fa10e0fa98cd1c43e44000fb41648000fb52e4c000fb226500050668ce8c5364000f4',
    mem: [
      [0x2040, [0x34, 0x12, 0x0, 0x6]],
      [0x2044, [0x78, 0x56, 0x0, 0x7]],
      [0x2048, [0x1, 0x2, 0x3, 0x4]],
      [0x204c, [0x5, 0x6, 0x7, 0x8]],
      [0x2050, [0x0, 0x8, 0x0, 0x3]],
    ],
  },
  {
    name: 'ROL by 1, CL and imm8 on 8/16/32-bit operands',
    asm: 'rolb %al; pushf; rolw %bx; pushf; roll %edx; pushf; rolb %cl, %ah; rolw %cl, (%si); roll $3, %edi; rolb $9, %bh; rolw $17, %bp; hlt',
    code: 'd0c09cd1c39c66d1c29cd2c4d30466c1c703c0c709c1c511f4',
    regs: { eax: 0x81c3, ebx: 0x8001, ecx: 0xb, edx: 0xc0000001, edi: 0x87654321, ebp: 0x4321, esi: 0x40 },
    flags: 0x1,
    undef: 0x810,
  },
  {
    name: 'ROR by 1, CL and imm8 on 8/16/32-bit operands',
    asm: 'rorb %al; pushf; rorw %bx; pushf; rorl %edx; pushf; rorb %cl, %ah; rorw %cl, (%si); rorl $3, %edi; rorb $9, %bh; rorw $17, %bp; hlt',
    code: 'd0c89cd1cb9c66d1ca9cd2ccd30c66c1cf03c0cf09c1cd11f4',
    regs: { eax: 0x81c3, ebx: 0x8001, ecx: 0xb, edx: 0xc0000001, edi: 0x87654321, ebp: 0x4321, esi: 0x40 },
    flags: 0x1,
    undef: 0x810,
  },
  {
    name: 'RCL by 1, CL and imm8 on 8/16/32-bit operands',
    asm: 'rclb %al; pushf; rclw %bx; pushf; rcll %edx; pushf; rclb %cl, %ah; rclw %cl, (%si); rcll $3, %edi; rclb $9, %bh; rclw $17, %bp; hlt',
    code: 'd0d09cd1d39c66d1d29cd2d4d31466c1d703c0d709c1d511f4',
    regs: { eax: 0x81c3, ebx: 0x8001, ecx: 0xb, edx: 0xc0000001, edi: 0x87654321, ebp: 0x4321, esi: 0x40 },
    flags: 0x1,
    undef: 0x810,
  },
  {
    name: 'RCR by 1, CL and imm8 on 8/16/32-bit operands',
    asm: 'rcrb %al; pushf; rcrw %bx; pushf; rcrl %edx; pushf; rcrb %cl, %ah; rcrw %cl, (%si); rcrl $3, %edi; rcrb $9, %bh; rcrw $17, %bp; hlt',
    code: 'd0d89cd1db9c66d1da9cd2dcd31c66c1df03c0df09c1dd11f4',
    regs: { eax: 0x81c3, ebx: 0x8001, ecx: 0xb, edx: 0xc0000001, edi: 0x87654321, ebp: 0x4321, esi: 0x40 },
    flags: 0x1,
    undef: 0x810,
  },
  {
    name: 'SHL by 1, CL and imm8 on 8/16/32-bit operands',
    asm: 'shlb %al; pushf; shlw %bx; pushf; shll %edx; pushf; shlb %cl, %ah; shlw %cl, (%si); shll $3, %edi; shlb $9, %bh; shlw $17, %bp; hlt',
    code: 'd0e09cd1e39c66d1e29cd2e4d32466c1e703c0e709c1e511f4',
    regs: { eax: 0x81c3, ebx: 0x8001, ecx: 0xb, edx: 0xc0000001, edi: 0x87654321, ebp: 0x4321, esi: 0x40 },
    flags: 0x1,
    undef: 0x810,
  },
  {
    name: 'SHR by 1, CL and imm8 on 8/16/32-bit operands',
    asm: 'shrb %al; pushf; shrw %bx; pushf; shrl %edx; pushf; shrb %cl, %ah; shrw %cl, (%si); shrl $3, %edi; shrb $9, %bh; shrw $17, %bp; hlt',
    code: 'd0e89cd1eb9c66d1ea9cd2ecd32c66c1ef03c0ef09c1ed11f4',
    regs: { eax: 0x81c3, ebx: 0x8001, ecx: 0xb, edx: 0xc0000001, edi: 0x87654321, ebp: 0x4321, esi: 0x40 },
    flags: 0x1,
    undef: 0x810,
  },
  {
    name: 'SAR by 1, CL and imm8 on 8/16/32-bit operands',
    asm: 'sarb %al; pushf; sarw %bx; pushf; sarl %edx; pushf; sarb %cl, %ah; sarw %cl, (%si); sarl $3, %edi; sarb $9, %bh; sarw $17, %bp; hlt',
    code: 'd0f89cd1fb9c66d1fa9cd2fcd33c66c1ff03c0ff09c1fd11f4',
    regs: { eax: 0x81c3, ebx: 0x8001, ecx: 0xb, edx: 0xc0000001, edi: 0x87654321, ebp: 0x4321, esi: 0x40 },
    flags: 0x1,
    undef: 0x810,
  },
  {
    name: 'SHLD/SHRD',
    asm: 'shld $4, %bx, %ax; shrd $7, %edx, %ecx; shld %cl, %si, %di; hlt',
    code: '0fa4d804660facd1070fa5f7f4',
    regs: { eax: 0x8123, ebx: 0xf00f, ecx: 0x87654325, edx: 0x12345678, esi: 0xabcd, edi: 0x1234 },
    undef: 0x810,
  },
  {
    name: 'MUL/IMUL (one, two and three operands)',
    asm: 'mul %bl; mov %ax, (%si); mulw %cx; mov %dx, 2(%si); imul %cx; mov %ax, 4(%si); imull %ebx; imul %bx, %cx; imul $-300, %dx, %di; imul $7, %bp, %bp; hlt',
    code: 'f6e38904f7e1895402f7e989440466f7eb0fafcb69fad4fe6bed07f4',
    regs: { eax: 0x80f3, ebx: 0x80000091, ecx: 0xfff7, edx: 0x1234, esi: 0x40, ebp: 0x4000 },
    undef: 0xd4,
  },
  {
    name: 'DIV/IDIV',
    asm: 'div %bl; mov %ax, (%si); mov $0x1234, %dx; divw %cx; mov %dx, 2(%si); mov $0xffff, %dx; mov $-1000, %ax; idivw %bp; mov %ax, 4(%si); mov $0, %edx; mov $1000000, %eax; divl %edi; mov $-7, %al; cbw; mov $2, %bl; idiv %bl; hlt',
    code: 'f6f38904ba3412f7f1895402baffffb818fcf7fd89440466ba0000000066b840420f0066f7f7b0f998b302f6fbf4',
    regs: { eax: 0x1234, ebx: 0x37, ecx: 0x4321, esi: 0x40, ebp: 0x7, edi: 0x14d },
    undef: 0x8d5,
  },
  {
    name: 'DIV by zero raises #DE through the IVT',
    asm: 'mov $0, %cl; div %cl; hlt',
    code: 'b100f6f1f4',
    undef: 0x8d5,
  },
  {
    name: 'DIV overflow raises #DE through the IVT',
    asm: 'mov $0x1000, %ax; mov $2, %bl; div %bl; hlt',
    code: 'b80010b302f6f3f4',
    undef: 0x8d5,
  },
  {
    name: 'BT/BTS/BTR/BTC (register and memory bit strings), BSF/BSR',
    asm: 'bt $3, %ax; pushf; bts %bx, %cx; btr $15, %dx; btc %bx, (%si); bt %di, (%si); pushf; btsl $33, %ebp; bsf %ax, %bx; bsr %dx, %cx; hlt',
    code: '0fbae0039c0fabd90fbaf20f0fbb1c0fa33c9c660fbaed210fbcd80fbdcaf4',
    regs: { eax: 0x8, ebx: 0x13, ecx: 0x0, edx: 0x8001, esi: 0x40, edi: 0xfff9, ebp: 0x0 },
    undef: 0x8d4,
  },
  {
    name: 'SETcc for every condition, CMOVcc, XLAT, BSWAP, CMPXCHG, XADD',
    asm: 'cmp %bx, %ax; seto (%si); setno 1(%si); setb 2(%si); setae 3(%si); sete 4(%si); setne 5(%si); setbe 6(%si); seta 7(%si); sets 8(%si); setns 9(%si); setp 10(%si); setnp 11(%si); setl 12(%si); setge 13(%si); setle 14(%si); setg 15(%si); cmovl %bx, %cx; cmovg %bx, %dx; mov $0x20, %bx; mov $3, %al; xlat; bswap %edi; mov $0x5555, %ax; cmpxchg %cx, 0x10(%si); pushf; cmpxchg %cx, 0x10(%si); pushf; xadd %dx, 0x12(%si); pushf; hlt',
    code: '39d80f90040f9144010f9244020f9344030f9444040f9544050f9644060f9744070f9844080f9944090f9a440a0f9b440b0f9c440c0f9d440d0f9e440e0f9f440f0f4ccb0f4fd3bb2000b003d7660fcfb855550fb14c109c0fb14c109c0fc154129cf4',
    regs: { eax: 0x7000, ebx: 0x9000, ecx: 0x1111, edx: 0x2222, esi: 0x40, edi: 0x11223344 },
    mem: [[0x2050, [0x55, 0x55]]],
  },
  {
    name: 'Jcc, JMP short/near, LOOP/LOOPE/LOOPNE/JCXZ, CALL/RET near and indirect',
    asm: 'mov $10, %cx; xor %ax, %ax; 1: add %cx, %ax; loop 1b; mov $5, %cx; 2: inc %dx; cmp $3, %dx; loopne 2b; call f; mov $g, %bx; call *%bx; jmp 3f; f: inc %bp; ret; g: add $2, %bp; ret $0; 3: jcxz 4f; hlt; 4: jz 5f; hlt; 5: mov $0x100, %si; cmp $0x100, %si; jne 6f; ja 6f; jae 7f; 6: hlt; 7: jmp .+0x100; .fill 0xfd, 1, 0xf4; xor %ax, %ax; mov $0x40, %si; cmpw $0, (%si); movw $8f, 0x44; jmp *0x44; hlt; 8: mov $1, %di; hlt',
    code: 'b90a0031c001c8e2fcb905004283fa03e0fae80700bb1e00ffd3eb0845c383c502c20000e301f47401f4be000181fe0001750477027301f4e9fd00f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f431c0be4000833c00c70644004b01ff264400f4bf0100f4',
    regs: { edx: 0x0 },
  },
  {
    name: 'far CALL/JMP/RET in real mode (pointer and memory forms)',
    asm: 'lcall $0xff, $(f + 0x10); ljmp $0x100, $g; hlt; f: mov %cs, %dx; lret; g: movw $h, 0x40; movw %cs, 0x42; lcall *0x40; mov $0x4321, %cx; movw $i, 0x48; movw $0x100, 0x4a; ljmp *0x48; hlt; h: mov %cs, %di; lret $4; i: hlt',
    code: '9a1b00ff00ea0e000001f48ccacbc706400030008c0e4200ff1e4000b92143c70648003500c7064a000001ff2e4800f48ccfca0400f4',
  },
  {
    name: 'INT n / IRET through the IVT, INT3, INTO, LIDT moving the IVT',
    asm: 'xor %ax, %ax; mov %ax, %es; movw $h, %es:0xc0; mov %cs, %es:0xc2; int $0x30; pushf; lidt %cs:ivt; int $0x01; hlt; h: mov $0x4242, %bx; iret; ivt: .word 0x3ff; .long 0x400',
    code: '31c08ec026c706c0001c00268c0ec200cd309c2e0f011e2000cd01f4bb4242cfff0300040000',
    mem: [
      [0x404, [0x10, 0x0, 0x40, 0x1]],
      [0x1410, [0xf4]],
    ],
  },
  {
    name: 'INT3 through the IVT',
    asm: 'stc; sti; int3; hlt',
    code: 'f9fbccf4',
  },
  {
    name: 'INTO with OF set goes through the IVT (vector 4)',
    asm: 'mov $0x7f, %al; add $1, %al; into; hlt',
    code: 'b07f0401cef4',
  },
  {
    name: 'UD2 raises #UD through the IVT',
    asm: 'mov $1, %ax; ud2; hlt',
    code: 'b801000f0bf4',
  },
  {
    name: 'a segment-limit violation raises #GP through the IVT; SS raises #SS',
    asm: 'mov $0xffff, %bx; mov (%bx), %ax; hlt',
    code: 'bbffff8b07f4',
  },
  {
    name: 'a word at SS:0xffff raises #SS through the IVT',
    asm: 'mov $0xffff, %bp; mov (%bp), %ax; hlt',
    code: 'bdffff8b4600f4',
  },
  {
    name: 'REP MOVSB/MOVSW/MOVSD, REP STOSW, LODSB, with DF=0 and DF=1',
    asm: 'mov $0x10, %cx; rep movsb; mov $4, %cx; rep movsw; mov $2, %cx; rep movsl; mov $0xabcd, %ax; mov $3, %cx; rep stosw; lodsb; std; mov $0x8f, %si; mov $0xcf, %di; mov $5, %cx; rep movsb; lodsw; cld; movsb %es:(%si), %es:(%di); hlt',
    code: 'b91000f3a4b90400f3a5b9020066f3a5b8cdabb90300f3abacfdbe8f00bfcf00b90500f3a4adfc26a4f4',
    regs: { esi: 0x40, edi: 0x80 },
  },
  {
    name: 'REPE CMPSB, REPNE SCASB/SCASW, CMPSW',
    asm: 'mov $0x20, %cx; repe cmpsb; pushf; mov %cx, %bp; mov $0x40, %di; mov $0x30, %cx; mov $0x77, %al; repne scasb; pushf; mov $0x40, %si; mov $0x40, %di; cmpsw; pushf; mov $0x10, %cx; mov $0x9999, %ax; repne scasw; pushf; hlt',
    code: 'b92000f3a69c89cdbf4000b93000b077f2ae9cbe4000bf4000a79cb91000b89999f2af9cf4',
    regs: { esi: 0x40, edi: 0x40 },
    mem: [[0x2050, [0x77]]],
  },
  {
    name: 'REP MOVSB with a count above the emulator batch (restartable)',
    asm: 'mov $0x700, %cx; rep movsb; mov $0x500, %cx; rep stosb; hlt',
    code: 'b90007f3a4b90005f3aaf4',
    regs: { esi: 0x0, edi: 0x800, eax: 0x5a },
  },
  {
    name: '32-bit address size strings (67 prefix): ESI/EDI/ECX',
    asm: 'mov $3, %ecx; addr32 rep movsw; addr32 lodsb; hlt',
    code: '66b90300000067f3a567acf4',
    regs: { esi: 0x40, edi: 0x80 },
  },
  {
    name: 'IN/OUT imm8 and DX, INS/OUTS with REP',
    asm: 'out %al, $0x80; mov $0x81, %dx; out %ax, %dx; outl %eax, $0x84; in $0x80, %al; in %dx, %ax; inl $0x84, %eax; mov $0x40, %si; mov $3, %cx; mov $0x82, %dx; rep outsb; mov $0x100, %di; mov $2, %cx; rep insw; outsw; hlt',
    code: 'e680ba8100ef66e784e480ed66e584be4000b90300ba8200f36ebf0001b90200f36d6ff4',
    regs: { eax: 0x12345678 },
  },
  {
    name: 'CLI/STI/CLD/STD/CLC/STC/CMC, SMSW/LMSW, MOV from/to CR0, SGDT/SIDT/LGDT',
    asm: 'cli; stc; cmc; std; cld; sti; smsw %ax; smsw (%si); mov %cr0, %ebx; or $8, %bl; mov %ebx, %cr0; smsw %cx; clts; mov %cr0, %edx; lmsw %ax; sgdt 0x10(%si); sidt 0x20(%si); lgdt 0x30(%si); sgdt 0x40(%si); lgdtl 0x30(%si); sgdt 0x48(%si); pushf; hlt',
    code: 'faf9f5fdfcfb0f01e00f01240f20c380cb080f22c30f01e10f060f20c20f01f00f0144100f014c200f0154300f014440660f0154300f0144489cf4',
    regs: { esi: 0x40 },
    mem: [[0x2070, [0xff, 0x0, 0x11, 0x22, 0x33, 0x44]]],
  },
  {
    name: 'into protected mode: LGDT, CR0.PE, far jump to 32-bit code, segment loads, back to real mode',
    asm: 'lgdtl %cs:gdtr; mov %cr0, %eax; or $1, %eax; mov %eax, %cr0; ljmpl $0x08, $(0x1000 + pm); .code32; pm: mov $0x10, %ax; mov %ax, %ds; mov %ax, %ss; mov $0x3800, %esp; push $0x12345678; mov 0x2040, %ebx; mov %ebx, 0x2400; lea 0x100(%ebx,%ebx,2), %ecx; ljmp $0x18, $(pm16 - 0x0); .code16; pm16: mov $0x20, %ax; mov %ax, %es; mov %cr0, %eax; and $0xfe, %al; mov %eax, %cr0; ljmp $0x100, $rm; rm: mov $0x200, %ax; mov %ax, %ds; mov $0x300, %ax; mov %ax, %ss; mov %es, %dx; hlt; .align 8; gdt: .quad 0; .quad 0x00cf9a000000ffff; .quad 0x00cf92000000ffff; .quad 0x00009a001000ffff; .quad 0x000092000000ffff; gdtr: .word 0x27; .long 0x1000 + gdt',
    code: '2e660f011690000f20c06683c8010f22c066ea19100000080066b810008ed88ed0bc0038000068785634128b1d40200000891d002400008d8c5b00010000ea450000001800b820008ec00f20c024fe0f22c0ea57000001b800028ed8b800038ed08cc2f48db400000000000000000000ffff0000009acf00ffff00000092cf00ffff0010009a0000ffff000000920000270068100000',
    compareSegmentCaches: true,
  },
  {
    name: 'single-step: TF set by POPF traps after the next instruction, through the IVT',
    asm: 'pushf; pop %ax; or $0x100, %ax; push %ax; popf; inc %bx; inc %bx; hlt',
    code: '9c580d0001509d4343f4',
  },
  {
    name: 'no-ops: WBINVD, NOP forms, FWAIT',
    asm: 'wbinvd; nop; nopw (%bx,%si); fwait; hlt',
    code: '0f09900f1f009bf4',
  },
];

type Reg = 'eax' | 'ecx' | 'edx' | 'ebx' | 'esp' | 'ebp' | 'esi' | 'edi';
const REGS: Reg[] = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const DEFAULT_REGS: Record<Reg, number> = {
  eax: 0x8badf00d,
  ecx: 5,
  edx: 0x7fff8001,
  ebx: 0x100,
  esp: 0x1000,
  ebp: 0x80,
  esi: 0x40,
  edi: 0x60,
};
/** Segments: ES, CS, SS, DS, FS, GS (code at 0x1000, data at 0x2000, stack below 0x4000). */
const SELECTORS = [0x200, 0x100, 0x300, 0x200, 0x400, 0x400];
/** Compared memory: the low 64 KiB (IVT, code, data, stack, interrupt stubs at 0x5000). */
const IMAGE = 0x10000;
const RAM = 2 * 1048576;

function image(c: Case): Uint8Array {
  const m = new Uint8Array(IMAGE);
  let x = 0x2545f491;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x & 0xff;
  };
  for (let a = 0x2000; a < 0x3000; a++) m[a] = rnd();
  for (let a = 0x4000; a < 0x5000; a++) m[a] = rnd();
  // The IVT: vector v → 0500:(v × 16), a HLT (the snippet ends there if it raises v).
  for (let v = 0; v < 256; v++) {
    m[v * 4] = (v * 16) & 0xff;
    m[v * 4 + 1] = (v * 16) >> 8;
    m[v * 4 + 2] = 0x00;
    m[v * 4 + 3] = 0x05;
    m[0x5000 + v * 16] = 0xf4;
  }
  m.set(Buffer.from(c.code, 'hex'), 0x1000);
  for (const [a, bytes] of c.mem ?? []) m.set(bytes, a);
  return m;
}

/** A port device at 0x80-0x87: reads return a sequence, every access is logged. */
class TestPorts implements PortDevice {
  readonly name = 'test ports';
  readonly log: string[] = [];
  private n = 0;
  portIn(off: number, size: 1 | 2 | 4): number {
    this.n++;
    this.log.push(`in ${off}/${size}`);
    const v = (Math.imul(0x9e3779b1, off + 1) + Math.imul(this.n, 0x1234567)) >>> 0;
    return size === 4 ? v : v & (size === 2 ? 0xffff : 0xff);
  }
  portOut(off: number, size: 1 | 2 | 4, value: number): void {
    this.log.push(`out ${off}/${size} ${(value >>> 0).toString(16)}`);
  }
}

interface Final {
  regs: number[];
  eip: number;
  eflags: number;
  segs: Segment[];
  cr0: number;
  mem: Uint8Array;
  ports: string[];
}

function initialRegs(c: Case): number[] {
  return REGS.map((r) => (c.regs?.[r] ?? DEFAULT_REGS[r]) >>> 0);
}

/** The snippet on the simulated CPU, in real mode as after reset but with our segments. */
function runBare(c: Case): Final {
  const mem = new PhysMem(RAM);
  mem.writeBytes(0, image(c));
  const io = new IoBus();
  const ports = new TestPorts();
  io.register(0x80, 8, ports);
  const cpu = new Cpu(0, mem, io);
  SELECTORS.forEach((sel, k) => {
    cpu.segSel[k] = sel;
    cpu.segBase[k] = sel << 4;
    cpu.segLimit[k] = 0xffff;
    cpu.segAttr[k] = k === 1 ? 0x9b : 0x93;
  });
  initialRegs(c).forEach((v, k) => {
    cpu.rlo[k] = v | 0;
    cpu.rhi[k] = 0;
  });
  cpu.idtrBase = 0;
  cpu.idtrLimit = 0x3ff;
  cpu.setFlags((c.flags ?? 0) | 2);
  cpu.rip = 0;
  cpu.updateMode();
  cpu.flushFetch();
  cpu.tlb.flushAll();
  for (let k = 0; k < 1000 && !cpu.halted; k++) cpu.run(1000);
  assert.ok(cpu.halted, `${c.name}: the bare CPU did not reach HLT`);
  return {
    regs: REGS.map((_, k) => cpu.rlo[k] >>> 0),
    eip: cpu.rip,
    eflags: cpu.getFlags() >>> 0,
    segs: SELECTORS.map((_, k) => ({
      sel: cpu.segSel[k] & 0xffff,
      base: cpu.segBase[k],
      limit: cpu.segLimit[k] >>> 0,
      ar: cpu.segAttr[k] >>> 0,
    })),
    cr0: cpu.cr0 >>> 0,
    mem: mem.u8.slice(0, IMAGE),
    ports: ports.log,
  };
}

/** Plain memory, the test ports, and CR0 for the emulator (no VM around it). */
class TestBus implements RmBus {
  readonly mem = new Uint8Array(RAM);
  readonly ports = new TestPorts();
  private readonly cr = [0, 0, 0, 0, 0];
  read(la: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let k = 0; k < size; k++) v += (this.mem[la + k] ?? 0xff) * 2 ** (8 * k);
    return v;
  }
  write(la: number, size: 1 | 2 | 4, value: number): void {
    for (let k = 0; k < size; k++) if (la + k < RAM) this.mem[la + k] = (value >>> (8 * k)) & 0xff;
  }
  in(port: number, size: 1 | 2 | 4): number {
    if (port >= 0x80 && port < 0x88) return this.ports.portIn(port - 0x80, size);
    return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  }
  out(port: number, size: 1 | 2 | 4, value: number): void {
    if (port >= 0x80 && port < 0x88) this.ports.portOut(port - 0x80, size, value);
  }
  readCr(s: RmState, n: number): number {
    return n === 0 ? s.cr0 : this.cr[n];
  }
  writeCr(s: RmState, n: number, v: number): boolean {
    if (n !== 0) {
      this.cr[n] = v;
      return true;
    }
    if (v & 0x80000000 && !(v & 1)) return false; // PG without PE: #GP
    s.cr0 = (v | 0x10) >>> 0; // ET is fixed to 1
    return true;
  }
  invlpg(): void {}
  exitingInsn(): void {
    throw new RmStop('CPUID/MSRs go through L0 (tested end to end)');
  }
  rdtsc(): bigint {
    return 0n;
  }
}

function runEmulator(c: Case): Final {
  const bus = new TestBus();
  bus.mem.set(image(c), 0);
  const s = new RmState();
  SELECTORS.forEach((sel, k) =>
    Object.assign(s.seg[k], { sel, base: sel << 4, limit: 0xffff, ar: k === 1 ? 0x9b : 0x93 }),
  );
  initialRegs(c).forEach((v, k) => (s.gpr[k] = v));
  s.eflags = (c.flags ?? 0) | 2;
  s.cr0 = 0x60000010;
  s.idtrBase = 0;
  s.idtrLimit = 0x3ff;
  const e = new Emu(s, bus);
  for (let k = 0; k < 100000 && !s.halted; k++) step(e);
  assert.ok(s.halted, `${c.name}: the emulator did not reach HLT`);
  return {
    regs: [...s.gpr],
    eip: s.eip,
    eflags: s.eflags >>> 0,
    segs: s.seg.map((x) => ({ ...x })),
    cr0: s.cr0 >>> 0,
    mem: bus.mem.slice(0, IMAGE),
    ports: bus.ports.log,
  };
}

const hx = (n: number): string => `0x${(n >>> 0).toString(16)}`;

for (const c of CASES) {
  test(`real mode, bare CPU vs L0's emulator: ${c.name}`, () => {
    const bare = runBare(c),
      emu = runEmulator(c);
    const ctx = `\n  ${c.asm}`;
    REGS.forEach((r, k) => assert.equal(hx(emu.regs[k]), hx(bare.regs[k]), `${r}${ctx}`));
    assert.equal(hx(emu.eip), hx(bare.eip), `eip${ctx}`);
    const mask = ~(c.undef ?? 0);
    assert.equal(hx(emu.eflags & mask), hx(bare.eflags & mask), `eflags${ctx}`);
    assert.equal(hx(emu.cr0), hx(bare.cr0), `cr0${ctx}`);
    for (let k = 0; k < 6; k++) {
      const a = emu.segs[k],
        b = bare.segs[k];
      assert.equal(hx(a.sel), hx(b.sel), `segment ${k} selector${ctx}`);
      assert.equal(hx(a.base), hx(b.base), `segment ${k} base${ctx}`);
      if (c.compareSegmentCaches) {
        assert.equal(hx(a.limit), hx(b.limit), `segment ${k} limit${ctx}`);
        assert.equal(hx(a.ar), hx(b.ar), `segment ${k} access rights${ctx}`);
      }
    }
    const diff = emu.mem.findIndex((v, k) => v !== bare.mem[k]);
    assert.equal(
      diff,
      -1,
      `memory differs at ${hx(diff)}: emulator ${hx(emu.mem[diff])}, bare ${hx(bare.mem[diff])}${ctx}`,
    );
    assert.deepEqual(emu.ports, bare.ports, `port accesses${ctx}`);
  });
}

/** Run `code` (hex) at 0100:0000 through the emulator on plain memory until HLT (or `steps`). */
function emulate(
  code: string,
  init: { eax?: number; eflags?: number; cr0?: number } = {},
  steps = 1000,
): RmState {
  const c: Case = { name: 'unit', asm: '', code };
  const bus = new TestBus();
  bus.mem.set(image(c), 0);
  const s = new RmState();
  SELECTORS.forEach((sel, k) =>
    Object.assign(s.seg[k], { sel, base: sel << 4, limit: 0xffff, ar: k === 1 ? 0x9b : 0x93 }),
  );
  s.gpr[4] = 0x1000;
  s.gpr[0] = init.eax ?? 0;
  s.eflags = (init.eflags ?? 0) | 2;
  s.cr0 = init.cr0 ?? 0x60000010;
  const e = new Emu(s, bus);
  for (let k = 0; k < steps && !s.halted; k++) step(e);
  return s;
}

// The BCD adjustments are not implemented by the CPU model (they raise #UD there), so they are
// checked against the SDM's own examples and operation (SDM 2A DAA, DAS, AAA, AAS, AAM, AAD).
const CF = 1,
  AF = 0x10;
const BCD: [string, string, { eax: number; eflags?: number }, number, number][] = [
  ['DAA after 79h + 35h (SDM example)', '27f4', { eax: 0xae }, 0x0014, CF | AF],
  ['DAA, nothing to adjust', '27f4', { eax: 0x42 }, 0x0042, 0],
  ['DAS after 35h - 47h (SDM example)', '2ff4', { eax: 0xee, eflags: CF | AF }, 0x0088, CF | AF],
  ['AAA after 08h + 05h', '37f4', { eax: 0x000d }, 0x0103, CF | AF],
  ['AAA, nothing to adjust', '37f4', { eax: 0x0105 }, 0x0105, 0],
  ['AAS after 02h - 05h', '3ff4', { eax: 0x01fd, eflags: AF | CF }, 0x0007, CF | AF],
  ['AAS with a borrow out of AL', '3ff4', { eax: 0x0203, eflags: AF }, 0x000d, CF | AF],
  ['AAM 77', 'd40af4', { eax: 77 }, 0x0707, 0],
  ['AAD 0707h', 'd50af4', { eax: 0x0707 }, 0x004d, 0],
];
for (const [name, code, init, ax, flags] of BCD)
  test(`the emulator's BCD adjustments: ${name}`, () => {
    const s = emulate(code, init);
    assert.equal(hx(s.gpr[0] & 0xffff), hx(ax));
    assert.equal(hx(s.eflags & (CF | AF)), hx(flags));
  });

test('AAM 0 raises #DE through the IVT', () => {
  const s = emulate('d400f4', { eax: 77 });
  assert.equal(s.seg[1].sel, 0x500);
  assert.equal(s.eip, 1); // the stub of vector 0, past its HLT
});

test('an instruction the emulator does not implement is reported with its bytes, name and address', () => {
  for (const [code, what] of [
    ['9090d9e8', /the instruction d9 e8 \(X87\) at 0100:0002 \(linear 0x1002\) is not emulated/],
    ['0f0a', /the instruction 0f 0a \(an opcode the machine does not implement\) at 0100:0000/],
  ] as const)
    assert.throws(
      () => emulate(code),
      (x: unknown) => x instanceof RmStop && what.test(x.why),
    );
});

test('an exception in protected mode with invalid segments is reported (no IDT delivery)', () => {
  assert.throws(
    () => emulate('0f0b', { cr0: 0x60000011 }),
    (x: unknown) => x instanceof RmStop && /#UD at 0100:0000 .*IDT/.test(x.why),
  );
});

// ---------------------------------------------------------------------------------------------
// 2. The invalid-state predicate (SDM 3C §26.3.1.2 without unrestricted guest)

const seg = (sel: number, ar: number, limit = 0xffff, base = sel << 4): Segment => ({ sel, base, limit, ar });
const realCaches = (cs = 0x800): Segment[] => [
  seg(0, 0x93),
  seg(cs, 0x9b),
  seg(0, 0x93),
  seg(0, 0x93),
  seg(0, 0x93),
  seg(0, 0x93),
];
const PREDICATE: [string, number, (s: Segment[]) => void, RegExp | ''][] = [
  ['real mode', 0x10, () => {}, /real mode \(CR0\.PE = 0\)/],
  ['CR0.PE just set, SIPI-state caches (DPL 0, RPL 0): entered as 16-bit protected mode', 0x11, () => {}, ''],
  [
    'SS selector with RPL 3 from real mode',
    0x11,
    (s) => (s[2] = seg(0x1233, 0x93)),
    /SS\.RPL equals CS\.RPL/,
  ],
  ['DS selector with RPL 3 and a DPL-0 cache', 0x11, (s) => (s[3] = seg(0x1237, 0x93)), /DPL at least RPL/],
  ['an unusable DS', 0x11, (s) => (s[3] = seg(0, 0x10000, 0, 0)), ''],
  ['CS holding a data segment', 0x11, (s) => (s[1] = seg(0x800, 0x93)), /CS is an accessed code segment/],
  ['a DS cache that is not present', 0x11, (s) => (s[3] = seg(0x40, 0x13)), /segments present/],
  ['a 1 MiB limit with byte granularity', 0x11, (s) => (s[4] = seg(0x40, 0x93, 0x100000)), /granularity/],
  [
    'flat 32-bit protected mode',
    0x11,
    (s) => {
      for (let k = 0; k < 6; k++) s[k] = seg(k === 1 ? 8 : 0x10, k === 1 ? 0xc09b : 0xc093, 0xffffffff, 0);
    },
    '',
  ],
];
for (const [name, cr0, edit, want] of PREDICATE)
  test(`invalid guest state without unrestricted guest: ${name}`, () => {
    const s = realCaches();
    edit(s);
    const why = invalidStateReason({ cr0, seg: s });
    if (want === '') assert.equal(why, '');
    else assert.match(why, want);
  });

// ---------------------------------------------------------------------------------------------
// 3. Under L0 with shadow paging

/**
 * A VM with shadow paging whose vCPU runs `code` (hex) at guest-physical `at`: in real mode at
 * 0000:at (CR0.PE cleared as a guest MOV to CR0 would), or in the 32-bit protected mode the
 * multiboot loader leaves (`pm32`). hello.elf provides the VM's boot state.
 */
function shadowVm(code: string, at: number, mode: 'real' | 'pm32'): { l0: L0; vm: Vm } {
  const m = new Machine({ memMiB: hostMemMiB([{ memMiB: 16 }]), serial: () => {} });
  const l0 = new L0(m);
  const vm = l0.addVm({ name: 'rm', memMiB: 16, cpus: 1, serial: () => {}, mmu: 'shadow' });
  vm.load(new Uint8Array(readFileSync('guests/build/hello.elf')), 'hello.elf', '', []);
  const v = vm.vcpus[0];
  l0.switchTo(v);
  m.mem.writeBytes(vm.ramHpa + at, Buffer.from(code, 'hex'));
  const h = l0.host;
  h.vmwrite(F.GUEST_RIP, at);
  if (mode === 'real') {
    assert.ok(shadowSetCr0({ vm, vcpu: v, host: h }, 0x10n));
    assert.ok(v.emulating);
    const segs = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS'];
    for (const name of segs) {
      const f = F as unknown as Record<string, number>;
      h.vmwrite(f[`GUEST_${name}_SELECTOR`], 0);
      h.vmwrite(f[`GUEST_${name}_BASE`], 0);
      h.vmwrite(f[`GUEST_${name}_LIMIT`], 0xffff);
      h.vmwrite(f[`GUEST_${name}_AR_BYTES`], name === 'CS' ? 0x9b : 0x93);
    }
    h.vmwrite(F.GUEST_RIP, at);
    h.vmwrite(F.GUEST_RSP, 0x7000);
    h.vmwrite(F.GUEST_RFLAGS, 2);
    h.vmwrite(F.GUEST_IDTR_BASE, 0);
    h.vmwrite(F.GUEST_IDTR_LIMIT, 0x3ff);
  }
  return { l0, vm };
}

/**
 * cli; IVT[0x40] ← handler; unreal-mode DS (32-bit offsets) to the xAPIC at 0xfee00000: enable
 * it (SVR), self-IPI vector 0x40 (ICR); sti; hlt until the handler ran (it sets CL = 55h and
 * EOIs); CPUID leaf 0 ("Genu" in EBX) and RDMSR IA32_APIC_BASE (intercepted: the vLAPIC) through
 * L0's exit handlers; exit 55h through isa-debug-exit (66h on a wrong value).
 */
const IRQ_GUEST =
  'fa31c08ec026c7060001677c26c7060201000066bb0000e0fe6766c783f0000000ff0100006766c78300030000400004' +
  '00fbf480f95575fa6631c00fa26689de66b91b0000000f32662500f0ffff663d0000e0fe750d6681fe47656e757504b0' +
  '55e6f4b066e6f4b1556766c783b000000000000000cf';

test('under shadow paging: real-mode code with an interrupt through the IVT, MMIO, CPUID and an MSR', () => {
  const { l0, vm } = shadowVm(IRQ_GUEST, 0x7c00, 'real');
  // Unreal mode: DS reaches the xAPIC with 32-bit offsets (a limit real mode keeps from protected mode).
  l0.host.vmwrite(F.GUEST_DS_LIMIT, 0xffffffff);
  l0.host.vmwrite(F.GUEST_DS_AR_BYTES, 0xc093);
  l0.run(50_000_000);
  assert.deepEqual(vm.end, { kind: 'exit', code: 0x55 });
  assert.ok(vm.stats.emulatedInstructions > 20, `${vm.stats.emulatedInstructions}`);
  assert.equal(vm.stats.exitCount('HLT'), 0); // HLT never reached the hardware
  assert.equal(l0.accountedCycles(), l0.host.cycles);
});

/**
 * From 32-bit protected mode: LGDT, far jump to a 16-bit code segment, 16-bit data segments,
 * MOV CR0 clearing PE (a CR-access exit: L0 starts emulating), far jump to real mode, a little
 * real-mode work (21h + 21h stored at 0:6000h), back to protected mode (CR0.PE = 1 ends the
 * emulation: the hardware does the far jump), exit with the stored byte.
 */
const PE_GUEST =
  '0f011588800000ea0e8000001800b820008ed88ec08ed00f20c024fe0f22c0ea2480000031c08ed88ed0bc0070b321535a' +
  '00d288160060660f011688800f20c06683c8010f22c066ea4f800000080066b810008ed88ed0a000600000e6f4669000' +
  '00000000000000ffff0000009acf00ffff00000092cf00ffff0000009a0000ffff000000920000270060800000';

test('under shadow paging: protected mode → real mode (MOV CR0) → protected mode', () => {
  const { l0, vm } = shadowVm(PE_GUEST, 0x8000, 'pm32');
  l0.run(50_000_000);
  assert.deepEqual(vm.end, { kind: 'exit', code: 0x42 });
  // Only the real-mode stretch is emulated: from the far jump after MOV CR0 to MOV CR0 setting PE.
  const n = vm.stats.emulatedInstructions;
  assert.ok(n >= 10 && n <= 20, `${n} instructions emulated`);
  assert.ok(vm.stats.exitCount('CR_ACCESS') >= 1);
});

const stopped = (vm: Vm): string => (vm.end?.kind === 'stopped' ? vm.end.detail : JSON.stringify(vm.end));

test('under shadow paging: a real-mode guest that never leaves real mode is bounded by the cycle budget', () => {
  const { l0, vm } = shadowVm('ebfe', 0x7c00, 'real'); // jmp .
  l0.run(4_000_000);
  assert.deepEqual(vm.end, { kind: 'max-cycles' });
  const n = vm.stats.emulatedInstructions;
  assert.ok(n > 2000 && n < 5000, `${n} instructions emulated`);
});

test('under shadow paging: an instruction L0 does not emulate stops that VM with a report', () => {
  const { l0, vm } = shadowVm('9090d9e8', 0x7c00, 'real'); // nop; nop; fld1
  l0.run(50_000_000);
  assert.match(stopped(vm), /the instruction d9 e8 \(X87\) at 0000:7c02 \(linear 0x7c02\) is not emulated/);
  assert.match(stopped(vm), /real mode/);
});

test('under shadow paging: RDMSR of an MSR the hardware would not intercept is reported', () => {
  const { l0, vm } = shadowVm('66b9770200000f32', 0x7c00, 'real'); // mov $0x277, %ecx; rdmsr
  l0.run(50_000_000);
  assert.match(stopped(vm), /RDMSR of MSR 0x277: the MSR is not intercepted .* at 0000:7c06/);
});

test('under shadow paging: HLT in real mode with interrupts disabled halts the vCPU for good', () => {
  const { l0, vm } = shadowVm('faf4', 0x7c00, 'real'); // cli; hlt
  l0.run(50_000_000);
  assert.match(stopped(vm), /halted with interrupts disabled at RIP 0x7c02/);
});

const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));

test('--l0 --no-ept: platform-tests.elf --cpus 2 (the AP starts in real mode) prints the same results as bare', () => {
  const bare = runKernel('platform-tests', ['--cpus', '2']);
  const r = runKernel('platform-tests', ['--cpus', '2', '--l0', '--no-ept']);
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(results(r.stdout), results(bare.stdout));
  assert.ok(r.stdout.includes('SUMMARY: 23 passed, 0 failed'), r.stdout);
  assert.match(r.stdout, /it sees LAPIC ID 1, CPUID ID 1, EFER 0x501, APIC_BASE 0xfee00800, CR0 0x80010011/);
});

test('bench-smp.elf --cpus 2 under --l0 --mmu shadow and --l0 --no-ept: as bare, deterministic', () => {
  const bare = runKernel('bench-smp', ['--cpus', '2', '--append', 'iters=100000']);
  assert.equal(bare.status, 1, bare.stderr);
  const dir = mkdtempSync(join(tmpdir(), 'turtles-rm-smp-'));
  const runs = [['--mmu', 'shadow'], ['--no-ept'], ['--no-ept']].map((args, k) => {
    const f = join(dir, `s${k}.json`);
    const r = runKernel('bench-smp', [
      '--cpus',
      '2',
      '--append',
      'iters=100000',
      '--l0',
      ...args,
      '--stats',
      f,
    ]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, bare.stdout);
    const s = JSON.parse(readFileSync(f, 'utf8'));
    // The AP's trampoline up to its MOV to CR0 ran in L0's emulator (a handful of instructions).
    assert.ok(s.emulatedInstructions > 0 && s.emulatedInstructions < 100, `${s.emulatedInstructions}`);
    assert.equal(s.vms[0].emulatedInstructions, s.emulatedInstructions);
    return {
      cycles: s.cycles,
      instructions: s.instructions,
      exits: s.exits,
      emulated: s.emulatedInstructions,
    };
  });
  assert.deepEqual(runs[1], runs[2]);
});
