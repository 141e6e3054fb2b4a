/* herald.c - the herald command line: send, test, check, plugins. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "route.h"
#include "webhooks.h"
#include "client.h"
#include "dispatch.h"
#include "hooks.h"
#include "internal.h"
#include "store.h"


#define DEFAULT_WAIT_MS (5 * 60 * 1000)
/* Without --wait the first attempt still runs here; this only bounds a
 * pathological stall (e.g. another process holding the claim). */
#define NOWAIT_SAFETY_MS (10 * 60 * 1000)

typedef cli_ctx ctx;

void cli_die(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *clean = hr_redact(msg);
    fprintf(stderr, "herald: %s\n", clean);
    free(clean);
    exit(EXIT_USAGE);
}

static const char main_usage[] =
    "Usage: herald [-c FILE] [-v] COMMAND [ARGS]\n"
    "\n"
    "Send notifications through configured channels.\n"
    "\n"
    "Commands:\n"
    "  send SUMMARY [BODY]   send an event (notify-send compatible; see herald send --help)\n"
    "  test CHANNEL|URL      check a channel's reachability and credentials\n"
    "  check                 validate the configuration and every channel in it\n"
    "  plugins               list installed channel plugins\n"
    "  log                   list deliveries (filters: channel, status, type, since)\n"
    "  show EVENT_ID         an event, its deliveries and every attempt\n"
    "  retry ID|--dead       queue finished deliveries for a new attempt\n"
    "  queue                 deliveries by state and channel\n"
    "  purge                 delete finished events older than the retention\n"
    "  stats                 per channel success rate and latency\n"
    "  channel enable NAME   re-enable a channel herald disabled\n"
    "  route test -e TYPE    dry run: who would hear about such an event, and why\n"
    "  explain EVENT_ID      how a stored event was routed, and what became of it\n"
    "  user add|set|list|show|remove   people and their addresses\n"
    "  prefs show|set|unset|quiet NAME  who wants which events, where and when\n"
    "  group add|remove|list           groups routes can name as @GROUP\n"
    "  webhook add|list|show|update|enable|disable|remove|deliveries|redeliver|test|\n"
    "          rotate-secret    webhook subscriptions with signed deliveries\n"
    "  token create|list|revoke        bearer tokens for heraldd's HTTP API\n"
    "  verify ... < BODY               check a received webhook's signature\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration file (default: $HERALD_CONFIG, then\n"
    "                        " HERALD_SYSCONFDIR "/herald/herald.conf)\n"
    "  -v, --verbose         more log output (repeat for debug)\n"
    "  -q, --quiet           errors only\n"
    "      --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Exit status: 0 delivered, 1 a delivery failed, 2 usage or configuration error,\n"
    "3 nothing to send to.\n";

static const char send_usage[] =
    "Usage: herald send [OPTIONS] SUMMARY [BODY]\n"
    "\n"
    "Send an event to every configured channel, or to those given with --to.\n"
    "A BODY of '-', or no BODY while stdin is not a terminal, is read from stdin.\n"
    "\n"
    "  -e, --event TYPE          event type, dotted lowercase (default: notification)\n"
    "  -s, --severity LEVEL      debug, info, notice, warning, error or critical\n"
    "  -u, --urgency LEVEL       notify-send urgency: low (info), normal (notice), critical\n"
    "  -a, --app-name APP        the sending application (the event's source)\n"
    "  -c, --category TYPE       notify-send category: the event type unless -e is given\n"
    "  -i, --icon ICON           stored as field 'icon'\n"
    "  -t, --expire-time MS      stored as field 'expire_time'\n"
    "  -h, --hint TYPE:NAME:VAL  notify-send hint, stored as field NAME\n"
    "  -f, --field KEY=VALUE     add a field (repeatable)\n"
    "  -d, --data JSON           attach a JSON payload\n"
    "      --to CHANNEL|URL      send only to these channels or channel URLs (repeatable,\n"
    "                            comma-separated), e.g. --to json://host:8080/hook\n"
    "      --user NAME           the person this event is addressed to\n"
    "      --idempotency-key KEY the same key is never delivered twice\n"
    "      --wait[=DURATION]     wait until every delivery is final, retrying as\n"
    "                            scheduled (default at most 5m); without it herald\n"
    "                            makes the first attempt and leaves retries queued\n"
    "  -p, --print-id            print the event id\n"
    "      --json                print the result as JSON\n"
    "      --config FILE         configuration file\n"
    "      --help                print this help\n"
    "\n"
    "Title and body must be UTF-8; the title is limited to 1024 bytes and the body to\n"
    "65536 bytes unless limits { max_title; max_body; } in the config says otherwise.\n";

#ifndef HERALD_FRONT
static const char test_usage[] =
    "Usage: herald test [--send] [--json] CHANNEL|URL\n"
    "\n"
    "Check that a channel's destination is reachable and its credentials work,\n"
    "without sending a notification. With --send, deliver a real test event.\n";

static const char check_usage[] =
    "Usage: herald check [--json]\n"
    "\n"
    "Load the configuration, every plugin it uses and every channel it defines;\n"
    "report the first problem with its file and line.\n";

static const char plugins_usage[] =
    "Usage: herald plugins [-v] [--json]\n"
    "\n"
    "List the channel plugins found in the plugin path ($HERALD_PLUGIN_PATH, the\n"
    "config's plugin_path, or " HERALD_PLUGINDIR "), with version, ABI, URL\n"
    "schemes and file. Plugins that cannot be used are reported with the reason.\n";

/* Load the configuration. A missing default file is fine when allow_missing:
 * ad-hoc --to URLs and `herald plugins` work on a fresh install. */
#endif

void cli_load(cli_ctx *c, int allow_missing)
{
    int explicit_;
    const char *path = hr_config_pick(c->config_opt, &explicit_);
    char err[1024];
    if (!explicit_ && allow_missing && access(path, F_OK) != 0 && errno == ENOENT) {
        c->cfg = hr_config_empty();
    } else if (hr_config_load(path, &c->cfg, err, sizeof err) != HERALD_OK) {
        cli_die("%s", err);
    }
#ifndef HERALD_FRONT
    c->loader = hr_loader_new(c->cfg->plugin_path);
#endif
}

#ifndef HERALD_FRONT
hr_store *cli_open_store(cli_ctx *c)
{
    char err[1024];
    cli_load(c, 0);
    char *db = hr_config_database(c->cfg, err, sizeof err);
    hr_store *s = NULL;
    if (!db || hr_store_open(db, &s, err, sizeof err) != HERALD_OK)
        cli_die("cannot open the queue: %s", err);
    free(db);
    return s;
}

hr_store *cli_existing_store(cli_ctx *c)
{
    char err[1024];
    char *path = hr_config_database(c->cfg, err, sizeof err);
    hr_store *s = NULL;
    if (path && access(path, F_OK) == 0 && hr_store_open(path, &s, err, sizeof err) != HERALD_OK)
        cli_die("cannot open the queue: %s", err);
    free(path);
    return s;
}
#endif

void cli_free(cli_ctx *c)
{
#ifndef HERALD_FRONT
    hr_routing_free(c->routing);
    hr_loader_free(c->loader);
#endif
    hr_config_free(c->cfg);
}

#ifdef HERALD_FRONT
/*
 * The front-end: `herald` as installed is a small program that links only
 * libconfig and jansson, because loading libcurl's dependency tree costs a
 * one-shot `herald send` more than everything else it does. It hands events
 * to a running heraldd itself and runs the full program (herald-engine, with
 * the same arguments) for everything else.
 */
static char **orig_argv;

static void exec_engine(void)
{
    char self[4096], path[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    const char *dir = ".";
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            dir = self;
        }
    }
    /* Beside us (a build tree), relative to us (a DESTDIR or moved
     * install), then where configure put it. */
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            snprintf(path, sizeof path, "%s/herald-engine", dir);
        else if (i == 1)
            snprintf(path, sizeof path, "%s/../libexec/herald/herald-engine", dir);
        else
            snprintf(path, sizeof path, "%s", HERALD_PKGLIBEXECDIR "/herald-engine");
        if (access(path, X_OK) == 0) {
            orig_argv[0] = path;
            execv(path, orig_argv);
        }
    }
    cli_die("cannot run %s: %s; reinstall herald", HERALD_PKGLIBEXECDIR "/herald-engine",
            strerror(errno));
}
#endif


/* ---- talking to heraldd ---- */


static void print_daemon_deliveries(json_t *arr)
{
    size_t i;
    json_t *d;
    json_array_foreach(arr, i, d) {
        const char *state = json_string_value(json_object_get(d, "state"));
        if (hr_streq(state, "sent")) {
            if (hr_log_level() >= HERALD_LOG_NOTICE)
                fprintf(stderr, "herald: channel '%s': delivered\n",
                        json_string_value(json_object_get(d, "channel")));
            continue;
        }
        fprintf(stderr, "herald: channel '%s': not delivered (%s, %s): %s\n",
                json_string_value(json_object_get(d, "channel")), state ? state : "?",
                json_string_value(json_object_get(d, "status")),
                json_string_value(json_object_get(d, "detail")));
    }
}

/* Submit through heraldd. Returns the exit status, or -1 when the daemon
 * vanished before accepting (the caller then runs the embedded engine). */
static int send_via_daemon(int fd, const herald_event *ev, char **to, size_t nto,
                           long long wait_ms, int as_json, int print_id)
{
    char *evjson = hr_event_submit_json(ev);
    json_t *jto = json_array();
    for (size_t i = 0; i < nto; i++)
        json_array_append_new(jto, json_string(to[i]));
    json_t *req = json_pack("{s:s, s:o, s:o}", "op", "submit", "event",
                            json_loads(evjson, 0, NULL), "to", jto);
    free(evjson);
    json_t *rep = hr_daemon_call(fd, req, 30000);
    if (!rep)
        return -1;
    if (!json_is_true(json_object_get(rep, "ok"))) {
        json_int_t code = json_integer_value(json_object_get(rep, "code"));
        fprintf(stderr, "herald: %s\n", json_string_value(json_object_get(rep, "error")));
        json_decref(rep);
        return code == EXIT_NOTHING ? EXIT_NOTHING : EXIT_USAGE;
    }
    const char *id = json_string_value(json_object_get(rep, "id"));
    if (json_is_true(json_object_get(rep, "duplicate")) && !as_json)
        fprintf(stderr, "herald: idempotency key '%s' was already used by event %s; not sent "
                "again\n", ev->idempotency_key ? ev->idempotency_key : "", id ? id : "?");
    int rc = 0;
    json_t *deliveries = NULL;
    int final = 0;
    if (wait_ms > 0 && !json_is_true(json_object_get(rep, "duplicate"))) {
        json_t *w = hr_daemon_call(fd, json_pack("{s:s, s:s, s:I}", "op", "wait", "id", id,
                                              "timeout_ms", (json_int_t)wait_ms),
                                wait_ms + 10000);
        if (w) {
            final = json_is_true(json_object_get(w, "final"));
            deliveries = json_incref(json_object_get(w, "deliveries"));
            size_t i;
            json_t *d;
            json_array_foreach(deliveries, i, d)
                if (!hr_streq(json_string_value(json_object_get(d, "state")), "sent"))
                    rc = EXIT_DELIVERY;
            if (!final)
                rc = EXIT_DELIVERY;
            json_decref(w);
        } else {
            rc = EXIT_DELIVERY;
        }
    }
    if (as_json) {
        json_t *o = json_pack("{s:s, s:b, s:b, s:o}", "id", id, "duplicate",
                              json_is_true(json_object_get(rep, "duplicate")), "queued", 1,
                              "deliveries", deliveries ? deliveries : json_array());
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        if (print_id)
            printf("%s\n", id);
        if (deliveries)
            print_daemon_deliveries(deliveries);
        json_decref(deliveries);
    }
    json_decref(rep);
    return rc;
}

int cli_simple_opts(cli_ctx *c, int argc, char **argv, const char *usage, const char *what)
{
    enum { O_JSON = 256, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, O_CONFIG},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int as_json = 0, opt;
    optind = 0; /* 0, not 1: glibc then forgets the '+' (stop at arguments) of earlier calls */
    opterr = 0;
    /* Options may follow the arguments (herald show ID --json): getopt permutes. */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case O_JSON: as_json = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP: printf("Usage: herald %s\n\n%s\n", usage, what); exit(0);
        default: cli_die("unknown option '%s' for %s; see herald %s --help", argv[optind - 1],
                         argv[0], argv[0]);
        }
    }
    return as_json;
}

/* ---- send ---- */

#ifndef HERALD_FRONT /* the embedded engine's bookkeeping */
typedef struct target {
    herald_channel *ch; /* owned by the dispatcher once adopted */
    char *name;         /* for output, after the channel is closed */
    const char *plugin; /* owned by the loader */
    char *key;      /* channel name, or the URL of an ad-hoc channel */
    char *user;     /* the recipient of an addressed delivery, or NULL */
    char *address;  /* and their address on the channel */
    int owner;      /* this target's ch is adopted (several users share one) */
    int adhoc;
    int attempted;  /* at least one attempt recorded */
    int attempts;   /* recorded so far */
    int elsewhere;  /* taken over by another process (the daemon) */
    hr_dstate state;
    long long next_at;
    hr_outcome out;
} target;

typedef struct send_state {
    target *t;
    size_t n;
} send_state;

/* Dispatcher callback: remember each target's latest attempt. */
static void on_attempt(void *arg, const hr_claim *c, const hr_outcome *o, hr_dstate state,
                       long long next_at)
{
    send_state *ss = arg;
    int adhoc = strcmp(c->channel, HR_ADHOC_CHANNEL) == 0;
    for (size_t i = 0; i < ss->n; i++) {
        target *t = &ss->t[i];
        if (t->adhoc != adhoc || strcmp(t->key, adhoc ? (c->address ? c->address : "") : c->channel))
            continue;
        if (!adhoc && !hr_streq(t->user, c->recipient) && (t->user || c->recipient))
            continue;
        t->attempted = 1;
        t->attempts = c->attempts + 1;
        t->state = state;
        t->next_at = next_at;
        t->out = *o;
        t->out.retry_at = state == HR_D_PENDING ? next_at : 0;
    }
}

static int is_final(hr_dstate s)
{
    return s == HR_D_SENT || s == HR_D_FAILED || s == HR_D_DEAD;
}

/* Another process (heraldd) may claim this event's deliveries before we do:
 * take what the store says about the ones we have not attempted, so that we
 * neither wait for attempts that are not ours nor report them as failed. */
static void sync_from_store(hr_store *store, const char *event_id, target *t, size_t n)
{
    hr_log_filter f = {.state = -1, .event_id = event_id, .limit = 1000};
    hr_delivery_row *rows = NULL;
    size_t nrows = 0;
    if (hr_store_log(store, &f, &rows, &nrows) != HERALD_OK)
        return;
    for (size_t i = 0; i < nrows; i++) {
        hr_delivery_row *r = &rows[i];
        if (r->state == HR_D_PENDING || r->state == HR_D_DEFERRED)
            continue;
        int adhoc = strcmp(r->channel, HR_ADHOC_CHANNEL) == 0;
        for (size_t k = 0; k < n; k++) {
            if (t[k].attempted || t[k].adhoc != adhoc ||
                (!adhoc && strcmp(t[k].key, r->channel) != 0) ||
                (!adhoc && (t[k].user || r->recipient) && !hr_streq(t[k].user, r->recipient)))
                continue;
            t[k].attempted = 1;
            t[k].elsewhere = 1;
            t[k].state = r->state;
            t[k].attempts = r->attempts;
            t[k].out.verdict = r->state == HR_D_SENT || r->state == HR_D_INFLIGHT
                                   ? HERALD_VERDICT_OK
                               : r->state == HR_D_DEAD ? HERALD_VERDICT_RETRY
                                                       : HERALD_VERDICT_FAILED;
            t[k].out.status = r->last_status;
            t[k].out.code = r->last_code;
            snprintf(t[k].out.detail, sizeof t[k].out.detail, "%s",
                     r->state == HR_D_INFLIGHT ? "being delivered by heraldd"
                                               : (r->last_detail ? r->last_detail : ""));
            break;
        }
    }
    hr_delivery_rows_free(rows, nrows);
}

#endif

static void add_field(herald_event *ev, const char *name, const char *value)
{
    for (size_t i = 0; i < ev->nfields; i++) {
        if (strcmp(ev->fields[i].name, name) == 0) {
            free(ev->fields[i].value);
            ev->fields[i].value = hr_strdup(value);
            return;
        }
    }
    ev->fields = hr_realloc(ev->fields, (ev->nfields + 1) * sizeof *ev->fields);
    ev->fields[ev->nfields].name = hr_strdup(name);
    ev->fields[ev->nfields].value = hr_strdup(value);
    ev->nfields++;
}

void cli_field_arg(herald_event *ev, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        cli_die("--field '%s' must be KEY=VALUE", kv);
    char *name = hr_strndup(kv, (size_t)(eq - kv));
    add_field(ev, name, eq + 1);
    free(name);
}

static char *read_stdin(size_t max)
{
    hr_buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        hr_buf_add(&b, chunk, n);
        if (b.len > max) {
            hr_buf_free(&b);
            cli_die("body read from stdin is over the limit of %zu bytes; shorten it or raise "
                      "limits.max_body in the config", max);
        }
    }
    if (ferror(stdin))
        cli_die("cannot read the body from stdin: %s", strerror(errno));
    hr_buf_add(&b, NULL, 0);
    if (memchr(b.data, '\0', b.len))
        cli_die("body read from stdin contains NUL bytes; send text");
    /* Like $(...) in the shell: one trailing newline is not part of the body. */
    if (b.len && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    return b.data;
}

static void set_once(char **slot, const char *value, const char *opt)
{
    if (*slot)
        cli_die("%s given twice; give it once", opt);
    *slot = hr_strdup(value);
}

#ifndef HERALD_FRONT
/* Whether the queue has webhook subscriptions (they are destinations too). */
static int has_subscriptions(ctx *c)
{
    hr_store *s = cli_existing_store(c);
    hr_webhook_row *rows = NULL;
    size_t n = 0;
    if (s)
        hr_store_webhooks(s, NULL, &rows, &n);
    hr_webhook_rows_free(rows, n);
    hr_store_close(s);
    return n > 0;
}

/* The channels `herald send` delivers to; store holds the webhook
 * subscriptions a --to may name by id. */
static void open_targets(ctx *c, hr_store *store, char **to, size_t nto, target **out,
                         size_t *nout)
{
    char err[1024];
    target *t = NULL;
    size_t n = 0;
    if (nto == 0) {
        for (size_t i = 0; i < c->cfg->nchannels; i++) {
            t = hr_realloc(t, (n + 1) * sizeof *t);
            memset(&t[n], 0, sizeof *t);
            if (hr_channel_open(c->loader, &c->cfg->channels[i], &t[n].ch, err, sizeof err) !=
                HERALD_OK)
                cli_die("%s", err);
            t[n].key = hr_strdup(c->cfg->channels[i].name);
            n++;
        }
    }
    for (size_t i = 0; i < nto; i++) {
        t = hr_realloc(t, (n + 1) * sizeof *t);
        memset(&t[n], 0, sizeof *t);
        int max_attempts;
        if (hr_webhook_is_id(to[i])) {
            if (hr_webhook_channel(store, c->cfg, c->loader, to[i], &t[n].ch,
                                   &max_attempts, err, sizeof err) != HERALD_OK)
                cli_die("--to %s: %s", to[i], err);
        } else if (strstr(to[i], "://")) {
            char name[32];
            snprintf(name, sizeof name, "url%zu", i + 1);
            for (size_t k = 0; k < n; k++)
                if (t[k].adhoc && strcmp(t[k].key, to[i]) == 0)
                    cli_die("--to %s is given twice; give each URL once", to[i]);
            if (hr_channel_open_url(c->loader, name, to[i], &t[n].ch, err, sizeof err) !=
                HERALD_OK)
                cli_die("--to: %s", err);
            t[n].adhoc = 1;
        } else {
            hr_channel_conf *cc = hr_config_channel(c->cfg, to[i]);
            if (!cc)
                cli_die("--to %s: no such channel in %s; run 'herald check' to list channels, "
                          "or give a URL such as json://host/path", to[i],
                          c->cfg->path ? c->cfg->path : "the configuration (no config file)");
            for (size_t k = 0; k < n; k++)
                if (strcmp(t[k].ch->name, to[i]) == 0)
                    cli_die("--to %s is given twice; give each channel once", to[i]);
            if (hr_channel_open(c->loader, cc, &t[n].ch, err, sizeof err) != HERALD_OK)
                cli_die("%s", err);
        }
        t[n].key = hr_strdup(to[i]);
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        t[i].name = hr_strdup(t[i].ch->name);
        t[i].plugin = t[i].ch->plugin->name;
    }
    *out = t;
    *nout = n;
}

static int seen_cb(void *ctx_, const char *route, const char *key, long long window_ms,
                   long long now)
{
    return hr_store_route_seen(ctx_, route, key, window_ms, now);
}

static int take_cb(void *ctx_, const char *route, int n, long long period_ms, long long now)
{
    return hr_store_route_take(ctx_, route, n, period_ms, now);
}

/* What the routes decide for ev: one target per (channel, recipient) to send
 * or defer; each channel opened once, before anything is stored. */
/* Webhook subscriptions whose events ev matches: one target each. Too large an
 * event for one of them is refused here, before anything is stored. */
static void subscription_targets(ctx *c, hr_store *store, herald_event *ev, target **t,
                                 size_t *n)
{
    const hr_sub **subs = NULL;
    char err[1024];
    long k = hr_subs_for_event(c->routing->subs, ev, &subs, err, sizeof err);
    if (k < 0)
        cli_die("%s", err);
    *t = hr_realloc(*t, (*n + (size_t)k + 1) * sizeof **t);
    for (long i = 0; i < k; i++) {
        target *y = &(*t)[(*n)++];
        memset(y, 0, sizeof *y);
        int max_attempts;
        if (hr_webhook_channel(store, c->cfg, c->loader, subs[i]->id, &y->ch, &max_attempts, err,
                               sizeof err) != HERALD_OK)
            cli_die("webhook %s (%s): %s", subs[i]->name, subs[i]->id, err);
        y->owner = 1;
        y->key = hr_strdup(subs[i]->id);
        y->name = hr_asprintf("webhook %s", subs[i]->name);
        y->plugin = y->ch->plugin->name;
    }
    free(subs);
}

static void route_targets(ctx *c, hr_store *store, herald_event *ev, target **out, size_t *nout,
                          char **trail)
{
    char err[1024];
    hr_route_state state = {store, seen_cb, take_cb};
    hr_decisions dec;
    hr_route_event(c->routing->router, c->routing->dir, ev, ev->created_ms, &state, &dec);
    target *t = hr_calloc(dec.n + 1, sizeof *t);
    size_t n = 0;
    for (size_t i = 0; i < dec.n; i++) {
        const hr_decision *x = &dec.v[i];
        if (x->action == HR_SKIP)
            continue;
        target *y = &t[n];
        for (size_t k = 0; k < n && !y->ch; k++)
            if (strcmp(t[k].key, x->channel) == 0)
                y->ch = t[k].ch;
        if (!y->ch) {
            if (hr_channel_open(c->loader, hr_config_channel(c->cfg, x->channel), &y->ch, err,
                                sizeof err) != HERALD_OK)
                cli_die("%s", err);
            y->owner = 1;
        }
        y->key = hr_strdup(x->channel);
        y->user = x->user ? hr_strdup(x->user) : NULL;
        y->address = x->address ? hr_strdup(x->address) : NULL;
        y->name = x->user ? hr_asprintf("%s -> %s", x->channel, x->user) : hr_strdup(x->channel);
        y->plugin = y->ch->plugin->name;
        if (x->action == HR_DEFER) {
            y->attempted = 1;
            y->state = HR_D_DEFERRED;
            y->next_at = x->not_before;
            y->out.verdict = HERALD_VERDICT_RETRY;
            y->out.retry_at = x->not_before;
            snprintf(y->out.detail, sizeof y->out.detail, "deferred: %s", x->reason);
        }
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "herald: event %s was routed to nobody", ev->id);
        for (size_t i = 0; i < dec.nnotes; i++)
            fprintf(stderr, "%s %s", i ? ";" : ":", dec.notes[i]);
        fputc('\n', stderr);
    }
    *trail = hr_decisions_json(&dec);
    hr_decisions_free(&dec);
    *out = t;
    *nout = n;
}

static json_t *outcome_json(const char *channel, const char *plugin, const hr_outcome *o)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:o}", "channel", channel, "plugin",
                     plugin, "verdict", hr_verdict_name(o->verdict), "status",
                     hr_status_name(o->status), "code", (json_int_t)o->code, "detail", o->detail,
                     "elapsed_ms", (json_int_t)o->elapsed_ms, "retry_at",
                     o->retry_at > 0 ? json_integer(o->retry_at) : json_null());
}

static json_t *target_json(const target *t)
{
    json_t *o = outcome_json(t->name, t->plugin, &t->out);
    if (t->user)
        json_object_set_new(o, "user", json_string(t->user));
    json_object_set_new(o, "state", json_string(t->attempted ? hr_dstate_name(t->state)
                                                              : "pending"));
    json_object_set_new(o, "attempts", json_integer(t->attempts));
    return o;
}

static void print_outcome(const char *channel, const hr_outcome *o, const char *what)
{
    if (o->verdict == HERALD_VERDICT_OK) {
        if (hr_log_level() >= HERALD_LOG_NOTICE)
            fprintf(stderr, "herald: channel '%s': %s (%s, %lld ms)\n", channel, what, o->detail,
                    o->elapsed_ms);
        return;
    }
    char when[64] = "";
    if (o->verdict == HERALD_VERDICT_RETRY && o->retry_at > 0) {
        char ts[32];
        hr_rfc3339(o->retry_at, ts, sizeof ts);
        snprintf(when, sizeof when, "; retry after %s", ts);
    }
    const char *verdict = o->verdict == HERALD_VERDICT_RETRY     ? "temporary failure"
                          : o->verdict == HERALD_VERDICT_DISABLE ? "destination gone"
                                                                 : "failed";
    fprintf(stderr, "herald: channel '%s': not %s: %s (%s): %s%s\n", channel, what, verdict,
            hr_status_name(o->status), o->detail, when);
}

#endif

static int cmd_send(ctx *c, int argc, char **argv)
{
    enum { O_TO = 256, O_USER, O_IDEM, O_WAIT, O_JSON, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"event", required_argument, NULL, 'e'},
        {"severity", required_argument, NULL, 's'},
        {"urgency", required_argument, NULL, 'u'},
        {"app-name", required_argument, NULL, 'a'},
        {"category", required_argument, NULL, 'c'},
        {"icon", required_argument, NULL, 'i'},
        {"expire-time", required_argument, NULL, 't'},
        {"hint", required_argument, NULL, 'h'},
        {"field", required_argument, NULL, 'f'},
        {"data", required_argument, NULL, 'd'},
        {"print-id", no_argument, NULL, 'p'},
        {"to", required_argument, NULL, O_TO},
        {"user", required_argument, NULL, O_USER},
        {"idempotency-key", required_argument, NULL, O_IDEM},
        {"wait", optional_argument, NULL, O_WAIT},
        {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, O_CONFIG},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.severity = HERALD_SEVERITY_NOTICE;
    char *category = NULL;
    char **to = NULL;
    size_t nto = 0;
    int print_id = 0, as_json = 0, severity_set = 0;
    long long wait_ms = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:e:s:u:a:c:i:t:h:f:d:p", opts, NULL)) != -1) {
        switch (opt) {
        case 'e':
            set_once(&ev.type, optarg, "--event");
            break;
        case 's':
            if (severity_set)
                cli_die("severity given twice; give -s or -u once");
            if (!hr_severity_parse(optarg, &ev.severity))
                cli_die("unknown severity '%s'; use debug, info, notice, warning, error or "
                          "critical", optarg);
            severity_set = 1;
            break;
        case 'u':
            if (severity_set)
                cli_die("severity given twice; give -s or -u once");
            if (!strcmp(optarg, "low"))
                ev.severity = HERALD_SEVERITY_INFO;
            else if (!strcmp(optarg, "normal"))
                ev.severity = HERALD_SEVERITY_NOTICE;
            else if (!strcmp(optarg, "critical"))
                ev.severity = HERALD_SEVERITY_CRITICAL;
            else
                cli_die("unknown urgency '%s'; use low, normal or critical", optarg);
            severity_set = 1;
            break;
        case 'a':
            set_once(&ev.source, optarg, "--app-name");
            break;
        case 'c':
            set_once(&category, optarg, "--category");
            break;
        case 'i':
            add_field(&ev, "icon", optarg);
            break;
        case 't': {
            char *end;
            errno = 0;
            long ms = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || ms < -1)
                cli_die("--expire-time '%s' is not a number of milliseconds", optarg);
            add_field(&ev, "expire_time", optarg);
            break;
        }
        case 'h': {
            char *c1 = strchr(optarg, ':');
            char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2 || c2 == c1 + 1)
                cli_die("--hint '%s' must be TYPE:NAME:VALUE, e.g. string:host:db1", optarg);
            char *name = hr_strndup(c1 + 1, (size_t)(c2 - c1 - 1));
            add_field(&ev, name, c2 + 1);
            free(name);
            break;
        }
        case 'f':
            cli_field_arg(&ev, optarg);
            break;
        case 'd':
            set_once(&ev.data, optarg, "--data");
            break;
        case 'p':
            print_id = 1;
            break;
        case O_TO: {
            char *copy = hr_strdup(optarg), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                to = hr_realloc(to, (nto + 1) * sizeof *to);
                to[nto++] = hr_strdup(tok);
            }
            free(copy);
            if (!*optarg || optarg[strlen(optarg) - 1] == ',')
                cli_die("--to needs a channel name or URL");
            break;
        }
        case O_USER:
            set_once(&ev.user, optarg, "--user");
            break;
        case O_IDEM:
            set_once(&ev.idempotency_key, optarg, "--idempotency-key");
            break;
        case O_WAIT:
            wait_ms = DEFAULT_WAIT_MS;
            if (optarg && hr_parse_duration(optarg, &wait_ms) != HERALD_OK)
                cli_die("--wait=%s is not a duration like 30s or 5m", optarg);
            break;
        case O_JSON:
            as_json = 1;
            break;
        case O_CONFIG:
            c->config_opt = optarg;
            break;
        case O_HELP:
            fputs(send_usage, stdout);
            exit(0);
        case ':':
            cli_die("option %s needs a value; see herald send --help", argv[optind - 1]);
        default:
            if (optopt && optopt < 256)
                cli_die("unknown option '-%c' for send; see herald send --help", optopt);
            cli_die("unknown option '%s' for send; see herald send --help", argv[optind - 1]);
        }
    }
    int nargs = argc - optind;
    if (nargs < 1)
        cli_die("send needs a SUMMARY; usage: herald send [OPTIONS] SUMMARY [BODY]");
    if (nargs > 2)
        cli_die("send takes SUMMARY and BODY only, got %d arguments; quote the text", nargs);
    if (!ev.type)
        ev.type = hr_strdup(category ? category : "notification");
    else if (category)
        add_field(&ev, "category", category);
    free(category);
    ev.title = hr_strdup(argv[optind]);

    cli_load(c, 1);
#ifdef HERALD_FRONT
    /* No daemon to hand the event to: the full engine takes over, decided
     * before standard input is read so that it still gets the body. */
    int dfd = nto == 0 && c->cfg->nchannels == 0 ? -1 : hr_daemon_connect(c->cfg);
    if (dfd < 0)
        exec_engine();
#endif
    const hr_limits *lim = &c->cfg->limits;
    int body_from_stdin = 0;
    if (nargs == 2 && strcmp(argv[optind + 1], "-") != 0) {
        ev.body = hr_strdup(argv[optind + 1]);
    } else if (nargs == 2 || !isatty(STDIN_FILENO)) {
        ev.body = read_stdin(lim->max_body);
        body_from_stdin = 1;
    } else {
        ev.body = hr_strdup("");
    }
    (void)body_from_stdin;

    char err[1024];
    if (hr_event_validate(&ev, lim, err, sizeof err) != HERALD_OK)
        cli_die("%s", err);
#ifdef HERALD_FRONT
    /* (never reached without channels: the engine took over above) */
#define has_subscriptions(c) 0
#endif
    if (nto == 0 && c->cfg->nchannels == 0 && !has_subscriptions(c)) {
        if (c->cfg->path)
            fprintf(stderr, "herald: no channel to send to: %s defines no channels; add one or "
                    "use --to URL\n", c->cfg->path);
        else
            fprintf(stderr, "herald: no channel to send to: there is no configuration file; "
                    "create %s or use --to URL\n", HERALD_SYSCONFDIR "/herald/herald.conf");
        hr_event_clear(&ev);
        cli_free(c);
        return EXIT_NOTHING;
    }

#ifndef HERALD_FRONT
    int dfd = hr_daemon_connect(c->cfg);
#endif
    if (dfd >= 0) {
        int rc = send_via_daemon(dfd, &ev, to, nto, wait_ms, as_json, print_id);
        close(dfd);
        if (rc >= 0) {
            for (size_t i = 0; i < nto; i++)
                free(to[i]);
            free(to);
            hr_event_clear(&ev);
            cli_free(c);
            return rc;
        }
        hr_log(HERALD_LOG_NOTICE, "heraldd went away; running the engine here instead");
    }
#ifdef HERALD_FRONT
    if (!body_from_stdin)
        exec_engine();
    cli_die("heraldd closed the connection before accepting the event; nothing was queued; "
            "send it again");
}
#else

    /* Every channel is opened before anything is sent: a bad channel must not
     * leave the event delivered to some channels and not others. */
    target *targets;
    size_t ntargets;
    char *dbpath = hr_config_database(c->cfg, err, sizeof err);
    hr_store *store = NULL;
    if (!dbpath || hr_store_open(dbpath, &store, err, sizeof err) != HERALD_OK)
        cli_die("cannot open the queue: %s", err);
    free(dbpath);

    hr_event_stamp(&ev);
    char *trail = NULL;
    /* Routes, users and subscriptions matter only without --to. */
    if (nto == 0 &&
        hr_routing_load(&c->routing, c->cfg, c->loader, store, err, sizeof err) != HERALD_OK)
        cli_die("%s", err);
    if (nto == 0 && hr_config_routed(c->cfg)) {
        route_targets(c, store, &ev, &targets, &ntargets, &trail);
    } else {
        open_targets(c, store, to, nto, &targets, &ntargets);
        for (size_t i = 0; i < ntargets; i++)
            targets[i].owner = 1;
    }
    if (nto == 0 && !ev.user)
        subscription_targets(c, store, &ev, &targets, &ntargets);

    /* Accepted means stored: the event and every delivery in one transaction. */
    hr_delivery_new *dn = hr_calloc(ntargets + 1, sizeof *dn);
    for (size_t i = 0; i < ntargets; i++) {
        dn[i].channel = targets[i].adhoc ? HR_ADHOC_CHANNEL : targets[i].key;
        dn[i].recipient = targets[i].user;
        dn[i].address = targets[i].adhoc ? targets[i].key : targets[i].address;
        dn[i].next_at = targets[i].state == HR_D_DEFERRED ? targets[i].next_at : ev.created_ms;
        dn[i].state = targets[i].state == HR_D_DEFERRED ? HR_D_DEFERRED : HR_D_PENDING;
    }
    int duplicate = 0;
    herald_status st = hr_store_submit_routed(store, &ev, dn, ntargets,
                                              c->cfg->idempotency_window_ms, &duplicate, trail);
    free(trail);
    free(dn);
    if (st != HERALD_OK)
        cli_die("cannot queue the event: %s", hr_store_error(store));

    int failed = 0;
    if (duplicate) {
        if (!as_json)
            fprintf(stderr, "herald: idempotency key '%s' was already used by event %s; not "
                    "sent again\n", ev.idempotency_key, ev.id);
        for (size_t i = 0; i < ntargets; i++) {
            if (targets[i].owner)
                hr_channel_close(targets[i].ch);
            free(targets[i].key);
            free(targets[i].name);
            free(targets[i].user);
            free(targets[i].address);
        }
        ntargets = 0;
    } else {
        send_state ss = {targets, ntargets};
        hr_dispatcher *d = hr_dispatcher_new(c->cfg, c->loader, store);
        hr_dispatcher_only_event(d, ev.id);
        hr_dispatcher_on_attempt(d, on_attempt, &ss);
        for (size_t i = 0; i < ntargets; i++) {
            char *reason = NULL;
            if (!targets[i].adhoc && hr_store_channel_disabled(store, targets[i].key, &reason)) {
                /* Held, not lost: it goes out once the channel is enabled again. */
                targets[i].attempted = 1;
                targets[i].state = HR_D_PENDING;
                targets[i].out.verdict = HERALD_VERDICT_RETRY;
                targets[i].out.status = HERALD_E_GONE;
                snprintf(targets[i].out.detail, sizeof targets[i].out.detail,
                         "channel is disabled (%s); queued until herald channel enable %s",
                         reason ? reason : "", targets[i].key);
            }
            free(reason);
            if (targets[i].owner)
                hr_dispatcher_adopt(d, targets[i].key, targets[i].ch);
        }
        long long now = hr_now_ms();
        long long deadline = now + (wait_ms > 0 ? wait_ms : NOWAIT_SAFETY_MS);
        for (;;) {
            int all_attempted = 1, all_final = 1;
            long long next_due = 0;
            for (size_t i = 0; i < ntargets; i++) {
                all_attempted &= targets[i].attempted;
                all_final &= targets[i].attempted && (is_final(targets[i].state) ||
                                                      targets[i].state == HR_D_DEFERRED);
                if (targets[i].attempted && targets[i].state == HR_D_PENDING &&
                    targets[i].next_at && (!next_due || targets[i].next_at < next_due))
                    next_due = targets[i].next_at;
            }
            now = hr_now_ms();
            if ((wait_ms <= 0 && all_attempted) || all_final || now >= deadline)
                break;
            if (hr_dispatcher_inflight(d) == 0) {
                /* Leave in flight what another process is delivering only when
                 * not waiting for the end: then look again. */
                for (size_t i = 0; i < ntargets; i++)
                    if (targets[i].elsewhere && !is_final(targets[i].state))
                        targets[i].attempted = 0;
                sync_from_store(store, ev.id, targets, ntargets);
            }
            long long timeout = 1000;
            if (hr_dispatcher_inflight(d) == 0 && all_attempted && next_due)
                timeout = next_due - now;
            if (timeout > deadline - now)
                timeout = deadline - now;
            if (timeout > 1000)
                timeout = 1000;
            hr_dispatcher_step(d, (int)(timeout < 0 ? 0 : timeout), NULL, 0);
        }
        hr_dispatcher_free(d); /* closes the adopted channels */
        for (size_t i = 0; i < ntargets; i++) {
            if (!targets[i].attempted) {
                targets[i].out.verdict = HERALD_VERDICT_RETRY;
                targets[i].out.status = HERALD_E_TIMEOUT;
                snprintf(targets[i].out.detail, sizeof targets[i].out.detail,
                         "no attempt finished in time; the delivery stays queued");
            }
            /* Handed to heraldd and still on its way is queued, not failed. */
            int handed_off = targets[i].elsewhere && targets[i].state == HR_D_INFLIGHT;
            if (!targets[i].attempted ||
                (targets[i].state != HR_D_SENT && targets[i].state != HR_D_DEFERRED && !handed_off))
                failed = 1;
        }
    }
    hr_store_close(store);

    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < ntargets; i++)
            json_array_append_new(arr, target_json(&targets[i]));
        json_t *o = json_pack("{s:s, s:b, s:o}", "id", ev.id, "duplicate", duplicate,
                              "deliveries", arr);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        if (print_id)
            printf("%s\n", ev.id);
        for (size_t i = 0; i < ntargets; i++) {
            if (targets[i].state == HR_D_DEFERRED) {
                char ts[32];
                hr_rfc3339(targets[i].next_at, ts, sizeof ts);
                fprintf(stderr, "herald: channel '%s': held until %s (%s)\n", targets[i].name, ts,
                        targets[i].out.detail);
                continue;
            }
            print_outcome(targets[i].name, &targets[i].out, "delivered");
        }
    }
    for (size_t i = 0; i < ntargets; i++) {
        free(targets[i].key);
        free(targets[i].name);
        free(targets[i].user);
        free(targets[i].address);
    }
    free(targets);
    for (size_t i = 0; i < nto; i++)
        free(to[i]);
    free(to);
    hr_event_clear(&ev);
    cli_free(c);
    return failed ? EXIT_DELIVERY : 0;
}

/* ---- test ---- */

int cli_send(cli_ctx *c, int argc, char **argv)
{
    return cmd_send(c, argc, argv);
}

#endif /* HERALD_FRONT */

#ifndef HERALD_FRONT
static int cmd_test(ctx *c, int argc, char **argv)
{
    enum { O_SEND = 256, O_JSON, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"send", no_argument, NULL, O_SEND},
        {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, O_CONFIG},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int send_real = 0, as_json = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (opt) {
        case O_SEND: send_real = 1; break;
        case O_JSON: as_json = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP: fputs(test_usage, stdout); exit(0);
        default: cli_die("unknown option '%s' for test; see herald test --help",
                           argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        cli_die("test needs exactly one CHANNEL or URL; usage: herald test [--send] CHANNEL");
    const char *which = argv[optind];
    cli_load(c, strstr(which, "://") != NULL);
    char err[1024];
    herald_channel *ch = NULL;
    herald_status st;
    if (strstr(which, "://")) {
        st = hr_channel_open_url(c->loader, "url", which, &ch, err, sizeof err);
    } else {
        hr_channel_conf *cc = hr_config_channel(c->cfg, which);
        if (!cc)
            cli_die("no channel '%s' in %s; run 'herald check' to list channels", which,
                      c->cfg->path ? c->cfg->path : "the configuration");
        st = hr_channel_open(c->loader, cc, &ch, err, sizeof err);
    }
    if (st != HERALD_OK)
        cli_die("%s", err);

    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "herald.test";
    ev.severity = HERALD_SEVERITY_INFO;
    ev.title = "herald test";
    ev.body = "This is a test notification from herald.";
    ev.source = "herald";
    hr_event_stamp(&ev);
    herald_message m = {.ev = &ev, .address = NULL};
    hr_outcome out;
    hr_channel_deliver(ch, &m, HERALD_PURPOSE_TEST, send_real ? HERALD_TEST_SEND : 0, &out);
    if (as_json) {
        json_t *o = outcome_json(ch->name, ch->plugin->name, &out);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else if (out.verdict == HERALD_VERDICT_OK) {
        printf("channel '%s': ok: %s\n", ch->name, out.detail);
    } else {
        print_outcome(ch->name, &out, "working");
    }
    int rc = out.verdict == HERALD_VERDICT_OK ? 0 : EXIT_DELIVERY;
    hr_channel_close(ch);
    cli_free(c);
    return rc;
}

/* ---- check ---- */

static int cmd_check(ctx *c, int argc, char **argv)
{
    enum { O_JSON = 256, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, O_CONFIG},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int as_json = 0, opt;
    optind = 0; /* 0, not 1: glibc then forgets the '+' (stop at arguments) of earlier calls */
    opterr = 0;
    /* Options may follow the arguments (herald show ID --json): getopt permutes. */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case O_JSON: as_json = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP: fputs(check_usage, stdout); exit(0);
        default: cli_die("unknown option '%s' for check; see herald check --help",
                           argv[optind - 1]);
        }
    }
    if (optind != argc)
        cli_die("check takes no arguments; use -c FILE to name the configuration");
    cli_load(c, 0);
    char err[1024];
    json_t *arr = json_array();
    hr_buf names = {0};
    for (size_t i = 0; i < c->cfg->nchannels; i++) {
        herald_channel *ch;
        if (hr_channel_open(c->loader, &c->cfg->channels[i], &ch, err, sizeof err) != HERALD_OK)
            cli_die("%s", err);
        json_array_append_new(arr, json_pack("{s:s, s:s}", "name", ch->name, "plugin",
                                             ch->plugin->name));
        hr_buf_addf(&names, "%s%s (%s)", i ? ", " : "", ch->name, ch->plugin->name);
        hr_channel_close(ch);
    }
    /* Routes, users and groups: unknown names, bad regexes and time zones fail;
     * routes that can never match are warned about. */
    hr_store *store = cli_existing_store(c);
    herald_status rst = hr_routing_load(&c->routing, c->cfg, c->loader, store, err, sizeof err);
    hr_store_close(store);
    if (rst != HERALD_OK)
        cli_die("%s", err);
    hr_hooks *hooks = NULL;
    if (hr_hooks_load(c->cfg, &hooks, err, sizeof err) != HERALD_OK)
        cli_die("%s", err);
    size_t nhooks = hooks->n;
    hr_hooks_free(hooks);
    char *warnings = NULL;
    hr_router_lint(c->routing->router, &warnings);
    if (warnings)
        fprintf(stderr, "%s", warnings);
    size_t nroutes = c->routing->router->nroutes, nusers = c->routing->dir->nusers;
    if (as_json) {
        json_t *o = json_pack("{s:s, s:b, s:o, s:I, s:I, s:I, s:s?}", "config", c->cfg->path,
                              "ok", 1, "channels", arr, "routes", (json_int_t)nroutes, "users",
                              (json_int_t)nusers, "hooks", (json_int_t)nhooks, "warnings",
                              warnings);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        json_decref(arr);
        printf("%s: ok, %zu channel%s%s%s", c->cfg->path, c->cfg->nchannels,
               c->cfg->nchannels == 1 ? "" : "s", c->cfg->nchannels ? ": " : "",
               names.data ? names.data : "");
        if (nroutes || nusers)
            printf("; %zu route%s, %zu user%s", nroutes, nroutes == 1 ? "" : "s", nusers,
                   nusers == 1 ? "" : "s");
        if (nhooks)
            printf("; %zu inbound hook source%s", nhooks, nhooks == 1 ? "" : "s");
        putchar('\n');
    }
    free(warnings);
    hr_buf_free(&names);
    cli_free(c);
    return 0;
}

/* ---- plugins ---- */

static const char *type_name(herald_setting_type t)
{
    switch (t) {
    case HERALD_SETTING_STRING: return "string";
    case HERALD_SETTING_INT: return "integer";
    case HERALD_SETTING_BOOL: return "boolean";
    case HERALD_SETTING_MAP: return "group";
    case HERALD_SETTING_LIST: return "list";
    }
    return "?";
}

static int cmd_plugins(ctx *c, int argc, char **argv)
{
    enum { O_JSON = 256, O_CONFIG, O_HELP };
    static const struct option opts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"verbose", no_argument, NULL, 'v'},
        {"config", required_argument, NULL, O_CONFIG},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int as_json = 0, verbose = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+v", opts, NULL)) != -1) {
        switch (opt) {
        case O_JSON: as_json = 1; break;
        case 'v': verbose = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP: fputs(plugins_usage, stdout); exit(0);
        default: cli_die("unknown option '%s' for plugins; see herald plugins --help",
                           argv[optind - 1]);
        }
    }
    cli_load(c, 1);
    char **names = hr_loader_scan(c->loader);
    json_t *arr = json_array();
    int bad = 0;
    for (char **n = names; *n; n++) {
        hr_plugin *p;
        char err[1024];
        if (hr_loader_get(c->loader, *n, &p, err, sizeof err) != HERALD_OK) {
            fprintf(stderr, "herald: %s\n", err);
            bad = 1;
            continue;
        }
        const herald_plugin *in = p->info;
        hr_buf sch = {0};
        json_t *jsch = json_array();
        for (const char *const *s = in->schemes; s && *s; s++) {
            hr_buf_addf(&sch, "%s%s", sch.len ? "," : "", *s);
            json_array_append_new(jsch, json_string(*s));
        }
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", in->abi_major, in->abi_minor);
        if (as_json) {
            json_t *jset = json_array();
            for (const herald_setting_spec *s = in->settings; s && s->name; s++)
                json_array_append_new(jset, json_pack("{s:s, s:s, s:b, s:b, s:s}", "name",
                                                      s->name, "type", type_name(s->type),
                                                      "required",
                                                      (s->flags & HERALD_SETTING_REQUIRED) != 0,
                                                      "secret",
                                                      (s->flags & HERALD_SETTING_SECRET) != 0,
                                                      "help", s->help ? s->help : ""));
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o}", "name",
                                                 in->name, "version", in->version, "abi", abi,
                                                 "description", in->description, "schemes", jsch,
                                                 "path", p->path, "settings", jset));
        } else {
            json_decref(jsch);
            printf("%-12s %-8s ABI %-5s %-16s %s\n", in->name, in->version, abi,
                   sch.data ? sch.data : "-", p->path);
            if (verbose) {
                printf("    %s\n", in->description);
                for (const herald_setting_spec *s = in->settings; s && s->name; s++)
                    printf("    %-14s %-8s%s%s  %s\n", s->name, type_name(s->type),
                           s->flags & HERALD_SETTING_REQUIRED ? " required" : "",
                           s->flags & HERALD_SETTING_SECRET ? " secret" : "",
                           s->help ? s->help : "");
            }
        }
        hr_buf_free(&sch);
    }
    if (as_json) {
        json_dumpf(arr, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    }
    json_decref(arr);
    if (!names[0])
        fprintf(stderr, "herald: no plugins found in the plugin path; set HERALD_PLUGIN_PATH or "
                "plugin_path\n");
    hr_strv_free(names);
    cli_free(c);
    return bad ? EXIT_DELIVERY : 0;
}

#endif /* !HERALD_FRONT */

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ctx c = {0};
    int opt, level = HERALD_LOG_WARNING;
#ifdef HERALD_FRONT
    orig_argv = argv;
#endif
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+c:vqh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': c.config_opt = optarg; break;
        case 'v': level = level < HERALD_LOG_NOTICE ? HERALD_LOG_NOTICE : level + 1; break;
        case 'q': level = HERALD_LOG_ERROR; break;
        case 'V': printf("herald %s\nplugin ABI %d.%d\n", HERALD_VERSION, HERALD_PLUGIN_ABI_MAJOR,
                         HERALD_PLUGIN_ABI_MINOR);
                  return 0;
        case 'h': fputs(main_usage, stdout); return 0;
        default:
            if (optopt == 'c')
                cli_die("-c needs a FILE; usage: herald -c FILE COMMAND");
            cli_die("unknown option '%s'; see herald --help", argv[optind - 1]);
        }
    }
    hr_log_set_level(level);
    if (optind >= argc)
        cli_die("no command given; try herald send \"Hello\" or herald --help");
#ifdef HERALD_FRONT
    if (strcmp(argv[optind], "send") != 0)
        exec_engine();
    argc -= optind;
    argv += optind;
    int rc = cmd_send(&c, argc, argv);
    hr_secrets_clear();
    return rc;
#else
    if (hr_transport_global_init() != 0 || hr_module_init() != 0) {
        fprintf(stderr, "herald: cannot initialise libcurl or libltdl\n");
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    argc -= optind;
    argv += optind;
    int rc;
    if (!strcmp(cmd, "send"))
        rc = cmd_send(&c, argc, argv);
    else if (!strcmp(cmd, "test"))
        rc = cmd_test(&c, argc, argv);
    else if (!strcmp(cmd, "check"))
        rc = cmd_check(&c, argc, argv);
    else if (!strcmp(cmd, "plugins"))
        rc = cmd_plugins(&c, argc, argv);
    else if (!strcmp(cmd, "log"))
        rc = cli_log(&c, argc, argv);
    else if (!strcmp(cmd, "show"))
        rc = cli_show(&c, argc, argv);
    else if (!strcmp(cmd, "retry"))
        rc = cli_retry(&c, argc, argv);
    else if (!strcmp(cmd, "queue"))
        rc = cli_queue(&c, argc, argv);
    else if (!strcmp(cmd, "purge"))
        rc = cli_purge(&c, argc, argv);
    else if (!strcmp(cmd, "stats"))
        rc = cli_stats(&c, argc, argv);
    else if (!strcmp(cmd, "channel"))
        rc = cli_channel(&c, argc, argv);
    else if (!strcmp(cmd, "route"))
        rc = cli_route(&c, argc, argv);
    else if (!strcmp(cmd, "explain"))
        rc = cli_explain(&c, argc, argv);
    else if (!strcmp(cmd, "user"))
        rc = cli_user(&c, argc, argv);
    else if (!strcmp(cmd, "prefs"))
        rc = cli_prefs(&c, argc, argv);
    else if (!strcmp(cmd, "group"))
        rc = cli_group(&c, argc, argv);
    else if (!strcmp(cmd, "webhook"))
        rc = cli_webhook(&c, argc, argv);
    else if (!strcmp(cmd, "token"))
        rc = cli_token(&c, argc, argv);
    else if (!strcmp(cmd, "verify"))
        rc = cli_verify(&c, argc, argv);
    else if (!strcmp(cmd, "help")) {
        fputs(main_usage, stdout);
        rc = 0;
    } else
        cli_die("unknown command '%s'; commands are send, test, check, plugins, log, show, "
                "retry, queue, stats, channel, route, explain, user, prefs, group, verify, webhook, "
                "token", cmd);
    hr_secrets_clear();
    return rc;
#endif
}
