/* http.h - response classes shared by the HTTP channel plugins (compiled into each plugin;
 * plugins link nothing of herald). */
#ifndef HERALD_PLUGIN_COMMON_HTTP_H
#define HERALD_PLUGIN_COMMON_HTTP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <herald/plugin.h>

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
