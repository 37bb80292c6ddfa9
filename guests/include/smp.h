/* Application-processor start-up (SDM 3A §9.4 "Multiple-Processor (MP) Initialization").
 *
 * smp_start_ap() copies a real-mode trampoline (lib/smp_trampoline.S) to SMP_TRAMPOLINE_BASE
 * (below 1 MiB, page-aligned: the SIPI vector is the page number), then sends INIT, waits
 * 10 ms, sends a STARTUP IPI and, if the AP has not checked in after 200 us, a second one
 * (the SDM's INIT-SIPI-SIPI sequence; delays on PIT channel 2). The AP runs the trampoline at
 * CS:IP = 0x0800:0000 in real mode, loads a GDT, enters protected mode, turns on PAE paging with
 * the BSP's CR3, EFER.LME and CR0 (long mode), switches to its own 16 KiB stack and calls C.
 * There it loads the BSP's GDT and IDT (no TSS: IST stacks and ring changes are BSP-only),
 * initialises its local APIC (lapic_init_cpu(SMP_SPURIOUS_VECTOR), xAPIC mode), reports in
 * and calls fn(cpu_index, arg) with IF=0. If fn returns, the AP halts with interrupts disabled.
 *
 * APs share the IDT handler table with the BSP: register handlers for every vector an AP can
 * receive (including SMP_SPURIOUS_VECTOR). The test harness (catch_run, EXPECT) and printf are
 * not for APs: they communicate through shared memory. */
#ifndef SMP_H
#define SMP_H

#include "types.h"

#define SMP_TRAMPOLINE_BASE 0x8000u
#define SMP_MAX_CPUS 8
#define SMP_AP_STACK_SIZE 0x4000
#define SMP_SPURIOUS_VECTOR 0xFF

typedef void (*ap_fn)(unsigned cpu_index, void *arg);

/* cpu_index: 1..SMP_MAX_CPUS-1, selects the AP's stack. Returns true when the AP has reached
 * C code (false if it did not within about 100 ms). One AP is started at a time. */
bool smp_start_ap(uint32_t apic_id, unsigned cpu_index, ap_fn fn, void *arg);

/* Number of APs that have checked in since boot. */
unsigned smp_aps_started(void);

#endif
