/* test_store.c - the SQLite queue: schema, submission, idempotency, claims, attempts, reports, concurrency. */
#include "config.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"
#include "store.h"
#include "tap.h"

/* A fixed clock for everything the test passes in: results then do not
 * depend on when it runs. */
#define T0 1700000000000LL
#define LEASE 30000LL

static char dir[] = "/tmp/herald-store-XXXXXX";

static char *db_path(const char *name)
{
    return hr_asprintf("%s/%s", dir, name);
}

/* ---- a second, plain SQLite connection to look behind the store's back ---- */

static long long q_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return v;
}

/* All rows' first columns joined by '\n' (hr_malloc'd). */
static char *q_text(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    hr_buf b = {0};
    hr_buf_add(&b, "", 0);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(q, 0);
            hr_buf_addf(&b, "%s%s", b.len ? "\n" : "", t ? t : "(null)");
        }
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return b.data;
}

static int q_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

/* ---- events and deliveries ---- */

static void make_event(herald_event *ev, const char *type, long long created_ms)
{
    memset(ev, 0, sizeof *ev);
    hr_new_id(ev->id);
    ev->type = hr_strdup(type);
    ev->title = hr_strdup("title");
    ev->severity = HERALD_SEVERITY_NOTICE;
    ev->created_ms = created_ms;
}

/* Submit one event with one delivery; returns the delivery id (0 on error). */
static long long submit_one(hr_store *s, const char *type, const char *channel, long long created,
                            long long next_at, hr_dstate state, char event_id[37])
{
    herald_event ev;
    make_event(&ev, type, created);
    hr_delivery_new d = {.channel = channel, .next_at = next_at, .state = state};
    int dup = -1;
    long long id = 0;
    if (hr_store_submit(s, &ev, &d, 1, 0, &dup) == HERALD_OK && dup == 0) {
        hr_log_filter f = {.state = -1, .event_id = ev.id};
        hr_delivery_row *r;
        size_t n;
        if (hr_store_log(s, &f, &r, &n) == HERALD_OK) {
            if (n == 1)
                id = r[0].id;
            hr_delivery_rows_free(r, n);
        }
        if (event_id)
            memcpy(event_id, ev.id, 37);
    } else {
        printf("# submit failed: %s\n", hr_store_error(s));
    }
    hr_event_clear(&ev);
    return id;
}

static hr_dstate state_of(hr_store *s, long long id, int *attempts, long long *next_at)
{
    hr_log_filter f = {.state = -1, .limit = 100000};
    hr_delivery_row *r;
    size_t n;
    hr_dstate st = (hr_dstate)-1;
    if (hr_store_log(s, &f, &r, &n) != HERALD_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        if (r[i].id == id) {
            st = r[i].state;
            if (attempts)
                *attempts = r[i].attempts;
            if (next_at)
                *next_at = r[i].next_at;
        }
    }
    hr_delivery_rows_free(r, n);
    return st;
}

static herald_status finish(hr_store *s, long long id, hr_dstate state, long long next_at,
                            long long duration, herald_verdict v)
{
    hr_attempt a = {.delivery_id = id, .started_ms = T0, .duration_ms = duration, .verdict = v,
                    .status = v == HERALD_VERDICT_OK ? HERALD_OK : HERALD_E_SERVER,
                    .code = v == HERALD_VERDICT_OK ? 200 : 503, .detail = "detail"};
    return hr_store_finish(s, &a, state, next_at);
}

/* "id,id,..." of a claim result, for exact comparisons. */
static char *claim_ids(const hr_claim *c, size_t n)
{
    hr_buf b = {0};
    hr_buf_add(&b, "", 0);
    for (size_t i = 0; i < n; i++)
        hr_buf_addf(&b, "%s%lld", i ? "," : "", c[i].id);
    return b.data;
}

static char *ids_text(const long long *ids, size_t n)
{
    hr_buf b = {0};
    hr_buf_add(&b, "", 0);
    for (size_t i = 0; i < n; i++)
        hr_buf_addf(&b, "%s%lld", i ? "," : "", ids[i]);
    return b.data;
}

/* Claim and return the ids as text; frees the claims. */
static char *claim_text(hr_store *s, long long now, size_t max, const char *const *skip,
                        const char *event_id)
{
    hr_claim *c = NULL;
    size_t n = 0;
    if (hr_store_claim(s, now, LEASE, max, skip, event_id, &c, &n) != HERALD_OK) {
        printf("# claim failed: %s\n", hr_store_error(s));
        return hr_strdup("error");
    }
    char *t = claim_ids(c, n);
    hr_claims_free(c, n);
    return t;
}

static long long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000LL + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ---- tests ---- */

static void test_states(void)
{
    hr_dstate st;
    for (int i = 0; i <= HR_D_DEFERRED; i++) {
        st = (hr_dstate)-1;
        ok(hr_dstate_parse(hr_dstate_name((hr_dstate)i), &st) && st == (hr_dstate)i,
           "state name round trip");
    }
    is_str(hr_dstate_name(HR_D_INFLIGHT), "inflight", "inflight name");
    is_str(hr_dstate_name(HR_D_DEFERRED), "deferred", "deferred name");
    ok(!hr_dstate_parse("bogus", &st), "unknown state name refused");
    ok(!hr_dstate_parse(NULL, &st), "NULL state name refused");
}

static void test_open(void)
{
    char err[512] = "";
    hr_store *s = NULL;
    char *path = db_path("open.db");
    mode_t old = umask(0); /* the mode must not depend on a private umask */
    herald_status st = hr_store_open(path, &s, err, sizeof err);
    umask(old);
    if (!is_int(st, HERALD_OK, "open creates a database"))
        printf("# %s\n", err);
    struct stat sb;
    ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "database file is 0600");
    char *wal = hr_asprintf("%s-wal", path);
    ok(stat(wal, &sb) == 0 && (sb.st_mode & 0777) == 0600, "WAL file is 0600 too");
    free(wal);
    is_int(q_int(path, "PRAGMA user_version"), 11, "schema version 11");
    char *mode = q_text(path, "PRAGMA journal_mode");
    is_str(mode, "wal", "WAL journal mode");
    free(mode);
    char *tables = q_text(path, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                "ORDER BY name");
    is_str(tables, "attempts\nchannel_state\ndeliveries\nevents\ngroup_members\nhook_receipts\n"
           "meta\nroute_rate\nroute_seen\ntokens\nuser_prefs\nusers\nwebhooks", "tables created");
    free(tables);
    char *idx = q_text(path, "SELECT name FROM sqlite_master WHERE type = 'index' AND sql "
                             "IS NOT NULL ORDER BY name");
    is_str(idx, "attempts_delivery\nattempts_started\ndeliveries_channel_due\ndeliveries_event\n"
           "deliveries_leased\nevents_idempotency\nhook_receipts_new",
           "indexes created");
    free(idx);
    long long id = submit_one(s, "a.b", "c", T0, T0, HR_D_PENDING, NULL);
    ok(id > 0, "write to a new database");
    hr_store_close(s);

    s = NULL;
    st = hr_store_open(path, &s, err, sizeof err);
    is_int(st, HERALD_OK, "reopen");
    is_int(state_of(s, id, NULL, NULL), HR_D_PENDING, "data survives reopening");
    hr_store_close(s);
    free(path);

    /* A restrictive umask would leave the owner unable to write. */
    path = db_path("umask.db");
    old = umask(0277);
    st = hr_store_open(path, &s, err, sizeof err);
    umask(old);
    if (!is_int(st, HERALD_OK, "open under umask 0277"))
        printf("# %s\n", err);
    ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "still 0600 under umask 0277");
    hr_store_close(s);
    free(path);

    /* A version 1 database (cross-channel due index) moves forward with its rows. */
    path = db_path("v1.db");
    if (hr_store_open(path, &s, err, sizeof err) == HERALD_OK) {
        long long queued = submit_one(s, "a.b", "old", T0, T0, HR_D_PENDING, NULL);
        hr_store_close(s);
        is_int(q_exec(path, "DROP INDEX deliveries_channel_due; DROP INDEX deliveries_leased; "
                            "DROP INDEX attempts_started; "
                            "ALTER TABLE deliveries DROP COLUMN lease_owner; "
                            "CREATE INDEX deliveries_due ON deliveries(due_at) "
                            "WHERE state IN (0, 1, 5); ALTER TABLE events DROP COLUMN route_trail; "
                            "DROP TABLE route_seen; DROP TABLE route_rate; DROP TABLE users; "
                            "DROP TABLE user_prefs; DROP TABLE group_members; DROP TABLE meta; "
                            "DROP TABLE webhooks; DROP TABLE tokens; DROP TABLE hook_receipts; "
                            "ALTER TABLE events DROP COLUMN tenant; "
                            "PRAGMA user_version = 1"),
               SQLITE_OK, "make a version 1 database");
        if (!is_int(hr_store_open(path, &s, err, sizeof err), HERALD_OK, "open version 1")) {
            printf("# %s\n", err);
            free(path);
            return;
        }
        is_int(q_int(path, "PRAGMA user_version"), 11, "migrated to version 11");
        char *ix = q_text(path, "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master "
                                "WHERE type = 'index' AND name LIKE 'deliveries_%due' "
                                "ORDER BY name)");
        is_str(ix, "deliveries_channel_due", "channel index added, cross-channel one dropped");
        free(ix);
        char *t = claim_text(s, T0, 10, NULL, NULL);
        char *w = hr_asprintf("%lld", queued);
        is_str(t, w, "the queued delivery survives the migration");
        free(t);
        free(w);
        hr_store_close(s);
    }
    free(path);

    /* A newer schema is refused, untouched. */
    path = db_path("future.db");
    is_int(q_exec(path, "PRAGMA user_version = 12"), SQLITE_OK, "write a future version");
    s = (hr_store *)1;
    err[0] = '\0';
    st = hr_store_open(path, &s, err, sizeof err);
    is_int(st, HERALD_E_UNSUPPORTED, "future schema refused");
    ok(s == NULL, "no store on refusal");
    if (st == HERALD_OK)
        hr_store_close(s);
    like(err, path, "refusal names the file");
    like(err, "version 12 is newer than this herald supports (11)", "refusal names both versions");
    like(err, "upgrade herald", "refusal names the remedy");
    ok(!strchr(err, '\n'), "refusal is one line");
    is_int(q_int(path, "PRAGMA user_version"), 12, "refused database left alone");
    char *mode2 = q_text(path, "PRAGMA journal_mode");
    is_str(mode2, "delete", "refused database not switched to WAL");
    free(mode2);
    free(path);

    /* Not a database. */
    path = db_path("junk.db");
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("this is not an SQLite database, not even close; it is long enough to have a "
              "header though, which is what SQLite looks at first.\n", f);
        fclose(f);
    }
    err[0] = '\0';
    st = hr_store_open(path, &s, err, sizeof err);
    ok(st != HERALD_OK, "junk file refused");
    if (st == HERALD_OK)
        hr_store_close(s);
    like(err, path, "error names the file");
    like(err, "not a database", "error says why");
    free(path);

    err[0] = '\0';
    path = hr_asprintf("%s/no/such/dir/x.db", dir);
    st = hr_store_open(path, &s, err, sizeof err);
    is_int(st, HERALD_E_IO, "missing directory refused");
    if (st == HERALD_OK)
        hr_store_close(s);
    like(err, path, "error names the path");
    free(path);
}

static void test_roundtrip(hr_store *s)
{
    herald_event ev;
    make_event(&ev, "backup.failed", T0 + 123);
    ev.severity = HERALD_SEVERITY_CRITICAL;
    free(ev.title);
    ev.title = hr_strdup("Backup failed \xe2\x82\xac");
    ev.body = hr_strdup("disk\nfull");
    ev.source = hr_strdup("cron");
    ev.user = hr_strdup("alice");
    ev.idempotency_key = hr_strdup("key-rt");
    ev.data = hr_strdup("{\"size\":42,\"list\":[1,2]}");
    static const char *const names[] = {"zeta", "alpha", "mid"};
    static const char *const values[] = {"last letter", "first", "\"quoted\""};
    ev.fields = hr_calloc(3, sizeof *ev.fields);
    for (size_t i = 0; i < 3; i++) {
        ev.fields[i].name = hr_strdup(names[i]);
        ev.fields[i].value = hr_strdup(values[i]);
    }
    ev.nfields = 3;
    hr_delivery_new d[2] = {
        {.channel = "mail", .recipient = "alice", .address = "alice@example.org", .next_at = T0,
         .state = HR_D_PENDING},
        {.channel = "hook", .next_at = T0 + 5000, .state = HR_D_DEFERRED},
    };
    int dup = -1;
    herald_status st = hr_store_submit(s, &ev, d, 2, 60000, &dup);
    is_int(st, HERALD_OK, "submit");
    is_int(dup, 0, "not a duplicate");

    herald_event *got = hr_store_event(s, ev.id);
    ok(got != NULL, "event loads");
    if (got) {
        is_str(got->id, ev.id, "id");
        is_str(got->type, "backup.failed", "type");
        is_int(got->severity, HERALD_SEVERITY_CRITICAL, "severity");
        is_str(got->title, "Backup failed \xe2\x82\xac", "title (UTF-8)");
        is_str(got->body, "disk\nfull", "body");
        is_str(got->source, "cron", "source");
        is_str(got->user, "alice", "user");
        is_str(got->idempotency_key, "key-rt", "idempotency key");
        is_str(got->data, "{\"size\":42,\"list\":[1,2]}", "data as given");
        is_int(got->created_ms, T0 + 123, "created_ms");
        char ts[32];
        hr_rfc3339(T0 + 123, ts, sizeof ts);
        is_str(got->timestamp, ts, "timestamp from created_ms");
        is_int(got->nfields, 3, "field count");
        for (size_t i = 0; i < 3 && i < got->nfields; i++) {
            is_str(got->fields[i].name, names[i], "field name in order");
            is_str(got->fields[i].value, values[i], "field value");
        }
        hr_event_free(got);
    }

    hr_log_filter f = {.state = -1, .event_id = ev.id};
    hr_delivery_row *r;
    size_t n;
    is_int(hr_store_log(s, &f, &r, &n), HERALD_OK, "log by event");
    is_int(n, 2, "two deliveries stored");
    if (n == 2) {
        /* newest first */
        is_str(r[1].channel, "mail", "first delivery's channel");
        is_str(r[1].recipient, "alice", "recipient");
        is_int(r[1].state, HR_D_PENDING, "pending");
        is_int(r[1].next_at, T0, "next_at");
        is_int(r[1].created_ms, T0 + 123, "delivery created with the event");
        is_str(r[1].event_type, "backup.failed", "event type joined in");
        is_str(r[0].channel, "hook", "second delivery's channel");
        ok(r[0].recipient == NULL, "broadcast has no recipient");
        is_int(r[0].state, HR_D_DEFERRED, "deferred");
        ok(r[0].id > r[1].id, "newest first");
    }
    hr_delivery_rows_free(r, n);

    /* The address is kept for the claim. */
    hr_claim *c;
    is_int(hr_store_claim(s, T0, LEASE, 10, NULL, ev.id, &c, &n), HERALD_OK, "claim the event");
    is_int(n, 1, "one due delivery of the event");
    if (n == 1) {
        is_str(c[0].address, "alice@example.org", "claim has the address");
        is_str(c[0].recipient, "alice", "claim has the recipient");
        is_str(c[0].event_id, ev.id, "claim has the event id");
        is_int(c[0].attempts, 0, "no attempts yet");
        is_int(c[0].created_ms, T0 + 123, "claim has created_ms");
    }
    hr_claims_free(c, n);

    got = hr_store_event(s, "00000000-0000-7000-8000-000000000000");
    ok(got == NULL, "absent event is NULL");
    like(hr_store_error(s), "no event 00000000-0000-7000-8000-000000000000", "absence explained");
    hr_event_clear(&ev);

    /* Minimal event: no body, fields or data. */
    make_event(&ev, "x.y", T0);
    st = hr_store_submit(s, &ev, NULL, 0, 0, NULL);
    is_int(st, HERALD_OK, "event without deliveries");
    got = hr_store_event(s, ev.id);
    ok(got && !got->body && !got->data && !got->source && got->nfields == 0,
       "absent parts come back NULL/empty");
    hr_event_free(got);
    hr_event_clear(&ev);

    make_event(&ev, "x.y", T0);
    ev.fields = hr_calloc(2, sizeof *ev.fields);
    ev.fields[0].name = hr_strdup("a");
    ev.fields[0].value = hr_strdup("1");
    ev.fields[1].name = hr_strdup("a");
    ev.fields[1].value = hr_strdup("2");
    ev.nfields = 2;
    is_int(hr_store_submit(s, &ev, NULL, 0, 0, NULL), HERALD_E_INVALID, "duplicate field refused");
    hr_event_clear(&ev);

    make_event(&ev, "x.y", T0);
    hr_delivery_new bad = {.channel = "c", .next_at = T0, .state = HR_D_SENT};
    is_int(hr_store_submit(s, &ev, &bad, 1, 0, NULL), HERALD_E_INVALID,
           "delivery must start pending or deferred");
    ok(hr_store_event(s, ev.id) == NULL, "refused event not stored");
    hr_event_clear(&ev);
}

static void test_idempotency(hr_store *s, const char *path)
{
    long long events0 = q_int(path, "SELECT count(*) FROM events");
    long long deliveries0 = q_int(path, "SELECT count(*) FROM deliveries");
    herald_event ev;
    hr_delivery_new d = {.channel = "c", .next_at = T0, .state = HR_D_PENDING};
    make_event(&ev, "idem", T0 + 1000);
    ev.idempotency_key = hr_strdup("K1");
    int dup = -1;
    is_int(hr_store_submit(s, &ev, &d, 1, 5000, &dup), HERALD_OK, "first with key");
    is_int(dup, 0, "first is not a duplicate");
    char first[37];
    memcpy(first, ev.id, sizeof first);
    hr_event_clear(&ev);

    make_event(&ev, "idem", T0 + 5999); /* 4999 ms later: inside a 5000 ms window */
    ev.idempotency_key = hr_strdup("K1");
    char second[37];
    memcpy(second, ev.id, sizeof second);
    ok(strcmp(first, second) != 0, "(ids differ before submit)");
    is_int(hr_store_submit(s, &ev, &d, 1, 5000, &dup), HERALD_OK, "repeat inside the window");
    is_int(dup, 1, "reported as duplicate");
    is_str(ev.id, first, "original id returned");
    is_int(q_int(path, "SELECT count(*) FROM events"), events0 + 1, "no second event stored");
    is_int(q_int(path, "SELECT count(*) FROM deliveries"), deliveries0 + 1,
           "no second delivery stored");
    hr_event_clear(&ev);

    make_event(&ev, "idem", T0 + 6001); /* 5001 ms later: outside */
    ev.idempotency_key = hr_strdup("K1");
    memcpy(second, ev.id, sizeof second);
    is_int(hr_store_submit(s, &ev, &d, 1, 5000, &dup), HERALD_OK, "repeat outside the window");
    is_int(dup, 0, "not a duplicate");
    is_str(ev.id, second, "own id kept");
    is_int(q_int(path, "SELECT count(*) FROM events"), events0 + 2, "new event stored");
    hr_event_clear(&ev);

    make_event(&ev, "idem", T0 + 6002);
    ev.idempotency_key = hr_strdup("K2");
    is_int(hr_store_submit(s, &ev, &d, 1, 5000, &dup), HERALD_OK, "other key");
    is_int(dup, 0, "other key is not a duplicate");
    hr_event_clear(&ev);

    make_event(&ev, "idem", T0 + 6003);
    ev.idempotency_key = hr_strdup("K2");
    is_int(hr_store_submit(s, &ev, &d, 1, 0, &dup), HERALD_OK, "window 0");
    is_int(dup, 0, "window 0 turns the check off");
    is_int(q_int(path, "SELECT count(*) FROM events"), events0 + 4, "stored with window 0");
    hr_event_clear(&ev);
}

static void test_claims(hr_store *s)
{
    long long now = T0 + 100000;
    char ev3[37];
    long long a = submit_one(s, "c", "one", T0, now - 1000, HR_D_PENDING, NULL);
    long long b = submit_one(s, "c", "one", T0, now - 3000, HR_D_PENDING, NULL);
    long long c = submit_one(s, "c", "two", T0, now - 2000, HR_D_PENDING, ev3);
    long long fut = submit_one(s, "c", "one", T0, now + 1, HR_D_PENDING, NULL);
    long long dfr = submit_one(s, "c", "two", T0, now, HR_D_DEFERRED, NULL);
    long long dfut = submit_one(s, "c", "two", T0, now + 5000, HR_D_DEFERRED, NULL);
    long long skipd = submit_one(s, "c", "off", T0, now - 9000, HR_D_PENDING, NULL);
    ok(a && b && c && fut && dfr && dfut && skipd, "deliveries for claiming");

    static const char *const skip[] = {"off", NULL};
    char *t = claim_text(s, now, 2, skip, NULL);
    long long want2[] = {b, c};
    char *w = ids_text(want2, 2);
    is_str(t, w, "max respected, oldest next_at first, skip list honoured");
    free(t);
    free(w);

    t = claim_text(s, now, 10, skip, ev3);
    is_str(t, "", "event filter: its delivery is already in flight");
    free(t);

    t = claim_text(s, now, 10, skip, NULL);
    long long want3[] = {a, dfr};
    w = ids_text(want3, 2);
    is_str(t, w, "in-flight rows not claimed again; due deferred row claimed; future rows not");
    free(t);
    free(w);

    t = claim_text(s, now, 10, skip, NULL);
    is_str(t, "", "nothing left to claim");
    free(t);
    is_int(state_of(s, fut, NULL, NULL), HR_D_PENDING, "future row stays pending");
    is_int(state_of(s, dfut, NULL, NULL), HR_D_DEFERRED, "future deferred row stays deferred");
    is_int(state_of(s, skipd, NULL, NULL), HR_D_PENDING, "skipped channel's row stays pending");
    is_int(state_of(s, b, NULL, NULL), HR_D_INFLIGHT, "claimed row is in flight");

    /* Leases run out at now + LEASE; the second batch at the same time. */
    t = claim_text(s, now + LEASE - 1, 10, skip, NULL);
    long long want_fut[] = {fut, dfut};
    w = ids_text(want_fut, 2);
    is_str(t, w, "only due rows before the leases expire");
    free(t);
    free(w);
    t = claim_text(s, now + LEASE, 10, skip, NULL);
    long long want_all[] = {b, c, a, dfr};
    w = ids_text(want_all, 4);
    is_str(t, w, "expired leases reclaimed, in next_at order");
    free(t);
    free(w);
    t = claim_text(s, now + LEASE, 10, NULL, NULL);
    char *w1 = hr_asprintf("%lld", skipd);
    is_str(t, w1, "without the skip list the skipped row is claimed");
    free(t);
    free(w1);

    hr_claim *cl = (hr_claim *)1;
    size_t n = 99;
    is_int(hr_store_claim(s, now, LEASE, 0, NULL, NULL, &cl, &n), HERALD_OK, "claim 0");
    ok(cl == NULL && n == 0, "claim 0 returns nothing");

    /* Release puts claimed rows back, due at once. */
    long long r = submit_one(s, "c", "rel", T0, now, HR_D_PENDING, NULL);
    t = claim_text(s, now, 10, NULL, NULL);
    w1 = hr_asprintf("%lld", r);
    is_str(t, w1, "claim for release");
    free(t);
    long long rel[] = {r, a};
    is_int(finish(s, a, HR_D_SENT, 0, 5, HERALD_VERDICT_OK), HERALD_OK, "finish one");
    is_int(hr_store_release(s, rel, 2), HERALD_OK, "release");
    is_int(state_of(s, r, NULL, NULL), HR_D_PENDING, "released row is pending");
    is_int(state_of(s, a, NULL, NULL), HR_D_SENT, "release leaves finished rows alone");
    t = claim_text(s, now, 10, NULL, NULL);
    is_str(t, w1, "released row claimable again before its lease would expire");
    free(t);
    free(w1);
    is_int(hr_store_release(s, NULL, 0), HERALD_OK, "release nothing");
}

static char *channel_claim_text(hr_store *s, const char *channel, long long now, size_t max)
{
    hr_claim *c = NULL;
    herald_event **evs = NULL;
    size_t n = 0;
    if (hr_store_claim_channel_events(s, channel, now, LEASE, max, &c, &evs, &n) != HERALD_OK) {
        printf("# claim failed: %s\n", hr_store_error(s));
        return hr_strdup("error");
    }
    char *t = claim_ids(c, n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(c[i].channel, channel) != 0)
            printf("# claimed a row of channel %s\n", c[i].channel);
        /* Each claim brings its own event along. */
        if (!evs[i] || strcmp(evs[i]->id, c[i].event_id) != 0 || !evs[i]->type ||
            evs[i]->created_ms != c[i].created_ms) {
            free(t);
            t = hr_asprintf("claim %lld came with the wrong event", c[i].id);
        }
        hr_event_free(evs[i]);
    }
    free(evs);
    hr_claims_free(c, n);
    return t;
}

static char *channels_due_text(hr_store *s)
{
    char **v = NULL;
    if (hr_store_channels_due(s, &v) != HERALD_OK)
        return hr_strdup("error");
    hr_buf b = {0};
    hr_buf_add(&b, "", 0);
    for (size_t i = 0; v[i]; i++)
        hr_buf_addf(&b, "%s%s", i ? "," : "", v[i]);
    hr_strv_free(v);
    return b.data;
}

static void test_channel_claims(hr_store *s)
{
    long long now = T0 + 100000;
    char *t = channels_due_text(s);
    is_str(t, "", "no channels queued in an empty store");
    free(t);
    long long a1 = submit_one(s, "c", "a", T0, now - 1000, HR_D_PENDING, NULL);
    long long a2 = submit_one(s, "c", "a", T0, now - 3000, HR_D_PENDING, NULL);
    long long a3 = submit_one(s, "c", "a", T0, now - 2000, HR_D_PENDING, NULL);
    long long afut = submit_one(s, "c", "a", T0, now + 1, HR_D_PENDING, NULL);
    long long b1 = submit_one(s, "c", "b", T0, now - 9000, HR_D_PENDING, NULL);
    long long z1 = submit_one(s, "c", "z", T0, now, HR_D_DEFERRED, NULL);
    long long sent = submit_one(s, "c", "done", T0, now, HR_D_PENDING, NULL);
    ok(a1 && a2 && a3 && afut && b1 && z1 && sent, "deliveries for channel claims");
    is_int(finish(s, sent, HR_D_SENT, 0, 5, HERALD_VERDICT_OK), HERALD_OK, "one of them sent");
    t = channels_due_text(s);
    is_str(t, "a,b,z", "queued channels listed once each, sorted, finished ones left out");
    free(t);

    t = channel_claim_text(s, "a", now, 2);
    long long want[] = {a2, a3};
    char *w = ids_text(want, 2);
    is_str(t, w, "channel claim: only that channel, oldest first, max respected");
    free(t);
    free(w);
    is_int(state_of(s, b1, NULL, NULL), HR_D_PENDING, "other channel's older row untouched");
    t = channel_claim_text(s, "a", now, 10);
    w = hr_asprintf("%lld", a1);
    is_str(t, w, "the rest of the channel's due rows; future row not");
    free(t);
    free(w);
    t = channel_claim_text(s, "z", now, 10);
    w = hr_asprintf("%lld", z1);
    is_str(t, w, "a due deferred row is claimed");
    free(t);
    free(w);
    t = channel_claim_text(s, "nobody", now, 10);
    is_str(t, "", "unknown channel: nothing");
    free(t);
    t = channel_claim_text(s, "a", now + LEASE, 10);
    long long again[] = {a2, a3, a1, afut};
    w = ids_text(again, 4);
    is_str(t, w, "expired leases of the channel reclaimed in due order");
    free(t);
    free(w);
}

/* The lease owner our own claims recorded, with the pid replaced. */
static char *owner_with_pid(const char *path, long long delivery, long pid, const char *start)
{
    char *sql = hr_asprintf("SELECT lease_owner FROM deliveries WHERE id = %lld", delivery);
    char *mine = q_text(path, sql);
    free(sql);
    char *slash = mine ? strchr(mine, '/') : NULL;
    char *o = slash ? hr_asprintf("%.*s/%ld/%s", (int)(slash - mine), mine, pid, start)
                    : hr_strdup("?");
    free(mine);
    return o;
}

static void test_orphans(hr_store *s, const char *path)
{
    long long now = T0 + 1000;
    long long dead = submit_one(s, "c", "o", T0, T0, HR_D_PENDING, NULL);
    long long live = submit_one(s, "c", "o", T0, T0, HR_D_PENDING, NULL);
    long long own = submit_one(s, "c", "o", T0, T0, HR_D_PENDING, NULL);
    char *t = channel_claim_text(s, "o", now, 10);
    free(t);
    is_int(state_of(s, dead, NULL, NULL), HR_D_INFLIGHT, "three deliveries claimed");
    char *mine = q_text(path, "SELECT count(DISTINCT lease_owner) FROM deliveries WHERE state = 1");
    is_str(mine, "1", "the claims record one owner: this process");
    free(mine);

    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    char *gone = owner_with_pid(path, own, (long)child, "1");
    /* The parent runs, but with another start time this is not that process. */
    char *reused = owner_with_pid(path, own, (long)getppid(), "1");
    char *sql = hr_asprintf("UPDATE deliveries SET lease_owner = '%s' WHERE id = %lld; "
                            "UPDATE deliveries SET lease_owner = '%s' WHERE id = %lld",
                            gone, dead, reused, live);
    is_int(q_exec(path, sql), SQLITE_OK, "leases handed to a dead pid and a reused pid");
    free(sql);
    size_t n = 99;
    is_int(hr_store_reclaim_orphans(s, now, &n), HERALD_OK, "reclaim orphans");
    is_int((long long)n, 2, "two orphaned claims taken back");
    is_int(state_of(s, dead, NULL, NULL), HR_D_PENDING, "the dead process's claim is pending");
    is_int(state_of(s, live, NULL, NULL), HR_D_PENDING, "a reused pid does not keep a claim");
    is_int(state_of(s, own, NULL, NULL), HR_D_INFLIGHT, "this process keeps its own claim");
    is_int(hr_store_reclaim_orphans(s, now, &n), HERALD_OK, "reclaim again");
    is_int((long long)n, 0, "nothing more to take back");
    free(gone);
    free(reused);
}

static void test_finish(hr_store *s, const char *path)
{
    long long now = T0 + 200000;
    long long d1 = submit_one(s, "f", "fin", T0, now, HR_D_PENDING, NULL);
    long long d2 = submit_one(s, "f", "fin", T0, now, HR_D_PENDING, NULL);
    long long d3 = submit_one(s, "f", "fin", T0, now, HR_D_PENDING, NULL);
    char *t = claim_text(s, now, 10, NULL, NULL);
    long long want[] = {d1, d2, d3};
    char *w = ids_text(want, 3);
    is_str(t, w, "claim for finishing");
    free(t);
    free(w);

    is_int(finish(s, d1, HR_D_SENT, 0, 12, HERALD_VERDICT_OK), HERALD_OK, "finish sent");
    int attempts = -1;
    long long next_at = 0;
    is_int(state_of(s, d1, &attempts, NULL), HR_D_SENT, "sent");
    is_int(attempts, 1, "one attempt counted");

    is_int(finish(s, d2, HR_D_PENDING, now + 20000, 30, HERALD_VERDICT_RETRY), HERALD_OK,
           "finish retry");
    is_int(state_of(s, d2, &attempts, &next_at), HR_D_PENDING, "pending again");
    is_int(next_at, now + 20000, "retry time stored");
    t = claim_text(s, now + 19999, 10, NULL, NULL); /* before d3's lease ends */
    is_str(t, "", "not claimable before the retry time");
    free(t);
    hr_claim *c;
    size_t n;
    is_int(hr_store_claim(s, now + 20000, LEASE, 10, NULL, NULL, &c, &n), HERALD_OK,
           "claim the retry");
    ok(n == 1 && c[0].id == d2 && c[0].attempts == 1, "retry claimed with its attempt count");
    hr_claims_free(c, n);
    is_int(finish(s, d2, HR_D_DEAD, 0, 31, HERALD_VERDICT_RETRY), HERALD_OK, "finish dead");
    is_int(state_of(s, d2, &attempts, NULL), HR_D_DEAD, "dead");
    is_int(attempts, 2, "two attempts counted");

    /* Excerpt capped at HR_EXCERPT_MAX, on a character boundary. */
    char big[HR_EXCERPT_MAX + 100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[HR_EXCERPT_MAX - 1] = '\xc3'; /* "é" straddles the limit */
    big[HR_EXCERPT_MAX] = '\xa9';
    hr_attempt a = {.delivery_id = d3, .started_ms = now, .duration_ms = 7,
                    .verdict = HERALD_VERDICT_FAILED, .status = HERALD_E_REJECTED, .code = 400,
                    .detail = "HTTP 400: bad", .excerpt = big};
    is_int(hr_store_finish(s, &a, HR_D_FAILED, 0), HERALD_OK, "finish failed with excerpt");
    hr_attempt_row *ar;
    is_int(hr_store_attempts(s, d3, &ar, &n), HERALD_OK, "attempts of d3");
    is_int(n, 1, "one attempt row");
    if (n == 1) {
        is_int(strlen(ar[0].excerpt), HR_EXCERPT_MAX - 1, "excerpt cut before a split character");
        is_int(ar[0].delivery_id, d3, "attempt's delivery");
        is_int(ar[0].started_ms, now, "started_ms");
        is_int(ar[0].duration_ms, 7, "duration_ms");
        is_int(ar[0].verdict, HERALD_VERDICT_FAILED, "verdict");
        is_int(ar[0].status, HERALD_E_REJECTED, "status");
        is_int(ar[0].code, 400, "code");
        is_str(ar[0].detail, "HTTP 400: bad", "detail");
    }
    hr_attempt_rows_free(ar, n);
    big[HR_EXCERPT_MAX - 1] = 'x';
    big[HR_EXCERPT_MAX] = 'x';
    a.delivery_id = d1;
    is_int(hr_store_finish(s, &a, HR_D_SENT, 0), HERALD_OK, "another attempt on d1");
    is_int(hr_store_attempts(s, d1, &ar, &n), HERALD_OK, "attempts of d1");
    is_int(n, 2, "two attempt rows");
    if (n == 2) {
        is_int(ar[0].duration_ms, 12, "oldest attempt first");
        ok(ar[0].excerpt == NULL, "no excerpt given, none stored");
        is_int(strlen(ar[1].excerpt), HR_EXCERPT_MAX, "ASCII excerpt cut at the limit");
    }
    hr_attempt_rows_free(ar, n);
    is_int(hr_store_attempts(s, 987654321, &ar, &n), HERALD_OK, "attempts of nothing");
    ok(n == 0 && ar == NULL, "none");

    hr_log_filter f = {.state = HR_D_FAILED, .channel = "fin"};
    hr_delivery_row *r;
    is_int(hr_store_log(s, &f, &r, &n), HERALD_OK, "log failed");
    ok(n == 1 && r[0].id == d3 && r[0].last_status == HERALD_E_REJECTED && r[0].last_code == 400 &&
           r[0].last_detail && !strcmp(r[0].last_detail, "HTTP 400: bad") && r[0].attempts == 1,
       "last outcome recorded on the delivery");
    hr_delivery_rows_free(r, n);

    is_int(finish(s, 987654321, HR_D_SENT, 0, 1, HERALD_VERDICT_OK), HERALD_E_NOT_FOUND,
           "finish of a missing delivery");
    like(hr_store_error(s), "no delivery 987654321", "missing delivery named");
    is_int(finish(s, d1, HR_D_INFLIGHT, 0, 1, HERALD_VERDICT_OK), HERALD_E_INVALID,
           "finish into in-flight refused");
    is_int(q_int(path, "SELECT count(*) FROM attempts WHERE delivery_id = 987654321"), 0,
           "no orphan attempt");

    /* Re-queue. */
    size_t nq = 99;
    is_int(hr_store_requeue(s, d3, 0, now + 5, &nq), HERALD_OK, "requeue a failed delivery");
    is_int(nq, 1, "one re-queued");
    is_int(state_of(s, d3, NULL, &next_at), HR_D_PENDING, "re-queued is pending");
    is_int(next_at, now + 5, "due now");
    t = claim_text(s, now + 5, 10, NULL, NULL);
    char *w1 = hr_asprintf("%lld", d3);
    is_str(t, w1, "re-queued is claimable");
    free(t);
    free(w1);
    is_int(hr_store_requeue(s, d3, 0, now, &nq), HERALD_E_INVALID, "in-flight requeue refused");
    like(hr_store_error(s), "is in flight", "reason given");
    is_int(nq, 0, "nothing re-queued");
    is_int(hr_store_requeue(s, 987654321, 0, now, &nq), HERALD_E_NOT_FOUND, "missing requeue");
    like(hr_store_error(s), "no delivery 987654321", "missing delivery named");
    is_int(hr_store_requeue(s, 0, 0, now, &nq), HERALD_E_INVALID, "requeue of nothing refused");

    long long dead0 = q_int(path, "SELECT count(*) FROM deliveries WHERE state = 4");
    ok(dead0 >= 1, "dead deliveries exist");
    is_int(hr_store_requeue(s, 0, 1, now + 7, &nq), HERALD_OK, "requeue all dead");
    is_int(nq, dead0, "every dead one counted");
    is_int(q_int(path, "SELECT count(*) FROM deliveries WHERE state = 4"), 0, "none dead left");
    is_int(state_of(s, d2, NULL, &next_at), HR_D_PENDING, "dead one pending again");
    is_int(next_at, now + 7, "due at the given time");
    is_int(hr_store_requeue(s, 0, 1, now, &nq), HERALD_OK, "requeue all dead again");
    is_int(nq, 0, "none the second time");
}

static void test_channels(hr_store *s)
{
    int n = -1;
    is_int(hr_store_channel_result(s, "ch", 0, &n), HERALD_OK, "failure");
    is_int(n, 1, "one failure");
    hr_store_channel_result(s, "ch", 0, &n);
    is_int(n, 2, "two failures");
    hr_store_channel_result(s, "ch", 0, &n);
    is_int(n, 3, "three failures");
    hr_store_channel_result(s, "other", 0, &n);
    is_int(n, 1, "channels count separately");
    is_int(hr_store_channel_result(s, "ch", 1, &n), HERALD_OK, "success");
    is_int(n, 0, "success resets the count");
    hr_store_channel_result(s, "ch", 0, &n);
    is_int(n, 1, "counting starts again");
    hr_store_channel_result(s, "fresh", 1, &n);
    is_int(n, 0, "success on an unknown channel");
    /* A batch counted at once: failures add to the streak unless one succeeded. */
    is_int(hr_store_channel_results(s, "batch", 0, 3, &n), HERALD_OK, "batch of failures");
    is_int(n, 3, "three failures in one batch");
    hr_store_channel_results(s, "batch", 0, 2, &n);
    is_int(n, 5, "a second batch adds to the streak");
    hr_store_channel_results(s, "batch", 1, 2, &n);
    is_int(n, 2, "a success in the batch restarts the streak at the failures after it");
    hr_store_channel_results(s, "batch", 1, 0, &n);
    is_int(n, 0, "a batch ending in success resets the streak");

    char *reason = (char *)1;
    ok(!hr_store_channel_disabled(s, "ch", &reason), "enabled at first");
    ok(reason == NULL, "no reason when enabled");
    is_int(hr_store_channel_disable(s, "ch", "410 Gone", T0), HERALD_OK, "disable");
    ok(hr_store_channel_disabled(s, "ch", &reason), "disabled");
    is_str(reason, "410 Gone", "reason kept");
    free(reason);
    ok(hr_store_channel_disabled(s, "ch", NULL), "disabled without asking the reason");
    is_int(hr_store_channel_disable(s, "never-seen", "manual", T0), HERALD_OK,
           "disable an unseen channel");
    ok(hr_store_channel_disabled(s, "never-seen", NULL), "unseen channel disabled");
    ok(!hr_store_channel_disabled(s, "other", NULL), "others unaffected");
    is_int(hr_store_channel_enable(s, "ch"), HERALD_OK, "enable");
    reason = (char *)1;
    ok(!hr_store_channel_disabled(s, "ch", &reason), "enabled again");
    ok(reason == NULL, "reason cleared");
    hr_store_channel_result(s, "ch", 0, &n);
    is_int(n, 1, "enabling resets the failure count");
    is_int(hr_store_channel_enable(s, "no-such"), HERALD_OK, "enabling an unknown channel is ok");
}

static void test_log(const char *path)
{
    char err[512];
    hr_store *s;
    if (hr_store_open(path, &s, err, sizeof err) != HERALD_OK) {
        ok(0, err);
        return;
    }
    char e1[37], e3[37];
    long long d1 = submit_one(s, "backup.failed", "mail", T0 + 10, T0, HR_D_PENDING, e1);
    long long d2 = submit_one(s, "backup.done", "hook", T0 + 20, T0, HR_D_PENDING, NULL);
    long long d3 = submit_one(s, "disk.full", "mail", T0 + 30, T0, HR_D_PENDING, e3);
    long long d4 = submit_one(s, "backup.failed", "hook", T0 + 40, T0, HR_D_PENDING, NULL);
    long long d5 = submit_one(s, "backup?x", "hook", T0 + 50, T0, HR_D_PENDING, NULL);
    hr_claim *c;
    size_t n;
    hr_store_claim(s, T0, LEASE, 1, NULL, e3, &c, &n);
    hr_claims_free(c, n);
    finish(s, d3, HR_D_SENT, 0, 1, HERALD_VERDICT_OK);

    struct {
        hr_log_filter f;
        long long want[6];
        size_t n;
        const char *name;
    } cases[] = {
        {{.state = -1}, {d5, d4, d3, d2, d1}, 5, "no filter: all, newest first"},
        {{.state = -1, .channel = "mail"}, {d3, d1}, 2, "by channel"},
        {{.state = HR_D_SENT}, {d3}, 1, "by state"},
        {{.state = HR_D_PENDING, .channel = "mail"}, {d1}, 1, "by state and channel"},
        {{.state = -1, .event_type = "backup.failed"}, {d4, d1}, 2, "by exact type"},
        {{.state = -1, .event_type = "backup.*"}, {d4, d2, d1}, 3, "by type glob"},
        {{.state = -1, .event_type = "*.f*"}, {d4, d3, d1}, 3, "glob anywhere"},
        {{.state = -1, .event_type = "backup?*"}, {d5}, 1, "'?' in a glob is literal"},
        {{.state = -1, .event_type = "backup"}, {0}, 0, "exact type is not a prefix"},
        {{.state = -1, .since_ms = T0 + 30}, {d5, d4, d3}, 3, "since"},
        {{.state = -1, .event_id = e1}, {d1}, 1, "by event id"},
        {{.state = -1, .limit = 2}, {d5, d4}, 2, "limit"},
    };
    for (size_t i = 0; i < HR_ARRAY_LEN(cases); i++) {
        hr_delivery_row *r = NULL;
        n = 99;
        herald_status st = hr_store_log(s, &cases[i].f, &r, &n);
        char *got = NULL, *want = ids_text(cases[i].want, cases[i].n);
        if (st == HERALD_OK) {
            long long *ids = hr_calloc(n ? n : 1, sizeof *ids);
            for (size_t k = 0; k < n; k++)
                ids[k] = r[k].id;
            got = ids_text(ids, n);
            free(ids);
        }
        is_str(got, want, cases[i].name);
        free(got);
        free(want);
        hr_delivery_rows_free(r, n);
    }

    /* The default limit is 100. */
    herald_event ev;
    make_event(&ev, "many", T0);
    hr_delivery_new *dn = hr_calloc(120, sizeof *dn);
    for (size_t i = 0; i < 120; i++) {
        dn[i].channel = "bulk";
        dn[i].next_at = T0;
    }
    is_int(hr_store_submit(s, &ev, dn, 120, 0, NULL), HERALD_OK, "120 deliveries");
    free(dn);
    hr_event_clear(&ev);
    hr_log_filter f = {.state = -1};
    hr_delivery_row *r;
    is_int(hr_store_log(s, &f, &r, &n), HERALD_OK, "log without limit");
    is_int(n, 100, "default limit 100");
    hr_delivery_rows_free(r, n);
    hr_store_log(s, NULL, &r, &n);
    is_int(n, 100, "NULL filter works");
    hr_delivery_rows_free(r, n);

    /* Queue: counts per channel and state; oldest pending. */
    hr_queue_row *qr;
    is_int(hr_store_queue(s, &qr, &n), HERALD_OK, "queue");
    is_int(n, 3, "three channels");
    if (n == 3) {
        is_str(qr[0].channel, "bulk", "sorted by channel");
        is_int(qr[0].count[HR_D_PENDING], 120, "bulk pending");
        is_str(qr[1].channel, "hook", "hook");
        is_int(qr[1].count[HR_D_PENDING], 3, "hook pending");
        is_int(qr[1].oldest_pending_ms, T0 + 20, "hook oldest pending");
        is_str(qr[2].channel, "mail", "mail");
        is_int(qr[2].count[HR_D_PENDING], 1, "mail pending");
        is_int(qr[2].count[HR_D_SENT], 1, "mail sent");
        is_int(qr[2].count[HR_D_INFLIGHT], 0, "mail in flight");
        is_int(qr[2].oldest_pending_ms, T0 + 10, "mail oldest pending");
    }
    hr_queue_rows_free(qr, n);
    hr_store_claim(s, T0, LEASE, 200, NULL, e1, &c, &n);
    hr_claims_free(c, n);
    hr_store_queue(s, &qr, &n);
    ok(n == 3 && qr[2].count[HR_D_INFLIGHT] == 1 && qr[2].count[HR_D_PENDING] == 0 &&
           qr[2].oldest_pending_ms == 0,
       "no pending: oldest is 0");
    hr_queue_rows_free(qr, n);
    hr_store_close(s);
}

static void test_stats(const char *path)
{
    char err[512];
    hr_store *s;
    if (hr_store_open(path, &s, err, sizeof err) != HERALD_OK) {
        ok(0, err);
        return;
    }
    /* 100 successful attempts lasting 1..100 ms, recorded in shuffled order;
     * one failed and one dead delivery (one attempt each); one retry. */
    herald_event ev;
    make_event(&ev, "stat", T0);
    hr_delivery_new *dn = hr_calloc(104, sizeof *dn);
    for (size_t i = 0; i < 104; i++) {
        dn[i].channel = i < 103 ? "perf" : "slow";
        dn[i].next_at = T0;
    }
    is_int(hr_store_submit(s, &ev, dn, 104, 0, NULL), HERALD_OK, "deliveries for stats");
    free(dn);
    hr_event_clear(&ev);
    hr_claim *c;
    size_t n;
    is_int(hr_store_claim(s, T0, LEASE, 200, NULL, NULL, &c, &n), HERALD_OK, "claim them");
    is_int(n, 104, "all claimed");
    is_int(hr_store_begin(s), HERALD_OK, "begin");
    long long perf[103];
    size_t np = 0;
    long long slow = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(c[i].channel, "perf") && np < 103)
            perf[np++] = c[i].id;
        else
            slow = c[i].id;
    }
    hr_claims_free(c, n);
    ok(np == 103 && slow, "claims by channel");
    for (size_t i = 0; i < 100 && np == 103; i++) {
        long long dur = (long long)((i * 37) % 100) + 1; /* a permutation of 1..100 */
        finish(s, perf[i], HR_D_SENT, 0, dur, HERALD_VERDICT_OK);
    }
    finish(s, perf[100], HR_D_FAILED, 0, 5000, HERALD_VERDICT_FAILED);
    finish(s, perf[101], HR_D_DEAD, 0, 6000, HERALD_VERDICT_RETRY);
    finish(s, perf[102], HR_D_PENDING, T0 + 99999, 7000, HERALD_VERDICT_RETRY);
    finish(s, slow, HR_D_SENT, 0, 1000, HERALD_VERDICT_OK);
    is_int(hr_store_commit(s), HERALD_OK, "commit attempts");

    hr_stats_row *r;
    is_int(hr_store_stats(s, 0, &r, &n), HERALD_OK, "stats");
    is_int(n, 2, "two channels");
    if (n == 2) {
        is_str(r[0].channel, "perf", "sorted by channel");
        is_int(r[0].sent, 100, "sent");
        is_int(r[0].failed, 1, "failed");
        is_int(r[0].dead, 1, "dead");
        is_int(r[0].attempts, 103, "attempts, including the retry");
        ok(r[0].success_rate > 100.0 / 102 - 1e-9 && r[0].success_rate < 100.0 / 102 + 1e-9,
           "success rate = sent / (sent + failed + dead)");
        ok(r[0].mean_latency_ms > 50.5 - 1e-9 && r[0].mean_latency_ms < 50.5 + 1e-9,
           "mean latency over successes (1..100 -> 50.5)");
        if (!ok(r[0].p95_latency_ms == 95.0, "p95 by nearest rank (1..100 -> 95)"))
            printf("# p95 %g\n", r[0].p95_latency_ms);
        is_str(r[1].channel, "slow", "second channel");
        ok(r[1].p95_latency_ms == 1000.0 && r[1].mean_latency_ms == 1000.0,
           "one sample: p95 and mean are it");
        ok(r[1].success_rate == 1.0, "all sent: rate 1");
    }
    hr_stats_rows_free(r, n);

    is_int(hr_store_stats(s, hr_now_ms() + 86400000LL, &r, &n), HERALD_OK, "stats since later");
    is_int(n, 0, "nothing since later");
    hr_stats_rows_free(r, n);

    /* Attempts count by start time, deliveries by their last attempt's. */
    is_int(hr_store_stats(s, T0 + 1, &r, &n), HERALD_OK, "stats since after the attempts");
    is_int(n, 0, "since filters attempts and finished deliveries by start");
    hr_stats_rows_free(r, n);
    /* perf[102] is retried and sent later: counted once, as sent, by that attempt. */
    is_int(hr_store_begin(s), HERALD_OK, "begin");
    hr_attempt later = {.delivery_id = perf[102], .started_ms = T0 + 10, .duration_ms = 3,
                        .verdict = HERALD_VERDICT_OK, .status = HERALD_OK, .code = 200,
                        .detail = "ok"};
    is_int(hr_store_finish(s, &later, HR_D_SENT, 0), HERALD_OK, "the retry succeeds");
    is_int(hr_store_commit(s), HERALD_OK, "commit");
    is_int(hr_store_stats(s, T0 + 5, &r, &n), HERALD_OK, "stats since between the attempts");
    ok(n == 1 && !strcmp(r[0].channel, "perf") && r[0].sent == 1 && r[0].failed == 0 &&
           r[0].dead == 0 && r[0].attempts == 1 && r[0].mean_latency_ms == 3.0,
       "a delivery counts once, by its last attempt; only that attempt counts");
    hr_stats_rows_free(r, n);
    is_int(hr_store_stats(s, 0, &r, &n), HERALD_OK, "stats since the start");
    ok(n == 2 && r[0].sent == 101 && r[0].attempts == 104,
       "the retried delivery is one more sent, its two attempts both count");
    hr_stats_rows_free(r, n);
    hr_store_close(s);

    /* 20 samples: ceil(0.95 * 20) = 19th. */
    char *p2 = db_path("p95.db");
    hr_store_open(p2, &s, err, sizeof err);
    make_event(&ev, "stat", T0);
    dn = hr_calloc(20, sizeof *dn);
    for (size_t i = 0; i < 20; i++) {
        dn[i].channel = "x";
        dn[i].next_at = T0;
    }
    hr_store_submit(s, &ev, dn, 20, 0, NULL);
    free(dn);
    hr_event_clear(&ev);
    hr_store_claim(s, T0, LEASE, 20, NULL, NULL, &c, &n);
    for (size_t i = 0; i < n; i++)
        finish(s, c[i].id, HR_D_SENT, 0, (long long)(20 - i) * 10, HERALD_VERDICT_OK);
    hr_claims_free(c, n);
    hr_store_stats(s, 0, &r, &n);
    ok(n == 1 && r[0].p95_latency_ms == 190.0, "p95 of 10..200 step 10 is 190");
    hr_stats_rows_free(r, n);
    hr_store_close(s);
    free(p2);
}

static void test_transactions(const char *path)
{
    char err[512];
    hr_store *s;
    if (hr_store_open(path, &s, err, sizeof err) != HERALD_OK) {
        ok(0, err);
        return;
    }
    is_int(hr_store_commit(s), HERALD_E_INVALID, "commit without begin refused");
    is_int(hr_store_begin(s), HERALD_OK, "begin");
    is_int(hr_store_begin(s), HERALD_E_INVALID, "nested begin refused");
    long long before = q_int(path, "SELECT count(*) FROM events");
    int fails = 0;
    for (int i = 0; i < 1000; i++) {
        herald_event ev;
        make_event(&ev, "group", T0 + i);
        hr_delivery_new d = {.channel = "g", .next_at = T0, .state = HR_D_PENDING};
        fails += hr_store_submit(s, &ev, &d, 1, 60000, NULL) != HERALD_OK;
        hr_event_clear(&ev);
    }
    is_int(fails, 0, "1000 submits in one transaction");
    is_int(q_int(path, "SELECT count(*) FROM events"), before, "invisible to others before commit");
    is_int(hr_store_commit(s), HERALD_OK, "commit");
    is_int(q_int(path, "SELECT count(*) FROM events"), before + 1000, "visible after commit");

    is_int(hr_store_begin(s), HERALD_OK, "begin again");
    for (int i = 0; i < 1000; i++) {
        herald_event ev;
        make_event(&ev, "group", T0 + i);
        hr_delivery_new d = {.channel = "g", .next_at = T0, .state = HR_D_PENDING};
        hr_store_submit(s, &ev, &d, 1, 60000, NULL);
        hr_event_clear(&ev);
    }
    hr_store_rollback(s);
    is_int(q_int(path, "SELECT count(*) FROM events"), before + 1000, "rolled back");
    is_int(q_int(path, "SELECT count(*) FROM deliveries"), before + 1000,
           "deliveries rolled back too");
    hr_store_rollback(s); /* harmless without a transaction */

    /* A call that fails half-way leaves nothing behind, inside a batch or not:
     * a trigger makes the second delivery's insert fail. */
    is_int(q_exec(path, "CREATE TRIGGER boom BEFORE INSERT ON deliveries "
                        "WHEN NEW.channel = 'boom' BEGIN SELECT RAISE(ABORT, 'boom!'); END"),
           SQLITE_OK, "install a failing trigger");
    for (int batch = 0; batch < 2; batch++) {
        long long ev0 = q_int(path, "SELECT count(*) FROM events");
        long long dl0 = q_int(path, "SELECT count(*) FROM deliveries");
        if (batch)
            hr_store_begin(s);
        herald_event ev;
        make_event(&ev, "half", T0);
        hr_delivery_new d[2] = {{.channel = "fine", .next_at = T0},
                                {.channel = "boom", .next_at = T0}};
        herald_status st = hr_store_submit(s, &ev, d, 2, 0, NULL);
        is_int(st, HERALD_E_IO, batch ? "failing submit in a batch" : "failing submit alone");
        like(hr_store_error(s), path, "error names the database");
        like(hr_store_error(s), "boom!", "error gives SQLite's reason");
        hr_event_clear(&ev);
        make_event(&ev, "half", T0);
        is_int(hr_store_submit(s, &ev, d, 1, 0, NULL), HERALD_OK, "next submit still works");
        hr_event_clear(&ev);
        if (batch)
            is_int(hr_store_commit(s), HERALD_OK, "batch commits");
        is_int(q_int(path, "SELECT count(*) FROM events"), ev0 + 1, "only the good event stored");
        is_int(q_int(path, "SELECT count(*) FROM deliveries"), dl0 + 1,
               "no half-stored deliveries");
    }
    q_exec(path, "DROP TRIGGER boom");
    hr_store_close(s);
}

/* ---- two connections ---- */

typedef struct waiter {
    hr_store *s;
    atomic_int finished;
    herald_status st;
    char err[512];
    struct timespec at;
} waiter;

static void *submit_thread(void *arg)
{
    waiter *w = arg;
    herald_event ev;
    make_event(&ev, "waiter", T0);
    hr_delivery_new d = {.channel = "w", .next_at = T0, .state = HR_D_PENDING};
    w->st = hr_store_submit(w->s, &ev, &d, 1, 0, NULL);
    snprintf(w->err, sizeof w->err, "%s", hr_store_error(w->s));
    clock_gettime(CLOCK_MONOTONIC, &w->at);
    atomic_store(&w->finished, 1);
    hr_event_clear(&ev);
    return NULL;
}

typedef struct claimer {
    hr_store *s;
    long long *ids;
    size_t n, cap;
    int errors;
} claimer;

static void *claim_thread(void *arg)
{
    claimer *c = arg;
    for (;;) {
        hr_claim *cl;
        size_t n;
        if (hr_store_claim(c->s, T0, LEASE, 7, NULL, NULL, &cl, &n) != HERALD_OK) {
            c->errors++;
            break;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (c->n == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 64;
                c->ids = hr_realloc(c->ids, c->cap * sizeof *c->ids);
            }
            c->ids[c->n++] = cl[i].id;
        }
        hr_claims_free(cl, n);
    }
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void test_concurrency(const char *path)
{
    char err[512];
    hr_store *a, *b;
    if (hr_store_open(path, &a, err, sizeof err) != HERALD_OK ||
        hr_store_open(path, &b, err, sizeof err) != HERALD_OK) {
        ok(0, err);
        return;
    }
    long long before = q_int(path, "SELECT count(*) FROM events");
    waiter w = {.s = b};
    atomic_init(&w.finished, 0);
    is_int(hr_store_begin(a), HERALD_OK, "A holds the write lock");
    pthread_t t;
    ok(pthread_create(&t, NULL, submit_thread, &w) == 0, "B submits from a thread");
    usleep(300000);
    is_int(atomic_load(&w.finished), 0, "B waits while A's transaction is open");
    herald_event ev;
    make_event(&ev, "holder", T0);
    hr_store_submit(a, &ev, NULL, 0, 0, NULL);
    hr_event_clear(&ev);
    struct timespec committed;
    clock_gettime(CLOCK_MONOTONIC, &committed);
    is_int(hr_store_commit(a), HERALD_OK, "A commits");
    pthread_join(t, NULL);
    if (!is_int(w.st, HERALD_OK, "B's submit succeeds after A commits"))
        printf("# %s\n", w.err);
    ok(!strstr(w.err, "locked"), "no 'database is locked'");
    ok(w.at.tv_sec > committed.tv_sec ||
           (w.at.tv_sec == committed.tv_sec && w.at.tv_nsec >= committed.tv_nsec),
       "B finished after A's commit");
    is_int(q_int(path, "SELECT count(*) FROM events"), before + 2, "both events stored");

    /* Two connections claiming at once never get the same delivery. */
    herald_event many;
    make_event(&many, "race", T0);
    hr_delivery_new *dn = hr_calloc(400, sizeof *dn);
    for (size_t i = 0; i < 400; i++) {
        dn[i].channel = "race";
        dn[i].next_at = T0 - 1;
    }
    hr_store_submit(a, &many, dn, 400, 0, NULL);
    free(dn);
    hr_event_clear(&many);
    claimer ca = {.s = a}, cb = {.s = b};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, claim_thread, &ca);
    pthread_create(&tb, NULL, claim_thread, &cb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    is_int(ca.errors + cb.errors, 0, "concurrent claims without errors");
    is_int(ca.n + cb.n, 401, "every due delivery claimed (400 + B's)");
    long long *all = hr_calloc(ca.n + cb.n + 1, sizeof *all);
    if (ca.n)
        memcpy(all, ca.ids, ca.n * sizeof *all);
    if (cb.n)
        memcpy(all + ca.n, cb.ids, cb.n * sizeof *all);
    qsort(all, ca.n + cb.n, sizeof *all, cmp_ll);
    int dups = 0;
    for (size_t i = 1; i < ca.n + cb.n; i++)
        dups += all[i] == all[i - 1];
    is_int(dups, 0, "no delivery claimed twice");
    printf("# claims split %zu / %zu between the connections\n", ca.n, cb.n);
    free(all);
    free(ca.ids);
    free(cb.ids);
    hr_store_close(a);
    hr_store_close(b);
}

/* The claim must walk the partial due index, never scan or sort the table.
 * The SQL mirrors Q_CLAIM, Q_CLAIM_SCAN and Q_CLAIM_EVENT in core/store.c. */
static void test_plan(const char *path)
{
    static const char *const plans[][2] = {
        {"EXPLAIN QUERY PLAN UPDATE deliveries SET state = 1, lease_until = ?1 + ?2, "
         "updated_ms = ?1 WHERE id IN (SELECT id FROM deliveries "
         "WHERE (state < 2 OR state = 5) AND due_at <= ?1 "
         "AND channel NOT IN (SELECT value FROM json_each(?4)) ORDER BY due_at LIMIT ?3) "
         "RETURNING id",
         "SCAN deliveries USING INDEX deliveries_channel_due"},
        {"EXPLAIN QUERY PLAN SELECT d.id, d.event_id, d.channel, d.recipient, d.address, "
         "d.attempts, d.created_ms, d.next_at, e.id, e.type, e.severity, e.title, e.body, "
         "e.source, e.user, e.idempotency_key, e.data, e.fields, e.created_ms, e.tenant "
         "FROM deliveries d LEFT JOIN events e ON e.id = d.event_id "
         "WHERE d.channel = ?1 AND (d.state < 2 OR d.state = 5) AND d.due_at <= ?2 "
         "ORDER BY d.due_at LIMIT ?3",
         "USING INDEX deliveries_channel_due (channel=? AND due_at<?)"},
        {"EXPLAIN QUERY PLAN SELECT channel FROM deliveries WHERE (state < 2 OR state = 5) "
         "AND channel > ?1 ORDER BY channel LIMIT 1",
         "USING INDEX deliveries_channel_due (channel>?)"},
        {"EXPLAIN QUERY PLAN UPDATE deliveries SET state = 1, lease_until = ?1 + ?2, "
         "updated_ms = ?1 WHERE id IN (SELECT id FROM deliveries "
         "WHERE event_id = ?5 AND (state < 2 OR state = 5) AND due_at <= ?1 "
         "AND channel NOT IN (SELECT value FROM json_each(?4)) ORDER BY due_at LIMIT ?3) "
         "RETURNING id",
         "USING INDEX deliveries_event (event_id=?)"},
        /* GET /v1/stats: a tenant's finished deliveries and attempts since a time. */
        {"EXPLAIN QUERY PLAN SELECT e.type, d.channel, coalesce(e.source, ''), d.state "
         "FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
         "JOIN events e ON e.id = d.event_id WHERE e.tenant = ?1 AND a.started_ms >= ?2 "
         "AND d.state IN (2, 3, 4) "
         "AND a.id = (SELECT max(x.id) FROM attempts x WHERE x.delivery_id = d.id)",
         "USING INDEX attempts_started (started_ms>?)"},
        {"EXPLAIN QUERY PLAN SELECT e.type, d.channel, coalesce(e.source, ''), a.duration_ms "
         "FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
         "JOIN events e ON e.id = d.event_id WHERE e.tenant = ?1 AND a.started_ms >= ?2",
         "USING INDEX attempts_started (started_ms>?)"},
    };
    for (size_t i = 0; i < HR_ARRAY_LEN(plans); i++) {
        sqlite3 *db;
        sqlite3_stmt *q;
        hr_buf b = {0};
        hr_buf_add(&b, "", 0);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, plans[i][0], -1, &q, NULL) == SQLITE_OK) {
            while (sqlite3_step(q) == SQLITE_ROW)
                hr_buf_addf(&b, "%s\n", (const char *)sqlite3_column_text(q, 3));
            sqlite3_finalize(q);
        }
        sqlite3_close(db);
        if (i == 0) {
            printf("# claim query plan:\n");
            for (char *line = b.data, *nl; line && *line; line = nl + 1) {
                nl = strchr(line, '\n');
                printf("#   %.*s\n", (int)(nl - line), line);
            }
        }
        static const char *const what[] = {"claim across channels reads claimable rows only",
                                           "channel claim uses the channel index",
                                           "listing queued channels seeks the channel index",
                                           "event claim uses the event index",
                                           "statistics find finished deliveries by their attempts' time",
                                           "statistics seek attempts by start time"};
        like(b.data, plans[i][1], what[i]);
        if (i >= 4) {
            ok(!strstr(b.data, "SCAN"), "statistics scan no table");
        } else if (i > 0) { /* the first is for tools and tests: it may scan the partial index */
            ok(!strstr(b.data, "SCAN deliveries"), "claim does not scan deliveries");
            if (i < 3)
                ok(!strstr(b.data, "TEMP B-TREE"), "claim does not sort");
        }
        hr_buf_free(&b);
    }
}

static void dir_row(void *ctx, const char *what, const char *a, const char *b, const char *c,
                    const char *d)
{
    hr_buf_addf(ctx, "%s:%s:%s:%s:%s\n", what, a ? a : "", b ? b : "", c ? c : "", d ? d : "");
}

/* A tenant's users, preferences and groups as lines "what:a:b:c:d"; NULL on error. */
static char *dir_text(hr_store *s, const char *tenant)
{
    hr_buf b = {0};
    hr_buf_add(&b, "", 0);
    if (hr_store_directory_each(s, tenant, dir_row, &b) != HERALD_OK) {
        hr_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* Users belong to a tenant: one name in two tenants is two users whose rows
 * never mix; a database from before tenants keeps its users as the default
 * tenant's, their rules in the order they were set. */
static void test_users(const char *path)
{
    char err[512];
    hr_store *s;
    if (!is_int(hr_store_open(path, &s, err, sizeof err), HERALD_OK, "open the users database")) {
        printf("# %s\n", err);
        return;
    }
    int existed = -1, found = -1, changed = -1;
    ok(hr_store_user_add(s, NULL, "alice", &existed) == HERALD_OK && !existed,
       "add alice to the default tenant");
    ok(hr_store_user_add(s, "b", "alice", &existed) == HERALD_OK && !existed,
       "add alice to tenant b: another user, no clash");
    ok(hr_store_user_add(s, "b", "alice", &existed) == HERALD_OK && existed,
       "add b's alice again: she exists");
    ok(hr_store_pref_put(s, NULL, "alice", "addr", "email", "a@default.test") == HERALD_OK &&
           hr_store_pref_put(s, "b", "alice", "addr", "email", "a@b.test") == HERALD_OK &&
           hr_store_pref_put(s, "b", "alice", "default", "min_severity", "error") == HERALD_OK &&
           hr_store_group_member(s, "b", "ops", "alice", 1, &changed) == HERALD_OK && changed,
       "an address in each tenant, a preference and a group in b");
    char *t = dir_text(s, NULL);
    is_str(t, "user:alice:::\npref:alice:addr:email:a@default.test\n",
           "the default tenant reads its own rows only");
    free(t);
    t = dir_text(s, "b");
    is_str(t, "user:alice:::\npref:alice:addr:email:a@b.test\n"
              "pref:alice:default:min_severity:error\ngroup:ops:alice::\n",
           "tenant b reads its own rows only");
    free(t);
    t = dir_text(s, "c");
    is_str(t, "", "a tenant without users reads nothing");
    free(t);
    char **tenants = NULL;
    ok(hr_store_directory_tenants(s, &tenants) == HERALD_OK && tenants && tenants[0] &&
           !strcmp(tenants[0], "b") && !tenants[1],
       "the tenants with users besides the default: b");
    hr_strv_free(tenants);
    ok(hr_store_user_remove(s, NULL, "alice", &found) == HERALD_OK && found,
       "remove the default tenant's alice");
    t = dir_text(s, NULL);
    is_str(t, "", "her rows are gone");
    free(t);
    t = dir_text(s, "b");
    like(t, "user:alice:::\npref:alice:addr:email:a@b.test\n", "b's alice is untouched");
    free(t);
    hr_store_close(s);

    /* The schema of version 8, with a user, two rules set in reverse rowid
     * order and a group membership. */
    is_int(q_exec(path, "DROP TABLE users; DROP TABLE user_prefs; DROP TABLE group_members; "
                        "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, "
                        "  created_ms INTEGER NOT NULL);"
                        "CREATE TABLE user_prefs (user TEXT NOT NULL, kind TEXT NOT NULL, "
                        "  key TEXT NOT NULL, value TEXT NOT NULL, updated_ms INTEGER NOT NULL, "
                        "  UNIQUE (user, kind, key));"
                        "CREATE TABLE group_members (grp TEXT NOT NULL, user TEXT NOT NULL, "
                        "  PRIMARY KEY (grp, user)) WITHOUT ROWID;"
                        "INSERT INTO users VALUES ('carol', 1);"
                        "INSERT INTO user_prefs (rowid, user, kind, key, value, updated_ms) "
                        "  VALUES (5, 'carol', 'rule', 'b.*' || char(31) || '*', 'off', 1),"
                        "         (3, 'carol', 'rule', 'a.*' || char(31) || '*', 'on', 1);"
                        "INSERT INTO group_members VALUES ('ops', 'carol');"
                        "PRAGMA user_version = 8"),
           SQLITE_OK, "make a version 8 database");
    if (!is_int(hr_store_open(path, &s, err, sizeof err), HERALD_OK, "open version 8")) {
        printf("# %s\n", err);
        return;
    }
    is_int(q_int(path, "PRAGMA user_version"), 11, "migrated to version 11");
    t = dir_text(s, NULL);
    is_str(t, "user:carol:::\npref:carol:rule:a.*\x1f*:on\npref:carol:rule:b.*\x1f*:off\n"
              "group:ops:carol::\n",
           "the users, their preferences (in their order) and groups are the default tenant's");
    free(t);
    ok(hr_store_user_add(s, "b", "carol", &existed) == HERALD_OK && !existed,
       "and the same name can now be added to another tenant");
    hr_store_close(s);
}

/* Not a timed test: a diagnostic of the hot path's cost. */
static void timing(const char *path)
{
    char err[512];
    hr_store *s;
    if (hr_store_open(path, &s, err, sizeof err) != HERALD_OK) {
        ok(0, err);
        return;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fails = 0;
    long long now = T0;
    for (int batch = 0; batch < 100; batch++) {
        fails += hr_store_begin(s) != HERALD_OK;
        for (int i = 0; i < 100; i++) {
            herald_event ev;
            make_event(&ev, "bench", now);
            hr_delivery_new d = {.channel = "bench", .next_at = now, .state = HR_D_PENDING};
            fails += hr_store_submit(s, &ev, &d, 1, 60000, NULL) != HERALD_OK;
            hr_event_clear(&ev);
        }
        fails += hr_store_commit(s) != HERALD_OK;
        hr_claim *c;
        size_t n;
        fails += hr_store_claim(s, now, LEASE, 100, NULL, NULL, &c, &n) != HERALD_OK || n != 100;
        fails += hr_store_begin(s) != HERALD_OK;
        for (size_t i = 0; i < n; i++) {
            hr_attempt a = {.delivery_id = c[i].id, .started_ms = now, .duration_ms = 3,
                            .verdict = HERALD_VERDICT_OK, .code = 200, .detail = "HTTP 200"};
            fails += hr_store_finish(s, &a, HR_D_SENT, 0) != HERALD_OK;
            fails += hr_store_channel_result(s, "bench", 1, NULL) != HERALD_OK;
        }
        fails += hr_store_commit(s) != HERALD_OK;
        hr_claims_free(c, n);
    }
    long long ms = ms_since(&t0);
    is_int(fails, 0, "10000 submit+claim+finish cycles");
    is_int(q_int(path, "SELECT count(*) FROM deliveries WHERE state = 2"), 10000, "all sent");
    printf("# 10000 submit+claim+finish cycles in batches of 100: %lld ms (%.0f/s)\n", ms,
           ms ? 10000.0 * 1000 / (double)ms : 0.0);
    hr_store_close(s);
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = db_path(e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    if (rmdir(dir) != 0)
        printf("# could not remove %s\n", dir);
}

/* Webhook receipts: a repeated (source, message id) is a duplicate, not an
 * error that would spoil the round's batch; processing marks each once. */
static void test_receipts(const char *path)
{
    char err[512];
    hr_store *s;
    if (hr_store_open(path, &s, err, sizeof err) != HERALD_OK) {
        ok(0, err);
        return;
    }
    hr_receipt r = {.source = "gh", .message_id = "m-1", .headers = "{\"x-a\":\"b\"}",
                    .body = "{\"a\":1}xx", .body_len = 7, .received_ms = T0};
    long long id1 = 0, id2 = 0, id3 = 0;
    int dup1 = -1, dup2 = -1, dup3 = -1;
    is_int(hr_store_begin_batch(s), HERALD_OK, "receipts: begin a batch");
    is_int(hr_store_receipt_add(s, &r, &id1, &dup1), HERALD_OK, "a receipt is stored");
    is_int(hr_store_receipt_add(s, &r, &id2, &dup2), HERALD_OK, "the same message again: no error");
    r.source = "other";
    is_int(hr_store_receipt_add(s, &r, &id3, &dup3), HERALD_OK,
           "the same message id from another source");
    is_int(hr_store_commit(s), HERALD_OK, "and the batch commits");
    ok(id1 > 0 && dup1 == 0, "the first is new");
    ok(id2 == id1 && dup2 == 1, "the repeat is a duplicate with the first one's id");
    ok(id3 != id1 && dup3 == 0, "another source's is its own");
    is_int(q_int(path, "SELECT count(*) FROM hook_receipts"), 2, "two rows");

    hr_receipt *v = NULL;
    size_t n = 0;
    is_int(hr_store_receipts_new(s, 1, &v, &n), HERALD_OK, "read new receipts");
    ok(n == 1 && v[0].id == id1 && !strcmp(v[0].source, "gh") && !strcmp(v[0].tenant, "default") &&
       v[0].body_len == 7 && !strcmp(v[0].body, "{\"a\":1}") &&
       !strcmp(v[0].headers, "{\"x-a\":\"b\"}") && v[0].received_ms == T0,
       "oldest first, at most max, as stored (the body to its length)");
    hr_receipts_free(v, n);
    is_int(hr_store_receipt_finish(s, id1, "ev-1", NULL, T0 + 1), HERALD_OK, "mark one done");
    is_int(hr_store_receipt_finish(s, id1, NULL, "late", T0 + 2), HERALD_OK,
           "marking it again changes nothing");
    is_int(hr_store_receipt_finish(s, id3, NULL, "bad type", T0 + 1), HERALD_OK,
           "mark the other failed");
    char *st = q_text(path, "SELECT group_concat(state || ':' || coalesce(event_id, '-') || ':' "
                            "|| coalesce(error, '-'), ' ') FROM (SELECT * FROM hook_receipts "
                            "ORDER BY id)");
    is_str(st, "1:ev-1:- 2:-:bad type", "done with its event, failed with its reason");
    free(st);
    is_int(hr_store_receipts_new(s, 10, &v, &n), HERALD_OK, "read new receipts again");
    is_int((long long)n, 0, "none left to process");
    hr_receipts_free(v, n);
    hr_store_close(s);
}

/* ---- retention ---- */

/* One event created at ms, with an id of that time (as hr_event_stamp makes
 * them), and one delivery in state st that has had one attempt when final. */
static void old_event(hr_store *s, long long ms, hr_dstate st, char id[37])
{
    static unsigned serial;
    herald_event ev;
    make_event(&ev, "old.event", ms);
    snprintf(ev.id, sizeof ev.id, "%08llx-%04llx-7abc-8def-%012x", ms >> 16, ms & 0xffff,
             ++serial);
    hr_delivery_new d = {.channel = "c", .next_at = ms, .state = HR_D_PENDING};
    int dup = -1;
    if (hr_store_submit(s, &ev, &d, 1, 0, &dup) != HERALD_OK)
        printf("# submit failed: %s\n", hr_store_error(s));
    memcpy(id, ev.id, 37);
    hr_event_clear(&ev);
    hr_log_filter f = {.state = -1, .event_id = id};
    hr_delivery_row *r;
    size_t n;
    if (st != HR_D_PENDING && hr_store_log(s, &f, &r, &n) == HERALD_OK) {
        if (n == 1)
            finish(s, r[0].id, st, ms, 5, st == HR_D_SENT ? HERALD_VERDICT_OK
                                                          : HERALD_VERDICT_FAILED);
        hr_delivery_rows_free(r, n);
    }
}

static void test_prune(const char *path)
{
    hr_store *s = NULL;
    char err[512];
    if (!is_int(hr_store_open(path, &s, err, sizeof err), HERALD_OK, "prune: open"))
        return;
    long long day = 86400000LL;
    char sent_old[37], dead_old[37], failed_old[37], pending_old[37], sent_new[37], later[37];
    old_event(s, T0, HR_D_SENT, sent_old);
    old_event(s, T0 + 1, HR_D_PENDING, pending_old); /* a delivery still to make */
    old_event(s, T0 + 2, HR_D_DEAD, dead_old);
    old_event(s, T0 + 3, HR_D_FAILED, failed_old);
    old_event(s, T0 + 10 * day, HR_D_SENT, sent_new);
    old_event(s, T0 + 10 * day + 1, HR_D_PENDING, later);
    hr_receipt r = {.source = "gh", .message_id = "m1", .body = "{}", .body_len = 2,
                    .received_ms = T0};
    long long rid[3];
    int dup;
    hr_store_receipt_add(s, &r, &rid[0], &dup);
    r.message_id = "m2"; /* old, never processed: kept */
    hr_store_receipt_add(s, &r, &rid[1], &dup);
    r.message_id = "m3";
    r.received_ms = T0 + 10 * day;
    hr_store_receipt_add(s, &r, &rid[2], &dup);
    hr_store_receipt_finish(s, rid[0], sent_old, NULL, T0);
    hr_store_receipt_finish(s, rid[2], sent_new, NULL, T0 + 10 * day);

    /* Two events a call: the cursor carries the pass over the pending one. */
    hr_prune_counts n = {0};
    char cursor[37] = "";
    int more = 0, calls = 0;
    herald_status st;
    do {
        st = hr_store_prune(s, T0 + 5 * day, 2, cursor, &n, &more);
        calls++;
    } while (st == HERALD_OK && more && calls < 10);
    is_int(st, HERALD_OK, "prune: a pass in batches of 2 succeeds");
    is_int(calls, 3, "prune: 4 old events in batches of 2: 3 calls (the last finds none)");
    is_int((int)n.events, 3, "prune: the 3 old finished events (sent, dead, failed) go");
    is_int((int)n.deliveries, 3, "prune: their deliveries go");
    is_int((int)n.attempts, 3, "prune: their attempts go");
    is_int((int)n.receipts, 1, "prune: the old processed webhook receipt goes");
    char *left = q_text(path, "SELECT id FROM events ORDER BY id");
    char *want = hr_asprintf("%s\n%s\n%s", pending_old, sent_new, later);
    is_str(left, want, "prune: the old pending event and every young one stay");
    free(left);
    free(want);
    is_int(q_int(path, "SELECT count(*) FROM deliveries"), 3, "prune: their 3 deliveries stay");
    is_int(q_int(path, "SELECT count(*) FROM attempts"), 1, "prune: the young event's attempt stays");
    left = q_text(path, "SELECT message_id FROM hook_receipts ORDER BY id");
    is_str(left, "m2\nm3", "prune: the unprocessed old receipt and the young one stay");
    free(left);

    /* The old pending one goes once its delivery is final; nothing else changes. */
    hr_log_filter f = {.state = -1, .event_id = pending_old};
    hr_delivery_row *rows;
    size_t nr;
    if (hr_store_log(s, &f, &rows, &nr) == HERALD_OK && nr == 1)
        finish(s, rows[0].id, HR_D_SENT, T0, 5, HERALD_VERDICT_OK);
    if (nr)
        hr_delivery_rows_free(rows, nr);
    memset(&n, 0, sizeof n);
    cursor[0] = '\0';
    st = hr_store_prune(s, T0 + 5 * day, 100, cursor, &n, &more);
    ok(st == HERALD_OK && n.events == 1 && n.deliveries == 1 && !more,
       "prune: an old event goes once its last delivery is final");
    is_int(q_int(path, "SELECT count(*) FROM events"), 2, "prune: the 2 young events stay");

    /* Inside the caller's transaction the prune is part of it, undone with it. */
    is_int(hr_store_begin(s), HERALD_OK, "prune: begin a transaction");
    memset(&n, 0, sizeof n);
    cursor[0] = '\0';
    st = hr_store_prune(s, T0 + 20 * day, 100, cursor, &n, &more);
    ok(st == HERALD_OK && n.events == 1, "prune: inside a transaction, the young sent one too");
    hr_store_rollback(s);
    is_int(q_int(path, "SELECT count(*) FROM events"), 2, "prune: rolled back with the caller");
    hr_store_close(s);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 99;
    test_states();
    test_open();

    char *path = db_path("main.db");
    char err[512];
    hr_store *s = NULL;
    if (!is_int(hr_store_open(path, &s, err, sizeof err), HERALD_OK, "open the main database")) {
        printf("# %s\n", err);
        remove_dir();
        return done_testing();
    }
    test_roundtrip(s);
    test_idempotency(s, path);
    test_channels(s);
    hr_store_close(s);
    free(path);

    /* Claims and attempts each on an empty queue. */
    path = db_path("claims.db");
    if (hr_store_open(path, &s, err, sizeof err) == HERALD_OK) {
        test_claims(s);
        hr_store_close(s);
    }
    free(path);
    path = db_path("chanclaims.db");
    if (hr_store_open(path, &s, err, sizeof err) == HERALD_OK) {
        test_channel_claims(s);
        hr_store_close(s);
    }
    free(path);
    path = db_path("orphans.db");
    if (hr_store_open(path, &s, err, sizeof err) == HERALD_OK) {
        test_orphans(s, path);
        hr_store_close(s);
    }
    free(path);
    path = db_path("finish.db");
    if (hr_store_open(path, &s, err, sizeof err) == HERALD_OK) {
        test_finish(s, path);
        hr_store_close(s);
    }
    free(path);

    path = db_path("log.db");
    test_log(path);
    free(path);
    path = db_path("stats.db");
    test_stats(path);
    free(path);
    path = db_path("tx.db");
    test_transactions(path);
    test_plan(path);
    free(path);
    path = db_path("receipts.db");
    test_receipts(path);
    free(path);
    path = db_path("prune.db");
    test_prune(path);
    free(path);
    path = db_path("users.db");
    test_users(path);
    free(path);
    path = db_path("race.db");
    test_concurrency(path);
    free(path);
    path = db_path("timing.db");
    timing(path);
    free(path);

    remove_dir();
    return done_testing();
}
