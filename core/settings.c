/* settings.c - a channel's typed settings, checked against the plugin's declared table. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

const herald_setting_spec *hr_spec_find(const herald_setting_spec *spec, const char *name)
{
    for (; spec && spec->name; spec++)
        if (strcmp(spec->name, name) == 0)
            return spec;
    return NULL;
}

hr_setting *hr_settings_get(const herald_settings *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

static void setting_clear(hr_setting *v)
{
    free(v->str);
    for (size_t k = 0; k < v->n; k++) {
        if (v->keys)
            free(v->keys[k]);
        free(v->vals[k]);
    }
    free(v->keys);
    free(v->vals);
    v->str = NULL;
    v->keys = v->vals = NULL;
    v->n = 0;
}

/* Returns the existing entry (reset) or a new one. */
hr_setting *hr_settings_add(herald_settings *s, const char *name, herald_setting_type type)
{
    hr_setting *v = hr_settings_get(s, name);
    if (v) {
        setting_clear(v);
        free(v->origin);
        v->origin = NULL;
    } else {
        s->v = hr_realloc(s->v, (s->n + 1) * sizeof *s->v);
        v = &s->v[s->n++];
        memset(v, 0, sizeof *v);
        v->name = hr_strdup(name);
    }
    v->type = type;
    return v;
}

void hr_settings_free(herald_settings *s)
{
    for (size_t i = 0; i < s->n; i++) {
        setting_clear(&s->v[i]);
        free(s->v[i].name);
        free(s->v[i].origin);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static herald_status parse_scalar(hr_setting *v, const herald_setting_spec *sp, const char *value,
                                  char *err, size_t errlen)
{
    switch (sp->type) {
    case HERALD_SETTING_STRING:
        v->str = hr_strdup(value);
        return HERALD_OK;
    case HERALD_SETTING_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(value, &end, 10);
        if (errno || end == value || *end) {
            snprintf(err, errlen, "setting '%s' must be an integer, not '%s'", sp->name, value);
            return HERALD_E_CONFIG;
        }
        if (sp->min < sp->max && (n < sp->min || n > sp->max)) {
            snprintf(err, errlen, "setting '%s' must be between %lld and %lld, not %lld", sp->name,
                     sp->min, sp->max, n);
            return HERALD_E_CONFIG;
        }
        v->num = n;
        return HERALD_OK;
    }
    case HERALD_SETTING_BOOL:
        if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1"))
            v->boolean = 1;
        else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0"))
            v->boolean = 0;
        else {
            snprintf(err, errlen, "setting '%s' must be true or false, not '%s'", sp->name, value);
            return HERALD_E_CONFIG;
        }
        return HERALD_OK;
    case HERALD_SETTING_MAP:
    case HERALD_SETTING_LIST:
        snprintf(err, errlen, "setting '%s' takes several values; plugin must use settings_put_item",
                 sp->name);
        return HERALD_E_PLUGIN;
    }
    snprintf(err, errlen, "setting '%s' has an unknown type", sp->name);
    return HERALD_E_PLUGIN;
}

herald_status hr_settings_put(herald_settings_builder *b, const char *name, const char *value)
{
    const herald_setting_spec *sp = hr_spec_find(b->spec, name);
    if (!sp) {
        snprintf(b->err, sizeof b->err, "plugin %s declares no setting '%s'", b->plugin, name);
        return HERALD_E_PLUGIN;
    }
    if (!value || hr_has_ctl(value)) {
        snprintf(b->err, sizeof b->err, "value of '%s' contains control characters", name);
        return HERALD_E_INVALID;
    }
    hr_setting tmp = {0};
    herald_status st = parse_scalar(&tmp, sp, value, b->err, sizeof b->err);
    if (st != HERALD_OK)
        return st;
    hr_setting *v = hr_settings_add(b->s, name, sp->type);
    v->str = tmp.str;
    v->num = tmp.num;
    v->boolean = tmp.boolean;
    v->secret = (sp->flags & HERALD_SETTING_SECRET) != 0;
    v->origin = hr_strdup("URL");
    if (v->secret && v->str)
        hr_secret_add(v->str);
    return HERALD_OK;
}

herald_status hr_settings_put_item(herald_settings_builder *b, const char *name, const char *key,
                                   const char *value)
{
    const herald_setting_spec *sp = hr_spec_find(b->spec, name);
    if (!sp || (sp->type != HERALD_SETTING_MAP && sp->type != HERALD_SETTING_LIST)) {
        snprintf(b->err, sizeof b->err, "plugin %s declares no map or list setting '%s'", b->plugin,
                 name);
        return HERALD_E_PLUGIN;
    }
    if (!value || hr_has_ctl(value) || (sp->type == HERALD_SETTING_MAP && (!key || hr_has_ctl(key)))) {
        snprintf(b->err, sizeof b->err, "item of '%s' is missing or contains control characters",
                 name);
        return HERALD_E_INVALID;
    }
    hr_setting *v = hr_settings_get(b->s, name);
    if (!v) {
        v = hr_settings_add(b->s, name, sp->type);
        v->origin = hr_strdup("URL");
    }
    v->vals = hr_realloc(v->vals, (v->n + 1) * sizeof *v->vals);
    if (sp->type == HERALD_SETTING_MAP) {
        v->keys = hr_realloc(v->keys, (v->n + 1) * sizeof *v->keys);
        v->keys[v->n] = hr_strdup(key);
    }
    v->vals[v->n++] = hr_strdup(value);
    return HERALD_OK;
}

herald_status hr_settings_check_required(const herald_settings *s, const herald_setting_spec *spec,
                                         char *err, size_t errlen)
{
    for (; spec && spec->name; spec++) {
        if ((spec->flags & HERALD_SETTING_REQUIRED) && !hr_settings_get(s, spec->name)) {
            snprintf(err, errlen, "missing required setting '%s'%s", spec->name,
                     spec->help ? " (" : "");
            if (spec->help) {
                size_t n = strlen(err);
                snprintf(err + n, errlen - n, "%s)", spec->help);
            }
            return HERALD_E_CONFIG;
        }
    }
    return HERALD_OK;
}
