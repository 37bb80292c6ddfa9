#include "user.h"
#include "catch.h"
#include "gdt.h"
#include "paging.h"
#include "x86.h"

#define USER_STACK_SIZE 0x4000
#define SFMASK_BITS (RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_NT | RFLAGS_AC)

extern char __user_start[], __user_end[];
/* In .bss rather than USER_DATA so it costs no file space; user_init() opens it to ring 3. */
static uint8_t user_stack[USER_STACK_SIZE] ALIGNED(4096);
static syscall_handler sys_handler;

uint64_t user_stack_top(void) { return (uint64_t)(user_stack + USER_STACK_SIZE); }

void user_init(void)
{
	paging_set_user((uint64_t)__user_start, (uint64_t)__user_end);
	paging_set_user((uint64_t)user_stack, (uint64_t)user_stack + USER_STACK_SIZE);
}

static void enter(void *p)
{
	const struct user_entry *e = p;
	iretq_to(e->rip, e->cs, e->rflags | RFLAGS_FIXED, e->rsp, e->ss);
}

void user_run_entry(const struct user_entry *e, struct frame *out)
{
	struct user_entry copy = *e;
	catch_run(enter, &copy, out);
}

void user_run(void (*fn)(void), uint64_t rflags, struct frame *out)
{
	struct user_entry e = { (uint64_t)fn, user_stack_top(), rflags, USER_CS64 | 3, USER_DS | 3 };
	user_run_entry(&e, out);
}

void syscall_init(void)
{
	/* SDM 3A §5.8.8: STAR[47:32] = kernel CS (SS = +8); STAR[63:48] = base for SYSRET */
	wrmsr(MSR_STAR, ((uint64_t)USER_CS32 << 48) | ((uint64_t)KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_SFMASK, SFMASK_BITS);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
}

void syscall_set_handler(syscall_handler h) { sys_handler = h; }

/* Called by syscall_entry on the syscall stack. */
void syscall_dispatch(struct frame *f);
void syscall_dispatch(struct frame *f)
{
	if (f->rax == SYS_EXIT || !sys_handler)
		catch_throw(f);
	sys_handler(f);
}
