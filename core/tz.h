/* tz.h - time zones for per-user quiet hours, read from TZif files without touching TZ. */
#ifndef HERALD_TZ_H
#define HERALD_TZ_H

#include <stddef.h>
#include <time.h>

/*
 * A loaded zone. It is read-only once hr_tz_load returns, so threads may share
 * one freely; nothing here reads or changes the process's TZ, tzset() or
 * localtime() state. Unix times are clamped to about +-35 million years.
 */
typedef struct hr_tz hr_tz;

/*
 * Load zone `name` ("Europe/Berlin", "UTC", "Etc/GMT+5") from its TZif file
 * (version 1, 2 or 3; the 64-bit data and the POSIX TZ footer of version 2+
 * are used) under $TZDIR, or /usr/share/zoneinfo when TZDIR is unset or empty.
 * The name must be a relative path of letters, digits, '/', '_', '-' and '+'.
 * Files over 256 KiB and leap-second ("right/") zones are refused. Returns a
 * zone to release with hr_tz_free, or NULL with a one-line error in err, e.g.
 *   unknown time zone "Europe/Berln": no such file in /usr/share/zoneinfo;
 *   use a name like Europe/Berlin (see timedatectl list-timezones)
 */
hr_tz *hr_tz_load(const char *name, char *err, size_t errlen);

void hr_tz_free(hr_tz *tz); /* NULL is fine */

/* The name given to hr_tz_load; valid until hr_tz_free. */
const char *hr_tz_name(const hr_tz *tz);

/* Offset from UTC in seconds (east positive) in effect at unix time t. */
long hr_tz_offset(const hr_tz *tz, long long t);

/*
 * The local wall clock at t as a struct tm: tm_year since 1900, tm_mon 0-11,
 * tm_mday, tm_hour, tm_min, tm_sec, tm_wday (0 = Sunday), tm_yday and
 * tm_isdst (0 or 1) are set; any other fields are zeroed.
 */
void hr_tz_local(const hr_tz *tz, long long t, struct tm *out);

/*
 * Unix time of the local wall-clock time year-mon-mday hour:min:sec (mon
 * 1-12; fields out of range carry over, as with timegm). A time skipped by a
 * spring-forward gap is read with the offset before the gap, so it lands as
 * far after the jump as it was after the gap's start (02:30 in a 02:00-03:00
 * gap gives the instant of 03:30). A time repeated by a fall-back overlap gives
 * the earlier of its two instants.
 */
long long hr_tz_from_local(const hr_tz *tz, int year, int mon, int mday, int hour, int min,
                           int sec);

/*
 * Quiet window [start_min, end_min) in minutes after local midnight (0-1439),
 * judged by the local wall clock at t. end_min < start_min crosses midnight;
 * start_min == end_min is an empty window. Returns 1 when t is inside and, if
 * ends_at is not NULL, stores the first instant >= t at which the wall clock
 * reaches end_min (when end_min falls in a spring-forward gap: the instant the
 * gap ends; in a fall-back overlap: the first pass >= t). Returns 0, leaving
 * *ends_at alone, when t is outside, the window is empty or a minute count is
 * out of range.
 */
int hr_quiet_at(const hr_tz *tz, int start_min, int end_min, long long t, long long *ends_at);

/*
 * Parse quiet hours "HH:MM-HH:MM" (24-hour; one-digit hours allowed) into
 * minutes after midnight. Equal times parse to an empty window. Returns 0, or
 * -1 with a one-line error such as
 *   quiet hours "25:00-07:00": hour 25 is over 23; use HH:MM-HH:MM, 24-hour, e.g. 22:00-07:00
 */
int hr_quiet_parse(const char *s, int *start_min, int *end_min, char *err, size_t errlen);

#endif /* HERALD_TZ_H */
