/* codec.c - the helpers that need OpenSSL or libcurl (base64, HTTP dates), kept apart so
 * the light herald front-end links neither. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "internal.h"

char *hr_base64(const void *data, size_t len)
{
    if (len > INT_MAX / 2)
        return NULL;
    char *out = hr_malloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

long long hr_parse_retry_after(const char *value, long long now_ms)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        errno = 0;
        double secs = strtod(value, &end);
        while (*end == ' ' || *end == '\t')
            end++;
        if (errno || *end || secs < 0 || secs > 365.0 * 86400)
            return -1;
        return now_ms + (long long)(secs * 1000.0);
    }
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1)
        return -1;
    long long at = (long long)t * 1000;
    return at < now_ms ? now_ms : at;
}
