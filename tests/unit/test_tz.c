/* test_tz.c - time zones from TZif files: offsets, wall clocks, gaps and overlaps, footer
 * rules, quiet-hours windows across midnight and DST nights, and rejection of bad input. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "tz.h"

/* Epochs checked with `date -u -d 2026-03-29T01:00:00Z +%s` and zdump -v. */
#define BER_SPRING_2026 1774746000LL /* 2026-03-29T01:00:00Z: CET -> CEST */
#define BER_AUTUMN_2026 1792890000LL /* 2026-10-25T01:00:00Z: CEST -> CET */
#define BER_SPRING_2100 4109878800LL /* 2100-03-28T01:00:00Z (footer only) */
#define BER_AUTUMN_2100 4128627600LL /* 2100-10-31T01:00:00Z */
#define NY_SPRING_2026 1772953200LL  /* 2026-03-08T07:00:00Z: EST -> EDT */
#define NY_AUTUMN_2026 1793512800LL  /* 2026-11-01T06:00:00Z: EDT -> EST */
#define SYD_AUTUMN_2026 1775318400LL /* 2026-04-04T16:00:00Z: AEDT -> AEST */
#define SYD_SPRING_2026 1791043200LL /* 2026-10-03T16:00:00Z: AEST -> AEDT */
#define SYD_AUTUMN_2100 4110451200LL /* 2100-04-03T16:00:00Z */
#define SYD_SPRING_2100 4126176000LL /* 2100-10-02T16:00:00Z */
#define JAN15_2026 1768435200LL      /* 2026-01-15T00:00:00Z */
#define JUL15_2026 1784073600LL      /* 2026-07-15T00:00:00Z */
#define JUL01_2000 962409600LL       /* 2000-07-01T00:00:00Z */
#define JAN01_2000 946684800LL       /* 2000-01-01T00:00:00Z */
#define HOUR 3600LL

static char dir[64];

static hr_tz *load(const char *name)
{
    char err[512] = "";
    hr_tz *tz = hr_tz_load(name, err, sizeof err);
    if (!ok(tz != NULL, name))
        printf("#   error: %s\n", err);
    return tz;
}

static void rejected(const char *name, const char *want, const char *what)
{
    char err[512] = "";
    hr_tz *tz = hr_tz_load(name, err, sizeof err);
    ok(tz == NULL, what);
    like(err, want, what);
    ok(strchr(err, '\n') == NULL, "the error is one line");
    hr_tz_free(tz);
}

static void offsets_around(const hr_tz *tz, long long at, long before, long after,
                           const char *what)
{
    char name[160];
    snprintf(name, sizeof name, "%s: offset a second before", what);
    is_int(hr_tz_offset(tz, at - 1), before, name);
    snprintf(name, sizeof name, "%s: offset at the change", what);
    is_int(hr_tz_offset(tz, at), after, name);
}

static void wall_is(const hr_tz *tz, long long t, const char *want, int isdst, const char *what)
{
    struct tm tm;
    char got[64];
    hr_tz_local(tz, t, &tm);
    snprintf(got, sizeof got, "%04d-%02d-%02d %02d:%02d:%02d wd%d yd%d dst%d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_wday, tm.tm_yday,
             tm.tm_isdst);
    char full[80];
    snprintf(full, sizeof full, "%s dst%d", want, isdst);
    is_str(got, full, what);
}

static void quiet_is(const hr_tz *tz, int from, int to, long long t, long long want_end,
                     const char *what)
{
    long long end = -1;
    int in = hr_quiet_at(tz, from, to, t, &end);
    char name[160];
    snprintf(name, sizeof name, "%s: inside", what);
    is_int(in, 1, name);
    snprintf(name, sizeof name, "%s: ends_at", what);
    is_int(end, want_end, name);
}

static void not_quiet(const hr_tz *tz, int from, int to, long long t, const char *what)
{
    long long end = 42;
    is_int(hr_quiet_at(tz, from, to, t, &end), 0, what);
    is_int(end, 42, "ends_at is left alone outside the window");
}

/* ---- hand-made TZif files ---- */

typedef struct tzif_spec {
    char version;  /* 0 for version 1, else '2' or '3' */
    int ntrans;
    const long long *times;
    const unsigned char *idx;
    int ntypes;
    const long *utoff;
    const unsigned char *isdst;
    const char *footer;
} tzif_spec;

static size_t put32(unsigned char *p, unsigned long v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

static size_t put_block(unsigned char *p, const tzif_spec *s, char version, int timesize)
{
    size_t n = 0;
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    memset(p + 5, 0, 15);
    n = 20;
    n += put32(p + n, 0);                        /* isutcnt */
    n += put32(p + n, 0);                        /* isstdcnt */
    n += put32(p + n, 0);                        /* leapcnt */
    n += put32(p + n, (unsigned long)s->ntrans); /* timecnt */
    n += put32(p + n, (unsigned long)s->ntypes); /* typecnt */
    n += put32(p + n, 4);                        /* charcnt */
    for (int i = 0; i < s->ntrans; i++) {
        unsigned long long v = (unsigned long long)s->times[i];
        if (timesize == 8)
            n += put32(p + n, (unsigned long)(v >> 32));
        n += put32(p + n, (unsigned long)(v & 0xffffffffu));
    }
    for (int i = 0; i < s->ntrans; i++)
        p[n++] = s->idx[i];
    for (int i = 0; i < s->ntypes; i++) {
        n += put32(p + n, (unsigned long)s->utoff[i]);
        p[n++] = s->isdst[i];
        p[n++] = 0;
    }
    memcpy(p + n, "ZZZ", 4);
    return n + 4;
}

static size_t make_tzif(unsigned char *p, const tzif_spec *s)
{
    size_t n = put_block(p, s, s->version, 4);
    if (!s->version)
        return n;
    n += put_block(p + n, s, s->version, 8);
    n += (size_t)sprintf((char *)p + n, "\n%s\n", s->footer);
    return n;
}

static char *put_file(const char *name, const void *data, size_t len)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    return path;
}

static void remove_file(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static void real_zones(void)
{
    hr_tz *ber = load("Europe/Berlin");
    hr_tz *ny = load("America/New_York");
    hr_tz *syd = load("Australia/Sydney");
    hr_tz *kol = load("Asia/Kolkata");
    hr_tz *utc = load("UTC");
    hr_tz *gmt5 = load("Etc/GMT+5");
    hr_tz *nuuk = load("America/Nuuk");
    if (!ber || !ny || !syd || !kol || !utc || !gmt5 || !nuuk) {
        printf("Bail out! system zones missing: install tzdata\n");
        exit(1);
    }
    is_str(hr_tz_name(ber), "Europe/Berlin", "the name is kept");

    offsets_around(ber, BER_SPRING_2026, 3600, 7200, "Berlin spring 2026");
    offsets_around(ber, BER_AUTUMN_2026, 7200, 3600, "Berlin autumn 2026");
    offsets_around(ber, BER_SPRING_2100, 3600, 7200, "Berlin spring 2100 (footer rule)");
    offsets_around(ber, BER_AUTUMN_2100, 7200, 3600, "Berlin autumn 2100 (footer rule)");
    is_int(hr_tz_offset(ber, JUL01_2000), 7200, "Berlin summer 2000 from the table");
    is_int(hr_tz_offset(ber, JAN01_2000), 3600, "Berlin winter 2000 from the table");

    wall_is(ber, BER_SPRING_2026 - 1, "2026-03-29 01:59:59 wd0 yd87", 0,
            "Berlin wall clock just before the jump");
    wall_is(ber, BER_SPRING_2026, "2026-03-29 03:00:00 wd0 yd87", 1,
            "Berlin wall clock at the jump");
    wall_is(ber, BER_AUTUMN_2026 - 1, "2026-10-25 02:59:59 wd0 yd297", 1,
            "Berlin wall clock before falling back");
    wall_is(ber, BER_AUTUMN_2026, "2026-10-25 02:00:00 wd0 yd297", 0,
            "Berlin wall clock after falling back");

    is_int(hr_tz_from_local(ber, 2026, 7, 1, 12, 0, 0), 1782900000LL,
           "Berlin 2026-07-01 12:00 is 10:00Z");
    is_int(hr_tz_from_local(ber, 2026, 3, 29, 1, 59, 59), BER_SPRING_2026 - 1,
           "Berlin 01:59:59 on the spring night is still CET");
    is_int(hr_tz_from_local(ber, 2026, 3, 29, 2, 30, 0), BER_SPRING_2026 + 30 * 60,
           "Berlin 02:30 in the gap is the instant of 03:30 CEST");
    is_int(hr_tz_from_local(ber, 2026, 3, 29, 3, 0, 0), BER_SPRING_2026,
           "Berlin 03:00 on the spring night is the jump");
    is_int(hr_tz_from_local(ber, 2026, 10, 25, 2, 30, 0), BER_AUTUMN_2026 - 30 * 60,
           "Berlin 02:30 in the overlap is the earlier (CEST) instant");
    is_int(hr_tz_from_local(ber, 2026, 10, 25, 3, 0, 0), BER_AUTUMN_2026 + HOUR,
           "Berlin 03:00 after the overlap is CET");
    is_int(hr_tz_from_local(ber, 2026, 2, 29 + 28, 2, 30, 0), BER_SPRING_2026 + 30 * 60,
           "fields out of range carry over (Feb 57 = Mar 29)");
    is_int(hr_tz_from_local(ber, 2100, 3, 28, 2, 30, 0), BER_SPRING_2100 + 30 * 60,
           "Berlin 2100 gap from the footer rule");

    offsets_around(ny, NY_SPRING_2026, -18000, -14400, "New York 2026-03-08");
    offsets_around(ny, NY_AUTUMN_2026, -14400, -18000, "New York 2026-11-01");
    is_int(hr_tz_from_local(ny, 2026, 3, 8, 2, 30, 0), 1772955000LL,
           "New York 02:30 in the gap is 03:30 EDT (07:30Z)");
    is_int(hr_tz_from_local(ny, 2026, 11, 1, 1, 30, 0), 1793511000LL,
           "New York 01:30 in the overlap is the EDT instant (05:30Z)");
    wall_is(ny, NY_AUTUMN_2026, "2026-11-01 01:00:00 wd0 yd304", 0,
            "New York's second 01:00 is EST");

    is_int(hr_tz_offset(syd, JAN15_2026), 39600, "Sydney is on daylight time in January");
    is_int(hr_tz_offset(syd, JUL15_2026), 36000, "Sydney is on standard time in July");
    offsets_around(syd, SYD_AUTUMN_2026, 39600, 36000, "Sydney 2026-04-05");
    offsets_around(syd, SYD_SPRING_2026, 36000, 39600, "Sydney 2026-10-04");
    offsets_around(syd, SYD_AUTUMN_2100, 39600, 36000, "Sydney 2100 (southern footer rule)");
    offsets_around(syd, SYD_SPRING_2100, 36000, 39600, "Sydney 2100 spring (footer rule)");
    wall_is(syd, JAN15_2026, "2026-01-15 11:00:00 wd4 yd14", 1, "Sydney wall clock in January");
    is_int(hr_tz_from_local(syd, 2026, 4, 5, 2, 30, 0), 1775316600LL,
           "Sydney 02:30 in the overlap is the AEDT instant");

    is_int(hr_tz_offset(kol, JAN15_2026), 19800, "Kolkata is +05:30 in January");
    is_int(hr_tz_offset(kol, JUL15_2026), 19800, "Kolkata is +05:30 in July");
    is_int(hr_tz_offset(kol, 4118083200LL), 19800, "Kolkata is +05:30 in 2100");
    wall_is(kol, 0, "1970-01-01 05:30:00 wd4 yd0", 0, "Kolkata at the epoch");

    is_int(hr_tz_offset(utc, JUL15_2026), 0, "UTC has no offset");
    wall_is(utc, -1, "1969-12-31 23:59:59 wd3 yd364", 0, "negative times: UTC before the epoch");
    wall_is(utc, 951782400LL, "2000-02-29 00:00:00 wd2 yd59", 0, "UTC on a leap day");
    is_int(hr_tz_from_local(utc, 2000, 2, 29, 0, 0, 0), 951782400LL, "UTC from_local leap day");
    is_int(hr_tz_offset(gmt5, JUL15_2026), -18000, "Etc/GMT+5 is five hours west");

    offsets_around(nuuk, BER_SPRING_2100, -7200, -3600,
                   "Nuuk 2100 (footer rule time /-1, before midnight)");
    offsets_around(nuuk, BER_AUTUMN_2100, -3600, -7200, "Nuuk 2100 autumn (rule time /0)");

    /* Quiet hours 22:00-07:00 in Berlin summer: 23:30 CEST = 21:30Z. */
    long long jun10_2330 = 1781127000LL, jun11_0700 = 1781154000LL;
    quiet_is(ber, 22 * 60, 7 * 60, jun10_2330, jun11_0700, "22:00-07:00 at 23:30");
    quiet_is(ber, 22 * 60, 7 * 60, jun11_0700 - 60, jun11_0700, "22:00-07:00 at 06:59");
    quiet_is(ber, 22 * 60, 7 * 60, jun10_2330 - 90 * 60, jun11_0700, "22:00-07:00 at 22:00");
    not_quiet(ber, 22 * 60, 7 * 60, jun11_0700, "22:00-07:00 at 07:00 is outside");
    not_quiet(ber, 22 * 60, 7 * 60, jun10_2330 - 91 * 60, "22:00-07:00 at 21:59 is outside");
    is_int(hr_quiet_at(ber, 22 * 60, 7 * 60, jun10_2330, NULL), 1, "ends_at may be NULL");

    /* 01:00-04:00 on the spring night: 01:00 CET = 00:00Z, 04:00 CEST = 02:00Z. */
    quiet_is(ber, 60, 240, BER_SPRING_2026 - HOUR, BER_SPRING_2026 + HOUR,
             "01:00-04:00 on the spring night: two real hours");
    quiet_is(ber, 60, 240, BER_SPRING_2026 + 30 * 60, BER_SPRING_2026 + HOUR,
             "01:00-04:00 at 03:30 CEST");
    /* On the autumn night: 01:00 CEST = 23:00Z, 04:00 CET = 03:00Z. */
    quiet_is(ber, 60, 240, BER_AUTUMN_2026 - 2 * HOUR, BER_AUTUMN_2026 + 2 * HOUR,
             "01:00-04:00 on the autumn night: four real hours");
    /* An end inside the gap ends when the gap does; in the overlap, at its first pass >= t. */
    quiet_is(ber, 22 * 60, 150, BER_SPRING_2026 - 2 * HOUR, BER_SPRING_2026,
             "22:00-02:30 ending in the spring gap ends at 03:00 CEST");
    quiet_is(ber, 22 * 60, 150, BER_AUTUMN_2026 - 4 * HOUR, BER_AUTUMN_2026 - 30 * 60,
             "22:00-02:30 ending in the overlap ends at 02:30 CEST");
    quiet_is(ber, 22 * 60, 150, BER_AUTUMN_2026 + 10 * 60, BER_AUTUMN_2026 + 30 * 60,
             "22:00-02:30 at the second 02:10 ends at 02:30 CET");
    /* New York, fall-back night: 22:00 EDT = 02:00Z to 07:00 EST = 12:00Z. */
    quiet_is(ny, 22 * 60, 7 * 60, 1793498400LL, 1793534400LL,
             "New York 22:00-07:00 across the fall-back night lasts ten hours");
    /* Sydney in January: 23:00 AEDT = 12:00Z the day before; 07:00 AEDT = 20:00Z. */
    quiet_is(syd, 22 * 60, 7 * 60, JAN15_2026 - 12 * HOUR, JAN15_2026 - 4 * HOUR,
             "Sydney 22:00-07:00 at 23:00 AEDT ends at 07:00 AEDT");
    not_quiet(syd, 22 * 60, 7 * 60, JAN15_2026, "Sydney 22:00-07:00 at 11:00 AEDT is outside");
    not_quiet(ber, 600, 600, jun10_2330, "start == end is an empty window");
    not_quiet(ber, -1, 600, jun10_2330, "a negative minute is refused");
    not_quiet(ber, 0, 1440, jun10_2330, "minute 1440 is refused");

    hr_tz_free(ber);
    hr_tz_free(ny);
    hr_tz_free(syd);
    hr_tz_free(kol);
    hr_tz_free(utc);
    hr_tz_free(gmt5);
    hr_tz_free(nuuk);
}

static void names(void)
{
    char err[512] = "";
    ok(hr_tz_load("Nope/Zone", err, sizeof err) == NULL, "an unknown zone is refused");
    is_str(err,
           "unknown time zone \"Nope/Zone\": no such file in /usr/share/zoneinfo; use a name "
           "like Europe/Berlin (see timedatectl list-timezones)",
           "the unknown-zone error names the directory and the fix");
    rejected("../etc/passwd", "invalid time zone name \"../etc/passwd\": '.' is not allowed",
             "a name climbing out of the zoneinfo directory is refused");
    rejected("", "time zone name is empty; use a name like Europe/Berlin", "an empty name");
    rejected(NULL, "time zone name is empty", "a NULL name");
    rejected("/etc/localtime", "\"/etc/localtime\": an absolute path", "an absolute path");
    rejected("Europe//Berlin", "an empty path component", "an empty component");
    rejected("Europe/Berlin/", "an empty path component", "a trailing slash");
    rejected("Europe/Berlin\nX", "invalid time zone name \"Europe/Berlin...\"",
             "a control character is refused and not echoed");
    rejected("Europe", "time zone \"Europe\" is a directory of zones in /usr/share/zoneinfo",
             "a directory is not a zone");
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    rejected(longname, "longer than 255 characters", "an overlong name");
}

static void quiet_parsing(void)
{
    int a = -1, b = -1;
    char err[256] = "";
    is_int(hr_quiet_parse("22:00-07:00", &a, &b, err, sizeof err), 0, "22:00-07:00 parses");
    is_int(a, 1320, "start 22:00 is minute 1320");
    is_int(b, 420, "end 07:00 is minute 420");
    is_int(hr_quiet_parse(" 7:05 - 9:30 ", &a, &b, err, sizeof err), 0,
           "one-digit hours and blanks are accepted");
    is_int(a * 10000 + b, 425 * 10000 + 570, "7:05-9:30 is 425-570");
    is_int(hr_quiet_parse("00:00-23:59", &a, &b, err, sizeof err), 0, "the extremes parse");
    is_int(a * 10000 + b, 1439, "00:00-23:59 is 0-1439");
    is_int(hr_quiet_parse("12:00-12:00", &a, &b, err, sizeof err), 0, "equal times parse");

    static const struct {
        const char *in, *want;
    } bad[] = {
        {"25:00-07:00", "quiet hours \"25:00-07:00\": hour 25 is over 23; use HH:MM-HH:MM, "
                        "24-hour, e.g. 22:00-07:00"},
        {"22:60-07:00", "quiet hours \"22:60-07:00\": minute 60 is over 59; use HH:MM-HH:MM, "
                        "24-hour, e.g. 22:00-07:00"},
        {"22:00-24:00", "quiet hours \"22:00-24:00\": hour 24 is over 23; use"},
        {"22-07", "quiet hours \"22-07\": use HH:MM-HH:MM, 24-hour, e.g. 22:00-07:00"},
        {"22:00", "quiet hours \"22:00\": use HH:MM"},
        {"22:00-07:00x", "quiet hours \"22:00-07:00x\": use HH:MM"},
        {"22:0-07:00", "quiet hours \"22:0-07:00\": use HH:MM"},
        {"122:00-07:00", "quiet hours \"122:00-07:00\": use HH:MM"},
        {"22:00-07:00-08:00", "quiet hours \"22:00-07:00-08:00\": use HH:MM"},
        {"", "quiet hours are empty; use HH:MM-HH:MM"},
        {NULL, "quiet hours are empty; use HH:MM-HH:MM"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[96];
        a = b = 7;
        err[0] = '\0';
        snprintf(name, sizeof name, "quiet hours \"%s\" are refused", bad[i].in ? bad[i].in : "NULL");
        is_int(hr_quiet_parse(bad[i].in, &a, &b, err, sizeof err), -1, name);
        like(err, bad[i].want, name);
        ok(a == 7 && b == 7, "nothing is stored on error");
    }
}

/* Every zone in tzdata's zone1970.tab loads, and local -> unix -> local round-trips. */
static void every_zone(void)
{
    FILE *f = fopen("/usr/share/zoneinfo/zone1970.tab", "r");
    if (!f) {
        ok(1, "every zone loads # SKIP no /usr/share/zoneinfo/zone1970.tab");
        return;
    }
    char line[512], err[512], first_bad[600] = "";
    int zones = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char name[256];
        if (sscanf(line, "%*s %*s %255s", name) != 1) /* codes, coordinates, zone */
            continue;
        zones++;
        hr_tz *tz = hr_tz_load(name, err, sizeof err);
        if (!tz) {
            if (!bad++)
                snprintf(first_bad, sizeof first_bad, "%s", err);
            continue;
        }
        /* 2020-01-01 to 2110, every 5 days and 7 hours. */
        for (long long t = 1577836800LL; t < 4418064000LL; t += 5 * 86400 + 7 * 3600) {
            struct tm a, b;
            hr_tz_local(tz, t, &a);
            long long back = hr_tz_from_local(tz, a.tm_year + 1900, a.tm_mon + 1, a.tm_mday,
                                              a.tm_hour, a.tm_min, a.tm_sec);
            hr_tz_local(tz, back, &b);
            long off = hr_tz_offset(tz, t);
            if (back > t || t - back > 25 * 3600 || a.tm_hour != b.tm_hour ||
                a.tm_min != b.tm_min || a.tm_mday != b.tm_mday || off < -12 * 3600 ||
                off > 14 * 3600) {
                if (!bad++)
                    snprintf(first_bad, sizeof first_bad, "%s at %lld: back %lld", name, t, back);
                break;
            }
        }
        hr_tz_free(tz);
    }
    fclose(f);
    ok(zones > 300, "zone1970.tab lists the zones");
    if (!is_int(bad, 0, "every zone loads and local times round-trip 2020-2110"))
        printf("#   first: %s\n", first_bad);
}

static const long long v1_times[] = {BER_SPRING_2026, BER_AUTUMN_2026};
static const unsigned char v1_idx[] = {1, 0};
static const long cet_off[] = {3600, 7200};
static const unsigned char cet_dst[] = {0, 1};

static void load_fails(const char *name, const void *data, size_t len, const char *want,
                       const char *what)
{
    put_file(name, data, len);
    rejected(name, want, what);
    remove_file(name);
}

static void files(void)
{
    unsigned char buf[4096], bad[4096];
    tzif_spec slim = {'2', 0, NULL, NULL, 1, cet_off, cet_dst, "CET-1CEST,M3.5.0,M10.5.0/3"};
    tzif_spec v1 = {0, 2, v1_times, v1_idx, 2, cet_off, cet_dst, NULL};
    tzif_spec jrule = {'3', 0, NULL, NULL, 1, cet_off, cet_dst, "<+01>-1<+02>,J60/2,J300/2"};
    tzif_spec zrule = {'3', 0, NULL, NULL, 1, cet_off, cet_dst, "<+01>-1<+02>,59/2,299/2"};
    size_t n;

    n = make_tzif(buf, &slim);
    put_file("Slim", buf, n);
    hr_tz *tz = load("Slim");
    if (tz) {
        offsets_around(tz, BER_SPRING_2026, 3600, 7200, "a footer-only (slim) file, spring");
        offsets_around(tz, BER_AUTUMN_2026, 7200, 3600, "a footer-only (slim) file, autumn");
        is_int(hr_tz_from_local(tz, 2026, 3, 29, 2, 30, 0), BER_SPRING_2026 + 30 * 60,
               "slim file: gap from the footer");
        quiet_is(tz, 60, 240, BER_SPRING_2026 - HOUR, BER_SPRING_2026 + HOUR,
                 "slim file: 01:00-04:00 on the spring night");
    }
    hr_tz_free(tz);

    n = make_tzif(buf, &v1);
    put_file("V1", buf, n);
    if ((tz = load("V1")) != NULL) {
        is_int(hr_tz_offset(tz, JAN01_2000), 3600, "version 1: type 0 before the first change");
        offsets_around(tz, BER_SPRING_2026, 3600, 7200, "version 1, first change");
        offsets_around(tz, BER_AUTUMN_2026, 7200, 3600, "version 1, second change");
        is_int(hr_tz_offset(tz, BER_SPRING_2100), 3600, "version 1: the last type stays");
    }
    hr_tz_free(tz);

    n = make_tzif(buf, &jrule);
    put_file("Jrule", buf, n);
    if ((tz = load("Jrule")) != NULL) /* J60 is March 1 even in a leap year */
        offsets_around(tz, 1835485200LL, 3600, 7200, "J60/2 in 2028 is March 1, 01:00Z");
    hr_tz_free(tz);
    n = make_tzif(buf, &zrule);
    put_file("Zrule", buf, n);
    if ((tz = load("Zrule")) != NULL) { /* zero-based 59 is Feb 29 in a leap year */
        offsets_around(tz, 1835398800LL, 3600, 7200, "59/2 in 2028 is February 29, 01:00Z");
        offsets_around(tz, 1803862800LL, 3600, 7200, "59/2 in 2027 is March 1, 01:00Z");
    }
    hr_tz_free(tz);

    const char *invalid = "is not a valid TZif file";
    n = make_tzif(buf, &slim);
    load_fails("Empty", "", 0, "(the file is empty)", "an empty file");
    load_fails("Garbage", "this is not a zone at all, just some text\n", 43,
               "no TZif magic at the start", "a text file");
    load_fails("Short", buf, 30, "cut short in its header", "a file cut in its header");
    load_fails("NoFooter", buf, n - 1, "the TZ string footer is missing", "a footer cut short");
    memcpy(bad, buf, n);
    bad[32] = 0x7f; /* timecnt = 0x7f000000 */
    load_fails("HugeCount", bad, n, "counts in the header run past the end", "a huge count");
    memcpy(bad, buf, n);
    bad[54 + 35] = 0x40; /* the 64-bit header (after 54 bytes of version 1) timecnt = 64 */
    load_fails("HugeCount64", bad, n, "run past the end of the file", "a huge 64-bit count");
    memcpy(bad, buf, n);
    bad[39] = 0; /* typecnt = 0 */
    load_fails("NoTypes", bad, n, "type count out of range", "no local time types");
    memcpy(bad, buf, n);
    bad[31] = 1; /* leapcnt = 1 */
    load_fails("Leap", bad, n, "leap-second (\"right/\") zones are not supported; use the zone",
               "leap seconds");
    memcpy(bad, buf, n);
    bad[4] = 'x';
    load_fails("Version", bad, n, "unknown version byte", "an unknown version");

    tzif_spec s = slim;
    s.footer = "CET-1CEST,M13.5.0,M10.5.0/3";
    n = make_tzif(buf, &s);
    load_fails("BadFooter", buf, n, "the TZ string footer is not understood", "month 13");
    s.footer = "CET-1CEST,M3.5.0";
    n = make_tzif(buf, &s);
    load_fails("HalfRule", buf, n, "the TZ string footer is not understood", "half a rule");
    s.footer = "CET-26";
    n = make_tzif(buf, &s);
    load_fails("FarFooter", buf, n, "the TZ string footer is not understood", "a 26-hour offset");
    static const long far_off[] = {100000};
    s = slim;
    s.utoff = far_off;
    n = make_tzif(buf, &s);
    load_fails("FarType", buf, n, "a UT offset is over 25 hours", "a 27-hour type");

    tzif_spec badv1 = v1;
    static const unsigned char bad_idx[] = {1, 5};
    badv1.idx = bad_idx;
    n = make_tzif(buf, &badv1);
    load_fails("BadIndex", buf, n, "a transition names a type that does not exist",
               "a type index past the types");
    static const long long backwards[] = {BER_AUTUMN_2026, BER_SPRING_2026};
    badv1 = v1;
    badv1.times = backwards;
    n = make_tzif(buf, &badv1);
    load_fails("Backwards", buf, n, "transition times out of order", "transitions backwards");
    n = make_tzif(buf, &v1);
    load_fails("CutV1", buf, n - 5, invalid, "a version 1 file cut short");

    size_t big = 300 * 1024;
    unsigned char *huge = calloc(1, big);
    if (huge) {
        memcpy(huge, buf, n);
        load_fails("Big", huge, big, "is over 256 KiB", "a file over 256 KiB");
    }
    free(huge);

    /* Every strict prefix of real files is refused; flipped bytes never crash. */
    const char *sources[] = {"/usr/share/zoneinfo/Europe/Berlin",
                             "/usr/share/zoneinfo/Australia/Sydney"};
    int prefix_loaded = 0, flips = 0, insane = 0;
    srand(1);
    for (size_t k = 0; k < sizeof sources / sizeof sources[0]; k++) {
        static unsigned char real[65536];
        FILE *f = fopen(sources[k], "rb");
        size_t len = f ? fread(real, 1, sizeof real, f) : 0;
        if (f)
            fclose(f);
        for (size_t cut = 0; cut < len; cut++) {
            put_file("Prefix", real, cut);
            hr_tz *p = hr_tz_load("Prefix", NULL, 0);
            prefix_loaded += p != NULL;
            hr_tz_free(p);
        }
        for (int i = 0; i < 400 && len > 0; i++) {
            static unsigned char mut[65536];
            memcpy(mut, real, len);
            for (int j = 0; j < 4; j++)
                mut[(size_t)rand() % len] ^= (unsigned char)(1u << (rand() % 8));
            put_file("Flipped", mut, len);
            hr_tz *p = hr_tz_load("Flipped", NULL, 0);
            if (p) {
                struct tm tm;
                long long end = BER_SPRING_2026;
                long far = hr_tz_offset(p, -(1LL << 62)) + hr_tz_offset(p, 1LL << 62);
                long long back = hr_tz_from_local(p, 2026, 3, 29, 2, 30, 0);
                flips++;
                hr_tz_local(p, BER_SPRING_2026, &tm);
                hr_quiet_at(p, 22 * 60, 7 * 60, BER_SPRING_2026, &end);
                insane += tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_mday < 1 ||
                          tm.tm_mday > 31 || far < -2 * 89999 || far > 2 * 93599 ||
                          back < 1774742400LL - 2 * 86400 || back > 1774742400LL + 2 * 86400 ||
                          end < BER_SPRING_2026 || end > BER_SPRING_2026 + 2 * 86400;
            }
            hr_tz_free(p);
        }
    }
    remove_file("Prefix");
    remove_file("Flipped");
    is_int(prefix_loaded, 0, "no strict prefix of a real TZif file loads");
    is_int(insane, 0, "files with flipped bits load or not, but give bounded answers");
    printf("# %d of 800 files with flipped bits still loaded\n", flips);

    remove_file("Slim");
    remove_file("V1");
    remove_file("Jrule");
    remove_file("Zrule");
}

int main(void)
{
    unsetenv("TZDIR");
    real_zones();
    names();
    quiet_parsing();
    every_zone();

    snprintf(dir, sizeof dir, "/tmp/test_tz.XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    setenv("TZDIR", dir, 1);
    files();
    char err[512] = "";
    ok(hr_tz_load("Europe/Berlin", err, sizeof err) == NULL, "TZDIR is honoured");
    like(err, "no such file in /tmp/test_tz.", "the error names TZDIR's directory");
    unsetenv("TZDIR");
    rmdir(dir);
    return done_testing();
}
