"""Transports x concurrency models, model semantics, limits, Unix socket files.

Every test starts the real ./echotimed (lib.Daemon: private NOTIFY_SOCKET,
READY=1, real addresses from STATUS=) and checks exact replies with real
clients (nc, socat) and plain sockets.  Nothing sleeps to wait for the
daemon: conditions are polled with a deadline.  The only fixed waits are the
"nothing arrives within N s" windows that prove a client is NOT served.

Tests generated in loops (one function per combination, so each one shows
separately in run.py):
  test_matrix_<transport>_<model>        4 transports x 4 models, and
                                         tcp, unix x event_loops (workers = 3)
  test_model_concurrent_<model>          fork, thread, event, event_loops
  test_limit_{reject,wait,per_source}_<model>   fork, thread, event, event_loops
  test_multi_listener_<model>            all 4 models

test_unix_live_socket_full_backlog_BUG documents a daemon bug and fails
until src/listener.c is fixed (see its docstring).
"""
import grp
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time

from lib import (SLOW, Daemon, TestFailure, check, check_reply, recv_until,
                 split_replies)

MODELS = ("sequential", "fork", "thread", "event")
TRANSPORTS = ("tcp", "udp", "unix", "unix-dgram")
BUSY = b"ERROR server busy\n"
TOO_LONG_16 = b"ERROR line too long (limit 16 bytes)\n"
QUIET = 0.5     # seconds of silence that prove a client is not served


# ---------------------------------------------------------------- helpers

class MDaemon(Daemon):
    """A Daemon whose config may name files in a private directory.

    "{dir}" in the config text is replaced by that directory (self.sockdir),
    which exists before the daemon starts (lib.Daemon makes its own d.dir
    only once it starts the process).  Both directories are removed at the
    end, unless ECHOTIMED_KEEP_DIRS=1 and the test failed (to read logs).
    """

    def __init__(self, config, **kw):
        self.sockdir = tempfile.mkdtemp(prefix="echotimed-matrix-")
        path = os.path.join(self.sockdir, "echotimed.conf")
        with open(path, "w") as f:
            f.write(config.replace("{dir}", self.sockdir))
        try:
            super().__init__(config_path=path, **kw)
        except BaseException:
            if getattr(self, "proc", None) is not None:
                self.cleanup()
            raise

    def path(self, name):
        return os.path.join(self.sockdir, name)

    def __exit__(self, exc_type, exc, tb):
        super().__exit__(exc_type, exc, tb)
        if exc_type is None or os.environ.get("ECHOTIMED_KEEP_DIRS") != "1":
            shutil.rmtree(self.sockdir, ignore_errors=True)
            shutil.rmtree(self.dir, ignore_errors=True)


def lconf(transport, name=None, address="127.0.0.1", extra=""):
    """One listener entry; unix paths go to {dir}/NAME.sock (or @NAME)."""
    if transport in ("tcp", "udp"):
        return ('{ transport = "%s"; address = "%s"; port = 0; %s }'
                % (transport, address, extra))
    if name is None:
        name = "stream" if transport == "unix" else "dgram"
    path = name if name.startswith("@") else "{dir}/%s.sock" % name
    return '{ transport = "%s"; path = "%s"; %s }' % (transport, path, extra)


def mkconfig(listeners, model, concurrency="", extra=""):
    # "event_loops": the event model with three loop threads.
    if model == "event_loops":
        model, concurrency = "event", "workers = 3; " + concurrency
    # shutdown_timeout only matters when a failed test leaves sessions open.
    return """
listen = ( %s );
concurrency = { model = "%s"; %s };
shutdown_timeout = 2;
%s
""" % (",\n  ".join(listeners), model, concurrency, extra)


def deadline_of(timeout):
    return time.monotonic() + timeout * SLOW


def wait_for(fn, pred, timeout, what):
    """Poll fn() until pred(value); return the value or fail naming what."""
    end = deadline_of(timeout)
    while True:
        v = fn()
        if pred(v):
            return v
        if time.monotonic() > end:
            raise TestFailure("%s: still %r after %ss" % (what, v, timeout))
        time.sleep(0.01)


def settle(fn, timeout=3.0, reads=5):
    """Poll fn() until it returns the same value `reads` times in a row."""
    end = deadline_of(timeout)
    last, same = object(), 0
    while True:
        v = fn()
        same = same + 1 if v == last else 1
        last = v
        if same >= reads:
            return v
        if time.monotonic() > end:
            raise TestFailure("value never settled, last %r" % (v,))
        time.sleep(0.02)


def sock_addr(path):
    return "\0" + path[1:] if path.startswith("@") else path


def stream_connect(addr, transport="tcp", bind=None, timeout=5.0):
    """Connected stream socket; bind= a local (host, port) for tcp."""
    if transport == "tcp":
        host = addr[0]
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                          socket.SOCK_STREAM)
        if bind:
            s.bind(bind)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr = sock_addr(addr)
    s.settimeout(timeout * SLOW)
    s.connect(addr)
    return s


def open_session(addr, transport="tcp", text="hi", bind=None):
    """A session that has been answered once (so it is really running)."""
    s = stream_connect(addr, transport, bind)
    s.sendall(text.encode() + b"\n")
    check_reply(recv_until(s, 1, timeout=5), text)
    return s


def still_serves(s, text):
    s.sendall(text.encode() + b"\n")
    check_reply(recv_until(s, 1, timeout=5), text)


def end_session(s):
    s.sendall(b"exit\n")
    check_reply(recv_until(s, until_eof=True, timeout=5), "exit")
    s.close()


def expect_silence(s, secs=QUIET, what="client"):
    """Nothing (no data, no EOF) arrives on s within secs."""
    s.settimeout(secs)
    try:
        d = s.recv(65536)
    except socket.timeout:
        return
    except ConnectionResetError:
        raise TestFailure("%s: connection reset, expected to wait" % what)
    raise TestFailure("%s: expected no reply yet, got %r" % (what, d))


def served_eventually(addr, transport="tcp", text="later", bind=None,
                      timeout=3.0):
    """Connect until a client is served (a slot frees asynchronously: the
    thread hands its conn back, the child is reaped).  Error replies
    ("ERROR ...") count as "not yet"; the final reply must be exact."""
    end = deadline_of(timeout)
    seen = []
    while True:
        s = stream_connect(addr, transport, bind)
        try:
            s.sendall(text.encode() + b"\n")
            out = recv_until(s, 1, timeout=5)
        except (ConnectionResetError, BrokenPipeError):
            out = b""
        if out and not out.startswith(b"ERROR "):
            check_reply(out, text)
            return s
        s.close()
        seen.append(out)
        if time.monotonic() > end:
            raise TestFailure("never served after a slot freed; got %r"
                              % seen[-3:])
        time.sleep(0.02)


def run_tool(cmd, data, timeout=5.0):
    try:
        p = subprocess.run(cmd, input=data, capture_output=True,
                           timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        raise TestFailure("%s did not finish within %ss" % (cmd, timeout))
    check(p.returncode == 0, "%s: rc %d, stderr %r" % (cmd, p.returncode, p.stderr))
    return p.stdout


def check_replies(out, texts):
    lines = split_replies(out)
    check(len(lines) == len(texts), "want %d replies for %r, got %r"
          % (len(texts), texts, out))
    for got, want in zip(lines, texts):
        check_reply(got, want)


class Dgram:
    """A datagram client: udp, or unix-dgram bound to a path in sockdir
    (or to an abstract name when client starts with "@")."""
    counter = 0

    def __init__(self, d, transport="udp", server=None, client=None):
        if transport == "udp":
            host, port = server or d.addr("udp")
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.s = socket.socket(fam, socket.SOCK_DGRAM)
            self.dest = (host, port)
        else:
            Dgram.counter += 1
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            client = client or d.path("client-%d.sock" % Dgram.counter)
            self.s.bind(sock_addr(client))
            self.dest = sock_addr(server or d.addr("unix-dgram"))

    def ask(self, data, timeout=3.0):
        self.s.sendto(data, self.dest)
        self.s.settimeout(timeout * SLOW)
        try:
            reply, src = self.s.recvfrom(65536)
        except socket.timeout:
            raise TestFailure("no datagram reply to %r from %r" % (data, self.dest))
        if isinstance(self.dest, tuple):
            check(src[:2] == self.dest[:2], "reply from %r, not %r" % (src, self.dest))
        else:
            check(src == self.dest or src == self.dest.encode(),
                  "reply from %r, not %r" % (src, self.dest))
        return reply

    def quiet(self, secs=0.2):
        self.s.settimeout(secs)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return
        raise TestFailure("unexpected extra datagram %r" % d)

    def close(self):
        self.s.close()


# ------------------------------------------------- 1. transport x model

def matrix_stream(d, transport):
    addr = d.addr(transport)
    if transport == "tcp":
        host, port = addr
        ncargs, target = [host, str(port)], "TCP:%s:%d" % addr
    else:
        ncargs, target = ["-U", addr], "UNIX-CONNECT:" + addr
    # nc -N: pipelined lines, CRLF, white space kept, final line without LF.
    out = run_tool(["nc", "-N"] + ncargs, b"one\ntwo\r\n  three \t\nlast")
    check_replies(out, ["one", "two", "  three \t", "last"])
    # nc without -N does not half-close: only the daemon closing after
    # "exit" lets it end.
    out = run_tool(["nc"] + ncargs, b"hi\r\n exit \r\n")
    check_replies(out, ["hi", " exit "])
    # Lines after exit in the same segment are not answered; then EOF.
    s = stream_connect(addr, transport)
    s.sendall(b"a\nexit\nb\n")
    check_replies(recv_until(s, until_eof=True), ["a", "exit"])
    s.close()
    # socat.
    out = run_tool(["socat", "-", target], b"so\nexit\n")
    check_replies(out, ["so", "exit"])
    # max_line_length = 16: 16 bytes + CRLF fine, 17 bytes is an error.
    s = stream_connect(addr, transport)
    s.sendall(b"x" * 16 + b"\r\n" + b"y" * 17 + b"\n")
    out = recv_until(s, until_eof=True)
    s.close()
    lines = split_replies(out)
    check(len(lines) == 2 and lines[1] == TOO_LONG_16, repr(out))
    check_reply(lines[0], "x" * 16)


def matrix_dgram(d, transport):
    c = Dgram(d, transport)
    for data, text in [(b"hello\n", "hello"), (b"crlf\r\n", "crlf"),
                       (b"bare", "bare"),
                       (b" \tsp \xc3\xa9\x00z \n", b" \tsp \xc3\xa9\x00z "),
                       (b"x" * 16 + b"\r\n", "x" * 16)]:
        check_reply(c.ask(data), text)
    # exit: a reply and nothing else; the daemon keeps serving.
    check_reply(c.ask(b"exit\n"), "exit")
    check_reply(c.ask(b" exit \r\n"), " exit ")
    check_reply(c.ask(b"after exit\n"), "after exit")
    # Overlong datagrams.
    check(c.ask(b"y" * 17) == TOO_LONG_16, "17-byte datagram")
    check(c.ask(b"y" * 17 + b"\r\n") == TOO_LONG_16, "17-byte datagram + CRLF")
    check_reply(c.ask(b"after long\n"), "after long")
    c.quiet()      # exactly one reply per datagram
    if transport == "udp":
        host, port = d.addr("udp")
        out = run_tool(["nc", "-u", "-W", "1", host, str(port)], b"nc udp\n")
        check_replies(out, ["nc udp"])
        out = run_tool(["socat", "-", "UDP:%s:%d" % (host, port)], b"socat udp\n")
        check_replies(out, ["socat udp"])
    else:
        server = d.addr("unix-dgram")
        out = run_tool(["nc", "-uU", "-W", "1", "-s", d.path("nc-client.sock"),
                        server], b"nc unix-dgram\n")
        check_replies(out, ["nc unix-dgram"])
        out = run_tool(["socat", "-", "UNIX-SENDTO:%s,bind=%s"
                        % (server, d.path("socat-client.sock"))],
                       b"socat unix-dgram\n")
        check_replies(out, ["socat unix-dgram"])
        # An unbound sender has no address: dropped (debug log), daemon
        # keeps serving.
        u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        u.sendto(b"unbound sender\n", server)
        check_reply(c.ask(b"after unbound\n"), "after unbound")
        u.settimeout(0.2)
        try:
            got = u.recv(65536)
            raise TestFailure("unbound sender got %r" % got)
        except socket.timeout:
            pass
        u.close()
        d.wait_log(r"datagram on \S+ from an unbound Unix socket: "
                   r"no address to answer, dropped", timeout=3)
    c.close()
    check(d.alive(), "daemon died")


def make_matrix_test(transport, model):
    def test():
        cfg = mkconfig([lconf(transport)], model,
                       extra="session = { max_line_length = 16; };")
        with MDaemon(cfg, args=["-l", "debug"]) as d:
            check([t for t, _ in d.addresses()] == [transport], d.status)
            check(("model %s;" % model.replace("_loops", "")) in d.status,
                  d.status)
            if transport in ("tcp", "unix"):
                matrix_stream(d, transport)
            else:
                matrix_dgram(d, transport)
            rc = d.stop()
            check(rc == 0, "exit status %r, not 0" % rc)
    test.__name__ = "test_matrix_%s_%s" % (transport.replace("-", "_"), model)
    test.__doc__ = "%s listener served in the %s model" % (transport, model)
    return test


for _t in TRANSPORTS:
    for _m in MODELS:
        _f = make_matrix_test(_t, _m)
        globals()[_f.__name__] = _f
for _t in ("tcp", "unix"):      # datagrams are the event model's anyway
    _f = make_matrix_test(_t, "event_loops")
    globals()[_f.__name__] = _f


# ------------------------------------------------------ 2. model semantics

def test_model_sequential_second_client_waits():
    cfg = mkconfig([lconf("tcp"), lconf("unix")], "sequential")
    with MDaemon(cfg) as d:
        for transport in ("tcp", "unix"):
            addr = d.addr(transport)
            a = open_session(addr, transport, "first")
            b = stream_connect(addr, transport)
            b.sendall(b"second\n")
            expect_silence(b, what="second %s client" % transport)
            still_serves(a, "first again")
            end_session(a)
            check_reply(recv_until(b, 1, timeout=5), "second")
            end_session(b)


def make_concurrent_test(model):
    def test():
        cfg = mkconfig([lconf("tcp"), lconf("unix")], model)
        with MDaemon(cfg) as d:
            for transport in ("tcp", "unix"):
                addr = d.addr(transport)
                a = open_session(addr, transport, "first")
                b = stream_connect(addr, transport, timeout=2)
                b.sendall(b"second\n")
                # Answered at once, while a is open.
                check_reply(recv_until(b, 1, timeout=2), "second")
                still_serves(a, "first again")
                end_session(b)
                end_session(a)
    test.__name__ = "test_model_concurrent_%s" % model
    return test


for _m in ("fork", "thread", "event", "event_loops"):
    _f = make_concurrent_test(_m)
    globals()[_f.__name__] = _f


def many_sessions(d, n=50, batch=10):
    """n stream sessions over tcp (batch at a time open), n datagrams."""
    addr = d.addr("tcp")
    for i in range(0, n, batch):
        socks = [open_session(addr, "tcp", "s%d" % (i + j)) for j in range(batch)]
        for j, s in enumerate(socks):
            if j % 2:
                end_session(s)
            else:       # half end by EOF from the client
                s.shutdown(socket.SHUT_WR)
                check(recv_until(s, until_eof=True) == b"", "data at EOF")
                s.close()
    c = Dgram(d, "udp")
    for i in range(n):
        check_reply(c.ask(b"d%d\n" % i), "d%d" % i)
    c.close()


def test_model_fork_children_reaped():
    cfg = mkconfig([lconf("tcp"), lconf("udp")], "fork")
    with MDaemon(cfg) as d:
        check(d.children() == [], "children at idle: %r" % d.children())
        a = open_session(d.addr(), "tcp", "one")
        kids = d.children()
        check(len(kids) == 1 and kids[0][1] != "Z",
              "one open session, children %r" % kids)
        b = open_session(d.addr(), "tcp", "two")
        kids = d.children()
        check(len(kids) == 2 and all(st != "Z" for _, st in kids),
              "two open sessions, children %r" % kids)
        end_session(b)
        kids = wait_for(d.children, lambda k: len(k) == 1, 2,
                        "children after one of two sessions ended")
        check(kids[0][1] != "Z", "remaining child %r" % kids)
        end_session(a)
        wait_for(d.children, lambda k: k == [], 2, "children after sessions")
        many_sessions(d, 50)
        wait_for(d.children, lambda k: k == [], 2,
                 "children/zombies after 50 sessions + 50 datagrams")
        # And it stays that way.
        for _ in range(5):
            check(d.children() == [], "children reappeared: %r" % d.children())
            time.sleep(0.02)
        check(d.stop() == 0)


def test_model_thread_thread_count():
    cfg = mkconfig([lconf("tcp"), lconf("udp")], "thread")
    with MDaemon(cfg) as d:
        idle = settle(d.threads)
        socks = [open_session(d.addr(), "tcp", "t%d" % i) for i in range(5)]
        n = wait_for(d.threads, lambda v: v == idle + 5, 2,
                     "threads with 5 open sessions (idle %d)" % idle)
        check(settle(d.threads) == n, "thread count moved with 5 sessions open")
        for s in socks:
            end_session(s)
        wait_for(d.threads, lambda v: v == idle, 2, "threads after 5 sessions")
        many_sessions(d, 50)
        wait_for(d.threads, lambda v: v == idle, 3,
                 "threads after 50 sessions + 50 datagrams (idle %d)" % idle)
        check(d.children() == [], "thread model has children")
        check(d.stop() == 0)


def test_model_event_single_thread():
    cfg = mkconfig([lconf("tcp"), lconf("udp")], "event")
    with MDaemon(cfg) as d:
        idle = settle(d.threads)
        socks = [open_session(d.addr(), "tcp", "e%d" % i) for i in range(20)]
        check(d.threads() == idle, "threads %d with 20 sessions, idle %d"
              % (d.threads(), idle))
        for i, s in enumerate(socks):
            still_serves(s, "again %d" % i)
        check(settle(d.threads) == idle, "thread count moved")
        check(d.children() == [], "event model has children")
        for s in socks:
            end_session(s)
        check(d.threads() == idle)
        check(d.stop() == 0)


def test_model_event_loops_threads():
    """workers = 3: three loop threads serve the sessions, started when
    needed and kept; no children; the main loop still answers datagrams."""
    cfg = mkconfig([lconf("tcp"), lconf("udp")], "event_loops")
    with MDaemon(cfg) as d:
        idle = settle(d.threads)
        check(idle == 1, "threads before any session: %d" % idle)
        socks = [open_session(d.addr(), "tcp", "l%d" % i) for i in range(20)]
        check(d.threads() == 4, "threads %d with 20 sessions, want 1 + 3"
              % d.threads())
        for i, s in enumerate(socks):
            still_serves(s, "again %d" % i)
        names = []
        for t in os.listdir("/proc/%d/task" % d.pid):
            with open("/proc/%d/task/%s/comm" % (d.pid, t)) as f:
                names.append(f.read().strip())
        check(sorted(names).count("et-loop") == 3, "thread names %r" % names)
        check(d.children() == [], "event model has children")
        for s in socks:
            end_session(s)
        many_sessions(d, 30)
        check(settle(d.threads) == 4, "loop threads are kept: %d" % d.threads())
        check(d.stop() == 0)


# ------------------------------------------------------------ 3. limits

def make_reject_test(model):
    def test():
        cfg = mkconfig([lconf("tcp")], model,
                       'max_connections = 2; overflow = "reject";')
        with MDaemon(cfg) as d:
            addr = d.addr()
            a = open_session(addr, "tcp", "a")
            b = open_session(addr, "tcp", "b")
            for _ in range(2):
                c = stream_connect(addr)
                out = recv_until(c, until_eof=True)
                c.close()
                check(out == BUSY, "third client got %r" % out)
            still_serves(a, "a2")
            still_serves(b, "b2")
            end_session(a)
            c = served_eventually(addr, text="c")
            still_serves(b, "b3")
            end_session(c)
            end_session(b)
            check(d.stop() == 0)
    test.__name__ = "test_limit_reject_%s" % model
    return test


def make_wait_test(model):
    def test():
        cfg = mkconfig([lconf("tcp")], model,
                       'max_connections = 2; overflow = "wait";')
        with MDaemon(cfg) as d:
            addr = d.addr()
            a = open_session(addr, "tcp", "a")
            b = open_session(addr, "tcp", "b")
            c = stream_connect(addr)
            c.sendall(b"c\n")
            expect_silence(c, what="third client with overflow=wait")
            still_serves(a, "a2")
            end_session(a)
            out = recv_until(c, 1, timeout=3)
            check_reply(out, "c")      # no ERROR
            still_serves(b, "b2")
            end_session(c)
            end_session(b)
            check(d.stop() == 0)
    test.__name__ = "test_limit_wait_%s" % model
    return test


def make_per_source_test(model):
    def test():
        cfg = mkconfig([lconf("tcp", address="::")], model,
                       "max_connections_per_source = 1;")
        with MDaemon(cfg) as d:
            _, port = d.addr()
            v4 = ("127.0.0.1", port)
            a = open_session(v4, "tcp", "a")
            b = stream_connect(v4)
            out = recv_until(b, until_eof=True)
            b.close()
            check(out.startswith(b"ERROR ") and out.endswith(b"\n")
                  and out.count(b"\n") == 1,
                  "second connection from 127.0.0.1 got %r" % out)
            check(out == b"ERROR too many connections from your address\n",
                  "the per-source limit, not another one, must refuse: %r" % out)
            six = open_session(("::1", port), "tcp", "from ::1")
            two = open_session(v4, "tcp", "from 127.0.0.2", bind=("127.0.0.2", 0))
            still_serves(a, "a2")
            end_session(a)
            a = served_eventually(v4, text="a again")
            for s in (a, six, two):
                end_session(s)
            check(d.stop() == 0)
    test.__name__ = "test_limit_per_source_%s" % model
    return test


for _m in ("fork", "thread", "event", "event_loops"):
    for _mk in (make_reject_test, make_wait_test, make_per_source_test):
        _f = _mk(_m)
        globals()[_f.__name__] = _f


def test_limit_sequential_max_connections_irrelevant():
    """Sequential: a second client waits in the backlog, whatever
    max_connections and overflow say (never "busy", never served early)."""
    for limit, overflow in (("1", "reject"), ("3", "reject"), ("3", "wait")):
        cfg = mkconfig([lconf("tcp")], "sequential",
                       'max_connections = %s; overflow = "%s";' % (limit, overflow))
        with MDaemon(cfg) as d:
            addr = d.addr()
            a = open_session(addr, "tcp", "a")
            b = stream_connect(addr)
            b.sendall(b"b\n")
            expect_silence(b, what="second client (sequential, max_connections"
                           " = %s, overflow %s)" % (limit, overflow))
            end_session(a)
            check_reply(recv_until(b, 1, timeout=3), "b")
            end_session(b)


def test_limit_across_listeners_thread():
    """max_connections counts sessions of all listeners together."""
    cfg = mkconfig([lconf("tcp"), lconf("unix")], "thread",
                   'max_connections = 2; overflow = "reject";')
    with MDaemon(cfg) as d:
        a = open_session(d.addr("tcp"), "tcp", "tcp")
        b = open_session(d.addr("unix"), "unix", "unix")
        for transport in ("tcp", "unix"):
            c = stream_connect(d.addr(transport), transport)
            out = recv_until(c, until_eof=True)
            c.close()
            check(out == BUSY, "third client on %s got %r" % (transport, out))
        end_session(b)
        end_session(served_eventually(d.addr("tcp")))
        end_session(a)


# ---------------------------------------------------- 4. Unix socket files

def make_stale(path, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(path)
    if kind == socket.SOCK_STREAM:
        s.listen(1)
    s.close()           # the file stays behind, nobody answers
    check(stat.S_ISSOCK(os.lstat(path).st_mode), "stale socket not made")


def unix_both(extra_stream="", extra_dgram=""):
    return [lconf("unix", extra=extra_stream), lconf("unix-dgram", extra=extra_dgram)]


def serve_both(d):
    s = open_session(d.addr("unix"), "unix", "stream")
    end_session(s)
    c = Dgram(d, "unix-dgram")
    check_reply(c.ask(b"dgram\n"), "dgram")
    c.close()


def test_unix_stale_socket_replaced():
    d0 = tempfile.mkdtemp(prefix="echotimed-matrix-")
    try:
        # A config naming paths in d0, where we leave stale sockets first.
        make_stale(os.path.join(d0, "stream.sock"))
        make_stale(os.path.join(d0, "dgram.sock"), socket.SOCK_DGRAM)
        cfg = mkconfig(unix_both(), "thread").replace("{dir}", d0)
        with MDaemon(cfg) as d:
            check(d.addr("unix") == os.path.join(d0, "stream.sock"), d.status)
            serve_both(d)
            check(d.stop() == 0)
    finally:
        shutil.rmtree(d0, ignore_errors=True)


def start_fails(cfg, what, timeout=10.0):
    """Start a daemon that must refuse to start: returns (rc, output)."""
    with MDaemon(cfg, wait_ready=False) as d:
        end = deadline_of(timeout)
        while d.proc.poll() is None:
            m = d.notify.recv(0.05)
            if m and m.get("READY") == "1":
                raise TestFailure("%s: daemon started anyway:\n%s"
                                  % (what, d.logtext()))
            if time.monotonic() > end:
                try:
                    with open("/proc/%d/wchan" % d.pid) as f:
                        wchan = f.read()
                except OSError:
                    wchan = "?"
                d.proc.kill()       # SIGTERM may be blocked this early
                d.proc.wait()
                raise TestFailure("%s: daemon neither exited nor became ready"
                                  " within %ss (hung in kernel function %s):\n%s"
                                  % (what, timeout, wchan, d.logtext()))
        return d.proc.returncode, d.logtext()


def test_unix_live_socket_not_stolen():
    with MDaemon(mkconfig(unix_both(), "thread")) as d1:
        spath, dpath = d1.addr("unix"), d1.addr("unix-dgram")
        inodes = (os.lstat(spath).st_ino, os.lstat(dpath).st_ino)
        cases = [
            ("live unix", '{ transport = "unix"; path = "%s"; }' % spath, spath),
            ("live unix-dgram",
             '{ transport = "unix-dgram"; path = "%s"; }' % dpath, dpath),
            ("unix on a live unix-dgram path",
             '{ transport = "unix"; path = "%s"; }' % dpath, dpath),
        ]
        for what, entry, path in cases:
            rc, text = start_fails(mkconfig([entry], "thread"), what)
            check(rc == 71, "%s: exit %r, want 71:\n%s" % (what, rc, text))
            check(path in text, "%s: message does not name %s:\n%s" % (what, path, text))
        check((os.lstat(spath).st_ino, os.lstat(dpath).st_ino) == inodes,
              "a live socket file was replaced")
        serve_both(d1)
        check(d1.stop() == 0)


def test_unix_live_socket_full_backlog():
    """A live stream socket whose listen backlog is full (busy or hung
    first daemon) must make a second daemon exit 71, not hang in its
    probing connect() (the probe is non-blocking)."""
    cfg = mkconfig([lconf("unix", extra="backlog = 1;")], "sequential")
    with MDaemon(cfg) as d1:
        path = d1.addr("unix")
        a = open_session(path, "unix", "holds the only session")
        pending = []
        for _ in range(16):      # fill the backlog of the sequential daemon
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(path)
            except BlockingIOError:
                c.close()
                break
            pending.append(c)
        else:
            raise TestFailure("could not fill the backlog")
        try:
            rc, text = start_fails(mkconfig(['{ transport = "unix"; path = "%s"; }'
                                             % path], "thread"),
                                   "live socket with a full backlog", timeout=3)
            check(rc == 71, "exit %r, want 71:\n%s" % (rc, text))
            check(path in text, "message does not name %s:\n%s" % (path, text))
        except BaseException:
            a.close()
            raise
        finally:
            for c in pending:
                c.close()
        end_session(a)
        check(stat.S_ISSOCK(os.lstat(path).st_mode), "live socket file replaced")
        # The closed fillers still sit in the backlog until the sequential
        # daemon has accepted them: retry while it drains the queue.
        deadline = time.monotonic() + 5
        while True:
            try:
                end_session(open_session(path, "unix", "first daemon still serves"))
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_unix_regular_file_untouched():
    d0 = tempfile.mkdtemp(prefix="echotimed-matrix-")
    try:
        for transport in ("unix", "unix-dgram"):
            path = os.path.join(d0, "%s.file" % transport)
            with open(path, "wb") as f:
                f.write(b"precious data\n")
            os.chmod(path, 0o640)
            before = os.lstat(path)
            rc, text = start_fails(mkconfig(
                ['{ transport = "%s"; path = "%s"; }' % (transport, path)],
                "thread"), "regular file")
            check(rc == 71, "%s on a regular file: exit %r:\n%s" % (transport, rc, text))
            check(path in text, "message does not name %s:\n%s" % (path, text))
            after = os.lstat(path)
            check(stat.S_ISREG(after.st_mode) and after.st_ino == before.st_ino
                  and stat.S_IMODE(after.st_mode) == 0o640, "file changed")
            with open(path, "rb") as f:
                check(f.read() == b"precious data\n", "content changed")
    finally:
        shutil.rmtree(d0, ignore_errors=True)


def test_unix_mode_owner_group():
    nobody = pwd.getpwnam("nobody").pw_uid
    nogroup = grp.getgrnam("nogroup").gr_gid
    check(os.geteuid() == 0, "needs root")
    cfg = mkconfig(unix_both(
        'mode = "0600"; owner = "nobody"; group = "nogroup";',
        'mode = "0620"; group = "nogroup";'), "thread")
    with MDaemon(cfg) as d:
        st = os.lstat(d.addr("unix"))
        check(stat.S_ISSOCK(st.st_mode), "not a socket")
        check(stat.S_IMODE(st.st_mode) == 0o600, "mode %o" % st.st_mode)
        check((st.st_uid, st.st_gid) == (nobody, nogroup),
              "owner %d:%d" % (st.st_uid, st.st_gid))
        st = os.lstat(d.addr("unix-dgram"))
        check(stat.S_IMODE(st.st_mode) == 0o620, "dgram mode %o" % st.st_mode)
        check((st.st_uid, st.st_gid) == (0, nogroup),
              "dgram owner %d:%d" % (st.st_uid, st.st_gid))
        serve_both(d)
        check(d.stop() == 0)


def test_unix_abstract_namespace():
    tag = "echotimed-matrix-%d-%s" % (os.getpid(), os.urandom(4).hex())
    cfg = mkconfig([lconf("unix", "@" + tag + "-s"),
                    lconf("unix-dgram", "@" + tag + "-d")], "event")
    cwd = tempfile.mkdtemp(prefix="echotimed-matrix-cwd-")
    try:
        with MDaemon(cfg, cwd=cwd) as d:
            check(d.addr("unix") == "@%s-s" % tag, d.status)
            check(d.addr("unix-dgram") == "@%s-d" % tag, d.status)
            s = stream_connect("\0%s-s" % tag, "unix")
            s.sendall(b"abstract\n")
            check_reply(recv_until(s, 1), "abstract")
            end_session(s)
            c = Dgram(d, "unix-dgram", client="@%s-client" % tag)
            check_reply(c.ask(b"abstract dgram\n"), "abstract dgram")
            c.close()
            check(os.listdir(cwd) == [], "files in cwd: %r" % os.listdir(cwd))
            check(sorted(os.listdir(d.sockdir)) == ["echotimed.conf"],
                  "files: %r" % os.listdir(d.sockdir))
            with open("/proc/net/unix") as f:
                table = f.read()
            check(("@%s-s" % tag) in table and ("@%s-d" % tag) in table,
                  "abstract sockets not in /proc/net/unix")
            check(d.stop() == 0)
            check(os.listdir(cwd) == [], "files in cwd: %r" % os.listdir(cwd))
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def test_unix_socket_files_removed_on_exit():
    with MDaemon(mkconfig(unix_both(), "fork")) as d:
        spath, dpath = d.addr("unix"), d.addr("unix-dgram")
        serve_both(d)
        check(os.path.exists(spath) and os.path.exists(dpath))
        check(d.stop() == 0)
        check(not os.path.lexists(spath), "%s left behind" % spath)
        check(not os.path.lexists(dpath), "%s left behind" % dpath)


def test_unix_foreign_socket_not_removed():
    with MDaemon(mkconfig(unix_both(), "thread")) as d:
        spath, dpath = d.addr("unix"), d.addr("unix-dgram")
        serve_both(d)
        # Someone else takes over both paths while the daemon runs.
        os.unlink(spath)
        os.unlink(dpath)
        mine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mine.bind(spath)
        mine.listen(1)
        mined = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        mined.bind(dpath)
        ino = (os.lstat(spath).st_ino, os.lstat(dpath).st_ino)
        try:
            check(d.stop() == 0)
            check(os.path.lexists(spath) and os.path.lexists(dpath),
                  "daemon removed a socket file it did not create")
            check((os.lstat(spath).st_ino, os.lstat(dpath).st_ino) == ino,
                  "socket files replaced")
            # And ours still work.
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(2)
            c.connect(spath)
            mine.settimeout(2)
            mine.accept()[0].close()
            c.close()
            u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            u.sendto(b"ping", dpath)
            u.close()
            mined.settimeout(2)
            check(mined.recv(16) == b"ping")
        finally:
            mine.close()
            mined.close()


# ------------------------------------------ 5. several listeners, any mix

def make_multi_test(model):
    def test():
        tag = "echotimed-matrix-%d-%s" % (os.getpid(), os.urandom(4).hex())
        cfg = mkconfig([lconf("tcp"), lconf("tcp", address="::1"),
                        lconf("udp"), lconf("udp", address="::1"),
                        lconf("unix"), lconf("unix-dgram"),
                        lconf("unix", "@" + tag)], model)
        with MDaemon(cfg) as d:
            kinds = sorted(t for t, _ in d.addresses())
            check(kinds == ["tcp", "tcp", "udp", "udp", "unix", "unix",
                            "unix-dgram"], d.status)
            streams = [(d.addr("tcp", 0), "tcp"), (d.addr("tcp", 1), "tcp"),
                       (d.addr("unix", 0), "unix"), (d.addr("unix", 1), "unix")]
            check(sorted(a[0] for a, _ in streams[:2]) == ["127.0.0.1", "::1"],
                  d.status)
            check(d.addr("unix", 1) == "@" + tag, d.status)
            held = []
            if model != "sequential":
                # Sessions open on two listeners while all others serve.
                held = [open_session(d.addr("tcp", 0), "tcp", "held tcp"),
                        open_session(d.addr("unix", 0), "unix", "held unix")]
            for i, (addr, transport) in enumerate(streams):
                s = open_session(addr, transport, "stream %d" % i)
                end_session(s)
            for i in range(2):
                c = Dgram(d, "udp", server=d.addr("udp", i))
                check_reply(c.ask(b"udp %d\n" % i), "udp %d" % i)
                c.close()
            c = Dgram(d, "unix-dgram")
            check_reply(c.ask(b"unix-dgram\n"), "unix-dgram")
            c.close()
            for s in held:
                still_serves(s, "still held")
                end_session(s)
            check(d.stop() == 0)
    test.__name__ = "test_multi_listener_%s" % model
    return test


for _m in MODELS:
    _f = make_multi_test(_m)
    globals()[_f.__name__] = _f


def test_model_thread_spares_reused_then_expire():
    """Threads of ended sessions wait briefly as spares, serve the next
    connections, and exit: an idle daemon is back to one thread."""
    cfg = mkconfig([lconf("tcp")], "thread")
    with MDaemon(cfg) as d:
        addr = d.addr("tcp")
        socks = [open_session(addr, "tcp", "session %d" % i) for i in range(6)]
        check(d.threads() == 7, "6 sessions: %d threads" % d.threads())
        for s in socks:
            end_session(s)
        wait_for(d.spares, lambda n: n == 6, 3, "spares after 6 sessions")
        ours = lambda: d.threads() + d.spares()
        # New sessions take the spares: no new thread is created.
        socks = [open_session(addr, "tcp", "again %d" % i) for i in range(3)]
        check(d.spares() == 3 and d.threads() == 4 and ours() == 7,
              "spares %d threads %d" % (d.spares(), d.threads()))
        for s in socks:
            end_session(s)
        # Spares linger 2 s, then exit.
        wait_for(ours, lambda n: n == 1, 6, "threads after the spares expired")
