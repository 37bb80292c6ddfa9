/* tvisor: the multiboot v1 loader for guests (Multiboot spec 0.6.96 §3). A module is loaded
 * into the guest's RAM as a multiboot loader would load a kernel into a PC's: ELF32/ELF64 by
 * program headers (p_paddr; the tail past p_filesz zeroed), or by the a.out kludge of the
 * multiboot header (flags bit 16). The guest's info block, memory map, command line and the
 * flat GDT its CS/DS selectors refer to go in low guest memory at LOADER_AREA, never in page 0.
 *
 * Guest-physical memory map (what the guest's multiboot map says):
 *   0        - 0x9FC00   RAM (base memory; the loader area is in here)
 *   0x9FC00  - 0xA0000   reserved (EBDA, as a PC BIOS leaves it)
 *   0xF0000  - 0x100000  reserved (BIOS)
 *   0x100000 - ram_size  RAM
 * EPT/shadow map all of [0, ram_size); nothing above it exists for the guest. */
#include "tvisor.h"

#define LOADER_AREA 0x10000u
#define LOADER_AREA_END 0x80000u
#define BASE_MEM_END 0x9FC00u
#define HIGH_MEM 0x100000u
#define MB_HEADER_MAGIC 0x1BADB002u
#define MB_FLAG_AOUT (1u << 16)
/* flags bits 0-15 are requirements; we satisfy 0 (align modules: we pass none) and 1 (memory
 * info). Bit 2 (video mode) cannot be honoured without a framebuffer: refused, as the spec asks. */
#define MB_REQ_KNOWN 0x3u

/* the selectors QEMU's multiboot loader uses; the guest must load its own GDT anyway (§3.2) */
#define GUEST_BOOT_CS 0x08
#define GUEST_BOOT_DS 0x10

struct seg {
	uint64_t paddr, filesz, memsz, offset;
};
#define MAX_SEGS 16

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static bool load_fail(struct guest *g, const char *fmt, ...) PRINTF_LIKE(2, 3);
static bool load_fail(struct guest *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("tvisor: g%d: cannot load %s: ", g->id, g->name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	return false;
}

/* Segments from ELF program headers. Returns the count, or -1 after printing why. */
static int elf_segments(struct guest *g, const uint8_t *img, uint64_t len, struct seg *segs, uint64_t *entry)
{
	bool is64 = img[4] == 2;
	if ((img[4] != 1 && img[4] != 2) || img[5] != 1)
		return load_fail(g, "ELF class %u / data encoding %u unsupported (need little-endian ELF32/ELF64)", img[4], img[5]), -1;
	uint16_t type = rd16(img + 16), machine = rd16(img + 18);
	if (type != 2)
		return load_fail(g, "ELF type %u is not an executable", type), -1;
	if (machine != 3 && machine != 62)
		return load_fail(g, "ELF machine %u is not x86 (3) or x86-64 (62)", machine), -1;
	uint64_t phoff, phentsize, phnum;
	if (is64) {
		*entry = rd64(img + 24);
		phoff = rd64(img + 32);
		phentsize = rd16(img + 54);
		phnum = rd16(img + 56);
	} else {
		*entry = rd32(img + 24);
		phoff = rd32(img + 28);
		phentsize = rd16(img + 42);
		phnum = rd16(img + 44);
	}
	if (phentsize < (is64 ? 56u : 32u) || phoff > len || phnum * phentsize > len - phoff)
		return load_fail(g, "ELF program headers at 0x%lx (%lu entries) are cut off", phoff, phnum), -1;
	int n = 0;
	for (uint64_t i = 0; i < phnum; i++) {
		const uint8_t *ph = img + phoff + i * phentsize;
		if (rd32(ph) != 1) /* PT_LOAD */
			continue;
		struct seg s;
		uint64_t vaddr;
		if (is64) {
			s.offset = rd64(ph + 8);
			vaddr = rd64(ph + 16);
			s.paddr = rd64(ph + 24);
			s.filesz = rd64(ph + 32);
			s.memsz = rd64(ph + 40);
		} else {
			s.offset = rd32(ph + 4);
			vaddr = rd32(ph + 8);
			s.paddr = rd32(ph + 12);
			s.filesz = rd32(ph + 16);
			s.memsz = rd32(ph + 20);
		}
		if (s.memsz == 0)
			continue;
		if (s.filesz > s.memsz || s.offset > len || s.filesz > len - s.offset)
			return load_fail(g, "ELF segment %lu (file offset 0x%lx) lies beyond the end of the file", i, s.offset), -1;
		if (n == MAX_SEGS)
			return load_fail(g, "more than %d loadable segments", MAX_SEGS), -1;
		/* an entry point given as a virtual address is translated through its segment */
		if (vaddr != s.paddr && *entry >= vaddr && *entry < vaddr + s.memsz)
			*entry = *entry - vaddr + s.paddr;
		segs[n++] = s;
	}
	if (n == 0)
		return load_fail(g, "ELF file has no loadable segments"), -1;
	return n;
}

static bool ranges_overlap(uint64_t a, uint64_t ae, uint64_t b, uint64_t be) { return a < be && b < ae; }

bool guest_load(struct guest *g, const uint8_t *img, uint64_t len, uint32_t *entry_out, uint32_t *mbi_out)
{
	/* the multiboot header: 32-bit aligned, within the first 8 KiB (§3.1.1) */
	uint64_t hdr = ~0ull;
	for (uint64_t at = 0; at + 12 <= len && at + 12 <= 8192; at += 4) {
		if (rd32(img + at) != MB_HEADER_MAGIC)
			continue;
		if ((uint32_t)(rd32(img + at) + rd32(img + at + 4) + rd32(img + at + 8)) == 0) {
			hdr = at;
			break;
		}
	}
	if (hdr == ~0ull)
		return load_fail(g, "not a multiboot image (no multiboot header in its first 8192 bytes; %lu bytes long)", len);
	uint32_t flags = rd32(img + hdr + 4);
	if (flags & 0xFFFF & ~MB_REQ_KNOWN)
		return load_fail(g, "multiboot header requires features 0x%x this loader does not provide",
			    flags & 0xFFFF & ~MB_REQ_KNOWN);

	struct seg segs[MAX_SEGS];
	int nseg;
	uint64_t entry;
	bool elf = len >= 64 && img[0] == 0x7F && img[1] == 'E' && img[2] == 'L' && img[3] == 'F';
	if (flags & MB_FLAG_AOUT) {
		/* a.out kludge (§3.1.3): the header's address fields say where the file goes */
		if (hdr + 32 > len)
			return load_fail(g, "multiboot header at 0x%lx is cut off before its address fields", hdr);
		uint32_t header_addr = rd32(img + hdr + 12), load_addr = rd32(img + hdr + 16);
		uint32_t load_end = rd32(img + hdr + 20), bss_end = rd32(img + hdr + 24);
		entry = rd32(img + hdr + 28);
		if (header_addr < load_addr || header_addr - load_addr > hdr)
			return load_fail(g, "multiboot header_addr 0x%x / load_addr 0x%x are inconsistent", header_addr, load_addr);
		uint64_t file_start = hdr - (header_addr - load_addr);
		uint64_t file_end = load_end ? file_start + (load_end - load_addr) : len;
		if (load_end && load_end < header_addr)
			return load_fail(g, "multiboot load_end_addr 0x%x is below header_addr 0x%x", load_end, header_addr);
		if (file_end > len)
			return load_fail(g, "multiboot load_end_addr 0x%x lies beyond the end of the file", load_end);
		uint64_t memsz = bss_end ? (uint64_t)bss_end - load_addr : file_end - file_start;
		if (memsz < file_end - file_start)
			return load_fail(g, "multiboot bss_end_addr 0x%x is below the end of the image", bss_end);
		segs[0] = (struct seg){ load_addr, file_end - file_start, memsz, file_start };
		nseg = 1;
	} else if (elf) {
		nseg = elf_segments(g, img, len, segs, &entry);
		if (nseg < 0)
			return false;
	} else {
		return load_fail(g, "multiboot image is not ELF and its header has no load addresses (flag bit 16)");
	}
	if (entry >= 0x100000000ull)
		return load_fail(g, "entry point 0x%lx is above 4 GiB (multiboot enters in 32-bit mode)", entry);

	for (int i = 0; i < nseg; i++) {
		struct seg *s = &segs[i];
		uint64_t end = s->paddr + s->memsz;
		if (end < s->paddr || end > g->ram_size)
			return load_fail(g, "segment 0x%lx-0x%lx does not fit in the guest's %lu KiB of RAM (tvisor option mem=MiB)",
				    s->paddr, end, g->ram_size / 1024);
		if (ranges_overlap(s->paddr, end, 0, LOADER_AREA_END) || ranges_overlap(s->paddr, end, BASE_MEM_END, HIGH_MEM))
			return load_fail(g, "segment 0x%lx-0x%lx overlaps the boot structures or the reserved area below 1 MiB", s->paddr, end);
		for (int j = 0; j < i; j++)
			if (ranges_overlap(s->paddr, end, segs[j].paddr, segs[j].paddr + segs[j].memsz))
				return load_fail(g, "segments at 0x%lx and 0x%lx overlap", s->paddr, segs[j].paddr);
	}
	/* the entry point must be in a loaded segment */
	bool entry_ok = false;
	for (int i = 0; i < nseg; i++)
		if (entry >= segs[i].paddr && entry < segs[i].paddr + segs[i].memsz)
			entry_ok = true;
	if (!entry_ok)
		return load_fail(g, "entry point 0x%lx is not inside a loaded segment", entry);

	for (int i = 0; i < nseg; i++) {
		struct seg *s = &segs[i];
		memcpy(gpa_ptr(g, s->paddr), img + s->offset, s->filesz);
		memset(gpa_ptr(g, s->paddr + s->filesz), 0, s->memsz - s->filesz); /* bss */
	}

	/* loader area: GDT, info block, memory map, strings (§3.3) */
	uint8_t *area = gpa_ptr(g, LOADER_AREA);
	uint32_t at = 0;
	static const uint64_t gdt[3] = { 0, 0x00CF9B000000FFFFull, 0x00CF93000000FFFFull };
	memcpy(area, gdt, sizeof(gdt));
	at = 32;
	uint32_t info = LOADER_AREA + at;
	struct multiboot_info *mbi = (struct multiboot_info *)(area + at);
	at += 128;
	uint32_t mmap = LOADER_AREA + at;
	struct PACKED {
		uint32_t size;
		uint64_t base, len;
		uint32_t type;
	} *mm = (void *)(area + at);
	mm[0] = (typeof(mm[0])){ 20, 0, BASE_MEM_END, 1 };
	mm[1] = (typeof(mm[0])){ 20, BASE_MEM_END, 0xA0000 - BASE_MEM_END, 2 };
	mm[2] = (typeof(mm[0])){ 20, 0xF0000, HIGH_MEM - 0xF0000, 2 };
	mm[3] = (typeof(mm[0])){ 20, HIGH_MEM, g->ram_size - HIGH_MEM, 1 };
	at += 4 * 24;
	uint32_t cmdline = LOADER_AREA + at;
	size_t clen = strlen(g->name);
	memcpy(area + at, g->name, clen + 1);
	at += (uint32_t)clen + 1;
	uint32_t loader_name = LOADER_AREA + at;
	memcpy(area + at, "tvisor", 7);

	memset(mbi, 0, 128);
	mbi->flags = MBI_FLAG_MEM | MBI_FLAG_CMDLINE | MBI_FLAG_MODS | MBI_FLAG_MMAP | (1u << 9) /* loader name */;
	mbi->mem_lower = BASE_MEM_END / 1024;
	mbi->mem_upper = (uint32_t)((g->ram_size - HIGH_MEM) / 1024);
	mbi->cmdline = cmdline;
	mbi->mods_count = 0;
	mbi->mods_addr = mmap; /* no modules: any address will do */
	mbi->mmap_length = 4 * 24;
	mbi->mmap_addr = mmap;
	*(uint32_t *)((uint8_t *)mbi + 64) = loader_name;

	*entry_out = (uint32_t)entry;
	*mbi_out = info;
	return true;
}
