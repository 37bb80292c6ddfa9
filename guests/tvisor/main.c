/* tvisor: boot, guest creation, the scheduler and the final report.
 *
 * Command line (key=value anywhere in tvisor's multiboot command line):
 *   mmu=ept|shadow   memory virtualization (default: ept when the CPU has EPT)
 *   mem=MiB          RAM per guest (default: the free memory split evenly, at most 64 MiB)
 *   slice_us=N       time slice of the preemption-timer scheduler (default 1000)
 * Each multiboot module is a guest; its module string is the guest's command line.
 *
 * Scheduling: round robin over runnable guests. A guest runs until its slice (measured in TSC
 * cycles) is used up -- the VMX-preemption timer (SDM 3C §25.5.1) forces an exit when it
 * does -- or until it ends. Exits handled in between do not end the slice.
 *
 * tvisor exits through the debug-exit port with 0 when every guest ended with code 0, else 1. */
#include "tvisor.h"
#include "tsc.h"

struct guest guests[TV_MAX_GUESTS];
int nguests;
struct guest *current;
uint64_t loaded_vmcs;
enum mmu_mode mmu_default;

static struct dtr host_gdtr, host_idtr;
static uint64_t slice_tsc;
static uint64_t trace_exits; /* trace=N: print the first N exits of each guest */

uint64_t tv_vmrun(struct tv_regs *regs, int launched); /* entry.S */

/* ---- messages ---- */

void guest_printf(struct guest *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	uart_flush(g);
	printf("tvisor: g%d: ", g->id);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static void seg_line(const char *name, unsigned s)
{
	printf("  %-4s sel=0x%04lx base=0x%lx limit=0x%lx ar=0x%lx\n", name, vmcs_read(G_ES_SEL + 2 * s),
	       vmcs_read(G_ES_BASE + 2 * s), vmcs_read(G_ES_LIMIT + 2 * s), vmcs_read(G_ES_AR + 2 * s));
}

void guest_dump(struct guest *g)
{
	struct tv_regs *r = &g->regs;
	printf("tvisor: g%d register dump (%s):\n", g->id, g->name);
	printf("  rip=0x%016lx rsp=0x%016lx rflags=0x%lx\n", vmcs_read(G_RIP), vmcs_read(G_RSP), vmcs_read(G_RFLAGS));
	printf("  rax=0x%016lx rbx=0x%016lx rcx=0x%016lx rdx=0x%016lx\n", r->rax, r->rbx, r->rcx, r->rdx);
	printf("  rsi=0x%016lx rdi=0x%016lx rbp=0x%016lx r8 =0x%016lx\n", r->rsi, r->rdi, r->rbp, r->r8);
	printf("  r9 =0x%016lx r10=0x%016lx r11=0x%016lx r12=0x%016lx\n", r->r9, r->r10, r->r11, r->r12);
	printf("  r13=0x%016lx r14=0x%016lx r15=0x%016lx cr2=0x%016lx\n", r->r13, r->r14, r->r15, r->cr2);
	uint64_t cr3 = guest_cr3(g);
	printf("  cr0=0x%lx (real 0x%lx) cr3=0x%lx cr4=0x%lx (real 0x%lx) efer=0x%lx (real 0x%lx)\n", g->cr0,
	       vmcs_read(G_CR0), cr3, g->cr4, vmcs_read(G_CR4), guest_efer(g), vmcs_read(G_EFER));
	static const char *const names[] = { "es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr" };
	for (unsigned s = 0; s < 8; s++)
		seg_line(names[s], s);
	printf("  gdtr=0x%lx/0x%lx idtr=0x%lx/0x%lx interruptibility=0x%lx activity=%lu\n", vmcs_read(G_GDTR_BASE),
	       vmcs_read(G_GDTR_LIMIT), vmcs_read(G_IDTR_BASE), vmcs_read(G_IDTR_LIMIT), vmcs_read(G_INTERRUPTIBILITY),
	       vmcs_read(G_ACTIVITY));
	uint64_t gpa = 0;
	if (g->proc2_ctls & PROC2_EPT)
		gpa = vmcs_read(GUEST_PHYS_ADDR);
	printf("  exit: reason=0x%lx (%s) qual=0x%lx gla=0x%lx gpa=0x%lx len=%lu info=0x%lx\n", vmcs_read(EXIT_REASON),
	       exit_reason_name((uint32_t)vmcs_read(EXIT_REASON)), vmcs_read(EXIT_QUAL), vmcs_read(GUEST_LINEAR_ADDR), gpa,
	       vmcs_read(EXIT_INSN_LEN), vmcs_read(EXIT_INSN_INFO));
	printf("  exit interruption=0x%lx error=0x%lx idt-vectoring=0x%lx error=0x%lx\n", vmcs_read(EXIT_INTR_INFO),
	       vmcs_read(EXIT_INTR_ERROR), vmcs_read(IDT_VECT_INFO), vmcs_read(IDT_VECT_ERROR));
}

void guest_fail(struct guest *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	uart_flush(g);
	printf("tvisor: g%d: ", g->id);
	vprintf(fmt, ap);
	printf("; guest stopped\n");
	va_end(ap);
	guest_dump(g);
	guest_end(g, END_ERROR, 0);
}

void guest_end(struct guest *g, enum guest_end why, int code)
{
	uart_flush(g);
	g->state = G_ENDED;
	g->end = why;
	g->exit_code = code;
}

/* ---- running ---- */

static void switch_to(struct guest *g)
{
	if (loaded_vmcs != g->vmcs_pa) {
		if (tv_vmptrld(g->vmcs_pa) != 0) {
			printf("tvisor: FATAL: VMPTRLD failed for g%d\n", g->id);
			exit(2);
		}
		loaded_vmcs = g->vmcs_pa;
	}
	if (current != g) {
		msrs_switch(current, g);
		current = g;
	}
}

/* EPT mode: the guest changes EFER.LMA itself (CR0.PG is guest-owned). Keep the "IA-32e mode
 * guest" control equal to it for the next entry (SDM 3C §26.2.4 checks they agree). */
static void sync_ia32e(struct guest *g)
{
	if (g->mmu != MMU_EPT || g->pg_emul)
		return;
	bool lma = vmcs_read(G_EFER) & EFER_LMA;
	bool ctl = g->entry_ctls & ENTRYC_IA32E;
	if (lma != ctl) {
		g->entry_ctls = lma ? g->entry_ctls | ENTRYC_IA32E : g->entry_ctls & ~ENTRYC_IA32E;
		vmcs_write(ENTRY_CTLS, g->entry_ctls);
	}
}

static void run_slice(struct guest *g, bool others)
{
	switch_to(g);
	uint64_t end = rdtsc() + slice_tsc;
	for (;;) {
		if (caps.preempt) {
			uint64_t now = rdtsc();
			uint64_t ticks = now < end ? (end - now) >> caps.preempt_rate : 0;
			vmcs_write(PREEMPT_TIMER, ticks > 0xFFFFFFFFull ? 0xFFFFFFFFull : ticks);
		}
		uint64_t fl = tv_vmrun(&g->regs, g->launched);
		lgdt(&host_gdtr); /* a VM exit leaves both limits at 0xFFFF (SDM 3C §27.5.2) */
		lidt(&host_idtr);
		if (fl) {
			uint64_t err = 0;
			if (!(fl & 1))
				tv_vmread(INSN_ERROR, &err);
			guest_fail(g, "%s failed: %s, VM-instruction error %lu", g->launched ? "VMRESUME" : "VMLAUNCH",
				   (fl & 1) ? "VMfailInvalid" : "VMfailValid", err);
			return;
		}
		struct exit_info e;
		e.full_reason = (uint32_t)vmcs_read(EXIT_REASON);
		e.reason = e.full_reason & 0xFFFF;
		if (!(e.full_reason & ER_ENTRY_FAIL))
			g->launched = true;
		e.qual = vmcs_read(EXIT_QUAL);
		e.rip = vmcs_read(G_RIP);
		e.len = (uint32_t)vmcs_read(EXIT_INSN_LEN);
		e.idt_info = (uint32_t)vmcs_read(IDT_VECT_INFO);
		e.idt_error = (e.idt_info & II_ERROR) ? (uint32_t)vmcs_read(IDT_VECT_ERROR) : 0;
		/* the guest's view of CR0/CR4: guest-owned bits as they are, host-owned ones from the
		 * read shadows (SDM 3C §24.6.6) -- the guest changes its own bits without exits */
		g->cr0 = (vmcs_read(G_CR0) & ~g->cr0_mask) | (g->cr0 & g->cr0_mask);
		g->cr4 = (vmcs_read(G_CR4) & ~g->cr4_mask) | (g->cr4 & g->cr4_mask);
		g->exits[e.reason < ER_COUNT ? e.reason : ER_COUNT]++;
		g->exits_total++;
		sync_ia32e(g);
		if (g->exits_total <= trace_exits)
			printf("tvisor: g%d exit %lu: %s qual=0x%lx rip=0x%lx cr0=0x%lx cr4=0x%lx efer=0x%lx entry=0x%lx\n", g->id,
			       g->exits_total, exit_reason_name(e.reason), e.qual, e.rip, vmcs_read(G_CR0), vmcs_read(G_CR4),
			       vmcs_read(G_EFER), vmcs_read(ENTRY_CTLS));
		handle_exit(g, &e);
		if (g->state != G_RUNNABLE)
			return;
		if (rdtsc() >= end) {
			if (others)
				return;
			end = rdtsc() + slice_tsc;
		}
	}
}

/* ---- setup ---- */

static void create_guest(int i, uint64_t ram, const struct mb_module_info *m)
{
	struct guest *g = &guests[i];
	memset(g, 0, sizeof(*g));
	g->id = i;
	g->mmu = mmu_default;
	size_t n = strlen(m->cmdline);
	if (n >= sizeof(g->name))
		n = sizeof(g->name) - 1;
	memcpy(g->name, m->cmdline, n);
	g->name[n] = 0;
	g->state = G_ENDED;
	g->end = END_LOAD_FAILED;
	if (m->end <= m->start) {
		printf("tvisor: g%d: cannot load %s: the module is empty\n", i, g->name);
		return;
	}
	g->ram_size = ram;
	g->ram_hpa = ram_alloc(ram, PAGE_2M);
	if (!g->ram_hpa) {
		printf("tvisor: g%d: cannot load %s: no room for its %lu MiB of RAM (%lu MiB left; tvisor option mem=MiB)\n", i,
		       g->name, ram >> 20, mem_free_bytes() >> 20);
		return;
	}
	uint32_t entry, mbi;
	if (!guest_load(g, (const uint8_t *)m->start, m->end - m->start, &entry, &mbi))
		return;
	if (g->mmu == MMU_EPT)
		ept_build(g);
	guest_vmcs_init(g, entry, mbi);
	g->state = G_RUNNABLE;
	g->end = END_NONE;
}

static const char *end_text(struct guest *g, char *buf, size_t n)
{
	switch (g->end) {
	case END_EXIT_CODE:
		snprintf(buf, n, "exit code %d", g->exit_code);
		return buf;
	case END_TRIPLE_FAULT:
		return "triple fault";
	case END_HALTED:
		return "halted forever";
	case END_POWER_OFF:
		return "powered off";
	case END_ERROR:
		return "stopped by tvisor (unhandled exit)";
	case END_LOAD_FAILED:
		return "not started (load failed)";
	default:
		return "still running";
	}
}

static void report(void)
{
	int ok = 0;
	printf("tvisor: all guests ended\n");
	for (int i = 0; i < nguests; i++) {
		struct guest *g = &guests[i];
		char buf[32];
		bool good = g->end == END_EXIT_CODE && g->exit_code == 0;
		ok += good;
		printf("tvisor: g%d %s: %s, %lu exits", i, g->name, end_text(g, buf, sizeof(buf)), g->exits_total);
		if (g->injected)
			printf(", %lu events injected", g->injected);
		printf("\n");
		if (!g->exits_total)
			continue;
		printf("tvisor: g%d exits:", i);
		for (unsigned r = 0; r <= ER_COUNT; r++)
			if (g->exits[r])
				printf(" %s=%lu", r < ER_COUNT ? exit_reason_name(r) : "OTHER", g->exits[r]);
		printf("\n");
		if (g->mmu == MMU_SHADOW)
			shadow_stats(g);
	}
	printf("tvisor: %d of %d guests ended with code 0\n", ok, nguests);
	exit(ok == nguests ? 0 : 1);
}

void kmain(uint32_t magic, uint32_t mbi)
{
	rt_init(magic, mbi);
	host_gdtr = sgdt();
	host_idtr = sidt();
	if (!mb_valid()) {
		printf("tvisor: not started by a multiboot loader\n");
		exit(1);
	}
	/* tvisor takes no interrupts: a firmware may have left the 8259s programmed (SeaBIOS does,
	 * with the PIT running), so mask them; the local APIC stays as found (nothing enables
	 * interrupts with it here) */
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);
	mem_init();
	fpu_init();
	if (!vmx_start())
		exit(1);

	char opt[16];
	bool want_shadow = false;
	if (cmdline_get("mmu", opt, sizeof(opt))) {
		if (strcmp(opt, "shadow") == 0)
			want_shadow = true;
		else if (strcmp(opt, "ept") == 0) {
			if (!caps.ept) {
				printf("tvisor: mmu=ept: this CPU has no usable EPT (use mmu=shadow)\n");
				exit(1);
			}
		} else {
			printf("tvisor: mmu=%s: expected mmu=ept or mmu=shadow\n", opt);
			exit(1);
		}
	}
	mmu_default = (want_shadow || !caps.ept) ? MMU_SHADOW : MMU_EPT;
	trace_exits = cmdline_u64("trace", 0);
	/* the TSC rate, for the slice length: from the brand string, else measured with the PIT */
	uint64_t hz = cpuid_brand_hz();
	if (!hz)
		hz = tsc_calibrate(10, 1);
	if (!hz)
		hz = 1000000000;
	slice_tsc = muldiv64(cmdline_u64("slice_us", 1000), hz, 1000000);
	if (!slice_tsc)
		slice_tsc = hz / 1000000;

	nguests = (int)mb_module_count();
	if (nguests == 0) {
		printf("tvisor: no guests: give each guest kernel as a multiboot module (turtles run tvisor.elf --module "
		       "guest.elf)\n");
		exit(1);
	}
	if (nguests > TV_MAX_GUESTS) {
		printf("tvisor: %d modules: at most %d guests\n", nguests, TV_MAX_GUESTS);
		exit(1);
	}
	msr_bitmap_init();
	io_bitmaps_init();

	/* guest RAM: mem=MiB each, or an even share of what is free (leaving room for tables) */
	uint64_t reserve = (2ull << 20) + (uint64_t)nguests * (64ull << 10); /* page tables, VMCSs */
	uint64_t avail = mem_free_bytes();
	uint64_t ram = cmdline_u64("mem", 0) << 20;
	if (!ram) {
		ram = avail > reserve ? (avail - reserve) / (uint64_t)nguests : 0;
		if (ram > (64ull << 20))
			ram = 64ull << 20;
		ram &= ~(PAGE_2M - 1);
	}
	if (ram < (2ull << 20)) {
		printf("tvisor: not enough memory: %lu MiB free for %d guest%s, each needs at least 2 MiB\n", avail >> 20,
		       nguests, nguests > 1 ? "s" : "");
		exit(1);
	}
	printf("tvisor: %d guest%s, mmu=%s%s, %lu MiB each, VMCS revision 0x%x%s\n", nguests, nguests > 1 ? "s" : "",
	       mmu_default == MMU_EPT ? "ept" : "shadow", caps.unrestricted && mmu_default == MMU_EPT ? " (unrestricted guest)" : "",
	       ram >> 20, VMX_BASIC_REVISION(caps.basic), caps.preempt ? "" : ", no preemption timer");

	for (int i = 0; i < nguests; i++) {
		struct mb_module_info m;
		mb_module((uint32_t)i, &m);
		create_guest(i, ram, &m);
	}

	/* round robin until every guest has ended */
	for (int next = 0;;) {
		int runnable = 0;
		for (int i = 0; i < nguests; i++)
			runnable += guests[i].state == G_RUNNABLE;
		if (!runnable)
			break;
		for (int k = 0; k < nguests; k++) {
			struct guest *g = &guests[(next + k) % nguests];
			if (g->state == G_RUNNABLE) {
				run_slice(g, runnable > 1);
				next = (g->id + 1) % nguests;
				break;
			}
		}
	}
	msrs_switch(current, 0);
	report();
}
