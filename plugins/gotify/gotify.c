/* gotify.c - the Gotify channel: POST {base}/message with the application token in the
 * X-Gotify-Key header, priority from severity, Markdown and click extras (CONTRACTS.md). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <herald/plugin.h>

#include "../common/http.h"

#define EXCERPT_MAX 200
#define NSEV HTTP_NSEV

typedef struct gotify {
    const herald_host *host;
    herald_channel *ch;
    char *base;  /* http(s)://host[:port][/prefix], no trailing slash */
    char *token; /* application token; a user's own token (address) wins */
    int priority[NSEV];
    int markdown;
    char *click_field;
    http_conn conn;
} gotify;

static const herald_setting_spec settings[] = {
    {"url", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0,
     "Gotify server, http(s)://host[:port][/path]"},
    {"token", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0,
     "application token (or token_file); a user's own token is used when addressed"},
    {"priorities", HERALD_SETTING_MAP, 0, 0, 0,
     "priority per severity, e.g. { critical = 10; warning = 5; } (0-10)"},
    {"markdown", HERALD_SETTING_BOOL, 0, 0, 0, "render the body as Markdown (true)"},
    {"click_field", HERALD_SETTING_STRING, 0, 0, 0,
     "event field whose value is the notification's click URL (url)"},
    HTTP_CONN_SETTINGS,
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const schemes[] = {"gotify", "gotifys", NULL};

/* Gotify clients treat >= 8 as high priority and 4-7 as normal. */
static const int default_priority[NSEV] = {0, 2, 4, 6, 8, 10};

static void destroy(void *state)
{
    gotify *g = state;
    if (!g)
        return;
    free(g->base);
    free(g->token);
    free(g->click_field);
    http_conn_free(&g->conn);
    free(g);
}

static herald_status create(const herald_host *host, herald_channel *ch, const herald_settings *s,
                            void **state, herald_result *res)
{
    gotify *g = calloc(1, sizeof *g);
    if (!g)
        return HERALD_E_NOMEM;
    g->host = host;
    g->ch = ch;
    if (http_base(host, host->setting_string(s, "url"), &g->base) < 0) {
        return http_refuse(host, res, destroy, g,
                           "url must be http(s)://host[:port][/path] of the Gotify server");
    }
    g->token = http_dup(host->setting_string(s, "token"));
    if (g->token)
        host->add_secret(ch, g->token);
    memcpy(g->priority, default_priority, sizeof g->priority);
    if (!http_priorities(host, s, "priorities", g->priority, 0, 10)) {
        return http_refuse(host, res, destroy, g,
                           "priorities must map severities (debug ... critical) to 0-10, e.g. "
                           "priorities = { critical = 10; }");
    }
    g->markdown = 1;
    host->setting_bool(s, "markdown", &g->markdown);
    const char *click = host->setting_string(s, "click_field");
    g->click_field = http_dup(click ? click : "url");
    if (!http_conn_read(host, ch, s, &g->conn) || !g->base || !g->click_field) {
        destroy(g);
        return HERALD_E_NOMEM;
    }
    *state = g;
    return HERALD_OK;
}

/* gotify://host[:port][/path]/TOKEN (gotifys:// for https), as Apprise writes it. */
static herald_status from_url(const herald_host *host, const char *url,
                              herald_settings_builder *b, herald_result *res)
{
    herald_url_parts u = {.struct_size = sizeof u};
    if (host->url_split(url, &u) != HERALD_OK) {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID,
                     "expected gotify://host[:port][/path]/TOKEN");
        return HERALD_E_INVALID;
    }
    herald_status st = http_url_base_last(host, &u, "gotifys", b, "token", res,
                                          "gotify://host[:port][/path]/TOKEN");
    host->url_free(&u);
    return st;
}

static const char *token_for(const gotify *g, const herald_message *m)
{
    const char *personal = m ? g->host->msg_get(m, HERALD_MSG_ADDRESS) : NULL;
    return personal && *personal ? personal : g->token;
}

static herald_status message_request(gotify *g, const herald_message *m, herald_exchange *ex,
                                     herald_result *res)
{
    const herald_host *h = g->host;
    const char *token = token_for(g, m);
    if (!token) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG,
                  "no Gotify token: set token (or token_file) on the channel, or give the "
                  "user a gotify address");
        return HERALD_OK;
    }
    const char *title = h->msg_get(m, HERALD_MSG_TITLE);
    const char *body = h->msg_get(m, HERALD_MSG_BODY);
    herald_severity sev = h->msg_severity(m);
    int prio = g->priority[(unsigned)sev < NSEV ? (unsigned)sev : NSEV - 1];
    /* An empty message is refused by Gotify: the title stands in for it. */
    json_t *o = json_pack("{s:s, s:s, s:i}", "title", title ? title : "", "message",
                          body && *body ? body : (title ? title : ""), "priority", prio);
    json_t *extras = json_object();
    if (g->markdown)
        json_object_set_new(extras, "client::display",
                            json_pack("{s:s}", "contentType", "text/markdown"));
    const char *click = h->msg_field_get(m, g->click_field);
    if (click && *click)
        json_object_set_new(extras, "client::notification",
                            json_pack("{s:{s:s}}", "click", "url", click));
    if (json_object_size(extras))
        json_object_set_new(o, "extras", extras);
    else
        json_decref(extras);
    char *json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!json)
        return HERALD_E_NOMEM;
    /* The token goes in a header, never the query string: servers log URLs. */
    http_request_at(h, ex, &g->conn, "POST", g->base, "/message");
    h->http_header(ex, "Content-Type", "application/json");
    h->http_header(ex, "X-Gotify-Key", token);
    h->http_body(ex, json, strlen(json));
    free(json);
    return HERALD_OK;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    return message_request(state, m, ex, res);
}

/* Without HERALD_TEST_SEND: GET /version (is it Gotify?), then POST /message
 * with {} — a valid token gets 400 "message is required", a bad one 401, and
 * nothing is stored either way. */
static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    gotify *g = state;
    if (flags & HERALD_TEST_SEND)
        return message_request(g, m, ex, res);
    http_request_at(g->host, ex, &g->conn, "GET", g->base, "/version");
    return HERALD_OK;
}

static herald_status probe_token(gotify *g, const herald_message *m, herald_exchange *ex,
                                 herald_result *res)
{
    const char *token = token_for(g, m);
    if (!token) {
        g->host->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG,
                        "the server is Gotify, but the channel has no token to check");
        return HERALD_OK;
    }
    http_request_at(g->host, ex, &g->conn, "POST", g->base, "/message");
    g->host->http_header(ex, "Content-Type", "application/json");
    g->host->http_header(ex, "X-Gotify-Key", token);
    g->host->http_body(ex, "{}", 2);
    g->host->result(res, HERALD_VERDICT_CONTINUE, HERALD_OK, "checking the token");
    return HERALD_OK;
}

/* Gotify's error text: errorDescription of {"error","errorCode","errorDescription"}. */
static void error_text(const herald_host *h, const herald_response *r, char *out, size_t outlen)
{
    size_t len;
    const char *body = h->response_body(r, &len);
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *d = json_string_value(json_object_get(o, "errorDescription"));
    if (d) {
        snprintf(out, outlen, "%s", d);
    } else {
        size_t k = 0;
        for (size_t i = 0; i < len && k + 1 < outlen && i < EXCERPT_MAX; i++)
            out[k++] = (unsigned char)body[i] < 0x20 ? ' ' : body[i];
        out[k] = '\0';
    }
    json_decref(o);
}

static herald_status interpret(void *state, const herald_message *m, const herald_response *r,
                               herald_exchange *ex, herald_result *res)
{
    gotify *g = state;
    const herald_host *h = g->host;
    herald_status ts = h->response_transport(r);
    long code = h->response_code(r);
    int testing = h->exchange_purpose(ex) == HERALD_PURPOSE_TEST;
    int step = h->exchange_step(ex);
    char why[EXCERPT_MAX + 1];

    if (ts != HERALD_OK) {
        h->result(res, h->retryable(ts) ? HERALD_VERDICT_RETRY : HERALD_VERDICT_FAILED, ts,
                  "%s: %s", h->strerror(ts), h->response_error(r));
        return HERALD_OK;
    }
    error_text(h, r, why, sizeof why);
    if (testing && step == 0 && code == 200) {
        size_t len;
        const char *body = h->response_body(r, &len);
        json_t *v = json_loadb(body, len, 0, NULL);
        int is_gotify = json_is_string(json_object_get(v, "version"));
        json_decref(v);
        if (!is_gotify) {
            h->result(res, HERALD_VERDICT_FAILED, HERALD_E_PROTOCOL,
                      "%s/version did not answer like Gotify; check url", g->base);
            return HERALD_OK;
        }
        return probe_token(g, m, ex, res);
    }
    if (testing && step == 1) {
        if (code == 400) {
            h->result(res, HERALD_VERDICT_OK, HERALD_OK,
                      "Gotify reachable and the token accepted; nothing was stored");
        } else if (code == 401 || code == 403) {
            h->result(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH,
                      "HTTP %ld: Gotify rejected the token (%s); use an application token", code,
                      why);
        } else {
            h->result(res, code >= 500 ? HERALD_VERDICT_RETRY : HERALD_VERDICT_FAILED,
                      code >= 500 ? HERALD_E_SERVER : HERALD_E_PROTOCOL,
                      "HTTP %ld to an empty message; expected 400 or 401: %s", code, why);
        }
        return HERALD_OK;
    }
    if (code == 200) {
        size_t len;
        const char *body = h->response_body(r, &len);
        json_t *o = json_loadb(body, len, 0, NULL);
        json_int_t id = json_integer_value(json_object_get(o, "id"));
        json_decref(o);
        h->result(res, HERALD_VERDICT_OK, HERALD_OK, "Gotify message %lld%s", (long long)id,
                  testing ? "; a real test message was sent" : "");
    } else if (code == 401 || code == 403) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH,
                  "HTTP %ld: Gotify rejected the token (%s); use an application token", code,
                  why);
    } else if (code == 404) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND,
                  "HTTP 404 (%s): no Gotify API at %s; check url", why, g->base);
    } else {
        http_classify(h, r, res, why, "check token", "check url");
    }
    return HERALD_OK;
}

HERALD_PLUGIN_DEFINE(
    .name = "gotify",
    .version = "1.0.0",
    .description = "Gotify push notifications (application token, priority from severity)",
    .schemes = schemes,
    .settings = settings,
    .flags = HERALD_PLUGIN_F_ADDRESSED,
    .create = create,
    .from_url = from_url,
    .send = send,
    .interpret = interpret,
    .test = test,
    .destroy = destroy,
);
