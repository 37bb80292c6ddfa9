/* tvisor test guest: the virtual platform tvisor gives each guest (tvisor/io.c, msr.c, exits.c,
 * loader.c), checked from inside. Only meaningful under tvisor (it skips everything elsewhere).
 *   mem=MiB   the RAM the guest expects to have (tvisor's mem= option), default: not checked */
#include "rt.h"
#include "asm_snippet.h"
#include "fwcfg.h"
#include "pci.h"

static bool contains(const char *s, const char *w)
{
	size_t n = strlen(w);
	for (; *s; s++)
		if (strncmp(s, w, n) == 0)
			return true;
	return false;
}

static bool under_tvisor(void)
{
	if (!((cpuid(1, 0).ecx >> 31) & 1))
		return false;
	struct cpuid_regs r = cpuid(0x40000000, 0);
	char sig[13];
	memcpy(sig, &r.ebx, 4);
	memcpy(sig + 4, &r.ecx, 4);
	memcpy(sig + 8, &r.edx, 4);
	sig[12] = 0;
	return strcmp(sig, "TurtleTvisor") == 0;
}

#define NEED_TVISOR()                                   \
	do {                                            \
		if (!under_tvisor())                    \
			test_skip("not running under tvisor"); \
	} while (0)

TEST(cpuid_hides_vmx_and_apic)
{
	NEED_TVISOR();
	struct cpuid_regs r = cpuid(1, 0);
	EXPECT(!((r.ecx >> 5) & 1)); /* VMX */
	EXPECT(!((r.edx >> 9) & 1)); /* APIC */
	EXPECT(!((r.ecx >> 21) & 1)); /* x2APIC */
	EXPECT_EQ(r.ebx >> 24, 0u); /* APIC ID */
}

TEST(multiboot_info)
{
	NEED_TVISOR();
	const struct multiboot_info *m = mb_info();
	EXPECT(m && (m->flags & MBI_FLAG_MMAP) && (m->flags & MBI_FLAG_CMDLINE));
	EXPECT(contains(mb_cmdline(), "tvisor-platform.elf"));
	EXPECT_EQ(mb_mem_lower_kb(), 639u);
	uint64_t want = cmdline_u64("mem", 0);
	if (want)
		EXPECT_EQ(mb_mem_upper_kb(), (uint32_t)(want * 1024 - 1024));
	EXPECT_EQ(mb_module_count(), 0u);
}

TEST(fw_cfg)
{
	NEED_TVISOR();
	EXPECT(fwcfg_present());
	EXPECT_EQ(fwcfg_nb_cpus(), 1);
	uint64_t ram = 0;
	fwcfg_read(FW_CFG_RAM_SIZE, &ram, 8);
	EXPECT_EQ(ram, 0x100000ull + (uint64_t)mb_mem_upper_kb() * 1024);
	uint32_t id = 0;
	fwcfg_read(FW_CFG_ID, &id, 4);
	EXPECT_EQ(id, 1u);
}

TEST(pci_has_no_devices)
{
	NEED_TVISOR();
	EXPECT_EQ(pci_read32(0, 0, 0, 0), 0xFFFFFFFFu);
	EXPECT_EQ(pci_read32(0, 1, 0, 0), 0xFFFFFFFFu);
	outl(0xCF8, 0x80001234);
	EXPECT_EQ(inl(0xCF8), 0x80001234u);
}

TEST(unknown_ports_float)
{
	NEED_TVISOR();
	EXPECT_EQ(inb(0x80), 0xFF);
	EXPECT_EQ(inw(0x1F0), 0xFFFF);
	EXPECT_EQ(inl(0x4000), 0xFFFFFFFFu);
	outb(0x80, 0x12); /* ignored */
}

TEST(uart_registers)
{
	NEED_TVISOR();
	outb(0x3FF, 0x5A);
	EXPECT_EQ(inb(0x3FF), 0x5A); /* scratch */
	EXPECT_EQ(inb(0x3FD) & 0x60, 0x60); /* THRE, TEMT */
	EXPECT_EQ(inb(0x3FA) & 1, 1); /* no interrupt pending */
	uint8_t lcr = inb(0x3FB);
	outb(0x3FB, lcr | 0x80);
	outb(0x3F8, 0x0C);
	EXPECT_EQ(inb(0x3F8), 0x0C); /* divisor latch */
	outb(0x3F8, 0x01);
	outb(0x3FB, lcr);
}

SNIPPET(rdmsr_ecx_rdi, "mov %edi, %ecx\n" ASM_LABEL(rdmsr_site) "rdmsr\n ret")
LABEL(rdmsr_site);
SNIPPET(do_vmxon, ASM_LABEL(vmxon_site) "vmxon (%rdi)\n ret")
LABEL(vmxon_site);

TEST(msrs)
{
	NEED_TVISOR();
	struct frame f;
	/* a VMX capability MSR: VMX is hidden, so #GP(0) */
	EXPECT(catch_run(rdmsr_ecx_rdi, (void *)0x480ull, &f) && f.vector == VEC_GP && f.error == 0 &&
	       f.rip == (uint64_t)rdmsr_site);
	/* an x2APIC MSR: there is no APIC */
	EXPECT(catch_run(rdmsr_ecx_rdi, (void *)0x802ull, &f) && f.vector == VEC_GP);
	/* feature control: locked, VMX off */
	EXPECT_EQ(rdmsr(0x3A) & 7, 1u);
	/* passed through: the guest's own values */
	uint64_t star = rdmsr(MSR_STAR);
	wrmsr(MSR_STAR, 0x0023001000000000ull);
	EXPECT_EQ(rdmsr(MSR_STAR), 0x0023001000000000ull);
	wrmsr(MSR_STAR, star);
}

TEST(vmx_instructions_ud)
{
	NEED_TVISOR();
	static uint64_t region[512] ALIGNED(4096);
	struct frame f;
	EXPECT(catch_run(do_vmxon, region, &f) && f.vector == VEC_UD && f.rip == (uint64_t)vmxon_site);
}

TEST(cr4_vmxe_reserved)
{
	NEED_TVISOR();
	uint64_t cr4 = read_cr4();
	EXPECT(!(cr4 & (1ull << 13))); /* the guest sees its own CR4 */
	EXPECT(read_cr0() & CR0_PG);
}

TEST(cr8_is_per_guest)
{
	NEED_TVISOR();
	uint64_t v = 5, r = 0;
	asm volatile("mov %0, %%cr8" : : "r"(v));
	asm volatile("mov %%cr8, %0" : "=r"(r));
	EXPECT_EQ(r, 5u);
	v = 0;
	asm volatile("mov %0, %%cr8" : : "r"(v));
}

/* TF set by POPF, then CPUID (which exits): the single-step #DB comes right after CPUID */
SNIPPET(step_cpuid, "xor %eax, %eax\n pushfq\n orq $0x100, (%rsp)\n popfq\n cpuid\n" ASM_LABEL(after_cpuid) "nop\n ret")
LABEL(after_cpuid);

TEST(single_step_over_emulated_instruction)
{
	NEED_TVISOR();
	struct frame f;
	bool trapped = catch_run(step_cpuid, 0, &f);
	EXPECTF(trapped && f.vector == VEC_DB && f.rip == (uint64_t)after_cpuid, "trapped=%d vector=%lu rip=0x%lx (want 0x%lx)",
		trapped, f.vector, f.rip, (uint64_t)after_cpuid);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	RUN(cpuid_hides_vmx_and_apic);
	RUN(multiboot_info);
	RUN(fw_cfg);
	RUN(pci_has_no_devices);
	RUN(unknown_ports_float);
	RUN(uart_registers);
	RUN(msrs);
	RUN(vmx_instructions_ud);
	RUN(cr4_vmxe_reserved);
	RUN(cr8_is_per_guest);
	RUN(single_step_over_emulated_instruction);
	test_finish();
}
