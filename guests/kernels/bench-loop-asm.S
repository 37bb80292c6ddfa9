/* uint64_t bench_loop(uint64_t iterations): the tight integer loop that measures raw
 * instruction throughput: four instructions per iteration (add, xor, dec, jnz). */
	.text
	.globl bench_loop
bench_loop:
	mov %rdi, %rcx
	xor %eax, %eax
	mov $0x9E3779B97F4A7C15, %rdx
	test %rcx, %rcx
	jz 2f
	.align 16
1:	add %rdx, %rax
	xor %rcx, %rdx
	dec %rcx
	jnz 1b
2:	ret

	.section .note.GNU-stack, "", @progbits
