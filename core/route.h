/* route.h - routing: which (channel, recipient) pairs hear about an event, when, and why.
 *
 * Routing is a pure function of (router, directory, event, time, route state):
 * hr_route_event() reads nothing else and writes only its decisions, so it is
 * tested without a network, a store or a clock, and `herald route test`,
 * `herald explain` and delivery all show the same trail.
 *
 * PRECEDENCE for a user on an addressed channel, first that applies wins:
 *   1. a matching route with mandatory = true: sent, whatever the user says;
 *   2. the user's most specific matching rule (fewest wildcards in the event
 *      glob and channel; on a tie the later rule): on (at or above its
 *      min_severity) or off;
 *   3. the user's default: the channel switched on or off, min_severity;
 *   4. the route's default: sent.
 * Then quiet hours (not for mandatory routes) defer or drop what is sent. A
 * user narrows what routes allow, never widens it: preferences are consulted
 * only for the channels a matching route allows.
 */
#ifndef HERALD_ROUTE_H
#define HERALD_ROUTE_H

#include "internal.h"
#include "tz.h"

#define HR_NSEV 6

struct hr_store;

/* ---- the directory: users and groups (config and store merged) ---- */

typedef struct hr_pref_rule {
    char *events;  /* event-type glob */
    char *channel; /* channel name or "*" */
    int on;
    int min_sev;   /* -1: any */
    int wildcards; /* specificity: fewer is more specific */
    char *origin;  /* "file:line" or "store" */
} hr_pref_rule;

typedef struct hr_chan_pref {
    char *channel;
    int on;
} hr_chan_pref;

typedef enum hr_quiet_action { HR_QUIET_NONE = 0, HR_QUIET_DEFER, HR_QUIET_DROP } hr_quiet_action;

typedef struct hr_user {
    char *name;
    char *origin;            /* where it was declared: "file:line", or "store" */
    hr_field *addr;          /* address key -> address (email, gotify_token, ...) */
    size_t naddr;
    int min_sev;             /* user default; -1: any */
    hr_chan_pref *chans;     /* user default per channel; absent: on */
    size_t nchans;
    hr_pref_rule *rules;
    size_t nrules;
    hr_quiet_action quiet;
    int quiet_start, quiet_end; /* minutes after local midnight */
    char *tz_name;
    hr_tz *tz;
} hr_user;

typedef struct hr_group {
    char *name;
    char *origin;
    size_t *members; /* indexes into users */
    size_t n;
} hr_group;

typedef struct hr_directory {
    hr_user *users;
    size_t nusers;
    hr_group *groups;
    size_t ngroups;
    /* Users by name: open addressing, a slot holds a user's index + 1. Kept
     * up as users are added, read-only once the directory is built. */
    size_t *uslots;
    size_t ncap;
} hr_directory;

hr_directory *hr_directory_new(void);
void hr_directory_free(hr_directory *d);
hr_user *hr_directory_user(const hr_directory *d, const char *name);
hr_group *hr_directory_group(const hr_directory *d, const char *name);
const char *hr_user_address(const hr_user *u, const char *key);
/* Addresses that are credentials (..._token, ..._key, ..._secret, ..._password,
 * ..._webhook): registered as secrets, shown as ***. */
int hr_address_is_secret(const char *key);
/* What a credential address of a run-time user is sealed to, so it cannot be
 * moved to another key, user or tenant (tenant NULL: "default"); hr_malloc'd. */
char *hr_address_seal_context(const char *tenant, const char *user, const char *key);

/* Read `users` and `groups` of the config into d. Errors are "file:line: ...". */
herald_status hr_directory_from_config(hr_directory *d, const hr_config *cfg, char *err,
                                       size_t errlen);

/* ---- routes ---- */

typedef enum hr_fop { HR_F_EQ, HR_F_NE, HR_F_RE, HR_F_NRE } hr_fop;

typedef struct hr_fmatch {
    char *name, *value;
    hr_fop op;
    void *re; /* regex_t* for =~ and !~, anchored */
} hr_fmatch;

typedef enum hr_target_kind { HR_T_CHANNEL, HR_T_USER, HR_T_GROUP } hr_target_kind;

typedef struct hr_target {
    hr_target_kind kind;
    char *name; /* channel, user or group name (without '@') */
    size_t at;  /* user or group index when the router was built: a hint, checked by name */
} hr_target;

typedef struct hr_route {
    char *name;   /* given, or "route N" */
    char *origin; /* "file:line" */
    char **events;
    size_t nevents;
    unsigned sev_mask; /* bit per severity; all bits when unset */
    hr_fmatch *fields;
    size_t nfields;
    char **sources;
    size_t nsources;
    int any, invert, final, mandatory;
    hr_target *targets;
    size_t ntargets;
    char **allow; /* addressed channels users are reached on; NULL: all */
    size_t nallow;
    long long dedup_ms;
    int rate_n;
    long long rate_ms;
} hr_route;

/* A channel as routing sees it. */
typedef struct hr_route_channel {
    char *name;
    int addressed;     /* reaches users at their own address */
    char *address_key; /* which user address this channel uses, e.g. "email" */
} hr_route_channel;

typedef struct hr_router {
    hr_route *routes;
    size_t nroutes;
    hr_route fallback; /* its targets only; ntargets 0: none */
    int configured;    /* routes or fallback given: otherwise every channel gets everything */
    hr_route_channel *channels;
    size_t nchannels;
} hr_router;

/* Build the router from the config: channels (addressed when their plugin
 * says so, looked up with the loader; NULL loader: none is), routes and
 * fallback, checked against the channels and the directory. */
herald_status hr_router_build(hr_router **out, const hr_config *cfg, hr_loader *l,
                              const hr_directory *dir, char *err, size_t errlen);
void hr_router_free(hr_router *r);

/* Warnings about a valid config (a route after a final catch-all can never
 * match, ...): one line each, appended to *out (hr_malloc'd, may be NULL). */
void hr_router_lint(const hr_router *r, char **out);

/* ---- decisions ---- */

typedef enum hr_action { HR_SEND, HR_DEFER, HR_SKIP } hr_action;

typedef struct hr_decision {
    const char *channel; /* borrowed from the router */
    const char *user;    /* NULL for a broadcast channel; borrowed from the directory */
    const char *address; /* the user's address on the channel */
    hr_action action;
    long long not_before; /* HR_DEFER: when the quiet hours end (Unix ms) */
    int mandatory;
    char route[80];   /* the route that decided */
    char reason[200]; /* why, in words */
} hr_decision;

typedef struct hr_decisions {
    hr_decision *v;
    size_t n, cap;
    char **notes; /* route-level notes: matched, deduplicated, rate-limited */
    size_t nnotes;
} hr_decisions;

void hr_decisions_free(hr_decisions *d);
/* The trail as JSON text: {"routes":[...notes],"decisions":[{channel,user,action,...}]}. */
char *hr_decisions_json(const hr_decisions *d);

/* Route state kept outside the pure function (the store, or memory in tests).
 * seen(): 1 when key was recorded for route within window_ms before now
 * (and record it now when not); take(): 1 when the route may send one more
 * within its rate (n per period_ms), counting the drop otherwise. Either may
 * be NULL: no dedup, no rate limit. */
typedef struct hr_route_state {
    void *ctx;
    int (*seen)(void *ctx, const char *route, const char *key, long long window_ms, long long now);
    int (*take)(void *ctx, const char *route, int n, long long period_ms, long long now);
} hr_route_state;

void hr_route_event(const hr_router *r, const hr_directory *dir, const herald_event *ev,
                    long long now_ms, const hr_route_state *state, hr_decisions *out);

/* ---- routing as the programs hold it: router + directory ---- */

typedef struct hr_routing {
    hr_router *router;
    hr_directory *dir;    /* the default tenant's: the config's users and the store's */
    struct hr_subs *subs; /* webhook subscriptions (webhooks.h); NULL without a store */
    /* Every other tenant with users has its own directory, from the store only:
     * tenants[i] (sorted) owns tdirs[i]. */
    char **tenants;
    hr_directory **tdirs;
    size_t ntenants;
    hr_directory *empty; /* for a tenant without users */
} hr_routing;

/* Users and groups from the config, then the run-time ones of the store s
 * (may be NULL), then the router, then every other tenant's users and groups
 * from the store. Errors are one line, "file:line: ..." for the config.
 *
 * HOW CONFIG AND RUN TIME COMBINE: a user exists when the config declares it
 * or `herald user add` added it. Each run-time value replaces only the config
 * value with the same key, never anything else: an address by its name, the
 * default min_severity, a channel's default on/off, a rule by its (event glob,
 * channel) pair (and it then counts as later than every config rule), quiet
 * hours as a whole. Group memberships are the union of both. */
herald_status hr_routing_load(hr_routing **out, const hr_config *cfg, hr_loader *l,
                              struct hr_store *s, char *err, size_t errlen);
/* The store's run-time users, preferences and groups of tenant (NULL:
 * "default") over d's (as above). */
herald_status hr_directory_merge_store(hr_directory *d, const hr_config *cfg, struct hr_store *s,
                                       const char *tenant, char *err, size_t errlen);
/* A tenant's directory as it is now: for "default" (or NULL) the config's
 * users and groups with the store's over them; for any other tenant, the
 * store's of that tenant only. */
herald_status hr_directory_load(hr_directory **out, const hr_config *cfg, struct hr_store *s,
                                const char *tenant, char *err, size_t errlen);
/* The directory an event of tenant (NULL: "default") is routed with: a user
 * or group named by a route or by the event is looked up in its own tenant
 * only. Never NULL. */
const hr_directory *hr_routing_dir(const hr_routing *r, const char *tenant);
void hr_routing_free(hr_routing *r);

#endif
