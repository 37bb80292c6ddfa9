/* EPT (SDM 3C chapter 28): an identity EPT, EPT violations for read/write/fetch with their
 * qualification bits and guest-physical/linear addresses, violations on guest paging-structure
 * accesses, EPT misconfigurations, 4 KiB/2 MiB/1 GiB remapping, execute-only pages, accessed and
 * dirty flags, INVEPT. VPID and INVVPID. Unrestricted guests in real mode and in unpaged
 * protected mode. VMCS shadowing (SDM 3C §24.10, §30.3). */
#include "vmx-tests.h"
#include "lapic.h"

static uint64_t marker ALIGNED(64) = 0x7475727465737321ull; /* in the kernel image (first 2 MiB) */

static void ept_flush(void)
{
	if (vmx_caps.ept_vpid & EPTCAP_INVEPT_ALL)
		ASSERT(invept(2, 0) == VMX_OK);
}

/* A fresh page holding a marker at +0x18, and the guest reading it through RDI. */
SNIPPET(g_ept_read, "mov (%rdi), %rax\n" ASM_LABEL(g_ept_read_end) "mov %rax, %rbx\n mov $0x600D600D, %eax\n vmcall\n ud2")
SNIPPET(g_ept_write, "movq $0x55, (%rdi)\n" ASM_LABEL(g_ept_write_end) "mov $0x600D600D, %eax\n vmcall\n ud2")
SNIPPET(g_ept_call, "call *%rdi\n ret")
SNIPPET(g_ept_read_twice, "mov (%rdi), %rax\n vmcall\n" ASM_LABEL(g_ept_read_again) "mov (%rdi), %rax\n mov $0x600D600D, %eax\n vmcall\n ud2")
LABEL(g_ept_read_end);
LABEL(g_ept_write_end);
LABEL(g_ept_read_again);

/* code copied into a test page: mov $0x600D600D, %eax; vmcall */
static const uint8_t page_code[] = { 0xB8, 0x0D, 0x60, 0x0D, 0x60, 0x0F, 0x01, 0xC1 };

static uint64_t *test_page(void)
{
	uint64_t *p = vmx_page_alloc();
	p[3] = 0x1122334455667788ull;
	memcpy(p + 64, page_code, sizeof(page_code));
	return p;
}

static void ept_setup(struct vmx_vm *vm, const void *rip)
{
	vm_setup(vm, rip);
	need_ept(vm);
}

static void set_pte(struct vmx_vm *vm, uint64_t gpa, uint64_t val)
{
	*ept_entry(vm, gpa, 1) = val;
	ept_flush();
}

static void expect_violation(const struct vmx_exit *e, uint64_t qual, uint64_t gpa, uint64_t gla, uint64_t rip)
{
	EXPECT_EXIT(*e, EXIT_EPT_VIOLATION);
	/* bits 0-5, 7, 8 and 12 are defined here; bit 6 and 9-11 depend on optional features */
	EXPECTF((e->qual & 0x11BF) == qual, "qualification 0x%lx want 0x%lx", e->qual, qual);
	EXPECT_EQ(e->guest_phys, gpa);
	EXPECT_EQ(e->guest_linear, gla);
	EXPECT_EQ(e->guest_rip, rip);
}

TEST(ept_identity_guest_runs)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	vm.regs.rdi = (uint64_t)&marker;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, marker);
}

/* Device memory through EPT: the identity EPT maps the local APIC's page too, so the guest's
 * loads and stores reach the APIC itself (no "virtualize APIC accesses"). Under a nesting L0
 * this is L1's virtual APIC, reached through ept12. */
SNIPPET(g_ept_read32, "movl (%rdi), %eax\n mov %rax, %rbx\n mov $0x600D600D, %eax\n vmcall\n ud2")
SNIPPET(g_ept_write32, "movl %esi, (%rdi)\n mov $0x600D600D, %eax\n vmcall\n ud2")

TEST(ept_identity_apic_mmio_read)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!vmx_apic_init())
		test_skip("no local APIC");
	ept_setup(&vm, g_ept_read32);
	vm.regs.rdi = vmx_apic_base() + LAPIC_VERSION;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, vmx_apic_read(LAPIC_VERSION));
}

TEST(ept_identity_apic_mmio_write)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	if (!vmx_apic_init())
		test_skip("no local APIC");
	uint32_t tpr = vmx_apic_read(LAPIC_TPR);
	ept_setup(&vm, g_ept_write32);
	vm.regs.rdi = vmx_apic_base() + LAPIC_TPR;
	vm.regs.rsi = 0x20;
	vmx_vm_run(&vm, &e);
	uint32_t seen = vmx_apic_read(LAPIC_TPR);
	vmx_apic_write(LAPIC_TPR, tpr);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(seen, 0x20);
}

TEST(ept_violation_read_not_present)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, 0);
	vm.regs.rdi = p + 0x18;
	vmx_vm_run(&vm, &e);
	expect_violation(&e, EPTQ_READ | EPTQ_GLA_VALID | EPTQ_GLA_TRANSLATION, p + 0x18, p + 0x18, (uint64_t)g_ept_read);
}

TEST(ept_violation_write_read_only)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_write);
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, p | EPT_R | EPT_X | EPT_MT_WB);
	vm.regs.rdi = p + 0x20;
	vmx_vm_run(&vm, &e);
	expect_violation(&e, EPTQ_WRITE | EPTQ_READABLE | EPTQ_EXECUTABLE | EPTQ_GLA_VALID | EPTQ_GLA_TRANSLATION, p + 0x20,
			 p + 0x20, (uint64_t)g_ept_write);
	EXPECT_EQ(((uint64_t *)p)[4], 0); /* not written */
}

TEST(ept_violation_fetch_not_executable)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_call);
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, p | EPT_R | EPT_W | EPT_MT_WB);
	vm.regs.rdi = p + 0x200;
	vmx_vm_run(&vm, &e);
	expect_violation(&e, EPTQ_FETCH | EPTQ_READABLE | EPTQ_WRITABLE | EPTQ_GLA_VALID | EPTQ_GLA_TRANSLATION, p + 0x200,
			 p + 0x200, p + 0x200);
}

TEST(ept_fetch_executable_page)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_call);
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, p | EPT_RWX | EPT_MT_WB);
	vm.regs.rdi = p + 0x200;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(e.guest_rip, p + 0x205);
}

TEST(ept_violation_then_fix_and_resume)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, 0);
	vm.regs.rdi = p + 0x18;
	vmx_vm_run(&vm, &e);
	ASSERT_EXIT(e, EXIT_EPT_VIOLATION);
	set_pte(&vm, p, p | EPT_RWX | EPT_MT_WB); /* the faulting instruction is restarted */
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, 0x1122334455667788ull);
}

TEST(ept_execute_only_fetch)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_call);
	if (!(vmx_caps.ept_vpid & EPTCAP_XO))
		test_skip("not supported: execute-only EPT pages");
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, p | EPT_X | EPT_MT_WB);
	vm.regs.rdi = p + 0x200;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
}

TEST(ept_execute_only_read_violation)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	if (!(vmx_caps.ept_vpid & EPTCAP_XO))
		test_skip("not supported: execute-only EPT pages");
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, p | EPT_X | EPT_MT_WB);
	vm.regs.rdi = p + 0x18;
	vmx_vm_run(&vm, &e);
	expect_violation(&e, EPTQ_READ | EPTQ_EXECUTABLE | EPTQ_GLA_VALID | EPTQ_GLA_TRANSLATION, p + 0x18, p + 0x18,
			 (uint64_t)g_ept_read);
}

TEST(ept_execute_only_unsupported_misconfig)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	if (vmx_caps.ept_vpid & EPTCAP_XO)
		test_skip("not applicable: execute-only pages are supported");
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, p | EPT_X | EPT_MT_WB);
	vm.regs.rdi = p + 0x18;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EPT_MISCONFIG);
}

static void misconfig_case(uint64_t (*entry)(uint64_t p))
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, entry(p));
	vm.regs.rdi = p + 0x18;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EPT_MISCONFIG);
	EXPECT_EQ(e.guest_phys, p + 0x18);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_ept_read);
}
static uint64_t mc_write_only(uint64_t p) { return p | EPT_W | EPT_MT_WB; }
static uint64_t mc_write_exec(uint64_t p) { return p | EPT_W | EPT_X | EPT_MT_WB; }
static uint64_t mc_memtype2(uint64_t p) { return p | EPT_RWX | (2ull << 3); }
static uint64_t mc_memtype7(uint64_t p) { return p | EPT_RWX | (7ull << 3); }
static uint64_t mc_high_bit(uint64_t p) { return p | EPT_RWX | EPT_MT_WB | (1ull << vmx_caps.maxphyaddr); }
TEST(ept_misconfig_write_only) { misconfig_case(mc_write_only); }
TEST(ept_misconfig_write_execute) { misconfig_case(mc_write_exec); }
TEST(ept_misconfig_memory_type_2) { misconfig_case(mc_memtype2); }
TEST(ept_misconfig_memory_type_7) { misconfig_case(mc_memtype7); }
TEST(ept_misconfig_address_beyond_width)
{
	if (vmx_caps.vmx && vmx_caps.maxphyaddr >= 52)
		test_skip("not applicable: MAXPHYADDR 52 leaves no reserved address bit");
	misconfig_case(mc_high_bit);
}

TEST(ept_misconfig_2m_leaf_reserved_bits)
{
	/* bits 20:12 of a 2 MiB leaf are reserved (SDM 3C §28.3.3.1) */
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	if (!(vmx_caps.ept_vpid & EPTCAP_2M))
		test_skip("not supported: 2 MiB EPT pages");
	*ept_entry(&vm, 0xC0000000ull, 2) = 0xC0000000ull | (1ull << 12) | EPT_RWX | EPT_MT_WB | EPT_LARGE;
	ept_flush();
	vm.regs.rdi = 0xC0000010ull;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EPT_MISCONFIG);
	EXPECT_EQ(e.guest_phys, 0xC0000010ull);
}

TEST(ept_misconfig_pml4e_reserved_bits)
{
	/* bits 7:3 of a PML4E are reserved */
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	if (!cpu_has_1g_pages())
		test_skip("not supported: 1 GiB guest pages");
	if (vmx_caps.maxphyaddr <= 39)
		test_skip("not applicable: GPA 512 GiB beyond MAXPHYADDR");
	vm.eptp_root[1] = vm.eptp_root[0] | (1ull << 3); /* GPA 512 GiB: unused otherwise */
	ept_flush();
	/* guest linear TEST_VA maps to GPA 512 GiB + 0x18 through a guest page table */
	uint64_t *root = paging_new_root();
	map_page(root, TEST_VA, 0x8000000000ull, PTE_P | PTE_W | PTE_A | PTE_D, 3);
	vmw(GUEST_CR3, (uint64_t)root);
	vm.regs.rdi = TEST_VA + 0x18;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EPT_MISCONFIG);
	EXPECT_EQ(e.guest_phys, 0x8000000018ull);
}

TEST(ept_2m_page_remap)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	if (!(vmx_caps.ept_vpid & EPTCAP_2M))
		test_skip("not supported: 2 MiB EPT pages");
	ASSERT((uint64_t)&marker < PAGE_2M);
	/* GPA 3 GiB .. +2 MiB -> HPA 0 .. 2 MiB, with one 2 MiB leaf */
	*ept_entry(&vm, 0xC0000000ull, 2) = 0 | EPT_RWX | EPT_MT_WB | EPT_LARGE;
	ept_flush();
	vm.regs.rdi = 0xC0000000ull + (uint64_t)&marker;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, marker);
}

TEST(ept_1g_page_remap)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	if (!(vmx_caps.ept_vpid & EPTCAP_1G))
		test_skip("not supported: 1 GiB EPT pages");
	*ept_entry(&vm, 0xC0000000ull, 3) = 0 | EPT_RWX | EPT_MT_WB | EPT_LARGE;
	ept_flush();
	vm.regs.rdi = 0xC0000000ull + (uint64_t)&marker;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, marker);
}

TEST(ept_4k_page_remap)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	uint64_t x = (uint64_t)test_page(), y = (uint64_t)test_page();
	((uint64_t *)y)[3] = 0xABCDEF;
	set_pte(&vm, x, y | EPT_RWX | EPT_MT_WB);
	vm.regs.rdi = x + 0x18;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, 0xABCDEF);
}

static void ad_case(const void *fn, bool write)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, fn);
	if (!(vmx_caps.ept_vpid & EPTCAP_AD))
		test_skip("not supported: EPT accessed/dirty flags");
	vmw(VMCS_EPTP, vm.eptp | EPTP_AD);
	uint64_t p = (uint64_t)test_page();
	volatile uint64_t *pte = ept_entry(&vm, p, 1);
	*pte = p | EPT_RWX | EPT_MT_WB;
	ept_flush();
	vm.regs.rdi = p + 0x20;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECTF(*pte & EPT_A, "accessed flag not set: PTE 0x%lx", *pte);
	if (write)
		EXPECTF(*pte & EPT_D, "dirty flag not set: PTE 0x%lx", *pte);
	else
		EXPECTF(!(*pte & EPT_D), "dirty flag set by a read: PTE 0x%lx", *pte);
}
TEST(ept_accessed_flag_on_read) { ad_case(g_ept_read, false); }
TEST(ept_dirty_flag_on_write) { ad_case(g_ept_write, true); }

TEST(ept_violation_on_guest_paging_structure)
{
	/* the guest's page table for TEST_VA is not present in the EPT: the violation is on the
	 * GPA of the PTE, with "guest-linear address valid" but not "translation" (bit 8 = 0) */
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	uint64_t p = (uint64_t)test_page();
	uint64_t *root = paging_new_root();
	map_page(root, TEST_VA, p, PTE_P | PTE_W | PTE_A | PTE_D, 1);
	pte_t *pte = pte_at(root, TEST_VA, 1, false);
	ASSERT(pte);
	uint64_t pt = (uint64_t)pte & ~0xFFFull;
	set_pte(&vm, pt, 0);
	vmw(GUEST_CR3, (uint64_t)root);
	vm.regs.rdi = TEST_VA + 0x18;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EPT_VIOLATION);
	EXPECTF((e.qual & 0x1BF) == (EPTQ_READ | EPTQ_GLA_VALID), "qualification 0x%lx", e.qual);
	EXPECT_EQ(e.guest_phys, (uint64_t)pte);
	EXPECT_EQ(e.guest_linear, TEST_VA + 0x18);
}

TEST(ept_guest_page_tables_translate_first)
{
	/* guest linear -> guest physical by the guest's tables, then EPT */
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read);
	uint64_t p = (uint64_t)test_page();
	uint64_t *root = paging_new_root();
	map_page(root, TEST_VA, p, PTE_P | PTE_W, 1);
	vmw(GUEST_CR3, (uint64_t)root);
	set_pte(&vm, p, 0);
	vm.regs.rdi = TEST_VA + 0x18;
	vmx_vm_run(&vm, &e);
	expect_violation(&e, EPTQ_READ | EPTQ_GLA_VALID | EPTQ_GLA_TRANSLATION, p + 0x18, TEST_VA + 0x18,
			 (uint64_t)g_ept_read);
}

/* ---- INVEPT ---- */

static void invept_type_case(uint64_t type, uint64_t cap)
{
	struct vmx_vm vm;
	ept_setup(&vm, g_ept_read);
	if (!(vmx_caps.ept_vpid & EPTCAP_INVEPT))
		test_skip("not supported: INVEPT");
	int r = invept(type, vm.eptp);
	if (vmx_caps.ept_vpid & cap)
		EXPECT_RESULT(r, VMX_OK);
	else
		EXPECT_RESULT(r, VMERR_INVALID_INVEPT_INVVPID);
}
TEST(invept_single_context) { invept_type_case(1, EPTCAP_INVEPT_SINGLE); }
TEST(invept_all_context) { invept_type_case(2, EPTCAP_INVEPT_ALL); }
TEST(invept_type_0_invalid) { invept_type_case(0, 0); }
TEST(invept_type_3_invalid) { invept_type_case(3, 0); }

TEST(invept_makes_new_permissions_effective)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	ept_setup(&vm, g_ept_read_twice);
	if (!(vmx_caps.ept_vpid & (EPTCAP_INVEPT_SINGLE | EPTCAP_INVEPT_ALL)))
		test_skip("not supported: INVEPT");
	uint64_t p = (uint64_t)test_page();
	set_pte(&vm, p, p | EPT_RWX | EPT_MT_WB);
	vm.regs.rdi = p + 0x18;
	vmx_vm_run(&vm, &e); /* first read succeeds (translation may now be cached) */
	ASSERT_EXIT(e, EXIT_VMCALL);
	*ept_entry(&vm, p, 1) = 0;
	ASSERT(invept((vmx_caps.ept_vpid & EPTCAP_INVEPT_SINGLE) ? 1 : 2, vm.eptp) == VMX_OK);
	vmx_skip_insn();
	vmx_vm_run(&vm, &e);
	expect_violation(&e, EPTQ_READ | EPTQ_GLA_VALID | EPTQ_GLA_TRANSLATION, p + 0x18, p + 0x18,
			 (uint64_t)g_ept_read_again);
}

/* ---- VM functions: EPTP switching (SDM 3C §25.5.6) ---- */

/* RDI = GPA to read; ECX = EPTP-list index; EAX = function */
SNIPPET(g_vmfunc, "mov %rsi, %rax\n" ASM_LABEL(g_vmfunc_at) "vmfunc\n" ASM_LABEL(g_vmfunc_end) "mov (%rdi), %rbx\n"
		  "mov $0x600D600D, %eax\n vmcall\n ud2")
LABEL(g_vmfunc_at);
LABEL(g_vmfunc_end);

struct eptp_switch {
	uint64_t x, eptp2;
};

/* EPTP list [0] = the VM's EPTP, [1] = a second identity EPT where page x maps to page y. */
static struct eptp_switch vmfunc_setup(struct vmx_vm *vm)
{
	ept_setup(vm, g_vmfunc);
	if (!vmx_has_sec(SEC_VMFUNC) || !(vmx_caps.vmfunc & 1))
		test_skip("not supported: EPTP switching");
	struct eptp_switch s;
	s.x = (uint64_t)test_page();
	uint64_t y = (uint64_t)test_page();
	((uint64_t *)s.x)[3] = 0x1111;
	((uint64_t *)y)[3] = 0x2222;
	uint64_t *root2 = vmx_ept_identity();
	*ept_entry_in(root2, s.x, 1) = y | EPT_RWX | EPT_MT_WB;
	s.eptp2 = (uint64_t)root2 | (vm->eptp & 0xFFF);
	uint64_t *list = vmx_page_alloc();
	list[0] = vm->eptp;
	list[1] = s.eptp2;
	vmx_set_sec(SEC_VMFUNC);
	vmw(VMCS_VMFUNC_CTLS, 1); /* function 0: EPTP switching */
	vmw(VMCS_EPTP_LIST, (uint64_t)list);
	ept_flush();
	vm->regs.rdi = s.x + 0x18;
	return s;
}

TEST(vmfunc_eptp_switching_without_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	struct eptp_switch s = vmfunc_setup(&vm);
	vm.regs.rsi = 0;
	vm.regs.rcx = 1;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, 0x2222); /* read through the second EPT */
	EXPECT_EQ(vmr(VMCS_EPTP), s.eptp2);
	if (vmx_has_sec(SEC_EPT_VE))
		EXPECT_EQ(vmr(VMCS_EPTP_INDEX), 1);
}

TEST(vmfunc_eptp_index_out_of_range_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vmfunc_setup(&vm);
	vm.regs.rsi = 0;
	vm.regs.rcx = 512;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMFUNC);
	EXPECT_AT(e, g_vmfunc_at, g_vmfunc_end);
	EXPECT_EQ(vmr(VMCS_EPTP), vm.eptp);
}

TEST(vmfunc_invalid_list_entry_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vmfunc_setup(&vm);
	vm.regs.rsi = 0;
	vm.regs.rcx = 2; /* entry 2 is 0: memory type UC with walk length 1, not a valid EPTP */
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMFUNC);
	EXPECT_EQ(vmr(VMCS_EPTP), vm.eptp);
}

TEST(vmfunc_disabled_function_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vmfunc_setup(&vm);
	vm.regs.rsi = 1; /* function 1 is not enabled in the VM-function controls */
	vm.regs.rcx = 0;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMFUNC);
	EXPECT_AT(e, g_vmfunc_at, g_vmfunc_end);
}

TEST(vmfunc_without_enable_control_ud)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vmfunc_setup(&vm);
	vmw_clear(VMCS_PROC2_CTLS, SEC_VMFUNC);
	vmw(VMCS_EXCEPTION_BITMAP, 1u << VEC_UD);
	vm.regs.rsi = 0;
	vm.regs.rcx = 1;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_EXCEPTION_NMI);
	EXPECT_EQ(e.intr_info, INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_UD);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_vmfunc_at);
}

/* ---- VPID / INVVPID ---- */

static void need_invvpid(void)
{
	need_vmx();
	if (!vmx_has_vpid() || !(vmx_caps.ept_vpid & VPIDCAP_INVVPID))
		test_skip("not supported: VPID/INVVPID");
}

TEST(vpid_guest_runs)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_ept_read);
	if (!vmx_set_sec(SEC_VPID))
		test_skip("not supported: VPID");
	vmw(VMCS_VPID, 7);
	vm.regs.rdi = (uint64_t)&marker;
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vm.regs.rbx, marker);
	if (vmx_caps.ept_vpid & VPIDCAP_SINGLE)
		EXPECT_RESULT(invvpid(1, 7, 0), VMX_OK);
}

static void invvpid_case(uint64_t type, uint64_t cap, uint16_t vpid, uint64_t la)
{
	need_invvpid();
	int r = invvpid(type, vpid, la);
	if (cap && (vmx_caps.ept_vpid & cap))
		EXPECT_RESULT(r, VMX_OK);
	else
		EXPECT_RESULT(r, VMERR_INVALID_INVEPT_INVVPID);
}
TEST(invvpid_individual_address) { invvpid_case(0, VPIDCAP_ADDR, 1, 0x1000); }
TEST(invvpid_single_context) { invvpid_case(1, VPIDCAP_SINGLE, 1, 0); }
TEST(invvpid_all_context) { invvpid_case(2, VPIDCAP_ALL, 0, 0); }
TEST(invvpid_single_context_retaining_globals) { invvpid_case(3, VPIDCAP_SINGLE_GLOBALS, 1, 0); }
TEST(invvpid_type_4_invalid) { invvpid_case(4, 0, 1, 0); }
TEST(invvpid_vpid_0_single_context_invalid) { invvpid_case(1, 0, 0, 0); }
TEST(invvpid_vpid_0_individual_address_invalid) { invvpid_case(0, 0, 0, 0x1000); }
TEST(invvpid_noncanonical_address_invalid) { invvpid_case(0, 0, 1, 0x0000800000000000ull); }
TEST(invvpid_descriptor_reserved_bits_invalid)
{
	need_invvpid();
	struct vmx_inv_desc d = { 1 | (1ull << 20), 0 };
	EXPECT_RESULT(invvpid_desc(2, &d), VMERR_INVALID_INVEPT_INVVPID);
}

/* ---- unrestricted guest ---- */

SNIPPET(g_real16, ".code16\n mov $0x1234, %ax\n add $0x1111, %ax\n mov %cr0, %ebx\n mov %ds:0x18, %cx\n"
		  "mov %ss, %dx\n" ASM_LABEL(g_real16_vmcall) "vmcall\n hlt\n .code64")
LABEL(g_real16_vmcall);
SNIPPET(g_real16_hlt, ".code16\n nop\n" ASM_LABEL(g_real16_hlt_at) "hlt\n vmcall\n .code64")
LABEL(g_real16_hlt_at);
SNIPPET(g_pm32, ".code32\n mov $0x5678, %eax\n mov %cr0, %ebx\n mov (%esi), %ecx\n push %eax\n pop %edx\n vmcall\n"
		"hlt\n .code64")

static void need_ug(struct vmx_vm *vm)
{
	if (!vmx_has_unrestricted())
		test_skip("not supported: unrestricted guest");
	need_ept(vm);
	vmx_set_sec(SEC_UNRESTRICTED);
	vmw_clear(VMCS_ENTRY_CTLS, ENTRY_IA32E);
	vmw_clear(GUEST_CR0, CR0_PG);
	vmw(GUEST_IDTR_BASE, 0);
	vmw(GUEST_IDTR_LIMIT, 0x3FF);
	vmw(GUEST_TR_AR, AR_TSS64_BUSY); /* busy 32-bit TSS type: fine outside IA-32e mode */
}

static void real_mode_segments(uint64_t code, uint64_t data, uint64_t stack)
{
	static const uint32_t sel_f[] = { GUEST_ES_SEL, GUEST_CS_SEL, GUEST_SS_SEL, GUEST_DS_SEL, GUEST_FS_SEL, GUEST_GS_SEL };
	for (int i = 0; i < 6; i++) {
		uint64_t base = i == 1 ? code : i == 2 ? stack : data;
		/* with unrestricted guest, real-mode bases need not be selector << 4 (only v8086) */
		vmw(sel_f[i], 0);
		vmw(sel_f[i] - GUEST_ES_SEL + GUEST_ES_LIMIT, 0xFFFF);
		vmw(sel_f[i] - GUEST_ES_SEL + GUEST_ES_AR, i == 1 ? 0x9B : 0x93);
		vmw(GUEST_ES_BASE + 2 * (uint32_t)i, base);
	}
}

TEST(unrestricted_guest_real_mode)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_real16);
	need_ug(&vm);
	vmw_clear(GUEST_CR0, CR0_PE);
	uint64_t data = (uint64_t)test_page();
	real_mode_segments((uint64_t)g_real16, data, (uint64_t)vm.stack);
	vmw(GUEST_RIP, 0);
	vmw(GUEST_RSP, 0x1000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rax & 0xFFFF, 0x2345);
	EXPECT(!(vm.regs.rbx & CR0_PE));
	EXPECT_EQ(vm.regs.rcx & 0xFFFF, 0x7788); /* DS-relative load: DS.base + 0x18 */
	EXPECT_EQ(vm.regs.rdx & 0xFFFF, 0); /* MOV from SS reads the selector */
	EXPECT_EQ(e.insn_len, 3);
	EXPECT_EQ(e.guest_rip, (uint64_t)(g_real16_vmcall - (char *)g_real16)); /* CS-relative */
	EXPECT(!(vmr(GUEST_CR0) & CR0_PE));
	EXPECT(rdmsr(MSR_EFER) & EFER_LMA); /* the host is back in long mode */
}

TEST(unrestricted_guest_real_mode_hlt_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_real16_hlt);
	need_ug(&vm);
	vmw_clear(GUEST_CR0, CR0_PE);
	real_mode_segments((uint64_t)g_real16_hlt, (uint64_t)test_page(), (uint64_t)vm.stack);
	vmw(GUEST_RIP, 0);
	vmw(GUEST_RSP, 0x1000);
	arm_watchdog();
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_HLT);
	EXPECT_EQ(e.guest_rip, (uint64_t)(g_real16_hlt_at - (char *)g_real16_hlt));
	EXPECT_EQ(e.insn_len, 1);
}

TEST(unrestricted_guest_real_mode_cs_rpl_3)
{
	/* Real mode with unrestricted guest: the SDM's CS checks compare CS.DPL with SS.DPL
	 * (§26.3.1.2); nothing relates a real-mode CS selector's RPL to CS.DPL. */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_real16);
	need_ug(&vm);
	vmw_clear(GUEST_CR0, CR0_PE);
	real_mode_segments((uint64_t)g_real16, (uint64_t)test_page(), (uint64_t)vm.stack);
	vmw(GUEST_CS_SEL, 0x0003);
	vmw(GUEST_RIP, 0);
	vmw(GUEST_RSP, 0x1000);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
}

TEST(unrestricted_guest_protected_mode_unpaged)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_pm32);
	need_ug(&vm);
	ASSERT((uint64_t)g_pm32 < 0x100000000ull && (uint64_t)vm.stack < 0x100000000ull);
	vmw(GUEST_CS_SEL, KERNEL_CS32);
	vmw(GUEST_CS_AR, AR_CODE32);
	vmw(GUEST_RSP, (uint64_t)vm.stack + VMX_GUEST_STACK_SIZE);
	vm.regs.rsi = (uint64_t)&marker;
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ((uint32_t)vm.regs.rax, 0x5678);
	EXPECT_EQ((uint32_t)vm.regs.rdx, 0x5678);
	EXPECT_EQ((uint32_t)vm.regs.rcx, (uint32_t)marker);
	EXPECT((vm.regs.rbx & (CR0_PE | CR0_PG)) == CR0_PE);
	EXPECT_EQ(e.guest_rsp, (uint64_t)vm.stack + VMX_GUEST_STACK_SIZE);
}

TEST(unrestricted_guest_real_mode_without_control_fails)
{
	/* CR0.PE = 0 needs "unrestricted guest" (SDM 3C §26.3.1.1) */
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_real16);
	if (!vmx_has_unrestricted())
		test_skip("not supported: unrestricted guest");
	need_ug(&vm);
	vmw_clear(VMCS_PROC2_CTLS, SEC_UNRESTRICTED);
	vmw_clear(GUEST_CR0, CR0_PE);
	real_mode_segments((uint64_t)g_real16, (uint64_t)test_page(), (uint64_t)vm.stack);
	vmw(GUEST_RIP, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_REASON_ENTRY_FAIL | EXIT_INVALID_GUEST);
}

/* ---- VMCS shadowing ---- */

/* guest VMREAD/VMWRITE; RCX = RFLAGS after the instruction */
SNIPPET(g_sh_vmread, "mov $0x681E, %eax\n xor %ebx, %ebx\n" ASM_LABEL(g_sh_vmread_at) "vmread %rax, %rbx\n pushfq\n pop %rcx\n"
		     "vmcall\n ud2")
SNIPPET(g_sh_vmwrite, "mov $0x681C, %ebx\n mov $0x5555, %eax\n" ASM_LABEL(g_sh_vmwrite_at) "vmwrite %rax, %rbx\n"
		      "pushfq\n pop %rcx\n vmcall\n ud2")
SNIPPET(g_sh_vmwrite_ro, "mov $0x4402, %ebx\n mov $0x77, %eax\n vmwrite %rax, %rbx\n pushfq\n pop %rcx\n vmcall\n ud2")
LABEL(g_sh_vmread_at);
LABEL(g_sh_vmwrite_at);

struct shadow {
	uint64_t vmcs;
	uint8_t *rbitmap, *wbitmap;
};

static struct shadow shadow_setup(struct vmx_vm *vm, const void *rip)
{
	struct shadow s;
	vm_setup(vm, rip);
	if (!vmx_has_sec(SEC_SHADOW_VMCS))
		test_skip("not supported: VMCS shadowing");
	s.vmcs = vmx_new_vmcs();
	*(uint32_t *)s.vmcs = vmx_caps.revision | 0x80000000u; /* shadow-VMCS indicator */
	ASSERT(vmclear(s.vmcs) == VMX_OK);
	ASSERT(vmptrld(s.vmcs) == VMX_OK);
	vmw(GUEST_RIP, 0xABCD0123);
	vmw(GUEST_RSP, 0);
	ASSERT(vmptrld(vm->vmcs) == VMX_OK);
	s.rbitmap = vmx_page_alloc();
	s.wbitmap = vmx_page_alloc();
	vmx_set_sec(SEC_SHADOW_VMCS);
	vmw(VMCS_VMREAD_BITMAP, (uint64_t)s.rbitmap);
	vmw(VMCS_VMWRITE_BITMAP, (uint64_t)s.wbitmap);
	vmw(GUEST_LINK_PTR, s.vmcs);
	return s;
}

static uint64_t shadow_read(const struct vmx_vm *vm, const struct shadow *s, uint32_t enc)
{
	ASSERT(vmptrld(s->vmcs) == VMX_OK);
	uint64_t v = vmr(enc);
	ASSERT(vmptrld(vm->vmcs) == VMX_OK);
	return v;
}

static void bitmap_set(uint8_t *b, uint32_t enc) { b[(enc & 0x7FFF) / 8] |= (uint8_t)(1u << (enc % 8)); }

TEST(shadow_vmread_without_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	shadow_setup(&vm, g_sh_vmread);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rbx, 0xABCD0123);
	EXPECT_EQ(vm.regs.rcx & 0x41, 0); /* VMsucceed */
}

TEST(shadow_vmwrite_without_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	struct shadow s = shadow_setup(&vm, g_sh_vmwrite);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rcx & 0x41, 0);
	EXPECT_EQ(shadow_read(&vm, &s, GUEST_RSP), 0x5555);
	EXPECT_EQ(vmr(GUEST_RSP), e.guest_rsp); /* the ordinary VMCS is untouched */
}

TEST(shadow_vmread_bitmap_bit_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	struct shadow s = shadow_setup(&vm, g_sh_vmread);
	bitmap_set(s.rbitmap, GUEST_RIP);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMREAD);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_sh_vmread_at);
	EXPECT_EQ(e.insn_len, 3);
}

TEST(shadow_vmwrite_bitmap_bit_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	struct shadow s = shadow_setup(&vm, g_sh_vmwrite);
	bitmap_set(s.wbitmap, GUEST_RSP);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMWRITE);
	EXPECT_EQ(e.guest_rip, (uint64_t)g_sh_vmwrite_at);
	EXPECT_EQ(shadow_read(&vm, &s, GUEST_RSP), 0);
}

TEST(shadow_other_field_bit_no_exit)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	struct shadow s = shadow_setup(&vm, g_sh_vmread);
	bitmap_set(s.rbitmap, GUEST_RSP); /* not the field read */
	bitmap_set(s.wbitmap, GUEST_RIP);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rbx, 0xABCD0123);
}

TEST(shadow_link_pointer_invalid_failinvalid)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	shadow_setup(&vm, g_sh_vmread);
	vmw(GUEST_LINK_PTR, ~0ull);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL); /* no VM exit: VMfailInvalid */
	EXPECT_EQ(vm.regs.rcx & 0x41, 1);
}

TEST(shadow_vmwrite_read_only_field)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	struct shadow s = shadow_setup(&vm, g_sh_vmwrite_ro);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	if (vmx_caps.misc & MISC_VMWRITE_ANY) {
		EXPECT_EQ(vm.regs.rcx & 0x41, 0);
		EXPECT_EQ(shadow_read(&vm, &s, VMCS_EXIT_REASON), 0x77);
	} else {
		EXPECT_EQ(vm.regs.rcx & 0x41, 0x40); /* VMfailValid */
	}
}

TEST(shadow_without_shadowing_control_exits)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	shadow_setup(&vm, g_sh_vmread);
	vmw_clear(VMCS_PROC2_CTLS, SEC_SHADOW_VMCS);
	vmw(GUEST_LINK_PTR, ~0ull);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMREAD);
}

TEST(shadow_link_pointer_needs_shadow_indicator)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	shadow_setup(&vm, g_sh_vmread);
	vmw(GUEST_LINK_PTR, vmx_new_vmcs()); /* an ordinary VMCS */
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_REASON_ENTRY_FAIL | EXIT_INVALID_GUEST);
	EXPECT_EQ(e.qual, 4);
}

TEST(shadow_vmcs_cannot_be_launched)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	struct shadow s = shadow_setup(&vm, g_sh_vmread);
	ASSERT(vmptrld(s.vmcs) == VMX_OK);
	struct vmx_vm sv = vm;
	sv.vmcs = s.vmcs;
	sv.launched = false;
	EXPECT_RESULT(vmx_vm_run(&sv, &e), VMX_FAIL_INVALID);
	ASSERT(vmptrld(vm.vmcs) == VMX_OK);
}

void vmx_ept_tests(void)
{
	RUN(ept_identity_guest_runs);
	RUN(ept_identity_apic_mmio_read);
	RUN(ept_identity_apic_mmio_write);
	RUN(ept_violation_read_not_present);
	RUN(ept_violation_write_read_only);
	RUN(ept_violation_fetch_not_executable);
	RUN(ept_fetch_executable_page);
	RUN(ept_violation_then_fix_and_resume);
	RUN(ept_execute_only_fetch);
	RUN(ept_execute_only_read_violation);
	RUN(ept_execute_only_unsupported_misconfig);
	RUN(ept_misconfig_write_only);
	RUN(ept_misconfig_write_execute);
	RUN(ept_misconfig_memory_type_2);
	RUN(ept_misconfig_memory_type_7);
	RUN(ept_misconfig_address_beyond_width);
	RUN(ept_misconfig_2m_leaf_reserved_bits);
	RUN(ept_misconfig_pml4e_reserved_bits);
	RUN(ept_2m_page_remap);
	RUN(ept_1g_page_remap);
	RUN(ept_4k_page_remap);
	RUN(ept_accessed_flag_on_read);
	RUN(ept_dirty_flag_on_write);
	RUN(ept_violation_on_guest_paging_structure);
	RUN(ept_guest_page_tables_translate_first);
	RUN(invept_single_context);
	RUN(invept_all_context);
	RUN(invept_type_0_invalid);
	RUN(invept_type_3_invalid);
	RUN(invept_makes_new_permissions_effective);
	RUN(vmfunc_eptp_switching_without_exit);
	RUN(vmfunc_eptp_index_out_of_range_exits);
	RUN(vmfunc_invalid_list_entry_exits);
	RUN(vmfunc_disabled_function_exits);
	RUN(vmfunc_without_enable_control_ud);
	RUN(vpid_guest_runs);
	RUN(invvpid_individual_address);
	RUN(invvpid_single_context);
	RUN(invvpid_all_context);
	RUN(invvpid_single_context_retaining_globals);
	RUN(invvpid_type_4_invalid);
	RUN(invvpid_vpid_0_single_context_invalid);
	RUN(invvpid_vpid_0_individual_address_invalid);
	RUN(invvpid_noncanonical_address_invalid);
	RUN(invvpid_descriptor_reserved_bits_invalid);
	RUN(unrestricted_guest_real_mode);
	RUN(unrestricted_guest_real_mode_hlt_exit);
	RUN(unrestricted_guest_real_mode_cs_rpl_3);
	RUN(unrestricted_guest_protected_mode_unpaged);
	RUN(unrestricted_guest_real_mode_without_control_fails);
	RUN(shadow_vmread_without_exit);
	RUN(shadow_vmwrite_without_exit);
	RUN(shadow_vmread_bitmap_bit_exits);
	RUN(shadow_vmwrite_bitmap_bit_exits);
	RUN(shadow_other_field_bit_no_exit);
	RUN(shadow_link_pointer_invalid_failinvalid);
	RUN(shadow_vmwrite_read_only_field);
	RUN(shadow_without_shadowing_control_exits);
	RUN(shadow_link_pointer_needs_shadow_indicator);
	RUN(shadow_vmcs_cannot_be_launched);
}
