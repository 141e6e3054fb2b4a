/* httplat.c - acceptance latency of heraldd's HTTP API at fixed request rates: an open-loop
 * HTTP/1.1 load generator (what wrk2 does; wrk itself is closed-loop: a server that slows
 * down slows wrk down with it, and the wait it caused is never measured).
 *
 * Usage: httplat HOST PORT TOKEN SECONDS RATE [RATE...]
 * Opens POOL keep-alive connections to HOST:PORT, warms up for one second at 500 requests/s
 * (not reported), then offers each RATE for SECONDS and prints one JSON line per rate.
 * Request i of a rate is due at t0 + i/RATE and goes out on an idle connection (one request
 * outstanding per connection); when none is idle, it waits its turn, in order. Every request
 * is `POST /v1/events` with `Authorization: Bearer TOKEN` and a small event whose fields.seq
 * is its number. Latency runs from the moment a request was due (open loop: a server that
 * falls behind cannot hide the wait) to the moment its whole response was read, on
 * CLOCK_MONOTONIC. "ok" counts 202 answers, "other" any other status (the first one seen is
 * "other_status"), "unanswered" the requests still without an answer DRAIN_S after the last
 * was due; percentiles are over the answered ones. "queued_max" is the most requests that
 * were due and waiting for an idle connection at once; "reconnects" counts connections the
 * server closed between requests (each reopened). Exits 1, with a message, on a
 * connection error or a response it cannot parse; otherwise by itself: after the last rate,
 * or at an alarm well past the planned duration. Single-threaded epoll; a timerfd paces. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "sorted.h"

#define WARMUP_RATE 500
#define POOL 64        /* keep-alive connections, at most one request outstanding on each */
#define CONN_BUF 16384 /* a response's head and body must fit */
#define DRAIN_S 10.0   /* how long answers may trail the last request's due time */

typedef struct conn {
    int fd;
    int want_out; /* EPOLLOUT registered: the request is partly written */
    long req;     /* the request outstanding, or -1 when idle */
    size_t out_len, out_off, in_len;
    char out[1024];
    char in[CONN_BUF + 1]; /* NUL-terminated for strtol */
} conn;

static const char *host, *port, *token;
static char host_hdr[300];
static conn pool[POOL];
static int ep, tfd;
static int idle[POOL], idle_head, idle_n; /* idle connections, used round robin */
static double *t_due, *t_done;
static short *status;
static long reconnects;
/* the rate being offered: its requests, how many answered, the first status not 202 */
static long ph_first, ph_n, ph_answered;
static int ph_other_status;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "httplat: %s:%s: %s: %s\n", host, port, what, why);
    exit(1);
}

static void dial(conn *c)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        die("resolve", gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        die("connect", strerror(errno));
    freeaddrinfo(ai);
    int one = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("socket setup", strerror(errno));
    c->fd = fd;
    c->want_out = 0;
    c->in_len = 0;
}

/* The server closed an idle connection (or asked to): open another in its place. */
static void redial(conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    dial(c);
    reconnects++;
}

static void set_out(conn *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (c->want_out != on && epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die("epoll_ctl", strerror(errno));
    c->want_out = on;
}

static void flush_out(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(c, 1);
            return;
        }
        if (w <= 0)
            die("send", strerror(errno));
        c->out_off += (size_t)w;
    }
    set_out(c, 0);
}

static void send_req(conn *c, long i)
{
    char body[256];
    int blen = snprintf(body, sizeof body,
                        "{\"type\":\"bench.event\",\"title\":\"bench %ld\",\"body\":\"a "
                        "benchmark notification\",\"fields\":{\"seq\":\"%ld\"}}",
                        i, i);
    int len = snprintf(c->out, sizeof c->out,
                       "POST /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                       host_hdr, token, blen, body);
    if (len < 0 || (size_t)len >= sizeof c->out)
        die("request", "does not fit its buffer (token too long?)");
    c->req = i;
    c->out_len = (size_t)len;
    c->out_off = 0;
    flush_out(c);
}

/* The header value of `name` in the head [line, end), or NULL. */
static const char *header(const char *head, const char *end, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = memmem(head, (size_t)(end - head), "\r\n", 2); l && l < end;
         l = memmem(l + 2, (size_t)(end - l - 2), "\r\n", 2)) {
        if ((size_t)(end - l - 2) > n && strncasecmp(l + 2, name, n) == 0 && l[2 + n] == ':') {
            const char *v = l + 3 + n;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

/* The length of the chunked body at p (n bytes read), 0 while incomplete, -1 if malformed. */
static long chunked_len(const char *p, size_t n)
{
    size_t pos = 0;
    for (;;) {
        const char *eol = memmem(p + pos, n - pos, "\r\n", 2);
        if (!eol)
            return 0;
        char *e;
        long size = strtol(p + pos, &e, 16);
        if (e == p + pos || size < 0 || size > CONN_BUF)
            return -1;
        pos = (size_t)(eol - p) + 2;
        if (size == 0) { /* trailer lines, then an empty line */
            for (;;) {
                eol = memmem(p + pos, n - pos, "\r\n", 2);
                if (!eol)
                    return 0;
                int empty = eol == p + pos;
                pos = (size_t)(eol - p) + 2;
                if (empty)
                    return (long)pos;
            }
        }
        pos += (size_t)size + 2;
        if (pos > n)
            return 0;
        if (memcmp(p + pos - 2, "\r\n", 2) != 0)
            return -1;
    }
}

/* A complete response at the start of c->in: its length, with *code and *closing set;
 * 0 while incomplete; -1 when it is not HTTP/1.x or does not fit the buffer. */
static long parse(conn *c, int *code, int *closing)
{
    char *b = c->in;
    size_t n = c->in_len;
    b[n] = '\0';
    char *end = memmem(b, n, "\r\n\r\n", 4);
    if (!end)
        return n >= CONN_BUF ? -1 : 0;
    size_t head = (size_t)(end - b) + 4;
    if (strncmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ' || b[9] < '1' || b[9] > '5' ||
        b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9')
        return -1;
    *code = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    const char *te = header(b, end, "Transfer-Encoding");
    const char *cl = header(b, end, "Content-Length");
    long body;
    if (*code < 200 || *code == 204 || *code == 304) {
        body = 0;
    } else if (te && strncasecmp(te, "chunked", 7) == 0) {
        body = chunked_len(b + head, n - head);
        if (body <= 0)
            return body < 0 || n >= CONN_BUF ? -1 : 0;
    } else if (cl) {
        char *e;
        body = strtol(cl, &e, 10);
        if (e == cl || body < 0)
            return -1;
    } else {
        return -1; /* a body delimited by the close: not what an HTTP/1.1 API sends */
    }
    if (head + (size_t)body > CONN_BUF)
        return -1;
    if (head + (size_t)body > n)
        return 0;
    const char *conn_hdr = header(b, end, "Connection");
    *closing = conn_hdr ? strncasecmp(conn_hdr, "close", 5) == 0
                        : b[7] == '0'; /* HTTP/1.0 closes unless asked not to */
    return (long)(head + (size_t)body);
}

static void readable(conn *c)
{
    ssize_t r = read(c->fd, c->in + c->in_len, CONN_BUF - c->in_len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r <= 0) {
        if (c->req >= 0) {
            char why[128];
            snprintf(why, sizeof why, "%s with request %ld outstanding",
                     r == 0 ? "closed by the server" : strerror(errno), c->req);
            die("connection lost", why);
        }
        redial(c); /* an idle connection the server timed out: still in the idle ring */
        return;
    }
    c->in_len += (size_t)r;
    double t = now_s();
    long k;
    int code, closing = 0;
    while ((k = parse(c, &code, &closing)) > 0) {
        c->in_len -= (size_t)k;
        memmove(c->in, c->in + k, c->in_len);
        if (code < 200)
            continue; /* 100 Continue and the like: the answer follows */
        if (c->req < 0)
            die("protocol", "a response to no request");
        t_done[c->req] = t;
        status[c->req] = (short)code;
        if (c->req >= ph_first && c->req < ph_first + ph_n) {
            ph_answered++;
            if (code != 202 && !ph_other_status)
                ph_other_status = code;
        }
        c->req = -1;
        if (closing)
            break;
    }
    if (k < 0) {
        c->in[c->in_len < 200 ? c->in_len : 200] = '\0';
        die("unparseable response", c->in);
    }
    if (c->req >= 0)
        return;
    if (closing)
        redial(c);
    idle[(idle_head + idle_n++) % POOL] = (int)(c - pool);
}

static void arm(double at)
{
    struct itimerspec its = {.it_value = {(time_t)at, (long)((at - (double)(time_t)at) * 1e9)}};
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1; /* zero would disarm it */
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        die("timerfd_settime", strerror(errno));
}

/* Offers requests first..first+n-1 at rate per second and waits for their answers (at most
 * DRAIN_S past the last one's due time); returns the most requests queued at once. */
static long offer(long first, long n, double rate)
{
    double t0 = now_s() + 0.01;
    for (long i = 0; i < n; i++)
        t_due[first + i] = t0 + (double)i / rate;
    double end = t_due[first + n - 1] + DRAIN_S;
    ph_first = first;
    ph_n = n;
    ph_answered = 0;
    ph_other_status = 0;
    reconnects = 0;
    long sent = 0, queued_max = 0;
    struct epoll_event evs[POOL + 1];
    while (ph_answered < n) {
        double now = now_s();
        if (now > end)
            break;
        long due = now < t0 ? 0 : (long)((now - t0) * rate) + 1;
        if (due > n)
            due = n;
        while (sent < due && idle_n) {
            conn *c = &pool[idle[idle_head]];
            idle_head = (idle_head + 1) % POOL;
            idle_n--;
            send_req(c, first + sent++);
        }
        if (due - sent > queued_max)
            queued_max = due - sent;
        arm(due < n ? t_due[first + due] : end);
        int ne = epoll_wait(ep, evs, POOL + 1, -1);
        if (ne < 0 && errno != EINTR)
            die("epoll_wait", strerror(errno));
        for (int e = 0; e < ne; e++) {
            conn *c = evs[e].data.ptr;
            if (!c) {
                unsigned long long ticks;
                if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                    die("timerfd read", strerror(errno));
                continue;
            }
            if (evs[e].events & EPOLLOUT)
                flush_out(c);
            if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                readable(c);
        }
    }
    return queued_max;
}

static void report(long first, long n, double rate, long queued_max)
{
    double *lat = malloc((size_t)n * sizeof *lat);
    long nl = 0, ok = 0, other = 0;
    for (long i = first; i < first + n; i++) {
        if (t_done[i] <= 0)
            continue;
        lat[nl++] = (t_done[i] - t_due[i]) * 1e3;
        if (status[i] == 202)
            ok++;
        else
            other++;
    }
    qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
    printf("{\"rate\":%.0f,\"requests\":%ld,\"ok\":%ld,\"other\":%ld,\"other_status\":%d,"
           "\"unanswered\":%ld,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"queued_max\":%ld,\"reconnects\":%ld}\n",
           rate, n, ok, other, ph_other_status, n - nl, pct(lat, nl, .50), pct(lat, nl, .90),
           pct(lat, nl, .99), nl ? lat[nl - 1] : -1, queued_max, reconnects);
    fflush(stdout);
    free(lat);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: httplat HOST PORT TOKEN SECONDS RATE [RATE...]\n");
        return 2;
    }
    host = argv[1];
    port = argv[2];
    token = argv[3];
    double seconds = atof(argv[4]);
    int nrates = argc - 5;
    double *rates = calloc((size_t)nrates, sizeof *rates);
    long total = WARMUP_RATE;
    for (int r = 0; r < nrates; r++) {
        rates[r] = atof(argv[5 + r]);
        if (rates[r] <= 0 || seconds <= 0 || (long)(rates[r] * seconds) < 1) {
            fprintf(stderr, "httplat: rates and seconds must be positive\n");
            return 2;
        }
        total += (long)(rates[r] * seconds);
    }
    snprintf(host_hdr, sizeof host_hdr, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    alarm((unsigned)(30 + (seconds + DRAIN_S + 2) * (nrates + 1)));
    t_due = calloc((size_t)total, sizeof *t_due);
    t_done = calloc((size_t)total, sizeof *t_done);
    status = calloc((size_t)total, sizeof *status);

    ep = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || tfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) != 0)
        die("epoll", strerror(errno));
    for (int i = 0; i < POOL; i++) {
        pool[i].req = -1;
        dial(&pool[i]);
        idle[i] = i;
    }
    idle_n = POOL;

    long first = 0;
    offer(first, WARMUP_RATE, WARMUP_RATE);
    long warm_ok = 0;
    for (long i = 0; i < WARMUP_RATE; i++)
        warm_ok += status[i] == 202;
    if (warm_ok < WARMUP_RATE)
        fprintf(stderr, "httplat: warm-up: %ld of %d requests answered 202 (first other: %d)\n",
                warm_ok, WARMUP_RATE, ph_other_status);
    first += WARMUP_RATE;
    for (int r = 0; r < nrates; r++) {
        long n = (long)(rates[r] * seconds);
        long queued_max = offer(first, n, rates[r]);
        report(first, n, rates[r], queued_max);
        first += n;
        usleep(500000);
    }
    return 0;
}
