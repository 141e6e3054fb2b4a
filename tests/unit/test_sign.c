/* test_sign.c - webhook signatures: the CONTRACTS.md vectors, secrets, rotation, rejections. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <herald/herald.h>

#include "sign.h"
#include "tap.h"

#define STD_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define STD_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define STD_TS 1614265330LL
#define STD_TS_TEXT "1614265330"
#define STD_BODY "{\"test\": 2432232314}"
#define STD_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY "Hello, World!"
#define GH_SIG "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

/* whsec_ + base64 of 63 bytes of 'A': a length suffix makes 64 or 65. */
#define A63 "whsec_" "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB" "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"

static unsigned char key[HR_WHSEC_MAX_BYTES];
static size_t keylen;

static hr_sig_result std(const char *id, const char *ts, const char *header, const char *body,
                         long long now, char *err, size_t errlen)
{
    err[0] = '\0';
    return hr_verify_standard(key, keylen, id, ts, header, body, strlen(body), now,
                              HR_SIGN_TOLERANCE_S, err, errlen);
}

static void rejects(const char *header, hr_sig_result want, const char *why, const char *name)
{
    char err[256];
    hr_sig_result r = std(STD_ID, STD_TS_TEXT, header, STD_BODY, STD_TS, err, sizeof err);
    is_int(r, want, name);
    like(err, why, name);
}

static void vectors(void)
{
    ok(hr_whsec_decode(STD_SECRET, key, &keylen) == 0, "the contract's whsec_ secret decodes");
    is_int(keylen, 24, "to 24 key bytes");
    char *sig = hr_sign_standard(key, keylen, STD_ID, STD_TS, STD_BODY, strlen(STD_BODY));
    is_str(sig, STD_SIG, "Standard Webhooks vector signs exactly");
    free(sig);
    char err[256];
    is_int(std(STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY, STD_TS, err, sizeof err), HR_SIG_OK,
           "and verifies");

    sig = hr_sign_github(GH_SECRET, strlen(GH_SECRET), GH_BODY, strlen(GH_BODY));
    is_str(sig, GH_SIG, "GitHub vector signs exactly");
    free(sig);
    is_int(hr_verify_github(GH_SECRET, strlen(GH_SECRET), GH_SIG, GH_BODY, strlen(GH_BODY), err,
                            sizeof err),
           HR_SIG_OK, "and verifies");
    char upper[sizeof GH_SIG];
    memcpy(upper, GH_SIG, sizeof GH_SIG);
    for (char *p = upper + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    is_int(hr_verify_github(GH_SECRET, strlen(GH_SECRET), upper, GH_BODY, strlen(GH_BODY), err,
                            sizeof err),
           HR_SIG_OK, "upper-case hex verifies too");
}

static void secrets(void)
{
    char *s = hr_whsec_generate();
    ok(s && !strncmp(s, "whsec_", 6), "a generated secret starts whsec_");
    is_int(s ? strlen(s) : 0, 6 + 44, "and holds base64 of 32 bytes");
    unsigned char k[HR_WHSEC_MAX_BYTES];
    size_t kl = 0;
    ok(s && hr_whsec_decode(s, k, &kl) == 0 && kl == 32, "it decodes back to 32 bytes");
    char *s2 = hr_whsec_generate();
    ok(s && s2 && strcmp(s, s2) != 0, "two generated secrets differ");
    char *sig = hr_sign_standard(k, kl, "msg_1", 1700000000, "x", 1);
    unsigned char k2[HR_WHSEC_MAX_BYTES];
    size_t kl2 = 0;
    char err[256] = "";
    ok(s2 && hr_whsec_decode(s2, k2, &kl2) == 0 &&
           hr_verify_standard(k2, kl2, "msg_1", "1700000000", sig, "x", 1, 1700000000, 300, err,
                              sizeof err) == HR_SIG_MISMATCH,
       "a signature under one generated secret fails under the other");
    free(sig);
    free(s);
    free(s2);

    static const struct {
        const char *secret;
        const char *name;
    } bad[] = {
        {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "no whsec_ prefix"},
        {"whsec_", "nothing after the prefix"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "base64 of a length that cannot be"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa", "23 bytes: too short"},
        {"whsec_MfKQ9r8GKYqrTwjU*D8ILPZIo2LaLaSw", "a character outside base64"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw====", "too much padding"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ", "trailing space"},
        {A63 "QUE=", "65 bytes: too long"},
        {"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "prefix in upper case"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t l = 99;
        ok(hr_whsec_decode(bad[i].secret, k, &l) == -1 && l == 99, bad[i].name);
    }
    ok(hr_whsec_decode(NULL, k, &kl) == -1, "NULL secret refused");
    /* 64 bytes is the most, and padded or unpadded base64 both work. */
    ok(hr_whsec_decode(A63 "QQ==", k, &kl) == 0 && kl == 64, "64 bytes (padded) accepted");
    ok(hr_whsec_decode(A63 "QQ", k, &kl) == 0 && kl == 64, "64 bytes (unpadded) accepted");
    ok(hr_whsec_decode(A63 "QR==", k, &kl) == -1, "non-zero padding bits refused");
}

static void rotation(void)
{
    unsigned char old_key[HR_WHSEC_MAX_BYTES];
    size_t old_len = 0;
    char *old_secret = hr_whsec_generate();
    ok(hr_whsec_decode(old_secret, old_key, &old_len) == 0, "an old key for rotation");
    char *old_sig = hr_sign_standard(old_key, old_len, STD_ID, STD_TS, STD_BODY, strlen(STD_BODY));
    char *both = NULL, *both_rev = NULL;
    size_t n = strlen(old_sig) + strlen(STD_SIG) + 2;
    both = malloc(n);
    both_rev = malloc(n);
    snprintf(both, n, "%s %s", old_sig, STD_SIG);
    snprintf(both_rev, n, "%s %s", STD_SIG, old_sig);
    char err[256];
    is_int(std(STD_ID, STD_TS_TEXT, both, STD_BODY, STD_TS, err, sizeof err), HR_SIG_OK,
           "rotation: the new key matches the second of two signatures");
    is_int(std(STD_ID, STD_TS_TEXT, both_rev, STD_BODY, STD_TS, err, sizeof err), HR_SIG_OK,
           "rotation: the new key matches the first of two signatures");
    is_int(hr_verify_standard(old_key, old_len, STD_ID, STD_TS_TEXT, both, STD_BODY,
                              strlen(STD_BODY), STD_TS, 300, err, sizeof err),
           HR_SIG_OK, "rotation: the old key matches too");
    char unknown[512];
    snprintf(unknown, sizeof unknown, "v1a,c2lnbmF0dXJl v2,abc  %s\tv0,zzz", STD_SIG);
    is_int(std(STD_ID, STD_TS_TEXT, unknown, STD_BODY, STD_TS, err, sizeof err), HR_SIG_OK,
           "unknown versions and extra white space are ignored");
    snprintf(unknown, sizeof unknown, "garbage %s", STD_SIG);
    is_int(std(STD_ID, STD_TS_TEXT, unknown, STD_BODY, STD_TS, err, sizeof err), HR_SIG_OK,
           "a malformed entry beside a valid one does not spoil it");
    free(old_secret);
    free(old_sig);
    free(both);
    free(both_rev);
}

static void rejections(void)
{
    char err[256];
    is_int(std(STD_ID, STD_TS_TEXT, STD_SIG, "{\"test\": 2432232315}", STD_TS, err, sizeof err),
           HR_SIG_MISMATCH, "tampered body rejected");
    like(err, "no signature matches", "and says so");
    is_int(std("msg_other", STD_TS_TEXT, STD_SIG, STD_BODY, STD_TS, err, sizeof err),
           HR_SIG_MISMATCH, "other webhook-id rejected");
    is_int(std(STD_ID, "1614265331", STD_SIG, STD_BODY, STD_TS, err, sizeof err),
           HR_SIG_MISMATCH, "other timestamp (within tolerance) rejected");
    is_int(std(STD_ID, "01614265330", STD_SIG, STD_BODY, STD_TS, err, sizeof err), HR_SIG_OK,
           "a leading zero reads as the same number, as the reference libraries do");

    unsigned char wrong[HR_WHSEC_MAX_BYTES];
    size_t wrong_len;
    hr_whsec_decode("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", wrong, &wrong_len);
    is_int(hr_verify_standard(wrong, wrong_len, STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY,
                              strlen(STD_BODY), STD_TS, 300, err, sizeof err),
           HR_SIG_MISMATCH, "wrong secret rejected");
    is_int(hr_verify_standard(key, 10, STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY, strlen(STD_BODY),
                              STD_TS, 300, err, sizeof err),
           HR_SIG_BAD_SECRET, "a 10-byte key is not a whsec_ key");

    is_int(std(STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY, STD_TS + 300, err, sizeof err), HR_SIG_OK,
           "exactly 5 min old: accepted");
    is_int(std(STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY, STD_TS + 301, err, sizeof err),
           HR_SIG_STALE, "5 min 1 s old: stale");
    like(err, "301 s old, more than the 300 s tolerance", "the stale message gives the numbers");
    is_int(std(STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY, STD_TS - 300, err, sizeof err), HR_SIG_OK,
           "exactly 5 min ahead: accepted");
    is_int(std(STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY, STD_TS - 301, err, sizeof err),
           HR_SIG_FUTURE, "5 min 1 s ahead: future");
    like(err, "301 s in the future", "the future message gives the numbers");
    is_int(hr_verify_standard(key, keylen, STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY,
                              strlen(STD_BODY), STD_TS + 3600, 7200, err, sizeof err),
           HR_SIG_OK, "a wider tolerance accepts an hour-old timestamp");

    static const char *bad_ts[] = {"", "abc", "-1614265330", "+1614265330", "1614265330.5",
                                   " 1614265330", "1e9", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "timestamp '%s' is not unix seconds", bad_ts[i]);
        is_int(std(STD_ID, bad_ts[i], STD_SIG, STD_BODY, STD_TS, err, sizeof err),
               HR_SIG_BAD_TIMESTAMP, name);
    }
    is_int(hr_verify_standard(key, keylen, STD_ID, NULL, STD_SIG, STD_BODY, strlen(STD_BODY),
                              STD_TS, 300, err, sizeof err),
           HR_SIG_BAD_TIMESTAMP, "missing timestamp rejected");
    is_int(std("", STD_TS_TEXT, STD_SIG, STD_BODY, STD_TS, err, sizeof err), HR_SIG_BAD_ID,
           "empty webhook-id rejected");
    is_int(hr_verify_standard(key, keylen, STD_ID, STD_TS_TEXT, NULL, STD_BODY, strlen(STD_BODY),
                              STD_TS, 300, err, sizeof err),
           HR_SIG_NO_SIGNATURE, "missing header rejected");

    rejects("", HR_SIG_NO_SIGNATURE, "no v1 signature", "empty header");
    rejects("   ", HR_SIG_NO_SIGNATURE, "no v1 signature", "blank header");
    rejects("v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", HR_SIG_NO_SIGNATURE,
            "no v1 signature", "only another version");
    rejects("g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", HR_SIG_MALFORMED, "malformed",
            "no version prefix");
    rejects("v1,", HR_SIG_MALFORMED, "malformed", "v1 with nothing after it");
    rejects(",g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", HR_SIG_MALFORMED, "malformed",
            "empty version");
    rejects("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", HR_SIG_MALFORMED, "malformed",
            "v1 signature cut short");
    rejects("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=x", HR_SIG_MALFORMED, "malformed",
            "v1 signature too long");
    rejects("v1,835c4cf52b04f8e3cf2531adfed9882ad4b2665137b852442d594d20e2c9d4e1",
            HR_SIG_MALFORMED, "malformed", "hex instead of base64");
    rejects("v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=", HR_SIG_MALFORMED, "malformed",
            "URL-safe base64 is not the standard alphabet");
    rejects("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", HR_SIG_MISMATCH,
            "no signature matches", "well-formed but wrong");
    rejects("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            HR_SIG_MALFORMED, "malformed", "a GitHub signature where a v1 one belongs");

    /* Differs only in the last character: CRYPTO_memcmp runs over the whole length. */
    rejects("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", HR_SIG_MISMATCH,
            "no signature matches", "a near miss in the last characters");

    const size_t ghl = strlen(GH_BODY);
    is_int(hr_verify_github(GH_SECRET, strlen(GH_SECRET), GH_SIG, "Hello, World?", ghl, err,
                            sizeof err),
           HR_SIG_MISMATCH, "GitHub: tampered body rejected");
    like(err, "does not match", "and says so");
    is_int(hr_verify_github("It's a secret to everybody", 26, GH_SIG, GH_BODY, ghl, err,
                            sizeof err),
           HR_SIG_MISMATCH, "GitHub: wrong secret rejected");
    is_int(hr_verify_github(GH_SECRET, strlen(GH_SECRET), GH_SIG + 7, GH_BODY, ghl, err,
                            sizeof err),
           HR_SIG_NO_SIGNATURE, "GitHub: bare hex without sha256= rejected");
    is_int(hr_verify_github(GH_SECRET, strlen(GH_SECRET),
                            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d", GH_BODY, ghl, err,
                            sizeof err),
           HR_SIG_NO_SIGNATURE, "GitHub: sha1= rejected");
    like(err, "X-Hub-Signature-256", "and points at the sha256 header");
    is_int(hr_verify_github(GH_SECRET, strlen(GH_SECRET),
                            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
                            GH_BODY, ghl, err, sizeof err),
           HR_SIG_MALFORMED, "GitHub: 63 hex digits rejected");
    is_int(hr_verify_github(GH_SECRET, strlen(GH_SECRET),
                            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",
                            GH_BODY, ghl, err, sizeof err),
           HR_SIG_MALFORMED, "GitHub: a non-hex digit rejected");
    is_int(hr_verify_github("", 0, GH_SIG, GH_BODY, ghl, err, sizeof err), HR_SIG_BAD_SECRET,
           "GitHub: empty secret rejected");
    ok(hr_sign_github("", 0, GH_BODY, ghl) == NULL, "GitHub: no signing with an empty secret");
}

static void binary_and_empty(void)
{
    /* Bodies are bytes: NULs and the empty body sign like anything else. */
    static const char bin[] = {'a', '\0', 'b', '\n', '\xff'};
    char *sig = hr_sign_standard(key, keylen, STD_ID, STD_TS, bin, sizeof bin);
    char err[256];
    ok(sig && hr_verify_standard(key, keylen, STD_ID, STD_TS_TEXT, sig, bin, sizeof bin, STD_TS,
                                 300, err, sizeof err) == HR_SIG_OK,
       "a body with NUL and 0xff bytes round-trips");
    ok(hr_verify_standard(key, keylen, STD_ID, STD_TS_TEXT, sig, bin, 1, STD_TS, 300, err,
                          sizeof err) == HR_SIG_MISMATCH,
       "and the body stops at len, not at a NUL");
    free(sig);
    sig = hr_sign_standard(key, keylen, STD_ID, STD_TS, NULL, 0);
    ok(sig && hr_verify_standard(key, keylen, STD_ID, STD_TS_TEXT, sig, "", 0, STD_TS, 300, err,
                                 sizeof err) == HR_SIG_OK,
       "an empty body round-trips");
    free(sig);
    ok(hr_sign_standard(key, keylen, NULL, STD_TS, "x", 1) == NULL, "no signing without an id");
}

static void public_api(void)
{
    char err[256] = "x";
    long long now = (long long)time(NULL);
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", now);
    char *sig = hr_sign_standard(key, keylen, STD_ID, now, STD_BODY, strlen(STD_BODY));
    is_int(herald_webhook_verify(STD_SECRET, STD_ID, ts, sig, STD_BODY, strlen(STD_BODY), 0, err,
                                 sizeof err),
           HERALD_OK, "herald_webhook_verify: valid now");
    is_str(err, "", "and err is empty");
    is_int(herald_webhook_verify(STD_SECRET, STD_ID, ts, sig, "tampered", 8, 0, err, sizeof err),
           HERALD_E_AUTH, "herald_webhook_verify: tampered body is HERALD_E_AUTH");
    like(err, "no signature matches", "with the reason");
    is_int(herald_webhook_verify(STD_SECRET, STD_ID, STD_TS_TEXT, STD_SIG, STD_BODY,
                                 strlen(STD_BODY), 0, err, sizeof err),
           HERALD_E_AUTH, "herald_webhook_verify: the 2021 vector is stale today");
    like(err, "s old, more than the 300 s tolerance", "with the reason");
    is_int(herald_webhook_verify("not-a-secret", STD_ID, ts, sig, STD_BODY, strlen(STD_BODY), 0,
                                 err, sizeof err),
           HERALD_E_INVALID, "herald_webhook_verify: a non-whsec secret is HERALD_E_INVALID");
    like(err, "not whsec_", "with the reason");
    ok(strstr(err, "not-a-secret") == NULL, "and without the secret");
    is_int(herald_webhook_verify(STD_SECRET, NULL, ts, sig, STD_BODY, strlen(STD_BODY), 0, err,
                                 sizeof err),
           HERALD_E_AUTH, "herald_webhook_verify: a missing webhook-id is rejected");
    is_int(herald_webhook_verify(STD_SECRET, STD_ID, ts, sig, NULL, 5, 0, err, sizeof err),
           HERALD_E_INVALID, "herald_webhook_verify: NULL body with a length is invalid");
    is_int(herald_webhook_verify(STD_SECRET, STD_ID, ts, sig, STD_BODY, strlen(STD_BODY), 0, NULL,
                                 0),
           HERALD_OK, "herald_webhook_verify: err may be NULL");
    free(sig);

    char old[32];
    snprintf(old, sizeof old, "%lld", now - 3600);
    sig = hr_sign_standard(key, keylen, STD_ID, now - 3600, STD_BODY, strlen(STD_BODY));
    is_int(herald_webhook_verify(STD_SECRET, STD_ID, old, sig, STD_BODY, strlen(STD_BODY), 7200,
                                 err, sizeof err),
           HERALD_OK, "herald_webhook_verify: tolerance_s is honoured");
    free(sig);

    is_int(herald_github_verify(GH_SECRET, GH_SIG, GH_BODY, strlen(GH_BODY), err, sizeof err),
           HERALD_OK, "herald_github_verify: the vector is valid");
    is_int(herald_github_verify(GH_SECRET, GH_SIG, "Hello, World", 12, err, sizeof err),
           HERALD_E_AUTH, "herald_github_verify: a tampered body is HERALD_E_AUTH");
    is_int(herald_github_verify("", GH_SIG, GH_BODY, strlen(GH_BODY), err, sizeof err),
           HERALD_E_INVALID, "herald_github_verify: an empty secret is HERALD_E_INVALID");
    is_int(herald_github_verify(GH_SECRET, NULL, GH_BODY, strlen(GH_BODY), err, sizeof err),
           HERALD_E_AUTH, "herald_github_verify: a missing header is rejected");
}

int main(void)
{
    vectors();
    secrets();
    rotation();
    rejections();
    binary_and_empty();
    public_api();
    return done_testing();
}
