/* test_url.c - URL splitting and redaction. */
#include "config.h"

#include <stdlib.h>

#include "internal.h"
#include "tap.h"

static void split_ok(const char *url, const char *scheme, const char *user, const char *pass,
                     const char *host, const char *port, const char *path, const char *query)
{
    hr_url u;
    char err[256] = "";
    int rc = hr_url_split(url, &u, err, sizeof err);
    if (!ok(rc == HERALD_OK, url)) {
        printf("# error: %s\n", err);
        return;
    }
    is_str(u.scheme, scheme, "scheme");
    is_str(u.user, user, "user");
    is_str(u.password, pass, "password");
    is_str(u.host, host, "host");
    is_str(u.port, port, "port");
    is_str(u.path, path, "path");
    is_str(u.query, query, "query");
    hr_url_free(&u);
}

static void split_bad(const char *url, const char *why)
{
    hr_url u;
    char err[256] = "";
    int rc = hr_url_split(url, &u, err, sizeof err);
    ok(rc == HERALD_E_INVALID, url);
    like(err, why, "error explains");
}

int main(void)
{
    split_ok("json://127.0.0.1:8080/hook", "json", NULL, NULL, "127.0.0.1", "8080", "/hook", NULL);
    split_ok("JSONS://example.org", "jsons", NULL, NULL, "example.org", NULL, "", NULL);
    split_ok("mailto://us%40er:p%3Ass@mail.example.org:587/?to=a@b", "mailto", "us@er", "p:ss",
             "mail.example.org", "587", "/", "to=a@b");
    split_ok("gotify://[::1]:80/path?x=1#frag", "gotify", NULL, NULL, "[::1]", "80", "/path", "x=1");
    split_ok("discord://user@host/id/token", "discord", "user", NULL, "host", NULL, "/id/token",
             NULL);

    split_bad("json://", "no host");
    split_bad("json://host:99999/", "port");
    split_bad("json://host:0/", "port");
    split_bad("json://host:abc/", "port");
    split_bad("hostonly", "not a URL");
    split_bad("://host", "not a URL");
    split_bad("js on://host", "spaces");
    split_bad("json://host/a\r\nX: y", "control");
    split_bad("json://u:%zz@host/", "escape");
    split_bad("json://u:%0a@host/", "control");
    split_bad("json://[::1/", "IPv6");

    char *r = hr_url_redact("json://user:secret@host/path");
    is_str(r, "json://user:***@host/path", "password redacted");
    free(r);
    r = hr_url_redact("json://host/path?token=x");
    is_str(r, "json://host/path?token=x", "nothing to redact");
    free(r);
    return done_testing();
}
