/* config.c - reading herald.conf (libconfig) and checking it before any plugin sees it. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "internal.h"

#define SECRET_FILE_MAX (64 * 1024)

/* Every top-level setting herald knows; anything else is a typo. Later
 * subsystems (routing, users, http) read theirs from the same file. */
static const char *const known_top[] = {
    "database", "plugin_path", "socket", "socket_mode", "socket_group", "channels", "routes",
    "fallback", "users", "groups", "http", "retry", "templates", "limits", "log_level",
    "idempotency_window", "secret_key", "outbound", "hooks", "retention", NULL,
};

/* Channel entry keys that belong to herald, not to the plugin. */
static const char *const host_channel_keys[] = {"name", "plugin", "retry", "max_concurrent",
                                                "max_rate", "address", "deny", "allow", NULL};

static const char *const known_retry[] = {"schedule", "max_attempts", "max_age", "jitter",
                                          "disable_after", NULL};

#define DEFAULT_MAX_CONCURRENT 32
#define DEFAULT_IDEMPOTENCY_WINDOW_MS (24LL * 3600 * 1000)
#define DEFAULT_RETENTION_MS (90LL * 86400 * 1000)

static const char *const known_limits[] = {"max_title", "max_body", "max_fields",
                                           "max_field_value", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

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
        int n_ = snprintf(err, errlen, "%s:%u: ", src_file((setting), c->path),        \
                          config_setting_source_line(setting));                        \
        if (n_ > 0 && (size_t)n_ < errlen)                                             \
            snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                      \
        goto fail;                                                                     \
    } while (0)

static int valid_channel_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

hr_config *hr_config_empty(void)
{
    hr_config *c = hr_calloc(1, sizeof *c);
    c->limits = hr_default_limits;
    c->retry = hr_default_retry;
    c->idempotency_window_ms = DEFAULT_IDEMPOTENCY_WINDOW_MS;
    c->retention_ms = DEFAULT_RETENTION_MS;
    c->socket_mode = 0660;
    c->socket_gid = -1;
    hr_policy_init(&c->outbound);
    return c;
}

static int get_size_limit(config_setting_t *g, const char *name, size_t *out)
{
    config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 1;
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return 0;
    long long v = config_setting_get_int64(s);
    if (v < 1 || v > 64LL * 1024 * 1024)
        return 0;
    *out = (size_t)v;
    return 1;
}

/* A duration given as a string with a unit ("5m") or an integer of seconds. */
static int get_duration(config_setting_t *s, long long *ms)
{
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        long long v = config_setting_get_int64(s);
        if (v < 0 || v > 365LL * 86400)
            return 0;
        *ms = v * 1000;
        return 1;
    }
    const char *str = config_setting_get_string(s);
    return str && hr_parse_duration(str, ms) == HERALD_OK;
}

/* Parse a retry group over `base` into out; errors are "file:line: ...". */
static herald_status parse_retry(config_setting_t *g, const char *path, const hr_retry *base,
                                 hr_retry *out, char *err, size_t errlen)
{
    struct { const char *path; } cbox = {path}, *c = &cbox;
    *out = *base;
    if (!config_setting_is_group(g))
        FAIL_AT(g, "'retry' must be a group: retry = { schedule = [\"5s\", \"5m\"]; "
                "max_attempts = 8; };");
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        if (!in_list(known_retry, config_setting_name(m)))
            FAIL_AT(m, "unknown retry setting '%s'; known: schedule, max_attempts, max_age, "
                    "jitter, disable_after", config_setting_name(m));
    }
    config_setting_t *m;
    if ((m = config_setting_get_member(g, "schedule"))) {
        int n = config_setting_length(m);
        if ((!config_setting_is_array(m) && !config_setting_is_list(m)) || n < 1 ||
            n > HR_RETRY_MAX_STEPS)
            FAIL_AT(m, "retry schedule must be a list of 1 to %d durations, e.g. [\"5s\", "
                    "\"5m\", \"1h\"]", HR_RETRY_MAX_STEPS);
        for (int k = 0; k < n; k++)
            if (!get_duration(config_setting_get_elem(m, (unsigned)k), &out->schedule[k]))
                FAIL_AT(m, "retry schedule item %d is not a duration like \"30s\", \"5m\" or "
                        "\"2h\"", k + 1);
        out->n = (size_t)n;
    }
    if ((m = config_setting_get_member(g, "max_attempts"))) {
        int t = config_setting_type(m);
        long long v = config_setting_get_int64(m);
        if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || v < 1 || v > 1000)
            FAIL_AT(m, "max_attempts must be an integer from 1 to 1000");
        out->max_attempts = (int)v;
    }
    if ((m = config_setting_get_member(g, "max_age")) && !get_duration(m, &out->max_age_ms))
        FAIL_AT(m, "max_age must be a duration like \"3d\" or \"12h\"");
    if ((m = config_setting_get_member(g, "jitter"))) {
        double v = config_setting_type(m) == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                   : config_setting_type(m) == CONFIG_TYPE_INT ? (double)config_setting_get_int(m)
                                                                : -1;
        if (v < 0 || v > 1)
            FAIL_AT(m, "jitter must be a number from 0 to 1, e.g. 0.2");
        out->jitter = v;
    }
    if ((m = config_setting_get_member(g, "disable_after"))) {
        int t = config_setting_type(m);
        long long v = config_setting_get_int64(m);
        if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || v < 0 || v > 100000)
            FAIL_AT(m, "disable_after must be an integer from 0 (never) to 100000");
        out->disable_after = (int)v;
    }
    return HERALD_OK;
fail:
    return HERALD_E_CONFIG;
}

/* Add the addresses or CIDR blocks of list (`what` names it in messages) to p. */
static herald_status parse_cidrs(config_setting_t *list, const char *path, const char *what,
                                 int allow, hr_policy *p, char *err, size_t errlen)
{
    struct { const char *path; } cbox = {path}, *c = &cbox;
    int t = config_setting_type(list);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_STRING)
        FAIL_AT(list, "%s must be a list of addresses or CIDR blocks, e.g. %s = [\"10.0.0.0/8\", "
                "\"fd00::/8\"];", what, config_setting_name(list));
    int n = t == CONFIG_TYPE_STRING ? 1 : config_setting_length(list);
    for (int k = 0; k < n; k++) {
        config_setting_t *it = t == CONFIG_TYPE_STRING ? list
                                                       : config_setting_get_elem(list, (unsigned)k);
        const char *str = config_setting_get_string(it);
        hr_cidr net;
        char why[300];
        if (!str)
            FAIL_AT(it, "%s item %d must be a string such as \"10.0.0.0/8\"", what, k + 1);
        if (hr_cidr_parse(str, &net, why, sizeof why) != HERALD_OK)
            FAIL_AT(it, "%s item %d: %s", what, k + 1, why);
        char text[64];
        hr_cidr_format(&net, text, sizeof text);
        char *origin = hr_asprintf("%s %s at %s:%u", allow ? "allow" : "deny", text,
                                   src_file(it, path), config_setting_source_line(it));
        hr_policy_add(p, allow, &net, origin);
        free(origin);
    }
    return HERALD_OK;
fail:
    return HERALD_E_CONFIG;
}

static herald_status parse_outbound(config_setting_t *g, const char *path, hr_policy *p, char *err,
                                    size_t errlen)
{
    struct { const char *path; } cbox = {path}, *c = &cbox;
    if (!config_setting_is_group(g))
        FAIL_AT(g, "'outbound' must be a group: outbound = { deny = [\"10.0.0.0/8\"]; allow = "
                "[\"10.1.2.0/24\"]; };");
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        if (strcmp(name, "deny") != 0 && strcmp(name, "allow") != 0)
            FAIL_AT(m, "unknown outbound setting '%s'; known: deny, allow", name);
        if (parse_cidrs(m, path, !strcmp(name, "deny") ? "outbound.deny" : "outbound.allow",
                        !strcmp(name, "allow"), p, err, errlen) != HERALD_OK)
            return HERALD_E_CONFIG;
    }
    return HERALD_OK;
fail:
    return HERALD_E_CONFIG;
}

herald_status hr_config_load(const char *path, hr_config **out, char *err, size_t errlen)
{
    hr_config *c = hr_config_empty();
    config_t *cfg = hr_calloc(1, sizeof *cfg);
    config_init(cfg);
    c->cfg = cfg;
    c->path = hr_strdup(path);

    if (!config_read_file(cfg, path)) {
        if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "cannot read config file %s: %s; create it or pass -c FILE",
                     path, strerror(errno));
        else
            snprintf(err, errlen, "%s:%d: %s", config_error_file(cfg) ? config_error_file(cfg) : path,
                     config_error_line(cfg), config_error_text(cfg));
        hr_config_free(c);
        return HERALD_E_CONFIG;
    }

    config_setting_t *root = config_root_setting(cfg);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        if (!in_list(known_top, config_setting_name(s)))
            FAIL_AT(s, "unknown setting '%s'; known: database, secret_key, plugin_path, socket, "
                    "socket_mode, socket_group, log_level, channels, routes, fallback, users, "
                    "groups, templates, limits, retry, idempotency_window, retention, outbound, "
                    "http, hooks",
                    config_setting_name(s));
    }

    const char *str;
    config_setting_t *s;
    if ((s = config_setting_get_member(root, "database"))) {
        if (!(str = config_setting_get_string(s)))
            FAIL_AT(s, "'database' must be a string (a file path)");
        c->database = hr_strdup(str);
    }
    if ((s = config_setting_get_member(root, "secret_key"))) {
        if (!(str = config_setting_get_string(s)) || !*str)
            FAIL_AT(s, "'secret_key' must be a string (the path of the key file sealing "
                    "secrets in the database), e.g. secret_key = \"/var/lib/herald/secret.key\"");
        c->secret_key = hr_strdup(str);
    }
    if ((s = config_setting_get_member(root, "socket"))) {
        if (!(str = config_setting_get_string(s)))
            FAIL_AT(s, "'socket' must be a string (a file path)");
        c->socket = hr_strdup(str);
    }
    if ((s = config_setting_get_member(root, "socket_mode"))) {
        char *end = NULL;
        long mode = (str = config_setting_get_string(s)) ? strtol(str, &end, 8) : -1;
        if (!str || !*str || *end || mode < 0 || mode > 0777 || (mode & 0600) != 0600)
            FAIL_AT(s, "'socket_mode' must be an octal mode string from \"0600\" to \"0777\" "
                    "that lets the owner read and write, e.g. socket_mode = \"0660\"");
        c->socket_mode = (unsigned)mode;
    }
    if ((s = config_setting_get_member(root, "socket_group"))) {
        struct group *gr = (str = config_setting_get_string(s)) && *str ? getgrnam(str) : NULL;
        if (!str || !*str)
            FAIL_AT(s, "'socket_group' must be a group name, e.g. socket_group = \"herald\"");
        if (!gr)
            FAIL_AT(s, "no group '%s' on this system; create it (groupadd %s) or fix "
                    "socket_group", str, str);
        c->socket_gid = (long)gr->gr_gid;
    }
    if ((s = config_setting_get_member(root, "retry")) &&
        parse_retry(s, path, &hr_default_retry, &c->retry, err, errlen) != HERALD_OK)
        goto fail;
    if ((s = config_setting_get_member(root, "idempotency_window")) &&
        !get_duration(s, &c->idempotency_window_ms))
        FAIL_AT(s, "idempotency_window must be a duration like \"24h\"");
    if ((s = config_setting_get_member(root, "retention")) && !get_duration(s, &c->retention_ms))
        FAIL_AT(s, "retention must be a duration like \"90d\" (at most \"365d\"), or 0 to keep "
                "every event");
    if (c->retention_ms && c->retention_ms < c->idempotency_window_ms)
        FAIL_AT(s ? s : config_setting_get_member(root, "idempotency_window"),
                "retention (%llds) is shorter than idempotency_window (%llds): a repeated key "
                "would go unnoticed once its event is deleted; raise retention",
                c->retention_ms / 1000, c->idempotency_window_ms / 1000);
    if ((s = config_setting_get_member(root, "plugin_path"))) {
        if (!(str = config_setting_get_string(s)))
            FAIL_AT(s, "'plugin_path' must be a string of directories separated by ':'");
        c->plugin_path = hr_strdup(str);
    }
    if ((s = config_setting_get_member(root, "limits"))) {
        if (!config_setting_is_group(s))
            FAIL_AT(s, "'limits' must be a group: limits = { max_body = 65536; };");
        for (int i = 0; i < config_setting_length(s); i++) {
            config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
            if (!in_list(known_limits, config_setting_name(m)))
                FAIL_AT(m, "unknown limit '%s'; known: max_title, max_body, max_fields, "
                        "max_field_value", config_setting_name(m));
        }
        if (!get_size_limit(s, "max_title", &c->limits.max_title) ||
            !get_size_limit(s, "max_body", &c->limits.max_body) ||
            !get_size_limit(s, "max_fields", &c->limits.max_fields) ||
            !get_size_limit(s, "max_field_value", &c->limits.max_field_value))
            FAIL_AT(s, "limits must be integers from 1 to 67108864");
    }

    if ((s = config_setting_get_member(root, "outbound")) &&
        parse_outbound(s, path, &c->outbound, err, errlen) != HERALD_OK)
        goto fail;

    c->routed = config_setting_get_member(root, "routes") != NULL ||
                config_setting_get_member(root, "fallback") != NULL;
    config_setting_t *chs = config_setting_get_member(root, "channels");
    if (chs) {
        if (!config_setting_is_list(chs) && !config_setting_is_array(chs))
            FAIL_AT(chs, "'channels' must be a list: channels = ( { name = \"x\"; plugin = "
                    "\"webhook\"; ... } );");
        int n = config_setting_length(chs);
        c->channels = hr_calloc((size_t)n, sizeof *c->channels);
        for (int i = 0; i < n; i++) {
            config_setting_t *e = config_setting_get_elem(chs, (unsigned)i);
            if (!config_setting_is_group(e))
                FAIL_AT(e, "each channel must be a group { name = ...; plugin = ...; }");
            const char *name = NULL, *plugin = NULL, *url = NULL;
            config_setting_t *m;
            if (!(m = config_setting_get_member(e, "name")))
                FAIL_AT(e, "channel #%d has no name; add name = \"...\";", i + 1);
            if (!(name = config_setting_get_string(m)) || !valid_channel_name(name))
                FAIL_AT(m, "channel name must be a string of letters, digits, '-', '_' or '.'");
            if (hr_config_channel(c, name))
                FAIL_AT(m, "channel '%s' is defined twice; rename one", name);
            if ((m = config_setting_get_member(e, "plugin")) &&
                !(plugin = config_setting_get_string(m)))
                FAIL_AT(m, "channel '%s': plugin must be a string", name);
            if (!plugin) {
                if (!(m = config_setting_get_member(e, "url")))
                    FAIL_AT(e, "channel '%s' has neither plugin nor url; add plugin = \"webhook\"; "
                            "or url = \"json://host/path\";", name);
                if (!(url = config_setting_get_string(m)))
                    FAIL_AT(m, "channel '%s': url must be a string", name);
            }
            hr_channel_conf *cc = &c->channels[c->nchannels];
            cc->retry = c->retry;
            cc->max_concurrent = DEFAULT_MAX_CONCURRENT;
            if ((m = config_setting_get_member(e, "retry")) &&
                parse_retry(m, path, &c->retry, &cc->retry, err, errlen) != HERALD_OK)
                goto fail;
            if ((m = config_setting_get_member(e, "max_concurrent"))) {
                long long v = config_setting_get_int64(m);
                if (config_setting_type(m) != CONFIG_TYPE_INT || v < 1 || v > 10000)
                    FAIL_AT(m, "channel '%s': max_concurrent must be an integer from 1 to 10000",
                            name);
                cc->max_concurrent = (int)v;
            }
            if ((m = config_setting_get_member(e, "max_rate"))) {
                int t = config_setting_type(m);
                double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                           : t == CONFIG_TYPE_INT ? (double)config_setting_get_int(m)
                                                  : -1;
                if (v <= 0 || v > 1e6)
                    FAIL_AT(m, "channel '%s': max_rate must be a positive number of attempts "
                            "per second", name);
                cc->max_rate = v;
            }
            c->nchannels++;
            cc->name = hr_strdup(name);
            cc->plugin = hr_strdup(plugin);
            cc->url = hr_strdup(url);
            cc->origin = origin_of(e, path);
            cc->raw = e;
            hr_policy_copy(&cc->policy, &c->outbound);
            for (int k = 0; k < 2; k++) {
                const char *key = k ? "allow" : "deny";
                if (!(m = config_setting_get_member(e, key)))
                    continue;
                char *what = hr_asprintf("channel '%s': %s", name, key);
                herald_status pst = parse_cidrs(m, path, what, k, &cc->policy, err, errlen);
                free(what);
                if (pst != HERALD_OK)
                    goto fail;
                cc->own_policy = 1;
            }
        }
    }
    hr_policy_install(&c->outbound);
    *out = c;
    return HERALD_OK;
fail:
    hr_config_free(c);
    return HERALD_E_CONFIG;
}

hr_channel_conf *hr_config_channel(hr_config *c, const char *name)
{
    for (size_t i = 0; i < c->nchannels; i++)
        if (strcmp(c->channels[i].name, name) == 0)
            return &c->channels[i];
    return NULL;
}

void hr_config_free(hr_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nchannels; i++) {
        free(c->channels[i].name);
        free(c->channels[i].plugin);
        free(c->channels[i].url);
        free(c->channels[i].origin);
        hr_settings_free(&c->channels[i].settings);
        hr_policy_free(&c->channels[i].policy);
    }
    free(c->channels);
    hr_policy_free(&c->outbound);
    if (c->cfg) {
        config_destroy(c->cfg);
        free(c->cfg);
    }
    free(c->path);
    free(c->database);
    free(c->secret_key);
    free(c->plugin_path);
    free(c->socket);
    free(c);
}

const char *hr_config_pick(const char *cli_path, int *explicit_)
{
    *explicit_ = 1;
    if (cli_path)
        return cli_path;
    const char *env = getenv("HERALD_CONFIG");
    if (env && *env)
        return env;
    *explicit_ = 0;
    return HERALD_SYSCONFDIR "/herald/herald.conf";
}

static const char *type_word(herald_setting_type t)
{
    switch (t) {
    case HERALD_SETTING_STRING: return "a string";
    case HERALD_SETTING_INT: return "an integer";
    case HERALD_SETTING_BOOL: return "true or false";
    case HERALD_SETTING_MAP: return "a group of name = \"value\" pairs";
    case HERALD_SETTING_LIST: return "a list of strings";
    }
    return "?";
}

static void known_names(const herald_setting_spec *spec, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (; spec && spec->name && o < len; spec++) {
        int n = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", spec->name);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

herald_status hr_config_channel_settings(const hr_channel_conf *cc, const char *plugin,
                                         const herald_setting_spec *spec, herald_settings *out,
                                         char *err, size_t errlen)
{
    config_setting_t *e = cc->raw;
    if (!e)
        return HERALD_OK;
    struct { const char *path; } cbox = {cc->origin}, *c = &cbox;
    for (int i = 0; i < config_setting_length(e); i++) {
        config_setting_t *m = config_setting_get_elem(e, (unsigned)i);
        const char *name = config_setting_name(m);
        if (in_list(host_channel_keys, name) || (cc->url && !strcmp(name, "url")))
            continue;
        const herald_setting_spec *sp = hr_spec_find(spec, name);
        int from_file = 0;
        size_t nlen = strlen(name);
        if (!sp && nlen > 5 && !strcmp(name + nlen - 5, "_file")) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(nlen - 5), name);
            sp = hr_spec_find(spec, base);
            if (sp && sp->type == HERALD_SETTING_STRING && (sp->flags & HERALD_SETTING_SECRET))
                from_file = 1;
            else
                sp = NULL;
        }
        if (!sp) {
            char known[512];
            known_names(spec, known, sizeof known);
            FAIL_AT(m, "channel '%s': unknown setting '%s' for plugin %s (known: %s)", cc->name,
                    name, plugin, known);
        }
        if (from_file && hr_settings_get(out, sp->name) &&
            config_setting_get_member(e, sp->name))
            FAIL_AT(m, "channel '%s': give either %s or %s, not both", cc->name, sp->name, name);
        int t = config_setting_type(m);
        hr_setting *v = NULL;
        switch (sp->type) {
        case HERALD_SETTING_STRING: {
            const char *str = config_setting_get_string(m);
            if (!str)
                FAIL_AT(m, "channel '%s': setting '%s' must be %s", cc->name, name,
                        type_word(sp->type));
            char *val;
            if (from_file) {
                char ferr[512];
                val = hr_read_file(str, 1, SECRET_FILE_MAX, ferr, sizeof ferr);
                if (!val)
                    FAIL_AT(m, "channel '%s': %s: %s", cc->name, name, ferr);
                val[strcspn(val, "\r\n")] = '\0'; /* one line; a trailing newline is common */
            } else {
                val = hr_strdup(str);
            }
            if (hr_has_ctl(val)) {
                free(val);
                FAIL_AT(m, "channel '%s': setting '%s' contains control characters", cc->name,
                        name);
            }
            v = hr_settings_add(out, sp->name, sp->type);
            v->str = val;
            break;
        }
        case HERALD_SETTING_INT: {
            if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
                FAIL_AT(m, "channel '%s': setting '%s' must be %s", cc->name, name,
                        type_word(sp->type));
            long long n = config_setting_get_int64(m);
            if (sp->min < sp->max && (n < sp->min || n > sp->max))
                FAIL_AT(m, "channel '%s': setting '%s' must be between %lld and %lld, not %lld",
                        cc->name, name, sp->min, sp->max, n);
            v = hr_settings_add(out, sp->name, sp->type);
            v->num = n;
            break;
        }
        case HERALD_SETTING_BOOL:
            if (t != CONFIG_TYPE_BOOL)
                FAIL_AT(m, "channel '%s': setting '%s' must be %s", cc->name, name,
                        type_word(sp->type));
            v = hr_settings_add(out, sp->name, sp->type);
            v->boolean = config_setting_get_bool(m);
            break;
        case HERALD_SETTING_MAP: {
            if (t != CONFIG_TYPE_GROUP)
                FAIL_AT(m, "channel '%s': setting '%s' must be %s", cc->name, name,
                        type_word(sp->type));
            int n = config_setting_length(m);
            for (int k = 0; k < n; k++) {
                config_setting_t *it = config_setting_get_elem(m, (unsigned)k);
                int it_type = config_setting_type(it);
                const char *str = config_setting_get_string(it);
                /* Numbers are accepted as their decimal text: priorities = { error = 8; }. */
                if (it_type != CONFIG_TYPE_INT && it_type != CONFIG_TYPE_INT64 &&
                    (!str || hr_has_ctl(str)))
                    FAIL_AT(it, "channel '%s': %s.%s must be a string without control "
                            "characters or an integer", cc->name, name,
                            config_setting_name(it));
            }
            v = hr_settings_add(out, sp->name, sp->type);
            v->keys = hr_calloc((size_t)n, sizeof *v->keys);
            v->vals = hr_calloc((size_t)n, sizeof *v->vals);
            for (int k = 0; k < n; k++) {
                config_setting_t *it = config_setting_get_elem(m, (unsigned)k);
                int it_type = config_setting_type(it);
                v->keys[k] = hr_strdup(config_setting_name(it));
                v->vals[k] = it_type == CONFIG_TYPE_INT || it_type == CONFIG_TYPE_INT64
                                 ? hr_asprintf("%lld", config_setting_get_int64(it))
                                 : hr_strdup(config_setting_get_string(it));
                v->n++;
            }
            break;
        }
        case HERALD_SETTING_LIST: {
            if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_STRING)
                FAIL_AT(m, "channel '%s': setting '%s' must be %s", cc->name, name,
                        type_word(sp->type));
            int n = t == CONFIG_TYPE_STRING ? 1 : config_setting_length(m);
            for (int k = 0; k < n && t != CONFIG_TYPE_STRING; k++) {
                config_setting_t *it = config_setting_get_elem(m, (unsigned)k);
                const char *str = config_setting_get_string(it);
                if (!str || hr_has_ctl(str))
                    FAIL_AT(it, "channel '%s': every item of %s must be a string without "
                            "control characters", cc->name, name);
            }
            v = hr_settings_add(out, sp->name, sp->type);
            v->vals = hr_calloc((size_t)n, sizeof *v->vals);
            for (int k = 0; k < n; k++) {
                const char *str = t == CONFIG_TYPE_STRING
                                      ? config_setting_get_string(m)
                                      : config_setting_get_string(
                                            config_setting_get_elem(m, (unsigned)k));
                v->vals[k] = hr_strdup(str);
                v->n++;
            }
            break;
        }
        }
        if (v) {
            v->origin = origin_of(m, cc->origin);
            v->secret = (sp->flags & HERALD_SETTING_SECRET) != 0;
            if (v->secret && v->str)
                hr_secret_add(v->str);
        }
    }
    return HERALD_OK;
fail:
    return HERALD_E_CONFIG;
}

static int mkdir_p(char *path, mode_t mode)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, mode);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -1;
}

char *hr_config_database(const hr_config *c, char *err, size_t errlen)
{
    if (c->database)
        return hr_strdup(c->database);
    /* The system queue when this user may write it (root, the herald user),
     * else a per-user queue so herald works on a fresh install for anyone. */
    const char *sysdir = HERALD_LOCALSTATEDIR "/lib/herald";
    if (access(sysdir, W_OK) == 0)
        return hr_asprintf("%s/herald.db", sysdir);
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char *dir;
    if (xdg && *xdg == '/')
        dir = hr_asprintf("%s/herald", xdg);
    else if (home && *home == '/')
        dir = hr_asprintf("%s/.local/state/herald", home);
    else {
        snprintf(err, errlen, "no database configured, %s is not writable and $HOME is not set; "
                 "set database = \"/path/herald.db\" in the config", sysdir);
        return NULL;
    }
    if (mkdir_p(dir, 0700) != 0) {
        snprintf(err, errlen, "cannot create %s: %s; set database in the config", dir,
                 strerror(errno));
        free(dir);
        return NULL;
    }
    char *path = hr_asprintf("%s/herald.db", dir);
    free(dir);
    return path;
}
