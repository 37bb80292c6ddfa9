#include "catch.h"
#include "exit.h"
#include "gdt.h"
#include "printf.h"
#include "x86.h"

#define MAX_DEPTH 8

static struct jmpbuf *stack[MAX_DEPTH];
static int depth;
static struct frame caught; /* what ended the innermost catch_run() */

bool catch_active(void) { return depth > 0; }

bool catch_run(void (*fn)(void *), void *arg, struct frame *out)
{
	struct jmpbuf jb;
	int my_depth = depth;
	if (my_depth >= MAX_DEPTH) {
		printf("FATAL: catch_run nested too deeply\n");
		exit(2);
	}
	stack[my_depth] = &jb;
	depth = my_depth + 1;
	if (ksetjmp(&jb) == 0) {
		fn(arg);
		depth = my_depth;
		return false;
	}
	depth = my_depth;
	if (out)
		*out = caught;
	return true;
}

static void call0(void *fn) { ((void (*)(void))fn)(); }

bool catch_run0(void (*fn)(void), struct frame *out) { return catch_run(call0, (void *)fn, out); }

void catch_throw(const struct frame *f)
{
	caught = *f;
	klongjmp(stack[depth - 1], 1);
}

static void landing(void) NORETURN;
static void landing(void) { klongjmp(stack[depth - 1], 1); }

void catch_escape_from_isr(struct frame *f)
{
	caught = *f;
	/* Return from the interrupt into landing(), at CPL 0 with IF=0, on the stack of the
	 * catch_run() frame: everything below its saved RSP is dead once we longjmp. The frame
	 * may come from ring 3 or an IST stack, so all of CS, SS, RSP and RFLAGS are set. */
	uint64_t rsp = (stack[depth - 1]->rsp - 256) & ~0xFull;
	f->rip = (uint64_t)landing;
	f->cs = KERNEL_CS;
	f->ss = KERNEL_DS;
	f->rsp = rsp - 8; /* as if landing() had been called: RSP+8 is 16-byte aligned */
	f->rflags = RFLAGS_FIXED;
}
