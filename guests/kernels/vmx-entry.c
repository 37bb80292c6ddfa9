/* VM-entry checks (SDM 3C chapter 26): a valid 64-bit guest and valid controls, then one
 * invalid variant at a time, each with the result the SDM gives it:
 *   VMfailValid(7)  invalid control fields (§26.2.1)
 *   VMfailValid(8)  invalid host state (§26.2.2-26.2.4)
 *   VM-entry failure, exit reason 33 | 0x80000000: invalid guest state (§26.3.1), with exit
 *                   qualification 0, or 4 for the VMCS link pointer (§26.8)
 *   VM-entry failure, exit reason 34 | 0x80000000: MSR loading (§26.4), qualification =
 *                   the 1-based index of the failing entry
 * and the state loaded by VM entry and VM exit (MSR-load/store lists, FS base, DR7, EFER, PAT). */
#include "vmx-tests.h"

enum { OK, CTL, HOST, GUEST, MSRLOAD };

struct entry_case {
	const char *name;
	void (*mut)(struct vmx_vm *vm);
	int kind;
	uint32_t qual;
};

#define MUT(n) static void mut_##n(UNUSED struct vmx_vm *vm)
#define NONCANON 0x0000800000000000ull

static uint32_t lowest_bit(uint32_t m) { return m & -m; }

/* A control bit that cannot be 1, or skip. */
static uint32_t reserved_bit(const struct vmx_ctl_cap *c)
{
	uint32_t b = lowest_bit(~c->allowed1);
	if (!b)
		test_skip("not applicable: every bit of this control may be 1");
	return b;
}
/* A control bit that must be 1, or skip. */
static uint32_t fixed1_bit(const struct vmx_ctl_cap *c)
{
	uint32_t b = lowest_bit(c->allowed0);
	if (!b)
		test_skip("not applicable: no bit of this control must be 1");
	return b;
}

/* ---- controls ---- */
MUT(pin_reserved) { vmw_or(VMCS_PIN_CTLS, reserved_bit(&vmx_caps.pin)); }
MUT(pin_fixed1_clear) { vmw_clear(VMCS_PIN_CTLS, fixed1_bit(&vmx_caps.pin)); }
MUT(proc_reserved) { vmw_or(VMCS_PROC_CTLS, reserved_bit(&vmx_caps.proc)); }
MUT(proc_fixed1_clear) { vmw_clear(VMCS_PROC_CTLS, fixed1_bit(&vmx_caps.proc)); }
MUT(proc2_reserved)
{
	need_proc(PROC_SECONDARY);
	vmw_or(VMCS_PROC_CTLS, PROC_SECONDARY);
	vmw_or(VMCS_PROC2_CTLS, reserved_bit(&vmx_caps.proc2));
}
MUT(exit_reserved) { vmw_or(VMCS_EXIT_CTLS, reserved_bit(&vmx_caps.exit)); }
MUT(exit_fixed1_clear) { vmw_clear(VMCS_EXIT_CTLS, fixed1_bit(&vmx_caps.exit)); }
MUT(entry_reserved) { vmw_or(VMCS_ENTRY_CTLS, reserved_bit(&vmx_caps.entry)); }
MUT(entry_fixed1_clear) { vmw_clear(VMCS_ENTRY_CTLS, fixed1_bit(&vmx_caps.entry)); }
MUT(cr3_target_count) { vmw(VMCS_CR3_TARGET_COUNT, MISC_CR3_TARGETS(vmx_caps.misc) + 1); }
MUT(io_bitmap_a_misaligned)
{
	need_proc(PROC_IO_BITMAPS);
	vmx_set_proc(PROC_IO_BITMAPS);
	vmw(VMCS_IO_BITMAP_A, (uint64_t)vm->io_bitmap_a + 0x10);
}
MUT(io_bitmap_b_beyond)
{
	need_proc(PROC_IO_BITMAPS);
	vmx_set_proc(PROC_IO_BITMAPS);
	vmw(VMCS_IO_BITMAP_B, vmx_unbacked_pa());
}
MUT(msr_bitmap_misaligned)
{
	need_proc(PROC_MSR_BITMAPS);
	vmx_set_proc(PROC_MSR_BITMAPS);
	vmw(VMCS_MSR_BITMAP, (uint64_t)vm->msr_bitmap + 0x800);
}
MUT(msr_bitmap_beyond)
{
	need_proc(PROC_MSR_BITMAPS);
	vmx_set_proc(PROC_MSR_BITMAPS);
	vmw(VMCS_MSR_BITMAP, vmx_unbacked_pa());
}
MUT(nmi_window_without_vnmi)
{
	need_proc(PROC_NMI_WINDOW);
	vmx_set_proc(PROC_NMI_WINDOW);
}
MUT(vnmi_without_nmi_exit)
{
	need_pin(PIN_VIRTUAL_NMI);
	vmx_set_pin(PIN_VIRTUAL_NMI);
}
MUT(vapic_misaligned)
{
	need_proc(PROC_TPR_SHADOW);
	vmx_set_proc(PROC_TPR_SHADOW);
	vmw(VMCS_VIRTUAL_APIC_ADDR, (uint64_t)vmx_page_alloc() + 4);
}
MUT(tpr_threshold_reserved)
{
	need_proc(PROC_TPR_SHADOW);
	vmx_set_proc(PROC_TPR_SHADOW);
	vmw(VMCS_VIRTUAL_APIC_ADDR, (uint64_t)vmx_page_alloc());
	vmw(VMCS_TPR_THRESHOLD, 0x10); /* bits 31:4 must be 0 without virtual-interrupt delivery */
}
MUT(tpr_threshold_above_vtpr)
{
	/* without virtual-interrupt delivery and APIC virtualization: threshold <= VTPR[7:4] */
	need_proc(PROC_TPR_SHADOW);
	vmx_set_proc(PROC_TPR_SHADOW);
	uint8_t *vapic = vmx_page_alloc();
	vapic[0x80] = 0x30;
	vmw(VMCS_VIRTUAL_APIC_ADDR, (uint64_t)vapic);
	vmw(VMCS_TPR_THRESHOLD, 4);
}
MUT(tpr_shadow_ok)
{
	need_proc(PROC_TPR_SHADOW);
	vmx_set_proc(PROC_TPR_SHADOW);
	vmw(VMCS_VIRTUAL_APIC_ADDR, (uint64_t)vmx_page_alloc());
	vmw(VMCS_TPR_THRESHOLD, 0);
}
MUT(ept_memtype)
{
	need_ept(vm);
	vmw(VMCS_EPTP, (vm->eptp & ~7ull) | 3);
}
MUT(ept_walk_length)
{
	need_ept(vm);
	vmw(VMCS_EPTP, (vm->eptp & ~0x38ull) | (1ull << 3));
}
MUT(ept_reserved_bit)
{
	need_ept(vm);
	vmw(VMCS_EPTP, vm->eptp | (1ull << 10));
}
MUT(ept_ad_unsupported)
{
	need_ept(vm);
	if (vmx_caps.ept_vpid & EPTCAP_AD)
		test_skip("not applicable: EPT accessed/dirty flags are supported");
	vmw(VMCS_EPTP, vm->eptp | EPTP_AD);
}
MUT(ept_beyond)
{
	need_ept(vm);
	vmw(VMCS_EPTP, vmx_unbacked_pa() | (vm->eptp & 0xFFF));
}
MUT(ept_ok) { need_ept(vm); }
MUT(unrestricted_without_ept)
{
	need_sec(SEC_UNRESTRICTED);
	vmx_set_sec(SEC_UNRESTRICTED);
}
MUT(vpid_zero)
{
	need_sec(SEC_VPID);
	vmx_set_sec(SEC_VPID);
	vmw(VMCS_VPID, 0);
}
MUT(vpid_ok)
{
	need_sec(SEC_VPID);
	vmx_set_sec(SEC_VPID);
	vmw(VMCS_VPID, 1);
}
MUT(pml_without_ept)
{
	need_sec(SEC_PML);
	vmx_set_sec(SEC_PML);
	vmw(VMCS_PML_ADDR, (uint64_t)vmx_page_alloc());
}
MUT(vintr_without_extint_exit)
{
	need_sec(SEC_VINTR_DELIVERY);
	need_proc(PROC_TPR_SHADOW);
	vmx_set_proc(PROC_TPR_SHADOW);
	vmw(VMCS_VIRTUAL_APIC_ADDR, (uint64_t)vmx_page_alloc());
	vmx_set_sec(SEC_VINTR_DELIVERY);
}
MUT(x2apic_without_tpr_shadow)
{
	need_sec(SEC_X2APIC);
	vmx_set_sec(SEC_X2APIC);
}
MUT(x2apic_with_apic_access)
{
	need_sec(SEC_X2APIC | SEC_APIC_ACCESS);
	need_proc(PROC_TPR_SHADOW);
	vmx_set_proc(PROC_TPR_SHADOW);
	vmw(VMCS_VIRTUAL_APIC_ADDR, (uint64_t)vmx_page_alloc());
	vmw(VMCS_APIC_ACCESS_ADDR, (uint64_t)vmx_page_alloc());
	vmx_set_sec(SEC_X2APIC | SEC_APIC_ACCESS);
}
MUT(apic_access_misaligned)
{
	need_sec(SEC_APIC_ACCESS);
	vmx_set_sec(SEC_APIC_ACCESS);
	vmw(VMCS_APIC_ACCESS_ADDR, (uint64_t)vmx_page_alloc() + 0x80);
}
MUT(posted_without_vintr)
{
	need_pin(PIN_POSTED_INTR | PIN_EXTINT_EXIT);
	vmx_set_pin(PIN_POSTED_INTR | PIN_EXTINT_EXIT);
}
MUT(save_preempt_without_timer)
{
	need_exit_ctl(EXIT_SAVE_PREEMPT);
	vmx_set_exit(EXIT_SAVE_PREEMPT);
}
MUT(shadow_bitmap_misaligned)
{
	need_sec(SEC_SHADOW_VMCS);
	vmx_set_sec(SEC_SHADOW_VMCS);
	vmw(VMCS_VMREAD_BITMAP, (uint64_t)vmx_page_alloc() + 8);
	vmw(VMCS_VMWRITE_BITMAP, (uint64_t)vmx_page_alloc());
}
MUT(exit_msr_store_misaligned)
{
	vmw(VMCS_EXIT_MSR_STORE_COUNT, 1);
	vmw(VMCS_EXIT_MSR_STORE_ADDR, (uint64_t)vmx_page_alloc() + 4);
}
MUT(exit_msr_load_misaligned)
{
	vmw(VMCS_EXIT_MSR_LOAD_COUNT, 1);
	vmw(VMCS_EXIT_MSR_LOAD_ADDR, (uint64_t)vmx_page_alloc() + 8 + 4);
}
MUT(entry_msr_load_misaligned)
{
	vmw(VMCS_ENTRY_MSR_LOAD_COUNT, 1);
	vmw(VMCS_ENTRY_MSR_LOAD_ADDR, (uint64_t)vmx_page_alloc() + 2);
}
MUT(entry_msr_load_beyond)
{
	vmw(VMCS_ENTRY_MSR_LOAD_COUNT, 2);
	vmw(VMCS_ENTRY_MSR_LOAD_ADDR, vmx_unbacked_pa() - 16);
}
MUT(entry_to_smm) { vmw_or(VMCS_ENTRY_CTLS, ENTRY_SMM); }
MUT(entry_deactivate_dual) { vmw_or(VMCS_ENTRY_CTLS, ENTRY_DEACT_DUAL); }

static void inject(uint32_t info, uint32_t err, uint32_t len)
{
	vmw(VMCS_ENTRY_INTR_INFO, info);
	vmw(VMCS_ENTRY_EXC_ERROR, err);
	vmw(VMCS_ENTRY_INSN_LEN, len);
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
}
MUT(inject_type1) { inject(INTR_INFO_VALID | (1u << 8) | 0x40, 0, 0); }
MUT(inject_nmi_vector3) { inject(INTR_INFO_VALID | INTR_TYPE_NMI | 3, 0, 0); }
MUT(inject_hw_vector32) { inject(INTR_INFO_VALID | INTR_TYPE_HW_EXC | 32, 0, 0); }
MUT(inject_reserved_bits) { inject(INTR_INFO_VALID | (1u << 20) | INTR_TYPE_EXTINT | 0x40, 0, 0); }
MUT(inject_ud_with_errcode)
{
	if (vmx_caps.basic & BASIC_NO_ERRCODE_CHECK)
		test_skip("not applicable: IA32_VMX_BASIC[56] lifts the error-code check");
	inject(INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_UD, 0, 0);
}
MUT(inject_gp_without_errcode)
{
	if (vmx_caps.basic & BASIC_NO_ERRCODE_CHECK)
		test_skip("not applicable: IA32_VMX_BASIC[56] lifts the error-code check");
	inject(INTR_INFO_VALID | INTR_TYPE_HW_EXC | VEC_GP, 0, 0);
}
MUT(inject_errcode_high_bits) { inject(INTR_INFO_VALID | INTR_TYPE_HW_EXC | INTR_INFO_ERROR_VALID | VEC_GP, 0x10000, 0); }
MUT(inject_swint_len0)
{
	if (vmx_caps.misc & MISC_INJECT_LEN0)
		test_skip("not applicable: IA32_VMX_MISC[30] allows length 0");
	inject(INTR_INFO_VALID | INTR_TYPE_SW_INT | 0x80, 0, 0);
}
MUT(inject_swint_len16) { inject(INTR_INFO_VALID | INTR_TYPE_SW_INT | 0x80, 0, 16); }
MUT(inject_other_vector1) { inject(INTR_INFO_VALID | INTR_TYPE_OTHER | 1, 0, 0); }

/* ---- host state ---- */
MUT(host_cr0_ne) { vmw_clear(HOST_CR0, CR0_NE); }
MUT(host_cr0_pg) { vmw_clear(HOST_CR0, CR0_PG); }
MUT(host_cr4_vmxe) { vmw_clear(HOST_CR4, CR4_VMXE); }
MUT(host_cr4_pae) { vmw_clear(HOST_CR4, CR4_PAE); }
MUT(host_cr3_beyond) { vmw(HOST_CR3, vmx_unbacked_pa()); }
MUT(host_rip_noncanonical) { vmw(HOST_RIP, NONCANON); }
MUT(host_sysenter_esp) { vmw(HOST_SYSENTER_ESP, NONCANON); }
MUT(host_sysenter_eip) { vmw(HOST_SYSENTER_EIP, NONCANON); }
MUT(host_cs_zero) { vmw(HOST_CS_SEL, 0); }
MUT(host_tr_zero) { vmw(HOST_TR_SEL, 0); }
MUT(host_ds_rpl3) { vmw(HOST_DS_SEL, KERNEL_DS | 3); }
MUT(host_ss_ti) { vmw(HOST_SS_SEL, KERNEL_DS | 4); }
MUT(host_fs_base) { vmw(HOST_FS_BASE, NONCANON); }
MUT(host_gs_base) { vmw(HOST_GS_BASE, NONCANON); }
MUT(host_tr_base) { vmw(HOST_TR_BASE, NONCANON); }
MUT(host_gdtr_base) { vmw(HOST_GDTR_BASE, NONCANON); }
MUT(host_idtr_base) { vmw(HOST_IDTR_BASE, NONCANON); }
MUT(host_addr_size_0)
{
	/* "IA-32e mode guest" must then be 0 too, or that is reported first (same error 8) */
	vmw_clear(VMCS_EXIT_CTLS, EXIT_HOST_64);
}
MUT(host_ss_zero_ok) { vmw(HOST_SS_SEL, 0); }
MUT(host_efer_reserved)
{
	need_exit_ctl(EXIT_LOAD_EFER);
	vmx_set_exit(EXIT_LOAD_EFER);
	vmw(HOST_EFER, rdmsr(MSR_EFER) | (1ull << 1));
}
MUT(host_efer_lma)
{
	need_exit_ctl(EXIT_LOAD_EFER);
	vmx_set_exit(EXIT_LOAD_EFER);
	vmw(HOST_EFER, rdmsr(MSR_EFER) & ~EFER_LMA);
}
MUT(host_pat_invalid)
{
	need_exit_ctl(EXIT_LOAD_PAT);
	vmx_set_exit(EXIT_LOAD_PAT);
	vmw(HOST_PAT, (rdmsr(MSR_IA32_PAT) & ~0xFFull) | 2); /* memory type 2 is reserved */
}

/* ---- guest state ---- */
static void need_unrestricted(struct vmx_vm *vm)
{
	if (!vmx_has_unrestricted())
		test_skip("not supported: unrestricted guest");
	need_ept(vm);
	vmx_set_sec(SEC_UNRESTRICTED);
}
MUT(guest_cr0_pe_clear) { vmw_clear(GUEST_CR0, CR0_PE); }
MUT(guest_cr0_pg_without_pe)
{
	need_unrestricted(vm);
	vmw_clear(GUEST_CR0, CR0_PE);
}
MUT(guest_cr0_ne) { vmw_clear(GUEST_CR0, CR0_NE); }
MUT(guest_cr0_high) { vmw_or(GUEST_CR0, 1ull << 32); }
MUT(guest_cr0_pg_ia32e)
{
	/* IA-32e mode guest with paging off (allowed by CR0 fixed bits only with unrestricted guest) */
	need_unrestricted(vm);
	vmw_clear(GUEST_CR0, CR0_PG);
}
MUT(guest_cr4_vmxe) { vmw_clear(GUEST_CR4, CR4_VMXE); }
MUT(guest_cr4_pae) { vmw_clear(GUEST_CR4, CR4_PAE); }
MUT(guest_cr3_beyond) { vmw(GUEST_CR3, vmx_unbacked_pa()); }
MUT(guest_dr7_high)
{
	need_entry_ctl(ENTRY_LOAD_DEBUG);
	vmx_set_entry(ENTRY_LOAD_DEBUG);
	vmw(GUEST_DR7, 0x400 | (1ull << 32));
}
MUT(guest_debugctl_reserved)
{
	need_entry_ctl(ENTRY_LOAD_DEBUG);
	vmx_set_entry(ENTRY_LOAD_DEBUG);
	vmw(GUEST_DEBUGCTL, 1ull << 32);
}
MUT(guest_sysenter_esp) { vmw(GUEST_SYSENTER_ESP, NONCANON); }
MUT(guest_sysenter_eip) { vmw(GUEST_SYSENTER_EIP, NONCANON); }
MUT(guest_efer_lma)
{
	need_entry_ctl(ENTRY_LOAD_EFER);
	vmx_set_entry(ENTRY_LOAD_EFER);
	vmw(GUEST_EFER, rdmsr(MSR_EFER) & ~EFER_LMA);
}
MUT(guest_efer_reserved)
{
	need_entry_ctl(ENTRY_LOAD_EFER);
	vmx_set_entry(ENTRY_LOAD_EFER);
	vmw(GUEST_EFER, rdmsr(MSR_EFER) | (1ull << 1));
}
MUT(guest_pat_invalid)
{
	need_entry_ctl(ENTRY_LOAD_PAT);
	vmx_set_entry(ENTRY_LOAD_PAT);
	vmw(GUEST_PAT, (rdmsr(MSR_IA32_PAT) & ~0xFFull) | 3); /* memory type 3 is reserved */
}
MUT(guest_tr_ti) { vmw(GUEST_TR_SEL, TSS_SEL | 4); }
MUT(guest_ldtr_ti)
{
	vmw(GUEST_LDTR_SEL, 0x54);
	vmw(GUEST_LDTR_AR, AR_LDT);
	vmw(GUEST_LDTR_LIMIT, 0xFFF);
}
MUT(guest_ldtr_bad_type)
{
	vmw(GUEST_LDTR_SEL, 0x50);
	vmw(GUEST_LDTR_AR, 0x83); /* a data segment, not an LDT */
	vmw(GUEST_LDTR_LIMIT, 0xFFF);
}
MUT(guest_ss_rpl) { vmw(GUEST_SS_SEL, KERNEL_DS | 3); }
MUT(guest_cs_type_data) { vmw(GUEST_CS_AR, (AR_CODE64 & ~0xFu) | 3); }
MUT(guest_cs_not_present) { vmw(GUEST_CS_AR, AR_CODE64 & ~0x80u); }
MUT(guest_cs_s_clear) { vmw(GUEST_CS_AR, AR_CODE64 & ~0x10u); }
MUT(guest_cs_ar_reserved) { vmw(GUEST_CS_AR, AR_CODE64 | 0x100); }
MUT(guest_cs_limit_g) { vmw(GUEST_CS_AR, AR_CODE64 & ~0x8000u); }
MUT(guest_cs_l_and_d) { vmw(GUEST_CS_AR, AR_CODE64 | 0x4000); }
MUT(guest_ss_type_code) { vmw(GUEST_SS_AR, (AR_DATA & ~0xFu) | 0xB); }
MUT(guest_ss_dpl3) { vmw(GUEST_SS_AR, AR_DATA | (3u << 5)); }
MUT(guest_ss_unusable_ok) { vmw(GUEST_SS_AR, AR_DATA | AR_UNUSABLE); }
MUT(guest_ds_exec_only) { vmw(GUEST_DS_AR, (AR_DATA & ~0xFu) | 0x9); }
MUT(guest_ds_not_accessed) { vmw(GUEST_DS_AR, AR_DATA & ~1u); }
MUT(guest_ds_unusable_ok) { vmw(GUEST_DS_AR, AR_UNUSABLE); }
MUT(guest_es_dpl_lt_rpl) { vmw(GUEST_ES_SEL, KERNEL_DS | 3); }
MUT(guest_fs_base) { vmw(GUEST_FS_BASE, NONCANON); }
MUT(guest_gs_base) { vmw(GUEST_GS_BASE, NONCANON); }
MUT(guest_tr_available) { vmw(GUEST_TR_AR, (AR_TSS64_BUSY & ~0xFu) | 9); }
MUT(guest_tr_unusable) { vmw(GUEST_TR_AR, AR_TSS64_BUSY | AR_UNUSABLE); }
MUT(guest_tr_s_set) { vmw(GUEST_TR_AR, AR_TSS64_BUSY | 0x10); }
MUT(guest_tr_limit_g) { vmw(GUEST_TR_AR, AR_TSS64_BUSY | 0x8000); }
MUT(guest_tr_base) { vmw(GUEST_TR_BASE, NONCANON); }
MUT(guest_gdtr_base) { vmw(GUEST_GDTR_BASE, NONCANON); }
MUT(guest_gdtr_limit) { vmw(GUEST_GDTR_LIMIT, 0x10000); }
MUT(guest_idtr_limit) { vmw(GUEST_IDTR_LIMIT, 0x10FFF); }
MUT(guest_rip_noncanonical) { vmw(GUEST_RIP, NONCANON); }
MUT(guest_rflags_bit1) { vmw(GUEST_RFLAGS, 0); }
MUT(guest_rflags_bit3) { vmw(GUEST_RFLAGS, RFLAGS_FIXED | (1ull << 3)); }
MUT(guest_rflags_bit63) { vmw(GUEST_RFLAGS, RFLAGS_FIXED | (1ull << 63)); }
MUT(guest_rflags_vm) { vmw(GUEST_RFLAGS, RFLAGS_FIXED | (1ull << 17)); }
MUT(guest_extint_if0)
{
	inject(INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x40, 0, 0);
	vmw(GUEST_RFLAGS, RFLAGS_FIXED);
}
MUT(guest_activity_4) { vmw(GUEST_ACTIVITY, 4); }
MUT(guest_activity_unsupported)
{
	uint64_t m = vmx_caps.misc;
	if (!(m & MISC_ACT_SIPI))
		vmw(GUEST_ACTIVITY, ACTIVITY_WAIT_SIPI);
	else if (!(m & MISC_ACT_SHUTDOWN))
		vmw(GUEST_ACTIVITY, ACTIVITY_SHUTDOWN);
	else if (!(m & MISC_ACT_HLT))
		vmw(GUEST_ACTIVITY, ACTIVITY_HLT);
	else
		test_skip("not applicable: every activity state is supported");
}
MUT(guest_intr_reserved) { vmw(GUEST_INTERRUPTIBILITY, 1u << 5); }
MUT(guest_intr_enclave)
{
	/* bit 4, enclave interruption, must be 0 without SGX (SDM 3C §26.3.1.5) */
	if (cpuid(0, 0).eax >= 7 && cpuid(7, 0).ebx & (1u << 2))
		test_skip("not applicable: the processor has SGX");
	vmw(GUEST_INTERRUPTIBILITY, 1u << 4);
}
MUT(guest_pae_pdpte_reserved)
{
	/* A PAE guest without EPT: VM entry loads the four PDPTEs CR3 points to, and a present one
	 * with reserved bits (R/W, bit 1) fails the entry with qualification 2 (§26.3.1.6, §26.8) */
	uint64_t *pdpt = vmx_page_alloc();
	pdpt[0] = (uint64_t)vmx_page_alloc() | 1 | 2;
	vmw(GUEST_CR3, (uint64_t)pdpt);
	vmw(VMCS_ENTRY_CTLS, vmr(VMCS_ENTRY_CTLS) & ~(uint64_t)ENTRY_IA32E);
}
MUT(guest_intr_sti_movss)
{
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS);
}
MUT(guest_intr_sti_if0) { vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_STI); }
MUT(guest_intr_sti_ok)
{
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
	vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_STI);
}
MUT(guest_intr_smi) { vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_SMI); }
MUT(guest_intr_sti_inject_extint)
{
	inject(INTR_INFO_VALID | INTR_TYPE_EXTINT | 0x40, 0, 0);
	vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_STI);
}
MUT(guest_intr_movss_inject_nmi)
{
	inject(INTR_INFO_VALID | INTR_TYPE_NMI | 2, 0, 0);
	vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_MOV_SS);
}
MUT(guest_pending_dbg_reserved) { vmw(GUEST_PENDING_DBG, 1ull << 4); }
MUT(guest_pending_dbg_bs_missing)
{
	/* blocking by STI and RFLAGS.TF = 1 (BTF = 0): BS must be 1 (SDM 3C §26.3.1.5) */
	vmw(GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_TF);
	vmw(GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_STI);
	vmw(GUEST_PENDING_DBG, 0);
}
MUT(guest_link_misaligned) { vmw(GUEST_LINK_PTR, vmx_new_vmcs() + 0x40); }
MUT(guest_link_bad_revision)
{
	uint64_t r = vmx_new_vmcs();
	*(uint32_t *)r = vmx_caps.revision ^ 2;
	vmw(GUEST_LINK_PTR, r);
}
MUT(guest_link_shadow_bit)
{
	uint64_t r = vmx_new_vmcs();
	*(uint32_t *)r = vmx_caps.revision | 0x80000000u;
	vmw(GUEST_LINK_PTR, r);
}
MUT(guest_link_valid_ok) { vmw(GUEST_LINK_PTR, vmx_new_vmcs()); }

/* ---- MSR loading ---- */
struct msr_entry {
	uint32_t index, reserved;
	uint64_t value;
};
static struct msr_entry *msr_list(unsigned n)
{
	struct msr_entry *l = vmx_page_alloc();
	vmw(VMCS_ENTRY_MSR_LOAD_ADDR, (uint64_t)l);
	vmw(VMCS_ENTRY_MSR_LOAD_COUNT, n);
	return l;
}
MUT(msr_load_x2apic) { *msr_list(1) = (struct msr_entry){ 0x808, 0, 0 }; }
MUT(msr_load_fs_base) { *msr_list(1) = (struct msr_entry){ MSR_FS_BASE, 0, 0 }; }
MUT(msr_load_second_bad)
{
	struct msr_entry *l = msr_list(3);
	l[0] = (struct msr_entry){ MSR_KERNEL_GS_BASE, 0, rdmsr(MSR_KERNEL_GS_BASE) };
	l[1] = (struct msr_entry){ MSR_GS_BASE, 0, 0 };
	l[2] = (struct msr_entry){ MSR_KERNEL_GS_BASE, 0, 0 };
}
MUT(msr_load_reserved_bits) { *msr_list(1) = (struct msr_entry){ MSR_KERNEL_GS_BASE, 1, 0 }; }
MUT(msr_load_smm_only)
{
	/* an MSR writable only in SMM: the SDM names IA32_SMM_MONITOR_CTL (§26.4) */
	*msr_list(1) = (struct msr_entry){ 0x9B, 0, 0 };
}

static const struct entry_case cases[] = {
	{ "entry_ctl_pin_reserved_bit", mut_pin_reserved, CTL, 0 },
	{ "entry_ctl_pin_fixed1_bit_clear", mut_pin_fixed1_clear, CTL, 0 },
	{ "entry_ctl_proc_reserved_bit", mut_proc_reserved, CTL, 0 },
	{ "entry_ctl_proc_fixed1_bit_clear", mut_proc_fixed1_clear, CTL, 0 },
	{ "entry_ctl_proc2_reserved_bit", mut_proc2_reserved, CTL, 0 },
	{ "entry_ctl_exit_reserved_bit", mut_exit_reserved, CTL, 0 },
	{ "entry_ctl_exit_fixed1_bit_clear", mut_exit_fixed1_clear, CTL, 0 },
	{ "entry_ctl_entry_reserved_bit", mut_entry_reserved, CTL, 0 },
	{ "entry_ctl_entry_fixed1_bit_clear", mut_entry_fixed1_clear, CTL, 0 },
	{ "entry_ctl_cr3_target_count_too_big", mut_cr3_target_count, CTL, 0 },
	{ "entry_ctl_io_bitmap_a_misaligned", mut_io_bitmap_a_misaligned, CTL, 0 },
	{ "entry_ctl_io_bitmap_b_beyond_width", mut_io_bitmap_b_beyond, CTL, 0 },
	{ "entry_ctl_msr_bitmap_misaligned", mut_msr_bitmap_misaligned, CTL, 0 },
	{ "entry_ctl_msr_bitmap_beyond_width", mut_msr_bitmap_beyond, CTL, 0 },
	{ "entry_ctl_nmi_window_without_virtual_nmis", mut_nmi_window_without_vnmi, CTL, 0 },
	{ "entry_ctl_virtual_nmis_without_nmi_exiting", mut_vnmi_without_nmi_exit, CTL, 0 },
	{ "entry_ctl_virtual_apic_misaligned", mut_vapic_misaligned, CTL, 0 },
	{ "entry_ctl_tpr_threshold_reserved_bits", mut_tpr_threshold_reserved, CTL, 0 },
	{ "entry_ctl_tpr_threshold_above_vtpr", mut_tpr_threshold_above_vtpr, CTL, 0 },
	{ "entry_ctl_tpr_shadow_valid", mut_tpr_shadow_ok, OK, 0 },
	{ "entry_ctl_eptp_memory_type", mut_ept_memtype, CTL, 0 },
	{ "entry_ctl_eptp_walk_length", mut_ept_walk_length, CTL, 0 },
	{ "entry_ctl_eptp_reserved_bit", mut_ept_reserved_bit, CTL, 0 },
	{ "entry_ctl_eptp_ad_unsupported", mut_ept_ad_unsupported, CTL, 0 },
	{ "entry_ctl_eptp_beyond_width", mut_ept_beyond, CTL, 0 },
	{ "entry_ctl_eptp_valid", mut_ept_ok, OK, 0 },
	{ "entry_ctl_unrestricted_without_ept", mut_unrestricted_without_ept, CTL, 0 },
	{ "entry_ctl_vpid_zero", mut_vpid_zero, CTL, 0 },
	{ "entry_ctl_vpid_valid", mut_vpid_ok, OK, 0 },
	{ "entry_ctl_pml_without_ept", mut_pml_without_ept, CTL, 0 },
	{ "entry_ctl_vintr_without_extint_exiting", mut_vintr_without_extint_exit, CTL, 0 },
	{ "entry_ctl_x2apic_without_tpr_shadow", mut_x2apic_without_tpr_shadow, CTL, 0 },
	{ "entry_ctl_x2apic_with_apic_access", mut_x2apic_with_apic_access, CTL, 0 },
	{ "entry_ctl_apic_access_misaligned", mut_apic_access_misaligned, CTL, 0 },
	{ "entry_ctl_posted_without_vintr", mut_posted_without_vintr, CTL, 0 },
	{ "entry_ctl_save_preempt_without_timer", mut_save_preempt_without_timer, CTL, 0 },
	{ "entry_ctl_vmread_bitmap_misaligned", mut_shadow_bitmap_misaligned, CTL, 0 },
	{ "entry_ctl_exit_msr_store_misaligned", mut_exit_msr_store_misaligned, CTL, 0 },
	{ "entry_ctl_exit_msr_load_misaligned", mut_exit_msr_load_misaligned, CTL, 0 },
	{ "entry_ctl_entry_msr_load_misaligned", mut_entry_msr_load_misaligned, CTL, 0 },
	{ "entry_ctl_entry_msr_load_beyond_width", mut_entry_msr_load_beyond, CTL, 0 },
	{ "entry_ctl_entry_to_smm", mut_entry_to_smm, CTL, 0 },
	{ "entry_ctl_deactivate_dual_monitor", mut_entry_deactivate_dual, CTL, 0 },
	{ "entry_ctl_inject_reserved_type", mut_inject_type1, CTL, 0 },
	{ "entry_ctl_inject_nmi_vector_not_2", mut_inject_nmi_vector3, CTL, 0 },
	{ "entry_ctl_inject_exception_vector_32", mut_inject_hw_vector32, CTL, 0 },
	{ "entry_ctl_inject_reserved_bits", mut_inject_reserved_bits, CTL, 0 },
	{ "entry_ctl_inject_ud_with_error_code", mut_inject_ud_with_errcode, CTL, 0 },
	{ "entry_ctl_inject_gp_without_error_code", mut_inject_gp_without_errcode, CTL, 0 },
	{ "entry_ctl_inject_error_code_bits_31_16", mut_inject_errcode_high_bits, CTL, 0 },
	{ "entry_ctl_inject_swint_length_0", mut_inject_swint_len0, CTL, 0 },
	{ "entry_ctl_inject_swint_length_16", mut_inject_swint_len16, CTL, 0 },
	{ "entry_ctl_inject_other_event_vector_1", mut_inject_other_vector1, CTL, 0 },

	{ "entry_host_cr0_ne_clear", mut_host_cr0_ne, HOST, 0 },
	{ "entry_host_cr0_pg_clear", mut_host_cr0_pg, HOST, 0 },
	{ "entry_host_cr4_vmxe_clear", mut_host_cr4_vmxe, HOST, 0 },
	{ "entry_host_cr4_pae_clear", mut_host_cr4_pae, HOST, 0 },
	{ "entry_host_cr3_beyond_width", mut_host_cr3_beyond, HOST, 0 },
	{ "entry_host_rip_noncanonical", mut_host_rip_noncanonical, HOST, 0 },
	{ "entry_host_sysenter_esp_noncanonical", mut_host_sysenter_esp, HOST, 0 },
	{ "entry_host_sysenter_eip_noncanonical", mut_host_sysenter_eip, HOST, 0 },
	{ "entry_host_cs_selector_0", mut_host_cs_zero, HOST, 0 },
	{ "entry_host_tr_selector_0", mut_host_tr_zero, HOST, 0 },
	{ "entry_host_ds_rpl_3", mut_host_ds_rpl3, HOST, 0 },
	{ "entry_host_ss_ti_1", mut_host_ss_ti, HOST, 0 },
	{ "entry_host_fs_base_noncanonical", mut_host_fs_base, HOST, 0 },
	{ "entry_host_gs_base_noncanonical", mut_host_gs_base, HOST, 0 },
	{ "entry_host_tr_base_noncanonical", mut_host_tr_base, HOST, 0 },
	{ "entry_host_gdtr_base_noncanonical", mut_host_gdtr_base, HOST, 0 },
	{ "entry_host_idtr_base_noncanonical", mut_host_idtr_base, HOST, 0 },
	{ "entry_host_address_space_size_0", mut_host_addr_size_0, HOST, 0 },
	{ "entry_host_ss_selector_0_valid", mut_host_ss_zero_ok, OK, 0 },
	{ "entry_host_efer_reserved_bit", mut_host_efer_reserved, HOST, 0 },
	{ "entry_host_efer_lma_mismatch", mut_host_efer_lma, HOST, 0 },
	{ "entry_host_pat_invalid_type", mut_host_pat_invalid, HOST, 0 },

	{ "entry_guest_cr0_pe_clear", mut_guest_cr0_pe_clear, GUEST, 0 },
	{ "entry_guest_cr0_pg_without_pe", mut_guest_cr0_pg_without_pe, GUEST, 0 },
	{ "entry_guest_cr0_ne_clear", mut_guest_cr0_ne, GUEST, 0 },
	{ "entry_guest_cr0_bit_32", mut_guest_cr0_high, GUEST, 0 },
	{ "entry_guest_ia32e_paging_off", mut_guest_cr0_pg_ia32e, GUEST, 0 },
	{ "entry_guest_cr4_vmxe_clear", mut_guest_cr4_vmxe, GUEST, 0 },
	{ "entry_guest_cr4_pae_clear_ia32e", mut_guest_cr4_pae, GUEST, 0 },
	{ "entry_guest_cr3_beyond_width", mut_guest_cr3_beyond, GUEST, 0 },
	{ "entry_guest_dr7_bits_63_32", mut_guest_dr7_high, GUEST, 0 },
	{ "entry_guest_debugctl_reserved", mut_guest_debugctl_reserved, GUEST, 0 },
	{ "entry_guest_sysenter_esp_noncanonical", mut_guest_sysenter_esp, GUEST, 0 },
	{ "entry_guest_sysenter_eip_noncanonical", mut_guest_sysenter_eip, GUEST, 0 },
	{ "entry_guest_efer_lma_mismatch", mut_guest_efer_lma, GUEST, 0 },
	{ "entry_guest_efer_reserved_bit", mut_guest_efer_reserved, GUEST, 0 },
	{ "entry_guest_pat_invalid_type", mut_guest_pat_invalid, GUEST, 0 },
	{ "entry_guest_tr_ti_1", mut_guest_tr_ti, GUEST, 0 },
	{ "entry_guest_ldtr_ti_1", mut_guest_ldtr_ti, GUEST, 0 },
	{ "entry_guest_ldtr_not_ldt_type", mut_guest_ldtr_bad_type, GUEST, 0 },
	{ "entry_guest_ss_rpl_ne_cs_rpl", mut_guest_ss_rpl, GUEST, 0 },
	{ "entry_guest_cs_data_type", mut_guest_cs_type_data, GUEST, 0 },
	{ "entry_guest_cs_not_present", mut_guest_cs_not_present, GUEST, 0 },
	{ "entry_guest_cs_s_clear", mut_guest_cs_s_clear, GUEST, 0 },
	{ "entry_guest_cs_ar_reserved_bits", mut_guest_cs_ar_reserved, GUEST, 0 },
	{ "entry_guest_cs_limit_needs_g", mut_guest_cs_limit_g, GUEST, 0 },
	{ "entry_guest_cs_l_and_d", mut_guest_cs_l_and_d, GUEST, 0 },
	{ "entry_guest_ss_code_type", mut_guest_ss_type_code, GUEST, 0 },
	{ "entry_guest_ss_dpl_ne_rpl", mut_guest_ss_dpl3, GUEST, 0 },
	{ "entry_guest_ss_unusable_valid", mut_guest_ss_unusable_ok, OK, 0 },
	{ "entry_guest_ds_execute_only", mut_guest_ds_exec_only, GUEST, 0 },
	{ "entry_guest_ds_not_accessed", mut_guest_ds_not_accessed, GUEST, 0 },
	{ "entry_guest_ds_unusable_valid", mut_guest_ds_unusable_ok, OK, 0 },
	{ "entry_guest_es_dpl_lt_rpl", mut_guest_es_dpl_lt_rpl, GUEST, 0 },
	{ "entry_guest_fs_base_noncanonical", mut_guest_fs_base, GUEST, 0 },
	{ "entry_guest_gs_base_noncanonical", mut_guest_gs_base, GUEST, 0 },
	{ "entry_guest_tr_not_busy", mut_guest_tr_available, GUEST, 0 },
	{ "entry_guest_tr_unusable", mut_guest_tr_unusable, GUEST, 0 },
	{ "entry_guest_tr_s_set", mut_guest_tr_s_set, GUEST, 0 },
	{ "entry_guest_tr_limit_granularity", mut_guest_tr_limit_g, GUEST, 0 },
	{ "entry_guest_tr_base_noncanonical", mut_guest_tr_base, GUEST, 0 },
	{ "entry_guest_gdtr_base_noncanonical", mut_guest_gdtr_base, GUEST, 0 },
	{ "entry_guest_gdtr_limit_bits_31_16", mut_guest_gdtr_limit, GUEST, 0 },
	{ "entry_guest_idtr_limit_bits_31_16", mut_guest_idtr_limit, GUEST, 0 },
	{ "entry_guest_rip_noncanonical", mut_guest_rip_noncanonical, GUEST, 0 },
	{ "entry_guest_rflags_bit1_clear", mut_guest_rflags_bit1, GUEST, 0 },
	{ "entry_guest_rflags_bit3_set", mut_guest_rflags_bit3, GUEST, 0 },
	{ "entry_guest_rflags_bit63_set", mut_guest_rflags_bit63, GUEST, 0 },
	{ "entry_guest_rflags_vm_ia32e", mut_guest_rflags_vm, GUEST, 0 },
	{ "entry_guest_extint_injection_if0", mut_guest_extint_if0, GUEST, 0 },
	{ "entry_guest_activity_state_4", mut_guest_activity_4, GUEST, 0 },
	{ "entry_guest_activity_state_unsupported", mut_guest_activity_unsupported, GUEST, 0 },
	{ "entry_guest_interruptibility_reserved", mut_guest_intr_reserved, GUEST, 0 },
	{ "entry_guest_interruptibility_enclave_without_sgx", mut_guest_intr_enclave, GUEST, 0 },
	{ "entry_guest_pae_pdpte_reserved_bits_without_ept", mut_guest_pae_pdpte_reserved, GUEST, 2 },
	{ "entry_guest_interruptibility_sti_and_movss", mut_guest_intr_sti_movss, GUEST, 0 },
	{ "entry_guest_interruptibility_sti_if0", mut_guest_intr_sti_if0, GUEST, 0 },
	{ "entry_guest_interruptibility_sti_valid", mut_guest_intr_sti_ok, OK, 0 },
	{ "entry_guest_interruptibility_smi_outside_smm", mut_guest_intr_smi, GUEST, 0 },
	{ "entry_guest_inject_extint_sti_blocking", mut_guest_intr_sti_inject_extint, GUEST, 0 },
	{ "entry_guest_inject_nmi_movss_blocking", mut_guest_intr_movss_inject_nmi, GUEST, 0 },
	{ "entry_guest_pending_dbg_reserved", mut_guest_pending_dbg_reserved, GUEST, 0 },
	{ "entry_guest_pending_dbg_bs_with_tf", mut_guest_pending_dbg_bs_missing, GUEST, 0 },
	{ "entry_guest_link_pointer_misaligned", mut_guest_link_misaligned, GUEST, 4 },
	{ "entry_guest_link_pointer_bad_revision", mut_guest_link_bad_revision, GUEST, 4 },
	{ "entry_guest_link_pointer_shadow_bit", mut_guest_link_shadow_bit, GUEST, 4 },
	{ "entry_guest_link_pointer_valid", mut_guest_link_valid_ok, OK, 0 },

	{ "entry_msr_load_x2apic_msr", mut_msr_load_x2apic, MSRLOAD, 1 },
	{ "entry_msr_load_fs_base", mut_msr_load_fs_base, MSRLOAD, 1 },
	{ "entry_msr_load_second_entry_bad", mut_msr_load_second_bad, MSRLOAD, 2 },
	{ "entry_msr_load_reserved_bits", mut_msr_load_reserved_bits, MSRLOAD, 1 },
	{ "entry_msr_load_smm_monitor_ctl", mut_msr_load_smm_only, MSRLOAD, 1 },
};

static const struct entry_case *cur_case;

static void entry_case_run(void)
{
	const struct entry_case *c = cur_case;
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	c->mut(&vm);
	int r = vmx_vm_run(&vm, &e);
	switch (c->kind) {
	case OK:
		EXPECT_GUEST_DONE(vm, e);
		break;
	case CTL:
	case HOST: {
		int want = c->kind == CTL ? VMERR_ENTRY_BAD_CONTROLS : VMERR_ENTRY_BAD_HOST;
		EXPECTF(r == want, "VM entry: %s %d (exit reason 0x%x qual 0x%lx), want VMfailValid(%d)",
			r == VMX_EXITED ? "exited, status" : "result", r, e.reason, e.qual, want);
		if (r > 0)
			EXPECT_EQ(vmr(VMCS_INSN_ERROR), (uint64_t)want);
		break;
	}
	case GUEST:
	case MSRLOAD: {
		uint32_t want = EXIT_REASON_ENTRY_FAIL | (c->kind == GUEST ? EXIT_INVALID_GUEST : EXIT_MSR_LOADING);
		EXPECTF(r == VMX_EXITED && e.reason == want && e.qual == c->qual,
			"VM entry: result %d exit reason 0x%x qual 0x%lx, want exit 0x%x qual %u", r, e.reason, e.qual, want,
			c->qual);
		break;
	}
	}
}

/* ---- state loaded and saved by VM entry and VM exit ---- */

SNIPPET(g_rdmsr_kgs, "mov $0xC0000102, %ecx\n rdmsr\n vmcall\n ud2")
SNIPPET(g_set_kgs, "mov $0xC0000102, %ecx\n mov $0x5555000, %eax\n xor %edx, %edx\n wrmsr\n vmcall\n ud2")
SNIPPET(g_rdmsr_fs, "mov $0xC0000100, %ecx\n rdmsr\n vmcall\n ud2")
SNIPPET(g_read_dr7, "mov %dr7, %rax\n vmcall\n ud2")
SNIPPET(g_write_dr7, "mov $0x403, %eax\n mov %rax, %dr7\n vmcall\n ud2")
SNIPPET(g_rdmsr_efer, "mov $0xC0000080, %ecx\n rdmsr\n vmcall\n ud2")
SNIPPET(g_rdmsr_pat, "mov $0x277, %ecx\n rdmsr\n vmcall\n ud2")
SNIPPET(g_set_regs, "mov $0x1111, %eax\n mov $0x2222, %ebx\n mov $0x3333, %ecx\n mov $0x4444, %edx\n"
		    "mov $0x5555, %esi\n mov $0x6666, %edi\n mov $0x7777, %ebp\n mov $0x8888, %r8d\n"
		    "mov $0xFFFF, %r15d\n stc\n vmcall\n ud2")

static uint64_t edx_eax(const struct vmx_vm *vm) { return (vm->regs.rdx << 32) | (uint32_t)vm->regs.rax; }

TEST(entry_msr_load_list_applied)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_kgs);
	uint64_t host = rdmsr(MSR_KERNEL_GS_BASE);
	*msr_list(1) = (struct msr_entry){ MSR_KERNEL_GS_BASE, 0, 0x123456789000ull };
	vmx_vm_run(&vm, &e);
	uint64_t after = rdmsr(MSR_KERNEL_GS_BASE);
	wrmsr(MSR_KERNEL_GS_BASE, host);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(edx_eax(&vm), 0x123456789000ull);
	/* nothing restores it on exit unless the exit MSR-load list does */
	EXPECT_EQ(after, 0x123456789000ull);
}

TEST(exit_msr_store_and_load_lists)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_set_kgs);
	uint64_t host = rdmsr(MSR_KERNEL_GS_BASE);
	struct msr_entry *store = vmx_page_alloc(), *load = vmx_page_alloc();
	store[0] = (struct msr_entry){ MSR_KERNEL_GS_BASE, 0, 0 };
	load[0] = (struct msr_entry){ MSR_KERNEL_GS_BASE, 0, 0xABC000 };
	vmw(VMCS_EXIT_MSR_STORE_ADDR, (uint64_t)store);
	vmw(VMCS_EXIT_MSR_STORE_COUNT, 1);
	vmw(VMCS_EXIT_MSR_LOAD_ADDR, (uint64_t)load);
	vmw(VMCS_EXIT_MSR_LOAD_COUNT, 1);
	vmx_vm_run(&vm, &e);
	uint64_t after = rdmsr(MSR_KERNEL_GS_BASE);
	wrmsr(MSR_KERNEL_GS_BASE, host);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(store[0].value, 0x5555000);
	EXPECT_EQ(after, 0xABC000);
}

TEST(entry_loads_guest_fs_base)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_fs);
	vmw(GUEST_FS_BASE, 0x7654321000ull);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(edx_eax(&vm), 0x7654321000ull);
}

TEST(exit_loads_host_fs_base)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	uint64_t fs = rdmsr(MSR_FS_BASE);
	vmw(HOST_FS_BASE, 0x13579000ull);
	vmx_vm_run(&vm, &e);
	uint64_t after = rdmsr(MSR_FS_BASE);
	wrmsr(MSR_FS_BASE, fs);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(after, 0x13579000ull);
}

TEST(exit_saves_guest_registers)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_set_regs);
	vmx_vm_run(&vm, &e);
	ASSERT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rax, 0x1111);
	EXPECT_EQ(vm.regs.rbx, 0x2222);
	EXPECT_EQ(vm.regs.rcx, 0x3333);
	EXPECT_EQ(vm.regs.rdx, 0x4444);
	EXPECT_EQ(vm.regs.rsi, 0x5555);
	EXPECT_EQ(vm.regs.rdi, 0x6666);
	EXPECT_EQ(vm.regs.rbp, 0x7777);
	EXPECT_EQ(vm.regs.r8, 0x8888);
	EXPECT_EQ(vm.regs.r15, 0xFFFF);
	EXPECTF(e.guest_rflags & RFLAGS_CF, "guest RFLAGS 0x%lx lacks CF", e.guest_rflags);
	EXPECT_EQ(e.guest_rsp, (uint64_t)vm.stack + VMX_GUEST_STACK_SIZE - 8);
}

TEST(entry_loads_guest_registers)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return + 5); /* straight to its VMCALL, RAX untouched */
	vm.regs.rax = 0xAAAA0001;
	vm.regs.r12 = 0xC12;
	vmx_vm_run(&vm, &e);
	ASSERT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rax, 0xAAAA0001);
	EXPECT_EQ(vm.regs.r12, 0xC12);
}

TEST(entry_loads_dr7_exit_resets_it)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_read_dr7);
	need_entry_ctl(ENTRY_LOAD_DEBUG);
	vmx_set_entry(ENTRY_LOAD_DEBUG);
	vmw(GUEST_DR7, 0x401);
	vmx_vm_run(&vm, &e);
	uint64_t dr7;
	asm volatile("mov %%dr7, %0" : "=r"(dr7));
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vm.regs.rax, 0x401);
	/* SDM 3C §27.5.1: DR7 is 400H after every VM exit */
	EXPECT_EQ(dr7, 0x400);
}

TEST(exit_saves_dr7)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_write_dr7);
	need_exit_ctl(EXIT_SAVE_DEBUG);
	vmx_set_exit(EXIT_SAVE_DEBUG);
	vmx_vm_run(&vm, &e);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(vmr(GUEST_DR7), 0x403);
}

TEST(entry_loads_efer)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_efer);
	need_entry_ctl(ENTRY_LOAD_EFER);
	if (!cpu_has_nx())
		test_skip("not supported: EFER.NXE");
	uint64_t efer = rdmsr(MSR_EFER);
	vmx_set_entry(ENTRY_LOAD_EFER);
	vmw(GUEST_EFER, efer ^ EFER_NXE);
	if (vmx_set_exit(EXIT_LOAD_EFER))
		vmw(HOST_EFER, efer);
	vmx_vm_run(&vm, &e);
	uint64_t after = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(edx_eax(&vm), efer ^ EFER_NXE);
	if (vmx_can1(&vmx_caps.exit, EXIT_LOAD_EFER))
		EXPECT_EQ(after, efer);
}

TEST(exit_saves_efer)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	need_exit_ctl(EXIT_SAVE_EFER);
	vmx_set_exit(EXIT_SAVE_EFER);
	vmw(GUEST_EFER, 0);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(vmr(GUEST_EFER), rdmsr(MSR_EFER));
}

TEST(entry_loads_pat_exit_restores)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, g_rdmsr_pat);
	need_entry_ctl(ENTRY_LOAD_PAT);
	need_exit_ctl(EXIT_LOAD_PAT);
	uint64_t pat = rdmsr(MSR_IA32_PAT);
	uint64_t gpat = 0x0606060606060606ull; /* all WB */
	vmx_set_entry(ENTRY_LOAD_PAT);
	vmx_set_exit(EXIT_LOAD_PAT);
	vmw(GUEST_PAT, gpat);
	vmw(HOST_PAT, pat);
	vmx_vm_run(&vm, &e);
	uint64_t after = rdmsr(MSR_IA32_PAT);
	wrmsr(MSR_IA32_PAT, pat);
	EXPECT_EXIT(e, EXIT_VMCALL);
	EXPECT_EQ(edx_eax(&vm), gpat);
	EXPECT_EQ(after, pat);
}

TEST(exit_host_state_loaded)
{
	struct vmx_vm vm;
	struct vmx_exit e;
	vm_setup(&vm, vmx_guest_return);
	vmw(GUEST_GDTR_LIMIT, 0x17);
	vmw(GUEST_IDTR_LIMIT, 0xFFF);
	vmx_vm_run(&vm, &e);
	EXPECT_GUEST_DONE(vm, e);
	EXPECT_EQ(read_cs(), KERNEL_CS);
	EXPECT_EQ(read_ss(), KERNEL_DS);
	EXPECT_EQ(read_cr3(), vmr(HOST_CR3));
	EXPECT_EQ(read_cr4(), vmr(HOST_CR4));
	/* the guest's GDTR/IDTR limits were saved */
	EXPECT_EQ(vmr(GUEST_GDTR_LIMIT), 0x17);
	EXPECT_EQ(vmr(GUEST_IDTR_LIMIT), 0xFFF);
}

void vmx_entry_tests(void)
{
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		cur_case = &cases[i];
		vt_run(cases[i].name, entry_case_run);
	}
	RUN(entry_msr_load_list_applied);
	RUN(exit_msr_store_and_load_lists);
	RUN(entry_loads_guest_fs_base);
	RUN(exit_loads_host_fs_base);
	RUN(exit_saves_guest_registers);
	RUN(entry_loads_guest_registers);
	RUN(entry_loads_dr7_exit_resets_it);
	RUN(exit_saves_dr7);
	RUN(entry_loads_efer);
	RUN(exit_saves_efer);
	RUN(entry_loads_pat_exit_restores);
	RUN(exit_host_state_loaded);
}
