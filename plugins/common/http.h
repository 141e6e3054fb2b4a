/* http.h - response classes shared by the HTTP channel plugins (compiled into each plugin;
 * plugins link nothing of herald). */
#ifndef HERALD_PLUGIN_COMMON_HTTP_H
#define HERALD_PLUGIN_COMMON_HTTP_H

#include <herald/plugin.h>

/* The classes every HTTP service shares, after the plugin handled what is
 * special to its service: transport errors (retried when retryable), 3xx (not
 * followed), 401/403, 404, 408/429/5xx (retried, Retry-After honoured), other
 * 4xx. `why` is the service's own error text; `fix_auth` and `fix_404` say
 * what to change. */
static void http_classify(const herald_host *h, const herald_response *r, herald_result *res,
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
