/* status.c - names, messages and retry classes of herald_status and verdicts. */
#include "config.h"

#include "internal.h"

/* Switches without default so -Wswitch-enum catches a code without a message. */
const char *herald_strerror(herald_status st)
{
    switch (st) {
    case HERALD_OK: return "success";
    case HERALD_E_NOMEM: return "out of memory";
    case HERALD_E_INVALID: return "invalid input";
    case HERALD_E_CONFIG: return "invalid configuration";
    case HERALD_E_NOT_FOUND: return "not found";
    case HERALD_E_IO: return "local I/O error";
    case HERALD_E_CONNECT: return "could not connect";
    case HERALD_E_TIMEOUT: return "timed out";
    case HERALD_E_TLS: return "TLS handshake or certificate verification failed";
    case HERALD_E_REJECTED: return "destination rejected the message";
    case HERALD_E_SERVER: return "destination failed temporarily";
    case HERALD_E_RATE_LIMITED: return "destination is rate limiting";
    case HERALD_E_GONE: return "destination no longer exists";
    case HERALD_E_REDIRECT: return "destination redirected (not followed)";
    case HERALD_E_AUTH: return "credentials rejected";
    case HERALD_E_PROTOCOL: return "unexpected response";
    case HERALD_E_UNSUPPORTED: return "not supported";
    case HERALD_E_PLUGIN: return "plugin failure";
    case HERALD_E_ABI: return "incompatible plugin ABI";
    case HERALD_E_TOO_LARGE: return "input too large";
    case HERALD_E_ENCODING: return "invalid encoding";
    case HERALD_E_INTERNAL: return "internal error";
    case HERALD_E_NETWORK: return "network error";
    }
    return "unknown status";
}

int herald_status_retryable(herald_status st)
{
    switch (st) {
    case HERALD_E_CONNECT:
    case HERALD_E_TIMEOUT:
    case HERALD_E_SERVER:
    case HERALD_E_RATE_LIMITED:
    case HERALD_E_NETWORK:
    case HERALD_E_IO:
    case HERALD_E_NOMEM:
        return 1;
    case HERALD_OK:
    case HERALD_E_INVALID:
    case HERALD_E_CONFIG:
    case HERALD_E_NOT_FOUND:
    case HERALD_E_TLS:
    case HERALD_E_REJECTED:
    case HERALD_E_GONE:
    case HERALD_E_REDIRECT:
    case HERALD_E_AUTH:
    case HERALD_E_PROTOCOL:
    case HERALD_E_UNSUPPORTED:
    case HERALD_E_PLUGIN:
    case HERALD_E_ABI:
    case HERALD_E_TOO_LARGE:
    case HERALD_E_ENCODING:
    case HERALD_E_INTERNAL:
        return 0;
    }
    return 0;
}

/* Stable machine-readable names, used in --json output and the delivery log. */
const char *hr_status_name(herald_status st)
{
    switch (st) {
    case HERALD_OK: return "ok";
    case HERALD_E_NOMEM: return "nomem";
    case HERALD_E_INVALID: return "invalid";
    case HERALD_E_CONFIG: return "config";
    case HERALD_E_NOT_FOUND: return "not_found";
    case HERALD_E_IO: return "io";
    case HERALD_E_CONNECT: return "connect";
    case HERALD_E_TIMEOUT: return "timeout";
    case HERALD_E_TLS: return "tls";
    case HERALD_E_REJECTED: return "rejected";
    case HERALD_E_SERVER: return "server";
    case HERALD_E_RATE_LIMITED: return "rate_limited";
    case HERALD_E_GONE: return "gone";
    case HERALD_E_REDIRECT: return "redirect";
    case HERALD_E_AUTH: return "auth";
    case HERALD_E_PROTOCOL: return "protocol";
    case HERALD_E_UNSUPPORTED: return "unsupported";
    case HERALD_E_PLUGIN: return "plugin";
    case HERALD_E_ABI: return "abi";
    case HERALD_E_TOO_LARGE: return "too_large";
    case HERALD_E_ENCODING: return "encoding";
    case HERALD_E_INTERNAL: return "internal";
    case HERALD_E_NETWORK: return "network";
    }
    return "unknown";
}

const char *hr_verdict_name(herald_verdict v)
{
    switch (v) {
    case HERALD_VERDICT_OK: return "ok";
    case HERALD_VERDICT_RETRY: return "retry";
    case HERALD_VERDICT_FAILED: return "failed";
    case HERALD_VERDICT_DISABLE: return "disable";
    case HERALD_VERDICT_CONTINUE: return "continue";
    }
    return "unknown";
}

static const char *const severity_names[] = {"debug", "info", "notice", "warning", "error",
                                             "critical"};

const char *hr_severity_name(herald_severity s)
{
    if ((unsigned)s < HR_ARRAY_LEN(severity_names))
        return severity_names[s];
    return "unknown";
}

int hr_severity_parse(const char *s, herald_severity *out)
{
    for (size_t i = 0; i < HR_ARRAY_LEN(severity_names); i++) {
        if (hr_streq(s, severity_names[i])) {
            *out = (herald_severity)i;
            return 1;
        }
    }
    return 0;
}

const char *herald_version(void)
{
    return HERALD_VERSION;
}
