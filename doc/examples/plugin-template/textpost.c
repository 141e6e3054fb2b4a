/* textpost.c - a minimal herald channel plugin: POSTs each event as plain text
 * ("TITLE\n\nBODY") to a URL. A starting point for your own: copy this
 * directory, rename the plugin (name, file and Makefile), change send() and
 * interpret().
 *
 * It is sans I/O: send() only describes the HTTP request; herald runs it and
 * hands the response to interpret(), which decides ok / retry / failed /
 * disable. */
#include <stdlib.h>
#include <string.h>

#include <herald/plugin.h>

/* One channel's state, built in create(), read-only afterwards: send() and
 * interpret() may run on several threads at once. */
typedef struct textpost {
    const herald_host *host;
    herald_channel *ch;
    char *url;
    char *auth; /* "Bearer TOKEN", or NULL */
    long long timeout_ms;
} textpost;

/* The host checks every channel's settings against this table before
 * create() sees them; `herald plugins -v` prints the help texts. */
static const herald_setting_spec settings[] = {
    {"url", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0,
     "http(s) URL the text is POSTed to"},
    {"token", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0,
     "sent as Authorization: Bearer TOKEN (or token_file)"},
    {"timeout", HERALD_SETTING_INT, 0, 1, 300, "seconds (default 10)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static void destroy(void *state)
{
    textpost *t = state;
    if (!t)
        return;
    free(t->url);
    free(t->auth);
    free(t);
}

static herald_status create(const herald_host *host, herald_channel *ch, const herald_settings *s,
                            void **state, herald_result *res)
{
    const char *url = host->setting_string(s, "url");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG,
                     "url must start with http:// or https://");
        return HERALD_E_CONFIG;
    }
    textpost *t = calloc(1, sizeof *t);
    if (!t)
        return HERALD_E_NOMEM;
    t->host = host;
    t->ch = ch;
    t->timeout_ms = 10000;
    long long secs;
    if (host->setting_int(s, "timeout", &secs))
        t->timeout_ms = secs * 1000;
    const char *token = host->setting_string(s, "token");
    size_t n = token ? strlen(token) : 0;
    if (!(t->url = strdup(url)) || (token && !(t->auth = malloc(sizeof "Bearer " + n)))) {
        destroy(t);
        return HERALD_E_NOMEM;
    }
    if (token) {
        memcpy(t->auth, "Bearer ", 7);
        memcpy(t->auth + 7, token, n + 1);
        host->add_secret(ch, t->auth); /* redacted wherever herald prints it */
    }
    *state = t;
    return HERALD_OK;
}

/* Describe the request. Strings handed to the host are copied, so the
 * temporary body can be freed at once. */
static herald_status describe(textpost *t, const herald_message *m, herald_exchange *ex)
{
    const herald_host *h = t->host;
    const char *title = h->msg_get(m, HERALD_MSG_TITLE);
    const char *body = h->msg_get(m, HERALD_MSG_BODY);
    size_t tl = strlen(title), bl = body ? strlen(body) : 0;
    char *text = malloc(tl + 2 + bl + 1);
    if (!text)
        return HERALD_E_NOMEM;
    memcpy(text, title, tl);
    memcpy(text + tl, "\n\n", 2);
    memcpy(text + tl + 2, body ? body : "", bl + 1);

    herald_status st = h->http_request(ex, "POST", t->url);
    if (st == HERALD_OK)
        st = h->http_header(ex, "Content-Type", "text/plain; charset=utf-8");
    if (st == HERALD_OK)
        st = h->http_header(ex, "X-Herald-Event", h->msg_get(m, HERALD_MSG_TYPE));
    if (st == HERALD_OK && t->auth)
        st = h->http_header(ex, "Authorization", t->auth);
    if (st == HERALD_OK)
        st = h->http_body(ex, text, tl + 2 + bl);
    if (st == HERALD_OK)
        st = h->set_timeout_ms(ex, t->timeout_ms);
    free(text);
    return st;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    (void)res;
    return describe(state, m, ex);
}

/* Classify the answer. The status code says why; herald retries RETRY
 * verdicts on the channel's schedule, never FAILED ones, and disables the
 * channel on DISABLE. */
static herald_status interpret(void *state, const herald_message *m, const herald_response *r,
                               herald_exchange *ex, herald_result *res)
{
    textpost *t = state;
    const herald_host *h = t->host;
    (void)m;
    herald_status ts = h->response_transport(r);
    long code = h->response_code(r);
    if (ts != HERALD_OK) { /* no answer: refused, timed out, TLS failed... */
        h->result(res, h->retryable(ts) ? HERALD_VERDICT_RETRY : HERALD_VERDICT_FAILED, ts,
                  "%s", h->response_error(r));
    } else if (code == 0 && h->exchange_purpose(ex) == HERALD_PURPOSE_TEST) {
        h->result(res, HERALD_VERDICT_OK, HERALD_OK, "reachable; nothing was sent");
    } else if (code >= 200 && code < 300) {
        h->result(res, HERALD_VERDICT_OK, HERALD_OK, "HTTP %ld", code);
    } else if (code == 410) {
        h->result(res, HERALD_VERDICT_DISABLE, HERALD_E_GONE, "HTTP 410: the URL is gone");
    } else if (code == 408 || code == 429 || code >= 500) {
        const char *ra = h->response_header(r, "Retry-After");
        long long at = ra ? h->parse_retry_after(ra, h->now_ms()) : -1;
        h->result(res, HERALD_VERDICT_RETRY,
                  code == 429 ? HERALD_E_RATE_LIMITED : code == 408 ? HERALD_E_TIMEOUT
                                                                    : HERALD_E_SERVER,
                  "HTTP %ld", code);
        if (at > 0)
            h->result_retry_at(res, at);
    } else if (code == 401 || code == 403) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "HTTP %ld: check the token", code);
    } else if (code >= 300 && code < 400) {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_REDIRECT,
                  "HTTP %ld: redirects are not followed; set url to the final address", code);
    } else {
        h->result(res, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "HTTP %ld", code);
    }
    return HERALD_OK;
}

/* Without HERALD_TEST_SEND, a test must not notify anybody: this one only
 * connects (and completes TLS for https). With it, m is a real test message. */
static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    textpost *t = state;
    if (flags & HERALD_TEST_SEND)
        return send(state, m, ex, res);
    (void)res;
    herald_status st = t->host->connect_request(ex, t->url);
    return st == HERALD_OK ? t->host->set_timeout_ms(ex, t->timeout_ms) : st;
}

HERALD_PLUGIN_DEFINE(
    .name = "textpost",
    .version = "1.0.0",
    .description = "POSTs events as plain text to a URL (example plugin)",
    .settings = settings,
    .create = create,
    .send = send,
    .interpret = interpret,
    .test = test,
    .destroy = destroy,
);
