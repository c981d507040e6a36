/* test_lovasz.c - the Lovász sort and loss: the radix sorts against qsort (negative keys, -0
 * and +0, ties, errors one float apart), and the loss against a brute-force evaluation of the
 * Lovász extension as an integral over thresholds, which needs no sort at all. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "internal.h"

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

static const struct check_test tests[] = {
    CHECK_TEST(test_key_desc),  CHECK_TEST(test_radix_u64),     CHECK_TEST(test_radix_u64_pool),
    CHECK_TEST(test_sort_desc), CHECK_TEST(test_lovasz_losses),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_lovasz", tests);
}
