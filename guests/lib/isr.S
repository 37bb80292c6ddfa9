/* 256 interrupt entry stubs, 16 bytes apart, and the common path that builds a struct frame
 * (include/frame.h), calls isr_dispatch and returns with IRETQ.
 * Vectors 8, 10-14, 17, 21, 29, 30 get an error code from the CPU (SDM 3A §6.13); the others
 * push a 0 so every frame has the same layout. */
#include "frame.h"

	.text
	.align 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.align 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	PUSH_GPRS
	mov %cr2, %rax
	pushq %rax
	/* the interrupted code may have had DF=1; the C ABI requires DF=0 */
	cld
	mov %rsp, %rdi
	/* align for the C ABI without trusting the interrupted RSP (RBP is restored from the frame) */
	mov %rsp, %rbp
	and $-16, %rsp
	call isr_dispatch
	mov %rbp, %rsp
	addq $8, %rsp /* cr2 */
	POP_GPRS
	addq $16, %rsp /* vector, error code */
	iretq

	.section .note.GNU-stack, "", @progbits
