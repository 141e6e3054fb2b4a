/* hooks.h - inbound webhooks: the `hooks` configuration group, checking a request to
 * POST /v1/hooks/{source}, and turning a stored receipt into an event.
 *
 * heraldd verifies a request, stores it as a receipt (store.h) in the round's
 * transaction and answers 202 after the commit; a later step of its loop,
 * hr_hooks_process(), renders each new receipt into an event with the
 * source's templates and submits it, in a transaction of its own. The event's
 * idempotency key is derived from the source and the message id, so a receipt
 * processed twice (a crash between the two) is still delivered once.
 */
#ifndef HERALD_HOOKS_H
#define HERALD_HOOKS_H

#include "dispatch.h"
#include "internal.h"
#include "route.h"
#include "store.h"

typedef enum hr_hook_scheme {
    HR_HOOK_STANDARD, /* Standard Webhooks: webhook-id, -timestamp, -signature */
    HR_HOOK_GITHUB,   /* X-Hub-Signature-256: sha256=<hex HMAC of the body> */
    HR_HOOK_TOKEN     /* a shared token in a header */
} hr_hook_scheme;

typedef struct hr_hook_pair {
    char *name, *value; /* fields: name and template; pointers: name and JSON pointer */
} hr_hook_pair;

typedef struct hr_hook_source {
    char *name;   /* the {source} of the URL */
    char *origin; /* "file:line", for messages */
    hr_hook_scheme scheme;
    /* The secret, then the previous one while the sender rotates (nkeys 2). */
    struct hr_hook_key {
        unsigned char *key; /* standard: the decoded whsec_ key; github: the secret */
        size_t keylen;
        char token_hash[65]; /* token: SHA-256 hex of the token */
    } keys[2];
    size_t nkeys;
    char *header;        /* token: the header carrying it */
    char *id_header;     /* token: the header carrying the message id, or NULL */
    long tolerance_s;    /* standard: webhook-timestamp tolerance either way */
    size_t max_body;
    char *tenant;
    /* templates (Mustache subset, template.h) over the request */
    char *type, *title, *body, *severity, *user;
    hr_hook_pair *fields, *pointers;
    size_t nfields, npointers;
    int data; /* keep the request body as the event's data */
} hr_hook_source;

typedef struct hr_hooks {
    hr_hook_source *v;
    size_t n;
} hr_hooks;

/* Read and check cfg's `hooks` group (none: an empty set). Secret files must
 * be private (hr_check_private); secrets are registered for redaction. On
 * error returns HERALD_E_CONFIG with one line "file:line: ..." naming the fix. */
herald_status hr_hooks_load(const hr_config *cfg, hr_hooks **out, char *err, size_t errlen);
void hr_hooks_free(hr_hooks *h);
const hr_hook_source *hr_hooks_find(const hr_hooks *h, const char *name);

/* A request header by name (any case); NULL when absent. */
typedef const char *(*hr_hook_header_fn)(void *ctx, const char *name);

/* Check a request's signature or token as src's scheme says (the time is
 * now_s for Standard Webhooks' tolerance), in constant time. 0, or -1 with a
 * one-line reason in err that never contains a secret. */
int hr_hook_verify(const hr_hook_source *src, hr_hook_header_fn header, void *ctx,
                   const char *body, size_t len, long long now_s, char *err, size_t errlen);

#define HR_HOOK_ID_MAX 200

/* The message id that makes a retry a duplicate: webhook-id (standard),
 * X-GitHub-Delivery (github) or the id_header (token), else "sha256:" and the
 * body's SHA-256. 0, or -1 with err when the header's value is over
 * HR_HOOK_ID_MAX bytes or has control characters. */
int hr_hook_message_id(const hr_hook_source *src, hr_hook_header_fn header, void *ctx,
                       const char *body, char out[HR_HOOK_ID_MAX + 1], char *err, size_t errlen);

/* 1 when a request header is kept with the receipt for the templates: not
 * ones that carry credentials (Authorization, Cookie, the token header) or
 * the signature headers. name is lowercase. */
int hr_hook_header_kept(const hr_hook_source *src, const char *name);

/* The event receipt r becomes under src's templates (ev is overwritten; clear
 * it after). Not validated: hr_submit() does that. On error (a template
 * fails, a severity that is not one) a one-line message in err. */
herald_status hr_hook_event(const hr_hook_source *src, const hr_receipt *r, herald_event *ev,
                            char *err, size_t errlen);

/* Told, after the commit, of each receipt that became an event of tenant
 * (NULL: "default"); duplicate when the event was stored before. */
typedef void (*hr_hooks_counted_fn)(void *ctx, const char *tenant, int duplicate);

/* Turn up to max new receipts into events, in a transaction of its own (the
 * store must have none open), offering their deliveries to d. A receipt whose
 * event is refused (bad type, no channel, its source gone) is marked failed
 * with the reason and logged; it is not tried again. *processed counts both
 * kinds; counted (may be NULL) hears of the events. Returns non-OK only when
 * the store failed: nothing was kept then, try again later. */
herald_status hr_hooks_process(const hr_hooks *h, hr_config *cfg, hr_loader *l,
                               const hr_routing *rt, hr_store *s, hr_dispatcher *d, size_t max,
                               hr_hooks_counted_fn counted, void *ctx, size_t *processed);

#endif /* HERALD_HOOKS_H */
