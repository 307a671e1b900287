/*
 * escape.h - untrusted bytes (client lines, peer socket paths) made safe
 * for a log line.
 */
#ifndef ECHOTIMED_ESCAPE_H
#define ECHOTIMED_ESCAPE_H

#include <stddef.h>

/*
 * Escape untrusted bytes for a log: printable ASCII kept, a backslash
 * doubled, everything else (a double quote too) as \xHH.  Always
 * NUL-terminates out; truncates with "...".  Returns strlen(out).
 */
size_t	log_escape(char *out, size_t outsz, const char *in, size_t len);
/* log_escape() for text logged as one word (a socket path): a space and
 * '=' become \xHH too. */
size_t	log_escape_word(char *out, size_t outsz, const char *in, size_t len);

#endif
