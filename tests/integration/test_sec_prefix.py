"""Sources are address prefixes (issue 12, item 3; SPEC sections 4 and 7).

A "source" for max_connections_per_source and for the datagram rate limit
is the client's address cut to source_prefix_v4 (default 32) or
source_prefix_v6 (default 64) bits, so that one IPv6 /64, whose owner can
use any of its 2^64 addresses, is one source and not 2^64 of them.

Tested for real, with clients bound to many addresses: each test runs in a
private network namespace (this file re-executes itself under
"unshare --net"), where 2001:db8:1::/64, 2001:db8:2::/64, 192.0.2.0/24 and
198.51.100.0/24 are local to "lo" and non-local binds are allowed, so a
client can send from any address of them (TESTING.md, "Whole address
prefixes").  Daemon and clients both run inside; nothing leaves it.

Replies that did not come are proved by the daemon's own counters: the
test waits until STATUS counts every datagram as answered or dropped, and
only then reads what arrived.  Figures go to stdout with a "prefix:" prefix.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lib import SLOW, Daemon, TestFailure, check, check_reply, recv_until  # noqa: E402

PER_SOURCE = b"ERROR too many connections from your address\n"
RATE, BURST = 1, 5
NETNS_SETUP = (
    "ip link set lo up",
    "ip -6 addr add 2001:db8:1::1/64 dev lo nodad",
    "ip -6 route add local 2001:db8:1::/64 dev lo",
    "ip -6 route add local 2001:db8:2::/64 dev lo",
    "ip route add local 192.0.2.0/24 dev lo",
    "ip route add local 198.51.100.0/24 dev lo",
    "sysctl -qw net.ipv6.ip_nonlocal_bind=1",
    "sysctl -qw net.ipv4.ip_nonlocal_bind=1",
)
# Inside the namespace a test must end before run.py's limit (120 s), so
# that it stops its daemon itself instead of being killed with it running.
INNER_LIMIT = 90
OUTER_LIMIT = 110


def note(fmt, *args):
    print("prefix: " + (fmt % args if args else fmt), flush=True)


def config(extra=""):
    # "::" is dual-stack: IPv4 clients arrive as ::ffff:a.b.c.d.
    return """
listen = ( { transport = "tcp"; address = "::"; port = 0; },
           { transport = "udp"; address = "::"; port = 0; } );
concurrency = { model = "thread"; max_connections_per_source = 2; };
datagram = { rate_limit = %d; rate_burst = %d; };
%s
""" % (RATE, BURST, extra)


def v6(net, i):
    return "2001:db8:%d::%x" % (net, i)


class Traffic:
    """Counts what STATUS must show as answered or dropped so far: every
    datagram, and every line of a stream session."""

    def __init__(self, d):
        self.d = d
        self.seen = 0

    def session(self, addr, src):
        s = session_from(addr, src)
        self.seen += 1
        return s

    def blast(self, dest, sources):
        """One datagram from each source address, each from its own socket;
        returns (replies, seconds from the first send until the daemon had
        handled them all)."""
        socks = []
        t0 = time.monotonic()
        try:
            for src in sources:
                s = socket.socket(socket.AF_INET6 if ":" in src
                                  else socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((src, 0))
                s.sendto(b"spoofed?", dest)
            self.seen += len(sources)
            # Every datagram answered or dropped: the replies are queued.
            status_until(self.d, counted(self.seen),
                         "%d datagrams and lines" % self.seen)
            elapsed = time.monotonic() - t0
            replies = 0
            for s in socks:
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                check_reply(data, b"spoofed?")
                replies += 1
            return replies, elapsed
        finally:
            for s in socks:
                s.close()


def status_until(d, pred, what, timeout=5.0):
    """Wait until pred(STATUS) holds (STATUS comes at most once a second)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        d.drain_notify()
        if pred(d.status):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("STATUS never showed %s: %r" % (what, d.status))
        try:
            d.latest_status(timeout=left / SLOW)
        except TestFailure:
            pass


def counted(total):
    """A STATUS predicate: total lines and datagrams answered or dropped."""
    def pred(status):
        m = re.search(r"\b(\d+) lines, .*\b(\d+) dropped", status)
        return m is not None and int(m.group(1)) + int(m.group(2)) >= total
    return pred


def one_bucket(elapsed):
    """What one token bucket allows in elapsed seconds."""
    return BURST + RATE * elapsed + 1


def session_from(addr, src):
    """A stream session from src, proved running by one answered line."""
    s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                      socket.SOCK_STREAM)
    try:
        s.settimeout(5 * SLOW)
        s.bind((src, 0))
        s.connect(addr)
        s.sendall(b"hello\n")
        check_reply(recv_until(s, 1), b"hello")
    except BaseException:
        s.close()
        raise
    return s


def refused_from(addr, src):
    """The per-source refusal, then EOF."""
    s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                      socket.SOCK_STREAM)
    try:
        s.settimeout(5 * SLOW)
        s.bind((src, 0))
        s.connect(addr)
        out = recv_until(s, until_eof=True, timeout=2.0)
    except (TestFailure, socket.timeout):
        raise TestFailure("client from %s was admitted: no refusal" % src)
    finally:
        s.close()
    check(out == PER_SOURCE, "client from %s got %r" % (src, out))


# ------------------------------------------------ bodies (in the namespace)

def body_udp_v6_shares_bucket():
    # The defaults only: no new setting, so the old daemon runs this too.
    with Daemon(config(), args=["-l", "debug"]) as d:
        dest = ("2001:db8:1::1", d.addr("udp")[1])
        tr = Traffic(d)
        n, t = tr.blast(dest, [v6(1, 0x1000 + i) for i in range(200)])
        note("200 datagrams from 200 addresses of 2001:db8:1::/64, rate %d/s "
             "burst %d: %d replies in %.2fs (one bucket allows %.1f)",
             RATE, BURST, n, t, one_bucket(t))
        check(BURST <= n <= one_bucket(t),
              "one /64 got %d replies for 200 datagrams" % n)
        d.wait_log(r"rate limit of source 2001:db8:1::/64")
        # Another /64 has a bucket of its own.
        n2, t2 = tr.blast(dest, [v6(2, 0x2000 + i) for i in range(20)])
        note("then 20 from 20 addresses of 2001:db8:2::/64: %d replies", n2)
        check(BURST <= n2 <= one_bucket(t2),
              "the second /64 got %d replies for 20 datagrams" % n2)


def body_tcp_v6_shares_cap():
    with Daemon(config()) as d:
        addr = ("2001:db8:1::1", d.addr("tcp")[1])
        held = []
        try:
            held.append(session_from(addr, v6(1, 0xa)))
            held.append(session_from(addr, v6(1, 0xb)))
            # A third address of the same /64 is the same source.
            refused_from(addr, v6(1, 0xc))
            d.wait_log(r"per-source limit of 2 reached for source "
                       r"2001:db8:1::/64")
            refused_from(addr, "2001:db8:1:0:ffff:ffff:ffff:fffe")
            # Another /64 is another source.
            held.append(session_from(addr, v6(2, 0xa)))
            held.append(session_from(addr, v6(2, 0xb)))
            refused_from(addr, v6(2, 0xc))
            # Closing one session of the first /64 lets one more in.
            held.pop(0).close()
            status_until(d, lambda st: "; 3 active," in st, "3 active")
            held.append(session_from(addr, v6(1, 0xd)))
            note("max_connections_per_source 2: 2 sessions from "
                 "2001:db8:1::/64 held, other addresses of it refused, "
                 "2001:db8:2::/64 admitted separately")
        finally:
            for s in held:
                s.close()


def body_v4_prefix_and_reload():
    with Daemon(config()) as d:
        tport, uport = d.addr("tcp")[1], d.addr("udp")[1]
        taddr, uaddr = ("127.0.0.1", tport), ("127.0.0.1", uport)
        tr = Traffic(d)
        held = []
        try:
            # The default /32: every IPv4 address is a source of its own,
            # also on a dual-stack socket (::ffff:192.0.2.x).
            n, t = tr.blast(uaddr, ["192.0.2.%d" % i for i in range(1, 31)])
            note("default source_prefix_v4 32: 30 datagrams from 30 "
                 "addresses of 192.0.2.0/24: %d replies", n)
            check(n == 30, "only %d of 30 addresses answered" % n)
            held.append(tr.session(taddr, "192.0.2.1"))
            held.append(tr.session(taddr, "192.0.2.1"))
            refused_from(taddr, "192.0.2.1")
            d.wait_log(r"per-source limit of 2 reached for source "
                       r"192\.0\.2\.1/32")
            held.append(tr.session(taddr, "192.0.2.2"))

            # A /24 per source from now on, also for running sessions:
            # 192.0.2.0/24 holds 3 sessions now.
            with open(d.conf, "a") as f:
                f.write("source_prefix_v4 = 24;\n")
            d.reload()
            refused_from(taddr, "192.0.2.3")
            d.wait_log(r"per-source limit of 2 reached for source "
                       r"192\.0\.2\.0/24")
            held.append(tr.session(taddr, "198.51.100.1"))
            held.append(tr.session(taddr, "198.51.100.2"))
            refused_from(taddr, "198.51.100.3")

            # The rate limiter was rebuilt with the new sources.
            n, t = tr.blast(uaddr, ["192.0.2.%d" % i for i in range(101, 201)])
            note("source_prefix_v4 24: 100 datagrams from 100 addresses of "
                 "192.0.2.0/24: %d replies in %.2fs (one bucket allows %.1f)",
                 n, t, one_bucket(t))
            check(BURST <= n <= one_bucket(t),
                  "one /24 got %d replies for 100 datagrams" % n)
            n2, t2 = tr.blast(uaddr, ["198.51.100.%d" % i
                                      for i in range(101, 121)])
            note("then 20 from 198.51.100.0/24: %d replies", n2)
            check(BURST <= n2 <= one_bucket(t2),
                  "the second /24 got %d replies for 20 datagrams" % n2)
            # IPv6 clients keep their /64.
            n3, t3 = tr.blast(("2001:db8:1::1", uport),
                              [v6(1, 0x100 + i) for i in range(20)])
            check(BURST <= n3 <= one_bucket(t3),
                  "2001:db8:1::/64 got %d replies for 20 datagrams" % n3)
        finally:
            for s in held:
                s.close()


# ------------------------------------------ tests (outside the namespace)

def _in_netns(body):
    """Run body in a private network namespace; its output on failure."""
    if os.geteuid() != 0:
        return ("skip", "unshare --net needs root")
    try:
        p = subprocess.run(["unshare", "--net", "--", sys.executable,
                            os.path.abspath(__file__), body.__name__],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=OUTER_LIMIT)
    except subprocess.TimeoutExpired as e:
        raise TestFailure("%s did not end:\n%s" % (
            body.__name__, (e.stdout or b"").decode(errors="replace")))
    out = p.stdout.decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("prefix: "):
            print(line, flush=True)
    check(p.returncode == 0, "%s in its network namespace:\n%s"
          % (body.__name__, out))
    return None


def test_udp_one_v6_prefix_one_bucket():
    return _in_netns(body_udp_v6_shares_bucket)


def test_tcp_one_v6_prefix_one_cap():
    return _in_netns(body_tcp_v6_shares_cap)


def test_v4_prefix_default_32_then_24_on_reload():
    return _in_netns(body_v4_prefix_and_reload)


def _inside(name):
    """The re-executed side: set up the namespace, run one body."""
    def expired(signum, frame):
        raise TestFailure("no end within %d s" % INNER_LIMIT)

    # An exception, not a kill: the body's "with Daemon" stops the daemon.
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(INNER_LIMIT)
    for cmd in NETNS_SETUP:
        subprocess.run(cmd.split(), check=True)
    try:
        globals()[name]()
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_inside(sys.argv[1]))
