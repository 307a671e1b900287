"""Datagrams at the reference's cost (issue 16, item 3).

A model that answers datagrams in the main loop (sequential, event) does
so without a heap allocation per datagram; UDP is read with recvfrom (no
control buffer: only a Unix sender's credentials matter), Unix datagrams
still with recvmsg (SO_PASSCRED); the peer's and the listener's names are
written only when a line needs them, and every line still names them.

  test_udp_recvfrom_unix_recvmsg_<model>  the calls, under strace
  test_no_heap_per_datagram_<model>       memcheck's allocation count over
                                          1000 more datagrams
  test_debug_lines_name_each_peer_<model> replies, access list, denied
                                          port, rate limit (and the source
                                          prefix), unbound and bound Unix
                                          senders, peers interleaved
"""
import os
import re
import signal
import socket
import tempfile

from lib import SLOW, VALGRIND, Daemon, check, check_reply
from test_sec_files import traced_daemon

QUIET = 0.3     # seconds without a reply that prove none comes
SANITIZED = any(v in os.environ for v in ("ASAN_OPTIONS", "TSAN_OPTIONS"))


def config(model, path, extra="", udp_extra=""):
    return """
listen = (
  { transport = "udp"; address = "127.0.0.1"; port = 0; %s },
  { transport = "unix-dgram"; path = "%s"; }
);
concurrency = { model = "%s"; };
%s
""" % (udp_extra, path, model, extra)


def udp_from(src="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(5 * SLOW)
    return s


def ask(s, dest, data, timeout=5.0):
    """One datagram from s; its reply, or None after timeout."""
    s.settimeout(timeout * SLOW)
    s.sendto(data, dest)
    try:
        return s.recv(65536)
    except socket.timeout:
        return None


def name(s):
    return "%s:%d" % s.getsockname()


# ------------------------------------------------ the calls used

def calls_for(model):
    tmp = tempfile.mkdtemp(prefix="echotimed-dgcost-")
    trace = os.path.join(tmp, "trace")
    srv, cli = os.path.join(tmp, "srv.sock"), os.path.join(tmp, "cli.sock")
    prefix = ["strace", "-f", "-qq", "-s", "32", "-o", trace,
              "-e", "trace=recvfrom,recvmsg"]
    with traced_daemon(config(model, srv), prefix) as (d, pid):
        check(pid is not None, "the daemon under strace did not start")
        d.wait_ready(20)
        u = d.addr("udp")
        s = udp_from()
        x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        x.bind(cli)
        try:
            for i in range(20):
                check_reply(ask(s, u, b"udp-cost-%d" % i), "udp-cost-%d" % i)
                check_reply(ask(x, srv, b"unix-cost-%d" % i),
                            "unix-cost-%d" % i)
        finally:
            s.close()
            x.close()
        os.kill(pid, signal.SIGTERM)
        d.proc.wait(20 * SLOW)
    with open(trace) as f:
        lines = f.read().splitlines()
    count = {}
    for ln in lines:
        m = re.search(r"\b(recvfrom|recvmsg)\(.*\b(udp|unix)-cost-", ln)
        if m:
            k = (m.group(1), m.group(2))
            count[k] = count.get(k, 0) + 1
    return count


def check_calls(model):
    c = calls_for(model)
    print("dgram cost: %s model: calls that read the datagrams: %s" % (
        model, ", ".join("%s %s x%d" % (k[1], k[0], n)
                         for k, n in sorted(c.items()))))
    check(c.get(("recvfrom", "udp"), 0) == 20 and
          c.get(("recvmsg", "udp"), 0) == 0,
          "UDP not read with recvfrom alone: %r" % c)
    check(c.get(("recvmsg", "unix"), 0) == 20,
          "Unix datagrams not read with recvmsg (credentials): %r" % c)


def test_udp_recvfrom_unix_recvmsg_sequential():
    check_calls("sequential")


def test_udp_recvfrom_unix_recvmsg_thread():
    check_calls("thread")


# ------------------------------------------------ heap allocations

def allocs_after(model, n):
    """memcheck's count of heap allocations of a daemon that answered n
    UDP datagrams (at log level warning: nothing logged per datagram)."""
    tmp = tempfile.mkdtemp(prefix="echotimed-dgcost-")
    prefix = ["valgrind", "--tool=memcheck", "--trace-children=no"]
    d = Daemon(config(model, os.path.join(tmp, "srv.sock"),
                      'log = { level = "warning"; };\n'
                      'datagram = { rate_limit = 0; };'), prefix=prefix,
               wait_ready=False)
    try:
        d.wait_ready(60)
        u = d.addr("udp")
        s = udp_from()
        try:
            for i in range(n):
                check_reply(ask(s, u, b"heap-%d" % i), "heap-%d" % i)
        finally:
            s.close()
        d.signal(signal.SIGTERM)
        d.proc.wait(60 * SLOW)
        text = d.logtext()
    finally:
        d.stop(timeout=60)
    m = re.search(r"total heap usage: ([0-9,]+) allocs", text)
    check(m is not None, "no memcheck summary:\n" + text)
    return int(m.group(1).replace(",", ""))


def check_no_heap(model):
    if VALGRIND or SANITIZED:
        return ("skip", "memcheck does not run under another checker")
    few, many = allocs_after(model, 100), allocs_after(model, 1100)
    print("dgram cost: %s model: %d heap allocations after 100 datagrams, "
          "%d after 1100" % (model, few, many))
    # Not exactly equal: a STATUS= line more or less (once a second).
    check(many - few < 100, "%d heap allocations for 1000 datagrams"
          % (many - few))


def test_no_heap_per_datagram_sequential():
    return check_no_heap("sequential")


def test_no_heap_per_datagram_event():
    return check_no_heap("event")


# ------------------------------------------------ the lines name the peer

def check_lines(model):
    tmp = tempfile.mkdtemp(prefix="echotimed-dgcost-")
    srv, cli = os.path.join(tmp, "srv.sock"), os.path.join(tmp, "cli.sock")
    bad = udp_from()    # its port is denied
    extra = """
access = { deny = [ "127.0.0.2/32" ]; };
source_prefix_v4 = 24;
datagram = { rate_limit = 1; rate_burst = 3; deny_source_ports = [ %d ]; };
""" % bad.getsockname()[1]
    socks = [bad]
    try:
        with Daemon(config(model, srv, extra, 'name = "dg-cost";'),
                    args=["-l", "debug"]) as d:
            u = d.addr("udp")
            denied, ok = udp_from("127.0.0.2"), udp_from("127.0.0.3")
            socks += [denied, ok]
            # Peers interleaved: a line never names the one before.
            check(ask(denied, u, b"no", QUIET) is None, "denied peer answered")
            check_reply(ask(ok, u, b"first"), "first")
            check(ask(bad, u, b"no", QUIET) is None, "denied port answered")
            check_reply(ask(ok, u, b"second"), "second")
            d.wait_log(r"debug: datagram from %s on dg-cost denied by "
                       r"access list" % re.escape(name(denied)))
            d.wait_log(r"debug: %s: datagram \"first\"" % re.escape(name(ok)))
            d.wait_log(r"debug: datagram from %s on dg-cost dropped: denied "
                       r"source port" % re.escape(name(bad)))
            d.wait_log(r"debug: %s: datagram \"second\"" % re.escape(name(ok)))
            # The burst of 127.0.0.0/24 is spent (3 answered): each new
            # sender of it is dropped and named.
            for i in range(4):
                late = udp_from("127.0.0.%d" % (4 + i))
                socks.append(late)
                if ask(late, u, b"late", QUIET) is None:
                    d.wait_log(r"debug: datagram from %s on dg-cost dropped: "
                               r"rate limit of source 127\.0\.0\.0/24"
                               % re.escape(name(late)))
                    break
            else:
                check(False, "the rate limit never dropped a datagram")
            # Unix: an unbound sender (the listener named), a bound one.
            x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            socks.append(x)
            x.sendto(b"unbound", srv)
            d.wait_log(r"debug: datagram on %s from an unbound Unix socket"
                       % re.escape(srv))
            x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            socks.append(x)
            x.bind(cli)
            check_reply(ask(x, srv, b"bound"), "bound")
            d.wait_log(r"debug: %s: datagram \"bound\"" % re.escape(cli))
            print("dgram cost: %s model: replies, access list, denied port, "
                  "rate limit and Unix lines name their peer" % model)
    finally:
        for s in socks:
            s.close()


def test_debug_lines_name_each_peer_sequential():
    check_lines("sequential")


def test_debug_lines_name_each_peer_event():
    check_lines("event")


def test_debug_lines_name_each_peer_thread():
    check_lines("thread")
