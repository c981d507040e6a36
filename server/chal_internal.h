/* chal_internal.h - what the challenge files of seglossd share (CHALLENGES.md): chal_http.c (the
 * routes' handlers and authentication), chal_score.c (references loaded once per version, a
 * submission scored on both splits) and chal_rescore.c (the background re-score). The rules are
 * chal_rules.c's, the state store.h's, the wire forms proto/challenge.h's.
 */
#ifndef CHAL_INTERNAL_H
#define CHAL_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "chal_rules.h"
#include "challenge.h"
#include "srv_internal.h"
#include "store.h"

/* Who sent a request (req->auth.who). */
enum chal_who { WHO_ANON = 0, WHO_PARTICIPANT = 1, WHO_ADMIN = 2 };

struct chal_ref;

/* The challenges' part of a server (srv->chal). */
struct chal_server {
    struct store *store;
    unsigned char admin_hash[32]; /* SHA-256 of the admin token */
    pthread_mutex_t mu;           /* the reference cache, the re-score thread's flags */
    struct chal_ref *refs;        /* mu: loaded references, newest first */
    int nrefs;
    pthread_t rescorer;
    bool rescorer_started;
    pthread_cond_t wake; /* mu: a re-score was started, or stop */
    bool stop;           /* mu */
    bool kick;           /* mu: look for stale submissions again */
    /* submissions answered since start, by final status (for /metrics; mu) */
    uint64_t answered[3];
};

/* Opens the store in cfg's data dir and the admin token, starts the re-score thread; without a
 * data dir leaves srv->chal NULL. Returns 0, or -1 with a message in err. */
int chal_server_open(struct srv_server *srv, char *err, size_t errlen);
/* Stops the re-score thread, closes the store, frees srv->chal. */
void chal_server_close(struct srv_server *srv);

/* ---- chal_score.c ---------------------------------------------------------------------------- */

/* What scoring a submission gives: per split (0 public, 1 private) the whole answer (with
 * per-image values and the ids) and the values object {key: number or null}, each a new JSON
 * string, NULL when the split has no image. */
struct chal_scored {
    char *full[2];
    char *values[2];
};
void chal_scored_clear(struct chal_scored *s);

/* Takes a reference of challenge c (its stored row) from the cache, loading its bundle from
 * the store once per version and split. Returns 0 with *out (chal_ref_put), or an SL_E* /
 * STORE_* code with msg. */
int chal_ref_get(struct chal_server *cs, const struct store_challenge *c,
                 const struct slc_config *cfg, const struct slp_limits *lim, struct chal_ref **out,
                 char *msg, size_t msglen);
/* Gives back a reference taken with chal_ref_get. */
void chal_ref_put(struct chal_server *cs, struct chal_ref *ref);
/* Frees every cached reference (at close). */
void chal_ref_cache_free(struct chal_server *cs);

/* Checks images against the spec's mode as a reference (labels 0/1 in binary and multilabel,
 * non-negative integers in multiclass; ignore_index allowed), naming the id. Returns 0 or
 * SL_EINVAL / SL_ERANGE with msg. */
int chal_check_reference(const struct slc_config *cfg, const struct slc_images *imgs, char *msg,
                         size_t msglen);

/* Scores prediction images pred against ref under cfg on the pool (NULL: serially). Errors
 * name the participant's ids and shapes, never the reference's values: SL_EINVAL (ids not
 * exactly the reference's, shapes, dtypes) or the lib's code. Returns 0 with *out filled. */
int chal_score(const struct slc_config *cfg, const struct chal_ref *ref,
               const struct slc_images *pred, const struct slp_limits *lim, struct sl_pool *pool,
               struct chal_scored *out, char *msg, size_t msglen);

/* The public ids of images ids (n, sorted) under cfg's split as a new JSON list, or NULL when out
 * of memory; an id of split.public_ids that is not among ids is SL_EINVAL (msg) via *rc. */
json_t *chal_public_ids(const struct slc_config *cfg, const char *const *ids, size_t n, int *rc,
                        char *msg, size_t msglen);

/* ---- chal_rescore.c ------------------------------------------------------------------------ */

/* Starts the re-score thread (one, at most one submission at a time, behind scoring traffic). */
int chal_rescore_start(struct srv_server *srv);
/* Wakes it: stale submissions may wait. */
void chal_rescore_kick(struct chal_server *cs);
/* Stops and joins it. */
void chal_rescore_stop(struct chal_server *cs);

/* Scores stored submission sub (its bundle from the store) against challenge c's current
 * configuration and reference; the body of both a re-score and nothing else. Returns 0 with
 * *out, or a code with msg (the submission no longer validates). */
int chal_score_stored(struct srv_server *srv, const struct store_challenge *c,
                      const struct slc_config *cfg, const struct store_sub *sub,
                      struct sl_pool *pool, struct chal_scored *out, char *msg, size_t msglen);

#endif /* CHAL_INTERNAL_H */
