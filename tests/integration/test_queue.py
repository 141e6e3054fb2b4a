#!/usr/bin/env python3
"""Integration tests: the durable queue, retries and the heraldd daemon.

Drives the real `herald` CLI (embedded engine and through the daemon) and
`heraldd` against loopback receivers, and checks both what the receivers got
and what the queue (herald log/show/queue) says.

Environment (set by `make check`):
  HERALD              absolute path of the built herald CLI (required)
  HERALDD             absolute path of the built heraldd daemon (required)
  HERALD_PLUGIN_PATH  build directory holding the webhook plugin

Run by hand from the build directory:
  HERALD=$PWD/herald HERALDD=$PWD/heraldd HERALD_PLUGIN_PATH=$PWD/plugins \
      python3 ../tests/integration/test_queue.py [SCENARIO...]

Prints TAP on stdout; exits non-zero if any test failed. Every process
started here is bounded by a timeout and killed by PID in a finally block.
"""

import grp
import json
import os
import re
import signal
import stat
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "servers"))

from taplib import bail_out, diag, done_testing, is_, like, ok, run_scenarios, skip  # noqa: E402
from receiver import Receiver  # noqa: E402

HERALD = os.environ.get("HERALD")
HERALDD = os.environ.get("HERALDD")
RUN_TIMEOUT = 30          # seconds for one herald invocation
RECEIVER_MAX = 120        # receivers stop themselves after this long
DAEMON_START = 5          # seconds for heraldd to answer a ping
DAEMON_STOP = 12          # SIGTERM drains for at most 10 s

UUID7_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")

# Proxy variables would make libcurl send loopback requests elsewhere.
_DROP_ENV = ("HERALD_CONFIG", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
             "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")

# The retry policy every scenario starts from: quick, deterministic.
FAST_RETRY = {"schedule": ["200ms", "200ms"], "max_attempts": 4, "max_age": "1h",
              "jitter": 0.0, "disable_after": 10}


# ---------------------------------------------------------------------------
# running herald
# ---------------------------------------------------------------------------

def _cut(s, n=3000):
    return s if len(s) <= n else s[:n] + "...[%d more chars]" % (len(s) - n)


class Result:
    def __init__(self, argv, rc, out, err, elapsed, timed_out=False):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.elapsed, self.timed_out = elapsed, timed_out

    def describe(self):
        args = " ".join(a if isinstance(a, str) else repr(a) for a in self.argv[1:])
        lines = ["cmd: herald %s" % _cut(args, 400),
                 "exit: %s%s  (%.2fs)" % (self.rc, " TIMED OUT" if self.timed_out else "",
                                          self.elapsed)]
        lines += ["stdout: " + l for l in _cut(self.out).splitlines()] or ["stdout: (empty)"]
        lines += ["stderr: " + l for l in _cut(self.err).splitlines()] or ["stderr: (empty)"]
        return "\n".join(lines)

    def value(self):
        """stdout parsed as JSON (any type), or None."""
        try:
            return json.loads(self.out)
        except ValueError:
            return None

    def json(self):
        """stdout parsed as one JSON object, or {}."""
        v = self.value()
        return v if isinstance(v, dict) else {}

    def rows(self):
        """stdout parsed as a JSON array of objects, or []."""
        v = self.value()
        return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []

    def delivery(self, i=0):
        try:
            d = self.json()["deliveries"][i]
        except (TypeError, KeyError, IndexError):
            return {}
        return d if isinstance(d, dict) else {}


def herald_env(tmp):
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    # Keep herald away from the real user's files (state, queue, config).
    env["HOME"] = str(tmp)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_RUNTIME_DIR", "run")):
        p = Path(tmp) / sub
        p.mkdir(mode=0o700, exist_ok=True)
        env[var] = str(p)
    return env


def run(tmp, args, input=None, timeout=RUN_TIMEOUT):
    """Run herald with args; input (str/bytes) is fed on stdin, else /dev/null."""
    argv = [HERALD] + list(args)
    kw = dict(capture_output=True, timeout=timeout, env=herald_env(tmp), cwd=str(tmp))
    if input is None:
        kw["stdin"] = subprocess.DEVNULL
    else:
        kw["input"] = input.encode("utf-8") if isinstance(input, str) else input
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, **kw)
        rc, out, err, to = p.returncode, p.stdout, p.stderr, False
    except subprocess.TimeoutExpired as e:   # subprocess.run kills the child
        rc, out, err, to = None, e.stdout or b"", e.stderr or b"", True
    elapsed = time.monotonic() - t0
    return Result(argv, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                  elapsed, to)


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------

def _val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if "." in repr(v) or "e" in repr(v) else repr(v) + ".0"
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, (list, tuple)):
        return "[%s]" % ", ".join(_val(x) for x in v)
    if isinstance(v, dict):
        return "{ %s }" % " ".join("%s = %s;" % (k, _val(x)) for k, x in v.items())
    raise TypeError(v)


def write_config(tmp, channels, name="herald.conf", retry=FAST_RETRY, socket_name="d.sock",
                 db_name="q.db", extra=None):
    """A libconfig file whose database and socket live in tmp. Returns its path."""
    lines = ["# herald queue integration test config",
             "database = %s;" % _val(str(Path(tmp) / db_name)),
             "socket = %s;" % _val(str(Path(tmp) / socket_name))]
    if retry is not None:
        lines.append("retry = %s;" % _val(retry))
    for k, v in (extra or {}).items():
        lines.append("%s = %s;" % (k, _val(v)))
    lines.append("channels = (")
    for i, ch in enumerate(channels):
        items = "\n".join("    %s = %s;" % (k, _val(v)) for k, v in ch.items())
        lines.append("  {\n%s\n  }%s" % (items, "," if i < len(channels) - 1 else ""))
    lines.append(");")
    path = Path(tmp) / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def hook(name, url, **kw):
    ch = {"name": name, "plugin": "webhook", "url": url, "timeout": 2}
    ch.update(kw)
    return ch


def receiver(*responses):
    return Receiver(responses=list(responses) or None, max_seconds=RECEIVER_MAX)


_held = []


def dead_port():
    """A loopback port nobody listens on: bound and kept bound without listen() for the
    test's life, so connecting is refused and no other process can take the port meanwhile
    (a bound-then-closed port could be reused by a parallel test)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    _held.append(s)
    return s.getsockname()[1]


def event_of(req):
    try:
        v = json.loads(req["body"])
    except (ValueError, KeyError, TypeError):
        return None
    return v if isinstance(v, dict) else None


def ids_of(r):
    return [(event_of(q) or {}).get("id") for q in r.requests()]


def reqs_diag(r, res=None, name="receiver", limit=20):
    lines = []
    if res is not None:
        lines.append(res.describe() if hasattr(res, "describe") else str(res))
    reqs = r.requests()
    t0 = reqs[0]["t"] if reqs else 0
    lines.append("%s got %d request(s)" % (name, len(reqs)))
    for q in reqs[:limit]:
        lines.append("  +%.3fs %s %s body=%s" % (q["t"] - t0, q["method"], q["path"],
                                                  q["body"][:300]))
    if len(reqs) > limit:
        lines.append("  ... %d more" % (len(reqs) - limit))
    return "\n".join(lines)


def gaps(r):
    ts = [q["t"] for q in r.requests()]
    return [round(b - a, 3) for a, b in zip(ts, ts[1:])]


def wait_until(pred, timeout, step=0.05):
    """Poll pred() until it is truthy or timeout seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def show(tmp, cfg, eid):
    # Options before the id: `show ID --json` is checked once, in retry_then_success.
    res = run(tmp, ["-c", cfg, "show", "--json", eid])
    return res, res.json()


def show_delivery(shown, i=0):
    try:
        d = shown["deliveries"][i]
    except (TypeError, KeyError, IndexError):
        return {}
    return d if isinstance(d, dict) else {}


def log_rows(tmp, cfg, *filters):
    res = run(tmp, ["-c", cfg, "log", "--json", "-n", "100000"] + list(filters))
    return res, res.rows()


def queue_counts(tmp, cfg, channel):
    res = run(tmp, ["-c", cfg, "queue", "--json"])
    for row in res.rows():
        if row.get("channel") == channel:
            return res, row
    return res, {}


# ---------------------------------------------------------------------------
# the daemon and its socket
# ---------------------------------------------------------------------------

class Client:
    """A newline-delimited JSON connection to heraldd's socket."""

    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, obj):
        self.s.sendall((json.dumps(obj) + "\n").encode("utf-8"))

    def recv(self):
        """The next reply object, or None on EOF, timeout or garbage."""
        try:
            while b"\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    return None
                self.buf += chunk
        except OSError:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return {"unparsable": line.decode("utf-8", "replace")}

    def call(self, obj):
        try:
            self.send(obj)
        except OSError:
            return None
        return self.recv()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def submit_req(title, to=None, **event):
    ev = {"type": event.pop("type", "queue.test"), "title": title}
    ev.update(event)
    req = {"op": "submit", "event": ev}
    if to is not None:
        req["to"] = list(to)
    return req


def pipeline(client, reqs, on_reply=None, timeout=30.0):
    """Send every request on one connection (a writer thread) while reading
    the replies in order. Returns the replies read (stops at EOF/timeout)."""
    lines = [(json.dumps(q) + "\n").encode("utf-8") for q in reqs]
    werr = []

    def writer():
        try:
            for i in range(0, len(lines), 50):
                client.s.sendall(b"".join(lines[i:i + 50]))
        except OSError as e:
            werr.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    replies = []
    deadline = time.monotonic() + timeout
    while len(replies) < len(reqs) and time.monotonic() < deadline:
        rep = client.recv()
        if rep is None:
            break
        replies.append(rep)
        if on_reply:
            on_reply(len(replies), rep)
    t.join(5)
    return replies


class Daemon:
    """heraldd --foreground with stderr in a file; always stop() it in finally."""

    def __init__(self, tmp, cfg, sock_name="d.sock", verbose=False, tag="heraldd"):
        self.tmp, self.cfg, self.verbose = tmp, cfg, verbose
        self.sock = str(Path(tmp) / sock_name)
        self.log_path = Path(tmp) / ("%s.stderr" % tag)
        self.proc = None
        self.logf = None
        self.rc = None

    def start(self):
        """Start and wait until the socket answers a ping. True when it does."""
        self.logf = open(self.log_path, "ab")
        argv = [HERALDD, "-c", self.cfg, "--foreground"] + (["-v"] if self.verbose else [])
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, env=herald_env(self.tmp), cwd=self.tmp)
        deadline = time.monotonic() + DAEMON_START
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with Client(self.sock, timeout=1) as c:
                    rep = c.call({"op": "ping"})
                if isinstance(rep, dict) and rep.get("ok") is True:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def terminate(self, timeout=DAEMON_STOP):
        """SIGTERM and wait; (exit code or None if still running, seconds)."""
        if not self.alive():
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.rc = None
        return self.rc, time.monotonic() - t0

    def kill9(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        """Cleanup: whatever state it is in, it is gone afterwards."""
        if self.alive():
            self.kill9()
        if self.logf is not None:
            self.logf.close()
            self.logf = None

    def describe(self, tail=60):
        st = ("running" if self.alive() else
              "exited %s" % (self.proc.returncode if self.proc else "(never started)"))
        lines = ["heraldd pid %s, %s; cmd: %s -c %s --foreground" % (self.pid, st, HERALDD,
                                                                     self.cfg)]
        log = self.log().splitlines()
        if len(log) > tail:
            lines.append("  ... %d earlier log lines" % (len(log) - tail))
        lines += ["  stderr: " + l for l in log[-tail:]] or ["  stderr: (empty)"]
        return "\n".join(lines)


def started(dm, what):
    """Start dm, recording a test; False (and the test fails) when it does not come up."""
    up = dm.start()
    ok(up, "%s: heraldd starts and answers a ping on its socket" % what, dm.describe)
    return up


# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------

SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


@scenario
def retry_then_success():
    with tempfile.TemporaryDirectory() as tmp, receiver("500", "500", "200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h")])
        res = run(tmp, ["-c", cfg, "send", "--wait=20s", "--json", "-e", "retry.test", "Retry me"])
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_(res.rc, 0, "500,500,200 with --wait: exit 0", d)
        reqs = r.requests()
        is_([q["method"] for q in reqs], ["POST"] * 3, "500,500,200: exactly 3 POSTs", d)
        eids = ids_of(r)
        eid = res.json().get("id")
        ok(len(eids) == 3 and len(set(eids)) == 1 and eids[0] == eid and
           UUID7_RE.match(str(eid)),
           "500,500,200: all 3 POSTs carry the event id --json printed",
           lambda: "ids received %r, --json id %r\n%s" % (eids, eid, d()))
        dv = res.delivery()
        is_({k: dv.get(k) for k in ("verdict", "status", "code", "state", "attempts")},
            {"verdict": "ok", "status": "ok", "code": 200, "state": "sent", "attempts": 3},
            "500,500,200: --json delivery is ok/sent after 3 attempts", d)
        g = gaps(r)
        ok(len(g) == 2 and all(x >= 0.18 for x in g),
           "500,500,200: retries follow the 200ms schedule (gaps >= 0.18 s)",
           lambda: "gaps %r\n%s" % (g, d()))
        sres, shown = show(tmp, cfg, eid or "none")
        sd = show_delivery(shown)
        log_ = sd.get("attempts_log") if isinstance(sd.get("attempts_log"), list) else []
        is_({"exit": sres.rc, "state": sd.get("state"), "attempts": sd.get("attempts"),
             "log": [(a.get("verdict"), a.get("status"), a.get("code")) for a in log_]},
            {"exit": 0, "state": "sent", "attempts": 3,
             "log": [("retry", "server", 500), ("retry", "server", 500), ("ok", "ok", 200)]},
            "show --json: state sent, 3 attempts logged (server, server, ok)", sres.describe)
        starts = [a.get("started_ms") for a in log_]
        ok(len(starts) == 3 and all(isinstance(s, int) for s in starts) and
           all(b - a >= 180 for a, b in zip(starts, starts[1:])),
           "show --json: attempts_log started_ms are >= 180 ms apart",
           lambda: "started_ms %r\n%s" % (starts, sres.describe()))
        is_((shown.get("event") or {}).get("id"), eid, "show --json: event.id is the event's id",
            sres.describe)
        res2 = run(tmp, ["-c", cfg, "show", eid or "none", "--json"])
        is_((res2.rc, res2.value()), (0, sres.value()),
            "show EVENT_ID --json (option after the id) prints the same JSON", res2.describe)


@scenario
def retry_after_429():
    with tempfile.TemporaryDirectory() as tmp, receiver("429;Retry-After=2", "200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h")])
        res = run(tmp, ["-c", cfg, "send", "--wait=20s", "--json", "Rate limited"])
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_((res.rc, len(r.requests())), (0, 2), "429 Retry-After: 2, then 200: exit 0, 2 requests", d)
        g = gaps(r)
        ok(len(g) == 1 and g[0] >= 2.0,
           "429 Retry-After: 2 is a floor: the retry came >= 2.0 s after the first request "
           "(schedule says 200ms)", lambda: "gap %r\n%s" % (g, d()))
        sres, shown = show(tmp, cfg, res.json().get("id") or "none")
        sd = show_delivery(shown)
        log_ = sd.get("attempts_log") if isinstance(sd.get("attempts_log"), list) else []
        is_((sd.get("state"), sd.get("attempts"), [a.get("status") for a in log_]),
            ("sent", 2, ["rate_limited", "ok"]),
            "show: sent after 2 attempts (rate_limited, ok)", sres.describe)


@scenario
def timeout_then_ok():
    with tempfile.TemporaryDirectory() as tmp, receiver("hang;delay=5", "200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h", timeout=1)])
        res = run(tmp, ["-c", cfg, "send", "--wait=20s", "--json", "Hang first"])
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_((res.rc, len(r.requests())), (0, 2),
            "hang (timeout = 1) then 200 with --wait: exit 0, 2 requests", d)
        ok(res.elapsed < 4.5, "hang then 200: the 1 s timeout cut the hanging attempt short",
           lambda: "took %.2f s\n%s" % (res.elapsed, d()))
        sres, shown = show(tmp, cfg, res.json().get("id") or "none")
        sd = show_delivery(shown)
        log_ = sd.get("attempts_log") if isinstance(sd.get("attempts_log"), list) else []
        is_((sd.get("state"), [(a.get("verdict"), a.get("status")) for a in log_]),
            ("sent", [("retry", "timeout"), ("ok", "ok")]),
            "show: first attempt status timeout (retry), second ok; state sent", sres.describe)


@scenario
def refused_until_dead():
    with tempfile.TemporaryDirectory() as tmp:
        port = dead_port()
        # Global max_attempts 4; the channel's own retry group overrides it with 3.
        cfg = write_config(tmp, [hook("hook", "http://127.0.0.1:%d/h" % port,
                                      retry={"max_attempts": 3})])
        res = run(tmp, ["-c", cfg, "send", "--wait=20s", "--json", "Nobody home"])
        is_(res.rc, 1, "refused with --wait, channel max_attempts = 3: exit 1", res.describe)
        is_(res.delivery().get("state"), "dead", "refused: --json state dead", res.describe)
        sres, shown = show(tmp, cfg, res.json().get("id") or "none")
        sd = show_delivery(shown)
        log_ = sd.get("attempts_log") if isinstance(sd.get("attempts_log"), list) else []
        is_((sd.get("state"), sd.get("attempts"), [a.get("status") for a in log_]),
            ("dead", 3, ["connect"] * 3),
            "show: dead after exactly 3 attempts (per-channel retry override), each status connect",
            lambda: res.describe() + "\n" + sres.describe())


@scenario
def permanent_failures():
    for spec, status in (("404", "rejected"), ("301;Location=/elsewhere", "redirect")):
        code = spec.split(";")[0]
        with tempfile.TemporaryDirectory() as tmp, receiver(spec, "200") as r:
            cfg = write_config(tmp, [hook("hook", r.url + "/h")])
            res = run(tmp, ["-c", cfg, "send", "--wait=10s", "--json", "Permanent"])
            time.sleep(0.5)   # a (wrong) retry would come after 200 ms
            d = lambda: reqs_diag(r, res)  # noqa: E731
            dv = res.delivery()
            is_({"exit": res.rc, "requests": len(r.requests()), "state": dv.get("state"),
                 "verdict": dv.get("verdict"), "status": dv.get("status")},
                {"exit": 1, "requests": 1, "state": "failed", "verdict": "failed",
                 "status": status},
                "HTTP %s with --wait: exit 1, exactly one request, state failed" % code, d)
            sres, shown = show(tmp, cfg, res.json().get("id") or "none")
            sd = show_delivery(shown)
            is_((sd.get("state"), sd.get("attempts")), ("failed", 1),
                "HTTP %s: show says failed after 1 attempt" % code, sres.describe)


@scenario
def no_wait_then_retry_dead():
    with tempfile.TemporaryDirectory() as tmp, receiver("500") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h")])
        res = run(tmp, ["-c", cfg, "send", "--json", "-e", "nowait.one", "No wait"])
        time.sleep(0.5)   # nothing may retry in the background after the CLI exited
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_((res.rc, len(r.requests())), (1, 1), "500 without --wait: exit 1, exactly one request", d)
        eid1 = res.json().get("id")
        is_(res.delivery().get("state"), "pending", "500 without --wait: --json state pending", d)
        lres, rows = log_rows(tmp, cfg)
        is_([(x.get("event"), x.get("channel"), x.get("state"), x.get("attempts"), x.get("code"))
             for x in rows],
            [(eid1, "hook", "pending", 1, 500)],
            "log --json: the delivery is pending after 1 attempt (code 500)", lres.describe)
        ok(rows and isinstance(rows[0].get("next_at"), int),
           "log --json: the pending delivery has a next_at", lres.describe)

        res = run(tmp, ["-c", cfg, "retry", "--dead"])
        is_((res.rc, res.out), (3, "0 deliveries queued for a new attempt\n"),
            "retry --dead with nothing dead: exit 3, '0 deliveries queued ...'", res.describe)

        # The same queue under a policy allowing one attempt: a new event dies at once.
        cfg1 = write_config(tmp, [hook("hook", r.url + "/h")], name="one.conf",
                            retry=dict(FAST_RETRY, max_attempts=1))
        res = run(tmp, ["-c", cfg1, "send", "--json", "-e", "nowait.two", "Die at once"])
        eid2 = res.json().get("id")
        is_((res.rc, res.delivery().get("state")), (1, "dead"),
            "max_attempts = 1, 500: exit 1, --json state dead", lambda: reqs_diag(r, res))
        lres, rows = log_rows(tmp, cfg, "-s", "dead")
        is_([(x.get("event"), x.get("state")) for x in rows], [(eid2, "dead")],
            "log -s dead lists exactly the dead delivery", lres.describe)
        dead_id = rows[0].get("id") if rows else None

        res = run(tmp, ["-c", cfg, "retry", "--dead"])
        is_((res.rc, res.out), (0, "1 delivery queued for a new attempt\n"),
            "retry --dead: exit 0, '1 delivery queued for a new attempt'", res.describe)
        lres, rows = log_rows(tmp, cfg, "-e", "nowait.two")
        is_([(x.get("id"), x.get("state")) for x in rows], [(dead_id, "pending")],
            "after retry --dead the delivery is pending again", lres.describe)
        lres, rows = log_rows(tmp, cfg, "-s", "dead")
        is_(rows, [], "after retry --dead nothing is dead", lres.describe)
        lres, rows = log_rows(tmp, cfg, "-e", "nowait.one")
        is_([(x.get("state"), x.get("attempts")) for x in rows], [("pending", 1)],
            "the first event's delivery is untouched (pending, 1 attempt)", lres.describe)
        time.sleep(0.3)
        is_(len(r.requests()), 2, "no process attempted anything in the background",
            lambda: reqs_diag(r))


@scenario
def idempotency():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h")])
        args = ["-c", cfg, "send", "--idempotency-key", "nightly-42"]
        first = run(tmp, args + ["--json", "Once"])
        eid = first.json().get("id")
        is_((first.rc, first.json().get("duplicate")), (0, False),
            "idempotency: first send exit 0, duplicate false", lambda: reqs_diag(r, first))
        second = run(tmp, args + ["--json", "Twice"])
        is_({"exit": second.rc, "duplicate": second.json().get("duplicate"),
             "id": second.json().get("id")},
            {"exit": 0, "duplicate": True, "id": eid},
            "idempotency: second --json send: exit 0, duplicate true, the original id",
            lambda: reqs_diag(r, second))
        third = run(tmp, args + ["Thrice"])
        is_((third.rc, third.err),
            (0, "herald: idempotency key 'nightly-42' was already used by event %s; not sent "
                "again\n" % eid),
            "idempotency: third send: exit 0, stderr names the key and the original event",
            lambda: reqs_diag(r, third))
        time.sleep(0.2)
        is_(ids_of(r), [eid], "idempotency: the receiver got exactly one request, the first event",
            lambda: reqs_diag(r))
        lres, rows = log_rows(tmp, cfg)
        is_(len(rows), 1, "idempotency: the queue holds one delivery", lres.describe)


@scenario
def disable_after_failures():
    with tempfile.TemporaryDirectory() as tmp, receiver("500") as r, receiver("200") as o:
        cfg = write_config(tmp, [hook("flaky", r.url + "/h", retry={"disable_after": 2}),
                                 hook("other", o.url + "/o")])
        res = run(tmp, ["-c", cfg, "send", "--to", "flaky", "--wait=2s", "--json", "Flaky"])
        time.sleep(0.3)
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_((res.rc, len(r.requests())), (1, 2),
            "disable_after = 2: exit 1 and the attempts stop after 2 consecutive failures", d)
        lres, rows = log_rows(tmp, cfg, "-C", "flaky")
        is_([(x.get("state"), x.get("attempts")) for x in rows], [("pending", 2)],
            "disable_after: the delivery is held pending (2 attempts), not dead", lres.describe)
        lres, rows = log_rows(tmp, cfg, "-e", "herald.channel.disabled")
        is_(sorted(x.get("channel") for x in rows), ["other"],
            "disable_after: a herald.channel.disabled event is queued to the other channel only",
            lres.describe)


@scenario
def gone_disables_channel():
    with tempfile.TemporaryDirectory() as tmp, \
            receiver("410", "200") as ra, receiver("200") as rb:
        cfg = write_config(tmp, [hook("gone", ra.url + "/a"), hook("other", rb.url + "/b")])
        dm = Daemon(tmp, cfg, verbose=True)
        try:
            r1 = run(tmp, ["-c", cfg, "send", "--to", "gone", "--json", "First"])
            id1 = r1.json().get("id")
            dv = r1.delivery()
            is_({"exit": r1.rc, "verdict": dv.get("verdict"), "state": dv.get("state"),
                 "requests": len(ra.requests())},
                {"exit": 1, "verdict": "disable", "state": "failed", "requests": 1},
                "410: exit 1, verdict disable, state failed", lambda: reqs_diag(ra, r1))
            lres, rows = log_rows(tmp, cfg, "-C", "gone")
            is_([(x.get("event"), x.get("state")) for x in rows], [(id1, "failed")],
                "410: log -C gone shows the delivery failed", lres.describe)
            lres, rows = log_rows(tmp, cfg, "-e", "herald.channel.disabled")
            is_([x.get("channel") for x in rows], ["other"],
                "410: a herald.channel.disabled event is queued to the other channel only",
                lres.describe)

            r2 = run(tmp, ["-c", cfg, "send", "--to", "gone", "--json", "Second"])
            id2 = r2.json().get("id")
            time.sleep(0.3)
            is_((r2.rc, r2.delivery().get("state"), len(ra.requests())), (1, "pending", 1),
                "disabled channel: a new send exits 1, its delivery is held pending, "
                "nothing is attempted", lambda: reqs_diag(ra, r2))
            lres, rows = log_rows(tmp, cfg, "-C", "gone", "-s", "pending")
            is_([(x.get("event"), x.get("attempts")) for x in rows], [(id2, 0)],
                "disabled channel: log shows the held delivery pending with 0 attempts",
                lres.describe)

            if not started(dm, "disabled channel"):
                return
            got = rb.wait_for(1, 3)
            ev = (event_of(got[0]) if got else None) or {}
            is_((len(got), ev.get("type"), (ev.get("fields") or {}).get("channel")),
                (1, "herald.channel.disabled", "gone"),
                "the daemon delivers herald.channel.disabled (channel=gone) to the other channel",
                lambda: reqs_diag(rb, dm.describe(), name="other"))
            time.sleep(1.0)
            lres, rows = log_rows(tmp, cfg, "-C", "gone")
            held = [(x.get("state"), x.get("attempts")) for x in rows if x.get("event") == id2]
            is_((len(ra.requests()), held), (1, [("pending", 0)]),
                "the daemon does not attempt the held delivery of the disabled channel",
                lambda: reqs_diag(ra, lres.describe() + "\n" + dm.describe(), name="gone"))

            en = run(tmp, ["-c", cfg, "channel", "enable", "gone"])
            t_enable = time.time()
            is_((en.rc, en.out), (0, "channel 'gone' enabled\n"),
                "herald channel enable gone: exit 0", en.describe)

            def sent_after(eid, t):
                return any((event_of(q) or {}).get("id") == eid and q["t"] >= t
                           for q in ra.requests())

            ok(wait_until(lambda: sent_after(id2, t_enable), 3),
               "after channel enable the running daemon sends the held delivery (within 3 s)",
               lambda: reqs_diag(ra, dm.describe(), name="gone"))
            r3 = run(tmp, ["-c", cfg, "send", "--to", "gone", "--wait=3s", "--json", "Third"])
            id3 = r3.json().get("id")
            ok(r3.rc == 0 and id3 is not None and id3 in ids_of(ra),
               "enabled channel: send --wait through the running daemon delivers (exit 0)",
               lambda: reqs_diag(ra, r3.describe() + "\n" + dm.describe(), name="gone"))
            lres, rows = log_rows(tmp, cfg, "-C", "gone", "-s", "pending")
            if rows:
                # Narrow it down: does a reload (fresh channel state) let them out?
                dm.signal(signal.SIGHUP)
                wait_until(lambda: not log_rows(tmp, cfg, "-C", "gone", "-s", "pending")[1], 3, 0.2)
                lres, rows = log_rows(tmp, cfg, "-C", "gone", "-s", "pending")
                is_(rows, [], "held deliveries are not lost: after a SIGHUP reload nothing of "
                    "the enabled channel is pending", lambda: reqs_diag(ra, dm.describe(),
                                                                         name="gone"))
            ok(id2 in ids_of(ra) and id3 in ids_of(ra),
               "the held and the new event both reached the re-enabled destination",
               lambda: reqs_diag(ra, lres.describe(), name="gone"))
        finally:
            dm.stop()


@scenario
def daemon_basic():
    with tempfile.TemporaryDirectory() as tmp, receiver("200;delay=1.5", "200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h")])
        dm = Daemon(tmp, cfg, verbose=True)
        try:
            if not started(dm, "daemon basic"):
                return
            with Client(dm.sock) as c:
                rep = c.call({"op": "ping"})
            is_(sorted((rep or {}).keys()), ["ok", "version"], "ping -> {ok, version}",
                lambda: "reply %r" % (rep,))
            res = run(tmp, ["-c", cfg, "send", "-p", "Via daemon"])
            eid = res.out.strip()
            ok(res.rc == 0 and UUID7_RE.match(eid) is not None,
               "send -p with the daemon up: exit 0, prints the event id", res.describe)
            ok(res.elapsed < 1.2,
               "send -p returns on the ack, not after the (1.5 s slow) delivery",
               lambda: "took %.2f s\n%s" % (res.elapsed, res.describe()))
            got = r.wait_for(1, 2.5)
            is_([(event_of(q) or {}).get("id") for q in got], [eid],
                "the receiver gets the event within 2 s (+1.5 s server delay)",
                lambda: reqs_diag(r, res) + "\n" + dm.describe())

            res = run(tmp, ["-c", cfg, "send", "--wait=10s", "--json", "Wait via daemon"])
            eid2 = res.json().get("id")
            is_((res.rc, [x.get("state") for x in res.json().get("deliveries") or []]),
                (0, ["sent"]), "send --wait via the daemon: exit 0, delivery sent",
                lambda: reqs_diag(r, res) + "\n" + dm.describe())
            ok(eid2 is not None and eid2 in ids_of(r), "send --wait: the receiver got that event",
               lambda: reqs_diag(r, res))

            # Idempotency through the daemon behaves like the embedded engine.
            k = ["-c", cfg, "send", "--idempotency-key", "dmn-1"]
            a = run(tmp, k + ["-p", "Once"])
            b = run(tmp, k + ["-p", "Twice"])
            aid = a.out.strip()
            is_((a.rc, b.rc, b.out.strip()), (0, 0, aid),
                "daemon: a repeated idempotency key exits 0 and -p prints the original id",
                lambda: a.describe() + "\n" + b.describe())
            is_(b.err, "herald: idempotency key 'dmn-1' was already used by event %s; not sent "
                "again\n" % aid, "daemon: the duplicate send explains itself on stderr",
                b.describe)
            time.sleep(0.3)
            is_(ids_of(r).count(aid), 1, "daemon: the idempotent event was delivered once",
                lambda: reqs_diag(r))

            rc, took = dm.terminate()
            is_(rc, 0, "SIGTERM: heraldd exits 0 within %d s" % DAEMON_STOP,
                lambda: "took %.2f s\n%s" % (took, dm.describe()))
            ok(not os.path.exists(dm.sock), "SIGTERM: the socket file is removed", dm.describe)
        finally:
            dm.stop()


@scenario
def slow_next_to_fast():
    with tempfile.TemporaryDirectory() as tmp, \
            receiver("hang;delay=20") as slow, receiver("200") as fast:
        cfg = write_config(tmp, [hook("slow", slow.url + "/s", timeout=10),
                                 hook("fast", fast.url + "/f")])
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "slow next to fast"):
                return
            reqs = [submit_req("ev %d" % i, to=["slow", "fast"]) for i in range(40)]
            t0 = time.monotonic()
            with Client(dm.sock) as c:
                replies = pipeline(c, reqs, timeout=10)
            ids = [x.get("id") for x in replies if isinstance(x, dict) and x.get("ok") is True]
            is_(len(ids), 40, "40 pipelined submits on one connection are all acked",
                lambda: "replies %r\n%s" % (replies[:5], dm.describe()))
            left = 3.0 - (time.monotonic() - t0)
            fast.wait_for(40, max(left, 0))
            took = time.monotonic() - t0
            got = ids_of(fast)
            ok(sorted(got) == sorted(ids) and took <= 3.05,
               "the fast channel got all 40 events within 3 s while the slow one hangs",
               lambda: "fast got %d (%d distinct acked ids) in %.2f s; slow got %d\n%s" % (
                   len(got), len(set(got) & set(ids)), took, len(slow.requests()),
                   dm.describe()))
            slow.wait_for(1, 5)   # under load the slow channel's first attempt may lag
            ok(len(slow.requests()) >= 1 and not any(
                (x.get("state") == "sent") for x in log_rows(tmp, cfg, "-C", "slow")[1]),
               "the slow channel's attempts are still hanging (received, none sent)",
               lambda: reqs_diag(slow, name="slow"))
        finally:
            slow.stop()   # release the hanging attempts so the drain is quick
            fast.stop()
            dm.stop()


@scenario
def kill9_crash_safety():
    total, kill_at = 5000, 2000
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("fast", r.url + "/f", max_concurrent=32)])
        dm = Daemon(tmp, cfg)
        dm2 = Daemon(tmp, cfg, tag="heraldd2")
        try:
            if not started(dm, "kill -9"):
                return
            pid = dm.pid
            killed = []

            def on_reply(n, rep):
                if n == kill_at and not killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(time.monotonic())

            reqs = [submit_req("crash %d" % i, to=["fast"]) for i in range(total)]
            with Client(dm.sock, timeout=5) as c:
                replies = pipeline(c, reqs, on_reply=on_reply, timeout=30)
            dm.kill9()
            acked = [x["id"] for x in replies if isinstance(x, dict) and x.get("ok") is True]
            diag("kill -9: %d submits acked before the kill took effect; receiver had %d "
                 "requests" % (len(acked), len(r.requests())))
            ok(killed and len(acked) >= kill_at,
               "kill -9: SIGKILL sent after %d acks" % kill_at,
               lambda: "acked %d, replies %r" % (len(acked), replies[-3:]))

            # What the crashed daemon left: every acked event must be stored.
            lres, rows = log_rows(tmp, cfg)
            stored = {x.get("event") for x in rows}
            lost = [i for i in acked if i not in stored]
            is_(len(lost), 0, "kill -9: every acked event is in the queue (acks follow commits)",
                lambda: "%d acked ids missing from the store, e.g. %r\n%s\n%s" % (
                    len(lost), lost[:5], lres.describe()[:1500], dm.describe()))
            inflight = {x.get("event") for x in rows if x.get("state") == "inflight"}
            diag("kill -9: %d deliveries were in flight (leased) at the kill" % len(inflight))

            if not started(dm2, "kill -9 restart"):
                return
            want = set(acked) - set(lost)
            t0 = time.monotonic()
            stuck_since = None
            while time.monotonic() - t0 < 25:
                missing = want - set(ids_of(r))
                if not missing:
                    break
                # Leased claims of the dead daemon only come back when the lease ends.
                if missing <= inflight:
                    stuck_since = stuck_since or time.monotonic()
                    if time.monotonic() - stuck_since > 3:
                        break
                else:
                    stuck_since = None
                time.sleep(0.2)
            missing = want - set(ids_of(r))
            qres, q = queue_counts(tmp, cfg, "fast")
            ok(not missing,
               "kill -9: after the restart every acked event is delivered (%d s budget)" % 25,
               lambda: "%d acked events not delivered after %.1f s; %d of them were leased by "
                       "the killed daemon (a restarted daemon should take them back at once); "
                       "queue: %s\n%s" % (len(missing), time.monotonic() - t0,
                                          len(missing & inflight), qres.out.strip(),
                                          dm2.describe(20)))
            if missing and missing <= inflight:
                # Let the leases run out by hand (what 5 minutes would do), to check that
                # nothing else stands in the way.
                db = sqlite3.connect(str(Path(tmp) / "q.db"), timeout=10)
                try:
                    with db:
                        db.execute("UPDATE deliveries SET lease_until = 0 WHERE state = 1")
                finally:
                    db.close()
                wait_until(lambda: not (want - set(ids_of(r))), 8, 0.2)
                missing = want - set(ids_of(r))
                is_(len(missing), 0, "kill -9: once the leases are expired (by hand) the rest "
                    "is delivered", lambda: dm2.describe(20))

            # Events stored but not yet acknowledged at the kill are delivered too, a
            # little later than the acked ones: let the queue drain before counting.
            def drained():
                row = queue_counts(tmp, cfg, "fast")[1]
                return (row.get("pending"), row.get("inflight")) == (0, 0)
            wait_until(drained, 20, 0.2)
            seen = ids_of(r)
            counts = {}
            for i in seen:
                counts[i] = counts.get(i, 0) + 1
            dups = {i for i, n in counts.items() if n > 1}
            diag("kill -9: %d requests for %d distinct events; %d events delivered more than "
                 "once" % (len(seen), len(counts), len(dups)))
            is_(sorted(dups - inflight), [],
                "kill -9: only events in flight at the kill were delivered twice",
                lambda: "in flight at kill: %d" % len(inflight))
            qres, q = queue_counts(tmp, cfg, "fast")
            is_((q.get("pending"), q.get("inflight")), (0, 0),
                "kill -9: the queue ends empty (pending 0, inflight 0)", qres.describe)
            rc, took = dm2.terminate()
            is_(rc, 0, "kill -9: the restarted daemon stops cleanly on SIGTERM", dm2.describe)
        finally:
            dm.stop()
            dm2.stop()


@scenario
def daemon_and_embedded_together():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        ch = [hook("hook", r.url + "/h")]
        cfg_a = write_config(tmp, ch, name="a.conf", socket_name="a.sock")
        cfg_b = write_config(tmp, ch, name="b.conf", socket_name="b.sock")   # nobody listens
        dm = Daemon(tmp, cfg_a, sock_name="a.sock")
        try:
            if not started(dm, "two processes"):
                return
            box = {}

            def daemon_client():
                with Client(dm.sock) as c:
                    box["replies"] = pipeline(
                        c, [submit_req("daemon %d" % i, to=["hook"]) for i in range(200)],
                        timeout=20)

            t = threading.Thread(target=daemon_client, daemon=True)
            t.start()
            with ThreadPoolExecutor(10) as pool:
                results = list(pool.map(
                    lambda i: run(tmp, ["-c", cfg_b, "send", "-p", "-e", "emb.send",
                                        "embedded %d" % i], timeout=15), range(10)))
            t.join(25)
            replies = box.get("replies") or []
            acked = [x.get("id") for x in replies if isinstance(x, dict) and x.get("ok") is True]
            is_(len(acked), 200, "200 submits to the daemon are acked",
                lambda: "replies %r\n%s" % (replies[-3:], dm.describe()))
            bad = [x for x in results if x.rc != 0]
            is_(len(bad), 0, "10 concurrent embedded sends on the same database: all exit 0",
                lambda: "\n".join(x.describe() for x in bad[:3]))
            emb = [x.out.strip() for x in results]
            want = set(acked) | set(e for e in emb if e)
            wait_until(lambda: want <= set(ids_of(r)), 15, 0.2)
            missing = want - set(ids_of(r))
            is_((len(want), len(missing)), (210, 0),
                "all 210 events (200 via the daemon, 10 embedded) are delivered",
                lambda: "%d missing\n%s" % (len(missing), dm.describe(20)))
            locked = [x.describe() for x in results if "locked" in x.err.lower()]
            if "locked" in dm.log().lower():
                locked.append(dm.describe())
            is_(locked, [], "no process reports 'database is locked'")
            qres, q = queue_counts(tmp, cfg_b, "hook")
            is_((q.get("sent"), q.get("pending"), q.get("inflight")), (210, 0, 0),
                "queue (read by the embedded CLI): 210 sent, nothing pending or in flight",
                qres.describe)
        finally:
            dm.stop()


@scenario
def sighup_reload():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as old, receiver("200") as new:
        cfg = write_config(tmp, [hook("hook", old.url + "/old")])
        good_text = Path(cfg).read_text(encoding="utf-8")
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "SIGHUP"):
                return
            Path(cfg).write_text(good_text + "oops = ;\n", encoding="utf-8")
            dm.signal(signal.SIGHUP)
            refused = wait_until(lambda: "reload refused" in dm.log(), 3)
            ok(refused, "SIGHUP with a broken config: the log says 'reload refused'", dm.describe)
            ok(dm.alive(), "SIGHUP with a broken config: heraldd keeps running", dm.describe)
            with Client(dm.sock) as c:
                rep = c.call(submit_req("after broken reload")) or {}
                w = c.call({"op": "wait", "id": rep.get("id") or "x" * 36,
                            "timeout_ms": 5000}) or {}
            ok(rep.get("ok") is True and w.get("final") is True and rep.get("id") in ids_of(old),
               "after the refused reload the old configuration still delivers (old receiver)",
               lambda: "submit %r\nwait %r\n%s\n%s" % (rep, w, reqs_diag(old, name="old"),
                                                      dm.describe()))
            is_([(x.get("channel"), x.get("state")) for x in w.get("deliveries") or []],
                [("hook", "sent")], "wait op: the delivery is final and sent",
                lambda: "wait reply %r" % (w,))

            write_config(tmp, [hook("hook", new.url + "/new")])
            n_before = dm.log().count("reload")
            dm.signal(signal.SIGHUP)
            wait_until(lambda: dm.log().count("reload") > n_before, 3)
            like(dm.log()[-2000:], r"(?i)reload(ed)?\b(?!.*refused)",
                 "SIGHUP with a fixed config: the log reports the reload", dm.describe)
            before_old = len(old.requests())
            with Client(dm.sock) as c:
                rep = c.call(submit_req("after good reload")) or {}
            got = wait_until(lambda: rep.get("id") in ids_of(new), 3)
            ok(got and len(old.requests()) == before_old,
               "after the reload the new receiver gets the next event, the old one nothing",
               lambda: "submit %r\n%s\n%s\n%s" % (rep, reqs_diag(new, name="new"),
                                                 reqs_diag(old, name="old"), dm.describe()))
            rc, took = dm.terminate()
            is_(rc, 0, "SIGHUP scenario: heraldd stops cleanly", dm.describe)
        finally:
            dm.stop()


@scenario
def socket_permissions():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h")])
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "socket mode"):
                return
            mode = stat.S_IMODE(os.stat(dm.sock).st_mode)
            is_(oct(mode), oct(0o660), "the socket is 0660 by default (owner and group submit)")
        finally:
            dm.stop()
        group = grp.getgrgid(os.getgid()).gr_name
        cfg = write_config(tmp, [hook("hook", r.url + "/h")], socket_name="p.sock",
                           extra={"socket_mode": "0600", "socket_group": group})
        dm = Daemon(tmp, cfg, sock_name="p.sock", tag="heraldd-perm")
        try:
            if not started(dm, "socket_mode and socket_group"):
                return
            st = os.stat(dm.sock)
            is_((oct(stat.S_IMODE(st.st_mode)), st.st_gid), (oct(0o600), os.getgid()),
                "socket_mode and socket_group are applied to the socket")
        finally:
            dm.stop()
        for extra, want in (({"socket_mode": "0999"}, r"bad\.conf:\d+: 'socket_mode' must "
                                                      r"be an octal mode string"),
                            ({"socket_mode": "0066"}, r"lets the owner read and write"),
                            ({"socket_group": "no-such-group-hrld"},
                             r"bad\.conf:\d+: no group 'no-such-group-hrld' on this system; "
                             r"create it")):
            bad = write_config(tmp, [hook("hook", r.url + "/h")], name="bad.conf",
                               socket_name="bad.sock", extra=extra)
            res = subprocess.run([HERALDD, "-c", bad, "--foreground"], capture_output=True,
                                 text=True, env=herald_env(tmp), timeout=10)
            like(res.stderr, want, "bad %s: heraldd refuses to start and says why" % extra,
                 lambda: "exit %s, stderr %r" % (res.returncode, res.stderr))
            is_((res.returncode, os.path.exists(str(Path(tmp) / "bad.sock"))), (2, False),
                "bad %s: exit 2 and no socket left behind" % extra)


@scenario
def blocking_plugins_on_workers():
    plugins = os.environ.get("HERALD_TEST_PLUGINS")
    if not plugins:
        ok(False, "HERALD_TEST_PLUGINS is set (run through make check)")
        return
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        out = Path(tmp) / "slow.txt"
        cfg = write_config(tmp, [
            {"name": "slow", "plugin": "slowsink", "path": str(out), "delay_ms": 1000,
             "max_concurrent": 4},
            hook("fast", r.url + "/f")])
        # HERALD_PLUGIN_PATH wins over plugin_path: give the daemon both directories.
        saved = os.environ.get("HERALD_PLUGIN_PATH", "")
        os.environ["HERALD_PLUGIN_PATH"] = "%s:%s" % (saved, plugins)
        dm = Daemon(tmp, cfg)
        try:
            up = started(dm, "blocking plugins")
            os.environ["HERALD_PLUGIN_PATH"] = saved
            if not up:
                return
            t0 = time.monotonic()
            with Client(dm.sock) as c:
                reps = pipeline(c, [submit_req("block %d" % i) for i in range(4)])
            ids = [x.get("id") for x in reps if isinstance(x, dict)]
            fast = wait_until(lambda: len(ids_of(r)) >= 4, 5)
            t_fast = time.monotonic() - t0
            ok(fast and t_fast < 0.9,
               "the webhook channel delivers all 4 while the blocking plugin sleeps 1 s each",
               lambda: "fast channel got %d after %.2f s" % (len(ids_of(r)), t_fast))
            done = wait_until(lambda: out.exists() and
                              len(out.read_text().splitlines()) >= 4, 8)
            t_slow = time.monotonic() - t0
            ok(done and t_slow < 3.0,
               "4 blocking deliveries of 1 s each finish together on the workers (< 3 s, "
               "4 s one after another)", lambda: "took %.2f s\n%s" % (t_slow, dm.describe()))
            lines = sorted(out.read_text().splitlines()) if out.exists() else []
            is_(lines, ["block %d" % i for i in range(4)],
                "the blocking plugin got each event once", dm.describe)
            is_(len(ids), 4, "4 submits acked")
        finally:
            dm.stop()


@scenario
def max_concurrent_caps_transfers():
    """max_concurrent = 3 against a receiver taking 0.4 s per request: however many the
    dispatcher has claimed ahead, never more than 3 requests are open at once."""
    with tempfile.TemporaryDirectory() as tmp, receiver("200;delay=0.4") as r:
        cfg = write_config(tmp, [hook("narrow", r.url + "/n", max_concurrent=3)])
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "max_concurrent"):
                return
            with Client(dm.sock) as c:
                reps = pipeline(c, [submit_req("narrow %d" % i, to=["narrow"])
                                    for i in range(9)])
            is_(len([x for x in reps if x.get("ok")]), 9, "9 submits acked")
            wait_until(lambda: len(r.requests()) >= 9, 10)
            ts = sorted(q["t"] for q in r.requests())
            most = r.max_open()
            is_(len(ts), 9, "the receiver got all 9", lambda: reqs_diag(r))
            ok(0 < most <= 3, "at most 3 requests open at once (max_concurrent = 3)",
               lambda: "%d open at once\n%s" % (most, reqs_diag(r)))
            ok(len(ts) == 9 and ts[-1] - ts[0] >= 0.75,
               "9 requests of 0.4 s through 3 slots take three waves",
               lambda: reqs_diag(r))
        finally:
            dm.stop()


@scenario
def many_channels_one_host():
    """4 channels of max_concurrent 50 on one receiver taking 0.6 s: 200 transfers at once
    exceed the 64 connections allowed per destination. The rest wait in herald, and their
    2 s timeout only starts when they get a connection, so none times out or is retried."""
    with tempfile.TemporaryDirectory() as tmp, receiver("200;delay=0.6") as r:
        names = ["n%d" % i for i in range(4)]
        cfg = write_config(tmp, [hook(n, r.url + "/" + n, max_concurrent=50, timeout=2)
                                 for n in names])
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "one host"):
                return
            with Client(dm.sock) as c:
                reps = pipeline(c, [submit_req("host %d" % i, to=[names[i % 4]])
                                    for i in range(200)])
            is_(len([x for x in reps if x.get("ok")]), 200, "200 submits acked")
            wait_until(lambda: len(r.requests()) >= 200, 15)
            time.sleep(0.3)
            ts = sorted(q["t"] for q in r.requests())
            is_((len(ts), len(set(ids_of(r)))), (200, 200),
                "the receiver got each of the 200 once", lambda: reqs_diag(r))
            most = r.max_open()
            ok(0 < most <= 64, "at most 64 requests open at once to one destination",
               lambda: "%d open at once" % most)
            wait_until(lambda: len([x for x in log_rows(tmp, cfg)[1]
                                    if x.get("state") == "sent"]) >= 200, 5)
            lres, rows = log_rows(tmp, cfg)
            is_(sorted(set((x.get("state"), x.get("attempts")) for x in rows)), [("sent", 1)],
                "every delivery sent at its first attempt: no transfer timed out waiting",
                lres.describe)
        finally:
            dm.stop()


@scenario
def max_rate_limits_a_channel():
    """max_rate = 5: a burst of 15 is spread over about two seconds, nothing lost."""
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("slowly", r.url + "/s", max_rate=5)])
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "max_rate"):
                return
            with Client(dm.sock) as c:
                reps = pipeline(c, [submit_req("rate %d" % i, to=["slowly"]) for i in range(15)])
            is_(len([x for x in reps if x.get("ok")]), 15, "15 submits acked")
            wait_until(lambda: len(r.requests()) >= 15, 10)
            ts = sorted(q["t"] for q in r.requests())
            is_(len(ts), 15, "all 15 delivered")
            if len(ts) == 15:
                # A token bucket of one second's worth: 5 at once, then 5 a second.
                first = sum(1 for t in ts if t - ts[0] < 0.9)
                ok(first <= 10, "within 0.9 s at most the burst (5) plus 0.9 s of refill",
                   lambda: "%d in the first 0.9 s" % first)
                ok(ts[-1] - ts[0] >= 1.6, "the burst is spread over at least 1.6 s",
                   lambda: "took %.2f s" % (ts[-1] - ts[0]))
        finally:
            dm.stop()


@scenario
def retention_deletes_old_finished_events():
    """retention = "2s": heraldd deletes finished events older than that, with their
    deliveries and attempts, and says so in its log; an event with a delivery still to make
    (retrying against a refusing port) stays however old. `herald purge` does it by hand,
    and a retention shorter than the idempotency window is refused."""
    port = dead_port()
    slow_retry = dict(FAST_RETRY, schedule=["1h"], max_attempts=3, max_age="2h")
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        extra = {"retention": "2s", "idempotency_window": "1s"}
        cfg = write_config(tmp, [hook("fast", r.url + "/f"),
                                 hook("down", "http://127.0.0.1:%d/d" % port)],
                           retry=slow_retry, extra=extra)
        dm = Daemon(tmp, cfg, verbose=True)
        try:
            if not started(dm, "retention"):
                return
            with Client(dm.sock) as c:
                reps = pipeline(c, [submit_req("keep %d" % i, to=["fast"]) for i in range(5)] +
                                [submit_req("waits", to=["down"])])
            ids = [x.get("id") for x in reps]
            is_(len([x for x in reps if x.get("ok")]), 6, "6 submits acked")
            wait_until(lambda: len(r.requests()) >= 5, 5)
            is_(len(r.requests()), 5, "the 5 fast ones are delivered")
            gone = wait_until(lambda: "retention: deleted 5 events" in dm.log(), 8)
            ok(gone, "heraldd deletes the 5 sent events once older than 2 s, and logs it",
               dm.describe)
            ok("(5 deliveries, 5 attempts)" in dm.log(), "with their deliveries and attempts",
               dm.describe)
            res = run(tmp, ["-c", cfg, "show", ids[0]])
            ok(res.rc != 0 and "no event" in res.err.lower(),
               "herald show: a deleted event is not found", res.describe)
            lres, rows = log_rows(tmp, cfg)
            is_([(x.get("event"), x.get("channel"), x.get("state")) for x in rows],
                [(ids[5], "down", "pending")],
                "the old event still to deliver stays, pending", lres.describe)
        finally:
            dm.stop()

        # herald purge, with the daemon stopped: the waiting event now final (dead).
        res = run(tmp, ["-c", cfg, "purge", "--older-than", "1s"])
        is_((res.rc, res.out.strip()),
            (0, "deleted 0 events (0 deliveries, 0 attempts) and 0 webhook receipts"),
            "herald purge: an event still to deliver is kept", res.describe)
        res = run(tmp, ["-c", cfg, "send", "-e", "p.t", "--to", "fast", "--wait=5s",
                        "soon purged"])
        ok(res.rc == 0, "herald send (embedded) delivers one more", res.describe)
        time.sleep(1.2)
        res = run(tmp, ["-c", cfg, "purge", "--older-than", "1s", "--json"])
        row = res.json()
        is_((row.get("events"), row.get("deliveries"), row.get("attempts")), (1, 1, 1),
            "herald purge --json: the sent event older than 1 s went", res.describe)
        for args, says in ((["purge", "--older-than", "soon"], "is not a duration"),
                           (["purge", "--older-than", "500ms"], "shorter than idempotency_window"),
                           (["purge", "extra"], "takes no arguments")):
            res = run(tmp, ["-c", cfg] + args)
            ok(res.rc != 0 and says in res.err and res.err.count("\n") == 1,
               "herald %s: one-line error (%s)" % (" ".join(args), says), res.describe)
        bad = write_config(tmp, [hook("fast", r.url + "/f")], name="bad.conf",
                           extra={"retention": "1h"})
        res = run(tmp, ["-c", bad, "check"])
        ok(res.rc != 0 and "retention (3600s) is shorter than idempotency_window (86400s)"
           in res.err, "a retention shorter than the idempotency window is refused",
           res.describe)


@scenario
def root_cli_leaves_files_to_their_owner():
    """`sudo herald ...` while heraldd is down: the database and the secret key it creates
    in heraldd's state directory belong to that directory's owner, not to root, or
    heraldd (running as that user) could no longer open them."""
    if os.geteuid() != 0:
        skip("files made by root go to the directory's owner", "needs root")
        return
    nobody = 65534
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        state = Path(tmp) / "state"
        state.mkdir()
        os.chown(str(state), nobody, nobody)
        cfg = write_config(tmp, [hook("fast", r.url + "/f")], db_name="state/q.db")
        res = run(tmp, ["-c", cfg, "send", "--wait=5s", "made by root"])
        ok(res.rc == 0 and len(r.requests()) == 1, "herald send as root delivers", res.describe)
        res = run(tmp, ["-c", cfg, "webhook", "add", "--name", "w", "--url", r.url + "/w",
                        "--events", "*"])
        ok(res.rc == 0, "herald webhook add as root seals its secret with a new key",
           res.describe)
        for name in ("q.db", "secret.key"):
            st = os.stat(str(state / name)) if (state / name).exists() else None
            is_(st and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (nobody, nobody, 0o600),
                "%s: owned by the directory's owner, mode 0600" % name)
        leftovers = sorted(p.name for p in state.iterdir() if p.stat().st_uid != nobody)
        is_(leftovers, [], "no root-owned file left in the state directory")
        res = run(tmp, ["-c", cfg, "webhook", "add", "--name", "w2", "--url", r.url + "/w2",
                        "--events", "*"])
        ok(res.rc == 0, "root goes on using the key its owner keeps in its own directory",
           res.describe)
        stray = Path(tmp) / "stray.secret"   # another user's file in root's directory
        stray.write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
        os.chmod(str(stray), 0o600)
        os.chown(str(stray), nobody, nobody)
        bad = write_config(tmp, [hook("fast", r.url + "/f")], name="stray.conf",
                           db_name="state/q.db", extra={"secret_key": str(stray)})
        res = run(tmp, ["-c", bad, "webhook", "add", "--name", "w3", "--url", r.url + "/w3",
                        "--events", "*"])
        ok(res.rc != 0 and "owned by uid 65534" in res.err,
           "but not another user's key in a directory that user does not own", res.describe)


@scenario
def systemd_notify():
    """heraldd tells systemd (NOTIFY_SOCKET) when it is ready, reloading and stopping."""
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        path = str(Path(tmp) / "notify.sock")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(path)
        ns.settimeout(0.2)
        got = []

        def drain(until, timeout):
            end = time.monotonic() + timeout
            while time.monotonic() < end and until not in got:
                try:
                    got.append(ns.recv(4096).decode())
                except socket.timeout:
                    pass
            return until in got

        cfg = write_config(tmp, [hook("hook", r.url + "/h")])
        os.environ["NOTIFY_SOCKET"] = path
        dm = Daemon(tmp, cfg)
        try:
            up = started(dm, "systemd notify")
            del os.environ["NOTIFY_SOCKET"]
            if not up:
                return
            ok(drain("READY=1", 5), "READY=1 once the socket answers", lambda: repr(got))
            got.clear()
            dm.signal(signal.SIGHUP)
            ok(drain("READY=1", 5) and got[:1] == ["RELOADING=1"],
               "SIGHUP: RELOADING=1, then READY=1", lambda: repr(got))
            got.clear()
            rc, took = dm.terminate()
            ok(drain("STOPPING=1", 2), "SIGTERM: STOPPING=1", lambda: repr(got))
            is_(rc, 0, "and heraldd exits 0")
        finally:
            os.environ.pop("NOTIFY_SOCKET", None)
            dm.stop()
            ns.close()


# ---------------------------------------------------------------------------

def main():
    if not HERALD:
        bail_out("HERALD is not set (path of the built herald binary)")
    if not HERALDD:
        bail_out("HERALDD is not set (path of the built heraldd binary)")
    for p in (HERALD, HERALDD):
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            bail_out("%s is not an executable file" % p)
    diag("HERALD=%s HERALDD=%s" % (HERALD, HERALDD))
    diag("HERALD_PLUGIN_PATH=%s" % os.environ.get("HERALD_PLUGIN_PATH"))
    total = run_scenarios(SCENARIOS, set(sys.argv[1:]))
    diag("total: %.1f s" % total)
    done_testing()


if __name__ == "__main__":
    main()
