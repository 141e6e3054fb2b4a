/* channel.c - channel instances of plugins, and one delivery attempt run to its verdict. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A conversation longer than this is a plugin bug (a loop), not a protocol. */
#define MAX_STEPS 8

static herald_status settings_from_url(hr_plugin *p, const char *chname, const char *url,
                                       herald_settings *out, char *err, size_t errlen)
{
    herald_settings_builder b = {.s = out, .spec = p->info->settings, .plugin = p->name};
    herald_result res = {0};
    herald_status st = p->info->from_url(&hr_host, url, &b, &res);
    if (st != HERALD_OK) {
        char *safe = hr_url_redact(url);
        snprintf(err, errlen, "channel '%s': %s does not accept URL %s: %s", chname, p->name, safe,
                 res.set && res.detail[0] ? res.detail : b.err[0] ? b.err : herald_strerror(st));
        free(safe);
    }
    return st;
}

static herald_status channel_create(hr_plugin *p, const char *name, const char *origin,
                                    herald_settings *settings, herald_channel **out, char *err,
                                    size_t errlen)
{
    char why[512];
    if (hr_settings_check_required(settings, p->info->settings, why, sizeof why) != HERALD_OK) {
        snprintf(err, errlen, "%s%schannel '%s': %s for plugin %s", origin ? origin : "",
                 origin ? ": " : "", name, why, p->name);
        hr_settings_free(settings);
        return HERALD_E_CONFIG;
    }
    herald_channel *ch = hr_calloc(1, sizeof *ch);
    ch->name = hr_strdup(name);
    ch->plugin = p;
    ch->settings = *settings;
    memset(settings, 0, sizeof *settings);
    hr_policy_installed(&ch->policy); /* a configured channel's own replaces it */
    herald_result res = {0};
    herald_status st = p->info->create(&hr_host, ch, &ch->settings, &ch->state, &res);
    if (st != HERALD_OK) {
        char *detail = hr_redact(res.set && res.detail[0] ? res.detail : herald_strerror(st));
        snprintf(err, errlen, "%s%schannel '%s': plugin %s refused its settings: %s",
                 origin ? origin : "", origin ? ": " : "", name, p->name, detail);
        free(detail);
        hr_channel_close(ch);
        return st == HERALD_E_NOMEM ? st : HERALD_E_CONFIG;
    }
    ch->created = 1;
    *out = ch;
    return HERALD_OK;
}

static herald_status scheme_plugin(hr_loader *l, const char *chname, const char *url,
                                   hr_plugin **p, char *err, size_t errlen)
{
    hr_url u;
    char why[256];
    if (hr_url_split(url, &u, why, sizeof why) != HERALD_OK) {
        snprintf(err, errlen, "channel '%s': %s", chname, why);
        return HERALD_E_INVALID;
    }
    herald_status st = hr_loader_by_scheme(l, u.scheme, p, err, errlen);
    hr_url_free(&u);
    return st;
}

herald_status hr_channel_open(hr_loader *l, hr_channel_conf *cc, herald_channel **out, char *err,
                              size_t errlen)
{
    hr_plugin *p;
    herald_status st;
    if (cc->plugin)
        st = hr_loader_get(l, cc->plugin, &p, err, errlen);
    else
        st = scheme_plugin(l, cc->name, cc->url, &p, err, errlen);
    if (st != HERALD_OK)
        return st;
    herald_settings settings = {0};
    if (cc->url && !cc->plugin) {
        char why[512];
        if ((st = settings_from_url(p, cc->name, cc->url, &settings, why, sizeof why)) !=
            HERALD_OK) {
            snprintf(err, errlen, "%s: %s", cc->origin, why);
            hr_settings_free(&settings);
            return HERALD_E_CONFIG;
        }
    }
    if ((st = hr_config_channel_settings(cc, p->name, p->info->settings, &settings, err,
                                         errlen)) != HERALD_OK) {
        hr_settings_free(&settings);
        return st;
    }
    if ((st = channel_create(p, cc->name, cc->origin, &settings, out, err, errlen)) == HERALD_OK) {
        hr_policy_free(&(*out)->policy);
        hr_policy_copy(&(*out)->policy, &cc->policy);
    }
    return st;
}

herald_status hr_channel_open_url(hr_loader *l, const char *name, const char *url,
                                  herald_channel **out, char *err, size_t errlen)
{
    hr_plugin *p;
    herald_status st = scheme_plugin(l, name, url, &p, err, errlen);
    if (st != HERALD_OK)
        return st;
    herald_settings settings = {0};
    if ((st = settings_from_url(p, name, url, &settings, err, errlen)) != HERALD_OK) {
        hr_settings_free(&settings);
        return HERALD_E_INVALID;
    }
    return channel_create(p, name, NULL, &settings, out, err, errlen);
}

herald_status hr_channel_open_kv(hr_loader *l, const char *plugin, const char *name,
                                 const char *const *kv, herald_channel **out, char *err,
                                 size_t errlen)
{
    hr_plugin *p;
    herald_status st = hr_loader_get(l, plugin, &p, err, errlen);
    if (st != HERALD_OK)
        return st;
    herald_settings settings = {0};
    herald_settings_builder b = {.s = &settings, .spec = p->info->settings, .plugin = p->name};
    for (size_t i = 0; kv && kv[i] && kv[i + 1] && st == HERALD_OK; i += 2) {
        const char *dot = strchr(kv[i], '.');
        if (dot) {
            char *map = hr_strndup(kv[i], (size_t)(dot - kv[i]));
            st = hr_settings_put_item(&b, map, dot + 1, kv[i + 1]);
            free(map);
        } else {
            st = hr_settings_put(&b, kv[i], kv[i + 1]);
        }
    }
    if (st != HERALD_OK) {
        snprintf(err, errlen, "channel '%s': %s", name, b.err[0] ? b.err : herald_strerror(st));
        hr_settings_free(&settings);
        return HERALD_E_CONFIG;
    }
    return channel_create(p, name, NULL, &settings, out, err, errlen);
}

void hr_channel_close(herald_channel *ch)
{
    if (!ch)
        return;
    if (ch->created && ch->plugin->info->destroy)
        ch->plugin->info->destroy(ch->state);
    hr_settings_free(&ch->settings);
    hr_policy_free(&ch->policy);
    free(ch->name);
    free(ch);
}

static void finish(hr_outcome *out, herald_verdict v, herald_status st, const char *detail)
{
    out->verdict = v;
    out->status = st;
    char *clean = hr_redact(detail ? detail : "");
    snprintf(out->detail, sizeof out->detail, "%s", clean);
    free(clean);
}

/* An op that failed outright: retried only when its status says so. */
static void op_failed(hr_outcome *out, const char *op, herald_status st, const herald_result *res)
{
    char detail[600];
    snprintf(detail, sizeof detail, "%s: %s", op,
             res->set && res->detail[0] ? res->detail : herald_strerror(st));
    finish(out, herald_status_retryable(st) ? HERALD_VERDICT_RETRY : HERALD_VERDICT_FAILED, st,
           detail);
}

/* Run the op that starts the conversation. Returns 1 when the exchange is
 * ready for the transport, 0 when the job is finished (out is set). */
static int job_begin(hr_job *j)
{
    const herald_plugin *info = j->ch->plugin->info;
    memset(&j->out, 0, sizeof j->out);
    memset(&j->res, 0, sizeof j->res);
    memset(&j->resp, 0, sizeof j->resp);
    hr_exchange_init(&j->ex, j->purpose);
    j->t0 = hr_now_ms();
    herald_status st = j->purpose == HERALD_PURPOSE_TEST
                           ? info->test(j->ch->state, j->test_flags, j->m, &j->ex, &j->res)
                           : info->send(j->ch->state, j->m, &j->ex, &j->res);
    if (st != HERALD_OK) {
        op_failed(&j->out, j->purpose == HERALD_PURPOSE_TEST ? "test" : "send", st, &j->res);
        return 0;
    }
    if (info->flags & HERALD_PLUGIN_F_BLOCKING) {
        if (!j->res.set)
            finish(&j->out, HERALD_VERDICT_FAILED, HERALD_E_PLUGIN, "blocking plugin set no verdict");
        else
            finish(&j->out, j->res.verdict, j->res.status, j->res.detail);
        j->out.retry_at = j->res.retry_at;
        return 0;
    }
    if (j->ex.kind == HR_EX_NONE && j->ex.err == HERALD_OK) {
        if (j->res.set && j->res.verdict != HERALD_VERDICT_CONTINUE)
            finish(&j->out, j->res.verdict, j->res.status, j->res.detail); /* decided without I/O */
        else
            finish(&j->out, HERALD_VERDICT_FAILED, HERALD_E_PLUGIN, "plugin described no request");
        return 0;
    }
    if (j->ex.err != HERALD_OK) {
        char detail[300];
        snprintf(detail, sizeof detail, "plugin built an invalid request: %s", j->ex.errmsg);
        finish(&j->out, HERALD_VERDICT_FAILED, j->ex.err, detail);
        return 0;
    }
    j->step = j->ex.step;
    j->ex.policy = &j->ch->policy;
    return 1;
}

/* After a response: interpret it. Returns 1 when another step is ready. */
static int job_next(hr_job *j)
{
    const herald_plugin *info = j->ch->plugin->info;
    j->out.steps++;
    j->out.code = j->resp.code;
    memset(&j->res, 0, sizeof j->res);
    if (j->resp.policy_refused) { /* final whatever the plugin would make of it */
        finish(&j->out, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, j->resp.error);
        return 0;
    }
    herald_status st = info->interpret(j->ch->state, j->m, &j->resp, &j->ex, &j->res);
    if (st != HERALD_OK) {
        op_failed(&j->out, "interpret", st, &j->res);
        return 0;
    }
    if (!j->res.set) {
        finish(&j->out, HERALD_VERDICT_FAILED, HERALD_E_PLUGIN, "plugin set no verdict");
        return 0;
    }
    if (j->res.verdict != HERALD_VERDICT_CONTINUE) {
        finish(&j->out, j->res.verdict, j->res.status, j->res.detail);
        j->out.retry_at = j->res.retry_at;
        return 0;
    }
    if (j->ex.step == j->step || j->out.steps >= MAX_STEPS) {
        finish(&j->out, HERALD_VERDICT_FAILED, HERALD_E_PLUGIN,
               j->ex.step == j->step ? "plugin asked to continue without a new request"
                                     : "plugin exceeded the maximum number of steps");
        return 0;
    }
    if (j->ex.err != HERALD_OK) {
        char detail[300];
        snprintf(detail, sizeof detail, "plugin built an invalid request: %s", j->ex.errmsg);
        finish(&j->out, HERALD_VERDICT_FAILED, j->ex.err, detail);
        return 0;
    }
    j->step = j->ex.step;
    j->ex.policy = &j->ch->policy;
    return 1;
}

static void job_end(hr_job *j)
{
    j->out.elapsed_ms = hr_now_ms() - j->t0;
    if (j->out.code == 0)
        j->out.code = j->resp.code;
    /* Keep the start of the body for the delivery log before it is freed. */
    size_t n = j->resp.body.len < sizeof j->out.excerpt - 1 ? j->resp.body.len
                                                            : sizeof j->out.excerpt - 1;
    if (n)
        memcpy(j->out.excerpt, j->resp.body.data, n);
    j->out.excerpt[n] = '\0';
    hr_exchange_clear(&j->ex);
    hr_response_clear(&j->resp);
}

void hr_channel_deliver(herald_channel *ch, const herald_message *m, herald_purpose p,
                        unsigned test_flags, hr_outcome *out)
{
    hr_job j;
    memset(&j, 0, sizeof j);
    j.ch = ch;
    j.m = m;
    j.purpose = p;
    j.test_flags = test_flags;
    if (job_begin(&j)) {
        do
            hr_transport_run(&j.ex, &j.resp);
        while (job_next(&j));
    }
    job_end(&j);
    *out = j.out;
}

static void job_on_response(void *arg)
{
    hr_job *j = arg;
    if (job_next(j)) {
        hr_engine_submit(j->engine, &j->ex, &j->resp, job_on_response, j);
        return;
    }
    job_end(j);
    j->done(j);
}

void hr_job_start(hr_job *j, hr_engine *e, void (*done)(hr_job *))
{
    j->engine = e;
    j->done = done;
    if (job_begin(j)) {
        hr_engine_submit(e, &j->ex, &j->resp, job_on_response, j);
        return;
    }
    job_end(j);
    done(j);
}
