/* The PC platform layer of the runtime: interrupt controllers, timers, ACPI, fw_cfg, PCI, RTC
 * and AP start-up. Kernels that take hardware interrupts include this after rt.h. */
#ifndef PLATFORM_H
#define PLATFORM_H

#include "acpi.h"
#include "fwcfg.h"
#include "intr.h"
#include "ioapic.h"
#include "lapic.h"
#include "pci.h"
#include "pic.h"
#include "pit.h"
#include "rtc.h"
#include "smp.h"
#include "tsc.h"

#endif
