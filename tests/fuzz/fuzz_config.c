/*
 * fuzz_config.c - libFuzzer harness for the config loader (config_load).
 *
 * The input is written to one file in a private per-process directory
 * (/tmp/fuzz_config.PID/in.conf, reused for every input) and loaded.
 * Properties checked, besides "no crash, no sanitizer report, no leak":
 *
 *   - config_load() returns 0 with a config and no error text, or < 0
 *     with no config and (except for ENOMEM) a non-empty error text whose
 *     lines all start with the file name (or "no configuration", or the
 *     errno text for a missing file);
 *   - a config that loads prints (config_print, the -T output) to text
 *     that loads again and prints identically: -T output can be fed back.
 *
 * @include: libconfig 1.5 opens included files relative to the including
 * file's directory.  So that the fuzzer cannot read /dev/zero or block on
 * /dev/stdin, inputs are only run if every @include names a plain file in
 * the private directory ([A-Za-z0-9._-], not "." or ".."); that directory
 * holds in.conf itself (libconfig bounds the nesting depth) and a fixed
 * inc.conf.
 *
 * Build (see the Makefile's fuzz target, or by hand):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 \
 *     -D_GNU_SOURCE -DSYSCONFDIR='"/etc"' -Isrc tests/fuzz/fuzz_config.c \
 *     src/config*.c src/acl.c $(pkg-config --cflags --libs libconfig) \
 *     -o build/fuzz_config
 *   build/fuzz_config -max_total_time=300 CORPUS tests/fuzz/corpus/config
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
const char *__lsan_default_suppressions(void);

/*
 * libconfig 1.5 (Debian 12) leaks the buffer of a string token that its
 * parser rejects: "a = 1 \"s\";" loses 64 bytes allocated by its scanner's
 * strbuf_append(), "a = 1 \"\";" 1 byte calloc'd in libconfig_yylex(),
 * before config_load() sees anything (the same happens with a plain
 * config_read_file() + config_destroy()).  Those scanner leaks are not
 * ours; what libconfig's parser allocates (every setting) is still
 * checked, so a missing config_destroy() would still be caught.
 */
const char *
__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

#define CHECK(x, ...) do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_config: check failed: %s\n", #x);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

static char	dir[64];
static char	in_path[96];
static char	out_path[96];
static char	inc_path[96];

static const char inc_text[] =
    "# included by fuzz inputs\n"
    "session = { max_line_length = 100; idle_timeout = 5; };\n";

static void
cleanup(void)
{
	unlink(in_path);
	unlink(out_path);
	unlink(inc_path);
	rmdir(dir);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "we");

	if (fp == NULL || (len > 0 && fwrite(data, 1, len, fp) != len) ||
	    fclose(fp) != 0) {
		perror(path);
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/fuzz_config.%ld", (long)getpid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		perror(dir);
		abort();
	}
	snprintf(in_path, sizeof(in_path), "%s/in.conf", dir);
	snprintf(out_path, sizeof(out_path), "%s/printed.conf", dir);
	snprintf(inc_path, sizeof(inc_path), "%s/inc.conf", dir);
	write_file(inc_path, inc_text, sizeof(inc_text) - 1);
	atexit(cleanup);
	return 0;
}

/* Every @include must name a plain file of our directory. */
static bool
includes_safe(const uint8_t *data, size_t size)
{
	static const char kw[] = "@include";
	const uint8_t *p = data, *end = data + size, *q, *name;
	size_t n;

	while ((q = memmem(p, (size_t)(end - p), kw, sizeof(kw) - 1)) != NULL) {
		p = q + sizeof(kw) - 1;
		/* libconfig: ^[ \t]*@include[ \t]+" ; be stricter: any '"'. */
		while (p < end && *p != '"')
			if (*p++ == '\n')
				break;
		if (p >= end || *p != '"')
			continue;	/* no file name: a syntax error */
		name = ++p;
		while (p < end && *p != '"') {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
			    *p == '-'))
				return false;
			p++;
		}
		if (p >= end)
			return false;	/* unterminated: do not guess */
		n = (size_t)(p - name);
		if (n == 0 || (n == 1 && name[0] == '.') ||
		    (n == 2 && name[0] == '.' && name[1] == '.'))
			return false;
	}
	return true;
}

/* config_print() into a malloc'd string, without its first comment line
 * (which names the file). */
static char *
printed(const struct config *cfg, size_t *lenp)
{
	char *buf = NULL, *nl;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	CHECK(fp != NULL, "open_memstream");
	config_print(cfg, fp);
	CHECK(fclose(fp) == 0, "fclose");
	nl = strchr(buf, '\n');
	CHECK(buf[0] == '#' && nl != NULL, "print starts with %.40s", buf);
	memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
	*lenp = len - (size_t)(nl + 1 - buf);
	return buf;
}

/* Every error line names a file of our directory (in.conf, an include). */
static void
check_errors(const char *errs)
{
	const char *line = errs, *nl;
	size_t dlen = strlen(dir);

	for (;;) {
		nl = strchr(line, '\n');
		CHECK((strncmp(line, dir, dlen) == 0 && line[dlen] == '/') ||
		    strncmp(line, "no configuration", 16) == 0,
		    "error line does not name the file: %s", line);
		if (nl == NULL)
			break;
		line = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL, *cfg2 = NULL;
	char *errs = NULL, *errs2 = NULL, *p1, *p2;
	size_t n1, n2;
	int r;

	if (!includes_safe(data, size))
		return 0;
	write_file(in_path, data, size);
	r = config_load(in_path, &cfg, &errs);
	if (r < 0) {
		CHECK(cfg == NULL, "config on failure (r=%d)", r);
		CHECK(r == -ENOMEM || (errs != NULL && errs[0] != '\0'),
		    "no error text (r=%d)", r);
		if (r == -EINVAL)
			check_errors(errs);
		free(errs);
		return 0;
	}
	CHECK(r == 0 && cfg != NULL && errs == NULL, "r=%d cfg=%p errs=%s", r,
	    (void *)cfg, errs ? errs : "(null)");
	CHECK(cfg->nlisten >= 1, "no listener");

	/* -T output loads again and prints the same. */
	p1 = printed(cfg, &n1);
	write_file(out_path, p1, n1);
	r = config_load(out_path, &cfg2, &errs2);
	CHECK(r == 0, "printed config does not load (r=%d): %s\n--- printed:\n%s",
	    r, errs2 ? errs2 : "", p1);
	p2 = printed(cfg2, &n2);
	CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0,
	    "print differs after reload\n--- first:\n%s\n--- second:\n%s", p1, p2);
	unlink(out_path);
	free(p1);
	free(p2);
	free(errs2);
	config_free(cfg2);
	config_free(cfg);
	return 0;
}
