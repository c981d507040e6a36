/* store.h - the challenges' state (CHALLENGES.md) behind one small interface: the only code that
 * touches the database and the blob directory. One file per backend, each a row of store.c's
 * table and a table of functions (store_impl.h): store_sqlite.c (SQLite in --data-dir, the
 * default) and store_pg.c (PostgreSQL, shared by replicas); blobs.c holds the content-addressed
 * files both use.
 *
 * Errors: every function returns 0 or a negative code: STORE_ENOTFOUND, STORE_ECONFLICT, or an
 * SL_E* code of lib/segloss.h (SL_ENOMEM, SL_EBUSY when the database stays locked past the busy
 * timeout, SL_EINTERNAL for an I/O or SQL error), with a message in msg (msglen bytes, always
 * terminated) meant for the log, never for a participant: it may name paths but never a token.
 * Ownership: strings passed in are borrowed; what a call fills (struct store_* with char *
 * members, arrays of them) is the caller's, freed with the matching _clear/_free.
 * Threads: a store may be used by every thread at once (the backend serialises what must be).
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chal_rules.h"

#define STORE_ENOTFOUND (-100)
#define STORE_ECONFLICT (-101)

/* The schema version this binary writes (PRAGMA user_version); a newer database is refused. */
#define STORE_SCHEMA_VERSION 1

#define STORE_NAME_MAX 64 /* challenge and participant names, with the NUL */
#define STORE_SHA_HEX 65  /* 64 hex digits and the NUL */
#define STORE_SUB_ID 17   /* a submission id: 16 lowercase hex digits and the NUL */

struct store;

/* A replica's lease on PostgreSQL when none is given: the seconds after its last renewal at
 * which its submissions still `scoring` are failed ("interrupted") and its re-score taken over. */
#define STORE_LEASE_DEFAULT_S 20
#define STORE_LEASE_MIN_S 2
#define STORE_LEASE_MAX_S 3600

/* Where the state is (strings borrowed for the call). */
struct store_options {
    const char *data_dir;      /* SQLite: DIR/segloss.db (when db is NULL or "") */
    const char *db;            /* "postgresql://..." (or "postgres://..."): PostgreSQL; never
                                * holding a password (refused) */
    const char *password_file; /* PostgreSQL: the password is this file's first line (NULL or
                                * "": libpq's environment, PGPASSWORD, PGPASSFILE, ...) */
    const char *blob_dir;      /* the blobs (NULL or "": DIR/blobs; required with db) */
    int lease_s;               /* PostgreSQL: the lease (0: STORE_LEASE_DEFAULT_S) */
};

/* Opens the store o names: PostgreSQL when o->db is a postgresql:// URI (store_pg.c: the
 * schema migrated once under an advisory lock however many replicas open it at once; this
 * process becomes a replica holding a lease it renews in a thread of its own), else SQLite in
 * o->data_dir (store_open_sqlite). Messages never hold a password. Returns 0 with a new *out
 * (store_close), or SL_EINVAL (bad options), SL_EUNSUPPORTED (a newer schema), SL_EINTERNAL. */
int store_open(const struct store_options *o, struct store **out, char *msg, size_t msglen);
/* "sqlite" or "postgresql". */
const char *store_backend_name(const struct store *s);

/* Opens (creating when absent) the SQLite store in dir: dir/segloss.db (WAL, synchronous FULL,
 * a busy timeout, migrations up to STORE_SCHEMA_VERSION; a database of a newer version is
 * refused, SL_EUNSUPPORTED, with a message naming both versions) and dir/blobs/. At open,
 * submissions left `scoring` by a process that died are marked `failed` with error "interrupted",
 * and files under blobs/ that no row names (and temporary files) are removed. Returns 0 with a new
 * *out (store_close). */
int store_open_sqlite(const char *dir, struct store **out, char *msg, size_t msglen);
/* Closes s and frees it. NULL is fine. */
void store_close(struct store *s);
/* A number that changes whenever a write commits that may change what store_ranked_subs or a
 * challenge's configuration reads (every write but an admission and a new participant): a
 * leaderboard made under one generation is still true while it stays the same. SQLite counts
 * this process's writes; PostgreSQL every replica's (a counter row written in the same
 * transactions), read from the database at each call. */
uint64_t store_generation(struct store *s);

/* ---- blobs: content-addressed by SHA-256 ---------------------------------------------------- */

/* Writes data[0..len) as the blob named by its SHA-256 (hex into sha): to a temporary name,
 * fsynced, renamed, the directory fsynced; an existing blob is kept as it is. */
int store_blob_put(struct store *s, const void *data, size_t len, char sha[STORE_SHA_HEX],
                   char *msg, size_t msglen);
/* Reads the blob sha into a new buffer *data (malloc'd, caller frees) of *len bytes;
 * STORE_ENOTFOUND when there is none. */
int store_blob_get(struct store *s, const char *sha, void **data, size_t *len, char *msg,
                   size_t msglen);

/* ---- challenges ------------------------------------------------------------------------------ */

struct store_challenge {
    char name[STORE_NAME_MAX];
    char *config;    /* the configuration JSON as stored (normalised by the caller) */
    int64_t version; /* 1 when created, +1 at every replacement */
    char *reference; /* the reference manifest JSON (ids, shapes, dtypes), NULL when none */
    char ref_sha[STORE_SHA_HEX]; /* the reference version ("" when none); also its blob */
    char *public_ids; /* JSON list of the public ids under the current split, NULL when none */
    chal_time created_at, updated_at;
    int64_t rescore_done, rescore_failed, rescore_total; /* the latest re-score, 0 if none */
    bool rescore_running;
    int64_t participants, submissions; /* counts: participants not revoked, all submissions */
};

/* Creates (*created true) or replaces the configuration of challenge name; version becomes 1 or
 * +1 (into *version). public_ids: the split's public ids when a reference exists (else NULL).
 * rescore: start a re-score (store_rescore_begin) in the same transaction. */
int store_challenge_put(struct store *s, const char *name, const char *config,
                        const char *public_ids, bool rescore, chal_time now, bool *created,
                        int64_t *version, char *msg, size_t msglen);
/* Sets the reference of challenge name: its sha (blob already stored), manifest and public ids;
 * *created false when it replaced one. rescore as above. STORE_ENOTFOUND: no such challenge. */
int store_reference_put(struct store *s, const char *name, const char *ref_sha,
                        const char *manifest, const char *public_ids, bool rescore, chal_time now,
                        bool *created, char *msg, size_t msglen);
/* Fills *out with challenge name (clear with store_challenge_clear); STORE_ENOTFOUND. */
int store_challenge_get(struct store *s, const char *name, struct store_challenge *out, char *msg,
                        size_t msglen);
/* Every challenge, by name, into a new array *out of *n (free with store_challenge_free). */
int store_challenge_list(struct store *s, struct store_challenge **out, size_t *n, char *msg,
                         size_t msglen);
void store_challenge_clear(struct store_challenge *c);
void store_challenge_free(struct store_challenge *c, size_t n);

/* ---- participants ---------------------------------------------------------------------------- */

struct store_participant {
    int64_t id;
    char name[STORE_NAME_MAX];
    char challenge[STORE_NAME_MAX];
    chal_time created_at;
    bool revoked;
    int64_t submissions, scored; /* all of its submissions; the scored ones */
};

/* Adds participant name to challenge with the SHA-256 of its token (the token itself is never
 * stored). STORE_ECONFLICT: the name is taken in that challenge (revoked names stay taken), or
 * another participant has the same token hash; STORE_ENOTFOUND: no such challenge. out may be
 * NULL. */
int store_participant_add(struct store *s, const char *challenge, const char *name,
                          const unsigned char token_hash[32], chal_time now,
                          struct store_participant *out, char *msg, size_t msglen);
/* The participants of challenge by name (array *out of *n, free()); an unknown challenge has
 * none. */
int store_participant_list(struct store *s, const char *challenge, struct store_participant **out,
                           size_t *n, char *msg, size_t msglen);
/* Revokes participant name of challenge: its token stops working, its rows leave the
 * leaderboards (the rows are kept). STORE_ENOTFOUND when there is none (or already revoked). */
int store_participant_revoke(struct store *s, const char *challenge, const char *name,
                             chal_time now, char *msg, size_t msglen);
/* The participant whose token has SHA-256 token_hash (revoked ones too: out->revoked says);
 * STORE_ENOTFOUND when none. */
int store_token_lookup(struct store *s, const unsigned char token_hash[32],
                       struct store_participant *out, char *msg, size_t msglen);

/* ---- submissions ----------------------------------------------------------------------------- */

enum store_status { STORE_SCORING, STORE_SCORED, STORE_FAILED };

struct store_sub {
    int64_t seq; /* row order: breaks ties between equal received_at */
    char id[STORE_SUB_ID];
    char challenge[STORE_NAME_MAX];
    int64_t participant;
    char participant_name[STORE_NAME_MAX];
    chal_time received_at;
    enum store_status status;
    char *error;                  /* failed: why (NULL otherwise) */
    char *note;                   /* "" when none */
    char body_sha[STORE_SHA_HEX]; /* the prediction bundle's blob ("" while scoring) */
    int64_t bytes;
    /* the values of every value key of each split: a JSON object {key: number or null}; NULL
     * until scored (or when the split has no image) */
    char *pub_values, *priv_values;
    /* the whole answers with per-image values (only filled when asked: full) */
    char *pub_full, *priv_full;
    int64_t config_version;
    char ref_sha[STORE_SHA_HEX];
    char server_version[32];
    bool stale; /* scored under an older configuration or reference, re-score pending */
    bool final_;
    bool disqualified;
    char *dq_reason;
};

/* Admits a submission of participant pid to challenge at now, atomically with every other
 * admission (quotas exact under concurrency; across replicas on PostgreSQL, where the
 * participant's row is locked for the transaction and its rows left `scoring` by a replica whose
 * lease expired are failed ("interrupted") first, so they hold no slot): reads the
 * participant's usage, asks chal_admit, and when admitted inserts a `scoring` row with a new
 * random id (into id) and note. *verdict and *usage (before this submission) are always set;
 * id is "" unless admitted. STORE_ENOTFOUND: pid is not an unrevoked participant of challenge. */
int store_sub_admit(struct store *s, const char *challenge, int64_t pid, const char *note,
                    chal_time now, const struct chal_quota *q, chal_time opens_at,
                    chal_time closes_at, enum chal_verdict *verdict, struct chal_usage *usage,
                    int64_t *retry_after_s, char id[STORE_SUB_ID], char *msg, size_t msglen);

/* What scoring a submission produced. */
struct store_scores {
    const char *body_sha; /* the prediction bundle's blob ("" when the body was not stored) */
    int64_t bytes;
    const char *pub_values, *priv_values, *pub_full, *priv_full; /* NULL: none */
    int64_t config_version;
    const char *ref_sha;
    const char *server_version;
    const char *note; /* the submission's note (NULL: leave it as admitted) */
};

/* Ends submission id: scored with sc, or failed with error (sc may then be NULL or carry the
 * body). Committed with synchronous FULL before it returns (the 201 is sent after). A scored
 * row whose config_version or ref_sha is no longer the challenge's (changed while it was being
 * scored) is stored stale and added to the re-score's total. STORE_ENOTFOUND: no such id;
 * STORE_ECONFLICT: the row is not `scoring` (finished already, or marked interrupted at open);
 * SL_EINVAL: status STORE_SCORING, or STORE_SCORED without sc. */
int store_sub_finish(struct store *s, const char *id, enum store_status status, const char *error,
                     const struct store_scores *sc, char *msg, size_t msglen);
/* Submission id of challenge into *out (store_sub_clear); full: with pub_full and priv_full.
 * STORE_ENOTFOUND. */
int store_sub_get(struct store *s, const char *challenge, const char *id, bool full,
                  struct store_sub *out, char *msg, size_t msglen);
/* The submissions of challenge, newest first: of participant pid, or all when pid < 0 (array
 * *out of *n, free with store_sub_free). */
int store_sub_list(struct store *s, const char *challenge, int64_t pid, bool full,
                   struct store_sub **out, size_t *n, char *msg, size_t msglen);
void store_sub_clear(struct store_sub *sub);
void store_sub_free(struct store_sub *subs, size_t n);

/* Selects (on) or unselects submission id of participant pid as a final. Only scored
 * submissions may be selected (SL_EINVAL otherwise); STORE_ECONFLICT when pid already has
 * max_finals selected; STORE_ENOTFOUND when id is not pid's. Selecting a selected one (or
 * unselecting an unselected one) changes nothing and returns 0. */
int store_sub_set_final(struct store *s, const char *challenge, const char *id, int64_t pid,
                        bool on, int64_t max_finals, char *msg, size_t msglen);
/* Sets (or clears) the disqualification of submission id with reason (may be NULL; cleared with
 * dq false). STORE_ENOTFOUND: no such submission in challenge. */
int store_sub_disqualify(struct store *s, const char *challenge, const char *id, bool dq,
                         const char *reason, char *msg, size_t msglen);

/* The scored submissions of challenge that may rank: not disqualified, of participants not
 * revoked (array *out of *n), oldest first (received_at, then seq). Only what a ranking reads is
 * filled (ids, participant, time, note, values, stale, final); the audit fields (error,
 * body_sha, config_version, ref_sha, server_version, dq_reason) and the full answers are not. */
int store_ranked_subs(struct store *s, const char *challenge, struct store_sub **out, size_t *n,
                      char *msg, size_t msglen);

/* Submissions by challenge and status (for /metrics). */
struct store_count {
    char challenge[STORE_NAME_MAX];
    enum store_status status;
    int64_t n;
};
/* Every (challenge, status) with its count of submissions, by challenge then status (array
 * *out of *n, free()). */
int store_sub_counts(struct store *s, struct store_count **out, size_t *n, char *msg,
                     size_t msglen);

/* ---- re-scoring ------------------------------------------------------------------------------ */

/* Marks every scored submission of challenge stale and sets the progress to {0, 0, count}. */
int store_rescore_begin(struct store *s, const char *challenge, char *msg, size_t msglen);
/* The oldest stale scored submission of any challenge into *out (store_sub_clear), or
 * STORE_ENOTFOUND when none is left (the challenges' re-scores are then not running). On
 * PostgreSQL only the replica holding the cluster's re-score job (a claimed row, held while the
 * replica's lease lives, released when nothing is left) gets rows; the others get
 * STORE_ENOTFOUND, and take the job over once its holder's lease has expired. */
int store_rescore_next(struct store *s, struct store_sub *out, char *msg, size_t msglen);
/* Stores a re-score of submission id: scored with sc (stale cleared), or failed with error;
 * adds 1 to its challenge's done or failed. Scores made under a configuration version or
 * reference that is no longer the challenge's (changed during the re-score) are stored but the
 * row stays stale and nothing is counted: the next store_rescore_next returns it again.
 * STORE_ENOTFOUND: no such id; STORE_ECONFLICT: the row is not a stale scored one; SL_EINVAL: ok
 * without sc. */
int store_rescore_finish(struct store *s, const char *id, bool ok, const char *error,
                         const struct store_scores *sc, char *msg, size_t msglen);

#endif /* STORE_H */
