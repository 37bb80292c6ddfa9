/* A small printf. One formatting engine writes through a sink so that the serial port and
 * string buffers share all conversion code. */
#include "printf.h"
#include "serial.h"

struct sink {
	bool serial; /* write to the serial port rather than buf */
	char *buf;
	size_t size;
	size_t len; /* characters produced so far (as snprintf counts them) */
};

static void sink_put(struct sink *s, char c)
{
	if (s->serial)
		serial_putc(c);
	else if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void put_padded(struct sink *s, const char *str, size_t n, int width, bool left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;
	/* zero padding goes after a sign, so "-0005" rather than "000-5" */
	if (!left && pad == '0' && n > 0 && str[0] == '-') {
		sink_put(s, '-');
		str++;
		n--;
	}
	if (!left)
		while (fill-- > 0)
			sink_put(s, pad);
	for (size_t i = 0; i < n; i++)
		sink_put(s, str[i]);
	if (left)
		while (fill-- > 0)
			sink_put(s, ' ');
}

/* Formats v in the given base into the end of tmp; returns the start. */
static char *utoa(uint64_t v, unsigned base, bool upper, char *end)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;
	do {
		*--p = digits[v % base];
		v /= base;
	} while (v);
	return p;
}

static int format(struct sink *s, const char *fmt, va_list ap)
{
	char tmp[24];
	char *end = tmp + sizeof(tmp);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		fmt++;
		bool left = false;
		char pad = ' ';
		for (;; fmt++) {
			if (*fmt == '-')
				left = true;
			else if (*fmt == '0')
				pad = '0';
			else
				break;
		}
		int width = 0;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		int lng = 0;
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		char *p;
		uint64_t u;
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			u = v < 0 ? -(uint64_t)v : (uint64_t)v;
			p = utoa(u, 10, false, end);
			if (v < 0)
				*--p = '-';
			put_padded(s, p, (size_t)(end - p), width, left, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			p = utoa(u, *fmt == 'u' ? 10 : 16, *fmt == 'X', end);
			put_padded(s, p, (size_t)(end - p), width, left, pad);
			break;
		case 'p':
			u = (uint64_t)(uintptr_t)va_arg(ap, void *);
			p = utoa(u, 16, false, end);
			*--p = 'x';
			*--p = '0';
			put_padded(s, p, (size_t)(end - p), width, left, ' ');
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			size_t n = 0;
			while (str[n])
				n++;
			put_padded(s, str, n, width, left, ' ');
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			put_padded(s, &c, 1, width, left, ' ');
			break;
		}
		case '%':
			sink_put(s, '%');
			break;
		case '\0':
			return (int)s->len;
		default: /* unknown conversion: print it verbatim so the mistake is visible */
			sink_put(s, '%');
			sink_put(s, *fmt);
			break;
		}
	}
	return (int)s->len;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = { true, 0, 0, 0 };
	return format(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { false, buf, size, 0 };
	int n = format(&s, fmt, ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
