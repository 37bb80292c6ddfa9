/* A hostile hypervisor (the "bad input" of nested virtualization): VMCS pointers, bitmaps,
 * MSR lists and EPT structures that name physical addresses where there is no RAM, and EPT
 * tables that point back into themselves. Each case checks what the SDM says the processor
 * does with such values. On a PC an unclaimed physical address reads as all ones and drops
 * writes; a hypervisor underneath this one (turtles' L0 with --nested) must give exactly the
 * same answers and must never let these addresses reach memory outside this kernel's RAM. */
#include "vmx-tests.h"

/* Inside the PCI hole below 4 GiB and claimed by no device: reads as all ones. */
#define UNCLAIMED 0xF0000000ull
/* A 2 MiB guest-physical window the identity EPT maps but no test uses (beyond RAM). */
#define WINDOW 0x3FE00000ull

static void ept_flush(void)
{
	if (vmx_caps.ept_vpid & EPTCAP_INVEPT_ALL)
		ASSERT(invept(2, 0) == VMX_OK);
}

SNIPPET(g_h_read, "mov (%rdi), %rax\n" ASM_LABEL(g_h_read_end) "mov %rax, %rbx\n mov $0x600D600D, %eax\n vmcall\n ud2")
SNIPPET(g_h_rdmsr, "mov $0x277, %ecx\n" ASM_LABEL(g_h_rdmsr_at) "rdmsr\n mov $0x600D600D, %eax\n vmcall\n ud2")
SNIPPET(g_h_in, ASM_LABEL(g_h_in_at) "in $0x80, %al\n mov $0x600D600D, %eax\n vmcall\n ud2")
LABEL(g_h_read_end);
LABEL(g_h_rdmsr_at);
LABEL(g_h_in_at);

TEST(hostile_vmptrld_unclaimed_address)
{
	/* The region reads as all ones: revision 0x7FFFFFFF with the shadow bit, never ours (§30.3) */
	vm_setup(&(struct vmx_vm){ 0 }, g_h_read);
	uint64_t before = 0, after = 0;
	ASSERT(vmptrst(&before) == VMX_OK);
	EXPECT_RESULT(vmptrld(UNCLAIMED), VMERR_VMPTRLD_BAD_REVISION);
	ASSERT(vmptrst(&after) == VMX_OK);
	EXPECT_EQ(after, before);
}

TEST(hostile_vmclear_unclaimed_address)
{
	/* VMCLEAR checks only alignment, width and the VMXON pointer; the launch-state write is lost */
	vm_setup(&(struct vmx_vm){ 0 }, g_h_read);
	EXPECT_RESULT(vmclear(UNCLAIMED), VMX_OK);
	uint64_t cur = 0;
	ASSERT(vmptrst(&cur) == VMX_OK);
	EXPECTF(cur != ~0ull, "the current VMCS was not the one cleared");
}

TEST(hostile_ept_table_loop)
{
	/* The EPT PDE of WINDOW points at its own page table: a 4 KiB page k of WINDOW is then
	 * translated by PDE k of that same table, read as a PTE (§28.2.2: bit 7 is ignored there). */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_h_read);
	need_ept(&vm);
	volatile uint64_t *pde = ept_entry(&vm, WINDOW, 2);
	volatile uint64_t *pd = (volatile uint64_t *)((uint64_t)pde & ~0xFFFull);
	*pde = ((uint64_t)pd & 0x000FFFFFFFFFF000ull) | EPT_RWX;
	ept_flush();
	const unsigned k = 1, off = 0x238;
	uint64_t target = (pd[k] & 0x000FFFFFFFFFF000ull) + off;
	vm.regs.rdi = WINDOW + k * 4096ull + off;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, *(volatile uint64_t *)target);
}

TEST(hostile_ept_table_at_unclaimed_address)
{
	/* A page table with no memory behind it: every entry reads as all ones, memory type 7 →
	 * EPT misconfiguration (§28.2.3.1), reported with the guest-physical address. */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_h_read);
	need_ept(&vm);
	*ept_entry(&vm, WINDOW, 2) = UNCLAIMED | EPT_RWX;
	ept_flush();
	vm.regs.rdi = WINDOW + 0x5010;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EPT_MISCONFIG);
	EXPECT_EQ(e.guest_phys, WINDOW + 0x5010);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_h_read);
}

TEST(hostile_eptp_at_unclaimed_address)
{
	/* The EPTP is well formed (VM entry checks only its format); the first guest access walks
	 * an all-ones PML4E, whose reserved bits 7:3 make it a misconfiguration. */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_h_read);
	need_ept(&vm);
	vmw(VMCS_EPTP, UNCLAIMED | (vmx_eptp_default(&vm) & 0xFFF));
	ept_flush();
	vm.regs.rdi = WINDOW;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EPT_MISCONFIG);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_h_read);
}

TEST(hostile_msr_bitmap_at_unclaimed_address)
{
	/* Every bitmap bit reads as 1: the RDMSR exits (§25.1.3) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_h_rdmsr);
	need_proc(PROC_MSR_BITMAPS);
	vmx_set_proc(PROC_MSR_BITMAPS);
	vmw(VMCS_MSR_BITMAP, UNCLAIMED);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_RDMSR);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_h_rdmsr_at);
}

TEST(hostile_io_bitmaps_at_unclaimed_address)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_h_in);
	need_proc(PROC_IO_BITMAPS);
	vmx_set_proc(PROC_IO_BITMAPS);
	vmw(VMCS_IO_BITMAP_A, UNCLAIMED);
	vmw(VMCS_IO_BITMAP_B, UNCLAIMED + 0x1000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_IO);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_h_in_at);
	EXPECT_EQ(e.qual, (0x80ull << 16) | 0x40 | 8); /* port 0x80, immediate operand, IN, 1 byte (§27.2.1) */
}

TEST(hostile_entry_msr_load_list_at_unclaimed_address)
{
	/* Entry 1 reads as index 0xFFFFFFFF with reserved bits set: VM-entry failure, reason 34,
	 * qualification 1 (§26.4) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_h_read);
	vmw(VMCS_ENTRY_MSR_LOAD_ADDR, UNCLAIMED);
	vmw(VMCS_ENTRY_MSR_LOAD_COUNT, 1);
	vmx_vm_run(&vm, &e);
	EXPECTF(e.status == VMX_EXITED && e.reason == (EXIT_REASON_ENTRY_FAIL | EXIT_MSR_LOADING),
		"status %d reason 0x%x, want an entry failure with reason 34", e.status, e.reason);
	EXPECT_EQ(e.qual, 1);
}

TEST(hostile_exit_msr_store_list_at_unclaimed_address)
{
	/* The store list's entries read as index 0xFFFFFFFF: a VMX abort would end this CPU, so
	 * only the harmless case runs: a list of count 0 at an unclaimed address is never read. */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_h_read);
	vmw(VMCS_EXIT_MSR_STORE_ADDR, UNCLAIMED);
	vmw(VMCS_EXIT_MSR_STORE_COUNT, 0);
	vm.regs.rdi = (uint64_t)&vm;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

void vmx_hostile_tests(void)
{
	RUN(hostile_vmptrld_unclaimed_address);
	RUN(hostile_vmclear_unclaimed_address);
	RUN(hostile_ept_table_loop);
	RUN(hostile_ept_table_at_unclaimed_address);
	RUN(hostile_eptp_at_unclaimed_address);
	RUN(hostile_msr_bitmap_at_unclaimed_address);
	RUN(hostile_io_bitmaps_at_unclaimed_address);
	RUN(hostile_entry_msr_load_list_at_unclaimed_address);
	RUN(hostile_exit_msr_store_list_at_unclaimed_address);
}
