#!/bin/bash
# nspawn-test.sh - echotimed under a real systemd (252 on Debian 12), booted
# in systemd-nspawn from the host's own /usr with a volatile root.
#
#   sudo tests/systemd/nspawn-test.sh        (make check-systemd)
#
# What it does, all bounded by timeouts (the whole run < 7 minutes, most of
# it building two packages):
#   "make deb", and the same tree rebuilt as a newer version (one more
#   changelog entry, in the copy only); score the packaged units
#   (systemd-analyze security --offline); boot a container whose /usr is
#   the host's with a writable overlay and whose dpkg database is a copy of
#   the host's, then: "apt-get install ./echotimed_*.deb" enables and
#   starts echotimed (the socket units stay disabled); talk with nc; check
#   the sandbox (seccomp, NoNewPrivs, dynamic uid); journal fields;
#   watchdog; edit the config to model "fork" and reload; a session runs in
#   a child process; restart while a client loop connects (refused
#   connections must be 0: the fd store); a Unix listener survives a
#   restart; "systemctl reload" of a bad file fails while the old
#   configuration answers; upgrade to the newer package during a stream of
#   connections (none refused; the edited conffile stays); stop; the
#   socket-activated variant (drop-in); per-connection echotimed-inetd;
#   an echotimed@foo instance on /etc/echotimed/foo.conf, behind a PROXY
#   v1 header;
#   "apt-get purge" with the service and a socket unit running (nothing
#   left running, no /etc/echotimed, no units); power off.  Nothing is left
#   running (trap).
#
# Exit 0 = pass, 77 = skipped (cannot boot a container here; reason on the
# "SKIP:" line), anything else = failure.  Needs root.
# Environment: KEEP=1 keeps the work directory (/tmp/echotimed-nspawn.*).

set -u -o pipefail

if [ -z "${NSPAWN_TEST_WORK:-}" ]; then
	# The outer half: one hard time limit for everything, and a last
	# cleanup in case the limit cut the inner half short.  timeout(1)
	# signals its whole process group, so systemd-nspawn gets SIGTERM and
	# powers the container off; whatever is still alive is stopped here.
	work=$(mktemp -d /tmp/echotimed-nspawn.XXXXXX) || exit 1
	NSPAWN_TEST_WORK=$work timeout -k 15 420 bash "$0" "$@"
	rc=$?
	pid=$(cat "$work/nspawn.pid" 2>/dev/null)
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd-nspawn ]
	then
		echo "cleanup: stopping the leftover systemd-nspawn $pid"
		kill -TERM "$pid" 2>/dev/null
		for i in $(seq 1 50); do
			[ -d "/proc/$pid" ] || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "FAIL: time limit (420 s) exceeded"
		rc=1
	fi
	if [ -n "${KEEP:-}" ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
fi

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MACHINE="echotimed-test-$$"
WORK=$NSPAWN_TEST_WORK
NSPAWN_PID=""
CPID=""
LOOP_PID=""
RESULT=1

say()  { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
skip() { say "SKIP: $*"; RESULT=77; exit 77; }

fail() {
	say "FAIL: $*"
	if [ -n "$CPID" ] && [ -d "/proc/$CPID" ]; then
		say "--- systemctl status (container)"
		C systemctl --no-pager status 'echotimed*' 2>&1 | tail -40
		say "--- journal (container)"
		C journalctl --no-pager -n 25 -o short-monotonic 2>&1 | tail -25
	fi
	RESULT=1
	exit 1
}

cleanup() {
	local i
	trap - EXIT INT TERM
	if [ -n "$LOOP_PID" ] && kill -0 "$LOOP_PID" 2>/dev/null; then
		kill "$LOOP_PID" 2>/dev/null
		wait "$LOOP_PID" 2>/dev/null
	fi
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		if [ -n "$CPID" ] && [ -d "/proc/$CPID" ]; then
			timeout 10 nsenter -t "$CPID" -a systemctl poweroff \
			    >/dev/null 2>&1
		fi
		for i in $(seq 1 100); do
			kill -0 "$NSPAWN_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$NSPAWN_PID" 2>/dev/null; then
			say "container did not power off; killing nspawn $NSPAWN_PID"
			kill -TERM "$NSPAWN_PID" 2>/dev/null
			sleep 2
			kill -KILL "$NSPAWN_PID" 2>/dev/null
		fi
		wait "$NSPAWN_PID" 2>/dev/null
	fi
	: >"$WORK/nspawn.pid"
	exit "$RESULT"
}
trap cleanup EXIT
trap 'say "interrupted"; RESULT=1; exit 1' INT TERM

# In the container: every namespace, a time limit.
C() { timeout 30 nsenter -t "$CPID" -a "$@"; }
# A host program in the container's network namespace only.
N() { timeout 30 nsenter -t "$CPID" -n "$@"; }
prop() { C systemctl show -p "$1" --value "$2"; }

# ---- preconditions ----------------------------------------------------------

[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn)"
for t in systemd-nspawn nsenter python3 nc systemd-analyze make timeout \
    dpkg-buildpackage dh dpkg-deb apt-get; do
	command -v "$t" >/dev/null 2>&1 || skip "$t not installed (make deps)"
done
[ -x /usr/lib/systemd/systemd ] || [ -x /lib/systemd/systemd ] ||
    skip "no systemd in /usr to boot"
# --volatile=yes boots the host's /usr alone: only a merged /usr works.
[ -L /lib ] && [ -L /bin ] || skip "the host has no merged /usr"

# ---- build the packages -----------------------------------------------------

step "make deb, and a rebuilt package with a higher version for the upgrade"
if ! timeout 240 make -C "$ROOT" -s deb DEB_DIR="$WORK/deb" \
    >"$WORK/deb.log" 2>&1; then
	tail -40 "$WORK/deb.log"
	fail "make deb failed"
fi
DEB1=$(ls "$WORK"/deb/echotimed_*.deb) || fail "make deb made no package"
TREE=$(ls -d "$WORK"/deb/echotimed-*/)
V1=$(dpkg-deb -f "$DEB1" Version)
V2="$V1+test1"
# The upgrade is the same tree rebuilt with one more changelog entry, in a
# copy: conf/debian stays as it is.
mkdir -p "$WORK/deb2"
cp -a "$TREE" "$WORK/deb2/tree"
(
	cd "$WORK/deb2/tree" || exit 1
	{
		printf 'echotimed (%s) unstable; urgency=medium\n\n' "$V2"
		printf '  * Rebuilt by nspawn-test.sh for the upgrade test.\n\n'
		printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -S Maintainer)" \
		    "$(date -R)"
		cat debian/changelog
	} >debian/changelog.new && mv debian/changelog.new debian/changelog &&
	DEB_BUILD_OPTIONS=nocheck timeout 240 dpkg-buildpackage -us -uc -b
) >"$WORK/deb2.log" 2>&1 || { tail -40 "$WORK/deb2.log"; fail "the rebuild failed"; }
DEB2=$(ls "$WORK"/deb2/echotimed_"$V2"_*.deb) || fail "no $V2 package"
say "packages: ${DEB1##*/} ${DEB2##*/}"

# What the package installs, as files: the units, the binary, the conffile.
PKG="$WORK/pkgroot"
dpkg-deb -x "$DEB1" "$PKG" || fail "dpkg-deb -x failed"
UNITDIR=/lib/systemd/system
[ -f "$PKG$UNITDIR/echotimed.service" ] || fail "no echotimed.service in $UNITDIR"
[ -x "$PKG/usr/sbin/echotimed" ] || fail "no /usr/sbin/echotimed in the package"
conffiles=$(dpkg-deb --ctrl-tarfile "$DEB1" | tar -xO ./conffiles)
[ "$conffiles" = /etc/echotimed/echotimed.conf ] ||
    fail "conffiles: \"$conffiles\", not /etc/echotimed/echotimed.conf"
grep -q '@sbindir@\|@sysconfdir@' "$PKG$UNITDIR"/* &&
    fail "unsubstituted @...@ in the packaged units"
ls -l "$PKG$UNITDIR"

step "exposure (systemd-analyze security --offline=yes, packaged units)"
SEC="$WORK/sec"
mkdir -p "$SEC/echotimed.service.d"
cp "$PKG$UNITDIR"/echotimed* "$SEC/"
score() {
	(cd "$1" && systemd-analyze security --offline=yes --threshold="$3" "$2" \
	    2>&1 | sed -n 's/.*Overall exposure level for \([^:]*\): \([0-9.]*\).*/\2/p')
}
verify_score() {	# dir unit threshold label
	local s
	s=$(score "$1" "$2" "$3")
	[ -n "$s" ] || fail "no exposure score for $2"
	say "exposure $4: $s (limit $(awk "BEGIN { printf \"%.1f\", $3 / 10 }"))"
	(cd "$1" && systemd-analyze security --offline=yes --threshold="$3" \
	    "$2" >/dev/null 2>&1) || fail "$4: exposure $s above the limit"
}
verify_score "$SEC" echotimed.service 15 "echotimed.service"
verify_score "$SEC" echotimed@x.service 15 "echotimed@.service (packaged)"
verify_score "$SEC" echotimed-inetd@x.service 5 "echotimed-inetd@.service"
cp "$ROOT/systemd/echotimed-socket-activated.conf" \
    "$SEC/echotimed.service.d/socket-activated.conf"
verify_score "$SEC" echotimed.service 5 "echotimed.service + socket-activated.conf"

# ---- container files --------------------------------------------------------

python3 -c 'import uuid; print(uuid.uuid4().hex)' >"$WORK/machine-id"
mkdir -p "$WORK/dropin" "$WORK/usr-upper" "$WORK/debs"
cp "$DEB1" "$DEB2" "$WORK/debs/"
# dpkg in the container works on a copy of the host's database: it sees
# libc6, libconfig9 and libsystemd0 installed.  The statoverrides name
# groups that the container's empty /etc does not have.
cp -a /var/lib/dpkg "$WORK/dpkg" || fail "cannot copy /var/lib/dpkg"
: >"$WORK/dpkg/statoverride"
# Short timeouts so that a broken start fails fast; a 2 s watchdog so that
# the test sees WATCHDOG=1 arrive (the unit itself says 30 s).
cat >"$WORK/dropin/test.conf" <<'EOF'
[Service]
TimeoutStartSec=10s
TimeoutStopSec=20s
WatchdogSec=2s
EOF

cat >"$WORK/client.py" <<'EOF'
import json, os, socket, subprocess, sys, time

def counts():
    return {"ok": 0, "refused": 0, "reset": 0, "timeout": 0, "bad": 0,
            "other": 0, "max_ms": 0}

def one(i, port, r):
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.settimeout(5)
        s.sendall(b"c%d\nexit\n" % i)
        buf = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        s.close()
        if buf.startswith(b"c%d " % i) and buf.count(b"\n") == 2:
            r["ok"] += 1
        else:
            r["bad"] += 1
            r.setdefault("bad_sample", repr(buf[:80]))
    except ConnectionRefusedError:
        r["refused"] += 1
    except ConnectionResetError:
        r["reset"] += 1
    except socket.timeout:
        r["timeout"] += 1
    except OSError as e:
        r["other"] += 1
        r.setdefault("other_sample", str(e))
    r["max_ms"] = max(r["max_ms"], int((time.monotonic() - t0) * 1000))

def loop(n, gap, port):
    r = counts()
    for i in range(n):
        one(i, port, r)
        time.sleep(gap)
    print(json.dumps(r))

def stream(port, stop, seconds):
    """Connections every 10 ms until the file stop exists, then 20 more;
    at most 20000 and seconds.  stop.started appears after the first 10."""
    r = counts()
    end = time.monotonic() + seconds
    last = None
    for i in range(20000):
        if time.monotonic() > end:
            r["unfinished"] = 1
            break
        one(i, port, r)
        if i == 9:
            with open(stop + ".started", "w") as f:
                f.write("%d\n" % (i + 1))
        if last is None and os.path.exists(stop):
            last = i + 20
        if last is not None and i >= last:
            break
        time.sleep(0.01)
    r["connections"] = i + 1
    print(json.dumps(r))

def hold(port, cmd):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    s.sendall(b"held\n")
    print(s.recv(200).decode().strip())
    sys.stdout.flush()
    subprocess.run(cmd)
    s.close()

def udp(port, text):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3)
    s.sendto(text.encode() + b"\n", ("127.0.0.1", port))
    print(s.recv(200).decode().strip())

def journal(fields, pattern):
    want = fields.split(",")
    for line in sys.stdin:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if pattern in str(rec.get("MESSAGE", "")) and \
                all(k in rec for k in want):
            print(" ".join("%s=%s" % (k, rec[k]) for k in
                           ["MESSAGE", "SYSLOG_IDENTIFIER"] + want))
            return 0
    return 1

def count(pattern):
    n = u = 0
    for line in sys.stdin:
        rec = json.loads(line)
        if pattern in str(rec.get("MESSAGE", "")):
            n += 1
            u += "_SYSTEMD_UNIT" in rec
    print(n, u)

cmd = sys.argv[1]
if cmd == "loop":
    loop(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
elif cmd == "stream":
    stream(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
elif cmd == "hold":
    hold(int(sys.argv[2]), sys.argv[3:])
elif cmd == "udp":
    udp(int(sys.argv[2]), sys.argv[3])
elif cmd == "journal":
    sys.exit(journal(sys.argv[2], sys.argv[3]))
elif cmd == "count":
    count(sys.argv[2])
EOF
CLIENT="python3 $WORK/client.py"

# ---- boot -------------------------------------------------------------------

step "boot systemd in systemd-nspawn (machine $MACHINE)"
systemd-nspawn -q -D / -M "$MACHINE" --volatile=yes --register=no \
    --keep-unit --private-network --console=pipe \
    --overlay="/usr:$WORK/usr-upper:/usr" \
    --bind="$WORK/dpkg:/var/lib/dpkg" \
    --bind-ro="$WORK/debs:/debs" \
    --bind-ro="$WORK/machine-id:/etc/machine-id" \
    --bind="$WORK/dropin:/etc/systemd/system/echotimed.service.d" \
    -b systemd.mask=systemd-machine-id-commit.service \
    </dev/null >"$WORK/boot.log" 2>&1 &
NSPAWN_PID=$!
echo "$NSPAWN_PID" >"$WORK/nspawn.pid"
for i in $(seq 1 150); do
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	CPID=$(pgrep -P "$NSPAWN_PID" -x systemd | head -1)
	[ -n "$CPID" ] && break
	sleep 0.1
done
if [ -z "$CPID" ]; then
	tail -20 "$WORK/boot.log"
	skip "systemd-nspawn did not start systemd here (see above)"
fi
say "container PID 1 is host PID $CPID"
# systemctl needs the manager's private bus: it appears a little later.
state=""
for i in $(seq 1 300); do
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	if timeout 5 nsenter -t "$CPID" -m test -S /run/systemd/private; then
		state=$(timeout 60 nsenter -t "$CPID" -a systemctl \
		    is-system-running --wait 2>&1)
		break
	fi
	sleep 0.1
done
say "is-system-running: $state"
case "$state" in
running) ;;
degraded) C systemctl --failed --no-legend --no-pager ;;
"")	tail -20 "$WORK/boot.log"
	skip "systemd started in the container but never became reachable" ;;
*)	tail -20 "$WORK/boot.log"; fail "the container did not finish booting" ;;
esac
C systemctl --version | head -1

# The container's view of its files, from the host.
CROOT=/proc/$CPID/root
CONF=$CROOT/etc/echotimed/echotimed.conf

# ---- install, talk ----------------------------------------------------------

# apt as an administrator runs it, offline: the package's dependencies are
# installed.  The host's /usr has a policy-rc.d that forbids starting
# services (a container image's habit); a real system has none, so the
# overlay drops it.
apt_get() {	# log-file apt-get-arguments...
	local log=$1
	shift
	timeout 120 nsenter -t "$CPID" -a env DEBIAN_FRONTEND=noninteractive \
	    apt-get -y -o Dpkg::Use-Pty=0 "$@" >"$log" 2>&1
	local rc=$?
	grep -v '^(Reading database' "$log" | sed 's/^/  /'
	return $rc
}
C mkdir -p /etc/apt/apt.conf.d /etc/apt/sources.list.d /etc/apt/preferences.d \
    /var/lib/apt/lists/partial /var/cache/apt/archives/partial /var/log/apt
C touch /etc/apt/sources.list
C rm -f /usr/sbin/policy-rc.d

step "apt-get install ./${DEB1##*/}"
apt_get "$WORK/install.log" install "/debs/${DEB1##*/}" ||
    fail "apt-get install failed"
for u in echotimed.service echotimed.socket echotimed-inetd.socket; do
	say "$u: $(C systemctl is-enabled "$u") $(prop ActiveState "$u")"
done
[ "$(C systemctl is-enabled echotimed.service)" = enabled ] ||
    fail "the package did not enable echotimed.service"
[ "$(prop ActiveState echotimed)" = active ] ||
    fail "the package did not start echotimed.service"
for u in echotimed.socket echotimed-inetd.socket; do
	[ "$(C systemctl is-enabled "$u")" = disabled ] &&
	    [ "$(prop ActiveState "$u")" = inactive ] ||
	    fail "the package enabled or started $u"
done
MAIN=$(prop MainPID echotimed)
status=$(prop StatusText echotimed)
say "MainPID $MAIN; StatusText: $status"
case "$status" in
*"model thread; listening on tcp 127.0.0.1:9999"*) ;;
*)	fail "unexpected STATUS" ;;
esac
C grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff|CapBnd):' "/proc/$MAIN/status" \
    >"$WORK/procstatus" || fail "no /proc/$MAIN/status"
tr '\t' ' ' <"$WORK/procstatus" | sed 's/^/  /'
grep -q '^Seccomp:.*2' "$WORK/procstatus" || fail "no seccomp filter"
grep -q '^NoNewPrivs:.*1' "$WORK/procstatus" || fail "NoNewPrivs not set"
grep -q '^Uid:[[:space:]]*0[[:space:]]' "$WORK/procstatus" &&
    fail "runs as root"
grep -q '^CapEff:[[:space:]]*0*$' "$WORK/procstatus" ||
    fail "has effective capabilities"

out=$(printf 'hello\nexit\n' | N nc -N 127.0.0.1 9999)
say "nc: $(echo "$out" | tr '\n' '|')"
echo "$out" | grep -Eq '^hello [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]{2} ' ||
    fail "no echo from the daemon"
[ "$(echo "$out" | wc -l)" = 2 ] || fail "expected 2 reply lines"

step "journal fields (journalctl -u echotimed -o json)"
jline=""
for i in $(seq 1 50); do
	jline=$(C journalctl -u echotimed -o json --no-pager |
	    $CLIENT journal PEER,TRANSPORT,LISTENER,DURATION_MS,LINES closed) &&
	    break
	sleep 0.1
done
[ -n "$jline" ] || fail "no close record with PEER/TRANSPORT/LISTENER/DURATION_MS/LINES"
say "$jline"

step "watchdog (WatchdogSec=2s from the test drop-in)"
w1=$(prop WatchdogTimestampMonotonic echotimed)
sleep 2.5
w2=$(prop WatchdogTimestampMonotonic echotimed)
say "WatchdogUSec=$(prop WatchdogUSec echotimed) last ping $w1 -> $w2"
[ "$w2" != 0 ] && [ "$w2" != "$w1" ] || fail "no WATCHDOG=1 seen by systemd"
[ "$(prop MainPID echotimed)" = "$MAIN" ] || fail "restarted by the watchdog"

# ---- reload to the fork model -----------------------------------------------

step "edit echotimed.conf: model = \"fork\"; systemctl reload echotimed"
C sed -i 's/model = "thread"/model = "fork"/' /etc/echotimed/echotimed.conf
C grep -n 'model = ' /etc/echotimed/echotimed.conf
C /usr/sbin/echotimed -t -c /etc/echotimed/echotimed.conf ||
    fail "echotimed -t rejects the edited config"
C systemctl reload echotimed || fail "reload failed"
# ExecReload= checked the file before its SIGHUP.
C journalctl -u echotimed --no-pager -o cat | grep -x \
    'echotimed: /etc/echotimed/echotimed.conf: configuration OK' ||
    fail "no \"echotimed -t\" output from ExecReload= in the journal"
# RELOADING=1 may reach systemd after kill(1) returned: poll the status.
for i in $(seq 1 50); do
	status=$(prop StatusText echotimed)
	case "$status" in *"model fork"*) break ;; esac
	sleep 0.1
done
say "StatusText: $status"
case "$status" in *"model fork"*) ;; *) fail "reload did not apply" ;; esac
[ "$(prop MainPID echotimed)" = "$MAIN" ] || fail "reload changed MainPID"
out=$(N $CLIENT hold 9999 nsenter -t "$CPID" -a ps --ppid "$MAIN" -o pid=,comm=)
say "a session held open; children of $MAIN:"
echo "$out" | sed 's/^/  /'
echo "$out" | sed -n 2,9p | grep echotimed >/dev/null ||
    fail "no child process serves the session in the fork model"

# ---- restart under load -----------------------------------------------------

step "systemctl restart echotimed during 300 connections over ~3 s"
N $CLIENT loop 300 0.01 9999 >"$WORK/loop.json" &
LOOP_PID=$!
sleep 1
C systemctl restart echotimed || fail "restart failed"
wait "$LOOP_PID"
LOOP_PID=""
loop=$(cat "$WORK/loop.json")
say "client loop: $loop"
NEWMAIN=$(prop MainPID echotimed)
say "MainPID $MAIN -> $NEWMAIN"
[ "$NEWMAIN" != "$MAIN" ] && [ "$NEWMAIN" != 0 ] || fail "no new process"
REFUSED=$(echo "$loop" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refused"])')
OKS=$(echo "$loop" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])')
say "refused connections during restart: $REFUSED (answered: $OKS of 300)"
jr=$(C journalctl -u echotimed --no-pager -o cat _PID="$NEWMAIN")
echo "$jr" | grep -E 'adopted|passed'
[ "$REFUSED" = 0 ] || fail "$REFUSED connections refused during restart"
[ "$OKS" = 300 ] || fail "only $OKS of 300 connections answered"
case "$jr" in *'adopted tcp socket 127.0.0.1:9999'*) ;;
*)	fail "the new process did not take the socket from the fd store" ;;
esac

step "journal attribution in the fork model"
read -r n u < <(C journalctl -t echotimed -o json --no-pager | $CLIENT count "closed:")
say "close records: $n; with _SYSTEMD_UNIT (shown by journalctl -u): $u"
[ "$n" -gt 0 ] || fail "no close records at all"
[ "$u" = "$n" ] || say "WARNING: $((n - u)) close records logged by short-lived fork children lack _SYSTEMD_UNIT (journald race); journalctl -u echotimed misses them"

# ---- a Unix listener across restart -----------------------------------------

# Inside the container /etc is empty: no /etc/alternatives/nc.
NC=$(readlink -f "$(command -v nc)")

step "Unix listener in /run/echotimed, reload, restart"
cat >"$CONF" <<'EOF'
listen = (
  { transport = "tcp"; address = "127.0.0.1"; port = 9999; },
  { transport = "unix"; path = "/run/echotimed/echotimed.sock"; mode = "0666"; }
);
concurrency = { model = "fork"; };
EOF
C systemctl reload echotimed || fail "reload failed"
for i in $(seq 1 50); do
	case "$(prop StatusText echotimed)" in *echotimed.sock*) break ;; esac
	sleep 0.1
done
out=$(printf 'via unix\n' | C "$NC" -N -U /run/echotimed/echotimed.sock)
say "nc -U: $out"
case "$out" in "via unix "*) ;; *) fail "no answer on the Unix socket" ;; esac
C ls -l /run/echotimed/
C systemctl restart echotimed || fail "restart failed"
out=$(printf 'after restart\n' | C "$NC" -N -U /run/echotimed/echotimed.sock)
say "nc -U after restart: $out"
case "$out" in
"after restart "*) ;;
*)	C ls -la /run/echotimed/; fail "the Unix socket does not answer after a restart" ;;
esac
MAIN=$(prop MainPID echotimed)
jr=$(C journalctl -u echotimed --no-pager -o cat _PID="$MAIN")
case "$jr" in *'adopted unix socket'*) ;;
*)	fail "the Unix socket was not taken back from the fd store" ;;
esac

step "a bad config: systemctl reload fails, the old one keeps serving"
cp "$CONF" "$WORK/good.conf"
sed -i 's/model = "fork"/model = "forks"/' "$CONF"
C systemctl reload echotimed 2>"$WORK/reload.err" &&
    fail "systemctl reload exited 0 on a bad file"
say "systemctl reload: exit status non-zero: $(head -1 "$WORK/reload.err")"
err=$(C journalctl -u echotimed --no-pager -o cat | grep 'concurrency.model')
say "journal: $err"
case "$err" in *'/etc/echotimed/echotimed.conf:'[0-9]*': concurrency.model: '*) ;;
*)	fail "the journal does not name file:line: setting" ;;
esac
[ "$(prop MainPID echotimed)" = "$MAIN" ] && [ "$(prop ActiveState echotimed)" = active ] ||
    fail "a bad config stopped the service"
status=$(prop StatusText echotimed)
say "StatusText: $status"
case "$status" in *"model fork"*) ;; *) fail "the old configuration is gone" ;; esac
out=$(printf 'still\n' | N nc -N 127.0.0.1 9999)
case "$out" in "still "*) ;; *) fail "no answer after a failed reload" ;; esac
out=$(printf 'still unix\n' | C "$NC" -N -U /run/echotimed/echotimed.sock)
case "$out" in "still unix "*) ;; *) fail "no answer on the Unix socket after a failed reload" ;; esac
cp "$WORK/good.conf" "$CONF"
C systemctl reload echotimed || fail "reload of the good file failed"

# ---- upgrade ----------------------------------------------------------------

# The conffile is edited now (the Unix listener above).  apt-get unpacks the
# new binary, then the postinst restarts echotimed.service: its listening
# sockets wait in the fd store meanwhile, so the client refuses none.
step "upgrade to $V2 during a stream of connections"
cp "$CONF" "$WORK/edited.conf"
MAIN=$(prop MainPID echotimed)
timeout 100 nsenter -t "$CPID" -n $CLIENT stream 9999 "$WORK/stop" 90 \
    >"$WORK/upgrade.json" &
LOOP_PID=$!
for i in $(seq 1 50); do
	[ -s "$WORK/stop.started" ] && break
	sleep 0.1
done
apt_get "$WORK/upgrade.log" install "/debs/${DEB2##*/}" ||
    fail "apt-get install of the newer package failed"
touch "$WORK/stop"
wait "$LOOP_PID"
LOOP_PID=""
up=$(cat "$WORK/upgrade.json")
say "client stream: $up"
read -r UP_OK UP_REFUSED UP_FAILED < <(echo "$up" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["ok"], r["refused"], sum(v for k, v in r.items()
      if k not in ("ok", "refused", "max_ms", "connections")
      and isinstance(v, int)))')
say "connections during the upgrade: $UP_OK answered, $UP_REFUSED refused, $UP_FAILED failed otherwise"
v=$(C dpkg-query -W -f='${Version}' echotimed)
NEWMAIN=$(prop MainPID echotimed)
say "installed: $v; MainPID $MAIN -> $NEWMAIN"
[ "$v" = "$V2" ] || fail "the upgrade did not install $V2"
[ "$NEWMAIN" != "$MAIN" ] && [ "$NEWMAIN" != 0 ] ||
    fail "the upgrade did not restart echotimed"
[ "$UP_REFUSED" = 0 ] || fail "$UP_REFUSED connections refused during the upgrade"
[ "$UP_FAILED" = 0 ] || fail "$UP_FAILED connections failed during the upgrade"
[ "$UP_OK" -gt 0 ] || fail "no connection during the upgrade"
jr=$(C journalctl -u echotimed --no-pager -o cat _PID="$NEWMAIN")
echo "$jr" | grep adopted
case "$jr" in *'adopted tcp socket 127.0.0.1:9999'*) ;;
*)	fail "the upgraded daemon did not take the socket from the fd store" ;;
esac
cmp -s "$WORK/edited.conf" "$CONF" || fail "the upgrade changed the edited conffile"
ls "$CROOT/etc/echotimed/" | grep -v '^echotimed.conf$' &&
    fail "the upgrade left files next to the conffile"
say "the edited conffile is unchanged"

# ---- stop -------------------------------------------------------------------

step "systemctl stop echotimed"
C systemctl stop echotimed || fail "stop failed"
say "ActiveState=$(prop ActiveState echotimed) Result=$(prop Result echotimed) ExecMainStatus=$(prop ExecMainStatus echotimed)"
[ "$(prop Result echotimed)" = success ] || fail "stop was not clean"
N nc -z 127.0.0.1 9999 && fail "port 9999 still open after stop"
C test -e /run/echotimed && fail "/run/echotimed left after stop"
C journalctl -u echotimed --no-pager -o cat -n 3

# ---- socket activation with the tight sandbox --------------------------------

step "echotimed.socket + socket-activated.conf"
cp "$ROOT/systemd/echotimed-socket-activated.conf" "$WORK/dropin/socket-activated.conf"
cat >"$CONF" <<'EOF'
listen = (
  { transport = "tcp"; address = "127.0.0.1"; port = 9999; },
  { transport = "udp"; address = "127.0.0.1"; port = 9999; }
);
EOF
C systemctl daemon-reload
C systemctl start echotimed.socket || fail "echotimed.socket did not start"
[ "$(prop ActiveState echotimed.service)" = inactive ] ||
    fail "the service started before any connection"
out=$(printf 'activated\nexit\n' | N nc -N 127.0.0.1 9999)
say "nc: $(echo "$out" | tr '\n' '|')"
case "$out" in "activated "*) ;; *) fail "no answer through socket activation" ;; esac
[ "$(prop ActiveState echotimed.service)" = active ] || fail "service not active"
out=$(N $CLIENT udp 9999 datagram) || fail "no UDP answer"
say "udp: $out"
MAIN=$(prop MainPID echotimed)
netns=$(C readlink "/proc/$MAIN/ns/net")
[ "$netns" != "$(C readlink /proc/1/ns/net)" ] || fail "PrivateNetwork= not in effect"
jr=$(C journalctl -u echotimed --no-pager -o cat _PID="$MAIN")
echo "$jr" | grep -E 'adopted|passed'
case "$jr" in *'matches no configured listener'*)
	fail "a passed socket matched no listener" ;;
esac
[ "$(echo "$jr" | grep -c adopted)" = 2 ] || fail "expected 2 adopted sockets"
say "online: $(C systemd-analyze security echotimed.service 2>/dev/null | tail -1)"
N $CLIENT loop 100 0.01 9999 >"$WORK/loop2.json" &
LOOP_PID=$!
sleep 0.4
C systemctl restart echotimed.service || fail "restart failed"
wait "$LOOP_PID"
LOOP_PID=""
say "client loop during restart (socket-activated): $(cat "$WORK/loop2.json")"
REFUSED2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["refused"])' "$WORK/loop2.json")
[ "$REFUSED2" = 0 ] || fail "$REFUSED2 refused during a socket-activated restart"
C systemctl stop echotimed.socket echotimed.service || fail "stop failed"
rm -f "$WORK/dropin/socket-activated.conf"
C systemctl daemon-reload

# ---- per-connection activation ----------------------------------------------

step "echotimed-inetd.socket (Accept=yes, port 9998)"
C systemctl start echotimed-inetd.socket || fail "echotimed-inetd.socket did not start"
out=$(printf 'per connection\nexit\n' | N nc -N 127.0.0.1 9998)
say "nc: $(echo "$out" | tr '\n' '|')"
case "$out" in "per connection "*) ;; *) fail "no answer from echotimed -i" ;; esac
# An instance lives a few milliseconds: journald may find its process gone
# before it reads its cgroup, and then files the record under no unit (so
# -u misses it).  The record says "inetd mode" itself: look for that too.
inetd_records() {
	C journalctl --no-pager -o cat -u 'echotimed-inetd@*'
	C journalctl --no-pager -o cat SYSLOG_IDENTIFIER=echotimed | grep -F '(inetd mode)'
	return 0	# what it printed is the answer (pipefail)
}
for i in $(seq 1 30); do
	jr=$(inetd_records 2>/dev/null)
	case "$jr" in *'(inetd mode)'*) break ;; esac
	sleep 0.1
done
inetd_records 2>/dev/null | grep -E 'inetd mode|closed' ||
    fail "no journal record from the per-connection instance"
say "Accepted=$(prop NAccepted echotimed-inetd.socket) Connections=$(prop NConnections echotimed-inetd.socket)"
C systemctl stop echotimed-inetd.socket

# ---- one instance per file, behind a (pretend) proxy -------------------------

step "echotimed@foo.service (/etc/echotimed/foo.conf, port 9997, PROXY v1)"
FOO=$CROOT/etc/echotimed/foo.conf
cat >"$FOO" <<'EOF'
listen = ( { transport = "tcp"; address = "127.0.0.1"; port = 9997;
             proxy_protocol = "v1"; proxy_from = [ "127.0.0.1" ]; } );
EOF
chown --reference="$CONF" "$FOO" && chmod --reference="$CONF" "$FOO" ||
    fail "cannot give foo.conf echotimed.conf's owner and mode"
C systemctl start echotimed@foo.service || fail "echotimed@foo did not start"
say "echotimed@foo: $(prop ActiveState echotimed@foo); $(prop StatusText echotimed@foo)"
out=$(printf 'PROXY TCP4 192.0.2.9 127.0.0.1 4242 9997\r\nvia foo\nexit\n' |
    N nc -N 127.0.0.1 9997)
say "nc: $(echo "$out" | tr '\n' '|')"
case "$out" in "via foo "*) ;; *) fail "no answer from echotimed@foo" ;; esac
for i in $(seq 1 30); do
	jr=$(C journalctl --no-pager -o cat -u echotimed@foo)
	case "$jr" in *'connection from 192.0.2.9:4242 via proxy 127.0.0.1'*) break ;; esac
	sleep 0.1
done
echo "$jr" | grep -E 'connection from 192.0.2.9:4242 via proxy 127.0.0.1' ||
    fail "echotimed@foo did not log the client the header named"
C systemctl stop echotimed@foo.service || fail "echotimed@foo did not stop"
[ "$(prop Result echotimed@foo)" = success ] || fail "echotimed@foo did not stop cleanly"
rm -f "$FOO"

# ---- purge ------------------------------------------------------------------

step "apt-get purge echotimed, with echotimed.service and echotimed-inetd.socket running"
C systemctl start echotimed.service echotimed-inetd.socket ||
    fail "cannot start the units before the purge"
[ "$(prop ActiveState echotimed.service)" = active ] &&
    [ "$(prop ActiveState echotimed-inetd.socket)" = active ] ||
    fail "the units did not start"
apt_get "$WORK/purge.log" purge echotimed || fail "apt-get purge failed"
st=$(C dpkg-query -W -f='${db:Status-Abbrev}' echotimed 2>/dev/null)
say "dpkg status after the purge: \"${st:-none}\""
case "$st" in ""|"un "*|"pn "*) ;; *) fail "echotimed is still known to dpkg: $st" ;; esac
[ -e "$CROOT/etc/echotimed" ] && fail "/etc/echotimed is left after the purge"
left=$(ls -d "$CROOT"/lib/systemd/system/echotimed* \
    "$CROOT"/etc/systemd/system/*.wants/echotimed* 2>/dev/null)
[ -z "$left" ] || fail "units left after the purge: $left"
for u in echotimed.service echotimed.socket echotimed-inetd.socket; do
	a=$(prop ActiveState "$u")
	say "$u: $a"
	[ "$a" = inactive ] || fail "$u is $a after the purge"
done
procs=$(C pgrep -l echotimed)
[ -z "$procs" ] || fail "processes left after the purge: $procs"
N nc -z 127.0.0.1 9999 && fail "port 9999 still open after the purge"
N nc -z 127.0.0.1 9998 && fail "port 9998 still open after the purge"
say "nothing left: no /etc/echotimed, no units, no process, no open port"

# ---- power off --------------------------------------------------------------

step "power off"
C systemctl poweroff
for i in $(seq 1 150); do
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$NSPAWN_PID" 2>/dev/null; then
	fail "the container did not power off"
fi
wait "$NSPAWN_PID"
NSPAWN_PID=""
: >"$WORK/nspawn.pid"
say "container stopped"

step "summary"
say "exposure: see above; refused during restart: $REFUSED (fd store), $REFUSED2 (socket unit)"
say "upgrade $V1 -> $V2 under load: $UP_OK answered, $UP_REFUSED refused, $UP_FAILED failed"
say "installed, reloaded (a bad file refused), upgraded (conffile kept), purged (nothing left)"
say "PASS"
RESULT=0
