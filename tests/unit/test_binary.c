/* test_binary.c - binary losses against hand calculations written here. */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "segloss.h"

static struct sl_tensor tensor_f64(const double *d, int64_t n, int64_t h, int64_t w)
{
    struct sl_tensor t = {d, SL_DT_F64, 3, {n, h, w}};
    return t;
}

static struct sl_tensor tensor_u8(const uint8_t *d, int64_t n, int64_t h, int64_t w)
{
    struct sl_tensor t = {d, SL_DT_U8, 3, {n, h, w}};
    return t;
}

/* Scores one loss over a 1-image (or n-image) batch; returns the batch value (NaN on error). */
static double score1(struct sl_request *req, const struct sl_spec *s, double *per_image)
{
    struct sl_result *res;
    char msg[256];
    req->losses = s;
    req->nlosses = 1;
    req->nmetrics = 0;
    if (sl_score(req, NULL, &res, msg, sizeof msg) != 0) {
        fprintf(stderr, "sl_score: %s\n", msg);
        return NAN;
    }
    double v = res->losses[0].value;
    if (per_image) {
        memcpy(per_image, res->losses[0].per_image, sizeof(double) * (size_t)res->images);
    }
    sl_result_free(res);
    return v;
}

static void test_seed_example(void)
{
    /* the seed's worked example: p = [[0.5, 0.6], [0.2, 0.1]], y = [[1, 1], [0, 0]]
     * CE = -(ln .5 + ln .6 + ln .8 + ln .9) / 4, Dice = 1 - 2 (0.5 + 0.6) / (1.4 + 2) */
    const double p[4] = {0.5, 0.6, 0.2, 0.1};
    const uint8_t y[4] = {1, 1, 0, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor_f64(p, 1, 2, 2);
    req.target = tensor_u8(y, 1, 2, 2);
    req.pred_type = SL_PRED_PROBABILITIES;
    double ce = -(log(0.5) + log(0.6) + log(0.8) + log(0.9)) / 4;
    double dice = 1 - 2 * (0.5 + 0.6) / (1.4 + 2);
    struct sl_spec combo = loss("combo");
    struct sl_spec terms[2] = {loss("cross_entropy"), loss("dice")};
    combo.terms = terms;
    combo.nterms = 2;
    CHECK_CLOSE(score1(&req, &terms[0], NULL), ce, 1e-12, 1e-12);
    CHECK_CLOSE(score1(&req, &terms[1], NULL), dice, 1e-12, 1e-12);
    CHECK_CLOSE(score1(&req, &combo, NULL), ce + dice, 1e-12, 1e-12);
    CHECK_CLOSE(ce + dice, 0.736, 0, 5e-4); /* the write-up's rounded figure */
    terms[1].weight = 0.5;
    CHECK_CLOSE(score1(&req, &combo, NULL), ce + 0.5 * dice, 1e-12, 1e-12);
}

static void test_ce_family_logits(void)
{
    /* x = 0 -> p = 1/2, every log term is ln 2; x = +-100 must stay finite (stable form) */
    const double x[4] = {0, 0, 100, -100};
    const uint8_t y[4] = {1, 0, 0, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor_f64(x, 1, 2, 2);
    req.target = tensor_u8(y, 1, 2, 2);
    const double l2 = log(2.0);
    struct sl_spec s = loss("cross_entropy");
    CHECK_CLOSE(score1(&req, &s, NULL), (2 * l2 + 100 + 100) / 4, 1e-12, 1e-12);
    set_choice(&s, "reduction", 1);
    CHECK_CLOSE(score1(&req, &s, NULL), 2 * l2 + 200, 1e-12, 1e-12);
    /* weighted: pos_weight 3 multiplies y log p: pixels 0 (y=1, x=0) and 3 (y=1, x=-100) */
    struct sl_spec w = loss("weighted_cross_entropy");
    set_num(&w, "beta", 3);
    CHECK_CLOSE(score1(&req, &w, NULL), (3 * l2 + l2 + 100 + 3 * 100) / 4, 1e-12, 1e-12);
}

static void test_balanced_and_focal(void)
{
    /* x = 0 everywhere, y = [1, 0, 0, 0]: auto beta = mean(1-y) = 3/4
     * loss = (0.75 ln2 + 3 * 0.25 ln2) / 4 */
    const double x[4] = {0, 0, 0, 0};
    const uint8_t y[4] = {1, 0, 0, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor_f64(x, 1, 2, 2);
    req.target = tensor_u8(y, 1, 2, 2);
    const double l2 = log(2.0);
    struct sl_spec b = loss("balanced_cross_entropy");
    CHECK_CLOSE(score1(&req, &b, NULL), (0.75 * l2 + 3 * 0.25 * l2) / 4, 1e-12, 1e-12);
    set_num(&b, "beta", 0.3);
    CHECK_CLOSE(score1(&req, &b, NULL), (0.3 * l2 + 3 * 0.7 * l2) / 4, 1e-12, 1e-12);
    /* focal alpha 0.25 gamma 2 at p = 1/2: (1-p)^2 = p^2 = 1/4
     * = (0.25 * 0.25 ln2 + 3 * 0.75 * 0.25 ln2) / 4 */
    struct sl_spec f = loss("focal");
    CHECK_CLOSE(score1(&req, &f, NULL), (0.25 * 0.25 * l2 + 3 * 0.75 * 0.25 * l2) / 4, 1e-12,
                1e-12);
    f.values[sl_param_index(f.def, "alpha")].kind = SL_V_NULL;
    CHECK_CLOSE(score1(&req, &f, NULL), 0.25 * l2, 1e-12, 1e-12);
    set_num(&f, "gamma", 0);
    CHECK_CLOSE(score1(&req, &f, NULL), l2, 1e-12, 1e-12); /* gamma 0, no alpha: plain CE */
}

static void test_balanced_auto_per_image(void)
{
    /* image 0: y = [1, 0], image 1: y = [1, 1]; x = 0. auto_per_image: beta0 = 1/2, beta1 = 0
     * image 0 = (0.5 ln2 + 0.5 ln2) / 2 = ln2/2; image 1 = 0; batch = (ln2 + 0) / 4 */
    const double x[4] = {0, 0, 0, 0};
    const uint8_t y[4] = {1, 0, 1, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor_f64(x, 2, 1, 2);
    req.target = tensor_u8(y, 2, 1, 2);
    struct sl_spec b = loss("balanced_cross_entropy");
    set_choice(&b, "beta", 1);
    double per[2];
    double l2 = log(2.0);
    CHECK_CLOSE(score1(&req, &b, per), l2 / 4, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], l2 / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], 0, 0, 1e-12);
    /* batch auto: beta = 1/4 over all four pixels:
     * y=1 pixels: 3 * 0.25 ln2, y=0 pixel: 0.75 ln2 -> (0.75 + 0.75) ln2 / 4 */
    set_choice(&b, "beta", 0);
    CHECK_CLOSE(score1(&req, &b, NULL), 1.5 * l2 / 4, 1e-12, 1e-12);
}

static void test_region_losses(void)
{
    /* probabilities p = [1, 0, 0.5, 0], y = [1, 1, 0, 0]: tp = 1, sum p = 1.5, sum y = 2,
     * fp = 0.5, fn = 1, sum p^2 = 1.25 */
    const double p[4] = {1, 0, 0.5, 0};
    const uint8_t y[4] = {1, 1, 0, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor_f64(p, 1, 2, 2);
    req.target = tensor_u8(y, 1, 2, 2);
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec d = loss("dice");
    CHECK_CLOSE(score1(&req, &d, NULL), 1 - 2.0 / 3.5, 1e-12, 1e-12);
    set_num(&d, "smooth", 1);
    CHECK_CLOSE(score1(&req, &d, NULL), 1 - 3.0 / 4.5, 1e-12, 1e-12);
    set_num(&d, "smooth", 0);
    set_bool(&d, "squared", true);
    CHECK_CLOSE(score1(&req, &d, NULL), 1 - 2.0 / 3.25, 1e-12, 1e-12);
    set_bool(&d, "squared", false);
    set_bool(&d, "log", true);
    CHECK_CLOSE(score1(&req, &d, NULL), -log(2.0 / 3.5), 1e-12, 1e-12);
    struct sl_spec j = loss("jaccard");
    CHECK_CLOSE(score1(&req, &j, NULL), 1 - 1.0 / 2.5, 1e-12, 1e-12);
    struct sl_spec t = loss("tversky");
    set_num(&t, "fp_weight", 0.3);
    set_num(&t, "fn_weight", 0.7);
    double tv = 1 - 1.0 / (1 + 0.3 * 0.5 + 0.7 * 1);
    CHECK_CLOSE(score1(&req, &t, NULL), tv, 1e-12, 1e-12);
    set_num(&t, "gamma", 2);
    CHECK_CLOSE(score1(&req, &t, NULL), tv * tv, 1e-12, 1e-12);
    /* the seed's beta form: fp weight beta, fn weight 1 - beta; beta 0.5 = Dice */
    struct sl_spec t2 = loss("tversky");
    CHECK_CLOSE(score1(&req, &t2, NULL), 1 - 2.0 / 3.5, 1e-12, 1e-12);
    set_num(&t2, "beta", 0.7);
    CHECK_CLOSE(score1(&req, &t2, NULL), 1 - 1.0 / (1 + 0.7 * 0.5 + 0.3 * 1), 1e-12, 1e-12);
}

static void test_region_batch_and_empty(void)
{
    /* image 0 empty target, empty prediction: dice 0 by convention; image 1: p = [1, 0],
     * y = [1, 1]: 1 - 2/3. per_image mean = (0 + 1/3) / 2; pooled: tp 1, sum p 1, sum y 2 */
    const double p[4] = {0, 0, 1, 0};
    const uint8_t y[4] = {0, 0, 1, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor_f64(p, 2, 1, 2);
    req.target = tensor_u8(y, 2, 1, 2);
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec d = loss("dice");
    double per[2];
    CHECK_CLOSE(score1(&req, &d, per), (0 + 1.0 / 3) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], 0, 0, 1e-15);
    set_bool(&d, "per_image", false);
    CHECK_CLOSE(score1(&req, &d, NULL), 1 - 2.0 / 3, 1e-12, 1e-12);
}

static void test_ignore_and_weight(void)
{
    /* x = 0 everywhere; pixel 1 ignored (255): CE = ln2 over 3 pixels; weight [2, 5, 0, 1]
     * (pixel 1 ignored): (2 + 0 + 1) ln2 / 3 counted pixels */
    const double x[4] = {0, 0, 0, 0};
    const uint8_t y[4] = {1, 255, 0, 0};
    const double w[4] = {2, 5, 0, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor_f64(x, 1, 2, 2);
    req.target = tensor_u8(y, 1, 2, 2);
    req.has_ignore = true;
    req.ignore_index = 255;
    struct sl_spec s = loss("cross_entropy");
    CHECK_CLOSE(score1(&req, &s, NULL), log(2.0), 1e-12, 1e-12);
    req.weight = tensor_f64(w, 1, 2, 2);
    CHECK_CLOSE(score1(&req, &s, NULL), 3 * log(2.0) / 3, 1e-12, 1e-12);
    /* dice ignores pixel 1 too: p = 1/2 on 3 pixels, y = [1, 0, 0]: 1 - 2 * 0.5 / (1.5 + 1) */
    struct sl_spec d = loss("dice");
    CHECK_CLOSE(score1(&req, &d, NULL), 1 - 1.0 / 2.5, 1e-12, 1e-12);
}

static void test_lovasz(void)
{
    /* x = [2, -0.5, 0.5], y = [1, 1, 0]: errors 1 - x sign = [-1, 1.5, 1.5]; sorted
     * (1.5, y=1), (1.5, y=0), (-1, y=1); gts = 2: Jaccard losses 1 - 1/2, 1 - 1/3, ...
     * grads 1/2, 1/6 -> 1.5 * (1/2 + 1/6) = 1 (either order of the tie) */
    const double x[3] = {2, -0.5, 0.5};
    const uint8_t y[3] = {1, 1, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor_f64(x, 1, 1, 3);
    req.target = tensor_u8(y, 1, 1, 3);
    struct sl_spec l = loss("lovasz_hinge");
    CHECK_CLOSE(score1(&req, &l, NULL), 1.0, 1e-12, 1e-12);
    /* all pixels right with margin >= 1: loss 0 */
    const double x2[3] = {1, 1, -1};
    req.prediction = tensor_f64(x2, 1, 1, 3);
    CHECK_CLOSE(score1(&req, &l, NULL), 0.0, 0, 1e-15);
    /* two images, x = 0 everywhere: every error is 1, Jaccard loss 1 -> per image 1;
     * pooled over the batch: also 1 */
    const double x3[4] = {0, 0, 0, 0};
    const uint8_t y3[4] = {1, 0, 0, 1};
    req.prediction = tensor_f64(x3, 2, 1, 2);
    req.target = tensor_u8(y3, 2, 1, 2);
    CHECK_CLOSE(score1(&req, &l, NULL), 1.0, 1e-12, 1e-12);
    set_bool(&l, "per_image", false);
    CHECK_CLOSE(score1(&req, &l, NULL), 1.0, 1e-12, 1e-12);
}

static void test_errors(void)
{
    struct sl_request req;
    struct sl_result *res = NULL;
    char msg[256];
    double x[4] = {0, NAN, 0, 0};
    uint8_t y[4] = {0, 1, 2, 0};
    sl_request_init(&req);
    req.prediction = tensor_f64(x, 1, 2, 2);
    req.target = tensor_u8(y, 1, 2, 2);
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_ERANGE);
    CHECK(strstr(msg, "prediction[0, 0, 1]") != NULL);
    CHECK(res == NULL);
    x[1] = 0;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_ERANGE);
    CHECK(strstr(msg, "target[0, 1, 0]") != NULL);
    y[2] = 0;
    x[3] = 1.5;
    req.pred_type = SL_PRED_PROBABILITIES;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_ERANGE);
    CHECK(strstr(msg, "[0, 1, 1]") != NULL);
    req.pred_type = SL_PRED_LOGITS;
    struct sl_tensor t = tensor_u8(y, 1, 1, 4);
    req.target = t;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_ESHAPE);
    CHECK(strstr(msg, "[1, 1, 4]") != NULL);
    req.target = tensor_u8(y, 1, 2, 2);
    req.nspacing = 3;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_ESHAPE);
    req.nspacing = 0;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    sl_result_free(res);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_seed_example),
    CHECK_TEST(test_ce_family_logits),
    CHECK_TEST(test_balanced_and_focal),
    CHECK_TEST(test_balanced_auto_per_image),
    CHECK_TEST(test_region_losses),
    CHECK_TEST(test_region_batch_and_empty),
    CHECK_TEST(test_ignore_and_weight),
    CHECK_TEST(test_lovasz),
    CHECK_TEST(test_errors),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_binary", tests);
}
