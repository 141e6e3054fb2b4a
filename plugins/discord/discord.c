/* discord.c - the Discord channel: webhook messages with an embed (title, description,
 * severity colour, fields, timestamp, footer), ?wait=true, no pings, Discord's limits kept
 * by splitting or truncating; 429 retry_after and Unknown Webhook handled (CONTRACTS.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <herald/plugin.h>

#include "../common/http.h"

#define EXCERPT_MAX 200
#define TITLE_MAX 256
#define DESCRIPTION_MAX 4096
#define EMBED_TOTAL_MAX 6000
#define FIELDS_MAX 25
#define FIELD_NAME_MAX 256
#define FIELD_VALUE_MAX 1024
#define FOOTER_MAX 2048
#define USERNAME_MAX 80
#define DESCRIPTION_MIN 200 /* room the body always keeps, fields or not */
#define MAX_PARTS 8
#define MARK "…"
#define TRUNCATED " […] (truncated by herald)"

typedef struct discord {
    const herald_host *host;
    herald_channel *ch;
    char *url; /* .../api/webhooks/ID/TOKEN, without query */
    char *username;
    char *avatar_url;
    int color[HTTP_NSEV];
    http_overflow overflow;
    http_conn conn;
} discord;

static const herald_setting_spec settings[] = {
    {"url", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED | HERALD_SETTING_SECRET, 0, 0,
     "webhook URL, https://discord.com/api/webhooks/ID/TOKEN (secret: it holds the token)"},
    {"username", HERALD_SETTING_STRING, 0, 0, 0, "name shown for the messages (80 characters)"},
    {"avatar_url", HERALD_SETTING_STRING, 0, 0, 0, "picture shown for the messages"},
    {"colors", HERALD_SETTING_MAP, 0, 0, 0,
     "embed colour per severity, e.g. { error = 0xE74C3C; }"},
    HTTP_OVERFLOW_SETTING("text over Discord's limits: split (default), truncate or upstream"),
    HTTP_CONN_SETTINGS,
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const schemes[] = {"discord", NULL};

/* grey, blue, green, orange, red, dark red */
static const int default_color[HTTP_NSEV] = {0x95A5A6, 0x3498DB, 0x2ECC71,
                                             0xF39C12, 0xE74C3C, 0x992D22};

static void destroy(void *state)
{
    discord *d = state;
    if (!d)
        return;
    free(d->url);
    free(d->username);
    free(d->avatar_url);
    http_conn_free(&d->conn);
    free(d);
}

static herald_status create(const herald_host *host, herald_channel *ch, const herald_settings *s,
                            void **state, herald_result *res)
{
    discord *d = calloc(1, sizeof *d);
    if (!d)
        return HERALD_E_NOMEM;
    d->host = host;
    d->ch = ch;
    const char *url = host->setting_string(s, "url");
    const char *hooks = strstr(url, "/api/webhooks/");
    const char *slash = hooks ? strchr(hooks + 14, '/') : NULL;
    if (!http_scheme_ok(url) || !slash || !slash[1] || strchr(slash + 1, '/') || strchr(url, '?'))
        return http_refuse(host, res, destroy, d, "url must be a webhook URL, "
                           "https://discord.com/api/webhooks/ID/TOKEN");
    host->add_secret(ch, slash + 1);
    d->url = http_dup(url);
    const char *name = host->setting_string(s, "username");
    if (name && strlen(name) > USERNAME_MAX)
        return http_refuse(host, res, destroy, d,
                           "username is limited to 80 characters by Discord");
    d->username = http_dup(name);
    d->avatar_url = http_dup(host->setting_string(s, "avatar_url"));
    memcpy(d->color, default_color, sizeof d->color);
    if (!http_priorities(host, s, "colors", d->color, 0, 0xFFFFFF))
        return http_refuse(host, res, destroy, d,
                           "colors must map severities (debug ... critical) to RGB "
                           "numbers, e.g. colors = { error = 0xE74C3C; }");
    if (!http_overflow_read(host, s, &d->overflow))
        return http_refuse(host, res, destroy, d, "overflow must be split, truncate or upstream");
    if (!http_conn_read(host, ch, s, &d->conn) || !d->url) {
        destroy(d);
        return HERALD_E_NOMEM;
    }
    *state = d;
    return HERALD_OK;
}

/* discord://WEBHOOK_ID/WEBHOOK_TOKEN, as Apprise writes it. */
static herald_status from_url(const herald_host *host, const char *url,
                              herald_settings_builder *b, herald_result *res)
{
    herald_url_parts u = {.struct_size = sizeof u};
    if (host->url_split(url, &u) != HERALD_OK || !u.host || !u.path || strlen(u.path) < 2 ||
        strchr(u.path + 1, '/')) {
        host->url_free(&u); /* a no-op when the split failed */
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID,
                     "expected discord://WEBHOOK_ID/WEBHOOK_TOKEN");
        return HERALD_E_INVALID;
    }
    char full[1024];
    snprintf(full, sizeof full, "https://discord.com/api/webhooks/%s%s", u.host, u.path);
    herald_status st = host->settings_put(b, "url", full);
    host->url_free(&u);
    return st;
}

static json_t *jstr_cut(const char *s, size_t max)
{
    if (http_utf8_chars(s) <= max)
        return json_string(s);
    size_t keep = http_utf8_prefix(s, max - 1, 0);
    char *buf = malloc(keep + sizeof MARK);
    if (!buf)
        return NULL;
    memcpy(buf, s, keep);
    memcpy(buf + keep, MARK, sizeof MARK);
    json_t *v = json_string(buf);
    free(buf);
    return v;
}

/* Part `part` of the description and how many parts there are, for a
 * description budget of `room` characters. */
static char *description_part(discord *d, const char *body, size_t room, int part, int *parts)
{
    if (http_utf8_chars(body) <= room || d->overflow == HTTP_UPSTREAM) {
        *parts = 1;
        return http_dup(body);
    }
    size_t marker = http_utf8_chars(TRUNCATED);
    const char *p = body;
    int count = 0;
    char *mine = NULL;
    int limit = d->overflow == HTTP_TRUNCATE ? 1 : MAX_PARTS;
    while (*p && count < limit) {
        int last = count == limit - 1;
        size_t take = http_utf8_prefix(p, last ? room - marker : room, HTTP_CUT_WORD);
        int cut = last && p[take];
        if (count == part) {
            mine = malloc(take + sizeof TRUNCATED);
            if (mine) {
                memcpy(mine, p, take);
                strcpy(mine + take, cut ? TRUNCATED : "");
            }
        }
        p += take;
        count++;
    }
    *parts = count;
    return mine;
}

static void footer_text(const herald_host *h, const herald_message *m, char *out, size_t outlen)
{
    const char *type = h->msg_get(m, HERALD_MSG_TYPE);
    const char *source = h->msg_get(m, HERALD_MSG_SOURCE);
    snprintf(out, outlen, "%s%s%s", type ? type : "", source ? " · " : "", source ? source : "");
}

/* How many of the event's fields the embed carries: at most 25, and only as many
 * as leave room for the title, the footer and DESCRIPTION_MIN characters of body
 * within 6,000 (25 fields at their limits alone would be 32,000). *used gets the
 * characters they take once cut to their limits. */
static size_t fields_kept(const herald_host *h, const herald_message *m, size_t footer,
                          size_t *used)
{
    size_t budget = EMBED_TOTAL_MAX - (TITLE_MAX + 16) - footer - DESCRIPTION_MIN;
    size_t nf = h->msg_field_count(m), i;
    *used = 0;
    for (i = 0; i < nf && i < FIELDS_MAX; i++) {
        const char *name;
        const char *value = h->msg_field(m, i, &name);
        size_t a = http_utf8_chars(name), b = *value ? http_utf8_chars(value) : 1;
        size_t c = (a < FIELD_NAME_MAX ? a : FIELD_NAME_MAX) +
                   (b < FIELD_VALUE_MAX ? b : FIELD_VALUE_MAX);
        if (*used + c > budget)
            break;
        *used += c;
    }
    return i;
}

/* Characters the description may have: Discord counts every embed's title,
 * description, field names and values and footer against 6,000. */
static size_t description_room(discord *d, const herald_message *m)
{
    const herald_host *h = d->host;
    char footer[600];
    footer_text(h, m, footer, sizeof footer);
    size_t fields;
    fields_kept(h, m, http_utf8_chars(footer), &fields);
    size_t used = TITLE_MAX + 16 + fields + http_utf8_chars(footer);
    size_t room = used < EMBED_TOTAL_MAX ? EMBED_TOTAL_MAX - used : 0;
    return room > DESCRIPTION_MAX   ? DESCRIPTION_MAX
           : room < DESCRIPTION_MIN ? DESCRIPTION_MIN
                                    : room;
}

static herald_status message_request(discord *d, const herald_message *m, int part,
                                     herald_exchange *ex, int *parts)
{
    const herald_host *h = d->host;
    const char *title = h->msg_get(m, HERALD_MSG_TITLE);
    const char *body = h->msg_get(m, HERALD_MSG_BODY);
    herald_severity sev = h->msg_severity(m);

    json_t *embed = json_object();
    json_t *fields = json_array();
    char footer[600];
    footer_text(h, m, footer, sizeof footer);
    size_t fields_used;
    size_t nf = fields_kept(h, m, http_utf8_chars(footer), &fields_used);
    for (size_t i = 0; i < nf; i++) {
        const char *name;
        const char *value = h->msg_field(m, i, &name);
        json_t *f = json_object();
        json_object_set_new(f, "name", jstr_cut(name, FIELD_NAME_MAX));
        json_object_set_new(f, "value", jstr_cut(*value ? value : "-", FIELD_VALUE_MAX));
        json_object_set_new(f, "inline", json_true());
        json_array_append_new(fields, f);
    }
    char *desc = description_part(d, body ? body : "", description_room(d, m), part, parts);
    if (!desc) {
        json_decref(embed);
        json_decref(fields);
        return HERALD_E_NOMEM;
    }
    char numbered[TITLE_MAX * 4 + 32];
    snprintf(numbered, sizeof numbered, "%s", title ? title : "");
    if (*parts > 1) {
        size_t keep = http_utf8_prefix(title ? title : "", TITLE_MAX - 10, 0);
        snprintf(numbered, sizeof numbered, "%.*s (%d/%d)", (int)keep, title ? title : "",
                 part + 1, *parts);
    }
    json_object_set_new(embed, "title", jstr_cut(numbered, TITLE_MAX));
    if (*desc)
        json_object_set_new(embed, "description", json_string(desc));
    free(desc);
    json_object_set_new(embed, "color",
                        json_integer(d->color[(unsigned)sev < HTTP_NSEV ? (unsigned)sev
                                                                         : HTTP_NSEV - 1]));
    if (json_array_size(fields) && part == 0)
        json_object_set_new(embed, "fields", fields);
    else
        json_decref(fields);
    json_object_set_new(embed, "footer", json_pack("{s:o}", "text", jstr_cut(footer, FOOTER_MAX)));
    const char *ts = h->msg_get(m, HERALD_MSG_TIMESTAMP);
    if (ts)
        json_object_set_new(embed, "timestamp", json_string(ts));

    json_t *o = json_object();
    if (d->username)
        json_object_set_new(o, "username", json_string(d->username));
    if (d->avatar_url)
        json_object_set_new(o, "avatar_url", json_string(d->avatar_url));
    json_object_set_new(o, "embeds", json_pack("[o]", embed));
    /* An event's text must never ping @everyone, roles or users. */
    json_object_set_new(o, "allowed_mentions", json_pack("{s:[]}", "parse"));
    char *json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!json)
        return HERALD_E_NOMEM;
    /* Without wait=true a message that failed to save still gets 204. */
    http_request_at(h, ex, &d->conn, "POST", d->url, "?wait=true");
    h->http_header(ex, "Content-Type", "application/json");
    h->http_body(ex, json, strlen(json));
    free(json);
    return HERALD_OK;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    int parts;
    return message_request(state, m, 0, ex, &parts);
}

/* GET on the webhook URL returns the webhook object and posts nothing. */
static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    discord *d = state;
    if (flags & HERALD_TEST_SEND)
        return send(d, m, ex, res);
    http_request(d->host, ex, &d->conn, "GET", d->url);
    return HERALD_OK;
}

static herald_status interpret(void *state, const herald_message *m, const herald_response *r,
                               herald_exchange *ex, herald_result *res)
{
    discord *d = state;
    const herald_host *h = d->host;
    long code = h->response_code(r);
    int testing = h->exchange_purpose(ex) == HERALD_PURPOSE_TEST;
    size_t len;
    const char *body = h->response_body(r, &len);
    json_t *o = h->response_transport(r) == HERALD_OK ? json_loadb(body, len, 0, NULL) : NULL;
    const char *message = json_string_value(json_object_get(o, "message"));
    json_int_t dcode = json_integer_value(json_object_get(o, "code"));
    char why[EXCERPT_MAX + 64];
    if (message)
        snprintf(why, sizeof why, "%s (Discord code %lld)", message, (long long)dcode);
    else
        snprintf(why, sizeof why, "%.*s", (int)(len < EXCERPT_MAX ? len : EXCERPT_MAX),
                 len ? body : "");

    if (h->response_transport(r) == HERALD_OK && (code == 200 || code == 204)) {
        if (testing && json_object_get(o, "type") && !json_object_get(o, "embeds")) {
            const char *name = json_string_value(json_object_get(o, "name"));
            h->result(res, HERALD_VERDICT_OK, HERALD_OK,
                      "webhook '%s' exists and the token is valid; nothing was posted",
                      name ? name : "?");
        } else {
            int parts = 1, step = h->exchange_step(ex);
            if (m) {
                const char *b = h->msg_get(m, HERALD_MSG_BODY);
                free(description_part(d, b ? b : "", description_room(d, m), 0, &parts));
            }
            if (m && step + 1 < parts) {
                json_decref(o);
                herald_status st = message_request(d, m, step + 1, ex, &parts);
                if (st != HERALD_OK)
                    return st;
                h->result(res, HERALD_VERDICT_CONTINUE, HERALD_OK, "part %d of %d posted",
                          step + 1, parts);
                return HERALD_OK;
            }
            const char *id = json_string_value(json_object_get(o, "id"));
            h->result(res, HERALD_VERDICT_OK, HERALD_OK, "Discord message %s%s%s",
                      id ? id : "posted", parts > 1 ? " (and earlier parts)" : "",
                      testing ? "; a real test message was posted" : "");
        }
    } else if (code == 404 && dcode == 10015) {
        /* Discord's own words: do not use it again. */
        h->result(res, HERALD_VERDICT_DISABLE, HERALD_E_GONE,
                  "Unknown Webhook (Discord code 10015): the webhook was deleted; create a new "
                  "one and update url");
    } else if (code == 429) {
        double after = json_real_value(json_object_get(o, "retry_after"));
        if (json_is_integer(json_object_get(o, "retry_after")))
            after = (double)json_integer_value(json_object_get(o, "retry_after"));
        int global = json_is_true(json_object_get(o, "global"));
        long long now = h->now_ms();
        long long at = after > 0 ? now + (long long)(after * 1000.0 + 0.999) : -1;
        const char *ra = h->response_header(r, "Retry-After");
        if (at < 0 && ra) /* no JSON retry_after (e.g. from a proxy): the header */
            at = h->parse_retry_after(ra, now);
        if (at >= 0 && after <= 0)
            after = (double)(at - now) / 1000.0;
        h->result(res, HERALD_VERDICT_RETRY, HERALD_E_RATE_LIMITED,
                  "HTTP 429: rate limited%s, retry after %.2f s", global ? " (global)" : "",
                  after);
        if (at >= 0)
            h->result_retry_at(res, at);
    } else {
        http_classify(h, r, res, why, "check the webhook URL's token",
                      "check the webhook URL");
    }
    json_decref(o);
    return HERALD_OK;
}

HERALD_PLUGIN_DEFINE(
    .name = "discord",
    .version = "1.0.0",
    .description = "Discord webhooks (embed with severity colour, fields, no pings)",
    .schemes = schemes,
    .settings = settings,
    .flags = 0,
    .create = create,
    .from_url = from_url,
    .send = send,
    .interpret = interpret,
    .test = test,
    .destroy = destroy,
);
