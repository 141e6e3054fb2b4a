/* http_api.c - heraldd's HTTP API: bearer tokens with scopes and a tenant, JSON in and out,
 * one error shape, submissions acknowledged after the commit (see http_api.h). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <libconfig.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "hooks.h"
#include "http_api.h"
#include "sign.h"
#include "submit.h"
#include "userprefs.h"
#include "webhooks.h"

#define DEFAULT_PORT 8730
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_RATE 2000 /* requests per second per token and per address */
#define DEFAULT_TIMEOUT_S 30
#define MAX_WAIT_MS (5 * 60 * 1000)
#define RATE_SLOTS 256
#define LIST_MAX 1000
/* A connection's memory for the request line and headers (bodies are copied
 * out as they arrive). libmicrohttpd zeroes it for every request, so it is
 * kept near what requests need; bigger headers are refused with 431. */
#define HEADERS_MAX (16 * 1024)

static const char openapi_json[] =
#include "openapi.inc"
    ;

typedef struct req {
    struct MHD_Connection *conn;
    struct hr_api *api;
    hr_buf body;
    int too_large;
    int suspended;
    /* the answer, once known */
    int status;
    char *resp;
    const char *ctype;
    char retry_after[16];
    char allow[32]; /* for 405 */
    /* a submission waiting for the commit, then maybe for final states */
    char event_id[37];
    int duplicate;
    long long wait_ms, wait_until;
    char tenant[65];
    /* POST /v1/hooks/{source}: the body limit is the source's */
    size_t max_body;
    char hook[65];
    long long receipt;
    char message_id[HR_HOOK_ID_MAX + 1];
    struct req *next;
} req;

typedef struct rate_slot {
    char key[80];
    long long second;
    int count;
} rate_slot;

struct hr_api {
    struct MHD_Daemon *mhd;
    hr_api_env env;
    size_t max_body;
    int rate;
    int metrics_public;
    int resumed; /* connections resumed since the last hr_api_run() */
    hr_token_row *tokens;
    size_t ntokens;
    long long tokens_version, tokens_checked_ms;
    req *pending; /* submitted in this round: answered after the commit */
    req *waiting; /* ?wait: answered when final or at the deadline */
    req *hooks_pending; /* webhook receipts of this round: answered after the commit */
    size_t receipts;    /* new receipts committed, for hr_api_receipts() */
    rate_slot slots[RATE_SLOTS];
    char *tls_key, *tls_cert;
};

typedef struct auth {
    const hr_token_row *tok;
} auth;

/* ---- responses ---- */

static void answer(req *r, int status, char *body, const char *ctype)
{
    free(r->resp);
    r->status = status;
    r->resp = body;
    r->ctype = ctype ? ctype : "application/json";
}

static void answer_json(req *r, int status, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *copy = hr_asprintf("%s\n", s ? s : "{}");
    free(s);
    answer(r, status, copy, NULL);
}

static void answer_error(req *r, int status, const char *code, const char *fmt, ...)
    HERALD_PRINTF(4, 5);

static void answer_error(req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *clean = hr_redact(msg);
    answer_json(r, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", clean));
    free(clean);
}

static enum MHD_Result send_answer(req *r)
{
    const char *body = r->resp ? r->resp : "";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->retry_after[0])
        MHD_add_response_header(resp, "Retry-After", r->retry_after);
    if (r->allow[0])
        MHD_add_response_header(resp, "Allow", r->allow);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- tokens: "hrd_<id>_<secret>", stored as the SHA-256 of the whole ---- */

static void tokens_refresh(hr_api *api)
{
    long long now = hr_now_ms();
    if (api->tokens && now - api->tokens_checked_ms < 1000)
        return;
    api->tokens_checked_ms = now;
    long long v = hr_store_directory_version(api->env.store);
    if (api->tokens && v == api->tokens_version)
        return;
    hr_token_row *t = NULL;
    size_t n = 0;
    if (hr_store_tokens(api->env.store, &t, &n) != HERALD_OK) {
        hr_log(HERALD_LOG_ERROR, "cannot read the API tokens: %s", hr_store_error(api->env.store));
        return;
    }
    hr_token_rows_free(api->tokens, api->ntokens);
    api->tokens = t;
    api->ntokens = n;
    api->tokens_version = v;
}

/* The token of an "Authorization: Bearer ..." header; NULL when absent, unknown
 * or revoked. The hash compare is constant-time. */
static const hr_token_row *token_of(hr_api *api, const char *header)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    const char *tok = header + 7;
    while (*tok == ' ')
        tok++;
    if (strncmp(tok, "hrd_", 4) != 0 || strlen(tok) > 200)
        return NULL;
    const char *id = tok + 4, *sep = strchr(id, '_');
    if (!sep || sep - id > 20)
        return NULL;
    char want[65];
    hr_sha256_hex(tok, want);
    for (size_t i = 0; i < api->ntokens; i++) {
        const hr_token_row *t = &api->tokens[i];
        if (strlen(t->id) == (size_t)(sep - id) && !strncmp(t->id, id, (size_t)(sep - id)) &&
            strlen(t->hash) == 64 && CRYPTO_memcmp(t->hash, want, 64) == 0 && !t->revoked_ms)
            return t;
    }
    return NULL;
}

static int has_scope(const hr_token_row *t, const char *scope)
{
    char *copy = hr_strdup(t->scopes), *save = NULL;
    int found = 0;
    for (char *s = strtok_r(copy, ",", &save); s && !found; s = strtok_r(NULL, ",", &save))
        found = !strcmp(s, scope) || !strcmp(s, "admin");
    free(copy);
    return found;
}

/* ---- rate limit: per token and per address, requests per second ---- */

static int rate_take(hr_api *api, const char *key, long long now_ms)
{
    unsigned h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    rate_slot *s = &api->slots[h % RATE_SLOTS];
    long long sec = now_ms / 1000;
    if (strcmp(s->key, key) != 0 || s->second != sec) {
        snprintf(s->key, sizeof s->key, "%s", key);
        s->second = sec;
        s->count = 0;
    }
    return ++s->count <= api->rate;
}

static void client_address(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, len, "?");
    if (!ci || !ci->client_addr)
        return;
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out,
                  (socklen_t)len);
    else if (ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out,
                  (socklen_t)len);
}

/* ---- handlers ---- */

typedef void (*handler_fn)(hr_api *api, req *r, const auth *a, char **seg);

static const char *query(req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static int json_body(req *r, json_t **out)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
        answer_error(r, 415, "unsupported_media_type",
                     "the body must be JSON: send Content-Type: application/json");
        return 0;
    }
    json_error_t e;
    *out = json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_REJECT_DUPLICATES, &e);
    if (!*out) {
        answer_error(r, 400, "malformed_json", "the body is not JSON: %s at line %d column %d",
                     e.text, e.line, e.column);
        return 0;
    }
    return 1;
}

static void submit(hr_api *api, req *r, const auth *a, herald_event *evp, char **names,
                   size_t nto, long long wait_ms);

static void post_events(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)seg;
    json_t *o;
    if (!json_body(r, &o))
        return;
    if (!json_is_object(o)) {
        json_decref(o);
        answer_error(r, 422, "invalid_event", "the body must be a JSON object (an event)");
        return;
    }
    /* "to" is the API's, not the event's: taken out before the event is read. */
    json_t *to_in = json_incref(json_object_get(o, "to"));
    json_object_del(o, "to");
    herald_event ev;
    char err[1024];
    if (hr_event_from_json(o, &ev, err, sizeof err) != HERALD_OK) {
        json_decref(to_in);
        json_decref(o);
        answer_error(r, 422, "invalid_event", "%s", err);
        return;
    }
    if (to_in)
        json_object_set_new(o, "to", to_in);
    const char *idem = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (idem && !ev.idempotency_key) {
        if (strlen(idem) > 256 || hr_has_ctl(idem)) {
            json_decref(o);
            hr_event_clear(&ev);
            answer_error(r, 400, "invalid_header",
                         "Idempotency-Key must be at most 256 printable characters");
            return;
        }
        ev.idempotency_key = hr_strdup(idem);
    }
    json_t *to = json_object_get(o, "to");
    size_t nto = json_is_array(to) ? json_array_size(to) : 0;
    char **names = hr_calloc(nto + 1, sizeof *names);
    for (size_t i = 0; i < nto; i++)
        names[i] = (char *)json_string_value(json_array_get(to, i));
    for (size_t i = 0; i < nto; i++)
        if (!names[i] || strstr(names[i], "://")) {
            free(names);
            json_decref(o);
            hr_event_clear(&ev);
            answer_error(r, 422, "invalid_event",
                         "'to' must list configured channel names (URLs are for the CLI)");
            return;
        }
    const char *wait = query(r, "wait");
    long long wait_ms = 0;
    if (wait && (hr_parse_duration(wait, &wait_ms) != HERALD_OK || wait_ms > MAX_WAIT_MS)) {
        free(names);
        json_decref(o);
        hr_event_clear(&ev);
        answer_error(r, 400, "invalid_query", "wait=%s: use a duration up to 5m, e.g. 10s", wait);
        return;
    }
    submit(api, r, a, &ev, names, nto, wait_ms);
    free(names);
    json_decref(o);
}

/* Submit ev (taken) in the round's transaction; answered after the commit. */
static void submit(hr_api *api, req *r, const auth *a, herald_event *evp, char **names,
                   size_t nto, long long wait_ms)
{
    herald_event ev = *evp;
    char err[1024];
    ev.tenant = hr_strdup(a->tok->tenant);
    int dup = 0;
    herald_status st = HERALD_E_IO;
    if (api->env.begin(api->env.ctx))
        st = hr_submit(*api->env.cfg, *api->env.loader, *api->env.routing, api->env.store,
                       *api->env.d, &ev, names, nto, &dup, err, sizeof err);
    else
        snprintf(err, sizeof err, "cannot start a transaction: %s", hr_store_error(api->env.store));
    if (st != HERALD_OK) {
        int code = st == HERALD_E_TOO_LARGE ? 413
                   : st == HERALD_E_IO      ? 503
                   : st == HERALD_E_NOT_FOUND || st == HERALD_E_INVALID || st == HERALD_E_ENCODING
                       ? 422
                       : 500;
        answer_error(r, code, code == 503 ? "unavailable" : code == 413 ? "too_large" : "invalid_event",
                     "%s", err);
        hr_event_clear(&ev);
        return;
    }
    snprintf(r->event_id, sizeof r->event_id, "%s", ev.id);
    snprintf(r->tenant, sizeof r->tenant, "%s", a->tok->tenant);
    r->duplicate = dup;
    r->wait_ms = wait_ms;
    hr_event_clear(&ev);
    /* Answered after the commit: suspend until then. */
    r->next = api->pending;
    api->pending = r;
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
}

/* 404 for an event of another tenant too: a token never learns it exists. */
static herald_event *tenant_event(hr_api *api, req *r, const auth *a, const char *id)
{
    char *tenant = hr_store_event_tenant(api->env.store, id);
    int mine = tenant && !strcmp(tenant, a->tok->tenant);
    free(tenant);
    herald_event *ev = mine ? hr_store_event(api->env.store, id) : NULL;
    if (!ev)
        answer_error(r, 404, "not_found", "no event %s", id);
    return ev;
}

static void get_event(hr_api *api, req *r, const auth *a, char **seg)
{
    herald_event *ev = tenant_event(api, r, a, seg[3]);
    if (!ev)
        return;
    char *text = hr_event_json(ev);
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    hr_event_free(ev);
    int final;
    json_t *ds = api->env.status(api->env.ctx, seg[3], &final);
    size_t i;
    json_t *d;
    json_array_foreach(ds, i, d) {
        hr_attempt_row *at = NULL;
        size_t n = 0;
        json_t *arr = json_array();
        if (hr_store_attempts(api->env.store, json_integer_value(json_object_get(d, "delivery")),
                              &at, &n) == HERALD_OK)
            for (size_t k = 0; k < n; k++) {
                char ts[32];
                hr_rfc3339(at[k].started_ms, ts, sizeof ts);
                json_array_append_new(
                    arr, json_pack("{s:s, s:I, s:s, s:s, s:I, s:s, s:s}", "started", ts,
                                   "duration_ms", (json_int_t)at[k].duration_ms, "verdict",
                                   hr_verdict_name(at[k].verdict), "status",
                                   hr_status_name(at[k].status), "code", (json_int_t)at[k].code,
                                   "detail", at[k].detail ? at[k].detail : "", "response",
                                   at[k].excerpt ? at[k].excerpt : ""));
            }
        hr_attempt_rows_free(at, n);
        json_object_set_new(d, "attempts", arr);
    }
    json_object_set_new(o, "final", json_boolean(final));
    json_object_set_new(o, "deliveries", ds);
    answer_json(r, 200, o);
}

static void get_explain(hr_api *api, req *r, const auth *a, char **seg)
{
    herald_event *ev = tenant_event(api, r, a, seg[3]);
    if (!ev)
        return;
    hr_event_free(ev);
    char *trail = NULL;
    hr_store_trail(api->env.store, seg[3], &trail);
    json_t *t = trail ? json_loads(trail, 0, NULL) : NULL;
    free(trail);
    answer_json(r, 200, json_pack("{s:s, s:o}", "id", seg[3], "routing", t ? t : json_null()));
}

/* ?limit= (1 to LIST_MAX, default 100) and ?cursor= (the last id of the
 * previous page, 0 when none) of a listing, newest first. 0 when answered 400. */
static int page_args(req *r, long *limit, long long *before)
{
    const char *v;
    char *end;
    *limit = 100;
    *before = 0;
    if ((v = query(r, "limit")) &&
        ((*limit = strtol(v, &end, 10)) < 1 || *limit > LIST_MAX || *end)) {
        answer_error(r, 400, "invalid_query", "limit=%s: use 1 to %d", v, LIST_MAX);
        return 0;
    }
    if ((v = query(r, "cursor")) && ((*before = strtoll(v, &end, 10)) <= 0 || *end)) {
        answer_error(r, 400, "invalid_query", "cursor=%s is not a cursor from a previous page", v);
        return 0;
    }
    return 1;
}

static void get_deliveries(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)seg;
    hr_log_filter f = {.state = -1, .tenant = a->tok->tenant};
    const char *v;
    if ((v = query(r, "status"))) {
        int found = 0;
        for (int s = 0; s <= HR_D_DEFERRED; s++)
            if (!strcmp(v, hr_dstate_name((hr_dstate)s))) {
                f.state = s;
                found = 1;
            }
        if (!found) {
            answer_error(r, 400, "invalid_query", "status=%s: use pending, inflight, sent, "
                         "failed, dead or deferred", v);
            return;
        }
    }
    f.channel = query(r, "channel");
    f.event_type = query(r, "type");
    long long since = 0;
    if ((v = query(r, "since"))) {
        if (hr_parse_duration(v, &since) != HERALD_OK) {
            answer_error(r, 400, "invalid_query", "since=%s: use a duration such as 1h", v);
            return;
        }
        f.since_ms = hr_now_ms() - since;
    }
    long limit;
    if (!page_args(r, &limit, &f.before_id))
        return;
    f.limit = (size_t)limit + 1; /* one more: is there a next page? */
    hr_delivery_row *rows = NULL;
    size_t n = 0;
    if (hr_store_log(api->env.store, &f, &rows, &n) != HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
        return;
    }
    json_t *arr = json_array();
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++) {
        char ts[32];
        hr_rfc3339(rows[i].updated_ms, ts, sizeof ts);
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:i, s:s, s:I, s:s}", "id",
                           (json_int_t)rows[i].id, "event", rows[i].event_id, "type",
                           rows[i].event_type, "channel", rows[i].channel, "user",
                           rows[i].recipient ? json_string(rows[i].recipient) : json_null(),
                           "state", hr_dstate_name(rows[i].state), "attempts", rows[i].attempts,
                           "status", hr_status_name(rows[i].last_status), "code",
                           (json_int_t)rows[i].last_code, "updated", ts));
    }
    json_t *next = n > (size_t)limit ? json_sprintf("%lld", rows[shown - 1].id) : json_null();
    hr_delivery_rows_free(rows, n);
    answer_json(r, 200, json_pack("{s:o, s:o}", "deliveries", arr, "next_cursor", next));
}

static void post_retry(hr_api *api, req *r, const auth *a, char **seg)
{
    char *end;
    long long id = strtoll(seg[3], &end, 10);
    hr_log_filter f = {.state = -1, .tenant = a->tok->tenant, .before_id = id + 1, .limit = 1};
    hr_delivery_row *rows = NULL;
    size_t n = 0;
    if (*end || id <= 0 || hr_store_log(api->env.store, &f, &rows, &n) != HERALD_OK || n == 0 ||
        rows[0].id != id) {
        hr_delivery_rows_free(rows, n);
        answer_error(r, 404, "not_found", "no delivery %s", seg[3]);
        return;
    }
    hr_delivery_rows_free(rows, n);
    size_t done = 0;
    if (!api->env.begin(api->env.ctx) ||
        hr_store_requeue(api->env.store, id, 0, hr_now_ms(), &done) != HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
        return;
    }
    if (!done) {
        answer_error(r, 409, "conflict", "delivery %lld is not finished; only sent, failed or "
                     "dead deliveries can be retried", id);
        return;
    }
    answer_json(r, 202, json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", "pending"));
}

static void get_channels(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)seg;
    (void)a;
    hr_config *cfg = *api->env.cfg;
    json_t *arr = json_array();
    for (size_t i = 0; i < cfg->nchannels; i++) {
        char *reason = NULL;
        int off = hr_store_channel_disabled(api->env.store, cfg->channels[i].name, &reason);
        json_array_append_new(arr, json_pack("{s:s, s:s?, s:b, s:s?}", "name", cfg->channels[i].name,
                                             "plugin", cfg->channels[i].plugin, "enabled", !off,
                                             "disabled_reason", reason));
        free(reason);
    }
    answer_json(r, 200, json_pack("{s:o}", "channels", arr));
}

/* The plugin's side-effect-free test of a configured channel, as `herald test
 * CHANNEL` runs it. It runs here, on heraldd's thread: nothing else (socket
 * clients, dispatch, other requests) moves until it is over. Each request it
 * makes is bounded by the channel's own timeout, and a test makes at most a
 * few (the channel engine's step limit). */
static void post_channel_test(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)a;
    hr_channel_conf *cc = hr_config_channel(*api->env.cfg, seg[3]);
    if (!cc) {
        answer_error(r, 404, "not_found", "no channel %s (GET /v1/channels lists them)", seg[3]);
        return;
    }
    char err[1024];
    herald_channel *ch = NULL;
    if (hr_channel_open(*api->env.loader, cc, &ch, err, sizeof err) != HERALD_OK) {
        answer_json(r, 200, json_pack("{s:s, s:s, s:s, s:s}", "channel", seg[3], "verdict",
                                      "failed", "status", "invalid", "detail", err));
        return;
    }
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = (char *)"herald.test";
    ev.severity = HERALD_SEVERITY_INFO;
    ev.title = (char *)"herald test";
    ev.body = (char *)"This is a test notification from herald.";
    ev.source = (char *)"herald";
    hr_event_stamp(&ev);
    herald_message m = {.ev = &ev, .address = NULL};
    hr_outcome out;
    hr_channel_deliver(ch, &m, HERALD_PURPOSE_TEST, 0, &out);
    hr_channel_close(ch);
    answer_json(r, 200, json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}", "channel", seg[3], "verdict",
                                  hr_verdict_name(out.verdict), "status",
                                  hr_status_name(out.status), "code", (json_int_t)out.code,
                                  "detail", out.detail, "elapsed_ms",
                                  (json_int_t)out.elapsed_ms));
}

static void get_healthz(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)api, (void)a, (void)seg;
    answer_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void get_readyz(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)a, (void)seg;
    if (*api->env.draining || hr_store_directory_version(api->env.store) < 0)
        answer_error(r, 503, "unavailable", "heraldd is stopping or its queue is unreadable");
    else
        answer_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

/* Every tenant's figures (tenants and subscriptions are label values): for
 * the operator, a token of the default tenant, unless metrics_public. */
static void get_metrics(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)seg;
    if (!api->metrics_public && strcmp(a->tok->tenant, "default") != 0) {
        answer_error(r, 403, "forbidden", "/metrics covers every tenant: scrape it with a token "
                     "of the default tenant");
        return;
    }
    static const char *const states[] = {"pending", "inflight", "sent", "failed", "dead",
                                         "deferred"};
    hr_queue_row *q = NULL;
    size_t n = 0;
    hr_buf b = {0};
    hr_buf_adds(&b, "# HELP herald_deliveries Deliveries in the queue by channel and state.\n"
                    "# TYPE herald_deliveries gauge\n");
    long long oldest = 0;
    if (hr_store_queue(api->env.store, &q, &n) == HERALD_OK) {
        for (size_t i = 0; i < n; i++) {
            for (int s = 0; s < 6; s++) {
                hr_buf_adds(&b, "herald_deliveries{channel=\"");
                hr_metrics_label(&b, q[i].channel);
                hr_buf_addf(&b, "\",state=\"%s\"} %lld\n", states[s], q[i].count[s]);
            }
            if (q[i].oldest_pending_ms && (!oldest || q[i].oldest_pending_ms < oldest))
                oldest = q[i].oldest_pending_ms;
        }
        hr_queue_rows_free(q, n);
    }
    hr_buf_addf(&b, "# HELP herald_oldest_pending_age_seconds Age of the oldest pending delivery.\n"
                    "# TYPE herald_oldest_pending_age_seconds gauge\n"
                    "herald_oldest_pending_age_seconds %.3f\n",
                oldest ? (double)(hr_now_ms() - oldest) / 1000.0 : 0.0);
    hr_buf_addf(&b, "# HELP herald_inflight Attempts in flight.\n# TYPE herald_inflight gauge\n"
                    "herald_inflight %zu\n", hr_dispatcher_inflight(*api->env.d));
    if (api->env.metrics)
        hr_metrics_render(api->env.metrics, &b);
    hr_buf_add(&b, "", 1);
    answer(r, 200, b.data, "text/plain; version=0.0.4");
}

static void get_openapi(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)api, (void)a, (void)seg;
    answer(r, 200, hr_strdup(openapi_json), NULL);
}

/* ---- inbound webhooks ---- */

static const hr_hook_source *hook_source(hr_api *api, const char *name)
{
    return api->env.hooks ? hr_hooks_find(*api->env.hooks, name) : NULL;
}

static const char *conn_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

typedef struct header_walk {
    const hr_hook_source *src;
    json_t *out;
} header_walk;

static enum MHD_Result keep_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    header_walk *w = cls;
    char name[129];
    size_t n = strlen(key);
    if (n >= sizeof name || !value)
        return MHD_YES;
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
    if (!hr_hook_header_kept(w->src, name))
        return MHD_YES;
    const char *before = json_string_value(json_object_get(w->out, name));
    json_t *v = before ? json_sprintf("%s, %s", before, value) : json_string(value);
    if (v) /* NULL: not UTF-8; such a header is of no use to a template */
        json_object_set_new(w->out, name, v);
    return MHD_YES;
}

/* GitHub's application/x-www-form-urlencoded mode: the JSON document is the
 * form's payload parameter. Its value, decoded (malloc'd, *n bytes), or NULL
 * when the form has none or it is not properly encoded. */
static char *form_payload(const char *body, size_t len, size_t *n)
{
    for (size_t i = 0; i < len;) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end - i >= 8 && !memcmp(body + i, "payload=", 8))
            return hr_pct_decode(body + i + 8, end - i - 8, 1, n);
        i = end + 1;
    }
    return NULL;
}

/* Verified, stored in the round's transaction and answered after the commit;
 * turned into an event later (hr_hooks_process), never here. */
static void post_hook(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)a;
    const hr_hook_source *src = hook_source(api, seg[3]);
    if (!src) {
        answer_error(r, 404, "not_found", "no hook source '%s'; configure hooks.%s in herald.conf",
                     seg[3], seg[3]);
        return;
    }
    char why[512], addr[64];
    const char *body = r->body.data ? r->body.data : "";
    if (hr_hook_verify(src, conn_header, r->conn, body, r->body.len, hr_now_ms() / 1000, why,
                       sizeof why) != 0) {
        client_address(r->conn, addr, sizeof addr);
        hr_log(HERALD_LOG_WARNING, "hook %s: refused a request from %s: %s", src->name, addr, why);
        answer_error(r, 401, "invalid_signature", "%s", why);
        return;
    }
    /* What is stored is JSON: the body, or the payload of a form-encoded one
     * (the signature covered the form as sent). */
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    char *form = NULL;
    size_t stored_len = r->body.len;
    json_t *parsed;
    if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33) &&
        (!ct[33] || ct[33] == ';' || ct[33] == ' ')) {
        json_error_t e;
        if (!(form = form_payload(body, r->body.len, &stored_len))) {
            answer_error(r, 400, "malformed_form", "a form-encoded webhook carries its JSON "
                         "document in the payload parameter; this one has none (or a bad "
                         "%%-escape)");
            return;
        }
        if (!(parsed = json_loadb(form, stored_len, JSON_REJECT_DUPLICATES, &e))) {
            answer_error(r, 400, "malformed_json", "the form's payload is not JSON: %s at line "
                         "%d column %d", e.text, e.line, e.column);
            free(form);
            return;
        }
    } else if (!json_body(r, &parsed)) {
        return;
    }
    json_decref(parsed);
    if (hr_hook_message_id(src, conn_header, r->conn, body, r->message_id, why, sizeof why) != 0) {
        answer_error(r, 400, "invalid_header", "%s", why);
        free(form);
        return;
    }
    header_walk w = {src, json_object()};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, keep_header, &w);
    char *headers = json_dumps(w.out, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(w.out);
    hr_receipt rc = {.source = src->name, .message_id = r->message_id, .tenant = src->tenant,
                     .headers = headers, .body = form ? form : (char *)body,
                     .body_len = stored_len, .received_ms = hr_now_ms()};
    int dup = 0;
    herald_status st = HERALD_E_IO;
    if (api->env.begin(api->env.ctx))
        st = hr_store_receipt_add(api->env.store, &rc, &r->receipt, &dup);
    free(headers);
    free(form);
    if (st != HERALD_OK) {
        answer_error(r, 503, "unavailable", "cannot store the webhook: %s; send it again",
                     hr_store_error(api->env.store));
        return;
    }
    snprintf(r->hook, sizeof r->hook, "%s", src->name);
    r->duplicate = dup;
    r->next = api->hooks_pending;
    api->hooks_pending = r;
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
}

/* A source's receipts, newest first, for finding out why a webhook did not
 * become an event. Another tenant's source is 404, as if it did not exist. */
static void get_hook_receipts(hr_api *api, req *r, const auth *a, char **seg)
{
    const hr_hook_source *src = hook_source(api, seg[3]);
    const char *tenant = src && src->tenant ? src->tenant : "default";
    if (!src || strcmp(tenant, a->tok->tenant)) {
        answer_error(r, 404, "not_found", "no hook source '%s'", seg[3]);
        return;
    }
    static const char *const states[] = {"new", "done", "failed"};
    int state = -1;
    const char *v;
    if ((v = query(r, "state"))) {
        for (int i = 0; i < (int)HR_ARRAY_LEN(states); i++)
            if (!strcmp(v, states[i]))
                state = i;
        if (state < 0) {
            answer_error(r, 400, "invalid_query", "state=%s: use new, done or failed", v);
            return;
        }
    }
    long limit;
    long long before;
    if (!page_args(r, &limit, &before))
        return;
    hr_receipt_row *rows = NULL;
    size_t n = 0;
    if (hr_store_receipts_list(api->env.store, src->name, tenant, state, before,
                               (size_t)limit + 1, &rows, &n) != HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
        return;
    }
    json_t *arr = json_array();
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++) {
        char rcv[32], done[32];
        hr_rfc3339(rows[i].received_ms, rcv, sizeof rcv);
        hr_rfc3339(rows[i].processed_ms, done, sizeof done);
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:I}", "id",
                           (json_int_t)rows[i].id, "message_id", rows[i].message_id, "state",
                           (unsigned)rows[i].state < HR_ARRAY_LEN(states) ? states[rows[i].state]
                                                                         : "unknown",
                           "received", rcv, "processed",
                           rows[i].processed_ms ? json_string(done) : json_null(), "event",
                           rows[i].event_id ? json_string(rows[i].event_id) : json_null(),
                           "error", rows[i].error ? json_string(rows[i].error) : json_null(),
                           "bytes", (json_int_t)rows[i].bytes));
    }
    json_t *next = n > (size_t)limit ? json_sprintf("%lld", rows[shown - 1].id) : json_null();
    hr_receipt_rows_free(rows, n);
    answer_json(r, 200, json_pack("{s:o, s:o}", "receipts", arr, "next_cursor", next));
}

size_t hr_api_receipts(hr_api *api)
{
    if (!api)
        return 0;
    size_t n = api->receipts;
    api->receipts = 0;
    return n;
}

/* ---- webhook subscriptions ---- */

/* The tenant's subscription with this id; 404 for another tenant's. */
static hr_webhook_row *tenant_webhook(hr_api *api, req *r, const auth *a, const char *id)
{
    hr_webhook_row *rows = NULL;
    size_t n = 0;
    if (!hr_webhook_is_id(id) || hr_store_webhooks(api->env.store, id, &rows, &n) != HERALD_OK ||
        n != 1 || strcmp(rows[0].tenant ? rows[0].tenant : "default", a->tok->tenant) ||
        strcmp(rows[0].id, id)) {
        hr_webhook_rows_free(rows, n);
        answer_error(r, 404, "not_found", "no webhook %s", id);
        return NULL;
    }
    return rows;
}

/* Apply the JSON fields of a create or update to w; 0 (answered 422) when one is bad. */
static int webhook_fields(req *r, json_t *o, hr_webhook *w, int creating, int *generated)
{
    const char *bad = NULL;
    json_t *v;
    *generated = 0;
    if ((v = json_object_get(o, "name"))) {
        const char *s = json_string_value(v);
        if (!s || !*s || strlen(s) > 64 || hr_has_ctl(s))
            bad = "name must be 1 to 64 printable characters";
        else
            free(w->name), w->name = hr_strdup(s);
    }
    if (!bad && (v = json_object_get(o, "url"))) {
        const char *s = json_string_value(v);
        hr_url u;
        char why[256];
        if (!s || hr_has_ctl(s) || hr_url_split(s, &u, why, sizeof why) != HERALD_OK) {
            bad = "url must be an http:// or https:// URL";
        } else {
            if (strcmp(u.scheme, "http") && strcmp(u.scheme, "https"))
                bad = "url must be an http:// or https:// URL";
            hr_url_free(&u);
            if (!bad) {
                free(w->url), w->url = hr_strdup(s);
                hr_secret_add(s);
            }
        }
    }
    if (!bad && (v = json_object_get(o, "events"))) {
        hr_buf b = {0};
        if (json_is_string(v)) {
            hr_buf_adds(&b, json_string_value(v));
        } else if (json_is_array(v)) {
            size_t i;
            json_t *g;
            json_array_foreach(v, i, g) hr_buf_addf(&b, "%s%s", i ? "," : "",
                                                    json_is_string(g) ? json_string_value(g) : "!");
        }
        hr_buf_add(&b, "", 1);
        if (!b.data || !hr_webhook_globs_ok(b.data)) {
            bad = "events must be event types with * wildcards, e.g. [\"vm.*\"]";
            hr_buf_free(&b);
        } else {
            free(w->events), w->events = b.data;
        }
    }
    if (!bad && (v = json_object_get(o, "signature"))) {
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "standard") && strcmp(s, "github") && strcmp(s, "both") &&
                   strcmp(s, "none")))
            bad = "signature must be standard, github, both or none";
        else
            free(w->signature), w->signature = hr_strdup(s);
    }
    if (!bad && (v = json_object_get(o, "timeout_s"))) {
        json_int_t t = json_integer_value(v);
        if (!json_is_integer(v) || t < 1 || t > 300)
            bad = "timeout_s must be 1 to 300";
        else
            w->timeout_ms = (long long)t * 1000;
    }
    if (!bad && (v = json_object_get(o, "max_attempts"))) {
        json_int_t t = json_integer_value(v);
        if (!json_is_integer(v) || t < 1 || t > 100)
            bad = "max_attempts must be 1 to 100";
        else
            w->max_attempts = (int)t;
    }
    if (!bad && (v = json_object_get(o, "max_payload"))) {
        json_int_t t = json_integer_value(v);
        if (!json_is_integer(v) || t < 1024 || t > 64LL * 1024 * 1024)
            bad = "max_payload must be 1024 to 67108864 bytes";
        else
            w->payload_max = t;
    }
    if (!bad && (v = json_object_get(o, "headers"))) {
        const char *k;
        json_t *hv;
        if (!json_is_object(v))
            bad = "headers must be an object of strings";
        for (size_t i = 0; !bad && i < w->nheaders; i++) {
            free(w->headers[i].name);
            hr_secretbox_free_value(w->headers[i].value);
        }
        if (!bad) {
            free(w->headers);
            w->headers = hr_calloc(json_object_size(v) + 1, sizeof *w->headers);
            w->nheaders = 0;
        }
        if (!bad)
            json_object_foreach(v, k, hv)
            {
                const char *s = json_string_value(hv);
                if (!s || hr_has_ctl(s) || hr_has_ctl(k) || !*k || strpbrk(k, " :")) {
                    bad = "headers must map header names to values without control characters";
                    break;
                }
                w->headers[w->nheaders].name = hr_strdup(k);
                w->headers[w->nheaders++].value = hr_strdup(s);
                hr_secret_add(s);
            }
    }
    if (!bad && (v = json_object_get(o, "secret"))) {
        const char *s = json_string_value(v);
        unsigned char key[HR_WHSEC_MAX_BYTES];
        size_t keylen = sizeof key;
        if (s && !strcmp(s, "auto")) {
            hr_secretbox_free_value(w->secret);
            w->secret = hr_whsec_generate();
            *generated = 1;
        } else if (!s || hr_whsec_decode(s, key, &keylen) != 0) {
            bad = "secret must be \"auto\" or whsec_ + base64 of 24 to 64 bytes";
        } else {
            hr_secretbox_free_value(w->secret);
            w->secret = hr_strdup(s);
        }
    }
    if (!bad && creating && (!w->name || !w->url || !w->events))
        bad = "a webhook needs name, url and events";
    if (!bad && !w->signature)
        w->signature = hr_strdup("standard");
    if (!bad && creating && !w->secret && strcmp(w->signature, "none")) {
        w->secret = hr_whsec_generate();
        *generated = 1;
    }
    if (w->secret)
        hr_secret_add(w->secret);
    if (bad)
        answer_error(r, 422, "invalid_webhook", "%s", bad);
    return !bad;
}

static void save_webhook(hr_api *api, req *r, hr_webhook *w, int create, int status,
                         int generated)
{
    char err[1024];
    herald_status st = hr_webhook_save(api->env.store, *api->env.cfg, w, create, err, sizeof err);
    if (st == HERALD_E_INVALID) {
        answer_error(r, 409, "conflict", "%s", err);
        return;
    }
    if (st != HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", err);
        return;
    }
    api->env.changed(api->env.ctx);
    hr_webhook_row *rows = NULL;
    size_t n = 0;
    hr_store_webhooks(api->env.store, w->id, &rows, &n);
    json_t *o = n ? hr_webhook_json(api->env.store, &rows[0]) : json_object();
    hr_webhook_rows_free(rows, n);
    if (generated)
        json_object_set_new(o, "secret", json_string(w->secret)); /* shown once */
    answer_json(r, status, o);
}

static void post_webhooks(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)seg;
    json_t *o;
    if (!json_body(r, &o))
        return;
    hr_webhook w;
    memset(&w, 0, sizeof w);
    w.timeout_ms = 10000;
    w.payload_max = HR_WEBHOOK_PAYLOAD_MAX;
    w.tenant = hr_strdup(a->tok->tenant);
    int generated;
    if (!json_is_object(o))
        answer_error(r, 422, "invalid_webhook", "the body must be a JSON object");
    else if (webhook_fields(r, o, &w, 1, &generated))
        save_webhook(api, r, &w, 1, 201, generated);
    json_decref(o);
    hr_webhook_clear(&w);
}

static void get_webhooks(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)seg;
    hr_webhook_row *rows = NULL;
    size_t n = 0;
    if (hr_store_webhooks(api->env.store, NULL, &rows, &n) != HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].tenant ? rows[i].tenant : "default", a->tok->tenant))
            json_array_append_new(arr, hr_webhook_json(api->env.store, &rows[i]));
    hr_webhook_rows_free(rows, n);
    answer_json(r, 200, json_pack("{s:o}", "webhooks", arr));
}

static void get_webhook(hr_api *api, req *r, const auth *a, char **seg)
{
    hr_webhook_row *row = tenant_webhook(api, r, a, seg[3]);
    if (!row)
        return;
    answer_json(r, 200, hr_webhook_json(api->env.store, row));
    hr_webhook_rows_free(row, 1);
}

/* The subscription in clear, for changing it. */
static int open_webhook(hr_api *api, req *r, hr_webhook_row *row, hr_webhook *w)
{
    char err[1024];
    hr_secretbox *box = hr_webhook_box(*api->env.cfg, api->env.store, 0, err, sizeof err);
    herald_status st = box ? hr_webhook_from_row(box, row, w, err, sizeof err) : HERALD_E_AUTH;
    hr_secretbox_close(box);
    if (st != HERALD_OK)
        answer_error(r, 503, "unavailable", "%s", err);
    return st == HERALD_OK;
}

static void patch_webhook(hr_api *api, req *r, const auth *a, char **seg)
{
    json_t *o;
    if (!json_body(r, &o))
        return;
    hr_webhook_row *row = tenant_webhook(api, r, a, seg[3]);
    hr_webhook w;
    int generated;
    if (row && !json_is_object(o))
        answer_error(r, 422, "invalid_webhook", "the body must be a JSON object");
    else if (row && open_webhook(api, r, row, &w)) {
        if (webhook_fields(r, o, &w, 0, &generated))
            save_webhook(api, r, &w, 0, 200, generated);
        hr_webhook_clear(&w);
    }
    hr_webhook_rows_free(row, row ? 1 : 0);
    json_decref(o);
}

static void delete_webhook(hr_api *api, req *r, const auth *a, char **seg)
{
    hr_webhook_row *row = tenant_webhook(api, r, a, seg[3]);
    if (!row)
        return;
    if (hr_store_webhook_remove(api->env.store, row->id) != HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
    } else {
        api->env.changed(api->env.ctx);
        answer(r, 204, hr_strdup(""), "text/plain");
    }
    hr_webhook_rows_free(row, 1);
}

static void get_webhook_deliveries(hr_api *api, req *r, const auth *a, char **seg)
{
    hr_webhook_row *row = tenant_webhook(api, r, a, seg[3]);
    if (!row)
        return;
    hr_log_filter f = {.state = -1, .channel = row->id, .tenant = a->tok->tenant, .limit = 100};
    hr_delivery_row *rows = NULL;
    size_t n = 0;
    hr_store_log(api->env.store, &f, &rows, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        hr_attempt_row *at = NULL;
        size_t nat = 0;
        hr_store_attempts(api->env.store, rows[i].id, &at, &nat);
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:s, s:i, s:I, s:I, s:s}", "id", (json_int_t)rows[i].id,
                           "event", rows[i].event_id, "type", rows[i].event_type, "state",
                           hr_dstate_name(rows[i].state), "attempts", rows[i].attempts, "code",
                           (json_int_t)rows[i].last_code, "latency_ms",
                           (json_int_t)(nat ? at[nat - 1].duration_ms : 0), "response",
                           nat && at[nat - 1].excerpt ? at[nat - 1].excerpt : ""));
        hr_attempt_rows_free(at, nat);
    }
    hr_delivery_rows_free(rows, n);
    hr_webhook_rows_free(row, 1);
    answer_json(r, 200, json_pack("{s:o}", "deliveries", arr));
}

static void post_webhook_test(hr_api *api, req *r, const auth *a, char **seg)
{
    hr_webhook_row *row = tenant_webhook(api, r, a, seg[3]);
    if (!row)
        return;
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = hr_strdup("herald.test");
    ev.title = hr_strdup("herald webhook test");
    ev.body = hr_strdup("This is a test delivery from herald.");
    ev.source = hr_strdup("herald");
    ev.severity = HERALD_SEVERITY_INFO;
    char *names[] = {row->id, NULL};
    submit(api, r, a, &ev, names, 1, 0);
    hr_webhook_rows_free(row, 1);
}

static void post_webhook_rotate(hr_api *api, req *r, const auth *a, char **seg)
{
    long long grace_ms = 24LL * 3600 * 1000;
    const char *g = query(r, "grace");
    if (g && (hr_parse_duration(g, &grace_ms) != HERALD_OK || grace_ms > 30LL * 86400 * 1000)) {
        answer_error(r, 400, "invalid_query", "grace=%s: use a duration up to 30d, e.g. 24h", g);
        return;
    }
    hr_webhook_row *row = tenant_webhook(api, r, a, seg[3]);
    hr_webhook w;
    if (!row || !open_webhook(api, r, row, &w)) {
        hr_webhook_rows_free(row, row ? 1 : 0);
        return;
    }
    hr_webhook_rows_free(row, 1);
    if (!strcmp(w.signature, "none")) {
        answer_error(r, 409, "conflict", "webhook %s signs nothing (signature none)", w.id);
        hr_webhook_clear(&w);
        return;
    }
    hr_secretbox_free_value(w.old_secret);
    w.old_secret = w.secret;
    w.old_until_ms = hr_now_ms() + grace_ms;
    w.secret = hr_whsec_generate();
    hr_secret_add(w.secret);
    char err[1024];
    if (hr_webhook_save(api->env.store, *api->env.cfg, &w, 0, err, sizeof err) != HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", err);
    } else {
        api->env.changed(api->env.ctx);
        char until[32];
        hr_rfc3339(w.old_until_ms, until, sizeof until);
        answer_json(r, 200, json_pack("{s:s, s:s, s:s}", "id", w.id, "secret", w.secret,
                                      "old_secret_valid_until", until));
    }
    hr_webhook_clear(&w);
}

/* ---- statistics ---- */

static json_t *stats_group_json(const hr_tstats_group *g)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:f, s:I, s:f, s:f}", "processed",
                          (json_int_t)g->processed, "sent", (json_int_t)g->sent, "failed",
                          (json_int_t)g->failed, "success_rate", g->success_rate, "attempts",
                          (json_int_t)g->attempts, "mean_ms", g->mean_ms, "p95_ms", g->p95_ms);
    return o;
}

static json_t *stats_groups_json(const hr_tstats_group *v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, v[i].key, stats_group_json(&v[i]));
    return o;
}

static void get_stats(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)seg;
    long long since = 24LL * 3600 * 1000;
    const char *v = query(r, "since");
    if (v && (hr_parse_duration(v, &since) != HERALD_OK || since <= 0)) {
        answer_error(r, 400, "invalid_query", "since=%s: use a duration such as 1h or 7d", v);
        return;
    }
    long long now = hr_now_ms();
    hr_tenant_stats t;
    if (hr_store_tenant_stats(api->env.store, a->tok->tenant, now - since, &t) != HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
        return;
    }
    char ts[32];
    hr_rfc3339(now - since, ts, sizeof ts);
    json_t *o = stats_group_json(&t.total);
    json_object_set_new(o, "since", json_string(ts));
    json_object_set_new(o, "by_type", stats_groups_json(t.by_type, t.ntype));
    json_object_set_new(o, "by_channel", stats_groups_json(t.by_channel, t.nchannel));
    json_object_set_new(o, "by_source", stats_groups_json(t.by_source, t.nsource));
    hr_tenant_stats_clear(&t);
    answer_json(r, 200, o);
}

/* ---- users and their preferences ----
 *
 * Users belong to a tenant: a token sees and changes only its own tenant's
 * (the default tenant's are the config's and the CLI's); the same name in
 * another tenant is another person, and to a token every other tenant's user
 * is 404, as if it did not exist. The scope is admin, or user:NAME for that
 * person's own, within the token's tenant. */

/* The token's tenant's directory as it is in the config and the store now
 * (not as routing last loaded it). */
static hr_directory *directory_now(hr_api *api, req *r, const char *tenant)
{
    hr_directory *d = NULL;
    char err[1024];
    if (hr_directory_load(&d, *api->env.cfg, api->env.store, tenant, err, sizeof err) !=
        HERALD_OK) {
        answer_error(r, 503, "unavailable", "%s", err);
        return NULL;
    }
    return d;
}

static json_t *user_out(const hr_directory *d, const hr_user *u)
{
    json_t *full = hr_user_json(u), *groups = json_array();
    for (size_t g = 0; g < d->ngroups; g++)
        for (size_t k = 0; k < d->groups[g].n; k++)
            if (&d->users[d->groups[g].members[k]] == u)
                json_array_append_new(groups, json_string(d->groups[g].name));
    json_t *o = json_pack("{s:O, s:O, s:O, s:o}", "name", json_object_get(full, "name"), "origin",
                          json_object_get(full, "origin"), "addresses",
                          json_object_get(full, "addresses"), "groups", groups);
    json_decref(full);
    return o;
}

/* Store changes, checked before any is made. */
typedef struct pref_op {
    char *kind, *key, *value; /* value NULL: remove the run-time value */
} pref_op;

typedef struct pref_ops {
    const char *user;
    pref_op *v;
    size_t n, cap;
} pref_ops;

static void ops_add(pref_ops *o, const char *kind, const char *key, const char *value)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 8;
        o->v = hr_realloc(o->v, o->cap * sizeof *o->v);
    }
    pref_op *p = &o->v[o->n++];
    p->kind = hr_strdup(kind);
    p->key = hr_strdup(key);
    p->value = value ? hr_strdup(value) : NULL;
}

static void ops_free(pref_ops *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].kind);
        free(o->v[i].key);
        free(o->v[i].value);
    }
    free(o->v);
    memset(o, 0, sizeof *o);
}

/* The run-time preferences of o->user, as removals. */
static void runtime_row(void *ctx, const char *what, const char *a, const char *b, const char *c,
                        const char *d)
{
    (void)d;
    pref_ops *o = ctx;
    if (!strcmp(what, "pref") && a && b && c && !strcmp(a, o->user))
        ops_add(o, b, c, NULL);
}

static int runtime_prefs(hr_api *api, req *r, const char *tenant, const char *user,
                         pref_ops *out)
{
    memset(out, 0, sizeof *out);
    out->user = user;
    if (hr_store_directory_each(api->env.store, tenant, runtime_row, out) != HERALD_OK) {
        ops_free(out);
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
        return 0;
    }
    return 1;
}

/* Apply: first the removals of the existing run-time values of `kinds`
 * (comma-separated, between commas: ",rule,quiet,"), then the changes in
 * order. Answers 503 and returns 0 when the store fails. */
static int apply_ops(hr_api *api, req *r, const char *tenant, const char *user,
                     const pref_ops *existing, const char *kinds, const pref_ops *ops)
{
    char err[1024];
    if (!api->env.begin(api->env.ctx)) {
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
        return 0;
    }
    for (size_t i = 0; existing && i < existing->n; i++) {
        char k[32];
        snprintf(k, sizeof k, ",%s,", existing->v[i].kind);
        if (strstr(kinds, k) &&
            hr_store_pref_put(api->env.store, tenant, user, existing->v[i].kind,
                              existing->v[i].key, NULL) != HERALD_OK) {
            answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
            return 0;
        }
    }
    for (size_t i = 0; i < ops->n; i++) {
        const pref_op *p = &ops->v[i];
        herald_status st =
            !strcmp(p->kind, "addr")
                ? hr_user_address_put(api->env.store, *api->env.cfg, tenant, user, p->key,
                                      p->value, err, sizeof err)
                : hr_store_pref_put(api->env.store, tenant, user, p->kind, p->key, p->value);
        if (st != HERALD_OK) {
            answer_error(r, 503, "unavailable", "%s",
                         strcmp(p->kind, "addr") ? hr_store_error(api->env.store) : err);
            return 0;
        }
    }
    api->env.changed(api->env.ctx);
    return 1;
}

/* Members of a body other than the allowed ones (comma-separated): 422. */
static int only_members(req *r, json_t *o, const char *allowed, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        char want[80];
        snprintf(want, sizeof want, ",%s,", k);
        if (strlen(k) > 60 || !strstr(allowed, want)) {
            answer_error(r, 422, what, "unknown member '%.60s'", k);
            return 0;
        }
    }
    return 1;
}

static int by_user_name(const void *x, const void *y)
{
    return strcmp((*(const hr_user *const *)x)->name, (*(const hr_user *const *)y)->name);
}

static void get_users(hr_api *api, req *r, const auth *a, char **seg)
{
    (void)seg;
    hr_directory *d = directory_now(api, r, a->tok->tenant);
    if (!d)
        return;
    const hr_user **v = hr_calloc(d->nusers + 1, sizeof *v);
    for (size_t i = 0; i < d->nusers; i++)
        v[i] = &d->users[i];
    qsort(v, d->nusers, sizeof *v, by_user_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < d->nusers; i++)
        json_array_append_new(arr, user_out(d, v[i]));
    free(v);
    hr_directory_free(d);
    answer_json(r, 200, json_pack("{s:o}", "users", arr));
}

/* GET a user of the token's tenant: with groups (the user) or without. */
static void show_user(hr_api *api, req *r, const auth *a, const char *name, int with_groups)
{
    hr_directory *d = directory_now(api, r, a->tok->tenant);
    if (!d)
        return;
    hr_user *u = hr_directory_user(d, name);
    if (u)
        answer_json(r, 200, with_groups ? user_out(d, u) : hr_user_json(u));
    else
        answer_error(r, 404, "not_found", "no user %s", name);
    hr_directory_free(d);
}

static void get_user(hr_api *api, req *r, const auth *a, char **seg)
{
    show_user(api, r, a, seg[3], 1);
}

typedef struct group_rows {
    const char *user;
    json_t *groups; /* the user's run-time groups: name -> true */
} group_rows;

static void collect_groups(void *ctx, const char *what, const char *a, const char *b,
                           const char *c, const char *d)
{
    (void)c;
    (void)d;
    group_rows *g = ctx;
    if (!strcmp(what, "group") && b && !strcmp(b, g->user))
        json_object_set_new(g->groups, a, json_true());
}

/* PUT's "groups": the user's run-time group memberships become these (those
 * the configuration declares stay). 1, or 0 when answered with an error. */
static int put_groups(hr_api *api, req *r, const char *tenant, const char *user, json_t *want)
{
    group_rows g = {user, json_object()};
    int ok = hr_store_directory_each(api->env.store, tenant, collect_groups, &g) == HERALD_OK;
    size_t i;
    json_t *v;
    const char *k;
    void *tmp;
    json_array_foreach(want, i, v)
    {
        int changed;
        if (ok && !json_object_get(g.groups, json_string_value(v)))
            ok = hr_store_group_member(api->env.store, tenant, json_string_value(v), user, 1,
                                       &changed) == HERALD_OK;
    }
    json_object_foreach_safe(g.groups, tmp, k, v)
    {
        int changed, kept = 0;
        json_t *w;
        json_array_foreach(want, i, w) kept |= !strcmp(json_string_value(w), k);
        if (ok && !kept)
            ok = hr_store_group_member(api->env.store, tenant, k, user, 0, &changed) == HERALD_OK;
    }
    json_decref(g.groups);
    if (!ok)
        answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
    else
        api->env.changed(api->env.ctx);
    return ok;
}

static void put_user(hr_api *api, req *r, const auth *a, char **seg)
{
    const char *name = seg[3], *tenant = a->tok->tenant;
    json_t *o;
    if (!json_body(r, &o))
        return;
    pref_ops ops = {0}, existing = {0};
    hr_directory *d = NULL;
    char err[1024];
    json_t *addrs = json_object_get(o, "addresses"), *v;
    const char *k;
    int ok = 0;
    if (!json_is_object(o) || !json_is_object(addrs)) {
        answer_error(r, 422, "invalid_user", "the body must be {\"addresses\": {KEY: VALUE}}");
        goto out;
    }
    if (!only_members(r, o, ",name,origin,addresses,groups,", "invalid_user"))
        goto out;
    if (json_object_get(o, "name") && (!json_is_string(json_object_get(o, "name")) ||
                                       strcmp(json_string_value(json_object_get(o, "name")), name))) {
        answer_error(r, 422, "invalid_user", "name is %s in the path", name);
        goto out;
    }
    json_t *groups = json_object_get(o, "groups");
    size_t gi;
    json_array_foreach(groups, gi, v)
    {
        if (!json_is_string(v) || !hr_user_name_ok(json_string_value(v))) {
            answer_error(r, 422, "invalid_user", "groups must be a list of group names (letters, "
                         "digits, '-', '_' or '.')");
            goto out;
        }
    }
    if (groups && !json_is_array(groups)) {
        answer_error(r, 422, "invalid_user", "groups must be a list of group names");
        goto out;
    }
    json_object_foreach(addrs, k, v)
    {
        const char *s = json_string_value(v);
        if ((!s && !json_is_null(v)) || hr_user_address_check(k, s, err, sizeof err) != HERALD_OK) {
            answer_error(r, 422, "invalid_user", "%s", s || json_is_null(v) ? err :
                         "addresses must map names to strings (null removes one)");
            goto out;
        }
        ops_add(&ops, "addr", k, s);
    }
    if (!(d = directory_now(api, r, tenant)))
        goto out;
    hr_user *u = hr_directory_user(d, name);
    int created = 0;
    if (!u) {
        if (!hr_user_name_ok(name)) {
            answer_error(r, 422, "invalid_user", "user name '%.70s': use letters, digits, '-', "
                         "'_' or '.' (at most 64)", name);
            goto out;
        }
        if (hr_config_channel(*api->env.cfg, name)) {
            answer_error(r, 409, "conflict", "'%s' is a channel's name; routes could not tell "
                         "them apart, pick another", name);
            goto out;
        }
        int existed;
        if (!api->env.begin(api->env.ctx) ||
            hr_store_user_add(api->env.store, tenant, name, &existed) != HERALD_OK) {
            answer_error(r, 503, "unavailable", "%s", hr_store_error(api->env.store));
            goto out;
        }
        created = 1;
    }
    /* PUT replaces the run-time addresses: those not given are removed. */
    if (!runtime_prefs(api, r, tenant, name, &existing) ||
        !apply_ops(api, r, tenant, name, &existing, ",addr,", &ops) ||
        (groups && !put_groups(api, r, tenant, name, groups)))
        goto out;
    ok = created ? 201 : 200;
out:
    if (ok) {
        hr_directory_free(d);
        d = directory_now(api, r, tenant);
        hr_user *nu = d ? hr_directory_user(d, name) : NULL;
        if (nu)
            answer_json(r, ok, user_out(d, nu));
        else if (d)
            answer_error(r, 503, "unavailable", "user %s was stored but cannot be read back", name);
    }
    hr_directory_free(d);
    ops_free(&ops);
    ops_free(&existing);
    json_decref(o);
}

static void get_prefs(hr_api *api, req *r, const auth *a, char **seg)
{
    show_user(api, r, a, seg[3], 0);
}

/* The preference changes of a PUT or PATCH body, checked; 0 (answered 422) when one is bad. */
static int prefs_ops(hr_api *api, req *r, json_t *o, pref_ops *ops)
{
    char err[1024];
    json_t *v;
    const char *k;
    hr_config *cfg = *api->env.cfg;
    if (!only_members(r, o, ",name,origin,addresses,min_severity,channels,rules,quiet,",
                      "invalid_preferences"))
        return 0;
    if ((v = json_object_get(o, "min_severity"))) {
        const char *s = json_string_value(v);
        if (!s && !json_is_null(v)) {
            answer_error(r, 422, "invalid_preferences", "min_severity must be a severity, "
                         "\"none\" or null");
            return 0;
        }
        if (s && hr_pref_severity_check(s, 1, err, sizeof err) != HERALD_OK) {
            answer_error(r, 422, "invalid_preferences", "min_severity: %s", err);
            return 0;
        }
        ops_add(ops, "default", "min_severity", s);
    }
    if ((v = json_object_get(o, "channels"))) {
        json_t *on;
        if (!json_is_object(v)) {
            answer_error(r, 422, "invalid_preferences", "channels must map channel names to "
                         "true, false or null");
            return 0;
        }
        json_object_foreach(v, k, on)
        {
            if (!json_is_boolean(on) && !json_is_null(on)) {
                answer_error(r, 422, "invalid_preferences", "channels.%.60s must be true, false "
                             "or null", k);
                return 0;
            }
            if (hr_pref_channel_check(cfg, k, 0, err, sizeof err) != HERALD_OK) {
                answer_error(r, 422, "invalid_preferences", "channels: %s", err);
                return 0;
            }
            ops_add(ops, "channel", k, json_is_null(on) ? NULL : json_is_true(on) ? "on" : "off");
        }
    }
    if ((v = json_object_get(o, "rules"))) {
        size_t i;
        json_t *rule;
        if (!json_is_array(v)) {
            answer_error(r, 422, "invalid_preferences", "rules must be an array");
            return 0;
        }
        json_array_foreach(v, i, rule)
        {
            json_t *ev = json_object_get(rule, "events"), *ch = json_object_get(rule, "channel"),
                   *on = json_object_get(rule, "on"), *ms = json_object_get(rule, "min_severity");
            if (!json_is_object(rule) || !json_is_string(ev) || !json_is_string(ch) ||
                !json_is_boolean(on) || (ms && !json_is_string(ms) && !json_is_null(ms))) {
                answer_error(r, 422, "invalid_preferences", "rules[%zu] must be {events, channel, "
                             "on: true|false, min_severity?}", i);
                return 0;
            }
            char value[32], *key;
            if (hr_pref_rule_make(cfg, json_string_value(ev), json_string_value(ch),
                                  json_is_true(on), json_string_value(ms), &key, value, err,
                                  sizeof err) != HERALD_OK) {
                answer_error(r, 422, "invalid_preferences", "rules[%zu]: %s", i, err);
                return 0;
            }
            ops_add(ops, "rule", key, value);
            free(key);
        }
    }
    if ((v = json_object_get(o, "quiet"))) {
        char *value = NULL;
        if (json_is_string(v) && !strcmp(json_string_value(v), "off")) {
            value = hr_strdup("off");
        } else if (json_is_object(v)) {
            json_t *h = json_object_get(v, "hours"), *tz = json_object_get(v, "tz"),
                   *act = json_object_get(v, "action");
            if (!json_is_string(h) || (tz && !json_is_string(tz)) ||
                (act && !json_is_string(act)) ||
                hr_pref_quiet_make(json_string_value(h), json_string_value(tz),
                                   json_string_value(act), &value, err, sizeof err) != HERALD_OK) {
                answer_error(r, 422, "invalid_preferences", "quiet: %s",
                             json_is_string(h) && (!tz || json_is_string(tz)) &&
                                     (!act || json_is_string(act))
                                 ? err
                                 : "use {hours: \"HH:MM-HH:MM\", tz, action: defer|drop}");
                return 0;
            }
        } else if (!json_is_null(v)) {
            answer_error(r, 422, "invalid_preferences", "quiet must be {hours, tz, action}, "
                         "\"off\" or null");
            return 0;
        }
        ops_add(ops, "quiet", "quiet", value);
        free(value);
    }
    return 1;
}

static void change_prefs(hr_api *api, req *r, const auth *a, char **seg, int replace)
{
    const char *name = seg[3], *tenant = a->tok->tenant;
    json_t *o;
    if (!json_body(r, &o))
        return;
    pref_ops ops = {0}, existing = {0};
    hr_directory *d = NULL;
    int ok = 0;
    if (!json_is_object(o)) {
        answer_error(r, 422, "invalid_preferences", "the body must be a JSON object");
        goto out;
    }
    if (!(d = directory_now(api, r, tenant)))
        goto out;
    if (!hr_directory_user(d, name)) {
        answer_error(r, 404, "not_found", "no user %s", name);
        goto out;
    }
    if (!prefs_ops(api, r, o, &ops) || !runtime_prefs(api, r, tenant, name, &existing))
        goto out;
    /* PUT: every run-time preference goes, then the given ones are set; PATCH:
     * only the given keys change, and given rules replace the run-time rules. */
    const char *kinds = replace ? ",default,channel,rule,quiet,"
                        : json_object_get(o, "rules") ? ",rule,"
                                                      : ",";
    ok = apply_ops(api, r, tenant, name, &existing, kinds, &ops);
out:
    if (ok) {
        hr_directory_free(d);
        d = directory_now(api, r, tenant);
        hr_user *u = d ? hr_directory_user(d, name) : NULL;
        if (u)
            answer_json(r, 200, hr_user_json(u));
        else if (d)
            answer_error(r, 503, "unavailable", "the preferences were stored but cannot be read "
                         "back");
    }
    hr_directory_free(d);
    ops_free(&ops);
    ops_free(&existing);
    json_decref(o);
}

static void put_prefs(hr_api *api, req *r, const auth *a, char **seg)
{
    change_prefs(api, r, a, seg, 1);
}

static void patch_prefs(hr_api *api, req *r, const auth *a, char **seg)
{
    change_prefs(api, r, a, seg, 0);
}

typedef struct route {
    const char *method;
    const char *path; /* segments; "{}" matches one */
    const char *scope; /* NULL: no token needed */
    handler_fn fn;
} route;

static const route routes[] = {
    {"POST", "/v1/events", "submit", post_events},
    {"GET", "/v1/events/{id}", "read", get_event},
    {"GET", "/v1/events/{id}/explain", "read", get_explain},
    {"GET", "/v1/deliveries", "read", get_deliveries},
    {"POST", "/v1/deliveries/{id}/retry", "admin", post_retry},
    {"GET", "/v1/channels", "read", get_channels},
    {"POST", "/v1/channels/{name}/test", "admin", post_channel_test},
    {"POST", "/v1/webhooks", "admin", post_webhooks},
    {"GET", "/v1/webhooks", "read", get_webhooks},
    {"GET", "/v1/webhooks/{id}", "read", get_webhook},
    {"PATCH", "/v1/webhooks/{id}", "admin", patch_webhook},
    {"DELETE", "/v1/webhooks/{id}", "admin", delete_webhook},
    {"GET", "/v1/webhooks/{id}/deliveries", "read", get_webhook_deliveries},
    {"POST", "/v1/webhooks/{id}/test", "admin", post_webhook_test},
    {"POST", "/v1/webhooks/{id}/rotate-secret", "admin", post_webhook_rotate},
    {"GET", "/v1/stats", "read", get_stats},
    {"GET", "/v1/users", "admin", get_users},
    /* scope "user": admin, or user:NAME for /v1/users/NAME... */
    {"GET", "/v1/users/{name}", "user", get_user},
    {"PUT", "/v1/users/{name}", "user", put_user},
    {"GET", "/v1/users/{name}/preferences", "user", get_prefs},
    {"PUT", "/v1/users/{name}/preferences", "user", put_prefs},
    {"PATCH", "/v1/users/{name}/preferences", "user", patch_prefs},
    /* No token: the source's signature or shared token is the credential. */
    {"POST", "/v1/hooks/{source}", NULL, post_hook},
    {"GET", "/v1/hooks/{source}/receipts", "read", get_hook_receipts},
    {"GET", "/v1/openapi.json", NULL, get_openapi},
    {"GET", "/healthz", NULL, get_healthz},
    {"GET", "/readyz", NULL, get_readyz},
    {"GET", "/metrics", "read", get_metrics},
};

void hr_api_print_routes(FILE *out)
{
    for (size_t i = 0; i < HR_ARRAY_LEN(routes); i++)
        fprintf(out, "%s %s\n", routes[i].method, routes[i].path);
}

/* Split a path into at most 8 segments (seg[0] is "", as the path starts with '/'). */
static int split(char *path, char **seg)
{
    int n = 0;
    for (char *p = path; p && n < 8;) {
        seg[n++] = p;
        p = strchr(p, '/');
        if (p)
            *p++ = '\0';
    }
    return n;
}

static int matches(const char *pattern, char **seg, int nseg)
{
    char *copy = hr_strdup(pattern), *ps[8];
    int np = split(copy, ps), ok = np == nseg;
    for (int i = 0; ok && i < np; i++)
        ok = (ps[i][0] == '{') ? seg[i][0] != '\0' : strcmp(ps[i], seg[i]) == 0;
    free(copy);
    return ok;
}

static void dispatch(hr_api *api, req *r, const char *url, const char *method)
{
    char path[512];
    if (strlen(url) >= sizeof path) {
        answer_error(r, 414, "uri_too_long", "the path is too long");
        return;
    }
    snprintf(path, sizeof path, "%s", url);
    char *seg[8];
    int nseg = split(path, seg);
    const route *rt = NULL;
    int path_known = 0;
    for (size_t i = 0; i < HR_ARRAY_LEN(routes) && !rt; i++) {
        if (!matches(routes[i].path, seg, nseg))
            continue;
        path_known = 1;
        if (!strcmp(routes[i].method, method))
            rt = &routes[i];
        size_t used = strlen(r->allow);
        snprintf(r->allow + used, sizeof r->allow - used, "%s%s", used ? ", " : "",
                 routes[i].method);
    }
    if (rt)
        r->allow[0] = '\0';
    if (!rt) {
        if (path_known)
            answer_error(r, 405, "method_not_allowed", "%s is not allowed on %s", method, url);
        else
            answer_error(r, 404, "not_found", "no such endpoint: %s %s (see /v1/openapi.json)",
                         method, url);
        return;
    }
    char addr[64];
    client_address(r->conn, addr, sizeof addr);
    long long now = hr_now_ms();
    char key[80];
    snprintf(key, sizeof key, "a:%s", addr);
    if (!rate_take(api, key, now)) {
        snprintf(r->retry_after, sizeof r->retry_after, "1");
        answer_error(r, 429, "rate_limited", "too many requests from %s; retry after 1 s", addr);
        return;
    }
    auth a = {0};
    if (rt->scope && !(rt->fn == get_metrics && api->metrics_public)) {
        tokens_refresh(api);
        a.tok = token_of(api, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                          "Authorization"));
        if (!a.tok) {
            answer_error(r, 401, "unauthorized", "send Authorization: Bearer hrd_...; herald "
                         "token create makes one");
            return;
        }
        snprintf(key, sizeof key, "t:%s", a.tok->id);
        if (!rate_take(api, key, now)) {
            snprintf(r->retry_after, sizeof r->retry_after, "1");
            answer_error(r, 429, "rate_limited", "token %s is over %d requests/s; retry after "
                         "1 s", a.tok->name, api->rate);
            return;
        }
        char own[80];
        snprintf(own, sizeof own, "user:%s", !strcmp(rt->scope, "user") ? seg[3] : "");
        if (!strcmp(rt->scope, "user") ? !has_scope(a.tok, own) : !has_scope(a.tok, rt->scope)) {
            answer_error(r, 403, "forbidden", "token %s lacks the %s scope for %s %s",
                         a.tok->name, !strcmp(rt->scope, "user") ? "admin (or that user's own "
                         "user:NAME)" : rt->scope, method, rt->path);
            return;
        }
    }
    static const hr_token_row anon = {.id = "", .tenant = (char *)"default",
                                      .scopes = (char *)""};
    if (!a.tok)
        a.tok = &anon;
    rt->fn(api, r, &a, seg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    hr_api *api = cls;
    req *r = *con_cls;
    if (!r) {
        r = hr_calloc(1, sizeof *r);
        r->conn = conn;
        r->api = api;
        *con_cls = r;
        r->max_body = api->max_body;
        const hr_hook_source *src = !strncmp(url, "/v1/hooks/", 10) && !strcmp(method, "POST")
                                        ? hook_source(api, url + 10)
                                        : NULL;
        if (src) {
            r->max_body = src->max_body;
            snprintf(r->hook, sizeof r->hook, "%s", src->name);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > r->max_body)
            r->too_large = 1;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->body.len + *upload_data_size > r->max_body)
            r->too_large = 1;
        else
            hr_buf_add(&r->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->suspended)
        return MHD_YES; /* resumed spuriously: not answered yet */
    if (r->resp || r->status)
        return send_answer(r); /* after resume */
    if (r->too_large && r->hook[0])
        answer_error(r, 413, "too_large", "the body is over %zu bytes; shorten it or raise "
                     "hooks.%s.max_body", r->max_body, r->hook);
    else if (r->too_large)
        answer_error(r, 413, "too_large", "the body is over %zu bytes; shorten it or raise "
                     "http.max_body", r->max_body);
    else
        dispatch(api, r, url, method);
    if (r->suspended)
        return MHD_YES;
    return send_answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    req *r = *con_cls;
    if (!r)
        return;
    hr_buf_free(&r->body);
    free(r->resp);
    free(r);
    *con_cls = NULL;
}

static void resume_with(req *r)
{
    r->suspended = 0;
    r->api->resumed = 1;
    MHD_resume_connection(r->conn);
}

void hr_api_after_commit(hr_api *api, int committed)
{
    if (!api)
        return;
    long long now = hr_now_ms();
    for (req *r = api->pending, *next; r; r = next) {
        next = r->next;
        if (committed && api->env.metrics)
            hr_metrics_events(api->env.metrics, r->tenant, "http", !r->duplicate, r->duplicate);
        if (!committed) {
            answer_error(r, 503, "unavailable", "the event could not be stored: %s; nothing was "
                         "kept, submit again", hr_store_error(api->env.store));
            resume_with(r);
        } else if (r->wait_ms > 0) {
            r->wait_until = now + r->wait_ms;
            r->next = api->waiting;
            api->waiting = r;
        } else {
            answer_json(r, 202, json_pack("{s:s, s:b}", "id", r->event_id, "duplicate",
                                          r->duplicate));
            resume_with(r);
        }
    }
    api->pending = NULL;
    for (req *r = api->hooks_pending, *next; r; r = next) {
        next = r->next;
        if (!committed) {
            answer_error(r, 503, "unavailable", "the webhook could not be stored: %s; nothing "
                         "was kept, send it again", hr_store_error(api->env.store));
        } else {
            /* A duplicate is acknowledged (200: nothing new) so the sender stops retrying. */
            answer_json(r, r->duplicate ? 200 : 202,
                        json_pack("{s:I, s:s, s:b}", "id", (json_int_t)r->receipt,
                                  "message_id", r->message_id, "duplicate", r->duplicate));
            api->receipts += !r->duplicate;
        }
        resume_with(r);
    }
    api->hooks_pending = NULL;
    req **pp = &api->waiting;
    while (*pp) {
        req *r = *pp;
        int final = 0;
        json_t *ds = api->env.status(api->env.ctx, r->event_id, &final);
        if (final || now >= r->wait_until) {
            *pp = r->next;
            answer_json(r, final ? 200 : 202,
                        json_pack("{s:s, s:b, s:b, s:o}", "id", r->event_id, "duplicate",
                                  r->duplicate, "final", final, "deliveries", ds));
            resume_with(r);
        } else {
            json_decref(ds);
            pp = &r->next;
        }
    }
    /* No MHD_run() here: a request handled now would open a transaction after
     * the round's commit. The resumed connections wake the next poll. */
}

/* ---- start and stop ---- */

hr_api *hr_api_start(const hr_config *cfg, const hr_api_env *env, char *err, size_t errlen)
{
    config_setting_t *http = cfg->cfg ? config_lookup(cfg->cfg, "http") : NULL;
    err[0] = '\0';
    if (!http)
        return NULL;
    const char *where = cfg->path ? cfg->path : "config";
    unsigned line = config_setting_source_line(http);
    const char *listen = "127.0.0.1:8730", *cert = NULL, *key = NULL;
    int plaintext_ok = 0, metrics_public = 0, max_body = DEFAULT_MAX_BODY, rate = DEFAULT_RATE,
        timeout = DEFAULT_TIMEOUT_S;
    config_setting_lookup_string(http, "listen", &listen);
    config_setting_lookup_string(http, "tls_cert", &cert);
    config_setting_lookup_string(http, "tls_key", &key);
    config_setting_lookup_bool(http, "plaintext_ok", &plaintext_ok);
    config_setting_lookup_bool(http, "metrics_public", &metrics_public);
    config_setting_lookup_int(http, "max_body", &max_body);
    config_setting_lookup_int(http, "rate_limit", &rate);
    config_setting_lookup_int(http, "timeout", &timeout);
    char host[128];
    int port = 0;
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host || sscanf(colon + 1, "%d", &port) != 1 ||
        port < 0 || port > 65535) {
        snprintf(err, errlen, "%s:%u: http.listen \"%s\" must be ADDRESS:PORT, e.g. "
                 "127.0.0.1:8730", where, line, listen);
        return NULL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    int v6 = 0, loopback;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        v6 = 1;
        loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
    } else {
        snprintf(err, errlen, "%s:%u: http.listen address \"%s\" is not an IP address", where, line,
                 host);
        return NULL;
    }
    if (!loopback && !(cert && key) && !plaintext_ok) {
        snprintf(err, errlen, "%s:%u: http.listen %s is not loopback: set tls_cert and tls_key, "
                 "or plaintext_ok = true if a proxy in front does TLS", where, line, listen);
        return NULL;
    }
    if ((cert && !key) || (key && !cert)) {
        snprintf(err, errlen, "%s:%u: http needs both tls_cert and tls_key", where, line);
        return NULL;
    }
    if (max_body < 1024 || rate < 1 || timeout < 1) {
        snprintf(err, errlen, "%s:%u: http.max_body must be >= 1024, rate_limit and timeout >= 1",
                 where, line);
        return NULL;
    }
    hr_api *api = hr_calloc(1, sizeof *api);
    api->env = *env;
    api->max_body = (size_t)max_body;
    api->rate = rate;
    api->metrics_public = metrics_public;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (cert) {
        char why[512];
        if (!(api->tls_cert = hr_read_file(cert, 0, 1024 * 1024, why, sizeof why)) ||
            !(api->tls_key = hr_read_file(key, 1, 1024 * 1024, why, sizeof why))) {
            snprintf(err, errlen, "%s:%u: http TLS: %s", where, line, why);
            hr_api_stop(api);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    api->mhd = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout, MHD_OPTION_CONNECTION_LIMIT, 1000u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADERS_MAX, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, api, cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, api->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, api->tls_key, MHD_OPTION_END);
    if (!api->mhd) {
        snprintf(err, errlen, "%s:%u: cannot listen on %s for the HTTP API (in use, or not an "
                 "address of this host)", where, line, listen);
        hr_api_stop(api);
        return NULL;
    }
    const union MHD_DaemonInfo *bi = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_BIND_PORT);
    hr_log(HERALD_LOG_NOTICE, "HTTP API on %s%s%s:%u%s", v6 ? "[" : "", host, v6 ? "]" : "",
           bi ? bi->port : (unsigned)port, cert ? " (TLS)" : "");
    return api;
}

void hr_api_stop(hr_api *api)
{
    if (!api)
        return;
    if (api->mhd) {
        for (req *r = api->pending; r; r = r->next)
            resume_with(r);
        for (req *r = api->waiting; r; r = r->next)
            resume_with(r);
        for (req *r = api->hooks_pending; r; r = r->next)
            resume_with(r);
        MHD_stop_daemon(api->mhd);
    }
    hr_token_rows_free(api->tokens, api->ntokens);
    free(api->tls_cert);
    if (api->tls_key) {
        OPENSSL_cleanse(api->tls_key, strlen(api->tls_key));
        free(api->tls_key);
    }
    free(api);
}

int hr_api_fd(const hr_api *api)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    return i ? i->epoll_fd : -1;
}

long long hr_api_timeout(hr_api *api)
{
    MHD_UNSIGNED_LONG_LONG t;
    /* Resumed connections are only picked up by MHD_run(): libmicrohttpd's
     * epoll descriptor does not turn readable for them, so without this the
     * answers waited for the next wakeup (200 ms when nothing else came). */
    if (api->resumed)
        return 0;
    if (api->waiting)
        return 50;
    return MHD_get_timeout(api->mhd, &t) == MHD_YES ? (long long)t : -1;
}

void hr_api_run(hr_api *api)
{
    api->resumed = 0;
    MHD_run(api->mhd);
}
