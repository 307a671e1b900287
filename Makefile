# echotimed - GNU make, no autotools.
#
#   make            build ./echotimed
#   make check      layering (check-deps), unit tests (Check) and integration
#                   tests (real binary)
#   make deps       install the Debian 12 build, test and packaging tools (root)
#   make run        build and run in the foreground on the built-in defaults
#   make install    PREFIX, DESTDIR, sbindir, sysconfdir, mandir, unitdir
#   make uninstall  reverse of install
#   make deb        a Debian package in build/deb/ (debhelper, from conf/debian)
#
# CPPFLAGS, CFLAGS and LDFLAGS from the command line or the environment
# (dpkg-buildflags) are honoured; the hardening flags below are added to
# them either way.

PREFIX		?= /usr/local
DESTDIR		?=
sbindir		?= $(PREFIX)/sbin
sysconfdir	?= /etc
mandir		?= $(PREFIX)/share/man
# The distribution's unit directory for PREFIX=/usr; any other prefix keeps
# its units below itself (systemd also reads /usr/local/lib/systemd/system).
unitdir		?= $(if $(filter /usr,$(PREFIX)),$(shell pkg-config \
		   --variable=systemdsystemunitdir systemd 2>/dev/null || \
		   echo /lib/systemd/system),$(PREFIX)/lib/systemd/system)

VERSION		:= 1.0.0
CC		?= cc
PKGS		:= libconfig libsystemd
PKG_CFLAGS	:= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libsystemd's headers only: src/sdlib.c dlopen()s the library when a
# systemd feature is in use, so that a start without one (inetd mode under
# a super-server) does not map and relocate its whole dependency chain.
# dlopen() is in glibc's libc since 2.34; -ldl is an empty stub there.
PKG_LIBS	:= $(shell pkg-config --libs libconfig 2>/dev/null || echo -lconfig) -ldl
CHECK_CFLAGS	:= $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS	:= $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)

WARNINGS	:= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
		   -Wpointer-arith -Wformat=2 -Wundef \
		   -Wwrite-strings -Wno-unused-parameter
ifneq ($(CI),)
WARNINGS	+= -Werror
endif
OPTFLAGS	?= -O2 -g
CFLAGS		?= $(OPTFLAGS)
CPPFLAGS	?=
# The hardening Debian's dpkg-buildflags gives, for every build; set
# HARDEN= to leave it out (the sanitizer builds do).  FORTIFY_SOURCE needs
# an optimizing build and is not defined twice when CPPFLAGS has it.
HARDEN		?= yes
HARDEN_CFLAGS	 = $(if $(HARDEN),-fstack-protector-strong -fPIE \
		   $(if $(findstring _FORTIFY_SOURCE,$(CPPFLAGS)),,$(if \
		   $(filter-out -O0,$(filter -O%,$(CFLAGS))),-U_FORTIFY_SOURCE \
		   -D_FORTIFY_SOURCE=2)))
# Full RELRO with every symbol bound at start: hardening, and a forked
# session child never runs the dynamic linker's lazy binding, which made
# each fork-model child fault in a dozen more pages (issue 7).
BIND_LDFLAGS	:= -Wl,-z,relro -Wl,-z,now
HARDEN_LDFLAGS	 = $(if $(HARDEN),-pie) $(BIND_LDFLAGS)
ALL_CFLAGS	 = -std=gnu11 $(WARNINGS) $(HARDEN_CFLAGS) $(CPPFLAGS) \
		   $(CFLAGS) -D_GNU_SOURCE \
		   -DVERSION='"$(VERSION)"' -DSYSCONFDIR='"$(sysconfdir)"' \
		   -pthread $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS	 = $(HARDEN_LDFLAGS) $(LDFLAGS)
LDLIBS		:= $(PKG_LIBS) -pthread

B		?= build
SRCS		:= $(wildcard src/*.c)
LIB_SRCS	:= $(filter-out src/main.c,$(SRCS))
LIB_OBJS	:= $(LIB_SRCS:src/%.c=$(B)/%.o)
# One binary per suite file; check_main.c is the main() they all share.
UNIT_SRCS	:= $(filter-out tests/unit/check_main.c,$(wildcard tests/unit/check_*.c))
UNIT_BINS	:= $(UNIT_SRCS:tests/unit/%.c=$(B)/%)

BIN		?= echotimed

all: $(BIN)

$(BIN): $(B)/main.o $(B)/libechotimed.a $(B)/flags
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(filter-out $(B)/flags,$^) \
	    $(LDLIBS)

$(B)/%.o: src/%.c $(B)/flags | $(B)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Everything the compiler and linker are given, sysconfdir (the default
# configuration path) and VERSION included: rewritten only when it
# changes, so that "make install sysconfdir=/opt/etc" or other CFLAGS
# rebuild what embeds them, and an unchanged build stays up to date.
# Whether valgrind's header is there counts too: nofork.c builds its
# client requests in only then, and make valgrind needs them.
VALGRIND_H	:= $(wildcard /usr/include/valgrind/memcheck.h)
$(B)/flags: FORCE | $(B)
	$(file >$@.new,$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(LDLIBS) $(VALGRIND_H))
	@cmp -s $@.new $@ && rm -f $@.new || mv -f $@.new $@

$(B)/libechotimed.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/check_main.o: tests/unit/check_main.c $(B)/flags | $(B)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(B)/check_%: tests/unit/check_%.c $(B)/check_main.o $(B)/libechotimed.a $(B)/flags
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Isrc $(ALL_LDFLAGS) -o $@ \
	    $(filter %.c %.o %.a,$^) $(CHECK_LIBS) $(LDLIBS)

# The sdlib suite compares sdlib.c's socket checks with libsystemd's own.
$(B)/check_sdlib: LDLIBS += $(shell pkg-config --libs libsystemd \
		   2>/dev/null || echo -lsystemd)

$(B):
	mkdir -p $(B)

# Every test, in the order a failure is cheapest to read.
check: check-deps unit integration

# The layers of README "Layout": no module links to one above it, and no
# two modules need each other (tests/check_deps.py reads the objects).
check-deps: $(B)/main.o $(LIB_OBJS)
	python3 tests/check_deps.py $^

CK_FORK		?= yes
unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CK_FORK=$(CK_FORK) ./$$t; done

integration: $(BIN)
	python3 tests/integration/run.py $(TESTS)

# Debian 12 packages, idempotent: what "make" and "make run" need, what
# the tests add, and what "make deb" adds.
BUILD_PKGS	:= build-essential pkg-config libconfig-dev libsystemd-dev
TEST_PKGS	:= check netcat-openbsd socat telnet mandoc python3 procps \
		   iproute2 systemd systemd-container clang libclang-rt-14-dev \
		   valgrind strace haproxy ucspi-tcp
PACKAGING_PKGS	:= debhelper lintian devscripts
DEB_PKGS	:= $(BUILD_PKGS) $(TEST_PKGS) $(PACKAGING_PKGS)
SUDO		:= $(if $(filter 0,$(shell id -u)),,sudo)
# "make deps" installs them all; "make deps-build" only what "make run" needs.
deps: PKGS = $(DEB_PKGS)
deps-build: PKGS = $(BUILD_PKGS)
deps deps-build:
	@if dpkg-query -W -f='$${Status}\n' $(PKGS) 2>/dev/null | \
	    grep -qv '^install ok installed$$' || \
	    ! dpkg-query -W $(PKGS) >/dev/null 2>&1; then \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
		    --no-install-recommends $(PKGS); \
	else echo "$@: all Debian packages present"; fi

# The built-in defaults (TCP 127.0.0.1:9999, thread model), whatever
# /etc holds: an empty file leaves every setting at its default.
run: echotimed
	./echotimed $(if $(wildcard $(sysconfdir)/echotimed/echotimed.conf),-c /dev/null)

# ---- robustness runs (each builds into its own directory) ----

SAN_CFLAGS	:= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
		   -fno-sanitize-recover=all
SAN_ENV		:= ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# make check with ASan+UBSan: unit tests and the integration suite.
asan:
	$(MAKE) B=build/asan BIN=build/asan/echotimed CC=clang HARDEN= \
	    CFLAGS="$(SAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" \
	    build/asan/echotimed
	$(MAKE) B=build/asan BIN=build/asan/echotimed CC=clang HARDEN= \
	    CFLAGS="$(SAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" \
	    CK_FORK=no $(SAN_ENV) unit
	$(SAN_ENV) ECHOTIMED=$(CURDIR)/build/asan/echotimed ECHOTIMED_SLOW=2 \
	    python3 tests/integration/run.py $(TESTS)

# The daemon under ThreadSanitizer, for the thread (and event) model.
tsan:
	$(MAKE) B=build/tsan BIN=build/tsan/echotimed CC=clang HARDEN= \
	    CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	    build/tsan/echotimed
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	ECHOTIMED=$(CURDIR)/build/tsan/echotimed ECHOTIMED_SLOW=3 \
	    python3 tests/integration/run.py $(or $(TESTS),thread)

# Integration tests with the daemon (and its children) under memcheck.
# Not test_lifecycle: its privilege-drop tests leave valgrind unable to
# write its reports, and a child forked while session threads run shows
# those threads' buffers as lost (the child never had the threads).
valgrind: $(BIN)
	ECHOTIMED_WRAP="valgrind -q --trace-children=yes --leak-check=full \
	    --show-leak-kinds=definite --errors-for-leak-kinds=definite" \
	ECHOTIMED_SLOW=10 python3 tests/integration/run.py $(or $(TESTS),basic matrix abuse)

# libFuzzer targets; FUZZ_SECONDS each (CI runs a short smoke).
FUZZ_SECONDS	?= 60
FUZZERS		:= $(patsubst tests/fuzz/fuzz_%.c,build/fuzz/fuzz_%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_FLAGS	:= -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 \
		   -D_GNU_SOURCE -DSYSCONFDIR='"/etc"' -Isrc $(PKG_CFLAGS)
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRCS) | build/fuzz
	clang $(FUZZ_FLAGS) -o $@ $< $(filter-out src/main.c,$(LIB_SRCS)) \
	    $(PKG_LIBS) -pthread
build/fuzz:
	mkdir -p $@
fuzz: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$${f##*/fuzz_}; \
	    mkdir -p build/fuzz/corpus-$$n; \
	    echo "== $$f ($(FUZZ_SECONDS) s)"; \
	    if ! $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        build/fuzz/corpus-$$n tests/fuzz/corpus/$$n \
	        > build/fuzz/$$n.log 2>&1; then \
	        tail -60 build/fuzz/$$n.log; echo "fuzz: $$f FAILED"; exit 1; fi; \
	    grep -E 'stat::number_of_executed_units|^Done' build/fuzz/$$n.log; \
	done
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=20

# The benchmark's minimal C reference servers, built as the daemon is.
BENCH_REFS	:= $(patsubst tests/bench/peers/%.c,$(B)/%,$(wildcard tests/bench/peers/ref_*.c))
$(B)/ref_%: tests/bench/peers/ref_%.c tests/bench/peers/ref_common.h | $(B)
	$(CC) $(ALL_CFLAGS) $(BIND_LDFLAGS) $(LDFLAGS) -o $@ $<
bench-refs: $(BENCH_REFS)

bench: $(BIN) $(BENCH_REFS)
	bash tests/bench/bench.sh

# The whole benchmark in about a minute: it times nothing that can fail,
# but every reply of every run is verified and any error fails it.
bench-smoke: $(BIN) $(BENCH_REFS)
	BENCH_SECONDS=1 BENCH_ROUNDS=1 BENCH_PAIRS=1 PAIR_SECONDS=1 BENCH_ATONCE=1 \
	    BENCH_IDLE_CLIENTS=1000 BENCH_IDLE_SECONDS=10 bash tests/bench/bench.sh

# A real systemd 252 in systemd-nspawn: the package built by "make deb"
# installed with apt, reload, restart under load, journal, an upgrade under
# load, purge.  Needs root and the packaging tools; exit 77 means it cannot
# boot here, a skip by hand but a failure in CI (CI set), where it must run.
check-systemd:
	@bash tests/systemd/nspawn-test.sh; rc=$$?; \
	 if [ $$rc = 77 ] && [ -z "$(CI)" ]; then echo "check-systemd: skipped"; exit 0; fi; \
	 if [ $$rc = 77 ]; then echo "check-systemd: cannot run, and CI requires it"; fi; exit $$rc

# ---- Debian package ----

# The package is built from a copy of the tree with conf/debian as its
# debian/ directory: $(DEB_DIR)/echotimed_$(VERSION)_<arch>.deb.
DEB_DIR		?= build/deb
DEB_TREE	:= $(DEB_DIR)/echotimed-$(VERSION)
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || \
	    { echo "make deb: needs debhelper (make deps)"; exit 1; }
	rm -rf $(DEB_TREE) $(DEB_DIR)/root $(DEB_DIR)/echotimed_* \
	    $(DEB_DIR)/echotimed-dbgsym_*
	mkdir -p $(DEB_TREE)/tests
	cp -r Makefile README.md src conf systemd man $(DEB_TREE)/
	cp -r tests/unit $(DEB_TREE)/tests/
	mv $(DEB_TREE)/conf/debian $(DEB_TREE)/debian
	@v=$$(cd $(DEB_TREE) && dpkg-parsechangelog -S Version); \
	 case "$$v" in $(VERSION)|$(VERSION)[+~-]*) ;; \
	 *) echo "make deb: debian/changelog says $$v, the Makefile $(VERSION)"; \
	    exit 1 ;; esac
	cd $(DEB_TREE) && dpkg-buildpackage -us -uc -b

# lintian (no error, no warning) and hardening-check on the built package.
# Control flow protection is not asked for: Debian 12's C start files
# (Scrt1.o) carry no IBT/SHSTK marks, so no program linked there has them.
lint-deb:
	@set -e; deb=$$(ls $(DEB_DIR)/echotimed_*.deb); \
	 echo "== lintian $$deb"; lintian --fail-on error,warning "$$deb"; \
	 rm -rf $(DEB_DIR)/root; dpkg-deb -x "$$deb" $(DEB_DIR)/root; \
	 echo "== hardening-check /usr/sbin/echotimed"; \
	 hardening-check --nocfprotection $(DEB_DIR)/root/usr/sbin/echotimed

# ---- installation ----

install: echotimed
	install -d $(DESTDIR)$(sbindir) $(DESTDIR)$(mandir)/man8 \
	    $(DESTDIR)$(mandir)/man5 $(DESTDIR)$(sysconfdir)/echotimed \
	    $(DESTDIR)$(unitdir)
	install -m 755 echotimed $(DESTDIR)$(sbindir)/echotimed
	install -m 644 man/echotimed.8 $(DESTDIR)$(mandir)/man8/echotimed.8
	install -m 644 man/echotimed.conf.5 $(DESTDIR)$(mandir)/man5/echotimed.conf.5
	@# Never overwrite an administrator's configuration.
	if [ -e $(DESTDIR)$(sysconfdir)/echotimed/echotimed.conf ]; then \
	    echo "keeping existing $(DESTDIR)$(sysconfdir)/echotimed/echotimed.conf"; \
	else install -m 644 conf/echotimed.conf \
	    $(DESTDIR)$(sysconfdir)/echotimed/echotimed.conf; fi
	for u in systemd/*.service systemd/*.socket; do \
	    sed 's|@sbindir@|$(sbindir)|g; s|@sysconfdir@|$(sysconfdir)|g' $$u \
	        > $(DESTDIR)$(unitdir)/$${u##*/}; \
	    chmod 644 $(DESTDIR)$(unitdir)/$${u##*/}; done

uninstall:
	rm -f $(DESTDIR)$(sbindir)/echotimed \
	    $(DESTDIR)$(mandir)/man8/echotimed.8 \
	    $(DESTDIR)$(mandir)/man5/echotimed.conf.5
	for u in systemd/*.service systemd/*.socket; do \
	    rm -f $(DESTDIR)$(unitdir)/$${u##*/}; done
	@echo "left $(DESTDIR)$(sysconfdir)/echotimed/echotimed.conf in place"

lint-man:
	mandoc -Tlint -W warning man/echotimed.8 man/echotimed.conf.5

clean:
	rm -rf $(B) echotimed

.PHONY: all check check-deps unit integration deps deps-build run lint-man \
	clean install uninstall asan tsan valgrind fuzz fuzz-smoke bench \
	bench-smoke check-systemd deb lint-deb FORCE
FORCE:

-include $(wildcard $(B)/*.d)
