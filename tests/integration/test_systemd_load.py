"""libsystemd is loaded only when a systemd feature is in use (src/sdlib.c).

- `echotimed -i` under a super-server (no systemd environment) maps no
  libsystemd, nor what it pulls in, and answers;
- NOTIFY_SOCKET, socket activation (LISTEN_FDS, --accept too) and the
  journal still work, and then the library is loaded;
- with the library unreadable (an empty file bind-mounted over it in a
  private mount namespace) inetd mode still serves, a NOTIFY_SOCKET gives
  a warning instead of silence, and passed sockets a clear error.

The mount namespace tests need root and unshare(1), and skip otherwise.
"""
import ctypes.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from lib import (BINARY, SLOW, WRAP, Daemon, Inetd, TestFailure, check,
                 check_reply, connect, in_mount_namespace, recv_until)
from test_systemd import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
# What libsystemd.so.0 brings with it on Debian 12.
CHAIN = ("libsystemd.so", "liblzma.so", "libzstd.so", "liblz4.so",
         "libcap.so", "libgcrypt.so", "libgpg-error.so")
SYSTEMD_ENV = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
               "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
               "INVOCATION_ID")


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    return ("skip", "missing %s" % ", ".join(missing)) if missing else None


def clean_env(**extra):
    e = {k: v for k, v in os.environ.items() if k not in SYSTEMD_ENV}
    e.update(extra)
    return e


def mapped(pid):
    """The shared objects mapped into pid."""
    with open("/proc/%d/maps" % pid) as f:
        return {line.split()[-1] for line in f if ".so" in line}


def chain_in(objs):
    return sorted(o for o in objs if any(os.path.basename(o).startswith(c)
                                         for c in CHAIN))


CONF = 'log = { level = "info"; };\n'


def test_inetd_maps_no_libsystemd():
    """(a) A super-server's session: no systemd variable, no libsystemd."""
    if WRAP:
        return ("skip", "the maps of a wrapped process are the wrapper's")
    with Inetd(CONF, clean_env()) as s:
        s.ask(b"hello")
        loaded = chain_in(mapped(s.proc.pid))
        check(not loaded, "echotimed -i without systemd mapped %s" % loaded)
        s.finish()
        check("connection from 127.0.0.1" in s.logtext(), s.logtext())


def test_notify_loads_libsystemd():
    """(b) NOTIFY_SOCKET: READY=1 and STATUS= as before, library loaded."""
    with Daemon('listen = ( { transport = "tcp"; address = "127.0.0.1"; '
                'port = 0; } );\n', env=clean_env()) as d:
        check(re.search(r"listening on tcp 127\.0\.0\.1:\d+", d.status),
              "READY=1 without STATUS: %r" % d.status)
        s = connect(d.addr())
        s.sendall(b"hi\n")
        check_reply(recv_until(s, 1), "hi")
        s.close()
        if not WRAP:
            check(any("libsystemd.so" in o for o in mapped(d.pid)),
                  "NOTIFY_SOCKET set but libsystemd not loaded")
        d.drain_notify()
        d.signal(signal.SIGTERM)
        d.wait_notify("STOPPING", "1")
        check(d.proc.wait(10 * SLOW) == 0, d.logtext())


def test_accept_socket_loads_libsystemd():
    """(c) systemd's Accept=yes: fd 3 and LISTEN_FDS=1, so sd_listen_fds()
    is needed and the library is loaded; the session answers."""
    skip = need("systemd-socket-activate")
    if skip:
        return skip
    d = tempfile.mkdtemp(prefix="echotimed-sdload-")
    conf = os.path.join(d, "echotimed.conf")
    with open(conf, "w") as f:
        f.write(CONF)
    # Hold the session open and report the maps from the daemon's side:
    # the activator forks it, so find it as the activator's child.
    act = subprocess.Popen(["systemd-socket-activate", "--accept", "-l",
                            "127.0.0.1:%d" % free_port()] + WRAP + [BINARY, "-c", conf],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=clean_env())
    try:
        line = act.stderr.readline().decode()
        m = re.search(r"Listening on 127\.0\.0\.1:(\d+)", line)
        check(m, "systemd-socket-activate says %r" % line)
        s = connect(("127.0.0.1", int(m.group(1))))
        s.sendall(b"one\n")
        check_reply(recv_until(s, 1), "one")
        kids = [int(p) for p in os.listdir("/proc") if p.isdigit()
                and _ppid(int(p)) == act.pid]
        check(len(kids) == 1, "activator children %r" % kids)
        if not WRAP:
            check(any("libsystemd.so" in o for o in mapped(kids[0])),
                  "LISTEN_FDS set but libsystemd not loaded")
        s.sendall(b"exit\n")
        check_reply(recv_until(s, until_eof=True), "exit")
        s.close()
    finally:
        act.kill()
        act.wait()
        act.stderr.close()
        shutil.rmtree(d, ignore_errors=True)


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


# ---- in a private mount namespace ------------------------------------------

def _in_namespace(name):
    """Run _inner_NAME in a private mount namespace: (skip, why) or its
    result."""
    return in_mount_namespace(os.path.abspath(__file__), "--inner", name)


def _inner_journal():
    from journalstub import JournalStub
    where = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", where],
                   check=True)
    os.makedirs("/run/systemd/journal", exist_ok=True)
    conf = 'log = { target = "journal"; level = "info"; };\n'
    with JournalStub("/run/systemd/journal/socket") as j:
        with Inetd(conf, clean_env()) as s:
            s.ask(b"to the journal")
            objs = sorted(mapped(s.proc.pid)) if not WRAP else ["libsystemd.so"]
            s.finish()
            stderr = s.logtext()
        j.wait_for(lambda r: "closed" in r.get("MESSAGE", ""), 10)
        recs = j.history + j.records(timeout=0.3)
    return {"records": recs, "stderr": stderr, "maps": objs}


def test_journal_inetd_loads_libsystemd():
    """(d) log target "journal" in inetd mode: structured records arrive,
    nothing on stderr, and the library was loaded for it."""
    res = _in_namespace("journal")
    if isinstance(res, tuple):
        return res
    msgs = [r.get("MESSAGE", "") for r in res["records"]]
    check(any(m.startswith("connection from 127.0.0.1") and "inetd" in m
              for m in msgs), "no connection record: %r" % msgs)
    closed = [r for r in res["records"] if "closed" in r.get("MESSAGE", "")]
    check(closed and closed[0].get("TRANSPORT") == "inetd" and
          closed[0].get("SYSLOG_IDENTIFIER") == "echotimed", repr(closed))
    check(res["stderr"].strip() == "", "journal target wrote stderr:\n"
          + res["stderr"])
    check(any("libsystemd.so" in o for o in res["maps"]),
          "journal logging without libsystemd loaded?")


def _hide_libsystemd():
    """An empty file over libsystemd.so.0: dlopen() then fails."""
    path = ctypes.util.find_library("systemd")
    for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
              "/usr/lib64", "/lib", "/usr/lib"):
        if path and os.path.exists(os.path.join(d, path)):
            path = os.path.realpath(os.path.join(d, path))
            break
    else:
        raise TestFailure("cannot find libsystemd.so.0 (%r)" % path)
    empty = tempfile.NamedTemporaryFile(delete=False)
    empty.close()
    subprocess.run(["mount", "--bind", empty.name, path], check=True)
    return path


def _inner_nolib():
    from lib import NotifySocket
    hidden = _hide_libsystemd()
    out = {"hidden": hidden}
    # inetd mode needs nothing from it.
    with Inetd(CONF, clean_env()) as s:
        s.ask(b"still served")
        s.finish()
        out["inetd_log"] = s.logtext()
    # A daemon told to notify: it warns, and serves all the same.
    d = tempfile.mkdtemp(prefix="echotimed-sdload-")
    ns = NotifySocket(d)
    conf = os.path.join(d, "c.conf")
    with open(conf, "w") as f:
        f.write('listen = ( { transport = "tcp"; address = "127.0.0.1"; '
                'port = 0; } );\n')
    log = open(os.path.join(d, "log"), "wb")
    p = subprocess.Popen(WRAP + [BINARY, "-c", conf], stdout=log,
                         stderr=subprocess.STDOUT,
                         env=clean_env(NOTIFY_SOCKET=ns.path))
    deadline = time.monotonic() + 10 * SLOW
    text = ""
    while time.monotonic() < deadline and "ready: " not in text:
        time.sleep(0.05)
        with open(os.path.join(d, "log")) as f:
            text = f.read()
        if p.poll() is not None:
            break
    out["notify_alive"] = p.poll() is None
    out["notify_log"] = text
    out["notify_msgs"] = ns.recv(0.2) is not None
    p.terminate()
    out["notify_rc"] = p.wait(10)
    log.close()
    ns.close()
    # Passed sockets cannot be adopted without sd_listen_fds_with_names().
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    if lst.fileno() != 3:
        os.dup2(lst.fileno(), 3)
    r = subprocess.run(["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + WRAP +
                       [BINARY, "-c", conf], pass_fds=(3,),
                       capture_output=True, text=True, timeout=10 * SLOW,
                       env=clean_env(LISTEN_FDS="1"))
    out["listen_rc"] = r.returncode
    out["listen_err"] = r.stderr
    shutil.rmtree(d, ignore_errors=True)
    return out


def test_without_libsystemd():
    """libsystemd.so.0 unreadable: inetd mode serves; NOTIFY_SOCKET gives
    a warning; passed sockets an error naming LISTEN_FDS."""
    res = _in_namespace("nolib")
    if isinstance(res, tuple):
        return res
    check("connection from 127.0.0.1" in res["inetd_log"], res["inetd_log"])
    log = res["notify_log"]
    check(re.search(r"warning: NOTIFY_SOCKET is set but .*libsystemd\.so\.0",
                    log), "no warning about libsystemd:\n" + log)
    check(res["notify_alive"], "daemon did not keep serving:\n" + log)
    check(not res["notify_msgs"], "a notification without libsystemd?")
    check(res["notify_rc"] == 0, "daemon exited %s" % res["notify_rc"])
    check(res["listen_rc"] != 0 and
          re.search(r"LISTEN_FDS.*libsystemd\.so\.0", res["listen_err"]),
          "passed sockets without libsystemd: rc %s:\n%s"
          % (res["listen_rc"], res["listen_err"]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--inner":
        sys.path.insert(0, HERE)
        print(json.dumps(globals()["_inner_" + sys.argv[2]]()))
        sys.exit(0)
    print("run through run.py", file=sys.stderr)
    sys.exit(64)
