/* tvisor: building a guest's VMCS (SDM 3C chapter 24; the checks of §26.2-26.3 it must pass),
 * and keeping the real CR0/CR3/CR4/EFER consistent with what the guest believes they are.
 *
 * The guest starts the way a multiboot loader leaves a PC (Multiboot spec §3.2): 32-bit
 * protected mode, paging off, flat 4 GiB code and data segments, EFLAGS.IF=0, EAX=0x2BADB002,
 * EBX = the info block. Three ways to run that, by what the CPU offers and mmu=:
 *
 *  - EPT with "unrestricted guest": CR0.PE/PG may really be 0 in VMX non-root operation
 *    (SDM 3C §26.3.1.1), so the guest runs exactly as on bare metal; its paging and EFER are
 *    its own (no exits for them).
 *  - EPT without unrestricted guest ("pg_emul"): CR0.PG must be 1, so while the guest believes
 *    paging is off the CPU runs on a page directory of tvisor's that identity-maps the 32-bit
 *    space with 4 MiB pages (CR4.PSE, no PAE), placed in guest-physical space at IDMAP_GPA and
 *    mapped by the EPT only. CR0.PG/PE and CR4.PAE/PSE are host-owned and CR3 accesses exit
 *    while the guest's paging is off; when it turns paging on, its own CR3/CR4 go to the CPU.
 *  - shadow paging (mmu=shadow, or no EPT): the CPU always pages with tvisor's shadow tables
 *    (shadow.c); everything that changes translation is host-owned or exits.
 *
 * CR0/CR4 ownership: a bit is host-owned (set in the guest/host mask, SDM 3C §24.6.6) when VMX
 * needs it at a value the guest may not choose (the fixed bits of IA32_VMX_CR0/4_FIXED0/1:
 * CR0.NE, CR4.VMXE; PE/PG are exempt under unrestricted guest) or, as above, when the MMU mode
 * needs it. The guest reads its own values from the read shadows; writing a host-owned bit
 * differently exits and exits.c emulates the write. Whenever a real CPU would have forced
 * EFER.LME = LMA (CR0.PG=1 with the guest's paging off), the real EFER hides the guest's LME. */
#include "tvisor.h"

extern char tv_vmexit[]; /* entry.S */

/* Where pg_emul's identity page directory appears in guest-physical space: just below 4 GiB,
 * where a PC has firmware, not RAM (32-bit paging needs CR3 below 4 GiB). */
#define IDMAP_GPA 0xFFFFE000ull

#define PAGING_CR0 (CR0_PG | CR0_PE | CR0_WP)
#define PAGING_CR4 (CR4_PSE | CR4_PAE | CR4_PGE | CR4_PCIDE | CR4_SMEP | CR4_SMAP | CR4_PKE)

static uint64_t cr0_must1(struct guest *g)
{
	uint64_t m = caps.cr0_fixed0;
	if (g->proc2_ctls & PROC2_UNRESTRICTED)
		m &= ~(CR0_PE | CR0_PG);
	return m;
}

uint64_t cr0_real(struct guest *g, uint64_t view)
{
	uint64_t v = (view | cr0_must1(g)) & caps.cr0_fixed1;
	if (g->mmu == MMU_SHADOW)
		v |= CR0_PG | CR0_PE | CR0_WP; /* always on the shadow tables; see shadow.c */
	else if (g->pg_emul)
		v |= CR0_PG | CR0_PE;
	return v;
}

uint64_t cr4_real(struct guest *g, uint64_t view)
{
	uint64_t v = (view | caps.cr4_fixed0 | CR4_VMXE) & caps.cr4_fixed1;
	if (g->mmu == MMU_SHADOW) {
		/* the shadow tables are PAE-format (PAE paging or 4-level), never global or PCID-tagged:
		 * tvisor invalidates them itself */
		v &= ~(CR4_PGE | CR4_PCIDE | CR4_PKE);
		v |= CR4_PAE;
	} else if (g->pg_emul && !(g->cr0 & CR0_PG)) {
		v &= ~(CR4_PAE | CR4_PGE | CR4_PCIDE | CR4_SMEP | CR4_SMAP | CR4_PKE);
		v |= CR4_PSE; /* the identity page directory uses 4 MiB pages */
	}
	return v;
}

static bool efer_virtual(struct guest *g) { return g->mmu == MMU_SHADOW || g->pg_emul; }

uint64_t guest_efer(struct guest *g)
{
	/* With EPT + unrestricted guest the guest enters and leaves long mode on its own (CR0.PG is
	 * guest-owned): the VMCS has the current value. Otherwise every such change exits, and
	 * g->efer is the guest's view (the real EFER may differ, see the top of this file). */
	return efer_virtual(g) ? g->efer : vmcs_read(G_EFER);
}

uint64_t guest_cr3(struct guest *g)
{
	if (g->mmu == MMU_SHADOW || (g->pg_emul && !(g->cr0 & CR0_PG)))
		return g->cr3;
	return vmcs_read(G_CR3);
}

static void set_real_efer(struct guest *g, uint64_t efer)
{
	vmcs_write(G_EFER, efer);
	/* "IA-32e mode guest" must equal EFER.LMA (SDM 3C §26.2.4 / §26.3.1.1) */
	uint32_t e = g->entry_ctls;
	if (efer & EFER_LMA)
		e |= ENTRYC_IA32E;
	else
		e &= ~ENTRYC_IA32E;
	if (e != g->entry_ctls) {
		g->entry_ctls = e;
		vmcs_write(ENTRY_CTLS, e);
	}
}

static void set_proc(struct guest *g, uint32_t bits, bool on)
{
	uint32_t p = on ? g->proc_ctls | bits : g->proc_ctls & ~bits;
	p = ctl_adjust(&caps.proc, p);
	if (p != g->proc_ctls) {
		g->proc_ctls = p;
		vmcs_write(PROC_CTLS, p);
	}
}

void guest_set_paging(struct guest *g, uint64_t cr0, uint64_t cr4, uint64_t efer)
{
	uint64_t cr3 = guest_cr3(g); /* before the change: where it lives may change below */
	uint64_t old_efer = guest_efer(g);
	bool changed = ((g->cr0 ^ cr0) & PAGING_CR0) || ((g->cr4 ^ cr4) & PAGING_CR4) ||
		       ((old_efer ^ efer) & (EFER_NXE | EFER_LMA));
	g->cr0 = cr0;
	g->cr4 = cr4;
	g->efer = efer;
	g->cr3 = cr3;
	vmcs_write(CR0_SHADOW, cr0);
	vmcs_write(CR4_SHADOW, cr4);
	vmcs_write(G_CR0, cr0_real(g, cr0));
	vmcs_write(G_CR4, cr4_real(g, cr4));
	uint64_t real_efer = efer;
	if (efer_virtual(g) && !(efer & EFER_LMA))
		real_efer &= ~EFER_LME;
	set_real_efer(g, real_efer);
	if (g->pg_emul) {
		bool on = cr0 & CR0_PG;
		vmcs_write(G_CR3, on ? g->cr3 : IDMAP_GPA);
		set_proc(g, PROC_CR3_LOAD | PROC_CR3_STORE, !on);
	}
	if (changed) {
		if (g->mmu == MMU_SHADOW)
			shadow_paging_changed(g);
		guest_flush_tlb(g);
	}
}

void guest_write_efer(struct guest *g, uint64_t efer) { guest_set_paging(g, g->cr0, g->cr4, efer); }

void guest_flush_tlb(struct guest *g)
{
	/* Emulated changes of paging state do not go through the CPU's own TLB maintenance: with
	 * VPID the guest's translations survive VM entries (SDM 3C §28.3.3.3), so drop them. (The
	 * shadow MMU invalidates its own tables.) */
	if (g->mmu == MMU_SHADOW && !(g->proc2_ctls & PROC2_VPID))
		return;
	if ((g->proc2_ctls & PROC2_VPID) && (caps.ept_vpid & VPIDCAP_SINGLE))
		tv_invvpid(INVVPID_SINGLE, (uint64_t)g->id + 1, 0);
	else if (g->proc2_ctls & PROC2_VPID)
		tv_invvpid(INVVPID_ALL, 0, 0);
}

/* pg_emul: the identity page directory, 1024 4-MiB pages, in a host page the EPT maps at
 * IDMAP_GPA. Accesses through it to guest-physical memory beyond the guest's RAM still fault
 * in the EPT. */
static void idmap_build(struct guest *g)
{
	uint32_t *pd = page_alloc_zero();
	for (uint32_t i = 0; i < 1024; i++)
		pd[i] = (i << 22) | 0xE7; /* P, W, U, A, D, PS */
	ept_map_page(g, IDMAP_GPA, (uint64_t)pd);
}

static void host_state(void)
{
	struct dtr gdtr = sgdt(), idtr = sidt();
	vmcs_write(H_CR0, read_cr0());
	vmcs_write(H_CR3, read_cr3());
	vmcs_write(H_CR4, read_cr4());
	vmcs_write(H_CS_SEL, KERNEL_CS);
	vmcs_write(H_SS_SEL, KERNEL_DS);
	vmcs_write(H_DS_SEL, KERNEL_DS);
	vmcs_write(H_ES_SEL, KERNEL_DS);
	vmcs_write(H_FS_SEL, 0);
	vmcs_write(H_GS_SEL, 0);
	vmcs_write(H_TR_SEL, TSS_SEL);
	vmcs_write(H_FS_BASE, rdmsr(MSR_FS_BASE));
	vmcs_write(H_GS_BASE, rdmsr(MSR_GS_BASE));
	vmcs_write(H_TR_BASE, (uint64_t)tss());
	vmcs_write(H_GDTR_BASE, gdtr.base);
	vmcs_write(H_IDTR_BASE, idtr.base);
	vmcs_write(H_SYSENTER_CS, rdmsr(MSR_SYSENTER_CS));
	vmcs_write(H_SYSENTER_ESP, rdmsr(MSR_SYSENTER_ESP));
	vmcs_write(H_SYSENTER_EIP, rdmsr(MSR_SYSENTER_EIP));
	if (ctl_can(&caps.exit, EXITC_LOAD_PAT))
		vmcs_write(H_PAT, rdmsr(MSR_PAT));
	if (ctl_can(&caps.exit, EXITC_LOAD_EFER))
		vmcs_write(H_EFER, rdmsr(MSR_EFER));
	vmcs_write(H_RIP, (uint64_t)tv_vmexit);
	vmcs_write(H_RSP, 0); /* entry.S writes it before every entry */
}

static void seg(unsigned s, uint16_t sel, uint64_t base, uint32_t limit, uint32_t ar)
{
	vmcs_write(G_ES_SEL + 2 * s, sel);
	vmcs_write(G_ES_BASE + 2 * s, base);
	vmcs_write(G_ES_LIMIT + 2 * s, limit);
	vmcs_write(G_ES_AR + 2 * s, ar);
}

void guest_vmcs_init(struct guest *g, uint32_t entry, uint32_t mbi)
{
	uint32_t *region = page_alloc_zero();
	region[0] = VMX_BASIC_REVISION(caps.basic);
	g->vmcs_pa = (uint64_t)region;
	if (tv_vmclear(g->vmcs_pa) != 0 || tv_vmptrld(g->vmcs_pa) != 0) {
		printf("tvisor: FATAL: VMCLEAR/VMPTRLD of a new VMCS failed\n");
		exit(2);
	}
	loaded_vmcs = g->vmcs_pa;

	/* ---- execution controls ---- */
	uint32_t pin = PIN_EXTINT; /* interrupts belong to tvisor, never to a guest */
	if (caps.preempt)
		pin |= PIN_PREEMPT; /* time slicing (sched in main.c) */
	vmcs_write(PIN_CTLS, ctl_adjust(&caps.pin, pin));

	/* CR8 (the TPR of the local APIC, which belongs to tvisor) exits and is kept per guest */
	uint32_t proc = PROC_HLT | PROC_IO_BITMAPS | PROC_MSR_BITMAPS | PROC_MWAIT | PROC_MONITOR | PROC_CR8_LOAD |
			PROC_CR8_STORE;
	if (g->mmu == MMU_SHADOW)
		proc |= PROC_INVLPG | PROC_CR3_LOAD | PROC_CR3_STORE;
	if (caps.proc.may1 & PROC_SECONDARY)
		proc |= PROC_SECONDARY;
	g->proc_ctls = ctl_adjust(&caps.proc, proc);
	vmcs_write(PROC_CTLS, g->proc_ctls);

	uint32_t proc2 = 0;
	if (g->mmu == MMU_EPT) {
		proc2 |= PROC2_EPT;
		if (caps.unrestricted)
			proc2 |= PROC2_UNRESTRICTED;
		else
			g->pg_emul = true;
	}
	/* VPID only with EPT: the shadow MMU edits live translations and relies on the TLB flush
	 * that every VM entry and exit does without VPID (SDM 3C §28.3.3.3) */
	if (caps.vpid && g->mmu == MMU_EPT)
		proc2 |= PROC2_VPID;
	/* instructions that #UD in non-root operation unless enabled (SDM 3C §25.3): allow them when
	 * the CPU has them, so the guest sees the CPUID it is told about */
	if ((cpuid(0x80000001, 0).edx >> 27) & 1)
		proc2 |= PROC2_RDTSCP;
	if (cpuid(0, 0).eax >= 7 && ((cpuid(7, 0).ebx >> 10) & 1))
		proc2 |= PROC2_INVPCID;
	if (g->proc_ctls & PROC_SECONDARY) {
		g->proc2_ctls = ctl_adjust(&caps.proc2, proc2);
		vmcs_write(PROC2_CTLS, g->proc2_ctls);
	}
	/* With shadow paging INVPCID must exit (it invalidates our shadow) - it exits when
	 * "INVLPG exiting" and "enable INVPCID" are both 1 (SDM 3C §25.1.3). */

	vmcs_write(EXC_BITMAP, g->mmu == MMU_SHADOW ? (1u << VEC_PF) : 0);
	vmcs_write(PF_ERR_MASK, 0);
	vmcs_write(PF_ERR_MATCH, 0);
	vmcs_write(CR3_TARGET_COUNT, 0);
	vmcs_write(IO_BITMAP_A, io_bitmap_a_pa);
	vmcs_write(IO_BITMAP_B, io_bitmap_b_pa);
	vmcs_write(MSR_BITMAP, msr_bitmap_pa);
	vmcs_write(TSC_OFFSET, 0);
	if (g->proc2_ctls & PROC2_VPID)
		vmcs_write(VPID, (uint64_t)g->id + 1);
	if (g->proc2_ctls & PROC2_EPT)
		vmcs_write(EPT_POINTER, g->eptp);

	/* ---- exit / entry controls ---- */
	uint32_t exitc = EXITC_HOST_64 | EXITC_ACK_INTR | EXITC_SAVE_EFER | EXITC_LOAD_EFER | EXITC_SAVE_PAT | EXITC_LOAD_PAT;
	vmcs_write(EXIT_CTLS, ctl_adjust(&caps.exit, exitc));
	vmcs_write(EXIT_MSR_STORE_COUNT, 0);
	vmcs_write(EXIT_MSR_LOAD_COUNT, 0);
	g->entry_ctls = ctl_adjust(&caps.entry, ENTRYC_LOAD_EFER | ENTRYC_LOAD_PAT);
	vmcs_write(ENTRY_CTLS, g->entry_ctls);
	vmcs_write(ENTRY_MSR_LOAD_COUNT, 0);
	vmcs_write(ENTRY_INTR_INFO, 0);
	if (!ctl_can(&caps.entry, ENTRYC_LOAD_EFER) || !ctl_can(&caps.exit, EXITC_SAVE_EFER | EXITC_LOAD_EFER)) {
		/* Without the EFER controls a guest's EFER would have to travel through the
		 * VM-entry/exit MSR lists; every VT-x CPU with EPT has them. */
		printf("tvisor: FATAL: this CPU cannot load/save IA32_EFER on VM entry/exit\n");
		exit(2);
	}

	/* ---- CR0/CR4 ownership (see the top of this file) ---- */
	g->cr0 = CR0_PE | CR0_ET;
	g->cr4 = 0;
	g->cr0_mask = cr0_must1(g) | (~caps.cr0_fixed1 & 0xFFFFFFFFull);
	g->cr4_mask = caps.cr4_fixed0 | CR4_VMXE | (~caps.cr4_fixed1 & 0xFFFFFFFFull);
	if (g->mmu == MMU_SHADOW) {
		g->cr0_mask |= PAGING_CR0;
		g->cr4_mask |= PAGING_CR4;
	} else if (g->pg_emul) {
		g->cr0_mask |= CR0_PG | CR0_PE;
		g->cr4_mask |= CR4_PAE | CR4_PSE | CR4_PGE | CR4_PCIDE | CR4_SMEP | CR4_SMAP | CR4_PKE;
		idmap_build(g);
	}
	vmcs_write(CR0_MASK, g->cr0_mask);
	vmcs_write(CR4_MASK, g->cr4_mask);
	vmcs_write(CR0_SHADOW, g->cr0);
	vmcs_write(CR4_SHADOW, g->cr4);

	host_state();

	/* ---- guest state: the multiboot machine state ---- */
	vmcs_write(G_CR0, cr0_real(g, g->cr0));
	vmcs_write(G_CR3, g->pg_emul ? IDMAP_GPA : 0);
	vmcs_write(G_CR4, cr4_real(g, g->cr4));
	vmcs_write(G_DR7, 0x400);
	vmcs_write(G_RSP, 0);
	vmcs_write(G_RIP, entry);
	vmcs_write(G_RFLAGS, RFLAGS_FIXED);
	const uint32_t code32 = 0xC09B, data32 = 0xC093; /* G, D/B, P, S, type exec/read or read/write, accessed */
	seg(SEG_CS, 0x08, 0, 0xFFFFFFFF, code32);
	seg(SEG_SS, 0x10, 0, 0xFFFFFFFF, data32);
	seg(SEG_DS, 0x10, 0, 0xFFFFFFFF, data32);
	seg(SEG_ES, 0x10, 0, 0xFFFFFFFF, data32);
	seg(SEG_FS, 0x10, 0, 0xFFFFFFFF, data32);
	seg(SEG_GS, 0x10, 0, 0xFFFFFFFF, data32);
	seg(SEG_LDTR, 0, 0, 0, AR_UNUSABLE);
	/* TR must be a usable busy TSS even though the guest has none yet (SDM 3C §26.3.1.2);
	 * nothing uses it until the guest loads its own. */
	seg(SEG_TR, 0, 0, 0xFFFF, 0x008B);
	vmcs_write(G_GDTR_BASE, 0x10000); /* loader.c: the flat GDT at the start of the loader area */
	vmcs_write(G_GDTR_LIMIT, 23);
	vmcs_write(G_IDTR_BASE, 0);
	vmcs_write(G_IDTR_LIMIT, 0);
	vmcs_write(G_DEBUGCTL, 0);
	vmcs_write(G_SYSENTER_CS, 0);
	vmcs_write(G_SYSENTER_ESP, 0);
	vmcs_write(G_SYSENTER_EIP, 0);
	vmcs_write(G_PAT, 0x0007040600070406ull); /* the power-on PAT (SDM 3A §12.12.4) */
	vmcs_write(G_INTERRUPTIBILITY, 0);
	vmcs_write(G_ACTIVITY, 0);
	vmcs_write(G_PENDING_DBG, 0);
	vmcs_write(G_LINK_PTR, ~0ull);
	g->efer = 0;
	set_real_efer(g, 0);

	memset(&g->regs, 0, sizeof(g->regs));
	g->regs.rax = MULTIBOOT_BOOTLOADER_MAGIC;
	g->regs.rbx = mbi;
	g->launched = false;
	msrs_guest_init(g);
	if (g->mmu == MMU_SHADOW)
		shadow_init(g); /* sets GUEST_CR3 to the shadow root */
}
