/* plugintest.h - what the channel plugins' unit tests (test_gotify.c, test_email.c,
 * test_webhook.c, test_slack.c, test_discord.c, test_ntfy.c) share: loading the plugin under
 * test, opening channels, finding a request header, JSON path look-ups, and feeding a
 * synthetic response to the plugin's interpret().
 *
 * Include it after "internal.h" and "tap.h". It holds the test's plugin and loader, so a
 * test includes it once and calls plugin_setup() first thing in main(). None of these
 * helpers is a TAP assertion except verdict_is(): a test's count of assertions is its own. */
#ifndef HERALD_PLUGINTEST_H
#define HERALD_PLUGINTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

static hr_plugin *plugin;           /* the plugin under test */
static hr_loader *loader;           /* the loader it came from: open_url(), open_conf() */
static const char *channel_name;    /* the name open_url() gives its channels */

/* The start of every plugin test's main(). Without HERALD_PLUGIN_PATH (not run by make
 * check) it prints a TAP skip; if the plugin `name` does not load, a bail-out. Either way it
 * returns 0 and *exit_status is what main() returns. Otherwise the transport is initialised,
 * `plugin` and `loader` are set, open_url() will name its channels `chan`, and it returns 1. */
static inline int plugin_setup(const char *name, const char *chan, int *exit_status)
{
    *exit_status = 0;
    if (!getenv("HERALD_PLUGIN_PATH")) {
        printf("1..0 # SKIP HERALD_PLUGIN_PATH not set (run via make check)\n");
        return 0;
    }
    hr_transport_global_init();
    loader = hr_loader_new(NULL);
    char err[1024] = "";
    if (hr_loader_get(loader, name, &plugin, err, sizeof err) != HERALD_OK) {
        printf("Bail out! %s\n", err);
        *exit_status = 1;
        return 0;
    }
    channel_name = chan;
    return 1;
}

/* A channel from an Apprise-style URL, or NULL with the reason in err. */
static inline herald_channel *open_url(const char *url, char *err, size_t errlen)
{
    herald_channel *ch = NULL;
    err[0] = '\0';
    if (hr_channel_open_url(loader, channel_name, url, &ch, err, errlen) != HERALD_OK)
        return NULL;
    return ch;
}

/* Open the first channel of a configuration text (settings a URL cannot carry). */
static inline herald_channel *open_conf(const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/herald-plugintest-XXXXXX";
    int fd = mkstemp(path);
    herald_channel *ch = NULL;
    err[0] = '\0';
    if (fd < 0)
        return NULL;
    if (write(fd, text, strlen(text)) == (ssize_t)strlen(text)) {
        hr_config *cfg = NULL;
        if (hr_config_load(path, &cfg, err, errlen) == HERALD_OK && cfg->nchannels > 0)
            hr_channel_open(loader, &cfg->channels[0], &ch, err, errlen);
        hr_config_free(cfg);
    }
    close(fd);
    unlink(path);
    return ch;
}

/* A channel setting's value: its string, or the first of its list; NULL when unset. */
static inline const char *setting(herald_channel *ch, const char *name)
{
    hr_setting *v = hr_settings_get(&ch->settings, name);
    return v ? (v->str ? v->str : v->n ? v->vals[0] : NULL) : NULL;
}

/* The value of the request header `name` an exchange describes, or NULL. Header names are
 * compared ignoring case, as HTTP does. */
static inline const char *header(const herald_exchange *ex, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < ex->nheaders; i++)
        if (!strncasecmp(ex->headers[i], name, n) && ex->headers[i][n] == ':')
            return ex->headers[i] + n + 2;
    return NULL;
}

/* Characters (UTF-8 code points, not bytes) in s; 0 for NULL. */
static inline size_t chars(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Whether s (may be NULL) ends with tail. */
static inline int ends_with(const char *s, const char *tail)
{
    size_t a = s ? strlen(s) : 0, b = strlen(tail);
    return s && a >= b && !strcmp(s + a - b, tail);
}

/* unit repeated `times` times, newly allocated (free() it). */
static inline char *repeat(const char *unit, size_t times)
{
    hr_buf b = {0};
    for (size_t i = 0; i < times; i++)
        hr_buf_adds(&b, unit);
    return b.data ? b.data : hr_strdup("");
}

/* Walk a dotted path ("attachments.0.blocks.1.text.text"); numbers index arrays. NULL when
 * any step is missing (or v is NULL). */
static inline json_t *jget(json_t *v, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
        if (json_is_array(v))
            v = json_array_get(v, strtoul(k, NULL, 10));
        else
            v = json_object_get(v, k);
    }
    return v;
}

/* The string at a dotted path, or NULL when it is missing or no string. */
static inline const char *jstr(json_t *v, const char *path)
{
    return json_string_value(jget(v, path));
}

/* The body an exchange describes, parsed as JSON (json_decref() it); NULL, said in a TAP
 * comment, when it is none. */
static inline json_t *body_json(const herald_exchange *ex)
{
    json_error_t jerr;
    json_t *o = ex->body.data ? json_loads(ex->body.data, 0, &jerr) : NULL;
    if (!o)
        printf("#   body is not JSON: %.200s\n", ex->body.data ? ex->body.data : "(none)");
    return o;
}

/* send() for the event, its body parsed as JSON; the exchange stays for the caller to
 * inspect and clear. */
static inline json_t *send_ev(herald_channel *ch, const herald_event *ev, herald_exchange *ex)
{
    herald_message m = {.ev = ev};
    herald_result res = {0};
    hr_exchange_init(ex, HERALD_PURPOSE_SEND);
    herald_status st = plugin->info->send(ch->state, &m, ex, &res);
    if (st != HERALD_OK)
        printf("#   send returned %s (%s)\n", hr_status_name(st), res.detail);
    return body_json(ex);
}

/* A synthetic response: the HTTP (or SMTP) code, the transport's status (not HERALD_OK:
 * with a "simulated" error), one header when `value` is set, and a body when set. Clear it
 * with hr_response_clear(). */
static inline herald_response response_hdr(long code, herald_status transport, const char *name,
                                           const char *value, const char *body)
{
    herald_response r = {0};
    r.code = code;
    r.transport = transport;
    if (transport != HERALD_OK)
        snprintf(r.error, sizeof r.error, "simulated");
    if (value) {
        hr_response_add_header(&r, name, strlen(name), value, strlen(value));
    }
    if (body)
        hr_buf_adds(&r.body, body);
    return r;
}

/* The same with a Retry-After header when retry_after is set. */
static inline herald_response response(long code, herald_status transport,
                                       const char *retry_after, const char *body)
{
    return response_hdr(code, transport, "Retry-After", retry_after, body);
}

/* Feed a synthetic response to interpret() as the answer to the exchange ex (set up by the
 * caller with the steps it stands for), for message m (may be NULL); ex is cleared. */
static inline herald_result classify_ex(herald_channel *ch, const herald_message *m,
                                        herald_exchange *ex, herald_response r)
{
    herald_result res = {0};
    plugin->info->interpret(ch->state, m, &r, ex, &res);
    hr_response_clear(&r);
    hr_exchange_clear(ex);
    return res;
}

/* The answer to one POST described for `purpose`, for message m (may be NULL). */
static inline herald_result classify_m(herald_channel *ch, const herald_message *m,
                                       herald_purpose purpose, long code, herald_status transport,
                                       const char *retry_after, const char *body)
{
    herald_exchange ex;
    hr_exchange_init(&ex, purpose);
    hr_host.http_request(&ex, "POST", "https://x/");
    return classify_ex(ch, m, &ex, response(code, transport, retry_after, body));
}

/* The same with no message (a one-part delivery). */
static inline herald_result classify(herald_channel *ch, herald_purpose purpose, long code,
                                     herald_status transport, const char *retry_after,
                                     const char *body)
{
    return classify_m(ch, NULL, purpose, code, transport, retry_after, body);
}

/* One TAP assertion: the result is set, with verdict v and status st; a comment shows what
 * it was otherwise. */
static inline int verdict_is(herald_result res, herald_verdict v, herald_status st,
                             const char *label)
{
    int good = ok(res.set && res.verdict == v && res.status == st, label);
    if (!good)
        printf("#   got verdict %s status %s (%s)\n", hr_verdict_name(res.verdict),
               hr_status_name(res.status), res.detail);
    return good;
}

#endif
