/** What L0 offers an L1 hypervisor (`--nested`), and the paper's optimizations, each switchable. */
import type { NestedMmu } from './caps.js';

export interface NestedOptions {
  /** What L1 gets: EPT (L0 builds ept02 = ept12 ∘ ept01) or no EPT (L1 shadows L2 itself). */
  mmu: NestedMmu;
  /** DRW: L1's VMREAD/VMWRITE served by hardware VMCS shadowing, without exits. */
  drw: boolean;
  /** Merge only the vmcs12 fields L1 wrote since the last nested entry into vmcs02. */
  dirtyMerge: boolean;
  /** Copy VMCS fields in groups (one charge per group) rather than one by one. */
  bulkCopy: boolean;
}
