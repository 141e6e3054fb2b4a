#!/usr/bin/env python3
"""test_discord.py - the discord plugin against a fake that answers as CONTRACTS.md says:
?wait=true, the exact embed, no pings, Discord's limits kept by splitting, 429 retry_after,
Unknown Webhook disabling the channel, the GET test, discord:// URLs, no token in output.

Environment: HERALD (the built herald), HERALD_PLUGIN_PATH (built plugins).
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from discord import FakeDiscord  # noqa: E402
from channeltest import HERALD, delivery, herald  # noqa: E402
from taplib import bail_out, done_testing, is_, like, ok  # noqa: E402

HOOK, TOKEN = "1234567890", "tok-secret-abc"


def config(tmp, name, url, extra=""):
    path = Path(tmp) / name
    path.write_text('database = "%s/%s.db";\nsocket = "%s/none.sock";\n'
                    'retry = { schedule = ["1s"]; max_attempts = 1; disable_after = 50; };\n'
                    'channels = ( { name = "chat"; plugin = "discord"; url = "%s"; %s },\n'
                    '  { name = "other"; plugin = "webhook"; url = "http://127.0.0.1:9/"; } );\n'
                    % (tmp, name, tmp, url, extra))
    return str(path)


def posts(d, since=0):
    return [json.loads(r["body"]) for r in d.requests()[since:] if r["method"] == "POST"]


def main():
    if not HERALD:
        bail_out("HERALD is not set")
    with tempfile.TemporaryDirectory() as tmp, FakeDiscord(hooks={HOOK: TOKEN}) as d:
        hook_url = "%s/api/webhooks/%s/%s" % (d.url, HOOK, TOKEN)
        cfg = config(tmp, "a.conf", hook_url, 'username = "herald";')
        rc, out, err = herald(tmp, "-c", cfg, "send", "--to", "chat", "-e", "deploy.failed",
                              "-s", "error", "-a", "ci", "-f", "env=prod", "-f", "job=42",
                              "Deploy failed", "@everyone the build broke")
        is_(rc, 0, "post to Discord exits 0", err)
        reqs = [r for r in d.requests() if r["method"] == "POST"]
        is_(reqs[0]["query"] if reqs else None, "wait=true", "always ?wait=true")
        body = posts(d)[0] if reqs else {}
        embed = (body.get("embeds") or [{}])[0]
        ts = embed.pop("timestamp", "")
        is_(body.get("allowed_mentions"), {"parse": []},
            "allowed_mentions is empty: the body cannot ping @everyone")
        is_((body.get("username"), embed),
            ("herald", {"title": "Deploy failed", "description": "@everyone the build broke",
                        "color": 0xE74C3C,
                        "fields": [{"name": "env", "value": "prod", "inline": True},
                                   {"name": "job", "value": "42", "inline": True}],
                        "footer": {"text": "deploy.failed · ci"}}),
            "exact embed: title, description, red for error, fields, footer type · source")
        like(ts, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", "timestamp is ISO 8601")

        # A 9,000-character body: split into numbered embeds within Discord's limits.
        long_body = ("word " * 1800)
        k = len(d.requests())
        rc, out, err = herald(tmp, "-c", cfg, "send", "--to", "chat", "Log", long_body)
        parts = posts(d, k)
        is_(rc, 0, "a 9,000-character body is delivered", err)
        is_([p["embeds"][0]["title"] for p in parts], ["Log (1/3)", "Log (2/3)", "Log (3/3)"],
            "in 3 numbered embeds")
        is_("".join(p["embeds"][0]["description"] for p in parts), long_body,
            "nothing lost or changed")
        is_(len(d.messages()), 4, "Discord accepted every part (its limits hold)")

        # 429 with retry_after: retried, at the time Discord asked.
        d.limit_next(1, retry_after=2.5)
        rc, out, err = herald(tmp, "-c", cfg, "send", "--to", "chat", "--json", "Busy")
        dl = delivery(out)
        is_((rc, dl.get("verdict"), dl.get("status")), (1, "retry", "rate_limited"),
            "429 is retried", err)
        like(dl.get("detail", ""), r"retry after 2\.50 s", "after Discord's retry_after")

        # The side-effect-free test: GET on the webhook URL.
        k = len(d.requests())
        rc, out, err = herald(tmp, "-c", cfg, "test", "chat")
        is_([(r["method"], r["path"]) for r in d.requests()[k:]],
            [("GET", "/api/webhooks/%s/%s" % (HOOK, TOKEN))], "herald test only GETs the webhook")
        like(out + err, r"webhook 'herald-test' exists and the token is valid; nothing was posted",
             "and reports the webhook's name")
        ok(TOKEN not in out + err, "the token is never printed")

        # A wrong token fails; a deleted webhook disables the channel.
        bad = config(tmp, "b.conf", "%s/api/webhooks/%s/%s" % (d.url, HOOK, "tok-wrong-xyz"))
        rc, out, err = herald(tmp, "-c", bad, "send", "--to", "chat", "x")
        like(err, r"HTTP 401: Invalid Webhook Token \(Discord code 50027\)",
             "401: Discord's message and code")
        ok("tok-wrong-xyz" not in err + out, "the wrong token is not printed either")
        d.delete(HOOK)
        rc, out, err = herald(tmp, "-c", cfg, "send", "--to", "chat", "--json", "Gone?")
        dl = delivery(out)
        is_((dl.get("verdict"), dl.get("status")), ("disable", "gone"),
            "Unknown Webhook (10015) disables the destination")
        before = len(d.requests())
        rc, out, err = herald(tmp, "-c", cfg, "send", "--to", "chat", "--json", "After")
        like(delivery(out).get("detail", ""), r"channel is disabled \(Unknown Webhook",
             "the next event waits for 'herald channel enable' instead of being posted")
        is_(len(d.requests()), before, "and nothing reaches Discord")

        # discord://ID/TOKEN is accepted as a channel (no traffic: herald check only builds it).
        url_cfg = Path(tmp) / "u.conf"
        url_cfg.write_text('channels = ( { name = "c"; url = "discord://111/tok-url-secret"; } );\n')
        rc, out, err = herald(tmp, "-c", str(url_cfg), "check", "--json")
        is_(rc, 0, "a discord:// channel passes herald check", err)
        like(out, r"discord", "and is served by the discord plugin")
        ok("tok-url-secret" not in out + err, "its token is not printed")
    done_testing()


if __name__ == "__main__":
    main()
