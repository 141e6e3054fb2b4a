/* template.c - a small Mustache subset for email bodies and webhook payloads: variables,
 * dotted names, sections over booleans, strings and lists, inverted sections, comments;
 * values escaped for HTML or JSON by default, raw only with {{{...}}} or {{& ...}}. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "template.h"

#define MAX_DEPTH 32

typedef struct render {
    const char *src;
    hr_template_escape escape;
    size_t max;
    hr_buf out;
    json_t *stack[MAX_DEPTH + 1];
    int depth;
    char *err;
    size_t errlen;
    int failed;
} render;

static int line_of(const render *r, const char *at)
{
    int line = 1;
    for (const char *p = r->src; p < at; p++)
        line += *p == '\n';
    return line;
}

static void fail(render *r, const char *at, const char *what, const char *name, size_t len)
{
    if (r->failed)
        return;
    r->failed = 1;
    snprintf(r->err, r->errlen, "template line %d: %s%s%.*s%s", line_of(r, at), what,
             name ? " '" : "", name ? (int)len : 0, name ? name : "", name ? "'" : "");
}

/* Look a (possibly dotted) name up from the innermost context outwards. */
static json_t *lookup(render *r, const char *name, size_t len)
{
    if (len == 1 && name[0] == '.')
        return r->stack[r->depth];
    for (int d = r->depth; d >= 0; d--) {
        json_t *v = r->stack[d];
        const char *p = name, *end = name + len;
        int first = 1;
        while (v && p < end) {
            const char *dot = memchr(p, '.', (size_t)(end - p));
            size_t seg = dot ? (size_t)(dot - p) : (size_t)(end - p);
            char key[256];
            if (seg >= sizeof key)
                return NULL;
            memcpy(key, p, seg);
            key[seg] = '\0';
            json_t *next = json_is_object(v) ? json_object_get(v, key) : NULL;
            if (json_is_array(v) && seg > 0 && strspn(key, "0123456789") == seg)
                next = json_array_get(v, strtoul(key, NULL, 10)); /* list.0: an item */
            if (!next && first)
                break; /* not here: try the enclosing context */
            v = next;
            first = 0;
            p = dot ? dot + 1 : end;
        }
        if (v && p >= end && !first)
            return v;
    }
    return NULL;
}

static int truthy(json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v))
        return 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    return 1;
}

static void put(render *r, const char *s, size_t n)
{
    if (r->out.len + n > r->max) {
        if (!r->failed)
            snprintf(r->err, r->errlen, "template output over %zu bytes; shorten the template "
                     "or the event", r->max);
        r->failed = 1;
        return;
    }
    hr_buf_add(&r->out, s, n);
}

static void put_value(render *r, json_t *v, int raw)
{
    char num[64];
    const char *s = "";
    size_t n = 0;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        n = (size_t)snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        n = (size_t)snprintf(num, sizeof num, "%g", json_real_value(v));
        s = num;
    } else if (json_is_boolean(v)) {
        s = json_is_true(v) ? "true" : "false";
        n = strlen(s);
    }
    if (raw || r->escape == HR_TEMPLATE_RAW) {
        put(r, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *e = NULL;
        if (r->escape == HR_TEMPLATE_HTML) {
            e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&quot;"
                : c == '\'' ? "&#39;" : NULL;
        } else if (c == '"' || c == '\\') { /* JSON string content */
            esc[0] = '\\';
            esc[1] = (char)c;
            esc[2] = '\0';
            e = esc;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\u%04x", c);
            e = esc;
        }
        if (e)
            put(r, e, strlen(e));
        else
            put(r, s + i, 1);
    }
}

/* Render src[from..to) and return; sections recurse. */
static void render_range(render *r, const char *p, const char *end)
{
    while (p < end && !r->failed) {
        const char *open = strstr(p, "{{");
        if (!open || open >= end) {
            put(r, p, (size_t)(end - p));
            return;
        }
        put(r, p, (size_t)(open - p));
        const char *tag = open + 2;
        int triple = tag < end && *tag == '{';
        const char *close = strstr(tag, triple ? "}}}" : "}}");
        if (!close || close >= end) {
            fail(r, open, "unclosed tag", NULL, 0);
            return;
        }
        char kind = triple ? '{' : *tag;
        const char *name = tag + (kind == '#' || kind == '^' || kind == '/' || kind == '!' ||
                                  kind == '&' || kind == '{');
        const char *name_end = close;
        while (name < name_end && (*name == ' ' || *name == '\t'))
            name++;
        while (name_end > name && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        size_t len = (size_t)(name_end - name);
        p = close + (triple ? 3 : 2);
        if (kind == '!')
            continue;
        if (kind == '/') {
            fail(r, open, "closing tag without a section:", name, len);
            return;
        }
        if (!len) {
            fail(r, open, "empty tag", NULL, 0);
            return;
        }
        if (kind != '#' && kind != '^') {
            put_value(r, lookup(r, name, len), kind == '&' || kind == '{');
            continue;
        }
        /* Find the matching close, counting nested sections of the same name. */
        const char *scan = p, *inner_end = NULL, *after = NULL;
        int level = 1;
        while (scan < end) {
            const char *t = strstr(scan, "{{");
            if (!t || t >= end)
                break;
            const char *c = strstr(t + 2, "}}");
            if (!c || c >= end)
                break;
            const char *n = t + 3, *ne = c;
            while (n < ne && *n == ' ')
                n++;
            while (ne > n && ne[-1] == ' ')
                ne--;
            if ((t[2] == '#' || t[2] == '^' || t[2] == '/') && (size_t)(ne - n) == len &&
                !memcmp(n, name, len)) {
                level += t[2] == '/' ? -1 : 1;
                if (level == 0) {
                    inner_end = t;
                    after = c + 2;
                    break;
                }
            }
            scan = c + 2;
        }
        if (!inner_end) {
            fail(r, open, "section without its closing tag:", name, len);
            return;
        }
        json_t *v = lookup(r, name, len);
        if (kind == '^') {
            if (!truthy(v))
                render_range(r, p, inner_end);
        } else if (truthy(v)) {
            if (r->depth >= MAX_DEPTH) {
                fail(r, open, "sections nested too deep at", name, len);
                return;
            }
            if (json_is_array(v)) {
                size_t i;
                json_t *item;
                json_array_foreach(v, i, item) {
                    r->stack[++r->depth] = item;
                    render_range(r, p, inner_end);
                    r->depth--;
                }
            } else {
                json_t *ctx = json_is_object(v) ? v : r->stack[r->depth];
                r->stack[++r->depth] = ctx;
                render_range(r, p, inner_end);
                r->depth--;
            }
        }
        p = after;
    }
}

char *hr_template_render(const char *tmpl, json_t *ctx, hr_template_escape escape, size_t max,
                         char *err, size_t errlen)
{
    render r;
    memset(&r, 0, sizeof r);
    r.src = tmpl;
    r.escape = escape;
    r.max = max ? max : HR_TEMPLATE_MAX;
    r.stack[0] = ctx;
    r.err = err;
    r.errlen = errlen;
    hr_buf_add(&r.out, "", 0);
    render_range(&r, tmpl, tmpl + strlen(tmpl));
    if (r.failed) {
        hr_buf_free(&r.out);
        return NULL;
    }
    return r.out.data;
}
