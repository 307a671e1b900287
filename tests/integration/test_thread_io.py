"""The blocking session loop of the thread and fork models and of
inetd mode (issue 16).

A busy session costs two system calls per line (recv, send): it sleeps in
a blocking recv() with the idle clock as SO_RCVTIMEO, and a stop reaches
it through a signal: SIGRTMIN to a session thread (src/model_thread.c),
SIGTERM to a fork child, SIGTERM or SIGINT to echotimed -i
(src/stopsig.c).  These tests count the system calls with strace, stop
and reload daemons whose sessions sleep in recv(), check the idle clock,
and check that a forked child does not keep the SIGRTMIN handler.
"""
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from lib import (SLOW, WRAP, Daemon, Inetd, TestFailure, check,
                 check_nothing_killed, check_reply, connect, gone, recv_until)


def _conf(model="thread", extra="", unix=None):
    listen = ['{ transport = "tcp"; address = "127.0.0.1"; port = 0; }']
    if unix:
        listen.append('{ transport = "unix"; path = "%s"; }' % unix)
    return ("listen = (\n  %s\n);\nconcurrency = { model = \"%s\"; };\n%s\n"
            % (",\n  ".join(listen), model, extra))


def _ask(s, text, timeout=3.0):
    s.sendall(text.encode() + b"\n")
    out = recv_until(s, 1, timeout=timeout)
    check(out.count(b"\n") == 1, "expected one reply to %r, got %r" % (text, out))
    check_reply(out, text)


def _tid_names(pid):
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                out[int(tid)] = f.read().strip()
        except OSError:
            pass
    return out


# ------------------------------------------------ (a) syscalls per line

def _session_calls(pid, tmpdir, sock, n):
    """strace -f pid while sock sends n lines, one at a time, then exit:
    the system calls of the thread (or child) that read them, from its
    first recv() to its last send()."""
    out = os.path.join(tmpdir, "strace.out")
    err = open(os.path.join(tmpdir, "strace.err"), "w+")
    st = subprocess.Popen(["strace", "-f", "-qq", "-o", out, "-p", str(pid)],
                          stderr=err)
    try:
        # strace is attached once the process shows a tracer.
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            with open("/proc/%d/status" % pid) as f:
                if any(l.startswith("TracerPid:") and l.split()[1] != "0"
                       for l in f):
                    break
            time.sleep(0.01)
        else:
            raise TestFailure("strace did not attach")
        s = sock()
        for i in range(n):
            s.sendall(b"line %d\n" % i)
            r = recv_until(s, 1, timeout=10)
            check(r.startswith(b"line %d " % i), "reply %d: %r" % (i, r))
        s.sendall(b"exit\n")
        recv_until(s, until_eof=True, timeout=10)
        s.close()
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(10)
        err.close()
    seq = {}
    with open(out) as f:
        for line in f:
            if "resumed>" in line or " = " not in line and "<unfinished" not in line:
                continue
            fl = line.split(None, 1)
            seq.setdefault(int(fl[0]), []).append(fl[1].split("(", 1)[0])
    mine = seq[max(seq, key=lambda t: seq[t].count("recvfrom"))]
    # From the first line's recv() to the last reply: not the start-up or
    # the exit of a process (inetd mode, or under a sanitizer's runtime).
    first = mine.index("recvfrom")
    last = len(mine) - 1 - mine[::-1].index("sendto")
    calls = {}
    for name in mine[first:last + 1]:
        calls[name] = calls.get(name, 0) + 1
    return calls


def _check_two_per_line(what, mine, n):
    total = sum(mine.values())
    per_line = total / float(n)
    top = sorted(mine.items(), key=lambda kv: -kv[1])[:6]
    print("%s io: the session made %d system calls for %d lines "
          "(%.3f per line): %s" % (what, total, n, per_line,
                                  ", ".join("%s %d" % kv for kv in top)))
    check(mine.get("recvfrom", 0) >= n and mine.get("sendto", 0) >= n,
          "only %r" % mine)
    check(per_line <= 2.1, "%.3f system calls per line: %r" % (per_line, mine))
    check(mine.get("poll", 0) + mine.get("ppoll", 0) < 10,
          "the busy session polls: %r" % mine)


def _two_syscalls_per_line(model):
    """strace every system call of the session's thread (or child) while
    one client sends N lines one at a time: recv + send per line, no
    poll."""
    if not shutil.which("strace"):
        return ("skip", "no strace")
    n = 2000
    with Daemon(_conf(model, extra="session = { idle_timeout = 300; };")) as d:
        addr = d.addr()
        mine = _session_calls(d.pid, d.dir, lambda: connect(addr, timeout=10),
                              n)
    _check_two_per_line(model, mine, n)


def test_thread_two_syscalls_per_line():
    return _two_syscalls_per_line("thread")


def test_fork_two_syscalls_per_line():
    return _two_syscalls_per_line("fork")


# ------------------------------------------------ (b) stop

def _stop_round(model, idle_n, busy_n, unix_n, round_no):
    tmp = tempfile.mkdtemp(prefix="echotimed-%s-io-" % model)
    path = os.path.join(tmp, "echo.sock")
    try:
        return _stop_daemon(model, idle_n, busy_n, unix_n, round_no, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _stop_daemon(model, idle_n, busy_n, unix_n, round_no, path):
    with Daemon(_conf(model, extra="shutdown_timeout = 1;", unix=path)) as d:
        addr = d.addr()
        idle = []
        for i in range(idle_n):
            s = connect(addr)
            _ask(s, "idle %d" % i)
            idle.append(s)
        for i in range(unix_n):
            s = connect(path, transport="unix")
            _ask(s, "unix %d" % i)
            idle.append(s)
        # Busy clients ask line after line until the daemon says stop:
        # each one crosses the recv/send boundary all the time.
        results = {}
        go = threading.Event()

        def busy(k):
            s = connect(addr, timeout=8)
            got = b""
            try:
                _ask(s, "busy %d" % k)
                go.wait()
                deadline = time.monotonic() + 6 * SLOW
                while time.monotonic() < deadline:
                    s.sendall(b"more\n")
                    r = recv_until(s, 1, timeout=4)
                    if not r or b"ERROR" in r:
                        got = r + recv_until(s, until_eof=True, timeout=4)
                        break
                results[k] = got
            except (OSError, TestFailure) as e:
                results[k] = repr(e).encode()
            finally:
                s.close()

        workers = [threading.Thread(target=busy, args=(k,)) for k in range(busy_n)]
        for w in workers:
            w.start()
        time.sleep(0.1)
        go.set()
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        for i, s in enumerate(idle):
            out = recv_until(s, until_eof=True, timeout=5)
            check(out == b"ERROR server shutting down\n",
                  "round %d: idle session %d got %r" % (round_no, i, out))
            s.close()
        t_err = time.monotonic() - t0
        for w in workers:
            w.join(10)
        for k in range(busy_n):
            r = results.get(k, b"")
            check(r.endswith(b"ERROR server shutting down\n"),
                  "round %d: busy session %d ended with %r" % (round_no, k, r[-80:]))
        try:
            rc = d.proc.wait(3.0 * SLOW)
        except subprocess.TimeoutExpired:
            raise TestFailure("round %d: daemon still running 3 s after SIGTERM"
                              % round_no)
        t_exit = time.monotonic() - t0
        check(rc == 0, "exit status %r" % rc)
        check(t_err >= 0.9, "grace cut short: %.2f s" % t_err)
        check(t_exit <= 2.5 * SLOW, "exit %.2f s after SIGTERM" % t_exit)
        check_nothing_killed(d.logtext(), "round %d: " % round_no)
        return t_err, t_exit


def _stop_wakes_sessions(model):
    """50 sessions asleep in recv() (TCP and Unix) and 8 busy ones: each
    gets the shutdown error after the grace, and the daemon exits."""
    times = []
    for r in range(4):
        times.append(_stop_round(model, 42, 8, 8, r))
    print("%s io: stop of 58 sessions, 4 rounds: errors after %s s, exit after %s s"
          % (model, ", ".join("%.2f" % t for t, _ in times),
             ", ".join("%.2f" % t for _, t in times)))


def test_thread_stop_wakes_sessions_asleep_in_recv():
    _stop_wakes_sessions("thread")


def test_fork_stop_wakes_sessions_asleep_in_recv():
    _stop_wakes_sessions("fork")


def _stall(s, limit=10.0):
    """Send lines on s without reading the replies until the session stops
    reading too (its replies wait: back-pressure).  Bytes sent."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    _ask(s, "hello")
    s.setblocking(False)
    chunk = b"x\n" * 32768
    sent = 0
    deadline = time.monotonic() + limit * SLOW
    while time.monotonic() < deadline:
        try:
            sent += s.send(chunk)
            continue
        except BlockingIOError:
            pass
        if not select.select([], [s], [], 0.3)[1]:
            return sent
    raise TestFailure("the session kept reading %d bytes without replies read"
                      % sent)


def _stalled(addr):
    """A client whose session has stalled (_stall): (socket, bytes sent)."""
    s = connect(addr)
    try:
        return s, _stall(s)
    except BaseException:
        s.close()
        raise


def _stop_reaches_stalled_session(model):
    """A stop reaches a session that waits in poll() for its peer to read
    (not in recv()): at the end of the grace it ends at once, and the
    daemon exits without the SIGKILL 3 s later."""
    with Daemon(_conf(model, extra="shutdown_timeout = 1;")) as d:
        s, sent = _stalled(d.addr())
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(5.0 * SLOW)
        except subprocess.TimeoutExpired:
            raise TestFailure("daemon still running 5 s after SIGTERM")
        t_exit = time.monotonic() - t0
        s.close()
        log = d.logtext()
        print("%s io: stop with %d bytes unanswered: exit after %.2f s"
              % (model, sent, t_exit))
        check(rc == 0, "exit status %r" % rc)
        check_nothing_killed(log)
        check(t_exit >= 0.9, "grace cut short: exit %.2f s after SIGTERM"
              % t_exit)
        check(t_exit < 1.0 + 1.5 * SLOW, "exit %.2f s after SIGTERM" % t_exit)


def test_thread_stop_reaches_stalled_session():
    _stop_reaches_stalled_session("thread")


def test_fork_stop_reaches_stalled_session():
    _stop_reaches_stalled_session("fork")


def test_fork_children_end_with_the_daemon():
    """SIGKILL the daemon: each fork child (PR_SET_PDEATHSIG) ends its
    session and exits, whether it sleeps in recv() (its client gets the
    shutdown error) or waits in poll() for a peer that reads nothing."""
    with Daemon(_conf("fork", extra="session = { idle_timeout = 0; };")) as d:
        addr = d.addr()
        asleep = [connect(addr) for _ in range(3)]
        for i, s in enumerate(asleep):
            _ask(s, "asleep %d" % i)
        stalled, _ = _stalled(addr)
        kids = [pid for pid, _ in d.children()]
        check(len(kids) == 4, "children: %r" % kids)
        d.proc.kill()
        d.proc.wait(5)
        try:
            for i, s in enumerate(asleep):
                out = recv_until(s, until_eof=True, timeout=5)
                check(out == b"ERROR server shutting down\n",
                      "session %d asleep in recv(): %r" % (i, out))
            # The stalled client stays open: its child must end by itself.
            deadline = time.monotonic() + 5 * SLOW
            while time.monotonic() < deadline and not all(map(gone, kids)):
                time.sleep(0.02)
            left = [k for k in kids if not gone(k)]
            check(not left, "children alive after the daemon died: %r" % left)
        finally:
            for s in asleep + [stalled]:
                s.close()


# ------------------------------------------------ (c) idle timeout

def _idle_timeout_blocking(model):
    """SO_RCVTIMEO is the idle clock: a silent session and a trickler
    (bytes, no newline) are both cut at the idle timeout, not before."""
    with Daemon(_conf(model, extra="session = { idle_timeout = 1; };")) as d:
        addr = d.addr()
        silent = connect(addr)
        trick = connect(addr)
        _ask(silent, "a")
        t_silent = time.monotonic()
        _ask(trick, "b")
        t_trick = time.monotonic()

        def trickle():
            try:
                while True:
                    time.sleep(0.2)
                    trick.sendall(b"x")
            except OSError:
                pass

        w = threading.Thread(target=trickle, daemon=True)
        w.start()
        out = recv_until(silent, until_eof=True, timeout=5)
        el_silent = time.monotonic() - t_silent
        out2 = recv_until(trick, until_eof=True, timeout=5)
        el_trick = time.monotonic() - t_trick
        silent.close()
        trick.close()
        check(out == b"ERROR idle timeout\n", "silent: %r" % out)
        check(out2 == b"ERROR idle timeout\n", "trickler: %r" % out2)
        print("%s io: idle_timeout 1: silent cut after %.3f s, trickler after %.3f s"
              % (model, el_silent, el_trick))
        check(el_silent >= 0.95, "silent session cut early: %.3f s" % el_silent)
        check(el_silent <= 1.5 * SLOW, "silent session cut late: %.3f s" % el_silent)
        check(el_trick >= 0.95, "trickler cut early: %.3f s" % el_trick)
        check(el_trick <= 1.5 * SLOW, "trickler cut late: %.3f s" % el_trick)


def test_thread_idle_timeout_blocking():
    _idle_timeout_blocking("thread")


def test_fork_idle_timeout_blocking():
    _idle_timeout_blocking("fork")


def _lines_restart_idle_clock(model):
    """Complete lines keep a session: 6 lines 0.4 s apart outlive an idle
    timeout of 1 s."""
    with Daemon(_conf(model, extra="session = { idle_timeout = 1; };")) as d:
        s = connect(d.addr())
        for i in range(6):
            _ask(s, "keep %d" % i)
            time.sleep(0.4)
        _ask(s, "still here")
        s.close()


def test_thread_lines_restart_idle_clock():
    _lines_restart_idle_clock("thread")


def test_fork_lines_restart_idle_clock():
    _lines_restart_idle_clock("fork")


# ------------------------------------------------ (d) reload

def _asleep(addr, n):
    """n sessions, each answered once: asleep in recv() now."""
    socks = []
    for i in range(n):
        s = connect(addr)
        _ask(s, "before %d" % i)
        socks.append(s)
    return socks


def _exit_all(socks):
    for s in socks:
        s.sendall(b"exit\n")
        check_reply(recv_until(s, until_eof=True), "exit")
        s.close()


def _reload_keeps_sessions(model):
    """SIGHUP with sessions asleep in recv(): no stop reaches them."""
    with Daemon(_conf(model)) as d:
        socks = _asleep(d.addr(), 20)
        for r in range(3):
            d.reload()
            for i, s in enumerate(socks):
                _ask(s, "after reload %d, %d" % (r, i))
        _exit_all(socks)


def test_thread_reload_keeps_sessions_asleep_in_recv():
    _reload_keeps_sessions("thread")


def test_fork_reload_keeps_sessions_asleep_in_recv():
    _reload_keeps_sessions("fork")


def test_thread_stray_sigrtmin_is_harmless():
    """kill -RTMIN to the daemon (the signal its stop uses) neither stops
    nor breaks sessions asleep in recv(), nor the daemon."""
    with Daemon(_conf()) as d:
        addr = d.addr()
        socks = _asleep(addr, 5)
        for r in range(10):
            d.signal(signal.SIGRTMIN)
            time.sleep(0.01)
        for r in range(3):
            for i, s in enumerate(socks):
                _ask(s, "after %d, %d" % (r, i))
        check(d.alive(), "the daemon died of SIGRTMIN")
        _exit_all(socks)
        s = connect(addr)
        _ask(s, "new session")
        s.close()


# ------------------------------------------------ (e) fork children

def _sigcgt(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16)
    return 0


def test_fork_child_has_no_sigrtmin_handler():
    """The thread model installs a SIGRTMIN handler in the daemon; a fork
    model child must not keep it."""
    bit = 1 << (signal.SIGRTMIN - 1)
    with Daemon(_conf("fork")) as d:
        check(_sigcgt(d.pid) & bit, "the daemon has no SIGRTMIN handler")
        s = connect(d.addr())
        _ask(s, "hello")
        kids = [pid for pid, _ in d.children()]
        check(len(kids) == 1, "children: %r" % kids)
        check(not _sigcgt(kids[0]) & bit,
              "the fork child catches SIGRTMIN: SigCgt %x" % _sigcgt(kids[0]))
        s.sendall(b"exit\n")
        recv_until(s, until_eof=True)
        s.close()


# ------------------------------------------------ (f) inetd mode

def test_inetd_two_syscalls_per_line():
    """echotimed -i runs the same loop: recv + send per line, no poll."""
    if not shutil.which("strace"):
        return ("skip", "no strace")
    n = 2000
    with Inetd("session = { idle_timeout = 300; };\n") as s:
        mine = _session_calls(s.proc.pid, s.dir, lambda: s.sock, n)
        check(s.proc.wait(10 * SLOW) == 0, s.logtext())
    _check_two_per_line("inetd", mine, n)


def _inetd_stop(sig):
    """sig while the session sleeps in recv(): the shutdown error, EOF
    and exit status 0, at once."""
    with Inetd("session = { idle_timeout = 0; };\n") as s:
        s.ask(b"before")
        t0 = time.monotonic()
        s.proc.send_signal(sig)
        out = recv_until(s.sock, until_eof=True, timeout=5)
        rc = s.proc.wait(5 * SLOW)
        t = time.monotonic() - t0
        print("inetd io: %s: %r, exit %d after %.3f s"
              % (signal.Signals(sig).name, out, rc, t))
        check(out == b"ERROR server shutting down\n", "%r" % out)
        check(rc == 0, "exit status %d:\n%s" % (rc, s.logtext()))
        check(t < 1.0 * SLOW, "exit %.2f s after the signal" % t)


def test_inetd_sigterm_wakes_session_asleep_in_recv():
    _inetd_stop(signal.SIGTERM)


def test_inetd_sigint_wakes_session_asleep_in_recv():
    _inetd_stop(signal.SIGINT)


def _inetd_stop_in_poll(s, what):
    """SIGTERM to a session waiting in poll(): exit 0 at once, and the
    session's close line."""
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    try:
        rc = s.proc.wait(5 * SLOW)
    except subprocess.TimeoutExpired:
        raise TestFailure("echotimed -i still running %.0f s after SIGTERM"
                          % (5 * SLOW))
    t = time.monotonic() - t0
    print("inetd io: stop %s: exit after %.3f s" % (what, t))
    check(rc == 0, "exit status %d:\n%s" % (rc, s.logtext()))
    check(t < 1.0 * SLOW, "exit %.2f s after SIGTERM" % t)
    return s.logtext()


def test_inetd_stop_reaches_stalled_session():
    """SIGTERM while the session waits in poll() for a peer that sends
    lines and reads nothing: it ends at once, not at its idle timeout,
    without a reply (the peer reads none)."""
    with Inetd('session = { idle_timeout = 30; };\nlog = { level = "info"; };\n') as s:
        sent = _stall(s.sock)
        log = _inetd_stop_in_poll(s, "with %d bytes unanswered" % sent)
        check("closed: shutdown" in log, log)


def test_inetd_stop_cuts_final_reply_wait():
    """SIGTERM while the replies to lines and an exit that came at once
    wait for a peer that reads nothing: the session ends at once (it
    used to wait with them, with idle_timeout 0 for ever)."""
    if _poll_calls() is None or WRAP:
        return ("skip", "no poll() system call numbers for %s, or a wrapper"
                % os.uname().machine)

    def prepare(client, conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        # One read of the session's (4096 bytes): 56 kB of replies.
        client.sendall(b"x\n" * 2000 + b"exit\n")

    with Inetd('session = { idle_timeout = 0; };\nlog = { level = "info"; };\n',
               prepare=prepare, rcvbuf=4096) as s:
        # The session has read every line and waits in poll() for the
        # peer to take its replies.
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline and _in_poll(s.proc.pid) is False:
            time.sleep(0.01)
        state = _in_poll(s.proc.pid)
        if state is None:
            return ("skip", "/proc/%d/syscall cannot be read" % s.proc.pid)
        check(state, "the session does not wait in poll()")
        log = _inetd_stop_in_poll(s, "with the final replies unread")
        check("closed: exit" in log, log)


def _poll_calls():
    """The numbers of poll() and ppoll() here, None if not known."""
    return {"x86_64": ("7", "271"), "aarch64": ("73",)}.get(os.uname().machine)


def _in_poll(pid):
    """Whether pid sleeps in poll() or ppoll(), from /proc/PID/syscall;
    None if that cannot be read."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().split()[0] in _poll_calls()
    except (OSError, IndexError):
        return None


def test_inetd_idle_timeout_blocking():
    """SO_RCVTIMEO is the idle clock in inetd mode too: a silent session
    is cut at the idle timeout, not before."""
    with Inetd("session = { idle_timeout = 1; };\n") as s:
        s.ask(b"hello")
        t0 = time.monotonic()
        out = recv_until(s.sock, until_eof=True, timeout=5)
        t = time.monotonic() - t0
        rc = s.proc.wait(5 * SLOW)
        print("inetd io: silent session cut after %.3f s: %r" % (t, out))
        check(out == b"ERROR idle timeout\n", "%r" % out)
        check(rc == 0, "exit status %d:\n%s" % (rc, s.logtext()))
        check(0.95 <= t < 1.0 + 1.5 * SLOW, "cut after %.3f s" % t)
