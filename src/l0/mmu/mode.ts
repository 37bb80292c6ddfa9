/**
 * How L0 virtualizes a VM's memory: 'ept' (ept01 maps guest-physical to host-physical, the
 * guest owns its page tables and CR3) or 'shadow' (no EPT: L0 builds shadow page tables from
 * the guest's own, as KVM did before EPT; mmu/shadow*.ts). Chosen when the VM is created.
 */
export type MmuMode = 'ept' | 'shadow';
