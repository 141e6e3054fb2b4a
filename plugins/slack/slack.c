/* slack.c - the Slack channel: an incoming webhook or a bot token (chat.postMessage), the
 * event as a header, mrkdwn sections and a context line inside a coloured attachment;
 * Slack's error codes and limits handled as CONTRACTS.md says. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <herald/plugin.h>

#include "../common/http.h"

#define HEADER_MAX 150
#define SECTION_MAX 3000
#define SECTIONS_MAX 40 /* 50 blocks in all, a few for header and context */
#define TEXT_FALLBACK_MAX 300
#define TRUNCATED "\n_[…] (truncated by herald)_"

typedef struct slack {
    const herald_host *host;
    herald_channel *ch;
    char *webhook;  /* incoming webhook URL, or NULL with a bot token */
    char *token;    /* xoxb-... bot token */
    char *channel;  /* for the bot token */
    char *api;      /* Web API base, default https://slack.com/api */
    int color[HTTP_NSEV];
    http_overflow overflow;
    http_conn conn;
} slack;

static const herald_setting_spec settings[] = {
    {"url", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0,
     "incoming webhook URL, https://hooks.slack.com/services/T.../B.../... (secret)"},
    {"token", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0,
     "bot token (xoxb-...) for chat.postMessage, instead of url"},
    {"channel", HERALD_SETTING_STRING, 0, 0, 0, "channel for the bot token, e.g. #ops or C0123"},
    {"api_url", HERALD_SETTING_STRING, 0, 0, 0, "Web API base (https://slack.com/api)"},
    {"colors", HERALD_SETTING_MAP, 0, 0, 0,
     "attachment colour per severity, e.g. { error = 0xE74C3C; }"},
    {"overflow", HERALD_SETTING_STRING, 0, 0, 0,
     "body over 40 sections of 3,000 characters: split (default: as many sections as "
     "allowed, then cut), truncate or upstream"},
    HTTP_CONN_SETTINGS,
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const schemes[] = {"slack", NULL};

static const int default_color[HTTP_NSEV] = {0x95A5A6, 0x3498DB, 0x2ECC71,
                                             0xF39C12, 0xE74C3C, 0x992D22};

static void destroy(void *state)
{
    slack *k = state;
    if (!k)
        return;
    free(k->webhook);
    free(k->token);
    free(k->channel);
    free(k->api);
    http_conn_free(&k->conn);
    free(k);
}

static herald_status create(const herald_host *host, herald_channel *ch, const herald_settings *s,
                            void **state, herald_result *res)
{
    slack *k = calloc(1, sizeof *k);
    if (!k)
        return HERALD_E_NOMEM;
    k->host = host;
    k->ch = ch;
    const char *url = host->setting_string(s, "url");
    const char *token = host->setting_string(s, "token");
    const char *channel = host->setting_string(s, "channel");
    if (!url == !token)
        return http_refuse(host, res, destroy, k,
                           "give either url (an incoming webhook) or token and "
                           "channel (a bot), not both and not neither");
    if (url && (!http_scheme_ok(url) || !strstr(url, "/services/")))
        return http_refuse(host, res, destroy, k, "url must be an incoming webhook URL, "
                           "https://hooks.slack.com/services/T.../B.../...");
    if (token && (!channel || !*channel))
        return http_refuse(host, res, destroy, k,
                           "a bot token needs channel, e.g. channel = \"#ops\"");
    const char *api = host->setting_string(s, "api_url");
    if (http_base(host, api ? api : "https://slack.com/api", &k->api) < 0)
        return http_refuse(host, res, destroy, k, "api_url must be http(s)://host[:port][/path]");
    k->webhook = http_dup(url);
    k->token = http_dup(token);
    k->channel = http_dup(channel);
    if (url) {
        const char *secret = strstr(url, "/services/") + 10;
        host->add_secret(ch, secret);
    }
    if (token)
        host->add_secret(ch, token);
    memcpy(k->color, default_color, sizeof k->color);
    if (!http_priorities(host, s, "colors", k->color, 0, 0xFFFFFF))
        return http_refuse(host, res, destroy, k,
                           "colors must map severities (debug ... critical) to RGB "
                           "numbers, e.g. colors = { error = 0xE74C3C; }");
    if (!http_overflow_read(host, s, &k->overflow))
        return http_refuse(host, res, destroy, k, "overflow must be split, truncate or upstream");
    if (!http_conn_read(host, ch, s, &k->conn) || !k->api || (url && !k->webhook) || (token && (!k->token || !k->channel))) {
        destroy(k);
        return HERALD_E_NOMEM;
    }
    *state = k;
    return HERALD_OK;
}

/* slack://T.../B.../XXXX (an incoming webhook) or slack://xoxb-.../CHANNEL (a bot). */
static herald_status from_url(const herald_host *host, const char *url,
                              herald_settings_builder *b, herald_result *res)
{
    herald_url_parts u = {.struct_size = sizeof u};
    if (host->url_split(url, &u) != HERALD_OK || !u.host) {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID,
                     "expected slack://T.../B.../XXXX or slack://xoxb-TOKEN/CHANNEL");
        return HERALD_E_INVALID;
    }
    herald_status st;
    const char *path = u.path ? u.path : "";
    if (!strncmp(u.host, "xox", 3)) {
        st = path[0] == '/' && path[1] ? host->settings_put(b, "token", u.host) : HERALD_E_INVALID;
        if (st == HERALD_OK)
            st = host->settings_put(b, "channel", path + 1);
    } else {
        char full[1024];
        snprintf(full, sizeof full, "https://hooks.slack.com/services/%s%s", u.host, path);
        st = strlen(path) > 1 && strchr(path + 1, '/') ? host->settings_put(b, "url", full)
                                                        : HERALD_E_INVALID;
    }
    if (st == HERALD_E_INVALID)
        host->result(res, HERALD_VERDICT_FAILED, st,
                     "expected slack://T.../B.../XXXX or slack://xoxb-TOKEN/CHANNEL");
    host->url_free(&u);
    return st;
}

/* Copy n bytes of src to out + *o with &, < and > escaped (at most 5 bytes each). */
static void put_escaped(char *out, size_t *o, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = src[i] == '&'   ? "&amp;"
                        : src[i] == '<' ? "&lt;"
                        : src[i] == '>' ? "&gt;"
                                        : NULL;
        if (e) {
            memcpy(out + *o, e, strlen(e));
            *o += strlen(e);
        } else {
            out[(*o)++] = src[i];
        }
    }
}

/* Markdown -> Slack mrkdwn: &, <, > escaped everywhere (headings and links
 * included, so no event text can become <!everyone> or <@U...>); double-star or
 * double-underscore bold -> single-star bold; single-star italic -> underscore
 * italic; [text](url) -> <url|text> for http(s) and mailto URLs only; # headings
 * -> bold lines; code spans and blocks kept. Returns malloc'd text. */
static char *mrkdwn(const char *md)
{
    size_t len = strlen(md);
    size_t cap = len * 5 + 16; /* '&' -> "&amp;" at worst */
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    int code = 0, at_line = 1;
    for (size_t i = 0; i < len; i++) {
        char c = md[i];
        if (c == '`') {
            if (!strncmp(md + i, "```", 3)) {
                memcpy(out + o, "```", 3);
                o += 3;
                i += 2;
                code = !code;
                at_line = 0;
                continue;
            }
            if (code != 1)
                code = code == 2 ? 0 : 2;
            out[o++] = c;
            continue;
        }
        if (c == '&' || c == '<' || c == '>') {
            const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : "&gt;";
            memcpy(out + o, e, strlen(e));
            o += strlen(e);
            at_line = 0;
            continue;
        }
        if (code) {
            out[o++] = c;
            at_line = c == '\n';
            continue;
        }
        if (at_line && c == '#') {
            size_t j = i;
            while (md[j] == '#')
                j++;
            if (md[j] == ' ') {
                size_t end = j + 1;
                while (md[end] && md[end] != '\n')
                    end++;
                out[o++] = '*';
                put_escaped(out, &o, md + j + 1, end - j - 1);
                out[o++] = '*';
                i = end - 1;
                at_line = 0;
                continue;
            }
        }
        if ((c == '*' || c == '_') && md[i + 1] == c) {
            out[o++] = '*';
            i++;
        } else if (c == '*') {
            out[o++] = '_';
        } else if (c == '[') {
            const char *close = strstr(md + i, "](");
            const char *end = close ? strchr(close + 2, ')') : NULL;
            const char *nl = strchr(md + i, '\n');
            const char *url = close ? close + 2 : NULL;
            if (close && end && (!nl || end < nl) &&
                (!strncasecmp(url, "https://", 8) || !strncasecmp(url, "http://", 7) ||
                 !strncasecmp(url, "mailto:", 7))) {
                out[o++] = '<';
                put_escaped(out, &o, url, (size_t)(end - url));
                out[o++] = '|';
                put_escaped(out, &o, md + i + 1, (size_t)(close - md - i - 1));
                out[o++] = '>';
                i = (size_t)(end - md);
            } else {
                out[o++] = c;
            }
        } else {
            out[o++] = c;
        }
        at_line = c == '\n';
    }
    out[o] = '\0';
    return out;
}

/* take cut back so that a cut of mrkdwn after take bytes splits no "&amp;"-style
 * entity and no <url|text> link (a raw '<' only ever opens a link: text's are
 * escaped). A link longer than the whole cut is cut all the same. */
static size_t keep_whole(const char *p, size_t take)
{
    if (!p[take])
        return take;
    size_t amp = take, lt = take;
    int bare = 1; /* no ';' yet between an '&' and the cut */
    for (size_t i = take; i-- > 0;) {
        if (p[i] == '>')
            break;
        if (p[i] == '<') {
            lt = i;
            break;
        }
        if (p[i] == ';')
            bare = 0;
        else if (p[i] == '&' && bare && take - i <= 4) {
            amp = i;
            bare = 0;
        }
    }
    size_t cut = amp < lt ? amp : lt;
    return cut > 0 && cut < take ? cut : take;
}

static json_t *text_obj(const char *type, const char *text)
{
    return json_pack("{s:s, s:s}", "type", type, "text", text);
}

/* A Web API request with the bot token. */
static void api_call(slack *k, herald_exchange *ex, const char *method)
{
    char auth[1024];
    snprintf(auth, sizeof auth, "Bearer %s", k->token);
    http_request_at(k->host, ex, &k->conn, "POST", k->api, method);
    k->host->http_header(ex, "Authorization", auth);
}

static herald_status build(slack *k, const herald_message *m, herald_exchange *ex)
{
    const herald_host *h = k->host;
    const char *title = h->msg_get(m, HERALD_MSG_TITLE);
    const char *body = h->msg_get(m, HERALD_MSG_BODY);
    const char *type = h->msg_get(m, HERALD_MSG_TYPE);
    const char *source = h->msg_get(m, HERALD_MSG_SOURCE);
    const char *sevname = h->msg_get(m, HERALD_MSG_SEVERITY);
    herald_severity sev = h->msg_severity(m);
    json_t *blocks = json_array();
    char header[HEADER_MAX * 4 + 8];
    size_t hb = http_utf8_prefix(title ? title : "", HEADER_MAX - 1, HTTP_CUT_WORD);
    snprintf(header, sizeof header, "%.*s%s", (int)hb, title ? title : "",
             title && title[hb] ? "…" : "");
    json_t *hdr = json_pack("{s:s, s:{s:s, s:s, s:b}}", "type", "header", "text", "type",
                            "plain_text", "text", header, "emoji", 1);
    json_array_append_new(blocks, hdr);
    char *md = mrkdwn(body ? body : "");
    if (!md) {
        json_decref(blocks);
        return HERALD_E_NOMEM;
    }
    const char *p = md;
    int sections = 0;
    while (*p) {
        int last = sections == SECTIONS_MAX - 1 || k->overflow == HTTP_TRUNCATE;
        size_t take = k->overflow == HTTP_UPSTREAM ? strlen(p)
                      : last ? http_utf8_prefix(p, SECTION_MAX - http_utf8_chars(TRUNCATED), HTTP_CUT_WORD)
                             : http_utf8_prefix(p, SECTION_MAX, HTTP_CUT_WORD);
        if (k->overflow != HTTP_UPSTREAM)
            take = keep_whole(p, take);
        char *part = malloc(take + sizeof TRUNCATED);
        if (!part)
            break;
        memcpy(part, p, take);
        part[take] = '\0';
        if (last && p[take] && k->overflow != HTTP_UPSTREAM)
            strcat(part, TRUNCATED);
        json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "text",
                                                text_obj("mrkdwn", part)));
        free(part);
        sections++;
        if (last && k->overflow != HTTP_UPSTREAM)
            break;
        p += take;
    }
    char ctx[512];
    snprintf(ctx, sizeof ctx, "%s%s%s · %s", type ? type : "", source ? " · " : "",
             source ? source : "", sevname ? sevname : "");
    char *ctx_md = mrkdwn(ctx);
    json_array_append_new(blocks,
                          json_pack("{s:s, s:[o]}", "type", "context", "elements",
                                    text_obj("mrkdwn", ctx_md ? ctx_md : "")));
    free(ctx_md);
    /* `text` is what notifications and screen readers show. */
    char fallback[TEXT_FALLBACK_MAX * 4 + 8];
    size_t fb = keep_whole(md, http_utf8_prefix(md, TEXT_FALLBACK_MAX, HTTP_CUT_WORD));
    snprintf(fallback, sizeof fallback, "%s%s%.*s", title ? title : "", *md ? ": " : "", (int)fb,
             md);
    free(md);
    char color[8];
    snprintf(color, sizeof color, "#%06X",
             k->color[(unsigned)sev < HTTP_NSEV ? (unsigned)sev : HTTP_NSEV - 1]);
    json_t *o = json_object();
    if (k->token)
        json_object_set_new(o, "channel", json_string(k->channel));
    json_object_set_new(o, "text", json_string(fallback));
    json_object_set_new(o, "attachments",
                        json_pack("[{s:s, s:o}]", "color", color, "blocks", blocks));
    char *json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!json)
        return HERALD_E_NOMEM;
    if (k->token)
        api_call(k, ex, "/chat.postMessage");
    else
        http_request(h, ex, &k->conn, "POST", k->webhook);
    h->http_header(ex, "Content-Type", "application/json; charset=utf-8");
    h->http_body(ex, json, strlen(json));
    free(json);
    return HERALD_OK;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    return build(state, m, ex);
}

/* A bot token is checked with auth.test; an incoming webhook has no check
 * without posting, so only its host is reached (TLS verified). */
static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    slack *k = state;
    if (flags & HERALD_TEST_SEND)
        return build(k, m, ex);
    if (k->token) {
        api_call(k, ex, "/auth.test");
    } else {
        k->host->connect_request(ex, k->webhook);
        k->host->set_timeout_ms(ex, k->conn.timeout_ms);
        k->host->set_tls(ex, k->conn.ca_file, k->conn.insecure);
    }
    return HERALD_OK;
}

/* The Web API's answer: 200 with {"ok":false,"error":"..."} on failure. */
static void api_result(slack *k, const char *error, herald_result *res, int testing)
{
    const herald_host *h = k->host;
    static const char *const auth[] = {"invalid_auth", "not_authed", "account_inactive",
                                       "token_revoked", "token_expired", "no_permission",
                                       "missing_scope", NULL};
    static const char *const gone[] = {"channel_not_found", "is_archived", "not_in_channel",
                                       NULL};
    for (int i = 0; auth[i]; i++)
        if (!strcmp(error, auth[i])) {
            h->result(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH,
                      "Slack: %s; check the bot token and its scopes (chat:write)", error);
            return;
        }
    for (int i = 0; gone[i]; i++)
        if (!strcmp(error, gone[i])) {
            h->result(res, HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND,
                      "Slack: %s; check channel '%s' and invite the bot to it", error,
                      k->channel);
            return;
        }
    h->result(res, !strcmp(error, "internal_error") || !strcmp(error, "fatal_error")
                       ? HERALD_VERDICT_RETRY
                       : HERALD_VERDICT_FAILED,
              !strcmp(error, "internal_error") || !strcmp(error, "fatal_error") ? HERALD_E_SERVER
                                                                                : HERALD_E_REJECTED,
              "Slack: %s%s", error, testing ? " (auth.test)" : "");
}

static herald_status interpret(void *state, const herald_message *m, const herald_response *r,
                               herald_exchange *ex, herald_result *res)
{
    slack *k = state;
    const herald_host *h = k->host;
    long code = h->response_code(r);
    int testing = h->exchange_purpose(ex) == HERALD_PURPOSE_TEST;
    size_t len;
    const char *body = h->response_body(r, &len);
    char why[256];
    snprintf(why, sizeof why, "%.*s", (int)(len < 200 ? len : 200), len ? body : "");
    for (char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    (void)m;
    if (h->response_transport(r) != HERALD_OK) {
        http_classify(h, r, res, why, "", "");
        return HERALD_OK;
    }
    if (testing && code == 0) { /* the webhook's connect-only check */
        h->result(res, HERALD_VERDICT_OK, HERALD_OK,
                  "Slack reachable (TLS verified); Slack offers no side-effect-free check of an "
                  "incoming webhook, so nothing was sent: use herald test --send to post a "
                  "real test message");
        return HERALD_OK;
    }
    if (k->token && code == 200) {
        json_t *o = json_loadb(body, len, 0, NULL);
        if (json_is_true(json_object_get(o, "ok"))) {
            const char *team = json_string_value(json_object_get(o, "team"));
            if (testing && team)
                h->result(res, HERALD_VERDICT_OK, HERALD_OK,
                          "bot token valid for workspace %s; nothing was posted", team);
            else
                h->result(res, HERALD_VERDICT_OK, HERALD_OK, "posted to %s%s", k->channel,
                          testing ? "; a real test message was posted" : "");
        } else {
            const char *e = json_string_value(json_object_get(o, "error"));
            api_result(k, e ? e : "unknown_error", res, testing);
        }
        json_decref(o);
        return HERALD_OK;
    }
    if (code == 200) {
        h->result(res, HERALD_VERDICT_OK, HERALD_OK, "posted%s",
                  testing ? "; a real test message was posted" : "");
    } else if (code == 410 || (code == 404 && !strncmp(why, "no_service", 10))) {
        /* The webhook was removed or its channel archived: do not hammer it. */
        h->result(res, HERALD_VERDICT_DISABLE, HERALD_E_GONE,
                  "HTTP %ld %s: the webhook no longer delivers; create a new one and update url",
                  code, why);
    } else {
        http_classify(h, r, res, why, "the webhook URL was refused", "check channel and url");
    }
    return HERALD_OK;
}

HERALD_PLUGIN_DEFINE(
    .name = "slack",
    .version = "1.0.0",
    .description = "Slack incoming webhooks and bot tokens (mrkdwn, colour by severity)",
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
