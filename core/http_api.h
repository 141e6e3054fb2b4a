/* http_api.h - heraldd's HTTP API (libmicrohttpd), run on the daemon's own thread.
 *
 * The server runs in libmicrohttpd's external-epoll mode: heraldd polls its
 * epoll descriptor next to the Unix socket's clients and calls
 * hr_api_run() in the same round, so HTTP submissions share the round's
 * transaction and, like socket submissions, hear 202 only after the commit
 * (their connections are suspended until hr_api_after_commit()).
 */
#ifndef HERALD_HTTP_API_H
#define HERALD_HTTP_API_H

#include <jansson.h>

#include "dispatch.h"
#include "internal.h"
#include "metrics.h"
#include "route.h"
#include "store.h"

typedef struct hr_api hr_api;

/* What the API needs from the daemon; pointers to the daemon's current
 * values, so reloads are seen. */
typedef struct hr_api_env {
    hr_config **cfg;
    hr_loader **loader;
    hr_routing **routing;
    hr_dispatcher **d;
    hr_store *store;
    /* Start the round's transaction if it has not started; 1 when it runs. */
    int (*begin)(void *ctx);
    /* The deliveries of an event as the socket's wait reply has them. */
    json_t *(*status)(void *ctx, const char *id, int *final);
    int *draining;
    /* Subscriptions changed through the API: reload routing now. */
    void (*changed)(void *ctx);
    /* Counters and histograms for /metrics; events the API accepted are counted in it. */
    hr_metrics *metrics;
    void *ctx;
    /* The inbound webhook sources (POST /v1/hooks/{source}); may be NULL. */
    struct hr_hooks **hooks;
} hr_api_env;

/* Start when the config has an http group (NULL without one, or on error
 * with err set). Refuses a non-loopback address without TLS unless
 * plaintext_ok. */
hr_api *hr_api_start(const hr_config *cfg, const hr_api_env *env, char *err, size_t errlen);
void hr_api_stop(hr_api *api);
int hr_api_fd(const hr_api *api);
/* Milliseconds until the server needs hr_api_run() anyway, or -1. */
long long hr_api_timeout(hr_api *api);
void hr_api_run(hr_api *api);
/* After the round's commit (committed 0: it failed): answer the submissions
 * of the round, and the waits that are over. */
void hr_api_after_commit(hr_api *api, int committed);
/* How many new webhook receipts were committed since the last call (then
 * hr_hooks_process() has work). */
size_t hr_api_receipts(hr_api *api);
/* "METHOD PATH" of every route, one per line, for the OpenAPI check. */
void hr_api_print_routes(FILE *out);

#endif
