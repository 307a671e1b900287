"""What one start costs (a super-server pays it per connection, `-i`):
the configuration file is opened once, not once to check it, once for
libconfig and once for the integer scan.  Counted with strace(1).
"""
import os
import re
import shutil
import subprocess
import tempfile

from lib import BINARY, SLOW, check


def test_config_file_opened_once():
    if shutil.which("strace") is None:
        return ("skip", "missing strace")
    d = tempfile.mkdtemp(prefix="echotimed-startcost-")
    try:
        main = os.path.join(d, "main.conf")
        with open(main, "w") as f:
            f.write('log = { level = "warning"; };\n'
                    'session = { idle_timeout = 0; };\n')
        trace = os.path.join(d, "trace")
        # LeakSanitizer cannot run under ptrace (make asan): leaks are
        # the other tests' business here.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        r = subprocess.run(["strace", "-f", "-e", "trace=open,openat",
                            "-o", trace, BINARY, "-t", "-c", main],
                           capture_output=True, text=True, env=env,
                           timeout=30 * SLOW)
        check(r.returncode == 0, r.stdout + r.stderr)
        check("configuration OK" in r.stdout, r.stdout)
        with open(trace) as f:
            opens = [l for l in f if re.search(r'open(at)?\(.*"%s"'
                                               % re.escape(main), l)]
        check(len(opens) == 1, "%s opened %d times:\n%s"
              % (main, len(opens), "".join(opens)))
        check("O_CLOEXEC" in opens[0], opens[0])
    finally:
        shutil.rmtree(d, ignore_errors=True)
