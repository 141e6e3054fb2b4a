#!/usr/bin/env python3
"""Integration tests: the outbound destination policy (outbound = { deny; allow; } and a
channel's deny/allow), judged on the address herald actually connects to.

Environment (set by `make check`):
  HERALD              absolute path of the built herald CLI (required)
  HERALDD             absolute path of the built heraldd daemon (required)
  HERALD_PLUGIN_PATH  build directory holding the webhook plugin

Run by hand from the build directory:
  HERALD=$PWD/herald HERALDD=$PWD/heraldd HERALD_PLUGIN_PATH=$PWD/plugins \
      python3 ../tests/integration/test_policy.py [SCENARIO...]

No test needs a network: the refused destinations are refused before any
packet, loopback receivers stand in for private ranges, and "localhost" is
resolved through /etc/hosts. Prints TAP on stdout; every process started
here is bounded by a timeout and killed by PID in a finally block.
"""

import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "servers"))

from taplib import bail_out, diag, done_testing, is_, like, ok, run_scenarios  # noqa: E402
from test_queue import Daemon, receiver, run  # noqa: E402

HERALD = os.environ.get("HERALD")
HERALDD = os.environ.get("HERALDD")
# A refusal happens before any packet: far below the channels' 10 s timeout,
# with room for a sanitizer build starting herald.
FAST = 5.0

FAST_RETRY = {"schedule": ["200ms"], "max_attempts": 3, "max_age": "1h", "jitter": 0.0}

POLICY_MSG = (r"\Adestination (?P<ip>\S+) is refused by the outbound policy \((?P<why>[^)]*)\); "
              r"allow it with outbound\.allow or the channel's allow if intended\Z")


def _val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, (list, tuple)):
        return "[%s]" % ", ".join(_val(x) for x in v)
    if isinstance(v, dict):
        return "{ %s }" % " ".join("%s = %s;" % (k, _val(x)) for k, x in v.items())
    raise TypeError(v)


def write_config(tmp, channels, outbound=None, name="herald.conf"):
    """A libconfig file whose database and socket live in tmp. Returns its path."""
    lines = ["database = %s;" % _val(str(Path(tmp) / "q.db")),
             "socket = %s;" % _val(str(Path(tmp) / "d.sock")),
             "retry = %s;" % _val(FAST_RETRY)]
    if outbound is not None:
        lines.append("outbound = %s;" % _val(outbound))
    lines.append("channels = (")
    lines.append(",\n".join("  " + _val(ch) for ch in channels))
    lines.append(");")
    path = Path(tmp) / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def hook(name, url, **kw):
    # A long timeout: a real connection attempt to a black-holed address
    # would take it, a policy refusal takes none of it.
    ch = {"name": name, "plugin": "webhook", "url": url, "timeout": 10}
    ch.update(kw)
    return ch


def policy_refusal(detail, ip=None, why=None):
    """True when detail is exactly the policy message (for ip / why when given)."""
    m = re.match(POLICY_MSG, detail or "")
    return bool(m) and (ip is None or m.group("ip") in ((ip,) if isinstance(ip, str) else ip)) \
        and (why is None or re.search(why, m.group("why")) is not None)


def refused_delivery(res, what, ip=None, why=None, receiver_=None):
    """The tests every refused `send --json`: exit 1, failed/rejected after one attempt,
    the policy message, quickly, and nothing received."""
    dv = res.delivery()
    d = lambda: res.describe() + ("\nreceiver got %d request(s)" % len(receiver_.requests())  # noqa: E731
                                  if receiver_ else "")
    # Through heraldd a delivery shows its state and no verdict.
    is_({"exit": res.rc, "verdict": dv.get("verdict", "failed"), "status": dv.get("status"),
         "state": dv.get("state"), "attempts": dv.get("attempts"), "code": dv.get("code")},
        {"exit": 1, "verdict": "failed", "status": "rejected", "state": "failed", "attempts": 1,
         "code": 0},
        "%s: refused for good (failed/rejected, 1 attempt, never retried)" % what, d)
    ok(policy_refusal(dv.get("detail"), ip, why),
       "%s: the detail is the policy message%s%s" % (what, " for %s" % (ip,) if ip else "",
                                                     " (%s)" % why if why else ""), d)
    ok(res.elapsed < FAST, "%s: refused at once (%.2f s), no connection attempt" % (
        what, res.elapsed), d)
    if receiver_ is not None:
        time.sleep(0.3)   # a (wrong) retry would come after 200 ms
        is_(len(receiver_.requests()), 0, "%s: the receiver got nothing" % what, d)


# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------

SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


@scenario
def metadata_refused_by_default():
    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_config(tmp, [hook("meta", "http://169.254.169.254/latest/meta-data/")])
        res = run(tmp, ["-c", cfg, "send", "--wait=10s", "--json", "Metadata"])
        refused_delivery(res, "channel to 169.254.169.254", "169.254.169.254",
                         r"\Alink-local/metadata\Z")

        res = run(tmp, ["-c", cfg, "test", "meta"])
        ok(res.rc == 1 and "169.254.169.254 is refused by the outbound policy "
           "(link-local/metadata)" in res.err and res.elapsed < FAST,
           "herald test on it: exit 1 at once with the policy message", res.describe)
        res = run(tmp, ["-c", cfg, "test", "--send", "meta"])
        ok(res.rc == 1 and "refused by the outbound policy" in res.err,
           "herald test --send on it: refused too", res.describe)

        # Ad-hoc URLs, IPv6 link-local, AWS's IPv6 metadata address and the
        # IPv4-mapped form of the IPv4 one.
        for url, ip in (("json://169.254.169.254/x", "169.254.169.254"),
                        ("json://[fe80::1]:8080/x", "fe80::1"),
                        ("json://[fd00:ec2::254]/x", "fd00:ec2::254"),
                        ("json://[::ffff:169.254.169.254]/x", ("::ffff:169.254.169.254",
                                                                "169.254.169.254"))):
            res = run(tmp, ["-c", cfg, "send", "--json", "--to", url, "Ad hoc"])
            refused_delivery(res, "--to %s" % url, ip, r"\Alink-local/metadata\Z")
        res = run(tmp, ["-c", cfg, "test", "json://169.254.169.254/x"])
        ok(res.rc == 1 and "refused by the outbound policy (link-local/metadata)" in res.err,
           "herald test URL: refused with the policy message", res.describe)


@scenario
def default_lets_loopback_through():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h"),
                                 hook("name", "http://localhost:%d/n" % r.port)])
        res = run(tmp, ["-c", cfg, "send", "--json", "Loopback"])
        is_((res.rc, sorted(d.get("state") for d in res.json().get("deliveries") or []),
             sorted(q["path"] for q in r.requests())),
            (0, ["sent", "sent"], ["/h", "/n"]),
            "no outbound setting: 127.0.0.1 and localhost are delivered", res.describe)


@scenario
def denied_range():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("hook", r.url + "/h")],
                           outbound={"deny": ["10.0.0.0/8", "127.0.0.0/8"]})
        why = r"\Adeny 127\.0\.0\.0/8 at %s:4\Z" % re.escape(cfg)
        res = run(tmp, ["-c", cfg, "send", "--wait=10s", "--json", "Denied"])
        refused_delivery(res, "outbound.deny 127.0.0.0/8, channel to 127.0.0.1", "127.0.0.1",
                         why, r)
        res = run(tmp, ["-c", cfg, "send", "--json", "--to", "json://127.0.0.1:%d/adhoc" % r.port,
                        "Ad hoc"])
        refused_delivery(res, "outbound.deny 127.0.0.0/8, --to json://127.0.0.1", "127.0.0.1",
                         why, r)
        res = run(tmp, ["-c", cfg, "test", "hook"])
        ok(res.rc == 1 and "127.0.0.1 is refused by the outbound policy (deny 127.0.0.0/8 at "
           in res.err, "herald test on a denied channel: refused, naming the rule", res.describe)
        is_(len(r.requests()), 0, "the receiver never got a request", lambda: "%d" % len(
            r.requests()))


@scenario
def channel_allow():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("open", r.url + "/open", allow=["127.0.0.1/32"]),
                                 hook("closed", r.url + "/closed")],
                           outbound={"deny": ["127.0.0.0/8"]})
        res = run(tmp, ["-c", cfg, "send", "--json", "--to", "open", "Allowed"])
        is_((res.rc, res.delivery().get("state"), [q["path"] for q in r.requests()]),
            (0, "sent", ["/open"]),
            "global deny 127.0.0.0/8, channel allow 127.0.0.1/32: delivered", res.describe)
        res = run(tmp, ["-c", cfg, "send", "--json", "--to", "closed", "Not allowed"])
        is_((res.delivery().get("status"), [q["path"] for q in r.requests()]),
            ("rejected", ["/open"]),
            "the allow is that channel's: the other channel stays refused", res.describe)

        # A channel's deny adds to the global list; a global allow re-opens.
        cfg = write_config(tmp, [hook("chan", r.url + "/chan", deny=["127.0.0.0/8"]),
                                 hook("other", r.url + "/other")], name="b.conf")
        res = run(tmp, ["-c", cfg, "send", "--json", "Channel deny"])
        got = {d.get("channel"): d.get("status") for d in res.json().get("deliveries") or []}
        is_((got, sorted(q["path"] for q in r.requests())),
            ({"chan": "rejected", "other": "ok"}, ["/open", "/other"]),
            "a channel's deny refuses that channel only", res.describe)
        cfg = write_config(tmp, [hook("chan", r.url + "/global-allow")], name="c.conf",
                           outbound={"deny": ["127.0.0.0/8"], "allow": ["127.0.0.0/24"]})
        res = run(tmp, ["-c", cfg, "send", "--json", "Global allow"])
        is_((res.rc, r.requests()[-1]["path"] if r.requests() else None),
            (0, "/global-allow"), "outbound.allow wins over outbound.deny", res.describe)


@scenario
def name_resolving_to_denied():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("byname", "http://localhost:%d/n" % r.port)],
                           outbound={"deny": ["127.0.0.0/8", "::1/128"]})
        res = run(tmp, ["-c", cfg, "send", "--wait=10s", "--json", "By name"])
        refused_delivery(res, "http://localhost with 127.0.0.0/8 and ::1/128 denied",
                         ("127.0.0.1", "::1"), r"\Adeny (127\.0\.0\.0/8|::1/128) at ", r)
        res = run(tmp, ["-c", cfg, "send", "--json", "--to", "json://localhost:%d/a" % r.port,
                        "By name, ad hoc"])
        refused_delivery(res, "--to json://localhost with loopback denied", ("127.0.0.1", "::1"),
                         None, r)


@scenario
def config_errors():
    with tempfile.TemporaryDirectory() as tmp:
        for raw, line, needle, what in (
                ('outbound = {\n  deny = ["10.0.0.0/8",\n    "10.0.0.0/33"];\n};\n'
                 'channels = ();\n', 3,
                 "outbound.deny item 2: '10.0.0.0/33': the prefix length must be from 0 to 32",
                 "a prefix too long"),
                ('outbound = { allow = ["10.1.2.3/24"]; };\nchannels = ();\n', 1,
                 "has bits set after the /24 prefix; write 10.1.2.0/24", "host bits set"),
                ('outbound = { deny = ["metadata.internal"]; };\nchannels = ();\n', 1,
                 "not an IP address or CIDR block", "a host name"),
                ('outbound = { denied = ["10.0.0.0/8"]; };\nchannels = ();\n', 1,
                 "unknown outbound setting 'denied'; known: deny, allow", "a misspelt key"),
                ('channels = (\n  { name = "c"; plugin = "webhook"; url = "http://x/";\n'
                 '    deny = ["fe80::1/10"]; }\n);\n', 3,
                 "channel 'c': deny item 1: 'fe80::1/10' has bits set", "a channel's entry")):
            path = Path(tmp) / "bad.conf"
            path.write_text(raw, encoding="utf-8")
            res = run(tmp, ["-c", str(path), "check"])
            ok(res.rc == 2 and res.err.startswith("herald: %s:%d: " % (path, line)) and
               needle in res.err,
               "herald check refuses %s with file:line %d and the reason" % (what, line),
               res.describe)


@scenario
def daemon_logs_policy_and_checks_reused_connections():
    # The receiver speaks HTTP/1.1 and keeps connections open: after "open"
    # delivered, the daemon's engine holds a live connection to 127.0.0.1
    # that "shut" must not be allowed to reuse.
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = write_config(tmp, [hook("open", r.url + "/open"),
                                 hook("shut", r.url + "/shut", deny=["127.0.0.1/32"])],
                           outbound={"deny": ["10.0.0.0/8"], "allow": ["10.1.2.0/24"]})
        dm = Daemon(tmp, cfg, verbose=True)
        try:
            up = dm.start()
            ok(up, "heraldd starts with an outbound policy", dm.describe)
            if not up:
                return
            like(dm.log(), r"outbound policy: refuse 169\.254\.0\.0/16, fe80::/10, "
                 r"fd00:ec2::254/128 \(link-local/metadata default\), 10\.0\.0\.0/8; allow "
                 r"10\.1\.2\.0/24 ", "heraldd -v logs the effective policy at start", dm.describe)
            like(dm.log(), r"outbound policy of channel 'shut': refuse .*127\.0\.0\.1/32; allow "
                 r"10\.1\.2\.0/24", "and each channel that has its own entries", dm.describe)
            ok("outbound policy of channel 'open'" not in dm.log(),
               "a channel without entries of its own is not repeated", dm.describe)
            res = run(tmp, ["-c", cfg, "send", "--wait=10s", "--json", "--to", "open", "First"])
            is_((res.rc, res.delivery().get("state")), (0, "sent"),
                "via heraldd: the allowed channel is delivered", res.describe)
            res = run(tmp, ["-c", cfg, "send", "--wait=10s", "--json", "--to", "shut", "Second"])
            refused_delivery(res, "via heraldd, same host right after (connection reuse)",
                             "127.0.0.1", r"\Adeny 127\.0\.0\.1/32 at ")
            is_([q["path"] for q in r.requests()], ["/open"],
                "the denied channel never sent a request on the open connection",
                lambda: res.describe() + "\n" + dm.describe())
            res = run(tmp, ["-c", cfg, "send", "--wait=10s", "--json", "--to",
                            "json://169.254.169.254/x", "Ad hoc via daemon"])
            refused_delivery(res, "via heraldd: --to the metadata address", "169.254.169.254",
                             r"\Alink-local/metadata\Z")
        finally:
            dm.stop()


def main():
    if not HERALD or not HERALDD:
        bail_out("HERALD and HERALDD must be set (paths of the built herald and heraldd)")
    diag("HERALD=%s HERALDD=%s" % (HERALD, HERALDD))
    run_scenarios(SCENARIOS, set(sys.argv[1:]))
    done_testing()


if __name__ == "__main__":
    main()
