#!/bin/bash
# bench.sh - echotimed's concurrency models against the same protocol built
# from Python's socketserver (tests/bench/peers/pyserver.py).  Run by
# `make bench`, or directly from anywhere in the work tree.
#
# Every server is started afresh for every scenario, on loopback only, pinned
# to other CPUs than the load generator when there are two or more; the
# script stops only the processes it started (trap on EXIT) and finishes in
# bounded time (about 6.5 minutes with the defaults, under 9).
#
# The target ratios do not come from that table: this VM's speed drifts by
# up to 50 % from minute to minute, so a ratio of two runs made a minute
# apart is mostly noise.  For each target the "paired rounds" step starts
# both servers (each on its own port, both on the server CPUs) and
# alternates the load generator between them, A,B then B,A, BENCH_PAIRS
# times; each round pair gives one ratio and the median is judged.
#
# Environment:
#   BENCH_SECONDS        length of each round of a scenario, seconds (default 3)
#   BENCH_ROUNDS         rounds per rate scenario, median reported (default 3)
#   BENCH_PAIRS          paired rounds per target ratio (default 5, at most
#                        20; 0 skips the step and judges no target)
#   PAIR_SECONDS         length of one side of a paired round (default 2)
#   BENCH_IDLE_SECONDS   upper bound of the idle scenario (default 30; it
#                        ends as soon as every connection was probed)
#   BENCH_IDLE_CLIENTS   connections held in the idle scenario (default 10000)
#   BENCH_ONLY           rows to run, e.g. "thread py-threading" (default all:
#                        sequential thread fork event event-poll
#                        py-sequential py-threading py-forking py-udp)
#   BUSY_POLL            concurrency.busy_poll of the event-poll row, in
#                        microseconds (default 50)
#   BENCH_STRICT=1       exit 1 also when a product target ratio is missed
#   ECHOTIMED            the daemon (default ./echotimed)
#   CC, B                compiler and build directory for build/loadgen
#
# Exit status: 0, or 1 when an echotimed run counted an error (a reply that
# failed verification, a timeout, a refused or reset connection) in any
# round, when any paired round (echotimed or Python) did, when the daemon
# died, or (with BENCH_STRICT=1) when a target was missed.
set -eu

cd "$(dirname "$0")/../.."

SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
PAIRS=${BENCH_PAIRS:-5}
PAIR_SECS=${PAIR_SECONDS:-2}
IDLE_SECS=${BENCH_IDLE_SECONDS:-30}
IDLE_N=${BENCH_IDLE_CLIENTS:-10000}
BUSY_POLL=${BUSY_POLL:-50}
ROWS="sequential thread fork event event-poll py-sequential py-threading py-forking py-udp"
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

alive() {
	local st
	st=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# Stop one server we started: SIGTERM to its process group (servers run in a
# session of their own, so a fork server's children are told too), 3 s
# grace, then SIGKILL.  Members are listed while the leader still lives, and
# a straggler is killed only if it still belongs to that group.
stop_pid() {
	local pid=$1 i m members=() keep=()
	if alive "$pid"; then
		if [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
			read -r -a members <<<"$(pgrep -g "$pid" | tr '\n' ' ')"
			kill -TERM -- "-$pid" 2>/dev/null || true
		else
			kill -TERM "$pid" 2>/dev/null || true
		fi
		for ((i = 0; i < 60; i++)); do
			alive "$pid" || break
			sleep 0.05
		done
		if alive "$pid"; then
			echo "bench: note: pid $pid still running 3 s after SIGTERM; sent SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		for m in "${members[@]}"; do
			[ "$m" != "$pid" ] || continue
			if [ "$(ps -o pgid= -p "$m" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
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

# Wait (bounded: n steps of 50 ms) until file has a line matching pattern,
# giving up early if pid dies.
wait_line() {
	local f=$1 pat=$2 pid=$3 n=$4 i
	for ((i = 0; i < n; i++)); do
		grep -q "$pat" "$f" 2>/dev/null && return 0
		alive "$pid" || return 1
		sleep 0.05
	done
	return 1
}

# --- servers -------------------------------------------------------------

SRV_PID=
SRV_PORT=

# start_echotimed MODEL[+poll]: 0 ready, 78 config refused, other: failed.
# "+poll" sets concurrency.busy_poll = BUSY_POLL.
start_echotimed() {
	local model=${1%+poll} port conf sock wpid rc i poll=""
	[ "$1" = "$model" ] || poll=" busy_poll = $BUSY_POLL;"
	port=$("$PY" tests/bench/waitready.py free-port) || return 1
	conf=$TMP/echotimed-$1.conf
	cat >"$conf" <<EOF
listen = (
  { transport = "tcp"; address = "127.0.0.1"; port = $port; backlog = 4096; },
  { transport = "udp"; address = "127.0.0.1"; port = $port; }
);
concurrency = { model = "$model"; max_connections = 20000;$poll };
session = { idle_timeout = 0; };
datagram = { rate_limit = 0; };
log = { level = "warning"; };
EOF
	sock=$TMP/notify.sock
	"$PY" tests/bench/waitready.py listen "$sock" 5 >"$TMP/ready.out" 2>&1 &
	wpid=$!
	if ! wait_line "$TMP/ready.out" '^LISTENING' "$wpid" 100; then
		kill "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
		echo "bench: waitready.py did not start" >&2
		return 1
	fi
	NOTIFY_SOCKET=$sock setsid "${SRV_PIN[@]}" "$ECHOTIMED" -c "$conf" \
	    >>"$TMP/echotimed-$1.log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	# READY=1 ends the waiter (it gives up after 5 s); a refused config
	# ends the daemon.  Both are bounded.
	for ((i = 0; i < 400; i++)); do
		if ! alive "$wpid" || ! alive "$SRV_PID"; then
			break
		fi
		sleep 0.02
	done
	if ! alive "$SRV_PID"; then
		rc=0
		wait "$SRV_PID" || rc=$?
		kill "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
		stop_pid "$SRV_PID"
		[ "$rc" = 0 ] && rc=1
		return "$rc"
	fi
	rc=0
	wait "$wpid" || rc=$?
	if [ "$rc" != 0 ]; then
		# No READY=1: accept a daemon whose port answers anyway.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "bench: warning: echotimed ($1) sent no READY=1; its port answers" >&2
		else
			echo "bench: echotimed ($1) not ready after 5 s" >&2
			stop_pid "$SRV_PID"
			return 1
		fi
	fi
	SRV_PORT=$port
	return 0
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

# --- scenarios -----------------------------------------------------------

declare -A RATE P99 ERRS RSS ANS CPU OPS NOTE
FAILED=0

field() {	# field RESULT-LINE KEY
	sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}

label() {
	case $1 in
	py-*) echo "python ${1#py-}" ;;
	*-poll) echo "echotimed ${1%-poll}, busy_poll $BUSY_POLL" ;;
	*) echo "echotimed $1" ;;
	esac
}

# run_scenario ROW KIND SERVER SCENARIO
run_scenario() {
	local row=$1 kind=$2 srv=$3 scen=$4 rc mode target n dur out line
	case $scen in
	p1)	mode=persistent n=1 dur=$SECS target=tcp ;;
	p50)	mode=persistent n=50 dur=$SECS target=tcp ;;
	c8)	mode=connect n=8 dur=$SECS target=tcp ;;
	idle)	mode=idle n=$IDLE_N dur=$IDLE_SECS target=tcp ;;
	udp)	mode=udp n=8 dur=$SECS target=udp ;;
	esac
	rc=0
	if [ "$kind" = echotimed ]; then
		start_echotimed "$srv" || rc=$?
	else
		start_python "$srv" || rc=$?
	fi
	if [ "$rc" = 78 ]; then
		NOTE[$row]="model \"$srv\" refused by this echotimed (exit 78)"
		return 78
	elif [ "$rc" != 0 ]; then
		RATE[$row,$scen]="start failed"
		[ "$kind" = echotimed ] && FAILED=1
		return 0
	fi
	out=$TMP/$row-$scen.out
	rc=0
	# This machine is noisy: rate scenarios run ROUNDS times against the
	# same server and the median round (by rate) is reported.  Every round
	# is checked, not only the median one.
	local rounds=$ROUNDS r lines="" l lrc ran=0 bad=0
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
		l=$(grep '^RESULT ' "$out.$r" | tail -n 1 || true)
		lines+="$l"$'\n'
		if [ "$lrc" != 0 ] || [ -z "$l" ] || [ "$(field "$l" errors)" != 0 ]; then
			bad=$((bad + 1))
		fi
		alive "$SRV_PID" || break
	done
	if [ "$bad" != 0 ]; then
		NOTE[$row]="${NOTE[$row]:-}$scen: $bad of $ran rounds failed or counted errors; "
		[ "$kind" = echotimed ] && FAILED=1
	fi
	line=$(grep '^RESULT ' <<<"$lines" | \
	    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^rate=/) \
	        print substr($i, 6) "\t" $0 }' | sort -g | \
	    awk -F'\t' '{ l[NR] = $2 } END { if (NR) print l[int((NR + 1) / 2)] }')
	if ! alive "$SRV_PID"; then
		NOTE[$row]="${NOTE[$row]:-}server died during $scen; "
		[ "$kind" = echotimed ] && FAILED=1
	fi
	stop_pid "$SRV_PID"
	echo "$row $scen rc=$rc $line" >>"$RESULTS"
	if [ -z "$line" ]; then
		RATE[$row,$scen]="loadgen failed"
		sed 's/^/    /' "$out" >&2
		[ "$kind" = echotimed ] && FAILED=1
		return 0
	fi
	RATE[$row,$scen]=$(field "$line" rate)
	P99[$row,$scen]=$(field "$line" p99_us)
	ERRS[$row,$scen]=$(field "$line" errors)
	RSS[$row,$scen]=$(field "$line" server_rss_kib)
	ANS[$row,$scen]=$(field "$line" answered)
	CPU[$row,$scen]=$(field "$line" server_cpu_s)
	OPS[$row,$scen]=$(field "$line" ops)
	if [ "${ERRS[$row,$scen]}" != 0 ] && [ "$kind" = echotimed ]; then
		FAILED=1
	fi
	printf '  %-14s %-5s %12s /s  p99 %9s us  errors %s\n' "$row" "$scen" \
	    "${RATE[$row,$scen]}" "${P99[$row,$scen]}" "${ERRS[$row,$scen]}"
	return 0
}

# row NAME KIND SERVER SCENARIO...
run_row() {
	local row=$1 kind=$2 srv=$3 scen
	shift 3
	case " $ONLY " in *" $row "*) ;; *) return 0 ;; esac
	if [ "$kind" = echotimed ] && [ ! -x "$ECHOTIMED" ]; then
		NOTE[$row]="$ECHOTIMED not built"
		return 0
	fi
	for scen in "$@"; do
		run_scenario "$row" "$kind" "$srv" "$scen" || return 0
	done
}

load=$(cut -d' ' -f1 /proc/loadavg)
echo "bench: ${#CPUS[@]} CPUs (${CPUS[*]}), servers on ${SRV_PIN[2]:-any}, loadgen on ${CLI_PIN[2]:-any};" \
    "median of $ROUNDS rounds of $SECS s per scenario, idle: $IDLE_N connections (<= $IDLE_SECS s);" \
    "target ratios from $PAIRS paired rounds of $PAIR_SECS s a side; load average $load"
if awk -v l="$load" -v n="${#CPUS[@]}" 'BEGIN { exit !(l > n / 2) }'; then
	echo "bench: warning: the machine is busy (load $load): numbers will be noisy"
fi
mkdir -p "$B"
: >"$RESULTS"

run_row sequential    echotimed sequential p1 c8 udp
run_row thread        echotimed thread     p1 p50 c8 idle
run_row fork          echotimed fork       p1 p50 c8
run_row event         echotimed event      p1 p50 c8 idle
run_row event-poll    echotimed event+poll p1 p50 c8
run_row py-sequential python    sequential p1 c8
run_row py-threading  python    threading  p1 p50 c8 idle
run_row py-forking    python    forking    p1 p50 c8
run_row py-udp        python    udp        udp

# --- paired rounds for the target ratios ---------------------------------
#
# This VM's speed drifts by up to 50 % from minute to minute, so the ratio of
# two rows of the table above, measured a minute or more apart, is mostly
# noise.  For each target both servers run at the same time (each on its own
# port, both on the server CPUs) and the load generator alternates between
# them, PAIR_SECS each: A then B in odd rounds, B then A in even ones, so
# the bias of a steady drift flips sign from one round pair to the next and
# cancels across them.  Each round pair gives one ratio A/B; the median of
# the PAIRS ratios is judged against the target.
# Every paired round must verify with errors=0, on either side: a round with
# errors (or without a RESULT line) makes the bench fail and gives no ratio.

declare -A PR_MED PR_MIN PR_MAX PR_N PR_A PR_B PR_BAD PR_LIST PR_NOTE PR_BUSY PR_STEAL
PR_LINE=

selected() {	# selected ROW: is ROW in BENCH_ONLY?
	case " $ONLY " in *" $1 "*) return 0 ;; esac
	return 1
}

# start_server KIND SERVER: start_echotimed or start_python.
start_server() {
	if [ "$1" = echotimed ]; then start_echotimed "$2"; else start_python "$2"; fi
}

# pair_round KEY ROUND ROW PORT PID MODE TARGET CLIENTS: one bounded loadgen
# run (at most PAIR_SECS).  Sets PR_LINE to its RESULT line (empty if none);
# status 0 only when the run verified with errors=0.
pair_round() {
	local key=$1 r=$2 row=$3 port=$4 pid=$5 mode=$6 target=$7 n=$8 rc=0 out
	out=$TMP/pair-${key//:/-}-$r-$row.out
	"${CLI_PIN[@]}" "$LOADGEN" --mode "$mode" --target "$target:127.0.0.1:$port" \
	    --clients "$n" --duration "$PAIR_SECS" --server-pid "$pid" >"$out" 2>&1 &
	LG_PID=$!
	PIDS+=("$LG_PID")
	wait "$LG_PID" || rc=$?
	stop_pid "$LG_PID"	# only forgets it: it has exited
	PR_LINE=$(grep '^RESULT ' "$out" | tail -n 1 || true)
	echo "pair $key round $r $row rc=$rc $PR_LINE" >>"$RESULTS"
	if [ "$rc" != 0 ] || [ -z "$PR_LINE" ] || [ "$(field "$PR_LINE" errors)" != 0 ]; then
		echo "bench: paired round $r of $key against $row: rc=$rc, errors=$(field "$PR_LINE" errors)" >&2
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

# run_pair ROW-A KIND-A SERVER-A ROW-B KIND-B SERVER-B SCENARIO
run_pair() {
	local ra=$1 ka=$2 sa=$3 rb=$4 kb=$5 sb=$6 scen=$7
	local key=$1:$4:$7 mode n target rc pa pb porta portb r side xa xb
	local ratios="" rates_a="" rates_b="" busy_a="" steal="" bad=0 st med lo hi cnt order=()
	selected "$ra" && selected "$rb" || return 0
	if [ "$ka" = echotimed ] && [ ! -x "$ECHOTIMED" ]; then
		PR_NOTE[$key]="$ECHOTIMED not built"
		return 0
	fi
	case $scen in
	p50)	mode=persistent n=50 target=tcp ;;
	c8)	mode=connect n=8 target=tcp ;;
	udp)	mode=udp n=8 target=udp ;;
	esac
	rc=0
	start_server "$ka" "$sa" || rc=$?
	if [ "$rc" = 78 ]; then
		PR_NOTE[$key]="model \"$sa\" refused by this echotimed (exit 78)"
		return 0
	elif [ "$rc" != 0 ]; then
		PR_NOTE[$key]="$(label "$ra") did not start"
		[ "$ka" = echotimed ] && FAILED=1
		return 0
	fi
	pa=$SRV_PID porta=$SRV_PORT
	rc=0
	start_server "$kb" "$sb" || rc=$?
	if [ "$rc" != 0 ]; then
		PR_NOTE[$key]="$(label "$rb") did not start"
		[ "$kb" = echotimed ] && FAILED=1
		stop_pid "$pa"
		return 0
	fi
	pb=$SRV_PID portb=$SRV_PORT
	for ((r = 1; r <= PAIRS; r++)); do
		xa='' xb=''
		if ((r % 2)); then order=(a b); else order=(b a); fi
		for side in "${order[@]}"; do
			if [ "$side" = a ]; then
				if pair_round "$key" "$r" "$ra" "$porta" "$pa" "$mode" "$target" "$n"; then
					xa=$(field "$PR_LINE" rate)
					busy_a+=$(awk -v c="$(field "$PR_LINE" client_cpu_s)" \
					    -v e="$(field "$PR_LINE" elapsed_s)" \
					    'BEGIN { if (e > 0) printf "%.4f", c / e }')$'\n'
				else
					bad=$((bad + 1))
				fi
			else
				if pair_round "$key" "$r" "$rb" "$portb" "$pb" "$mode" "$target" "$n"; then
					xb=$(field "$PR_LINE" rate)
				else
					bad=$((bad + 1))
				fi
			fi
		done
		if [ -n "$xa" ] && [ -n "$xb" ]; then
			steal+=$(grep -h "^pair $key round $r " "$RESULTS" |
			    sed -n 's/.* steal_pct=\([0-9.]*\).*/\1/p')$'\n'
			ratios+=$(awk -v a="$xa" -v b="$xb" 'BEGIN { if (b > 0) printf "%.4f", a / b }')$'\n'
			rates_a+=$xa$'\n'
			rates_b+=$xb$'\n'
		fi
		if ! alive "$pa" || ! alive "$pb"; then
			alive "$pa" || PR_NOTE[$key]="${PR_NOTE[$key]:-}$(label "$ra") died in round $r; "
			alive "$pb" || PR_NOTE[$key]="${PR_NOTE[$key]:-}$(label "$rb") died in round $r; "
			FAILED=1
			break
		fi
	done
	stop_pid "$pa"
	stop_pid "$pb"
	if [ "$bad" != 0 ]; then
		PR_BAD[$key]=$bad
		FAILED=1
	fi
	st=$(stats <<<"$ratios")
	if [ -n "$st" ]; then
		read -r med lo hi cnt <<<"$st"
		PR_MED[$key]=$med PR_MIN[$key]=$lo PR_MAX[$key]=$hi PR_N[$key]=$cnt
		PR_A[$key]=$(stats <<<"$rates_a" | cut -d' ' -f1)
		PR_B[$key]=$(stats <<<"$rates_b" | cut -d' ' -f1)
		PR_LIST[$key]=$(awk 'NF { printf "%s%.2f", sep, $1; sep = " " }' <<<"$ratios")
		PR_BUSY[$key]=$(stats <<<"$busy_a" | cut -d' ' -f1)
		PR_STEAL[$key]=$(stats <<<"$steal" | cut -d' ' -f1)
	fi
	printf '  %-28s ratios %-29s median %s%s\n' "$ra/$rb $scen" \
	    "${PR_LIST[$key]:-none}" \
	    "$(awk -v m="${PR_MED[$key]:-}" 'BEGIN { if (m == "") print "n/a"; else printf "%.2fx", m }')" \
	    "$([ "$bad" = 0 ] || echo "  ($bad rounds failed or counted errors)")"
	return 0
}

if [ "$PAIRS" -gt 0 ]; then
	echo "bench: paired rounds for the target ratios: $PAIRS x (A then B, alternating order), $PAIR_SECS s each side"
	run_pair thread     echotimed thread     py-threading python threading  p50
	run_pair thread     echotimed thread     py-threading python threading  c8
	run_pair fork       echotimed fork       py-forking   python forking    c8
	run_pair sequential echotimed sequential py-udp       python udp        udp
	run_pair event      echotimed event      py-threading python threading  p50
	run_pair event      echotimed event      py-threading python threading  c8
	run_pair event-poll echotimed event+poll py-threading python threading  c8
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
applies() {
	case "$1:$2" in
	sequential:p1|sequential:c8|sequential:udp) return 0 ;;
	thread:udp|fork:udp|event:udp|fork:idle) return 1 ;;
	event-poll:p1|event-poll:p50|event-poll:c8) return 0 ;;
	thread:*|fork:*|event:*) return 0 ;;
	py-sequential:p1|py-sequential:c8) return 0 ;;
	py-threading:udp|py-forking:udp|py-forking:idle) return 1 ;;
	py-threading:*|py-forking:*) return 0 ;;
	py-udp:udp) return 0 ;;
	esac
	return 1
}
cell_idle() {
	local a=${ANS[$1,idle]:-} r=${RSS[$1,idle]:-}
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
echo "### echotimed vs Python socketserver ($(date -u +%Y-%m-%d), ${#CPUS[@]} CPUs, median of ${ROUNDS} rounds of ${SECS} s per scenario)"
echo
echo "| server | 1 client req/s | p99 us | 50 clients req/s | p99 us | connect (8) conn/s | p99 us | idle $IDLE_N answered | RSS MiB (idle) | UDP (8) dgram/s | p99 us |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in $ROWS; do
	case " $ONLY " in *" $row "*) ;; *) continue ;; esac
	echo "| $(label "$row") | $(cell_rate "$row" p1) | $(cell_p99 "$row" p1) |" \
	    "$(cell_rate "$row" p50) | $(cell_p99 "$row" p50) |" \
	    "$(cell_rate "$row" c8) | $(cell_p99 "$row" c8) |" \
	    "$(cell_idle "$row") | $(cell_rss "$row") |" \
	    "$(cell_rate "$row" udp) | $(cell_p99 "$row" udp) |"
done
echo
echo "Sequential servers serve one connection at a time, so the 50-client"
echo "persistent scenario does not apply to them (49 clients would wait)."
for row in $ROWS; do
	[ -n "${NOTE[$row]:-}" ] && echo "- $(label "$row"): ${NOTE[$row]}"
done

# Server CPU time per operation: less sensitive than throughput to other
# load on the machine.
echo
echo "Server CPU per operation (us; fork servers include their children):"
echo
echo "| server | 1 client | 50 clients | connect (8) | UDP (8) |"
echo "|---|---:|---:|---:|---:|"
for row in $ROWS; do
	case " $ONLY " in *" $row "*) ;; *) continue ;; esac
	echo "| $(label "$row") | $(cpu_per_op "$row" p1) | $(cpu_per_op "$row" p50) |" \
	    "$(cpu_per_op "$row" c8) | $(cpu_per_op "$row" udp) |"
done

# The target ratios come from the paired rounds (see above), not from the
# table: "unpaired" (the two rows of the table) is shown for comparison only.
echo
if [ "$PAIRS" -gt 0 ]; then
	echo "Target ratios, from the paired rounds, not from the table above: for each"
	echo "target both servers ran at once and the load generator alternated between"
	echo "them, $PAIR_SECS s each, A then B, then B then A, $PAIRS round pairs. Each round pair"
	echo "gives one ratio; the median is judged, min and max show the spread. The"
	echo "rates are each side's median over the paired rounds. \"unpaired\" is the ratio"
	echo "of the two rows of the table above, for comparison only."
else
	echo "BENCH_PAIRS=0: no paired rounds, so no target is judged. \"unpaired\" is the"
	echo "ratio of the two rows of the table above, for comparison only."
fi
echo
echo "\"loadgen CPU\" is the load generator's median CPU use in echotimed's rounds: at"
echo "90 % or more the client, not echotimed, set the pace, and the ratio is a lower bound."
echo
echo "\"steal\" is the median share of all CPUs' time that the host took from this"
echo "machine during the pair's rounds (/proc/stat): a measure of the noise."
echo
echo "| ratio | echotimed | python | median ratio | min | max | target | | unpaired | loadgen CPU | steal |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
MISSED=0
x2() {	# x2 NUMBER: "1.23x", or "n/a"
	awk -v v="${1:-}" 'BEGIN { if (v == "") print "n/a"; else printf "%.2fx", v }'
}
ratio() {	# ratio TEXT ROW-A ROW-B SCEN TARGET
	local key=$2:$3:$4 a=${RATE[$2,$4]:-} b=${RATE[$3,$4]:-} u med verdict=""
	case "$a:$b" in
	*[!0-9.:]* | :* | *:) u="n/a" ;;
	*) u=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }') ;;
	esac
	med=${PR_MED[$key]:-}
	if [ -z "$med" ]; then
		if [ "$PAIRS" = 0 ]; then
			verdict="not judged (BENCH_PAIRS=0)"
		else
			if selected "$2" && selected "$3"; then
				verdict="no valid paired round${PR_BAD[$key]:+ (${PR_BAD[$key]} failed or counted errors)}; ${PR_NOTE[$key]:-}"
			else
				verdict="not run (BENCH_ONLY)"
			fi
		fi
		echo "| $1 | n/a | n/a | n/a | | | >= $5x | ${verdict%; } | $u | | |"
		return
	fi
	if awk -v r="$med" -v t="$5" 'BEGIN { exit !(r + 0 >= t + 0) }'; then
		verdict="meets"
	else
		verdict="**below**"
		MISSED=1
	fi
	if [ -n "${PR_BAD[$key]:-}" ]; then
		verdict+=" (${PR_BAD[$key]} rounds failed or counted errors; median of ${PR_N[$key]} of $PAIRS ratios)"
	fi
	[ -z "${PR_NOTE[$key]:-}" ] || verdict+=" (${PR_NOTE[$key]%; })"
	echo "| $1 | $(num0 "${PR_A[$key]:-}") | $(num0 "${PR_B[$key]:-}") | $(x2 "$med") |" \
	    "$(x2 "${PR_MIN[$key]:-}") | $(x2 "${PR_MAX[$key]:-}") | >= $5x | $verdict | $u |" \
	    "$(awk -v b="${PR_BUSY[$key]:-}" 'BEGIN { if (b == "") print "n/a"; else printf "%.0f %%", b * 100 }') |" \
	    "$(awk -v b="${PR_STEAL[$key]:-}" 'BEGIN { if (b == "") print "n/a"; else printf "%.1f %%", b }') |"
}
ratio "thread vs threading, 50 clients req/s" thread py-threading p50 1.6
ratio "thread vs threading, connect rate" thread py-threading c8 4
ratio "fork vs forking, connect rate" fork py-forking c8 6
ratio "sequential UDP vs UDPServer, dgram/s" sequential py-udp udp 1.4
ratio "event vs threading, 50 clients req/s" event py-threading p50 2.3
ratio "event vs threading, connect rate" event py-threading c8 4.5
ratio "event, busy_poll $BUSY_POLL, vs threading, connect rate" event-poll py-threading c8 4.5

# The floor under the fork model on this machine: fork, _exit, waitpid of
# a process that maps the same libraries, on the server CPU.  A fork
# server cannot serve a connection in less, whatever it does.
if selected fork; then
	fc_libs=$("${SRV_PIN[@]}" "$FORKCOST-libs" | grep '^FORKCOST ' || true)
	fc_libc=$("${SRV_PIN[@]}" "$FORKCOST-libc" | grep '^FORKCOST ' || true)
	echo "forkcost libs $fc_libs" >>"$RESULTS"
	echo "forkcost libc $fc_libc" >>"$RESULTS"
	echo
	echo "Fork floor on this machine (tests/bench/forkcost.c: fork, _exit and waitpid," \
	    "nothing else, on the server CPU):" \
	    "$(field "$fc_libs" us_per_fork) us per child with echotimed's libraries" \
	    "($(field "$fc_libs" mappings) mappings)," \
	    "$(field "$fc_libc" us_per_fork) us with libc only ($(field "$fc_libc" mappings) mappings)." \
	    "echotimed fork used $(cpu_per_op fork c8) us of CPU per connection in the connect scenario" \
	    "and Python forking $(cpu_per_op py-forking c8) us."
fi

echo
echo "Raw RESULT lines: $RESULTS.  Finished in ${SECONDS} s."
if [ "$FAILED" != 0 ]; then
	echo "bench: an echotimed run or a paired round counted errors or failed (see $RESULTS)" >&2
	exit 1
fi
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$MISSED" != 0 ]; then
	echo "bench: a product target was missed" >&2
	exit 1
fi
exit 0
