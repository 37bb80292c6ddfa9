/* The smallest kernel: proves boot, long mode, serial output and debug-exit work. */
#include "rt.h"

void kmain(uint32_t magic, uint32_t mbinfo)
{
	rt_init(magic, mbinfo);
	printf("hello from turtles\n");
	exit(0);
}
