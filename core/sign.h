/* sign.h - webhook signatures: Standard Webhooks 1.0 and GitHub's X-Hub-Signature-256. */
#ifndef HERALD_SIGN_H
#define HERALD_SIGN_H

#include <stddef.h>

/* A whsec_ secret decodes to this many key bytes, inclusive. */
#define HR_WHSEC_MIN_BYTES 24
#define HR_WHSEC_MAX_BYTES 64
/* How far a webhook-timestamp may be from now, either way, by default. */
#define HR_SIGN_TOLERANCE_S 300

/* Why a signature was not accepted. */
typedef enum hr_sig_result {
    HR_SIG_OK = 0,
    HR_SIG_BAD_SECRET,    /* not whsec_ + base64 of 24..64 bytes (GitHub: empty) */
    HR_SIG_BAD_ID,        /* webhook-id empty */
    HR_SIG_BAD_TIMESTAMP, /* webhook-timestamp is not unix seconds */
    HR_SIG_STALE,         /* timestamp older than the tolerance */
    HR_SIG_FUTURE,        /* timestamp further ahead than the tolerance */
    HR_SIG_NO_SIGNATURE,  /* no v1 entry (GitHub: no sha256=) in the header */
    HR_SIG_MALFORMED,     /* the header's entries are not "v1,<base64>" (GitHub: not hex) */
    HR_SIG_MISMATCH       /* well-formed, but no signature matches */
} hr_sig_result;

/* A new secret: "whsec_" + base64 of 32 random bytes. hr_malloc'd; NULL only
 * when the system has no randomness to give. */
char *hr_whsec_generate(void);

/* Decode "whsec_<base64>" into key (room for HR_WHSEC_MAX_BYTES bytes) and
 * *keylen. Returns 0, or -1 when secret is not of that form or its key is not
 * 24..64 bytes long. */
int hr_whsec_decode(const char *secret, unsigned char *key, size_t *keylen);

/* "v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>", hr_malloc'd;
 * NULL when the key or id is missing or the HMAC cannot be computed. */
char *hr_sign_standard(const unsigned char *key, size_t keylen, const char *id,
                       long long timestamp, const void *body, size_t len);

/* "sha256=<hex HMAC-SHA256(secret, body)>", hr_malloc'd; NULL when the secret
 * is empty or the HMAC cannot be computed. */
char *hr_sign_github(const void *secret, size_t secretlen, const void *body, size_t len);

/* Check a Standard Webhooks request against a decoded key. timestamp and
 * header are the raw webhook-timestamp and webhook-signature values; header
 * may hold several space-separated signatures (key rotation): one matching v1
 * entry suffices and other versions are ignored. The timestamp must be within
 * tolerance_s seconds of now_s in either direction. Comparison is in constant
 * time. On failure a one-line reason goes to err (when errlen > 0). */
hr_sig_result hr_verify_standard(const unsigned char *key, size_t keylen, const char *id,
                                 const char *timestamp, const char *header, const void *body,
                                 size_t len, long long now_s, long tolerance_s, char *err,
                                 size_t errlen);

/* Check an X-Hub-Signature-256 value ("sha256=<hex>", hex in either case)
 * against secret; constant-time. On failure a one-line reason goes to err. */
hr_sig_result hr_verify_github(const void *secret, size_t secretlen, const char *header,
                               const void *body, size_t len, char *err, size_t errlen);

#endif /* HERALD_SIGN_H */
