"""Tiny TAP (Test Anything Protocol) helper for herald's Python tests.

    from taplib import ok, is_, diag, done_testing
    ok(x == 1, "x is one")
    is_(got, want, "thing matches")
    done_testing()          # prints the plan, exits 1 if anything failed

    run_scenarios([scenario_a, scenario_b])   # each one timed; an exception fails a test
    done_testing()

Output goes to stdout (automake's tap-driver.sh reads it); diagnostics are
'# ' lines on stdout too, so they end up in the test's .log file.
"""

import difflib
import json
import sys
import time
import traceback

_count = 0
_failed = 0
_planned = None


def _out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _comment(text):
    for line in str(text).splitlines() or [""]:
        _out("# " + line if line else "#")


def plan(n):
    """Announce n tests up front (optional; done_testing() plans at the end)."""
    global _planned
    _planned = int(n)
    _out("1..%d" % _planned)


def diag(text):
    """Print diagnostic text as '# ' lines."""
    _comment(text)


note = diag


def _name(name):
    # '#' would start a directive in TAP; keep names plain.
    return str(name).replace("#", "\\#").replace("\n", " ")


def ok(cond, name, diag=None):
    """Record one test; cond is truthy for pass. diag is printed on failure."""
    global _count, _failed
    _count += 1
    if cond:
        _out("ok %d - %s" % (_count, _name(name)))
    else:
        _failed += 1
        _out("not ok %d - %s" % (_count, _name(name)))
        if diag is not None:
            _comment(diag() if callable(diag) else diag)
    return bool(cond)


def skip(name, reason):
    """Record one skipped test."""
    global _count
    _count += 1
    _out("ok %d - %s # SKIP %s" % (_count, _name(name), str(reason).replace("\n", " ")))


def _render(v):
    if isinstance(v, str):
        if "\n" in v:
            return v.splitlines()
        return [repr(v)]
    try:
        return json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False,
                          default=repr).splitlines()
    except (TypeError, ValueError):
        return [repr(v)]


def _same(a, b):
    """== but True/1, False/0 and None/missing are told apart, recursively."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    return a == b


def is_(got, want, name, diag=None):
    """ok(got == want); on failure print got/want and a unified diff."""
    if _same(got, want):
        return ok(True, name)
    lines = ["     got: %r" % (got,), "expected: %r" % (want,)]
    g, w = _render(got), _render(want)
    if len(g) > 1 or len(w) > 1:
        lines.append("diff (-expected +got):")
        lines.extend(difflib.unified_diff(w, g, "expected", "got", lineterm="", n=2))
    if diag is not None:
        lines.append(diag() if callable(diag) else str(diag))
    return ok(False, name, "\n".join(lines))


def like(got, regex, name, diag=None):
    """ok(re.search(regex, got)) with a useful diagnostic."""
    import re
    m = isinstance(got, str) and re.search(regex, got) is not None
    msg = "     got: %r\nexpected to match: %r" % (got, regex)
    if diag is not None:
        msg += "\n" + (diag() if callable(diag) else str(diag))
    return ok(m, name, msg)


def run_scenarios(fns, only=()):
    """Call each function of fns in turn (only those named in `only`, when it is not empty).
    One that raises is a failed test "scenario NAME ran to the end" with the traceback; the
    others go on. Each one's time is a diagnostic. Returns the seconds they took in all."""
    t_all = time.monotonic()
    for fn in fns:
        if only and fn.__name__ not in only:
            continue
        t0 = time.monotonic()
        try:
            fn()
        except Exception:
            ok(False, "scenario %s ran to the end" % fn.__name__, traceback.format_exc())
        diag("%s: %.1f s" % (fn.__name__, time.monotonic() - t0))
    return time.monotonic() - t_all


def bail_out(reason):
    _out("Bail out! %s" % str(reason).replace("\n", " "))
    sys.exit(255)


def failed():
    return _failed


def done_testing():
    """Print the trailing plan (if none was given) and exit: 0 iff all passed."""
    if _planned is None:
        _out("1..%d" % _count)
    elif _planned != _count:
        _comment("planned %d tests but ran %d" % (_planned, _count))
        sys.exit(255)
    if _failed:
        _comment("failed %d of %d tests" % (_failed, _count))
    sys.exit(1 if _failed else 0)
