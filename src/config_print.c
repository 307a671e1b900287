/*
 * config_print.c - -T: write a struct config in libconfig syntax that
 * config_load() reads back to the same struct.
 *
 * The settings are written from the schema tables of config_schema.c, in
 * their order: each field kind writes itself, and an F_FUNC field has a
 * print callback here beside its parse callback there.  A listener gets
 * only the fields of its transport, and an abstract socket none of the
 * file's.  Groups nest by two spaces; top-level settings are separated by
 * a blank line unless the table says FIELD_NO_GAP.
 */

#include <string.h>

#include "config_impl.h"

static void	print_fields(FILE *fp, const struct field *fields,
		    const void *base, int depth);

static void
print_indent(FILE *fp, int depth)
{
	fprintf(fp, "%*s", 2 * depth, "");
}

/* A libconfig string literal. */
static void
print_string(FILE *fp, const char *s)
{
	static const char special[] = "\"\\\n\r\t\f";
	static const char escape[] = "\"\\nrtf";
	const char *e;
	unsigned char ch;

	putc('"', fp);
	for (; (ch = (unsigned char)*s) != '\0'; s++) {
		if ((e = strchr(special, ch)) != NULL)
			fprintf(fp, "\\%c", escape[e - special]);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(fp, "\\x%02x", ch);
		else
			putc(ch, fp);
	}
	putc('"', fp);
}

/* The value of field f of base: what follows "name = ". */
static void
print_value(FILE *fp, const struct field *f, const void *base, int depth)
{
	const void *p = (const char *)base + f->off;

	switch (f->type) {
	case F_INT:
		fprintf(fp, "%d", *(const int *)p);
		break;
	case F_BOOL:
		fputs(*(const bool *)p ? "true" : "false", fp);
		break;
	case F_STRING:
		print_string(fp, *(char *const *)p);
		break;
	case F_ENUM:
		print_string(fp, word_of(f->words, *(const int *)p));
		break;
	case F_GROUP:
		fputs("{\n", fp);
		print_fields(fp, f->sub, base, depth + 1);
		print_indent(fp, depth);
		putc('}', fp);
		break;
	case F_FUNC:
		f->print(fp, base, depth);
		break;
	}
}

static void
print_field(FILE *fp, const struct field *f, const void *base, int depth)
{
	if (f->type == F_FUNC && f->unset != NULL && f->unset(base))
		return;
	print_indent(fp, depth);
	fprintf(fp, "%s = ", f->name);
	print_value(fp, f, base, depth);
	fputs(";\n", fp);
}

static void
print_fields(FILE *fp, const struct field *fields, const void *base,
    int depth)
{
	const struct field *f;

	for (f = fields; f->name != NULL; f++) {
		if (depth == 0 && f != fields && !(f->flags & FIELD_NO_GAP))
			putc('\n', fp);
		print_field(fp, f, base, depth);
	}
}

/* Whether listener l has field f: its transport's, and a file's if any. */
static bool
listen_field_applies(const struct field *f, const struct listen_conf *l)
{
	if ((f->transports & (1u << l->transport)) == 0)
		return false;
	/* An abstract socket has no file to set these on. */
	return !((f->flags & FIELD_FILE_ONLY) && l->path[0] == '@');
}

void
print_listen(FILE *fp, const void *base, int depth)
{
	const struct config *cfg = base;
	const struct listen_conf *l;
	const struct field *f;
	size_t i;

	fputs("(\n", fp);
	for (i = 0; i < cfg->nlisten; i++) {
		l = &cfg->listen[i];
		print_indent(fp, depth + 1);
		fputs("{\n", fp);
		for (f = listen_fields; f->name != NULL; f++)
			if (listen_field_applies(f, l))
				print_field(fp, f, l, depth + 2);
		print_indent(fp, depth + 1);
		fputs(i + 1 < cfg->nlisten ? "},\n" : "}\n", fp);
	}
	print_indent(fp, depth);
	putc(')', fp);
}

void
print_listen_mode(FILE *fp, const void *base, int depth)
{
	const struct listen_conf *l = base;

	fprintf(fp, "\"%04o\"", (unsigned)l->mode);
}

/* -1 leaves the mode to the umask. */
bool
listen_mode_unset(const void *base)
{
	const struct listen_conf *l = base;

	return l->mode < 0;
}

static void
print_cidrs(FILE *fp, const struct cidr *v, size_t n)
{
	char buf[CIDR_STRLEN];
	size_t i;

	putc('[', fp);
	for (i = 0; i < n; i++) {
		cidr_format(&v[i], buf, sizeof(buf));
		fputs(i ? ", " : " ", fp);
		print_string(fp, buf);
	}
	fputs(" ]", fp);
}

void
print_allow(FILE *fp, const void *base, int depth)
{
	const struct config *cfg = base;

	print_cidrs(fp, cfg->access.allow, cfg->access.nallow);
}

void
print_deny(FILE *fp, const void *base, int depth)
{
	const struct config *cfg = base;

	print_cidrs(fp, cfg->access.deny, cfg->access.ndeny);
}

void
print_proxy_from(FILE *fp, const void *base, int depth)
{
	const struct listen_conf *l = base;

	print_cidrs(fp, l->proxy_from, l->nproxy_from);
}

/* No trusted proxy: leave the setting out (an empty list is an error
 * when the protocol is on). */
bool
proxy_from_unset(const void *base)
{
	const struct listen_conf *l = base;

	return l->nproxy_from == 0;
}

void
print_deny_source_ports(FILE *fp, const void *base, int depth)
{
	const struct config *cfg = base;
	size_t i;

	putc('[', fp);
	for (i = 0; i < cfg->datagram.ndeny_source_ports; i++)
		fprintf(fp, "%s%d", i ? ", " : " ",
		    cfg->datagram.deny_source_ports[i]);
	fputs(" ]", fp);
}

void
print_log_level(FILE *fp, const void *base, int depth)
{
	const struct config *cfg = base;

	print_string(fp, log_level_name(cfg->log.level));
}

void
config_print(const struct config *cfg, FILE *fp)
{
	fputs("# echotimed effective configuration", fp);
	if (cfg->file != NULL) {
		fputs(", from ", fp);
		print_string(fp, cfg->file);
	} else
		fputs(": built-in defaults", fp);
	fputs("\n\n", fp);
	print_fields(fp, top_fields, cfg, 0);
}
