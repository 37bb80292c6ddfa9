/* Multiboot v1 information (Multiboot spec 0.6.96 §3.3) and the kernel command line.
 *
 * The command line is "IMAGE ARGS" on turtles and just "ARGS" on QEMU (-append), so options
 * are key=value tokens found anywhere in it; other tokens are ignored. */
#ifndef MULTIBOOT_H
#define MULTIBOOT_H

#include "types.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

#define MBI_FLAG_MEM (1u << 0)
#define MBI_FLAG_CMDLINE (1u << 2)
#define MBI_FLAG_MODS (1u << 3)
#define MBI_FLAG_MMAP (1u << 6)

struct PACKED multiboot_info {
	uint32_t flags;
	uint32_t mem_lower; /* KiB below 1 MiB */
	uint32_t mem_upper; /* KiB above 1 MiB (up to the first hole) */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;
	uint32_t mmap_addr;
};

struct PACKED multiboot_module {
	uint32_t mod_start;
	uint32_t mod_end; /* exclusive */
	uint32_t string;
	uint32_t reserved;
};

struct mb_module_info {
	uint64_t start, end;
	const char *cmdline;
};

void mb_init(uint32_t magic, uint32_t info_phys);
bool mb_valid(void); /* magic was right */
const struct multiboot_info *mb_info(void);
const char *mb_cmdline(void); /* "" when none */
uint32_t mb_mem_lower_kb(void);
uint32_t mb_mem_upper_kb(void);
uint32_t mb_module_count(void);
bool mb_module(uint32_t i, struct mb_module_info *out);
/* First byte at or above 1 MiB that is free: past the kernel image, the multiboot structures,
 * the command line and the modules. Page-aligned. */
uint64_t mb_free_start(void);

/* key=value lookup in the command line. */
bool cmdline_get(const char *key, char *buf, size_t size);
uint64_t cmdline_u64(const char *key, uint64_t dflt); /* decimal, or hex with 0x */
/* Same, on an arbitrary string (exposed for tests). */
bool cmdline_get_in(const char *cmdline, const char *key, char *buf, size_t size);

#endif
