/* test_ntfy.c - the ntfy plugin with no network: URL forms, the JSON publish (topic, title,
 * message, priority from severity, tags, click, markdown), Bearer and Basic auth, the
 * 4,096-byte message limit per overflow (split parts across steps, truncate, upstream),
 * every response class (CONTRACTS.md, ntfy), test() on /v1/health and secret redaction. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "tap.h"
#include "plugintest.h"

#define TOKEN "tk_AbC123secretXYZ"
#define MARKER " [...] (truncated by herald)"

static void expect(herald_channel *ch, long code, const char *body, herald_verdict v,
                   herald_status st, const char *label)
{
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, code, HERALD_OK, NULL, body), v, st, label);
}

/* A whole delivery: send(), then interpret() answering 200 to each part; the
 * published JSON objects are appended to `msgs`. Returns the number of parts. */
static int deliver_parts(herald_channel *ch, const herald_event *ev, json_t *msgs,
                         herald_result *final)
{
    herald_message m = {.ev = ev};
    herald_exchange ex;
    herald_result res = {0};
    hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
    plugin->info->send(ch->state, &m, &ex, &res);
    int parts = 0;
    for (int guard = 0; guard < 12; guard++) {
        json_array_append_new(msgs, body_json(&ex));
        parts++;
        herald_response r = response(200, HERALD_OK, NULL,
                                     "{\"id\":\"x1\",\"time\":1,\"event\":\"message\","
                                     "\"topic\":\"alerts\",\"message\":\"m\"}");
        res = (herald_result){0};
        plugin->info->interpret(ch->state, &m, &r, &ex, &res);
        hr_response_clear(&r);
        if (res.verdict != HERALD_VERDICT_CONTINUE)
            break;
        if (!ex.url || strcmp(ex.method ? ex.method : "", "POST"))
            printf("#   part %d: no POST described\n", parts + 1);
    }
    hr_exchange_clear(&ex);
    *final = res;
    return parts;
}

int main(void)
{
    int status;
    if (!plugin_setup("ntfy", "n", &status))
        return status;
    char err[1024] = "";

    /* ---- URL forms ---- */
    herald_channel *ch = open_url("ntfys://" TOKEN "@ntfy.example.org/alerts", err, sizeof err);
    if (!ok(ch != NULL, "ntfys://token@host/topic accepted"))
        printf("#   %s\n", err);
    if (!ch)
        return done_testing();
    is_str(setting(ch, "url"), "https://ntfy.example.org", "ntfys:// -> https://host");
    is_str(setting(ch, "topic"), "alerts", "the last path segment is the topic");
    is_str(setting(ch, "token"), TOKEN, "the user part is the access token");
    char *red = hr_redact("token " TOKEN " refused");
    is_str(red, "token *** refused", "the token is a secret: redacted");
    free(red);
    herald_channel *plain = open_url("ntfy://ntfy.local:8080/sub/path/alerts", err, sizeof err);
    if (!ok(plain != NULL, "ntfy://host:port/path/topic accepted"))
        printf("#   %s\n", err);
    is_str(plain ? setting(plain, "url") : NULL, "http://ntfy.local:8080/sub/path",
           "ntfy:// -> http://, port and path prefix kept");
    is_str(plain ? setting(plain, "topic") : NULL, "alerts", "topic after the prefix");
    herald_channel *basic = open_url("ntfy://alice:pa%40ss-w0rd@ntfy.local/alerts", err, sizeof err);
    if (!ok(basic != NULL, "ntfy://user:password@host/topic accepted"))
        printf("#   %s\n", err);
    is_str(basic ? setting(basic, "user") : NULL, "alice", "user from the URL");
    is_str(basic ? setting(basic, "password") : NULL, "pa@ss-w0rd", "password percent-decoded");
    red = hr_redact("password pa@ss-w0rd refused");
    is_str(red, "password *** refused", "the password is a secret: redacted");
    free(red);
    {
        char *b64 = hr_base64("alice:pa@ss-w0rd", 16);
        char line[200];
        snprintf(line, sizeof line, "Authorization: Basic %s", b64);
        red = hr_redact(line);
        is_str(red, "Authorization: Basic ***", "the Basic credentials are redacted too");
        free(red);
        free(b64);
    }
    herald_channel *bad = open_url("ntfy://ntfy.local/", err, sizeof err);
    ok(!bad, "a URL without a topic refused");
    like(err, "ntfy://[token@]host[:port]/topic", "and the error shows the form");
    bad = open_conf("channels = ({ name = \"n\"; plugin = \"ntfy\"; url = \"https://n.example\";"
                    " topic = \"a/b\"; });\n", err, sizeof err);
    ok(!bad, "config: a topic with / refused");
    bad = open_conf("channels = ({ name = \"n\"; plugin = \"ntfy\"; url = \"https://n.example\";"
                    " topic = \"t\"; token = \"tk_1\"; user = \"u\"; password = \"p\"; });\n",
                    err, sizeof err);
    ok(!bad, "config: token together with user/password refused");
    bad = open_conf("channels = ({ name = \"n\"; plugin = \"ntfy\"; url = \"ftp://n.example\";"
                    " topic = \"t\"; });\n", err, sizeof err);
    ok(!bad, "config: a url that is not http(s) refused");
    bad = open_conf("channels = ({ name = \"n\"; url = \"ntfy://h/t\"; priorities = { error = 6; }; });\n",
                    err, sizeof err);
    ok(!bad, "config: a priority outside 1-5 refused");
    if (bad)
        hr_channel_close(bad);

    /* ---- the publish request ---- */
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "disk.full";
    ev.title = "Disk \"full\" on db01";
    ev.body = "Only **2%** left on `/var`.";
    ev.source = "monitor";
    ev.severity = HERALD_SEVERITY_WARNING;
    hr_field fields[] = {{(char *)"host", (char *)"db01"},
                         {(char *)"url", (char *)"https://grafana.example.org/d/1"}};
    ev.fields = fields;
    ev.nfields = 2;
    hr_event_stamp(&ev);
    herald_exchange ex;
    json_t *o = send_ev(ch, &ev, &ex);
    ok(ex.kind == HR_EX_HTTP, "send describes an HTTP request");
    is_str(ex.method, "POST", "POST");
    is_str(ex.url, "https://ntfy.example.org/", "JSON publishing goes to {base}/");
    is_str(header(&ex, "Content-Type"), "application/json", "Content-Type: application/json");
    is_str(header(&ex, "Authorization"), "Bearer " TOKEN, "Authorization: Bearer token");
    ok(!strstr(ex.url, TOKEN) && ex.body.data && !strstr(ex.body.data, TOKEN),
       "the token is neither in the URL nor in the body");
    is_int(ex.timeout_ms, 10000, "default timeout 10 s");
    is_str(jstr(o, "topic"), "alerts", "JSON topic");
    is_str(jstr(o, "title"), "Disk \"full\" on db01", "JSON title (quotes escaped by JSON)");
    is_str(jstr(o, "message"), "Only **2%** left on `/var`.", "JSON message: the body as written");
    ok(json_is_integer(json_object_get(o, "priority")), "JSON priority is a number");
    is_int(json_integer_value(json_object_get(o, "priority")), 4, "warning -> priority 4 (high)");
    ok(json_is_true(json_object_get(o, "markdown")), "markdown: true by default");
    is_str(jstr(o, "click"), "https://grafana.example.org/d/1", "click: the event's url field");
    ok(!json_object_get(o, "tags"), "no tags unless configured");
    is_int(json_object_size(o), 6, "exactly topic, title, message, priority, markdown, click");
    json_decref(o);
    hr_exchange_clear(&ex);

    /* Priority per severity (defaults 1 2 3 4 4 5). */
    {
        static const int want[] = {1, 2, 3, 4, 4, 5};
        int all = 1;
        for (int s = HERALD_SEVERITY_DEBUG; s <= HERALD_SEVERITY_CRITICAL; s++) {
            ev.severity = (herald_severity)s;
            o = send_ev(ch, &ev, &ex);
            long long p = json_integer_value(json_object_get(o, "priority"));
            if (p != want[s]) {
                printf("#   %s: got %lld, want %d\n", hr_severity_name(ev.severity), p, want[s]);
                all = 0;
            }
            json_decref(o);
            hr_exchange_clear(&ex);
        }
        ok(all, "priority per severity: debug 1, info 2, notice 3, warning 4, error 4, critical 5");
        ev.severity = HERALD_SEVERITY_WARNING;
    }

    /* No click field; an empty body (ntfy needs a message): the title. */
    ev.nfields = 1;
    ev.body = "";
    o = send_ev(ch, &ev, &ex);
    ok(o && !json_object_get(o, "click"), "no url field: no click");
    is_str(jstr(o, "message"), "Disk \"full\" on db01", "empty body: the message is the title");
    json_decref(o);
    hr_exchange_clear(&ex);
    ev.nfields = 2;
    ev.body = "Only **2%** left on `/var`.";

    /* Basic and no authentication. */
    if (basic) {
        o = send_ev(basic, &ev, &ex);
        char *b64 = hr_base64("alice:pa@ss-w0rd", 16);
        char want[200];
        snprintf(want, sizeof want, "Basic %s", b64);
        is_str(header(&ex, "Authorization"), want, "user:password -> Authorization: Basic base64");
        is_str(ex.url, "http://ntfy.local/", "Basic: to {base}/ over http");
        free(b64);
        json_decref(o);
        hr_exchange_clear(&ex);
    }
    if (plain) {
        o = send_ev(plain, &ev, &ex);
        ok(!header(&ex, "Authorization"), "no credentials: no Authorization header");
        is_str(ex.url, "http://ntfy.local:8080/sub/path/", "path prefix kept: {base}/");
        json_decref(o);
        hr_exchange_clear(&ex);
    }

    /* Configured tags, markdown off, click_field, priorities. */
    herald_channel *conf =
        open_conf("channels = ({ name = \"n\"; url = \"ntfy://ntfy.local/alerts\";"
                  " tags = \"warning, skull,,rotating_light\"; markdown = false;"
                  " click_field = \"link\"; priorities = { error = 5; debug = 2; }; });\n",
                  err, sizeof err);
    if (!ok(conf != NULL, "config: tags, markdown, click_field, priorities accepted"))
        printf("#   %s\n", err);
    if (conf) {
        hr_field lf[] = {{(char *)"url", (char *)"https://ignored.example"},
                         {(char *)"link", (char *)"https://runbook.example/disk"}};
        ev.fields = lf;
        ev.severity = HERALD_SEVERITY_ERROR;
        o = send_ev(conf, &ev, &ex);
        json_t *tags = json_object_get(o, "tags");
        ok(json_is_array(tags) && json_array_size(tags) == 3 &&
               !strcmp(json_string_value(json_array_get(tags, 0)), "warning") &&
               !strcmp(json_string_value(json_array_get(tags, 1)), "skull") &&
               !strcmp(json_string_value(json_array_get(tags, 2)), "rotating_light"),
           "tags: a JSON array, split at commas, blanks and empty items dropped");
        ok(!json_is_true(json_object_get(o, "markdown")), "markdown = false: not marked Markdown");
        is_str(jstr(o, "click"), "https://runbook.example/disk", "click from the configured field");
        is_int(json_integer_value(json_object_get(o, "priority")), 5, "configured: error -> 5");
        json_decref(o);
        hr_exchange_clear(&ex);
        ev.severity = HERALD_SEVERITY_DEBUG;
        o = send_ev(conf, &ev, &ex);
        is_int(json_integer_value(json_object_get(o, "priority")), 2, "configured: debug -> 2");
        json_decref(o);
        hr_exchange_clear(&ex);
        ev.severity = HERALD_SEVERITY_WARNING;
        o = send_ev(conf, &ev, &ex);
        is_int(json_integer_value(json_object_get(o, "priority")), 4, "unconfigured keeps default");
        json_decref(o);
        hr_exchange_clear(&ex);
        ev.fields = fields;
        hr_channel_close(conf);
    }

    /* ---- the 4,096-byte message limit ---- */
    {
        ev.title = "Report";
        char *exact = repeat("abcd", 1024); /* 4,096 bytes */
        ev.body = exact;
        json_t *msgs = json_array();
        herald_result res;
        int parts = deliver_parts(ch, &ev, msgs, &res);
        is_int(parts, 1, "4,096 bytes: one message");
        is_str(jstr(json_array_get(msgs, 0), "message"), exact, "4,096 bytes: sent whole");
        is_str(jstr(json_array_get(msgs, 0), "title"), "Report", "one message: title unnumbered");
        verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "one message: ok");
        json_decref(msgs);
        free(exact);

        hr_buf b = {0};
        char *words = repeat("word ", 819); /* 4,095 bytes */
        hr_buf_adds(&b, words);
        hr_buf_adds(&b, "xy"); /* 4,097 */
        free(words);
        ev.body = b.data;
        msgs = json_array();
        parts = deliver_parts(ch, &ev, msgs, &res);
        is_int(parts, 2, "4,097 bytes, split (default): two messages");
        is_str(jstr(json_array_get(msgs, 0), "title"), "Report (1/2)", "split: title (1/2)");
        is_str(jstr(json_array_get(msgs, 1), "title"), "Report (2/2)", "split: title (2/2)");
        verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "split: ok after the last part");
        like(res.detail, "several messages", "split: the detail says so");
        hr_buf all = {0};
        int within = 1;
        for (int i = 0; i < parts; i++) {
            const char *msg = jstr(json_array_get(msgs, (size_t)i), "message");
            within &= msg && strlen(msg) <= 4096;
            hr_buf_adds(&all, msg ? msg : "");
        }
        ok(within, "split: every message <= 4,096 bytes");
        is_str(all.data, b.data, "split: the messages together are the whole body");
        ok(ends_with(jstr(json_array_get(msgs, 0), "message"), " "), "split: cut at a word end");
        hr_buf_free(&all);
        json_decref(msgs);
        hr_buf_free(&b);

        char *euro = repeat("€", 2000); /* 6,000 bytes, 3 per character, no spaces */
        ev.body = euro;
        msgs = json_array();
        parts = deliver_parts(ch, &ev, msgs, &res);
        is_int(parts, 2, "6,000 bytes of 3-byte characters: two messages");
        all = (hr_buf){0};
        within = 1;
        for (int i = 0; i < parts; i++) {
            const char *msg = jstr(json_array_get(msgs, (size_t)i), "message");
            within &= msg && strlen(msg) <= 4096 && strlen(msg) % 3 == 0;
            hr_buf_adds(&all, msg ? msg : "");
        }
        ok(within, "split: no UTF-8 sequence cut (every part whole characters, <= 4,096)");
        is_str(all.data, euro, "split: nothing lost");
        hr_buf_free(&all);
        json_decref(msgs);
        free(euro);

        char *huge = repeat("0123456789 ", 4000); /* 44,000 bytes: more than 8 x 4,096 */
        ev.body = huge;
        msgs = json_array();
        parts = deliver_parts(ch, &ev, msgs, &res);
        is_int(parts, 8, "44,000 bytes: at most 8 messages");
        within = 1;
        for (int i = 0; i < parts; i++)
            within &= strlen(jstr(json_array_get(msgs, (size_t)i), "message")) <= 4096;
        ok(within, "8 parts: every message <= 4,096 bytes");
        ok(ends_with(jstr(json_array_get(msgs, 7), "message"), MARKER),
           "8 parts: the last ends with the truncation marker");
        is_str(jstr(json_array_get(msgs, 7), "title"), "Report (8/8)", "8 parts: titled (8/8)");
        json_decref(msgs);

        herald_channel *tr = open_conf("channels = ({ name = \"t\"; url = \"ntfy://h/alerts\";"
                                       " overflow = \"truncate\"; });\n", err, sizeof err);
        herald_channel *up = open_conf("channels = ({ name = \"u\"; url = \"ntfy://h/alerts\";"
                                       " overflow = \"upstream\"; });\n", err, sizeof err);
        ok(tr && up, "config: overflow truncate and upstream accepted");
        if (tr) {
            msgs = json_array();
            parts = deliver_parts(tr, &ev, msgs, &res);
            const char *msg = jstr(json_array_get(msgs, 0), "message");
            is_int(parts, 1, "truncate: one message");
            ok(msg && strlen(msg) <= 4096 && ends_with(msg, MARKER),
               "truncate: <= 4,096 bytes ending with the visible marker");
            ok(msg && !strncmp(msg, huge, strlen(msg) - strlen(MARKER)), "truncate: a prefix");
            is_str(jstr(json_array_get(msgs, 0), "title"), "Report", "truncate: title unnumbered");
            verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "truncate: ok");
            json_decref(msgs);
            char *euro3 = repeat("€", 2000); /* 6,000 bytes in 2,000 characters */
            ev.body = euro3;
            msgs = json_array();
            deliver_parts(tr, &ev, msgs, &res);
            msg = jstr(json_array_get(msgs, 0), "message");
            ok(msg && strlen(msg) <= 4096 && ends_with(msg, MARKER) &&
                   (strlen(msg) - strlen(MARKER)) % 3 == 0,
               "truncate: the limit is in bytes, and no UTF-8 sequence is cut");
            json_decref(msgs);
            free(euro3);
            ev.body = huge;
            hr_channel_close(tr);
        }
        if (up) {
            msgs = json_array();
            parts = deliver_parts(up, &ev, msgs, &res);
            is_int(parts, 1, "upstream: one message");
            is_str(jstr(json_array_get(msgs, 0), "message"), huge, "upstream: the whole body");
            json_decref(msgs);
            hr_channel_close(up);
        }
        free(huge);
        ev.title = "Disk \"full\" on db01";
        ev.body = "Only **2%** left on `/var`.";
    }

    /* ---- responses ---- */
    herald_result res = classify(ch, HERALD_PURPOSE_SEND, 200, HERALD_OK, NULL,
                                 "{\"id\":\"hwQ2YpKdmg\",\"time\":1635528741,\"event\":\"message\","
                                 "\"topic\":\"alerts\",\"message\":\"x\"}");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "200: published");
    like(res.detail, "alerts", "the detail names the topic");
    res = classify(ch, HERALD_PURPOSE_SEND, 401, HERALD_OK, NULL,
                   "{\"code\":40101,\"http\":401,\"error\":\"unauthorized\"}");
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "401: failed (auth)");
    like(res.detail, "unauthorized (ntfy code 40101)", "the detail quotes ntfy's error and code");
    expect(ch, 403, "{\"code\":40301,\"http\":403,\"error\":\"forbidden\"}", HERALD_VERDICT_FAILED,
           HERALD_E_AUTH, "403: failed (auth)");
    res = classify(ch, HERALD_PURPOSE_SEND, 413, HERALD_OK, NULL,
                   "{\"code\":41301,\"http\":413,\"error\":\"request entity too large\"}");
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "413: failed (rejected)");
    like(res.detail, "overflow", "413: the detail points at the overflow setting");
    expect(ch, 400, "{\"code\":40001,\"http\":400,\"error\":\"invalid request\"}",
           HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "400: failed");
    expect(ch, 404, "{\"code\":40401,\"http\":404,\"error\":\"page not found\"}",
           HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND, "404: failed (not found)");
    expect(ch, 500, "", HERALD_VERDICT_RETRY, HERALD_E_SERVER, "500: retry");
    expect(ch, 503, "<html>down</html>", HERALD_VERDICT_RETRY, HERALD_E_SERVER, "503: retry");
    expect(ch, 307, "", HERALD_VERDICT_FAILED, HERALD_E_REDIRECT, "307: failed, not followed");
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, 0, HERALD_E_CONNECT, NULL, NULL),
               HERALD_VERDICT_RETRY, HERALD_E_CONNECT, "connection refused: retry");
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, 0, HERALD_E_TIMEOUT, NULL, NULL),
               HERALD_VERDICT_RETRY, HERALD_E_TIMEOUT, "timeout: retry");
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, 0, HERALD_E_TLS, NULL, NULL),
               HERALD_VERDICT_FAILED, HERALD_E_TLS, "TLS failure: failed");
    {
        long long before = hr_now_ms();
        res = classify(ch, HERALD_PURPOSE_SEND, 429, HERALD_OK, "42",
                       "{\"code\":42901,\"http\":429,\"error\":\"limit reached: too many requests\"}");
        long long after = hr_now_ms();
        verdict_is(res, HERALD_VERDICT_RETRY, HERALD_E_RATE_LIMITED, "429: retry, rate limited");
        ok(res.retry_at >= before + 42000 && res.retry_at <= after + 42000,
           "429: retry_at = now + Retry-After");
        like(res.detail, "limit reached", "429: the detail quotes ntfy");
        res = classify(ch, HERALD_PURPOSE_SEND, 429, HERALD_OK, NULL, "{}");
        ok(res.verdict == HERALD_VERDICT_RETRY && res.retry_at == 0,
           "429 without Retry-After: retry by backoff");
    }

    /* ---- test(): GET /v1/health, nothing published ---- */
    herald_message m = {.ev = &ev};
    hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
    res = (herald_result){0};
    is_int(plugin->info->test(ch->state, 0, &m, &ex, &res), HERALD_OK, "test: describes a request");
    is_str(ex.method, "GET", "test: GET");
    is_str(ex.url, "https://ntfy.example.org/v1/health", "test: {base}/v1/health");
    is_int(ex.body.len, 0, "test: no body");
    hr_exchange_clear(&ex);
    res = classify_m(ch, &m, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL, "{\"healthy\":true}");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "test: healthy -> ok");
    like(res.detail, "nothing was sent", "test: says nothing was sent");
    verdict_is(classify_m(ch, &m, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL, "{\"healthy\":false}"),
               HERALD_VERDICT_FAILED, HERALD_E_SERVER, "test: unhealthy -> failed");
    res = classify_m(ch, &m, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL,
                     "<html><body>Welcome to nginx!</body></html>");
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_PROTOCOL,
               "test: a 200 that is not ntfy's /v1/health (nor a published message) fails");
    like(res.detail, "check url", "and says what to check");
    verdict_is(classify_m(ch, &m, HERALD_PURPOSE_TEST, 404, HERALD_OK, NULL, "404 page not found"),
               HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND, "test: 404 (no ntfy there) -> failed");
    verdict_is(classify_m(ch, &m, HERALD_PURPOSE_TEST, 0, HERALD_E_CONNECT, NULL, NULL),
               HERALD_VERDICT_RETRY, HERALD_E_CONNECT, "test: unreachable -> not ok");
    hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
    res = (herald_result){0};
    plugin->info->test(ch->state, HERALD_TEST_SEND, &m, &ex, &res);
    ok(!strcmp(ex.method ? ex.method : "", "POST") &&
           !strcmp(ex.url ? ex.url : "", "https://ntfy.example.org/") && ex.body.len > 0,
       "test --send: publishes the real message");
    hr_exchange_clear(&ex);
    res = classify_m(ch, &m, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL,
                     "{\"id\":\"hwQ2YpKdmg\",\"time\":1635528741,\"event\":\"message\","
                     "\"topic\":\"alerts\",\"message\":\"x\"}");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "test --send: the published message -> ok");
    like(res.detail, "a real test message was sent", "and says a real message was sent");

    if (basic)
        hr_channel_close(basic);
    if (plain)
        hr_channel_close(plain);
    hr_channel_close(ch);
    hr_loader_free(loader);
    return done_testing();
}
