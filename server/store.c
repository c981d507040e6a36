/* store.c - store.h's functions: the backend table (which --db value opens which backend), the
 * calls handed to the open store's functions (store_impl.h), the blobs every backend keeps the
 * same way (blobs.c), and freeing what the calls filled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blobs.h"
#include "segloss.h"
#include "store_impl.h"

/* One row per database a --db URI may name; no --db is SQLite in the data directory. */
static const struct store_backend {
    const char *scheme; /* the URI's start */
    int (*open)(const struct store_options *o, struct store **out, char *msg, size_t msglen);
} backends[] = {
    {"postgresql://", store_pg_open},
    {"postgres://", store_pg_open},
};

int store_open(const struct store_options *o, struct store **out, char *msg, size_t msglen)
{
    *out = NULL;
    if (!o->db || !o->db[0]) {
        if (!o->data_dir || !o->data_dir[0]) {
            snprintf(msg, msglen, "store: neither a data directory nor a database was given");
            return SL_EINVAL;
        }
        return store_sqlite_open(o, out, msg, msglen);
    }
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (strncmp(o->db, backends[i].scheme, strlen(backends[i].scheme)) == 0) {
            return backends[i].open(o, out, msg, msglen);
        }
    }
    /* the value is not echoed: it may hold a password */
    snprintf(msg, msglen,
             "--db: not a database URI this seglossd knows; it must start with "
             "postgresql:// (or postgres://)");
    return SL_EINVAL;
}

int store_open_sqlite(const char *dir, struct store **out, char *msg, size_t msglen)
{
    struct store_options o = {.data_dir = dir};
    return store_sqlite_open(&o, out, msg, msglen);
}

void store_close(struct store *s)
{
    if (s) {
        s->ops->close(s);
    }
}

const char *store_backend_name(const struct store *s)
{
    return s->ops->name;
}

uint64_t store_generation(struct store *s)
{
    return s->ops->generation(s);
}

/* ---- blobs (no lock needed: files are written under unique names) --------------------------- */

int store_blob_put(struct store *s, const void *data, size_t len, char sha[STORE_SHA_HEX],
                   char *msg, size_t msglen)
{
    return srv_blob_put(s->blobs, data, len, sha, msg, msglen);
}

int store_blob_get(struct store *s, const char *sha, void **data, size_t *len, char *msg,
                   size_t msglen)
{
    return srv_blob_get(s->blobs, sha, data, len, msg, msglen);
}

/* ---- the backend's functions ----------------------------------------------------------------- */

int store_challenge_put(struct store *s, const char *name, const char *config,
                        const char *public_ids, bool rescore, chal_time now, bool *created,
                        int64_t *version, char *msg, size_t msglen)
{
    return s->ops->challenge_put(s, name, config, public_ids, rescore, now, created, version, msg,
                                 msglen);
}

int store_reference_put(struct store *s, const char *name, const char *ref_sha,
                        const char *manifest, const char *public_ids, bool rescore, chal_time now,
                        bool *created, char *msg, size_t msglen)
{
    return s->ops->reference_put(s, name, ref_sha, manifest, public_ids, rescore, now, created, msg,
                                 msglen);
}

int store_challenge_get(struct store *s, const char *name, struct store_challenge *out, char *msg,
                        size_t msglen)
{
    return s->ops->challenge_get(s, name, out, msg, msglen);
}

int store_challenge_list(struct store *s, struct store_challenge **out, size_t *n, char *msg,
                         size_t msglen)
{
    return s->ops->challenge_list(s, out, n, msg, msglen);
}

int store_participant_add(struct store *s, const char *challenge, const char *name,
                          const unsigned char token_hash[32], chal_time now,
                          struct store_participant *out, char *msg, size_t msglen)
{
    return s->ops->participant_add(s, challenge, name, token_hash, now, out, msg, msglen);
}

int store_participant_list(struct store *s, const char *challenge, struct store_participant **out,
                           size_t *n, char *msg, size_t msglen)
{
    return s->ops->participant_list(s, challenge, out, n, msg, msglen);
}

int store_participant_revoke(struct store *s, const char *challenge, const char *name,
                             chal_time now, char *msg, size_t msglen)
{
    return s->ops->participant_revoke(s, challenge, name, now, msg, msglen);
}

int store_token_lookup(struct store *s, const unsigned char token_hash[32],
                       struct store_participant *out, char *msg, size_t msglen)
{
    return s->ops->token_lookup(s, token_hash, out, msg, msglen);
}

int store_sub_admit(struct store *s, const char *challenge, int64_t pid, const char *note,
                    chal_time now, const struct chal_quota *q, chal_time opens_at,
                    chal_time closes_at, enum chal_verdict *verdict, struct chal_usage *usage,
                    int64_t *retry_after_s, char id[STORE_SUB_ID], char *msg, size_t msglen)
{
    return s->ops->sub_admit(s, challenge, pid, note, now, q, opens_at, closes_at, verdict, usage,
                             retry_after_s, id, msg, msglen);
}

int store_sub_finish(struct store *s, const char *id, enum store_status status, const char *error,
                     const struct store_scores *sc, char *msg, size_t msglen)
{
    return s->ops->sub_finish(s, id, status, error, sc, msg, msglen);
}

int store_sub_get(struct store *s, const char *challenge, const char *id, bool full,
                  struct store_sub *out, char *msg, size_t msglen)
{
    return s->ops->sub_get(s, challenge, id, full, out, msg, msglen);
}

int store_sub_list(struct store *s, const char *challenge, int64_t pid, bool full,
                   struct store_sub **out, size_t *n, char *msg, size_t msglen)
{
    return s->ops->sub_list(s, challenge, pid, full, out, n, msg, msglen);
}

int store_sub_set_final(struct store *s, const char *challenge, const char *id, int64_t pid,
                        bool on, int64_t max_finals, char *msg, size_t msglen)
{
    return s->ops->sub_set_final(s, challenge, id, pid, on, max_finals, msg, msglen);
}

int store_sub_disqualify(struct store *s, const char *challenge, const char *id, bool dq,
                         const char *reason, char *msg, size_t msglen)
{
    return s->ops->sub_disqualify(s, challenge, id, dq, reason, msg, msglen);
}

int store_ranked_subs(struct store *s, const char *challenge, struct store_sub **out, size_t *n,
                      char *msg, size_t msglen)
{
    return s->ops->ranked_subs(s, challenge, out, n, msg, msglen);
}

int store_sub_counts(struct store *s, struct store_count **out, size_t *n, char *msg, size_t msglen)
{
    return s->ops->sub_counts(s, out, n, msg, msglen);
}

int store_rescore_begin(struct store *s, const char *challenge, char *msg, size_t msglen)
{
    return s->ops->rescore_begin(s, challenge, msg, msglen);
}

int store_rescore_next(struct store *s, struct store_sub *out, char *msg, size_t msglen)
{
    return s->ops->rescore_next(s, out, msg, msglen);
}

int store_rescore_finish(struct store *s, const char *id, bool ok, const char *error,
                         const struct store_scores *sc, char *msg, size_t msglen)
{
    return s->ops->rescore_finish(s, id, ok, error, sc, msg, msglen);
}

/* ---- freeing what the calls filled ----------------------------------------------------------- */

/* Frees what c's members hold and zeroes it. */
void store_challenge_clear(struct store_challenge *c)
{
    if (!c) {
        return;
    }
    free(c->config);
    free(c->reference);
    free(c->public_ids);
    memset(c, 0, sizeof *c);
}

/* Clears and frees an array of n challenges (NULL is fine). */
void store_challenge_free(struct store_challenge *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        store_challenge_clear(&c[i]);
    }
    free(c);
}

/* Frees what sub's members hold and zeroes it. */
void store_sub_clear(struct store_sub *sub)
{
    if (!sub) {
        return;
    }
    free(sub->error);
    free(sub->note);
    free(sub->pub_values);
    free(sub->priv_values);
    free(sub->pub_full);
    free(sub->priv_full);
    free(sub->dq_reason);
    memset(sub, 0, sizeof *sub);
}

/* Clears and frees an array of n submissions (NULL is fine). */
void store_sub_free(struct store_sub *subs, size_t n)
{
    for (size_t i = 0; subs && i < n; i++) {
        store_sub_clear(&subs[i]);
    }
    free(subs);
}
