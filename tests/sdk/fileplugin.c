/* fileplugin.c - a third-party style plugin built from <herald/plugin.h> alone:
 * a blocking channel that appends each event's JSON as one line to a file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <herald/plugin.h>

typedef struct sink {
    const herald_host *host;
    herald_channel *ch;
    char *path;
} sink;

static const herald_setting_spec settings[] = {
    {"path", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0, "file the events are appended to"},
    {NULL, 0, 0, 0, 0, NULL},
};

static herald_status create(const herald_host *host, herald_channel *ch, const herald_settings *s,
                            void **state, herald_result *res)
{
    const char *path = host->setting_string(s, "path");
    if (path[0] != '/') {
        host->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG, "path must be absolute");
        return HERALD_E_CONFIG;
    }
    sink *k = calloc(1, sizeof *k);
    if (!k || !(k->path = strdup(path))) {
        free(k);
        return HERALD_E_NOMEM;
    }
    k->host = host;
    k->ch = ch;
    *state = k;
    return HERALD_OK;
}

static herald_status append(sink *k, const char *line, herald_result *res)
{
    int fd = open(k->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        k->host->result(res, HERALD_VERDICT_FAILED, HERALD_E_IO, "cannot open %s: %s", k->path,
                        strerror(errno));
        return HERALD_OK;
    }
    size_t n = strlen(line);
    ssize_t w = write(fd, line, n);
    int ok = w == (ssize_t)n && write(fd, "\n", 1) == 1;
    close(fd);
    if (!ok)
        k->host->result(res, HERALD_VERDICT_RETRY, HERALD_E_IO, "short write to %s", k->path);
    else
        k->host->result(res, HERALD_VERDICT_OK, HERALD_OK, "appended to %s", k->path);
    return HERALD_OK;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    sink *k = state;
    (void)ex; /* blocking plugin: does its own I/O */
    char *json = k->host->msg_json(m);
    if (!json)
        return HERALD_E_NOMEM;
    herald_status st = append(k, json, res);
    k->host->free(json);
    return st;
}

static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    sink *k = state;
    if (flags & HERALD_TEST_SEND)
        return send(state, m, ex, res);
    if (access(k->path, F_OK) == 0 ? access(k->path, W_OK) != 0 : 0)
        k->host->result(res, HERALD_VERDICT_FAILED, HERALD_E_IO, "%s is not writable", k->path);
    else
        k->host->result(res, HERALD_VERDICT_OK, HERALD_OK, "%s is writable; nothing written",
                        k->path);
    return HERALD_OK;
}

static void destroy(void *state)
{
    sink *k = state;
    free(k->path);
    free(k);
}

HERALD_PLUGIN_DEFINE(
    .name = "filesink",
    .version = "1.0.0",
    .description = "appends events as JSON lines to a file (example third-party plugin)",
    .settings = settings,
    .flags = HERALD_PLUGIN_F_BLOCKING,
    .create = create,
    .send = send,
    .test = test,
    .destroy = destroy,
);
