/* vmx-tests.elf: a VMX conformance suite. The kernel runs on the bare machine as a small
 * hypervisor and checks, case by case, what the Intel SDM Vol. 3C (chapters 23-30) specifies:
 * discovery and capability MSRs, the VMX instructions and their VMfail errors, VMREAD/VMWRITE
 * of every known field, VM-entry checks, VM exits with their qualifications, event injection,
 * EPT, VPID, unrestricted guests and VMCS shadowing. Optional features are tested when the
 * capability MSRs allow them and reported as skipped otherwise.
 *
 * Command line: "group=NAME" runs only one group (basic, fields, entry, exits, events, ept);
 * "skip=CASE,CASE,..." reports the named cases as FAIL without running them. */
#include "vmx-tests.h"

void need_vmx(void)
{
	if (!vmx_caps.vmx)
		test_skip("not supported: CPUID.1:ECX.VMX=0");
	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if ((fc & FEATURE_CONTROL_LOCK) && !(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX))
		test_skip("not supported: VMX disabled by firmware in IA32_FEATURE_CONTROL");
	vmx_on();
}

void vm_setup(struct vmx_vm *vm, const void *rip)
{
	need_vmx();
	vmx_vm_init(vm);
	vmx_vm_set_entry(vm, (void (*)(void))rip);
}

void vm_set_rip(const void *rip) { vmw(GUEST_RIP, (uint64_t)rip); }

void need_sec(uint32_t bits)
{
	if (!vmx_has_sec(bits))
		test_skip("not supported");
}
void need_proc(uint32_t bits)
{
	if (!vmx_can1(&vmx_caps.proc, bits))
		test_skip("not supported");
}
void need_pin(uint32_t bits)
{
	if (!vmx_can1(&vmx_caps.pin, bits))
		test_skip("not supported");
}
void need_exit_ctl(uint32_t bits)
{
	if (!vmx_can1(&vmx_caps.exit, bits))
		test_skip("not supported");
}
void need_entry_ctl(uint32_t bits)
{
	if (!vmx_can1(&vmx_caps.entry, bits))
		test_skip("not supported");
}
void need_ept(struct vmx_vm *vm)
{
	if (!vmx_vm_enable_ept(vm))
		test_skip("not supported: EPT");
}

void arm_watchdog(void)
{
	/* ~100M TSC ticks: far beyond what a correct run of these guests needs */
	if (vmx_set_pin(PIN_PREEMPT_TIMER))
		vmw(GUEST_PREEMPT_TIMER, 100000000ull >> MISC_PREEMPT_RATE(vmx_caps.misc));
}

void host_iret_unblock_nmi(void)
{
	asm volatile("movq %%rsp, %%rax\n\t"
		     "pushq %[ss]\n\t"
		     "pushq %%rax\n\t"
		     "pushfq\n\t"
		     "pushq %[cs]\n\t"
		     "leaq 1f(%%rip), %%rax\n\t"
		     "pushq %%rax\n\t"
		     "iretq\n"
		     "1:"
		     :
		     : [ss] "i"(KERNEL_DS), [cs] "i"(KERNEL_CS)
		     : "rax", "memory", "cc");
}

static char skip_list[1024];

static bool skipped(const char *name)
{
	size_t n = strlen(name);
	for (const char *p = skip_list; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

void vt_run(const char *name, void (*fn)(void))
{
	if (skipped(name)) {
		fail(name, "not run: excluded by skip= on the command line");
		return;
	}
	test_run(name, fn);
}

static bool want_group(const char *name)
{
	char buf[32];
	if (!cmdline_get("group", buf, sizeof(buf)))
		return true;
	return strcmp(buf, name) == 0;
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	if (!cmdline_get("skip", skip_list, sizeof(skip_list)))
		skip_list[0] = 0;
	vmx_caps_read();
	vmx_mask_legacy_pic();
	if (vmx_caps.vmx)
		printf("vmx: revision 0x%x basic 0x%lx misc 0x%lx ept/vpid 0x%lx maxphyaddr %u\n", vmx_caps.revision,
		       vmx_caps.basic, vmx_caps.misc, vmx_caps.ept_vpid, vmx_caps.maxphyaddr);
	if (want_group("basic"))
		vmx_basic_tests();
	if (want_group("fields"))
		vmx_field_tests();
	if (want_group("entry"))
		vmx_entry_tests();
	if (want_group("exits"))
		vmx_exit_tests();
	if (want_group("events"))
		vmx_event_tests();
	if (want_group("ept"))
		vmx_ept_tests();
	if (want_group("hostile"))
		vmx_hostile_tests();
	/* only on request: its output is a list of outcomes for comparing implementations */
	char grp[32];
	if (cmdline_get("group", grp, sizeof(grp)) && strcmp(grp, "fuzz") == 0)
		vmx_fuzz_tests();
	vmx_off();
	test_finish();
}
