#!/usr/bin/env python3
"""test_slack.py - the slack plugin against a fake of incoming webhooks and the Web API that
answers as CONTRACTS.md says: the exact blocks (header, mrkdwn sections, context, colour),
Markdown -> mrkdwn, long bodies in sections, every error code's class, archived/removed
webhooks disabling, bot tokens with ok:false, auth.test, slack:// URLs, no secret in output.

Environment: HERALD (the built herald), HERALD_PLUGIN_PATH (built plugins).
"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from slack import FakeSlack  # noqa: E402
from channeltest import HERALD, delivery, herald  # noqa: E402
from taplib import bail_out, done_testing, is_, like, ok  # noqa: E402

HOOK = "T0AAA/B0BBB/s3cretHookPart"
BOT = "xoxb-1234-5678-SeCrEtBoT"


def config(tmp, name, settings):
    path = Path(tmp) / name
    path.write_text('database = "%s/%s.db";\nsocket = "%s/none.sock";\n'
                    'retry = { schedule = ["1s"]; max_attempts = 1; };\n'
                    'channels = ( { name = "team"; plugin = "slack"; %s } );\n'
                    % (tmp, name, tmp, settings))
    return str(path)


def main():
    if not HERALD:
        bail_out("HERALD is not set")
    with tempfile.TemporaryDirectory() as tmp, \
            FakeSlack(hooks={HOOK}, tokens={BOT: "acme"}, channels={"#ops"}) as s:
        hook_url = "%s/services/%s" % (s.url, HOOK)
        cfg = config(tmp, "a.conf", 'url = "%s";' % hook_url)
        rc, out, err = herald(tmp, "-c", cfg, "send", "-e", "backup.failed", "-s", "error",
                              "-a", "cron", "Backup failed",
                              "**disk** full on *db1*: see [the runbook](https://x.example/rb) "
                              "& call <ops>")
        is_(rc, 0, "post through the incoming webhook exits 0", err)
        posts = s.posts()
        is_(posts[0] if posts else None, {
            "text": "Backup failed: *disk* full on _db1_: see <https://x.example/rb|the runbook>"
                    " &amp; call &lt;ops&gt;",
            "attachments": [{"color": "#E74C3C", "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Backup failed",
                                            "emoji": True}},
                {"type": "section", "text": {"type": "mrkdwn", "text":
                                             "*disk* full on _db1_: see "
                                             "<https://x.example/rb|the runbook> &amp; call "
                                             "&lt;ops&gt;"}},
                {"type": "context", "elements": [{"type": "mrkdwn",
                                                  "text": "backup.failed · cron · error"}]}]}]},
            "exact payload: fallback text, red attachment, header, mrkdwn section, context")

        # A 7,000-character body goes in sections of at most 3,000 characters.
        long_body = "word " * 1400
        rc, out, err = herald(tmp, "-c", cfg, "send", "Log", long_body)
        secs = [b["text"]["text"] for b in s.posts()[-1]["attachments"][0]["blocks"]
                if b["type"] == "section"]
        is_((rc, len(secs)), (0, 3), "a 7,000-character body: 3 sections, accepted", err)
        is_("".join(secs), long_body, "nothing lost or changed")

        # Error codes (plain text) and their classes.
        s.limit_next(1)
        rc, out, err = herald(tmp, "-c", cfg, "send", "--json", "Busy")
        d = delivery(out)
        is_((d.get("verdict"), d.get("status")), ("retry", "rate_limited"), "429 is retried")
        bad = config(tmp, "b.conf", 'url = "%s/services/T0AAA/B0BBB/wrongPart";' % s.url)
        rc, out, err = herald(tmp, "-c", bad, "send", "x")
        like(err, r"HTTP 403: invalid_token", "403 invalid_token fails")
        ok("wrongPart" not in out + err, "the webhook's secret part is never printed")
        s.archive(HOOK)
        rc, out, err = herald(tmp, "-c", cfg, "send", "--json", "Archived?")
        d = delivery(out)
        is_((d.get("verdict"), d.get("status")), ("disable", "gone"),
            "410 channel_is_archived disables the channel")
        like(d.get("detail", ""), r"channel_is_archived", "and says why")
        s.archived.clear()
        s.remove(HOOK)
        cfg_b = config(tmp, "c.conf", 'url = "%s";' % hook_url)
        rc, out, err = herald(tmp, "-c", cfg_b, "send", "--json", "Removed?")
        d = delivery(out)
        is_((d.get("verdict"), d.get("detail", "")[:22]), ("disable", "HTTP 404 no_service: t"),
            "404 no_service disables too")

        # The webhook test sends nothing and says so.
        n0 = len(s.requests())
        rc, out, err = herald(tmp, "-c", cfg, "test", "team")
        is_((rc, len(s.requests()) - n0), (0, 0), "herald test on a webhook: exit 0, no request")
        like(out + err, r"no side-effect-free check of an incoming webhook, so nothing was sent",
             "and says plainly why")
        ok(HOOK.split("/")[-1] not in out + err, "without printing the webhook's secret")

        # A bot token: chat.postMessage with ok:false errors, auth.test.
        bot = config(tmp, "d.conf", 'token = "%s"; channel = "#ops"; api_url = "%s/api";'
                     % (BOT, s.url))
        rc, out, err = herald(tmp, "-c", bot, "send", "-s", "warning", "Bot says hi")
        last = s.posts()[-1] if s.posts() else {}
        is_((rc, last.get("channel"), last.get("attachments", [{}])[0].get("color")),
            (0, "#ops", "#F39C12"), "bot token: posted to #ops in orange for warning", err)
        req = [r for r in s.requests() if r["path"] == "/api/chat.postMessage"][-1]
        is_(req["headers"].get("authorization"), "Bearer " + BOT, "with the bot token as Bearer")
        wrongch = config(tmp, "e.conf", 'token = "%s"; channel = "#nope"; api_url = "%s/api";'
                         % (BOT, s.url))
        rc, out, err = herald(tmp, "-c", wrongch, "send", "x")
        like(err, r"Slack: channel_not_found; check channel '#nope' and invite the bot",
             "ok:false channel_not_found is a failure with the fix")
        wrongtok = config(tmp, "f.conf", 'token = "xoxb-not-valid-99"; channel = "#ops"; '
                          'api_url = "%s/api";' % s.url)
        rc, out, err = herald(tmp, "-c", wrongtok, "send", "x")
        like(err, r"Slack: invalid_auth; check the bot token", "ok:false invalid_auth: auth")
        ok("xoxb-not-valid-99" not in out + err, "the token is never printed")
        rc, out, err = herald(tmp, "-c", bot, "test", "team")
        like(out + err, r"bot token valid for workspace acme; nothing was posted",
             "herald test with a bot token uses auth.test")
        rc, out, err = herald(tmp, "-c", wrongtok, "test", "team")
        is_(rc, 1, "auth.test with a bad token fails the test")

        # slack://A/B/C is an incoming webhook (checked without traffic).
        u = Path(tmp) / "u.conf"
        u.write_text('channels = ( { name = "c"; url = "slack://T1/B2/SecretC3"; } );\n')
        rc, out, err = herald(tmp, "-c", str(u), "check", "--json")
        is_(rc, 0, "slack://T/B/C passes herald check", err)
        ok("SecretC3" not in out + err, "and its secret is not printed")
    done_testing()


if __name__ == "__main__":
    main()
