/* client.c - libherald's client API: submit events to heraldd, or run the engine in-process
 * when no daemon answers; plus the socket helpers the CLI shares. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "dispatch.h"
#include "store.h"
#include "submit.h"

#define SUBMIT_TIMEOUT_MS 30000
/* Embedded first attempt: bounded even if another process holds the claim. */
#define EMBEDDED_FIRST_ATTEMPT_MS (10 * 60 * 1000)

/* ---- the public API ---- */

struct herald {
    pthread_mutex_t lock;
    hr_config *cfg;
    hr_loader *loader;
    hr_store *store; /* opened on first embedded use */
    hr_routing *routing; /* built on first embedded use */
};

static __thread char last_error[512];

static herald_status fail(herald_status st, const char *fmt, ...) HERALD_PRINTF(2, 3);
static herald_status fail(herald_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *clean = hr_redact(msg);
    snprintf(last_error, sizeof last_error, "%s", clean);
    free(clean);
    return st;
}

const char *herald_last_error(const herald *h)
{
    (void)h;
    return last_error[0] ? last_error : "no error";
}

herald_status herald_open(herald **out, const char *config_path)
{
    *out = NULL;
    if (hr_transport_global_init() != 0 || hr_module_init() != 0)
        return fail(HERALD_E_INTERNAL, "cannot initialise libcurl or libltdl");
    int explicit_;
    const char *path = hr_config_pick(config_path, &explicit_);
    hr_config *cfg;
    char err[1024];
    if (!explicit_ && access(path, F_OK) != 0 && errno == ENOENT)
        cfg = hr_config_empty();
    else if (hr_config_load(path, &cfg, err, sizeof err) != HERALD_OK)
        return fail(HERALD_E_CONFIG, "%s", err);
    herald *h = hr_calloc(1, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    h->cfg = cfg;
    h->loader = hr_loader_new(cfg->plugin_path);
    *out = h;
    return HERALD_OK;
}

void herald_close(herald *h)
{
    if (!h)
        return;
    hr_store_close(h->store);
    hr_routing_free(h->routing);
    hr_loader_free(h->loader);
    hr_config_free(h->cfg);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

herald_event *herald_event_new(const char *type)
{
    if (!hr_valid_event_type(type)) {
        fail(HERALD_E_INVALID, "event type '%s' is invalid; use lowercase dotted words",
             type ? type : "(null)");
        return NULL;
    }
    herald_event *ev = hr_calloc(1, sizeof *ev);
    ev->type = hr_strdup(type);
    ev->severity = HERALD_SEVERITY_NOTICE;
    return ev;
}

void herald_event_free(herald_event *ev)
{
    hr_event_free(ev);
}

static void replace(char **slot, const char *value)
{
    free(*slot);
    *slot = hr_strdup(value);
}

herald_status herald_event_set(herald_event *ev, herald_event_attr attr, const char *value)
{
    if (!ev)
        return fail(HERALD_E_INVALID, "no event");
    switch (attr) {
    case HERALD_ATTR_TITLE: replace(&ev->title, value); break;
    case HERALD_ATTR_BODY: replace(&ev->body, value); break;
    case HERALD_ATTR_SOURCE: replace(&ev->source, value); break;
    case HERALD_ATTR_USER: replace(&ev->user, value); break;
    case HERALD_ATTR_IDEMPOTENCY_KEY: replace(&ev->idempotency_key, value); break;
    case HERALD_ATTR_DATA: replace(&ev->data, value); break;
    case HERALD_ATTR_TYPE:
        if (!hr_valid_event_type(value))
            return fail(HERALD_E_INVALID, "event type '%s' is invalid", value ? value : "");
        replace(&ev->type, value);
        break;
    case HERALD_ATTR_SEVERITY:
        if (!value || !hr_severity_parse(value, &ev->severity))
            return fail(HERALD_E_INVALID, "unknown severity '%s'; use debug, info, notice, "
                        "warning, error or critical", value ? value : "");
        break;
    default:
        return fail(HERALD_E_INVALID, "unknown event attribute %d", (int)attr);
    }
    return HERALD_OK;
}

herald_status herald_event_field(herald_event *ev, const char *name, const char *value)
{
    if (!ev || !name || !value)
        return fail(HERALD_E_INVALID, "field needs a name and a value");
    for (size_t i = 0; i < ev->nfields; i++) {
        if (strcmp(ev->fields[i].name, name) == 0) {
            replace(&ev->fields[i].value, value);
            return HERALD_OK;
        }
    }
    ev->fields = hr_realloc(ev->fields, (ev->nfields + 1) * sizeof *ev->fields);
    ev->fields[ev->nfields].name = hr_strdup(name);
    ev->fields[ev->nfields].value = hr_strdup(value);
    ev->nfields++;
    return HERALD_OK;
}

herald_status herald_event_to(herald_event *ev, const char *channel_or_url)
{
    if (!ev || !channel_or_url || !*channel_or_url)
        return fail(HERALD_E_INVALID, "a channel name or URL is needed");
    ev->to = hr_realloc(ev->to, (ev->nto + 1) * sizeof *ev->to);
    ev->to[ev->nto++] = hr_strdup(channel_or_url);
    return HERALD_OK;
}

static herald_event *event_copy(const herald_event *ev)
{
    herald_event *c = hr_calloc(1, sizeof *c);
    c->type = hr_strdup(ev->type);
    c->severity = ev->severity;
    c->title = hr_strdup(ev->title);
    c->body = hr_strdup(ev->body);
    c->source = hr_strdup(ev->source);
    c->user = hr_strdup(ev->user);
    c->idempotency_key = hr_strdup(ev->idempotency_key);
    c->data = hr_strdup(ev->data);
    for (size_t i = 0; i < ev->nfields; i++)
        herald_event_field(c, ev->fields[i].name, ev->fields[i].value);
    return c;
}

static herald_status submit_daemon(herald *h, int fd, const herald_event *ev, char id[37])
{
    char *evjson = hr_event_submit_json(ev);
    json_t *jto = json_array();
    for (size_t i = 0; i < ev->nto; i++)
        json_array_append_new(jto, json_string(ev->to[i]));
    json_t *rep = hr_daemon_call(fd, json_pack("{s:s, s:o, s:o}", "op", "submit", "event",
                                               json_loads(evjson, 0, NULL), "to", jto),
                                 SUBMIT_TIMEOUT_MS);
    free(evjson);
    if (!rep)
        return HERALD_E_CONNECT;
    herald_status st = HERALD_OK;
    if (!json_is_true(json_object_get(rep, "ok"))) {
        json_int_t code = json_integer_value(json_object_get(rep, "code"));
        st = fail(code == 3 ? HERALD_E_NOT_FOUND : HERALD_E_INVALID, "%s",
                  json_string_value(json_object_get(rep, "error")));
    } else {
        snprintf(id, 37, "%s", json_string_value(json_object_get(rep, "id")));
    }
    json_decref(rep);
    return st;
}

static herald_status open_store(herald *h)
{
    if (h->store)
        return HERALD_OK;
    char err[1024];
    char *db = hr_config_database(h->cfg, err, sizeof err);
    if (!db || hr_store_open(db, &h->store, err, sizeof err) != HERALD_OK) {
        free(db);
        return fail(HERALD_E_IO, "cannot open the queue: %s", err);
    }
    free(db);
    return HERALD_OK;
}

/* Every delivery of the event attempted at least once (or, with all_final,
 * finished for good)? */
static int event_done(hr_store *s, const char *id, int all_final, int *all_sent)
{
    hr_log_filter f = {.state = -1, .event_id = id, .limit = 10000};
    hr_delivery_row *rows = NULL;
    size_t n = 0;
    if (hr_store_log(s, &f, &rows, &n) != HERALD_OK)
        return 1;
    int done = 1, sent = 1;
    for (size_t i = 0; i < n; i++) {
        int final = rows[i].state == HR_D_SENT || rows[i].state == HR_D_FAILED ||
                    rows[i].state == HR_D_DEAD;
        sent &= rows[i].state == HR_D_SENT;
        done &= all_final ? final : (final || rows[i].attempts > 0);
    }
    hr_delivery_rows_free(rows, n);
    if (all_sent)
        *all_sent = sent;
    return done;
}

/* Run this event's deliveries in-process until the condition holds. */
static void run_embedded(herald *h, const char *id, int all_final, long long deadline)
{
    hr_dispatcher *d = hr_dispatcher_new(h->cfg, h->loader, h->store);
    hr_dispatcher_only_event(d, id);
    while (hr_now_ms() < deadline) {
        hr_dispatcher_step(d, 100, NULL, 0);
        if (hr_dispatcher_inflight(d) == 0 && event_done(h->store, id, all_final, NULL))
            break;
    }
    hr_dispatcher_free(d);
}

herald_status herald_submit(herald *h, const herald_event *ev, char id[HERALD_ID_LEN])
{
    if (!h || !ev)
        return fail(HERALD_E_INVALID, "herald_submit needs a handle and an event");
    pthread_mutex_lock(&h->lock);
    herald_status st;
    int fd = hr_daemon_connect(h->cfg);
    if (fd >= 0) {
        st = submit_daemon(h, fd, ev, id);
        close(fd);
        if (st != HERALD_E_CONNECT)
            goto out;
    }
    if ((st = open_store(h)) != HERALD_OK)
        goto out;
    char err[1024];
    if (!h->routing && hr_routing_load(&h->routing, h->cfg, h->loader, h->store, err, sizeof err) != HERALD_OK) {
        st = fail(HERALD_E_CONFIG, "%s", err);
        goto out;
    }
    herald_event *copy = event_copy(ev);
    int duplicate = 0;
    st = hr_submit(h->cfg, h->loader, h->routing, h->store, NULL, copy, ev->to, ev->nto,
                   &duplicate, err, sizeof err);
    if (st != HERALD_OK) {
        fail(st, "%s", err);
    } else {
        snprintf(id, HERALD_ID_LEN, "%s", copy->id);
        if (!duplicate)
            run_embedded(h, copy->id, 0, hr_now_ms() + EMBEDDED_FIRST_ATTEMPT_MS);
    }
    hr_event_free(copy);
out:
    pthread_mutex_unlock(&h->lock);
    return st;
}

herald_status herald_wait(herald *h, const char *id, long timeout_ms, int *all_sent)
{
    if (!h || !id || strlen(id) != 36)
        return fail(HERALD_E_INVALID, "herald_wait needs a handle and an event id");
    pthread_mutex_lock(&h->lock);
    herald_status st = HERALD_OK;
    int sent = 0;
    int fd = hr_daemon_connect(h->cfg);
    if (fd >= 0) {
        json_t *rep = hr_daemon_call(fd, json_pack("{s:s, s:s, s:I}", "op", "wait", "id", id,
                                                   "timeout_ms", (json_int_t)timeout_ms),
                                     timeout_ms + 10000);
        close(fd);
        if (!rep) {
            st = fail(HERALD_E_CONNECT, "heraldd went away while waiting");
        } else {
            int final = json_is_true(json_object_get(rep, "final"));
            sent = 1;
            size_t i;
            json_t *d;
            json_array_foreach(json_object_get(rep, "deliveries"), i, d)
                sent &= hr_streq(json_string_value(json_object_get(d, "state")), "sent");
            if (!final)
                st = fail(HERALD_E_TIMEOUT, "deliveries of %s still pending after %ld ms", id,
                          timeout_ms);
            json_decref(rep);
        }
    } else if ((st = open_store(h)) == HERALD_OK) {
        run_embedded(h, id, 1, hr_now_ms() + timeout_ms);
        if (!event_done(h->store, id, 1, &sent))
            st = fail(HERALD_E_TIMEOUT, "deliveries of %s still pending after %ld ms", id,
                      timeout_ms);
    }
    if (all_sent)
        *all_sent = sent;
    pthread_mutex_unlock(&h->lock);
    return st;
}

herald_status herald_notify(herald *h, const char *type, const char *title, const char *body,
                            const char *user, const char *json_data, char id[HERALD_ID_LEN])
{
    herald_event *ev = herald_event_new(type);
    if (!ev)
        return HERALD_E_INVALID;
    herald_status st;
    char tmp[HERALD_ID_LEN];
    if ((st = herald_event_set(ev, HERALD_ATTR_TITLE, title)) == HERALD_OK &&
        (!body || (st = herald_event_set(ev, HERALD_ATTR_BODY, body)) == HERALD_OK) &&
        (!user || (st = herald_event_set(ev, HERALD_ATTR_USER, user)) == HERALD_OK) &&
        (!json_data || (st = herald_event_set(ev, HERALD_ATTR_DATA, json_data)) == HERALD_OK))
        st = herald_submit(h, ev, id ? id : tmp);
    herald_event_free(ev);
    return st;
}
