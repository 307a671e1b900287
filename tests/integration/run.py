#!/usr/bin/env python3
"""Run the integration tests: every test_* function of every test_*.py.

usage: run.py [NAME-SUBSTRING ...]
Prints one line per test and a closing "N passed, N failed" line; exit 1 if
anything failed.  Each test has a hard time limit (ECHOTIMED_TEST_TIMEOUT,
default 120 s) so the suite always ends by itself.
"""
import importlib.util
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("test exceeded its time limit")


def main():
    filters = sys.argv[1:]
    limit = int(os.environ.get("ECHOTIMED_TEST_TIMEOUT", "120"))
    signal.signal(signal.SIGALRM, on_alarm)
    tests = []
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(HERE, name))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in sorted(vars(mod)):
            fn = getattr(mod, attr)
            if attr.startswith("test_") and callable(fn):
                full = "%s.%s" % (name[:-3], attr)
                if not filters or any(f in full for f in filters):
                    tests.append((full, fn))
    passed = failed = skipped = 0
    start = time.monotonic()
    for full, fn in tests:
        t0 = time.monotonic()
        signal.alarm(limit)
        try:
            r = fn()
            signal.alarm(0)
            if lib.VALGRIND_REPORTS:
                reports = "\n".join(lib.VALGRIND_REPORTS)
                del lib.VALGRIND_REPORTS[:]
                raise AssertionError("valgrind found errors:\n" + reports)
            if r == "skip" or (isinstance(r, tuple) and r and r[0] == "skip"):
                skipped += 1
                why = r[1] if isinstance(r, tuple) else ""
                print("skip %-60s %s" % (full, why), flush=True)
                continue
            passed += 1
            print("ok   %-60s %5.2fs" % (full, time.monotonic() - t0), flush=True)
        except BaseException as e:  # noqa: includes Timeout and KeyboardInterrupt
            signal.alarm(0)
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            print("FAIL %-60s %5.2fs" % (full, time.monotonic() - t0), flush=True)
            traceback.print_exc()
    print("integration: %.1fs" % (time.monotonic() - start))
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main())
