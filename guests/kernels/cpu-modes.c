/* Operating modes: the 32-bit protected-mode stage (paging off, 32-bit paging with 4 MiB and
 * 4 KiB pages, PAE) runs before long mode from boot32_hook (kernels/cpu-modes-pm32.m32.c) and is
 * reported here; then long-mode state, a call into a compatibility-mode code segment, and basic
 * CPUID leaves. */
#include "pm32.h"
#include "rt.h"

static const char *const pm32_names[PM32_COUNT] = {
	[PM32_RAN] = "pm32_stage_ran",
	[PM32_PAGING_OFF] = "pm32_paging_off_flat",
	[PM32_DECODE_32BIT] = "pm32_decode_0x40_is_inc",
	[PM32_PSE_4M_ALIAS] = "pm32_pse_4m_page_alias",
	[PM32_PSE_4M_AD] = "pm32_pse_4m_accessed_dirty",
	[PM32_PT_4K_ALIAS] = "pm32_4k_page_alias",
	[PM32_PT_4K_AD] = "pm32_4k_accessed_dirty",
	[PM32_PAE_2M_ALIAS] = "pm32_pae_2m_page_alias",
	[PM32_PAE_2M_AD] = "pm32_pae_2m_accessed_dirty",
	[PM32_PAGING_OFF_AGAIN] = "pm32_paging_off_again",
};

static void report_pm32(void)
{
	for (int i = 0; i < PM32_COUNT; i++) {
		const struct pm32_result *r = &pm32_results[i];
		if (r->ok == 1)
			pass(pm32_names[i]);
		else if (r->ok == 2)
			pass_skipped(pm32_names[i], "CPUID.01H:EDX says the paging mode is absent");
		else
			fail(pm32_names[i], "got 0x%x, want 0x%x", r->got, r->want);
	}
}

TEST(long_mode_active)
{
	EXPECT(rdmsr(MSR_EFER) & EFER_LMA);
	EXPECT(rdmsr(MSR_EFER) & EFER_LME);
	EXPECT(read_cr0() & CR0_PG);
	EXPECT(read_cr4() & CR4_PAE);
	uint64_t x = 5;
	asm volatile(".byte 0x48, 0xff, 0xc0" : "+a"(x)); /* REX.W INC RAX */
	EXPECT_EQ(x, 6);
}

uint32_t compat_call(uint32_t x);
extern uint32_t compat_push_size, compat_cs;

TEST(compatibility_mode_call)
{
	/* 0x48 decodes as DEC EAX in the 32-bit segment, so the result is x - 1 + 16 */
	uint32_t r = compat_call(100);
	EXPECT_EQ(r, 115);
	EXPECT_EQ(compat_push_size, 4);
	EXPECT_EQ(compat_cs, KERNEL_CS32);
	EXPECT_EQ(read_cs(), KERNEL_CS); /* back in the 64-bit segment */
	uint64_t x = 100;
	asm volatile(".byte 0x48\n add $0x10, %%eax" : "+a"(x)); /* here 0x48 is REX.W */
	EXPECT_EQ(x, 116);
}

TEST(cpuid_basic_leaves)
{
	struct cpuid_regs r0 = cpuid(0, 0);
	EXPECT(r0.eax >= 1);
	struct cpuid_regs e0 = cpuid(0x80000000, 0);
	EXPECT(e0.eax >= 0x80000001);
	struct cpuid_regs e1 = cpuid(0x80000001, 0);
	EXPECT((e1.edx >> 29) & 1); /* LM: we are running in long mode */
	struct cpuid_regs r1 = cpuid(1, 0);
	EXPECT((r1.edx >> 5) & 1); /* MSR */
	EXPECT((r1.edx >> 6) & 1); /* PAE */
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	report_pm32();
	RUN(long_mode_active);
	RUN(compatibility_mode_call);
	RUN(cpuid_basic_leaves);
	test_finish();
}
