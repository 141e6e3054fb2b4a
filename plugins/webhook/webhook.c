/* webhook.c - the generic JSON webhook channel: POSTs the event as JSON to a URL, signed the
 * Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature) and/or GitHub's
 * (X-Hub-Signature-256) when it has a secret (CONTRACTS.md, "Signed webhooks"). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <herald/plugin.h>

#define DEFAULT_TIMEOUT_S 10
#define EXCERPT_MAX 200
#define DEFAULT_MAX_PAYLOAD (256 * 1024)
#define SIG_STANDARD 0x1u
#define SIG_GITHUB 0x2u

/* A signing secret: the whsec_ key decoded for Standard Webhooks, the text as
 * given for GitHub (which signs with the secret's bytes). */
typedef struct secret {
    char *text;
    unsigned char *key;
    size_t keylen;
} secret;

typedef struct webhook {
    const herald_host *host;
    herald_channel *ch;
    char *url;
    char *method;
    char **headers; /* name, value pairs */
    size_t nheaders;
    int has_content_type;
    long long timeout_ms;
    char *ca_file;
    int insecure;
    unsigned sig;         /* SIG_* */
    secret cur, old;      /* old: the previous secret during a rotation's grace */
    long long old_until_ms;
    int envelope;         /* {"type","timestamp","data"} instead of the bare event */
    char *body_template;
    long long max_payload;
} webhook;

static const herald_setting_spec settings[] = {
    {"url", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0,
     "http:// or https:// URL the event is sent to"},
    {"method", HERALD_SETTING_STRING, 0, 0, 0, "POST (default), PUT or PATCH"},
    {"headers", HERALD_SETTING_MAP, 0, 0, 0, "extra request headers, e.g. { X-Token = \"...\"; }"},
    {"timeout", HERALD_SETTING_INT, 0, 1, 300, "seconds before the attempt is abandoned (10)"},
    {"ca_file", HERALD_SETTING_STRING, 0, 0, 0, "PEM file of CAs trusted for this endpoint"},
    {"insecure", HERALD_SETTING_BOOL, 0, 0, 0, "skip TLS verification (never in production)"},
    {"secret", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0,
     "signing secret, whsec_ + base64 (or secret_file)"},
    {"old_secret", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0,
     "previous secret, also signed with until old_secret_until"},
    {"old_secret_until", HERALD_SETTING_INT, 0, 0, 0, "Unix time the previous secret stops"},
    {"signature", HERALD_SETTING_STRING, 0, 0, 0,
     "standard (default with a secret), github, both or none"},
    {"payload", HERALD_SETTING_STRING, 0, 0, 0,
     "event (the event JSON, default) or envelope ({type, timestamp, data})"},
    {"body_template", HERALD_SETTING_STRING, 0, 0, 0,
     "JSON body template (Mustache subset, values JSON-escaped)"},
    {"max_payload", HERALD_SETTING_INT, 0, 64, 64LL * 1024 * 1024,
     "largest body sent, in bytes (262144)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const schemes[] = {"json", "jsons", NULL};

static char *dup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void destroy(void *state)
{
    webhook *w = state;
    if (!w)
        return;
    free(w->url);
    free(w->method);
    for (size_t i = 0; i < 2 * w->nheaders; i++)
        free(w->headers[i]);
    free(w->headers);
    free(w->ca_file);
    free(w->cur.text);
    free(w->cur.key);
    free(w->old.text);
    free(w->old.key);
    free(w->body_template);
    free(w);
}

/* whsec_ + base64 of 24 to 64 bytes (the prefix is optional, as receivers accept). */
static int secret_read(const herald_host *h, const char *text, secret *out)
{
    const char *b64 = strncmp(text, "whsec_", 6) == 0 ? text + 6 : text;
    size_t n = 0;
    unsigned char *key = h->base64_decode(b64, &n);
    if (!key || n < 24 || n > 64) {
        if (key)
            h->free(key);
        return 0;
    }
    out->key = malloc(n);
    out->text = dup(text);
    if (out->key)
        memcpy(out->key, key, n);
    out->keylen = n;
    h->free(key);
    return out->key && out->text;
}

/* Header values that carry credentials are redacted in every log line. */
static int credential_header(const char *name)
{
    static const char *const words[] = {"auth", "token", "key", "secret", "cookie", "signature"};
    char lower[128];
    size_t i;
    for (i = 0; name[i] && i < sizeof lower - 1; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[i] = '\0';
    for (i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(lower, words[i]))
            return 1;
    return 0;
}

static herald_status create(const herald_host *host, herald_channel *ch,
                            const herald_settings *s, void **state, herald_result *res)
{
    webhook *w = calloc(1, sizeof *w);
    if (!w)
        return HERALD_E_NOMEM;
    w->host = host;
    w->ch = ch;
    const char *url = host->setting_string(s, "url");
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG,
                     "url must start with http:// or https://");
        destroy(w);
        return HERALD_E_CONFIG;
    }
    herald_url_parts parts = {.struct_size = sizeof parts};
    if (host->url_split(url, &parts) != HERALD_OK) {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG,
                     "url is malformed; expected http(s)://host[:port]/path");
        destroy(w);
        return HERALD_E_CONFIG;
    }
    if (parts.password)
        host->add_secret(ch, parts.password);
    host->url_free(&parts);

    const char *method = host->setting_string(s, "method");
    if (!method)
        method = "POST";
    if (strcmp(method, "POST") && strcmp(method, "PUT") && strcmp(method, "PATCH")) {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG,
                     "method must be POST, PUT or PATCH, not '%s'", method);
        destroy(w);
        return HERALD_E_CONFIG;
    }
    long long timeout = DEFAULT_TIMEOUT_S;
    host->setting_int(s, "timeout", &timeout);
    w->timeout_ms = timeout * 1000;
    w->url = dup(url);
    w->method = dup(method);
    w->ca_file = dup(host->setting_string(s, "ca_file"));
    host->setting_bool(s, "insecure", &w->insecure);
    if (w->insecure)
        host->log(ch, HERALD_LOG_WARNING, "TLS verification is off (insecure = true)");

    size_t n = host->setting_count(s, "headers");
    w->headers = calloc(2 * n + 1, sizeof *w->headers);
    if (!w->headers || !w->url || !w->method) {
        destroy(w);
        return HERALD_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const char *value = host->setting_item(s, "headers", i, &name);
        w->headers[2 * i] = dup(name);
        w->headers[2 * i + 1] = dup(value);
        w->nheaders++;
        if (!strcasecmp(name, "Content-Type"))
            w->has_content_type = 1;
        if (credential_header(name))
            host->add_secret(ch, value);
    }

    const char *secret_text = host->setting_string(s, "secret");
    const char *sig = host->setting_string(s, "signature");
    if (!sig)
        sig = secret_text ? "standard" : "none";
    w->sig = !strcmp(sig, "standard") ? SIG_STANDARD
             : !strcmp(sig, "github") ? SIG_GITHUB
             : !strcmp(sig, "both")   ? SIG_STANDARD | SIG_GITHUB
                                      : 0;
    const char *why = NULL;
    if (strcmp(sig, "none") && !w->sig)
        why = "signature must be standard, github, both or none";
    else if (w->sig && !secret_text)
        why = "signing needs a secret (whsec_ + base64); set secret or secret_file, or "
              "signature = \"none\"";
    else if (secret_text && w->sig == SIG_GITHUB)
        w->cur.text = dup(secret_text); /* GitHub signs with any secret text */
    else if (secret_text && !secret_read(host, secret_text, &w->cur))
        why = "secret must be whsec_ followed by the base64 of 24 to 64 random bytes; "
              "herald webhook add --secret auto makes one";
    const char *old = host->setting_string(s, "old_secret");
    long long until = 0;
    host->setting_int(s, "old_secret_until", &until);
    if (!why && old && !secret_read(host, old, &w->old))
        why = "old_secret must be whsec_ followed by base64, like secret";
    w->old_until_ms = until * 1000;
    const char *payload = host->setting_string(s, "payload");
    if (!why && payload && strcmp(payload, "event") && strcmp(payload, "envelope"))
        why = "payload must be event or envelope";
    w->envelope = payload && !strcmp(payload, "envelope");
    const char *tmpl = host->setting_string(s, "body_template");
    if (tmpl && !(w->body_template = dup(tmpl))) {
        destroy(w);
        return HERALD_E_NOMEM;
    }
    w->max_payload = DEFAULT_MAX_PAYLOAD;
    host->setting_int(s, "max_payload", &w->max_payload);
    if (why) {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG, "%s", why);
        destroy(w);
        return HERALD_E_CONFIG;
    }
    *state = w;
    return HERALD_OK;
}

static int hexval(int c)
{
    if (isdigit(c))
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode %XX and '+' in place; 0 on a bad escape. */
static int unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%') {
            int hi = hexval((unsigned char)s[1]), lo = hi < 0 ? -1 : hexval((unsigned char)s[2]);
            if (hi < 0 || lo < 0)
                return 0;
            *o++ = (char)(hi * 16 + lo);
            s += 2;
        } else {
            *o++ = *s == '+' ? ' ' : *s;
        }
    }
    *o = '\0';
    return 1;
}

/* json://[user:pass@]host[:port]/path[?method=PUT&+Header=value]  (jsons:// for https).
 * Parameters herald does not know stay in the URL's query. */
static herald_status from_url(const herald_host *host, const char *url,
                              herald_settings_builder *b, herald_result *res)
{
    herald_url_parts u = {.struct_size = sizeof u};
    herald_status st = host->url_split(url, &u);
    if (st != HERALD_OK) {
        host->result(res, HERALD_VERDICT_FAILED, st, "malformed URL; expected json://host/path");
        return st;
    }
    char *query = dup(u.query ? u.query : "");
    size_t cap = strlen(url) + 16;
    char *target = malloc(cap), *kept = calloc(1, cap);
    if (!query || !target || !kept) {
        free(query), free(target), free(kept), host->url_free(&u);
        return HERALD_E_NOMEM;
    }
    for (char *save = NULL, *kv = strtok_r(query, "&", &save); kv && st == HERALD_OK;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (kv[0] == '+' && eq) {
            *eq = '\0';
            char *name = kv + 1, *value = eq + 1;
            if (!unescape(name) || !unescape(value) || !*name) {
                host->result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID,
                             "bad header parameter in URL; use +Name=value");
                st = HERALD_E_INVALID;
            } else {
                st = host->settings_put_item(b, "headers", name, value);
            }
        } else if (eq && !strncmp(kv, "method=", 7)) {
            char *m = eq + 1;
            for (char *p = m; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            st = host->settings_put(b, "method", m);
        } else {
            size_t used = strlen(kept);
            snprintf(kept + used, cap - used, "%s%s", used ? "&" : "", kv);
        }
    }
    if (st == HERALD_OK && u.user) {
        size_t ulen = strlen(u.user), plen = u.password ? strlen(u.password) : 0;
        char *cred = malloc(ulen + plen + 2);
        if (!cred) {
            st = HERALD_E_NOMEM;
        } else {
            snprintf(cred, ulen + plen + 2, "%s:%s", u.user, u.password ? u.password : "");
            char *b64 = host->base64(cred, strlen(cred));
            free(cred);
            char *hv = b64 ? malloc(strlen(b64) + 7) : NULL;
            if (hv) {
                snprintf(hv, strlen(b64) + 7, "Basic %s", b64);
                st = host->settings_put_item(b, "headers", "Authorization", hv);
            } else {
                st = HERALD_E_NOMEM;
            }
            free(hv);
            host->free(b64);
        }
    }
    if (st == HERALD_OK) {
        const char *scheme = strcmp(u.scheme, "jsons") == 0 ? "https" : "http";
        snprintf(target, cap, "%s://%s%s%s%s%s%s", scheme, u.host, u.port ? ":" : "",
                 u.port ? u.port : "", u.path && *u.path ? u.path : "/", *kept ? "?" : "", kept);
        st = host->settings_put(b, "url", target);
    }
    free(query), free(target), free(kept);
    host->url_free(&u);
    return st;
}

/* The body (malloc'd): the template's rendering, or the event JSON, bare or in
 * the envelope. NULL with *failed set when the template failed (res says why). */
static char *body_of(webhook *w, const herald_message *m, herald_result *res, int *failed)
{
    const herald_host *h = w->host;
    char *text = w->body_template ? h->render(w->ch, m, w->body_template, NULL,
                                              HERALD_ESCAPE_JSON, (size_t)w->max_payload + 1, res)
                                  : h->msg_json(m);
    *failed = w->body_template && !text;
    if (!text)
        return NULL;
    const char *type = h->msg_get(m, HERALD_MSG_TYPE);
    const char *ts = h->msg_get(m, HERALD_MSG_TIMESTAMP);
    size_t cap = strlen(text) + strlen(type) + strlen(ts) + 48;
    char *out = malloc(cap);
    if (out && w->envelope && !w->body_template)
        snprintf(out, cap, "{\"type\":\"%s\",\"timestamp\":\"%s\",\"data\":%s}", type, ts,
                 text);
    else if (out)
        memcpy(out, text, strlen(text) + 1);
    h->free(text);
    return out;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* "v1,<base64>" of HMAC-SHA256(key, "{id}.{timestamp}.{body}"), appended to out. */
static int sign_standard(const herald_host *h, const secret *sec, const char *id, long long ts,
                         const char *body, size_t len, char *out, size_t outlen)
{
    size_t prefix = strlen(id) + 32;
    char *msg = malloc(prefix + len);
    if (!msg)
        return 0;
    int n = snprintf(msg, prefix, "%s.%lld.", id, ts);
    memcpy(msg + n, body, len);
    unsigned char mac[32];
    herald_status st = h->hmac_sha256(sec->key, sec->keylen, msg, (size_t)n + len, mac);
    free(msg);
    char *b64 = st == HERALD_OK ? h->base64(mac, sizeof mac) : NULL;
    if (!b64)
        return 0;
    size_t used = strlen(out);
    snprintf(out + used, outlen - used, "%sv1,%s", used ? " " : "", b64);
    h->free(b64);
    return 1;
}

static herald_status describe(webhook *w, const herald_message *m, herald_exchange *ex,
                              herald_result *res)
{
    const herald_host *h = w->host;
    int failed = 0;
    char *body = body_of(w, m, res, &failed);
    if (!body)
        return failed ? HERALD_OK : HERALD_E_NOMEM;
    size_t len = strlen(body);
    if ((long long)len > w->max_payload) {
        free(body);
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_TOO_LARGE,
                  "the body is %zu bytes, over max_payload (%lld); shorten the event or raise "
                  "max_payload", len, w->max_payload);
        return HERALD_OK;
    }
    h->http_request(ex, w->method, w->url);
    if (!w->has_content_type)
        h->http_header(ex, "Content-Type", "application/json");
    for (size_t i = 0; i < w->nheaders; i++)
        h->http_header(ex, w->headers[2 * i], w->headers[2 * i + 1]);
    const char *type = h->msg_get(m, HERALD_MSG_TYPE);
    const char *attempt = h->msg_get(m, HERALD_MSG_ATTEMPT);
    h->http_header(ex, "X-Herald-Event", type);
    if (attempt)
        h->http_header(ex, "X-Herald-Delivery-Attempt", attempt);
    if (w->sig) {
        /* Stable across retries and redeliveries: the idempotency key when the
         * submitter gave one, else the event id. */
        const char *key = h->msg_get(m, HERALD_MSG_IDEMPOTENCY_KEY);
        char id[160];
        snprintf(id, sizeof id, "%s%s", key ? "" : "msg_", key ? key : h->msg_get(m, HERALD_MSG_ID));
        long long ts = h->now_ms() / 1000;
        char tsbuf[24];
        snprintf(tsbuf, sizeof tsbuf, "%lld", ts);
        h->http_header(ex, "webhook-id", id);
        h->http_header(ex, "webhook-timestamp", tsbuf);
        if (w->sig & SIG_STANDARD) {
            char sigs[256] = "";
            int good = sign_standard(h, &w->cur, id, ts, body, len, sigs, sizeof sigs);
            if (good && w->old.key && h->now_ms() < w->old_until_ms)
                good = sign_standard(h, &w->old, id, ts, body, len, sigs, sizeof sigs);
            if (!good) {
                free(body);
                return HERALD_E_NOMEM;
            }
            h->http_header(ex, "webhook-signature", sigs);
        }
        if (w->sig & SIG_GITHUB) {
            unsigned char mac[32];
            char value[80] = "sha256=";
            if (h->hmac_sha256(w->cur.text, strlen(w->cur.text), body, len, mac) != HERALD_OK) {
                free(body);
                return HERALD_E_NOMEM;
            }
            hex(mac, sizeof mac, value + 7);
            h->http_header(ex, "X-Hub-Signature-256", value);
        }
    }
    h->http_body(ex, body, len);
    h->set_timeout_ms(ex, w->timeout_ms);
    h->set_tls(ex, w->ca_file, w->insecure);
    free(body);
    return HERALD_OK;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    return describe(state, m, ex, res);
}

static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    webhook *w = state;
    if (flags & HERALD_TEST_SEND)
        return describe(w, m, ex, res);
    w->host->connect_request(ex, w->url);
    w->host->set_timeout_ms(ex, w->timeout_ms);
    w->host->set_tls(ex, w->ca_file, w->insecure);
    return HERALD_OK;
}

/* The start of a response body, printable, for the delivery log. */
static void excerpt(const herald_host *h, const herald_response *r, char *out, size_t outlen)
{
    size_t len;
    const char *body = h->response_body(r, &len);
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outlen && i < EXCERPT_MAX; i++)
        out[o++] = (unsigned char)body[i] < 0x20 ? ' ' : body[i];
    out[o] = '\0';
}

static herald_status interpret(void *state, const herald_message *m, const herald_response *r,
                               herald_exchange *ex, herald_result *res)
{
    webhook *w = state;
    const herald_host *h = w->host;
    herald_status ts = h->response_transport(r);
    long code = h->response_code(r);
    char body[EXCERPT_MAX + 1];

    if (ts != HERALD_OK) {
        herald_verdict v = h->retryable(ts) ? HERALD_VERDICT_RETRY : HERALD_VERDICT_FAILED;
        h->result(res, v, ts, "%s: %s", h->strerror(ts), h->response_error(r));
        return HERALD_OK;
    }
    if (h->exchange_purpose(ex) == HERALD_PURPOSE_TEST && code == 0) {
        h->result(res, HERALD_VERDICT_OK, HERALD_OK, "reachable%s; no request was sent",
                  strncasecmp(w->url, "https://", 8) == 0 ? ", TLS certificate verified" : "");
        return HERALD_OK;
    }
    excerpt(h, r, body, sizeof body);
    if (code >= 200 && code < 300) {
        h->result(res, HERALD_VERDICT_OK, HERALD_OK, "HTTP %ld%s", code,
                  h->exchange_purpose(ex) == HERALD_PURPOSE_TEST ? "; a real test event was sent"
                                                                 : "");
    } else if (code >= 300 && code < 400) {
        const char *loc = h->response_header(r, "Location");
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_REDIRECT,
                  "HTTP %ld redirect to %s; redirects are not followed, set url to the final "
                  "address", code, loc ? loc : "(no Location)");
    } else if (code == 410) {
        h->result(res, HERALD_VERDICT_DISABLE, HERALD_E_GONE, "HTTP 410 Gone: %s", body);
    } else if (code == 408 || code == 429 || code >= 500) {
        herald_status st = code == 429   ? HERALD_E_RATE_LIMITED
                           : code == 408 ? HERALD_E_TIMEOUT
                                         : HERALD_E_SERVER;
        const char *ra = h->response_header(r, "Retry-After");
        long long at = ra ? h->parse_retry_after(ra, h->now_ms()) : -1;
        h->result(res, HERALD_VERDICT_RETRY, st, "HTTP %ld%s%s%s: %s", code,
                  at >= 0 ? " (Retry-After: " : "", at >= 0 ? ra : "", at >= 0 ? ")" : "", body);
        if (at >= 0)
            h->result_retry_at(res, at);
    } else if (code == 401 || code == 403) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH,
                  "HTTP %ld: credentials rejected; check the channel's headers: %s", code, body);
    } else if (code >= 400 && code < 500) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "HTTP %ld: %s", code, body);
    } else {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_PROTOCOL, "unexpected HTTP status %ld",
                  code);
    }
    return HERALD_OK;
}

HERALD_PLUGIN_DEFINE(
    .name = "webhook",
    .version = "1.0.0",
    .description = "generic JSON webhook: POSTs each event as JSON to a URL",
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
