/* latency.c - submit-to-delivered latency: paces events into heraldd's socket at fixed rates
 * and is itself the webhook receiver (a minimal HTTP/1.1 server answering 204), matching
 * each delivery to its submission by the event's seq field.
 *
 * Usage: latency PORTFILE SOCKET SECONDS RATE [RATE...]
 * Binds 127.0.0.1:0, writes the port to PORTFILE, waits (up to 30 s) for heraldd on SOCKET,
 * warms up for one second at 500 events/s, then offers each RATE for SECONDS and prints one
 * JSON line per rate. Latency runs from the moment an event was due to be written (open
 * loop: a writer that falls behind does not hide the wait) to the moment its delivery's body
 * was read. Every process involved must run on this machine (CLOCK_MONOTONIC is shared).
 * Exits by itself: after the last rate, or at an alarm well past the planned duration. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sorted.h"

#define WARMUP_RATE 500
#define CONN_BUF 65536
#define DRAIN_S 10.0 /* how long deliveries may trail the last submission */

static double *t_due, *t_recv;
static long total, received, duplicates, stray;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int sub_fd;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("latency: write");
            exit(1);
        }
        p += w;
        len -= (size_t)w;
    }
}

/* ---- the receiver ---- */

typedef struct conn {
    int fd;
    size_t len;
    int continued; /* 100 Continue sent for the request being read */
    char buf[CONN_BUF];
} conn;

static void record(const char *body, size_t len)
{
    static const char key[] = "\"seq\":\"";
    const char *p = memmem(body, len, key, sizeof key - 1);
    double t = now_s();
    pthread_mutex_lock(&mu);
    long seq = p ? strtol(p + sizeof key - 1, NULL, 10) : -1;
    if (seq < 0 || seq >= total)
        stray++;
    else if (t_recv[seq] > 0)
        duplicates++;
    else {
        t_recv[seq] = t;
        received++;
    }
    pthread_mutex_unlock(&mu);
}

/* Answers every complete request in c->buf; 0 when the connection must close. */
static int serve(conn *c)
{
    static const char no_content[] = "HTTP/1.1 204 No Content\r\n\r\n";
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    for (;;) {
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            return c->len < CONN_BUF - 1;
        size_t head = (size_t)(end - c->buf) + 4;
        long clen = 0;
        int expect = 0;
        for (char *l = strstr(c->buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
            if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
                clen = strtol(l + 17, NULL, 10);
            else if (strncasecmp(l + 2, "Expect: 100-continue", 20) == 0)
                expect = 1;
        }
        if (clen < 0 || head + (size_t)clen > CONN_BUF - 1)
            return 0;
        if (c->len < head + (size_t)clen) {
            if (expect && !c->continued) {
                write_all(c->fd, cont, sizeof cont - 1);
                c->continued = 1;
            }
            return 1;
        }
        record(c->buf + head, (size_t)clen);
        write_all(c->fd, no_content, sizeof no_content - 1);
        c->continued = 0;
        c->len -= head + (size_t)clen;
        memmove(c->buf, c->buf + head + (size_t)clen, c->len);
    }
}

static void *receiver(void *arg)
{
    int lfd = *(int *)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("latency: epoll");
        exit(1);
    }
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept(lfd, NULL, NULL);
                if (fd < 0)
                    continue;
                c = calloc(1, sizeof *c);
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            ssize_t r = read(c->fd, c->buf + c->len, CONN_BUF - 1 - c->len);
            if (r > 0) {
                c->len += (size_t)r;
                if (serve(c))
                    continue;
            } else if (r < 0 && errno == EINTR) {
                continue;
            }
            close(c->fd); /* also removes it from the epoll set */
            free(c);
        }
    }
    return NULL;
}

/* ---- the submitter ---- */

static long ack_from, ack_to, acked, ack_errors;
static double *t_ack;

static void *ack_reader(void *arg)
{
    (void)arg;
    FILE *in = fdopen(dup(sub_fd), "r");
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        double t = now_s();
        pthread_mutex_lock(&mu);
        long i = ack_from + acked + ack_errors;
        if (i < ack_to) {
            if (strncmp(line, "{\"ok\":true", 10) == 0) {
                t_ack[i] = t;
                acked++;
            } else if (ack_errors++ < 3) {
                fprintf(stderr, "latency: %s", line);
            }
        }
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

/* Offers events first..first+n-1 at rate per second; returns the writer's worst lag (s). */
static double offer(long first, long n, double rate)
{
    char *buf = malloc((size_t)n * 256 + 1);
    double t0 = now_s() + 0.01, lag = 0;
    pthread_mutex_lock(&mu);
    ack_from = first;
    ack_to = first + n;
    acked = ack_errors = 0;
    pthread_mutex_unlock(&mu);
    for (long i = 0; i < n;) {
        double now = now_s();
        long due = (long)((now - t0) * rate) + 1;
        if (due > n)
            due = n;
        size_t len = 0;
        for (; i < due; i++) {
            double at = t0 + (double)i / rate;
            t_due[first + i] = at;
            if (now - at > lag)
                lag = now - at;
            len += (size_t)sprintf(buf + len,
                                   "{\"op\":\"submit\",\"event\":{\"type\":\"bench.latency\","
                                   "\"title\":\"latency %ld\",\"body\":\"a benchmark "
                                   "notification\",\"fields\":{\"seq\":\"%ld\"}}}\n",
                                   first + i, first + i);
        }
        if (len)
            write_all(sub_fd, buf, len);
        if (i < n) {
            double next = t0 + (double)i / rate;
            struct timespec ts = {(time_t)next, (long)((next - (double)(time_t)next) * 1e9)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
        }
    }
    free(buf);
    return lag;
}

static long got_between(long first, long n)
{
    long k = 0;
    pthread_mutex_lock(&mu);
    for (long i = first; i < first + n; i++)
        k += t_recv[i] > 0;
    pthread_mutex_unlock(&mu);
    return k;
}

static void wait_for(long first, long n, double until)
{
    while (now_s() < until) {
        pthread_mutex_lock(&mu);
        int acks_done = acked + ack_errors >= ack_to - ack_from;
        pthread_mutex_unlock(&mu);
        if (acks_done && got_between(first, n) == n)
            return;
        usleep(2000);
    }
}

static void report(long first, long n, double rate, double seconds, double lag)
{
    double *lat = malloc((size_t)n * sizeof *lat), *ack = malloc((size_t)n * sizeof *ack);
    long nl = 0, na = 0;
    pthread_mutex_lock(&mu);
    for (long i = first; i < first + n; i++) {
        if (t_recv[i] > 0)
            lat[nl++] = (t_recv[i] - t_due[i]) * 1e3;
        if (t_ack[i] > 0)
            ack[na++] = (t_ack[i] - t_due[i]) * 1e3;
    }
    long errs = ack_errors, dups = duplicates, strays = stray;
    pthread_mutex_unlock(&mu);
    qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
    qsort(ack, (size_t)na, sizeof *ack, cmp_double);
    double span = t_due[first + n - 1] - t_due[first];
    printf("{\"rate\":%.0f,\"events\":%ld,\"seconds\":%.0f,\"offered_per_s\":%.1f,"
           "\"acked\":%ld,\"errors\":%ld,\"delivered\":%ld,\"lost\":%ld,\"duplicates\":%ld,"
           "\"stray\":%ld,\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,\"writer_max_lag_ms\":%.3f}\n",
           rate, n, seconds, span > 0 ? (double)(n - 1) / span : 0, na, errs, nl, n - nl, dups,
           strays, pct(lat, nl, .50), pct(lat, nl, .95), pct(lat, nl, .99),
           nl ? lat[nl - 1] : -1, pct(ack, na, .50), pct(ack, na, .99), lag * 1e3);
    fflush(stdout);
    free(lat);
    free(ack);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: latency PORTFILE SOCKET SECONDS RATE [RATE...]\n");
        return 2;
    }
    double seconds = atof(argv[3]);
    int nrates = argc - 4;
    double *rates = calloc((size_t)nrates, sizeof *rates);
    total = WARMUP_RATE;
    for (int r = 0; r < nrates; r++) {
        rates[r] = atof(argv[4 + r]);
        if (rates[r] <= 0 || seconds <= 0) {
            fprintf(stderr, "latency: rates and seconds must be positive\n");
            return 2;
        }
        total += (long)(rates[r] * seconds);
    }
    alarm((unsigned)(30 + (seconds + DRAIN_S + 2) * (nrates + 1)));
    t_due = calloc((size_t)total, sizeof *t_due);
    t_recv = calloc((size_t)total, sizeof *t_recv);
    t_ack = calloc((size_t)total, sizeof *t_ack);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0) {
        perror("latency: listen");
        return 1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *pf = fopen(tmp, "w");
    if (!pf || fprintf(pf, "%d\n", ntohs(sin.sin_port)) < 0 || fclose(pf) != 0 ||
        rename(tmp, argv[1]) != 0) {
        perror("latency: port file");
        return 1;
    }
    pthread_t rt, at;
    pthread_create(&rt, NULL, receiver, &lfd);

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[2]);
    for (double end = now_s() + 30;; usleep(20000)) {
        sub_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(sub_fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            break;
        close(sub_fd);
        if (now_s() > end) {
            fprintf(stderr, "latency: heraldd does not answer on %s\n", argv[2]);
            return 1;
        }
    }
    pthread_create(&at, NULL, ack_reader, NULL);

    long first = 0;
    offer(first, WARMUP_RATE, WARMUP_RATE);
    wait_for(first, WARMUP_RATE, now_s() + DRAIN_S);
    first += WARMUP_RATE;
    for (int r = 0; r < nrates; r++) {
        long n = (long)(rates[r] * seconds);
        double lag = offer(first, n, rates[r]);
        wait_for(first, n, t_due[first + n - 1] + DRAIN_S);
        report(first, n, rates[r], seconds, lag);
        first += n;
        usleep(500000);
    }
    return 0;
}
