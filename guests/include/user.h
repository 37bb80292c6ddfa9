/* Ring 3. Code and data that ring 3 touches must live in the .user sections (USER_TEXT,
 * USER_DATA), which rt_init() maps user-accessible along with the user stack; everything else
 * stays supervisor-only.
 * Keep ring-3 code self-contained (ideally asm): C compiled into USER_TEXT may still call
 * kernel functions or read kernel .rodata and fault.
 *
 * user_run() enters ring 3 with IRETQ and returns when ring 3 ends: by the exit system call
 * (SYSCALL with RAX = SYS_EXIT; *out->vector == VEC_SYSCALL), or by any exception or interrupt
 * that has no handler registered (out->vector is that vector). */
#ifndef USER_H
#define USER_H

#include "frame.h"
#include "types.h"

#define USER_TEXT __attribute__((section(".user.text"), noinline, noclone))
#define USER_DATA __attribute__((section(".user.data")))

#define SYS_EXIT 0 /* RAX value: return to the kernel's user_run() */

struct user_entry {
	uint64_t rip, rsp, rflags;
	uint16_t cs, ss; /* RPL 3 selectors */
};

void user_init(void); /* called by rt_init() */
uint64_t user_stack_top(void); /* a 16 KiB ring-3 stack (user-accessible) */

/* Run fn in 64-bit ring 3 on the user stack with RFLAGS = rflags (bit 1 is forced). */
void user_run(void (*fn)(void), uint64_t rflags, struct frame *out);
/* Full control over the IRETQ frame (e.g. a 32-bit code segment). */
void user_run_entry(const struct user_entry *e, struct frame *out);

/* SYSCALL: rt_init() programs STAR/LSTAR/SFMASK and EFER.SCE for the runtime's entry point.
 * A syscall with RAX != SYS_EXIT calls the handler (if set), which may edit the frame
 * (frame->rax is the return value), and then returns to ring 3 with SYSRETQ.
 * In a syscall frame, rip = RCX (return address) and rflags = R11 (user RFLAGS). */
typedef void (*syscall_handler)(struct frame *f);
void syscall_init(void);
void syscall_set_handler(syscall_handler h);
/* State seen at the SYSCALL entry point before anything changed it. */
struct syscall_entry_state {
	uint64_t rflags;
	uint64_t cs, ss;
};
extern struct syscall_entry_state syscall_entry_state;
extern char syscall_entry[]; /* the runtime's LSTAR target */

/* Transfer to ring 3 with IRETQ (lib/user_entry.S). */
void iretq_to(uint64_t rip, uint64_t cs, uint64_t rflags, uint64_t rsp, uint64_t ss) NORETURN;

#endif
