/* tap.h - a tiny TAP producer for the C unit tests (run by automake's tap-driver). */
#ifndef HERALD_TAP_H
#define HERALD_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *file, int line, const char *name)
{
    tap_n++;
    printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
    if (!cond) {
        printf("#   failed at %s:%d\n", file, line);
        tap_failed++;
    }
    fflush(stdout);
    return cond;
}

static inline int tap_is_str(const char *got, const char *want, const char *file, int line,
                      const char *name)
{
    int cond = (got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0);
    if (!tap_ok(cond, file, line, name)) {
        printf("#        got: '%s'\n", got ? got : "(null)");
        printf("#   expected: '%s'\n", want ? want : "(null)");
    }
    return cond;
}

static inline int tap_like(const char *got, const char *needle, const char *file, int line,
                    const char *name)
{
    int cond = got && strstr(got, needle) != NULL;
    if (!tap_ok(cond, file, line, name)) {
        printf("#        got: '%s'\n", got ? got : "(null)");
        printf("#   expected to contain: '%s'\n", needle);
    }
    return cond;
}

static inline int tap_is_int(long long got, long long want, const char *file, int line,
                      const char *name)
{
    int cond = got == want;
    if (!tap_ok(cond, file, line, name))
        printf("#        got: %lld\n#   expected: %lld\n", got, want);
    return cond;
}

#define ok(c, name) tap_ok(!!(c), __FILE__, __LINE__, name)
#define is_str(g, w, name) tap_is_str((g), (w), __FILE__, __LINE__, name)
#define like(g, w, name) tap_like((g), (w), __FILE__, __LINE__, name)
#define is_int(g, w, name) tap_is_int((long long)(g), (long long)(w), __FILE__, __LINE__, name)

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
