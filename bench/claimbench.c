/* claimbench.c - claim throughput of the store with a deep queue: claims and finishes
 * CYCLES deliveries, 128 per transaction, from a queue holding PENDING more. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "store.h"

#define BATCH 128
#define FILL_TX 10000

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int fill(hr_store *s, long n, long long due)
{
    for (long i = 0; i < n;) {
        if (hr_store_begin_batch(s) != HERALD_OK)
            return -1;
        for (long k = 0; k < FILL_TX && i < n; k++, i++) {
            herald_event ev;
            memset(&ev, 0, sizeof ev);
            ev.type = hr_strdup("bench.claim");
            ev.title = hr_strdup("queued");
            ev.severity = HERALD_SEVERITY_NOTICE;
            hr_event_stamp(&ev);
            hr_delivery_new d = {.channel = "hot", .next_at = due, .state = HR_D_PENDING};
            herald_status st = hr_store_submit(s, &ev, &d, 1, 0, NULL);
            hr_event_clear(&ev);
            if (st != HERALD_OK)
                return -1;
        }
        if (hr_store_commit(s) != HERALD_OK)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: claimbench DB PENDING CYCLES\n");
        return 2;
    }
    long pending = atol(argv[2]), cycles = atol(argv[3]);
    char err[512];
    hr_store *s;
    if (hr_store_open(argv[1], &s, err, sizeof err) != HERALD_OK) {
        fprintf(stderr, "claimbench: %s\n", err);
        return 1;
    }
    long long now = hr_now_ms();
    double t0 = now_s();
    if (fill(s, pending + cycles, now - 1000) != 0) {
        fprintf(stderr, "claimbench: %s\n", hr_store_error(s));
        return 1;
    }
    hr_store_checkpoint(s);
    double t1 = now_s();
    long done = 0;
    while (done < cycles) {
        hr_claim *c;
        herald_event **evs;
        size_t n;
        if (hr_store_begin_batch(s) != HERALD_OK ||
            hr_store_claim_channel_events(s, "hot", now, 300000, BATCH, &c, &evs, &n) !=
                HERALD_OK ||
            !n) {
            fprintf(stderr, "claimbench: claim: %s\n", hr_store_error(s));
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            hr_attempt a = {.delivery_id = c[i].id, .started_ms = now, .duration_ms = 1,
                            .verdict = HERALD_VERDICT_OK, .status = HERALD_OK, .code = 204,
                            .detail = "HTTP 204"};
            if (hr_store_finish(s, &a, HR_D_SENT, 0) != HERALD_OK) {
                fprintf(stderr, "claimbench: finish: %s\n", hr_store_error(s));
                return 1;
            }
        }
        hr_claims_free(c, n);
        for (size_t i = 0; i < n; i++)
            hr_event_free(evs[i]);
        free(evs);
        if (hr_store_commit(s) != HERALD_OK) {
            fprintf(stderr, "claimbench: commit: %s\n", hr_store_error(s));
            return 1;
        }
        done += (long)n;
    }
    double t2 = now_s();
    printf("{\"pending\":%ld,\"cycles\":%ld,\"fill_s\":%.3f,\"seconds\":%.4f,\"per_s\":%.0f}\n",
           pending, done, t1 - t0, t2 - t1, (double)done / (t2 - t1));
    hr_store_close(s);
    return 0;
}
