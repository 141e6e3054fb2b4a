/* webhooks.c - webhook subscriptions: sealing, matching, and their delivery channels. */
#include "config.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "webhooks.h"

void hr_webhook_clear(hr_webhook *w)
{
    free(w->name);
    free(w->url);
    free(w->events);
    hr_secretbox_free_value(w->secret);
    hr_secretbox_free_value(w->old_secret);
    for (size_t i = 0; i < w->nheaders; i++) {
        free(w->headers[i].name);
        hr_secretbox_free_value(w->headers[i].value);
    }
    free(w->headers);
    free(w->signature);
    free(w->body_template);
    free(w->tenant);
    memset(w, 0, sizeof *w);
}

int hr_webhook_is_id(const char *name)
{
    return name && strncmp(name, HR_WEBHOOK_PREFIX, strlen(HR_WEBHOOK_PREFIX)) == 0 &&
           strlen(name) == strlen(HR_WEBHOOK_PREFIX) + 16;
}

char *hr_webhook_url_shown(const char *url)
{
    hr_url u;
    char err[256];
    if (hr_url_split(url, &u, err, sizeof err) != HERALD_OK)
        return hr_strdup("(invalid URL)");
    char *shown = hr_asprintf("%s://%s%s%s/%s", u.scheme, u.host, u.port ? ":" : "",
                              u.port ? u.port : "", u.path && u.path[0] && u.path[1] ? "…" : "");
    hr_url_free(&u);
    return shown;
}

static char *context_of(const char *id)
{
    return hr_asprintf("webhook:%s", id);
}

herald_status hr_webhook_to_row(hr_secretbox *box, const hr_webhook *w, hr_webhook_row *row,
                                char *err, size_t errlen)
{
    memset(row, 0, sizeof *row);
    json_t *headers = json_object();
    for (size_t i = 0; i < w->nheaders; i++)
        json_object_set_new(headers, w->headers[i].name, json_string(w->headers[i].value));
    json_t *o = json_pack("{s:s, s:o, s:o, s:I, s:o}", "url", w->url, "secret",
                          w->secret ? json_string(w->secret) : json_null(), "old_secret",
                          w->old_secret ? json_string(w->old_secret) : json_null(),
                          "old_until_ms", (json_int_t)w->old_until_ms, "headers", headers);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *ctx = context_of(w->id);
    char *sealed = text ? hr_secretbox_seal(box, text, ctx) : NULL;
    free(ctx);
    if (text) {
        memset(text, 0, strlen(text));
        free(text);
    }
    if (!sealed) {
        snprintf(err, errlen, "cannot seal the webhook's secrets");
        return HERALD_E_INTERNAL;
    }
    snprintf(row->id, sizeof row->id, "%s", w->id);
    row->name = hr_strdup(w->name);
    row->url_shown = hr_webhook_url_shown(w->url);
    row->events = hr_strdup(w->events);
    row->sealed = sealed;
    row->signature = hr_strdup(w->signature ? w->signature : "standard");
    row->timeout_ms = w->timeout_ms;
    row->max_attempts = w->max_attempts;
    row->payload_max = w->payload_max;
    row->body_template = w->body_template ? hr_strdup(w->body_template) : NULL;
    row->created_ms = w->created_ms;
    return HERALD_OK;
}

static char *json_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? hr_strdup(v) : NULL;
}

herald_status hr_webhook_from_row(hr_secretbox *box, const hr_webhook_row *row, hr_webhook *w,
                                  char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    char *ctx = context_of(row->id);
    char *text = hr_secretbox_open_value(box, row->sealed, ctx, err, errlen);
    free(ctx);
    if (!text)
        return HERALD_E_AUTH;
    json_t *o = json_loads(text, 0, NULL);
    hr_secretbox_free_value(text);
    if (!json_is_object(o)) {
        json_decref(o);
        snprintf(err, errlen, "webhook %s: its sealed settings are damaged; remove and add it "
                 "again", row->id);
        return HERALD_E_PROTOCOL;
    }
    snprintf(w->id, sizeof w->id, "%s", row->id);
    w->name = hr_strdup(row->name);
    w->url = json_str(o, "url");
    w->events = hr_strdup(row->events);
    w->secret = json_str(o, "secret");
    w->old_secret = json_str(o, "old_secret");
    w->old_until_ms = json_integer_value(json_object_get(o, "old_until_ms"));
    json_t *h = json_object_get(o, "headers");
    w->headers = hr_calloc(json_object_size(h) + 1, sizeof *w->headers);
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        w->headers[w->nheaders].name = hr_strdup(k);
        w->headers[w->nheaders++].value = hr_strdup(json_string_value(v) ? json_string_value(v) : "");
        hr_secret_add(json_string_value(v));
    }
    json_decref(o);
    w->signature = hr_strdup(row->signature);
    w->timeout_ms = row->timeout_ms;
    w->max_attempts = row->max_attempts;
    w->payload_max = row->payload_max;
    w->body_template = row->body_template ? hr_strdup(row->body_template) : NULL;
    w->created_ms = row->created_ms;
    w->tenant = row->tenant ? hr_strdup(row->tenant) : NULL;
    if (!w->url) {
        hr_webhook_clear(w);
        snprintf(err, errlen, "webhook %s has no URL; remove and add it again", row->id);
        return HERALD_E_PROTOCOL;
    }
    return HERALD_OK;
}

hr_secretbox *hr_webhook_box(const hr_config *cfg, hr_store *s, int create, char *err,
                             size_t errlen)
{
    char *path = hr_secretbox_config_path(cfg, hr_store_path(s));
    hr_secretbox *box = hr_secretbox_open(path, create, err, errlen);
    free(path);
    return box;
}

herald_status hr_webhook_channel(hr_store *s, const hr_config *cfg, hr_loader *l, const char *id,
                                 herald_channel **ch, int *max_attempts, char *err, size_t errlen)
{
    *ch = NULL;
    *max_attempts = 0;
    hr_webhook_row *rows = NULL;
    size_t n = 0;
    if (hr_store_webhooks(s, id, &rows, &n) != HERALD_OK) {
        snprintf(err, errlen, "%s", hr_store_error(s));
        return HERALD_E_IO;
    }
    if (n == 0) {
        snprintf(err, errlen, "webhook %s was removed; its deliveries cannot go out", id);
        return HERALD_E_NOT_FOUND;
    }
    hr_secretbox *box = hr_webhook_box(cfg, s, 0, err, errlen);
    hr_webhook w;
    herald_status st = box ? hr_webhook_from_row(box, &rows[0], &w, err, errlen) : HERALD_E_AUTH;
    hr_secretbox_close(box);
    hr_webhook_rows_free(rows, n);
    if (st != HERALD_OK)
        return st;
    char timeout[32], until[32], maxp[32];
    snprintf(timeout, sizeof timeout, "%lld", (w.timeout_ms + 999) / 1000);
    snprintf(until, sizeof until, "%lld", w.old_until_ms / 1000);
    snprintf(maxp, sizeof maxp, "%lld", w.payload_max);
    size_t cap = 2 * (12 + w.nheaders) + 1, k = 0;
    const char **kv = hr_calloc(cap, sizeof *kv);
    char **names = hr_calloc(w.nheaders + 1, sizeof *names);
    kv[k++] = "url", kv[k++] = w.url;
    kv[k++] = "timeout", kv[k++] = timeout;
    kv[k++] = "signature", kv[k++] = w.signature;
    kv[k++] = "payload", kv[k++] = "envelope";
    kv[k++] = "max_payload", kv[k++] = maxp;
    if (w.secret)
        kv[k++] = "secret", kv[k++] = w.secret;
    if (w.old_secret && w.old_until_ms > hr_now_ms())
        kv[k++] = "old_secret", kv[k++] = w.old_secret, kv[k++] = "old_secret_until",
        kv[k++] = until;
    if (w.body_template)
        kv[k++] = "body_template", kv[k++] = w.body_template;
    for (size_t i = 0; i < w.nheaders; i++) {
        names[i] = hr_asprintf("headers.%s", w.headers[i].name);
        kv[k++] = names[i], kv[k++] = w.headers[i].value;
    }
    kv[k] = NULL;
    st = hr_channel_open_kv(l, "webhook", id, kv, ch, err, errlen);
    *max_attempts = w.max_attempts;
    for (size_t i = 0; i < w.nheaders; i++)
        free(names[i]);
    free(names);
    free(kv);
    hr_webhook_clear(&w);
    return st;
}

/* ---- matching ---- */

herald_status hr_subs_load(hr_store *s, hr_subs **out, char *err, size_t errlen)
{
    hr_webhook_row *rows = NULL;
    size_t n = 0;
    *out = NULL;
    if (hr_store_webhooks(s, NULL, &rows, &n) != HERALD_OK) {
        snprintf(err, errlen, "cannot read the webhooks: %s", hr_store_error(s));
        return HERALD_E_IO;
    }
    hr_subs *subs = hr_calloc(1, sizeof *subs);
    subs->v = hr_calloc(n + 1, sizeof *subs->v);
    for (size_t i = 0; i < n; i++) {
        hr_sub *x = &subs->v[subs->n++];
        snprintf(x->id, sizeof x->id, "%s", rows[i].id);
        snprintf(x->tenant, sizeof x->tenant, "%s", rows[i].tenant ? rows[i].tenant : "default");
        x->name = hr_strdup(rows[i].name);
        x->payload_max = rows[i].payload_max;
        x->templated = rows[i].body_template != NULL;
        char *copy = hr_strdup(rows[i].events), *save = NULL;
        for (char *g = strtok_r(copy, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
            while (*g == ' ')
                g++;
            x->globs = hr_realloc(x->globs, (x->nglobs + 1) * sizeof *x->globs);
            x->globs[x->nglobs++] = hr_strdup(g);
        }
        free(copy);
    }
    hr_webhook_rows_free(rows, n);
    *out = subs;
    return HERALD_OK;
}

void hr_subs_free(hr_subs *subs)
{
    if (!subs)
        return;
    for (size_t i = 0; i < subs->n; i++) {
        free(subs->v[i].name);
        for (size_t k = 0; k < subs->v[i].nglobs; k++)
            free(subs->v[i].globs[k]);
        free(subs->v[i].globs);
    }
    free(subs->v);
    free(subs);
}

int hr_sub_matches(const hr_sub *sub, const char *type)
{
    for (size_t i = 0; i < sub->nglobs; i++)
        if (fnmatch(sub->globs[i], type, 0) == 0)
            return 1;
    return 0;
}

long hr_subs_for_event(const hr_subs *subs, const herald_event *ev, const hr_sub ***out,
                       char *err, size_t errlen)
{
    *out = NULL;
    if (!subs || !subs->n)
        return 0;
    long n = 0;
    size_t size = 0;
    for (size_t i = 0; i < subs->n; i++) {
        const hr_sub *x = &subs->v[i];
        if (strcmp(x->tenant, ev->tenant ? ev->tenant : "default") || !hr_sub_matches(x, ev->type))
            continue;
        if (!x->templated) {
            if (!size) {
                char *json = hr_event_json(ev);
                size = strlen(json) + strlen(ev->type) + strlen(ev->timestamp) + 40;
                free(json);
            }
            if ((long long)size > x->payload_max) {
                snprintf(err, errlen, "the event is %zu bytes as a webhook payload, over the %lld "
                         "bytes webhook %s (%s) accepts; shorten the body or raise its "
                         "--max-payload", size, x->payload_max, x->name, x->id);
                free(*out);
                *out = NULL;
                return -1;
            }
        }
        *out = hr_realloc(*out, (size_t)(n + 1) * sizeof **out);
        (*out)[n++] = x;
    }
    return n;
}


json_t *hr_webhook_json(hr_store *s, const hr_webhook_row *r)
{
    hr_webhook_counters k;
    hr_store_webhook_counters(s, r->id, &k);
    long long done = k.succeeded + k.failed;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:b, s:o, s:{s:I, s:I, s:I, s:o, s:o, s:o, s:i}}",
        "id", r->id, "name", r->name, "url", r->url_shown, "events", r->events, "signature",
        r->signature, "timeout_ms", (json_int_t)r->timeout_ms, "max_attempts",
        r->max_attempts > 0 ? json_integer(r->max_attempts) : json_null(), "max_payload",
        (json_int_t)r->payload_max, "enabled", !k.disabled, "disabled_reason",
        k.disabled_reason ? json_string(k.disabled_reason) : json_null(), "counters", "total",
        (json_int_t)k.total, "succeeded", (json_int_t)k.succeeded, "failed",
        (json_int_t)k.failed, "success_rate",
        done ? json_real((double)k.succeeded / (double)done) : json_null(), "last_success",
        k.last_success_ms ? json_integer(k.last_success_ms) : json_null(), "last_failure",
        k.last_failure_ms ? json_integer(k.last_failure_ms) : json_null(),
        "consecutive_failures", k.consecutive_failures);
    free(k.disabled_reason);
    return o;
}

void hr_webhook_new_id(char *out, size_t len)
{
    char uuid[37];
    hr_new_id(uuid);
    /* The random tail of a time-ordered id: 16 hex digits. */
    char hex[17];
    size_t k = 0;
    for (size_t i = strlen(uuid); i-- > 0 && k < 16;)
        if (uuid[i] != '-')
            hex[15 - k++] = uuid[i];
    hex[16] = '\0';
    snprintf(out, len, HR_WEBHOOK_PREFIX "%s", hex);
}

int hr_webhook_globs_ok(const char *s)
{
    if (!*s || strlen(s) > 1024)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("._-*?,", *s)))
            return 0;
    return 1;
}

herald_status hr_webhook_save(hr_store *s, const hr_config *cfg, hr_webhook *w, int create,
                              char *err, size_t errlen)
{
    if (create && !w->id[0])
        hr_webhook_new_id(w->id, sizeof w->id);
    if (create && !w->created_ms)
        w->created_ms = hr_now_ms();
    hr_secretbox *box = hr_webhook_box(cfg, s, 1, err, errlen);
    if (!box)
        return HERALD_E_AUTH;
    hr_webhook_row row;
    herald_status st = hr_webhook_to_row(box, w, &row, err, errlen);
    hr_secretbox_close(box);
    if (st != HERALD_OK)
        return st;
    row.tenant = w->tenant ? hr_strdup(w->tenant) : NULL;
    if ((st = hr_store_webhook_put(s, &row, create)) != HERALD_OK)
        snprintf(err, errlen, "%s", hr_store_error(s));
    hr_webhook_row_clear(&row);
    return st;
}
