/*
 * strbuf.c - bounded formatting (see strbuf.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "strbuf.h"

void
strbuf_printf(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos + 1 >= size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*pos = (size_t)n >= size - *pos ? size - 1 : *pos + (size_t)n;
}
