#!/usr/bin/env python3
"""test_routing.py - routing and preferences through the programs: `herald route test`
output, `herald check` on routes, `herald user|prefs|group` (no change deletes another),
routed delivery to users' own addresses (a Gotify fake that checks each user's token) and
broadcast channels, `herald explain`, heraldd picking up run-time users within a second,
and a delivery held by quiet hours that survives a SIGKILLed daemon and goes out when the
quiet hours end.

Environment: HERALD, HERALDD, HERALD_PLUGIN_PATH (make check sets them).
"""
import datetime
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from gotify import FakeGotify  # noqa: E402
from taplib import diag, done_testing, is_, like, ok, run_scenarios  # noqa: E402
from test_queue import Daemon, hook, receiver, run, started, wait_until, write_config  # noqa: E402
import tempfile  # noqa: E402

TA, TB, TC, TD = "TokAlice.1", "TokBob.22", "TokCarol.3", "TokDave.44"


def users_conf(extra_users="", routes=None):
    routes = routes or (
        '( { name = "ops-alerts"; match = { events = ["backup.*", "disk.*"];\n'
        '      severity = ">=warning"; }; to = ["@ops", "audit"]; },\n'
        '  { name = "security"; match = { events = "security.*"; }; to = ["@ops"];\n'
        '      mandatory = true; } )')
    return ('users = ( { name = "alice"; gotify_token = "%s"; groups = ["ops"]; },\n'
            '          { name = "bob"; gotify_token = "%s"; groups = ["ops"]; }%s );\n'
            'routes = %s;\n' % (TA, TB, extra_users, routes))


def config(tmp, g, r, extra="", name="herald.conf"):
    path = write_config(tmp, [{"name": "push", "plugin": "gotify", "url": g.url, "timeout": 2},
                              hook("audit", r.url + "/audit")], name=name)
    with open(path, "a") as f:
        f.write(extra)
    return path


def tokens(g, since=0):
    return sorted(q["headers"].get("x-gotify-key") for q in g.requests()[since:]
                  if q["path"] == "/message")


def route_test_and_check():
    with tempfile.TemporaryDirectory() as tmp, FakeGotify(app_tokens={TA: (1, "a", 5)}) as g, \
            receiver("200") as r:
        cfg = config(tmp, g, r, users_conf(
            routes='( { name = "all"; to = ["audit"]; final = true; },\n'
                   '  { name = "late"; match = { events = "x.*"; }; to = ["alice"]; } )'))
        res = run(tmp, ["-c", cfg, "check"])
        is_(res.rc, 0, "check: a valid routing config passes", res.describe)
        like(res.out, r"2 routes, 2 users", "check: counts routes and users", res.describe)
        like(res.err, r"warning: .*herald.conf:\d+: late can never match: all",
             "check: warns about a route after a final catch-all", res.describe)

        bad = config(tmp, g, r, users_conf(routes='( { to = ["@nobody"]; } )'), name="bad.conf")
        res = run(tmp, ["-c", bad, "check"])
        is_(res.rc, 2, "check: an unknown group in a route is exit 2", res.describe)
        like(res.err, r"bad.conf:\d+: route 1: unknown group '@nobody'",
             "check: the error names file:line, route and group", res.describe)

        cfg = config(tmp, g, r, users_conf(), name="ops.conf")
        line = next(i + 1 for i, l in enumerate(Path(cfg).read_text().splitlines())
                    if 'name = "ops-alerts"' in l)
        res = run(tmp, ["-c", cfg, "route", "test", "-e", "backup.failed", "-s", "error",
                        "--at", "2026-11-22T12:00:00Z"])
        is_(res.rc, 0, "route test exits 0", res.describe)
        want = [
            "backup.failed (error) at 2026-11-22T12:00:00.000Z:",
            "  route ops-alerts (%s:%d): matched" % (cfg, line),
        ]
        is_(res.out.splitlines()[:2], want, "route test: header and matched route",
            res.describe)
        lines = sorted(res.out.splitlines()[2:])
        is_(lines, sorted([
            "  send  audit                            route ops-alerts (%s:%d) names channel audit"
            % (cfg, line),
            "  send  push -> alice                    route ops-alerts sends it; alice has no "
            "preference against it",
            "  send  push -> bob                      route ops-alerts sends it; bob has no "
            "preference against it",
        ]), "route test: one line per (channel, recipient) with the reason", res.describe)
        res = run(tmp, ["-c", cfg, "route", "test", "-e", "backup.failed", "-s", "info",
                        "--json"])
        j = res.json()
        is_((j.get("decisions"), len(j.get("routes") or [])), ([], 1),
            "route test --json: info is below >=warning: nobody, one note", res.describe)
        is_(len(g.requests()) + len(r.requests()), 0, "route test sent nothing")


def prefs_cli():
    with tempfile.TemporaryDirectory() as tmp, FakeGotify(app_tokens={TA: (1, "a", 5)}) as g, \
            receiver("200") as r:
        cfg = config(tmp, g, r, users_conf())
        steps = [
            (["user", "add", "carol", "gotify_token=%s" % TC, "email=carol@example.org"], 0),
            (["prefs", "set", "carol", "backup.*", "push", "off"], 0),
            (["prefs", "set", "carol", "disk.full", "*", "on", "min_severity=error"], 0),
            (["prefs", "set", "carol", "default", "min_severity=notice"], 0),
            (["prefs", "set", "carol", "default", "audit", "off"], 0),
            (["prefs", "quiet", "carol", "22:00-07:00", "--tz", "Europe/Berlin"], 0),
            (["prefs", "set", "carol", "backup.*", "push", "on"], 0),   # replaces, not adds
            (["group", "add", "ops", "carol"], 0),
            (["user", "set", "carol", "email="], 0),                     # removes the address
        ]
        for args, rc in steps:
            res = run(tmp, ["-c", cfg] + args)
            is_(res.rc, rc, "herald %s" % " ".join(args), res.describe)
        res = run(tmp, ["-c", cfg, "prefs", "show", "carol", "--json"])
        j = res.json()
        is_([(x["events"], x["channel"], x["on"], x.get("min_severity")) for x in j.get("rules", [])],
            [("disk.full", "*", True, "error"), ("backup.*", "push", True, None)],
            "prefs: both rules kept; setting one again replaced it (and made it the later)",
            res.describe)
        is_((j.get("min_severity"), j.get("channels"), (j.get("quiet") or {}).get("tz")),
            ("notice", {"audit": False}, "Europe/Berlin"),
            "prefs: default, channel default and quiet hours all kept", res.describe)
        is_(j.get("addresses"), {"gotify_token": "***"},
            "user set email= removed only that address; the token is shown as ***", res.describe)
        ok(TC not in res.out, "the token itself is never printed")
        import sqlite3
        db = sqlite3.connect(str(Path(tmp) / "q.db"))
        dump = "\n".join(db.iterdump())
        db.close()
        ok(TC not in dump and "hs1:" in dump,
           "a personal token is sealed at rest (AES-256-GCM), not stored in the clear")
        res = run(tmp, ["-c", cfg, "group", "list", "--json"])
        is_(res.json().get("ops"), ["alice", "bob", "carol"],
            "group: config members plus the run-time one", res.describe)
        res = run(tmp, ["-c", cfg, "user", "remove", "alice"])
        ok(res.rc == 2 and "declared in the configuration" in res.err,
           "user remove refuses a config-declared user, naming where", res.describe)
        res = run(tmp, ["-c", cfg, "prefs", "set", "carol", "x.*", "nochannel", "on"])
        ok(res.rc == 2 and "no channel 'nochannel'" in res.err, "prefs set: unknown channel",
           res.describe)
        res = run(tmp, ["-c", cfg, "prefs", "quiet", "carol", "22:00-07:00", "--tz", "Mars/Base"])
        ok(res.rc == 2 and "unknown time zone" in res.err, "prefs quiet: unknown time zone",
           res.describe)
        res = run(tmp, ["-c", cfg, "user", "remove", "carol"])
        is_(res.rc, 0, "user remove of a run-time user", res.describe)
        res = run(tmp, ["-c", cfg, "group", "list", "--json"])
        is_(res.json().get("ops"), ["alice", "bob"], "its group membership went with it",
            res.describe)


def routed_delivery():
    with tempfile.TemporaryDirectory() as tmp, \
            FakeGotify(app_tokens={TA: (1, "a", 5), TB: (2, "b", 5)}) as g, \
            receiver("200") as r:
        cfg = config(tmp, g, r, users_conf())
        res = run(tmp, ["-c", cfg, "send", "--json", "-e", "backup.failed", "-s", "error",
                        "Backup failed"])
        is_(res.rc, 0, "routed send exits 0", res.describe)
        is_(sorted((d.get("channel"), d.get("user")) for d in res.json().get("deliveries", [])),
            [("audit", None), ("push -> alice", "alice"), ("push -> bob", "bob")],
            "one delivery per (channel, recipient)", res.describe)
        is_(tokens(g), sorted([TA, TB]), "each user's push carries their own Gotify token")
        is_(len(r.requests()), 1, "the broadcast channel got it once")
        eid = res.json().get("id")

        before = len(g.requests())
        res = run(tmp, ["-c", cfg, "prefs", "set", "bob", "backup.*", "push", "off"])
        res = run(tmp, ["-c", cfg, "send", "--json", "-e", "backup.failed", "-s", "error", "Again"])
        is_(tokens(g, before), [TA], "bob opted out of backup.* on push: only alice", res.describe)
        eid2 = res.json().get("id")
        res = run(tmp, ["-c", cfg, "explain", eid2])
        like(res.out, r"skip  push -> bob\s+bob's rule 'backup\.\*' on push \(run time\) is off",
             "explain: bob's skip and the rule that decided it", res.describe)
        like(res.out, r"#\d+ push -> alice: sent after 1 attempt", "explain: alice's delivery",
             res.describe)
        before = len(g.requests())
        res = run(tmp, ["-c", cfg, "send", "-e", "security.login", "-s", "debug", "New login"])
        is_(tokens(g, before), sorted([TA, TB]),
            "a mandatory route reaches bob despite his opt-out and the severity", res.describe)
        res = run(tmp, ["-c", cfg, "send", "--json", "--user", "alice", "-e", "disk.full", "-s",
                        "critical", "For alice"])
        is_([d.get("user") for d in res.json().get("deliveries", [])], ["alice"],
            "--user alice: only alice, not the broadcast channel", res.describe)
        res = run(tmp, ["-c", cfg, "explain", eid, "--json"])
        j = res.json()
        is_(sorted((d["channel"], d["user"], d["action"]) for d in j["routing"]["decisions"]),
            [("audit", None, "send"), ("push", "alice", "send"), ("push", "bob", "send")],
            "explain --json: the stored decisions", res.describe)


def daemon_reloads_users():
    with tempfile.TemporaryDirectory() as tmp, \
            FakeGotify(app_tokens={TA: (1, "a", 5), TB: (2, "b", 5), TC: (3, "c", 5)}) as g, \
            receiver("200") as r:
        cfg = config(tmp, g, r, users_conf())
        dm = Daemon(tmp, cfg, verbose=True)
        try:
            if not started(dm, "routing daemon"):
                return
            run(tmp, ["-c", cfg, "user", "add", "carol", "gotify_token=%s" % TC])
            run(tmp, ["-c", cfg, "group", "add", "ops", "carol"])
            time.sleep(1.5)
            res = run(tmp, ["-c", cfg, "send", "-p", "-e", "disk.full", "-s", "error", "Disk"])
            is_(res.rc, 0, "send via the daemon", res.describe)
            ok(wait_until(lambda: len(tokens(g)) >= 3, 5), "three pushes arrive", dm.describe)
            is_(tokens(g), sorted([TA, TB, TC]),
                "heraldd picked up carol and her group within a second", dm.describe)
        finally:
            dm.stop()


def defer_survives_restart():
    with tempfile.TemporaryDirectory() as tmp, \
            FakeGotify(app_tokens={TA: (1, "a", 5), TB: (2, "b", 5), TD: (4, "d", 5)}) as g, \
            receiver("200") as r:
        now = datetime.datetime.now(datetime.timezone.utc)
        end = (now + datetime.timedelta(minutes=1)).replace(second=0, microsecond=0)
        if (end - now).total_seconds() < 20:
            end += datetime.timedelta(minutes=1)
        start = now - datetime.timedelta(hours=1)
        quiet = "%02d:%02d-%02d:%02d" % (start.hour, start.minute, end.hour, end.minute)
        cfg = config(tmp, g, r, users_conf(
            extra_users=',\n  { name = "dave"; gotify_token = "%s";\n'
                        '    quiet = { hours = "%s"; tz = "UTC"; action = "defer"; }; }' % (TD, quiet),
            routes='( { match = { events = "night.*"; }; to = ["dave"]; } )'))
        dm = Daemon(tmp, cfg, verbose=True)
        try:
            if not started(dm, "defer daemon"):
                return
            res = run(tmp, ["-c", cfg, "send", "-p", "-e", "night.batch", "Overnight report"])
            eid = res.out.strip()
            is_(res.rc, 0, "send during dave's quiet hours: accepted", res.describe)
            res = run(tmp, ["-c", cfg, "explain", eid, "--json"])
            ds = res.json().get("deliveries") or [{}]
            is_(ds[0].get("state"), "deferred", "the delivery is held (deferred)", res.describe)
            dm.kill9()
            time.sleep(0.5)
            is_(tokens(g), [], "nothing sent before the quiet hours end")
            dm2 = Daemon(tmp, cfg, verbose=True, tag="heraldd2")
            try:
                if not started(dm2, "defer daemon restarted"):
                    return
                res = run(tmp, ["-c", cfg, "explain", eid, "--json"])
                is_((res.json().get("deliveries") or [{}])[0].get("state"), "deferred",
                    "after SIGKILL and a restart it is still held", res.describe)
                left = (end - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
                diag("waiting %.0f s for the quiet hours (%s UTC) to end" % (left, quiet))
                time.sleep(max(0, left - 2))
                is_(tokens(g), [], "still nothing just before the end")
                ok(wait_until(lambda: tokens(g) == [TD], 12),
                   "delivered when the quiet hours end", dm2.describe)
            finally:
                dm2.stop()
        finally:
            dm.stop()


def main():
    run_scenarios((route_test_and_check, prefs_cli, routed_delivery, daemon_reloads_users,
                   defer_survives_restart))
    done_testing()


if __name__ == "__main__":
    main()
