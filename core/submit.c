/* submit.c - accepting an event: validate it, resolve its channels, store it with its deliveries. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "submit.h"

herald_status hr_submit(hr_config *cfg, hr_loader *l, hr_store *s, hr_dispatcher *d,
                        herald_event *ev, char *const *to, size_t nto, int *duplicate, char *err,
                        size_t errlen)
{
    herald_status st = hr_event_validate(ev, &cfg->limits, err, errlen);
    if (st != HERALD_OK)
        return st;
    size_t n = nto ? nto : cfg->nchannels;
    if (n == 0) {
        snprintf(err, errlen, "no channel to send to: the configuration defines none; add one or "
                 "name a channel URL");
        return HERALD_E_NOT_FOUND;
    }
    hr_delivery_new *dn = hr_calloc(n, sizeof *dn);
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
        } else if (!hr_config_channel(cfg, to[i])) {
            snprintf(err, errlen, "no channel '%s' in the configuration", to[i]);
            free(dn);
            return HERALD_E_NOT_FOUND;
        } else {
            dn[i].channel = to[i];
        }
    }
    size_t reserved = 0;
    for (size_t i = 0; d && i < n; i++) {
        if (hr_dispatcher_reserve(d, dn[i].channel, ev->created_ms, &dn[i].lease_until)) {
            dn[i].state = HR_D_INFLIGHT;
            reserved++;
        }
    }
    int dup = 0;
    st = hr_store_submit(s, ev, dn, n, cfg->idempotency_window_ms, &dup);
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
    free(dn);
    return st;
}
