/* herald_route.c - `herald route test` (a dry run of the routes) and `herald explain`
 * (the routing trail of a stored event): who hears about an event, on which channel,
 * when, and why. */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "route.h"
#include "store.h"

static const char route_usage[] =
    "Usage: herald route test -e TYPE [-s SEVERITY] [-f KEY=VALUE]... [-a SOURCE]\n"
    "                         [--title TEXT] [--user NAME] [--at TIME] [--json]\n"
    "\n"
    "Show what the routes and the users' preferences decide for such an event:\n"
    "every (channel, recipient) that would be sent, held (quiet hours) or skipped,\n"
    "and why. Sends nothing and changes nothing; dedup windows and rate limits\n"
    "are not consulted. --at takes \"YYYY-MM-DD HH:MM\" in local time, or RFC 3339.\n";

static const char explain_what[] =
    "Show how a stored event was routed: the routes that matched, every (channel,\n"
    "recipient) decision with its reason, and what became of each delivery.\n";

static const char *action_word(hr_action a)
{
    return a == HR_SEND ? "send" : a == HR_DEFER ? "hold" : "skip";
}

/* "2026-12-24 23:30[:SS]" in local time, or RFC 3339 with Z or an offset. */
static int parse_at(const char *s, long long *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, sec = 0, n = 0;
    char sep;
    if (sscanf(s, "%d-%d-%d%c%d:%d%n", &y, &mo, &d, &sep, &h, &mi, &n) != 6 ||
        (sep != ' ' && sep != 'T'))
        return 0;
    const char *rest = s + n;
    if (*rest == ':') {
        int k = 0;
        if (sscanf(rest, ":%d%n", &sec, &k) != 1)
            return 0;
        rest += k;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return 0;
    time_t t;
    if (*rest == 'Z' && !rest[1]) {
        t = timegm(&tm);
    } else if ((*rest == '+' || *rest == '-') && strlen(rest) == 6 && rest[3] == ':') {
        int oh = atoi(rest + 1), om = atoi(rest + 4);
        t = timegm(&tm) - (*rest == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else if (!*rest) {
        t = mktime(&tm);
    } else {
        return 0;
    }
    *ms = (long long)t * 1000;
    return 1;
}

static void print_decisions(const hr_decisions *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const hr_decision *x = &d->v[i];
        char who[200];
        if (x->user)
            snprintf(who, sizeof who, "%s -> %s", x->channel, x->user);
        else
            snprintf(who, sizeof who, "%s", x->channel);
        printf("  %-5s %-32s %s", action_word(x->action), who, x->reason);
        if (x->action == HR_DEFER) {
            char ts[32];
            hr_rfc3339(x->not_before, ts, sizeof ts);
            printf(" (until %s)", ts);
        }
        putchar('\n');
    }
}

static int route_test(cli_ctx *c, int argc, char **argv)
{
    enum { O_TITLE = 256, O_USER, O_AT, O_JSON, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"event", required_argument, NULL, 'e'},
        {"severity", required_argument, NULL, 's'},
        {"field", required_argument, NULL, 'f'},
        {"app-name", required_argument, NULL, 'a'},
        {"title", required_argument, NULL, O_TITLE},
        {"user", required_argument, NULL, O_USER},
        {"at", required_argument, NULL, O_AT},
        {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, O_CONFIG},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.severity = HERALD_SEVERITY_NOTICE;
    long long at = hr_now_ms();
    int as_json = 0, opt;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":e:s:f:a:", opts, NULL)) != -1) {
        switch (opt) {
        case 'e': free(ev.type); ev.type = hr_strdup(optarg); break;
        case 's':
            if (!hr_severity_parse(optarg, &ev.severity))
                cli_die("unknown severity '%s'; use debug, info, notice, warning, error or "
                        "critical", optarg);
            break;
        case 'f': cli_field_arg(&ev, optarg); break;
        case 'a': free(ev.source); ev.source = hr_strdup(optarg); break;
        case O_TITLE: free(ev.title); ev.title = hr_strdup(optarg); break;
        case O_USER: free(ev.user); ev.user = hr_strdup(optarg); break;
        case O_AT:
            if (!parse_at(optarg, &at))
                cli_die("--at '%s': use \"YYYY-MM-DD HH:MM\" (local time) or RFC 3339 such as "
                        "2026-12-24T23:30:00+01:00", optarg);
            break;
        case O_JSON: as_json = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP: fputs(route_usage, stdout); exit(0);
        case ':': cli_die("option %s needs a value; see herald route test --help", argv[optind - 1]);
        default: cli_die("unknown option '%s' for route test; see herald route test --help",
                         argv[optind - 1]);
        }
    }
    if (optind != argc)
        cli_die("route test takes options only; see herald route test --help");
    if (!ev.type)
        cli_die("route test needs the event type: -e TYPE, e.g. -e backup.failed");
    if (!hr_valid_event_type(ev.type))
        cli_die("event type '%s' is invalid; use lowercase dotted words", ev.type);
    if (!ev.title)
        ev.title = hr_strdup("(route test)");
    cli_load(c, 0);
    char err[1024];
    hr_store *store = cli_existing_store(c);
    herald_status st = hr_routing_load(&c->routing, c->cfg, c->loader, store, err, sizeof err);
    hr_store_close(store);
    if (st != HERALD_OK)
        cli_die("%s", err);
    ev.created_ms = at;
    hr_rfc3339(at, ev.timestamp, sizeof ev.timestamp);
    hr_decisions d;
    hr_route_event(c->routing->router, c->routing->dir, &ev, at, NULL, &d);
    if (as_json) {
        char *j = hr_decisions_json(&d);
        json_t *o = json_loads(j, 0, NULL);
        json_object_set_new(o, "at", json_string(ev.timestamp));
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
        free(j);
    } else {
        printf("%s (%s) at %s:\n", ev.type, hr_severity_name(ev.severity), ev.timestamp);
        for (size_t i = 0; i < d.nnotes; i++)
            printf("  route %s\n", d.notes[i]);
        if (!c->routing->router->configured)
            printf("  no routes are configured: every channel gets every event\n");
        print_decisions(&d);
        if (d.n == 0)
            printf("  nobody would be notified\n");
    }
    hr_decisions_free(&d);
    hr_event_clear(&ev);
    cli_free(c);
    return 0;
}

int cli_route(cli_ctx *c, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "test"))
        return route_test(c, argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
        fputs(route_usage, stdout);
        return 0;
    }
    cli_die("usage: herald route test -e TYPE [...]; see herald route test --help");
}

int cli_explain(cli_ctx *c, int argc, char **argv)
{
    int as_json = cli_simple_opts(c, argc, argv, "explain [--json] EVENT_ID", explain_what);
    if (optind != argc - 1)
        cli_die("explain needs one EVENT_ID (herald send -p prints it; herald log lists them)");
    const char *id = argv[optind];
    hr_store *s = cli_open_store(c);
    char *trail = NULL;
    if (hr_store_trail(s, id, &trail) != HERALD_OK)
        cli_die("%s; herald log lists the events it knows", hr_store_error(s));
    hr_log_filter f = {.state = -1, .event_id = id, .limit = 1000};
    hr_delivery_row *rows = NULL;
    size_t n = 0;
    hr_store_log(s, &f, &rows, &n);
    json_t *t = trail ? json_loads(trail, 0, NULL) : NULL;
    json_t *deliveries = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(deliveries,
                              json_pack("{s:I, s:s, s:o, s:s, s:i, s:s}", "delivery",
                                        (json_int_t)rows[i].id, "channel", rows[i].channel,
                                        "user", rows[i].recipient ? json_string(rows[i].recipient)
                                                                  : json_null(),
                                        "state", hr_dstate_name(rows[i].state), "attempts",
                                        rows[i].attempts, "detail",
                                        rows[i].last_detail ? rows[i].last_detail : ""));
    if (as_json) {
        json_t *o = json_pack("{s:s, s:o, s:o}", "id", id, "routing",
                              t ? json_incref(t) : json_null(), "deliveries", deliveries);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        printf("event %s:\n", id);
        if (!t) {
            printf("  not routed: it named its channels (--to), or no routes were configured "
                   "and every channel got it\n");
        } else {
            size_t i;
            json_t *v;
            json_array_foreach(json_object_get(t, "routes"), i, v)
                printf("  route %s\n", json_string_value(v));
            json_array_foreach(json_object_get(t, "decisions"), i, v) {
                const char *user = json_string_value(json_object_get(v, "user"));
                const char *action = json_string_value(json_object_get(v, "action"));
                char who[200];
                snprintf(who, sizeof who, "%s%s%s",
                         json_string_value(json_object_get(v, "channel")), user ? " -> " : "",
                         user ? user : "");
                printf("  %-5s %-32s %s\n", !strcmp(action, "defer") ? "hold" : action, who,
                       json_string_value(json_object_get(v, "reason")));
            }
        }
        if (n)
            printf("deliveries:\n");
        for (size_t i = 0; i < n; i++)
            printf("  #%lld %s%s%s: %s after %d attempt%s%s%s\n", rows[i].id, rows[i].channel,
                   rows[i].recipient ? " -> " : "", rows[i].recipient ? rows[i].recipient : "",
                   hr_dstate_name(rows[i].state), rows[i].attempts,
                   rows[i].attempts == 1 ? "" : "s", rows[i].last_detail ? ": " : "",
                   rows[i].last_detail ? rows[i].last_detail : "");
        json_decref(deliveries);
    }
    json_decref(t);
    free(trail);
    hr_delivery_rows_free(rows, n);
    hr_store_close(s);
    cli_free(c);
    return 0;
}
