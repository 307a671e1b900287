"""Datagrams at the reference's cost (issue 16, item 3).

A model that answers datagrams in the main loop (sequential, event) does
so without a heap allocation per datagram.  UDP is read with recvfrom (no
control buffer: only a Unix sender's credentials matter), one datagram a
call while a wake-up finds a few; a backlog in batches: after 16 read
alone in one wake-up (and from the start of the wake-up after one that
read as many), with recvmmsg until a batch brings fewer than it asked
for (the queue is then empty, and no read follows to find it so), their
replies sent with one sendmmsg; each datagram of a batch is still
admitted on its own (access list, denied source port, rate limit).  Unix
datagrams are still read one at a time with recvmsg (SO_PASSCRED), and
the thread and fork models read UDP one datagram at a time.  The peer's
and the listener's names are written only when a line needs them, and
every line still names them.

A queue is made without sleeps: the test stops the daemon (SIGSTOP, and
waits until strace reports every thread stopped), sends the burst and
lets it go on (SIGCONT).

  test_udp_recvfrom_unix_recvmsg_<model>  the calls of a request/reply
                                          client, under strace: each
                                          datagram alone, read alone
  test_waits_without_timeout_<model>      the loop's waits, under strace:
                                          no timeout (a timerfd wakes it
                                          for its timers)
  test_burst_read_in_batches_<model>      a burst from 3 senders, queued:
                                          replies right and in order, the
                                          first 16 read alone, the rest by
                                          recvmmsg and sendmmsg, no read
                                          after the short batch; the next
                                          wake-up starts with a batch, the
                                          one after a light one does not
  test_burst_thread_unbatched             the thread model: the same burst
                                          answered, no recvmmsg
  test_wake_up_takes_at_most_64           a queue of 100: 64 read, a wait,
                                          the rest in batches from the start
  test_batches_follow_line_length         lines too long to batch: a queue
                                          read one at a time; reloaded to
                                          40000 and to 64 bytes, batches
                                          sized for them
  test_refused_replies_of_a_batch_name_their_peers
                                          replies too long for UDP in a
                                          batch: each logged with its peer
  test_refused_reply_alone_<model>        a reply too long for UDP to a
                                          datagram read alone: logged with
                                          its peer, the sender's next line
                                          answered
  test_failed_reload_keeps_the_lines      a failed reload to shorter lines:
                                          queued lines still echoed whole
  test_burst_checks_each_datagram_<model> a queued burst of allowed, denied
                                          and denied-port senders: each
                                          datagram admitted and logged on
                                          its own, the rate limit per
                                          datagram
  test_no_heap_per_datagram_<model>       memcheck's allocation count over
                                          1000 more datagrams
  test_debug_lines_name_each_peer_<model> replies, access list, denied
                                          port, rate limit (and the source
                                          prefix), unbound and bound Unix
                                          senders, peers interleaved
"""
import itertools
import os
import re
import select
import shutil
import signal
import socket
import tempfile
import time

from lib import SLOW, VALGRIND, Daemon, TestFailure, check, check_reply
from test_sec_dgram import thread_state, while_stopped
from test_sec_files import traced_daemon

QUIET = 0.3     # seconds without a reply that prove none comes
SANITIZED = any(v in os.environ for v in ("ASAN_OPTIONS", "TSAN_OPTIONS"))


def config(model, path, extra="", udp_extra="", address="127.0.0.1"):
    return """
listen = (
  { transport = "udp"; address = "%s"; port = 0; %s },
  { transport = "unix-dgram"; path = "%s"; }
);
concurrency = { model = "%s"; };
%s
""" % (address, udp_extra, path, model, extra)


def udp_from(src="127.0.0.1", avoid=()):
    """A UDP socket bound to src, on a port not in avoid: the kernel may
    give the same ephemeral port again on another address."""
    while True:
        s = socket.socket(socket.AF_INET6 if ":" in src else socket.AF_INET,
                          socket.SOCK_DGRAM)
        s.bind((src, 0))
        if s.getsockname()[1] not in avoid:
            break
        s.close()
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
    a = s.getsockname()
    return ("[%s]:%d" if ":" in a[0] else "%s:%d") % a[:2]


# ------------------------------------------------ the calls used

def calls_for(model):
    """The calls that read each of 20 UDP and 20 Unix datagrams sent by a
    request/reply client: {(call, "udp" or "unix"): count}, and under
    ("recvmmsg", "any") the recvmmsg calls, whatever they returned."""
    def body(d, pid, tmp):
        u, srv = d.addr("udp"), os.path.join(tmp, "srv.sock")
        s = udp_from()
        x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            x.bind(os.path.join(tmp, "cli.sock"))
            for i in range(20):
                check_reply(ask(s, u, b"udp-cost-%d" % i), "udp-cost-%d" % i)
                check_reply(ask(x, srv, b"unix-cost-%d" % i),
                            "unix-cost-%d" % i)
        finally:
            s.close()
            x.close()
    lines = traced_run(lambda tmp: config(model, os.path.join(
        tmp, "srv.sock")), "recvfrom,recvmsg,recvmmsg", body)
    count = {}
    for ln in lines:
        m = re.search(r"\b(recvfrom|recvmsg|recvmmsg)\(.*\b(udp|unix)-cost-",
                      ln)
        if m:
            k = (m.group(1), m.group(2))
            count[k] = count.get(k, 0) + 1
    count[("recvmmsg", "any")] = len(traced_calls(lines, "recvmmsg"))
    return count


def check_calls(model):
    """A request/reply client: each UDP datagram arrives alone (the client
    sends the next only after the Unix datagram between them was
    answered), so each is read alone with recvfrom, and so is the next
    (the queue is empty): no recvmmsg, in a model that batches a backlog
    (sequential here) either."""
    c = calls_for(model)
    print("dgram cost: %s model: calls that read the datagrams: %s" % (
        model, ", ".join("%s %s x%d" % (k[1], k[0], n)
                         for k, n in sorted(c.items()))))
    check(c.get(("recvfrom", "udp"), 0) == 20 and
          c.get(("recvmsg", "udp"), 0) == 0 and
          c[("recvmmsg", "any")] == 0,
          "a lone UDP datagram not read with recvfrom alone: %r" % c)
    check(c.get(("recvmsg", "unix"), 0) == 20,
          "Unix datagrams not read with recvmsg (credentials): %r" % c)


def test_udp_recvfrom_unix_recvmsg_sequential():
    check_calls("sequential")


def test_udp_recvfrom_unix_recvmsg_thread():
    check_calls("thread")


def check_waits(model):
    """The loop's waits have no timeout: its timers (the one-second tick
    is armed from the start) wake it through a timerfd, so a wake-up sets
    up no kernel timer and reads no clock."""
    def body(d, pid, tmp):
        s = udp_from()
        try:
            for i in range(5):
                check_reply(ask(s, d.addr("udp"), b"wait-%d" % i),
                            "wait-%d" % i)
        finally:
            s.close()
    lines = traced_run(lambda tmp: config(model, os.path.join(
        tmp, "srv.sock")), "epoll_wait,timerfd_settime", body)
    # A wait that returned shows its timeout last before ") = "; one that
    # strace split ("<unfinished ...>") shows it on its "resumed" line.
    waits = [ln for ln in lines
             if re.search(r"(\bepoll_wait\(|<\.\.\. epoll_wait resumed>)"
                          r".*\) += ", ln)]
    timed = [ln for ln in waits if not re.search(r", -1\) += ", ln)]
    armed = [ln for ln in lines if "timerfd_settime(" in ln]
    print("dgram cost: %s model: %d waits, %d with a timeout; %d timerfd "
          "settings" % (model, len(waits), len(timed), len(armed)))
    # At least the one before the first datagram and one after a reply.
    check(len(waits) >= 2, "the trace shows %d waits" % len(waits))
    check(not timed, "waits with a timeout: %r" % timed[:3])
    check(armed, "the timers never armed a timerfd")


def test_waits_without_timeout_sequential():
    check_waits("sequential")


def test_waits_without_timeout_event():
    check_waits("event")


# ------------------------------------------------ a queue of datagrams

BURST = 40              # datagrams of a burst
BURST_SENDERS = 3       # sockets it comes from, interleaved
BURST_LINE = 64         # max_line_length of the burst
# Datagrams a wake-up reads alone before it reads the rest in batches
# (DGRAM_BACKLOG in src/accept_dgram.c); a batch of 64-byte lines holds 16.
ALONE = 16
SLOTS = 16
# The burst's datagram longer than a line may be: the last slot of the
# first batch.  Longer than the batch's buffers after that slot, so that
# reading past what the slot kept would be seen (AddressSanitizer).
TOO_LONG_AT = ALONE + SLOTS - 1
TOO_LONG_LEN = 3000
TOO_LONG = b"ERROR line too long (limit %d bytes)\n" % BURST_LINE
GROUP_STOP = re.compile(r"^(?:(\d+) +)?--- stopped by SIGSTOP ---$", re.M)


def group_stopped(pid, trace, start):
    """The trace strace writes (from byte start on) shows every thread of
    pid stopped by SIGSTOP (a thread that is exiting never stops)."""
    with open(trace) as f:
        f.seek(start)
        seen = {int(m.group(1) or pid) for m in GROUP_STOP.finditer(f.read())}
    return all(int(t) in seen or thread_state(pid, t) in (None, "Z", "X")
               for t in os.listdir("/proc/%d/task" % pid))


def while_traced_stopped(pid, trace, fn):
    """Run fn() while the daemon strace runs cannot receive anything (pid:
    not the Daemon's own, which is strace's; trace: strace's output).

    strace takes SIGSTOP and passes it on.  A thread shows "t" at each
    system call strace looks at, and also while strace holds the SIGSTOP
    it took: a SIGCONT sent then cancels the stop, and the daemon never
    stopped.  So the stop counts only once strace has written "stopped by
    SIGSTOP" for every thread (it writes each line whole, as it ends)."""
    start = os.path.getsize(trace)
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5 * SLOW
        while not group_stopped(pid, trace, start):
            if time.monotonic() > deadline:
                raise TestFailure("the traced daemon did not stop")
            time.sleep(0.005)
        fn()
    finally:
        os.kill(pid, signal.SIGCONT)


def burst():
    """[(sender, datagram, its reply: text or TOO_LONG)], in sending order:
    the senders take turns, every text is different, one datagram is too
    long for a line."""
    out = []
    for i in range(BURST):
        k = i % BURST_SENDERS
        data = b"burst-%d-%02d" % (k, i)
        if i == TOO_LONG_AT:
            out.append((k, data + b"-" + b"x" * TOO_LONG_LEN, TOO_LONG))
        else:
            out.append((k, data, data))
    return out


def collect(socks, want, timeout=5.0):
    """The datagrams each of socks receives: until socks[i] has want[i],
    then for QUIET more, so that one too many is seen."""
    got = [[] for _ in socks]
    deadline = time.monotonic() + timeout * SLOW
    while any(len(g) < w for g, w in zip(got, want)):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for s in select.select(socks, [], [], left)[0]:
            got[socks.index(s)].append(s.recv(65536))
    end = time.monotonic() + QUIET
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got
        for s in select.select(socks, [], [], left)[0]:
            got[socks.index(s)].append(s.recv(65536))


def traced_calls(lines, call):
    """[(line, result)] of each call that returned in an strace -f output
    (a call another thread interrupted ends on its "resumed" line; one cut
    short by the exit returns "?")."""
    out = []
    start = re.compile(r"(?:\b%s\(|<\.\.\. %s resumed>)" % (call, call))
    for ln in lines:
        m = re.search(r"\) += (-?\d+)(?: E[A-Z]+ \(.*\))?$", ln)
        if m and start.search(ln):
            out.append((ln, int(m.group(1))))
    return out


def traced_run(conf, calls, body):
    """body(daemon, pid, tmp) on a daemon under strace (conf(tmp): its
    config, tmp a directory removed afterwards; calls: what strace
    traces), which is then stopped; the trace's lines."""
    tmp = tempfile.mkdtemp(prefix="echotimed-dgcost-")
    trace = os.path.join(tmp, "trace")
    prefix = ["strace", "-f", "-qq", "-s", "32", "-o", trace,
              "-e", "trace=" + calls]
    try:
        with traced_daemon(conf(tmp), prefix) as (d, pid):
            check(pid is not None, "the daemon under strace did not start")
            d.wait_ready(20)
            body(d, pid, tmp)
            os.kill(pid, signal.SIGTERM)
            d.proc.wait(20 * SLOW)
        with open(trace) as f:
            return f.read().splitlines()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


AFTER = (b"after-1", b"after-2")


def burst_trace(model, in_order, address="127.0.0.1"):
    """Send the burst to a daemon stopped under strace (its UDP listener
    on address, the senders on it too), check each sender's replies
    (in_order: in its order, as a model answering in the loop sends them;
    the thread model's threads race), then ask AFTER's two, one at a time;
    the trace's lines."""
    extra = ("session = { max_line_length = %d; };\n"
             "datagram = { rate_limit = 0; };" % BURST_LINE)
    items = burst()
    got = []

    def body(d, pid, tmp):
        u = d.addr("udp")
        socks = [udp_from(address) for _ in range(BURST_SENDERS)]
        try:
            def send():
                for k, data, _ in items:
                    socks[k].sendto(data, u)
            while_traced_stopped(pid, os.path.join(tmp, "trace"), send)
            got[:] = collect(socks, [sum(1 for k, _, _ in items if k == j)
                                     for j in range(BURST_SENDERS)])
            # Two more, one at a time: the wake-ups after the burst's.
            for tag in AFTER:
                check_reply(ask(socks[0], u, tag), tag.decode())
        finally:
            for s in socks:
                s.close()
    lines = traced_run(lambda tmp: config(model, os.path.join(
        tmp, "srv.sock"), extra, address=address),
        "recvfrom,recvmmsg,sendto,sendmmsg", body)
    for j in range(BURST_SENDERS):
        want = [r for k, _, r in items if k == j]
        check(len(got[j]) == len(want),
              "sender %d: %d replies for %d datagrams: %r"
              % (j, len(got[j]), len(want), got[j]))
        if not in_order:
            # The texts have one length: a reply sorts as its text does.
            got[j].sort()
            want.sort()
        for reply, text in zip(got[j], want):
            if text == TOO_LONG:
                check(reply == TOO_LONG, "sender %d: %r for the long "
                      "datagram" % (j, reply))
            else:
                check_reply(reply, text)
    return lines


def read_by(lines, text):
    """The call that read the datagram text: "recvfrom" or "recvmmsg"."""
    for call in ("recvfrom", "recvmmsg"):
        if any('"%s"' % text in ln for ln, r in traced_calls(lines, call)
               if r > 0):
            return call
    return None


def check_burst(model, batched, address="127.0.0.1"):
    lines = burst_trace(model, batched, address)
    after = [read_by(lines, t.decode()) for t in AFTER]
    lone = [r for ln, r in traced_calls(lines, "recvfrom")
            if r > 0 and '"burst-' in ln]
    mm = [r for ln, r in traced_calls(lines, "recvmmsg")
          if r > 0 and '"after-' not in ln]
    sent = [r for _, r in traced_calls(lines, "sendmmsg")]
    print("dgram cost: %s model: a burst of %d datagrams read with %d "
          "recvfrom and recvmmsg of %s, answered with sendmmsg of %s"
          % (model, BURST, len(lone), mm or "none", sent or "none"))
    # Each datagram read once, by one call or the other.
    check(len(lone) + sum(mm) == BURST,
          "%d recvfrom and recvmmsg of %r for %d datagrams"
          % (len(lone), mm, BURST))
    if batched:
        # A few datagrams cost less read alone: the first ALONE are.
        check(len(lone) == ALONE, "%d of the burst read alone, not %d"
              % (len(lone), ALONE))
        check(mm and max(mm) >= 2, "no recvmmsg brought two datagrams "
              "or more: %d recvfrom" % len(lone))
        check(any(r >= 1 for r in sent), "no sendmmsg: %r" % sent)
        check(max(sent) >= 2, "no sendmmsg sent two replies or more: %r"
              % sent)
        long_in = '"burst-%d-%02d-' % (TOO_LONG_AT % BURST_SENDERS,
                                      TOO_LONG_AT)
        check(any(long_in in ln for ln, r in traced_calls(lines, "recvmmsg")
                  if r > 0), "the long datagram not read in a batch")
        # The last batch brought fewer than it asked for: the queue was
        # empty, and no read followed to find it so.
        check(mm[-1] < 16, "the burst's last batch was full: %r" % mm)
        empty = [ln for ln, r in traced_calls(lines, "recvmmsg") if r < 0]
        check(not empty, "a read after the batch that emptied the queue: "
              "%r" % empty)
        # After a backlog the next wake-up starts with a batch; after
        # that light one (a datagram), the next reads alone again.
        check(after == ["recvmmsg", "recvfrom"], "the two datagrams after "
              "the burst read by %r" % after)
    else:
        check(not mm and not sent, "this model batches: recvmmsg of %r, "
              "sendmmsg of %r" % (mm, sent))
        check(after == ["recvfrom", "recvfrom"], "the two datagrams after "
              "the burst read by %r" % after)


def test_burst_read_in_batches_sequential():
    check_burst("sequential", True)


def test_burst_read_in_batches_event():
    check_burst("event", True)


def test_burst_read_in_batches_ipv6():
    check_burst("event", True, "::1")


def test_burst_thread_unbatched():
    check_burst("thread", False)


def test_wake_up_takes_at_most_64():
    """A wake-up reads at most 64 datagrams, so that the loop serves its
    other sockets, signals and timers in between: a queue of 100 is read
    as 16 alone and three batches of 16, then, after the loop's next
    wait, in batches from the start (the backlog remembered): 16, 16, 4.
    """
    n = 100

    def body(d, pid, tmp):
        u = d.addr("udp")
        s = udp_from()
        try:
            def send():
                for i in range(n):
                    s.sendto(b"cap-%03d" % i, u)
            while_traced_stopped(pid, os.path.join(tmp, "trace"), send)
            got = collect([s], [n])[0]
            check(len(got) == n, "%d replies for %d datagrams"
                  % (len(got), n))
            for i, r in enumerate(got):
                check_reply(r, "cap-%03d" % i)
        finally:
            s.close()
    lines = traced_run(lambda tmp: config("sequential", os.path.join(
        tmp, "srv.sock"), "session = { max_line_length = %d; };\n"
        "datagram = { rate_limit = 0; };" % BURST_LINE),
        "recvfrom,recvmmsg,epoll_wait", body)
    # The reads in order, a wait between two wake-ups as "wait".
    seq = []
    for ln in lines:
        m = re.search(r"\) += (-?\d+)", ln)
        if not m:
            continue
        r = int(m.group(1))
        if r > 0 and '"cap-' in ln and re.search(r"\brecvfrom\(", ln):
            seq.append("alone")
        elif r > 0 and '"cap-' in ln and re.search(r"\brecvmmsg\(", ln):
            seq.append("batch of %d" % r)
        elif re.search(r"\bepoll_wait\(", ln) and seq and \
                seq[-1] != "wait":
            seq.append("wait")
    while seq and seq[-1] == "wait":
        seq.pop()
    want = ["alone"] * ALONE + ["batch of 16"] * 3 + ["wait"] + \
        ["batch of 16"] * 2 + ["batch of 4"]
    print("dgram cost: a queue of %d read as %s" % (n, ", ".join(
        "%s x%d" % (k, len(list(g))) for k, g in itertools.groupby(seq))))
    check(seq == want, "a queue of %d read as %r" % (n, seq))


def set_line(d, n):
    """Rewrite d's max_line_length to n."""
    with open(d.conf) as f:
        text = f.read()
    with open(d.conf, "w") as f:
        f.write(re.sub(r"max_line_length = \d+;", "max_line_length = %d;" % n,
                       text))


def test_batches_follow_line_length():
    """A batch's slots follow max_line_length: lines too long to batch
    (above 65520 bytes) are read one at a time, 40000-byte lines in
    batches of 3 (what 256 KiB holds), and after a reload to 64-byte
    lines in batches of up to 16 again.  A phase queues 40 datagrams, a
    backlog: the 40000-byte phase reads its first 16 alone (ALONE; the
    phase before could not batch), the 64-byte one starts with a batch
    (the phase before read a backlog in batches)."""
    phases = [(b"long", 65521), (b"mid", 40000), (b"short", 64)]

    def body(d, pid, tmp):
        u = d.addr("udp")
        socks = [udp_from() for _ in range(2)]
        try:
            for n, (tag, line) in enumerate(phases):
                if n:
                    set_line(d, line)
                    # To the daemon itself: strace would detach.
                    d.drain_notify()
                    os.kill(pid, signal.SIGHUP)
                    d.wait_notify("RELOADING", "1", 10)
                    d.wait_notify("READY", "1", 10)
                    check(not d.status.startswith("reload failed"),
                          "reload failed: " + d.status)

                def send():
                    for i in range(40):
                        socks[i % 2].sendto(b"%s-%02d" % (tag, i), u)
                while_traced_stopped(pid, os.path.join(tmp, "trace"), send)
                got = collect(socks, [20, 20])
                for j in range(2):
                    check(len(got[j]) == 20, "%s burst, sender %d: %r"
                          % (tag, j, got[j]))
                    for i, r in enumerate(got[j]):
                        check_reply(r, b"%s-%02d" % (tag, 2 * i + j))
        finally:
            for s in socks:
                s.close()
    lines = traced_run(lambda tmp: config("sequential", os.path.join(
        tmp, "srv.sock"), "session = { max_line_length = 65521; };\n"
        "datagram = { rate_limit = 0; };"), "recvfrom,recvmmsg", body)
    mm = traced_calls(lines, "recvmmsg")
    sizes = {tag: [r for ln, r in mm if r > 0 and '"%s-' % tag.decode() in ln]
             for tag, _ in phases}
    print("dgram cost: recvmmsg by max_line_length: %s" % ", ".join(
        "%d: %s" % (line, sizes[tag] or "none") for tag, line in phases))
    check(not sizes[b"long"], "65521-byte lines read in batches: %r"
          % sizes[b"long"])
    check(sizes[b"mid"] and max(sizes[b"mid"]) == 3,
          "40000-byte lines not read in batches of 3: %r" % sizes[b"mid"])
    check(sizes[b"short"] and max(sizes[b"short"]) > 3,
          "64-byte lines after 40000 still in small batches: %r"
          % sizes[b"short"])


def test_refused_replies_of_a_batch_name_their_peers():
    """Replies the kernel refuses in a batch (longer than a UDP datagram
    may be: a 65490-byte line and its timestamp) are logged, each naming
    its own sender, and nothing is sent.  ALONE short datagrams of another
    sender go first, so that the two long ones are read in a batch."""
    line = 65500       # 2 slots fit in the batch's 256 KiB
    data = b"z" * 65490

    def body(d, pid, tmp):
        u = d.addr("udp")
        filler = udp_from()
        socks = [udp_from() for _ in range(2)]
        try:
            def send():
                for i in range(ALONE):
                    filler.sendto(b"fill-%02d" % i, u)
                for s in socks:
                    s.sendto(data, u)
            while_traced_stopped(pid, os.path.join(tmp, "trace"), send)
            for s in socks:
                d.wait_log(r"debug: reply to %s: Message too long"
                           % re.escape(name(s)))
            got = collect(socks, [0, 0], timeout=0)
            check(got == [[], []], "replies sent: %r"
                  % [len(g) for g in got])
            check(len(collect([filler], [ALONE])[0]) == ALONE,
                  "the short datagrams not all answered")
        finally:
            filler.close()
            for s in socks:
                s.close()
    lines = traced_run(lambda tmp: config("sequential", os.path.join(
        tmp, "srv.sock"), "session = { max_line_length = %d; };\n"
        "datagram = { rate_limit = 0; };\nlog = { level = \"debug\"; };"
        % line), "recvmmsg,sendmmsg", body)
    mm = [r for _, r in traced_calls(lines, "recvmmsg") if r > 0]
    sent = [r for _, r in traced_calls(lines, "sendmmsg")]
    print("dgram cost: 2 queued replies too long for UDP: recvmmsg of %s, "
          "sendmmsg returned %s, each logged with its peer" % (mm, sent))
    check(mm == [2], "the two long ones not read in one batch: %r" % mm)
    check(sent and sent[0] == -1, "no sendmmsg refused: %r" % sent)


def check_refused_alone(model):
    """A datagram read alone whose reply the kernel refuses (a 65490-byte
    line and its timestamp are longer than a UDP datagram may be): the
    refusal is logged naming the sender, nothing is sent, and the same
    sender's next line is answered.  The loop models send that reply from
    the receiving loop, the thread model through its session thread; the
    trace shows the datagram read alone (no recvmmsg) and the refused
    sendto."""
    big = udp_from()

    def body(d, pid, tmp):
        u = d.addr("udp")
        check(ask(big, u, b"z" * 65490, QUIET) is None,
              "a reply longer than a UDP datagram was sent")
        d.wait_log(r"debug: reply to %s: Message too long"
                   % re.escape(name(big)))
        check_reply(ask(big, u, b"after"), "after")
    try:
        lines = traced_run(lambda tmp: config(model, os.path.join(
            tmp, "srv.sock"), "session = { max_line_length = 65500; };\n"
            "datagram = { rate_limit = 0; };\nlog = { level = \"debug\"; };"),
            "recvfrom,recvmmsg,sendto", body)
    finally:
        big.close()
    check(not [x for x in lines if "recvmmsg(" in x],
          "the datagram was read in a batch")
    check([x for x in lines if "sendto(" in x and "EMSGSIZE" in x],
          "no refused sendto in the trace")
    print("dgram cost: %s model: a refused reply to a datagram read alone "
          "logged, the next line answered" % model)


def test_refused_reply_alone_sequential():
    check_refused_alone("sequential")


def test_refused_reply_alone_event():
    check_refused_alone("event")


def test_refused_reply_alone_thread():
    check_refused_alone("thread")


def test_failed_reload_keeps_the_lines():
    """A reload to shorter lines that fails (a new listener's port is
    taken) leaves the running lines as they were: a queue of 40 300-byte
    lines (16 read alone, the rest in batches sized for 8000-byte lines)
    is echoed whole, not cut to the new length."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    busy = holder.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="echotimed-dgcost-")
    socks = []
    try:
        with Daemon(config("sequential", os.path.join(tmp, "srv.sock"),
                           "session = { max_line_length = 8000; };\n"
                           "datagram = { rate_limit = 0; };")) as d:
            u = d.addr("udp")
            with open(d.conf) as f:
                text = f.read()
            with open(d.conf, "w") as f:
                f.write(text.replace("max_line_length = 8000;",
                                     "max_line_length = 64;").replace(
                    "listen = (", 'listen = ( { transport = "udp"; '
                    'address = "127.0.0.1"; port = %d; },' % busy))
            d.reload(expect_ok=False)
            check(d.status.startswith("reload failed"),
                  "the reload did not fail: %r" % d.status)
            socks = [udp_from() for _ in range(2)]
            texts = [b"kept-%02d-" % i + b"y" * 300 for i in range(40)]

            def send():
                for i, t in enumerate(texts):
                    socks[i % 2].sendto(t, u)
            while_stopped(d, send)
            got = collect(socks, [20, 20])
            for j in range(2):
                check(len(got[j]) == 20, "sender %d: %r" % (j, got[j]))
                for i, r in enumerate(got[j]):
                    check_reply(r, texts[2 * i + j])
            print("dgram cost: a failed reload to 64-byte lines: 40 queued "
                  "300-byte lines echoed whole")
    finally:
        holder.close()
        for s in socks:
            s.close()
        shutil.rmtree(tmp, ignore_errors=True)


def admission_burst(model):
    """Queue, interleaved, 10 datagrams of an allowed sender, 3 of a
    denied address, 3 of a denied source port, to a daemon under strace,
    after ALONE of another sender (read alone, so that these 16 are read
    in a batch); each is decided on its own: 3 answered (the rate limit's
    burst), the rest logged and dropped.  The counts, the replies, the
    time taken and the sizes of the recvmmsg that read them."""
    bad = udp_from()    # its port is denied, and only its
    avoid = (bad.getsockname()[1],)
    filler = udp_from("127.0.0.4", avoid)
    extra = """
access = { deny = [ "127.0.0.2/32" ]; };
datagram = { rate_limit = 1; rate_burst = 3; deny_source_ports = [ %d ]; };
log = { level = "debug"; };
""" % bad.getsockname()[1]
    socks = [bad, filler]
    out = {}

    def body(d, pid, tmp):
        u = d.addr("udp")
        denied = udp_from("127.0.0.2", avoid)
        ok = udp_from("127.0.0.3", avoid)
        socks.extend([denied, ok])
        order = []
        for i in range(10):
            order.append((ok, b"ok-%d" % i))
            if i in (1, 4, 7):
                order.append((denied, b"denied-%d" % i))
            if i in (2, 5, 8):
                order.append((bad, b"port-%d" % i))

        def send():
            for i in range(ALONE):
                filler.sendto(b"fill-%02d" % i, u)
            for s, data in order:
                s.sendto(data, u)
        t0 = time.monotonic()
        while_traced_stopped(pid, os.path.join(tmp, "trace"), send)
        lines = {
            "acl": r"debug: datagram from %s on dg-burst denied by "
                   r"access list" % re.escape(name(denied)),
            "port": r"debug: datagram from %s on dg-burst dropped: "
                    r"denied source port" % re.escape(name(bad)),
            "rate": r"debug: datagram from %s on dg-burst dropped: "
                    r"rate limit of source 127\.0\.0\.3(/32)?\n"
                    % re.escape(name(ok)),
            "served": r"debug: %s: datagram \"ok-\d+\"\n"
                      % re.escape(name(ok)),
        }

        def counts():
            text = d.logtext()
            return {k: len(re.findall(p, text)) for k, p in lines.items()}
        # Until each of the 16 datagrams was logged and every one served
        # answered; a denied sender answered fails at once.
        replies = []
        deadline = time.monotonic() + 5 * SLOW
        while True:
            for s in select.select([ok, denied, bad], [], [], 0.02)[0]:
                got = s.recv(65536)
                check(s is ok, "the %s answered: %r" % (
                    "denied peer" if s is denied else "denied port", got))
                replies.append(got)
            c = counts()
            if c["acl"] >= 3 and c["port"] >= 3 and \
                    c["rate"] + c["served"] >= 10 and \
                    len(replies) >= c["served"]:
                break
            check(time.monotonic() < deadline,
                  "not every datagram decided: %r, %d replies:\n%s"
                  % (c, len(replies), d.logtext()))
        out["elapsed"] = time.monotonic() - t0
        for s in select.select([ok, denied, bad], [], [], QUIET)[0]:
            check(False, "one datagram too many for %s: %r"
                  % (name(s), s.recv(65536)))
        out["counts"], out["replies"] = counts(), replies
    try:
        trace = traced_run(lambda tmp: config(model, os.path.join(
            tmp, "srv.sock"), extra, 'name = "dg-burst";'), "recvmmsg",
            body)
    finally:
        for s in socks:
            s.close()
    mm = [r for _, r in traced_calls(trace, "recvmmsg") if r > 0]
    return out["counts"], out["replies"], out["elapsed"], mm


def check_admission(model):
    c, replies, elapsed, mm = admission_burst(model)
    print("dgram cost: %s model: a queued burst read with recvmmsg of %s: "
          "%r, %d replies in %.2fs" % (model, mm or "none", c, len(replies),
                                      elapsed))
    # The batch path decided them.
    check(mm and max(mm) >= 2, "the burst not read in batches: %r" % mm)
    check(c["acl"] == 3, "%d access list lines for 3 denied datagrams"
          % c["acl"])
    check(c["port"] == 3, "%d denied port lines for 3 datagrams"
          % c["port"])
    # The limiter refills 1 a second: a slow run may answer one more a
    # whole second.
    check(3 <= c["served"] <= 3 + int(elapsed),
          "%d of 10 datagrams answered past a burst of 3 in %.2fs"
          % (c["served"], elapsed))
    check(c["served"] + c["rate"] == 10 and len(replies) == c["served"],
          "%r, %d replies" % (c, len(replies)))
    seen = []
    for r in replies:
        m = re.match(rb"ok-(\d+) ", r)
        check(m is not None, "bad reply %r" % r)
        check_reply(r, m.group(0)[:-1])
        seen.append(int(m.group(1)))
    check(seen[:3] == [0, 1, 2] and seen == sorted(seen),
          "the burst's first 3 not answered first, in order: %r" % seen)


def test_burst_checks_each_datagram_sequential():
    check_admission("sequential")


def test_burst_checks_each_datagram_event():
    check_admission("event")


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
        shutil.rmtree(tmp, ignore_errors=True)
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
            # Only bad sends from the denied port (CI once gave 127.0.0.5
            # the same port as bad's 127.0.0.1).
            avoid = (bad.getsockname()[1],)
            denied = udp_from("127.0.0.2", avoid)
            ok = udp_from("127.0.0.3", avoid)
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
                late = udp_from("127.0.0.%d" % (4 + i), avoid)
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
        shutil.rmtree(tmp, ignore_errors=True)


def test_debug_lines_name_each_peer_sequential():
    check_lines("sequential")


def test_debug_lines_name_each_peer_event():
    check_lines("event")


def test_debug_lines_name_each_peer_thread():
    check_lines("thread")
