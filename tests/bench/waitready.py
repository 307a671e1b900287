#!/usr/bin/env python3
"""Readiness helper for bench.sh: sd_notify without systemd (see
shared/TESTING.md, "Readiness and notify messages without systemd").

  waitready.py listen PATH TIMEOUT
      Bind an AF_UNIX datagram socket at PATH (a leading '@' means the
      abstract namespace), print "LISTENING PATH", then wait at most TIMEOUT
      seconds for a datagram carrying READY=1.  Prints each STATUS= field as
      "STATUS text", then "READY" and exits 0, or "TIMEOUT" and exits 1.
      The caller starts the daemon with NOTIFY_SOCKET=PATH after it has seen
      the LISTENING line.

  waitready.py free-port
      Print a port that is free on 127.0.0.1 for both TCP and UDP.
"""

import os
import socket
import sys
import time


def listen(path, timeout):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = '\0' + path[1:] if path.startswith('@') else path
    if not path.startswith('@'):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    sock.bind(addr)
    print('LISTENING', path, flush=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                print('TIMEOUT', flush=True)
                return 1
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            ready = False
            for field in data.decode('utf-8', 'replace').split('\n'):
                if field.startswith('STATUS='):
                    print('STATUS', field[7:], flush=True)
                elif field == 'READY=1':
                    ready = True
            if ready:
                print('READY', flush=True)
                return 0
    finally:
        sock.close()
        if not path.startswith('@'):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def free_port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(('127.0.0.1', 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(('127.0.0.1', port))
                except OSError:
                    continue
        print(port)
        return 0
    sys.stderr.write('waitready.py: no free port found\n')
    return 1


def main(argv):
    if len(argv) == 4 and argv[1] == 'listen':
        return listen(argv[2], float(argv[3]))
    if len(argv) == 2 and argv[1] == 'free-port':
        return free_port()
    sys.stderr.write(__doc__)
    return 64


if __name__ == '__main__':
    sys.exit(main(sys.argv))
