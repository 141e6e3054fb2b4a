/* config.c - reading herald.conf (libconfig) and checking it before any plugin sees it. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "internal.h"

#define SECRET_FILE_MAX (64 * 1024)

/* Every top-level setting herald knows; anything else is a typo. Later
 * subsystems (routing, users, http) read theirs from the same file. */
static const char *const known_top[] = {
    "database", "plugin_path", "socket", "channels", "routes", "fallback", "users", "groups",
    "http", "retry", "templates", "limits", "log_level", NULL,
};

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
            FAIL_AT(s, "unknown setting '%s'; known: database, plugin_path, channels, limits, "
                    "routes, users, http, retry, templates", config_setting_name(s));
    }

    const char *str;
    config_setting_t *s;
    if ((s = config_setting_get_member(root, "database"))) {
        if (!(str = config_setting_get_string(s)))
            FAIL_AT(s, "'database' must be a string (a file path)");
        c->database = hr_strdup(str);
    }
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
            hr_channel_conf *cc = &c->channels[c->nchannels++];
            cc->name = hr_strdup(name);
            cc->plugin = hr_strdup(plugin);
            cc->url = hr_strdup(url);
            cc->origin = origin_of(e, path);
            cc->raw = e;
        }
    }
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
    }
    free(c->channels);
    if (c->cfg) {
        config_destroy(c->cfg);
        free(c->cfg);
    }
    free(c->path);
    free(c->database);
    free(c->plugin_path);
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
        if (!strcmp(name, "name") || !strcmp(name, "plugin") || (cc->url && !strcmp(name, "url")))
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
                const char *str = config_setting_get_string(it);
                if (!str || hr_has_ctl(str))
                    FAIL_AT(it, "channel '%s': %s.%s must be a string without control "
                            "characters", cc->name, name, config_setting_name(it));
            }
            v = hr_settings_add(out, sp->name, sp->type);
            v->keys = hr_calloc((size_t)n, sizeof *v->keys);
            v->vals = hr_calloc((size_t)n, sizeof *v->vals);
            for (int k = 0; k < n; k++) {
                config_setting_t *it = config_setting_get_elem(m, (unsigned)k);
                v->keys[k] = hr_strdup(config_setting_name(it));
                v->vals[k] = hr_strdup(config_setting_get_string(it));
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
