#include "exit.h"
#include "x86.h"

void halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

void exit(int code)
{
	outb(DEBUG_EXIT_PORT, (uint8_t)code);
	/* no debug-exit device present: stop here rather than run off into garbage */
	halt_forever();
}
