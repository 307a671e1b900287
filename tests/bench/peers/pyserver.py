#!/usr/bin/env python3
"""Comparison peers for the echotimed benchmark: the same line protocol
(SPEC section 1) assembled by hand from Python's socketserver module, which
is exactly what echotimed packages as a finished daemon.

usage: pyserver.py threading|forking|sequential|udp [PORT [HOST]]

PORT defaults to 0 (an ephemeral port); HOST to 127.0.0.1.  Once the socket
is bound (and listening) the server prints "READY <port>" on stdout and
flushes, so a script can wait for that line instead of sleeping.  It serves
until killed (SIGTERM/SIGINT).

Deliberate differences from the plain stdlib classes, all in the interest
of a fair comparison with echotimed's configuration in the benchmark:
allow_reuse_address, daemon_threads, request_queue_size = 1024 (echotimed
gets backlog 4096, the kernel caps both at net.core.somaxconn), and
ForkingMixIn.max_children raised from 40 to 20000 (the daemon is configured
with max_connections = 20000; with 40, the 41st concurrent client of the
forking server would block the accept loop).
"""

import signal
import socketserver
import sys
import time


def reply(text):
    return text + b' ' + time.ctime().encode('ascii') + b'\n'


def strip_terminator(data):
    if data.endswith(b'\r\n'):
        return data[:-2]
    if data.endswith(b'\n'):
        return data[:-1]
    return data


class LineHandler(socketserver.StreamRequestHandler):
    """One session: a reply per line; 'exit' gets its reply, then close."""

    def handle(self):
        try:
            while True:
                line = self.rfile.readline()
                if not line:
                    return          # EOF (a final line without LF was served)
                text = strip_terminator(line)
                self.wfile.write(reply(text))
                if text.strip() == b'exit':
                    return
        except ConnectionError:
            return                  # the client vanished: end this session


class DatagramHandler(socketserver.DatagramRequestHandler):
    """One datagram in, one datagram out (sent by finish())."""

    def handle(self):
        text = strip_terminator(self.rfile.read())
        self.wfile.write(reply(text))


class SequentialServer(socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 1024


class ThreadingServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


class ForkingServer(socketserver.ForkingTCPServer):
    allow_reuse_address = True
    request_queue_size = 1024
    max_children = 20000
    block_on_close = False


class UDPServer(socketserver.UDPServer):
    allow_reuse_address = True


VARIANTS = {
    'threading': (ThreadingServer, LineHandler),
    'forking': (ForkingServer, LineHandler),
    'sequential': (SequentialServer, LineHandler),
    'udp': (UDPServer, DatagramHandler),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in VARIANTS or len(argv) > 4:
        sys.stderr.write('usage: pyserver.py %s [PORT [HOST]]\n'
                         % '|'.join(VARIANTS))
        return 64
    cls, handler = VARIANTS[argv[1]]
    port = int(argv[2]) if len(argv) > 2 else 0
    host = argv[3] if len(argv) > 3 else '127.0.0.1'
    # SIGTERM ends the process at once (the default action, made explicit):
    # there is nothing to flush, and with 10,000 threads the interpreter
    # took more than bench.sh's 3 s grace to stop through a Python handler.
    # Ctrl-C still ends serve_forever() by KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with cls((host, port), handler) as server:
        sys.stdout.write('READY %d\n' % server.server_address[1])
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
