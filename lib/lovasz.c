/* lovasz.c - the Lovász extension of the Jaccard loss (Berman, Triki & Blaschko, "The
 * Lovász-Softmax loss", CVPR 2018), following their reference lovasz_hinge_flat and
 * lovasz_softmax_flat: sort errors in decreasing order, take the gradient of the Lovász
 * extension at the sorted labels, dot with relu(errors) (softmax errors are >= 0 already).
 *
 * Errors <= 0 are left out by the callers: they sort last and add relu(e) = 0, and the gradient
 * before them depends only on the errors above (gts, the number of positives, still counts all).
 * The sort is an LSD radix sort (3 passes of 11 bits) on a 32-bit key of each error rounded to
 * float; runs of equal keys are then put in order by the errors themselves, so the order is the
 * exact descending order of the double errors. The common inputs (float32 logits, softmax
 * probabilities) sort 8-byte items from which the exact error is rebuilt; others sort struct
 * sl__ey (16 bytes). Lovász-Softmax sorts 4-byte keys: the float bits of p_c, whose order is
 * the exact order of its errors 1 - p_c (the class's pixels) and p_c (the others), in two lists
 * merged by decreasing error. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RADIX_BITS 11
#define RADIX_SIZE (1 << RADIX_BITS)
#define RADIX_PASSES 3 /* 33 bits cover the key */
/* Below this many errors qsort is as quick as the three passes. */
#define RADIX_MIN 256
/* From this many items the passes run on the pool, in this many blocks. */
#define RADIX_POOL_MIN (1 << 17)
#define RADIX_BLOCKS 16

/* qsort orders: items by increasing key, errors by decreasing value. */
/* Turns a digit histogram into each digit's first index in the sorted output. */
static void digit_offsets(int64_t *h)
{
    int64_t sum = 0;
    for (int d = 0; d < RADIX_SIZE; d++) {
        int64_t c = h[d];
        h[d] = sum;
        sum += c;
    }
}

static int cmp_key(const void *a, const void *b)
{
    uint32_t x = (uint32_t)(*(const uint64_t *)a >> 32), z = (uint32_t)(*(const uint64_t *)b >> 32);
    return (x > z) - (x < z);
}

static int cmp_desc(const void *a, const void *b)
{
    double x = ((const struct sl__ey *)a)->e, z = ((const struct sl__ey *)b)->e;
    return (x < z) - (x > z);
}

/* Puts v[0..n) in decreasing order of e where the keys are equal (the keys are already in
 * increasing order): a run of equal keys holds errors within one float of each other. */
static void fix_runs(struct sl__ey *v, int64_t n)
{
    int64_t i = 0;
    while (i < n) {
        int64_t j = i + 1;
        bool sorted = true;
        while (j < n && v[j].key == v[i].key) {
            sorted = sorted && v[j].e <= v[j - 1].e;
            j++;
        }
        if (!sorted) {
            qsort(v + i, (size_t)(j - i), sizeof *v, cmp_desc);
        }
        i = j;
    }
}

void sl__sort_desc(struct sl__ey *v, struct sl__ey *tmp, int64_t n)
{
    if (n < RADIX_MIN || !tmp) {
        qsort(v, (size_t)(n > 0 ? n : 0), sizeof *v, cmp_desc);
        return;
    }
    /* all the histograms in one read */
    int64_t(*hist)[RADIX_SIZE] = calloc(RADIX_PASSES, sizeof *hist);
    if (!hist) {
        qsort(v, (size_t)n, sizeof *v, cmp_desc);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t k = sl__key_desc((float)v[i].e);
        v[i].key = k;
        for (int p = 0; p < RADIX_PASSES; p++) {
            hist[p][(k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1)]++;
        }
    }
    struct sl__ey *src = v, *dst = tmp;
    for (int p = 0; p < RADIX_PASSES; p++) {
        int64_t *h = hist[p];
        const int shift = p * RADIX_BITS;
        /* a digit every key shares leaves the order as it is */
        if (h[(src[0].key >> shift) & (RADIX_SIZE - 1)] == n) {
            continue;
        }
        digit_offsets(h);
        for (int64_t i = 0; i < n; i++) {
            dst[h[(src[i].key >> shift) & (RADIX_SIZE - 1)]++] = src[i];
        }
        struct sl__ey *t = src;
        src = dst;
        dst = t;
    }
    free(hist);
    if (src != v) {
        memcpy(v, src, sizeof *v * (size_t)n);
    }
    fix_runs(v, n);
}

double sl__lovasz_flat(struct sl__ey *v, int64_t n, int64_t gts_count)
{
    if (n <= 0) {
        return 0.0; /* reference: an empty set of pixels (or no positive error) has loss 0 */
    }
    struct sl__ey *tmp = n >= RADIX_MIN ? malloc(sizeof *tmp * (size_t)n) : NULL;
    sl__sort_desc(v, tmp, n); /* without tmp: qsort */
    free(tmp);
    /* jaccard_k = 1 - (gts - cumsum(y)_k) / (gts + cumsum(1-y)_k); grad = its first difference.
     * Ties are harmless: a tied run contributes relu(e) times the sum of its gradients, which
     * depends only on the run's label counts. */
    const double gts = (double)gts_count;
    double loss = 0, cum_y = 0, cum_ny = 0, prev = 0;
    for (int64_t i = 0; i < n; i++) {
        cum_y += v[i].y;
        cum_ny += 1 - v[i].y;
        double jac = 1.0 - (gts - cum_y) / (gts + cum_ny);
        double grad = jac - prev;
        prev = jac;
        if (v[i].e > 0) {
            loss += v[i].e * grad;
        }
    }
    return loss;
}

/* ---- 8-byte items: a key in the high 32 bits, a payload in the low 32 ---------------------- */

/* One pass of the radix sort on the pool: block b of src is counted into hist[b], then
 * scattered to dst after the blocks before it, so the pass stays stable. */
struct radix_pass {
    const uint64_t *src;
    uint64_t *dst;
    int64_t n;
    int nb;
    int shift;
    int64_t (*hist)[RADIX_SIZE];
};

static void radix_count(void *arg, int64_t b)
{
    struct radix_pass *r = arg;
    const int64_t lo = b * r->n / r->nb, hi = (b + 1) * r->n / r->nb;
    int64_t *h = r->hist[b];
    memset(h, 0, sizeof r->hist[b]);
    for (int64_t i = lo; i < hi; i++) {
        h[(r->src[i] >> r->shift) & (RADIX_SIZE - 1)]++;
    }
}

static void radix_scatter(void *arg, int64_t b)
{
    struct radix_pass *r = arg;
    const int64_t lo = b * r->n / r->nb, hi = (b + 1) * r->n / r->nb;
    int64_t *h = r->hist[b];
    for (int64_t i = lo; i < hi; i++) {
        r->dst[h[(r->src[i] >> r->shift) & (RADIX_SIZE - 1)]++] = r->src[i];
    }
}

/* sl__radix_u64 on the pool: every pass counts and scatters its blocks in parallel. Returns
 * false (v untouched) when the histograms cannot be allocated. */
static bool radix_u64_pool(struct sl_pool *pool, uint64_t *v, uint64_t *tmp, int64_t n)
{
    struct radix_pass r = {.n = n, .nb = RADIX_BLOCKS};
    r.hist = malloc(sizeof *r.hist * RADIX_BLOCKS);
    if (!r.hist) {
        return false;
    }
    uint64_t *src = v, *dst = tmp;
    for (int p = 0; p < RADIX_PASSES; p++) {
        r.src = src;
        r.dst = dst;
        r.shift = 32 + p * RADIX_BITS;
        sl_pool_parallel_for(pool, r.nb, radix_count, &r);
        int64_t sum = 0;
        bool one_digit = false;
        for (int d = 0; d < RADIX_SIZE; d++) {
            int64_t total = 0;
            for (int b = 0; b < r.nb; b++) {
                const int64_t c = r.hist[b][d];
                r.hist[b][d] = sum + total;
                total += c;
            }
            one_digit = one_digit || total == n;
            sum += total;
        }
        if (one_digit) {
            continue; /* a digit every key shares leaves the order as it is */
        }
        sl_pool_parallel_for(pool, r.nb, radix_scatter, &r);
        src = dst;
        dst = src == v ? tmp : v;
    }
    free(r.hist);
    if (src != v) {
        memcpy(v, src, sizeof *v * (size_t)n);
    }
    return true;
}

void sl__radix_u64(struct sl_pool *pool, uint64_t *v, uint64_t *tmp, int64_t n)
{
    if (pool && sl_pool_threads(pool) > 0 && tmp && n >= RADIX_POOL_MIN &&
        radix_u64_pool(pool, v, tmp, n)) {
        return;
    }
    int64_t(*hist)[RADIX_SIZE] = n >= RADIX_MIN && tmp ? calloc(RADIX_PASSES, sizeof *hist) : NULL;
    if (!hist) {
        qsort(v, (size_t)(n > 0 ? n : 0), sizeof *v, cmp_key);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const uint32_t k = (uint32_t)(v[i] >> 32);
        for (int p = 0; p < RADIX_PASSES; p++) {
            hist[p][(k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1)]++;
        }
    }
    uint64_t *src = v, *dst = tmp;
    for (int p = 0; p < RADIX_PASSES; p++) {
        int64_t *h = hist[p];
        const int shift = 32 + p * RADIX_BITS;
        if (h[(src[0] >> shift) & (RADIX_SIZE - 1)] == n) {
            continue;
        }
        digit_offsets(h);
        for (int64_t i = 0; i < n; i++) {
            dst[h[(src[i] >> shift) & (RADIX_SIZE - 1)]++] = src[i];
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    free(hist);
    if (src != v) {
        memcpy(v, src, sizeof *v * (size_t)n);
    }
}

/* The float whose sl__key_desc is k. */
static float key_float(uint32_t k)
{
    const uint32_t asc = ~k;
    const uint32_t b = (asc & 0x80000000u) ? asc ^ 0x80000000u : ~asc;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* The error and label of an item (see sl__lovasz_items). */
static double item_error(uint64_t it, bool softmax, int *y)
{
    const uint32_t pay = (uint32_t)it;
    if (!softmax) {
        *y = (int)(pay & 1);
        return 1.0 + (double)key_float((uint32_t)(it >> 32));
    }
    const uint32_t pbits = pay & 0x7fffffffu;
    float p;
    memcpy(&p, &pbits, sizeof p);
    *y = (int)(pay >> 31);
    return *y ? 1.0 - (double)p : (double)p;
}

/* qsort order of softmax items by decreasing error. */
static int cmp_item_softmax(const void *a, const void *b)
{
    int ya, yb;
    double x = item_error(*(const uint64_t *)a, true, &ya);
    double z = item_error(*(const uint64_t *)b, true, &yb);
    return (x < z) - (x > z);
}

double sl__lovasz_items(struct sl_pool *pool, uint64_t *v, int64_t n, int64_t gts_count,
                        bool softmax)
{
    if (n <= 0) {
        return 0.0;
    }
    uint64_t *tmp = n >= RADIX_MIN ? malloc(sizeof *tmp * (size_t)n) : NULL;
    sl__radix_u64(pool, v, tmp, n); /* without tmp: qsort */
    free(tmp);
    if (softmax) {
        /* the key is the error rounded to float: order each run of equal keys by the error */
        int64_t i = 0;
        while (i < n) {
            int64_t j = i + 1;
            while (j < n && (v[j] >> 32) == (v[i] >> 32)) {
                j++;
            }
            if (j - i > 1) {
                qsort(v + i, (size_t)(j - i), sizeof *v, cmp_item_softmax);
            }
            i = j;
        }
    }
    /* as in sl__lovasz_flat */
    const double gts = (double)gts_count;
    double loss = 0, cum_y = 0, cum_ny = 0, prev = 0;
    for (int64_t i = 0; i < n; i++) {
        int y;
        const double e = item_error(v[i], softmax, &y);
        cum_y += y;
        cum_ny += 1 - y;
        double jac = 1.0 - (gts - cum_y) / (gts + cum_ny);
        double grad = jac - prev;
        prev = jac;
        if (e > 0) {
            loss += e * grad;
        }
    }
    return loss;
}

/* ---- Lovász-Softmax on the float bits of p_c -------------------------------------------- */

/* qsort order of 32-bit keys, increasing. */
static int cmp_u32(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, z = *(const uint32_t *)b;
    return (x > z) - (x < z);
}

void sl__radix_u32(uint32_t *v, uint32_t *tmp, int64_t n)
{
    int64_t(*hist)[RADIX_SIZE] = n >= RADIX_MIN && tmp ? calloc(RADIX_PASSES, sizeof *hist) : NULL;
    if (!hist) {
        qsort(v, (size_t)(n > 0 ? n : 0), sizeof *v, cmp_u32);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const uint32_t k = v[i];
        hist[0][k & (RADIX_SIZE - 1)]++;
        hist[1][(k >> RADIX_BITS) & (RADIX_SIZE - 1)]++;
        hist[2][k >> (2 * RADIX_BITS)]++;
    }
    uint32_t *src = v, *dst = tmp;
    for (int p = 0; p < RADIX_PASSES; p++) {
        int64_t *h = hist[p];
        const int shift = p * RADIX_BITS;
        if (h[(src[0] >> shift) & (RADIX_SIZE - 1)] == n) {
            continue; /* a digit every key shares leaves the order as it is */
        }
        digit_offsets(h);
        for (int64_t i = 0; i < n; i++) {
            dst[h[(src[i] >> shift) & (RADIX_SIZE - 1)]++] = src[i];
        }
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    free(hist);
    if (src != v) {
        memcpy(v, src, sizeof *v * (size_t)n);
    }
}

/* The probability whose float bits are b. */
static double bits_prob(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return (double)f;
}

double sl__lovasz_softmax_lists(uint32_t *fg, int64_t nfg, uint32_t *bg, int64_t nbg,
                                int64_t gts_count, uint32_t *tmp)
{
    if (gts_count == 0) {
        /* no positive: every Jaccard value is 1 - 0 / cum_ny = 1, so the gradient is 1 at the
         * largest error and 0 after it, and the loss is the largest error, exactly */
        uint32_t mx = 0;
        for (int64_t j = 0; j < nbg; j++) {
            mx = bg[j] > mx ? bg[j] : mx;
        }
        return bits_prob(mx);
    }
    /* non-negative floats order as their bits: fg by increasing p is by decreasing 1 - p, bg
     * by increasing p read from the end is by decreasing p */
    sl__radix_u32(fg, tmp, nfg);
    sl__radix_u32(bg, tmp, nbg);
    /* the merge of the two in decreasing error, summed as sl__lovasz_flat does */
    const double gts = (double)gts_count;
    double loss = 0, cum_y = 0, cum_ny = 0, prev = 0;
    int64_t i = 0, j = nbg - 1;
    while (i < nfg || j >= 0) {
        const double ef = i < nfg ? 1.0 - bits_prob(fg[i]) : -1.0;
        /* the background errors above the next foreground one (ties: background first) */
        while (j >= 0) {
            const double eb = bits_prob(bg[j]);
            if (eb < ef) {
                break;
            }
            cum_ny += 1;
            const double jac = 1.0 - (gts - cum_y) / (gts + cum_ny);
            loss += eb * (jac - prev);
            prev = jac;
            j--;
        }
        if (i < nfg) {
            cum_y += 1;
            const double jac = 1.0 - (gts - cum_y) / (gts + cum_ny);
            loss += ef * (jac - prev);
            prev = jac;
            i++;
        }
    }
    return loss;
}
