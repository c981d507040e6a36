/* chal_rules.c - the rules of a challenge (chal_rules.h): names, times, the split, ranking,
 * which submission stands for a participant, quotas. Pure functions; the only allocation is the
 * split's scratch array. */
#include "chal_rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

#define US_PER_S INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_S)

/* ---- names, ids and times ------------------------------------------------------------------- */

/* Whether c is one of [A-Za-z0-9._-]. */
static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Whether c is one of [a-z0-9]. */
static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9][a-z0-9-]{0,62}: 1 to 63 characters. */
bool chal_name_ok(const char *s)
{
    if (!s || !lower_alnum(s[0])) {
        return false;
    }
    size_t i = 1;
    for (; s[i]; i++) {
        if (i >= 63 || !(lower_alnum(s[i]) || s[i] == '-')) {
            return false;
        }
    }
    return true;
}

/* [A-Za-z0-9._-]{1,128} over exactly len bytes (a NUL inside fails). */
bool chal_image_id_ok(const char *s, size_t len)
{
    if (!s || len < 1 || len > 128) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!id_char(s[i])) {
            return false;
        }
    }
    return true;
}

/* [A-Za-z0-9._-]{1,64}. */
bool chal_participant_ok(const char *s)
{
    if (!s || !s[0]) {
        return false;
    }
    size_t i = 0;
    for (; s[i]; i++) {
        if (i >= 64 || !id_char(s[i])) {
            return false;
        }
    }
    return true;
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d: Howard Hinnant's days_from_civil
 * ("chrono-Compatible Low-Level Date Algorithms"), years shifted to start in March so that the
 * leap day is the last of the year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The date of day z since 1970-01-01: Howard Hinnant's civil_from_days (the inverse above). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = era * 400 + yoe + (*m <= 2);
}

/* Whether y is a Gregorian leap year. */
static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly n decimal digits at *p into *v and advances *p; false if they are not there. */
static bool digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

/* RFC 3339 section 5.6 date-time: full-date "T" full-time, time-secfrac optional, time-offset Z
 * or +hh:mm/-hh:mm; T and Z in either case (the RFC's ABNF is case-insensitive). A leap second
 * (:60) is refused: microseconds since the epoch have none. Fraction digits past the sixth are
 * dropped (the time is truncated to the microsecond). */
int chal_time_parse(const char *s, chal_time *t)
{
    if (!s) {
        return -1;
    }
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d)) {
        return -1;
    }
    if (*p != 'T' && *p != 't') {
        return -1;
    }
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
        !digits(&p, 2, &sec)) {
        return -1;
    }
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return -1;
        }
        int64_t scale = 100000;
        for (; *p >= '0' && *p <= '9'; p++) {
            frac += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om)) {
            return -1;
        }
    } else {
        return -1;
    }
    if (*p != '\0') {
        return -1;
    }
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap_year(y))) {
        return -1;
    }
    if (h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59) {
        return -1;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    /* local time = UTC + offset, so UTC = local - offset */
    secs -= sign * (oh * 3600 + om * 60);
    if (secs < 0 || secs >= days_from_civil(10000, 1, 1) * 86400) {
        return -1;
    }
    *t = secs * US_PER_S + frac;
    return 0;
}

/* Floor division of a by b > 0 (C's / truncates toward zero). */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* YYYY-MM-DDThh:mm:ssZ of t, the fraction dropped (floored). */
void chal_time_format(chal_time t, char *buf, size_t n)
{
    int64_t secs = floor_div(t, US_PER_S);
    int64_t days = floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, n, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
}

/* The next multiple of a day after t (midnight UTC; POSIX time has 86400 s a day). */
chal_time chal_next_utc_day(chal_time t)
{
    return (floor_div(t, US_PER_DAY) + 1) * US_PER_DAY;
}

/* ---- the public/private split ---------------------------------------------------------------- */

/* ceil(f n - 1e-9), kept within [1, n]. */
size_t chal_public_count(double f, size_t n)
{
    if (n == 0) {
        return 0;
    }
    double c = ceil(f * (double)n - 1e-9);
    if (!(c >= 1)) {
        return 1;
    }
    if (c >= (double)n) {
        return n;
    }
    return (size_t)c;
}

/* One id with its sort key, for the split. */
struct split_item {
    char hex[SLP_SHA256_HEX];
    const char *id;
    size_t index;
};

/* qsort order of split items: by hex digest, then by id. */
static int split_cmp(const void *pa, const void *pb)
{
    const struct split_item *a = pa, *b = pb;
    int c = strcmp(a->hex, b->hex);
    return c ? c : strcmp(a->id, b->id);
}

/* Digests "{seed}:{id}" for every id, sorts, marks the first chal_public_count(f, n). The
 * scratch array is freed before returning. */
int chal_split_by_fraction(const char *const *ids, size_t n, double f, int64_t seed, bool *public_)
{
    if (n == 0) {
        return 0;
    }
    struct split_item *items = calloc(n, sizeof *items);
    if (!items) {
        return -1;
    }
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%lld:", (long long)seed);
    for (size_t i = 0; i < n; i++) {
        struct slp_sha256 s;
        unsigned char d[SLP_SHA256_LEN];
        slp_sha256_init(&s);
        slp_sha256_update(&s, prefix, (size_t)plen);
        slp_sha256_update(&s, ids[i], strlen(ids[i]));
        slp_sha256_final(&s, d);
        slp_hex(d, sizeof d, items[i].hex);
        items[i].id = ids[i];
        items[i].index = i;
    }
    qsort(items, n, sizeof *items, split_cmp);
    size_t k = chal_public_count(f, n);
    for (size_t i = 0; i < n; i++) {
        public_[items[i].index] = i < k;
    }
    free(items);
    return 0;
}

/* ---- ranking ------------------------------------------------------------------------------- */

/* Whether two ranking values are equal: a null equals a null, a number a number of equal value. */
static bool val_equal(double a, double b)
{
    return isnan(a) ? isnan(b) : (!isnan(b) && a == b);
}

/* Compares a and b on the ranking keys only: <0 when a is better on the first key that
 * differs, >0 when worse, 0 when equal on all. A null is worse than any number in either order. */
static int keys_cmp(const struct chal_row *a, const struct chal_row *b, const struct chal_order *o)
{
    for (int k = 0; k < o->nkeys; k++) {
        double x = a->vals[k], y = b->vals[k];
        if (val_equal(x, y)) {
            continue;
        }
        if (isnan(x)) {
            return 1;
        }
        if (isnan(y)) {
            return -1;
        }
        bool a_better = o->desc[k] ? x > y : x < y;
        return a_better ? -1 : 1;
    }
    return 0;
}

/* Compares a and b by arrival: <0 when a came first (earlier received, then lower seq). */
static int arrival_cmp(const struct chal_row *a, const struct chal_row *b)
{
    if (a->received != b->received) {
        return a->received < b->received ? -1 : 1;
    }
    if (a->seq != b->seq) {
        return a->seq < b->seq ? -1 : 1;
    }
    return 0;
}

/* The keys, then the earlier submission. */
int chal_row_cmp(const struct chal_row *a, const struct chal_row *b, const struct chal_order *o)
{
    int c = keys_cmp(a, b, o);
    return c ? c : arrival_cmp(a, b);
}

/* A total order on rows with its context (qsort has none, and globals are not allowed). */
struct row_order {
    int (*cmp)(const struct chal_row *a, const struct chal_row *b, const struct row_order *ro);
    const struct chal_order *o;
    bool keep_latest;
};

/* Swaps rows a and b. */
static void row_swap(struct chal_row *a, struct chal_row *b)
{
    struct chal_row t = *a;
    *a = *b;
    *b = t;
}

/* Moves rows[i] down the max-heap rows[0..n) to its place. */
static void sift_down(struct chal_row *rows, size_t i, size_t n, const struct row_order *ro)
{
    for (;;) {
        size_t big = i, l = 2 * i + 1, r = 2 * i + 2;
        if (l < n && ro->cmp(&rows[l], &rows[big], ro) > 0) {
            big = l;
        }
        if (r < n && ro->cmp(&rows[r], &rows[big], ro) > 0) {
            big = r;
        }
        if (big == i) {
            return;
        }
        row_swap(&rows[i], &rows[big]);
        i = big;
    }
}

/* Sorts rows[0..n) ascending under ro: heapsort, O(n log n) without allocation (the orders used
 * here are total, so stability does not matter). */
static void rows_sort(struct chal_row *rows, size_t n, const struct row_order *ro)
{
    if (n < 2) {
        return;
    }
    for (size_t i = n / 2; i-- > 0;) {
        sift_down(rows, i, n, ro);
    }
    for (size_t end = n - 1; end > 0; end--) {
        row_swap(&rows[0], &rows[end]);
        sift_down(rows, 0, end, ro);
    }
}

/* chal_row_cmp as a row_order. */
static int rank_cmp(const struct chal_row *a, const struct chal_row *b, const struct row_order *ro)
{
    return chal_row_cmp(a, b, ro->o);
}

/* Sorts, then gives each row the rank of the first row it ties with on every key. */
void chal_rank(struct chal_row *rows, size_t n, const struct chal_order *o)
{
    struct row_order ro = {rank_cmp, o, false};
    rows_sort(rows, n, &ro);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && keys_cmp(&rows[i], &rows[i - 1], o) == 0) {
            rows[i].rank = rows[i - 1].rank;
        } else {
            rows[i].rank = (int64_t)i + 1;
        }
    }
}

/* ---- which submission stands for a participant -------------------------------------------- */

/* By participant, and within one the preferred row first: the best (chal_row_cmp), or the latest
 * (later received, then higher seq). */
static int keep_cmp(const struct chal_row *a, const struct chal_row *b, const struct row_order *ro)
{
    if (a->participant != b->participant) {
        return a->participant < b->participant ? -1 : 1;
    }
    return ro->keep_latest ? -arrival_cmp(a, b) : chal_row_cmp(a, b, ro->o);
}

/* Sorts by participant with the preferred row first, then swaps the first row of each
 * participant to the front. */
size_t chal_keep_per_participant(struct chal_row *rows, size_t n, const struct chal_order *o,
                                 bool keep_latest)
{
    struct row_order ro = {keep_cmp, o, keep_latest};
    rows_sort(rows, n, &ro);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m == 0 || rows[i].participant != rows[m - 1].participant) {
            row_swap(&rows[m], &rows[i]);
            m++;
        }
    }
    return m;
}

/* Candidates: the selected finals, else the final_selections best by the public ranking (a
 * submission is one of those when fewer than final_selections rank before it; O(n^2), n being
 * one participant's submissions). The best candidate by the private ranking wins. */
long chal_private_choice(const struct chal_row *pub, const struct chal_row *priv,
                         const bool *final_, size_t n, int final_selections,
                         const struct chal_order *pub_order, const struct chal_order *priv_order)
{
    bool any_final = false;
    for (size_t i = 0; i < n; i++) {
        any_final = any_final || final_[i];
    }
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        bool candidate;
        if (any_final) {
            candidate = final_[i];
        } else {
            size_t before = 0;
            for (size_t j = 0; j < n; j++) {
                before += j != i && chal_row_cmp(&pub[j], &pub[i], pub_order) < 0;
            }
            candidate = final_selections > 0 && before < (size_t)final_selections;
        }
        if (candidate && (best < 0 || chal_row_cmp(&priv[i], &priv[best], priv_order) < 0)) {
            best = (long)i;
        }
    }
    return best;
}

/* ---- quotas and the window ------------------------------------------------------------------ */

/* Seconds from now until then, rounded up, at least 1. */
static int64_t retry_seconds(chal_time now, chal_time then)
{
    if (then <= now) {
        return 1;
    }
    int64_t s = (then - now + US_PER_S - 1) / US_PER_S;
    return s < 1 ? 1 : s;
}

/* The window, then the total, then the day's slots (pending ones of the day hold theirs), then
 * concurrency; see chal_rules.h for Retry-After. Pending submissions hold a slot of the total
 * too, so that k slots left and n > k submissions at once admit exactly k. */
enum chal_verdict chal_admit(const struct chal_quota *q, const struct chal_usage *u, chal_time now,
                             chal_time opens_at, chal_time closes_at, int64_t *retry_after_s)
{
    *retry_after_s = 0;
    if (now < opens_at) {
        return CHAL_NOT_OPEN;
    }
    if (now > closes_at) {
        return CHAL_CLOSED;
    }
    if (q->total >= 0 && u->scored_total + u->pending >= q->total) {
        *retry_after_s = closes_at != INT64_MAX ? retry_seconds(now, closes_at) : 86400;
        return CHAL_OVER_TOTAL;
    }
    if (q->per_day >= 0 && u->scored_today + u->pending_today >= q->per_day) {
        *retry_after_s = retry_seconds(now, chal_next_utc_day(now));
        return CHAL_OVER_DAY;
    }
    if (q->concurrent >= 0 && u->pending >= q->concurrent) {
        *retry_after_s = CHAL_CONCURRENT_RETRY_S;
        return CHAL_OVER_CONCURRENT;
    }
    return CHAL_ADMIT;
}

/* used_today and used_total count scored submissions; remaining_today also leaves out the day's
 * pending ones (they hold slots), never below 0. */
void chal_quota_view(const struct chal_quota *q, const struct chal_usage *u, chal_time now,
                     struct chal_quota_view *v)
{
    v->used_today = u->scored_today;
    v->per_day = q->per_day >= 0 ? q->per_day : -1;
    if (q->per_day >= 0) {
        int64_t left = q->per_day - u->scored_today - u->pending_today;
        v->remaining_today = left > 0 ? left : 0;
    } else {
        v->remaining_today = -1;
    }
    v->resets_at = chal_next_utc_day(now);
    v->used_total = u->scored_total;
    v->total = q->total >= 0 ? q->total : -1;
}

/* The refusal's sentence into buf (always NUL-terminated when n > 0; "" for CHAL_ADMIT). */
void chal_verdict_detail(enum chal_verdict v, const struct chal_quota *q,
                         const struct chal_usage *u, chal_time now, chal_time opens_at,
                         chal_time closes_at, char *buf, size_t n)
{
    char when[32];
    if (n == 0) {
        return;
    }
    buf[0] = '\0';
    switch (v) {
    case CHAL_ADMIT:
        break;
    case CHAL_OVER_DAY:
        chal_time_format(chal_next_utc_day(now), when, sizeof when);
        if (u->pending_today > 0) {
            snprintf(buf, n,
                     "quota: %lld of %lld submissions today and %lld being scored; the count "
                     "resets at %s",
                     (long long)u->scored_today, (long long)q->per_day, (long long)u->pending_today,
                     when);
        } else {
            snprintf(buf, n, "quota: %lld of %lld submissions today; the count resets at %s",
                     (long long)u->scored_today, (long long)q->per_day, when);
        }
        break;
    case CHAL_OVER_TOTAL:
        if (u->pending > 0) {
            snprintf(buf, n,
                     "quota: %lld of %lld submissions in total and %lld being scored; no more "
                     "are allowed",
                     (long long)u->scored_total, (long long)q->total, (long long)u->pending);
        } else {
            snprintf(buf, n, "quota: %lld of %lld submissions in total; no more are allowed",
                     (long long)u->scored_total, (long long)q->total);
        }
        break;
    case CHAL_OVER_CONCURRENT:
        snprintf(buf, n, "quota: %lld %s being scored and %lld may be at once; retry in %d s",
                 (long long)u->pending, u->pending == 1 ? "submission is" : "submissions are",
                 (long long)q->concurrent, CHAL_CONCURRENT_RETRY_S);
        break;
    case CHAL_NOT_OPEN:
        chal_time_format(opens_at, when, sizeof when);
        snprintf(buf, n, "the challenge opens at %s", when);
        break;
    case CHAL_CLOSED:
        chal_time_format(closes_at, when, sizeof when);
        snprintf(buf, n, "the challenge closed at %s", when);
        break;
    }
}
