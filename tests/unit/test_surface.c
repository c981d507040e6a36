/* test_surface.c - surface-distance metrics and the distance-weighted cross entropy through
 * sl_score, against distances counted by hand on tiny images. */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "segloss.h"

#define MAXM 8

struct run {
    struct sl_result *res;
    struct sl_spec specs[MAXM];
    int n;
};

/* Adds a metric spec; returns it for parameter setting. */
static struct sl_spec *add(struct run *r, const char *name)
{
    struct sl_spec *s = &r->specs[r->n++];
    sl_spec_init(s, sl_find_metric(name));
    return s;
}

/* Scores label masks p and y of shape [N, H, W] (or [N, D, H, W] with mode binary). */
static int score(struct run *r, const uint8_t *p, const uint8_t *y, int ndim, const int64_t *shape,
                 const double *spacing)
{
    struct sl_request req;
    char msg[256];
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){.data = p, .dtype = SL_DT_U8, .ndim = ndim};
    req.target = (struct sl_tensor){.data = y, .dtype = SL_DT_U8, .ndim = ndim};
    memcpy(req.prediction.shape, shape, sizeof(int64_t) * (size_t)ndim);
    memcpy(req.target.shape, shape, sizeof(int64_t) * (size_t)ndim);
    req.pred_type = SL_PRED_LABELS;
    req.mode = SL_MODE_BINARY;
    if (spacing) {
        req.nspacing = ndim - 1;
        memcpy(req.spacing, spacing, sizeof(double) * (size_t)(ndim - 1));
    }
    req.metrics = r->specs;
    req.nmetrics = r->n;
    int rc = sl_score(&req, NULL, &r->res, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "sl_score: %s\n", msg);
    }
    return rc;
}

static double value(const struct run *r, int k, int image)
{
    return r->res->metrics[k].per_image[image];
}

/* 5x5 images: (a) single pixels 3 columns apart, (b) a 3x3 square and the same square shifted
 * by one column, (c) the square against an empty prediction, (d) both empty. */
static void test_2d(void)
{
    uint8_t p[4][25] = {{0}}, y[4][25] = {{0}};
    p[0][1 * 5 + 1] = 1;
    y[0][1 * 5 + 4] = 1;
    for (int r = 1; r <= 3; r++) {
        for (int c = 1; c <= 3; c++) {
            p[1][r * 5 + c] = 1;
            y[1][r * 5 + c + 1] = 1;
            y[2][r * 5 + c] = 1;
        }
    }
    struct run r = {0};
    add(&r, "hausdorff");
    set_num(add(&r, "hausdorff"), "percentile", 50);
    struct sl_spec *pooled = add(&r, "hausdorff");
    set_num(pooled, "percentile", 50);
    pooled->values[sl_param_index(pooled->def, "pooling")].kind = SL_V_ENUM;
    pooled->values[sl_param_index(pooled->def, "pooling")].choice = 1;
    add(&r, "assd");
    set_num(add(&r, "nsd"), "tolerance", 0.5);
    set_num(add(&r, "nsd"), "tolerance", 3);
    const int64_t shape[3] = {4, 5, 5};
    CHECK_INT(score(&r, &p[0][0], &y[0][0], 3, shape, NULL), 0);
    if (!r.res) {
        return;
    }
    /* (a) one surface pixel each, 3 apart: every distance is 3 */
    CHECK_CLOSE(value(&r, 0, 0), 3, 1e-12, 0);
    CHECK_CLOSE(value(&r, 1, 0), 3, 1e-12, 0);
    CHECK_CLOSE(value(&r, 3, 0), 3, 1e-12, 0);
    CHECK_CLOSE(value(&r, 4, 0), 0, 0, 0);
    CHECK_CLOSE(value(&r, 5, 0), 1, 0, 0);
    /* (b) 8-pixel rings (the centre is interior). Counted by hand: pred -> target
     * [1,0,0,1,1,1,0,0], target -> pred [0,0,1,1,1,0,0,1]: max 1; the median of each direction
     * is (0 + 1) / 2 = 0.5 and of both together also 0.5; assd 8 / 16; nsd(0.5) = 8 / 16 */
    CHECK_CLOSE(value(&r, 0, 1), 1, 1e-12, 0);
    CHECK_CLOSE(value(&r, 1, 1), 0.5, 1e-12, 0);
    CHECK_CLOSE(value(&r, 2, 1), 0.5, 1e-12, 0);
    CHECK_CLOSE(value(&r, 3, 1), 0.5, 1e-12, 0);
    CHECK_CLOSE(value(&r, 4, 1), 0.5, 1e-12, 0);
    CHECK_CLOSE(value(&r, 5, 1), 1, 1e-12, 0);
    /* (c) one mask empty: the diagonal sqrt(5^2 + 5^2), nsd 0; (d) both empty: 0, nsd 1 */
    CHECK_CLOSE(value(&r, 0, 2), sqrt(50.0), 1e-12, 0);
    CHECK_CLOSE(value(&r, 3, 2), sqrt(50.0), 1e-12, 0);
    CHECK_CLOSE(value(&r, 4, 2), 0, 0, 0);
    CHECK_CLOSE(value(&r, 0, 3), 0, 0, 0);
    CHECK_CLOSE(value(&r, 4, 3), 1, 0, 0);
    /* means over the four images, no global */
    CHECK_CLOSE(r.res->metrics[0].mean, (3 + 1 + sqrt(50.0) + 0) / 4, 1e-12, 0);
    CHECK(isnan(r.res->metrics[0].global[0]));
    sl_result_free(r.res);

    /* anisotropic spacing (row 2, column 0.5): (a) is 3 columns = 1.5 apart; the diagonal of
     * (c) is sqrt(10^2 + 2.5^2) */
    const double spacing[2] = {2, 0.5};
    CHECK_INT(score(&r, &p[0][0], &y[0][0], 3, shape, spacing), 0);
    if (!r.res) {
        return;
    }
    CHECK_CLOSE(value(&r, 0, 0), 1.5, 1e-12, 0);
    CHECK_CLOSE(value(&r, 0, 2), sqrt(100 + 6.25), 1e-12, 0);
    /* (b) with spacing: pred (2,3) is 2 rows from (1,3)/(3,3) = 4, or 0.5 from (2,4): 0.5 */
    CHECK_CLOSE(value(&r, 0, 1), 0.5, 1e-12, 0);
    sl_result_free(r.res);

    /* empty_distance: a number, or "nan" (null, counted in undefined) */
    struct run e = {0};
    set_num(add(&e, "hausdorff"), "empty_distance", 3);
    struct sl_spec *nan = add(&e, "assd");
    nan->values[0].kind = SL_V_ENUM;
    nan->values[0].choice = 0;
    CHECK_INT(score(&e, &p[0][0], &y[0][0], 3, shape, NULL), 0);
    if (!e.res) {
        return;
    }
    CHECK_CLOSE(value(&e, 0, 2), 3, 0, 0);
    CHECK(isnan(value(&e, 1, 2)));
    CHECK_INT(e.res->metrics[1].undefined, 1);
    CHECK_CLOSE(e.res->metrics[1].mean, (3 + 0.5 + 0) / 3, 1e-12, 0);
    sl_result_free(e.res);
}

static void test_border_and_3d(void)
{
    /* a full 5x5 mask: its surface is the 16 border pixels (outside is background); against the
     * same mask every distance is 0 */
    uint8_t full[25];
    memset(full, 1, sizeof full);
    struct run r = {0};
    add(&r, "hausdorff");
    add(&r, "nsd");
    const int64_t shape[3] = {1, 5, 5};
    CHECK_INT(score(&r, full, full, 3, shape, NULL), 0);
    if (r.res) {
        CHECK_CLOSE(value(&r, 0, 0), 0, 0, 0);
        CHECK_CLOSE(value(&r, 1, 0), 1, 0, 0);
        sl_result_free(r.res);
    }
    /* 3-D [1, 3, 3, 3] with spacing (1, 2, 3): voxels (0,0,0) and (2,2,2) are
     * sqrt(2^2 + 4^2 + 6^2) = sqrt(56) apart */
    uint8_t p[27] = {0}, y[27] = {0};
    p[0] = 1;
    y[26] = 1;
    const int64_t s3[4] = {1, 3, 3, 3};
    const double sp3[3] = {1, 2, 3};
    struct run v = {0};
    add(&v, "hausdorff");
    CHECK_INT(score(&v, p, y, 4, s3, sp3), 0);
    if (v.res) {
        CHECK_CLOSE(value(&v, 0, 0), sqrt(56.0), 1e-12, 0);
        sl_result_free(v.res);
    }
}

static void test_multiclass(void)
{
    /* C = 2 on 5x5: class 1 predicted at (1,1), present at (1,4): Hausdorff 3. Class 0 is the
     * rest: its surfaces are the 16 border pixels plus the hole's inner neighbours, (1,2) and
     * (2,1) in the prediction, (1,3) in the target; each of those is 1 from the other surface
     * (a border pixel or the other hole's neighbour), the border pixels 0: Hausdorff 1. */
    uint8_t p[2 * 25] = {0}, y[25] = {0};
    for (int k = 0; k < 25; k++) {
        p[k] = 1; /* class 0 channel */
    }
    p[1 * 5 + 1] = 0;
    p[25 + 1 * 5 + 1] = 1;
    y[1 * 5 + 4] = 1;
    struct sl_spec hd;
    sl_spec_init(&hd, sl_find_metric("hausdorff"));
    struct sl_request req;
    struct sl_result *res = NULL;
    char msg[256];
    sl_request_init(&req);
    req.prediction =
        (struct sl_tensor){.data = p, .dtype = SL_DT_U8, .ndim = 4, .shape = {1, 2, 5, 5}};
    req.target = (struct sl_tensor){.data = y, .dtype = SL_DT_U8, .ndim = 3, .shape = {1, 5, 5}};
    req.pred_type = SL_PRED_LABELS;
    req.metrics = &hd;
    req.nmetrics = 1;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (!res) {
        return;
    }
    CHECK_INT(res->mode, SL_MODE_MULTICLASS);
    CHECK_CLOSE(res->metrics[0].per_image[0], 1, 1e-12, 0);
    CHECK_CLOSE(res->metrics[0].per_image[1], 3, 1e-12, 0);
    CHECK_CLOSE(res->metrics[0].mean, 2, 1e-12, 0);
    sl_result_free(res);
    req.include_background = false;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->metrics[0].mean, 3, 1e-12, 0);
        sl_result_free(res);
    }
}

static void test_dwce(void)
{
    /* a 1x7 row [1, 0, 0, 0, 0, 0, 1]: two 1-pixel instances; every background pixel has
     * d1 + d2 = 6, so w = 1 + 10 exp(-36 / 50) there and 1 on the two objects; logits 0 make
     * every CE ln 2: loss = ln2 (2 + 5 (1 + 10 exp(-0.72))) / 7 */
    const double x[7] = {0, 0, 0, 0, 0, 0, 0};
    const uint8_t y[7] = {1, 0, 0, 0, 0, 0, 1};
    struct sl_request req;
    struct sl_result *res = NULL;
    char msg[256];
    struct sl_spec s;
    sl_request_init(&req);
    req.prediction =
        (struct sl_tensor){.data = x, .dtype = SL_DT_F64, .ndim = 3, .shape = {1, 1, 7}};
    req.target = (struct sl_tensor){.data = y, .dtype = SL_DT_U8, .ndim = 3, .shape = {1, 1, 7}};
    sl_spec_init(&s, sl_find_loss("distance_weighted_cross_entropy"));
    req.losses = &s;
    req.nlosses = 1;
    req.nmetrics = 0;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    double l2 = log(2.0);
    if (res) {
        CHECK_CLOSE(res->losses[0].value, l2 * (2 + 5 * (1 + 10 * exp(-0.72))) / 7, 1e-7, 0);
        sl_result_free(res);
    }
    /* neighbors 1: the term is w0 exp(-d1^2 / (2 sigma^2)) with d1 = 1, 2, 3, 2, 1 */
    s.values[sl_param_index(s.def, "neighbors")].num = 1;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        double t = 2 * exp(-1 / 50.0) + 2 * exp(-4 / 50.0) + exp(-9 / 50.0);
        CHECK_CLOSE(res->losses[0].value, l2 * (7 + 10 * t) / 7, 1e-7, 0);
        sl_result_free(res);
    }
    /* one instance with neighbors 2: no border term, plain CE */
    const uint8_t y1[7] = {1, 0, 0, 0, 0, 0, 0};
    req.target.data = y1;
    s.values[sl_param_index(s.def, "neighbors")].num = 2;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->losses[0].value, l2, 1e-12, 0);
        sl_result_free(res);
    }
    /* class weights [0.5, 2]: (2 * 2 + 0.5 * 5) ln2 / 7 with one instance */
    const double cw[2] = {0.5, 2};
    int ci = sl_param_index(s.def, "class_weights");
    s.values[ci].kind = SL_V_LIST;
    s.values[ci].list = cw;
    s.values[ci].nlist = 2;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->losses[0].value, l2 * (1 * 2 + 6 * 0.5) / 7, 1e-12, 0);
        sl_result_free(res);
    }
    /* instances given: one label map with two instances restores the border term */
    const int32_t ins[7] = {5, 0, 0, 0, 0, 0, 9};
    req.instances =
        (struct sl_tensor){.data = ins, .dtype = SL_DT_I32, .ndim = 3, .shape = {1, 1, 7}};
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        /* background weight 0.5 + 10 exp(-0.72) on 5 pixels (y1's pixel 6 is background too,
         * but it is an instance: d1 = 0, d2 = 6) */
        double bg = 0.5 + 10 * exp(-0.72);
        CHECK_CLOSE(res->losses[0].value, l2 * (2 + 6 * bg) / 7, 1e-7, 0);
        sl_result_free(res);
    }
    /* multiclass is refused */
    req.instances.data = NULL;
    req.mode = SL_MODE_MULTICLASS;
    CHECK(sl_score(&req, NULL, &res, msg, sizeof msg) != 0);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_2d),
    CHECK_TEST(test_border_and_3d),
    CHECK_TEST(test_multiclass),
    CHECK_TEST(test_dwce),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_surface", tests);
}
