/* herald.c - the herald command line: send, test, check, plugins. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

#define EXIT_DELIVERY 1
#define EXIT_USAGE 2
#define EXIT_NOTHING 3

typedef struct ctx {
    const char *config_opt;
    hr_config *cfg;
    hr_loader *loader;
} ctx;

static void die_usage(const char *fmt, ...) HERALD_PRINTF(1, 2) __attribute__((noreturn));
static void die_usage(const char *fmt, ...)
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
    "      --wait                wait for the final result (the default for now)\n"
    "  -p, --print-id            print the event id\n"
    "      --json                print the result as JSON\n"
    "      --config FILE         configuration file\n"
    "      --help                print this help\n"
    "\n"
    "Title and body must be UTF-8; the title is limited to 1024 bytes and the body to\n"
    "65536 bytes unless limits { max_title; max_body; } in the config says otherwise.\n";

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
static void ctx_load(ctx *c, int allow_missing)
{
    int explicit_;
    const char *path = hr_config_pick(c->config_opt, &explicit_);
    char err[1024];
    if (!explicit_ && allow_missing && access(path, F_OK) != 0 && errno == ENOENT) {
        c->cfg = hr_config_empty();
    } else if (hr_config_load(path, &c->cfg, err, sizeof err) != HERALD_OK) {
        die_usage("%s", err);
    }
    c->loader = hr_loader_new(c->cfg->plugin_path);
}

static void ctx_free(ctx *c)
{
    hr_loader_free(c->loader);
    hr_config_free(c->cfg);
}

/* ---- send ---- */

typedef struct target {
    herald_channel *ch;
    hr_outcome out;
} target;

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

static void event_free(herald_event *ev)
{
    free(ev->type);
    free(ev->title);
    free(ev->body);
    free(ev->source);
    free(ev->user);
    free(ev->idempotency_key);
    free(ev->data);
    for (size_t i = 0; i < ev->nfields; i++) {
        free(ev->fields[i].name);
        free(ev->fields[i].value);
    }
    free(ev->fields);
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
            die_usage("body read from stdin is over the limit of %zu bytes; shorten it or raise "
                      "limits.max_body in the config", max);
        }
    }
    if (ferror(stdin))
        die_usage("cannot read the body from stdin: %s", strerror(errno));
    hr_buf_add(&b, NULL, 0);
    if (memchr(b.data, '\0', b.len))
        die_usage("body read from stdin contains NUL bytes; send text");
    /* Like $(...) in the shell: one trailing newline is not part of the body. */
    if (b.len && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    return b.data;
}

static void set_once(char **slot, const char *value, const char *opt)
{
    if (*slot)
        die_usage("%s given twice; give it once", opt);
    *slot = hr_strdup(value);
}

static void open_targets(ctx *c, char **to, size_t nto, target **out, size_t *nout)
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
                die_usage("%s", err);
            n++;
        }
    }
    for (size_t i = 0; i < nto; i++) {
        t = hr_realloc(t, (n + 1) * sizeof *t);
        memset(&t[n], 0, sizeof *t);
        if (strstr(to[i], "://")) {
            char name[32];
            snprintf(name, sizeof name, "url%zu", i + 1);
            if (hr_channel_open_url(c->loader, name, to[i], &t[n].ch, err, sizeof err) !=
                HERALD_OK)
                die_usage("--to: %s", err);
        } else {
            hr_channel_conf *cc = hr_config_channel(c->cfg, to[i]);
            if (!cc)
                die_usage("--to %s: no such channel in %s; run 'herald check' to list channels, "
                          "or give a URL such as json://host/path", to[i],
                          c->cfg->path ? c->cfg->path : "the configuration (no config file)");
            for (size_t k = 0; k < n; k++)
                if (strcmp(t[k].ch->name, to[i]) == 0)
                    die_usage("--to %s is given twice; give each channel once", to[i]);
            if (hr_channel_open(c->loader, cc, &t[n].ch, err, sizeof err) != HERALD_OK)
                die_usage("%s", err);
        }
        n++;
    }
    *out = t;
    *nout = n;
}

static json_t *outcome_json(const herald_channel *ch, const hr_outcome *o)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:o}", "channel", ch->name, "plugin",
                     ch->plugin->name, "verdict", hr_verdict_name(o->verdict), "status",
                     hr_status_name(o->status), "code", (json_int_t)o->code, "detail", o->detail,
                     "elapsed_ms", (json_int_t)o->elapsed_ms, "retry_at",
                     o->retry_at > 0 ? json_integer(o->retry_at) : json_null());
}

static void print_outcome(const herald_channel *ch, const hr_outcome *o, const char *what)
{
    if (o->verdict == HERALD_VERDICT_OK) {
        if (hr_log_level() >= HERALD_LOG_NOTICE)
            fprintf(stderr, "herald: channel '%s': %s (%s, %lld ms)\n", ch->name, what, o->detail,
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
    fprintf(stderr, "herald: channel '%s': not %s: %s (%s): %s%s\n", ch->name, what, verdict,
            hr_status_name(o->status), o->detail, when);
}

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
        {"wait", no_argument, NULL, O_WAIT},
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
                die_usage("severity given twice; give -s or -u once");
            if (!hr_severity_parse(optarg, &ev.severity))
                die_usage("unknown severity '%s'; use debug, info, notice, warning, error or "
                          "critical", optarg);
            severity_set = 1;
            break;
        case 'u':
            if (severity_set)
                die_usage("severity given twice; give -s or -u once");
            if (!strcmp(optarg, "low"))
                ev.severity = HERALD_SEVERITY_INFO;
            else if (!strcmp(optarg, "normal"))
                ev.severity = HERALD_SEVERITY_NOTICE;
            else if (!strcmp(optarg, "critical"))
                ev.severity = HERALD_SEVERITY_CRITICAL;
            else
                die_usage("unknown urgency '%s'; use low, normal or critical", optarg);
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
                die_usage("--expire-time '%s' is not a number of milliseconds", optarg);
            add_field(&ev, "expire_time", optarg);
            break;
        }
        case 'h': {
            char *c1 = strchr(optarg, ':');
            char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2 || c2 == c1 + 1)
                die_usage("--hint '%s' must be TYPE:NAME:VALUE, e.g. string:host:db1", optarg);
            char *name = hr_strndup(c1 + 1, (size_t)(c2 - c1 - 1));
            add_field(&ev, name, c2 + 1);
            free(name);
            break;
        }
        case 'f': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                die_usage("--field '%s' must be KEY=VALUE", optarg);
            char *name = hr_strndup(optarg, (size_t)(eq - optarg));
            add_field(&ev, name, eq + 1);
            free(name);
            break;
        }
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
                die_usage("--to needs a channel name or URL");
            break;
        }
        case O_USER:
            set_once(&ev.user, optarg, "--user");
            break;
        case O_IDEM:
            set_once(&ev.idempotency_key, optarg, "--idempotency-key");
            break;
        case O_WAIT:
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
            die_usage("option %s needs a value; see herald send --help", argv[optind - 1]);
        default:
            if (optopt && optopt < 256)
                die_usage("unknown option '-%c' for send; see herald send --help", optopt);
            die_usage("unknown option '%s' for send; see herald send --help", argv[optind - 1]);
        }
    }
    int nargs = argc - optind;
    if (nargs < 1)
        die_usage("send needs a SUMMARY; usage: herald send [OPTIONS] SUMMARY [BODY]");
    if (nargs > 2)
        die_usage("send takes SUMMARY and BODY only, got %d arguments; quote the text", nargs);
    if (!ev.type)
        ev.type = hr_strdup(category ? category : "notification");
    else if (category)
        add_field(&ev, "category", category);
    free(category);
    ev.title = hr_strdup(argv[optind]);

    ctx_load(c, 1);
    const hr_limits *lim = &c->cfg->limits;
    if (nargs == 2 && strcmp(argv[optind + 1], "-") != 0)
        ev.body = hr_strdup(argv[optind + 1]);
    else if (nargs == 2 || !isatty(STDIN_FILENO))
        ev.body = read_stdin(lim->max_body);
    else
        ev.body = hr_strdup("");

    char err[1024];
    if (hr_event_validate(&ev, lim, err, sizeof err) != HERALD_OK)
        die_usage("%s", err);
    if (nto == 0 && c->cfg->nchannels == 0) {
        if (c->cfg->path)
            fprintf(stderr, "herald: no channel to send to: %s defines no channels; add one or "
                    "use --to URL\n", c->cfg->path);
        else
            fprintf(stderr, "herald: no channel to send to: there is no configuration file; "
                    "create %s or use --to URL\n", HERALD_SYSCONFDIR "/herald/herald.conf");
        event_free(&ev);
        ctx_free(c);
        return EXIT_NOTHING;
    }

    /* Every channel is opened before anything is sent: a bad channel must not
     * leave the event delivered to some channels and not others. */
    target *targets;
    size_t ntargets;
    open_targets(c, to, nto, &targets, &ntargets);

    hr_event_stamp(&ev);
    /* The durable queue slots in here: persist, route, then dispatch. */
    int failed = 0;
    for (size_t i = 0; i < ntargets; i++) {
        herald_message m = {.ev = &ev, .address = NULL};
        hr_channel_deliver(targets[i].ch, &m, HERALD_PURPOSE_SEND, 0, &targets[i].out);
        if (targets[i].out.verdict != HERALD_VERDICT_OK)
            failed = 1;
    }

    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < ntargets; i++)
            json_array_append_new(arr, outcome_json(targets[i].ch, &targets[i].out));
        json_t *o = json_pack("{s:s, s:o}", "id", ev.id, "deliveries", arr);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        if (print_id)
            printf("%s\n", ev.id);
        for (size_t i = 0; i < ntargets; i++)
            print_outcome(targets[i].ch, &targets[i].out, "delivered");
    }
    for (size_t i = 0; i < ntargets; i++)
        hr_channel_close(targets[i].ch);
    free(targets);
    for (size_t i = 0; i < nto; i++)
        free(to[i]);
    free(to);
    event_free(&ev);
    ctx_free(c);
    return failed ? EXIT_DELIVERY : 0;
}

/* ---- test ---- */

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
        default: die_usage("unknown option '%s' for test; see herald test --help",
                           argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        die_usage("test needs exactly one CHANNEL or URL; usage: herald test [--send] CHANNEL");
    const char *which = argv[optind];
    ctx_load(c, strstr(which, "://") != NULL);
    char err[1024];
    herald_channel *ch = NULL;
    herald_status st;
    if (strstr(which, "://")) {
        st = hr_channel_open_url(c->loader, "url", which, &ch, err, sizeof err);
    } else {
        hr_channel_conf *cc = hr_config_channel(c->cfg, which);
        if (!cc)
            die_usage("no channel '%s' in %s; run 'herald check' to list channels", which,
                      c->cfg->path ? c->cfg->path : "the configuration");
        st = hr_channel_open(c->loader, cc, &ch, err, sizeof err);
    }
    if (st != HERALD_OK)
        die_usage("%s", err);

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
        json_t *o = outcome_json(ch, &out);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else if (out.verdict == HERALD_VERDICT_OK) {
        printf("channel '%s': ok: %s\n", ch->name, out.detail);
    } else {
        print_outcome(ch, &out, "working");
    }
    int rc = out.verdict == HERALD_VERDICT_OK ? 0 : EXIT_DELIVERY;
    hr_channel_close(ch);
    ctx_free(c);
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
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (opt) {
        case O_JSON: as_json = 1; break;
        case O_CONFIG: c->config_opt = optarg; break;
        case O_HELP: fputs(check_usage, stdout); exit(0);
        default: die_usage("unknown option '%s' for check; see herald check --help",
                           argv[optind - 1]);
        }
    }
    if (optind != argc)
        die_usage("check takes no arguments; use -c FILE to name the configuration");
    ctx_load(c, 0);
    char err[1024];
    json_t *arr = json_array();
    hr_buf names = {0};
    for (size_t i = 0; i < c->cfg->nchannels; i++) {
        herald_channel *ch;
        if (hr_channel_open(c->loader, &c->cfg->channels[i], &ch, err, sizeof err) != HERALD_OK)
            die_usage("%s", err);
        json_array_append_new(arr, json_pack("{s:s, s:s}", "name", ch->name, "plugin",
                                             ch->plugin->name));
        hr_buf_addf(&names, "%s%s (%s)", i ? ", " : "", ch->name, ch->plugin->name);
        hr_channel_close(ch);
    }
    if (as_json) {
        json_t *o = json_pack("{s:s, s:b, s:o}", "config", c->cfg->path, "ok", 1, "channels", arr);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        json_decref(arr);
        printf("%s: ok, %zu channel%s%s%s\n", c->cfg->path, c->cfg->nchannels,
               c->cfg->nchannels == 1 ? "" : "s", c->cfg->nchannels ? ": " : "",
               names.data ? names.data : "");
    }
    hr_buf_free(&names);
    ctx_free(c);
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
        default: die_usage("unknown option '%s' for plugins; see herald plugins --help",
                           argv[optind - 1]);
        }
    }
    ctx_load(c, 1);
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
    ctx_free(c);
    return bad ? EXIT_DELIVERY : 0;
}

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
                die_usage("-c needs a FILE; usage: herald -c FILE COMMAND");
            die_usage("unknown option '%s'; see herald --help", argv[optind - 1]);
        }
    }
    hr_log_set_level(level);
    if (optind >= argc)
        die_usage("no command given; try herald send \"Hello\" or herald --help");
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
    else if (!strcmp(cmd, "help")) {
        fputs(main_usage, stdout);
        rc = 0;
    } else
        die_usage("unknown command '%s'; commands are send, test, check, plugins", cmd);
    hr_secrets_clear();
    return rc;
}
