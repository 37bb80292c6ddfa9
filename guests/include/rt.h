/* The guest runtime: include this one header. */
#ifndef RT_H
#define RT_H

#include "catch.h"
#include "exit.h"
#include "frame.h"
#include "gdt.h"
#include "idt.h"
#include "kassert.h"
#include "kstring.h"
#include "multiboot.h"
#include "paging.h"
#include "printf.h"
#include "serial.h"
#include "test.h"
#include "types.h"
#include "user.h"
#include "x86.h"

/* Serial port, multiboot info, GDT+TSS, IDT, SYSCALL MSRs, user-accessible .user pages.
 * Call first thing in kmain(). */
void rt_init(uint32_t magic, uint32_t mbinfo_phys);

void kmain(uint32_t magic, uint32_t mbinfo_phys);

#endif
