/* test_retry.c - the retry policy: schedule, jitter, limits, Retry-After floor and cap. */
#include "config.h"

#include "internal.h"
#include "tap.h"

#define NOW 1800000000000LL

int main(void)
{
    hr_retry p = hr_default_retry;
    p.jitter = 0;
    uint64_t rng = 42;
    is_int(hr_retry_next(&p, 1, NOW, NOW, 0, &rng) - NOW, 5000, "after the 1st attempt: 5 s");
    is_int(hr_retry_next(&p, 2, NOW, NOW, 0, &rng) - NOW, 300000, "after the 2nd: 5 min");
    is_int(hr_retry_next(&p, 7, NOW - 1000, NOW, 0, &rng) - NOW, 36000000,
           "after the 7th: 10 h (the schedule's last step)");
    is_int(hr_retry_next(&p, 8, NOW, NOW, 0, &rng), -1, "8 attempts made: no more (dead)");
    is_int(hr_retry_next(&p, 5, NOW - 3LL * 86400000 + 1000, NOW, 0, &rng), -1,
           "a retry past max_age (3 days) is not scheduled");

    /* Retry-After is a floor ... */
    is_int(hr_retry_next(&p, 1, NOW, NOW, NOW + 60000, &rng) - NOW, 60000,
           "Retry-After later than the schedule wins");
    is_int(hr_retry_next(&p, 1, NOW, NOW, NOW + 1000, &rng) - NOW, 5000,
           "Retry-After sooner than the schedule does not shorten it");
    /* ... capped at max(2 x scheduled, 1 h). */
    is_int(hr_retry_next(&p, 1, NOW, NOW, NOW + 86400000, &rng) - NOW, 3600000,
           "a day-long Retry-After is capped at an hour when the schedule says 5 s");
    is_int(hr_retry_next(&p, 5, NOW - 1000, NOW, NOW + 86400000, &rng) - NOW, 36000000,
           "... and at twice the scheduled wait when that is longer (2 x 5 h)");

    p.jitter = 0.2;
    long long lo = 1LL << 62, hi = 0;
    for (int i = 0; i < 2000; i++) {
        long long d = hr_retry_next(&p, 2, NOW, NOW, 0, &rng) - NOW;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    ok(lo >= 240000 && hi <= 360000, "jitter stays within +-20% of 5 min");
    ok(hi - lo > 60000, "jitter actually spreads the retries");
    return done_testing();
}
