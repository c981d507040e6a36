/* test_lovasz.c - the Lovász sort and loss: the radix sorts against qsort (negative keys, -0
 * and +0, ties, errors one float apart), and the loss against a brute-force evaluation of the
 * Lovász extension as an integral over thresholds, which needs no sort at all. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "internal.h"
#include "segloss.h"

/* xorshift64*: reproducible inputs */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double unit(uint64_t *s)
{
    return (double)(next(s) >> 11) / 9007199254740992.0;
}

/* A float of a mix meant to hurt: negatives, both zeros, ties, huge and tiny magnitudes. */
static float nasty(uint64_t *s)
{
    switch (next(s) % 8) {
    case 0:
        return 0.0f;
    case 1:
        return -0.0f;
    case 2:
        return (float)(next(s) % 5) - 2.0f; /* ties */
    case 3:
        return (float)((unit(s) - 0.5) * 1e30);
    case 4:
        return (float)((unit(s) - 0.5) * 1e-30);
    default:
        return (float)((unit(s) - 0.5) * 10);
    }
}

static int cmp_float_desc(const void *a, const void *b)
{
    float x = *(const float *)a, z = *(const float *)b;
    return (x < z) - (x > z);
}

static void test_key_desc(void)
{
    uint64_t seed = 7;
    int64_t bad = 0;
    for (int i = 0; i < 100000; i++) {
        float a = nasty(&seed), b = nasty(&seed);
        uint32_t ka = sl__key_desc(a), kb = sl__key_desc(b);
        if (a > b) {
            bad += !(ka < kb);
        } else if (a < b) {
            bad += !(ka > kb);
        } else if (a != 0) {
            bad += ka != kb;
        }
    }
    CHECK_INT(bad, 0);
    /* -0 after +0, both between the smallest positive and the largest negative float */
    CHECK(sl__key_desc(0.0f) < sl__key_desc(-0.0f));
    CHECK(sl__key_desc(1e-45f) < sl__key_desc(0.0f));
    CHECK(sl__key_desc(-0.0f) < sl__key_desc(-1e-45f));
    CHECK(sl__key_desc(INFINITY) < sl__key_desc(3.4e38f));
    CHECK(sl__key_desc(-3.4e38f) < sl__key_desc(-INFINITY));
}

/* sl__radix_u64 against qsort: same float order, and stable (the payload is the input index);
 * with a pool for many items. */
static void check_radix_u64(struct sl_pool *pool, int64_t n, uint64_t seed)
{
    uint64_t *v = malloc(sizeof *v * (size_t)n), *tmp = malloc(sizeof *tmp * (size_t)n);
    float *f = malloc(sizeof *f * (size_t)n), *g = malloc(sizeof *g * (size_t)n);
    if (!v || !tmp || !f || !g) {
        CHECK(0);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        f[i] = nasty(&seed);
        v[i] = (uint64_t)sl__key_desc(f[i]) << 32 | (uint64_t)i;
    }
    memcpy(g, f, sizeof *f * (size_t)n);
    qsort(g, (size_t)n, sizeof *g, cmp_float_desc);
    sl__radix_u64(pool, v, tmp, n);
    int64_t order = 0, stable = 0;
    for (int64_t i = 0; i < n; i++) {
        const float got = f[(uint32_t)v[i]];
        order += !(got == g[i]); /* as floats: -0 == +0 */
        if (i > 0 && v[i] >> 32 == v[i - 1] >> 32) {
            stable += (uint32_t)v[i] < (uint32_t)v[i - 1];
        }
    }
    CHECK_INT(order, 0);
    CHECK_INT(stable, 0);
    free(v);
    free(tmp);
    free(f);
    free(g);
}

static int cmp_double_desc(const void *a, const void *b)
{
    double x = *(const double *)a, z = *(const double *)b;
    return (x < z) - (x > z);
}

/* sl__sort_desc orders doubles exactly, also those that round to the same float. */
static void check_sort_desc(int64_t n, uint64_t seed)
{
    struct sl__ey *v = malloc(sizeof *v * (size_t)n), *tmp = malloc(sizeof *tmp * (size_t)n);
    double *g = malloc(sizeof *g * (size_t)n);
    if (!v || !tmp || !g) {
        CHECK(0);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double e = nasty(&seed);
        if (next(&seed) % 4 == 0) {
            /* within one float of 1: 1 - 2^-30 .. 1 + 2^-30 */
            e = 1.0 + (unit(&seed) - 0.5) * 1.9e-9;
        }
        v[i].e = g[i] = e;
        v[i].y = (uint8_t)(i & 1);
    }
    qsort(g, (size_t)n, sizeof *g, cmp_double_desc);
    sl__sort_desc(v, tmp, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        bad += !(v[i].e == g[i]);
    }
    CHECK_INT(bad, 0);
    free(v);
    free(tmp);
    free(g);
}

/* The Lovász hinge/softmax loss by its definition as an integral (Berman et al. 2018, eq. 8-9):
 * for errors e >= 0 the extension is the integral over t > 0 of Delta({i : e_i > t}), with
 * Delta(M) = 1 - |gt \ M| / |gt u M| the Jaccard loss of mispredicting M. Piecewise constant
 * between the distinct errors, so a sum over them; O(n^2), no ordering of ties involved. */
static double lovasz_brute(const double *e, const uint8_t *y, int64_t n)
{
    double *t = malloc(sizeof *t * (size_t)(n + 1));
    int64_t gts = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        gts += y[i];
        if (e[i] > 0) {
            t[m++] = e[i];
        }
    }
    qsort(t, (size_t)m, sizeof *t, cmp_double_desc);
    t[m] = 0;
    double loss = 0;
    for (int64_t k = 0; k < m; k++) {
        if (t[k] == t[k + 1]) {
            continue;
        }
        /* on (t[k+1], t[k]) the set is {e >= t[k]} */
        int64_t pos_in = 0, neg_in = 0;
        for (int64_t i = 0; i < n; i++) {
            if (e[i] >= t[k]) {
                pos_in += y[i];
                neg_in += !y[i];
            }
        }
        const double delta = 1.0 - (double)(gts - pos_in) / (double)(gts + neg_in);
        loss += (t[k] - t[k + 1]) * delta;
    }
    free(t);
    return loss;
}

static void test_lovasz_losses(void)
{
    uint64_t seed = 99;
    const int64_t sizes[] = {1, 2, 7, 255, 256, 1000, 3000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (int rep = 0; rep < 3; rep++) {
            const int64_t n = sizes[si];
            float *x = malloc(sizeof *x * (size_t)n), *p = malloc(sizeof *p * (size_t)n);
            uint8_t *y = malloc((size_t)n);
            double *e = malloc(sizeof *e * (size_t)n);
            struct sl__ey *v = malloc(sizeof *v * (size_t)n);
            uint64_t *it = malloc(sizeof *it * (size_t)n);
            if (!x || !p || !y || !e || !v || !it) {
                CHECK(0);
                return;
            }
            for (int64_t i = 0; i < n; i++) {
                /* logits on a coarse grid make many tied errors with different labels */
                x[i] = rep == 0 ? (float)((int)(next(&seed) % 9) - 4) * 0.5f
                                : (float)(6 * (unit(&seed) - 0.5));
                y[i] = (uint8_t)(next(&seed) % 3 == 0);
                p[i] = rep == 0 ? (float)(next(&seed) % 5) * 0.25f : (float)unit(&seed);
            }
            /* hinge: e = 1 - x (2y - 1) */
            int64_t gts = 0, nv = 0, ni = 0;
            for (int64_t i = 0; i < n; i++) {
                e[i] = y[i] ? 1.0 - (double)x[i] : 1.0 + (double)x[i];
                gts += y[i];
                v[nv].e = e[i];
                v[nv].y = y[i];
                nv += e[i] > 0;
                const float k = y[i] ? -x[i] : x[i];
                it[ni] = (uint64_t)sl__key_desc(k) << 32 | y[i];
                ni += e[i] > 0;
            }
            const double want = lovasz_brute(e, y, n);
            CHECK_CLOSE(sl__lovasz_flat(v, nv, gts), want, 1e-12, 1e-14);
            CHECK_CLOSE(sl__lovasz_items(NULL, it, ni, gts, false), want, 1e-12, 1e-14);
            /* softmax: e = |y - p| */
            ni = 0;
            for (int64_t i = 0; i < n; i++) {
                e[i] = fabs((y[i] ? 1.0 : 0.0) - (double)p[i]);
                uint32_t bits;
                memcpy(&bits, &p[i], sizeof bits);
                it[ni] = (uint64_t)sl__key_desc((float)e[i]) << 32 | (uint64_t)y[i] << 31 | bits;
                ni += e[i] > 0;
            }
            CHECK_CLOSE(sl__lovasz_items(NULL, it, ni, gts, true), lovasz_brute(e, y, n), 1e-12,
                        1e-14);
            free(x);
            free(p);
            free(y);
            free(e);
            free(v);
            free(it);
        }
    }
    /* hand calculation: errors [2, 1] with labels [1, 0], gts 1: J_1 = 1 - 0/1 = 1,
     * J_2 = 1 - 0/2 = 1 -> loss = 2 * 1 + 1 * 0 = 2 */
    struct sl__ey h[2] = {{1.0, 0, 0}, {2.0, 0, 1}};
    CHECK_CLOSE(sl__lovasz_flat(h, 2, 1), 2.0, 0, 1e-15);
    CHECK_CLOSE(sl__lovasz_flat(h, 0, 1), 0.0, 0, 0);
}

/* the sizes around the radix sort's cut-overs, each with its own seed */
static const int64_t sizes[] = {0, 1, 2, 100, 255, 256, 257, 5000, 200000, 300001};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static void test_radix_u64(void)
{
    for (size_t i = 0; i < N_SIZES; i++) {
        check_radix_u64(NULL, sizes[i], 1000 + i);
    }
}

static void test_radix_u64_pool(void)
{
    struct sl_pool *pool = sl_pool_new(2, 4);
    for (size_t i = 0; i < N_SIZES; i++) {
        check_radix_u64(pool, sizes[i], 1000 + i);
    }
    sl_pool_free(pool);
}

static void test_sort_desc(void)
{
    for (size_t i = 0; i < N_SIZES; i++) {
        check_sort_desc(sizes[i], 2000 + i);
    }
}

/* sl__radix_u32 against qsort. */
static int cmp_u32_inc(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, z = *(const uint32_t *)b;
    return (x > z) - (x < z);
}

static void test_radix_u32(void)
{
    for (size_t s = 0; s < N_SIZES; s++) {
        const int64_t n = sizes[s];
        uint64_t seed = 3000 + s;
        uint32_t *v = malloc(sizeof *v * (size_t)(n + 1)), *g = malloc(sizeof *g * (size_t)(n + 1));
        uint32_t *tmp = malloc(sizeof *tmp * (size_t)(n + 1));
        if (!v || !g || !tmp) {
            CHECK(0);
            return;
        }
        for (int64_t i = 0; i < n; i++) {
            /* full range, or probabilities' bits, or a few values (long runs) */
            const uint64_t r = next(&seed);
            v[i] = s % 3 == 0   ? (uint32_t)r
                   : s % 3 == 1 ? (uint32_t)(r % 0x3f800001u)
                                : (uint32_t)(r % 7) << 20;
        }
        memcpy(g, v, sizeof *v * (size_t)n);
        qsort(g, (size_t)n, sizeof *g, cmp_u32_inc);
        sl__radix_u32(v, tmp, n);
        CHECK(n == 0 || memcmp(v, g, sizeof *v * (size_t)n) == 0);
        free(v);
        free(g);
        free(tmp);
    }
}

/* A probability that makes ties across labels (a quarter grid, so 1 - p of one label equals
 * p of the other), exact 0, 1 and -0, or any float in [0, 1]. */
static float prob(uint64_t *s)
{
    switch (next(s) % 8) {
    case 0:
        return (float)(next(s) % 5) * 0.25f;
    case 1:
        return next(s) % 2 ? 0.0f : -0.0f;
    case 2:
        return 1.0f;
    case 3:
        return (float)(next(s) % 256) / 255.0f;
    default:
        return (float)unit(s);
    }
}

static uint32_t prob_bits(float p)
{
    uint32_t b;
    memcpy(&b, &p, sizeof b);
    return b & 0x80000000u ? 0 : b;
}

/* sl__lovasz_softmax_lists (float bits of p, two sorted lists merged) against the earlier
 * packed-item path (sl__lovasz_items, softmax items), the double path (sl__lovasz_flat) and the
 * brute-force integral; with no positive, exactly the largest error. */
static void test_softmax_lists(void)
{
    uint64_t seed = 4242;
    const int64_t ns[] = {1, 2, 9, 255, 256, 257, 2000, 5000, 100000};
    for (size_t si = 0; si < sizeof ns / sizeof ns[0]; si++) {
        for (int rep = 0; rep < 3; rep++) {
            const int64_t n = ns[si];
            float *p = malloc(sizeof *p * (size_t)n);
            uint8_t *y = malloc((size_t)n);
            double *e = malloc(sizeof *e * (size_t)n);
            struct sl__ey *v = malloc(sizeof *v * (size_t)n);
            uint64_t *it = malloc(sizeof *it * (size_t)n);
            uint32_t *fg = malloc(sizeof *fg * (size_t)n), *bg = malloc(sizeof *bg * (size_t)n);
            uint32_t *tmp = malloc(sizeof *tmp * (size_t)n);
            if (!p || !y || !e || !v || !it || !fg || !bg || !tmp) {
                CHECK(0);
                return;
            }
            /* rep 2: no positive at all */
            const uint64_t share = rep == 0 ? 2 : rep == 1 ? 19 : 0;
            int64_t gts = 0, nv = 0, ni = 0, nfg = 0, nbg = 0;
            for (int64_t i = 0; i < n; i++) {
                p[i] = prob(&seed);
                y[i] = (uint8_t)(share && next(&seed) % share == 0);
                e[i] = fabs((y[i] ? 1.0 : 0.0) - (double)p[i]);
                gts += y[i];
                v[nv] = (struct sl__ey){.e = e[i], .y = y[i]};
                nv += e[i] > 0;
                uint32_t bits;
                memcpy(&bits, &p[i], sizeof bits);
                it[ni] = (uint64_t)sl__key_desc((float)e[i]) << 32 | (uint64_t)y[i] << 31 |
                         (bits & 0x7fffffffu);
                ni += e[i] > 0;
                if (e[i] > 0) {
                    if (y[i]) {
                        fg[nfg++] = prob_bits(p[i]);
                    } else {
                        bg[nbg++] = prob_bits(p[i]);
                    }
                }
            }
            const double got = sl__lovasz_softmax_lists(fg, nfg, bg, nbg, gts, tmp);
            const double flat = sl__lovasz_flat(v, nv, gts);
            CHECK_CLOSE(got, flat, 1e-13, 1e-15);
            CHECK_CLOSE(got, sl__lovasz_items(NULL, it, ni, gts, true), 1e-13, 1e-15);
            if (n <= 5000) {
                CHECK_CLOSE(got, lovasz_brute(e, y, n), 1e-12, 1e-14);
            }
            if (gts == 0) {
                double mx = 0;
                for (int64_t i = 0; i < n; i++) {
                    mx = e[i] > mx ? e[i] : mx;
                }
                CHECK(got == mx && flat == mx);
            }
            free(p);
            free(y);
            free(e);
            free(v);
            free(it);
            free(fg);
            free(bg);
            free(tmp);
        }
    }
    /* hand calculation: p = [0.5 (class), 0.75, 0.25]: errors 0.5 (fg), 0.75, 0.25, gts 1;
     * order 0.75 (bg): J = 1 - 1/2 = 0.5; 0.5 (fg): J = 1 - 0/2 = 1; 0.25 (bg): J = 1 - 0/3 = 1;
     * loss = 0.75 * 0.5 + 0.5 * 0.5 + 0.25 * 0 = 0.625 */
    uint32_t hf[1] = {prob_bits(0.5f)}, hb[2] = {prob_bits(0.75f), prob_bits(0.25f)}, ht[2];
    CHECK_CLOSE(sl__lovasz_softmax_lists(hf, 1, hb, 2, 1, ht), 0.625, 0, 1e-15);
}

/* Lovász-Softmax through sl_score on float32 probabilities (so the probabilities it sorts are
 * the test's own floats): against the reference's rules written here on sl__lovasz_flat
 * (classes present or all, per image or pooled, ignored pixels left out, uint8 and int32
 * targets), and the same bits with no pool, one worker and two. */
static double lsm_expected(const float *x, const int32_t *t, int64_t N, int64_t C, int64_t S,
                           int64_t ignore, bool all, bool per_image)
{
    struct sl__ey *v = malloc(sizeof *v * (size_t)(N * S));
    double total = 0;
    const int64_t groups = per_image ? N : 1, per = per_image ? 1 : N;
    for (int64_t gi = 0; gi < groups; gi++) {
        double sum = 0;
        int k = 0;
        for (int64_t c = 0; c < C; c++) {
            int64_t n = 0, gts = 0;
            for (int64_t i = gi * per; i < (gi + 1) * per; i++) {
                for (int64_t s = 0; s < S; s++) {
                    const int32_t lab = t[i * S + s];
                    if (lab == ignore) {
                        continue;
                    }
                    const double e = fabs((lab == c ? 1.0 : 0.0) - x[(i * C + c) * S + s]);
                    gts += lab == c;
                    v[n] = (struct sl__ey){.e = e, .y = (uint8_t)(lab == c)};
                    n += e > 0;
                }
            }
            if (!all && gts == 0) {
                continue; /* reference: classes 'present' skips fg.sum() == 0 */
            }
            sum += sl__lovasz_flat(v, n, gts);
            k++;
        }
        total += k ? sum / k : 0.0;
    }
    free(v);
    return total / (double)groups;
}

static void test_softmax_score(void)
{
    struct sl_pool *pools[3] = {NULL, sl_pool_new(1, 4), sl_pool_new(2, 4)};
    uint64_t seed = 777;
    /* 2 x 5 x 128 x 128 runs on the pool; 3 x 4 x 9 x 11 on the calling thread */
    const int64_t shapes[2][4] = {{2, 5, 128, 128}, {3, 4, 9, 11}};
    for (int sh = 0; sh < 2; sh++) {
        const int64_t N = shapes[sh][0], C = shapes[sh][1], H = shapes[sh][2], W = shapes[sh][3];
        const int64_t S = H * W;
        float *x = malloc(sizeof *x * (size_t)(N * C * S));
        int32_t *t = malloc(sizeof *t * (size_t)(N * S));
        uint8_t *t8 = malloc((size_t)(N * S));
        if (!x || !t || !t8) {
            CHECK(0);
            return;
        }
        for (int64_t i = 0; i < N; i++) {
            for (int64_t s = 0; s < S; s++) {
                /* class C-1 never appears, class C-2 not in image 0; some pixels ignored */
                int32_t lab = (int32_t)(next(&seed) % (uint64_t)(C - 1));
                if (i == 0 && lab == C - 2) {
                    lab = 0;
                }
                t[i * S + s] = next(&seed) % 10 == 0 ? 255 : lab;
                t8[i * S + s] = (uint8_t)t[i * S + s];
                for (int64_t c = 0; c < C; c++) {
                    x[(i * C + c) * S + s] = prob(&seed);
                }
            }
        }
        for (int dt = 0; dt < 2; dt++) {
            for (int all = 0; all < 2; all++) {
                for (int pi = 0; pi < 2; pi++) {
                    struct sl_request req;
                    sl_request_init(&req);
                    req.prediction = (struct sl_tensor){x, SL_DT_F32, 4, {N, C, H, W}};
                    req.target = dt ? (struct sl_tensor){t, SL_DT_I32, 3, {N, H, W}}
                                    : (struct sl_tensor){t8, SL_DT_U8, 3, {N, H, W}};
                    req.mode = SL_MODE_MULTICLASS;
                    req.pred_type = SL_PRED_PROBABILITIES;
                    req.has_ignore = true;
                    req.ignore_index = 255;
                    struct sl_spec s;
                    sl_spec_init(&s, sl_find_loss("lovasz_softmax"));
                    s.values[SL_P_LSM_CLASSES] =
                        (struct sl_value){.kind = SL_V_ENUM, .choice = all};
                    s.values[SL_P_LSM_PER_IMAGE] = (struct sl_value){.kind = SL_V_BOOL, .b = pi};
                    req.losses = &s;
                    req.nlosses = 1;
                    req.nmetrics = 0;
                    const double want = lsm_expected(x, t, N, C, S, 255, all, pi);
                    double got[3];
                    for (int k = 0; k < 3; k++) {
                        struct sl_result *res = NULL;
                        char msg[256];
                        got[k] = NAN;
                        if (sl_score(&req, pools[k], &res, msg, sizeof msg) == 0) {
                            got[k] = res->losses[0].value;
                            sl_result_free(res);
                        }
                    }
                    CHECK_CLOSE(got[0], want, 1e-12, 1e-15);
                    CHECK(got[1] == got[0] && got[2] == got[0]);
                }
            }
        }
        free(x);
        free(t);
        free(t8);
    }
    sl_pool_free(pools[1]);
    sl_pool_free(pools[2]);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_key_desc),      CHECK_TEST(test_radix_u64),     CHECK_TEST(test_radix_u64_pool),
    CHECK_TEST(test_sort_desc),     CHECK_TEST(test_lovasz_losses), CHECK_TEST(test_radix_u32),
    CHECK_TEST(test_softmax_lists), CHECK_TEST(test_softmax_score),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_lovasz", tests);
}
