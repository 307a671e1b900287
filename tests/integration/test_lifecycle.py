"""Process lifecycle: reload (SIGHUP), stop (SIGTERM), statistics (SIGUSR1),
SIGPIPE, -d/--pidfile daemon mode, privilege drop.  SPEC sections 4 and 5.

Nothing here sleeps to wait for readiness: the tests wait on notify
messages (READY=1, RELOADING=1, STOPPING=1, STATUS=), on log lines, or poll
/proc and sockets with a deadline.  The only fixed waits are bounded
"nothing happens in this window" checks (a sequential backlog client must
not be answered while another session holds the slot).
"""
import collections
import fcntl
import math
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time

from lib import (BINARY, SLOW, Daemon, NotifySocket, TestFailure, check,
                 check_nothing_killed, check_reply, connect, gone, proc_state,
                 recv_until, split_replies, talk, tcp_config)

MODELS = ("thread", "fork", "event", "sequential")


# ---------------------------------------------------------------- helpers

def _conf(model="thread", extra="", listen=None, workers=1):
    """A config; model "event_loops" is the event model with 3 loops."""
    if model == "event_loops":
        model, workers = "event", 3
    if listen is None:
        listen = ['{ transport = "tcp"; address = "127.0.0.1"; port = 0; }']
    if "shutdown_timeout" not in extra:
        # Keeps a failing test's clean-up short when a session is open.
        extra += "\nshutdown_timeout = 2;"
    return ("listen = (\n  %s\n);\nconcurrency = { model = \"%s\"; "
            "workers = %d; };\n%s\n"
            % (",\n  ".join(listen), model, workers, extra))


def _tcp(port, extra=""):
    return '{ transport = "tcp"; address = "127.0.0.1"; port = %d; %s}' % (port, extra)


def _write(path, text):
    """Replace the file atomically: the daemon never reads half a file."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def _poll(cond, timeout, msg):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TestFailure(msg() if callable(msg) else msg)
        time.sleep(0.01)


def _ask(s, text, timeout=3.0):
    """One line on an open session; the one reply must come back."""
    s.sendall(text.encode() + b"\n")
    out = recv_until(s, 1, timeout=timeout)
    check(out.count(b"\n") == 1, "expected one reply to %r, got %r" % (text, out))
    check_reply(out, text)


def _exit(s, timeout=3.0):
    """Send exit: its reply, then EOF from the server."""
    s.sendall(b"exit\n")
    out = recv_until(s, until_eof=True, timeout=timeout)
    check_reply(out, "exit")
    s.close()


def _no_reply_within(s, seconds):
    """Bounded negative check: nothing arrives on s in this window."""
    s.settimeout(seconds)
    try:
        d = s.recv(1)
    except socket.timeout:
        return
    finally:
        s.settimeout(5.0 * SLOW)
    raise TestFailure("unexpected data %r while the client should wait" % d)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _refused(port):
    """True if a TCP connect to 127.0.0.1:port is refused right now."""
    s = socket.socket()
    s.settimeout(2.0 * SLOW)
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        # Caught in the backlog while the listener closed: not served
        # either; ask again until the port refuses outright.
        return False
    finally:
        s.close()
    return False


def _wait_refused(port, timeout=2.0):
    _poll(lambda: _refused(port), timeout,
          "127.0.0.1:%d still accepts connections" % port)


def _listen_inode(port):
    """Inode of the IPv4 TCP socket LISTENing on 127.0.0.1:port, or None."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fl = line.split()
            if fl[1] == want and fl[3] == "0A":
                return int(fl[9])
    return None


def _fd_inodes(pid):
    out = set()
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            link = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m:
            out.add(int(m.group(1)))
    return out


def _proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def _kids(d):
    return set(pid for pid, _ in d.children())


def _model_of_session(d, s, model, timeout=3.0):
    """The daemon logged this client's connection under MODEL."""
    port = s.getsockname()[1]
    d.wait_log(r"connection from 127\.0\.0\.1:%d on \S+ \(tcp, %s model\)"
               % (port, model), timeout)


def _status_matching(d, pattern, timeout=4.0):
    """Wait for a STATUS= (sent on change, once a second) matching pattern."""
    if re.search(pattern, d.status):
        return d.status
    deadline = time.monotonic() + timeout * SLOW
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("no STATUS matching %r; last %r" % (pattern, d.status))
        m = d.notify.recv(left)
        if m and "STATUS" in m:
            d.status = m["STATUS"]
            if re.search(pattern, d.status):
                return d.status


# ------------------------------------------- 1. reload switches the model

def _reload_switch(old, new):
    with Daemon(_conf(old)) as d:
        addr = d.addr()
        port = addr[1]
        s1 = connect(addr)
        _ask(s1, "old session before reload")
        _model_of_session(d, s1, old)
        kids1 = _kids(d)
        if old == "fork":
            check(len(kids1) == 1, "fork session without a child: %r" % kids1)
        threads1 = d.threads()
        waiting = None
        if old == "sequential":
            # The slot is taken: this client waits in the backlog...
            waiting = connect(addr)
            waiting.sendall(b"waiting\n")
            _no_reply_within(waiting, 0.3)

        t0 = time.monotonic()
        _write(d.conf, _conf(new))
        d.reload(timeout=1.0)           # RELOADING=1 and READY=1 within 1 s
        took = time.monotonic() - t0
        check(took < 1.0 * SLOW, "reload took %.2fs" % took)
        check(d.status.startswith("model %s;" % new),
              "STATUS after reload: %r" % d.status)
        check(d.addr() == addr, "address changed: %r -> %r" % (addr, d.addr()))
        check(_listen_inode(port) is not None)

        # The session that was open keeps its model and keeps answering.
        _ask(s1, "old session after reload")
        if waiting is not None:
            # ...and is served at once by the new model, s1 still open.
            out = recv_until(waiting, 1, timeout=1.0)
            check_reply(out, "waiting")
            _model_of_session(d, waiting, new)
            _exit(waiting)
            _poll(lambda: d.threads() == threads1 and _kids(d) == kids1, 3,
                  "the waiting client's session did not end")

        if new == "sequential":
            # One session at a time: s2 waits for s1, s3 waits for s2.
            s2 = connect(addr)
            s2.sendall(b"second\n")
            _exit(s1)
            out = recv_until(s2, 1, timeout=3)
            check_reply(out, "second")
            _model_of_session(d, s2, "sequential")
            check(_kids(d) == set() or old == "fork",
                  "sequential session in a child: %r" % _kids(d))
            s3 = connect(addr)
            s3.sendall(b"third\n")
            _no_reply_within(s3, 0.4)
            _ask(s2, "second again")
            _exit(s2)
            out = recv_until(s3, 1, timeout=3)
            check_reply(out, "third")
            _exit(s3)
            return

        s2 = connect(addr)
        # "At once", even when the old model was sequential and s1 is open.
        _ask(s2, "new session", timeout=1.0)
        _model_of_session(d, s2, new)
        if new == "fork":
            extra = _kids(d) - kids1
            check(len(extra) == 1, "new fork session: children %r -> %r"
                  % (kids1, _kids(d)))
            child = extra.pop()
        elif new == "thread":
            check(d.threads() == threads1 + 1, "thread session: threads %d -> %d"
                  % (threads1, d.threads()))
            check(_kids(d) == kids1, "thread session made a child")
        elif new == "event":
            check(d.threads() == threads1, "event session made a thread: %d -> %d"
                  % (threads1, d.threads()))
            check(_kids(d) == kids1, "event session made a child")

        _ask(s1, "old session still there")
        _ask(s2, "new session again")
        _exit(s2)
        _exit(s1)
        if new == "fork":
            _poll(lambda: proc_state(child) is None, 3,
                  "fork child %d not reaped" % child)
        _poll(lambda: not d.children(), 3,
              lambda: "children left after the sessions: %r" % d.children())
        _poll(lambda: d.threads() == 1, 3,
              lambda: "threads left after the sessions: %d" % d.threads())
        check(d.alive())


def test_reload_thread_to_fork_with_open_session():
    _reload_switch("thread", "fork")


def test_reload_fork_to_thread_with_open_session():
    _reload_switch("fork", "thread")


def test_reload_thread_to_event_with_open_session():
    _reload_switch("thread", "event")


def test_reload_event_to_sequential_with_open_session():
    _reload_switch("event", "sequential")


def test_reload_sequential_to_thread_with_open_session():
    _reload_switch("sequential", "thread")


# ---------------------------------------------------------- 2. bad reload

GOOD = """# echotimed test
listen = ( { transport = "tcp"; address = "127.0.0.1"; port = 0; } );
concurrency = {
  model = "%s";
};
shutdown_timeout = 2;
"""


def test_bad_reload_keeps_old_config_and_reports_file_line():
    with Daemon(GOOD % "thread") as d:
        addr = d.addr()
        inode = _listen_inode(addr[1])
        s1 = connect(addr)
        _ask(s1, "before")
        bad = [
            # a typo in a value, line 4
            (GOOD % "froks", 4, r"concurrency\.model"),
            # a misspelt setting name, line 7
            (GOOD % "fork" + "shutdown_timout = 3;\n", 7, r"shutdown_timout"),
            # a syntax error, line 4 (missing quote)
            ((GOOD % "fork").replace('"fork";', 'fork";'), 4, r"syntax error"),
        ]
        for text, line, what in bad:
            _write(d.conf, text)
            d.reload(expect_ok=False, timeout=3.0)
            where = "%s:%d" % (d.conf, line)
            check(d.status.startswith("reload failed:"), "STATUS %r" % d.status)
            check(where in d.status, "STATUS lacks %s: %r" % (where, d.status))
            check(re.search(what, d.status), "STATUS lacks %r: %r" % (what, d.status))
            check("model thread;" in d.status, "model changed: %r" % d.status)
            d.wait_log(re.escape(where), timeout=2)
            # Same address, same socket, old model, old session alive.
            check(d.addr() == addr, "address changed: %r" % (d.addr(),))
            check(_listen_inode(addr[1]) == inode, "listener replaced")
            _ask(s1, "after bad reload")
            s2 = connect(addr)
            _ask(s2, "new after bad reload")
            _model_of_session(d, s2, "thread")
            check(not d.children(), "a child appeared: old model not kept")
            _exit(s2)
            if line == 4 and "froks" in text:
                # The error stays in the periodic STATUS updates too.
                st = _status_matching(d, r"; 1 active, 2 sessions,")
                check(st.startswith("reload failed:"), "error gone from STATUS: %r" % st)
        _write(d.conf, GOOD % "fork")
        d.reload(timeout=3.0)
        check("failed" not in d.status, "STATUS still says failed: %r" % d.status)
        check(d.status.startswith("model fork;"), "STATUS %r" % d.status)
        s3 = connect(addr)
        _ask(s3, "fork now")
        _model_of_session(d, s3, "fork")
        _exit(s3)
        _exit(s1)


def test_bad_reload_listener_error_is_all_or_nothing():
    """A config that parses but whose new listener cannot bind changes
    nothing: not the model, not the listeners."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    busy = holder.getsockname()[1]
    try:
        with Daemon(_conf("thread")) as d:
            addr = d.addr()
            inode = _listen_inode(addr[1])
            _write(d.conf, _conf("fork", listen=[_tcp(0), _tcp(busy)]))
            d.reload(expect_ok=False, timeout=3.0)
            check(d.status.startswith("reload failed:"), "STATUS %r" % d.status)
            check("%d" % busy in d.status, "STATUS does not name the listener: %r"
                  % d.status)
            check("model thread;" in d.status, "model applied: %r" % d.status)
            check(d.addresses() == [("tcp", "%s:%d" % addr)],
                  "listeners changed: %r" % d.addresses())
            check(_listen_inode(addr[1]) == inode, "listener replaced")
            s = connect(addr)
            _ask(s, "still thread")
            _model_of_session(d, s, "thread")
            check(not d.children())
            _exit(s)
    finally:
        holder.close()


# ------------------------------------------------- 3. listener changes

def test_reload_listener_changes_keep_unchanged_socket():
    pb, pc = _free_port(), _free_port()
    while pc == pb:
        pc = _free_port()
    # Sequential, so that a client can wait in the backlog of A over the
    # reload: nothing in an unchanged listener's backlog may be lost.
    with Daemon(_conf("sequential", listen=[_tcp(0), _tcp(pb)])) as d:
        pa = [int(a.rsplit(":", 1)[1]) for t, a in d.addresses()
              if a != "127.0.0.1:%d" % pb]
        check(len(pa) == 1, "STATUS %r" % d.status)
        pa = pa[0]
        ino_a, ino_b = _listen_inode(pa), _listen_inode(pb)
        check(ino_a and ino_b and {ino_a, ino_b} <= _fd_inodes(d.pid),
              "listeners not found in /proc: %r %r" % (ino_a, ino_b))

        s1 = connect(("127.0.0.1", pa))
        _ask(s1, "holding the slot")
        waiting = connect(("127.0.0.1", pa))       # sits in A's backlog
        waiting.sendall(b"from the backlog\n")

        _write(d.conf, _conf("sequential", listen=[_tcp(0), _tcp(pc)]))
        d.reload(timeout=3.0)
        got = sorted(a for t, a in d.addresses())
        check(got == sorted(["127.0.0.1:%d" % pa, "127.0.0.1:%d" % pc]),
              "STATUS listeners %r" % got)
        check(_listen_inode(pa) == ino_a, "unchanged listener got a new socket")
        check(ino_a in _fd_inodes(d.pid), "daemon lost the unchanged socket")
        ino_c = _listen_inode(pc)
        check(ino_c is not None and ino_c in _fd_inodes(d.pid), "no new listener")
        check(ino_b not in _fd_inodes(d.pid), "old listener fd still open")
        _wait_refused(pb)
        check(_listen_inode(pb) is None)

        _ask(s1, "still holding")
        _exit(s1)
        out = recv_until(waiting, 1, timeout=3)
        check_reply(out, "from the backlog")
        _exit(waiting)
        check_reply(talk(("127.0.0.1", pc), b"new listener\n"), "new listener")
        check_reply(talk(("127.0.0.1", pa), b"old listener\n"), "old listener")

        # Remove C altogether.
        _write(d.conf, _conf("sequential", listen=[_tcp(0)]))
        d.reload(timeout=3.0)
        check(d.addresses() == [("tcp", "127.0.0.1:%d" % pa)], "STATUS %r" % d.status)
        _wait_refused(pc)
        check(_listen_inode(pa) == ino_a, "unchanged listener replaced")
        check(ino_c not in _fd_inodes(d.pid), "removed listener fd still open")
        check_reply(talk(("127.0.0.1", pa), b"last\n"), "last")


# ------------------------------------- 4. connections during reloads

def test_200_connections_during_10_reloads_none_refused():
    """Two clients make 200 connections (one line and exit each) while the
    main thread reloads 10 times, cycling the model.  The reloads are
    spaced by the clients' progress; the clients may run at most SLACK
    connections past a reload point before that reload is done, so the
    reloads land among the connections even on a loaded machine."""
    cycle = ["fork", "event", "sequential", "thread"]
    total, nclients, nreloads, slack = 200, 2, 10, 6
    per = total // nclients
    points = [(k + 1) * total // (nreloads + 2) for k in range(nreloads)]
    with Daemon(_conf("thread")) as d:
        addr = d.addr()
        cond = threading.Condition()
        state = {"done": 0, "reloads": 0, "abort": False}
        failures = []           # (kind, text, detail)

        def gate():
            # Wait for the reload due at this point (bounded).
            with cond:
                cond.wait_for(lambda: state["abort"] or state["reloads"] >= nreloads
                              or state["done"] < points[state["reloads"]] + slack,
                              timeout=30 * SLOW)

        def client(cid):
            for i in range(per):
                gate()
                text = "c%d-%03d" % (cid, i)
                s = None
                try:
                    s = connect(addr, timeout=10)
                    s.sendall(text.encode() + b"\nexit\n")
                    out = recv_until(s, until_eof=True, timeout=10)
                    lines = split_replies(out)
                    if len(lines) != 2:
                        failures.append(("short", text, out))
                    else:
                        try:
                            check_reply(lines[0], text)
                            check_reply(lines[1], "exit")
                        except TestFailure as e:
                            failures.append(("bad reply", text, str(e)))
                except ConnectionRefusedError as e:
                    failures.append(("refused", text, str(e)))
                except TestFailure as e:
                    failures.append(("timeout", text, str(e)))
                except OSError as e:
                    failures.append(("error", text, repr(e)))
                finally:
                    if s is not None:
                        s.close()
                    with cond:
                        state["done"] += 1
                        cond.notify_all()

        workers = [threading.Thread(target=client, args=(c,), daemon=True)
                   for c in range(nclients)]
        t0 = time.monotonic()
        for w in workers:
            w.start()
        at = []
        try:
            for k in range(nreloads):
                with cond:
                    cond.wait_for(lambda: state["done"] >= points[k], timeout=30 * SLOW)
                model = cycle[k % len(cycle)]
                _write(d.conf, _conf(model, "session = { idle_timeout = %d; };"
                                     % (100 + k)))
                d.reload(timeout=5.0)
                check(d.status.startswith("model %s;" % model), "STATUS %r" % d.status)
                with cond:
                    at.append(state["done"])
                    state["reloads"] = k + 1
                    cond.notify_all()
        finally:
            with cond:
                state["abort"] = True
                cond.notify_all()
        for w in workers:
            w.join(60 * SLOW)
        elapsed = time.monotonic() - t0
        check(not any(w.is_alive() for w in workers), "clients did not finish")
        kinds = collections.Counter(k for k, _, _ in failures)
        check(not failures, "%d of %d connections failed %s; first: %r"
              % (len(failures), total, dict(kinds), failures[:3]))
        check(state["done"] == total, "only %d connections made" % state["done"])
        check(at[-1] < total, "the reloads did not overlap the clients: %r" % at)
        check(d.alive())
        log = d.logtext()
        for m in cycle:
            check("(tcp, %s model)" % m in log, "no session ran in the %s model" % m)
        _status_matching(d, r"; 0 active, %d sessions, %d lines, 0 errors"
                         % (total, 2 * total))
        check(elapsed < 60 * SLOW)


# --------------------------------------------------------- 5. SIGTERM

def _sigterm_grace(model):
    # The grace period must outlast the steps below (STOPPING, the closed
    # port, one line answered), which a sanitizer slows down: 1 s, or
    # ECHOTIMED_SLOW seconds.
    grace = max(1, int(math.ceil(SLOW)))
    with Daemon(_conf(model, "shutdown_timeout = %d;" % grace)) as d:
        addr = d.addr()
        s = connect(addr)
        _ask(s, "before stop")
        kids = _kids(d)
        if model == "fork":
            check(len(kids) == 1, "no child for the fork session: %r" % kids)
        else:
            check(not kids, "%s model made children: %r" % (model, kids))
        d.drain_notify()
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        d.wait_notify("STOPPING", "1", timeout=1.0)
        _wait_refused(addr[1], timeout=1.0)
        # Still served during the grace period.
        _ask(s, "during grace", timeout=0.7)
        out = recv_until(s, until_eof=True, timeout=grace + 3)
        t_err = time.monotonic() - t0
        check(out == b"ERROR server shutting down\n",
              "%s: expected the shutdown error then EOF, got %r" % (model, out))
        check(t_err >= grace - 0.1, "%s: grace period cut short (%.2fs)"
              % (model, t_err))
        check(t_err <= grace + 1.5 * SLOW, "%s: shutdown error after %.2fs"
              % (model, t_err))
        try:
            rc = d.proc.wait(max(grace + 2.0 * SLOW - (time.monotonic() - t0),
                                 0.1))
        except subprocess.TimeoutExpired:
            raise TestFailure("%s: daemon still running %.0f s after SIGTERM"
                              % (model, grace + 2.0 * SLOW))
        check(rc == 0, "%s: exit status %r" % (model, rc))
        s.close()
        for pid in kids:
            check(proc_state(pid) is None, "%s: child %d outlived the daemon "
                  "(state %s)" % (model, pid, proc_state(pid)))
        log = d.logtext()
        check("stopping" in log, log)
        check_nothing_killed(log, "%s: " % model)


def test_sigterm_grace_then_shutdown_error_thread():
    _sigterm_grace("thread")


def test_sigterm_grace_then_shutdown_error_fork():
    _sigterm_grace("fork")


def test_sigterm_grace_then_shutdown_error_event():
    _sigterm_grace("event")


def test_sigterm_grace_then_shutdown_error_sequential():
    _sigterm_grace("sequential")


def test_sigterm_grace_then_shutdown_error_event_loops():
    _sigterm_grace("event_loops")


def test_second_sigterm_stops_at_once():
    for model in MODELS:
        with Daemon(_conf(model, "shutdown_timeout = 30;")) as d:
            s = connect(d.addr())
            _ask(s, "hi")
            kids = _kids(d)
            d.drain_notify()
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            # Standard signals do not queue: the second must come after
            # the first was taken, or the kernel merges them.
            d.wait_notify("STOPPING", "1", timeout=1.0)
            _ask(s, "still served", timeout=1.0)
            d.signal(signal.SIGTERM)
            out = recv_until(s, until_eof=True, timeout=3)
            check(out == b"ERROR server shutting down\n", "%s: %r" % (model, out))
            try:
                rc = d.proc.wait(max(3.0 * SLOW - (time.monotonic() - t0), 0.1))
            except subprocess.TimeoutExpired:
                raise TestFailure("%s: second SIGTERM did not end the daemon in 3 s"
                                  % model)
            check(rc == 0, "%s: exit status %r" % (model, rc))
            s.close()
            for pid in kids:
                check(proc_state(pid) is None, "%s: child %d outlived the daemon"
                      % (model, pid))


# --------------------------------------------------------- 6. SIGUSR1

def test_sigusr1_statistics_line_and_status():
    """Two listeners: A gets 2 sessions with 4 lines, B 1 session with 1
    line.  One SIGUSR1 = one log line with the totals (3 sessions, 5 lines)
    and each listener's figures; STATUS= carries the same totals."""
    for model in MODELS:
        with Daemon(_conf(model, listen=[_tcp(0), _tcp(0)])) as d:
            a, b = d.addr("tcp", 0), d.addr("tcp", 1)
            out = talk(a, b"a\nb\n")
            check(out.count(b"\n") == 2, repr(out))
            out = talk(a, b"c\nexit\n")          # exit counts as a line
            check(out.count(b"\n") == 2, repr(out))
            s = connect(b)
            _ask(s, "e")
            s.close()
            figures = r"0 active, 3 sessions, 5 lines, 0 errors, 0 rejected"
            _status_matching(d, r"^model %s; .*; %s" % (model, figures))
            d.signal(signal.SIGUSR1)

            def stats_lines():
                return [l for l in d.logtext().splitlines() if "statistics:" in l]
            _poll(lambda: stats_lines(), 2, "%s: SIGUSR1 logged nothing" % model)
            lines = stats_lines()
            check(len(lines) == 1, "%s: one SIGUSR1, %d statistics lines:\n%s"
                  % (model, len(lines), "\n".join(lines)))
            line = lines[0]
            check(re.search(figures, line), "%s: totals wrong: %r" % (model, line))
            for (host, port), want in ((a, "2 sessions, 4 lines, 0 errors"),
                                       (b, "1 sessions?, 1 lines?, 0 errors")):
                check(re.search(r"%s:%d\b[^;]*?\b%s" % (re.escape(host), port, want), line),
                      "%s: listener %d figures wrong (want %s): %r"
                      % (model, port, want, line))
            d.signal(signal.SIGUSR1)
            _poll(lambda: len(stats_lines()) == 2, 2,
                  lambda: "%s: second SIGUSR1: %r" % (model, stats_lines()))
            check(d.alive())


# --------------------------------------------------------- 7. -d, -p

def _daemon_env():
    e = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM"):
        e.pop(k, None)
    return e


def _is_echotimed(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip() == "echotimed" and not gone(pid)
    except OSError:
        return False


def _kill_stray(pid):
    """Only the pid from the pidfile, only if it is still an echotimed."""
    if pid and _is_echotimed(pid):
        os.kill(pid, signal.SIGKILL)
        _poll(lambda: gone(pid), 5, "pid %d survived SIGKILL" % pid)


def test_daemon_mode_pidfile():
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="echotimed-d-")
    conf = os.path.join(tmp, "d.conf")
    pidfile = os.path.join(tmp, "echotimed.pid")
    with open(conf, "w") as f:
        f.write(_conf("thread", "shutdown_timeout = 1;", listen=[_tcp(port)]))
    pid = None
    try:
        r = subprocess.run([BINARY, "-d", "-p", pidfile, "-c", conf],
                           capture_output=True, env=_daemon_env(),
                           stdin=subprocess.DEVNULL, timeout=10 * SLOW)
        check(r.returncode == 0, "-d failed: %r" % (r,))
        with open(pidfile) as f:
            text = f.read()
        check(re.fullmatch(r"\d+\n", text), "pidfile %r" % text)
        pid = int(text)
        check(_is_echotimed(pid), "pid %d from the pidfile is not echotimed" % pid)
        st = _proc_status(pid)
        check(int(st["PPid"][0]) != os.getpid(), "daemon is still our child")
        check(os.getsid(pid) != os.getsid(0), "daemon did not leave our session")
        check(os.readlink("/proc/%d/fd/0" % pid) == "/dev/null")
        # Serving as soon as -d returned: no wait.
        check_reply(talk(("127.0.0.1", port), b"detached\n"), "detached")

        r2 = subprocess.run([BINARY, "-d", "-p", pidfile, "-c", conf],
                            capture_output=True, env=_daemon_env(),
                            stdin=subprocess.DEVNULL, timeout=10 * SLOW)
        err = r2.stderr.decode(errors="replace")
        check(r2.returncode != 0, "second -d -p succeeded: %r" % (r2,))
        check(pidfile in err and "locked" in err, "message: %r" % err)
        check("pid %d" % pid in err, "message does not name the pid: %r" % err)
        with open(pidfile) as f:
            check(f.read() == text, "second instance touched the pidfile")
        check(_is_echotimed(pid), "first daemon died")

        os.kill(pid, signal.SIGTERM)
        _poll(lambda: gone(pid), 5,
              "daemon %d did not exit within 5 s of SIGTERM (state %s)"
              % (pid, proc_state(pid)))
        _poll(lambda: not os.path.exists(pidfile), 1, "pidfile not removed")
        _wait_refused(port, 1.0)
    finally:
        _kill_stray(pid)
        shutil.rmtree(tmp, ignore_errors=True)


def test_daemon_mode_relative_paths_reload_and_stop():
    """-d changes directory to /: relative -c and -p given on the command
    line must still work for SIGHUP and for removing the pidfile."""
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="echotimed-d-")
    with open(os.path.join(tmp, "d.conf"), "w") as f:
        f.write(_conf("thread", listen=[_tcp(port)]))
    ns = NotifySocket(tmp)
    env = _daemon_env()
    env["NOTIFY_SOCKET"] = ns.path
    pid = None
    try:
        r = subprocess.run([BINARY, "-d", "-p", "rel.pid", "-c", "d.conf"],
                           capture_output=True, env=env, cwd=tmp,
                           stdin=subprocess.DEVNULL, timeout=10 * SLOW)
        check(r.returncode == 0, "-d failed: %r" % (r,))
        with open(os.path.join(tmp, "rel.pid")) as f:
            pid = int(f.read())
        ns.wait("READY", "1", timeout=3)
        with open(os.path.join(tmp, "d.conf"), "w") as f:
            f.write(_conf("fork", listen=[_tcp(port)]))
        os.kill(pid, signal.SIGHUP)
        ns.wait("RELOADING", "1", timeout=3)
        m = ns.wait("READY", "1", timeout=3)
        st = m.get("STATUS", "")
        check(st.startswith("model fork;"), "reload with a relative -c: %r" % st)
        os.kill(pid, signal.SIGTERM)
        _poll(lambda: gone(pid), 5, "daemon %d did not exit on SIGTERM" % pid)
        _poll(lambda: not os.path.exists(os.path.join(tmp, "rel.pid")), 1,
              "relative pidfile not removed at exit")
    finally:
        ns.close()
        _kill_stray(pid)
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------ 8. privilege drop

def _nobody():
    pw = pwd.getpwnam("nobody")
    groups = sorted(set(os.getgrouplist("nobody", pw.pw_gid)))
    return pw.pw_uid, pw.pw_gid, groups


def _check_ids(pid, what):
    uid, gid, groups = _nobody()
    st = _proc_status(pid)
    check(st["Uid"] == [str(uid)] * 4, "%s Uid %r" % (what, st["Uid"]))
    check(st["Gid"] == [str(gid)] * 4, "%s Gid %r" % (what, st["Gid"]))
    check(sorted(int(g) for g in st.get("Groups", [])) == groups,
          "%s Groups %r, want %r" % (what, st.get("Groups"), groups))


class _OpenNotify:
    """A notify socket the unprivileged daemon may still write to (the
    harness's lives in a 0700 directory, like nothing under systemd)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="echotimed-n-")
        os.chmod(self.dir, 0o755)
        self.ns = NotifySocket(self.dir)
        os.chmod(self.ns.path, 0o777)

    def ready(self, d, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            if not d.alive():
                raise TestFailure("daemon exited %s:\n%s"
                                  % (d.proc.returncode, d.logtext()))
            if time.monotonic() > deadline:
                raise TestFailure("no READY=1:\n" + d.logtext())
            m = self.ns.recv(0.2)
            if m and "STATUS" in m:
                d.status = m["STATUS"]
            if m and m.get("READY") == "1":
                return

    def close(self):
        self.ns.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _root():
    return os.geteuid() == 0


def test_privilege_drop_to_nobody():
    if not _root():
        return ("skip", "needs root")
    for model in ("thread", "fork"):
        n = _OpenNotify()
        try:
            with Daemon(_conf(model, 'user = "nobody";'), wait_ready=False,
                        env={"NOTIFY_SOCKET": n.ns.path}) as d:
                n.ready(d)
                _check_ids(d.pid, "%s daemon" % model)
                s = connect(d.addr())
                _ask(s, "as nobody")
                if model == "fork":
                    kids = _kids(d)
                    check(len(kids) == 1, "children %r" % kids)
                    _check_ids(kids.pop(), "fork child")
                _exit(s)
                check(d.stop() == 0)
        finally:
            n.close()


def test_privilege_drop_unknown_user_exit_78():
    if not _root():
        return ("skip", "needs root")
    with Daemon(_conf("thread", 'user = "no-such-user";'), wait_ready=False) as d:
        try:
            rc = d.proc.wait(5 * SLOW)
        except subprocess.TimeoutExpired:
            raise TestFailure("daemon with an unknown user keeps running")
        check(rc == 78, "exit status %r:\n%s" % (rc, d.logtext()))
        check("no-such-user" in d.logtext(), d.logtext())


def test_privilege_drop_unix_listener():
    if not _root():
        return ("skip", "needs root")
    uid, gid, _ = _nobody()
    base = tempfile.mkdtemp(prefix="echotimed-u-")
    os.chmod(base, 0o755)
    run = os.path.join(base, "run")     # like RuntimeDirectory=, the user's
    os.mkdir(run, 0o755)
    os.chown(run, uid, gid)
    path = os.path.join(run, "e.sock")
    n = _OpenNotify()
    try:
        def conf(name):
            return _conf("thread", 'user = "nobody";', listen=[
                '{ transport = "unix"; path = "%s"; mode = "0660"; name = "%s"; }'
                % (path, name),
                '{ transport = "tcp"; address = "127.0.0.1"; port = 0; }'])
        with Daemon(conf("a"), wait_ready=False,
                    env={"NOTIFY_SOCKET": n.ns.path}) as d:
            n.ready(d)
            _check_ids(d.pid, "daemon")
            check(os.path.exists(path), "socket file missing")
            check(d.addr("unix") == path, "STATUS %r" % d.status)
            check(os.stat(path).st_mode & 0o777 == 0o660, "mode %o" % os.stat(path).st_mode)
            check_reply(talk(path, b"over unix\n", transport="unix"), "over unix")
            check_reply(talk(d.addr(), b"over tcp\n"), "over tcp")
            # Renaming it in a reload, as nobody, must not chmod the file
            # root made again (EPERM): only what changed is applied.
            with open(d.conf, "w") as f:
                f.write(conf("renamed"))
            os.chmod(os.path.dirname(d.conf), 0o755)     # readable by nobody
            os.chmod(d.conf, 0o644)
            d.proc.send_signal(signal.SIGHUP)
            n.ready(d)
            check(not d.status.startswith("reload failed"), "STATUS %r" % d.status)
            check_reply(talk(path, b"after rename\n", transport="unix"), "after rename")
            check(d.stop() == 0)
            check(not os.path.exists(path),
                  "socket file %s left behind after exit" % path)
    finally:
        n.close()
        shutil.rmtree(base, ignore_errors=True)


def test_privilege_drop_pidfile_not_left_naming_a_dead_pid():
    """-p in a root-owned directory (/run) with user = "nobody": after a
    clean exit the pidfile must not go on naming the dead daemon's pid (an
    init script would signal whatever process reuses it).  Foreground -p,
    so that this does not depend on -d."""
    if not _root():
        return ("skip", "needs root")
    base = tempfile.mkdtemp(prefix="echotimed-r-")
    os.chmod(base, 0o755)
    pidfile = os.path.join(base, "echotimed.pid")
    n = _OpenNotify()
    try:
        with Daemon(_conf("thread", 'user = "nobody";'), args=["-p", pidfile],
                    wait_ready=False, env={"NOTIFY_SOCKET": n.ns.path}) as d:
            n.ready(d)
            with open(pidfile) as f:
                check(f.read() == "%d\n" % d.pid, "pidfile content")
            _check_ids(d.pid, "daemon")
            check(d.stop() == 0)
            left = None
            if os.path.exists(pidfile):
                with open(pidfile) as f:
                    left = f.read()
            check(not left, "pidfile %s still names the dead daemon: %r"
                  % (pidfile, left))
    finally:
        n.close()
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------- 9. SIGPIPE

def _unread(s):
    buf = fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return struct.unpack("i", buf)[0]


def _tcp_wmem_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


def test_sigpipe_client_vanishes_mid_reply():
    """Clients vanish while replies pile up unread, in four ways.  Short
    lines make replies 13 to 26 times their input, so the daemon has
    replies queued in the session (its socket buffer is full) when the
    client goes.  Unix stream (ways 0, 1): any send() after the peer
    closed is EPIPE, the SIGPIPE case.  TCP way 2: the client shuts its
    write side first, so the daemon's socket is in CLOSE_WAIT when the
    reset comes, and the next send() is EPIPE too; the input is sized to
    outgrow the largest TCP send buffer.  TCP way 3: flood, reset at once.
    """
    n = 8
    tcp_lines = _tcp_wmem_max() * 3 // 2 // 26
    sockdir = tempfile.mkdtemp(prefix="echotimed-p-")
    sock = os.path.join(sockdir, "p.sock")
    try:
        for model in MODELS:
            conf = _conf(model, listen=['{ transport = "tcp"; address = "127.0.0.1"; port = 0; }',
                                        '{ transport = "unix"; path = "%s"; }' % sock])
            with Daemon(conf) as d:
                addr = d.addr()
                for i in range(n):
                    how = i % 4
                    if how in (0, 1):
                        s = connect(sock, "unix")
                        data = b"a\n" * 20000
                    elif how == 2:
                        s = connect(addr)
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                        data = b"\n" * tcp_lines
                    else:
                        s = connect(addr)
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                        data = (b"y" * 60 + b"\n") * 6600
                    s.setblocking(False)
                    sent = 0
                    deadline = time.monotonic() + 5 * SLOW
                    while sent < len(data) and time.monotonic() < deadline and how != 3:
                        try:
                            sent += s.send(data[sent:sent + 65536])
                        except BlockingIOError:
                            time.sleep(0.005)       # the daemon is still reading
                    if how == 3:
                        try:
                            while sent < len(data):
                                sent += s.send(data[sent:sent + 65536])
                        except BlockingIOError:
                            pass
                    else:
                        check(sent == len(data), "%s: only %d of %d bytes sent (way %d)"
                              % (model, sent, len(data), how))
                    if how in (0, 2):
                        s.shutdown(socket.SHUT_WR)
                    # The daemon is mid-reply once replies pile up unread here.
                    _poll(lambda: _unread(s) > 2048 or not d.alive(), 3,
                          "%s: no replies piled up" % model)
                    check(d.alive(), "%s: daemon died (client %d, way %d):\n%s"
                          % (model, i, how, d.logtext()[-2000:]))
                    if model == "fork" and i == 0:
                        kids = _kids(d)
                        check(len(kids) == 1, "%s: children %r" % (model, kids))
                    if how == 3:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
                    s.close()
                # Every broken session ends, and the daemon goes on serving.
                _poll(lambda: re.search(r"; 0 active, %d sessions," % n, d.status)
                      or not d.alive() or (d.drain_notify() and False), 5,
                      lambda: "%s: sessions did not end: %r" % (model, d.status))
                check(d.alive(), "%s: daemon died:\n%s" % (model, d.logtext()[-2000:]))
                check_reply(talk(addr, b"still alive\n"), "still alive")
                check_reply(talk(sock, b"still alive\n", "unix"), "still alive")
                log = d.logtext()
                check("killed by signal" not in log,
                      "%s: a child was killed by a signal:\n%s" % (model, log[-2000:]))
                check(d.stop() == 0)
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


def _fds(pid):
    """pid's open fds: {fd: (link, eventfd id)}; the id is None where the
    kernel shows none (before 6.0): the count of eventfds still tells."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                info = f.read()
        except OSError:
            continue
        ids = [l.split(":", 1)[1].strip() for l in info.splitlines()
               if l.startswith("eventfd-id:")]
        out[int(fd)] = (link, ids[0] if ids else None)
    return out


def _reload_to_fork_child(d, addr):
    """Reload d to the fork model and open a session b there: (b, its
    child's pid)."""
    _write(d.conf, _conf("fork"))   # same listener (port 0): kept
    d.reload()
    check(d.status.startswith("model fork;"), "reload to fork: %r" % d.status)
    b = connect(addr)
    b.sendall(b"b\n")
    check_reply(recv_until(b, 1), "b")
    _model_of_session(d, b, "fork")
    kids = _kids(d)
    check(len(kids) == 1, "b's session is not in a child: %r" % kids)
    return b, kids.pop()


def _fork_child_does_not_hold(old):
    """After a reload from old to fork, a forked child must not keep a
    running session's socket: that session's close reaches its client at
    once, while the child's own session is still open."""
    with Daemon(_conf(old)) as d:
        addr = d.addr()
        a = connect(addr)
        a.sendall(b"a\n")
        check_reply(recv_until(a, 1), "a")
        b, child = _reload_to_fork_child(d, addr)
        # Nor the parent's epoll instances and eventfds (the loops' too):
        # the child's one eventfd is its own stop fd, not one of the
        # parent's (eventfd-id in fdinfo tells them apart).
        links = _fds(child)
        parent_ids = {i for l, i in _fds(d.pid).values()
                      if "eventfd" in l and i is not None}
        check(not [l for l, _ in links.values() if "eventpoll" in l],
              "the fork child holds an epoll instance: %r" % links)
        mine = [i for l, i in links.values() if "eventfd" in l]
        check(len(mine) <= 1 and not parent_ids & set(mine),
              "the fork child holds the parent's eventfds %r (the parent's: %r)"
              % (links, sorted(parent_ids)))
        a.sendall(b"exit\n")
        t0 = time.monotonic()
        out = recv_until(a, until_eof=True, timeout=5)
        check_reply(out, "exit")
        check(time.monotonic() - t0 < 1.0 * SLOW,
              "%s session closed only after %.1fs" % (old, time.monotonic() - t0))
        b.sendall(b"exit\n")
        check_reply(recv_until(b, until_eof=True), "exit")
        a.close()
        b.close()


def test_fork_child_does_not_hold_thread_sessions_open():
    _fork_child_does_not_hold("thread")


def test_fork_child_does_not_hold_event_loop_sessions_open():
    _fork_child_does_not_hold("event_loops")


def test_fork_child_closes_more_sockets_than_the_stack_list_holds():
    """The parent lists the descriptors a child closes before the fork, 64
    (CHILD_FDS in model_fork.c) on its stack and more on the heap: after a
    reload from thread to fork with 80 thread sessions running (n must be
    over CHILD_FDS), a forked child holds none of their sockets, only its
    own."""
    n = 80
    with Daemon(_conf("thread")) as d:
        addr = d.addr()
        olds = []
        for i in range(n):
            s = connect(addr)
            s.sendall(b"old\n")
            check_reply(recv_until(s, 1), "old")
            olds.append(s)
        b, child = _reload_to_fork_child(d, addr)
        socks = _fd_inodes(child)
        parent_socks = _fd_inodes(d.pid)
        check(len(parent_socks) >= n, "the parent holds %d sockets, not the %d "
              "sessions' and its listener" % (len(parent_socks), n))
        check(len(socks) == 1 and not socks & parent_socks,
              "the fork child holds %d sockets, not its own alone: %r"
              % (len(socks), sorted(socks)))
        b.sendall(b"exit\n")
        check_reply(recv_until(b, until_eof=True), "exit")
        for s in olds:
            s.sendall(b"exit\n")
            check_reply(recv_until(s, until_eof=True), "exit")
            s.close()
        b.close()


def test_reload_renaming_listener_renames_it_in_fd_store():
    """A listener renamed in place keeps its socket; the fd store entry
    follows the name, so that removing the listener later really removes
    it from the store (else it would come back at the next start)."""
    conf = 'listen = ( { transport = "tcp"; address = "127.0.0.1"; port = 0; name = "%s"; } );\n'
    with Daemon(conf % "old") as d:
        port = d.addr()[1]
        inode = _listen_inode(port)
        with open(d.conf, "w") as f:
            f.write(conf % "new")
        d.notify.messages.clear()
        d.reload()
        check(_listen_inode(port) == inode, "renaming replaced the socket")
        seq = [("remove " if "FDSTOREREMOVE" in m else "store ") + m.get("FDNAME", "")
               for m in d.notify.messages if "FDNAME" in m]
        check(seq == ["remove old", "store new"], "fd store messages: %r" % seq)
        # Removing it now takes the new name out.
        with open(d.conf, "w") as f:
            f.write('listen = ( { transport = "tcp"; address = "127.0.0.2"; port = 0; } );\n')
        d.notify.messages.clear()
        d.reload()
        removed = [m.get("FDNAME") for m in d.notify.messages if "FDSTOREREMOVE" in m]
        check(removed == ["new"], "removed from the store: %r" % removed)


def test_reload_moving_named_listener_keeps_it_in_fd_store():
    """Moving a named listener stores the new socket after removing the
    old one: FDSTOREREMOVE by name must not take the new one out."""
    conf = 'listen = ( { transport = "tcp"; address = "127.0.0.1"; port = 0; name = "main"; } );\n'
    with Daemon(conf) as d:
        first = d.addr()
        with open(d.conf, "w") as f:
            f.write(conf.replace('address = "127.0.0.1"', 'address = "127.0.0.2"'))
        d.notify.messages.clear()
        d.reload()
        seq = [("remove" if "FDSTOREREMOVE" in m else "store")
               for m in d.notify.messages if m.get("FDNAME") == "main"]
        check(seq == ["remove", "store"], "fd store messages: %r" % seq)
        check(d.addr()[0] == "127.0.0.2" and first[0] == "127.0.0.1", d.status)


# ---------------------------------------------------- 10. busy polling

def _cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _paced_cpu(d, n, gap):
    """CPU the daemon spends on n short connections, gap seconds apart."""
    addr = d.addr()
    before = _cpu_seconds(d.pid)
    for i in range(n):
        s = connect(addr)
        _ask(s, "paced %d" % i)
        _exit(s)
        time.sleep(gap)     # pacing, so that each poll runs its course
    return _cpu_seconds(d.pid) - before


def test_busy_poll_after_work_sleeps_when_idle_and_reloads():
    """concurrency.busy_poll: the loop polls that long after each piece of
    work (the daemon's CPU time shows it), a reload turns it on and off, and
    an idle daemon still sleeps."""
    n, us, gap = 20, 10000, 0.03
    conf = ('listen = ( { transport = "tcp"; address = "127.0.0.1"; '
            'port = 0; } );\nconcurrency = { model = "event"; '
            'busy_poll = %d; };\nshutdown_timeout = 2;\n')
    with Daemon(conf % 0) as d:
        off = _paced_cpu(d, n, gap)
        check(off < 0.1, "busy_poll = 0 used %.3f s of CPU for %d "
              "connections" % (off, n))

        _write(d.conf, conf % us)
        d.reload()
        on = _paced_cpu(d, n, gap)
        # Each connection is followed by up to 10 ms of polling: 0.2 s in
        # all.  Steal on a shared machine can take some of it.
        check(on >= 0.3 * n * us / 1e6, "busy_poll = %d used only %.3f s "
              "of CPU for %d connections (off: %.3f s)" % (us, on, n, off))

        before = _cpu_seconds(d.pid)
        time.sleep(1.0)     # a bounded "nothing happens" window
        idle = _cpu_seconds(d.pid) - before
        check(idle < 0.1, "idle daemon with busy_poll used %.3f s of CPU "
              "in 1 s" % idle)

        _write(d.conf, conf % 0)
        d.reload()
        again = _paced_cpu(d, n, gap)
        check(again < 0.1, "busy_poll back at 0 still used %.3f s of CPU"
              % again)


# ------------------------------------------ 11. event model, workers = N

def test_event_loops_idle_timeout():
    """A loop thread times its idle sessions out like the main loop."""
    with Daemon(_conf("event_loops", "session = { idle_timeout = 1; };")) as d:
        addr = d.addr()
        socks = [connect(addr) for _ in range(2)]
        t0 = time.monotonic()
        for i, s in enumerate(socks):
            _ask(s, "idle %d" % i)
        check(d.threads() == 3, "threads %d, want 1 + 2 loops" % d.threads())
        for s in socks:
            out = recv_until(s, until_eof=True, timeout=4)
            check(out == b"ERROR idle timeout\n", "got %r" % out)
            s.close()
        took = time.monotonic() - t0
        check(took >= 0.9, "idle timeout after only %.2fs" % took)
        d.wait_log(r"closed: idle timeout.*\n.*closed: idle timeout")


def test_event_loops_reload_changes_workers():
    """A reload that changes workers applies to new connections: running
    sessions stay in their loops, more loops start when needed, and with
    fewer the extra loops are kept, idle."""
    with Daemon(_conf("event", workers=2)) as d:
        addr = d.addr()
        old = [connect(addr) for _ in range(2)]
        for i, s in enumerate(old):
            _ask(s, "old %d" % i)
        check(d.threads() == 3, "threads %d, want 1 + 2 loops" % d.threads())

        _write(d.conf, _conf("event", workers=4))
        d.reload()
        new = [connect(addr) for _ in range(3)]
        for i, s in enumerate(new):
            _ask(s, "new %d" % i)
        check(d.threads() == 5, "threads %d, want 1 + 4 loops" % d.threads())

        _write(d.conf, _conf("event", workers=1))
        d.reload()
        main = connect(addr)
        _ask(main, "in the main loop")
        check(d.threads() == 5, "threads %d after workers = 1" % d.threads())

        _write(d.conf, _conf("thread"))
        d.reload()
        th = connect(addr)
        _ask(th, "thread session")
        check(d.threads() == 6, "threads %d with a thread session" % d.threads())

        for s in old + new + [main, th]:
            _ask(s, "still served")
        for s in old + new + [main, th]:
            _exit(s)
        check(not d.children(), "children: %r" % d.children())


def _stats_now(d):
    """Send SIGUSR1 and return the statistics line it logs."""
    def lines():
        return [l for l in d.logtext().splitlines() if "statistics:" in l]
    n = len(lines())
    d.signal(signal.SIGUSR1)
    _poll(lambda: len(lines()) > n, 3, "SIGUSR1 logged no statistics line")
    return lines()[n]


def test_removed_listener_sessions_do_not_count_for_a_new_one():
    """A reload swaps listener A for B while a session on A runs.  The
    session's lines must count in the totals, not in B's figures (B must
    not get A's statistics slot while A's session still counts in it)."""
    for model in ("thread", "fork", "event", "event_loops"):
        with Daemon(_conf(model, listen=[_tcp(0)])) as d:
            s = connect(d.addr())
            _ask(s, "one")
            _write(d.conf, _conf(model, listen=[
                '{ transport = "tcp"; address = "::1"; port = 0; '
                'name = "b"; }']))
            d.reload()
            check(d.addr()[0] == "::1", "%s: listener not replaced: %r"
                  % (model, d.addr()))
            for text in ("two", "three"):
                _ask(s, text)
            _exit(s)
            _poll(lambda: "0 active, 1 sessions, 4 lines" in _stats_now(d),
                  3, lambda: "%s: totals: %r" % (model, _stats_now(d)))
            line = _stats_now(d)
            check(re.search(r"tcp b: 0 sessions, 0 lines, 0 errors", line),
                  "%s: the new listener counts the old session: %r"
                  % (model, line))

