/* submit.h - accepting events into the durable queue. */
#ifndef HERALD_SUBMIT_H
#define HERALD_SUBMIT_H

#include "dispatch.h"
#include "internal.h"
#include "route.h"
#include "store.h"

/* Validate ev against cfg's limits, resolve `to` (channel names or channel
 * URLs; when nto is 0, what the routes in rt decide, or every configured
 * channel when there are no routes), stamp it and store it with one delivery
 * per channel and recipient, in the store's current transaction if any.
 * HERALD_E_NOT_FOUND when there is nothing to send to. On a duplicate
 * idempotency key *duplicate is 1 and ev->id is the original event's.
 * With a dispatcher d (the daemon's), deliveries its channels have room for
 * are stored claimed and offered to it, taking ev's strings (ev keeps its id
 * and time): call hr_dispatcher_commit_offers() after the commit. */
herald_status hr_submit(hr_config *cfg, hr_loader *l, const hr_routing *rt, hr_store *s,
                        hr_dispatcher *d, herald_event *ev, char *const *to, size_t nto,
                        int *duplicate, char *err, size_t errlen);
/* Store a stamped event with the deliveries decided for it (and the routing
 * trail, may be NULL), offering the due ones to d. */
herald_status hr_submit_deliveries(hr_config *cfg, hr_store *s, hr_dispatcher *d,
                                   herald_event *ev, hr_delivery_new *dn, size_t n,
                                   const char *trail, int *duplicate, char *err, size_t errlen);

#endif /* HERALD_SUBMIT_H */
