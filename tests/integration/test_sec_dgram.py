"""unix-dgram replies reach only the socket the sender bound (issue 12, item 1).

The reply to a Unix datagram goes to the path the sender bound.  A sender
that swaps a directory of that path for a symbolic link (or for a directory
holding another user's socket) after sending must not make the daemon write
to the socket behind it: /dev/log, the journal, systemd's notify socket.

The swap is made deterministic without sleeps: the test stops the daemon
(SIGSTOP, and waits until every thread is stopped), sends the datagrams,
swaps the path, and lets it go on (SIGCONT).  The fixed daemon then logs one
"cannot verify" line per datagram (log level debug); the unfixed one sends
every reply to the victim.

  test_symlink_swap_<model>         a directory swapped for a link
  test_busy_reply_symlink_swap      the "ERROR server busy" reply too
  test_other_owner_swap_<model>     a real directory, another user's socket
  test_bound_sender_answered_<model> path, abstract and unprivileged senders
  test_relative_sender_not_answered, test_privilege_drop_replies,
  test_activated_socket_gets_credentials, test_passed_fds_closed
"""
import array
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from lib import SLOW, VALGRIND, Daemon, TestFailure, check, check_reply
from test_systemd import activate, need, wait_listening

MODELS = ("sequential", "fork", "thread", "event")
FORGED = b"READY=1\nSTATUS=forged"
QUIET = 0.3     # seconds of silence that prove a socket got nothing more
DROP_RE = r"datagram from %s on \S+ dropped: cannot verify the sender's socket"


def _nobody():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


class Base:
    """A private directory tree: srv/ for the daemon, x/d/ for the sender,
    victim/ for the socket a swapped path would lead to."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="echotimed-secdg-")
        os.chmod(self.dir, 0o755)
        for sub in ("srv", "x", "x/d", "victim"):
            os.mkdir(self.p(sub), 0o755)
        self.socks = []

    def p(self, *names):
        return os.path.join(self.dir, *names)

    def dgram(self, path=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path is not None:
            s.bind(path)
        self.socks.append(s)
        return s

    def close(self):
        for s in self.socks:
            s.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def conf(base, model, extra="", listen_extra=""):
    return """
listen = ( { transport = "unix-dgram"; path = "%s"; mode = "0666"; }%s );
concurrency = { model = "%s"; };
shutdown_timeout = 2;
log = { level = "debug"; };
%s
""" % (base.p("srv", "dgram.sock"), listen_extra, model, extra)


def thread_state(pid, tid):
    """The state letter of thread tid of pid, or None once it is gone."""
    try:
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def stopped(pid):
    """Every thread of pid is in the stopped state."""
    return all(thread_state(pid, tid) in (None, "T", "t")
               for tid in os.listdir("/proc/%d/task" % pid))


def while_stopped(d, fn):
    """Run fn() while the daemon cannot receive anything."""
    os.kill(d.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5 * SLOW
        while not stopped(d.pid):
            if time.monotonic() > deadline:
                raise TestFailure("daemon did not stop")
            time.sleep(0.005)
        fn()
    finally:
        os.kill(d.pid, signal.SIGCONT)


def drops(d, path):
    return len(re.findall(DROP_RE % re.escape(path), d.logtext()))


def expect_nothing(d, victim, path, n, what):
    """The daemon decides n datagrams from path and the victim gets none.

    Ends when the daemon logged n "cannot verify" lines for path, or fails
    as soon as the victim receives a datagram (what the unfixed daemon
    does)."""
    deadline = time.monotonic() + 10 * SLOW
    while drops(d, path) < n:
        if time.monotonic() > deadline:
            raise TestFailure("%s: %d of %d drops logged:\n%s"
                              % (what, drops(d, path), n, d.logtext()))
        if select.select([victim], [], [], 0.02)[0]:
            raise TestFailure("%s: the victim received %r"
                              % (what, victim.recv(65536)))
    if select.select([victim], [], [], QUIET)[0]:
        raise TestFailure("%s: the victim received %r"
                          % (what, victim.recv(65536)))


def ask(s, server, data, timeout=5.0):
    s.sendto(data, server)
    s.settimeout(timeout * SLOW)
    try:
        return s.recv(65536)
    except socket.timeout:
        raise TestFailure("no reply to %r" % data)


def swap_attack(base, d, swap, what, owner=None, reason=""):
    """Bind x/d/s, send three forged requests, swap x/d while the daemon
    is stopped; the victim (victim/s, of owner (uid, gid) if given) must
    receive nothing, and each drop is logged with reason."""
    victim = base.dgram(base.p("victim", "s"))
    if owner:
        os.chown(base.p("victim"), *owner)
        os.chown(base.p("victim", "s"), *owner)
    sender = base.dgram(base.p("x", "d", "s"))
    sent = base.p("x", "d", "s")
    server = d.addr("unix-dgram")

    def attack():
        for i in range(3):
            sender.sendto(FORGED + b"\n%d" % i, server)
        swap()
    while_stopped(d, attack)
    expect_nothing(d, victim, sent, 3, what)
    check(len(re.findall(DROP_RE % re.escape(sent) + ": " + reason,
                         d.logtext())) == 3, d.logtext())
    check(d.alive(), "daemon died")


def link_swap(base):
    os.rename(base.p("x", "d"), base.p("x", "d.old"))
    os.symlink(base.p("victim"), base.p("x", "d"))


def dir_swap(base):
    os.rename(base.p("x", "d"), base.p("x", "d.old"))
    os.rename(base.p("victim"), base.p("x", "d"))


def symlink_swap(model):
    base = Base()
    try:
        with Daemon(conf(base, model)) as d:
            swap_attack(base, d, lambda: link_swap(base),
                        "%s: directory swapped for a link" % model,
                        reason="symbolic link in the path")
            # The daemon still answers a sender it can verify.
            c = base.dgram(base.p("x", "ok.sock"))
            check_reply(ask(c, d.addr("unix-dgram"), b"after\n"), "after")
    finally:
        base.close()


def other_owner_swap(model):
    """No link at all: x/d becomes a real directory whose s is a socket of
    another user (nobody), so only the owner check stops the reply."""
    base = Base()
    try:
        with Daemon(conf(base, model)) as d:
            swap_attack(base, d, lambda: dir_swap(base),
                        "%s: another user's socket" % model, owner=_nobody(),
                        reason="not owned by the sender")
    finally:
        base.close()


def nc_as_nobody(client, server, data):
    """netcat-openbsd as user nobody, bound to client: its stdout."""
    p = subprocess.run(["nc", "-uU", "-W", "1", "-w", str(int(5 * SLOW)),
                        "-s", client, server], input=data, user="nobody",
                       group="nogroup", capture_output=True,
                       timeout=20 * SLOW)
    return p.stdout


def bound_sender_answered(model):
    base = Base()
    try:
        with Daemon(conf(base, model)) as d:
            server = d.addr("unix-dgram")
            c = base.dgram(base.p("x", "d", "s"))
            for i in range(3):
                check_reply(ask(c, server, b"bound %d\n" % i), "bound %d" % i)
            # The longest path Python binds (107 bytes and the NUL).
            longdir = base.p("x", "l")
            os.mkdir(longdir)
            name = "n" * (107 - len(longdir) - 1)
            if name:
                c = base.dgram(os.path.join(longdir, name))
                check_reply(ask(c, server, b"long path\n"), "long path")
            # Abstract names have no file and no link: answered as before.
            c = base.dgram("\0echotimed-secdg-%d-%s" % (os.getpid(), model))
            check_reply(ask(c, server, b"abstract\n"), "abstract")
            # An unprivileged sender, its socket in a directory of its own.
            uid, gid = _nobody()
            os.mkdir(base.p("x", "n"))
            os.chown(base.p("x", "n"), uid, gid)
            out = nc_as_nobody(base.p("x", "n", "s"), server, b"as nobody\n")
            check_reply(out, "as nobody")
    finally:
        base.close()


def _gen():
    for model in MODELS:
        for name, fn in (("symlink_swap", symlink_swap),
                         ("other_owner_swap", other_owner_swap),
                         ("bound_sender_answered", bound_sender_answered)):
            def t(model=model, fn=fn):
                return fn(model)
            t.__name__ = "test_%s_%s" % (name, model)
            globals()[t.__name__] = t


_gen()


def test_busy_reply_symlink_swap():
    """Thread model, max_connections = 1 held by a stream session: each
    datagram gets "ERROR server busy", sent outside the model's reply path;
    it must not follow the link either."""
    base = Base()
    try:
        stream = base.p("srv", "stream.sock")
        with Daemon(conf(base, "thread",
                         listen_extra=', { transport = "unix"; path = "%s"; }'
                         % stream).replace(
                "concurrency = {", "concurrency = { max_connections = 1; "
                "overflow = \"reject\";")) as d:
            server = d.addr("unix-dgram")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5 * SLOW)
            s.connect(stream)
            s.sendall(b"hold\n")
            check_reply(s.recv(65536), "hold")
            c = base.dgram(base.p("x", "busy.sock"))
            check(ask(c, server, b"busy?\n") == b"ERROR server busy\n",
                  "no busy reply")
            swap_attack(base, d, lambda: link_swap(base),
                        "busy reply, directory swapped for a link",
                        reason="symbolic link in the path")
            s.close()
    finally:
        base.close()


def test_relative_sender_not_answered():
    """A relative path names a socket in the sender's working directory,
    which the daemon cannot see: no reply, logged."""
    base = Base()
    cwd = os.getcwd()
    try:
        with Daemon(conf(base, "thread")) as d:
            server = d.addr("unix-dgram")
            os.chdir(base.p("x", "d"))
            try:
                c = base.dgram("rel.sock")
            finally:
                os.chdir(cwd)
            c.sendto(b"relative\n", server)
            d.wait_log(r"datagram from rel\.sock on \S+ dropped: cannot "
                       r"verify the sender's socket: relative path")
            c.settimeout(QUIET)
            try:
                raise TestFailure("relative sender got %r" % c.recv(65536))
            except socket.timeout:
                pass
    finally:
        os.chdir(cwd)
        base.close()


def test_privilege_drop_replies():
    """After dropping to nobody the daemon still answers a sender whose
    socket it may write to (search permission on each directory, write
    permission on the socket, as for any sender), through /proc/self/fd,
    in every model."""
    if os.geteuid() != 0:
        return ("skip", "needs root")
    if VALGRIND:
        # As in make valgrind's list: valgrind cannot write its reports
        # after the drop.
        return ("skip", "privilege drop under valgrind")
    for model in MODELS:
        base = Base()
        try:
            notify = base.dgram(base.p("srv", "notify.sock"))
            os.chmod(base.p("srv", "notify.sock"), 0o777)
            with Daemon(conf(base, model, 'user = "nobody";'),
                        wait_ready=False,
                        env={"NOTIFY_SOCKET": base.p("srv", "notify.sock")}
                        ) as d:
                notify.settimeout(10 * SLOW)
                while b"READY=1" not in notify.recv(4096):
                    pass
                server = base.p("srv", "dgram.sock")
                c = base.dgram(base.p("x", "d", "s"))
                os.chmod(base.p("x", "d", "s"), 0o666)
                check_reply(ask(c, server, b"to nobody\n"), "to nobody")
                # A socket nobody may not write to: no reply (as before).
                c2 = base.dgram(base.p("x", "d", "closed"))
                os.chmod(base.p("x", "d", "closed"), 0o600)
                c2.sendto(b"closed\n", server)
                d.wait_log(r"reply to \S*/x/d/closed: Permission denied")
        finally:
            base.close()


def test_activated_socket_gets_credentials():
    """A unix-dgram socket passed by systemd: the daemon turns SO_PASSCRED
    on itself, so senders are answered.  The datagram that started it was
    queued before: the kernel gives it pid 0 and uid 65534, not the
    sender's, so it gets no reply (a socket unit wants PassCredentials=yes)."""
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    base = Base()
    try:
        path = base.p("srv", "act.sock")
        conf = ('listen = ( { transport = "unix-dgram"; path = "%s"; } );\n'
                'log = { level = "debug"; };\n' % path)
        with activate(["--datagram", "-l", path], config=conf) as p:
            wait_listening(p, path)
            c = base.dgram(base.p("x", "d", "s"))
            c.sendto(b"early\n", path)
            p.wait_ready()
            check_reply(ask(c, path, b"later\n"), "later")
            p.wait_log(DROP_RE % re.escape(base.p("x", "d", "s")) +
                       r": no sender credentials")
            c.settimeout(QUIET)
            try:
                raise TestFailure("early datagram answered: %r" % c.recv(99))
            except socket.timeout:
                pass
            check(p.stop() == 0, p.logtext())
    finally:
        base.close()


def test_passed_fds_closed():
    """Descriptors a sender passes with SCM_RIGHTS are never kept (the
    daemon now receives with recvmsg and a control buffer)."""
    base = Base()
    try:
        with Daemon(conf(base, "event")) as d:
            server = d.addr("unix-dgram")
            c = base.dgram(base.p("x", "d", "s"))
            passed = base.p("x", "passed")
            fds = [os.open(passed, os.O_RDONLY | os.O_CREAT, 0o600)
                   for _ in range(4)]
            try:
                for i in range(8):
                    c.sendmsg([b"with fds %d\n" % i],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                array.array("i", fds))], 0, server)
                    c.settimeout(5 * SLOW)
                    check_reply(c.recv(65536), "with fds %d" % i)
            finally:
                for fd in fds:
                    os.close(fd)
            held = []
            for fd in os.listdir("/proc/%d/fd" % d.pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (d.pid, fd)) == passed:
                        held.append(fd)
                except OSError:
                    pass
            check(not held, "daemon holds passed fds %r" % held)
    finally:
        base.close()
