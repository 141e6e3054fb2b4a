/* slowsink.c - a blocking test plugin that takes delay_ms per delivery, then appends the
 * event's title as one line to a file: shows that blocking plugins run on workers. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <herald/plugin.h>

typedef struct slow {
    const herald_host *host;
    char *path;
    long long delay_ms;
} slow;

static const herald_setting_spec settings[] = {
    {"path", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0, "file to append titles to"},
    {"delay_ms", HERALD_SETTING_INT, 0, 0, 60000, "time each delivery takes"},
    {NULL, 0, 0, 0, 0, NULL},
};

static herald_status create(const herald_host *host, herald_channel *ch, const herald_settings *s,
                            void **state, herald_result *res)
{
    (void)ch, (void)res;
    slow *k = calloc(1, sizeof *k);
    if (!k || !(k->path = strdup(host->setting_string(s, "path")))) {
        free(k);
        return HERALD_E_NOMEM;
    }
    k->host = host;
    if (!host->setting_int(s, "delay_ms", &k->delay_ms))
        k->delay_ms = 0;
    *state = k;
    return HERALD_OK;
}

static herald_status send(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res)
{
    slow *k = state;
    (void)ex;
    struct timespec t = {(time_t)(k->delay_ms / 1000), (long)(k->delay_ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
    const char *title = k->host->msg_get(m, HERALD_MSG_TITLE);
    size_t n = strlen(title);
    char *line = malloc(n + 2);
    if (!line)
        return HERALD_E_NOMEM;
    memcpy(line, title, n);
    line[n] = '\n';
    /* One write per line: workers append at the same time. */
    int fd = open(k->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, line, n + 1) == (ssize_t)(n + 1);
    free(line);
    if (fd >= 0)
        close(fd);
    k->host->result(res, ok ? HERALD_VERDICT_OK : HERALD_VERDICT_RETRY, ok ? HERALD_OK : HERALD_E_IO,
                    ok ? "appended" : "cannot append");
    return HERALD_OK;
}

static herald_status test(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res)
{
    (void)flags;
    return send(state, m, ex, res);
}

static void destroy(void *state)
{
    slow *k = state;
    free(k->path);
    free(k);
}

HERALD_PLUGIN_DEFINE(
    .name = "slowsink",
    .version = "1.0.0",
    .description = "blocking test plugin: sleeps, then appends the title to a file",
    .settings = settings,
    .flags = HERALD_PLUGIN_F_BLOCKING,
    .create = create,
    .send = send,
    .test = test,
    .destroy = destroy,
);
