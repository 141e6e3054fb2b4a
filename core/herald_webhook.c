/* herald_webhook.c - `herald webhook`: subscriptions kept in the store, their delivery
 * history, redelivery, test deliveries and secret rotation. */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "route.h"
#include "sign.h"
#include "store.h"
#include "webhooks.h"

static const char webhook_usage[] =
    "Usage: herald webhook add --name NAME --url URL --events GLOBS [--secret auto|VALUE]\n"
    "                          [--header 'Name: value']... [--timeout 10s] [--max-attempts N]\n"
    "                          [--signature standard|github|both|none] [--max-payload BYTES]\n"
    "                          [--body-template FILE]\n"
    "       herald webhook list [--json]\n"
    "       herald webhook show ID|NAME [--json]\n"
    "       herald webhook update ID|NAME [the options of add]\n"
    "       herald webhook enable|disable|remove ID|NAME\n"
    "       herald webhook deliveries ID|NAME [-n LIMIT] [--json]\n"
    "       herald webhook redeliver DELIVERY_ID\n"
    "       herald webhook test ID|NAME\n"
    "       herald webhook rotate-secret ID|NAME [--grace 24h]\n"
    "\n"
    "GLOBS is a comma-separated list of event types with * wildcards. add prints the\n"
    "id and, once, a generated secret (--secret auto, the default unless --signature\n"
    "none). Receivers check signatures with herald verify or any Standard Webhooks\n"
    "library.\n";

typedef struct wsession {
    cli_ctx *c;
    hr_store *store;
    hr_secretbox *box;
} wsession;

static void wopen(wsession *ws, cli_ctx *c, int create_key)
{
    char err[1024];
    ws->c = c;
    ws->store = cli_open_store(c);
    if (!(ws->box = hr_webhook_box(c->cfg, ws->store, create_key, err, sizeof err)))
        cli_die("%s", err);
}

static void wclose(wsession *ws)
{
    hr_secretbox_close(ws->box);
    hr_store_close(ws->store);
    cli_free(ws->c);
}

/* The stored row named by id or name; dies when there is none. */
static hr_webhook_row *find_row(wsession *ws, const char *which)
{
    hr_webhook_row *rows = NULL;
    size_t n = 0;
    if (hr_store_webhooks(ws->store, which, &rows, &n) != HERALD_OK)
        cli_die("%s", hr_store_error(ws->store));
    if (n == 0)
        cli_die("no webhook '%s'; herald webhook list lists them", which);
    return rows;
}

static void load_plain(wsession *ws, const char *which, hr_webhook *w)
{
    hr_webhook_row *row = find_row(ws, which);
    char err[1024];
    if (hr_webhook_from_row(ws->box, row, w, err, sizeof err) != HERALD_OK)
        cli_die("%s", err);
    hr_webhook_rows_free(row, 1);
}

static void save(wsession *ws, hr_webhook *w, int create)
{
    char err[1024];
    if (hr_webhook_save(ws->store, ws->c->cfg, w, create, err, sizeof err) != HERALD_OK)
        cli_die("cannot store the webhook: %s", err);
}

static void set_header(hr_webhook *w, const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || hr_has_ctl(spec))
        cli_die("--header '%s' must be 'Name: value' without control characters", spec);
    char *name = hr_strndup(spec, (size_t)(colon - spec));
    const char *value = colon + 1;
    while (*value == ' ')
        value++;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-'))
            cli_die("--header name '%s': use letters, digits and '-'", name);
    for (size_t i = 0; i < w->nheaders; i++)
        if (!strcasecmp(w->headers[i].name, name)) {
            hr_secretbox_free_value(w->headers[i].value);
            w->headers[i].value = hr_strdup(value);
            free(name);
            return;
        }
    w->headers = hr_realloc(w->headers, (w->nheaders + 1) * sizeof *w->headers);
    w->headers[w->nheaders].name = name;
    w->headers[w->nheaders++].value = hr_strdup(value);
}

/* Options shared by add and update; returns whether a new secret was generated. */
static int parse_options(int argc, char **argv, hr_webhook *w, int adding)
{
    enum { O_NAME = 256, O_URL, O_EVENTS, O_SECRET, O_HEADER, O_TIMEOUT, O_MAXATT, O_SIG,
           O_MAXPAY, O_TEMPLATE, O_CONFIG };
    static const struct option opts[] = {
        {"name", required_argument, NULL, O_NAME},
        {"url", required_argument, NULL, O_URL},
        {"events", required_argument, NULL, O_EVENTS},
        {"secret", required_argument, NULL, O_SECRET},
        {"header", required_argument, NULL, O_HEADER},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"max-attempts", required_argument, NULL, O_MAXATT},
        {"signature", required_argument, NULL, O_SIG},
        {"max-payload", required_argument, NULL, O_MAXPAY},
        {"body-template", required_argument, NULL, O_TEMPLATE},
        {"config", required_argument, NULL, O_CONFIG},
        {NULL, 0, NULL, 0},
    };
    int opt, generated = 0;
    const char *secret = NULL;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case O_NAME:
            if (!*optarg || strlen(optarg) > 64 || hr_has_ctl(optarg))
                cli_die("--name must be 1 to 64 printable characters");
            free(w->name);
            w->name = hr_strdup(optarg);
            break;
        case O_URL: {
            hr_url u;
            char why[256];
            if (hr_has_ctl(optarg) || hr_url_split(optarg, &u, why, sizeof why) != HERALD_OK ||
                (strcmp(u.scheme, "https") && strcmp(u.scheme, "http")))
                cli_die("--url must be an http:// or https:// URL");
            hr_url_free(&u);
            free(w->url);
            w->url = hr_strdup(optarg);
            hr_secret_add(optarg); /* URLs often carry tokens: never print them */
            break;
        }
        case O_EVENTS:
            if (!hr_webhook_globs_ok(optarg))
                cli_die("--events '%s': use event types with * wildcards, comma-separated, e.g. "
                        "'vm.*,ansible.failed'", optarg);
            free(w->events);
            w->events = hr_strdup(optarg);
            break;
        case O_SECRET: secret = optarg; break;
        case O_HEADER: set_header(w, optarg); break;
        case O_TIMEOUT: {
            long long ms;
            if (hr_parse_duration(optarg, &ms) != HERALD_OK || ms < 1000 || ms > 300000)
                cli_die("--timeout %s: use a duration from 1s to 5m", optarg);
            w->timeout_ms = ms;
            break;
        }
        case O_MAXATT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100)
                cli_die("--max-attempts must be from 1 to 100");
            w->max_attempts = (int)v;
            break;
        }
        case O_SIG:
            if (strcmp(optarg, "standard") && strcmp(optarg, "github") && strcmp(optarg, "both") &&
                strcmp(optarg, "none"))
                cli_die("--signature must be standard, github, both or none");
            free(w->signature);
            w->signature = hr_strdup(optarg);
            break;
        case O_MAXPAY: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*end || v < 1024 || v > 64LL * 1024 * 1024)
                cli_die("--max-payload must be a number of bytes from 1024 to 67108864");
            w->payload_max = v;
            break;
        }
        case O_TEMPLATE: {
            char why[512];
            char *text = hr_read_file(optarg, 0, 256 * 1024, why, sizeof why);
            if (!text)
                cli_die("--body-template: %s", why);
            free(w->body_template);
            w->body_template = text;
            break;
        }
        case O_CONFIG: break; /* taken by the caller */
        default:
            cli_die("unknown option '%s' for webhook; see herald webhook --help", argv[optind - 1]);
        }
    }
    if (!w->signature)
        w->signature = hr_strdup("standard");
    if (secret && !strcmp(secret, "auto")) {
        hr_secretbox_free_value(w->secret);
        w->secret = hr_whsec_generate();
        generated = 1;
    } else if (secret) {
        unsigned char key[HR_WHSEC_MAX_BYTES];
        size_t keylen = sizeof key;
        if (strcmp(w->signature, "github") && hr_whsec_decode(secret, key, &keylen) != 0)
            cli_die("--secret must be whsec_ + base64 of 24 to 64 bytes, or auto");
        hr_secretbox_free_value(w->secret);
        w->secret = hr_strdup(secret);
    } else if (adding && strcmp(w->signature, "none")) {
        w->secret = hr_whsec_generate();
        generated = 1;
    }
    if (w->secret)
        hr_secret_add(w->secret);
    return generated;
}

static const char *config_opt(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--config"))
            return argv[i + 1];
    return NULL;
}

static json_t *webhook_json(wsession *ws, const hr_webhook_row *r)
{
    return hr_webhook_json(ws->store, r);
}

static void print_json(json_t *o)
{
    json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
}

static void print_row(wsession *ws, const hr_webhook_row *r, int full)
{
    json_t *o = webhook_json(ws, r);
    json_t *k = json_object_get(o, "counters");
    int enabled = json_is_true(json_object_get(o, "enabled"));
    printf("%s  %-16s %-8s %s  events %s\n", r->id, r->name, enabled ? "enabled" : "DISABLED",
           r->url_shown, r->events);
    if (full) {
        const char *reason = json_string_value(json_object_get(o, "disabled_reason"));
        if (!enabled)
            printf("  disabled: %s\n", reason ? reason : "by an operator");
        printf("  signature %s, timeout %llds, max payload %lld bytes%s\n", r->signature,
               r->timeout_ms / 1000, r->payload_max, r->body_template ? ", body template" : "");
        json_t *rate = json_object_get(k, "success_rate");
        printf("  deliveries %lld: %lld succeeded, %lld failed", 
               (long long)json_integer_value(json_object_get(k, "total")),
               (long long)json_integer_value(json_object_get(k, "succeeded")),
               (long long)json_integer_value(json_object_get(k, "failed")));
        if (json_is_real(rate))
            printf(" (%.1f%% success)", 100.0 * json_real_value(rate));
        printf(", %lld consecutive failures\n",
               (long long)json_integer_value(json_object_get(k, "consecutive_failures")));
        char ts[32];
        json_t *ls = json_object_get(k, "last_success"), *lf = json_object_get(k, "last_failure");
        if (json_is_integer(ls)) {
            hr_rfc3339(json_integer_value(ls), ts, sizeof ts);
            printf("  last success %s\n", ts);
        }
        if (json_is_integer(lf)) {
            hr_rfc3339(json_integer_value(lf), ts, sizeof ts);
            printf("  last failure %s\n", ts);
        }
    }
    json_decref(o);
}

int cli_webhook(cli_ctx *c, int argc, char **argv)
{
    int as_json = 0, n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else
            argv[n++] = argv[i];
    }
    argc = n;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(webhook_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    const char *given = config_opt(argc, argv);
    if (given)
        c->config_opt = given;
    wsession ws;
    if (!strcmp(sub, "add")) {
        hr_webhook w;
        memset(&w, 0, sizeof w);
        w.timeout_ms = 10000;
        w.payload_max = HR_WEBHOOK_PAYLOAD_MAX;
        int generated = parse_options(argc - 1, argv + 1, &w, 1);
        if (!w.name || !w.url || !w.events)
            cli_die("webhook add needs --name, --url and --events; see herald webhook --help");
        wopen(&ws, c, 1);
        hr_webhook_new_id(w.id, sizeof w.id);
        w.created_ms = hr_now_ms();
        save(&ws, &w, 1);
        if (as_json)
            print_json(json_pack("{s:s, s:s, s:o}", "id", w.id, "name", w.name, "secret",
                                 generated ? json_string(w.secret) : json_null()));
        else if (generated)
            printf("%s\nsecret: %s\n(shown once: give it to the receiver now)\n", w.id, w.secret);
        else
            printf("%s\n", w.id);
        hr_webhook_clear(&w);
        wclose(&ws);
        return 0;
    }
    if (!strcmp(sub, "list")) {
        wopen(&ws, c, 0);
        hr_webhook_row *rows = NULL;
        size_t nrows = 0;
        if (hr_store_webhooks(ws.store, NULL, &rows, &nrows) != HERALD_OK)
            cli_die("%s", hr_store_error(ws.store));
        json_t *arr = json_array();
        for (size_t i = 0; i < nrows; i++) {
            if (as_json)
                json_array_append_new(arr, webhook_json(&ws, &rows[i]));
            else
                print_row(&ws, &rows[i], 0);
        }
        if (as_json)
            print_json(arr);
        else
            json_decref(arr);
        hr_webhook_rows_free(rows, nrows);
        wclose(&ws);
        return 0;
    }
    if (argc < 3)
        cli_die("herald webhook %s needs an ID or NAME; see herald webhook --help", sub);
    const char *which = argv[2];
    wopen(&ws, c, 0);
    int rc = 0;
    if (!strcmp(sub, "show")) {
        hr_webhook_row *r = find_row(&ws, which);
        if (as_json)
            print_json(webhook_json(&ws, r));
        else
            print_row(&ws, r, 1);
        hr_webhook_rows_free(r, 1);
    } else if (!strcmp(sub, "update")) {
        hr_webhook w;
        load_plain(&ws, which, &w);
        int generated = parse_options(argc - 2, argv + 2, &w, 0);
        save(&ws, &w, 0);
        printf("%s updated%s%s\n", w.id, generated ? "; new secret: " : "",
               generated ? w.secret : "");
        hr_webhook_clear(&w);
    } else if (!strcmp(sub, "rotate-secret")) {
        long long grace = 24LL * 3600 * 1000;
        for (int i = 3; i < argc; i++) {
            if (!strcmp(argv[i], "--grace") && i + 1 < argc) {
                if (hr_parse_duration(argv[++i], &grace) != HERALD_OK)
                    cli_die("--grace %s is not a duration like 24h", argv[i]);
            } else if (!strcmp(argv[i], "--config")) {
                i++;
            } else {
                cli_die("unknown option '%s' for rotate-secret; use --grace DURATION", argv[i]);
            }
        }
        hr_webhook w;
        load_plain(&ws, which, &w);
        if (!strcmp(w.signature, "none"))
            cli_die("webhook %s signs nothing (signature none); set --signature first", w.id);
        hr_secretbox_free_value(w.old_secret);
        w.old_secret = w.secret;
        w.old_until_ms = hr_now_ms() + grace;
        w.secret = hr_whsec_generate();
        save(&ws, &w, 0);
        char until[32];
        hr_rfc3339(w.old_until_ms, until, sizeof until);
        printf("%s: new secret: %s\n(shown once; the old secret also signs until %s)\n", w.id,
               w.secret, until);
        hr_webhook_clear(&w);
    } else if (!strcmp(sub, "enable") || !strcmp(sub, "disable")) {
        hr_webhook_row *r = find_row(&ws, which);
        herald_status st = !strcmp(sub, "enable")
                               ? hr_store_channel_enable(ws.store, r->id)
                               : hr_store_channel_disable(ws.store, r->id,
                                                          "disabled with herald webhook disable",
                                                          hr_now_ms());
        if (st != HERALD_OK)
            cli_die("%s", hr_store_error(ws.store));
        printf("%s %sd\n", r->id, sub);
        hr_webhook_rows_free(r, 1);
    } else if (!strcmp(sub, "remove")) {
        hr_webhook_row *r = find_row(&ws, which);
        if (hr_store_webhook_remove(ws.store, r->id) != HERALD_OK)
            cli_die("%s", hr_store_error(ws.store));
        printf("%s removed (its delivery history stays in the log)\n", r->id);
        hr_webhook_rows_free(r, 1);
    } else if (!strcmp(sub, "deliveries")) {
        hr_webhook_row *r = find_row(&ws, which);
        long limit = 50;
        for (int i = 3; i + 1 < argc; i++)
            if (!strcmp(argv[i], "-n"))
                limit = strtol(argv[i + 1], NULL, 10);
        hr_log_filter f = {.state = -1, .channel = r->id, .limit = limit > 0 ? limit : 50};
        hr_delivery_row *rows = NULL;
        size_t nrows = 0;
        if (hr_store_log(ws.store, &f, &rows, &nrows) != HERALD_OK)
            cli_die("%s", hr_store_error(ws.store));
        json_t *arr = json_array();
        for (size_t i = 0; i < nrows; i++) {
            hr_attempt_row *at = NULL;
            size_t nat = 0;
            hr_store_attempts(ws.store, rows[i].id, &at, &nat);
            long long ms = nat ? at[nat - 1].duration_ms : 0;
            const char *excerpt = nat && at[nat - 1].excerpt ? at[nat - 1].excerpt : "";
            if (as_json) {
                json_array_append_new(
                    arr, json_pack("{s:I, s:s, s:s, s:s, s:i, s:I, s:I, s:s, s:s}", "delivery",
                                   (json_int_t)rows[i].id, "event", rows[i].event_id, "type",
                                   rows[i].event_type, "state", hr_dstate_name(rows[i].state),
                                   "attempts", rows[i].attempts, "code",
                                   (json_int_t)rows[i].last_code, "latency_ms", (json_int_t)ms,
                                   "detail", rows[i].last_detail ? rows[i].last_detail : "",
                                   "response", excerpt));
            } else {
                char ts[32];
                hr_rfc3339(rows[i].updated_ms, ts, sizeof ts);
                printf("#%lld %s %-16s %-8s %d attempt%s, HTTP %ld, %lld ms: %.80s\n", rows[i].id,
                       ts, rows[i].event_type, hr_dstate_name(rows[i].state), rows[i].attempts,
                       rows[i].attempts == 1 ? "" : "s", rows[i].last_code, ms,
                       excerpt[0] ? excerpt : (rows[i].last_detail ? rows[i].last_detail : ""));
            }
            hr_attempt_rows_free(at, nat);
        }
        if (as_json)
            print_json(arr);
        else
            json_decref(arr);
        hr_delivery_rows_free(rows, nrows);
        hr_webhook_rows_free(r, 1);
    } else if (!strcmp(sub, "redeliver")) {
        char *end;
        long long id = strtoll(which, &end, 10);
        if (*end || id <= 0)
            cli_die("redeliver needs a DELIVERY_ID (a number; herald webhook deliveries lists "
                    "them)");
        size_t nq = 0;
        if (hr_store_requeue(ws.store, id, 0, hr_now_ms(), &nq) != HERALD_OK)
            cli_die("%s", hr_store_error(ws.store));
        if (nq == 0)
            cli_die("delivery %lld is not finished (or does not exist); herald show lists an "
                    "event's deliveries", id);
        printf("delivery %lld queued again; receivers see the same webhook-id\n", id);
    } else if (!strcmp(sub, "test")) {
        hr_webhook_row *r = find_row(&ws, which);
        char id[40];
        snprintf(id, sizeof id, "%s", r->id);
        hr_webhook_rows_free(r, 1);
        wclose(&ws);
        /* A herald.test event through the real path: herald send --to ID --wait. */
        char *args[] = {"send", "--to", id, "-e", "herald.test", "--wait=30s",
                        "herald webhook test", "This is a test delivery from herald.", NULL};
        cli_ctx fresh = {.config_opt = c->config_opt};
        return cli_send(&fresh, 8, args);
    } else {
        cli_die("unknown 'herald webhook %s'; see herald webhook --help", sub);
    }
    wclose(&ws);
    return rc;
}
