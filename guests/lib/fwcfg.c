/* fw_cfg legacy interface. See include/fwcfg.h. */
#include "fwcfg.h"
#include "kstring.h"
#include "x86.h"

void fwcfg_read(uint16_t key, void *buf, size_t n)
{
	outw(FW_CFG_PORT_SEL, key);
	uint8_t *b = buf;
	for (size_t i = 0; i < n; i++)
		b[i] = inb(FW_CFG_PORT_DATA);
}

bool fwcfg_present(void)
{
	char sig[4];
	fwcfg_read(FW_CFG_SIGNATURE, sig, 4);
	return memcmp(sig, "QEMU", 4) == 0;
}

uint16_t fwcfg_nb_cpus(void)
{
	uint8_t b[2];
	fwcfg_read(FW_CFG_NB_CPUS, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}
