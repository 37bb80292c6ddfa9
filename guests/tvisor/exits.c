/* tvisor: VM-exit handling. One handler per basic exit reason (SDM 3C Appendix C) in a table;
 * a reason without a handler -- something tvisor's controls should never produce -- ends that
 * guest with a register dump, never tvisor.
 *
 * Hypercalls (VMCALL, CPL 0 only): RAX = function, arguments in RBX, RCX; result in RAX.
 *   0  TVC_VERSION     RAX = 0x74760001 ("tv", ABI version 1)
 *   1  TVC_PUTCHAR     RBX = a byte for the guest's console (as if written to its COM1)
 *   2  TVC_EXIT        RBX = exit code: ends the guest (as the debug-exit port does)
 *   3  TVC_GUEST_ID    RAX = the guest's number N (the N of "[gN]")
 *   4  TVC_WRITE       RBX = guest-linear address, RCX = length (at most 4096): console output
 * Unknown functions return RAX = -1 (TVC_ENOSYS); a VMCALL at CPL > 0 returns -2 (TVC_EPERM). */
#include "tvisor.h"

#define TVC_VERSION 0
#define TVC_PUTCHAR 1
#define TVC_EXIT 2
#define TVC_GUEST_ID 3
#define TVC_WRITE 4
#define TVC_ENOSYS ((uint64_t)-1)
#define TVC_EPERM ((uint64_t)-2)

static bool injected; /* an event was injected while handling this exit */

/* ---- registers ---- */

uint64_t *guest_gpr(struct guest *g, unsigned n)
{
	struct tv_regs *r = &g->regs;
	switch (n & 15) {
	case 0: return &r->rax;
	case 1: return &r->rcx;
	case 2: return &r->rdx;
	case 3: return &r->rbx;
	case 5: return &r->rbp;
	case 6: return &r->rsi;
	case 7: return &r->rdi;
	case 8: return &r->r8;
	case 9: return &r->r9;
	case 10: return &r->r10;
	case 11: return &r->r11;
	case 12: return &r->r12;
	case 13: return &r->r13;
	case 14: return &r->r14;
	case 15: return &r->r15;
	default: return 0; /* RSP: in the VMCS */
	}
}

uint64_t guest_reg_read(struct guest *g, unsigned n)
{
	uint64_t *p = guest_gpr(g, n);
	return p ? *p : vmcs_read(G_RSP);
}

void guest_reg_write(struct guest *g, unsigned n, uint64_t v)
{
	uint64_t *p = guest_gpr(g, n);
	if (p)
		*p = v;
	else
		vmcs_write(G_RSP, v);
}

unsigned guest_cpl(void) { return AR_DPL(vmcs_read(G_SS_AR)); } /* SS.DPL is the CPL (SDM 3C §24.4.1) */

static bool guest_64bit(struct guest *g) { return (guest_efer(g) & EFER_LMA) && (vmcs_read(G_CS_AR) & (1u << 13)); }

/* ---- events ---- */

void skip_insn(struct guest *g, struct exit_info *e)
{
	(void)g;
	vmcs_write(G_RIP, e->rip + e->len);
	/* an instruction that completes ends STI/MOV-SS blocking (SDM 3C §24.4.2) */
	uint64_t intr = vmcs_read(G_INTERRUPTIBILITY);
	if (intr & 3)
		vmcs_write(G_INTERRUPTIBILITY, intr & ~3ull);
	/* single-stepping over an instruction tvisor emulated: the single-step trap is still due,
	 * so make it a pending debug exception (BS) that VM entry delivers (SDM 3C §26.7.3) */
	if (vmcs_read(G_RFLAGS) & RFLAGS_TF)
		vmcs_write(G_PENDING_DBG, vmcs_read(G_PENDING_DBG) | (1u << 14));
}

void inject_exception(struct guest *g, unsigned vector, int error_code)
{
	if (g->mmu == MMU_SHADOW)
		shadow_prepare_injection(g, vector);
	uint32_t info = vector | (II_HW_EXC << 8) | II_VALID;
	/* no error code in real mode (possible under unrestricted guest, SDM 3C §26.2.1.3) */
	if (error_code >= 0 && (g->cr0 & CR0_PE)) {
		info |= II_ERROR;
		vmcs_write(ENTRY_EXC_ERROR, (uint32_t)error_code);
	}
	vmcs_write(ENTRY_INTR_INFO, info);
	injected = true;
	g->injected++;
}

void inject_gp(struct guest *g) { inject_exception(g, VEC_GP, 0); }
void inject_ud(struct guest *g) { inject_exception(g, VEC_UD, -1); }

/* ---- handlers ---- */
typedef void (*exit_handler)(struct guest *g, struct exit_info *e);

static void h_unexpected(struct guest *g, struct exit_info *e)
{
	guest_fail(g, "unexpected VM exit %u (%s)", e->reason, exit_reason_name(e->reason));
}

static void h_entry_failure(struct guest *g, struct exit_info *e)
{
	guest_fail(g, "VM entry failed: exit reason %u (%s), qualification 0x%lx", e->reason, exit_reason_name(e->reason),
		   e->qual);
}

static void h_exception(struct guest *g, struct exit_info *e)
{
	uint32_t info = (uint32_t)vmcs_read(EXIT_INTR_INFO);
	unsigned vec = info & 0xFF;
	if (II_TYPE(info) == II_HW_EXC && vec == VEC_PF && g->mmu == MMU_SHADOW) {
		/* fixes the shadow, or delivers the guest's own #PF */
		shadow_page_fault(g, e->qual, (uint32_t)vmcs_read(EXIT_INTR_ERROR));
		return;
	}
	guest_fail(g, "unexpected exception exit: vector %u type %u error 0x%lx", vec, II_TYPE(info),
		   (info & II_ERROR) ? vmcs_read(EXIT_INTR_ERROR) : 0);
}

static void h_extint(struct guest *g, struct exit_info *e)
{
	/* Interrupts belong to tvisor; it programs no interrupt source, so this is spurious (the
	 * "acknowledge interrupt on exit" control already took it from the controller). */
	(void)e;
	uint32_t info = (uint32_t)vmcs_read(EXIT_INTR_INFO);
	guest_printf(g, "ignored external interrupt, vector %u", info & 0xFF);
}

static void h_triple_fault(struct guest *g, struct exit_info *e)
{
	(void)e;
	guest_printf(g, "triple fault");
	guest_dump(g);
	guest_end(g, END_TRIPLE_FAULT, 0);
}

/* The CPU's CPUID answers never change, so tvisor asks once per (leaf, subleaf) and keeps them,
 * as KVM keeps its CPUID table: under a hypervisor of its own (L0 with --nested) each CPUID
 * tvisor executes is itself an exit. */
static struct cpuid_regs cpuid_cached(uint32_t leaf, uint32_t sub)
{
	static struct {
		uint32_t leaf, sub;
		bool valid;
		struct cpuid_regs r;
	} cache[64];
	for (unsigned i = 0; i < 64; i++) {
		if (!cache[i].valid) {
			cache[i].leaf = leaf;
			cache[i].sub = sub;
			cache[i].r = cpuid(leaf, sub);
			cache[i].valid = true;
			return cache[i].r;
		}
		if (cache[i].leaf == leaf && cache[i].sub == sub)
			return cache[i].r;
	}
	return cpuid(leaf, sub);
}

static void h_cpuid(struct guest *g, struct exit_info *e)
{
	uint32_t leaf = (uint32_t)g->regs.rax, sub = (uint32_t)g->regs.rcx;
	struct cpuid_regs r;
	if (leaf >= 0x40000000u && leaf <= 0x400000FFu) {
		/* hypervisor leaves: ours, with the signature "TurtleTvisor" */
		r = (struct cpuid_regs){ 0, 0, 0, 0 };
		if (leaf == 0x40000000u) {
			r.eax = 0x40000000u;
			memcpy(&r.ebx, "Turt", 4);
			memcpy(&r.ecx, "leTv", 4);
			memcpy(&r.edx, "isor", 4);
		}
	} else {
		r = cpuid_cached(leaf, sub);
		switch (leaf) {
		case 1:
			r.ebx = (r.ebx & 0x0000FFFFu) | (1u << 16); /* APIC ID 0, one logical processor */
			/* hidden: VMX (no nested VMX yet), SMX, MONITOR/MWAIT, x2APIC, TSC-deadline
			 * (the guest has no local APIC), XSAVE/OSXSAVE/AVX (XSETBV is not virtualized) */
			r.ecx &= ~((1u << 5) | (1u << 6) | (1u << 3) | (1u << 21) | (1u << 24) | (1u << 26) | (1u << 27) |
				   (1u << 28));
			r.ecx |= 1u << 31; /* running under a hypervisor */
			r.edx &= ~(1u << 9); /* no APIC */
			break;
		case 7:
			if (sub == 0) {
				/* AVX2 and the AVX-512 family: they need XSAVE-managed state */
				r.ebx &= ~((1u << 5) | (1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
					   (1u << 30) | (1u << 31));
				r.ecx &= ~((1u << 3) | (1u << 4)); /* PKU, OSPKE */
			}
			break;
		case 0xD:
			r = (struct cpuid_regs){ 0, 0, 0, 0 }; /* no XSAVE state components */
			break;
		case 6:
			r.eax &= ~(1u << 2); /* ARAT describes the APIC timer: there is none */
			break;
		case 0xB:
			r.edx = 0; /* x2APIC ID */
			if (sub == 1)
				r.ebx = 1;
			break;
		}
	}
	g->regs.rax = r.eax;
	g->regs.rbx = r.ebx;
	g->regs.rcx = r.ecx;
	g->regs.rdx = r.edx;
	skip_insn(g, e);
}

static void h_hlt(struct guest *g, struct exit_info *e)
{
	/* The guest has no interrupt source (no APIC, PIC, PIT or UART interrupts are emulated) and
	 * NMIs are not virtualized: nothing can ever wake it. */
	(void)e;
	uint64_t rf = vmcs_read(G_RFLAGS);
	guest_printf(g, "halted at rip 0x%lx with %s: nothing can wake it", e->rip,
		     (rf & RFLAGS_IF) ? "interrupts enabled, but no interrupt source" : "interrupts disabled");
	guest_end(g, END_HALTED, 0);
}

static void h_invlpg(struct guest *g, struct exit_info *e)
{
	if (g->mmu == MMU_SHADOW)
		shadow_invlpg(g, e->qual);
	skip_insn(g, e);
}

/* The linear address of an instruction's memory operand from the VM-exit instruction
 * information (SDM 3C §27.2.5, Table 27-13: scaling, address size, segment, index, base) and
 * the displacement, which the exit qualification holds for these exits (§27.2.1). */
static uint64_t insn_mem_operand(struct guest *g, uint32_t info, uint64_t disp)
{
	unsigned scale = info & 3, asz = (info >> 7) & 7, segr = (info >> 15) & 7;
	uint64_t a = disp;
	if (!(info & (1u << 22)))
		a += guest_reg_read(g, (info >> 18) & 15) << scale;
	if (!(info & (1u << 27)))
		a += guest_reg_read(g, (info >> 23) & 15);
	a &= asz == 0 ? 0xFFFF : asz == 1 ? 0xFFFFFFFFull : ~0ull;
	if (!guest_64bit(g) || segr == SEG_FS || segr == SEG_GS)
		a += vmcs_read(G_ES_BASE + 2 * segr);
	return guest_64bit(g) ? a : (uint32_t)a;
}

static void h_invpcid(struct guest *g, struct exit_info *e)
{
	/* exits only with shadow paging (INVLPG exiting + enable INVPCID, SDM 3C §25.1.3) */
	uint32_t info = (uint32_t)vmcs_read(EXIT_INSN_INFO);
	uint64_t type = guest_reg_read(g, (info >> 28) & 15);
	if (!guest_64bit(g))
		type = (uint32_t)type;
	uint64_t la = insn_mem_operand(g, info, e->qual);
	struct {
		uint64_t pcid, addr;
	} d;
	if (!guest_read_linear(g, la, &d, sizeof(d))) {
		guest_fail(g, "INVPCID descriptor at 0x%lx is not readable", la);
		return;
	}
	if (type > 3 || (type == 0 && d.pcid > 0xFFF) || (type <= 1 && d.pcid > 0xFFF)) {
		inject_gp(g);
		return;
	}
	shadow_invpcid(g, (unsigned)type, d.pcid, d.addr);
	skip_insn(g, e);
}

static void h_vmx_insn(struct guest *g, struct exit_info *e)
{
	/* VMX is not offered to guests (CPUID.1:ECX.VMX = 0): its instructions are #UD */
	(void)e;
	inject_ud(g);
}

static void h_ud(struct guest *g, struct exit_info *e)
{
	(void)e;
	inject_ud(g); /* MONITOR/MWAIT/GETSEC/XSETBV: features CPUID does not report */
}

static void h_nop(struct guest *g, struct exit_info *e) { skip_insn(g, e); } /* INVD, WBINVD */

static void h_vmcall(struct guest *g, struct exit_info *e)
{
	struct tv_regs *r = &g->regs;
	if (guest_cpl() != 0) {
		r->rax = TVC_EPERM;
		skip_insn(g, e);
		return;
	}
	switch (r->rax) {
	case TVC_VERSION:
		r->rax = 0x74760001;
		break;
	case TVC_PUTCHAR:
		console_putc(g, (uint8_t)r->rbx);
		r->rax = 0;
		break;
	case TVC_EXIT:
		guest_end(g, END_EXIT_CODE, (int)r->rbx);
		return;
	case TVC_GUEST_ID:
		r->rax = (uint64_t)g->id;
		break;
	case TVC_WRITE: {
		uint64_t n = r->rcx > 4096 ? 4096 : r->rcx;
		for (uint64_t i = 0; i < n; i++) {
			uint8_t c;
			if (!guest_read_linear(g, r->rbx + i, &c, 1)) {
				r->rax = TVC_ENOSYS;
				skip_insn(g, e);
				return;
			}
			console_putc(g, c);
		}
		r->rax = n;
		break;
	}
	default:
		r->rax = TVC_ENOSYS;
		break;
	}
	skip_insn(g, e);
}

/* ---- control registers ---- */

/* MOV to CR0 with the architectural checks (SDM 3A §2.5, §10.8.5, MOV CR in Vol. 2) done here,
 * since the exit came before the CPU did any of them. Returns false after injecting #GP. */
static bool guest_write_cr0(struct guest *g, uint64_t v)
{
	if (v >> 32)
		return inject_gp(g), false;
	v |= CR0_ET;
	if ((v & CR0_PG) && !(v & CR0_PE))
		return inject_gp(g), false;
	if ((v & CR0_NW) && !(v & CR0_CD))
		return inject_gp(g), false;
	uint64_t old = g->cr0, efer = guest_efer(g);
	if ((v & CR0_PG) && !(old & CR0_PG) && (efer & EFER_LME)) {
		/* activating IA-32e mode: needs PAE and a CS with L=0 */
		if (!(g->cr4 & CR4_PAE) || (vmcs_read(G_CS_AR) & (1u << 13)))
			return inject_gp(g), false;
		efer |= EFER_LMA;
	}
	if (!(v & CR0_PG) && (old & CR0_PG) && (efer & EFER_LMA)) {
		if (guest_64bit(g))
			return inject_gp(g), false;
		efer &= ~EFER_LMA;
	}
	if ((efer & EFER_LMA) && !(v & CR0_PE))
		return inject_gp(g), false;
	if (!(v & CR0_PE) && !(g->proc2_ctls & PROC2_UNRESTRICTED)) {
		/* real mode needs unrestricted guest (or a virtual-8086 emulation tvisor does not have) */
		guest_fail(g, "the guest turned CR0.PE off: real mode needs unrestricted guest");
		return false;
	}
	guest_set_paging(g, v, g->cr4, efer);
	return true;
}

static bool guest_write_cr4(struct guest *g, uint64_t v)
{
	/* what a guest may set: what VMX allows, minus what CPUID hides from it */
	uint64_t allowed = caps.cr4_fixed1 & ~(CR4_VMXE | CR4_SMXE | CR4_OSXSAVE | CR4_PKE);
	if (v & ~allowed)
		return inject_gp(g), false;
	uint64_t old = g->cr4, efer = guest_efer(g);
	if ((efer & EFER_LMA) && !(v & CR4_PAE))
		return inject_gp(g), false;
	if ((v & CR4_PCIDE) && !(old & CR4_PCIDE) && (!(efer & EFER_LMA) || (guest_cr3(g) & 0xFFF)))
		return inject_gp(g), false;
	guest_set_paging(g, g->cr0, v, efer);
	return true;
}

/* MOV to CR3 when it exits: shadow paging, or pg_emul while the guest's paging is off. */
static bool guest_write_cr3(struct guest *g, uint64_t v)
{
	if (g->mmu == MMU_SHADOW)
		return shadow_cr3_write(g, v);
	bool pcide = (g->cr4 & CR4_PCIDE) && (guest_efer(g) & EFER_LMA);
	if (pcide)
		v &= ~(1ull << 63); /* "do not flush": not stored */
	if (v >> caps.maxphyaddr)
		return inject_gp(g), false;
	g->cr3 = v;
	guest_flush_tlb(g);
	return true;
}

static void h_cr(struct guest *g, struct exit_info *e)
{
	unsigned cr = e->qual & 15, type = (e->qual >> 4) & 3, reg = (e->qual >> 8) & 15;
	bool ok = true;
	switch (type) {
	case 0: { /* MOV to CR */
		uint64_t v = guest_reg_read(g, reg);
		if (!guest_64bit(g))
			v = (uint32_t)v;
		if (cr == 0)
			ok = guest_write_cr0(g, v);
		else if (cr == 4)
			ok = guest_write_cr4(g, v);
		else if (cr == 3)
			ok = guest_write_cr3(g, v);
		else if (cr == 8) {
			if (v > 15)
				return inject_gp(g);
			g->cr8 = (uint8_t)v;
		} else
			return guest_fail(g, "unexpected MOV to CR%u exit", cr);
		break;
	}
	case 1: /* MOV from CR3 or CR8 */
		if (cr == 3) {
			uint64_t v = guest_cr3(g);
			guest_reg_write(g, reg, guest_64bit(g) ? v : (uint32_t)v);
		} else if (cr == 8) {
			guest_reg_write(g, reg, g->cr8);
		} else {
			return guest_fail(g, "unexpected MOV from CR%u exit", cr);
		}
		break;
	case 2: /* CLTS */
		ok = guest_write_cr0(g, g->cr0 & ~CR0_TS);
		break;
	case 3: { /* LMSW: loads CR0[3:0], cannot clear PE */
		uint64_t src = (e->qual >> 16) & 0xFFFF;
		ok = guest_write_cr0(g, (g->cr0 & ~0xEull) | (src & 0xF) | (g->cr0 & CR0_PE));
		break;
	}
	}
	if (ok && g->state == G_RUNNABLE)
		skip_insn(g, e);
}

/* ---- I/O ---- */

static void h_io(struct guest *g, struct exit_info *e)
{
	unsigned size = (e->qual & 7) + 1;
	bool in = e->qual & 8, string = e->qual & 16, rep = e->qual & 32;
	uint16_t port = (uint16_t)(e->qual >> 16);
	uint32_t mask = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
	if (!string) {
		if (in) {
			uint32_t v = io_in(g, port, size);
			if (size == 4)
				g->regs.rax = v; /* a 32-bit result zero-extends into RAX */
			else
				g->regs.rax = (g->regs.rax & ~(uint64_t)mask) | v;
		} else {
			io_out(g, port, size, (uint32_t)g->regs.rax & mask);
		}
		if (g->state == G_RUNNABLE)
			skip_insn(g, e);
		return;
	}
	/* INS/OUTS: one element per exit; a REP prefix re-executes the instruction until RCX = 0
	 * (the same architectural result, SDM Vol. 2 REP). Address size and segment from the
	 * VM-exit instruction information (SDM 3C §27.2.5, Table 27-8) when the CPU provides it. */
	uint32_t info = (caps.basic & VMX_BASIC_INS_OUTS_INFO) ? (uint32_t)vmcs_read(EXIT_INSN_INFO)
								  : (guest_64bit(g) ? 2u << 7 : 1u << 7);
	unsigned asz = (info >> 7) & 7; /* 0: 16-bit, 1: 32-bit, 2: 64-bit */
	uint64_t amask = asz == 0 ? 0xFFFF : asz == 1 ? 0xFFFFFFFFull : ~0ull;
	unsigned segr = in ? SEG_ES : ((info >> 15) & 7);
	unsigned idx = in ? 7 : 6; /* RDI : RSI */
	uint64_t count = rep ? (g->regs.rcx & amask) : 1;
	if (count == 0) {
		skip_insn(g, e);
		return;
	}
	uint64_t off = guest_reg_read(g, idx) & amask;
	uint64_t base = (guest_64bit(g) && segr != SEG_FS && segr != SEG_GS) ? 0 : vmcs_read(G_ES_BASE + 2 * segr);
	uint64_t la = base + off;
	if (!guest_64bit(g))
		la = (uint32_t)la;
	uint32_t v = 0;
	if (in) {
		v = io_in(g, port, size);
		if (!guest_write_linear(g, la, &v, size))
			return guest_fail(g, "INS to 0x%lx: not writable through the guest's page tables", la);
	} else {
		if (!guest_read_linear(g, la, &v, size))
			return guest_fail(g, "OUTS from 0x%lx: not readable through the guest's page tables", la);
		io_out(g, port, size, v & mask);
	}
	if (g->state != G_RUNNABLE)
		return;
	int64_t step = (vmcs_read(G_RFLAGS) & RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
	uint64_t noff = ((off + (uint64_t)step) & amask) | (guest_reg_read(g, idx) & ~amask);
	guest_reg_write(g, idx, asz == 1 ? (uint32_t)noff : noff);
	if (rep) {
		uint64_t c = (g->regs.rcx & ~amask) | ((count - 1) & amask);
		g->regs.rcx = asz == 1 ? (uint32_t)c : c;
		if (count - 1 != 0)
			return; /* RIP unchanged: the instruction runs again */
	}
	skip_insn(g, e);
}

/* ---- MSRs ---- */

static void h_rdmsr(struct guest *g, struct exit_info *e)
{
	uint64_t v;
	if (!msr_read(g, (uint32_t)g->regs.rcx, &v))
		return inject_gp(g);
	g->regs.rax = (uint32_t)v;
	g->regs.rdx = v >> 32;
	skip_insn(g, e);
}

static void h_wrmsr(struct guest *g, struct exit_info *e)
{
	uint64_t v = (uint32_t)g->regs.rax | (g->regs.rdx << 32);
	if (!msr_write(g, (uint32_t)g->regs.rcx, v))
		return inject_gp(g);
	skip_insn(g, e);
}

/* ---- EPT ---- */

static void h_ept_violation(struct guest *g, struct exit_info *e)
{
	uint64_t gpa = vmcs_read(GUEST_PHYS_ADDR);
	const char *what = (e->qual & EPTQ_FETCH) ? "instruction fetch from" : (e->qual & EPTQ_WRITE) ? "write to" : "read of";
	if (gpa >= g->ram_size)
		guest_fail(g, "%s guest-physical 0x%lx: no RAM or device there (the guest has %lu MiB, no MMIO devices)",
			   what, gpa, g->ram_size >> 20);
	else
		guest_fail(g, "EPT violation on %s guest-physical 0x%lx inside its RAM (tvisor bug)", what, gpa);
}

static void h_ept_misconfig(struct guest *g, struct exit_info *e)
{
	(void)e;
	guest_fail(g, "EPT misconfiguration at guest-physical 0x%lx (tvisor bug)", vmcs_read(GUEST_PHYS_ADDR));
}

static void h_preempt(struct guest *g, struct exit_info *e)
{
	(void)g, (void)e; /* the time slice is over: the scheduler (main.c) decides what runs next */
}

static const exit_handler handlers[ER_COUNT] = {
	[ER_EXCEPTION_NMI] = h_exception,
	[ER_EXTINT] = h_extint,
	[ER_TRIPLE_FAULT] = h_triple_fault,
	[ER_CPUID] = h_cpuid,
	[ER_GETSEC] = h_ud,
	[ER_HLT] = h_hlt,
	[ER_INVD] = h_nop,
	[ER_INVLPG] = h_invlpg,
	[ER_VMCALL] = h_vmcall,
	[ER_VMCLEAR] = h_vmx_insn,
	[ER_VMLAUNCH] = h_vmx_insn,
	[ER_VMPTRLD] = h_vmx_insn,
	[ER_VMPTRST] = h_vmx_insn,
	[ER_VMREAD] = h_vmx_insn,
	[ER_VMRESUME] = h_vmx_insn,
	[ER_VMWRITE] = h_vmx_insn,
	[ER_VMXOFF] = h_vmx_insn,
	[ER_VMXON] = h_vmx_insn,
	[ER_INVEPT] = h_vmx_insn,
	[ER_INVVPID] = h_vmx_insn,
	[ER_VMFUNC] = h_vmx_insn,
	[ER_CR_ACCESS] = h_cr,
	[ER_IO] = h_io,
	[ER_RDMSR] = h_rdmsr,
	[ER_WRMSR] = h_wrmsr,
	[ER_INVALID_GUEST] = h_entry_failure,
	[ER_MSR_LOADING] = h_entry_failure,
	[ER_MCE_ENTRY] = h_entry_failure,
	[ER_MWAIT] = h_ud,
	[ER_MONITOR] = h_ud,
	[ER_EPT_VIOLATION] = h_ept_violation,
	[ER_EPT_MISCONFIG] = h_ept_misconfig,
	[ER_PREEMPT_TIMER] = h_preempt,
	[ER_WBINVD] = h_nop,
	[ER_XSETBV] = h_ud,
	[ER_INVPCID] = h_invpcid,
};

/* An exit in the middle of delivering an event (IDT-vectoring information valid, SDM 3C
 * §27.2.4): unless the handler injected something itself, deliver the event again. */
static void redeliver(struct exit_info *e)
{
	if (!(e->idt_info & II_VALID))
		return;
	uint32_t info = e->idt_info & ~II_NMI_UNBLOCK;
	if (info & II_ERROR)
		vmcs_write(ENTRY_EXC_ERROR, e->idt_error);
	unsigned t = II_TYPE(info);
	if (t == II_SW_INT || t == II_PRIV_SW_EXC || t == II_SW_EXC)
		vmcs_write(ENTRY_INSN_LEN, vmcs_read(EXIT_INSN_LEN));
	vmcs_write(ENTRY_INTR_INFO, info);
}

void handle_exit(struct guest *g, struct exit_info *e)
{
	injected = false;
	if (e->full_reason & ER_ENTRY_FAIL) {
		h_entry_failure(g, e);
		return;
	}
	exit_handler h = e->reason < ER_COUNT ? handlers[e->reason] : 0;
	if (!h)
		h = h_unexpected;
	h(g, e);
	if (g->state != G_RUNNABLE)
		return;
	if (!injected)
		redeliver(e);
	else if ((e->idt_info & II_VALID) && II_TYPE(e->idt_info) == II_HW_EXC) {
		/* a fault while delivering an exception: #DF when both are contributory or page
		 * faults (SDM 3A §6.15 Table 6-5); otherwise the new fault is delivered */
		unsigned first = e->idt_info & 0xFF;
		uint32_t now = (uint32_t)vmcs_read(ENTRY_INTR_INFO);
		unsigned second = now & 0xFF;
		bool c1 = first == 0 || (first >= 10 && first <= 13), c2 = second == 0 || (second >= 10 && second <= 13);
		if (first == VEC_DF)
			return guest_printf(g, "fault while delivering #DF"), guest_dump(g), guest_end(g, END_TRIPLE_FAULT, 0);
		if ((c1 && c2) || (first == VEC_PF && (c2 || second == VEC_PF)))
			inject_exception(g, VEC_DF, 0);
	}
}
