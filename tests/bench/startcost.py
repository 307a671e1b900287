#!/usr/bin/env python3
"""Start-up cost of a per-connection server, as a classic super-server
(inetd, tcpserver) pays it for every connection.

usage: startcost.py [--any-output] N CMD [ARG...]

Runs CMD N times (at most 2000), each with one end of a connected stream
socket pair as its stdin and stdout (as tcpserver and inetd give it), sends
"hello\\nexit\\n", reads until EOF, verifies the two replies (unless the
command gives none at all, like /bin/true, or --any-output is given, for a
command such as `echotimed -V`), and reaps it.  Prints one line:

  STARTCOST runs=N cpu_us=... first_reply_us=... exit_us=... replies=0|2

cpu_us is the median of the child's user+system time (wait4), the other two
the median wall time from the spawn to the first reply byte and to the
child's exit.  Every wait is bounded (5 s); a bad reply or a timeout exits 1.
"""

import os
import re
import socket
import statistics
import sys
import time

REPLY = re.compile(rb'hello [A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d '
                   rb'\d\d:\d\d:\d\d \d{4}\nexit [A-Z][a-z]{2} [A-Z][a-z]{2} '
                   rb'[ 1-3]\d \d\d:\d\d:\d\d \d{4}\n')


def one(argv, any_output):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.settimeout(5)
    t0 = time.monotonic()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, theirs.fileno(), 0),
                                       (os.POSIX_SPAWN_DUP2, theirs.fileno(), 1)])
    theirs.close()
    first = None
    data = b''
    try:
        ours.sendall(b'hello\nexit\n')
    except OSError:
        pass                    # /bin/true may be gone already
    while True:
        try:
            chunk = ours.recv(4096)
        except ConnectionResetError:
            chunk = b''
        if not chunk:
            break
        if first is None:
            first = time.monotonic()
        data += chunk
    ours.close()
    deadline = time.monotonic() + 5
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.wait4(pid, 0)
            sys.exit('startcost: %s did not exit' % argv[0])
        time.sleep(0.0005)
    t1 = time.monotonic()
    if data and not any_output and not REPLY.fullmatch(data):
        sys.exit('startcost: bad reply %r' % data[:200])
    cpu = (ru.ru_utime + ru.ru_stime) * 1e6
    ok = bool(data) and not any_output
    return cpu, (first - t0) * 1e6 if ok else None, (t1 - t0) * 1e6, ok


def main(argv):
    any_output = len(argv) > 1 and argv[1] == '--any-output'
    if any_output:
        argv = argv[:1] + argv[2:]
    if len(argv) < 3 or not argv[1].isdigit() or not 1 <= int(argv[1]) <= 2000:
        sys.stderr.write(__doc__)
        return 64
    n = int(argv[1])
    cmd = argv[2:]
    if '/' not in cmd[0]:
        cmd[0] = next((os.path.join(d, cmd[0])
                       for d in os.environ.get('PATH', '').split(':')
                       if os.access(os.path.join(d, cmd[0]), os.X_OK)), cmd[0])
    runs = [one(cmd, any_output) for _ in range(n)]
    replied = {r[3] for r in runs}
    if len(replied) != 1:
        sys.exit('startcost: some runs replied, some did not')
    firsts = [r[1] for r in runs if r[1] is not None]
    print('STARTCOST runs=%d cpu_us=%.0f first_reply_us=%s exit_us=%.0f '
          'replies=%d' % (n, statistics.median(r[0] for r in runs),
                          '%.0f' % statistics.median(firsts) if firsts else 'na',
                          statistics.median(r[2] for r in runs),
                          2 if replied == {True} else 0))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
