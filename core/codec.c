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

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long hr_base64_decode_into(const char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t data = n;
    while (data && n - data < 2 && s[data - 1] == '=')
        data--;
    if (data % 4 == 1 || (data != n && n % 4 != 0) || data * 3 / 4 > cap)
        return -1;
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < data; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (long)o;
}

void *hr_base64_decode(const char *text, size_t *len)
{
    size_t n = strlen(text);
    unsigned char *out = hr_malloc(n * 3 / 4 + 1);
    long got = hr_base64_decode_into(text, n, out, n * 3 / 4 + 1);
    if (got < 0) {
        free(out);
        return NULL;
    }
    out[got] = 0;
    if (len)
        *len = (size_t)got;
    return out;
}

void hr_sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
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
