/* dispatch.c - the dispatcher: claims due deliveries, runs them on the engine, applies the
 * retry policy and records every attempt, group-committing the results. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dispatch.h"
#include "webhooks.h"

/* Ad-hoc --to URL deliveries carry their URL as the address of this channel
 * name, which no configured channel can have (':' is not allowed in names). */
#define ADHOC_CHANNEL HR_ADHOC_CHANNEL
#define DEFAULT_LEASE_MS 300000
#define DEFAULT_MAX_INFLIGHT 1024
#define CLAIM_BATCH 256
/* Ad-hoc URL deliveries claimed at once, across all their URLs. */
#define ADHOC_MAX_CONCURRENT 64
/* How often the queue is asked which channels have deliveries waiting, to
 * find those that are no longer configured. */
#define DISCOVER_MS 1000
/* Deliveries accepted by this process and kept in memory, event included,
 * until their channel has room: started from there with a point update
 * instead of a claim query and a reload of the event. */
#define BACKLOG_MAX 4096
/* While a channel's backlog is not empty, the queue in the store (retries,
 * other processes' submissions) still gets a quarter of its room this often. */
#define STORE_SHARE_MS 250
/* Threads that run blocking plugins' attempts, started on first use. */
#define BLOCKING_WORKERS 4

typedef struct chan_rt {
    char *name;        /* channel name, or the URL for ad-hoc channels */
    herald_channel *ch;
    char *open_error;  /* set when the channel cannot be opened */
    hr_retry retry;
    int max_concurrent;
    /* The engine thread's own: transfers running, and jobs handed over
     * beyond max_concurrent waiting for one of them to finish. */
    int eng_running;
    struct djob *eng_head, *eng_tail;
    double max_rate;
    double tokens;
    long long refill_ms;
    int inflight;
    int disabled;
    int reopen; /* a webhook subscription changed: reopen when idle */
    /* Outcomes recorded in the current batch, counted in the store once. */
    int batch_reset, batch_failures, batch_seen;
    char last_failure[512];
    struct backlog_ent *bl_head, *bl_tail;
    long long store_claim_ms; /* last claim from the store */
    struct chan_rt *next;
} chan_rt;

/* An event shared by the offered deliveries of one submission. */
typedef struct shared_ev {
    herald_event ev;
    int refs;
} shared_ev;

typedef struct backlog_ent {
    long long id; /* delivery */
    shared_ev *sh;
    struct chan_rt *rt;
    char *recipient, *address;
    struct backlog_ent *next;
} backlog_ent;

typedef struct djob {
    hr_job job; /* first: the job callback gets this pointer */
    hr_claim claim;
    herald_event *ev;
    shared_ev *shared; /* when ev belongs to it */
    herald_message msg;
    chan_rt *rt;
    long long started_ms;
    struct hr_dispatcher *d;
    struct djob *next;             /* in the finished list */
    struct djob *live_prev, *live_next; /* every job not yet recorded */
} djob;

struct hr_dispatcher {
    hr_config *cfg;
    hr_loader *loader;
    hr_store *store;
    hr_engine *engine; /* used by the engine thread only, once it runs */
    chan_rt *chans;
    djob *live;
    /*
     * Threads: this one claims, records and owns every counter; the engine
     * thread runs the transfers, so the store's work and the network's
     * overlap; blocking plugins run on workers. Jobs cross in these queues
     * (under mu); a finished job wakes this thread through wake_fd.
     */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    djob *io_head, *io_tail;     /* to start on the engine */
    djob *work_head, *work_tail; /* blocking jobs for the workers */
    djob *finished;              /* done, to be recorded */
    int stop;
    int wake_fd;
    pthread_t io_thread;
    int io_running;
    djob *eng_next, *eng_last; /* the engine thread's: queued jobs whose slot came free */
    pthread_t workers[BLOCKING_WORKERS];
    size_t nworkers;
    struct pollfd *pfds;
    unsigned npfds;
    djob *offered; /* fast path: waiting for the submission's commit */
    /* Claimed in the caller's open transaction: started once it commits. */
    hr_claim *claimed;
    herald_event **claimed_ev; /* their events, read in the same transaction */
    size_t nclaimed;
    djob *claimed_bl;
    backlog_ent *bl_pending; /* likewise, for the backlogs */
    size_t backlog;          /* entries in every backlog and bl_pending */
    size_t inflight, max_inflight;
    long long lease_ms;
    uint64_t rng;
    char *only_event;
    int draining; /* no new claims */
    char **due_channels; /* queued channels outside the configuration */
    long long discovered_ms;
    hr_attempt_cb on_attempt;
    void *on_attempt_arg;
    char err[512];
};

hr_dispatcher *hr_dispatcher_new(hr_config *cfg, hr_loader *loader, hr_store *store)
{
    hr_dispatcher *d = hr_calloc(1, sizeof *d);
    d->cfg = cfg;
    d->loader = loader;
    d->store = store;
    d->engine = hr_engine_new();
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->work_cv, NULL);
    if ((d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        abort(); /* only without memory or file descriptors */
    d->max_inflight = DEFAULT_MAX_INFLIGHT;
    d->lease_ms = DEFAULT_LEASE_MS;
    d->rng = (uint64_t)hr_now_ms() ^ (uint64_t)(uintptr_t)d;
    return d;
}

void hr_dispatcher_only_event(hr_dispatcher *d, const char *event_id)
{
    free(d->only_event);
    d->only_event = hr_strdup(event_id);
}

void hr_dispatcher_on_attempt(hr_dispatcher *d, hr_attempt_cb cb, void *arg)
{
    d->on_attempt = cb;
    d->on_attempt_arg = arg;
}

void hr_dispatcher_set_max_inflight(hr_dispatcher *d, size_t n)
{
    d->max_inflight = n ? n : 1;
}

void hr_dispatcher_set_lease(hr_dispatcher *d, long long lease_ms)
{
    d->lease_ms = lease_ms;
}

void hr_dispatcher_drain(hr_dispatcher *d)
{
    d->draining = 1;
}

size_t hr_dispatcher_inflight(const hr_dispatcher *d)
{
    return d->inflight;
}

static chan_rt *chan_new(hr_dispatcher *d, const char *key, hr_channel_conf *cc)
{
    chan_rt *rt = hr_calloc(1, sizeof *rt);
    rt->name = hr_strdup(key);
    rt->retry = cc ? cc->retry : d->cfg->retry;
    rt->max_concurrent = cc ? cc->max_concurrent : 32;
    rt->max_rate = cc ? cc->max_rate : 0;
    rt->tokens = rt->max_rate;
    rt->refill_ms = hr_now_ms();
    rt->next = d->chans;
    d->chans = rt;
    return rt;
}

void hr_dispatcher_adopt(hr_dispatcher *d, const char *key, herald_channel *ch)
{
    chan_rt *rt = chan_new(d, key, hr_config_channel(d->cfg, key));
    rt->ch = ch;
    char *reason = NULL;
    rt->disabled = hr_store_channel_disabled(d->store, key, &reason);
    free(reason);
}

static chan_rt *chan_find(hr_dispatcher *d, const char *key)
{
    for (chan_rt *rt = d->chans; rt; rt = rt->next)
        if (strcmp(rt->name, key) == 0)
            return rt;
    return NULL;
}

static chan_rt *chan_named(hr_dispatcher *d, const char *key);

static chan_rt *chan_get(hr_dispatcher *d, const hr_claim *c)
{
    int adhoc = strcmp(c->channel, ADHOC_CHANNEL) == 0;
    const char *key = adhoc ? (c->address ? c->address : "") : c->channel;
    chan_rt *rt = chan_find(d, key);
    if (rt && !rt->reopen)
        return rt;
    char err[1024];
    if (adhoc) {
        rt = chan_new(d, key, NULL);
        if (hr_channel_open_url(d->loader, "url", key, &rt->ch, err, sizeof err) != HERALD_OK)
            rt->open_error = hr_strdup(err);
        return rt;
    }
    return chan_named(d, key);
}

/* A configured channel's runtime, opened on first use; a name that is not
 * configured gets one whose every attempt fails with the reason. */
/* A webhook subscription's channel, from the store; its own max_attempts. */
static void webhook_open(hr_dispatcher *d, chan_rt *rt)
{
    char err[1024];
    int max_attempts = 0;
    hr_channel_close(rt->ch);
    rt->ch = NULL;
    free(rt->open_error);
    rt->open_error = NULL;
    if (hr_webhook_channel(d->store, d->cfg, d->loader, rt->name, &rt->ch, &max_attempts, err,
                           sizeof err) != HERALD_OK)
        rt->open_error = hr_strdup(err);
    rt->retry = d->cfg->retry;
    if (max_attempts > 0)
        rt->retry.max_attempts = max_attempts;
    rt->reopen = 0;
}

void hr_dispatcher_webhooks_changed(hr_dispatcher *d)
{
    for (chan_rt *rt = d->chans; rt; rt = rt->next)
        if (hr_webhook_is_id(rt->name))
            rt->reopen = 1;
}

static chan_rt *chan_named(hr_dispatcher *d, const char *key)
{
    chan_rt *rt = chan_find(d, key);
    if (rt && rt->reopen && rt->inflight == 0 && !rt->bl_head)
        webhook_open(d, rt);
    if (rt)
        return rt;
    char err[1024];
    hr_channel_conf *cc = hr_config_channel(d->cfg, key);
    rt = chan_new(d, key, cc);
    if (!cc && hr_webhook_is_id(key))
        webhook_open(d, rt);
    else if (!cc)
        rt->open_error = hr_asprintf("channel '%s' is not in the configuration; restore it and "
                                     "run herald retry", key);
    else if (hr_channel_open(d->loader, cc, &rt->ch, err, sizeof err) != HERALD_OK)
        rt->open_error = hr_strdup(err);
    char *reason = NULL;
    rt->disabled = hr_store_channel_disabled(d->store, key, &reason);
    free(reason);
    return rt;
}

/* Token bucket: one token per attempt, max_rate tokens a second, bursts of
 * up to one second's worth. */
static void rate_refill(chan_rt *rt, long long now)
{
    if (rt->max_rate <= 0)
        return;
    rt->tokens += (double)(now - rt->refill_ms) * rt->max_rate / 1000.0;
    rt->refill_ms = now;
    if (rt->tokens > rt->max_rate)
        rt->tokens = rt->max_rate;
}

static int rate_allows(chan_rt *rt, long long now)
{
    if (rt->max_rate <= 0)
        return 1;
    rate_refill(rt, now);
    if (rt->tokens < 1.0)
        return 0;
    rt->tokens -= 1.0;
    return 1;
}

/* Runs on whichever thread finished the job. */
static void job_done(hr_job *j)
{
    djob *dj = (djob *)j;
    hr_dispatcher *d = dj->d;
    pthread_mutex_lock(&d->mu);
    int was_empty = d->finished == NULL;
    dj->next = d->finished;
    d->finished = dj;
    pthread_mutex_unlock(&d->mu);
    /* The dispatcher drains wake_fd before it takes the list, so one wake
     * per non-empty list is enough. */
    if (was_empty) {
        uint64_t one = 1;
        while (write(d->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

static djob *take_finished(hr_dispatcher *d)
{
    uint64_t n;
    while (read(d->wake_fd, &n, sizeof n) > 0 || errno == EINTR)
        ;
    pthread_mutex_lock(&d->mu);
    djob *list = d->finished;
    d->finished = NULL;
    pthread_mutex_unlock(&d->mu);
    return list;
}

/*
 * The dispatcher claims up to twice a channel's max_concurrent, so that the
 * engine always has the next attempt at hand when one finishes rather than
 * waiting for this thread's next round; the engine thread itself keeps to
 * max_concurrent transfers per channel, queueing the rest.
 */
static void engine_job_done(hr_job *j);

static void engine_start(hr_dispatcher *d, djob *dj)
{
    chan_rt *rt = dj->rt;
    if (rt->eng_running >= rt->max_concurrent) { /* set once, before any job */
        if (rt->eng_tail)
            rt->eng_tail->next = dj;
        else
            rt->eng_head = dj;
        rt->eng_tail = dj;
        return;
    }
    rt->eng_running++;
    dj->started_ms = hr_now_ms();
    hr_job_start(&dj->job, d->engine, engine_job_done);
}

/* On the engine thread: the channel's next queued job starts after this
 * round of the engine (not from here: a job failing at once would recurse). */
static void engine_job_done(hr_job *j)
{
    djob *dj = (djob *)j;
    chan_rt *rt = dj->rt;
    hr_dispatcher *d = dj->d;
    rt->eng_running--;
    djob *next = rt->eng_head;
    if (next) { /* moved, in order, to the jobs started after this round */
        if (!(rt->eng_head = next->next))
            rt->eng_tail = NULL;
        next->next = NULL;
        if (d->eng_last)
            d->eng_last->next = next;
        else
            d->eng_next = next;
        d->eng_last = next;
    }
    job_done(j);
}

static void *engine_thread(void *arg)
{
    hr_dispatcher *d = arg;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int stop = d->stop;
        djob *list = d->io_head;
        d->io_head = d->io_tail = NULL;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            return NULL;
        while (list) {
            djob *next = list->next;
            list->next = NULL;
            engine_start(d, list);
            list = next;
        }
        /* hr_dispatcher_free and new jobs wake it early. */
        hr_engine_run(d->engine, 1000);
        djob *freed = d->eng_next;
        d->eng_next = d->eng_last = NULL;
        while (freed) {
            djob *dj = freed;
            freed = dj->next;
            dj->next = NULL;
            engine_start(d, dj);
        }
    }
}

static void *worker_thread(void *arg)
{
    hr_dispatcher *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->stop && !d->work_head)
            pthread_cond_wait(&d->work_cv, &d->mu);
        if (d->stop)
            break;
        djob *dj = d->work_head;
        if (!(d->work_head = dj->next))
            d->work_tail = NULL;
        pthread_mutex_unlock(&d->mu);
        hr_job_start(&dj->job, NULL, job_done); /* the plugin does its own I/O */
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Append the list first..last (which may be empty) to head/tail. */
static void list_append(djob **head, djob **tail, djob *first, djob *last)
{
    if (!first)
        return;
    if (*tail)
        (*tail)->next = first;
    else
        *head = first;
    *tail = last;
}

/* Hand started jobs to the threads that run them. */
static void run_jobs(hr_dispatcher *d, djob *io, djob *io_tail, djob *work, djob *work_tail)
{
    if (io && !d->io_running) {
        if (pthread_create(&d->io_thread, NULL, engine_thread, d) != 0)
            abort();
        d->io_running = 1;
    }
    /* One more worker per job handed over, up to the pool's size. */
    for (djob *w = work; w && d->nworkers < BLOCKING_WORKERS; w = w->next) {
        if (pthread_create(&d->workers[d->nworkers], NULL, worker_thread, d) != 0)
            break; /* the running ones take the work */
        d->nworkers++;
    }
    if (work && !d->nworkers) { /* no thread at all: run them here */
        for (djob *w = work, *next; w; w = next) {
            next = w->next;
            hr_job_start(&w->job, NULL, job_done);
        }
        work = NULL;
    }
    pthread_mutex_lock(&d->mu);
    list_append(&d->io_head, &d->io_tail, io, io_tail);
    list_append(&d->work_head, &d->work_tail, work, work_tail);
    if (work)
        pthread_cond_broadcast(&d->work_cv);
    pthread_mutex_unlock(&d->mu);
    if (io)
        hr_engine_wakeup(d->engine);
}

static void stop_threads(hr_dispatcher *d)
{
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_broadcast(&d->work_cv);
    pthread_mutex_unlock(&d->mu);
    if (d->io_running) {
        hr_engine_wakeup(d->engine);
        pthread_join(d->io_thread, NULL);
        d->io_running = 0;
    }
    for (size_t i = 0; i < d->nworkers; i++)
        pthread_join(d->workers[i], NULL);
    d->nworkers = 0;
}

static void claim_clear(hr_claim *c)
{
    free(c->channel);
    free(c->recipient);
    free(c->address);
    memset(c, 0, sizeof *c);
}

static void live_remove(hr_dispatcher *d, djob *dj)
{
    if (dj->live_prev)
        dj->live_prev->live_next = dj->live_next;
    else
        d->live = dj->live_next;
    if (dj->live_next)
        dj->live_next->live_prev = dj->live_prev;
}

static void live_add(hr_dispatcher *d, djob *dj)
{
    dj->live_next = d->live;
    if (d->live)
        d->live->live_prev = dj;
    d->live = dj;
}

static int is_blocking(const chan_rt *rt)
{
    return (rt->ch->plugin->info->flags & HERALD_PLUGIN_F_BLOCKING) != 0;
}

/* How many of a channel's deliveries may be claimed at once: twice what may
 * run for the engine's channels (see engine_start). */
static int claim_limit(const chan_rt *rt)
{
    return rt->ch && !is_blocking(rt) ? 2 * rt->max_concurrent : rt->max_concurrent;
}

static void shared_unref(shared_ev *sh)
{
    if (--sh->refs == 0) {
        hr_event_clear(&sh->ev);
        free(sh);
    }
}

static void backlog_free(hr_dispatcher *d, backlog_ent *e)
{
    shared_unref(e->sh);
    free(e->recipient);
    free(e->address);
    free(e);
    d->backlog--;
}

static void djob_free(hr_dispatcher *d, djob *dj)
{
    live_remove(d, dj);
    dj->rt->inflight--;
    d->inflight--;
    claim_clear(&dj->claim);
    if (dj->shared)
        shared_unref(dj->shared);
    else
        hr_event_free(dj->ev);
    hr_exchange_clear(&dj->job.ex); /* a job abandoned mid-transfer still owns these */
    hr_response_clear(&dj->job.resp);
    free(dj);
}

/* Put back what cannot start now (channel busy or rate limited): it stays due. */
/* Turn a claim into a job; returns it when it must run, NULL when it is
 * finished already or handed back. */
static djob *start_claim(hr_dispatcher *d, hr_claim *c, herald_event *ev, long long now,
                         long long **release, size_t *nrelease)
{
    chan_rt *rt = chan_get(d, c);
    if (!rt->open_error &&
        (rt->disabled || rt->inflight >= claim_limit(rt) || !rate_allows(rt, now))) {
        *release = hr_realloc(*release, (*nrelease + 1) * sizeof **release);
        (*release)[(*nrelease)++] = c->id;
        claim_clear(c);
        hr_event_free(ev);
        return NULL;
    }
    djob *dj = hr_calloc(1, sizeof *dj);
    dj->claim = *c;
    memset(c, 0, sizeof *c);
    dj->d = d;
    dj->rt = rt;
    dj->started_ms = now;
    live_add(d, dj);
    d->inflight++;
    rt->inflight++;
    dj->ev = ev;
    if (rt->open_error || !dj->ev) {
        /* Cannot attempt: record a retryable failure so nothing is lost. */
        hr_outcome *o = &dj->job.out;
        o->verdict = HERALD_VERDICT_RETRY;
        o->status = rt->open_error ? HERALD_E_CONFIG : HERALD_E_NOT_FOUND;
        snprintf(o->detail, sizeof o->detail, "%s",
                 rt->open_error ? rt->open_error : "event missing from the store");
        job_done(&dj->job);
        return NULL;
    }
    dj->msg.ev = dj->ev;
    dj->msg.address = strcmp(dj->claim.channel, ADHOC_CHANNEL) == 0 ? NULL : dj->claim.address;
    dj->msg.attempt = dj->claim.attempts + 1;
    dj->job.ch = rt->ch;
    dj->job.m = &dj->msg;
    dj->job.purpose = HERALD_PURPOSE_SEND;
    return dj;
}

/* How many of a channel's deliveries could start now. */
static size_t chan_room(hr_dispatcher *d, const char *name, long long now)
{
    if (strcmp(name, ADHOC_CHANNEL) == 0) {
        /* Per-URL limits apply when the claims start. */
        size_t busy = 0;
        for (chan_rt *rt = d->chans; rt; rt = rt->next)
            if (strstr(rt->name, "://"))
                busy += (size_t)rt->inflight;
        return busy < ADHOC_MAX_CONCURRENT ? ADHOC_MAX_CONCURRENT - busy : 0;
    }
    chan_rt *rt = chan_named(d, name);
    if (rt->disabled)
        return 0; /* its deliveries stay pending until it is enabled */
    if (rt->open_error)
        return CLAIM_BATCH; /* each is recorded as a retry at once */
    long room = (long)claim_limit(rt) - rt->inflight;
    if (rt->max_rate > 0) {
        rate_refill(rt, now);
        if ((double)room > rt->tokens)
            room = (long)rt->tokens;
    }
    return room > 0 ? (size_t)room : 0;
}

/* Append k claims (and their events, or NULLs when evs is NULL), taking them. */
static void claims_add(hr_claim **all, herald_event ***allev, size_t *n, hr_claim *c,
                       herald_event **evs, size_t k)
{
    if (!k)
        return;
    *all = hr_realloc(*all, (*n + k) * sizeof **all);
    *allev = hr_realloc(*allev, (*n + k) * sizeof **allev);
    memcpy(*all + *n, c, k * sizeof *c);
    for (size_t i = 0; i < k; i++)
        (*allev)[*n + i] = evs ? evs[i] : NULL;
    *n += k;
    free(c);
    free(evs);
}

/* Claim what the channels have room for: per channel, so that a busy or
 * rate-limited channel's backlog is never claimed only to be handed back. */
static size_t backlog_take(hr_dispatcher *d, chan_rt *rt, size_t max, long long now,
                           djob **jobs);

static void claim_due(hr_dispatcher *d, long long now, hr_claim **all, herald_event ***allev,
                      size_t *nall, djob **bl_jobs)
{
    if (d->draining || d->inflight >= d->max_inflight)
        return;
    size_t want = d->max_inflight - d->inflight;
    if (d->only_event) {
        const char *skip[65];
        size_t ns = 0;
        for (chan_rt *rt = d->chans; rt && ns < HR_ARRAY_LEN(skip) - 1; rt = rt->next)
            if (rt->disabled)
                skip[ns++] = rt->name;
        skip[ns] = NULL;
        hr_claim *c = NULL;
        size_t n = 0;
        if (hr_store_claim(d->store, now, d->lease_ms, want < CLAIM_BATCH ? want : CLAIM_BATCH,
                           skip, d->only_event, &c, &n) != HERALD_OK)
            hr_log(HERALD_LOG_ERROR, "cannot claim deliveries: %s", hr_store_error(d->store));
        claims_add(all, allev, nall, c, NULL, n);
        return;
    }
    if (now - d->discovered_ms >= DISCOVER_MS || now < d->discovered_ms) {
        d->discovered_ms = now;
        size_t back = 0;
        if (hr_store_reclaim_orphans(d->store, now, &back) != HERALD_OK)
            hr_log(HERALD_LOG_ERROR, "%s", hr_store_error(d->store));
        else if (back)
            hr_log(HERALD_LOG_NOTICE, "took back %zu deliveries claimed by a process that is "
                   "gone", back);
        /* `herald channel enable` in another process takes effect here. */
        for (chan_rt *rt = d->chans; rt; rt = rt->next)
            if (rt->disabled)
                rt->disabled = hr_store_channel_disabled(d->store, rt->name, NULL);
        hr_strv_free(d->due_channels);
        d->due_channels = NULL;
        char **names;
        if (hr_store_channels_due(d->store, &names) != HERALD_OK) {
            hr_log(HERALD_LOG_ERROR, "cannot list queued channels: %s", hr_store_error(d->store));
        } else {
            size_t k = 0;
            for (size_t i = 0; names[i]; i++) {
                if (strcmp(names[i], ADHOC_CHANNEL) == 0 || hr_config_channel(d->cfg, names[i]))
                    free(names[i]);
                else
                    names[k++] = names[i];
            }
            names[k] = NULL;
            d->due_channels = names;
        }
    }
    size_t ncfg = d->cfg->nchannels, nextra = 0;
    while (d->due_channels && d->due_channels[nextra])
        nextra++;
    for (size_t i = 0; i < ncfg + 1 + nextra && *nall < want; i++) {
        const char *name = i < ncfg    ? d->cfg->channels[i].name
                           : i == ncfg ? ADHOC_CHANNEL
                                       : d->due_channels[i - ncfg - 1];
        size_t room = chan_room(d, name, now);
        if (room > want - *nall)
            room = want - *nall;
        if (room > CLAIM_BATCH)
            room = CLAIM_BATCH;
        chan_rt *rt = i < ncfg ? chan_find(d, name) : NULL;
        if (rt && rt->bl_head && room) {
            int share = now - rt->store_claim_ms >= STORE_SHARE_MS;
            room -= backlog_take(d, rt, share ? room - (room + 3) / 4 : room, now, bl_jobs);
            if (rt->bl_head && !share)
                room = 0;
        }
        if (rt && room)
            rt->store_claim_ms = now;
        hr_claim *c = NULL;
        herald_event **evs = NULL;
        size_t n = 0;
        if (room && hr_store_claim_channel_events(d->store, name, now, d->lease_ms, room, &c,
                                                  &evs, &n) != HERALD_OK) {
            hr_log(HERALD_LOG_ERROR, "cannot claim deliveries of %s: %s", name,
                   hr_store_error(d->store));
            continue;
        }
        claims_add(all, allev, nall, c, evs, n);
    }
}

/* Hand a list of jobs to the engine thread or, for blocking plugins, to the
 * workers, in list order. */
static void start_jobs(hr_dispatcher *d, djob *list, long long now)
{
    djob *io = NULL, *io_tail = NULL, *work = NULL, *work_tail = NULL;
    while (list) {
        djob *dj = list;
        list = dj->next;
        dj->next = NULL;
        dj->started_ms = now;
        if (is_blocking(dj->rt))
            list_append(&work, &work_tail, dj, dj);
        else
            list_append(&io, &io_tail, dj, dj);
    }
    if (io || work)
        run_jobs(d, io, io_tail, work, work_tail);
}

/* evs[i]: claims[i]'s event (taken), NULL when it could not be read. */
static void start_claims(hr_dispatcher *d, hr_claim *claims, herald_event **evs, size_t n,
                         long long now)
{
    long long *release = NULL;
    size_t nrelease = 0;
    djob *list = NULL, *tail = NULL;
    for (size_t i = 0; i < n; i++) {
        djob *dj = start_claim(d, &claims[i], evs[i], now, &release, &nrelease);
        if (!dj)
            continue;
        dj->next = NULL;
        list_append(&list, &tail, dj, dj);
    }
    start_jobs(d, list, now);
    hr_claims_free(claims, 0); /* every claim was moved into a job or cleared */
    if (nrelease && hr_store_release(d->store, release, nrelease) != HERALD_OK)
        hr_log(HERALD_LOG_ERROR, "cannot release deliveries: %s", hr_store_error(d->store));
    free(release);
}

int hr_dispatcher_reserve(hr_dispatcher *d, const char *channel, long long now,
                          long long *lease_until)
{
    if (d->draining || d->only_event || d->inflight >= d->max_inflight ||
        strcmp(channel, ADHOC_CHANNEL) == 0 ||
        (!hr_config_channel(d->cfg, channel) && !hr_webhook_is_id(channel)))
        return 0;
    chan_rt *rt = chan_named(d, channel);
    if (rt->open_error || rt->disabled || rt->inflight >= claim_limit(rt) ||
        !rate_allows(rt, now))
        return 0;
    rt->inflight++;
    d->inflight++;
    *lease_until = now + d->lease_ms;
    return 1;
}

void hr_dispatcher_unreserve(hr_dispatcher *d, const char *channel)
{
    chan_rt *rt = chan_find(d, channel);
    if (rt) {
        rt->inflight--;
        d->inflight--;
    }
}

/* A job for a delivery accepted in this process, with its event in memory;
 * counted in flight by the caller. */
static djob *djob_from_memory(hr_dispatcher *d, chan_rt *rt, long long id, shared_ev *sh,
                              const char *recipient, const char *address)
{
    djob *dj = hr_calloc(1, sizeof *dj);
    dj->claim.id = id;
    memcpy(dj->claim.event_id, sh->ev.id, sizeof dj->claim.event_id);
    dj->claim.channel = hr_strdup(rt->name);
    dj->claim.recipient = recipient ? hr_strdup(recipient) : NULL;
    dj->claim.address = address ? hr_strdup(address) : NULL;
    dj->claim.created_ms = sh->ev.created_ms;
    dj->d = d;
    dj->rt = rt;
    dj->ev = &sh->ev;
    dj->shared = sh;
    sh->refs++;
    dj->msg.ev = dj->ev;
    dj->msg.address = dj->claim.address;
    dj->msg.attempt = dj->claim.attempts + 1;
    dj->job.ch = rt->ch;
    dj->job.m = &dj->msg;
    dj->job.purpose = HERALD_PURPOSE_SEND;
    live_add(d, dj);
    return dj;
}

/* Whether a pending delivery of this submission can wait in memory. */
static chan_rt *backlog_channel(hr_dispatcher *d, const hr_delivery_new *dn)
{
    if (dn->state != HR_D_PENDING || d->draining || d->only_event ||
        d->backlog >= BACKLOG_MAX || strcmp(dn->channel, ADHOC_CHANNEL) == 0)
        return NULL;
    chan_rt *rt = chan_find(d, dn->channel);
    return rt && !rt->open_error && !rt->disabled && rt->ch ? rt : NULL;
}

void hr_dispatcher_offer(hr_dispatcher *d, herald_event *ev, const hr_delivery_new *dn, size_t n)
{
    shared_ev *sh = NULL;
    for (size_t i = 0; i < n; i++) {
        chan_rt *rt = dn[i].state == HR_D_INFLIGHT ? chan_find(d, dn[i].channel)
                                                   : backlog_channel(d, &dn[i]);
        if (!rt)
            continue;
        if (!sh) {
            sh = hr_calloc(1, sizeof *sh);
            sh->ev = *ev;
            /* The caller keeps the id and time, not the strings. */
            herald_event kept = {.created_ms = ev->created_ms};
            memcpy(kept.id, ev->id, sizeof kept.id);
            memcpy(kept.timestamp, ev->timestamp, sizeof kept.timestamp);
            *ev = kept;
        }
        if (dn[i].state == HR_D_INFLIGHT) {
            /* counted in flight by hr_dispatcher_reserve() */
            djob *dj = djob_from_memory(d, rt, dn[i].id, sh, dn[i].recipient, dn[i].address);
            dj->next = d->offered;
            d->offered = dj;
            continue;
        }
        backlog_ent *e = hr_calloc(1, sizeof *e);
        e->id = dn[i].id;
        e->sh = sh;
        sh->refs++;
        e->rt = rt;
        e->recipient = dn[i].recipient ? hr_strdup(dn[i].recipient) : NULL;
        e->address = dn[i].address ? hr_strdup(dn[i].address) : NULL;
        e->next = d->bl_pending;
        d->bl_pending = e;
        d->backlog++;
    }
}

/* Start up to max of the channel's backlog: each is claimed in the store
 * with a point update (it may have been claimed from the store meanwhile,
 * by this or another process: then it is dropped). Returns how many. */
static size_t backlog_take(hr_dispatcher *d, chan_rt *rt, size_t max, long long now,
                           djob **jobs)
{
    size_t taken = 0;
    while (taken < max && rt->bl_head) {
        backlog_ent *e = rt->bl_head;
        if (!(rt->bl_head = e->next))
            rt->bl_tail = NULL;
        int claimed = 0;
        if (hr_store_claim_delivery(d->store, e->id, now, d->lease_ms, &claimed) != HERALD_OK)
            hr_log(HERALD_LOG_ERROR, "cannot claim delivery %lld: %s", e->id,
                   hr_store_error(d->store));
        if (claimed) {
            djob *dj = djob_from_memory(d, rt, e->id, e->sh, e->recipient, e->address);
            d->inflight++;
            rt->inflight++;
            rate_allows(rt, now);
            dj->next = *jobs;
            *jobs = dj;
            taken++;
        }
        backlog_free(d, e);
    }
    return taken;
}

static void start_claimed(hr_dispatcher *d, int committed);

void hr_dispatcher_commit_offers(hr_dispatcher *d, int committed)
{
    /* Reverse the pending list so each backlog stays in submission order. */
    backlog_ent *rev = NULL;
    while (d->bl_pending) {
        backlog_ent *e = d->bl_pending;
        d->bl_pending = e->next;
        e->next = rev;
        rev = e;
    }
    while (rev) {
        backlog_ent *e = rev;
        rev = e->next;
        e->next = NULL;
        if (!committed) {
            backlog_free(d, e);
            continue;
        }
        if (e->rt->bl_tail)
            e->rt->bl_tail->next = e;
        else
            e->rt->bl_head = e;
        e->rt->bl_tail = e;
    }
    start_claimed(d, committed);
    djob *list = d->offered;
    d->offered = NULL;
    if (committed) {
        start_jobs(d, list, hr_now_ms());
        return;
    }
    while (list) {
        djob *next = list->next;
        djob_free(d, list);
        list = next;
    }
}

/* Turn a finished attempt into the delivery's next state. */
static hr_dstate decide(hr_dispatcher *d, djob *dj, long long now, long long *next_at)
{
    const hr_outcome *o = &dj->job.out;
    *next_at = 0;
    switch (o->verdict) {
    case HERALD_VERDICT_OK:
        return HR_D_SENT;
    case HERALD_VERDICT_FAILED:
    case HERALD_VERDICT_DISABLE:
    case HERALD_VERDICT_CONTINUE:
        return HR_D_FAILED;
    case HERALD_VERDICT_RETRY:
        break;
    }
    int done = dj->claim.attempts + 1;
    long long at = hr_retry_next(&dj->rt->retry, done, dj->ev ? dj->ev->created_ms
                                                              : dj->claim.created_ms,
                                 now, o->retry_at, &d->rng);
    if (at < 0)
        return HR_D_DEAD;
    *next_at = at;
    return HR_D_PENDING;
}

static void disable_channel(hr_dispatcher *d, chan_rt *rt, const char *reason, long long now)
{
    if (rt->disabled || strcmp(rt->name, ADHOC_CHANNEL) == 0 || strstr(rt->name, "://"))
        return;
    rt->disabled = 1;
    if (hr_store_channel_disable(d->store, rt->name, reason, now) != HERALD_OK) {
        hr_log(HERALD_LOG_ERROR, "cannot disable channel %s: %s", rt->name,
               hr_store_error(d->store));
        return;
    }
    hr_log(HERALD_LOG_ERROR, "channel '%s' disabled: %s; run herald channel enable %s once "
           "fixed", rt->name, reason, rt->name);
    /* Tell the operator through every other channel. */
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = hr_strdup("herald.channel.disabled");
    ev.severity = HERALD_SEVERITY_ERROR;
    ev.title = hr_asprintf("herald disabled channel %s", rt->name);
    ev.body = hr_strdup(reason);
    ev.source = hr_strdup("heraldd");
    ev.fields = hr_calloc(1, sizeof *ev.fields);
    ev.fields[0].name = hr_strdup("channel");
    ev.fields[0].value = hr_strdup(rt->name);
    ev.nfields = 1;
    hr_event_stamp(&ev);
    hr_delivery_new *dn = hr_calloc(d->cfg->nchannels ? d->cfg->nchannels : 1, sizeof *dn);
    size_t n = 0;
    for (size_t i = 0; i < d->cfg->nchannels; i++) {
        if (strcmp(d->cfg->channels[i].name, rt->name) == 0)
            continue;
        dn[n].channel = d->cfg->channels[i].name;
        dn[n].next_at = now;
        dn[n].state = HR_D_PENDING;
        n++;
    }
    int dup = 0;
    if (n && hr_store_submit(d->store, &ev, dn, n, 0, &dup) != HERALD_OK)
        hr_log(HERALD_LOG_ERROR, "cannot queue herald.channel.disabled: %s",
               hr_store_error(d->store));
    free(dn);
    hr_event_clear(&ev);
}

static void record(hr_dispatcher *d, djob *dj, long long now)
{
    const hr_outcome *o = &dj->job.out;
    long long next_at;
    hr_dstate st = decide(d, dj, now, &next_at);
    hr_attempt a = {
        .delivery_id = dj->claim.id,
        .started_ms = dj->started_ms,
        .duration_ms = o->elapsed_ms,
        .verdict = o->verdict,
        .status = o->status,
        .code = o->code,
        .detail = o->detail,
        .excerpt = o->excerpt[0] ? o->excerpt : NULL,
    };
    if (hr_store_finish(d->store, &a, st, next_at) != HERALD_OK) {
        hr_log(HERALD_LOG_ERROR, "cannot record attempt of delivery %lld: %s", dj->claim.id,
               hr_store_error(d->store));
        return;
    }
    chan_rt *rt = dj->rt;
    if (!rt->open_error) {
        rt->batch_seen = 1;
        if (o->verdict == HERALD_VERDICT_OK) {
            rt->batch_reset = 1;
            rt->batch_failures = 0;
        } else {
            rt->batch_failures++;
            snprintf(rt->last_failure, sizeof rt->last_failure, "%s", o->detail);
        }
        if (o->verdict == HERALD_VERDICT_DISABLE)
            disable_channel(d, rt, o->detail, now);
    }
    if (d->on_attempt)
        d->on_attempt(d->on_attempt_arg, &dj->claim, o, st, next_at);
}

/* Count each channel's outcomes of this batch in the store, once per channel,
 * and disable a channel whose failure streak reached its limit. */
static void count_results(hr_dispatcher *d, long long now)
{
    for (chan_rt *rt = d->chans; rt; rt = rt->next) {
        if (!rt->batch_seen)
            continue;
        int consecutive = 0;
        if (hr_store_channel_results(d->store, rt->name, rt->batch_reset, rt->batch_failures,
                                     &consecutive) != HERALD_OK)
            hr_log(HERALD_LOG_ERROR, "cannot count results of channel %s: %s", rt->name,
                   hr_store_error(d->store));
        else if (rt->batch_failures && rt->retry.disable_after > 0 &&
                 consecutive >= rt->retry.disable_after) {
            char reason[700];
            snprintf(reason, sizeof reason, "%d consecutive failures, the last: %s", consecutive,
                     rt->last_failure);
            disable_channel(d, rt, reason, now);
        }
        rt->batch_seen = rt->batch_reset = rt->batch_failures = 0;
    }
}

/* Record every finished attempt and claim what can start next, in the
 * transaction that is open; the claims wait in d->claimed until it ends. */
void hr_dispatcher_collect(hr_dispatcher *d)
{
    long long now = hr_now_ms();
    djob *list = take_finished(d);
    for (djob *dj = list; dj; dj = dj->next)
        record(d, dj, now);
    if (list)
        count_results(d, now);
    while (list) {
        djob *next = list->next;
        djob_free(d, list);
        list = next;
    }
    size_t first = d->nclaimed;
    claim_due(d, now, &d->claimed, &d->claimed_ev, &d->nclaimed, &d->claimed_bl);
    /* Events the claim did not bring along are read now, in the open
     * transaction, rather than each on its own after the commit. */
    for (size_t i = first; i < d->nclaimed; i++)
        if (!d->claimed_ev[i] &&
            !(d->claimed_ev[i] = hr_store_event(d->store, d->claimed[i].event_id)))
            hr_log(HERALD_LOG_WARNING, "cannot read event %s of delivery %lld: %s",
                   d->claimed[i].event_id, d->claimed[i].id, hr_store_error(d->store));
}

/* Start what was claimed in the transaction that ended, or forget it when it
 * rolled back (the rows are pending again). */
static void start_claimed(hr_dispatcher *d, int committed)
{
    djob *bl = d->claimed_bl;
    hr_claim *claims = d->claimed;
    herald_event **evs = d->claimed_ev;
    size_t n = d->nclaimed;
    d->claimed_bl = NULL;
    d->claimed = NULL;
    d->claimed_ev = NULL;
    d->nclaimed = 0;
    if (!committed) {
        hr_claims_free(claims, n);
        for (size_t i = 0; i < n; i++)
            hr_event_free(evs[i]);
        free(evs);
        while (bl) {
            djob *next = bl->next;
            djob_free(d, bl);
            bl = next;
        }
        return;
    }
    long long now = hr_now_ms();
    start_jobs(d, bl, now);
    if (n)
        start_claims(d, claims, evs, n, now);
    else
        free(claims);
    free(evs);
}

/* The same in a transaction of its own. */
static void record_and_claim(hr_dispatcher *d)
{
    int tx = hr_store_begin_batch(d->store) == HERALD_OK;
    if (!tx)
        hr_log(HERALD_LOG_ERROR, "cannot start a transaction: %s", hr_store_error(d->store));
    hr_dispatcher_collect(d);
    int committed = 1;
    if (tx && hr_store_commit(d->store) != HERALD_OK) {
        hr_log(HERALD_LOG_ERROR, "cannot commit attempts and claims: %s",
               hr_store_error(d->store));
        committed = 0;
    }
    start_claimed(d, committed);
}

int hr_dispatcher_wait(hr_dispatcher *d, int timeout_ms, struct pollfd *fds, unsigned nfds)
{
    if (nfds + 1 > d->npfds) {
        d->pfds = hr_realloc(d->pfds, (nfds + 1) * sizeof *d->pfds);
        d->npfds = nfds + 1;
    }
    if (nfds)
        memcpy(d->pfds, fds, nfds * sizeof *fds);
    d->pfds[nfds].fd = d->wake_fd;
    d->pfds[nfds].events = POLLIN;
    for (unsigned i = 0; i <= nfds; i++)
        d->pfds[i].revents = 0;
    if (poll(d->pfds, nfds + 1, timeout_ms) < 0 && errno != EINTR)
        hr_log(HERALD_LOG_ERROR, "poll: %s", strerror(errno));
    for (unsigned i = 0; i < nfds; i++)
        fds[i].revents = d->pfds[i].revents;
    return (d->pfds[nfds].revents & POLLIN) != 0;
}

int hr_dispatcher_step(hr_dispatcher *d, int timeout_ms, struct pollfd *fds, unsigned nfds)
{
    record_and_claim(d);
    /* Attempts finished while waiting: record them (and refill their slots)
     * now, so a caller waiting for them does not wait another round. */
    if (hr_dispatcher_wait(d, timeout_ms, fds, nfds))
        record_and_claim(d);
    return (int)d->inflight;
}

void hr_dispatcher_free(hr_dispatcher *d)
{
    if (!d)
        return;
    /* Transfers still running are abandoned; their claims go back to pending
     * now rather than when the lease expires. */
    stop_threads(d);
    hr_engine_free(d->engine);
    d->engine = NULL;
    d->draining = 1;
    record_and_claim(d);
    if (d->live) {
        size_t n = 0;
        long long *ids = hr_calloc(d->inflight, sizeof *ids);
        for (djob *dj = d->live; dj; dj = dj->live_next)
            ids[n++] = dj->claim.id;
        if (hr_store_release(d->store, ids, n) != HERALD_OK)
            hr_log(HERALD_LOG_ERROR, "cannot release deliveries: %s", hr_store_error(d->store));
        free(ids);
        while (d->live)
            djob_free(d, d->live);
    }
    while (d->bl_pending) {
        backlog_ent *e = d->bl_pending;
        d->bl_pending = e->next;
        backlog_free(d, e);
    }
    for (chan_rt *rt = d->chans; rt; rt = rt->next)
        while (rt->bl_head) {
            backlog_ent *e = rt->bl_head;
            rt->bl_head = e->next;
            backlog_free(d, e);
        }
    for (chan_rt *rt = d->chans, *next; rt; rt = next) {
        next = rt->next;
        hr_channel_close(rt->ch);
        free(rt->open_error);
        free(rt->name);
        free(rt);
    }
    free(d->only_event);
    hr_strv_free(d->due_channels);
    free(d->pfds);
    close(d->wake_fd);
    pthread_cond_destroy(&d->work_cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
