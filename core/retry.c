/* retry.c - when to try a failed delivery again: backoff schedule, jitter, Retry-After, limits. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Close to what webhook services converge on (Svix): quick first retry, then
 * hours apart, about a day in all. Documented in herald.conf(5). */
const hr_retry hr_default_retry = {
    .schedule = {5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000},
    .n = 7,
    .max_attempts = 8,
    .max_age_ms = 3LL * 86400 * 1000,
    .jitter = 0.2,
    .disable_after = 10,
};

herald_status hr_parse_duration(const char *s, long long *ms)
{
    if (!s)
        return HERALD_E_INVALID;
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return HERALD_E_INVALID;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || v < 0)
        return HERALD_E_INVALID;
    static const struct { const char *unit; double ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1000},
    };
    for (size_t i = 0; i < HR_ARRAY_LEN(units); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            double r = v * units[i].ms;
            if (r > 365.0 * 86400000)
                return HERALD_E_INVALID;
            *ms = (long long)r;
            return HERALD_OK;
        }
    }
    return HERALD_E_INVALID;
}

#define RETRY_AFTER_CAP_MS 3600000LL

/* xorshift64*: jitter needs spread, not secrecy. */
static double next_unit(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / (double)(1ULL << 53);
}

long long hr_retry_next(const hr_retry *p, int attempts_done, long long created_ms, long long now,
                        long long hint_at, uint64_t *rng)
{
    if (attempts_done >= p->max_attempts || p->n == 0)
        return -1;
    size_t k = (size_t)(attempts_done > 0 ? attempts_done - 1 : 0);
    long long delay = p->schedule[k < p->n ? k : p->n - 1];
    if (p->jitter > 0) {
        double f = 1.0 + p->jitter * (2.0 * next_unit(rng) - 1.0);
        delay = (long long)((double)delay * f);
    }
    long long next = now + delay;
    /* The destination's Retry-After is a floor, never shortened, but a server
     * cannot park a delivery for longer than twice the scheduled wait or an
     * hour, whichever is more (documented in herald(1)). */
    if (hint_at > next) {
        long long cap = now + (2 * delay > RETRY_AFTER_CAP_MS ? 2 * delay : RETRY_AFTER_CAP_MS);
        next = hint_at < cap ? hint_at : cap;
    }
    if (p->max_age_ms > 0 && next - created_ms > p->max_age_ms)
        return -1;
    return next;
}
