#!/bin/bash
# vmx-tests.elf on Bochs 2.7 (Debian 12), the second VMX implementation the suite is checked
# against (see README.md, "VMX conformance suite"). Extra arguments go to bochs-run.sh's kernel
# command line; BOCHS_CPU picks the model (default corei7_haswell_4770).
#
# Bochs stops with a PANIC on some SDM-defined cases it does not implement; those cases are not
# run (the kernel reports them as FAIL "not run"), so that the rest of the suite completes:
#   entry_ctl_inject_other_event_vector_1   event injection type 7 ("other event") with a
#                                           non-zero vector: the SDM says VMfailValid(7); Bochs
#                                           panics "unsupported event injection type 7".
# (VMCALL in VMX root operation with a *clear* current VMCS also panics Bochs; the suite uses a
# launched VMCS there, see vmcall_in_root_failvalid_1.)
here=$(dirname "$0")
skip=entry_ctl_inject_other_event_vector_1
exec "$here/bochs-run.sh" "$here/../build/vmx-tests.elf" "skip=$skip" "$@"
