/* tvisor: a small VT-x hypervisor whose guests are multiboot modules. See guests/README.md
 * ("tvisor") for the design; each .c file starts with what it owns. */
#ifndef TVISOR_H
#define TVISOR_H

#include "rt.h"
#include "vmx_arch.h"

#define TV_MAX_GUESTS 8
#define TV_LINE_MAX 240 /* a guest's serial line longer than this is forwarded in pieces */

/* ---- host memory (mem.c) ---- */
void mem_init(void);
void *page_alloc_zero(void); /* 4 KiB, zeroed; FATAL when memory runs out */
/* A zeroed, `align`-aligned block for guest RAM (from the top of memory); 0 if none fits. */
uint64_t ram_alloc(uint64_t size, uint64_t align);
uint64_t mem_free_bytes(void); /* what ram_alloc could still hand out (largest block) */

/* ---- VMX (vmx.c) ---- */
struct ctl_cap {
	uint32_t must1, may1;
};
struct tv_caps {
	uint64_t basic, misc, ept_vpid;
	uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
	struct ctl_cap pin, proc, proc2, exit, entry;
	bool ept, vpid, unrestricted, preempt;
	unsigned preempt_rate;
	unsigned maxphyaddr;
};
extern struct tv_caps caps;
/* CPUID, IA32_FEATURE_CONTROL, fixed CR bits, VMXON. Prints why and returns false if VMX
 * cannot be used. */
bool vmx_start(void);
uint64_t vmcs_read(uint64_t enc);
void vmcs_write(uint64_t enc, uint64_t v);
static inline uint32_t ctl_adjust(const struct ctl_cap *c, uint32_t want) { return (want | c->must1) & c->may1; }
static inline bool ctl_can(const struct ctl_cap *c, uint32_t bits) { return (c->may1 & bits) == bits; }
const char *exit_reason_name(uint32_t reason);

/* ---- guests ---- */
enum guest_state { G_EMPTY, G_RUNNABLE, G_ENDED };
enum guest_end {
	END_NONE,
	END_EXIT_CODE, /* wrote its code to the debug-exit port (or the exit hypercall) */
	END_TRIPLE_FAULT,
	END_HALTED, /* HLT with nothing that could ever wake it */
	END_POWER_OFF, /* "Shutdown" to port 0x8900 */
	END_ERROR, /* an exit tvisor does not handle, or an entry failure: register dump printed */
	END_LOAD_FAILED, /* never started */
};
enum mmu_mode { MMU_EPT, MMU_SHADOW };

/* Guest general registers, as the entry/exit stub saves and loads them (tvisor/entry.S). RSP
 * and RIP live in the VMCS; CR2 is not in the VMCS, so it travels with the registers. */
struct tv_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t cr2;
};

struct uart {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	char line[TV_LINE_MAX + 1];
	unsigned len;
};

struct shadow; /* shadow.c */

struct guest {
	int id;
	enum guest_state state;
	enum guest_end end;
	int exit_code;
	char name[96]; /* the module string: the guest's command line */
	/* memory: guest-physical [0, ram_size) is host-physical [ram_hpa, ram_hpa + ram_size) */
	uint64_t ram_hpa, ram_size;
	enum mmu_mode mmu;
	uint64_t *ept_root;
	uint64_t eptp;
	struct shadow *sh;
	/* VMX */
	uint64_t vmcs_pa;
	bool launched;
	struct tv_regs regs;
	uint32_t entry_ctls, proc_ctls, proc2_ctls;
	uint64_t cr0_mask, cr4_mask;
	uint64_t cr0, cr4; /* what the guest believes CR0/CR4 are (the read shadows) */
	uint64_t efer; /* the guest's EFER (authoritative unless EPT + unrestricted; see guest_efer) */
	uint64_t cr3; /* the guest's CR3 while the CPU does not hold it (see guest_cr3) */
	bool pg_emul; /* EPT without unrestricted guest: paging-off emulated (vmcs.c) */
	/* MSRs that VMX does not switch: held here while the guest is not on the CPU */
	uint64_t msr_star, msr_lstar, msr_cstar, msr_sfmask, msr_kgs, msr_tsc_aux;
	uint64_t msr_mtrr_def, msr_misc_enable;
	/* other processor state VMX does not switch (msrs_switch) */
	uint64_t dr[4], dr6;
	uint8_t cr8; /* the guest's TPR (CR8 accesses exit: the real TPR belongs to tvisor) */
	uint8_t fpu[512] ALIGNED(16); /* FXSAVE image, when the CPU has FXSR */
	/* devices */
	struct uart uart;
	uint16_t fwcfg_sel;
	uint32_t fwcfg_off;
	uint32_t pci_addr;
	unsigned shutdown_match;
	/* accounting */
	uint64_t exits[ER_COUNT + 1]; /* [ER_COUNT] counts reasons out of range */
	uint64_t exits_total;
	uint64_t injected;
};

extern struct guest guests[TV_MAX_GUESTS];
extern int nguests;
extern struct guest *current; /* the guest whose non-VMCS MSRs are on the CPU */
extern uint64_t loaded_vmcs; /* the current VMCS */
extern enum mmu_mode mmu_default;

/* End a guest (it is never entered again). */
void guest_end(struct guest *g, enum guest_end why, int code);
/* End a guest after an exit tvisor cannot handle, with a register dump. */
void guest_fail(struct guest *g, const char *fmt, ...) PRINTF_LIKE(2, 3);
void guest_dump(struct guest *g);
void guest_printf(struct guest *g, const char *fmt, ...) PRINTF_LIKE(2, 3); /* "tvisor: gN: ..." */

/* ---- guest construction (loader.c) ---- */
/* Load a multiboot ELF image into the guest's RAM and write its multiboot info block.
 * On success fills *entry and *mbi (guest-physical); on failure prints why and returns false. */
bool guest_load(struct guest *g, const uint8_t *img, uint64_t len, uint32_t *entry, uint32_t *mbi);
static inline void *gpa_ptr(struct guest *g, uint64_t gpa) { return (void *)(g->ram_hpa + gpa); }
static inline bool gpa_ok(struct guest *g, uint64_t gpa, uint64_t len)
{
	return gpa < g->ram_size && len <= g->ram_size - gpa;
}

/* ---- VMCS of a guest (vmcs.c) ---- */
void guest_vmcs_init(struct guest *g, uint32_t entry, uint32_t mbi);
/* The guest's EFER as it sees it, and writing it (the real EFER and the "IA-32e mode guest"
 * entry control follow). */
uint64_t guest_efer(struct guest *g);
uint64_t guest_cr3(struct guest *g);
void guest_write_efer(struct guest *g, uint64_t efer);
/* Set the guest's CR0/CR4/EFER view (after the architectural checks, exits.c) and make the real
 * registers, CR3 and the MMU follow. */
void guest_set_paging(struct guest *g, uint64_t cr0, uint64_t cr4, uint64_t efer);
void guest_flush_tlb(struct guest *g);
/* Real CR0/CR4 value for what the guest wants (fixed bits forced). */
uint64_t cr0_real(struct guest *g, uint64_t view);
uint64_t cr4_real(struct guest *g, uint64_t view);

/* ---- EPT (ept.c) ---- */
void ept_build(struct guest *g);
void ept_map_page(struct guest *g, uint64_t gpa, uint64_t hpa); /* one extra 4-KiB page */

/* ---- exits (exits.c) ---- */
struct exit_info {
	uint32_t reason; /* basic exit reason (bits 15:0) */
	uint32_t full_reason;
	uint64_t qual;
	uint64_t rip;
	uint32_t len;
	uint32_t idt_info, idt_error;
};
void handle_exit(struct guest *g, struct exit_info *e);
void skip_insn(struct guest *g, struct exit_info *e);
void inject_exception(struct guest *g, unsigned vector, int error_code); /* error_code < 0: none */
void inject_gp(struct guest *g);
void inject_ud(struct guest *g);
unsigned guest_cpl(void);
uint64_t *guest_gpr(struct guest *g, unsigned n); /* 0=RAX .. 15=R15; RSP is not here */
uint64_t guest_reg_read(struct guest *g, unsigned n); /* with RSP from the VMCS */
void guest_reg_write(struct guest *g, unsigned n, uint64_t v);

/* ---- port I/O devices (io.c) ---- */
/* Guest port access: `size` 1/2/4. Returns the value read (for in). */
uint32_t io_in(struct guest *g, uint16_t port, unsigned size);
void io_out(struct guest *g, uint16_t port, unsigned size, uint32_t v);
void uart_flush(struct guest *g);
void console_putc(struct guest *g, uint8_t c); /* a byte of the guest's serial output */
void io_bitmaps_init(void);
extern uint64_t io_bitmap_a_pa, io_bitmap_b_pa;

/* ---- MSRs (msr.c) ---- */
void msr_bitmap_init(void);
extern uint64_t msr_bitmap_pa;
bool msr_read(struct guest *g, uint32_t msr, uint64_t *v); /* false: #GP */
bool msr_write(struct guest *g, uint32_t msr, uint64_t v);
void msrs_guest_init(struct guest *g);
/* Switch what VMX does not: syscall MSRs, TSC_AUX, debug registers, x87/SSE state. */
void msrs_switch(struct guest *from, struct guest *to);
void fpu_init(void); /* tvisor's CR0/CR4 for FXSAVE/FXRSTOR, if the CPU has them */

/* ---- guest memory access through the guest's paging (gwalk.c) ---- */
/* Translate a guest-linear address with the guest's own page tables (guest-physical out).
 * Returns 0; or (1 << 30) | the #PF error code the access would raise; or -1 if the guest's
 * tables are not in its RAM. Sets the accessed/dirty bits the access would set. */
int gva_to_gpa(struct guest *g, uint64_t gva, unsigned access, uint64_t *gpa);
#define ACC_WRITE 1u
#define ACC_USER 2u
#define ACC_FETCH 4u
bool guest_read_linear(struct guest *g, uint64_t gva, void *buf, unsigned n);
bool guest_write_linear(struct guest *g, uint64_t gva, const void *buf, unsigned n);

/* ---- shadow paging (shadow.c) ---- */
void shadow_init(struct guest *g);
/* A guest CR0/CR3/CR4/EFER change (values the guest sees) */
void shadow_paging_changed(struct guest *g);
bool shadow_cr3_write(struct guest *g, uint64_t cr3); /* false after injecting #GP */
bool shadow_page_fault(struct guest *g, uint64_t gva, uint32_t error); /* handles every #PF exit */
void shadow_invlpg(struct guest *g, uint64_t gva);
void shadow_prepare_injection(struct guest *g, unsigned vector);
void shadow_invpcid(struct guest *g, unsigned type, uint64_t pcid, uint64_t gva);
void shadow_stats(struct guest *g);

#endif
