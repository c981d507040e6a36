/* store_pg.c - store.h on PostgreSQL (libpq), shared by every replica: --db postgresql://...,
 * the blobs in --blob-dir (blobs.c), a directory every replica mounts.
 *
 * Durability. Every write is one transaction committed with PostgreSQL's default
 * synchronous_commit = on: COMMIT returns once the transaction's WAL record is flushed to disk
 * (PostgreSQL documentation, "synchronous_commit"), so an answered write survives any replica's
 * death and the server's crash. A blob is fsynced and renamed (blobs.c) before the row naming it
 * commits. Blobs are not swept at open: another replica may have written one whose row has not
 * committed yet.
 *
 * Concurrency across replicas. Transactions run at READ COMMITTED, and what must be atomic takes
 * row locks: an admission locks its participant's row (SELECT ... FOR NO KEY UPDATE) before it
 * counts and inserts, so admissions of one participant on any replica run one after another and
 * each counts what the earlier ones committed (each statement sees the rows committed before it
 * began); finishing a submission locks its challenge's row, so a configuration or reference
 * written meanwhile is seen (the row is stored stale) or waits (and then marks it stale); finals
 * lock the participant's row. Locks are taken in one order (challenge, participant, submission,
 * the generation row last); a deadlock or serialization failure PostgreSQL reports is retried
 * (TX_TRIES), a lock waited for past LOCK_TIMEOUT_MS is SL_EBUSY.
 *
 * Replicas and leases. Each open store is a replica: a row of segloss_replicas with a lease
 * (lease_until, on the database's clock) that a thread of its own renews every quarter lease.
 * Its admitted submissions carry its id (owner). A `scoring` row whose owner's lease has expired
 * is failed ("interrupted"): by the renewing thread of any replica, and by an admission of the
 * same participant before it counts, so it never holds a slot. The background re-score is one
 * row of segloss_jobs that a replica claims when it is free or its holder's lease has expired,
 * and releases when nothing is stale: one re-score at a time in the cluster, taken over when its
 * replica dies.
 *
 * Schema: segloss_schema holds the version; migrations run in one transaction under a
 * transaction-level advisory lock, so replicas starting together migrate once. Times are
 * chal_time (int64 microseconds since the epoch), leases on the database's clock.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "blobs.h"
#include "segloss.h"
#include "store_impl.h"

#define DAY_US (86400LL * 1000000LL)
#define POOL_MAX 8           /* connections per replica, opened when first needed */
#define LOCK_TIMEOUT_MS 5000 /* a row lock waited for longer is SL_EBUSY */
#define TX_TRIES 8           /* deadlocks and serialization failures retried */
#define STARTUP_WAIT_S 30    /* how long an open waits for a server that does not answer yet */
/* pg_advisory_xact_lock's key for migrations: "segl" in ASCII */
#define MIGRATE_LOCK_KEY 0x7365676cLL
/* internal results: retry the transaction; commit, then answer STORE_ENOTFOUND */
#define PG_RETRY (-200)
#define PG_COMMIT_NOTFOUND (-201)
/* the database's clock in chal_time */
#define DBNOW "(extract(epoch from clock_timestamp()) * 1000000)::bigint"

struct pg_slot {
    PGconn *c; /* NULL until first used, or after it broke */
    bool busy;
};

struct pg_store {
    struct store base; /* first: what store.c sees */
    char *uri;
    char *password;  /* from --db-password-file (NULL: libpq's environment); zeroed at close */
    char where[256]; /* "database D on H:P" for messages */
    char replica[40];
    int lease_s;
    pthread_mutex_t mu;
    pthread_cond_t freed; /* mu: a slot was released */
    struct pg_slot pool[POOL_MAX];
    uint64_t fail_gen; /* mu: generations handed out while the database did not answer */
    /* the lease renewal thread */
    pthread_t beat;
    bool beat_started;
    bool stop;          /* mu */
    pthread_cond_t bye; /* mu: stop */
};

/* migrations[v]: the SQL taking schema version v to v + 1, run in one transaction. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    "CREATE TABLE challenges ("
    " name TEXT PRIMARY KEY,"
    " config TEXT NOT NULL,"
    " version BIGINT NOT NULL,"
    " reference TEXT,"
    " ref_sha TEXT NOT NULL DEFAULT '',"
    " public_ids TEXT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " rescore_done BIGINT NOT NULL DEFAULT 0,"
    " rescore_failed BIGINT NOT NULL DEFAULT 0,"
    " rescore_total BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE participants ("
    " id BIGSERIAL PRIMARY KEY,"
    " challenge TEXT NOT NULL REFERENCES challenges(name),"
    " name TEXT NOT NULL,"
    " token_hash BYTEA NOT NULL UNIQUE,"
    " created_at BIGINT NOT NULL,"
    " revoked_at BIGINT,"
    " UNIQUE (challenge, name));"
    "CREATE TABLE submissions ("
    " seq BIGSERIAL PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " challenge TEXT NOT NULL REFERENCES challenges(name),"
    " participant BIGINT NOT NULL REFERENCES participants(id),"
    " received_at BIGINT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('scoring', 'scored', 'failed')),"
    " error TEXT,"
    " note TEXT NOT NULL DEFAULT '',"
    " body_sha TEXT NOT NULL DEFAULT '',"
    " bytes BIGINT NOT NULL DEFAULT 0,"
    " pub_values TEXT, priv_values TEXT,"
    " config_version BIGINT NOT NULL DEFAULT 0,"
    " ref_sha TEXT NOT NULL DEFAULT '',"
    " server_version TEXT NOT NULL DEFAULT '',"
    " stale INTEGER NOT NULL DEFAULT 0,"
    " final INTEGER NOT NULL DEFAULT 0,"
    " disqualified INTEGER NOT NULL DEFAULT 0,"
    " dq_reason TEXT,"
    " owner TEXT);"
    "CREATE TABLE answers ("
    " id TEXT PRIMARY KEY REFERENCES submissions(id),"
    " pub_full TEXT, priv_full TEXT);"
    "CREATE INDEX submissions_by_participant ON submissions (challenge, participant, received_at);"
    "CREATE INDEX submissions_by_status ON submissions (challenge, status, received_at, seq);"
    "CREATE INDEX submissions_stale ON submissions (stale, received_at);"
    "CREATE INDEX submissions_scoring ON submissions (owner) WHERE status = 'scoring';"
    "CREATE TABLE segloss_replicas ("
    " id TEXT PRIMARY KEY,"
    " host TEXT NOT NULL,"
    " started_at BIGINT NOT NULL,"
    " lease_until BIGINT NOT NULL);"
    "CREATE TABLE segloss_jobs ("
    " name TEXT PRIMARY KEY,"
    " owner TEXT,"
    " claimed_at BIGINT NOT NULL DEFAULT 0);"
    "INSERT INTO segloss_jobs (name) VALUES ('rescore');"
    "CREATE TABLE segloss_state (k TEXT PRIMARY KEY, v BIGINT NOT NULL);"
    "INSERT INTO segloss_state VALUES ('generation', 0);",
};

static const char *const status_names[] = {"scoring", "scored", "failed"};

/* ---- parameters and results ---------------------------------------------------------------- */

/* The text parameters of one statement. */
struct args {
    const char *v[16];
    char num[16][24];
    int n;
};

/* Appends text t (NULL: SQL NULL). */
static void a_text(struct args *a, const char *t)
{
    a->v[a->n++] = t;
}

/* Appends the integer x. */
static void a_int(struct args *a, int64_t x)
{
    snprintf(a->num[a->n], sizeof a->num[0], "%lld", (long long)x);
    a->v[a->n] = a->num[a->n];
    a->n++;
}

/* Column i of row r as an int64 (0 for NULL). */
static int64_t g_int(const PGresult *r, int row, int i)
{
    return PQgetisnull(r, row, i) ? 0 : strtoll(PQgetvalue(r, row, i), NULL, 10);
}

/* A new copy of column i of row r, or NULL for SQL NULL; *oom set when the copy failed. */
static char *g_dup(const PGresult *r, int row, int i, bool *oom)
{
    if (PQgetisnull(r, row, i)) {
        return NULL;
    }
    char *d = strdup(PQgetvalue(r, row, i));
    if (!d) {
        *oom = true;
    }
    return d;
}

/* Copies column i of row r into buf (n bytes, truncating, always terminated; "" for NULL). */
static void g_copy(const PGresult *r, int row, int i, char *buf, size_t n)
{
    snprintf(buf, n, "%s", PQgetisnull(r, row, i) ? "" : PQgetvalue(r, row, i));
}

/* The status named t (failed for anything else). */
static enum store_status status_of(const char *t)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(t, status_names[i]) == 0) {
            return (enum store_status)i;
        }
    }
    return STORE_FAILED;
}

/* Runs sql with the parameters a (NULL: none) on c. Returns 0 with *res (PQclear it; may be
 * NULL when the caller wants none), or PG_RETRY (deadlock, serialization failure), SL_EBUSY (a
 * lock waited for too long), STORE_ECONFLICT (a unique key taken; *constraint, when not NULL,
 * gets its name), SL_EINTERNAL with "store: what: PostgreSQL's primary message" (never its
 * detail, which may quote a value). */
static int run(PGconn *c, const char *sql, const struct args *a, PGresult **res, const char *what,
               char *constraint, size_t clen, char *msg, size_t msglen)
{
    if (res) {
        *res = NULL;
    }
    PGresult *r = PQexecParams(c, sql, a ? a->n : 0, NULL, a ? a->v : NULL, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (res) {
            *res = r;
        } else {
            PQclear(r);
        }
        return 0;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int rc = SL_EINTERNAL;
    if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) {
        rc = PG_RETRY;
    } else if (state && strcmp(state, "55P03") == 0) {
        rc = SL_EBUSY;
    } else if (state && strcmp(state, "23505") == 0) {
        rc = STORE_ECONFLICT;
        const char *cn = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        if (constraint) {
            snprintf(constraint, clen, "%s", cn ? cn : "");
        }
    }
    if (primary) {
        snprintf(msg, msglen, "store: %s: %s", what, primary);
    } else {
        /* no result: the connection's message (libpq's, it never holds the password) */
        const char *e = PQerrorMessage(c);
        size_t len = strcspn(e, "\n");
        snprintf(msg, msglen, "store: %s: %.*s", what, (int)len, e);
    }
    PQclear(r);
    return rc;
}

/* run() without a constraint name. */
static int q(PGconn *c, const char *sql, const struct args *a, PGresult **res, const char *what,
             char *msg, size_t msglen)
{
    return run(c, sql, a, res, what, NULL, 0, msg, msglen);
}

/* ---- connections ---------------------------------------------------------------------------- */

/* The store that base is. */
static struct pg_store *pg_of(struct store *base)
{
    return (struct pg_store *)(void *)base;
}

/* A new connection to s's database, set up for the store's transactions. Returns it, or NULL
 * with a message (libpq's, which names host, port and user, never the password). */
static PGconn *connect_db(struct pg_store *s, char *msg, size_t msglen)
{
    const char *kw[] = {"dbname", "password", "application_name", "connect_timeout", NULL};
    const char *val[] = {s->uri, s->password, "seglossd", "10", NULL};
    if (!s->password) {
        kw[1] = "application_name";
        val[1] = "seglossd";
    }
    PGconn *c = PQconnectdbParams(kw, val, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(msg, msglen, "store: cannot connect to PostgreSQL (%s): %s", s->where,
                 c ? PQerrorMessage(c) : "out of memory");
        /* one log line: libpq's message has a hint on a second one */
        for (char *p = msg; *p; p++) {
            if (*p == '\n' || *p == '\t') {
                *p = ' ';
            }
        }
        size_t len = strlen(msg);
        while (len > 0 && msg[len - 1] == ' ') {
            msg[--len] = '\0';
        }
        PQfinish(c);
        return NULL;
    }
    char set[160];
    snprintf(set, sizeof set,
             "SET lock_timeout = %d; SET default_transaction_isolation = 'read committed'; "
             "SET client_min_messages = warning",
             LOCK_TIMEOUT_MS);
    PGresult *r = PQexec(c, set);
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        snprintf(msg, msglen, "store: setting up a connection to %s failed", s->where);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Takes a free slot of the pool (waiting for one), connected. Returns it, or NULL with msg. */
static struct pg_slot *acquire(struct pg_store *s, char *msg, size_t msglen)
{
    pthread_mutex_lock(&s->mu);
    struct pg_slot *slot = NULL;
    while (!slot) {
        /* a connected free slot first, else any free one */
        for (int i = 0; i < POOL_MAX && !slot; i++) {
            if (!s->pool[i].busy && s->pool[i].c) {
                slot = &s->pool[i];
            }
        }
        for (int i = 0; i < POOL_MAX && !slot; i++) {
            if (!s->pool[i].busy) {
                slot = &s->pool[i];
            }
        }
        if (!slot) {
            pthread_cond_wait(&s->freed, &s->mu);
        }
    }
    slot->busy = true;
    pthread_mutex_unlock(&s->mu);
    if (slot->c && PQstatus(slot->c) != CONNECTION_OK) {
        PQreset(slot->c);
        if (PQstatus(slot->c) != CONNECTION_OK) {
            PQfinish(slot->c);
            slot->c = NULL;
        }
    }
    if (!slot->c) {
        slot->c = connect_db(s, msg, msglen);
    }
    if (!slot->c) {
        pthread_mutex_lock(&s->mu);
        slot->busy = false;
        pthread_cond_signal(&s->freed);
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    return slot;
}

/* Gives a slot back; a connection left inside a transaction is rolled back, a broken one
 * dropped. */
static void release(struct pg_store *s, struct pg_slot *slot)
{
    if (slot->c && PQstatus(slot->c) != CONNECTION_OK) {
        PQfinish(slot->c);
        slot->c = NULL;
    } else if (slot->c && PQtransactionStatus(slot->c) != PQTRANS_IDLE) {
        PQclear(PQexec(slot->c, "ROLLBACK"));
    }
    pthread_mutex_lock(&s->mu);
    slot->busy = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
}

/* A transaction's body: its statements on c; arg is the caller's. Returns 0 (commit), an error
 * (roll back), PG_RETRY, or PG_COMMIT_NOTFOUND. */
typedef int (*tx_body)(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen);

/* Runs body in a transaction, retried on deadlocks and serialization failures. standings: the
 * write may change what a leaderboard or a configuration reads; the generation row moves on in
 * the same transaction (last, so its lock is held only for the commit). Returns body's result
 * (PG_COMMIT_NOTFOUND as STORE_ENOTFOUND after the commit), or SL_EBUSY after TX_TRIES. */
static int tx(struct pg_store *s, tx_body body, void *arg, bool standings, char *msg, size_t msglen)
{
    struct pg_slot *slot = acquire(s, msg, msglen);
    if (!slot) {
        return SL_EINTERNAL;
    }
    int rc = PG_RETRY;
    for (int attempt = 0; attempt < TX_TRIES && rc == PG_RETRY; attempt++) {
        if (attempt > 0) {
            /* a random pause of up to 2^attempt ms, so that the retried ones do not meet again */
            unsigned r = 0;
            if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
                r = (unsigned)attempt;
            }
            struct timespec ts = {0, (long)(r % (1000u << attempt)) * 1000L};
            nanosleep(&ts, NULL);
        }
        rc = q(slot->c, "BEGIN", NULL, NULL, "BEGIN", msg, msglen);
        if (rc == 0) {
            rc = body(s, slot->c, arg, msg, msglen);
        }
        bool notfound = rc == PG_COMMIT_NOTFOUND;
        if (rc == 0 && standings) {
            rc = q(slot->c, "UPDATE segloss_state SET v = v + 1 WHERE k = 'generation'", NULL, NULL,
                   "moving the generation on", msg, msglen);
        }
        if (rc == 0 || notfound) {
            rc = q(slot->c, "COMMIT", NULL, NULL, "COMMIT", msg, msglen);
            if (rc == 0 && notfound) {
                rc = STORE_ENOTFOUND;
            }
        }
        if (rc != 0 && PQtransactionStatus(slot->c) != PQTRANS_IDLE) {
            PQclear(PQexec(slot->c, "ROLLBACK"));
        }
    }
    if (rc == PG_RETRY) {
        rc = SL_EBUSY;
    }
    release(s, slot);
    return rc;
}

/* Runs one read-only statement outside a transaction. Returns as run(). */
static int read1(struct pg_store *s, const char *sql, const struct args *a, PGresult **res,
                 const char *what, char *msg, size_t msglen)
{
    struct pg_slot *slot = acquire(s, msg, msglen);
    if (!slot) {
        return SL_EINTERNAL;
    }
    int rc = q(slot->c, sql, a, res, what, msg, msglen);
    release(s, slot);
    return rc == PG_RETRY ? SL_EBUSY : rc;
}

/* Writes 16 random lowercase hex digits and a NUL into id. Returns 0 or SL_EINTERNAL. */
static int random_hex(char *id, char *msg, size_t msglen)
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

/* ---- leases --------------------------------------------------------------------------------- */

/* Renews this replica's lease (re-registering it if a sweep had removed it). */
static int lease_renew(struct pg_store *s, PGconn *c, char *msg, size_t msglen)
{
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    struct args a = {0};
    a_text(&a, s->replica);
    a_text(&a, host);
    a_int(&a, (int64_t)s->lease_s * 1000000);
    return q(c,
             "INSERT INTO segloss_replicas (id, host, started_at, lease_until) "
             "VALUES ($1, $2, " DBNOW ", " DBNOW " + $3::bigint) "
             "ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until",
             &a, NULL, "renewing the lease", msg, msglen);
}

/* Fails the `scoring` rows whose replica's lease has expired ("interrupted") and forgets the
 * expired replicas. */
static int lease_sweep(PGconn *c, char *msg, size_t msglen)
{
    int rc = q(c,
               "UPDATE submissions SET status = 'failed', error = 'interrupted' "
               "WHERE status = 'scoring' AND NOT EXISTS (SELECT 1 FROM segloss_replicas r "
               "WHERE r.id = submissions.owner AND r.lease_until >= " DBNOW ")",
               NULL, NULL, "failing interrupted submissions", msg, msglen);
    if (rc == 0) {
        rc = q(c, "DELETE FROM segloss_replicas WHERE lease_until < " DBNOW, NULL, NULL,
               "forgetting expired replicas", msg, msglen);
    }
    return rc;
}

/* The renewing thread: every quarter lease renews this replica's lease and sweeps, on a
 * connection of its own (a pool slot may wait on a lock for seconds). */
static void *beat_main(void *arg)
{
    struct pg_store *s = arg;
    PGconn *c = NULL;
    char msg[256], last[256] = "";
    long period_ms = (long)s->lease_s * 1000 / 4;
    for (;;) {
        if (c && PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = NULL;
        }
        if (!c) {
            c = connect_db(s, msg, sizeof msg);
        }
        int rc = c ? lease_renew(s, c, msg, sizeof msg) : SL_EINTERNAL;
        if (rc == 0) {
            rc = lease_sweep(c, msg, sizeof msg);
        }
        /* a failure is logged once until it changes, not every period */
        if (rc != 0 && strcmp(msg, last) != 0) {
            fprintf(stderr, "seglossd: challenges: %s\n", msg);
            snprintf(last, sizeof last, "%s", msg);
        } else if (rc == 0) {
            last[0] = '\0';
        }
        pthread_mutex_lock(&s->mu);
        if (!s->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += period_ms / 1000;
            until.tv_nsec += (period_ms % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->bye, &s->mu, &until);
        }
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop) {
            break;
        }
    }
    PQfinish(c);
    return NULL;
}

/* ---- open, migrations, close ---------------------------------------------------------------- */

/* Reads the password from the first line of path into *out (a new string). */
static int password_read(const char *path, char **out, char *msg, size_t msglen)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msglen, "store: cannot read the --db-password-file %s: %s", path,
                 strerror(errno));
        return SL_EINVAL;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    if (n == 0) {
        snprintf(msg, msglen, "store: the --db-password-file %s is empty", path);
        return SL_EINVAL;
    }
    *out = strdup(buf);
    explicit_bzero(buf, sizeof buf);
    if (!*out) {
        snprintf(msg, msglen, "store: out of memory");
        return SL_ENOMEM;
    }
    return 0;
}

/* Checks the URI (libpq parses it): a password in it is refused. Fills s->where with what
 * messages may name (database, host, port, user). Neither the URI nor libpq's parse error is
 * repeated: both may hold the password. */
static int uri_check(struct pg_store *s, char *msg, size_t msglen)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(s->uri, &err);
    PQfreemem(err);
    if (!opts) {
        snprintf(msg, msglen,
                 "--db: libpq cannot parse the URI (its text is not repeated here, "
                 "as it may hold a password); the form is "
                 "postgresql://USER@HOST:PORT/DATABASE");
        return SL_EINVAL;
    }
    const char *db = "", *host = "", *port = "", *user = "";
    bool password = false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = o->val ? o->val : "";
        if (strcmp(o->keyword, "password") == 0 && v[0]) {
            password = true;
        } else if (strcmp(o->keyword, "dbname") == 0) {
            db = v;
        } else if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) {
            host = host[0] ? host : v;
        } else if (strcmp(o->keyword, "port") == 0) {
            port = v;
        } else if (strcmp(o->keyword, "user") == 0) {
            user = v;
        }
    }
    snprintf(s->where, sizeof s->where, "database %.60s on %.80s%s%.8s%s%.40s",
             db[0] ? db : "(default)", host[0] ? host : "(default host)", port[0] ? ":" : "", port,
             user[0] ? " as " : "", user);
    PQconninfoFree(opts);
    if (password) {
        snprintf(msg, msglen,
                 "--db: the URI holds a password, which would show in the process "
                 "list and the environment; take it out and give it with "
                 "--db-password-file FILE (env SEGLOSS_DB_PASSWORD_FILE) or libpq's "
                 "PGPASSFILE, PGPASSWORD or PGSERVICE");
        return SL_EINVAL;
    }
    return 0;
}

/* Brings the schema to STORE_SCHEMA_VERSION in one transaction under the advisory lock; a newer
 * database is refused. */
static int migrate(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)arg;
    PGresult *r = NULL;
    struct args a = {0};
    a_int(&a, MIGRATE_LOCK_KEY);
    int rc = q(c, "SELECT pg_advisory_xact_lock($1::bigint)", &a, NULL, "the migration lock", msg,
               msglen);
    if (rc == 0) {
        rc = q(c, "CREATE TABLE IF NOT EXISTS segloss_schema (version INTEGER NOT NULL)", NULL,
               NULL, "the schema version", msg, msglen);
    }
    if (rc == 0) {
        rc =
            q(c, "SELECT version FROM segloss_schema", NULL, &r, "the schema version", msg, msglen);
    }
    int64_t v = 0;
    if (rc == 0 && PQntuples(r) == 0) {
        rc = q(c, "INSERT INTO segloss_schema VALUES (0)", NULL, NULL, "the schema version", msg,
               msglen);
    } else if (rc == 0) {
        v = g_int(r, 0, 0);
    }
    PQclear(r);
    if (rc == 0 && (v > STORE_SCHEMA_VERSION || v < 0)) {
        snprintf(msg, msglen,
                 "store: the %s has schema version %lld, newer than this seglossd's %d; run a "
                 "seglossd that knows it",
                 s->where, (long long)v, STORE_SCHEMA_VERSION);
        rc = SL_EUNSUPPORTED;
    }
    for (; rc == 0 && v < STORE_SCHEMA_VERSION; v++) {
        PGresult *m = PQexec(c, migrations[v]);
        if (!m || PQresultStatus(m) != PGRES_COMMAND_OK) {
            const char *p = m ? PQresultErrorField(m, PG_DIAG_MESSAGE_PRIMARY) : NULL;
            snprintf(msg, msglen, "store: migration to schema version %lld: %s", (long long)v + 1,
                     p ? p : "no answer");
            rc = SL_EINTERNAL;
        }
        PQclear(m);
        if (rc == 0) {
            struct args b = {0};
            a_int(&b, v + 1);
            rc = q(c, "UPDATE segloss_schema SET version = $1::int", &b, NULL, "the schema version",
                   msg, msglen);
        }
    }
    return rc;
}

/* Registers this replica and fails what expired replicas left `scoring`. */
static int join(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)arg;
    int rc = lease_renew(s, c, msg, msglen);
    return rc == 0 ? lease_sweep(c, msg, msglen) : rc;
}

/* Waits up to STARTUP_WAIT_S for the server to accept connections (replicas may start before
 * it, as in a compose stack), saying so once; a server that answers, even to refuse the
 * password, ends the wait at once (PQping needs no password). */
static void wait_for_server(struct pg_store *s)
{
    const char *kw[] = {"dbname", "connect_timeout", NULL};
    const char *val[] = {s->uri, "5", NULL};
    for (int waited = 0; waited < STARTUP_WAIT_S; waited++) {
        PGPing p = PQpingParams(kw, val, 1);
        if (p == PQPING_OK || p == PQPING_NO_ATTEMPT) {
            return;
        }
        if (waited == 0) {
            fprintf(stderr,
                    "seglossd: challenges: waiting up to %d s for PostgreSQL (%s) to accept "
                    "connections\n",
                    STARTUP_WAIT_S, s->where);
        }
        sleep(1);
    }
}

static const struct store_ops pg_ops;

/* Closes s: stops the renewing thread, hands the re-score job back, drops this replica's row
 * (its rows still `scoring` then fail at the next sweep), closes the connections. */
static void pg_close(struct store *base)
{
    struct pg_store *s = pg_of(base);
    if (s->beat_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->bye);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->beat, NULL);
    }
    if (s->replica[0]) {
        char msg[256];
        struct pg_slot *slot = acquire(s, msg, sizeof msg);
        if (slot) {
            struct args a = {0};
            a_text(&a, s->replica);
            q(slot->c, "UPDATE segloss_jobs SET owner = NULL WHERE owner = $1", &a, NULL, "leaving",
              msg, sizeof msg);
            q(slot->c, "DELETE FROM segloss_replicas WHERE id = $1", &a, NULL, "leaving", msg,
              sizeof msg);
            release(s, slot);
        }
    }
    for (int i = 0; i < POOL_MAX; i++) {
        PQfinish(s->pool[i].c);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->freed);
    pthread_cond_destroy(&s->bye);
    if (s->password) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    if (s->uri) {
        explicit_bzero(s->uri, strlen(s->uri));
        free(s->uri);
    }
    free(s->base.blobs);
    free(s);
}

int store_pg_open(const struct store_options *o, struct store **out, char *msg, size_t msglen)
{
    *out = NULL;
    if (!o->blob_dir || !o->blob_dir[0]) {
        snprintf(msg, msglen, "store: PostgreSQL needs a blob directory (--blob-dir)");
        return SL_EINVAL;
    }
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msglen, "store: out of memory");
        return SL_ENOMEM;
    }
    s->base.ops = &pg_ops;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->freed, NULL);
    pthread_cond_init(&s->bye, NULL);
    s->lease_s = o->lease_s > 0 ? o->lease_s : STORE_LEASE_DEFAULT_S;
    if (s->lease_s < STORE_LEASE_MIN_S) {
        s->lease_s = STORE_LEASE_MIN_S;
    }
    s->uri = strdup(o->db);
    s->base.blobs = strdup(o->blob_dir);
    int rc = 0;
    if (!s->uri || !s->base.blobs) {
        snprintf(msg, msglen, "store: out of memory");
        rc = SL_ENOMEM;
    }
    if (rc == 0) {
        rc = uri_check(s, msg, msglen);
    }
    if (rc == 0 && o->password_file && o->password_file[0]) {
        rc = password_read(o->password_file, &s->password, msg, msglen);
    }
    if (rc == 0) {
        rc = srv_blob_init(s->base.blobs, msg, msglen);
    }
    if (rc == 0) {
        wait_for_server(s);
        rc = tx(s, migrate, NULL, false, msg, msglen);
    }
    if (rc == 0) {
        char hex[STORE_SUB_ID];
        rc = random_hex(hex, msg, msglen);
        snprintf(s->replica, sizeof s->replica, "%d-%s", (int)getpid(), hex);
    }
    if (rc == 0) {
        rc = tx(s, join, NULL, false, msg, msglen);
    }
    if (rc == 0) {
        if (pthread_create(&s->beat, NULL, beat_main, s) != 0) {
            snprintf(msg, msglen, "store: cannot start the lease thread");
            rc = SL_EINTERNAL;
        } else {
            s->beat_started = true;
        }
    }
    if (rc != 0) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* The generation: the counter row every standings write moves on. When the database does not
 * answer, a number never handed out before (the top bit set), so no cached leaderboard is
 * taken for current. */
static uint64_t pg_generation(struct store *base)
{
    struct pg_store *s = pg_of(base);
    char msg[256];
    PGresult *r = NULL;
    int rc = read1(s, "SELECT v FROM segloss_state WHERE k = 'generation'", NULL, &r,
                   "reading the generation", msg, sizeof msg);
    if (rc == 0 && PQntuples(r) == 1) {
        uint64_t g = (uint64_t)g_int(r, 0, 0);
        PQclear(r);
        return g;
    }
    PQclear(r);
    pthread_mutex_lock(&s->mu);
    uint64_t g = (1ULL << 63) | ++s->fail_gen;
    pthread_mutex_unlock(&s->mu);
    return g;
}

/* ---- challenges ----------------------------------------------------------------------------- */

/* Marks challenge's scored submissions stale and resets its progress to {0, 0, count}; inside a
 * transaction that holds the challenge's row. STORE_ENOTFOUND when there is no such challenge. */
static int rescore_begin_tx(PGconn *c, const char *challenge, char *msg, size_t msglen)
{
    struct args a = {0};
    a_text(&a, challenge);
    PGresult *r = NULL;
    /* the challenge's row first: the lock order of every transaction */
    int rc = q(c, "SELECT 1 FROM challenges WHERE name = $1 FOR NO KEY UPDATE", &a, NULL,
               "locking the challenge", msg, msglen);
    if (rc != 0) {
        return rc;
    }
    rc = q(c,
           "WITH marked AS (UPDATE submissions SET stale = 1 WHERE challenge = $1 AND "
           "status = 'scored' RETURNING 1) "
           "UPDATE challenges SET rescore_done = 0, rescore_failed = 0, "
           "rescore_total = (SELECT count(*) FROM marked) WHERE name = $1 RETURNING 1",
           &a, &r, "starting a re-score", msg, msglen);
    if (rc == 0 && PQntuples(r) == 0) {
        snprintf(msg, msglen, "store: no challenge %s", challenge);
        rc = STORE_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

struct put_arg {
    const char *name, *config, *public_ids, *ref_sha, *manifest;
    bool rescore;
    chal_time now;
    bool created;
    int64_t version;
};

/* challenge_put's transaction: one upsert (two replicas creating one name at once give versions
 * 1 and 2). */
static int challenge_put_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    struct put_arg *p = arg;
    struct args a = {0};
    a_text(&a, p->name);
    a_text(&a, p->config);
    a_text(&a, p->public_ids);
    a_int(&a, p->now);
    PGresult *r = NULL;
    int rc = q(c,
               "INSERT INTO challenges (name, config, version, public_ids, created_at, updated_at) "
               "VALUES ($1, $2, 1, $3, $4, $4) ON CONFLICT (name) DO UPDATE SET "
               "config = EXCLUDED.config, version = challenges.version + 1, "
               "public_ids = EXCLUDED.public_ids, updated_at = EXCLUDED.updated_at "
               "RETURNING version",
               &a, &r, "writing the challenge", msg, msglen);
    if (rc == 0) {
        p->version = g_int(r, 0, 0);
        p->created = p->version == 1;
    }
    PQclear(r);
    if (rc == 0 && p->rescore) {
        rc = rescore_begin_tx(c, p->name, msg, msglen);
    }
    return rc;
}

static int pg_challenge_put(struct store *base, const char *name, const char *config,
                            const char *public_ids, bool rescore, chal_time now, bool *created,
                            int64_t *version, char *msg, size_t msglen)
{
    struct put_arg p = {name, config, public_ids, NULL, NULL, rescore, now, false, 0};
    int rc = tx(pg_of(base), challenge_put_tx, &p, true, msg, msglen);
    if (rc == 0) {
        *created = p.created;
        *version = p.version;
    }
    return rc;
}

/* reference_put's transaction. */
static int reference_put_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    struct put_arg *p = arg;
    struct args a = {0};
    a_text(&a, p->name);
    PGresult *r = NULL;
    int rc = q(c, "SELECT ref_sha != '' FROM challenges WHERE name = $1 FOR NO KEY UPDATE", &a, &r,
               "reading the challenge", msg, msglen);
    if (rc == 0 && PQntuples(r) == 0) {
        snprintf(msg, msglen, "store: no challenge %s", p->name);
        rc = STORE_ENOTFOUND;
    }
    if (rc == 0) {
        p->created = strcmp(PQgetvalue(r, 0, 0), "t") != 0;
    }
    PQclear(r);
    if (rc == 0) {
        a_text(&a, p->ref_sha);
        a_text(&a, p->manifest);
        a_text(&a, p->public_ids);
        a_int(&a, p->now);
        rc = q(c,
               "UPDATE challenges SET ref_sha = $2, reference = $3, public_ids = $4, "
               "updated_at = $5 WHERE name = $1",
               &a, NULL, "writing the reference", msg, msglen);
    }
    if (rc == 0 && p->rescore) {
        rc = rescore_begin_tx(c, p->name, msg, msglen);
    }
    return rc;
}

static int pg_reference_put(struct store *base, const char *name, const char *ref_sha,
                            const char *manifest, const char *public_ids, bool rescore,
                            chal_time now, bool *created, char *msg, size_t msglen)
{
    struct put_arg p = {name, NULL, public_ids, ref_sha, manifest, rescore, now, false, 0};
    int rc = tx(pg_of(base), reference_put_tx, &p, true, msg, msglen);
    if (rc == 0) {
        *created = p.created;
    }
    return rc;
}

#define CHALLENGE_COLS                                                                             \
    "SELECT c.name, c.config, c.version, c.reference, c.ref_sha, c.public_ids, c.created_at, "     \
    "c.updated_at, c.rescore_done, c.rescore_failed, c.rescore_total, "                            \
    "(SELECT count(*) FROM participants p WHERE p.challenge = c.name AND p.revoked_at IS NULL), "  \
    "(SELECT count(*) FROM submissions s WHERE s.challenge = c.name) FROM challenges c "

/* Fills *c from row i of a CHALLENGE_COLS result. Returns 0 or SL_ENOMEM (c cleared). */
static int challenge_row(const PGresult *r, int i, struct store_challenge *c, char *msg,
                         size_t msglen)
{
    bool oom = false;
    memset(c, 0, sizeof *c);
    g_copy(r, i, 0, c->name, sizeof c->name);
    c->config = g_dup(r, i, 1, &oom);
    c->version = g_int(r, i, 2);
    c->reference = g_dup(r, i, 3, &oom);
    g_copy(r, i, 4, c->ref_sha, sizeof c->ref_sha);
    c->public_ids = g_dup(r, i, 5, &oom);
    c->created_at = g_int(r, i, 6);
    c->updated_at = g_int(r, i, 7);
    c->rescore_done = g_int(r, i, 8);
    c->rescore_failed = g_int(r, i, 9);
    c->rescore_total = g_int(r, i, 10);
    c->rescore_running = c->rescore_total > c->rescore_done + c->rescore_failed;
    c->participants = g_int(r, i, 11);
    c->submissions = g_int(r, i, 12);
    if (oom) {
        store_challenge_clear(c);
        snprintf(msg, msglen, "store: out of memory reading a challenge");
        return SL_ENOMEM;
    }
    return 0;
}

static int pg_challenge_get(struct store *base, const char *name, struct store_challenge *out,
                            char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    struct args a = {0};
    a_text(&a, name);
    PGresult *r = NULL;
    int rc = read1(pg_of(base), CHALLENGE_COLS "WHERE c.name = $1", &a, &r, "reading the challenge",
                   msg, msglen);
    if (rc == 0 && PQntuples(r) == 0) {
        snprintf(msg, msglen, "store: no challenge %s", name);
        rc = STORE_ENOTFOUND;
    }
    if (rc == 0) {
        rc = challenge_row(r, 0, out, msg, msglen);
    }
    PQclear(r);
    return rc;
}

static int pg_challenge_list(struct store *base, struct store_challenge **out, size_t *n, char *msg,
                             size_t msglen)
{
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = read1(pg_of(base), CHALLENGE_COLS "ORDER BY c.name", NULL, &r, "listing challenges",
                   msg, msglen);
    if (rc != 0) {
        return rc;
    }
    int rows = PQntuples(r);
    struct store_challenge *v = calloc((size_t)rows + 1, sizeof *v);
    if (!v) {
        PQclear(r);
        snprintf(msg, msglen, "store: out of memory listing challenges");
        return SL_ENOMEM;
    }
    size_t cnt = 0;
    for (int i = 0; i < rows && rc == 0; i++) {
        rc = challenge_row(r, i, &v[cnt], msg, msglen);
        cnt += rc == 0;
    }
    PQclear(r);
    if (rc != 0) {
        store_challenge_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- participants --------------------------------------------------------------------------- */

/* The hex of 32 bytes with PostgreSQL's bytea prefix ("\x..."), into out (67 bytes). */
static void bytea_hex(const unsigned char h[32], char out[67])
{
    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < 32; i++) {
        snprintf(out + 2 + 2 * i, 3, "%02x", h[i]);
    }
}

struct part_arg {
    const char *challenge, *name;
    const unsigned char *hash;
    chal_time now;
    int64_t id;
};

/* participant_add's transaction: the name and the token are unique keys, so two replicas adding
 * one name at once give one participant and one STORE_ECONFLICT. */
static int participant_add_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    struct part_arg *p = arg;
    struct args a = {0};
    a_text(&a, p->challenge);
    PGresult *r = NULL;
    int rc = q(c, "SELECT 1 FROM challenges WHERE name = $1", &a, &r, "reading the challenge", msg,
               msglen);
    if (rc == 0 && PQntuples(r) == 0) {
        snprintf(msg, msglen, "store: no challenge %s", p->challenge);
        rc = STORE_ENOTFOUND;
    }
    PQclear(r);
    r = NULL;
    char hex[67], constraint[64] = "";
    bytea_hex(p->hash, hex);
    if (rc == 0) {
        a_text(&a, p->name);
        a_text(&a, hex);
        a_int(&a, p->now);
        rc = run(c,
                 "INSERT INTO participants (challenge, name, token_hash, created_at) "
                 "VALUES ($1, $2, $3::bytea, $4) RETURNING id",
                 &a, &r, "adding a participant", constraint, sizeof constraint, msg, msglen);
    }
    if (rc == STORE_ECONFLICT) {
        /* the constraint's name says which key, never its value */
        if (strstr(constraint, "token")) {
            snprintf(msg, msglen, "store: participant %s of %s: token already in use", p->name,
                     p->challenge);
        } else {
            snprintf(msg, msglen, "store: participant %s of %s exists", p->name, p->challenge);
        }
    }
    if (rc == 0) {
        p->id = g_int(r, 0, 0);
    }
    PQclear(r);
    return rc;
}

static int pg_participant_add(struct store *base, const char *challenge, const char *name,
                              const unsigned char token_hash[32], chal_time now,
                              struct store_participant *out, char *msg, size_t msglen)
{
    struct part_arg p = {challenge, name, token_hash, now, 0};
    int rc = tx(pg_of(base), participant_add_tx, &p, false, msg, msglen); /* no ranked row */
    if (rc == 0 && out) {
        memset(out, 0, sizeof *out);
        out->id = p.id;
        snprintf(out->name, sizeof out->name, "%s", name);
        snprintf(out->challenge, sizeof out->challenge, "%s", challenge);
        out->created_at = now;
    }
    return rc;
}

#define PARTICIPANT_COLS                                                                           \
    "SELECT p.id, p.name, p.challenge, p.created_at, (p.revoked_at IS NOT NULL)::int, "            \
    "(SELECT count(*) FROM submissions s WHERE s.participant = p.id), "                            \
    "(SELECT count(*) FROM submissions s WHERE s.participant = p.id AND s.status = 'scored') "     \
    "FROM participants p "

/* Fills *p from row i of a PARTICIPANT_COLS result. */
static void participant_row(const PGresult *r, int i, struct store_participant *p)
{
    memset(p, 0, sizeof *p);
    p->id = g_int(r, i, 0);
    g_copy(r, i, 1, p->name, sizeof p->name);
    g_copy(r, i, 2, p->challenge, sizeof p->challenge);
    p->created_at = g_int(r, i, 3);
    p->revoked = g_int(r, i, 4) != 0;
    p->submissions = g_int(r, i, 5);
    p->scored = g_int(r, i, 6);
}

static int pg_participant_list(struct store *base, const char *challenge,
                               struct store_participant **out, size_t *n, char *msg, size_t msglen)
{
    *out = NULL;
    *n = 0;
    struct args a = {0};
    a_text(&a, challenge);
    PGresult *r = NULL;
    int rc = read1(pg_of(base), PARTICIPANT_COLS "WHERE p.challenge = $1 ORDER BY p.name", &a, &r,
                   "listing participants", msg, msglen);
    if (rc != 0) {
        return rc;
    }
    int rows = PQntuples(r);
    struct store_participant *v = calloc((size_t)rows + 1, sizeof *v);
    if (!v) {
        PQclear(r);
        snprintf(msg, msglen, "store: out of memory listing participants");
        return SL_ENOMEM;
    }
    for (int i = 0; i < rows; i++) {
        participant_row(r, i, &v[i]);
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

struct revoke_arg {
    const char *challenge, *name;
    chal_time now;
};

/* participant_revoke's transaction. */
static int revoke_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    struct revoke_arg *p = arg;
    struct args a = {0};
    a_text(&a, p->challenge);
    a_text(&a, p->name);
    a_int(&a, p->now);
    PGresult *r = NULL;
    int rc = q(c,
               "UPDATE participants SET revoked_at = $3 "
               "WHERE challenge = $1 AND name = $2 AND revoked_at IS NULL",
               &a, &r, "revoking a participant", msg, msglen);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0) {
        snprintf(msg, msglen, "store: no active participant %s of %s", p->name, p->challenge);
        rc = STORE_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

static int pg_participant_revoke(struct store *base, const char *challenge, const char *name,
                                 chal_time now, char *msg, size_t msglen)
{
    struct revoke_arg p = {challenge, name, now};
    return tx(pg_of(base), revoke_tx, &p, true, msg, msglen);
}

static int pg_token_lookup(struct store *base, const unsigned char token_hash[32],
                           struct store_participant *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    char hex[67];
    bytea_hex(token_hash, hex);
    struct args a = {0};
    a_text(&a, hex);
    PGresult *r = NULL;
    int rc = read1(pg_of(base), PARTICIPANT_COLS "WHERE p.token_hash = $1::bytea", &a, &r,
                   "looking up a token", msg, msglen);
    if (rc == 0 && PQntuples(r) == 0) {
        snprintf(msg, msglen, "store: no participant has that token");
        rc = STORE_ENOTFOUND;
    }
    if (rc == 0) {
        participant_row(r, 0, out);
    }
    PQclear(r);
    explicit_bzero(hex, sizeof hex);
    return rc;
}

/* ---- submissions ---------------------------------------------------------------------------- */

struct admit_arg {
    const char *challenge, *note;
    int64_t pid;
    chal_time now, opens_at, closes_at;
    const struct chal_quota *q;
    enum chal_verdict verdict;
    struct chal_usage usage;
    int64_t retry;
    char id[STORE_SUB_ID];
};

/* The admission: the participant's row locked first, so admissions of one participant on every
 * replica run one after another; its rows left by dead replicas failed; the usage counted; the
 * `scoring` row inserted when admitted (owned by this replica). */
static int admit_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    struct admit_arg *p = arg;
    memset(&p->usage, 0, sizeof p->usage);
    p->verdict = CHAL_CLOSED;
    p->retry = 0;
    p->id[0] = '\0';
    struct args a = {0};
    a_text(&a, p->challenge);
    a_int(&a, p->pid);
    PGresult *r = NULL;
    int rc = q(c,
               "SELECT 1 FROM participants WHERE id = $2::bigint AND challenge = $1 "
               "AND revoked_at IS NULL FOR NO KEY UPDATE",
               &a, &r, "locking the participant", msg, msglen);
    if (rc == 0 && PQntuples(r) == 0) {
        snprintf(msg, msglen, "store: no active participant %lld of %s", (long long)p->pid,
                 p->challenge);
        rc = STORE_ENOTFOUND;
    }
    PQclear(r);
    r = NULL;
    if (rc == 0) {
        rc = q(c,
               "UPDATE submissions SET status = 'failed', error = 'interrupted' "
               "WHERE challenge = $1 AND participant = $2::bigint AND status = 'scoring' "
               "AND NOT EXISTS (SELECT 1 FROM segloss_replicas r WHERE r.id = submissions.owner "
               "AND r.lease_until >= " DBNOW ")",
               &a, NULL, "failing interrupted submissions", msg, msglen);
    }
    chal_time day_end = chal_next_utc_day(p->now);
    a_int(&a, day_end - DAY_US);
    a_int(&a, day_end);
    if (rc == 0) {
        rc = q(c,
               "SELECT "
               "count(*) FILTER (WHERE status = 'scored' AND received_at >= $3 AND "
               "received_at < $4), "
               "count(*) FILTER (WHERE status = 'scored'), "
               "count(*) FILTER (WHERE status = 'scoring'), "
               "count(*) FILTER (WHERE status = 'scoring' AND received_at >= $3 AND "
               "received_at < $4) "
               "FROM submissions WHERE challenge = $1 AND participant = $2::bigint",
               &a, &r, "counting submissions", msg, msglen);
    }
    if (rc == 0) {
        p->usage.scored_today = g_int(r, 0, 0);
        p->usage.scored_total = g_int(r, 0, 1);
        p->usage.pending = g_int(r, 0, 2);
        p->usage.pending_today = g_int(r, 0, 3);
        p->verdict = chal_admit(p->q, &p->usage, p->now, p->opens_at, p->closes_at, &p->retry);
    }
    PQclear(r);
    for (int attempt = 0; rc == 0 && p->verdict == CHAL_ADMIT && attempt < 4; attempt++) {
        rc = random_hex(p->id, msg, msglen);
        if (rc != 0) {
            break;
        }
        struct args b = {0};
        a_text(&b, p->id);
        a_text(&b, p->challenge);
        a_int(&b, p->pid);
        a_int(&b, p->now);
        a_text(&b, p->note ? p->note : "");
        a_text(&b, s->replica);
        r = NULL;
        rc = q(c,
               "INSERT INTO submissions (id, challenge, participant, received_at, status, note, "
               "owner) VALUES ($1, $2, $3, $4, 'scoring', $5, $6) ON CONFLICT (id) DO NOTHING "
               "RETURNING seq",
               &b, &r, "inserting a submission", msg, msglen);
        bool inserted = rc == 0 && PQntuples(r) == 1;
        PQclear(r);
        if (inserted) {
            break;
        }
        if (rc == 0 && attempt == 3) {
            snprintf(msg, msglen, "store: no free submission id after 4 tries");
            rc = SL_EINTERNAL;
        }
    }
    return rc;
}

static int pg_sub_admit(struct store *base, const char *challenge, int64_t pid, const char *note,
                        chal_time now, const struct chal_quota *q, chal_time opens_at,
                        chal_time closes_at, enum chal_verdict *verdict, struct chal_usage *usage,
                        int64_t *retry_after_s, char id[STORE_SUB_ID], char *msg, size_t msglen)
{
    struct admit_arg p = {.challenge = challenge,
                          .note = note,
                          .pid = pid,
                          .now = now,
                          .opens_at = opens_at,
                          .closes_at = closes_at,
                          .q = q};
    int rc = tx(pg_of(base), admit_tx, &p, false, msg, msglen); /* no ranked row changes */
    *verdict = rc == 0 ? p.verdict : CHAL_CLOSED;
    *usage = p.usage;
    *retry_after_s = rc == 0 ? p.retry : 0;
    snprintf(id, STORE_SUB_ID, "%s", rc == 0 ? p.id : "");
    return rc;
}

/* What finishing a row needs to know of it and its challenge. */
struct sub_state {
    char challenge[STORE_NAME_MAX];
    enum store_status status;
    bool stale;
    int64_t version;
    char ref_sha[STORE_SHA_HEX];
};

/* Reads row id's state, locking its challenge's row and then the row (the lock order), so that
 * a configuration or reference written at the same time is either seen here or waits for this
 * transaction (and then marks the row stale). STORE_ENOTFOUND. */
static int sub_state(PGconn *c, const char *id, struct sub_state *ss, char *msg, size_t msglen)
{
    struct args a = {0};
    a_text(&a, id);
    PGresult *r = NULL;
    int rc = q(c, "SELECT challenge FROM submissions WHERE id = $1", &a, &r, "reading a submission",
               msg, msglen);
    if (rc == 0 && PQntuples(r) == 0) {
        snprintf(msg, msglen, "store: no submission %s", id);
        rc = STORE_ENOTFOUND;
    }
    if (rc == 0) {
        g_copy(r, 0, 0, ss->challenge, sizeof ss->challenge);
    }
    PQclear(r);
    r = NULL;
    if (rc == 0) {
        struct args b = {0};
        a_text(&b, ss->challenge);
        rc = q(c, "SELECT version, ref_sha FROM challenges WHERE name = $1 FOR NO KEY UPDATE", &b,
               &r, "locking the challenge", msg, msglen);
        if (rc == 0 && PQntuples(r) == 1) {
            ss->version = g_int(r, 0, 0);
            g_copy(r, 0, 1, ss->ref_sha, sizeof ss->ref_sha);
        }
        PQclear(r);
        r = NULL;
    }
    if (rc == 0) {
        rc = q(c, "SELECT status, stale FROM submissions WHERE id = $1 FOR UPDATE", &a, &r,
               "locking a submission", msg, msglen);
    }
    if (rc == 0 && PQntuples(r) == 1) {
        ss->status = status_of(PQgetvalue(r, 0, 0));
        ss->stale = g_int(r, 0, 1) != 0;
    }
    PQclear(r);
    return rc;
}

/* Whether scores sc were made under something other than the challenge's current state. */
static bool scores_stale(const struct store_scores *sc, const struct sub_state *ss)
{
    return sc->config_version != ss->version ||
           strcmp(sc->ref_sha ? sc->ref_sha : "", ss->ref_sha) != 0;
}

/* Updates row id with status, error and the scores sc (NULL: only status and error; a failed row
 * with sc takes only its body), stale as given; the whole answers into answers. */
static int write_scores(PGconn *c, const char *id, enum store_status status, const char *error,
                        const struct store_scores *sc, bool stale, char *msg, size_t msglen)
{
    struct args a = {0};
    a_text(&a, id);
    a_text(&a, status_names[status]);
    a_int(&a, stale);
    int rc;
    if (status == STORE_SCORED) {
        a_text(&a, sc->body_sha ? sc->body_sha : "");
        a_int(&a, sc->bytes);
        a_text(&a, sc->pub_values);
        a_text(&a, sc->priv_values);
        a_int(&a, sc->config_version);
        a_text(&a, sc->ref_sha ? sc->ref_sha : "");
        a_text(&a, sc->server_version ? sc->server_version : "");
        rc = q(c,
               "UPDATE submissions SET status = $2, error = NULL, stale = $3, body_sha = $4, "
               "bytes = $5, pub_values = $6, priv_values = $7, config_version = $8, "
               "ref_sha = $9, server_version = $10 WHERE id = $1",
               &a, NULL, "storing scores", msg, msglen);
    } else if (sc) {
        a_text(&a, error ? error : "failed");
        a_text(&a, sc->body_sha ? sc->body_sha : "");
        a_int(&a, sc->bytes);
        rc = q(c,
               "UPDATE submissions SET status = $2, error = $4, stale = $3, "
               "body_sha = CASE WHEN $5::text != '' THEN $5::text ELSE body_sha END, "
               "bytes = CASE WHEN $5::text != '' THEN $6::bigint ELSE bytes END WHERE id = $1",
               &a, NULL, "storing a failure", msg, msglen);
    } else {
        a_text(&a, error ? error : "failed");
        rc = q(c, "UPDATE submissions SET status = $2, error = $4, stale = $3 WHERE id = $1", &a,
               NULL, "storing a failure", msg, msglen);
    }
    if (rc == 0 && status == STORE_SCORED) {
        struct args b = {0};
        a_text(&b, id);
        a_text(&b, sc->pub_full);
        a_text(&b, sc->priv_full);
        rc = q(c,
               "INSERT INTO answers (id, pub_full, priv_full) VALUES ($1, $2, $3) "
               "ON CONFLICT (id) DO UPDATE SET pub_full = EXCLUDED.pub_full, "
               "priv_full = EXCLUDED.priv_full",
               &b, NULL, "storing the answers", msg, msglen);
    }
    return rc;
}

/* Adds 1 to column col (a literal name) of challenge's re-score progress. */
static int bump(PGconn *c, const char *challenge, const char *col, char *msg, size_t msglen)
{
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE challenges SET %s = %s + 1 WHERE name = $1", col, col);
    struct args a = {0};
    a_text(&a, challenge);
    return q(c, sql, &a, NULL, "counting the re-score", msg, msglen);
}

struct finish_arg {
    const char *id, *error;
    enum store_status status;
    bool ok; /* re-score: scored */
    const struct store_scores *sc;
};

/* sub_finish's transaction. */
static int finish_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    struct finish_arg *p = arg;
    struct sub_state ss;
    int rc = sub_state(c, p->id, &ss, msg, msglen);
    if (rc == 0 && ss.status != STORE_SCORING) {
        snprintf(msg, msglen, "store: submission %s is %s, not scoring", p->id,
                 status_names[ss.status]);
        rc = STORE_ECONFLICT;
    }
    bool stale = rc == 0 && p->status == STORE_SCORED && scores_stale(p->sc, &ss);
    if (rc == 0) {
        rc = write_scores(c, p->id, p->status, p->error, p->sc, stale, msg, msglen);
    }
    if (rc == 0 && p->sc && p->sc->note) {
        struct args a = {0};
        a_text(&a, p->id);
        a_text(&a, p->sc->note);
        rc = q(c, "UPDATE submissions SET note = $2 WHERE id = $1", &a, NULL, "storing the note",
               msg, msglen);
    }
    if (rc == 0 && stale) {
        rc = bump(c, ss.challenge, "rescore_total", msg, msglen);
    }
    return rc;
}

static int pg_sub_finish(struct store *base, const char *id, enum store_status status,
                         const char *error, const struct store_scores *sc, char *msg, size_t msglen)
{
    if (status == STORE_SCORING || (status == STORE_SCORED && !sc)) {
        snprintf(msg, msglen, "store: finishing %s needs scored with scores, or failed", id);
        return SL_EINVAL;
    }
    struct finish_arg p = {id, error, status, false, sc};
    return tx(pg_of(base), finish_tx, &p, true, msg, msglen);
}

static int pg_sub_counts(struct store *base, struct store_count **out, size_t *n, char *msg,
                         size_t msglen)
{
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = read1(pg_of(base),
                   "SELECT challenge, status, count(*) FROM submissions GROUP BY challenge, status "
                   "ORDER BY challenge, status",
                   NULL, &r, "counting submissions", msg, msglen);
    if (rc != 0) {
        return rc;
    }
    int rows = PQntuples(r);
    struct store_count *v = calloc((size_t)rows + 1, sizeof *v);
    if (!v) {
        PQclear(r);
        snprintf(msg, msglen, "store: out of memory counting submissions");
        return SL_ENOMEM;
    }
    for (int i = 0; i < rows; i++) {
        g_copy(r, i, 0, v[i].challenge, sizeof v[i].challenge);
        v[i].status = status_of(PQgetvalue(r, i, 1));
        v[i].n = g_int(r, i, 2);
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
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

/* Fills *sub from row i of a SUB_COLS_* result. Returns 0 or SL_ENOMEM (sub cleared). */
static int sub_row(const PGresult *r, int i, struct store_sub *sub, char *msg, size_t msglen)
{
    bool oom = false;
    memset(sub, 0, sizeof *sub);
    sub->seq = g_int(r, i, 0);
    g_copy(r, i, 1, sub->id, sizeof sub->id);
    g_copy(r, i, 2, sub->challenge, sizeof sub->challenge);
    sub->participant = g_int(r, i, 3);
    g_copy(r, i, 4, sub->participant_name, sizeof sub->participant_name);
    sub->received_at = g_int(r, i, 5);
    sub->status = status_of(PQgetvalue(r, i, 6));
    sub->error = g_dup(r, i, 7, &oom);
    sub->note = g_dup(r, i, 8, &oom);
    g_copy(r, i, 9, sub->body_sha, sizeof sub->body_sha);
    sub->bytes = g_int(r, i, 10);
    sub->pub_values = g_dup(r, i, 11, &oom);
    sub->priv_values = g_dup(r, i, 12, &oom);
    sub->pub_full = g_dup(r, i, 13, &oom);
    sub->priv_full = g_dup(r, i, 14, &oom);
    sub->config_version = g_int(r, i, 15);
    g_copy(r, i, 16, sub->ref_sha, sizeof sub->ref_sha);
    g_copy(r, i, 17, sub->server_version, sizeof sub->server_version);
    sub->stale = g_int(r, i, 18) != 0;
    sub->final_ = g_int(r, i, 19) != 0;
    sub->disqualified = g_int(r, i, 20) != 0;
    sub->dq_reason = g_dup(r, i, 21, &oom);
    if (oom) {
        store_sub_clear(sub);
        snprintf(msg, msglen, "store: out of memory reading a submission");
        return SL_ENOMEM;
    }
    return 0;
}

/* Runs a SUB_COLS_* query and collects its rows into a new array. */
static int sub_rows(struct pg_store *s, const char *sql, const struct args *a,
                    struct store_sub **out, size_t *n, char *msg, size_t msglen)
{
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = read1(s, sql, a, &r, "listing submissions", msg, msglen);
    if (rc != 0) {
        return rc;
    }
    int rows = PQntuples(r);
    struct store_sub *v = calloc((size_t)rows + 1, sizeof *v);
    if (!v) {
        PQclear(r);
        snprintf(msg, msglen, "store: out of memory listing submissions");
        return SL_ENOMEM;
    }
    size_t cnt = 0;
    for (int i = 0; i < rows && rc == 0; i++) {
        rc = sub_row(r, i, &v[cnt], msg, msglen);
        cnt += rc == 0;
    }
    PQclear(r);
    if (rc != 0) {
        store_sub_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int pg_sub_get(struct store *base, const char *challenge, const char *id, bool full,
                      struct store_sub *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    struct args a = {0};
    a_text(&a, challenge);
    a_text(&a, id);
    struct store_sub *v = NULL;
    size_t n = 0;
    int rc = sub_rows(pg_of(base),
                      full ? SUB_COLS_FULL "WHERE s.challenge = $1 AND s.id = $2"
                           : SUB_COLS_BRIEF "WHERE s.challenge = $1 AND s.id = $2",
                      &a, &v, &n, msg, msglen);
    if (rc == 0 && n == 0) {
        snprintf(msg, msglen, "store: no submission %s in %s", id, challenge);
        rc = STORE_ENOTFOUND;
    }
    if (rc == 0) {
        *out = v[0];
        memset(&v[0], 0, sizeof v[0]);
    }
    store_sub_free(v, n);
    return rc;
}

static int pg_sub_list(struct store *base, const char *challenge, int64_t pid, bool full,
                       struct store_sub **out, size_t *n, char *msg, size_t msglen)
{
#define SUB_LIST_WHERE                                                                             \
    "WHERE s.challenge = $1 AND ($2::bigint < 0 OR s.participant = $2::bigint) "                   \
    "ORDER BY s.received_at DESC, s.seq DESC"
    struct args a = {0};
    a_text(&a, challenge);
    a_int(&a, pid);
    return sub_rows(pg_of(base),
                    full ? SUB_COLS_FULL SUB_LIST_WHERE : SUB_COLS_BRIEF SUB_LIST_WHERE, &a, out, n,
                    msg, msglen);
#undef SUB_LIST_WHERE
}

struct final_arg {
    const char *challenge, *id;
    int64_t pid, max_finals;
    bool on;
};

/* set_final's transaction: the participant's row locked first, so two selections of one
 * participant on two replicas cannot both pass the count. */
static int final_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    struct final_arg *p = arg;
    struct args a = {0};
    a_text(&a, p->challenge);
    a_text(&a, p->id);
    a_int(&a, p->pid);
    PGresult *r = NULL;
    struct args pa = {0};
    a_int(&pa, p->pid);
    int rc = q(c, "SELECT 1 FROM participants WHERE id = $1::bigint FOR NO KEY UPDATE", &pa, NULL,
               "locking the participant", msg, msglen);
    if (rc == 0) {
        rc = q(c,
               "SELECT (status = 'scored')::int, final, (SELECT count(*) FROM submissions f "
               "WHERE f.challenge = $1 AND f.participant = $3::bigint AND f.final = 1) "
               "FROM submissions WHERE challenge = $1 AND id = $2 AND participant = $3::bigint",
               &a, &r, "reading a submission", msg, msglen);
    }
    if (rc == 0 && PQntuples(r) == 0) {
        snprintf(msg, msglen, "store: no submission %s of participant %lld in %s", p->id,
                 (long long)p->pid, p->challenge);
        rc = STORE_ENOTFOUND;
    }
    bool scored = false, already = false;
    int64_t finals = 0;
    if (rc == 0) {
        scored = g_int(r, 0, 0) != 0;
        already = g_int(r, 0, 1) != 0;
        finals = g_int(r, 0, 2);
    }
    PQclear(r);
    if (rc == 0 && p->on && !already) {
        if (!scored) {
            snprintf(msg, msglen, "store: submission %s is not scored", p->id);
            rc = SL_EINVAL;
        } else if (finals >= p->max_finals) {
            snprintf(msg, msglen, "store: participant %lld already has %lld of %lld finals",
                     (long long)p->pid, (long long)finals, (long long)p->max_finals);
            rc = STORE_ECONFLICT;
        }
    }
    if (rc == 0 && p->on != already) {
        struct args b = {0};
        a_text(&b, p->id);
        a_int(&b, p->on);
        rc = q(c, "UPDATE submissions SET final = $2 WHERE id = $1", &b, NULL, "selecting a final",
               msg, msglen);
    }
    return rc;
}

static int pg_sub_set_final(struct store *base, const char *challenge, const char *id, int64_t pid,
                            bool on, int64_t max_finals, char *msg, size_t msglen)
{
    struct final_arg p = {challenge, id, pid, max_finals, on};
    return tx(pg_of(base), final_tx, &p, true, msg, msglen);
}

struct dq_arg {
    const char *challenge, *id, *reason;
    bool dq;
};

/* disqualify's transaction. */
static int dq_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    struct dq_arg *p = arg;
    struct args a = {0};
    a_text(&a, p->challenge);
    a_text(&a, p->id);
    a_int(&a, p->dq);
    a_text(&a, p->dq ? p->reason : NULL);
    PGresult *r = NULL;
    int rc = q(c,
               "UPDATE submissions SET disqualified = $3, dq_reason = $4 "
               "WHERE challenge = $1 AND id = $2",
               &a, &r, "disqualifying", msg, msglen);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0) {
        snprintf(msg, msglen, "store: no submission %s in %s", p->id, p->challenge);
        rc = STORE_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

static int pg_sub_disqualify(struct store *base, const char *challenge, const char *id, bool dq,
                             const char *reason, char *msg, size_t msglen)
{
    struct dq_arg p = {challenge, id, reason, dq};
    return tx(pg_of(base), dq_tx, &p, true, msg, msglen);
}

static int pg_ranked_subs(struct store *base, const char *challenge, struct store_sub **out,
                          size_t *n, char *msg, size_t msglen)
{
    struct args a = {0};
    a_text(&a, challenge);
    /* what a ranking reads, in SUB_COLS_* order; the audit columns stay empty */
    return sub_rows(pg_of(base),
                    "SELECT s.seq, s.id, s.challenge, s.participant, p.name, s.received_at, "
                    "s.status, NULL, s.note, '', s.bytes, s.pub_values, s.priv_values, NULL, NULL, "
                    "0, '', '', s.stale, s.final, s.disqualified, NULL "
                    "FROM submissions s JOIN participants p ON p.id = s.participant "
                    "WHERE s.challenge = $1 AND s.status = 'scored' "
                    "AND s.disqualified = 0 AND p.revoked_at IS NULL "
                    "ORDER BY s.received_at, s.seq",
                    &a, out, n, msg, msglen);
}

/* ---- re-scoring ----------------------------------------------------------------------------- */

/* rescore_begin's transaction. */
static int rescore_begin_body(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    return rescore_begin_tx(c, arg, msg, msglen);
}

static int pg_rescore_begin(struct store *base, const char *challenge, char *msg, size_t msglen)
{
    return tx(pg_of(base), rescore_begin_body, (void *)challenge, true, msg, msglen);
}

/* rescore_next's transaction: claims the cluster's re-score job (free, this replica's, or its
 * holder's lease expired), then the oldest stale row; with none left, hands the job back. */
static int rescore_next_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    struct store_sub *out = arg;
    struct args a = {0};
    a_text(&a, s->replica);
    PGresult *r = NULL;
    int rc = q(c,
               "UPDATE segloss_jobs SET owner = $1, claimed_at = " DBNOW " WHERE name = 'rescore' "
               "AND (owner IS NULL OR owner = $1 OR NOT EXISTS (SELECT 1 FROM segloss_replicas r "
               "WHERE r.id = segloss_jobs.owner AND r.lease_until >= " DBNOW "))",
               &a, &r, "claiming the re-score", msg, msglen);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0) {
        snprintf(msg, msglen, "store: the re-score runs on another replica");
        rc = STORE_ENOTFOUND; /* rolled back: nothing was written */
    }
    PQclear(r);
    r = NULL;
    if (rc == 0) {
        rc = q(c,
               SUB_COLS_BRIEF "WHERE s.stale = 1 AND s.status = 'scored' "
                              "ORDER BY s.received_at, s.seq LIMIT 1",
               NULL, &r, "finding a stale submission", msg, msglen);
    }
    if (rc == 0 && PQntuples(r) == 0) {
        rc = q(c, "UPDATE segloss_jobs SET owner = NULL WHERE name = 'rescore'", NULL, NULL,
               "handing the re-score back", msg, msglen);
        if (rc == 0) {
            snprintf(msg, msglen, "store: nothing to re-score");
            rc = PG_COMMIT_NOTFOUND;
        }
    } else if (rc == 0) {
        rc = sub_row(r, 0, out, msg, msglen);
    }
    PQclear(r);
    return rc;
}

static int pg_rescore_next(struct store *base, struct store_sub *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    int rc = tx(pg_of(base), rescore_next_tx, out, false, msg, msglen);
    if (rc != 0) {
        store_sub_clear(out);
    }
    return rc;
}

/* rescore_finish's transaction. */
static int rescore_finish_tx(struct pg_store *s, PGconn *c, void *arg, char *msg, size_t msglen)
{
    (void)s;
    struct finish_arg *p = arg;
    struct sub_state ss;
    int rc = sub_state(c, p->id, &ss, msg, msglen);
    if (rc == 0 && (ss.status != STORE_SCORED || !ss.stale)) {
        snprintf(msg, msglen, "store: submission %s is not waiting for a re-score", p->id);
        rc = STORE_ECONFLICT;
    }
    bool stale = rc == 0 && p->ok && scores_stale(p->sc, &ss);
    if (rc == 0) {
        rc = write_scores(c, p->id, p->ok ? STORE_SCORED : STORE_FAILED, p->error,
                          p->ok ? p->sc : NULL, stale, msg, msglen);
    }
    if (rc == 0 && !stale) {
        rc = bump(c, ss.challenge, p->ok ? "rescore_done" : "rescore_failed", msg, msglen);
    }
    return rc;
}

static int pg_rescore_finish(struct store *base, const char *id, bool ok, const char *error,
                             const struct store_scores *sc, char *msg, size_t msglen)
{
    if (ok && !sc) {
        snprintf(msg, msglen, "store: re-score of %s without scores", id);
        return SL_EINVAL;
    }
    struct finish_arg p = {id, error, STORE_SCORED, ok, sc};
    return tx(pg_of(base), rescore_finish_tx, &p, true, msg, msglen);
}

static const struct store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .generation = pg_generation,
    .challenge_put = pg_challenge_put,
    .reference_put = pg_reference_put,
    .challenge_get = pg_challenge_get,
    .challenge_list = pg_challenge_list,
    .participant_add = pg_participant_add,
    .participant_list = pg_participant_list,
    .participant_revoke = pg_participant_revoke,
    .token_lookup = pg_token_lookup,
    .sub_admit = pg_sub_admit,
    .sub_finish = pg_sub_finish,
    .sub_get = pg_sub_get,
    .sub_list = pg_sub_list,
    .sub_set_final = pg_sub_set_final,
    .sub_disqualify = pg_sub_disqualify,
    .ranked_subs = pg_ranked_subs,
    .sub_counts = pg_sub_counts,
    .rescore_begin = pg_rescore_begin,
    .rescore_next = pg_rescore_next,
    .rescore_finish = pg_rescore_finish,
};
