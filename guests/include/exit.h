/* Ending a run through the isa-debug-exit device at port 0xF4: writing V makes the machine
 * stop with process status (V << 1) | 1, so exit(0) is status 1 and exit(1) is status 3. */
#ifndef EXIT_H
#define EXIT_H

#include "types.h"

#define DEBUG_EXIT_PORT 0xF4

void exit(int code) NORETURN;
void halt_forever(void) NORETURN;

#endif
