/* tz.c - zone offsets from TZif files and their POSIX TZ footers, and quiet-hours windows,
 * computed per call from an immutable hr_tz so threads never share the process's TZ state. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tz.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_MAX_FILE (256 * 1024)
#define TZ_MAX_NAME 255
#define TZ_HINT "use a name like Europe/Berlin (see timedatectl list-timezones)"
#define QUIET_HINT "use HH:MM-HH:MM, 24-hour, e.g. 22:00-07:00"
/* RFC 8536's bounds for a UT offset; they also keep every search window below finite. */
#define MIN_UTOFF (-89999L)
#define MAX_UTOFF 93599L
/* Times are clamped here (about 35 million years) so no sum below can overflow. */
#define T_LIMIT (1LL << 50)
#define DAY 86400LL

typedef struct tz_type {
    long utoff;
    int isdst;
} tz_type;

/* One end of a POSIX TZ daylight-saving rule: "Jn", "n" or "Mm.w.d", then "/time". */
typedef struct tz_when {
    char kind; /* 'J' (1-365, no Feb 29), 'D' (0-365, zero-based), 'M' (month.week.day) */
    int n, m, w, d;
    long secs; /* local time of day of the change; may be negative or past 24h */
} tz_when;

typedef struct tz_rule {
    int present; /* a non-empty footer: it governs times after the last transition */
    int has_dst;
    long std_off, dst_off; /* east positive */
    tz_when start, end;
} tz_rule;

struct hr_tz {
    char *name;
    size_t ntrans, ntypes;
    int64_t *trans; /* strictly increasing */
    unsigned char *trans_type;
    tz_type *types;
    tz_rule rule;
};

/* ---- civil calendar (Howard Hinnant's days_from_civil / civil_from_days) ---- */

static long long floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of y-m-d (m 1-12); d past the month's end carries on linearly. */
static long long days_from_civil(long long y, long long m, long long d)
{
    y -= m <= 2;
    long long era = floor_div(y, 400);
    long long yoe = y - era * 400;
    long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
    z += 719468;
    long long era = floor_div(z, 146097);
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int weekday(long long days) /* 0 = Sunday; 1970-01-01 was a Thursday */
{
    return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

static int is_leap(long long y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int month_len(long long y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return len[m - 1] + (m == 2 && is_leap(y));
}

static long long year_of(long long t)
{
    long long y;
    int m, d;
    civil_from_days(floor_div(t, DAY), &y, &m, &d);
    return y;
}

static long long clamp_t(long long t)
{
    return t < -T_LIMIT ? -T_LIMIT : t > T_LIMIT ? T_LIMIT : t;
}

/* ---- POSIX TZ strings (the TZif footer) ---- */

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* An unsigned decimal of at most `max`; -1 when absent or too big. */
static long parse_num(const char **pp, long max)
{
    const char *p = *pp;
    long v = 0;
    if (!is_digit(*p))
        return -1;
    while (is_digit(*p)) {
        v = v * 10 + (*p++ - '0');
        if (v > max)
            return -1;
    }
    *pp = p;
    return v;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours; 0 on success. */
static int parse_hms(const char **pp, long max_hours, long *secs)
{
    const char *p = *pp;
    int neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    long h = parse_num(&p, max_hours), m = 0, s = 0;
    if (h < 0)
        return -1;
    if (*p == ':') {
        p++;
        if ((m = parse_num(&p, 59)) < 0)
            return -1;
        if (*p == ':') {
            p++;
            if ((s = parse_num(&p, 59)) < 0)
                return -1;
        }
    }
    *secs = (neg ? -1 : 1) * (h * 3600 + m * 60 + s);
    *pp = p;
    return 0;
}

/* An abbreviation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static int parse_abbr(const char **pp)
{
    const char *p = *pp, *start;
    if (*p == '<') {
        start = ++p;
        while (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-')
            p++;
        if (*p != '>' || p - start < 1)
            return -1;
        p++;
    } else {
        start = p;
        while (is_alpha(*p))
            p++;
        if (p - start < 3)
            return -1;
    }
    *pp = p;
    return 0;
}

static int parse_when(const char **pp, tz_when *w)
{
    const char *p = *pp;
    long v;
    memset(w, 0, sizeof *w);
    if (*p == 'J') {
        p++;
        if ((v = parse_num(&p, 365)) < 1)
            return -1;
        w->kind = 'J';
        w->n = (int)v;
    } else if (*p == 'M') {
        long m, wk, d;
        p++;
        if ((m = parse_num(&p, 12)) < 1 || *p++ != '.' || (wk = parse_num(&p, 5)) < 1 ||
            *p++ != '.' || (d = parse_num(&p, 6)) < 0)
            return -1;
        w->kind = 'M';
        w->m = (int)m;
        w->w = (int)wk;
        w->d = (int)d;
    } else {
        if ((v = parse_num(&p, 365)) < 0)
            return -1;
        w->kind = 'D';
        w->n = (int)v;
    }
    w->secs = 7200;
    /* RFC 8536 extends POSIX: hours up to 167 and a sign. */
    if (*p == '/') {
        p++;
        if (parse_hms(&p, 167, &w->secs) != 0)
            return -1;
    }
    *pp = p;
    return 0;
}

/* Parse e.g. "CET-1CEST,M3.5.0,M10.5.0/3"; "" means no rule. 0 on success. */
static int parse_posix_tz(const char *s, tz_rule *r)
{
    const char *p = s;
    long off;
    memset(r, 0, sizeof *r);
    if (*p == '\0')
        return 0;
    if (parse_abbr(&p) != 0 || parse_hms(&p, 24, &off) != 0)
        return -1;
    r->present = 1;
    r->std_off = -off; /* POSIX offsets count west positive */
    if (*p == '\0')
        return 0;
    if (parse_abbr(&p) != 0)
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (parse_hms(&p, 24, &off) != 0)
            return -1;
        r->dst_off = -off;
    }
    if (*p == '\0') { /* POSIX leaves this to the implementation; US rules, as glibc does */
        r->start = (tz_when){'M', 0, 3, 2, 0, 7200};
        r->end = (tz_when){'M', 0, 11, 1, 0, 7200};
        return 0;
    }
    if (*p++ != ',' || parse_when(&p, &r->start) != 0 || *p++ != ',' ||
        parse_when(&p, &r->end) != 0 || *p != '\0')
        return -1;
    return 0;
}

/* Days since the epoch of the rule's date in `year`. */
static long long when_day(const tz_when *w, long long year)
{
    long long jan1 = days_from_civil(year, 1, 1);
    if (w->kind == 'J')
        return jan1 + w->n - 1 + (is_leap(year) && w->n >= 60);
    if (w->kind == 'D')
        return jan1 + w->n;
    long long first = days_from_civil(year, w->m, 1);
    int mday = 1 + (w->d - weekday(first) + 7) % 7 + (w->w - 1) * 7;
    while (mday > month_len(year, w->m))
        mday -= 7; /* week 5 means the last such weekday */
    return first + mday - 1;
}

/* Daylight time starts at a local standard time and ends at a local daylight time. */
static long long rule_start(const tz_rule *r, long long year)
{
    return when_day(&r->start, year) * DAY + r->start.secs - r->std_off;
}

static long long rule_end(const tz_rule *r, long long year)
{
    return when_day(&r->end, year) * DAY + r->end.secs - r->dst_off;
}

static int rule_isdst(const tz_rule *r, long long t)
{
    if (!r->has_dst)
        return 0;
    long long y = year_of(t);
    for (long long yr = y - 2; yr <= y + 1; yr++) {
        long long s = rule_start(r, yr), e = rule_end(r, yr);
        if (e <= s) /* southern hemisphere: daylight time runs into the next year */
            e = rule_end(r, yr + 1);
        if (s <= t && t < e)
            return 1;
    }
    return 0;
}

static long long rule_next(const tz_rule *r, long long t)
{
    long long best = LLONG_MAX;
    if (!r->has_dst)
        return best;
    long long y = year_of(t);
    for (long long yr = y - 1; yr <= y + 2; yr++) {
        long long s = rule_start(r, yr), e = rule_end(r, yr);
        if (s > t && s < best)
            best = s;
        if (e > t && e < best)
            best = e;
    }
    return best;
}

/* ---- lookups ---- */

static int use_rule(const hr_tz *tz, long long t)
{
    return tz->rule.present && (tz->ntrans == 0 || t >= tz->trans[tz->ntrans - 1]);
}

/* Index of the first transition after t (ntrans when none). */
static size_t first_after(const hr_tz *tz, long long t)
{
    size_t lo = 0, hi = tz->ntrans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static tz_type lookup(const hr_tz *tz, long long t)
{
    t = clamp_t(t);
    if (use_rule(tz, t)) {
        int dst = rule_isdst(&tz->rule, t);
        return (tz_type){dst ? tz->rule.dst_off : tz->rule.std_off, dst};
    }
    size_t i = first_after(tz, t);
    return tz->types[i == 0 ? 0 : tz->trans_type[i - 1]];
}

/* The first instant after t at which the offset may change; LLONG_MAX for none. */
static long long next_change(const hr_tz *tz, long long t)
{
    if (tz->ntrans > 0 && t < tz->trans[tz->ntrans - 1])
        return tz->trans[first_after(tz, t)];
    return tz->rule.present ? rule_next(&tz->rule, t) : LLONG_MAX;
}

/*
 * The first instant >= not_before at which the wall clock shows local seconds
 * `local`, walking the offsets in force two days either side. A local time in
 * a gap resolves to the gap's end when gap_end is set, else to the time read
 * with the offset before the gap (only if no instant shows it exactly).
 * Returns 0 when nothing qualifies.
 */
static int resolve(const hr_tz *tz, long long local, long long not_before, int gap_end,
                   long long *out)
{
    long long seg = local - 2 * DAY, hi = local + 2 * DAY, gap = 0;
    long off = lookup(tz, seg).utoff;
    int have_gap = 0;
    for (int i = 0; i < 1000 && seg <= hi; i++) {
        long long next = next_change(tz, seg);
        long long cand = local - off;
        if (cand >= seg && cand < next && cand >= not_before) {
            *out = cand;
            return 1;
        }
        if (next > hi)
            break;
        long next_off = lookup(tz, next).utoff;
        if (next_off > off && local >= next + off && local < next + next_off) {
            long long g = gap_end ? next : local - off;
            if (g >= not_before && gap_end) {
                *out = g;
                return 1;
            }
            if (g >= not_before && !have_gap) {
                gap = g;
                have_gap = 1;
            }
        }
        seg = next;
        off = next_off;
    }
    if (have_gap)
        *out = gap;
    return have_gap;
}

long hr_tz_offset(const hr_tz *tz, long long t)
{
    return lookup(tz, t).utoff;
}

void hr_tz_local(const hr_tz *tz, long long t, struct tm *out)
{
    t = clamp_t(t);
    tz_type ty = lookup(tz, t);
    long long lt = t + ty.utoff, days = floor_div(lt, DAY), secs = lt - days * DAY, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    memset(out, 0, sizeof *out);
    out->tm_year = (int)(y - 1900);
    out->tm_mon = m - 1;
    out->tm_mday = d;
    out->tm_hour = (int)(secs / 3600);
    out->tm_min = (int)(secs / 60 % 60);
    out->tm_sec = (int)(secs % 60);
    out->tm_wday = weekday(days);
    out->tm_yday = (int)(days - days_from_civil(y, 1, 1));
    out->tm_isdst = ty.isdst;
}

static long long local_seconds(long long year, long long mon, long long mday, long long hour,
                               long long min, long long sec)
{
    year += floor_div(mon - 1, 12);
    mon -= floor_div(mon - 1, 12) * 12;
    long long l = days_from_civil(year, mon, mday) * DAY + hour * 3600 + min * 60 + sec;
    return clamp_t(l);
}

long long hr_tz_from_local(const hr_tz *tz, int year, int mon, int mday, int hour, int min,
                           int sec)
{
    long long local = local_seconds(year, mon, mday, hour, min, sec), t;
    if (resolve(tz, local, LLONG_MIN, 0, &t))
        return t;
    return local - lookup(tz, local - lookup(tz, local).utoff).utoff; /* unreachable in tzdata */
}

int hr_quiet_at(const hr_tz *tz, int start_min, int end_min, long long t, long long *ends_at)
{
    if (start_min < 0 || start_min > 1439 || end_min < 0 || end_min > 1439 ||
        start_min == end_min)
        return 0;
    struct tm lt;
    hr_tz_local(tz, t, &lt);
    long now = lt.tm_hour * 3600L + lt.tm_min * 60L + lt.tm_sec;
    long start = start_min * 60L, end = end_min * 60L;
    int inside, tomorrow = 0;
    if (start < end) {
        inside = now >= start && now < end;
    } else {
        inside = now >= start || now < end;
        tomorrow = now >= start;
    }
    if (!inside)
        return 0;
    if (ends_at) {
        long long local = local_seconds(lt.tm_year + 1900LL, lt.tm_mon + 1, lt.tm_mday + tomorrow,
                                        0, 0, end);
        long long at;
        if (!resolve(tz, local, clamp_t(t), 1, &at))
            at = clamp_t(t); /* no such instant: only for an absurd zone; end now */
        *ends_at = at;
    }
    return 1;
}

/* ---- quiet-hours parsing ---- */

/* How much of s to quote in an error: printable ASCII, at most 64 bytes. */
static int shown(const char *s)
{
    int n = 0;
    while (n < 64 && s[n] >= ' ' && s[n] <= '~')
        n++;
    return n;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* H:MM or HH:MM; 0 on success, else -1 with *bad_h or *bad_m set when a field is too big. */
static int parse_clock(const char **pp, int *minutes, long *bad_h, long *bad_m)
{
    const char *p = *pp, *start = p;
    long h = 0, m = 0;
    while (is_digit(*p) && p - start < 2)
        h = h * 10 + (*p++ - '0');
    if (p == start || is_digit(*p) || *p != ':')
        return -1;
    start = ++p;
    while (is_digit(*p) && p - start < 2)
        m = m * 10 + (*p++ - '0');
    if (p - start != 2 || is_digit(*p))
        return -1;
    if (h > 23) {
        *bad_h = h;
        return -1;
    }
    if (m > 59) {
        *bad_m = m;
        return -1;
    }
    *minutes = (int)(h * 60 + m);
    *pp = p;
    return 0;
}

int hr_quiet_parse(const char *s, int *start_min, int *end_min, char *err, size_t errlen)
{
    long bad_h = -1, bad_m = -1;
    int a = 0, b = 0;
    if (!s || *skip_blanks(s) == '\0') {
        snprintf(err, errlen, "quiet hours are empty; " QUIET_HINT);
        return -1;
    }
    const char *p = skip_blanks(s);
    int good = parse_clock(&p, &a, &bad_h, &bad_m) == 0;
    if (good) {
        p = skip_blanks(p);
        good = *p++ == '-';
    }
    if (good) {
        p = skip_blanks(p);
        good = parse_clock(&p, &b, &bad_h, &bad_m) == 0 && *skip_blanks(p) == '\0';
    }
    if (!good) {
        char what[64] = "";
        if (bad_h >= 0)
            snprintf(what, sizeof what, "hour %ld is over 23; ", bad_h);
        else if (bad_m >= 0)
            snprintf(what, sizeof what, "minute %ld is over 59; ", bad_m);
        snprintf(err, errlen, "quiet hours \"%.*s%s\": %s" QUIET_HINT, shown(s), s,
                 s[shown(s)] ? "..." : "", what);
        return -1;
    }
    *start_min = a;
    *end_min = b;
    return 0;
}

/* ---- loading ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts;

#define TZIF_HEADER 44

static const char *read_header(const unsigned char *p, size_t avail, int *version,
                               tzif_counts *c)
{
    if (avail == 0)
        return "the file is empty";
    if (memcmp(p, "TZif", avail < 4 ? avail : 4) != 0)
        return "no TZif magic at the start";
    if (avail < TZIF_HEADER)
        return "cut short in its header";
    if (p[4] != 0 && (p[4] < '2' || p[4] > '9'))
        return "unknown version byte";
    *version = p[4] ? p[4] - '0' : 1;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->type == 0 || c->type > 256)
        return "local time type count out of range";
    if ((c->isstd != 0 && c->isstd != c->type) || (c->isut != 0 && c->isut != c->type))
        return "standard/UT indicator counts do not match the type count";
    if (c->leap != 0)
        return "leap-second (\"right/\") zones are not supported";
    return NULL;
}

static uint64_t block_size(const tzif_counts *c, unsigned timesize)
{
    return (uint64_t)c->time * timesize + c->time + (uint64_t)c->type * 6 + c->chars +
           (uint64_t)c->leap * (timesize + 4) + c->isstd + c->isut;
}

static const char *read_block(hr_tz *tz, const unsigned char *p, const tzif_counts *c,
                              unsigned timesize)
{
    tz->ntrans = c->time;
    tz->ntypes = c->type;
    tz->trans = malloc((c->time ? c->time : 1) * sizeof *tz->trans);
    tz->trans_type = malloc(c->time ? c->time : 1);
    tz->types = malloc(c->type * sizeof *tz->types);
    if (!tz->trans || !tz->trans_type || !tz->types)
        return "out of memory";
    for (size_t i = 0; i < c->time; i++) {
        tz->trans[i] = timesize == 8 ? be64(p) : (int32_t)be32(p);
        p += timesize;
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1])
            return "transition times out of order";
    }
    for (size_t i = 0; i < c->time; i++) {
        tz->trans_type[i] = *p++;
        if (tz->trans_type[i] >= c->type)
            return "a transition names a type that does not exist";
    }
    for (size_t i = 0; i < c->type; i++, p += 6) {
        long utoff = (int32_t)be32(p);
        if (utoff < MIN_UTOFF || utoff > MAX_UTOFF)
            return "a UT offset is over 25 hours";
        if (p[4] > 1)
            return "a DST flag is neither 0 nor 1";
        tz->types[i] = (tz_type){utoff, p[4]};
    }
    return NULL;
}

static const char *parse_tzif(hr_tz *tz, const unsigned char *buf, size_t len)
{
    tzif_counts c;
    int version;
    const char *why = read_header(buf, len, &version, &c);
    if (why)
        return why;
    size_t at = TZIF_HEADER;
    uint64_t size = block_size(&c, 4);
    if (size > len - at)
        return "counts in the header run past the end of the file";
    if (version == 1)
        return read_block(tz, buf + at, &c, 4);

    at += (size_t)size;
    int version2;
    if ((why = read_header(buf + at, len - at, &version2, &c)) != NULL)
        return why;
    if (version2 < 2)
        return "second header is not version 2 or later";
    at += TZIF_HEADER;
    size = block_size(&c, 8);
    if (size > len - at)
        return "counts in the 64-bit header run past the end of the file";
    if ((why = read_block(tz, buf + at, &c, 8)) != NULL)
        return why;
    at += (size_t)size;

    const char *foot = (const char *)buf + at, *end = foot + (len - at);
    const char *nl = len - at > 1 ? memchr(foot + 1, '\n', (size_t)(end - foot - 1)) : NULL;
    if (len - at < 2 || foot[0] != '\n' || !nl)
        return "the TZ string footer is missing";
    char rule[128];
    size_t n = (size_t)(nl - foot - 1);
    if (n >= sizeof rule)
        return "the TZ string footer is too long";
    memcpy(rule, foot + 1, n);
    rule[n] = '\0';
    if (strlen(rule) != n || parse_posix_tz(rule, &tz->rule) != 0)
        return "the TZ string footer is not understood";
    if ((tz->rule.present && (tz->rule.std_off < MIN_UTOFF || tz->rule.std_off > MAX_UTOFF)) ||
        (tz->rule.has_dst && (tz->rule.dst_off < MIN_UTOFF || tz->rule.dst_off > MAX_UTOFF)))
        return "the TZ string footer has an offset over 25 hours";
    return NULL;
}

/* 0 when name is acceptable, else -1 with what is wrong with it in why. */
static int check_name(const char *name, char *why, size_t whylen)
{
    size_t len = strlen(name);
    if (len > TZ_MAX_NAME) {
        snprintf(why, whylen, "longer than %d characters", TZ_MAX_NAME);
        return -1;
    }
    if (name[0] == '/') {
        snprintf(why, whylen, "an absolute path");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!is_alpha((char)ch) && !is_digit((char)ch) && ch != '/' && ch != '_' && ch != '-' &&
            ch != '+') {
            if (ch > ' ' && ch <= '~')
                snprintf(why, whylen, "'%c' is not allowed", ch);
            else
                snprintf(why, whylen, "byte 0x%02x is not allowed", ch);
            snprintf(why + strlen(why), whylen - strlen(why),
                     " (only letters, digits, '/', '_', '-' and '+')");
            return -1;
        }
        if (ch == '/' && (name[i + 1] == '/' || name[i + 1] == '\0')) {
            snprintf(why, whylen, "an empty path component");
            return -1;
        }
    }
    return 0;
}

/* Read a whole file of at most TZ_MAX_FILE bytes; 0, or an errno value (EFBIG: too big). */
static int slurp(int fd, unsigned char **out, size_t *outlen)
{
    size_t cap = 16384, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap > TZ_MAX_FILE) {
                free(buf);
                return EFBIG;
            }
            cap *= 2;
            unsigned char *bigger = realloc(buf, cap);
            if (!bigger) {
                free(buf);
                return ENOMEM;
            }
            buf = bigger;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            return e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > TZ_MAX_FILE) {
        free(buf);
        return EFBIG;
    }
    /* Exactly len bytes, so a sanitizer sees any read past the end of the data. */
    unsigned char *exact = realloc(buf, len ? len : 1);
    *out = exact ? exact : buf;
    *outlen = len;
    return 0;
}

hr_tz *hr_tz_load(const char *name, char *err, size_t errlen)
{
    if (!name || !*name) {
        snprintf(err, errlen, "time zone name is empty; " TZ_HINT);
        return NULL;
    }
    int cut = shown(name);
    const char *more = name[cut] ? "..." : "";
    char bad[96];
    if (check_name(name, bad, sizeof bad) != 0) {
        snprintf(err, errlen,
                 "invalid time zone name \"%.*s%s\": %s; give a zone relative to the zoneinfo "
                 "directory, e.g. Europe/Berlin",
                 cut, name, more, bad);
        return NULL;
    }
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        snprintf(err, errlen, "time zone \"%s\": the path under %s is too long; shorten TZDIR",
                 name, dir);
        return NULL;
    }

    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            snprintf(err, errlen, "unknown time zone \"%s\": no such file in %s; " TZ_HINT, name,
                     dir);
        else
            snprintf(err, errlen, "time zone \"%s\": cannot open %s: %s", name, path,
                     strerror(errno));
        return NULL;
    }
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) != 0) {
        e = errno;
    } else if (S_ISDIR(st.st_mode)) {
        close(fd);
        snprintf(err, errlen,
                 "time zone \"%s\" is a directory of zones in %s, not a zone; " TZ_HINT, name,
                 dir);
        return NULL;
    } else if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "time zone \"%s\": %s is not a regular file; " TZ_HINT, name, path);
        return NULL;
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    if (e == 0)
        e = slurp(fd, &buf, &len);
    close(fd);
    if (e == EFBIG) {
        snprintf(err, errlen,
                 "time zone \"%s\": %s is over 256 KiB, too big for a TZif file; check the file "
                 "or pick another zone",
                 name, path);
        return NULL;
    }
    if (e) {
        snprintf(err, errlen, "time zone \"%s\": cannot read %s: %s", name, path, strerror(e));
        return NULL;
    }

    hr_tz *tz = calloc(1, sizeof *tz);
    const char *why;
    if (tz && !(tz->name = strdup(name)))
        why = "out of memory";
    else
        why = tz ? parse_tzif(tz, buf, len) : "out of memory";
    free(buf);
    if (why && strcmp(why, "out of memory") == 0) {
        snprintf(err, errlen, "time zone \"%s\": out of memory", name);
        hr_tz_free(tz);
        return NULL;
    }
    if (why && strncmp(why, "leap-second", 11) == 0) {
        snprintf(err, errlen, "time zone \"%s\": %s; use the zone without \"right/\"", name,
                 why);
        hr_tz_free(tz);
        return NULL;
    }
    if (why) {
        snprintf(err, errlen,
                 "time zone \"%s\": %s is not a valid TZif file (%s); reinstall tzdata or pick "
                 "another zone",
                 name, path, why);
        hr_tz_free(tz);
        return NULL;
    }
    return tz;
}

void hr_tz_free(hr_tz *tz)
{
    if (!tz)
        return;
    free(tz->name);
    free(tz->trans);
    free(tz->trans_type);
    free(tz->types);
    free(tz);
}

const char *hr_tz_name(const hr_tz *tz)
{
    return tz->name;
}
