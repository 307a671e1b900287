"""Abuse and robustness: what a hostile or broken client can do (SPEC 1, 3, 7).

Long lines, many idle connections, garbage bytes, resets, floods, silent
and trickling clients, access lists, datagram loop/reflection defences,
the per-source rate limit and log injection.  Everything talks to loopback
only; every loop is bounded in count and has a deadline; conditions are
polled, never guessed with sleeps.  The only fixed waits are the short
"nothing arrives within N s" windows that prove a client is NOT answered
and the deliberate pauses of the trickling clients.

Also: descriptor exhaustion (max_connections above RLIMIT_NOFILE, so
accept() fails with EMFILE: the daemon must neither spin nor flood its
log) and clients that pipeline lines but never read the replies.

Slow clients: only a complete line restarts the idle timer (SPEC 1), so a
client trickling one byte every 0.3 s is cut by idle_timeout like a silent
one ("ERROR idle timeout"); a faster trickle without LF ends after
max_line_length + 1 bytes with "line too long"; trickles that do send LFs
are bounded by max_connections and max_connections_per_source (tested
below).  In the event (and sequential) model the idle check runs on the
loop's 1 s tick, so the cut comes up to 1 s late.

Figures worth quoting (RSS growth, reply counts of the rate limiter, fd
counts, CPU under EMFILE) are printed on stdout with an "abuse:" prefix.
Memory bounds are only checked when SLOW == 1 (not under sanitizers or
valgrind, which have memory costs of their own).
"""
import os
import random
import re
import resource
import select
import signal
import socket
import struct
import threading
import time

from lib import (SLOW, TS_RE, VALGRIND, Daemon, TestFailure, check,
                 check_reply, connect, recv_until, split_replies, talk,
                 udp_ask)

LIMIT = 4096                                    # default max_line_length
TOO_LONG = b"ERROR line too long (limit %d bytes)\n" % LIMIT
BUSY = b"ERROR server busy\n"
PER_SOURCE = b"ERROR too many connections from your address\n"
IDLE = b"ERROR idle timeout\n"
QUIET = 0.5             # seconds of silence that prove "no reply"
RSS_GROWTH_MAX_KIB = 8 * 1024
LINGER0 = struct.pack("ii", 1, 0)
SPACE = b" \t\r\n\v\f"
TS_BYTES = re.compile(TS_RE)

TCP4 = '{ transport = "tcp"; address = "127.0.0.1"; port = 0; }'
TCP_ANY = '{ transport = "tcp"; address = "::"; port = 0; }'
UDP4 = '{ transport = "udp"; address = "127.0.0.1"; port = 0; }'
UDP_ANY = '{ transport = "udp"; address = "::"; port = 0; }'


def note(fmt, *args):
    print("abuse: " + (fmt % args if args else fmt), flush=True)


def config(listeners=(TCP4,), model="thread", concurrency="", session="",
           extra=""):
    return ('listen = ( %s );\n'
            'concurrency = { model = "%s"; %s };\n'
            'session = { %s };\n%s\n'
            % (", ".join(listeners), model, concurrency, session, extra))


def wait_for(fn, want, timeout=10.0, what="condition"):
    """Poll fn() until it returns want; the last value on timeout."""
    deadline = time.monotonic() + timeout * SLOW
    got = fn()
    while got != want:
        if time.monotonic() > deadline:
            raise TestFailure("%s: wanted %r, still %r after %ss"
                              % (what, want, got, timeout))
        time.sleep(0.02)
        got = fn()
    return got


def stable(fn, polls=5, timeout=5.0):
    """fn()'s value once it reads the same polls times in a row (20 ms
    apart): right after start-up a transient descriptor may still be open."""
    deadline = time.monotonic() + timeout * SLOW
    last, same = fn(), 1
    while same < polls and time.monotonic() < deadline:
        time.sleep(0.02)
        v = fn()
        same = same + 1 if v == last else 1
        last = v
    return last


def idle_baseline(d):
    """The daemon's fd and thread counts, idle, after a warm-up session."""
    check_reply(talk(d.addr(), b"warm-up\n"), "warm-up")
    return stable(d.fds), stable(d.threads)


def back_to_idle(d, fds, thr, model):
    wait_for(d.fds, fds, what="fd count (%s)" % model)
    if model in ("thread", "event", "sequential"):
        wait_for(d.threads, thr, what="thread count (%s)" % model)
    if model == "fork":
        wait_for(d.children, [], what="children (%s)" % model)
    check(d.alive(), "daemon died")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise TestFailure("no VmRSS for %d" % pid)


class RssSampler(threading.Thread):
    """Samples a process's VmRSS until stopped (at most 60 s)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_kib(pid)
        self.stop_ev = threading.Event()

    def run(self):
        deadline = time.monotonic() + 60
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, TestFailure):
                return
            self.stop_ev.wait(0.002)

    def stop(self):
        self.stop_ev.set()
        self.join(5)
        return self.peak


def connect_from(addr, src=None, timeout=5.0):
    host, port = addr
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    try:
        if src:
            s.bind((src, 0))
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def read_all(s, timeout=5.0):
    """(bytes until EOF, reset?) — a reset is reported, not hidden."""
    buf = b""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("no EOF within %ss; got %r" % (timeout, buf[:200]))
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return buf, True
        if not d:
            return buf, False
        buf += d


def silent_for(s, seconds):
    """True if nothing (no data, no EOF) arrives on s within seconds."""
    r, _, _ = select.select([s], [], [], seconds)
    return not r


def threaded(fns, timeout=30.0):
    """Run the callables in threads; re-raise the first failure."""
    results = [None] * len(fns)
    errors = []

    def wrap(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: reported below
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(i, fn), daemon=True)
          for i, fn in enumerate(fns)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + timeout * SLOW
    for t in ts:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in ts):
        raise TestFailure("client threads still running after %ss" % timeout)
    if errors:
        raise errors[0]
    return results


def status_until(d, pattern, timeout=4.0):
    """Wait until STATUS= matches pattern (sent at most once a second)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        d.drain_notify()
        if re.search(pattern, d.status):
            return d.status
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("STATUS never matched %r: %r" % (pattern, d.status))
        try:
            d.latest_status(timeout=left / SLOW)
        except TestFailure:
            pass


# ------------------------------------------------ 1 MiB line without LF

def long_line_client(addr, half_close, size=1 << 20):
    """Send size bytes without LF; return (reply, reset, send error)."""
    s = connect(addr, timeout=10)
    try:
        err = None
        try:
            s.sendall(b"x" * size)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err = e
        out, reset = read_all(s, timeout=10)
        return out, reset, err
    finally:
        s.close()


def _long_line(model, clients=20):
    with Daemon(config(model=model)) as d:
        idle_baseline(d)
        rss0 = rss_kib(d.pid)
        sampler = RssSampler(d.pid)
        sampler.start()
        try:
            # One client that never half-closes: the lingering close ends
            # the session by itself (2 s), still without a reset.
            t0 = time.monotonic()
            out, reset, err = long_line_client(d.addr(), half_close=False)
            single = time.monotonic() - t0
            check(err is None, "send of the long line failed: %r" % err)
            check(not reset, "client got a reset before/after the error "
                  "(read %r)" % out)
            check(out == TOO_LONG, "single long line: got %r" % out[:200])
            # Twenty at once, each closing its write side after the line.
            t0 = time.monotonic()
            res = threaded([lambda: long_line_client(d.addr(), True)
                            for _ in range(clients)], timeout=60)
            many = time.monotonic() - t0
        finally:
            peak = sampler.stop()
        resets = sum(1 for _, r, _ in res if r)
        errs = [e for _, _, e in res if e is not None]
        bad = [o[:100] for o, _, _ in res if o != TOO_LONG]
        note("%s: 1 MiB line: single %.2fs; %d concurrent %.2fs; RSS idle "
             "%d KiB, peak %d KiB (+%d KiB), %d resets", model, single,
             clients, many, rss0, peak, peak - rss0, resets)
        check(not errs, "send errors: %r" % errs[:3])
        check(resets == 0, "%d of %d clients got a reset" % (resets, clients))
        check(not bad, "wrong replies: %r" % bad[:3])
        # Sanitizer and valgrind runs (SLOW > 1) have their own memory costs.
        check(SLOW > 1 or peak - rss0 < RSS_GROWTH_MAX_KIB,
              "RSS grew by %d KiB (idle %d, peak %d)" % (peak - rss0, rss0, peak))
        check_reply(talk(d.addr(), b"after\n"), "after")
        check(d.stop() == 0, "exit status after the long lines")


def test_long_line_1mib_thread():
    _long_line("thread")


def test_long_line_1mib_event():
    _long_line("event")


# ------------------------------------------- 300 idle connections held open

def _idle_many(model, n=300):
    with Daemon(config(model=model, concurrency="max_connections = 1000;")) as d:
        fds, thr = idle_baseline(d)
        socks = []
        try:
            for _ in range(n):
                socks.append(connect(d.addr()))
            wait_for(lambda: d.fds() >= fds + n, True,
                     what="%d idle sessions accepted" % n)
            held_fds, held_thr = d.fds(), d.threads()
            t0 = time.monotonic()
            out = talk(d.addr(), b"fresh\n")
            dt = time.monotonic() - t0
            check_reply(out, "fresh")
            note("%s: %d idle connections: fresh client served in %.1f ms; "
                 "fds idle %d, held %d; threads idle %d, held %d",
                 model, n, dt * 1000, fds, held_fds, thr, held_thr)
            check(dt < 1.0 * SLOW, "fresh client took %.2fs" % dt)
        finally:
            for s in socks:
                s.close()
        back_to_idle(d, fds, thr, model)
        note("%s: fds back to %d after closing them", model, d.fds())
        check(d.stop() == 0, "exit status")


def test_idle_300_thread():
    _idle_many("thread")


def test_idle_300_event():
    _idle_many("event")


# ------------------------------------------------------- random garbage

def expected_replies(data, limit=LIMIT):
    """What SPEC 1 says a session answers to data followed by EOF.

    A list of bytes (TEXT of a reply) or None (the too-long error, after
    which the session ends)."""
    out = []
    pos = 0
    while pos < len(data):
        i = data.find(b"\n", pos)
        if i < 0:
            line = data[pos:]           # final line without LF: CR is text
            out.append(line if len(line) <= limit else None)
            break
        line = data[pos:i]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > limit:
            out.append(None)
            break
        out.append(line)
        if line.strip(SPACE) == b"exit":
            break
        pos = i + 1
    return out


def garbage(rng, size):
    """size random bytes: random LFs, CRs, CRLFs, NULs, 0xff and the rest."""
    out = bytearray()
    while len(out) < size:
        r = rng.random()
        if r < 0.015:
            out += b"\n"
        elif r < 0.022:
            out += b"\r\n"
        elif r < 0.04:
            out += b"\r"
        elif r < 0.06:
            out += b"\x00"
        elif r < 0.08:
            out += b"\xff"
        elif r < 0.16:
            out += bytes([rng.randrange(256)])      # may be LF or CR too
        elif r < 0.20:
            out += b" \t"[rng.randrange(2):][:1]
        else:
            out += bytes([rng.randrange(0x21, 0x7f)])
    return bytes(out)


def exchange(addr, data, rng, timeout=10.0):
    """Send data in random chunks while reading; half-close; read to EOF."""
    s = connect(addr, timeout=timeout)
    sent_err = []
    cuts = []
    pos = 0
    while pos < len(data):          # bounded: each step advances pos
        n = rng.choice((1, 7, 100, 1000, 4096, 9000))
        cuts.append(data[pos:pos + n])
        pos += n

    def sender():
        try:
            for c in cuts:
                s.sendall(c)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            sent_err.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        out, reset = read_all(s, timeout)
    finally:
        t.join(timeout)
        s.close()
    return out, reset, sent_err


def check_transcript(out, want, label):
    got = split_replies(out)
    check(len(got) == len(want), "%s: %d reply lines, expected %d"
          % (label, len(got), len(want)))
    for k, (g, w) in enumerate(zip(got, want)):
        if w is None:
            check(g == TOO_LONG, "%s: line %d: %r, expected the too-long "
                  "error" % (label, k, g[:80]))
            continue
        ok = (len(g) == len(w) + 26 and g[:len(w)] == w and
              g[len(w):len(w) + 1] == b" " and g.endswith(b"\n") and
              TS_BYTES.fullmatch(g[len(w) + 1:-1]) is not None)
        check(ok, "%s: line %d: got %r, expected TEXT %r + timestamp"
              % (label, k, g[:120], w[:120]))


def test_garbage_lines_exact():
    rng = random.Random(0xEC407)
    streams = [garbage(rng, 25000) for _ in range(8)]
    # Edge cases: an overlong line in the middle, an overlong final line,
    # a final line of exactly the limit, and limit bytes + CR without LF.
    streams[3] = streams[3][:9000] + b"\x00" * (LIMIT + 1) + b"\n" + streams[3][9000:]
    streams[4] += b"\n" + b"\xff" * (LIMIT + 1)
    streams[5] += b"\n" + b"\r" * LIMIT
    streams[6] += b"\n" + b"y" * LIMIT + b"\r"
    total = sum(len(x) for x in streams)
    lines = errors = 0
    with Daemon(config(model="thread")) as dt, Daemon(config(model="event")) as de:
        for i, data in enumerate(streams):          # 8 connections
            d = (dt, de)[i % 2]
            want = expected_replies(data)
            out, reset, err = exchange(d.addr(), data, rng)
            check(not err, "stream %d: send failed: %r" % (i, err))
            check(not reset, "stream %d: connection reset" % i)
            check_transcript(out, want, "stream %d (%s)" % (i, ("thread", "event")[i % 2]))
            lines += len(want)
            errors += sum(1 for w in want if w is None)
        check(dt.stop() == 0 and de.stop() == 0, "exit status")
    note("garbage: %d bytes over %d connections, %d replies (%d too-long "
         "errors), all exact", total, len(streams), lines, errors)


# -------------------------------------------------- resets in mid-line

def _reset_midline(model, n=200, batch=50):
    with Daemon(config(model=model)) as d:
        fds, thr = idle_baseline(d)
        for _ in range(n // batch):
            socks = []
            try:
                for _ in range(batch):
                    s = connect(d.addr())
                    socks.append(s)
                    s.sendall(b"hello\nhalf a li")
                # The session surely exists and holds the partial line.
                for s in socks:
                    check_reply(recv_until(s, 1), "hello")
            finally:
                for s in socks:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                    s.close()
        back_to_idle(d, fds, thr, model)
        check_reply(talk(d.addr(), b"still here\n"), "still here")
        note("%s: %d resets mid-line; fds %d, threads %d, children %d",
             model, n, d.fds(), d.threads(), len(d.children()))
        check(d.stop() == 0, "exit status")


def test_reset_midline_thread():
    _reset_midline("thread")


def test_reset_midline_fork():
    _reset_midline("fork")


def test_reset_midline_event():
    _reset_midline("event")


# ------------------------------------------- flood past max_connections

def _flood(model, limit=20, n=100):
    conf = config(model=model, concurrency='max_connections = %d; '
                  'overflow = "reject";' % limit)
    with Daemon(conf) as d:
        fds, thr = idle_baseline(d)
        socks = []
        data = {}
        eof = set()
        try:
            for _ in range(n):
                socks.append(connect(d.addr()))
            idx = {s.fileno(): i for i, s in enumerate(socks)}
            data = {i: b"" for i in range(n)}
            deadline = time.monotonic() + 10 * SLOW
            # Until every overflow client has its EOF (bounded by time).
            while len(eof) < n - limit and time.monotonic() < deadline:
                live = [s for i, s in enumerate(socks) if i not in eof]
                r, _, _ = select.select(live, [], [], 0.2)
                for s in r:
                    i = idx[s.fileno()]
                    try:
                        chunk = s.recv(4096)
                    except ConnectionResetError:
                        chunk = b""
                        data[i] += b"<reset>"
                    if chunk:
                        data[i] += chunk
                    else:
                        eof.add(i)
            busy = sorted(i for i in range(n) if data[i] == BUSY and i in eof)
            check(len(busy) == n - limit, "%d busy replies, expected %d: %r"
                  % (len(busy), n - limit,
                     {i: v for i, v in data.items() if v and v != BUSY}))
            served = [i for i in range(n) if i not in eof]
            check(served == list(range(limit)),
                  "served %r, expected the first %d" % (served, limit))
            for i in served:
                check(silent_for(socks[i], 0.0) and data[i] == b"",
                      "session %d got %r" % (i, data[i]))
                socks[i].sendall(b"ping %d\n" % i)
            for i in served:
                check_reply(recv_until(socks[i], 1), "ping %d" % i)
        finally:
            for s in socks:
                s.close()
        back_to_idle(d, fds, thr, model)
        check_reply(talk(d.addr(), b"after the flood\n"), "after the flood")
        st = status_until(d, r"\b%d rejected" % (n - limit))
        note("%s: flood of %d with max %d: %d busy, %d served; fds back to "
             "%d; STATUS %r", model, n, limit, len(eof), limit, d.fds(),
             st.split("; ", 2)[-1])
        check(d.stop() == 0, "exit status")


def test_flood_reject_thread():
    _flood("thread")


def test_flood_reject_event():
    _flood("event")


def test_flood_reject_fork():
    _flood("fork")


# ------------------------------------ descriptor exhaustion (EMFILE)

def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fd_exhaustion(model, nofile=32, n=60):
    """max_connections above RLIMIT_NOFILE: accept() fails with EMFILE
    while connections wait in the backlog.  The daemon must not spin on
    the readable listener nor flood its log; once descriptors free up,
    the waiting clients are served."""
    conf = config(model=model, concurrency="max_connections = 1000;")
    with Daemon(conf) as d:
        idle_baseline(d)
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (nofile, nofile))
        socks = []
        try:
            for _ in range(n):      # all connect: the kernel completes them
                socks.append(connect(d.addr()))
            wait_for(lambda: d.fds() >= nofile - 1, True,
                     what="descriptors used up")
            time.sleep(0.2)
            c0, l0 = cpu_seconds(d.pid), os.path.getsize(d.logpath)
            time.sleep(1.0)
            cpu = cpu_seconds(d.pid) - c0
            logged = os.path.getsize(d.logpath) - l0
            note("%s: RLIMIT_NOFILE %d, %d clients: %.2f s CPU and %d log "
                 "bytes in 1 s while accept() fails", model, nofile, n, cpu,
                 logged)
            # Free descriptors: the clients waiting in the backlog get in.
            for s in socks[:n - 15]:
                s.close()
            for i, s in enumerate(socks[n - 15:]):
                s.sendall(b"waited %d\n" % i)
                check_reply(recv_until(s, 1), "waited %d" % i)
            check(cpu < 0.3 * SLOW, "daemon spins on EMFILE: %.2f s CPU in 1 s"
                  % cpu)
            check(logged < 64 * 1024, "log flood on EMFILE: %d bytes in 1 s"
                  % logged)
        finally:
            for s in socks:
                s.close()
            d.stop()      # also removes the daemon's temp dir and log


def test_fd_exhaustion_thread():
    _fd_exhaustion("thread")


def test_fd_exhaustion_event():
    _fd_exhaustion("event")


# ------------------------------------------- clients that never read

def _non_reading(model, clients=20, seconds=1.5):
    """Clients pipeline empty lines and never read a reply: the daemon
    stops reading (back-pressure), so its memory per session stays bounded
    by its own buffers, not by what the clients send."""
    with Daemon(config(model=model)) as d:
        fds, thr = idle_baseline(d)
        rss0 = rss_kib(d.pid)
        socks = []
        sent = [0] * clients
        chunk = b"\n" * 65536
        try:
            for _ in range(clients):
                s = connect(d.addr())
                s.setblocking(False)
                socks.append(s)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                moved = False
                for i, s in enumerate(socks):
                    try:
                        sent[i] += s.send(chunk)
                        moved = True
                    except BlockingIOError:
                        pass
                if not moved:
                    time.sleep(0.02)
            time.sleep(0.2)
            grow = rss_kib(d.pid) - rss0
            note("%s: %d clients that never read sent %d KiB each; RSS +%d "
                 "KiB (%d KiB per session)", model, clients,
                 min(sent) // 1024, grow, grow // clients)
            check(SLOW > 1 or grow < clients * 512, "RSS grew by %d KiB" % grow)
            check_reply(talk(d.addr(), b"others still served\n"),
                        "others still served")
        finally:
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                s.close()
        back_to_idle(d, fds, thr, model)
        check(d.stop() == 0, "exit status")


def test_non_reading_clients_thread():
    _non_reading("thread")


def test_non_reading_clients_event():
    _non_reading("event")


# --------------------------------------- silent and trickling clients

def _silent(addr):
    s = connect(addr)
    try:
        t0 = time.monotonic()
        out, reset = read_all(s, timeout=6)
        return out, reset, time.monotonic() - t0
    finally:
        s.close()


def _trickle(addr, nbytes, gap=0.3):
    """One byte every gap seconds, no LF; then an LF if nothing came."""
    s = connect(addr)
    try:
        t0 = time.monotonic()
        for k in range(nbytes):
            if not silent_for(s, 0 if k == 0 else gap):
                break               # the daemon spoke (error) or closed
            s.sendall(b"abcdefghijklmnop"[k:k + 1])
        else:
            if silent_for(s, gap):
                s.sendall(b"\n")
        out, reset = b"", False
        if nbytes <= 8:
            out = recv_until(s, 1, timeout=5)
        else:
            out, reset = read_all(s, timeout=5)
        return out, reset, time.monotonic() - t0
    finally:
        s.close()


def _idle_and_trickle(model):
    conf = config(model=model, session="idle_timeout = 2; max_line_length = 8;")
    with Daemon(conf) as d:
        fds, thr = idle_baseline(d)
        a = d.addr()
        res = threaded([lambda: _silent(a) for _ in range(5)] +
                       [lambda: _trickle(a, 8, 0.5),
                        lambda: _trickle(a, 9, 0.1)],
                       timeout=20)
        # A byte every 0.5 s (its LF would come at 4 s) completes no line:
        # cut like the silent ones.
        for out, reset, dt in res[:6]:
            check(out == IDLE and not reset, "silent or trickling client "
                  "got %r (reset %s)" % (out, reset))
            check(1.8 <= dt <= 3.5 * SLOW, "idle timeout after %.2fs" % dt)
        # The 9th byte, well within idle_timeout, makes the line too long:
        # that bounds a fast slowloris (max_line_length + 1 bytes).
        out, reset, dt9 = res[6]
        check(out == b"ERROR line too long (limit 8 bytes)\n" and not reset,
              "trickler past the limit got %r (reset %s)" % (out, reset))
        note("%s: silent clients cut after %s s; 8-byte trickle cut after "
             "%.1fs; 9-byte trickle cut by the line limit after %.1fs",
             model, ", ".join("%.2f" % r[2] for r in res[:5]), res[5][2],
             dt9)
        back_to_idle(d, fds, thr, model)


def test_idle_timeout_and_trickle_thread():
    _idle_and_trickle("thread")


def test_idle_timeout_and_trickle_event():
    _idle_and_trickle("event")


def test_trickling_clients_bounded_by_limits():
    conf = config(model="thread", concurrency="max_connections = 5; "
                  "max_connections_per_source = 3;")
    with Daemon(conf) as d:
        fds, thr = idle_baseline(d)
        a = d.addr()
        held = []
        try:
            for src in ("127.0.0.1",) * 3:
                s = connect_from(a, src)
                held.append(s)
                s.sendall(b"t")             # a trickler's first byte
            wait_for(lambda: d.fds() >= fds + 3, True, what="3 sessions")
            s = connect_from(a, "127.0.0.1")
            out, _ = read_all(s)
            s.close()
            check(out == PER_SOURCE, "4th from 127.0.0.1 got %r" % out)
            for src in ("127.0.0.2",) * 2:
                s = connect_from(a, src)
                held.append(s)
                s.sendall(b"t")
            wait_for(lambda: d.fds() >= fds + 5, True, what="5 sessions")
            s = connect_from(a, "127.0.0.3")
            out, _ = read_all(s)
            s.close()
            check(out == BUSY, "6th client got %r" % out)
            for s in held:
                check(silent_for(s, 0), "a held trickler was told something")
                s.sendall(b"ickle\n")
            for s in held:
                check_reply(recv_until(s, 1), "tickle")
        finally:
            for s in held:
                s.close()
        back_to_idle(d, fds, thr, "thread")
        st = status_until(d, r"\b2 rejected")
        note("trickle: 3 per source and 5 in all held; 4th from one source "
             "and 6th overall refused; %s", st.split("; ", 2)[-1])


# ----------------------------------------------------------- access lists

def refused_quietly(addr, src):
    """The daemon closes at once, without a byte."""
    s = connect_from(addr, src)
    try:
        t0 = time.monotonic()
        out, reset = read_all(s, timeout=3)
        dt = time.monotonic() - t0
    finally:
        s.close()
    check(out == b"", "refused client %s got %r" % (src, out))
    check(dt < 1.0 * SLOW, "refusal of %s took %.2fs" % (src, dt))
    return reset


def served(addr, src, text=b"ok"):
    s = connect_from(addr, src)
    try:
        s.sendall(text + b"\n")
        check_reply(recv_until(s, 1), text)
    finally:
        s.close()


def test_access_deny_and_allow_ipv4_and_udp():
    conf = config(listeners=(TCP4, UDP4),
                  extra='access = { deny = [ "127.0.0.2/32" ]; };')
    with Daemon(conf) as d:
        a = d.addr()
        refused_quietly(a, "127.0.0.2")
        served(a, "127.0.0.1")
        u = d.addr("udp")
        check(udp_ask(u, b"denied", timeout=QUIET, bind=("127.0.0.2", 0)) is None,
              "UDP from a denied source was answered")
        check_reply(udp_ask(u, b"allowed", bind=("127.0.0.1", 0)), "allowed")
        st = status_until(d, r"\b2 refused")
        d.signal(signal.SIGUSR1)
        d.wait_log(r"statistics: .*\b2 refused")
        d.wait_log(r"statistics: .*; udp [^;]*\b1 refused")
        note("access deny: %s", st.split("; ", 2)[-1])
    conf = config(extra='access = { allow = [ "127.0.0.1/32" ]; };')
    with Daemon(conf) as d:
        refused_quietly(d.addr(), "127.0.0.3")
        served(d.addr(), "127.0.0.1")
        status_until(d, r"\b1 refused")


def test_access_dual_stack():
    conf = config(listeners=(TCP_ANY,), extra='access = { deny = [ "::1/128" ]; };')
    with Daemon(conf) as d:
        _, port = d.addr()
        refused_quietly(("::1", port), None)
        served(("127.0.0.1", port), None, b"v4 via dual stack")
        status_until(d, r"\b1 refused")
    conf = config(listeners=(TCP_ANY, UDP_ANY),
                  extra='access = { allow = [ "10.0.0.0/8" ]; };')
    with Daemon(conf) as d:
        _, port = d.addr()
        # 127.0.0.1 arrives as ::ffff:127.0.0.1 and is judged as IPv4.
        refused_quietly(("127.0.0.1", port), None)
        refused_quietly(("::1", port), None)
        _, uport = d.addr("udp")
        check(udp_ask(("127.0.0.1", uport), b"mapped", timeout=QUIET) is None,
              "UDP from 127.0.0.1 (v4-mapped) answered despite allow 10/8")
        st = status_until(d, r"\b3 refused")
        d.signal(signal.SIGUSR1)
        d.wait_log(r"statistics: .*\b3 refused")
        note("access dual stack: %s", st.split("; ", 2)[-1])


# ---------------------------------------------------- datagram defences

def _udp_socket(bind, reuse_port=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(bind)
    return s


def test_datagram_source_port_defences():
    held = _udp_socket(("127.0.0.1", 0))        # port P, denied by config
    p = held.getsockname()[1]
    conf = config(listeners=(
        '{ transport = "udp"; address = "127.0.0.1"; port = 0; '
        'reuse_port = true; }', UDP4),
        extra="datagram = { deny_source_ports = [ 0, 7, 13, 19, 37, %d ]; };" % p)
    socks = [held]
    try:
        with Daemon(conf) as d:
            u1, u2 = d.addr("udp", 0), d.addr("udp", 1)
            senders = [("configured port %d" % p, held)]
            try:                    # root only, and port 7 must be free
                socks.append(_udp_socket(("127.0.0.1", 7)))
                senders.append(("echo port 7", socks[-1]))
            except OSError as e:
                note("cannot bind 127.0.0.1:7 (%s): port 7 not tried", e)
            # The daemon's own datagram port: share listener 1's port
            # (SO_REUSEPORT) and send to listener 2, as a second daemon
            # or a loop would.
            own = _udp_socket(u1, reuse_port=True)
            socks.append(own)
            senders.append(("own port %d" % u1[1], own))
            for what, s in senders:
                s.sendto(what.encode(), u2)
            for what, s in senders:
                if not silent_for(s, QUIET):
                    raise TestFailure("datagram from %s answered: %r"
                                      % (what, s.recv(4096)))
            check_reply(udp_ask(u2, b"fine", bind=("127.0.0.1", 0)), "fine")
            st = status_until(d, r"\b1 lines, .*\b%d dropped" % len(senders))
            note("datagram defences: %d sources dropped (%s); %s",
                 len(senders), ", ".join(w for w, _ in senders),
                 st.split("; ", 2)[-1])
    finally:
        for s in socks:
            s.close()


def udp_blast(dest, src, count, gap=0.0, collect=QUIET):
    """Send count datagrams from src (gap s apart); count the replies.

    Returns (replies, t_first_send, t_last_send, t_last_reply)."""
    s = _udp_socket(src)
    s.setblocking(False)
    replies = 0
    t_last_reply = None
    try:
        t_first = time.monotonic()
        next_send = t_first
        for k in range(count):
            s.sendto(b"r%d" % k, dest)
            next_send += gap
            while True:         # read what came, until the next send is due
                wait = next_send - time.monotonic()
                r, _, _ = select.select([s], [], [], max(0.0, wait))
                if not r:
                    if wait <= 0:
                        break
                    continue
                s.recv(4096)
                replies += 1
                t_last_reply = time.monotonic()
        t_last_send = time.monotonic()
        deadline = t_last_send + collect * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([s], [], [], left)
            if r:
                s.recv(4096)
                replies += 1
                t_last_reply = time.monotonic()
    finally:
        s.close()
    return replies, t_first, t_last_send, t_last_reply


def test_datagram_rate_limit_per_source():
    rate, burst = 10, 20
    conf = config(listeners=(UDP4,),
                  extra="datagram = { rate_limit = %d; rate_burst = %d; };"
                  % (rate, burst))
    with Daemon(conf) as d:
        u = d.addr("udp")
        # 100 as fast as possible, then 100 more spread over one second.
        n1, t0, _, last1 = udp_blast(u, ("127.0.0.1", 0), 100, collect=0.2)
        n2, _, tsend, last2 = udp_blast(u, ("127.0.0.1", 0), 100, gap=0.01)
        last = last2 or last1
        total = n1 + n2
        # Tokens spent <= burst + rate * (time between the first datagram
        # the daemon could see and the last reply we saw) + 1.
        elapsed = last - t0
        upper = burst + rate * elapsed + 1
        note("rate limit %d/s burst %d: 100 fast -> %d replies; 100 over "
             "%.2fs (new source port, same address) -> %d; total %d of 200 "
             "in %.3fs (bound %d..%.1f)", rate, burst, n1, tsend - t0, n2,
             total, elapsed, burst, upper)
        check(burst <= n1, "fast blast: %d replies < burst %d" % (n1, burst))
        check(total <= upper, "%d replies > %.1f allowed" % (total, upper))
        if SLOW == 1:
            # The bucket refills: about rate * 1 s more while trickling.
            check(n2 >= 3, "only %d replies while sending for 1 s" % n2)
        # Another source address has its own full bucket.
        n3, t3, _, last3 = udp_blast(u, ("127.0.0.2", 0), 50, collect=0.3)
        upper3 = burst + rate * ((last3 or t3) - t3) + 1
        note("second source 127.0.0.2: 50 fast -> %d replies (bound %d..%.1f)",
             n3, burst, upper3)
        check(burst <= n3 <= upper3, "127.0.0.2 got %d replies" % n3)
        st = status_until(d, r"\b%d lines, .*\b%d dropped"
                          % (total + n3, 250 - total - n3))
        note("rate limit STATUS: %s", st.split("; ", 2)[-1])


# --------------------------------------------------------- log injection

def test_log_injection_escaped():
    evil = b"\x1b[31mEVIL\nFAKE LOG LINE\r\x07 tail"
    with Daemon(config(listeners=(TCP4, UDP4)), args=["-l", "debug"]) as d:
        out = talk(d.addr(), evil + b"\n")
        lines = split_replies(out)
        check(len(lines) == 2, repr(out))
        check_reply(lines[0], b"\x1b[31mEVIL")
        check_reply(lines[1], b"FAKE LOG LINE\r\x07 tail")
        check_reply(udp_ask(d.addr("udp"), evil), evil)
        d.wait_log(r'datagram ".*FAKE LOG LINE')
        d.wait_log(r"session from .* closed")
        d.log.flush()
        with open(d.logpath, "rb") as f:
            log = f.read()
    check(b"\x1b" not in log, "raw ESC in the log")
    check(b"\x07" not in log, "raw BEL in the log")
    check(b"\r" not in log, "raw CR in the log")
    check(not any(l.startswith(b"FAKE LOG LINE") for l in log.split(b"\n")),
          "injected log line:\n%s" % log.decode(errors="replace"))
    check(log.count(b"\\x1b[31mEVIL") >= 2, "escaped ESC missing:\n%s"
          % log.decode(errors="replace"))
    check(b"\\x0aFAKE LOG LINE\\x0d\\x07 tail" in log,
          "escaped datagram missing:\n%s" % log.decode(errors="replace"))


# ------------------------------------- event loops that cannot start

def _free_fd_numbers(pid, n):
    """The n lowest descriptor numbers pid has free: the next ones the
    kernel hands out, whatever RLIMIT_NOFILE allows."""
    used = set(int(f) for f in os.listdir("/proc/%d/fd" % pid))
    free, i = [], 0
    while len(free) < n:
        if i not in used:
            free.append(i)
        i += 1
    return free


def test_event_loops_cannot_start_still_serve():
    """workers = 2 with no descriptor left for a new loop's epoll instance:
    the connection is served anyway, by the main loop when no loop runs
    yet and by a running loop otherwise, and the daemon says why (once)."""
    if VALGRIND:
        return ("skip", "valgrind keeps its own descriptor limit")
    conf = config(model="event", concurrency="workers = 2;")
    with Daemon(conf) as d:
        base = stable(d.fds)
        hard = resource.prlimit(d.pid, resource.RLIMIT_NOFILE)[1]
        # Room for one accepted socket, none for epoll_create1().
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE,
                         (_free_fd_numbers(d.pid, 1)[0] + 1, hard))
        a = connect(d.addr())
        a.sendall(b"in the main loop\n")
        check_reply(recv_until(a, 1), "in the main loop")
        d.wait_log(r"cannot start event loop 1 of 2: Too many open files; "
                   r"serving in the main loop")
        check(d.threads() == 1, "threads %d: a loop started" % d.threads())
        a.sendall(b"exit\n")
        check_reply(recv_until(a, until_eof=True), "exit")
        a.close()

        # Two sessions and one loop (epoll, its timers' timerfd and the
        # eventfd of its inbox), no second loop.
        wait_for(d.fds, base, what="descriptors after the first session")
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE,
                         (_free_fd_numbers(d.pid, 5)[4] + 1, hard))
        b = connect(d.addr())
        b.sendall(b"in loop one\n")
        check_reply(recv_until(b, 1), "in loop one")
        check(d.threads() == 2, "threads %d, want 1 + 1 loop" % d.threads())
        c = connect(d.addr())
        c.sendall(b"also in loop one\n")
        check_reply(recv_until(c, 1), "also in loop one")
        check(d.threads() == 2, "threads %d: a second loop started"
              % d.threads())
        for s in (b, c):
            s.sendall(b"exit\n")
            check_reply(recv_until(s, until_eof=True), "exit")
            s.close()
        check(d.alive(), "daemon died")
