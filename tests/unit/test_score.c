/* test_score.c - sl_score's reading of shapes (README "Shapes and layouts"): which axes are
 * spatial, with and without spacing, and the 422s (SL_ESHAPE / SL_ERANGE) that name the key
 * when a shape contradicts the spacing, the mode or a connectivity. Expected geometries are
 * the documented rules; the one value computed (hausdorff) is worked out by hand. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "segloss.h"

static uint8_t pred_mask[16], tgt_mask[16];

/* Scores label masks of shape (ndim axes) with mode and spacing (nspacing values, 0: none)
 * for the given metric and dwce connectivity (0: no loss); returns the code, *res the result
 * (freed by the caller) and msg the message. */
static int score(int ndim, const int64_t *shape, enum sl_mode mode, int nspacing,
                 const double *spacing, int conn, struct sl_result **res, char *msg, size_t len)
{
    static struct sl_spec metric_spec, loss_spec;
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){.data = pred_mask, .dtype = SL_DT_U8, .ndim = ndim};
    req.target = (struct sl_tensor){.data = tgt_mask, .dtype = SL_DT_U8, .ndim = ndim};
    memcpy(req.prediction.shape, shape, sizeof(int64_t) * (size_t)ndim);
    memcpy(req.target.shape, shape, sizeof(int64_t) * (size_t)ndim);
    req.pred_type = SL_PRED_LABELS;
    req.mode = mode;
    req.nspacing = nspacing;
    if (nspacing) {
        memcpy(req.spacing, spacing, sizeof(double) * (size_t)nspacing);
    }
    metric_spec = metric("hausdorff");
    req.metrics = &metric_spec;
    req.nmetrics = 1;
    if (conn) {
        loss_spec = loss("distance_weighted_cross_entropy");
        set_num(&loss_spec, "connectivity", conn);
        req.losses = &loss_spec;
        req.nlosses = 1;
    }
    *res = NULL;
    msg[0] = '\0';
    return sl_score(&req, NULL, res, msg, len);
}

static void test_layouts(void)
{
    struct sl_result *res;
    char msg[512];
    const double sp3[3] = {2, 1, 1}, sp2[2] = {1, 1};
    /* [N, D, H, W] = [1, 2, 1, 2] with 3 spacings: binary 3-D, target voxel (0, 0, 0), predicted
     * (1, 0, 0): hausdorff 1 slice * spacing 2 = 2 */
    memset(pred_mask, 0, sizeof pred_mask);
    memset(tgt_mask, 0, sizeof tgt_mask);
    tgt_mask[0] = 1;
    pred_mask[2] = 1;
    const int64_t s4[4] = {1, 2, 1, 2};
    CHECK_INT(score(4, s4, SL_MODE_AUTO, 3, sp3, 0, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_INT(res->mode, SL_MODE_BINARY);
        CHECK_INT(res->classes, 1);
        CHECK_INT(res->nspatial, 3);
        CHECK_CLOSE(res->metrics[0].per_image[0], 2.0, 0, 1e-12);
    }
    sl_result_free(res);
    /* the same arrays without spacing: multilabel, C = 2 channels of 1 x 2 */
    CHECK_INT(score(4, s4, SL_MODE_AUTO, 0, NULL, 0, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_INT(res->mode, SL_MODE_MULTILABEL);
        CHECK_INT(res->nspatial, 2);
    }
    sl_result_free(res);
    /* mode binary, no spacing: 3-D (README) */
    CHECK_INT(score(4, s4, SL_MODE_BINARY, 0, NULL, 0, &res, msg, sizeof msg), 0);
    CHECK(res && res->nspatial == 3);
    sl_result_free(res);
    /* contradictions name spacing */
    CHECK_INT(score(4, s4, SL_MODE_MULTICLASS, 3, sp3, 0, &res, msg, sizeof msg), SL_ESHAPE);
    CHECK_PREFIX(msg, "spacing:");
    CHECK_INT(score(4, s4, SL_MODE_BINARY, 2, sp2, 0, &res, msg, sizeof msg), SL_ESHAPE);
    CHECK_PREFIX(msg, "spacing:");
    const int64_t s3[3] = {1, 2, 2};
    CHECK_INT(score(3, s3, SL_MODE_AUTO, 3, sp3, 0, &res, msg, sizeof msg), SL_ESHAPE);
    CHECK_PREFIX(msg, "spacing:");
    const int64_t s5[5] = {1, 1, 1, 2, 2};
    CHECK_INT(score(5, s5, SL_MODE_AUTO, 2, sp2, 0, &res, msg, sizeof msg), SL_ESHAPE);
    CHECK_PREFIX(msg, "spacing:");

    /* one-slice volumes: [N, 1, H, W] with 3 spacings and [N, 1, 1, H, W] are 3-D (connectivity
     * 26 accepted); [N, 1, H, W] alone is 2-D and connectivity 26 is refused by name */
    const int64_t s4one[4] = {1, 1, 2, 2};
    CHECK_INT(score(4, s4one, SL_MODE_AUTO, 3, sp3, 26, &res, msg, sizeof msg), 0);
    CHECK(res && res->nspatial == 3 && res->spatial[0] == 1);
    sl_result_free(res);
    CHECK_INT(score(5, s5, SL_MODE_AUTO, 0, NULL, 26, &res, msg, sizeof msg), 0);
    CHECK(res && res->nspatial == 3 && res->spatial[0] == 1);
    sl_result_free(res);
    CHECK_INT(score(5, s5, SL_MODE_AUTO, 3, sp3, 26, &res, msg, sizeof msg), 0);
    CHECK(res && res->nspatial == 3);
    sl_result_free(res);
    CHECK(score(4, s4one, SL_MODE_AUTO, 0, NULL, 26, &res, msg, sizeof msg) != 0);
    CHECK_HAS(msg, "connectivity: 26 is not one of 4, 8");
    CHECK_HAS(msg, "[N, 1, 1, H, W]");
    CHECK_INT(score(4, s4one, SL_MODE_AUTO, 0, NULL, 8, &res, msg, sizeof msg), 0);
    CHECK(res && res->nspatial == 2);
    sl_result_free(res);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_layouts),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_score", tests);
}
