/* store_impl.h - what a store backend gives store.c (not for callers: they use store.h). A
 * backend is one row of store.c's backend table (how a --db value names it, its open function)
 * and one table of functions (struct store_ops); its own state extends struct store, which it
 * holds as its first member. Every function has the meaning and contract of the store.h
 * function of the same name.
 */
#ifndef STORE_IMPL_H
#define STORE_IMPL_H

#include "store.h"

struct store_ops {
    const char *name; /* "sqlite", "postgresql": for messages */
    void (*close)(struct store *s);
    uint64_t (*generation)(struct store *s);
    int (*challenge_put)(struct store *s, const char *name, const char *config,
                         const char *public_ids, bool rescore, chal_time now, bool *created,
                         int64_t *version, char *msg, size_t msglen);
    int (*reference_put)(struct store *s, const char *name, const char *ref_sha,
                         const char *manifest, const char *public_ids, bool rescore, chal_time now,
                         bool *created, char *msg, size_t msglen);
    int (*challenge_get)(struct store *s, const char *name, struct store_challenge *out, char *msg,
                         size_t msglen);
    int (*challenge_list)(struct store *s, struct store_challenge **out, size_t *n, char *msg,
                          size_t msglen);
    int (*participant_add)(struct store *s, const char *challenge, const char *name,
                           const unsigned char token_hash[32], chal_time now,
                           struct store_participant *out, char *msg, size_t msglen);
    int (*participant_list)(struct store *s, const char *challenge, struct store_participant **out,
                            size_t *n, char *msg, size_t msglen);
    int (*participant_revoke)(struct store *s, const char *challenge, const char *name,
                              chal_time now, char *msg, size_t msglen);
    int (*token_lookup)(struct store *s, const unsigned char token_hash[32],
                        struct store_participant *out, char *msg, size_t msglen);
    int (*sub_admit)(struct store *s, const char *challenge, int64_t pid, const char *note,
                     chal_time now, const struct chal_quota *q, chal_time opens_at,
                     chal_time closes_at, enum chal_verdict *verdict, struct chal_usage *usage,
                     int64_t *retry_after_s, char id[STORE_SUB_ID], char *msg, size_t msglen);
    int (*sub_finish)(struct store *s, const char *id, enum store_status status, const char *error,
                      const struct store_scores *sc, char *msg, size_t msglen);
    int (*sub_get)(struct store *s, const char *challenge, const char *id, bool full,
                   struct store_sub *out, char *msg, size_t msglen);
    int (*sub_list)(struct store *s, const char *challenge, int64_t pid, bool full,
                    struct store_sub **out, size_t *n, char *msg, size_t msglen);
    int (*sub_set_final)(struct store *s, const char *challenge, const char *id, int64_t pid,
                         bool on, int64_t max_finals, char *msg, size_t msglen);
    int (*sub_disqualify)(struct store *s, const char *challenge, const char *id, bool dq,
                          const char *reason, char *msg, size_t msglen);
    int (*ranked_subs)(struct store *s, const char *challenge, struct store_sub **out, size_t *n,
                       char *msg, size_t msglen);
    int (*sub_counts)(struct store *s, struct store_count **out, size_t *n, char *msg,
                      size_t msglen);
    int (*rescore_begin)(struct store *s, const char *challenge, char *msg, size_t msglen);
    int (*rescore_next)(struct store *s, struct store_sub *out, char *msg, size_t msglen);
    int (*rescore_finish)(struct store *s, const char *id, bool ok, const char *error,
                          const struct store_scores *sc, char *msg, size_t msglen);
};

/* The part every backend shares: its functions and the blob directory (blobs.c). */
struct store {
    const struct store_ops *ops;
    char *blobs; /* owned by the backend, freed by its close */
};

/* The backends' open functions (rows of store.c's table); o as store_open's. */
int store_sqlite_open(const struct store_options *o, struct store **out, char *msg, size_t msglen);
int store_pg_open(const struct store_options *o, struct store **out, char *msg, size_t msglen);

#endif /* STORE_IMPL_H */
