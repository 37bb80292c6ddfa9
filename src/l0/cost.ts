/**
 * What L0's work costs in simulated cycles. L0 is TypeScript, so its time is charged,
 * not measured (DESIGN.md "Cycles, time and determinism"). Calibration: the paper
 * measures a single-level CPUID exit at ~2.5k cycles on its 2.9 GHz Xeon, ~1.0k of it
 * in the hardware exit+entry (src/hw/cost.ts charges 500 + 500) and ~1.5k in KVM's
 * handler (Ben-Yehuda et al., OSDI 2010, §4.3). Our CPUID exit therefore charges a base
 * dispatch cost plus the handler's own work so that the total lands at ~2.5k.
 */
export const L0_COST = {
  /** Exit dispatch: reading the exit reason and qualification, saving guest GPRs (KVM's vmx_handle_exit path). */
  dispatch: 900,
  /** Each VMREAD/VMWRITE L0 issues in software (on the paper's Nehalem ~30-50 cycles). */
  vmcsAccess: 40,
  /** CPUID emulation: table lookup and register writes. */
  cpuid: 450,
  /** Port I/O to an emulated device (decode, bus dispatch, device model). */
  io: 600,
  /** MSR read/write emulation. */
  msr: 400,
  /** CR access emulation (masks, shadows). */
  cr: 500,
  // ---- shadow paging (--mmu shadow, src/l0/mmu/shadow*.ts). Estimates, not measurements: KVM's
  // pre-EPT MMU handled a shadow page fault in a few thousand cycles of software (walk the guest
  // tables, build the spte, rmap and write-protect bookkeeping); the split below puts a fill at
  // about 1k cycles on top of the dispatch, so that with the exit+entry pair one shadow fill
  // costs ~3k cycles, roughly the order KVM's shadow MMU showed on the paper's generation.
  /** #PF exit: decoding the fault, looking up the shadow root, deciding fill vs reflect. */
  pageFault: 600,
  /** Each guest paging-structure entry L0 reads in its software walk (cache-hot load, checks). */
  guestWalkRef: 25,
  /** Building one shadow leaf entry (rights from the guest walk, rmap and write-protect bookkeeping). */
  shadowEntry: 250,
  /** A new shadow page-table page (allocation and zeroing 4 KiB). */
  shadowTable: 400,
  /** Dropping one shadow entry (clear, unlink from the rmap, INVVPID). */
  shadowZap: 80,
  /** A guest page-table write: making the page writable for one instruction, snapshot and diff afterwards. */
  ptWrite: 900,
  /**
   * Shadow-on-shadow (mmu/spt02.ts), resynchronizing a stale spt02 root at a flush point: per
   * page of L1's tables checked for writes (spt01's dirty flags) and per remembered entry of a
   * written page compared with L1's memory (a cache-hot load and compare, as KVM's sync of an
   * unsync shadow page reads each guest PTE).
   */
  shadowSyncEntry: 10,
  /** Reflecting a #PF to the guest (error code, CR2, event injection). */
  pfReflect: 200,
  /** MOV to CR3 under shadow paging: the CR3-switch cache lookup and root switch. */
  cr3Switch: 300,
  /** INVLPG/INVPCID under shadow paging: flushing the linear address (or the VPID). */
  invlpg: 200,
  // ---- nesting (src/l0/nested). The paper measures a naive nested CPUID at ~58k cycles with 13
  // L0 exits (§4.3); these charges are L0's software work per step of that path.
  /** Emulating one of L1's VMX instructions: decode the instruction information, check, update flags. */
  vmxInsn: 300,
  /** Reading or writing L1's memory operand through L1's page tables (a software page walk). */
  guestMemOperand: 250,
  /** Checking vmcs12 at L1's VMLAUNCH/VMRESUME (the hardware's check list, run in software). */
  nestedEntryChecks: 1200,
  /** Switching the current VMCS (VMPTRLD of vmcs02 or vmcs01). */
  vmptrld: 200,
  /** Copying one VMCS field in software (VMREAD + VMWRITE, or a cached read): KVM's per-field copy. */
  fieldCopy: 60,
  /** Copying one group of related fields at once (the paper's bulk copy: one charge per group). */
  groupCopy: 150,
  /** Deciding who handles an L2 exit (l0WantsExit / l1WantsExit, bitmaps in L1 memory). */
  reflectDecision: 200,
  /** Loading L1's host state from vmcs12 into vmcs01 at a reflected exit. */
  loadHostState: 600,
  /** Walking ept12 (in L1 memory) for one L2 guest-physical address. */
  ept12Walk: 400,
  /** Merging L1's MSR bitmap with vmcs01's into vmcs02's (4 KiB, word by word). */
  msrBitmapMerge: 300,
  /** Building one ept02 entry (ept12 ∘ ept01). */
  ept02Entry: 150,
  // ---- the virtual platform (vmm/vplatform.ts, inject.ts, mmio.ts, string-io.ts, platform-exits.ts)
  /**
   * Injecting an event at VM entry, or re-injecting one an exit interrupted: VMREADs of the
   * interruptibility state and RFLAGS, the VMWRITE of the entry field, the vLAPIC's IRR→ISR
   * (KVM's inject_pending_event + vmx_inject_irq: ~4 VMCS accesses and the APIC bookkeeping).
   */
  inject: 150,
  /**
   * Emulating one MMIO load/store after an EPT violation: a software walk of the guest's page
   * tables to fetch the instruction (~4 levels), x86 decoding, the device model and completing
   * the instruction (KVM's x86_emulate_instruction path, its costliest common exit).
   */
  mmio: 1200,
  /** One element of INS/OUTS beyond the exit's port-I/O cost: a guest page walk and a copy. */
  stringIoElement: 60,
  /** HLT: the vCPU leaves the run queue (KVM's kvm_vcpu_halt bookkeeping, not the idle time). */
  hlt: 200,
  /** An interrupt- or NMI-window or TPR-below-threshold exit: nothing to emulate, the injection follows. */
  window: 100,
  /** INIT/SIPI: building a fresh vmcs01 for a vCPU in real mode (~45 VMWRITEs, as at VM creation). */
  vcpuStartup: 2000,
  // ---- instruction emulation of guest state VM entry refuses (vmm/realmode/: real mode and
  // protected mode with real-mode segments under shadow paging, KVM's handle_invalid_guest_state).
  // Loading the state costs a VMREAD per field and writing it back a VMWRITE per changed field
  // (`vmcsAccess`); CR writes, CPUID/MSRs, HLT and interrupts add their usual handler costs.
  /**
   * One emulated instruction: fetch (a guest linear-to-physical translation and a copy), decode
   * and execute in software, without a VM exit: the `mmio` path less the exit bookkeeping and the
   * device, i.e. KVM's x86_emulate_instruction per iteration of its invalid-state loop.
   */
  emulatedInsn: 800,
  /** Each element a REP string instruction moves while emulated, beyond the instruction itself. */
  emulatedStringElement: 40,
} as const;
