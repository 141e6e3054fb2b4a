/* hooks.c - inbound webhooks: the hooks group, verifying requests, receipts into events. */
#include "config.h"

#include <ctype.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libconfig.h>
#include <openssl/crypto.h>

#include "hooks.h"
#include "sign.h"
#include "submit.h"
#include "template.h"

#define SECRET_FILE_MAX (64 * 1024)
#define DEFAULT_MAX_BODY (1024 * 1024)
#define MAX_MAX_BODY (64 * 1024 * 1024)
#define NAME_MAX_LEN 64

static const char *const known_keys[] = {
    "scheme", "secret", "secret_file", "previous_secret", "previous_secret_file", "header",
    "id_header", "tolerance", "max_body", "tenant", "type", "title", "body", "severity", "user",
    "fields", "pointers", "data", NULL,
};

/* Headers never kept with a receipt: they carry credentials or signatures. */
static const char *const dropped_headers[] = {
    "authorization", "proxy-authorization", "cookie", "webhook-signature", "x-hub-signature",
    "x-hub-signature-256", NULL,
};

/* ---- configuration ---- */

#define FAIL_AT(setting, ...)                                                          \
    do {                                                                               \
        const char *f_ = config_setting_source_file(setting);                          \
        int n_ = snprintf(err, errlen, "%s:%u: ", f_ ? f_ : path,                       \
                          config_setting_source_line(setting));                        \
        if (n_ > 0 && (size_t)n_ < errlen)                                             \
            snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                      \
        goto fail;                                                                     \
    } while (0)

static int in_list(const char *const *list, const char *s, int any_case)
{
    for (; *list; list++)
        if (any_case ? !strcasecmp(*list, s) : !strcmp(*list, s))
            return 1;
    return 0;
}

/* The source's name is the last segment of its URL. */
static int valid_source_name(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > NAME_MAX_LEN)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

static int valid_word(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > NAME_MAX_LEN)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

/* A header name: RFC 9110 token characters. */
static int valid_header_name(const char *s)
{
    if (!*s || strlen(s) > 128)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

/* RFC 6901: "" or "/" followed by tokens where '~' is only "~0" or "~1". */
static int valid_pointer(const char *p)
{
    if (*p && *p != '/')
        return 0;
    for (; *p; p++)
        if (*p == '~' && p[1] != '0' && p[1] != '1')
            return 0;
    return 1;
}

/* An empty context shows a template's syntax errors at load time. */
static json_t *probe_context(void)
{
    return json_pack("{s:s, s:s, s:s, s:{}, s:{}, s:{}}", "source", "", "id", "", "received", "",
                     "headers", "body", "pointers");
}

static int template_ok(const char *t, char *why, size_t whylen)
{
    json_t *ctx = probe_context();
    char *out = hr_template_render(t, ctx, HR_TEMPLATE_RAW, 0, why, whylen);
    json_decref(ctx);
    free(out);
    return out != NULL;
}

static void trim(char *s)
{
    size_t n = strlen(s), start = strspn(s, " \t\r\n");
    while (n > start && strchr(" \t\r\n", s[n - 1]))
        n--;
    memmove(s, s + start, n - start);
    s[n - start] = '\0';
}

static void source_clear(hr_hook_source *h)
{
    free(h->name);
    free(h->origin);
    for (size_t k = 0; k < HR_ARRAY_LEN(h->keys); k++) {
        if (h->keys[k].key) {
            OPENSSL_cleanse(h->keys[k].key, h->keys[k].keylen);
            free(h->keys[k].key);
        }
        OPENSSL_cleanse(h->keys[k].token_hash, sizeof h->keys[k].token_hash);
    }
    free(h->header);
    free(h->id_header);
    free(h->tenant);
    free(h->type);
    free(h->title);
    free(h->body);
    free(h->severity);
    free(h->user);
    for (size_t i = 0; i < h->nfields; i++) {
        free(h->fields[i].name);
        free(h->fields[i].value);
    }
    free(h->fields);
    for (size_t i = 0; i < h->npointers; i++) {
        free(h->pointers[i].name);
        free(h->pointers[i].value);
    }
    free(h->pointers);
    memset(h, 0, sizeof *h);
}

void hr_hooks_free(hr_hooks *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        source_clear(&h->v[i]);
    free(h->v);
    free(h);
}

const hr_hook_source *hr_hooks_find(const hr_hooks *h, const char *name)
{
    for (size_t i = 0; h && name && i < h->n; i++)
        if (!strcmp(h->v[i].name, name))
            return &h->v[i];
    return NULL;
}

/* A string member, or NULL; 0 (err set) when present but not a string. */
static int get_string(config_setting_t *g, const char *key, const char **out)
{
    config_setting_t *m = config_setting_get_member(g, key);
    *out = NULL;
    if (!m)
        return 1;
    *out = config_setting_get_string(m);
    return *out != NULL;
}

/* A secret of a source: KEY = "..." or KEY_file = "/path" (private), KEY being
 * "secret" or "previous_secret". *where is the setting it came from. NULL
 * with err set on error; NULL with err "" when an optional one is absent. */
static char *read_secret(config_setting_t *g, const char *name, const char *key, int optional,
                         const char *path, config_setting_t **where, char *err, size_t errlen)
{
    char fkey[32];
    snprintf(fkey, sizeof fkey, "%s_file", key);
    config_setting_t *inline_ = config_setting_get_member(g, key);
    config_setting_t *file = config_setting_get_member(g, fkey);
    char *val = NULL;
    err[0] = '\0';
    *where = inline_ ? inline_ : file;
    if (inline_ && file)
        FAIL_AT(file, "hooks.%s: give either %s or %s, not both", name, key, fkey);
    if (!inline_ && !file) {
        if (optional)
            return NULL;
        FAIL_AT(g, "hooks.%s has no secret; add secret_file = \"/etc/herald/%s.secret\"; (a "
                "file only its owner can read) or secret = \"...\";", name, name);
    }
    if (inline_) {
        const char *s = config_setting_get_string(inline_);
        if (!s || !*s)
            FAIL_AT(inline_, "hooks.%s: %s must be a non-empty string", name, key);
        val = hr_strdup(s);
    } else {
        const char *p = config_setting_get_string(file);
        char ferr[512];
        if (!p || !*p)
            FAIL_AT(file, "hooks.%s: %s must be a file path", name, fkey);
        if (!(val = hr_read_file(p, 1, SECRET_FILE_MAX, ferr, sizeof ferr)))
            FAIL_AT(file, "hooks.%s: %s: %s", name, fkey, ferr);
        val[strcspn(val, "\r\n")] = '\0'; /* one line; a trailing newline is common */
        if (!*val) {
            free(val);
            val = NULL;
            FAIL_AT(file, "hooks.%s: %s %s is empty; put the secret in it", name, fkey, p);
        }
    }
    if (hr_has_ctl(val)) {
        OPENSSL_cleanse(val, strlen(val));
        free(val);
        val = NULL;
        FAIL_AT(*where, "hooks.%s: the %s contains control characters", name,
                inline_ ? key : fkey);
    }
    return val;
fail:
    return NULL;
}

/* Key material of one secret for the source's scheme; 0, or -1 with err set. */
static int set_key(hr_hook_source *h, struct hr_hook_key *k, const char *secret,
                   config_setting_t *m, const char *path, char *err, size_t errlen)
{
    const char *name = h->name;
    hr_secret_add(secret);
    if (h->scheme == HR_HOOK_STANDARD) {
        k->key = hr_malloc(HR_WHSEC_MAX_BYTES);
        if (hr_whsec_decode(secret, k->key, &k->keylen) != 0)
            FAIL_AT(m, "hooks.%s: a Standard Webhooks secret is whsec_ followed by base64 of "
                    "%d to %d bytes (herald webhook create makes one)", name, HR_WHSEC_MIN_BYTES,
                    HR_WHSEC_MAX_BYTES);
    } else if (h->scheme == HR_HOOK_GITHUB) {
        k->keylen = strlen(secret);
        k->key = (unsigned char *)hr_strdup(secret);
    } else {
        hr_sha256_hex(secret, k->token_hash);
    }
    return 0;
fail:
    return -1;
}

/* A group of name = "string" pairs (fields, pointers). */
static int read_pairs(config_setting_t *m, const char *name, const char *what, const char *path,
                      hr_hook_pair **out, size_t *n, char *err, size_t errlen)
{
    if (!config_setting_is_group(m))
        FAIL_AT(m, "hooks.%s.%s must be a group of name = \"...\" pairs, e.g. %s = { repo = "
                "\"%s\"; };", name, what, what,
                !strcmp(what, "fields") ? "{{body.repository.full_name}}" : "/repository/name");
    int len = config_setting_length(m);
    *out = hr_calloc((size_t)len + 1, sizeof **out);
    for (int i = 0; i < len; i++) {
        config_setting_t *it = config_setting_get_elem(m, (unsigned)i);
        const char *v = config_setting_get_string(it);
        char why[256];
        if (!v)
            FAIL_AT(it, "hooks.%s.%s.%s must be a string", name, what, config_setting_name(it));
        if (!strcmp(what, "fields") && !template_ok(v, why, sizeof why))
            FAIL_AT(it, "hooks.%s.fields.%s: %s", name, config_setting_name(it), why);
        if (!strcmp(what, "pointers") && !valid_pointer(v))
            FAIL_AT(it, "hooks.%s.pointers.%s: \"%s\" is not a JSON pointer; write \"/a/b/0\" "
                    "(RFC 6901: ~1 for '/', ~0 for '~' in a key)", name, config_setting_name(it),
                    v);
        (*out)[*n].name = hr_strdup(config_setting_name(it));
        (*out)[(*n)++].value = hr_strdup(v);
    }
    return 1;
fail:
    return 0;
}

static herald_status load_source(config_setting_t *g, const char *path, hr_hook_source *h,
                                 char *err, size_t errlen)
{
    const char *name = config_setting_name(g);
    char *secret = NULL;
    if (!config_setting_is_group(g))
        FAIL_AT(g, "hooks.%s must be a group: %s = { scheme = \"standard\"; secret_file = "
                "\"...\"; };", name, name);
    if (!valid_source_name(name))
        FAIL_AT(g, "hook source '%s': use lowercase letters, digits, '-' and '_' (it is the "
                "URL path /v1/hooks/%s)", name, name);
    h->name = hr_strdup(name);
    h->origin = hr_asprintf("%s:%u", config_setting_source_file(g) ? config_setting_source_file(g)
                                                                   : path,
                            config_setting_source_line(g));
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        if (!in_list(known_keys, config_setting_name(m), 0))
            FAIL_AT(m, "hooks.%s: unknown setting '%s'; known: scheme, secret, secret_file, "
                    "previous_secret, previous_secret_file, header, id_header, tolerance, "
                    "max_body, tenant, type, title, body, severity, user, fields, pointers, "
                    "data", name, config_setting_name(m));
    }
    const char *scheme = NULL, *s = NULL;
    config_setting_t *m;
    if (!(m = config_setting_get_member(g, "scheme")))
        FAIL_AT(g, "hooks.%s has no scheme; add scheme = \"standard\"; (Standard Webhooks), "
                "\"github\" (X-Hub-Signature-256) or \"token\" (a shared token header)", name);
    scheme = config_setting_get_string(m);
    if (!scheme || (strcmp(scheme, "standard") && strcmp(scheme, "github") &&
                    strcmp(scheme, "token")))
        FAIL_AT(m, "hooks.%s: unknown scheme '%s'; use \"standard\" (Standard Webhooks), "
                "\"github\" (X-Hub-Signature-256) or \"token\" (a shared token header)", name,
                scheme ? scheme : "(not a string)");
    h->scheme = !strcmp(scheme, "standard") ? HR_HOOK_STANDARD
                : !strcmp(scheme, "github") ? HR_HOOK_GITHUB
                                            : HR_HOOK_TOKEN;
    /* The secret, and the previous one while a sender rotates: either verifies. */
    for (h->nkeys = 0; h->nkeys < HR_ARRAY_LEN(h->keys); h->nkeys++) {
        secret = read_secret(g, name, h->nkeys ? "previous_secret" : "secret", h->nkeys != 0,
                             path, &m, err, errlen);
        if (!secret && *err)
            goto fail_quiet;
        if (!secret)
            break;
        int bad = set_key(h, &h->keys[h->nkeys], secret, m, path, err, errlen);
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
        secret = NULL;
        if (bad)
            goto fail_quiet;
    }
    if (!get_string(g, "header", &s) || (s && !valid_header_name(s)))
        FAIL_AT(config_setting_get_member(g, "header"), "hooks.%s: header must be a header "
                "name, e.g. header = \"X-Hook-Token\";", name);
    if (s && h->scheme != HR_HOOK_TOKEN)
        FAIL_AT(config_setting_get_member(g, "header"), "hooks.%s: header is for scheme "
                "\"token\" only (the others have their own headers); remove it", name);
    if (h->scheme == HR_HOOK_TOKEN && !s)
        FAIL_AT(g, "hooks.%s: scheme \"token\" needs the header carrying the token, e.g. "
                "header = \"X-Gitlab-Token\"; (\"Authorization\" takes \"Bearer TOKEN\")", name);
    h->header = hr_strdup(s);
    if (!get_string(g, "id_header", &s) || (s && !valid_header_name(s)))
        FAIL_AT(config_setting_get_member(g, "id_header"), "hooks.%s: id_header must be a "
                "header name, e.g. id_header = \"X-Request-Id\";", name);
    if (s && h->scheme != HR_HOOK_TOKEN)
        FAIL_AT(config_setting_get_member(g, "id_header"), "hooks.%s: id_header is for scheme "
                "\"token\" only (the others have their own message id); remove it", name);
    h->id_header = hr_strdup(s);
    h->tolerance_s = 300;
    if ((m = config_setting_get_member(g, "tolerance"))) {
        int t = config_setting_type(m);
        long long ms = -1;
        if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
            ms = config_setting_get_int64(m) * 1000;
        else if (config_setting_get_string(m) &&
                 hr_parse_duration(config_setting_get_string(m), &ms) != HERALD_OK)
            ms = -1;
        if (h->scheme != HR_HOOK_STANDARD)
            FAIL_AT(m, "hooks.%s: tolerance is for scheme \"standard\" only (the others sign "
                    "no time); remove it", name);
        if (ms < 1000 || ms > 24LL * 3600 * 1000)
            FAIL_AT(m, "hooks.%s: tolerance must be 1 s to 24 h, e.g. tolerance = \"5m\"; or "
                    "300", name);
        h->tolerance_s = (long)(ms / 1000);
    }
    h->max_body = DEFAULT_MAX_BODY;
    if ((m = config_setting_get_member(g, "max_body"))) {
        int t = config_setting_type(m);
        long long v = config_setting_get_int64(m);
        if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || v < 1024 || v > MAX_MAX_BODY)
            FAIL_AT(m, "hooks.%s: max_body must be a number of bytes from 1024 to %d", name,
                    MAX_MAX_BODY);
        h->max_body = (size_t)v;
    }
    if (!get_string(g, "tenant", &s) || (s && !valid_word(s)))
        FAIL_AT(config_setting_get_member(g, "tenant"), "hooks.%s: tenant must be letters, "
                "digits, '-', '_' or '.' (as herald token create --tenant takes)", name);
    h->tenant = hr_strdup(s ? s : "default");
    static const char *const tkeys[] = {"type", "title", "body", "severity", "user"};
    char **tvals[] = {&h->type, &h->title, &h->body, &h->severity, &h->user};
    for (size_t k = 0; k < HR_ARRAY_LEN(tkeys); k++) {
        char why[256];
        if (!get_string(g, tkeys[k], &s))
            FAIL_AT(config_setting_get_member(g, tkeys[k]), "hooks.%s: %s must be a string "
                    "(a template such as \"{{body.action}}\")", name, tkeys[k]);
        if (s && !template_ok(s, why, sizeof why))
            FAIL_AT(config_setting_get_member(g, tkeys[k]), "hooks.%s.%s: %s", name, tkeys[k],
                    why);
        *tvals[k] = hr_strdup(s);
    }
    if (!h->type)
        h->type = hr_asprintf("hook.%s", name);
    if (!h->title)
        h->title = hr_asprintf("Webhook from %s", name);
    if (!strstr(h->type, "{{") && !hr_valid_event_type(h->type))
        FAIL_AT(config_setting_get_member(g, "type") ? config_setting_get_member(g, "type") : g,
                "hooks.%s: type '%s' is not an event type; use lowercase dotted words like "
                "%s.push, or a template like \"%s.{{headers.x-event}}\"", name, h->type,
                name, name);
    herald_severity sev;
    if (h->severity && !strstr(h->severity, "{{") && !hr_severity_parse(h->severity, &sev))
        FAIL_AT(config_setting_get_member(g, "severity"), "hooks.%s: severity '%s' is not one "
                "of debug, info, notice, warning, error, critical", name, h->severity);
    if ((m = config_setting_get_member(g, "fields")) &&
        !read_pairs(m, name, "fields", path, &h->fields, &h->nfields, err, errlen))
        goto fail_quiet;
    if ((m = config_setting_get_member(g, "pointers")) &&
        !read_pairs(m, name, "pointers", path, &h->pointers, &h->npointers, err, errlen))
        goto fail_quiet;
    if ((m = config_setting_get_member(g, "data"))) {
        if (config_setting_type(m) != CONFIG_TYPE_BOOL)
            FAIL_AT(m, "hooks.%s: data must be true or false (keep the request body as the "
                    "event's data)", name);
        h->data = config_setting_get_bool(m);
    }
    return HERALD_OK;
fail:
fail_quiet:
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
    return HERALD_E_CONFIG;
}

herald_status hr_hooks_load(const hr_config *cfg, hr_hooks **out, char *err, size_t errlen)
{
    const char *path = cfg->path ? cfg->path : "config";
    hr_hooks *h = hr_calloc(1, sizeof *h);
    config_setting_t *g = cfg->cfg ? config_lookup(cfg->cfg, "hooks") : NULL;
    *out = NULL;
    if (g) {
        if (!config_setting_is_group(g))
            FAIL_AT(g, "'hooks' must be a group of sources: hooks = { github = { scheme = "
                    "\"github\"; secret_file = \"/etc/herald/github.secret\"; }; };");
        int n = config_setting_length(g);
        h->v = hr_calloc((size_t)n + 1, sizeof *h->v);
        for (int i = 0; i < n; i++) {
            if (load_source(config_setting_get_elem(g, (unsigned)i), path, &h->v[h->n], err,
                            errlen) != HERALD_OK) {
                h->n++; /* free what it got */
                goto fail_quiet;
            }
            h->n++;
        }
    }
    *out = h;
    return HERALD_OK;
fail:
fail_quiet:
    hr_hooks_free(h);
    return HERALD_E_CONFIG;
}

/* ---- requests ---- */

/* One key against the request; 0 or -1 with err set. */
static int verify_key(const hr_hook_source *src, const struct hr_hook_key *k,
                      hr_hook_header_fn header, void *ctx, const char *body, size_t len,
                      long long now_s, char *err, size_t errlen)
{
    switch (src->scheme) {
    case HR_HOOK_STANDARD:
        return hr_verify_standard(k->key, k->keylen, header(ctx, "webhook-id"),
                                  header(ctx, "webhook-timestamp"),
                                  header(ctx, "webhook-signature"), body, len, now_s,
                                  src->tolerance_s, err, errlen) == HR_SIG_OK
                   ? 0
                   : -1;
    case HR_HOOK_GITHUB:
        return hr_verify_github(k->key, k->keylen, header(ctx, "X-Hub-Signature-256"), body,
                                len, err, errlen) == HR_SIG_OK
                   ? 0
                   : -1;
    case HR_HOOK_TOKEN: {
        const char *v = header(ctx, src->header);
        if (v && !strcasecmp(src->header, "Authorization") && !strncasecmp(v, "Bearer ", 7))
            for (v += 7; *v == ' ';)
                v++;
        if (!v || !*v) {
            snprintf(err, errlen, "the %s header is missing", src->header);
            return -1;
        }
        /* Hashes first: the compare then takes the same time whatever the length. */
        char got[65];
        hr_sha256_hex(v, got);
        int same = CRYPTO_memcmp(got, k->token_hash, 64) == 0;
        OPENSSL_cleanse(got, sizeof got);
        if (!same) {
            snprintf(err, errlen, "the %s header does not hold the configured token",
                     src->header);
            return -1;
        }
        return 0;
    }
    }
    snprintf(err, errlen, "unknown scheme");
    return -1;
}

int hr_hook_verify(const hr_hook_source *src, hr_hook_header_fn header, void *ctx,
                   const char *body, size_t len, long long now_s, char *err, size_t errlen)
{
    /* Every key is tried, so the time taken does not tell which one matched;
     * the reason reported is the current secret's. */
    int ok = 0;
    char other[256];
    for (size_t i = 0; i < src->nkeys; i++)
        ok |= verify_key(src, &src->keys[i], header, ctx, body, len, now_s,
                         i ? other : err, i ? sizeof other : errlen) == 0;
    return ok ? 0 : -1;
}

int hr_hook_message_id(const hr_hook_source *src, hr_hook_header_fn header, void *ctx,
                       const char *body, char out[HR_HOOK_ID_MAX + 1], char *err, size_t errlen)
{
    const char *name = src->scheme == HR_HOOK_STANDARD ? "webhook-id"
                       : src->scheme == HR_HOOK_GITHUB ? "X-GitHub-Delivery"
                                                       : src->id_header;
    const char *v = name ? header(ctx, name) : NULL;
    if (v && *v) {
        if (strlen(v) > HR_HOOK_ID_MAX || hr_has_ctl(v)) {
            snprintf(err, errlen, "%s must be at most %d printable characters", name,
                     HR_HOOK_ID_MAX);
            return -1;
        }
        snprintf(out, HR_HOOK_ID_MAX + 1, "%s", v);
        return 0;
    }
    char hex[65];
    hr_sha256_hex(body ? body : "", hex);
    snprintf(out, HR_HOOK_ID_MAX + 1, "sha256:%s", hex);
    return 0;
}

int hr_hook_header_kept(const hr_hook_source *src, const char *name)
{
    if (in_list(dropped_headers, name, 1))
        return 0;
    return !(src->header && !strcasecmp(src->header, name));
}

/* ---- receipts into events ---- */

/* RFC 6901 JSON pointer; NULL when it leads nowhere. */
static json_t *pointer_get(json_t *v, const char *p)
{
    while (v && *p == '/') {
        p++;
        size_t n = strcspn(p, "/");
        char key[256];
        size_t k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof key; i++) {
            if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1'))
                key[k++] = p[++i] == '0' ? '~' : '/';
            else
                key[k++] = p[i];
        }
        key[k] = '\0';
        if (json_is_object(v)) {
            v = json_object_get(v, key);
        } else if (json_is_array(v) && k && strspn(key, "0123456789") == k &&
                   (k == 1 || key[0] != '0')) {
            v = json_array_get(v, strtoul(key, NULL, 10));
        } else {
            v = NULL;
        }
        p += n;
    }
    return *p ? NULL : v;
}

/* Render t (NULL: NULL) with ctx; *failed and err on error. Trimmed when asked. */
static char *render(const char *t, json_t *ctx, const char *src, const char *what, int do_trim,
                    int *failed, char *err, size_t errlen)
{
    if (!t || *failed)
        return NULL;
    char why[512];
    char *out = hr_template_render(t, ctx, HR_TEMPLATE_RAW, 0, why, sizeof why);
    if (!out) {
        snprintf(err, errlen, "hooks.%s.%s: %s", src, what, why);
        *failed = 1;
        return NULL;
    }
    if (do_trim)
        trim(out);
    return out;
}

herald_status hr_hook_event(const hr_hook_source *src, const hr_receipt *r, herald_event *ev,
                            char *err, size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    json_error_t jerr;
    json_t *body = json_loadb(r->body ? r->body : "", r->body_len, JSON_DECODE_ANY, &jerr);
    json_t *headers = json_loads(r->headers ? r->headers : "{}", 0, NULL);
    if (!body || !json_is_object(headers)) {
        snprintf(err, errlen, "the stored request is not JSON (%s)", body ? "headers" : jerr.text);
        json_decref(body);
        json_decref(headers);
        return HERALD_E_INVALID;
    }
    char received[32];
    hr_rfc3339(r->received_ms, received, sizeof received);
    json_t *pointers = json_object();
    for (size_t i = 0; i < src->npointers; i++) {
        json_t *v = pointer_get(body, src->pointers[i].value);
        if (v)
            json_object_set(pointers, src->pointers[i].name, v);
    }
    json_t *ctx = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "source", src->name, "id",
                            r->message_id, "received", received, "headers", headers, "body",
                            body, "pointers", pointers);
    int failed = 0;
    ev->type = render(src->type, ctx, src->name, "type", 1, &failed, err, errlen);
    ev->title = render(src->title, ctx, src->name, "title", 0, &failed, err, errlen);
    ev->body = render(src->body, ctx, src->name, "body", 0, &failed, err, errlen);
    ev->user = render(src->user, ctx, src->name, "user", 1, &failed, err, errlen);
    char *sev = render(src->severity, ctx, src->name, "severity", 1, &failed, err, errlen);
    ev->severity = HERALD_SEVERITY_INFO;
    if (!failed && sev && *sev) {
        for (char *p = sev; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (!hr_severity_parse(sev, &ev->severity)) {
            snprintf(err, errlen, "hooks.%s.severity rendered '%.64s', which is not one of "
                     "debug, info, notice, warning, error, critical", src->name, sev);
            failed = 1;
        }
    }
    free(sev);
    ev->fields = hr_calloc(src->nfields + 1, sizeof *ev->fields);
    for (size_t i = 0; i < src->nfields && !failed; i++) {
        char what[96];
        snprintf(what, sizeof what, "fields.%s", src->fields[i].name);
        char *v = render(src->fields[i].value, ctx, src->name, what, 0, &failed, err, errlen);
        if (v && !*v) { /* a value the request lacks: no field rather than an empty one */
            free(v);
            continue;
        }
        if (v) {
            ev->fields[ev->nfields].name = hr_strdup(src->fields[i].name);
            ev->fields[ev->nfields++].value = v;
        }
    }
    json_decref(ctx);
    if (failed) {
        hr_event_clear(ev);
        return HERALD_E_INVALID;
    }
    if (ev->body && !*ev->body) {
        free(ev->body);
        ev->body = NULL;
    }
    if (ev->user && !*ev->user) {
        free(ev->user);
        ev->user = NULL;
    }
    if (src->data)
        ev->data = hr_strndup(r->body, r->body_len);
    ev->source = hr_strdup(src->name);
    ev->tenant = hr_strdup(r->tenant ? r->tenant : "default");
    ev->idempotency_key = hr_asprintf("hook:%s:%s", src->name, r->message_id);
    return HERALD_OK;
}

herald_status hr_hooks_process(const hr_hooks *h, hr_config *cfg, hr_loader *l,
                               const hr_routing *rt, hr_store *s, hr_dispatcher *d, size_t max,
                               hr_hooks_counted_fn counted, void *ctx, size_t *processed)
{
    *processed = 0;
    hr_receipt *rs = NULL;
    size_t n = 0;
    int *dups = NULL; /* per receipt: -1 failed, else whether its event was a duplicate */
    herald_status st = hr_store_begin(s);
    if (st == HERALD_OK)
        st = hr_store_receipts_new(s, max, &rs, &n);
    dups = hr_calloc(n + 1, sizeof *dups);
    for (size_t i = 0; st == HERALD_OK && i < n; i++) {
        hr_receipt *r = &rs[i];
        const hr_hook_source *src = hr_hooks_find(h, r->source);
        char err[1024];
        herald_event ev;
        herald_status est;
        int dup = 0;
        memset(&ev, 0, sizeof ev);
        dups[i] = -1;
        if (!src) {
            snprintf(err, sizeof err, "no hook source '%s' in the configuration any more",
                     r->source);
            est = HERALD_E_NOT_FOUND;
        } else if ((est = hr_hook_event(src, r, &ev, err, sizeof err)) == HERALD_OK) {
            est = hr_submit(cfg, l, rt, s, d, &ev, NULL, 0, &dup, err, sizeof err);
        }
        if (est == HERALD_E_IO || est == HERALD_E_NOMEM) {
            st = est; /* the store failed: not the receipt's fault, keep it for later */
            hr_event_clear(&ev);
            break;
        }
        if (est == HERALD_OK) {
            hr_log(HERALD_LOG_INFO, "hook %s: message %s became event %s", r->source,
                   r->message_id, ev.id);
            st = hr_store_receipt_finish(s, r->id, ev.id, NULL, hr_now_ms());
            dups[i] = dup;
        } else {
            hr_log(HERALD_LOG_WARNING, "hook %s: message %s (receipt %lld) not processed: %s",
                   r->source, r->message_id, r->id, err);
            st = hr_store_receipt_finish(s, r->id, NULL, err, hr_now_ms());
        }
        hr_event_clear(&ev);
        if (st == HERALD_OK)
            ++*processed;
    }
    int committed = 0;
    if (st == HERALD_OK)
        committed = (st = hr_store_commit(s)) == HERALD_OK;
    else
        hr_store_rollback(s);
    if (d)
        hr_dispatcher_commit_offers(d, committed);
    for (size_t i = 0; committed && counted && i < n; i++)
        if (dups[i] >= 0)
            counted(ctx, rs[i].tenant, dups[i]);
    if (!committed)
        *processed = 0;
    hr_receipts_free(rs, n);
    free(dups);
    return st;
}
