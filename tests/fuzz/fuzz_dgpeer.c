/*
 * fuzz_dgpeer.c - libFuzzer harness for the parsing of a unix-dgram
 * sender's address (sun_path bytes the sender chose).
 *
 * The input is the sun_path of an AF_UNIX address of exactly that length
 * (so ASan sees any read past it).  dgpeer_classify() must agree with a
 * plain reading of the bytes; the components of a path must hold no '/',
 * never be empty, and joined with single slashes give the path with its
 * runs of slashes collapsed; dgpeer_open() without credentials must decide
 * from the address alone, never opening anything.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "dgpeer.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)
#define OFF		offsetof(struct sockaddr_un, sun_path)

/* path with every run of slashes made one, without leading or trailing. */
static void
collapse(const char *path, char *out)
{
	size_t o = 0;

	for (; *path; path++) {
		if (*path == '/') {
			if (o > 0 && out[o - 1] != '/')
				out[o++] = '/';
			continue;
		}
		out[o++] = *path;
	}
	if (o > 0 && out[o - 1] == '/')
		o--;
	out[o] = '\0';
}

static void
check_components(const char *path)
{
	char joined[2 * DGPEER_PATH_MAX], want[DGPEER_PATH_MAX];
	size_t pos = 0, start, len, o = 0, n = 0, plen = strlen(path);

	while (dgpeer_component(path, &pos, &start, &len)) {
		CHECK(len > 0);
		CHECK(start + len <= plen);
		CHECK(pos == start + len);
		CHECK(memchr(path + start, '/', len) == NULL);
		CHECK(path[pos] == '\0' || path[pos] == '/');
		if (o > 0)
			joined[o++] = '/';
		memcpy(joined + o, path + start, len);
		o += len;
		n++;
		CHECK(n <= DGPEER_PATH_MAX / 2);
	}
	CHECK(pos == plen);
	joined[o] = '\0';
	collapse(path, want);
	CHECK(strcmp(joined, want) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[DGPEER_PATH_MAX];
	struct dgpeer_cred none = { .known = false };
	struct sockaddr *sa;
	struct dgpeer p;
	enum dgpeer_kind k;
	size_t n;
	int r;

	if (size > sizeof(struct sockaddr_storage) - OFF)
		return 0;
	if ((sa = malloc(OFF + size)) == NULL)
		return 0;
	sa->sa_family = AF_UNIX;
	memcpy((char *)sa + OFF, data, size);
	n = strnlen((const char *)data, size);

	memset(path, 0xa5, sizeof(path));
	k = dgpeer_classify(sa, (socklen_t)(OFF + size), path);
	if (size == 0)
		CHECK(k == DGPEER_UNBOUND);
	else if (data[0] == '\0')
		CHECK(k == DGPEER_ABSTRACT);
	else if (n >= DGPEER_PATH_MAX)
		CHECK(k == DGPEER_INVALID);
	else if (data[0] != '/')
		CHECK(k == DGPEER_RELATIVE);
	else {
		CHECK(k == DGPEER_PATH);
		CHECK(strlen(path) == n);
		CHECK(memcmp(path, data, n) == 0);
		check_components(path);
	}

	/* Without credentials nothing is opened: the address decides. */
	r = dgpeer_open(&p, sa, (socklen_t)(OFF + size), &none);
	CHECK(p.fd == -1);
	switch (k) {
	case DGPEER_UNBOUND:	CHECK(r == -EDESTADDRREQ); break;
	case DGPEER_ABSTRACT:	CHECK(r == 0 && p.sa == sa); break;
	case DGPEER_RELATIVE:	CHECK(r == -EXDEV); break;
	case DGPEER_INVALID:	CHECK(r == -ENAMETOOLONG); break;
	case DGPEER_PATH:	CHECK(r == -ENODATA); break;
	}
	dgpeer_close(&p);
	free(sa);
	return 0;
}
