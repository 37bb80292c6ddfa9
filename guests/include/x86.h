/* Thin inline-asm wrappers around x86-64 instructions, plus architectural constants. */
#ifndef X86_H
#define X86_H

#include "types.h"

/* CR0 bits (SDM 3A §2.5) */
#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)

/* CR4 bits (SDM 3A §2.5) */
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_PGE (1ull << 7)
#define CR4_FSGSBASE (1ull << 16)
#define CR4_PCIDE (1ull << 17)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)

/* RFLAGS bits */
#define RFLAGS_CF (1ull << 0)
#define RFLAGS_FIXED (1ull << 1)
#define RFLAGS_PF (1ull << 2)
#define RFLAGS_ZF (1ull << 6)
#define RFLAGS_SF (1ull << 7)
#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_DF (1ull << 10)
#define RFLAGS_OF (1ull << 11)
#define RFLAGS_IOPL(n) ((uint64_t)(n) << 12)
#define RFLAGS_IOPL_MASK (3ull << 12)
#define RFLAGS_NT (1ull << 14)
#define RFLAGS_RF (1ull << 16)
#define RFLAGS_AC (1ull << 18)
#define RFLAGS_ID (1ull << 21)

/* MSRs (SDM 4) */
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176
#define MSR_EFER 0xC0000080
#define MSR_STAR 0xC0000081
#define MSR_LSTAR 0xC0000082
#define MSR_CSTAR 0xC0000083
#define MSR_SFMASK 0xC0000084
#define MSR_FS_BASE 0xC0000100
#define MSR_GS_BASE 0xC0000101
#define MSR_KERNEL_GS_BASE 0xC0000102

#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

/* Exception vectors (SDM 3A §6.3.1) */
#define VEC_DE 0
#define VEC_DB 1
#define VEC_NMI 2
#define VEC_BP 3
#define VEC_OF 4
#define VEC_BR 5
#define VEC_UD 6
#define VEC_NM 7
#define VEC_DF 8
#define VEC_TS 10
#define VEC_NP 11
#define VEC_SS 12
#define VEC_GP 13
#define VEC_PF 14
#define VEC_MF 16
#define VEC_AC 17
#define VEC_MC 18

struct cpuid_regs {
	uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct cpuid_regs r;
	asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
	return r;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

#define DEFINE_CR(n)                                                   \
	static inline uint64_t read_cr##n(void)                        \
	{                                                              \
		uint64_t v;                                            \
		asm volatile("mov %%cr" #n ", %0" : "=r"(v));          \
		return v;                                              \
	}                                                              \
	static inline void write_cr##n(uint64_t v)                     \
	{                                                              \
		asm volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); \
	}
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)
#undef DEFINE_CR

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void invlpg(uint64_t va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }

static inline uint64_t read_rflags(void)
{
	uint64_t v;
	asm volatile("pushfq; popq %0" : "=r"(v));
	return v;
}
static inline void write_rflags(uint64_t v) { asm volatile("pushq %0; popfq" : : "r"(v) : "memory", "cc"); }

static inline void cli(void) { asm volatile("cli" ::: "memory"); }
static inline void hlt(void) { asm volatile("hlt" ::: "memory"); }
/* stac/clac are only valid when CPUID.(EAX=7,ECX=0):EBX.SMAP=1 */
static inline void stac(void) { asm volatile("stac" ::: "memory", "cc"); }
static inline void clac(void) { asm volatile("clac" ::: "memory", "cc"); }

#define DEFINE_SEG_READ(name)                                  \
	static inline uint16_t read_##name(void)               \
	{                                                      \
		uint16_t v;                                    \
		asm volatile("mov %%" #name ", %0" : "=r"(v)); \
		return v;                                      \
	}
DEFINE_SEG_READ(cs)
DEFINE_SEG_READ(ds)
DEFINE_SEG_READ(es)
DEFINE_SEG_READ(ss)
DEFINE_SEG_READ(fs)
DEFINE_SEG_READ(gs)
#undef DEFINE_SEG_READ

/* Descriptor-table register image for lgdt/lidt/sgdt/sidt. */
struct PACKED dtr {
	uint16_t limit;
	uint64_t base;
};

static inline void lgdt(const struct dtr *d) { asm volatile("lgdt %0" : : "m"(*d) : "memory"); }
static inline void lidt(const struct dtr *d) { asm volatile("lidt %0" : : "m"(*d) : "memory"); }
static inline void ltr(uint16_t sel) { asm volatile("ltr %0" : : "rm"(sel) : "memory"); }
static inline struct dtr sgdt(void)
{
	struct dtr d;
	asm volatile("sgdt %0" : "=m"(d));
	return d;
}
static inline struct dtr sidt(void)
{
	struct dtr d;
	asm volatile("sidt %0" : "=m"(d));
	return d;
}

/* CPUID feature helpers used by tests to decide whether an optional feature exists. */
static inline bool cpu_has_leaf(uint32_t leaf)
{
	uint32_t max = cpuid(leaf & 0x80000000u, 0).eax;
	return max >= leaf;
}
static inline bool cpu_has_nx(void) { return cpu_has_leaf(0x80000001) && (cpuid(0x80000001, 0).edx >> 20) & 1; }
static inline bool cpu_has_1g_pages(void) { return cpu_has_leaf(0x80000001) && (cpuid(0x80000001, 0).edx >> 26) & 1; }
static inline bool cpu_has_pge(void) { return (cpuid(1, 0).edx >> 13) & 1; }
static inline bool cpu_has_pcid(void) { return (cpuid(1, 0).ecx >> 17) & 1; }
static inline bool cpu_has_leaf7_ebx(int bit) { return cpu_has_leaf(7) && (cpuid(7, 0).ebx >> bit) & 1; }
static inline bool cpu_has_fsgsbase(void) { return cpu_has_leaf7_ebx(0); }
static inline bool cpu_has_smep(void) { return cpu_has_leaf7_ebx(7); }
static inline bool cpu_has_invpcid(void) { return cpu_has_leaf7_ebx(10); }
static inline bool cpu_has_smap(void) { return cpu_has_leaf7_ebx(20); }

/* True if the CPUID vendor string is "GenuineIntel" (vendor-specific behaviour, e.g. SYSENTER in long mode). */
static inline bool cpu_is_intel(void)
{
	struct cpuid_regs r = cpuid(0, 0);
	return r.ebx == 0x756e6547 && r.edx == 0x49656e69 && r.ecx == 0x6c65746e;
}

#endif
