/* ASSERT: on failure prints "file:line: assertion failed: expr". Inside a running test
 * (see test.h) it fails that test and moves on to the next one; outside a test it exits(3). */
#ifndef KASSERT_H
#define KASSERT_H

#include "types.h"

void assert_failed(const char *file, int line, const char *expr) NORETURN;

#define ASSERT(cond)                                                  \
	do {                                                          \
		if (!(cond))                                          \
			assert_failed(__FILE__, __LINE__, #cond);     \
	} while (0)

#endif
