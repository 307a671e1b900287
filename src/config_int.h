/*
 * config_int.h - find the integer literals that libconfig 1.5 truncates.
 *
 * libconfig 1.5 stores an integer literal without an "L" suffix in an int
 * and silently truncates it: "port = 4294967296;" reads as 0.  The loader
 * scans each file with this small tokenizer first, so that a truncated
 * value is reported with the text the administrator wrote.  Pure: no
 * logging, no libconfig; the caller opens the files.
 */
#ifndef ECHOTIMED_CONFIG_INT_H
#define ECHOTIMED_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One integer literal too big for an int. */
struct bigint {
	const char	*file;		/* as given to bigint_scan() */
	unsigned	 line;
	int		 value;		/* what libconfig 1.5 made of it */
	char		 text[64];	/* as written, cut at 63 bytes */
};

/* The literals of every file scanned. */
struct bigint_list {
	struct bigint	*v;
	size_t		 n;
};

/* True if tok is a decimal or hex int too big; *value as libconfig has it. */
bool		 bigint_parse(const char *tok, int *value);
/* Append each such literal of fp to list, naming file; 0 or -ENOMEM. */
int		 bigint_scan(FILE *fp, const char *file,
		    struct bigint_list *list);
/* The literal that libconfig read as value at file:line, or NULL. */
const struct bigint *bigint_find(const struct bigint_list *list,
		    const char *file, unsigned line, int value);
/* Free the entries (the list itself is the caller's). */
void		 bigint_list_clear(struct bigint_list *list);

#endif
