/*
 * config_int.c - a small tokenizer for libconfig's syntax that finds the
 * integer literals libconfig 1.5 truncates (see config_int.h).
 *
 * It skips comments, strings and names and looks only at number tokens.
 * It is best effort: it need not reject what libconfig rejects, because
 * it only runs on a file that libconfig has already parsed.
 */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

bool
bigint_parse(const char *tok, int *value)
{
	const char *digits = tok;
	long long v;
	bool hex;

	if (*digits == '-' || *digits == '+')
		digits++;
	hex = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
	if (hex) {
		/* libconfig's hex literals have no sign. */
		if (digits != tok || digits[2] == '\0' ||
		    strspn(digits + 2, "0123456789abcdefABCDEF") !=
		    strlen(digits + 2))
			return false;
	} else if (*digits == '\0' ||
	    strspn(digits, "0123456789") != strlen(digits))
		return false;	/* a float, an "L" literal or not a number */

	errno = 0;
	v = strtoll(tok, NULL, hex ? 16 : 10);
	if (errno == 0 && v >= INT_MIN && v <= INT_MAX)
		return false;
	/* What libconfig 1.5's scanner does: atoi() or strtoul() into int. */
	if (hex)
		*value = (int)strtoul(tok, NULL, 16);
	else
		*value = (int)strtol(tok, NULL, 10);
	return true;
}

static int
bigint_add(struct bigint_list *list, const char *file, unsigned line,
    const char *tok)
{
	struct bigint *b;
	int value;

	if (!bigint_parse(tok, &value))
		return 0;
	b = realloc(list->v, (list->n + 1) * sizeof(*list->v));
	if (b == NULL)
		return -ENOMEM;
	list->v = b;
	b = &list->v[list->n++];
	b->file = file;
	b->line = line;
	b->value = value;
	snprintf(b->text, sizeof(b->text), "%s", tok);
	return 0;
}

struct scanner {
	FILE		*fp;
	int		 ch;	/* the current character, EOF at the end */
	unsigned	 line;
};

static int
next(struct scanner *s)
{
	return s->ch = getc(s->fp);
}

static bool
is_alpha(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static bool
is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* A setting name, or @include. */
static bool
name_start(int ch)
{
	return is_alpha(ch) || ch == '*' || ch == '@';
}

static bool
name_char(int ch)
{
	return is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '_' ||
	    ch == '*';
}

static bool
number_start(int ch)
{
	return is_digit(ch) || ch == '-' || ch == '+' || ch == '.';
}

/* Letters belong to a number token too: 0x1f, 1e5, 10L. */
static bool
number_char(int ch)
{
	return is_alpha(ch) || number_start(ch);
}

/* Skip to the end of the line; the newline stays current, to be counted. */
static void
skip_line(struct scanner *s)
{
	while (next(s) != EOF && s->ch != '\n')
		;
}

/* After a "/": a comment, or a lone slash, whose next character stays. */
static void
skip_slash(struct scanner *s)
{
	int prev = 0;

	if (next(s) == '/') {
		skip_line(s);
		return;
	}
	if (s->ch != '*')
		return;
	while (next(s) != EOF && !(prev == '*' && s->ch == '/')) {
		if (s->ch == '\n')
			s->line++;
		prev = s->ch;
	}
	if (s->ch != EOF)
		next(s);
}

/* After a '"': skip to the closing quote, over escaped ones. */
static void
skip_string(struct scanner *s)
{
	while (next(s) != EOF && s->ch != '"') {
		if (s->ch == '\\')
			next(s);
		if (s->ch == '\n')
			s->line++;
		if (s->ch == EOF)
			break;
	}
	if (s->ch != EOF)
		next(s);
}

static int
read_number(struct scanner *s, const char *file, struct bigint_list *list)
{
	char tok[64];
	size_t n = 0;

	do {
		if (n < sizeof(tok) - 1)
			tok[n++] = (char)s->ch;
	} while (number_char(next(s)));
	tok[n] = '\0';
	return bigint_add(list, file, s->line, tok);
}

int
bigint_scan(FILE *fp, const char *file, struct bigint_list *list)
{
	struct scanner s = { .fp = fp, .line = 1 };

	next(&s);
	while (s.ch != EOF) {
		if (s.ch == '\n') {
			s.line++;
			next(&s);
		} else if (s.ch == '#')
			skip_line(&s);
		else if (s.ch == '/')
			skip_slash(&s);
		else if (s.ch == '"')
			skip_string(&s);
		else if (name_start(s.ch)) {
			/* Digits in a name are not numbers. */
			while (name_char(next(&s)))
				;
		} else if (number_start(s.ch)) {
			if (read_number(&s, file, list) < 0)
				return -ENOMEM;
		} else
			next(&s);
	}
	return 0;
}

const struct bigint *
bigint_find(const struct bigint_list *list, const char *file, unsigned line,
    int value)
{
	size_t i;

	for (i = 0; i < list->n; i++)
		if (list->v[i].line == line && list->v[i].value == value &&
		    strcmp(list->v[i].file, file) == 0)
			return &list->v[i];
	return NULL;
}

void
bigint_list_clear(struct bigint_list *list)
{
	free(list->v);
	list->v = NULL;
	list->n = 0;
}
