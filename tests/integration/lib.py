"""Integration test harness for echotimed: drives the real binary.

Readiness is never guessed: every daemon gets a private NOTIFY_SOCKET and
the harness waits for READY=1, then reads the real bound addresses from
STATUS=.  Clients are real tools (nc, socat) or plain sockets.
"""
import json
import os
import re
import shutil
import signal as _signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("ECHOTIMED", os.path.join(ROOT, "echotimed"))
# Extra command prefix for the daemon (valgrind); see run.py --wrap.
WRAP = os.environ.get("ECHOTIMED_WRAP", "").split()
# Time multiplier for slow wrappers such as valgrind.
SLOW = float(os.environ.get("ECHOTIMED_SLOW", "1"))
# Under valgrind each daemon (and each forked child) writes its report to
# its own file; anything in one is an error, and run.py fails the test.
VALGRIND = any("valgrind" in w for w in WRAP)
VALGRIND_REPORTS = []
TS_RE = rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}"


class TestFailure(AssertionError):
    pass


def proc_state(pid):
    """Process state letter, or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def gone(pid):
    """No such process, or a zombie: PID 1 on these machines does not reap
    orphans, so a zombie is dead too."""
    return proc_state(pid) in (None, "Z")


def check_nothing_killed(log, what=""):
    """The daemon's log shows no session it had to end by SIGKILL after
    the shutdown grace (its exit status is 0 even then)."""
    check("did not end in time" not in log and "killed by signal" not in log,
          "%sa session was killed:\n%s" % (what, log[-2000:]))


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def check_reply(reply, text):
    """reply must be exactly TEXT SP TIMESTAMP LF for text (bytes)."""
    if isinstance(text, str):
        text = text.encode()
    m = re.fullmatch(re.escape(text) + b" " + TS_RE + b"\n", reply, re.S)
    check(m is not None, "bad reply %r for %r" % (reply, text))


def split_replies(data):
    """Split stream output into lines, each keeping its LF."""
    out = []
    while data:
        i = data.find(b"\n")
        if i < 0:
            out.append(data)
            break
        out.append(data[: i + 1])
        data = data[i + 1:]
    return out


class NotifySocket:
    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []      # every datagram, as dict lists

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        fields = {}
        for line in data.decode(errors="replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        self.messages.append(fields)
        return fields

    def wait(self, key, value=None, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("no %s=%s from the daemon within %ss"
                                  % (key, value or "*", timeout))
            m = self.recv(left)
            if m is not None and key in m and (value is None or m[key] == value):
                return m

    def close(self):
        self.sock.close()


class LoggedProcess:
    """A process (self.proc) whose stdout and stderr go to self.logpath."""

    def logtext(self):
        self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=10.0):
        """Wait until the log matches; fail early once the process exited."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if re.search(pattern, self.logtext()):
                return
            if self.proc.poll() is not None and \
                    not re.search(pattern, self.logtext()):
                break
            time.sleep(0.02)
        raise TestFailure("log never matched %r:\n%s" % (pattern, self.logtext()))


class Daemon(LoggedProcess):
    """One echotimed process with a private config and notify socket."""

    def __init__(self, config=None, args=(), env=None, wait_ready=True,
                 config_path=None, cwd=None, pass_fds=(), prefix=()):
        self.dir = tempfile.mkdtemp(prefix="echotimed-test-")
        self.conf = config_path or os.path.join(self.dir, "echotimed.conf")
        if config is not None:
            with open(self.conf, "w") as f:
                f.write(config)
        self.notify = NotifySocket(self.dir)
        self.logpath = os.path.join(self.dir, "stderr.log")
        self.status = ""
        e = dict(os.environ)
        e["NOTIFY_SOCKET"] = self.notify.path
        e.pop("JOURNAL_STREAM", None)
        e.pop("LISTEN_FDS", None)
        e.pop("LISTEN_PID", None)
        if env:
            e.update(env)
        # prefix: a command the daemon runs under (strace fault injection);
        # self.pid is then that command's.
        cmd = list(prefix) + list(WRAP)
        if VALGRIND:
            cmd.append("--log-file=%s/valgrind.%%p.log" % self.dir)
        cmd.append(BINARY)
        if config is not None or config_path:
            cmd += ["-c", self.conf]
        cmd += list(args)
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=e, cwd=cwd,
                                     pass_fds=pass_fds)
        self.pid = self.proc.pid
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            if self.proc.poll() is not None:
                raise TestFailure("daemon exited with %s before READY=1:\n%s"
                                  % (self.proc.returncode, self.logtext()))
            m = self.notify.recv(min(0.2, max(deadline - time.monotonic(), 0.001)))
            if m and "STATUS" in m:
                self.status = m["STATUS"]
            if m and m.get("READY") == "1":
                return m
            if time.monotonic() > deadline:
                raise TestFailure("daemon not ready:\n" + self.logtext())

    def wait_notify(self, key, value=None, timeout=10.0):
        m = self.notify.wait(key, value, timeout)
        if "STATUS" in m:
            self.status = m["STATUS"]
        return m

    def latest_status(self, timeout=3.0):
        """Wait for the next STATUS= (sent at most once a second on change)."""
        m = self.notify.wait("STATUS", None, timeout)
        self.status = m["STATUS"]
        return self.status

    def drain_notify(self):
        while True:
            m = self.notify.recv(0.001)
            if m is None:
                return
            if "STATUS" in m:
                self.status = m["STATUS"]

    def addresses(self):
        """[(transport, address)] parsed from the STATUS line."""
        m = re.search(r"listening on (.*?);", self.status)
        check(m is not None, "no listeners in STATUS %r" % self.status)
        out = []
        for part in m.group(1).split(","):
            part = part.strip()
            if part:
                t, a = part.split(" ", 1)
                out.append((t, a))
        return out

    def addr(self, transport="tcp", index=0):
        """(host, port) or path of the index-th listener of a transport."""
        found = [a for t, a in self.addresses() if t == transport]
        check(len(found) > index, "no %s listener in %r" % (transport, self.status))
        a = found[index]
        if transport in ("tcp", "udp"):
            host, port = a.rsplit(":", 1)
            return host.strip("[]"), int(port)
        return a

    def signal(self, sig):
        os.kill(self.pid, sig)

    def reload(self, expect_ok=True, timeout=10.0):
        self.drain_notify()
        self.signal(_signal.SIGHUP)
        self.wait_notify("RELOADING", "1", timeout)
        m = self.wait_notify("READY", "1", timeout)
        if expect_ok:
            check(not self.status.startswith("reload failed"),
                  "reload failed: " + self.status)
        return m

    def stop(self, sig=_signal.SIGTERM, timeout=20.0):
        if self.proc.poll() is None:
            self.signal(sig)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("daemon did not stop in %ss" % timeout)
        self.cleanup()
        return rc

    def alive(self):
        return self.proc.poll() is None

    def cleanup(self):
        if getattr(self, "_cleaned", False):
            return
        self._cleaned = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.notify.close()
        if VALGRIND:
            for name in sorted(os.listdir(self.dir)):
                if name.startswith("valgrind.") and os.path.getsize(
                        os.path.join(self.dir, name)) > 0:
                    with open(os.path.join(self.dir, name)) as f:
                        report = f.read()
                    # "--PID--" lines are valgrind's own notes, not errors
                    # ("==PID=="): valgrind 3.19 does not know openat2 and
                    # says so; the daemon then walks paths (src/dgpeer.c).
                    if re.search(r"^==\d+==", report, re.M):
                        VALGRIND_REPORTS.append(report)
        if not os.environ.get("ECHOTIMED_KEEP_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def children(self):
        """PIDs of the daemon's direct children."""
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open("/proc/%s/stat" % p) as f:
                        st = f.read()
                except OSError:
                    continue
                fields = st.rsplit(")", 1)[1].split()
                if int(fields[1]) == self.pid:
                    out.append((int(p), fields[0]))
        return out

    def threads(self):
        """The main thread plus the threads serving a session or datagram
        (named et-session, et-datagram) and the event model's loop threads
        (et-loop).

        Counting by name keeps a sanitizer's own helper threads out, and
        the thread model's spares (et-spare, see spares())."""
        n = 0
        for tid in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/comm" % (self.pid, tid)) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if tid == str(self.pid) or comm in ("et-session", "et-datagram",
                                                 "et-loop"):
                n += 1
        return n

    def spares(self):
        """Thread-model threads waiting for the next connection."""
        n = 0
        for tid in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/comm" % (self.pid, tid)) as f:
                    n += f.read().strip() == "et-spare"
            except OSError:
                continue
        return n

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            try:
                self.stop()
            except TestFailure:
                pass
        else:
            self.cleanup()


class Inetd:
    """echotimed -i on an accepted TCP connection, as tcpserver runs it:
    the socket is stdin and stdout, stderr a log file.  prepare(client,
    accepted) runs before the spawn; rcvbuf is the client's SO_RCVBUF,
    set before it connects."""

    def __init__(self, config, env=None, args=(), prepare=None, rcvbuf=None):
        self.dir = tempfile.mkdtemp(prefix="echotimed-inetd-")
        conf = os.path.join(self.dir, "echotimed.conf")
        with open(conf, "w") as f:
            f.write(config)
        self.logpath = os.path.join(self.dir, "stderr.log")
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(lst.getsockname())
        conn, _ = lst.accept()
        lst.close()
        if prepare:
            prepare(self.sock, conn)
        with open(self.logpath, "wb") as log:
            self.proc = subprocess.Popen(
                WRAP + [BINARY, "-i", "-c", conf] + list(args), stdin=conn,
                stdout=conn, stderr=log, env=env)
        conn.close()
        self.sock.settimeout(5 * SLOW)

    def ask(self, line):
        self.sock.sendall(line + b"\n")
        reply = recv_until(self.sock, 1)
        check_reply(reply, line)

    def finish(self):
        """exit, EOF, exit status 0."""
        self.sock.sendall(b"exit\n")
        check_reply(recv_until(self.sock, until_eof=True), "exit")
        rc = self.proc.wait(10 * SLOW)
        check(rc == 0, "echotimed -i exited %s:\n%s" % (rc, self.logtext()))

    def logtext(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def in_mount_namespace(script, *args):
    """Run "python3 SCRIPT ARGS" in a private mount namespace (root and
    unshare(1)): ("skip", why) where it cannot, else the JSON object the
    last line of its output holds.  A failed run fails the test."""
    missing = [t for t in ("unshare", "mount") if shutil.which(t) is None]
    if missing:
        return ("skip", "missing %s" % ", ".join(missing))
    if os.geteuid() != 0:
        return ("skip", "needs root for a private mount namespace")
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                        sys.executable, script] + list(args),
                       capture_output=True, text=True, timeout=60 * SLOW,
                       env=dict(os.environ, ECHOTIMED=BINARY))
    if p.returncode != 0 and "unshare failed" in p.stderr:
        return ("skip", "unshare: " + p.stderr.strip())
    check(p.returncode == 0, "inner run failed:\n%s\n%s" % (p.stdout,
                                                            p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def tcp_config(model="thread", extra="", address="127.0.0.1", listen_extra=""):
    return """
listen = ( { transport = "tcp"; address = "%s"; port = 0; %s } );
concurrency = { model = "%s"; };
%s
""" % (address, listen_extra, model, extra)


def connect(addr, transport="tcp", timeout=5.0):
    if transport == "tcp":
        host, port = addr
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout * SLOW)
        s.connect((host, port))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout * SLOW)
        path = addr
        if path.startswith("@"):
            path = "\0" + path[1:]
        s.connect(path)
    return s


def recv_until(s, nlines=None, until_eof=False, timeout=5.0):
    """Read until nlines LFs arrived, or EOF."""
    buf = b""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        if nlines is not None and buf.count(b"\n") >= nlines and not until_eof:
            return buf
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("timeout; got %r" % buf)
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return buf
        if not d:
            return buf
        buf += d


def talk(addr, data, transport="tcp", timeout=5.0):
    """Send data, half-close, read everything until EOF."""
    s = connect(addr, transport, timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_until(s, until_eof=True, timeout=timeout)
    finally:
        s.close()


def nc(args, data=b"", timeout=10.0):
    """Run the real netcat-openbsd; returns stdout bytes."""
    p = subprocess.run(["nc"] + list(args), input=data, capture_output=True,
                       timeout=timeout * SLOW)
    return p.stdout


def udp_ask(addr, data, timeout=3.0, bind=None):
    host, port = addr
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if bind:
        s.bind(bind)
    s.settimeout(timeout * SLOW)
    try:
        s.sendto(data, (host, port))
        try:
            return s.recvfrom(65536)[0]
        except socket.timeout:
            return None
    finally:
        s.close()
