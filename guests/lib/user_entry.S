/* Ring-3 entry (IRETQ) and the runtime's SYSCALL entry point. */
#include "frame.h"

	.text
	/* iretq_to(rip, cs, rflags, rsp, ss): build an IRETQ frame (SDM 3A §6.14.3) and go. */
	.globl iretq_to
iretq_to:
	pushq %r8 /* ss */
	pushq %rcx /* rsp */
	pushq %rdx /* rflags */
	pushq %rsi /* cs */
	pushq %rdi /* rip */
	iretq

	/* SYSCALL lands here at CPL 0 with RSP still the caller's, RCX = return RIP,
	 * R11 = caller RFLAGS, RFLAGS &= ~SFMASK (SDM 2B SYSCALL). Build a struct frame on our
	 * own stack, let C look at it, then SYSRETQ with whatever the frame says. */
	.globl syscall_entry
syscall_entry:
	/* switch stacks first (mov and lea leave RFLAGS alone), so nothing touches ring 3's stack */
	mov %rsp, syscall_saved_rsp(%rip)
	lea syscall_stack_top(%rip), %rsp
	pushfq
	popq syscall_entry_state(%rip)
	pushq $0 /* ss: filled below */
	pushq syscall_saved_rsp(%rip) /* rsp */
	pushq %r11 /* rflags */
	pushq $0 /* cs */
	pushq %rcx /* rip */
	pushq $0 /* error */
	pushq $VEC_SYSCALL
	PUSH_GPRS
	pushq $0 /* cr2 */
	mov %cs, %eax
	mov %rax, syscall_entry_state+8(%rip)
	mov %rax, FRAME_CS(%rsp)
	mov %ss, %eax
	mov %rax, syscall_entry_state+16(%rip)
	mov %rax, FRAME_SS(%rsp)
	mov FRAME_RAX(%rsp), %rax
	cld
	mov %rsp, %rdi
	call syscall_dispatch
	addq $8, %rsp /* cr2 */
	POP_GPRS
	mov 16(%rsp), %rcx /* frame rip */
	mov 32(%rsp), %r11 /* frame rflags */
	mov 40(%rsp), %rsp /* frame rsp: last use of the frame */
	sysretq

	.bss
	.align 16
syscall_saved_rsp:
	.quad 0
	.globl syscall_entry_state
syscall_entry_state:
	.quad 0, 0, 0
	.align 16
syscall_stack:
	.skip 0x4000
syscall_stack_top:

	.section .note.GNU-stack, "", @progbits
