"""Listeners on a specific address start before that address is up (as at
boot, when the unit starts after network.target and an address comes
later), and serve once it is: IP_FREEBIND / IPV6_FREEBIND."""
import os
import subprocess
import sys

from lib import BINARY, SLOW, Daemon, check, check_reply, talk, udp_ask

CONFIG = """
listen = (
  { transport = "tcp"; address = "192.0.2.1"; port = 0; },
  { transport = "udp"; address = "192.0.2.1"; port = 0; },
  { transport = "tcp"; address = "2001:db8::1"; port = 0; },
  { transport = "udp"; address = "2001:db8::1"; port = 0; }
);
"""


def _ip(*args):
    subprocess.run(["ip"] + list(args), check=True, timeout=10)


def _inner():
    """Runs inside "unshare --net": only lo, and it has neither address
    when the daemon starts."""
    _ip("link", "set", "lo", "up")
    with Daemon(CONFIG) as d:
        addrs = d.addresses()
        check([t for t, a in addrs] == ["tcp", "udp", "tcp", "udp"], d.status)
        _ip("addr", "add", "192.0.2.1/32", "dev", "lo")
        _ip("-6", "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad")
        for i in range(2):
            check_reply(talk(d.addr("tcp", i), b"late tcp %d\n" % i), "late tcp %d" % i)
            check_reply(udp_ask(d.addr("udp", i), b"late udp %d\n" % i), "late udp %d" % i)
    print("FREEBIND OK " + " ".join(a for t, a in addrs))
    return 0


def test_specific_address_binds_before_it_is_up():
    if os.geteuid() != 0:
        return ("skip", "needs root for a private network namespace")
    p = subprocess.run(["unshare", "--net", "--", sys.executable,
                        os.path.abspath(__file__), "--inner"],
                       capture_output=True, text=True, timeout=30 * SLOW,
                       env=dict(os.environ, ECHOTIMED=BINARY))
    if p.returncode != 0 and "unshare failed" in p.stderr:
        return ("skip", "unshare: " + p.stderr.strip())
    check(p.returncode == 0 and "FREEBIND OK" in p.stdout,
          "inner run failed:\n%s\n%s" % (p.stdout, p.stderr))


if __name__ == "__main__":
    if sys.argv[1:] == ["--inner"]:
        sys.exit(_inner())
    print("run through run.py", file=sys.stderr)
    sys.exit(64)
