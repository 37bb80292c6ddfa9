/* Running code that is expected to fault (or to leave ring 0) and getting control back.
 *
 *   struct frame f;
 *   if (catch_run0(do_ud2, &f)) ... f.vector == VEC_UD, f.rip == address of the ud2 ...
 *
 * catch_run() calls fn(arg). If an exception or interrupt arrives for which no handler is
 * registered with idt_set_handler(), the CPU's frame is copied to *out and catch_run() returns
 * true, abandoning fn. Ring-3 code returns this way too (see user.h). Catches nest: the
 * innermost active catch_run() gets the event. */
#ifndef CATCH_H
#define CATCH_H

#include "frame.h"
#include "types.h"

struct jmpbuf {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};

int ksetjmp(struct jmpbuf *jb) __attribute__((returns_twice));
void klongjmp(struct jmpbuf *jb, int value) NORETURN;

bool catch_run(void (*fn)(void *), void *arg, struct frame *out);
bool catch_run0(void (*fn)(void), struct frame *out);
bool catch_active(void);

/* From an interrupt handler context: arrange for IRETQ to resume in the innermost catch_run(),
 * which then reports *f. Used by the dispatcher; handlers may call it too. */
void catch_escape_from_isr(struct frame *f);
/* From ordinary ring-0 code: end the innermost catch_run() now, reporting *f. */
void catch_throw(const struct frame *f) NORETURN;

#endif
