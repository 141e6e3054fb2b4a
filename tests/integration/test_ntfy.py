#!/usr/bin/env python3
"""test_ntfy.py - the ntfy plugin against a fake that answers as CONTRACTS.md says:
exact JSON publishes, auth, 429/401/403/413 classes, long bodies split or truncated,
the health-check test, the ntfy:// URL form, and no credential in any output.

Environment: HERALD (the built herald), HERALD_PLUGIN_PATH (built plugins).
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from ntfy import FakeNtfy  # noqa: E402
from channeltest import HERALD, delivery, herald  # noqa: E402
from taplib import bail_out, done_testing, is_, like, ok  # noqa: E402

TOKEN = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2"


def config(tmp, name, url, extra):
    path = Path(tmp) / name
    path.write_text('database = "%s/q.db";\nsocket = "%s/none.sock";\n'
                    'retry = { schedule = ["1s"]; max_attempts = 1; };\n'
                    'channels = ( { name = "push"; plugin = "ntfy"; url = "%s"; %s } );\n'
                    % (tmp, tmp, url, extra))
    return str(path)


def publishes(n, since=0):
    return [json.loads(r["body"]) for r in n.requests()[since:] if r["path"] == "/"]


def main():
    if not HERALD:
        bail_out("HERALD is not set")
    with tempfile.TemporaryDirectory() as tmp, \
            FakeNtfy(tokens={TOKEN}, users={"ops:s3cret"}, protected={"ops"}) as n:
        cfg = config(tmp, "a.conf", n.url,
                     'topic = "ops"; token = "%s"; tags = "warning, disk";' % TOKEN)
        rc, out, err = herald(tmp, "-c", cfg, "send", "-s", "warning", "-f",
                              "url=https://grafana.example.org/d/1", "Disk 91%", "on *db1*")
        is_(rc, 0, "publish exits 0", err)
        reqs = [r for r in n.requests() if r["path"] == "/"]
        is_(reqs[0]["headers"].get("authorization") if reqs else None, "Bearer " + TOKEN,
            "the token goes as Authorization: Bearer")
        is_(publishes(n),
            [{"topic": "ops", "title": "Disk 91%", "message": "on *db1*", "priority": 4,
              "tags": ["warning", "disk"], "click": "https://grafana.example.org/d/1",
              "markdown": True}], "exact JSON: topic, title, message, priority 4 for warning, "
                                  "tags, click, markdown")
        is_([m.get("content_type") for m in n.messages()], ["text/markdown"],
            "ntfy stored it as Markdown")

        # Basic auth via user/password; critical -> 5; configurable priorities.
        cfg2 = config(tmp, "b.conf", n.url, 'topic = "ops"; user = "ops"; password = "s3cret"; '
                      'priorities = { notice = 2; };')
        k = len(n.requests())
        herald(tmp, "-c", cfg2, "send", "-s", "critical", "Down")
        herald(tmp, "-c", cfg2, "send", "Hello")
        is_([(p["title"], p["priority"]) for p in publishes(n, k)], [("Down", 5), ("Hello", 2)],
            "user/password work; critical -> 5; priorities override notice -> 2")

        # Classes: 401 bad token, 403 protected topic without auth, 429 retried.
        bad = config(tmp, "c.conf", n.url, 'topic = "ops"; token = "tk_wrong_token_123";')
        rc, out, err = herald(tmp, "-c", bad, "send", "x")
        like(err, r"HTTP 401: unauthorized \(ntfy code 40101\); check token",
             "401: ntfy's error and code, and the fix")
        ok("tk_wrong_token_123" not in out + err, "the token is never printed")
        anon = config(tmp, "d.conf", n.url, 'topic = "ops";')
        rc, out, err = herald(tmp, "-c", anon, "send", "x")
        like(err, r"HTTP 403: forbidden \(ntfy code 40301\)", "403 on a protected topic")
        n.limit_next(1)
        rc, out, err = herald(tmp, "-c", cfg, "send", "--json", "Busy")
        d = delivery(out)
        is_((rc, d.get("verdict"), d.get("status")), (1, "retry", "rate_limited"),
            "429 is retried", err)

        # Long bodies: split into numbered messages, each within 4,096 bytes ...
        long_body = ("line of a long report " * 12 + "\n") * 40  # ~10.6 kB
        k = len(n.requests())
        rc, out, err = herald(tmp, "-c", cfg, "send", "Report", long_body)
        parts = publishes(n, k)
        is_(rc, 0, "a 10 kB body is delivered", err)
        is_([p["title"] for p in parts], ["Report (1/3)", "Report (2/3)", "Report (3/3)"],
            "split into 3 numbered messages")
        ok(all(len(p["message"].encode()) <= 4096 for p in parts), "each within 4,096 bytes")
        is_("".join(p["message"] for p in parts), long_body, "nothing lost or changed")
        # ... or truncated with a visible marker, or sent as is (ntfy then refuses it).
        cut = config(tmp, "e.conf", n.url, 'topic = "ops"; token = "%s"; overflow = "truncate";'
                     % TOKEN)
        k = len(n.requests())
        herald(tmp, "-c", cut, "send", "Report", long_body)
        parts = publishes(n, k)
        ok(len(parts) == 1 and len(parts[0]["message"].encode()) <= 4096 and
           parts[0]["message"].endswith("(truncated by herald)"),
           "truncate: one message within the limit, ending with a marker")
        up = config(tmp, "f.conf", n.url, 'topic = "ops"; token = "%s"; overflow = "upstream";'
                    % TOKEN)
        rc, out, err = herald(tmp, "-c", up, "send", "Report", long_body)
        like(err, r"HTTP 413: request entity too large .*set overflow = split or truncate",
             "upstream: ntfy's 413 is reported with the fix")

        # The side-effect-free test uses /v1/health.
        k = len(n.requests())
        rc, out, err = herald(tmp, "-c", cfg, "test", "push")
        is_([(r["method"], r["path"]) for r in n.requests()[k:]], [("GET", "/v1/health")],
            "herald test asks /v1/health only")
        like(out + err, r"reachable and healthy; nothing was sent", "and says nothing was sent")
        n.healthy = False
        rc, out, err = herald(tmp, "-c", cfg, "test", "push")
        is_(rc, 1, "an unhealthy server fails the test")

        # Apprise's URL form, with the token as the user part.
        host = n.url.split("//", 1)[1]
        rc, out, err = herald(tmp, "-c", cfg, "send", "--to",
                              "ntfy://%s@%s/ops" % (TOKEN, host), "Via URL")
        is_((rc, n.messages()[-1]["title"]), (0, "Via URL"), "ntfy://token@host/topic works")
        ok(TOKEN not in out + err, "and its token is not printed")
    done_testing()


if __name__ == "__main__":
    main()
