/* webhooks.h - webhook subscriptions kept in the store: what they are, sealing what is
 * secret in them, matching events to them, and opening their delivery channels.
 *
 * A subscription's deliveries use its id ("wh_" + 16 hex digits) as the channel
 * name, so claims, retries, the delivery log, consecutive-failure disabling and
 * `herald.channel.disabled` work for subscriptions as for configured channels.
 * The URL, the signing secrets and the headers are sealed together (AES-256-GCM,
 * secretbox.h) and bound to the id: a copied database without the key file
 * reveals none of them.
 */
#ifndef HERALD_WEBHOOKS_H
#define HERALD_WEBHOOKS_H

#include <jansson.h>

#include "internal.h"
#include "secretbox.h"
#include "store.h"

#define HR_WEBHOOK_PAYLOAD_MAX (256 * 1024)
#define HR_WEBHOOK_PREFIX "wh_"

typedef struct hr_webhook {
    char id[40];
    char *name;
    char *url;
    char *events;        /* comma-separated globs */
    char *secret;        /* whsec_...; NULL with signature none */
    char *old_secret;    /* the previous one during a rotation's grace */
    long long old_until_ms;
    hr_field *headers;
    size_t nheaders;
    char *signature;     /* standard, github, both, none */
    long long timeout_ms;
    int max_attempts;    /* 0: the global policy's */
    long long payload_max;
    char *body_template;
    char *tenant; /* NULL: "default" */
    long long created_ms;
} hr_webhook;

void hr_webhook_clear(hr_webhook *w);
void hr_webhook_new_id(char *out, size_t len);
/* Comma-separated event-type globs: lowercase letters, digits, . _ - * ? */
int hr_webhook_globs_ok(const char *s);
/* Seal and store w (a new id when create and w has none); err says why not.
 * HERALD_E_INVALID when the name exists already in the tenant. */
herald_status hr_webhook_save(hr_store *s, const hr_config *cfg, hr_webhook *w, int create,
                              char *err, size_t errlen);
/* The row as JSON with its counters (success rate, last success and failure,
 * consecutive failures) and whether it is enabled. */
json_t *hr_webhook_json(hr_store *s, const hr_webhook_row *r);
int hr_webhook_is_id(const char *name);
/* "https://host[:port]/…": the URL without path, query or credentials. */
char *hr_webhook_url_shown(const char *url);

/* Plain <-> stored row (sealing the URL, secrets and headers under box). */
herald_status hr_webhook_to_row(hr_secretbox *box, const hr_webhook *w, hr_webhook_row *row,
                                char *err, size_t errlen);
herald_status hr_webhook_from_row(hr_secretbox *box, const hr_webhook_row *row, hr_webhook *w,
                                  char *err, size_t errlen);

/* The key box for the config's database (created when create is set). */
hr_secretbox *hr_webhook_box(const hr_config *cfg, hr_store *s, int create, char *err,
                             size_t errlen);

/* Open the delivery channel of subscription id (the webhook plugin, signing as
 * configured); *max_attempts gets its override (0: none). */
herald_status hr_webhook_channel(hr_store *s, const hr_config *cfg, hr_loader *l, const char *id,
                                 herald_channel **ch, int *max_attempts, char *err, size_t errlen);

/* ---- matching at submit ---- */

typedef struct hr_sub {
    char id[40];
    char tenant[65];
    char *name;
    char **globs;
    size_t nglobs;
    long long payload_max;
    int templated; /* size not known before rendering */
} hr_sub;

typedef struct hr_subs {
    hr_sub *v;
    size_t n;
} hr_subs;

herald_status hr_subs_load(hr_store *s, hr_subs **out, char *err, size_t errlen);
void hr_subs_free(hr_subs *subs);
int hr_sub_matches(const hr_sub *sub, const char *type);
/* The subscriptions ev's type matches, into *out (free it); -1 with err when
 * the event is too large for one of them: refused at submit, never cut on the
 * way. ev must be stamped. */
long hr_subs_for_event(const hr_subs *subs, const herald_event *ev, const hr_sub ***out,
                       char *err, size_t errlen);

#endif
