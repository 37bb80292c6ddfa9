#include "rt.h"

void rt_init(uint32_t magic, uint32_t mbinfo_phys)
{
	serial_init();
	mb_init(magic, mbinfo_phys);
	if (!mb_valid())
		printf("warning: bad multiboot magic 0x%x\n", magic);
	gdt_init();
	idt_init();
	syscall_init();
	user_init();
}
