/* QEMU fw_cfg, legacy I/O interface (QEMU docs/specs/fw_cfg.rst): 16-bit selector at 0x510,
 * data bytes at 0x511, items little-endian. */
#ifndef FWCFG_H
#define FWCFG_H

#include "types.h"

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05

void fwcfg_read(uint16_t key, void *buf, size_t n);
bool fwcfg_present(void); /* signature "QEMU" */
uint16_t fwcfg_nb_cpus(void);

#endif
