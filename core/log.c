/* log.c - the one logging function, with levels and redaction of registered secrets. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "internal.h"

static int log_level = HERALD_LOG_WARNING;
static int use_syslog;
static const char *log_ident = "herald";
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t nsecrets;

/* Secrets shorter than this would redact ordinary words; they are still
 * accepted but never matched. */
#define MIN_SECRET_LEN 4

void hr_log_set_ident(const char *ident)
{
    log_ident = ident;
}

void hr_log_use_syslog(const char *ident)
{
    openlog(ident, LOG_PID, LOG_DAEMON);
    use_syslog = 1;
}

void hr_log_set_level(int level)
{
    log_level = level;
}

int hr_log_level(void)
{
    return log_level;
}

void hr_secret_add(const char *secret)
{
    if (!secret || strlen(secret) < MIN_SECRET_LEN)
        return;
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < nsecrets; i++) {
        if (strcmp(secrets[i], secret) == 0) {
            pthread_mutex_unlock(&secrets_lock);
            return;
        }
    }
    secrets = hr_realloc(secrets, (nsecrets + 1) * sizeof *secrets);
    secrets[nsecrets++] = hr_strdup(secret);
    pthread_mutex_unlock(&secrets_lock);
}

void hr_secrets_clear(void)
{
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    nsecrets = 0;
    pthread_mutex_unlock(&secrets_lock);
}

char *hr_redact(const char *src)
{
    hr_buf out = {0};
    pthread_mutex_lock(&secrets_lock);
    const char *p = src;
    while (*p) {
        size_t best = 0;
        for (size_t i = 0; i < nsecrets; i++) {
            size_t n = strlen(secrets[i]);
            if (n > best && strncmp(p, secrets[i], n) == 0)
                best = n;
        }
        if (best) {
            hr_buf_adds(&out, "***");
            p += best;
        } else {
            hr_buf_add(&out, p, 1);
            p++;
        }
    }
    pthread_mutex_unlock(&secrets_lock);
    hr_buf_add(&out, NULL, 0);
    return out.data;
}

static const char *level_name(int level)
{
    switch (level) {
    case HERALD_LOG_ERROR: return "error";
    case HERALD_LOG_WARNING: return "warning";
    case HERALD_LOG_NOTICE: return "notice";
    case HERALD_LOG_INFO: return "info";
    default: return "debug";
    }
}

void hr_vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char *clean = hr_redact(msg);
    if (use_syslog) {
        syslog(level, "%s%s%s", prefix ? prefix : "", prefix ? ": " : "", clean);
        free(clean);
        return;
    }
    /* One write per line so concurrent lines never interleave. */
    char line[2300];
    snprintf(line, sizeof line, "%s: %s: %s%s%s\n", log_ident, level_name(level), prefix ? prefix : "",
             prefix ? ": " : "", clean);
    fputs(line, stderr);
    free(clean);
}

void hr_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hr_vlog(level, NULL, fmt, ap);
    va_end(ap);
}
