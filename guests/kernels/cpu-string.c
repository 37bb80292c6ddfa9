/* String instructions: MOVS, STOS, LODS, CMPS, SCAS in all widths, with REP/REPE/REPNE,
 * DF=1, overlapping operands, a zero count, segment overrides and a page fault in the middle
 * of a REP (SDM 2B "REP/REPE/REPZ/REPNE/REPNZ", SDM 1 §7.3.9). Built at -O1 (see Makefile). */
#include "rt.h"

struct sregs {
	uint64_t rsi, rdi, rcx, rax, flags;
};

#define ZF RFLAGS_ZF
#define CF RFLAGS_CF

/* Runs `insn` with the given RSI/RDI/RCX/RAX and DF (a literal 0 or 1), returns the registers
 * and RFLAGS after. DF is cleared again before returning to C. */
#define DF_SET_0 ""
#define DF_SET_1 "std\n"
#define DF_CLEAR_0 ""
#define DF_CLEAR_1 "\n cld" 
#define STRING_OP(insn, df, in_rsi, in_rdi, in_rcx, in_rax)                                            \
	({                                                                                               \
		struct sregs r_ = { (uint64_t)(in_rsi), (uint64_t)(in_rdi), (uint64_t)(in_rcx),         \
				    (uint64_t)(in_rax), 0 };                                             \
		asm volatile(DF_SET_##df insn "\n pushfq\n popq %4" DF_CLEAR_##df                          \
			     : "+S"(r_.rsi), "+D"(r_.rdi), "+c"(r_.rcx), "+a"(r_.rax), "=r"(r_.flags)     \
			     :                                                                           \
			     : "memory", "cc");                                                          \
		r_;                                                                                      \
	})

static uint8_t src[256], dst[256];

static void fill_pattern(void)
{
	for (int i = 0; i < 256; i++) {
		src[i] = (uint8_t)(i * 7 + 3);
		dst[i] = 0xEE;
	}
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

TEST(rep_movs_all_widths)
{
	static const int sizes[] = { 1, 2, 4, 8 };
	for (int k = 0; k < 4; k++) {
		int sz = sizes[k];
		uint64_t count = 96 / (uint64_t)sz;
		fill_pattern();
		struct sregs r;
		switch (sz) {
		case 1: r = STRING_OP("rep movsb", 0, src + 8, dst + 8, count, 0); break;
		case 2: r = STRING_OP("rep movsw", 0, src + 8, dst + 8, count, 0); break;
		case 4: r = STRING_OP("rep movsl", 0, src + 8, dst + 8, count, 0); break;
		default: r = STRING_OP("rep movsq", 0, src + 8, dst + 8, count, 0); break;
		}
		EXPECTF(memcmp(dst + 8, src + 8, 96) == 0, "movs%d: data", sz);
		EXPECTF(all_bytes(dst, 8, 0xEE) && all_bytes(dst + 104, 152, 0xEE), "movs%d: wrote outside", sz);
		EXPECTF(r.rcx == 0 && r.rsi == (uint64_t)(src + 104) && r.rdi == (uint64_t)(dst + 104),
			"movs%d: rcx=%lu rsi=%lx rdi=%lx", sz, r.rcx, r.rsi, r.rdi);
	}
}

TEST(rep_stos_all_widths)
{
	static const int sizes[] = { 1, 2, 4, 8 };
	const uint64_t val = 0x8877665544332211ull;
	for (int k = 0; k < 4; k++) {
		int sz = sizes[k];
		uint64_t count = 64 / (uint64_t)sz;
		fill_pattern();
		struct sregs r;
		switch (sz) {
		case 1: r = STRING_OP("rep stosb", 0, 0, dst + 16, count, val); break;
		case 2: r = STRING_OP("rep stosw", 0, 0, dst + 16, count, val); break;
		case 4: r = STRING_OP("rep stosl", 0, 0, dst + 16, count, val); break;
		default: r = STRING_OP("rep stosq", 0, 0, dst + 16, count, val); break;
		}
		bool ok = true;
		for (int i = 0; i < 64; i++)
			ok &= dst[16 + i] == (uint8_t)(val >> (8 * (i % sz)));
		EXPECTF(ok, "stos%d: data", sz);
		EXPECTF(all_bytes(dst, 16, 0xEE) && all_bytes(dst + 80, 176, 0xEE), "stos%d: wrote outside", sz);
		EXPECTF(r.rcx == 0 && r.rdi == (uint64_t)(dst + 80), "stos%d: rcx=%lu rdi=%lx", sz, r.rcx, r.rdi);
	}
}

TEST(lods_all_widths)
{
	static const uint64_t words[2] = { 0x0706050403020100ull, 0x0F0E0D0C0B0A0908ull };
	const uint8_t *p = (const uint8_t *)words;
	struct sregs r = STRING_OP("lodsb", 0, p, 0, 0, 0xFFFFFFFFFFFFFFFFull);
	EXPECT_EQ(r.rax, 0xFFFFFFFFFFFFFF00ull); /* AL only */
	EXPECT_EQ(r.rsi, (uint64_t)(p + 1));
	r = STRING_OP("lodsw", 0, p + 2, 0, 0, 0xFFFFFFFFFFFFFFFFull);
	EXPECT_EQ(r.rax, 0xFFFFFFFFFFFF0302ull); /* AX only */
	r = STRING_OP("lodsl", 0, p + 4, 0, 0, 0xFFFFFFFFFFFFFFFFull);
	EXPECT_EQ(r.rax, 0x07060504ull); /* EAX, zero-extended into RAX */
	r = STRING_OP("lodsq", 0, p + 8, 0, 0, 0);
	EXPECT_EQ(r.rax, words[1]);
	EXPECT_EQ(r.rsi, (uint64_t)(p + 16));
	r = STRING_OP("rep lodsb", 0, p, 0, 5, 0);
	EXPECT_EQ(r.rax & 0xFF, 4); /* the last element loaded */
	EXPECT_EQ(r.rcx, 0);
	r = STRING_OP("lodsw", 1, p + 8, 0, 0, 0);
	EXPECT_EQ(r.rax, 0x0908);
	EXPECT_EQ(r.rsi, (uint64_t)(p + 6)); /* DF=1 decrements by the element size */
}

TEST(repe_cmps_finds_mismatch)
{
	static const char a[] = "abcdefghXjkl", b[] = "abcdefghYjkl";
	struct sregs r = STRING_OP("repe cmpsb", 0, a, b, 12, 0);
	/* stops after comparing the mismatch at index 8: 9 iterations */
	EXPECT_EQ(r.rcx, 3);
	EXPECT_EQ(r.rsi, (uint64_t)(a + 9));
	EXPECT_EQ(r.rdi, (uint64_t)(b + 9));
	EXPECT_EQ(r.flags & ZF, 0);
	EXPECT_EQ(r.flags & CF, CF); /* 'X' - 'Y' borrows: CMPS computes [RSI] - [RDI] */

	r = STRING_OP("repe cmpsb", 0, a, a, 12, 0);
	EXPECT_EQ(r.rcx, 0);
	EXPECT_EQ(r.flags & ZF, ZF);

	static const uint32_t x[4] = { 1, 2, 3, 4 }, y[4] = { 1, 2, 3, 5 };
	r = STRING_OP("repe cmpsl", 0, x, y, 4, 0);
	EXPECT_EQ(r.rcx, 0);
	EXPECT_EQ(r.flags & ZF, 0);
	static const uint64_t q1[3] = { 7, 7, 9 }, q2[3] = { 7, 8, 9 };
	r = STRING_OP("repe cmpsq", 0, q1, q2, 3, 0);
	EXPECT_EQ(r.rcx, 1);
	EXPECT_EQ(r.rsi, (uint64_t)(q1 + 2));
	static const uint16_t w1[3] = { 5, 6, 7 }, w2[3] = { 5, 6, 7 };
	r = STRING_OP("repe cmpsw", 0, w1, w2, 3, 0);
	EXPECT_EQ(r.rcx, 0);
	EXPECT_EQ(r.flags & ZF, ZF);
}

TEST(repne_cmps_finds_match)
{
	static const char a[] = "abcdef", b[] = "xyzdqq";
	struct sregs r = STRING_OP("repne cmpsb", 0, a, b, 6, 0);
	EXPECT_EQ(r.rcx, 2); /* match at index 3 */
	EXPECT_EQ(r.flags & ZF, ZF);
}

TEST(repne_scas_finds_byte)
{
	static const char s[] = "hello, world";
	struct sregs r = STRING_OP("repne scasb", 0, 0, s, 12, ',');
	EXPECT_EQ(r.rcx, 12 - 6);
	EXPECT_EQ(r.rdi, (uint64_t)(s + 6));
	EXPECT_EQ(r.flags & ZF, ZF);
	r = STRING_OP("repne scasb", 0, 0, s, 12, '!');
	EXPECT_EQ(r.rcx, 0);
	EXPECT_EQ(r.flags & ZF, 0);
	/* strlen idiom: repne scasb with RCX = -1 */
	r = STRING_OP("repne scasb", 0, 0, s, -1, 0);
	EXPECT_EQ(~r.rcx - 1, 12);
	static const uint64_t q[4] = { 1, 2, 3, 4 };
	r = STRING_OP("repne scasq", 0, 0, q, 4, 3);
	EXPECT_EQ(r.rcx, 1);
	EXPECT_EQ(r.rdi, (uint64_t)(q + 3));
}

TEST(repe_scas_skips_prefix)
{
	static const uint16_t w[6] = { 9, 9, 9, 4, 9, 9 };
	struct sregs r = STRING_OP("repe scasw", 0, 0, w, 6, 9);
	EXPECT_EQ(r.rcx, 2);
	EXPECT_EQ(r.rdi, (uint64_t)(w + 4));
	EXPECT_EQ(r.flags & ZF, 0);
	static const uint32_t d[3] = { 5, 5, 5 };
	r = STRING_OP("repe scasl", 0, 0, d, 3, 5);
	EXPECT_EQ(r.rcx, 0);
	EXPECT_EQ(r.flags & ZF, ZF);
}

TEST(direction_flag_backwards)
{
	fill_pattern();
	/* copy 32 bytes backwards: RSI/RDI point at the last element */
	struct sregs r = STRING_OP("rep movsb", 1, src + 31, dst + 31, 32, 0);
	EXPECT(memcmp(dst, src, 32) == 0);
	EXPECT_EQ(r.rsi, (uint64_t)(src - 1));
	EXPECT_EQ(r.rdi, (uint64_t)(dst - 1));
	fill_pattern();
	r = STRING_OP("rep movsq", 1, src + 24, dst + 24, 4, 0);
	EXPECT(memcmp(dst, src, 32) == 0);
	EXPECT_EQ(r.rdi, (uint64_t)(dst - 8));
	fill_pattern();
	r = STRING_OP("rep stosl", 1, 0, dst + 12, 4, 0xCAFEBABE);
	EXPECT_EQ(((uint32_t *)dst)[0], 0xCAFEBABE);
	EXPECT_EQ(((uint32_t *)dst)[3], 0xCAFEBABE);
	EXPECT_EQ(r.rdi, (uint64_t)(dst - 4));
	EXPECT_EQ(r.flags & RFLAGS_DF, RFLAGS_DF);
}

TEST(overlapping_copies)
{
	/* REP MOVS behaves as its iterations in order: a forward copy onto src+1 smears byte 0 */
	uint8_t buf[16] = "abcdefghijklmno";
	STRING_OP("rep movsb", 0, buf, buf + 1, 8, 0);
	EXPECT(memcmp(buf, "aaaaaaaaajklmno", 16) == 0);
	/* backwards with DF=1 is the memmove-safe direction for dst > src */
	uint8_t buf2[16] = "abcdefghijklmno";
	STRING_OP("rep movsb", 1, buf2 + 7, buf2 + 8, 8, 0);
	EXPECT(memcmp(buf2, "aabcdefghjklmno", 16) == 0);
	/* forward with dst < src is also safe */
	uint8_t buf3[16] = "abcdefghijklmno";
	STRING_OP("rep movsw", 0, buf3 + 2, buf3, 4, 0);
	EXPECT(memcmp(buf3, "cdefghijijklmno", 16) == 0);
}

TEST(zero_count)
{
	fill_pattern();
	struct sregs r = STRING_OP("rep movsb", 0, src, dst, 0, 0);
	EXPECT(all_bytes(dst, 256, 0xEE));
	EXPECT(r.rsi == (uint64_t)src && r.rdi == (uint64_t)dst && r.rcx == 0);
	r = STRING_OP("rep stosq", 0, 0, dst, 0, 0);
	EXPECT(all_bytes(dst, 256, 0xEE));
	/* with RCX = 0, REPE CMPS does no comparison, so flags are unchanged (set by the STC/CMP) */
	r = STRING_OP("stc\n xor %%eax, %%eax\n cmp $1, %%eax\n repe cmpsb", 0, src, dst, 0, 0);
	EXPECT_EQ(r.flags & (ZF | CF), CF);
	r = STRING_OP("cmp %%eax, %%eax\n repne scasb", 0, 0, dst, 0, 0xEE);
	EXPECT_EQ(r.flags & ZF, ZF);
	EXPECT_EQ(r.rdi, (uint64_t)dst);
}

TEST(movs_fs_segment_override)
{
	/* in 64-bit mode FS and GS bases still apply; the destination is always ES (base 0) */
	fill_pattern();
	wrmsr(MSR_FS_BASE, (uint64_t)src);
	struct sregs r = STRING_OP("rep movsb %%fs:(%%rsi), %%es:(%%rdi)", 0, 16, dst, 8, 0);
	wrmsr(MSR_FS_BASE, 0);
	EXPECT(memcmp(dst, src + 16, 8) == 0);
	EXPECT_EQ(r.rsi, 24); /* RSI holds the offset, not the linear address */
}

TEST(addr32_uses_ecx_esi_edi)
{
	/* with an address-size prefix the string ops use ESI/EDI/ECX (SDM 1 §7.3.9.1) */
	fill_pattern();
	uint64_t s = (uint64_t)src | 0xABCD000000000000ull; /* upper bits ignored */
	uint64_t d = (uint64_t)dst | 0x1234000000000000ull;
	struct sregs r = STRING_OP("addr32 rep movsb", 0, s, d, 0x5500000000000004ull, 0);
	EXPECT(memcmp(dst, src, 4) == 0);
	EXPECT_EQ(dst[4], 0xEE);
	EXPECT_EQ(r.rsi, (uint64_t)src + 4); /* a 32-bit register write zero-extends */
	EXPECT_EQ(r.rdi, (uint64_t)dst + 4);
	EXPECT_EQ(r.rcx & 0xFFFFFFFF, 0);
}

static uint8_t *fault_src;
static uint64_t fault_dst;
static void movs_into_unmapped(void *arg)
{
	(void)arg;
	STRING_OP("rep movsb", 0, fault_src, fault_dst, 64, 0);
}

TEST(rep_movs_fault_midway)
{
	/* a fault inside REP MOVS leaves RSI/RDI/RCX at the faulting iteration and RIP at the
	 * instruction, so it can be restarted (SDM 2B REP) */
	uint64_t va = TEST_VA;
	map_4k(va, (uint64_t)page_alloc(), PTE_P | PTE_W);
	map_4k(va + PAGE_4K, (uint64_t)page_alloc(), 0);
	invlpg(va);
	invlpg(va + PAGE_4K);
	fill_pattern();
	fault_src = src;
	fault_dst = va + PAGE_4K - 16;
	struct frame f;
	ASSERT(catch_run(movs_into_unmapped, 0, &f));
	EXPECT_EQ(f.vector, VEC_PF);
	EXPECT_EQ(f.cr2, va + PAGE_4K);
	EXPECT_EQ(f.rcx, 48);
	EXPECT_EQ(f.rsi, (uint64_t)(src + 16));
	EXPECT_EQ(f.rdi, va + PAGE_4K);
	EXPECT(memcmp((void *)fault_dst, src, 16) == 0);
	/* map the page and resume the instruction where it stopped */
	pte_set_bits(va + PAGE_4K, PTE_P | PTE_W);
	invlpg(va + PAGE_4K);
	STRING_OP("rep movsb", 0, f.rsi, f.rdi, f.rcx, 0);
	EXPECT(memcmp((void *)fault_dst, src, 64) == 0);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	RUN(rep_movs_all_widths);
	RUN(rep_stos_all_widths);
	RUN(lods_all_widths);
	RUN(repe_cmps_finds_mismatch);
	RUN(repne_cmps_finds_match);
	RUN(repne_scas_finds_byte);
	RUN(repe_scas_skips_prefix);
	RUN(direction_flag_backwards);
	RUN(overlapping_copies);
	RUN(zero_count);
	RUN(movs_fs_segment_override);
	RUN(addr32_uses_ecx_esi_edi);
	RUN(rep_movs_fault_midway);
	test_finish();
}
