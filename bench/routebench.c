/* routebench.c - routing plus preference evaluation per event: hr_route_event() over a
 * stream of varied events, with a generated config of ROUTES routes and USERS users.
 *
 * Usage: routebench [--quick] [--reps N] [--events N] [--dump] [ROUTES:USERS ...]
 * Without ROUTES:USERS: the sweep routes 10, 50, 200, 800 at 1,000 users and users 100,
 * 1,000, 10,000 at 200 routes. Prints a markdown section on stdout; progress on stderr.
 * --dump prints every event's decisions as JSON instead, to compare two builds.
 * Needs HERALD_PLUGIN_PATH (or installed plugins) so email and gotify count as addressed.
 *
 * The config: channels ops-hook and audit (webhook, broadcast), mail (email) and push
 * (gotify), both addressed. Every user has an email address, every other one a
 * gotify_token; about a third have rules, a quarter a min_severity, a tenth push switched
 * off, a fifth quiet hours (Europe/Berlin, America/New_York, Asia/Tokyo; defer or drop);
 * users sit in groups of 50, and group "everyone" holds them all. Routes: a mandatory
 * security route to one group (final), a cross-cutting "*.failed >= error" route to a
 * group, a final noise filter, an "announce.*" route to @everyone (no event of the stream
 * matches it; it is timed alone), a mode = "any" route, then routes per area
 * of the event vocabulary (ROUTES/5 areas, so every area has about five routes) mixing
 * event globs, severity comparisons, field matchers (=, !=, =~), broadcast channels,
 * @groups and users, allow_channels, mandatory, final, dedup_window and rate_limit; the
 * last route is a catch-all to audit that is not final. Events: an area and an action,
 * or an unknown type, or security.*, with host/env/region fields, a source now and then,
 * and the clock advancing 3 s per event from 2026-11-22 12:00 UTC so that quiet hours
 * begin and end in every zone during a run.
 *
 * Timed: hr_route_event() plus hr_decisions_free(), per event (CLOCK_MONOTONIC around
 * each call; its cost, tens of ns, is included). "state off" passes state = NULL (no
 * dedup, no rate limit); "state on" passes an in-memory hash table for dedup_window and
 * rate_limit, emptied before each run. Nothing here is a pass/fail test. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "route.h"
#include "sorted.h"

#define NOON_UTC 1795348800000LL /* 2026-11-22T12:00:00Z */
#define STEP_MS 3000LL
#define GROUP_SIZE 50

/* ---- deterministic randomness ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned pick(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)((rng >> 11) % n);
}

static int chance(unsigned percent)
{
    return pick(100) < percent;
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* ---- the event vocabulary ---- */

static const char *const bases[] = {"backup", "db",   "vm",      "disk",  "job",  "net",   "auth",
                                    "deploy", "cert", "queue",   "cache", "dns",  "lb",    "smtp",
                                    "cron",   "build", "storage", "k8s",  "api",  "billing"};
#define NBASES (sizeof bases / sizeof *bases)
static const char *const actions[] = {"failed", "done",    "started", "down", "up",
                                      "degraded", "expired", "full",    "retry", "slow"};
#define NACTIONS (sizeof actions / sizeof *actions)

static void area_name(char *buf, size_t len, unsigned k)
{
    if (k < NBASES)
        snprintf(buf, len, "%s", bases[k]);
    else
        snprintf(buf, len, "%s%u", bases[k % NBASES], k / (unsigned)NBASES);
}

/* ---- the config ---- */

static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Asia/Tokyo"};
static const char *const quiet_hours[] = {"22:00-07:00", "23:30-06:30", "20:00-08:00"};

static void write_users(FILE *f, unsigned nusers, unsigned nareas)
{
    char a[32];
    fputs("users = (\n", f);
    for (unsigned i = 0; i < nusers; i++) {
        fprintf(f, "  { name = \"u%05u\"; email = \"u%05u@example.org\";", i, i);
        if (i % 2)
            fprintf(f, " gotify_token = \"Tok%05u\";", i);
        if (chance(25))
            fprintf(f, " min_severity = \"%s\";", chance(50) ? "notice" : "warning");
        if (chance(10))
            fputs(" channels = { push = false; };", f);
        if (chance(33)) {
            unsigned k = 1 + pick(4);
            fputs("\n    rules = (", f);
            for (unsigned j = 0; j < k; j++) {
                area_name(a, sizeof a, pick(nareas));
                switch (pick(6)) {
                case 0:
                    fprintf(f, " { events = \"%s.*\"; channel = \"mail\"; on = false; }", a);
                    break;
                case 1:
                    fputs(" { events = \"*.failed\"; channel = \"*\"; on = true; "
                          "min_severity = \"error\"; }", f);
                    break;
                case 2:
                    fprintf(f, " { events = \"%s.*\"; channel = \"push\"; on = true; }", a);
                    break;
                case 3:
                    fputs(" { events = \"*.done\"; channel = \"*\"; on = false; }", f);
                    break;
                case 4:
                    fprintf(f, " { events = \"%s.%s\"; channel = \"mail\"; on = false; }", a,
                            actions[pick(NACTIONS)]);
                    break;
                default:
                    fprintf(f, " { events = \"%s.*\"; min_severity = \"warning\"; }", a);
                }
                fputs(j + 1 < k ? "," : " );", f);
            }
        }
        if (chance(20))
            fprintf(f, "\n    quiet = { hours = \"%s\"; tz = \"%s\"; action = \"%s\"; };",
                    quiet_hours[pick(3)], zones[pick(3)], chance(75) ? "defer" : "drop");
        fputs(i + 1 < nusers ? " },\n" : " }\n", f);
    }
    fputs(");\ngroups = {\n", f);
    unsigned ngroups = (nusers + GROUP_SIZE - 1) / GROUP_SIZE;
    for (unsigned g = 0; g < ngroups; g++) {
        fprintf(f, "  g%03u = [", g);
        for (unsigned i = g * GROUP_SIZE; i < nusers && i < (g + 1) * GROUP_SIZE; i++)
            fprintf(f, "%s\"u%05u\"", i == g * GROUP_SIZE ? "" : ", ", i);
        fputs("];\n", f);
    }
    fputs("  everyone = [", f);
    for (unsigned i = 0; i < nusers; i++)
        fprintf(f, "%s\"u%05u\"", i ? ", " : "", i);
    fputs("];\n};\n", f);
}

static void write_routes(FILE *f, unsigned nroutes, unsigned nusers, unsigned nareas)
{
    unsigned ngroups = (nusers + GROUP_SIZE - 1) / GROUP_SIZE;
    char a[32], b[32];
    fputs("routes = (\n"
          "  { name = \"security\"; match = { events = \"security.*\"; };\n"
          "    to = [\"@g000\", \"audit\"]; mandatory = true; final = true; },\n"
          "  { name = \"failures\"; match = { events = \"*.failed\"; severity = \">=error\"; };\n"
          "    to = [\"ops-hook\", \"@g001\"]; dedup_window = \"10m\"; },\n"
          "  { name = \"noise\"; match = { events = [\"*.retry\", \"*.slow\"];\n"
          "    severity = \"<warning\"; }; to = [\"audit\"]; final = true; },\n"
          "  { name = \"announce\"; match = { events = \"announce.*\"; }; to = [\"@everyone\"]; },\n"
          "  { name = \"db-hosts\"; match = { events = \"db.*\"; fields = [\"host =~ db[0-9]+\"];\n"
          "    mode = \"any\"; }; to = [\"ops-hook\"]; },\n",
          f);
    for (unsigned i = 5; i + 1 < nroutes; i++) {
        unsigned area = i % nareas;
        area_name(a, sizeof a, area);
        fprintf(f, "  { name = \"r%04u\"; match = {", i);
        unsigned k = pick(100);
        if (k < 45)
            fprintf(f, " events = \"%s.*\";", a);
        else if (k < 70)
            fprintf(f, " events = [\"%s.failed\", \"%s.down\"];", a, a);
        else if (k < 85)
            fprintf(f, " events = \"%s.%s\";", a, actions[pick(NACTIONS)]);
        else {
            area_name(b, sizeof b, pick(nareas));
            fprintf(f, " events = [\"%s.*\", \"%s.*\"];", a, b);
        }
        k = pick(100);
        if (k < 35)
            fputs(" severity = \">=warning\";", f);
        else if (k < 45)
            fputs(" severity = \">=error\";", f);
        else if (k < 55)
            fputs(" severity = \"<notice\";", f);
        else if (k < 60)
            fputs(" severity = [\"info\", \"critical\"];", f);
        k = pick(100);
        if (k < 8)
            fputs(" fields = [\"env != test\", \"region =~ eu|us\"];", f);
        else if (k < 33) {
            static const char *const fm[] = {"host =~ db[0-9]+", "env != test", "region = eu",
                                             "host =~ (web|api)[0-9]+"};
            fprintf(f, " fields = [\"%s\"];", fm[pick(4)]);
        }
        if (chance(5))
            fputs(" source = [\"cron\", \"backupd\"];", f);
        fputs(" };\n    to = [", f);
        const char *chan = chance(50) ? "ops-hook" : "audit";
        unsigned u1 = pick(nusers), u2 = pick(nusers), g = pick(ngroups);
        int users = 0;
        k = pick(100);
        if (k < 45)
            fprintf(f, "\"%s\"", chan);
        else if (k < 55)
            fprintf(f, "\"@g%03u\"", g);
        else if (k < 77) {
            fprintf(f, "\"u%05u\"", u1);
            if (u2 != u1)
                fprintf(f, ", \"u%05u\"", u2);
            users = 1;
        } else if (k < 85)
            fprintf(f, "\"%s\", \"@g%03u\"", chan, g);
        else {
            fprintf(f, "\"%s\", \"u%05u\"", chan, u1);
            users = 1;
        }
        fputs("];", f);
        if (users && chance(20))
            fputs(" allow_channels = [\"mail\"];", f);
        if (chance(3))
            fputs(" mandatory = true;", f);
        if (chance(8))
            fputs(" final = true;", f);
        if (chance(20))
            fputs(" dedup_window = \"10m\";", f);
        else if (chance(6))
            fputs(" rate_limit = \"2/10m\";", f);
        fputs(" },\n", f);
    }
    fputs("  { name = \"catch-all\"; to = [\"audit\"]; }\n);\nfallback = [\"ops-hook\"];\n", f);
}

static hr_routing *make_routing(const char *dir, unsigned nroutes, unsigned nusers,
                                unsigned nareas, hr_loader *loader)
{
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/herald.conf", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs("channels = (\n"
          "  { name = \"ops-hook\"; plugin = \"webhook\"; url = \"http://127.0.0.1:9/h\"; },\n"
          "  { name = \"audit\"; plugin = \"webhook\"; url = \"http://127.0.0.1:9/a\"; },\n"
          "  { name = \"mail\"; plugin = \"email\"; server = \"127.0.0.1\"; tls = \"none\";\n"
          "    from = \"herald@example.org\"; },\n"
          "  { name = \"push\"; plugin = \"gotify\"; url = \"http://127.0.0.1:9\"; }\n"
          ");\n",
          f);
    rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)nroutes << 32) ^ nusers;
    write_users(f, nusers, nareas);
    write_routes(f, nroutes, nusers, nareas);
    fclose(f);
    hr_config *cfg = NULL;
    hr_routing *r = NULL;
    err[0] = '\0';
    if (hr_config_load(path, &cfg, err, sizeof err) == HERALD_OK)
        hr_routing_load(&r, cfg, loader, NULL, err, sizeof err);
    hr_config_free(cfg);
    unlink(path);
    if (!r) {
        fprintf(stderr, "routebench: the generated config does not load: %s\n", err);
        exit(1);
    }
    int addressed = 0;
    for (size_t i = 0; i < r->router->nchannels; i++)
        addressed += r->router->channels[i].addressed;
    if (addressed != 2) {
        fprintf(stderr, "routebench: mail and push are not addressed channels: set "
                "HERALD_PLUGIN_PATH to the built plugins (e.g. build/plugins)\n");
        exit(1);
    }
    return r;
}

/* ---- the events ---- */

typedef struct bench_event {
    herald_event ev;
    hr_field fields[4];
    char type[48], title[64], host[16];
} bench_event;

static bench_event *make_events(size_t n, unsigned nareas, unsigned nusers)
{
    static const char *const envs[] = {"prod", "prod", "prod", "staging", "test"};
    static const char *const regions[] = {"eu", "us", "ap"};
    static const char *const hosts[] = {"db", "web", "api", "cache"};
    bench_event *v = calloc(n, sizeof *v);
    rng = 0x2545f4914f6cdd1dULL;
    for (size_t i = 0; i < n; i++) {
        bench_event *b = &v[i];
        char a[32];
        unsigned k = pick(100);
        if (k < 84) {
            area_name(a, sizeof a, pick(nareas));
            snprintf(b->type, sizeof b->type, "%s.%s", a, actions[pick(NACTIONS)]);
        } else if (k < 99)
            snprintf(b->type, sizeof b->type, "misc%u.event", pick(50));
        else
            snprintf(b->type, sizeof b->type, "security.login");
        snprintf(b->host, sizeof b->host, "%s%u", hosts[pick(4)], 1 + pick(9));
        snprintf(b->title, sizeof b->title, "%s on %s", b->type, b->host);
        b->fields[0] = (hr_field){(char *)"host", b->host};
        b->fields[1] = (hr_field){(char *)"env", (char *)envs[pick(5)]};
        b->fields[2] = (hr_field){(char *)"region", (char *)regions[pick(3)]};
        b->fields[3] = (hr_field){(char *)"ticket", (char *)"OPS-1234"};
        b->ev.type = b->type;
        b->ev.title = b->title;
        static const unsigned sev_weights[HR_NSEV] = {10, 30, 20, 20, 15, 5};
        unsigned s = pick(100), sev = 0;
        while (sev + 1 < HR_NSEV && s >= sev_weights[sev])
            s -= sev_weights[sev++];
        b->ev.severity = (herald_severity)sev;
        if (!chance(10)) {
            b->ev.fields = b->fields;
            b->ev.nfields = 4;
        }
        k = pick(100);
        b->ev.source = k < 20 ? (char *)"cron" : k < 30 ? (char *)"backupd" : NULL;
        if (chance(1)) {
            static char names[64][16];
            unsigned u = pick(nusers);
            snprintf(names[i % 64], sizeof names[0], "u%05u", u);
            b->ev.user = names[i % 64]; /* a single-addressee event */
        }
    }
    return v;
}

/* ---- in-memory route state: dedup keys and rate counters in a hash table ---- */

#define MEM_SLOTS (1u << 18)

typedef struct mem_slot {
    uint64_t h;
    long long at;
    int used;
} mem_slot;

typedef struct memstate {
    mem_slot *slots;
    unsigned n;
} memstate;

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static mem_slot *mem_find(memstate *m, uint64_t h, int *fresh)
{
    h |= 1; /* 0 marks an empty slot */
    for (uint64_t i = h;; i++) {
        mem_slot *s = &m->slots[i & (MEM_SLOTS - 1)];
        if (s->h == h) {
            *fresh = 0;
            return s;
        }
        if (!s->h) {
            if (m->n + 1 >= MEM_SLOTS / 2) {
                fprintf(stderr, "routebench: route state table full\n");
                exit(1);
            }
            m->n++;
            s->h = h;
            *fresh = 1;
            return s;
        }
    }
}

static int mem_seen(void *ctx, const char *route, const char *key, long long window, long long now)
{
    int fresh;
    mem_slot *s = mem_find(ctx, fnv(fnv(0xcbf29ce484222325ULL, route) * 31, key), &fresh);
    if (!fresh && s->at > now - window)
        return 1;
    s->at = now;
    return 0;
}

static int mem_take(void *ctx, const char *route, int n, long long period, long long now)
{
    int fresh;
    mem_slot *s = mem_find(ctx, fnv(0x84222325cbf29ce4ULL, route), &fresh);
    if (fresh || now - s->at >= period) {
        s->at = now;
        s->used = 0;
    }
    if (s->used < n) {
        s->used++;
        return 1;
    }
    return 0;
}

/* ---- measuring ---- */

/* The 1-minute load average, to tell a busy machine's figures apart; -1: unknown. */
static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}


typedef struct stats {
    double us[64], p99[64]; /* per run: mean us/event, p99 us */
    double med, lo, hi, p99med;
} stats;

typedef struct counts {
    double decisions, users, matched; /* per event */
    double wide;                      /* % of events reaching at least GROUP_SIZE users */
} counts;

/* Route every event once; the mean and p99 in us. c: count instead (not timed). */
static void pass(const hr_routing *r, const bench_event *evs, size_t n,
                 const hr_route_state *state, double *lat, double *us, double *p99, counts *c)
{
    size_t ndec = 0, nuser = 0, nmatched = 0, nwide = 0;
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        hr_decisions d;
        double a = now_ns();
        hr_route_event(r->router, r->dir, &evs[i].ev, NOON_UTC + (long long)i * STEP_MS, state,
                       &d);
        if (c) {
            ndec += d.n;
            size_t mail = 0; /* every user has an email address: users reached */
            for (size_t j = 0; j < d.n; j++) {
                nuser += d.v[j].user != NULL;
                mail += d.v[j].user && !strcmp(d.v[j].channel, "mail");
            }
            nwide += mail >= GROUP_SIZE;
            for (size_t j = 0; j < d.nnotes; j++)
                nmatched += strstr(d.notes[j], "): matched") != NULL;
        }
        hr_decisions_free(&d);
        lat[i] = now_ns() - a;
    }
    *us = (now_ns() - t0) / 1e3 / (double)n;
    qsort(lat, n, sizeof *lat, cmp_double);
    *p99 = lat[n * 99 / 100] / 1e3;
    if (c) {
        c->decisions = (double)ndec / (double)n;
        c->users = (double)nuser / (double)n;
        c->matched = (double)nmatched / (double)n;
        c->wide = 100.0 * (double)nwide / (double)n;
    }
}

static void summarize(stats *st, int reps)
{
    double tmp[64];
    memcpy(tmp, st->us, sizeof tmp);
    st->med = median_of(tmp, (size_t)reps);
    st->lo = tmp[0];
    st->hi = tmp[reps - 1];
    memcpy(tmp, st->p99, sizeof tmp);
    st->p99med = median_of(tmp, (size_t)reps);
}

/* --dump: every event's decisions and notes as JSON, state off then on, to compare two
 * builds of the routing (a performance change must not change one of them). */
static void dump(const hr_routing *r, const bench_event *evs, size_t n)
{
    memstate m = {calloc(MEM_SLOTS, sizeof(mem_slot)), 0};
    hr_route_state state = {&m, mem_seen, mem_take};
    for (int with_state = 0; with_state < 2; with_state++)
        for (size_t i = 0; i < n; i++) {
            hr_decisions d;
            hr_route_event(r->router, r->dir, &evs[i].ev, NOON_UTC + (long long)i * STEP_MS,
                           with_state ? &state : NULL, &d);
            char *json = hr_decisions_json(&d);
            printf("%d %zu %s\n", with_state, i, json);
            free(json);
            hr_decisions_free(&d);
        }
    free(m.slots);
}

/* One event that reaches every user (announce.* -> @everyone), routed for at least
 * 20 ms: us per event. */
static double everyone(const hr_routing *r, size_t *ndec)
{
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = (char *)"announce.maintenance";
    ev.title = (char *)"maintenance tonight";
    ev.severity = HERALD_SEVERITY_NOTICE;
    int k = 0;
    double t0 = now_ns(), t;
    do {
        hr_decisions d;
        hr_route_event(r->router, r->dir, &ev, NOON_UTC, NULL, &d);
        *ndec = d.n;
        hr_decisions_free(&d);
        k++;
        t = now_ns() - t0;
    } while (t < 20e6);
    return t / 1e3 / k;
}

typedef struct point {
    unsigned routes, users;
    hr_routing *r;
    bench_event *evs;
    stats off, on;
    counts c;
    double all[64], all_us;
    size_t all_dec;
    double load_s;
} point;

static void fmt(char *buf, size_t len, double x)
{
    if (x >= 100)
        snprintf(buf, len, "%.0f", x);
    else if (x >= 10)
        snprintf(buf, len, "%.1f", x);
    else
        snprintf(buf, len, "%.2f", x);
}

static const char *F(double x)
{
    static char ring[16][32];
    static int k;
    char *b = ring[k++ % 16];
    fmt(b, 32, x);
    if (x >= 1000) { /* thousands separators, as bench.py prints them */
        char t[32];
        long long v = (long long)(x + 0.5);
        snprintf(t, sizeof t, "%lld", v);
        size_t n = strlen(t), o = 0;
        for (size_t i = 0; i < n; i++) {
            if (i && (n - i) % 3 == 0)
                b[o++] = ',';
            b[o++] = t[i];
        }
        b[o] = '\0';
    }
    return b;
}

int main(int argc, char **argv)
{
    int reps = 7;
    size_t nevents = 20000;
    unsigned pts[32][2];
    size_t npts = 0;
    int dumping = 0;
    for (int i = 1; i < argc; i++) {
        unsigned a, b;
        if (!strcmp(argv[i], "--dump"))
            dumping = 1;
        else if (!strcmp(argv[i], "--quick")) {
            reps = 3;
            nevents = 5000;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--events") && i + 1 < argc)
            nevents = (size_t)atol(argv[++i]);
        else if (sscanf(argv[i], "%u:%u", &a, &b) == 2 && a >= 5 && b >= 100 && npts < 32) {
            pts[npts][0] = a;
            pts[npts++][1] = b;
        } else {
            fprintf(stderr, "usage: routebench [--quick] [--reps N] [--events N] [--dump] "
                    "[ROUTES:USERS ...]   (ROUTES >= 5, USERS >= 100)\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64 || nevents < 100) {
        fprintf(stderr, "routebench: --reps 1..64, --events >= 100\n");
        return 2;
    }
    if (!npts) {
        static const unsigned sweep[][2] = {{10, 1000}, {50, 1000}, {200, 1000}, {800, 1000},
                                            {200, 100}, {200, 10000}};
        for (size_t i = 0; i < sizeof sweep / sizeof *sweep; i++) {
            pts[npts][0] = sweep[i][0];
            pts[npts++][1] = sweep[i][1];
        }
    }
    char dir[] = "/tmp/herald-routebench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    hr_module_init();
    hr_loader *loader = hr_loader_new(NULL);
    point *res = calloc(npts, sizeof *res);
    double *lat = calloc(nevents, sizeof *lat);
    for (size_t p = 0; p < npts; p++) {
        point *pt = &res[p];
        pt->routes = pts[p][0];
        pt->users = pts[p][1];
        unsigned nareas = pt->routes / 5 < 5 ? 5 : pt->routes / 5;
        double t0 = now_ns();
        pt->r = make_routing(dir, pt->routes, pt->users, nareas, loader);
        pt->load_s = (now_ns() - t0) / 1e9;
        pt->evs = make_events(nevents, nareas, pt->users);
        fprintf(stderr, "routebench: %u routes, %u users: config loaded in %.2f s\n", pt->routes,
                pt->users, pt->load_s);
        if (dumping) {
            dump(pt->r, pt->evs, nevents);
            free(pt->evs);
            hr_routing_free(pt->r);
        }
    }
    /* Round -1 warms up and counts; then every round routes the stream through every
     * config, state off and on, so that drift on a shared machine hits them alike. */
    memstate m = {calloc(MEM_SLOTS, sizeof(mem_slot)), 0};
    hr_route_state state = {&m, mem_seen, mem_take};
    double load0 = loadavg(), tm0 = now_ns();
    for (int rep = -1; rep < reps && !dumping; rep++) {
        double t0 = now_ns(), us, p99;
        for (size_t p = 0; p < npts; p++) {
            point *pt = &res[p];
            pass(pt->r, pt->evs, nevents, NULL, lat, &us, &p99, rep < 0 ? &pt->c : NULL);
            if (rep >= 0) {
                pt->off.us[rep] = us;
                pt->off.p99[rep] = p99;
            }
            memset(m.slots, 0, MEM_SLOTS * sizeof(mem_slot));
            m.n = 0;
            pass(pt->r, pt->evs, rep < 0 ? nevents / 10 : nevents, &state, lat, &us, &p99, NULL);
            if (rep >= 0) {
                pt->on.us[rep] = us;
                pt->on.p99[rep] = p99;
            }
            double a = everyone(pt->r, &pt->all_dec);
            if (rep >= 0)
                pt->all[rep] = a;
        }
        fprintf(stderr, "routebench: round %d of %d in %.1f s\n", rep + 1, reps,
                (now_ns() - t0) / 1e9);
    }
    free(m.slots);
    double load1 = loadavg(), tm = (now_ns() - tm0) / 1e9;
    for (size_t p = 0; p < npts && !dumping; p++) {
        summarize(&res[p].off, reps);
        summarize(&res[p].on, reps);
        res[p].all_us = median_of(res[p].all, (size_t)reps);
        free(res[p].evs);
        hr_routing_free(res[p].r);
    }
    rmdir(dir);
    hr_loader_free(loader);
    if (dumping) {
        free(res);
        free(lat);
        return 0;
    }

    /* The reference point for the ratios: 200 routes, 1,000 users when measured. */
    const point *ref = &res[0];
    for (size_t p = 0; p < npts; p++)
        if (res[p].routes == 200 && res[p].users == 1000)
            ref = &res[p];
    printf("## Routing and preferences per event\n\n");
    printf("`bench/routebench`: `hr_route_event()` (routes, then each reached user's rules, "
           "defaults and quiet hours) plus freeing its decisions, over %s varied events; "
           "%d runs each, median and spread (min-max) of the per-event mean, p99 the median "
           "of the runs' 99th percentiles. Generated config: 4 channels (2 broadcast "
           "webhooks, email and gotify addressed), groups of %d users, about five routes "
           "per event area, a catch-all last; \"state on\" adds an in-memory dedup/rate "
           "table for the routes that have dedup_window or rate_limit.\n\n",
           F((double)nevents), reps, GROUP_SIZE);
    printf("| routes | users | routes matched/event | decisions/event (to users) | events "
           "reaching >= %d users | us/event, state off | spread | p99 (us) | us/event, state "
           "on | vs %u x %s | one event to all users (us; decisions) |\n",
           GROUP_SIZE, ref->routes, F(ref->users));
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t p = 0; p < npts; p++) {
        const point *pt = &res[p];
        char spread[64];
        snprintf(spread, sizeof spread, "%s-%s", F(pt->off.lo), F(pt->off.hi));
        double ratio[64];
        for (int k = 0; k < reps; k++) /* in the same round */
            ratio[k] = pt->off.us[k] / ref->off.us[k];
        printf("| %u | %s | %s | %s (%s) | %.0f%% | %s | %s | %s | %s | %.2f | %s; %s |\n",
               pt->routes, F(pt->users), F(pt->c.matched), F(pt->c.decisions),
               F(pt->c.users), pt->c.wide, F(pt->off.med), spread, F(pt->off.p99med),
               F(pt->on.med), median_of(ratio, (size_t)reps), F(pt->all_us),
               F((double)pt->all_dec));
    }
    printf("\nThe ratio is the median over the runs of each run's ratio (every run routes "
           "through every config in turn). Target: at most 20 us per event at 200 routes "
           "and 1,000 users; measured %s (state off), %s (state on). Loading the config "
           "(hr_config_load + hr_routing_load):",
           F(ref->off.med), F(ref->on.med));
    for (size_t p = 0; p < npts; p++)
        printf("%s %s s at %u x %s", p ? "," : "", F(res[p].load_s), res[p].routes,
               F(res[p].users));
    printf(". Measuring took %.0f s; the 1-minute load average was %.2f before and %.2f "
           "after (%ld CPUs).\n\n",
           tm, load0, load1, sysconf(_SC_NPROCESSORS_ONLN));
    free(res);
    free(lat);
    return 0;
}
