#!/usr/bin/env python3
"""test_gotify.py - the gotify plugin against a fake that answers as CONTRACTS.md says:
what reaches the server (path, headers, exact JSON), every response class, the
side-effect-free test, the gotify:// URL form, and that the token never leaks.

Environment: HERALD (the built herald), HERALD_PLUGIN_PATH (built plugins).
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from gotify import FakeGotify  # noqa: E402
from channeltest import HERALD, delivery, herald  # noqa: E402
from taplib import bail_out, done_testing, is_, like, ok  # noqa: E402

TOKEN = "AbCdEf.9hJ-Secret"


def config(tmp, url, token=TOKEN, extra="", name="herald.conf"):
    path = Path(tmp) / name
    path.write_text('database = "%s/q.db";\nsocket = "%s/none.sock";\n'
                    'retry = { schedule = ["1s"]; max_attempts = 1; };\n'
                    'channels = ( { name = "phone"; plugin = "gotify"; url = "%s"; '
                    'token = "%s"; %s } );\n' % (tmp, tmp, url, token, extra))
    return str(path)


def main():
    if not HERALD:
        bail_out("HERALD is not set")
    with tempfile.TemporaryDirectory() as tmp, \
            FakeGotify(app_tokens={TOKEN: (7, "herald", 5)}) as g:
        cfg = config(tmp, g.url + "/")
        rc, out, err = herald(tmp, "-c", cfg, "send", "-e", "backup.failed", "-s", "error",
                              "-f", "url=https://ci.example.org/run/42", "Backup failed",
                              "disk **full** on db1")
        is_(rc, 0, "send to Gotify exits 0", err)
        reqs = [r for r in g.requests() if r["path"] == "/message"]
        is_(len(reqs), 1, "one POST /message")
        r = reqs[0] if reqs else {"headers": {}, "body": "{}", "query": ""}
        is_(r["headers"].get("x-gotify-key"), TOKEN, "the token travels in X-Gotify-Key")
        is_(r["query"], "", "and never in the query string (servers log URLs)")
        is_(r["headers"].get("content-type"), "application/json", "Content-Type is JSON")
        is_(json.loads(r["body"]),
            {"title": "Backup failed", "message": "disk **full** on db1", "priority": 8,
             "extras": {"client::display": {"contentType": "text/markdown"},
                        "client::notification": {"click": {"url":
                                                           "https://ci.example.org/run/42"}}}},
            "exact JSON: title, message, priority 8 for error, Markdown, click URL")
        stored = g.messages()
        is_([(m["title"], m["priority"], m["appid"]) for m in stored],
            [("Backup failed", 8, 7)], "Gotify stored the message under the application")

        # Severity -> priority, configurable; an empty body is replaced by the title.
        cfg2 = config(tmp, g.url, extra="priorities = { warning = 7; }; markdown = false;",
                      name="prio.conf")
        herald(tmp, "-c", cfg2, "send", "-s", "warning", "Disk 90%")
        herald(tmp, "-c", cfg2, "send", "-s", "critical", "Site down")
        last = [json.loads(x["body"]) for x in g.requests() if x["path"] == "/message"][-2:]
        is_(last, [{"title": "Disk 90%", "message": "Disk 90%", "priority": 7},
                   {"title": "Site down", "message": "Site down", "priority": 10}],
            "priorities override per severity; no body -> the title is the message; "
            "markdown = false drops the extras")

        # A bad token: a permanent failure that names the problem, never the token.
        bad = config(tmp, g.url, token="not-a-token-xyz", name="bad.conf")
        rc, out, err = herald(tmp, "-c", bad, "send", "x")
        is_(rc, 1, "rejected token: exit 1")
        like(err, r"HTTP 401: Gotify rejected the token \(you need to provide a valid access "
                  r"token", "the error quotes Gotify's errorDescription")
        ok("not-a-token-xyz" not in err + out, "the token is not printed")

        # Server errors are retried; 400s are not.
        g.fail_next(500)
        rc, out, err = herald(tmp, "-c", cfg, "send", "--json", "Retry me")
        d = delivery(out)
        is_((rc, d.get("verdict"), d.get("status")), (1, "retry", "server"),
            "HTTP 500 from Gotify is a retry", err)

        # The side-effect-free test: GET /version, then POST {} expecting 400.
        before = len(g.messages())
        n0 = len(g.requests())
        rc, out, err = herald(tmp, "-c", cfg, "test", "phone")
        seen = [(x["method"], x["path"], x["body"]) for x in g.requests()[n0:]]
        is_(seen, [("GET", "/version", ""), ("POST", "/message", "{}")],
            "herald test: GET /version, then POST {} with the token")
        is_(rc, 0, "herald test with a good token exits 0", err)
        like(out + err, r"token accepted; nothing was stored", "and says nothing was stored")
        is_(len(g.messages()), before, "nothing was stored")
        rc, out, err = herald(tmp, "-c", bad, "test", "phone")
        is_(rc, 1, "herald test with a bad token exits 1")
        like(err + out, r"rejected the token", "and says the token was rejected")

        # Not a Gotify server at all.
        rc, out, err = herald(tmp, "-c", config(tmp, g.url + "/nope", name="nope.conf"), "send", "x")
        like(err, r"HTTP 404 \(page not found\): no Gotify API at", "404: says the url is wrong")

        # Apprise's URL form.
        host = g.url.split("//", 1)[1]
        rc, out, err = herald(tmp, "-c", cfg, "send", "--to", "gotify://%s/%s" % (host, TOKEN),
                              "Via URL")
        is_(rc, 0, "gotify://host:port/TOKEN works with --to", err)
        is_(g.messages()[-1]["title"], "Via URL", "and the message arrived")
        ok(TOKEN not in err + out, "the URL's token is not printed")

    # v3 accepts a client token only with appid; herald sends application tokens.
    with tempfile.TemporaryDirectory() as tmp, FakeGotify(version=3,
                                                          client_tokens={"Cli.tok"}) as g:
        rc, out, err = herald(tmp, "-c", config(tmp, g.url, token="Cli.tok"), "send", "x")
        like(err, r"HTTP 400: Field 'appid' is required",
             "v3 with a client token: Gotify's 400 is reported as is")
    done_testing()


if __name__ == "__main__":
    main()
