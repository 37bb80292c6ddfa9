/* VM entry and VM exit paths for lib/vmx.c, the guest return stub and the guest IDT stubs.
 *
 * uint64_t vmx_enter(struct vmx_regs *regs, int launch, int after_mov_ss)
 *   Saves the callee-saved registers and the regs pointer on the stack, points HOST_RSP at
 *   them, loads the guest GPRs from *regs and executes VMLAUNCH or VMRESUME. If the
 *   instruction fails (VMfailInvalid / VMfailValid) it returns RFLAGS as left by it (never 0:
 *   bit 1 is always set). On a VM exit (or a VM-entry failure, which also loads the host
 *   state, SDM 3C §26.8) the CPU continues at vmx_exit_entry (HOST_RIP) with HOST_RSP, which
 *   saves the guest GPRs into *regs and returns 0. With after_mov_ss, VMLAUNCH directly
 *   follows a MOV SS (guest GPRs not loaded), for the error-26 check.
 */
	.text
	.globl vmx_enter
	.type vmx_enter, @function
vmx_enter:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rdi /* regs pointer: (%rsp) when the VM exit lands in vmx_exit_entry */
	movl $0x6C14, %eax /* HOST_RSP */
	vmwrite %rsp, %rax
	testl %edx, %edx
	jnz .Lmov_ss
	testl %esi, %esi /* flags survive the MOVs below */
	movq 8(%rdi), %rbx
	movq 16(%rdi), %rcx
	movq 24(%rdi), %rdx
	movq 32(%rdi), %rsi
	movq 48(%rdi), %rbp
	movq 56(%rdi), %r8
	movq 64(%rdi), %r9
	movq 72(%rdi), %r10
	movq 80(%rdi), %r11
	movq 88(%rdi), %r12
	movq 96(%rdi), %r13
	movq 104(%rdi), %r14
	movq 112(%rdi), %r15
	movq 0(%rdi), %rax
	movq 40(%rdi), %rdi
	jz .Lresume
	vmlaunch
	jmp .Lfail
.Lresume:
	vmresume
	jmp .Lfail
.Lmov_ss:
	movl %ss, %eax
	movl %eax, %ss
	vmlaunch
.Lfail:
	pushfq
	popq %rax
	addq $8, %rsp /* regs pointer */
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size vmx_enter, . - vmx_enter

	.globl vmx_exit_entry
	.type vmx_exit_entry, @function
vmx_exit_entry:
	pushq %rdi
	movq 8(%rsp), %rdi
	movq %rax, 0(%rdi)
	movq %rbx, 8(%rdi)
	movq %rcx, 16(%rdi)
	movq %rdx, 24(%rdi)
	movq %rsi, 32(%rdi)
	movq %rbp, 48(%rdi)
	movq %r8, 56(%rdi)
	movq %r9, 64(%rdi)
	movq %r10, 72(%rdi)
	movq %r11, 80(%rdi)
	movq %r12, 88(%rdi)
	movq %r13, 96(%rdi)
	movq %r14, 104(%rdi)
	movq %r15, 112(%rdi)
	popq %rax
	movq %rax, 40(%rdi)
	addq $8, %rsp /* regs pointer */
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	xorl %eax, %eax
	ret
	.size vmx_exit_entry, . - vmx_exit_entry

/* Where a guest function returns to (the top of the guest stack holds this address). */
	.globl vmx_guest_return
	.type vmx_guest_return, @function
vmx_guest_return:
	movl $0x600D600D, %eax
	vmcall
	jmp vmx_guest_return
	.size vmx_guest_return, . - vmx_guest_return

/* Guest IDT stubs, 16 bytes apart: record the event in vmx_guest_event, VMCALL with
 * RAX = 0xE7E7E7E7; if the host resumes the guest past the VMCALL, return with IRETQ. */
	.align 16
	.globl vmx_guest_stubs
vmx_guest_stubs:
	.set vec, 0
	.rept 256
	.align 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp vmx_guest_isr_common
	.set vec, vec + 1
	.endr

vmx_guest_isr_common:
	pushq %rax
	pushq %rdx
	/* 0 rdx, 8 rax, 16 vector, 24 error, 32 rip, 40 cs, 48 rflags, 56 rsp, 64 ss */
	leaq vmx_guest_event(%rip), %rdx
	incq 0(%rdx)
	movq 16(%rsp), %rax
	movq %rax, 8(%rdx)
	movq 24(%rsp), %rax
	movq %rax, 16(%rdx)
	movq 32(%rsp), %rax
	movq %rax, 24(%rdx)
	movq 40(%rsp), %rax
	movq %rax, 32(%rdx)
	movq 48(%rsp), %rax
	movq %rax, 40(%rdx)
	movq 56(%rsp), %rax
	movq %rax, 48(%rdx)
	movq %cr2, %rax
	movq %rax, 56(%rdx)
	movl $0xE7E7E7E7, %eax
	vmcall
	popq %rdx
	popq %rax
	addq $16, %rsp
	iretq

	.section .note.GNU-stack, "", @progbits
