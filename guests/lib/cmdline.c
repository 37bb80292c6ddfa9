/* key=value tokens in the kernel command line. */
#include "kstring.h"
#include "multiboot.h"

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

bool cmdline_get_in(const char *s, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	while (*s) {
		while (is_space(*s))
			s++;
		const char *tok = s;
		while (*s && !is_space(*s))
			s++;
		size_t tlen = (size_t)(s - tok);
		if (tlen > klen && tok[klen] == '=' && strncmp(tok, key, klen) == 0) {
			size_t vlen = tlen - klen - 1;
			if (size == 0)
				return true;
			if (vlen >= size)
				vlen = size - 1;
			memcpy(buf, tok + klen + 1, vlen);
			buf[vlen] = '\0';
			return true;
		}
	}
	return false;
}

bool cmdline_get(const char *key, char *buf, size_t size) { return cmdline_get_in(mb_cmdline(), key, buf, size); }

static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
	char buf[32];
	uint64_t v;
	if (cmdline_get(key, buf, sizeof(buf)) && parse_u64(buf, &v))
		return v;
	return dflt;
}
