/* test_discord.c - the discord plugin with no network: the URL form, the request (?wait=true)
 * and its JSON (embed, colour, fields, timestamp, footer, allowed_mentions), Discord's embed
 * limits for oversized input, split parts across steps, every response class (CONTRACTS.md,
 * Discord) including 429 retry_after, test() and secret redaction. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "tap.h"
#include "plugintest.h"

#define HOOK_ID "112233445566778899"
#define HOOK_TOKEN "Ab-Cd_EfSecretTok3n"
#define HOOK_URL "https://discord.com/api/webhooks/" HOOK_ID "/" HOOK_TOKEN
#define MARKER " […] (truncated by herald)"

/* Characters Discord counts against 6,000 for one embed. */
static size_t embed_total(json_t *embed)
{
    size_t n = chars(jstr(embed, "title")) + chars(jstr(embed, "description")) +
               chars(jstr(embed, "footer.text")) + chars(jstr(embed, "author.name"));
    json_t *f = jget(embed, "fields");
    for (size_t i = 0; i < json_array_size(f); i++)
        n += chars(jstr(json_array_get(f, i), "name")) + chars(jstr(json_array_get(f, i), "value"));
    return n;
}

static void expect(herald_channel *ch, long code, const char *body, herald_verdict v,
                   herald_status st, const char *label)
{
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, code, HERALD_OK, NULL, body), v, st, label);
}

/* Run a whole split delivery: send(), then interpret() answering 200 to each part.
 * Collects each part's embed; returns the number of parts posted. */
static int deliver_parts(herald_channel *ch, const herald_event *ev, json_t *embeds,
                         herald_result *final)
{
    herald_message m = {.ev = ev};
    herald_exchange ex;
    herald_result res = {0};
    hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
    plugin->info->send(ch->state, &m, &ex, &res);
    int parts = 0;
    for (int guard = 0; guard < 12; guard++) {
        json_t *o = body_json(&ex);
        json_array_append(embeds, jget(o, "embeds.0"));
        json_decref(o);
        parts++;
        herald_response r = response(200, HERALD_OK, NULL, "{\"id\":\"999\",\"type\":0,\"embeds\":[]}");
        res = (herald_result){0};
        plugin->info->interpret(ch->state, &m, &r, &ex, &res);
        hr_response_clear(&r);
        if (res.verdict != HERALD_VERDICT_CONTINUE)
            break;
    }
    hr_exchange_clear(&ex);
    *final = res;
    return parts;
}

int main(void)
{
    int status;
    if (!plugin_setup("discord", "d", &status))
        return status;
    char err[1024] = "";

    /* ---- URL form ---- */
    herald_channel *ch = open_url("discord://" HOOK_ID "/" HOOK_TOKEN, err, sizeof err);
    if (!ok(ch != NULL, "discord://ID/TOKEN accepted"))
        printf("#   %s\n", err);
    if (!ch)
        return done_testing();
    hr_setting *v = hr_settings_get(&ch->settings, "url");
    is_str(v ? v->str : NULL, HOOK_URL, "url = https://discord.com/api/webhooks/ID/TOKEN");
    char *red = hr_redact("token " HOOK_TOKEN " leaked");
    is_str(red, "token *** leaked", "the webhook token is a secret: redacted");
    free(red);
    red = hr_redact("POST " HOOK_URL "?wait=true");
    ok(red && !strstr(red, HOOK_TOKEN), "the whole webhook URL is redacted too");
    free(red);
    herald_channel *bad = open_url("discord://" HOOK_ID, err, sizeof err);
    ok(!bad, "discord://ID without a token refused");
    like(err, "discord://WEBHOOK_ID/WEBHOOK_TOKEN", "the error shows the form");
    bad = open_url("discord://1/2/3", err, sizeof err);
    ok(!bad, "discord://ID/TOKEN/extra refused");
    bad = open_conf("channels = ({ name = \"d\"; plugin = \"discord\";"
                    " url = \"https://discord.com/api/webhooks/1/2?wait=false\"; });\n",
                    err, sizeof err);
    ok(!bad, "config: a webhook URL with its own query refused (herald adds ?wait=true)");
    bad = open_conf("channels = ({ name = \"d\"; plugin = \"discord\";"
                    " url = \"https://example.org/hook\"; });\n", err, sizeof err);
    ok(!bad, "config: a URL that is no Discord webhook refused");
    {
        char *name = repeat("n", 81);
        char conf[600];
        snprintf(conf, sizeof conf, "channels = ({ name = \"d\"; url = \"discord://1/2\";"
                 " username = \"%s\"; });\n", name);
        bad = open_conf(conf, err, sizeof err);
        ok(!bad, "config: a username over 80 characters refused");
        free(name);
    }
    if (bad)
        hr_channel_close(bad);

    /* ---- the request ---- */
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "disk.full";
    ev.title = "Disk full on db01";
    ev.body = "Only **2%** left. @everyone <@&1234> look!";
    ev.source = "monitor";
    ev.severity = HERALD_SEVERITY_WARNING;
    hr_field fields[] = {{(char *)"host", (char *)"db01"},
                         {(char *)"mount", (char *)"/var"},
                         {(char *)"note", (char *)""}};
    ev.fields = fields;
    ev.nfields = 3;
    hr_event_stamp(&ev);
    herald_exchange ex;
    json_t *o = send_ev(ch, &ev, &ex);
    ok(ex.kind == HR_EX_HTTP, "send describes an HTTP request");
    is_str(ex.method, "POST", "POST");
    is_str(ex.url, HOOK_URL "?wait=true", "to the webhook URL with ?wait=true");
    is_str(header(&ex, "Content-Type"), "application/json", "Content-Type: application/json");
    ok(!header(&ex, "Authorization"), "no Authorization header (the token is in the URL)");
    is_int(ex.timeout_ms, 10000, "default timeout 10 s");
    ok(o && !jget(o, "content") && !jget(o, "username") && !jget(o, "avatar_url"),
       "no content, username or avatar_url unless configured");
    is_int(json_array_size(jget(o, "embeds")), 1, "one embed");
    json_t *e = jget(o, "embeds.0");
    is_str(jstr(e, "title"), "Disk full on db01", "embed title: the event title");
    is_str(jstr(e, "description"), "Only **2%** left. @everyone <@&1234> look!",
           "embed description: the body as written (Discord renders Markdown)");
    ok(json_is_integer(jget(e, "color")), "embed color is an integer");
    is_int(json_integer_value(jget(e, "color")), 0xF39C12, "warning: orange 0xF39C12");
    is_str(jstr(e, "timestamp"), ev.timestamp, "embed timestamp: the event time (ISO 8601)");
    is_str(jstr(e, "footer.text"), "disk.full · monitor", "footer: type · source");
    json_t *f = jget(e, "fields");
    is_int(json_array_size(f), 3, "a field per event field");
    ok(!strcmp(jstr(f, "0.name") ? jstr(f, "0.name") : "", "host") &&
           !strcmp(jstr(f, "0.value") ? jstr(f, "0.value") : "", "db01") &&
           json_is_true(jget(f, "0.inline")),
       "field 0: host = db01, inline");
    is_str(jstr(f, "1.value"), "/var", "field 1 value, in order");
    is_str(jstr(f, "2.value"), "-", "an empty field value is sent as - (Discord refuses empty)");
    json_t *am = jget(o, "allowed_mentions");
    ok(json_is_object(am) && json_object_size(am) == 1 && json_is_array(jget(am, "parse")) &&
           json_array_size(jget(am, "parse")) == 0,
       "allowed_mentions is exactly {\"parse\":[]}: @everyone and roles cannot ping");
    ok(ex.body.data && strstr(ex.body.data, "\"allowed_mentions\":{\"parse\":[]}"),
       "allowed_mentions as bytes: {\"parse\":[]}");
    json_decref(o);
    hr_exchange_clear(&ex);

    /* No source, no fields, empty body: no description, no fields key. */
    ev.source = NULL;
    ev.nfields = 0;
    ev.body = "";
    o = send_ev(ch, &ev, &ex);
    e = jget(o, "embeds.0");
    ok(e && !jget(e, "description"), "empty body: no description (Discord refuses empty)");
    ok(e && !jget(e, "fields"), "no event fields: no fields key");
    is_str(jstr(e, "footer.text"), "disk.full", "no source: footer is the type alone");
    json_decref(o);
    hr_exchange_clear(&ex);
    ev.source = "monitor";
    ev.fields = fields;
    ev.nfields = 3;
    ev.body = "Only **2%** left.";

    /* Colours by severity, and configured colours, username and avatar. */
    {
        static const long want[] = {0x95A5A6, 0x3498DB, 0x2ECC71, 0xF39C12, 0xE74C3C, 0x992D22};
        int all = 1;
        for (int s = HERALD_SEVERITY_DEBUG; s <= HERALD_SEVERITY_CRITICAL; s++) {
            ev.severity = (herald_severity)s;
            o = send_ev(ch, &ev, &ex);
            long got = (long)json_integer_value(jget(o, "embeds.0.color"));
            if (got != want[s]) {
                printf("#   %s: got %#lx, want %#lx\n", hr_severity_name(ev.severity), got, want[s]);
                all = 0;
            }
            json_decref(o);
            hr_exchange_clear(&ex);
        }
        ok(all, "embed colour per severity: grey, blue, green, orange, red, dark red");
        ev.severity = HERALD_SEVERITY_WARNING;
    }
    herald_channel *custom =
        open_conf("channels = ({ name = \"d\"; url = \"discord://1/2\"; username = \"Herald\";"
                  " avatar_url = \"https://example.org/a.png\"; colors = { warning = 0x010203; }; });\n",
                  err, sizeof err);
    if (!ok(custom != NULL, "config: username, avatar_url, colors accepted"))
        printf("#   %s\n", err);
    if (custom) {
        o = send_ev(custom, &ev, &ex);
        is_str(jstr(o, "username"), "Herald", "username as configured");
        is_str(jstr(o, "avatar_url"), "https://example.org/a.png", "avatar_url as configured");
        is_int(json_integer_value(jget(o, "embeds.0.color")), 0x010203, "configured colour");
        is_str(ex.url, "https://discord.com/api/webhooks/1/2?wait=true", "?wait=true again");
        json_decref(o);
        hr_exchange_clear(&ex);
        hr_channel_close(custom);
    }

    /* ---- limits: title 256, description 4,096, 25 fields, name 256, value 1,024, 6,000 ---- */
    {
        char *title = repeat("Ü", 300);
        char *name = repeat("N", 300);
        char *value = repeat("v", 2000);
        char *body = repeat("word ", 2000); /* 10,000 characters */
        hr_field many[30];
        char names[30][8];
        for (int i = 0; i < 30; i++) {
            snprintf(names[i], sizeof names[i], "f%d", i);
            many[i].name = names[i];
            many[i].value = (char *)"x";
        }
        many[0].name = name;
        many[0].value = value;
        ev.title = title;
        ev.body = "short";
        ev.fields = many;
        ev.nfields = 30;
        o = send_ev(ch, &ev, &ex);
        e = jget(o, "embeds.0");
        const char *t = jstr(e, "title");
        ok(chars(t) == 256 && ends_with(t, "…") && !strncmp(t, title, strlen(t) - 3),
           "title over 256: cut to 256 characters ending in …");
        is_int(json_array_size(jget(e, "fields")), 25, "30 fields: the first 25 kept");
        ok(chars(jstr(e, "fields.0.name")) == 256 && ends_with(jstr(e, "fields.0.name"), "…"),
           "a field name over 256: cut to 256 with …");
        ok(chars(jstr(e, "fields.0.value")) == 1024 && ends_with(jstr(e, "fields.0.value"), "…"),
           "a field value over 1,024: cut to 1,024 with …");
        is_str(jstr(e, "fields.24.name"), "f24", "the 25th field is the event's 25th");
        ok(embed_total(e) <= 6000, "embed total <= 6,000 characters");
        json_decref(o);
        hr_exchange_clear(&ex);

        /* 25 fields at their maximum alone are 32,000 characters: still <= 6,000 in all. */
        hr_field big[25];
        char bignames[25][300];
        for (int i = 0; i < 25; i++) {
            snprintf(bignames[i], sizeof bignames[i], "%02d%s", i, name);
            big[i].name = bignames[i];
            big[i].value = value;
        }
        ev.fields = big;
        ev.nfields = 25;
        ev.body = body;
        o = send_ev(ch, &ev, &ex);
        e = jget(o, "embeds.0");
        size_t total = embed_total(e);
        if (!ok(total <= 6000, "25 maximal fields + a long body: the embed stays <= 6,000 characters"))
            printf("#   total %zu characters\n", total);
        ok(jget(e, "fields") && json_array_size(jget(e, "fields")) >= 1,
           "maximal fields: at least the first field is kept");
        ok(chars(jstr(e, "description")) >= 1, "maximal fields: the body still has room");
        int limits = 1;
        for (size_t i = 0; i < json_array_size(jget(e, "fields")); i++) {
            json_t *fi = json_array_get(jget(e, "fields"), i);
            limits &= chars(jstr(fi, "name")) <= 256 && chars(jstr(fi, "value")) <= 1024 &&
                      chars(jstr(fi, "value")) >= 1;
        }
        ok(limits, "maximal fields: every kept field within its limits, none empty");
        json_decref(o);
        hr_exchange_clear(&ex);

        /* 25 fields of 230 characters (5,750) and a long body: fields that fit
         * under 6,000 alone must still leave the title, footer and body room. */
        hr_field mid[25];
        char midnames[25][8];
        char *midvalue = repeat("m", 227);
        for (int i = 0; i < 25; i++) {
            snprintf(midnames[i], sizeof midnames[i], "f%02d", i);
            mid[i].name = midnames[i];
            mid[i].value = midvalue;
        }
        ev.fields = mid;
        o = send_ev(ch, &ev, &ex);
        e = jget(o, "embeds.0");
        total = embed_total(e);
        if (!ok(total <= 6000 && chars(jstr(e, "description")) >= 200,
                "25 fields of 230 characters + a long body: <= 6,000 in all, body >= 200"))
            printf("#   total %zu, %zu fields, description %zu\n", total,
                   json_array_size(jget(e, "fields")), chars(jstr(e, "description")));
        json_decref(o);
        hr_exchange_clear(&ex);
        free(midvalue);

        /* A body without word ends: the first part is exactly 4,096 characters. */
        ev.fields = fields;
        ev.nfields = 3;
        char *solid = repeat("é", 10000);
        ev.body = solid;
        o = send_ev(ch, &ev, &ex);
        is_int(chars(jstr(o, "embeds.0.description")), 4096,
               "split without spaces: the first description is exactly 4,096 characters");
        json_decref(o);
        hr_exchange_clear(&ex);
        free(solid);
        ev.body = body;

        /* A long body, default split: numbered embeds, each within every limit. */
        ev.title = "Report";
        ev.fields = fields;
        ev.nfields = 3;
        json_t *embeds = json_array();
        herald_result res;
        int parts = deliver_parts(ch, &ev, embeds, &res);
        is_int(parts, 3, "split: 10,000 characters in 3 parts");
        verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "split: ok after the last part");
        like(res.detail, "earlier parts", "split: the detail says earlier parts were posted");
        hr_buf all = {0};
        int within = 1, titled = 1;
        for (int i = 0; i < parts; i++) {
            json_t *ei = json_array_get(embeds, (size_t)i);
            char want[64];
            snprintf(want, sizeof want, "Report (%d/%d)", i + 1, parts);
            titled &= jstr(ei, "title") && !strcmp(jstr(ei, "title"), want);
            within &= chars(jstr(ei, "description")) <= 4096 && embed_total(ei) <= 6000;
            hr_buf_adds(&all, jstr(ei, "description") ? jstr(ei, "description") : "");
        }
        ok(titled, "split: titles numbered Report (i/n)");
        ok(within, "split: each description <= 4,096 and each embed <= 6,000");
        is_str(all.data, body, "split: the parts together are the whole body");
        ok(jget(json_array_get(embeds, 0), "fields") && !jget(json_array_get(embeds, 1), "fields"),
           "split: fields only in the first part");
        hr_buf_free(&all);
        json_decref(embeds);

        herald_channel *tr = open_conf("channels = ({ name = \"t\"; url = \"discord://1/2\";"
                                       " overflow = \"truncate\"; });\n", err, sizeof err);
        herald_channel *up = open_conf("channels = ({ name = \"u\"; url = \"discord://1/2\";"
                                       " overflow = \"upstream\"; });\n", err, sizeof err);
        ok(tr && up, "config: overflow truncate and upstream accepted");
        if (tr) {
            embeds = json_array();
            parts = deliver_parts(tr, &ev, embeds, &res);
            const char *d = jstr(json_array_get(embeds, 0), "description");
            is_int(parts, 1, "truncate: one message");
            ok(chars(d) <= 4096 && ends_with(d, MARKER), "truncate: <= 4,096 with the marker");
            ok(d && !strncmp(d, body, strlen(d) - strlen(MARKER)), "truncate: a prefix of the body");
            is_str(jstr(json_array_get(embeds, 0), "title"), "Report", "truncate: title unnumbered");
            json_decref(embeds);
            hr_channel_close(tr);
        }
        if (up) {
            embeds = json_array();
            parts = deliver_parts(up, &ev, embeds, &res);
            is_int(parts, 1, "upstream: one message");
            is_str(jstr(json_array_get(embeds, 0), "description"), body, "upstream: the whole body");
            json_decref(embeds);
            hr_channel_close(up);
        }
        free(title);
        free(name);
        free(value);
        free(body);
        ev.title = "Disk full on db01";
        ev.body = "Only **2%** left.";
    }

    /* ---- responses ---- */
    herald_result res = classify(ch, HERALD_PURPOSE_SEND, 200, HERALD_OK, NULL,
                                 "{\"id\":\"1234567890\",\"type\":0,\"content\":\"\",\"embeds\":[]}");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "200 + message object: delivered");
    like(res.detail, "1234567890", "the detail names the message id");
    expect(ch, 204, "", HERALD_VERDICT_OK, HERALD_OK, "204: delivered");
    res = classify(ch, HERALD_PURPOSE_SEND, 404, HERALD_OK, NULL,
                   "{\"message\":\"Unknown Webhook\",\"code\":10015}");
    verdict_is(res, HERALD_VERDICT_DISABLE, HERALD_E_GONE,
               "404 Unknown Webhook (10015): disable, do not use it again");
    like(res.detail, "10015", "the detail names code 10015");
    expect(ch, 404, "{\"message\":\"404: Not Found\",\"code\":0}", HERALD_VERDICT_FAILED,
           HERALD_E_NOT_FOUND, "another 404: failed, not disabled");
    res = classify(ch, HERALD_PURPOSE_SEND, 401, HERALD_OK, NULL,
                   "{\"message\":\"Invalid Webhook Token\",\"code\":50027}");
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "401 Invalid Webhook Token: failed (auth)");
    like(res.detail, "Invalid Webhook Token (Discord code 50027)", "the detail quotes Discord");
    expect(ch, 403, "{\"message\":\"Missing Access\",\"code\":50001}", HERALD_VERDICT_FAILED,
           HERALD_E_AUTH, "403: failed (auth)");
    res = classify(ch, HERALD_PURPOSE_SEND, 400, HERALD_OK, NULL,
                   "{\"code\":50035,\"errors\":{\"embeds\":{}},\"message\":\"Invalid Form Body\"}");
    verdict_is(res, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "400 Invalid Form Body: failed");
    like(res.detail, "Invalid Form Body (Discord code 50035)", "the detail quotes Discord");
    expect(ch, 400, "{\"message\":\"Cannot send an empty message\",\"code\":50006}",
           HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "400 empty message (50006): failed");
    expect(ch, 500, "", HERALD_VERDICT_RETRY, HERALD_E_SERVER, "500: retry");
    expect(ch, 502, "<html>bad gateway</html>", HERALD_VERDICT_RETRY, HERALD_E_SERVER, "502: retry");
    expect(ch, 301, "", HERALD_VERDICT_FAILED, HERALD_E_REDIRECT, "301: failed, not followed");
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, 0, HERALD_E_CONNECT, NULL, NULL),
               HERALD_VERDICT_RETRY, HERALD_E_CONNECT, "connection refused: retry");
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, 0, HERALD_E_TIMEOUT, NULL, NULL),
               HERALD_VERDICT_RETRY, HERALD_E_TIMEOUT, "timeout: retry");
    verdict_is(classify(ch, HERALD_PURPOSE_SEND, 0, HERALD_E_TLS, NULL, NULL),
               HERALD_VERDICT_FAILED, HERALD_E_TLS, "TLS failure: failed");
    {
        long long before = hr_now_ms();
        res = classify(ch, HERALD_PURPOSE_SEND, 429, HERALD_OK, "65",
                       "{\"message\":\"You are being rate limited.\",\"retry_after\":64.57,"
                       "\"global\":false}");
        long long after = hr_now_ms();
        verdict_is(res, HERALD_VERDICT_RETRY, HERALD_E_RATE_LIMITED, "429: retry, rate limited");
        if (!ok(res.retry_at >= before + 64570 && res.retry_at <= after + 65000,
                "429: retry_at from retry_after 64.57 s (and Retry-After 65)"))
            printf("#   retry_at - now = %lld ms\n", res.retry_at - after);
        like(res.detail, "64.57", "429: the detail gives the wait");
        res = classify(ch, HERALD_PURPOSE_SEND, 429, HERALD_OK, NULL,
                       "{\"message\":\"You are being rate limited.\",\"retry_after\":0.25,"
                       "\"global\":true}");
        after = hr_now_ms();
        ok(res.retry_at >= before + 250 && res.retry_at <= after + 250,
           "429: a fraction of a second kept in milliseconds");
        like(res.detail, "(global)", "429 global: the detail says so");
        res = classify(ch, HERALD_PURPOSE_SEND, 429, HERALD_OK, NULL,
                       "{\"message\":\"You are being rate limited.\",\"retry_after\":3,"
                       "\"global\":false}");
        after = hr_now_ms();
        ok(res.retry_at >= before + 3000 && res.retry_at <= after + 3000,
           "429: an integer retry_after works too");
        before = hr_now_ms();
        res = classify(ch, HERALD_PURPOSE_SEND, 429, HERALD_OK, "30",
                       "<html>Cloudflare: too many requests</html>");
        after = hr_now_ms();
        verdict_is(res, HERALD_VERDICT_RETRY, HERALD_E_RATE_LIMITED, "429 without JSON: retry");
        if (!ok(res.retry_at >= before + 30000 && res.retry_at <= after + 30000,
                "429 without retry_after in the body: the Retry-After header is read"))
            printf("#   retry_at %lld (now %lld)\n", res.retry_at, after);
    }

    /* ---- test(): GET the webhook, posting nothing ---- */
    herald_message m = {.ev = &ev};
    hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
    res = (herald_result){0};
    is_int(plugin->info->test(ch->state, 0, &m, &ex, &res), HERALD_OK, "test: describes a request");
    is_str(ex.method, "GET", "test: GET");
    is_str(ex.url, HOOK_URL, "test: GET /api/webhooks/{id}/{token}");
    is_int(ex.body.len, 0, "test: no body");
    hr_exchange_clear(&ex);
    res = classify(ch, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL,
                   "{\"type\":1,\"id\":\"" HOOK_ID "\",\"name\":\"alerts\",\"channel_id\":\"1\","
                   "\"guild_id\":\"2\",\"token\":\"" HOOK_TOKEN "\"}");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "test: the webhook object -> ok");
    ok(strstr(res.detail, "'alerts'") && strstr(res.detail, "nothing was posted"),
       "test: names the webhook, says nothing was posted");
    verdict_is(classify(ch, HERALD_PURPOSE_TEST, 401, HERALD_OK, NULL,
                        "{\"message\":\"Invalid Webhook Token\",\"code\":50027}"),
               HERALD_VERDICT_FAILED, HERALD_E_AUTH, "test: 401 -> failed (auth)");
    verdict_is(classify(ch, HERALD_PURPOSE_TEST, 404, HERALD_OK, NULL,
                        "{\"message\":\"Unknown Webhook\",\"code\":10015}"),
               HERALD_VERDICT_DISABLE, HERALD_E_GONE, "test: Unknown Webhook -> disable");
    hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
    res = (herald_result){0};
    plugin->info->test(ch->state, HERALD_TEST_SEND, &m, &ex, &res);
    ok(!strcmp(ex.method ? ex.method : "", "POST") &&
           !strcmp(ex.url ? ex.url : "", HOOK_URL "?wait=true") && ex.body.len > 0,
       "test --send: posts the real message with ?wait=true");
    hr_exchange_clear(&ex);
    res = classify(ch, HERALD_PURPOSE_TEST, 200, HERALD_OK, NULL,
                   "{\"id\":\"77\",\"type\":0,\"embeds\":[{\"title\":\"x\"}]}");
    verdict_is(res, HERALD_VERDICT_OK, HERALD_OK, "test --send: the message object -> ok");
    like(res.detail, "a real test message was posted", "and says a real message was posted");

    hr_channel_close(ch);
    hr_loader_free(loader);
    return done_testing();
}
