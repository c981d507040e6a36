/* chal_rules.h - the rules of a challenge (CHALLENGES.md) in plain C: no SQL, no HTTP, no JSON.
 *
 * The public/private split, names and ids, times, ranking with ties and directions, which
 * submission stands for a participant (best or latest; the private leaderboard's finals) and the
 * quota arithmetic. The store (store.h) reads and writes the rows; the handlers (chal_http.c) call
 * these functions in between. Every function is pure: inputs borrowed, outputs in the caller's
 * memory, nothing kept.
 */
#ifndef CHAL_RULES_H
#define CHAL_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- names, ids and times ------------------------------------------------------------------- */

/* Whether s is a challenge name: [a-z0-9][a-z0-9-]{0,62}. */
bool chal_name_ok(const char *s);
/* Whether s[0..len) is an image id: [A-Za-z0-9._-]{1,128}. */
bool chal_image_id_ok(const char *s, size_t len);
/* Whether s is a participant name: [A-Za-z0-9._-]{1,64} (CHALLENGES.md is silent; the same
 * alphabet as image ids, so a name is safe in a path, a CSV cell and a log line). */
bool chal_participant_ok(const char *s);

/* Microseconds since 1970-01-01T00:00:00Z (the store's and the rules' unit of time). */
typedef int64_t chal_time;

/* Parses an RFC 3339 timestamp ("2027-06-30T23:59:59Z", "...59.5Z", "...59+02:00") into *t
 * (T and Z in either case; fraction digits past the microsecond dropped; a leap second :60
 * refused). Returns 0, or -1 when s is not one (or is out of the years 1970..9999 in UTC), *t
 * then untouched. */
int chal_time_parse(const char *s, chal_time *t);
/* Formats t as RFC 3339 UTC with Z and whole seconds ("2027-01-08T00:00:00Z") into buf (at least
 * 21 bytes). */
void chal_time_format(chal_time t, char *buf, size_t n);
/* The start of the UTC day after the one holding t (when a per-day quota resets). */
chal_time chal_next_utc_day(chal_time t);

/* ---- the public/private split ---------------------------------------------------------------- */

/* How many of n images are public under public_fraction f (0 < f <= 1): ceil(f n), computed so
 * that a fraction written in decimal gives the exact count (0.3 of 10 is 3, not 4: f n - 1e-9 is
 * rounded up), and at least 1 when n > 0. */
size_t chal_public_count(double f, size_t n);
/* Marks public[i] for the ids (n of them, NUL-terminated) that are public under fraction f and
 * seed: the first chal_public_count(f, n) ids when ordered by the hex SHA-256 of "{seed}:{id}"
 * (seed in decimal), ties (equal digests cannot happen) by id. Returns 0, or -1 out of memory. */
int chal_split_by_fraction(const char *const *ids, size_t n, double f, int64_t seed, bool *public_);

/* ---- ranking ------------------------------------------------------------------------------- */

/* At most this many ranking keys, and columns. */
#define CHAL_MAX_KEYS 16

/* The ranking keys' directions: desc[k] true when higher is better (order "desc"). */
struct chal_order {
    int nkeys;
    bool desc[CHAL_MAX_KEYS];
};

/* One ranked row: a scored submission's values of the ranking keys (NaN: null, undefined) and
 * what breaks the last tie: the earlier submission (received, then seq, the store's row order). */
struct chal_row {
    const double *vals; /* nkeys values, borrowed */
    chal_time received;
    int64_t seq;
    int64_t participant; /* the store's participant id */
    int64_t rank;        /* set by chal_rank */
};

/* Compares rows a and b under o: negative when a ranks before b (better on the first key that
 * differs; a number before null; then the earlier submission), positive after, 0 only for the
 * same submission. */
int chal_row_cmp(const struct chal_row *a, const struct chal_row *b, const struct chal_order *o);
/* Sorts rows[0..n) by chal_row_cmp and sets each rank: rows equal on every ranking key share
 * the rank of the first of them (1, 1, 3); a null equals a null. */
void chal_rank(struct chal_row *rows, size_t n, const struct chal_order *o);

/* ---- which submission stands for a participant -------------------------------------------- */

/* Keeps in rows[0..n) one row per participant: the best under o (keep_latest false: "best") or
 * the latest submission (keep_latest true: "latest"; latest received, then highest seq).
 * Moves the kept rows to the front in no particular order and returns how many. */
size_t chal_keep_per_participant(struct chal_row *rows, size_t n, const struct chal_order *o,
                                 bool keep_latest);

/* One participant's candidate for the private leaderboard. pub are its scored submissions under
 * the public ranking, priv the same submissions (same index) under the private ranking, final[i]
 * whether it selected submission i. The candidates are its selected finals, or when it selected
 * none its final_selections best by the public ranking; the chosen one is the best candidate by
 * the private ranking. Returns the chosen index, or -1 when n is 0 (or final_selections is 0 and
 * nothing is selected). */
long chal_private_choice(const struct chal_row *pub, const struct chal_row *priv,
                         const bool *final_, size_t n, int final_selections,
                         const struct chal_order *pub_order, const struct chal_order *priv_order);

/* ---- quotas and the window ------------------------------------------------------------------ */

/* A challenge's quota: -1 in per_day or total means none. */
struct chal_quota {
    int64_t per_day;    /* default 5 */
    int64_t total;      /* default -1 */
    int64_t concurrent; /* default 1 */
};

/* One participant's counts at the moment a submission arrives. Only `scored` submissions count;
 * pending ones (being scored now) hold a slot until they end. */
struct chal_usage {
    int64_t scored_today; /* scored submissions received on now's UTC day */
    int64_t scored_total;
    int64_t pending;       /* being scored now (any day) */
    int64_t pending_today; /* of those, received on now's UTC day */
};

enum chal_verdict {
    CHAL_ADMIT,
    CHAL_OVER_DAY,        /* 429, Retry-After until resets_at */
    CHAL_OVER_TOTAL,      /* 429: no reset; Retry-After until the window closes, else a day */
    CHAL_OVER_CONCURRENT, /* 429, short Retry-After (CHAL_CONCURRENT_RETRY_S) */
    CHAL_NOT_OPEN,        /* 403: before opens_at */
    CHAL_CLOSED,          /* 403: after closes_at */
};

#define CHAL_CONCURRENT_RETRY_S 5

/* What a submission arriving at now gets: the window first (opens_at/closes_at, INT64_MIN /
 * INT64_MAX for none; closes_at itself is still open), then the total (pending submissions
 * hold slots of it too), then the day's slots counting pending ones (a day whose remaining
 * slots are held by pending submissions is CHAL_OVER_DAY), then concurrency. *retry_after_s:
 * seconds for Retry-After (ceil, at least 1) for the 429s, 0 otherwise. */
enum chal_verdict chal_admit(const struct chal_quota *q, const struct chal_usage *u, chal_time now,
                             chal_time opens_at, chal_time closes_at, int64_t *retry_after_s);

/* The quota part of a 201 answer, after the submission counted (u already includes it):
 * used_today and used_total count scored submissions; remaining_today is per_day less the
 * scored and the pending ones of the day (they hold slots), never below 0. */
struct chal_quota_view {
    int64_t used_today, per_day, remaining_today; /* per_day and remaining_today -1: none */
    chal_time resets_at;
    int64_t used_total, total; /* total -1: none */
};
void chal_quota_view(const struct chal_quota *q, const struct chal_usage *u, chal_time now,
                     struct chal_quota_view *v);

/* The detail of a refusal, for the problem+json answer: "quota: 5 of 5 submissions today; the
 * count resets at 2027-01-08T00:00:00Z", "quota: 2 submissions are being scored and 1 may be at
 * once; retry in 5 s", "the challenge opens at ...", "the challenge closed at ...". */
void chal_verdict_detail(enum chal_verdict v, const struct chal_quota *q,
                         const struct chal_usage *u, chal_time now, chal_time opens_at,
                         chal_time closes_at, char *buf, size_t n);

#endif /* CHAL_RULES_H */
