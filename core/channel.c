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
    return channel_create(p, cc->name, cc->origin, &settings, out, err, errlen);
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

void hr_channel_close(herald_channel *ch)
{
    if (!ch)
        return;
    if (ch->created && ch->plugin->info->destroy)
        ch->plugin->info->destroy(ch->state);
    hr_settings_free(&ch->settings);
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

void hr_channel_deliver(herald_channel *ch, const herald_message *m, herald_purpose p,
                        unsigned test_flags, hr_outcome *out)
{
    const herald_plugin *info = ch->plugin->info;
    herald_exchange ex;
    herald_response resp = {0};
    herald_result res = {0};
    memset(out, 0, sizeof *out);
    hr_exchange_init(&ex, p);

    long long t0 = hr_now_ms();
    herald_status st = p == HERALD_PURPOSE_TEST ? info->test(ch->state, test_flags, m, &ex, &res)
                                                : info->send(ch->state, m, &ex, &res);
    if (st != HERALD_OK) {
        op_failed(out, p == HERALD_PURPOSE_TEST ? "test" : "send", st, &res);
        goto done;
    }
    if (info->flags & HERALD_PLUGIN_F_BLOCKING) {
        if (!res.set)
            finish(out, HERALD_VERDICT_FAILED, HERALD_E_PLUGIN, "blocking plugin set no verdict");
        else
            finish(out, res.verdict, res.status, res.detail);
        out->retry_at = res.retry_at;
        goto done;
    }
    for (;;) {
        if (ex.kind == HR_EX_NONE && ex.err == HERALD_OK) {
            if (res.set && res.verdict != HERALD_VERDICT_CONTINUE) {
                /* The plugin decided without any I/O (e.g. nothing to send). */
                finish(out, res.verdict, res.status, res.detail);
                break;
            }
            finish(out, HERALD_VERDICT_FAILED, HERALD_E_PLUGIN, "plugin described no request");
            break;
        }
        if (ex.err != HERALD_OK) {
            char detail[300];
            snprintf(detail, sizeof detail, "plugin built an invalid request: %s", ex.errmsg);
            finish(out, HERALD_VERDICT_FAILED, ex.err, detail);
            break;
        }
        int step = ex.step;
        hr_transport_run(&ex, &resp);
        out->steps++;
        out->code = resp.code;
        memset(&res, 0, sizeof res);
        st = info->interpret(ch->state, m, &resp, &ex, &res);
        if (st != HERALD_OK) {
            op_failed(out, "interpret", st, &res);
            break;
        }
        if (!res.set) {
            finish(out, HERALD_VERDICT_FAILED, HERALD_E_PLUGIN, "plugin set no verdict");
            break;
        }
        if (res.verdict != HERALD_VERDICT_CONTINUE) {
            finish(out, res.verdict, res.status, res.detail);
            out->retry_at = res.retry_at;
            break;
        }
        if (ex.step == step || out->steps >= MAX_STEPS) {
            finish(out, HERALD_VERDICT_FAILED, HERALD_E_PLUGIN,
                   ex.step == step ? "plugin asked to continue without a new request"
                                   : "plugin exceeded the maximum number of steps");
            break;
        }
    }
done:
    out->elapsed_ms = hr_now_ms() - t0;
    hr_exchange_clear(&ex);
    hr_response_clear(&resp);
}
