/* http.h - what the HTTP channel plugins share: connection and overflow settings, severity
 * maps, Apprise URL parsing, UTF-8 cutting and response classes (compiled into each plugin;
 * plugins link nothing of herald). */
#ifndef HERALD_PLUGIN_COMMON_HTTP_H
#define HERALD_PLUGIN_COMMON_HTTP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <herald/plugin.h>

#define HTTP_DEFAULT_TIMEOUT_S 10

static inline char *http_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A create() refusing its settings: the reason in res, the half-built state freed. */
static inline herald_status http_refuse(const herald_host *h, herald_result *res,
                                        void (*destroy)(void *), void *state, const char *msg)
{
    h->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG, "%s", msg);
    destroy(state);
    return HERALD_E_CONFIG;
}

/* ---- connection settings: timeout, ca_file, insecure ---- */

#define HTTP_CONN_SETTINGS                                                                 \
    {"timeout", HERALD_SETTING_INT, 0, 1, 300, "seconds before the attempt is abandoned (10)"}, \
    {"ca_file", HERALD_SETTING_STRING, 0, 0, 0, "PEM file of CAs trusted for this server"},    \
    {"insecure", HERALD_SETTING_BOOL, 0, 0, 0, "skip TLS verification (never in production)"}

typedef struct http_conn {
    long long timeout_ms;
    char *ca_file;
    int insecure;
} http_conn;

/* 0 when out of memory. Turning TLS verification off is always logged. */
static inline int http_conn_read(const herald_host *h, herald_channel *ch,
                                 const herald_settings *s, http_conn *c)
{
    long long timeout = HTTP_DEFAULT_TIMEOUT_S;
    h->setting_int(s, "timeout", &timeout);
    c->timeout_ms = timeout * 1000;
    const char *ca = h->setting_string(s, "ca_file");
    c->ca_file = http_dup(ca);
    h->setting_bool(s, "insecure", &c->insecure);
    if (c->insecure)
        h->log(ch, HERALD_LOG_WARNING, "TLS verification is off (insecure = true)");
    return !ca || c->ca_file;
}

static inline void http_conn_free(http_conn *c)
{
    free(c->ca_file);
    c->ca_file = NULL;
}

/* Start a request on ex with the channel's timeout and TLS settings. */
static inline void http_request(const herald_host *h, herald_exchange *ex, const http_conn *c,
                                const char *method, const char *url)
{
    h->http_request(ex, method, url);
    h->set_timeout_ms(ex, c->timeout_ms);
    h->set_tls(ex, c->ca_file, c->insecure);
}

/* The same to base + path (base without a trailing slash). */
static inline void http_request_at(const herald_host *h, herald_exchange *ex,
                                   const http_conn *c, const char *method, const char *base,
                                   const char *path)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_request(h, ex, c, method, url);
}

static inline int http_scheme_ok(const char *url)
{
    return url && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
}

/* A service's base URL: http(s)://host[:port][/path], copied without trailing
 * slashes into *out. -1 when it is not such a URL, 0 when out of memory. */
static inline int http_base(const herald_host *h, const char *url, char **out)
{
    *out = NULL;
    herald_url_parts parts = {.struct_size = sizeof parts};
    if (!http_scheme_ok(url) || h->url_split(url, &parts) != HERALD_OK)
        return -1;
    h->url_free(&parts);
    if (!(*out = http_dup(url)))
        return 0;
    size_t n = strlen(*out);
    while (n > 0 && (*out)[n - 1] == '/')
        (*out)[--n] = '\0';
    return 1;
}

/* ---- text over a service's limits ---- */

typedef enum http_overflow { HTTP_SPLIT, HTTP_TRUNCATE, HTTP_UPSTREAM } http_overflow;

#define HTTP_OVERFLOW_SETTING(help) {"overflow", HERALD_SETTING_STRING, 0, 0, 0, help}

/* 0 when the value is none of split (the default), truncate, upstream. */
static inline int http_overflow_read(const herald_host *h, const herald_settings *s,
                                     http_overflow *out)
{
    const char *v = h->setting_string(s, "overflow");
    if (!v || !strcmp(v, "split"))
        *out = HTTP_SPLIT;
    else if (!strcmp(v, "truncate"))
        *out = HTTP_TRUNCATE;
    else if (!strcmp(v, "upstream"))
        *out = HTTP_UPSTREAM;
    else
        return 0;
    return 1;
}

static inline size_t http_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

#define HTTP_CUT_BYTES 0x1u /* max counts bytes, not characters */
#define HTTP_CUT_WORD 0x2u  /* prefer ending at a line or word end */

/* Bytes of s that hold at most max characters (or bytes) without cutting a
 * UTF-8 sequence; with HTTP_CUT_WORD the cut moves back to the last newline or
 * space when that is within the last quarter. */
static inline size_t http_utf8_prefix(const char *s, size_t max, unsigned flags)
{
    size_t bytes = 0, n = 0, brk = 0, brk_n = 0;
    while (s[bytes]) {
        size_t len = 1;
        while (((unsigned char)s[bytes + len] & 0xC0) == 0x80)
            len++;
        if ((flags & HTTP_CUT_BYTES ? bytes + len : n + 1) > max)
            break;
        bytes += len;
        n = flags & HTTP_CUT_BYTES ? bytes : n + 1;
        if (s[bytes - 1] == '\n' || s[bytes - 1] == ' ') {
            brk = bytes;
            brk_n = n;
        }
    }
    if ((flags & HTTP_CUT_WORD) && s[bytes] && brk && brk_n > max - max / 4)
        return brk;
    return bytes;
}

/* ---- severity maps ---- */

#define HTTP_NSEV 6
static const char *const http_severity_names[HTTP_NSEV] = {"debug", "info", "notice",
                                                           "warning", "error", "critical"};

/* Read a severity -> number map setting over defaults; 0 when an entry is not
 * a severity or not a number from lo to hi. */
static inline int http_priorities(const herald_host *h, const herald_settings *s, const char *name,
                           int out[HTTP_NSEV], long lo, long hi)
{
    size_t n = h->setting_count(s, name);
    for (size_t i = 0; i < n; i++) {
        const char *key;
        const char *value = h->setting_item(s, name, i, &key);
        int k = -1;
        for (int j = 0; j < HTTP_NSEV; j++)
            if (key && strcmp(key, http_severity_names[j]) == 0)
                k = j;
        char *end;
        long v = value ? strtol(value, &end, 10) : lo - 1;
        if (k < 0 || !value || *end || v < lo || v > hi)
            return 0;
        out[k] = (int)v;
    }
    return 1;
}

/* Apprise-style SCHEME://[creds@]host[:port][/path]/LAST (SCHEME ending in
 * 's' means https): puts url = http(s)://host[:port][/path] and `last_name` =
 * LAST. u is split by the caller and stays its to free. */
static inline herald_status http_url_base_last(const herald_host *h, const herald_url_parts *u,
                                        const char *tls_scheme, herald_settings_builder *b,
                                        const char *last_name, herald_result *res,
                                        const char *form)
{
    const char *path = u->path ? u->path : "";
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1]) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID, "expected %s", form);
        return HERALD_E_INVALID;
    }
    size_t cap = strlen(u->host) + (u->port ? strlen(u->port) : 0) + strlen(path) + 16;
    char *base = malloc(cap);
    if (!base)
        return HERALD_E_NOMEM;
    snprintf(base, cap, "%s://%s%s%s%.*s", strcmp(u->scheme, tls_scheme) == 0 ? "https" : "http",
             u->host, u->port ? ":" : "", u->port ? u->port : "", (int)(slash - path), path);
    herald_status st = h->settings_put(b, "url", base);
    if (st == HERALD_OK)
        st = h->settings_put(b, last_name, slash + 1);
    free(base);
    return st;
}

/* The classes every HTTP service shares, after the plugin handled what is
 * special to its service: transport errors (retried when retryable), 3xx (not
 * followed), 401/403, 404, 408/429/5xx (retried, Retry-After honoured), other
 * 4xx. `why` is the service's own error text; `fix_auth` and `fix_404` say
 * what to change. */
static inline void http_classify(const herald_host *h, const herald_response *r, herald_result *res,
                          const char *why, const char *fix_auth, const char *fix_404)
{
    herald_status ts = h->response_transport(r);
    long code = h->response_code(r);
    if (ts != HERALD_OK) {
        h->result(res, h->retryable(ts) ? HERALD_VERDICT_RETRY : HERALD_VERDICT_FAILED, ts,
                  "%s: %s", h->strerror(ts), h->response_error(r));
    } else if (code >= 300 && code < 400) {
        const char *loc = h->response_header(r, "Location");
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_REDIRECT,
                  "HTTP %ld redirect to %s; redirects are not followed, set url to the final "
                  "address", code, loc ? loc : "(no Location)");
    } else if (code == 401 || code == 403) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "HTTP %ld: %s; %s", code, why,
                  fix_auth);
    } else if (code == 404) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND, "HTTP 404: %s; %s", why,
                  fix_404);
    } else if (code == 408 || code == 429 || code >= 500) {
        const char *ra = h->response_header(r, "Retry-After");
        long long at = ra ? h->parse_retry_after(ra, h->now_ms()) : -1;
        h->result(res, HERALD_VERDICT_RETRY,
                  code == 429   ? HERALD_E_RATE_LIMITED
                  : code == 408 ? HERALD_E_TIMEOUT
                                : HERALD_E_SERVER,
                  "HTTP %ld: %s", code, why);
        if (at >= 0)
            h->result_retry_at(res, at);
    } else if (code >= 400 && code < 500) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "HTTP %ld: %s", code, why);
    } else {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_PROTOCOL, "unexpected HTTP status %ld",
                  code);
    }
}

#endif
