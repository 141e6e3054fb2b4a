/* sign.c - signing and verifying webhooks (Standard Webhooks 1.0, GitHub style) and the
 * libherald functions receivers call to verify them. */
#include "config.h"

#include <ctype.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#else
#include <openssl/hmac.h>
#endif

#include "internal.h"
#include "sign.h"

#define MAC_LEN 32
#define MAC_B64_LEN 44 /* base64 of 32 bytes, one '=' of padding */
#define WHSEC_PREFIX "whsec_"

typedef struct part {
    const void *data;
    size_t len;
} part;

/* HMAC-SHA256 over the concatenation of parts, without copying them (a body may be
 * megabytes). Returns 0 or -1. */
static int hmac_sha256(const void *key, size_t keylen, const part *parts, size_t nparts,
                       unsigned char out[MAC_LEN])
{
    int ok;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outlen = 0;
    ok = ctx && EVP_MAC_init(ctx, key, keylen, params);
    for (size_t i = 0; ok && i < nparts; i++)
        if (parts[i].len)
            ok = EVP_MAC_update(ctx, parts[i].data, parts[i].len);
    ok = ok && EVP_MAC_final(ctx, out, &outlen, MAC_LEN) && outlen == MAC_LEN;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
#else
    HMAC_CTX *ctx = HMAC_CTX_new();
    unsigned int outlen = 0;
    ok = ctx && keylen <= INT_MAX && HMAC_Init_ex(ctx, key, (int)keylen, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < nparts; i++)
        if (parts[i].len)
            ok = HMAC_Update(ctx, parts[i].data, parts[i].len);
    ok = ok && HMAC_Final(ctx, out, &outlen) && outlen == MAC_LEN;
    HMAC_CTX_free(ctx);
#endif
    return ok ? 0 : -1;
}

static long b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    return hr_base64_decode_into(s, n, out, cap);
}

char *hr_whsec_generate(void)
{
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1)
        return NULL;
    char *b64 = hr_base64(key, sizeof key);
    OPENSSL_cleanse(key, sizeof key);
    char *secret = hr_asprintf(WHSEC_PREFIX "%s", b64);
    OPENSSL_cleanse(b64, strlen(b64));
    free(b64);
    return secret;
}

int hr_whsec_decode(const char *secret, unsigned char *key, size_t *keylen)
{
    size_t plen = strlen(WHSEC_PREFIX);
    if (!secret || !key || !keylen || strncmp(secret, WHSEC_PREFIX, plen) != 0)
        return -1;
    long n = b64_decode(secret + plen, strlen(secret + plen), key, HR_WHSEC_MAX_BYTES);
    if (n < HR_WHSEC_MIN_BYTES || n > HR_WHSEC_MAX_BYTES) {
        OPENSSL_cleanse(key, HR_WHSEC_MAX_BYTES);
        return -1;
    }
    *keylen = (size_t)n;
    return 0;
}

static int standard_mac(const unsigned char *key, size_t keylen, const char *id,
                        long long timestamp, const void *body, size_t len,
                        unsigned char out[MAC_LEN])
{
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", timestamp);
    part parts[] = {
        {id, strlen(id)}, {".", 1}, {ts, strlen(ts)}, {".", 1}, {body, len},
    };
    return hmac_sha256(key, keylen, parts, HR_ARRAY_LEN(parts), out);
}

char *hr_sign_standard(const unsigned char *key, size_t keylen, const char *id,
                       long long timestamp, const void *body, size_t len)
{
    unsigned char mac[MAC_LEN];
    if (!key || !keylen || !id || (!body && len) ||
        standard_mac(key, keylen, id, timestamp, body, len, mac) != 0)
        return NULL;
    char *b64 = hr_base64(mac, sizeof mac);
    char *sig = hr_asprintf("v1,%s", b64);
    free(b64);
    return sig;
}

static const char hexdig[] = "0123456789abcdef";

char *hr_sign_github(const void *secret, size_t secretlen, const void *body, size_t len)
{
    unsigned char mac[MAC_LEN];
    part p = {body, len};
    if (!secret || !secretlen || (!body && len) || hmac_sha256(secret, secretlen, &p, 1, mac) != 0)
        return NULL;
    char *sig = hr_malloc(sizeof "sha256=" - 1 + 2 * MAC_LEN + 1);
    memcpy(sig, "sha256=", 7);
    size_t o = 7;
    for (size_t i = 0; i < MAC_LEN; i++) {
        sig[o++] = hexdig[mac[i] >> 4];
        sig[o++] = hexdig[mac[i] & 15];
    }
    sig[o] = '\0';
    return sig;
}

static hr_sig_result fail(hr_sig_result r, char *err, size_t errlen, const char *fmt, ...)
    HERALD_PRINTF(4, 5);

static hr_sig_result fail(hr_sig_result r, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* Unix seconds as decimal digits only (the reference libraries read it as an integer, so
 * leading zeros are allowed and signed away); -1 when it is anything else. */
static long long parse_timestamp(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The shape of a v1 value: base64 of 32 bytes. Says nothing about the key. */
static int v1_shape(const char *s, size_t n)
{
    if (n != MAC_B64_LEN || s[n - 1] != '=')
        return 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
            return 0;
    return 1;
}

hr_sig_result hr_verify_standard(const unsigned char *key, size_t keylen, const char *id,
                                 const char *timestamp, const char *header, const void *body,
                                 size_t len, long long now_s, long tolerance_s, char *err,
                                 size_t errlen)
{
    if (!key || keylen < HR_WHSEC_MIN_BYTES || keylen > HR_WHSEC_MAX_BYTES)
        return fail(HR_SIG_BAD_SECRET, err, errlen,
                    "the secret is not whsec_ followed by base64 of %d to %d bytes",
                    HR_WHSEC_MIN_BYTES, HR_WHSEC_MAX_BYTES);
    if (!id || !*id)
        return fail(HR_SIG_BAD_ID, err, errlen, "the webhook-id is missing or empty");
    long long ts = timestamp ? parse_timestamp(timestamp) : -1;
    if (ts < 0)
        return fail(HR_SIG_BAD_TIMESTAMP, err, errlen, timestamp
                    ? "the webhook-timestamp is not a unix time in seconds"
                    : "the webhook-timestamp is missing");
    if (tolerance_s < 0)
        tolerance_s = 0;
    if (now_s - ts > tolerance_s)
        return fail(HR_SIG_STALE, err, errlen,
                    "the webhook-timestamp is %lld s old, more than the %ld s tolerance "
                    "(a replay, or a clock out of step)", now_s - ts, tolerance_s);
    if (ts - now_s > tolerance_s)
        return fail(HR_SIG_FUTURE, err, errlen,
                    "the webhook-timestamp is %lld s in the future, more than the %ld s "
                    "tolerance (check the clocks)", ts - now_s, tolerance_s);
    if (!header)
        return fail(HR_SIG_NO_SIGNATURE, err, errlen, "the webhook-signature is missing");
    if (!body && len)
        return fail(HR_SIG_MISMATCH, err, errlen, "no body to verify");

    unsigned char mac[MAC_LEN];
    if (standard_mac(key, keylen, id, ts, body, len, mac) != 0)
        return fail(HR_SIG_MISMATCH, err, errlen, "cannot compute HMAC-SHA256 (OpenSSL failed)");
    char *want = hr_base64(mac, sizeof mac);
    OPENSSL_cleanse(mac, sizeof mac);

    int v1_seen = 0, malformed = 0, match = 0;
    const char *p = header;
    while (*p) {
        size_t n = strcspn(p, " \t");
        if (n) {
            const char *comma = memchr(p, ',', n);
            if (!comma || comma == p) {
                malformed = 1;
            } else if ((size_t)(comma - p) == 2 && !memcmp(p, "v1", 2)) {
                const char *sig = comma + 1;
                size_t siglen = n - 3;
                if (!v1_shape(sig, siglen))
                    malformed = 1;
                else {
                    v1_seen = 1;
                    if (CRYPTO_memcmp(sig, want, MAC_B64_LEN) == 0)
                        match = 1;
                }
            } /* other versions (v1a, v2...) are not ours to judge */
        }
        p += n;
        p += strspn(p, " \t");
    }
    OPENSSL_cleanse(want, strlen(want));
    free(want);
    if (match)
        return HR_SIG_OK;
    if (v1_seen)
        return fail(HR_SIG_MISMATCH, err, errlen,
                    "no signature matches: the body, webhook-id, webhook-timestamp or secret "
                    "differs from what was signed");
    if (malformed)
        return fail(HR_SIG_MALFORMED, err, errlen,
                    "the webhook-signature is malformed; expected space-separated "
                    "'v1,<base64 of 32 bytes>' entries");
    return fail(HR_SIG_NO_SIGNATURE, err, errlen, "the webhook-signature has no v1 signature");
}

hr_sig_result hr_verify_github(const void *secret, size_t secretlen, const char *header,
                               const void *body, size_t len, char *err, size_t errlen)
{
    if (!secret || !secretlen)
        return fail(HR_SIG_BAD_SECRET, err, errlen, "the secret is empty");
    if (!header)
        return fail(HR_SIG_NO_SIGNATURE, err, errlen, "the X-Hub-Signature-256 is missing");
    if (!strncmp(header, "sha1=", 5))
        return fail(HR_SIG_NO_SIGNATURE, err, errlen,
                    "sha1= signatures (X-Hub-Signature) are not accepted; give the "
                    "X-Hub-Signature-256 value, sha256=<hex>");
    if (strncmp(header, "sha256=", 7) != 0)
        return fail(HR_SIG_NO_SIGNATURE, err, errlen,
                    "the signature is not of the form sha256=<hex>");
    const char *hex = header + 7;
    unsigned char got[MAC_LEN];
    if (strlen(hex) != 2 * MAC_LEN)
        return fail(HR_SIG_MALFORMED, err, errlen,
                    "the sha256= signature is not 64 hexadecimal digits");
    for (size_t i = 0; i < MAC_LEN; i++) {
        int hi = hr_hexval((unsigned char)hex[2 * i]),
            lo = hr_hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(HR_SIG_MALFORMED, err, errlen,
                        "the sha256= signature is not 64 hexadecimal digits");
        got[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!body && len)
        return fail(HR_SIG_MISMATCH, err, errlen, "no body to verify");
    unsigned char want[MAC_LEN];
    part p = {body, len};
    if (hmac_sha256(secret, secretlen, &p, 1, want) != 0)
        return fail(HR_SIG_MISMATCH, err, errlen, "cannot compute HMAC-SHA256 (OpenSSL failed)");
    int same = CRYPTO_memcmp(got, want, MAC_LEN) == 0;
    OPENSSL_cleanse(want, sizeof want);
    if (!same)
        return fail(HR_SIG_MISMATCH, err, errlen,
                    "the signature does not match: the body or the secret differs from what "
                    "was signed");
    return HR_SIG_OK;
}

/* ---- libherald ---- */

int herald_webhook_verify(const char *secret, const char *msg_id, const char *timestamp,
                          const char *signature_header, const void *body, size_t len,
                          long tolerance_s, char *err, size_t errlen)
{
    unsigned char key[HR_WHSEC_MAX_BYTES];
    size_t keylen = 0;
    if (err && errlen)
        err[0] = '\0';
    if (hr_whsec_decode(secret, key, &keylen) != 0) {
        fail(HR_SIG_BAD_SECRET, err, errlen,
             "the secret is not whsec_ followed by base64 of %d to %d bytes",
             HR_WHSEC_MIN_BYTES, HR_WHSEC_MAX_BYTES);
        return HERALD_E_INVALID;
    }
    if (!body && len) {
        OPENSSL_cleanse(key, sizeof key);
        fail(HR_SIG_MISMATCH, err, errlen, "body is NULL but len is %zu", len);
        return HERALD_E_INVALID;
    }
    hr_sig_result r = hr_verify_standard(key, keylen, msg_id, timestamp, signature_header, body,
                                         len, (long long)time(NULL),
                                         tolerance_s > 0 ? tolerance_s : HR_SIGN_TOLERANCE_S, err,
                                         errlen);
    OPENSSL_cleanse(key, sizeof key);
    return r == HR_SIG_OK ? HERALD_OK : HERALD_E_AUTH;
}

int herald_github_verify(const char *secret, const char *signature_header, const void *body,
                         size_t len, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!secret || !*secret) {
        fail(HR_SIG_BAD_SECRET, err, errlen, "the secret is empty");
        return HERALD_E_INVALID;
    }
    if (!body && len) {
        fail(HR_SIG_MISMATCH, err, errlen, "body is NULL but len is %zu", len);
        return HERALD_E_INVALID;
    }
    hr_sig_result r = hr_verify_github(secret, strlen(secret), signature_header, body, len, err,
                                       errlen);
    return r == HR_SIG_OK ? HERALD_OK : HERALD_E_AUTH;
}
