/* test_distance.c - the exact EDT against a brute-force minimum over every seed, and the
 * connected-component labelling against a brute-force BFS flood fill, on random grids from a
 * fixed-seed xorshift generator, plus hand-checked cases. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "internal.h"

/* xorshift64 (Marsaglia 2003), fixed seed so every run sees the same cases. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* Uniform in [0, 1). */
static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [lo, hi]. */
static int64_t rng_int(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* A density for a random case: sometimes none, sometimes all, else uniform in (0, 1). */
static double rng_density(void)
{
    int64_t r = rng_int(0, 9);
    return r == 0 ? 0.0 : (r == 1 ? 1.0 : rng_unit());
}

static void fill_mask(uint8_t *m, int64_t n, double density)
{
    for (int64_t i = 0; i < n; i++) {
        m[i] = rng_unit() < density ? (uint8_t)rng_int(1, 255) : 0;
    }
}

/* Coordinates of flat index i in a C-order grid of 3 dims (2-D as depth 1). */
static void unflatten(int64_t i, const int64_t *s3, int64_t *c)
{
    c[2] = i % s3[2];
    c[1] = (i / s3[2]) % s3[1];
    c[0] = i / (s3[2] * s3[1]);
}

/* ---- EDT ---------------------------------------------------------------------------------- */

/* For every pixel, min over every seed of the squared physical distance (+inf without seeds). */
static void edt_brute(const uint8_t *seed, const int64_t *s3, const double *sp3, double *out)
{
    int64_t n = s3[0] * s3[1] * s3[2];
    for (int64_t i = 0; i < n; i++) {
        int64_t ci[3];
        unflatten(i, s3, ci);
        double best = INFINITY;
        for (int64_t j = 0; j < n; j++) {
            if (!seed[j]) {
                continue;
            }
            int64_t cj[3];
            unflatten(j, s3, cj);
            double d2 = 0;
            for (int a = 0; a < 3; a++) {
                double d = (double)(ci[a] - cj[a]) * sp3[a];
                d2 += d * d;
            }
            best = d2 < best ? d2 : best;
        }
        out[i] = best;
    }
}

/* Runs one random case; returns true when every pixel matches within relative 1e-12. */
static bool edt_case(int nd, const int64_t *shape, const double *spacing, const uint8_t *seed)
{
    int64_t s3[3] = {1, 1, 1};
    double sp3[3] = {1, 1, 1};
    for (int a = 0; a < nd; a++) {
        s3[3 - nd + a] = shape[a];
        sp3[3 - nd + a] = spacing ? spacing[a] : 1.0;
    }
    int64_t n = s3[0] * s3[1] * s3[2];
    double *got = malloc(sizeof(double) * (size_t)n);
    double *want = malloc(sizeof(double) * (size_t)n);
    bool ok = got && want && sl__edt_sq(seed, nd, shape, spacing, got) == 0;
    if (ok) {
        edt_brute(seed, s3, sp3, want);
    }
    for (int64_t i = 0; ok && i < n; i++) {
        bool same = isinf(want[i]) ? (isinf(got[i]) && got[i] > 0)
                                   : fabs(got[i] - want[i]) <= 1e-12 * fabs(want[i]);
        if (!same) {
            fprintf(stderr, "edt nd=%d shape[0]=%lld pixel %lld: got %.17g want %.17g\n", nd,
                    (long long)shape[0], (long long)i, got[i], want[i]);
            ok = false;
        }
    }
    free(got);
    free(want);
    return ok;
}

static void test_edt_random_2d(void)
{
    uint8_t seed[12 * 12];
    for (int c = 0; c < 200; c++) {
        int64_t shape[2] = {rng_int(1, 12), rng_int(1, 12)};
        double spacing[2] = {0.5 + 2.5 * rng_unit(), 0.5 + 2.5 * rng_unit()};
        fill_mask(seed, shape[0] * shape[1], rng_density());
        CHECK(edt_case(2, shape, spacing, seed));
    }
}

static void test_edt_random_3d(void)
{
    uint8_t seed[6 * 7 * 8];
    for (int c = 0; c < 100; c++) {
        int64_t shape[3] = {rng_int(1, 6), rng_int(1, 7), rng_int(1, 8)};
        double spacing[3] = {0.5 + 2.5 * rng_unit(), 0.5 + 2.5 * rng_unit(),
                             0.5 + 2.5 * rng_unit()};
        fill_mask(seed, shape[0] * shape[1] * shape[2], rng_density());
        CHECK(edt_case(3, shape, spacing, seed));
    }
}

/* Larger grids (longer strided lines than the gather block, few seeds, unit spacing). */
static void test_edt_random_larger(void)
{
    uint8_t *seed = malloc(40 * 37);
    for (int c = 0; c < 10 && seed; c++) {
        int64_t shape[2] = {rng_int(20, 40), rng_int(20, 37)};
        fill_mask(seed, shape[0] * shape[1], 0.02 * rng_unit());
        CHECK(edt_case(2, shape, NULL, seed));
    }
    free(seed);
    uint8_t *seed3 = malloc(17 * 19 * 11);
    for (int c = 0; c < 5 && seed3; c++) {
        int64_t shape[3] = {rng_int(9, 17), rng_int(9, 19), rng_int(9, 11)};
        double spacing[3] = {2.5, 0.7, 1.0};
        fill_mask(seed3, shape[0] * shape[1] * shape[2], 0.01);
        CHECK(edt_case(3, shape, spacing, seed3));
    }
    free(seed3);
}

static void test_edt_hand(void)
{
    /* 1 x 5, seed at index 0, spacing 2 along the row: (2q)^2 = 0, 4, 16, 36, 64 */
    const uint8_t seed[5] = {1, 0, 0, 0, 0};
    const int64_t shape[2] = {1, 5};
    const double spacing[2] = {1.0, 2.0};
    double out[5];
    CHECK_INT(sl__edt_sq(seed, 2, shape, spacing, out), 0);
    const double want[5] = {0, 4, 16, 36, 64};
    for (int i = 0; i < 5; i++) {
        CHECK_CLOSE(out[i], want[i], 0, 0);
    }

    /* 3 x 3 with the centre seeded, spacing (1, 1): faces 1, corners 1 + 1 = 2 */
    const uint8_t c3[9] = {0, 0, 0, 0, 7, 0, 0, 0, 0};
    const int64_t s3[2] = {3, 3};
    double o3[9];
    CHECK_INT(sl__edt_sq(c3, 2, s3, NULL, o3), 0);
    const double w3[9] = {2, 1, 2, 1, 0, 1, 2, 1, 2};
    for (int i = 0; i < 9; i++) {
        CHECK_CLOSE(o3[i], w3[i], 0, 0);
    }

    /* 2 x 1 x 3 volume, seed at [0, 0, 2], spacing (3, 1, 0.5): [1, 0, 0] is 3^2 + 1^2 = 10 */
    const uint8_t v[6] = {0, 0, 1, 0, 0, 0};
    const int64_t sv[3] = {2, 1, 3};
    const double spv[3] = {3.0, 1.0, 0.5};
    double ov[6];
    CHECK_INT(sl__edt_sq(v, 3, sv, spv, ov), 0);
    const double wv[6] = {1, 0.25, 0, 10, 9.25, 9};
    for (int i = 0; i < 6; i++) {
        CHECK_CLOSE(ov[i], wv[i], 0, 0);
    }
}

static void test_edt_no_seed(void)
{
    uint8_t seed[4 * 5 * 6];
    memset(seed, 0, sizeof seed);
    double out[4 * 5 * 6];
    const int64_t s2[2] = {7, 9};
    CHECK_INT(sl__edt_sq(seed, 2, s2, NULL, out), 0);
    int bad = 0;
    for (int i = 0; i < 7 * 9; i++) {
        bad += !(isinf(out[i]) && out[i] > 0);
    }
    CHECK_INT(bad, 0);
    const int64_t s3[3] = {4, 5, 6};
    const double sp[3] = {0.5, 2, 3};
    CHECK_INT(sl__edt_sq(seed, 3, s3, sp, out), 0);
    bad = 0;
    for (int i = 0; i < 4 * 5 * 6; i++) {
        bad += !(isinf(out[i]) && out[i] > 0);
    }
    CHECK_INT(bad, 0);

    /* one seed: lines away from it stay +inf after the first pass, then fill in (no NaN) */
    seed[4 * 9 + 8] = 1;
    CHECK_INT(sl__edt_sq(seed, 2, s2, NULL, out), 0);
    CHECK_CLOSE(out[0], 4.0 * 4.0 + 8.0 * 8.0, 0, 0);
    bad = 0;
    for (int i = 0; i < 7 * 9; i++) {
        bad += !isfinite(out[i]);
    }
    CHECK_INT(bad, 0);
}

/* ---- connected components ------------------------------------------------------------------ */

/* Flood fill from each unlabelled foreground pixel in raster order, BFS over every neighbour
 * offset allowed by the connectivity (face only for 4 and 6). Returns the number of labels. */
static int32_t label_brute(const uint8_t *mask, const int64_t *s3, bool full, bool is2d,
                           int32_t *out)
{
    int64_t n = s3[0] * s3[1] * s3[2];
    int64_t *queue = malloc(sizeof(int64_t) * (size_t)n);
    int32_t next = 0;
    memset(out, 0, sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; queue && i < n; i++) {
        if (!mask[i] || out[i]) {
            continue;
        }
        out[i] = ++next;
        int64_t head = 0, tail = 0;
        queue[tail++] = i;
        while (head < tail) {
            int64_t c[3];
            unflatten(queue[head++], s3, c);
            for (int dz = -1; dz <= 1; dz++) {
                for (int dy = -1; dy <= 1; dy++) {
                    for (int dx = -1; dx <= 1; dx++) {
                        int nz = (dz != 0) + (dy != 0) + (dx != 0);
                        if (nz == 0 || (!full && nz != 1) || (is2d && dz != 0)) {
                            continue;
                        }
                        int64_t z = c[0] + dz, y = c[1] + dy, x = c[2] + dx;
                        if (z < 0 || z >= s3[0] || y < 0 || y >= s3[1] || x < 0 || x >= s3[2]) {
                            continue;
                        }
                        int64_t j = (z * s3[1] + y) * s3[2] + x;
                        if (mask[j] && !out[j]) {
                            out[j] = next;
                            queue[tail++] = j;
                        }
                    }
                }
            }
        }
    }
    free(queue);
    return next;
}

/* Runs one random case; true when the count and every label match the flood fill. */
static bool ccl_case(int nd, const int64_t *shape, int conn, const uint8_t *mask)
{
    int64_t s3[3] = {1, 1, 1};
    for (int a = 0; a < nd; a++) {
        s3[3 - nd + a] = shape[a];
    }
    int64_t n = s3[0] * s3[1] * s3[2];
    int32_t *got = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *want = malloc(sizeof(int32_t) * (size_t)n);
    bool ok = got && want;
    if (ok) {
        int64_t ng = sl__label(mask, nd, shape, conn, got);
        int32_t nw = label_brute(mask, s3, conn == 8 || conn == 26, nd == 2, want);
        if (ng != nw) {
            fprintf(stderr, "ccl nd=%d conn=%d: %lld components, want %d\n", nd, conn,
                    (long long)ng, nw);
            ok = false;
        }
        for (int64_t i = 0; ok && i < n; i++) {
            if (got[i] != want[i]) {
                fprintf(stderr, "ccl nd=%d conn=%d pixel %lld: label %d, want %d\n", nd, conn,
                        (long long)i, got[i], want[i]);
                ok = false;
            }
        }
    }
    free(got);
    free(want);
    return ok;
}

static void test_ccl_random(void)
{
    uint8_t mask[12 * 12];
    for (int c = 0; c < 200; c++) {
        int64_t shape[2] = {rng_int(1, 12), rng_int(1, 12)};
        fill_mask(mask, shape[0] * shape[1], rng_density());
        CHECK(ccl_case(2, shape, 4, mask));
        CHECK(ccl_case(2, shape, 8, mask));
    }
    uint8_t vol[6 * 7 * 8];
    for (int c = 0; c < 100; c++) {
        int64_t shape[3] = {rng_int(1, 6), rng_int(1, 7), rng_int(1, 8)};
        fill_mask(vol, shape[0] * shape[1] * shape[2], rng_density());
        CHECK(ccl_case(3, shape, 6, vol));
        CHECK(ccl_case(3, shape, 26, vol));
    }
    /* larger grids where provisional labels merge across long U-shapes */
    uint8_t *big = malloc(64 * 64);
    for (int c = 0; c < 10 && big; c++) {
        int64_t shape[2] = {rng_int(32, 64), rng_int(32, 64)};
        fill_mask(big, shape[0] * shape[1], 0.4 + 0.2 * rng_unit());
        CHECK(ccl_case(2, shape, 4, big));
        CHECK(ccl_case(2, shape, 8, big));
    }
    free(big);
}

static void test_ccl_hand(void)
{
    /* diagonal pair: one component with 8-connectivity, two with 4 */
    const uint8_t diag[4] = {1, 0, 0, 1};
    const int64_t s2[2] = {2, 2};
    int32_t out[8];
    CHECK_INT(sl__label(diag, 2, s2, 8, out), 1);
    CHECK_INT(out[0], 1);
    CHECK_INT(out[1], 0);
    CHECK_INT(out[2], 0);
    CHECK_INT(out[3], 1);
    CHECK_INT(sl__label(diag, 2, s2, 4, out), 2);
    CHECK_INT(out[0], 1);
    CHECK_INT(out[3], 2);

    /* anti-diagonal: the later row's pixel reaches up-right */
    const uint8_t anti[4] = {0, 1, 1, 0};
    CHECK_INT(sl__label(anti, 2, s2, 8, out), 1);
    CHECK_INT(out[1], 1);
    CHECK_INT(out[2], 1);
    CHECK_INT(sl__label(anti, 2, s2, 4, out), 2);
    CHECK_INT(out[1], 1);
    CHECK_INT(out[2], 2);

    /* 3-D pair touching only at a corner: one with 26, two with 6 */
    const uint8_t corner[8] = {1, 0, 0, 0, 0, 0, 0, 1};
    const int64_t s3[3] = {2, 2, 2};
    CHECK_INT(sl__label(corner, 3, s3, 26, out), 1);
    CHECK_INT(out[0], 1);
    CHECK_INT(out[7], 1);
    CHECK_INT(sl__label(corner, 3, s3, 6, out), 2);
    CHECK_INT(out[0], 1);
    CHECK_INT(out[7], 2);

    /* a U around an isolated pixel: the arms open provisional labels 1 and 2, the pixel 3; the
     * bottom row merges the arms, so the U is 1 (first pixel [0, 0]) and the pixel 2 */
    const uint8_t u[20] = {1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1};
    const int64_t su[2] = {4, 5};
    int32_t ou[20];
    CHECK_INT(sl__label(u, 2, su, 4, ou), 2);
    CHECK_INT(ou[0], 1);
    CHECK_INT(ou[4], 1);
    CHECK_INT(ou[7], 2);
    CHECK_INT(ou[19], 1);
    CHECK_INT(sl__label(u, 2, su, 8, ou), 2);
    CHECK_INT(ou[4], 1);
    CHECK_INT(ou[7], 2);

    /* background only */
    const uint8_t zero[4] = {0, 0, 0, 0};
    out[0] = out[1] = out[2] = out[3] = 9;
    CHECK_INT(sl__label(zero, 2, s2, 4, out), 0);
    CHECK_INT(out[0] + out[1] + out[2] + out[3], 0);
}

static void test_ccl_invalid(void)
{
    const uint8_t m[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const int64_t s[3] = {2, 2, 2};
    int32_t out[8];
    CHECK_INT(sl__label(m, 2, s, 6, out), SL_EINVAL);
    CHECK_INT(sl__label(m, 2, s, 26, out), SL_EINVAL);
    CHECK_INT(sl__label(m, 3, s, 4, out), SL_EINVAL);
    CHECK_INT(sl__label(m, 3, s, 8, out), SL_EINVAL);
    CHECK_INT(sl__label(m, 2, s, 0, out), SL_EINVAL);
    CHECK_INT(sl__label(m, 1, s, 4, out), SL_EINVAL);
    CHECK_INT(sl__label(m, 3, s, 26, out), 1);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_edt_hand),          CHECK_TEST(test_edt_no_seed),
    CHECK_TEST(test_edt_random_2d),     CHECK_TEST(test_edt_random_3d),
    CHECK_TEST(test_edt_random_larger), CHECK_TEST(test_ccl_hand),
    CHECK_TEST(test_ccl_random),        CHECK_TEST(test_ccl_invalid),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_distance", tests);
}
