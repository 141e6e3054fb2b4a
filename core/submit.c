/* submit.c - accepting an event: validate it, resolve its channels, store it with its deliveries. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "submit.h"
#include "webhooks.h"

/* The webhook subscriptions ev goes to; -1 with err when it is too large for one. */
static long match_subs(const hr_routing *rt, herald_event *ev, const hr_sub ***out, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (!rt || ev->user)
        return 0;
    return hr_subs_for_event(rt->subs, ev, out, err, errlen);
}

static void add_subs(hr_delivery_new **dn, size_t *n, const hr_sub **subs, long nsubs,
                     const herald_event *ev)
{
    *dn = hr_realloc(*dn, (*n + (size_t)nsubs + 1) * sizeof **dn);
    for (long i = 0; i < nsubs; i++) {
        hr_delivery_new *y = &(*dn)[(*n)++];
        memset(y, 0, sizeof *y);
        y->channel = subs[i]->id;
        y->state = HR_D_PENDING;
        y->next_at = ev->created_ms;
    }
}

/* A subscription of the event's own tenant, known to the routing or (just
 * added, before the routing reloads) to the store. */
static int is_sub(const hr_routing *rt, hr_store *s, const herald_event *ev, const char *name)
{
    const char *tenant = ev->tenant ? ev->tenant : "default";
    for (size_t i = 0; rt && rt->subs && i < rt->subs->n; i++)
        if (strcmp(rt->subs->v[i].id, name) == 0)
            return strcmp(rt->subs->v[i].tenant, tenant) == 0;
    if (!hr_webhook_is_id(name))
        return 0;
    hr_webhook_row *rows = NULL;
    size_t n = 0;
    int found = hr_store_webhooks(s, name, &rows, &n) == HERALD_OK && n == 1 &&
                !strcmp(rows[0].id, name) &&
                !strcmp(rows[0].tenant ? rows[0].tenant : "default", tenant);
    hr_webhook_rows_free(rows, n);
    return found;
}

static int seen_cb(void *ctx, const char *route, const char *key, long long window_ms,
                   long long now)
{
    return hr_store_route_seen(ctx, route, key, window_ms, now);
}

static int take_cb(void *ctx, const char *route, int n, long long period_ms, long long now)
{
    int ok = hr_store_route_take(ctx, route, n, period_ms, now);
    if (!ok)
        hr_log(HERALD_LOG_NOTICE, "route %s is over its rate_limit of %d per %llds: event dropped "
               "for it (counted)", route, n, period_ms / 1000);
    return ok;
}

/* Routes decide: one delivery per (channel, recipient) to send or defer; the
 * users they name are the event's own tenant's. */
static hr_delivery_new *route_deliveries(const hr_routing *rt, hr_store *s, herald_event *ev,
                                         size_t *n, char **trail)
{
    hr_route_state state = {s, seen_cb, take_cb};
    hr_decisions dec;
    hr_route_event(rt->router, hr_routing_dir(rt, ev->tenant), ev, ev->created_ms, &state, &dec);
    hr_delivery_new *dn = hr_calloc(dec.n + 1, sizeof *dn);
    *n = 0;
    for (size_t i = 0; i < dec.n; i++) {
        const hr_decision *x = &dec.v[i];
        if (x->action == HR_SKIP)
            continue;
        hr_delivery_new *y = &dn[(*n)++];
        y->channel = x->channel;
        y->recipient = x->user;
        y->address = x->address;
        y->state = x->action == HR_DEFER ? HR_D_DEFERRED : HR_D_PENDING;
        y->next_at = x->action == HR_DEFER ? x->not_before : ev->created_ms;
    }
    *trail = hr_decisions_json(&dec);
    hr_decisions_free(&dec);
    return dn;
}

herald_status hr_submit(hr_config *cfg, hr_loader *l, const hr_routing *rt, hr_store *s,
                        hr_dispatcher *d, herald_event *ev, char *const *to, size_t nto,
                        int *duplicate, char *err, size_t errlen)
{
    herald_status st = hr_event_validate(ev, &cfg->limits, err, errlen);
    if (st != HERALD_OK)
        return st;
    const hr_sub **subs = NULL;
    long nsubs = 0;
    if (nto == 0) {
        hr_event_stamp(ev);
        if ((nsubs = match_subs(rt, ev, &subs, err, errlen)) < 0)
            return HERALD_E_TOO_LARGE;
    }
    if (nto == 0 && rt && rt->router->configured) {
        size_t n = 0;
        char *trail = NULL;
        hr_delivery_new *dn = route_deliveries(rt, s, ev, &n, &trail);
        add_subs(&dn, &n, subs, nsubs, ev);
        free(subs);
        st = hr_submit_deliveries(cfg, s, d, ev, dn, n, trail, duplicate, err, errlen);
        free(trail);
        free(dn);
        return st;
    }
    size_t n = nto ? nto : cfg->nchannels;
    if (n == 0 && nsubs > 0) {
        hr_delivery_new *dn = NULL;
        add_subs(&dn, &n, subs, nsubs, ev);
        free(subs);
        st = hr_submit_deliveries(cfg, s, d, ev, dn, n, NULL, duplicate, err, errlen);
        free(dn);
        return st;
    }
    if (n == 0) {
        snprintf(err, errlen, "no channel to send to: the configuration defines none; add one or "
                 "name a channel URL");
        return HERALD_E_NOT_FOUND;
    }
    hr_delivery_new *dn = hr_calloc(n, sizeof *dn);
    if (nto)
        hr_event_stamp(ev);
    for (size_t i = 0; i < n; i++) {
        dn[i].next_at = ev->created_ms;
        dn[i].state = HR_D_PENDING;
        if (!nto) {
            dn[i].channel = cfg->channels[i].name;
            continue;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(to[k], to[i]) == 0) {
                snprintf(err, errlen, "channel '%s' is named twice; name each once", to[i]);
                free(dn);
                return HERALD_E_INVALID;
            }
        }
        if (strstr(to[i], "://")) {
            hr_url u;
            hr_plugin *p;
            if ((st = hr_url_split(to[i], &u, err, errlen)) != HERALD_OK) {
                free(dn);
                return st;
            }
            st = hr_loader_by_scheme(l, u.scheme, &p, err, errlen);
            hr_url_free(&u);
            if (st != HERALD_OK) {
                free(dn);
                return st;
            }
            dn[i].channel = HR_ADHOC_CHANNEL;
            dn[i].address = to[i];
        } else if (is_sub(rt, s, ev, to[i])) {
            dn[i].channel = to[i];
        } else if (!hr_config_channel(cfg, to[i])) {
            snprintf(err, errlen, "no channel '%s' in the configuration", to[i]);
            free(dn);
            return HERALD_E_NOT_FOUND;
        } else {
            dn[i].channel = to[i];
        }
    }
    if (!nto)
        add_subs(&dn, &n, subs, nsubs, ev);
    free(subs);
    st = hr_submit_deliveries(cfg, s, d, ev, dn, n, NULL, duplicate, err, errlen);
    free(dn);
    return st;
}

herald_status hr_submit_deliveries(hr_config *cfg, hr_store *s, hr_dispatcher *d,
                                   herald_event *ev, hr_delivery_new *dn, size_t n,
                                   const char *trail, int *duplicate, char *err, size_t errlen)
{
    herald_status st;
    size_t reserved = 0;
    for (size_t i = 0; d && i < n; i++) {
        if (dn[i].state != HR_D_PENDING)
            continue;
        if (hr_dispatcher_reserve(d, dn[i].channel, ev->created_ms, &dn[i].lease_until)) {
            dn[i].state = HR_D_INFLIGHT;
            reserved++;
        }
    }
    int dup = 0;
    st = hr_store_submit_routed(s, ev, dn, n, cfg->idempotency_window_ms, &dup, trail);
    if (st != HERALD_OK)
        snprintf(err, errlen, "cannot queue the event: %s", hr_store_error(s));
    if (reserved && st == HERALD_OK && !dup) {
        hr_dispatcher_offer(d, ev, dn, n);
    } else if (reserved) {
        for (size_t i = 0; i < n; i++)
            if (dn[i].state == HR_D_INFLIGHT)
                hr_dispatcher_unreserve(d, dn[i].channel);
    }
    if (duplicate)
        *duplicate = dup;
    return st;
}
