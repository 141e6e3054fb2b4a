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

/* An event being built or submitted (opaque). */
typedef struct herald_event herald_event;

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
