/* Interrupt descriptor table: every vector goes to a stub that saves all GPRs into a
 * struct frame and calls a C dispatcher. A test registers a handler per vector; the handler may
 * edit the frame (e.g. frame->rip += n to skip the faulting instruction) and the CPU resumes
 * with the edited state via IRETQ. Vectors with no handler are reported to the innermost
 * catch_run() (see catch.h), or are fatal if there is none. */
#ifndef IDT_H
#define IDT_H

#include "frame.h"
#include "types.h"

typedef void (*isr_handler)(struct frame *f);

void idt_init(void);
void idt_set_handler(int vector, isr_handler h); /* NULL restores "report to catch_run" */
void idt_set_dpl(int vector, int dpl); /* privilege needed for INT n (default 0) */
void idt_set_ist(int vector, int ist); /* 0 = no stack switch unless CPL changes */
void idt_set_present(int vector, bool present);
void idt_set_trap(int vector, bool trap); /* trap gate: IF is not cleared */
void idt_reset_gate(int vector); /* back to the defaults of idt_init() */
const char *vector_name(uint64_t vector);
bool vector_has_error_code(int vector);

#endif
