/* test_status.c - status messages, retry classes, names, severities, Retry-After. */
#include "config.h"

#include <string.h>

#include "internal.h"
#include "tap.h"

#define LAST_STATUS HERALD_E_NETWORK

int main(void)
{
    for (int s = HERALD_OK; s <= LAST_STATUS; s++) {
        const char *msg = herald_strerror((herald_status)s);
        const char *name = hr_status_name((herald_status)s);
        char label[64];
        snprintf(label, sizeof label, "status %d has a message and a name", s);
        ok(strcmp(msg, "unknown status") != 0 && strcmp(name, "unknown") != 0, label);
        for (int k = HERALD_OK; k < s; k++)
            if (strcmp(hr_status_name((herald_status)k), name) == 0)
                ok(0, "status names are unique");
    }
    is_str(herald_strerror((herald_status)999), "unknown status", "unknown code");

    ok(herald_status_retryable(HERALD_E_TIMEOUT), "timeout is retryable");
    ok(herald_status_retryable(HERALD_E_CONNECT), "connect is retryable");
    ok(herald_status_retryable(HERALD_E_SERVER), "5xx is retryable");
    ok(herald_status_retryable(HERALD_E_RATE_LIMITED), "429 is retryable");
    ok(herald_status_retryable(HERALD_E_NETWORK), "network is retryable");
    ok(!herald_status_retryable(HERALD_OK), "ok is not retryable");
    ok(!herald_status_retryable(HERALD_E_REJECTED), "4xx is permanent");
    ok(!herald_status_retryable(HERALD_E_GONE), "410 is permanent");
    ok(!herald_status_retryable(HERALD_E_TLS), "TLS failure is permanent");
    ok(!herald_status_retryable(HERALD_E_AUTH), "auth failure is permanent");
    ok(!herald_status_retryable(HERALD_E_REDIRECT), "redirect is permanent");
    ok(!herald_status_retryable(HERALD_E_ABI), "ABI mismatch is permanent");

    is_str(hr_verdict_name(HERALD_VERDICT_DISABLE), "disable", "verdict name");
    herald_severity sev;
    ok(hr_severity_parse("warning", &sev) && sev == HERALD_SEVERITY_WARNING, "parse warning");
    ok(!hr_severity_parse("loud", &sev), "reject unknown severity");
    ok(!hr_severity_parse("Warning", &sev), "severities are lowercase");
    is_str(hr_severity_name(HERALD_SEVERITY_CRITICAL), "critical", "severity name");

    long long now = 1700000000000LL;
    is_int(hr_parse_retry_after("30", now), now + 30000, "Retry-After seconds");
    is_int(hr_parse_retry_after(" 2 ", now), now + 2000, "Retry-After with spaces");
    is_int(hr_parse_retry_after("1.5", now), now + 1500, "Retry-After fractional (Discord)");
    is_int(hr_parse_retry_after("Wed, 15 Nov 2023 22:13:40 GMT", now), 1700086420000LL,
           "Retry-After HTTP-date");
    is_int(hr_parse_retry_after("Wed, 15 Nov 2023 22:13:10 GMT", 1700086430000LL),
           1700086430000LL, "Retry-After in the past means now");
    is_int(hr_parse_retry_after("soon", now), -1, "garbage Retry-After");
    is_int(hr_parse_retry_after("-5", now), -1, "negative Retry-After");
    is_int(hr_parse_retry_after("30x", now), -1, "trailing junk");
    is_int(hr_parse_retry_after(NULL, now), -1, "absent Retry-After");
    return done_testing();
}
