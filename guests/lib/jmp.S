/* ksetjmp/klongjmp: save and restore the callee-saved registers, RSP and the return address
 * (System V x86-64 ABI). RFLAGS is not restored: callers run with IF=0, DF=0 throughout. */
	.text
	.globl ksetjmp
ksetjmp:
	mov %rbx, 0(%rdi)
	mov %rbp, 8(%rdi)
	mov %r12, 16(%rdi)
	mov %r13, 24(%rdi)
	mov %r14, 32(%rdi)
	mov %r15, 40(%rdi)
	lea 8(%rsp), %rax /* RSP as it will be after our return */
	mov %rax, 48(%rdi)
	mov (%rsp), %rax
	mov %rax, 56(%rdi)
	xor %eax, %eax
	ret

	.globl klongjmp
klongjmp:
	mov %esi, %eax
	test %eax, %eax
	jnz 1f
	inc %eax /* longjmp(jb, 0) returns 1, as in C */
1:	mov 0(%rdi), %rbx
	mov 8(%rdi), %rbp
	mov 16(%rdi), %r12
	mov 24(%rdi), %r13
	mov 32(%rdi), %r14
	mov 40(%rdi), %r15
	mov 48(%rdi), %rsp
	cld
	jmp *56(%rdi)

	.section .note.GNU-stack, "", @progbits
