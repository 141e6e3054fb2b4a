/* test_route.c - routing as a pure function of (config, directory, event, time, state):
 * matchers, union, final, fallback, the precedence table row by row, quiet hours (across
 * midnight and a DST change), mandatory bypass, dedup, rate limit, single addressee, and
 * the config errors `herald check` reports. No network, no store, no clock. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route.h"
#include "tap.h"

static char tmpdir[] = "/tmp/herald-route-XXXXXX";
static hr_loader *loader;

/* Channels every test config has: two addressed (email, gotify), two broadcast. */
static const char channels[] =
    "channels = (\n"
    "  { name = \"ops-hook\"; plugin = \"webhook\"; url = \"http://127.0.0.1:9/h\"; },\n"
    "  { name = \"audit\"; plugin = \"webhook\"; url = \"http://127.0.0.1:9/a\"; },\n"
    "  { name = \"mail\"; plugin = \"email\"; server = \"127.0.0.1\"; tls = \"none\";\n"
    "    from = \"herald@example.org\"; },\n"
    "  { name = \"push\"; plugin = \"gotify\"; url = \"http://127.0.0.1:9\"; }\n"
    ");\n";

static hr_routing *load(const char *text, char *err, size_t errlen)
{
    char *path = hr_asprintf("%s/herald.conf", tmpdir);
    FILE *f = fopen(path, "w");
    fputs(channels, f);
    fputs(text, f);
    fclose(f);
    hr_config *cfg = NULL;
    hr_routing *r = NULL;
    err[0] = '\0';
    if (hr_config_load(path, &cfg, err, errlen) == HERALD_OK)
        hr_routing_load(&r, cfg, loader, NULL, err, errlen);
    /* The router keeps no pointer into the config. */
    hr_config_free(cfg);
    free(path);
    return r;
}

typedef struct memstate {
    char keys[16][600];
    long long at[16];
    int n;
    long long start;
    int used, dropped;
} memstate;

static int mem_seen(void *ctx, const char *route, const char *key, long long window, long long now)
{
    memstate *m = ctx;
    char k[600];
    snprintf(k, sizeof k, "%s|%s", route, key);
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->keys[i], k)) {
            if (m->at[i] > now - window)
                return 1;
            m->at[i] = now;
            return 0;
        }
    snprintf(m->keys[m->n], sizeof m->keys[0], "%s", k);
    m->at[m->n++] = now;
    return 0;
}

static int mem_take(void *ctx, const char *route, int n, long long period, long long now)
{
    memstate *m = ctx;
    (void)route;
    if (now - m->start >= period) {
        m->start = now;
        m->used = 0;
    }
    if (m->used < n) {
        m->used++;
        return 1;
    }
    m->dropped++;
    return 0;
}

static herald_event event(const char *type, herald_severity sev)
{
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = (char *)type;
    ev.title = (char *)"t";
    ev.severity = sev;
    return ev;
}

/* Decisions as sorted text "channel/user:action" joined by spaces. */
static char *summary(const hr_decisions *d)
{
    char **items = hr_calloc(d->n + 1, sizeof *items);
    for (size_t i = 0; i < d->n; i++)
        items[i] = hr_asprintf("%s/%s:%s", d->v[i].channel, d->v[i].user ? d->v[i].user : "-",
                               d->v[i].action == HR_SEND ? "send"
                               : d->v[i].action == HR_DEFER ? "defer" : "skip");
    for (size_t i = 0; i < d->n; i++)
        for (size_t j = i + 1; j < d->n; j++)
            if (strcmp(items[j], items[i]) < 0) {
                char *t = items[i];
                items[i] = items[j];
                items[j] = t;
            }
    hr_buf b = {0};
    for (size_t i = 0; i < d->n; i++) {
        hr_buf_addf(&b, "%s%s", i ? " " : "", items[i]);
        free(items[i]);
    }
    free(items);
    hr_buf_add(&b, "", 1);
    return b.data;
}

static void route_is(hr_routing *r, herald_event *ev, long long now, const hr_route_state *st,
                     const char *want, const char *label)
{
    hr_decisions d;
    hr_route_event(r->router, r->dir, ev, now, st, &d);
    char *got = summary(&d);
    if (!is_str(got, want, label))
        for (size_t i = 0; i < d.n; i++)
            printf("#   %s/%s: %s\n", d.v[i].channel, d.v[i].user ? d.v[i].user : "-",
                   d.v[i].reason);
    free(got);
    hr_decisions_free(&d);
}

static const hr_decision *find(const hr_decisions *d, const char *channel, const char *user)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->v[i].channel, channel) && hr_streq(d->v[i].user, user))
            return &d->v[i];
    return NULL;
}

/* 2026-11-22T12:00:00Z, a Sunday; Berlin is UTC+1. */
#define NOON_UTC 1795348800000LL

static void matchers(void)
{
    char err[1024];
    hr_routing *r = load(
        "routes = (\n"
        "  { name = \"db\"; match = { events = [\"backup.*\", \"db.*\"]; severity = \">=warning\";\n"
        "      fields = [\"host =~ db[0-9]+\", \"env != test\"]; }; to = [\"ops-hook\"]; },\n"
        "  { name = \"src\"; match = { source = \"cron\"; severity = [\"info\", \"critical\"]; };\n"
        "      to = [\"audit\"]; },\n"
        "  { name = \"any\"; match = { events = \"vm.*\"; fields = [\"zone = eu\"]; mode = \"any\"; };\n"
        "      to = [\"audit\"]; }\n"
        ");\n",
        err, sizeof err);
    if (!ok(r != NULL, "matchers config loads"))
        printf("#   %s\n", err);
    if (!r)
        return;
    herald_event ev = event("backup.failed", HERALD_SEVERITY_ERROR);
    hr_field f[3] = {{(char *)"host", (char *)"db12"}, {(char *)"env", (char *)"prod"},
                     {(char *)"zone", (char *)"us"}};
    ev.fields = f;
    ev.nfields = 2;
    route_is(r, &ev, NOON_UTC, NULL, "ops-hook/-:send", "glob + severity + =~ + != all match");
    f[0].value = (char *)"xdb12";
    route_is(r, &ev, NOON_UTC, NULL, "", "=~ is anchored: xdb12 does not match db[0-9]+");
    f[0].value = (char *)"db12";
    f[1].value = (char *)"test";
    route_is(r, &ev, NOON_UTC, NULL, "", "!= excludes env=test");
    ev.nfields = 1; /* env missing: compares as "" so != test holds */
    route_is(r, &ev, NOON_UTC, NULL, "ops-hook/-:send", "a missing field compares as empty");
    ev.severity = HERALD_SEVERITY_NOTICE;
    route_is(r, &ev, NOON_UTC, NULL, "", ">=warning excludes notice");

    herald_event cron = event("job.done", HERALD_SEVERITY_INFO);
    cron.source = (char *)"cron";
    route_is(r, &cron, NOON_UTC, NULL, "audit/-:send", "source + severity list (info)");
    cron.severity = HERALD_SEVERITY_WARNING;
    route_is(r, &cron, NOON_UTC, NULL, "", "severity list excludes warning");

    herald_event vm = event("host.up", HERALD_SEVERITY_DEBUG);
    vm.fields = f + 2;
    vm.nfields = 1;
    f[2].value = (char *)"eu";
    route_is(r, &vm, NOON_UTC, NULL, "audit/-:send", "mode any: the field alone suffices");
    hr_routing_free(r);

    r = load("routes = ( { name = \"inv\"; match = { events = \"noise.*\"; invert = true;\n"
             "  severity = \"<notice\"; }; to = [\"ops-hook\"]; } );\n",
             err, sizeof err);
    if (!ok(r != NULL, "invert config loads"))
        printf("#   %s\n", err);
    if (!r)
        return;
    herald_event noise = event("noise.tick", HERALD_SEVERITY_DEBUG);
    route_is(r, &noise, NOON_UTC, NULL, "", "invert: noise.* below notice is excluded");
    noise.severity = HERALD_SEVERITY_NOTICE;
    route_is(r, &noise, NOON_UTC, NULL, "ops-hook/-:send", "invert: noise.* at notice is not");
    route_is(r, &ev, NOON_UTC, NULL, "ops-hook/-:send", "invert: other events are not");
    hr_routing_free(r);
}

static void union_final_fallback(void)
{
    char err[1024];
    hr_routing *r = load(
        "users = ( { name = \"alice\"; email = \"alice@example.org\"; groups = [\"ops\"]; },\n"
        "          { name = \"bob\"; email = \"bob@example.org\"; gotify_token = \"Tb\"; } );\n"
        "groups = { ops = [\"bob\"]; };\n"
        "routes = (\n"
        "  { name = \"a\"; match = { events = \"backup.*\"; }; to = [\"alice\", \"@ops\", \"audit\"]; },\n"
        "  { name = \"b\"; match = { events = \"backup.failed\"; }; to = [\"@ops\", \"audit\"];\n"
        "      final = true; },\n"
        "  { name = \"c\"; match = { events = \"backup.*\"; }; to = [\"ops-hook\"]; }\n"
        ");\n"
        "fallback = [\"ops-hook\"];\n",
        err, sizeof err);
    if (!ok(r != NULL, "union config loads"))
        printf("#   %s\n", err);
    if (!r)
        return;
    herald_event ev = event("backup.failed", HERALD_SEVERITY_ERROR);
    route_is(r, &ev, NOON_UTC, NULL,
             "audit/-:send mail/alice:send mail/bob:send push/bob:send",
             "union without duplicates; @ops has alice (groups=) and bob; final stops route c");
    ev.type = (char *)"backup.done";
    route_is(r, &ev, NOON_UTC, NULL,
             "audit/-:send mail/alice:send mail/bob:send ops-hook/-:send push/bob:send",
             "not final: route c adds ops-hook");
    ev.type = (char *)"vm.started";
    route_is(r, &ev, NOON_UTC, NULL, "ops-hook/-:send", "nothing matched: the fallback");

    /* Single addressee: only that user, broadcast channels skipped. */
    ev.type = (char *)"backup.failed";
    ev.user = (char *)"bob";
    route_is(r, &ev, NOON_UTC, NULL, "audit/-:skip mail/bob:send push/bob:send",
             "--user bob: only bob, the broadcast channel is skipped");
    ev.user = (char *)"carol";
    hr_decisions d;
    hr_route_event(r->router, r->dir, &ev, NOON_UTC, NULL, &d);
    int said = 0;
    for (size_t i = 0; i < d.nnotes; i++)
        said |= strstr(d.notes[i], "carol, who is not a known user") != NULL;
    ok(said, "an unknown addressee is named in the trail");
    hr_decisions_free(&d);

    /* The address comes from the user's profile. */
    ev.user = NULL;
    hr_route_event(r->router, r->dir, &ev, NOON_UTC, NULL, &d);
    const hr_decision *x = find(&d, "push", "bob");
    is_str(x ? x->address : NULL, "Tb", "bob's gotify_token is the push address");
    x = find(&d, "mail", "alice");
    is_str(x ? x->address : NULL, "alice@example.org", "alice's email is the mail address");
    char *json = hr_decisions_json(&d);
    like(json, "\"route\":\"a\"", "trail JSON names the deciding route");
    like(json, "a (", "trail notes name matched routes with file:line");
    free(json);
    hr_decisions_free(&d);
    hr_routing_free(r);
}

/* The precedence table of herald-routing(7), row by row. */
static void precedence(void)
{
    char err[1024];
    hr_routing *r = load(
        "users = (\n"
        "  { name = \"u\"; email = \"u@example.org\"; gotify_token = \"T\";\n"
        "    min_severity = \"notice\"; channels = { push = false; };\n"
        "    rules = (\n"
        "      { events = \"backup.*\"; channel = \"mail\"; on = false; },\n"
        "      { events = \"backup.failed\"; channel = \"mail\"; on = true; },\n"
        "      { events = \"*.failed\"; channel = \"*\"; on = true; min_severity = \"error\"; },\n"
        "      { events = \"db.*\"; channel = \"mail\"; on = true; },\n"
        "      { events = \"*.down\"; channel = \"mail\"; on = false; },\n"
        "      { events = \"db.*\"; channel = \"mail\"; on = false; }\n"
        "    ); } );\n"
        "routes = (\n"
        "  { name = \"sec\"; match = { events = \"security.*\"; }; to = [\"u\"]; mandatory = true; },\n"
        "  { name = \"all\"; match = { events = [\"backup.*\", \"db.*\", \"vm.*\", \"job.*\"]; };\n"
        "      to = [\"u\"]; },\n"
        "  { name = \"mailonly\"; match = { events = \"job.*\"; }; to = [\"u\"];\n"
        "      allow_channels = [\"mail\"]; }\n"
        ");\n",
        err, sizeof err);
    if (!ok(r != NULL, "precedence config loads"))
        printf("#   %s\n", err);
    if (!r)
        return;
    herald_event ev = event("security.login", HERALD_SEVERITY_DEBUG);
    route_is(r, &ev, NOON_UTC, NULL, "mail/u:send push/u:send",
             "row 1: mandatory beats min_severity and the switched-off channel");
    ev = event("backup.failed", HERALD_SEVERITY_WARNING);
    route_is(r, &ev, NOON_UTC, NULL, "mail/u:send push/u:skip",
             "row 2: the most specific rule (backup.failed on mail, 0 wildcards) wins on mail; "
             "*.failed (min error) decides push");
    ev = event("backup.done", HERALD_SEVERITY_WARNING);
    route_is(r, &ev, NOON_UTC, NULL, "mail/u:skip push/u:skip",
             "row 2: backup.* off on mail; push falls to the default (off)");
    ev = event("db.down", HERALD_SEVERITY_WARNING);
    route_is(r, &ev, NOON_UTC, NULL, "mail/u:skip push/u:skip",
             "row 2, tie (1 wildcard each): the later rule wins (db.* off)");
    ev = event("vm.started", HERALD_SEVERITY_WARNING);
    route_is(r, &ev, NOON_UTC, NULL, "mail/u:send push/u:skip",
             "row 3: no rule: the user default (push off, mail on)");
    ev = event("vm.started", HERALD_SEVERITY_INFO);
    route_is(r, &ev, NOON_UTC, NULL, "mail/u:skip push/u:skip",
             "row 3: below the user's min_severity (notice)");
    ev = event("job.done", HERALD_SEVERITY_WARNING);
    route_is(r, &ev, NOON_UTC, NULL, "mail/u:send push/u:skip",
             "a narrower route (allow_channels mail) adds nothing; union with route all");
    hr_routing_free(r);

    /* Row 4: no preferences at all -> the route's default. And never widened. */
    r = load("users = ( { name = \"v\"; email = \"v@example.org\"; gotify_token = \"T\";\n"
             "  rules = ( { events = \"*\"; channel = \"push\"; on = true; } ); } );\n"
             "routes = ( { match = { events = \"*\"; }; to = [\"v\"];\n"
             "  allow_channels = [\"mail\"]; } );\n",
             err, sizeof err);
    if (!ok(r != NULL, "row 4 config loads"))
        printf("#   %s\n", err);
    if (r) {
        ev = event("anything", HERALD_SEVERITY_DEBUG);
        route_is(r, &ev, NOON_UTC, NULL, "mail/v:send",
                 "row 4: the route's default sends; the user's push rule cannot widen the route");
        hr_routing_free(r);
    }
}

static void quiet_hours(void)
{
    char err[1024];
    hr_routing *r = load(
        "users = (\n"
        "  { name = \"q\"; email = \"q@example.org\";\n"
        "    quiet = { hours = \"22:00-07:00\"; tz = \"Europe/Berlin\"; action = \"defer\"; }; },\n"
        "  { name = \"d\"; email = \"d@example.org\";\n"
        "    quiet = { hours = \"22:00-07:00\"; tz = \"Europe/Berlin\"; action = \"drop\"; }; } );\n"
        "routes = ( { name = \"sec\"; match = { events = \"security.*\"; }; to = [\"q\", \"d\"];\n"
        "             mandatory = true; final = true; },\n"
        "           { match = { events = \"*\"; }; to = [\"q\", \"d\"]; } );\n",
        err, sizeof err);
    if (!ok(r != NULL, "quiet hours config loads"))
        printf("#   %s\n", err);
    if (!r)
        return;
    herald_event ev = event("backup.failed", HERALD_SEVERITY_ERROR);
    route_is(r, &ev, NOON_UTC, NULL, "mail/d:send mail/q:send", "13:00 Berlin: not quiet");
    /* 2026-11-22 23:30 Berlin = 22:30Z: quiet; it ends at 07:00 Berlin = 06:00Z on the 23rd. */
    long long late = NOON_UTC + 10 * 3600000LL + 30 * 60000LL;
    hr_decisions d;
    hr_route_event(r->router, r->dir, &ev, late, NULL, &d);
    const hr_decision *x = find(&d, "mail", "q");
    ok(x && x->action == HR_DEFER, "23:30 Berlin: defer");
    is_int(x ? x->not_before : 0, 1795413600000LL, "held until 07:00 Berlin next morning (06:00Z)");
    x = find(&d, "mail", "d");
    ok(x && x->action == HR_SKIP && strstr(x->reason, "quiet hours"), "action drop: skipped");
    hr_decisions_free(&d);
    /* 06:59 Berlin (05:59Z) on the 23rd is still quiet; 07:00 is not. */
    route_is(r, &ev, 1795413540000LL, NULL, "mail/d:skip mail/q:defer", "06:59 Berlin: quiet");
    route_is(r, &ev, 1795413600000LL, NULL, "mail/d:send mail/q:send", "07:00 Berlin: over");
    /* Across the spring-forward night: 2026-03-28 23:00 CET (22:00Z) -> ends 07:00 CEST
     * on the 29th = 05:00Z (1774760400). */
    hr_route_event(r->router, r->dir, &ev, 1774735200000LL, NULL, &d);
    x = find(&d, "mail", "q");
    is_int(x ? x->not_before : 0, 1774760400000LL, "across the DST change: ends 07:00 CEST");
    hr_decisions_free(&d);
    /* Mandatory bypasses quiet hours. */
    ev.type = (char *)"security.breach";
    route_is(r, &ev, late, NULL, "mail/d:send mail/q:send", "mandatory bypasses quiet hours");
    hr_routing_free(r);
}

static void dedup_and_rate(void)
{
    char err[1024];
    hr_routing *r = load(
        "routes = ( { name = \"d\"; match = { events = \"disk.*\"; }; to = [\"audit\"];\n"
        "             dedup_window = \"10m\"; },\n"
        "           { name = \"r\"; match = { events = \"job.*\"; }; to = [\"ops-hook\"];\n"
        "             rate_limit = \"2/1m\"; } );\n",
        err, sizeof err);
    if (!ok(r != NULL, "dedup config loads"))
        printf("#   %s\n", err);
    if (!r)
        return;
    memstate m;
    memset(&m, 0, sizeof m);
    hr_route_state st = {&m, mem_seen, mem_take};
    herald_event ev = event("disk.full", HERALD_SEVERITY_ERROR);
    route_is(r, &ev, NOON_UTC, &st, "audit/-:send", "dedup: first one sent");
    route_is(r, &ev, NOON_UTC + 60000, &st, "", "dedup: the same within 10m is not");
    ev.title = (char *)"other";
    route_is(r, &ev, NOON_UTC + 60000, &st, "audit/-:send", "dedup: another title is");
    ev.title = (char *)"t";
    route_is(r, &ev, NOON_UTC + 11 * 60000, &st, "audit/-:send", "dedup: after the window again");
    herald_event job = event("job.done", HERALD_SEVERITY_INFO);
    route_is(r, &job, NOON_UTC, &st, "ops-hook/-:send", "rate: 1 of 2");
    route_is(r, &job, NOON_UTC + 1, &st, "ops-hook/-:send", "rate: 2 of 2");
    route_is(r, &job, NOON_UTC + 2, &st, "", "rate: the third in the minute is dropped");
    is_int(m.dropped, 1, "rate: the drop is counted");
    route_is(r, &job, NOON_UTC + 61000, &st, "ops-hook/-:send", "rate: next minute sends");
    hr_routing_free(r);
}

static void config_errors(void)
{
    char err[1024];
    struct {
        const char *text, *want, *label;
    } cases[] = {
        {"routes = ( { to = [\"nowhere\"]; } );\n", "'nowhere' is no channel, user or @group",
         "unknown target"},
        {"routes = ( { to = [\"@ghosts\"]; } );\n", "unknown group '@ghosts'", "unknown group"},
        {"routes = ( { match = { fields = [\"host =~ (\"]; }; to = [\"audit\"]; } );\n",
         "bad regular expression", "bad regex"},
        {"users = ( { name = \"z\"; email = \"z@x.org\"; quiet = { hours = \"22:00-07:00\";\n"
         "  tz = \"Europe/Berln\"; }; } );\n",
         "Europe/Berln", "unknown time zone"},
        {"users = ( { name = \"z\"; quiet = { hours = \"25:00-07:00\"; }; } );\n", "25:00-07:00",
         "bad quiet hours"},
        {"users = ( { name = \"audit\"; email = \"a@x.org\"; } );\n"
         "routes = ( { to = [\"audit\"]; } );\n",
         "both a channel and a user", "channel/user name clash"},
        {"routes = ( { match = { severity = \">=loud\"; }; to = [\"audit\"]; } );\n",
         "severity must be like", "bad severity"},
        {"routes = ( { to = [\"audit\"]; allow_channels = [\"audit\"]; } );\n",
         "cannot reach users", "allow_channels of a broadcast channel"},
        {"routes = ( { match = { event = \"x\"; }; to = [\"audit\"]; } );\n",
         "unknown matcher 'event'", "typo in a matcher"},
        {"groups = { ops = [\"nobody\"]; };\n", "unknown user 'nobody'", "group with unknown user"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hr_routing *r = load(cases[i].text, err, sizeof err);
        ok(r == NULL, cases[i].label);
        like(err, cases[i].want, "  ... and the error says so");
        like(err, "herald.conf:", "  ... with file:line");
        hr_routing_free(r);
    }
    hr_routing *r = load("routes = ( { name = \"all\"; to = [\"audit\"]; final = true; },\n"
                         "           { name = \"never\"; match = { events = \"x\"; };\n"
                         "             to = [\"audit\"]; } );\n",
                         err, sizeof err);
    char *warn = NULL;
    if (r)
        hr_router_lint(r->router, &warn);
    like(warn, "never can never match", "a route after a final catch-all is warned about");
    free(warn);
    hr_routing_free(r);
}

/* Users are found by name through an index grown as they are declared. */
static void many_users(void)
{
    char err[1024];
    hr_buf b = {0};
    hr_buf_adds(&b, "users = (\n");
    for (int i = 0; i < 300; i++)
        hr_buf_addf(&b, "  { name = \"u%03d\"; email = \"u%03d@x.org\"; groups = [\"all\"]; }%s\n",
                    i, i, i < 299 ? "," : "");
    hr_buf_adds(&b, ");\n");
    hr_routing *r = load(b.data, err, sizeof err);
    if (ok(r != NULL, "300 users load")) {
        int found = 1;
        char name[16];
        for (int i = 0; i < 300; i++) {
            snprintf(name, sizeof name, "u%03d", i);
            hr_user *u = hr_directory_user(r->dir, name);
            found &= u && !strcmp(u->name, name) && u == &r->dir->users[i];
        }
        ok(found, "each of the 300 is found by name, as declared");
        ok(!hr_directory_user(r->dir, "u300") && !hr_directory_user(r->dir, "") &&
               !hr_directory_user(r->dir, NULL),
           "names nobody declared are not");
        hr_group *g = hr_directory_group(r->dir, "all");
        is_int(g ? (int)g->n : -1, 300, "@all has the 300");
    }
    hr_routing_free(r);
    /* The same user twice, far apart. */
    hr_buf_reset(&b);
    hr_buf_adds(&b, "users = (\n");
    for (int i = 0; i < 100; i++)
        hr_buf_addf(&b, "  { name = \"u%03d\"; email = \"u@x.org\"; },\n", i);
    hr_buf_adds(&b, "  { name = \"u007\"; email = \"again@x.org\"; }\n);\n");
    r = load(b.data, err, sizeof err);
    ok(r == NULL, "a user declared twice is refused");
    like(err, "user 'u007' is declared twice", "  ... naming the user");
    hr_routing_free(r);
    hr_buf_free(&b);
}

int main(void)
{
    if (!getenv("HERALD_PLUGIN_PATH")) {
        printf("1..0 # SKIP HERALD_PLUGIN_PATH not set (run via make check)\n");
        return 0;
    }
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    hr_module_init();
    loader = hr_loader_new(NULL);
    matchers();
    union_final_fallback();
    precedence();
    quiet_hours();
    dedup_and_rate();
    config_errors();
    many_users();
    hr_loader_free(loader);
    char *conf = hr_asprintf("%s/herald.conf", tmpdir);
    unlink(conf);
    free(conf);
    rmdir(tmpdir);
    return done_testing();
}
