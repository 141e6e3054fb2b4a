/* email.c - the email channel: one MIME message (multipart/alternative, text then HTML,
 * quoted-printable UTF-8) per delivery, sent by the host's libcurl SMTP engine with STARTTLS
 * required or implicit TLS, AUTH, and a NOOP session as the side-effect-free test
 * (CONTRACTS.md, "SMTP via libcurl"). Bodies come from templates the host renders. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <herald/plugin.h>

#include "mime.h"

#define NSEV 6
#define DEFAULT_TIMEOUT_S 30
#define MAX_RCPTS 100

typedef enum tls_mode { TLS_STARTTLS, TLS_IMPLICIT, TLS_NONE } tls_mode;

typedef struct email {
    const herald_host *host;
    herald_channel *ch;
    char *server; /* host name or address */
    long port;
    tls_mode tls;
    char *user, *password;
    char *from, *from_name;
    char **to;
    size_t nto;
    char *helo;
    char *url; /* smtp(s)://server:port/helo */
    char *set; /* template set: directory under the template path */
    char *prefix[NSEV];
    int importance_from; /* severity at and above which the mail is flagged important */
    long long timeout_ms;
    char *ca_file;
    int insecure;
} email;

static const char *const severities[NSEV] = {"debug", "info", "notice", "warning", "error",
                                             "critical"};
static const char *const default_prefix[NSEV] = {"", "", "", "[WARNING] ", "[ERROR] ",
                                                 "[CRITICAL] "};
static const char *const colors[NSEV] = {"#6c757d", "#0d6efd", "#0dcaf0", "#fd7e14", "#dc3545",
                                         "#842029"};

static const herald_setting_spec settings[] = {
    {"server", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0,
     "SMTP server host name or address"},
    {"port", HERALD_SETTING_INT, 0, 1, 65535, "SMTP port (587 for starttls, 465 for implicit)"},
    {"tls", HERALD_SETTING_STRING, 0, 0, 0,
     "starttls (required, the default), implicit, or none (loopback servers only)"},
    {"user", HERALD_SETTING_STRING, 0, 0, 0, "AUTH user name"},
    {"password", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0,
     "AUTH password (or password_file)"},
    {"from", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0, "sender address"},
    {"from_name", HERALD_SETTING_STRING, 0, 0, 0, "sender display name (herald)"},
    {"to", HERALD_SETTING_LIST, 0, 0, 0,
     "recipient addresses for broadcast use; a user's own address wins when addressed"},
    {"helo", HERALD_SETTING_STRING, 0, 0, 0, "name sent in EHLO (this host's name)"},
    {"templates", HERALD_SETTING_STRING, 0, 0, 0,
     "template set: directory under the template path (email)"},
    {"subject_prefixes", HERALD_SETTING_MAP, 0, 0, 0,
     "subject prefix per severity, e.g. { critical = \"[CRIT] \"; }"},
    {"important_from", HERALD_SETTING_STRING, 0, 0, 0,
     "lowest severity flagged Importance: high / X-Priority: 1 (critical)"},
    {"timeout", HERALD_SETTING_INT, 0, 1, 600, "seconds before the attempt is abandoned (30)"},
    {"ca_file", HERALD_SETTING_STRING, 0, 0, 0, "PEM file of CAs trusted for this server"},
    {"insecure", HERALD_SETTING_BOOL, 0, 0, 0, "skip TLS verification (never in production)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *const schemes[] = {"mailto", "mailtos", NULL};

static void destroy(void *state)
{
    email *e = state;
    if (!e)
        return;
    free(e->server);
    free(e->user);
    free(e->password);
    free(e->from);
    free(e->from_name);
    for (size_t i = 0; i < e->nto; i++)
        free(e->to[i]);
    free(e->to);
    free(e->helo);
    free(e->url);
    free(e->set);
    for (int i = 0; i < NSEV; i++)
        free(e->prefix[i]);
    free(e->ca_file);
    free(e);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int severity_index(const char *name)
{
    for (int i = 0; i < NSEV; i++)
        if (name && !strcmp(name, severities[i]))
            return i;
    return -1;
}

static int is_loopback(const char *host)
{
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "[::1]") ||
           !strcasecmp(host, "localhost") || !strncmp(host, "127.", 4);
}

static herald_status config_error(const herald_host *h, herald_result *res, const char *fmt,
                                  ...) HERALD_PRINTF(3, 4);

static herald_status config_error(const herald_host *h, herald_result *res, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG, "%s", msg);
    return HERALD_E_CONFIG;
}

/* Settings that are checked (server, tls, port, addresses, prefixes); the rest is copied. */
static herald_status read_settings(email *e, const herald_settings *s, herald_result *res)
{
    const herald_host *h = e->host;
    const char *server = h->setting_string(s, "server");
    if (!*server || strpbrk(server, " /\\@?#\r\n"))
        return config_error(h, res, "server \"%s\" is not a host name or address", server);
    e->server = strdup(server);
    const char *tls = h->setting_string(s, "tls");
    if (!tls || !strcmp(tls, "starttls"))
        e->tls = TLS_STARTTLS;
    else if (!strcmp(tls, "implicit"))
        e->tls = TLS_IMPLICIT;
    else if (!strcmp(tls, "none"))
        e->tls = TLS_NONE;
    else
        return config_error(h, res, "tls = \"%s\": use starttls, implicit or none", tls);
    long long port = e->tls == TLS_IMPLICIT ? 465 : e->tls == TLS_STARTTLS ? 587 : 25;
    h->setting_int(s, "port", &port);
    e->port = (long)port;
    if (e->tls == TLS_NONE && !is_loopback(server))
        return config_error(h, res,
                            "tls = \"none\" is only allowed for a loopback server, not %s; use "
                            "starttls or implicit",
                            server);

    const char *user = h->setting_string(s, "user");
    const char *password = h->setting_string(s, "password");
    if (user && !password)
        return config_error(h, res, "user %s has no password: set password or password_file",
                            user);
    if (user && e->tls == TLS_NONE)
        return config_error(h, res, "AUTH needs TLS: remove user or use tls = starttls");
    if (has_crlf(user) || has_crlf(password))
        return config_error(h, res, "user and password must not contain CR or LF");
    e->user = dup_or_null(user);
    e->password = dup_or_null(password);
    if (e->password)
        h->add_secret(e->ch, e->password);

    const char *from = h->setting_string(s, "from");
    if (!address_ok(from))
        return config_error(h, res, "from = \"%s\" is not a plain address like alerts@example.org",
                            from ? from : "");
    e->from = strdup(from);
    const char *name = h->setting_string(s, "from_name");
    if (has_crlf(name))
        return config_error(h, res, "from_name must not contain CR or LF");
    e->from_name = strdup(name ? name : "herald");

    size_t nto = h->setting_count(s, "to");
    if (nto > MAX_RCPTS)
        return config_error(h, res, "to lists more than %d recipients; use a mailing list",
                            MAX_RCPTS);
    e->to = calloc(nto + 1, sizeof *e->to);
    if (!e->to)
        return HERALD_E_NOMEM;
    for (size_t i = 0; i < nto; i++) {
        const char *a = h->setting_item(s, "to", i, NULL);
        if (!address_ok(a))
            return config_error(h, res,
                                "to: \"%s\" is not a plain address like ops@example.org", a);
        if (!(e->to[e->nto++] = strdup(a)))
            return HERALD_E_NOMEM;
    }

    const char *helo = h->setting_string(s, "helo");
    char host[256] = "localhost";
    if (!helo && gethostname(host, sizeof host - 1) == 0 && host[0])
        helo = host;
    if (!helo || !*helo || strpbrk(helo, " /?#@\r\n"))
        helo = "localhost";
    e->helo = strdup(helo);

    const char *set = h->setting_string(s, "templates");
    if (set && (!*set || set[0] == '/' || strstr(set, "..") || strchr(set, '\n')))
        return config_error(h, res,
                            "templates = \"%s\": name a directory under the template path, "
                            "such as \"email\"",
                            set);
    e->set = strdup(set ? set : "email");

    for (int i = 0; i < NSEV; i++)
        e->prefix[i] = strdup(default_prefix[i]);
    size_t np = h->setting_count(s, "subject_prefixes");
    for (size_t i = 0; i < np; i++) {
        const char *key;
        const char *v = h->setting_item(s, "subject_prefixes", i, &key);
        int k = severity_index(key);
        if (k < 0 || has_crlf(v))
            return config_error(h, res,
                                "subject_prefixes: \"%s\" is not a severity (debug ... critical) "
                                "or its prefix has a line break",
                                key ? key : "");
        free(e->prefix[k]);
        e->prefix[k] = strdup(v);
    }
    const char *imp = h->setting_string(s, "important_from");
    e->importance_from = imp ? severity_index(imp) : HERALD_SEVERITY_CRITICAL;
    if (e->importance_from < 0)
        return config_error(h, res, "important_from = \"%s\" is not a severity (debug ... critical)",
                            imp);

    long long timeout = DEFAULT_TIMEOUT_S;
    h->setting_int(s, "timeout", &timeout);
    e->timeout_ms = timeout * 1000;
    e->ca_file = dup_or_null(h->setting_string(s, "ca_file"));
    h->setting_bool(s, "insecure", &e->insecure);
    if (e->insecure)
        h->log(e->ch, HERALD_LOG_WARNING, "TLS verification is off (insecure = true)");

    size_t cap = strlen(e->server) + strlen(e->helo) + 32;
    if (!(e->url = malloc(cap)))
        return HERALD_E_NOMEM;
    int v6 = strchr(e->server, ':') && e->server[0] != '[';
    snprintf(e->url, cap, "%s://%s%s%s:%ld/%s", e->tls == TLS_IMPLICIT ? "smtps" : "smtp",
             v6 ? "[" : "", e->server, v6 ? "]" : "", e->port, e->helo);
    return HERALD_OK;
}

static herald_status create(const herald_host *host, herald_channel *ch, const herald_settings *s,
                            void **state, herald_result *res)
{
    email *e = calloc(1, sizeof *e);
    if (!e)
        return HERALD_E_NOMEM;
    e->host = host;
    e->ch = ch;
    herald_status st = read_settings(e, s, res);
    if (st != HERALD_OK) {
        destroy(e);
        return st;
    }
    for (int i = 0; i < NSEV; i++)
        if (!e->prefix[i]) {
            destroy(e);
            return HERALD_E_NOMEM;
        }
    if (!e->server || !e->from || !e->from_name || !e->helo || !e->set) {
        destroy(e);
        return HERALD_E_NOMEM;
    }
    *state = e;
    return HERALD_OK;
}

/* ---- URL form ---- */

static const char *query_get(const char *query, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > n && !strncmp(p, name, n) && p[n] == '=') {
            size_t o = 0;
            for (size_t i = n + 1; i < len && o + 1 < outlen; i++) {
                if (p[i] == '%' && i + 2 < len) {
                    char hex[3] = {p[i + 1], p[i + 2], 0};
                    out[o++] = (char)strtol(hex, NULL, 16);
                    i += 2;
                } else {
                    out[o++] = p[i] == '+' ? ' ' : p[i];
                }
            }
            out[o] = '\0';
            return out;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* Apprise's forms: mailto://user:password@server[:port]?to=a@x,b@y&from=me@x&name=Name
 * &smtp=relay&mode=starttls|ssl. mailtos:// and port 465 mean implicit TLS unless mode
 * says otherwise; mailto:// still requires STARTTLS (herald never sends in the clear,
 * except to a loopback server with mode=none). */
static herald_status from_url(const herald_host *h, const char *url, herald_settings_builder *b,
                              herald_result *res)
{
    static const char form[] =
        "expected mailto://user:password@server[:port]?to=addr[,addr]&from=addr";
    herald_url_parts u = {.struct_size = sizeof u};
    if (h->url_split(url, &u) != HERALD_OK || !u.host || !*u.host) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID, "%s", form);
        return HERALD_E_INVALID;
    }
    char v[1024], from[1100] = "";
    herald_status st = HERALD_OK;
    const char *smtp = query_get(u.query, "smtp", v, sizeof v);
    st = h->settings_put(b, "server", smtp ? smtp : u.host);
    const char *mode = query_get(u.query, "mode", v, sizeof v);
    const char *tls = !mode ? (!strcmp(u.scheme, "mailtos") && (!u.port || !strcmp(u.port, "465"))
                                   ? "implicit"
                                   : u.port && !strcmp(u.port, "465") ? "implicit" : "starttls")
                      : !strcmp(mode, "ssl")      ? "implicit"
                      : !strcmp(mode, "starttls") ? "starttls"
                                                  : mode;
    if (st == HERALD_OK)
        st = h->settings_put(b, "tls", tls);
    if (st == HERALD_OK && u.port)
        st = h->settings_put(b, "port", u.port);
    if (st == HERALD_OK && u.user && *u.user) {
        st = h->settings_put(b, "user", u.user);
        if (st == HERALD_OK && u.password)
            st = h->settings_put(b, "password", u.password);
        if (strchr(u.user, '@'))
            snprintf(from, sizeof from, "%.1000s", u.user);
        else
            snprintf(from, sizeof from, "%.500s@%.500s", u.user, u.host);
    }
    if (query_get(u.query, "from", v, sizeof v))
        snprintf(from, sizeof from, "%s", v);
    if (st == HERALD_OK && from[0])
        st = h->settings_put(b, "from", from);
    if (st == HERALD_OK && query_get(u.query, "name", v, sizeof v))
        st = h->settings_put(b, "from_name", v);
    const char *to = query_get(u.query, "to", v, sizeof v);
    if (!to && from[0])
        to = from; /* as Apprise: no recipient means mail yourself */
    char *list = to ? strdup(to) : NULL, *save = NULL;
    for (char *a = list ? strtok_r(list, ",", &save) : NULL; a && st == HERALD_OK;
         a = strtok_r(NULL, ",", &save))
        st = h->settings_put_item(b, "to", NULL, a);
    free(list);
    h->url_free(&u);
    if (st == HERALD_E_INVALID || st == HERALD_E_CONFIG)
        h->result(res, HERALD_VERDICT_FAILED, st, "%s", form);
    return st;
}

/* ---- the message ---- */

/* RFC 5322 date in UTC, independent of the locale. */
static void rfc5322_date(long long ms, char *out, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static unsigned long fnv1a(const char *s)
{
    unsigned long h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h & 0xffffffffu;
}

/* The first template found for this event: SET/TYPE.EXT, then SET/ each shorter
 * dotted prefix of TYPE, then SET/default.EXT; `fallback` when none exists. */
static char *find_template(const email *e, const char *type, const char *ext, const char *fallback)
{
    const herald_host *h = e->host;
    char name[512];
    char t[256];
    snprintf(t, sizeof t, "%s", type ? type : "");
    for (;;) {
        if (t[0] && !strchr(t, '/')) {
            snprintf(name, sizeof name, "%s/%s.%s", e->set, t, ext);
            char *text = h->template_load(name);
            if (text)
                return text;
        }
        char *dot = strrchr(t, '.');
        if (!dot)
            break;
        *dot = '\0';
    }
    snprintf(name, sizeof name, "%s/default.%s", e->set, ext);
    char *text = h->template_load(name);
    return text ? text : strdup(fallback);
}

/* One part: the event's template rendered, then placed in the set's base layout. */
static char *render_part(const email *e, const herald_message *m, const char *ext,
                         unsigned escape, const char *const *vars, herald_result *res, int *nomem)
{
    const herald_host *h = e->host;
    static const char html_inner[] =
        "<h2>{{title}}</h2>\n{{{body_html}}}\n{{#field_list.0}}<table>\n{{#field_list}}"
        "<tr><td>{{name}}</td><td>{{value}}</td></tr>\n{{/field_list}}</table>\n"
        "{{/field_list.0}}";
    static const char text_inner[] = "{{{title}}}\n\n{{{body}}}\n{{#field_list.0}}\n"
                                     "{{/field_list.0}}{{#field_list}}{{{name}}}: {{{value}}}\n"
                                     "{{/field_list}}";
    const char *type = h->msg_get(m, HERALD_MSG_TYPE);
    char *tmpl = find_template(e, type, ext, escape == HERALD_ESCAPE_HTML ? html_inner : text_inner);
    if (!tmpl) {
        *nomem = 1;
        return NULL;
    }
    char *inner = h->render(e->ch, m, tmpl, vars, escape, 0, res);
    free(tmpl);
    if (!inner)
        return NULL;
    char name[300];
    snprintf(name, sizeof name, "%s/base.%s", e->set, ext);
    char *base = h->template_load(name);
    if (!base)
        return inner;
    const char *withcontent[16];
    size_t n = 0;
    for (; vars[n] && n < 12; n += 2) {
        withcontent[n] = vars[n];
        withcontent[n + 1] = vars[n + 1];
    }
    withcontent[n++] = "content";
    withcontent[n++] = inner;
    withcontent[n] = NULL;
    char *out = h->render(e->ch, m, base, withcontent, escape, 0, res);
    free(base);
    h->free(inner);
    return out;
}

static herald_status refuse(const herald_host *h, herald_result *res, const char *what,
                            const char *fix)
{
    h->result(res, HERALD_VERDICT_FAILED, HERALD_E_INVALID, "%s; %s", what, fix);
    return HERALD_OK;
}

/* Build the whole message into out: 1 when built, 0 when the event cannot be
 * mailed (FAILED in res), -1 when out of memory. */
static int build_message(const email *e, const herald_message *m, const char *const *rcpts,
                         size_t nrcpts, mbuf *out, herald_result *res)
{
    const herald_host *h = e->host;
    const char *title = h->msg_get(m, HERALD_MSG_TITLE);
    const char *id = h->msg_get(m, HERALD_MSG_ID);
    const char *type = h->msg_get(m, HERALD_MSG_TYPE);
    herald_severity sev = h->msg_severity(m);
    unsigned si = (unsigned)sev < NSEV ? (unsigned)sev : NSEV - 1;
    if (has_crlf(title)) {
        refuse(h, res, "the title contains a line break (CR or LF), which would inject mail headers",
               "put multi-line text in the body");
        return 0;
    }

    size_t sublen = strlen(e->prefix[si]) + strlen(title ? title : "") + 1;
    char *subject = malloc(sublen);
    if (!subject)
        return -1;
    snprintf(subject, sublen, "%s%s", e->prefix[si], title ? title : "");

    mbuf html_body = {0};
    md_html(&html_body, h->msg_get(m, HERALD_MSG_BODY));
    char sevlabel[16];
    snprintf(sevlabel, sizeof sevlabel, "%s", severities[si]);
    for (char *p = sevlabel; *p; p++)
        *p = (char)(*p - 32 * (*p >= 'a' && *p <= 'z'));
    const char *vars[] = {"subject",        subject,      "body_html", html_body.data ? html_body.data : "",
                          "color",          colors[si],   "severity_label", sevlabel,
                          "from_name",      e->from_name, NULL};
    char *text = NULL, *html = NULL;
    int okay = -1, nomem = 0;
    if (html_body.failed)
        goto done;
    if (!(text = render_part(e, m, "txt", HERALD_ESCAPE_NONE, vars, res, &nomem)) ||
        !(html = render_part(e, m, "html", HERALD_ESCAPE_HTML, vars, res, &nomem))) {
        okay = nomem ? -1 : 0; /* render() said why in res */
        goto done;
    }

    char date[64];
    rfc5322_date(h->now_ms(), date, sizeof date);
    const char *domain = strrchr(e->from, '@') + 1;
    const char *first = nrcpts ? rcpts[0] : "";
    mb_printf(out, "Date: %s\r\n", date);
    mb_printf(out, "Message-ID: <%s.%08lx@%s>\r\n", id, fnv1a(first), domain);
    mb_add(out, "From: ");
    mb_mailbox(out, e->from_name, e->from);
    mb_add(out, "\r\nTo: ");
    for (size_t i = 0; i < nrcpts; i++)
        mb_printf(out, "%s<%s>", i ? ",\r\n " : "", rcpts[i]);
    mb_add(out, "\r\n");
    mb_header_text(out, "Subject", subject);
    mb_add(out, "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
    mb_printf(out, "X-Herald-Event: %s\r\nX-Herald-Event-Id: %s\r\n", type, id);
    mb_printf(out, "X-Herald-Severity: %s\r\n", severities[si]);
    if ((int)si >= e->importance_from)
        mb_add(out, "Importance: high\r\nX-Priority: 1 (Highest)\r\n");
    char boundary[96];
    snprintf(boundary, sizeof boundary, "=_herald_%s", id);
    mb_printf(out, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", boundary);
    mb_add(out, "This is a multi-part message in MIME format.\r\n");
    mb_printf(out, "\r\n--%s\r\n", boundary);
    mb_add(out, "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    mb_qp(out, text);
    mb_printf(out, "\r\n--%s\r\n", boundary);
    mb_add(out, "Content-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    mb_qp(out, html);
    mb_printf(out, "\r\n--%s--\r\n", boundary);
    okay = out->failed ? -1 : 1;
done:
    free(subject);
    free(html_body.data);
    if (text)
        h->free(text);
    if (html)
        h->free(html);
    return okay;
}

static herald_status smtp_start(const email *e, herald_exchange *ex, const char *mail_from)
{
    const herald_host *h = e->host;
    herald_status st = h->smtp_request(ex, e->url, mail_from,
                                       e->tls == TLS_NONE ? 0u : HERALD_SMTP_REQUIRE_TLS);
    if (st == HERALD_OK)
        st = h->set_timeout_ms(ex, e->timeout_ms);
    if (st == HERALD_OK)
        st = h->set_tls(ex, e->ca_file, e->insecure);
    if (st == HERALD_OK && e->user)
        st = h->smtp_auth(ex, e->user, e->password);
    return st;
}

static herald_status message_request(email *e, const herald_message *m, herald_exchange *ex,
                                     herald_result *res)
{
    const herald_host *h = e->host;
    const char *address = h->msg_get(m, HERALD_MSG_ADDRESS);
    const char *const *rcpts = (const char *const *)e->to;
    size_t nrcpts = e->nto;
    if (address && *address) {
        if (!address_ok(address))
            return refuse(h, res, "the recipient address is not a plain address like "
                                  "name@example.org (or holds CR/LF)",
                          "correct the user's email address");
        rcpts = &address;
        nrcpts = 1;
    }
    if (!nrcpts) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG,
                  "no recipient: set to = [\"ops@example.org\"] on the channel, or route the "
                  "event to users with an email address");
        return HERALD_OK;
    }
    mbuf msg = {0};
    int built = build_message(e, m, rcpts, nrcpts, &msg, res);
    if (built <= 0) {
        free(msg.data);
        return built == 0 ? HERALD_OK : HERALD_E_NOMEM;
    }
    herald_status st = smtp_start(e, ex, e->from);
    for (size_t i = 0; st == HERALD_OK && i < nrcpts; i++)
        st = h->smtp_rcpt(ex, rcpts[i]);
    if (st == HERALD_OK)
        st = h->smtp_body(ex, msg.data, msg.len);
    free(msg.data);
    return st;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    return message_request(state, m, ex, res);
}

/* Without HERALD_TEST_SEND: EHLO, STARTTLS, AUTH, NOOP, QUIT - the certificate and the
 * password are checked and nothing is sent. */
static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    email *e = state;
    if (flags & HERALD_TEST_SEND)
        return message_request(e, m, ex, res);
    herald_status st = smtp_start(e, ex, NULL);
    if (st == HERALD_OK)
        st = e->host->smtp_command(ex, "NOOP");
    return st;
}

static herald_status interpret(void *state, const herald_message *m, const herald_response *r,
                               herald_exchange *ex, herald_result *res)
{
    email *e = state;
    const herald_host *h = e->host;
    (void)m;
    herald_status ts = h->response_transport(r);
    long code = h->response_code(r);
    const char *err = h->response_error(r);
    int testing = h->exchange_purpose(ex) == HERALD_PURPOSE_TEST;
    if (ts == HERALD_OK) {
        /* Only a custom command (the test's NOOP) has its reply passed on as a body. */
        size_t len = 0;
        h->response_body(r, &len);
        if (testing && len > 0)
            h->result(res, HERALD_VERDICT_OK, HERALD_OK,
                      "%s:%ld accepted TLS, the login and NOOP (reply %ld); no mail was sent",
                      e->server, e->port, code);
        else
            h->result(res, HERALD_VERDICT_OK, HERALD_OK, "%s:%ld accepted the message (reply %ld)%s",
                      e->server, e->port, code, testing ? "; a real test message was sent" : "");
        return HERALD_OK;
    }
    if (ts == HERALD_E_AUTH || code == 535 || code == 534) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH,
                  "the server refused the login (reply %ld): check user and password", code);
    } else if (ts == HERALD_E_TLS) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_TLS,
                  "TLS with %s:%ld failed: %s; set ca_file to the CA that signed the server's "
                  "certificate, or check tls (starttls on 587, implicit on 465)",
                  e->server, e->port, err);
    } else if (code >= 500 && code < 600) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_REJECTED,
                  "the server rejected the mail (reply %ld): %s", code, err);
    } else if (code >= 400 && code < 500) {
        h->result(res, HERALD_VERDICT_RETRY, HERALD_E_SERVER,
                  "the server deferred the mail (reply %ld): %s", code, err);
    } else {
        h->result(res, h->retryable(ts) ? HERALD_VERDICT_RETRY : HERALD_VERDICT_FAILED, ts,
                  "%s: %s", h->strerror(ts), err);
    }
    return HERALD_OK;
}

HERALD_PLUGIN_DEFINE(.name = "email", .version = "1.0.0",
                     .description = "email over SMTP: STARTTLS or TLS, AUTH, text and HTML parts",
                     .schemes = schemes, .settings = settings,
                     .flags = HERALD_PLUGIN_F_ADDRESSED, .create = create, .from_url = from_url,
                     .send = send, .interpret = interpret, .test = test, .destroy = destroy);
