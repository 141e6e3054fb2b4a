/* herald_queue.c - the CLI's queue commands: log, show, retry, queue, stats, channel. */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "store.h"

static void ts(long long ms, char *out, size_t len)
{
    if (ms <= 0)
        snprintf(out, len, "-");
    else
        hr_rfc3339(ms, out, len);
}

static hr_store *open_queue(hr_config *cfg)
{
    char err[1024];
    char *db = hr_config_database(cfg, err, sizeof err);
    hr_store *s = NULL;
    if (!db || hr_store_open(db, &s, err, sizeof err) != HERALD_OK)
        cli_die("cannot open the queue: %s", err);
    free(db);
    return s;
}

static json_t *delivery_json(const hr_delivery_row *r)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:i, s:s, s:I, s:s, s:I, s:I, s:o}", "id",
                     (json_int_t)r->id, "event", r->event_id, "type",
                     r->event_type ? r->event_type : "", "channel", r->channel, "recipient",
                     r->recipient ? json_string(r->recipient) : json_null(), "state",
                     hr_dstate_name(r->state), "attempts", r->attempts, "status",
                     hr_status_name(r->last_status), "code", (json_int_t)r->last_code, "detail",
                     r->last_detail ? r->last_detail : "", "created_ms", (json_int_t)r->created_ms,
                     "updated_ms", (json_int_t)r->updated_ms, "next_at",
                     r->state == HR_D_PENDING ? json_integer(r->next_at) : json_null());
}

static void print_json(json_t *o)
{
    json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
}

int cli_log(cli_ctx *c, int argc, char **argv)
{
    enum { O_JSON = 256, O_SINCE, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"channel", required_argument, NULL, 'C'}, {"status", required_argument, NULL, 's'},
        {"event", required_argument, NULL, 'e'},   {"since", required_argument, NULL, O_SINCE},
        {"limit", required_argument, NULL, 'n'},   {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, O_CONFIG}, {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    hr_log_filter f = {.state = -1};
    int as_json = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+C:s:e:n:", opts, NULL)) != -1) {
        switch (opt) {
        case 'C': f.channel = optarg; break;
        case 's': {
            hr_dstate st;
            if (!hr_dstate_parse(optarg, &st))
                cli_die("unknown status '%s'; use pending, inflight, sent, failed, dead or "
                        "deferred", optarg);
            f.state = (int)st;
            break;
        }
        case 'e': f.event_type = optarg; break;
        case O_SINCE: {
            long long ms;
            if (hr_parse_duration(optarg, &ms) != HERALD_OK)
                cli_die("--since %s is not a duration like 30m, 2h or 7d", optarg);
            f.since_ms = hr_now_ms() - ms;
            break;
        }
        case 'n': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 100000)
                cli_die("--limit must be a number from 1 to 100000");
            f.limit = (size_t)n;
            break;
        }
        case O_JSON: as_json = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP:
            fputs("Usage: herald log [-C CHANNEL] [-s STATUS] [-e TYPE] [--since DURATION] "
                  "[-n LIMIT] [--json]\n\nList deliveries, newest first. TYPE may use '*'.\n",
                  stdout);
            exit(0);
        default: cli_die("unknown option '%s' for log; see herald log --help", argv[optind - 1]);
        }
    }
    cli_load(c, 1);
    hr_store *s = open_queue(c->cfg);
    hr_delivery_row *rows = NULL;
    size_t n = 0;
    if (hr_store_log(s, &f, &rows, &n) != HERALD_OK)
        cli_die("cannot read the delivery log: %s", hr_store_error(s));
    json_t *arr = as_json ? json_array() : NULL;
    if (!as_json && n)
        printf("%-8s %-24s %-36s %-20s %-14s %-8s %3s %s\n", "DELIVERY", "UPDATED", "EVENT",
               "TYPE", "CHANNEL", "STATE", "TRY", "DETAIL");
    for (size_t i = 0; i < n; i++) {
        if (as_json) {
            json_array_append_new(arr, delivery_json(&rows[i]));
            continue;
        }
        char when[32];
        ts(rows[i].updated_ms, when, sizeof when);
        printf("%-8lld %-24s %-36s %-20s %-14s %-8s %3d %s\n", rows[i].id, when,
               rows[i].event_id, rows[i].event_type ? rows[i].event_type : "", rows[i].channel,
               hr_dstate_name(rows[i].state), rows[i].attempts,
               rows[i].last_detail ? rows[i].last_detail : "");
    }
    if (as_json)
        print_json(arr);
    hr_delivery_rows_free(rows, n);
    hr_store_close(s);
    cli_free(c);
    return 0;
}

int cli_show(cli_ctx *c, int argc, char **argv)
{
    int as_json = cli_simple_opts(c, argc, argv, "show EVENT_ID [--json]",
                                  "Show an event, its deliveries and every attempt.");
    if (argc - optind != 1)
        cli_die("show needs one EVENT_ID; find ids with herald log");
    const char *id = argv[optind];
    cli_load(c, 1);
    hr_store *s = open_queue(c->cfg);
    herald_event *ev = hr_store_event(s, id);
    if (!ev)
        cli_die("no event %s in the queue; find ids with herald log", id);
    hr_log_filter f = {.state = -1, .event_id = id, .limit = 10000};
    hr_delivery_row *rows = NULL;
    size_t n = 0;
    if (hr_store_log(s, &f, &rows, &n) != HERALD_OK)
        cli_die("cannot read the delivery log: %s", hr_store_error(s));
    char *evjson = hr_event_json(ev);
    json_t *out = as_json ? json_pack("{s:o, s:o}", "event", json_loads(evjson, 0, NULL),
                                      "deliveries", json_array())
                          : NULL;
    if (!as_json)
        printf("event %s\n  type %s, severity %s, created %s\n  title: %s\n", ev->id, ev->type,
               hr_severity_name(ev->severity), ev->timestamp, ev->title);
    for (size_t i = n; i-- > 0;) {
        hr_delivery_row *r = &rows[i];
        hr_attempt_row *att = NULL;
        size_t na = 0;
        hr_store_attempts(s, r->id, &att, &na);
        json_t *jd = NULL;
        if (as_json) {
            jd = delivery_json(r);
            json_t *ja = json_array();
            for (size_t k = 0; k < na; k++)
                json_array_append_new(
                    ja, json_pack("{s:I, s:I, s:s, s:s, s:I, s:s, s:s}", "started_ms",
                                  (json_int_t)att[k].started_ms, "duration_ms",
                                  (json_int_t)att[k].duration_ms, "verdict",
                                  hr_verdict_name(att[k].verdict), "status",
                                  hr_status_name(att[k].status), "code", (json_int_t)att[k].code,
                                  "detail", att[k].detail ? att[k].detail : "", "response",
                                  att[k].excerpt ? att[k].excerpt : ""));
            json_object_set_new(jd, "attempts_log", ja);
            json_array_append_new(json_object_get(out, "deliveries"), jd);
        } else {
            char next[32] = "";
            if (r->state == HR_D_PENDING)
                ts(r->next_at, next, sizeof next);
            printf("delivery %lld to %s%s%s: %s after %d attempt%s%s%s\n", r->id, r->channel,
                   r->recipient ? " for " : "", r->recipient ? r->recipient : "",
                   hr_dstate_name(r->state), r->attempts, r->attempts == 1 ? "" : "s",
                   next[0] ? ", next at " : "", next);
            for (size_t k = 0; k < na; k++) {
                char when[32];
                ts(att[k].started_ms, when, sizeof when);
                printf("  %s  %-7s %-12s %4ld %6lld ms  %s\n", when,
                       hr_verdict_name(att[k].verdict), hr_status_name(att[k].status),
                       att[k].code, att[k].duration_ms, att[k].detail ? att[k].detail : "");
            }
        }
        hr_attempt_rows_free(att, na);
    }
    if (as_json)
        print_json(out);
    free(evjson);
    hr_event_free(ev);
    hr_delivery_rows_free(rows, n);
    hr_store_close(s);
    cli_free(c);
    return 0;
}

int cli_retry(cli_ctx *c, int argc, char **argv)
{
    enum { O_DEAD = 256, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"dead", no_argument, NULL, O_DEAD}, {"config", required_argument, NULL, O_CONFIG},
        {"help", no_argument, NULL, O_HELP}, {NULL, 0, NULL, 0},
    };
    int dead = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (opt) {
        case O_DEAD: dead = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP:
            fputs("Usage: herald retry DELIVERY_ID | --dead\n\nQueue a finished delivery (or "
                  "every dead one) for a new attempt now.\n", stdout);
            exit(0);
        default: cli_die("unknown option '%s' for retry; see herald retry --help",
                         argv[optind - 1]);
        }
    }
    long long id = 0;
    if (dead == (argc - optind == 1))
        cli_die("retry needs one DELIVERY_ID or --dead");
    if (!dead) {
        char *end;
        id = strtoll(argv[optind], &end, 10);
        if (*end || id <= 0)
            cli_die("'%s' is not a delivery id; find ids with herald log", argv[optind]);
    }
    cli_load(c, 1);
    hr_store *s = open_queue(c->cfg);
    size_t n = 0;
    if (hr_store_requeue(s, id, dead, hr_now_ms(), &n) != HERALD_OK)
        cli_die("%s", hr_store_error(s));
    printf("%zu deliver%s queued for a new attempt\n", n, n == 1 ? "y" : "ies");
    hr_store_close(s);
    cli_free(c);
    return n ? 0 : EXIT_NOTHING;
}

int cli_purge(cli_ctx *c, int argc, char **argv)
{
    enum { O_OLDER = 256, O_JSON, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"older-than", required_argument, NULL, O_OLDER}, {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, O_CONFIG}, {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int as_json = 0, opt;
    long long age = -1;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (opt) {
        case O_OLDER:
            if (hr_parse_duration(optarg, &age) != HERALD_OK || age <= 0)
                cli_die("--older-than '%s' is not a duration; give one like 30d, 12h or 90m",
                        optarg);
            break;
        case O_JSON: as_json = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP:
            fputs("Usage: herald purge [--older-than DURATION] [--json]\n\nDelete finished "
                  "events older than DURATION (default: the configured retention) with\ntheir "
                  "deliveries and attempts, and processed webhook receipts as old. Events\nwith "
                  "a delivery still to make are kept. heraldd does this by itself.\n", stdout);
            exit(0);
        default:
            cli_die("unknown option '%s' for purge; see herald purge --help", argv[optind - 1]);
        }
    }
    if (optind != argc)
        cli_die("purge takes no arguments; name the age with --older-than, e.g. --older-than 30d");
    cli_load(c, 1);
    if (age < 0)
        age = c->cfg->retention_ms;
    if (age == 0)
        cli_die("retention = 0 keeps every event; name an age to purge with --older-than, "
                "e.g. --older-than 30d");
    if (age < c->cfg->idempotency_window_ms)
        cli_die("--older-than is shorter than idempotency_window (%lld s): a repeated key "
                "would go unnoticed once its event is deleted; purge older events",
                c->cfg->idempotency_window_ms / 1000);
    hr_store *s = open_queue(c->cfg);
    hr_prune_counts n = {0};
    char cursor[37] = "";
    long long before = hr_now_ms() - age;
    int more = 1;
    while (more)
        if (hr_store_prune(s, before, 1000, cursor, &n, &more) != HERALD_OK)
            cli_die("cannot delete expired events (what was deleted so far stays deleted): %s",
                    hr_store_error(s));
    if (as_json)
        print_json(json_pack("{s:I, s:I, s:I, s:I}", "events", (json_int_t)n.events,
                             "deliveries", (json_int_t)n.deliveries, "attempts",
                             (json_int_t)n.attempts, "receipts", (json_int_t)n.receipts));
    else
        printf("deleted %zu events (%zu deliveries, %zu attempts) and %zu webhook receipts\n",
               n.events, n.deliveries, n.attempts, n.receipts);
    hr_store_close(s);
    cli_free(c);
    return 0;
}

int cli_queue(cli_ctx *c, int argc, char **argv)
{
    int as_json = cli_simple_opts(c, argc, argv, "queue [--json]",
                                  "Count deliveries by state and channel, and the age of the "
                                  "oldest pending one.");
    cli_load(c, 1);
    hr_store *s = open_queue(c->cfg);
    hr_queue_row *rows = NULL;
    size_t n = 0;
    if (hr_store_queue(s, &rows, &n) != HERALD_OK)
        cli_die("cannot read the queue: %s", hr_store_error(s));
    long long now = hr_now_ms();
    json_t *arr = json_array();
    if (!as_json)
        printf("%-20s %8s %8s %8s %8s %8s %8s %12s\n", "CHANNEL", "PENDING", "INFLIGHT", "SENT",
               "FAILED", "DEAD", "DEFERRED", "OLDEST");
    for (size_t i = 0; i < n; i++) {
        hr_queue_row *r = &rows[i];
        long long age = r->oldest_pending_ms ? (now - r->oldest_pending_ms) / 1000 : -1;
        if (as_json) {
            json_array_append_new(
                arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "channel", r->channel,
                               "pending", (json_int_t)r->count[HR_D_PENDING], "inflight",
                               (json_int_t)r->count[HR_D_INFLIGHT], "sent",
                               (json_int_t)r->count[HR_D_SENT], "failed",
                               (json_int_t)r->count[HR_D_FAILED], "dead",
                               (json_int_t)r->count[HR_D_DEAD], "deferred",
                               (json_int_t)r->count[HR_D_DEFERRED], "oldest_pending_age_s",
                               age >= 0 ? json_integer(age) : json_null()));
        } else {
            char agebuf[32] = "-";
            if (age >= 0)
                snprintf(agebuf, sizeof agebuf, "%llds", age);
            printf("%-20s %8lld %8lld %8lld %8lld %8lld %8lld %12s\n", r->channel,
                   r->count[HR_D_PENDING], r->count[HR_D_INFLIGHT], r->count[HR_D_SENT],
                   r->count[HR_D_FAILED], r->count[HR_D_DEAD], r->count[HR_D_DEFERRED], agebuf);
        }
    }
    if (as_json)
        print_json(arr);
    else
        json_decref(arr);
    hr_queue_rows_free(rows, n);
    hr_store_close(s);
    cli_free(c);
    return 0;
}

int cli_stats(cli_ctx *c, int argc, char **argv)
{
    int as_json = cli_simple_opts(c, argc, argv, "stats [--json]",
                                  "Per channel: sent, failed, dead, success rate, mean and p95 "
                                  "latency of successful attempts.");
    cli_load(c, 1);
    hr_store *s = open_queue(c->cfg);
    hr_stats_row *rows = NULL;
    size_t n = 0;
    if (hr_store_stats(s, 0, &rows, &n) != HERALD_OK)
        cli_die("cannot read statistics: %s", hr_store_error(s));
    json_t *arr = json_array();
    if (!as_json)
        printf("%-20s %8s %8s %8s %9s %9s %8s %8s\n", "CHANNEL", "SENT", "FAILED", "DEAD",
               "ATTEMPTS", "SUCCESS", "MEAN_MS", "P95_MS");
    for (size_t i = 0; i < n; i++) {
        hr_stats_row *r = &rows[i];
        if (as_json)
            json_array_append_new(
                arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "channel", r->channel,
                               "sent", (json_int_t)r->sent, "failed", (json_int_t)r->failed,
                               "dead", (json_int_t)r->dead, "attempts", (json_int_t)r->attempts,
                               "success_rate", r->success_rate, "mean_latency_ms",
                               r->mean_latency_ms, "p95_latency_ms", r->p95_latency_ms));
        else
            printf("%-20s %8lld %8lld %8lld %9lld %8.1f%% %8.1f %8.1f\n", r->channel, r->sent,
                   r->failed, r->dead, r->attempts, 100.0 * r->success_rate, r->mean_latency_ms,
                   r->p95_latency_ms);
    }
    if (as_json)
        print_json(arr);
    else
        json_decref(arr);
    hr_stats_rows_free(rows, n);
    hr_store_close(s);
    cli_free(c);
    return 0;
}

int cli_channel(cli_ctx *c, int argc, char **argv)
{
    cli_simple_opts(c, argc, argv, "channel enable|disable NAME",
                    "Enable a channel herald disabled (its held deliveries go out), or "
                    "disable one by hand.");
    if (argc - optind != 2 ||
        (strcmp(argv[optind], "enable") != 0 && strcmp(argv[optind], "disable") != 0))
        cli_die("usage: herald channel enable|disable NAME");
    const char *name = argv[optind + 1];
    cli_load(c, 1);
    if (!hr_config_channel(c->cfg, name))
        cli_die("no channel '%s' in the configuration", name);
    hr_store *s = open_queue(c->cfg);
    herald_status st = strcmp(argv[optind], "enable") == 0
                           ? hr_store_channel_enable(s, name)
                           : hr_store_channel_disable(s, name, "disabled by hand", hr_now_ms());
    if (st != HERALD_OK)
        cli_die("%s", hr_store_error(s));
    printf("channel '%s' %sd\n", name, argv[optind]);
    hr_store_close(s);
    cli_free(c);
    return 0;
}
