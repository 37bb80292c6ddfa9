#include "multiboot.h"
#include "kstring.h"

extern char __image_start[], _end[];

static const struct multiboot_info *mbi;

void mb_init(uint32_t magic, uint32_t info_phys)
{
	mbi = magic == MULTIBOOT_BOOTLOADER_MAGIC && info_phys ? (const struct multiboot_info *)(uint64_t)info_phys : 0;
}

bool mb_valid(void) { return mbi != 0; }
const struct multiboot_info *mb_info(void) { return mbi; }

const char *mb_cmdline(void)
{
	if (!mbi || !(mbi->flags & MBI_FLAG_CMDLINE) || !mbi->cmdline)
		return "";
	return (const char *)(uint64_t)mbi->cmdline;
}

uint32_t mb_mem_lower_kb(void) { return mbi && (mbi->flags & MBI_FLAG_MEM) ? mbi->mem_lower : 0; }
uint32_t mb_mem_upper_kb(void) { return mbi && (mbi->flags & MBI_FLAG_MEM) ? mbi->mem_upper : 0; }
uint32_t mb_module_count(void) { return mbi && (mbi->flags & MBI_FLAG_MODS) ? mbi->mods_count : 0; }

bool mb_module(uint32_t i, struct mb_module_info *out)
{
	if (i >= mb_module_count())
		return false;
	const struct multiboot_module *m = (const struct multiboot_module *)(uint64_t)mbi->mods_addr + i;
	out->start = m->mod_start;
	out->end = m->mod_end;
	out->cmdline = m->string ? (const char *)(uint64_t)m->string : "";
	return true;
}

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

uint64_t mb_free_start(void)
{
	uint64_t top = (uint64_t)_end;
	if (mbi) {
		/* loaders (QEMU among them) may put these just above the kernel image */
		top = max_u64(top, (uint64_t)mbi + sizeof(*mbi));
		const char *c = mb_cmdline();
		top = max_u64(top, (uint64_t)c + strlen(c) + 1);
		for (uint32_t i = 0; i < mb_module_count(); i++) {
			struct mb_module_info m;
			mb_module(i, &m);
			top = max_u64(top, m.end);
			top = max_u64(top, (uint64_t)m.cmdline + strlen(m.cmdline) + 1);
			top = max_u64(top, (uint64_t)mbi->mods_addr + (i + 1) * sizeof(struct multiboot_module));
		}
		if (mbi->flags & MBI_FLAG_MMAP)
			top = max_u64(top, (uint64_t)mbi->mmap_addr + mbi->mmap_length);
	}
	if (top < 0x100000)
		top = (uint64_t)_end;
	return (top + 0xFFF) & ~0xFFFull;
}
