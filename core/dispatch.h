/* dispatch.h - the dispatcher that turns queued deliveries into attempts. */
#ifndef HERALD_DISPATCH_H
#define HERALD_DISPATCH_H

#include "internal.h"
#include "store.h"

struct pollfd;
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
/* Attempts in flight at once across channels (default 1024); each holds a socket. */
void hr_dispatcher_set_max_inflight(hr_dispatcher *d, size_t n);
/* Webhook subscriptions changed in the store: reopen their channels when idle. */
void hr_dispatcher_webhooks_changed(hr_dispatcher *d);
/* Claim what is due and start it, wait up to timeout_ms for transfers or the
 * extra fds, record what finished. Returns the number of attempts in flight. */
int hr_dispatcher_step(hr_dispatcher *d, int timeout_ms, struct pollfd *fds, unsigned nfds);
/*
 * The same in parts, for a caller that puts a round's work in one
 * transaction: hr_dispatcher_wait() waits up to timeout_ms for the fds or a
 * finished attempt (1: attempts finished); hr_dispatcher_collect() records
 * the finished attempts and claims what is due in the caller's open
 * transaction; hr_dispatcher_commit_offers() then starts those claims with
 * the round's offers (or forgets them when the transaction rolled back).
 */
int hr_dispatcher_wait(hr_dispatcher *d, int timeout_ms, struct pollfd *fds, unsigned nfds);
void hr_dispatcher_collect(hr_dispatcher *d);
size_t hr_dispatcher_inflight(const hr_dispatcher *d);
/* Stop claiming; attempts in flight still finish and are recorded. */
void hr_dispatcher_drain(hr_dispatcher *d);

/*
 * Fast path for events submitted through this dispatcher's process: a
 * delivery whose channel has room now is stored already claimed (in flight
 * under a lease) and its attempt starts from memory once the submission is
 * committed, with no claim query and no reloading of the event.
 *
 * hr_dispatcher_reserve() takes a slot on the channel (1) or says no (0);
 * hr_dispatcher_offer() hands over the stored deliveries that had a slot and
 * takes ev's contents (ev keeps its id); hr_dispatcher_unreserve() gives a
 * slot back when the event was not stored; hr_dispatcher_commit_offers()
 * starts the offered attempts (and what hr_dispatcher_collect() claimed)
 * when the transaction committed, or forgets them when it rolled back (the
 * rows went with it).
 */
int hr_dispatcher_reserve(hr_dispatcher *d, const char *channel, long long now,
                          long long *lease_until);
void hr_dispatcher_unreserve(hr_dispatcher *d, const char *channel);
void hr_dispatcher_offer(hr_dispatcher *d, herald_event *ev, const hr_delivery_new *dn, size_t n);
void hr_dispatcher_commit_offers(hr_dispatcher *d, int committed);

/* The channel name under which ad-hoc URL deliveries are queued. */
#define HR_ADHOC_CHANNEL ":url"

#endif /* HERALD_DISPATCH_H */
