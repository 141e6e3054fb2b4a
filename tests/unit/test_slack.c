/* test_slack.c - the slack plugin with no network: both URL forms (incoming webhook, bot
 * token), the request and the exact JSON it builds (header, mrkdwn sections, context line,
 * colour by severity), Markdown -> mrkdwn, long bodies per overflow, every response class of
 * both APIs (CONTRACTS.md, Slack), test() and secret redaction. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "tap.h"
#include "plugintest.h"

#define WEBHOOK "https://hooks.slack.com/services/T0001/B0002/XyZsecret42"
#define BOT_TOKEN "xoxb-1111-2222-SeCrEt"
#define MARKER "\n_[…] (truncated by herald)_"

/* The blocks of the attachment, and how many sections they hold. */
static json_t *blocks_of(json_t *o, size_t *nsections)
{
    json_t *b = jget(o, "attachments.0.blocks");
    *nsections = 0;
    for (size_t i = 0; i < json_array_size(b); i++)
        if (!strcmp(jstr(json_array_get(b, i), "type") ? jstr(json_array_get(b, i), "type") : "",
                    "section"))
            (*nsections)++;
    return b;
}

/* The text of the only section for a body: the mrkdwn conversion. */
static char *convert(herald_channel *ch, herald_event *ev, const char *body)
{
    herald_exchange ex;
    ev->body = (char *)body;
    json_t *o = send_ev(ch, ev, &ex);
    size_t n;
    blocks_of(o, &n);
    char *text = n == 1 ? hr_strdup(jstr(o, "attachments.0.blocks.1.text.text")) : NULL;
    if (n != 1)
        printf("#   %zu sections\n", n);
    json_decref(o);
    hr_exchange_clear(&ex);
    return text;
}

static void mrkdwn_is(herald_channel *ch, herald_event *ev, const char *md, const char *want,
                      const char *label)
{
    char *got = convert(ch, ev, md);
    is_str(got, want, label);
    free(got);
}

static void expect(herald_channel *ch, long code, herald_status transport, const char *body,
                   herald_verdict v, herald_status st, const char *label)
{
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, code, transport, NULL, body), v, st, label);
}

int main(void)
{
    int status;
    if (!plugin_setup("slack", "s", &status))
        return status;
    char err[1024] = "";

    /* ---- URL forms ---- */
    herald_channel *hook = open_url("slack://T0001/B0002/XyZsecret42", err, sizeof err);
    if (!ok(hook != NULL, "slack://T/B/X accepted"))
        printf("#   %s\n", err);
    herald_channel *bot = open_url("slack://" BOT_TOKEN "/C0123ABC", err, sizeof err);
    if (!ok(bot != NULL, "slack://xoxb-TOKEN/CHANNEL accepted"))
        printf("#   %s\n", err);
    if (!hook || !bot)
        return done_testing();
    is_str(setting(hook, "url"), WEBHOOK, "webhook form: url is the hooks.slack.com URL");
    ok(!setting(hook, "token"), "webhook form: no token");
    is_str(setting(bot, "token"), BOT_TOKEN, "bot form: the host is the token");
    is_str(setting(bot, "channel"), "C0123ABC", "bot form: the path is the channel");
    ok(!setting(bot, "url"), "bot form: no webhook url");
    char *red = hr_redact("posting to " WEBHOOK " failed");
    is_str(red, "posting to *** failed", "the webhook URL (url, a secret setting) is redacted");
    free(red);
    red = hr_redact("path T0001/B0002/XyZsecret42 leaked");
    is_str(red, "path *** leaked", "the webhook's T/B/X path alone is redacted too");
    free(red);
    red = hr_redact("token " BOT_TOKEN " refused");
    is_str(red, "token *** refused", "the bot token is a secret: redacted");
    free(red);
    herald_channel *bad = open_url("slack://T0001", err, sizeof err);
    ok(!bad, "slack://T without B/X refused");
    like(err, "slack://T.../B.../XXXX or slack://xoxb-TOKEN/CHANNEL", "the error shows both forms");
    bad = open_url("slack://xoxb-1-2/", err, sizeof err);
    ok(!bad, "a bot token without a channel refused");
    bad = open_conf("channels = ({ name = \"b\"; plugin = \"slack\"; token = \"xoxb-1\"; });\n",
                    err, sizeof err);
    ok(!bad, "config: token without channel refused");
    like(err, "a bot token needs channel", "and the error says so");
    bad = open_conf("channels = ({ name = \"b\"; plugin = \"slack\"; url = \"" WEBHOOK "\";"
                    " token = \"xoxb-1\"; channel = \"C1\"; });\n", err, sizeof err);
    ok(!bad, "config: url and token together refused");
    bad = open_conf("channels = ({ name = \"b\"; plugin = \"slack\"; "
                    "url = \"https://example.org/hook\"; });\n", err, sizeof err);
    ok(!bad, "config: a url that is no incoming webhook refused");
    bad = open_conf("channels = ({ name = \"b\"; url = \"slack://T1/B2/X3\"; overflow = \"cut\"; });\n",
                    err, sizeof err);
    ok(!bad, "config: an unknown overflow value refused");
    if (bad)
        hr_channel_close(bad);

    /* ---- the webhook request ---- */
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "backup.failed";
    ev.title = "Backup of db01 failed";
    ev.body = "The **nightly** job stopped.";
    ev.source = "cron";
    ev.severity = HERALD_SEVERITY_WARNING;
    hr_event_stamp(&ev);
    herald_exchange ex;
    json_t *o = send_ev(hook, &ev, &ex);
    ok(ex.kind == HR_EX_HTTP, "send describes an HTTP request");
    is_str(ex.method, "POST", "webhook: POST");
    is_str(ex.url, WEBHOOK, "webhook: to the webhook URL itself");
    is_str(header(&ex, "Content-Type"), "application/json; charset=utf-8", "Content-Type JSON, utf-8");
    ok(!header(&ex, "Authorization"), "webhook: no Authorization header (the URL is the secret)");
    is_int(ex.timeout_ms, 10000, "default timeout 10 s");
    ok(o && json_object_size(o) == 2 && jget(o, "text") && jget(o, "attachments"),
       "webhook JSON: exactly text and attachments (no channel)");
    is_str(jstr(o, "text"), "Backup of db01 failed: The *nightly* job stopped.",
           "text: the notification fallback, title: mrkdwn body");
    is_int(json_array_size(jget(o, "attachments")), 1, "one attachment");
    is_str(jstr(o, "attachments.0.color"), "#F39C12", "warning: orange attachment colour");
    size_t nsec;
    json_t *blocks = blocks_of(o, &nsec);
    is_int(json_array_size(blocks), 3, "blocks: header, one section, context");
    is_str(jstr(blocks, "0.type"), "header", "block 0 is the header");
    is_str(jstr(blocks, "0.text.type"), "plain_text", "header text is plain_text");
    is_str(jstr(blocks, "0.text.text"), "Backup of db01 failed", "header text is the title");
    ok(json_is_true(jget(blocks, "0.text.emoji")), "header: emoji true");
    is_str(jstr(blocks, "1.type"), "section", "block 1 is a section");
    is_str(jstr(blocks, "1.text.type"), "mrkdwn", "section text is mrkdwn");
    is_str(jstr(blocks, "1.text.text"), "The *nightly* job stopped.", "section: the body as mrkdwn");
    is_str(jstr(blocks, "2.type"), "context", "last block is the context line");
    is_int(json_array_size(jget(blocks, "2.elements")), 1, "context: one element");
    is_str(jstr(blocks, "2.elements.0.type"), "mrkdwn", "context element is mrkdwn");
    is_str(jstr(blocks, "2.elements.0.text"), "backup.failed · cron · warning",
           "context: type · source · severity");
    json_decref(o);
    hr_exchange_clear(&ex);

    /* No source; an empty body: no section, text is the title alone. */
    ev.source = NULL;
    ev.body = "";
    o = send_ev(hook, &ev, &ex);
    blocks = blocks_of(o, &nsec);
    is_int(nsec, 0, "empty body: no section block (Slack refuses empty text)");
    is_str(jstr(o, "text"), "Backup of db01 failed", "empty body: text is the title, no colon");
    is_str(jstr(blocks, "1.elements.0.text"), "backup.failed · warning",
           "no source: context is type · severity");
    json_decref(o);
    hr_exchange_clear(&ex);
    ev.source = "cron";

    /* Colour by severity (defaults), and a configured colour. */
    {
        static const char *const want[] = {"#95A5A6", "#3498DB", "#2ECC71",
                                           "#F39C12", "#E74C3C", "#992D22"};
        int all = 1;
        for (int s = HERALD_SEVERITY_DEBUG; s <= HERALD_SEVERITY_CRITICAL; s++) {
            ev.severity = (herald_severity)s;
            o = send_ev(hook, &ev, &ex);
            const char *c = jstr(o, "attachments.0.color");
            if (!c || strcmp(c, want[s])) {
                printf("#   %s: got %s, want %s\n", hr_severity_name(ev.severity), c ? c : "(null)",
                       want[s]);
                all = 0;
            }
            json_decref(o);
            hr_exchange_clear(&ex);
        }
        ok(all, "attachment colour per severity: grey, blue, green, orange, red, dark red");
        ev.severity = HERALD_SEVERITY_WARNING;
    }
    herald_channel *coloured =
        open_conf("channels = ({ name = \"c\"; url = \"slack://T1/B2/X3\";"
                  " colors = { error = 0x112233; critical = 255; }; });\n", err, sizeof err);
    if (!ok(coloured != NULL, "config: colors map accepted (hex numbers)"))
        printf("#   %s\n", err);
    if (coloured) {
        ev.severity = HERALD_SEVERITY_ERROR;
        o = send_ev(coloured, &ev, &ex);
        is_str(jstr(o, "attachments.0.color"), "#112233", "configured colour for error");
        json_decref(o);
        hr_exchange_clear(&ex);
        ev.severity = HERALD_SEVERITY_CRITICAL;
        o = send_ev(coloured, &ev, &ex);
        is_str(jstr(o, "attachments.0.color"), "#0000FF", "configured colour 255 -> #0000FF");
        json_decref(o);
        hr_exchange_clear(&ex);
        ev.severity = HERALD_SEVERITY_WARNING;
        o = send_ev(coloured, &ev, &ex);
        is_str(jstr(o, "attachments.0.color"), "#F39C12", "unconfigured severity keeps its default");
        json_decref(o);
        hr_exchange_clear(&ex);
        hr_channel_close(coloured);
    }
    bad = open_conf("channels = ({ name = \"c\"; url = \"slack://T1/B2/X3\";"
                    " colors = { fatal = 1; }; });\n", err, sizeof err);
    ok(!bad, "config: a colour for an unknown severity refused");
    bad = open_conf("channels = ({ name = \"c\"; url = \"slack://T1/B2/X3\";"
                    " colors = { error = 0x1000000; }; });\n", err, sizeof err);
    ok(!bad, "config: a colour over 0xFFFFFF refused");

    /* A long title: the header keeps 150 characters at most, ending in an ellipsis. */
    {
        char *title = repeat("Überlauf ", 30); /* 270 characters */
        ev.title = title;
        ev.body = "x";
        o = send_ev(hook, &ev, &ex);
        const char *h = jstr(o, "attachments.0.blocks.0.text.text");
        ok(h && chars(h) <= 150 && ends_with(h, "…") && !strncmp(h, title, strlen(h) - 3),
           "long title: header cut to <= 150 characters, a prefix of it, ending in …");
        ok(jstr(o, "text") && !strncmp(jstr(o, "text"), title, strlen(title)),
           "long title: the fallback text keeps the whole title");
        json_decref(o);
        hr_exchange_clear(&ex);
        free(title);
        title = repeat("Ü", 200); /* no word end: cut at exactly 149 + … */
        ev.title = title;
        o = send_ev(hook, &ev, &ex);
        h = jstr(o, "attachments.0.blocks.0.text.text");
        ok(h && chars(h) == 150 && ends_with(h, "…"),
           "long title without spaces: header exactly 150 characters, the last one …");
        json_decref(o);
        hr_exchange_clear(&ex);
        free(title);
        ev.title = "Backup of db01 failed";
    }

    /* ---- Markdown -> mrkdwn ---- */
    mrkdwn_is(hook, &ev, "a **bold** b", "a *bold* b", "**bold** -> *bold*");
    mrkdwn_is(hook, &ev, "a __bold__ b", "a *bold* b", "__bold__ -> *bold*");
    mrkdwn_is(hook, &ev, "an *italic* word", "an _italic_ word", "*italic* -> _italic_");
    mrkdwn_is(hook, &ev, "an _italic_ word", "an _italic_ word", "_italic_ stays _italic_");
    mrkdwn_is(hook, &ev, "see [the log](https://ci.example.org/log/7) now",
              "see <https://ci.example.org/log/7|the log> now", "[text](url) -> <url|text>");
    mrkdwn_is(hook, &ev, "# Heading\nbody", "*Heading*\nbody", "# heading -> bold line");
    mrkdwn_is(hook, &ev, "x\n### Deep\ny", "x\n*Deep*\ny", "### heading mid-text -> bold line");
    mrkdwn_is(hook, &ev, "#hashtag and a # b", "#hashtag and a # b",
              "# without a space, or not at a line start, is text");
    mrkdwn_is(hook, &ev, "Q&A: 1 < 2 > 0", "Q&amp;A: 1 &lt; 2 &gt; 0", "& < > escaped");
    mrkdwn_is(hook, &ev, "hey <!channel> and <@U123>", "hey &lt;!channel&gt; and &lt;@U123&gt;",
              "<!channel> and <@U...> in a body are escaped, so they cannot ping");
    mrkdwn_is(hook, &ev, "run `a*b*c` and\n```\n**x** & y\n```",
              "run `a*b*c` and\n```\n**x** &amp; y\n```",
              "code spans and blocks kept verbatim, & < > still escaped");
    /* Headings and links are text too: their & < > must be escaped like the rest. */
    mrkdwn_is(hook, &ev, "# Q&A <now>\nbody", "*Q&amp;A &lt;now&gt;*\nbody",
              "a heading's & < > escaped");
    mrkdwn_is(hook, &ev, "# Deploy <!everyone>", "*Deploy &lt;!everyone&gt;*",
              "a heading cannot ping @everyone");
    mrkdwn_is(hook, &ev, "[a <b> & c](https://x.example/?p=1&q=2)",
              "<https://x.example/?p=1&amp;q=2|a &lt;b&gt; &amp; c>",
              "a link's text and URL have & < > escaped");
    mrkdwn_is(hook, &ev, "[all](!everyone) [me](@U123)", "[all](!everyone) [me](@U123)",
              "a link whose target is no URL stays text: [x](!everyone) cannot ping");
    mrkdwn_is(hook, &ev, "[unclosed](https://x\nnext)", "[unclosed](https://x\nnext)",
              "a link broken across lines stays text");

    /* ---- long bodies: 3,000-character sections, up to 40 ---- */
    {
        char *body = repeat("word ", 1400); /* 7,000 characters */
        ev.body = body;
        o = send_ev(hook, &ev, &ex);
        blocks = blocks_of(o, &nsec);
        is_int(nsec, 3, "split (default): 7,000 characters in 3 sections");
        hr_buf all = {0};
        int within = 1;
        for (size_t i = 1; i <= nsec; i++) {
            const char *t = jstr(json_array_get(blocks, i), "text.text");
            within &= t && chars(t) <= 3000;
            hr_buf_adds(&all, t ? t : "");
        }
        ok(within, "split: every section <= 3,000 characters");
        is_str(all.data, body, "split: the sections together are the whole body, nothing lost");
        ok(all.data && !strstr(all.data, "truncated by herald"), "split: no truncation marker");
        ok(!strncmp(jstr(blocks, "1.text.text") ? jstr(blocks, "1.text.text") : "", "word word", 9) &&
               ends_with(jstr(blocks, "1.text.text"), " "),
           "split: cut at a word end");
        ok(chars(jstr(o, "text")) <= strlen(ev.title) + 2 + 300,
           "split: the fallback text is short (title + 300 characters)");
        hr_buf_free(&all);
        json_decref(o);
        hr_exchange_clear(&ex);

        herald_channel *tr = open_conf("channels = ({ name = \"t\"; url = \"slack://T1/B2/X3\";"
                                       " overflow = \"truncate\"; });\n", err, sizeof err);
        herald_channel *up = open_conf("channels = ({ name = \"u\"; url = \"slack://T1/B2/X3\";"
                                       " overflow = \"upstream\"; });\n", err, sizeof err);
        ok(tr && up, "config: overflow truncate and upstream accepted");
        if (tr) {
            o = send_ev(tr, &ev, &ex);
            blocks = blocks_of(o, &nsec);
            const char *t = jstr(blocks, "1.text.text");
            is_int(nsec, 1, "truncate: one section");
            ok(t && chars(t) <= 3000, "truncate: within 3,000 characters");
            ok(ends_with(t, MARKER), "truncate: ends with the visible marker");
            ok(t && !strncmp(t, body, strlen(t) - strlen(MARKER)), "truncate: a prefix of the body");
            json_decref(o);
            hr_exchange_clear(&ex);
            ev.body = "short";
            o = send_ev(tr, &ev, &ex);
            is_str(jstr(o, "attachments.0.blocks.1.text.text"), "short",
                   "truncate: a short body has no marker");
            json_decref(o);
            hr_exchange_clear(&ex);
            ev.body = body;
            hr_channel_close(tr);
        }
        if (up) {
            o = send_ev(up, &ev, &ex);
            blocks = blocks_of(o, &nsec);
            is_int(nsec, 1, "upstream: one section");
            is_str(jstr(blocks, "1.text.text"), body, "upstream: the whole body, uncut");
            json_decref(o);
            hr_exchange_clear(&ex);
            hr_channel_close(up);
        }
        free(body);

        /* No word ends, and the cut at 3,000 would fall inside "&amp;", then inside a link. */
        char *xs = repeat("x", 2998);
        hr_buf b = {0};
        hr_buf_adds(&b, xs);
        hr_buf_adds(&b, "&yy");
        ev.body = b.data;
        o = send_ev(hook, &ev, &ex);
        blocks = blocks_of(o, &nsec);
        is_str(jstr(blocks, "1.text.text"), xs, "split: no cut inside &amp; (section 1)");
        is_str(jstr(blocks, "2.text.text"), "&amp;yy", "split: no cut inside &amp; (section 2)");
        json_decref(o);
        hr_exchange_clear(&ex);
        b.len = 2990;
        b.data[b.len] = '\0';
        hr_buf_adds(&b, "[log](https://ci.example/7)z");
        ev.body = b.data;
        o = send_ev(hook, &ev, &ex);
        blocks = blocks_of(o, &nsec);
        ok(jstr(blocks, "1.text.text") && strlen(jstr(blocks, "1.text.text")) == 2990,
           "split: no cut inside a <url|text> link (section 1 ends before it)");
        is_str(jstr(blocks, "2.text.text"), "<https://ci.example/7|log>z",
               "split: the link whole in section 2");
        json_decref(o);
        hr_exchange_clear(&ex);
        hr_buf_free(&b);
        free(xs);

        body = repeat("é", 7000); /* no word ends: cut at exactly 3,000 characters */
        ev.body = body;
        o = send_ev(hook, &ev, &ex);
        blocks = blocks_of(o, &nsec);
        ok(nsec == 3 && chars(jstr(blocks, "1.text.text")) == 3000 &&
               chars(jstr(blocks, "2.text.text")) == 3000 &&
               chars(jstr(blocks, "3.text.text")) == 1000,
           "split without spaces: 3,000 + 3,000 + 1,000 characters (not bytes)");
        json_decref(o);
        hr_exchange_clear(&ex);
        free(body);

        body = repeat("0123456789 ", 12000); /* 132,000 characters: over 40 x 3,000 */
        ev.body = body;
        o = send_ev(hook, &ev, &ex);
        blocks = blocks_of(o, &nsec);
        is_int(nsec, 40, "split: at most 40 sections");
        ok(json_array_size(blocks) <= 50, "split: at most 50 blocks in all");
        within = 1;
        for (size_t i = 1; i <= nsec; i++)
            within &= chars(jstr(json_array_get(blocks, i), "text.text")) <= 3000;
        ok(within, "split: every one of the 40 sections <= 3,000 characters");
        ok(ends_with(jstr(json_array_get(blocks, 40), "text.text"), MARKER),
           "split: the 40th section ends with the truncation marker");
        is_str(jstr(json_array_get(blocks, 41), "type"), "context", "the context line still last");
        json_decref(o);
        hr_exchange_clear(&ex);
        free(body);
        ev.body = "The **nightly** job stopped.";
    }

    /* ---- the bot token: chat.postMessage ---- */
    o = send_ev(bot, &ev, &ex);
    is_str(ex.method, "POST", "bot: POST");
    is_str(ex.url, "https://slack.com/api/chat.postMessage", "bot: to chat.postMessage");
    is_str(header(&ex, "Authorization"), "Bearer " BOT_TOKEN, "bot: Authorization: Bearer token");
    is_str(header(&ex, "Content-Type"), "application/json; charset=utf-8", "bot: Content-Type JSON");
    ok(!strstr(ex.url, BOT_TOKEN) && ex.body.data && !strstr(ex.body.data, BOT_TOKEN),
       "bot: the token is neither in the URL nor in the body");
    is_str(jstr(o, "channel"), "C0123ABC", "bot JSON: channel");
    is_str(jstr(o, "text"), "Backup of db01 failed: The *nightly* job stopped.", "bot JSON: text");
    is_str(jstr(o, "attachments.0.blocks.0.text.text"), "Backup of db01 failed",
           "bot JSON: the same blocks as the webhook");
    json_decref(o);
    hr_exchange_clear(&ex);
    herald_channel *bot2 =
        open_conf("channels = ({ name = \"b\"; plugin = \"slack\"; token = \"xoxb-9\";"
                  " channel = \"#ops\"; api_url = \"http://127.0.0.1:8099/api/\"; });\n",
                  err, sizeof err);
    if (!ok(bot2 != NULL, "config: token + channel + api_url accepted"))
        printf("#   %s\n", err);
    if (bot2) {
        o = send_ev(bot2, &ev, &ex);
        is_str(ex.url, "http://127.0.0.1:8099/api/chat.postMessage",
               "api_url: the Web API base, trailing slash dropped");
        is_str(jstr(o, "channel"), "#ops", "channel as configured (#name)");
        json_decref(o);
        hr_exchange_clear(&ex);
    }

    /* ---- webhook responses: plain-text codes ---- */
    expect(hook, 200, HERALD_OK, "ok", HERALD_VERDICT_OK, HERALD_OK, "webhook 200 ok: delivered");
    expect(hook, 400, HERALD_OK, "invalid_payload", HERALD_VERDICT_FAILED, HERALD_E_REJECTED,
           "webhook 400 invalid_payload: failed");
    expect(hook, 400, HERALD_OK, "no_text", HERALD_VERDICT_FAILED, HERALD_E_REJECTED,
           "webhook 400 no_text: failed");
    expect(hook, 403, HERALD_OK, "action_prohibited", HERALD_VERDICT_FAILED, HERALD_E_AUTH,
           "webhook 403 action_prohibited: failed (auth)");
    expect(hook, 403, HERALD_OK, "invalid_token", HERALD_VERDICT_FAILED, HERALD_E_AUTH,
           "webhook 403 invalid_token: failed (auth)");
    expect(hook, 404, HERALD_OK, "channel_not_found", HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND,
           "webhook 404 channel_not_found: failed (not found)");
    expect(hook, 404, HERALD_OK, "no_service", HERALD_VERDICT_DISABLE, HERALD_E_GONE,
           "webhook 404 no_service: disable (the webhook was removed)");
    expect(hook, 410, HERALD_OK, "channel_is_archived", HERALD_VERDICT_DISABLE, HERALD_E_GONE,
           "webhook 410 channel_is_archived: disable");
    expect(hook, 500, HERALD_OK, "rollup_error", HERALD_VERDICT_RETRY, HERALD_E_SERVER,
           "webhook 500 rollup_error: retry");
    expect(hook, 503, HERALD_OK, "", HERALD_VERDICT_RETRY, HERALD_E_SERVER, "webhook 503: retry");
    expect(hook, 302, HERALD_OK, "", HERALD_VERDICT_FAILED, HERALD_E_REDIRECT,
           "webhook 302: failed, never followed");
    expect(hook, 0, HERALD_E_CONNECT, NULL, HERALD_VERDICT_RETRY, HERALD_E_CONNECT,
           "connection refused: retry");
    expect(hook, 0, HERALD_E_TIMEOUT, NULL, HERALD_VERDICT_RETRY, HERALD_E_TIMEOUT, "timeout: retry");
    expect(hook, 0, HERALD_E_TLS, NULL, HERALD_VERDICT_FAILED, HERALD_E_TLS, "TLS failure: failed");
    herald_result res = classify(hook, HERALD_PURPOSE_SEND, 400, HERALD_OK, NULL, "invalid_blocks");
    like(res.detail, "invalid_blocks", "the detail quotes Slack's error code");
    {
        long long before = hr_now_ms();
        res = classify(hook, HERALD_PURPOSE_SEND, 429, HERALD_OK, "30", "rate limited");
        long long after = hr_now_ms();
        verdict_is(res, HERALD_VERDICT_RETRY, HERALD_E_RATE_LIMITED, "webhook 429: retry, rate limited");
        ok(res.retry_at >= before + 30000 && res.retry_at <= after + 30000,
           "webhook 429: retry_at = now + Retry-After seconds");
        res = classify(hook, HERALD_PURPOSE_SEND, 429, HERALD_OK, NULL, "rate limited");
        ok(res.verdict == HERALD_VERDICT_RETRY && res.retry_at == 0,
           "webhook 429 without Retry-After: retry by backoff (no retry_at)");
    }

    /* ---- bot responses: 200 with ok true/false ---- */
    res = classify(bot, HERALD_PURPOSE_SEND, 200, HERALD_OK, NULL,
                   "{\"ok\":true,\"channel\":\"C0123ABC\",\"ts\":\"1503435956.000247\"}");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "bot {\"ok\":true}: delivered");
    like(res.detail, "C0123ABC", "bot ok: the detail names the channel");
    expect(bot, 200, HERALD_OK, "{\"ok\":false,\"error\":\"invalid_auth\"}", HERALD_VERDICT_FAILED,
           HERALD_E_AUTH, "bot invalid_auth: failed (auth)");
    expect(bot, 200, HERALD_OK, "{\"ok\":false,\"error\":\"not_authed\"}", HERALD_VERDICT_FAILED,
           HERALD_E_AUTH, "bot not_authed: failed (auth)");
    expect(bot, 200, HERALD_OK, "{\"ok\":false,\"error\":\"token_revoked\"}", HERALD_VERDICT_FAILED,
           HERALD_E_AUTH, "bot token_revoked: failed (auth)");
    expect(bot, 200, HERALD_OK, "{\"ok\":false,\"error\":\"missing_scope\"}", HERALD_VERDICT_FAILED,
           HERALD_E_AUTH, "bot missing_scope: failed (auth)");
    res = classify(bot, HERALD_PURPOSE_SEND, 200, HERALD_OK, NULL,
                   "{\"ok\":false,\"error\":\"channel_not_found\"}");
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND, "bot channel_not_found: failed");
    ok(strstr(res.detail, "C0123ABC") && strstr(res.detail, "invite the bot"),
       "bot channel_not_found: the detail names the channel and the fix");
    expect(bot, 200, HERALD_OK, "{\"ok\":false,\"error\":\"is_archived\"}", HERALD_VERDICT_FAILED,
           HERALD_E_NOT_FOUND, "bot is_archived: failed");
    expect(bot, 200, HERALD_OK, "{\"ok\":false,\"error\":\"not_in_channel\"}",
           HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND, "bot not_in_channel: failed");
    expect(bot, 200, HERALD_OK, "{\"ok\":false,\"error\":\"internal_error\"}", HERALD_VERDICT_RETRY,
           HERALD_E_SERVER, "bot internal_error: retry");
    res = classify(bot, HERALD_PURPOSE_SEND, 200, HERALD_OK, NULL,
                   "{\"ok\":false,\"error\":\"msg_too_long\"}");
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "bot msg_too_long: failed (rejected)");
    like(res.detail, "msg_too_long", "bot: the detail quotes Slack's error");
    expect(bot, 200, HERALD_OK, "<html>proxy</html>", HERALD_VERDICT_FAILED, HERALD_E_REJECTED,
           "bot: 200 that is not Slack's JSON is no success");
    {
        long long before = hr_now_ms();
        res = classify(bot, HERALD_PURPOSE_SEND, 429, HERALD_OK, "7", "");
        verdict_is(res, HERALD_VERDICT_RETRY, HERALD_E_RATE_LIMITED, "bot 429: retry");
        ok(res.retry_at >= before + 7000 && res.retry_at <= hr_now_ms() + 7000,
           "bot 429: retry_at from Retry-After");
    }
    expect(bot, 500, HERALD_OK, "", HERALD_VERDICT_RETRY, HERALD_E_SERVER, "bot 500: retry");
    expect(bot, 404, HERALD_OK, "", HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND,
           "bot 404 (wrong api_url): failed");

    /* ---- test(): auth.test for a bot; the webhook's host only ---- */
    herald_message m = {.ev = &ev};
    hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
    res = (herald_result){0};
    is_int(plugin->info->test(bot->state, 0, &m, &ex, &res), HERALD_OK, "bot test: describes a request");
    is_str(ex.method, "POST", "bot test: POST");
    is_str(ex.url, "https://slack.com/api/auth.test", "bot test: auth.test");
    is_str(header(&ex, "Authorization"), "Bearer " BOT_TOKEN, "bot test: with the token");
    is_int(ex.body.len, 0, "bot test: posts nothing");
    hr_exchange_clear(&ex);
    res = classify(bot, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL,
                   "{\"ok\":true,\"url\":\"https://acme.slack.com/\",\"team\":\"Acme\","
                   "\"user\":\"herald\",\"team_id\":\"T1\",\"user_id\":\"U1\"}");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "bot test: auth.test ok -> ok");
    ok(strstr(res.detail, "Acme") && strstr(res.detail, "nothing was posted"),
       "bot test: names the workspace, says nothing was posted");
    res = classify(bot, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL,
                   "{\"ok\":false,\"error\":\"invalid_auth\"}");
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "bot test: invalid_auth -> failed (auth)");

    hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
    res = (herald_result){0};
    is_int(plugin->info->test(hook->state, 0, &m, &ex, &res), HERALD_OK,
           "webhook test: describes a step");
    ok(ex.kind == HR_EX_CONNECT, "webhook test: a bare connection, nothing posted");
    is_str(ex.url, WEBHOOK, "webhook test: to the webhook's host (TLS verified)");
    is_int(ex.body.len, 0, "webhook test: no body");
    hr_exchange_clear(&ex);
    res = classify(hook, HERALD_PURPOSE_TEST, 0, HERALD_OK, NULL, NULL);
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "webhook test: connected -> ok");
    ok(strstr(res.detail, "nothing was sent") && strstr(res.detail, "--send"),
       "webhook test: says nothing was sent and how to send a real one");
    res = classify(hook, HERALD_PURPOSE_TEST, 0, HERALD_E_TLS, NULL, NULL);
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_TLS, "webhook test: TLS failure -> failed");
    res = classify(hook, HERALD_PURPOSE_TEST, 0, HERALD_E_CONNECT, NULL, NULL);
    ok(res.verdict != HERALD_VERDICT_OK, "webhook test: connection refused is no success");

    hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
    res = (herald_result){0};
    plugin->info->test(hook->state, HERALD_TEST_SEND, &m, &ex, &res);
    ok(ex.kind == HR_EX_HTTP && !strcmp(ex.method ? ex.method : "", "POST") &&
           !strcmp(ex.url ? ex.url : "", WEBHOOK) && ex.body.len > 0,
       "webhook test --send: posts the real message");
    hr_exchange_clear(&ex);
    res = classify(hook, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL, "ok");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "webhook test --send: 200 ok -> ok");
    like(res.detail, "a real test message was posted", "and says a real message was posted");

    if (bot2)
        hr_channel_close(bot2);
    hr_channel_close(bot);
    hr_channel_close(hook);
    hr_loader_free(loader);
    return done_testing();
}
