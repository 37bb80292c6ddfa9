/* tvisor test guest: triple-faults on purpose. An empty IDT turns the #UD of UD2 into #GP,
 * then #DF, then a triple fault (SDM 3A §6.15, "Interrupt 8"). On a bare machine that resets
 * the machine; under tvisor it ends this guest only. */
#include "rt.h"

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	printf("triple: loading an empty IDT and executing UD2\n");
	struct dtr none = { 0, 0 };
	lidt(&none);
	asm volatile("ud2");
	printf("triple: still alive?\n");
	exit(1);
}
