/* dispatch.h - the dispatcher that turns queued deliveries into attempts. */
#ifndef HERALD_DISPATCH_H
#define HERALD_DISPATCH_H

#include "internal.h"
#include "store.h"

typedef struct hr_dispatcher hr_dispatcher;

/* Called for every recorded attempt, inside the transaction that records it. */
typedef void (*hr_attempt_cb)(void *arg, const hr_claim *c, const hr_outcome *o, hr_dstate state,
                              long long next_at);

/* cfg, loader and store are borrowed and must outlive the dispatcher. */
hr_dispatcher *hr_dispatcher_new(hr_config *cfg, hr_loader *loader, hr_store *store);
/* Release every claim still in flight back to pending, close channels. */
void hr_dispatcher_free(hr_dispatcher *d);
/* Only claim this event's deliveries (the embedded CLI). */
void hr_dispatcher_only_event(hr_dispatcher *d, const char *event_id);
void hr_dispatcher_on_attempt(hr_dispatcher *d, hr_attempt_cb cb, void *arg);
/* Use an already opened channel (ownership passes) for deliveries to key
 * (a channel name, or the URL of an ad-hoc channel). */
void hr_dispatcher_adopt(hr_dispatcher *d, const char *key, herald_channel *ch);
void hr_dispatcher_set_lease(hr_dispatcher *d, long long lease_ms);
/* Claim what is due and start it, wait up to timeout_ms for transfers or the
 * extra fds, record what finished. Returns the number of attempts in flight. */
int hr_dispatcher_step(hr_dispatcher *d, int timeout_ms, struct pollfd *fds, unsigned nfds);
size_t hr_dispatcher_inflight(const hr_dispatcher *d);
/* Stop claiming; attempts in flight still finish and are recorded. */
void hr_dispatcher_drain(hr_dispatcher *d);

/* The channel name under which ad-hoc URL deliveries are queued. */
#define HR_ADHOC_CHANNEL ":url"

#endif /* HERALD_DISPATCH_H */
