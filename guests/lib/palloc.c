/* Page allocator for page tables and test pages: a bump pointer over a .bss pool. Nothing is
 * ever freed; a test kernel allocates a bounded number of pages. */
#include "exit.h"
#include "kstring.h"
#include "paging.h"
#include "printf.h"

#define POOL_PAGES 256

static uint8_t pool[POOL_PAGES][4096] ALIGNED(4096);
static int used;

void *page_alloc(void)
{
	if (used >= POOL_PAGES) {
		printf("FATAL: page pool exhausted\n");
		exit(2);
	}
	void *p = pool[used++];
	memset(p, 0, 4096);
	return p;
}
