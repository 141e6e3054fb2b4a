/* mime.h - the email plugin's text encoders: a growing buffer, quoted-printable bodies,
 * RFC 2047 encoded words for headers, address checks and Markdown -> HTML (RFC 5322,
 * RFC 2045, RFC 2047). Compiled into the plugin only. */
#ifndef HERALD_PLUGIN_EMAIL_MIME_H
#define HERALD_PLUGIN_EMAIL_MIME_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growing text buffer; `failed` is sticky so callers check once ---- */

typedef struct mbuf {
    char *data;
    size_t len, cap;
    int failed;
} mbuf;

static void mb_addn(mbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void mb_add(mbuf *b, const char *s)
{
    mb_addn(b, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void mb_printf(mbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
    } else if ((size_t)n < sizeof small) {
        mb_addn(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->failed = 1;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        mb_addn(b, big, (size_t)n);
        free(big);
    }
}

/* ---- checks ---- */

/* A CR, LF or NUL (NUL cannot occur in a C string, so: CR or LF) anywhere. */
static int has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* A bare envelope address local@domain: printable ASCII, no spaces, quotes,
 * angle brackets, commas or control characters; at most 254 bytes. */
static int address_ok(const char *a)
{
    if (!a || !*a || strlen(a) > 254)
        return 0;
    const char *at = strrchr(a, '@');
    if (!at || at == a || !at[1] || strchr(at + 1, '.') == NULL)
        return 0;
    for (const char *p = a; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("<>,;:\"()[]\\", c))
            return 0;
    }
    return 1;
}

/* ---- RFC 2047 ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void mb_base64(mbuf *b, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {b64chars[(v >> 18) & 63], b64chars[(v >> 12) & 63],
                     i + 1 < n ? b64chars[(v >> 6) & 63] : '=', i + 2 < n ? b64chars[v & 63] : '='};
        mb_addn(b, q, 4);
    }
}

/* Header text as "=?UTF-8?B?...?=" words of at most 75 characters, folded
 * with CRLF SP between words, never splitting a UTF-8 sequence. */
static void mb_encoded_words(mbuf *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    const size_t room = 45; /* 45 bytes -> 60 base64 chars -> a 72-char word */
    if (n == 0)
        return;
    while (i < n) {
        size_t take = n - i < room ? n - i : room;
        while (i + take < n && ((unsigned char)s[i + take] & 0xC0) == 0x80)
            take--;
        if (i)
            mb_add(b, "\r\n ");
        mb_add(b, "=?UTF-8?B?");
        mb_base64(b, (const unsigned char *)s + i, take);
        mb_add(b, "?=");
        i += take;
    }
}

/* An unstructured header value (Subject): as is when short printable ASCII,
 * else encoded words. */
static void mb_header_text(mbuf *b, const char *name, const char *value)
{
    mb_printf(b, "%s: ", name);
    if (is_ascii(value) && strlen(value) + strlen(name) + 2 <= 78)
        mb_add(b, value);
    else
        mb_encoded_words(b, value);
    mb_add(b, "\r\n");
}

/* A mailbox "Display Name" <addr>: the name quoted when ASCII, encoded when not. */
static void mb_mailbox(mbuf *b, const char *display, const char *addr)
{
    if (display && *display) {
        if (is_ascii(display) && strlen(display) <= 60) {
            mb_add(b, "\"");
            for (const char *p = display; *p; p++) {
                if (*p == '"' || *p == '\\')
                    mb_add(b, "\\");
                mb_addn(b, p, 1);
            }
            mb_add(b, "\" ");
        } else {
            mb_encoded_words(b, display);
            mb_add(b, " ");
        }
    }
    mb_printf(b, "<%s>", addr);
}

/* ---- quoted-printable (RFC 2045 6.7), CRLF line ends, lines <= 76 ---- */

static void mb_qp(mbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r' && p[1] == '\n')
            continue;
        if (c == '\n') {
            mb_add(b, "\r\n");
            col = 0;
            continue;
        }
        int next_is_end = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
        int plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !next_is_end);
        /* A lone '.' at a line start is safe with SMTP dot-stuffing, but some
         * relays mangle it: encode it. */
        if (c == '.' && col == 0)
            plain = 0;
        size_t w = plain ? 1 : 3;
        if (col + w > 75) {
            mb_add(b, "=\r\n");
            col = 0;
        }
        if (plain) {
            mb_addn(b, p, 1);
        } else {
            char e[3] = {'=', hex[c >> 4], hex[c & 15]};
            mb_addn(b, e, 3);
        }
        col += w;
    }
}

/* ---- Markdown -> HTML: the subset events use ---- */

static void mb_html_escaped(mbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': mb_add(b, "&amp;"); break;
        case '<': mb_add(b, "&lt;"); break;
        case '>': mb_add(b, "&gt;"); break;
        case '"': mb_add(b, "&quot;"); break;
        case '\'': mb_add(b, "&#39;"); break;
        default: mb_addn(b, s + i, 1);
        }
    }
}

static int link_ok(const char *url, size_t n)
{
    return (n > 7 && !strncmp(url, "http://", 7)) || (n > 8 && !strncmp(url, "https://", 8)) ||
           (n > 7 && !strncmp(url, "mailto:", 7));
}

/* Inline spans of one line: `code`, **bold**, __bold__, *em*, _em_, [text](url). */
static void md_inline(mbuf *b, const char *s, size_t n)
{
    int strong = 0, em = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '`') {
            const char *end = memchr(s + i + 1, '`', n - i - 1);
            if (end) {
                mb_add(b, "<code>");
                mb_html_escaped(b, s + i + 1, (size_t)(end - s - i - 1));
                mb_add(b, "</code>");
                i = (size_t)(end - s);
                continue;
            }
        } else if ((c == '*' || c == '_') && i + 1 < n && s[i + 1] == c) {
            mb_add(b, strong ? "</strong>" : "<strong>");
            strong = !strong;
            i++;
            continue;
        } else if ((c == '*' || c == '_') &&
                   (em || (i + 1 < n && s[i + 1] != ' ' && memchr(s + i + 1, c, n - i - 1)))) {
            mb_add(b, em ? "</em>" : "<em>");
            em = !em;
            continue;
        } else if (c == '[') {
            const char *mid = NULL;
            for (size_t j = i + 1; j + 1 < n; j++)
                if (s[j] == ']' && s[j + 1] == '(') {
                    mid = s + j;
                    break;
                }
            const char *end = mid ? memchr(mid + 2, ')', (size_t)(s + n - mid - 2)) : NULL;
            if (end && link_ok(mid + 2, (size_t)(end - mid - 2))) {
                mb_add(b, "<a href=\"");
                mb_html_escaped(b, mid + 2, (size_t)(end - mid - 2));
                mb_add(b, "\">");
                mb_html_escaped(b, s + i + 1, (size_t)(mid - s - i - 1));
                mb_add(b, "</a>");
                i = (size_t)(end - s);
                continue;
            }
        }
        mb_html_escaped(b, &c, 1);
    }
    if (em)
        mb_add(b, "</em>");
    if (strong)
        mb_add(b, "</strong>");
}

/* Blocks: paragraphs (blank-line separated, single newlines kept as <br>),
 * # headings, - / * / 1. lists, ``` fenced code. Everything is escaped. */
static void md_html(mbuf *b, const char *md)
{
    enum { NONE, PARA, UL, OL, CODE } blk = NONE;
    static const char *const close[] = {"", "</p>\n", "</ul>\n", "</ol>\n", "</code></pre>\n"};
    const char *p = md;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n && p[n - 1] == '\r')
            n--;
        const char *next = nl ? nl + 1 : p + strlen(p);
        if (n >= 3 && !strncmp(p, "```", 3)) {
            if (blk == CODE) {
                mb_add(b, close[CODE]);
                blk = NONE;
            } else {
                mb_add(b, close[blk]);
                mb_add(b, "<pre><code>");
                blk = CODE;
            }
        } else if (blk == CODE) {
            mb_html_escaped(b, p, n);
            mb_add(b, "\n");
        } else if (n == 0 || strspn(p, " \t") == n) {
            mb_add(b, close[blk]);
            blk = NONE;
        } else if (p[0] == '#') {
            size_t lvl = strspn(p, "#");
            if (lvl <= 6 && lvl < n && p[lvl] == ' ') {
                mb_add(b, close[blk]);
                blk = NONE;
                mb_printf(b, "<h%zu>", lvl);
                md_inline(b, p + lvl + 1, n - lvl - 1);
                mb_printf(b, "</h%zu>\n", lvl);
            } else {
                goto text;
            }
        } else if (n > 2 && (p[0] == '-' || p[0] == '*' || p[0] == '+') && p[1] == ' ') {
            if (blk != UL) {
                mb_add(b, close[blk]);
                mb_add(b, "<ul>\n");
                blk = UL;
            }
            mb_add(b, "<li>");
            md_inline(b, p + 2, n - 2);
            mb_add(b, "</li>\n");
        } else if (strspn(p, "0123456789") > 0 && strspn(p, "0123456789") < n - 1 &&
                   p[strspn(p, "0123456789")] == '.' && p[strspn(p, "0123456789") + 1] == ' ') {
            size_t d = strspn(p, "0123456789") + 2;
            if (blk != OL) {
                mb_add(b, close[blk]);
                mb_add(b, "<ol>\n");
                blk = OL;
            }
            mb_add(b, "<li>");
            md_inline(b, p + d, n - d);
            mb_add(b, "</li>\n");
        } else {
        text:
            if (blk == PARA) {
                mb_add(b, "<br>\n");
            } else {
                mb_add(b, close[blk]);
                mb_add(b, "<p>");
                blk = PARA;
            }
            md_inline(b, p, n);
        }
        p = next;
    }
    mb_add(b, close[blk]);
}

#endif
