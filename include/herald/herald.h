/* herald/herald.h - libherald's client API for applications. */
#ifndef HERALD_HERALD_H
#define HERALD_HERALD_H

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

#ifdef __cplusplus
}
#endif

#endif /* HERALD_HERALD_H */
