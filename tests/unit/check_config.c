/*
 * check_config.c - unit tests of config.c: defaults, the schema, the error
 * messages with their file and line, and the print/load round trip.
 */
#include <sys/socket.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
/* config_obtain_from(), to try the fallback with a default file of ours. */
#include "config_impl.h"
#include "check_main.h"

/* Write text to a new temporary file; returns its malloc'd path. */
static char *
write_conf(const char *text)
{
	char *path;
	size_t len = strlen(text);
	int fd;

	path = strdup("/tmp/check_config.XXXXXX");
	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Load text from a temporary file; *pathp gets the file's name. */
static int
load_text(const char *text, struct config **cfgp, char **errp, char **pathp)
{
	char *path = write_conf(text);
	int r;

	r = config_load(path, cfgp, errp);
	unlink(path);
	if (pathp != NULL)
		*pathp = path;
	else
		free(path);
	return r;
}

/* Expect text to be rejected; returns the error text (caller frees). */
static char *
load_bad(const char *text, char **pathp)
{
	struct config *cfg = NULL;
	char *err = NULL;
	int r;

	r = load_text(text, &cfg, &err, pathp);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(err);
	return err;
}

/* Expect text to load; returns the config. */
static struct config *
load_good(const char *text)
{
	struct config *cfg = NULL;
	char *err = NULL;
	int r;

	r = load_text(text, &cfg, &err, NULL);
	ck_assert_msg(r == 0, "load failed (%d): %s", r, err ? err : "");
	ck_assert_ptr_null(err);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

static size_t
count_lines(const char *s)
{
	size_t n = 1;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* True if err has a line that starts "path:line: " and contains needle. */
static bool
has_error(const char *err, const char *path, int line, const char *needle)
{
	char prefix[512];
	const char *p, *end;
	size_t plen;

	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	plen = strlen(prefix);
	for (p = err; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchr(p, '\n');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) >= plen && strncmp(p, prefix, plen) == 0) {
			char *l = strndup(p, (size_t)(end - p));
			bool found = strstr(l, needle) != NULL;

			free(l);
			if (found)
				return true;
		}
	}
	return false;
}

#define ck_assert_error(err, path, line, needle)			\
	ck_assert_msg(has_error((err), (path), (line), (needle)),	\
	    "no \"%s:%d: ...%s...\" in:\n%s", (path), (line), (needle),	\
	    (err))

static bool
cidrs_equal(const struct cidr *a, const struct cidr *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i].family != b[i].family || a[i].prefix != b[i].prefix ||
		    memcmp(a[i].addr, b[i].addr, sizeof(a[i].addr)) != 0)
			return false;
	return true;
}

/* Every setting of two configs, except where they came from. */
static void
assert_config_equal(const struct config *a, const struct config *b)
{
	size_t i;

	ck_assert_uint_eq(a->nlisten, b->nlisten);
	for (i = 0; i < a->nlisten; i++)
		ck_assert_msg(listen_conf_equal(&a->listen[i], &b->listen[i]),
		    "listener %zu differs", i);
	ck_assert_int_eq(a->concurrency.model, b->concurrency.model);
	ck_assert_int_eq(a->concurrency.max_connections,
	    b->concurrency.max_connections);
	ck_assert_int_eq(a->concurrency.overflow, b->concurrency.overflow);
	ck_assert_int_eq(a->concurrency.max_connections_per_source,
	    b->concurrency.max_connections_per_source);
	ck_assert_int_eq(a->concurrency.thread_stack_kib,
	    b->concurrency.thread_stack_kib);
	ck_assert_int_eq(a->concurrency.busy_poll, b->concurrency.busy_poll);
	ck_assert_int_eq(a->concurrency.workers, b->concurrency.workers);
	ck_assert_int_eq(a->session.max_line_length, b->session.max_line_length);
	ck_assert_int_eq(a->session.idle_timeout, b->session.idle_timeout);
	ck_assert_int_eq(a->shutdown_timeout, b->shutdown_timeout);
	ck_assert_int_eq(a->source_prefix_v4, b->source_prefix_v4);
	ck_assert_int_eq(a->source_prefix_v6, b->source_prefix_v6);
	ck_assert_uint_eq(a->access.nallow, b->access.nallow);
	ck_assert(cidrs_equal(a->access.allow, b->access.allow,
	    a->access.nallow));
	ck_assert_uint_eq(a->access.ndeny, b->access.ndeny);
	ck_assert(cidrs_equal(a->access.deny, b->access.deny, a->access.ndeny));
	ck_assert_int_eq(a->datagram.rate_limit, b->datagram.rate_limit);
	ck_assert_int_eq(a->datagram.rate_burst, b->datagram.rate_burst);
	ck_assert_uint_eq(a->datagram.ndeny_source_ports,
	    b->datagram.ndeny_source_ports);
	for (i = 0; i < a->datagram.ndeny_source_ports; i++)
		ck_assert_int_eq(a->datagram.deny_source_ports[i],
		    b->datagram.deny_source_ports[i]);
	ck_assert_int_eq(a->log.level, b->log.level);
	ck_assert_int_eq(a->log.target, b->log.target);
	ck_assert_str_eq(a->user, b->user);
	ck_assert_str_eq(a->group, b->group);
}

/* config_print() into a malloc'd string. */
static char *
print_text(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(fp);
	config_print(cfg, fp);
	fclose(fp);
	return text;
}

/* Print cfg, load the output and compare. */
static void
assert_round_trip(const struct config *cfg)
{
	struct config *back = NULL;
	char *text = print_text(cfg), *err = NULL;
	int r;

	r = load_text(text, &back, &err, NULL);
	ck_assert_msg(r == 0, "printed config does not load: %s\n%s",
	    err ? err : "", text);
	assert_config_equal(cfg, back);
	config_free(back);
	free(text);
}

static const char full_conf[] =
    "# every setting, none at its default\n"
    "listen = (\n"
    "  { transport = \"tcp\"; name = \"web\"; address = \"::\";\n"
    "    port = 7007; backlog = 512; reuse_port = true;\n"
    "    proxy_protocol = \"any\"; proxy_timeout = 3600;\n"
    "    proxy_from = [ \"10.0.0.0/8\", \"::1\" ]; },\n"
    "  { transport = \"udp\"; address = \"0.0.0.0\"; port = 7008;\n"
    "    reuse_port = false; name = \"dg\"; },\n"
    "  { transport = \"unix\"; path = \"/run/e/e.sock\"; mode = \"0660\";\n"
    "    owner = \"echo\"; group = \"adm\"; backlog = 7;\n"
    "    proxy_protocol = \"v1\"; proxy_timeout = 1; },\n"
    "  { transport = \"unix-dgram\"; path = \"/run/e/d.sock\";\n"
    "    mode = \"600\"; },\n"
    "  { transport = \"unix\"; path = \"@echotimed\"; name = \"abs\"; }\n"
    ");\n"
    "concurrency = {\n"
    "  model = \"fork\";\n"
    "  max_connections = 1000000;\n"
    "  overflow = \"wait\";\n"
    "  max_connections_per_source = 8;\n"
    "  thread_stack_kib = 16;\n"
    "  busy_poll = 10000;\n"
    "  workers = 256;\n"
    "};\n"
    "session = { max_line_length = 1048576; idle_timeout = 0; };\n"
    "shutdown_timeout = 3600L;\n"
    "source_prefix_v4 = 24;\n"
    "source_prefix_v6 = 128;\n"
    "access = {\n"
    "  allow = [ \"10.0.0.0/8\", \"::1\", \"192.168.1.0/24\" ];\n"
    "  deny = ( \"10.1.0.0/16\" );\n"
    "};\n"
    "datagram = {\n"
    "  rate_limit = 0; rate_burst = 1; deny_source_ports = [ 19, 65535 ];\n"
    "};\n"
    "log = { level = \"debug\"; target = \"journal\"; };\n"
    "user = \"nobody\";\n"
    "group = \"nogroup\";\n";

static void
assert_defaults(const struct config *cfg)
{
	static const int ports[] = { 0, 7, 13, 19, 37 };
	const struct listen_conf *l;
	size_t i;

	ck_assert_uint_eq(cfg->nlisten, 1);
	l = &cfg->listen[0];
	ck_assert_int_eq(l->transport, TRANSPORT_TCP);
	ck_assert_str_eq(l->name, "");
	ck_assert_str_eq(l->address, "127.0.0.1");
	ck_assert_int_eq(l->port, 9999);
	ck_assert_ptr_null(l->path);
	ck_assert_int_eq(l->mode, -1);
	ck_assert_str_eq(l->owner, "");
	ck_assert_str_eq(l->group, "");
	ck_assert_int_eq(l->backlog, 128);
	ck_assert(!l->reuse_port);
	ck_assert_int_eq(cfg->concurrency.model, MODEL_THREAD);
	ck_assert_int_eq(cfg->concurrency.max_connections, 256);
	ck_assert_int_eq(cfg->concurrency.overflow, OVERFLOW_REJECT);
	ck_assert_int_eq(cfg->concurrency.max_connections_per_source, 0);
	ck_assert_int_eq(cfg->concurrency.thread_stack_kib, 64);
	ck_assert_int_eq(cfg->concurrency.busy_poll, 0);
	ck_assert_int_eq(cfg->concurrency.workers, 1);
	ck_assert_int_eq(cfg->session.max_line_length, 4096);
	ck_assert_int_eq(cfg->session.idle_timeout, 300);
	ck_assert_int_eq(cfg->shutdown_timeout, 10);
	ck_assert_int_eq(cfg->source_prefix_v4, 32);
	ck_assert_int_eq(cfg->source_prefix_v6, 64);
	ck_assert_uint_eq(cfg->access.nallow, 0);
	ck_assert_uint_eq(cfg->access.ndeny, 0);
	ck_assert_int_eq(cfg->datagram.rate_limit, 100);
	ck_assert_int_eq(cfg->datagram.rate_burst, 200);
	ck_assert_uint_eq(cfg->datagram.ndeny_source_ports, 5);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(cfg->datagram.deny_source_ports[i], ports[i]);
	ck_assert_int_eq(cfg->log.level, LOG_INFO);
	ck_assert_int_eq(cfg->log.target, LOG_TARGET_AUTO);
	ck_assert_str_eq(cfg->user, "");
	ck_assert_str_eq(cfg->group, "");
}

START_TEST(test_defaults)
{
	struct config *cfg = config_default();

	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(cfg->file);
	assert_defaults(cfg);
	ck_assert_int_eq(cfg->listen[0].line, 0);
	config_free(cfg);
	config_free(NULL);
}
END_TEST

START_TEST(test_empty_file_is_defaults)
{
	struct config *cfg = load_good("# nothing set\n");

	assert_defaults(cfg);
	ck_assert_ptr_nonnull(cfg->file);
	config_free(cfg);
}
END_TEST

START_TEST(test_full_valid)
{
	struct config *cfg = load_good(full_conf);
	const struct listen_conf *l = cfg->listen;
	char buf[CIDR_STRLEN];

	ck_assert_uint_eq(cfg->nlisten, 5);
	ck_assert_int_eq(l[0].transport, TRANSPORT_TCP);
	ck_assert_str_eq(l[0].name, "web");
	ck_assert_str_eq(l[0].address, "::");
	ck_assert_int_eq(l[0].port, 7007);
	ck_assert_int_eq(l[0].backlog, 512);
	ck_assert(l[0].reuse_port);
	ck_assert_ptr_null(l[0].path);
	ck_assert_int_eq(l[0].line, 3);
	ck_assert_int_eq(l[0].proxy_protocol, PROXY_ANY);
	ck_assert_int_eq(l[0].proxy_timeout, 3600);
	ck_assert_uint_eq(l[0].nproxy_from, 2);
	cidr_format(&l[0].proxy_from[1], buf, sizeof(buf));
	ck_assert_str_eq(buf, "::1/128");
	ck_assert_int_eq(l[1].transport, TRANSPORT_UDP);
	ck_assert_str_eq(l[1].name, "dg");
	ck_assert_str_eq(l[1].address, "0.0.0.0");
	ck_assert_int_eq(l[1].port, 7008);
	ck_assert(!l[1].reuse_port);
	ck_assert_int_eq(l[1].proxy_protocol, PROXY_OFF);
	ck_assert_int_eq(l[2].transport, TRANSPORT_UNIX);
	ck_assert_ptr_null(l[2].address);
	ck_assert_str_eq(l[2].path, "/run/e/e.sock");
	ck_assert_int_eq(l[2].mode, 0660);
	ck_assert_str_eq(l[2].owner, "echo");
	ck_assert_str_eq(l[2].group, "adm");
	ck_assert_int_eq(l[2].backlog, 7);
	ck_assert_int_eq(l[2].proxy_protocol, PROXY_V1);
	ck_assert_int_eq(l[2].proxy_timeout, 1);
	ck_assert_uint_eq(l[2].nproxy_from, 0);
	ck_assert_int_eq(l[3].transport, TRANSPORT_UNIX_DGRAM);
	ck_assert_str_eq(l[3].path, "/run/e/d.sock");
	ck_assert_int_eq(l[3].mode, 0600);
	ck_assert_str_eq(l[3].owner, "");
	ck_assert_int_eq(l[4].transport, TRANSPORT_UNIX);
	ck_assert_str_eq(l[4].path, "@echotimed");
	ck_assert_int_eq(l[4].mode, -1);

	ck_assert_int_eq(cfg->concurrency.model, MODEL_FORK);
	ck_assert_int_eq(cfg->concurrency.max_connections, 1000000);
	ck_assert_int_eq(cfg->concurrency.overflow, OVERFLOW_WAIT);
	ck_assert_int_eq(cfg->concurrency.max_connections_per_source, 8);
	ck_assert_int_eq(cfg->concurrency.thread_stack_kib, 16);
	ck_assert_int_eq(cfg->concurrency.busy_poll, 10000);
	ck_assert_int_eq(cfg->concurrency.workers, MAX_WORKERS);
	ck_assert_int_eq(cfg->session.max_line_length, 1048576);
	ck_assert_int_eq(cfg->session.idle_timeout, 0);
	ck_assert_int_eq(cfg->shutdown_timeout, 3600);
	ck_assert_int_eq(cfg->source_prefix_v4, 24);
	ck_assert_int_eq(cfg->source_prefix_v6, 128);
	ck_assert_uint_eq(cfg->access.nallow, 3);
	ck_assert_int_eq(cfg->access.allow[0].family, AF_INET);
	ck_assert_uint_eq(cfg->access.allow[0].prefix, 8);
	ck_assert_int_eq(cfg->access.allow[1].family, AF_INET6);
	ck_assert_uint_eq(cfg->access.allow[1].prefix, 128);
	cidr_format(&cfg->access.allow[2], buf, sizeof(buf));
	ck_assert_str_eq(buf, "192.168.1.0/24");
	ck_assert_uint_eq(cfg->access.ndeny, 1);
	ck_assert_uint_eq(cfg->access.deny[0].prefix, 16);
	ck_assert_int_eq(cfg->datagram.rate_limit, 0);
	ck_assert_int_eq(cfg->datagram.rate_burst, 1);
	ck_assert_uint_eq(cfg->datagram.ndeny_source_ports, 2);
	ck_assert_int_eq(cfg->datagram.deny_source_ports[0], 19);
	ck_assert_int_eq(cfg->datagram.deny_source_ports[1], 65535);
	ck_assert_int_eq(cfg->log.level, LOG_DEBUG);
	ck_assert_int_eq(cfg->log.target, LOG_TARGET_JOURNAL);
	ck_assert_str_eq(cfg->user, "nobody");
	ck_assert_str_eq(cfg->group, "nogroup");
	config_free(cfg);
}
END_TEST

START_TEST(test_model_message)
{
	char *path, *err, want[512];

	err = load_bad(
	    "# line 1\n"
	    "listen = (\n"
	    "  { transport = \"tcp\"; port = 9999; }\n"
	    ");\n"
	    "\n"
	    "concurrency = {\n"
	    "  model = \"forks\";\n"
	    "};\n", &path);
	snprintf(want, sizeof(want), "%s:7: concurrency.model: expected one "
	    "of \"sequential\", \"fork\", \"thread\", \"event\", got \"forks\"",
	    path);
	ck_assert_str_eq(err, want);
	free(err);
	free(path);
}
END_TEST

START_TEST(test_multiple_errors)
{
	char *path, *err;

	err = load_bad(
	    "concurrency = {\n"
	    "  max_connections = 0;\n"		/* 2 */
	    "};\n"
	    "session = {\n"
	    "  idle_timeout = \"300\";\n"		/* 5 */
	    "};\n"
	    "log = { target = \"console\"; };\n",	/* 7 */
	    &path);
	ck_assert_uint_eq(count_lines(err), 3);
	ck_assert_error(err, path, 2, "concurrency.max_connections: "
	    "expected an integer from 1 to 1000000, got 0");
	ck_assert_error(err, path, 5, "session.idle_timeout: expected an "
	    "integer, got a string");
	ck_assert_error(err, path, 7, "log.target: expected one of ");
	/* In file order. */
	ck_assert(strstr(err, ":2: ") < strstr(err, ":5: "));
	ck_assert(strstr(err, ":5: ") < strstr(err, ":7: "));
	free(err);
	free(path);
}
END_TEST

START_TEST(test_unknown_settings)
{
	char *path, *err;

	err = load_bad(
	    "verbose = true;\n"
	    "concurrency = {\n"
	    "  modle = \"fork\";\n"
	    "};\n"
	    "listen = (\n"
	    "  { transport = \"tcp\"; prot = 1; }\n"
	    ");\n", &path);
	ck_assert_uint_eq(count_lines(err), 3);
	ck_assert_error(err, path, 1, "verbose: unknown setting");
	ck_assert_error(err, path, 3, "concurrency.modle: unknown setting");
	ck_assert_error(err, path, 6, "listen.[0].prot: unknown setting");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_wrong_types)
{
	char *path, *err;

	err = load_bad(
	    "concurrency = { max_connections = 1.5; };\n"
	    "session = \"long\";\n"
	    "listen = ( { transport = \"tcp\"; reuse_port = 1; } );\n"
	    "log = { level = 7; };\n"
	    "access = { allow = \"10.0.0.0/8\"; };\n"
	    "datagram = { deny_source_ports = [ \"echo\" ]; };\n"
	    "listen2 = 1;\n", &path);
	ck_assert_uint_eq(count_lines(err), 7);
	ck_assert_error(err, path, 1, "concurrency.max_connections: "
	    "expected an integer, got a float");
	ck_assert_error(err, path, 2, "session: expected a group, got a "
	    "string");
	ck_assert_error(err, path, 3, "listen.[0].reuse_port: expected a "
	    "boolean");
	ck_assert_error(err, path, 4, "log.level: expected a string, got an "
	    "integer");
	ck_assert_error(err, path, 5, "access.allow: expected an array");
	ck_assert_error(err, path, 6, "datagram.deny_source_ports.[0]: "
	    "expected an integer, got a string");
	ck_assert_error(err, path, 7, "listen2: unknown setting");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_out_of_range)
{
	char *path, *err;

	err = load_bad(
	    "listen = ( { transport = \"tcp\"; port = 70000; },\n"
	    "  { transport = \"unix\"; path = \"/x\"; backlog = 0; } );\n"
	    "session = { max_line_length = 0; };\n"
	    "shutdown_timeout = -1;\n"
	    "datagram = { rate_burst = 0; deny_source_ports = [ 7, 65536 ]; };\n"
	    "concurrency = { thread_stack_kib = 99999999999L;\n"
	    "  busy_poll = 10001; workers = 0; };\n", &path);
	ck_assert_uint_eq(count_lines(err), 9);
	ck_assert_error(err, path, 1, "listen.[0].port: expected an integer "
	    "from 0 to 65535, got 70000");
	ck_assert_error(err, path, 2, "listen.[1].backlog: expected an "
	    "integer from 1 to 65535, got 0");
	ck_assert_error(err, path, 3, "session.max_line_length: expected an "
	    "integer from 1 to 1048576, got 0");
	ck_assert_error(err, path, 4, "shutdown_timeout: expected an integer "
	    "from 0 to 3600, got -1");
	ck_assert_error(err, path, 5, "datagram.rate_burst: ");
	ck_assert_error(err, path, 5, "datagram.deny_source_ports.[1]: "
	    "expected an integer from 0 to 65535, got 65536");
	ck_assert_error(err, path, 6, "concurrency.thread_stack_kib: "
	    "expected an integer from 16 to 65536, got 99999999999");
	ck_assert_error(err, path, 7, "concurrency.busy_poll: "
	    "expected an integer from 0 to 10000, got 10001");
	ck_assert_error(err, path, 7, "concurrency.workers: "
	    "expected an integer from 1 to 256, got 0");
	free(err);
	free(path);
}
END_TEST

/* libconfig 1.5 truncates these to int; they must not slip through. */
START_TEST(test_truncated_integers)
{
	char *path, *err;

	err = load_bad(
	    "# 4294967296 in a comment is fine\n"
	    "listen = ( { transport = \"tcp\"; port = 4294967296; } );\n"
	    "session = {\n"
	    "  max_line_length = 4294971392;\n"
	    "  idle_timeout = 0x100000000;\n"
	    "};\n", &path);
	ck_assert_uint_eq(count_lines(err), 3);
	ck_assert_error(err, path, 2, "listen.[0].port: expected an integer "
	    "from 0 to 65535, got 4294967296");
	ck_assert_error(err, path, 4, "got 4294971392");
	ck_assert_error(err, path, 5, "got 0x100000000");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_unix_without_path)
{
	char *path, *err;

	err = load_bad(
	    "listen = (\n"
	    "  { transport = \"tcp\"; },\n"
	    "  { transport = \"unix\";\n"
	    "    mode = \"0600\"; }\n"
	    ");\n", &path);
	ck_assert_uint_eq(count_lines(err), 1);
	ck_assert_error(err, path, 3, "listen.[1].path: required for "
	    "transport unix");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_missing_transport)
{
	char *path, *err;

	err = load_bad(
	    "listen = (\n"
	    "  { port = 1; }\n"
	    ");\n", &path);
	ck_assert_uint_eq(count_lines(err), 1);
	ck_assert_error(err, path, 2, "listen.[0].transport: required: one "
	    "of \"tcp\", \"udp\", \"unix\", \"unix-dgram\"");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_settings_not_for_transport)
{
	char *path, *err;

	err = load_bad(
	    "listen = (\n"
	    "  { transport = \"tcp\";\n"
	    "    path = \"/run/x.sock\";\n"
	    "    mode = \"0660\"; },\n"
	    "  { transport = \"unix\"; path = \"/run/y.sock\";\n"
	    "    port = 1; reuse_port = true; },\n"
	    "  { transport = \"udp\"; backlog = 5; },\n"
	    "  { transport = \"unix\"; path = \"@abs\"; mode = \"0600\"; }\n"
	    ");\n", &path);
	ck_assert_uint_eq(count_lines(err), 6);
	ck_assert_error(err, path, 3, "listen.[0].path: not valid for "
	    "transport tcp");
	ck_assert_error(err, path, 4, "listen.[0].mode: not valid for "
	    "transport tcp");
	ck_assert_error(err, path, 6, "listen.[1].port: not valid for "
	    "transport unix");
	ck_assert_error(err, path, 6, "listen.[1].reuse_port: not valid for "
	    "transport unix");
	ck_assert_error(err, path, 7, "listen.[2].backlog: not valid for "
	    "transport udp");
	ck_assert_error(err, path, 8, "listen.[3].mode: not valid for an "
	    "abstract socket");
	free(err);
	free(path);
}
END_TEST

/*
 * The PROXY settings (SPEC 9): stream listeners only, proxy_from on tcp
 * only (a unix listener trusts by its file's permissions), and required
 * there when the protocol is on.
 */
START_TEST(test_proxy_settings)
{
	char *path, *err;

	err = load_bad(
	    "listen = (\n"
	    "  { transport = \"udp\"; proxy_protocol = \"v2\"; },\n"
	    "  { transport = \"unix-dgram\"; path = \"/d\";\n"
	    "    proxy_timeout = 2; },\n"
	    "  { transport = \"unix\"; path = \"/s\"; proxy_protocol = \"v2\";\n"
	    "    proxy_from = [ \"127.0.0.1\" ]; },\n"
	    "  { transport = \"tcp\"; port = 1; proxy_protocol = \"v1\"; },\n"
	    "  { transport = \"tcp\"; port = 2; proxy_protocol = \"any\";\n"
	    "    proxy_from = [ ]; },\n"
	    "  { transport = \"tcp\"; port = 3; proxy_protocol = \"v3\";\n"
	    "    proxy_timeout = 0; proxy_from = [ \"10.0.0.1/8\" ]; }\n"
	    ");\n", &path);
	ck_assert_uint_eq(count_lines(err), 8);
	ck_assert_error(err, path, 2, "listen.[0].proxy_protocol: not valid "
	    "for transport udp");
	ck_assert_error(err, path, 4, "listen.[1].proxy_timeout: not valid "
	    "for transport unix-dgram");
	ck_assert_error(err, path, 6, "listen.[2].proxy_from: not valid for "
	    "transport unix");
	ck_assert_error(err, path, 7, "listen.[3].proxy_from: required when "
	    "proxy_protocol is \"v1\"");
	ck_assert_error(err, path, 9, "listen.[4].proxy_from: at least one "
	    "prefix is required when proxy_protocol is \"any\"");
	ck_assert_error(err, path, 10, "listen.[5].proxy_protocol: expected "
	    "one of \"off\", \"v1\", \"v2\", \"any\", got \"v3\"");
	ck_assert_error(err, path, 11, "listen.[5].proxy_timeout: expected an "
	    "integer from 1 to 3600, got 0");
	ck_assert_error(err, path, 11, "listen.[5].proxy_from.[0]: invalid "
	    "CIDR prefix \"10.0.0.1/8\"");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_bad_listener_values)
{
	char *path, *err;

	err = load_bad(
	    "listen = (\n"
	    "  { transport = \"tcpip\"; },\n"
	    "  { transport = \"tcp\"; address = \"\"; name = \"a:b\"; },\n"
	    "  { transport = \"unix\"; path = \"relative.sock\"; },\n"
	    "  { transport = \"unix\"; path = \"/ok\"; mode = \"0999\"; },\n"
	    "  { transport = \"unix\"; path = \"/ok2\"; mode = 660; },\n"
	    "  { transport = \"unix\"; path = \"@\"; },\n"
	    "  \"tcp\" );\n"
	    "log = { level = \"err\"; };\n", &path);
	ck_assert_error(err, path, 2, "listen.[0].transport: expected one of "
	    "\"tcp\", \"udp\", \"unix\", \"unix-dgram\", got \"tcpip\"");
	ck_assert_error(err, path, 3, "listen.[1].address: must not be empty");
	ck_assert_error(err, path, 3, "listen.[1].name: invalid name \"a:b\"");
	ck_assert_error(err, path, 4, "listen.[2].path: expected an absolute "
	    "path");
	ck_assert_error(err, path, 5, "listen.[3].mode: expected an octal "
	    "mode");
	ck_assert_error(err, path, 6, "listen.[4].mode: expected an octal "
	    "string such as \"0660\", got an integer");
	ck_assert_error(err, path, 7, "listen.[5].path: ");
	ck_assert_error(err, path, 8, "listen.[6]: expected a group, got a "
	    "string");
	ck_assert_error(err, path, 9, "log.level: expected one of \"debug\", "
	    "\"info\", \"notice\", \"warning\", \"error\", got \"err\"");
	ck_assert_uint_eq(count_lines(err), 9);
	free(err);
	free(path);
}
END_TEST

START_TEST(test_path_too_long)
{
	char text[512], long_path[120], *path, *err;
	struct config *cfg;

	/* 107 bytes fit in sun_path with its NUL, 108 do not. */
	memset(long_path, 'a', sizeof(long_path));
	long_path[0] = '/';
	long_path[107] = '\0';
	snprintf(text, sizeof(text), "listen = ( { transport = \"unix\"; "
	    "path = \"%s\"; } );\n", long_path);
	cfg = load_good(text);
	ck_assert_uint_eq(strlen(cfg->listen[0].path), 107);
	config_free(cfg);

	long_path[107] = 'a';
	long_path[108] = '\0';
	snprintf(text, sizeof(text), "listen = ( { transport = \"unix\"; "
	    "path = \"%s\"; } );\n", long_path);
	err = load_bad(text, &path);
	ck_assert_error(err, path, 1, "listen.[0].path: too long: 108 bytes, "
	    "at most 107");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_bad_cidr)
{
	char *path, *err;

	err = load_bad(
	    "access = {\n"
	    "  allow = [ \"10.0.0.0/8\", \"::1\",\n"
	    "            \"10.0.0.1/8\" ];\n"
	    "  deny = ( \"example.com\" );\n"
	    "};\n", &path);
	ck_assert_uint_eq(count_lines(err), 2);
	ck_assert_error(err, path, 3, "access.allow.[2]: invalid CIDR prefix "
	    "\"10.0.0.1/8\"");
	ck_assert_error(err, path, 4, "access.deny.[0]: invalid CIDR prefix "
	    "\"example.com\"");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_duplicate_listener)
{
	char *path, *err;
	struct config *cfg;

	err = load_bad(
	    "listen = (\n"
	    "  { transport = \"tcp\"; address = \"::\"; port = 7; name = \"a\"; },\n"
	    "  { transport = \"tcp\"; address = \"::\"; port = 7; },\n"
	    "  { transport = \"unix\"; path = \"/run/s\"; },\n"
	    "  { transport = \"unix-dgram\"; path = \"/run/s\"; name = \"a\"; }\n"
	    ");\n", &path);
	ck_assert_uint_eq(count_lines(err), 3);
	ck_assert_error(err, path, 3, "listen.[1]: duplicate listener: same "
	    "socket as listen.[0] on line 2");
	ck_assert_error(err, path, 5, "listen.[3]: duplicate listener: same "
	    "socket as listen.[2] on line 4");
	ck_assert_error(err, path, 5, "listen.[3].name: duplicate name \"a\"");
	free(err);
	free(path);

	/* Different transports, or ephemeral ports, do not clash. */
	cfg = load_good(
	    "listen = (\n"
	    "  { transport = \"tcp\"; address = \"::\"; port = 7; },\n"
	    "  { transport = \"udp\"; address = \"::\"; port = 7; },\n"
	    "  { transport = \"tcp\"; port = 0; },\n"
	    "  { transport = \"tcp\"; port = 0; },\n"
	    /* Abstract names are per socket type (file paths are not). */
	    "  { transport = \"unix\"; path = \"@et\"; },\n"
	    "  { transport = \"unix-dgram\"; path = \"@et\"; }\n"
	    ");\n");
	ck_assert_uint_eq(cfg->nlisten, 6);
	config_free(cfg);
	err = load_bad(
	    "listen = (\n"
	    "  { transport = \"unix\"; path = \"@et\"; },\n"
	    "  { transport = \"unix\"; path = \"@et\"; }\n"
	    ");\n", &path);
	ck_assert_error(err, path, 3, "listen.[1]: duplicate listener: same "
	    "socket as listen.[0] on line 2");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_empty_listen)
{
	char *path, *err;

	err = load_bad("listen = ( );\n", &path);
	ck_assert_error(err, path, 1, "listen: at least one listener");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_missing_file)
{
	struct config *cfg = NULL;
	char *err = NULL;
	const char *path = "/nonexistent/echotimed.conf";

	ck_assert_int_eq(config_load(path, &cfg, &err), -ENOENT);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err,
	    "/nonexistent/echotimed.conf: No such file or directory");
	free(err);

	ck_assert_int_eq(config_load("/tmp", &cfg, &err), -EISDIR);
	free(err);
}
END_TEST

START_TEST(test_syntax_error)
{
	char *path, *err, want[512];
	struct config *cfg = NULL;
	int r;

	r = load_text(
	    "log = {\n"
	    "  level = \"info\";\n"
	    "  target = ;\n"
	    "};\n", &cfg, &err, &path);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof(want), "%s:3: syntax error", path);
	ck_assert_str_eq(err, want);
	free(err);
	free(path);

	r = load_text("user = \"a\";\ngroup = \"b\";\nuser = \"c\";\n",
	    &cfg, &err, &path);
	ck_assert_int_eq(r, -EINVAL);
	snprintf(want, sizeof(want), "%s:3: syntax error: duplicate setting "
	    "name", path);
	ck_assert_str_eq(err, want);
	free(err);
	free(path);
}
END_TEST

START_TEST(test_source_prefixes)
{
	struct config *cfg;
	char *path, *err;

	/* The ends of both ranges load. */
	cfg = load_good("source_prefix_v4 = 0;\nsource_prefix_v6 = 0;\n");
	ck_assert_int_eq(cfg->source_prefix_v4, 0);
	ck_assert_int_eq(cfg->source_prefix_v6, 0);
	assert_round_trip(cfg);
	config_free(cfg);
	cfg = load_good("source_prefix_v6 = 128;\nsource_prefix_v4 = 32;\n");
	ck_assert_int_eq(cfg->source_prefix_v4, 32);
	ck_assert_int_eq(cfg->source_prefix_v6, 128);
	config_free(cfg);

	err = load_bad(
	    "# line 1\n"
	    "source_prefix_v4 = 33;\n"
	    "source_prefix_v6 = -1;\n"
	    "concurrency = { source_prefix_v4 = 24; };\n", &path);
	ck_assert_uint_eq(count_lines(err), 3);
	ck_assert_error(err, path, 2, "source_prefix_v4: expected an integer "
	    "from 0 to 32, got 33");
	ck_assert_error(err, path, 3, "source_prefix_v6: expected an integer "
	    "from 0 to 128, got -1");
	/* A top-level setting, not one of a group. */
	ck_assert_error(err, path, 4, "concurrency.source_prefix_v4: unknown "
	    "setting");
	free(err);
	free(path);

	err = load_bad(
	    "source_prefix_v6 = \"/64\";\n"
	    "source_prefix_v4 = 4294967320;\n", &path);
	ck_assert_uint_eq(count_lines(err), 2);
	ck_assert_error(err, path, 1, "source_prefix_v6: expected an integer, "
	    "got a string");
	/* libconfig 1.5 would read this as 24. */
	ck_assert_error(err, path, 2, "source_prefix_v4: expected an integer "
	    "from 0 to 32, got 4294967320");
	free(err);
	free(path);
	err = load_bad("source_prefix_v6 = 129;\n", &path);
	ck_assert_error(err, path, 1, "source_prefix_v6: expected an integer "
	    "from 0 to 128, got 129");
	free(err);
	free(path);
}
END_TEST

START_TEST(test_round_trip)
{
	struct config *cfg;

	cfg = config_default();
	assert_round_trip(cfg);
	config_free(cfg);

	cfg = load_good(full_conf);
	assert_round_trip(cfg);
	config_free(cfg);

	/* Strings that need escaping survive too. */
	cfg = load_good(
	    "listen = ( { transport = \"unix\"; path = \"/run/q\\\"\\\\x\";\n"
	    "  owner = \"a\\tb\\x01\"; } );\n"
	    "user = \"\\\"quoted\\\"\";\n");
	ck_assert_str_eq(cfg->listen[0].path, "/run/q\"\\x");
	ck_assert_str_eq(cfg->listen[0].owner, "a\tb\x01");
	assert_round_trip(cfg);
	config_free(cfg);
}
END_TEST

START_TEST(test_abstract_path)
{
	struct config *cfg;

	cfg = load_good("listen = ( { transport = \"unix-dgram\"; "
	    "path = \"@echotimed/dgram\"; name = \"dgram-1.x_y\"; } );\n");
	ck_assert_int_eq(cfg->listen[0].transport, TRANSPORT_UNIX_DGRAM);
	ck_assert_str_eq(cfg->listen[0].path, "@echotimed/dgram");
	ck_assert_str_eq(cfg->listen[0].name, "dgram-1.x_y");
	ck_assert_ptr_null(cfg->listen[0].address);
	assert_round_trip(cfg);
	config_free(cfg);
}
END_TEST

START_TEST(test_empty_deny_source_ports)
{
	struct config *cfg;

	cfg = load_good("datagram = { deny_source_ports = [ ]; };\n"
	    "access = { allow = ( ); };\n");
	ck_assert_uint_eq(cfg->datagram.ndeny_source_ports, 0);
	ck_assert_uint_eq(cfg->access.nallow, 0);
	assert_round_trip(cfg);
	config_free(cfg);
}
END_TEST

START_TEST(test_installed_conf)
{
	const char *dir = getenv("ECHOTIMED_CONF_DIR");
	struct config *cfg = NULL, *def;
	char path[4096], *err = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/echotimed.conf",
	    dir != NULL && *dir != '\0' ? dir : "conf");
	r = config_load(path, &cfg, &err);
	ck_assert_msg(r == 0, "%s: %s", path, err ? err : strerror(-r));
	def = config_default();
	ck_assert_ptr_nonnull(def);
	assert_config_equal(cfg, def);
	assert_defaults(cfg);
	ck_assert_str_eq(cfg->file, path);
	config_free(def);
	config_free(cfg);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(transport_name(TRANSPORT_UNIX_DGRAM), "unix-dgram");
	ck_assert_str_eq(model_name(MODEL_SEQUENTIAL), "sequential");
	ck_assert_str_eq(model_name(MODEL_EVENT), "event");
	ck_assert_str_eq(overflow_name(OVERFLOW_WAIT), "wait");
	ck_assert_str_eq(log_target_name(LOG_TARGET_SYSLOG), "syslog");
	ck_assert_int_eq(log_level_parse("debug"), LOG_DEBUG);
	ck_assert_int_eq(log_level_parse("warning"), LOG_WARNING);
	ck_assert_int_eq(log_level_parse("error"), LOG_ERR);
	ck_assert_int_eq(log_level_parse("verbose"), -1);
	ck_assert_int_eq(log_level_parse(NULL), -1);
	ck_assert_str_eq(log_level_name(LOG_NOTICE), "notice");
	ck_assert_str_eq(log_level_name(LOG_INFO), "info");
	ck_assert(transport_is_dgram(TRANSPORT_UDP));
	ck_assert(transport_is_dgram(TRANSPORT_UNIX_DGRAM));
	ck_assert(!transport_is_dgram(TRANSPORT_TCP));
	ck_assert(!transport_is_dgram(TRANSPORT_UNIX));
}
END_TEST

START_TEST(test_listen_conf_equal)
{
	struct config *a = config_default(), *b = config_default();

	ck_assert(listen_conf_equal(&a->listen[0], &b->listen[0]));
	b->listen[0].line = 42;
	ck_assert(listen_conf_equal(&a->listen[0], &b->listen[0]));
	b->listen[0].backlog = 5;
	ck_assert(!listen_conf_equal(&a->listen[0], &b->listen[0]));
	b->listen[0].backlog = a->listen[0].backlog;
	b->listen[0].reuse_port = true;
	ck_assert(!listen_conf_equal(&a->listen[0], &b->listen[0]));
	b->listen[0].reuse_port = false;
	/* PROXY settings change in place: the same socket, not equal. */
	b->listen[0].proxy_protocol = PROXY_V2;
	ck_assert(!listen_conf_equal(&a->listen[0], &b->listen[0]));
	ck_assert(listen_conf_same_bind(&a->listen[0], &b->listen[0]));
	a->listen[0].proxy_protocol = PROXY_V2;
	ck_assert(listen_conf_equal(&a->listen[0], &b->listen[0]));
	b->listen[0].proxy_timeout = 7;
	ck_assert(!listen_conf_equal(&a->listen[0], &b->listen[0]));
	b->listen[0].proxy_timeout = a->listen[0].proxy_timeout;
	ck_assert_int_eq(cidr_parse("10.0.0.0/8",
	    b->listen[0].proxy_from = calloc(1, sizeof(struct cidr))), 0);
	b->listen[0].nproxy_from = 1;
	ck_assert(!listen_conf_equal(&a->listen[0], &b->listen[0]));
	listen_conf_clear(&a->listen[0]);
	ck_assert_int_eq(listen_conf_copy(&a->listen[0], &b->listen[0]), 0);
	ck_assert(listen_conf_equal(&a->listen[0], &b->listen[0]));
	ck_assert_ptr_ne(a->listen[0].proxy_from, b->listen[0].proxy_from);
	b->listen[0].proxy_from[0].prefix = 9;
	ck_assert(!listen_conf_equal(&a->listen[0], &b->listen[0]));
	free(b->listen[0].name);
	b->listen[0].name = strdup("x");
	ck_assert(!listen_conf_equal(&a->listen[0], &b->listen[0]));
	config_free(a);
	config_free(b);
}
END_TEST

/* The -T text, byte for byte: what the table-driven printer must keep. */
START_TEST(test_print_defaults_exact)
{
	struct config *cfg = config_default();
	char *text = print_text(cfg);

	ck_assert_str_eq(text,
	    "# echotimed effective configuration: built-in defaults\n"
	    "\n"
	    "listen = (\n"
	    "  {\n"
	    "    transport = \"tcp\";\n"
	    "    name = \"\";\n"
	    "    address = \"127.0.0.1\";\n"
	    "    port = 9999;\n"
	    "    backlog = 128;\n"
	    "    reuse_port = false;\n"
	    "    proxy_protocol = \"off\";\n"
	    "    proxy_timeout = 5;\n"
	    "  }\n"
	    ");\n"
	    "\n"
	    "concurrency = {\n"
	    "  model = \"thread\";\n"
	    "  max_connections = 256;\n"
	    "  overflow = \"reject\";\n"
	    "  max_connections_per_source = 0;\n"
	    "  thread_stack_kib = 64;\n"
	    "  busy_poll = 0;\n"
	    "  workers = 1;\n"
	    "};\n"
	    "\n"
	    "session = {\n"
	    "  max_line_length = 4096;\n"
	    "  idle_timeout = 300;\n"
	    "};\n"
	    "\n"
	    "shutdown_timeout = 10;\n"
	    "\n"
	    "source_prefix_v4 = 32;\n"
	    "source_prefix_v6 = 64;\n"
	    "\n"
	    "access = {\n"
	    "  allow = [ ];\n"
	    "  deny = [ ];\n"
	    "};\n"
	    "\n"
	    "datagram = {\n"
	    "  rate_limit = 100;\n"
	    "  rate_burst = 200;\n"
	    "  deny_source_ports = [ 0, 7, 13, 19, 37 ];\n"
	    "};\n"
	    "\n"
	    "log = {\n"
	    "  level = \"info\";\n"
	    "  target = \"auto\";\n"
	    "};\n"
	    "\n"
	    "user = \"\";\n"
	    "group = \"\";\n");
	free(text);
	config_free(cfg);
}
END_TEST

/* Each transport's fields; an abstract socket has no mode, owner, group. */
START_TEST(test_print_listeners_exact)
{
	struct config *cfg = load_good(
	    "listen = (\n"
	    "  { transport = \"udp\"; address = \"::1\"; port = 7; },\n"
	    "  { transport = \"unix\"; path = \"/s\"; mode = \"0660\"; },\n"
	    "  { transport = \"unix-dgram\"; path = \"/d\";\n"
	    "    group = \"g\\n\"; },\n"
	    "  { transport = \"unix\"; path = \"@a\"; name = \"n\"; }\n"
	    ");\n"
	    "access = { deny = [ \"10.0.0.0/8\", \"::1\" ]; };\n"
	    "datagram = { deny_source_ports = [ 9 ]; };\n");
	char *text = print_text(cfg), *listen, *end;

	listen = strstr(text, "\nlisten = (\n");
	ck_assert_ptr_nonnull(listen);
	end = strstr(listen, "\n);\n");
	ck_assert_ptr_nonnull(end);
	listen = strndup(listen + 1, (size_t)(end + 3 - listen));
	ck_assert_str_eq(listen,
	    "listen = (\n"
	    "  {\n"
	    "    transport = \"udp\";\n"
	    "    name = \"\";\n"
	    "    address = \"::1\";\n"
	    "    port = 7;\n"
	    "    reuse_port = false;\n"
	    "  },\n"
	    "  {\n"
	    "    transport = \"unix\";\n"
	    "    name = \"\";\n"
	    "    path = \"/s\";\n"
	    "    mode = \"0660\";\n"
	    "    owner = \"\";\n"
	    "    group = \"\";\n"
	    "    backlog = 128;\n"
	    "    proxy_protocol = \"off\";\n"
	    "    proxy_timeout = 5;\n"
	    "  },\n"
	    "  {\n"
	    "    transport = \"unix-dgram\";\n"
	    "    name = \"\";\n"
	    "    path = \"/d\";\n"
	    "    owner = \"\";\n"
	    "    group = \"g\\n\";\n"
	    "  },\n"
	    "  {\n"
	    "    transport = \"unix\";\n"
	    "    name = \"n\";\n"
	    "    path = \"@a\";\n"
	    "    backlog = 128;\n"
	    "    proxy_protocol = \"off\";\n"
	    "    proxy_timeout = 5;\n"
	    "  }\n"
	    ");\n");
	ck_assert_ptr_nonnull(strstr(text,
	    "  deny = [ \"10.0.0.0/8\", \"::1/128\" ];\n"));
	ck_assert_ptr_nonnull(strstr(text, "  deny_source_ports = [ 9 ];\n"));
	free(listen);
	free(text);
	config_free(cfg);
}
END_TEST


/* With no path: the default file, else the built-in defaults. */
START_TEST(test_obtain)
{
	const char *missing = "/nonexistent/echotimed.conf";
	char *good = write_conf("shutdown_timeout = 5;\n");
	char *bad = write_conf("shutdown_timeout = -5;\n");
	struct config *cfg = NULL;
	char *err = NULL;
	bool builtin = true;

	/* The default file is missing: built-in defaults. */
	ck_assert_int_eq(config_obtain_from(NULL, missing, &cfg, &err,
	    &builtin), 0);
	ck_assert(builtin);
	ck_assert_ptr_null(err);
	ck_assert_ptr_null(cfg->file);
	assert_defaults(cfg);
	config_free(cfg);

	/* The default file exists: it is loaded. */
	ck_assert_int_eq(config_obtain_from(NULL, good, &cfg, &err,
	    &builtin), 0);
	ck_assert(!builtin);
	ck_assert_str_eq(cfg->file, good);
	ck_assert_int_eq(cfg->shutdown_timeout, 5);
	config_free(cfg);

	/* An invalid or unreadable default file is an error, no fallback. */
	ck_assert_int_eq(config_obtain_from(NULL, bad, &cfg, &err, &builtin),
	    -EINVAL);
	ck_assert(!builtin);
	ck_assert_ptr_null(cfg);
	ck_assert_error(err, bad, 1, "shutdown_timeout: expected an integer");
	free(err);
	ck_assert_int_eq(config_obtain_from(NULL, "/tmp", &cfg, &err,
	    &builtin), -EISDIR);
	ck_assert_ptr_null(cfg);
	free(err);

	/* A path given must exist: never the defaults in its place. */
	ck_assert_int_eq(config_obtain_from(missing, good, &cfg, &err,
	    &builtin), -ENOENT);
	ck_assert(!builtin);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, "/nonexistent/echotimed.conf: "
	    "No such file or directory");
	free(err);
	ck_assert_int_eq(config_obtain_from(good, missing, &cfg, &err,
	    &builtin), 0);
	ck_assert_str_eq(cfg->file, good);
	config_free(cfg);
	ck_assert_int_eq(config_obtain(good, &cfg, NULL, &builtin), 0);
	ck_assert(!builtin);
	config_free(cfg);

	/* The real default path, whichever way this machine has it. */
	if (access(CONFIG_DEFAULT_PATH, F_OK) < 0 && errno == ENOENT) {
		ck_assert_int_eq(config_obtain(NULL, &cfg, &err, &builtin), 0);
		ck_assert(builtin);
		config_free(cfg);
	}
	unlink(good);
	unlink(bad);
	free(good);
	free(bad);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_empty_file_is_defaults);
	tcase_add_test(tc, test_full_valid);
	tcase_add_test(tc, test_model_message);
	tcase_add_test(tc, test_multiple_errors);
	tcase_add_test(tc, test_unknown_settings);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_truncated_integers);
	tcase_add_test(tc, test_unix_without_path);
	tcase_add_test(tc, test_missing_transport);
	tcase_add_test(tc, test_settings_not_for_transport);
	tcase_add_test(tc, test_proxy_settings);
	tcase_add_test(tc, test_bad_listener_values);
	tcase_add_test(tc, test_path_too_long);
	tcase_add_test(tc, test_bad_cidr);
	tcase_add_test(tc, test_duplicate_listener);
	tcase_add_test(tc, test_empty_listen);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_source_prefixes);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_abstract_path);
	tcase_add_test(tc, test_empty_deny_source_ports);
	tcase_add_test(tc, test_installed_conf);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_listen_conf_equal);
	tcase_add_test(tc, test_print_defaults_exact);
	tcase_add_test(tc, test_print_listeners_exact);
	tcase_add_test(tc, test_obtain);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(config_suite)
