/*
 * check_log.c - unit tests for log.c: escaping, the stderr line format,
 * thresholds, structured fields, thread and fork safety, and (as root, in a
 * private mount namespace) the journal and syslog targets against a socket
 * the test binds where libsystemd and glibc look for them.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "log.h"
#include "check_main.h"

/* ---- log_escape -------------------------------------------------------- */

/* Escape into a buffer of exactly outsz bytes (ASan sees any overflow). */
static void
expect_escape(const char *in, size_t len, size_t outsz, const char *want)
{
	char *out = malloc(outsz == 0 ? 1 : outsz);
	size_t r;

	ck_assert_ptr_nonnull(out);
	r = log_escape(out, outsz, in, len);
	ck_assert_str_eq(out, want);
	ck_assert_uint_eq(r, strlen(want));
	free(out);
}

START_TEST(test_escape_plain)
{
	expect_escape("hello, world", 12, 64, "hello, world");
	expect_escape(" ~!#$%&'()*+/09:;<=>?@AZ[]^_`az{|}", 34, 64,
	    " ~!#$%&'()*+/09:;<=>?@AZ[]^_`az{|}");
	expect_escape("", 0, 64, "");
	expect_escape(NULL, 0, 4, "");
}
END_TEST

START_TEST(test_escape_control)
{
	expect_escape("a\nb", 3, 64, "a\\x0ab");
	expect_escape("a\rb", 3, 64, "a\\x0db");
	expect_escape("\r\n", 2, 64, "\\x0d\\x0a");
	expect_escape("\x1b[31mred\x1b[0m", 12, 64,
	    "\\x1b[31mred\\x1b[0m");
	expect_escape("a\0b", 3, 64, "a\\x00b");
	expect_escape("\t\x7f\x01", 3, 64, "\\x09\\x7f\\x01");
	/* A forged log line stays on one line and visibly escaped. */
	expect_escape("x\nechotimed[1]: error: fake", 27, 64,
	    "x\\x0aechotimed[1]: error: fake");
}
END_TEST

START_TEST(test_escape_backslash_and_high)
{
	expect_escape("a\\b", 3, 64, "a\\\\b");
	expect_escape("\\x41", 4, 64, "\\\\x41");
	expect_escape("caf\xc3\xa9", 5, 64, "caf\\xc3\\xa9");
	expect_escape("\x80\xff", 2, 64, "\\x80\\xff");
}
END_TEST

START_TEST(test_escape_quote)
{
	/*
	 * The quote and the backslash, the two characters that end or
	 * escape a quoted log value, never come out as themselves: a line
	 * logged as `line "%s"` keeps the client's text in one value.
	 */
	expect_escape("\"", 1, 64, "\\x22");
	expect_escape("x\" peer=10.9.9.9 error=\"forged", 30, 64,
	    "x\\x22 peer=10.9.9.9 error=\\x22forged");
	expect_escape("\\\"", 2, 64, "\\\\\\x22");
	/* Cut before, never inside, an escaped quote. */
	expect_escape("ab\"cdefg", 8, 10, "ab\\x22...");
	expect_escape("ab\"cd", 5, 8, "ab...");
}
END_TEST

START_TEST(test_escape_word)
{
	char out[64];

	/* A socket path is logged unquoted: it must stay one token. */
	ck_assert_uint_eq(log_escape_word(out, sizeof(out),
	    "/tmp/a peer=10.9.9.9", 20), 26);
	ck_assert_str_eq(out, "/tmp/a\\x20peer\\x3d10.9.9.9");
	log_escape_word(out, sizeof(out), "x\"\\y", 4);
	ck_assert_str_eq(out, "x\\x22\\\\y");
	/* Plain text keeps its spaces and '='. */
	log_escape(out, sizeof(out), "a b=c", 5);
	ck_assert_str_eq(out, "a b=c");
}
END_TEST

START_TEST(test_escape_truncation)
{
	/* Fits exactly: no dots. */
	expect_escape("abcdefghij", 10, 11, "abcdefghij");
	/* One byte short: cut with room for "...". */
	expect_escape("abcdefghij", 10, 10, "abcdef...");
	expect_escape("abcdefghij", 10, 8, "abcd...");
	/* Escapes are never cut in half. */
	expect_escape("ab\x01" "cd", 5, 9, "ab\\x01cd");
	expect_escape("ab\x01" "cd", 5, 8, "ab...");
	expect_escape("ab\x01" "cdefg", 8, 10, "ab\\x01...");
	expect_escape("ab\\cdefgh", 9, 8, "ab\\\\...");
	expect_escape("a\\bcdefgh", 9, 6, "a...");
	/* Tiny buffers: as many dots as fit. */
	expect_escape("abcdef", 6, 5, "a...");
	expect_escape("abcdef", 6, 4, "...");
	expect_escape("abcdef", 6, 3, "..");
	expect_escape("abcdef", 6, 2, ".");
	expect_escape("abcdef", 6, 1, "");
	expect_escape("a", 1, 2, "a");
	expect_escape("\n", 1, 5, "\\x0a");
	expect_escape("\n", 1, 4, "...");
}
END_TEST

START_TEST(test_escape_never_overflows)
{
	static const char *const inputs[] = {
		"", "a", "ab", "abc", "abcd", "abcdefghijklmnop", "\n",
		"\n\n\n", "\\", "\\\\\\\\", "a\x01", "\x01" "a", "\xff\xfe\xfd",
		"ab\\\x1b" "cd\x80" "ef", "\"", "a\"\"b\\\"",
	};
	char buf[32];
	size_t i, outsz, r;

	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		for (outsz = 0; outsz <= 16; outsz++) {
			char *out = malloc(outsz == 0 ? 1 : outsz);

			ck_assert_ptr_nonnull(out);
			r = log_escape(out, outsz, inputs[i],
			    strlen(inputs[i]));
			if (outsz == 0) {
				ck_assert_uint_eq(r, 0);
			} else {
				ck_assert_uint_lt(r, outsz);
				ck_assert_uint_eq(strlen(out), r);
			}
			free(out);
		}
		/* And the bytes after outsz are left alone. */
		for (outsz = 1; outsz <= 8; outsz++) {
			memset(buf, 'Z', sizeof(buf));
			r = log_escape(buf, outsz, inputs[i],
			    strlen(inputs[i]));
			ck_assert_uint_lt(r, outsz);
			ck_assert_int_eq(buf[r], '\0');
			for (size_t j = outsz; j < sizeof(buf); j++)
				ck_assert_int_eq(buf[j], 'Z');
		}
	}
	memset(buf, 'Z', sizeof(buf));
	ck_assert_uint_eq(log_escape(buf, 0, "abc", 3), 0);
	ck_assert_int_eq(buf[0], 'Z');
}
END_TEST

START_TEST(test_escape_long_input)
{
	size_t len = 1 << 20, r;
	char *in = malloc(len), out[64];

	ck_assert_ptr_nonnull(in);
	memset(in, '\n', len);
	r = log_escape(out, sizeof(out), in, len);
	/* 15 whole escapes (60 bytes) and "..." in 63. */
	ck_assert_uint_eq(r, 63);
	ck_assert_str_eq(out + 56, "\\x0a...");
	free(in);
}
END_TEST

/* ---- stderr capture ---------------------------------------------------- */

struct capture {
	int	 saved;		/* the real fd 2 */
	int	 fd;		/* the file fd 2 now points at */
};

static void
capture_start(struct capture *c)
{
	char path[] = "/tmp/check_log.XXXXXX";

	c->fd = mkstemp(path);
	ck_assert_int_ge(c->fd, 0);
	unlink(path);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	ck_assert_int_ge(c->saved, 0);
	ck_assert_int_eq(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restore fd 2 and return what was written, NUL-terminated (free it). */
static char *
capture_end(struct capture *c)
{
	struct stat st;
	char *s;
	ssize_t n;

	ck_assert_int_eq(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	ck_assert_int_eq(fstat(c->fd, &st), 0);
	s = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(s);
	n = pread(c->fd, s, (size_t)st.st_size, 0);
	ck_assert_int_eq(n, st.st_size);
	s[n] = '\0';
	close(c->fd);
	return s;
}

static void
clean_env(void)
{
	unsetenv("JOURNAL_STREAM");
	unsetenv("INVOCATION_ID");
}

static char *
prefixed(const char *level, const char *rest)
{
	char *s;

	ck_assert_int_ge(asprintf(&s, "echotimed[%ld]: %s: %s",
	    (long)getpid(), level, rest), 0);
	return s;
}

START_TEST(test_stderr_format)
{
	struct capture c;
	char *out, *want;

	clean_env();
	log_open(LOG_TARGET_STDERR, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "stderr");
	capture_start(&c);
	log_msg(LOG_INFO, "listening on %s:%d", "127.0.0.1", 9999);
	log_msg(LOG_ERR, "bind: %s", "Address already in use");
	log_msg(LOG_WARNING, "w");
	log_msg(LOG_NOTICE, "n");
	out = capture_end(&c);
	want = NULL;
	ck_assert_int_ge(asprintf(&want,
	    "echotimed[%ld]: info: listening on 127.0.0.1:9999\n"
	    "echotimed[%ld]: error: bind: Address already in use\n"
	    "echotimed[%ld]: warning: w\n"
	    "echotimed[%ld]: notice: n\n",
	    (long)getpid(), (long)getpid(), (long)getpid(),
	    (long)getpid()), 0);
	ck_assert_str_eq(out, want);
	free(out);
	free(want);
}
END_TEST

START_TEST(test_threshold)
{
	struct capture c;
	char *out, *want;

	clean_env();
	log_open(LOG_TARGET_STDERR, LOG_INFO);
	ck_assert(log_enabled(LOG_INFO));
	ck_assert(log_enabled(LOG_ERR));
	ck_assert(!log_enabled(LOG_DEBUG));
	capture_start(&c);
	log_msg(LOG_DEBUG, "dropped %d", 1);
	log_fields(LOG_DEBUG, NULL, "dropped %d", 2);
	log_msg(LOG_INFO, "kept");
	log_set_level(LOG_DEBUG);
	ck_assert(log_enabled(LOG_DEBUG));
	log_msg(LOG_DEBUG, "now shown");
	log_open(LOG_TARGET_STDERR, LOG_ERR);
	ck_assert(!log_enabled(LOG_WARNING));
	log_msg(LOG_WARNING, "dropped %d", 3);
	log_msg(LOG_ERR, "still");
	/* A facility in the priority does not change its level. */
	log_msg(LOG_DAEMON | LOG_ERR, "with facility");
	log_msg(LOG_DAEMON | LOG_INFO, "dropped %d", 4);
	out = capture_end(&c);
	ck_assert_ptr_null(strstr(out, "dropped"));
	want = prefixed("info", "kept\n");
	ck_assert_ptr_nonnull(strstr(out, want));
	free(want);
	want = prefixed("debug", "now shown\n");
	ck_assert_ptr_nonnull(strstr(out, want));
	free(want);
	want = prefixed("error", "with facility\n");
	ck_assert_ptr_nonnull(strstr(out, want));
	free(want);
	free(out);
}
END_TEST

START_TEST(test_stderr_fields)
{
	struct log_fields f = LOG_FIELDS_INIT, none = LOG_FIELDS_INIT;
	struct capture c;
	char *out, *want;

	clean_env();
	log_open(LOG_TARGET_STDERR, LOG_DEBUG);
	f.peer = "127.0.0.1:40000";
	f.transport = "tcp";
	f.listener = "main";
	f.duration_ms = 1234;
	f.lines = 0;
	f.error = "Connection reset by peer";
	f.cred = "uid=0 gid=0 pid=42";
	f.proxy = "127.0.0.1:5555";
	capture_start(&c);
	log_fields(LOG_INFO, &f, "session closed");
	log_fields(LOG_INFO, &none, "no fields");
	f.peer = "[::1]:7";
	f.transport = "udp";
	f.listener = "";
	f.duration_ms = -1;
	f.lines = -1;
	f.error = "a \"quoted\" \\ thing";
	f.cred = NULL;
	f.proxy = NULL;
	log_fields(LOG_DEBUG, &f, "dropped datagram");
	out = capture_end(&c);
	ck_assert_int_ge(asprintf(&want,
	    "echotimed[%ld]: info: session closed peer=127.0.0.1:40000 "
	    "proxy=127.0.0.1:5555 transport=tcp listener=main "
	    "duration_ms=1234 lines=0 "
	    "error=\"Connection reset by peer\" "
	    "peer_cred=\"uid=0 gid=0 pid=42\"\n"
	    "echotimed[%ld]: info: no fields\n"
	    "echotimed[%ld]: debug: dropped datagram peer=[::1]:7 "
	    "transport=udp listener=\"\" "
	    "error=\"a \\\"quoted\\\" \\\\ thing\"\n",
	    (long)getpid(), (long)getpid(), (long)getpid()), 0);
	ck_assert_str_eq(out, want);
	free(out);
	free(want);
}
END_TEST

START_TEST(test_single_line_and_errno)
{
	struct log_fields f = LOG_FIELDS_INIT;
	struct capture c;
	char *out, *want, big[5000];

	clean_env();
	log_open(LOG_TARGET_STDERR, LOG_INFO);
	capture_start(&c);
	log_msg(LOG_INFO, "a\nb\rc\n");
	f.error = "x\ny";
	log_fields(LOG_INFO, &f, "e");
	errno = EBADF;
	log_msg(LOG_ERR, "close: %m");
	ck_assert_int_eq(errno, EBADF);
	errno = ENOMEM;
	log_msg(LOG_DEBUG, "dropped");
	ck_assert_int_eq(errno, ENOMEM);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_msg(LOG_INFO, "%s", big);
	out = capture_end(&c);
	ck_assert_int_ge(asprintf(&want,
	    "echotimed[%ld]: info: a b c \n"
	    "echotimed[%ld]: info: e error=\"x y\"\n"
	    "echotimed[%ld]: error: close: %s\n",
	    (long)getpid(), (long)getpid(), (long)getpid(),
	    strerror(EBADF)), 0);
	ck_assert_int_eq(strncmp(out, want, strlen(want)), 0);
	/* The long one: cut, marked, still exactly one line. */
	{
		char *last = out + strlen(want);
		size_t n = strlen(last);

		ck_assert_uint_lt(n, 2100);
		ck_assert_uint_gt(n, 1900);
		ck_assert_ptr_eq(strchr(last, '\n'), last + n - 1);
		ck_assert_int_eq(strncmp(last + n - 4, "...\n", 4), 0);
	}
	free(out);
	free(want);
}
END_TEST

START_TEST(test_journal_stream_prefix)
{
	struct capture c;
	struct stat st;
	char env[64], *out;

	clean_env();
	capture_start(&c);
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev,
	    (uintmax_t)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_open(LOG_TARGET_STDERR, LOG_DEBUG);
	log_msg(LOG_INFO, "hello");
	log_msg(LOG_DEBUG, "dbg");
	log_msg(LOG_ERR, "bad");
	/* auto picks the journal when fd 2 is the journal's stream. */
	log_open(LOG_TARGET_AUTO, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "journal");
	/* A stream that is not fd 2 does not count. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_open(LOG_TARGET_STDERR, LOG_INFO);
	log_msg(LOG_INFO, "plain");
	log_open(LOG_TARGET_AUTO, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "stderr");
	out = capture_end(&c);
	{
		char *want = prefixed("info", "plain\n"), *all;

		ck_assert_int_ge(asprintf(&all, "<6>hello\n<7>dbg\n<3>bad\n%s",
		    want), 0);
		ck_assert_str_eq(out, all);
		free(all);
		free(want);
	}
	free(out);
	clean_env();
}
END_TEST

START_TEST(test_auto_without_systemd)
{
	clean_env();
	log_open(LOG_TARGET_AUTO, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "stderr");
	if (access("/run/systemd/journal/socket", F_OK) != 0) {
		setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
		log_open(LOG_TARGET_AUTO, LOG_INFO);
		ck_assert_str_eq(log_target_in_use(), "stderr");
		/* An explicit journal without journald falls back too. */
		log_open(LOG_TARGET_JOURNAL, LOG_INFO);
		ck_assert_str_eq(log_target_in_use(), "stderr");
	}
	log_open(LOG_TARGET_SYSLOG, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "syslog");
	log_msg(LOG_INFO, "to syslog, maybe nowhere");
	log_open(LOG_TARGET_STDERR, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "stderr");
	clean_env();
}
END_TEST

/* ---- threads and fork -------------------------------------------------- */

#define NTHREADS	8
#define NLINES		500

static void *
spam(void *arg)
{
	long id = (long)arg;
	int i;

	for (i = 0; i < NLINES; i++)
		log_msg(LOG_INFO, "thread %ld line %d %s", id, i,
		    "padding padding padding padding padding padding");
	return NULL;
}

START_TEST(test_threads_lines_whole)
{
	pthread_t t[NTHREADS];
	struct capture c;
	char *out, *line, *save = NULL, *head;
	long i;
	int n = 0;

	clean_env();
	log_open(LOG_TARGET_STDERR, LOG_INFO);
	capture_start(&c);
	for (i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, spam,
		    (void *)i), 0);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	out = capture_end(&c);
	head = prefixed("info", "thread ");
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		ck_assert_int_eq(strncmp(line, head, strlen(head)), 0);
		ck_assert_ptr_nonnull(strstr(line, "padding padding "
		    "padding padding padding padding"));
	}
	ck_assert_int_eq(n, NTHREADS * NLINES);
	free(head);
	free(out);
}
END_TEST

static volatile int spamming;

static void *
spam_until_stopped(void *arg)
{
	(void)arg;
	while (spamming)
		log_msg(LOG_INFO, "busy");
	return NULL;
}

/* A child forked while other threads log must be able to log itself. */
START_TEST(test_fork_while_logging)
{
	pthread_t t[4];
	int i, status, devnull, saved;

	clean_env();
	log_open(LOG_TARGET_STDERR, LOG_INFO);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(devnull, 0);
	saved = dup(STDERR_FILENO);
	dup2(devnull, STDERR_FILENO);
	spamming = 1;
	log_before_threads();	/* as the models do: without it, deadlocks */
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL,
		    spam_until_stopped, NULL), 0);
	for (i = 0; i < 200; i++) {
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			/*
			 * A deadlock here is killed by the alarm (Check's
			 * own SIGALRM handler would kill the whole group).
			 */
			signal(SIGALRM, SIG_DFL);
			alarm(5);
			log_msg(LOG_INFO, "child %d", i);
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child %d deadlocked or died (status %#x)", i, status);
	}
	spamming = 0;
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(devnull);
}
END_TEST

/* ---- journal and syslog in a private mount namespace -------------------- */

/*
 * Enter a private mount namespace (root only) so that sockets can be bound
 * where libsystemd and glibc look for them.  Only in a forked test process:
 * the namespace must die with it.
 */
static int
private_mounts(void)
{
	if (!check_forking()) {
		printf("SKIP: namespace tests need CK_FORK=yes\n");
		return -1;
	}
	if (unshare(CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1) {
		printf("SKIP: no private mount namespace: %s\n",
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
bind_dgram(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* One datagram, NUL-terminated, within 2 s; "" if none. */
static void
recv_dgram(int fd, char *buf, size_t size)
{
	struct timeval tv = { 2, 0 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, size - 1, 0);
	buf[n < 0 ? 0 : n] = '\0';
}

/* Value of KEY in a native-protocol datagram of KEY=VALUE lines. */
static const char *
field(const char *dgram, const char *key, char *val, size_t size)
{
	size_t klen = strlen(key);
	const char *p = dgram, *nl;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(val, size, "%.*s", (int)(nl - p - klen - 1),
			    p + klen + 1);
			return val;
		}
		p = *nl == '\n' ? nl + 1 : nl;
	}
	return NULL;
}

#define ck_field(d, k, want) do {					\
	char v_[512];							\
	const char *got_ = field((d), (k), v_, sizeof(v_));		\
	ck_assert_msg(got_ != NULL, "field %s missing in [%s]", (k), (d)); \
	ck_assert_str_eq(got_, (want));					\
} while (0)

static void
mount_run_systemd(void)
{
	const char *where = access("/run/systemd", F_OK) == 0 ?
	    "/run/systemd" : "/run";

	ck_assert_int_eq(mount("tmpfs", where, "tmpfs", 0, "mode=0755"), 0);
	mkdir("/run/systemd", 0755);
	ck_assert_int_eq(mkdir("/run/systemd/journal", 0755), 0);
}

START_TEST(test_journal_fields)
{
	struct log_fields f = LOG_FIELDS_INIT;
	char d[8192], v[64];
	int fd;

	if (private_mounts() == -1)
		return;
	mount_run_systemd();
	clean_env();
	/* No journald yet: explicit journal falls back to stderr. */
	log_open(LOG_TARGET_JOURNAL, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "stderr");

	fd = bind_dgram("/run/systemd/journal/socket");
	setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
	log_open(LOG_TARGET_AUTO, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "journal");

	f.peer = "127.0.0.1:40000";
	f.transport = "tcp";
	f.listener = "main";
	f.duration_ms = 1234;
	f.lines = 7;
	f.error = "Connection reset by peer";
	f.cred = "uid=0 gid=0 pid=42";
	f.proxy = "[::1]:5555";
	errno = EPIPE;
	log_fields(LOG_NOTICE, &f, "session closed after %d lines", 7);
	ck_assert_int_eq(errno, EPIPE);
	recv_dgram(fd, d, sizeof(d));
	ck_field(d, "MESSAGE", "session closed after 7 lines");
	ck_field(d, "PRIORITY", "5");
	ck_field(d, "SYSLOG_IDENTIFIER", "echotimed");
	ck_field(d, "PEER", "127.0.0.1:40000");
	ck_field(d, "TRANSPORT", "tcp");
	ck_field(d, "LISTENER", "main");
	ck_field(d, "DURATION_MS", "1234");
	ck_field(d, "LINES", "7");
	ck_field(d, "ERROR", "Connection reset by peer");
	/* Every field at once: none is crowded out. */
	ck_field(d, "PEER_CRED", "uid=0 gid=0 pid=42");
	ck_field(d, "PROXY", "[::1]:5555");
	ck_assert_ptr_null(field(d, "CODE_FILE", v, sizeof(v)));

	/* Unset members are left out; the message is one line. */
	log_msg(LOG_INFO, "two\nlines");
	recv_dgram(fd, d, sizeof(d));
	ck_field(d, "MESSAGE", "two lines");
	ck_field(d, "PRIORITY", "6");
	ck_assert_ptr_null(field(d, "PEER", v, sizeof(v)));
	ck_assert_ptr_null(field(d, "LINES", v, sizeof(v)));
	ck_assert_ptr_null(field(d, "DURATION_MS", v, sizeof(v)));

	log_msg(LOG_DEBUG, "below threshold");
	log_msg(LOG_ERR, "after");
	recv_dgram(fd, d, sizeof(d));
	ck_field(d, "MESSAGE", "after");
	close(fd);
}
END_TEST

/* When the journal refuses a message it goes to stderr, not nowhere. */
START_TEST(test_journal_failure_falls_back)
{
	struct capture c;
	char *out, *want;
	int fd;

	if (private_mounts() == -1)
		return;
	mount_run_systemd();
	clean_env();
	/* A socket nobody reads any more: sendmsg fails ECONNREFUSED. */
	fd = bind_dgram("/run/systemd/journal/socket");
	log_open(LOG_TARGET_JOURNAL, LOG_INFO);
	ck_assert_str_eq(log_target_in_use(), "journal");
	close(fd);
	capture_start(&c);
	log_msg(LOG_WARNING, "journal gone");
	out = capture_end(&c);
	want = prefixed("warning", "journal gone\n");
	ck_assert_str_eq(out, want);
	free(want);
	free(out);
}
END_TEST

START_TEST(test_syslog_target)
{
	char d[2048], *want;
	int fd;

	if (private_mounts() == -1)
		return;
	/* /dev/log is fixed in glibc; a tmpfs on /dev of this process only. */
	ck_assert_int_eq(mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755"), 0);
	fd = bind_dgram("/dev/log");
	log_open(LOG_TARGET_SYSLOG, LOG_INFO);
	log_fields(LOG_WARNING, &(struct log_fields){ .peer = "1.2.3.4:5",
	    .duration_ms = -1, .lines = 3 }, "a\nb");
	recv_dgram(fd, d, sizeof(d));
	/* <28> = LOG_DAEMON | LOG_WARNING; then a timestamp. */
	ck_assert_int_eq(strncmp(d, "<28>", 4), 0);
	ck_assert_int_ge(asprintf(&want, "echotimed[%ld]: a b peer=1.2.3.4:5 "
	    "lines=3", (long)getpid()), 0);
	ck_assert_msg(strstr(d, want) != NULL, "got [%s]", d);
	free(want);
	log_open(LOG_TARGET_STDERR, LOG_INFO);
	close(fd);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = tcase_create("escape");
	tcase_add_test(tc, test_escape_plain);
	tcase_add_test(tc, test_escape_control);
	tcase_add_test(tc, test_escape_backslash_and_high);
	tcase_add_test(tc, test_escape_quote);
	tcase_add_test(tc, test_escape_word);
	tcase_add_test(tc, test_escape_truncation);
	tcase_add_test(tc, test_escape_never_overflows);
	tcase_add_test(tc, test_escape_long_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("stderr");
	tcase_add_test(tc, test_stderr_format);
	tcase_add_test(tc, test_threshold);
	tcase_add_test(tc, test_stderr_fields);
	tcase_add_test(tc, test_single_line_and_errno);
	tcase_add_test(tc, test_journal_stream_prefix);
	tcase_add_test(tc, test_auto_without_systemd);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_threads_lines_whole);
	tcase_add_test(tc, test_fork_while_logging);
	suite_add_tcase(s, tc);

	tc = tcase_create("namespaced");
	tcase_add_test(tc, test_journal_fields);
	tcase_add_test(tc, test_journal_failure_falls_back);
	tcase_add_test(tc, test_syslog_target);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(log_suite)
