/* host.c - the herald_host function table that plugins call, and the objects it works on. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "internal.h"
#include "template.h"

#define MAX_STEPS_HEADERS 64
#define MAX_REQUEST_BODY (16 * 1024 * 1024)

/* ---- general ---- */

static void h_log(const herald_channel *ch, int level, const char *fmt, ...)
{
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s[%s]", ch && ch->plugin ? ch->plugin->name : "plugin",
             ch ? ch->name : "?");
    va_list ap;
    va_start(ap, fmt);
    hr_vlog(level, prefix, fmt, ap);
    va_end(ap);
}

static void h_free(void *p)
{
    free(p);
}

static const char *h_channel_name(const herald_channel *ch)
{
    return ch ? ch->name : NULL;
}

static herald_status h_add_secret(herald_channel *ch, const char *secret)
{
    (void)ch;
    if (!secret)
        return HERALD_E_INVALID;
    hr_secret_add(secret);
    return HERALD_OK;
}

/* ---- settings ---- */

static const char *h_setting_string(const herald_settings *s, const char *name)
{
    hr_setting *v = hr_settings_get(s, name);
    return v && v->type == HERALD_SETTING_STRING ? v->str : NULL;
}

static int h_setting_int(const herald_settings *s, const char *name, long long *out)
{
    hr_setting *v = hr_settings_get(s, name);
    if (!v || v->type != HERALD_SETTING_INT)
        return 0;
    *out = v->num;
    return 1;
}

static int h_setting_bool(const herald_settings *s, const char *name, int *out)
{
    hr_setting *v = hr_settings_get(s, name);
    if (!v || v->type != HERALD_SETTING_BOOL)
        return 0;
    *out = v->boolean;
    return 1;
}

static size_t h_setting_count(const herald_settings *s, const char *name)
{
    hr_setting *v = hr_settings_get(s, name);
    return v && (v->type == HERALD_SETTING_MAP || v->type == HERALD_SETTING_LIST) ? v->n : 0;
}

static const char *h_setting_item(const herald_settings *s, const char *name, size_t i,
                                   const char **key)
{
    hr_setting *v = hr_settings_get(s, name);
    if (!v || i >= v->n || (v->type != HERALD_SETTING_MAP && v->type != HERALD_SETTING_LIST))
        return NULL;
    if (key)
        *key = v->keys ? v->keys[i] : NULL;
    return v->vals[i];
}

static herald_status h_url_split(const char *url, herald_url_parts *out)
{
    if (!out || out->struct_size < sizeof(herald_url_parts))
        return HERALD_E_INVALID;
    hr_url *u = hr_malloc(sizeof *u);
    char err[256];
    herald_status st = hr_url_split(url, u, err, sizeof err);
    if (st != HERALD_OK) {
        free(u);
        return st;
    }
    out->scheme = u->scheme;
    out->user = u->user;
    out->password = u->password;
    out->host = u->host;
    out->port = u->port;
    out->path = u->path;
    out->query = u->query;
    out->fragment = u->fragment;
    out->host_private = u;
    return HERALD_OK;
}

static void h_url_free(herald_url_parts *parts)
{
    if (!parts || !parts->host_private)
        return;
    hr_url_free(parts->host_private);
    free(parts->host_private);
    parts->host_private = NULL;
}

/* ---- message ---- */

static const char *h_msg_get(const herald_message *m, herald_msg_key key)
{
    const herald_event *ev = m->ev;
    switch (key) {
    case HERALD_MSG_ID: return ev->id;
    case HERALD_MSG_TYPE: return ev->type;
    case HERALD_MSG_TITLE: return ev->title;
    case HERALD_MSG_BODY: return ev->body ? ev->body : "";
    case HERALD_MSG_SOURCE: return ev->source;
    case HERALD_MSG_TIMESTAMP: return ev->timestamp;
    case HERALD_MSG_SEVERITY: return hr_severity_name(ev->severity);
    case HERALD_MSG_USER: return ev->user;
    case HERALD_MSG_ADDRESS: return m->address;
    case HERALD_MSG_DATA: return ev->data;
    case HERALD_MSG_IDEMPOTENCY_KEY: return ev->idempotency_key;
    case HERALD_MSG_ATTEMPT:
        if (m->attempt <= 0)
            return NULL;
        snprintf(((herald_message *)m)->attempt_text, sizeof m->attempt_text, "%d", m->attempt);
        return m->attempt_text;
    }
    return NULL;
}

static herald_severity h_msg_severity(const herald_message *m)
{
    return m->ev->severity;
}

static size_t h_msg_field_count(const herald_message *m)
{
    return m->ev->nfields;
}

static const char *h_msg_field(const herald_message *m, size_t i, const char **name)
{
    if (i >= m->ev->nfields)
        return NULL;
    if (name)
        *name = m->ev->fields[i].name;
    return m->ev->fields[i].value;
}

static const char *h_msg_field_get(const herald_message *m, const char *name)
{
    for (size_t i = 0; i < m->ev->nfields; i++)
        if (strcmp(m->ev->fields[i].name, name) == 0)
            return m->ev->fields[i].value;
    return NULL;
}

static char *h_msg_json(const herald_message *m)
{
    return hr_event_json(m->ev);
}

/* ---- exchange ---- */

void hr_exchange_init(herald_exchange *ex, herald_purpose p)
{
    memset(ex, 0, sizeof *ex);
    ex->purpose = p;
    ex->step = -1;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void hr_exchange_clear(herald_exchange *ex)
{
    free(ex->method);
    free(ex->url);
    strv_free(ex->headers, ex->nheaders);
    hr_buf_free(&ex->body);
    free(ex->ca_file);
    free(ex->mail_from);
    free(ex->smtp_user);
    free(ex->smtp_pass);
    free(ex->smtp_verb);
    strv_free(ex->rcpts, ex->nrcpts);
    herald_purpose p = ex->purpose;
    int step = ex->step;
    memset(ex, 0, sizeof *ex);
    ex->purpose = p;
    ex->step = step;
}

static herald_status ex_fail(herald_exchange *ex, herald_status st, const char *msg)
{
    if (ex->err == HERALD_OK) {
        ex->err = st;
        snprintf(ex->errmsg, sizeof ex->errmsg, "%s", msg);
    }
    return st;
}

static herald_purpose h_exchange_purpose(const herald_exchange *ex)
{
    return ex->purpose;
}

static int h_exchange_step(const herald_exchange *ex)
{
    return ex->step < 0 ? 0 : ex->step;
}

static void new_step(herald_exchange *ex, hr_ex_kind kind)
{
    /* Timeout and TLS choices carry over to later steps of the same exchange. */
    long long timeout = ex->timeout_ms;
    char *ca_file = ex->ca_file;
    int insecure = ex->insecure;
    ex->ca_file = NULL;
    hr_exchange_clear(ex);
    ex->step++;
    ex->kind = kind;
    ex->timeout_ms = timeout;
    ex->ca_file = ca_file;
    ex->insecure = insecure;
}

static int scheme_is(const char *url, const char *const *schemes)
{
    for (; *schemes; schemes++) {
        size_t n = strlen(*schemes);
        if (strncasecmp(url, *schemes, n) == 0 && strncmp(url + n, "://", 3) == 0)
            return 1;
    }
    return 0;
}

static const char *const http_schemes[] = {"http", "https", NULL};
static const char *const smtp_schemes[] = {"smtp", "smtps", NULL};

static herald_status h_http_request(herald_exchange *ex, const char *method, const char *url)
{
    new_step(ex, HR_EX_HTTP);
    if (!method || !*method || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method))
        return ex_fail(ex, HERALD_E_INVALID, "HTTP method must be uppercase letters");
    if (!url || hr_has_ctl(url) || strchr(url, ' ') || !scheme_is(url, http_schemes))
        return ex_fail(ex, HERALD_E_INVALID, "URL must be http:// or https:// without spaces or "
                       "control characters");
    ex->method = hr_strdup(method);
    ex->url = hr_strdup(url);
    return HERALD_OK;
}

static herald_status h_http_header(herald_exchange *ex, const char *name, const char *value)
{
    if (ex->kind != HR_EX_HTTP)
        return ex_fail(ex, HERALD_E_INVALID, "http_header() before http_request()");
    if (!name || !*name || !value || strpbrk(name, ": \t") || hr_has_ctl(name) ||
        hr_has_ctl(value))
        return ex_fail(ex, HERALD_E_INVALID, "HTTP header name or value contains CR, LF, ':' "
                       "or another forbidden character");
    if (ex->nheaders >= MAX_STEPS_HEADERS)
        return ex_fail(ex, HERALD_E_TOO_LARGE, "too many HTTP headers");
    ex->headers = hr_realloc(ex->headers, (ex->nheaders + 1) * sizeof *ex->headers);
    ex->headers[ex->nheaders++] = hr_asprintf("%s: %s", name, value);
    return HERALD_OK;
}

static herald_status h_http_body(herald_exchange *ex, const void *data, size_t len)
{
    if (ex->kind != HR_EX_HTTP)
        return ex_fail(ex, HERALD_E_INVALID, "http_body() before http_request()");
    if (len > MAX_REQUEST_BODY)
        return ex_fail(ex, HERALD_E_TOO_LARGE, "request body over 16 MiB");
    hr_buf_reset(&ex->body);
    hr_buf_add(&ex->body, data, len);
    return HERALD_OK;
}

static herald_status h_connect_request(herald_exchange *ex, const char *url)
{
    new_step(ex, HR_EX_CONNECT);
    static const char *const schemes[] = {"http", "https", "smtp", "smtps", NULL};
    if (!url || hr_has_ctl(url) || !scheme_is(url, schemes))
        return ex_fail(ex, HERALD_E_INVALID, "connect URL must be http(s):// or smtp(s)://");
    ex->url = hr_strdup(url);
    return HERALD_OK;
}

/* Any CR, LF or NUL in an SMTP envelope value would inject commands. */
static int bad_smtp_value(const char *s)
{
    return !s || hr_has_ctl(s) || strpbrk(s, "<>") != NULL;
}

static herald_status h_smtp_request(herald_exchange *ex, const char *url, const char *mail_from,
                                    unsigned flags)
{
    new_step(ex, HR_EX_SMTP);
    if (!url || hr_has_ctl(url) || !scheme_is(url, smtp_schemes))
        return ex_fail(ex, HERALD_E_INVALID, "SMTP URL must be smtp:// or smtps://");
    if (mail_from && bad_smtp_value(mail_from))
        return ex_fail(ex, HERALD_E_INVALID, "sender address contains CR, LF, '<' or '>'");
    ex->url = hr_strdup(url);
    ex->mail_from = hr_strdup(mail_from);
    ex->smtp_flags = flags;
    return HERALD_OK;
}

static herald_status h_smtp_rcpt(herald_exchange *ex, const char *address)
{
    if (ex->kind != HR_EX_SMTP)
        return ex_fail(ex, HERALD_E_INVALID, "smtp_rcpt() before smtp_request()");
    if (bad_smtp_value(address) || !*address)
        return ex_fail(ex, HERALD_E_INVALID, "recipient address is empty or contains CR, LF, "
                       "'<' or '>'");
    ex->rcpts = hr_realloc(ex->rcpts, (ex->nrcpts + 1) * sizeof *ex->rcpts);
    ex->rcpts[ex->nrcpts++] = hr_strdup(address);
    return HERALD_OK;
}

static herald_status h_smtp_auth(herald_exchange *ex, const char *user, const char *password)
{
    if (ex->kind != HR_EX_SMTP)
        return ex_fail(ex, HERALD_E_INVALID, "smtp_auth() before smtp_request()");
    if (!user || !password || hr_has_ctl(user) || hr_has_ctl(password))
        return ex_fail(ex, HERALD_E_INVALID, "SMTP user or password contains control characters");
    free(ex->smtp_user);
    free(ex->smtp_pass);
    ex->smtp_user = hr_strdup(user);
    ex->smtp_pass = hr_strdup(password);
    hr_secret_add(password);
    return HERALD_OK;
}

static herald_status h_smtp_body(herald_exchange *ex, const void *data, size_t len)
{
    if (ex->kind != HR_EX_SMTP)
        return ex_fail(ex, HERALD_E_INVALID, "smtp_body() before smtp_request()");
    if (len > MAX_REQUEST_BODY)
        return ex_fail(ex, HERALD_E_TOO_LARGE, "message over 16 MiB");
    hr_buf_reset(&ex->body);
    hr_buf_add(&ex->body, data, len);
    return HERALD_OK;
}

static herald_status h_smtp_command(herald_exchange *ex, const char *verb)
{
    if (ex->kind != HR_EX_SMTP)
        return ex_fail(ex, HERALD_E_INVALID, "smtp_command() before smtp_request()");
    if (!verb || strspn(verb, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(verb) || !*verb)
        return ex_fail(ex, HERALD_E_INVALID, "SMTP command must be uppercase letters");
    free(ex->smtp_verb);
    ex->smtp_verb = hr_strdup(verb);
    return HERALD_OK;
}

static herald_status h_set_timeout_ms(herald_exchange *ex, long long ms)
{
    if (ms < 1 || ms > 3600 * 1000LL)
        return ex_fail(ex, HERALD_E_INVALID, "timeout must be between 1 ms and 1 hour");
    ex->timeout_ms = ms;
    return HERALD_OK;
}

static herald_status h_set_tls(herald_exchange *ex, const char *ca_file, int insecure)
{
    free(ex->ca_file);
    ex->ca_file = hr_strdup(ca_file);
    ex->insecure = insecure != 0;
    return HERALD_OK;
}

/* ---- response ---- */

void hr_response_clear(herald_response *r)
{
    hr_buf_free(&r->headers);
    hr_buf_free(&r->body);
    memset(r, 0, sizeof *r);
}

static long h_response_code(const herald_response *r)
{
    return r->code;
}

static const char *h_response_header(const herald_response *r, const char *name)
{
    /* The last occurrence wins. */
    const char *found = NULL, *p = r->headers.data;
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *value = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            found = value;
        p = value + strlen(value) + 1;
    }
    return found;
}

void hr_response_add_header(herald_response *r, const char *name, size_t nlen, const char *value,
                            size_t vlen)
{
    hr_buf_add(&r->headers, name, nlen);
    hr_buf_add(&r->headers, "", 1);
    hr_buf_add(&r->headers, value, vlen);
    hr_buf_add(&r->headers, "", 1);
    r->nheaders++;
}

static const void *h_response_body(const herald_response *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

static herald_status h_response_transport(const herald_response *r)
{
    return r->transport;
}

static const char *h_response_error(const herald_response *r)
{
    return r->error;
}

/* ---- result ---- */

static void h_result(herald_result *res, herald_verdict v, herald_status st, const char *fmt, ...)
{
    res->verdict = v;
    res->status = st;
    res->set = 1;
    res->detail[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->detail, sizeof res->detail, fmt, ap);
        va_end(ap);
    }
}

static void h_result_retry_at(herald_result *res, long long unix_ms)
{
    res->retry_at = unix_ms;
}

/* ---- templates (ABI 1.1) ---- */

#define MAX_TEMPLATE_FILE (256 * 1024)

static json_t *jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The context a template sees: the message, the channel, the year, then vars. */
static json_t *render_context(const herald_channel *ch, const herald_message *m,
                              const char *const *vars)
{
    const herald_event *ev = m->ev;
    json_t *fields = json_object(), *list = json_array();
    for (size_t i = 0; i < ev->nfields; i++) {
        json_object_set_new(fields, ev->fields[i].name, json_string(ev->fields[i].value));
        json_array_append_new(list, json_pack("{s:s, s:s}", "name", ev->fields[i].name, "value",
                                              ev->fields[i].value));
    }
    json_t *data = ev->data ? json_loads(ev->data, JSON_DECODE_ANY, NULL) : NULL;
    json_t *ctx = json_object();
    json_object_set_new(ctx, "id", jstr(ev->id));
    json_object_set_new(ctx, "type", jstr(ev->type));
    json_object_set_new(ctx, "severity", jstr(hr_severity_name(ev->severity)));
    json_object_set_new(ctx, "title", jstr(ev->title));
    json_object_set_new(ctx, "body", jstr(ev->body ? ev->body : ""));
    json_object_set_new(ctx, "source", jstr(ev->source));
    json_object_set_new(ctx, "timestamp", jstr(ev->timestamp));
    json_object_set_new(ctx, "user", jstr(ev->user));
    json_object_set_new(ctx, "address", jstr(m->address));
    json_object_set_new(ctx, "channel", jstr(ch ? ch->name : NULL));
    json_object_set_new(ctx, "year", json_stringn(ev->timestamp, strlen(ev->timestamp) >= 4 ? 4 : 0));
    json_object_set_new(ctx, "fields", fields);
    json_object_set_new(ctx, "field_list", list);
    json_object_set_new(ctx, "data", data ? data : json_null());
    for (size_t i = 0; vars && vars[i] && vars[i + 1]; i += 2)
        json_object_set_new(ctx, vars[i], json_string(vars[i + 1]));
    return ctx;
}

static char *h_render(const herald_channel *ch, const herald_message *m, const char *tmpl,
                      const char *const *vars, unsigned escape, size_t max, herald_result *res)
{
    static const hr_template_escape modes[] = {HR_TEMPLATE_HTML, HR_TEMPLATE_JSON, HR_TEMPLATE_RAW};
    if (!m || !tmpl || escape >= sizeof modes / sizeof *modes) {
        if (res)
            h_result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID,
                     "render() needs a message, a template and a HERALD_ESCAPE_* mode");
        return NULL;
    }
    json_t *ctx = render_context(ch, m, vars);
    char err[256];
    char *out = hr_template_render(tmpl, ctx, modes[escape], max, err, sizeof err);
    json_decref(ctx);
    if (!out && res)
        h_result(res, HERALD_VERDICT_FAILED,
                 strstr(err, "output over") ? HERALD_E_TOO_LARGE : HERALD_E_CONFIG, "%s", err);
    return out;
}

/* Template directories, most specific first: HERALD_TEMPLATE_PATH (colon-
 * separated, for tests and packagers) replaces the two built-in ones. */
static char *h_template_load(const char *name)
{
    if (!name || !*name || name[0] == '/' || strstr(name, "..") || hr_has_ctl(name))
        return NULL;
    const char *env = getenv("HERALD_TEMPLATE_PATH");
    char *dirs = hr_strdup(env && *env ? env
                                       : HERALD_SYSCONFDIR "/herald/templates:" HERALD_DATADIR
                                                           "/herald/templates");
    char *text = NULL, *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !text; d = strtok_r(NULL, ":", &save)) {
        char *path = hr_asprintf("%s/%s", d, name);
        char err[256];
        text = hr_read_file(path, 0, MAX_TEMPLATE_FILE, err, sizeof err);
        if (!text && access(path, F_OK) == 0)
            hr_log(HERALD_LOG_WARNING, "template %s: %s", name, err);
        free(path);
    }
    free(dirs);
    return text;
}

/* ---- signing (ABI 1.1) ---- */

static herald_status h_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                                   unsigned char out[32])
{
    unsigned int n = 32;
    if (!key || (!data && len) || keylen > INT_MAX ||
        !HMAC(EVP_sha256(), key, (int)keylen, data ? data : (const void *)"", len, out, &n))
        return HERALD_E_INVALID;
    return HERALD_OK;
}

static void *h_base64_decode(const char *text, size_t *len)
{
    return text ? hr_base64_decode(text, len) : NULL;
}

const herald_host hr_host = {
    .struct_size = sizeof(herald_host),
    .abi_major = HERALD_PLUGIN_ABI_MAJOR,
    .abi_minor = HERALD_PLUGIN_ABI_MINOR,
    .log = h_log,
    .strerror = herald_strerror,
    .retryable = herald_status_retryable,
    .free = h_free,
    .now_ms = hr_now_ms,
    .channel_name = h_channel_name,
    .add_secret = h_add_secret,
    .base64 = hr_base64,
    .setting_string = h_setting_string,
    .setting_int = h_setting_int,
    .setting_bool = h_setting_bool,
    .setting_count = h_setting_count,
    .setting_item = h_setting_item,
    .settings_put = hr_settings_put,
    .settings_put_item = hr_settings_put_item,
    .url_split = h_url_split,
    .url_free = h_url_free,
    .msg_get = h_msg_get,
    .msg_severity = h_msg_severity,
    .msg_field_count = h_msg_field_count,
    .msg_field = h_msg_field,
    .msg_field_get = h_msg_field_get,
    .msg_json = h_msg_json,
    .exchange_purpose = h_exchange_purpose,
    .exchange_step = h_exchange_step,
    .http_request = h_http_request,
    .http_header = h_http_header,
    .http_body = h_http_body,
    .connect_request = h_connect_request,
    .smtp_request = h_smtp_request,
    .smtp_rcpt = h_smtp_rcpt,
    .smtp_auth = h_smtp_auth,
    .smtp_body = h_smtp_body,
    .smtp_command = h_smtp_command,
    .set_timeout_ms = h_set_timeout_ms,
    .set_tls = h_set_tls,
    .response_code = h_response_code,
    .response_header = h_response_header,
    .response_body = h_response_body,
    .response_transport = h_response_transport,
    .response_error = h_response_error,
    .result = h_result,
    .result_retry_at = h_result_retry_at,
    .parse_retry_after = hr_parse_retry_after,
    .render = h_render,
    .template_load = h_template_load,
    .hmac_sha256 = h_hmac_sha256,
    .base64_decode = h_base64_decode,
};
