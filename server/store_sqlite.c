/* store_sqlite.c - store.h on SQLite: DIR/segloss.db and DIR/blobs/ (blobs.c).
 *
 * Durability. The database runs in WAL mode with synchronous=FULL: every COMMIT appends the
 * transaction's pages and a commit frame to the write-ahead log and fsyncs the log before
 * sqlite3_step returns (SQLite's documentation, "Write-Ahead Logging" and PRAGMA synchronous:
 * in WAL mode FULL syncs the WAL at each commit, so a committed transaction survives power loss;
 * NORMAL would only survive an application crash). A commit that returned therefore survives
 * kill -9 and power loss (on storage that honours fsync), and an uncommitted one is rolled back
 * at the next open. A blob is
 * fsynced, renamed onto its name and its directory fsynced (blobs.c) before the row naming it
 * commits, so a committed row never names a missing blob; a blob whose row never committed is
 * swept at the next open. Rows left `scoring` by a dead process become `failed` ("interrupted")
 * at open and do not count against quotas.
 *
 * Concurrency. One connection serialised by a mutex: every call holds it from its first
 * statement to its last. Writes run in BEGIN IMMEDIATE transactions, which take the database's
 * write lock at BEGIN, so a read-then-write (an admission's count and insert) is atomic also
 * against another process on the same file; a lock held elsewhere is waited for up to the busy
 * timeout, then SL_EBUSY.
 *
 * Schema: PRAGMA user_version is the schema version; migrations[v] takes version v to v + 1.
 * Times are chal_time (int64 microseconds since the epoch).
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "blobs.h"
#include "segloss.h"
#include "store_impl.h"

#define BUSY_TIMEOUT_MS 5000
#define DAY_US (86400LL * 1000000LL)

struct sq_store {
    struct store base; /* first: what store.c sees (base.blobs: DIR/blobs or --blob-dir) */
    sqlite3 *db;
    pthread_mutex_t mu;
    uint64_t gen; /* mu: write transactions committed since open */
};

/* The SQLite store that base is. */
static struct sq_store *sq_of(struct store *base)
{
    return (struct sq_store *)(void *)base;
}

/* migrations[v]: the SQL taking schema version v to v + 1, run in one transaction. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    "CREATE TABLE challenges ("
    " name TEXT PRIMARY KEY,"
    " config TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " reference TEXT,"
    " ref_sha TEXT NOT NULL DEFAULT '',"
    " public_ids TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " rescore_done INTEGER NOT NULL DEFAULT 0,"
    " rescore_failed INTEGER NOT NULL DEFAULT 0,"
    " rescore_total INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE participants ("
    " id INTEGER PRIMARY KEY,"
    " challenge TEXT NOT NULL REFERENCES challenges(name),"
    " name TEXT NOT NULL,"
    " token_hash BLOB NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL,"
    " revoked_at INTEGER,"
    " UNIQUE (challenge, name));"
    "CREATE TABLE submissions ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " challenge TEXT NOT NULL REFERENCES challenges(name),"
    " participant INTEGER NOT NULL REFERENCES participants(id),"
    " received_at INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('scoring', 'scored', 'failed')),"
    " error TEXT,"
    " note TEXT NOT NULL DEFAULT '',"
    " body_sha TEXT NOT NULL DEFAULT '',"
    " bytes INTEGER NOT NULL DEFAULT 0,"
    " pub_values TEXT, priv_values TEXT,"
    " config_version INTEGER NOT NULL DEFAULT 0,"
    " ref_sha TEXT NOT NULL DEFAULT '',"
    " server_version TEXT NOT NULL DEFAULT '',"
    " stale INTEGER NOT NULL DEFAULT 0,"
    " final INTEGER NOT NULL DEFAULT 0,"
    " disqualified INTEGER NOT NULL DEFAULT 0,"
    " dq_reason TEXT);"
    /* the whole answers (per-image values, kilobytes each) in a table of their own: in the
     * submissions rows they made every leaderboard read them from disk */
    "CREATE TABLE answers ("
    " id TEXT PRIMARY KEY REFERENCES submissions(id),"
    " pub_full TEXT, priv_full TEXT);"
    "CREATE INDEX submissions_by_participant ON submissions (challenge, participant, received_at);"
    "CREATE INDEX submissions_by_status ON submissions (challenge, status, received_at, seq);"
    "CREATE INDEX submissions_stale ON submissions (stale, received_at);",
};

static const char *const status_names[] = {"scoring", "scored", "failed"};

/* ---- helpers --------------------------------------------------------------------------------- */

/* Maps a SQLite result code to an SL_E* code and writes "store: what: errmsg" into msg. */
static int sql_err(struct sq_store *s, int rc, const char *what, char *msg, size_t msglen)
{
    snprintf(msg, msglen, "store: %s: %s", what, s->db ? sqlite3_errmsg(s->db) : "no database");
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return SL_EBUSY;
    case SQLITE_NOMEM:
        return SL_ENOMEM;
    default:
        return SL_EINTERNAL;
    }
}

/* Runs sql (no results). Returns 0 or an error as sql_err, naming the statement by its start. */
static int exec(struct sq_store *s, const char *sql, char *msg, size_t msglen)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        return 0;
    }
    char what[64];
    snprintf(what, sizeof what, "%.40s%s", sql, strlen(sql) > 40 ? "..." : "");
    return sql_err(s, rc, what, msg, msglen);
}

/* Prepares sql into *st. Returns 0 or an error. */
static int prep(struct sq_store *s, const char *sql, sqlite3_stmt **st, char *msg, size_t msglen)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : sql_err(s, rc, "prepare", msg, msglen);
}

/* Takes the mutex and starts a write transaction. Returns 0 (mutex held) or an error (released). */
static int begin(struct sq_store *s, char *msg, size_t msglen)
{
    pthread_mutex_lock(&s->mu);
    int rc = exec(s, "BEGIN IMMEDIATE", msg, msglen);
    if (rc != 0) {
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

/* Commits when rc is 0 (an error of COMMIT becomes rc), else rolls back; releases the mutex.
 * standings: the write may change what store_ranked_subs or a configuration reads (then the
 * generation moves on). Returns rc. */
static int end_tx(struct sq_store *s, int rc, bool standings, char *msg, size_t msglen)
{
    if (rc == 0) {
        rc = exec(s, "COMMIT", msg, msglen);
    }
    if (rc != 0 && !sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc == 0 && standings) {
        s->gen++;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* end_tx of a write that may change the standings (most). */
static int end(struct sq_store *s, int rc, char *msg, size_t msglen)
{
    return end_tx(s, rc, true, msg, msglen);
}

static uint64_t sq_generation(struct store *base)
{
    struct sq_store *s = sq_of(base);
    pthread_mutex_lock(&s->mu);
    uint64_t g = s->gen;
    pthread_mutex_unlock(&s->mu);
    return g;
}

/* Steps st expecting SQLITE_DONE. Returns 0 or an error. */
static int step_done(struct sq_store *s, sqlite3_stmt *st, char *msg, size_t msglen)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : sql_err(s, rc, "step", msg, msglen);
}

/* Binds text t (NULL binds NULL) at i; the statement copies it. */
static void bind_text(sqlite3_stmt *st, int i, const char *t)
{
    if (t) {
        sqlite3_bind_text(st, i, t, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, i);
    }
}

/* A new copy of column i of st as text, or NULL for SQL NULL; *oom set when a copy failed. */
static char *col_dup(sqlite3_stmt *st, int i, bool *oom)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t) {
        return NULL;
    }
    char *d = strdup((const char *)t);
    if (!d) {
        *oom = true;
    }
    return d;
}

/* Copies column i of st into buf (n bytes, truncating, always terminated; "" for NULL). */
static void col_copy(sqlite3_stmt *st, int i, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t len = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (len >= n) {
        len = n - 1;
    }
    if (len) {
        memcpy(buf, t, len);
    }
    buf[len] = '\0';
}

/* Makes room in the array v (cap elements of size bytes, cnt used) for one more, doubling it
 * (from 16). Returns the array (v itself when it had room), or NULL when out of memory (v is
 * then unchanged and still the caller's). */
static void *grow(void *v, size_t *cap, size_t cnt, size_t size)
{
    if (cnt < *cap) {
        return v;
    }
    size_t n = *cap ? 2 * *cap : 16;
    void *p = realloc(v, n * size);
    if (p) {
        *cap = n;
    }
    return p;
}

/* Writes 16 random lowercase hex digits and a NUL into id. Returns 0 or SL_EINTERNAL. */
static int random_id(char id[STORE_SUB_ID], char *msg, size_t msglen)
{
    unsigned char r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        snprintf(msg, msglen, "store: getrandom: %s", strerror(errno));
        return SL_EINTERNAL;
    }
    for (int i = 0; i < 8; i++) {
        snprintf(id + 2 * i, 3, "%02x", r[i]);
    }
    return 0;
}

/* ---- open, recovery, close ------------------------------------------------------------------- */

/* Reads PRAGMA user_version into *v. */
static int user_version(struct sq_store *s, int64_t *v, char *msg, size_t msglen)
{
    sqlite3_stmt *st;
    int rc = prep(s, "PRAGMA user_version", &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
    } else {
        rc = sql_err(s, r, "PRAGMA user_version", msg, msglen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema to STORE_SCHEMA_VERSION in one transaction; a newer database is refused. */
static int migrate(struct sq_store *s, const char *path, char *msg, size_t msglen)
{
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    int64_t v = 0;
    rc = user_version(s, &v, msg, msglen);
    if (rc == 0 && (v > STORE_SCHEMA_VERSION || v < 0)) {
        snprintf(msg, msglen,
                 "store: %s has schema version %lld, newer than this seglossd's %d; run a "
                 "seglossd that knows it",
                 path, (long long)v, STORE_SCHEMA_VERSION);
        rc = SL_EUNSUPPORTED;
    }
    for (; rc == 0 && v < STORE_SCHEMA_VERSION; v++) {
        rc = exec(s, migrations[v], msg, msglen);
    }
    if (rc == 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
        rc = exec(s, sql, msg, msglen);
    }
    return end(s, rc, msg, msglen);
}

/* The blob names rows hold, sorted, for the sweep's keep(). */
struct names {
    char (*v)[65];
    size_t n;
};

/* bsearch/qsort comparison of two names. */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* keep() of the sweep: whether sha is among the names. */
static bool names_keep(const char *sha, void *arg)
{
    const struct names *nm = arg;
    return nm->n > 0 && bsearch(sha, nm->v, nm->n, sizeof nm->v[0], name_cmp) != NULL;
}

/* Marks interrupted submissions failed and reads the blob names rows hold into *nm (free nm->v). */
static int recover_rows(struct sq_store *s, struct names *nm, char *msg, size_t msglen)
{
    nm->v = NULL;
    nm->n = 0;
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    rc = exec(s,
              "UPDATE submissions SET status = 'failed', error = 'interrupted' "
              "WHERE status = 'scoring'",
              msg, msglen);
    sqlite3_stmt *st = NULL;
    if (rc == 0) {
        rc = prep(s,
                  "SELECT ref_sha FROM challenges WHERE ref_sha != '' "
                  "UNION SELECT body_sha FROM submissions WHERE body_sha != ''",
                  &st, msg, msglen);
    }
    size_t cap = 0;
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (nm->n == cap) {
            cap = cap ? 2 * cap : 64;
            void *p = realloc(nm->v, cap * sizeof nm->v[0]);
            if (!p) {
                snprintf(msg, msglen, "store: out of memory listing blobs");
                rc = SL_ENOMEM;
                break;
            }
            nm->v = p;
        }
        col_copy(st, 0, nm->v[nm->n], sizeof nm->v[0]);
        nm->n++;
    }
    if (rc == 0 && r != SQLITE_DONE) {
        rc = sql_err(s, r, "listing blobs", msg, msglen);
    }
    sqlite3_finalize(st);
    if (rc == 0 && nm->n > 0) {
        qsort(nm->v, nm->n, sizeof nm->v[0], name_cmp);
    }
    return end(s, rc, msg, msglen);
}

/* Runs PRAGMA p and checks that its one answer row (when it has one) is want (NULL: any). */
static int pragma(struct sq_store *s, const char *p, const char *want, char *msg, size_t msglen)
{
    sqlite3_stmt *st;
    int rc = prep(s, p, &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW && want) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (!t || strcmp((const char *)t, want) != 0) {
            snprintf(msg, msglen, "store: %s answered %s, not %s", p, t ? (const char *)t : "null",
                     want);
            rc = SL_EINTERNAL;
        }
    } else if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = sql_err(s, r, p, msg, msglen);
    }
    sqlite3_finalize(st);
    return rc;
}

static const struct store_ops sq_ops;
static void sq_close(struct store *base);

/* Opens the store in o->data_dir, its blobs in o->blob_dir or DIR/blobs (see store.h). */
int store_sqlite_open(const struct store_options *o, struct store **out, char *msg, size_t msglen)
{
    const char *dir = o->data_dir;
    *out = NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(msg, msglen, "store: mkdir %s: %s", dir, strerror(errno));
        return SL_EINTERNAL;
    }
    struct sq_store *s = calloc(1, sizeof *s);
    size_t cap = strlen(dir) + 16;
    size_t bcap = o->blob_dir && o->blob_dir[0] ? strlen(o->blob_dir) + 1 : cap;
    char *dbpath = malloc(cap);
    if (!s || !dbpath || !(s->base.blobs = malloc(bcap))) {
        free(s ? s->base.blobs : NULL);
        free(s);
        free(dbpath);
        snprintf(msg, msglen, "store: out of memory");
        return SL_ENOMEM;
    }
    s->base.ops = &sq_ops;
    snprintf(dbpath, cap, "%s/segloss.db", dir);
    if (o->blob_dir && o->blob_dir[0]) {
        snprintf(s->base.blobs, bcap, "%s", o->blob_dir);
    } else {
        snprintf(s->base.blobs, bcap, "%s/blobs", dir);
    }
    pthread_mutex_init(&s->mu, NULL);
    struct names nm = {NULL, 0};
    int rc = srv_blob_init(s->base.blobs, msg, msglen);
    if (rc == 0) {
        int r = sqlite3_open_v2(
            dbpath, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (r != SQLITE_OK) {
            rc = sql_err(s, r, dbpath, msg, msglen);
        }
    }
    if (rc == 0 && sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
        rc = sql_err(s, SQLITE_ERROR, "busy_timeout", msg, msglen);
    }
    if (rc == 0) {
        rc = pragma(s, "PRAGMA journal_mode = WAL", "wal", msg, msglen);
    }
    if (rc == 0) {
        rc = pragma(s, "PRAGMA synchronous = FULL", NULL, msg, msglen);
    }
    if (rc == 0) {
        rc = pragma(s, "PRAGMA foreign_keys = ON", NULL, msg, msglen);
    }
    if (rc == 0) {
        /* a page cache of 64 MiB (the default is 2 MiB) and reads through mmap: a leaderboard
         * reads every scored row of its challenge */
        rc = pragma(s, "PRAGMA cache_size = -65536", NULL, msg, msglen);
    }
    if (rc == 0) {
        rc = pragma(s, "PRAGMA mmap_size = 268435456", NULL, msg, msglen);
    }
    if (rc == 0) {
        rc = migrate(s, dbpath, msg, msglen);
    }
    if (rc == 0) {
        rc = recover_rows(s, &nm, msg, msglen);
    }
    if (rc == 0) {
        rc = srv_blob_sweep(s->base.blobs, names_keep, &nm, NULL, msg, msglen);
    }
    free(nm.v);
    free(dbpath);
    if (rc != 0) {
        sq_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* Closes the connection and frees s (never NULL: store_close checks). */
static void sq_close(struct store *base)
{
    struct sq_store *s = sq_of(base);
    if (!s) {
        return;
    }
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s->base.blobs);
    free(s);
}

/* ---- challenges ------------------------------------------------------------------------------ */

/* Marks challenge's scored submissions stale and resets its progress to {0, 0, count}; inside a
 * transaction. STORE_ENOTFOUND when there is no such challenge. */
static int rescore_begin_tx(struct sq_store *s, const char *challenge, char *msg, size_t msglen)
{
    sqlite3_stmt *st;
    int rc = prep(s, "UPDATE submissions SET stale = 1 WHERE challenge = ?1 AND status = 'scored'",
                  &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    bind_text(st, 1, challenge);
    rc = step_done(s, st, msg, msglen);
    sqlite3_finalize(st);
    if (rc != 0) {
        return rc;
    }
    int64_t count = sqlite3_changes(s->db);
    rc = prep(s,
              "UPDATE challenges SET rescore_done = 0, rescore_failed = 0, rescore_total = ?2 "
              "WHERE name = ?1",
              &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    bind_text(st, 1, challenge);
    sqlite3_bind_int64(st, 2, count);
    rc = step_done(s, st, msg, msglen);
    sqlite3_finalize(st);
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        snprintf(msg, msglen, "store: no challenge %s", challenge);
        rc = STORE_ENOTFOUND;
    }
    return rc;
}

/* Creates or replaces challenge name's configuration. */
static int sq_challenge_put(struct store *base, const char *name, const char *config,
                            const char *public_ids, bool rescore, chal_time now, bool *created,
                            int64_t *version, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = NULL;
    rc = prep(s, "SELECT version FROM challenges WHERE name = ?1", &st, msg, msglen);
    int64_t v = 0;
    if (rc == 0) {
        bind_text(st, 1, name);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            v = sqlite3_column_int64(st, 0);
        } else if (r != SQLITE_DONE) {
            rc = sql_err(s, r, "reading the challenge", msg, msglen);
        }
        sqlite3_finalize(st);
    }
    if (rc == 0) {
        rc = prep(s,
                  v == 0 ? "INSERT INTO challenges (name, config, version, public_ids, created_at, "
                           "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
                         : "UPDATE challenges SET config = ?2, version = ?3, public_ids = ?4, "
                           "updated_at = ?5 WHERE name = ?1",
                  &st, msg, msglen);
    }
    if (rc == 0) {
        bind_text(st, 1, name);
        bind_text(st, 2, config);
        sqlite3_bind_int64(st, 3, v + 1);
        bind_text(st, 4, public_ids);
        sqlite3_bind_int64(st, 5, now);
        rc = step_done(s, st, msg, msglen);
        sqlite3_finalize(st);
    }
    if (rc == 0 && rescore) {
        rc = rescore_begin_tx(s, name, msg, msglen);
    }
    rc = end(s, rc, msg, msglen);
    if (rc == 0) {
        *created = v == 0;
        *version = v + 1;
    }
    return rc;
}

/* Sets challenge name's reference. */
static int sq_reference_put(struct store *base, const char *name, const char *ref_sha,
                            const char *manifest, const char *public_ids, bool rescore,
                            chal_time now, bool *created, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = NULL;
    bool had = false;
    rc = prep(s, "SELECT ref_sha != '' FROM challenges WHERE name = ?1", &st, msg, msglen);
    if (rc == 0) {
        bind_text(st, 1, name);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            had = sqlite3_column_int(st, 0) != 0;
        } else if (r == SQLITE_DONE) {
            snprintf(msg, msglen, "store: no challenge %s", name);
            rc = STORE_ENOTFOUND;
        } else {
            rc = sql_err(s, r, "reading the challenge", msg, msglen);
        }
        sqlite3_finalize(st);
    }
    if (rc == 0) {
        rc = prep(s,
                  "UPDATE challenges SET ref_sha = ?2, reference = ?3, public_ids = ?4, "
                  "updated_at = ?5 WHERE name = ?1",
                  &st, msg, msglen);
    }
    if (rc == 0) {
        bind_text(st, 1, name);
        bind_text(st, 2, ref_sha);
        bind_text(st, 3, manifest);
        bind_text(st, 4, public_ids);
        sqlite3_bind_int64(st, 5, now);
        rc = step_done(s, st, msg, msglen);
        sqlite3_finalize(st);
    }
    if (rc == 0 && rescore) {
        rc = rescore_begin_tx(s, name, msg, msglen);
    }
    rc = end(s, rc, msg, msglen);
    if (rc == 0) {
        *created = !had;
    }
    return rc;
}

#define CHALLENGE_COLS                                                                             \
    "SELECT c.name, c.config, c.version, c.reference, c.ref_sha, c.public_ids, c.created_at, "     \
    "c.updated_at, c.rescore_done, c.rescore_failed, c.rescore_total, "                            \
    "(SELECT count(*) FROM participants p WHERE p.challenge = c.name AND p.revoked_at IS NULL), "  \
    "(SELECT count(*) FROM submissions s WHERE s.challenge = c.name) FROM challenges c "

/* Fills *c from a row of CHALLENGE_COLS. Returns 0 or SL_ENOMEM (c cleared). */
static int challenge_row(sqlite3_stmt *st, struct store_challenge *c, char *msg, size_t msglen)
{
    bool oom = false;
    memset(c, 0, sizeof *c);
    col_copy(st, 0, c->name, sizeof c->name);
    c->config = col_dup(st, 1, &oom);
    c->version = sqlite3_column_int64(st, 2);
    c->reference = col_dup(st, 3, &oom);
    col_copy(st, 4, c->ref_sha, sizeof c->ref_sha);
    c->public_ids = col_dup(st, 5, &oom);
    c->created_at = sqlite3_column_int64(st, 6);
    c->updated_at = sqlite3_column_int64(st, 7);
    c->rescore_done = sqlite3_column_int64(st, 8);
    c->rescore_failed = sqlite3_column_int64(st, 9);
    c->rescore_total = sqlite3_column_int64(st, 10);
    c->rescore_running = c->rescore_total > c->rescore_done + c->rescore_failed;
    c->participants = sqlite3_column_int64(st, 11);
    c->submissions = sqlite3_column_int64(st, 12);
    if (oom) {
        store_challenge_clear(c);
        snprintf(msg, msglen, "store: out of memory reading challenge %s", c->name);
        return SL_ENOMEM;
    }
    return 0;
}

/* Reads challenge name. */
static int sq_challenge_get(struct store *base, const char *name, struct store_challenge *out,
                            char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    int rc = prep(s, CHALLENGE_COLS "WHERE c.name = ?1", &st, msg, msglen);
    if (rc == 0) {
        bind_text(st, 1, name);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            rc = challenge_row(st, out, msg, msglen);
        } else if (r == SQLITE_DONE) {
            snprintf(msg, msglen, "store: no challenge %s", name);
            rc = STORE_ENOTFOUND;
        } else {
            rc = sql_err(s, r, "reading the challenge", msg, msglen);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Reads every challenge by name. */
static int sq_challenge_list(struct store *base, struct store_challenge **out, size_t *n, char *msg,
                             size_t msglen)
{
    struct sq_store *s = sq_of(base);
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    int rc = prep(s, CHALLENGE_COLS "ORDER BY c.name", &st, msg, msglen);
    struct store_challenge *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? 2 * cap : 8;
            void *p = realloc(v, cap * sizeof *v);
            if (!p) {
                snprintf(msg, msglen, "store: out of memory listing challenges");
                rc = SL_ENOMEM;
                break;
            }
            v = p;
        }
        rc = challenge_row(st, &v[cnt], msg, msglen);
        if (rc == 0) {
            cnt++;
        }
    }
    if (rc == 0 && r != SQLITE_DONE) {
        rc = sql_err(s, r, "listing challenges", msg, msglen);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        store_challenge_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- participants ---------------------------------------------------------------------------- */

/* Whether challenge exists (*yes), inside the lock. */
static int challenge_exists(struct sq_store *s, const char *challenge, bool *yes, char *msg,
                            size_t msglen)
{
    sqlite3_stmt *st;
    int rc = prep(s, "SELECT 1 FROM challenges WHERE name = ?1", &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    bind_text(st, 1, challenge);
    int r = sqlite3_step(st);
    *yes = r == SQLITE_ROW;
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = sql_err(s, r, "reading the challenge", msg, msglen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Adds a participant. */
static int sq_participant_add(struct store *base, const char *challenge, const char *name,
                              const unsigned char token_hash[32], chal_time now,
                              struct store_participant *out, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    bool yes = false;
    rc = challenge_exists(s, challenge, &yes, msg, msglen);
    if (rc == 0 && !yes) {
        snprintf(msg, msglen, "store: no challenge %s", challenge);
        rc = STORE_ENOTFOUND;
    }
    sqlite3_stmt *st = NULL;
    if (rc == 0) {
        rc = prep(s, "SELECT 1 FROM participants WHERE challenge = ?1 AND name = ?2", &st, msg,
                  msglen);
    }
    if (rc == 0) {
        bind_text(st, 1, challenge);
        bind_text(st, 2, name);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            snprintf(msg, msglen, "store: participant %s of %s exists", name, challenge);
            rc = STORE_ECONFLICT;
        } else if (r != SQLITE_DONE) {
            rc = sql_err(s, r, "reading participants", msg, msglen);
        }
        sqlite3_finalize(st);
    }
    if (rc == 0) {
        rc = prep(s,
                  "INSERT INTO participants (challenge, name, token_hash, created_at) "
                  "VALUES (?1, ?2, ?3, ?4)",
                  &st, msg, msglen);
    }
    int64_t id = 0;
    if (rc == 0) {
        bind_text(st, 1, challenge);
        bind_text(st, 2, name);
        sqlite3_bind_blob(st, 3, token_hash, 32, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, now);
        int r = sqlite3_step(st);
        if (r == SQLITE_CONSTRAINT || (r & 0xff) == SQLITE_CONSTRAINT) {
            /* the name was checked above: the token hash is another participant's */
            snprintf(msg, msglen, "store: participant %s of %s: token already in use", name,
                     challenge);
            rc = STORE_ECONFLICT;
        } else if (r != SQLITE_DONE) {
            rc = sql_err(s, r, "adding a participant", msg, msglen);
        }
        id = sqlite3_last_insert_rowid(s->db);
        sqlite3_finalize(st);
    }
    rc = end_tx(s, rc, false, msg, msglen); /* no ranked row changes */
    if (rc == 0 && out) {
        memset(out, 0, sizeof *out);
        out->id = id;
        snprintf(out->name, sizeof out->name, "%s", name);
        snprintf(out->challenge, sizeof out->challenge, "%s", challenge);
        out->created_at = now;
    }
    return rc;
}

#define PARTICIPANT_COLS                                                                           \
    "SELECT p.id, p.name, p.challenge, p.created_at, p.revoked_at IS NOT NULL, "                   \
    "(SELECT count(*) FROM submissions s WHERE s.participant = p.id), "                            \
    "(SELECT count(*) FROM submissions s WHERE s.participant = p.id AND s.status = 'scored') "     \
    "FROM participants p "

/* Fills *p from a row of PARTICIPANT_COLS. */
static void participant_row(sqlite3_stmt *st, struct store_participant *p)
{
    memset(p, 0, sizeof *p);
    p->id = sqlite3_column_int64(st, 0);
    col_copy(st, 1, p->name, sizeof p->name);
    col_copy(st, 2, p->challenge, sizeof p->challenge);
    p->created_at = sqlite3_column_int64(st, 3);
    p->revoked = sqlite3_column_int(st, 4) != 0;
    p->submissions = sqlite3_column_int64(st, 5);
    p->scored = sqlite3_column_int64(st, 6);
}

/* Lists challenge's participants by name (an unknown challenge has none). */
static int sq_participant_list(struct store *base, const char *challenge,
                               struct store_participant **out, size_t *n, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    int rc = prep(s, PARTICIPANT_COLS "WHERE p.challenge = ?1 ORDER BY p.name", &st, msg, msglen);
    struct store_participant *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = SQLITE_DONE;
    if (rc == 0) {
        bind_text(st, 1, challenge);
    }
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
        void *more = grow(v, &cap, cnt, sizeof *v);
        if (!more) {
            snprintf(msg, msglen, "store: out of memory listing participants");
            rc = SL_ENOMEM;
            break;
        }
        v = more;
        participant_row(st, &v[cnt++]);
    }
    if (rc == 0 && r != SQLITE_DONE) {
        rc = sql_err(s, r, "listing participants", msg, msglen);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* Revokes participant name of challenge. */
static int sq_participant_revoke(struct store *base, const char *challenge, const char *name,
                                 chal_time now, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st;
    rc = prep(s,
              "UPDATE participants SET revoked_at = ?3 "
              "WHERE challenge = ?1 AND name = ?2 AND revoked_at IS NULL",
              &st, msg, msglen);
    if (rc == 0) {
        bind_text(st, 1, challenge);
        bind_text(st, 2, name);
        sqlite3_bind_int64(st, 3, now);
        rc = step_done(s, st, msg, msglen);
        sqlite3_finalize(st);
    }
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        snprintf(msg, msglen, "store: no active participant %s of %s", name, challenge);
        rc = STORE_ENOTFOUND;
    }
    return end(s, rc, msg, msglen);
}

/* Finds the participant by token hash. */
static int sq_token_lookup(struct store *base, const unsigned char token_hash[32],
                           struct store_participant *out, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    int rc = prep(s, PARTICIPANT_COLS "WHERE p.token_hash = ?1", &st, msg, msglen);
    if (rc == 0) {
        sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_TRANSIENT);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            participant_row(st, out);
        } else if (r == SQLITE_DONE) {
            snprintf(msg, msglen, "store: no participant has that token");
            rc = STORE_ENOTFOUND;
        } else {
            rc = sql_err(s, r, "looking up a token", msg, msglen);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- submissions ----------------------------------------------------------------------------- */

/* Reads the participant pid's usage of challenge at now into *u (inside a transaction). */
static int read_usage(struct sq_store *s, const char *challenge, int64_t pid, chal_time now,
                      struct chal_usage *u, char *msg, size_t msglen)
{
    chal_time day_end = chal_next_utc_day(now);
    chal_time day_start = day_end - DAY_US;
    sqlite3_stmt *st;
    int rc = prep(s,
                  "SELECT "
                  "coalesce(sum(status = 'scored' AND received_at >= ?3 AND received_at < ?4), 0),"
                  "coalesce(sum(status = 'scored'), 0),"
                  "coalesce(sum(status = 'scoring'), 0),"
                  "coalesce(sum(status = 'scoring' AND received_at >= ?3 AND received_at < ?4), 0)"
                  " FROM submissions WHERE challenge = ?1 AND participant = ?2",
                  &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    bind_text(st, 1, challenge);
    sqlite3_bind_int64(st, 2, pid);
    sqlite3_bind_int64(st, 3, day_start);
    sqlite3_bind_int64(st, 4, day_end);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        u->scored_today = sqlite3_column_int64(st, 0);
        u->scored_total = sqlite3_column_int64(st, 1);
        u->pending = sqlite3_column_int64(st, 2);
        u->pending_today = sqlite3_column_int64(st, 3);
    } else {
        rc = sql_err(s, r, "counting submissions", msg, msglen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Checks that pid is an active participant of challenge (STORE_ENOTFOUND otherwise). */
static int participant_active(struct sq_store *s, const char *challenge, int64_t pid, char *msg,
                              size_t msglen)
{
    sqlite3_stmt *st;
    int rc = prep(s,
                  "SELECT 1 FROM participants WHERE id = ?2 AND challenge = ?1 "
                  "AND revoked_at IS NULL",
                  &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    bind_text(st, 1, challenge);
    sqlite3_bind_int64(st, 2, pid);
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        snprintf(msg, msglen, "store: no active participant %lld of %s", (long long)pid, challenge);
        rc = STORE_ENOTFOUND;
    } else if (r != SQLITE_ROW) {
        rc = sql_err(s, r, "reading the participant", msg, msglen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Inserts the `scoring` row with a fresh id (a new id again on the rare collision). */
static int insert_scoring(struct sq_store *s, const char *challenge, int64_t pid, const char *note,
                          chal_time now, char id[STORE_SUB_ID], char *msg, size_t msglen)
{
    sqlite3_stmt *st;
    int rc = prep(s,
                  "INSERT INTO submissions (id, challenge, participant, received_at, status, note) "
                  "VALUES (?1, ?2, ?3, ?4, 'scoring', ?5)",
                  &st, msg, msglen);
    for (int attempt = 0; rc == 0 && attempt < 4; attempt++) {
        rc = random_id(id, msg, msglen);
        if (rc != 0) {
            break;
        }
        sqlite3_reset(st);
        bind_text(st, 1, id);
        bind_text(st, 2, challenge);
        sqlite3_bind_int64(st, 3, pid);
        sqlite3_bind_int64(st, 4, now);
        bind_text(st, 5, note ? note : "");
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE) {
            break;
        }
        if ((r & 0xff) != SQLITE_CONSTRAINT || attempt == 3) {
            rc = sql_err(s, r, "inserting a submission", msg, msglen);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Admits (or refuses) a submission atomically. */
static int sq_sub_admit(struct store *base, const char *challenge, int64_t pid, const char *note,
                        chal_time now, const struct chal_quota *q, chal_time opens_at,
                        chal_time closes_at, enum chal_verdict *verdict, struct chal_usage *usage,
                        int64_t *retry_after_s, char id[STORE_SUB_ID], char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    memset(usage, 0, sizeof *usage);
    *retry_after_s = 0;
    *verdict = CHAL_CLOSED;
    id[0] = '\0';
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    rc = participant_active(s, challenge, pid, msg, msglen);
    if (rc == 0) {
        rc = read_usage(s, challenge, pid, now, usage, msg, msglen);
    }
    if (rc == 0) {
        *verdict = chal_admit(q, usage, now, opens_at, closes_at, retry_after_s);
        if (*verdict == CHAL_ADMIT) {
            rc = insert_scoring(s, challenge, pid, note, now, id, msg, msglen);
        }
    }
    rc = end_tx(s, rc, false, msg, msglen); /* no ranked row changes */
    if (rc != 0) {
        id[0] = '\0';
    }
    return rc;
}

/* Updates row id with status, error and the scores sc (NULL: only status and error; a failed row
 * with sc takes only its body), stale as given. Inside a transaction. */
/* Sets the note of submission id (inside the caller's transaction). */
static int write_note(struct sq_store *s, const char *id, const char *note, char *msg,
                      size_t msglen)
{
    sqlite3_stmt *st;
    int rc = prep(s, "UPDATE submissions SET note = ?2 WHERE id = ?1", &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    bind_text(st, 1, id);
    bind_text(st, 2, note);
    rc = step_done(s, st, msg, msglen);
    sqlite3_finalize(st);
    return rc;
}

static int write_scores(struct sq_store *s, const char *id, enum store_status status,
                        const char *error, const struct store_scores *sc, bool stale, char *msg,
                        size_t msglen)
{
    sqlite3_stmt *st;
    int rc;
    if (status == STORE_SCORED) {
        rc = prep(s,
                  "UPDATE submissions SET status = ?2, error = NULL, body_sha = ?3, bytes = ?4, "
                  "pub_values = ?5, priv_values = ?6, "
                  "config_version = ?9, ref_sha = ?10, server_version = ?11, stale = ?12 "
                  "WHERE id = ?1",
                  &st, msg, msglen);
    } else if (sc) {
        rc = prep(s,
                  "UPDATE submissions SET status = ?2, error = ?13, stale = ?12, "
                  "body_sha = CASE WHEN ?3 != '' THEN ?3 ELSE body_sha END, "
                  "bytes = CASE WHEN ?3 != '' THEN ?4 ELSE bytes END WHERE id = ?1",
                  &st, msg, msglen);
    } else {
        rc = prep(s, "UPDATE submissions SET status = ?2, error = ?13, stale = ?12 WHERE id = ?1",
                  &st, msg, msglen);
    }
    if (rc != 0) {
        return rc;
    }
    bind_text(st, 1, id);
    bind_text(st, 2, status_names[status]);
    if (sc) {
        bind_text(st, 3, sc->body_sha ? sc->body_sha : "");
        sqlite3_bind_int64(st, 4, sc->bytes);
        if (status == STORE_SCORED) {
            bind_text(st, 5, sc->pub_values);
            bind_text(st, 6, sc->priv_values);
            bind_text(st, 7, sc->pub_full);
            bind_text(st, 8, sc->priv_full);
            sqlite3_bind_int64(st, 9, sc->config_version);
            bind_text(st, 10, sc->ref_sha ? sc->ref_sha : "");
            bind_text(st, 11, sc->server_version ? sc->server_version : "");
        }
    }
    sqlite3_bind_int(st, 12, stale);
    if (status != STORE_SCORED) {
        bind_text(st, 13, error ? error : "failed");
    }
    rc = step_done(s, st, msg, msglen);
    sqlite3_finalize(st);
    if (rc == 0 && status == STORE_SCORED) {
        rc = prep(s, "INSERT OR REPLACE INTO answers (id, pub_full, priv_full) VALUES (?1, ?2, ?3)",
                  &st, msg, msglen);
        if (rc == 0) {
            bind_text(st, 1, id);
            bind_text(st, 2, sc->pub_full);
            bind_text(st, 3, sc->priv_full);
            rc = step_done(s, st, msg, msglen);
            sqlite3_finalize(st);
        }
    }
    return rc;
}

/* What finishing a row needs to know of it and its challenge. */
struct sub_state {
    char challenge[STORE_NAME_MAX];
    enum store_status status;
    bool stale;
    int64_t version;             /* the challenge's current configuration version */
    char ref_sha[STORE_SHA_HEX]; /* the challenge's current reference */
};

/* Reads row id's state (inside a transaction); STORE_ENOTFOUND. */
static int sub_state(struct sq_store *s, const char *id, struct sub_state *ss, char *msg,
                     size_t msglen)
{
    sqlite3_stmt *st;
    int rc = prep(s,
                  "SELECT s.challenge, s.status, s.stale, c.version, c.ref_sha FROM submissions s "
                  "JOIN challenges c ON c.name = s.challenge WHERE s.id = ?1",
                  &st, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    bind_text(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        col_copy(st, 0, ss->challenge, sizeof ss->challenge);
        const unsigned char *t = sqlite3_column_text(st, 1);
        ss->status = STORE_FAILED;
        for (int i = 0; t && i < 3; i++) {
            if (strcmp((const char *)t, status_names[i]) == 0) {
                ss->status = (enum store_status)i;
            }
        }
        ss->stale = sqlite3_column_int(st, 2) != 0;
        ss->version = sqlite3_column_int64(st, 3);
        col_copy(st, 4, ss->ref_sha, sizeof ss->ref_sha);
    } else if (r == SQLITE_DONE) {
        snprintf(msg, msglen, "store: no submission %s", id);
        rc = STORE_ENOTFOUND;
    } else {
        rc = sql_err(s, r, "reading a submission", msg, msglen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Whether scores sc were made under something other than the challenge's current state. */
static bool scores_stale(const struct store_scores *sc, const struct sub_state *ss)
{
    return sc->config_version != ss->version ||
           strcmp(sc->ref_sha ? sc->ref_sha : "", ss->ref_sha) != 0;
}

/* Adds 1 to column col (a literal name) of challenge's re-score progress. */
static int bump(struct sq_store *s, const char *challenge, const char *col, char *msg,
                size_t msglen)
{
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE challenges SET %s = %s + 1 WHERE name = ?1", col, col);
    sqlite3_stmt *st;
    int rc = prep(s, sql, &st, msg, msglen);
    if (rc == 0) {
        bind_text(st, 1, challenge);
        rc = step_done(s, st, msg, msglen);
        sqlite3_finalize(st);
    }
    return rc;
}

/* Ends a `scoring` submission: scored or failed. STORE_ECONFLICT when it is not `scoring`. */
static int sq_sub_finish(struct store *base, const char *id, enum store_status status,
                         const char *error, const struct store_scores *sc, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    if (status == STORE_SCORING || (status == STORE_SCORED && !sc)) {
        snprintf(msg, msglen, "store: finishing %s needs scored with scores, or failed", id);
        return SL_EINVAL;
    }
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    struct sub_state ss;
    rc = sub_state(s, id, &ss, msg, msglen);
    if (rc == 0 && ss.status != STORE_SCORING) {
        snprintf(msg, msglen, "store: submission %s is %s, not scoring", id,
                 status_names[ss.status]);
        rc = STORE_ECONFLICT;
    }
    bool stale = rc == 0 && status == STORE_SCORED && scores_stale(sc, &ss);
    if (rc == 0) {
        rc = write_scores(s, id, status, error, sc, stale, msg, msglen);
    }
    if (rc == 0 && sc && sc->note) {
        rc = write_note(s, id, sc->note, msg, msglen);
    }
    if (rc == 0 && stale) {
        rc = bump(s, ss.challenge, "rescore_total", msg, msglen);
    }
    return end(s, rc, msg, msglen);
}

static int sq_sub_counts(struct store *base, struct store_count **out, size_t *n, char *msg,
                         size_t msglen)
{
    struct sq_store *s = sq_of(base);
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    int rc = prep(s,
                  "SELECT challenge, status, count(*) FROM submissions GROUP BY challenge, status "
                  "ORDER BY challenge, status",
                  &st, msg, msglen);
    struct store_count *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
        void *more = grow(v, &cap, cnt, sizeof *v);
        if (!more) {
            snprintf(msg, msglen, "store: out of memory counting submissions");
            rc = SL_ENOMEM;
            break;
        }
        v = more;
        struct store_count *c = &v[cnt++];
        col_copy(st, 0, c->challenge, sizeof c->challenge);
        const unsigned char *t = sqlite3_column_text(st, 1);
        c->status = STORE_FAILED;
        for (int i = 0; t && i < 3; i++) {
            if (strcmp((const char *)t, status_names[i]) == 0) {
                c->status = (enum store_status)i;
            }
        }
        c->n = sqlite3_column_int64(st, 2);
    }
    if (rc == 0 && r != SQLITE_DONE) {
        rc = sql_err(s, r, "counting submissions", msg, msglen);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

#define SUB_COLS_HEAD                                                                              \
    "SELECT s.seq, s.id, s.challenge, s.participant, p.name, s.received_at, s.status, s.error, "   \
    "s.note, s.body_sha, s.bytes, s.pub_values, s.priv_values, "
#define SUB_COLS_TAIL                                                                              \
    ", s.config_version, s.ref_sha, s.server_version, s.stale, s.final, s.disqualified, "          \
    "s.dq_reason FROM submissions s JOIN participants p ON p.id = s.participant "
#define SUB_COLS_FULL                                                                              \
    SUB_COLS_HEAD "a.pub_full, a.priv_full" SUB_COLS_TAIL "LEFT JOIN answers a ON a.id = s.id "
#define SUB_COLS_BRIEF SUB_COLS_HEAD "NULL, NULL" SUB_COLS_TAIL

/* Fills *sub from a row of SUB_COLS_*. Returns 0 or SL_ENOMEM (sub cleared). */
static int sub_row(sqlite3_stmt *st, struct store_sub *sub, char *msg, size_t msglen)
{
    bool oom = false;
    memset(sub, 0, sizeof *sub);
    sub->seq = sqlite3_column_int64(st, 0);
    col_copy(st, 1, sub->id, sizeof sub->id);
    col_copy(st, 2, sub->challenge, sizeof sub->challenge);
    sub->participant = sqlite3_column_int64(st, 3);
    col_copy(st, 4, sub->participant_name, sizeof sub->participant_name);
    sub->received_at = sqlite3_column_int64(st, 5);
    const unsigned char *t = sqlite3_column_text(st, 6);
    sub->status = STORE_FAILED;
    for (int i = 0; t && i < 3; i++) {
        if (strcmp((const char *)t, status_names[i]) == 0) {
            sub->status = (enum store_status)i;
        }
    }
    sub->error = col_dup(st, 7, &oom);
    sub->note = col_dup(st, 8, &oom);
    col_copy(st, 9, sub->body_sha, sizeof sub->body_sha);
    sub->bytes = sqlite3_column_int64(st, 10);
    sub->pub_values = col_dup(st, 11, &oom);
    sub->priv_values = col_dup(st, 12, &oom);
    sub->pub_full = col_dup(st, 13, &oom);
    sub->priv_full = col_dup(st, 14, &oom);
    sub->config_version = sqlite3_column_int64(st, 15);
    col_copy(st, 16, sub->ref_sha, sizeof sub->ref_sha);
    col_copy(st, 17, sub->server_version, sizeof sub->server_version);
    sub->stale = sqlite3_column_int(st, 18) != 0;
    sub->final_ = sqlite3_column_int(st, 19) != 0;
    sub->disqualified = sqlite3_column_int(st, 20) != 0;
    sub->dq_reason = col_dup(st, 21, &oom);
    if (oom) {
        store_sub_clear(sub);
        snprintf(msg, msglen, "store: out of memory reading a submission");
        return SL_ENOMEM;
    }
    return 0;
}

/* Runs a prepared SUB_COLS_* query (bound, finalized here) and collects its rows into a new
 * array. */
static int sub_rows(struct sq_store *s, sqlite3_stmt *st, struct store_sub **out, size_t *n,
                    char *msg, size_t msglen)
{
    struct store_sub *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        void *more = grow(v, &cap, cnt, sizeof *v);
        if (!more) {
            snprintf(msg, msglen, "store: out of memory listing submissions");
            rc = SL_ENOMEM;
            break;
        }
        v = more;
        if ((rc = sub_row(st, &v[cnt], msg, msglen)) != 0) {
            break;
        }
        cnt++;
    }
    if (rc == 0 && r != SQLITE_DONE) {
        rc = sql_err(s, r, "listing submissions", msg, msglen);
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        store_sub_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* Reads submission id of challenge. */
static int sq_sub_get(struct store *base, const char *challenge, const char *id, bool full,
                      struct store_sub *out, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    int rc = prep(s,
                  full ? SUB_COLS_FULL "WHERE s.challenge = ?1 AND s.id = ?2"
                       : SUB_COLS_BRIEF "WHERE s.challenge = ?1 AND s.id = ?2",
                  &st, msg, msglen);
    if (rc == 0) {
        bind_text(st, 1, challenge);
        bind_text(st, 2, id);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            rc = sub_row(st, out, msg, msglen);
        } else if (r == SQLITE_DONE) {
            snprintf(msg, msglen, "store: no submission %s in %s", id, challenge);
            rc = STORE_ENOTFOUND;
        } else {
            rc = sql_err(s, r, "reading a submission", msg, msglen);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Lists challenge's submissions (of pid, or all), newest first. */
static int sq_sub_list(struct store *base, const char *challenge, int64_t pid, bool full,
                       struct store_sub **out, size_t *n, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    *out = NULL;
    *n = 0;
#define SUB_LIST_WHERE                                                                             \
    "WHERE s.challenge = ?1 AND (?2 < 0 OR s.participant = ?2) "                                   \
    "ORDER BY s.received_at DESC, s.seq DESC"
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    int rc = prep(s, full ? SUB_COLS_FULL SUB_LIST_WHERE : SUB_COLS_BRIEF SUB_LIST_WHERE, &st, msg,
                  msglen);
#undef SUB_LIST_WHERE
    if (rc == 0) {
        bind_text(st, 1, challenge);
        sqlite3_bind_int64(st, 2, pid);
        rc = sub_rows(s, st, out, n, msg, msglen);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Selects or unselects a final. */
static int sq_sub_set_final(struct store *base, const char *challenge, const char *id, int64_t pid,
                            bool on, int64_t max_finals, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st;
    rc = prep(s,
              "SELECT status = 'scored', final, (SELECT count(*) FROM submissions f "
              "WHERE f.challenge = ?1 AND f.participant = ?3 AND f.final = 1) "
              "FROM submissions WHERE challenge = ?1 AND id = ?2 AND participant = ?3",
              &st, msg, msglen);
    bool scored = false, already = false;
    int64_t finals = 0;
    if (rc == 0) {
        bind_text(st, 1, challenge);
        bind_text(st, 2, id);
        sqlite3_bind_int64(st, 3, pid);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            scored = sqlite3_column_int(st, 0) != 0;
            already = sqlite3_column_int(st, 1) != 0;
            finals = sqlite3_column_int64(st, 2);
        } else if (r == SQLITE_DONE) {
            snprintf(msg, msglen, "store: no submission %s of participant %lld in %s", id,
                     (long long)pid, challenge);
            rc = STORE_ENOTFOUND;
        } else {
            rc = sql_err(s, r, "reading a submission", msg, msglen);
        }
        sqlite3_finalize(st);
    }
    if (rc == 0 && on && !already) {
        if (!scored) {
            snprintf(msg, msglen, "store: submission %s is not scored", id);
            rc = SL_EINVAL;
        } else if (finals >= max_finals) {
            snprintf(msg, msglen, "store: participant %lld already has %lld of %lld finals",
                     (long long)pid, (long long)finals, (long long)max_finals);
            rc = STORE_ECONFLICT;
        }
    }
    if (rc == 0 && on != already) {
        rc = prep(s, "UPDATE submissions SET final = ?2 WHERE id = ?1", &st, msg, msglen);
        if (rc == 0) {
            bind_text(st, 1, id);
            sqlite3_bind_int(st, 2, on);
            rc = step_done(s, st, msg, msglen);
            sqlite3_finalize(st);
        }
    }
    return end(s, rc, msg, msglen);
}

/* Sets or clears a disqualification. */
static int sq_sub_disqualify(struct store *base, const char *challenge, const char *id, bool dq,
                             const char *reason, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st;
    rc = prep(s,
              "UPDATE submissions SET disqualified = ?3, dq_reason = ?4 "
              "WHERE challenge = ?1 AND id = ?2",
              &st, msg, msglen);
    if (rc == 0) {
        bind_text(st, 1, challenge);
        bind_text(st, 2, id);
        sqlite3_bind_int(st, 3, dq);
        bind_text(st, 4, dq ? reason : NULL);
        rc = step_done(s, st, msg, msglen);
        sqlite3_finalize(st);
    }
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        snprintf(msg, msglen, "store: no submission %s in %s", id, challenge);
        rc = STORE_ENOTFOUND;
    }
    return end(s, rc, msg, msglen);
}

/* The rows that may rank, oldest first. */
static int sq_ranked_subs(struct store *base, const char *challenge, struct store_sub **out,
                          size_t *n, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    /* what a ranking reads, in SUB_COLS_* order; the audit columns stay empty */
    int rc = prep(s,
                  "SELECT s.seq, s.id, s.challenge, s.participant, p.name, s.received_at, "
                  "s.status, NULL, s.note, '', s.bytes, s.pub_values, s.priv_values, NULL, NULL, "
                  "0, '', '', s.stale, s.final, s.disqualified, NULL "
                  "FROM submissions s JOIN participants p ON p.id = s.participant "
                  "WHERE s.challenge = ?1 AND s.status = 'scored' "
                  "AND s.disqualified = 0 AND p.revoked_at IS NULL "
                  "ORDER BY s.received_at, s.seq",
                  &st, msg, msglen);
    if (rc == 0) {
        bind_text(st, 1, challenge);
        rc = sub_rows(s, st, out, n, msg, msglen);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- re-scoring ------------------------------------------------------------------------------ */

/* Starts a re-score of challenge. */
static int sq_rescore_begin(struct store *base, const char *challenge, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    return end(s, rescore_begin_tx(s, challenge, msg, msglen), msg, msglen);
}

/* The oldest stale scored submission. */
static int sq_rescore_next(struct store *base, struct store_sub *out, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    int rc = prep(s,
                  SUB_COLS_BRIEF "WHERE s.stale = 1 AND s.status = 'scored' "
                                 "ORDER BY s.received_at, s.seq LIMIT 1",
                  &st, msg, msglen);
    if (rc == 0) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            rc = sub_row(st, out, msg, msglen);
        } else if (r == SQLITE_DONE) {
            snprintf(msg, msglen, "store: nothing to re-score");
            rc = STORE_ENOTFOUND;
        } else {
            rc = sql_err(s, r, "finding a stale submission", msg, msglen);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Stores a re-score. A result made under a configuration or reference that changed meanwhile
 * leaves the row stale and counts nothing (the next re-score takes it again). */
static int sq_rescore_finish(struct store *base, const char *id, bool ok, const char *error,
                             const struct store_scores *sc, char *msg, size_t msglen)
{
    struct sq_store *s = sq_of(base);
    if (ok && !sc) {
        snprintf(msg, msglen, "store: re-score of %s without scores", id);
        return SL_EINVAL;
    }
    int rc = begin(s, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    struct sub_state ss;
    rc = sub_state(s, id, &ss, msg, msglen);
    if (rc == 0 && (ss.status != STORE_SCORED || !ss.stale)) {
        snprintf(msg, msglen, "store: submission %s is not waiting for a re-score", id);
        rc = STORE_ECONFLICT;
    }
    bool stale = rc == 0 && ok && scores_stale(sc, &ss);
    if (rc == 0) {
        rc = write_scores(s, id, ok ? STORE_SCORED : STORE_FAILED, error, ok ? sc : NULL, stale,
                          msg, msglen);
    }
    if (rc == 0 && !stale) {
        rc = bump(s, ss.challenge, ok ? "rescore_done" : "rescore_failed", msg, msglen);
    }
    return end(s, rc, msg, msglen);
}

static const struct store_ops sq_ops = {
    .name = "sqlite",
    .close = sq_close,
    .generation = sq_generation,
    .challenge_put = sq_challenge_put,
    .reference_put = sq_reference_put,
    .challenge_get = sq_challenge_get,
    .challenge_list = sq_challenge_list,
    .participant_add = sq_participant_add,
    .participant_list = sq_participant_list,
    .participant_revoke = sq_participant_revoke,
    .token_lookup = sq_token_lookup,
    .sub_admit = sq_sub_admit,
    .sub_finish = sq_sub_finish,
    .sub_get = sq_sub_get,
    .sub_list = sq_sub_list,
    .sub_set_final = sq_sub_set_final,
    .sub_disqualify = sq_sub_disqualify,
    .ranked_subs = sq_ranked_subs,
    .sub_counts = sq_sub_counts,
    .rescore_begin = sq_rescore_begin,
    .rescore_next = sq_rescore_next,
    .rescore_finish = sq_rescore_finish,
};
