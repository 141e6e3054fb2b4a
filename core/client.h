/* client.h - talking to heraldd over its Unix socket (CLI and libherald). */
#ifndef HERALD_CLIENT_H
#define HERALD_CLIENT_H

#include <jansson.h>

#include "internal.h"

/* Connected socket to a running heraldd, or -1 when none answers. */
int hr_daemon_connect(const hr_config *cfg);
/* Send one request line (req is consumed), read one reply line. NULL when the
 * daemon went away or did not answer in time. */
json_t *hr_daemon_call(int fd, json_t *req, long long timeout_ms);
const char *hr_daemon_socket(const hr_config *cfg);

#endif /* HERALD_CLIENT_H */
