/* VMX support for guest kernels acting as a hypervisor (see include/vmx.h). */
#include "vmx.h"
#include "gdt.h"
#include "kassert.h"
#include "kstring.h"
#include "multiboot.h"
#include "paging.h"
#include "printf.h"
#include "x86.h"

struct vmx_caps vmx_caps;
volatile struct vmx_guest_event vmx_guest_event;

uint64_t vmx_enter(struct vmx_regs *regs, int launch, int after_mov_ss);
extern char vmx_exit_entry[];

int vmx_flags_to_result(uint64_t rflags)
{
	if (rflags & 1)
		return VMX_FAIL_INVALID;
	if (!(rflags & 0x40))
		return VMX_OK;
	uint64_t err = 0, fl;
	uint64_t enc = VMCS_INSN_ERROR;
	asm volatile("vmread %2, %1; pushfq; popq %0" : "=r"(fl), "+r"(err) : "r"(enc) : "cc");
	if (fl & 0x41)
		return 0x7FFF; /* cannot happen: VMfailValid implies a current VMCS */
	return (int)(uint32_t)err;
}

uint64_t vmr(uint64_t enc)
{
	uint64_t v;
	int r = vmread(enc, &v);
	if (r != VMX_OK) {
		printf("vmread(0x%lx) failed: %d\n", enc, r);
		ASSERT(r == VMX_OK);
	}
	return v;
}

void vmw(uint64_t enc, uint64_t val)
{
	int r = vmwrite(enc, val);
	if (r != VMX_OK) {
		printf("vmwrite(0x%lx, 0x%lx) failed: %d\n", enc, val, r);
		ASSERT(r == VMX_OK);
	}
}

/* ---- capabilities ---- */

static struct vmx_ctl_cap ctl_cap(uint32_t msr)
{
	uint64_t v = rdmsr(msr);
	return (struct vmx_ctl_cap){ (uint32_t)v, (uint32_t)(v >> 32) };
}

bool vmx_caps_read(void)
{
	struct vmx_caps *c = &vmx_caps;
	memset(c, 0, sizeof(*c));
	c->vmx = (cpuid(1, 0).ecx >> 5) & 1;
	if (!c->vmx)
		return false;
	c->basic = rdmsr(MSR_VMX_BASIC);
	c->revision = (uint32_t)(c->basic & BASIC_REVISION_MASK);
	c->misc = rdmsr(MSR_VMX_MISC);
	c->cr0_fixed0 = rdmsr(MSR_VMX_CR0_FIXED0);
	c->cr0_fixed1 = rdmsr(MSR_VMX_CR0_FIXED1);
	c->cr4_fixed0 = rdmsr(MSR_VMX_CR4_FIXED0);
	c->cr4_fixed1 = rdmsr(MSR_VMX_CR4_FIXED1);
	c->vmcs_enum = rdmsr(MSR_VMX_VMCS_ENUM);
	c->pin_legacy = ctl_cap(MSR_VMX_PINBASED_CTLS);
	c->proc_legacy = ctl_cap(MSR_VMX_PROCBASED_CTLS);
	c->exit_legacy = ctl_cap(MSR_VMX_EXIT_CTLS);
	c->entry_legacy = ctl_cap(MSR_VMX_ENTRY_CTLS);
	if (c->basic & BASIC_TRUE_CTLS) {
		c->pin = ctl_cap(MSR_VMX_TRUE_PINBASED_CTLS);
		c->proc = ctl_cap(MSR_VMX_TRUE_PROCBASED_CTLS);
		c->exit = ctl_cap(MSR_VMX_TRUE_EXIT_CTLS);
		c->entry = ctl_cap(MSR_VMX_TRUE_ENTRY_CTLS);
	} else {
		c->pin = c->pin_legacy;
		c->proc = c->proc_legacy;
		c->exit = c->exit_legacy;
		c->entry = c->entry_legacy;
	}
	if (c->proc.allowed1 & PROC_SECONDARY)
		c->proc2 = ctl_cap(MSR_VMX_PROCBASED_CTLS2);
	/* SDM 3C A.10: the MSR exists if either EPT or VPID can be enabled */
	if (c->proc2.allowed1 & (SEC_EPT | SEC_VPID))
		c->ept_vpid = rdmsr(MSR_VMX_EPT_VPID_CAP);
	if (c->proc2.allowed1 & SEC_VMFUNC)
		c->vmfunc = rdmsr(MSR_VMX_VMFUNC);
	unsigned maxphy = 36;
	if (cpu_has_leaf(0x80000008))
		maxphy = cpuid(0x80000008, 0).eax & 0xFF;
	if ((c->basic & BASIC_PA_32BIT) && maxphy > 32)
		maxphy = 32;
	c->maxphyaddr = maxphy;
	return true;
}

bool vmx_has_sec(uint32_t bits)
{
	return (vmx_caps.proc.allowed1 & PROC_SECONDARY) && (vmx_caps.proc2.allowed1 & bits) == bits;
}
bool vmx_has_ept(void) { return vmx_has_sec(SEC_EPT); }
bool vmx_has_vpid(void) { return vmx_has_sec(SEC_VPID); }
bool vmx_has_unrestricted(void) { return vmx_has_sec(SEC_UNRESTRICTED | SEC_EPT); }

/* ---- memory ---- */

static uint64_t free_next;

void *vmx_pages_alloc(unsigned n)
{
	if (!free_next)
		free_next = mb_free_start();
	uint64_t p = free_next;
	free_next += (uint64_t)n * PAGE_4K;
	uint64_t top = 0x100000 + (uint64_t)mb_mem_upper_kb() * 1024;
	if (mb_mem_upper_kb() && free_next > top) {
		printf("FATAL: vmx_pages_alloc: out of memory\n");
		ASSERT(free_next <= top);
	}
	memset((void *)p, 0, (size_t)n * PAGE_4K);
	return (void *)p;
}

void *vmx_page_alloc(void) { return vmx_pages_alloc(1); }

uint64_t vmx_unbacked_pa(void) { return 1ull << vmx_caps.maxphyaddr; }

/* ---- VMX operation ---- */

static bool vmx_on_state;
static uint64_t vmxon_pa;
static uint64_t saved_cr0, saved_cr4;
static struct dtr host_gdtr, host_idtr;

bool vmx_is_on(void) { return vmx_on_state; }
uint64_t vmx_vmxon_region(void) { return vmxon_pa; }

uint64_t vmx_feature_control_prepare(void)
{
	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if (!(fc & FEATURE_CONTROL_LOCK))
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	return fc;
}

uint64_t vmx_new_vmcs(void)
{
	uint32_t *p = vmx_page_alloc();
	p[0] = vmx_caps.revision;
	if (vmx_on_state)
		ASSERT(vmclear((uint64_t)p) == VMX_OK);
	return (uint64_t)p;
}

void vmx_on(void)
{
	if (vmx_on_state)
		return;
	ASSERT(vmx_caps.vmx);
	vmx_feature_control_prepare();
	host_gdtr = sgdt();
	host_idtr = sidt();
	saved_cr0 = read_cr0();
	saved_cr4 = read_cr4();
	uint64_t cr0 = (saved_cr0 | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1;
	uint64_t cr4 = (saved_cr4 | vmx_caps.cr4_fixed0 | CR4_VMXE) & vmx_caps.cr4_fixed1;
	if (cr0 != saved_cr0)
		write_cr0(cr0);
	write_cr4(cr4);
	if (!vmxon_pa) {
		uint32_t *p = vmx_page_alloc();
		p[0] = vmx_caps.revision;
		vmxon_pa = (uint64_t)p;
	}
	int r = vmxon(vmxon_pa);
	if (r != VMX_OK)
		printf("vmxon failed: %d\n", r);
	ASSERT(r == VMX_OK);
	vmx_on_state = true;
}

void vmx_restore_host_tables(void)
{
	lgdt(&host_gdtr);
	lidt(&host_idtr);
}

int vmx_off(void)
{
	if (!vmx_on_state)
		return VMX_OK;
	int r = vmxoff();
	vmx_on_state = false;
	write_cr4(saved_cr4);
	write_cr0(saved_cr0);
	vmx_restore_host_tables();
	/* A VM exit leaves the TR limit at 0x67 (SDM 3C §27.5.2): reload TR from the GDT, which
	 * needs the descriptor marked available (type 9) first. */
	uint64_t d = gdt_get(TSS_SEL / 8);
	gdt_set(TSS_SEL / 8, d & ~(1ull << 41));
	ltr(TSS_SEL);
	return r;
}

/* ---- the guest ---- */

static uint8_t guest_stack[VMX_GUEST_STACK_SIZE] ALIGNED(4096);
static uint8_t *msr_bitmap, *io_bitmap_a, *io_bitmap_b;

struct PACKED idt_gate64 {
	uint16_t off0, sel;
	uint8_t ist, attr;
	uint16_t off1;
	uint32_t off2, zero;
};
static struct idt_gate64 guest_idt[256] ALIGNED(4096);

uint64_t vmx_guest_idt_base(void)
{
	if (!guest_idt[0].sel) {
		for (int v = 0; v < 256; v++) {
			uint64_t a = (uint64_t)vmx_guest_stubs + (uint64_t)v * 16;
			guest_idt[v] = (struct idt_gate64){ (uint16_t)a, KERNEL_CS, 0, 0x8E, (uint16_t)(a >> 16),
							    (uint32_t)(a >> 32), 0 };
		}
	}
	return (uint64_t)guest_idt;
}

void vmx_guest_idt_set_present(int vector, bool present)
{
	vmx_guest_idt_base();
	guest_idt[vector].attr = present ? 0x8E : 0x0E;
}

void vmx_guest_event_reset(void) { memset((void *)&vmx_guest_event, 0, sizeof(vmx_guest_event)); }

static uint32_t seg_ar_from_gdt(uint16_t sel)
{
	uint64_t d = gdt_get(sel / 8);
	return (uint32_t)((d >> 40) & 0xF0FF);
}

static uint64_t tr_base(void) { return (uint64_t)tss(); }

bool vmx_set_pin(uint32_t bits)
{
	if (!vmx_can1(&vmx_caps.pin, bits))
		return false;
	vmw_or(VMCS_PIN_CTLS, bits);
	return true;
}
bool vmx_set_proc(uint32_t bits)
{
	if (!vmx_can1(&vmx_caps.proc, bits))
		return false;
	vmw_or(VMCS_PROC_CTLS, bits);
	return true;
}
void vmx_clear_proc(uint32_t bits) { vmw(VMCS_PROC_CTLS, vmx_adjust(&vmx_caps.proc, (uint32_t)vmr(VMCS_PROC_CTLS) & ~bits)); }
bool vmx_set_sec(uint32_t bits)
{
	if (!vmx_has_sec(bits))
		return false;
	vmw_or(VMCS_PROC_CTLS, PROC_SECONDARY);
	vmw_or(VMCS_PROC2_CTLS, bits);
	return true;
}
bool vmx_set_exit(uint32_t bits)
{
	if (!vmx_can1(&vmx_caps.exit, bits))
		return false;
	vmw_or(VMCS_EXIT_CTLS, bits);
	return true;
}
bool vmx_set_entry(uint32_t bits)
{
	if (!vmx_can1(&vmx_caps.entry, bits))
		return false;
	vmw_or(VMCS_ENTRY_CTLS, bits);
	return true;
}

void vmx_vm_set_entry(struct vmx_vm *vm, void (*fn)(void))
{
	uint64_t top = (uint64_t)(vm->stack + VMX_GUEST_STACK_SIZE);
	*(uint64_t *)(top - 8) = (uint64_t)vmx_guest_return;
	vmw(GUEST_RSP, top - 8);
	vmw(GUEST_RIP, (uint64_t)fn);
}

void vmx_vm_init(struct vmx_vm *vm)
{
	const struct vmx_caps *c = &vmx_caps;
	memset(vm, 0, sizeof(*vm));
	ASSERT(vmx_on_state);
	vm->vmcs = vmx_new_vmcs();
	ASSERT(vmptrld(vm->vmcs) == VMX_OK);
	vm->stack = guest_stack;
	memset(guest_stack, 0, sizeof(guest_stack));
	if (!msr_bitmap) {
		msr_bitmap = vmx_page_alloc();
		io_bitmap_a = vmx_page_alloc();
		io_bitmap_b = vmx_page_alloc();
	}
	memset(msr_bitmap, 0, PAGE_4K);
	memset(io_bitmap_a, 0, PAGE_4K);
	memset(io_bitmap_b, 0, PAGE_4K);
	vm->msr_bitmap = msr_bitmap;
	vm->io_bitmap_a = io_bitmap_a;
	vm->io_bitmap_b = io_bitmap_b;
	vmx_guest_event_reset();

	/* controls */
	uint32_t proc = PROC_HLT_EXIT;
	if (vmx_can1(&c->proc, PROC_MSR_BITMAPS))
		proc |= PROC_MSR_BITMAPS;
	vmw(VMCS_PIN_CTLS, vmx_adjust(&c->pin, 0));
	vmw(VMCS_PROC_CTLS, vmx_adjust(&c->proc, proc));
	if (c->proc.allowed1 & PROC_SECONDARY)
		vmw(VMCS_PROC2_CTLS, vmx_adjust(&c->proc2, 0));
	vmw(VMCS_EXIT_CTLS, vmx_adjust(&c->exit, EXIT_HOST_64));
	vmw(VMCS_ENTRY_CTLS, vmx_adjust(&c->entry, ENTRY_IA32E));
	vmw(VMCS_EXCEPTION_BITMAP, 0);
	vmw(VMCS_PF_MASK, 0);
	vmw(VMCS_PF_MATCH, 0);
	vmw(VMCS_CR3_TARGET_COUNT, 0);
	vmw(VMCS_EXIT_MSR_STORE_COUNT, 0);
	vmw(VMCS_EXIT_MSR_LOAD_COUNT, 0);
	vmw(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
	vmw(VMCS_ENTRY_INTR_INFO, 0);
	vmw(VMCS_ENTRY_EXC_ERROR, 0);
	vmw(VMCS_ENTRY_INSN_LEN, 0);
	vmw(VMCS_MSR_BITMAP, (uint64_t)msr_bitmap);
	vmw(VMCS_IO_BITMAP_A, (uint64_t)io_bitmap_a);
	vmw(VMCS_IO_BITMAP_B, (uint64_t)io_bitmap_b);
	vmw(VMCS_TSC_OFFSET, 0);
	vmw(VMCS_CR0_MASK, 0);
	vmw(VMCS_CR4_MASK, 0);
	vmw(VMCS_CR0_SHADOW, read_cr0());
	vmw(VMCS_CR4_SHADOW, read_cr4());

	/* host state: what this code runs with (SDM 3C §26.2.2, §27.5) */
	vmw(HOST_CR0, read_cr0());
	vmw(HOST_CR3, read_cr3());
	vmw(HOST_CR4, read_cr4());
	vmw(HOST_CS_SEL, KERNEL_CS);
	vmw(HOST_SS_SEL, KERNEL_DS);
	vmw(HOST_DS_SEL, KERNEL_DS);
	vmw(HOST_ES_SEL, KERNEL_DS);
	vmw(HOST_FS_SEL, 0);
	vmw(HOST_GS_SEL, 0);
	vmw(HOST_TR_SEL, TSS_SEL);
	vmw(HOST_FS_BASE, rdmsr(MSR_FS_BASE));
	vmw(HOST_GS_BASE, rdmsr(MSR_GS_BASE));
	vmw(HOST_TR_BASE, tr_base());
	vmw(HOST_GDTR_BASE, host_gdtr.base);
	vmw(HOST_IDTR_BASE, host_idtr.base);
	vmw(HOST_SYSENTER_CS, rdmsr(MSR_SYSENTER_CS));
	vmw(HOST_SYSENTER_ESP, rdmsr(MSR_SYSENTER_ESP));
	vmw(HOST_SYSENTER_EIP, rdmsr(MSR_SYSENTER_EIP));
	vmw(HOST_RIP, (uint64_t)vmx_exit_entry);
	vmw(HOST_RSP, 0); /* written by vmx_enter before each entry */

	/* guest state: a 64-bit ring-0 guest like the host (SDM 3C §24.4, §26.3.1) */
	vmw(GUEST_CR0, read_cr0());
	vmw(GUEST_CR3, read_cr3());
	vmw(GUEST_CR4, read_cr4());
	vmw(GUEST_DR7, 0x400);
	vmw(GUEST_RFLAGS, RFLAGS_FIXED);
	static const uint32_t sel_f[] = { GUEST_ES_SEL, GUEST_CS_SEL, GUEST_SS_SEL, GUEST_DS_SEL, GUEST_FS_SEL, GUEST_GS_SEL };
	for (int i = 0; i < 6; i++) {
		uint16_t sel = i == 1 ? KERNEL_CS : KERNEL_DS;
		vmw(sel_f[i], sel);
		vmw(sel_f[i] - GUEST_ES_SEL + GUEST_ES_LIMIT, 0xFFFFFFFF);
		vmw(sel_f[i] - GUEST_ES_SEL + GUEST_ES_AR, seg_ar_from_gdt(sel));
		vmw(GUEST_ES_BASE + 2 * (uint32_t)i, 0);
	}
	vmw(GUEST_FS_BASE, rdmsr(MSR_FS_BASE));
	vmw(GUEST_GS_BASE, rdmsr(MSR_GS_BASE));
	vmw(GUEST_LDTR_SEL, 0);
	vmw(GUEST_LDTR_BASE, 0);
	vmw(GUEST_LDTR_LIMIT, 0);
	vmw(GUEST_LDTR_AR, AR_UNUSABLE);
	vmw(GUEST_TR_SEL, TSS_SEL);
	vmw(GUEST_TR_BASE, tr_base());
	vmw(GUEST_TR_LIMIT, sizeof(struct tss64) - 1);
	vmw(GUEST_TR_AR, AR_TSS64_BUSY);
	vmw(GUEST_GDTR_BASE, host_gdtr.base);
	vmw(GUEST_GDTR_LIMIT, host_gdtr.limit);
	vmw(GUEST_IDTR_BASE, vmx_guest_idt_base());
	vmw(GUEST_IDTR_LIMIT, sizeof(guest_idt) - 1);
	vmw(GUEST_DEBUGCTL, 0);
	vmw(GUEST_SYSENTER_CS, rdmsr(MSR_SYSENTER_CS));
	vmw(GUEST_SYSENTER_ESP, rdmsr(MSR_SYSENTER_ESP));
	vmw(GUEST_SYSENTER_EIP, rdmsr(MSR_SYSENTER_EIP));
	vmw(GUEST_INTERRUPTIBILITY, 0);
	vmw(GUEST_ACTIVITY, ACTIVITY_ACTIVE);
	vmw(GUEST_PENDING_DBG, 0);
	vmw(GUEST_LINK_PTR, ~0ull);
	if (vmx_can1(&c->entry, ENTRY_LOAD_PAT) || vmx_can1(&c->exit, EXIT_SAVE_PAT))
		vmw(GUEST_PAT, rdmsr(MSR_IA32_PAT));
	if (vmx_can1(&c->exit, EXIT_LOAD_PAT))
		vmw(HOST_PAT, rdmsr(MSR_IA32_PAT));
	if (vmx_can1(&c->entry, ENTRY_LOAD_EFER) || vmx_can1(&c->exit, EXIT_SAVE_EFER))
		vmw(GUEST_EFER, rdmsr(MSR_EFER));
	if (vmx_can1(&c->exit, EXIT_LOAD_EFER))
		vmw(HOST_EFER, rdmsr(MSR_EFER));
	vmx_vm_set_entry(vm, (void (*)(void))vmx_guest_return);
}

static void read_exit(struct vmx_exit *e)
{
	e->reason = (uint32_t)vmr(VMCS_EXIT_REASON);
	e->qual = vmr(VMCS_EXIT_QUAL);
	e->guest_rip = vmr(GUEST_RIP);
	e->guest_rsp = vmr(GUEST_RSP);
	e->guest_rflags = vmr(GUEST_RFLAGS);
	e->guest_linear = vmr(VMCS_GUEST_LINEAR_ADDR);
	uint64_t gpa = 0;
	if (vmx_has_ept())
		vmread(VMCS_GUEST_PHYS_ADDR, &gpa);
	e->guest_phys = gpa;
	e->insn_len = (uint32_t)vmr(VMCS_EXIT_INSN_LEN);
	e->insn_info = (uint32_t)vmr(VMCS_EXIT_INSN_INFO);
	e->intr_info = (uint32_t)vmr(VMCS_EXIT_INTR_INFO);
	e->intr_error = (uint32_t)vmr(VMCS_EXIT_INTR_ERROR);
	e->idt_info = (uint32_t)vmr(VMCS_IDT_VECT_INFO);
	e->idt_error = (uint32_t)vmr(VMCS_IDT_VECT_ERROR);
}

static int run(struct vmx_vm *vm, struct vmx_exit *e, int mov_ss)
{
	memset(e, 0, sizeof(*e));
	uint64_t fl = vmx_enter(&vm->regs, !vm->launched || mov_ss, mov_ss);
	if (fl) {
		e->status = vmx_flags_to_result(fl);
		if (e->status == VMX_OK)
			e->status = 0x7FFE; /* neither CF nor ZF: the instruction did not enter or fail */
		return e->status;
	}
	vmx_restore_host_tables();
	e->status = VMX_EXITED;
	read_exit(e);
	if (!(e->reason & EXIT_REASON_ENTRY_FAIL))
		vm->launched = true;
	return VMX_EXITED;
}

int vmx_vm_run(struct vmx_vm *vm, struct vmx_exit *e) { return run(vm, e, 0); }
int vmx_vm_launch_after_mov_ss(struct vmx_vm *vm, struct vmx_exit *e) { return run(vm, e, 1); }

void vmx_skip_insn(void) { vmw(GUEST_RIP, vmr(GUEST_RIP) + vmr(VMCS_EXIT_INSN_LEN)); }

/* ---- EPT ---- */

static unsigned ept_index(uint64_t gpa, int level) { return (gpa >> (12 + 9 * (level - 1))) & 511; }

volatile uint64_t *ept_entry_in(uint64_t *root, uint64_t gpa, int level)
{
	volatile uint64_t *t = root;
	for (int l = 4; l > level; l--) {
		volatile uint64_t *e = &t[ept_index(gpa, l)];
		if (!(*e & EPT_RWX)) {
			*e = (uint64_t)vmx_page_alloc() | EPT_RWX;
		} else if (l <= 3 && (*e & EPT_LARGE)) {
			/* split a large page into 512 smaller ones with the same attributes */
			uint64_t *n = vmx_page_alloc();
			uint64_t size = 1ull << (12 + 9 * (l - 2));
			uint64_t base = *e & 0x000FFFFFFFFFF000ull & ~((size << 9) - 1);
			uint64_t attr = *e & 0xFFF & ~(EPT_A | EPT_D);
			if (l - 1 == 1)
				attr &= ~EPT_LARGE;
			for (int i = 0; i < 512; i++)
				n[i] = (base + (uint64_t)i * size) | attr;
			*e = (uint64_t)n | EPT_RWX;
		}
		t = (volatile uint64_t *)(*e & 0x000FFFFFFFFFF000ull);
	}
	return &t[ept_index(gpa, level)];
}

volatile uint64_t *ept_entry(struct vmx_vm *vm, uint64_t gpa, int level) { return ept_entry_in(vm->eptp_root, gpa, level); }

uint64_t vmx_eptp_default(const struct vmx_vm *vm)
{
	uint64_t mt = (vmx_caps.ept_vpid & EPTCAP_WB) ? EPTP_WB : EPTP_UC;
	return (uint64_t)vm->eptp_root | mt | EPTP_PWL4;
}

uint64_t *vmx_ept_identity(void)
{
	uint64_t *root = vmx_page_alloc();
	uint64_t *pdpt = vmx_page_alloc();
	root[0] = (uint64_t)pdpt | EPT_RWX;
	bool big = vmx_caps.ept_vpid & EPTCAP_2M;
	for (uint64_t g = 0; g < 4; g++) {
		uint64_t *pd = vmx_page_alloc();
		pdpt[g] = (uint64_t)pd | EPT_RWX;
		for (uint64_t i = 0; i < 512; i++) {
			uint64_t gpa = (g << 30) | (i << 21);
			if (big) {
				pd[i] = gpa | EPT_RWX | EPT_MT_WB | EPT_LARGE;
			} else if (gpa < 0x10000000ull || gpa >= 0xFEC00000ull) {
				/* no 2 MiB pages: the first 256 MiB and the APIC/IOAPIC range with 4 KiB pages */
				uint64_t *pt = vmx_page_alloc();
				for (uint64_t j = 0; j < 512; j++)
					pt[j] = (gpa + (j << 12)) | EPT_RWX | EPT_MT_WB;
				pd[i] = (uint64_t)pt | EPT_RWX;
			}
		}
	}
	return root;
}

bool vmx_vm_enable_ept(struct vmx_vm *vm)
{
	if (!vmx_has_ept() || !(vmx_caps.ept_vpid & EPTCAP_PWL4))
		return false;
	vm->eptp_root = vmx_ept_identity();
	vm->eptp = vmx_eptp_default(vm);
	vmw(VMCS_EPTP, vm->eptp);
	return vmx_set_sec(SEC_EPT);
}

void vmx_mask_legacy_pic(void)
{
	/* Firmware (e.g. a BIOS) may leave the 8259s unmasked with the PIT running; a guest with
	 * RFLAGS.IF = 1 would then take those interrupts. OCW1 = mask everything. */
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);
}

/* ---- local APIC (xAPIC MMIO) ---- */

static uint64_t apic_base;

uint64_t vmx_apic_base(void) { return apic_base; }

bool vmx_apic_init(void)
{
	if (!((cpuid(1, 0).edx >> 9) & 1))
		return false;
	uint64_t b = rdmsr(MSR_IA32_APIC_BASE);
	if (!(b & (1ull << 11)))
		wrmsr(MSR_IA32_APIC_BASE, b | (1ull << 11));
	if (b & (1ull << 10)) /* x2APIC mode: our MMIO accessors would not work */
		return false;
	apic_base = b & 0xFFFFF000ull;
	vmx_apic_write(0xF0, 0x1FF); /* SVR: software enable, spurious vector 0xFF */
	vmx_apic_write(0x80, 0); /* TPR */
	return true;
}

void vmx_apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(apic_base + reg) = v; }
uint32_t vmx_apic_read(uint32_t reg) { return *(volatile uint32_t *)(apic_base + reg); }
uint32_t vmx_apic_id(void) { return vmx_apic_read(0x20) >> 24; }
void vmx_apic_eoi(void) { vmx_apic_write(0xB0, 0); }

void vmx_apic_self_ipi(uint8_t vector)
{
	vmx_apic_write(0x310, 0);
	vmx_apic_write(0x300, (1u << 18) | (1u << 14) | vector); /* shorthand self, assert, fixed */
	while (vmx_apic_read(0x300) & (1u << 12)) /* delivery status */
		;
}
