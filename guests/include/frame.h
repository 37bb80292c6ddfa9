/* The register frame built by the interrupt stubs (lib/isr.S) and the SYSCALL entry
 * (lib/user_entry.S). Field order is the push order reversed; keep the asm offsets in sync. */
#ifndef FRAME_H
#define FRAME_H

/* Pseudo-vectors for frames that do not come from the IDT. */
#define VEC_SYSCALL 0x100 /* ring 3 executed SYSCALL (see user.h) */
#define VEC_THROW 0x101 /* software escape: assertion failure, skip (see catch.h) */

/* Byte offsets within struct frame, for asm. */
#define FRAME_CR2 0
#define FRAME_RAX 120
#define FRAME_VECTOR 128
#define FRAME_ERROR 136
#define FRAME_RIP 144
#define FRAME_CS 152
#define FRAME_RFLAGS 160
#define FRAME_RSP 168
#define FRAME_SS 176

#ifdef __ASSEMBLER__

.macro PUSH_GPRS
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
.endm

.macro POP_GPRS
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
.endm

#else

#include "types.h"

struct frame {
	uint64_t cr2; /* CR2 as read on entry (meaningful for #PF) */
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector;
	uint64_t error; /* error code, 0 for vectors without one */
	/* pushed by the CPU (SDM 3A §6.14.2, Figure 6-9) */
	uint64_t rip, cs, rflags, rsp, ss;
};

_Static_assert(__builtin_offsetof(struct frame, rax) == FRAME_RAX, "frame layout");
_Static_assert(__builtin_offsetof(struct frame, rip) == FRAME_RIP, "frame layout");
_Static_assert(__builtin_offsetof(struct frame, ss) == FRAME_SS, "frame layout");

#endif
#endif
