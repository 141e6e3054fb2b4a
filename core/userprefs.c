/* userprefs.c - checking and storing a person's run-time addresses and preferences (see
 * userprefs.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secretbox.h"
#include "tz.h"
#include "userprefs.h"

int hr_user_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static herald_status invalid(char *err, size_t errlen, const char *fmt, ...) HERALD_PRINTF(3, 4);
static herald_status invalid(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return HERALD_E_INVALID;
}

herald_status hr_user_address_check(const char *key, const char *value, char *err, size_t errlen)
{
    if (!hr_user_name_ok(key))
        return invalid(err, errlen, "address name '%s': use letters, digits, '-', '_' or '.'",
                       key);
    if (!strcmp(key, "name") || !strcmp(key, "groups") || !strcmp(key, "min_severity") ||
        !strcmp(key, "quiet"))
        return invalid(err, errlen, "'%s' is not an address but a preference or the groups",
                       key);
    if (value && hr_has_ctl(value))
        return invalid(err, errlen, "the value of %s contains control characters (CR, LF, ...); "
                       "remove them", key);
    return HERALD_OK;
}

herald_status hr_user_address_put(hr_store *s, const hr_config *cfg, const char *tenant,
                                  const char *user, const char *key, const char *value, char *err,
                                  size_t errlen)
{
    if (!value || !*value) {
        if (hr_store_pref_put(s, tenant, user, "addr", key, NULL) != HERALD_OK) {
            snprintf(err, errlen, "cannot store it: %s", hr_store_error(s));
            return HERALD_E_IO;
        }
        return HERALD_OK;
    }
    char *sealed = NULL;
    if (hr_address_is_secret(key)) {
        /* A credential (a personal token): sealed at rest, bound to the tenant, user and key. */
        char *path = hr_secretbox_config_path(cfg, hr_store_path(s));
        hr_secretbox *box = hr_secretbox_open(path, 1, err, errlen);
        free(path);
        if (!box)
            return HERALD_E_AUTH;
        char *ctx = hr_address_seal_context(tenant, user, key);
        sealed = hr_secretbox_seal(box, value, ctx);
        free(ctx);
        hr_secretbox_close(box);
        if (!sealed) {
            snprintf(err, errlen, "cannot seal %s for %s", key, user);
            return HERALD_E_AUTH;
        }
    }
    herald_status st = hr_store_pref_put(s, tenant, user, "addr", key, sealed ? sealed : value);
    free(sealed);
    if (st != HERALD_OK) {
        snprintf(err, errlen, "cannot store it: %s", hr_store_error(s));
        return HERALD_E_IO;
    }
    return HERALD_OK;
}

herald_status hr_pref_severity_check(const char *v, int allow_none, char *err, size_t errlen)
{
    herald_severity sev;
    if (v && allow_none && !strcmp(v, "none"))
        return HERALD_OK;
    if (!v || !hr_severity_parse(v, &sev))
        return invalid(err, errlen, "unknown severity '%s'; use debug, info, notice, warning, "
                       "error or critical%s", v ? v : "", allow_none ? " (or none)" : "");
    return HERALD_OK;
}

herald_status hr_pref_channel_check(hr_config *cfg, const char *channel, int allow_any, char *err,
                                    size_t errlen)
{
    if (allow_any && channel && !strcmp(channel, "*"))
        return HERALD_OK;
    if (!channel || !hr_config_channel(cfg, channel))
        return invalid(err, errlen, "no channel '%s' in the configuration%s", channel ? channel : "",
                       allow_any ? "; name one or *" : "");
    return HERALD_OK;
}

herald_status hr_pref_rule_make(hr_config *cfg, const char *glob, const char *channel, int on,
                                const char *min_sev, char **key, char value[32], char *err,
                                size_t errlen)
{
    *key = NULL;
    if (!glob || !*glob || strlen(glob) > 128 || hr_has_ctl(glob) || strchr(glob, '\x1f'))
        return invalid(err, errlen, "event glob '%s': use an event type with * wildcards, e.g. "
                       "'backup.*'", glob ? glob : "");
    herald_status st = hr_pref_channel_check(cfg, channel, 1, err, errlen);
    if (st != HERALD_OK)
        return st;
    if (min_sev) {
        if (!on)
            return invalid(err, errlen, "only an 'on' rule takes a min_severity");
        if ((st = hr_pref_severity_check(min_sev, 0, err, errlen)) != HERALD_OK)
            return st;
        herald_severity sev;
        hr_severity_parse(min_sev, &sev);
        snprintf(value, 32, "on:%s", hr_severity_name(sev));
    } else {
        snprintf(value, 32, "%s", on ? "on" : "off");
    }
    *key = hr_asprintf("%s\x1f%s", glob, channel);
    return HERALD_OK;
}

herald_status hr_pref_quiet_make(const char *hours, const char *tz, const char *action,
                                 char **value, char *err, size_t errlen)
{
    *value = NULL;
    if (!tz)
        tz = "UTC";
    if (!action)
        action = "defer";
    int start, end;
    if (!hours || hr_quiet_parse(hours, &start, &end, err, errlen) != 0)
        return hours ? HERALD_E_INVALID : invalid(err, errlen, "quiet hours need HH:MM-HH:MM");
    hr_tz *z = hr_tz_load(tz, err, errlen);
    if (!z)
        return HERALD_E_INVALID;
    hr_tz_free(z);
    if (strcmp(action, "defer") && strcmp(action, "drop"))
        return invalid(err, errlen, "quiet action %s: use defer (hold until the quiet hours end) "
                       "or drop", action);
    *value = hr_asprintf("%02d:%02d-%02d:%02d %s %s", start / 60, start % 60, end / 60, end % 60,
                         tz, action);
    return HERALD_OK;
}

json_t *hr_user_json(const hr_user *u)
{
    json_t *addr = json_object();
    for (size_t i = 0; i < u->naddr; i++)
        json_object_set_new(addr, u->addr[i].name,
                            json_string(hr_address_is_secret(u->addr[i].name) ? "***"
                                                                               : u->addr[i].value));
    json_t *chans = json_object();
    for (size_t i = 0; i < u->nchans; i++)
        json_object_set_new(chans, u->chans[i].channel, json_boolean(u->chans[i].on));
    json_t *rules = json_array();
    for (size_t i = 0; i < u->nrules; i++) {
        const hr_pref_rule *r = &u->rules[i];
        json_t *o = json_pack("{s:s, s:s, s:b, s:s}", "events", r->events, "channel", r->channel,
                              "on", r->on, "origin", r->origin);
        if (r->min_sev >= 0)
            json_object_set_new(o, "min_severity",
                                json_string(hr_severity_name((herald_severity)r->min_sev)));
        json_array_append_new(rules, o);
    }
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o}", "name", u->name, "origin", u->origin,
                          "addresses", addr, "channels", chans, "rules", rules);
    if (u->min_sev >= 0)
        json_object_set_new(o, "min_severity",
                            json_string(hr_severity_name((herald_severity)u->min_sev)));
    if (u->quiet != HR_QUIET_NONE) {
        char hours[48];
        snprintf(hours, sizeof hours, "%02d:%02d-%02d:%02d", u->quiet_start / 60,
                 u->quiet_start % 60, u->quiet_end / 60, u->quiet_end % 60);
        json_object_set_new(o, "quiet",
                            json_pack("{s:s, s:s, s:s}", "hours", hours, "tz", u->tz_name,
                                      "action", u->quiet == HR_QUIET_DROP ? "drop" : "defer"));
    }
    return o;
}
