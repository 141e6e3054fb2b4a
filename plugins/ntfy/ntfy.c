/* ntfy.c - the ntfy channel: JSON publish to {base}/ with topic, title, message, priority
 * from severity, tags, click and Markdown; bodies over ntfy's 4,096 bytes are split into
 * numbered messages or truncated with a visible marker (CONTRACTS.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <herald/plugin.h>

#include "../common/http.h"

#define EXCERPT_MAX 200
#define NSEV HTTP_NSEV
#define MESSAGE_MAX 4096
#define MAX_PARTS 8 /* the host runs at most 8 steps per attempt */
#define TRUNCATED " [...] (truncated by herald)"

typedef struct ntfy {
    const herald_host *host;
    herald_channel *ch;
    char *base; /* http(s)://host[:port][/path], no trailing slash */
    char *topic;
    char *token; /* access token (Bearer) */
    char *basic; /* "Basic ..." from user:password */
    int priority[NSEV];
    char *tags;  /* comma-separated */
    int markdown;
    char *click_field;
    http_overflow overflow;
    http_conn conn;
} ntfy;

static const herald_setting_spec settings[] = {
    {"url", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0,
     "ntfy server, http(s)://host[:port][/path]"},
    {"topic", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0, "topic to publish to"},
    {"token", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0,
     "access token (tk_...), sent as Authorization: Bearer"},
    {"user", HERALD_SETTING_STRING, 0, 0, 0, "user for Basic authentication"},
    {"password", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0, "password for user"},
    {"priorities", HERALD_SETTING_MAP, 0, 0, 0,
     "priority per severity, 1 (min) to 5 (urgent), e.g. { warning = 4; }"},
    {"tags", HERALD_SETTING_STRING, 0, 0, 0, "comma-separated tags (emoji short codes work)"},
    {"markdown", HERALD_SETTING_BOOL, 0, 0, 0, "render the body as Markdown (true)"},
    {"click_field", HERALD_SETTING_STRING, 0, 0, 0, "event field with the click URL (url)"},
    HTTP_OVERFLOW_SETTING("body over 4,096 bytes: split (default), truncate or upstream"),
    HTTP_CONN_SETTINGS,
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const schemes[] = {"ntfy", "ntfys", NULL};

static const int default_priority[NSEV] = {1, 2, 3, 4, 4, 5};

static void destroy(void *state)
{
    ntfy *n = state;
    if (!n)
        return;
    free(n->base);
    free(n->topic);
    free(n->token);
    free(n->basic);
    free(n->tags);
    free(n->click_field);
    http_conn_free(&n->conn);
    free(n);
}

static herald_status create(const herald_host *host, herald_channel *ch, const herald_settings *s,
                            void **state, herald_result *res)
{
    ntfy *n = calloc(1, sizeof *n);
    if (!n)
        return HERALD_E_NOMEM;
    n->host = host;
    n->ch = ch;
    if (http_base(host, host->setting_string(s, "url"), &n->base) < 0)
        return http_refuse(host, res, destroy, n,
                           "url must be http(s)://host[:port][/path] of the ntfy "
                           "server");
    const char *topic = host->setting_string(s, "topic");
    if (!*topic || strpbrk(topic, "/?#& "))
        return http_refuse(host, res, destroy, n,
                           "topic must be a plain name (letters, digits, - and _)");
    n->topic = http_dup(topic);
    n->token = http_dup(host->setting_string(s, "token"));
    if (n->token)
        host->add_secret(ch, n->token);
    const char *user = host->setting_string(s, "user");
    const char *pass = host->setting_string(s, "password");
    if (user && n->token)
        return http_refuse(host, res, destroy, n,
                           "give either token or user and password, not both");
    if (user) {
        size_t cap = strlen(user) + (pass ? strlen(pass) : 0) + 2;
        char *cred = malloc(cap);
        char *b64 = NULL;
        if (cred) {
            snprintf(cred, cap, "%s:%s", user, pass ? pass : "");
            b64 = host->base64(cred, strlen(cred));
            free(cred);
        }
        if (b64 && (n->basic = malloc(strlen(b64) + 7)))
            snprintf(n->basic, strlen(b64) + 7, "Basic %s", b64);
        if (b64) {
            host->add_secret(ch, b64);
            host->free(b64);
        }
        if (pass)
            host->add_secret(ch, pass);
    }
    memcpy(n->priority, default_priority, sizeof n->priority);
    if (!http_priorities(host, s, "priorities", n->priority, 1, 5))
        return http_refuse(host, res, destroy, n,
                           "priorities must map severities (debug ... critical) to 1-5, "
                           "e.g. priorities = { warning = 4; }");
    n->tags = http_dup(host->setting_string(s, "tags"));
    n->markdown = 1;
    host->setting_bool(s, "markdown", &n->markdown);
    const char *click = host->setting_string(s, "click_field");
    n->click_field = http_dup(click ? click : "url");
    if (!http_overflow_read(host, s, &n->overflow))
        return http_refuse(host, res, destroy, n, "overflow must be split, truncate or upstream");
    if (!http_conn_read(host, ch, s, &n->conn) || !n->base || !n->topic || !n->click_field || (user && !n->basic)) {
        destroy(n);
        return HERALD_E_NOMEM;
    }
    *state = n;
    return HERALD_OK;
}

/* ntfy://[token@|user:password@]host[:port][/path]/topic (ntfys:// for https). */
static herald_status from_url(const herald_host *host, const char *url,
                              herald_settings_builder *b, herald_result *res)
{
    const char *form = "ntfy://[token@]host[:port]/topic";
    herald_url_parts u = {.struct_size = sizeof u};
    if (host->url_split(url, &u) != HERALD_OK) {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID, "expected %s", form);
        return HERALD_E_INVALID;
    }
    herald_status st = http_url_base_last(host, &u, "ntfys", b, "topic", res, form);
    if (st == HERALD_OK && u.user && u.password) {
        st = host->settings_put(b, "user", u.user);
        if (st == HERALD_OK)
            st = host->settings_put(b, "password", u.password);
    } else if (st == HERALD_OK && u.user) {
        st = host->settings_put(b, "token", u.user);
    }
    host->url_free(&u);
    return st;
}

/* The message of part `part` (0-based) of `parts`; *parts is computed on the
 * first call. Returned text is malloc'd. */
static char *message_part(ntfy *n, const char *body, int part, int *parts)
{
    size_t len = strlen(body);
    if (len <= MESSAGE_MAX || n->overflow == HTTP_UPSTREAM) {
        *parts = 1;
        return http_dup(body);
    }
    if (n->overflow == HTTP_TRUNCATE) {
        *parts = 1;
        size_t keep = http_utf8_prefix(body, MESSAGE_MAX - strlen(TRUNCATED), HTTP_CUT_BYTES | HTTP_CUT_WORD);
        char *out = malloc(keep + strlen(TRUNCATED) + 1);
        if (out) {
            memcpy(out, body, keep);
            strcpy(out + keep, TRUNCATED);
        }
        return out;
    }
    /* Split: every part fits; the last part says how many there were not. */
    const char *p = body;
    size_t left = len;
    int count = 0;
    char *mine = NULL;
    while (left > 0 && count < MAX_PARTS) {
        size_t take = http_utf8_prefix(p, count == MAX_PARTS - 1 ? MESSAGE_MAX - strlen(TRUNCATED)
                                                                 : MESSAGE_MAX,
                                       HTTP_CUT_BYTES | HTTP_CUT_WORD);
        if (take == 0)
            take = left < MESSAGE_MAX ? left : MESSAGE_MAX;
        int last_allowed = count == MAX_PARTS - 1 && take < left;
        if (count == part) {
            mine = malloc(take + strlen(TRUNCATED) + 1);
            if (mine) {
                memcpy(mine, p, take);
                strcpy(mine + take, last_allowed ? TRUNCATED : "");
            }
        }
        p += take;
        left -= take;
        count++;
    }
    *parts = count;
    return mine;
}

static herald_status publish(ntfy *n, const herald_message *m, int part, herald_exchange *ex,
                             int *parts)
{
    const herald_host *h = n->host;
    const char *title = h->msg_get(m, HERALD_MSG_TITLE);
    const char *body = h->msg_get(m, HERALD_MSG_BODY);
    char *msg = message_part(n, body && *body ? body : (title ? title : ""), part, parts);
    if (!msg)
        return HERALD_E_NOMEM;
    char numbered[1200];
    if (*parts > 1)
        snprintf(numbered, sizeof numbered, "%s (%d/%d)", title ? title : "", part + 1, *parts);
    herald_severity sev = h->msg_severity(m);
    json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "topic", n->topic, "title",
                          *parts > 1 ? numbered : (title ? title : ""), "message", msg,
                          "priority", n->priority[(unsigned)sev < NSEV ? (unsigned)sev : NSEV - 1]);
    free(msg);
    if (n->tags && *n->tags) {
        json_t *tags = json_array();
        char *copy = http_dup(n->tags), *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            if (*t)
                json_array_append_new(tags, json_string(t));
        }
        free(copy);
        json_object_set_new(o, "tags", tags);
    }
    const char *click = h->msg_field_get(m, n->click_field);
    if (click && *click)
        json_object_set_new(o, "click", json_string(click));
    if (n->markdown)
        json_object_set_new(o, "markdown", json_true());
    char *json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!json)
        return HERALD_E_NOMEM;
    http_request_at(h, ex, &n->conn, "POST", n->base, "/");
    h->http_header(ex, "Content-Type", "application/json");
    if (n->token) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Bearer %s", n->token);
        h->http_header(ex, "Authorization", auth);
    } else if (n->basic) {
        h->http_header(ex, "Authorization", n->basic);
    }
    h->http_body(ex, json, strlen(json));
    free(json);
    return HERALD_OK;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    int parts;
    return publish(state, m, 0, ex, &parts);
}

static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    ntfy *n = state;
    if (flags & HERALD_TEST_SEND)
        return send(n, m, ex, res);
    http_request_at(n->host, ex, &n->conn, "GET", n->base, "/v1/health");
    return HERALD_OK;
}

/* ntfy's error text: "error" of {"code","http","error"}. */
static void error_text(const herald_host *h, const herald_response *r, char *out, size_t outlen)
{
    size_t len;
    const char *body = h->response_body(r, &len);
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *e = json_string_value(json_object_get(o, "error"));
    json_int_t code = json_integer_value(json_object_get(o, "code"));
    if (e) {
        snprintf(out, outlen, "%s (ntfy code %lld)", e, (long long)code);
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
    ntfy *n = state;
    const herald_host *h = n->host;
    long code = h->response_code(r);
    int testing = h->exchange_purpose(ex) == HERALD_PURPOSE_TEST;
    char why[EXCERPT_MAX + 64];
    error_text(h, r, why, sizeof why);
    if (h->response_transport(r) == HERALD_OK && code == 200) {
        if (testing) { /* the answer to /v1/health, unless a real test was asked for */
            size_t len;
            const char *body = h->response_body(r, &len);
            json_t *o = json_loadb(body, len, 0, NULL);
            json_t *healthy = json_object_get(o, "healthy");
            int is_health = healthy != NULL, ok = json_is_true(healthy);
            /* A published message: {"id":"...","event":"message",...}. */
            const char *event = json_string_value(json_object_get(o, "event"));
            int is_message = json_is_string(json_object_get(o, "id")) && event &&
                             !strcmp(event, "message");
            json_decref(o);
            if (is_health) {
                h->result(res, ok ? HERALD_VERDICT_OK : HERALD_VERDICT_FAILED,
                          ok ? HERALD_OK : HERALD_E_SERVER,
                          ok ? "ntfy reachable and healthy; nothing was sent"
                             : "ntfy answers but reports itself unhealthy");
                return HERALD_OK;
            }
            if (!is_message) { /* some other server answering 200 to anything */
                h->result(res, HERALD_VERDICT_FAILED, HERALD_E_PROTOCOL,
                          "HTTP 200 but not ntfy's answer (no health status, no message): %s; "
                          "check url", why);
                return HERALD_OK;
            }
        }
        int parts = 1;
        int step = h->exchange_step(ex);
        if (m) {
            char *probe = message_part(n, h->msg_get(m, HERALD_MSG_BODY) &&
                                               *h->msg_get(m, HERALD_MSG_BODY)
                                           ? h->msg_get(m, HERALD_MSG_BODY)
                                           : h->msg_get(m, HERALD_MSG_TITLE),
                                       0, &parts);
            free(probe);
        }
        if (step + 1 < parts) {
            herald_status st = publish(n, m, step + 1, ex, &parts);
            if (st != HERALD_OK)
                return st;
            h->result(res, HERALD_VERDICT_CONTINUE, HERALD_OK, "part %d of %d sent", step + 1,
                      parts);
            return HERALD_OK;
        }
        h->result(res, HERALD_VERDICT_OK, HERALD_OK, "published to %s%s%s", n->topic,
                  parts > 1 ? " in several messages" : "",
                  testing ? "; a real test message was sent" : "");
        return HERALD_OK;
    }
    if (code == 413) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_REJECTED,
                  "HTTP 413: %s; set overflow = split or truncate", why);
        return HERALD_OK;
    }
    http_classify(h, r, res, why, "check token, or user and password",
                  "check url and topic");
    return HERALD_OK;
}

HERALD_PLUGIN_DEFINE(
    .name = "ntfy",
    .version = "1.0.0",
    .description = "ntfy push notifications (topic, priority from severity, Markdown)",
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
