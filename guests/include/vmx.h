/* VMX (Intel VT-x) for guest kernels that act as a hypervisor: constants from the Intel SDM
 * Vol. 3C (chapters 23-30 and Appendices A-C), the VMX instructions as C functions that report
 * success / VMfailInvalid / VMfailValid(error), the capability MSRs, and a small "run a guest
 * function until its first VM exit" helper used by vmx-tests.elf.
 *
 * Nothing here hard-codes what a particular processor supports: the VMCS revision, the
 * allowed settings of every control, the CR0/CR4 fixed bits, the EPT/VPID capabilities and
 * the highest VMCS field index all come from the capability MSRs (SDM 3C Appendix A).
 *
 *   vmx_caps_read();                  capability MSRs -> vmx_caps (also says if VMX exists)
 *   vmx_on();                         IA32_FEATURE_CONTROL, CR4.VMXE, CR0/CR4 fixed bits, VMXON
 *   struct vmx_vm vm; vmx_vm_init(&vm);  a fresh current VMCS for a 64-bit guest (see below)
 *   vmx_vm_set_entry(&vm, guest_fn);
 *   struct vmx_exit e; vmx_vm_run(&vm, &e);   VMLAUNCH/VMRESUME until the next VM exit
 *   vmx_off();
 */
#ifndef VMX_H
#define VMX_H

#include "types.h"

/* ---- MSRs (SDM 3C Appendix A, SDM 4 "Model-Specific Registers") ---- */
#define MSR_IA32_FEATURE_CONTROL 0x3A
#define FEATURE_CONTROL_LOCK (1ull << 0)
#define FEATURE_CONTROL_VMX_IN_SMX (1ull << 1)
#define FEATURE_CONTROL_VMX_OUTSIDE_SMX (1ull << 2)
#define MSR_IA32_APIC_BASE 0x1B
#define MSR_IA32_DEBUGCTL 0x1D9
#define MSR_IA32_PAT 0x277
#define MSR_IA32_TSC_AUX 0xC0000103
#define MSR_IA32_XSS 0xDA0

#define MSR_VMX_BASIC 0x480
#define MSR_VMX_PINBASED_CTLS 0x481
#define MSR_VMX_PROCBASED_CTLS 0x482
#define MSR_VMX_EXIT_CTLS 0x483
#define MSR_VMX_ENTRY_CTLS 0x484
#define MSR_VMX_MISC 0x485
#define MSR_VMX_CR0_FIXED0 0x486
#define MSR_VMX_CR0_FIXED1 0x487
#define MSR_VMX_CR4_FIXED0 0x488
#define MSR_VMX_CR4_FIXED1 0x489
#define MSR_VMX_VMCS_ENUM 0x48A
#define MSR_VMX_PROCBASED_CTLS2 0x48B
#define MSR_VMX_EPT_VPID_CAP 0x48C
#define MSR_VMX_TRUE_PINBASED_CTLS 0x48D
#define MSR_VMX_TRUE_PROCBASED_CTLS 0x48E
#define MSR_VMX_TRUE_EXIT_CTLS 0x48F
#define MSR_VMX_TRUE_ENTRY_CTLS 0x490
#define MSR_VMX_VMFUNC 0x491

/* IA32_VMX_BASIC (SDM 3C A.1) */
#define BASIC_REVISION_MASK 0x7FFFFFFFull
#define BASIC_REGION_SIZE(b) (((b) >> 32) & 0x1FFF)
#define BASIC_PA_32BIT (1ull << 48)
#define BASIC_DUAL_MONITOR (1ull << 49)
#define BASIC_MEMTYPE(b) (((b) >> 50) & 0xF)
#define BASIC_INS_OUTS_INFO (1ull << 54)
#define BASIC_TRUE_CTLS (1ull << 55)
#define BASIC_NO_ERRCODE_CHECK (1ull << 56)

/* IA32_VMX_MISC (SDM 3C A.6) */
#define MISC_PREEMPT_RATE(m) ((m)&0x1F)
#define MISC_STORE_LMA (1ull << 5)
#define MISC_ACT_HLT (1ull << 6)
#define MISC_ACT_SHUTDOWN (1ull << 7)
#define MISC_ACT_SIPI (1ull << 8)
#define MISC_CR3_TARGETS(m) (((m) >> 16) & 0x1FF)
#define MISC_MAX_MSRS(m) (512 * ((((m) >> 25) & 7) + 1))
#define MISC_VMWRITE_ANY (1ull << 29)
#define MISC_INJECT_LEN0 (1ull << 30)

/* IA32_VMX_EPT_VPID_CAP (SDM 3C A.10) */
#define EPTCAP_XO (1ull << 0)
#define EPTCAP_PWL4 (1ull << 6)
#define EPTCAP_UC (1ull << 8)
#define EPTCAP_WB (1ull << 14)
#define EPTCAP_2M (1ull << 16)
#define EPTCAP_1G (1ull << 17)
#define EPTCAP_INVEPT (1ull << 20)
#define EPTCAP_AD (1ull << 21)
#define EPTCAP_ADV_INFO (1ull << 22)
#define EPTCAP_INVEPT_SINGLE (1ull << 25)
#define EPTCAP_INVEPT_ALL (1ull << 26)
#define VPIDCAP_INVVPID (1ull << 32)
#define VPIDCAP_ADDR (1ull << 40)
#define VPIDCAP_SINGLE (1ull << 41)
#define VPIDCAP_ALL (1ull << 42)
#define VPIDCAP_SINGLE_GLOBALS (1ull << 43)

/* CR4.VMXE and friends not in x86.h */
#define CR4_VME (1ull << 0)
#define CR4_PVI (1ull << 1)
#define CR4_TSD (1ull << 2)
#define CR4_DE (1ull << 3)
#define CR4_MCE (1ull << 6)
#define CR4_PCE (1ull << 8)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_UMIP (1ull << 11)
#define CR4_VMXE (1ull << 13)
#define CR4_SMXE (1ull << 14)
#define CR4_OSXSAVE (1ull << 18)

/* ---- VM-execution, VM-exit and VM-entry controls (SDM 3C §24.6-24.8) ---- */
#define PIN_EXTINT_EXIT (1u << 0)
#define PIN_NMI_EXIT (1u << 3)
#define PIN_VIRTUAL_NMI (1u << 5)
#define PIN_PREEMPT_TIMER (1u << 6)
#define PIN_POSTED_INTR (1u << 7)

#define PROC_INTR_WINDOW (1u << 2)
#define PROC_TSC_OFFSET (1u << 3)
#define PROC_HLT_EXIT (1u << 7)
#define PROC_INVLPG_EXIT (1u << 9)
#define PROC_MWAIT_EXIT (1u << 10)
#define PROC_RDPMC_EXIT (1u << 11)
#define PROC_RDTSC_EXIT (1u << 12)
#define PROC_CR3_LOAD_EXIT (1u << 15)
#define PROC_CR3_STORE_EXIT (1u << 16)
#define PROC_TERTIARY (1u << 17)
#define PROC_CR8_LOAD_EXIT (1u << 19)
#define PROC_CR8_STORE_EXIT (1u << 20)
#define PROC_TPR_SHADOW (1u << 21)
#define PROC_NMI_WINDOW (1u << 22)
#define PROC_MOV_DR_EXIT (1u << 23)
#define PROC_UNCOND_IO (1u << 24)
#define PROC_IO_BITMAPS (1u << 25)
#define PROC_MTF (1u << 27)
#define PROC_MSR_BITMAPS (1u << 28)
#define PROC_MONITOR_EXIT (1u << 29)
#define PROC_PAUSE_EXIT (1u << 30)
#define PROC_SECONDARY (1u << 31)

#define SEC_APIC_ACCESS (1u << 0)
#define SEC_EPT (1u << 1)
#define SEC_DESC_TABLE (1u << 2)
#define SEC_RDTSCP (1u << 3)
#define SEC_X2APIC (1u << 4)
#define SEC_VPID (1u << 5)
#define SEC_WBINVD_EXIT (1u << 6)
#define SEC_UNRESTRICTED (1u << 7)
#define SEC_APIC_REG_VIRT (1u << 8)
#define SEC_VINTR_DELIVERY (1u << 9)
#define SEC_PAUSE_LOOP (1u << 10)
#define SEC_RDRAND_EXIT (1u << 11)
#define SEC_INVPCID (1u << 12)
#define SEC_VMFUNC (1u << 13)
#define SEC_SHADOW_VMCS (1u << 14)
#define SEC_ENCLS_EXIT (1u << 15)
#define SEC_RDSEED_EXIT (1u << 16)
#define SEC_PML (1u << 17)
#define SEC_EPT_VE (1u << 18)
#define SEC_XSAVES (1u << 20)
#define SEC_TSC_SCALING (1u << 25)

#define EXIT_SAVE_DEBUG (1u << 2)
#define EXIT_HOST_64 (1u << 9)
#define EXIT_LOAD_PERF (1u << 12)
#define EXIT_ACK_INTR (1u << 15)
#define EXIT_SAVE_PAT (1u << 18)
#define EXIT_LOAD_PAT (1u << 19)
#define EXIT_SAVE_EFER (1u << 20)
#define EXIT_LOAD_EFER (1u << 21)
#define EXIT_SAVE_PREEMPT (1u << 22)
#define EXIT_CLEAR_BNDCFGS (1u << 23)
#define EXIT_CLEAR_RTIT (1u << 25)

#define ENTRY_LOAD_DEBUG (1u << 2)
#define ENTRY_IA32E (1u << 9)
#define ENTRY_SMM (1u << 10)
#define ENTRY_DEACT_DUAL (1u << 11)
#define ENTRY_LOAD_PERF (1u << 13)
#define ENTRY_LOAD_PAT (1u << 14)
#define ENTRY_LOAD_EFER (1u << 15)
#define ENTRY_LOAD_BNDCFGS (1u << 16)
#define ENTRY_LOAD_RTIT (1u << 18)

/* ---- VMCS field encodings (SDM 3C Appendix B) ---- */
/* 16-bit */
#define VMCS_VPID 0x0000
#define VMCS_POSTED_INTR_NV 0x0002
#define VMCS_EPTP_INDEX 0x0004
#define GUEST_ES_SEL 0x0800
#define GUEST_CS_SEL 0x0802
#define GUEST_SS_SEL 0x0804
#define GUEST_DS_SEL 0x0806
#define GUEST_FS_SEL 0x0808
#define GUEST_GS_SEL 0x080A
#define GUEST_LDTR_SEL 0x080C
#define GUEST_TR_SEL 0x080E
#define GUEST_INTR_STATUS 0x0810
#define GUEST_PML_INDEX 0x0812
#define HOST_ES_SEL 0x0C00
#define HOST_CS_SEL 0x0C02
#define HOST_SS_SEL 0x0C04
#define HOST_DS_SEL 0x0C06
#define HOST_FS_SEL 0x0C08
#define HOST_GS_SEL 0x0C0A
#define HOST_TR_SEL 0x0C0C
/* 64-bit control */
#define VMCS_IO_BITMAP_A 0x2000
#define VMCS_IO_BITMAP_B 0x2002
#define VMCS_MSR_BITMAP 0x2004
#define VMCS_EXIT_MSR_STORE_ADDR 0x2006
#define VMCS_EXIT_MSR_LOAD_ADDR 0x2008
#define VMCS_ENTRY_MSR_LOAD_ADDR 0x200A
#define VMCS_EXECUTIVE_VMCS_PTR 0x200C
#define VMCS_PML_ADDR 0x200E
#define VMCS_TSC_OFFSET 0x2010
#define VMCS_VIRTUAL_APIC_ADDR 0x2012
#define VMCS_APIC_ACCESS_ADDR 0x2014
#define VMCS_POSTED_INTR_DESC 0x2016
#define VMCS_VMFUNC_CTLS 0x2018
#define VMCS_EPTP 0x201A
#define VMCS_EOI_EXIT0 0x201C
#define VMCS_EOI_EXIT1 0x201E
#define VMCS_EOI_EXIT2 0x2020
#define VMCS_EOI_EXIT3 0x2022
#define VMCS_EPTP_LIST 0x2024
#define VMCS_VMREAD_BITMAP 0x2026
#define VMCS_VMWRITE_BITMAP 0x2028
#define VMCS_VE_INFO_ADDR 0x202A
#define VMCS_XSS_EXIT_BITMAP 0x202C
#define VMCS_ENCLS_EXIT_BITMAP 0x202E
#define VMCS_TSC_MULTIPLIER 0x2032
/* 64-bit read-only */
#define VMCS_GUEST_PHYS_ADDR 0x2400
/* 64-bit guest */
#define GUEST_LINK_PTR 0x2800
#define GUEST_DEBUGCTL 0x2802
#define GUEST_PAT 0x2804
#define GUEST_EFER 0x2806
#define GUEST_PERF_GLOBAL_CTRL 0x2808
#define GUEST_PDPTE0 0x280A
#define GUEST_PDPTE1 0x280C
#define GUEST_PDPTE2 0x280E
#define GUEST_PDPTE3 0x2810
#define GUEST_BNDCFGS 0x2812
#define GUEST_RTIT_CTL 0x2814
/* 64-bit host */
#define HOST_PAT 0x2C00
#define HOST_EFER 0x2C02
#define HOST_PERF_GLOBAL_CTRL 0x2C04
/* 32-bit control */
#define VMCS_PIN_CTLS 0x4000
#define VMCS_PROC_CTLS 0x4002
#define VMCS_EXCEPTION_BITMAP 0x4004
#define VMCS_PF_MASK 0x4006
#define VMCS_PF_MATCH 0x4008
#define VMCS_CR3_TARGET_COUNT 0x400A
#define VMCS_EXIT_CTLS 0x400C
#define VMCS_EXIT_MSR_STORE_COUNT 0x400E
#define VMCS_EXIT_MSR_LOAD_COUNT 0x4010
#define VMCS_ENTRY_CTLS 0x4012
#define VMCS_ENTRY_MSR_LOAD_COUNT 0x4014
#define VMCS_ENTRY_INTR_INFO 0x4016
#define VMCS_ENTRY_EXC_ERROR 0x4018
#define VMCS_ENTRY_INSN_LEN 0x401A
#define VMCS_TPR_THRESHOLD 0x401C
#define VMCS_PROC2_CTLS 0x401E
#define VMCS_PLE_GAP 0x4020
#define VMCS_PLE_WINDOW 0x4022
/* 32-bit read-only */
#define VMCS_INSN_ERROR 0x4400
#define VMCS_EXIT_REASON 0x4402
#define VMCS_EXIT_INTR_INFO 0x4404
#define VMCS_EXIT_INTR_ERROR 0x4406
#define VMCS_IDT_VECT_INFO 0x4408
#define VMCS_IDT_VECT_ERROR 0x440A
#define VMCS_EXIT_INSN_LEN 0x440C
#define VMCS_EXIT_INSN_INFO 0x440E
/* 32-bit guest */
#define GUEST_ES_LIMIT 0x4800
#define GUEST_CS_LIMIT 0x4802
#define GUEST_SS_LIMIT 0x4804
#define GUEST_DS_LIMIT 0x4806
#define GUEST_FS_LIMIT 0x4808
#define GUEST_GS_LIMIT 0x480A
#define GUEST_LDTR_LIMIT 0x480C
#define GUEST_TR_LIMIT 0x480E
#define GUEST_GDTR_LIMIT 0x4810
#define GUEST_IDTR_LIMIT 0x4812
#define GUEST_ES_AR 0x4814
#define GUEST_CS_AR 0x4816
#define GUEST_SS_AR 0x4818
#define GUEST_DS_AR 0x481A
#define GUEST_FS_AR 0x481C
#define GUEST_GS_AR 0x481E
#define GUEST_LDTR_AR 0x4820
#define GUEST_TR_AR 0x4822
#define GUEST_INTERRUPTIBILITY 0x4824
#define GUEST_ACTIVITY 0x4826
#define GUEST_SMBASE 0x4828
#define GUEST_SYSENTER_CS 0x482A
#define GUEST_PREEMPT_TIMER 0x482E
/* 32-bit host */
#define HOST_SYSENTER_CS 0x4C00
/* natural-width control */
#define VMCS_CR0_MASK 0x6000
#define VMCS_CR4_MASK 0x6002
#define VMCS_CR0_SHADOW 0x6004
#define VMCS_CR4_SHADOW 0x6006
#define VMCS_CR3_TARGET0 0x6008
#define VMCS_CR3_TARGET1 0x600A
#define VMCS_CR3_TARGET2 0x600C
#define VMCS_CR3_TARGET3 0x600E
/* natural-width read-only */
#define VMCS_EXIT_QUAL 0x6400
#define VMCS_IO_RCX 0x6402
#define VMCS_IO_RSI 0x6404
#define VMCS_IO_RDI 0x6406
#define VMCS_IO_RIP 0x6408
#define VMCS_GUEST_LINEAR_ADDR 0x640A
/* natural-width guest */
#define GUEST_CR0 0x6800
#define GUEST_CR3 0x6802
#define GUEST_CR4 0x6804
#define GUEST_ES_BASE 0x6806
#define GUEST_CS_BASE 0x6808
#define GUEST_SS_BASE 0x680A
#define GUEST_DS_BASE 0x680C
#define GUEST_FS_BASE 0x680E
#define GUEST_GS_BASE 0x6810
#define GUEST_LDTR_BASE 0x6812
#define GUEST_TR_BASE 0x6814
#define GUEST_GDTR_BASE 0x6816
#define GUEST_IDTR_BASE 0x6818
#define GUEST_DR7 0x681A
#define GUEST_RSP 0x681C
#define GUEST_RIP 0x681E
#define GUEST_RFLAGS 0x6820
#define GUEST_PENDING_DBG 0x6822
#define GUEST_SYSENTER_ESP 0x6824
#define GUEST_SYSENTER_EIP 0x6826
/* natural-width host */
#define HOST_CR0 0x6C00
#define HOST_CR3 0x6C02
#define HOST_CR4 0x6C04
#define HOST_FS_BASE 0x6C06
#define HOST_GS_BASE 0x6C08
#define HOST_TR_BASE 0x6C0A
#define HOST_GDTR_BASE 0x6C0C
#define HOST_IDTR_BASE 0x6C0E
#define HOST_SYSENTER_ESP 0x6C10
#define HOST_SYSENTER_EIP 0x6C12
#define HOST_RSP 0x6C14
#define HOST_RIP 0x6C16

/* Encoding parts (SDM 3C §24.11.2): bit 0 access type, 9:1 index, 11:10 type, 14:13 width. */
#define VMCS_ENC_HIGH 1u
#define VMCS_ENC_INDEX(e) (((e) >> 1) & 0x1FF)
#define VMCS_ENC_TYPE(e) (((e) >> 10) & 3) /* 0 control, 1 read-only, 2 guest, 3 host */
#define VMCS_ENC_WIDTH(e) (((e) >> 13) & 3) /* 0 16-bit, 1 64-bit, 2 32-bit, 3 natural */

/* ---- Exit reasons (SDM 3C Appendix C) ---- */
#define EXIT_EXCEPTION_NMI 0
#define EXIT_EXTINT 1
#define EXIT_TRIPLE_FAULT 2
#define EXIT_INIT 3
#define EXIT_SIPI 4
#define EXIT_INTR_WINDOW 7
#define EXIT_NMI_WINDOW 8
#define EXIT_TASK_SWITCH 9
#define EXIT_CPUID 10
#define EXIT_GETSEC 11
#define EXIT_HLT 12
#define EXIT_INVD 13
#define EXIT_INVLPG 14
#define EXIT_RDPMC 15
#define EXIT_RDTSC 16
#define EXIT_RSM 17
#define EXIT_VMCALL 18
#define EXIT_VMCLEAR 19
#define EXIT_VMLAUNCH 20
#define EXIT_VMPTRLD 21
#define EXIT_VMPTRST 22
#define EXIT_VMREAD 23
#define EXIT_VMRESUME 24
#define EXIT_VMWRITE 25
#define EXIT_VMXOFF 26
#define EXIT_VMXON 27
#define EXIT_CR_ACCESS 28
#define EXIT_DR_ACCESS 29
#define EXIT_IO 30
#define EXIT_RDMSR 31
#define EXIT_WRMSR 32
#define EXIT_INVALID_GUEST 33
#define EXIT_MSR_LOADING 34
#define EXIT_MWAIT 36
#define EXIT_MTF 37
#define EXIT_MONITOR 39
#define EXIT_PAUSE 40
#define EXIT_MCE_DURING_ENTRY 41
#define EXIT_TPR_BELOW 43
#define EXIT_APIC_ACCESS 44
#define EXIT_GDTR_IDTR 46
#define EXIT_LDTR_TR 47
#define EXIT_EPT_VIOLATION 48
#define EXIT_EPT_MISCONFIG 49
#define EXIT_INVEPT 50
#define EXIT_RDTSCP 51
#define EXIT_PREEMPT_TIMER 52
#define EXIT_INVVPID 53
#define EXIT_WBINVD 54
#define EXIT_XSETBV 55
#define EXIT_RDRAND 57
#define EXIT_INVPCID 58
#define EXIT_VMFUNC 59
#define EXIT_RDSEED 61
#define EXIT_REASON_ENTRY_FAIL (1u << 31)

/* ---- VM-instruction error numbers (SDM 3C §30.4) ---- */
#define VMERR_VMCALL_ROOT 1
#define VMERR_VMCLEAR_BAD_ADDR 2
#define VMERR_VMCLEAR_VMXON_PTR 3
#define VMERR_VMLAUNCH_NOT_CLEAR 4
#define VMERR_VMRESUME_NOT_LAUNCHED 5
#define VMERR_VMRESUME_AFTER_VMXOFF 6
#define VMERR_ENTRY_BAD_CONTROLS 7
#define VMERR_ENTRY_BAD_HOST 8
#define VMERR_VMPTRLD_BAD_ADDR 9
#define VMERR_VMPTRLD_VMXON_PTR 10
#define VMERR_VMPTRLD_BAD_REVISION 11
#define VMERR_UNSUPPORTED_FIELD 12
#define VMERR_VMWRITE_READ_ONLY 13
#define VMERR_VMXON_IN_ROOT 15
#define VMERR_ENTRY_MOV_SS 26
#define VMERR_INVALID_INVEPT_INVVPID 28

/* Interruption-information fields (SDM 3C §24.8.3, §24.9.2) */
#define INTR_INFO_VALID (1u << 31)
#define INTR_INFO_ERROR_VALID (1u << 11)
#define INTR_INFO_NMI_UNBLOCK (1u << 12)
#define INTR_TYPE_EXTINT (0u << 8)
#define INTR_TYPE_NMI (2u << 8)
#define INTR_TYPE_HW_EXC (3u << 8)
#define INTR_TYPE_SW_INT (4u << 8)
#define INTR_TYPE_PRIV_SW_EXC (5u << 8)
#define INTR_TYPE_SW_EXC (6u << 8)
#define INTR_TYPE_OTHER (7u << 8)

/* Guest interruptibility state (SDM 3C §24.4.2) */
#define INTERRUPTIBILITY_STI (1u << 0)
#define INTERRUPTIBILITY_MOV_SS (1u << 1)
#define INTERRUPTIBILITY_SMI (1u << 2)
#define INTERRUPTIBILITY_NMI (1u << 3)

/* Activity states */
#define ACTIVITY_ACTIVE 0
#define ACTIVITY_HLT 1
#define ACTIVITY_SHUTDOWN 2
#define ACTIVITY_WAIT_SIPI 3

/* Segment access rights as the VMCS holds them (SDM 3C §24.4.1, Table 24-2) */
#define AR_UNUSABLE (1u << 16)
#define AR_CODE64 0xA09B /* G, L, P, DPL 0, S, type 11 (execute/read, accessed) */
#define AR_CODE32 0xC09B /* G, D, P, S, type 11 */
#define AR_DATA 0xC093 /* G, D/B, P, S, type 3 (read/write, accessed) */
#define AR_TSS64_BUSY 0x008B
#define AR_LDT 0x0082

/* EPT entries (SDM 3C §28.3.2) */
#define EPT_R (1ull << 0)
#define EPT_W (1ull << 1)
#define EPT_X (1ull << 2)
#define EPT_RWX 7ull
#define EPT_MT_WB (6ull << 3)
#define EPT_MT_UC (0ull << 3)
#define EPT_IGNORE_PAT (1ull << 6)
#define EPT_LARGE (1ull << 7)
#define EPT_A (1ull << 8)
#define EPT_D (1ull << 9)
#define EPTP_WB 6ull
#define EPTP_UC 0ull
#define EPTP_PWL4 (3ull << 3)
#define EPTP_AD (1ull << 6)

/* EPT-violation exit qualification (SDM 3C §27.2.1, Table 27-7) */
#define EPTQ_READ (1ull << 0)
#define EPTQ_WRITE (1ull << 1)
#define EPTQ_FETCH (1ull << 2)
#define EPTQ_READABLE (1ull << 3)
#define EPTQ_WRITABLE (1ull << 4)
#define EPTQ_EXECUTABLE (1ull << 5)
#define EPTQ_GLA_VALID (1ull << 7)
#define EPTQ_GLA_TRANSLATION (1ull << 8)
#define EPTQ_NMI_UNBLOCK (1ull << 12)

/* ---- Instruction results ---- */
/* 0 = VMsucceed, VMX_FAIL_INVALID = VMfailInvalid (CF=1), n > 0 = VMfailValid with error n. */
#define VMX_OK 0
#define VMX_FAIL_INVALID (-1)
/* returned by vmx_vm_run when the entry produced a VM exit (incl. an entry failure) */
#define VMX_EXITED 0

int vmx_flags_to_result(uint64_t rflags); /* CF -> failInvalid, ZF -> failValid(error) */

static inline int vmx_result_from(uint64_t rflags)
{
	if (rflags & 1) /* CF */
		return VMX_FAIL_INVALID;
	if (rflags & 0x40) /* ZF */
		return vmx_flags_to_result(rflags);
	return VMX_OK;
}

#define VMX_INSN_MEM(name, insn)                                                        \
	static inline int name(uint64_t pa)                                             \
	{                                                                               \
		uint64_t fl;                                                            \
		asm volatile(insn " %1; pushfq; popq %0" : "=r"(fl) : "m"(pa) : "cc", "memory"); \
		return vmx_result_from(fl);                                             \
	}
VMX_INSN_MEM(vmxon, "vmxon")
VMX_INSN_MEM(vmclear, "vmclear")
VMX_INSN_MEM(vmptrld, "vmptrld")
#undef VMX_INSN_MEM

static inline int vmxoff(void)
{
	uint64_t fl;
	asm volatile("vmxoff; pushfq; popq %0" : "=r"(fl) : : "cc", "memory");
	return vmx_result_from(fl);
}

static inline int vmptrst(uint64_t *pa)
{
	uint64_t fl;
	asm volatile("vmptrst %1; pushfq; popq %0" : "=r"(fl), "=m"(*pa) : : "cc", "memory");
	return vmx_result_from(fl);
}

static inline int vmread(uint64_t enc, uint64_t *val)
{
	uint64_t fl, v = 0;
	asm volatile("vmread %2, %1; pushfq; popq %0" : "=r"(fl), "+r"(v) : "r"(enc) : "cc", "memory");
	*val = v;
	return vmx_result_from(fl);
}

static inline int vmwrite(uint64_t enc, uint64_t val)
{
	uint64_t fl;
	asm volatile("vmwrite %1, %2; pushfq; popq %0" : "=r"(fl) : "r"(val), "r"(enc) : "cc", "memory");
	return vmx_result_from(fl);
}

struct vmx_inv_desc {
	uint64_t a, b;
};

static inline int invept(uint64_t type, uint64_t eptp)
{
	struct vmx_inv_desc d = { eptp, 0 };
	uint64_t fl;
	asm volatile("invept %1, %2; pushfq; popq %0" : "=r"(fl) : "m"(d), "r"(type) : "cc", "memory");
	return vmx_result_from(fl);
}

static inline int invvpid_desc(uint64_t type, const struct vmx_inv_desc *d)
{
	uint64_t fl;
	asm volatile("invvpid %1, %2; pushfq; popq %0" : "=r"(fl) : "m"(*d), "r"(type) : "cc", "memory");
	return vmx_result_from(fl);
}

static inline int invvpid(uint64_t type, uint16_t vpid, uint64_t la)
{
	struct vmx_inv_desc d = { vpid, la };
	return invvpid_desc(type, &d);
}

/* VMCALL from root operation (SDM: VMfailValid(1) / VMfailInvalid outside SMM dual-monitor). */
static inline int vmcall_root(void)
{
	uint64_t fl;
	asm volatile("vmcall; pushfq; popq %0" : "=r"(fl) : : "cc", "memory");
	return vmx_result_from(fl);
}

/* VMREAD/VMWRITE that must succeed (a failure fails the running test). */
uint64_t vmr(uint64_t enc);
void vmw(uint64_t enc, uint64_t val);
#define vmw_or(enc, bits) vmw((enc), vmr(enc) | (bits))
#define vmw_clear(enc, bits) vmw((enc), vmr(enc) & ~(uint64_t)(bits))

/* ---- Capabilities ---- */
struct vmx_ctl_cap {
	uint32_t allowed0; /* bits that must be 1 (MSR bits 31:0) */
	uint32_t allowed1; /* bits that may be 1 (MSR bits 63:32) */
};

struct vmx_caps {
	bool vmx; /* CPUID.1:ECX.VMX */
	uint64_t basic, misc, cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1, vmcs_enum;
	uint64_t ept_vpid, vmfunc;
	uint32_t revision;
	unsigned maxphyaddr; /* physical-address width VMX addresses are checked against */
	/* effective allowed settings (the TRUE MSRs when IA32_VMX_BASIC[55]) */
	struct vmx_ctl_cap pin, proc, proc2, exit, entry;
	/* the non-TRUE MSRs, for the consistency tests */
	struct vmx_ctl_cap pin_legacy, proc_legacy, exit_legacy, entry_legacy;
};
extern struct vmx_caps vmx_caps;

bool vmx_caps_read(void); /* false if CPUID says there is no VMX */
static inline bool vmx_can1(const struct vmx_ctl_cap *c, uint32_t bits) { return (c->allowed1 & bits) == bits; }
static inline bool vmx_can0(const struct vmx_ctl_cap *c, uint32_t bits) { return (c->allowed0 & bits) == 0; }
static inline uint32_t vmx_adjust(const struct vmx_ctl_cap *c, uint32_t want) { return (want | c->allowed0) & c->allowed1; }
bool vmx_has_sec(uint32_t bits); /* secondary controls exist and allow `bits` */
bool vmx_has_ept(void);
bool vmx_has_vpid(void);
bool vmx_has_unrestricted(void);

/* ---- Memory for VMX structures ---- */
void *vmx_page_alloc(void); /* a zeroed 4 KiB page, identity-mapped (from free RAM) */
void *vmx_pages_alloc(unsigned n); /* n contiguous zeroed pages */
uint64_t vmx_unbacked_pa(void); /* a page-aligned address just beyond the supported width */

/* ---- VMX operation ---- */
/* Enable VMX (feature control, CR0/CR4 fixed bits, CR4.VMXE) and VMXON; fails the test on error. */
void vmx_on(void);
/* VMXOFF (its result is returned) and CR4.VMXE=0; restores CR0/CR4 as they were before vmx_on. */
int vmx_off(void);
bool vmx_is_on(void);
uint64_t vmx_vmxon_region(void); /* physical address of the region vmx_on() used */
/* Set IA32_FEATURE_CONTROL lock + VMX-outside-SMX if unlocked. Returns the value found. */
uint64_t vmx_feature_control_prepare(void);
/* A fresh VMCS region with the right revision (not current, cleared). */
uint64_t vmx_new_vmcs(void);
/* After a VM exit: restore what the exit left different from the runtime's setup (GDTR and
 * IDTR limits become 0xFFFF, SDM 3C §27.5.2). Done by vmx_vm_run; the TR limit (0x67 after
 * an exit) is restored by vmx_off. */
void vmx_restore_host_tables(void);

/* ---- Guests ---- */
struct vmx_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};

struct vmx_exit {
	int status; /* VMX_EXITED, or the VMfail result of VMLAUNCH/VMRESUME */
	uint32_t reason; /* full exit-reason field (bit 31 = VM-entry failure) */
	uint64_t qual, guest_rip, guest_rsp, guest_rflags, guest_linear, guest_phys;
	uint32_t insn_len, insn_info, intr_info, intr_error, idt_info, idt_error;
};

#define VMX_GUEST_STACK_SIZE 0x4000
struct vmx_vm {
	uint64_t vmcs; /* physical address of the VMCS region */
	bool launched;
	struct vmx_regs regs;
	uint8_t *stack; /* VMX_GUEST_STACK_SIZE bytes */
	uint64_t *eptp_root; /* the identity EPT when enabled (vmx_vm_enable_ept) */
	uint64_t eptp;
	uint8_t *msr_bitmap, *io_bitmap_a, *io_bitmap_b; /* 4 KiB each, zeroed (no exits) */
};

/* The magic the guest return stub leaves in RAX before its VMCALL: a guest function
 * returned normally. */
#define VMX_GUEST_DONE 0x600D600Dull
extern char vmx_guest_return[]; /* MOV $VMX_GUEST_DONE, %eax; VMCALL; loop */
extern char vmx_guest_stubs[]; /* the guest IDT stubs, 16 bytes per vector */
/* The magic the guest IDT stubs leave in RAX before their VMCALL (vmx_guest_event has the event). */
#define VMX_GUEST_EVENT 0xE7E7E7E7ull

/* Events the guest IDT stubs record (one per delivery, last one wins). */
struct vmx_guest_event {
	uint64_t count;
	uint64_t vector, error, rip, cs, rflags, rsp, cr2;
};
extern volatile struct vmx_guest_event vmx_guest_event;
void vmx_guest_event_reset(void);
uint64_t vmx_guest_idt_base(void); /* a 256-entry IDT whose stubs record the event then VMCALL */
void vmx_guest_idt_set_present(int vector, bool present); /* the P bit of one gate */

/* Build a fresh, valid, current VMCS for a 64-bit guest sharing the host's CR0/CR3/CR4, GDT,
 * TSS and page tables, with its own stack and the recording IDT, running `fn` (guest RIP) with
 * RFLAGS = 2. Controls: the minimum the capability MSRs demand plus HLT exiting, MSR bitmaps
 * (all clear) when available, "host address-space size", "IA-32e mode guest". */
void vmx_vm_init(struct vmx_vm *vm);
void vmx_vm_set_entry(struct vmx_vm *vm, void (*fn)(void));
/* VMLAUNCH (first time) or VMRESUME; returns when a VM exit (or entry failure) happens, or the
 * instruction fails. Fills *e. */
int vmx_vm_run(struct vmx_vm *vm, struct vmx_exit *e);
/* VMLAUNCH right after a MOV SS (for the error-26 check). */
int vmx_vm_launch_after_mov_ss(struct vmx_vm *vm, struct vmx_exit *e);
/* Advance the guest RIP past the instruction that caused the exit. */
void vmx_skip_insn(void);
/* Controls helpers: set/clear bits of a control field, checking the capability MSRs.
 * vmx_set_ctl returns false (and changes nothing) if a bit cannot be 1. */
bool vmx_set_pin(uint32_t bits);
bool vmx_set_proc(uint32_t bits);
bool vmx_set_sec(uint32_t bits); /* also turns on "activate secondary controls" */
bool vmx_set_exit(uint32_t bits);
bool vmx_set_entry(uint32_t bits);
void vmx_clear_proc(uint32_t bits);
/* Identity EPT (0-4 GiB, 2 MiB pages when supported) and the EPTP; turns on "enable EPT". */
bool vmx_vm_enable_ept(struct vmx_vm *vm);
/* The EPT entry mapping gpa at `level` (1 = 4 KiB PTE ... 4 = PML4E), splitting 2 MiB pages. */
volatile uint64_t *ept_entry(struct vmx_vm *vm, uint64_t gpa, int level);
volatile uint64_t *ept_entry_in(uint64_t *root, uint64_t gpa, int level);
uint64_t *vmx_ept_identity(void); /* a new identity EPT PML4 (0-4 GiB), for a second EPTP */
uint64_t vmx_eptp_default(const struct vmx_vm *vm);

/* Mask both 8259 PICs (OCW1 = 0xFF) so that no legacy IRQ reaches a guest with IF = 1. */
void vmx_mask_legacy_pic(void);

/* Local APIC (xAPIC MMIO) for interrupt/NMI exits. */
bool vmx_apic_init(void); /* enables the xAPIC (SVR), false if there is no APIC */
void vmx_apic_write(uint32_t reg, uint32_t v);
uint32_t vmx_apic_read(uint32_t reg);
void vmx_apic_self_ipi(uint8_t vector);
void vmx_apic_eoi(void);
uint32_t vmx_apic_id(void);
uint64_t vmx_apic_base(void);

/* Field table (lib/vmx_fields.c). */
struct vmx_field {
	const char *name;
	uint32_t enc;
	uint8_t feature; /* enum vmx_field_feature */
};
enum vmx_field_feature {
	FF_ALWAYS,
	FF_VPID,
	FF_POSTED,
	FF_EPT_VE,
	FF_VINTR,
	FF_PML,
	FF_TPR_SHADOW,
	FF_APIC_ACCESS,
	FF_VMFUNC,
	FF_EPT,
	FF_EPTP_SWITCH,
	FF_SHADOW,
	FF_XSAVES,
	FF_ENCLS,
	FF_TSC_SCALING,
	FF_PAT,
	FF_HOST_PAT,
	FF_EFER,
	FF_HOST_EFER,
	FF_PERF,
	FF_HOST_PERF,
	FF_BNDCFGS,
	FF_RTIT,
	FF_PREEMPT,
	FF_PLE,
	FF_SECONDARY,
	FF_CR3_TARGET1,
	FF_CR3_TARGET2,
	FF_CR3_TARGET3,
	FF_CR3_TARGET4,
	FF_UNCERTAIN, /* existence is implementation-specific: either accepted or error 12 */
};
extern const struct vmx_field vmx_fields[];
extern const unsigned vmx_field_count;
bool vmx_field_supported(const struct vmx_field *f);
const struct vmx_field *vmx_field_find(uint32_t enc);

#endif
