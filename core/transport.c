/* transport.c - executing plugins' exchanges with libcurl: one at a time, or many at once on
 * a multi engine that reuses connections and never lets a slow destination hold up others. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "internal.h"

#define DEFAULT_TIMEOUT_MS 10000
#define MAX_CONNECT_TIMEOUT_MS 10000
#define MAX_RESPONSE_HEADERS 100

int hr_transport_global_init(void)
{
    static int done;
    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -1;
        done = 1;
    }
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    herald_response *r = userdata;
    size_t n = size * nmemb;
    if (r->body.len < HR_RESPONSE_BODY_MAX) {
        size_t keep = HR_RESPONSE_BODY_MAX - r->body.len;
        hr_buf_add(&r->body, ptr, n < keep ? n : keep);
    }
    return n; /* read and drop the rest so the connection stays usable */
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    herald_response *r = userdata;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* A new response (after 1xx): forget the previous one's headers. */
        hr_buf_reset(&r->headers);
        r->nheaders = 0;
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon || r->nheaders >= MAX_RESPONSE_HEADERS || memchr(ptr, '\0', n))
        return n; /* a NUL would cut the stored pair: such a header is dropped */
    const char *v = colon + 1;
    const char *end = ptr + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    hr_response_add_header(r, ptr, (size_t)(colon - ptr), v, (size_t)(end - v));
    return n;
}

struct upload {
    const char *data;
    size_t len, off;
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct upload *u = userdata;
    size_t n = size * nitems;
    if (n > u->len - u->off)
        n = u->len - u->off;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

static herald_status map_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HERALD_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return HERALD_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return HERALD_E_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        return HERALD_E_TLS;
    case CURLE_LOGIN_DENIED:
        return HERALD_E_AUTH;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return HERALD_E_NETWORK;
    case CURLE_URL_MALFORMAT:
        return HERALD_E_INVALID;
    case CURLE_UNSUPPORTED_PROTOCOL:
        return HERALD_E_UNSUPPORTED;
    case CURLE_OUT_OF_MEMORY:
        return HERALD_E_NOMEM;
    default:
        return HERALD_E_PROTOCOL;
    }
}

static void set_protocols(CURL *c, const char *protos)
{
#if HAVE_DECL_CURLOPT_PROTOCOLS_STR
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protos);
#else
    long mask = 0;
    if (strstr(protos, "http"))
        mask |= CURLPROTO_HTTP | CURLPROTO_HTTPS;
    if (strstr(protos, "smtp"))
        mask |= CURLPROTO_SMTP | CURLPROTO_SMTPS;
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, mask);
#endif
}

/* One transfer in progress: the easy handle and what must outlive it. */
typedef struct hr_xfer {
    CURL *easy;
    herald_response *r;
    struct curl_slist *hdrs, *rcpts;
    struct upload up;
    char errbuf[CURL_ERROR_SIZE];
    long long t0;
    hr_engine_cb cb;
    void *arg;
    struct hr_xfer *next, *prev; /* in the engine's running list, or next in its idle pool */
    struct host_slot *host;      /* the engine's admission to the destination */
    struct hr_xfer *wait_next;   /* waiting for a connection to that destination */
    int waiting;
    /* The outbound policy, judged on each address libcurl is about to connect
     * to and on the address of a reused connection. */
    const hr_policy *policy;
    int nrefused, nopened, reuse_refused;
    char refused_ip[64];
    char refused_why[256];
} hr_xfer;

static void note_refusal(hr_xfer *x, const char *ip, const hr_policy_rule *rule)
{
    if (x->nrefused++ == 0) {
        snprintf(x->refused_ip, sizeof x->refused_ip, "%s", ip);
        snprintf(x->refused_why, sizeof x->refused_why, "%s", rule->why);
    }
}

/* libcurl asks for a socket once it knows the address: the only point that
 * sees what DNS really answered (rebinding included) before any packet. */
static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    hr_xfer *x = clientp;
    if (purpose == CURLSOCKTYPE_IPCXN) {
        char ip[64];
        const hr_policy_rule *rule =
            hr_policy_refuses_sockaddr(x->policy, &a->addr, a->addrlen, ip, sizeof ip);
        if (rule) {
            note_refusal(x, ip, rule);
            return CURL_SOCKET_BAD; /* libcurl tries the next address, if any */
        }
        x->nopened++;
    }
#ifdef SOCK_CLOEXEC
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
#else
    return socket(a->family, a->socktype, a->protocol);
#endif
}

#if LIBCURL_VERSION_NUM >= 0x075000 /* 7.80.0 */
/* Runs before each request, on a new or a reused connection: a connection
 * opened for a channel allowed to reach an address must not carry another
 * channel's request there. */
static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    hr_xfer *x = clientp;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    const hr_policy_rule *rule = hr_policy_refuses_text(x->policy, primary_ip);
    if (!rule)
        return CURL_PREREQFUNC_OK;
    note_refusal(x, primary_ip, rule);
    x->reuse_refused = 1;
    return CURL_PREREQFUNC_ABORT;
}
#endif

/* Configure x->easy for ex. Returns 0, or -1 with r filled when the exchange
 * cannot run at all. */
static int xfer_setup(hr_xfer *x, const herald_exchange *ex, herald_response *r)
{
    hr_response_clear(r);
    x->r = r;
    x->hdrs = x->rcpts = NULL;
    x->errbuf[0] = '\0';
    x->policy = ex->policy ? ex->policy : hr_policy_builtin();
    x->nrefused = x->nopened = x->reuse_refused = 0;
    if (ex->err != HERALD_OK) {
        r->transport = ex->err;
        snprintf(r->error, sizeof r->error, "%s", ex->errmsg);
        return -1;
    }
    if (ex->kind == HR_EX_NONE) {
        r->transport = HERALD_E_PLUGIN;
        snprintf(r->error, sizeof r->error, "plugin described no request");
        return -1;
    }
    CURL *c = x->easy;
    long long timeout = ex->timeout_ms > 0 ? ex->timeout_ms : DEFAULT_TIMEOUT_MS;
    x->up.data = ex->body.data;
    x->up.len = ex->body.len;
    x->up.off = 0;

    curl_easy_setopt(c, CURLOPT_URL, ex->url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout < MAX_CONNECT_TIMEOUT_MS ? timeout : MAX_CONNECT_TIMEOUT_MS));
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, ex->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, ex->insecure ? 0L : 2L);
    if (ex->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, ex->ca_file);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
#if LIBCURL_VERSION_NUM >= 0x075000
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, x);
#endif

    switch (ex->kind) {
    case HR_EX_HTTP:
        set_protocols(c, "http,https");
        curl_easy_setopt(c, CURLOPT_USERAGENT, "herald/" HERALD_VERSION);
        for (size_t i = 0; i < ex->nheaders; i++)
            x->hdrs = curl_slist_append(x->hdrs, ex->headers[i]);
        x->hdrs = curl_slist_append(x->hdrs, "Expect:"); /* no 100-continue round trip */
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
        if (strcmp(ex->method, "GET") == 0) {
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        } else if (strcmp(ex->method, "HEAD") == 0) {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ex->body.len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, ex->body.data ? ex->body.data : "");
            if (strcmp(ex->method, "POST") != 0)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, ex->method);
        }
        break;
    case HR_EX_CONNECT:
        set_protocols(c, "http,https,smtp,smtps");
        curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
        break;
    case HR_EX_SMTP:
        set_protocols(c, "smtp,smtps");
        if (ex->smtp_flags & HERALD_SMTP_REQUIRE_TLS)
            curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (ex->smtp_user) {
            curl_easy_setopt(c, CURLOPT_USERNAME, ex->smtp_user);
            curl_easy_setopt(c, CURLOPT_PASSWORD, ex->smtp_pass);
        }
        if (ex->smtp_verb) {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, ex->smtp_verb);
        } else {
            if (ex->mail_from)
                curl_easy_setopt(c, CURLOPT_MAIL_FROM, ex->mail_from);
            for (size_t i = 0; i < ex->nrcpts; i++)
                x->rcpts = curl_slist_append(x->rcpts, ex->rcpts[i]);
            curl_easy_setopt(c, CURLOPT_MAIL_RCPT, x->rcpts);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &x->up);
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)ex->body.len);
        }
        break;
    case HR_EX_NONE:
        break;
    }
    x->t0 = hr_now_ms();
    return 0;
}

/* Fill the response from a finished transfer and free per-transfer lists. */
static void xfer_finish(hr_xfer *x, CURLcode rc)
{
    herald_response *r = x->r;
    r->elapsed_ms = hr_now_ms() - x->t0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->code);
    r->transport = map_curl(rc);
    if (rc != CURLE_OK && (x->reuse_refused || (x->nrefused && !x->nopened))) {
        /* Every address was refused: permanent, and nothing was sent. */
        r->transport = HERALD_E_REJECTED;
        r->policy_refused = 1;
        r->code = 0;
        snprintf(r->error, sizeof r->error,
                 "destination %s is refused by the outbound policy (%s); allow it with "
                 "outbound.allow or the channel's allow if intended",
                 x->refused_ip, x->refused_why);
    } else if (rc != CURLE_OK) {
        char *clean = hr_redact(x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        snprintf(r->error, sizeof r->error, "%s%s%s%s", clean,
                 x->nrefused ? " (" : "", x->nrefused ? x->refused_ip : "",
                 x->nrefused ? " was refused by the outbound policy)" : "");
        free(clean);
    }
    curl_slist_free_all(x->hdrs);
    curl_slist_free_all(x->rcpts);
    x->hdrs = x->rcpts = NULL;
}

void hr_transport_run(const herald_exchange *ex, herald_response *r)
{
    hr_xfer x;
    memset(&x, 0, sizeof x);
    if (!(x.easy = curl_easy_init())) {
        hr_response_clear(r);
        r->transport = HERALD_E_NOMEM;
        snprintf(r->error, sizeof r->error, "cannot create a libcurl handle");
        return;
    }
    if (xfer_setup(&x, ex, r) == 0)
        xfer_finish(&x, curl_easy_perform(x.easy));
    curl_easy_cleanup(x.easy);
}

/* ---- the multi engine ---- */

/*
 * libcurl's socket interface on an epoll set: each wakeup drives only the
 * transfers whose sockets are ready (curl_multi_perform() would walk every
 * transfer, so its cost grows with the number in flight), and the timer
 * libcurl asks for drives the rest (timeouts, new transfers).
 */

#define ENGINE_MAX_HOST_CONNECTIONS 64
#define ENGINE_EVENTS 256
#define HOST_BUCKETS 256

/*
 * Transfers to one destination (scheme, host and port) beyond its connection
 * limit wait here, not in libcurl: libcurl's own queue of pending transfers
 * is walked on every curl_multi_remove_handle(), so with thousands waiting
 * (100 webhook subscriptions on one host) removing a finished transfer cost
 * more than running it. Here a finished transfer admits the next in O(1),
 * and a waiting one's timeout only starts when it is admitted.
 */
typedef struct host_slot {
    char *key;
    uint32_t hash;
    unsigned running;
    hr_xfer *wait_head, *wait_tail;
    struct host_slot *next;
} host_slot;

struct hr_engine {
    CURLM *multi;
    int epfd, wakefd;
    long long timer_at; /* when libcurl wants its timeout action; -1: never */
    hr_xfer *running;   /* admitted or waiting for admission */
    hr_xfer *idle;      /* finished transfers whose easy handles are kept for reuse */
    size_t active;
    host_slot *hosts[HOST_BUCKETS];
};

/* "scheme://authority" of url: what libcurl limits connections by. */
static size_t host_key_len(const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return url ? strlen(url) : 0;
    p += 3;
    return (size_t)(p - url) + strcspn(p, "/?#");
}

static host_slot *host_get(hr_engine *e, const char *url)
{
    size_t len = host_key_len(url);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)url[i]) * 16777619u;
    host_slot **b = &e->hosts[h % HOST_BUCKETS];
    for (host_slot *hs = *b; hs; hs = hs->next)
        if (strlen(hs->key) == len && !memcmp(hs->key, url, len))
            return hs;
    host_slot *hs = hr_calloc(1, sizeof *hs);
    hs->key = hr_strndup(url ? url : "", len);
    hs->hash = h;
    hs->next = *b;
    *b = hs;
    return hs;
}

static void running_remove(hr_engine *e, hr_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        e->running = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->next = x->prev = NULL;
}

static void xfer_free(hr_xfer *x)
{
    curl_slist_free_all(x->hdrs);
    curl_slist_free_all(x->rcpts);
    curl_easy_cleanup(x->easy);
    free(x);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    hr_engine *e = userp;
    (void)easy, (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL); /* it may be closed already */
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 &&
        (errno != ENOENT || epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) != 0))
        return -1; /* libcurl fails the transfers on this socket */
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    hr_engine *e = userp;
    (void)multi;
    e->timer_at = timeout_ms < 0 ? -1 : hr_now_ms() + timeout_ms;
    return 0;
}

hr_engine *hr_engine_new(void)
{
    hr_engine *e = hr_calloc(1, sizeof *e);
    e->timer_at = -1;
    if (!(e->multi = curl_multi_init()) || (e->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (e->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        abort();
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = e->wakefd;
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &ev) != 0)
        abort();
    curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)ENGINE_MAX_HOST_CONNECTIONS);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    return e;
}

void hr_engine_free(hr_engine *e)
{
    if (!e)
        return;
    /* Abandon transfers still running: their callbacks never run. */
    for (hr_xfer *x = e->running, *next; x; x = next) {
        next = x->next;
        if (!x->waiting)
            curl_multi_remove_handle(e->multi, x->easy);
        xfer_free(x);
    }
    for (hr_xfer *x = e->idle, *next; x; x = next) {
        next = x->next;
        xfer_free(x);
    }
    for (size_t i = 0; i < HOST_BUCKETS; i++)
        for (host_slot *hs = e->hosts[i], *next; hs; hs = next) {
            next = hs->next;
            free(hs->key);
            free(hs);
        }
    curl_multi_cleanup(e->multi);
    close(e->epfd);
    close(e->wakefd);
    free(e);
}

herald_status hr_engine_submit(hr_engine *e, const herald_exchange *ex, herald_response *r,
                               hr_engine_cb cb, void *arg)
{
    hr_xfer *x = e->idle;
    if (x) {
        e->idle = x->next;
        curl_easy_reset(x->easy);
    } else {
        x = hr_calloc(1, sizeof *x);
        if (!(x->easy = curl_easy_init())) {
            free(x);
            return HERALD_E_NOMEM;
        }
    }
    x->cb = cb;
    x->arg = arg;
    x->next = x->prev = NULL;
    x->host = NULL;
    x->waiting = 0;
    int ok = xfer_setup(x, ex, r) == 0;
    if (ok) {
        x->host = host_get(e, ex->url);
        if (x->host->running >= ENGINE_MAX_HOST_CONNECTIONS) {
            x->waiting = 1;
            x->wait_next = NULL;
            if (x->host->wait_tail)
                x->host->wait_tail->wait_next = x;
            else
                x->host->wait_head = x;
            x->host->wait_tail = x;
        } else if (curl_multi_add_handle(e->multi, x->easy) == CURLM_OK) {
            x->host->running++;
        } else {
            ok = 0;
        }
    }
    if (!ok) {
        if (r->transport == HERALD_OK) {
            r->transport = HERALD_E_INTERNAL;
            snprintf(r->error, sizeof r->error, "cannot start the transfer");
        }
        x->next = e->idle;
        e->idle = x;
        cb(arg); /* report the failure through the normal path */
        return HERALD_OK;
    }
    x->next = e->running;
    if (e->running)
        e->running->prev = x;
    e->running = x;
    e->active++;
    return HERALD_OK;
}

size_t hr_engine_active(const hr_engine *e)
{
    return e->active;
}

void hr_engine_wakeup(hr_engine *e)
{
    uint64_t one = 1;
    while (write(e->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Finish x (its response filled) and hand it to its callback. */
static void engine_done(hr_engine *e, hr_xfer *x, CURLcode rc)
{
    running_remove(e, x);
    xfer_finish(x, rc);
    e->active--;
    x->next = e->idle;
    e->idle = x;
    x->cb(x->arg); /* may submit again; x is already back in the pool */
}

/* A transfer to hs ended: admit the next one waiting for it. */
static void host_release(hr_engine *e, host_slot *hs)
{
    hs->running--;
    while (hs->wait_head && hs->running < ENGINE_MAX_HOST_CONNECTIONS) {
        hr_xfer *w = hs->wait_head;
        if (!(hs->wait_head = w->wait_next))
            hs->wait_tail = NULL;
        w->waiting = 0;
        w->t0 = hr_now_ms();
        if (curl_multi_add_handle(e->multi, w->easy) == CURLM_OK) {
            hs->running++;
        } else {
            snprintf(w->errbuf, sizeof w->errbuf, "cannot start the transfer");
            engine_done(e, w, CURLE_OUT_OF_MEMORY);
        }
    }
    if (hs->running || hs->wait_head)
        return;
    /* Nothing references it any more: forget the destination. */
    for (host_slot **pp = &e->hosts[hs->hash % HOST_BUCKETS]; *pp; pp = &(*pp)->next)
        if (*pp == hs) {
            *pp = hs->next;
            free(hs->key);
            free(hs);
            return;
        }
}

static void engine_collect(hr_engine *e)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        hr_xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(e->multi, x->easy);
        host_slot *hs = x->host;
        engine_done(e, x, rc);
        host_release(e, hs);
    }
}

/* libcurl's timeout action, when it is due. */
static void engine_timer(hr_engine *e)
{
    if (e->timer_at < 0 || e->timer_at > hr_now_ms())
        return;
    int running;
    e->timer_at = -1; /* libcurl sets the next one from inside the call */
    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

int hr_engine_run(hr_engine *e, int timeout_ms)
{
    engine_timer(e); /* transfers just added start here */
    engine_collect(e);
    long long wait = timeout_ms;
    if (e->timer_at >= 0) {
        long long until = e->timer_at - hr_now_ms();
        wait = until < 0 ? 0 : until < wait ? until : wait;
    }
    struct epoll_event evs[ENGINE_EVENTS];
    int n = epoll_wait(e->epfd, evs, ENGINE_EVENTS, (int)wait);
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd == e->wakefd) {
            uint64_t v;
            while (read(e->wakefd, &v, sizeof v) < 0 && errno == EINTR)
                ;
            continue;
        }
        int flags = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                    ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                    ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
        int running;
        curl_multi_socket_action(e->multi, fd, flags, &running);
    }
    engine_timer(e);
    engine_collect(e);
    return (int)e->active;
}
