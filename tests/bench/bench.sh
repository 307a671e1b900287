#!/bin/bash
# bench.sh - echotimed's concurrency models against minimal C servers doing
# the same work (tests/bench/peers/ref_*.c) and against the same protocol
# built from Python's socketserver (tests/bench/peers/pyserver.py).  Run by
# `make bench`, or directly from anywhere in the work tree.
#
# Every server is started afresh for every scenario, on loopback only, pinned
# to other CPUs than the load generator when there are two or more; the
# script stops only the processes it started (trap on EXIT) and finishes in
# bounded time (about 6 minutes with the defaults).
#
# The ratios do not come from the table: this VM's speed drifts by up to
# 50 % from minute to minute, so a ratio of two runs made a minute apart is
# mostly noise.  For each ratio the "paired rounds" step starts a group of
# servers (a model, its C reference, its Python peer; each on its own port,
# all on the server CPUs) and runs the load generator against each in turn,
# in one order in odd rounds and the reverse in even ones, BENCH_PAIRS
# times; each round gives one ratio per pair of servers and the median is
# judged.  The table's cells for the scenarios a group measured are that
# group's medians.
#
# Environment:
#   BENCH_SECONDS        length of each round of a scenario, seconds (default 2)
#   BENCH_ROUNDS         rounds per rate scenario, median reported (default 3)
#   BENCH_PAIRS          paired rounds per group (default 5, at most 20; 0
#                        skips the groups, judges no target, and measures
#                        their scenarios in the table instead)
#   PAIR_SECONDS         length of one server's turn in a round (default 2)
#   BENCH_ATONCE         rounds of each step in which the servers are
#                        loaded at the same time, datagram CPU and thread
#                        model (default 8, at most 20; 0 skips them and
#                        the user time step, which always runs 2 rounds)
#   BENCH_IDLE_SECONDS   upper bound of the idle scenario (default 30; it
#                        ends as soon as every connection was probed)
#   BENCH_IDLE_CLIENTS   connections held in the idle scenario (default 10000)
#   BENCH_ONLY           rows to run, e.g. "thread ref-thread" (default all:
#                        sequential thread fork event event-poll tcpserver
#                        ref-epoll ref-thread ref-fork py-sequential
#                        py-threading py-forking py-udp)
#   BUSY_POLL            concurrency.busy_poll of the event-poll row, in
#                        microseconds (default 50)
#   BENCH_STRICT=1       exit 1 also when a product target ratio is missed
#   ECHOTIMED            the daemon (default ./echotimed)
#   CC, B                compiler and build directory for build/loadgen and
#                        the references (built by `make B=...` when stale)
#
# Exit status: 0, or 1 when a run of echotimed or of a C reference counted
# an error (a reply that failed verification, a timeout, a refused or reset
# connection) in any round, when any paired round (Python included) or a
# round of a step with the servers loaded at once did, when such a server
# died, when a measuring tool that ran (forkcost, mmsgcost, startcost.py,
# usercycles.so) gave no result or usercycles.so could not be built, when
# loadgen gave no server_sleeps in the datagram CPU step, or (with
# BENCH_STRICT=1) when a target was missed.
set -eu

cd "$(dirname "$0")/../.."

SECS=${BENCH_SECONDS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
PAIRS=${BENCH_PAIRS:-5}
PAIR_SECS=${PAIR_SECONDS:-2}
ATONCE=${BENCH_ATONCE:-8}
IDLE_SECS=${BENCH_IDLE_SECONDS:-30}
IDLE_N=${BENCH_IDLE_CLIENTS:-10000}
BUSY_POLL=${BUSY_POLL:-50}
ROWS="sequential thread fork event event-poll tcpserver ref-epoll ref-thread ref-fork py-sequential py-threading py-forking py-udp"
ONLY=${BENCH_ONLY:-$ROWS}
ECHOTIMED=${ECHOTIMED:-./echotimed}
B=${B:-build}
LOADGEN=$B/loadgen
RESULTS=$B/bench-results.txt

case $SECS in ''|*[!0-9.]*) echo "bench: bad BENCH_SECONDS" >&2; exit 64;; esac
case $IDLE_SECS in ''|*[!0-9.]*) echo "bench: bad BENCH_IDLE_SECONDS" >&2; exit 64;; esac
case $IDLE_N in ''|*[!0-9]*) echo "bench: bad BENCH_IDLE_CLIENTS" >&2; exit 64;; esac
case $BUSY_POLL in ''|*[!0-9]*) echo "bench: bad BUSY_POLL" >&2; exit 64;; esac
case $ROUNDS in ''|*[!0-9]*) echo "bench: bad BENCH_ROUNDS" >&2; exit 64;; esac
case $PAIRS in ''|*[!0-9]*) echo "bench: bad BENCH_PAIRS" >&2; exit 64;; esac
case $ATONCE in ''|*[!0-9]*) echo "bench: bad BENCH_ATONCE" >&2; exit 64;; esac
ATONCE=$((10#$ATONCE))	# "08" is 8, not a bad octal number
[ "$ATONCE" -le 20 ] || { echo "bench: BENCH_ATONCE must be in [0, 20]" >&2; exit 64; }
case $PAIR_SECS in ''|*[!0-9.]*) echo "bench: bad PAIR_SECONDS" >&2; exit 64;; esac
# loadgen refuses durations over 120 s; keep the whole run bounded.
awk -v s="$SECS" -v i="$IDLE_SECS" 'BEGIN { exit !(s > 0 && s <= 60 && i > 0 && i <= 120) }' ||
	{ echo "bench: BENCH_SECONDS must be in (0, 60], BENCH_IDLE_SECONDS in (0, 120]" >&2; exit 64; }
awk -v r="$ROUNDS" -v p="$PAIRS" -v s="$PAIR_SECS" \
    'BEGIN { exit !(r >= 1 && r <= 20 && p <= 20 && s > 0 && s <= 30) }' ||
	{ echo "bench: BENCH_ROUNDS must be in [1, 20], BENCH_PAIRS in [0, 20], PAIR_SECONDS in (0, 30]" >&2; exit 64; }

# --- tools --------------------------------------------------------------

if [ ! -x "$LOADGEN" ] || [ tests/bench/loadgen.c -nt "$LOADGEN" ]; then
	mkdir -p "$B"
	echo "bench: building $LOADGEN"
	# shellcheck disable=SC2086  # -Werror in CI only, like the Makefile
	${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Wshadow ${CI:+-Werror} \
	    -o "$LOADGEN" tests/bench/loadgen.c
fi
"$LOADGEN" --self-test >/dev/null || { echo "bench: loadgen self-test failed" >&2; exit 1; }

# The C references, with the daemon's flags (the Makefile's bench-refs).
REFS=("$B/ref_epoll" "$B/ref_thread" "$B/ref_fork")
make --no-print-directory -s B="$B" "${REFS[@]}" ||
	{ echo "bench: cannot build the C references" >&2; exit 1; }

# forkcost, twice: libc only, and with the daemon's libraries mapped.
FORKCOST=$B/forkcost
if [ ! -x "$FORKCOST-libs" ] || [ tests/bench/forkcost.c -nt "$FORKCOST-libs" ]; then
	# shellcheck disable=SC2046,SC2086  # pkg-config output is word lists
	if ! { ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Wshadow ${CI:+-Werror} \
	    -o "$FORKCOST-libc" tests/bench/forkcost.c &&
	    ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Wshadow ${CI:+-Werror} \
	    -DWITH_DAEMON_LIBS $(pkg-config --cflags libconfig libsystemd) \
	    -Wl,-z,relro -Wl,-z,now -o "$FORKCOST-libs" tests/bench/forkcost.c \
	    $(pkg-config --libs libconfig libsystemd); }; then
		echo "bench: cannot build $FORKCOST" >&2
		exit 1
	fi
fi

# mmsgcost: what batched datagram calls save on this machine.
MMSGCOST=$B/mmsgcost
if [ ! -x "$MMSGCOST" ] || [ tests/bench/mmsgcost.c -nt "$MMSGCOST" ]; then
	${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Wshadow ${CI:+-Werror} \
	    -o "$MMSGCOST" tests/bench/mmsgcost.c ||
		{ echo "bench: cannot build $MMSGCOST" >&2; exit 1; }
fi

# usercycles.so: a datagram server's own time between system calls
# (rdtsc: x86-64 only).  Without it the user time step is skipped, and a
# failed build fails the run at the end.
USERCYCLES=$B/usercycles.so UC_SKIP=""
if [ "$(uname -m)" != x86_64 ]; then
	UC_SKIP="usercycles.so reads the x86-64 time-stamp counter"
elif [ ! -f "$USERCYCLES" ] || [ tests/bench/usercycles.c -nt "$USERCYCLES" ]; then
	${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Wshadow ${CI:+-Werror} -shared -fPIC \
	    -o "$USERCYCLES" tests/bench/usercycles.c -ldl ||
		UC_SKIP="cannot build $USERCYCLES"
fi

# The real interpreter, not a version-manager shim, so that $! is Python.
PY=$(python3 -c 'import sys; print(sys.executable)')

# Descriptors: as many as allowed (the idle scenario needs 10,000 + a few in
# both the client and the server, which inherit this limit).
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=$(cat /proc/sys/fs/nr_open)
ulimit -n "$hard" 2>/dev/null || true
soft=$(ulimit -n)
if [ "$soft" != unlimited ] && [ "$soft" -lt $((IDLE_N + 200)) ]; then
	echo "bench: descriptor limit $soft: idle scenario reduced to $((soft - 200)) connections"
	IDLE_N=$((soft - 200))
fi

# CPU pinning: the load generator on the last allowed CPU, servers on the rest.
read -r -a CPUS <<<"$("$PY" -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
SRV_PIN=()
CLI_PIN=()
if [ "${#CPUS[@]}" -ge 2 ] && command -v taskset >/dev/null; then
	last=${CPUS[${#CPUS[@]} - 1]}
	srv=$(IFS=,; echo "${CPUS[*]:0:${#CPUS[@]}-1}")
	if taskset -c "$last" true 2>/dev/null && taskset -c "$srv" true 2>/dev/null; then
		SRV_PIN=(taskset -c "$srv")
		CLI_PIN=(taskset -c "$last")
	fi
fi

# --- process bookkeeping ------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/echotimed-bench.XXXXXX")
PIDS=()		# every server this script started and has not yet stopped

# nap SECONDS: sleep without starting a process: a read that times out on a
# FIFO nothing writes to, opened read-write for the read alone (so that it
# does not block, and no server or load generator inherits it).
mkfifo "$TMP/nap"
nap() {
	read -r -t "$1" _ <>"$TMP/nap" || true
}

# The bookkeeping below reads /proc and the load generator's RESULT lines
# with builtins only: a sed or awk costs about 10 ms on a host whose
# system calls are dear, and the script makes thousands of these checks.

# proc_stat PID: set PS_STATE and PS_PGRP from /proc/PID/stat (the command
# name, in parentheses, may hold spaces); status 1 if PID is gone.
proc_stat() {
	local line="" rest
	# The whole file (-d ''): a command name may hold a newline.
	{ IFS= read -r -d '' line <"/proc/$1/stat"; } 2>/dev/null
	[ -n "$line" ] || return 1
	rest=${line##*) }
	read -r PS_STATE _ PS_PGRP _ <<<"$rest"
	[ -n "$PS_STATE" ]
}

# alive PID: PID exists and is not a zombie (PS_STATE and PS_PGRP are set
# as by proc_stat).
alive() {
	proc_stat "$1" && [ "$PS_STATE" != Z ]
}

# Stop one server we started: SIGTERM to its process group (servers run in a
# session of their own, so a fork server's children are told too), 3 s
# grace, then SIGKILL.  Members are listed while the leader still lives, and
# a straggler is killed only if it still belongs to that group.
stop_pid() {
	local pid=$1 i m members=() keep=()
	if alive "$pid"; then
		if [ "$PS_PGRP" = "$pid" ]; then
			mapfile -t members < <(pgrep -g "$pid")
			kill -TERM -- "-$pid" 2>/dev/null || true
		else
			kill -TERM "$pid" 2>/dev/null || true
		fi
		for ((i = 0; i < 300; i++)); do
			alive "$pid" || break
			nap 0.01
		done
		if alive "$pid"; then
			echo "bench: note: pid $pid still running 3 s after SIGTERM; sent SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		for m in "${members[@]}"; do
			[ "$m" != "$pid" ] || continue
			if proc_stat "$m" && [ "$PS_PGRP" = "$pid" ]; then
				kill -KILL "$m" 2>/dev/null || true
			fi
		done
	fi
	wait "$pid" 2>/dev/null || true
	for i in "${PIDS[@]}"; do
		[ "$i" = "$pid" ] || keep+=("$i")
	done
	PIDS=("${keep[@]}")
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		stop_pid "$p"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait (bounded: n times 50 ms, in steps of 10 ms) until file has a line
# matching the extended regular expression pat, giving up early if pid dies.
wait_line() {
	local f=$1 pat=$2 pid=$3 n=$4 i l
	for ((i = 0; i < n * 5; i++)); do
		if [ -r "$f" ]; then
			while IFS= read -r l || [ -n "$l" ]; do
				[[ $l =~ $pat ]] && return 0
			done <"$f"
		fi
		alive "$pid" || return 1
		nap 0.01
	done
	return 1
}

# --- servers -------------------------------------------------------------

SRV_PID=
SRV_PORT=

# start_notified NAME PORT CMD...: start CMD in a session of its own on the
# server CPUs with a private NOTIFY_SOCKET and wait for its READY=1.  0
# ready, 78 config refused, other: failed.
start_notified() {
	local name=$1 port=$2 sock wpid rc i logged pre
	shift 2
	sock=$TMP/notify.sock
	# Emptied here, not by the waiter's redirection: that happens in the
	# child, and until it does the wait below would see the last start's
	# LISTENING line and start the server before the socket is there.
	: >"$TMP/ready.out"
	"$PY" tests/bench/waitready.py listen "$sock" 5 >>"$TMP/ready.out" 2>&1 &
	wpid=$!
	if ! wait_line "$TMP/ready.out" '^LISTENING' "$wpid" 100; then
		kill "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
		echo "bench: waitready.py did not start" >&2
		return 1
	fi
	logged=$(stat -c %s "$TMP/$name.log" 2>/dev/null || echo 0)
	# SRV_PRELOAD: a shim to preload into the server (the usercycles step).
	pre=()
	[ -z "${SRV_PRELOAD:-}" ] ||
		pre=(env "LD_PRELOAD=$SRV_PRELOAD" "USERCYCLES_DIR=$TMP/usercycles")
	NOTIFY_SOCKET=$sock setsid "${SRV_PIN[@]}" "${pre[@]}" "$@" \
	    >>"$TMP/$name.log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	# READY=1 ends the waiter (it gives up after 5 s); a refused config
	# ends the server.  Both are bounded.
	for ((i = 0; i < 800; i++)); do
		if ! alive "$wpid" || ! alive "$SRV_PID"; then
			break
		fi
		nap 0.01
	done
	if ! alive "$SRV_PID"; then
		rc=0
		wait "$SRV_PID" || rc=$?
		kill "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
		stop_pid "$SRV_PID"
		[ "$rc" = 0 ] && rc=1
		if [ "$rc" != 78 ]; then	# 78: a model refused, a skip
			echo "bench: $name exited at start (status $rc) on port $port:" >&2
			tail -c +$((logged + 1)) "$TMP/$name.log" | tail -n 5 |
			    sed 's/^/    /' >&2
		fi
		return "$rc"
	fi
	rc=0
	wait "$wpid" || rc=$?
	if [ "$rc" != 0 ]; then
		# No READY=1: accept a server whose port answers anyway.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "bench: warning: $name sent no READY=1; its port answers" >&2
		else
			echo "bench: $name not ready after 5 s" >&2
			stop_pid "$SRV_PID"
			return 1
		fi
	fi
	SRV_PORT=$port
	return 0
}

# echotimed_conf NAME MODEL[+poll] PORT: the daemon's configuration file.
# "+poll" sets concurrency.busy_poll = BUSY_POLL.
echotimed_conf() {
	local model=${2%+poll} poll="" conf=$TMP/echotimed-$1.conf
	[ "$2" = "$model" ] || poll=" busy_poll = $BUSY_POLL;"
	cat >"$conf" <<EOC
listen = (
  { transport = "tcp"; address = "127.0.0.1"; port = $3; backlog = 4096; },
  { transport = "udp"; address = "127.0.0.1"; port = $3; }
);
concurrency = { model = "$model"; max_connections = 20000;$poll };
session = { idle_timeout = 0; };
datagram = { rate_limit = 0; };
log = { level = "warning"; };
EOC
	echo "$conf"
}

# A port on which something listens (state 0A in /proc/net/tcp).
listening() {
	awk -v p="$(printf ':%04X' "$1")" \
	    '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
	    /proc/net/tcp
}

# tcpserver (ucspi-tcp) running `echotimed -i` for each connection, as a
# classic super-server does.  Ready once its socket listens.
start_tcpserver() {
	local port conf i
	port=$("$PY" tests/bench/waitready.py free-port) || return 1
	conf=$(echotimed_conf tcpserver thread "$port")
	setsid "${SRV_PIN[@]}" tcpserver -c 64 -HRl0 127.0.0.1 "$port" \
	    "$ECHOTIMED" -i -c "$conf" >>"$TMP/tcpserver.log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	for ((i = 0; i < 100; i++)); do
		if listening "$port"; then
			SRV_PORT=$port
			return 0
		fi
		alive "$SRV_PID" || break
		nap 0.05
	done
	echo "bench: tcpserver did not listen on $port" >&2
	stop_pid "$SRV_PID"
	return 1
}

# start_python VARIANT: 0 ready, other: failed.
start_python() {
	local variant=$1 out=$TMP/py-$1.out
	: >"$out"
	setsid "${SRV_PIN[@]}" "$PY" tests/bench/peers/pyserver.py "$variant" 0 \
	    >"$out" 2>>"$TMP/py-$variant.log" &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	if ! wait_line "$out" '^READY ' "$SRV_PID" 100; then
		echo "bench: pyserver.py $variant did not become ready" >&2
		stop_pid "$SRV_PID"
		return 1
	fi
	SRV_PORT=$(awk '/^READY /{ print $2; exit }' "$out")
	return 0
}

# start_row ROW: start that row's server.  0 ready, 78 refused (echotimed
# without that model), 77 cannot run here (a note says why), other: failed.
# A start that fails otherwise is tried twice more, each time on a new
# port: a free port can be taken between its choice and the server's
# bind().
start_row() {
	local try rc
	for try in 1 2 3; do
		rc=0
		start_row_once "$1" || rc=$?
		case $rc in 0 | 77 | 78) return "$rc" ;; esac
		[ "$try" = 3 ] || echo "bench: $1 did not start (status $rc); again on a new port" >&2
	done
	return "$rc"
}

start_row_once() {
	local row=$1 port conf
	case $row in
	py-*)	start_python "${row#py-}" ;;
	ref-*)	port=$("$PY" tests/bench/waitready.py free-port) || return 1
		start_notified "$row" "$port" "$B/ref_${row#ref-}" "$port" ;;
	*)	if [ ! -x "$ECHOTIMED" ]; then
			NOTE[$row]="$ECHOTIMED not built"
			return 77
		fi
		case $row in
		tcpserver)
			if ! command -v tcpserver >/dev/null; then
				NOTE[$row]="tcpserver not installed (Debian: ucspi-tcp)"
				return 77
			fi
			start_tcpserver ;;
		*)	port=$("$PY" tests/bench/waitready.py free-port) || return 1
			conf=$(echotimed_conf "$row" "$(row_model "$row")" "$port")
			start_notified "echotimed-$row" "$port" "$ECHOTIMED" -c "$conf" ;;
		esac ;;
	esac
}

row_model() {
	case $1 in event-poll) echo event+poll ;; *) echo "$1" ;; esac
}

# Errors of the Python peers in the table are only reported; those of
# echotimed and of the C references fail the bench.
strict() {
	case $1 in py-*) return 1 ;; esac
	return 0
}

label() {
	case $1 in
	py-*) echo "python ${1#py-}" ;;
	ref-*) echo "C reference ${1#ref-}" ;;
	event-poll) echo "echotimed event, busy_poll $BUSY_POLL" ;;
	tcpserver) echo "tcpserver + echotimed -i" ;;
	*) echo "echotimed $1" ;;
	esac
}

# The scenarios each row runs.
scenarios() {
	case $1 in
	sequential)	echo p1 c8 udp ;;
	thread | py-threading) echo p1 p50 c8 idle ;;
	event)		echo p1 p50 c8 idle udp ;;
	fork | ref-thread | ref-fork | py-forking) echo p1 p50 c8 ;;
	event-poll | tcpserver) echo c8 ;;
	ref-epoll)	echo p1 p50 c8 udp ;;
	py-sequential)	echo p1 c8 ;;
	py-udp)		echo udp ;;
	esac
}
applies() {
	case " $(scenarios "$1") " in *" $2 "*) return 0 ;; esac
	return 1
}

# The paired groups: a scenario and its servers, each model next to its C
# reference.  A row is in at most one group per scenario; the ratios below
# are taken within a group.
PGROUPS=(
	"p50 thread ref-thread py-threading event ref-epoll"
	"c8 thread ref-thread py-threading event ref-epoll event-poll"
	"c8 fork ref-fork py-forking tcpserver"
	"udp sequential ref-epoll event py-udp"
)
# label | row | C reference | Python peer | scenario | target vs Python
RATIOS=(
	"thread, 50 clients req/s|thread|ref-thread|py-threading|p50|1.6"
	"thread, connect rate|thread|ref-thread|py-threading|c8|4"
	"fork, connect rate|fork|ref-fork|py-forking|c8|6"
	"tcpserver + echotimed -i, connect rate|tcpserver|ref-fork|py-forking|c8|"
	"sequential, UDP dgram/s|sequential|ref-epoll|py-udp|udp|1.4"
	"event, UDP dgram/s|event|ref-epoll|py-udp|udp|"
	"event, 50 clients req/s|event|ref-epoll|py-threading|p50|2.3"
	"event, connect rate|event|ref-epoll|py-threading|c8|4.5"
	"event, busy_poll $BUSY_POLL, connect rate|event-poll|ref-epoll|py-threading|c8|4.5"
)

selected() {	# selected ROW: is ROW in BENCH_ONLY?
	case " $ONLY " in *" $1 "*) return 0 ;; esac
	return 1
}

# in_group INDEX SCENARIO ROW: does that group measure ROW's SCENARIO?
in_group() {
	local g=${PGROUPS[$1]}
	if [ "${g%% *}" = "$2" ]; then
		case " ${g#* } " in *" $3 "*) return 0 ;; esac
	fi
	return 1
}

# Is ROW's SCENARIO measured by a group (and so not in the table step)?
grouped() {
	local gi
	[ "$PAIRS" -gt 0 ] || return 1
	for gi in "${!PGROUPS[@]}"; do
		in_group "$gi" "$2" "$1" && return 0
	done
	return 1
}

# --- scenarios -----------------------------------------------------------

declare -A RATE P99 ERRS RSS ANS CPU OPS NOTE
FAILED=0

# getf VAR LINE KEY: set VAR to KEY's value in a RESULT line ("KEY=VALUE"
# words), empty when the line has no such word.  (Its local is named so as
# not to hide the caller's VAR.)
getf() {
	local getf_re=" $3=([^ ]*)"
	if [[ " $2" =~ $getf_re ]]; then
		printf -v "$1" '%s' "${BASH_REMATCH[1]}"
	else
		printf -v "$1" '%s' ""
	fi
}

field() {	# field RESULT-LINE KEY: KEY's value on stdout (see getf)
	local v
	getf v "$1" "$2"
	[ -z "$v" ] || echo "$v"
}

# last_result VAR FILE: set VAR to FILE's last line that starts "RESULT ",
# empty if none.  (Its locals are named so as not to hide the caller's VAR.)
last_result() {
	local lr_line lr_last=""
	if [ -r "$2" ]; then
		while IFS= read -r lr_line || [ -n "$lr_line" ]; do
			[[ $lr_line != "RESULT "* ]] || lr_last=$lr_line
		done <"$2"
	fi
	printf -v "$1" '%s' "$lr_last"
}

scen_args() {	# scen_args SCENARIO: sets mode, n, target
	case $1 in
	p1)	mode=persistent n=1 target=tcp ;;
	p50)	mode=persistent n=50 target=tcp ;;
	c8)	mode=connect n=8 target=tcp ;;
	idle)	mode=idle n=$IDLE_N target=tcp ;;
	udp)	mode=udp n=8 target=udp ;;
	esac
}

# run_scenario ROW SCENARIO
run_scenario() {
	local row=$1 scen=$2 rc mode target n dur=$SECS out line
	scen_args "$scen"
	[ "$scen" = idle ] && dur=$IDLE_SECS
	rc=0
	start_row "$row" || rc=$?
	if [ "$rc" = 78 ]; then
		NOTE[$row]="model \"$(row_model "$row")\" refused by this echotimed (exit 78)"
		return 78
	elif [ "$rc" = 77 ]; then
		return 77
	elif [ "$rc" != 0 ]; then
		RATE[$row,$scen]="start failed"
		strict "$row" && FAILED=1
		return 0
	fi
	out=$TMP/$row-$scen.out
	rc=0
	# This machine is noisy: rate scenarios run ROUNDS times against the
	# same server and the median round (by rate) is reported.  Every round
	# is checked, not only the median one.
	local rounds=$ROUNDS r lines="" l e lrc ran=0 bad=0
	[ "$scen" = idle ] && rounds=1
	for ((r = 1; r <= rounds; r++)); do
		# In the background so that a signal to this script is handled
		# at once (the EXIT trap then stops the load generator too).
		"${CLI_PIN[@]}" "$LOADGEN" --mode "$mode" \
		    --target "$target:127.0.0.1:$SRV_PORT" --clients "$n" \
		    --duration "$dur" --server-pid "$SRV_PID" >"$out.$r" 2>&1 &
		LG_PID=$!
		PIDS+=("$LG_PID")
		lrc=0
		wait "$LG_PID" || lrc=$?
		stop_pid "$LG_PID"	# only forgets it: it has exited
		[ "$lrc" = 0 ] || rc=$lrc
		ran=$((ran + 1))
		cat "$out.$r" >>"$out"
		last_result l "$out.$r"
		lines+="$l"$'\n'
		getf e "$l" errors
		if [ "$lrc" != 0 ] || [ -z "$l" ] || [ "$e" != 0 ]; then
			bad=$((bad + 1))
		fi
		alive "$SRV_PID" || break
	done
	if [ "$bad" != 0 ]; then
		NOTE[$row]="${NOTE[$row]:-}$scen: $bad of $ran rounds failed or counted errors; "
		strict "$row" && FAILED=1
	fi
	line=$(grep '^RESULT ' <<<"$lines" | \
	    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^rate=/) \
	        print substr($i, 6) "\t" $0 }' | sort -g | \
	    awk -F'\t' '{ l[NR] = $2 } END { if (NR) print l[int((NR + 1) / 2)] }')
	if ! alive "$SRV_PID"; then
		NOTE[$row]="${NOTE[$row]:-}server died during $scen; "
		strict "$row" && FAILED=1
	fi
	stop_pid "$SRV_PID"
	echo "$row $scen rc=$rc $line" >>"$RESULTS"
	if [ -z "$line" ]; then
		RATE[$row,$scen]="loadgen failed"
		sed 's/^/    /' "$out" >&2
		strict "$row" && FAILED=1
		return 0
	fi
	getf "RATE[$row,$scen]" "$line" rate
	getf "P99[$row,$scen]" "$line" p99_us
	getf "ERRS[$row,$scen]" "$line" errors
	getf "RSS[$row,$scen]" "$line" server_rss_kib
	getf "ANS[$row,$scen]" "$line" answered
	getf "CPU[$row,$scen]" "$line" server_cpu_s
	getf "OPS[$row,$scen]" "$line" ops
	if [ "${ERRS[$row,$scen]}" != 0 ] && strict "$row"; then
		FAILED=1
	fi
	printf '  %-14s %-5s %12s /s  p99 %9s us  errors %s\n' "$row" "$scen" \
	    "${RATE[$row,$scen]}" "${P99[$row,$scen]}" "${ERRS[$row,$scen]}"
	return 0
}

# run_row ROW: the row's scenarios that no group measures.
run_row() {
	local row=$1 scen
	selected "$row" || return 0
	for scen in $(scenarios "$row"); do
		grouped "$row" "$scen" && continue
		run_scenario "$row" "$scen" || return 0
	done
}

# runnable_now: how many tasks other than this script want a CPU, in tenths:
# procs_running of /proc/stat (which counts this shell while it reads)
# less one, summed over 10 samples 50 ms apart.  The load average cannot
# say it: it trails by a minute, and right after a run whose idle
# scenario held 10,000 threads it reads 20 on a machine that is idle.
runnable_now() {
	local i k v sum=0
	for ((i = 0; i < 10; i++)); do
		while read -r k v _; do
			if [ "$k" = procs_running ]; then
				sum=$((sum + (v > 0 ? v - 1 : 0)))
				break
			fi
		done </proc/stat
		nap 0.05
	done
	echo "$sum"
}

read -r load _ </proc/loadavg
busy=$(runnable_now)
busy_text=$((busy / 10)).$((busy % 10))
echo "bench: ${#CPUS[@]} CPUs (${CPUS[*]}), servers on ${SRV_PIN[2]:-any}, loadgen on ${CLI_PIN[2]:-any};" \
    "median of $ROUNDS rounds of $SECS s per scenario, idle: $IDLE_N connections (<= $IDLE_SECS s);" \
    "groups: $PAIRS paired rounds of $PAIR_SECS s a server; load average $load," \
    "runnable now $busy_text"
if ((busy * 2 > ${#CPUS[@]} * 10)); then
	echo "bench: warning: the machine is busy ($busy_text other tasks runnable on average over 0.5 s): numbers will be noisy"
fi
mkdir -p "$B"
: >"$RESULTS"

for row in $ROWS; do
	run_row "$row"
done

# --- paired rounds: the groups -------------------------------------------
#
# This VM's speed drifts by up to 50 % from minute to minute, so the ratio of
# two rows of the table, measured a minute or more apart, is mostly noise.
# So the servers of a group run at the same time (each on its own port, all
# on the server CPUs) and the load generator takes them in turn, PAIR_SECS
# each: in list order in odd rounds, in reverse order in even ones, so that
# the bias of a steady drift on the ratio of any two of them flips sign from
# one round to the next and cancels across rounds.  Each round gives one
# ratio per pair of servers; the median of the PAIRS ratios is judged.
# Every paired round must verify with errors=0, on every side: a round with
# errors (or without a RESULT line) makes the bench fail and gives no ratio.

# shellcheck disable=SC2034  # set by getf and read, read through namerefs
declare -A GR GC GB GS GP GCPU GOPS
PR_LINE=

# pair_round KEY ROUND ROW PORT PID MODE TARGET CLIENTS: one bounded loadgen
# run (at most PAIR_SECS).  Sets PR_LINE to its RESULT line (empty if none);
# status 0 only when the run verified with errors=0.
pair_round() {
	local key=$1 r=$2 row=$3 port=$4 pid=$5 mode=$6 target=$7 n=$8 rc=0 out e
	out=$TMP/pair-${key//:/-}-$r-$row.out
	"${CLI_PIN[@]}" "$LOADGEN" --mode "$mode" --target "$target:127.0.0.1:$port" \
	    --clients "$n" --duration "$PAIR_SECS" --server-pid "$pid" >"$out" 2>&1 &
	LG_PID=$!
	PIDS+=("$LG_PID")
	wait "$LG_PID" || rc=$?
	stop_pid "$LG_PID"	# only forgets it: it has exited
	last_result PR_LINE "$out"
	echo "pair $key round $r $row rc=$rc $PR_LINE" >>"$RESULTS"
	getf e "$PR_LINE" errors
	if [ "$rc" != 0 ] || [ -z "$PR_LINE" ] || [ "$e" != 0 ]; then
		echo "bench: paired round $r of $key against $row: rc=$rc, errors=$e" >&2
		[ -n "$PR_LINE" ] || sed 's/^/    /' "$out" >&2
		return 1
	fi
	return 0
}

# stats: reads numbers, one a line; prints "median min max n" (median of an
# even count: the mean of the middle two), nothing when there are none.
stats() {
	sort -g | awk 'NF { v[++n] = $1 }
	    END { if (!n) exit
		m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		printf "%.4f %.4f %.4f %d\n", m, v[1], v[n], n }'
}
median() {
	local m
	m=$(stats)
	[ -z "$m" ] || echo "${m%% *}"
}

# run_group INDEX: the rows of PGROUPS[INDEX] that are selected and start,
# in turns.  Per round and row it keeps GR (rate), GC (server CPU us per
# operation), GB (loadgen CPU share) and GP (p99), keyed by INDEX,ROW,ROUND;
# GS[INDEX,ROUND] is the round's steal.
run_group() {
	local gi=$1 scen key mode n target rc row r i cc el st
	local members=() pids=() ports=() order steal
	# shellcheck disable=SC2086  # a group is a word list
	set -- ${PGROUPS[$gi]}
	scen=$1
	shift
	key=$scen:$(IFS=:; echo "$*")
	scen_args "$scen"
	for row in "$@"; do
		selected "$row" || continue
		rc=0
		start_row "$row" || rc=$?
		if [ "$rc" = 78 ]; then
			NOTE[$row]="model \"$(row_model "$row")\" refused by this echotimed (exit 78)"
			continue
		elif [ "$rc" = 77 ]; then
			continue
		elif [ "$rc" != 0 ]; then
			NOTE[$row]="${NOTE[$row]:-}did not start for the $scen group; "
			strict "$row" && FAILED=1
			continue
		fi
		members+=("$row") pids+=("$SRV_PID") ports+=("$SRV_PORT")
	done
	[ "${#members[@]}" -gt 0 ] || return 0
	for ((r = 1; r <= PAIRS; r++)); do
		order=$(seq 0 $((${#members[@]} - 1)))
		((r % 2)) || order=$(tac <<<"$order")
		steal=""
		for i in $order; do
			row=${members[$i]}
			if ! pair_round "$key" "$r" "$row" "${ports[$i]}" "${pids[$i]}" \
			    "$mode" "$target" "$n"; then
				NOTE[$row]="${NOTE[$row]:-}$scen: paired round $r failed or counted errors; "
				FAILED=1
				continue
			fi
			getf "GR[$gi,$row,$r]" "$PR_LINE" rate
			getf "GP[$gi,$row,$r]" "$PR_LINE" p99_us
			getf "GCPU[$gi,$row,$r]" "$PR_LINE" server_cpu_s
			getf "GOPS[$gi,$row,$r]" "$PR_LINE" ops
			getf cc "$PR_LINE" client_cpu_s
			getf el "$PR_LINE" elapsed_s
			getf st "$PR_LINE" steal_pct
			# One awk for both quotients, "GC|GB" (either may be
			# empty).
			IFS='|' read -r "GC[$gi,$row,$r]" "GB[$gi,$row,$r]" < <(awk \
			    -v c="${GCPU[$gi,$row,$r]}" -v o="${GOPS[$gi,$row,$r]}" \
			    -v cc="$cc" -v e="$el" 'BEGIN {
				if (c != "na" && o > 0) printf "%.3f", c * 1e6 / o
				printf "|"
				if (e > 0) printf "%.4f", cc / e
				printf "\n" }')
			[ "$st" = na ] || steal+=$st$'\n'
		done
		GS[$gi,$r]=$(median <<<"$steal")
		for i in "${!members[@]}"; do
			if ! alive "${pids[$i]}"; then
				NOTE[${members[$i]}]="${NOTE[${members[$i]}]:-}died in the $scen group, round $r; "
				FAILED=1
				r=$PAIRS	# no more rounds
			fi
		done
	done
	for i in "${!members[@]}"; do
		stop_pid "${pids[$i]}"
		row=${members[$i]}
		printf '  %-14s %-5s %12s /s  p99 %9s us  (group %s, median of the paired rounds)\n' \
		    "$row" "$scen" "$(num1 "$(group_median GR "$gi" "$row")")" \
		    "$(num1 "$(group_median GP "$gi" "$row")")" "$((gi + 1))"
	done
}

num1() {	# num1 NUMBER: one decimal, "n/a" when empty
	awk -v v="${1:-}" 'BEGIN { if (v == "") print "n/a"; else printf "%.1f", v }'
}

# group_median ARRAY INDEX ROW [ROUNDS]: the median of ROW's values in a
# group (or an at-once step: INDEX is then STEP,CLIENTS and ROW a server's
# index) over ROUNDS rounds (default PAIRS).
group_median() {
	local -n arr=$1
	local r list=""
	for ((r = 1; r <= ${4:-$PAIRS}; r++)); do
		list+=${arr[$2,$3,$r]:-}$'\n'
	done
	median <<<"$list"
}

# ratio_stats ARRAY INDEX A B [ROUNDS]: "median min max n" of the
# per-round A/B of a group's values (GR or GC; or an at-once step's, as in
# group_median), nothing without a round that has both.
ratio_stats() {
	local -n arr=$1
	local gi=$2 a=$3 b=$4 r list=""
	for ((r = 1; r <= ${5:-$PAIRS}; r++)); do
		if [ -z "${arr[$gi,$a,$r]:-}" ] || [ -z "${arr[$gi,$b,$r]:-}" ]; then
			continue
		fi
		list+="${arr[$gi,$a,$r]} ${arr[$gi,$b,$r]}"$'\n'
	done
	awk 'NF == 2 && $2 > 0 { printf "%.4f\n", $1 / $2 }' <<<"$list" | stats
}

# group_of SCENARIO ROW: the index of the group measuring ROW's SCENARIO.
group_of() {
	local gi
	for gi in "${!PGROUPS[@]}"; do
		if in_group "$gi" "$1" "$2"; then
			echo "$gi"
			return 0
		fi
	done
	return 1
}

# The table's cells of a grouped scenario: the median rate and p99 over
# the row's paired rounds, its CPU and operations summed.
group_cells() {
	local row=$1 scen=$2 gi r cpu ops=0 sums=""
	gi=$(group_of "$scen" "$row") || return 0
	RATE[$row,$scen]=$(group_median GR "$gi" "$row")
	[ -n "${RATE[$row,$scen]}" ] || { unset "RATE[$row,$scen]"; return 0; }
	P99[$row,$scen]=$(group_median GP "$gi" "$row")
	ERRS[$row,$scen]=0
	for ((r = 1; r <= PAIRS; r++)); do
		[ -n "${GR[$gi,$row,$r]:-}" ] || continue
		sums+="${GCPU[$gi,$row,$r]} "
		ops=$((ops + ${GOPS[$gi,$row,$r]}))
	done
	cpu=$(awk -v l="$sums" 'BEGIN { n = split(l, v, " ")
	    for (i = 1; i <= n; i++) if (v[i] != "na") a += v[i]
	    printf "%.3f", a }')
	CPU[$row,$scen]=$cpu
	OPS[$row,$scen]=$ops
}

if [ "$PAIRS" -gt 0 ]; then
	echo "bench: paired rounds: $PAIRS rounds per group (in order, then reversed), $PAIR_SECS s each server"
	for gi in "${!PGROUPS[@]}"; do
		run_group "$gi"
	done
	for row in $ROWS; do
		for scen in $(scenarios "$row"); do
			grouped "$row" "$scen" && group_cells "$row" "$scen"
		done
	done
fi

# --- the servers loaded at once: datagram CPU, the thread model -----------
#
# Taken in turn, the same server's CPU per datagram moves by 5 to 15 % from
# one 2 s round to the next on this VM, so a paired round cannot tell 1 %.
# Here the servers run under load at the same time, each with a load
# generator of its own (all load generators on the client CPU, all servers
# on the server CPU), so whatever the machine does in a round it does to
# all of them; the generators start in an order rotated every round.  The
# last two servers of a step are the same C reference: the second is the
# control, and its ratio to the first shows what the method itself gives
# two equal servers.
#
# Two steps:
#   dgram   sequential, event, ref_epoll twice; UDP at two loads a round:
#           8 clients a server (the server CPU is saturated, datagrams
#           queue up between wake-ups) and 2 (light: about one wake-up a
#           datagram).  Judged on CPU per datagram.
#   thread  the thread model, ref_thread twice; 50 persistent TCP clients a
#           server.  The servers share the server CPU, so each one's rate
#           is its share of that CPU over its CPU per request: judged on
#           the rate, with CPU per request beside it.

# shellcheck disable=SC2034  # set by getf and read, read through namerefs
declare -A AC AR AS	# CPU us per operation, rate, sleeps per operation:
			# STEP,CLIENTS,I,ROUND
declare -A AT_ROWS_OF=([dgram]="sequential event ref-epoll ref-epoll"
    [thread]="thread ref-thread ref-thread")
declare -A AT_NAMES_OF=([dgram]="sequential event ref-epoll ref-epoll-2"
    [thread]="thread ref-thread ref-thread-2")
declare -A AT_CLIENTS_OF=([dgram]="8 2" [thread]="50")
# The load generator's --mode and the transport of its --target.
declare -A AT_MODE_OF=([dgram]="udp udp" [thread]="persistent tcp")
declare -A AT_TITLE_OF=([dgram]="datagram CPU" [thread]="thread model")
declare -A AT_VALUES=([dgram]=0 [thread]=0)
AT_STEPS=(dgram thread)
# The usercycles step, run as the others but with usercycles.so preloaded
# into each server, for AT_ROUNDS_OF rounds: where a datagram server's own
# time goes at the light load, where CPU per datagram cannot say.
AT_ROWS_OF[ucyc]="sequential event ref-epoll"
AT_NAMES_OF[ucyc]="sequential event ref-epoll"
AT_CLIENTS_OF[ucyc]=2
AT_MODE_OF[ucyc]="udp udp"
AT_TITLE_OF[ucyc]="user time"
AT_VALUES[ucyc]=0
declare -A AT_ROUNDS_OF=([ucyc]=2) AT_PIDS_OF
AT_FAILS=""

# atonce_load STEP ROUND CLIENTS PID... PORT...: one round of one load (a
# PID and a PORT for each of the step's rows, in its order).
atonce_load() {
	local step=$1 r=$2 cl=$3 j k rc out line lgs=() rows names mode c o s e
	read -ra rows <<<"${AT_ROWS_OF[$step]}"
	read -ra names <<<"${AT_NAMES_OF[$step]}"
	read -ra mode <<<"${AT_MODE_OF[$step]}"
	local n=${#rows[@]}
	local pids=("${@:4:n}") ports=("${@:4+n:n}")
	for ((k = 0; k < n; k++)); do
		j=$(((k + r) % n))
		"${CLI_PIN[@]}" "$LOADGEN" --mode "${mode[0]}" \
		    --target "${mode[1]}:127.0.0.1:${ports[$j]}" \
		    --clients "$cl" --duration "$PAIR_SECS" --server-pid "${pids[$j]}" \
		    >"$TMP/atonce-$step-$r-$cl-$j.out" 2>&1 &
		lgs+=($!)
		PIDS+=("$!")
	done
	for ((k = 0; k < n; k++)); do
		j=$(((k + r) % n))
		rc=0
		wait "${lgs[$k]}" || rc=$?
		stop_pid "${lgs[$k]}"	# only forgets it: it has exited
		out=$TMP/atonce-$step-$r-$cl-$j.out
		last_result line "$out"
		echo "atonce $step round $r clients $cl ${names[$j]} rc=$rc $line" >>"$RESULTS"
		getf e "$line" errors
		if [ "$rc" != 0 ] || [ -z "$line" ] || [ "$e" != 0 ]; then
			echo "bench: ${AT_TITLE_OF[$step]} round $r ($cl clients) against ${names[$j]}: rc=$rc, errors=$e" >&2
			AT_FAILS+="${names[$j]} (${AT_TITLE_OF[$step]}, round $r, $cl clients) "
			FAILED=1
			continue
		fi
		getf c "$line" server_cpu_s
		getf o "$line" ops
		getf s "$line" server_sleeps
		getf "AR[$step,$cl,$j,$r]" "$line" rate
		# One awk for both quotients, "AC|AS" (either may be empty).
		IFS='|' read -r "AC[$step,$cl,$j,$r]" "AS[$step,$cl,$j,$r]" < <(awk \
		    -v c="$c" -v o="$o" -v s="$s" 'BEGIN {
			if (c != "na" && o > 0) printf "%.4f", c * 1e6 / o
			printf "|"
			if (s != "na" && s != "" && o > 0) printf "%.4f", s / o
			printf "\n" }')
		AT_VALUES[$step]=$((AT_VALUES[$step] + 1))
	done
}

# atonce_selected STEP: are all the step's rows in BENCH_ONLY?
atonce_selected() {
	local row
	for row in ${AT_ROWS_OF[$1]}; do
		selected "$row" || return 1
	done
}

# run_atonce STEP; its rounds that failed go to AT_FAILS.  A server that is
# not built (77) or a model refused (78) skips it, as in the other steps.
run_atonce() {
	local step=$1 i j r cl rc pids=() ports=() row rows names
	read -ra rows <<<"${AT_ROWS_OF[$step]}"
	read -ra names <<<"${AT_NAMES_OF[$step]}"
	for ((i = 0; i < ${#rows[@]}; i++)); do
		row=${rows[$i]}
		rc=0
		start_row "$row" || rc=$?
		if [ "$rc" != 0 ]; then
			for ((j = 0; j < i; j++)); do stop_pid "${pids[$j]}"; done
			if [ "$rc" = 78 ]; then
				NOTE[$row]="model \"$(row_model "$row")\" refused by this echotimed (exit 78)"
			elif [ "$rc" != 77 ]; then
				NOTE[$row]="${NOTE[$row]:-}did not start for the ${AT_TITLE_OF[$step]} step; "
				FAILED=1
			fi
			echo "bench: ${AT_TITLE_OF[$step]} step skipped: ${names[$i]} did not start"
			return 0
		fi
		pids+=("$SRV_PID") ports+=("$SRV_PORT")
	done
	AT_PIDS_OF[$step]=${pids[*]}
	for ((r = 1; r <= ${AT_ROUNDS_OF[$step]:-$ATONCE}; r++)); do
		for cl in ${AT_CLIENTS_OF[$step]}; do
			atonce_load "$step" "$r" "$cl" "${pids[@]}" "${ports[@]}"
		done
	done
	for ((i = 0; i < ${#rows[@]}; i++)); do stop_pid "${pids[$i]}"; done
}

# atonce_ref STEP: the index of the step's C reference (the control after
# it is the last).
atonce_ref() {
	local rows
	read -ra rows <<<"${AT_ROWS_OF[$1]}"
	echo $((${#rows[@]} - 2))
}

# atonce_ratio AC|AR STEP CLIENTS I: "median min max n" of server I's
# per-round value over the step's C reference's.
atonce_ratio() {
	ratio_stats "$1" "$2,$3" "$4" "$(atonce_ref "$2")" "$ATONCE"
}

if [ "$ATONCE" -gt 0 ]; then
	for step in "${AT_STEPS[@]}"; do
		if ! atonce_selected "$step"; then
			echo "bench: ${AT_TITLE_OF[$step]} step skipped: it needs" \
			    "$(tr ' ' '\n' <<<"${AT_ROWS_OF[$step]}" | awk '!seen[$0]++' | paste -sd ' ')" \
			    "in BENCH_ONLY"
			continue
		fi
		echo "bench: ${AT_TITLE_OF[$step]}: $ATONCE rounds of $PAIR_SECS s at ${AT_CLIENTS_OF[$step]// / and } clients a server, ${AT_NAMES_OF[$step]} loaded at once"
		run_atonce "$step"
	done
	if ! atonce_selected ucyc; then
		echo "bench: ${AT_TITLE_OF[ucyc]} step skipped: it needs ${AT_ROWS_OF[ucyc]} in BENCH_ONLY"
	elif [ -n "$UC_SKIP" ]; then
		echo "bench: ${AT_TITLE_OF[ucyc]} step skipped: $UC_SKIP"
		case $UC_SKIP in "cannot build"*)
			echo "bench: $UC_SKIP" >&2
			FAILED=1 ;;
		esac
	else
		echo "bench: ${AT_TITLE_OF[ucyc]}: ${AT_ROUNDS_OF[ucyc]} rounds of $PAIR_SECS s at ${AT_CLIENTS_OF[ucyc]} clients a server, ${AT_NAMES_OF[ucyc]} loaded at once, usercycles.so preloaded"
		mkdir -p "$TMP/usercycles"
		SRV_PRELOAD=$USERCYCLES run_atonce ucyc
	fi
fi

# --- report --------------------------------------------------------------

# cell ROW SCEN: "rate" or "rate (N err)", "n/a" when the row could not run,
# "-" where the scenario does not apply.
cell_rate() {
	local r=${RATE[$1,$2]:-} e=${ERRS[$1,$2]:-0}
	if [ -z "$r" ]; then
		if [ -n "${NOTE[$1]:-}" ] && applies "$1" "$2"; then echo "n/a"; else echo "-"; fi
		return
	fi
	case $r in *[!0-9.]*) echo "$r"; return ;; esac
	r=$(printf '%.0f' "$r")
	[ "$e" = 0 ] && echo "$r" || echo "$r ($e err)"
}
cell_p99() {
	local v=${P99[$1,$2]:-}
	case $v in '' | *[!0-9.]*) echo "-" ;; *) printf '%.0f' "$v" ;; esac
}
cell_idle() {
	local a=${ANS[$1,idle]:-}
	if [ -z "${RATE[$1,idle]:-}" ]; then cell_rate "$1" idle; return; fi
	[ -n "$a" ] || { echo "${RATE[$1,idle]}"; return; }
	echo "$a/$IDLE_N"
}
cell_rss() {
	local r=${RSS[$1,idle]:-}
	case $r in '' | *[!0-9]*) echo "-" ;; *) awk -v k="$r" 'BEGIN { printf "%.1f", k / 1024 }' ;; esac
}

num0() {
	case ${1:-} in
	'') echo "n/a" ;;
	*[!0-9.]*) echo "$1" ;;
	*) printf '%.0f' "$1" ;;
	esac
}
cpu_per_op() {
	local c=${CPU[$1,$2]:-} o=${OPS[$1,$2]:-}
	case "$c:$o" in
	*[!0-9.:]* | :* | *: | *:0) echo "-" ;;
	*) awk -v c="$c" -v o="$o" 'BEGIN { printf "%.1f", c * 1e6 / o }' ;;
	esac
}

echo
echo "### echotimed vs minimal C servers and Python socketserver ($(date -u +%Y-%m-%d), ${#CPUS[@]} CPUs)"
echo
echo "| server | 1 client req/s | p99 us | 50 clients req/s | p99 us | connect (8) conn/s | p99 us | idle $IDLE_N answered | RSS MiB (idle) | UDP (8) dgram/s | p99 us |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in $ROWS; do
	selected "$row" || continue
	echo "| $(label "$row") | $(cell_rate "$row" p1) | $(cell_p99 "$row" p1) |" \
	    "$(cell_rate "$row" p50) | $(cell_p99 "$row" p50) |" \
	    "$(cell_rate "$row" c8) | $(cell_p99 "$row" c8) |" \
	    "$(cell_idle "$row") | $(cell_rss "$row") |" \
	    "$(cell_rate "$row" udp) | $(cell_p99 "$row" udp) |"
done
echo
if [ "$PAIRS" -gt 0 ]; then
	echo "The 50-client, connect and UDP cells of the rows in a group are the medians"
	echo "of that group's $PAIRS paired rounds of $PAIR_SECS s; the other cells the median of"
	echo "$ROUNDS rounds of $SECS s against a server of their own."
else
	echo "Each cell is the median of $ROUNDS rounds of $SECS s against a server of its own."
fi
echo "Sequential servers serve one connection at a time, so the 50-client"
echo "persistent scenario does not apply to them (49 clients would wait)."
for row in $ROWS; do
	[ -n "${NOTE[$row]:-}" ] && echo "- $(label "$row"): ${NOTE[$row]%; }"
done

# Server CPU time per operation: less sensitive than throughput to other
# load on the machine.
echo
echo "Server CPU per operation (us; threads and children included):"
echo
echo "| server | 1 client | 50 clients | connect (8) | UDP (8) |"
echo "|---|---:|---:|---:|---:|"
for row in $ROWS; do
	selected "$row" || continue
	echo "| $(label "$row") | $(cpu_per_op "$row" p1) | $(cpu_per_op "$row" p50) |" \
	    "$(cpu_per_op "$row" c8) | $(cpu_per_op "$row" udp) |"
done

x2() {	# x2 NUMBER: "1.23x", or "n/a"
	awk -v v="${1:-}" 'BEGIN { if (v == "") print "n/a"; else printf "%.2fx", v }'
}
spread() {	# spread "MEDIAN MIN MAX N": "1.01x (0.95-1.07)", or "n/a"
	local med lo hi
	read -r med lo hi _ <<<"${1:-}"
	[ -n "${med:-}" ] || { echo "n/a"; return; }
	echo "$(x2 "$med") ($(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.2f-%.2f", a, b }'))"
}
pct() {	# pct FRACTION-OR-PERCENT SCALE: "42 %", or "n/a"
	awk -v v="${1:-}" -v s="$2" 'BEGIN { if (v == "") print "n/a"; else printf "%.*f %%", s == 1 ? 1 : 0, v * s }'
}

# The ratio table: each model row against its C reference and its Python
# peer, all three from the same paired rounds.
echo
MISSED=0
if [ "$PAIRS" -gt 0 ]; then
	echo "Ratios, from the paired rounds, not from the table above: the servers of a"
	echo "group ran at once and the load generator took them in turn, $PAIR_SECS s each,"
	echo "in order and then reversed, $PAIRS rounds. Each round gives one ratio; the"
	echo "median is shown (and judged against the target), min-max the spread. The"
	echo "rates are each server's median over the rounds. \"CPU/op\" is the server's"
	echo "CPU time per operation (threads and children included) over the rounds,"
	echo "\"CPU vs ref\" the median per-round ratio of the two. \"loadgen CPU\" is the"
	echo "load generator's median CPU share in the model's rounds: at 90 % or more"
	echo "the client set the pace, the throughput ratios are bounds, and a target"
	echo "missed is marked \"client-bound\". \"steal\" is the median share of all"
	echo "CPUs' time the host took from this machine during the group's rounds"
	echo "(/proc/stat)."
	echo
	echo "| model, scenario | echotimed | C ref | vs C ref | python | vs python | target | | CPU/op us | ref CPU/op us | CPU vs ref | loadgen CPU | steal |"
	echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
	for spec in "${RATIOS[@]}"; do
		IFS='|' read -r text row ref py scen target <<<"$spec"
		selected "$row" || continue
		gi=$(group_of "$scen" "$row")
		vp=$(ratio_stats GR "$gi" "$row" "$py")
		verdict=""
		if [ -n "$target" ]; then
			if ! selected "$py"; then
				verdict="not run (BENCH_ONLY)"
			elif [ -z "$vp" ]; then
				verdict="not judged: no valid paired round"
			elif awk -v r="${vp%% *}" -v t="$target" 'BEGIN { exit !(r + 0 >= t + 0) }'; then
				verdict="meets"
			else
				verdict="**below**"
				# The ratio is a bound when the client set the pace.
				awk -v b="$(group_median GB "$gi" "$row")" \
				    'BEGIN { exit !(b != "" && b + 0 >= 0.9) }' &&
					verdict+=" (client-bound)"
				MISSED=1
			fi
		fi
		rsteal=""
		for ((r = 1; r <= PAIRS; r++)); do
			rsteal+=${GS[$gi,$r]:-}$'\n'
		done
		echo "| $text | $(num0 "$(group_median GR "$gi" "$row")") |" \
		    "$(num0 "$(group_median GR "$gi" "$ref")") |" \
		    "$(spread "$(ratio_stats GR "$gi" "$row" "$ref")") |" \
		    "$(num0 "$(group_median GR "$gi" "$py")") | $(spread "$vp") |" \
		    "${target:+>= ${target}x}$([ -n "$target" ] || echo -) | $verdict |" \
		    "$(cpu_per_op "$row" "$scen") | $(cpu_per_op "$ref" "$scen") |" \
		    "$(x2 "$(ratio_stats GC "$gi" "$row" "$ref" | cut -d' ' -f1)") |" \
		    "$(pct "$(group_median GB "$gi" "$row")" 100) | $(pct "$(median <<<"$rsteal")" 1) |"
	done
else
	echo "BENCH_PAIRS=0: no paired rounds, so no paired ratio is shown and no target judged."
fi

# The steps with the servers loaded at once: precise enough to judge a goal
# of 1.0x.
# atonce_cell AC|AR STEP CLIENTS I FORMAT: server I's median value and its
# ratio to the step's C reference.
atonce_cell() {
	local rs
	rs=$(atonce_ratio "$1" "$2" "$3" "$4")
	awk -v v="$(group_median "$1" "$2,$3" "$4" "$ATONCE")" -v s="$rs" -v f="$5" \
	    -v isref="$([ "$4" = "$(atonce_ref "$2")" ] && echo 1)" 'BEGIN {
		printf "%s | ", v == "" ? "n/a" : sprintf(f, v)
		split(s, x, " ")
		if (isref) print "(the reference)"
		else if (s == "") print "n/a"
		else printf "%.3fx (%.3f-%.3f)\n", x[1], x[2], x[3] }'
}
atonce_median() {	# atonce_median AC|AR STEP CLIENTS I: the median ratio
	atonce_ratio "$@" | cut -d' ' -f1
}
if [ "$ATONCE" -gt 0 ] && [ -n "$AT_FAILS" ]; then
	echo
	echo "Servers loaded at once: rounds failed or counted errors: $AT_FAILS(see $RESULTS)"
fi
if [ "${AT_VALUES[dgram]}" -gt 0 ]; then
	echo
	echo "Server CPU per datagram, the servers loaded at once ($ATONCE rounds of $PAIR_SECS s"
	echo "at each load; each server its own load generator; the median per-round"
	echo "ratio to the C reference, min-max; the second C reference is the control."
	echo "8 clients a server saturate the server CPU; 2 leave it about one wake-up"
	echo "a datagram.  Sleeps: the server's sleeps a datagram with 2 clients, the"
	echo "median of the rounds; a server that sleeps less answers more datagrams a"
	echo "wake-up, which makes each cheaper):"
	echo
	echo "| server | 8 clients: CPU/datagram us | vs C ref epoll | 2 clients: CPU/datagram us | vs C ref epoll | sleeps | goal <= 1.00x |"
	echo "|---|---:|---:|---:|---:|---:|---|"
	read -ra at_rows <<<"${AT_ROWS_OF[dgram]}"
	ref=$(atonce_ref dgram)
	for i in "${!at_rows[@]}"; do
		verdict="-"
		if [ "$i" -lt "$ref" ]; then
			verdict=$(awk -v a="$(atonce_median AC dgram 8 "$i")" \
			    -v b="$(atonce_median AC dgram 2 "$i")" 'BEGIN {
				if (a == "" || b == "") print "n/a"
				else if (a <= 1.0 && b <= 1.0) print "meets"
				else if (a <= 1.0 || b <= 1.0) print "meets at " (a <= 1.0 ? 8 : 2) " clients only"
				else print "**above**" }')
		fi
		# Every Linux /proc/PID/status counts the sleeps: a server
		# measured with 2 clients but without them fails the run.
		sleeps=$(group_median AS dgram,2 "$i" "$ATONCE")
		if [ -z "$sleeps" ] && [ -n "$(group_median AC dgram,2 "$i" "$ATONCE")" ]; then
			echo "bench: loadgen reported no server_sleeps for ${at_rows[$i]}" >&2
			FAILED=1
		fi
		echo "| $(label "${at_rows[$i]}")$([ "$i" -gt "$ref" ] && echo " (control)") |" \
		    "$(atonce_cell AC dgram 8 "$i" %.3f) | $(atonce_cell AC dgram 2 "$i" %.3f) |" \
		    "$(awk -v s="$sleeps" 'BEGIN { if (s == "") printf "n/a"; else printf "%.3f", s }') | $verdict |"
	done
	# What the loop models' batches can save here: the kernel's cost of a
	# datagram read and sent one call each, and in batches (16 queued on
	# a loopback socket, pinned as the servers are).  A failure fails
	# the run, as startcost's does.
	mc=$("${SRV_PIN[@]}" "$MMSGCOST" | grep '^MMSGCOST ' || true)
	echo "mmsgcost $mc" >>"$RESULTS"
	echo
	if [ -z "$mc" ]; then
		echo "bench: mmsgcost failed" >&2
		FAILED=1
		echo "Batched datagram calls on this machine: n/a (mmsgcost failed)."
	else
		echo "Batched datagram calls on this machine (tests/bench/mmsgcost.c: 16 datagrams" \
		    "queued on a loopback socket, CPU time a datagram):" \
		    "recvmmsg() $(field "$mc" recvmmsg_us) us against $(field "$mc" recvfrom_us) us for recvfrom()," \
		    "sendmmsg() $(field "$mc" sendmmsg_us) us against $(field "$mc" sendto_us) us for sendto()." \
		    "Where the batched calls cost what single ones do or more, batches save only the" \
		    "system calls of a backlog; the loop models read the few datagrams a wake-up finds" \
		    "alone (tests/bench/README.md, \"Single calls for a few, batches for a backlog\")."
	fi
fi
if [ "${AT_VALUES[ucyc]}" -gt 0 ]; then
	echo
	cl=${AT_CLIENTS_OF[ucyc]}
	echo "Where a datagram server's own time goes, $cl clients a server: ${AT_ROUNDS_OF[ucyc]} rounds of $PAIR_SECS s,"
	echo "the servers loaded at once, tests/bench/usercycles.c preloaded into each.  TSC"
	echo "cycles a datagram from one system call's return to the next one's entry:"
	echo "after epoll_wait() to the first read (wake), from a read to its reply"
	echo "(answer), from a reply to the next read (next), from the read that finds"
	echo "the queue empty to epoll_wait() (sleep).  The rest of the CPU time is the"
	echo "kernel's (the CPU time includes the shim's own, about 2 %):"
	echo
	echo "| server | wake | answer | next | sleep | total cycles | total us | CPU/datagram us |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	read -ra uc_rows <<<"${AT_ROWS_OF[ucyc]}"
	read -ra uc_pids <<<"${AT_PIDS_OF[ucyc]}"
	for i in "${!uc_rows[@]}"; do
		f=$TMP/usercycles/${uc_pids[$i]}
		cpu=$(for ((r = 1; r <= AT_ROUNDS_OF[ucyc]; r++)); do
			echo "${AC[ucyc,$cl,$i,$r]:-}"; done |
		    awk 'NF { s += $1; n++ } END { if (n) printf "%.3f", s / n }')
		if [ ! -s "$f" ]; then
			echo "bench: usercycles.so wrote nothing for ${uc_rows[$i]}" >&2
			FAILED=1
			echo "| $(label "${uc_rows[$i]}") | n/a | | | | | | ${cpu:-n/a} |"
			continue
		fi
		echo "usercycles ${uc_rows[$i]} $(paste -sd ' ' "$f")" >>"$RESULTS"
		awk -v name="$(label "${uc_rows[$i]}")" -v cpu="${cpu:-n/a}" '
		    $1 == "datagrams" { n = $2; next }
		    $1 == "tsc_hz" { hz = $2; next }
		    { c[$1] = $3; total += $3 }
		    END {
			if (n == 0 || hz == 0) { printf "| %s | n/a | | | | | | %s |\n", name, cpu; exit }
			printf "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.3f | %s |\n", name,
			    (c["wait-recv"] + c["wait-empty"]) / n, c["recv-send"] / n,
			    (c["send-recv"] + c["send-empty"]) / n, c["empty-wait"] / n,
			    total / n, total / n / hz * 1e6, cpu }' "$f"
	done
fi
if [ "${AT_VALUES[thread]}" -gt 0 ]; then
	echo
	cl=${AT_CLIENTS_OF[thread]}
	echo "The thread model and its C reference loaded at once ($ATONCE rounds of $PAIR_SECS s,"
	echo "$cl persistent clients a server, each server its own load generator; the"
	echo "median per-round ratio to the C reference, min-max; the second C reference"
	echo "is the control.  The servers share the server CPU, so a server's rate is"
	echo "its share of that CPU over its CPU per request):"
	echo
	echo "| server | req/s | vs C ref thread | CPU/request us | vs C ref thread | goal rate >= 1.00x |"
	echo "|---|---:|---:|---:|---:|---|"
	read -ra at_rows <<<"${AT_ROWS_OF[thread]}"
	ref=$(atonce_ref thread)
	for i in "${!at_rows[@]}"; do
		verdict="-"
		if [ "$i" -lt "$ref" ]; then
			verdict=$(awk -v a="$(atonce_median AR thread "$cl" "$i")" 'BEGIN {
				if (a == "") print "n/a"
				else if (a >= 1.0) print "meets"
				else print "**below**" }')
		fi
		echo "| $(label "${at_rows[$i]}")$([ "$i" -gt "$ref" ] && echo " (control)") |" \
		    "$(atonce_cell AR thread "$cl" "$i" %.0f) | $(atonce_cell AC thread "$cl" "$i" %.3f) | $verdict |"
	done
fi

# The floor under the fork model on this machine: fork, _exit, waitpid of
# a process that maps the same libraries, on the server CPU.  A fork
# server cannot serve a connection in less, whatever it does.
if selected fork; then
	fc_libs=$("${SRV_PIN[@]}" "$FORKCOST-libs" | grep '^FORKCOST ' || true)
	fc_libc=$("${SRV_PIN[@]}" "$FORKCOST-libc" | grep '^FORKCOST ' || true)
	echo "forkcost libs $fc_libs" >>"$RESULTS"
	echo "forkcost libc $fc_libc" >>"$RESULTS"
	if [ -z "$fc_libs" ] || [ -z "$fc_libc" ]; then
		echo "bench: forkcost failed" >&2
		FAILED=1
	fi
	echo
	echo "Fork floor on this machine (tests/bench/forkcost.c: fork, _exit and waitpid," \
	    "nothing else, on the server CPU):" \
	    "$(field "$fc_libs" us_per_fork) us per child with echotimed's libraries" \
	    "($(field "$fc_libs" mappings) mappings)," \
	    "$(field "$fc_libc" us_per_fork) us with libc only ($(field "$fc_libc" mappings) mappings)." \
	    "echotimed fork used $(cpu_per_op fork c8) us of CPU per connection in the connect scenario," \
	    "the C reference fork $(cpu_per_op ref-fork c8) us and Python forking $(cpu_per_op py-forking c8) us."
fi

# What a super-server pays per connection before the first reply: the
# exec of `echotimed -i` and its start-up, against /bin/true's exec.
if selected tcpserver && [ -x "$ECHOTIMED" ]; then
	sc_et=$("${SRV_PIN[@]}" "$PY" tests/bench/startcost.py 200 "$ECHOTIMED" -i \
	    -c "$(echotimed_conf startcost thread 9)" | grep '^STARTCOST ' || true)
	sc_true=$("${SRV_PIN[@]}" "$PY" tests/bench/startcost.py 200 /bin/true |
	    grep '^STARTCOST ' || true)
	echo "startcost echotimed-i $sc_et" >>"$RESULTS"
	echo "startcost true $sc_true" >>"$RESULTS"
	[ -n "$sc_et" ] || { echo "bench: startcost.py failed on echotimed -i" >&2; FAILED=1; }
	echo
	echo "Start-up of \`echotimed -i\` (tests/bench/startcost.py, 200 starts on the server CPU," \
	    "a socket pair as stdin and stdout, medians):" \
	    "$(field "$sc_et" cpu_us) us of CPU and the first reply $(field "$sc_et" first_reply_us) us" \
	    "after the spawn, against $(field "$sc_true" cpu_us) us of CPU for /bin/true." \
	    "tcpserver + echotimed -i used $(cpu_per_op tcpserver c8) us of CPU per connection" \
	    "in the connect scenario."
fi

echo
echo "Raw RESULT lines: $RESULTS.  Finished in ${SECONDS} s."
if [ "$FAILED" != 0 ]; then
	echo "bench: a run of echotimed or a C reference, a paired round or a measuring tool counted errors or failed (see $RESULTS)" >&2
	exit 1
fi
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$MISSED" != 0 ]; then
	echo "bench: a product target was missed" >&2
	exit 1
fi
exit 0
