/* test_event.c - event validation, UTF-8 checks, ids and the canonical JSON payload. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"
#include "tap.h"

static herald_event base(void)
{
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "backup.failed";
    ev.title = "Backup failed";
    ev.body = "disk full";
    ev.severity = HERALD_SEVERITY_ERROR;
    return ev;
}

static void bad(herald_event *ev, herald_status want, const char *needle, const char *name)
{
    char err[512] = "";
    herald_status st = hr_event_validate(ev, &hr_default_limits, err, sizeof err);
    is_int(st, want, name);
    like(err, needle, "message names the problem");
}

int main(void)
{
    char err[512];
    herald_event ev = base();
    is_int(hr_event_validate(&ev, &hr_default_limits, err, sizeof err), HERALD_OK, "valid event");

    ok(hr_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15), "valid UTF-8");
    ok(!hr_utf8_valid("\xff\xfe", 2), "invalid bytes");
    ok(!hr_utf8_valid("\xc0\xaf", 2), "overlong encoding");
    ok(!hr_utf8_valid("\xed\xa0\x80", 3), "UTF-16 surrogate");
    ok(!hr_utf8_valid("\xe2\x82", 2), "truncated sequence");
    ok(!hr_utf8_valid("a\0b", 3), "NUL byte");
    ok(!hr_utf8_valid("\xf4\x90\x80\x80", 4), "above U+10FFFF");

    ok(hr_valid_event_type("a.b-c_d.e1"), "dotted type");
    ok(!hr_valid_event_type("Backup.Failed"), "uppercase type");
    ok(!hr_valid_event_type("a..b"), "empty segment");
    ok(!hr_valid_event_type(".a"), "leading dot");
    ok(!hr_valid_event_type("a."), "trailing dot");
    ok(!hr_valid_event_type(""), "empty type");

    ev = base(); ev.type = "Bad Type";
    bad(&ev, HERALD_E_INVALID, "event type 'Bad Type' is invalid", "bad type");
    ev = base(); ev.title = "";
    bad(&ev, HERALD_E_INVALID, "title (summary) is empty", "empty title");
    ev = base(); ev.title = "\xff\xfe";
    bad(&ev, HERALD_E_ENCODING, "title is not valid UTF-8", "invalid title");
    ev = base(); ev.body = "ok \xc0\xaf";
    bad(&ev, HERALD_E_ENCODING, "body is not valid UTF-8", "invalid body");

    char *big = malloc(hr_default_limits.max_body + 2);
    memset(big, 'x', hr_default_limits.max_body + 1);
    big[hr_default_limits.max_body + 1] = '\0';
    ev = base(); ev.body = big;
    bad(&ev, HERALD_E_TOO_LARGE, "over the limit of 65536", "oversized body");
    big[hr_default_limits.max_body] = '\0';
    is_int(hr_event_validate(&ev, &hr_default_limits, err, sizeof err), HERALD_OK,
           "body exactly at the limit");
    big[hr_default_limits.max_title + 1] = '\0';
    ev = base(); ev.title = big;
    bad(&ev, HERALD_E_TOO_LARGE, "max_title", "oversized title");
    free(big);

    hr_field f2[2] = {{"host", "db1"}, {"host", "db2"}};
    ev = base(); ev.fields = f2; ev.nfields = 2;
    bad(&ev, HERALD_E_INVALID, "given twice", "duplicate field");
    hr_field f1[1] = {{"bad name", "x"}};
    ev = base(); ev.fields = f1; ev.nfields = 1;
    bad(&ev, HERALD_E_INVALID, "field name 'bad name' is invalid", "bad field name");
    ev = base(); ev.data = "{\"a\":";
    bad(&ev, HERALD_E_INVALID, "data is not valid JSON", "bad data");

    /* Canonical payload: exact keys, order and values. */
    hr_field fields[2] = {{"host", "db1"}, {"disk", "sda"}};
    ev = base();
    ev.fields = fields;
    ev.nfields = 2;
    ev.source = "cron";
    ev.data = "{\"size\":42}";
    hr_event_stamp(&ev);
    is_int(strlen(ev.id), 36, "id is 36 characters");
    ok(ev.id[14] == '7', "id is a UUIDv7");
    ok(strchr("89ab", ev.id[19]) != NULL, "id has the RFC 9562 variant");
    is_int(strlen(ev.timestamp), 24, "timestamp length");
    ok(ev.timestamp[23] == 'Z' && ev.timestamp[10] == 'T', "timestamp is RFC 3339 UTC");

    char id2[37];
    usleep(2000); /* ids order by millisecond; within one they are random */
    hr_new_id(id2);
    ok(strcmp(id2, ev.id) > 0, "ids sort by creation time");

    /* Random bits come from a pool: a forked child must not hand out the
     * parent's next ids (heraldd forks when it detaches). */
    char mine[64][37], theirs[64][37];
    int pfd[2];
    ok(pipe(pfd) == 0, "pipe for the child's ids");
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 64; i++)
            hr_new_id(theirs[i]);
        ssize_t w = write(pfd[1], theirs, sizeof theirs);
        _exit(w == (ssize_t)sizeof theirs ? 0 : 1);
    }
    for (int i = 0; i < 64; i++)
        hr_new_id(mine[i]);
    size_t got = 0;
    while (got < sizeof theirs) {
        ssize_t r = read(pfd[0], (char *)theirs + got, sizeof theirs - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    waitpid(child, NULL, 0);
    int same = 0;
    for (int i = 0; i < 64; i++)
        for (int k = 0; k < 64; k++)
            same += memcmp(mine[i] + 14, theirs[k] + 14, 22) == 0;
    ok(got == sizeof theirs && same == 0, "a forked child's ids share no random bits with ours");
    int dup = 0;
    for (int i = 0; i < 64; i++)
        for (int k = i + 1; k < 64; k++)
            dup += strcmp(mine[i], mine[k]) == 0;
    is_int(dup, 0, "64 ids in a row are all different");

    char *json = hr_event_json(&ev);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"id\":\"%s\",\"type\":\"backup.failed\",\"severity\":\"error\","
             "\"title\":\"Backup failed\",\"body\":\"disk full\","
             "\"fields\":{\"host\":\"db1\",\"disk\":\"sda\"},\"data\":{\"size\":42},"
             "\"source\":\"cron\",\"timestamp\":\"%s\"}",
             ev.id, ev.timestamp);
    is_str(json, want, "canonical event JSON");
    free(json);

    ev.data = NULL;
    ev.source = NULL;
    ev.nfields = 0;
    json = hr_event_json(&ev);
    like(json, "\"fields\":{},\"data\":null,\"source\":null", "absent parts are {} and null");
    free(json);

    /* The direct encoder writes what jansson would, byte for byte. */
    static const char *const tricky[] = {
        "plain", "", "quote \" backslash \\ slash /", "\b\f\n\r\t", "\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5", "line\nbreak \"q\"", "\\u0041",
    };
    int mismatches = 0;
    for (size_t i = 0; i < sizeof tricky / sizeof *tricky; i++) {
        hr_field f[3] = {{(char *)"a", (char *)tricky[i]},
                             {tricky[i][0] ? (char *)tricky[i] : (char *)"e", (char *)"x"},
                             {(char *)"a", (char *)"last wins"}};
        herald_event t = ev;
        t.title = (char *)tricky[i];
        t.body = (char *)tricky[i];
        t.source = (char *)tricky[i];
        t.fields = f;
        t.nfields = 3;
        t.data = (char *)(i % 2 ? "{ \"b\" : [1, 2.5, \"\\u00e9\"], \"a\": null }" : "17");
        json_t *fo = json_object();
        for (size_t k = 0; k < t.nfields; k++)
            json_object_set_new(fo, t.fields[k].name, json_string(t.fields[k].value));
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "id", t.id,
                              "type", t.type, "severity", hr_severity_name(t.severity), "title",
                              t.title, "body", t.body, "fields", fo, "data",
                              json_loads(t.data, JSON_DECODE_ANY, NULL), "source", t.source,
                              "timestamp", t.timestamp);
        char *want2 = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *got2 = hr_event_json(&t);
        if (!want2 || strcmp(want2, got2) != 0) {
            mismatches++;
            printf("# jansson: %s\n", want2 ? want2 : "(null)");
            printf("# herald:  %s\n", got2);
        }
        free(want2);
        free(got2);
        json_decref(o);
    }
    is_int(mismatches, 0, "the event JSON is jansson's for quotes, controls, UTF-8, repeated "
           "fields and data");
    return done_testing();
}
