/*
 * config_schema.c - the settings of echotimed.conf (SPEC section 4) as
 * tables, and the walker that reads a libconfig tree into a struct config
 * by them.  config_print.c writes -T output from the same tables.
 *
 * Every getter and parser reports its own errors (config_error.c) and
 * leaves the built-in default in place when a value is bad, so that the
 * walk goes on and finds the file's other errors too.
 */

#include <stdlib.h>
#include <string.h>

#include "config_impl.h"

/*
 * A listener name becomes a systemd FileDescriptorName.  systemd refuses
 * ':' there (it separates $LISTEN_FDNAMES), so it is not allowed here.
 */
#define NAME_MAXLEN		63
#define NAME_CHARS		"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
				"abcdefghijklmnopqrstuvwxyz0123456789_.-"
/* sun_path holds 108 bytes including the terminating NUL. */
#define UNIX_PATH_MAXLEN	107

/* Typed getters: each reports its own error and returns false on one. */

/* The literal libconfig 1.5 truncated to s's value, if it did. */
static const struct bigint *
truncated_literal(const struct load_ctx *c, const config_setting_t *s)
{
	const char *file = config_setting_source_file(s);

	/* Read from a stream, the main file has no name in libconfig. */
	if (file == NULL)
		file = c->path;
	if (config_setting_type(s) != CONFIG_TYPE_INT)
		return NULL;
	return bigint_find(&c->big, file, config_setting_source_line(s),
	    config_setting_get_int(s));
}

static bool
get_int(struct load_ctx *c, const config_setting_t *s, long long min,
    long long max, int *out)
{
	const struct bigint *b;
	long long v;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		err_type(c, s, "an integer");
		return false;
	}
	if ((b = truncated_literal(c, s)) != NULL) {
		err_at(c, s, NULL, "expected an integer from %lld to %lld, "
		    "got %s", min, max, b->text);
		return false;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		err_at(c, s, NULL, "expected an integer from %lld to %lld, "
		    "got %lld", min, max, v);
		return false;
	}
	*out = (int)v;
	return true;
}

static bool
get_string(struct load_ctx *c, const config_setting_t *s, const char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		err_type(c, s, "a string");
		return false;
	}
	*out = config_setting_get_string(s);
	return true;
}

static bool
get_word(struct load_ctx *c, const config_setting_t *s,
    const char *const words[], int *out)
{
	char q[QUOTE_MAX], list[256];
	const char *v;
	size_t i;

	if (!get_string(c, s, &v))
		return false;
	for (i = 0; words[i] != NULL; i++) {
		if (strcmp(v, words[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	err_at(c, s, NULL, "expected one of %s, got %s",
	    err_words(list, sizeof(list), words),
	    err_quote(q, sizeof(q), v));
	return false;
}

static void
set_string(struct load_ctx *c, char **dst, const char *v)
{
	char *p;

	if ((p = strdup(v)) == NULL) {
		c->nomem = true;
		return;
	}
	free(*dst);
	*dst = p;
}

/* Settings that need more than a type and a range */

static bool
check_listen_name(struct load_ctx *c, const config_setting_t *s,
    const char *v)
{
	char q[QUOTE_MAX];
	size_t len = strlen(v);

	if (len > NAME_MAXLEN || strspn(v, NAME_CHARS) != len) {
		err_at(c, s, NULL, "invalid name %s: use at most %d letters, "
		    "digits, \"_\", \".\" and \"-\"", err_quote(q, sizeof(q), v),
		    NAME_MAXLEN);
		return false;
	}
	return true;
}

static bool
check_listen_path(struct load_ctx *c, const config_setting_t *s,
    const char *v)
{
	char q[QUOTE_MAX];

	if ((v[0] != '/' && v[0] != '@') || strcmp(v, "@") == 0) {
		err_at(c, s, NULL, "expected an absolute path or \"@name\" "
		    "for the abstract namespace, got %s",
		    err_quote(q, sizeof(q), v));
		return false;
	}
	return true;
}

static void
parse_listen_mode(struct load_ctx *c, const config_setting_t *s, void *base)
{
	struct listen_conf *l = base;
	char q[QUOTE_MAX];
	const char *v;
	unsigned long m;

	/* libconfig has no octal integers: 0660 would silently be 660. */
	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64) {
		err_at(c, s, NULL, "expected an octal string such as "
		    "\"0660\", got an integer");
		return;
	}
	if (!get_string(c, s, &v))
		return;
	if (*v == '\0' || strspn(v, "01234567") != strlen(v) ||
	    (m = strtoul(v, NULL, 8)) > 07777) {
		err_at(c, s, NULL, "expected an octal mode from \"0000\" to "
		    "\"7777\" such as \"0660\", got %s",
		    err_quote(q, sizeof(q), v));
		return;
	}
	l->mode = (int)m;
}

/*
 * For an array or list setting s ("an array of WANT"): a zeroed vector of
 * as many elements of size bytes, *np set.  NULL after an error.
 */
static void *
get_vector(struct load_ctx *c, const config_setting_t *s, const char *want,
    size_t size, int *np)
{
	void *v;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		err_type(c, s, want);
		return NULL;
	}
	*np = config_setting_length(s);
	if ((v = calloc(*np > 0 ? (size_t)*np : 1, size)) == NULL)
		c->nomem = true;
	return v;
}

static void
parse_cidrs(struct load_ctx *c, const config_setting_t *s, struct cidr **vp,
    size_t *np)
{
	const config_setting_t *e;
	char q[QUOTE_MAX];
	struct cidr *v;
	const char *str;
	int i, n;
	size_t k = 0;

	if ((v = get_vector(c, s, "an array of strings", sizeof(*v), &n)) ==
	    NULL)
		return;
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (!get_string(c, e, &str))
			continue;
		if (cidr_parse(str, &v[k]) < 0) {
			err_at(c, e, NULL, "invalid CIDR prefix %s: expected "
			    "an IPv4 or IPv6 address, optionally with /length, "
			    "and no host bits set",
			    err_quote(q, sizeof(q), str));
			continue;
		}
		k++;
	}
	free(*vp);
	*vp = v;
	*np = k;
}

static void
parse_allow(struct load_ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;

	parse_cidrs(c, s, &cfg->access.allow, &cfg->access.nallow);
}

static void
parse_deny(struct load_ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;

	parse_cidrs(c, s, &cfg->access.deny, &cfg->access.ndeny);
}

static void
parse_proxy_from(struct load_ctx *c, const config_setting_t *s, void *base)
{
	struct listen_conf *l = base;

	parse_cidrs(c, s, &l->proxy_from, &l->nproxy_from);
}

static void
parse_deny_source_ports(struct load_ctx *c, const config_setting_t *s,
    void *base)
{
	struct config *cfg = base;
	int i, n, *v;
	size_t k = 0;

	if ((v = get_vector(c, s, "an array of integers", sizeof(*v), &n)) ==
	    NULL)
		return;
	for (i = 0; i < n; i++)
		if (get_int(c, config_setting_get_elem(s, (unsigned)i), 0,
		    65535, &v[k]))
			k++;
	free(cfg->datagram.deny_source_ports);
	cfg->datagram.deny_source_ports = v;
	cfg->datagram.ndeny_source_ports = k;
}

static void
parse_log_level(struct load_ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;
	int i;

	if (get_word(c, s, log_level_words, &i))
		cfg->log.level = log_level_values[i];
}

/* Listeners */

#define LISTEN_OFF(member)	.off = offsetof(struct listen_conf, member)

/* In the order -T writes them; a transport has only some of them. */
const struct field listen_fields[] = {
	{ .name = "transport", .type = F_ENUM, LISTEN_OFF(transport),
	  .words = transport_words, .transports = T_ALL,
	  .flags = FIELD_PREPARSED },
	{ .name = "name", .type = F_STRING, LISTEN_OFF(name),
	  .min = 0, .max = NAME_MAXLEN, .check = check_listen_name,
	  .transports = T_ALL },
	{ .name = "address", .type = F_STRING, LISTEN_OFF(address),
	  .min = 1, .max = TEXT_MAXLEN, .transports = T_IP },
	{ .name = "port", .type = F_INT, LISTEN_OFF(port),
	  .min = 0, .max = 65535, .transports = T_IP },
	{ .name = "path", .type = F_STRING, LISTEN_OFF(path),
	  .min = 0, .max = UNIX_PATH_MAXLEN, .check = check_listen_path,
	  .transports = T_LOCAL },
	{ .name = "mode", .type = F_FUNC, .parse = parse_listen_mode,
	  .print = print_listen_mode, .unset = listen_mode_unset,
	  .transports = T_LOCAL, .flags = FIELD_FILE_ONLY },
	{ .name = "owner", .type = F_STRING, LISTEN_OFF(owner),
	  .min = 0, .max = TEXT_MAXLEN, .transports = T_LOCAL,
	  .flags = FIELD_FILE_ONLY },
	{ .name = "group", .type = F_STRING, LISTEN_OFF(group),
	  .min = 0, .max = TEXT_MAXLEN, .transports = T_LOCAL,
	  .flags = FIELD_FILE_ONLY },
	{ .name = "backlog", .type = F_INT, LISTEN_OFF(backlog),
	  .min = 1, .max = 65535, .transports = T_STREAM },
	{ .name = "reuse_port", .type = F_BOOL, LISTEN_OFF(reuse_port),
	  .transports = T_IP },
	{ .name = "proxy_protocol", .type = F_ENUM, LISTEN_OFF(proxy_protocol),
	  .words = proxy_protocol_words, .transports = T_STREAM },
	/*
	 * Not on unix listeners: a unix peer has no address a prefix could
	 * match.  Who may connect there, and so who is a trusted proxy, is
	 * decided by the socket file's mode, owner and group.
	 */
	{ .name = "proxy_from", .type = F_FUNC, .parse = parse_proxy_from,
	  .print = print_proxy_from, .unset = proxy_from_unset,
	  .transports = T_TCP },
	{ .name = "proxy_timeout", .type = F_INT, LISTEN_OFF(proxy_timeout),
	  .min = 1, .max = 3600, .transports = T_STREAM },
	{ .name = NULL }
};

/* The checks of a unix listener's path that need the other settings. */
static void
check_local_listener(struct load_ctx *c, const config_setting_t *g,
    struct listen_conf *l)
{
	const config_setting_t *s;
	const struct field *f;

	free(l->address);
	l->address = NULL;
	if (config_setting_get_member(g, "path") == NULL)
		err_at(c, g, "path", "required for transport %s",
		    transport_name(l->transport));
	if (l->path == NULL || l->path[0] != '@')
		return;
	for (f = listen_fields; f->name != NULL; f++) {
		if ((f->flags & FIELD_FILE_ONLY) &&
		    (s = config_setting_get_member(g, f->name)) != NULL)
			err_at(c, s, NULL, "not valid for an abstract "
			    "socket, which has no file");
	}
}

/*
 * Parse one listener group into l.  Returns true if it came through without
 * errors, so that its address can be compared with the others.
 */
static bool
parse_listener(struct load_ctx *c, const config_setting_t *g,
    struct listen_conf *l)
{
	const config_setting_t *s;
	char list[256];
	unsigned before = c->nerr;
	int t = -1;

	l->line = config_setting_source_line(g);
	if ((s = config_setting_get_member(g, "transport")) == NULL)
		err_at(c, g, "transport", "required: one of %s",
		    err_words(list, sizeof(list), transport_words));
	else if (!get_word(c, s, transport_words, &t))
		t = -1;
	/* With an unknown transport, only names and types are checked. */
	parse_group(c, g, listen_fields, l, t);
	if (t < 0)
		return false;
	l->transport = (enum transport)t;
	/* A header is only believed from a trusted proxy (SPEC 9); a list
	 * with bad prefixes has had its errors already. */
	if (l->transport == TRANSPORT_TCP && l->proxy_protocol != PROXY_OFF) {
		if ((s = config_setting_get_member(g, "proxy_from")) == NULL)
			err_at(c, g, "proxy_from", "required when "
			    "proxy_protocol is \"%s\": the prefixes of the "
			    "trusted proxies",
			    proxy_protocol_name(l->proxy_protocol));
		else if (config_setting_length(s) == 0)
			err_at(c, s, NULL, "at least one prefix is required "
			    "when proxy_protocol is \"%s\"",
			    proxy_protocol_name(l->proxy_protocol));
	}
	if (transport_is_local(l->transport)) {
		check_local_listener(c, g, l);
		if (l->path == NULL)
			return false;
	}
	return c->nerr == before;
}

/* True if two listeners could not both be bound. */
static bool
listeners_clash(const struct listen_conf *a, const struct listen_conf *b)
{
	/* A file path is one name for both types; an abstract name is not. */
	if (transport_is_local(a->transport) &&
	    transport_is_local(b->transport))
		return streq(a->path, b->path) &&
		    (a->path == NULL || a->path[0] != '@' ||
		    a->transport == b->transport);
	/* Port 0 asks for an ephemeral port: each gets its own. */
	return a->transport == b->transport && a->port != 0 &&
	    a->port == b->port && streq(a->address, b->address);
}

static void
check_duplicates(struct load_ctx *c, const config_setting_t *list,
    const struct listen_conf *ls, const bool *ok, size_t n)
{
	const config_setting_t *e;
	char q[QUOTE_MAX];
	size_t i, j;

	for (i = 1; i < n; i++) {
		if (!ok[i])
			continue;
		e = config_setting_get_elem(list, (unsigned)i);
		for (j = 0; j < i; j++) {
			if (ok[j] && listeners_clash(&ls[i], &ls[j])) {
				err_at(c, e, NULL, "duplicate listener: same "
				    "socket as listen.[%zu] on line %d", j,
				    ls[j].line);
				break;
			}
		}
		if (ls[i].name[0] == '\0')
			continue;
		for (j = 0; j < i; j++) {
			if (ok[j] && strcmp(ls[i].name, ls[j].name) == 0) {
				err_at(c, config_setting_get_member(e, "name"),
				    NULL, "duplicate name %s: also used by "
				    "listen.[%zu] on line %d",
				    err_quote(q, sizeof(q), ls[i].name), j,
				    ls[j].line);
				break;
			}
		}
	}
}

static void
parse_listen(struct load_ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;
	const config_setting_t *e;
	struct listen_conf *ls;
	bool *ok;
	int n;
	size_t i;

	if (config_setting_type(s) != CONFIG_TYPE_LIST &&
	    config_setting_type(s) != CONFIG_TYPE_ARRAY) {
		err_type(c, s, "a list of groups");
		return;
	}
	if ((n = config_setting_length(s)) == 0) {
		err_at(c, s, NULL, "at least one listener is required");
		return;
	}
	ls = calloc((size_t)n, sizeof(*ls));
	ok = calloc((size_t)n, sizeof(*ok));
	if (ls == NULL || ok == NULL) {
		free(ls);
		free(ok);
		c->nomem = true;
		return;
	}
	/* The listeners of the file replace the built-in one. */
	listen_confs_free(cfg->listen, cfg->nlisten);
	cfg->listen = ls;
	cfg->nlisten = 0;
	for (i = 0; i < (size_t)n; i++) {
		cfg->nlisten++;
		if (listen_conf_init(&ls[i]) < 0) {
			c->nomem = true;
			break;
		}
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
			err_type(c, e, "a group");
			continue;
		}
		ok[i] = parse_listener(c, e, &ls[i]);
	}
	check_duplicates(c, s, cfg->listen, ok, cfg->nlisten);
	free(ok);
}

/* The schema */

/* After the arguments, more designated initializers (.flags) may follow. */
#define CFG_INT(n, member, lo, hi, ...)					\
	{ .name = (n), .type = F_INT,					\
	  .off = offsetof(struct config, member), .min = (lo), .max = (hi), \
	  __VA_ARGS__ }
#define CFG_ENUM(n, member, w)						\
	{ .name = (n), .type = F_ENUM,					\
	  .off = offsetof(struct config, member), .words = (w) }
#define CFG_STRING(n, member, lo, hi, ...)				\
	{ .name = (n), .type = F_STRING,				\
	  .off = offsetof(struct config, member), .min = (lo), .max = (hi), \
	  __VA_ARGS__ }
#define CFG_FUNC(n, parse_fn, print_fn)					\
	{ .name = (n), .type = F_FUNC, .parse = (parse_fn),		\
	  .print = (print_fn) }
#define CFG_GROUP(n, fields)						\
	{ .name = (n), .type = F_GROUP, .sub = (fields) }

static const struct field concurrency_fields[] = {
	CFG_ENUM("model", concurrency.model, model_words),
	CFG_INT("max_connections", concurrency.max_connections, 1, 1000000),
	CFG_ENUM("overflow", concurrency.overflow, overflow_words),
	CFG_INT("max_connections_per_source",
	    concurrency.max_connections_per_source, 0, 1000000),
	CFG_INT("thread_stack_kib", concurrency.thread_stack_kib, 16, 65536),
	CFG_INT("busy_poll", concurrency.busy_poll, 0, 10000),
	CFG_INT("workers", concurrency.workers, 1, MAX_WORKERS),
	{ .name = NULL }
};

static const struct field session_fields[] = {
	CFG_INT("max_line_length", session.max_line_length, 1, 1048576),
	CFG_INT("idle_timeout", session.idle_timeout, 0, 86400),
	{ .name = NULL }
};

static const struct field access_fields[] = {
	CFG_FUNC("allow", parse_allow, print_allow),
	CFG_FUNC("deny", parse_deny, print_deny),
	{ .name = NULL }
};

static const struct field datagram_fields[] = {
	CFG_INT("rate_limit", datagram.rate_limit, 0, 1000000),
	CFG_INT("rate_burst", datagram.rate_burst, 1, 1000000),
	CFG_FUNC("deny_source_ports", parse_deny_source_ports,
	    print_deny_source_ports),
	{ .name = NULL }
};

static const struct field log_fields[] = {
	CFG_FUNC("level", parse_log_level, print_log_level),
	CFG_ENUM("target", log.target, log_target_words),
	{ .name = NULL }
};

/* In the order -T writes them. */
const struct field top_fields[] = {
	CFG_FUNC("listen", parse_listen, print_listen),
	CFG_GROUP("concurrency", concurrency_fields),
	CFG_GROUP("session", session_fields),
	CFG_INT("shutdown_timeout", shutdown_timeout, 0, 3600),
	CFG_INT("source_prefix_v4", source_prefix_v4, 0, 32),
	CFG_INT("source_prefix_v6", source_prefix_v6, 0, 128,
	    .flags = FIELD_NO_GAP),
	CFG_GROUP("access", access_fields),
	CFG_GROUP("datagram", datagram_fields),
	CFG_GROUP("log", log_fields),
	CFG_STRING("user", user, 0, TEXT_MAXLEN),
	CFG_STRING("group", group, 0, TEXT_MAXLEN, .flags = FIELD_NO_GAP),
	{ .name = NULL }
};

static void
parse_string_field(struct load_ctx *c, const config_setting_t *s,
    const struct field *f, char **dst)
{
	const char *str;
	size_t len;

	if (!get_string(c, s, &str))
		return;
	if (f->check != NULL && !f->check(c, s, str))
		return;
	len = strlen(str);
	if ((long long)len < f->min)
		err_at(c, s, NULL, "must not be empty");
	else if ((long long)len > f->max)
		err_at(c, s, NULL, "too long: %zu bytes, at most %lld", len,
		    f->max);
	else
		set_string(c, dst, str);
}

static void
parse_field(struct load_ctx *c, const config_setting_t *s,
    const struct field *f, void *base)
{
	void *p = (char *)base + f->off;
	int v;

	switch (f->type) {
	case F_INT:
		if (get_int(c, s, f->min, f->max, &v))
			*(int *)p = v;
		break;
	case F_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			err_type(c, s, "a boolean (true or false)");
		else
			*(bool *)p = config_setting_get_bool(s) != 0;
		break;
	case F_STRING:
		parse_string_field(c, s, f, p);
		break;
	case F_ENUM:
		if (get_word(c, s, f->words, &v))
			*(int *)p = v;
		break;
	case F_GROUP:
		if (config_setting_type(s) != CONFIG_TYPE_GROUP)
			err_type(c, s, "a group");
		else
			parse_group(c, s, f->sub, base, -1);
		break;
	case F_FUNC:
		f->parse(c, s, base);
		break;
	}
}

/* In file order, so that errors come out sorted by line. */
void
parse_group(struct load_ctx *c, const config_setting_t *group,
    const struct field *fields, void *base, int transport)
{
	const config_setting_t *s;
	const struct field *f;
	unsigned i;

	for (i = 0; (s = config_setting_get_elem(group, i)) != NULL; i++) {
		for (f = fields; f->name != NULL; f++)
			if (strcmp(f->name, config_setting_name(s)) == 0)
				break;
		if (f->name == NULL) {
			err_at(c, s, NULL, "unknown setting");
			continue;
		}
		if (transport >= 0 && f->transports != 0 &&
		    (f->transports & (1u << transport)) == 0) {
			err_at(c, s, NULL, "not valid for transport %s",
			    transport_name((enum transport)transport));
			continue;
		}
		if ((f->flags & FIELD_PREPARSED) == 0)
			parse_field(c, s, f, base);
	}
}
