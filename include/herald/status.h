/* herald/status.h - the status codes shared by libherald, the programs and plugins. */
#ifndef HERALD_STATUS_H
#define HERALD_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Status codes. This enum is append-only: a number, once published, keeps its
 * meaning forever; a code that stops being used stays in the list. New codes go
 * at the end, just before nothing (there is no "last" sentinel on purpose, so a
 * plugin compiled against an older header never mistakes a new code for one of
 * its own).
 *
 * Whether a failure is worth retrying is a property of the code:
 * see herald_status_retryable().
 */
typedef enum herald_status {
    HERALD_OK = 0,
    HERALD_E_NOMEM = 1,          /* out of memory */
    HERALD_E_INVALID = 2,        /* invalid argument or input */
    HERALD_E_CONFIG = 3,         /* invalid configuration */
    HERALD_E_NOT_FOUND = 4,      /* no such channel, plugin, setting, file */
    HERALD_E_IO = 5,             /* local I/O error */
    HERALD_E_CONNECT = 6,        /* could not connect (refused, DNS, unreachable) */
    HERALD_E_TIMEOUT = 7,        /* the exchange did not finish in time */
    HERALD_E_TLS = 8,            /* TLS handshake or certificate verification failed */
    HERALD_E_REJECTED = 9,       /* destination refused the message for good (4xx) */
    HERALD_E_SERVER = 10,        /* destination failed temporarily (5xx) */
    HERALD_E_RATE_LIMITED = 11,  /* destination asked us to slow down (429) */
    HERALD_E_GONE = 12,          /* destination no longer exists (410, unknown webhook) */
    HERALD_E_REDIRECT = 13,      /* destination answered with a redirect; not followed */
    HERALD_E_AUTH = 14,          /* credentials rejected */
    HERALD_E_PROTOCOL = 15,      /* unexpected or malformed response */
    HERALD_E_UNSUPPORTED = 16,   /* operation not supported by this plugin or host */
    HERALD_E_PLUGIN = 17,        /* a plugin misbehaved or failed to initialise */
    HERALD_E_ABI = 18,           /* plugin built for an incompatible ABI */
    HERALD_E_TOO_LARGE = 19,     /* input exceeds a documented limit */
    HERALD_E_ENCODING = 20,      /* input is not valid UTF-8 or has forbidden bytes */
    HERALD_E_INTERNAL = 21,      /* a bug in herald */
    HERALD_E_NETWORK = 22        /* network error after connecting (reset, partial reply) */
} herald_status;

#ifdef __cplusplus
}
#endif

#endif /* HERALD_STATUS_H */
