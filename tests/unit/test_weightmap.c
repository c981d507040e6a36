/* test_weightmap.c - the U-Net weight map: hand calculations written here, the fast method
 * against the naive one and against a brute-force reference (every distance from every
 * instance pixel, written here), validation errors, the /v1/weight-map body handler in-process
 * (.npy and JSON answers, 422s), and the Accept / Accept-Encoding negotiation of the server. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "internal.h"
#include "proto.h"
#include "segloss.h"
#include "server.h"

/* The border term of the defaults at distance sum d (w0 10, sigma 5): 10 exp(-d^2 / 50). */
static double term(double w0, double sigma, double d)
{
    return w0 * exp(-d * d / (2 * sigma * sigma));
}

/* Runs sl_weight_map on a uint8 target of shape (ndim, shape) and optional instances; returns
 * its code and leaves the map in out. */
static int wmap(const uint8_t *t, int ndim, const int64_t *shape, const struct sl_tensor *inst,
                const struct sl_weight_map_params *p, float *out, char *msg, size_t msglen)
{
    struct sl_tensor tt = {t, SL_DT_U8, ndim, {0}};
    memcpy(tt.shape, shape, sizeof(int64_t) * (size_t)ndim);
    return sl_weight_map(&tt, inst, p, NULL, out, msg, msglen);
}

/* ---- (a) hand cases ----------------------------------------------------------------------- */

/* A 1 x 7 row with one-pixel objects at columns 0 and 6. Every background column c has
 * d1 = min(c, 6 - c) and d2 = max(c, 6 - c), so d1 + d2 = 6 and w = 1 + 10 exp(-36/50). */
static void test_row(void)
{
    const uint8_t t[7] = {1, 0, 0, 0, 0, 0, 1};
    const int64_t shape[3] = {1, 1, 7};
    float w[7];
    char msg[256];
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    CHECK(p.w0 == 10 && p.sigma == 5 && p.neighbors == 2 && p.connectivity == 0);
    CHECK(p.class_weights[0] == 1 && p.class_weights[1] == 1 && p.nspacing == 0);
    p.connectivity = 4;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[0], 1.0, 0, 0);
    CHECK_CLOSE(w[6], 1.0, 0, 0);
    for (int c = 1; c <= 5; c++) {
        CHECK_CLOSE(w[c], 1 + 10 * exp(-36.0 / 50), 1e-7, 0); /* 5.8675225... */
    }
    /* 8-connectivity: the two objects are still apart */
    p.connectivity = 0;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[3], 5.867522559599717, 1e-7, 0);

    /* neighbors 1: column c has d1 = min(c, 6 - c): 1, 2, 3, 2, 1 */
    p.neighbors = 1;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[1], 1 + 10 * exp(-1.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[2], 1 + 10 * exp(-4.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[3], 1 + 10 * exp(-9.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[5], 1 + 10 * exp(-1.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[0], 1.0, 0, 0);

    /* class weights [0.5, 2]: background 0.5 + the term, foreground 2 */
    p.neighbors = 2;
    p.class_weights[0] = 0.5;
    p.class_weights[1] = 2;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[3], 0.5 + 10 * exp(-36.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[0], 2.0, 0, 0);
    CHECK_CLOSE(w[6], 2.0, 0, 0);

    /* spacing [1, 2]: columns are 2 apart, d1 + d2 = 12; w0 3, sigma 4: 0.5 + 3 exp(-144/32) */
    p.nspacing = 2;
    p.spacing[0] = 1;
    p.spacing[1] = 2;
    p.w0 = 3;
    p.sigma = 4;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[2], 0.5 + 3 * exp(-144.0 / 32), 1e-7, 0);

    /* w0 = 0: the class weights alone */
    p.w0 = 0;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[3], 0.5, 0, 0);
    CHECK_CLOSE(w[6], 2.0, 0, 0);
}

/* One object only: with neighbors 2 the border term is 0; with neighbors 1 it is not. */
static void test_one_object(void)
{
    const uint8_t t[7] = {0, 1, 1, 0, 0, 0, 0};
    const int64_t shape[3] = {1, 1, 7};
    float w[7];
    char msg[256];
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    p.class_weights[0] = 0.25;
    p.class_weights[1] = 3;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    for (int c = 0; c < 7; c++) {
        CHECK_CLOSE(w[c], c == 1 || c == 2 ? 3.0 : 0.25, 0, 0);
    }
    p.neighbors = 1;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[0], 0.25 + term(10, 5, 1), 1e-7, 0);
    CHECK_CLOSE(w[6], 0.25 + term(10, 5, 4), 1e-7, 0);
    /* no object at all: neighbors 1 has no term either */
    const uint8_t empty[7] = {0};
    CHECK_INT(wmap(empty, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[3], 0.25, 0, 0);
}

/* 5 x 5 with objects at (0, 0) and (4, 4):
 *   (0, 1): d1 = 1, d2 = |(4, 3)| = 5         -> d1 + d2 = 6
 *   (1, 1): d1 = sqrt 2, d2 = sqrt 18          -> 4 sqrt 2, squared 32
 *   (0, 4): d1 = d2 = 4                        -> 8
 *   (2, 0): d1 = 2, d2 = sqrt(4 + 16) = sqrt 20 -> 2 + sqrt 20 */
static void test_square(void)
{
    uint8_t t[25] = {0};
    t[0] = t[24] = 1;
    const int64_t shape[3] = {1, 5, 5};
    float w[25];
    char msg[256];
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[0 * 5 + 1], 1 + 10 * exp(-36.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[1 * 5 + 1], 1 + 10 * exp(-32.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[0 * 5 + 4], 1 + 10 * exp(-64.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[2 * 5 + 0], 1 + term(10, 5, 2 + sqrt(20)), 1e-7, 0);
    CHECK_CLOSE(w[24], 1.0, 0, 0);

    /* the same pixels with spacing [2, 1] (rows 2 apart):
     *   (0, 1): d1 = 1, d2 = |(8, 3)| = sqrt 73; (1, 1): d1 = |(2, 1)| = sqrt 5,
     *   d2 = |(6, 3)| = sqrt 45 */
    p.nspacing = 2;
    p.spacing[0] = 2;
    p.spacing[1] = 1;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[0 * 5 + 1], 1 + term(10, 5, 1 + sqrt(73)), 1e-7, 0);
    CHECK_CLOSE(w[1 * 5 + 1], 1 + term(10, 5, sqrt(5) + sqrt(45)), 1e-7, 0);
}

/* Three objects: only the two nearest count. 1 x 9 with objects at 0, 4 and 8; column 1 has
 * d1 = 1 (col 0), d2 = 3 (col 4); column 5 has d1 = 1 (col 4), d2 = 3 (col 8): all sums 4. */
static void test_three(void)
{
    const uint8_t t[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const int64_t shape[3] = {1, 1, 9};
    float w[9];
    char msg[256];
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    p.sigma = 2;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[1], 1 + 10 * exp(-16.0 / 8), 1e-7, 0);
    CHECK_CLOSE(w[2], 1 + 10 * exp(-16.0 / 8), 1e-7, 0);
    CHECK_CLOSE(w[7], 1 + 10 * exp(-16.0 / 8), 1e-7, 0);
    CHECK_CLOSE(w[4], 1.0, 0, 0);
}

/* Diagonal neighbours: one object with 8-connectivity, two with 4. 3 x 3, (0,0) and (1,1):
 * 4-conn: (0, 1): d1 = d2 = 1 -> 2; (2, 2): d1 = sqrt 2, d2 = sqrt 8 -> 3 sqrt 2, squared 18. */
static void test_connectivity(void)
{
    const uint8_t t[9] = {1, 0, 0, 0, 1, 0, 0, 0, 0};
    const int64_t shape[3] = {1, 3, 3};
    float w[9];
    char msg[256];
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[1], 1.0, 0, 0); /* 8-connectivity (the default): one object, no term */
    p.connectivity = 8;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[8], 1.0, 0, 0);
    p.connectivity = 4;
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[1], 1 + 10 * exp(-4.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[8], 1 + 10 * exp(-18.0 / 50), 1e-7, 0);
}

/* Instances given: two touching objects that connected components would merge, with labels
 * that are neither consecutive nor small. 1 x 7, target [1, 1, 0, ...], instances [4, 9, 0, ...]:
 * column 2: d1 = 1 (label 9), d2 = 2 (label 4) -> 3; column 6: 5 + 6 = 11. */
static void test_instances(void)
{
    const uint8_t t[7] = {1, 1, 0, 0, 0, 0, 0};
    const int64_t shape[3] = {1, 1, 7};
    float w[7];
    char msg[256];
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    CHECK_INT(wmap(t, 3, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[2], 1.0, 0, 0); /* one component */

    const int32_t li[7] = {4, 9, 0, 0, 0, 0, 0};
    struct sl_tensor inst = {li, SL_DT_I32, 3, {1, 1, 7}};
    CHECK_INT(wmap(t, 3, shape, &inst, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[2], 1 + 10 * exp(-9.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[6], 1 + 10 * exp(-121.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[0], 1.0, 0, 0);

    /* the same with huge int64 labels (the sparse relabelling) and float64 labels */
    const int64_t big[7] = {INT64_C(1) << 60, INT64_C(123456789012), 0, 0, 0, 0, 0};
    struct sl_tensor ib = {big, SL_DT_I64, 3, {1, 1, 7}};
    CHECK_INT(wmap(t, 3, shape, &ib, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[2], 1 + 10 * exp(-9.0 / 50), 1e-7, 0);
    const double fl[7] = {7, 1e15, 0, 0, 0, 0, 0};
    struct sl_tensor ifl = {fl, SL_DT_F64, 4, {1, 1, 1, 7}}; /* [N, 1, *S] */
    CHECK_INT(wmap(t, 3, shape, &ifl, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[6], 1 + 10 * exp(-121.0 / 50), 1e-7, 0);

    /* background is where the target is 0, even under a label: column 2 labelled 5 is
     * background at distance 0 from its own instance; column 3: d1 = 1 (5), d2 = 2 (9) */
    const int32_t l3[7] = {4, 9, 5, 0, 0, 0, 0};
    struct sl_tensor i3 = {l3, SL_DT_I32, 3, {1, 1, 7}};
    CHECK_INT(wmap(t, 3, shape, &i3, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[2], 1 + 10 * exp(-1.0 / 50), 1e-7, 0); /* d1 = 0 (5), d2 = 1 (9) */
    CHECK_CLOSE(w[3], 1 + 10 * exp(-9.0 / 50), 1e-7, 0);
}

/* 3-D: [1, 3, 1, 3] (D = 3, H = 1, W = 3) with objects at (0,0,0) and (2,0,2):
 * (1,0,1): d1 = d2 = sqrt 2 -> squared sum 8; (0,0,2): d1 = d2 = 2 -> 16. */
static void test_3d(void)
{
    uint8_t t[9] = {0};
    t[0] = t[8] = 1;
    const int64_t shape[4] = {1, 3, 1, 3};
    float w[9];
    char msg[256];
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    CHECK_INT(wmap(t, 4, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[4], 1 + 10 * exp(-8.0 / 50), 1e-7, 0);
    CHECK_CLOSE(w[2], 1 + 10 * exp(-16.0 / 50), 1e-7, 0);
    /* [N, 1, D, H, W] is the same */
    const int64_t shape5[5] = {1, 1, 3, 1, 3};
    float w5[9];
    CHECK_INT(wmap(t, 5, shape5, NULL, &p, w5, msg, sizeof msg), 0);
    CHECK(memcmp(w, w5, sizeof w) == 0);
    /* spacing [1, 1, 3]: (1,0,1): d1 = d2 = sqrt(1 + 9) */
    p.nspacing = 3;
    p.spacing[0] = p.spacing[1] = 1;
    p.spacing[2] = 3;
    CHECK_INT(wmap(t, 4, shape, NULL, &p, w, msg, sizeof msg), 0);
    CHECK_CLOSE(w[4], 1 + 10 * exp(-40.0 / 50), 1e-7, 0);

    /* [1, 1, 5, 5]: 2-D with a channel axis, unless 3 spacings make it one 3-D slice */
    uint8_t sq[25] = {0};
    sq[0] = sq[24] = 1;
    const int64_t s4[4] = {1, 1, 5, 5};
    float a[25], b[25];
    sl_weight_map_params_init(&p);
    CHECK_INT(wmap(sq, 4, s4, NULL, &p, a, msg, sizeof msg), 0);
    CHECK_CLOSE(a[1 * 5 + 1], 1 + 10 * exp(-32.0 / 50), 1e-7, 0);
    p.nspacing = 3;
    p.spacing[0] = p.spacing[1] = p.spacing[2] = 1;
    CHECK_INT(wmap(sq, 4, s4, NULL, &p, b, msg, sizeof msg), 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

/* A batch of 3 on a pool equals the images one by one. */
static void test_batch(void)
{
    enum { H = 20, W = 24, P = H * W };
    uint8_t t[3 * P];
    float one[3 * P], all[3 * P];
    char msg[256];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 3 + i; k++) {
            t[i * P + (2 + 4 * k) * W + 3 + 5 * k] = 1;
        }
    }
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    p.sigma = 2;
    const int64_t s1[3] = {1, H, W};
    for (int i = 0; i < 3; i++) {
        CHECK_INT(wmap(t + i * P, 3, s1, NULL, &p, one + i * P, msg, sizeof msg), 0);
    }
    struct sl_pool *pool = sl_pool_new(2, 4);
    CHECK(pool != NULL);
    struct sl_tensor tt = {t, SL_DT_U8, 3, {3, H, W}};
    CHECK_INT(sl_weight_map(&tt, NULL, &p, pool, all, msg, sizeof msg), 0);
    CHECK(memcmp(one, all, sizeof one) == 0);
    /* a float32 target gives the same map */
    float tf[3 * P];
    for (int i = 0; i < 3 * P; i++) {
        tf[i] = t[i];
    }
    struct sl_tensor tft = {tf, SL_DT_F32, 3, {3, H, W}};
    CHECK_INT(sl_weight_map(&tft, NULL, &p, pool, all, msg, sizeof msg), 0);
    CHECK(memcmp(one, all, sizeof one) == 0);
    sl_pool_free(pool);
}

/* ---- (b) fast vs naive, and a brute-force reference -------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* Random balls (discs in 2-D) of radius rmin..rmax into mask and, labelled 1..k in turn (a
 * later ball overwrites), into labels. sh is the 3-D grid (sh[0] = 1 for 2-D). */
static void random_balls(uint64_t *seed, const int64_t *sh, int k, double rmin, double rmax,
                         uint8_t *mask, int32_t *labels)
{
    const int64_t P = sh[0] * sh[1] * sh[2];
    memset(mask, 0, (size_t)P);
    memset(labels, 0, sizeof(int32_t) * (size_t)P);
    for (int b = 1; b <= k; b++) {
        double c[3], r = rmin + (rmax - rmin) * rng_unit(seed);
        for (int a = 0; a < 3; a++) {
            c[a] = sh[a] == 1 ? 0 : rng_unit(seed) * (double)sh[a];
        }
        int64_t i = 0;
        for (int64_t z = 0; z < sh[0]; z++) {
            for (int64_t y = 0; y < sh[1]; y++) {
                for (int64_t x = 0; x < sh[2]; x++, i++) {
                    double dz = (double)z - c[0], dy = (double)y - c[1], dx = (double)x - c[2];
                    if (dz * dz + dy * dy + dx * dx <= r * r) {
                        mask[i] = 1;
                        labels[i] = b;
                    }
                }
            }
        }
    }
}

/* The definition, by brute force: for every background pixel the distance to every pixel of
 * every instance (labels 1..n, n < 256), the two smallest per-instance minima, the README's w. */
static void brute_map(const uint8_t *mask, const int32_t *labels, int n, const int64_t *sh,
                      const double *sp, const struct sl_weight_map_params *p, float *out)
{
    const int64_t P = sh[0] * sh[1] * sh[2];
    double best[256];
    for (int64_t i = 0; i < P; i++) {
        if (mask[i]) {
            out[i] = (float)p->class_weights[1];
            continue;
        }
        for (int k = 0; k <= n; k++) {
            best[k] = INFINITY;
        }
        int64_t iz = i / (sh[1] * sh[2]), iy = i / sh[2] % sh[1], ix = i % sh[2];
        for (int64_t j = 0; j < P; j++) {
            if (labels[j] <= 0) {
                continue;
            }
            double dz = (double)(j / (sh[1] * sh[2]) - iz) * sp[0];
            double dy = (double)(j / sh[2] % sh[1] - iy) * sp[1];
            double dx = (double)(j % sh[2] - ix) * sp[2];
            double d = sqrt(dz * dz + dy * dy + dx * dx);
            best[labels[j]] = d < best[labels[j]] ? d : best[labels[j]];
        }
        double d1 = INFINITY, d2 = INFINITY;
        for (int k = 1; k <= n; k++) {
            if (best[k] < d1) {
                d2 = d1;
                d1 = best[k];
            } else if (best[k] < d2) {
                d2 = best[k];
            }
        }
        double d = p->neighbors == 2 ? d1 + d2 : d1;
        double w = p->class_weights[0];
        if (isfinite(d)) {
            w += term(p->w0, p->sigma, d);
        }
        out[i] = (float)w;
    }
}

/* Counts pixels where |a - b| > rtol |b| (+ atol). */
static int64_t count_diff(const float *a, const float *b, int64_t n, double rtol, double atol)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs((double)a[i] - (double)b[i]) <= atol + rtol * fabs((double)b[i]))) {
            if (bad < 3) {
                fprintf(stderr, "    pixel %lld: %.9g vs %.9g\n", (long long)i, (double)a[i],
                        (double)b[i]);
            }
            bad++;
        }
    }
    return bad;
}

struct random_case {
    int64_t sh[3]; /* sh[0] = 1: 2-D */
    int dots;      /* > 0: also one-pixel objects on a lattice of this step (most of them) */
    int balls;
    double rmin, rmax;
    double sigma, w0, wc0;
    double sp[3];
    int neighbors, connectivity;
};

/* Random balls, labelled by connected components: fast vs naive (1e-9 relative). With
 * own = true the balls' own labels are the instances and a brute-force map is checked too. */
static void random_run(uint64_t *seed, const struct random_case *rc, bool brute)
{
    const int nd = rc->sh[0] == 1 ? 2 : 3;
    const int64_t *shape = nd == 2 ? rc->sh + 1 : rc->sh;
    const int64_t P = rc->sh[0] * rc->sh[1] * rc->sh[2];
    uint8_t *mask = malloc((size_t)P);
    int32_t *own = malloc(sizeof(int32_t) * (size_t)P), *cc = malloc(sizeof(int32_t) * (size_t)P);
    float *fast = malloc(sizeof(float) * (size_t)P), *naive = malloc(sizeof(float) * (size_t)P);
    float *ref = malloc(sizeof(float) * (size_t)P);
    CHECK(mask && own && cc && fast && naive && ref);
    if (!(mask && own && cc && fast && naive && ref)) {
        goto out;
    }
    random_balls(seed, rc->sh, rc->balls, rc->rmin, rc->rmax, mask, own);
    if (rc->dots) {
        int32_t next = rc->balls + 1;
        int64_t i = 0;
        for (int64_t z = 0; z < rc->sh[0]; z++) {
            for (int64_t y = 0; y < rc->sh[1]; y++) {
                for (int64_t x = 0; x < rc->sh[2]; x++, i++) {
                    if (z % rc->dots == 0 && y % rc->dots == 0 && x % rc->dots == 0 && !mask[i] &&
                        rng_next(seed) % 8 != 0) {
                        mask[i] = 1;
                        own[i] = next++;
                    }
                }
            }
        }
    }
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    p.sigma = rc->sigma;
    p.w0 = rc->w0;
    p.class_weights[0] = rc->wc0;
    p.class_weights[1] = 2;
    p.neighbors = rc->neighbors;
    p.connectivity = rc->connectivity;
    p.nspacing = nd;
    for (int a = 0; a < nd; a++) {
        p.spacing[a] = rc->sp[a + 3 - nd];
    }
    int64_t n = sl__label(mask, nd, shape, rc->connectivity, cc);
    CHECK(n >= 2);
    CHECK_INT(sl__weight_map_image(mask, cc, n, nd, shape, &p, fast), 0);
    CHECK_INT(sl__weight_map_image_naive(mask, cc, n, nd, shape, &p, naive), 0);
    CHECK_INT(count_diff(fast, naive, P, 1e-9, 0), 0);
    if (brute) {
        /* the balls' own labels (overlaps split between balls) as instances */
        int32_t used = 0;
        for (int64_t i = 0; i < P; i++) {
            used = own[i] > used ? own[i] : used;
        }
        CHECK(used < 256);
        CHECK_INT(sl__weight_map_image(mask, own, used, nd, shape, &p, fast), 0);
        CHECK_INT(sl__weight_map_image_naive(mask, own, used, nd, shape, &p, naive), 0);
        CHECK_INT(count_diff(fast, naive, P, 1e-9, 0), 0);
        brute_map(mask, own, used, rc->sh, rc->sp, &p, ref);
        CHECK_INT(count_diff(fast, ref, P, 1e-6, 0), 0);
    }
out:
    free(mask);
    free(own);
    free(cc);
    free(fast);
    free(naive);
    free(ref);
}

/* Cases of both methods of sl__weight_map_image (R = 6.3 sigma with w_c = 1): "windowed" ones
 * have windows of a few image sizes in all, "separable" ones (dense dots) over 24. */
static void test_random(void)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    const struct random_case cases[] = {
        /* 2-D windowed: tens of small objects, windows much smaller than the image */
        {{1, 96, 80}, 0, 60, 0.5, 3.5, 1.5, 10, 1, {1, 1, 1}, 2, 8},
        {{1, 96, 80}, 0, 60, 0.5, 3.5, 1.5, 10, 1, {1, 1, 1}, 2, 4},
        {{1, 96, 80}, 0, 40, 1, 5, 2.5, 10, 1, {1, 1.7, 0.6}, 2, 8},
        {{1, 96, 80}, 0, 40, 1, 5, 2.5, 10, 1, {1, 0.6, 1.7}, 1, 4},
        {{1, 120, 64}, 0, 80, 0.5, 2.5, 1, 25, 0.5, {1, 1, 1}, 2, 4},
        /* w_c = 0: the dropped term is below half the smallest float32 subnormal */
        {{1, 96, 80}, 0, 40, 1, 4, 2, 10, 0, {1, 1, 1.3}, 2, 8},
        /* w_c = 0.3 is no float32: the double cutoff */
        {{1, 96, 80}, 0, 40, 1, 4, 2, 10, 0.3, {1, 1, 1}, 2, 8},
        /* sigma 5: windows as large as the image */
        {{1, 64, 64}, 0, 20, 1, 4, 5, 10, 1, {1, 1, 1}, 2, 8},
        /* 2-D separable: hundreds of dots (windows ~40-100 image sizes) */
        {{1, 96, 80}, 3, 20, 0.5, 3, 1.5, 10, 1, {1, 1, 1}, 2, 8},
        {{1, 96, 80}, 2, 10, 0.5, 3, 1.5, 10, 1, {1, 1.3, 0.8}, 2, 4},
        {{1, 96, 80}, 3, 20, 0.5, 3, 2, 10, 0, {1, 0.7, 1}, 2, 8},
        {{1, 96, 80}, 2, 20, 0.5, 3, 2, 10, 0.3, {1, 1, 1}, 2, 8},
        /* 3-D windowed, anisotropic */
        {{24, 28, 20}, 0, 30, 0.8, 3, 1.2, 10, 1, {2.0, 1.0, 0.7}, 2, 26},
        {{24, 28, 20}, 0, 30, 0.8, 3, 1.2, 10, 1, {2.0, 1.0, 0.7}, 2, 6},
        {{20, 24, 22}, 0, 25, 0.8, 3, 1.0, 10, 1, {1.0, 1.0, 1.0}, 1, 6},
        /* 3-D separable */
        {{20, 24, 22}, 2, 10, 0.8, 3, 1.0, 10, 1, {1.2, 1.0, 0.8}, 2, 26},
        {{20, 24, 22}, 3, 10, 0.8, 3, 1.5, 10, 1, {1.0, 1.0, 1.0}, 2, 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        random_run(&seed, &cases[i], false);
    }
    /* smaller images against the brute-force definition as well */
    const struct random_case small[] = {
        {{1, 30, 26}, 0, 12, 0.5, 2.5, 1.2, 10, 1, {1, 1, 1}, 2, 4},
        {{1, 30, 26}, 0, 12, 0.5, 2.5, 2, 10, 0.3, {1, 1.5, 0.8}, 2, 8},
        {{1, 30, 26}, 0, 12, 0.5, 2.5, 1.5, 10, 1, {1, 0.8, 1.5}, 1, 8},
        {{1, 30, 26}, 3, 4, 0.5, 2.5, 1.2, 10, 1, {1, 1, 1}, 2, 8},
        {{1, 30, 26}, 3, 4, 0.5, 2.5, 1.5, 10, 1, {1, 1.4, 0.7}, 2, 4},
        {{8, 12, 10}, 0, 8, 0.5, 2, 1.0, 10, 1, {1.5, 1.0, 0.9}, 2, 6},
        {{8, 12, 10}, 0, 8, 0.5, 2, 1.0, 10, 1, {1.5, 1.0, 0.9}, 1, 26},
        {{8, 12, 10}, 3, 4, 0.5, 2, 1.0, 10, 1, {1.5, 1.0, 0.9}, 2, 26},
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        random_run(&seed, &small[i], true);
    }
}

/* ---- (c) validation ---------------------------------------------------------------------- */

/* The code of sl_weight_map on (target, instances, p); CHECKs that msg contains part. */
static void expect_code(const struct sl_tensor *t, const struct sl_tensor *inst,
                        const struct sl_weight_map_params *p, int want, const char *part)
{
    char msg[512] = "";
    float out[512];
    int rc = sl_weight_map(t, inst, p, NULL, out, msg, sizeof msg);
    CHECK_INT(rc, want);
    bool has = strstr(msg, part) != NULL;
    CHECK(has);
    if (!has || rc != want) {
        fprintf(stderr, "    message: \"%s\", wanted \"%s\"\n", msg, part);
    }
}

static void test_validation(void)
{
    uint8_t t[8] = {0, 1, 0, 0, 1, 0, 0, 0};
    struct sl_weight_map_params p, q;
    sl_weight_map_params_init(&p);
    struct sl_tensor t2 = {t, SL_DT_U8, 3, {1, 2, 4}};
    struct sl_tensor none = {NULL, SL_DT_U8, 3, {1, 2, 4}};
    expect_code(&none, NULL, &p, SL_EINVAL, "target");

    struct sl_tensor flat = {t, SL_DT_U8, 2, {2, 4}};
    expect_code(&flat, NULL, &p, SL_ESHAPE, "target: shape [2, 4]");
    struct sl_tensor c2 = {t, SL_DT_U8, 5, {1, 2, 1, 2, 2}};
    expect_code(&c2, NULL, &p, SL_ESHAPE, "[N, *S] or [N, 1, *S]");

    uint8_t bad[8] = {0, 1, 0, 2, 1, 0, 0, 0};
    struct sl_tensor tb = {bad, SL_DT_U8, 3, {1, 2, 4}};
    expect_code(&tb, NULL, &p, SL_ERANGE, "target[0, 0, 3] (flat index 3) is 2");
    float nan_t[8] = {0, 1, 0, 0, 0, 0, NAN, 0};
    struct sl_tensor tn = {nan_t, SL_DT_F32, 3, {1, 2, 4}};
    expect_code(&tn, NULL, &p, SL_ERANGE, "target[0, 1, 2]");

    int32_t li[8] = {0, 1, 0, 0, 2, 0, 0, 0};
    struct sl_tensor ishape = {li, SL_DT_I32, 3, {1, 4, 2}};
    expect_code(&t2, &ishape, &p, SL_ESHAPE, "instances: shape [1, 4, 2]");
    li[5] = -1;
    struct sl_tensor ineg = {li, SL_DT_I32, 3, {1, 2, 4}};
    expect_code(&t2, &ineg, &p, SL_ERANGE, "instances[0, 1, 1] (flat index 5) is -1");
    float lf[8] = {0, 1, 0, 0, 1.5f, 0, 0, 0};
    struct sl_tensor ifr = {lf, SL_DT_F32, 3, {1, 2, 4}};
    expect_code(&t2, &ifr, &p, SL_ERANGE, "instances[0, 1, 0]");

    static const struct {
        double w0, sigma, cw0, cw1;
        int neighbors;
        const char *part;
    } nums[] = {
        {-1, 5, 1, 1, 2, "w0: must be a number in [0, 1e+30], not -1"},
        {NAN, 5, 1, 1, 2, "w0:"},
        {1e31, 5, 1, 1, 2, "w0:"},
        {10, 0, 1, 1, 2, "sigma: must be a finite number > 0, not 0"},
        {10, -2, 1, 1, 2, "sigma:"},
        {10, INFINITY, 1, 1, 2, "sigma:"},
        {10, NAN, 1, 1, 2, "sigma:"},
        {10, 5, -0.5, 1, 2, "class_weights[0]:"},
        {10, 5, 1, -0.5, 2, "class_weights[1]:"},
        {10, 5, 1, INFINITY, 2, "class_weights[1]:"},
        {10, 5, 1, 1, 0, "neighbors: must be 1 (d1 only) or 2"},
        {10, 5, 1, 1, 3, "neighbors:"},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        q = p;
        q.w0 = nums[i].w0;
        q.sigma = nums[i].sigma;
        q.class_weights[0] = nums[i].cw0;
        q.class_weights[1] = nums[i].cw1;
        q.neighbors = nums[i].neighbors;
        expect_code(&t2, NULL, &q, SL_ERANGE, nums[i].part);
    }

    q = p;
    q.connectivity = 6;
    expect_code(&t2, NULL, &q, SL_EINVAL, "connectivity: 6 is not valid for 2-D images");
    q.connectivity = 5;
    expect_code(&t2, NULL, &q, SL_EINVAL, "connectivity: 5");
    struct sl_tensor t3 = {t, SL_DT_U8, 4, {1, 2, 2, 2}};
    q.connectivity = 8;
    expect_code(&t3, NULL, &q, SL_EINVAL, "connectivity: 8 is not valid for 3-D images");
    q.connectivity = 26;
    char msg[256];
    float out[8];
    CHECK_INT(sl_weight_map(&t3, NULL, &q, NULL, out, msg, sizeof msg), 0);

    q = p;
    q.nspacing = 3;
    q.spacing[0] = q.spacing[1] = q.spacing[2] = 1;
    expect_code(&t2, NULL, &q, SL_EINVAL, "spacing: has 3 values but the images have 2");
    q.nspacing = 2;
    expect_code(&t3, NULL, &q, SL_EINVAL, "spacing: has 2 values but the images have 3");
    q.spacing[1] = 0;
    expect_code(&t2, NULL, &q, SL_ERANGE, "spacing[1]: must be a number in");
    q.spacing[1] = NAN;
    expect_code(&t2, NULL, &q, SL_ERANGE, "spacing[1]:");
}

/* ---- the /v1/weight-map body in-process ----------------------------------------------------- */

static void run_body(const char *body, bool want_json, struct slp_response *r)
{
    struct slp_limits lim;
    slp_limits_default(&lim);
    slp_weight_map_request(body, strlen(body), &lim, NULL, want_json, r);
}

/* Whether s occurs in buf[0..len). */
static bool has_bytes(const char *buf, size_t len, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; buf && i + n <= len; i++) {
        if (memcmp(buf + i, s, n) == 0) {
            return true;
        }
    }
    return false;
}

static const char row_body[] =
    "{\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [1, 1, 7], "
    "\"data\": [1, 0, 0, 0, 0, 0, 1]}, \"connectivity\": 4}";

/* The .npy answer: magic, version 1.0, a header padded to 64 bytes, '<f4' of shape (1, 1, 7),
 * then 7 little-endian floats (the row of test_row). */
static void test_npy_answer(void)
{
    struct slp_response r;
    run_body(row_body, false, &r);
    CHECK_INT(r.status, 200);
    CHECK(r.content_type && strcmp(r.content_type, "application/x-npy") == 0);
    const unsigned char *b = (const unsigned char *)r.body;
    CHECK(r.len >= 10 && memcmp(b, "\x93NUMPY\x01\x00", 8) == 0);
    size_t hlen = r.len >= 10 ? (size_t)b[8] | (size_t)b[9] << 8 : 0;
    CHECK_INT((10 + hlen) % 64, 0);
    CHECK_INT(r.len, 10 + hlen + 7 * 4);
    if (r.len == 10 + hlen + 7 * 4) {
        char hdr[256] = "";
        memcpy(hdr, b + 10, hlen < sizeof hdr - 1 ? hlen : sizeof hdr - 1);
        CHECK(strstr(hdr, "'descr': '<f4'") != NULL);
        CHECK(strstr(hdr, "'fortran_order': False") != NULL);
        CHECK(strstr(hdr, "'shape': (1, 1, 7)") != NULL);
        CHECK(hdr[hlen - 1] == '\n');
        float v[7];
        for (int i = 0; i < 7; i++) {
            const unsigned char *e = b + 10 + hlen + 4 * i;
            uint32_t bits =
                (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
            memcpy(&v[i], &bits, 4);
        }
        CHECK_CLOSE(v[0], 1.0, 0, 0);
        CHECK_CLOSE(v[3], 1 + 10 * exp(-36.0 / 50), 1e-7, 0);
    }
    slp_response_free(&r);

    /* [N, 1, *S] targets answer [N, *S] */
    static const char chan[] = "{\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", "
                               "\"shape\": [2, 1, 2, 3], \"data\": [1, 0, 1, 0, 0, 0, "
                               "0, 0, 0, 0, 0, 0]}}";
    run_body(chan, false, &r);
    CHECK_INT(r.status, 200);
    CHECK(has_bytes(r.body, r.len, "'shape': (2, 2, 3)"));
    slp_response_free(&r);
}

static void test_json_answer(void)
{
    struct slp_response r;
    run_body(row_body, true, &r);
    CHECK_INT(r.status, 200);
    CHECK(r.content_type && strcmp(r.content_type, "application/json") == 0);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    json_t *shape = json_object_get(j, "shape"), *data = json_object_get(j, "data");
    CHECK_INT(json_array_size(shape), 3);
    CHECK_INT(json_integer_value(json_array_get(shape, 2)), 7);
    CHECK_INT(json_array_size(data), 7);
    CHECK_CLOSE(json_number_value(json_array_get(data, 0)), 1.0, 0, 0);
    /* the shortest text of the float32 value: it reads back to the same float */
    double v = json_number_value(json_array_get(data, 3));
    CHECK((float)v == (float)(1 + 10 * exp(-36.0 / 50)));
    json_decref(j);
    slp_response_free(&r);

    /* instances inline, non-consecutive labels: column 2 of test_instances */
    static const char inst[] =
        "{\"target\": [[[1, 1, 0, 0, 0, 0, 0]]], \"instances\": [[[4, 9, 0, 0, 0, 0, 0]]], "
        "\"class_weights\": [0.5, 2.0], \"w0\": 10, \"sigma\": 5, \"neighbors\": 2}";
    run_body(inst, true, &r);
    CHECK_INT(r.status, 200);
    j = json_loadb(r.body, r.len, 0, NULL);
    data = json_object_get(j, "data");
    CHECK_CLOSE(json_number_value(json_array_get(data, 2)), 0.5 + 10 * exp(-9.0 / 50), 1e-7, 0);
    CHECK_CLOSE(json_number_value(json_array_get(data, 0)), 2.0, 0, 0);
    json_decref(j);
    slp_response_free(&r);
}

/* The answer's status is want and its problem+json detail contains part. */
static void expect_problem(const char *body, int want, const char *part)
{
    struct slp_response r;
    run_body(body, false, &r);
    CHECK_INT(r.status, want);
    CHECK(r.content_type && strcmp(r.content_type, "application/problem+json") == 0);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    bool has = detail && strstr(detail, part);
    CHECK(has);
    if (!has || r.status != want) {
        fprintf(stderr, "    %d \"%s\", wanted %d \"%s\"\n", r.status, detail ? detail : "(none)",
                want, part);
    }
    json_decref(j);
    slp_response_free(&r);
}

#define T "\"target\": [[[0, 1, 0]]]"

static void test_body_errors(void)
{
    expect_problem("{\"target\": [[[0, 1", 400, "malformed JSON");
    expect_problem("[1, 2]", 422, "JSON object");
    expect_problem("{\"w0\": 1}", 422, "target: required");
    expect_problem("{" T ", \"foo\": 1}", 422, "foo: unknown key");
    expect_problem("{" T ", \"sigma\": \"5\"}", 422, "sigma: must be a number");
    expect_problem("{" T ", \"w0\": null}", 422, "w0: must be a number");
    expect_problem("{" T ", \"sigma\": 0}", 422, "sigma: must be a finite number > 0");
    expect_problem("{" T ", \"w0\": -1}", 422, "w0: must be a number in [0, 1e+30]");
    expect_problem("{" T ", \"neighbors\": 1.5}", 422, "neighbors: must be an integer");
    expect_problem("{" T ", \"neighbors\": 3}", 422, "neighbors: must be 1");
    expect_problem("{" T ", \"connectivity\": 5}", 422, "connectivity: must be 4 or 8");
    expect_problem("{" T ", \"connectivity\": 26}", 422, "connectivity: 26 is not valid for 2-D");
    expect_problem("{" T ", \"connectivity\": true}", 422, "connectivity: must be an integer");
    expect_problem("{" T ", \"class_weights\": [1]}", 422, "class_weights: must be a list of 2");
    expect_problem("{" T ", \"class_weights\": [1, \"a\"]}", 422, "class_weights[1]: must be");
    expect_problem("{" T ", \"class_weights\": [1, -1]}", 422, "class_weights[1]: must be a");
    expect_problem("{" T ", \"spacing\": 1}", 422, "spacing: must be a list of 2 or 3");
    expect_problem("{" T ", \"spacing\": [1, 1, 1]}", 422, "spacing: has 3 values");
    expect_problem("{" T ", \"spacing\": [1, 0]}", 422, "spacing[1]:");
    expect_problem("{\"target\": [[[0, 2, 0]]]}", 422, "target[0, 0, 1] (flat index 1) is 2");
    expect_problem("{\"target\": [[0, 1, 0]]}", 422, "target: shape [1, 3]");
    expect_problem("{" T ", \"instances\": [[[0, 1]]]}", 422, "instances: shape [1, 1, 2]");
    expect_problem("{" T ", \"instances\": [[[0, -1, 0]]]}", 422, "instances[0, 0, 1]");
    expect_problem("{\"target\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [1, 1, 3], "
                   "\"data\": \"AAE=\"}}",
                   400, "target");
    /* "instances": null is the same as no instances */
    struct slp_response r;
    run_body("{" T ", \"instances\": null}", false, &r);
    CHECK_INT(r.status, 200);
    slp_response_free(&r);
}

/* ---- content negotiation of the server ---------------------------------------------------- */

static void test_negotiation(void)
{
    CHECK(!srv_accept_prefers_json(NULL));
    CHECK(!srv_accept_prefers_json(""));
    CHECK(!srv_accept_prefers_json("*/*"));
    CHECK(srv_accept_prefers_json("application/json"));
    CHECK(srv_accept_prefers_json("Application/JSON; charset=utf-8"));
    CHECK(srv_accept_prefers_json("text/html, application/json;q=0.9, */*;q=0.8"));
    CHECK(!srv_accept_prefers_json("application/json;q=0"));
    CHECK(!srv_accept_prefers_json("application/x-npy, application/json"));
    CHECK(srv_accept_prefers_json("application/x-npy;q=0.5, application/json"));
    CHECK(!srv_accept_prefers_json("application/x-npy"));

    CHECK(!srv_accept_encoding_allows_gzip(NULL));
    CHECK(!srv_accept_encoding_allows_gzip(""));
    CHECK(!srv_accept_encoding_allows_gzip("identity"));
    CHECK(!srv_accept_encoding_allows_gzip("br, deflate"));
    CHECK(srv_accept_encoding_allows_gzip("gzip"));
    CHECK(srv_accept_encoding_allows_gzip("GZIP"));
    CHECK(srv_accept_encoding_allows_gzip("x-gzip"));
    CHECK(srv_accept_encoding_allows_gzip("deflate, gzip;q=0.5, br"));
    CHECK(srv_accept_encoding_allows_gzip("br;q=1.0, gzip ; q=0.8"));
    CHECK(!srv_accept_encoding_allows_gzip("gzip;q=0"));
    CHECK(!srv_accept_encoding_allows_gzip("gzip;q=0.000, *"));
    CHECK(srv_accept_encoding_allows_gzip("*"));
    CHECK(!srv_accept_encoding_allows_gzip("*;q=0"));
    CHECK(!srv_accept_encoding_allows_gzip("gzipx, xgzip"));
}

static const struct check_test tests[] = {
    CHECK_TEST(test_row),         CHECK_TEST(test_one_object),   CHECK_TEST(test_square),
    CHECK_TEST(test_three),       CHECK_TEST(test_connectivity), CHECK_TEST(test_instances),
    CHECK_TEST(test_3d),          CHECK_TEST(test_batch),        CHECK_TEST(test_random),
    CHECK_TEST(test_validation),  CHECK_TEST(test_npy_answer),   CHECK_TEST(test_json_answer),
    CHECK_TEST(test_body_errors), CHECK_TEST(test_negotiation),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_weightmap", tests);
}
