#include "idt.h"
#include "catch.h"
#include "exit.h"
#include "gdt.h"
#include "printf.h"
#include "x86.h"

#define GATE_INTERRUPT 0xE
#define GATE_TRAP 0xF
#define ISR_STUB_SIZE 16 /* lib/isr.S aligns each stub to 16 bytes */

/* 64-bit IDT gate descriptor (SDM 3A §6.14.1, Figure 6-8). */
struct PACKED idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr; /* P | DPL(2) | 0 | type(4) */
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
};

extern char isr_stubs[];
static struct idt_gate idt[256] ALIGNED(16);
static isr_handler handlers[256];

bool vector_has_error_code(int v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

void idt_reset_gate(int v)
{
	uint64_t addr = (uint64_t)isr_stubs + (uint64_t)v * ISR_STUB_SIZE;
	struct idt_gate *g = &idt[v];
	g->offset_lo = addr & 0xFFFF;
	g->offset_mid = (addr >> 16) & 0xFFFF;
	g->offset_hi = (uint32_t)(addr >> 32);
	g->selector = KERNEL_CS;
	/* #DF runs on IST1 so it works even when the faulting context's stack is bad */
	g->ist = v == VEC_DF ? 1 : 0;
	g->type_attr = 0x80 | GATE_INTERRUPT;
	g->reserved = 0;
}

void idt_init(void)
{
	for (int v = 0; v < 256; v++)
		idt_reset_gate(v);
	struct dtr d = { sizeof(idt) - 1, (uint64_t)idt };
	lidt(&d);
}

void idt_set_handler(int v, isr_handler h) { handlers[v] = h; }
void idt_set_dpl(int v, int dpl) { idt[v].type_attr = (uint8_t)((idt[v].type_attr & ~0x60) | (dpl & 3) << 5); }
void idt_set_ist(int v, int ist) { idt[v].ist = (uint8_t)ist; }
void idt_set_present(int v, bool p) { idt[v].type_attr = (uint8_t)((idt[v].type_attr & ~0x80) | (p ? 0x80 : 0)); }
void idt_set_trap(int v, bool trap)
{
	idt[v].type_attr = (uint8_t)((idt[v].type_attr & ~0xF) | (trap ? GATE_TRAP : GATE_INTERRUPT));
}

const char *vector_name(uint64_t v)
{
	static const char *const names[] = { "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#09",
					     "#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM",
					     "#VE", "#CP" };
	if (v < ARRAY_SIZE(names))
		return names[v];
	if (v == VEC_SYSCALL)
		return "SYSCALL";
	if (v == VEC_THROW)
		return "THROW";
	return "INT";
}

/* Called by isr_common in lib/isr.S with interrupts disabled and DF clear. */
void isr_dispatch(struct frame *f);
void isr_dispatch(struct frame *f)
{
	isr_handler h = handlers[f->vector];
	if (h) {
		h(f);
		return;
	}
	if (catch_active()) {
		catch_escape_from_isr(f); /* rewrites f so that IRETQ lands in catch_run() */
		return;
	}
	printf("FATAL: unexpected %s (vector %lu) error=0x%lx rip=0x%lx cs=0x%lx rsp=0x%lx cr2=0x%lx\n",
	       vector_name(f->vector), f->vector, f->error, f->rip, f->cs, f->rsp, f->cr2);
	exit(2);
}
