/* tvisor test guest: the hypercall ABI (tvisor/exits.c). Prints through TVC_WRITE and
 * TVC_PUTCHAR, checks TVC_VERSION and an unknown function, then ends with TVC_EXIT(0). Only
 * meaningful under tvisor: on a bare machine VMCALL is #UD. */
#include "rt.h"

static uint64_t vmcall(uint64_t nr, uint64_t a, uint64_t b)
{
	uint64_t ret;
	asm volatile("vmcall" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
	return ret;
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	uint64_t ver = vmcall(0, 0, 0);
	uint64_t id = vmcall(3, 0, 0);
	printf("hypercall: version 0x%lx, guest %lu\n", ver, id);
	static const char msg[] = "hypercall: hello through TVC_WRITE\n";
	uint64_t n = vmcall(4, (uint64_t)msg, sizeof(msg) - 1);
	for (const char *p = "hypercall: and through TVC_PUTCHAR\n"; *p; p++)
		vmcall(1, (uint64_t)*p, 0);
	uint64_t bad = vmcall(0x1234, 0, 0);
	bool ok = ver == 0x74760001 && n == sizeof(msg) - 1 && bad == (uint64_t)-1;
	printf("hypercall: %s\n", ok ? "ABI ok" : "ABI mismatch");
	vmcall(2, ok ? 0 : 1, 0);
	printf("hypercall: TVC_EXIT returned\n");
	exit(1);
}
