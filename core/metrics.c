/* metrics.c - heraldd's counters and histograms since it started, in Prometheus' text format. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* Upper bounds in ms (compared exactly as integers) and as the le labels
 * show them. An attempt is bounded by its channel's timeout (30 s at most by
 * default); a delivery can take up to the retry policy's max_age (a day). */
static const long long attempt_le_ms[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
                                          10000, 30000};
static const char *const attempt_le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                         "0.5", "1", "2.5", "5", "10", "30"};
static const long long latency_le_ms[] = {10, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                                          30000, 60000, 300000, 900000, 3600000, 21600000,
                                          86400000};
static const char *const latency_le[] = {"0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
                                         "5", "10", "30", "60", "300", "900", "3600",
                                         "21600", "86400"};
#define MAX_BUCKETS 16
_Static_assert(HR_ARRAY_LEN(attempt_le) == HR_ARRAY_LEN(attempt_le_ms) &&
                   HR_ARRAY_LEN(latency_le) == HR_ARRAY_LEN(latency_le_ms) &&
                   HR_ARRAY_LEN(attempt_le_ms) <= MAX_BUCKETS &&
                   HR_ARRAY_LEN(latency_le_ms) <= MAX_BUCKETS,
               "every bound has its label, and fits a histogram");

typedef struct histo {
    /* bucket[i]: observations in (le[i-1], le[i]]; bucket[nle]: above the
     * last bound. Made cumulative when rendered. */
    unsigned long long bucket[MAX_BUCKETS + 1];
    unsigned long long count;
    long long sum_ms;
} histo;

/* Verdicts, in herald_verdict's order; "continue" never ends an attempt
 * normally but is counted if it does. */
static const char *const verdicts[] = {"ok", "retry", "failed", "disable", "continue"};
#define NVERDICTS 5
static const char *const finals[] = {"sent", "failed", "dead"};

typedef struct chan_m {
    char *key; /* first: the table's key */
    unsigned long long attempts[NVERDICTS];
    unsigned long long finals[3];
    histo duration, latency;
} chan_m;

typedef struct events_m {
    char *key; /* source '\n' tenant */
    char *tenant, *source;
    unsigned long long accepted, duplicates;
} events_m;

/* Open addressing over entries whose first member is their key. */
typedef struct table {
    void **slot;
    size_t cap, n;
} table;

struct hr_metrics {
    pthread_mutex_t mu;
    long long start_ms;
    table chans, events;
};

static size_t hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static const char *key_of(void *e)
{
    return *(char **)e;
}

static void **table_slot(table *t, const char *key)
{
    size_t i = hash(key) & (t->cap - 1);
    while (t->slot[i] && strcmp(key_of(t->slot[i]), key) != 0)
        i = (i + 1) & (t->cap - 1);
    return &t->slot[i];
}

static void *table_get(table *t, const char *key)
{
    return t->cap ? *table_slot(t, key) : NULL;
}

static void table_put(table *t, void *e)
{
    if ((t->n + 1) * 2 > t->cap) {
        table old = *t;
        t->cap = old.cap ? old.cap * 2 : 16;
        t->slot = hr_calloc(t->cap, sizeof *t->slot);
        for (size_t i = 0; i < old.cap; i++)
            if (old.slot[i])
                *table_slot(t, key_of(old.slot[i])) = old.slot[i];
        free(old.slot);
    }
    *table_slot(t, key_of(e)) = e;
    t->n++;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(key_of(*(void *const *)a), key_of(*(void *const *)b));
}

/* The entries sorted by key, so a scrape lists series in a stable order. */
static void **table_sorted(const table *t)
{
    void **v = hr_calloc(t->n ? t->n : 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i])
            v[k++] = t->slot[i];
    qsort(v, k, sizeof *v, by_key);
    return v;
}

hr_metrics *hr_metrics_new(void)
{
    hr_metrics *m = hr_calloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->start_ms = hr_now_ms();
    return m;
}

void hr_metrics_free(hr_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->chans.cap; i++) {
        chan_m *c = m->chans.slot[i];
        if (c) {
            free(c->key);
            free(c);
        }
    }
    for (size_t i = 0; i < m->events.cap; i++) {
        events_m *e = m->events.slot[i];
        if (e) {
            free(e->key);
            free(e->tenant);
            free(e->source);
            free(e);
        }
    }
    free(m->chans.slot);
    free(m->events.slot);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Under mu. */
static chan_m *chan_of(hr_metrics *m, const char *channel)
{
    chan_m *c = table_get(&m->chans, channel);
    if (!c) {
        c = hr_calloc(1, sizeof *c);
        c->key = hr_strdup(channel);
        table_put(&m->chans, c);
    }
    return c;
}

void hr_metrics_channel(hr_metrics *m, const char *channel)
{
    pthread_mutex_lock(&m->mu);
    chan_of(m, channel);
    pthread_mutex_unlock(&m->mu);
}

void hr_metrics_events(hr_metrics *m, const char *tenant, const char *source,
                       unsigned long long accepted, unsigned long long duplicates)
{
    if (!accepted && !duplicates)
        return;
    if (!tenant)
        tenant = "default";
    char key[256];
    snprintf(key, sizeof key, "%s\n%s", source, tenant);
    pthread_mutex_lock(&m->mu);
    events_m *e = table_get(&m->events, key);
    if (!e) {
        e = hr_calloc(1, sizeof *e);
        e->key = hr_strdup(key);
        e->tenant = hr_strdup(tenant);
        e->source = hr_strdup(source);
        table_put(&m->events, e);
    }
    e->accepted += accepted;
    e->duplicates += duplicates;
    pthread_mutex_unlock(&m->mu);
}

static void observe(histo *h, const long long *le_ms, size_t nle, long long ms)
{
    if (ms < 0)
        ms = 0;
    size_t i = 0;
    while (i < nle && ms > le_ms[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_ms += ms;
}

void hr_metrics_attempt(hr_metrics *m, const char *channel, herald_verdict verdict,
                        long long duration_ms, hr_dstate state, long long created_ms,
                        long long now_ms)
{
    int fin = state == HR_D_SENT ? 0 : state == HR_D_FAILED ? 1 : state == HR_D_DEAD ? 2 : -1;
    pthread_mutex_lock(&m->mu);
    chan_m *c = chan_of(m, channel);
    if ((unsigned)verdict < NVERDICTS)
        c->attempts[verdict]++;
    observe(&c->duration, attempt_le_ms, HR_ARRAY_LEN(attempt_le_ms), duration_ms);
    if (fin >= 0) {
        c->finals[fin]++;
        observe(&c->latency, latency_le_ms, HR_ARRAY_LEN(latency_le_ms), now_ms - created_ms);
    }
    pthread_mutex_unlock(&m->mu);
}

void hr_metrics_label(hr_buf *out, const char *v)
{
    const char *run = v;
    for (const char *p = v; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        hr_buf_add(out, run, (size_t)(p - run));
        hr_buf_adds(out, esc);
        run = p + 1;
    }
    hr_buf_adds(out, run);
}

static void series_start(hr_buf *b, const char *name, const char *label, const char *value)
{
    hr_buf_adds(b, name);
    hr_buf_addf(b, "{%s=\"", label);
    hr_metrics_label(b, value);
    hr_buf_adds(b, "\"");
}

/* A channel's histogram: name_bucket per le, then name_sum and name_count. */
static void histo_render(hr_buf *b, const char *name, const char *channel, const histo *h,
                         const char *const *le, size_t nle)
{
    char series[128];
    unsigned long long cum = 0;
    snprintf(series, sizeof series, "%s_bucket", name);
    for (size_t i = 0; i <= nle; i++) {
        cum += h->bucket[i];
        series_start(b, series, "channel", channel);
        hr_buf_addf(b, ",le=\"%s\"} %llu\n", i < nle ? le[i] : "+Inf", cum);
    }
    snprintf(series, sizeof series, "%s_sum", name);
    series_start(b, series, "channel", channel);
    hr_buf_addf(b, "} %lld.%03lld\n", h->sum_ms / 1000, h->sum_ms % 1000);
    snprintf(series, sizeof series, "%s_count", name);
    series_start(b, series, "channel", channel);
    hr_buf_addf(b, "} %llu\n", h->count);
}

/* The tenant-and-source series of one events counter. */
static void events_render(hr_buf *b, const char *name, void **ev, size_t n, int duplicates)
{
    for (size_t i = 0; i < n; i++) {
        events_m *e = ev[i];
        series_start(b, name, "tenant", e->tenant);
        hr_buf_adds(b, ",source=\"");
        hr_metrics_label(b, e->source);
        hr_buf_addf(b, "\"} %llu\n", duplicates ? e->duplicates : e->accepted);
    }
}

void hr_metrics_render(hr_metrics *m, hr_buf *b)
{
    pthread_mutex_lock(&m->mu);
    hr_buf_addf(b, "# HELP herald_start_time_seconds When heraldd started (Unix time); the "
                   "counters below count from then.\n"
                   "# TYPE herald_start_time_seconds gauge\n"
                   "herald_start_time_seconds %lld.%03lld\n",
                m->start_ms / 1000, m->start_ms % 1000);

    void **ev = table_sorted(&m->events);
    hr_buf_adds(b, "# HELP herald_events_accepted_total Events stored, by tenant and by where "
                   "they were submitted (socket, http, hook).\n"
                   "# TYPE herald_events_accepted_total counter\n");
    events_render(b, "herald_events_accepted_total", ev, m->events.n, 0);
    hr_buf_adds(b, "# HELP herald_events_duplicate_total Submissions acknowledged as duplicates "
                   "of an event stored before (same idempotency key), not stored again.\n"
                   "# TYPE herald_events_duplicate_total counter\n");
    events_render(b, "herald_events_duplicate_total", ev, m->events.n, 1);
    free(ev);

    void **ch = table_sorted(&m->chans);
    size_t nch = m->chans.n;
    hr_buf_adds(b, "# HELP herald_attempts_total Delivery attempts recorded, by channel and "
                   "status, the attempt's verdict (ok, retry, failed, disable).\n"
                   "# TYPE herald_attempts_total counter\n");
    for (size_t i = 0; i < nch; i++) {
        chan_m *c = ch[i];
        for (int v = 0; v < NVERDICTS; v++) {
            if (v == HERALD_VERDICT_CONTINUE && !c->attempts[v])
                continue;
            series_start(b, "herald_attempts_total", "channel", c->key);
            hr_buf_addf(b, ",status=\"%s\"} %llu\n", verdicts[v], c->attempts[v]);
        }
    }
    hr_buf_adds(b, "# HELP herald_deliveries_final_total Deliveries that reached a final "
                   "state (sent, failed, dead), by channel.\n"
                   "# TYPE herald_deliveries_final_total counter\n");
    for (size_t i = 0; i < nch; i++) {
        chan_m *c = ch[i];
        for (int f = 0; f < 3; f++) {
            series_start(b, "herald_deliveries_final_total", "channel", c->key);
            hr_buf_addf(b, ",state=\"%s\"} %llu\n", finals[f], c->finals[f]);
        }
    }
    hr_buf_adds(b, "# HELP herald_attempt_duration_seconds How long delivery attempts took, by "
                   "channel.\n"
                   "# TYPE herald_attempt_duration_seconds histogram\n");
    for (size_t i = 0; i < nch; i++) {
        chan_m *c = ch[i];
        histo_render(b, "herald_attempt_duration_seconds", c->key, &c->duration,
                     attempt_le, HR_ARRAY_LEN(attempt_le));
    }
    hr_buf_adds(b, "# HELP herald_delivery_latency_seconds From an event's acceptance to its "
                   "delivery's final state (sent, failed, dead), retries included, by "
                   "channel.\n"
                   "# TYPE herald_delivery_latency_seconds histogram\n");
    for (size_t i = 0; i < nch; i++) {
        chan_m *c = ch[i];
        histo_render(b, "herald_delivery_latency_seconds", c->key, &c->latency,
                     latency_le, HR_ARRAY_LEN(latency_le));
    }
    free(ch);
    pthread_mutex_unlock(&m->mu);
}
