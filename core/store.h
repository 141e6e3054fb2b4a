/* store.h - the durable queue: events, deliveries, attempts, channel state (one interface,
 * SQLite today; a server database can implement the same calls later). */
#ifndef HERALD_STORE_H
#define HERALD_STORE_H

#include "internal.h"

/*
 * THREADING: an hr_store is one database connection. Use it from one thread at
 * a time. Several connections (threads or processes) may use one database
 * file at once; writers wait for each other (busy timeout), they never fail
 * with "database is locked" while the wait is shorter than the timeout.
 *
 * TRANSACTIONS: every write call joins the transaction opened by
 * hr_store_begin() when there is one, else runs in its own. Group commit is
 * the caller's policy: begin, write many, commit.
 *
 * ERRORS: calls return HERALD_OK or a status with a one-line message in
 * hr_store_error().
 */

typedef struct hr_store hr_store;

typedef enum hr_dstate {
    HR_D_PENDING = 0,  /* waiting for next_at */
    HR_D_INFLIGHT = 1, /* claimed under a lease */
    HR_D_SENT = 2,
    HR_D_FAILED = 3,   /* permanent failure */
    HR_D_DEAD = 4,     /* retries exhausted */
    HR_D_DEFERRED = 5  /* held (quiet hours, disabled channel) until next_at */
} hr_dstate;

const char *hr_dstate_name(hr_dstate s);
int hr_dstate_parse(const char *name, hr_dstate *out);

/* Bytes of a response body kept per attempt (documented in herald(1)). */
#define HR_EXCERPT_MAX 1024

herald_status hr_store_open(const char *path, hr_store **out, char *err, size_t errlen);
void hr_store_close(hr_store *s);
const char *hr_store_error(const hr_store *s);
/* The database file the store was opened on. */
const char *hr_store_path(const hr_store *s);

/* WAL checkpoints: by default the connection that commits runs them when the
 * WAL passes 1,000 pages; a busy writer can turn that off (pages = 0) and have
 * another connection, on another thread, call hr_store_checkpoint() (passive:
 * it never blocks writers). */
void hr_store_autocheckpoint(hr_store *s, int pages);
herald_status hr_store_checkpoint(hr_store *s);

herald_status hr_store_begin(hr_store *s);
/* A transaction for many calls at once (group commit on the hot path): calls
 * skip their savepoints, so one failed call spoils the whole transaction:
 * later calls fail, and hr_store_commit() rolls everything back and fails
 * with the first failure's message. */
herald_status hr_store_begin_batch(hr_store *s);
herald_status hr_store_commit(hr_store *s);
void hr_store_rollback(hr_store *s);

/* ---- submission ---- */

typedef struct hr_delivery_new {
    const char *channel;
    const char *recipient; /* user name or NULL (broadcast) */
    const char *address;   /* recipient's address on the channel or NULL */
    long long next_at;     /* first attempt time (Unix ms) */
    hr_dstate state;       /* HR_D_PENDING, HR_D_DEFERRED, or HR_D_INFLIGHT: claimed
                            * at once by the submitting dispatcher until lease_until */
    long long lease_until;
    long long id;          /* set by hr_store_submit() */
} hr_delivery_new;

/* Persist ev and its deliveries. When ev->idempotency_key was stored within
 * window_ms before ev->created_ms, nothing is stored, *duplicate is set to 1
 * and ev->id is overwritten with the original event's id. */
herald_status hr_store_submit(hr_store *s, herald_event *ev, hr_delivery_new *d, size_t nd,
                              long long window_ms, int *duplicate);

/* The same, keeping `trail` (the routing decisions as JSON text, may be NULL)
 * with the event for `herald explain`. */
herald_status hr_store_submit_routed(hr_store *s, herald_event *ev, hr_delivery_new *d, size_t nd,
                                     long long window_ms, int *duplicate, const char *trail);
/* The routing trail of an event (*trail NULL when it was not routed). */
herald_status hr_store_trail(hr_store *s, const char *event_id, char **trail);
/* Routes' shared state (see hr_route_state in route.h). */
int hr_store_route_seen(hr_store *s, const char *route, const char *key, long long window_ms,
                        long long now);
int hr_store_route_take(hr_store *s, const char *route, int n, long long period_ms, long long now);

/* Users, preferences and groups managed at run time (see route.h for how
 * they combine with the config). They belong to a tenant (NULL: "default",
 * the CLI's and the config's); names are unique within a tenant only. Every
 * change bumps the directory version. */
herald_status hr_store_user_add(hr_store *s, const char *tenant, const char *name, int *existed);
herald_status hr_store_user_remove(hr_store *s, const char *tenant, const char *name, int *found);
/* Set (or with value NULL remove) one preference; set again, it becomes the
 * latest. kind: "addr" (key = address name), "default" (key "min_severity"),
 * "channel" (key = channel, value on/off), "rule" (key = glob "\x1f" channel,
 * value "on[:min]" or "off"), "quiet" (key "quiet", value "HH:MM-HH:MM TZ
 * ACTION" or "off"). */
herald_status hr_store_pref_put(hr_store *s, const char *tenant, const char *user,
                                const char *kind, const char *key, const char *value);
herald_status hr_store_group_member(hr_store *s, const char *tenant, const char *group,
                                    const char *user, int add, int *changed);
long long hr_store_directory_version(hr_store *s);
/* Every row of one tenant: ("user", name), ("pref", user, kind, key, value) in
 * the order they were first set, ("group", group, user). */
typedef void (*hr_dir_row_fn)(void *ctx, const char *what, const char *a, const char *b,
                              const char *c, const char *d);
herald_status hr_store_directory_each(hr_store *s, const char *tenant, hr_dir_row_fn fn,
                                      void *ctx);
/* The tenants other than "default" that have users: a sorted NULL-terminated
 * vector to free with hr_strv_free(). */
herald_status hr_store_directory_tenants(hr_store *s, char ***out);

/* Webhook subscriptions (see webhooks.h): the stored row. */
typedef struct hr_webhook_row {
    char id[40];
    char *name, *url_shown, *events, *sealed, *signature, *body_template;
    char *tenant; /* NULL: "default" */
    long long timeout_ms, payload_max, created_ms, updated_ms;
    int max_attempts; /* 0: the global retry policy's */
} hr_webhook_row;

typedef struct hr_webhook_counters {
    long long total, succeeded, failed, last_success_ms, last_failure_ms;
    int consecutive_failures, disabled;
    char *disabled_reason; /* free() it */
} hr_webhook_counters;

herald_status hr_store_webhook_put(hr_store *s, const hr_webhook_row *w, int create);
herald_status hr_store_webhook_remove(hr_store *s, const char *id);
/* id_or_name NULL: all, oldest first. */
herald_status hr_store_webhooks(hr_store *s, const char *id_or_name, hr_webhook_row **out,
                                size_t *n);
void hr_webhook_row_clear(hr_webhook_row *w);
void hr_webhook_rows_free(hr_webhook_row *v, size_t n);
/* Deliveries by outcome, from the log; disabled state from the channel state. */
herald_status hr_store_webhook_counters(hr_store *s, const char *id, hr_webhook_counters *c);

/* API tokens: the secret part is kept as a SHA-256 hex hash only. */
typedef struct hr_token_row {
    char id[24];
    char *name, *hash, *scopes, *tenant;
    long long created_ms, revoked_ms; /* revoked_ms 0: valid */
} hr_token_row;

herald_status hr_store_token_add(hr_store *s, const hr_token_row *t);
herald_status hr_store_token_revoke(hr_store *s, const char *id_or_name, int *found);
herald_status hr_store_tokens(hr_store *s, hr_token_row **out, size_t *n);
void hr_token_rows_free(hr_token_row *v, size_t n);
/* The tenant an event belongs to, or NULL when there is no such event. */
char *hr_store_event_tenant(hr_store *s, const char *event_id);

/* Load an event; NULL when absent. Free with hr_event_free(). */
herald_event *hr_store_event(hr_store *s, const char *id);

/* ---- dispatch ---- */

typedef struct hr_claim {
    long long id;        /* delivery id */
    char event_id[37];
    char *channel;
    char *recipient;
    char *address;
    int attempts;        /* attempts made before this one */
    long long created_ms;
} hr_claim;

/* Claim up to max deliveries that are due (pending with next_at <= now, or in
 * flight with an expired lease), oldest next_at first, marking them in flight
 * until now + lease_ms. Channels in `skip` (NULL-terminated, may be NULL) are
 * left alone; with event_id, only that event's deliveries are claimed (an
 * index lookup). Without event_id every claimable row is read and sorted:
 * that is for tools and tests; the dispatcher claims channel by channel. */
herald_status hr_store_claim(hr_store *s, long long now, long long lease_ms, size_t max,
                             const char *const *skip, const char *event_id, hr_claim **out,
                             size_t *n);
void hr_claims_free(hr_claim *c, size_t n);

/* The same for one channel's deliveries only (index deliveries_channel_due),
 * with each claimed delivery's event read in the same pass: (*evs)[i] is
 * (*out)[i]'s (NULL when it is missing), each to be freed with
 * hr_event_free(), the array with free(). The caller holds the write lock
 * (a batch) or none. */
herald_status hr_store_claim_channel_events(hr_store *s, const char *channel, long long now,
                                            long long lease_ms, size_t max, hr_claim **out,
                                            herald_event ***evs, size_t *n);

/* Every claim records its process. Put back to pending the deliveries
 * claimed by processes of this machine that no longer run (a daemon killed
 * mid-flight), instead of waiting for their leases to expire; *n says how
 * many. */
herald_status hr_store_reclaim_orphans(hr_store *s, long long now, size_t *n);

/* Claim one pending delivery that was never attempted (the submitting
 * process kept it in memory); *claimed is 0 when it is no longer such. */
herald_status hr_store_claim_delivery(hr_store *s, long long id, long long now,
                                      long long lease_ms, int *claimed);

/* Every channel name with pending, in-flight or deferred deliveries, sorted;
 * a NULL-terminated vector to free with hr_strv_free(). */
herald_status hr_store_channels_due(hr_store *s, char ***out);

typedef struct hr_attempt {
    long long delivery_id;
    long long started_ms;
    long long duration_ms;
    herald_verdict verdict;
    herald_status status;
    long code;
    const char *detail;  /* redacted */
    const char *excerpt; /* response body start, at most HR_EXCERPT_MAX bytes, or NULL */
} hr_attempt;

/* Log an attempt and move its delivery to `state` (pending again with next_at
 * for a retry). */
herald_status hr_store_finish(hr_store *s, const hr_attempt *a, hr_dstate state,
                              long long next_at);

/* Put claimed deliveries back to pending (shutdown). */
herald_status hr_store_release(hr_store *s, const long long *ids, size_t n);

/* Re-queue: one delivery (any final state), or every dead one when id is 0.
 * *n receives how many were re-queued. */
herald_status hr_store_requeue(hr_store *s, long long id, int all_dead, long long now, size_t *n);

/* ---- retention ---- */

typedef struct hr_prune_counts {
    size_t events, deliveries, attempts, receipts;
} hr_prune_counts;

/* Delete, in one transaction, up to max events created before before_ms whose
 * deliveries are all final (sent, failed or dead), with their deliveries and
 * attempts; and up to max processed webhook receipts received before it.
 * cursor ("" to start a pass) is where the pass is: events kept because a
 * delivery is still to make are passed over. Counts are added to *n; *more is set when the
 * pass has more to look at. On error nothing is deleted or counted. */
herald_status hr_store_prune(hr_store *s, long long before_ms, size_t max, char cursor[37],
                             hr_prune_counts *n, int *more);

/* ---- channel state ---- */

/* Count a channel's outcome; returns the consecutive failures after it. */
herald_status hr_store_channel_result(hr_store *s, const char *channel, int ok, int *consecutive);
/* Count a batch of outcomes at once: `reset` when any succeeded, then the
 * failures that came after the last success (or all of them). */
herald_status hr_store_channel_results(hr_store *s, const char *channel, int reset, int failures,
                                       int *consecutive);
herald_status hr_store_channel_disable(hr_store *s, const char *channel, const char *reason,
                                       long long now);
herald_status hr_store_channel_enable(hr_store *s, const char *channel);
/* 1 and the reason (hr_malloc'd) when disabled. */
int hr_store_channel_disabled(hr_store *s, const char *channel, char **reason);

/* ---- reading (log, show, queue, stats) ---- */

typedef struct hr_delivery_row {
    long long id;
    char event_id[37];
    char *event_type;
    char *channel;
    char *recipient;
    hr_dstate state;
    int attempts;
    long long created_ms, updated_ms, next_at;
    herald_status last_status;
    long last_code;
    char *last_detail;
} hr_delivery_row;

typedef struct hr_log_filter {
    const char *channel;
    const char *event_type; /* exact, or glob with '*' */
    int state;              /* -1 for any */
    long long since_ms;     /* 0 for any */
    const char *event_id;
    size_t limit;           /* 0 for 100 */
    const char *tenant;     /* NULL for any */
    long long before_id;    /* cursor: only deliveries with a smaller id; 0 for none */
} hr_log_filter;

herald_status hr_store_log(hr_store *s, const hr_log_filter *f, hr_delivery_row **out, size_t *n);
void hr_delivery_rows_free(hr_delivery_row *r, size_t n);

typedef struct hr_attempt_row {
    long long delivery_id;
    long long started_ms, duration_ms;
    herald_verdict verdict;
    herald_status status;
    long code;
    char *detail;
    char *excerpt;
} hr_attempt_row;

herald_status hr_store_attempts(hr_store *s, long long delivery_id, hr_attempt_row **out,
                                size_t *n);
void hr_attempt_rows_free(hr_attempt_row *r, size_t n);

typedef struct hr_queue_row {
    char *channel;
    long long count[6]; /* by hr_dstate */
    long long oldest_pending_ms; /* created_ms of the oldest pending, 0 if none */
} hr_queue_row;

herald_status hr_store_queue(hr_store *s, hr_queue_row **out, size_t *n);
void hr_queue_rows_free(hr_queue_row *r, size_t n);

typedef struct hr_stats_row {
    char *channel;
    long long sent, failed, dead, attempts;
    double success_rate;     /* sent / (sent + failed + dead), 0 when none */
    double mean_latency_ms;  /* over successful attempts */
    double p95_latency_ms;
} hr_stats_row;

herald_status hr_store_stats(hr_store *s, long long since_ms, hr_stats_row **out, size_t *n);
void hr_stats_rows_free(hr_stats_row *r, size_t n);

/* Statistics of one tenant's deliveries since since_ms, grouped by event type,
 * by channel and by source: processed (reached sent, failed or dead since
 * then), failed (failed or dead), and the durations of every attempt started
 * since then (mean, and p95 by the nearest rank). Deliveries and attempts are
 * joined to their events for the tenant. */
typedef struct hr_tstats_group {
    char *key; /* NULL for the total */
    long long processed, sent, failed, attempts;
    double success_rate; /* sent / processed, 0 when none */
    double mean_ms, p95_ms;
} hr_tstats_group;

typedef struct hr_tenant_stats {
    hr_tstats_group total;
    hr_tstats_group *by_type, *by_channel, *by_source; /* sorted by key */
    size_t ntype, nchannel, nsource;
} hr_tenant_stats;

herald_status hr_store_tenant_stats(hr_store *s, const char *tenant, long long since_ms,
                                    hr_tenant_stats *out);
void hr_tenant_stats_clear(hr_tenant_stats *t);

/* ---- inbound webhooks (hooks.h) ---- */

/* A verified request to POST /v1/hooks/{source}, as stored. */
typedef struct hr_receipt {
    long long id;
    char *source, *message_id;
    char *tenant;  /* NULL: "default" */
    char *headers; /* JSON object text, lowercase names; NULL: {} */
    char *body;    /* the raw body, NUL-terminated past body_len */
    size_t body_len;
    long long received_ms;
} hr_receipt;

/* Store a receipt unless (source, message_id) is stored already: then
 * nothing is written, *duplicate is 1 and *id is the first one's. */
herald_status hr_store_receipt_add(hr_store *s, const hr_receipt *r, long long *id,
                                   int *duplicate);
/* Up to max receipts not processed yet, oldest first. */
herald_status hr_store_receipts_new(hr_store *s, size_t max, hr_receipt **out, size_t *n);
/* A processed receipt: done with the event it became (event_id), or failed
 * (event_id NULL) with error. Only a receipt not processed yet changes. */
herald_status hr_store_receipt_finish(hr_store *s, long long id, const char *event_id,
                                      const char *error, long long now);
void hr_receipts_free(hr_receipt *v, size_t n);

/* A receipt as listed (GET /v1/hooks/{source}/receipts): no headers or body. */
typedef struct hr_receipt_row {
    long long id, received_ms, processed_ms; /* processed_ms 0: not yet */
    int state;                               /* 0 new, 1 done, 2 failed */
    char *message_id, *event_id, *error;     /* event_id, error: NULL when none */
    long long bytes;                         /* of the stored body */
} hr_receipt_row;

/* A source's receipts of one tenant, newest first: those in state (-1: any)
 * with an id below before_id (0: from the newest), at most max. */
herald_status hr_store_receipts_list(hr_store *s, const char *source, const char *tenant,
                                     int state, long long before_id, size_t max,
                                     hr_receipt_row **out, size_t *n);
void hr_receipt_rows_free(hr_receipt_row *v, size_t n);

#endif /* HERALD_STORE_H */
