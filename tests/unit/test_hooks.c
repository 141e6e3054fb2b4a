/* test_hooks.c - the hooks group, request verification and receipts rendered into events. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hooks.h"
#include "sign.h"
#include "tap.h"

static char dir[] = "/tmp/herald-test-hooks-XXXXXX";

static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path = hr_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

/* Load "hooks = { TEXT };" (after three other lines); NULL with err on error. */
static hr_hooks *load(const char *text, char *err, size_t errlen)
{
    char *conf = hr_asprintf("database = \"%s/q.db\";\n\n\nhooks = { %s };\n", dir, text);
    char *path = write_file("herald.conf", conf, 0644);
    free(conf);
    hr_config *c = NULL;
    hr_hooks *h = NULL;
    err[0] = '\0';
    if (hr_config_load(path, &c, err, errlen) == HERALD_OK)
        hr_hooks_load(c, &h, err, errlen);
    hr_config_free(c);
    free(path);
    return h;
}

/* Refused with a one-line message at the hooks line that contains want. */
static void refused(const char *text, const char *want, const char *name)
{
    char err[1024];
    hr_hooks *h = load(text, err, sizeof err);
    ok(!h, name);
    char *at = hr_asprintf("%s/herald.conf:4: ", dir);
    ok(!strncmp(err, at, strlen(at)) && !strchr(err, '\n'), "  one line naming file:line");
    if (strncmp(err, at, strlen(at)))
        printf("# %s\n", err);
    like(err, want, "  and the fix");
    free(at);
    hr_hooks_free(h);
}

static void test_config(void)
{
    char err[1024];
    hr_hooks *h = load("", err, sizeof err);
    ok(h && h->n == 0, "an empty hooks group");
    hr_hooks_free(h);
    h = load("a = { scheme = \"github\"; secret = \"s\"; }; "
             "b-2 = { scheme = \"token\"; header = \"X-T\"; secret = \"t\"; id_header = \"X-Id\"; "
             "tenant = \"acme\"; max_body = 4096; }; "
             "c_3 = { scheme = \"standard\"; secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"; "
             "tolerance = \"2m\"; };",
             err, sizeof err);
    if (!ok(h && h->n == 3, "three sources"))
        printf("# %s\n", err);
    const hr_hook_source *a = hr_hooks_find(h, "a"), *b = hr_hooks_find(h, "b-2"),
                         *c = hr_hooks_find(h, "c_3");
    ok(a && a->scheme == HR_HOOK_GITHUB && !strcmp(a->type, "hook.a") &&
           !strcmp(a->title, "Webhook from a") && !strcmp(a->tenant, "default") &&
           a->max_body == 1024 * 1024,
       "defaults: type hook.NAME, a title, tenant default, 1 MiB");
    ok(b && b->scheme == HR_HOOK_TOKEN && !strcmp(b->header, "X-T") &&
           !strcmp(b->id_header, "X-Id") && !strcmp(b->tenant, "acme") && b->max_body == 4096,
       "token: header, id_header, tenant, max_body");
    ok(c && c->scheme == HR_HOOK_STANDARD && c->nkeys == 1 && c->keys[0].keylen == 24 && c->tolerance_s == 120,
       "standard: the decoded key, a tolerance as a duration");
    ok(!hr_hooks_find(h, "d") && !hr_hooks_find(h, NULL), "unknown names are not found");
    hr_hooks_free(h);

    refused("x = { scheme = \"hmac\"; secret = \"s\"; };", "unknown scheme 'hmac'",
            "an unknown scheme");
    refused("x = { secret = \"s\"; };", "has no scheme", "no scheme");
    refused("x = { scheme = \"github\"; };", "has no secret; add secret_file", "no secret");
    refused("x = { scheme = \"github\"; secret = \"s\"; secret_file = \"/x\"; };",
            "either secret or secret_file", "both secret and secret_file");
    refused("x = { scheme = \"standard\"; secret = \"whsec_AAAA\"; };",
            "whsec_ followed by base64", "a short whsec_ secret");
    refused("x = { scheme = \"github\"; secret = \"s\"; previous_secret = \"p\"; "
            "previous_secret_file = \"/x\"; };",
            "either previous_secret or previous_secret_file", "both previous secret settings");
    refused("x = { scheme = \"standard\"; secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"; "
            "previous_secret = \"whsec_AAAA\"; };",
            "whsec_ followed by base64", "a short whsec_ previous secret");
    refused("x = { scheme = \"github\"; previous_secret = \"p\"; };", "has no secret",
            "a previous secret without a current one");
    char *open_ = write_file("open.secret", "s3cret\n", 0640);
    char *text = hr_asprintf("x = { scheme = \"github\"; secret_file = \"%s\"; };", open_);
    refused(text, "chmod 600", "a secret file others may read");
    free(text);
    char *priv = write_file("priv.secret", "s3cret\n", 0600);
    text = hr_asprintf("x = { scheme = \"github\"; secret_file = \"%s\"; };", priv);
    h = load(text, err, sizeof err);
    ok(h && h->v[0].keys[0].keylen == 6 && !memcmp(h->v[0].keys[0].key, "s3cret", 6),
       "a private secret file, its first line without the newline");
    hr_hooks_free(h);
    free(text);
    free(open_);
    free(priv);
    refused("x = { scheme = \"token\"; secret = \"s\"; };", "needs the header", "token without header");
    refused("x = { scheme = \"github\"; secret = \"s\"; header = \"X-T\"; };",
            "for scheme \"token\" only", "header on another scheme");
    refused("x = { scheme = \"github\"; secret = \"s\"; tolerance = 5; };",
            "for scheme \"standard\" only", "tolerance on another scheme");
    refused("x = { scheme = \"standard\"; secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"; "
            "tolerance = 0; };", "1 s to 24 h", "a zero tolerance");
    refused("x = { scheme = \"github\"; secret = \"s\"; max_body = 100; };", "1024 to",
            "a tiny max_body");
    refused("x = { scheme = \"github\"; secret = \"s\"; title = \"{{#a}}\"; };",
            "hooks.x.title: template line 1: section without its closing tag",
            "a broken title template");
    refused("x = { scheme = \"github\"; secret = \"s\"; type = \"Push Hook\"; };",
            "is not an event type", "a fixed type that is not one");
    refused("x = { scheme = \"github\"; secret = \"s\"; severity = \"loud\"; };",
            "not one of debug", "a fixed severity that is not one");
    refused("x = { scheme = \"github\"; secret = \"s\"; fields = { a = 1; }; };",
            "fields.a must be a string", "a field that is not a string");
    refused("x = { scheme = \"github\"; secret = \"s\"; pointers = { a = \"/~2\"; }; };",
            "not a JSON pointer", "a bad escape in a pointer");
    refused("x = { scheme = \"github\"; secret = \"s\"; tenant = \"a b\"; };", "tenant must be",
            "a tenant with a space");
    refused("x = { scheme = \"github\"; secret = \"s\"; data = \"yes\"; };",
            "data must be true or false", "data not a boolean");
    refused("x = { scheme = \"github\"; secret = \"s\"; nope = 1; };", "unknown setting 'nope'",
            "an unknown setting");
    refused("Big = { scheme = \"github\"; secret = \"s\"; };", "lowercase letters",
            "an uppercase source name");
}

typedef struct hdr {
    const char *name, *value;
} hdr;

static const char *lookup(void *ctx, const char *name)
{
    for (const hdr *h = ctx; h->name; h++)
        if (!strcasecmp(h->name, name))
            return h->value;
    return NULL;
}

static void test_verify(void)
{
    char err[1024];
    hr_hooks *h = load("gh = { scheme = \"github\"; secret = \"It's a Secret to Everybody\"; }; "
                       "t = { scheme = \"token\"; header = \"Authorization\"; secret = \"s3kr1t\"; }; "
                       "s = { scheme = \"standard\"; secret = "
                       "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"; };",
                       err, sizeof err);
    if (!ok(h && h->n == 3, "verification sources"))
        return;
    const char *body = "Hello, World!";
    hdr gh_ok[] = {{"x-hub-signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c2"
                                           "2c46f4379c8b043e17"},
                   {NULL, NULL}};
    is_int(hr_hook_verify(hr_hooks_find(h, "gh"), lookup, gh_ok, body, strlen(body), 0, err,
                          sizeof err), 0, "github: the documented vector verifies");
    is_int(hr_hook_verify(hr_hooks_find(h, "gh"), lookup, gh_ok, body, strlen(body) - 1, 0, err,
                          sizeof err), -1, "github: a shorter body does not");
    char id[HR_HOOK_ID_MAX + 1];
    is_int(hr_hook_message_id(hr_hooks_find(h, "gh"), lookup, gh_ok, body, id, err, sizeof err), 0,
           "github without X-GitHub-Delivery: an id anyway");
    is_str(id, "sha256:dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f",
           "  the body's SHA-256");

    hdr t_ok[] = {{"Authorization", "Bearer s3kr1t"}, {NULL, NULL}};
    hdr t_raw[] = {{"Authorization", "s3kr1t"}, {NULL, NULL}};
    hdr t_bad[] = {{"Authorization", "Bearer guess"}, {NULL, NULL}};
    hdr none[] = {{NULL, NULL}};
    const hr_hook_source *t = hr_hooks_find(h, "t");
    is_int(hr_hook_verify(t, lookup, t_ok, "", 0, 0, err, sizeof err), 0, "token: Bearer s3kr1t");
    is_int(hr_hook_verify(t, lookup, t_raw, "", 0, 0, err, sizeof err), 0,
           "token: the bare token in Authorization");
    is_int(hr_hook_verify(t, lookup, t_bad, "", 0, 0, err, sizeof err), -1, "token: another one");
    ok(*err && !strstr(err, "s3kr1t") && !strstr(err, "guess"), "  and the message shows neither");
    is_int(hr_hook_verify(t, lookup, none, "", 0, 0, err, sizeof err), -1, "token: none");
    like(err, "Authorization header is missing", "  says which header");
    ok(!hr_hook_header_kept(t, "authorization") && !hr_hook_header_kept(t, "cookie") &&
           !hr_hook_header_kept(t, "webhook-signature") && hr_hook_header_kept(t, "x-event"),
       "credential and signature headers are not kept");

    /* Rotation: the previous secret verifies beside the current one, nothing else does. */
    hr_hooks *rot = load("gh = { scheme = \"github\"; secret = \"new secret\"; "
                         "previous_secret = \"It's a Secret to Everybody\"; }; "
                         "t = { scheme = \"token\"; header = \"Authorization\"; "
                         "secret = \"n3w\"; previous_secret = \"s3kr1t\"; };",
                         err, sizeof err);
    if (ok(rot && rot->n == 2 && rot->v[0].nkeys == 2, "previous_secret: two keys")) {
        is_int(hr_hook_verify(hr_hooks_find(rot, "gh"), lookup, gh_ok, body, strlen(body), 0,
                              err, sizeof err), 0, "github: signed with the previous secret");
        is_int(hr_hook_verify(hr_hooks_find(rot, "gh"), lookup, gh_ok, body, strlen(body) - 1,
                              0, err, sizeof err), -1, "github: a changed body fails both");
        hdr t_new[] = {{"Authorization", "Bearer n3w"}, {NULL, NULL}};
        const hr_hook_source *tr = hr_hooks_find(rot, "t");
        is_int(hr_hook_verify(tr, lookup, t_new, "", 0, 0, err, sizeof err), 0,
               "token: the current secret");
        is_int(hr_hook_verify(tr, lookup, t_ok, "", 0, 0, err, sizeof err), 0,
               "token: the previous secret");
        is_int(hr_hook_verify(tr, lookup, t_bad, "", 0, 0, err, sizeof err), -1,
               "token: neither");
    }
    hr_hooks_free(rot);

    const char *sbody = "{\"test\": 2432232314}";
    hdr s_ok[] = {{"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
                  {"webhook-timestamp", "1614265330"},
                  {"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
                  {NULL, NULL}};
    const hr_hook_source *s = hr_hooks_find(h, "s");
    is_int(hr_hook_verify(s, lookup, s_ok, sbody, strlen(sbody), 1614265330 + 299, err,
                          sizeof err), 0, "standard: the test vector, 299 s later");
    is_int(hr_hook_verify(s, lookup, s_ok, sbody, strlen(sbody), 1614265330 + 301, err,
                          sizeof err), -1, "standard: 301 s later it is stale");
    is_int(hr_hook_message_id(s, lookup, s_ok, sbody, id, err, sizeof err), 0, "standard: its id");
    is_str(id, "msg_p5jXN8AQM9LWM0D4loKWxJek", "  is the webhook-id");
    char longid[300];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    hdr s_long[] = {{"webhook-id", longid}, {NULL, NULL}};
    is_int(hr_hook_message_id(s, lookup, s_long, sbody, id, err, sizeof err), -1,
           "an id over 200 characters is refused");
    hr_hooks_free(h);
}

static void test_event(void)
{
    char err[1024];
    hr_hooks *h = load("x = { scheme = \"github\"; secret = \"s\"; type = \"x.{{headers.x-ev}}\"; "
                       "title = \"{{body.a.b}} {{pointers.p}} {{pointers.q}}\"; "
                       "severity = \" {{body.lvl}}\\n\"; user = \"{{body.who}}\"; "
                       "body = \"{{#body.list}}[{{.}}]{{/body.list}}\"; "
                       "fields = { one = \"{{body.list.0}}\"; none = \"{{body.nothing}}\"; "
                       "id = \"{{id}}\"; }; "
                       "pointers = { p = \"/k~1v/x~0y\"; q = \"/list/1\"; }; };",
                       err, sizeof err);
    if (!ok(h && h->n == 1, "event source"))
        return;
    const hr_hook_source *src = &h->v[0];
    hr_receipt r = {.source = "x", .message_id = "m1", .headers = "{\"x-ev\":\"push\"}",
                    .body = "{\"a\":{\"b\":\"hi\"},\"k/v\":{\"x~y\":\"ptr\"},\"list\":[\"l0\","
                            "7],\"lvl\":\"Warning\"}",
                    .tenant = "t1", .received_ms = 1700000000000LL};
    r.body_len = strlen(r.body);
    herald_event ev;
    is_int(hr_hook_event(src, &r, &ev, err, sizeof err), HERALD_OK, "a receipt renders");
    is_str(ev.type, "x.push", "type from a header");
    is_str(ev.title, "hi ptr 7", "title from the body and JSON pointers (escapes, array items)");
    is_int(ev.severity, HERALD_SEVERITY_WARNING, "severity trimmed, any case");
    ok(ev.user == NULL, "a user that renders empty is none");
    is_str(ev.body, "[l0][7]", "sections over a list");
    is_int((long long)ev.nfields, 2, "a field that renders empty is left out");
    ok(ev.nfields == 2 && !strcmp(ev.fields[0].name, "one") && !strcmp(ev.fields[0].value, "l0") &&
           !strcmp(ev.fields[1].name, "id") && !strcmp(ev.fields[1].value, "m1"),
       "fields in order: list.0 and the message id");
    is_str(ev.tenant, "t1", "the receipt's tenant (its source's when it came)");
    is_str(ev.source, "x", "the source's name as the event's source");
    is_str(ev.idempotency_key, "hook:x:m1", "an idempotency key from source and message id");
    ok(ev.data == NULL, "no data unless asked");
    hr_event_clear(&ev);

    r.body = "{\"lvl\":\"loud\"}";
    r.body_len = strlen(r.body);
    is_int(hr_hook_event(src, &r, &ev, err, sizeof err), HERALD_E_INVALID,
           "a severity that renders as no severity");
    like(err, "hooks.x.severity rendered 'loud'", "  says which template and what it gave");
    r.body = "[1, 2";
    r.body_len = strlen(r.body);
    is_int(hr_hook_event(src, &r, &ev, err, sizeof err), HERALD_E_INVALID,
           "a stored body that is not JSON");
    hr_hooks_free(h);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 99;
    test_config();
    test_verify();
    test_event();
    char *cmd = hr_asprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    free(cmd);
    return done_testing();
}
