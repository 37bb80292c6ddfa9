/* Multiboot v1 entry: from 32-bit protected mode (paging off) into 64-bit long mode.
 *
 * The loader enters at _start with EAX = 0x2BADB002, EBX = physical address of the multiboot
 * info, flat 4 GiB segments, paging off (Multiboot spec 0.6.96 §3.2). The GDT it used is not
 * guaranteed to stay valid, so the first thing we do is load our own.
 *
 * Long mode activation follows SDM 3A §10.8.5: with paging off, set CR4.PAE, load CR3 with a
 * PML4, set EFER.LME, then set CR0.PG; the CPU sets EFER.LMA and we are in compatibility mode
 * until a far jump loads a code segment with L=1.
 */
#include "boot_gdt.h"

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit 0: page-align modules; bit 1: provide mem_lower/mem_upper */

#define CR0_PE 0x00000001
#define CR0_WP 0x00010000
#define CR0_PG 0x80000000
#define CR4_PAE 0x00000020
#define MSR_EFER 0xC0000080
#define EFER_LME 0x00000100

#define PTE_P 0x001
#define PTE_W 0x002
#define PTE_U 0x004
#define PTE_PS 0x080

#define BOOT_STACK_SIZE 0x10000

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .text.boot, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	mov %eax, %edi /* keep magic and info pointer in registers the code below leaves alone */
	mov %ebx, %esi

	lgdt boot_gdtr
	ljmp $BOOT_CS32, $1f
1:	mov $BOOT_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov $boot_stack_top, %esp

	/* Zero .bss: loaders zero the ELF memsz tail, but doing it here makes the image
	 * independent of that (and of loaders that only copy file bytes). */
	mov %edi, %ebp /* not the stack: it is in .bss and about to be zeroed */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx /* the linker script aligns both ends to 16 bytes */
	xor %eax, %eax
	rep stosl
	mov %ebp, %edi

	/* Optional 32-bit stage: a kernel that defines boot32_hook(magic, info) gets control
	 * here, still in protected mode with paging off (cpu-modes.elf tests 32-bit paging). */
	mov $boot32_hook, %eax
	test %eax, %eax
	jz 2f
	push %esi
	push %edi
	call *%eax
	add $8, %esp
2:
	/* Identity-map 0..4 GiB with 2 MiB pages: PML4[0] -> PDPT, PDPT[0..3] -> 4 PDs.
	 * Non-leaf entries allow user access; leaves do not (so SMEP/SMAP tests work): a page
	 * is user-accessible only when every level allows it (SDM 3A §4.6.1). */
	mov $boot_pdpt + (PTE_P | PTE_W | PTE_U), %eax
	mov %eax, boot_pml4
	mov $boot_pd + (PTE_P | PTE_W | PTE_U), %eax
	mov $boot_pdpt, %ebx
	mov $4, %ecx
3:	mov %eax, (%ebx)
	add $0x1000, %eax
	add $8, %ebx
	loop 3b
	mov $(PTE_P | PTE_W | PTE_PS), %eax
	mov $boot_pd, %ebx
	mov $2048, %ecx
4:	mov %eax, (%ebx)
	add $0x200000, %eax
	add $8, %ebx
	loop 4b

	mov $CR4_PAE, %eax
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $(CR0_PG | CR0_WP | CR0_PE), %eax
	mov %eax, %cr0
	ljmp $BOOT_CS64, $long_entry

	.code64
long_entry:
	mov $BOOT_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $boot_stack_top, %rsp
	xor %ebp, %ebp
	/* the upper halves of GPRs are undefined after the mode switch: zero-extend the args */
	mov %edi, %edi
	mov %esi, %esi
	call kmain
	xor %edi, %edi /* returning from kmain means success */
	call exit

	.weak boot32_hook

	.section .rodata
	.align 8
boot_gdt:
	.quad 0
	.quad BOOT_GDT_CODE32
	.quad BOOT_GDT_DATA
	.quad BOOT_GDT_CODE64
boot_gdt_end:
boot_gdtr:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt

	.section .bss
	.align 4096
	.globl boot_pml4
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096
boot_pd:
	.skip 4 * 4096
	.align 16
	.globl boot_stack_top
boot_stack:
	.skip BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
