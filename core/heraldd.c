/* heraldd.c - the daemon: accepts events on a Unix socket, delivers and retries them in the
 * background, reloads its configuration on SIGHUP and drains on SIGTERM. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "dispatch.h"
#include "internal.h"
#include "store.h"
#include "hooks.h"
#include "http_api.h"
#include "metrics.h"
#include "submit.h"

#define MAX_CLIENTS 256
#define MAX_LINE (4 * 1024 * 1024) /* a request line; events are far smaller */
#define IDLE_POLL_MS 200
#define DRAIN_MS 10000
#define WAIT_CHECK_MS 50

#define CHECKPOINT_MS 100

#define HOOKS_BATCH 64        /* webhook receipts turned into events per round */
#define HOOKS_RETRY_MS 1000   /* after the store failed to */

#define PRUNE_BATCH 500                  /* expired events deleted per transaction */
#define PRUNE_STEP_MS 20                 /* between a pass's transactions */
#define PRUNE_RETRY_MS 60000             /* after the store failed to */
#define PRUNE_EVERY_MS (10 * 60 * 1000)  /* between passes, at most */

static volatile sig_atomic_t got_term, got_hup;

/* WAL checkpoints on their own connection and thread, so the thread that
 * accepts and records never stops to copy pages into the database file. */
typedef struct checkpointer {
    hr_store *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
} checkpointer;

static void *checkpoint_main(void *arg)
{
    checkpointer *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += CHECKPOINT_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&k->cv, &k->mu, &until);
        if (k->stop)
            break;
        pthread_mutex_unlock(&k->mu);
        if (hr_store_checkpoint(k->store) != HERALD_OK)
            hr_log(HERALD_LOG_WARNING, "%s", hr_store_error(k->store));
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* 0 when the checkpoints stay with the writer (no second connection). */
static int checkpointer_start(checkpointer *k, const char *db, hr_store *writer)
{
    char err[512];
    if (hr_store_open(db, &k->store, err, sizeof err) != HERALD_OK) {
        hr_log(HERALD_LOG_WARNING, "checkpoints stay on the main thread: %s", err);
        return 0;
    }
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    if (pthread_create(&k->thread, NULL, checkpoint_main, k) != 0) {
        hr_store_close(k->store);
        return 0;
    }
    hr_store_autocheckpoint(writer, 0);
    return 1;
}

static void checkpointer_stop(checkpointer *k)
{
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    hr_store_checkpoint(k->store);
    hr_store_close(k->store);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
}

typedef struct client {
    int fd;
    hr_buf in;
    /* Replies not yet sent. Those of the current round start at round_start:
     * they are only sent once the round's transaction is committed. */
    hr_buf out;
    size_t round_start, round_n;
    /* An outstanding "wait" request. */
    char wait_id[37];
    long long wait_deadline;
    long long wait_checked;
    struct client *next;
} client;

typedef struct daemon {
    const char *config_path;
    hr_config *cfg;
    hr_loader *loader;
    hr_store *store;
    hr_dispatcher *d;
    hr_dispatcher *old; /* draining after a reload */
    hr_config *old_cfg;
    hr_loader *old_loader;
    hr_routing *routing;
    hr_hooks *hooks;           /* inbound webhook sources, replaced on reload */
    int hooks_due;             /* receipts may wait to become events */
    long long hooks_retry_ms;  /* not before then: the store failed */
    long long prune_next_ms;   /* retention: when the next batch is due */
    char prune_cursor[37];     /* where the pass is ("" between passes) */
    hr_prune_counts pruned;    /* what the pass deleted so far */
    hr_api *api;
    hr_metrics *metrics;
    /* Socket submissions of the round, counted in metrics once committed. */
    unsigned long long round_accepted, round_duplicates;
    int tx;       /* the round's transaction is open */
    int draining; /* stopping: /readyz says no */
    size_t inflight_budget;
    long long dir_version;    /* the store's directory version routing was built from */
    long long dir_checked_ms; /* when it was last compared */
    int lfd;
    char *sock_path;
    client *clients;
    size_t nclients;
} daemon_t;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        got_hup = 1;
    else
        got_term = 1;
}

/* systemd's readiness protocol: one datagram to $NOTIFY_SOCKET. */
static void sd_notify_state(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        hr_log(HERALD_LOG_DEBUG, "sd_notify: %s", strerror(errno));
    close(fd);
}

static const char *socket_path(const hr_config *cfg)
{
    return cfg->socket ? cfg->socket : HERALD_RUNSTATEDIR "/herald/heraldd.sock";
}

static int listen_socket(const char *path, const hr_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "socket path %s is too long (max %zu bytes)", path,
                 sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* A stale socket from a crashed daemon is replaced; a live one is not. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        snprintf(err, errlen, "another heraldd is already listening on %s", path);
        close(fd);
        return -1;
    }
    unlink(path);
    mode_t old = umask(0117); /* 0660 until chmod below says otherwise */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s; create its directory or set socket in "
                 "the config", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* Who may submit is who may open the socket. */
    if (chmod(path, cfg->socket_mode) != 0 ||
        (cfg->socket_gid >= 0 && chown(path, (uid_t)-1, (gid_t)cfg->socket_gid) != 0)) {
        snprintf(err, errlen, "cannot set the mode or group of %s: %s; run heraldd as root or "
                 "as a member of socket_group", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static void reply(client *c, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        s = hr_strdup("{\"ok\":false,\"code\":2,\"error\":\"out of memory\"}");
    hr_buf_adds(&c->out, s);
    hr_buf_add(&c->out, "\n", 1);
    free(s);
}

/* Send what the socket takes now; the rest waits for POLLOUT. 0 when the
 * client is gone. */
static int client_flush(client *c)
{
    size_t off = 0;
    while (off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return 0;
        off += (size_t)n;
    }
    if (off) {
        memmove(c->out.data, c->out.data + off, c->out.len - off);
        c->out.len -= off;
    }
    return 1;
}

static json_t *error_reply(int code, const char *msg)
{
    char *clean = hr_redact(msg);
    json_t *o = json_pack("{s:b, s:i, s:s}", "ok", 0, "code", code, "error", clean);
    free(clean);
    return o;
}

/* Final when every delivery of the event is sent, failed or dead. */
static json_t *event_status(daemon_t *dm, const char *id, int *final)
{
    hr_log_filter f = {.state = -1, .event_id = id, .limit = 1000};
    hr_delivery_row *rows = NULL;
    size_t n = 0;
    *final = 1;
    json_t *arr = json_array();
    if (hr_store_log(dm->store, &f, &rows, &n) != HERALD_OK)
        return arr;
    for (size_t i = 0; i < n; i++) {
        hr_delivery_row *r = &rows[i];
        if (r->state != HR_D_SENT && r->state != HR_D_FAILED && r->state != HR_D_DEAD)
            *final = 0;
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:i, s:s, s:I, s:s, s:o}", "delivery", (json_int_t)r->id,
                           "channel", r->channel, "state", hr_dstate_name(r->state), "attempts",
                           r->attempts, "status", hr_status_name(r->last_status), "code",
                           (json_int_t)r->last_code, "detail",
                           r->last_detail ? r->last_detail : "", "next_at",
                           r->state == HR_D_PENDING ? json_integer(r->next_at) : json_null()));
    }
    hr_delivery_rows_free(rows, n);
    return arr;
}

static void handle_submit(daemon_t *dm, client *c, json_t *req)
{
    herald_event ev;
    char err[1024];
    if (hr_event_from_json(json_object_get(req, "event"), &ev, err, sizeof err) != HERALD_OK) {
        reply(c, error_reply(2, err));
        return;
    }
    json_t *to = json_object_get(req, "to");
    size_t nto = json_is_array(to) ? json_array_size(to) : 0;
    char **names = hr_calloc(nto ? nto : 1, sizeof *names);
    for (size_t i = 0; i < nto; i++) {
        json_t *v = json_array_get(to, i);
        if (!json_is_string(v)) {
            reply(c, error_reply(2, "'to' must be a list of channel names or URLs"));
            free(names);
            hr_event_clear(&ev);
            return;
        }
        names[i] = (char *)json_string_value(v);
    }
    int duplicate = 0;
    herald_status st = hr_submit(dm->cfg, dm->loader, dm->routing, dm->store, dm->d, &ev, names, nto,
                                 &duplicate, err, sizeof err);
    free(names);
    if (st != HERALD_OK) {
        reply(c, error_reply(st == HERALD_E_NOT_FOUND && nto == 0 ? 3 : 2, err));
    } else {
        if (duplicate)
            dm->round_duplicates++;
        else
            dm->round_accepted++;
        /* The hot path's reply, without building a JSON tree (the id is hex and dashes). */
        hr_buf_addf(&c->out, "{\"ok\":true,\"id\":\"%s\",\"duplicate\":%s}\n", ev.id,
                    duplicate ? "true" : "false");
    }
    hr_event_clear(&ev);
}

static void handle_line(daemon_t *dm, client *c, const char *line)
{
    c->round_n++;
    json_error_t jerr;
    json_t *req = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(req)) {
        char msg[256];
        snprintf(msg, sizeof msg, "request is not a JSON object (%s)", jerr.text);
        reply(c, error_reply(2, msg));
        json_decref(req);
        return;
    }
    const char *op = json_string_value(json_object_get(req, "op"));
    if (hr_streq(op, "ping")) {
        reply(c, json_pack("{s:b, s:s}", "ok", 1, "version", HERALD_VERSION));
    } else if (hr_streq(op, "submit")) {
        handle_submit(dm, c, req);
    } else if (hr_streq(op, "wait")) {
        const char *id = json_string_value(json_object_get(req, "id"));
        json_int_t ms = json_integer_value(json_object_get(req, "timeout_ms"));
        if (!id || strlen(id) != 36) {
            reply(c, error_reply(2, "wait needs the event id"));
        } else {
            snprintf(c->wait_id, sizeof c->wait_id, "%s", id);
            c->wait_deadline = hr_now_ms() + (ms > 0 ? ms : 300000);
            c->wait_checked = 0;
        }
    } else {
        reply(c, error_reply(2, "unknown op; use submit, wait or ping"));
    }
    json_decref(req);
}

static void client_close(daemon_t *dm, client *c)
{
    hr_buf_free(&c->out);
    client **pp = &dm->clients;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    close(c->fd);
    hr_buf_free(&c->in);
    free(c);
    dm->nclients--;
}

/* Read what the client sent; handle complete lines. 0 when it must go. */
static int client_read(daemon_t *dm, client *c)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return 0;
        hr_buf_add(&c->in, chunk, (size_t)n);
        if (c->in.len > MAX_LINE && !memchr(c->in.data, '\n', c->in.len)) {
            reply(c, error_reply(2, "request line over 4 MiB"));
            client_flush(c);
            return 0;
        }
    }
    size_t start = 0;
    for (;;) {
        char *nl = c->in.data ? memchr(c->in.data + start, '\n', c->in.len - start) : NULL;
        if (!nl)
            break;
        *nl = '\0';
        if (nl > c->in.data + start)
            handle_line(dm, c, c->in.data + start);
        start = (size_t)(nl - c->in.data) + 1;
    }
    if (start) {
        memmove(c->in.data, c->in.data + start, c->in.len - start);
        c->in.len -= start;
        c->in.data[c->in.len] = '\0';
    }
    return 1;
}

static void check_waits(daemon_t *dm, long long now)
{
    for (client *c = dm->clients, *next; c; c = next) {
        next = c->next;
        if (!c->wait_id[0] || now - c->wait_checked < WAIT_CHECK_MS)
            continue;
        c->wait_checked = now;
        int final;
        json_t *arr = event_status(dm, c->wait_id, &final);
        if (final || now >= c->wait_deadline) {
            reply(c, json_pack("{s:b, s:s, s:b, s:o}", "ok", 1, "id", c->wait_id, "final", final,
                               "deliveries", arr));
            c->wait_id[0] = '\0';
        } else {
            json_decref(arr);
        }
    }
}

/* Where deliveries may connect, as the configuration says: the whole policy,
 * then each channel that adds deny or allow entries of its own. */
static void log_policy(const hr_config *cfg)
{
    char *text = hr_policy_describe(&cfg->outbound);
    hr_log(HERALD_LOG_INFO, "outbound policy: %s", text);
    free(text);
    for (size_t i = 0; i < cfg->nchannels; i++) {
        if (!cfg->channels[i].own_policy)
            continue;
        text = hr_policy_describe(&cfg->channels[i].policy);
        hr_log(HERALD_LOG_INFO, "outbound policy of channel '%s': %s", cfg->channels[i].name,
               text);
        free(text);
    }
}

/* Load the configuration and open every channel so a bad one fails now. */
static herald_status load(daemon_t *dm, hr_config **cfg, hr_loader **loader,
                          hr_routing **routing, hr_hooks **hooks, char *err, size_t errlen)
{
    herald_status st = hr_config_load(dm->config_path, cfg, err, errlen);
    if (st != HERALD_OK)
        return st;
    *loader = hr_loader_new((*cfg)->plugin_path);
    for (size_t i = 0; i < (*cfg)->nchannels; i++) {
        herald_channel *ch;
        if ((st = hr_channel_open(*loader, &(*cfg)->channels[i], &ch, err, errlen)) != HERALD_OK)
            break;
        hr_channel_close(ch);
    }
    if (st == HERALD_OK)
        st = hr_routing_load(routing, *cfg, *loader, dm->store, err, errlen);
    if (st == HERALD_OK && (st = hr_hooks_load(*cfg, hooks, err, errlen)) != HERALD_OK)
        hr_routing_free(*routing);
    if (st != HERALD_OK) {
        hr_loader_free(*loader);
        hr_config_free(*cfg);
    }
    return st;
}

/* Rebuild routing when `herald user|prefs|group` changed the store's
 * directory; checked once a second. A rebuild that fails keeps the old one. */
static void refresh_directory(daemon_t *dm, int force)
{
    long long now = hr_now_ms();
    if (!force && now - dm->dir_checked_ms < 1000)
        return;
    dm->dir_checked_ms = now;
    long long v = hr_store_directory_version(dm->store);
    if (!force && v == dm->dir_version)
        return;
    hr_routing *r;
    char err[1024];
    if (hr_routing_load(&r, dm->cfg, dm->loader, dm->store, err, sizeof err) != HERALD_OK) {
        hr_log(HERALD_LOG_ERROR, "users or preferences changed, but routing cannot use them, "
               "keeping the previous routing: %s", err);
        dm->dir_version = v;
        return;
    }
    hr_routing_free(dm->routing);
    dm->routing = r;
    if (dm->d)
        hr_dispatcher_webhooks_changed(dm->d);
    if (!force)
        hr_log(HERALD_LOG_INFO, "users and preferences reloaded (directory version %lld)", v);
    dm->dir_version = v;
}

/* Attempts in flight are sockets: a destination that hangs holds its
 * channel's max_concurrent of them until the timeout. With the soft limit of
 * 1,024 descriptors, 100 such destinations (32 each) would take every slot
 * and starve the fast ones; so the soft limit goes up to the hard one (up to
 * 65,536) and the in-flight budget follows it, keeping room for clients,
 * the database and the API. */
static size_t raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    long long room = (long long)rl.rlim_cur - 1024 - MAX_CLIENTS;
    return room < 256 ? 256 : room > 8192 ? 8192 : (size_t)room;
}

static int api_begin(void *ctx)
{
    daemon_t *dm = ctx;
    if (!dm->tx)
        dm->tx = hr_store_begin_batch(dm->store) == HERALD_OK;
    return dm->tx;
}

static json_t *api_status(void *ctx, const char *id, int *final)
{
    return event_status(ctx, id, final);
}

static void refresh_directory(daemon_t *dm, int force);

static void api_changed(void *ctx)
{
    refresh_directory(ctx, 1);
}

static void on_attempt(void *arg, const hr_claim *c, const hr_outcome *o, hr_dstate state,
                       long long next_at)
{
    (void)next_at;
    hr_metrics_attempt(arg, c->channel, o->verdict, o->elapsed_ms, state, c->created_ms,
                       hr_now_ms());
}

/* A dispatcher for the current configuration, its attempts counted in metrics. */
static hr_dispatcher *new_dispatcher(daemon_t *dm)
{
    hr_dispatcher *d = hr_dispatcher_new(dm->cfg, dm->loader, dm->store);
    hr_dispatcher_set_max_inflight(d, dm->inflight_budget);
    hr_dispatcher_on_attempt(d, on_attempt, dm->metrics);
    for (size_t i = 0; i < dm->cfg->nchannels; i++)
        hr_metrics_channel(dm->metrics, dm->cfg->channels[i].name);
    return d;
}

static void reload(daemon_t *dm)
{
    sd_notify_state("RELOADING=1");
    hr_config *cfg;
    hr_loader *loader;
    hr_routing *routing;
    hr_hooks *hooks;
    char err[1024];
    if (load(dm, &cfg, &loader, &routing, &hooks, err, sizeof err) != HERALD_OK) {
        hr_log(HERALD_LOG_ERROR, "reload refused, keeping the running configuration: %s", err);
        hr_policy_install(&dm->cfg->outbound); /* loading the refused one installed its own */
        sd_notify_state("READY=1");
        return;
    }
    if (dm->old) { /* a reload while the previous one still drains: finish it now */
        hr_dispatcher_free(dm->old);
        hr_loader_free(dm->old_loader);
        hr_config_free(dm->old_cfg);
    }
    /* Routing is only read while submitting, never by a draining dispatcher. */
    hr_routing_free(dm->routing);
    dm->routing = routing;
    /* The API reads the sources per request and keeps none across rounds. */
    hr_hooks_free(dm->hooks);
    dm->hooks = hooks;
    hr_dispatcher_drain(dm->d);
    dm->old = dm->d;
    dm->old_cfg = dm->cfg;
    dm->old_loader = dm->loader;
    dm->cfg = cfg;
    dm->loader = loader;
    dm->d = new_dispatcher(dm);
    hr_log(HERALD_LOG_NOTICE, "configuration reloaded from %s (%zu channels)", dm->config_path,
           cfg->nchannels);
    log_policy(cfg);
    sd_notify_state("READY=1");
}

static void accept_clients(daemon_t *dm)
{
    for (;;) {
        int fd = accept4(dm->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (dm->nclients >= MAX_CLIENTS) {
            close(fd);
            hr_log(HERALD_LOG_WARNING, "too many clients (%d); connection refused", MAX_CLIENTS);
            continue;
        }
        client *c = hr_calloc(1, sizeof *c);
        c->fd = fd;
        c->next = dm->clients;
        dm->clients = c;
        dm->nclients++;
    }
}

static void hook_counted(void *ctx, const char *tenant, int duplicate)
{
    hr_metrics_events(ctx, tenant, "hook", !duplicate, duplicate != 0);
}

/* Webhook receipts into events (hooks.h), in a transaction of their own:
 * those committed in an earlier round, so their senders heard 202 before any
 * routing work. Not while draining: they wait, stored, for the next start. */
static void process_hooks(daemon_t *dm)
{
    long long now = hr_now_ms();
    if (!dm->hooks_due || dm->draining || now < dm->hooks_retry_ms)
        return;
    size_t done = 0;
    if (hr_hooks_process(dm->hooks, dm->cfg, dm->loader, dm->routing, dm->store, dm->d,
                         HOOKS_BATCH, hook_counted, dm->metrics, &done) != HERALD_OK) {
        hr_log(HERALD_LOG_ERROR, "cannot turn webhook receipts into events, trying again in "
               "1 s: %s", hr_store_error(dm->store));
        dm->hooks_retry_ms = now + HOOKS_RETRY_MS;
        return;
    }
    dm->hooks_due = done == HOOKS_BATCH; /* a full batch: there may be more */
}

/* Retention (herald.conf(5)): a pass deletes finished events older than
 * `retention`, PRUNE_BATCH a transaction with rounds of deliveries between,
 * then waits a tenth of the retention (1 s to 10 min) for the next. */
static void prune(daemon_t *dm)
{
    long long now = hr_now_ms(), keep = dm->cfg->retention_ms;
    if (!keep || dm->draining || now < dm->prune_next_ms)
        return;
    int more = 0;
    long long pause = keep / 10;
    pause = pause < 1000 ? 1000 : pause > PRUNE_EVERY_MS ? PRUNE_EVERY_MS : pause;
    if (hr_store_prune(dm->store, now - keep, PRUNE_BATCH, dm->prune_cursor, &dm->pruned,
                       &more) != HERALD_OK) {
        hr_log(HERALD_LOG_ERROR, "cannot delete expired events, trying again in 1 min: %s",
               hr_store_error(dm->store));
        pause = PRUNE_RETRY_MS;
    } else if (more) {
        dm->prune_next_ms = now + PRUNE_STEP_MS;
        return;
    } else if (dm->pruned.events || dm->pruned.receipts) {
        hr_log(HERALD_LOG_INFO, "retention: deleted %zu events older than %lld s (%zu deliveries, "
               "%zu attempts) and %zu webhook receipts", dm->pruned.events, keep / 1000,
               dm->pruned.deliveries, dm->pruned.attempts, dm->pruned.receipts);
    }
    memset(&dm->pruned, 0, sizeof dm->pruned);
    dm->prune_cursor[0] = '\0';
    dm->prune_next_ms = now + pause;
}

/* Shorten a poll timeout (ms) so that the loop wakes by time at_ms. */
static void wake_by(int *timeout, long long at_ms)
{
    long long wait = at_ms - hr_now_ms();
    if (wait < *timeout)
        *timeout = wait < 0 ? 0 : (int)wait;
}

/* Marks the HTTP API's descriptor among the polled ones. */
static client api_owner;

static int run(daemon_t *dm)
{
    long long drain_deadline = 0;
    struct pollfd *fds = hr_calloc(MAX_CLIENTS + 2, sizeof *fds);
    client **owners = hr_calloc(MAX_CLIENTS + 2, sizeof *owners);
    for (;;) {
        if (got_hup) {
            got_hup = 0;
            reload(dm);
        }
        refresh_directory(dm, 0);
        if (got_term && !drain_deadline) {
            sd_notify_state("STOPPING=1");
            hr_log(HERALD_LOG_NOTICE, "stopping: finishing %zu attempts in flight",
                   hr_dispatcher_inflight(dm->d));
            close(dm->lfd);
            dm->lfd = -1;
            unlink(dm->sock_path);
            hr_dispatcher_drain(dm->d);
            dm->draining = 1;
            drain_deadline = hr_now_ms() + DRAIN_MS;
        }
        if (drain_deadline && (hr_dispatcher_inflight(dm->d) == 0 || hr_now_ms() >= drain_deadline))
            break;
        unsigned n = 0;
        if (dm->lfd >= 0) {
            fds[n].fd = dm->lfd;
            fds[n].events = POLLIN;
            owners[n++] = NULL;
        }
        for (client *c = dm->clients; c && n < MAX_CLIENTS; c = c->next) {
            fds[n].fd = c->fd;
            fds[n].events = (short)(POLLIN | (c->out.len ? POLLOUT : 0));
            owners[n++] = c;
        }
        if (dm->api) {
            fds[n].fd = hr_api_fd(dm->api);
            fds[n].events = POLLIN;
            owners[n++] = &api_owner;
        }
        int waiting = 0;
        for (client *c = dm->clients; c; c = c->next)
            waiting |= c->wait_id[0] != 0;
        int timeout = hr_dispatcher_inflight(dm->d) || waiting ? WAIT_CHECK_MS : IDLE_POLL_MS;
        long long api_timeout = dm->api ? hr_api_timeout(dm->api) : -1;
        if (api_timeout >= 0 && api_timeout < timeout)
            timeout = (int)api_timeout;
        if (dm->hooks_due && !dm->draining)
            wake_by(&timeout, dm->hooks_retry_ms);
        if (dm->prune_cursor[0] && !dm->draining)
            wake_by(&timeout, dm->prune_next_ms);
        hr_dispatcher_wait(dm->d, timeout, fds, n);
        if (dm->old) {
            hr_dispatcher_step(dm->old, 0, NULL, 0);
            if (hr_dispatcher_inflight(dm->old) == 0) {
                hr_dispatcher_free(dm->old);
                hr_loader_free(dm->old_loader);
                hr_config_free(dm->old_cfg);
                dm->old = NULL;
            }
        }
        /* Every request that arrived in this round shares one transaction,
         * and no submitter hears "ok" before it is committed. */
        dm->tx = 0;
        for (client *c = dm->clients; c; c = c->next) {
            c->round_start = c->out.len;
            c->round_n = 0;
        }
        /* Finished attempts are recorded and free slots claimed in the same
         * transaction: one commit a round, however busy. */
        api_begin(dm);
        hr_dispatcher_collect(dm->d);
        for (unsigned i = 0; i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)) || owners[i] == &api_owner)
                continue;
            if (!owners[i]) {
                accept_clients(dm);
                continue;
            }
            api_begin(dm);
            if (!client_read(dm, owners[i])) {
                client_close(dm, owners[i]);
                owners[i] = NULL;
            }
        }
        if (dm->api)
            hr_api_run(dm->api); /* its submissions join the round's transaction */
        int committed = !dm->tx || hr_store_commit(dm->store) == HERALD_OK;
        dm->tx = 0;
        if (committed)
            hr_metrics_events(dm->metrics, NULL, "socket", dm->round_accepted,
                              dm->round_duplicates);
        dm->round_accepted = dm->round_duplicates = 0;
        hr_dispatcher_commit_offers(dm->d, committed);
        hr_api_after_commit(dm->api, committed);
        if (!committed) {
            char msg[700];
            snprintf(msg, sizeof msg, "cannot commit submissions: %s; nothing was stored, "
                     "submit again", hr_store_error(dm->store));
            hr_log(HERALD_LOG_ERROR, "%s", msg);
            for (client *c = dm->clients; c; c = c->next) {
                c->out.len = c->round_start; /* every reply of the round becomes the error */
                for (size_t k = 0; k < c->round_n; k++)
                    reply(c, error_reply(1, msg));
            }
        }
        process_hooks(dm);
        prune(dm);
        if (hr_api_receipts(dm->api))
            dm->hooks_due = 1; /* next round, once the 202s are sent */
        check_waits(dm, hr_now_ms());
        for (client *c = dm->clients, *next; c; c = next) {
            next = c->next;
            if (c->out.len && !client_flush(c))
                client_close(dm, c);
        }
    }
    free(fds);
    free(owners);
    return 0;
}

static const char usage[] =
    "Usage: heraldd [-c FILE] [--foreground] [-v]\n"
    "\n"
    "The herald daemon: accepts events on a Unix socket, delivers them and retries\n"
    "failed deliveries in the background.\n"
    "\n"
    "  -c, --config FILE   configuration file (default: $HERALD_CONFIG, then\n"
    "                      " HERALD_SYSCONFDIR "/herald/herald.conf)\n"
    "  -f, --foreground    stay attached to the terminal and log to stderr\n"
    "  -v, --verbose       more log output (repeat for debug)\n"
    "      --version       print the version and exit\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "Signals: SIGHUP reloads the configuration (a bad one is refused and the running\n"
    "one kept); SIGTERM stops accepting and finishes attempts in flight.\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"api-routes", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cfg_opt = NULL;
    int foreground = 0, opt, level = HERALD_LOG_NOTICE;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:fvh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': cfg_opt = optarg; break;
        case 'f': foreground = 1; break;
        case 'v': level++; break;
        case 'V': printf("heraldd %s\n", HERALD_VERSION); return 0;
        case 'R': hr_api_print_routes(stdout); return 0;
        case 'h': fputs(usage, stdout); return 0;
        default:
            fprintf(stderr, "heraldd: unknown option '%s'; see heraldd --help\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "heraldd: unexpected argument '%s'; see heraldd --help\n", argv[optind]);
        return 2;
    }
    hr_log_set_level(level);
    hr_log_set_ident("heraldd");
    if (hr_transport_global_init() != 0 || hr_module_init() != 0) {
        fprintf(stderr, "heraldd: cannot initialise libcurl or libltdl\n");
        return 2;
    }
    daemon_t dm = {.lfd = -1};
    int explicit_;
    dm.config_path = hr_config_pick(cfg_opt, &explicit_);
    char err[1024];
    if (load(&dm, &dm.cfg, &dm.loader, &dm.routing, &dm.hooks, err, sizeof err) != HERALD_OK) {
        fprintf(stderr, "heraldd: %s\n", err);
        return 2;
    }
    char *db = hr_config_database(dm.cfg, err, sizeof err);
    if (!db || hr_store_open(db, &dm.store, err, sizeof err) != HERALD_OK) {
        fprintf(stderr, "heraldd: cannot open the queue: %s\n", err);
        return 2;
    }
    dm.sock_path = hr_strdup(socket_path(dm.cfg));
    if ((dm.lfd = listen_socket(dm.sock_path, dm.cfg, err, sizeof err)) < 0) {
        fprintf(stderr, "heraldd: %s\n", err);
        return 2;
    }
    if (!foreground) {
        if (daemon(0, 0) != 0) {
            fprintf(stderr, "heraldd: cannot detach: %s\n", strerror(errno));
            return 2;
        }
        hr_log_use_syslog("heraldd");
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    checkpointer ckpt = {0}; /* threads start after daemon(): a fork keeps none */
    int ckpt_on = checkpointer_start(&ckpt, db, dm.store);
    refresh_directory(&dm, 1); /* with the store's run-time users now */
    dm.metrics = hr_metrics_new();
    hr_api_env env = {.cfg = &dm.cfg, .loader = &dm.loader, .routing = &dm.routing, .d = &dm.d,
                      .store = dm.store, .begin = api_begin, .status = api_status,
                      .draining = &dm.draining, .changed = api_changed,
                      .metrics = dm.metrics, .ctx = &dm, .hooks = &dm.hooks};
    dm.hooks_due = 1; /* receipts a previous run stored but did not process */
    dm.api = hr_api_start(dm.cfg, &env, err, sizeof err);
    int api_failed = !dm.api && err[0];
    if (api_failed)
        hr_log(HERALD_LOG_ERROR, "%s", err);
    else if (!dm.api && dm.hooks->n)
        hr_log(HERALD_LOG_WARNING, "hooks are configured but there is no http group: nothing "
               "receives them; add http = { listen = \"127.0.0.1:8730\"; };");
    dm.inflight_budget = raise_fd_limit();
    dm.d = new_dispatcher(&dm);
    int rc = 2;
    if (!api_failed) {
        hr_log(HERALD_LOG_NOTICE, "heraldd %s ready: %zu channels, queue %s, socket %s, up to "
               "%zu attempts in flight", HERALD_VERSION, dm.cfg->nchannels, db, dm.sock_path,
               dm.inflight_budget);
        log_policy(dm.cfg);
        sd_notify_state("READY=1");
        rc = run(&dm);
    }
    free(db);

    hr_api_stop(dm.api);
    hr_dispatcher_free(dm.d); /* returns unfinished claims to pending */
    if (dm.old) {
        hr_dispatcher_free(dm.old);
        hr_loader_free(dm.old_loader);
        hr_config_free(dm.old_cfg);
    }
    while (dm.clients)
        client_close(&dm, dm.clients);
    if (dm.lfd >= 0) {
        close(dm.lfd);
        unlink(dm.sock_path);
    }
    free(dm.sock_path);
    if (ckpt_on)
        checkpointer_stop(&ckpt);
    hr_store_close(dm.store);
    hr_metrics_free(dm.metrics); /* after the dispatchers, which count into it */
    hr_routing_free(dm.routing);
    hr_hooks_free(dm.hooks);
    hr_loader_free(dm.loader);
    hr_config_free(dm.cfg);
    hr_secrets_clear();
    hr_log(HERALD_LOG_NOTICE, "stopped");
    return rc;
}
