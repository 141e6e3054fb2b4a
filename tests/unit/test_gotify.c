/* test_gotify.c - the gotify plugin with no network: URL form, request, response classes. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tap.h"
#include "plugintest.h"

/* Feed a synthetic response to interpret(); purpose/steps say which request it answers. */
static herald_result classify_get(herald_channel *ch, herald_purpose purpose, int steps, long code,
                                  herald_status transport, const char *body)
{
    herald_exchange ex;
    hr_exchange_init(&ex, purpose);
    for (int i = 0; i < steps; i++)
        hr_host.http_request(&ex, "GET", "http://x/");
    return classify_ex(ch, NULL, &ex, response(code, transport, NULL, body));
}

static void expect(herald_channel *ch, long code, herald_status transport, herald_verdict v,
                   herald_status st, const char *label)
{
    verdict_is(classify_get(ch, HERALD_PURPOSE_SEND, 1, code, transport,
                            "{\"error\":\"x\",\"errorCode\":1,\"errorDescription\":\"why\"}"),
               v, st, label);
}

int main(void)
{
    int status;
    if (!plugin_setup("gotify", "t", &status))
        return status;
    char err[1024] = "";
    herald_channel *ch = NULL;
    if (hr_channel_open_url(loader, "t", "gotifys://push.example.org:8443/gotify/AbC.123", &ch,
                            err, sizeof err) != HERALD_OK)
        printf("# %s\n", err);
    if (!ok(ch != NULL, "gotifys:// URL accepted"))
        return done_testing();
    hr_setting *v = hr_settings_get(&ch->settings, "url");
    is_str(v ? v->str : NULL, "https://push.example.org:8443/gotify",
           "gotifys:// becomes https://, the path prefix stays");
    v = hr_settings_get(&ch->settings, "token");
    is_str(v ? v->str : NULL, "AbC.123", "the last path segment is the token");
    char *red = hr_redact("token AbC.123 leaked?");
    is_str(red, "token *** leaked?", "the token is a secret: redacted everywhere");
    free(red);
    herald_channel *bad = NULL;
    ok(hr_channel_open_url(loader, "t", "gotify://push.example.org/", &bad, err, sizeof err) !=
           HERALD_OK, "a URL without a token is refused");
    like(err, "gotify://host[:port][/path]/TOKEN", "and the error shows the form");

    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "disk.full";
    ev.title = "Disk \"full\"";
    ev.body = "";
    ev.severity = HERALD_SEVERITY_CRITICAL;
    hr_event_stamp(&ev);
    herald_message m = {.ev = &ev};
    herald_exchange ex;
    herald_result res = {0};
    hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
    is_int(plugin->info->send(ch->state, &m, &ex, &res), HERALD_OK, "send describes a request");
    is_str(ex.method, "POST", "POST");
    is_str(ex.url, "https://push.example.org:8443/gotify/message", "to {base}/message");
    is_str(header(&ex, "X-Gotify-Key"), "AbC.123", "token in X-Gotify-Key");
    ok(!strstr(ex.url, "token"), "not in the URL");
    is_str(ex.body.data,
           "{\"title\":\"Disk \\\"full\\\"\",\"message\":\"Disk \\\"full\\\"\",\"priority\":10,"
           "\"extras\":{\"client::display\":{\"contentType\":\"text/markdown\"}}}",
           "JSON escaped; critical -> 10; empty body -> the title");
    hr_exchange_clear(&ex);

    /* A user's own token (the delivery's address) wins over the channel's. */
    m.address = "User.Tok";
    hr_exchange_init(&ex, HERALD_PURPOSE_SEND);
    plugin->info->send(ch->state, &m, &ex, &res);
    is_str(header(&ex, "X-Gotify-Key"), "User.Tok", "addressed: the user's token is used");
    hr_exchange_clear(&ex);

    expect(ch, 200, HERALD_OK, HERALD_VERDICT_OK, HERALD_OK, "200 ok");
    expect(ch, 302, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_REDIRECT, "302 failed");
    expect(ch, 400, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "400 rejected");
    expect(ch, 401, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "401 auth");
    expect(ch, 403, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "403 auth");
    expect(ch, 404, HERALD_OK, HERALD_VERDICT_FAILED, HERALD_E_NOT_FOUND, "404 wrong url");
    expect(ch, 429, HERALD_OK, HERALD_VERDICT_RETRY, HERALD_E_RATE_LIMITED, "429 retry");
    expect(ch, 500, HERALD_OK, HERALD_VERDICT_RETRY, HERALD_E_SERVER, "500 retry");
    expect(ch, 503, HERALD_OK, HERALD_VERDICT_RETRY, HERALD_E_SERVER, "503 retry");
    expect(ch, 0, HERALD_E_CONNECT, HERALD_VERDICT_RETRY, HERALD_E_CONNECT, "refused: retry");
    expect(ch, 0, HERALD_E_TIMEOUT, HERALD_VERDICT_RETRY, HERALD_E_TIMEOUT, "timeout: retry");
    expect(ch, 0, HERALD_E_TLS, HERALD_VERDICT_FAILED, HERALD_E_TLS, "TLS failure: failed");
    res = classify_get(ch, HERALD_PURPOSE_SEND, 1, 401, HERALD_OK,
                       "{\"error\":\"Unauthorized\",\"errorCode\":401,\"errorDescription\":"
                       "\"you need to provide a valid access token\"}");
    like(res.detail, "you need to provide a valid access token",
         "the detail quotes errorDescription");

    /* The side-effect-free test: /version answered by Gotify -> the token probe. */
    res = classify_get(ch, HERALD_PURPOSE_TEST, 1, 200, HERALD_OK, "{\"version\":\"2.4.0\"}");
    is_int(res.verdict, HERALD_VERDICT_CONTINUE, "test: Gotify's /version -> probe the token");
    res = classify_get(ch, HERALD_PURPOSE_TEST, 1, 200, HERALD_OK, "<html>hello</html>");
    is_int(res.status, HERALD_E_PROTOCOL, "test: a /version that is not Gotify's fails");
    res = classify_get(ch, HERALD_PURPOSE_TEST, 2, 400, HERALD_OK,
                       "{\"errorDescription\":\"Field 'message' is required\"}");
    ok(res.verdict == HERALD_VERDICT_OK && strstr(res.detail, "nothing was stored"),
       "test: 400 to {} means the token is good");
    res = classify_get(ch, HERALD_PURPOSE_TEST, 2, 401, HERALD_OK, "{}");
    is_int(res.status, HERALD_E_AUTH, "test: 401 to {} means a bad token");

    hr_channel_close(ch);
    hr_loader_free(loader);
    return done_testing();
}
