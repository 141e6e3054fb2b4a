/* route.c - routes, users and preferences from the config, and the routing function. */
#include "config.h"

#include <ctype.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libconfig.h>

#include "route.h"
#include "secretbox.h"
#include "store.h"
#include "webhooks.h"

#define MAX_NAME 64

/* ---- small helpers ---- */

static const char *src_file(const config_setting_t *s, const char *fallback)
{
    const char *f = config_setting_source_file(s);
    return f ? f : fallback;
}

static char *origin_of(const config_setting_t *s, const char *fallback)
{
    return hr_asprintf("%s:%u", src_file(s, fallback), config_setting_source_line(s));
}

#define FAIL_AT(setting, ...)                                                          \
    do {                                                                               \
        int n_ = snprintf(err, errlen, "%s:%u: ", src_file((setting), path),           \
                          config_setting_source_line(setting));                        \
        if (n_ > 0 && (size_t)n_ < errlen)                                             \
            snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                      \
        goto fail;                                                                     \
    } while (0)

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

int hr_address_is_secret(const char *key)
{
    static const char *const ends[] = {"token", "key", "secret", "password", "webhook", NULL};
    size_t n = strlen(key);
    for (const char *const *e = ends; *e; e++) {
        size_t m = strlen(*e);
        if (n >= m && strcmp(key + n - m, *e) == 0)
            return 1;
    }
    return 0;
}

char *hr_address_seal_context(const char *tenant, const char *user, const char *key)
{
    /* The default tenant's keep the context they had before users had tenants. */
    if (!tenant || !strcmp(tenant, "default"))
        return hr_asprintf("user:%s:addr:%s", user, key);
    return hr_asprintf("tenant:%s:user:%s:addr:%s", tenant, user, key);
}

static int count_wildcards(const char *glob)
{
    int n = 0;
    for (; *glob; glob++)
        n += *glob == '*' || *glob == '?' || *glob == '[';
    return n;
}

/* A string or a list/array of strings -> a vector; 0 when neither. */
static int string_list(config_setting_t *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        *out = hr_calloc(1, sizeof **out);
        (*out)[(*n)++] = hr_strdup(config_setting_get_string(s));
        return 1;
    }
    if (!config_setting_is_list(s) && !config_setting_is_array(s))
        return 0;
    int len = config_setting_length(s);
    *out = hr_calloc((size_t)len + 1, sizeof **out);
    for (int i = 0; i < len; i++) {
        const char *v = config_setting_get_string(config_setting_get_elem(s, (unsigned)i));
        if (!v)
            return 0;
        (*out)[(*n)++] = hr_strdup(v);
    }
    return 1;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int severity_of(const char *s)
{
    herald_severity sev;
    return s && hr_severity_parse(s, &sev) ? (int)sev : -1;
}

/* ">=warning", "<error", "warning" (that one only) -> a mask of severities. */
static int severity_mask(const char *spec, unsigned *mask)
{
    const char *p = spec;
    int lt = 0, gt = 0, eq = 0;
    if (*p == '>') {
        gt = 1;
        p++;
    } else if (*p == '<') {
        lt = 1;
        p++;
    }
    if (*p == '=') {
        eq = 1;
        p++;
    }
    if (*p == '=')
        p++; /* "==warning" */
    int s = severity_of(p);
    if (s < 0)
        return 0;
    for (int i = 0; i < HR_NSEV; i++)
        if ((gt && (i > s || (eq && i == s))) || (lt && (i < s || (eq && i == s))) ||
            (!gt && !lt && i == s))
            *mask |= 1u << i;
    return 1;
}

/* ---- directory ---- */

hr_directory *hr_directory_new(void)
{
    return hr_calloc(1, sizeof(hr_directory));
}

static void user_clear(hr_user *u)
{
    free(u->name);
    free(u->origin);
    for (size_t i = 0; i < u->naddr; i++) {
        free(u->addr[i].name);
        free(u->addr[i].value);
    }
    free(u->addr);
    for (size_t i = 0; i < u->nchans; i++)
        free(u->chans[i].channel);
    free(u->chans);
    for (size_t i = 0; i < u->nrules; i++) {
        free(u->rules[i].events);
        free(u->rules[i].channel);
        free(u->rules[i].origin);
    }
    free(u->rules);
    free(u->tz_name);
    hr_tz_free(u->tz);
}

void hr_directory_free(hr_directory *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nusers; i++)
        user_clear(&d->users[i]);
    free(d->users);
    free(d->uslots);
    for (size_t i = 0; i < d->ngroups; i++) {
        free(d->groups[i].name);
        free(d->groups[i].origin);
        free(d->groups[i].members);
    }
    free(d->groups);
    free(d);
}

static size_t name_hash(const char *s)
{
    size_t h = 14695981039346656037ULL & SIZE_MAX; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * (size_t)1099511628211ULL;
    return h;
}

static void slot_put(size_t *slots, size_t cap, const char *name, size_t i)
{
    size_t k = name_hash(name) & (cap - 1);
    while (slots[k])
        k = (k + 1) & (cap - 1);
    slots[k] = i + 1;
}

/* Index the user just added (d->users[d->nusers - 1], named): with 10,000
 * users, finding each by a scan made loading the directory take a second. */
static void index_user(hr_directory *d)
{
    if (2 * d->nusers > d->ncap) {
        size_t cap = d->ncap ? 2 * d->ncap : 64;
        free(d->uslots);
        d->uslots = hr_calloc(cap, sizeof *d->uslots);
        d->ncap = cap;
        for (size_t i = 0; i + 1 < d->nusers; i++)
            slot_put(d->uslots, cap, d->users[i].name, i);
    }
    slot_put(d->uslots, d->ncap, d->users[d->nusers - 1].name, d->nusers - 1);
}

hr_user *hr_directory_user(const hr_directory *d, const char *name)
{
    if (!d || !d->ncap || !name)
        return NULL;
    for (size_t k = name_hash(name) & (d->ncap - 1); d->uslots[k]; k = (k + 1) & (d->ncap - 1))
        if (strcmp(d->users[d->uslots[k] - 1].name, name) == 0)
            return &d->users[d->uslots[k] - 1];
    return NULL;
}

hr_group *hr_directory_group(const hr_directory *d, const char *name)
{
    for (size_t i = 0; d && i < d->ngroups; i++)
        if (strcmp(d->groups[i].name, name) == 0)
            return &d->groups[i];
    return NULL;
}

const char *hr_user_address(const hr_user *u, const char *key)
{
    for (size_t i = 0; i < u->naddr; i++)
        if (strcmp(u->addr[i].name, key) == 0)
            return u->addr[i].value;
    return NULL;
}

/* Keys of a user entry that are not addresses. */
static const char *const user_keys[] = {"name", "groups", "min_severity", "channels", "rules",
                                        "quiet", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* quiet = { hours = "22:00-07:00"; tz = "Europe/Berlin"; action = "defer"; } */
static herald_status parse_quiet(config_setting_t *q, const char *path, hr_user *u, char *err,
                                 size_t errlen)
{
    const char *hours = NULL, *tz = "UTC", *action = "defer";
    char why[256];
    if (!config_setting_is_group(q))
        FAIL_AT(q, "user '%s': quiet must be a group { hours = \"22:00-07:00\"; tz = "
                "\"Europe/Berlin\"; action = \"defer\"; }", u->name);
    config_setting_lookup_string(q, "hours", &hours);
    config_setting_lookup_string(q, "tz", &tz);
    config_setting_lookup_string(q, "action", &action);
    if (!hours || hr_quiet_parse(hours, &u->quiet_start, &u->quiet_end, why, sizeof why) != 0)
        FAIL_AT(q, "user '%s': %s", u->name,
                hours ? why : "quiet needs hours = \"HH:MM-HH:MM\"");
    if (strcmp(action, "defer") && strcmp(action, "drop"))
        FAIL_AT(q, "user '%s': quiet action \"%s\": use defer or drop", u->name, action);
    if (!(u->tz = hr_tz_load(tz, why, sizeof why)))
        FAIL_AT(q, "user '%s': %s", u->name, why);
    u->tz_name = hr_strdup(tz);
    u->quiet = strcmp(action, "drop") == 0 ? HR_QUIET_DROP : HR_QUIET_DEFER;
    return HERALD_OK;
fail:
    return HERALD_E_CONFIG;
}

static herald_status parse_user(config_setting_t *e, const char *path, hr_user *u, char *err,
                                size_t errlen)
{
    const char *name = NULL;
    u->min_sev = -1;
    if (!config_setting_is_group(e) || !config_setting_lookup_string(e, "name", &name))
        FAIL_AT(e, "each user must be a group with a name: { name = \"alice\"; email = "
                "\"alice@example.org\"; }");
    if (!valid_name(name))
        FAIL_AT(e, "user name \"%s\": use letters, digits, '-', '_' or '.' (at most 64)", name);
    u->name = hr_strdup(name);
    u->origin = origin_of(e, path);
    int n = config_setting_length(e);
    for (int i = 0; i < n; i++) {
        config_setting_t *m = config_setting_get_elem(e, (unsigned)i);
        const char *key = config_setting_name(m);
        if (in_list(user_keys, key))
            continue;
        const char *v = config_setting_get_string(m);
        if (!v || hr_has_ctl(v))
            FAIL_AT(m, "user '%s': address %s must be a string without control characters "
                    "(known settings: min_severity, channels, rules, quiet, groups)", name, key);
        u->addr = hr_realloc(u->addr, (u->naddr + 1) * sizeof *u->addr);
        u->addr[u->naddr].name = hr_strdup(key);
        u->addr[u->naddr++].value = hr_strdup(v);
        if (hr_address_is_secret(key))
            hr_secret_add(v);
    }
    config_setting_t *m;
    if ((m = config_setting_get_member(e, "min_severity")) &&
        (u->min_sev = severity_of(config_setting_get_string(m))) < 0)
        FAIL_AT(m, "user '%s': min_severity must be a severity (debug ... critical)", name);
    if ((m = config_setting_get_member(e, "channels"))) {
        if (!config_setting_is_group(m))
            FAIL_AT(m, "user '%s': channels must be a group { email = true; slack = false; }",
                    name);
        int k = config_setting_length(m);
        u->chans = hr_calloc((size_t)k + 1, sizeof *u->chans);
        for (int i = 0; i < k; i++) {
            config_setting_t *c = config_setting_get_elem(m, (unsigned)i);
            if (config_setting_type(c) != CONFIG_TYPE_BOOL)
                FAIL_AT(c, "user '%s': channels.%s must be true or false", name,
                        config_setting_name(c));
            u->chans[u->nchans].channel = hr_strdup(config_setting_name(c));
            u->chans[u->nchans++].on = config_setting_get_bool(c);
        }
    }
    if ((m = config_setting_get_member(e, "rules"))) {
        if (!config_setting_is_list(m))
            FAIL_AT(m, "user '%s': rules must be a list ( { events = \"backup.*\"; channel = "
                    "\"email\"; on = false; } )", name);
        int k = config_setting_length(m);
        u->rules = hr_calloc((size_t)k + 1, sizeof *u->rules);
        for (int i = 0; i < k; i++) {
            config_setting_t *r = config_setting_get_elem(m, (unsigned)i);
            const char *events = NULL, *channel = "*", *minsev = NULL;
            int on = 1;
            if (!config_setting_is_group(r) || !config_setting_lookup_string(r, "events", &events))
                FAIL_AT(r, "user '%s': each rule needs events = \"glob\"", name);
            config_setting_lookup_string(r, "channel", &channel);
            config_setting_lookup_bool(r, "on", &on);
            hr_pref_rule *pr = &u->rules[u->nrules++];
            pr->events = hr_strdup(events);
            pr->channel = hr_strdup(channel);
            pr->on = on;
            pr->min_sev = -1;
            pr->origin = origin_of(r, path);
            pr->wildcards = count_wildcards(events) + (strcmp(channel, "*") == 0);
            if (config_setting_lookup_string(r, "min_severity", &minsev) &&
                (pr->min_sev = severity_of(minsev)) < 0)
                FAIL_AT(r, "user '%s': rule min_severity must be a severity (debug ... critical)",
                        name);
        }
    }
    if ((m = config_setting_get_member(e, "quiet")) &&
        parse_quiet(m, path, u, err, errlen) != HERALD_OK)
        return HERALD_E_CONFIG;
    return HERALD_OK;
fail:
    return HERALD_E_CONFIG;
}

static void group_add(hr_group *g, size_t member)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->members[i] == member)
            return;
    g->members = hr_realloc(g->members, (g->n + 1) * sizeof *g->members);
    g->members[g->n++] = member;
}

static hr_group *group_get(hr_directory *d, const char *name, const char *origin)
{
    hr_group *g = hr_directory_group(d, name);
    if (g)
        return g;
    d->groups = hr_realloc(d->groups, (d->ngroups + 1) * sizeof *d->groups);
    g = &d->groups[d->ngroups++];
    memset(g, 0, sizeof *g);
    g->name = hr_strdup(name);
    g->origin = hr_strdup(origin);
    return g;
}

herald_status hr_directory_from_config(hr_directory *d, const hr_config *cfg, char *err,
                                       size_t errlen)
{
    const char *path = cfg->path ? cfg->path : "config";
    config_t *lc = cfg->cfg;
    if (!lc)
        return HERALD_OK;
    config_setting_t *root = config_root_setting(lc);
    config_setting_t *us = config_setting_get_member(root, "users");
    if (us) {
        if (!config_setting_is_list(us))
            FAIL_AT(us, "users must be a list: users = ( { name = \"alice\"; email = "
                    "\"alice@example.org\"; } );");
        int n = config_setting_length(us);
        d->users = hr_calloc((size_t)n + 1, sizeof *d->users);
        for (int i = 0; i < n; i++) {
            config_setting_t *e = config_setting_get_elem(us, (unsigned)i);
            hr_user *u = &d->users[d->nusers];
            memset(u, 0, sizeof *u);
            herald_status st = parse_user(e, path, u, err, errlen);
            if (st == HERALD_OK && hr_directory_user(d, u->name)) {
                snprintf(err, errlen, "%s: user '%s' is declared twice; keep one", u->origin,
                         u->name);
                st = HERALD_E_CONFIG;
            }
            d->nusers++;
            if (st != HERALD_OK)
                return st;
            index_user(d);
        }
        /* A user's groups = [...] joins groups. */
        for (size_t i = 0; i < d->nusers; i++) {
            config_setting_t *e = config_setting_get_elem(us, (unsigned)i);
            config_setting_t *m = config_setting_get_member(e, "groups");
            char **names;
            size_t k;
            if (!m)
                continue;
            if (!string_list(m, &names, &k)) {
                strv_free(names, k);
                FAIL_AT(m, "user '%s': groups must be a list of names", d->users[i].name);
            }
            for (size_t j = 0; j < k; j++) {
                if (!valid_name(names[j])) {
                    strv_free(names, k);
                    FAIL_AT(m, "user '%s': bad group name", d->users[i].name);
                }
                group_add(group_get(d, names[j], d->users[i].origin), i);
            }
            strv_free(names, k);
        }
    }
    config_setting_t *gs = config_setting_get_member(root, "groups");
    if (gs) {
        if (!config_setting_is_group(gs))
            FAIL_AT(gs, "groups must be a group of lists: groups = { ops = [\"alice\", "
                    "\"bob\"]; };");
        int n = config_setting_length(gs);
        for (int i = 0; i < n; i++) {
            config_setting_t *g = config_setting_get_elem(gs, (unsigned)i);
            char **names;
            size_t k;
            if (!string_list(g, &names, &k)) {
                strv_free(names, k);
                FAIL_AT(g, "group '%s' must be a list of user names", config_setting_name(g));
            }
            char *origin = origin_of(g, path);
            hr_group *grp = group_get(d, config_setting_name(g), origin);
            free(origin);
            for (size_t j = 0; j < k; j++) {
                hr_user *u = hr_directory_user(d, names[j]);
                if (!u) {
                    int n_ = snprintf(err, errlen, "%s:%u: group '%s' names unknown user '%s'; "
                                      "declare it in users or remove it", src_file(g, path),
                                      config_setting_source_line(g), grp->name, names[j]);
                    (void)n_;
                    strv_free(names, k);
                    return HERALD_E_CONFIG;
                }
                group_add(grp, (size_t)(u - d->users));
            }
            strv_free(names, k);
        }
    }
    return HERALD_OK;
fail:
    return HERALD_E_CONFIG;
}

/* ---- routes ---- */

static const char *const route_keys[] = {"name", "match", "to", "allow_channels", "mandatory",
                                         "final", "dedup_window", "rate_limit", NULL};
static const char *const match_keys[] = {"events", "severity", "fields", "source", "mode",
                                         "invert", NULL};

static void route_clear(hr_route *r)
{
    free(r->name);
    free(r->origin);
    strv_free(r->events, r->nevents);
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].name);
        free(r->fields[i].value);
        if (r->fields[i].re) {
            regfree(r->fields[i].re);
            free(r->fields[i].re);
        }
    }
    free(r->fields);
    strv_free(r->sources, r->nsources);
    for (size_t i = 0; i < r->ntargets; i++)
        free(r->targets[i].name);
    free(r->targets);
    strv_free(r->allow, r->nallow);
}

void hr_router_free(hr_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nroutes; i++)
        route_clear(&r->routes[i]);
    free(r->routes);
    route_clear(&r->fallback);
    for (size_t i = 0; i < r->nchannels; i++) {
        free(r->channels[i].name);
        free(r->channels[i].address_key);
    }
    free(r->channels);
    free(r);
}

static const hr_route_channel *router_channel(const hr_router *r, const char *name)
{
    for (size_t i = 0; i < r->nchannels; i++)
        if (strcmp(r->channels[i].name, name) == 0)
            return &r->channels[i];
    return NULL;
}

/* "host = db1", "host != db1", "host =~ db[0-9]+", "host !~ ^test" */
static int parse_field_matcher(const char *spec, hr_fmatch *f, char *why, size_t whylen)
{
    const char *ops[] = {"=~", "!~", "!=", "="};
    const hr_fop kinds[] = {HR_F_RE, HR_F_NRE, HR_F_NE, HR_F_EQ};
    for (int k = 0; k < 4; k++) {
        const char *at = strstr(spec, ops[k]);
        if (!at)
            continue;
        const char *ne = spec, *ee = at;
        while (*ne == ' ')
            ne++;
        while (ee > ne && ee[-1] == ' ')
            ee--;
        const char *v = at + strlen(ops[k]);
        while (*v == ' ')
            v++;
        if (ee == ne)
            break;
        f->name = hr_strndup(ne, (size_t)(ee - ne));
        f->value = hr_strdup(v);
        f->op = kinds[k];
        if (f->op == HR_F_RE || f->op == HR_F_NRE) {
            char *anchored = hr_asprintf("^(%s)$", v);
            f->re = hr_malloc(sizeof(regex_t));
            int rc = regcomp(f->re, anchored, REG_EXTENDED | REG_NOSUB);
            free(anchored);
            if (rc != 0) {
                char msg[128];
                regerror(rc, f->re, msg, sizeof msg);
                free(f->re);
                f->re = NULL;
                snprintf(why, whylen, "field matcher \"%s\": bad regular expression: %s", spec,
                         msg);
                return 0;
            }
        }
        return 1;
    }
    snprintf(why, whylen, "field matcher \"%s\": use \"name = value\", \"name != value\", "
             "\"name =~ regex\" or \"name !~ regex\"", spec);
    return 0;
}

/* to = [...] names: "@group", a channel, or a user; checked against both. */
static int parse_targets(config_setting_t *s, const hr_router *r, const hr_directory *dir,
                         hr_route *rt, char *why, size_t whylen)
{
    char **names;
    size_t n;
    if (!string_list(s, &names, &n)) {
        strv_free(names, n);
        snprintf(why, whylen, "to must be a list of channels, users and @groups");
        return 0;
    }
    rt->targets = hr_calloc(n + 1, sizeof *rt->targets);
    for (size_t i = 0; i < n; i++) {
        hr_target *t = &rt->targets[rt->ntargets];
        const char *nm = names[i];
        if (nm[0] == '@') {
            if (!hr_directory_group(dir, nm + 1)) {
                snprintf(why, whylen, "unknown group '%s'; declare it in groups", nm);
                strv_free(names, n);
                return 0;
            }
            t->kind = HR_T_GROUP;
            t->name = hr_strdup(nm + 1);
            t->at = (size_t)(hr_directory_group(dir, nm + 1) - dir->groups);
        } else if (router_channel(r, nm)) {
            if (hr_directory_user(dir, nm)) {
                snprintf(why, whylen, "'%s' is both a channel and a user; rename one", nm);
                strv_free(names, n);
                return 0;
            }
            t->kind = HR_T_CHANNEL;
            t->name = hr_strdup(nm);
        } else if (hr_directory_user(dir, nm)) {
            t->kind = HR_T_USER;
            t->name = hr_strdup(nm);
            t->at = (size_t)(hr_directory_user(dir, nm) - dir->users);
        } else {
            snprintf(why, whylen, "'%s' is no channel, user or @group; define it or fix the "
                     "name", nm);
            strv_free(names, n);
            return 0;
        }
        rt->ntargets++;
    }
    strv_free(names, n);
    return 1;
}

static herald_status parse_route(config_setting_t *e, int index, const char *path,
                                 const hr_router *r, const hr_directory *dir, hr_route *rt,
                                 char *err, size_t errlen)
{
    char why[300];
    config_setting_t *m, *match;
    const char *name = NULL;
    rt->sev_mask = (1u << HR_NSEV) - 1;
    rt->origin = origin_of(e, path);
    if (!config_setting_is_group(e))
        FAIL_AT(e, "each route must be a group { match = { ... }; to = [ ... ]; }");
    config_setting_lookup_string(e, "name", &name);
    rt->name = name ? hr_strdup(name) : hr_asprintf("route %d", index + 1);
    for (int i = 0; i < config_setting_length(e); i++) {
        config_setting_t *k = config_setting_get_elem(e, (unsigned)i);
        if (!in_list(route_keys, config_setting_name(k)))
            FAIL_AT(k, "%s: unknown setting '%s'; known: name, match, to, allow_channels, "
                    "mandatory, final, dedup_window, rate_limit", rt->name, config_setting_name(k));
    }
    if ((match = config_setting_get_member(e, "match"))) {
        if (!config_setting_is_group(match))
            FAIL_AT(match, "%s: match must be a group { events = [\"backup.*\"]; severity = "
                    "\">=warning\"; }", rt->name);
        for (int i = 0; i < config_setting_length(match); i++) {
            config_setting_t *k = config_setting_get_elem(match, (unsigned)i);
            if (!in_list(match_keys, config_setting_name(k)))
                FAIL_AT(k, "%s: unknown matcher '%s'; known: events, severity, fields, source, "
                        "mode, invert", rt->name, config_setting_name(k));
        }
        if ((m = config_setting_get_member(match, "events")) &&
            !string_list(m, &rt->events, &rt->nevents))
            FAIL_AT(m, "%s: events must be a glob or a list of globs", rt->name);
        if ((m = config_setting_get_member(match, "source")) &&
            !string_list(m, &rt->sources, &rt->nsources))
            FAIL_AT(m, "%s: source must be a name or a list of names", rt->name);
        if ((m = config_setting_get_member(match, "severity"))) {
            char **sv;
            size_t ns;
            int good = string_list(m, &sv, &ns) && ns > 0;
            rt->sev_mask = 0;
            for (size_t i = 0; good && i < ns; i++)
                good = severity_mask(sv[i], &rt->sev_mask);
            strv_free(sv, ns);
            if (!good)
                FAIL_AT(m, "%s: severity must be like \">=warning\", \"<error\", \"critical\" or "
                        "a list of severities (debug, info, notice, warning, error, critical)",
                        rt->name);
        }
        if ((m = config_setting_get_member(match, "fields"))) {
            char **fv;
            size_t nf;
            if (!string_list(m, &fv, &nf)) {
                strv_free(fv, nf);
                FAIL_AT(m, "%s: fields must be a list of \"name = value\" matchers", rt->name);
            }
            rt->fields = hr_calloc(nf + 1, sizeof *rt->fields);
            for (size_t i = 0; i < nf; i++) {
                if (!parse_field_matcher(fv[i], &rt->fields[rt->nfields++], why, sizeof why)) {
                    strv_free(fv, nf);
                    FAIL_AT(m, "%s: %s", rt->name, why);
                }
            }
            strv_free(fv, nf);
        }
        const char *mode = NULL;
        if (config_setting_lookup_string(match, "mode", &mode)) {
            if (strcmp(mode, "all") && strcmp(mode, "any"))
                FAIL_AT(match, "%s: mode \"%s\": use all or any", rt->name, mode);
            rt->any = strcmp(mode, "any") == 0;
        }
        config_setting_lookup_bool(match, "invert", &rt->invert);
    }
    if (!(m = config_setting_get_member(e, "to")))
        FAIL_AT(e, "%s: no targets; add to = [\"channel\", \"user\", \"@group\"];", rt->name);
    if (!parse_targets(m, r, dir, rt, why, sizeof why))
        FAIL_AT(m, "%s: %s", rt->name, why);
    if ((m = config_setting_get_member(e, "allow_channels"))) {
        if (!string_list(m, &rt->allow, &rt->nallow))
            FAIL_AT(m, "%s: allow_channels must be a list of channel names", rt->name);
        for (size_t i = 0; i < rt->nallow; i++) {
            const hr_route_channel *c = router_channel(r, rt->allow[i]);
            if (!c)
                FAIL_AT(m, "%s: allow_channels names unknown channel '%s'", rt->name,
                        rt->allow[i]);
            if (!c->addressed)
                FAIL_AT(m, "%s: channel '%s' cannot reach users (its plugin has no per-user "
                        "address); name it in to instead", rt->name, rt->allow[i]);
        }
    }
    config_setting_lookup_bool(e, "mandatory", &rt->mandatory);
    config_setting_lookup_bool(e, "final", &rt->final);
    if ((m = config_setting_get_member(e, "dedup_window"))) {
        const char *v = config_setting_get_string(m);
        if (!v || hr_parse_duration(v, &rt->dedup_ms) != HERALD_OK || rt->dedup_ms <= 0)
            FAIL_AT(m, "%s: dedup_window must be a duration like \"10m\"", rt->name);
    }
    if ((m = config_setting_get_member(e, "rate_limit"))) {
        const char *v = config_setting_get_string(m);
        const char *slash = v ? strchr(v, '/') : NULL;
        char *end = NULL;
        long n = v ? strtol(v, &end, 10) : 0;
        if (!slash || end != slash || n < 1 || n > 1000000 ||
            hr_parse_duration(slash + 1, &rt->rate_ms) != HERALD_OK || rt->rate_ms <= 0)
            FAIL_AT(m, "%s: rate_limit must be like \"10/1m\" (at most 10 per minute)", rt->name);
        rt->rate_n = (int)n;
    }
    return HERALD_OK;
fail:
    return HERALD_E_CONFIG;
}

/* Which user address a plugin's channels use unless the channel says `address = "..."`. */
static const char *default_address_key(const char *plugin)
{
    if (!plugin)
        return NULL;
    if (!strcmp(plugin, "gotify"))
        return "gotify_token";
    if (!strcmp(plugin, "ntfy"))
        return "ntfy_topic";
    if (!strcmp(plugin, "slack"))
        return "slack_user";
    if (!strcmp(plugin, "discord"))
        return "discord_webhook";
    return plugin; /* email -> "email" */
}

herald_status hr_router_build(hr_router **out, const hr_config *cfg, hr_loader *l,
                              const hr_directory *dir, char *err, size_t errlen)
{
    const char *path = cfg->path ? cfg->path : "config";
    hr_router *r = hr_calloc(1, sizeof *r);
    *out = NULL;
    r->channels = hr_calloc(cfg->nchannels + 1, sizeof *r->channels);
    for (size_t i = 0; i < cfg->nchannels; i++) {
        const hr_channel_conf *cc = &cfg->channels[i];
        hr_route_channel *c = &r->channels[r->nchannels++];
        c->name = hr_strdup(cc->name);
        hr_plugin *p = NULL;
        char perr[256];
        if (l && cc->plugin)
            hr_loader_get(l, cc->plugin, &p, perr, sizeof perr);
        else if (l && cc->url) {
            hr_url u;
            if (hr_url_split(cc->url, &u, perr, sizeof perr) == HERALD_OK) {
                hr_loader_by_scheme(l, u.scheme, &p, perr, sizeof perr);
                hr_url_free(&u);
            }
        }
        c->addressed = p && (p->info->flags & HERALD_PLUGIN_F_ADDRESSED);
        const char *key = NULL;
        if (!cc->raw || !config_setting_lookup_string(cc->raw, "address", &key))
            key = default_address_key(p ? p->name : cc->plugin);
        c->address_key = hr_strdup(key);
    }
    config_t *lc = cfg->cfg;
    config_setting_t *root = lc ? config_root_setting(lc) : NULL;
    config_setting_t *rs = root ? config_setting_get_member(root, "routes") : NULL;
    if (rs) {
        if (!config_setting_is_list(rs))
            FAIL_AT(rs, "routes must be a list: routes = ( { match = { events = [\"backup.*\"]; "
                    "}; to = [\"ops\"]; } );");
        int n = config_setting_length(rs);
        r->routes = hr_calloc((size_t)n + 1, sizeof *r->routes);
        for (int i = 0; i < n; i++) {
            r->nroutes++;
            if (parse_route(config_setting_get_elem(rs, (unsigned)i), i, path, r, dir,
                            &r->routes[i], err, errlen) != HERALD_OK)
                goto fail;
        }
        r->configured = 1;
    }
    config_setting_t *fb = root ? config_setting_get_member(root, "fallback") : NULL;
    if (fb) {
        char why[300];
        r->fallback.name = hr_strdup("fallback");
        r->fallback.origin = origin_of(fb, path);
        r->fallback.sev_mask = (1u << HR_NSEV) - 1;
        if (!parse_targets(fb, r, dir, &r->fallback, why, sizeof why))
            FAIL_AT(fb, "fallback: %s", why);
        r->configured = 1;
    }
    *out = r;
    return HERALD_OK;
fail:
    hr_router_free(r);
    return HERALD_E_CONFIG;
}

static int matches_all(const hr_route *r)
{
    return r->nevents == 0 && r->nsources == 0 && r->nfields == 0 &&
           r->sev_mask == (1u << HR_NSEV) - 1 && !r->invert;
}

void hr_router_lint(const hr_router *r, char **out)
{
    for (size_t i = 0; i < r->nroutes; i++) {
        if (!r->routes[i].final || !matches_all(&r->routes[i]))
            continue;
        for (size_t j = i + 1; j < r->nroutes; j++) {
            char *line = hr_asprintf("%sherald: warning: %s: %s can never match: %s (%s) above it matches every "
                                     "event and is final\n", *out ? *out : "",
                                     r->routes[j].origin, r->routes[j].name, r->routes[i].name,
                                     r->routes[i].origin);
            free(*out);
            *out = line;
        }
        break;
    }
}

/* ---- evaluation ---- */

static const char *field_of(const herald_event *ev, const char *name)
{
    for (size_t i = 0; i < ev->nfields; i++)
        if (strcmp(ev->fields[i].name, name) == 0)
            return ev->fields[i].value;
    return ""; /* a missing field compares as the empty string */
}

static int field_matches(const hr_fmatch *f, const herald_event *ev)
{
    const char *v = field_of(ev, f->name);
    switch (f->op) {
    case HR_F_EQ: return strcmp(v, f->value) == 0;
    case HR_F_NE: return strcmp(v, f->value) != 0;
    case HR_F_RE: return regexec(f->re, v, 0, NULL, 0) == 0;
    case HR_F_NRE: return regexec(f->re, v, 0, NULL, 0) != 0;
    }
    return 0;
}

static int glob_any(char *const *globs, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(globs[i], s, 0) == 0)
            return 1;
    return 0;
}

/* Every matcher is pure, so the first one that decides ends the test, the cheapest first:
 * mode all stops at the first that fails, mode any at the first that holds. */
static int matchers_hold(const hr_route *r, const herald_event *ev)
{
    const int decisive = r->any ? 1 : 0;
    int tested = 0;
    if (r->sev_mask != (1u << HR_NSEV) - 1) {
        tested = 1;
        if ((int)((r->sev_mask >> ev->severity) & 1u) == decisive)
            return decisive;
    }
    if (r->nevents) {
        tested = 1;
        if (glob_any(r->events, r->nevents, ev->type) == decisive)
            return decisive;
    }
    if (r->nsources) {
        tested = 1;
        if (glob_any(r->sources, r->nsources, ev->source ? ev->source : "") == decisive)
            return decisive;
    }
    for (size_t i = 0; i < r->nfields; i++) {
        tested = 1;
        if (field_matches(&r->fields[i], ev) == decisive)
            return decisive;
    }
    return r->any && tested ? 0 : 1; /* any with no matcher: everything */
}

static int route_matches(const hr_route *r, const herald_event *ev)
{
    int result = matchers_hold(r, ev);
    return r->invert ? !result : result;
}

static void note(hr_decisions *out, const char *fmt, ...) HERALD_PRINTF(2, 3);

static void note(hr_decisions *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[400];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    out->notes = hr_realloc(out->notes, (out->nnotes + 1) * sizeof *out->notes);
    out->notes[out->nnotes++] = hr_strdup(buf);
}

static int action_rank(const hr_decision *d)
{
    return d->action == HR_SEND ? 2 : d->action == HR_DEFER ? 1 : 0;
}

static int same_pair(const hr_decision *x, const hr_decision *y)
{
    return strcmp(x->channel, y->channel) == 0 &&
           ((!x->user && !y->user) || (x->user && y->user && !strcmp(x->user, y->user)));
}

static size_t pair_hash(const hr_decision *d)
{
    size_t h = 5381;
    for (const char *p = d->channel; *p; p++)
        h = h * 33 + (unsigned char)*p;
    h = h * 33 + 1;
    for (const char *p = d->user ? d->user : ""; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return h;
}

/* One delivery per (channel, user): the strongest decision wins (send > defer >
 * skip; a mandatory one over any other), in the place where the pair first
 * appeared. decide() only collects; this merges the decisions in the order
 * they were made, as merging each on arrival would, but finds a pair's first
 * decision in a hash table instead of searching all earlier ones (quadratic for
 * a route to a big group). */
static void merge_decisions(hr_decisions *out)
{
    size_t n = out->n, w = 0, mask = 15;
    if (n < 2)
        return;
    while (mask < 2 * n)
        mask = mask * 2 + 1;
    size_t *slot = hr_calloc(mask + 1, sizeof *slot); /* index into out->v + 1; 0: empty */
    for (size_t i = 0; i < n; i++) {
        const hr_decision *d = &out->v[i];
        size_t h = pair_hash(d) & mask;
        while (slot[h] && !same_pair(&out->v[slot[h] - 1], d))
            h = (h + 1) & mask;
        if (!slot[h]) {
            if (w != i)
                out->v[w] = *d; /* w < i: the kept ones move up, in order */
            slot[h] = ++w;
            continue;
        }
        hr_decision *old = &out->v[slot[h] - 1];
        if ((d->mandatory && !old->mandatory) || action_rank(d) > action_rank(old))
            *old = *d;
    }
    out->n = w;
    free(slot);
}

/* snprintf(dst, len, "%s", src) without the format machinery. */
static void copy_name(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);
    if (n >= len)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Collect a decision; merge_decisions() makes the pairs unique when routing ends. */
static void decide(hr_decisions *out, const hr_decision *d)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 8;
        out->v = hr_realloc(out->v, out->cap * sizeof *out->v);
    }
    out->v[out->n++] = *d;
}

static void set_reason(hr_decision *d, const char *fmt, ...) HERALD_PRINTF(2, 3);

static void set_reason(hr_decision *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
}

/* The user's most specific rule for (event type, channel): fewest wildcards,
 * the later on a tie. */
static const hr_pref_rule *best_rule(const hr_user *u, const char *type, const char *channel)
{
    const hr_pref_rule *best = NULL;
    for (size_t i = 0; i < u->nrules; i++) {
        const hr_pref_rule *pr = &u->rules[i];
        if (strcmp(pr->channel, "*") && strcmp(pr->channel, channel))
            continue;
        if (fnmatch(pr->events, type, 0) != 0)
            continue;
        if (!best || pr->wildcards <= best->wildcards)
            best = pr;
    }
    return best;
}

static void decide_user(hr_decisions *out, const hr_route *rt, const hr_route_channel *c,
                        const hr_user *u, const herald_event *ev, long long now_ms)
{
    const char *sevname = hr_severity_name(ev->severity);
    hr_decision d;
    memset(&d, 0, sizeof d);
    d.channel = c->name;
    d.user = u->name;
    d.address = hr_user_address(u, c->address_key);
    d.mandatory = rt->mandatory;
    copy_name(d.route, sizeof d.route, rt->name);
    if (rt->mandatory) {
        d.action = HR_SEND;
        set_reason(&d, "mandatory route: sent whatever %s's preferences say", u->name);
        decide(out, &d);
        return;
    }
    const hr_pref_rule *pr = best_rule(u, ev->type, c->name);
    int chan_on = 1;
    const char *chan_set = NULL;
    for (size_t i = 0; i < u->nchans; i++)
        if (strcmp(u->chans[i].channel, c->name) == 0) {
            chan_on = u->chans[i].on;
            chan_set = u->chans[i].channel;
        }
    if (pr) {
        if (!pr->on) {
            d.action = HR_SKIP;
            set_reason(&d, "%s's rule '%s' on %s (%s) is off", u->name, pr->events, pr->channel,
                       pr->origin);
        } else if (pr->min_sev >= 0 && (int)ev->severity < pr->min_sev) {
            d.action = HR_SKIP;
            set_reason(&d, "%s is below %s's rule '%s' minimum %s (%s)", sevname, u->name,
                       pr->events, hr_severity_name((herald_severity)pr->min_sev), pr->origin);
        } else {
            d.action = HR_SEND;
            set_reason(&d, "%s's rule '%s' on %s (%s) is on", u->name, pr->events, pr->channel,
                       pr->origin);
        }
    } else if (!chan_on) {
        d.action = HR_SKIP;
        set_reason(&d, "%s switched channel %s off", u->name, chan_set);
    } else if (u->min_sev >= 0 && (int)ev->severity < u->min_sev) {
        d.action = HR_SKIP;
        set_reason(&d, "%s is below %s's minimum severity %s", sevname, u->name,
                   hr_severity_name((herald_severity)u->min_sev));
    } else {
        d.action = HR_SEND;
        if (chan_set || u->min_sev >= 0)
            set_reason(&d, "%s's defaults allow it", u->name);
        else
            set_reason(&d, "route %s sends it; %s has no preference against it", rt->name, u->name);
    }
    long long ends;
    if (d.action == HR_SEND && u->quiet != HR_QUIET_NONE && u->tz &&
        hr_quiet_at(u->tz, u->quiet_start, u->quiet_end, now_ms / 1000, &ends)) {
        char why[sizeof d.reason];
        snprintf(why, sizeof why, "%s", d.reason);
        if (u->quiet == HR_QUIET_DROP) {
            d.action = HR_SKIP;
            set_reason(&d, "%s's quiet hours (%02d:%02d-%02d:%02d %s) drop it", u->name,
                       u->quiet_start / 60, u->quiet_start % 60, u->quiet_end / 60,
                       u->quiet_end % 60, u->tz_name);
        } else {
            d.action = HR_DEFER;
            d.not_before = ends * 1000;
            set_reason(&d, "%s's quiet hours (%02d:%02d-%02d:%02d %s): held until they end",
                       u->name, u->quiet_start / 60, u->quiet_start % 60, u->quiet_end / 60,
                       u->quiet_end % 60, u->tz_name);
        }
    }
    decide(out, &d);
}

static int allowed(const hr_route *rt, const char *channel)
{
    if (!rt->allow)
        return 1;
    for (size_t i = 0; i < rt->nallow; i++)
        if (strcmp(rt->allow[i], channel) == 0)
            return 1;
    return 0;
}

/* A user reached by a route: on every addressed channel the route allows and
 * the user has an address for. */
static void reach_user(hr_decisions *out, const hr_router *r, const hr_route *rt, const hr_user *u,
                       const herald_event *ev, long long now_ms)
{
    if (ev->user && strcmp(ev->user, u->name) != 0)
        return; /* a single-addressee event: nobody else */
    int any = 0;
    for (size_t i = 0; i < r->nchannels; i++) {
        const hr_route_channel *c = &r->channels[i];
        if (!c->addressed || !allowed(rt, c->name) || !hr_user_address(u, c->address_key))
            continue;
        any = 1;
        decide_user(out, rt, c, u, ev, now_ms);
    }
    if (!any)
        note(out, "%s: %s has no address on any channel the route allows", rt->name, u->name);
}

static void apply_route(hr_decisions *out, const hr_router *r, const hr_directory *dir,
                        const hr_route *rt, const herald_event *ev, long long now_ms)
{
    for (size_t i = 0; i < rt->ntargets; i++) {
        const hr_target *t = &rt->targets[i];
        if (t->kind == HR_T_CHANNEL) {
            hr_decision d;
            memset(&d, 0, sizeof d);
            const hr_route_channel *c = router_channel(r, t->name);
            if (!c)
                continue;
            d.channel = c->name;
            d.mandatory = rt->mandatory;
            copy_name(d.route, sizeof d.route, rt->name);
            if (ev->user) {
                d.action = HR_SKIP;
                set_reason(&d, "the event is addressed to %s only", ev->user);
            } else {
                d.action = HR_SEND;
                set_reason(&d, "route %s (%s) names channel %s", rt->name, rt->origin, c->name);
            }
            decide(out, &d);
        } else if (t->kind == HR_T_USER) {
            const hr_user *u = t->at < dir->nusers && !strcmp(dir->users[t->at].name, t->name)
                                   ? &dir->users[t->at] : hr_directory_user(dir, t->name);
            if (u)
                reach_user(out, r, rt, u, ev, now_ms);
            else if (ev->tenant && strcmp(ev->tenant, "default") != 0)
                note(out, "%s: tenant %s has no user %s", rt->name, ev->tenant, t->name);
            else
                note(out, "%s: user %s no longer exists", rt->name, t->name);
        } else {
            const hr_group *g = t->at < dir->ngroups && !strcmp(dir->groups[t->at].name, t->name)
                                    ? &dir->groups[t->at] : hr_directory_group(dir, t->name);
            for (size_t k = 0; g && k < g->n; k++)
                reach_user(out, r, rt, &dir->users[g->members[k]], ev, now_ms);
            if (!g && ev->tenant && strcmp(ev->tenant, "default") != 0)
                note(out, "%s: tenant %s has no group @%s", rt->name, ev->tenant, t->name);
            else if (!g)
                note(out, "%s: group @%s no longer exists", rt->name, t->name);
        }
    }
}

void hr_route_event(const hr_router *r, const hr_directory *dir, const herald_event *ev,
                    long long now_ms, const hr_route_state *state, hr_decisions *out)
{
    memset(out, 0, sizeof *out);
    if (!r->configured) {
        /* No routes: every configured channel hears every event (herald's default). */
        for (size_t i = 0; i < r->nchannels; i++) {
            hr_decision d;
            memset(&d, 0, sizeof d);
            d.channel = r->channels[i].name;
            d.action = HR_SEND;
            snprintf(d.route, sizeof d.route, "(no routes)");
            set_reason(&d, "no routes are configured: every channel gets every event");
            decide(out, &d);
        }
        merge_decisions(out);
        return;
    }
    size_t matched = 0;
    for (size_t i = 0; i < r->nroutes; i++) {
        const hr_route *rt = &r->routes[i];
        if (!route_matches(rt, ev))
            continue;
        matched++;
        if (rt->dedup_ms > 0 && state && state->seen) {
            char key[512];
            snprintf(key, sizeof key, "%s\x1f%s\x1f%s", ev->type, ev->title ? ev->title : "",
                     ev->idempotency_key ? ev->idempotency_key : "");
            if (state->seen(state->ctx, rt->name, key, rt->dedup_ms, now_ms)) {
                note(out, "%s (%s): matched, but the same event was routed within its "
                     "dedup_window: not sent again", rt->name, rt->origin);
                if (rt->final)
                    break;
                continue;
            }
        }
        if (rt->rate_n > 0 && state && state->take &&
            !state->take(state->ctx, rt->name, rt->rate_n, rt->rate_ms, now_ms)) {
            note(out, "%s (%s): matched, but over its rate_limit: dropped and counted", rt->name,
                 rt->origin);
            if (rt->final)
                break;
            continue;
        }
        note(out, "%s (%s): matched%s%s", rt->name, rt->origin, rt->mandatory ? ", mandatory" : "",
             rt->final ? ", final: later routes not considered" : "");
        apply_route(out, r, dir, rt, ev, now_ms);
        if (rt->final)
            break;
    }
    if (!matched && r->fallback.ntargets) {
        note(out, "no route matched: fallback (%s)", r->fallback.origin);
        apply_route(out, r, dir, &r->fallback, ev, now_ms);
    } else if (!matched) {
        note(out, "no route matched and there is no fallback: nobody is notified");
    }
    if (ev->user && !hr_directory_user(dir, ev->user))
        note(out, "the event is addressed to %s, who is not a known user", ev->user);
    merge_decisions(out);
}

void hr_decisions_free(hr_decisions *d)
{
    free(d->v);
    for (size_t i = 0; i < d->nnotes; i++)
        free(d->notes[i]);
    free(d->notes);
    memset(d, 0, sizeof *d);
}

static const char *action_name(hr_action a)
{
    return a == HR_SEND ? "send" : a == HR_DEFER ? "defer" : "skip";
}

char *hr_decisions_json(const hr_decisions *d)
{
    json_t *routes = json_array(), *list = json_array();
    for (size_t i = 0; i < d->nnotes; i++)
        json_array_append_new(routes, json_string(d->notes[i]));
    for (size_t i = 0; i < d->n; i++) {
        const hr_decision *x = &d->v[i];
        json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:s}", "channel", x->channel, "user",
                              x->user ? json_string(x->user) : json_null(), "action",
                              action_name(x->action), "route", x->route, "reason", x->reason);
        if (x->action == HR_DEFER) {
            char ts[32];
            hr_rfc3339(x->not_before, ts, sizeof ts);
            json_object_set_new(o, "not_before", json_string(ts));
        }
        if (x->mandatory)
            json_object_set_new(o, "mandatory", json_true());
        json_array_append_new(list, o);
    }
    json_t *top = json_pack("{s:o, s:o}", "routes", routes, "decisions", list);
    char *s = json_dumps(top, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(top);
    char *copy = hr_strdup(s ? s : "{}");
    free(s);
    return copy;
}

/* ---- run-time users and preferences (the store) over the config's ---- */

static hr_user *user_add(hr_directory *d, const char *name, const char *origin)
{
    d->users = hr_realloc(d->users, (d->nusers + 1) * sizeof *d->users);
    hr_user *u = &d->users[d->nusers++];
    memset(u, 0, sizeof *u);
    u->name = hr_strdup(name);
    u->origin = hr_strdup(origin);
    u->min_sev = -1;
    index_user(d);
    return u;
}

static void user_set_addr(hr_user *u, const char *key, const char *value)
{
    if (hr_address_is_secret(key))
        hr_secret_add(value);
    for (size_t i = 0; i < u->naddr; i++)
        if (strcmp(u->addr[i].name, key) == 0) {
            free(u->addr[i].value);
            u->addr[i].value = hr_strdup(value);
            return;
        }
    u->addr = hr_realloc(u->addr, (u->naddr + 1) * sizeof *u->addr);
    u->addr[u->naddr].name = hr_strdup(key);
    u->addr[u->naddr++].value = hr_strdup(value);
}

static void user_set_chan(hr_user *u, const char *channel, int on)
{
    for (size_t i = 0; i < u->nchans; i++)
        if (strcmp(u->chans[i].channel, channel) == 0) {
            u->chans[i].on = on;
            return;
        }
    u->chans = hr_realloc(u->chans, (u->nchans + 1) * sizeof *u->chans);
    u->chans[u->nchans].channel = hr_strdup(channel);
    u->chans[u->nchans++].on = on;
}

/* A run-time rule replaces a config rule for the same (glob, channel) and
 * comes after every config rule: on a specificity tie it wins. */
static void user_set_rule(hr_user *u, const char *events, const char *channel, const char *value)
{
    for (size_t i = 0; i < u->nrules; i++) {
        hr_pref_rule *pr = &u->rules[i];
        if (strcmp(pr->events, events) || strcmp(pr->channel, channel))
            continue;
        free(pr->events);
        free(pr->channel);
        free(pr->origin);
        memmove(pr, pr + 1, (u->nrules - i - 1) * sizeof *pr);
        u->nrules--;
        break;
    }
    u->rules = hr_realloc(u->rules, (u->nrules + 1) * sizeof *u->rules);
    hr_pref_rule *pr = &u->rules[u->nrules++];
    pr->events = hr_strdup(events);
    pr->channel = hr_strdup(channel);
    pr->on = strncmp(value, "on", 2) == 0;
    pr->min_sev = value[2] == ':' ? severity_of(value + 3) : -1;
    pr->wildcards = count_wildcards(events) + (strcmp(channel, "*") == 0);
    pr->origin = hr_strdup("run time");
}

static void user_set_quiet(hr_user *u, const char *value)
{
    hr_tz_free(u->tz);
    free(u->tz_name);
    u->tz = NULL;
    u->tz_name = NULL;
    u->quiet = HR_QUIET_NONE;
    char hours[32], tz[128], action[16], why[256];
    if (strcmp(value, "off") == 0 ||
        sscanf(value, "%31s %127s %15s", hours, tz, action) != 3 ||
        hr_quiet_parse(hours, &u->quiet_start, &u->quiet_end, why, sizeof why) != 0)
        return;
    if (!(u->tz = hr_tz_load(tz, why, sizeof why))) {
        hr_log(HERALD_LOG_WARNING, "user %s: quiet hours ignored: %s", u->name, why);
        return;
    }
    u->tz_name = hr_strdup(tz);
    u->quiet = strcmp(action, "drop") == 0 ? HR_QUIET_DROP : HR_QUIET_DEFER;
}

/* Reading the store's rows: sealed addresses (credentials) are opened with
 * the key file, found on first need. */
typedef struct merge_ctx {
    hr_directory *d;
    const hr_config *cfg;
    hr_store *s;
    const char *tenant;
    hr_secretbox *box;
    int box_tried;
} merge_ctx;

static void merge_row(void *ctx, const char *what, const char *a, const char *b, const char *c,
                      const char *v)
{
    merge_ctx *m = ctx;
    hr_directory *d = m->d;
    if (!what || !a)
        return;
    if (!strcmp(what, "user")) {
        if (!hr_directory_user(d, a))
            user_add(d, a, "run time");
        return;
    }
    if (!strcmp(what, "group")) {
        hr_user *member = b ? hr_directory_user(d, b) : NULL;
        if (member)
            group_add(group_get(d, a, "run time"), (size_t)(member - d->users));
        return;
    }
    hr_user *u = hr_directory_user(d, a);
    if (!u || !b)
        return; /* preferences of a user removed from the config: kept, unused */
    if (!c || !v)
        return;
    if (!strcmp(b, "addr") && hr_secretbox_is_sealed(v)) {
        char err[512];
        if (!m->box_tried) {
            m->box_tried = 1;
            char *path = hr_secretbox_config_path(m->cfg, hr_store_path(m->s));
            m->box = hr_secretbox_open(path, 0, err, sizeof err);
            free(path);
            if (!m->box)
                hr_log(HERALD_LOG_ERROR, "users' sealed addresses cannot be opened: %s", err);
        }
        char *ctxname = hr_address_seal_context(m->tenant, a, c);
        char *plain = m->box ? hr_secretbox_open_value(m->box, v, ctxname, err, sizeof err) : NULL;
        free(ctxname);
        if (plain)
            user_set_addr(u, c, plain);
        else if (m->box)
            hr_log(HERALD_LOG_ERROR, "user %s: address %s: %s", a, c, err);
        hr_secretbox_free_value(plain);
    } else if (!strcmp(b, "addr")) {
        user_set_addr(u, c, v);
    } else if (!strcmp(b, "default") && !strcmp(c, "min_severity")) {
        u->min_sev = severity_of(v);
    } else if (!strcmp(b, "channel")) {
        user_set_chan(u, c, strcmp(v, "on") == 0);
    } else if (!strcmp(b, "rule")) {
        const char *sep = strchr(c, '\x1f');
        if (sep) {
            char *glob = hr_strndup(c, (size_t)(sep - c));
            user_set_rule(u, glob, sep + 1, v);
            free(glob);
        }
    } else if (!strcmp(b, "quiet")) {
        user_set_quiet(u, v);
    }
}

/* Group rows go second, once every user row is in. */
static void merge_group_row(void *ctx, const char *what, const char *a, const char *b,
                            const char *c, const char *v)
{
    hr_directory *d = ((merge_ctx *)ctx)->d;
    if (what && !strcmp(what, "group") && a && b && hr_directory_user(d, b))
        merge_row(ctx, what, a, b, c, v);
}

static void merge_user_row(void *ctx, const char *what, const char *a, const char *b,
                           const char *c, const char *v)
{
    if (what && strcmp(what, "group") != 0)
        merge_row(ctx, what, a, b, c, v);
}

herald_status hr_directory_merge_store(hr_directory *d, const hr_config *cfg, hr_store *s,
                                       const char *tenant, char *err, size_t errlen)
{
    merge_ctx m = {.d = d, .cfg = cfg, .s = s, .tenant = tenant};
    herald_status st = HERALD_OK;
    if (hr_store_directory_each(s, tenant, merge_user_row, &m) != HERALD_OK ||
        hr_store_directory_each(s, tenant, merge_group_row, &m) != HERALD_OK) {
        snprintf(err, errlen, "cannot read users and preferences: %s", hr_store_error(s));
        st = HERALD_E_IO;
    }
    hr_secretbox_close(m.box);
    return st;
}

herald_status hr_directory_load(hr_directory **out, const hr_config *cfg, hr_store *s,
                                const char *tenant, char *err, size_t errlen)
{
    hr_directory *d = hr_directory_new();
    herald_status st = HERALD_OK;
    if (!tenant || !strcmp(tenant, "default"))
        st = hr_directory_from_config(d, cfg, err, errlen);
    if (st == HERALD_OK && s)
        st = hr_directory_merge_store(d, cfg, s, tenant, err, errlen);
    if (st != HERALD_OK) {
        hr_directory_free(d);
        d = NULL;
    }
    *out = d;
    return st;
}

/* Every other tenant's directory, from the store. */
static herald_status tenants_load(hr_routing *r, const hr_config *cfg, hr_store *s, char *err,
                                  size_t errlen)
{
    r->empty = hr_directory_new();
    if (!s)
        return HERALD_OK;
    if (hr_store_directory_tenants(s, &r->tenants) != HERALD_OK) {
        snprintf(err, errlen, "cannot read users and preferences: %s", hr_store_error(s));
        return HERALD_E_IO;
    }
    while (r->tenants[r->ntenants])
        r->ntenants++;
    r->tdirs = hr_calloc(r->ntenants + 1, sizeof *r->tdirs);
    for (size_t i = 0; i < r->ntenants; i++) {
        herald_status st = hr_directory_load(&r->tdirs[i], cfg, s, r->tenants[i], err, errlen);
        if (st != HERALD_OK)
            return st;
    }
    return HERALD_OK;
}

const hr_directory *hr_routing_dir(const hr_routing *r, const char *tenant)
{
    if (!tenant || !strcmp(tenant, "default"))
        return r->dir;
    size_t lo = 0, hi = r->ntenants;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->tenants[mid], tenant);
        if (c == 0)
            return r->tdirs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return r->empty;
}

herald_status hr_routing_load(hr_routing **out, const hr_config *cfg, hr_loader *l, hr_store *s,
                              char *err, size_t errlen)
{
    hr_routing *r = hr_calloc(1, sizeof *r);
    *out = NULL;
    herald_status st = hr_directory_load(&r->dir, cfg, s, NULL, err, errlen);
    if (st == HERALD_OK)
        st = hr_router_build(&r->router, cfg, l, r->dir, err, errlen);
    if (st == HERALD_OK)
        st = tenants_load(r, cfg, s, err, errlen);
    if (st == HERALD_OK && s)
        st = hr_subs_load(s, &r->subs, err, errlen);
    if (st != HERALD_OK) {
        hr_routing_free(r);
        return st;
    }
    *out = r;
    return HERALD_OK;
}

void hr_routing_free(hr_routing *r)
{
    if (!r)
        return;
    hr_router_free(r->router);
    hr_directory_free(r->dir);
    for (size_t i = 0; i < r->ntenants; i++)
        hr_directory_free(r->tdirs[i]);
    free(r->tdirs);
    hr_strv_free(r->tenants);
    hr_directory_free(r->empty);
    hr_subs_free(r->subs);
    free(r);
}
