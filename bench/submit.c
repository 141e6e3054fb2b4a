/* submit.c - load generator for heraldd's socket: pipelines N submit requests on one
 * connection (a writer thread) while reading the replies, and prints what was acknowledged.
 * CHANNELS, when given, is a comma-separated list of channels every event is sent to. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int fd;
static long n;
static char *to; /* ,"to":["a","b"] or "" */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *writer(void *arg)
{
    (void)arg;
    size_t cap = (1 << 20) + 4096 + strlen(to);
    char *buf = malloc(cap);
    size_t len = 0;
    for (long i = 0; i < n; i++) {
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"op\":\"submit\",\"event\":{\"type\":\"bench.event\","
                                "\"title\":\"bench %ld\",\"body\":\"a benchmark notification\","
                                "\"fields\":{\"seq\":\"%ld\"}}%s}\n",
                                i, i, to);
        if (len > (1 << 20) || i == n - 1) {
            size_t off = 0;
            while (off < len) {
                ssize_t w = write(fd, buf + off, len - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    perror("submit: write");
                    exit(1);
                }
                off += (size_t)w;
            }
            len = 0;
        }
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: submit SOCKET N [CHANNELS]\n");
        return 2;
    }
    n = atol(argv[2]);
    to = calloc(1, argc > 3 ? 3 * strlen(argv[3]) + 16 : 1);
    if (argc > 3) { /* names are [a-z0-9_-]: no escaping needed */
        char *p = stpcpy(to, ",\"to\":[\"");
        for (const char *c = argv[3]; *c; c++) {
            if (*c == ',')
                p = stpcpy(p, "\",\"");
            else
                *p++ = *c;
        }
        strcpy(p, "\"]");
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("submit: connect");
        return 1;
    }
    double t0 = now_s();
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    FILE *in = fdopen(fd, "r");
    char line[4096];
    long ok = 0, bad = 0;
    while (ok + bad < n && fgets(line, sizeof line, in)) {
        if (strncmp(line, "{\"ok\":true", 10) == 0)
            ok++;
        else if (bad++ < 3)
            fprintf(stderr, "submit: %s", line);
    }
    double t1 = now_s();
    pthread_join(t, NULL);
    printf("{\"acked\":%ld,\"errors\":%ld,\"seconds\":%.4f}\n", ok, bad, t1 - t0);
    return ok == n ? 0 : 1;
}
