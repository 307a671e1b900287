/*
 * strbuf.h - formatting into a fixed buffer piece by piece, for texts
 * that may be cut (log lines, the status text) but never overrun.
 */
#ifndef ECHOTIMED_STRBUF_H
#define ECHOTIMED_STRBUF_H

#include <stddef.h>

/*
 * printf() to buf at *pos, buf holding size bytes; *pos moves past what
 * was written.  Always NUL-terminated; what does not fit is cut silently.
 */
void	strbuf_printf(char *buf, size_t size, size_t *pos, const char *fmt,
	    ...) __attribute__((format(printf, 4, 5)));

#endif
