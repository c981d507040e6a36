/* test_store.c - the store (server/store.h: store_sqlite.c, store_pg.c, blobs.c) on a real
 * database: SQLite in a fresh temporary directory per test (removed after), or, when
 * SEGLOSS_TEST_PG names a PostgreSQL server (postgresql://USER@HOST:PORT, no database; the
 * password from libpq's environment: tests/pg/pgserver.py starts one and runs this program),
 * the same tests on PostgreSQL, a fresh database per test with its blobs in the temporary
 * directory, and the tests of replicas sharing one database (test_pg_*). Expected values are worked
 * by hand in the comments; SHA-256 digests come from FIPS 180-2's example ("abc") or from Python:
 *   /usr/bin/python3 -c "import hashlib; print(hashlib.sha256(b'...').hexdigest())"
 * Times: T0 = 2027-01-07T12:00:00Z in microseconds, from
 *   /usr/bin/python3 -c "import datetime as d; print(int(d.datetime(2027,1,7,12,
 *       tzinfo=d.timezone.utc).timestamp())*10**6)"  -> 1799323200000000
 * and 2027-01-06T23:59:59Z -> 1799279999000000 (the previous UTC day) the same way.
 * The quota verdicts come from chal_admit (chal_rules.h); these tests count admissions and the
 * usage the store reads, not the rules' Retry-After values. */
#include <dirent.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "segloss.h"
#include "store.h"

#define T0 1799323200000000LL
#define YESTERDAY 1799279999000000LL
#define SEC 1000000LL
#define DIRLEN 256 /* a temporary directory's path, with room to spare under PATH_MAX */

#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_REF                                                                                    \
    "711251b8655a6c2624081a6769b18a5f6dc8a8b3c6a805afe82571e6ef956ad2" /* "reference bytes" */
#define SHA_ORPHAN                                                                                 \
    "88f6811ab5d8fc6d3177f9b7609ae0fcebfda187e5046b62d38bb539e88b74d7" /* "orphan"                 \
                                                                        */
#define SHA_BODY                                                                                   \
    "0e260cb8cd2cc3399320fc70aaddf9b87aa58ef03e9d8f6ebcc2b563f1eb6672" /* "body one"               \
                                                                        */

/* ---- helpers --------------------------------------------------------------------------------- */

/* Removes path and everything under it (directories two levels deep at most here). */
static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A fresh temporary directory into dir (DIRLEN bytes). */
static void make_dir(char *dir)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, DIRLEN, "%s/segloss-store-XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
}

/* Whether dir/rel exists. */
static bool exists(const char *dir, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    struct stat st;
    return stat(p, &st) == 0;
}

/* The PostgreSQL server under test (SEGLOSS_TEST_PG), NULL for SQLite; set once by main(). */
static const char *pg_server;

/* The database of test directory dir: its base name (mkdtemp's, unique), into name. */
static void pg_dbname(const char *dir, char *name, size_t n)
{
    const char *b = strrchr(dir, '/');
    snprintf(name, n, "%s", b ? b + 1 : dir);
}

/* The URI of database db on the server under test, into uri (n bytes). */
static void pg_uri(const char *db, char *uri, size_t n)
{
    snprintf(uri, n, "%s/%s", pg_server, db);
}

/* A connection of the test's own to db (not through the store), checked. */
static PGconn *pg_conn(const char *db)
{
    char uri[512];
    pg_uri(db, uri, sizeof uri);
    PGconn *c = PQconnectdb(uri);
    CHECK(c && PQstatus(c) == CONNECTION_OK);
    if (c && PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect %s: %s\n", db, PQerrorMessage(c));
    }
    return c;
}

/* Runs sql on c; returns the first value of its answer as an integer (-1 without one). */
static long long pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    CHECK(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    }
    long long v = -1;
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    }
    PQclear(r);
    return v;
}

/* Creates the database of dir when it does not exist yet. */
static void pg_ensure_db(const char *dir)
{
    char name[DIRLEN], sql[DIRLEN + 64];
    pg_dbname(dir, name, sizeof name);
    PGconn *c = pg_conn("postgres");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_database WHERE datname = '%s'", name);
    if (pg_exec(c, sql) == 0) {
        snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
        pg_exec(c, sql);
    }
    PQfinish(c);
}

/* Opens the store of dir (SQLite in dir; or PostgreSQL, its database named after dir, its blobs
 * in dir/blobs) with a lease of lease_s seconds (PostgreSQL; 0: the default). Returns 0 or the
 * open's code, message in msg. */
static int open_at(const char *dir, int lease_s, struct store **s, char *msg, size_t msglen)
{
    if (!pg_server) {
        return store_open_sqlite(dir, s, msg, msglen);
    }
    char name[DIRLEN], uri[512], blobs[PATH_MAX];
    pg_dbname(dir, name, sizeof name);
    pg_ensure_db(dir);
    pg_uri(name, uri, sizeof uri);
    snprintf(blobs, sizeof blobs, "%s/blobs", dir);
    struct store_options o = {NULL, uri, NULL, blobs, lease_s};
    return store_open(&o, s, msg, msglen);
}

/* Opens the store of dir, checking success. */
static struct store *open_ok(const char *dir)
{
    char msg[256] = "";
    struct store *s = NULL;
    int rc = open_at(dir, 0, &s, msg, sizeof msg);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", msg);
    }
    return s;
}

/* A token hash whose 32 bytes are all b. */
static void hash_of(unsigned char h[32], unsigned char b)
{
    memset(h, b, 32);
}

/* Creates challenge c (configuration version 1, no reference) and, when name is not NULL,
 * participant name with token hash bytes tok; returns its id (0 without a name). */
static int64_t setup(struct store *s, const char *c, const char *name, unsigned char tok)
{
    char msg[256];
    bool created = false;
    int64_t v = 0;
    CHECK_INT(store_challenge_put(s, c, "{}", NULL, false, T0, &created, &v, msg, sizeof msg), 0);
    CHECK_INT(v, 1);
    if (!name) {
        return 0;
    }
    unsigned char h[32];
    hash_of(h, tok);
    struct store_participant p;
    CHECK_INT(store_participant_add(s, c, name, h, T0, &p, msg, sizeof msg), 0);
    return p.id;
}

/* Adds participant name (token hash bytes tok) to existing challenge c; returns its id. */
static int64_t add_participant(struct store *s, const char *c, const char *name, unsigned char tok)
{
    char msg[256];
    unsigned char h[32];
    hash_of(h, tok);
    struct store_participant p;
    CHECK_INT(store_participant_add(s, c, name, h, T0, &p, msg, sizeof msg), 0);
    return p.id;
}

static const struct chal_quota lots = {100, -1, 100};

/* Admits one submission at now under quota q, checking it is admitted; id into id. */
static void admit_ok(struct store *s, const char *c, int64_t pid, chal_time now,
                     const struct chal_quota *q, char id[STORE_SUB_ID])
{
    char msg[256];
    enum chal_verdict v;
    struct chal_usage u;
    int64_t retry;
    CHECK_INT(store_sub_admit(s, c, pid, "n", now, q, INT64_MIN, INT64_MAX, &v, &u, &retry, id, msg,
                              sizeof msg),
              0);
    CHECK_INT(v, CHAL_ADMIT);
}

/* Finishes id as scored with pub_values pv under configuration version ver and reference ref. */
static int finish_scored(struct store *s, const char *id, const char *pv, int64_t ver,
                         const char *ref)
{
    char msg[256];
    struct store_scores sc = {"",  0,   pv,      "{\"k\": 2}", "{\"full\": 1}", "{\"full\": 2}",
                              ver, ref, "1.2.3", NULL};
    return store_sub_finish(s, id, STORE_SCORED, NULL, &sc, msg, sizeof msg);
}

/* Admits and scores one submission at now (version 1, no reference); id into id. */
static void scored_sub(struct store *s, const char *c, int64_t pid, chal_time now,
                       char id[STORE_SUB_ID])
{
    admit_ok(s, c, pid, now, &lots, id);
    CHECK_INT(finish_scored(s, id, "{\"k\": 1}", 1, ""), 0);
}

/* ---- open, schema, recovery ------------------------------------------------------------------ */

/* A fresh directory gets segloss.db in WAL mode at schema version 1 and blobs/. */
static void test_open_fresh(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    CHECK(exists(dir, "blobs"));
    CHECK(strcmp(store_backend_name(s), pg_server ? "postgresql" : "sqlite") == 0);
    store_close(s);
    if (pg_server) {
        /* PostgreSQL: the schema table says 1, and the re-score job row is there once */
        char name[DIRLEN];
        pg_dbname(dir, name, sizeof name);
        PGconn *c = pg_conn(name);
        CHECK_INT(pg_exec(c, "SELECT version FROM segloss_schema"), 1);
        CHECK_INT(pg_exec(c, "SELECT count(*) FROM segloss_jobs"), 1);
        PQfinish(c);
    }
    CHECK(pg_server || exists(dir, "segloss.db"));
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/segloss.db", dir);
    sqlite3 *db = NULL;
    if (pg_server) {
        goto reopen;
    }
    CHECK_INT(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_stmt *st;
    CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK(strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0);
    sqlite3_finalize(st);
    CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
reopen:
    /* opening again keeps the data: a challenge written before is there after */
    s = open_ok(dir);
    char msg[256];
    bool created;
    int64_t v;
    CHECK_INT(store_challenge_put(s, "c1", "{}", NULL, false, T0, &created, &v, msg, sizeof msg),
              0);
    store_close(s);
    s = open_ok(dir);
    struct store_challenge c;
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    store_challenge_clear(&c);
    store_close(s);
    store_close(NULL);
    rm_tree(dir);
}

/* A database whose user_version is 99 (newer than 1) is refused with both versions named. */
static void test_newer_schema_refused(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    store_close(open_ok(dir));
    if (pg_server) {
        char name[DIRLEN], msg[512] = "";
        pg_dbname(dir, name, sizeof name);
        PGconn *c = pg_conn(name);
        pg_exec(c, "UPDATE segloss_schema SET version = 99");
        struct store *s = (struct store *)1;
        int rc = open_at(dir, 0, &s, msg, sizeof msg);
        CHECK(rc < 0);
        CHECK(s == NULL);
        CHECK_HAS(msg, "version 99, newer than this seglossd's 1");
        CHECK_INT(pg_exec(c, "SELECT version FROM segloss_schema"), 99);
        PQfinish(c);
        rm_tree(dir);
        return;
    }
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/segloss.db", dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(p, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char msg[256] = "";
    struct store *s = (struct store *)1;
    int rc = store_open_sqlite(dir, &s, msg, sizeof msg);
    CHECK(rc < 0);
    CHECK(s == NULL);
    CHECK_HAS(msg, "99");
    CHECK_HAS(msg, "version 99, newer than this seglossd's 1");
    /* and the refused database is left as it was */
    CHECK_INT(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_stmt *st;
    CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(st, 0), 99);
    sqlite3_finalize(st);
    sqlite3_close(db);
    rm_tree(dir);
}

/* A `scoring` row left by a closed store is failed/"interrupted" at the next open, and then does
 * not hold a slot: with per_day 1 a new submission is admitted (pending 0, scored 0). */
static void test_interrupted(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    int64_t pid = setup(s, "c1", "alice", 1);
    char id[STORE_SUB_ID];
    admit_ok(s, "c1", pid, T0, &lots, id);
    store_close(s);
    s = open_ok(dir);
    char msg[256];
    struct store_sub sub;
    CHECK_INT(store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK_INT(sub.status, STORE_FAILED);
    CHECK(sub.error && strcmp(sub.error, "interrupted") == 0);
    store_sub_clear(&sub);
    struct chal_quota one = {1, -1, 1};
    enum chal_verdict v;
    struct chal_usage u;
    int64_t retry;
    char id2[STORE_SUB_ID];
    CHECK_INT(store_sub_admit(s, "c1", pid, NULL, T0 + SEC, &one, INT64_MIN, INT64_MAX, &v, &u,
                              &retry, id2, msg, sizeof msg),
              0);
    CHECK_INT(v, CHAL_ADMIT);
    CHECK_INT(u.pending, 0);
    CHECK_INT(u.scored_total, 0);
    store_close(s);
    rm_tree(dir);
}

/* ---- blobs ----------------------------------------------------------------------------------- */

/* "abc" round trips under its FIPS 180-2 digest at blobs/ba/ba78...; a second put is the same
 * single file; the empty blob works; unknown and malformed names are refused. */
static void test_blob_roundtrip(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256], sha[STORE_SHA_HEX];
    CHECK_INT(store_blob_put(s, "abc", 3, sha, msg, sizeof msg), 0);
    CHECK(strcmp(sha, SHA_ABC) == 0);
    CHECK(exists(dir, "blobs/ba/" SHA_ABC));
    void *data = NULL;
    size_t len = 0;
    CHECK_INT(store_blob_get(s, SHA_ABC, &data, &len, msg, sizeof msg), 0);
    CHECK_INT(len, 3);
    CHECK(data && memcmp(data, "abc", 3) == 0);
    free(data);
    /* idempotent: same digest, and the subdirectory holds exactly one entry besides . and .. */
    CHECK_INT(store_blob_put(s, "abc", 3, sha, msg, sizeof msg), 0);
    CHECK(strcmp(sha, SHA_ABC) == 0);
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/blobs/ba", dir);
    DIR *d = opendir(sub);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        entries += e->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    CHECK_INT(entries, 1);
    CHECK_INT(store_blob_put(s, "", 0, sha, msg, sizeof msg), 0);
    CHECK(strcmp(sha, SHA_EMPTY) == 0);
    CHECK_INT(store_blob_get(s, SHA_EMPTY, &data, &len, msg, sizeof msg), 0);
    CHECK_INT(len, 0);
    CHECK(data != NULL);
    free(data);
    CHECK_INT(store_blob_get(s, SHA_ORPHAN, &data, &len, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK(data == NULL);
    CHECK_INT(store_blob_get(s, "../segloss.db", &data, &len, msg, sizeof msg), SL_EINVAL);
    CHECK_INT(store_blob_get(s, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                             &data, &len, msg, sizeof msg),
              SL_EINVAL);
    store_close(s);
    rm_tree(dir);
}

/* At open, blobs named by a challenge's ref_sha or a submission's body_sha stay; an unnamed blob
 * and a leftover temporary file go. */
static void test_open_sweeps(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256], sha[STORE_SHA_HEX];
    int64_t pid = setup(s, "c1", "alice", 1);
    CHECK_INT(store_blob_put(s, "reference bytes", 15, sha, msg, sizeof msg), 0);
    CHECK(strcmp(sha, SHA_REF) == 0);
    bool created;
    CHECK_INT(
        store_reference_put(s, "c1", SHA_REF, "{}", NULL, false, T0, &created, msg, sizeof msg), 0);
    CHECK_INT(store_blob_put(s, "body one", 8, sha, msg, sizeof msg), 0);
    CHECK(strcmp(sha, SHA_BODY) == 0);
    char id[STORE_SUB_ID];
    admit_ok(s, "c1", pid, T0, &lots, id);
    struct store_scores sc = {SHA_BODY, 8, "{}", "{}", NULL, NULL, 1, SHA_REF, "1", NULL};
    CHECK_INT(store_sub_finish(s, id, STORE_SCORED, NULL, &sc, msg, sizeof msg), 0);
    CHECK_INT(store_blob_put(s, "orphan", 6, sha, msg, sizeof msg), 0);
    CHECK(strcmp(sha, SHA_ORPHAN) == 0);
    store_close(s);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/blobs/ba/.tmp-" SHA_ABC "-0123456789abcdef", dir);
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/blobs/ba", dir);
    mkdir(sub, 0700); /* no blob starting with "ba" was written: the subdirectory is new */
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("half", f);
        fclose(f);
    }
    CHECK(exists(dir, "blobs/88/" SHA_ORPHAN));
    s = open_ok(dir);
    CHECK(exists(dir, "blobs/71/" SHA_REF));
    CHECK(exists(dir, "blobs/0e/" SHA_BODY));
    /* PostgreSQL sweeps nothing at open: the orphan could be another replica's blob whose row
     * has not committed yet */
    CHECK(exists(dir, "blobs/88/" SHA_ORPHAN) == (pg_server != NULL));
    CHECK(exists(dir, "blobs/ba/.tmp-" SHA_ABC "-0123456789abcdef") == (pg_server != NULL));
    store_close(s);
    rm_tree(dir);
}

/* ---- challenges ------------------------------------------------------------------------------ */

/* Create (version 1), replace (2), read back, list by name, counts; unknown names. */
static void test_challenge_put_get(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    bool created = false;
    int64_t v = 0;
    CHECK_INT(
        store_challenge_put(s, "zeta", "{\"a\":1}", NULL, false, T0, &created, &v, msg, sizeof msg),
        0);
    CHECK(created);
    CHECK_INT(v, 1);
    CHECK_INT(store_challenge_put(s, "zeta", "{\"a\":2}", "[\"x\"]", false, T0 + SEC, &created, &v,
                                  msg, sizeof msg),
              0);
    CHECK(!created);
    CHECK_INT(v, 2);
    CHECK_INT(store_challenge_put(s, "alpha", "{}", NULL, false, T0, &created, &v, msg, sizeof msg),
              0);
    CHECK(created);
    CHECK_INT(v, 1);
    struct store_challenge c;
    CHECK_INT(store_challenge_get(s, "zeta", &c, msg, sizeof msg), 0);
    CHECK(strcmp(c.name, "zeta") == 0);
    CHECK(strcmp(c.config, "{\"a\":2}") == 0);
    CHECK_INT(c.version, 2);
    CHECK(c.reference == NULL);
    CHECK(strcmp(c.ref_sha, "") == 0);
    CHECK(c.public_ids && strcmp(c.public_ids, "[\"x\"]") == 0);
    CHECK_INT(c.created_at, T0);
    CHECK_INT(c.updated_at, T0 + SEC);
    CHECK_INT(c.rescore_total, 0);
    CHECK(!c.rescore_running);
    CHECK_INT(c.participants, 0);
    CHECK_INT(c.submissions, 0);
    store_challenge_clear(&c);
    CHECK_INT(store_challenge_get(s, "nope", &c, msg, sizeof msg), STORE_ENOTFOUND);
    struct store_challenge *all = NULL;
    size_t n = 0;
    CHECK_INT(store_challenge_list(s, &all, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK(strcmp(all[0].name, "alpha") == 0);
        CHECK(strcmp(all[1].name, "zeta") == 0);
    }
    store_challenge_free(all, n);
    /* counts: 2 participants, 1 revoked -> 1; 3 submissions (any status) -> 3 */
    int64_t a = add_participant(s, "zeta", "a", 1);
    add_participant(s, "zeta", "b", 2);
    CHECK_INT(store_participant_revoke(s, "zeta", "b", T0, msg, sizeof msg), 0);
    char id[STORE_SUB_ID];
    scored_sub(s, "zeta", a, T0, id);
    admit_ok(s, "zeta", a, T0 + 1, &lots, id);
    admit_ok(s, "zeta", a, T0 + 2, &lots, id);
    CHECK_INT(store_sub_finish(s, id, STORE_FAILED, "bad shape", NULL, msg, sizeof msg), 0);
    CHECK_INT(store_challenge_get(s, "zeta", &c, msg, sizeof msg), 0);
    CHECK_INT(c.participants, 1);
    CHECK_INT(c.submissions, 3);
    store_challenge_clear(&c);
    store_close(s);
    rm_tree(dir);
}

/* The reference: unknown challenge, first (created), replaced (not created), fields. */
static void test_reference_put(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    bool created = false;
    CHECK_INT(
        store_reference_put(s, "nope", SHA_REF, "{}", NULL, false, T0, &created, msg, sizeof msg),
        STORE_ENOTFOUND);
    setup(s, "c1", NULL, 0);
    CHECK_INT(store_reference_put(s, "c1", SHA_ABC, "{\"ids\":[]}", "[\"a\"]", false, T0 + SEC,
                                  &created, msg, sizeof msg),
              0);
    CHECK(created);
    CHECK_INT(store_reference_put(s, "c1", SHA_REF, "{\"ids\":[1]}", "[\"b\"]", false, T0 + 2 * SEC,
                                  &created, msg, sizeof msg),
              0);
    CHECK(!created);
    struct store_challenge c;
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    CHECK(strcmp(c.ref_sha, SHA_REF) == 0);
    CHECK(c.reference && strcmp(c.reference, "{\"ids\":[1]}") == 0);
    CHECK(c.public_ids && strcmp(c.public_ids, "[\"b\"]") == 0);
    CHECK_INT(c.version, 1); /* a reference does not change the configuration's version */
    CHECK_INT(c.updated_at, T0 + 2 * SEC);
    store_challenge_clear(&c);
    store_close(s);
    rm_tree(dir);
}

/* ---- participants ---------------------------------------------------------------------------- */

/* Add, taken names (also revoked ones), unknown challenge, list with counts, revoke, lookup. */
static void test_participants(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    setup(s, "c1", NULL, 0);
    setup(s, "c2", NULL, 0);
    unsigned char h[32];
    struct store_participant p;
    hash_of(h, 0xab);
    CHECK_INT(store_participant_add(s, "nope", "bob", h, T0, &p, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_INT(store_participant_add(s, "c1", "bob", h, T0, &p, msg, sizeof msg), 0);
    CHECK(strcmp(p.name, "bob") == 0 && strcmp(p.challenge, "c1") == 0);
    CHECK(!p.revoked);
    CHECK_INT(p.created_at, T0);
    int64_t bob = p.id;
    hash_of(h, 0xcd);
    CHECK_INT(store_participant_add(s, "c1", "bob", h, T0, &p, msg, sizeof msg), STORE_ECONFLICT);
    CHECK(strstr(msg, "cdcdcdcd") == NULL); /* never a token hash in a message */
    /* the same name in another challenge is another participant */
    CHECK_INT(store_participant_add(s, "c2", "bob", h, T0, &p, msg, sizeof msg), 0);
    /* the same token hash twice is refused */
    CHECK_INT(store_participant_add(s, "c1", "carl", h, T0, &p, msg, sizeof msg), STORE_ECONFLICT);
    CHECK(strstr(msg, "cdcdcdcd") == NULL);
    int64_t amy = add_participant(s, "c1", "amy", 0x01);
    char id[STORE_SUB_ID];
    scored_sub(s, "c1", amy, T0, id);
    scored_sub(s, "c1", amy, T0 + 1, id);
    admit_ok(s, "c1", amy, T0 + 2, &lots, id);
    struct store_participant *v = NULL;
    size_t n = 0;
    CHECK_INT(store_participant_list(s, "c1", &v, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 2); /* amy, bob by name */
    if (n == 2) {
        CHECK(strcmp(v[0].name, "amy") == 0);
        CHECK_INT(v[0].submissions, 3); /* two scored, one scoring */
        CHECK_INT(v[0].scored, 2);
        CHECK(strcmp(v[1].name, "bob") == 0);
        CHECK_INT(v[1].submissions, 0);
    }
    free(v);
    CHECK_INT(store_participant_revoke(s, "c1", "bob", T0, msg, sizeof msg), 0);
    CHECK_INT(store_participant_revoke(s, "c1", "bob", T0, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_INT(store_participant_revoke(s, "c1", "nobody", T0, msg, sizeof msg), STORE_ENOTFOUND);
    /* a revoked name stays taken */
    hash_of(h, 0xef);
    CHECK_INT(store_participant_add(s, "c1", "bob", h, T0, &p, msg, sizeof msg), STORE_ECONFLICT);
    /* lookup finds the revoked participant and says so */
    hash_of(h, 0xab);
    CHECK_INT(store_token_lookup(s, h, &p, msg, sizeof msg), 0);
    CHECK_INT(p.id, bob);
    CHECK(p.revoked);
    CHECK(strcmp(p.challenge, "c1") == 0);
    hash_of(h, 0x01);
    CHECK_INT(store_token_lookup(s, h, &p, msg, sizeof msg), 0);
    CHECK_INT(p.id, amy);
    CHECK(!p.revoked);
    CHECK_INT(p.scored, 2);
    hash_of(h, 0x77);
    CHECK_INT(store_token_lookup(s, h, &p, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK(strstr(msg, "77777777") == NULL);
    store_close(s);
    rm_tree(dir);
}

/* ---- admission ------------------------------------------------------------------------------- */

/* The usage the store reads: scored today / in total, pending, pending today; failed rows and
 * other participants' rows do not count; a refused submission inserts no row. */
static void test_admit_usage(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    int64_t pid = setup(s, "c1", "alice", 1);
    int64_t other = add_participant(s, "c1", "bob", 2);
    char id[STORE_SUB_ID];
    scored_sub(s, "c1", pid, YESTERDAY, id); /* the previous UTC day: total only */
    scored_sub(s, "c1", pid, T0 - SEC, id);  /* today */
    scored_sub(s, "c1", other, T0 - SEC, id);
    admit_ok(s, "c1", pid, T0 - 2 * SEC, &lots, id);
    CHECK_INT(store_sub_finish(s, id, STORE_FAILED, "bad", NULL, msg, sizeof msg), 0);
    admit_ok(s, "c1", pid, YESTERDAY - SEC, &lots, id); /* pending since yesterday */
    enum chal_verdict v;
    struct chal_usage u;
    int64_t retry;
    char nid[STORE_SUB_ID];
    /* usage before this one: scored today 1, total 2, pending 1 (yesterday's), pending today 0 */
    CHECK_INT(store_sub_admit(s, "c1", pid, "hello", T0, &lots, INT64_MIN, INT64_MAX, &v, &u,
                              &retry, nid, msg, sizeof msg),
              0);
    CHECK_INT(v, CHAL_ADMIT);
    CHECK_INT(u.scored_today, 1);
    CHECK_INT(u.scored_total, 2);
    CHECK_INT(u.pending, 1);
    CHECK_INT(u.pending_today, 0);
    CHECK_INT(strlen(nid), 16);
    CHECK_INT(strspn(nid, "0123456789abcdef"), 16);
    struct store_sub sub;
    CHECK_INT(store_sub_get(s, "c1", nid, false, &sub, msg, sizeof msg), 0);
    CHECK_INT(sub.status, STORE_SCORING);
    CHECK(strcmp(sub.note, "hello") == 0);
    CHECK_INT(sub.received_at, T0);
    CHECK(strcmp(sub.participant_name, "alice") == 0);
    store_sub_clear(&sub);
    /* and now pending 2, of which today 1 */
    CHECK_INT(store_sub_admit(s, "c1", pid, NULL, T0 + SEC, &lots, INT64_MIN, INT64_MAX, &v, &u,
                              &retry, nid, msg, sizeof msg),
              0);
    CHECK_INT(u.pending, 2);
    CHECK_INT(u.pending_today, 1);
    /* a window not yet open: refused, no row (alice has 6 rows before and after) */
    struct store_sub *list = NULL;
    size_t n = 0;
    CHECK_INT(store_sub_admit(s, "c1", pid, NULL, T0, &lots, T0 + SEC, INT64_MAX, &v, &u, &retry,
                              nid, msg, sizeof msg),
              0);
    CHECK_INT(v, CHAL_NOT_OPEN);
    CHECK(nid[0] == '\0');
    CHECK_INT(store_sub_list(s, "c1", pid, false, &list, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 6);
    store_sub_free(list, n);
    /* a participant of another challenge, an unknown one and a revoked one: not found */
    setup(s, "c2", NULL, 0);
    int64_t c2p = add_participant(s, "c2", "carl", 3);
    CHECK_INT(store_sub_admit(s, "c1", c2p, NULL, T0, &lots, INT64_MIN, INT64_MAX, &v, &u, &retry,
                              nid, msg, sizeof msg),
              STORE_ENOTFOUND);
    CHECK_INT(store_sub_admit(s, "c1", 9999, NULL, T0, &lots, INT64_MIN, INT64_MAX, &v, &u, &retry,
                              nid, msg, sizeof msg),
              STORE_ENOTFOUND);
    CHECK_INT(store_participant_revoke(s, "c1", "bob", T0, msg, sizeof msg), 0);
    CHECK_INT(store_sub_admit(s, "c1", other, NULL, T0, &lots, INT64_MIN, INT64_MAX, &v, &u, &retry,
                              nid, msg, sizeof msg),
              STORE_ENOTFOUND);
    store_close(s);
    rm_tree(dir);
}

struct racer {
    struct store *s;
    int64_t pid;
    const struct chal_quota *q;
    int admitted, rc;
};

/* One concurrent submitter: one store_sub_admit at T0. */
static void *race(void *arg)
{
    struct racer *r = arg;
    char msg[256], id[STORE_SUB_ID];
    enum chal_verdict v;
    struct chal_usage u;
    int64_t retry;
    r->rc = store_sub_admit(r->s, "c1", r->pid, NULL, T0, r->q, INT64_MIN, INT64_MAX, &v, &u,
                            &retry, id, msg, sizeof msg);
    r->admitted = r->rc == 0 && v == CHAL_ADMIT;
    return NULL;
}

/* Runs 8 concurrent admissions; returns how many were admitted (all calls must succeed). */
static int race8(struct store *s, int64_t pid, const struct chal_quota *q)
{
    pthread_t t[8];
    struct racer r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){s, pid, q, 0, -1};
        CHECK_INT(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int admitted = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(r[i].rc, 0);
        admitted += r[i].admitted;
    }
    return admitted;
}

/* k slots and 8 submissions at once give exactly k admissions: per_day 3 with concurrent 100 ->
 * 3; then a second participant with 2 scored today -> 1 of 8. */
static void test_admit_concurrent(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    int64_t pid = setup(s, "c1", "alice", 1);
    struct chal_quota q = {3, -1, 100};
    CHECK_INT(race8(s, pid, &q), 3);
    struct store_sub *list = NULL;
    size_t n = 0;
    CHECK_INT(store_sub_list(s, "c1", pid, false, &list, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 3);
    store_sub_free(list, n);
    int64_t bob = add_participant(s, "c1", "bob", 2);
    char id[STORE_SUB_ID];
    scored_sub(s, "c1", bob, T0 - SEC, id);
    scored_sub(s, "c1", bob, T0 - SEC, id);
    CHECK_INT(race8(s, bob, &q), 1);
    store_close(s);
    rm_tree(dir);
}

/* ---- finishing, reading, listing ------------------------------------------------------------- */

/* Scored (values stored, not stale), failed with a body, a second finish, bad arguments, and a
 * scored row whose configuration changed meanwhile (stale, counted in the re-score's total). */
/* The generation moves on with every write that may change the standings or a configuration,
 * and stays with an admission or a new participant (neither changes a ranked row). */
static void test_generation(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    uint64_t g0 = store_generation(s);
    int64_t pid = setup(s, "c1", "alice", 1); /* a challenge (moves) and a participant */
    uint64_t g1 = store_generation(s);
    CHECK(g1 == g0 + 1);
    add_participant(s, "c1", "bob", 2);
    CHECK(store_generation(s) == g1);
    char id[STORE_SUB_ID];
    admit_ok(s, "c1", pid, T0, &lots, id);
    CHECK(store_generation(s) == g1);
    struct store_scores sc = {SHA_BODY, 8, "{}", "{}", NULL, NULL, 1, "", "1", NULL};
    CHECK_INT(store_sub_finish(s, id, STORE_SCORED, NULL, &sc, msg, sizeof msg), 0);
    CHECK(store_generation(s) == g1 + 1);
    CHECK_INT(store_sub_disqualify(s, "c1", id, true, "r", msg, sizeof msg), 0);
    CHECK(store_generation(s) == g1 + 2);
    store_close(s);
    rm_tree(dir);
}

static void test_sub_finish(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    int64_t pid = setup(s, "c1", "alice", 1);
    char id[STORE_SUB_ID];
    admit_ok(s, "c1", pid, T0, &lots, id);
    struct store_scores sc = {SHA_BODY,     8, "{\"k\": 1}", "{\"k\": 2}", "{\"f\": 1}",
                              "{\"f\": 2}", 1, "",           "9.9.9",      NULL};
    CHECK_INT(store_sub_finish(s, id, STORE_SCORED, NULL, &sc, msg, sizeof msg), 0);
    struct store_sub sub;
    CHECK_INT(store_sub_get(s, "c1", id, true, &sub, msg, sizeof msg), 0);
    CHECK_INT(sub.status, STORE_SCORED);
    CHECK(sub.error == NULL);
    CHECK(strcmp(sub.body_sha, SHA_BODY) == 0);
    CHECK_INT(sub.bytes, 8);
    CHECK(strcmp(sub.pub_values, "{\"k\": 1}") == 0);
    CHECK(strcmp(sub.priv_values, "{\"k\": 2}") == 0);
    CHECK(sub.pub_full && strcmp(sub.pub_full, "{\"f\": 1}") == 0);
    CHECK(sub.priv_full && strcmp(sub.priv_full, "{\"f\": 2}") == 0);
    CHECK_INT(sub.config_version, 1);
    CHECK(strcmp(sub.server_version, "9.9.9") == 0);
    CHECK(!sub.stale && !sub.final_ && !sub.disqualified);
    store_sub_clear(&sub);
    CHECK_INT(store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK(sub.pub_full == NULL && sub.priv_full == NULL);
    CHECK(sub.pub_values != NULL);
    store_sub_clear(&sub);
    /* again: not scoring any more */
    CHECK_INT(store_sub_finish(s, id, STORE_SCORED, NULL, &sc, msg, sizeof msg), STORE_ECONFLICT);
    CHECK_INT(store_sub_finish(s, "0000000000000000", STORE_FAILED, "x", NULL, msg, sizeof msg),
              STORE_ENOTFOUND);
    CHECK_INT(store_sub_finish(s, id, STORE_SCORING, NULL, &sc, msg, sizeof msg), SL_EINVAL);
    CHECK_INT(store_sub_finish(s, id, STORE_SCORED, NULL, NULL, msg, sizeof msg), SL_EINVAL);
    CHECK_INT(store_sub_get(s, "c2", id, false, &sub, msg, sizeof msg), STORE_ENOTFOUND);
    /* failed with its body kept */
    admit_ok(s, "c1", pid, T0 + SEC, &lots, id);
    struct store_scores body = {SHA_ABC, 3, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL};
    CHECK_INT(store_sub_finish(s, id, STORE_FAILED, "2 ids missing", &body, msg, sizeof msg), 0);
    CHECK_INT(store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK_INT(sub.status, STORE_FAILED);
    CHECK(sub.error && strcmp(sub.error, "2 ids missing") == 0);
    CHECK(strcmp(sub.body_sha, SHA_ABC) == 0);
    CHECK_INT(sub.bytes, 3);
    CHECK(sub.pub_values == NULL);
    store_sub_clear(&sub);
    /* the configuration becomes version 2 while a row scored under 1 is being scored */
    admit_ok(s, "c1", pid, T0 + 2 * SEC, &lots, id);
    bool created;
    int64_t v;
    CHECK_INT(store_challenge_put(s, "c1", "{}", NULL, false, T0, &created, &v, msg, sizeof msg),
              0);
    CHECK_INT(v, 2);
    CHECK_INT(store_sub_finish(s, id, STORE_SCORED, NULL, &sc, msg, sizeof msg), 0);
    CHECK_INT(store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK(sub.stale);
    store_sub_clear(&sub);
    struct store_challenge c;
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_total, 1);
    CHECK(c.rescore_running);
    store_challenge_clear(&c);
    /* and a reference that differs (version 2 matches, ref_sha "" is not SHA_REF) */
    admit_ok(s, "c1", pid, T0 + 3 * SEC, &lots, id);
    CHECK_INT(
        store_reference_put(s, "c1", SHA_REF, "{}", NULL, false, T0, &created, msg, sizeof msg), 0);
    sc.config_version = 2;
    CHECK_INT(store_sub_finish(s, id, STORE_SCORED, NULL, &sc, msg, sizeof msg), 0);
    CHECK_INT(store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK(sub.stale);
    store_sub_clear(&sub);
    /* the same under the current state: not stale */
    admit_ok(s, "c1", pid, T0 + 4 * SEC, &lots, id);
    sc.ref_sha = SHA_REF;
    CHECK_INT(store_sub_finish(s, id, STORE_SCORED, NULL, &sc, msg, sizeof msg), 0);
    CHECK_INT(store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK(!sub.stale);
    store_sub_clear(&sub);
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_total, 2);
    store_challenge_clear(&c);
    store_close(s);
    rm_tree(dir);
}

/* Newest first (received_at, then the later row for equal times), per participant or all. */
static void test_sub_list_order(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    int64_t a = setup(s, "c1", "alice", 1);
    int64_t b = add_participant(s, "c1", "bob", 2);
    char i1[STORE_SUB_ID], i2[STORE_SUB_ID], i3[STORE_SUB_ID], i4[STORE_SUB_ID];
    admit_ok(s, "c1", a, T0 + 5, &lots, i1);
    admit_ok(s, "c1", a, T0 + 9, &lots, i2);
    admit_ok(s, "c1", a, T0 + 9, &lots, i3); /* same time, later row: newer */
    admit_ok(s, "c1", b, T0 + 7, &lots, i4);
    struct store_sub *v = NULL;
    size_t n = 0;
    CHECK_INT(store_sub_list(s, "c1", a, false, &v, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK(strcmp(v[0].id, i3) == 0);
        CHECK(strcmp(v[1].id, i2) == 0);
        CHECK(strcmp(v[2].id, i1) == 0);
        CHECK(v[0].seq > v[1].seq);
    }
    store_sub_free(v, n);
    CHECK_INT(store_sub_list(s, "c1", -1, false, &v, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 4); /* i3, i2, i4 (T0+7), i1 */
    if (n == 4) {
        CHECK(strcmp(v[2].id, i4) == 0);
        CHECK(strcmp(v[2].participant_name, "bob") == 0);
    }
    store_sub_free(v, n);
    CHECK_INT(store_sub_list(s, "other", -1, false, &v, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 0);
    store_sub_free(v, n);
    store_close(s);
    rm_tree(dir);
}

/* ---- finals, disqualification, ranking ------------------------------------------------------- */

/* max_finals 1: only scored rows, one at a time, only the owner's; unselect frees the slot. */
static void test_finals(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    int64_t a = setup(s, "c1", "alice", 1);
    int64_t b = add_participant(s, "c1", "bob", 2);
    char s1[STORE_SUB_ID], s2[STORE_SUB_ID], pend[STORE_SUB_ID];
    scored_sub(s, "c1", a, T0, s1);
    scored_sub(s, "c1", a, T0 + 1, s2);
    admit_ok(s, "c1", a, T0 + 2, &lots, pend);
    CHECK_INT(store_sub_set_final(s, "c1", pend, a, true, 1, msg, sizeof msg), SL_EINVAL);
    CHECK_INT(store_sub_set_final(s, "c1", s1, b, true, 1, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_INT(store_sub_set_final(s, "c1", "ffffffffffffffff", a, true, 1, msg, sizeof msg),
              STORE_ENOTFOUND);
    CHECK_INT(store_sub_set_final(s, "c1", s1, a, true, 1, msg, sizeof msg), 0);
    CHECK_INT(store_sub_set_final(s, "c1", s1, a, true, 1, msg, sizeof msg), 0); /* already */
    CHECK_INT(store_sub_set_final(s, "c1", s2, a, true, 1, msg, sizeof msg), STORE_ECONFLICT);
    struct store_sub sub;
    CHECK_INT(store_sub_get(s, "c1", s1, false, &sub, msg, sizeof msg), 0);
    CHECK(sub.final_);
    store_sub_clear(&sub);
    CHECK_INT(store_sub_set_final(s, "c1", s1, a, false, 1, msg, sizeof msg), 0);
    CHECK_INT(store_sub_set_final(s, "c1", s2, a, true, 1, msg, sizeof msg), 0);
    CHECK_INT(store_sub_get(s, "c1", s1, false, &sub, msg, sizeof msg), 0);
    CHECK(!sub.final_);
    store_sub_clear(&sub);
    CHECK_INT(store_sub_get(s, "c1", s2, false, &sub, msg, sizeof msg), 0);
    CHECK(sub.final_);
    store_sub_clear(&sub);
    store_close(s);
    rm_tree(dir);
}

/* Ranked rows: scored, not disqualified, of participants not revoked, oldest first. */
static void test_ranked(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    int64_t a = setup(s, "c1", "alice", 1);
    int64_t b = add_participant(s, "c1", "bob", 2);
    int64_t c = add_participant(s, "c1", "carol", 3);
    char a1[STORE_SUB_ID], a2[STORE_SUB_ID], b1[STORE_SUB_ID], c1[STORE_SUB_ID], f[STORE_SUB_ID];
    scored_sub(s, "c1", a, T0 + 1, a1);
    scored_sub(s, "c1", a, T0 + 2, a2);
    scored_sub(s, "c1", b, T0 + 3, b1);
    scored_sub(s, "c1", c, T0 + 4, c1);
    admit_ok(s, "c1", a, T0 + 5, &lots, f); /* still scoring: not ranked */
    CHECK_INT(store_sub_disqualify(s, "c1", a2, true, "copied", msg, sizeof msg), 0);
    CHECK_INT(store_sub_disqualify(s, "c1", "ffffffffffffffff", true, NULL, msg, sizeof msg),
              STORE_ENOTFOUND);
    CHECK_INT(store_sub_disqualify(s, "c2", a1, true, NULL, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_INT(store_participant_revoke(s, "c1", "carol", T0, msg, sizeof msg), 0);
    struct store_sub sub;
    CHECK_INT(store_sub_get(s, "c1", a2, false, &sub, msg, sizeof msg), 0);
    CHECK(sub.disqualified);
    CHECK(sub.dq_reason && strcmp(sub.dq_reason, "copied") == 0);
    store_sub_clear(&sub);
    struct store_sub *v = NULL;
    size_t n = 0;
    CHECK_INT(store_ranked_subs(s, "c1", &v, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 2); /* a1, b1 */
    if (n == 2) {
        CHECK(strcmp(v[0].id, a1) == 0);
        CHECK(strcmp(v[1].id, b1) == 0);
        CHECK(strcmp(v[0].pub_values, "{\"k\": 1}") == 0);
        CHECK(v[0].pub_full == NULL);
    }
    store_sub_free(v, n);
    /* lifting the disqualification brings a2 back: a1, a2, b1 */
    CHECK_INT(store_sub_disqualify(s, "c1", a2, false, NULL, msg, sizeof msg), 0);
    CHECK_INT(store_ranked_subs(s, "c1", &v, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK(strcmp(v[1].id, a2) == 0);
        CHECK(v[1].dq_reason == NULL);
    }
    store_sub_free(v, n);
    store_close(s);
    rm_tree(dir);
}

/* ---- re-scoring ------------------------------------------------------------------------------ */

/* Three scored rows: begin -> {0, 0, 3} running; next takes the oldest each time; one ok, one
 * failed, one ok -> {2, 1, 3} not running; nothing left after. */
static void test_rescore(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    int64_t a = setup(s, "c1", "alice", 1);
    char r1[STORE_SUB_ID], r2[STORE_SUB_ID], r3[STORE_SUB_ID], pend[STORE_SUB_ID];
    scored_sub(s, "c1", a, T0 + 1, r1);
    scored_sub(s, "c1", a, T0 + 2, r2);
    scored_sub(s, "c1", a, T0 + 3, r3);
    admit_ok(s, "c1", a, T0 + 4, &lots, pend); /* scoring: not part of the re-score */
    struct store_sub sub;
    CHECK_INT(store_rescore_next(s, &sub, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_INT(store_rescore_finish(s, r1, false, "x", NULL, msg, sizeof msg), STORE_ECONFLICT);
    CHECK_INT(store_rescore_begin(s, "nope", msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_INT(store_rescore_begin(s, "c1", msg, sizeof msg), 0);
    struct store_challenge c;
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_done, 0);
    CHECK_INT(c.rescore_failed, 0);
    CHECK_INT(c.rescore_total, 3);
    CHECK(c.rescore_running);
    store_challenge_clear(&c);
    struct store_scores sc = {"", 0, "{\"k\": 5}", "{\"k\": 6}", NULL, NULL, 1, "", "2.0", NULL};
    CHECK_INT(store_rescore_next(s, &sub, msg, sizeof msg), 0);
    CHECK(strcmp(sub.id, r1) == 0);
    CHECK(sub.stale);
    store_sub_clear(&sub);
    CHECK_INT(store_rescore_finish(s, r1, true, NULL, &sc, msg, sizeof msg), 0);
    CHECK_INT(store_sub_get(s, "c1", r1, false, &sub, msg, sizeof msg), 0);
    CHECK(!sub.stale);
    CHECK(strcmp(sub.pub_values, "{\"k\": 5}") == 0);
    CHECK(strcmp(sub.server_version, "2.0") == 0);
    store_sub_clear(&sub);
    CHECK_INT(store_rescore_finish(s, r1, true, NULL, &sc, msg, sizeof msg), STORE_ECONFLICT);
    CHECK_INT(store_rescore_next(s, &sub, msg, sizeof msg), 0);
    CHECK(strcmp(sub.id, r2) == 0);
    store_sub_clear(&sub);
    CHECK_INT(store_rescore_finish(s, r2, false, "no longer validates", NULL, msg, sizeof msg), 0);
    CHECK_INT(store_sub_get(s, "c1", r2, false, &sub, msg, sizeof msg), 0);
    CHECK_INT(sub.status, STORE_FAILED);
    CHECK(!sub.stale);
    CHECK(strcmp(sub.error, "no longer validates") == 0);
    store_sub_clear(&sub);
    CHECK_INT(store_rescore_next(s, &sub, msg, sizeof msg), 0);
    CHECK(strcmp(sub.id, r3) == 0);
    store_sub_clear(&sub);
    CHECK_INT(store_rescore_finish(s, r3, true, NULL, &sc, msg, sizeof msg), 0);
    CHECK_INT(store_rescore_next(s, &sub, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_done, 2);
    CHECK_INT(c.rescore_failed, 1);
    CHECK_INT(c.rescore_total, 3);
    CHECK(!c.rescore_running);
    store_challenge_clear(&c);
    CHECK_INT(store_rescore_finish(s, "ffffffffffffffff", true, NULL, &sc, msg, sizeof msg),
              STORE_ENOTFOUND);
    CHECK_INT(store_rescore_finish(s, r3, true, NULL, NULL, msg, sizeof msg), SL_EINVAL);
    store_close(s);
    rm_tree(dir);
}

/* A replacement with rescore true starts a re-score in the same call: the 2 scored rows (r1, r3;
 * r2 failed is not covered) go stale, progress {0, 0, 2}; a re-score finished under the old
 * version 1 leaves the row stale and counts nothing. Same for a reference with rescore true. */
static void test_rescore_on_put(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    char msg[256];
    int64_t a = setup(s, "c1", "alice", 1);
    char r1[STORE_SUB_ID], r2[STORE_SUB_ID], r3[STORE_SUB_ID];
    scored_sub(s, "c1", a, T0 + 1, r1);
    admit_ok(s, "c1", a, T0 + 2, &lots, r2);
    CHECK_INT(store_sub_finish(s, r2, STORE_FAILED, "bad", NULL, msg, sizeof msg), 0);
    scored_sub(s, "c1", a, T0 + 3, r3);
    bool created;
    int64_t v;
    CHECK_INT(
        store_challenge_put(s, "c1", "{\"new\":1}", NULL, true, T0, &created, &v, msg, sizeof msg),
        0);
    CHECK_INT(v, 2);
    struct store_challenge c;
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_total, 2);
    CHECK_INT(c.rescore_done, 0);
    CHECK(c.rescore_running);
    store_challenge_clear(&c);
    struct store_scores old = {"", 0, "{}", "{}", NULL, NULL, 1, "", "1", NULL};
    CHECK_INT(store_rescore_finish(s, r1, true, NULL, &old, msg, sizeof msg), 0);
    struct store_sub sub;
    CHECK_INT(store_sub_get(s, "c1", r1, false, &sub, msg, sizeof msg), 0);
    CHECK(sub.stale);
    store_sub_clear(&sub);
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_done, 0);
    store_challenge_clear(&c);
    CHECK_INT(
        store_reference_put(s, "c1", SHA_REF, "{}", NULL, true, T0, &created, msg, sizeof msg), 0);
    CHECK_INT(store_challenge_get(s, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_total, 2);
    store_challenge_clear(&c);
    store_close(s);
    rm_tree(dir);
}

/* A write lock held by another connection past the busy timeout (5 s) is SL_EBUSY, with nothing
 * written; once released the same call succeeds. */
static void test_busy(void)
{
    char dir[DIRLEN];
    make_dir(dir);
    struct store *s = open_ok(dir);
    setup(s, "c1", NULL, 0);
    if (pg_server) {
        /* PostgreSQL: a table lock held by another connection past the lock timeout (5 s) */
        char name[DIRLEN], msg[256] = "";
        pg_dbname(dir, name, sizeof name);
        PGconn *c = pg_conn(name);
        pg_exec(c, "BEGIN");
        pg_exec(c, "LOCK TABLE participants IN EXCLUSIVE MODE");
        unsigned char h[32];
        hash_of(h, 9);
        struct store_participant part;
        CHECK_INT(store_participant_add(s, "c1", "dan", h, T0, &part, msg, sizeof msg), SL_EBUSY);
        CHECK_HAS(msg, "lock timeout");
        pg_exec(c, "COMMIT");
        PQfinish(c);
        CHECK_INT(store_participant_add(s, "c1", "dan", h, T0, &part, msg, sizeof msg), 0);
        store_close(s);
        rm_tree(dir);
        return;
    }
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/segloss.db", dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(p, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    char msg[256] = "";
    unsigned char h[32];
    hash_of(h, 9);
    struct store_participant part;
    CHECK_INT(store_participant_add(s, "c1", "dan", h, T0, &part, msg, sizeof msg), SL_EBUSY);
    CHECK_HAS(msg, "locked");
    CHECK_INT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(store_participant_add(s, "c1", "dan", h, T0, &part, msg, sizeof msg), 0);
    store_close(s);
    rm_tree(dir);
}

/* ---- replicas on PostgreSQL (SEGLOSS_TEST_PG only) ------------------------------------------- */

/* Waits for child pid; returns its exit status (-1 when it did not exit). */
static int child_status(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        return -1;
    }
    return WEXITSTATUS(st);
}

/* A replica that dies: in a child process, opens the store of dir with a lease of lease_s,
 * admits one submission of pid (claim: takes the re-score job instead), writes the id (or
 * "claimed") to fd and ends with _exit, closing nothing (as kill -9 would). Returns the child's
 * pid. */
static pid_t replica_dies(const char *dir, int lease_s, int64_t pid, bool claim, int fd)
{
    fflush(NULL);
    pid_t child = fork();
    if (child != 0) {
        return child;
    }
    char msg[256], id[STORE_SUB_ID] = "";
    struct store *s = NULL;
    int rc = open_at(dir, lease_s, &s, msg, sizeof msg);
    if (rc == 0 && claim) {
        struct store_sub sub;
        rc = store_rescore_next(s, &sub, msg, sizeof msg);
        snprintf(id, sizeof id, "%s", rc == 0 ? "claimed" : "");
        store_sub_clear(&sub);
    } else if (rc == 0) {
        enum chal_verdict v;
        struct chal_usage u;
        int64_t retry;
        rc = store_sub_admit(s, "c1", pid, NULL, T0, &lots, INT64_MIN, INT64_MAX, &v, &u, &retry,
                             id, msg, sizeof msg);
    }
    if (rc != 0) {
        fprintf(stderr, "dying replica: %s\n", msg);
    }
    if (write(fd, id, sizeof id) != (ssize_t)sizeof id) {
        _exit(2);
    }
    _exit(rc == 0 ? 0 : 1);
}

/* Runs 8 admissions of pid at once, every other one through the second replica; returns how many
 * were admitted. */
static int race8_two(struct store *a, struct store *b, int64_t pid, const struct chal_quota *q)
{
    pthread_t t[8];
    struct racer r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){i % 2 ? b : a, pid, q, 0, -1};
        CHECK_INT(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int admitted = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(r[i].rc, 0);
        admitted += r[i].admitted;
    }
    return admitted;
}

/* Two replicas on one database: 8 submissions at once of a participant with 3 slots left today
 * give 3 admissions, and with concurrent 1 give 1; a reference written on one replica while the
 * other scores makes that score stale (counted in the re-score's total: 3 scored + 1). */
static void test_pg_two_replicas(void)
{
    if (!pg_server) {
        return;
    }
    char dir[DIRLEN], msg[256];
    make_dir(dir);
    struct store *s1 = open_ok(dir), *s2 = open_ok(dir);
    int64_t pid = setup(s1, "c1", "alice", 1);
    struct chal_quota q = {3, -1, 100};
    CHECK_INT(race8_two(s1, s2, pid, &q), 3);
    struct store_sub *list = NULL;
    size_t n = 0;
    CHECK_INT(store_sub_list(s2, "c1", pid, false, &list, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 3);
    for (size_t i = 0; i < n; i++) {
        CHECK_INT(finish_scored(s1, list[i].id, "{\"k\": 1}", 1, ""), 0);
    }
    store_sub_free(list, n);
    int64_t bob = add_participant(s2, "c1", "bob", 2);
    struct chal_quota one_at_once = {100, -1, 1};
    CHECK_INT(race8_two(s1, s2, bob, &one_at_once), 1);
    CHECK_INT(store_sub_list(s1, "c1", bob, false, &list, &n, msg, sizeof msg), 0);
    CHECK_INT(n, 1);
    char id[STORE_SUB_ID];
    snprintf(id, sizeof id, "%s", n == 1 ? list[0].id : "");
    store_sub_free(list, n);
    bool created;
    CHECK_INT(
        store_reference_put(s2, "c1", SHA_REF, "{}", NULL, true, T0, &created, msg, sizeof msg), 0);
    CHECK_INT(finish_scored(s1, id, "{\"k\": 2}", 1, ""), 0);
    struct store_sub sub;
    CHECK_INT(store_sub_get(s2, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK_INT(sub.status, STORE_SCORED);
    CHECK(sub.stale);
    store_sub_clear(&sub);
    struct store_challenge c;
    CHECK_INT(store_challenge_get(s1, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_total, 4);
    store_challenge_clear(&c);
    /* the generation is the cluster's: a write on s2 moves what s1 reads */
    uint64_t g = store_generation(s1);
    CHECK_INT(store_sub_disqualify(s2, "c1", id, true, "r", msg, sizeof msg), 0);
    CHECK(store_generation(s1) == g + 1);
    store_close(s1);
    store_close(s2);
    rm_tree(dir);
}

struct finisher {
    struct store *s;
    char (*ids)[STORE_SUB_ID];
    int n, rc;
};

/* Finishes every id as scored under configuration 1 and no reference. */
static void *finish_all(void *arg)
{
    struct finisher *f = arg;
    for (int i = 0; i < f->n; i++) {
        f->rc |= finish_scored(f->s, f->ids[i], "{\"k\": 1}", 1, "");
    }
    return NULL;
}

/* One replica finishes 24 submissions scored without a reference while another puts the
 * reference (re-score on) halfway: afterwards every one of them is stale (none stored as
 * current under the old reference), and the re-score's total counts each exactly once (marked
 * by the put, or found stale by its finish). */
static void test_pg_finish_races_reference(void)
{
    if (!pg_server) {
        return;
    }
    char dir[DIRLEN], msg[256];
    make_dir(dir);
    struct store *s1 = open_ok(dir), *s2 = open_ok(dir);
    int64_t pid = setup(s1, "c1", "alice", 1);
    char ids[24][STORE_SUB_ID];
    for (int i = 0; i < 24; i++) {
        admit_ok(s1, "c1", pid, T0 + i, &lots, ids[i]);
    }
    struct finisher f = {s1, ids, 24, 0};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, finish_all, &f), 0);
    struct timespec ts = {0, 20000000L};
    nanosleep(&ts, NULL);
    bool created;
    CHECK_INT(
        store_reference_put(s2, "c1", SHA_REF, "{}", NULL, true, T0, &created, msg, sizeof msg), 0);
    pthread_join(t, NULL);
    CHECK_INT(f.rc, 0);
    struct store_sub *v = NULL;
    size_t n = 0;
    CHECK_INT(store_sub_list(s2, "c1", pid, false, &v, &n, msg, sizeof msg), 0);
    int stale = 0;
    for (size_t i = 0; i < n; i++) {
        stale += v[i].status == STORE_SCORED && v[i].stale;
    }
    store_sub_free(v, n);
    CHECK_INT(n, 24);
    CHECK_INT(stale, 24);
    struct store_challenge c;
    CHECK_INT(store_challenge_get(s1, "c1", &c, msg, sizeof msg), 0);
    CHECK_INT(c.rescore_total, 24);
    store_challenge_clear(&c);
    store_close(s1);
    store_close(s2);
    rm_tree(dir);
}

/* Polls submission id until it is failed or timeout_s passes; returns whether it was. */
static bool wait_failed(struct store *s, const char *id, int timeout_s)
{
    char msg[256];
    for (int i = 0; i < timeout_s * 10; i++) {
        struct store_sub sub;
        bool failed = store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg) == 0 &&
                      sub.status == STORE_FAILED;
        store_sub_clear(&sub);
        if (failed) {
            return true;
        }
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* A replica (lease 2 s) dies while a submission is `scoring`: until its lease expires the row is
 * scoring and holds the participant's one concurrent slot (a second submission is refused);
 * after it, the row is failed "interrupted" and counts nothing: the next one is admitted with
 * pending 0 and scored 0. */
static void test_pg_lease_expiry(void)
{
    if (!pg_server) {
        return;
    }
    char dir[DIRLEN], msg[256];
    make_dir(dir);
    struct store *s = open_ok(dir);
    int64_t pid = setup(s, "c1", "alice", 1);
    int fd[2];
    CHECK_INT(pipe(fd), 0);
    pid_t child = replica_dies(dir, 2, pid, false, fd[1]);
    char id[STORE_SUB_ID] = "";
    CHECK_INT(read(fd[0], id, sizeof id), (ssize_t)sizeof id);
    CHECK_INT(child_status(child), 0);
    close(fd[0]);
    close(fd[1]);
    CHECK_INT(strlen(id), 16);
    struct store_sub sub;
    CHECK_INT(store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK_INT(sub.status, STORE_SCORING);
    store_sub_clear(&sub);
    struct chal_quota one = {1, -1, 1};
    enum chal_verdict v;
    struct chal_usage u;
    int64_t retry;
    char id2[STORE_SUB_ID];
    CHECK_INT(store_sub_admit(s, "c1", pid, NULL, T0 + SEC, &one, INT64_MIN, INT64_MAX, &v, &u,
                              &retry, id2, msg, sizeof msg),
              0);
    CHECK(v != CHAL_ADMIT);
    CHECK_INT(u.pending, 1);
    CHECK(wait_failed(s, id, 10));
    CHECK_INT(store_sub_get(s, "c1", id, false, &sub, msg, sizeof msg), 0);
    CHECK(sub.error && strcmp(sub.error, "interrupted") == 0);
    store_sub_clear(&sub);
    CHECK_INT(store_sub_admit(s, "c1", pid, NULL, T0 + SEC, &one, INT64_MIN, INT64_MAX, &v, &u,
                              &retry, id2, msg, sizeof msg),
              0);
    CHECK_INT(v, CHAL_ADMIT);
    CHECK_INT(u.pending, 0);
    CHECK_INT(u.scored_total, 0);
    store_close(s);
    rm_tree(dir);
}

/* One re-score at a time across replicas: the replica that took the job gets the rows, the other
 * STORE_ENOTFOUND; when nothing is left the job is handed back and the other may take the next
 * one; a replica closing hands it back; a replica dying with it (lease 2 s) keeps it from the
 * others until its lease expires, then another takes it over. */
static void test_pg_rescore_job(void)
{
    if (!pg_server) {
        return;
    }
    char dir[DIRLEN], msg[256];
    make_dir(dir);
    struct store *s1 = open_ok(dir), *s2 = open_ok(dir);
    int64_t pid = setup(s1, "c1", "alice", 1);
    char r1[STORE_SUB_ID], r2[STORE_SUB_ID];
    scored_sub(s1, "c1", pid, T0 + 1, r1);
    scored_sub(s1, "c1", pid, T0 + 2, r2);
    struct store_scores sc = {"", 0, "{}", "{}", NULL, NULL, 1, "", "2.0", NULL};
    CHECK_INT(store_rescore_begin(s2, "c1", msg, sizeof msg), 0);
    struct store_sub sub;
    CHECK_INT(store_rescore_next(s1, &sub, msg, sizeof msg), 0);
    CHECK(strcmp(sub.id, r1) == 0);
    store_sub_clear(&sub);
    CHECK_INT(store_rescore_next(s2, &sub, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_HAS(msg, "another replica");
    CHECK_INT(store_rescore_finish(s1, r1, true, NULL, &sc, msg, sizeof msg), 0);
    CHECK_INT(store_rescore_next(s1, &sub, msg, sizeof msg), 0);
    CHECK(strcmp(sub.id, r2) == 0);
    store_sub_clear(&sub);
    CHECK_INT(store_rescore_finish(s1, r2, true, NULL, &sc, msg, sizeof msg), 0);
    CHECK_INT(store_rescore_next(s1, &sub, msg, sizeof msg), STORE_ENOTFOUND);
    CHECK_HAS(msg, "nothing to re-score");
    /* handed back: the other replica takes the next re-score; closing hands it back again */
    CHECK_INT(store_rescore_begin(s1, "c1", msg, sizeof msg), 0);
    CHECK_INT(store_rescore_next(s2, &sub, msg, sizeof msg), 0);
    store_sub_clear(&sub);
    CHECK_INT(store_rescore_next(s1, &sub, msg, sizeof msg), STORE_ENOTFOUND);
    store_close(s2);
    CHECK_INT(store_rescore_next(s1, &sub, msg, sizeof msg), 0);
    store_sub_clear(&sub);
    store_close(s1);
    /* a replica dies holding the job: the others wait for its lease, then take over */
    int fd[2];
    CHECK_INT(pipe(fd), 0);
    pid_t child = replica_dies(dir, 2, pid, true, fd[1]);
    char got[STORE_SUB_ID] = "";
    CHECK_INT(read(fd[0], got, sizeof got), (ssize_t)sizeof got);
    CHECK_INT(child_status(child), 0);
    close(fd[0]);
    close(fd[1]);
    CHECK(strcmp(got, "claimed") == 0);
    s1 = open_ok(dir);
    CHECK_INT(store_rescore_next(s1, &sub, msg, sizeof msg), STORE_ENOTFOUND);
    int rc = STORE_ENOTFOUND;
    for (int i = 0; i < 100 && rc == STORE_ENOTFOUND; i++) {
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
        rc = store_rescore_next(s1, &sub, msg, sizeof msg);
    }
    CHECK_INT(rc, 0);
    store_sub_clear(&sub);
    store_close(s1);
    rm_tree(dir);
}

/* Four replicas open a new database at the same moment: each succeeds, and the schema was made
 * once (version 1, one re-score job row, one generation row; a second run of the migration
 * would have failed on the tables it makes). */
static void test_pg_migrate_race(void)
{
    if (!pg_server) {
        return;
    }
    char dir[DIRLEN];
    make_dir(dir);
    pg_ensure_db(dir);
    struct timespec start;
    clock_gettime(CLOCK_REALTIME, &start);
    start.tv_sec += 1;
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        fflush(NULL);
        kids[i] = fork();
        if (kids[i] == 0) {
            clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &start, NULL);
            char msg[256];
            struct store *s = NULL;
            int rc = open_at(dir, 0, &s, msg, sizeof msg);
            if (rc != 0) {
                fprintf(stderr, "replica %d: %s\n", i, msg);
            }
            store_close(s);
            _exit(rc == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < 4; i++) {
        CHECK_INT(child_status(kids[i]), 0);
    }
    char name[DIRLEN];
    pg_dbname(dir, name, sizeof name);
    PGconn *c = pg_conn(name);
    CHECK_INT(pg_exec(c, "SELECT version FROM segloss_schema"), 1);
    CHECK_INT(pg_exec(c, "SELECT count(*) FROM segloss_schema"), 1);
    CHECK_INT(pg_exec(c, "SELECT count(*) FROM segloss_jobs"), 1);
    CHECK_INT(pg_exec(c, "SELECT count(*) FROM segloss_state"), 1);
    CHECK_INT(pg_exec(c, "SELECT count(*) FROM segloss_replicas"), 0); /* all closed */
    PQfinish(c);
    rm_tree(dir);
}

/* The password: a URI holding one is refused without repeating it; from --db-password-file
 * (libpq's PGPASSWORD unset) the store opens; a wrong one fails without showing it. */
static void test_pg_password(void)
{
    if (!pg_server) {
        return;
    }
    char dir[DIRLEN], name[DIRLEN], msg[512] = "", uri[600], blobs[PATH_MAX], pwfile[PATH_MAX];
    make_dir(dir);
    pg_ensure_db(dir);
    pg_dbname(dir, name, sizeof name);
    snprintf(blobs, sizeof blobs, "%s/blobs", dir);
    const char *at = strchr(pg_server, '@');
    CHECK(at != NULL);
    if (!at) {
        return;
    }
    snprintf(uri, sizeof uri, "%.*s:Sekr1tXyz%s/%s", (int)(at - pg_server), pg_server, at, name);
    struct store *s = NULL;
    struct store_options o = {NULL, uri, NULL, blobs, 0};
    CHECK_INT(store_open(&o, &s, msg, sizeof msg), SL_EINVAL);
    CHECK_HAS(msg, "holds a password");
    CHECK(strstr(msg, "Sekr1tXyz") == NULL);
    snprintf(uri, sizeof uri, "%s/%s?password=Sekr1tXyz", pg_server, name);
    CHECK_INT(store_open(&o, &s, msg, sizeof msg), SL_EINVAL);
    CHECK(strstr(msg, "Sekr1tXyz") == NULL);
    /* the right password from a file, none in the environment */
    char *env = getenv("PGPASSWORD") ? strdup(getenv("PGPASSWORD")) : NULL;
    CHECK(env != NULL);
    unsetenv("PGPASSWORD");
    snprintf(pwfile, sizeof pwfile, "%s/pw", dir);
    FILE *f = fopen(pwfile, "w");
    fprintf(f, "%s\n", env ? env : "");
    fclose(f);
    pg_uri(name, uri, sizeof uri);
    o.password_file = pwfile;
    CHECK_INT(store_open(&o, &s, msg, sizeof msg), 0);
    store_close(s);
    f = fopen(pwfile, "w");
    fputs("Wr0ngPassw0rd\n", f);
    fclose(f);
    s = NULL;
    CHECK(store_open(&o, &s, msg, sizeof msg) != 0);
    CHECK_HAS(msg, "password authentication failed");
    CHECK(strstr(msg, "Wr0ngPassw0rd") == NULL);
    CHECK(env == NULL || strstr(msg, env) == NULL);
    /* no password anywhere: libpq's own error, the store not opened */
    o.password_file = NULL;
    CHECK(store_open(&o, &s, msg, sizeof msg) != 0);
    if (env) {
        setenv("PGPASSWORD", env, 1);
        explicit_bzero(env, strlen(env));
        free(env);
    }
    rm_tree(dir);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_open_fresh),      CHECK_TEST(test_newer_schema_refused),
    CHECK_TEST(test_interrupted),     CHECK_TEST(test_blob_roundtrip),
    CHECK_TEST(test_open_sweeps),     CHECK_TEST(test_challenge_put_get),
    CHECK_TEST(test_reference_put),   CHECK_TEST(test_participants),
    CHECK_TEST(test_admit_usage),     CHECK_TEST(test_admit_concurrent),
    CHECK_TEST(test_generation),      CHECK_TEST(test_sub_finish),
    CHECK_TEST(test_sub_list_order),  CHECK_TEST(test_finals),
    CHECK_TEST(test_ranked),          CHECK_TEST(test_rescore),
    CHECK_TEST(test_rescore_on_put),  CHECK_TEST(test_busy),
    CHECK_TEST(test_pg_two_replicas), CHECK_TEST(test_pg_lease_expiry),
    CHECK_TEST(test_pg_rescore_job),  CHECK_TEST(test_pg_migrate_race),
    CHECK_TEST(test_pg_password),     CHECK_TEST(test_pg_finish_races_reference),
};

int main(int argc, char **argv)
{
    /* SEGLOSS_TEST_PG: the same tests on PostgreSQL, named unit/store_pg/... */
    const char *pg = getenv("SEGLOSS_TEST_PG");
    pg_server = pg && pg[0] ? pg : NULL;
    return CHECK_RUN(pg_server ? "test_store_pg" : "test_store", tests);
}
