/* test_webhook.c - the webhook plugin's URL form, request building and response classes. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "internal.h"
#include "tap.h"
#include "plugintest.h"

/* Feed a synthetic response into interpret() and return the verdict. */
static herald_result classify_send(herald_channel *ch, long code, herald_status transport,
                                   const char *retry_after, const char *body)
{
    herald_exchange ex;
    hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
    /* Retry-After in lower case: the plugin must read it in any case. */
    return classify_ex(ch, NULL, &ex,
                       response_hdr(code, transport, "retry-after", retry_after, body));
}

static void expect(herald_channel *ch, long code, herald_status transport, herald_verdict v,
                   herald_status st, const char *label)
{
    verdict_is(classify_send(ch, code, transport, NULL, "x"), v, st, label);
}

/* Standard Webhooks: v1,base64(HMAC-SHA256(key, "id.ts.body")), computed here with
 * OpenSSL directly, independently of the plugin. */
static char *expected_v1(const char *b64key, const char *id, const char *ts, const char *body)
{
    size_t keylen;
    unsigned char *key = hr_base64_decode(b64key, &keylen);
    char *msg = hr_asprintf("%s.%s.%s", id, ts, body);
    unsigned char mac[32];
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)msg, strlen(msg), mac, &n);
    char *b64 = hr_base64(mac, n);
    char *out = hr_asprintf("v1,%s", b64);
    free(b64);
    free(msg);
    free(key);
    return out;
}

static void signing(void)
{
    const char *sec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const char *old = "whsec_dGhpcyBpcyB0aGUgcHJldmlvdXMgc2VjcmV0IGtleQ==";
    char err[1024];
    char until[32];
    snprintf(until, sizeof until, "%lld", hr_now_ms() / 1000 + 3600);
    herald_channel *ch = NULL;
    const char *kv[] = {"url", "http://127.0.0.1:9/in", "secret", sec, "payload", "envelope",
                        "old_secret", old, "old_secret_until", until, NULL};
    if (!ok(hr_channel_open_kv(loader, "webhook", "sub", kv, &ch, err, sizeof err) == HERALD_OK,
            "a signing webhook opens"))
        printf("#   %s\n", err);
    if (!ch)
        return;
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "vm.started";
    ev.title = "VM up";
    ev.body = "";
    hr_event_stamp(&ev);
    herald_message m = {.ev = &ev, .attempt = 3};
    herald_exchange ex;
    herald_result res = {0};
    hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
    plugin->info->send(ch->state, &m, &ex, &res);
    char *want_id = hr_asprintf("msg_%s", ev.id);
    is_str(header(&ex, "webhook-id"), want_id, "webhook-id: msg_ + the event id");
    free(want_id);
    const char *ts = header(&ex, "webhook-timestamp");
    long long t = ts ? atoll(ts) : 0;
    ok(t >= hr_now_ms() / 1000 - 5 && t <= hr_now_ms() / 1000, "webhook-timestamp: now");
    is_str(header(&ex, "X-Herald-Event"), "vm.started", "X-Herald-Event");
    is_str(header(&ex, "X-Herald-Delivery-Attempt"), "3", "X-Herald-Delivery-Attempt");
    const char *body = ex.body.data ? ex.body.data : "";
    char *prefix = hr_asprintf("{\"type\":\"vm.started\",\"timestamp\":\"%s\",\"data\":{\"id\":",
                               ev.timestamp);
    ok(!strncmp(body, prefix, strlen(prefix)), "envelope payload {type, timestamp, data}");
    free(prefix);
    char *v1 = expected_v1(sec + 6, header(&ex, "webhook-id"), ts ? ts : "", body);
    char *v1old = expected_v1(old + 6, header(&ex, "webhook-id"), ts ? ts : "", body);
    char *both = hr_asprintf("%s %s", v1, v1old);
    is_str(header(&ex, "webhook-signature"), both,
           "webhook-signature: current and previous key during the grace period");
    free(both);
    free(v1old);
    free(v1);
    char *red = hr_redact(sec);
    is_str(red, "***", "the secret is redacted");
    free(red);
    hr_exchange_clear(&ex);
    hr_channel_close(ch);

    /* GitHub style with the CONTRACTS.md vector; the idempotency key is the webhook-id. */
    const char *kv2[] = {"url", "http://127.0.0.1:9/in", "secret", "It's a Secret to Everybody",
                         "signature", "github", "body_template", "Hello, World!", NULL};
    ch = NULL;
    if (!ok(hr_channel_open_kv(loader, "webhook", "gh", kv2, &ch, err, sizeof err) == HERALD_OK,
            "a GitHub-signing webhook with a body template opens"))
        printf("#   %s\n", err);
    if (ch) {
        ev.idempotency_key = "order-42";
        hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
        plugin->info->send(ch->state, &m, &ex, &res);
        is_str(ex.body.data, "Hello, World!", "the body template's output is the body");
        is_str(header(&ex, "X-Hub-Signature-256"),
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
               "X-Hub-Signature-256 matches the GitHub test vector");
        is_str(header(&ex, "webhook-id"), "order-42", "webhook-id: the idempotency key");
        ok(!header(&ex, "webhook-signature"), "github only: no webhook-signature");
        hr_exchange_clear(&ex);
        hr_channel_close(ch);
        ev.idempotency_key = NULL;
    }

    /* Refusals. */
    const char *bad[][8] = {
        {"url", "http://x/", "signature", "standard", NULL, NULL},
        {"url", "http://x/", "secret", "whsec_short", NULL, NULL},
        {"url", "http://x/", "secret", sec, "signature", "hmac"},
    };
    const char *why[] = {"signing needs a secret", "24 to 64 random bytes", "signature must be"};
    for (size_t i = 0; i < 3; i++) {
        ch = NULL;
        ok(hr_channel_open_kv(loader, "webhook", "bad", bad[i], &ch, err, sizeof err) != HERALD_OK,
           "a bad signing setup is refused");
        like(err, why[i], "  ... saying why");
        hr_channel_close(ch);
    }
    /* Over max_payload: refused, never cut. */
    const char *kv3[] = {"url", "http://x/", "max_payload", "64", NULL};
    ch = NULL;
    hr_channel_open_kv(loader, "webhook", "small", kv3, &ch, err, sizeof err);
    if (ch) {
        hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
        res = (herald_result){0};
        plugin->info->send(ch->state, &m, &ex, &res);
        ok(res.set && res.verdict == HERALD_VERDICT_FAILED && res.status == HERALD_E_TOO_LARGE &&
               ex.kind == HR_EX_NONE,
           "a body over max_payload fails without a request");
        hr_exchange_clear(&ex);
        hr_channel_close(ch);
    }
}

int main(void)
{
    int status;
    if (!plugin_setup("webhook", "t", &status))
        return status;
    char err[1024] = "";

    /* Apprise URL form. */
    herald_channel *ch = open_url("json://u%40x:p%3Aw@example.org:8080/in/hook?method=put&"
                                  "+X-Api-Key=k%20ey&keep=1", err, sizeof err);
    if (!ok(ch != NULL, "json:// URL accepted"))
        printf("# %s\n", err);
    if (ch) {
        hr_setting *v = hr_settings_get(&ch->settings, "url");
        is_str(v ? v->str : NULL, "http://example.org:8080/in/hook?keep=1",
               "json:// becomes http://, unknown parameters stay");
        v = hr_settings_get(&ch->settings, "method");
        is_str(v ? v->str : NULL, "PUT", "method parameter");
        v = hr_settings_get(&ch->settings, "headers");
        ok(v && v->n == 2, "two headers from the URL");
        is_str(v && v->n > 0 ? v->keys[0] : NULL, "X-Api-Key", "+Header parameter");
        is_str(v && v->n > 0 ? v->vals[0] : NULL, "k ey", "header value unescaped");
        is_str(v && v->n > 1 ? v->vals[1] : NULL, "Basic dUB4OnA6dw==",
               "user:password become Basic auth");
        char *red = hr_redact("header k ey and Basic dUB4OnA6dw==");
        is_str(red, "header *** and ***", "credential headers are redacted");
        free(red);

        /* Request building. */
        herald_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = "backup.failed";
        ev.title = "T";
        ev.body = "B";
        hr_event_stamp(&ev);
        herald_message m = {.ev = &ev};
        herald_exchange ex;
        herald_result res = {0};
        hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
        is_int(plugin->info->send(ch->state, &m, &ex, &res), HERALD_OK, "send describes");
        is_int(ex.kind, HR_EX_HTTP, "an HTTP request");
        is_str(ex.method, "PUT", "with the configured method");
        is_str(ex.url, "http://example.org:8080/in/hook?keep=1", "to the URL");
        is_str(header(&ex, "Content-Type"), "application/json", "JSON content type");
        is_str(header(&ex, "X-Api-Key"), "k ey", "extra header");
        char *json = hr_event_json(&ev);
        is_str(ex.body.data, json, "body is the canonical event JSON");
        free(json);
        is_int(ex.timeout_ms, 10000, "default timeout 10 s");
        ok(ex.err == HERALD_OK, "no build error");
        hr_exchange_clear(&ex);

        /* test() without --send only connects. */
        hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
        plugin->info->test(ch->state, 0, &m, &ex, &res);
        is_int(ex.kind, HR_EX_CONNECT, "test connects without a request");
        hr_exchange_clear(&ex);
        hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
        plugin->info->test(ch->state, HERALD_TEST_SEND, &m, &ex, &res);
        is_int(ex.kind, HR_EX_HTTP, "test --send sends a request");
        hr_exchange_clear(&ex);

        /* Response classes. */
        expect(ch, 200, HERALD_OK, HERALD_VERDICT_OK, HERALD_OK, "200 ok");
        expect(ch, 204, HERALD_OK, HERALD_VERDICT_OK, HERALD_OK, "204 ok");
        expect(ch, 301, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_REDIRECT, "301 failed");
        expect(ch, 308, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_REDIRECT, "308 failed");
        expect(ch, 400, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "400 permanent");
        expect(ch, 401, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "401 auth");
        expect(ch, 404, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "404 permanent");
        expect(ch, 408, HERALD_OK, HERALD_VERDICT_RETRY, HERALD_E_TIMEOUT, "408 retry");
        expect(ch, 410, HERALD_OK, HERALD_VERDICT_DISABLE, HERALD_E_GONE, "410 disable");
        expect(ch, 429, HERALD_OK, HERALD_VERDICT_RETRY, HERALD_E_RATE_LIMITED, "429 retry");
        expect(ch, 500, HERALD_OK, HERALD_VERDICT_RETRY, HERALD_E_SERVER, "500 retry");
        expect(ch, 503, HERALD_OK, HERALD_VERDICT_RETRY, HERALD_E_SERVER, "503 retry");
        expect(ch, 0, HERALD_E_TIMEOUT, HERALD_VERDICT_RETRY, HERALD_E_TIMEOUT, "timeout retry");
        expect(ch, 0, HERALD_E_CONNECT, HERALD_VERDICT_RETRY, HERALD_E_CONNECT, "refused retry");
        expect(ch, 0, HERALD_E_TLS, HERALD_VERDICT_FAILED, HERALD_E_TLS, "TLS failure permanent");

        long long before = hr_now_ms();
        res = classify_send(ch, 429, HERALD_OK, "30", NULL);
        ok(res.retry_at >= before + 30000 && res.retry_at <= hr_now_ms() + 30000,
           "Retry-After seconds become retry_at");
        like(res.detail, "Retry-After: 30", "detail shows Retry-After");
        res = classify_send(ch, 503, HERALD_OK, "Wed, 21 Oct 2099 07:28:00 GMT", NULL);
        is_int(res.retry_at, 4096250880000LL, "Retry-After HTTP-date on 503");
        res = classify_send(ch, 500, HERALD_OK, NULL, "line1\r\nline2");
        like(res.detail, "HTTP 500: line1  line2", "body excerpt without control characters");
        hr_channel_close(ch);
    }

    ch = open_url("jsons://example.org", err, sizeof err);
    ok(ch && !strcmp(hr_settings_get(&ch->settings, "url")->str, "https://example.org/"),
       "jsons:// becomes https:// with a root path");
    hr_channel_close(ch);

    ch = open_url("json://example.org/?method=delete", err, sizeof err);
    ok(ch == NULL, "unsupported method refused");
    like(err, "method must be POST, PUT or PATCH", "and the message says which are allowed");

    ch = open_url("json://example.org/?+Bad%0AName=x", err, sizeof err);
    ok(ch == NULL, "CR/LF in a header name refused");

    signing();
    hr_loader_free(loader);
    return done_testing();
}
