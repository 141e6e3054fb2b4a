/* userprefs.h - checking and storing a person's run-time addresses and preferences, shared by
 * `herald user|prefs` and the HTTP API so both accept exactly the same values.
 *
 * The checks return HERALD_OK, or HERALD_E_INVALID with why in err (one line, no command
 * syntax in it: the CLI and the API each add their own). The puts return HERALD_E_IO (or
 * HERALD_E_AUTH for the key file) with err set when the store or the key fails.
 */
#ifndef HERALD_USERPREFS_H
#define HERALD_USERPREFS_H

#include <jansson.h>

#include "internal.h"
#include "route.h"
#include "store.h"

/* User, group and address names: 1 to 64 of letters, digits, '-', '_', '.'. */
int hr_user_name_ok(const char *s);

/* An address KEY=VALUE (value NULL or "": removing the run-time value). */
herald_status hr_user_address_check(const char *key, const char *value, char *err, size_t errlen);
/* Store it for user of tenant (NULL: "default"); a credential address (hr_address_is_secret)
 * is sealed under the key file with the context hr_address_seal_context() gives, so it cannot
 * be moved to another tenant, user or key. */
herald_status hr_user_address_put(hr_store *s, const hr_config *cfg, const char *tenant,
                                  const char *user, const char *key, const char *value, char *err,
                                  size_t errlen);

/* A severity name, or with allow_none also "none" (any severity, over the config's). */
herald_status hr_pref_severity_check(const char *v, int allow_none, char *err, size_t errlen);
/* A configured channel (for a channel default or a rule; "*" only with allow_any). */
herald_status hr_pref_channel_check(hr_config *cfg, const char *channel, int allow_any, char *err,
                                    size_t errlen);
/* A rule: its store key (glob "\x1f" channel, hr_malloc'd) and value ("on", "off" or
 * "on:SEV"; min_sev NULL for none, only with on). */
herald_status hr_pref_rule_make(hr_config *cfg, const char *glob, const char *channel, int on,
                                const char *min_sev, char **key, char value[32], char *err,
                                size_t errlen);
/* Quiet hours "HH:MM-HH:MM" in zone tz (NULL: UTC), action defer or drop (NULL: defer): the
 * stored value (hr_malloc'd). */
herald_status hr_pref_quiet_make(const char *hours, const char *tz, const char *action,
                                 char **value, char *err, size_t errlen);

/* A user as `herald user show --json` and `herald prefs show --json` print it: name, origin,
 * addresses (credentials as "***"), channels, rules, min_severity, quiet. */
json_t *hr_user_json(const hr_user *u);

#endif
