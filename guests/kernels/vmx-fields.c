/* VMREAD/VMWRITE (SDM 3C §24.11.2, §30.3, Appendix B): every field of lib/vmx_fields.c is
 * written and read back when the processor supports it, and fails with VM-instruction error 12
 * when it does not; read-only fields fail VMWRITE with error 13 unless IA32_VMX_MISC[29];
 * "high" accesses to 64-bit fields; truncation to the field width; invalid encodings; and the
 * highest index in IA32_VMX_VMCS_ENUM against the encodings VMREAD accepts. */
#include "vmx-tests.h"

static uint64_t scratch;

static void load_scratch(void)
{
	need_vmx();
	if (!scratch)
		scratch = vmx_new_vmcs();
	ASSERT(vmptrld(scratch) == VMX_OK);
}

static uint64_t width_mask(uint32_t enc)
{
	switch (VMCS_ENC_WIDTH(enc)) {
	case 0:
		return 0xFFFF;
	case 2:
		return 0xFFFFFFFF;
	default:
		return ~0ull;
	}
}

/* Bits a VMWRITE/VMREAD round trip must preserve. Segment access rights: only bits 16, 15:12
 * and 7:0 are defined; the SDM lets a processor not store the reserved ones (§24.4.1). */
static uint64_t kept_bits(uint32_t enc)
{
	if (enc >= GUEST_ES_AR && enc <= GUEST_TR_AR)
		return 0x1F0FF;
	return width_mask(enc);
}

static bool is_uncertain(const struct vmx_field *f)
{
	if (f->feature == FF_UNCERTAIN)
		return true;
	/* fields for CR3-target values beyond the supported count: not specified either way */
	return f->feature >= FF_CR3_TARGET1 && f->feature <= FF_CR3_TARGET4 && !vmx_field_supported(f);
}

static const struct vmx_field *cur_field;

static void field_case(void)
{
	const struct vmx_field *f = cur_field;
	load_scratch();
	uint64_t v = 0;
	int rr = vmread(f->enc, &v);
	if (is_uncertain(f)) {
		int rw = vmwrite(f->enc, v);
		EXPECTF(rr == VMX_OK || rr == VMERR_UNSUPPORTED_FIELD, "VMREAD: %d", rr);
		if (rr == VMERR_UNSUPPORTED_FIELD)
			EXPECTF(rw == VMERR_UNSUPPORTED_FIELD, "VMREAD failed with 12 but VMWRITE gave %d", rw);
		return;
	}
	if (!vmx_field_supported(f)) {
		EXPECTF(rr == VMERR_UNSUPPORTED_FIELD, "field of an unsupported feature: VMREAD gave %d, want 12", rr);
		EXPECTF(vmwrite(f->enc, 0) == VMERR_UNSUPPORTED_FIELD, "field of an unsupported feature: VMWRITE accepted");
		return;
	}
	EXPECTF(rr == VMX_OK, "VMREAD: %d", rr);
	EXPECTF((v & ~width_mask(f->enc)) == 0, "VMREAD value 0x%lx wider than the field", v);
	bool ro = VMCS_ENC_TYPE(f->enc) == 1;
	if (ro && !(vmx_caps.misc & MISC_VMWRITE_ANY)) {
		int rw = vmwrite(f->enc, 0x1234);
		EXPECTF(rw == VMERR_VMWRITE_READ_ONLY, "VMWRITE to a read-only field: %d, want 13", rw);
		return;
	}
	static const uint64_t pats[] = { 0xA5A5A5A55A5A5A5Aull, 0x0123456789ABCDEFull, 0 };
	for (unsigned i = 0; i < ARRAY_SIZE(pats); i++) {
		uint64_t p = pats[i] & width_mask(f->enc);
		int rw = vmwrite(f->enc, p);
		EXPECTF(rw == VMX_OK, "VMWRITE 0x%lx: %d", p, rw);
		uint64_t back = ~0ull;
		EXPECTF(vmread(f->enc, &back) == VMX_OK, "VMREAD after VMWRITE failed");
		EXPECTF((back & kept_bits(f->enc)) == (p & kept_bits(f->enc)), "wrote 0x%lx read 0x%lx", p, back);
		if (VMCS_ENC_WIDTH(f->enc) == 1) {
			uint64_t hi = ~0ull;
			EXPECTF(vmread(f->enc | VMCS_ENC_HIGH, &hi) == VMX_OK && hi == (p >> 32),
				"VMREAD high of 0x%lx gave 0x%lx", p, hi);
		}
	}
}

/* ---- encodings ---- */

static uint64_t cur_enc;

static void bad_encoding_case(void)
{
	load_scratch();
	uint64_t v;
	EXPECT_RESULT(vmread(cur_enc, &v), VMERR_UNSUPPORTED_FIELD);
	EXPECT_RESULT(vmwrite(cur_enc, 0), VMERR_UNSUPPORTED_FIELD);
}

TEST(vmwrite_high_half)
{
	load_scratch();
	vmw(VMCS_TSC_OFFSET, 0x1122334455667788ull);
	uint64_t hi = 0;
	EXPECT_RESULT(vmread(VMCS_TSC_OFFSET | VMCS_ENC_HIGH, &hi), VMX_OK);
	EXPECT_EQ(hi, 0x11223344);
	/* writing the high half keeps the low half; only bits 31:0 of the source are used */
	EXPECT_RESULT(vmwrite(VMCS_TSC_OFFSET | VMCS_ENC_HIGH, 0xFFFFFFFFAABBCCDDull), VMX_OK);
	EXPECT_EQ(vmr(VMCS_TSC_OFFSET), 0xAABBCCDD55667788ull);
}

TEST(vmwrite_16bit_field_truncates)
{
	load_scratch();
	EXPECT_RESULT(vmwrite(GUEST_FS_SEL, 0xFFFFFFFFFFFF1238ull), VMX_OK);
	EXPECT_EQ(vmr(GUEST_FS_SEL), 0x1238);
}

TEST(vmwrite_32bit_field_truncates)
{
	load_scratch();
	EXPECT_RESULT(vmwrite(GUEST_FS_LIMIT, 0xFFFFFFFF8765432Full), VMX_OK);
	EXPECT_EQ(vmr(GUEST_FS_LIMIT), 0x8765432F);
}

TEST(vmwrite_natural_field_64bit)
{
	load_scratch();
	EXPECT_RESULT(vmwrite(GUEST_RSP, 0xFEDCBA9876543210ull), VMX_OK);
	EXPECT_EQ(vmr(GUEST_RSP), 0xFEDCBA9876543210ull);
}

TEST(vmread_vmwrite_memory_operands)
{
	load_scratch();
	uint64_t val = 0xCAFEF00Dull, out = 0, fl;
	asm volatile("vmwrite %1, %2; pushfq; popq %0" : "=r"(fl) : "m"(val), "r"((uint64_t)GUEST_RIP) : "cc", "memory");
	EXPECT_RESULT(vmx_result_from(fl), VMX_OK);
	asm volatile("vmread %2, %1; pushfq; popq %0" : "=r"(fl), "=m"(out) : "r"((uint64_t)GUEST_RIP) : "cc", "memory");
	EXPECT_RESULT(vmx_result_from(fl), VMX_OK);
	EXPECT_EQ(out, 0xCAFEF00Dull);
}

TEST(vmread_16bit_into_memory_writes_64)
{
	/* In 64-bit mode a memory destination of VMREAD is 64 bits: the zero-extended value */
	load_scratch();
	vmw(GUEST_GS_SEL, 0x18);
	uint64_t out = ~0ull, fl;
	asm volatile("vmread %2, %1; pushfq; popq %0" : "=r"(fl), "+m"(out) : "r"((uint64_t)GUEST_GS_SEL) : "cc", "memory");
	EXPECT_RESULT(vmx_result_from(fl), VMX_OK);
	EXPECT_EQ(out, 0x18);
}

TEST(vmwrite_readonly_field)
{
	load_scratch();
	int r = vmwrite(VMCS_EXIT_QUAL, 5);
	if (vmx_caps.misc & MISC_VMWRITE_ANY) {
		EXPECT_RESULT(r, VMX_OK);
		EXPECT_EQ(vmr(VMCS_EXIT_QUAL), 5);
	} else {
		EXPECT_RESULT(r, VMERR_VMWRITE_READ_ONLY);
		EXPECT_EQ(vmr(VMCS_INSN_ERROR), VMERR_VMWRITE_READ_ONLY);
	}
}

TEST(vmwrite_instruction_error_readonly)
{
	/* the VM-instruction error field is itself read-only */
	load_scratch();
	int r = vmwrite(VMCS_INSN_ERROR, 3);
	if (vmx_caps.misc & MISC_VMWRITE_ANY)
		EXPECT_RESULT(r, VMX_OK);
	else
		EXPECT_RESULT(r, VMERR_VMWRITE_READ_ONLY);
}

TEST(vmcs_enum_max_index)
{
	load_scratch();
	unsigned max = (unsigned)((vmx_caps.vmcs_enum >> 1) & 0x1FF);
	unsigned highest = 0, unknown = 0, missing = 0;
	uint32_t first_unknown = 0;
	/* every width x type x index (and the high access of 64-bit fields) */
	for (uint32_t w = 0; w < 4; w++)
		for (uint32_t t = 0; t < 4; t++)
			for (uint32_t i = 0; i < 512; i++)
				for (uint32_t hi = 0; hi <= (w == 1 ? 1u : 0u); hi++) {
					uint32_t enc = (w << 13) | (t << 10) | (i << 1) | hi;
					uint64_t v;
					int r = vmread(enc, &v);
					EXPECTF(r == VMX_OK || r == VMERR_UNSUPPORTED_FIELD, "VMREAD 0x%x: %d", enc, r);
					if (r != VMX_OK)
						continue;
					if (i > highest)
						highest = i;
					const struct vmx_field *f = vmx_field_find(enc & ~1u);
					if (!f) {
						if (!unknown++)
							first_unknown = enc;
					} else if (!vmx_field_supported(f) && !is_uncertain(f)) {
						missing++;
					}
				}
	EXPECTF(highest == max, "highest index VMREAD accepts is %u, IA32_VMX_VMCS_ENUM says %u", highest, max);
	EXPECTF(missing == 0, "%u accepted encodings belong to features the capability MSRs deny", missing);
	if (unknown)
		printf("note: vmcs_enum_max_index: %u accepted encodings not in lib/vmx_fields.c (first 0x%x)\n", unknown,
		       first_unknown);
}

static const uint64_t bad_encs[] = {
	0x0001, /* 16-bit field with access type "high" */
	0x4001, /* 32-bit field, "high" */
	0x6801, /* natural-width field, "high" */
	0x1000 | GUEST_RIP, /* bit 12 reserved */
	0x8000 | GUEST_RIP, /* bits 31:15 reserved */
	(1ull << 32) | GUEST_RIP, /* bits 63:32 of the register operand */
};

void vmx_field_tests(void)
{
	char name[64];
	for (unsigned i = 0; i < vmx_field_count; i++) {
		cur_field = &vmx_fields[i];
		snprintf(name, sizeof(name), "vmcs_field_%s", vmx_fields[i].name);
		vt_run(name, field_case);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(bad_encs); i++) {
		cur_enc = bad_encs[i];
		snprintf(name, sizeof(name), "vmread_bad_encoding_0x%lx", bad_encs[i]);
		vt_run(name, bad_encoding_case);
	}
	/* an index above the highest the processor uses */
	if (vmx_caps.vmx) {
		unsigned max = (unsigned)((vmx_caps.vmcs_enum >> 1) & 0x1FF);
		if (max < 511) {
			cur_enc = 0x6800 | ((max + 1) << 1);
			vt_run("vmread_index_above_vmcs_enum", bad_encoding_case);
		}
	}
	RUN(vmwrite_high_half);
	RUN(vmwrite_16bit_field_truncates);
	RUN(vmwrite_32bit_field_truncates);
	RUN(vmwrite_natural_field_64bit);
	RUN(vmread_vmwrite_memory_operands);
	RUN(vmread_16bit_into_memory_writes_64);
	RUN(vmwrite_readonly_field);
	RUN(vmwrite_instruction_error_readonly);
	RUN(vmcs_enum_max_index);
}
