/* test_surfel.c - DeepMind-style surfels (marching squares/cubes lengths and areas), the chamfer
 * distance transforms (chessboard, taxicab), the MONAI/DeepMind empty rules with their +inf
 * count, directed distances and per-class tolerances, against hand calculations. The values of
 * the peers themselves are the golden cases surface_dice_*, surface_empty_rules and
 * surface_distance_metrics_* (tests/golden/cases). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "internal.h"

/* 2-D codes: bit 3 top left, 2 top right, 1 bottom left, 0 bottom right (DeepMind's
 * ENCODE_NEIGHBOURHOOD_2D_KERNEL). At spacing (2, 1) (rows 2 apart, columns 1): a corner cut
 * off is the half diagonal 0.5 sqrt(2^2 + 1^2); a horizontal edge (two bottom or two top
 * inside) is 1 long, a vertical one (a column inside) 2; diagonal pairs cut two corners. */
static void test_table_2d(void)
{
    const double sp[2] = {2, 1};
    double t[16];
    sl__surfel_table(2, sp, t);
    const double diag = 0.5 * sqrt(5.0);
    CHECK_CLOSE(t[0], 0, 0, 0);
    CHECK_CLOSE(t[15], 0, 0, 0);
    const int one[] = {1, 2, 4, 8, 7, 11, 13, 14};
    for (int k = 0; k < 8; k++) {
        CHECK_CLOSE(t[one[k]], diag, 1e-15, 0);
    }
    CHECK_CLOSE(t[3], 1, 1e-15, 0);  /* bottom pair: a horizontal segment */
    CHECK_CLOSE(t[12], 1, 1e-15, 0); /* top pair */
    CHECK_CLOSE(t[5], 2, 1e-15, 0);  /* right column: a vertical segment */
    CHECK_CLOSE(t[10], 2, 1e-15, 0); /* left column */
    CHECK_CLOSE(t[6], 2 * diag, 1e-15, 0);
    CHECK_CLOSE(t[9], 2 * diag, 1e-15, 0);
}

/* 3-D codes: bit 7 - (4a + 2b + c) for the voxel at offset (a, b, c). */
static void test_table_3d(void)
{
    double t[256];
    sl__surfel_table(3, NULL, t);
    /* one corner: the equilateral triangle of three edge midpoints, side sqrt(1/2):
     * sqrt(3)/4 * 1/2 = sqrt(3)/8; its complement the same */
    CHECK_CLOSE(t[1], sqrt(3.0) / 8, 1e-15, 0);
    CHECK_CLOSE(t[128], sqrt(3.0) / 8, 1e-15, 0);
    CHECK_CLOSE(t[254], sqrt(3.0) / 8, 1e-15, 0);
    /* two corners along an edge (codes 3: offsets (1,1,0), (1,1,1)): a 1 x sqrt(1/2) rectangle */
    CHECK_CLOSE(t[3], sqrt(0.5), 1e-15, 0);
    /* a face of four (code 15: a = 1): the unit square across the cell */
    CHECK_CLOSE(t[15], 1, 1e-15, 0);
    CHECK_CLOSE(t[0], 0, 0, 0);
    CHECK_CLOSE(t[255], 0, 0, 0);
    /* three corners of a face (code 7): a pentagon cut into the triangles of largest area: the
     * half square 1/2 in the plane of the three lifted midpoints, then sqrt(3)/4 and sqrt(3)/8 */
    CHECK_CLOSE(t[7], 0.5 + 3 * sqrt(3.0) / 8, 1e-15, 0);
    /* two diagonal corners of a face (code 6: offsets (1,0,1), (1,1,0)): two separate corner
     * triangles */
    CHECK_CLOSE(t[6], 2 * sqrt(3.0) / 8, 1e-15, 0);

    /* anisotropic (3, 2, 1): the face square of code 15 is 2 x 1; the corner triangle of code 1
     * has edges (1.5, -1, 0) and (1.5, 0, -0.5) from one vertex: half the norm of their cross
     * product (0.5, 0.75, 1.5), 1.75 / 2 */
    const double sp[3] = {3, 2, 1};
    sl__surfel_table(3, sp, t);
    CHECK_CLOSE(t[15], 2, 1e-15, 0);
    CHECK_CLOSE(t[1], 0.875, 1e-15, 0);
    CHECK_CLOSE(t[254], 0.875, 1e-15, 0);
    /* code 3 (along axis 2): spans 1 along axis 2 and the half diagonal of the 3 x 2 face,
     * sqrt(1.5^2 + 1^2) */
    CHECK_CLOSE(t[3], sqrt(3.25), 1e-15, 0);
}

static void test_cdt(void)
{
    /* 5x5, one seed at the centre: the corner is 2 chessboard steps and 4 taxicab steps away */
    uint8_t seed[25] = {0};
    seed[12] = 1;
    double d[27];
    const int64_t s2[2] = {5, 5};
    CHECK_INT(sl__cdt(seed, 2, s2, SL_DIST_CHESSBOARD, d), 0);
    CHECK_CLOSE(d[0], 2, 0, 0);
    CHECK_CLOSE(d[12], 0, 0, 0);
    CHECK_CLOSE(d[1], 2, 0, 0);  /* (0,1): max(2, 1) */
    CHECK_CLOSE(d[13], 1, 0, 0); /* (2,3) */
    CHECK_INT(sl__cdt(seed, 2, s2, SL_DIST_TAXICAB, d), 0);
    CHECK_CLOSE(d[0], 4, 0, 0);
    CHECK_CLOSE(d[1], 3, 0, 0);
    CHECK_CLOSE(d[18], 2, 0, 0); /* (3,3) */
    /* 3x3x3, seed (0,0,0): (2,2,2) is 2 chessboard and 6 taxicab steps away, (2,1,0) 2 and 3 */
    uint8_t s3[27] = {0};
    s3[0] = 1;
    const int64_t sh3[3] = {3, 3, 3};
    CHECK_INT(sl__cdt(s3, 3, sh3, SL_DIST_CHESSBOARD, d), 0);
    CHECK_CLOSE(d[26], 2, 0, 0);
    CHECK_CLOSE(d[21], 2, 0, 0);
    CHECK_INT(sl__cdt(s3, 3, sh3, SL_DIST_TAXICAB, d), 0);
    CHECK_CLOSE(d[26], 6, 0, 0);
    CHECK_CLOSE(d[21], 3, 0, 0);
    /* no seed: +inf everywhere; a bad metric is refused */
    memset(s3, 0, sizeof s3);
    CHECK_INT(sl__cdt(s3, 3, sh3, SL_DIST_TAXICAB, d), 0);
    CHECK(isinf(d[13]) && d[13] > 0);
    CHECK_INT(sl__cdt(s3, 3, sh3, SL_DIST_EUCLIDEAN, d), SL_EINVAL);
}

/* Scores binary label masks [N, H, W] with the given metric specs (request empty e). */
static int score(const uint8_t *p, const uint8_t *y, const int64_t *shape, const double *spacing,
                 struct sl_spec *specs, int n, enum sl_empty e, struct sl_result **res)
{
    struct sl_request req;
    char msg[256];
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){.data = p, .dtype = SL_DT_U8, .ndim = 3};
    req.target = (struct sl_tensor){.data = y, .dtype = SL_DT_U8, .ndim = 3};
    memcpy(req.prediction.shape, shape, sizeof(int64_t) * 3);
    memcpy(req.target.shape, shape, sizeof(int64_t) * 3);
    req.pred_type = SL_PRED_LABELS;
    req.mode = SL_MODE_BINARY;
    req.empty = e;
    if (spacing) {
        req.nspacing = 2;
        memcpy(req.spacing, spacing, sizeof(double) * 2);
    }
    req.metrics = specs;
    req.nmetrics = n;
    int rc = sl_score(&req, NULL, res, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "sl_score: %s\n", msg);
    }
    return rc;
}

/* DeepMind's two pixels 2 mm apart, by hand: each pixel's surface is its 4 corners, each
 * cutting off one corner of a cell (half diagonal 0.5 sqrt(5) at spacing (2, 1)). The target's
 * right corners are 1 column (1 mm) from the prediction's left ones, its left corners 2 mm: half
 * of each surface is within 1 mm, surface Dice 0.5, both overlaps 0.5, directed mean distance
 * (1 + 2) / 2 = 1.5, Hausdorff 2. The boundary-voxel nsd sees two pixels 2 mm apart: 0. */
static void test_two_pixels(void)
{
    uint8_t p[5 * 8] = {0}, y[5 * 8] = {0};
    y[2 * 8 + 2] = 1;
    p[2 * 8 + 4] = 1;
    const int64_t shape[3] = {1, 5, 8};
    const double sp[2] = {2, 1};
    struct sl_spec m[7];
    m[0] = metric("surface_dice");
    m[1] = metric("surface_overlap");
    set_choice(&m[1], "direction", SL_DIR_TARGET_TO_PRED);
    m[2] = metric("surface_overlap");
    set_choice(&m[2], "direction", SL_DIR_PRED_TO_TARGET);
    m[3] = metric("assd");
    set_choice(&m[3], "surfaces", SL_SURF_SURFELS);
    set_choice(&m[3], "direction", SL_DIR_TARGET_TO_PRED);
    m[4] = metric("hausdorff");
    set_choice(&m[4], "surfaces", SL_SURF_SURFELS);
    m[5] = metric("nsd");
    m[6] = metric("surface_overlap"); /* symmetric: the surface Dice */
    struct sl_result *res = NULL;
    CHECK_INT(score(p, y, shape, sp, m, 7, SL_EMPTY_ONE, &res), 0);
    if (!res) {
        return;
    }
    CHECK_CLOSE(res->metrics[0].per_image[0], 0.5, 1e-15, 0);
    CHECK_CLOSE(res->metrics[1].per_image[0], 0.5, 1e-15, 0);
    CHECK_CLOSE(res->metrics[2].per_image[0], 0.5, 1e-15, 0);
    CHECK_CLOSE(res->metrics[3].per_image[0], 1.5, 1e-15, 0);
    CHECK_CLOSE(res->metrics[4].per_image[0], 2, 1e-15, 0);
    CHECK_CLOSE(res->metrics[5].per_image[0], 0, 0, 0);
    CHECK_CLOSE(res->metrics[6].per_image[0], 0.5, 1e-15, 0);
    sl_result_free(res);
}

/* Four 4x4 images: (a) one pixel each, 3 columns apart; (b) prediction empty; (c) target
 * empty; (d) both empty. The empty rules, written out from the peers' sources:
 * MONAI (monai/metrics/hausdorff_distance.py _compute_percentile_hausdorff_distance: no
 * distances -> nan; utils.py get_surface_distance: an empty edge set gives inf distances;
 * surface_distance.py: mean of no distances -> nan; surface_dice.py: boundary_complete 0 ->
 * nan, one empty -> 0): hausdorff [3, inf, inf, nan], assd [3, inf, inf, nan], nsd [0, 0, 0, nan].
 * DeepMind (surface_distance/metrics.py compute_robust_hausdorff: inf for an empty direction;
 * compute_average_surface_distance: sum / sum of areas; its test suite's empty-mask cases):
 * hausdorff [3, inf, inf, inf], assd target_to_pred [3, inf, nan, nan], surface Dice
 * [0, 0, 0, nan]. segloss (today's): hausdorff [3, diag, diag, 0] with diag = sqrt(4^2 + 4^2),
 * and the request's empty "nan" turns both-empty into nan. */
static void test_empty_rules(void)
{
    uint8_t p[4 * 16] = {0}, y[4 * 16] = {0};
    p[0 * 16 + 1 * 4 + 0] = 1;
    y[0 * 16 + 1 * 4 + 3] = 1;
    y[1 * 16 + 5] = 1;
    p[2 * 16 + 5] = 1;
    const int64_t shape[3] = {4, 4, 4};
    struct sl_spec m[7];
    m[0] = metric("hausdorff");
    set_choice(&m[0], "empty_rule", SL_EMPTY_RULE_MONAI);
    m[1] = metric("assd");
    set_choice(&m[1], "empty_rule", SL_EMPTY_RULE_MONAI);
    m[2] = metric("nsd");
    set_choice(&m[2], "empty_rule", SL_EMPTY_RULE_MONAI);
    m[3] = metric("hausdorff");
    set_choice(&m[3], "empty_rule", SL_EMPTY_RULE_DEEPMIND);
    m[4] = metric("assd");
    set_choice(&m[4], "empty_rule", SL_EMPTY_RULE_DEEPMIND);
    set_choice(&m[4], "direction", SL_DIR_TARGET_TO_PRED);
    m[5] = metric("surface_dice");
    set_choice(&m[5], "empty_rule", SL_EMPTY_RULE_DEEPMIND);
    m[6] = metric("hausdorff");
    struct sl_result *res = NULL;
    CHECK_INT(score(p, y, shape, NULL, m, 7, SL_EMPTY_ONE, &res), 0);
    if (!res) {
        return;
    }
    const double inf = INFINITY, diag = sqrt(32.0);
    const double want[7][4] = {
        {3, inf, inf, NAN}, {3, inf, inf, NAN}, {0, 0, 0, NAN},     {3, inf, inf, inf},
        {3, inf, NAN, NAN}, {0, 0, 0, NAN},     {3, diag, diag, 0},
    };
    const int undefined[7] = {3, 3, 1, 3, 3, 1, 0}, infinite[7] = {2, 2, 0, 3, 1, 0, 0};
    const bool reports[7] = {true, true, false, true, true, false, false};
    for (int k = 0; k < 7; k++) {
        const struct sl_metric_result *r = &res->metrics[k];
        for (int i = 0; i < 4; i++) {
            if (isnan(want[k][i])) {
                CHECK(isnan(r->per_image[i]));
            } else if (isinf(want[k][i])) {
                CHECK(isinf(r->per_image[i]) && r->per_image[i] > 0);
            } else {
                CHECK_CLOSE(r->per_image[i], want[k][i], 1e-12, 0);
            }
        }
        CHECK_INT(r->undefined, undefined[k]);
        CHECK_INT(r->infinite, infinite[k]);
        CHECK_INT(sl_metric_can_be_infinite(r->spec), reports[k]);
    }
    /* means leave the nulls (NaN and +inf) out */
    CHECK_CLOSE(res->metrics[0].mean, 3, 1e-12, 0);
    CHECK_CLOSE(res->metrics[6].mean, (3 + 2 * diag) / 4, 1e-12, 0);
    sl_result_free(res);

    /* the request's empty "nan" reaches the segloss rule's both-empty case only */
    CHECK_INT(score(p, y, shape, NULL, m, 7, SL_EMPTY_NAN, &res), 0);
    if (res) {
        CHECK(isnan(res->metrics[6].per_image[3]));
        CHECK_CLOSE(res->metrics[6].per_image[1], diag, 1e-12, 0);
        CHECK_INT(res->metrics[6].undefined, 1);
        CHECK(isinf(res->metrics[3].per_image[3])); /* deepmind: still +inf */
        sl_result_free(res);
    }
}

/* Directed distances on boundary voxels: in a 1x7 row the prediction is pixels {0, 1}, the
 * target {1, 6}. Prediction to target: 0 -> 1 is 1, 1 -> 1 is 0: max 1, mean 0.5. Target to
 * prediction: 1 -> 0, 6 -> 5: max 5, mean 2.5. Symmetric: max 5, mean 6 / 4. Chessboard and
 * taxicab agree with euclidean along a row. */
static void test_directed(void)
{
    uint8_t p[7] = {1, 1, 0, 0, 0, 0, 0}, y[7] = {0, 1, 0, 0, 0, 0, 1};
    const int64_t shape[3] = {1, 1, 7};
    struct sl_spec m[7];
    const int dirs[3] = {SL_DIR_SYMMETRIC, SL_DIR_PRED_TO_TARGET, SL_DIR_TARGET_TO_PRED};
    for (int k = 0; k < 3; k++) {
        m[k] = metric("hausdorff");
        set_choice(&m[k], "direction", dirs[k]);
        m[3 + k] = metric("assd");
        set_choice(&m[3 + k], "direction", dirs[k]);
    }
    m[6] = metric("hausdorff");
    set_choice(&m[6], "distance_metric", SL_DIST_TAXICAB);
    struct sl_result *res = NULL;
    CHECK_INT(score(p, y, shape, NULL, m, 7, SL_EMPTY_ONE, &res), 0);
    if (!res) {
        return;
    }
    const double want[7] = {5, 1, 5, 1.5, 0.5, 2.5, 5};
    for (int k = 0; k < 7; k++) {
        CHECK_CLOSE(res->metrics[k].per_image[0], want[k], 1e-15, 0);
    }
    sl_result_free(res);
}

/* Per-class tolerances: multiclass C = 2 on 1x8, class 1 predicted at 0 and present at 2 (two
 * columns apart), class 0 the rest. nsd with tolerances [0, 2]: class 1's two boundary pixels
 * are 2 apart, within 2: 1; with [0, 1.5]: 0; surface_dice with [0, 1.5]: 0.5. A list in
 * binary mode, or of the wrong length, is refused. */
static void test_tolerances(void)
{
    uint8_t p[2 * 8], y[8] = {0};
    for (int k = 0; k < 8; k++) {
        p[k] = k != 0;
        p[8 + k] = k == 0;
    }
    y[2] = 1;
    const double tol_a[2] = {0, 2}, tol_b[2] = {0, 1.5}, tol_c[3] = {1, 1, 1};
    struct sl_spec m[3];
    m[0] = metric("nsd");
    set_list(&m[0], "tolerance", tol_a, 2);
    m[1] = metric("nsd");
    set_list(&m[1], "tolerance", tol_b, 2);
    m[2] = metric("surface_dice");
    set_list(&m[2], "tolerance", tol_b, 2);
    struct sl_request req;
    struct sl_result *res = NULL;
    char msg[256];
    sl_request_init(&req);
    req.prediction =
        (struct sl_tensor){.data = p, .dtype = SL_DT_U8, .ndim = 4, .shape = {1, 2, 1, 8}};
    req.target = (struct sl_tensor){.data = y, .dtype = SL_DT_U8, .ndim = 3, .shape = {1, 1, 8}};
    req.pred_type = SL_PRED_LABELS;
    req.metrics = m;
    req.nmetrics = 3;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->metrics[0].per_image[1], 1, 0, 0);
        CHECK_CLOSE(res->metrics[1].per_image[1], 0, 0, 0);
        /* surfels: each pixel's nearer column of corners is 1 from the other's, its farther
         * column 2: within 1.5, half of each surface by length */
        CHECK_CLOSE(res->metrics[2].per_image[1], 0.5, 1e-15, 0);
        sl_result_free(res);
    }
    set_list(&m[0], "tolerance", tol_c, 3);
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_ESHAPE);
    CHECK(strstr(msg, "tolerance") != NULL);
    /* binary: a list is for multiclass and multilabel */
    uint8_t pb[8] = {1};
    req.prediction =
        (struct sl_tensor){.data = pb, .dtype = SL_DT_U8, .ndim = 3, .shape = {1, 1, 8}};
    req.mode = SL_MODE_BINARY;
    set_list(&m[0], "tolerance", tol_a, 2);
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_EINVAL);
    CHECK(strstr(msg, "tolerance") != NULL);
    /* a negative entry is out of range */
    const double neg[2] = {1, -1};
    struct sl_value v = {.kind = SL_V_LIST, .list = neg, .nlist = 2};
    const struct sl_def *d = sl_find_metric("surface_dice");
    CHECK_INT(sl_param_check(&d->params[sl_param_index(d, "tolerance")], &v, "metrics[0].tolerance",
                             msg, sizeof msg),
              SL_ERANGE);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_table_2d),   CHECK_TEST(test_table_3d),    CHECK_TEST(test_cdt),
    CHECK_TEST(test_two_pixels), CHECK_TEST(test_empty_rules), CHECK_TEST(test_directed),
    CHECK_TEST(test_tolerances),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_surfel", tests);
}
