/* herald_user.c - `herald user`, `herald prefs` and `herald group`: people, their addresses
 * and preferences, managed at run time in the store (on top of what the config declares;
 * see route.h for how the two combine). heraldd picks changes up within a second. Like the
 * config's, they are the default tenant's; other tenants manage theirs over the HTTP API. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "route.h"
#include "secretbox.h"
#include "store.h"
#include "userprefs.h"

static const char user_usage[] =
    "Usage: herald user add NAME [KEY=VALUE]...\n"
    "       herald user set NAME KEY=VALUE...      (KEY= removes a run-time value)\n"
    "       herald user list [--json]\n"
    "       herald user show NAME [--json]\n"
    "       herald user remove NAME\n"
    "\n"
    "KEYs are addresses named as the channels use them: email, gotify_token,\n"
    "ntfy_topic, or a channel's own address = \"...\" setting.\n";

static const char prefs_usage[] =
    "Usage: herald prefs show NAME [--json]\n"
    "       herald prefs set NAME EVENT_GLOB CHANNEL|* on|off [min_severity=SEV]\n"
    "       herald prefs set NAME default min_severity=SEV|none\n"
    "       herald prefs set NAME default CHANNEL on|off\n"
    "       herald prefs unset NAME EVENT_GLOB CHANNEL|*\n"
    "       herald prefs quiet NAME HH:MM-HH:MM [--tz ZONE] [--action defer|drop]\n"
    "       herald prefs quiet NAME off\n"
    "\n"
    "Precedence: a mandatory route, then the user's most specific matching rule\n"
    "(fewest wildcards; on a tie the later), then the user's defaults, then the\n"
    "route. Quiet hours hold (defer) or drop what is sent, except mandatory routes.\n";

static const char group_usage[] =
    "Usage: herald group add GROUP USER...\n"
    "       herald group remove GROUP USER...\n"
    "       herald group list [--json]\n";

typedef struct session {
    cli_ctx *c;
    hr_store *store;
    hr_routing *routing; /* config + store, for checks and for showing */
} session;

static void open_session(session *ss, cli_ctx *c)
{
    char err[1024];
    ss->c = c;
    ss->store = cli_open_store(c);
    if (hr_routing_load(&ss->routing, c->cfg, c->loader, ss->store, err, sizeof err) != HERALD_OK)
        cli_die("%s", err);
}

static void close_session(session *ss)
{
    hr_routing_free(ss->routing);
    hr_store_close(ss->store);
    cli_free(ss->c);
}

static hr_user *need_user(session *ss, const char *name)
{
    hr_user *u = hr_directory_user(ss->routing->dir, name);
    if (!u)
        cli_die("no user '%s'; herald user add %s creates one, herald user list lists them", name,
                name);
    return u;
}

static int valid_name(const char *s)
{
    return hr_user_name_ok(s);
}

static int is_channel(session *ss, const char *name)
{
    return hr_config_channel(ss->c->cfg, name) != NULL;
}

static void put(session *ss, const char *user, const char *kind, const char *key,
                const char *value)
{
    if (hr_store_pref_put(ss->store, NULL, user, kind, key, value) != HERALD_OK)
        cli_die("cannot store it: %s", hr_store_error(ss->store));
}

/* KEY=VALUE address assignments; an empty VALUE removes the run-time value. */
static void set_addresses(session *ss, const char *user, int argc, char **argv)
{
    char err[1024];
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i])
            cli_die("'%s' must be KEY=VALUE, e.g. email=alice@example.org", argv[i]);
        char *key = hr_strndup(argv[i], (size_t)(eq - argv[i]));
        if (hr_user_address_check(key, eq + 1, err, sizeof err) != HERALD_OK)
            cli_die("%s", err);
        if (hr_user_address_put(ss->store, ss->c->cfg, NULL, user, key, eq + 1, err,
                                sizeof err) != HERALD_OK)
            cli_die("%s", err);
        free(key);
    }
}

static json_t *user_json(const hr_user *u)
{
    return hr_user_json(u);
}

static void print_json(json_t *o)
{
    json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
}

/* Addresses are personal data shown to whoever can read the store; the ones
 * that are credentials (tokens) are not shown at all. */
static void print_user(const hr_user *u, const hr_directory *d)
{
    printf("%s (%s)\n", u->name, u->origin);
    for (size_t i = 0; i < u->naddr; i++)
        printf("  %s = %s\n", u->addr[i].name,
               hr_address_is_secret(u->addr[i].name) ? "***" : u->addr[i].value);
    hr_buf groups = {0};
    for (size_t g = 0; g < d->ngroups; g++)
        for (size_t k = 0; k < d->groups[g].n; k++)
            if (&d->users[d->groups[g].members[k]] == u)
                hr_buf_addf(&groups, "%s@%s", groups.len ? ", " : "", d->groups[g].name);
    if (groups.len)
        printf("  groups: %.*s\n", (int)groups.len, groups.data);
    hr_buf_free(&groups);
}

static void print_prefs(const hr_user *u)
{
    printf("%s:\n  default: %s", u->name,
           u->min_sev >= 0 ? hr_severity_name((herald_severity)u->min_sev) : "any severity");
    for (size_t i = 0; i < u->nchans; i++)
        printf(", %s %s", u->chans[i].channel, u->chans[i].on ? "on" : "off");
    putchar('\n');
    for (size_t i = 0; i < u->nrules; i++) {
        const hr_pref_rule *r = &u->rules[i];
        printf("  rule: %s on %s: %s", r->events, r->channel, r->on ? "on" : "off");
        if (r->min_sev >= 0)
            printf(" from %s", hr_severity_name((herald_severity)r->min_sev));
        printf("  (%s)\n", r->origin);
    }
    if (u->quiet != HR_QUIET_NONE)
        printf("  quiet: %02d:%02d-%02d:%02d %s, %s\n", u->quiet_start / 60, u->quiet_start % 60,
               u->quiet_end / 60, u->quiet_end % 60, u->tz_name,
               u->quiet == HR_QUIET_DROP ? "drop" : "defer");
}

static int has_json(int *argc, char **argv)
{
    int found = 0, n = 0;
    for (int i = 0; i < *argc; i++) {
        if (!strcmp(argv[i], "--json"))
            found = 1;
        else
            argv[n++] = argv[i];
    }
    *argc = n;
    return found;
}

int cli_user(cli_ctx *c, int argc, char **argv)
{
    int as_json = has_json(&argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(user_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    session ss;
    if (!strcmp(sub, "list")) {
        open_session(&ss, c);
        const hr_directory *d = ss.routing->dir;
        json_t *arr = json_array();
        for (size_t i = 0; i < d->nusers; i++) {
            if (as_json)
                json_array_append_new(arr, user_json(&d->users[i]));
            else
                printf("%-20s %s\n", d->users[i].name, d->users[i].origin);
        }
        if (as_json)
            print_json(arr);
        else
            json_decref(arr);
        close_session(&ss);
        return 0;
    }
    if (argc < 3)
        cli_die("herald user %s needs a NAME; see herald user --help", sub);
    const char *name = argv[2];
    if (!strcmp(sub, "add")) {
        if (!valid_name(name))
            cli_die("user name '%s': use letters, digits, '-', '_' or '.' (at most 64)", name);
        open_session(&ss, c);
        if (is_channel(&ss, name))
            cli_die("'%s' is a channel's name; routes could not tell them apart, pick another",
                    name);
        hr_user *u = hr_directory_user(ss.routing->dir, name);
        if (u)
            cli_die("user '%s' exists already (%s); herald user set %s KEY=VALUE changes it",
                    name, u->origin, name);
        int existed;
        if (hr_store_user_add(ss.store, NULL, name, &existed) != HERALD_OK)
            cli_die("cannot add the user: %s", hr_store_error(ss.store));
        set_addresses(&ss, name, argc - 3, argv + 3);
        printf("user %s added\n", name);
        close_session(&ss);
        return 0;
    }
    open_session(&ss, c);
    hr_user *u = need_user(&ss, name);
    int rc = 0;
    if (!strcmp(sub, "set")) {
        if (argc < 4)
            cli_die("herald user set NAME KEY=VALUE...; e.g. email=alice@example.org");
        set_addresses(&ss, name, argc - 3, argv + 3);
        printf("user %s updated\n", name);
    } else if (!strcmp(sub, "show")) {
        if (as_json)
            print_json(user_json(u));
        else
            print_user(u, ss.routing->dir);
    } else if (!strcmp(sub, "remove")) {
        if (strcmp(u->origin, "run time") != 0)
            cli_die("user '%s' is declared in the configuration (%s); remove it there", name,
                    u->origin);
        const hr_router *r = ss.routing->router;
        for (size_t i = 0; i < r->nroutes; i++)
            for (size_t k = 0; k < r->routes[i].ntargets; k++)
                if (r->routes[i].targets[k].kind == HR_T_USER &&
                    !strcmp(r->routes[i].targets[k].name, name))
                    cli_die("route %s (%s) names user '%s'; change the route first",
                            r->routes[i].name, r->routes[i].origin, name);
        int found;
        if (hr_store_user_remove(ss.store, NULL, name, &found) != HERALD_OK)
            cli_die("cannot remove the user: %s", hr_store_error(ss.store));
        printf("user %s removed, with the preferences and groups set for it at run time\n", name);
    } else {
        cli_die("unknown 'herald user %s'; use add, set, list, show or remove", sub);
    }
    close_session(&ss);
    return rc;
}

static void check_or_die(herald_status st, const char *err)
{
    if (st != HERALD_OK)
        cli_die("%s", err);
}

static void prefs_set(session *ss, const char *name, int argc, char **argv)
{
    /* argv: what follows NAME */
    char err[1024];
    if (argc >= 1 && !strcmp(argv[0], "default")) {
        if (argc == 2 && !strncmp(argv[1], "min_severity=", 13)) {
            const char *v = argv[1] + 13;
            check_or_die(hr_pref_severity_check(v, 1, err, sizeof err), err);
            put(ss, name, "default", "min_severity", v); /* "none": any, over the config's */
            printf("%s: default minimum severity %s\n", name, v);
            return;
        }
        if (argc == 3 && (!strcmp(argv[2], "on") || !strcmp(argv[2], "off"))) {
            if (hr_pref_channel_check(ss->c->cfg, argv[1], 0, err, sizeof err) != HERALD_OK)
                cli_die("%s; herald check lists them", err);
            put(ss, name, "channel", argv[1], argv[2]);
            printf("%s: channel %s %s by default\n", name, argv[1], argv[2]);
            return;
        }
        cli_die("use herald prefs set NAME default min_severity=SEV, or default CHANNEL on|off");
    }
    if (argc < 3 || argc > 4 || (strcmp(argv[2], "on") && strcmp(argv[2], "off")))
        cli_die("use herald prefs set NAME EVENT_GLOB CHANNEL|* on|off [min_severity=SEV]");
    const char *glob = argv[0], *channel = argv[1], *min_sev = NULL;
    if (argc == 4) {
        if (strncmp(argv[3], "min_severity=", 13))
            cli_die("use herald prefs set NAME EVENT_GLOB CHANNEL|* on min_severity=SEV");
        min_sev = argv[3] + 13;
    }
    char value[32], *key;
    if (hr_pref_rule_make(ss->c->cfg, glob, channel, !strcmp(argv[2], "on"), min_sev, &key, value,
                          err, sizeof err) != HERALD_OK)
        cli_die("%s", err);
    put(ss, name, "rule", key, value);
    free(key);
    printf("%s: %s on %s: %s\n", name, glob, channel, value);
}

int cli_prefs(cli_ctx *c, int argc, char **argv)
{
    int as_json = has_json(&argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(prefs_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    if (argc < 3)
        cli_die("herald prefs %s needs a user NAME; see herald prefs --help", sub);
    const char *name = argv[2];
    session ss;
    open_session(&ss, c);
    hr_user *u = need_user(&ss, name);
    if (!strcmp(sub, "show")) {
        if (as_json)
            print_json(user_json(u));
        else
            print_prefs(u);
    } else if (!strcmp(sub, "set")) {
        prefs_set(&ss, name, argc - 3, argv + 3);
    } else if (!strcmp(sub, "unset")) {
        if (argc != 5)
            cli_die("use herald prefs unset NAME EVENT_GLOB CHANNEL|*");
        char *key = hr_asprintf("%s\x1f%s", argv[3], argv[4]);
        put(&ss, name, "rule", key, NULL);
        free(key);
        printf("%s: run-time rule %s on %s removed\n", name, argv[3], argv[4]);
    } else if (!strcmp(sub, "quiet")) {
        if (argc == 4 && !strcmp(argv[3], "off")) {
            put(&ss, name, "quiet", "quiet", "off");
            printf("%s: no quiet hours\n", name);
        } else {
            if (argc < 4)
                cli_die("use herald prefs quiet NAME HH:MM-HH:MM [--tz ZONE] [--action defer|drop]");
            const char *tz = "UTC", *action = "defer";
            for (int i = 4; i < argc; i++) {
                if (!strcmp(argv[i], "--tz") && i + 1 < argc)
                    tz = argv[++i];
                else if (!strcmp(argv[i], "--action") && i + 1 < argc)
                    action = argv[++i];
                else
                    cli_die("unknown option '%s' for prefs quiet; use --tz ZONE, --action "
                            "defer|drop", argv[i]);
            }
            char *v, why[512];
            if (hr_pref_quiet_make(argv[3], tz, action, &v, why, sizeof why) != HERALD_OK)
                cli_die("%s", why);
            put(&ss, name, "quiet", "quiet", v);
            printf("%s: quiet hours %s\n", name, v);
            free(v);
        }
    } else {
        cli_die("unknown 'herald prefs %s'; use show, set, unset or quiet", sub);
    }
    close_session(&ss);
    return 0;
}

int cli_group(cli_ctx *c, int argc, char **argv)
{
    int as_json = has_json(&argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(group_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    session ss;
    if (!strcmp(sub, "list")) {
        open_session(&ss, c);
        const hr_directory *d = ss.routing->dir;
        json_t *o = json_object();
        for (size_t g = 0; g < d->ngroups; g++) {
            json_t *m = json_array();
            if (!as_json)
                printf("@%s:", d->groups[g].name);
            for (size_t k = 0; k < d->groups[g].n; k++) {
                const char *un = d->users[d->groups[g].members[k]].name;
                json_array_append_new(m, json_string(un));
                if (!as_json)
                    printf(" %s", un);
            }
            if (!as_json)
                putchar('\n');
            json_object_set_new(o, d->groups[g].name, m);
        }
        if (as_json)
            print_json(o);
        else
            json_decref(o);
        close_session(&ss);
        return 0;
    }
    if ((strcmp(sub, "add") && strcmp(sub, "remove")) || argc < 4)
        cli_die("use herald group add|remove GROUP USER..., or herald group list");
    const char *group = argv[2][0] == '@' ? argv[2] + 1 : argv[2];
    if (!valid_name(group))
        cli_die("group name '%s': use letters, digits, '-', '_' or '.'", group);
    open_session(&ss, c);
    int add = !strcmp(sub, "add");
    for (int i = 3; i < argc; i++) {
        need_user(&ss, argv[i]);
        int changed;
        if (hr_store_group_member(ss.store, NULL, group, argv[i], add, &changed) != HERALD_OK)
            cli_die("cannot change the group: %s", hr_store_error(ss.store));
        if (!add && !changed)
            fprintf(stderr, "herald: %s is not a run-time member of @%s (members declared in "
                    "the configuration stay members)\n", argv[i], group);
    }
    printf("@%s: %s %d user%s\n", group, add ? "added" : "removed", argc - 3,
           argc - 3 == 1 ? "" : "s");
    close_session(&ss);
    return 0;
}
