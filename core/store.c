/* store.c - the durable queue in SQLite: schema and migrations, submission, claims, attempts, reports. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store.h"

/* With WAL, synchronous=NORMAL makes every commit durable across a crash of the
 * process (kill -9): the commit is in the WAL file the moment COMMIT returns,
 * only the fsync is deferred to the next checkpoint. What it does not promise is
 * the last transactions surviving a power loss or kernel crash; that needs FULL
 * (an fsync per commit), which a configuration option can select later. */
#define HR_STORE_SYNCHRONOUS "NORMAL"

/* How long a writer waits for another connection's write transaction. */
#define HR_STORE_BUSY_MS 10000

#define LOG_DEFAULT_LIMIT 100

/* Schema migrations: entry k takes user_version k to k + 1. Entries are never
 * edited once released; a change is one more entry. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE events ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  type TEXT NOT NULL,"
    "  severity INTEGER NOT NULL,"
    "  title TEXT NOT NULL,"
    "  body TEXT,"
    "  source TEXT,"
    "  user TEXT,"
    "  idempotency_key TEXT,"
    "  data TEXT,"                            /* JSON text or NULL */
    "  fields TEXT NOT NULL DEFAULT '{}',"    /* JSON object, in the submitted order */
    "  created_ms INTEGER NOT NULL);"
    "CREATE INDEX events_idempotency ON events(idempotency_key, created_ms)"
    "  WHERE idempotency_key IS NOT NULL;"
    "CREATE TABLE deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL REFERENCES events(id),"
    "  channel TEXT NOT NULL,"
    "  recipient TEXT,"
    "  address TEXT,"
    "  state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 5),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL,"
    "  lease_until INTEGER,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  last_status INTEGER,"
    "  last_code INTEGER,"
    "  last_detail TEXT,"
    /* When the row is next due for a claim: a waiting row at next_at, a row in
     * flight when its lease runs out. One column lets one index serve both. */
    "  due_at INTEGER GENERATED ALWAYS AS"
    "    (CASE WHEN state = 1 THEN lease_until ELSE next_at END) VIRTUAL);"
    /* Only claimable states are indexed, so the sent, failed and dead rows that
     * accumulate forever cost claims nothing. */
    "CREATE INDEX deliveries_due ON deliveries(due_at) WHERE state IN (0, 1, 5);"
    "CREATE INDEX deliveries_event ON deliveries(event_id);"
    "CREATE TABLE attempts ("
    "  id INTEGER PRIMARY KEY,"
    "  delivery_id INTEGER NOT NULL REFERENCES deliveries(id),"
    "  started_ms INTEGER NOT NULL,"
    "  duration_ms INTEGER NOT NULL,"
    "  verdict INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  code INTEGER NOT NULL,"
    "  detail TEXT,"
    "  excerpt TEXT);"
    "CREATE INDEX attempts_delivery ON attempts(delivery_id);"
    "CREATE TABLE channel_state ("
    "  channel TEXT PRIMARY KEY NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  reason TEXT,"
    "  disabled_at INTEGER,"
    "  consecutive_failures INTEGER NOT NULL DEFAULT 0);",
    /* 1 -> 2: the dispatcher claims per channel, as many as the channel has
     * room for, so claims never pick rows a busy channel must hand back. The
     * cross-channel due index is then one more index every state change pays
     * for and nothing on the hot path reads. */
    "CREATE INDEX deliveries_channel_due ON deliveries(channel, due_at) WHERE state IN (0, 1, 5);"
    "DROP INDEX deliveries_due;"
    /* Who holds a lease ("boot id/pid/start time"), so a restarted daemon
     * takes back the claims of a process that died instead of waiting for
     * their leases to run out. Only rows in flight are indexed. */
    "ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;"
    "CREATE INDEX deliveries_leased ON deliveries(lease_owner) WHERE state = 1;",
    /* 2 -> 3: routing. Each routed event keeps the trail of its routing
     * decisions for `herald explain`; routes' dedup windows and rate limits
     * keep their state here so every process sees the same; users, their
     * preferences and group memberships managed at run time (one row per
     * preference, so changing one never rewrites another). */
    "ALTER TABLE events ADD COLUMN route_trail TEXT;"
    "CREATE TABLE route_seen ("
    "  route TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  at_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (route, key)) WITHOUT ROWID;"
    "CREATE TABLE route_rate ("
    "  route TEXT PRIMARY KEY NOT NULL,"
    "  window_start INTEGER NOT NULL,"
    "  used INTEGER NOT NULL,"
    "  dropped INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE user_prefs ("
    "  user TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"   /* addr, default, channel, rule, quiet */
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  UNIQUE (user, kind, key));"
    "CREATE TABLE group_members ("
    "  grp TEXT NOT NULL,"
    "  user TEXT NOT NULL,"
    "  PRIMARY KEY (grp, user)) WITHOUT ROWID;"
    /* Bumped by every change to users, preferences or groups: heraldd polls it
     * and rebuilds its routing when it moves. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta VALUES ('directory_version', 0);",
    /* 3 -> 4: webhook subscriptions. What can carry a credential (the URL,
     * the signing secrets, the headers) is one sealed JSON text (AES-256-GCM
     * under the key file, bound to the subscription's id); the rest is plain
     * for listing. Their deliveries use the id as the channel name, so the
     * channel machinery (claims, retries, disabling, the log) serves them. */
    "CREATE TABLE webhooks ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL UNIQUE,"
    "  url_shown TEXT NOT NULL,"          /* scheme://host[:port]/..., for listing */
    "  events TEXT NOT NULL,"             /* comma-separated globs */
    "  sealed TEXT NOT NULL,"
    "  signature TEXT NOT NULL,"
    "  timeout_ms INTEGER NOT NULL,"
    "  max_attempts INTEGER,"
    "  payload_max INTEGER NOT NULL,"
    "  body_template TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);",
    /* 4 -> 5: the HTTP API. Every event belongs to a tenant (the CLI's and
     * the config's are "default"); tokens are stored as SHA-256 hashes of
     * their secret part, with scopes and the one tenant they may see. */
    "ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  scopes TEXT NOT NULL,"
    "  tenant TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER);",
    /* 5 -> 6: subscriptions belong to a tenant too; an event reaches only its
     * own tenant's subscriptions, and names are unique within a tenant only
     * (a global UNIQUE would tell one tenant another's names exist). */
    "CREATE TABLE webhooks6 ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  tenant TEXT NOT NULL DEFAULT 'default',"
    "  name TEXT NOT NULL,"
    "  url_shown TEXT NOT NULL,"
    "  events TEXT NOT NULL,"
    "  sealed TEXT NOT NULL,"
    "  signature TEXT NOT NULL,"
    "  timeout_ms INTEGER NOT NULL,"
    "  max_attempts INTEGER,"
    "  payload_max INTEGER NOT NULL,"
    "  body_template TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  UNIQUE (tenant, name));"
    "INSERT INTO webhooks6 (id, name, url_shown, events, sealed, signature, timeout_ms, "
    "  max_attempts, payload_max, body_template, created_ms, updated_ms) "
    "  SELECT id, name, url_shown, events, sealed, signature, timeout_ms, max_attempts, "
    "  payload_max, body_template, created_ms, updated_ms FROM webhooks;"
    "DROP TABLE webhooks;"
    "ALTER TABLE webhooks6 RENAME TO webhooks;",
    /* 6 -> 7: inbound webhooks (POST /v1/hooks/{source}). A verified request
     * is kept as it came (the headers templates may read, minus credentials,
     * and the raw body) and acknowledged once committed; a later step turns
     * it into an event. (source, message_id) is unique: a sender's retry of a
     * message is acknowledged as a duplicate and never processed twice. Only
     * receipts still to process are indexed. */
    "CREATE TABLE hook_receipts ("
    "  id INTEGER PRIMARY KEY,"
    "  source TEXT NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  tenant TEXT NOT NULL DEFAULT 'default',"
    "  received_ms INTEGER NOT NULL,"
    "  headers TEXT NOT NULL DEFAULT '{}'," /* JSON object, lowercase names */
    "  body TEXT NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2)," /* new, done, failed */
    "  event_id TEXT,"
    "  error TEXT,"
    "  processed_ms INTEGER,"
    "  UNIQUE (source, message_id));"
    "CREATE INDEX hook_receipts_new ON hook_receipts(id) WHERE state = 0;",
    /* 7 -> 8: GET /v1/stats reads a tenant's attempts started since a time
     * and its deliveries finished since a time; without these it scanned
     * both tables. Only finished deliveries are indexed by their last change. */
    "CREATE INDEX attempts_started ON attempts(started_ms);"
    "CREATE INDEX deliveries_finished ON deliveries(updated_ms) WHERE state IN (2, 3, 4);",
    /* 8 -> 9: users, their preferences and group memberships belong to a
     * tenant, like events and subscriptions; names are unique within a tenant
     * only. What exists is the default tenant's. Preferences keep their rowids,
     * which order rules by when they were set. */
    "CREATE TABLE users9 ("
    "  tenant TEXT NOT NULL DEFAULT 'default',"
    "  name TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (tenant, name));"
    "INSERT INTO users9 (name, created_ms) SELECT name, created_ms FROM users;"
    "DROP TABLE users;"
    "ALTER TABLE users9 RENAME TO users;"
    "CREATE TABLE user_prefs9 ("
    "  tenant TEXT NOT NULL DEFAULT 'default',"
    "  user TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  UNIQUE (tenant, user, kind, key));"
    "INSERT INTO user_prefs9 (rowid, user, kind, key, value, updated_ms) "
    "  SELECT rowid, user, kind, key, value, updated_ms FROM user_prefs;"
    "DROP TABLE user_prefs;"
    "ALTER TABLE user_prefs9 RENAME TO user_prefs;"
    "CREATE TABLE group_members9 ("
    "  tenant TEXT NOT NULL DEFAULT 'default',"
    "  grp TEXT NOT NULL,"
    "  user TEXT NOT NULL,"
    "  PRIMARY KEY (tenant, grp, user)) WITHOUT ROWID;"
    "INSERT INTO group_members9 (grp, user) SELECT grp, user FROM group_members;"
    "DROP TABLE group_members;"
    "ALTER TABLE group_members9 RENAME TO group_members;",
    /* 9 -> 10: deliveries_finished cost every claim and every finish (its
     * column, updated_ms, changes on each) about 8% of heraldd's CPU under
     * load. Statistics find finished deliveries through their last attempt
     * instead (attempts_started), see Q_STATS_DELIVERIES. */
    "DROP INDEX IF EXISTS deliveries_finished;",
    /* 10 -> 11: an index's WHERE is evaluated for the old and the new row of
     * every write to the table, and "state IN (0, 1, 5)" builds an ephemeral
     * b-tree for its three constants each time: five of them per delivery
     * (insert, claim, finish), with their allocations. The same set as two
     * comparisons costs nothing. Queries repeat it word for word, as SQLite
     * requires to use the index. */
    "DROP INDEX deliveries_channel_due;"
    "CREATE INDEX deliveries_channel_due ON deliveries(channel, due_at) "
    "  WHERE state < 2 OR state = 5;",
};

#define SCHEMA_VERSION ((int)HR_ARRAY_LEN(migrations))

/* Statements prepared once per connection, on first use. */
enum {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_IDEMPOTENT,
    Q_INSERT_EVENT,
    Q_INSERT_DELIVERY,
    Q_EVENT,
    Q_CLAIM,
    Q_CLAIM_EVENT,
    Q_CLAIM_SCAN,
    Q_CLAIM_MARK,
    Q_NEXT_CHANNEL,
    Q_CLAIM_ONE,
    Q_LEASE_OWNERS,
    Q_RECLAIM,
    Q_FINISH,
    Q_ATTEMPT,
    Q_RELEASE_ONE,
    Q_REQUEUE_ONE,
    Q_REQUEUE_DEAD,
    Q_DELIVERY_STATE,
    Q_CHANNEL_OK,
    Q_CHANNEL_FAILED,
    Q_CHANNEL_DISABLE,
    Q_CHANNEL_ENABLE,
    Q_CHANNEL_GET,
    Q_ATTEMPTS,
    Q_QUEUE,
    Q_STATS_DELIVERIES,
    Q_STATS_ATTEMPTS,
    Q_STATS_RANK,
    Q_TRAIL_SET,
    Q_TRAIL_GET,
    Q_SEEN_GET,
    Q_SEEN_PUT,
    Q_RATE_GET,
    Q_RATE_PUT,
    Q_PRUNE_EVENTS,
    Q_PRUNE_LIVE,
    Q_PRUNE_ATTEMPTS,
    Q_PRUNE_DELIVERIES,
    Q_PRUNE_EVENT,
    Q_PRUNE_RECEIPTS,
    Q_COUNT
};

static const char *const sql_text[Q_COUNT] = {
    /* Event ids are UUIDv7, ordered by their creation time: ?2 is the id prefix
     * of the cut-off time, so the scan is a range of the primary key. */
    [Q_PRUNE_EVENTS] = "SELECT id FROM events WHERE id > ?1 AND id < ?2 AND created_ms < ?3 "
                       "ORDER BY id LIMIT ?4",
    [Q_PRUNE_LIVE] = "SELECT 1 FROM deliveries WHERE event_id = ?1 AND state NOT IN (2, 3, 4) "
                     "LIMIT 1",
    [Q_PRUNE_ATTEMPTS] = "DELETE FROM attempts WHERE delivery_id IN "
                         "(SELECT id FROM deliveries WHERE event_id = ?1)",
    [Q_PRUNE_DELIVERIES] = "DELETE FROM deliveries WHERE event_id = ?1",
    [Q_PRUNE_EVENT] = "DELETE FROM events WHERE id = ?1",
    /* Receipts' ids grow with their arrival: the old ones are those before the
     * first young one. Receipts still to process are kept. */
    [Q_PRUNE_RECEIPTS] = "DELETE FROM hook_receipts WHERE id IN (SELECT id FROM hook_receipts "
                         "WHERE id < coalesce((SELECT id FROM hook_receipts WHERE received_ms "
                         ">= ?1 ORDER BY id LIMIT 1), 9223372036854775807) AND state <> 0 "
                         "ORDER BY id LIMIT ?2)",
    [Q_TRAIL_SET] = "UPDATE events SET route_trail = ?2 WHERE id = ?1",
    [Q_TRAIL_GET] = "SELECT route_trail FROM events WHERE id = ?1",
    [Q_SEEN_GET] = "SELECT at_ms FROM route_seen WHERE route = ?1 AND key = ?2",
    [Q_SEEN_PUT] = "INSERT INTO route_seen (route, key, at_ms) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (route, key) DO UPDATE SET at_ms = excluded.at_ms",
    [Q_RATE_GET] = "SELECT window_start, used FROM route_rate WHERE route = ?1",
    [Q_RATE_PUT] = "INSERT INTO route_rate (route, window_start, used, dropped) "
                   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (route) DO UPDATE SET "
                   "window_start = excluded.window_start, used = excluded.used, "
                   "dropped = dropped + excluded.dropped",
    /* IMMEDIATE takes the write lock up front: a deferred transaction that
     * reads first and writes later can fail with SQLITE_BUSY when another
     * connection wrote in between, and no busy timeout helps then. */
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT hr_call",
    [Q_RELEASE] = "RELEASE hr_call",
    [Q_ROLLBACK_TO] = "ROLLBACK TO hr_call",
    [Q_IDEMPOTENT] = "SELECT id FROM events WHERE idempotency_key = ?1 AND created_ms >= ?2 "
                     "ORDER BY created_ms DESC LIMIT 1",
    [Q_INSERT_EVENT] = "INSERT INTO events (id, type, severity, title, body, source, user, "
                       "idempotency_key, data, fields, created_ms, tenant) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                       "coalesce(?12, 'default'))",
    [Q_INSERT_DELIVERY] = "INSERT INTO deliveries (event_id, channel, recipient, address, state, "
                          "next_at, created_ms, updated_ms, lease_until, lease_owner) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
    [Q_EVENT] = "SELECT id, type, severity, title, body, source, user, idempotency_key, data, "
                "fields, created_ms, tenant FROM events WHERE id = ?1",
    /* One statement, so a claim is atomic between processes even outside a
     * transaction. Keep the inner SELECT in step with test_store.c, which
     * checks its query plan uses deliveries_due. */
    [Q_CLAIM] = "UPDATE deliveries SET state = 1, lease_until = ?1 + ?2, updated_ms = ?1, "
                "lease_owner = ?9 "
                "WHERE id IN (SELECT id FROM deliveries "
                "WHERE (state < 2 OR state = 5) AND due_at <= ?1 "
                "AND channel NOT IN (SELECT value FROM json_each(?4)) "
                "ORDER BY due_at LIMIT ?3) "
                "RETURNING id, event_id, channel, recipient, address, attempts, created_ms, "
                "next_at",
    /* The same for one event's deliveries: a separate statement so that it
     * looks them up by event (a handful of rows) instead of walking the whole
     * due queue, which "(?5 IS NULL OR event_id = ?5)" would make it do. */
    [Q_CLAIM_EVENT] = "UPDATE deliveries SET state = 1, lease_until = ?1 + ?2, updated_ms = ?1, "
                      "lease_owner = ?9 "
                      "WHERE id IN (SELECT id FROM deliveries "
                      "WHERE event_id = ?5 AND (state < 2 OR state = 5) AND due_at <= ?1 "
                      "AND channel NOT IN (SELECT value FROM json_each(?4)) "
                      "ORDER BY due_at LIMIT ?3) "
                      "RETURNING id, event_id, channel, recipient, address, attempts, "
                      "created_ms, next_at",
    /* Channels with claimable rows, one index seek each. */
    [Q_NEXT_CHANNEL] = "SELECT channel FROM deliveries WHERE (state < 2 OR state = 5) "
                       "AND channel > ?1 ORDER BY channel LIMIT 1",
    /* A delivery the claimer holds in memory since it was submitted: only if
     * nobody attempted or claimed it meanwhile. */
    /* One channel's due rows with each row's event, for a claimer holding
     * the write lock: read (deliveries_channel_due in due order, events by id),
     * then mark each row; no temporary tables, no second read of the event.
     * The event's columns are Q_EVENT's, from column 8 on. */
    [Q_CLAIM_SCAN] = "SELECT d.id, d.event_id, d.channel, d.recipient, d.address, d.attempts, "
                     "d.created_ms, d.next_at, e.id, e.type, e.severity, e.title, e.body, "
                     "e.source, e.user, e.idempotency_key, e.data, e.fields, e.created_ms, "
                     "e.tenant FROM deliveries d LEFT JOIN events e ON e.id = d.event_id "
                     "WHERE d.channel = ?1 AND (d.state < 2 OR d.state = 5) AND d.due_at <= ?2 "
                     "ORDER BY d.due_at LIMIT ?3",
    [Q_CLAIM_MARK] = "UPDATE deliveries SET state = 1, lease_until = ?2, updated_ms = ?3, "
                     "lease_owner = ?4 WHERE id = ?1",
    [Q_CLAIM_ONE] = "UPDATE deliveries SET state = 1, lease_until = ?2 + ?3, updated_ms = ?2, "
                    "lease_owner = ?9 "
                    "WHERE id = ?1 AND state = 0 AND attempts = 0",
    /* The conditions repeat the partial index's so that it is used. */
    [Q_LEASE_OWNERS] = "SELECT DISTINCT lease_owner FROM deliveries "
                       "WHERE state = 1 AND lease_owner IS NOT NULL",
    [Q_RECLAIM] = "UPDATE deliveries SET state = 0, lease_until = NULL, lease_owner = NULL, "
                  "updated_ms = ?2 WHERE state = 1 AND lease_owner = ?1",
    [Q_FINISH] = "UPDATE deliveries SET state = ?2, next_at = ?3, lease_until = NULL, "
                 "lease_owner = NULL, "
                 "attempts = attempts + 1, last_status = ?4, last_code = ?5, last_detail = ?6, "
                 "updated_ms = ?7 WHERE id = ?1",
    [Q_ATTEMPT] = "INSERT INTO attempts (delivery_id, started_ms, duration_ms, verdict, status, "
                  "code, detail, excerpt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    /* next_at is untouched by a claim and was due then, so a released row is
     * due again at once and keeps its place in the queue. */
    [Q_RELEASE_ONE] = "UPDATE deliveries SET state = 0, lease_until = NULL, lease_owner = NULL, "
                      "updated_ms = ?2 "
                      "WHERE id = ?1 AND state = 1",
    [Q_REQUEUE_ONE] = "UPDATE deliveries SET state = 0, next_at = ?2, lease_until = NULL, "
                      "lease_owner = NULL, "
                      "updated_ms = ?2 WHERE id = ?1 AND state <> 1",
    [Q_REQUEUE_DEAD] = "UPDATE deliveries SET state = 0, next_at = ?1, lease_until = NULL, "
                       "lease_owner = NULL, "
                       "updated_ms = ?1 WHERE state = 4",
    [Q_DELIVERY_STATE] = "SELECT state FROM deliveries WHERE id = ?1",
    /* A success writes nothing unless there was a failure streak to end: this
     * runs once per delivery on the hot path. No row means no failures. */
    [Q_CHANNEL_OK] = "UPDATE channel_state SET consecutive_failures = 0 "
                     "WHERE channel = ?1 AND consecutive_failures <> 0",
    /* ?2: 1 when the streak restarts (a success came first), ?3: failures. */
    [Q_CHANNEL_FAILED] = "INSERT INTO channel_state (channel, consecutive_failures) VALUES (?1, ?3) "
                         "ON CONFLICT (channel) DO UPDATE "
                         "SET consecutive_failures = ?3 + "
                         "CASE WHEN ?2 THEN 0 ELSE consecutive_failures END "
                         "RETURNING consecutive_failures",
    [Q_CHANNEL_DISABLE] = "INSERT INTO channel_state (channel, disabled, reason, disabled_at) "
                          "VALUES (?1, 1, ?2, ?3) ON CONFLICT (channel) DO UPDATE "
                          "SET disabled = 1, reason = excluded.reason, "
                          "disabled_at = excluded.disabled_at",
    [Q_CHANNEL_ENABLE] = "UPDATE channel_state SET disabled = 0, reason = NULL, "
                         "disabled_at = NULL, consecutive_failures = 0 WHERE channel = ?1",
    [Q_CHANNEL_GET] = "SELECT disabled, reason FROM channel_state WHERE channel = ?1",
    [Q_ATTEMPTS] = "SELECT delivery_id, started_ms, duration_ms, verdict, status, code, detail, "
                   "excerpt FROM attempts WHERE delivery_id = ?1 ORDER BY id",
    [Q_QUEUE] = "SELECT channel, state, count(*), min(created_ms) FROM deliveries "
                "GROUP BY channel, state ORDER BY channel",
    /* Deliveries count where they ended up when their last attempt started
     * since since_ms (attempts_started, then each delivery's last attempt by
     * attempts_delivery): no index on the deliveries' own times to keep up. */
    [Q_STATS_DELIVERIES] = "SELECT d.channel, sum(d.state = 2), sum(d.state = 3), "
                           "sum(d.state = 4) FROM attempts a "
                           "JOIN deliveries d ON d.id = a.delivery_id "
                           "WHERE a.started_ms >= ?1 AND d.state IN (2, 3, 4) "
                           "AND a.id = (SELECT max(x.id) FROM attempts x "
                           "WHERE x.delivery_id = d.id) GROUP BY d.channel",
    [Q_STATS_ATTEMPTS] = "SELECT d.channel, count(*), sum(a.verdict = 0), "
                         "avg(CASE WHEN a.verdict = 0 THEN a.duration_ms END) "
                         "FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
                         "WHERE a.started_ms >= ?1 GROUP BY d.channel",
    [Q_STATS_RANK] = "SELECT a.duration_ms FROM attempts a JOIN deliveries d "
                     "ON d.id = a.delivery_id WHERE d.channel = ?1 AND a.verdict = 0 "
                     "AND a.started_ms >= ?2 ORDER BY a.duration_ms LIMIT 1 OFFSET ?3",
};

struct hr_store {
    sqlite3 *db;
    char *path;
    int in_tx;   /* inside hr_store_begin() */
    int batch;   /* ... hr_store_begin_batch(): no savepoints */
    int spoiled; /* a call failed inside a batch: commit must fail */
    char owner[96]; /* this process, as recorded in the leases it takes */
    int bind_rc; /* first failed bind since the last step */
    sqlite3_stmt *q[Q_COUNT];
    char err[512];
};

/* ---- states ---- */

static const char *const dstate_names[] = {"pending", "inflight", "sent", "failed", "dead",
                                           "deferred"};

const char *hr_dstate_name(hr_dstate s)
{
    return (unsigned)s < HR_ARRAY_LEN(dstate_names) ? dstate_names[s] : "unknown";
}

int hr_dstate_parse(const char *name, hr_dstate *out)
{
    for (size_t i = 0; name && i < HR_ARRAY_LEN(dstate_names); i++) {
        if (strcmp(name, dstate_names[i]) == 0) {
            *out = (hr_dstate)i;
            return 1;
        }
    }
    return 0;
}

/* ---- errors ---- */

static herald_status fail(hr_store *s, herald_status st, const char *fmt, ...) HERALD_PRINTF(3, 4);
static herald_status fail(hr_store *s, herald_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    /* One line, whatever SQLite or a caller's string put in it. */
    for (char *p = s->err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return st;
}

/* A failed SQLite call: "<file>: cannot <doing>: <SQLite's reason>". */
static herald_status db_fail(hr_store *s, const char *doing)
{
    int rc = sqlite3_errcode(s->db);
    return fail(s, rc == SQLITE_NOMEM ? HERALD_E_NOMEM : HERALD_E_IO, "%s: cannot %s: %s",
                s->path, doing, sqlite3_errmsg(s->db));
}

const char *hr_store_path(const hr_store *s)
{
    return s->path;
}

const char *hr_store_error(const hr_store *s)
{
    return s ? s->err : "no database";
}

/* ---- statements ---- */

static sqlite3_stmt *prep(hr_store *s, int which, const char *doing)
{
    if (!s->q[which] && sqlite3_prepare_v3(s->db, sql_text[which], -1, SQLITE_PREPARE_PERSISTENT,
                                           &s->q[which], NULL) != SQLITE_OK) {
        s->q[which] = NULL;
        db_fail(s, doing);
        return NULL;
    }
    s->bind_rc = SQLITE_OK;
    return s->q[which];
}

/* Bind failures are kept and reported by the next step(), so callers bind
 * without checking each call. Strings are bound without copying: they only
 * have to live until done(), which clears the bindings. */
static void note_bind(hr_store *s, int rc)
{
    if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK)
        s->bind_rc = rc;
}

static void bind_int(hr_store *s, sqlite3_stmt *q, int i, long long v)
{
    note_bind(s, sqlite3_bind_int64(q, i, v));
}

static void bind_text(hr_store *s, sqlite3_stmt *q, int i, const char *v)
{
    note_bind(s, v ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i));
}

static void bind_textn(hr_store *s, sqlite3_stmt *q, int i, const char *v, size_t n)
{
    note_bind(s, v ? sqlite3_bind_text(q, i, v, (int)n, SQLITE_STATIC) : sqlite3_bind_null(q, i));
}

static int step(hr_store *s, sqlite3_stmt *q)
{
    if (s->bind_rc != SQLITE_OK)
        return s->bind_rc;
    return sqlite3_step(q);
}

/* Reset after use: a statement left mid-way keeps a read snapshot open, which
 * hides other connections' commits and blocks WAL checkpoints. */
static void done(sqlite3_stmt *q)
{
    if (q) {
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
    }
}

/* Run a statement that returns no rows. */
static herald_status exec_q(hr_store *s, int which, const char *doing)
{
    sqlite3_stmt *q = prep(s, which, doing);
    if (!q)
        return HERALD_E_IO;
    int rc = step(s, q);
    herald_status st = rc == SQLITE_DONE || rc == SQLITE_ROW ? HERALD_OK : db_fail(s, doing);
    done(q);
    return st;
}

/* Cleanup after an error: the first error's message is the one worth keeping. */
static void exec_quiet(hr_store *s, int which)
{
    sqlite3_stmt *q = s->q[which];
    if (!q && sqlite3_prepare_v3(s->db, sql_text[which], -1, SQLITE_PREPARE_PERSISTENT, &q,
                                 NULL) != SQLITE_OK)
        return;
    s->q[which] = q;
    sqlite3_step(q);
    done(q);
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    if (sqlite3_column_type(q, i) == SQLITE_NULL)
        return NULL;
    return hr_strdup((const char *)sqlite3_column_text(q, i));
}

static void col_id(sqlite3_stmt *q, int i, char out[37])
{
    const char *v = (const char *)sqlite3_column_text(q, i);
    snprintf(out, 37, "%s", v ? v : "");
}

/* ---- transactions ---- */

herald_status hr_store_begin(hr_store *s)
{
    if (s->in_tx)
        return fail(s, HERALD_E_INVALID, "%s: a transaction is already open (a bug in herald)",
                    s->path);
    herald_status st = exec_q(s, Q_BEGIN, "start a transaction");
    if (st == HERALD_OK)
        s->in_tx = 1;
    return st;
}

herald_status hr_store_begin_batch(hr_store *s)
{
    herald_status st = hr_store_begin(s);
    if (st == HERALD_OK)
        s->batch = 1;
    return st;
}

herald_status hr_store_commit(hr_store *s)
{
    if (!s->in_tx)
        return fail(s, HERALD_E_INVALID, "%s: no transaction to commit (a bug in herald)",
                    s->path);
    s->in_tx = 0;
    s->batch = 0;
    if (s->spoiled) {
        s->spoiled = 0;
        if (!sqlite3_get_autocommit(s->db))
            exec_quiet(s, Q_ROLLBACK);
        return HERALD_E_IO; /* s->err still holds the failed call's message */
    }
    if (sqlite3_get_autocommit(s->db))
        return fail(s, HERALD_E_IO, "%s: the transaction was rolled back after an earlier error",
                    s->path);
    herald_status st = exec_q(s, Q_COMMIT, "commit");
    if (st != HERALD_OK && !sqlite3_get_autocommit(s->db))
        exec_quiet(s, Q_ROLLBACK);
    return st;
}

void hr_store_rollback(hr_store *s)
{
    if (!s->in_tx)
        return;
    s->in_tx = 0;
    s->batch = 0;
    s->spoiled = 0;
    if (!sqlite3_get_autocommit(s->db))
        exec_quiet(s, Q_ROLLBACK);
}

/* Every write call is atomic: inside the caller's transaction it runs under a
 * savepoint (a failed call leaves no half-written rows in the batch), else in
 * a transaction of its own. */
static herald_status write_begin(hr_store *s, const char *doing)
{
    if (!s->in_tx)
        return exec_q(s, Q_BEGIN, doing);
    if (s->spoiled)
        return HERALD_E_IO; /* keeps the first failure's message */
    if (sqlite3_get_autocommit(s->db))
        return fail(s, HERALD_E_IO, "%s: cannot %s: the transaction was rolled back after an "
                    "earlier error", s->path, doing);
    /* A savepoint copies every page the call touches first; in a batch the
     * whole transaction is the unit instead. */
    return s->batch ? HERALD_OK : exec_q(s, Q_SAVEPOINT, doing);
}

static herald_status write_end(hr_store *s, herald_status st, const char *doing)
{
    if (s->in_tx && s->batch) {
        if (st != HERALD_OK)
            s->spoiled = 1;
        return st;
    }
    if (s->in_tx) {
        if (st != HERALD_OK)
            exec_quiet(s, Q_ROLLBACK_TO);
        if (!sqlite3_get_autocommit(s->db))
            exec_quiet(s, Q_RELEASE);
        return st;
    }
    if (st == HERALD_OK)
        st = exec_q(s, Q_COMMIT, doing);
    if (st != HERALD_OK && !sqlite3_get_autocommit(s->db))
        exec_quiet(s, Q_ROLLBACK);
    return st;
}

/* ---- open, schema ---- */

static herald_status pragma_int(hr_store *s, const char *pragma, int *out, const char *doing)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, pragma, -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, doing);
    herald_status st = HERALD_OK;
    if (sqlite3_step(q) == SQLITE_ROW)
        *out = sqlite3_column_int(q, 0);
    else
        st = db_fail(s, doing); /* before finalize, which may clear the message */
    sqlite3_finalize(q);
    return st;
}

static herald_status exec_sql(hr_store *s, const char *sql, const char *doing)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, doing);
    return HERALD_OK;
}

static herald_status set_wal(hr_store *s, int memory)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "switch to WAL mode");
    herald_status st = HERALD_OK;
    if (sqlite3_step(q) != SQLITE_ROW) {
        st = db_fail(s, "switch to WAL mode");
    } else {
        const char *mode = (const char *)sqlite3_column_text(q, 0);
        /* An in-memory database has no WAL; anything else must, or readers
         * would block writers. */
        if (!memory && (!mode || strcmp(mode, "wal") != 0))
            st = fail(s, HERALD_E_IO, "%s: cannot switch to WAL mode (the journal mode stays "
                      "'%s'); put the database on a local file system", s->path,
                      mode ? mode : "?");
    }
    sqlite3_finalize(q);
    return st;
}

static herald_status too_new(hr_store *s, int version)
{
    return fail(s, HERALD_E_UNSUPPORTED, "%s: database schema version %d is newer than this "
                "herald supports (%d); upgrade herald", s->path, version, SCHEMA_VERSION);
}

static herald_status migrate(hr_store *s)
{
    int version = 0;
    herald_status st = pragma_int(s, "PRAGMA user_version", &version, "read the schema version");
    if (st != HERALD_OK)
        return st;
    if (version > SCHEMA_VERSION)
        return too_new(s, version);
    if (version == SCHEMA_VERSION)
        return HERALD_OK; /* the usual case takes no write lock */
    if ((st = exec_q(s, Q_BEGIN, "start the schema upgrade")) != HERALD_OK)
        return st;
    /* Another process may have migrated while we waited for the lock. */
    st = pragma_int(s, "PRAGMA user_version", &version, "read the schema version");
    if (st == HERALD_OK && version > SCHEMA_VERSION)
        st = too_new(s, version);
    for (; st == HERALD_OK && version < SCHEMA_VERSION; version++) {
        char doing[64];
        snprintf(doing, sizeof doing, "upgrade the schema to version %d", version + 1);
        st = exec_sql(s, migrations[version], doing);
    }
    if (st == HERALD_OK) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        st = exec_sql(s, sql, "record the schema version");
    }
    if (st == HERALD_OK)
        st = exec_q(s, Q_COMMIT, "commit the schema upgrade");
    if (st != HERALD_OK && !sqlite3_get_autocommit(s->db))
        exec_quiet(s, Q_ROLLBACK);
    return st;
}

/* The queue holds message bodies and addresses: the file is created private,
 * whatever the umask. SQLite gives its -wal and -shm files the same mode. */
static herald_status create_private(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return HERALD_OK;
        snprintf(err, errlen, "%s: cannot create the database: %s", path, strerror(errno));
        return HERALD_E_IO;
    }
    herald_status st = HERALD_OK;
    hr_give_to_dir_owner(fd, path);
    if (fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "%s: cannot make the database private: %s", path, strerror(errno));
        st = HERALD_E_IO;
    }
    close(fd);
    return st;
}

static void store_free(hr_store *s)
{
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(s->q[i]);
    /* Closing rolls back an open transaction. */
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static int process_id(pid_t pid, char *out, size_t outlen);

/* SQLite counts every allocation under a global mutex unless told not to,
 * which must happen before it initialises. Another user of SQLite in the same
 * process may have initialised it first; then the setting stays as it was. */
static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

herald_status hr_store_open(const char *path, hr_store **out, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
    *out = NULL;
    if (!path || !*path) {
        snprintf(err, errlen, "no database file given");
        return HERALD_E_INVALID;
    }
    int memory = strcmp(path, ":memory:") == 0;
    herald_status st;
    if (!memory && (st = create_private(path, err, errlen)) != HERALD_OK)
        return st;
    hr_store *s = hr_calloc(1, sizeof *s);
    s->path = hr_strdup(path);
    if (!process_id(getpid(), s->owner, sizeof s->owner))
        snprintf(s->owner, sizeof s->owner, "?/%ld/0", (long)getpid());
    /* One connection per thread, so SQLite's own mutexes are dead weight. */
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        st = s->db ? db_fail(s, "open the database")
                   : fail(s, HERALD_E_NOMEM, "%s: cannot open the database: out of memory", path);
        goto fail;
    }
    sqlite3_busy_timeout(s->db, HR_STORE_BUSY_MS);
    int version = 0;
    /* Refuse a newer schema before changing anything in the file. */
    if ((st = pragma_int(s, "PRAGMA user_version", &version, "read the database")) != HERALD_OK)
        goto fail;
    if (version > SCHEMA_VERSION) {
        st = too_new(s, version);
        goto fail;
    }
    if ((st = set_wal(s, memory)) != HERALD_OK ||
        (st = exec_sql(s, "PRAGMA synchronous=" HR_STORE_SYNCHRONOUS, "set synchronous mode")) !=
            HERALD_OK ||
        (st = exec_sql(s, "PRAGMA foreign_keys=ON", "enable foreign keys")) != HERALD_OK ||
        (st = exec_sql(s, "PRAGMA temp_store=MEMORY", "set temp_store")) != HERALD_OK ||
        (st = migrate(s)) != HERALD_OK)
        goto fail;
    *out = s;
    return HERALD_OK;
fail:
    snprintf(err, errlen, "%s", s->err);
    store_free(s);
    return st;
}

void hr_store_autocheckpoint(hr_store *s, int pages)
{
    sqlite3_wal_autocheckpoint(s->db, pages);
}

herald_status hr_store_checkpoint(hr_store *s)
{
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? HERALD_OK : db_fail(s, "checkpoint the WAL");
}

void hr_store_close(hr_store *s)
{
    if (s)
        store_free(s);
}

/* ---- submission ---- */

/* The fields as one JSON object, in the given order; NULL when one cannot be
 * represented (invalid UTF-8, or a name given twice). */
static char *fields_json(const herald_event *ev)
{
    json_t *o = json_object();
    for (size_t i = 0; i < ev->nfields; i++) {
        json_t *v = json_string(ev->fields[i].value ? ev->fields[i].value : "");
        if (!v || !ev->fields[i].name || json_object_get(o, ev->fields[i].name) ||
            json_object_set_new(o, ev->fields[i].name, v) != 0) {
            json_decref(v);
            json_decref(o);
            return NULL;
        }
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static herald_status insert_event(hr_store *s, const herald_event *ev, const char *fields)
{
    sqlite3_stmt *q = prep(s, Q_INSERT_EVENT, "store the event");
    if (!q)
        return HERALD_E_IO;
    bind_text(s, q, 1, ev->id);
    bind_text(s, q, 2, ev->type);
    bind_int(s, q, 3, ev->severity);
    bind_text(s, q, 4, ev->title);
    bind_text(s, q, 5, ev->body);
    bind_text(s, q, 6, ev->source);
    bind_text(s, q, 7, ev->user);
    bind_text(s, q, 8, ev->idempotency_key);
    bind_text(s, q, 9, ev->data);
    bind_text(s, q, 10, fields);
    bind_int(s, q, 11, ev->created_ms);
    bind_text(s, q, 12, ev->tenant);
    herald_status st = step(s, q) == SQLITE_DONE ? HERALD_OK : db_fail(s, "store the event");
    done(q);
    return st;
}

static herald_status insert_delivery(hr_store *s, const herald_event *ev, hr_delivery_new *d)
{
    sqlite3_stmt *q = prep(s, Q_INSERT_DELIVERY, "store a delivery");
    if (!q)
        return HERALD_E_IO;
    bind_text(s, q, 1, ev->id);
    bind_text(s, q, 2, d->channel);
    bind_text(s, q, 3, d->recipient);
    bind_text(s, q, 4, d->address);
    bind_int(s, q, 5, d->state);
    bind_int(s, q, 6, d->next_at);
    bind_int(s, q, 7, ev->created_ms);
    if (d->state == HR_D_INFLIGHT) {
        bind_int(s, q, 8, d->lease_until);
        bind_text(s, q, 9, s->owner);
    }
    herald_status st = step(s, q) == SQLITE_DONE ? HERALD_OK : db_fail(s, "store a delivery");
    done(q);
    d->id = st == HERALD_OK ? sqlite3_last_insert_rowid(s->db) : 0;
    return st;
}

/* 1 and the original's id in ev->id when the key was used within the window. */
static herald_status find_duplicate(hr_store *s, herald_event *ev, long long window_ms, int *found)
{
    *found = 0;
    sqlite3_stmt *q = prep(s, Q_IDEMPOTENT, "check the idempotency key");
    if (!q)
        return HERALD_E_IO;
    bind_text(s, q, 1, ev->idempotency_key);
    bind_int(s, q, 2, ev->created_ms - window_ms);
    herald_status st = HERALD_OK;
    int rc = step(s, q);
    if (rc == SQLITE_ROW) {
        col_id(q, 0, ev->id);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = db_fail(s, "check the idempotency key");
    }
    done(q);
    return st;
}

herald_status hr_store_submit(hr_store *s, herald_event *ev, hr_delivery_new *d, size_t nd,
                              long long window_ms, int *duplicate)
{
    return hr_store_submit_routed(s, ev, d, nd, window_ms, duplicate, NULL);
}

static herald_status set_trail(hr_store *s, const herald_event *ev, const char *trail)
{
    sqlite3_stmt *q = prep(s, Q_TRAIL_SET, "store the routing trail");
    if (!q)
        return HERALD_E_IO;
    bind_text(s, q, 1, ev->id);
    bind_text(s, q, 2, trail);
    herald_status st = step(s, q) == SQLITE_DONE ? HERALD_OK : db_fail(s, "store the routing trail");
    done(q);
    return st;
}

herald_status hr_store_submit_routed(hr_store *s, herald_event *ev, hr_delivery_new *d, size_t nd,
                                     long long window_ms, int *duplicate, const char *trail)
{
    int dup = 0;
    if (duplicate)
        *duplicate = 0;
    if (!ev->type || !ev->title)
        return fail(s, HERALD_E_INVALID, "cannot store an event without a type and a title "
                    "(a bug in herald)");
    for (size_t i = 0; i < nd; i++)
        if (!d[i].channel || (d[i].state != HR_D_PENDING && d[i].state != HR_D_DEFERRED &&
                              (d[i].state != HR_D_INFLIGHT || d[i].lease_until <= 0)))
            return fail(s, HERALD_E_INVALID, "cannot store delivery %zu: it needs a channel and "
                        "the state pending, deferred, or in flight with a lease (a bug in herald)",
                        i + 1);
    /* Accept an event nobody stamped rather than store it without id or time. */
    if (!ev->id[0])
        hr_new_id(ev->id);
    if (!ev->created_ms) {
        ev->created_ms = hr_now_ms();
        hr_rfc3339(ev->created_ms, ev->timestamp, sizeof ev->timestamp);
    }
    char *fields = fields_json(ev);
    if (!fields)
        return fail(s, HERALD_E_INVALID, "cannot store event %s: its fields are not unique "
                    "names with UTF-8 values", ev->id);
    herald_status st = write_begin(s, "start storing the event");
    if (st != HERALD_OK) {
        free(fields);
        return st;
    }
    /* Checked inside the write transaction, so two processes submitting the
     * same key at once cannot both store it. A window of 0 turns the check off. */
    if (ev->idempotency_key && window_ms > 0)
        st = find_duplicate(s, ev, window_ms, &dup);
    if (st == HERALD_OK && !dup) {
        st = insert_event(s, ev, fields);
        if (st == HERALD_OK && trail)
            st = set_trail(s, ev, trail);
        for (size_t i = 0; i < nd && st == HERALD_OK; i++)
            st = insert_delivery(s, ev, &d[i]);
    }
    free(fields);
    st = write_end(s, st, "commit the event");
    if (st == HERALD_OK && duplicate)
        *duplicate = dup;
    return st;
}

static herald_status parse_fields(hr_store *s, const char *text, herald_event *ev)
{
    json_t *o = json_loads(text ? text : "{}", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return fail(s, HERALD_E_PROTOCOL, "%s: event %s has damaged fields", s->path, ev->id);
    }
    ev->fields = hr_calloc(json_object_size(o), sizeof *ev->fields);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        ev->fields[ev->nfields].name = hr_strdup(key);
        ev->fields[ev->nfields].value = hr_strdup(json_is_string(v) ? json_string_value(v) : "");
        ev->nfields++;
    }
    json_decref(o);
    return HERALD_OK;
}

/* The event in Q_EVENT's columns c, c + 1, ... of the current row. */
static herald_event *row_event(hr_store *s, sqlite3_stmt *q, int c)
{
    herald_event *ev = hr_calloc(1, sizeof *ev);
    col_id(q, c, ev->id);
    ev->type = col_dup(q, c + 1);
    ev->severity = (herald_severity)sqlite3_column_int(q, c + 2);
    ev->title = col_dup(q, c + 3);
    ev->body = col_dup(q, c + 4);
    ev->source = col_dup(q, c + 5);
    ev->user = col_dup(q, c + 6);
    ev->idempotency_key = col_dup(q, c + 7);
    ev->data = col_dup(q, c + 8);
    ev->created_ms = sqlite3_column_int64(q, c + 10);
    ev->tenant = col_dup(q, c + 11);
    hr_rfc3339(ev->created_ms, ev->timestamp, sizeof ev->timestamp);
    if (parse_fields(s, (const char *)sqlite3_column_text(q, c + 9), ev) != HERALD_OK) {
        hr_event_free(ev);
        return NULL;
    }
    return ev;
}

herald_event *hr_store_event(hr_store *s, const char *id)
{
    sqlite3_stmt *q = prep(s, Q_EVENT, "read the event");
    if (!q)
        return NULL;
    bind_text(s, q, 1, id);
    int rc = step(s, q);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            fail(s, HERALD_E_NOT_FOUND, "no event %s", id ? id : "(null)");
        else
            db_fail(s, "read the event");
        done(q);
        return NULL;
    }
    herald_event *ev = row_event(s, q, 0);
    done(q);
    return ev;
}

/* ---- dispatch ---- */

typedef struct claim_sort {
    hr_claim c;
    long long next_at;
    herald_event *ev; /* hr_store_claim_channel_events() only */
} claim_sort;

static int claim_cmp(const void *a, const void *b)
{
    const claim_sort *x = a, *y = b;
    if (x->next_at != y->next_at)
        return x->next_at < y->next_at ? -1 : 1;
    return x->c.id < y->c.id ? -1 : x->c.id > y->c.id;
}

/* The skip list as a JSON array for json_each(); NULL when empty. */
static char *skip_json(const char *const *skip)
{
    if (!skip || !skip[0])
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; skip[i]; i++)
        json_array_append_new(a, json_string(skip[i]));
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

static herald_status claim(hr_store *s, long long now, long long lease_ms, size_t max,
                           const char *const *skip, const char *event_id, hr_claim **out,
                           size_t *n)
{
    *out = NULL;
    *n = 0;
    if (max == 0)
        return HERALD_OK;
    herald_status st = write_begin(s, "start claiming deliveries");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = prep(s, event_id ? Q_CLAIM_EVENT : Q_CLAIM, "claim deliveries");
    if (!q)
        return write_end(s, HERALD_E_IO, "claim deliveries");
    char *skips = skip_json(skip);
    bind_int(s, q, 1, now);
    bind_int(s, q, 2, lease_ms);
    bind_int(s, q, 3, max > (size_t)INT64_MAX ? INT64_MAX : (long long)max);
    bind_text(s, q, 9, s->owner);
    bind_text(s, q, 4, skips);
    if (event_id)
        bind_text(s, q, 5, event_id);
    claim_sort *tmp = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = step(s, q)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : (max < 64 ? max : 64);
            tmp = hr_realloc(tmp, cap * sizeof *tmp);
        }
        claim_sort *t = &tmp[len++];
        memset(t, 0, sizeof *t);
        t->c.id = sqlite3_column_int64(q, 0);
        col_id(q, 1, t->c.event_id);
        t->c.channel = col_dup(q, 2);
        t->c.recipient = col_dup(q, 3);
        t->c.address = col_dup(q, 4);
        t->c.attempts = sqlite3_column_int(q, 5);
        t->c.created_ms = sqlite3_column_int64(q, 6);
        t->next_at = sqlite3_column_int64(q, 7);
    }
    if (rc != SQLITE_DONE)
        st = db_fail(s, "claim deliveries");
    done(q);
    free(skips);
    st = write_end(s, st, "commit the claims");
    if (st != HERALD_OK) {
        /* Rolled back: nothing was claimed. */
        for (size_t i = 0; i < len; i++) {
            free(tmp[i].c.channel);
            free(tmp[i].c.recipient);
            free(tmp[i].c.address);
        }
        free(tmp);
        return st;
    }
    if (len == 0) {
        free(tmp);
        return HERALD_OK;
    }
    /* RETURNING comes in no particular order. */
    qsort(tmp, len, sizeof *tmp, claim_cmp);
    hr_claim *c = hr_malloc(len * sizeof *c);
    for (size_t i = 0; i < len; i++)
        c[i] = tmp[i].c;
    free(tmp);
    *out = c;
    *n = len;
    return HERALD_OK;
}

herald_status hr_store_claim(hr_store *s, long long now, long long lease_ms, size_t max,
                             const char *const *skip, const char *event_id, hr_claim **out,
                             size_t *n)
{
    return claim(s, now, lease_ms, max, skip, event_id, out, n);
}

herald_status hr_store_claim_channel_events(hr_store *s, const char *channel, long long now,
                                            long long lease_ms, size_t max, hr_claim **out,
                                            herald_event ***evs, size_t *n)
{
    *out = NULL;
    *evs = NULL;
    *n = 0;
    if (max == 0)
        return HERALD_OK;
    herald_status st = write_begin(s, "start claiming deliveries");
    if (st != HERALD_OK)
        return st;
    claim_sort *c = NULL;
    herald_event **e = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *q = prep(s, Q_CLAIM_SCAN, "claim deliveries");
    if (!q)
        st = HERALD_E_IO;
    if (q) {
        bind_text(s, q, 1, channel);
        bind_int(s, q, 2, now);
        bind_int(s, q, 3, max > (size_t)INT64_MAX ? INT64_MAX : (long long)max);
        int rc;
        while ((rc = step(s, q)) == SQLITE_ROW) {
            if (len == cap) {
                cap = cap ? cap * 2 : (max < 64 ? max : 64);
                c = hr_realloc(c, cap * sizeof *c);
            }
            hr_claim *x = &c[len].c;
            memset(&c[len], 0, sizeof c[len]);
            x->id = sqlite3_column_int64(q, 0);
            col_id(q, 1, x->event_id);
            x->channel = col_dup(q, 2);
            x->recipient = col_dup(q, 3);
            x->address = col_dup(q, 4);
            x->attempts = sqlite3_column_int(q, 5);
            x->created_ms = sqlite3_column_int64(q, 6);
            c[len].next_at = sqlite3_column_int64(q, 7);
            /* A delivery whose event is gone is claimed all the same: the
             * dispatcher records that (e[len] NULL) rather than skip it. */
            c[len].ev = sqlite3_column_type(q, 8) == SQLITE_NULL ? NULL : row_event(s, q, 8);
            len++;
        }
        if (rc != SQLITE_DONE)
            st = db_fail(s, "claim deliveries");
        done(q);
    }
    /* Marked once the scan is over: rows are not changed under a running read. */
    sqlite3_stmt *m = st == HERALD_OK && len ? prep(s, Q_CLAIM_MARK, "claim deliveries") : NULL;
    if (st == HERALD_OK && len && !m)
        st = HERALD_E_IO;
    for (size_t i = 0; m && st == HERALD_OK && i < len; i++) {
        bind_int(s, m, 1, c[i].c.id);
        bind_int(s, m, 2, now + lease_ms);
        bind_int(s, m, 3, now);
        bind_text(s, m, 4, s->owner);
        if (step(s, m) != SQLITE_DONE)
            st = db_fail(s, "claim deliveries");
        done(m);
    }
    st = write_end(s, st, "commit the claims");
    if (st != HERALD_OK) { /* rolled back: nothing was claimed */
        for (size_t i = 0; i < len; i++) {
            free(c[i].c.channel);
            free(c[i].c.recipient);
            free(c[i].c.address);
            hr_event_free(c[i].ev);
        }
        free(c);
        return st;
    }
    if (len == 0) {
        free(c);
        return HERALD_OK;
    }
    /* Chosen by when they are due (expired leases count from their lease),
     * handed out by when they were meant to go, as claim() does. */
    qsort(c, len, sizeof *c, claim_cmp);
    hr_claim *v = hr_malloc(len * sizeof *v);
    e = hr_malloc(len * sizeof *e);
    for (size_t i = 0; i < len; i++) {
        v[i] = c[i].c;
        e[i] = c[i].ev;
    }
    free(c);
    *out = v;
    *evs = e;
    *n = len;
    return HERALD_OK;
}

herald_status hr_store_claim_delivery(hr_store *s, long long id, long long now,
                                      long long lease_ms, int *claimed)
{
    *claimed = 0;
    herald_status st = write_begin(s, "start claiming a delivery");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = prep(s, Q_CLAIM_ONE, "claim a delivery");
    if (!q)
        return write_end(s, HERALD_E_IO, "claim a delivery");
    bind_int(s, q, 1, id);
    bind_int(s, q, 2, now);
    bind_int(s, q, 3, lease_ms);
    bind_text(s, q, 9, s->owner);
    if (step(s, q) != SQLITE_DONE)
        st = db_fail(s, "claim a delivery");
    else
        *claimed = sqlite3_changes(s->db) == 1;
    done(q);
    st = write_end(s, st, "commit the claim");
    if (st != HERALD_OK)
        *claimed = 0;
    return st;
}

/* "boot id/pid/start time" of a process: unique across pid reuse and reboots. */
static int process_id(pid_t pid, char *out, size_t outlen)
{
    char path[64], buf[1024], boot[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Field 22 (start time) counts from after the command name, which may
     * hold spaces and parentheses: start at the last ')'. */
    char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return 0;
    unsigned long long start = strtoull(p + 1, NULL, 10);
    if ((f = fopen("/proc/sys/kernel/random/boot_id", "r"))) {
        if (!fgets(boot, sizeof boot, f))
            boot[0] = '\0';
        fclose(f);
        boot[strcspn(boot, "\n")] = '\0';
    }
    snprintf(out, outlen, "%s/%ld/%llu", boot, (long)pid, start);
    return 1;
}

/* Whether the process that wrote owner still runs (same boot, same pid, same
 * start time). Unknown formats count as alive: their leases simply expire. */
static int owner_alive(const char *owner)
{
    const char *slash = strchr(owner, '/');
    if (!slash)
        return 1;
    char *end;
    long pid = strtol(slash + 1, &end, 10);
    if (*end != '/' || pid <= 0)
        return 1;
    char now[96];
    if (!process_id((pid_t)pid, now, sizeof now))
        return 0; /* no such process */
    return strcmp(now, owner) == 0;
}

herald_status hr_store_reclaim_orphans(hr_store *s, long long now, size_t *n)
{
    *n = 0;
    sqlite3_stmt *q = prep(s, Q_LEASE_OWNERS, "list lease owners");
    if (!q)
        return HERALD_E_IO;
    char **dead = NULL;
    size_t ndead = 0;
    int rc;
    while ((rc = step(s, q)) == SQLITE_ROW) {
        const char *owner = (const char *)sqlite3_column_text(q, 0);
        if (owner && strcmp(owner, s->owner) != 0 && !owner_alive(owner)) {
            dead = hr_realloc(dead, (ndead + 1) * sizeof *dead);
            dead[ndead++] = hr_strdup(owner);
        }
    }
    herald_status st = rc == SQLITE_DONE ? HERALD_OK : db_fail(s, "list lease owners");
    done(q);
    for (size_t i = 0; i < ndead && st == HERALD_OK; i++) {
        if ((st = write_begin(s, "take back a dead process's claims")) != HERALD_OK)
            break;
        if (!(q = prep(s, Q_RECLAIM, "take back a dead process's claims"))) {
            st = write_end(s, HERALD_E_IO, "take back a dead process's claims");
            break;
        }
        bind_text(s, q, 1, dead[i]);
        bind_int(s, q, 2, now);
        if (step(s, q) != SQLITE_DONE)
            st = db_fail(s, "take back a dead process's claims");
        else
            *n += (size_t)sqlite3_changes(s->db);
        done(q);
        st = write_end(s, st, "commit taking back the claims");
    }
    for (size_t i = 0; i < ndead; i++)
        free(dead[i]);
    free(dead);
    return st;
}

herald_status hr_store_channels_due(hr_store *s, char ***out)
{
    size_t n = 0;
    *out = hr_calloc(1, sizeof **out);
    sqlite3_stmt *q = prep(s, Q_NEXT_CHANNEL, "list the channels with queued deliveries");
    if (!q)
        return HERALD_E_IO;
    char *last = hr_strdup("");
    herald_status st = HERALD_OK;
    for (;;) {
        bind_text(s, q, 1, last);
        int rc = step(s, q);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            st = db_fail(s, "list the channels with queued deliveries");
            break;
        }
        char *name = col_dup(q, 0);
        done(q);
        free(last);
        last = hr_strdup(name);
        *out = hr_realloc(*out, (n + 2) * sizeof **out);
        (*out)[n++] = name;
        (*out)[n] = NULL;
    }
    done(q);
    free(last);
    if (st != HERALD_OK) {
        hr_strv_free(*out);
        *out = NULL;
    }
    return st;
}

void hr_claims_free(hr_claim *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].channel);
        free(c[i].recipient);
        free(c[i].address);
    }
    free(c);
}

/* Bytes of s to keep so that at most max are kept and no UTF-8 sequence is cut. */
static size_t utf8_prefix(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

herald_status hr_store_finish(hr_store *s, const hr_attempt *a, hr_dstate state, long long next_at)
{
    if ((unsigned)state >= HR_ARRAY_LEN(dstate_names) || state == HR_D_INFLIGHT)
        return fail(s, HERALD_E_INVALID, "cannot finish delivery %lld in state %s (a bug in "
                    "herald)", a->delivery_id, hr_dstate_name(state));
    herald_status st = write_begin(s, "start recording the attempt");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = prep(s, Q_FINISH, "record the attempt");
    if (!q)
        return write_end(s, HERALD_E_IO, "record the attempt");
    bind_int(s, q, 1, a->delivery_id);
    bind_int(s, q, 2, state);
    bind_int(s, q, 3, next_at);
    bind_int(s, q, 4, a->status);
    bind_int(s, q, 5, a->code);
    bind_text(s, q, 6, a->detail);
    bind_int(s, q, 7, hr_now_ms());
    if (step(s, q) != SQLITE_DONE)
        st = db_fail(s, "record the attempt");
    else if (sqlite3_changes(s->db) == 0)
        st = fail(s, HERALD_E_NOT_FOUND, "%s: no delivery %lld to record an attempt for",
                  s->path, a->delivery_id);
    done(q);
    if (st == HERALD_OK && (q = prep(s, Q_ATTEMPT, "record the attempt")) == NULL)
        st = HERALD_E_IO;
    if (st == HERALD_OK) {
        bind_int(s, q, 1, a->delivery_id);
        bind_int(s, q, 2, a->started_ms);
        bind_int(s, q, 3, a->duration_ms);
        bind_int(s, q, 4, a->verdict);
        bind_int(s, q, 5, a->status);
        bind_int(s, q, 6, a->code);
        bind_text(s, q, 7, a->detail);
        if (a->excerpt)
            bind_textn(s, q, 8, a->excerpt, utf8_prefix(a->excerpt, HR_EXCERPT_MAX));
        if (step(s, q) != SQLITE_DONE)
            st = db_fail(s, "record the attempt");
        done(q);
    }
    return write_end(s, st, "commit the attempt");
}

herald_status hr_store_release(hr_store *s, const long long *ids, size_t n)
{
    if (n == 0)
        return HERALD_OK;
    herald_status st = write_begin(s, "start releasing deliveries");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = prep(s, Q_RELEASE_ONE, "release deliveries");
    if (!q)
        return write_end(s, HERALD_E_IO, "release deliveries");
    long long now = hr_now_ms();
    /* A delivery no longer in flight was finished or reclaimed; leave it. */
    for (size_t i = 0; i < n && st == HERALD_OK; i++) {
        bind_int(s, q, 1, ids[i]);
        bind_int(s, q, 2, now);
        if (step(s, q) != SQLITE_DONE)
            st = db_fail(s, "release deliveries");
        done(q);
    }
    return write_end(s, st, "commit the release");
}

static herald_status requeue_one(hr_store *s, long long id, long long now, size_t *n)
{
    sqlite3_stmt *q = prep(s, Q_REQUEUE_ONE, "re-queue the delivery");
    if (!q)
        return HERALD_E_IO;
    bind_int(s, q, 1, id);
    bind_int(s, q, 2, now);
    herald_status st = step(s, q) == SQLITE_DONE ? HERALD_OK : db_fail(s, "re-queue the delivery");
    done(q);
    if (st != HERALD_OK)
        return st;
    if (sqlite3_changes(s->db) == 1) {
        *n = 1;
        return HERALD_OK;
    }
    /* Nothing changed: say why. */
    if (!(q = prep(s, Q_DELIVERY_STATE, "re-queue the delivery")))
        return HERALD_E_IO;
    bind_int(s, q, 1, id);
    int rc = step(s, q);
    if (rc == SQLITE_ROW)
        st = fail(s, HERALD_E_INVALID, "delivery %lld is in flight; wait for its attempt to "
                  "finish, then re-queue it", id);
    else if (rc == SQLITE_DONE)
        st = fail(s, HERALD_E_NOT_FOUND, "no delivery %lld; see herald log for delivery ids", id);
    else
        st = db_fail(s, "re-queue the delivery");
    done(q);
    return st;
}

herald_status hr_store_requeue(hr_store *s, long long id, int all_dead, long long now, size_t *n)
{
    *n = 0;
    if (id == 0 && !all_dead)
        return fail(s, HERALD_E_INVALID, "name a delivery to re-queue, or all dead ones");
    herald_status st = write_begin(s, "start re-queuing");
    if (st != HERALD_OK)
        return st;
    if (id != 0) {
        st = requeue_one(s, id, now, n);
    } else {
        sqlite3_stmt *q = prep(s, Q_REQUEUE_DEAD, "re-queue dead deliveries");
        if (!q) {
            st = HERALD_E_IO;
        } else {
            bind_int(s, q, 1, now);
            if (step(s, q) == SQLITE_DONE)
                *n = (size_t)sqlite3_changes(s->db);
            else
                st = db_fail(s, "re-queue dead deliveries");
            done(q);
        }
    }
    st = write_end(s, st, "commit the re-queue");
    if (st != HERALD_OK)
        *n = 0;
    return st;
}

/* ---- retention ---- */

/* Delete one expired event: its attempts, its deliveries, itself. */
static herald_status prune_event(hr_store *s, const char *id, hr_prune_counts *n)
{
    static const int qs[] = {Q_PRUNE_ATTEMPTS, Q_PRUNE_DELIVERIES, Q_PRUNE_EVENT};
    size_t *counts[] = {&n->attempts, &n->deliveries, &n->events};
    for (size_t k = 0; k < HR_ARRAY_LEN(qs); k++) {
        sqlite3_stmt *q = prep(s, qs[k], "delete an expired event");
        if (!q)
            return HERALD_E_IO;
        bind_text(s, q, 1, id);
        int rc = step(s, q);
        done(q);
        if (rc != SQLITE_DONE)
            return db_fail(s, "delete an expired event");
        *counts[k] += (size_t)sqlite3_changes(s->db);
    }
    return HERALD_OK;
}

/* Delete up to max processed receipts received before before_ms; count them. */
static herald_status prune_receipts(hr_store *s, long long before_ms, size_t max, size_t *n)
{
    sqlite3_stmt *q = prep(s, Q_PRUNE_RECEIPTS, "delete old webhook receipts");
    if (!q)
        return HERALD_E_IO;
    bind_int(s, q, 1, before_ms);
    bind_int(s, q, 2, (long long)max);
    herald_status st =
        step(s, q) == SQLITE_DONE ? HERALD_OK : db_fail(s, "delete old webhook receipts");
    done(q);
    if (st == HERALD_OK)
        *n += (size_t)sqlite3_changes(s->db);
    return st;
}

herald_status hr_store_prune(hr_store *s, long long before_ms, size_t max, char cursor[37],
                             hr_prune_counts *n, int *more)
{
    *more = 0;
    if (max == 0)
        return HERALD_OK;
    char cut[16]; /* the UUIDv7 prefix of before_ms: 48 bits of milliseconds */
    snprintf(cut, sizeof cut, "%08llx-%04llx",
             ((unsigned long long)before_ms >> 16) & 0xffffffffULL,
             (unsigned long long)before_ms & 0xffffULL);
    hr_prune_counts got = {0};
    char(*ids)[37] = hr_calloc(max, sizeof *ids);
    size_t nids = 0;
    herald_status st = write_begin(s, "start deleting expired events");
    if (st != HERALD_OK) {
        free(ids);
        return st;
    }
    sqlite3_stmt *q = prep(s, Q_PRUNE_EVENTS, "find expired events");
    if (!q)
        st = HERALD_E_IO;
    if (st == HERALD_OK) {
        bind_text(s, q, 1, cursor);
        bind_text(s, q, 2, cut);
        bind_int(s, q, 3, before_ms);
        bind_int(s, q, 4, (long long)max);
        int rc = SQLITE_DONE;
        while (nids < max && (rc = step(s, q)) == SQLITE_ROW)
            col_id(q, 0, ids[nids++]);
        if (nids < max && rc != SQLITE_DONE)
            st = db_fail(s, "find expired events");
        done(q);
    }
    /* An event with a delivery still to make stays, however old; the cursor
     * passes over it. */
    for (size_t i = 0; i < nids && st == HERALD_OK; i++) {
        if (!(q = prep(s, Q_PRUNE_LIVE, "find expired events"))) {
            st = HERALD_E_IO;
            break;
        }
        bind_text(s, q, 1, ids[i]);
        int rc = step(s, q);
        done(q);
        if (rc == SQLITE_DONE)
            st = prune_event(s, ids[i], &got);
        else if (rc != SQLITE_ROW)
            st = db_fail(s, "find expired events");
    }
    if (st == HERALD_OK)
        st = prune_receipts(s, before_ms, max, &got.receipts);
    st = write_end(s, st, "commit deleting expired events");
    if (st == HERALD_OK) {
        n->events += got.events;
        n->deliveries += got.deliveries;
        n->attempts += got.attempts;
        n->receipts += got.receipts;
        if (nids)
            memcpy(cursor, ids[nids - 1], 37);
        *more = nids == max || got.receipts == max;
    }
    free(ids);
    return st;
}

/* ---- channel state ---- */

herald_status hr_store_channel_results(hr_store *s, const char *channel, int reset, int failures,
                                       int *consecutive)
{
    int count = 0;
    herald_status st = write_begin(s, "start recording the channel's result");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = prep(s, failures ? Q_CHANNEL_FAILED : Q_CHANNEL_OK,
                           "record the channel's result");
    if (!q)
        return write_end(s, HERALD_E_IO, "record the channel's result");
    bind_text(s, q, 1, channel);
    if (failures) {
        bind_int(s, q, 2, reset);
        bind_int(s, q, 3, failures);
    }
    int rc;
    while ((rc = step(s, q)) == SQLITE_ROW)
        count = sqlite3_column_int(q, 0);
    if (rc != SQLITE_DONE)
        st = db_fail(s, "record the channel's result");
    done(q);
    st = write_end(s, st, "commit the channel's result");
    if (st == HERALD_OK && consecutive)
        *consecutive = failures ? count : 0;
    return st;
}

herald_status hr_store_channel_result(hr_store *s, const char *channel, int ok, int *consecutive)
{
    return hr_store_channel_results(s, channel, ok, ok ? 0 : 1, consecutive);
}

herald_status hr_store_channel_disable(hr_store *s, const char *channel, const char *reason,
                                       long long now)
{
    herald_status st = write_begin(s, "start disabling the channel");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = prep(s, Q_CHANNEL_DISABLE, "disable the channel");
    if (!q)
        return write_end(s, HERALD_E_IO, "disable the channel");
    bind_text(s, q, 1, channel);
    bind_text(s, q, 2, reason);
    bind_int(s, q, 3, now);
    if (step(s, q) != SQLITE_DONE)
        st = db_fail(s, "disable the channel");
    done(q);
    return write_end(s, st, "commit disabling the channel");
}

herald_status hr_store_channel_enable(hr_store *s, const char *channel)
{
    herald_status st = write_begin(s, "start enabling the channel");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = prep(s, Q_CHANNEL_ENABLE, "enable the channel");
    if (!q)
        return write_end(s, HERALD_E_IO, "enable the channel");
    bind_text(s, q, 1, channel);
    if (step(s, q) != SQLITE_DONE)
        st = db_fail(s, "enable the channel");
    done(q);
    return write_end(s, st, "commit enabling the channel");
}

int hr_store_channel_disabled(hr_store *s, const char *channel, char **reason)
{
    if (reason)
        *reason = NULL;
    sqlite3_stmt *q = prep(s, Q_CHANNEL_GET, "read the channel's state");
    if (!q)
        return 0;
    bind_text(s, q, 1, channel);
    int disabled = 0;
    int rc = step(s, q);
    if (rc == SQLITE_ROW) {
        disabled = sqlite3_column_int(q, 0) != 0;
        if (disabled && reason)
            *reason = col_dup(q, 1);
    } else if (rc != SQLITE_DONE) {
        /* Reported as enabled: a channel is not silenced by a read error. */
        db_fail(s, "read the channel's state");
    }
    done(q);
    return disabled;
}

/* ---- reading ---- */

/* GLOB with only '*' special: event types never contain '?' or '[', but a
 * pattern typed by a user might, and should then match literally. */
static char *type_glob(const char *pattern)
{
    hr_buf b = {0};
    for (const char *p = pattern; *p; p++) {
        if (*p == '?')
            hr_buf_adds(&b, "[?]");
        else if (*p == '[')
            hr_buf_adds(&b, "[[]");
        else
            hr_buf_add(&b, p, 1);
    }
    if (!b.data)
        hr_buf_add(&b, "", 0);
    return b.data;
}

static void bind_named_text(hr_store *s, sqlite3_stmt *q, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(q, name);
    if (i > 0)
        bind_text(s, q, i, v);
}

static void bind_named_int(hr_store *s, sqlite3_stmt *q, const char *name, long long v)
{
    int i = sqlite3_bind_parameter_index(q, name);
    if (i > 0)
        bind_int(s, q, i, v);
}

herald_status hr_store_log(hr_store *s, const hr_log_filter *f, hr_delivery_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    hr_log_filter none = {.state = -1};
    if (!f)
        f = &none;
    int glob = f->event_type && strchr(f->event_type, '*');
    /* Built per call (this is not a hot path) so that each filter is a plain
     * term the planner can use an index for. */
    hr_buf sql = {0};
    hr_buf_adds(&sql, "SELECT d.id, d.event_id, e.type, d.channel, d.recipient, d.state, "
                "d.attempts, d.created_ms, d.updated_ms, d.next_at, d.last_status, d.last_code, "
                "d.last_detail FROM deliveries d JOIN events e ON e.id = d.event_id WHERE 1");
    if (f->channel)
        hr_buf_adds(&sql, " AND d.channel = :channel");
    if (f->event_type)
        hr_buf_adds(&sql, glob ? " AND e.type GLOB :type" : " AND e.type = :type");
    if (f->state >= 0)
        hr_buf_adds(&sql, " AND d.state = :state");
    if (f->since_ms > 0)
        hr_buf_adds(&sql, " AND d.created_ms >= :since");
    if (f->event_id)
        hr_buf_adds(&sql, " AND d.event_id = :event");
    if (f->tenant)
        hr_buf_adds(&sql, " AND e.tenant = :tenant");
    if (f->before_id > 0)
        hr_buf_adds(&sql, " AND d.id < :before");
    hr_buf_adds(&sql, " ORDER BY d.id DESC LIMIT :limit");
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, sql.data, -1, &q, NULL);
    hr_buf_free(&sql);
    if (rc != SQLITE_OK)
        return db_fail(s, "read the delivery log");
    char *pattern = glob ? type_glob(f->event_type) : NULL;
    s->bind_rc = SQLITE_OK;
    bind_named_text(s, q, ":channel", f->channel);
    bind_named_text(s, q, ":type", glob ? pattern : f->event_type);
    bind_named_int(s, q, ":state", f->state);
    bind_named_int(s, q, ":since", f->since_ms);
    bind_named_text(s, q, ":event", f->event_id);
    bind_named_text(s, q, ":tenant", f->tenant);
    bind_named_int(s, q, ":before", f->before_id);
    bind_named_int(s, q, ":limit", f->limit ? (long long)f->limit : LOG_DEFAULT_LIMIT);
    hr_delivery_row *r = NULL;
    size_t len = 0, cap = 0;
    while ((rc = step(s, q)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            r = hr_realloc(r, cap * sizeof *r);
        }
        hr_delivery_row *d = &r[len++];
        memset(d, 0, sizeof *d);
        d->id = sqlite3_column_int64(q, 0);
        col_id(q, 1, d->event_id);
        d->event_type = col_dup(q, 2);
        d->channel = col_dup(q, 3);
        d->recipient = col_dup(q, 4);
        d->state = (hr_dstate)sqlite3_column_int(q, 5);
        d->attempts = sqlite3_column_int(q, 6);
        d->created_ms = sqlite3_column_int64(q, 7);
        d->updated_ms = sqlite3_column_int64(q, 8);
        d->next_at = sqlite3_column_int64(q, 9);
        d->last_status = (herald_status)sqlite3_column_int(q, 10);
        d->last_code = (long)sqlite3_column_int64(q, 11);
        d->last_detail = col_dup(q, 12);
    }
    herald_status st = rc == SQLITE_DONE ? HERALD_OK : db_fail(s, "read the delivery log");
    sqlite3_finalize(q);
    free(pattern);
    if (st != HERALD_OK) {
        hr_delivery_rows_free(r, len);
        return st;
    }
    *out = r;
    *n = len;
    return HERALD_OK;
}

void hr_delivery_rows_free(hr_delivery_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].event_type);
        free(r[i].channel);
        free(r[i].recipient);
        free(r[i].last_detail);
    }
    free(r);
}

herald_status hr_store_attempts(hr_store *s, long long delivery_id, hr_attempt_row **out,
                                size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = prep(s, Q_ATTEMPTS, "read the attempts");
    if (!q)
        return HERALD_E_IO;
    bind_int(s, q, 1, delivery_id);
    hr_attempt_row *r = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = step(s, q)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            r = hr_realloc(r, cap * sizeof *r);
        }
        hr_attempt_row *a = &r[len++];
        a->delivery_id = sqlite3_column_int64(q, 0);
        a->started_ms = sqlite3_column_int64(q, 1);
        a->duration_ms = sqlite3_column_int64(q, 2);
        a->verdict = (herald_verdict)sqlite3_column_int(q, 3);
        a->status = (herald_status)sqlite3_column_int(q, 4);
        a->code = (long)sqlite3_column_int64(q, 5);
        a->detail = col_dup(q, 6);
        a->excerpt = col_dup(q, 7);
    }
    herald_status st = rc == SQLITE_DONE ? HERALD_OK : db_fail(s, "read the attempts");
    done(q);
    if (st != HERALD_OK) {
        hr_attempt_rows_free(r, len);
        return st;
    }
    *out = r;
    *n = len;
    return HERALD_OK;
}

void hr_attempt_rows_free(hr_attempt_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].detail);
        free(r[i].excerpt);
    }
    free(r);
}

herald_status hr_store_queue(hr_store *s, hr_queue_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = prep(s, Q_QUEUE, "read the queue");
    if (!q)
        return HERALD_E_IO;
    hr_queue_row *r = NULL;
    size_t len = 0, cap = 0;
    int rc;
    /* Rows come grouped by channel: one output row per run of a channel. */
    while ((rc = step(s, q)) == SQLITE_ROW) {
        const char *channel = (const char *)sqlite3_column_text(q, 0);
        if (!channel)
            continue;
        if (len == 0 || strcmp(r[len - 1].channel, channel) != 0) {
            if (len == cap) {
                cap = cap ? cap * 2 : 8;
                r = hr_realloc(r, cap * sizeof *r);
            }
            memset(&r[len], 0, sizeof r[len]);
            r[len++].channel = hr_strdup(channel);
        }
        int state = sqlite3_column_int(q, 1);
        if (state < 0 || state >= (int)HR_ARRAY_LEN(r->count))
            continue;
        r[len - 1].count[state] = sqlite3_column_int64(q, 2);
        if (state == HR_D_PENDING)
            r[len - 1].oldest_pending_ms = sqlite3_column_int64(q, 3);
    }
    herald_status st = rc == SQLITE_DONE ? HERALD_OK : db_fail(s, "read the queue");
    done(q);
    if (st != HERALD_OK) {
        hr_queue_rows_free(r, len);
        return st;
    }
    *out = r;
    *n = len;
    return HERALD_OK;
}

void hr_queue_rows_free(hr_queue_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        free(r[i].channel);
    free(r);
}

/* A channel's row while the statistics are gathered. */
typedef struct stats_acc {
    hr_stats_row row;
    long long ok; /* successful attempts, for the percentile */
} stats_acc;

static stats_acc *stats_find(stats_acc **acc, size_t *len, size_t *cap, const char *channel)
{
    if (!channel)
        channel = "";
    for (size_t i = 0; i < *len; i++)
        if (strcmp((*acc)[i].row.channel, channel) == 0)
            return &(*acc)[i];
    if (*len == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *acc = hr_realloc(*acc, *cap * sizeof **acc);
    }
    stats_acc *a = &(*acc)[(*len)++];
    memset(a, 0, sizeof *a);
    a->row.channel = hr_strdup(channel);
    return a;
}

static int stats_cmp(const void *a, const void *b)
{
    return strcmp(((const hr_stats_row *)a)->channel, ((const hr_stats_row *)b)->channel);
}

/* p95 by the nearest-rank method: the smallest duration that at least 95% of
 * the successful attempts are at or below, i.e. the ceil(0.95 * N)-th in
 * ascending order (1..100 ms gives 95 ms). */
static herald_status stats_p95(hr_store *s, hr_stats_row *row, long long ok, long long since_ms)
{
    if (ok <= 0)
        return HERALD_OK;
    long long rank = (95 * ok + 99) / 100;
    sqlite3_stmt *q = prep(s, Q_STATS_RANK, "compute latency percentiles");
    if (!q)
        return HERALD_E_IO;
    bind_text(s, q, 1, row->channel);
    bind_int(s, q, 2, since_ms);
    bind_int(s, q, 3, rank - 1);
    herald_status st = HERALD_OK;
    int rc = step(s, q);
    if (rc == SQLITE_ROW)
        row->p95_latency_ms = (double)sqlite3_column_int64(q, 0);
    else if (rc != SQLITE_DONE)
        st = db_fail(s, "compute latency percentiles");
    done(q);
    return st;
}

herald_status hr_store_stats(hr_store *s, long long since_ms, hr_stats_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    stats_acc *acc = NULL;
    size_t len = 0, cap = 0;
    herald_status st = HERALD_OK;
    int rc;
    /* Several reads: one snapshot keeps them consistent with each other. */
    int own_tx = !s->in_tx && sqlite3_get_autocommit(s->db);
    if (own_tx && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, "read statistics");
    sqlite3_stmt *q = prep(s, Q_STATS_DELIVERIES, "read statistics");
    if (!q) {
        st = HERALD_E_IO;
        goto out;
    }
    bind_int(s, q, 1, since_ms);
    while ((rc = step(s, q)) == SQLITE_ROW) {
        stats_acc *a = stats_find(&acc, &len, &cap, (const char *)sqlite3_column_text(q, 0));
        a->row.sent = sqlite3_column_int64(q, 1);
        a->row.failed = sqlite3_column_int64(q, 2);
        a->row.dead = sqlite3_column_int64(q, 3);
    }
    if (rc != SQLITE_DONE)
        st = db_fail(s, "read statistics");
    done(q);
    if (st != HERALD_OK)
        goto out;
    if (!(q = prep(s, Q_STATS_ATTEMPTS, "read statistics"))) {
        st = HERALD_E_IO;
        goto out;
    }
    bind_int(s, q, 1, since_ms);
    while ((rc = step(s, q)) == SQLITE_ROW) {
        stats_acc *a = stats_find(&acc, &len, &cap, (const char *)sqlite3_column_text(q, 0));
        a->row.attempts = sqlite3_column_int64(q, 1);
        a->ok = sqlite3_column_int64(q, 2);
        a->row.mean_latency_ms = sqlite3_column_double(q, 3); /* NULL (none) reads as 0 */
    }
    if (rc != SQLITE_DONE)
        st = db_fail(s, "read statistics");
    done(q);
    for (size_t i = 0; i < len && st == HERALD_OK; i++) {
        hr_stats_row *row = &acc[i].row;
        long long finished = row->sent + row->failed + row->dead;
        row->success_rate = finished ? (double)row->sent / (double)finished : 0.0;
        st = stats_p95(s, row, acc[i].ok, since_ms);
    }
out:
    if (own_tx)
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    hr_stats_row *r = len ? hr_malloc(len * sizeof *r) : NULL;
    for (size_t i = 0; i < len; i++)
        r[i] = acc[i].row;
    free(acc);
    if (st != HERALD_OK) {
        hr_stats_rows_free(r, len);
        return st;
    }
    if (len)
        qsort(r, len, sizeof *r, stats_cmp);
    *out = r;
    *n = len;
    return HERALD_OK;
}

void hr_stats_rows_free(hr_stats_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        free(r[i].channel);
    free(r);
}

/* ---- routing state ---- */

herald_status hr_store_trail(hr_store *s, const char *event_id, char **trail)
{
    *trail = NULL;
    sqlite3_stmt *q = prep(s, Q_TRAIL_GET, "read the routing trail");
    if (!q)
        return HERALD_E_IO;
    bind_text(s, q, 1, event_id);
    int rc = step(s, q);
    herald_status st = HERALD_OK;
    if (rc == SQLITE_ROW)
        *trail = col_dup(q, 0);
    else if (rc == SQLITE_DONE)
        st = fail(s, HERALD_E_NOT_FOUND, "no event %s in %s", event_id, s->path);
    else
        st = db_fail(s, "read the routing trail");
    done(q);
    return st;
}

int hr_store_route_seen(hr_store *s, const char *route, const char *key, long long window_ms,
                        long long now)
{
    sqlite3_stmt *q = prep(s, Q_SEEN_GET, "read the route's dedup state");
    if (!q)
        return 0;
    bind_text(s, q, 1, route);
    bind_text(s, q, 2, key);
    int seen = step(s, q) == SQLITE_ROW && sqlite3_column_int64(q, 0) > now - window_ms;
    done(q);
    if (seen)
        return 1;
    if ((q = prep(s, Q_SEEN_PUT, "record the route's dedup key"))) {
        bind_text(s, q, 1, route);
        bind_text(s, q, 2, key);
        bind_int(s, q, 3, now);
        if (step(s, q) != SQLITE_DONE)
            db_fail(s, "record the route's dedup key");
        done(q);
    }
    return 0;
}

int hr_store_route_take(hr_store *s, const char *route, int n, long long period_ms, long long now)
{
    sqlite3_stmt *q = prep(s, Q_RATE_GET, "read the route's rate state");
    if (!q)
        return 1; /* a read error never silences a route */
    bind_text(s, q, 1, route);
    long long start = now;
    long long used = 0;
    if (step(s, q) == SQLITE_ROW) {
        start = sqlite3_column_int64(q, 0);
        used = sqlite3_column_int64(q, 1);
    }
    done(q);
    if (now - start >= period_ms) {
        start = now;
        used = 0;
    }
    int ok = used < n;
    if ((q = prep(s, Q_RATE_PUT, "record the route's rate state"))) {
        bind_text(s, q, 1, route);
        bind_int(s, q, 2, start);
        bind_int(s, q, 3, used + ok);
        bind_int(s, q, 4, !ok);
        if (step(s, q) != SQLITE_DONE)
            db_fail(s, "record the route's rate state");
        done(q);
    }
    return ok;
}

/* ---- users, preferences and groups managed at run time ---- */

/* Run one statement with text parameters ?1 to ?4 and ?6 (the tenant; NULL
 * binds NULL) and the number ?5. Returns the number of rows changed, or -1
 * with the error set. */
static int run_text6(hr_store *s, const char *sql, const char *doing, const char *a,
                     const char *b, const char *c, const char *d, long long num,
                     const char *tenant)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
        db_fail(s, doing);
        return -1;
    }
    const char *v[4] = {a, b, c, d};
    int np = sqlite3_bind_parameter_count(q);
    for (int i = 0; i < 4 && i < np; i++)
        bind_text(s, q, i + 1, v[i]);
    if (np >= 5)
        bind_int(s, q, 5, num);
    if (np >= 6)
        bind_text(s, q, 6, tenant);
    int rc = step(s, q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(s, doing);
        return -1;
    }
    return sqlite3_changes(s->db);
}

static int run_text(hr_store *s, const char *sql, const char *doing, const char *a,
                    const char *b, const char *c, const char *d, long long num)
{
    return run_text6(s, sql, doing, a, b, c, d, num, NULL);
}

/* Users, their preferences and groups belong to a tenant (NULL: "default"). */
#define TENANT_OF(t) ((t) ? (t) : "default")

static herald_status bump_directory(hr_store *s)
{
    return run_text(s, "UPDATE meta SET value = value + 1 WHERE key = 'directory_version'",
                    "record the directory change", NULL, NULL, NULL, NULL, 0) < 0
               ? HERALD_E_IO
               : HERALD_OK;
}

herald_status hr_store_user_add(hr_store *s, const char *tenant, const char *name, int *existed)
{
    herald_status st = write_begin(s, "add the user");
    if (st != HERALD_OK)
        return st;
    int n = run_text6(s, "INSERT INTO users (tenant, name, created_ms) VALUES (?6, ?1, ?5) "
                         "ON CONFLICT (tenant, name) DO NOTHING", "add the user", name, NULL,
                      NULL, NULL, hr_now_ms(), TENANT_OF(tenant));
    *existed = n == 0;
    st = n < 0 ? HERALD_E_IO : HERALD_OK;
    if (st == HERALD_OK && n > 0)
        st = bump_directory(s);
    return write_end(s, st, "add the user");
}

herald_status hr_store_user_remove(hr_store *s, const char *tenant, const char *name, int *found)
{
    herald_status st = write_begin(s, "remove the user");
    if (st != HERALD_OK)
        return st;
    tenant = TENANT_OF(tenant);
    int n = run_text6(s, "DELETE FROM users WHERE tenant = ?6 AND name = ?1", "remove the user",
                      name, NULL, NULL, NULL, 0, tenant);
    *found = n > 0;
    if (n >= 0 &&
        (run_text6(s, "DELETE FROM user_prefs WHERE tenant = ?6 AND user = ?1",
                   "remove the user's preferences", name, NULL, NULL, NULL, 0, tenant) < 0 ||
         run_text6(s, "DELETE FROM group_members WHERE tenant = ?6 AND user = ?1",
                   "remove the user's groups", name, NULL, NULL, NULL, 0, tenant) < 0))
        n = -1;
    st = n < 0 ? HERALD_E_IO : bump_directory(s);
    return write_end(s, st, "remove the user");
}

herald_status hr_store_pref_put(hr_store *s, const char *tenant, const char *user,
                                const char *kind, const char *key, const char *value)
{
    herald_status st = write_begin(s, "store the preference");
    if (st != HERALD_OK)
        return st;
    tenant = TENANT_OF(tenant);
    /* Delete, then insert: a preference set again becomes the latest (rules
     * are ordered by when they were set; on a specificity tie the later wins). */
    int n = run_text6(s, "DELETE FROM user_prefs WHERE tenant = ?6 AND user = ?1 AND kind = ?2 "
                         "AND key = ?3", "remove the preference", user, kind, key, NULL, 0,
                      tenant);
    if (n >= 0 && value)
        n = run_text6(s, "INSERT INTO user_prefs (tenant, user, kind, key, value, updated_ms) "
                         "VALUES (?6, ?1, ?2, ?3, ?4, ?5)",
                      "store the preference", user, kind, key, value, hr_now_ms(), tenant);
    st = n < 0 ? HERALD_E_IO : bump_directory(s);
    return write_end(s, st, "store the preference");
}

herald_status hr_store_group_member(hr_store *s, const char *tenant, const char *group,
                                    const char *user, int add, int *changed)
{
    herald_status st = write_begin(s, "change the group");
    if (st != HERALD_OK)
        return st;
    int n = run_text6(s, add ? "INSERT INTO group_members (tenant, grp, user) VALUES (?6, ?1, ?2) "
                               "ON CONFLICT DO NOTHING"
                             : "DELETE FROM group_members WHERE tenant = ?6 AND grp = ?1 AND "
                               "user = ?2",
                      "change the group", group, user, NULL, NULL, 0, TENANT_OF(tenant));
    *changed = n > 0;
    st = n < 0 ? HERALD_E_IO : bump_directory(s);
    return write_end(s, st, "change the group");
}

long long hr_store_directory_version(hr_store *s)
{
    sqlite3_stmt *q = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'directory_version'", -1,
                           &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

herald_status hr_store_directory_each(hr_store *s, const char *tenant, hr_dir_row_fn fn,
                                      void *ctx)
{
    static const char *const sql[] = {
        "SELECT 'user', name, NULL, NULL, NULL FROM users WHERE tenant = ?1 ORDER BY name",
        "SELECT 'pref', user, kind, key, value FROM user_prefs WHERE tenant = ?1 ORDER BY rowid",
        "SELECT 'group', grp, user, NULL, NULL FROM group_members WHERE tenant = ?1 "
        "ORDER BY grp, user",
    };
    for (size_t i = 0; i < HR_ARRAY_LEN(sql); i++) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(s->db, sql[i], -1, &q, NULL) != SQLITE_OK)
            return db_fail(s, "read users and preferences");
        s->bind_rc = SQLITE_OK;
        bind_text(s, q, 1, TENANT_OF(tenant));
        int rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW)
            fn(ctx, (const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
               (const char *)sqlite3_column_text(q, 2), (const char *)sqlite3_column_text(q, 3),
               (const char *)sqlite3_column_text(q, 4));
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE)
            return db_fail(s, "read users and preferences");
    }
    return HERALD_OK;
}

herald_status hr_store_directory_tenants(hr_store *s, char ***out)
{
    *out = NULL;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT tenant FROM users WHERE tenant <> 'default' "
                                  "ORDER BY tenant", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "list the tenants with users");
    size_t n = 0;
    char **v = hr_calloc(1, sizeof *v);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        v = hr_realloc(v, (n + 2) * sizeof *v);
        v[n++] = hr_strdup((const char *)sqlite3_column_text(q, 0));
        v[n] = NULL;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        hr_strv_free(v);
        return db_fail(s, "list the tenants with users");
    }
    *out = v;
    return HERALD_OK;
}

/* ---- webhook subscriptions ---- */

void hr_webhook_row_clear(hr_webhook_row *w)
{
    free(w->name);
    free(w->url_shown);
    free(w->events);
    free(w->sealed);
    free(w->signature);
    free(w->body_template);
    free(w->tenant);
    memset(w, 0, sizeof *w);
}

void hr_webhook_rows_free(hr_webhook_row *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hr_webhook_row_clear(&v[i]);
    free(v);
}

herald_status hr_store_webhook_put(hr_store *s, const hr_webhook_row *w, int create)
{
    herald_status st = write_begin(s, "store the webhook");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = NULL;
    const char *sql = create
        ? "INSERT INTO webhooks (id, name, url_shown, events, sealed, signature, timeout_ms, "
          "max_attempts, payload_max, body_template, created_ms, updated_ms, tenant) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, coalesce(?12, 'default'))"
        : "UPDATE webhooks SET name = ?2, url_shown = ?3, events = ?4, sealed = ?5, "
          "signature = ?6, timeout_ms = ?7, max_attempts = ?8, payload_max = ?9, "
          "body_template = ?10, updated_ms = ?11 WHERE id = ?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
        st = db_fail(s, "store the webhook");
    } else {
        bind_text(s, q, 1, w->id);
        bind_text(s, q, 2, w->name);
        bind_text(s, q, 3, w->url_shown);
        bind_text(s, q, 4, w->events);
        bind_text(s, q, 5, w->sealed);
        bind_text(s, q, 6, w->signature);
        bind_int(s, q, 7, w->timeout_ms);
        if (w->max_attempts > 0)
            bind_int(s, q, 8, w->max_attempts);
        bind_int(s, q, 9, w->payload_max);
        bind_text(s, q, 10, w->body_template);
        bind_int(s, q, 11, hr_now_ms());
        if (create)
            bind_text(s, q, 12, w->tenant);
        int rc = step(s, q);
        if (rc == SQLITE_CONSTRAINT)
            st = fail(s, HERALD_E_INVALID, "a webhook named '%s' exists already; pick another "
                      "name or update it", w->name);
        else if (rc != SQLITE_DONE)
            st = db_fail(s, "store the webhook");
        else if (!create && sqlite3_changes(s->db) == 0)
            st = fail(s, HERALD_E_NOT_FOUND, "no webhook %s", w->id);
    }
    sqlite3_finalize(q);
    if (st == HERALD_OK)
        st = bump_directory(s);
    return write_end(s, st, "store the webhook");
}

herald_status hr_store_webhook_remove(hr_store *s, const char *id)
{
    herald_status st = write_begin(s, "remove the webhook");
    if (st != HERALD_OK)
        return st;
    int n = run_text(s, "DELETE FROM webhooks WHERE id = ?1", "remove the webhook", id, NULL, NULL,
                     NULL, 0);
    st = n < 0 ? HERALD_E_IO
         : n == 0 ? fail(s, HERALD_E_NOT_FOUND, "no webhook %s; herald webhook list lists them", id)
                  : bump_directory(s);
    return write_end(s, st, "remove the webhook");
}

/* id or name NULL: every webhook; else the one with that id or name. */
herald_status hr_store_webhooks(hr_store *s, const char *id_or_name, hr_webhook_row **out,
                                size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL;
    const char *sql = "SELECT id, name, url_shown, events, sealed, signature, timeout_ms, "
                      "max_attempts, payload_max, body_template, created_ms, updated_ms, tenant "
                      "FROM webhooks WHERE ?1 IS NULL OR id = ?1 OR name = ?1 ORDER BY created_ms";
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "read the webhooks");
    bind_text(s, q, 1, id_or_name);
    int rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = hr_realloc(*out, cap * sizeof **out);
        }
        hr_webhook_row *w = &(*out)[(*n)++];
        memset(w, 0, sizeof *w);
        snprintf(w->id, sizeof w->id, "%s", (const char *)sqlite3_column_text(q, 0));
        w->name = col_dup(q, 1);
        w->url_shown = col_dup(q, 2);
        w->events = col_dup(q, 3);
        w->sealed = col_dup(q, 4);
        w->signature = col_dup(q, 5);
        w->timeout_ms = sqlite3_column_int64(q, 6);
        w->max_attempts = sqlite3_column_int(q, 7);
        w->payload_max = sqlite3_column_int64(q, 8);
        w->body_template = col_dup(q, 9);
        w->created_ms = sqlite3_column_int64(q, 10);
        w->updated_ms = sqlite3_column_int64(q, 11);
        w->tenant = col_dup(q, 12);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        hr_webhook_rows_free(*out, *n);
        *out = NULL;
        *n = 0;
        return db_fail(s, "read the webhooks");
    }
    return HERALD_OK;
}

herald_status hr_store_webhook_counters(hr_store *s, const char *id, hr_webhook_counters *c)
{
    memset(c, 0, sizeof *c);
    sqlite3_stmt *q = NULL;
    const char *sql =
        "SELECT count(*), coalesce(sum(state = 2), 0), coalesce(sum(state IN (3, 4)), 0), "
        "max(CASE WHEN state = 2 THEN updated_ms END), "
        "max(CASE WHEN state IN (3, 4) OR (state = 0 AND attempts > 0) THEN updated_ms END), "
        "(SELECT consecutive_failures FROM channel_state WHERE channel = ?1), "
        "(SELECT disabled FROM channel_state WHERE channel = ?1), "
        "(SELECT reason FROM channel_state WHERE channel = ?1) "
        "FROM deliveries WHERE channel = ?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "count the webhook's deliveries");
    bind_text(s, q, 1, id);
    herald_status st = HERALD_OK;
    if (sqlite3_step(q) == SQLITE_ROW) {
        c->total = sqlite3_column_int64(q, 0);
        c->succeeded = sqlite3_column_int64(q, 1);
        c->failed = sqlite3_column_int64(q, 2);
        c->last_success_ms = sqlite3_column_int64(q, 3);
        c->last_failure_ms = sqlite3_column_int64(q, 4);
        c->consecutive_failures = sqlite3_column_int(q, 5);
        c->disabled = sqlite3_column_int(q, 6);
        c->disabled_reason = col_dup(q, 7);
    } else {
        st = db_fail(s, "count the webhook's deliveries");
    }
    sqlite3_finalize(q);
    return st;
}

/* ---- API tokens ---- */

herald_status hr_store_token_add(hr_store *s, const hr_token_row *t)
{
    herald_status st = write_begin(s, "store the token");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO tokens (id, name, hash, scopes, tenant, created_ms) "
                                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &q, NULL) != SQLITE_OK) {
        st = db_fail(s, "store the token");
    } else {
        bind_text(s, q, 1, t->id);
        bind_text(s, q, 2, t->name);
        bind_text(s, q, 3, t->hash);
        bind_text(s, q, 4, t->scopes);
        bind_text(s, q, 5, t->tenant);
        bind_int(s, q, 6, hr_now_ms());
        if (step(s, q) != SQLITE_DONE)
            st = db_fail(s, "store the token");
    }
    sqlite3_finalize(q);
    if (st == HERALD_OK)
        st = bump_directory(s);
    return write_end(s, st, "store the token");
}

herald_status hr_store_token_revoke(hr_store *s, const char *id_or_name, int *found)
{
    herald_status st = write_begin(s, "revoke the token");
    if (st != HERALD_OK)
        return st;
    int n = run_text(s, "UPDATE tokens SET revoked_ms = ?5 WHERE (id = ?1 OR name = ?1) "
                        "AND revoked_ms IS NULL", "revoke the token", id_or_name, NULL, NULL, NULL,
                     hr_now_ms());
    *found = n > 0;
    st = n < 0 ? HERALD_E_IO : bump_directory(s);
    return write_end(s, st, "revoke the token");
}

herald_status hr_store_tokens(hr_store *s, hr_token_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT id, name, hash, scopes, tenant, created_ms, "
                                  "coalesce(revoked_ms, 0) FROM tokens ORDER BY created_ms",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "read the tokens");
    int rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = hr_realloc(*out, cap * sizeof **out);
        }
        hr_token_row *t = &(*out)[(*n)++];
        memset(t, 0, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", (const char *)sqlite3_column_text(q, 0));
        t->name = col_dup(q, 1);
        t->hash = col_dup(q, 2);
        t->scopes = col_dup(q, 3);
        t->tenant = col_dup(q, 4);
        t->created_ms = sqlite3_column_int64(q, 5);
        t->revoked_ms = sqlite3_column_int64(q, 6);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? HERALD_OK : db_fail(s, "read the tokens");
}

void hr_token_rows_free(hr_token_row *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].hash);
        free(v[i].scopes);
        free(v[i].tenant);
    }
    free(v);
}

char *hr_store_event_tenant(hr_store *s, const char *event_id)
{
    sqlite3_stmt *q = NULL;
    char *t = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT tenant FROM events WHERE id = ?1", -1, &q, NULL) ==
        SQLITE_OK) {
        bind_text(s, q, 1, event_id);
        if (sqlite3_step(q) == SQLITE_ROW)
            t = col_dup(q, 0);
    }
    sqlite3_finalize(q);
    return t;
}

/* ---- one tenant's statistics ---- */

typedef struct tstats_acc {
    hr_tstats_group g;
    long long *dur;
    size_t ndur, capdur;
    double sum;
} tstats_acc;

typedef struct tstats_set {
    tstats_acc *v;
    size_t n, cap;
} tstats_set;

static tstats_acc *tstats_find(tstats_set *set, const char *key)
{
    if (!key)
        key = "";
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->v[i].g.key, key))
            return &set->v[i];
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 8;
        set->v = hr_realloc(set->v, set->cap * sizeof *set->v);
    }
    tstats_acc *a = &set->v[set->n++];
    memset(a, 0, sizeof *a);
    a->g.key = hr_strdup(key);
    return a;
}

static void tstats_duration(tstats_acc *a, long long ms)
{
    if (a->ndur == a->capdur) {
        a->capdur = a->capdur ? a->capdur * 2 : 16;
        a->dur = hr_realloc(a->dur, a->capdur * sizeof *a->dur);
    }
    a->dur[a->ndur++] = ms;
    a->sum += (double)ms;
}

static int tstats_ll_cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static int tstats_key_cmp(const void *a, const void *b)
{
    return strcmp(((const hr_tstats_group *)a)->key, ((const hr_tstats_group *)b)->key);
}

/* Finish an accumulator: rates, mean, p95 (nearest rank); frees the durations. */
static hr_tstats_group tstats_done(tstats_acc *a)
{
    hr_tstats_group g = a->g;
    g.attempts = (long long)a->ndur;
    g.success_rate = g.processed ? (double)g.sent / (double)g.processed : 0.0;
    if (a->ndur) {
        qsort(a->dur, a->ndur, sizeof *a->dur, tstats_ll_cmp);
        g.mean_ms = a->sum / (double)a->ndur;
        size_t rank = (95 * a->ndur + 99) / 100;
        g.p95_ms = (double)a->dur[rank - 1];
    }
    free(a->dur);
    return g;
}

static hr_tstats_group *tstats_out(tstats_set *set, size_t *n)
{
    hr_tstats_group *v = set->n ? hr_malloc(set->n * sizeof *v) : NULL;
    for (size_t i = 0; i < set->n; i++)
        v[i] = tstats_done(&set->v[i]);
    if (set->n)
        qsort(v, set->n, sizeof *v, tstats_key_cmp);
    *n = set->n;
    free(set->v);
    return v;
}

herald_status hr_store_tenant_stats(hr_store *s, const char *tenant, long long since_ms,
                                    hr_tenant_stats *out)
{
    memset(out, 0, sizeof *out);
    static const char *const sql[2] = {
        /* Finished deliveries by their last attempt, as Q_STATS_DELIVERIES. */
        "SELECT e.type, d.channel, coalesce(e.source, ''), d.state FROM attempts a "
        "JOIN deliveries d ON d.id = a.delivery_id JOIN events e ON e.id = d.event_id "
        "WHERE e.tenant = ?1 AND a.started_ms >= ?2 AND d.state IN (2, 3, 4) "
        "AND a.id = (SELECT max(x.id) FROM attempts x WHERE x.delivery_id = d.id)",
        "SELECT e.type, d.channel, coalesce(e.source, ''), a.duration_ms FROM attempts a "
        "JOIN deliveries d ON d.id = a.delivery_id JOIN events e ON e.id = d.event_id "
        "WHERE e.tenant = ?1 AND a.started_ms >= ?2",
    };
    tstats_set sets[3];
    memset(sets, 0, sizeof sets);
    tstats_acc total;
    memset(&total, 0, sizeof total);
    herald_status st = HERALD_OK;
    /* Two reads: one snapshot keeps them consistent with each other. */
    int own_tx = !s->in_tx && sqlite3_get_autocommit(s->db);
    if (own_tx && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, "read statistics");
    for (int k = 0; k < 2 && st == HERALD_OK; k++) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(s->db, sql[k], -1, &q, NULL) != SQLITE_OK) {
            st = db_fail(s, "read statistics");
            sqlite3_finalize(q);
            break;
        }
        s->bind_rc = SQLITE_OK;
        bind_text(s, q, 1, tenant);
        bind_int(s, q, 2, since_ms);
        int rc;
        while ((rc = step(s, q)) == SQLITE_ROW) {
            long long v = sqlite3_column_int64(q, 3);
            tstats_acc *acc[4] = {&total, NULL, NULL, NULL};
            for (int g = 0; g < 3; g++)
                acc[g + 1] = tstats_find(&sets[g], (const char *)sqlite3_column_text(q, g));
            for (int g = 0; g < 4; g++) {
                if (k == 0) {
                    acc[g]->g.processed++;
                    if (v == HR_D_SENT)
                        acc[g]->g.sent++;
                    else
                        acc[g]->g.failed++;
                } else {
                    tstats_duration(acc[g], v);
                }
            }
        }
        if (rc != SQLITE_DONE)
            st = db_fail(s, "read statistics");
        sqlite3_finalize(q);
    }
    if (own_tx)
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    out->total = tstats_done(&total);
    out->by_type = tstats_out(&sets[0], &out->ntype);
    out->by_channel = tstats_out(&sets[1], &out->nchannel);
    out->by_source = tstats_out(&sets[2], &out->nsource);
    if (st != HERALD_OK)
        hr_tenant_stats_clear(out);
    return st;
}

static void tstats_free(hr_tstats_group *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].key);
    free(v);
}

void hr_tenant_stats_clear(hr_tenant_stats *t)
{
    free(t->total.key);
    tstats_free(t->by_type, t->ntype);
    tstats_free(t->by_channel, t->nchannel);
    tstats_free(t->by_source, t->nsource);
    memset(t, 0, sizeof *t);
}

/* ---- inbound webhooks ---- */

herald_status hr_store_receipt_add(hr_store *s, const hr_receipt *r, long long *id,
                                   int *duplicate)
{
    *id = 0;
    *duplicate = 0;
    herald_status st = write_begin(s, "store the webhook receipt");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = NULL;
    /* DO NOTHING, not a constraint error: in a batch a failed call would spoil
     * the whole round's transaction. */
    if (sqlite3_prepare_v2(s->db, "INSERT INTO hook_receipts (source, message_id, tenant, "
                                  "received_ms, headers, body) VALUES (?1, ?2, "
                                  "coalesce(?3, 'default'), ?4, coalesce(?5, '{}'), ?6) "
                                  "ON CONFLICT (source, message_id) DO NOTHING RETURNING id",
                           -1, &q, NULL) != SQLITE_OK) {
        st = db_fail(s, "store the webhook receipt");
    } else {
        bind_text(s, q, 1, r->source);
        bind_text(s, q, 2, r->message_id);
        bind_text(s, q, 3, r->tenant);
        bind_int(s, q, 4, r->received_ms);
        bind_text(s, q, 5, r->headers);
        bind_textn(s, q, 6, r->body ? r->body : "", r->body ? r->body_len : 0);
        int rc = step(s, q);
        if (rc == SQLITE_ROW)
            *id = sqlite3_column_int64(q, 0);
        else if (rc != SQLITE_DONE)
            st = db_fail(s, "store the webhook receipt");
        if (rc == SQLITE_ROW && sqlite3_step(q) != SQLITE_DONE)
            st = db_fail(s, "store the webhook receipt");
    }
    sqlite3_finalize(q);
    q = NULL;
    if (st == HERALD_OK && !*id) {
        *duplicate = 1;
        if (sqlite3_prepare_v2(s->db, "SELECT id FROM hook_receipts WHERE source = ?1 AND "
                                      "message_id = ?2", -1, &q, NULL) != SQLITE_OK) {
            st = db_fail(s, "look up the webhook receipt");
        } else {
            bind_text(s, q, 1, r->source);
            bind_text(s, q, 2, r->message_id);
            if (step(s, q) == SQLITE_ROW)
                *id = sqlite3_column_int64(q, 0);
            else
                st = db_fail(s, "look up the webhook receipt");
        }
        sqlite3_finalize(q);
    }
    return write_end(s, st, "store the webhook receipt");
}

herald_status hr_store_receipts_new(hr_store *s, size_t max, hr_receipt **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT id, source, message_id, tenant, received_ms, headers, "
                                  "body FROM hook_receipts WHERE state = 0 ORDER BY id "
                                  "LIMIT ?1", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "read the webhook receipts");
    bind_int(s, q, 1, (long long)max);
    int rc;
    size_t cap = 0;
    while ((rc = step(s, q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = hr_realloc(*out, cap * sizeof **out);
        }
        hr_receipt *r = &(*out)[(*n)++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(q, 0);
        r->source = col_dup(q, 1);
        r->message_id = col_dup(q, 2);
        r->tenant = col_dup(q, 3);
        r->received_ms = sqlite3_column_int64(q, 4);
        r->headers = col_dup(q, 5);
        r->body_len = (size_t)sqlite3_column_bytes(q, 6);
        r->body = hr_strndup((const char *)sqlite3_column_text(q, 6), r->body_len);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        hr_receipts_free(*out, *n);
        *out = NULL;
        *n = 0;
        return db_fail(s, "read the webhook receipts");
    }
    return HERALD_OK;
}

herald_status hr_store_receipts_list(hr_store *s, const char *source, const char *tenant,
                                     int state, long long before_id, size_t max,
                                     hr_receipt_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT id, message_id, state, received_ms, processed_ms, "
                                  "event_id, error, length(CAST(body AS BLOB)) FROM hook_receipts "
                                  "WHERE source = ?1 AND tenant = ?2 AND (?3 < 0 OR state = ?3) "
                                  "AND (?4 <= 0 OR id < ?4) ORDER BY id DESC LIMIT ?5",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "list the webhook receipts");
    bind_text(s, q, 1, source);
    bind_text(s, q, 2, tenant);
    bind_int(s, q, 3, state);
    bind_int(s, q, 4, before_id);
    bind_int(s, q, 5, (long long)max);
    int rc;
    while ((rc = step(s, q)) == SQLITE_ROW) {
        *out = hr_realloc(*out, (*n + 1) * sizeof **out);
        hr_receipt_row *r = &(*out)[(*n)++];
        r->id = sqlite3_column_int64(q, 0);
        r->message_id = col_dup(q, 1);
        r->state = sqlite3_column_int(q, 2);
        r->received_ms = sqlite3_column_int64(q, 3);
        r->processed_ms = sqlite3_column_int64(q, 4);
        r->event_id = col_dup(q, 5);
        r->error = col_dup(q, 6);
        r->bytes = sqlite3_column_int64(q, 7);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        hr_receipt_rows_free(*out, *n);
        *out = NULL;
        *n = 0;
        return db_fail(s, "list the webhook receipts");
    }
    return HERALD_OK;
}

void hr_receipt_rows_free(hr_receipt_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].message_id);
        free(v[i].event_id);
        free(v[i].error);
    }
    free(v);
}

herald_status hr_store_receipt_finish(hr_store *s, long long id, const char *event_id,
                                      const char *error, long long now)
{
    herald_status st = write_begin(s, "record the webhook receipt's outcome");
    if (st != HERALD_OK)
        return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE hook_receipts SET state = CASE WHEN ?2 IS NULL "
                                  "THEN 2 ELSE 1 END, event_id = ?2, error = ?3, "
                                  "processed_ms = ?4 WHERE id = ?1 AND state = 0",
                           -1, &q, NULL) != SQLITE_OK) {
        st = db_fail(s, "record the webhook receipt's outcome");
    } else {
        bind_int(s, q, 1, id);
        bind_text(s, q, 2, event_id);
        bind_text(s, q, 3, error);
        bind_int(s, q, 4, now);
        if (step(s, q) != SQLITE_DONE)
            st = db_fail(s, "record the webhook receipt's outcome");
    }
    sqlite3_finalize(q);
    return write_end(s, st, "record the webhook receipt's outcome");
}

void hr_receipts_free(hr_receipt *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].source);
        free(v[i].message_id);
        free(v[i].tenant);
        free(v[i].headers);
        free(v[i].body);
    }
    free(v);
}
