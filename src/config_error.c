/*
 * config_error.c - the error text of one config_load() run.
 *
 * The whole file is validated and every problem is reported, not only the
 * first, so that an administrator can fix a file in one round.  Each error
 * is one line of the form
 *
 *	FILE:LINE: SETTING: MESSAGE
 *
 * FILE is the path as given to config_load() (or the included file a
 * setting came from).  SETTING is the dotted path of the setting; elements
 * of lists and arrays are written ".[N]" with a 0-based index, so the port
 * of the second listener is "listen.[1].port" and the third allow prefix is
 * "access.allow.[2]".  A required setting that is missing is reported with
 * the line of the group that should contain it.  Lines are separated by
 * "\n"; the text has no trailing newline.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl.h"

static void
err_put(struct load_ctx *c, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (c->nomem)
		return;
	if (c->len + n + 1 > c->cap) {
		cap = c->cap ? c->cap : 256;
		while (cap < c->len + n + 1)
			cap *= 2;
		if ((p = realloc(c->msg, cap)) == NULL) {
			c->nomem = true;
			return;
		}
		c->msg = p;
		c->cap = cap;
	}
	memcpy(c->msg + c->len, s, n);
	c->len += n;
	c->msg[c->len] = '\0';
}

void
err_puts(struct load_ctx *c, const char *s)
{
	err_put(c, s, strlen(s));
}

static void __attribute__((format(printf, 2, 0)))
err_vprintf(struct load_ctx *c, const char *fmt, va_list ap)
{
	char buf[512];
	int n;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	err_put(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void
err_printf(struct load_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vprintf(c, fmt, ap);
	va_end(ap);
}

/*
 * Control characters are escaped so that an error stays on one line; long
 * values are cut.
 */
const char *
err_quote(char *buf, size_t size, const char *s)
{
	unsigned char ch;
	size_t n = 0;

	buf[n++] = '"';
	for (; (ch = (unsigned char)*s) != '\0'; s++) {
		/* Room for the longest escape, "...", the quote and NUL. */
		if (n + 4 + 3 + 2 > size) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(buf + n, size - n, "\\x%02x", ch);
			n += 4;
		} else
			buf[n++] = (char)ch;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

const char *
err_words(char *buf, size_t size, const char *const words[])
{
	size_t i, n = 0;
	int r;

	buf[0] = '\0';
	for (i = 0; words[i] != NULL && n < size; i++) {
		r = snprintf(buf + n, size - n, "%s\"%s\"", i ? ", " : "",
		    words[i]);
		if (r < 0)
			break;
		n += (size_t)r;
	}
	return buf;
}

/* Included files are recorded relative to the include directory. */
void
err_file(struct load_ctx *c, const char *file)
{
	if (file == NULL || strcmp(file, c->path) == 0) {
		err_puts(c, c->path);
		return;
	}
	if (file[0] != '/' && c->include_dir != NULL)
		err_printf(c, "%s/", c->include_dir);
	err_puts(c, file);
}

/* "listen.[1].port": names, with list and array elements as "[N]". */
static void
err_setting_path(struct load_ctx *c, const config_setting_t *s)
{
	const config_setting_t *parent = config_setting_parent(s);

	if (parent == NULL)
		return;
	if (config_setting_parent(parent) != NULL) {
		err_setting_path(c, parent);
		err_put(c, ".", 1);
	}
	if (config_setting_name(s) != NULL)
		err_puts(c, config_setting_name(s));
	else
		err_printf(c, "[%d]", config_setting_index(s));
}

/*
 * Record one error about setting s, or about its missing member when member
 * is not NULL.  The line is the first one known walking up from s.
 */
void
err_at(struct load_ctx *c, const config_setting_t *s, const char *member,
    const char *fmt, ...)
{
	const config_setting_t *p;
	const char *file = NULL;
	unsigned line = 0;
	va_list ap;

	for (p = s; p != NULL; p = config_setting_parent(p)) {
		if (config_setting_source_line(p) != 0) {
			line = config_setting_source_line(p);
			file = config_setting_source_file(p);
			break;
		}
	}
	if (c->nerr++ > 0)
		err_put(c, "\n", 1);
	err_file(c, file);
	err_printf(c, ":%u: ", line);
	err_setting_path(c, s);
	if (member != NULL) {
		if (config_setting_parent(s) != NULL)
			err_put(c, ".", 1);
		err_puts(c, member);
	}
	err_put(c, ": ", 2);
	va_start(ap, fmt);
	err_vprintf(c, fmt, ap);
	va_end(ap);
}

static const char *
type_desc(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

void
err_type(struct load_ctx *c, const config_setting_t *s, const char *want)
{
	err_at(c, s, NULL, "expected %s, got %s", want,
	    type_desc(config_setting_type(s)));
}
