/**
 * Extended page tables: entry format, EPT pointer, memory types and the exit qualification
 * of EPT violations (SDM 3C §28.2 "The Extended Page Table Mechanism", §24.6.11
 * "Extended-Page-Table Pointer", §27.2.1; 2016-2022 numbering).
 *
 * EPT entries and the EPTP are 64-bit; the machine keeps them as (hi, lo) int32 pairs.
 * Bit positions are given in EPT_BIT; masks of the bits below 32 in EPT_LO, of the bits
 * 32-63 (as positions within the high dword) in EPT_HI.
 */
import { bit, bits, type BitLayout } from './bitfield.js';

/** Bit positions in an EPT paging-structure entry (PML5E/PML4E/PDPTE/PDE/PTE). */
export const EPT_BIT = {
  /** Reads allowed from the region controlled by this entry. */
  READ: 0,
  /** Writes allowed. */
  WRITE: 1,
  /** Instruction fetches allowed (supervisor-mode linear addresses when mode-based execute control is on). */
  EXECUTE: 2,
  /** Leaf entries: EPT memory type, bits 5:3. */
  MEMORY_TYPE_LSB: 3,
  /** Leaf entries: ignore PAT memory type. */
  IGNORE_PAT: 6,
  /** PDPTE/PDE: 1 = maps a 1-GiB/2-MiB page. Must be 0 in PML4Es (reserved). */
  LARGE_PAGE: 7,
  /** Accessed flag (only when EPTP bit 6 enables A/D flags). */
  ACCESSED: 8,
  /** Leaf entries: dirty flag (only when A/D flags are enabled). */
  DIRTY: 9,
  /** User-mode execute (only with mode-based execute control for EPT). */
  USER_EXECUTE: 10,
  VERIFY_GUEST_PAGING: 57,
  PAGING_WRITE_ACCESS: 58,
  SUPERVISOR_SHADOW_STACK: 60,
  SUB_PAGE_WRITE_PERMISSIONS: 61,
  /** Leaf entries: suppress #VE (only with "EPT-violation #VE"). */
  SUPPRESS_VE: 63,
} as const;

/** Masks of EPT entry bits in the low dword. */
export const EPT_LO = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  EXECUTE: 1 << 2,
  /** Bits 2:0: an entry is present ("not present" = all three 0, without mode-based execute). */
  RWX: 0x7,
  MEMORY_TYPE: 0x38,
  IGNORE_PAT: 1 << 6,
  LARGE_PAGE: 1 << 7,
  ACCESSED: 1 << 8,
  DIRTY: 1 << 9,
  USER_EXECUTE: 1 << 10,
} as const;

/** Masks of EPT entry bits 63:32 within the high dword. */
export const EPT_HI = {
  VERIFY_GUEST_PAGING: 1 << (57 - 32),
  PAGING_WRITE_ACCESS: 1 << (58 - 32),
  SUPERVISOR_SHADOW_STACK: 1 << (60 - 32),
  SUB_PAGE_WRITE_PERMISSIONS: 1 << (61 - 32),
  SUPPRESS_VE: 1 << (63 - 32),
} as const;

/** Leaf memory type of an EPT entry, bits 5:3 (as a field). */
export const EPT_MEMORY_TYPE_FIELD = bits(5, 3);

/** Memory types (EPT leaf entries, EPTP, IA32_VMX_BASIC, PAT/MTRR encodings). */
export const MEMORY_TYPE = {
  UC: 0,
  WC: 1,
  WT: 4,
  WP: 5,
  WB: 6,
} as const;

/** Memory types an EPT leaf entry may hold; 2, 3 and 7 make the entry misconfigured. */
export const EPT_VALID_LEAF_MEMORY_TYPES: readonly number[] = [
  MEMORY_TYPE.UC,
  MEMORY_TYPE.WC,
  MEMORY_TYPE.WT,
  MEMORY_TYPE.WP,
  MEMORY_TYPE.WB,
];

/**
 * Reserved bits of non-leaf and leaf entries below bit 12, by level, that make an entry
 * misconfigured when it is present (SDM 3C §28.2.3.1). Bits 51:MAXPHYADDR of the address
 * are reserved too (not listed: they depend on the physical-address width).
 */
export const EPT_RESERVED_LO = {
  /** PML4E: bits 7:3. */
  PML4E: 0xf8,
  /** PDPTE pointing to a page directory (bit 7 = 0): bits 6:3. */
  PDPTE_TABLE: 0x78,
  /** PDPTE mapping a 1-GiB page: bits 29:12 of the address. */
  PDPTE_1G: 0x3ffff000,
  /** PDE pointing to a page table (bit 7 = 0): bits 6:3. */
  PDE_TABLE: 0x78,
  /** PDE mapping a 2-MiB page: bits 20:12 of the address. */
  PDE_2M: 0x1ff000,
  /** PTE: none below bit 12. */
  PTE: 0,
} as const;

/** EPT pointer (VMCS field EPT_POINTER; also the entries of the EPTP list). */
export const EPTP = {
  /** EPT paging-structure memory type: UC (0) or WB (6), as IA32_VMX_EPT_VPID_CAP allows. */
  MEMORY_TYPE: bits(2, 0),
  /** EPT page-walk length minus 1: 3 for a 4-level walk (4 for 5-level). */
  PAGE_WALK_LENGTH_MINUS_1: bits(5, 3),
  /** Enable accessed and dirty flags. */
  ENABLE_AD: bit(6),
  /** Enable enforcement of access rights for supervisor shadow-stack pages. */
  ENABLE_SSS: bit(7),
} as const satisfies BitLayout;

/** EPTP bits 11:8 are reserved (bits 63:MAXPHYADDR too). */
export const EPTP_RESERVED_LO = 0xf00;
/** The EPTP value's page-walk-length field for a 4-level walk. */
export const EPTP_WALK_4 = 3;

/** Exit qualification of EPT violations (SDM 3C §27.2.1). */
export const EPT_VIOLATION_QUAL = {
  /** The access was a data read. */
  READ: 1 << 0,
  /** The access was a data write. */
  WRITE: 1 << 1,
  /** The access was an instruction fetch. */
  FETCH: 1 << 2,
  /** Bit 0 (read) of every EPT entry of the translation was 1 (the AND of them). */
  READABLE: 1 << 3,
  /** The AND of bit 1 (write). */
  WRITABLE: 1 << 4,
  /** The AND of bit 2 (execute; supervisor-execute with mode-based execute control). */
  EXECUTABLE: 1 << 5,
  /** The AND of bit 10 (user-execute); undefined without mode-based execute control. */
  USER_EXECUTABLE: 1 << 6,
  /** The guest linear-address field is valid. */
  GLA_VALID: 1 << 7,
  /**
   * With GLA_VALID: 1 = the access was to the translation of the linear address (the final
   * guest-physical address), 0 = to a guest paging-structure entry during the walk.
   */
  GLA_TRANSLATED: 1 << 8,
  /** Advanced VM-exit information only: the linear address was user-mode. */
  USER_MODE_LINEAR: 1 << 9,
  /** Advanced VM-exit information only: the linear address was read/write. */
  READ_WRITE_LINEAR: 1 << 10,
  /** Advanced VM-exit information only: the linear address was execute-disable. */
  EXECUTE_DISABLE_LINEAR: 1 << 11,
  /** NMI unblocking due to IRET. */
  NMI_UNBLOCKING_DUE_TO_IRET: 1 << 12,
  SHADOW_STACK_ACCESS: 1 << 13,
  SUPERVISOR_SHADOW_STACK: 1 << 14,
  GUEST_PAGING_VERIFICATION: 1 << 15,
  /** The access was asynchronous to instruction execution (e.g. a PT trace write). */
  ASYNCHRONOUS: 1 << 16,
} as const;

/** Page sizes an EPT leaf can map, by level (1 = PTE … 3 = PDPTE). */
export const EPT_PAGE_SHIFT = { 1: 12, 2: 21, 3: 30 } as const;
/** Entries per EPT paging structure; index bits per level. */
export const EPT_ENTRIES = 512;
