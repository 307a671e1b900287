"""Behind a load balancer: the PROXY protocol (SPEC 9, issue 15).

A real HAProxy (Debian's 2.6) in front of echotimed backends, started by
the test itself: `haproxy -db -f FILE` with its config and its stats
socket in a temp dir, its frontends on listening sockets this file makes
and hands over (`bind fd@N`, so no port is guessed), stopped by PID.
Clients bind 127.0.0.2, 127.0.0.3 and 127.0.0.4 (all of 127/8 is local)
and reach the backends through HAProxy, which tells each backend who the
client is with `send-proxy-v2` (or `send-proxy`, v1).  Backend health is
read with `echo "show stat" | socat - UNIX:PATH`.

HAProxy facts these tests rely on (haproxy 2.6.12, measured here):
- Servers start UP with check_status INI; the first check sets L7OK (or
  L4CON/L7RSP and DOWN with `fall 1`).  With `inter 200ms fall 1 rise 1` a
  killed backend is DOWN 0.1-0.2 s after the SIGKILL, and UP again
  0.2-0.4 s after the restart began.
- A v2 health check (`check` on a `send-proxy-v2` server, or
  `check-send-proxy`) starts with a v2 LOCAL header (ver_cmd 0x20, family
  0, length 0), then the tcp-check's own bytes.  A v1 health check sends
  "PROXY TCP4 <its own source> <the server> <sport> <dport>": a complete
  header naming 127.0.0.1 as the client, so only v2 checks are LOCAL.
- SIGUSR1 is a soft stop: exit status 0 once no session is left.

Raw-socket tests (no HAProxy) send hand-built headers (v1_header,
v2_header, per /usr/share/doc/haproxy/proxy-protocol.txt.gz; checked byte
for byte against what HAProxy sends) to try every way a header can be
wrong, late or hostile.  Each such connection must be closed without a
single reply byte, logged at notice and counted, and the daemon's
descriptors must return to their idle number.

Where SPEC 9 fixes the facts but not the words, the expected log, STATUS
and error wording is in ONE block below ("Wording"); adjust it there.
Figures (which backend saw which client, what the deny and the cap did,
the backend kill) are printed with a "proxy:" prefix.
"""
import collections
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from lib import (BINARY, SLOW, WRAP, Daemon, LoggedProcess, TestFailure, check,
                 check_reply, recv_until, split_replies)
from test_abuse import (connect_from, read_all, silent_for, stable,
                        status_until, threaded, wait_for)
from test_lifecycle import _free_port

HERE = os.path.dirname(os.path.abspath(__file__))

# ============================================================== Wording ==
# The daemon's words where SPEC 9 leaves them open: the ONE place to adjust
# to the implementation.  Templates are regular expressions; {client},
# {proxy}, {peer} and {source} are filled by fill(): with an exact
# address ("127.0.0.2:40000", "[::1]:5000"), escaped and guarded so that
# ":4000" does not match ":40000", or with a raw pattern (Pattern).

# Info line of a session whose header named a client: that client is the
# session's peer, the proxy's own address beside it.
W_PROXIED = r"info: connection from {client} via proxy {proxy} on "
# A v2 LOCAL header (HAProxy's health check) keeps the proxy's address
# and is logged at debug, not info.
W_LOCAL = r"debug: connection from {proxy} "
# A v1 "PROXY UNKNOWN" keeps the proxy's address (its level is not fixed).
W_UNKNOWN = r": connection from {proxy} "
# Any line naming {peer} as a client; with "-l info" there must be none
# for health checks.
W_FROM = r"from {peer}"
# A missing, malformed, truncated, late or oversized header: notice,
# naming the connection's peer and saying it is about the PROXY header.
W_HEADER_FAILED = r"notice: (?=.*{peer})(?i:.*(?:proxy|header)).*"
# A connection from outside proxy_from: notice, naming the peer.
W_UNTRUSTED = r"notice: (?=.*{peer})(?i:.*(?:proxy|trust)).*"
# The access list and the per-source limit judge the header's client.
W_DENIED = r"notice: refused connection from {client}.*denied by access list"
W_PER_SOURCE = (r"notice: rejected connection from {client}.*per-source "
                r"limit of 2 reached for source {source}")
# STATUS= and the SIGUSR1 statistics line count header failures.
W_STATUS_FAILED = r"\b{n} (?:bad |failed )?(?:proxy|header)"
# The journal field with the proxy's address (PEER= is the client).
J_PROXY = "PROXY"
# How the daemon names a unix-socket proxy (HAProxy's unnamed client
# socket; the daemon shows such peers as unix:pid=N).
W_UNIX_PROXY = r"unix:pid={pid}"
# Config errors: file:line: setting: why (exit 78 with -t).
W_CONF_DGRAM = (r"{file}:{line}: listen\.\[0\]\.proxy_protocol: "
                r".*\b{transport}\b")
W_CONF_NO_FROM = (r"{file}:\d+: listen\.\[0\]\.proxy_(?:from: |protocol: "
                  r".*proxy_from)")
# (A bad element of a list is named with its index: proxy_from.[0].)
W_CONF_VALUE = r"{file}:{line}: listen\.\[0\]\.{setting}(?:\.\[\d+\])?: "
# SPEC 9 does not say how a unix listener trusts its peer (a unix peer
# has no address a CIDR prefix could match).  The daemon trusts by file
# permissions: proxy_from is a tcp setting (an error on a unix listener),
# and whoever the socket file lets connect is a trusted proxy
# (echotimed.conf(5)).
UNIX_TRUST = ""
# The parser's bounds (src/proxyproto.h): PP_V2_MAX_LEN, PP_V1_MAX.
V2_MAX_LEN = 2048
V1_MAX = 107
# ========================================================================

PER_SOURCE = b"ERROR too many connections from your address\n"
CLIENTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
DENIED = "127.0.0.3"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
CHECK = "inter 200ms fall 1 rise 1"


class Pattern(str):
    """A raw regular expression for fill(), not an address to escape."""


ANY_PROXY = Pattern(r"127\.0\.0\.1:\d+")    # HAProxy's side, any port


def fill(template, **kw):
    """template with each {name} replaced: an address (str or (host,
    port)) escaped and guarded, a Pattern as it is, numbers as text."""
    out = {}
    for k, v in kw.items():
        if isinstance(v, (Pattern, int)):
            out[k] = str(v)
        else:
            out[k] = r"(?<![\w.:])%s(?![\w])" % re.escape(hostport(v))
    return template.format(**out)


def hostport(a):
    """"127.0.0.2:40000", "[::1]:5000" for (host, port); str as it is."""
    if isinstance(a, str):
        return a
    host, port = a[0], a[1]
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def note(fmt, *args):
    print("proxy: " + (fmt % args if args else fmt), flush=True)


# ------------------------------------------------------------ headers

def v1_header(src=None, dst=None, raw=None):
    """A v1 line (spec 2.1): "PROXY TCP4|TCP6 src dst sport dport" CR LF,
    or "PROXY UNKNOWN" CR LF when src is None; raw replaces the part
    after "PROXY "."""
    if raw is not None:
        return b"PROXY " + raw + b"\r\n"
    if src is None:
        return b"PROXY UNKNOWN\r\n"
    fam = "TCP6" if ":" in src[0] else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n"
            % (fam, src[0], dst[0], src[1], dst[1])).encode()


def v2_header(src=None, dst=None, local=False, tlvs=b"", length=None):
    """A v2 header (spec 2.2): LOCAL (no addresses), or PROXY over TCP
    with src and dst as (host, port), IPv4 or IPv6 (both the same family).
    tlvs follow the addresses; length overrides the length field."""
    if local:
        ver_cmd, fam, body = 0x20, 0x00, b""
    elif ":" in src[0]:
        ver_cmd, fam = 0x21, 0x21
        body = (socket.inet_pton(socket.AF_INET6, src[0]) +
                socket.inet_pton(socket.AF_INET6, dst[0]) +
                struct.pack("!HH", src[1], dst[1]))
    else:
        ver_cmd, fam = 0x21, 0x11
        body = (socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) +
                struct.pack("!HH", src[1], dst[1]))
    body += tlvs
    n = len(body) if length is None else length
    return V2_SIG + bytes([ver_cmd, fam]) + struct.pack("!H", n) + body


def noop_tlv(total):
    """One PP2_TYPE_NOOP TLV of total bytes, its 3-byte head included."""
    return bytes([0x04]) + struct.pack("!H", total - 3) + b"\0" * (total - 3)


# ------------------------------------------------------------ daemons

def listener(versions="v2", address="127.0.0.1", port=0,
             trusted='[ "127.0.0.1/32" ]', extra=""):
    return ('{ transport = "tcp"; address = "%s"; port = %d; '
            'proxy_protocol = "%s"; proxy_from = %s; %s }'
            % (address, port, versions, trusted, extra))


def dconf(listeners, model="thread", concurrency="", extra=""):
    return ('listen = ( %s );\nconcurrency = { model = "%s"; %s };\n%s\n'
            % (", ".join(listeners), model, concurrency, extra))


def lines_matching(d, rx):
    """The daemon's log lines in which rx (a filled template) matches."""
    return [m.group(0) for m in re.finditer(r"^.*%s.*$" % rx, d.logtext(),
                                            re.M)]


def found(d, template, **kw):
    return lines_matching(d, fill(template, **kw))


def wait_logged(d, template, timeout=5.0, **kw):
    d.wait_log(fill(template, **kw), timeout)


def proxied(d, header, data, src=None, timeout=5.0):
    """Send header + data in one write, half-close, read to EOF.
    Returns (replies, the client's own (host, port))."""
    s = connect_from(d.addr(), src)
    try:
        me = s.getsockname()[:2]
        s.sendall(header + data)
        s.shutdown(socket.SHUT_WR)
        out, _ = read_all(s, timeout)
        return out, me
    finally:
        s.close()


class Doomed:
    """A connection whose header must be refused.  It connects and sends
    payload at once (with trickle=(n, gap): one byte every gap seconds,
    in finish()); finish() then checks that it is closed without a single
    reply byte within `within` seconds of the connect."""

    def __init__(self, addr, payload, src=None, trickle=None):
        self.s = connect_from(addr, src)
        self.me = self.s.getsockname()[:2]
        self.payload, self.trickle = payload, trickle
        self.t0 = time.monotonic()
        if not trickle:
            self._send(lambda: payload and self.s.sendall(payload))

    def _send(self, fn):
        try:
            fn()
        except (BrokenPipeError, ConnectionResetError):
            pass                # closed while we were still sending

    def _trickle(self):
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        n, gap = self.trickle
        for i in range(n):
            if not silent_for(self.s, gap):
                return          # closed (or, wrongly, answered)
            self.s.send(self.payload[i:i + 1])

    def finish(self, within=2.0):
        """(the client's own address, seconds to the close, reset?)"""
        try:
            if self.trickle:
                self._send(self._trickle)
            out, reset = read_all(self.s, within + 3.0)
            dt = time.monotonic() - self.t0
        finally:
            self.s.close()
        check(out == b"", "%s: a refused header got %r"
              % (hostport(self.me), out[:200]))
        check(dt <= within * SLOW, "%s: closed only after %.2fs (bound %.1fs)"
              % (hostport(self.me), dt, within))
        return self.me, dt, reset


def refused_silently(addr, payload, src=None, within=2.0):
    return Doomed(addr, payload, src).finish(within)


def warm_baseline(d, header, src=None):
    """Idle fd count after one good session with header."""
    out, _ = proxied(d, header, b"warm-up\n", src=src)
    check_reply(out, "warm-up")
    return stable(d.fds)


# ------------------------------------------------------------ HAProxy

class HAProxy(LoggedProcess):
    """haproxy -db: frontends "rr" (roundrobin) and "src" (balance source)
    in front of the same servers; the "rr" backend runs the health checks
    (a line and "exit", expecting the echo first), "src" tracks them.

    servers: [(name, "127.0.0.1:PORT" or "unix@PATH")]; send is the
    server keyword for the header ("send-proxy-v2" or "send-proxy")."""

    def __init__(self, servers, send="send-proxy-v2"):
        self.dir = tempfile.mkdtemp(prefix="echotimed-haproxy-")
        self.stats_path = os.path.join(self.dir, "stats.sock")
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        self.logpath = os.path.join(self.dir, "haproxy.log")
        self.servers = [n for n, _ in servers]
        socks, self.front = {}, {}
        for fe in ("rr", "src"):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(128)
            socks[fe] = s
            self.front[fe] = s.getsockname()
        lines = [
            "global",
            "    stats socket %s level admin" % self.stats_path,
            "    nbthread 1",
            "defaults",
            "    mode tcp",
            "    timeout connect %dms" % (1000 * SLOW),
            "    timeout client %dms" % (10000 * SLOW),
            "    timeout server %dms" % (10000 * SLOW),
            "    timeout check %dms" % (1000 * SLOW),
            # A new session sent to a backend that died but is not DOWN
            # yet is retried, on the other server at the last retry.
            "    retries 2",
            "    option redispatch",
        ]
        for fe, balance in (("rr", "roundrobin"), ("src", "source")):
            lines += ["frontend %s" % fe,
                      "    bind fd@%d" % socks[fe].fileno(),
                      "    default_backend %s" % fe,
                      "backend %s" % fe,
                      "    balance %s" % balance]
            if fe == "rr":
                lines += ["    option tcp-check",
                          '    tcp-check send "ping\\r\\nexit\\r\\n"',
                          '    tcp-check expect rstring "^ping "']
            for name, where in servers:
                lines.append("    server %s %s %s %s" % (
                    name, where, send,
                    "check check-send-proxy " + CHECK if fe == "rr"
                    else "track rr/" + name))
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(self.logpath, "wb")
        try:
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                stdout=self.log, stderr=subprocess.STDOUT,
                pass_fds=[s.fileno() for s in socks.values()])
        finally:
            for s in socks.values():    # HAProxy holds them now
                s.close()
        self.pid = self.proc.pid
        self.started = time.monotonic()

    def stat(self):
        """{(backend, server): row} from "show stat", or {} while the
        stats socket is not there yet."""
        p = subprocess.run(["socat", "-", "UNIX:" + self.stats_path],
                           input=b"show stat\n", capture_output=True,
                           timeout=5 * SLOW)
        if p.returncode != 0:
            return {}
        text = p.stdout.decode(errors="replace").lstrip("# ")
        return {(r["pxname"], r["svname"]): r
                for r in csv.DictReader(io.StringIO(text)) if r.get("pxname")}

    def state(self, server):
        r = self.stat().get(("rr", server))
        return (r["status"], r["check_status"], int(r["stot"] or 0)) \
            if r else ("", "", 0)

    def wait_state(self, servers, pred, what, timeout=5.0):
        """Poll show stat until pred(status, check_status) for each server."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            check(self.proc.poll() is None, "haproxy exited with %s:\n%s"
                  % (self.proc.returncode, self.logtext()))
            st = {s: self.state(s) for s in servers}
            if all(pred(v[0], v[1]) for v in st.values()):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise TestFailure("haproxy: %s not %s within %ss: %r\n%s"
                                  % (servers, what, timeout, st,
                                     self.logtext()))
            time.sleep(0.02)

    def wait_up(self, servers=None, timeout=5.0):
        """Every server UP by a passed check: the backend answered "ping"
        after the health check's header (L7OK), not just INI."""
        return self.wait_state(servers or self.servers,
                               lambda s, c: s == "UP" and c == "L7OK",
                               "UP (L7OK)", timeout)

    def wait_down(self, server, timeout=5.0):
        return self.wait_state([server], lambda s, c: s.startswith("DOWN"),
                               "DOWN", timeout)

    def stot(self, server):
        return self.state(server)[2]

    def addr(self, fe="rr"):
        return self.front[fe]

    def stop(self):
        """Soft stop (SIGUSR1) by PID: exit 0 once its sessions are gone."""
        os.kill(self.pid, signal.SIGUSR1)
        try:
            rc = self.proc.wait(5 * SLOW)
        except subprocess.TimeoutExpired:
            raise TestFailure("haproxy did not stop on SIGUSR1 in 5s")
        check(rc == 0, "haproxy exited with %s on SIGUSR1:\n%s"
              % (rc, self.logtext()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if not os.environ.get("ECHOTIMED_KEEP_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)


def haproxy_missing():
    for tool in ("haproxy", "socat"):
        if not shutil.which(tool):
            return ("skip", "%s not installed (make deps)" % tool)
    return None


def backends(n, versions="v2", extra="", concurrency="", ports=None):
    """n backend daemons at log level info, each on its own port."""
    out = []
    try:
        for i in range(n):
            out.append(Daemon(dconf([listener(
                versions, port=ports[i] if ports else 0)],
                concurrency=concurrency, extra=extra), args=["-l", "info"]))
    except BaseException:
        for d in out:
            d.cleanup()
        raise
    return out


def servers_of(ds, names="ab"):
    return [(names[i], "%s:%d" % d.addr()) for i, d in enumerate(ds)]


def session_via(fe, src, text=b"hello", timeout=5.0):
    """One session through HAProxy from src, one line answered.  Returns
    the client's own (host, port): what the backend must name."""
    s = connect_from(fe, src, timeout)
    try:
        me = s.getsockname()[:2]
        s.sendall(text + b"\n")
        check_reply(recv_until(s, 1, timeout=timeout), text)
        return me
    finally:
        s.close()


def logged_by(ds, template, timeout=5.0, **kw):
    """The index of the one backend whose log matches the filled template
    (polled: the line may still be on its way)."""
    rx = fill(template, **kw)
    deadline = time.monotonic() + timeout * SLOW
    while True:
        hits = [i for i, d in enumerate(ds) if lines_matching(d, rx)]
        check(len(hits) < 2, "%r logged by %d backends" % (rx, len(hits)))
        if hits:
            return hits[0]
        if time.monotonic() > deadline:
            raise TestFailure("no backend logged %r:\n%s" % (rx, "\n---\n".join(
                d.logtext() for d in ds)))
        time.sleep(0.02)


def served_by(ds, client):
    return logged_by(ds, W_PROXIED, client=client, proxy=ANY_PROXY)


def denied_via(fe, src):
    """A denied client through HAProxy: closed without a byte."""
    s = connect_from(fe, src)
    try:
        me = s.getsockname()[:2]
        s.sendall(b"let me in\n")
        out, _ = read_all(s, 5)
    finally:
        s.close()
    check(out == b"", "denied %s got %r" % (hostport(me), out))
    return me


def wait_lines(d, n, timeout=10.0):
    """Wait until STATUS= counts at least n lines (health checks' lines
    count too: a real sign that they reached the daemon)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        d.drain_notify()
        m = re.search(r"\b(\d+) lines", d.status)
        if m and int(m.group(1)) >= n:
            return int(m.group(1))
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("STATUS never counted %d lines: %r"
                              % (n, d.status))
        try:
            d.latest_status(timeout=left / SLOW)
        except TestFailure:
            pass


def no_check_lines(ds, what, proxy=ANY_PROXY):
    """No line of any backend (run at -l info) names the proxy - the
    address HAProxy's LOCAL health checks keep - as a client."""
    for i, d in enumerate(ds):
        bad = found(d, W_FROM, peer=Pattern(proxy))
        check(not bad, "%s: backend %d logged the health checks above debug:"
              "\n%s" % (what, i, "\n".join(bad[:5])))


def _two_backends_addresses_and_deny(send, versions):
    skip = haproxy_missing()
    if skip:
        return skip
    ds = backends(2, versions,
                  extra='access = { deny = [ "%s/32" ]; };' % DENIED)
    try:
        with HAProxy(servers_of(ds), send) as hx:
            hx.wait_up()
            fe = hx.addr()
            seen = [dict((c, []) for c in CLIENTS) for _ in ds]
            # Roundrobin over 3 clients and 2 servers: every client meets
            # every server within 2 rounds; 6 rounds bound it all.
            for _ in range(6):
                for src in CLIENTS:
                    if src == DENIED:
                        me = denied_via(fe, src)
                        i = logged_by(ds, W_DENIED, client=me)
                    else:
                        me = session_via(fe, src, b"hello from " +
                                         src.encode())
                        i = served_by(ds, me)
                    seen[i][src].append(me[1])
                if all(v for s in seen for v in s.values()):
                    break
            for i, s in enumerate(seen):
                note("%s: backend %s saw %s", send, "ab"[i], "; ".join(
                    "%s ports %s%s" % (c, ",".join(map(str, p)),
                                       " (denied)" if c == DENIED else "")
                    for c, p in s.items()))
            check(all(v for s in seen for v in s.values()),
                  "not every client reached every backend: %r" % seen)
            # Each check is 2 lines (ping, exit): 5 more than the clients'.
            for i, d in enumerate(ds):
                wait_lines(d, sum(len(v) for c, v in seen[i].items()
                                  if c != DENIED) + 2 * 5)
            elapsed = time.monotonic() - hx.started
            if versions == "v2":
                no_check_lines(ds, send)
                note("%s: no health check line at info after %.1fs of "
                     "checks every 200 ms (at least 5 answered by each "
                     "backend)", send, elapsed)
            else:
                n = [len(found(d, W_PROXIED, client=ANY_PROXY,
                               proxy=ANY_PROXY)) for d in ds]
                note("%s: v1 health checks are full TCP4 headers (HAProxy's "
                     "own address as the client): %s info lines in %.1fs",
                     send, "+".join(map(str, n)), elapsed)
            hx.stop()
    finally:
        for d in ds:
            d.cleanup()


def test_haproxy_v2_client_addresses_deny_quiet_checks():
    """send-proxy-v2: each backend names each client's own address and
    port; 127.0.0.3 is denied by the backends' access list through the
    proxy; the LOCAL health checks leave no line at info."""
    return _two_backends_addresses_and_deny("send-proxy-v2", "v2")


def test_haproxy_v1_client_addresses_deny():
    """send-proxy (v1 text header) on a proxy_protocol = "v1" listener."""
    return _two_backends_addresses_and_deny("send-proxy", "v1")


def test_haproxy_v2_per_source_cap():
    """max_connections_per_source = 2 per real client: with balance source
    (one client, one backend) two sessions from 127.0.0.2 are held, a
    third is refused, while 127.0.0.4 still gets in."""
    skip = haproxy_missing()
    if skip:
        return skip
    ds = backends(2, concurrency="max_connections_per_source = 2;")
    held = []
    try:
        with HAProxy(servers_of(ds)) as hx:
            hx.wait_up()
            fe = hx.addr("src")
            for k in range(2):
                s = connect_from(fe, "127.0.0.2")
                held.append(s)
                s.sendall(b"held %d\n" % k)
                check_reply(recv_until(s, 1), b"held %d" % k)
            i = served_by(ds, held[0].getsockname()[:2])
            check(served_by(ds, held[1].getsockname()[:2]) == i,
                  "balance source split one client over two backends")
            s = connect_from(fe, "127.0.0.2")
            try:
                third = s.getsockname()[:2]
                out, _ = read_all(s, 5)
            finally:
                s.close()
            check(out == PER_SOURCE, "third session from 127.0.0.2 got %r"
                  % out)
            wait_logged(ds[i], W_PER_SOURCE, client=third,
                        source=Pattern(r"127\.0\.0\.2/32"))
            other = session_via(fe, "127.0.0.4", b"still in")
            j = served_by(ds, other)
            for k, s in enumerate(held):    # the two held ones still work
                s.sendall(b"again %d\n" % k)
                check_reply(recv_until(s, 1), b"again %d" % k)
            note("per-source cap 2 behind HAProxy: 127.0.0.2 held 2 on "
                 "backend %s, its 3rd got %r; 127.0.0.4 served by backend "
                 "%s meanwhile", "ab"[i], out.decode().strip(), "ab"[j])
            for s in held:
                s.close()
            held = []
            hx.stop()
    finally:
        for s in held:
            s.close()
        for d in ds:
            d.cleanup()


Session = collections.namedtuple("Session", "start end client ok error")


class Stream:
    """A steady, bounded stream of sessions through HAProxy: a thread per
    client address, each running sessions of two lines with a think time
    between (so sessions are in flight at any moment), each recorded as
    a Session."""

    def __init__(self, fe, sources, pause=0.1, max_sessions=2000,
                 max_seconds=60.0):
        self.fe, self.pause = fe, pause
        self.max_sessions, self.max_seconds = max_sessions, max_seconds
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.done = []
        self.threads = [threading.Thread(target=self._run, args=(src, k),
                                         daemon=True)
                        for k, src in enumerate(sources)]

    def _run(self, src, k):
        deadline = time.monotonic() + self.max_seconds * SLOW
        n = 0
        while not self.stop_ev.is_set() and time.monotonic() < deadline \
                and len(self.done) < self.max_sessions:
            t0 = time.monotonic()
            me, err = None, None
            try:
                s = connect_from(self.fe, src, 3)
                try:
                    me = s.getsockname()[:2]
                    for part in (1, 2):
                        if part == 2:
                            time.sleep(self.pause)      # think time
                        text = b"w%d-s%d-%d" % (k, n, part)
                        s.sendall(text + b"\n")
                        check_reply(recv_until(s, 1, timeout=3), text)
                finally:
                    s.close()
            except (OSError, TestFailure) as e:
                err = e
            with self.lock:
                self.done.append(Session(t0, time.monotonic(), me,
                                         err is None, err))
            n += 1

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(10 * SLOW)
        check(not any(t.is_alive() for t in self.threads),
              "client threads still running")

    def started_after(self, t):
        with self.lock:
            return [r for r in self.done if r.start >= t]

    def wait_count(self, since, n, timeout=15.0):
        """Wait until n sessions that started after since have ended."""
        deadline = time.monotonic() + timeout * SLOW
        while len(self.started_after(since)) < n:
            if time.monotonic() > deadline:
                raise TestFailure("only %d of %d sessions ended within %ss"
                                  % (len(self.started_after(since)), n,
                                     timeout))
            time.sleep(0.02)
        return self.started_after(since)


def test_haproxy_v2_backend_kill_and_restart():
    """SIGKILL one of two backends under a steady stream of clients:
    HAProxy's check takes it DOWN, every new client is served by the other
    (HAProxy's counters and that backend's log agree), the sessions in
    flight on the dead one are cut (counted and printed); restarted on its
    port it is UP again and serves again."""
    skip = haproxy_missing()
    if skip:
        return skip
    ds = backends(2)
    stream = None
    try:
        with HAProxy(servers_of(ds)) as hx:
            hx.wait_up()
            port_a = ds[0].addr()[1]
            stream = Stream(hx.addr(), CLIENTS).start()
            wait_for(lambda: min(hx.stot("a"), hx.stot("b")) >= 3, True,
                     what="both backends serving the stream")

            t_kill = time.monotonic()
            ds[0].proc.kill()                   # SIGKILL, by PID
            ds[0].proc.wait()
            t_down = hx.wait_down("a")
            a0, b0 = hx.stot("a"), hx.stot("b")
            after = stream.wait_count(t_down, 20)
            a1, b1 = hx.stot("a"), hx.stot("b")
            bad = [r for r in after if not r.ok]
            check(not bad, "%d sessions failed after a was DOWN: %r"
                  % (len(bad), [str(r.error) for r in bad[:3]]))
            check(a1 == a0, "a got %d sessions while DOWN" % (a1 - a0))
            check(b1 - b0 >= len(after), "b counted %d sessions for %d "
                  "clients" % (b1 - b0, len(after)))
            for r in after:
                check(served_by(ds, r.client) == 1, "%s not on backend b"
                      % hostport(r.client))

            t_restart = time.monotonic()
            ds[0].cleanup()
            ds[0] = backends(1, ports=[port_a])[0]
            t_up = hx.wait_up(["a"])
            a2 = hx.stot("a")
            wait_for(lambda: hx.stot("a") >= a2 + 2, True,
                     what="the restarted backend serving again")
            t_back = time.monotonic()
            stream.stop()
            back = stream.started_after(t_up)
            later = [r for r in back if r.end <= t_back]
            check(all(r.ok for r in later), "sessions failed after a was UP "
                  "again: %r" % [str(r.error) for r in later if not r.ok][:3])
            on_a = [r for r in back if r.ok and found(
                ds[0], W_PROXIED, client=r.client, proxy=ANY_PROXY)]
            check(on_a, "the restarted backend logged no proxied client")

            cut = [r for r in stream.done if r.start < t_kill and not r.ok]
            window = [r for r in stream.done
                      if t_kill <= r.start < t_down and not r.ok]
            early = [r for r in stream.done if r.end < t_kill and not r.ok]
            check(not early, "sessions failed before the kill: %r"
                  % [str(r.error) for r in early[:3]])
            check(len(cut) <= len(CLIENTS), "%d sessions cut, more than "
                  "the %d in flight" % (len(cut), len(CLIENTS)))
            note("backend kill: %d sessions in all; %d in flight cut by the "
                 "SIGKILL (%s), %d failed between kill and DOWN; DOWN after "
                 "%.0f ms; %d new sessions all on b (HAProxy: a +%d, b +%d); "
                 "restarted a UP after %.0f ms, served %d of %d sessions "
                 "since", len(stream.done), len(cut),
                 ", ".join(sorted(set(type(r.error).__name__ for r in cut)))
                 or "none", len(window), (t_down - t_kill) * 1000,
                 len(after), a1 - a0, b1 - b0, (t_up - t_restart) * 1000,
                 len(on_a), len(back))
            hx.stop()
    finally:
        if stream:
            stream.stop_ev.set()
        for d in ds:
            d.cleanup()


def test_haproxy_unix_backend():
    """`server s unix@PATH send-proxy-v2`: a unix stream listener with
    proxy_protocol names each TCP client of HAProxy, the proxy beside it;
    its health checks stay below info."""
    skip = haproxy_missing()
    if skip:
        return skip
    tmp = tempfile.mkdtemp(prefix="echotimed-proxy-")
    path = os.path.join(tmp, "echo.sock")
    conf = dconf(['{ transport = "unix"; path = "%s"; proxy_protocol = "v2";'
                  ' %s }' % (path, UNIX_TRUST)])
    try:
        with Daemon(conf, args=["-l", "info"]) as d, \
                HAProxy([("s", "unix@" + path)]) as hx:
            hx.wait_up()
            unix_proxy = W_UNIX_PROXY.format(pid=hx.pid)
            for src in ("127.0.0.2", "127.0.0.4"):
                me = session_via(hx.addr(), src, b"over unix")
                wait_logged(d, W_PROXIED, client=me,
                            proxy=Pattern(unix_proxy))
                note("unix backend: %s", found(d, W_PROXIED, client=me,
                                               proxy=Pattern(r"\S+"))[0])
            wait_lines(d, 2 + 2 * 5)        # 5 health checks answered
            no_check_lines([d], "unix", unix_proxy)
            hx.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------- raw clients, no HAProxy

def test_untrusted_proxy_refused():
    """A header from an address outside proxy_from is refused (closed,
    no reply) and logged; the same header from a trusted address works."""
    conf = dconf([listener(trusted='[ "127.0.0.9/32" ]')])
    with Daemon(conf) as d:
        a = d.addr()
        dst = ("127.0.0.1", a[1])
        hdr = v2_header(("192.0.2.1", 1111), dst)
        base = warm_baseline(d, v2_header(("192.0.2.99", 9), dst),
                             src="127.0.0.9")
        me, dt, reset = refused_silently(a, hdr + b"hello\n", "127.0.0.1")
        wait_logged(d, W_UNTRUSTED, peer=me)
        check(not found(d, W_PROXIED, client=("192.0.2.1", 1111),
                          proxy=me), "the untrusted header was believed")
        out, me9 = proxied(d, hdr, b"trusted\n", src="127.0.0.9")
        check_reply(out, "trusted")
        wait_logged(d, W_PROXIED, client=("192.0.2.1", 1111), proxy=me9)
        wait_for(d.fds, base, what="fd count after the untrusted proxy")
        note("untrusted proxy 127.0.0.1: closed after %.0f ms (%s), no reply;"
             " from 127.0.0.9 the header was believed", dt * 1000,
             "reset" if reset else "EOF")


def _rejected_at_once(model):
    """Headers that cannot become valid are cut at once (well before
    proxy_timeout = 5), without a reply byte; the edges just inside the
    bounds are served.  Each failure is logged at notice and counted."""
    conf = dconf([listener("any"), listener("v2")], model=model)
    with Daemon(conf) as d:
        any_a, v2_a = d.addr("tcp", 0), d.addr("tcp", 1)
        dst = ("127.0.0.1", any_a[1])
        base = warm_baseline(d, v2_header(("192.0.2.1", 1), dst))
        worst = ("UNKNOWN %s %s 65535 65535" % (":".join(["ffff"] * 8),
                                                ":".join(["ffff"] * 8)))
        check(len(v1_header(raw=worst.encode())) == V1_MAX, "worst case")
        # Just inside the bounds: served.
        for what, hdr in (
                ("v1 of 107 bytes", v1_header(raw=worst.encode())),
                ("v2 of length %d" % V2_MAX_LEN, v2_header(
                    ("192.0.2.2", 2), dst,
                    tlvs=noop_tlv(V2_MAX_LEN - 12)))):
            out, _ = proxied(d, hdr, b"edge\n")
            check_reply(out, "edge")
        cases = [
            ("garbage (HTTP)", any_a, b"GET / HTTP/1.0\r\n\r\n"),
            ("a plain line", v2_a, b"hello\n"),
            ("v1 on a v2 listener", v2_a,
             v1_header(("192.0.2.3", 3), dst) + b"x\n"),
            ("v2 length 65535", any_a,
             v2_header(("192.0.2.4", 4), dst, length=65535)),
            ("v2 length %d" % (V2_MAX_LEN + 1), any_a,
             v2_header(("192.0.2.5", 5), dst, length=V2_MAX_LEN + 1)),
            ("v1 without CR LF in %d bytes" % V1_MAX, any_a,
             b"PROXY TCP4 " + b"1" * (V1_MAX + 1 - 11)),
            ("v2 version 3", any_a,
             V2_SIG + b"\x31\x11\x00\x0c" + b"\0" * 12),
            ("v1 lone LF", any_a,
             v1_header(("192.0.2.6", 6), dst)[:-2] + b"\n"),
        ]
        res = []
        for what, addr, payload in cases:
            me, dt, reset = refused_silently(addr, payload, within=2.0)
            wait_logged(d, W_HEADER_FAILED, peer=me)
            wait_for(d.fds, base, what="fd count after " + what)
            res.append("%s %.0f ms%s" % (what, dt * 1000,
                                         " (reset)" if reset else ""))
        st = status_until(d, fill(W_STATUS_FAILED, n=len(cases)))
        d.signal(signal.SIGUSR1)
        d.wait_log(r"statistics: .*" + fill(W_STATUS_FAILED, n=len(cases)))
        check(d.alive(), "daemon died")
        note("%s: closed without a reply: %s; fds back to %d; STATUS %s",
             model, "; ".join(res), base, st.split("; ", 2)[-1])


def test_headers_rejected_at_once_thread():
    _rejected_at_once("thread")


def test_headers_rejected_at_once_event():
    _rejected_at_once("event")


def _never_finished(model):
    """proxy_timeout = 1 bounds the whole header, not the gap between
    bytes: silent, half-sent and trickling headers are closed after about
    1 s without a reply.  Meanwhile the accept loop is not blocked: a good
    client that connected after them is served at once."""
    conf = dconf([listener("any", extra="proxy_timeout = 1;")], model=model)
    with Daemon(conf) as d:
        a = d.addr()
        dst = ("127.0.0.1", a[1])
        hdr2 = v2_header(("192.0.2.1", 1), dst)
        hdr1 = v1_header(("192.0.2.2", 2), dst)
        base = warm_baseline(d, hdr2)
        cases = [("nothing", b"", None),
                 ("half a v2 header", hdr2[:20], None),
                 ("half a v1 line", hdr1[:20], None),
                 ("a v2 header, a byte every 0.25 s", hdr2, (len(hdr2), 0.25))]
        t0 = time.monotonic()
        doomed = [Doomed(a, payload, trickle=tr) for _, payload, tr in cases]
        # Queued behind them, a good client is served now, not in 1 s.
        out, _ = proxied(d, hdr1, b"not blocked\n", timeout=3)
        served = time.monotonic() - t0
        check_reply(out, "not blocked")
        res = threaded([lambda x=x: x.finish(within=2.5) for x in doomed],
                       timeout=15)
        check(served < 0.5 * SLOW, "a good client waited %.2fs" % served)
        for (what, _, _), (me, dt, _) in zip(cases, res):
            check(dt >= 0.8, "%s: closed after %.2fs, before proxy_timeout"
                  % (what, dt))
            wait_logged(d, W_HEADER_FAILED, peer=me)
        wait_for(d.fds, base, what="fd count after the late headers")
        if model == "fork":
            wait_for(d.children, [], what="children")
        status_until(d, fill(W_STATUS_FAILED, n=len(cases)))
        note("%s: proxy_timeout 1: %s; a good client meanwhile served in "
             "%.0f ms", model, "; ".join(
                 "%s closed after %.2fs" % (c[0], r[1])
                 for c, r in zip(cases, res)), served * 1000)


def test_header_never_finished_thread():
    _never_finished("thread")


def test_header_never_finished_event():
    _never_finished("event")


def test_header_never_finished_sequential():
    _never_finished("sequential")


def test_header_never_finished_fork():
    _never_finished("fork")


def test_waiting_headers_count_toward_max_connections():
    """Connections waiting for a header hold descriptors: with
    max_connections = 2, two silent ones fill the daemon, a third gets
    "ERROR server busy"; once they time out, clients are served again."""
    conf = dconf([listener("v2", extra="proxy_timeout = 1;")],
                 concurrency="max_connections = 2;")
    with Daemon(conf) as d:
        a = d.addr()
        dst = ("127.0.0.1", a[1])
        base = stable(d.fds)
        silent = [Doomed(a, b"") for _ in range(2)]
        # Both accepted (and so counted) before the third connects.
        wait_for(d.fds, base + 2, what="fds with the silent ones")
        s = connect_from(a)
        try:
            s.sendall(v2_header(("192.0.2.70", 70), dst) + b"third\n")
            out, _ = read_all(s, 5)
        finally:
            s.close()
        check(out == b"ERROR server busy\n", "third connection got %r" % out)
        d.wait_log(r"notice: rejected connection from 127\.0\.0\.1:\d+ .*"
                   r"server busy")
        threaded([lambda x=x: x.finish(within=2.5) for x in silent],
                 timeout=15)
        out, _ = proxied(d, v2_header(("192.0.2.71", 71), dst), b"after\n")
        check_reply(out, "after")
        note("max_connections 2: two connections silent before their "
             "header filled it, a third got \"ERROR server busy\"; after "
             "proxy_timeout served again")


def test_sequential_parks_a_complete_header():
    """The sequential model runs one session; a second client accepted
    before it began, whose header completes meanwhile, waits (as in the
    backlog) and is served, first lines included, once the first session
    ends."""
    with Daemon(dconf([listener("v2")], model="sequential")) as d:
        a = d.addr()
        dst = ("127.0.0.1", a[1])
        base = stable(d.fds)
        first = connect_from(a)
        second = connect_from(a)
        try:
            # Both accepted, waiting for their headers: no session yet.
            wait_for(d.fds, base + 2, what="fds with both accepted")
            first.sendall(v2_header(("192.0.2.80", 80), dst) + b"one\n")
            check_reply(recv_until(first, 1), "one")
            second.sendall(v2_header(("192.0.2.81", 81), dst) + b"two\n")
            check(silent_for(second, 0.5 * SLOW),
                  "the second session ran beside the first")
            first.sendall(b"exit\n")
            check_reply(recv_until(first, 1), "exit")
            check_reply(recv_until(second, 1), "two")
            wait_logged(d, W_PROXIED, client=("192.0.2.81", 81),
                        proxy=second.getsockname()[:2])
        finally:
            first.close()
            second.close()


def test_header_one_byte_per_write():
    """A v1 and a v2 header sent one byte per write (then a line) on an
    "any" listener: the session works and names the header's client."""
    with Daemon(dconf([listener("any")])) as d:
        a = d.addr()
        dst = ("127.0.0.1", a[1])
        for client, build in ((("192.0.2.10", 1010), v2_header),
                              (("192.0.2.11", 1011), v1_header)):
            hdr = build(client, dst)
            s = connect_from(a)
            try:
                me = s.getsockname()[:2]
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                t0 = time.monotonic()
                for i, byte in enumerate(hdr + b"slowly\n"):
                    if not silent_for(s, 0.005):
                        raise TestFailure("answered after %d bytes: %r"
                                          % (i, s.recv(200)))
                    s.send(bytes([byte]))
                check_reply(recv_until(s, 1), "slowly")
                dt = time.monotonic() - t0
            finally:
                s.close()
            wait_logged(d, W_PROXIED, client=client, proxy=me)
            note("%d-byte %s header one byte per write over %.2fs: served, "
                 "peer %s", len(hdr), "v2" if hdr.startswith(V2_SIG)
                 else "v1", dt, hostport(client))


def test_bytes_after_header_are_first_lines():
    """Lines in the same write as the header are answered, the header is
    not: v2 with a TLV, and v1."""
    with Daemon(dconf([listener("any")])) as d:
        dst = ("127.0.0.1", d.addr()[1])
        for client, hdr in (
                (("192.0.2.20", 2020), v2_header(("192.0.2.20", 2020), dst,
                                                 tlvs=noop_tlv(10))),
                (("192.0.2.21", 2021), v1_header(("192.0.2.21", 2021), dst))):
            out, me = proxied(d, hdr, b"one\ntwo\r\nthree")
            lines = split_replies(out)
            check(len(lines) == 3, "replies %r" % out)
            for line, text in zip(lines, ("one", "two", "three")):
                check_reply(line, text)
            wait_logged(d, W_PROXIED, client=client, proxy=me)


def test_inetd_takes_no_header():
    """-i serves the socket a super-server accepted: no listener of the
    file applies, so neither does proxy_protocol, and a header is a line
    like any other (echotimed(8) -i: put the proxy in front of a listening
    daemon).  The peer is the super-server's, never a header's."""
    tmp = tempfile.mkdtemp(prefix="echotimed-proxy-")
    conf = os.path.join(tmp, "c.conf")
    with open(conf, "w") as f:
        f.write('listen = ( { transport = "tcp"; address = "127.0.0.1"; '
                'port = 9; proxy_protocol = "any"; '
                'proxy_from = [ "127.0.0.0/8" ]; } );\n')
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    client = socket.create_connection(lsock.getsockname())
    conn, _ = lsock.accept()
    hdr = v1_header(("192.0.2.77", 7777), ("127.0.0.1", 9))
    client.sendall(hdr + b"exit\n")
    try:
        p = subprocess.run(WRAP + [BINARY, "-i", "-l", "info", "-c", conf],
                           stdin=conn, capture_output=True, timeout=20 * SLOW)
        conn.close()
        got = recv_until(client, until_eof=True)
    finally:
        client.close()
        lsock.close()
        shutil.rmtree(tmp)
    log = (p.stdout + p.stderr).decode(errors="replace")
    check(p.returncode == 0, "exit %d:\n%s" % (p.returncode, log))
    replies = split_replies(got)
    check(len(replies) == 2 and replies[0].startswith(hdr[:-2] + b" "),
          "the header was not answered as a line: %r" % got)
    check("192.0.2.77" not in log and "connection from 127.0.0.1" in log,
          log)
    print("proxy: -i: the header answered as a line: %r; log: %s"
          % (replies[0], [l for l in log.splitlines()
                          if "connection from" in l][0]))


def test_local_and_unknown_keep_proxy_address():
    """A v2 LOCAL (at debug) and a v1 PROXY UNKNOWN keep the connection's
    own address as the peer; the sessions work; a LOCAL names no client."""
    with Daemon(dconf([listener("any")]), args=["-l", "debug"]) as d:
        out, me = proxied(d, v2_header(local=True), b"local\n")
        check_reply(out, "local")
        wait_logged(d, W_LOCAL, proxy=me)
        check(not lines_matching(d, r"info: .*" + fill(W_FROM, peer=me)),
              "the LOCAL session was logged at info:\n" + d.logtext())
        out, me2 = proxied(d, v1_header(), b"unknown\n")
        check_reply(out, "unknown")
        wait_logged(d, W_UNKNOWN, proxy=me2)
        # A LOCAL with addresses (senders may fill them): still ignored.
        hdr = bytearray(v2_header(("192.0.2.30", 3030), ("127.0.0.1", 7)))
        hdr[12] = 0x20
        out, me3 = proxied(d, bytes(hdr), b"local with addresses\n")
        check_reply(out, "local with addresses")
        wait_logged(d, W_LOCAL, proxy=me3)
        check("192.0.2.30" not in d.logtext(), "a LOCAL header's address "
              "was used:\n" + d.logtext())


def test_ipv4_client_over_ipv6_proxy():
    """Over a ::1 connection, a v2 TCP4 header's client is logged as that
    IPv4 address, so is a v4-mapped TCP6 one, and a v1 TCP4 line; the
    access list judges it as IPv4."""
    conf = dconf([listener("any", address="::1", trusted='[ "::1/128" ]')],
                 extra='access = { deny = [ "192.0.2.66/32" ]; };')
    with Daemon(conf) as d:
        port = d.addr()[1]
        a = ("::1", port)
        dst4, dst6 = ("192.0.2.1", 7), ("::ffff:192.0.2.1", 7)
        for client, hdr in (
                (("192.0.2.7", 4711), v2_header(("192.0.2.7", 4711), dst4)),
                (("192.0.2.8", 4712), v2_header(("::ffff:192.0.2.8", 4712),
                                                dst6)),
                (("192.0.2.9", 4713), v1_header(("192.0.2.9", 4713), dst4))):
            out, me = proxied(d, hdr, b"v4 over v6\n")
            check_reply(out, "v4 over v6")
            check(me[0] == "::1", "client not on ::1: %r" % (me,))
            wait_logged(d, W_PROXIED, client=client, proxy=me)
        me, _, _ = refused_silently(a, v2_header(("192.0.2.66", 66), dst4) +
                                    b"denied\n")
        wait_logged(d, W_DENIED, client=("192.0.2.66", 66))
        note("IPv4 clients over [::1]:%d: %s", port, "; ".join(
            found(d, W_PROXIED, client=Pattern(r"192\.0\.2\.\d+:\d+"),
                      proxy=Pattern(r"\[::1\]:\d+"))))


# ------------------------------------------------------- config, reload

def run_daemon(args, timeout=10.0):
    return subprocess.run([BINARY] + args, capture_output=True, text=True,
                          timeout=timeout * SLOW)


def test_config_errors():
    """proxy_protocol on a udp (or unix-dgram) listener, "v2" without
    proxy_from, a bad value: each an error naming file:line:setting,
    exit 78 with -t."""
    tmp = tempfile.mkdtemp(prefix="echotimed-proxy-")
    try:
        cases = [
            ("udp", '{ transport = "udp"; address = "127.0.0.1"; port = 0;\n'
             '  proxy_protocol = "v2"; }',
             W_CONF_DGRAM, {"line": 3, "transport": Pattern("udp")}),
            ("unix-dgram", '{ transport = "unix-dgram"; path = "%s/d";\n'
             '  proxy_protocol = "v2"; }'
             % tmp, W_CONF_DGRAM,
             {"line": 3, "transport": Pattern("unix-dgram")}),
            ("no proxy_from", '{ transport = "tcp"; address = "127.0.0.1";\n'
             '  port = 0; proxy_protocol = "v2"; }', W_CONF_NO_FROM, {}),
            ("bad version", listener("v3"), W_CONF_VALUE,
             {"line": 2, "setting": Pattern("proxy_protocol")}),
            ("bad prefix", listener(trusted='[ "300.0.0.0/8" ]'),
             W_CONF_VALUE, {"line": 2, "setting": Pattern("proxy_from")}),
            ("bad timeout", listener(extra="proxy_timeout = -1;"),
             W_CONF_VALUE, {"line": 2, "setting": Pattern("proxy_timeout")}),
        ]
        for what, lst, template, kw in cases:
            path = os.path.join(tmp, "c.conf")
            with open(path, "w") as f:
                f.write("# %s\nlisten = ( %s );\n" % (what, lst))
            p = run_daemon(["-t", "-c", path])
            check(p.returncode == 78, "%s: -t exit %s: %s"
                  % (what, p.returncode, p.stderr))
            check("unknown setting" not in p.stderr,
                  "%s: %s" % (what, p.stderr.strip()))
            check(re.search(fill(template, file=Pattern(re.escape(path)),
                                 **kw), p.stderr),
                  "%s: error does not name file:line:setting: %r"
                  % (what, p.stderr))
            note("config error, %s: %s", what, p.stderr.strip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_print_config_shows_proxy_settings():
    """-T prints proxy_protocol, proxy_from and proxy_timeout of a stream
    listener, and its output is a valid configuration again."""
    tmp = tempfile.mkdtemp(prefix="echotimed-proxy-")
    try:
        path = os.path.join(tmp, "c.conf")
        with open(path, "w") as f:
            f.write("listen = ( %s );\n" % listener(
                "any", trusted='[ "127.0.0.1/32", "::1/128" ]',
                extra="proxy_timeout = 3;"))
        p = run_daemon(["-T", "-c", path])
        check(p.returncode == 0, "-T exit %s: %s" % (p.returncode, p.stderr))
        for want in (r'proxy_protocol = "any";',
                     r'proxy_from = \[\s*"127\.0\.0\.1/32",\s*"::1/128"\s*\];',
                     r"proxy_timeout = 3;"):
            check(re.search(want, p.stdout), "-T lacks %s:\n%s"
                  % (want, p.stdout))
        again = os.path.join(tmp, "again.conf")
        with open(again, "w") as f:
            f.write(p.stdout)
        q = run_daemon(["-t", "-c", again])
        check(q.returncode == 0, "-T output is not valid: %s" % q.stderr)
        q = run_daemon(["-T", "-c", again])
        check(q.stdout.split("\n", 1)[1] == p.stdout.split("\n", 1)[1],
              "-T of -T differs")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def listen_inode(port):
    """The inode of the IPv4 socket listening on port (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            x = line.split()
            if x[3] == "0A" and int(x[1].split(":")[1], 16) == port:
                return int(x[9])
    raise TestFailure("nothing listens on port %d" % port)


def test_reload_turns_proxy_on_for_new_connections():
    """Reload from "off" to "v2" on a kept listener (same port): new
    connections need the header, a session from before goes on without;
    back to "off" on the next reload."""
    plain = '{ transport = "tcp"; address = "127.0.0.1"; port = %d; }'
    # A fixed port from the start: a listener configured with port 0 takes
    # any port at each open, so "port = 0" then "port = N" is another
    # socket, not this one with its PROXY settings changed.
    with Daemon(dconf([plain % _free_port()])) as d:
        a = d.addr()
        inode = listen_inode(a[1])
        old = connect_from(a)
        try:
            old.sendall(b"before\n")
            check_reply(recv_until(old, 1), "before")
            with open(d.conf, "w") as f:
                f.write(dconf([listener("v2", port=a[1])]))
            d.reload()
            check(listen_inode(a[1]) == inode, "listener not kept")
            out, me = proxied(d, v2_header(("192.0.2.40", 4040),
                                           ("127.0.0.1", a[1])), b"after\n")
            check_reply(out, "after")
            wait_logged(d, W_PROXIED, client=("192.0.2.40", 4040), proxy=me)
            me, _, _ = refused_silently(a, b"no header\n")
            wait_logged(d, W_HEADER_FAILED, peer=me)
            old.sendall(b"still plain\n")
            check_reply(recv_until(old, 1), "still plain")
            with open(d.conf, "w") as f:
                f.write(dconf([plain % a[1]]))
            d.reload()
            check(listen_inode(a[1]) == inode, "listener not kept on the "
                  "way back")
            out, _ = proxied(d, b"", b"plain again\n")
            check_reply(out, "plain again")
        finally:
            old.close()


# ------------------------------------------------------------ journal

def _journal_inner():
    """Inside "unshare --mount": one proxied session with log target
    journal; prints the records as JSON."""
    from journalstub import JournalStub
    where = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", where],
                   check=True)
    os.makedirs("/run/systemd/journal", exist_ok=True)
    conf = dconf([listener("v2")], extra='log = { target = "journal"; '
                 'level = "info"; };')
    with JournalStub("/run/systemd/journal/socket") as j:
        with Daemon(conf) as d:
            dst = ("127.0.0.1", d.addr()[1])
            out, me = proxied(d, v2_header(("192.0.2.50", 5050), dst),
                              b"journal\n")
            j.wait_for(lambda r: "closed" in r.get("MESSAGE", ""), 10)
            d.stop()
        recs = j.history + j.records(timeout=0.5)
    print(json.dumps({"records": recs, "reply": out.decode(errors="replace"),
                      "me": hostport(me)}))
    return 0


def test_journal_peer_and_proxy_fields():
    """PEER= is the header's client, PROXY= the proxy's own address, on the
    connection and the close records."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return ("skip", "needs root and unshare for a private /run/systemd")
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                        sys.executable, os.path.abspath(__file__),
                        "--journal-inner"], capture_output=True, text=True,
                       timeout=60 * SLOW, env=dict(os.environ, ECHOTIMED=BINARY))
    check(p.returncode == 0, "inner run failed:\n%s\n%s" % (p.stdout, p.stderr))
    res = json.loads(p.stdout.strip().splitlines()[-1])
    check_reply(res["reply"].encode(), "journal")
    recs = [r for r in res["records"] if r.get("TRANSPORT") == "tcp"]
    opened = [r for r in recs if r.get("MESSAGE", "").startswith("connection")]
    closed = [r for r in recs if "closed" in r.get("MESSAGE", "")]
    check(len(opened) == 1 and len(closed) == 1, "records: %r" % recs)
    for r in opened + closed:
        check(r.get("PEER") == "192.0.2.50:5050", "PEER in %r" % r)
        check(r.get(J_PROXY) == res["me"], "%s in %r (want %s)"
              % (J_PROXY, r, res["me"]))
    note("journal: %s", {k: opened[0].get(k) for k in
                          ("MESSAGE", "PEER", J_PROXY, "LISTENER")})


if __name__ == "__main__":
    if sys.argv[1:] == ["--journal-inner"]:
        sys.path.insert(0, HERE)
        sys.exit(_journal_inner())
    print("run through run.py", file=sys.stderr)
    sys.exit(64)
