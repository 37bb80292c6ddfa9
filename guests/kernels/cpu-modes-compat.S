/* compat_call(x): far-call from 64-bit mode into a 32-bit code segment (compatibility mode,
 * CS.L=0, CS.D=1), run code whose decoding differs from 64-bit mode, and far-return.
 *
 * LCALL m16:32 in 64-bit mode pushes a 4-byte CS and a 4-byte EIP; the 32-bit LRET in
 * compatibility mode pops exactly those (SDM 2A CALL, 2B RET). Upper halves of GPRs are
 * undefined across the mode switches (SDM 1 §3.4.1.1), so callee-saved registers are kept on
 * the stack and results are read back as 32-bit values. */
#include "gdt.h"

	.text
	.globl compat_call
compat_call:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %edi, %eax
	lcall *compat_target(%rip)
	mov %eax, %eax /* zero-extend: only EAX/EDX/ECX carry results */
	mov %edx, %edx
	mov %edx, compat_push_size(%rip)
	mov %ecx, compat_cs(%rip)
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

	.code32
compat_entry:
	.byte 0x48 /* DEC EAX here; would be a REX.W prefix on the ADD in 64-bit mode */
	add $0x10, %eax
	mov %esp, %edx
	push %eax /* 4 bytes in a 32-bit segment with a 32-bit stack */
	sub %esp, %edx
	pop %eax
	mov %cs, %ecx
	lret
	.code64

	.section .rodata
	.align 8
compat_target:
	.long compat_entry
	.word KERNEL_CS32

	.bss
	.align 8
	.globl compat_push_size, compat_cs
compat_push_size:
	.long 0
compat_cs:
	.long 0

	.section .note.GNU-stack, "", @progbits
