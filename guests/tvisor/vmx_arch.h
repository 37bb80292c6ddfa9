/* tvisor: the VT-x architecture it programs, from the Intel SDM Vol. 3C (chapters 24-28 and
 * Appendices A-C): capability MSRs, control bits, VMCS field encodings, exit reasons, EPT
 * bits, and the VMX instructions as inline functions.
 *
 * tvisor keeps its own copy instead of sharing include/vmx.h (the conformance suite's header),
 * so the two can evolve separately. Nothing here describes one particular processor: what a
 * CPU supports is always read from the capability MSRs at run time. */
#ifndef TVISOR_VMX_ARCH_H
#define TVISOR_VMX_ARCH_H

#include "types.h"

/* ---- MSRs ---- */
#define MSR_FEATURE_CONTROL 0x3A
#define FC_LOCK (1ull << 0)
#define FC_VMX_OUTSIDE_SMX (1ull << 2)
#define MSR_APIC_BASE 0x1B
#define MSR_TSC 0x10
#define MSR_PLATFORM_ID 0x17
#define MSR_BIOS_SIGN_ID 0x8B
#define MSR_MTRRCAP 0xFE
#define MSR_MCG_CAP 0x179
#define MSR_MCG_STATUS 0x17A
#define MSR_MISC_ENABLE 0x1A0
#define MSR_MTRR_PHYSBASE0 0x200
#define MSR_MTRR_PHYSMASK9 0x213
#define MSR_MTRR_FIX64K 0x250
#define MSR_MTRR_FIX16K_80000 0x258
#define MSR_MTRR_FIX16K_A0000 0x259
#define MSR_MTRR_FIX4K_C0000 0x268
#define MSR_MTRR_FIX4K_F8000 0x26F
#define MSR_PAT 0x277
#define MSR_MTRR_DEF_TYPE 0x2FF
#define MSR_DEBUGCTL 0x1D9
#define MSR_TSC_AUX 0xC0000103
#define MSR_TSC_ADJUST 0x3B

#define MSR_VMX_BASIC 0x480
#define MSR_VMX_PINBASED 0x481
#define MSR_VMX_PROCBASED 0x482
#define MSR_VMX_EXIT 0x483
#define MSR_VMX_ENTRY 0x484
#define MSR_VMX_MISC 0x485
#define MSR_VMX_CR0_FIXED0 0x486
#define MSR_VMX_CR0_FIXED1 0x487
#define MSR_VMX_CR4_FIXED0 0x488
#define MSR_VMX_CR4_FIXED1 0x489
#define MSR_VMX_PROCBASED2 0x48B
#define MSR_VMX_EPT_VPID_CAP 0x48C
#define MSR_VMX_TRUE_PINBASED 0x48D
#define MSR_VMX_TRUE_PROCBASED 0x48E
#define MSR_VMX_TRUE_EXIT 0x48F
#define MSR_VMX_TRUE_ENTRY 0x490
#define MSR_VMX_FIRST 0x480
#define MSR_VMX_LAST 0x491

/* IA32_VMX_BASIC (A.1) */
#define VMX_BASIC_REVISION(b) ((uint32_t)((b)&0x7FFFFFFF))
#define VMX_BASIC_INS_OUTS_INFO (1ull << 54)
#define VMX_BASIC_TRUE_CTLS (1ull << 55)
/* IA32_VMX_MISC (A.6) */
#define VMX_MISC_PREEMPT_RATE(m) ((unsigned)((m)&0x1F))
#define VMX_MISC_UNRESTRICTED_LMA (1ull << 5)

/* IA32_VMX_EPT_VPID_CAP (A.10) */
#define EPTCAP_PWL4 (1ull << 6)
#define EPTCAP_UC (1ull << 8)
#define EPTCAP_WB (1ull << 14)
#define EPTCAP_2M (1ull << 16)
#define EPTCAP_INVEPT (1ull << 20)
#define EPTCAP_INVEPT_SINGLE (1ull << 25)
#define EPTCAP_INVEPT_ALL (1ull << 26)
#define VPIDCAP_INVVPID (1ull << 32)
#define VPIDCAP_SINGLE (1ull << 41)
#define VPIDCAP_ALL (1ull << 42)

/* CR bits not in x86.h */
#define CR4_VME (1ull << 0)
#define CR4_PVI (1ull << 1)
#define CR4_TSD (1ull << 2)
#define CR4_DE (1ull << 3)
#define CR4_MCE (1ull << 6)
#define CR4_PCE (1ull << 8)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_UMIP (1ull << 11)
#define CR4_LA57 (1ull << 12)
#define CR4_VMXE (1ull << 13)
#define CR4_SMXE (1ull << 14)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_PKE (1ull << 22)

/* ---- controls (SDM 3C §24.6-24.8) ---- */
#define PIN_EXTINT (1u << 0)
#define PIN_NMI (1u << 3)
#define PIN_VNMI (1u << 5)
#define PIN_PREEMPT (1u << 6)

#define PROC_INTR_WINDOW (1u << 2)
#define PROC_TSC_OFFSET (1u << 3)
#define PROC_HLT (1u << 7)
#define PROC_INVLPG (1u << 9)
#define PROC_MWAIT (1u << 10)
#define PROC_RDPMC (1u << 11)
#define PROC_RDTSC (1u << 12)
#define PROC_CR3_LOAD (1u << 15)
#define PROC_CR3_STORE (1u << 16)
#define PROC_CR8_LOAD (1u << 19)
#define PROC_CR8_STORE (1u << 20)
#define PROC_NMI_WINDOW (1u << 22)
#define PROC_MOV_DR (1u << 23)
#define PROC_UNCOND_IO (1u << 24)
#define PROC_IO_BITMAPS (1u << 25)
#define PROC_MTF (1u << 27)
#define PROC_MSR_BITMAPS (1u << 28)
#define PROC_MONITOR (1u << 29)
#define PROC_PAUSE (1u << 30)
#define PROC_SECONDARY (1u << 31)

#define PROC2_EPT (1u << 1)
#define PROC2_DESC_TABLE (1u << 2)
#define PROC2_RDTSCP (1u << 3)
#define PROC2_VPID (1u << 5)
#define PROC2_WBINVD (1u << 6)
#define PROC2_UNRESTRICTED (1u << 7)
#define PROC2_RDRAND (1u << 11)
#define PROC2_INVPCID (1u << 12)
#define PROC2_VMFUNC (1u << 13)
#define PROC2_RDSEED (1u << 16)
#define PROC2_XSAVES (1u << 20)

#define EXITC_HOST_64 (1u << 9)
#define EXITC_ACK_INTR (1u << 15)
#define EXITC_SAVE_PAT (1u << 18)
#define EXITC_LOAD_PAT (1u << 19)
#define EXITC_SAVE_EFER (1u << 20)
#define EXITC_LOAD_EFER (1u << 21)
#define EXITC_SAVE_PREEMPT (1u << 22)

#define ENTRYC_IA32E (1u << 9)
#define ENTRYC_LOAD_PAT (1u << 14)
#define ENTRYC_LOAD_EFER (1u << 15)

/* ---- VMCS field encodings (Appendix B) ---- */
#define VPID 0x0000
#define G_ES_SEL 0x0800
#define G_CS_SEL 0x0802
#define G_SS_SEL 0x0804
#define G_DS_SEL 0x0806
#define G_FS_SEL 0x0808
#define G_GS_SEL 0x080A
#define G_LDTR_SEL 0x080C
#define G_TR_SEL 0x080E
#define H_ES_SEL 0x0C00
#define H_CS_SEL 0x0C02
#define H_SS_SEL 0x0C04
#define H_DS_SEL 0x0C06
#define H_FS_SEL 0x0C08
#define H_GS_SEL 0x0C0A
#define H_TR_SEL 0x0C0C
#define IO_BITMAP_A 0x2000
#define IO_BITMAP_B 0x2002
#define MSR_BITMAP 0x2004
#define EXIT_MSR_STORE_ADDR 0x2006
#define EXIT_MSR_LOAD_ADDR 0x2008
#define ENTRY_MSR_LOAD_ADDR 0x200A
#define TSC_OFFSET 0x2010
#define EPT_POINTER 0x201A
#define GUEST_PHYS_ADDR 0x2400
#define G_LINK_PTR 0x2800
#define G_DEBUGCTL 0x2802
#define G_PAT 0x2804
#define G_EFER 0x2806
#define G_PDPTE0 0x280A
#define H_PAT 0x2C00
#define H_EFER 0x2C02
#define PIN_CTLS 0x4000
#define PROC_CTLS 0x4002
#define EXC_BITMAP 0x4004
#define PF_ERR_MASK 0x4006
#define PF_ERR_MATCH 0x4008
#define CR3_TARGET_COUNT 0x400A
#define EXIT_CTLS 0x400C
#define EXIT_MSR_STORE_COUNT 0x400E
#define EXIT_MSR_LOAD_COUNT 0x4010
#define ENTRY_CTLS 0x4012
#define ENTRY_MSR_LOAD_COUNT 0x4014
#define ENTRY_INTR_INFO 0x4016
#define ENTRY_EXC_ERROR 0x4018
#define ENTRY_INSN_LEN 0x401A
#define TPR_THRESHOLD 0x401C
#define PROC2_CTLS 0x401E
#define INSN_ERROR 0x4400
#define EXIT_REASON 0x4402
#define EXIT_INTR_INFO 0x4404
#define EXIT_INTR_ERROR 0x4406
#define IDT_VECT_INFO 0x4408
#define IDT_VECT_ERROR 0x440A
#define EXIT_INSN_LEN 0x440C
#define EXIT_INSN_INFO 0x440E
#define G_ES_LIMIT 0x4800
#define G_CS_LIMIT 0x4802
#define G_SS_LIMIT 0x4804
#define G_DS_LIMIT 0x4806
#define G_FS_LIMIT 0x4808
#define G_GS_LIMIT 0x480A
#define G_LDTR_LIMIT 0x480C
#define G_TR_LIMIT 0x480E
#define G_GDTR_LIMIT 0x4810
#define G_IDTR_LIMIT 0x4812
#define G_ES_AR 0x4814
#define G_CS_AR 0x4816
#define G_SS_AR 0x4818
#define G_DS_AR 0x481A
#define G_FS_AR 0x481C
#define G_GS_AR 0x481E
#define G_LDTR_AR 0x4820
#define G_TR_AR 0x4822
#define G_INTERRUPTIBILITY 0x4824
#define G_ACTIVITY 0x4826
#define G_SYSENTER_CS 0x482A
#define PREEMPT_TIMER 0x482E
#define H_SYSENTER_CS 0x4C00
#define CR0_MASK 0x6000
#define CR4_MASK 0x6002
#define CR0_SHADOW 0x6004
#define CR4_SHADOW 0x6006
#define EXIT_QUAL 0x6400
#define GUEST_LINEAR_ADDR 0x640A
#define G_CR0 0x6800
#define G_CR3 0x6802
#define G_CR4 0x6804
#define G_ES_BASE 0x6806
#define G_CS_BASE 0x6808
#define G_SS_BASE 0x680A
#define G_DS_BASE 0x680C
#define G_FS_BASE 0x680E
#define G_GS_BASE 0x6810
#define G_LDTR_BASE 0x6812
#define G_TR_BASE 0x6814
#define G_GDTR_BASE 0x6816
#define G_IDTR_BASE 0x6818
#define G_DR7 0x681A
#define G_RSP 0x681C
#define G_RIP 0x681E
#define G_RFLAGS 0x6820
#define G_PENDING_DBG 0x6822
#define G_SYSENTER_ESP 0x6824
#define G_SYSENTER_EIP 0x6826
#define H_CR0 0x6C00
#define H_CR3 0x6C02
#define H_CR4 0x6C04
#define H_FS_BASE 0x6C06
#define H_GS_BASE 0x6C08
#define H_TR_BASE 0x6C0A
#define H_GDTR_BASE 0x6C0C
#define H_IDTR_BASE 0x6C0E
#define H_SYSENTER_ESP 0x6C10
#define H_SYSENTER_EIP 0x6C12
#define H_RSP 0x6C14
#define H_RIP 0x6C16

/* Segment registers in VMCS order (ES CS SS DS FS GS LDTR TR): field = base + 2*index. */
enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_LDTR, SEG_TR };

/* ---- exit reasons (Appendix C) ---- */
#define ER_EXCEPTION_NMI 0
#define ER_EXTINT 1
#define ER_TRIPLE_FAULT 2
#define ER_INIT 3
#define ER_SIPI 4
#define ER_IO_SMI 5
#define ER_OTHER_SMI 6
#define ER_INTR_WINDOW 7
#define ER_NMI_WINDOW 8
#define ER_TASK_SWITCH 9
#define ER_CPUID 10
#define ER_GETSEC 11
#define ER_HLT 12
#define ER_INVD 13
#define ER_INVLPG 14
#define ER_RDPMC 15
#define ER_RDTSC 16
#define ER_RSM 17
#define ER_VMCALL 18
#define ER_VMCLEAR 19
#define ER_VMLAUNCH 20
#define ER_VMPTRLD 21
#define ER_VMPTRST 22
#define ER_VMREAD 23
#define ER_VMRESUME 24
#define ER_VMWRITE 25
#define ER_VMXOFF 26
#define ER_VMXON 27
#define ER_CR_ACCESS 28
#define ER_DR_ACCESS 29
#define ER_IO 30
#define ER_RDMSR 31
#define ER_WRMSR 32
#define ER_INVALID_GUEST 33
#define ER_MSR_LOADING 34
#define ER_MWAIT 36
#define ER_MTF 37
#define ER_MONITOR 39
#define ER_PAUSE 40
#define ER_MCE_ENTRY 41
#define ER_TPR_BELOW 43
#define ER_APIC_ACCESS 44
#define ER_VEOI 45
#define ER_GDTR_IDTR 46
#define ER_LDTR_TR 47
#define ER_EPT_VIOLATION 48
#define ER_EPT_MISCONFIG 49
#define ER_INVEPT 50
#define ER_RDTSCP 51
#define ER_PREEMPT_TIMER 52
#define ER_INVVPID 53
#define ER_WBINVD 54
#define ER_XSETBV 55
#define ER_APIC_WRITE 56
#define ER_RDRAND 57
#define ER_INVPCID 58
#define ER_VMFUNC 59
#define ER_ENCLS 60
#define ER_RDSEED 61
#define ER_PML_FULL 62
#define ER_XSAVES 63
#define ER_XRSTORS 64
#define ER_COUNT 65
#define ER_ENTRY_FAIL (1u << 31)

/* Interruption information (§24.8.3, §24.9.2) */
#define II_VALID (1u << 31)
#define II_ERROR (1u << 11)
#define II_NMI_UNBLOCK (1u << 12)
#define II_TYPE(i) (((i) >> 8) & 7)
#define II_EXT 0u
#define II_NMI 2u
#define II_HW_EXC 3u
#define II_SW_INT 4u
#define II_PRIV_SW_EXC 5u
#define II_SW_EXC 6u

/* Segment access rights as the VMCS holds them (§24.4.1) */
#define AR_UNUSABLE (1u << 16)
#define AR_DPL(ar) (((ar) >> 5) & 3)

/* EPT (§28.2) */
#define EPT_R (1ull << 0)
#define EPT_W (1ull << 1)
#define EPT_X (1ull << 2)
#define EPT_RWX 7ull
#define EPT_MT_SHIFT 3
#define EPT_LARGE (1ull << 7)
#define EPT_ADDR 0x000FFFFFFFFFF000ull
#define EPTP_WALK4 (3ull << 3)
/* EPT-violation qualification (Table 27-7) */
#define EPTQ_READ (1ull << 0)
#define EPTQ_WRITE (1ull << 1)
#define EPTQ_FETCH (1ull << 2)
#define EPTQ_GLA_VALID (1ull << 7)

/* Memory types */
#define MT_UC 0ull
#define MT_WB 6ull

/* ---- the VMX instructions ----
 * Each returns 0 on VMsucceed, -1 on VMfailInvalid (CF) and 1 on VMfailValid (ZF; the
 * error number is then in the VM-instruction error field). */
static inline int vmx_rflags_result(uint64_t fl) { return (fl & 1) ? -1 : (fl & 0x40) ? 1 : 0; }

static inline int tv_vmxon(uint64_t pa)
{
	uint64_t fl;
	asm volatile("vmxon %1; pushfq; popq %0" : "=r"(fl) : "m"(pa) : "cc", "memory");
	return vmx_rflags_result(fl);
}
static inline int tv_vmclear(uint64_t pa)
{
	uint64_t fl;
	asm volatile("vmclear %1; pushfq; popq %0" : "=r"(fl) : "m"(pa) : "cc", "memory");
	return vmx_rflags_result(fl);
}
static inline int tv_vmptrld(uint64_t pa)
{
	uint64_t fl;
	asm volatile("vmptrld %1; pushfq; popq %0" : "=r"(fl) : "m"(pa) : "cc", "memory");
	return vmx_rflags_result(fl);
}
static inline int tv_vmread(uint64_t enc, uint64_t *val)
{
	uint64_t fl, v = 0;
	asm volatile("vmread %2, %1; pushfq; popq %0" : "=r"(fl), "+r"(v) : "r"(enc) : "cc", "memory");
	*val = v;
	return vmx_rflags_result(fl);
}
static inline int tv_vmwrite(uint64_t enc, uint64_t val)
{
	uint64_t fl;
	asm volatile("vmwrite %1, %2; pushfq; popq %0" : "=r"(fl) : "r"(val), "r"(enc) : "cc", "memory");
	return vmx_rflags_result(fl);
}
static inline int tv_invept(uint64_t type, uint64_t eptp)
{
	struct {
		uint64_t a, b;
	} d = { eptp, 0 };
	uint64_t fl;
	asm volatile("invept %1, %2; pushfq; popq %0" : "=r"(fl) : "m"(d), "r"(type) : "cc", "memory");
	return vmx_rflags_result(fl);
}
static inline int tv_invvpid(uint64_t type, uint64_t vpid, uint64_t la)
{
	struct {
		uint64_t a, b;
	} d = { vpid, la };
	uint64_t fl;
	asm volatile("invvpid %1, %2; pushfq; popq %0" : "=r"(fl) : "m"(d), "r"(type) : "cc", "memory");
	return vmx_rflags_result(fl);
}
#define INVEPT_SINGLE 1
#define INVEPT_ALL 2
#define INVVPID_ADDR 0
#define INVVPID_SINGLE 1
#define INVVPID_ALL 2

#endif
