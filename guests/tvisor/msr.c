/* tvisor: MSRs of a guest (SDM 3C §24.6.9 MSR bitmaps, §25.1.3).
 *
 * Passed through (no exit): the MSRs a kernel touches on every system call or context switch
 * and whose values are the guest's own: FS/GS/KERNEL_GS base, STAR/LSTAR/CSTAR/SFMASK,
 * SYSENTER_CS/ESP/EIP, TSC_AUX, PAT (when the VMCS switches it), and reads of the TSC.
 * VMX switches FS/GS base, SYSENTER_* and PAT itself (guest-state area); STAR, LSTAR, CSTAR,
 * SFMASK, KERNEL_GS_BASE and TSC_AUX it does not, so tvisor keeps each guest's values in its
 * struct guest while the guest is off the CPU (msrs_switch; tvisor itself never uses them), and
 * likewise DR0-DR3, DR6 and the x87/SSE state (tvisor uses neither).
 *
 * Emulated (exit): EFER (the guest's view; shadow paging runs with a different real EFER),
 * the TSC on write (becomes a TSC offset), DEBUGCTL, FEATURE_CONTROL (locked, VMX off: VMX is
 * hidden from guests), MTRR capability/default type, MISC_ENABLE, microcode and machine-check
 * status MSRs. Everything else -- VMX capability MSRs, x2APIC (the guest has no APIC),
 * unimplemented ones -- raises #GP(0) in the guest, as a CPU without them would. */
#include "tvisor.h"

uint64_t msr_bitmap_pa;
static uint8_t *bitmap;

/* clear the exit bit: read (write=false) or write (write=true) */
static void msr_pass(uint32_t msr, bool read, bool write)
{
	unsigned base = msr >= 0xC0000000u ? 1024 : 0;
	unsigned bit = msr & 0x1FFF;
	if (read)
		bitmap[base + bit / 8] &= (uint8_t) ~(1u << (bit % 8));
	if (write)
		bitmap[2048 + base + bit / 8] &= (uint8_t) ~(1u << (bit % 8));
}

void msr_bitmap_init(void)
{
	bitmap = page_alloc_zero();
	memset(bitmap, 0xFF, PAGE_4K);
	msr_bitmap_pa = (uint64_t)bitmap;
	static const uint32_t both[] = { MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_STAR, MSR_LSTAR, MSR_CSTAR,
					 MSR_SFMASK, MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, MSR_TSC_AUX };
	for (unsigned i = 0; i < ARRAY_SIZE(both); i++)
		msr_pass(both[i], true, true);
	if (ctl_can(&caps.entry, ENTRYC_LOAD_PAT) && ctl_can(&caps.exit, EXITC_SAVE_PAT | EXITC_LOAD_PAT))
		msr_pass(MSR_PAT, true, true);
	msr_pass(MSR_TSC, true, false);
}

static bool fxsr;
static uint8_t host_fpu[512] ALIGNED(16);

void fpu_init(void)
{
	fxsr = (cpuid(1, 0).edx >> 24) & 1;
	if (!fxsr)
		return;
	/* FXSAVE/FXRSTOR fault with CR0.EM or CR0.TS set (#UD / #NM); OSFXSR makes them cover the
	 * XMM registers. Done before any VMCS takes CR0/CR4 as host state. */
	write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP | CR0_NE);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
}

void msrs_guest_init(struct guest *g)
{
	g->msr_star = g->msr_lstar = g->msr_cstar = g->msr_sfmask = g->msr_kgs = g->msr_tsc_aux = 0;
	g->msr_mtrr_def = 0;
	g->msr_misc_enable = 1; /* fast strings */
	memset(g->dr, 0, sizeof(g->dr));
	g->dr6 = 0xFFFF0FF0; /* the power-on values (SDM 3A §9.1.1) */
	g->cr8 = 0;
	/* x87/SSE power-on state: FCW 0x37F, MXCSR 0x1F80, all tags empty (FXSAVE format) */
	memset(g->fpu, 0, sizeof(g->fpu));
	g->fpu[0] = 0x7F;
	g->fpu[1] = 0x03;
	g->fpu[24] = 0x80;
	g->fpu[25] = 0x1F;
}

#define DR_READ(n, v) asm volatile("mov %%db" #n ", %0" : "=r"(v))
#define DR_WRITE(n, v) asm volatile("mov %0, %%db" #n : : "r"(v))

static void other_state_switch(struct guest *from, struct guest *to)
{
	/* debug registers DR0-DR3 and DR6 (DR7 is in the VMCS) */
	if (from) {
		DR_READ(0, from->dr[0]);
		DR_READ(1, from->dr[1]);
		DR_READ(2, from->dr[2]);
		DR_READ(3, from->dr[3]);
		DR_READ(6, from->dr6);
	}
	if (to) {
		DR_WRITE(0, to->dr[0]);
		DR_WRITE(1, to->dr[1]);
		DR_WRITE(2, to->dr[2]);
		DR_WRITE(3, to->dr[3]);
		DR_WRITE(6, to->dr6);
	}
	if (fxsr) {
		asm volatile("fxsave64 %0" : "=m"(*(uint8_t(*)[512])(from ? from->fpu : host_fpu)));
		asm volatile("fxrstor64 %0" : : "m"(*(const uint8_t(*)[512])(to ? to->fpu : host_fpu)));
	}
}

static uint64_t host_star, host_lstar, host_cstar, host_sfmask, host_kgs, host_tsc_aux;
static bool host_saved;

void msrs_switch(struct guest *from, struct guest *to)
{
	if (from == to)
		return;
	other_state_switch(from, to);
	bool rdtscp = (cpuid(0x80000001, 0).edx >> 27) & 1;
	uint64_t *dst[6];
	if (from) {
		dst[0] = &from->msr_star, dst[1] = &from->msr_lstar, dst[2] = &from->msr_cstar;
		dst[3] = &from->msr_sfmask, dst[4] = &from->msr_kgs, dst[5] = &from->msr_tsc_aux;
	} else {
		dst[0] = &host_star, dst[1] = &host_lstar, dst[2] = &host_cstar;
		dst[3] = &host_sfmask, dst[4] = &host_kgs, dst[5] = &host_tsc_aux;
		host_saved = true;
	}
	*dst[0] = rdmsr(MSR_STAR);
	*dst[1] = rdmsr(MSR_LSTAR);
	*dst[2] = rdmsr(MSR_CSTAR);
	*dst[3] = rdmsr(MSR_SFMASK);
	*dst[4] = rdmsr(MSR_KERNEL_GS_BASE);
	if (rdtscp)
		*dst[5] = rdmsr(MSR_TSC_AUX);
	if (to) {
		wrmsr(MSR_STAR, to->msr_star);
		wrmsr(MSR_LSTAR, to->msr_lstar);
		wrmsr(MSR_CSTAR, to->msr_cstar);
		wrmsr(MSR_SFMASK, to->msr_sfmask);
		wrmsr(MSR_KERNEL_GS_BASE, to->msr_kgs);
		if (rdtscp)
			wrmsr(MSR_TSC_AUX, to->msr_tsc_aux);
	} else if (host_saved) {
		wrmsr(MSR_STAR, host_star);
		wrmsr(MSR_LSTAR, host_lstar);
		wrmsr(MSR_CSTAR, host_cstar);
		wrmsr(MSR_SFMASK, host_sfmask);
		wrmsr(MSR_KERNEL_GS_BASE, host_kgs);
		if (rdtscp)
			wrmsr(MSR_TSC_AUX, host_tsc_aux);
	}
}

/* EFER bits a guest may set: SCE, LME, NXE (if the CPU has NX); LMA is read-only. */
static uint64_t efer_writable(void)
{
	uint64_t m = EFER_SCE | EFER_LME;
	if ((cpuid(0x80000001, 0).edx >> 20) & 1)
		m |= EFER_NXE;
	return m;
}

bool msr_read(struct guest *g, uint32_t msr, uint64_t *v)
{
	switch (msr) {
	case MSR_EFER:
		*v = guest_efer(g);
		return true;
	case MSR_FEATURE_CONTROL:
		*v = FC_LOCK; /* locked with VMX disabled: VMX is not offered to guests */
		return true;
	case MSR_PAT:
		*v = vmcs_read(G_PAT);
		return true;
	case MSR_DEBUGCTL:
		*v = vmcs_read(G_DEBUGCTL);
		return true;
	case MSR_MTRRCAP:
		*v = 0; /* no variable ranges, no fixed ranges, no WC */
		return true;
	case MSR_MTRR_DEF_TYPE:
		*v = g->msr_mtrr_def;
		return true;
	case MSR_MISC_ENABLE:
		*v = g->msr_misc_enable;
		return true;
	case MSR_PLATFORM_ID:
	case MSR_BIOS_SIGN_ID:
	case MSR_MCG_CAP:
	case MSR_MCG_STATUS:
		*v = 0;
		return true;
	default:
		return false;
	}
}

bool msr_write(struct guest *g, uint32_t msr, uint64_t v)
{
	switch (msr) {
	case MSR_EFER: {
		uint64_t old = guest_efer(g);
		if (v & ~(efer_writable() | EFER_LMA))
			return false;
		/* LME cannot change while paging is on (SDM 3A §10.8.5) */
		if ((g->cr0 & CR0_PG) && ((v ^ old) & EFER_LME))
			return false;
		v = (v & ~EFER_LMA) | (old & EFER_LMA);
		guest_write_efer(g, v);
		return true;
	}
	case MSR_TSC:
		/* WRMSR to the TSC: keep the guest's clock as an offset (SDM 3C §25.3) */
		vmcs_write(TSC_OFFSET, v - rdtsc());
		if (!(g->proc_ctls & PROC_TSC_OFFSET) && ctl_can(&caps.proc, PROC_TSC_OFFSET)) {
			g->proc_ctls |= PROC_TSC_OFFSET;
			vmcs_write(PROC_CTLS, g->proc_ctls);
		}
		return true;
	case MSR_PAT: {
		for (int i = 0; i < 8; i++) {
			unsigned t = (v >> (8 * i)) & 0xFF;
			if (t == 2 || t == 3 || t > 7)
				return false;
		}
		vmcs_write(G_PAT, v);
		return true;
	}
	case MSR_DEBUGCTL:
		return v == 0; /* no LBR/BTF for guests */
	case MSR_MTRR_DEF_TYPE:
		if (v & ~0xCFFull)
			return false;
		g->msr_mtrr_def = v;
		return true;
	case MSR_MISC_ENABLE:
		g->msr_misc_enable = v;
		return true;
	case MSR_BIOS_SIGN_ID:
	case MSR_MCG_STATUS:
		return true;
	default:
		return false;
	}
}
