/* submit.c - load generator for heraldd's socket: pipelines N submit requests on one
 * connection (a writer thread) while reading the replies, and prints what was acknowledged. */
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
static const char *channel;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *writer(void *arg)
{
    (void)arg;
    char *buf = malloc(1 << 20);
    size_t len = 0;
    for (long i = 0; i < n; i++) {
        len += (size_t)snprintf(buf + len, 1024,
                                "{\"op\":\"submit\",\"event\":{\"type\":\"bench.event\","
                                "\"title\":\"bench %ld\",\"body\":\"a benchmark notification\","
                                "\"fields\":{\"seq\":\"%ld\"}}%s%s%s}\n",
                                i, i, channel ? ",\"to\":[\"" : "", channel ? channel : "",
                                channel ? "\"]" : "");
        if (len > (1 << 20) - 1024 || i == n - 1) {
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
        fprintf(stderr, "usage: submit SOCKET N [CHANNEL]\n");
        return 2;
    }
    n = atol(argv[2]);
    channel = argc > 3 ? argv[3] : NULL;
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
