/* daemon_client.c - talking to heraldd over its Unix socket: shared by libherald, the
 * herald CLI and its light front-end. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

#define DAEMON_REPLY_MAX (16 * 1024 * 1024)

const char *hr_daemon_socket(const hr_config *cfg)
{
    return cfg->socket ? cfg->socket : HERALD_RUNSTATEDIR "/herald/heraldd.sock";
}

/* Connected socket to a running heraldd, or -1 when none answers. */
int hr_daemon_connect(const hr_config *cfg)
{
    const char *path = hr_daemon_socket(cfg);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request line, one reply line. NULL when the daemon went away. */
json_t *hr_daemon_call(int fd, json_t *req, long long timeout_ms)
{
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    hr_buf out = {0};
    hr_buf_adds(&out, line);
    hr_buf_add(&out, "\n", 1);
    free(line);
    size_t off = 0;
    while (off < out.len) {
        ssize_t n = send(fd, out.data + off, out.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            hr_buf_free(&out);
            return NULL;
        }
        off += (size_t)n;
    }
    hr_buf_free(&out);
    hr_buf in = {0};
    long long deadline = hr_now_ms() + timeout_ms;
    while (!in.data || !memchr(in.data, '\n', in.len)) {
        long long left = deadline - hr_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)(left > 60000 ? 60000 : left)) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!(p.revents & (POLLIN | POLLHUP)))
            continue;
        char chunk[65536];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0 || in.len + (size_t)n > DAEMON_REPLY_MAX)
            break;
        hr_buf_add(&in, chunk, (size_t)n);
    }
    json_t *reply = in.data ? json_loads(in.data, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    hr_buf_free(&in);
    return reply;
}
