"""Issue 12: what a local user or a client can make the daemon do to files,
logs and sessions.

- Unix socket files get their owner and mode without following links, and
  are never reachable with wider permissions than configured (races made
  deterministic with strace fault injection, as TESTING.md describes).
- Probe, removal and bind of a socket path are serialised between daemons.
- Client text and client socket paths cannot forge key=value log fields.
- Only a complete line restarts the idle clock, in every model.
- inetd mode fails closed when the peer address cannot be read.
"""
import contextlib
import os
import re
import select
import shlex
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

from lib import (BINARY, SLOW, WRAP, Daemon, TestFailure, check, check_reply,
                 connect, recv_until, split_replies, tcp_config, talk)

NOBODY = 65534
# Long enough for the test to act inside the window even on a loaded box.
HOLD_US = int(2000000 * SLOW)
# A held probe must end well within the 10 s a daemon waits for a lock.
PROBE_HOLD_US = int(min(3 * SLOW, 6) * 1000000)


def strace(syscall, delay_us, extra=()):
    """Hold every (or, with when=1, the first) call of syscall for delay_us
    after it ran."""
    return ["strace", "-f"] + list(extra) + [
        "-e", "inject=%s:delay_exit=%d" % (syscall, delay_us)]


def with_umask(mask):
    return ["sh", "-c", 'umask %s; exec "$@"' % mask, "sh"]


@contextlib.contextmanager
def traced_daemon(config, prefix):
    """A Daemon under strace; yields (daemon, pid of the real daemon, the
    child of strace).  Signals go to that pid: strace would only detach."""
    env = None
    if "ASAN_OPTIONS" in os.environ:
        # LeakSanitizer cannot work under ptrace (it aborts at exit).
        env = {"ASAN_OPTIONS": os.environ["ASAN_OPTIONS"] + ":detect_leaks=0"}
    d = Daemon(config, prefix=prefix, wait_ready=False, env=env)

    def traced():
        # Not a child strace forks to probe ptrace features: its exe is
        # strace's.
        for pid, _ in d.children():
            with contextlib.suppress(OSError):
                if os.path.basename(os.readlink("/proc/%d/exe" % pid)) != \
                        "strace":
                    return pid
        return None
    try:
        pid = wait_for(lambda: traced() or d.proc.poll() is not None,
                       "the traced daemon")
        yield d, (pid if pid is not True else None)
    finally:
        for pid, _ in d.children():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            d.proc.wait(10 * SLOW)
        d.cleanup()


def ready_or_exit(d, timeout=20.0):
    """True once the daemon is ready, False if it exited first."""
    try:
        d.wait_ready(timeout)
        return True
    except TestFailure:
        if d.proc.poll() is None:
            raise
        return False


def wait_for(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise TestFailure("timed out waiting for " + what)


def lstat_or_none(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def victim_file(directory):
    """A root-owned 0600 file that no daemon may change."""
    path = os.path.join(directory, "victim")
    with open(path, "w") as f:
        f.write("secret\n")
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    return path


def check_victim(path):
    st = os.stat(path)
    check(stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0 and
          st.st_gid == 0,
          "the daemon changed the file behind the link: mode %o, %d:%d"
          % (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))


def swap_for_link(path, target):
    """Atomically replace path by a symbolic link to target."""
    tmp = path + ".lnk"
    os.symlink(target, tmp)
    os.rename(tmp, path)


def unix_conf(path, transport="unix-dgram", extra=""):
    return ('listen = ( { transport = "%s"; path = "%s"; %s } );\n'
            % (transport, path, extra))


# ---- item 2: owner and mode never through a link, never too wide --------

def test_socket_owner_mode_not_set_through_swapped_link():
    """bind() is held while the socket file is swapped for a link to a
    root-owned file: that file keeps its owner and mode, and the daemon
    refuses with a clear error."""
    tmp = tempfile.mkdtemp(prefix="echotimed-sec-")
    path = os.path.join(tmp, "s.sock")
    victim = victim_file(tmp)
    conf = unix_conf(path, extra='mode = "0666"; owner = "nobody"; '
                     'group = "nogroup";')
    with traced_daemon(conf, strace("bind", HOLD_US, ["-o", "/dev/null"])) \
            as (d, pid):
        check(pid is not None, "daemon did not start:\n" + d.logtext())
        wait_for(lambda: (st := lstat_or_none(path)) is not None and
                 stat.S_ISSOCK(st.st_mode), "the bound socket")
        swap_for_link(path, victim)
        ready = ready_or_exit(d)
        log = d.logtext()
        check_victim(victim)
        check(not ready and d.proc.returncode == 71,
              "exit %s, expected 71:\n%s" % (d.proc.returncode, log))
        check("the socket file was replaced by a symbolic link after bind"
              in log, log)
        check(os.path.islink(path), "the link was removed")
        check(not os.path.exists(path + ".lock"), "lock file left behind")
    os.unlink(path)
    os.unlink(victim)
    os.rmdir(tmp)


def test_socket_not_wider_than_mode_while_bound():
    """Under umask 0, the window between bind() and chmod() must not let
    another user send to a unix-dgram socket configured 0600."""
    tmp = tempfile.mkdtemp(prefix="echotimed-sec-")
    os.chmod(tmp, 0o755)
    path = os.path.join(tmp, "d.sock")
    conf = unix_conf(path, extra='mode = "0600";')
    with traced_daemon(conf, with_umask("0") + strace(
            "bind", HOLD_US, ["-o", "/dev/null"])) as (d, pid):
        check(pid is not None, "daemon did not start:\n" + d.logtext())
        st = wait_for(lambda: lstat_or_none(path), "the bound socket")
        mode = stat.S_IMODE(st.st_mode)
        sent = send_as(NOBODY, path)
        check(d.proc.poll() is None, "daemon exited:\n" + d.logtext())
        check(mode & ~0o600 == 0, "socket file was mode %o during bind "
              "(configured 0600)" % mode)
        check(not sent, "user nobody could send to the socket before "
              "its mode was set")
        d.wait_ready(20)
        st = os.lstat(path)
        check(stat.S_IMODE(st.st_mode) == 0o600 and stat.S_ISSOCK(st.st_mode),
              "final mode %o" % stat.S_IMODE(st.st_mode))
        os.kill(pid, signal.SIGTERM)
        check(d.proc.wait(20 * SLOW) == 0, d.logtext())
        check(not os.path.exists(path), "socket file left at exit")
    os.rmdir(tmp)


def send_as(uid, path):
    """True if user uid can send a datagram to the socket at path."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.sendto(b"hello\n", path)
            code = 0
        except BaseException:
            pass
        os._exit(code)
    return os.waitpid(pid, 0)[1] == 0


def test_reload_owner_mode_not_through_swapped_link():
    """A reload that changes owner and mode must not follow a link that
    replaced the socket file since it was bound."""
    tmp = tempfile.mkdtemp(prefix="echotimed-sec-")
    path = os.path.join(tmp, "s.sock")
    victim = victim_file(tmp)
    with Daemon(unix_conf(path, "unix", 'mode = "0600";')) as d:
        swap_for_link(path, victim)
        with open(d.conf, "w") as f:
            f.write(unix_conf(path, "unix", 'mode = "0644"; owner = "nobody";'))
        d.reload(expect_ok=False)
        check_victim(victim)
        check(d.status.startswith("reload failed"), d.status)
        check("replaced by a symbolic link" in d.logtext(), d.logtext())
    os.unlink(path)
    os.unlink(victim)
    os.rmdir(tmp)


# ---- item 7: two daemons racing for one path ----------------------------

def test_stale_socket_race_keeps_live_socket():
    """Daemon C finds a stale socket and is held just after its probe;
    daemon B starts meanwhile.  Neither may remove the other's live
    socket: exactly one runs, and it is the one the path reaches."""
    tmp = tempfile.mkdtemp(prefix="echotimed-sec-")
    path = os.path.join(tmp, "s.sock")
    trace = os.path.join(tmp, "strace.out")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    conf = unix_conf(path, "unix")
    # Only the first connect(): the probe of the stale socket.
    prefix = strace("connect", PROBE_HOLD_US,
                    ["-o", trace, "-e", "trace=connect"])
    prefix[-1] += ":when=1"
    with traced_daemon(conf, prefix) as (c, cpid):
        check(cpid is not None, "daemon C did not start:\n" + c.logtext())
        wait_for(lambda: os.path.exists(trace) and
                 re.search(r"connect\(.*s\.sock.*DELAYED", open(trace).read()),
                 "daemon C's probe")
        b = Daemon(conf, wait_ready=False)
        try:
            c.wait_ready(30)
            b_ready = ready_or_exit(b, 30)
            running = [pid for pid, d, ok in ((b.pid, b, b_ready),
                                              (cpid, c, True))
                       if ok and d.proc.poll() is None]
            check(len(running) == 1, "%d daemons serve one path: one of "
                  "them lost its socket file\nB:\n%s\nC:\n%s"
                  % (len(running), b.logtext(), c.logtext()))
            s = connect(path, "unix")
            creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            s.close()
            check(int.from_bytes(creds[:4], "little") == running[0],
                  "the path does not reach the running daemon")
            check(not b_ready and b.proc.returncode == 71 and
                  "another process is serving this socket" in b.logtext(),
                  b.logtext())
        finally:
            b.cleanup()
        os.kill(cpid, signal.SIGTERM)
        check(c.proc.wait(20 * SLOW) == 0, c.logtext())
    check(sorted(os.listdir(tmp)) == ["strace.out"], os.listdir(tmp))
    os.unlink(trace)
    os.rmdir(tmp)


# ---- item 4: no forged log fields -----------------------------------------

FORGED = 'x" peer=10.9.9.9 error="forged'


def forged_fields(log):
    """Lines in which a key=value parser finds a field the client made."""
    bad = []
    for line in log.splitlines():
        if "10.9.9.9" not in line:
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            bad.append(line)
            continue
        if any(w.startswith("peer=10.9.9.9") or w == "error=forged"
               for w in words):
            bad.append(line)
    return bad


def test_log_client_text_cannot_forge_fields():
    tmp = tempfile.mkdtemp(prefix="echotimed-sec-")
    path = os.path.join(tmp, "s.sock")
    conf = ('listen = ( { transport = "tcp"; address = "127.0.0.1"; '
            'port = 0; }, { transport = "unix"; path = "%s"; } );\n'
            'log = { level = "debug"; };\n' % path)
    with Daemon(conf) as d:
        # A line with quotes, logged (debug) as line "...".
        out = talk(d.addr("tcp"), FORGED.encode() + b"\n")
        check_reply(out, FORGED)
        # A Unix client that bound a path of its choosing, logged as its
        # peer name without quotes.
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.bind(os.path.join(tmp, 'a peer=10.9.9.9 "b'))
        c.settimeout(5 * SLOW)
        c.connect(path)
        c.sendall(b"hi\nexit\n")
        check(len(split_replies(recv_until(c, until_eof=True))) == 2)
        c.close()
        d.wait_log(r"line .*forged")
        d.wait_log(r"session from .*closed: exit")
        log = d.logtext()
        bad = forged_fields(log)
        check(not bad, "forged fields in:\n" + "\n".join(bad))
    for name in os.listdir(tmp):
        os.unlink(os.path.join(tmp, name))
    os.rmdir(tmp)


# ---- item 6: only a complete line restarts the idle clock ----------------

IDLE = 2


def trickle(addr, result):
    """One byte every 0.4 s, never a line: cut IDLE seconds after the
    connection, like a client that sends nothing."""
    s = connect(addr)
    start = time.monotonic()
    got = b""
    try:
        next_send = start
        while b"\n" not in got and time.monotonic() < start + 4 * IDLE * SLOW:
            now = time.monotonic()
            if now >= next_send:
                with contextlib.suppress(OSError):
                    s.send(b"a")
                next_send += 0.4
            r, _, _ = select.select([s], [], [], max(next_send - now, 0))
            if r:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        result["trickle"] = (got, time.monotonic() - start)
    finally:
        s.close()


def lines(addr, result):
    """A line every 1.2 s, each sent in three pieces: never idle."""
    s = connect(addr)
    got = b""
    try:
        for i in range(4):
            for piece in (b"li", b"ne", b" %d\n" % i):
                s.sendall(piece)
                time.sleep(0.4)
            got += recv_until(s, 1)
        s.sendall(b"exit\n")
        got += recv_until(s, until_eof=True)
        result["lines"] = got
    finally:
        s.close()


def test_idle_clock_restarts_only_on_complete_lines():
    """Each model: a trickling client is cut at idle_timeout, a client that
    completes a line now and then is not."""
    runs = [(model, fn) for model in ("sequential", "fork", "thread", "event")
            for fn in (trickle, lines)]
    daemons, results, threads = [], [], []
    try:
        for model, fn in runs:
            d = Daemon(tcp_config(model, "session = { idle_timeout = %d; };"
                                  % IDLE))
            daemons.append(d)
            results.append({})
            threads.append(threading.Thread(target=fn, args=(
                d.addr("tcp"), results[-1])))
        for t in threads:
            t.start()
        for t in threads:
            t.join(30 * SLOW)
        for (model, fn), r in zip(runs, results):
            if fn is trickle:
                got, took = r.get("trickle", (b"", 0))
                check(got == b"ERROR idle timeout\n", "%s: a trickling "
                      "client got %r in %.1f s" % (model, got, took))
                # The event loops check once a second.
                check(IDLE - 0.1 <= took <= IDLE + 1.5 * SLOW,
                      "%s: idle timeout after %.1f s" % (model, took))
            else:
                replies = split_replies(r.get("lines", b""))
                check(len(replies) == 5, "%s: a client completing lines "
                      "was cut: %r" % (model, replies))
                for i in range(4):
                    check_reply(replies[i], "line %d" % i)
    finally:
        for d in daemons:
            d.stop()


# ---- item 8: inetd mode fails closed ---------------------------------------

def test_inetd_unknown_peer_fails_closed():
    """The client reset the connection before the daemon ran: getpeername()
    fails, the access list cannot be applied, and the daemon must not serve
    the connection as an unknown peer."""
    tmp = tempfile.mkdtemp(prefix="echotimed-sec-")
    conf = os.path.join(tmp, "echotimed.conf")
    with open(conf, "w") as f:
        f.write('access = { allow = [ "10.0.0.0/8" ]; };\n')
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    client = socket.create_connection(lsock.getsockname())
    conn, _ = lsock.accept()
    # A reset, not a FIN: linger 0.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      (1).to_bytes(4, "little") + (0).to_bytes(4, "little"))
    client.close()

    def reset():
        try:
            conn.getpeername()
            return False
        except OSError:
            return True
    wait_for(reset, "the reset to arrive")
    p = subprocess.run(WRAP + [BINARY, "-i", "-c", conf], stdin=conn,
                       capture_output=True, timeout=20 * SLOW)
    conn.close()
    lsock.close()
    log = (p.stdout + p.stderr).decode(errors="replace")
    check(p.returncode == 71, "exit %d:\n%s" % (p.returncode, log))
    check("getpeername" in log and "access lists cannot be applied" in log,
          log)
    check("connection from" not in log, log)
    os.unlink(conf)
    os.rmdir(tmp)
