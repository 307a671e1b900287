# echotimed - GNU make, no autotools.
#
#   make            build ./echotimed
#   make check      unit tests (Check) and integration tests (real binary)
#   make deps       install the Debian 12 build and test dependencies (root)
#   make run        build and run in the foreground on the built-in defaults
#   make install    PREFIX, DESTDIR, sbindir, sysconfdir, mandir, unitdir
#   make uninstall  reverse of install

PREFIX		?= /usr/local
DESTDIR		?=
sbindir		?= $(PREFIX)/sbin
sysconfdir	?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
mandir		?= $(PREFIX)/share/man
unitdir		?= $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)

VERSION		:= 1.0.0
CC		?= cc
PKGS		:= libconfig libsystemd
PKG_CFLAGS	:= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	:= $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lconfig -lsystemd)
CHECK_CFLAGS	:= $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS	:= $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)

WARNINGS	:= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
		   -Wpointer-arith -Wformat=2 -Wundef -Wcast-align \
		   -Wwrite-strings -Wno-unused-parameter
ifneq ($(CI),)
WARNINGS	+= -Werror
endif
OPTFLAGS	?= -O2 -g
CFLAGS		?= $(OPTFLAGS)
ALL_CFLAGS	 = -std=gnu11 $(WARNINGS) $(CFLAGS) -D_GNU_SOURCE \
		   -DVERSION='"$(VERSION)"' -DSYSCONFDIR='"$(sysconfdir)"' \
		   -pthread $(PKG_CFLAGS) -MMD -MP
LDLIBS		:= $(PKG_LIBS) -pthread

B		?= build
SRCS		:= $(wildcard src/*.c)
LIB_SRCS	:= $(filter-out src/main.c,$(SRCS))
LIB_OBJS	:= $(LIB_SRCS:src/%.c=$(B)/%.o)
UNIT_SRCS	:= $(wildcard tests/unit/check_*.c)
UNIT_BINS	:= $(UNIT_SRCS:tests/unit/%.c=$(B)/%)

all: echotimed

echotimed: $(B)/main.o $(B)/libechotimed.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/%.o: src/%.c | $(B)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libechotimed.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/check_%: tests/unit/check_%.c $(B)/libechotimed.a
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Isrc $(LDFLAGS) -o $@ $^ \
	    $(CHECK_LIBS) $(LDLIBS)

$(B):
	mkdir -p $(B)

# Every test, in the order a failure is cheapest to read.
check: unit integration

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CK_FORK=yes ./$$t; done

integration: echotimed
	python3 tests/integration/run.py $(TESTS)

# Debian 12 build and test dependencies; idempotent.
DEB_PKGS := build-essential pkg-config libconfig-dev libsystemd-dev check \
	    netcat-openbsd socat telnet mandoc python3 procps iproute2 \
	    systemd systemd-container clang libclang-rt-14-dev valgrind
deps:
	@if dpkg-query -W -f='$${Status}\n' $(DEB_PKGS) 2>/dev/null | \
	    grep -qv '^install ok installed$$' || \
	    ! dpkg-query -W $(DEB_PKGS) >/dev/null 2>&1; then \
		apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y \
		    --no-install-recommends $(DEB_PKGS); \
	else echo "deps: all Debian packages present"; fi

run: echotimed
	./echotimed -c /dev/null -l info || true

lint-man:
	mandoc -Tlint -W warning man/echotimed.8 man/echotimed.conf.5

clean:
	rm -rf $(B) echotimed

.PHONY: all check unit integration deps run lint-man clean install uninstall

-include $(wildcard $(B)/*.d)
