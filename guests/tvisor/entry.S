/* tvisor: VM entry and the VM-exit landing point.
 *
 * uint64_t tv_vmrun(struct tv_regs *regs, int launched)
 *   Saves the callee-saved registers and `regs` on the stack, writes HOST_RSP (so the exit
 *   lands on this frame), loads CR2 and the guest GPRs from *regs and executes VMRESUME (or
 *   VMLAUNCH the first time). If the instruction fails (VMfailInvalid/VMfailValid) it returns
 *   the RFLAGS it left (never 0: bit 1 is always set). A VM exit -- or a VM-entry failure,
 *   which loads the host state the same way (SDM 3C §26.8) -- continues at tv_vmexit with
 *   RSP = HOST_RSP: the guest GPRs and CR2 go back to *regs and tv_vmrun returns 0.
 *
 * struct tv_regs: rax 0, rbx 8, rcx 16, rdx 24, rsi 32, rdi 40, rbp 48, r8 56 ... r15 112, cr2 120.
 * The host has no state in other registers worth keeping across the guest: the System V ABI
 * callee-saved ones are saved here; RSP/RIP come from the VMCS host-state area. */
#define HOST_RSP 0x6C14

	.text
	.globl tv_vmrun
	.type tv_vmrun, @function
tv_vmrun:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rdi /* regs: found at (%rsp) by tv_vmexit */
	movl $HOST_RSP, %eax
	vmwrite %rsp, %rax
	jbe .Lfail /* CF or ZF: VMfail */
	movq 120(%rdi), %rax
	movq %rax, %cr2
	movl %esi, %eax /* launched? (flags set below, after the loads, by a cmp on a saved copy) */
	movq %rax, %r15
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
	testl %r15d, %r15d /* MOVs below do not change flags */
	movq 112(%rdi), %r15
	movq 0(%rdi), %rax
	movq 40(%rdi), %rdi
	jnz .Lresume
	vmlaunch
	jmp .Lfail
.Lresume:
	vmresume
.Lfail:
	pushfq
	popq %rax
	addq $8, %rsp /* regs */
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size tv_vmrun, . - tv_vmrun

	.globl tv_vmexit
	.type tv_vmexit, @function
tv_vmexit:
	pushq %rdi
	movq 8(%rsp), %rdi /* regs */
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
	movq %cr2, %rax
	movq %rax, 120(%rdi)
	addq $8, %rsp /* regs */
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	xorl %eax, %eax
	ret
	.size tv_vmexit, . - tv_vmexit

	.section .note.GNU-stack, "", @progbits
