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
struct chal_history;

/* Leaderboards (and their pages) kept as rendered, with the store generation they were read
 * under. */
#define CHAL_BOARD_CACHE 32
enum chal_form { CHAL_FORM_JSON, CHAL_FORM_CSV, CHAL_FORM_PAGE, CHAL_FORM_HISTORY };
struct chal_board {
    char challenge[STORE_NAME_MAX];
    int split;
    enum chal_form form;
    uint64_t gen;
    uint64_t tag; /* a page: what else it depends on (chal_page.c); 0 for the others */
    char *text;   /* NULL: an empty slot */
    size_t len;
};

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
    struct chal_board boards[CHAL_BOARD_CACHE]; /* mu */
    int next_board;                             /* mu: the slot replaced next */
};

/* Opens the store in cfg's data dir and the admin token, starts the re-score thread; without a
 * data dir leaves srv->chal NULL. Returns 0, or -1 with a message in err. */
int chal_server_open(struct srv_server *srv, char *err, size_t errlen);
/* Stops the re-score thread, closes the store, frees srv->chal. */
void chal_server_close(struct srv_server *srv);

/* ---- chal_http.c: answers and the challenge ---------------------------------------------------
 */

#define WWW_AUTH "WWW-Authenticate"
#define WWW_AUTH_VALUE "Bearer realm=\"segloss\""

/* Now, in microseconds since the epoch. */
chal_time chal_now(void);
/* A new JSON string of time t (RFC 3339, Z), or null for none (INT64_MIN, INT64_MAX). */
json_t *chal_time_json(chal_time t);
/* Fills resp with j (stolen) as an application/json answer of status. */
void chal_resp_json(struct slp_response *resp, int status, json_t *j);
/* Fills resp with a problem+json answer of status and a printf-style detail. */
void chal_resp_problem(struct slp_response *resp, int status, const char *fmt, ...)
    SRV_PRINTF(3, 4);
/* Queues a JSON answer (j stolen) on the I/O thread. */
enum MHD_Result chal_reply_json(struct srv_req *req, int status, json_t *j);
/* Queues a problem answer on the I/O thread; a 401 carries WWW-Authenticate. */
enum MHD_Result chal_reply_problem(struct srv_req *req, int status, const char *fmt, ...)
    SRV_PRINTF(3, 4);
/* Logs a store failure (store messages never hold a token). */
void chal_log_store(const char *what, const char *msg);
/* A query argument of req, or NULL (borrowed from MHD). */
const char *chal_query(struct srv_req *req, const char *key);
/* Loads challenge name and its configuration (clear c with store_challenge_clear, free *cfg).
 * Returns 0, or an HTTP status with the detail in buf (404: no such challenge). */
int chal_load(struct chal_server *cs, const char *name, const struct slp_limits *lim,
              struct store_challenge *c, struct slc_config **cfg, char *buf, size_t n);
/* The keys' list [{"key", "order", "ranking"}] of n keys of cfg: a new array. */
json_t *chal_keys_json(const struct slc_key *k, int n, const struct slc_config *cfg);
/* The description of challenge c (GET /v1/challenges/{c}; admin: with the split, the public
 * ids and the reference's sha256): a new object, NULL when out of memory. */
json_t *chal_describe(const struct store_challenge *c, const struct slc_config *cfg, bool admin);
/* {"challenges": [description...]} of every challenge whose configuration loads under lim (GET
 * /v1/challenges): a new object, or NULL when the store failed (logged) or out of memory. */
json_t *chal_list_json(struct chal_server *cs, const struct slp_limits *lim, bool admin);
/* The most bytes the bundle of imgs takes: the cap of the buffer it is written into. */
size_t chal_bundle_cap(const struct slc_images *imgs);
/* Orders images by id (qsort), the bundle's order. */
int chal_cmp_image(const void *a, const void *b);

/* ---- chal_auth.c: who is asking ------------------------------------------------------------ */

/* What a route needs. */
enum need { NEED_ANYONE, NEED_PARTICIPANT, NEED_ADMIN, NEED_PARTICIPANT_OR_ADMIN };
/* For a route without a body: checks that challenges are on, who is asking (req->auth) and the
 * challenge name of the path (has_challenge); answers and returns true when refused. */
bool chal_gate_reply(struct srv_req *req, bool has_challenge, enum need need, enum MHD_Result *ret);

/* chal_gate_reply for a route of challenge params[0], then the challenge and its configuration
 * loaded (clear c with store_challenge_clear, free *cfg); answers and returns true when refused
 * or when there is no such challenge. */
bool chal_begin(struct srv_req *req, enum need need, struct store_challenge *c,
                struct slc_config **cfg, enum MHD_Result *ret);

/* ---- chal_board.c: leaderboards ------------------------------------------------------------ */

/* Renders the public leaderboard of challenge c as JSON and keeps it under the store's current
 * generation: called after a write that changes the standings, so that the write pays for the
 * ranking and readers find it ready. A failure is logged only (the next reader renders it).
 * Returns the public rank a submission with values (not NULL) of participant pid holds there
 * (1 + the other participants' rows better on the ranking keys), else -1. */
int64_t chal_board_refresh(struct chal_server *cs, const struct store_challenge *c,
                           const struct slc_config *cfg, const char *values, int64_t pid);
/* chal_board_refresh of challenge name (loaded from the store). */
void chal_board_refresh_name(struct chal_server *cs, const char *name,
                             const struct slp_limits *lim);
/* The scores object {column: value or null} of a values text: a new object. */
json_t *chal_scores_json(const char *values, const struct slc_config *cfg);
/* The leaderboard document of split s of challenge c: the JSON GET .../leaderboard answers, read
 * from the same cache (a new object), or NULL when the store or memory failed (logged). The
 * caller checks who may see the private split. */
json_t *chal_board_doc(struct chal_server *cs, const struct store_challenge *c,
                       const struct slc_config *cfg, int s);
/* A copy of the page of challenge kept under store generation gen and tag (a new string of *len
 * bytes), or NULL when there is none. */
char *chal_page_cached(struct chal_server *cs, const char *challenge, uint64_t gen, uint64_t tag,
                       size_t *len);
/* Keeps a copy of the page text (len bytes) of challenge made under generation gen and tag. */
void chal_page_cache_put(struct chal_server *cs, const char *challenge, uint64_t gen, uint64_t tag,
                         const char *text, size_t len);
/* The chart's history of challenge c (chal_history_build over the public leaderboard), kept
 * with the leaderboard: made when a write renders the leaderboard (chal_board_refresh), else
 * here from the store. Returns 0 with h filled (chal_history_clear), or a code (logged). */
int chal_board_history(struct chal_server *cs, const struct store_challenge *c,
                       const struct slc_config *cfg, struct chal_history *h);
/* The value of key in a values text ({key: number or null}; NULL text: none), NaN when null or
 * absent. */
double chal_value_of(const char *values, const struct slc_key *key);
/* Appends a CSV cell (quoted when needed; a comma first unless first) to d. */
void chal_csv_cell(struct slp_dynbuf *d, const char *s, bool first);
/* Appends ",", then the number x ("" for anything else) to d. */
void chal_csv_num(struct slp_dynbuf *d, const json_t *x);

/* ---- chal_subs.c: submissions ------------------------------------------------------------- */

/* The wire names of enum store_status. */
extern const char *const chal_status_names[3];

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
                 const struct slp_limits *lim, struct chal_ref **out, char *msg, size_t msglen);
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

/* ---- chal_page.c: the leaderboard pages (GET /challenges, GET /challenges/{c}) ------------- */

/* The chart shows the best public score of this many participants (the top of the board). */
#define CHAL_CHART_TOP 10

/* A value at a time. */
struct chal_point {
    chal_time t;
    double v;
};

/* The chart's data: per participant of the top of the public board (in rank order), its
 * best-so-far public value of the first ranking key at each submission that improved it. */
struct chal_history {
    char key[SLC_VALUE_KEY_MAX]; /* the first ranking key */
    bool desc;                   /* higher is better */
    int n;
    struct {
        char participant[STORE_NAME_MAX];
        struct chal_point *pts; /* owned, oldest first */
        size_t npts;
    } series[CHAL_CHART_TOP];
};

/* The running best of in[0..n) (oldest first) under the order desc (true: higher is better)
 * into out (room for n): one point where the best first exists and one at every strict
 * improvement; NaN values (null) are skipped. Returns how many points were written. */
size_t chal_best_so_far(const struct chal_point *in, size_t n, bool desc, struct chal_point *out);
/* Fills h from the rankable submissions subs[0..n) (store_ranked_subs: oldest first) for the
 * participants top[0..ntop) (the first CHAL_CHART_TOP rows of the public leaderboard, in rank
 * order) under cfg's first ranking key. Returns 0, or SL_ENOMEM (h then empty); clear h with
 * chal_history_clear either way. */
int chal_history_build(const struct store_sub *subs, size_t n, const char *const *top, int ntop,
                       const struct slc_config *cfg, struct chal_history *h);
/* Frees what h holds and empties it. */
void chal_history_clear(struct chal_history *h);

/* Appends the page of one challenge to b: desc the public description (chal_describe), pub and
 * priv the leaderboard documents (chal_board_doc; priv NULL until the reveal), h the chart's
 * data (NULL: no chart), now the time the page speaks of (the quota's reset, open or closed).
 * All borrowed. Returns 0 or b's error. */
int chal_page_render(struct slp_dynbuf *b, const json_t *desc, const json_t *pub,
                     const json_t *priv, const struct chal_history *h, chal_time now);
/* Appends the list page to b from list ({"challenges": [description...]}, chal_list_json;
 * borrowed). Returns 0 or b's error. */
int chal_list_render(struct slp_dynbuf *b, const json_t *list, chal_time now);

#endif /* CHAL_INTERNAL_H */
