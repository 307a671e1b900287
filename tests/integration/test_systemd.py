"""systemd integration without a running systemd.

- the unit files: "systemd-analyze verify" and the exposure scores of
  "systemd-analyze security --offline=yes";
- socket activation with systemd-socket-activate against the real binary:
  stream, datagram, Unix, named fds, an unmatched socket, --accept (inetd
  style, fd 3 and stdin), sockets handed over are never unlinked;
- the notify protocol on a private NOTIFY_SOCKET: READY/STATUS,
  RELOADING/MONOTONIC_USEC, STOPPING, WATCHDOG, FDSTORE with SCM_RIGHTS,
  and a restart through the fd store that refuses no connection;
- structured journal fields, with journalstub.py in a private mount
  namespace (root and unshare(1)).

A missing tool makes a test return ("skip", why); nothing passes silently.
tests/systemd/nspawn-test.sh does the same things under a real systemd.
"""
import array
import fcntl
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from lib import (BINARY, ROOT, SLOW, WRAP, Daemon, LoggedProcess,
                 TestFailure, check, in_mount_namespace,
                 check_reply, connect, recv_until, split_replies, talk,
                 udp_ask)

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT_DIR = os.path.join(ROOT, "systemd")
DROPIN = os.path.join(UNIT_DIR, "echotimed-socket-activated.conf")
SERVICE_MAX = 1.5        # exposure of echotimed.service (0-10 scale)
ISOLATED_MAX = 0.5       # with the socket-activated drop-in, and inetd@


def need(*tools):
    """None if every tool exists, else a skip tuple."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return ("skip", "missing %s" % ", ".join(missing))
    return None


def unit_files():
    names = sorted(n for n in os.listdir(UNIT_DIR)
                   if n.endswith((".service", ".socket")))
    check(names, "no unit files in %s" % UNIT_DIR)
    return names


class UnitDir:
    """The project's units in a temp dir, @sbindir@ pointing at a directory
    that holds the freshly built binary as "echotimed"."""

    def __init__(self, dropin=False):
        self.dir = tempfile.mkdtemp(prefix="echotimed-units-")
        sbin = os.path.join(self.dir, "sbin")
        etc = os.path.join(self.dir, "etc")
        os.makedirs(sbin)
        os.makedirs(os.path.join(etc, "echotimed"))
        os.symlink(os.path.realpath(BINARY), os.path.join(sbin, "echotimed"))
        shutil.copy(os.path.join(ROOT, "conf", "echotimed.conf"),
                    os.path.join(etc, "echotimed", "echotimed.conf"))
        self.units = os.path.join(self.dir, "units")
        os.makedirs(self.units)
        for name in unit_files():
            with open(os.path.join(UNIT_DIR, name)) as f:
                text = f.read()
            text = text.replace("@sbindir@", sbin).replace("@sysconfdir@", etc)
            check(not re.search(r"@[a-z]+@", text),
                  "unsubstituted @...@ left in %s" % name)
            with open(os.path.join(self.units, name), "w") as f:
                f.write(text)
        if dropin:
            d = os.path.join(self.units, "echotimed.service.d")
            os.makedirs(d)
            shutil.copy(DROPIN, os.path.join(d, "socket-activated.conf"))

    def run(self, args, timeout=60):
        return subprocess.run(["systemd-analyze"] + args, cwd=self.units,
                              capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, SYSTEMD_COLORS="0",
                                       SYSTEMD_PAGER="cat"))

    def exposure(self, unit, threshold):
        """(score, output); fails if over threshold (0-100 scale)."""
        p = self.run(["security", "--offline=yes", "--threshold=%d" % threshold,
                      unit])
        out = p.stdout + p.stderr
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
        check(m is not None, "no exposure level:\n" + out)
        score = float(m.group(1))
        print("    exposure %-28s %.1f (limit %.1f)" % (unit, score,
                                                       threshold / 10.0))
        check(p.returncode == 0 and score * 10 <= threshold,
              "%s: exposure %.1f above %.1f:\n%s" % (unit, score,
                                                     threshold / 10.0, out))
        return score

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- unit files -------------------------------------------------------------

def test_units_verify():
    skip = need("systemd-analyze")
    if skip:
        return skip
    with UnitDir() as u:
        names = unit_files()
        want = {"echotimed.service", "echotimed.socket", "echotimed@.service",
                "echotimed-inetd.socket", "echotimed-inetd@.service"}
        check(want <= set(names), "units missing: %s" % (want - set(names)))
        p = u.run(["verify", "--man=no", "--recursive-errors=yes"] + names)
        check(p.returncode == 0 and "echotimed" not in p.stderr,
              "verify failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    with UnitDir(dropin=True) as u:
        p = u.run(["verify", "--man=no", "--recursive-errors=yes",
                   "echotimed.service"])
        check(p.returncode == 0 and "echotimed" not in p.stderr,
              "verify with the drop-in failed:\n" + p.stderr)


def test_units_contents():
    """What the daemon relies on is really in the units."""
    def text(name):
        with open(os.path.join(UNIT_DIR, name)) as f:
            return re.sub(r"(?m)^\s*#.*\n", "", f.read())
    svc = text("echotimed.service")
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ExecStart=@sbindir@/echotimed", "WatchdogSec=",
                 "FileDescriptorStoreMax=", "Restart=on-failure",
                 "RuntimeDirectory=echotimed", "DynamicUser=yes",
                 "Documentation=man:echotimed(8) man:echotimed.conf(5)"):
        check(line in svc, "echotimed.service lacks %r" % line)
    sock = text("echotimed.socket")
    check("ListenStream=" in sock and "ListenDatagram=" in sock, sock)
    check("Accept=yes" in text("echotimed-inetd.socket"), "inetd socket")
    check(re.search(r"ExecStart=@sbindir@/echotimed -i\b",
                    text("echotimed-inetd@.service")), "inetd@ ExecStart")
    # One instance per file, hardened like echotimed.service: the same
    # lines but for the file, the runtime directory and the description.
    inst = text("echotimed@.service")
    for line in ("ExecStart=@sbindir@/echotimed -c @sysconfdir@/echotimed/"
                 "%i.conf", "ExecReload=@sbindir@/echotimed -t -c "
                 "@sysconfdir@/echotimed/%i.conf",
                 "RuntimeDirectory=echotimed-%i"):
        check(line in inst, "echotimed@.service lacks %r" % line)
    same = lambda t: [l for l in t.splitlines() if not re.match(
        r"(Description|ExecStart|ExecReload|RuntimeDirectory)=", l)]
    check(same(inst) == same(svc), "echotimed@.service differs from "
          "echotimed.service beyond its file and directory")


def test_units_exposure():
    skip = need("systemd-analyze")
    if skip:
        return skip
    with UnitDir() as u:
        u.exposure("echotimed.service", int(SERVICE_MAX * 10))
        u.exposure("echotimed@x.service", int(SERVICE_MAX * 10))
        u.exposure("echotimed-inetd@x.service", int(ISOLATED_MAX * 10))
    with UnitDir(dropin=True) as u:
        u.exposure("echotimed.service", int(ISOLATED_MAX * 10))


# ---- helpers: a daemon with a notify socket that keeps passed fds ----------

class FdNotify:
    """NOTIFY_SOCKET reader that also takes SCM_RIGHTS (FDSTORE=1)."""
    serial = itertools.count()

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.%d.sock"
                                 % next(FdNotify.serial))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        self.fds = []           # every fd received, closed by close()

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(
                65536, socket.CMSG_SPACE(64 * 4), socket.MSG_CMSG_CLOEXEC)
        except socket.timeout:
            return None
        fields = {}
        for line in data.decode(errors="replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        fds = []
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
                fds.extend(a)
        self.fds.extend(fds)
        fields["_FDS"] = fds
        fields["_T"] = time.monotonic()
        self.messages.append(fields)
        return fields

    def wait(self, key, value=None, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("no %s=%s within %ss; got %r" % (
                    key, value or "*", timeout, self.messages))
            m = self.recv(left)
            if m is not None and key in m and (value is None or m[key] == value):
                return m

    def drain(self, timeout=0.05):
        while self.recv(timeout) is not None:
            pass

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        self.sock.close()


def free_port(kind=socket.SOCK_STREAM):
    """A port free for both TCP and UDP on 127.0.0.1 (racy, but local)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM
                              if kind == socket.SOCK_STREAM
                              else socket.SOCK_STREAM)
        try:
            other.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            other.close()
            s.close()
    raise TestFailure("no free port")


class Proc(LoggedProcess):
    """A process (the daemon, or systemd-socket-activate running it) with
    a config file, an FdNotify socket and a log file."""

    def __init__(self, cmd, config=None, env=None, notify=True, pass_fds=(),
                 preexec_fn=None, directory=None):
        self.own_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="echotimed-sd-")
        self.conf = os.path.join(self.dir, "echotimed.conf")
        if config is not None:
            with open(self.conf, "w") as f:
                f.write(config)
        self.notify = FdNotify(self.dir) if notify else None
        self.logpath = os.path.join(self.dir, "log.%d" % len(os.listdir(self.dir)))
        e = dict(os.environ)
        for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
                  "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                  "INVOCATION_ID"):
            e.pop(k, None)
        if self.notify:
            e["NOTIFY_SOCKET"] = self.notify.path
        if env:
            e.update(env)
        cmd = [c.replace("@CONF@", self.conf) for c in cmd]
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=e,
                                     pass_fds=pass_fds, preexec_fn=preexec_fn)
        self.pid = self.proc.pid

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            if self.proc.poll() is not None:
                raise TestFailure("exited with %s before READY=1:\n%s" % (
                    self.proc.returncode, self.logtext()))
            m = self.notify.recv(0.2)
            if m and m.get("READY") == "1":
                return m
            if time.monotonic() > deadline:
                raise TestFailure("no READY=1:\n" + self.logtext())

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
        try:
            return self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("did not stop in %ss:\n%s" % (timeout,
                                                            self.logtext()))

    def children(self):
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open("/proc/%s/stat" % p) as f:
                        st = f.read()
                except OSError:
                    continue
                if int(st.rsplit(")", 1)[1].split()[1]) == self.pid:
                    out.append(int(p))
        return out

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if self.notify:
            self.notify.close()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def activate(listen, args=(), config=None, notify=True, **kw):
    """systemd-socket-activate LISTEN... [-E NOTIFY_SOCKET] echotimed -c conf"""
    cmd = ["systemd-socket-activate"] + list(listen)
    if notify:
        cmd += ["-E", "NOTIFY_SOCKET"]
    cmd += WRAP + [BINARY]
    if config is not None:
        cmd += ["-c", "@CONF@"]
    return Proc(cmd + list(args), config=config, notify=notify, **kw)


def wait_listening(p, what, timeout=5.0):
    """systemd-socket-activate says it listens before it polls."""
    p.wait_log(r"Listening on .*%s" % re.escape(what), timeout)


def status_of(m):
    return m.get("STATUS", "")


# ---- socket activation ------------------------------------------------------

def test_activate_stream_adopted_not_bound():
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    port = free_port()
    conf = ('listen = ( { transport = "tcp"; address = "127.0.0.1"; '
            'port = %d; } );\n' % port)
    with activate(["-l", "127.0.0.1:%d" % port], config=conf) as p:
        wait_listening(p, str(port))
        # The daemon starts at the first connection: talk first.
        out = talk(("127.0.0.1", port), b"hello\nexit\n")
        lines = split_replies(out)
        check(len(lines) == 2, repr(out))
        check_reply(lines[0], "hello")
        m = p.wait_ready()
        check("tcp 127.0.0.1:%d" % port in status_of(m), status_of(m))
        # Bound the same port itself, the daemon would have failed (71).
        p.wait_log(r"adopted tcp socket 127\.0\.0\.1:%d \(fd 3" % port)
        p.wait_log(r"passed by the service manager")
        check(p.stop() == 0, p.logtext())


def test_activate_stream_detached():
    """-d forks twice: the passed socket must still be adopted (LISTEN_PID
    names the first pid), not bound again, which would fail (71)."""
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    port = free_port()
    conf = ('listen = ( { transport = "tcp"; address = "127.0.0.1"; '
            'port = %d; } );\n' % port)
    piddir = tempfile.mkdtemp(prefix="echotimed-sa-")
    pidfile = os.path.join(piddir, "pid")
    try:
        with activate(["-l", "127.0.0.1:%d" % port], args=["-d", "-p", pidfile],
                      config=conf) as p:
            wait_listening(p, str(port))
            out = talk(("127.0.0.1", port), b"hello\nexit\n")
            lines = split_replies(out)
            check(len(lines) == 2, repr(out) + p.logtext())
            check_reply(lines[0], "hello")
            with open(pidfile) as f:
                pid = int(f.read())
            check(pid != p.proc.pid, "not detached")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5 * SLOW
            while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            check(not os.path.exists("/proc/%d" % pid), "detached daemon did not stop")
            p.stop()
    finally:
        # A failed run must not leave the detached daemon behind: end it
        # by the pid it wrote, if that process is still ours.
        try:
            with open(pidfile) as f:
                pid = int(f.read())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if pidfile.encode() in f.read():
                    os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        shutil.rmtree(piddir, ignore_errors=True)


def test_activate_datagram():
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    port = free_port(socket.SOCK_DGRAM)
    conf = ('listen = ( { transport = "udp"; address = "127.0.0.1"; '
            'port = %d; } );\n' % port)
    with activate(["--datagram", "-l", "127.0.0.1:%d" % port],
                  config=conf) as p:
        wait_listening(p, str(port))
        # The first datagram starts the daemon, which then answers it.
        reply = udp_ask(("127.0.0.1", port), b"ping\n", timeout=5.0)
        check(reply is not None, "no UDP reply:\n" + p.logtext())
        check_reply(reply, "ping")
        p.wait_ready()
        check_reply(udp_ask(("127.0.0.1", port), b"again"), "again")
        p.wait_log(r"adopted udp socket 127\.0\.0\.1:%d" % port)
        check(p.stop() == 0, p.logtext())


def test_activate_unix_never_unlinked():
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    d = tempfile.mkdtemp(prefix="echotimed-sd-")
    path = os.path.join(d, "echo.sock")
    stray = os.path.join(d, "stray.sock")
    conf = 'listen = ( { transport = "unix"; path = "%s"; } );\n' % path
    # One socket matches the configured listener, the other matches none.
    with activate(["-l", path, "-l", stray, "--fdname=echo:stray"],
                  config=conf, directory=d) as p:
        wait_listening(p, stray)
        out = talk(path, b"via unix\n", transport="unix")
        check_reply(out, "via unix")
        p.wait_ready()
        check_reply(talk(stray, b"stray\n", transport="unix"), "stray")
        p.wait_log(r"adopted unix socket %s" % re.escape(path))
        check(p.stop() == 0, p.logtext())
        for f in (path, stray):
            check(os.path.exists(f), "the daemon removed %s, which it was "
                  "handed:\n%s" % (f, p.logtext()))
    shutil.rmtree(d, ignore_errors=True)


def test_activate_named_fds():
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    pa, pb, pc = free_port(), free_port(), free_port()
    check(len({pa, pb, pc}) == 3, "ports")
    # "a" matches by name and address; "b" is configured on port pc but
    # the socket named b is on pb: the name wins and pc is never bound.
    conf = """
listen = (
  { name = "a"; transport = "tcp"; address = "127.0.0.1"; port = %d; },
  { name = "b"; transport = "tcp"; address = "127.0.0.1"; port = %d; }
);
""" % (pa, pc)
    with activate(["-l", "127.0.0.1:%d" % pa, "-l", "127.0.0.1:%d" % pb,
                   "--fdname=a:b"], config=conf) as p:
        wait_listening(p, str(pb))
        check_reply(talk(("127.0.0.1", pa), b"to a\n"), "to a")
        m = p.wait_ready()
        check_reply(talk(("127.0.0.1", pb), b"to b\n"), "to b")
        log = p.logtext()
        check(re.search(r'adopted tcp socket 127\.0\.0\.1:%d \(fd 3, name '
                        r'"a"\) for configured listener a' % pa, log), log)
        check(re.search(r'adopted tcp socket 127\.0\.0\.1:%d \(fd 4, name '
                        r'"b"\) for configured listener b' % pb, log), log)
        check("matches no configured listener" not in log, log)
        st = status_of(m)
        check("127.0.0.1:%d" % pc not in st and st.count("tcp ") == 2, st)
        try:
            socket.create_connection(("127.0.0.1", pc), timeout=2).close()
            raise TestFailure("the daemon bound port %d itself" % pc)
        except ConnectionRefusedError:
            pass
        check(p.stop() == 0, p.logtext())


def test_activate_unmatched_served_with_defaults():
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    passed = free_port()
    conf = ('listen = ( { transport = "tcp"; address = "127.0.0.1"; '
            'port = 0; } );\n')
    with activate(["-l", "127.0.0.1:%d" % passed, "--fdname=extra"],
                  config=conf) as p:
        wait_listening(p, str(passed))
        check_reply(talk(("127.0.0.1", passed), b"x\n"), "x")
        m = p.wait_ready()
        p.wait_log(r'passed tcp socket 127\.0\.0\.1:%d \(fd 3, name "extra"\) '
                   r'matches no configured listener' % passed)
        # The configured listener is bound by the daemon itself as well.
        ports = re.findall(r"tcp 127\.0\.0\.1:(\d+)", status_of(m))
        check(len(ports) == 2 and str(passed) in ports, status_of(m))
        other = [int(x) for x in ports if int(x) != passed][0]
        check_reply(talk(("127.0.0.1", other), b"y\n"), "y")
        check(p.stop() == 0, p.logtext())


def _accept_mode(extra_activate, daemon_args):
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    port = free_port()
    with activate(["--accept", "-l", "127.0.0.1:%d" % port] + extra_activate,
                  args=daemon_args, config="", notify=False) as p:
        wait_listening(p, str(port))
        for i in range(3):
            s = connect(("127.0.0.1", port))
            s.sendall(b"one %d\n" % i)
            check_reply(recv_until(s, 1), "one %d" % i)
            s.sendall(b"exit\n")
            out = recv_until(s, until_eof=True)
            check_reply(out, "exit")
            s.close()
        p.wait_log(r"(?s)(session from 127\.0\.0\.1:\d+ closed: exit, 2 "
                   r"lines.*){3}")
        log = p.logtext()
        check(log.count("inetd mode") >= 3, log)
        check("listening on" not in log, "a per-connection daemon opened "
              "listeners:\n" + log)
        deadline = time.monotonic() + 5 * SLOW
        while p.children() and time.monotonic() < deadline:
            time.sleep(0.05)
        check(not p.children(), "per-connection daemons still running")
        p.stop()
    return None


def test_accept_fd3_without_i():
    return _accept_mode([], [])


def test_accept_fd3_with_i():
    return _accept_mode([], ["-i"])


def test_accept_stdin_with_i():
    return _accept_mode(["--inetd"], ["-i"])


# ---- notify protocol --------------------------------------------------------

def daemon(config, env=None, **kw):
    return Proc(WRAP + [BINARY, "-c", "@CONF@"], config=config, env=env, **kw)


TCP0 = 'listen = ( { transport = "tcp"; address = "127.0.0.1"; port = 0; } );\n'


def test_notify_ready_reloading_stopping():
    with daemon(TCP0) as p:
        m = p.wait_ready()
        check(re.search(r"model thread; listening on tcp 127\.0\.0\.1:\d+",
                        status_of(m)), "READY without STATUS: %r" % m)
        p.notify.drain()
        before = time.monotonic_ns() // 1000
        os.kill(p.pid, signal.SIGHUP)
        r = p.notify.wait("RELOADING", "1")
        after = time.monotonic_ns() // 1000
        check("MONOTONIC_USEC" in r, "RELOADING=1 without MONOTONIC_USEC")
        usec = int(r["MONOTONIC_USEC"])
        check(before <= usec <= after, "MONOTONIC_USEC %d not in [%d, %d]"
              % (usec, before, after))
        m = p.notify.wait("READY", "1")
        check(m["_T"] >= r["_T"], "READY before RELOADING")
        check(status_of(m).startswith("model thread"), status_of(m))
        check(p.stop() == 0, p.logtext())
        p.notify.wait("STOPPING", "1", timeout=1)


def test_notify_watchdog():
    with daemon(TCP0, env={"WATCHDOG_USEC": "200000"}) as p:
        p.wait_ready()
        t0 = time.monotonic()
        n = 0
        pings = []
        while time.monotonic() - t0 < 1.0:
            m = p.notify.recv(0.1)
            if m and m.get("WATCHDOG") == "1":
                n += 1
                pings.append(time.monotonic())
        check(n >= 2, "only %d WATCHDOG=1 in a second (WATCHDOG_USEC=200000)"
              % n)
        # Every half interval (100 ms), not merely now and then.
        check(n >= 6, "only %d WATCHDOG=1 in a second, expected about 10" % n)
        gap = max(b - a for a, b in zip(pings, pings[1:]))
        check(gap <= 0.15 * SLOW, "%.3f s between two WATCHDOG=1 (interval 0.2 s)" % gap)
        p.stop()
    # No WATCHDOG_USEC: no watchdog messages.
    with daemon(TCP0) as p:
        p.wait_ready()
        time.sleep(0.3)
        p.notify.drain()
        check(not any("WATCHDOG" in m for m in p.notify.messages),
              "WATCHDOG=1 without WATCHDOG_USEC")
        p.stop()


def fdstore_messages(p):
    return [m for m in p.notify.messages if m.get("FDSTORE") == "1"]


def test_notify_fdstore_names_and_fds():
    d = tempfile.mkdtemp(prefix="echotimed-sd-")
    upath = os.path.join(d, "u.sock")
    conf = """
listen = (
  { transport = "tcp"; address = "127.0.0.1"; port = 0; },
  { name = "named-udp"; transport = "udp"; address = "127.0.0.1"; port = 0; },
  { transport = "unix"; path = "%s"; }
);
""" % upath
    with daemon(conf, directory=d) as p:
        ready = p.wait_ready()
        stored = fdstore_messages(p)
        check(len(stored) == 3, "want 3 FDSTORE=1, got %r" % stored)
        names = [m.get("FDNAME", "") for m in stored]
        tport = re.search(r"tcp 127\.0\.0\.1:(\d+)", status_of(ready)).group(1)
        want = ["tcp-127.0.0.1_%s" % tport, "named-udp", "unix-" + upath]
        check(names == want, "FDNAMEs %r, want %r" % (names, want))
        for m in stored:
            check(len(m["_FDS"]) == 1, "FDSTORE=1 without exactly one fd: %r"
                  % m)
            fd = m["_FDS"][0]
            s = socket.socket(fileno=os.dup(fd))
            try:
                name = m["FDNAME"]
                if name.startswith("tcp"):
                    check(s.type == socket.SOCK_STREAM and
                          s.getsockname() == ("127.0.0.1", int(tport)),
                          "stored tcp fd is %r" % (s.getsockname(),))
                elif name == "named-udp":
                    check(s.type == socket.SOCK_DGRAM, "stored udp fd type")
                else:
                    check(s.family == socket.AF_UNIX and
                          s.getsockname() == upath, s.getsockname())
                check(":" not in name, "':' in FDNAME %r" % name)
            finally:
                s.close()
        check(p.stop() == 0, p.logtext())
    shutil.rmtree(d, ignore_errors=True)


def test_fdstore_restart_refuses_nothing():
    """A restart the way systemd does it: the stored fds come back as
    LISTEN_FDS/LISTEN_FDNAMES; connections made while no daemon runs wait
    in the backlog and are answered by the next one."""
    d = tempfile.mkdtemp(prefix="echotimed-sd-")
    upath = os.path.join(d, "u.sock")
    conf = """
listen = (
  { transport = "tcp"; address = "127.0.0.1"; port = %d; },
  { transport = "unix"; path = "%s"; }
);
""" % (free_port(), upath)
    # $FDSTORE (systemd 254+; on 252 the daemon goes by INVOCATION_ID)
    # says the manager keeps stored fds: the Unix socket file must stay.
    first = daemon(conf, directory=d, env={"FDSTORE": "16"})
    waiting = uwait = second = None
    try:
        first.wait_ready()
        stored = fdstore_messages(first)
        check(len(stored) == 2, "FDSTORE: %r" % stored)
        fds = [m["_FDS"][0] for m in stored]
        names = [m["FDNAME"] for m in stored]
        tport = int(re.search(r"tcp-127\.0\.0\.1_(\d+)", names[0]).group(1))
        check(first.stop() == 0, first.logtext())
        # The daemon is gone; the "manager" still holds the sockets.
        waiting = connect(("127.0.0.1", tport))   # must not be refused
        waiting.sendall(b"queued\n")
        check(os.path.exists(upath), "the socket file of a stored Unix "
              "listener was removed at exit; after the restart its fd would "
              "serve a path nobody can reach:\n" + first.logtext())
        uwait = connect(upath, transport="unix")
        uwait.sendall(b"queued unix\n")
        second = restart_with(fds, names, conf, d)
        first.notify.close()    # our copies of the stored fds
        m = second.wait_ready()
        check_reply(recv_until(waiting, 1), "queued")
        check_reply(recv_until(uwait, 1), "queued unix")
        waiting.close()
        uwait.close()
        waiting = uwait = None
        log = second.logtext()
        check(log.count("adopted") == 2, log)
        check("tcp 127.0.0.1:%d" % tport in status_of(m), status_of(m))
        check(not fdstore_messages(second), "adopted fds stored again: %r"
              % fdstore_messages(second))
        check_reply(talk(upath, b"after\n", transport="unix"), "after")
        check(second.stop() == 0, second.logtext())
    finally:
        for s in (waiting, uwait):
            if s:
                s.close()
        if second:
            second.close()
        first.close()
        shutil.rmtree(d, ignore_errors=True)


def restart_with(fds, names, conf, d):
    """Start the daemon with fds as LISTEN_FDS 3.., like systemd would."""
    def place_fds():
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
            os.close(fd)
    n = len(fds)
    cmd = ["sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"] + \
        WRAP + [BINARY, "-c", "@CONF@"]
    return Proc(cmd, env={"LISTEN_FDS": str(n),
                          "LISTEN_FDNAMES": ":".join(names)},
                directory=d, pass_fds=tuple(range(3, 3 + n)),
                preexec_fn=place_fds)


# ---- journal ----------------------------------------------------------------

def _journal_inner():
    """Runs inside "unshare --mount --propagation private": prints the
    journal records of one session as JSON."""
    sys.path.insert(0, HERE)
    from journalstub import JournalStub
    where = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", where],
                   check=True)
    os.makedirs("/run/systemd/journal", exist_ok=True)
    conf = TCP0 + 'log = { target = "journal"; level = "debug"; };\n'
    with JournalStub("/run/systemd/journal/socket") as j:
        with Daemon(conf) as d:
            addr = d.addr()
            s = connect(addr)
            s.sendall(b"evil\x1b[2J\rfake: entry\x07\\x1b\n"
                      b"second line\nexit\n")
            recv_until(s, until_eof=True)
            s.close()
            j.wait_for(lambda r: "closed" in r.get("MESSAGE", ""), 10)
            d.signal(signal.SIGTERM)
            d.proc.wait(10)
            stderr = d.logtext()
        shutil.rmtree(d.dir, ignore_errors=True)
        recs = j.history + j.records(timeout=0.5)
    print(json.dumps({"records": recs, "stderr": stderr, "port": addr[1]}))
    return 0


def test_journal_fields_and_escaping():
    res = in_mount_namespace(os.path.abspath(__file__), "--journal-inner")
    if isinstance(res, tuple):
        return res
    recs = res["records"]
    check(recs, "no journal records; stderr was:\n" + res["stderr"])
    for r in recs:
        check(r.get("SYSLOG_IDENTIFIER") == "echotimed", "record %r" % r)
        check("PRIORITY" in r, "record without PRIORITY %r" % r)
    close = [r for r in recs if "closed" in r.get("MESSAGE", "")
             and r.get("TRANSPORT") == "tcp"]
    check(len(close) == 1, "close records: %r" % close)
    c = close[0]
    for k in ("PEER", "TRANSPORT", "LISTENER", "DURATION_MS", "LINES"):
        check(k in c, "close record lacks %s: %r" % (k, c))
    check(re.fullmatch(r"127\.0\.0\.1:\d+", c["PEER"]), c["PEER"])
    check(c["LINES"] == "3", "LINES=%s, want 3" % c["LINES"])
    check(re.fullmatch(r"\d+", c["DURATION_MS"]), c["DURATION_MS"])
    check(c["LISTENER"] == "127.0.0.1:%d" % res["port"], c["LISTENER"])
    opened = [r for r in recs if r.get("MESSAGE", "").startswith("connection")]
    check(opened and "PEER" in opened[0], "open record: %r" % opened)
    lines = [r for r in recs if "evil" in r.get("MESSAGE", "")]
    check(len(lines) == 1, "debug line records: %r" % lines)
    msg = lines[0]["MESSAGE"]
    check(not re.search(r"[\x00-\x1f\x7f]", msg), "raw control bytes: %r" % msg)
    check("\\x1b[2J" in msg and "\\x0dfake: entry\\x07" in msg, msg)
    check("\\\\x1b" in msg, "a client's backslash not escaped: %r" % msg)
    check(res["stderr"].strip() == "", "journal target also wrote stderr:\n"
          + res["stderr"])


if __name__ == "__main__":
    if sys.argv[1:] == ["--journal-inner"]:
        sys.exit(_journal_inner())
    print("run through run.py", file=sys.stderr)
    sys.exit(64)
