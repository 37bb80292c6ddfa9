/* Real-mode AP trampoline, a template that smp_start_ap() (lib/smp.c) copies to
 * SMP_TRAMPOLINE_BASE and patches (the tramp_* parameters at the end). The AP starts here after
 * a STARTUP IPI with vector SMP_TRAMPOLINE_BASE >> 12: real mode, CS = vector << 8, IP = 0
 * (SDM 3A §9.4.4.1). The code is position-dependent on SMP_TRAMPOLINE_BASE: addresses that
 * the CPU uses linearly (GDT base, far-jump targets, 32/64-bit data) are computed as
 * SMP_TRAMPOLINE_BASE + offset in the template. */
#include "boot_gdt.h"

#define BASE 0x8000 /* SMP_TRAMPOLINE_BASE in include/smp.h */
#define OFF(x) ((x) - smp_trampoline_start)
#define ABS(x) (BASE + OFF(x))
#define MSR_EFER 0xC0000080

	.section .rodata.smp_trampoline, "a"
	.align 16
	.globl smp_trampoline_start
smp_trampoline_start:
	.code16
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	/* 32-bit operand size: a 6-byte GDTR image with a full 32-bit base */
	lgdtl OFF(tramp_gdtr)
	mov %cr0, %eax
	or $1, %eax /* PE */
	mov %eax, %cr0
	/* far jump loads CS from the new GDT: 32-bit protected mode */
	ljmpl $BOOT_CS32, $ABS(tramp_pm32)

	.code32
tramp_pm32:
	mov $BOOT_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	/* long mode activation, SDM 3A §10.8.5: PAE, CR3, EFER.LME, then CR0.PG */
	mov ABS(tramp_cr4), %eax
	mov %eax, %cr4
	mov ABS(tramp_cr3), %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	mov ABS(tramp_efer), %eax
	xor %edx, %edx
	wrmsr
	mov ABS(tramp_cr0), %eax
	mov %eax, %cr0
	ljmp $BOOT_CS64, $ABS(tramp_lm64)

	.code64
tramp_lm64:
	mov ABS(tramp_stack), %rsp
	mov ABS(tramp_arg), %rdi
	mov ABS(tramp_entry), %rax
	xor %ebp, %ebp
	call *%rax
1:	cli
	hlt
	jmp 1b

	.align 8
tramp_gdt:
	.quad 0
	.quad BOOT_GDT_CODE32
	.quad BOOT_GDT_DATA
	.quad BOOT_GDT_CODE64
tramp_gdtr:
	.word tramp_gdtr - tramp_gdt - 1
	.long ABS(tramp_gdt)
	.align 8
	.globl tramp_cr3, tramp_cr4, tramp_cr0, tramp_efer, tramp_stack, tramp_entry, tramp_arg
tramp_cr3:
	.long 0
tramp_cr4:
	.long 0
tramp_cr0:
	.long 0
tramp_efer:
	.long 0
tramp_stack:
	.quad 0
tramp_entry:
	.quad 0
tramp_arg:
	.quad 0
	.globl smp_trampoline_end
smp_trampoline_end:

	.section .note.GNU-stack, "", @progbits
