#!/usr/bin/env python3
"""journalstub - a stand-in for journald's native socket, for tests.

libsystemd's sd_journal_send() writes to the fixed path
/run/systemd/journal/socket and silently drops messages when it is absent.
To see the structured fields a program sends without journald, run the
program in a private mount namespace with a tmpfs on /run/systemd and bind
a JournalStub at that path (root only):

    unshare --mount --propagation private -- sh -c '
        mount -t tmpfs -o mode=0755 tmpfs /run/systemd &&
        mkdir /run/systemd/journal && exec python3 my_test.py'

and in my_test.py:

    with JournalStub("/run/systemd/journal/socket") as j:
        start the daemon ...
        rec = j.wait_for({"MESSAGE": "listening on 127.0.0.1:9999"}, 5)

The native protocol (systemd's JOURNAL_NATIVE_PROTOCOL): a datagram holds
one entry, one field per line, either KEY=VALUE\\n or, for values that
contain a newline, KEY\\n + 64-bit little-endian length + data + \\n.  An
entry too big for a datagram arrives as an empty datagram carrying a sealed
memfd (SCM_RIGHTS) whose contents are the same byte format.

Like journald, the stub adds trusted fields from SCM_CREDENTIALS: _PID,
_UID, _GID.  It adds _STUB_FD=1 to entries that came as a memfd.

Values are str, decoded as UTF-8 with surrogateescape (so
v.encode("utf-8", "surrogateescape") gives the bytes back); a key that
occurs more than once maps to a list of its values, in order.

Run "journalstub.py --selftest" (as root) to test the parser against the
real libsystemd; "journalstub.py --dump PATH" prints entries as JSON lines.
Python 3 standard library only.
"""

import array
import errno
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["parse_journal_fields", "parse_journal_datagram", "JournalStub"]

# journald's rule for field names (journal_field_valid): uppercase letters,
# digits and underscores, not starting with a digit, at most 64 bytes.
# Names starting with "_" are trusted fields a client may not set.
_KEY_RE = re.compile(rb"[A-Z_][A-Z0-9_]{0,63}\Z")
_MAX_FDS = 4


def parse_journal_fields(data):
    """Parse one native-protocol entry into a list of (key, bytes) pairs.

    Raises ValueError on anything journald would not take as a well-formed
    entry (a missing newline, a bad length, an invalid field name), so that
    a test sees a sender's mistake instead of a silently shorter record.
    Empty lines (entry separators) are skipped.
    """
    data = bytes(data)
    fields = []
    pos, end = 0, len(data)
    while pos < end:
        nl = data.find(b"\n", pos)
        if nl == -1:
            raise ValueError("field without trailing newline at offset %d: "
                             "%r" % (pos, data[pos:pos + 80]))
        line = data[pos:nl]
        if not line:
            pos = nl + 1
            continue
        eq = line.find(b"=")
        if eq != -1:
            key, value = line[:eq], line[eq + 1:]
            pos = nl + 1
        else:
            # Binary form: KEY \n le64 length, data, \n.
            key = line
            if nl + 1 + 8 > end:
                raise ValueError("binary field %r: length cut short" % key)
            (size,) = struct.unpack_from("<Q", data, nl + 1)
            start = nl + 1 + 8
            if start + size + 1 > end:
                raise ValueError("binary field %r: %d bytes announced, %d "
                                 "left" % (key, size, end - start))
            value = data[start:start + size]
            if data[start + size:start + size + 1] != b"\n":
                raise ValueError("binary field %r: no newline after data"
                                 % key)
            pos = start + size + 1
        if not _KEY_RE.match(key):
            raise ValueError("invalid field name %r" % key)
        fields.append((key.decode("ascii"), value))
    return fields


def _to_dict(fields):
    rec = {}
    for key, value in fields:
        v = value.decode("utf-8", "surrogateescape")
        if key not in rec:
            rec[key] = v
        elif isinstance(rec[key], list):
            rec[key].append(v)
        else:
            rec[key] = [rec[key], v]
    return rec


def parse_journal_datagram(data):
    """Parse one native-protocol entry (bytes) into a dict of str values."""
    return _to_dict(parse_journal_fields(data))


def _read_fd(fd):
    """Whole contents of a memfd (or a file) passed by a sender."""
    size = os.fstat(fd).st_size
    chunks, off = [], 0
    while off < size:
        chunk = os.pread(fd, min(size - off, 1 << 20), off)
        if not chunk:
            break
        chunks.append(chunk)
        off += len(chunk)
    return b"".join(chunks)


class JournalStub:
    """A datagram socket at path that collects journal entries.

    A background thread reads continuously, so that a sender never blocks
    on a full queue (net.unix.max_dgram_qlen is often only 10).
    """

    def __init__(self, path):
        self.path = path
        self.history = []           # every record ever received, in order
        self._queue = queue.Queue()  # records (or exceptions) not yet taken
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if not path.startswith("@"):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._sock.bind("\0" + path[1:] if path.startswith("@")
                            else path)
            if not path.startswith("@"):
                os.chmod(path, 0o666)
        except BaseException:
            self._sock.close()
            raise
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="journalstub")
        self._thread.start()

    def _receive_one(self):
        # The real size of the next datagram, however big it is.
        size = self._sock.recv_into(bytearray(1), 1,
                                    socket.MSG_PEEK | socket.MSG_TRUNC)
        anc = (socket.CMSG_SPACE(_MAX_FDS * array.array("i").itemsize) +
               socket.CMSG_SPACE(struct.calcsize("3i")))
        data, ancdata, flags, _ = self._sock.recvmsg(
            max(size, 1), anc, socket.MSG_CMSG_CLOEXEC)
        fds, cred = [], None
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
                fds.extend(a)
            elif (level == socket.SOL_SOCKET and
                  kind == socket.SCM_CREDENTIALS):
                cred = struct.unpack_from("3i", cdata)
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise ValueError("datagram or control data truncated")
            if fds:
                if data or len(fds) != 1:
                    raise ValueError("memfd entry must be an empty datagram "
                                     "with exactly one fd")
                data = _read_fd(fds[0])
            rec = parse_journal_datagram(data)
        finally:
            for fd in fds:
                os.close(fd)
        if cred is not None:
            rec["_PID"], rec["_UID"], rec["_GID"] = (str(c) for c in cred)
        if fds:
            rec["_STUB_FD"] = "1"
        return rec

    def _run(self):
        while True:
            r, _, _ = select.select([self._sock, self._wake_r], [], [])
            if self._wake_r in r:
                return
            try:
                item = self._receive_one()
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                item = e
            except ValueError as e:
                item = e
            self._queue.put(item)

    def _take(self, timeout):
        item = self._queue.get(timeout=timeout)
        if isinstance(item, Exception):
            raise item
        self.history.append(item)
        return item

    def records(self, timeout=1.0):
        """Wait up to timeout s for a record, then return every record
        received and not yet taken ([] if none came).  A malformed
        datagram raises ValueError here."""
        out = []
        try:
            out.append(self._take(timeout))
            while True:
                out.append(self._take(0))
        except queue.Empty:
            pass
        return out

    def wait_for(self, match, timeout=5.0):
        """Take records until one matches, and return it; None on timeout.

        match is a callable(record) -> bool or a dict whose items must all
        be in the record.  Records taken on the way stay in self.history.
        """
        if not callable(match):
            want = dict(match)
            match = lambda r: all(r.get(k) == v for k, v in want.items())
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                rec = self._take(left)
            except queue.Empty:
                return None
            if match(rec):
                return rec

    def close(self):
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
            self._thread = None
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._sock.close()
            if not self.path.startswith("@"):
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- self-test --------------------------------------------------------------

JOURNAL_SOCKET = "/run/systemd/journal/socket"
BIG = 20 << 20      # more than libsystemd's forced 8 MiB send buffer (x2)

SENDER_C = r"""
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

static int
check(const char *what, int r)
{
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-r));
		exit(1);
	}
	return r;
}

int
main(void)
{
	struct iovec iov[2];
	char *big;

	check("send", sd_journal_send("MESSAGE=hello journal", "PRIORITY=6",
	    "SYSLOG_IDENTIFIER=echotimed", "PEER=127.0.0.1:40000",
	    "LINES=%d", 3, NULL));
	check("newline", sd_journal_send("MESSAGE=two\nlines", "REPEAT=a",
	    "REPEAT=b", NULL));
	check("print", sd_journal_print(4, "printed %d", 42));
	iov[0].iov_base = (char *)"MESSAGE=binary";
	iov[0].iov_len = strlen("MESSAGE=binary");
	iov[1].iov_base = (char *)"BIN=a\0b\xff";
	iov[1].iov_len = 8;
	check("sendv", sd_journal_sendv(iov, 2));
	big = malloc(BIG + 1);
	if (big == NULL)
		return 1;
	memset(big, 'x', BIG);
	big[BIG] = '\0';
	check("big", sd_journal_send("MESSAGE=big", "BIG=%s", big, NULL));
	check("last", sd_journal_send("MESSAGE=last", NULL));
	return 0;
}
"""


def _selftest_parser():
    blob = (b"MESSAGE=hi there\n" + b"MULTI\n" +
            struct.pack("<Q", 6) + b"a\nb\x00c\xff\n" + b"\n" +
            b"K=1\nK=2\nEMPTY=\n")
    rec = parse_journal_datagram(blob)
    assert rec["MESSAGE"] == "hi there", rec
    assert rec["MULTI"].encode("utf-8", "surrogateescape") == b"a\nb\x00c\xff"
    assert rec["K"] == ["1", "2"], rec
    assert rec["EMPTY"] == "", rec
    assert parse_journal_datagram(b"") == {}
    bad = [b"MESSAGE=no newline",
           b"lower=case\n",
           b"9X=digit first\n",
           b"BIN\n" + struct.pack("<Q", 10) + b"short\n",
           b"BIN\n" + struct.pack("<Q", 2) + b"abX",
           b"BIN\n\x01\x00"]
    for b in bad:
        try:
            parse_journal_datagram(b)
        except ValueError:
            continue
        raise AssertionError("accepted malformed %r" % b)
    print("ok: parser (text, binary, repeated, empty, malformed)")


def _selftest_inner(sender):
    # Inside the private mount namespace: hide the host's /run/systemd.
    where = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs",
                    where], check=True)
    os.makedirs("/run/systemd/journal", exist_ok=True)
    with JournalStub(JOURNAL_SOCKET) as j:
        p = subprocess.Popen([sender])
        assert p.wait(timeout=60) == 0, "sender failed: %d" % p.returncode
        got = []
        while not got or got[-1].get("MESSAGE") != "last":
            more = j.records(timeout=10)
            assert more, "records missing after %r" % [
                r.get("MESSAGE") for r in got]
            got.extend(more)
    msgs = [r["MESSAGE"] for r in got]
    assert msgs == ["hello journal", "two\nlines", "printed 42", "binary",
                    "big", "last"], msgs
    r = got[0]
    assert (r["PRIORITY"], r["SYSLOG_IDENTIFIER"], r["PEER"], r["LINES"]) \
        == ("6", "echotimed", "127.0.0.1:40000", "3"), r
    assert "CODE_FILE" not in r, r
    assert r["_PID"] == str(p.pid) and r["_UID"] == "0", r
    assert got[1]["REPEAT"] == ["a", "b"], got[1]
    assert got[2]["PRIORITY"] == "4", got[2]
    b = got[3]["BIN"].encode("utf-8", "surrogateescape")
    assert b == b"a\x00b\xff", b
    big = got[4]
    assert big.get("_STUB_FD") == "1", "big entry did not come as a memfd"
    assert len(big["BIG"]) == BIG and set(big["BIG"]) == {"x"}
    assert all("_STUB_FD" not in r for r in got[:4] + got[5:])
    print("ok: %d records from sd_journal_send via %s (text, binary, "
          "repeated, NUL bytes, %d MiB memfd)" % (len(got), JOURNAL_SOCKET,
                                                  BIG >> 20))


def _selftest():
    _selftest_parser()
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("SKIP: the libsystemd part needs root and unshare(1)")
        return 77
    tmp = tempfile.mkdtemp(prefix="journalstub.")
    try:
        src = os.path.join(tmp, "sender.c")
        exe = os.path.join(tmp, "sender")
        with open(src, "w") as f:
            f.write(SENDER_C)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs",
                                "libsystemd"], check=True,
                               capture_output=True, text=True).stdout.split()
        subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror",
                        "-DBIG=%d" % BIG, "-o", exe, src] + flags,
                       check=True)
        cmd = ["unshare", "--mount", "--propagation", "private", "--",
               sys.executable, os.path.abspath(__file__),
               "--selftest-inner", exe]
        return subprocess.run(cmd).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _dump(path):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with JournalStub(path) as j:
        print("listening on %s" % path, file=sys.stderr, flush=True)
        try:
            while True:
                for r in j.records(timeout=3600):
                    print(json.dumps(r, ensure_ascii=True), flush=True)
        except KeyboardInterrupt:
            return 0


def main(argv):
    if argv[1:2] == ["--selftest"]:
        return _selftest()
    if argv[1:2] == ["--selftest-inner"] and len(argv) == 3:
        _selftest_inner(argv[2])
        return 0
    if argv[1:2] == ["--dump"] and len(argv) == 3:
        return _dump(argv[2])
    print("usage: journalstub.py --selftest | --dump PATH", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
