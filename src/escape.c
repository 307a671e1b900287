/*
 * escape.c - untrusted bytes made safe to log.  Pure: no logging itself,
 * so that pure modules (netaddr) can escape what they format.
 */
#include <stdbool.h>

#include "escape.h"

/*
 * Printable ASCII but the double quote: escaped text is often logged in
 * quotes ("line \"%s\""), and a quote of the client's own would end that
 * value early and let the rest pose as key=value fields of ours.  A word
 * (a client's socket path, logged without quotes) keeps no space or '='
 * either, so that it stays one token and never reads as key=value.
 */
static bool
log_keeps(unsigned char c, bool word)
{
	return c >= 0x20 && c <= 0x7e && c != '"' &&
	    !(word && (c == ' ' || c == '='));
}

static size_t
escape(char *out, size_t outsz, const char *in, size_t len, bool word)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t need = 0, limit, pos = 0, i, dots;

	if (outsz == 0)
		return 0;
	/* Does everything fit?  Stop counting as soon as it is clear. */
	for (i = 0; i < len && need <= outsz - 1; i++)
		need += p[i] == '\\' ? 2 : log_keeps(p[i], word) ? 1 : 4;
	if (need <= outsz - 1) {
		limit = outsz - 1;
		dots = 0;
	} else {
		limit = outsz - 1 > 3 ? outsz - 1 - 3 : 0;
		dots = outsz - 1 > 3 ? 3 : outsz - 1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c == '\\') {
			if (pos + 2 > limit)
				break;
			out[pos++] = '\\';
			out[pos++] = '\\';
		} else if (log_keeps(c, word)) {
			if (pos + 1 > limit)
				break;
			out[pos++] = (char)c;
		} else {
			if (pos + 4 > limit)
				break;
			out[pos++] = '\\';
			out[pos++] = 'x';
			out[pos++] = hex[c >> 4];
			out[pos++] = hex[c & 0xf];
		}
	}
	while (dots-- > 0)
		out[pos++] = '.';
	out[pos] = '\0';
	return pos;
}

size_t
log_escape(char *out, size_t outsz, const char *in, size_t len)
{
	return escape(out, outsz, in, len, false);
}

size_t
log_escape_word(char *out, size_t outsz, const char *in, size_t len)
{
	return escape(out, outsz, in, len, true);
}
