"""Fork-model results are never lost (issue 12, item 5).

Each fork child reports how its session ended on a pipe that the parent
reads; the parent logs the close line when it reaps the child.  When more
children finished than the pipe held before the parent read it, the later
reports were dropped (non-blocking write) and those sessions never got a
close line; a child killed by a signal got none either.

Filling the real 64 KiB pipe takes 4,097 children that finish while the
parent is held.  The test gets the same situation with a few hundred: as
root it opens the daemon's own result pipe through /proc/PID/fd and
shrinks it to one page (F_SETPIPE_SZ, 256 records), holds the parent with
SIGSTOP, lets 300 sessions end, waits until every child has either exited
or is waiting to write its report, and then lets the parent go on.  Every
session must get its close line.
"""
import fcntl
import os
import re
import signal
import time

from lib import SLOW, Daemon, TestFailure, check, check_reply, connect, recv_until

F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032
SESSIONS = 300              # more than a one-page pipe holds (256)


def config(max_connections):
    return """
listen = ( { transport = "tcp"; address = "127.0.0.1"; port = 0; } );
concurrency = { model = "fork"; max_connections = %d; };
""" % max_connections


def note(fmt, *args):
    print("fork: " + (fmt % args if args else fmt), flush=True)


def result_pipe(pid):
    """The daemon's result pipe: the only pipe it holds both ends of."""
    seen = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("pipe:"):
            seen.setdefault(target, []).append(int(fd))
    pipes = [fds for fds in seen.values() if len(fds) == 2]
    check(len(pipes) == 1, "daemon pipes: %r" % seen)
    return min(pipes[0])


def child_state(pid):
    """'Z' for an exited child, 'write' while it waits in a pipe write,
    else its state letter; None once it is reaped."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return state
        with open("/proc/%d/wchan" % pid) as f:
            if "pipe_write" in f.read():
                return "write"
    except OSError:
        return None
    return state


def wait_for(cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout * SLOW
    while not cond():
        if time.monotonic() > deadline:
            raise TestFailure("timeout waiting for " + what)
        time.sleep(0.02)


def close_lines(d, pattern=r"session from \S+ on \S+ closed: "):
    return re.findall(pattern, d.logtext())


def test_fork_reports_survive_a_full_pipe():
    if os.geteuid() != 0:
        return ("skip", "opening the daemon's pipe needs root")
    with Daemon(config(SESSIONS + 10)) as d:
        addr = d.addr()
        fd = os.open("/proc/%d/fd/%d" % (d.pid, result_pipe(d.pid)),
                     os.O_RDONLY | os.O_NONBLOCK)
        socks = []
        stopped = False
        try:
            fcntl.fcntl(fd, F_SETPIPE_SZ, 4096)
            records = fcntl.fcntl(fd, F_GETPIPE_SZ) // 16
            check(records < SESSIONS, "pipe holds %d records" % records)
            for i in range(SESSIONS):
                s = connect(addr)
                socks.append(s)
                s.sendall(b"hi %d\n" % i)
                check_reply(recv_until(s, 1), b"hi %d" % i)
            kids = [pid for pid, _ in d.children()]
            check(len(kids) == SESSIONS, "%d children" % len(kids))

            d.signal(signal.SIGSTOP)
            stopped = True
            for s in socks:
                s.sendall(b"exit\n")
            # Each child answers "exit" and closes: its session is over.
            for s in socks:
                out = recv_until(s, until_eof=True, timeout=10)
                check_reply(out, b"exit")
            # Each has written its report or waits to (the pipe is full).
            wait_for(lambda: all(child_state(p) in ("Z", "write")
                                 for p in kids),
                     "every child to exit or wait in its report")
            states = [child_state(p) for p in kids]
            note("%d sessions ended while the parent was stopped, pipe of "
                 "%d records: %d children exited, %d waiting to report",
                 SESSIONS, records, states.count("Z"), states.count("write"))
            d.signal(signal.SIGCONT)
            stopped = False

            def all_logged():
                return len(close_lines(d, r"closed: exit, 2 lines")) >= SESSIONS
            try:
                wait_for(all_logged, "%d close lines" % SESSIONS)
            except TestFailure:
                raise TestFailure("%d of %d sessions have a close line"
                                  % (len(close_lines(d, r"closed: exit, 2 "
                                                        r"lines")), SESSIONS))
            wait_for(lambda: d.children() == [], "every child reaped")
        finally:
            if stopped:
                d.signal(signal.SIGCONT)
            os.close(fd)
            for s in socks:
                s.close()
        check(len(close_lines(d)) == SESSIONS,
              "%d close lines for %d sessions" % (len(close_lines(d)),
                                                  SESSIONS))


def test_fork_child_killed_by_signal_has_close_line():
    with Daemon(config(8)) as d:
        s = connect(d.addr())
        try:
            port = s.getsockname()[1]
            s.sendall(b"hello\n")
            check_reply(recv_until(s, 1), b"hello")
            kids = d.children()
            check(len(kids) == 1, "children %r" % kids)
            os.kill(kids[0][0], signal.SIGKILL)
            check(recv_until(s, until_eof=True) == b"", "data after kill")
        finally:
            s.close()
        d.wait_log(r"warning: session from 127\.0\.0\.1:%d on \S+ closed: "
                   r"killed by signal 9 \(child %d\)" % (port, kids[0][0]))
        wait_for(lambda: d.children() == [], "the child reaped")
        # A session that ends normally afterwards logs as usual.
        s = connect(d.addr())
        try:
            s.sendall(b"exit\n")
            check_reply(recv_until(s, until_eof=True), b"exit")
        finally:
            s.close()
        d.wait_log(r"closed: exit, 1 lines")
        check(len(close_lines(d)) == 2, d.logtext())
