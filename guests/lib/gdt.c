/* Builds and loads the runtime GDT and TSS, replacing the minimal boot GDT. */
#include "gdt.h"
#include "kstring.h"
#include "x86.h"

#define RING0_STACK_SIZE 0x4000
#define IST_STACK_SIZE 0x2000

static uint64_t gdt[GDT_ENTRIES] ALIGNED(16);
static struct tss64 the_tss ALIGNED(16);
static uint8_t ring0_stack[RING0_STACK_SIZE] ALIGNED(16);
static uint8_t ist_stacks[7][IST_STACK_SIZE] ALIGNED(16);

struct tss64 *tss(void) { return &the_tss; }
uint64_t ring0_stack_top(void) { return (uint64_t)(ring0_stack + RING0_STACK_SIZE); }
uint64_t ist_stack_top(int ist) { return (uint64_t)(ist_stacks[ist - 1] + IST_STACK_SIZE); }

void gdt_set(int index, uint64_t desc) { gdt[index] = desc; }
uint64_t gdt_get(int index) { return gdt[index]; }

void tss_io_allow(uint16_t port, bool allow)
{
	if (allow)
		the_tss.iomap[port / 8] &= (uint8_t)~(1u << (port % 8));
	else
		the_tss.iomap[port / 8] |= (uint8_t)(1u << (port % 8));
}

/* A 64-bit TSS descriptor is 16 bytes (SDM 3A §8.2.3): type 9 = available 64-bit TSS. */
static void set_tss_descriptor(int index, uint64_t base, uint32_t limit)
{
	gdt[index] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) |
		     ((uint64_t)(limit >> 16 & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
	gdt[index + 1] = base >> 32;
}

void gdt_init(void)
{
	gdt[0] = 0;
	gdt[KERNEL_CS / 8] = SEG_CODE64(0);
	gdt[KERNEL_DS / 8] = SEG_DATA(0);
	gdt[USER_CS32 / 8] = SEG_CODE32(3);
	gdt[USER_DS / 8] = SEG_DATA(3);
	gdt[USER_CS64 / 8] = SEG_CODE64(3);
	gdt[USER_DS2 / 8] = SEG_DATA(3);
	gdt[KERNEL_CS32 / 8] = SEG_CODE32(0);

	memset(&the_tss, 0, sizeof(the_tss));
	the_tss.rsp[0] = ring0_stack_top();
	for (int i = 1; i <= 7; i++)
		the_tss.ist[i] = ist_stack_top(i);
	the_tss.iomap_base = offsetof(struct tss64, iomap);
	memset(the_tss.iomap, 0xFF, sizeof(the_tss.iomap));
	the_tss.iomap_end = 0xFF;
	set_tss_descriptor(TSS_SEL / 8, (uint64_t)&the_tss, sizeof(the_tss) - 1);

	struct dtr d = { sizeof(gdt) - 1, (uint64_t)gdt };
	lgdt(&d);
	/* Reload CS with a far return (there is no far jmp with an immediate in 64-bit mode). */
	asm volatile("pushq %[cs]\n\t"
		     "leaq 1f(%%rip), %%rax\n\t"
		     "pushq %%rax\n\t"
		     "lretq\n"
		     "1:\n\t"
		     "movl %[ds], %%eax\n\t"
		     "movl %%eax, %%ds\n\t"
		     "movl %%eax, %%es\n\t"
		     "movl %%eax, %%ss\n\t"
		     :
		     : [cs] "i"(KERNEL_CS), [ds] "i"(KERNEL_DS)
		     : "rax", "memory");
	ltr(TSS_SEL);
}
