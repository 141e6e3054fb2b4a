"""apprise_api.py - Apprise's own Python API delivering notifications, for bench.py.

Run with the interpreter Debian's apprise package is installed for (/usr/bin/python3).
Usage: apprise_api.py URL_BASE TARGETS N
Adds TARGETS json:// URLs (URL_BASE/a0, /a1, ...) to one Apprise object and calls notify()
N times with the title and body herald's benchmark events carry; prints one JSON line:
notify() calls that reported success, deliveries attempted, and the seconds they took.
"""
import json
import sys
import time

import apprise


def main():
    base, targets, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    a = apprise.Apprise()
    for i in range(targets):
        if not a.add("%s/a%d" % (base, i)):
            raise SystemExit("apprise_api: cannot add %s/a%d" % (base, i))
    ok = 0
    t0 = time.perf_counter()
    for i in range(n):
        if a.notify(body="a benchmark notification", title="bench %d" % i):
            ok += 1
    seconds = time.perf_counter() - t0
    print(json.dumps({"version": apprise.__version__, "targets": targets, "notify_calls": n,
                      "ok": ok, "deliveries": n * targets, "seconds": seconds}))


if __name__ == "__main__":
    main()
