#!/usr/bin/env python3
"""Integration tests: drive the real `herald` CLI against a loopback receiver.

Environment (set by `make check`):
  HERALD              absolute path of the built herald CLI (required)
  HERALD_PLUGIN_PATH  build directory holding the webhook plugin
  srcdir              top source directory (not needed: paths are found
                      relative to this file)

Run by hand from the build directory:
  HERALD=$PWD/herald HERALD_PLUGIN_PATH=$PWD/plugins \
      python3 ../tests/integration/test_send.py

Prints TAP on stdout; exits non-zero if any test failed.
"""

import email.utils
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "servers"))

from taplib import bail_out, diag, done_testing, is_, like, ok  # noqa: E402
from receiver import Receiver  # noqa: E402

HERALD = os.environ.get("HERALD")
VERSION = "0.1.0"
RUN_TIMEOUT = 30          # seconds for one herald invocation
RECEIVER_MAX = 60         # receivers stop themselves after this long
BODY_LIMIT = 64 * 1024

UUID7_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
TS_RE = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
ONE_ERR_LINE_RE = r"\Aherald: [^\n]+\n?\Z"
EVENT_KEYS = ["body", "data", "fields", "id", "severity", "source", "timestamp", "title", "type"]

# Proxy variables would make libcurl send loopback requests elsewhere.
_DROP_ENV = ("HERALD_CONFIG", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
             "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

class Result:
    def __init__(self, argv, rc, out, err, elapsed, timed_out=False):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.elapsed, self.timed_out = elapsed, timed_out

    def describe(self):
        def cut(s, n=2000):
            return s if len(s) <= n else s[:n] + "...[%d more chars]" % (len(s) - n)
        args = " ".join(a if isinstance(a, str) else repr(a) for a in self.argv[1:])
        lines = ["cmd: herald %s" % cut(args, 400),
                 "exit: %s%s  (%.2fs)" % (self.rc, " TIMED OUT" if self.timed_out else "",
                                          self.elapsed)]
        lines += ["stdout: " + l for l in cut(self.out).splitlines()] or ["stdout: (empty)"]
        lines += ["stderr: " + l for l in cut(self.err).splitlines()] or ["stderr: (empty)"]
        return "\n".join(lines)

    def json(self):
        """stdout parsed as one JSON object, or None."""
        try:
            v = json.loads(self.out)
        except ValueError:
            return None
        return v if isinstance(v, dict) else None

    def delivery(self, i=0):
        """deliveries[i] of the --json output, or {} if absent."""
        v = self.json()
        try:
            d = v["deliveries"][i]
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


def run(tmp, args, input=None):
    """Run herald with args; input (str/bytes) is fed on stdin, else /dev/null."""
    argv = [HERALD] + list(args)
    kw = dict(capture_output=True, timeout=RUN_TIMEOUT, env=herald_env(tmp), cwd=str(tmp))
    if input is None:
        kw["stdin"] = subprocess.DEVNULL
    else:
        kw["input"] = input.encode("utf-8") if isinstance(input, str) else input
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, **kw)
        rc, out, err, to = p.returncode, p.stdout, p.stderr, False
    except subprocess.TimeoutExpired as e:
        rc, out, err, to = None, e.stdout or b"", e.stderr or b"", True
    elapsed = time.monotonic() - t0
    return Result(argv, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                  elapsed, to)


def _cfg_value(v, indent):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, dict):
        inner = " ".join("%s = %s;" % (k, _cfg_value(x, indent)) for k, x in v.items())
        return "{ %s }" % inner
    raise TypeError(v)


def write_config(tmp, channels, name="herald.conf", raw=None):
    """Write a libconfig file with the given channel dicts (or raw text)."""
    path = Path(tmp) / name
    if raw is None:
        lines = ["# herald integration test config", "channels = ("]
        for i, ch in enumerate(channels):
            items = "\n".join("    %s = %s;" % (k, _cfg_value(v, 4)) for k, v in ch.items())
            lines.append("  {\n%s\n  }%s" % (items, "," if i < len(channels) - 1 else ""))
        lines.append(");")
        raw = "\n".join(lines) + "\n"
    path.write_text(raw, encoding="utf-8")
    return str(path)


def hook(name, url, **kw):
    ch = {"name": name, "plugin": "webhook", "url": url, "method": "POST", "timeout": 2,
          "headers": {"X-Token": "abc"}}
    ch.update(kw)
    return ch


def receiver(*responses):
    return Receiver(responses=list(responses) or None, max_seconds=RECEIVER_MAX)


def dead_port():
    """A loopback port nobody listens on (bound, then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def event_of(req):
    """The JSON body of a logged request, or None."""
    try:
        v = json.loads(req["body"])
    except (ValueError, KeyError, TypeError):
        return None
    return v if isinstance(v, dict) else None


def reqs_diag(r, res=None):
    lines = []
    if res is not None:
        lines.append(res.describe())
    reqs = r.requests()
    lines.append("receiver got %d request(s)" % len(reqs))
    for q in reqs:
        lines.append("  %s %s%s headers=%s body=%s" % (
            q["method"], q["path"], ("?" + q["query"]) if q["query"] else "",
            json.dumps(q["headers"], sort_keys=True), q["body"][:500]))
    return "\n".join(lines)


def uuid7_ms(u):
    return int(u.replace("-", "")[:12], 16)


# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------

SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


@scenario
def version():
    with tempfile.TemporaryDirectory() as tmp:
        res = run(tmp, ["--version"])
        is_(res.rc, 0, "--version exits 0", res.describe)
        is_((res.out.splitlines() or [""])[0], "herald " + VERSION,
            "--version prints 'herald %s'" % VERSION, res.describe)


@scenario
def send_ok():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/hook")])
        t0 = time.time()
        res = run(tmp, ["-c", cfg, "send", "--json", "-e", "backup.failed", "-s", "error",
                        "-a", "cron", "-f", "host=db1", "-f", "disk=sda",
                        "Backup failed", "disk full"])
        t1 = time.time()
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_(res.rc, 0, "send 200: exit 0", d)
        is_(res.err, "", "send 200: nothing on stderr", d)
        reqs = r.requests()
        is_(len(reqs), 1, "send 200: receiver got exactly one request", d)
        q = reqs[0] if reqs else {"method": None, "path": None, "headers": {}, "body": ""}
        is_(q["method"], "POST", "send 200: method POST", d)
        is_(q["path"], "/hook", "send 200: path /hook", d)
        is_(q["headers"].get("content-type"), "application/json",
            "send 200: Content-Type application/json", d)
        is_(q["headers"].get("x-token"), "abc", "send 200: configured X-Token header sent", d)
        like(q["headers"].get("user-agent"), r"\Aherald/", "send 200: User-Agent herald/...", d)
        ev = event_of(q)
        ok(ev is not None, "send 200: body is a JSON object", d)
        ev = ev or {}
        is_(sorted(ev.keys()), EVENT_KEYS, "send 200: body has exactly the event keys", d)
        got = {k: ev.get(k) for k in ("type", "severity", "title", "body", "source", "fields", "data")}
        is_(got, {"type": "backup.failed", "severity": "error", "title": "Backup failed",
                  "body": "disk full", "source": "cron", "fields": {"host": "db1", "disk": "sda"},
                  "data": None},
            "send 200: type/severity/title/body/source/fields/data as sent", d)
        ts = ev.get("timestamp")
        like(ts, TS_RE.pattern, "send 200: timestamp is RFC3339 UTC with ms and Z", d)
        try:
            tsv = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
        except (TypeError, ValueError):
            tsv = None
        ok(tsv is not None and t0 - 5 <= tsv <= t1 + 5,
           "send 200: timestamp is now", lambda: "timestamp %r, run %.3f..%.3f" % (ts, t0, t1))
        eid = ev.get("id")
        like(eid, UUID7_RE.pattern, "send 200: id is a lower-case UUIDv7", d)
        ok(isinstance(eid, str) and UUID7_RE.match(eid)
           and t0 * 1000 - 5000 <= uuid7_ms(eid) <= t1 * 1000 + 5000,
           "send 200: UUIDv7 embeds the current time", lambda: "id %r, run %.3f..%.3f" % (eid, t0, t1))
        out = res.json()
        ok(out is not None, "send 200: --json prints one JSON object", d)
        out = out or {}
        ok(isinstance(eid, str) and out.get("id") == eid, "send 200: --json id equals the id sent",
           lambda: "--json id %r, sent id %r" % (out.get("id"), eid))
        dl = out.get("deliveries")
        is_(len(dl) if isinstance(dl, list) else None, 1, "send 200: --json has one delivery", d)
        dv = res.delivery()
        is_({k: dv.get(k) for k in ("channel", "plugin", "verdict", "status", "code", "retry_at")},
            {"channel": "hook", "plugin": "webhook", "verdict": "ok", "status": "ok", "code": 200,
             "retry_at": None},
            "send 200: --json delivery channel/plugin/verdict/status/code/retry_at", d)
        em = dv.get("elapsed_ms")
        ok(isinstance(em, int) and not isinstance(em, bool) and 0 <= em <= (t1 - t0) * 1000 + 1000,
           "send 200: elapsed_ms is a plausible integer", lambda: "elapsed_ms %r" % (em,))


@scenario
def print_id_and_method():
    with tempfile.TemporaryDirectory() as tmp, receiver("204") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/put", method="PUT",
                                      headers={"Authorization": "Bearer t0k", "X-Token": "abc"})])
        res = run(tmp, ["-c", cfg, "send", "-p", "Hello"])
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_(res.rc, 0, "-p with 204: exit 0", d)
        reqs = r.requests()
        ev = event_of(reqs[0]) if reqs else None
        is_(res.out, "%s\n" % (ev or {}).get("id"), "-p prints exactly the event id line", d)
        is_([(q["method"], q["headers"].get("authorization")) for q in reqs],
            [("PUT", "Bearer t0k")], "method = PUT and Authorization header are used", d)


@scenario
def status_matrix():
    cases = [
        # spec, expected (verdict, status, code); status None = not asserted
        ("500;body=oops", "retry", "server", 500),
        ("503", "retry", "server", 503),
        ("408", "retry", None, 408),
        ("404", "failed", "rejected", 404),
        ("410", "disable", "gone", 410),
        ("301;Location=/followed", "failed", "redirect", 301),
    ]
    for spec, verdict, status, code in cases:
        with tempfile.TemporaryDirectory() as tmp, receiver(spec, "200") as r:
            cfg = write_config(tmp, [hook("hook", r.url + "/hook")])
            res = run(tmp, ["-c", cfg, "send", "--json", "-e", "t.matrix", "Matrix"])
            dv = res.delivery()
            got = {"exit": res.rc, "verdict": dv.get("verdict"), "status": dv.get("status"),
                   "code": dv.get("code"), "requests": [q["path"] for q in r.requests()]}
            want = {"exit": 1, "verdict": verdict, "status": status, "code": code,
                    "requests": ["/hook"]}
            if status is None:
                got.pop("status")
                want.pop("status")
            is_(got, want, "HTTP %s -> exit 1, verdict %s%s, one request (no redirect followed)"
                % (spec.split(";")[0], verdict, ", status " + status if status else ""),
                lambda: reqs_diag(r, res))


@scenario
def rate_limited():
    with tempfile.TemporaryDirectory() as tmp, receiver("429;Retry-After=30") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/hook")])
        t0 = time.time()
        res = run(tmp, ["-c", cfg, "send", "--json", "Slow down"])
        t1 = time.time()
        dv = res.delivery()
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_({"exit": res.rc, "verdict": dv.get("verdict"), "status": dv.get("status"),
             "code": dv.get("code"), "requests": len(r.requests())},
            {"exit": 1, "verdict": "retry", "status": "rate_limited", "code": 429, "requests": 1},
            "429 Retry-After: 30 -> exit 1, retry, rate_limited", d)
        ra = dv.get("retry_at")
        ok(isinstance(ra, int) and (t0 + 25) * 1000 <= ra <= (t1 + 35) * 1000,
           "429 Retry-After: 30 -> retry_at = now + 30 s (unix ms)",
           lambda: "retry_at %r; now %.0f ms, offset %s s" % (
               ra, t1 * 1000, None if not isinstance(ra, (int, float)) else round(ra / 1000 - t1, 1)))

    with tempfile.TemporaryDirectory() as tmp:
        when = time.time() + 60
        date = email.utils.formatdate(when, usegmt=True)
        with receiver("429;Retry-After=" + date) as r:
            cfg = write_config(tmp, [hook("hook", r.url + "/hook")])
            res = run(tmp, ["-c", cfg, "send", "--json", "Slow down"])
            t1 = time.time()
            dv = res.delivery()
            is_((res.rc, dv.get("verdict"), dv.get("status")), (1, "retry", "rate_limited"),
                "429 Retry-After HTTP-date -> exit 1, retry, rate_limited", lambda: reqs_diag(r, res))
            ra = dv.get("retry_at")
            ok(isinstance(ra, int) and (when - 5) * 1000 <= ra <= (when + 5) * 1000,
               "429 Retry-After HTTP-date (+60 s) -> retry_at parsed from the date",
               lambda: "Retry-After: %s; retry_at %r; now+%s s" % (
                   date, ra, None if not isinstance(ra, (int, float)) else round(ra / 1000 - t1, 1)))


@scenario
def timeout():
    with tempfile.TemporaryDirectory() as tmp, receiver("hang;delay=10") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/hook", timeout=1)])
        res = run(tmp, ["-c", cfg, "send", "--json", "Hang"])
        dv = res.delivery()
        is_({"exit": res.rc, "verdict": dv.get("verdict"), "status": dv.get("status"),
             "requests": len(r.requests())},
            {"exit": 1, "verdict": "retry", "status": "timeout", "requests": 1},
            "hanging receiver, timeout = 1 -> exit 1, retry, status timeout", lambda: reqs_diag(r, res))
        ok(0.8 <= res.elapsed < 8, "hanging receiver: herald waited ~1 s and gave up in < 8 s",
           lambda: "took %.2f s" % res.elapsed)


@scenario
def refused():
    with tempfile.TemporaryDirectory() as tmp:
        port = dead_port()
        cfg = write_config(tmp, [hook("hook", "http://127.0.0.1:%d/hook" % port)])
        res = run(tmp, ["-c", cfg, "send", "--json", "Nobody home"])
        dv = res.delivery()
        is_({"exit": res.rc, "verdict": dv.get("verdict"), "status": dv.get("status"),
             "code": dv.get("code")},
            {"exit": 1, "verdict": "retry", "status": "connect", "code": 0},
            "connection refused -> exit 1, retry, status connect, code 0", res.describe)


@scenario
def adhoc_url():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [], raw="channels = ();\n")
        res = run(tmp, ["send", "--config", cfg, "--to", "json://127.0.0.1:%d/adhoc" % r.port,
                        "--json", "-e", "adhoc.test", "Ad hoc"])
        d = lambda: reqs_diag(r, res)  # noqa: E731
        is_(res.rc, 0, "--to json:// URL with no channels configured: exit 0", d)
        reqs = r.requests()
        is_([(q["method"], q["path"], q["headers"].get("content-type")) for q in reqs],
            [("POST", "/adhoc", "application/json")], "--to json://: one POST to /adhoc", d)
        ev = event_of(reqs[0]) if reqs else {}
        is_((ev or {}).get("type"), "adhoc.test", "--to json://: event type delivered", d)
        is_(res.delivery().get("plugin"), "webhook", "--to json://: delivered by the webhook plugin", d)


@scenario
def channel_selection():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as a, receiver("200") as b:
        cfg = write_config(tmp, [
            hook("hook", a.url + "/hook"),
            {"name": "other", "url": "json://127.0.0.1:%d/path" % b.port},
        ])

        def counts():
            return {"hook": len(a.requests()), "other": len(b.requests())}

        def d(res):
            return lambda: reqs_diag(a, res) + "\n-- other:\n" + reqs_diag(b)

        res = run(tmp, ["-c", cfg, "send", "--to", "hook", "Only hook"])
        is_((res.rc, counts()), (0, {"hook": 1, "other": 0}),
            "--to hook: only that channel's receiver gets a request", d(res))
        res = run(tmp, ["-c", cfg, "send", "Everyone"])
        is_((res.rc, counts()), (0, {"hook": 2, "other": 1}),
            "no --to: every configured channel gets the event", d(res))
        is_([(q["method"], q["path"]) for q in b.requests()], [("POST", "/path")],
            "channel given as json:// URL (plugin inferred) posts to its path", d(res))
        res = run(tmp, ["-c", cfg, "send", "--to", "hook,other", "Comma"])
        is_((res.rc, counts()), (0, {"hook": 3, "other": 2}),
            "--to hook,other: comma-separated list selects both", d(res))


@scenario
def bad_input():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/hook")])
        syntax = write_config(tmp, None, name="syntax.conf", raw=(
            "channels = (\n"
            '  { name = "hook"; plugin = "webhook"; url = "%s/hook"; }\n'
            '  { name = "two"; plugin = "webhook"; url = "%s/hook"; }\n'
            ");\n") % (r.url, r.url))                    # missing comma: line 3
        unknown = write_config(tmp, None, name="unknown.conf", raw=(
            "# test\n"
            "channels = (\n"
            '  { name = "hook"; plugin = "webhook";\n'
            '    url = "%s/hook";\n'
            '    colour = "red";\n'                       # line 5
            "  }\n"
            ");\n") % r.url)
        cases = [
            ("unknown option", ["-c", cfg, "send", "--no-such-option", "T"], None, []),
            ("missing summary", ["-c", cfg, "send", "-e", "x.y"], None, []),
            ("-s loud", ["-c", cfg, "send", "-s", "loud", "T"], None, [r"loud"]),
            ("--to nosuch", ["-c", cfg, "send", "--to", "nosuch", "T"], None, [r"nosuch"]),
            ("--to json:// (malformed URL)", ["-c", cfg, "send", "--to", "json://", "T"], None, []),
            ("-d invalid JSON", ["-c", cfg, "send", "-d", "{bad", "T"], None, []),
            ("config syntax error", ["-c", syntax, "send", "T"], None,
             [re.escape(syntax) + ":3\\b"]),
            ("unknown channel setting", ["-c", unknown, "send", "T"], None,
             [r"colour", re.escape(unknown) + ":5\\b"]),
            ("body over 64 KiB on stdin", ["-c", cfg, "send", "T", "-"], "x" * (BODY_LIMIT + 1),
             [r"65536|64 ?Ki?B|64 ?[kK]\b"]),
            ("invalid UTF-8 title", ["-c", cfg, "send", b"\xff\xfe"], None, [r"(?i)utf-?8"]),
        ]
        for name, args, inp, mentions in cases:
            before = len(r.requests())
            res = run(tmp, args, input=inp)
            d = lambda: reqs_diag(r, res)  # noqa: E731
            is_({"exit": res.rc, "new requests": len(r.requests()) - before},
                {"exit": 2, "new requests": 0}, "bad input (%s): exit 2, nothing sent" % name, d)
            like(res.err, ONE_ERR_LINE_RE,
                 "bad input (%s): one stderr line starting 'herald: '" % name, d)
            for pat in mentions:
                like(res.err, pat, "bad input (%s): stderr mentions /%s/" % (name, pat), d)


@scenario
def stdin_body():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/hook")])
        res = run(tmp, ["-c", cfg, "send", "-e", "x.y", "T", "-"], input="from stdin")
        reqs = r.requests()
        ev = (event_of(reqs[0]) if len(reqs) == 1 else None) or {}
        is_((res.rc, ev.get("type"), ev.get("title"), ev.get("body")),
            (0, "x.y", "T", "from stdin"), "body '-' is read from stdin", lambda: reqs_diag(r, res))


@scenario
def notify_send_compat():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/hook")])

        def send(args, what):
            before = len(r.requests())
            res = run(tmp, ["-c", cfg, "send"] + args)
            reqs = r.requests()[before:]
            ev = (event_of(reqs[0]) if len(reqs) == 1 else None) or {}
            is_((res.rc, len(reqs)), (0, 1), "%s: exit 0, one request" % what,
                lambda: reqs_diag(r, res))
            return ev, (lambda: reqs_diag(r, res))

        ev, d = send(["-u", "critical", "-a", "myapp", "-c", "email.arrived", "-h", "string:foo:bar",
                      "-i", "dialog", "Mail", "You have mail"], "notify-send options")
        is_({k: ev.get(k) for k in ("type", "severity", "source", "title", "body", "fields")},
            {"type": "email.arrived", "severity": "critical", "source": "myapp", "title": "Mail",
             "body": "You have mail", "fields": {"foo": "bar", "icon": "dialog"}},
            "notify-send: -c is the type, -u critical, -a source, -h and -i become fields", d)

        ev, d = send(["-u", "low", "Low"], "-u low")
        is_(ev.get("severity"), "info", "-u low -> severity info", d)

        ev, d = send(["Defaults"], "no options")
        is_((ev.get("type"), ev.get("severity")), ("notification", "notice"),
            "defaults: type notification, severity notice", d)

        ev, d = send(["-e", "deploy.done", "-c", "infra", "-t", "5000",
                      "-d", '{"a":[1,2,{"b":null}],"s":"\u00e9"}', "Deployed"], "-e -c -t -d")
        f = ev.get("fields") if isinstance(ev.get("fields"), dict) else {}
        is_((ev.get("type"), f.get("category"), str(f.get("expire_time"))),
            ("deploy.done", "infra", "5000"), "-e wins over -c; -c -> field category; -t -> expire_time", d)
        is_(ev.get("data"), {"a": [1, 2, {"b": None}], "s": "\u00e9"}, "-d JSON -> data", d)


@scenario
def no_channels():
    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_config(tmp, [], raw="channels = ();\n")
        res = run(tmp, ["-c", cfg, "send", "Nowhere"])
        is_(res.rc, 3, "no channels and no --to: exit 3", res.describe)
        like(res.err, r"\Aherald: ", "no channels: stderr explains with 'herald: '", res.describe)


@scenario
def test_command():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/hook"),
                                 hook("dead", "http://127.0.0.1:%d/hook" % dead_port())])
        res = run(tmp, ["-c", cfg, "test", "hook"])
        time.sleep(0.3)
        is_({"exit": res.rc, "requests": len(r.requests())}, {"exit": 0, "requests": 0},
            "herald test hook: exit 0 and no request sent", lambda: reqs_diag(r, res))
        res = run(tmp, ["-c", cfg, "test", "dead"])
        is_(res.rc, 1, "herald test on a refused port: exit 1", res.describe)
        res = run(tmp, ["-c", cfg, "test", "--send", "hook"])
        reqs = r.requests()
        ev = (event_of(reqs[0]) if len(reqs) == 1 else None) or {}
        is_((res.rc, [q["method"] for q in reqs], ev.get("type")), (0, ["POST"], "herald.test"),
            "herald test --send hook: exit 0, one POST of type herald.test", lambda: reqs_diag(r, res))


@scenario
def check_command():
    with tempfile.TemporaryDirectory() as tmp:
        port = dead_port()
        cfg = write_config(tmp, [hook("hook", "http://127.0.0.1:%d/hook" % port),
                                 {"name": "other", "url": "json://127.0.0.1:%d/x" % port}])
        res = run(tmp, ["-c", cfg, "check"])
        is_(res.rc, 0, "herald check on a good config: exit 0", res.describe)
        like(res.out, r"\bok\b", "herald check prints ok", res.describe)

        bad = write_config(tmp, None, name="bad.conf", raw="channels = ();\noops = ;\n")
        res = run(tmp, ["-c", bad, "check"])
        is_(res.rc, 2, "herald check on a syntax error: exit 2", res.describe)
        like(res.err, re.escape(bad) + r":2\b", "herald check names FILE:LINE of the error",
             res.describe)

        nourl = write_config(tmp, None, name="nourl.conf", raw=(
            'channels = (\n  { name = "x"; plugin = "webhook"; method = "POST"; }\n);\n'))
        res = run(tmp, ["-c", nourl, "check"])
        is_(res.rc, 2, "herald check on a webhook channel without url: exit 2", res.describe)
        like(res.err, r"\burl\b", "herald check says the url is missing", res.describe)


@scenario
def plugins_command():
    with tempfile.TemporaryDirectory() as tmp:
        res = run(tmp, ["plugins"])
        is_(res.rc, 0, "herald plugins: exit 0", res.describe)
        line = next((l for l in res.out.splitlines() if "webhook" in l), None)
        like(line, r"\d+\.\d+(\.\d+)?", "herald plugins: webhook listed with its version", res.describe)
        like(res.out, r"\b1\.1\b", "herald plugins: ABI 1.1 shown", res.describe)
        ok(re.search(r"\bjson\b", res.out) and re.search(r"\bjsons\b", res.out),
           "herald plugins: schemes json and jsons shown", res.describe)


# ---------------------------------------------------------------------------

def main():
    if not HERALD:
        bail_out("HERALD is not set (path of the built herald binary)")
    if not (os.path.isfile(HERALD) and os.access(HERALD, os.X_OK)):
        bail_out("HERALD=%s is not an executable file" % HERALD)
    diag("HERALD=%s" % HERALD)
    diag("HERALD_PLUGIN_PATH=%s" % os.environ.get("HERALD_PLUGIN_PATH"))
    only = set(sys.argv[1:])
    for fn in SCENARIOS:
        if only and fn.__name__ not in only:
            continue
        try:
            fn()
        except Exception:
            ok(False, "scenario %s ran to the end" % fn.__name__, traceback.format_exc())
    done_testing()


if __name__ == "__main__":
    main()
