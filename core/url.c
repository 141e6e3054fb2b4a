/* url.c - splitting channel URLs (Apprise style) into their parts. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Percent-decode; NULL when the result would hold a NUL or a control byte. */
static char *pct_decode(const char *s, size_t n)
{
    size_t o;
    char *out = hr_pct_decode(s, n, 0, &o);
    if (!out)
        return NULL;
    if (hr_has_ctl(out) || strlen(out) != o) {
        free(out);
        return NULL;
    }
    return out;
}

herald_status hr_url_split(const char *url, hr_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    if (!url || hr_has_ctl(url) || strchr(url, ' ')) {
        snprintf(err, errlen, "URL contains spaces or control characters; percent-encode them");
        return HERALD_E_INVALID;
    }
    const char *p = strstr(url, "://");
    if (!p || p == url) {
        snprintf(err, errlen, "'%s' is not a URL: expected scheme://host/...", url);
        return HERALD_E_INVALID;
    }
    for (const char *s = url; s < p; s++) {
        if (!isalnum((unsigned char)*s) && *s != '+' && *s != '-' && *s != '.') {
            snprintf(err, errlen, "URL scheme contains '%c'; schemes are letters and digits", *s);
            return HERALD_E_INVALID;
        }
    }
    u->scheme = hr_strndup(url, (size_t)(p - url));
    for (char *s = u->scheme; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    const char *auth = p + 3;
    const char *auth_end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *s = auth; s < auth_end; s++)
        if (*s == '@')
            at = s; /* the last @ ends userinfo */
    const char *hostpart = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        const char *uend = colon ? colon : at;
        u->user = pct_decode(auth, (size_t)(uend - auth));
        if (colon)
            u->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if (!u->user || (colon && !u->password)) {
            snprintf(err, errlen, "URL user or password has a bad %%-escape or a control character");
            hr_url_free(u);
            return HERALD_E_INVALID;
        }
        hostpart = at + 1;
    }
    const char *host_end = auth_end;
    const char *port = NULL;
    if (*hostpart == '[') {
        const char *rb = memchr(hostpart, ']', (size_t)(auth_end - hostpart));
        if (!rb) {
            snprintf(err, errlen, "URL has an unterminated [IPv6] host");
            hr_url_free(u);
            return HERALD_E_INVALID;
        }
        u->host = hr_strndup(hostpart, (size_t)(rb - hostpart + 1));
        if (rb + 1 < auth_end && rb[1] == ':')
            port = rb + 2;
        else if (rb + 1 != auth_end) {
            snprintf(err, errlen, "URL has junk after the [IPv6] host");
            hr_url_free(u);
            return HERALD_E_INVALID;
        }
    } else {
        const char *colon = memchr(hostpart, ':', (size_t)(auth_end - hostpart));
        if (colon) {
            host_end = colon;
            port = colon + 1;
        }
        u->host = hr_strndup(hostpart, (size_t)(host_end - hostpart));
    }
    if (!u->host[0]) {
        snprintf(err, errlen, "URL '%s' has no host", url);
        hr_url_free(u);
        return HERALD_E_INVALID;
    }
    if (port) {
        size_t n = (size_t)(auth_end - port);
        if (n == 0 || n > 5 || strspn(port, "0123456789") < n || atoi(port) > 65535) {
            snprintf(err, errlen, "URL port must be a number from 1 to 65535");
            hr_url_free(u);
            return HERALD_E_INVALID;
        }
        u->port = hr_strndup(port, n);
        if (strtol(u->port, NULL, 10) == 0) {
            snprintf(err, errlen, "URL port must be a number from 1 to 65535");
            hr_url_free(u);
            return HERALD_E_INVALID;
        }
    }
    const char *rest = auth_end;
    size_t plen = strcspn(rest, "?#");
    u->path = hr_strndup(rest, plen);
    rest += plen;
    if (*rest == '?') {
        size_t qlen = strcspn(rest + 1, "#");
        u->query = hr_strndup(rest + 1, qlen);
        rest += 1 + qlen;
    }
    if (*rest == '#')
        u->fragment = hr_strdup(rest + 1);
    return HERALD_OK;
}

void hr_url_free(hr_url *u)
{
    free(u->scheme);
    free(u->user);
    free(u->password);
    free(u->host);
    free(u->port);
    free(u->path);
    free(u->query);
    free(u->fragment);
    memset(u, 0, sizeof *u);
}

char *hr_url_redact(const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return hr_strdup(url ? url : "");
    const char *auth = p + 3;
    const char *auth_end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *s = auth; s < auth_end; s++)
        if (*s == '@')
            at = s;
    if (!at)
        return hr_strdup(url);
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon)
        return hr_strdup(url);
    return hr_asprintf("%.*s:***%s", (int)(colon - url), url, at);
}
