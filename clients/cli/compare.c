/* compare.c - `segloss compare BASELINE.json CANDIDATE.json` and `segloss score --baseline`:
 * paired per-image differences (candidate - baseline) of two `segloss score --json` outputs of
 * the same data set, matched by image id, with a bootstrap interval, a Wilcoxon signed-rank
 * p-value, counts better/worse/equal and the images with the largest drop; and the gates on
 * them ('dice.delta.ci_low>=-0.01', 'dice.worse<=3').
 *
 * The numbers, so that anyone can reproduce them:
 * - Bootstrap (percentile method): R resamples (--resamples, default 10000). The generator is
 *   xoshiro256** (Blackman and Vigna 2018) whose four state words are the first four outputs of
 *   splitmix64 started at the seed (--seed, default 1); a fresh generator is made for each
 *   comparison (each value, each class). Resample r draws n indices in turn, each uniform on
 *   [0, n) by rejection: a 64-bit output x is drawn again while x < 2^64 mod n, then the index is
 *   x mod n (no modulo bias). Its statistic is the mean of the n drawn differences (summed in
 *   draw order). The interval is the 2.5th and 97.5th percentile of the R means, sorted, by
 *   linear interpolation (Hyndman and Fan type 7, numpy's default): q at position (R-1)q.
 * - Wilcoxon signed-rank, two-sided, as SciPy's scipy.stats.wilcoxon(d) with its defaults
 *   (zero_method="wilcox": zero differences dropped; correction=False; method "auto" as SciPy
 *   1.13 defines it): the exact null distribution of the positive rank sum when at most 50
 *   differences remain and none are zero or tied, p = 2 min(P(W+ <= w), P(W+ >= w)) (1 when w
 *   is the middle); else the normal approximation with average ranks for ties, the variance
 *   n(n+1)(2n+1)/24 - sum(t^3 - t)/48 over tie groups of size t, no continuity correction, on
 *   the nonzero differences. p is null when no nonzero difference remains.
 * - Per image a multiclass or multilabel metric has one value per class; the image's value is
 *   the mean of its defined classes (class 0 only when include_background), as the report ranks
 *   images, and each class is compared on its own too. A pair is left out (and counted) when
 *   either side is null. Direction: the score file's "better" object (higher for dice, iou and
 *   the other ratios, lower for distances, error rates and every loss). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "html.h"

#define EXIT_GATE 1
#define EXIT_ERROR 2
#define WILCOXON_EXACT_MAX 50

/* ---- the generator ---------------------------------------------------------------------------
 */

struct rng {
    uint64_t s[4];
};

/* splitmix64 (Vigna): the next output of the sequence whose state is *x. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A xoshiro256** generator whose state is the first four splitmix64 outputs from seed. */
static void rng_seed(struct rng *g, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        g->s[i] = splitmix64(&seed);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The next xoshiro256** output (Blackman and Vigna's reference algorithm). */
static uint64_t rng_next(struct rng *g)
{
    uint64_t *s = g->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* A uniform index in [0, n), n >= 1: outputs below 2^64 mod n are drawn again. */
static uint64_t rng_index(struct rng *g, uint64_t n)
{
    uint64_t floor = (0 - n) % n; /* 2^64 mod n */
    uint64_t x;
    do {
        x = rng_next(g);
    } while (x < floor);
    return x % n;
}

/* ---- the statistics ------------------------------------------------------------------------ */

struct delta_stats {
    size_t pairs, left_out, better, worse, equal;
    double mean, ci_low, ci_high, p; /* NaN: undefined (no pairs; p: no nonzero difference) */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Type-7 quantile q of the sorted s[0..n). */
static double quantile7(const double *s, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) {
        return s[n - 1];
    }
    return s[lo] + (h - (double)lo) * (s[lo + 1] - s[lo]);
}

/* The bootstrap interval of the mean of d[0..n) (see the top); 0, or -1 out of memory. */
static int bootstrap(const double *d, size_t n, int64_t resamples, uint64_t seed, double *lo,
                     double *hi)
{
    double *means = malloc(sizeof *means * (size_t)resamples);
    if (!means) {
        return -1;
    }
    struct rng g;
    rng_seed(&g, seed);
    for (int64_t r = 0; r < resamples; r++) {
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
            sum += d[rng_index(&g, n)];
        }
        means[r] = sum / (double)n;
    }
    qsort(means, (size_t)resamples, sizeof *means, cmp_double);
    *lo = quantile7(means, (size_t)resamples, 0.025);
    *hi = quantile7(means, (size_t)resamples, 0.975);
    free(means);
    return 0;
}

struct absd {
    double a; /* |d| */
    bool pos;
};

static int cmp_absd(const void *x, const void *y)
{
    return cmp_double(&((const struct absd *)x)->a, &((const struct absd *)y)->a);
}

/* The two-sided Wilcoxon signed-rank p-value of d[0..n) (see the top); NaN when no difference
 * is nonzero. *p set; 0, or -1 out of memory. */
static int wilcoxon(const double *d, size_t n, double *p)
{
    *p = NAN;
    struct absd *a = malloc(sizeof *a * (n + 1));
    if (!a) {
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] != 0) {
            a[m++] = (struct absd){fabs(d[i]), d[i] > 0};
        }
    }
    if (m == 0) {
        free(a);
        return 0;
    }
    qsort(a, m, sizeof *a, cmp_absd);
    /* average ranks (1-based) over runs of equal |d|; tie term sum(t^3 - t) */
    double wplus = 0, ties = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j + 1 < m && a[j + 1].a == a[i].a) {
            j++;
        }
        double t = (double)(j - i + 1), rank = ((double)i + (double)j) / 2 + 1;
        for (size_t k = i; k <= j; k++) {
            wplus += a[k].pos ? rank : 0;
        }
        ties += t * t * t - t;
        i = j + 1;
    }
    free(a);
    double nn = (double)m, total = nn * (nn + 1) / 2;
    if (m <= WILCOXON_EXACT_MAX && ties == 0 && m == n) {
        /* exact: the distribution of W+ over the 2^m sign patterns, as probabilities */
        size_t top = (size_t)total;
        double *pmf = calloc(top + 1, sizeof *pmf);
        if (!pmf) {
            return -1;
        }
        pmf[0] = 1;
        for (size_t k = 1; k <= m; k++) {
            size_t hi = k * (k + 1) / 2;
            for (size_t s = hi + 1; s-- > 0;) {
                double with = s >= k ? pmf[s - k] : 0;
                pmf[s] = 0.5 * pmf[s] + 0.5 * with;
            }
        }
        size_t w = (size_t)wplus;
        if (w == top / 2) {
            *p = 1; /* the middle (SciPy says 1 there) */
        } else {
            double less = 0, greater = 0;
            for (size_t s = 0; s <= top; s++) {
                if (s <= w) {
                    less += pmf[s];
                }
                if (s >= w) {
                    greater += pmf[s];
                }
            }
            double q = 2 * (less < greater ? less : greater);
            *p = q > 1 ? 1 : q;
        }
        free(pmf);
        return 0;
    }
    double mn = total / 2;
    double var = (nn * (nn + 1) * (2 * nn + 1) - ties / 2) / 24;
    double tmin = wplus < total - wplus ? wplus : total - wplus;
    double z = var > 0 ? (tmin - mn) / sqrt(var) : 0;
    *p = erfc(fabs(z) / sqrt(2.0));
    return 0;
}

/* The statistics of the pairs (bv[i], cv[i]), i < n, where both are defined (higher: higher
 * values are better) into *st; 0, or -1 out of memory. */
static int delta_of(const double *bv, const double *cv, size_t n, bool higher,
                    const struct cli_cmp_opts *o, struct delta_stats *st)
{
    memset(st, 0, sizeof *st);
    st->mean = st->ci_low = st->ci_high = st->p = NAN;
    double *d = malloc(sizeof *d * (n + 1));
    if (!d) {
        return -1;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(bv[i]) || isnan(cv[i])) {
            st->left_out++;
            continue;
        }
        double x = cv[i] - bv[i];
        d[st->pairs++] = x;
        sum += x;
        if (x == 0) {
            st->equal++;
        } else if ((x > 0) == higher) {
            st->better++;
        } else {
            st->worse++;
        }
    }
    int rc = 0;
    if (st->pairs > 0) {
        st->mean = sum / (double)st->pairs;
        rc = bootstrap(d, st->pairs, o->resamples, o->seed, &st->ci_low, &st->ci_high);
        if (!rc) {
            rc = wilcoxon(d, st->pairs, &st->p);
        }
    }
    free(d);
    return rc;
}

/* A JSON number, or null for NaN (new). */
static json_t *num(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

/* The JSON object of st (new). */
static json_t *stats_json(const struct delta_stats *st)
{
    return json_pack("{s:I, s:I, s:{s:o, s:o, s:o, s:o}, s:I, s:I, s:I}", "pairs",
                     (json_int_t)st->pairs, "left_out", (json_int_t)st->left_out, "delta", "mean",
                     num(st->mean), "ci_low", num(st->ci_low), "ci_high", num(st->ci_high), "p",
                     num(st->p), "better", (json_int_t)st->better, "worse", (json_int_t)st->worse,
                     "equal", (json_int_t)st->equal);
}

struct drop {
    double drop;
    size_t i;
};

static int cmp_drop(const void *a, const void *b)
{
    const struct drop *x = a, *y = b;
    if (x->drop != y->drop) {
        return x->drop > y->drop ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The up to k images whose value dropped most (worse by the largest amount; ties in the
 * baseline's order) as [{id, baseline, candidate, delta}] (new), or NULL out of memory. */
static json_t *worst_json(const double *bv, const double *cv, size_t n, bool higher,
                          const char *const *ids, int k)
{
    struct drop *r = malloc(sizeof *r * (n + 1));
    json_t *list = json_array();
    if (!r || !list) {
        free(r);
        json_decref(list);
        return NULL;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = cv[i] - bv[i];
        double drop = higher ? -d : d;
        if (!isnan(drop) && drop > 0) {
            r[m++] = (struct drop){drop, i};
        }
    }
    qsort(r, m, sizeof *r, cmp_drop);
    for (size_t j = 0; j < m && j < (size_t)k; j++) {
        size_t i = r[j].i;
        json_array_append_new(list, json_pack("{s:s, s:f, s:f, s:f}", "id", ids[i], "baseline",
                                              bv[i], "candidate", cv[i], "delta", cv[i] - bv[i]));
    }
    free(r);
    return list;
}

/* Image i's value of per-image element v: a number, or (one value per class) the mean of the
 * defined classes, class 0 only when bg or it is the only one; NaN when undefined. */
static double image_value(json_t *v, bool bg)
{
    if (json_is_number(v)) {
        return json_number_value(v);
    }
    size_t c = json_array_size(v);
    double sum = 0;
    int k = 0;
    for (size_t j = 0; j < c; j++) {
        json_t *x = json_array_get(v, j);
        if ((bg || c == 1 || j > 0) && json_is_number(x)) {
            sum += json_number_value(x);
            k++;
        }
    }
    return k ? sum / k : NAN;
}

/* Checks that doc (borrowed) is a `segloss score --json` output with per-image values; 0, or
 * -1 with msg naming the file. */
static int check_doc(json_t *doc, const char *name, char *msg, size_t msglen)
{
    json_t *f = json_object_get(doc, "format");
    if (!json_is_string(f) || strcmp(json_string_value(f), CLI_SCORE_FORMAT) != 0) {
        snprintf(msg, msglen,
                 "%s: not the --json output of segloss score (no \"format\": \"%s\"; outputs of "
                 "segloss before compare existed have none: score again)",
                 name, CLI_SCORE_FORMAT);
        return -1;
    }
    json_t *v = json_object_get(doc, "format_version");
    if (!json_is_integer(v) || json_integer_value(v) != CLI_SCORE_FORMAT_VERSION) {
        snprintf(msg, msglen, "%s: format_version is not %d, the one this segloss reads", name,
                 CLI_SCORE_FORMAT_VERSION);
        return -1;
    }
    json_t *ids = json_object_get(doc, "image_ids");
    if (!json_is_array(ids)) {
        snprintf(msg, msglen,
                 "%s: no image_ids (scored with --no-per-image or per_image false?): compare "
                 "needs the per-image values and ids",
                 name);
        return -1;
    }
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        if (!json_is_string(id)) {
            snprintf(msg, msglen, "%s: image_ids[%zu] is not a string", name, i);
            return -1;
        }
    }
    if (!json_is_object(json_object_get(doc, "better"))) {
        snprintf(msg, msglen, "%s: no \"better\" object (which way each value is better)", name);
        return -1;
    }
    return 0;
}

struct idpos {
    const char *id;
    size_t i;
};

static int cmp_idpos(const void *a, const void *b)
{
    return strcmp(((const struct idpos *)a)->id, ((const struct idpos *)b)->id);
}

/* ids of doc sorted with their positions (new, n entries), or NULL with msg (a duplicate id or
 * out of memory). */
static struct idpos *sorted_ids(json_t *doc, const char *name, size_t *n, char *msg, size_t msglen)
{
    json_t *ids = json_object_get(doc, "image_ids");
    *n = json_array_size(ids);
    struct idpos *s = malloc(sizeof *s * (*n + 1));
    if (!s) {
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        s[i] = (struct idpos){json_string_value(json_array_get(ids, i)), i};
    }
    qsort(s, *n, sizeof *s, cmp_idpos);
    for (size_t i = 1; i < *n; i++) {
        if (!strcmp(s[i].id, s[i - 1].id)) {
            snprintf(msg, msglen, "%s: image id '%s' appears twice", name, s[i].id);
            free(s);
            return NULL;
        }
    }
    return s;
}

/* For each baseline image i, the candidate's position of its id into pos[i]; 0, or -1 with msg
 * naming an id that only one file has. */
static int match_ids(json_t *base, json_t *cand, const char *bname, const char *cname, size_t *pos,
                     char *msg, size_t msglen)
{
    size_t nb, nc;
    int rc = -1;
    struct idpos *sb = sorted_ids(base, bname, &nb, msg, msglen);
    struct idpos *sc = sb ? sorted_ids(cand, cname, &nc, msg, msglen) : NULL;
    if (!sc) {
        goto out;
    }
    size_t i = 0, j = 0;
    while (i < nb || j < nc) {
        int c = i == nb ? 1 : j == nc ? -1 : strcmp(sb[i].id, sc[j].id);
        if (c != 0) {
            bool in_base = c < 0;
            snprintf(msg, msglen, "image id '%s' is in %s but not in %s",
                     in_base ? sb[i].id : sc[j].id, in_base ? bname : cname,
                     in_base ? cname : bname);
            goto out;
        }
        pos[sb[i].i] = sc[j].i;
        i++;
        j++;
    }
    rc = 0;
out:
    free(sb);
    free(sc);
    return rc;
}

/* "higher" or "lower" of key in section sec of doc's "better", or NULL. Borrowed. */
static const char *better_of(json_t *doc, const char *sec, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(doc, "better"), sec), key));
}

/* The per-image value arrays of entry e (per_image; per class: per_image's rows, or a loss's
 * per_image_class) of both docs: class -1 the image's value, else class c. Fills bv, cv (n
 * each, in the baseline's order; pos maps to the candidate's). */
static void values_of(json_t *be, json_t *ce, bool loss, int c, const size_t *pos, size_t n,
                      bool bbg, bool cbg, double *bv, double *cv)
{
    const char *list = c >= 0 && loss ? "per_image_class" : "per_image";
    json_t *bp = json_object_get(be, list), *cp = json_object_get(ce, list);
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_array_get(bp, i), *x = json_array_get(cp, pos[i]);
        if (c >= 0) {
            b = json_array_get(b, (size_t)c);
            x = json_array_get(x, (size_t)c);
            bv[i] = json_is_number(b) ? json_number_value(b) : NAN;
            cv[i] = json_is_number(x) ? json_number_value(x) : NAN;
        } else {
            bv[i] = image_value(b, bbg);
            cv[i] = image_value(x, cbg);
        }
    }
}

/* Whether entry e of a section has per-image values compare can use: a per_image list of
 * numbers, nulls or lists (not confusion counts). */
static bool comparable(json_t *e)
{
    json_t *pi = json_object_get(e, "per_image");
    if (!json_is_array(pi)) {
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(pi, i, v)
    {
        if (json_is_object(v) || json_is_object(json_array_get(v, 0))) {
            return false;
        }
    }
    return true;
}

/* How many classes entry e has per image (0: one value per image). */
static size_t classes_of(json_t *e, bool loss)
{
    json_t *pi = json_object_get(e, loss ? "per_image_class" : "per_image");
    return json_is_array(json_array_get(pi, 0)) ? json_array_size(json_array_get(pi, 0)) : 0;
}

/* Whether doc counts class 0 in an image's mean over classes. */
static bool counts_background(json_t *doc)
{
    return !json_is_false(
        json_object_get(json_object_get(doc, "conventions"), "include_background"));
}

/* The comparison of one entry (be of the baseline, ce of the candidate) as JSON (new), or NULL
 * with msg. */
static json_t *entry_json(json_t *base, json_t *cand, json_t *be, json_t *ce, bool loss,
                          bool higher, const size_t *pos, const char *const *ids, size_t n,
                          const struct cli_cmp_opts *o, char *msg, size_t msglen)
{
    json_t *out = NULL, *pc = NULL;
    double *bv = malloc(sizeof *bv * (n + 1)), *cv = malloc(sizeof *cv * (n + 1));
    struct delta_stats st;
    bool bbg = counts_background(base), cbg = counts_background(cand);
    if (!bv || !cv) {
        goto oom;
    }
    values_of(be, ce, loss, -1, pos, n, bbg, cbg, bv, cv);
    if (delta_of(bv, cv, n, higher, o, &st)) {
        goto oom;
    }
    out = stats_json(&st);
    json_t *w = worst_json(bv, cv, n, higher, ids, o->worst);
    if (!out || !w) {
        json_decref(w);
        goto oom;
    }
    json_object_set_new(out, "better_is", json_string(higher ? "higher" : "lower"));
    json_object_set_new(out, "worst", w);
    size_t nc = classes_of(be, loss);
    if (nc != classes_of(ce, loss)) {
        snprintf(msg, msglen, "the two files have different numbers of classes");
        json_decref(out);
        out = NULL;
        goto out;
    }
    if (nc > 0) {
        pc = json_array();
        for (size_t c = 0; pc && c < nc; c++) {
            values_of(be, ce, loss, (int)c, pos, n, bbg, cbg, bv, cv);
            if (delta_of(bv, cv, n, higher, o, &st)) {
                goto oom;
            }
            json_array_append_new(pc, stats_json(&st));
        }
        if (!pc) {
            goto oom;
        }
        json_object_set_new(out, "per_class", pc);
        pc = NULL;
    }
    goto out;
oom:
    snprintf(msg, msglen, "out of memory");
    json_decref(out);
    json_decref(pc);
    out = NULL;
out:
    free(bv);
    free(cv);
    return out;
}

json_t *cli_compare(json_t *base, json_t *cand, const char *bname, const char *cname,
                    const struct cli_cmp_opts *o, char *msg, size_t msglen)
{
    if (check_doc(base, bname, msg, msglen) || check_doc(cand, cname, msg, msglen)) {
        return NULL;
    }
    const char *bm = json_string_value(json_object_get(base, "mode")),
               *cm = json_string_value(json_object_get(cand, "mode"));
    if (!bm || !cm || strcmp(bm, cm) != 0) {
        snprintf(msg, msglen, "%s is mode %s but %s is mode %s: not the same task", bname,
                 bm ? bm : "?", cname, cm ? cm : "?");
        return NULL;
    }
    json_t *ids = json_object_get(base, "image_ids");
    size_t n = json_array_size(ids);
    size_t *pos = malloc(sizeof *pos * (n + 1));
    const char **idv = malloc(sizeof *idv * (n + 1));
    json_t *out = NULL;
    if (!pos || !idv) {
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        idv[i] = json_string_value(json_array_get(ids, i));
    }
    if (match_ids(base, cand, bname, cname, pos, msg, msglen)) {
        goto out;
    }
    out = json_pack("{s:s, s:i, s:s, s:s, s:I, s:{s:I, s:I, s:f, s:s, s:s}}", "format",
                    "segloss-compare", "format_version", 1, "baseline", bname, "candidate", cname,
                    "images", (json_int_t)n, "method", "resamples", (json_int_t)o->resamples,
                    "seed", (json_int_t)o->seed, "level", 0.95, "bootstrap",
                    "paired percentile bootstrap of the mean difference; xoshiro256** seeded "
                    "by splitmix64(seed); index: reject x < 2^64 mod n, then x mod n; "
                    "quantiles 0.025 and 0.975, type 7",
                    "wilcoxon",
                    "two-sided signed-rank as scipy.stats.wilcoxon defaults: zero_method "
                    "wilcox (zeros dropped), exact when n <= 50 without ties or zeros, else "
                    "normal with tie correction, no continuity correction");
    if (!out) {
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    static const char *const secs[2] = {"metrics", "losses"};
    for (int s = 0; s < 2; s++) {
        json_t *sec = json_object();
        json_object_set_new(out, secs[s], sec);
        const char *key;
        json_t *be;
        json_object_foreach(json_object_get(base, secs[s]), key, be)
        {
            json_t *ce = json_object_get(json_object_get(cand, secs[s]), key);
            if (!comparable(be) || !comparable(ce)) {
                continue;
            }
            const char *bb = better_of(base, secs[s], key), *cb = better_of(cand, secs[s], key);
            if (!bb || !cb || strcmp(bb, cb) != 0) {
                snprintf(msg, msglen,
                         "%s.%s: the files do not say the same way is better (%s: %s, %s: %s)",
                         secs[s], key, bname, bb ? bb : "nothing", cname, cb ? cb : "nothing");
                json_decref(out);
                out = NULL;
                goto out;
            }
            json_t *e = entry_json(base, cand, be, ce, s == 1, !strcmp(bb, "higher"), pos, idv, n,
                                   o, msg, msglen);
            if (!e) {
                json_decref(out);
                out = NULL;
                goto out;
            }
            json_object_set_new(sec, key, e);
        }
    }
out:
    free(pos);
    free(idv);
    return out;
}

/* The metric name behind response key key of spec's metrics (a bare name, or an object with
 * "name" and perhaps "as"); key itself when spec does not say. Borrowed. */
static const char *metric_name(const json_t *spec, const char *key)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(spec, "metrics"), i, m)
    {
        if (json_is_string(m) && strcmp(json_string_value(m), key) == 0) {
            return key;
        }
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *as = json_string_value(json_object_get(m, "as"));
        if (name && strcmp(as ? as : name, key) == 0) {
            return name;
        }
    }
    return key;
}

json_t *cli_better(json_t *result, const json_t *spec)
{
    json_t *out = json_pack("{s:{}, s:{}}", "metrics", "losses");
    const char *key;
    json_t *e;
    json_object_foreach(json_object_get(result, "metrics"), key, e)
    {
        const struct sl_def *d = sl_find_metric(metric_name(spec, key));
        json_object_set_new(json_object_get(out, "metrics"), key,
                            json_string(d && (d->flags & SL_DEF_LOWER) ? "lower" : "higher"));
    }
    json_object_foreach(json_object_get(result, "losses"), key, e)
    {
        json_object_set_new(json_object_get(out, "losses"), key, json_string("lower"));
    }
    return out;
}

/* ---- gates ----------------------------------------------------------------------------------
 */

static const char *const gate_ops[] = {">=", "<=", "==", "!=", ">", "<"};
static const char *const delta_fields[] = {"mean", "ci_low", "ci_high", "p"};
static const char *const count_fields[] = {"better", "worse", "equal", "left_out", "pairs"};

/* Splits text into its left side (into buf, blanks removed), *op (borrowed) and *threshold;
 * 0, or -1 when it has no comparison or number. */
static int split_gate(const char *text, char *buf, size_t buflen, const char **op,
                      double *threshold)
{
    size_t n = 0;
    for (const char *p = text; *p && n + 1 < buflen; p++) {
        if (*p != ' ' && *p != '\t') {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    for (char *p = buf; *p; p++) {
        for (size_t k = 0; k < sizeof gate_ops / sizeof gate_ops[0]; k++) {
            size_t l = strlen(gate_ops[k]);
            if (!strncmp(p, gate_ops[k], l)) {
                char *end;
                errno = 0;
                *threshold = strtod(p + l, &end);
                *op = gate_ops[k];
                *p = '\0';
                return end == p + l || *end || errno || isnan(*threshold) || p == buf ? -1 : 0;
            }
        }
    }
    return -1;
}

/* Whether s ends with "." suffix; then cuts it off s. */
static bool cut_suffix(char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    if (ls > lx + 1 && s[ls - lx - 1] == '.' && !strcmp(s + ls - lx, suffix)) {
        s[ls - lx - 1] = '\0';
        return true;
    }
    return false;
}

/* The comparison field a gate's left side left names (cut off left): "delta.mean" etc. into
 * field, or false when it names none. */
static bool cut_field(char *left, char *field, size_t fieldlen)
{
    for (size_t k = 0; k < sizeof delta_fields / sizeof delta_fields[0]; k++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "delta.%s", delta_fields[k]);
        if (cut_suffix(left, suffix)) {
            snprintf(field, fieldlen, "%s", delta_fields[k]);
            return true;
        }
    }
    for (size_t k = 0; k < sizeof count_fields / sizeof count_fields[0]; k++) {
        if (cut_suffix(left, count_fields[k])) {
            snprintf(field, fieldlen, "%s", count_fields[k]);
            return true;
        }
    }
    return false;
}

bool cli_is_compare_gate(const char *text)
{
    char buf[1024], field[32];
    const char *op;
    double t;
    if (split_gate(text, buf, sizeof buf, &op, &t)) {
        /* a bad gate: a comparison one when it says delta (so that its error is compare's) */
        return strstr(text, ".delta") != NULL;
    }
    return cut_field(buf, field, sizeof field) || strstr(buf, ".delta") != NULL;
}

int cli_compare_gate(json_t *cmp, const char *text, struct cli_gate *g, char *msg, size_t msglen)
{
    static const char grammar[] =
        "[metrics.|losses.]KEY[.per_class[i]].delta.{mean,ci_low,ci_high,p} or "
        "KEY[.per_class[i]].{better,worse,equal,left_out,pairs}, then OP NUMBER";
    char buf[1024], field[32];
    const char *op = NULL;
    double t = 0;
    if (split_gate(text, buf, sizeof buf, &op, &t) || !cut_field(buf, field, sizeof field)) {
        snprintf(msg, msglen, "gate '%s': a comparison gate is %s", text, grammar);
        return -1;
    }
    long cls = -1;
    char *br = strstr(buf, ".per_class[");
    if (br) {
        char *e;
        cls = strtol(br + 11, &e, 10);
        if (e == br + 11 || strcmp(e, "]") || cls < 0) {
            snprintf(msg, msglen, "gate '%s': per_class[i] takes a class i >= 0, as %s", text,
                     grammar);
            return -1;
        }
        *br = '\0';
    }
    char *key = buf;
    const char *sec = NULL;
    if (!strncmp(key, "metrics.", 8) || !strncmp(key, "losses.", 7)) {
        sec = key[0] == 'm' ? "metrics" : "losses";
        key = strchr(key, '.') + 1;
    }
    json_t *m = json_object_get(json_object_get(cmp, "metrics"), key),
           *l = json_object_get(json_object_get(cmp, "losses"), key);
    /* a key that is both a metric and a loss names the metric (losses.KEY the loss), as the
     * score gates' KEY.mean does */
    if (!sec) {
        sec = l && !m ? "losses" : "metrics";
    }
    json_t *e = sec[0] == 'm' ? m : l;
    if (!e) {
        snprintf(msg, msglen,
                 "gate '%s': the comparison has no %s '%s' (one with per-image values in both "
                 "files)",
                 text, sec[0] == 'm' ? "metric" : "loss", key);
        return -1;
    }
    if (cls >= 0) {
        json_t *pc = json_object_get(e, "per_class");
        if ((size_t)cls >= json_array_size(pc)) {
            snprintf(msg, msglen, "gate '%s': %s has %zu classes per image", text, key,
                     json_array_size(pc));
            return -1;
        }
        e = json_array_get(pc, (size_t)cls);
    }
    bool delta = false;
    for (size_t k = 0; k < sizeof delta_fields / sizeof delta_fields[0]; k++) {
        delta = delta || !strcmp(field, delta_fields[k]);
    }
    json_t *v =
        delta ? json_object_get(json_object_get(e, "delta"), field) : json_object_get(e, field);
    char label[1200];
    if (cls >= 0) {
        snprintf(label, sizeof label, "%s.per_class[%ld].%s%s", key, cls, delta ? "delta." : "",
                 field);
    } else {
        snprintf(label, sizeof label, "%s.%s%s", key, delta ? "delta." : "", field);
    }
    g->text = strdup(text);
    g->label = strdup(label);
    g->value = json_is_number(v) ? json_number_value(v) : NAN;
    g->passed = cli_gate_holds(g->value, op, t);
    if (!g->text || !g->label) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- output ---------------------------------------------------------------------------------
 */

/* A number cell of width w (null: "-"). */
static void cell(FILE *out, json_t *v, int w)
{
    if (json_is_number(v)) {
        fprintf(out, " %*.6f", w, json_number_value(v));
    } else {
        fprintf(out, " %*s", w, "-");
    }
}

/* One row of statistics st (an entry or a class) named name. */
static void stats_row(FILE *out, const char *name, json_t *st)
{
    json_t *d = json_object_get(st, "delta");
    fprintf(out, "%-24s %6lld %5lld", name,
            (long long)json_integer_value(json_object_get(st, "pairs")),
            (long long)json_integer_value(json_object_get(st, "left_out")));
    cell(out, json_object_get(d, "mean"), 10);
    cell(out, json_object_get(d, "ci_low"), 10);
    cell(out, json_object_get(d, "ci_high"), 10);
    json_t *p = json_object_get(d, "p");
    if (json_is_number(p)) {
        fprintf(out, " %9.3g", json_number_value(p));
    } else {
        fprintf(out, " %9s", "-");
    }
    fprintf(out, " %6lld %6lld %6lld\n",
            (long long)json_integer_value(json_object_get(st, "better")),
            (long long)json_integer_value(json_object_get(st, "worse")),
            (long long)json_integer_value(json_object_get(st, "equal")));
}

void cli_compare_print(FILE *out, json_t *cmp, const struct cli_gate *gates, int ngates)
{
    json_t *meth = json_object_get(cmp, "method");
    fprintf(out,
            "segloss compare: %lld images matched by id, %s minus %s\n95%% CI of %lld bootstrap "
            "resamples (seed %lld), p of the Wilcoxon signed-rank test\n",
            (long long)json_integer_value(json_object_get(cmp, "images")),
            json_string_value(json_object_get(cmp, "candidate")),
            json_string_value(json_object_get(cmp, "baseline")),
            (long long)json_integer_value(json_object_get(meth, "resamples")),
            (long long)json_integer_value(json_object_get(meth, "seed")));
    static const char *const secs[2] = {"metrics", "losses"};
    static const char *const heads[2] = {"metric", "loss"};
    for (int s = 0; s < 2; s++) {
        if (!json_object_size(json_object_get(cmp, secs[s]))) {
            continue;
        }
        fprintf(out, "\n%-24s %6s %5s %10s %10s %10s %9s %6s %6s %6s\n", heads[s], "pairs", "left",
                "delta", "ci_low", "ci_high", "p", "better", "worse", "equal");
        const char *key;
        json_t *e;
        json_object_foreach(json_object_get(cmp, secs[s]), key, e)
        {
            char name[300];
            snprintf(name, sizeof name, "%s (%s is better)", key,
                     json_string_value(json_object_get(e, "better_is")));
            stats_row(out, name, e);
            size_t c;
            json_t *pc;
            json_array_foreach(json_object_get(e, "per_class"), c, pc)
            {
                snprintf(name, sizeof name, "  class %zu", c);
                stats_row(out, name, pc);
            }
        }
    }
    for (int s = 0; s < 2; s++) {
        const char *key;
        json_t *e;
        json_object_foreach(json_object_get(cmp, secs[s]), key, e)
        {
            json_t *w = json_object_get(e, "worst");
            if (!json_array_size(w)) {
                continue;
            }
            fprintf(out, "\nlargest drops of %s.%s\n%-32s %12s %12s %12s\n", secs[s], key, "id",
                    "baseline", "candidate", "delta");
            size_t i;
            json_t *x;
            json_array_foreach(w, i, x)
            {
                fprintf(out, "%-32s", json_string_value(json_object_get(x, "id")));
                cell(out, json_object_get(x, "baseline"), 12);
                cell(out, json_object_get(x, "candidate"), 12);
                cell(out, json_object_get(x, "delta"), 12);
                fputc('\n', out);
            }
        }
    }
    if (ngates) {
        fprintf(out, "\n%-28s %12s %s\n", "gate", "value", "result");
        for (int i = 0; i < ngates; i++) {
            fprintf(out, "%-28s", gates[i].text);
            if (isnan(gates[i].value)) {
                fprintf(out, " %12s", "null");
            } else {
                fprintf(out, " %12.6f", gates[i].value);
            }
            fprintf(out, " %s\n", gates[i].passed ? "pass" : "FAIL");
        }
    }
}

/* ---- the command ----------------------------------------------------------------------------
 */

int cli_cmp_option(struct cli_cmp_opts *o, const char *name, const char *a, char *msg,
                   size_t msglen)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(a, &end, 10);
    bool ok = end != a && !*end && !errno && a[0] != '-';
    if (!strcmp(name, "resamples")) {
        if (!ok || v < 100 || v > 10000000) {
            snprintf(msg, msglen, "--resamples '%s': 100..10000000", a);
            return -1;
        }
        o->resamples = (int64_t)v;
    } else if (!strcmp(name, "seed")) {
        if (!ok) {
            snprintf(msg, msglen, "--seed '%s': an integer 0..2^64-1", a);
            return -1;
        }
        o->seed = (uint64_t)v;
    } else {
        if (!ok || v > 1000) {
            snprintf(msg, msglen, "--worst '%s': 0..1000 images", a);
            return -1;
        }
        o->worst = (int)v;
    }
    return 0;
}

/* Monotonic seconds. */
static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads a JSON file (new), or NULL with msg. */
static json_t *load(const char *path, char *msg, size_t msglen);

json_t *cli_load_score(const char *path, char *msg, size_t msglen)
{
    json_t *doc = load(path, msg, msglen);
    if (doc && check_doc(doc, path, msg, msglen)) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

static json_t *load(const char *path, char *msg, size_t msglen)
{
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc) {
        snprintf(msg, msglen, "%s:%d: %s", path, je.line, je.text);
    } else if (!json_is_object(doc)) {
        snprintf(msg, msglen, "%s: not a JSON object (the --json output of segloss score)", path);
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

int cli_compare_main(int argc, char **argv, const char *usage)
{
    static const struct option lo[] = {
        {"resamples", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {"worst", required_argument, NULL, 'w'},
        {"gate", required_argument, NULL, 'g'},
        {"json", no_argument, NULL, 'j'},
        {"junit", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_cmp_opts o = CLI_CMP_DEFAULTS;
    char **texts = calloc((size_t)argc + 1, sizeof *texts);
    struct cli_gate *gates = calloc((size_t)argc + 1, sizeof *gates);
    json_t *base = NULL, *cand = NULL, *cmp = NULL;
    const char *junit = NULL;
    bool json = false, gates_ok = false;
    int ngates = 0, c, rc = EXIT_ERROR;
    char msg[CLI_MSG] = "", err[CLI_MSG + 64] = "";
    double t0 = seconds_now();
    if (!texts || !gates) {
        snprintf(err, sizeof err, "out of memory");
        goto out;
    }
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
        case 's':
        case 'w':
            if (cli_cmp_option(&o,
                               c == 'r'   ? "resamples"
                               : c == 's' ? "seed"
                                          : "worst",
                               optarg, msg, sizeof msg)) {
                snprintf(err, sizeof err, "%s", msg);
                goto out;
            }
            break;
        case 'g':
            texts[ngates++] = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'u':
            junit = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default:
            snprintf(err, sizeof err, "unknown or incomplete option '%s' (segloss --help)",
                     argv[optind - 1]);
            goto out;
        }
    }
    if (argc - optind != 2) {
        snprintf(err, sizeof err, "compare needs two files: BASELINE.json CANDIDATE.json");
        goto out;
    }
    const char *bname = argv[optind], *cname = argv[optind + 1];
    if (!(base = load(bname, msg, sizeof msg)) || !(cand = load(cname, msg, sizeof msg)) ||
        !(cmp = cli_compare(base, cand, bname, cname, &o, msg, sizeof msg))) {
        snprintf(err, sizeof err, "%s", msg);
        goto out;
    }
    for (int i = 0; i < ngates; i++) {
        if (cli_compare_gate(cmp, texts[i], &gates[i], msg, sizeof msg)) {
            snprintf(err, sizeof err, "%s", msg);
            goto out;
        }
    }
    gates_ok = true;
    rc = cli_compare_finish(cmp, gates, ngates, json, stdout);
out:
    if (err[0]) {
        fprintf(stderr, "segloss: %s\n", err);
    }
    if (junit && texts) {
        if (cli_write_junit_case(junit, "compare", cli_compare_print, gates_ok ? cmp : NULL, gates,
                                 gates_ok ? ngates : 0, err[0] ? err : NULL, seconds_now() - t0,
                                 msg, sizeof msg)) {
            fprintf(stderr, "segloss: %s\n", msg);
            rc = EXIT_ERROR;
        }
    }
    for (int i = 0; gates && i < ngates; i++) {
        free(gates[i].text);
        free(gates[i].label);
    }
    free(gates);
    free(texts);
    json_decref(base);
    json_decref(cand);
    json_decref(cmp);
    return rc;
}

int cli_compare_finish(json_t *cmp, const struct cli_gate *gates, int ngates, bool json, FILE *out)
{
    int rc = 0;
    for (int i = 0; i < ngates; i++) {
        if (!gates[i].passed) {
            rc = EXIT_GATE;
            if (isnan(gates[i].value)) {
                fprintf(stderr, "segloss: gate failed: %s (%s is undefined: null)\n", gates[i].text,
                        gates[i].label);
            } else {
                fprintf(stderr, "segloss: gate failed: %s (%s = %.6f)\n", gates[i].text,
                        gates[i].label, gates[i].value);
            }
        }
    }
    if (json) {
        json_t *o = json_deep_copy(cmp);
        json_t *gj = json_array();
        for (int i = 0; i < ngates; i++) {
            json_array_append_new(gj, json_pack("{s:s, s:o, s:b}", "gate", gates[i].text, "value",
                                                num(gates[i].value), "passed", gates[i].passed));
        }
        json_object_set_new(o, "gates", gj);
        json_object_set_new(o, "passed", json_boolean(rc == 0));
        json_dumpf(o, out, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        fputc('\n', out);
        json_decref(o);
    } else {
        cli_compare_print(out, cmp, gates, ngates);
    }
    return rc;
}

/* ---- the --html report's comparison ----------------------------------------------------------
 */

/* One cell of a number v (null: an en dash) with its exact value in data-value. */
static void html_cell(struct slp_dynbuf *b, json_t *v)
{
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    slp_dynbuf_adds(b, "<td data-value=\"");
    slp_html_exact(b, x);
    slp_dynbuf_adds(b, "\">");
    slp_html_num(b, x, 6);
    slp_dynbuf_adds(b, "</td>");
}

/* One table row of statistics st named name (data-key key). */
static void html_row(struct slp_dynbuf *b, const char *key, const char *name, const char *better,
                     json_t *st)
{
    json_t *d = json_object_get(st, "delta");
    slp_dynbuf_adds(b, "<tr data-key=\"");
    slp_html_attr(b, key);
    slp_dynbuf_adds(b, "\"><td>");
    slp_html_text(b, name);
    slp_dynbuf_adds(b, "</td><td>");
    slp_html_text(b, better);
    slp_dynbuf_adds(b, "</td>");
    static const char *const cnt[] = {"pairs", "left_out"};
    for (int k = 0; k < 2; k++) {
        html_cell(b, json_object_get(st, cnt[k]));
    }
    for (size_t k = 0; k < sizeof delta_fields / sizeof delta_fields[0]; k++) {
        html_cell(b, json_object_get(d, delta_fields[k]));
    }
    for (int k = 0; k < 3; k++) {
        html_cell(b, json_object_get(st, count_fields[k]));
    }
    slp_dynbuf_adds(b, "</tr>\n");
}

int cli_compare_html(struct slp_dynbuf *b, json_t *cmp)
{
    json_t *meth = json_object_get(cmp, "method");
    slp_dynbuf_addf(b,
                    "<section id=\"comparison\"><h2>Compared with the baseline</h2>\n<p "
                    "class=\"muted\">Candidate minus baseline over %lld images matched by id; "
                    "95%% interval from %lld paired bootstrap resamples (seed %lld); p: Wilcoxon "
                    "signed-rank, two-sided. Baseline: ",
                    (long long)json_integer_value(json_object_get(cmp, "images")),
                    (long long)json_integer_value(json_object_get(meth, "resamples")),
                    (long long)json_integer_value(json_object_get(meth, "seed")));
    slp_html_text(b, json_string_value(json_object_get(cmp, "baseline")));
    slp_dynbuf_adds(b, ".</p>\n<div class=\"scroll\"><table id=\"comparison-table\"><thead><tr>"
                       "<th>value</th><th>better is</th><th>pairs</th><th>left out</th>"
                       "<th>delta mean</th><th>ci_low</th><th>ci_high</th><th>p</th>"
                       "<th>better</th><th>worse</th><th>equal</th></tr></thead><tbody>\n");
    static const char *const secs[2] = {"metrics", "losses"};
    for (int s = 0; s < 2; s++) {
        const char *key;
        json_t *e;
        json_object_foreach(json_object_get(cmp, secs[s]), key, e)
        {
            char k[600], name[600];
            const char *better = json_string_value(json_object_get(e, "better_is"));
            snprintf(k, sizeof k, "%s.%s", secs[s], key);
            html_row(b, k, k, better, e);
            size_t c;
            json_t *pc;
            json_array_foreach(json_object_get(e, "per_class"), c, pc)
            {
                snprintf(k, sizeof k, "%s.%s.per_class[%zu]", secs[s], key, c);
                snprintf(name, sizeof name, "  class %zu", c);
                html_row(b, k, name, better, pc);
            }
        }
    }
    slp_dynbuf_adds(b, "</tbody></table></div>\n");
    for (int s = 0; s < 2; s++) {
        const char *key;
        json_t *e;
        json_object_foreach(json_object_get(cmp, secs[s]), key, e)
        {
            json_t *w = json_object_get(e, "worst");
            if (!json_array_size(w)) {
                continue;
            }
            slp_dynbuf_addf(b, "<h3>Largest drops of %s.", secs[s]);
            slp_html_text(b, key);
            slp_dynbuf_adds(b, "</h3>\n<div class=\"scroll\"><table class=\"drops\" data-key=\"");
            slp_dynbuf_addf(b, "%s.", secs[s]);
            slp_html_attr(b, key);
            slp_dynbuf_adds(b, "\"><thead><tr><th>id</th><th>baseline</th><th>candidate</th>"
                               "<th>delta</th></tr></thead><tbody>\n");
            size_t i;
            json_t *x;
            json_array_foreach(w, i, x)
            {
                slp_dynbuf_adds(b, "<tr><td>");
                slp_html_text(b, json_string_value(json_object_get(x, "id")));
                slp_dynbuf_adds(b, "</td>");
                html_cell(b, json_object_get(x, "baseline"));
                html_cell(b, json_object_get(x, "candidate"));
                html_cell(b, json_object_get(x, "delta"));
                slp_dynbuf_adds(b, "</tr>\n");
            }
            slp_dynbuf_adds(b, "</tbody></table></div>\n");
        }
    }
    slp_dynbuf_adds(b, "</section>\n");
    return b->err;
}

int cli_compare_drops(json_t *cmp, const char **key, const char **sec)
{
    static const char *const secs[2] = {"metrics", "losses"};
    for (int s = 0; s < 2; s++) {
        const char *k;
        json_t *e;
        json_object_foreach(json_object_get(cmp, secs[s]), k, e)
        {
            *key = k;
            *sec = secs[s];
            return (int)json_array_size(json_object_get(e, "worst"));
        }
    }
    return 0;
}
