/* metrics.h - heraldd's counters and histograms since it started, for GET /metrics.
 *
 * Kept in memory only: like any Prometheus counter they start from zero when
 * heraldd starts (herald_start_time_seconds tells a scraper so). Every
 * function may be called from any thread; a mutex guards the values, and
 * recording an attempt allocates nothing once its channel has been seen.
 */
#ifndef HERALD_METRICS_H
#define HERALD_METRICS_H

#include "internal.h"
#include "store.h"

typedef struct hr_metrics hr_metrics;

/* Never NULL (aborts without memory, like hr_calloc). */
hr_metrics *hr_metrics_new(void);
void hr_metrics_free(hr_metrics *m);

/* Show a channel's series (at zero) before its first attempt. */
void hr_metrics_channel(hr_metrics *m, const char *channel);

/* Events the daemon stored for tenant (NULL: "default") from source ("socket",
 * "http"), counted once their transaction is committed: accepted new ones,
 * and duplicates (an Idempotency-Key seen before: acknowledged, not stored). */
void hr_metrics_events(hr_metrics *m, const char *tenant, const char *source,
                       unsigned long long accepted, unsigned long long duplicates);

/* A recorded attempt of a delivery of channel, which took duration_ms and
 * left the delivery in state; when that is final (sent, failed, dead), the
 * delivery's latency is counted from created_ms (when its event was accepted)
 * to now. */
void hr_metrics_attempt(hr_metrics *m, const char *channel, herald_verdict verdict,
                        long long duration_ms, hr_dstate state, long long created_ms,
                        long long now_ms);

/* Append every counter and histogram, with HELP and TYPE, in the text
 * exposition format (version 0.0.4). */
void hr_metrics_render(hr_metrics *m, hr_buf *out);

/* Append v as a label value: backslash, double quote and newline escaped. */
void hr_metrics_label(hr_buf *out, const char *v);

#endif /* HERALD_METRICS_H */
