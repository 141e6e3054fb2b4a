/* util.c - memory, strings, buffers, UTF-8, time and ids used across the core. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static void oom(void)
{
    fputs("herald: out of memory\n", stderr);
    abort();
}

void *hr_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *hr_calloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        oom();
    return p;
}

void *hr_realloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *hr_strdup(const char *s)
{
    return s ? hr_strndup(s, strlen(s)) : NULL;
}

char *hr_strndup(const char *s, size_t n)
{
    char *d = hr_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *hr_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom();
    char *s = hr_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int hr_streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

void hr_buf_add(hr_buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = hr_realloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void hr_buf_adds(hr_buf *b, const char *s)
{
    hr_buf_add(b, s, strlen(s));
}

void hr_buf_addf(hr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    hr_buf_add(b, NULL, 0);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = b->len + (size_t)n + 1;
        b->data = hr_realloc(b->data, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void hr_buf_reset(hr_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void hr_buf_free(hr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int hr_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0; /* overlong, out of range, or a surrogate */
        i += len;
    }
    return 1;
}

int hr_hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

char *hr_pct_decode(const char *s, size_t n, int plus_is_space, size_t *len)
{
    char *out = hr_malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < n ? hr_hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hr_hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

int hr_has_ctl(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return 1;
    }
    return 0;
}

long long hr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hr_rfc3339(long long ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* UUIDv7 (RFC 9562): 48-bit Unix ms, then random bits; sorts by creation time. */
/* Random bytes for ids, fetched from the kernel a pool at a time: one
 * getrandom() per event was a visible share of the daemon's hot path. The
 * pool is per thread and emptied in a forked child, so no two processes or
 * threads ever hand out the same bytes. */
static __thread unsigned char id_pool[640];
static __thread size_t id_pool_left;
static pthread_once_t id_pool_once = PTHREAD_ONCE_INIT;

static void id_pool_forget(void)
{
    id_pool_left = 0;
}

static void id_pool_setup(void)
{
    pthread_atfork(NULL, NULL, id_pool_forget);
}

static void random_bytes(unsigned char *out, size_t n)
{
    pthread_once(&id_pool_once, id_pool_setup);
    if (id_pool_left < n) {
        size_t got = 0;
        while (got < sizeof id_pool) {
            ssize_t r = getrandom(id_pool + got, sizeof id_pool - got, 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                abort(); /* no entropy source at all: refuse to make guessable ids */
            }
            got += (size_t)r;
        }
        id_pool_left = sizeof id_pool;
    }
    unsigned char *p = id_pool + sizeof id_pool - id_pool_left;
    memcpy(out, p, n);
    memset(p, 0, n); /* used bytes do not linger */
    id_pool_left -= n;
}

void hr_new_id(char out[37])
{
    unsigned char b[16];
    long long ms = hr_now_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    random_bytes(b + 6, 10);
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0F));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3F));
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* The user name for uid into buf, or "" when it has none. */
static const char *user_name(uid_t uid, char *buf, size_t buflen)
{
    struct passwd pw, *res = NULL;
    char scratch[1024];
    if (getpwuid_r(uid, &pw, scratch, sizeof scratch, &res) != 0 || !res || !res->pw_name)
        return "";
    snprintf(buf, buflen, "%s", res->pw_name);
    return buf;
}

char *hr_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return hr_strdup(".");
    if (slash == path)
        return hr_strdup("/");
    return hr_strndup(path, (size_t)(slash - path));
}

void hr_give_to_dir_owner(int fd, const char *path)
{
    if (geteuid() != 0)
        return;
    char *dir = hr_dir_of(path);
    struct stat st;
    if (stat(dir, &st) == 0 && st.st_uid != 0 && fchown(fd, st.st_uid, st.st_gid) != 0)
        hr_log(HERALD_LOG_WARNING, "%s: cannot give the new file to the owner of %s (uid %lu): "
               "%s; run chown %lu:%lu %s", path, dir, (unsigned long)st.st_uid, strerror(errno),
               (unsigned long)st.st_uid, (unsigned long)st.st_gid, path);
    free(dir);
}

/* Root using a file of the user who owns its directory too: heraldd's key or
 * database in its state directory, for `sudo herald ...`. A file another user
 * left in someone else's directory (/tmp) is no such thing. */
static int root_may_use(const char *path, const struct stat *st)
{
    if (geteuid() != 0)
        return 0;
    char *dir = hr_dir_of(path);
    struct stat d;
    int yes = stat(dir, &d) == 0 && d.st_uid == st->st_uid;
    free(dir);
    return yes;
}

int hr_check_private(const char *path, const struct stat *st, char *err, size_t errlen)
{
    uid_t me = geteuid();
    /* Someone else's file could be swapped or read by them at any time; root
     * is allowed so a packaged or provisioned secret file works for any user. */
    if (st->st_uid != me && st->st_uid != 0 && !root_may_use(path, st)) {
        char owner[256], self[256];
        const char *on = user_name(st->st_uid, owner, sizeof owner);
        const char *sn = user_name(me, self, sizeof self);
        char who[300];
        if (*sn)
            snprintf(who, sizeof who, "%s", sn);
        else
            snprintf(who, sizeof who, "%lu", (unsigned long)me);
        snprintf(err, errlen, "%s is owned by uid %lu%s%s%s, not by the user herald runs as "
                 "(%s%suid %lu) or root; run chown %s %s", path, (unsigned long)st->st_uid,
                 *on ? " (" : "", on, *on ? ")" : "", sn, *sn ? ", " : "", (unsigned long)me,
                 who, path);
        return -1;
    }
    if (st->st_mode & 077) {
        snprintf(err, errlen, "%s is readable or writable by group or others (mode %04o); run "
                 "chmod 600 %s", path, (unsigned)(st->st_mode & 07777), path);
        return -1;
    }
    return 0;
}

char *hr_read_file(const char *path, int private_only, size_t max, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if (private_only && hr_check_private(path, &st, err, errlen) != 0) {
        close(fd);
        return NULL;
    }
    if ((size_t)st.st_size > max) {
        snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
        close(fd);
        return NULL;
    }
    hr_buf b = {0};
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            hr_buf_free(&b);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        if (b.len + (size_t)n > max) {
            snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
            hr_buf_free(&b);
            close(fd);
            return NULL;
        }
        hr_buf_add(&b, chunk, (size_t)n);
    }
    close(fd);
    hr_buf_add(&b, NULL, 0);
    return b.data;
}

void hr_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
