/* herald/herald.h - libherald's client API for applications. */
#ifndef HERALD_HERALD_H
#define HERALD_HERALD_H

#include <stddef.h>

#include <herald/status.h>
#include <herald/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HERALD_API __attribute__((visibility("default")))
#else
#define HERALD_API
#endif

/*
 * libherald: hand events to herald from an application.
 *
 *   herald *h;
 *   if (herald_open(&h, NULL) != HERALD_OK) { ... herald_last_error(NULL) ... }
 *   char id[HERALD_ID_LEN];
 *   herald_notify(h, "backup.failed", "Backup failed", "disk full", NULL, NULL, id);
 *   herald_close(h);
 *
 * Events go to heraldd over its Unix socket when it runs. When it does not,
 * the event is stored in the same queue database and its first delivery
 * attempt runs in the calling thread; retries stay queued for heraldd.
 *
 * OWNERSHIP: strings passed in are copied. herald_event objects belong to the
 * caller until herald_event_free(). Nothing returned needs freeing except
 * what herald_event_new() and herald_open() return.
 *
 * THREADING: a herald handle may be used from several threads at once (calls
 * on one handle are serialised). A herald_event must not be shared between
 * threads while it is being modified.
 *
 * ERRORS: functions return a herald_status; herald_last_error(h) holds a
 * one-line message for the last failure in the calling thread.
 */

/* An event being built (opaque). */
typedef struct herald_event herald_event;
/* A connection to herald (opaque). */
typedef struct herald herald;

/* Size of an event id including its NUL (a UUIDv7 in text form). */
#define HERALD_ID_LEN 37

typedef enum herald_event_attr {
    HERALD_ATTR_TITLE = 0,
    HERALD_ATTR_BODY = 1,
    HERALD_ATTR_SEVERITY = 2,        /* debug, info, notice, warning, error, critical */
    HERALD_ATTR_SOURCE = 3,          /* the application's name */
    HERALD_ATTR_USER = 4,            /* the addressee */
    HERALD_ATTR_IDEMPOTENCY_KEY = 5,
    HERALD_ATTR_DATA = 6,            /* JSON text */
    HERALD_ATTR_TYPE = 7
} herald_event_attr;

/* Open a handle. config_path NULL means $HERALD_CONFIG, then the default file
 * (a missing default file is fine). On failure *h is NULL and
 * herald_last_error(NULL) says why. */
HERALD_API herald_status herald_open(herald **h, const char *config_path);
HERALD_API void herald_close(herald *h);
/* The last error message of this thread (h may be NULL). Never NULL. */
HERALD_API const char *herald_last_error(const herald *h);

/* A new event of the given dotted type ("backup.failed"), or NULL on bad type. */
HERALD_API herald_event *herald_event_new(const char *type);
HERALD_API void herald_event_free(herald_event *ev);
HERALD_API herald_status herald_event_set(herald_event *ev, herald_event_attr attr,
                                          const char *value);
HERALD_API herald_status herald_event_field(herald_event *ev, const char *name, const char *value);
/* Send only to this channel (name) or channel URL; may be called several times. */
HERALD_API herald_status herald_event_to(herald_event *ev, const char *channel_or_url);

/* Validate and queue the event; id receives its id (or, for a repeated
 * idempotency key, the original event's id). Returns once the event is
 * durably queued. */
HERALD_API herald_status herald_submit(herald *h, const herald_event *ev,
                                       char id[HERALD_ID_LEN]);
/* Wait until every delivery of event id is final or timeout_ms passes.
 * *all_sent is 1 when every delivery was sent. HERALD_E_TIMEOUT when some
 * were still pending at the deadline. */
HERALD_API herald_status herald_wait(herald *h, const char *id, long timeout_ms, int *all_sent);

/* The one-call form: type, title, optional body, user, JSON data; id may be NULL. */
HERALD_API herald_status herald_notify(herald *h, const char *type, const char *title,
                                       const char *body, const char *user, const char *json_data,
                                       char id[HERALD_ID_LEN]);

/* A sentence describing st, e.g. "destination failed temporarily (5xx)". Never NULL. */
HERALD_API const char *herald_strerror(herald_status st);

/* 1 when a failure with this status is worth retrying later, 0 when it is not. */
HERALD_API int herald_status_retryable(herald_status st);

/* The library version, e.g. "0.1.0". */
HERALD_API const char *herald_version(void);

/*
 * Verifying webhooks, for receivers. Neither function needs a handle, and
 * both may be called from any thread. Pass the raw request body, byte for
 * byte as received (not re-serialised JSON). Signatures are compared in
 * constant time. On failure err (when errlen > 0) receives one line saying
 * why, e.g. "the webhook-timestamp is 412 s old, more than the 300 s
 * tolerance (a replay, or a clock out of step)"; it never contains the secret.
 *
 * Both return HERALD_OK (0) when the signature is valid, HERALD_E_AUTH when
 * the request must be rejected (no valid signature, header missing or
 * malformed, timestamp out of tolerance), and HERALD_E_INVALID when the
 * secret or the arguments are unusable (a configuration error, not the
 * request's fault).
 */

/* A Standard Webhooks 1.0 request: secret is "whsec_<base64>" (24 to 64 key
 * bytes); msg_id, timestamp and signature_header are the values of the
 * webhook-id, webhook-timestamp and webhook-signature headers (NULL when
 * absent). signature_header may hold several space-separated "v1,<base64>"
 * signatures (during key rotation): one match is enough, and entries of other
 * versions are ignored. The timestamp (unix seconds) must be within
 * tolerance_s seconds of the current time in either direction; 0 or less
 * means the default, 300 (5 minutes). Receivers should also remember
 * msg_id for a while and drop repeats: deliveries are at-least-once. */
HERALD_API int herald_webhook_verify(const char *secret, const char *msg_id, const char *timestamp,
                                     const char *signature_header, const void *body, size_t len,
                                     long tolerance_s, char *err, size_t errlen);

/* A GitHub-style request: signature_header is the X-Hub-Signature-256 value,
 * "sha256=<hex HMAC-SHA256(secret, body)>"; secret is the shared secret as
 * configured (any non-empty string). GitHub-style signatures carry no
 * timestamp, so a replayed request verifies: dedupe on the delivery id. */
HERALD_API int herald_github_verify(const char *secret, const char *signature_header,
                                    const void *body, size_t len, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* HERALD_HERALD_H */
