/* test_multiclass.c - multiclass (softmax) and multilabel (sigmoid per channel) losses and
 * metrics through sl_score, against hand calculations written here. Every expected value is a
 * plain C expression of the formula; none is copied from the library's output. */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "segloss.h"

/* prediction [N, C, H, W] of float64 */
static struct sl_tensor pred4(const double *d, int64_t n, int64_t c, int64_t h, int64_t w)
{
    struct sl_tensor t = {.data = d, .dtype = SL_DT_F64, .ndim = 4, .shape = {n, c, h, w}};
    return t;
}

/* multiclass target [N, H, W] of uint8 */
static struct sl_tensor tgt3(const uint8_t *d, int64_t n, int64_t h, int64_t w)
{
    struct sl_tensor t = {.data = d, .dtype = SL_DT_U8, .ndim = 3, .shape = {n, h, w}};
    return t;
}

/* multilabel target [N, C, H, W] of uint8 */
static struct sl_tensor tgt4(const uint8_t *d, int64_t n, int64_t c, int64_t h, int64_t w)
{
    struct sl_tensor t = {.data = d, .dtype = SL_DT_U8, .ndim = 4, .shape = {n, c, h, w}};
    return t;
}

/* Scores one loss; returns the batch value (NaN on error), copies per-image values when asked
 * and reports whether the loss has a per-image list. */
static double score1(struct sl_request *req, const struct sl_spec *s, double *per_image,
                     bool *has_per_image)
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
    if (has_per_image) {
        *has_per_image = res->losses[0].has_per_image;
    }
    sl_result_free(res);
    return v;
}

/* Softmax probability of the first of three logits: e^a / (e^a + e^b + e^c). */
static double sm3(double a, double b, double c)
{
    return exp(a) / (exp(a) + exp(b) + exp(c));
}

static double sigmoid(double x)
{
    return 1 / (1 + exp(-x));
}

/* ---- 1. softmax cross entropy ------------------------------------------------------------- */

/* N = 2, C = 3, 1x2 pixels, layout [i][c][w]. Pixel logits (class 0, 1, 2) and targets:
 *   image 0 pixel 0: ( 2,  0, -1)  t = 0
 *   image 0 pixel 1: ( 0,  1,  3)  t = 1
 *   image 1 pixel 0: ( 1,  1,  1)  t = 2
 *   image 1 pixel 1: (.5, -1,  0)  t = 0 */
static const double CE_X[12] = {
    2, 0,   0, 1,  -1, 3, /* image 0: class 0 {px0, px1}, class 1, class 2 */
    1, 0.5, 1, -1, 1,  0  /* image 1 */
};

static void test_cross_entropy(void)
{
    uint8_t y[4] = {0, 1, 2, 0};
    /* -log p_t per pixel */
    const double l00 = -log(exp(2) / (exp(2) + exp(0) + exp(-1)));
    const double l01 = -log(exp(1) / (exp(0) + exp(1) + exp(3)));
    const double l10 = -log(exp(1) / (exp(1) + exp(1) + exp(1))); /* = log 3 */
    const double l11 = -log(exp(0.5) / (exp(0.5) + exp(-1) + exp(0)));
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(CE_X, 2, 3, 1, 2);
    req.target = tgt3(y, 2, 1, 2);
    req.mode = SL_MODE_MULTICLASS;
    double per[2];
    bool has = false;
    struct sl_spec s = loss("cross_entropy");
    /* plain mean over the 4 pixels; per image over its 2 pixels */
    CHECK_CLOSE(score1(&req, &s, per, &has), (l00 + l01 + l10 + l11) / 4, 1e-12, 1e-12);
    CHECK(has);
    CHECK_CLOSE(per[0], (l00 + l01) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], (l10 + l11) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(l10, log(3.0), 1e-14, 0); /* sanity of the hand formula */

    /* reduction sum */
    set_choice(&s, "reduction", 1);
    CHECK_CLOSE(score1(&req, &s, per, NULL), l00 + l01 + l10 + l11, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], l00 + l01, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], l10 + l11, 1e-12, 1e-12);

    /* class_weights [1, 2, 3]: targets 0, 1, 2, 0 have weights 1, 2, 3, 1;
     * mean = sum w_t l / sum w_t = (l00 + 2 l01 + 3 l10 + l11) / 7 (pooled, not a mean of
     * image means); image 0: (l00 + 2 l01) / 3, image 1: (3 l10 + l11) / 4 */
    const double cw[3] = {1, 2, 3};
    struct sl_spec w = loss("cross_entropy");
    set_list(&w, "class_weights", cw, 3);
    CHECK_CLOSE(score1(&req, &w, per, NULL), (l00 + 2 * l01 + 3 * l10 + l11) / 7, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], (l00 + 2 * l01) / 3, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], (3 * l10 + l11) / 4, 1e-12, 1e-12);
    /* class weights with reduction sum: sum w_t l */
    set_choice(&w, "reduction", 1);
    CHECK_CLOSE(score1(&req, &w, NULL, NULL), l00 + 2 * l01 + 3 * l10 + l11, 1e-12, 1e-12);
    set_choice(&w, "reduction", 0);

    /* ignore_index 255 on image 1 pixel 0: it leaves numerator and denominator.
     * mean = (l00 + l01 + l11) / 3; image 1 = l11 / 1 */
    y[2] = 255;
    req.has_ignore = true;
    req.ignore_index = 255;
    set_choice(&s, "reduction", 0);
    CHECK_CLOSE(score1(&req, &s, per, NULL), (l00 + l01 + l11) / 3, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], (l00 + l01) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], l11, 1e-12, 1e-12);
    /* ignore + class weights: the ignored pixel's weight (3) leaves the denominator too:
     * (l00 + 2 l01 + l11) / (1 + 2 + 1) */
    CHECK_CLOSE(score1(&req, &w, per, NULL), (l00 + 2 * l01 + l11) / 4, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], l11 / 1, 1e-12, 1e-12);
    /* every pixel of image 1 ignored: image 1 scores 0 and adds nothing to the batch */
    y[3] = 255;
    CHECK_CLOSE(score1(&req, &s, per, NULL), (l00 + l01) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], 0, 0, 1e-15);

    /* a [N, 1, H, W] target is the same as [N, H, W] */
    y[2] = 2;
    y[3] = 0;
    req.has_ignore = false;
    struct sl_tensor t4 = {.data = y, .dtype = SL_DT_U8, .ndim = 4, .shape = {2, 1, 1, 2}};
    req.target = t4;
    CHECK_CLOSE(score1(&req, &s, NULL, NULL), (l00 + l01 + l10 + l11) / 4, 1e-12, 1e-12);
}

/* ---- 2. softmax focal ------------------------------------------------------------------- */

static void test_focal(void)
{
    const uint8_t y[4] = {0, 1, 2, 0};
    /* p_t per pixel (same data as the CE test) and the focal term -(1 - p)^2 log p */
    const double p00 = exp(2) / (exp(2) + exp(0) + exp(-1));
    const double p01 = exp(1) / (exp(0) + exp(1) + exp(3));
    const double p10 = 1.0 / 3;
    const double p11 = exp(0.5) / (exp(0.5) + exp(-1) + exp(0));
    const double f00 = -(1 - p00) * (1 - p00) * log(p00);
    const double f01 = -(1 - p01) * (1 - p01) * log(p01);
    const double f10 = -(1 - p10) * (1 - p10) * log(p10);
    const double f11 = -(1 - p11) * (1 - p11) * log(p11);
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(CE_X, 2, 3, 1, 2);
    req.target = tgt3(y, 2, 1, 2);
    req.mode = SL_MODE_MULTICLASS;
    double per[2];

    /* alpha null, gamma 2: mean over pixels */
    struct sl_spec f = loss("focal");
    set_null(&f, "alpha");
    CHECK_CLOSE(score1(&req, &f, per, NULL), (f00 + f01 + f10 + f11) / 4, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], (f00 + f01) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], (f10 + f11) / 2, 1e-12, 1e-12);
    /* reduction sum */
    set_choice(&f, "reduction", 1);
    CHECK_CLOSE(score1(&req, &f, NULL, NULL), f00 + f01 + f10 + f11, 1e-12, 1e-12);
    set_choice(&f, "reduction", 0);

    /* alpha as a number multiplies every term */
    set_num(&f, "alpha", 0.4);
    CHECK_CLOSE(score1(&req, &f, NULL, NULL), 0.4 * (f00 + f01 + f10 + f11) / 4, 1e-12, 1e-12);
    /* the default alpha is the number 0.25 */
    struct sl_spec fd = loss("focal");
    CHECK_CLOSE(score1(&req, &fd, NULL, NULL), 0.25 * (f00 + f01 + f10 + f11) / 4, 1e-12, 1e-12);

    /* alpha list [0.2, 0.3, 0.5]: alpha of the target class, targets 0, 1, 2, 0 */
    const double al[3] = {0.2, 0.3, 0.5};
    set_list(&f, "alpha", al, 3);
    CHECK_CLOSE(score1(&req, &f, per, NULL), (0.2 * f00 + 0.3 * f01 + 0.5 * f10 + 0.2 * f11) / 4,
                1e-12, 1e-12);
    CHECK_CLOSE(per[0], (0.2 * f00 + 0.3 * f01) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], (0.5 * f10 + 0.2 * f11) / 2, 1e-12, 1e-12);

    /* gamma 3 changes the modulating factor: (1 - p)^3 */
    set_null(&f, "alpha");
    set_num(&f, "gamma", 3);
    CHECK_CLOSE(score1(&req, &f, NULL, NULL),
                (-pow(1 - p00, 3) * log(p00) - pow(1 - p01, 3) * log(p01) -
                 pow(1 - p10, 3) * log(p10) - pow(1 - p11, 3) * log(p11)) /
                    4,
                1e-12, 1e-12);
    /* gamma 0, alpha null: plain softmax cross entropy */
    set_num(&f, "gamma", 0);
    CHECK_CLOSE(score1(&req, &f, NULL, NULL), -(log(p00) + log(p01) + log(p10) + log(p11)) / 4,
                1e-12, 1e-12);
}

/* ---- 3. dice / jaccard / tversky per class ------------------------------------------------ */

static void test_region_logits(void)
{
    /* image 0 of the CE data alone: pixel 0 logits (2, 0, -1) t = 0, pixel 1 (0, 1, 3) t = 1.
     * Per class c: sp = p_c(px0) + p_c(px1), sy = #target pixels, spy = p_c at its targets.
     *   class 0: spy = p0(px0), sy = 1
     *   class 1: spy = p1(px1), sy = 1
     *   class 2: absent from the target, sp > 0 (softmax is never 0): dice = 1 - 0/sp = 1 */
    const uint8_t y[2] = {0, 1};
    const double p0a = sm3(2, 0, -1), p0b = sm3(0, 1, 3);
    const double p1a = sm3(0, 2, -1), p1b = sm3(1, 0, 3);
    const double p2a = sm3(-1, 2, 0), p2b = sm3(3, 0, 1);
    CHECK_CLOSE(p0a + p1a + p2a, 1, 1e-14, 0); /* the hand softmax sums to 1 */
    CHECK_CLOSE(p0b + p1b + p2b, 1, 1e-14, 0);
    const double d0 = 1 - 2 * p0a / (p0a + p0b + 1);
    const double d1 = 1 - 2 * p1b / (p1a + p1b + 1);
    const double d2 = 1 - 2 * 0 / (p2a + p2b + 0);
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(CE_X, 1, 3, 1, 2);
    req.target = tgt3(y, 1, 1, 2);
    /* mode left AUTO: [1, 3, 1, 2] with [1, 1, 2] is multiclass */
    struct sl_spec d = loss("dice");
    CHECK_CLOSE(score1(&req, &d, NULL, NULL), (d0 + d1 + d2) / 3, 1e-12, 1e-12);
    CHECK_CLOSE(d2, 1, 0, 0);
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &d, NULL, NULL), (d1 + d2) / 2, 1e-12, 1e-12);
    req.include_background = true;
    /* jaccard: 1 - spy / (sp + sy - spy) */
    struct sl_spec j = loss("jaccard");
    const double j0 = 1 - p0a / (p0a + p0b + 1 - p0a);
    const double j1 = 1 - p1b / (p1a + p1b + 1 - p1b);
    CHECK_CLOSE(score1(&req, &j, NULL, NULL), (j0 + j1 + 1) / 3, 1e-12, 1e-12);
}

/* N = 2, C = 3, 1x2 pixels, probabilities (rows sum to 1), layout [i][c][w]:
 *   image 0 pixel 0: (.7, .2, .1) t = 0;  pixel 1: (.1, .6, .3) t = 1
 *   image 1 pixel 0: (.5, .5, 0)  t = 1;  pixel 1: (.8, .2, 0)  t = 0
 * Sums per class (sp, sy, spy):
 *   image 0: c0 (.8, 1, .7)  c1 (.8, 1, .6)  c2 (.4, 0, 0)
 *   image 1: c0 (1.3, 1, .8) c1 (.7, 1, .5)  c2 (0, 0, 0)  <- absent from target and prediction
 *   pooled:  c0 (2.1, 2, 1.5) c1 (1.5, 2, 1.1) c2 (.4, 0, 0) */
static const double RG_P[12] = {0.7, 0.1, 0.2, 0.6, 0.1, 0.3, 0.5, 0.8, 0.5, 0.2, 0.0, 0.0};
static const uint8_t RG_Y[4] = {0, 1, 1, 0};

static void test_region_probabilities(void)
{
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(RG_P, 2, 3, 1, 2);
    req.target = tgt3(RG_Y, 2, 1, 2);
    req.mode = SL_MODE_MULTICLASS;
    req.pred_type = SL_PRED_PROBABILITIES;
    double per[2];
    bool has = false;

    /* Dice 1 - 2 spy / (sp + sy) */
    const double d00 = 1 - 2 * 0.7 / (0.8 + 1); /* 2/9 */
    const double d01 = 1 - 2 * 0.6 / (0.8 + 1); /* 1/3 */
    const double d02 = 1 - 0 / (0.4 + 0);       /* 1: predicted mass, no target */
    const double d10 = 1 - 2 * 0.8 / (1.3 + 1); /* 7/23 */
    const double d11 = 1 - 2 * 0.5 / (0.7 + 1); /* 7/17 */
    const double d12 = 0;                       /* 0/0: loss 0 */
    struct sl_spec d = loss("dice");
    CHECK_CLOSE(score1(&req, &d, per, &has), ((d00 + d01 + d02) / 3 + (d10 + d11 + d12) / 3) / 2,
                1e-12, 1e-12);
    CHECK(has);
    CHECK_CLOSE(per[0], (2.0 / 9 + 1.0 / 3 + 1) / 3, 1e-12, 1e-12); /* = 14/27 */
    CHECK_CLOSE(per[1], (7.0 / 23 + 7.0 / 17 + 0) / 3, 1e-12, 1e-12);

    /* include_background false: mean over classes 1, 2 only */
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &d, per, NULL), ((d01 + d02) / 2 + (d11 + d12) / 2) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], 2.0 / 3, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], 7.0 / 34, 1e-12, 1e-12);
    req.include_background = true;

    /* class_weights [1, 2, .5]: each class's loss times its weight, divided by the number of
     * counted classes (3, not the weight sum) */
    const double cw[3] = {1, 2, 0.5};
    struct sl_spec dw = loss("dice");
    set_list(&dw, "class_weights", cw, 3);
    CHECK_CLOSE(score1(&req, &dw, per, NULL),
                ((d00 + 2 * d01 + 0.5 * d02) / 3 + (d10 + 2 * d11 + 0.5 * d12) / 3) / 2, 1e-12,
                1e-12);
    CHECK_CLOSE(per[0], (d00 + 2 * d01 + 0.5 * d02) / 3, 1e-12, 1e-12);
    /* with include_background false: (2 d01 + .5 d02) / 2 */
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &dw, per, NULL),
                ((2 * d01 + 0.5 * d02) / 2 + (2 * d11 + 0.5 * d12) / 2) / 2, 1e-12, 1e-12);
    req.include_background = true;

    /* per_image false: sums pooled per class over the batch first, no per-image list */
    set_bool(&d, "per_image", false);
    CHECK_CLOSE(score1(&req, &d, NULL, &has),
                ((1 - 2 * 1.5 / (2.1 + 2)) + (1 - 2 * 1.1 / (1.5 + 2)) + (1 - 0 / 0.4)) / 3, 1e-12,
                1e-12);
    CHECK(!has);
    set_bool(&d, "per_image", true);

    /* smooth 1: (2 spy + 1) / (sp + sy + 1); image 1 class 2 is (0 + 1) / (0 + 1) = 1 */
    set_num(&d, "smooth", 1);
    CHECK_CLOSE(score1(&req, &d, NULL, NULL),
                (((1 - 2.4 / 2.8) + (1 - 2.2 / 2.8) + (1 - 1 / 1.4)) / 3 +
                 ((1 - 2.6 / 3.3) + (1 - 2.0 / 2.7) + (1 - 1.0 / 1.0)) / 3) /
                    2,
                1e-12, 1e-12);
    set_num(&d, "smooth", 0);
    /* squared: sum p^2 + sum y. image 0: c0 .49+.01 = .5, c1 .04+.36 = .4, c2 .01+.09 = .1;
     * image 1: c0 .25+.64 = .89, c1 .25+.04 = .29, c2 0 */
    set_bool(&d, "squared", true);
    CHECK_CLOSE(score1(&req, &d, NULL, NULL),
                (((1 - 1.4 / 1.5) + (1 - 1.2 / 1.4) + (1 - 0 / 0.1)) / 3 +
                 ((1 - 1.6 / 1.89) + (1 - 1.0 / 1.29) + 0) / 3) /
                    2,
                1e-12, 1e-12);

    /* Jaccard 1 - spy / (sp + sy - spy):
     * image 0: c0 1 - .7/1.1 = 4/11, c1 1 - .6/1.2 = 1/2, c2 1 - 0/.4 = 1
     * image 1: c0 1 - .8/1.5 = 7/15, c1 1 - .5/1.2 = 7/12, c2 0/0 -> 0 */
    struct sl_spec j = loss("jaccard");
    CHECK_CLOSE(score1(&req, &j, per, NULL),
                ((4.0 / 11 + 0.5 + 1) / 3 + (7.0 / 15 + 7.0 / 12 + 0) / 3) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], (1 - 0.7 / 1.1 + 1 - 0.6 / 1.2 + 1) / 3, 1e-12, 1e-12);
    /* log: -log(max(score, 1e-7)); image 0 class 2 has score 0 -> -log(1e-7) */
    set_bool(&j, "log", true);
    CHECK_CLOSE(score1(&req, &j, per, NULL),
                ((-log(0.7 / 1.1) - log(0.5) - log(1e-7)) / 3 +
                 (-log(0.8 / 1.5) - log(0.5 / 1.2) - log(1.0)) / 3) /
                    2,
                1e-12, 1e-12);
    set_bool(&j, "log", false);
    /* jaccard pooled: c0 1 - 1.5/(2.1 + 2 - 1.5), c1 1 - 1.1/(1.5 + 2 - 1.1), c2 1 */
    set_bool(&j, "per_image", false);
    CHECK_CLOSE(score1(&req, &j, NULL, NULL), ((1 - 1.5 / 2.6) + (1 - 1.1 / 2.4) + 1) / 3, 1e-12,
                1e-12);

    /* Tversky fp 0.3, fn 0.7: score = tp / (tp + .3 fp + .7 fn), fp = sp - tp, fn = sy - tp
     * image 0: c0 tp .7 fp .1 fn .3 -> .7/.94; c1 tp .6 fp .2 fn .4 -> .6/.94; c2 tp 0 fp .4 -> 0
     * image 1: c0 tp .8 fp .5 fn .2 -> .8/1.09; c1 tp .5 fp .2 fn .5 -> .5/.91; c2 0/0 -> 1 */
    struct sl_spec t = loss("tversky");
    set_num(&t, "fp_weight", 0.3);
    set_num(&t, "fn_weight", 0.7);
    const double m0 = ((1 - 0.7 / (0.7 + 0.3 * 0.1 + 0.7 * 0.3)) +
                       (1 - 0.6 / (0.6 + 0.3 * 0.2 + 0.7 * 0.4)) + 1) /
                      3;
    const double m1 = ((1 - 0.8 / (0.8 + 0.3 * 0.5 + 0.7 * 0.2)) +
                       (1 - 0.5 / (0.5 + 0.3 * 0.2 + 0.7 * 0.5)) + 0) /
                      3;
    CHECK_CLOSE(score1(&req, &t, per, NULL), (m0 + m1) / 2, 1e-12, 1e-12);
    /* gamma 2 applies to each image's class mean (smp: loss.mean() ** gamma) */
    set_num(&t, "gamma", 2);
    CHECK_CLOSE(score1(&req, &t, per, NULL), (m0 * m0 + m1 * m1) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], m0 * m0, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], m1 * m1, 1e-12, 1e-12);
    /* pooled with gamma: c0 tp 1.5 fp .6 fn .5, c1 tp 1.1 fp .4 fn .9, c2 tp 0 fp .4 -> 1;
     * value = (class mean)^2 */
    set_bool(&t, "per_image", false);
    const double mp = ((1 - 1.5 / (1.5 + 0.3 * 0.6 + 0.7 * 0.5)) +
                       (1 - 1.1 / (1.1 + 0.3 * 0.4 + 0.7 * 0.9)) + 1) /
                      3;
    CHECK_CLOSE(score1(&req, &t, NULL, &has), mp * mp, 1e-12, 1e-12);
    CHECK(!has);
    /* the seed's beta form, beta 0.5, is Dice */
    struct sl_spec tb = loss("tversky");
    CHECK_CLOSE(score1(&req, &tb, NULL, NULL), ((d00 + d01 + d02) / 3 + (d10 + d11 + d12) / 3) / 2,
                1e-12, 1e-12);
}

/* ---- 4. Lovász-Softmax -------------------------------------------------------------------- */

/* Dyadic probabilities (exact in float). lovasz_grad (Berman et al.) on errors sorted
 * decreasing with labels y: jac_k = 1 - (gts - cumsum(y)_k) / (gts + cumsum(1-y)_k),
 * grad_k = jac_k - jac_{k-1}; loss = sum e_k grad_k. */
static void test_lovasz_single(void)
{
    /* one image, 1x3 pixels, targets [0, 0, 1] (class 2 absent):
     *   pixel 0 (.5, .25, .25), pixel 1 (.25, .5, .25), pixel 2 (.625, .25, .125)
     * class 0: fg [1,1,0], p [.5,.25,.625], errors [.5,.75,.625]
     *   sorted (.75,1) (.625,0) (.5,1), gts 2: jac .5, 2/3, 1 -> grads .5, 1/6, 1/3
     * class 1: fg [0,0,1], p [.25,.5,.25], errors [.25,.5,.75]
     *   sorted (.75,1) (.5,0) (.25,0), gts 1: jac 1, 1, 1 -> grads 1, 0, 0 -> .75
     * class 2: no fg, errors = p [.25,.25,.125]; gts 0: jac 1, 1, 1 -> grads 1, 0, 0 -> .25 */
    const double p[9] = {0.5, 0.25, 0.625, 0.25, 0.5, 0.25, 0.25, 0.25, 0.125};
    const uint8_t y[3] = {0, 0, 1};
    const double L0 = 0.75 * 0.5 + 0.625 * (2.0 / 3 - 0.5) + 0.5 * (1 - 2.0 / 3);
    const double L1 = 0.75, L2 = 0.25;
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(p, 1, 3, 1, 3);
    req.target = tgt3(y, 1, 1, 3);
    req.mode = SL_MODE_MULTICLASS;
    req.pred_type = SL_PRED_PROBABILITIES;
    bool has = true;
    struct sl_spec l = loss("lovasz_softmax");
    /* default: classes present, per_image false (one loss over the flat batch) */
    CHECK_CLOSE(score1(&req, &l, NULL, &has), (L0 + L1) / 2, 1e-12, 1e-12);
    CHECK(!has);
    set_choice(&l, "classes", 1); /* all */
    CHECK_CLOSE(score1(&req, &l, NULL, NULL), (L0 + L1 + L2) / 3, 1e-12, 1e-12);
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &l, NULL, NULL), (L1 + L2) / 2, 1e-12, 1e-12);
    set_choice(&l, "classes", 0);
    CHECK_CLOSE(score1(&req, &l, NULL, NULL), L1, 1e-12, 1e-12);
    /* a confident, correct prediction: errors 0 -> loss 0 */
    const double q[9] = {1, 1, 0, 0, 0, 1, 0, 0, 0};
    req.prediction = pred4(q, 1, 3, 1, 3);
    req.include_background = true;
    CHECK_CLOSE(score1(&req, &l, NULL, NULL), 0, 0, 1e-15);
}

static void test_lovasz_batch(void)
{
    /* two images of 1x2 pixels:
     *   a = image 0 px 0 (.75, .125, .125)    t 0
     *   b = image 0 px 1 (.5, .375, .125)     t 1
     *   c = image 1 px 0 (.125, .125, .75)    t 2
     *   d = image 1 px 1 (.3125, .375, .3125) t 1
     * per image:
     *   image 0 c0: errors a .25 (y1), b .5 (y0); sorted (.5,0) (.25,1), gts 1: jac .5, 1
     *               -> .5*.5 + .25*.5 = .375
     *           c1: errors a .125 (0), b .625 (1); sorted (.625,1) (.125,0): grads 1, 0 -> .625
     *           c2: absent, errors .125, .125 -> max = .125
     *   image 1 c0: absent, errors .125, .3125 -> .3125
     *           c1: errors c .125 (0), d .625 (1) -> .625
     *           c2: errors c .25 (1), d .3125 (0); sorted (.3125,0) (.25,1): grads .5, .5
     *               -> .15625 + .125 = .28125
     * flattened batch (a, b, c, d):
     *   c0: errors a .25 (1), b .5 (0), c .125 (0), d .3125 (0), gts 1
     *       sorted (.5,0) (.3125,0) (.25,1) (.125,0): jac 1/2, 2/3, 1, 1
     *       -> .5*.5 + .3125/6 + .25/3
     *   c1: errors a .125 (0), b .625 (1), c .125 (0), d .625 (1), gts 2
     *       sorted (.625,1) (.625,1) (.125,0) (.125,0): jac 1/2, 1, 1, 1 -> .625
     *   c2: errors a .125 (0), b .125 (0), c .25 (1), d .3125 (0), gts 1
     *       sorted (.3125,0) (.25,1) ...: jac 1/2, 1, 1, 1 -> .15625 + .125 = .28125 */
    const double p[12] = {0.75,  0.5,    0.125, 0.375, 0.125, 0.125,
                          0.125, 0.3125, 0.125, 0.375, 0.75,  0.3125};
    uint8_t y[4] = {0, 1, 2, 1};
    const double i0c0 = 0.375, i0c1 = 0.625, i0c2 = 0.125;
    const double i1c0 = 0.3125, i1c1 = 0.625, i1c2 = 0.28125;
    const double B0 = 0.5 * 0.5 + 0.3125 * (2.0 / 3 - 0.5) + 0.25 * (1 - 2.0 / 3);
    const double B1 = 0.625 * 0.5 + 0.625 * 0.5, B2 = 0.3125 * 0.5 + 0.25 * 0.5;
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(p, 2, 3, 1, 2);
    req.target = tgt3(y, 2, 1, 2);
    req.pred_type = SL_PRED_PROBABILITIES;
    double per[2];
    bool has = false;
    struct sl_spec l = loss("lovasz_softmax");
    /* per_image false (default): every class is present in the batch */
    CHECK_CLOSE(score1(&req, &l, NULL, &has), (B0 + B1 + B2) / 3, 1e-12, 1e-12);
    CHECK(!has);
    set_choice(&l, "classes", 1);
    CHECK_CLOSE(score1(&req, &l, NULL, NULL), (B0 + B1 + B2) / 3, 1e-12, 1e-12);
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &l, NULL, NULL), (B1 + B2) / 2, 1e-12, 1e-12);
    req.include_background = true;
    /* per_image true, classes all: mean of the image means over all 3 classes */
    set_bool(&l, "per_image", true);
    CHECK_CLOSE(score1(&req, &l, per, &has),
                ((i0c0 + i0c1 + i0c2) / 3 + (i1c0 + i1c1 + i1c2) / 3) / 2, 1e-12, 1e-12);
    CHECK(has);
    CHECK_CLOSE(per[0], (i0c0 + i0c1 + i0c2) / 3, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], (i1c0 + i1c1 + i1c2) / 3, 1e-12, 1e-12);
    /* per_image true, classes present: image 0 {0, 1}, image 1 {1, 2} */
    set_choice(&l, "classes", 0);
    CHECK_CLOSE(score1(&req, &l, per, NULL), ((i0c0 + i0c1) / 2 + (i1c1 + i1c2) / 2) / 2, 1e-12,
                1e-12);
    CHECK_CLOSE(per[0], 0.5, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], 0.453125, 1e-12, 1e-12);
    /* ... without the background: image 0 {1}, image 1 {1, 2} */
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &l, per, NULL), (i0c1 + (i1c1 + i1c2) / 2) / 2, 1e-12, 1e-12);
    req.include_background = true;
    /* ignore pixel d: image 1 keeps pixel c only (t 2): c2 errors [.25] (y1) -> .25;
     * classes 0 and 1 are absent there -> image 1 = .25 */
    y[3] = 255;
    req.has_ignore = true;
    req.ignore_index = 255;
    CHECK_CLOSE(score1(&req, &l, per, NULL), (0.5 + 0.25) / 2, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], 0.25, 1e-12, 1e-12);
}

static void test_lovasz_logits(void)
{
    /* logits go through the softmax: image 0 of the CE data, targets [0, 1], classes "all",
     * 1x2 pixels. Class c errors: |fg - p_c| at px0, px1. The library keeps the probabilities
     * in float, so the tolerance is float's. */
    const uint8_t y[2] = {0, 1};
    const double p0a = sm3(2, 0, -1), p0b = sm3(0, 1, 3);
    const double p1a = sm3(0, 2, -1), p1b = sm3(1, 0, 3);
    const double p2a = sm3(-1, 2, 0), p2b = sm3(3, 0, 1);
    /* class 0: errors px0 1 - p0a (y1) ~ .16, px1 p0b (y0) ~ .04; the fg error is larger:
     *   sorted (1-p0a, 1), (p0b, 0), gts 1: jac 1, 1 -> loss 1 - p0a
     * class 1: errors px0 p1a (y0) ~ .11, px1 1 - p1b (y1) ~ .88: sorted (1-p1b, 1), (p1a, 0)
     *   -> loss 1 - p1b
     * class 2: no fg: errors p2a ~ .04, p2b ~ .84 -> max = p2b */
    CHECK(1 - p0a > p0b && 1 - p1b > p1a && p2b > p2a); /* the order assumed above */
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(CE_X, 1, 3, 1, 2);
    req.target = tgt3(y, 1, 1, 2);
    struct sl_spec l = loss("lovasz_softmax");
    set_choice(&l, "classes", 1);
    CHECK_CLOSE(score1(&req, &l, NULL, NULL), ((1 - p0a) + (1 - p1b) + p2b) / 3, 1e-6, 1e-7);
    set_choice(&l, "classes", 0);
    CHECK_CLOSE(score1(&req, &l, NULL, NULL), ((1 - p0a) + (1 - p1b)) / 2, 1e-6, 1e-7);
}

/* ---- 5. multiclass metrics on the argmax --------------------------------------------------- */

/* N = 2, C = 3, 1x3 pixels. Pixel logits -> argmax (ties: lowest class), target:
 *   image 0: px0 (3, 0, 0) -> 0, t 0;  px1 (0, 2, 2) -> 1 (tie 1/2), t 1;  px2 (0, 1, -1) -> 1, t 2
 *   image 1: px0 (0, 0, 1) -> 2, t 2;  px1 (1, 0, 1) -> 0 (tie 0/2), t 2;  px2 (2, 2, 2) -> 0, t 0
 * Per-class counts (tp, fp, fn, tn):
 *   image 0: c0 (1, 0, 0, 2)  c1 (1, 1, 0, 1)  c2 (0, 0, 1, 2)
 *   image 1: c0 (1, 1, 0, 1)  c1 (0, 0, 0, 3)  c2 (1, 0, 1, 1)
 *   summed:  c0 (2, 1, 0, 3)  c1 (1, 1, 0, 4)  c2 (1, 0, 2, 3)
 * Matrix (row target, column prediction): (0,0) x2, (1,1), (2,1), (2,2), (2,0). */
static const double MT_X[18] = {
    3, 0, 0, 0, 2, 1, 0, 2, -1, /* image 0: class 0 {px0..2}, class 1, class 2 */
    0, 1, 2, 0, 0, 2, 1, 1, 2   /* image 1 */
};

static void test_metrics(void)
{
    uint8_t y[6] = {0, 1, 2, 2, 2, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(MT_X, 2, 3, 1, 3);
    req.target = tgt3(y, 2, 1, 3);
    struct sl_spec ms[5] = {metric("dice"), metric("iou"), metric("precision"), metric("recall"),
                            metric("confusion")};
    req.metrics = ms;
    req.nmetrics = 5;
    struct sl_result *res = NULL;
    char msg[256];
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (!res) {
        fprintf(stderr, "sl_score: %s\n", msg);
        return;
    }
    CHECK_INT(res->mode, SL_MODE_MULTICLASS);
    CHECK_INT(res->classes, 3);
    CHECK_INT(res->images, 2);
    /* Dice 2tp / (2tp + fp + fn); image 1 class 1 is empty on empty -> 1 */
    const double dice[6] = {2.0 / 2, 2.0 / 3, 0.0 / 1, 2.0 / 3, 1, 2.0 / 3};
    /* IoU tp / (tp + fp + fn) */
    const double iou[6] = {1, 1.0 / 2, 0, 1.0 / 2, 1, 1.0 / 2};
    /* precision tp / (tp + fp): image 0 class 2 has 0/0 with a missed pixel -> 0 */
    const double prec[6] = {1, 1.0 / 2, 0, 1.0 / 2, 1, 1};
    /* recall tp / (tp + fn) */
    const double rec[6] = {1, 1, 0, 1, 1, 1.0 / 2};
    const double *want[4] = {dice, iou, prec, rec};
    /* global from summed counts */
    const double gdice[3] = {4.0 / 5, 2.0 / 3, 2.0 / 4};
    const double giou[3] = {2.0 / 3, 1.0 / 2, 1.0 / 3};
    const double gprec[3] = {2.0 / 3, 1.0 / 2, 1.0 / 1};
    const double grec[3] = {2.0 / 2, 1.0 / 1, 1.0 / 3};
    const double *gwant[4] = {gdice, giou, gprec, grec};
    for (int k = 0; k < 4; k++) {
        const struct sl_metric_result *m = &res->metrics[k];
        double msum = 0;
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < 2; i++) {
                CHECK_CLOSE(m->per_image[i * 3 + c], want[k][i * 3 + c], 1e-12, 1e-12);
            }
            double pc = (want[k][c] + want[k][3 + c]) / 2; /* mean over the 2 images */
            CHECK_CLOSE(m->per_class[c], pc, 1e-12, 1e-12);
            CHECK_CLOSE(m->global[c], gwant[k][c], 1e-12, 1e-12);
            msum += pc;
        }
        CHECK_CLOSE(m->mean, msum / 3, 1e-12, 1e-12);
        CHECK_INT(m->undefined, 0);
    }
    /* spelled out for dice: per_class 5/6, 5/6, 1/3, mean 2/3 */
    CHECK_CLOSE(res->metrics[0].per_class[0], 5.0 / 6, 1e-12, 1e-12);
    CHECK_CLOSE(res->metrics[0].per_class[2], 1.0 / 3, 1e-12, 1e-12);
    CHECK_CLOSE(res->metrics[0].mean, 2.0 / 3, 1e-12, 1e-12);
    /* confusion counts */
    const struct sl_metric_result *cm = &res->metrics[4];
    const int64_t cnt[6][4] = {{1, 0, 0, 2}, {1, 1, 0, 1}, {0, 0, 1, 2},
                               {1, 1, 0, 1}, {0, 0, 0, 3}, {1, 0, 1, 1}};
    const int64_t tot[3][4] = {{2, 1, 0, 3}, {1, 1, 0, 4}, {1, 0, 2, 3}};
    CHECK(cm->counts != NULL && cm->total != NULL && cm->matrix != NULL);
    if (cm->counts && cm->total && cm->matrix) {
        for (int k = 0; k < 6; k++) {
            CHECK_INT(cm->counts[k].tp, cnt[k][0]);
            CHECK_INT(cm->counts[k].fp, cnt[k][1]);
            CHECK_INT(cm->counts[k].fn, cnt[k][2]);
            CHECK_INT(cm->counts[k].tn, cnt[k][3]);
        }
        for (int c = 0; c < 3; c++) {
            CHECK_INT(cm->total[c].tp, tot[c][0]);
            CHECK_INT(cm->total[c].fp, tot[c][1]);
            CHECK_INT(cm->total[c].fn, tot[c][2]);
            CHECK_INT(cm->total[c].tn, tot[c][3]);
        }
        const int64_t mat[9] = {2, 0, 0, /* target 0 */
                                0, 1, 0, /* target 1 */
                                1, 1, 1 /* target 2 */};
        for (int k = 0; k < 9; k++) {
            CHECK_INT(cm->matrix[k], mat[k]);
        }
    }
    sl_result_free(res);

    /* include_background false: class 0 leaves the mean but stays in per_class.
     * dice mean = (5/6 + 1/3) / 2 = 7/12 */
    req.include_background = false;
    req.nmetrics = 1;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->metrics[0].mean, 7.0 / 12, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].per_class[0], 5.0 / 6, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].per_image[0], 1, 1e-12, 1e-12);
        sl_result_free(res);
    }
    req.include_background = true;

    /* empty "nan": image 1 class 1 (empty on empty) is undefined; per_class[1] = 2/3 (image 0
     * only); mean = (5/6 + 2/3 + 1/3) / 3 = 11/18; global is unchanged (c1 has tp 1, fp 1) */
    req.empty = SL_EMPTY_NAN;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK(isnan(res->metrics[0].per_image[1 * 3 + 1]));
        CHECK_INT(res->metrics[0].undefined, 1);
        CHECK_CLOSE(res->metrics[0].per_class[1], 2.0 / 3, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].mean, 11.0 / 18, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].global[1], 2.0 / 3, 1e-12, 1e-12);
        sl_result_free(res);
    }
    req.empty = SL_EMPTY_ONE;

    /* ignore image 1 pixel 1 (t 2, predicted 0): image 1 becomes
     *   c0 (1, 0, 0, 1) -> dice 1;  c1 (0, 0, 0, 2) -> 1;  c2 (1, 0, 0, 1) -> 1
     * and the matrix loses its (2, 0) entry */
    y[4] = 255;
    req.has_ignore = true;
    req.ignore_index = 255;
    struct sl_spec ms2[2] = {metric("dice"), metric("confusion")};
    req.metrics = ms2;
    req.nmetrics = 2;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        for (int c = 0; c < 3; c++) {
            CHECK_CLOSE(res->metrics[0].per_image[3 + c], 1, 1e-12, 1e-12);
        }
        const struct sl_confusion *c0 = &res->metrics[1].counts[3 + 0];
        CHECK(c0->tp == 1 && c0->fp == 0 && c0->fn == 0 && c0->tn == 1);
        CHECK_INT(res->metrics[1].matrix[2 * 3 + 0], 0);
        CHECK_INT(res->metrics[1].matrix[2 * 3 + 2], 1);
        CHECK_INT(res->metrics[1].matrix[0], 2);
        sl_result_free(res);
    }
}

/* ---- 6. multilabel ------------------------------------------------------------------------- */

static void test_multilabel(void)
{
    /* N = 1, C = 2, 1x2: channel 0 logits (0, 2) targets (1, 0); channel 1 logits (-1, 3)
     * targets (0, 1). BCE per element y log(1+e^-x) + (1-y) log(1+e^x):
     *   c0: log 2, log(1 + e^2);  c1: log(1 + e^-1), log(1 + e^-3) */
    const double x[4] = {0, 2, -1, 3};
    const uint8_t y[4] = {1, 0, 0, 1};
    const double b00 = log(2.0), b01 = log(1 + exp(2)), b10 = log(1 + exp(-1)),
                 b11 = log(1 + exp(-3));
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(x, 1, 2, 1, 2);
    req.target = tgt4(y, 1, 2, 1, 2);
    req.mode = SL_MODE_MULTILABEL;
    double per[1];
    struct sl_spec ce = loss("cross_entropy");
    /* mean over all N*C*pixels = 4 elements */
    CHECK_CLOSE(score1(&req, &ce, per, NULL), (b00 + b01 + b10 + b11) / 4, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], (b00 + b01 + b10 + b11) / 4, 1e-12, 1e-12);
    /* class_weights [1, 3] weigh each channel's terms; the mean still divides by 4 */
    const double cw[2] = {1, 3};
    set_list(&ce, "class_weights", cw, 2);
    CHECK_CLOSE(score1(&req, &ce, NULL, NULL), (b00 + b01 + 3 * (b10 + b11)) / 4, 1e-12, 1e-12);

    /* Dice per channel on sigmoid, averaged over channels:
     *   c0: sp = .5 + s(2), sy 1, spy .5;  c1: sp = s(-1) + s(3), sy 1, spy s(3) */
    const double d0 = 1 - 2 * 0.5 / (0.5 + sigmoid(2) + 1);
    const double d1 = 1 - 2 * sigmoid(3) / (sigmoid(-1) + sigmoid(3) + 1);
    struct sl_spec d = loss("dice");
    CHECK_CLOSE(score1(&req, &d, NULL, NULL), (d0 + d1) / 2, 1e-12, 1e-12);
    req.include_background = false; /* channel 0 left out (MONAI) */
    CHECK_CLOSE(score1(&req, &d, NULL, NULL), d1, 1e-12, 1e-12);
    req.include_background = true;

    /* Lovász hinge per channel: errors 1 - x (2y - 1)
     *   c0: px0 1 - 0 = 1 (y1), px1 1 + 2 = 3 (y0); sorted (3,0) (1,1): jac .5, 1 -> 1.5 + .5 = 2
     *   c1: px0 1 - 1 = 0 (y0), px1 1 - 3 = -2 (y1): relu -> 0
     * mean over channels = 1 */
    struct sl_spec lh = loss("lovasz_hinge");
    CHECK_CLOSE(score1(&req, &lh, NULL, NULL), (2.0 + 0.0) / 2, 1e-12, 1e-12);

    /* metrics: hard = x >= 0 (threshold 0.5): c0 [1, 1] vs [1, 0] -> tp 1 fp 1 -> dice 2/3;
     * c1 [0, 1] vs [0, 1] -> tp 1 tn 1 -> dice 1 */
    struct sl_spec ms[2] = {metric("dice"), metric("confusion")};
    req.losses = NULL;
    req.nlosses = 0;
    req.metrics = ms;
    req.nmetrics = 2;
    req.mode = SL_MODE_AUTO; /* [1, 2, 1, 2] with [1, 2, 1, 2]: multilabel */
    struct sl_result *res = NULL;
    char msg[256];
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_INT(res->mode, SL_MODE_MULTILABEL);
        CHECK_INT(res->classes, 2);
        CHECK_CLOSE(res->metrics[0].per_image[0], 2.0 / 3, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].per_image[1], 1, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].per_class[0], 2.0 / 3, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].mean, (2.0 / 3 + 1) / 2, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].global[1], 1, 1e-12, 1e-12);
        const struct sl_confusion *c = res->metrics[1].counts;
        CHECK(c[0].tp == 1 && c[0].fp == 1 && c[0].fn == 0 && c[0].tn == 0);
        CHECK(c[1].tp == 1 && c[1].fp == 0 && c[1].fn == 0 && c[1].tn == 1);
        CHECK(res->metrics[1].matrix == NULL); /* the C x C matrix is multiclass only */
        sl_result_free(res);
    }
    req.include_background = false;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->metrics[0].mean, 1, 1e-12, 1e-12);
        sl_result_free(res);
    }
}

/* ---- more: block boundaries, float32, 3-D, combo, labels, multilabel ignore/focal ---------- */

static void test_many_pixels(void)
{
    /* one image of 1x300 pixels (crosses the pass's 256-pixel block), float32, every pixel with
     * logits (2, 0, -1) and targets cycling 0, 1, 2 (100 pixels of each class).
     * p = (q0, q1, q2) = softmax(2, 0, -1) at every pixel.
     * CE = (-log q0 - log q1 - log q2) / 3
     * Dice class c: sp = 300 q_c, sy = 100, spy = 100 q_c -> 1 - 200 q_c / (300 q_c + 100)
     * argmax is always 0: c0 tp 100 fp 200; c1 fn 100 tn 200; c2 fn 100 tn 200
     * Lovász class c: 100 fg errors 1 - q_c, 200 bg errors q_c (ties share one label):
     *   c0: q0 ~ .84 > 1 - q0: bg run first, jac after it 1 - 100/300 = 2/3, then 1:
     *       loss q0 * 2/3 + (1 - q0) * 1/3
     *   c1, c2: q < 1 - q: fg run first, jac 1 after it: loss 1 - q_c */
    enum { S = 300 };
    static float x[3 * S];
    static uint8_t y[S];
    for (int k = 0; k < S; k++) {
        x[k] = 2;
        x[S + k] = 0;
        x[2 * S + k] = -1;
        y[k] = (uint8_t)(k % 3);
    }
    const double q0 = sm3(2, 0, -1), q1 = sm3(0, 2, -1), q2 = sm3(-1, 2, 0);
    struct sl_request req;
    sl_request_init(&req);
    req.prediction =
        (struct sl_tensor){.data = x, .dtype = SL_DT_F32, .ndim = 4, .shape = {1, 3, 1, S}};
    req.target = tgt3(y, 1, 1, S);
    /* float32 logits run the fused float32 kernel: within its bound of the exact values
     * (simd.c, test_fused_mc) */
    struct sl_spec ce = loss("cross_entropy");
    CHECK_CLOSE(score1(&req, &ce, NULL, NULL), (-log(q0) - log(q1) - log(q2)) / 3, 2e-6, 1e-12);
    struct sl_spec d = loss("dice");
    CHECK_CLOSE(score1(&req, &d, NULL, NULL),
                ((1 - 200 * q0 / (300 * q0 + 100)) + (1 - 200 * q1 / (300 * q1 + 100)) +
                 (1 - 200 * q2 / (300 * q2 + 100))) /
                    3,
                2e-6, 1e-12);
    struct sl_spec l = loss("lovasz_softmax");
    CHECK(q0 > 1 - q0 && q1 < 1 - q1 && q2 < 1 - q2);
    CHECK_CLOSE(score1(&req, &l, NULL, NULL),
                ((q0 * 2 / 3 + (1 - q0) / 3) + (1 - q1) + (1 - q2)) / 3, 1e-6, 1e-7);
    set_bool(&l, "per_image", true);
    CHECK_CLOSE(score1(&req, &l, NULL, NULL),
                ((q0 * 2 / 3 + (1 - q0) / 3) + (1 - q1) + (1 - q2)) / 3, 1e-6, 1e-7);
    struct sl_spec mc = metric("confusion");
    req.losses = NULL;
    req.nlosses = 0;
    req.metrics = &mc;
    req.nmetrics = 1;
    struct sl_result *res = NULL;
    char msg[256];
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        const struct sl_confusion *t = res->metrics[0].total;
        CHECK(t[0].tp == 100 && t[0].fp == 200 && t[0].fn == 0 && t[0].tn == 0);
        CHECK(t[1].tp == 0 && t[1].fp == 0 && t[1].fn == 100 && t[1].tn == 200);
        CHECK(t[2].tp == 0 && t[2].fp == 0 && t[2].fn == 100 && t[2].tn == 200);
        CHECK_INT(res->metrics[0].matrix[0 * 3 + 0], 100);
        CHECK_INT(res->metrics[0].matrix[1 * 3 + 0], 100);
        CHECK_INT(res->metrics[0].matrix[2 * 3 + 0], 100);
        sl_result_free(res);
    }
}

static void test_volume_combo_labels(void)
{
    /* 3-D: prediction [1, 2, 2, 1, 1] (C = 2, D = 2), target [1, 2, 1, 1]:
     * voxel 0 logits (1, 0) t 0, voxel 1 (0, 1) t 1: each -log(e / (e + 1)) */
    const double xv[4] = {1, 0, 0, 1};
    const uint8_t yv[2] = {0, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction =
        (struct sl_tensor){.data = xv, .dtype = SL_DT_F64, .ndim = 5, .shape = {1, 2, 2, 1, 1}};
    req.target =
        (struct sl_tensor){.data = yv, .dtype = SL_DT_U8, .ndim = 4, .shape = {1, 2, 1, 1}};
    struct sl_spec ce = loss("cross_entropy");
    struct sl_result *res = NULL;
    char msg[256];
    req.losses = &ce;
    req.nlosses = 1;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_INT(res->mode, SL_MODE_MULTICLASS);
        CHECK_INT(res->nspatial, 3);
        CHECK_CLOSE(res->losses[0].value, -log(exp(1) / (exp(1) + exp(0))), 1e-12, 1e-12);
        sl_result_free(res);
    }

    /* combo of CE and dice (weight .5) on image 0 of the CE data, targets [0, 1] */
    const uint8_t y[2] = {0, 1};
    const double p0a = sm3(2, 0, -1), p0b = sm3(0, 1, 3);
    const double p1a = sm3(0, 2, -1), p1b = sm3(1, 0, 3);
    const double cev = (-log(p0a) - log(p1b)) / 2;
    const double dv = ((1 - 2 * p0a / (p0a + p0b + 1)) + (1 - 2 * p1b / (p1a + p1b + 1)) + 1) / 3;
    sl_request_init(&req);
    req.prediction = pred4(CE_X, 1, 3, 1, 2);
    req.target = tgt3(y, 1, 1, 2);
    struct sl_spec combo = loss("combo");
    struct sl_spec terms[2] = {loss("cross_entropy"), loss("dice")};
    terms[1].weight = 0.5;
    combo.terms = terms;
    combo.nterms = 2;
    double per[1];
    CHECK_CLOSE(score1(&req, &combo, per, NULL), cev + 0.5 * dv, 1e-12, 1e-12);
    CHECK_CLOSE(per[0], cev + 0.5 * dv, 1e-12, 1e-12);

    /* a per-pixel weight map [2, .5] multiplies CE; the mean still divides by 2 pixels */
    const double wm[2] = {2, 0.5};
    req.weight = (struct sl_tensor){.data = wm, .dtype = SL_DT_F64, .ndim = 3, .shape = {1, 1, 2}};
    CHECK_CLOSE(score1(&req, &terms[0], NULL, NULL), (-2 * log(p0a) - 0.5 * log(p1b)) / 2, 1e-12,
                1e-12);
    req.weight = (struct sl_tensor){.data = NULL, .dtype = SL_DT_F64, .ndim = 0, .shape = {0}};

    /* labels: one-hot [1, 3, 1, 2] predicting classes (1, 1) for targets (0, 1):
     * c0 fn 1; c1 tp 1 fp 1; c2 tn 2. dice per class 0, 2/3, 1 (empty) -> mean 5/9.
     * soft dice on labels = probabilities 0/1: c0 1 - 0/(0 + 1) = 1, c1 1 - 2/(2 + 1), c2 0 */
    const double oh[6] = {0, 0, 1, 1, 0, 0};
    req.prediction = pred4(oh, 1, 3, 1, 2);
    req.pred_type = SL_PRED_LABELS;
    struct sl_spec md = metric("dice");
    req.metrics = &md;
    req.nmetrics = 1;
    struct sl_spec dl = loss("dice");
    req.losses = &dl;
    req.nlosses = 1;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->metrics[0].per_image[0], 0, 0, 1e-15);
        CHECK_CLOSE(res->metrics[0].per_image[1], 2.0 / 3, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].per_image[2], 1, 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[0].mean, (0 + 2.0 / 3 + 1) / 3, 1e-12, 1e-12);
        CHECK_CLOSE(res->losses[0].value, (1 + (1 - 2.0 / 3) + 0) / 3, 1e-12, 1e-12);
        sl_result_free(res);
    }
}

static void test_multilabel_ignore_focal(void)
{
    /* the multilabel data of test_multilabel; element (c0, px1) = 255 is ignored:
     * CE = (b00 + b10 + b11) / 3 */
    const double x[4] = {0, 2, -1, 3};
    uint8_t y[4] = {1, 0, 0, 1};
    const double b00 = log(2.0), b01 = log(1 + exp(2)), b10 = log(1 + exp(-1)),
                 b11 = log(1 + exp(-3));
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(x, 1, 2, 1, 2);
    req.target = tgt4(y, 1, 2, 1, 2);
    /* focal alpha null gamma 2, per element (1 - p_t)^2 BCE:
     *   c0 px0 y1 p .5: .25 log 2;  c0 px1 y0: s(2)^2 log(1 + e^2)
     *   c1 px0 y0: s(-1)^2 log(1 + e^-1);  c1 px1 y1: (1 - s(3))^2 log(1 + e^-3) */
    struct sl_spec f = loss("focal");
    set_null(&f, "alpha");
    CHECK_CLOSE(score1(&req, &f, NULL, NULL),
                (0.25 * b00 + sigmoid(2) * sigmoid(2) * b01 + sigmoid(-1) * sigmoid(-1) * b10 +
                 (1 - sigmoid(3)) * (1 - sigmoid(3)) * b11) /
                    4,
                1e-12, 1e-12);
    y[1] = 255;
    req.has_ignore = true;
    req.ignore_index = 255;
    struct sl_spec ce = loss("cross_entropy");
    CHECK_CLOSE(score1(&req, &ce, NULL, NULL), (b00 + b10 + b11) / 3, 1e-12, 1e-12);
    /* dice channel 0 on pixel 0 only: sp .5, sy 1, spy .5 -> 1 - 1/1.5 */
    struct sl_spec d = loss("dice");
    CHECK_CLOSE(score1(&req, &d, NULL, NULL),
                ((1 - 1 / 1.5) + (1 - 2 * sigmoid(3) / (sigmoid(-1) + sigmoid(3) + 1))) / 2, 1e-12,
                1e-12);
}

/* ---- 7. errors and mode inference ----------------------------------------------------------- */

static int score_rc(struct sl_request *req, const struct sl_spec *s, char *msg, size_t len)
{
    struct sl_result *res = NULL;
    req->losses = s;
    req->nlosses = s ? 1 : 0;
    int rc = sl_score(req, NULL, &res, msg, len);
    if (rc != 0) {
        CHECK(res == NULL);
    }
    sl_result_free(res);
    return rc;
}

static void test_errors(void)
{
    char msg[256];
    uint8_t y[2] = {0, 3}; /* 3 >= C = 3 */
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = pred4(CE_X, 1, 3, 1, 2);
    req.target = tgt3(y, 1, 1, 2);
    CHECK_INT(score_rc(&req, NULL, msg, sizeof msg), SL_ERANGE);
    CHECK(strstr(msg, "target[0, 0, 1]") != NULL);
    CHECK(strstr(msg, "flat index 1") != NULL);
    /* also when the mode is given */
    req.mode = SL_MODE_MULTICLASS;
    CHECK_INT(score_rc(&req, NULL, msg, sizeof msg), SL_ERANGE);
    CHECK(strstr(msg, "target[0, 0, 1]") != NULL);
    y[1] = 2;
    CHECK_INT(score_rc(&req, NULL, msg, sizeof msg), 0);

    /* class_weights of the wrong length */
    const double cw2[2] = {1, 2};
    struct sl_spec ce = loss("cross_entropy");
    set_list(&ce, "class_weights", cw2, 2);
    CHECK_INT(score_rc(&req, &ce, msg, sizeof msg), SL_ESHAPE);
    CHECK(strstr(msg, "class_weights") != NULL);
    struct sl_spec dw = loss("dice");
    set_list(&dw, "class_weights", cw2, 2);
    CHECK_INT(score_rc(&req, &dw, msg, sizeof msg), SL_ESHAPE);
    struct sl_spec fa = loss("focal");
    set_list(&fa, "alpha", cw2, 2);
    CHECK_INT(score_rc(&req, &fa, msg, sizeof msg), SL_ESHAPE);
    const double cw4[4] = {1, 1, 1, 1};
    set_list(&ce, "class_weights", cw4, 4);
    CHECK_INT(score_rc(&req, &ce, msg, sizeof msg), SL_ESHAPE);

    /* lovasz_hinge in multiclass, lovasz_softmax in binary and multilabel */
    struct sl_spec lh = loss("lovasz_hinge");
    CHECK_INT(score_rc(&req, &lh, msg, sizeof msg), SL_EINVAL);
    CHECK(strstr(msg, "lovasz_hinge") != NULL);
    struct sl_spec ls = loss("lovasz_softmax");
    CHECK_INT(score_rc(&req, &ls, msg, sizeof msg), 0);
    const double xb[2] = {0.5, -0.5};
    const uint8_t yb[2] = {1, 0};
    struct sl_request breq;
    sl_request_init(&breq);
    breq.prediction =
        (struct sl_tensor){.data = xb, .dtype = SL_DT_F64, .ndim = 3, .shape = {1, 1, 2}};
    breq.target = tgt3(yb, 1, 1, 2);
    CHECK_INT(score_rc(&breq, &ls, msg, sizeof msg), SL_EINVAL);
    CHECK(strstr(msg, "lovasz_softmax") != NULL);
    const double xl[4] = {0, 1, 2, 3};
    const uint8_t yl[4] = {0, 1, 1, 0};
    struct sl_request lreq;
    sl_request_init(&lreq);
    lreq.prediction = pred4(xl, 1, 2, 1, 2);
    lreq.target = tgt4(yl, 1, 2, 1, 2);
    CHECK_INT(score_rc(&lreq, &ls, msg, sizeof msg), SL_EINVAL);
    /* a per-class list in binary mode is invalid */
    set_list(&ce, "class_weights", cw2, 1);
    CHECK_INT(score_rc(&breq, &ce, msg, sizeof msg), SL_EINVAL);

    /* prediction [1, 3, 2, 2] with target [1, 3, 2] (H + 1): both shapes in the message */
    static const double z12[12] = {0};
    static const uint8_t z6[6] = {0};
    struct sl_request sreq;
    sl_request_init(&sreq);
    sreq.prediction = pred4(z12, 1, 3, 2, 2);
    sreq.target = tgt3(z6, 1, 3, 2);
    CHECK_INT(score_rc(&sreq, NULL, msg, sizeof msg), SL_ESHAPE);
    CHECK(strstr(msg, "[1, 3, 2, 2]") != NULL);
    CHECK(strstr(msg, "[1, 3, 2]") != NULL);
    sreq.mode = SL_MODE_MULTICLASS;
    CHECK_INT(score_rc(&sreq, NULL, msg, sizeof msg), SL_ESHAPE);
    CHECK(strstr(msg, "[1, 3, 2, 2]") != NULL && strstr(msg, "[1, 3, 2]") != NULL);
    /* multiclass needs C >= 2 */
    sreq.prediction = pred4(z12, 1, 1, 2, 2);
    sreq.target = tgt3(z6, 1, 2, 2);
    CHECK_INT(score_rc(&sreq, NULL, msg, sizeof msg), SL_ESHAPE);

    /* mode inference with prediction [2, 3, 2, 2] */
    static const double z24[24] = {0};
    static const uint8_t u24[24] = {0};
    struct sl_request mreq;
    struct sl_result *res = NULL;
    struct sl_spec md = metric("dice");
    sl_request_init(&mreq);
    mreq.prediction = pred4(z24, 2, 3, 2, 2);
    mreq.metrics = &md;
    mreq.nmetrics = 1;
    const int64_t tshapes[3][4] = {{2, 2, 2, 0}, {2, 3, 2, 2}, {2, 1, 2, 2}};
    const int tndim[3] = {3, 4, 4};
    const enum sl_mode tmode[3] = {SL_MODE_MULTICLASS, SL_MODE_MULTILABEL, SL_MODE_MULTICLASS};
    for (int k = 0; k < 3; k++) {
        struct sl_tensor t = {.data = u24, .dtype = SL_DT_U8, .ndim = tndim[k], .shape = {0}};
        memcpy(t.shape, tshapes[k], sizeof tshapes[k]);
        mreq.target = t;
        CHECK_INT(sl_score(&mreq, NULL, &res, msg, sizeof msg), 0);
        if (res) {
            CHECK_INT(res->mode, tmode[k]);
            CHECK_INT(res->classes, 3);
            CHECK_INT(res->images, 2);
            CHECK_INT(res->nspatial, 2);
            CHECK(res->spatial[0] == 2 && res->spatial[1] == 2);
            sl_result_free(res);
            res = NULL;
        }
    }
    /* [2, 1, 2, 2] prediction is binary */
    static const uint8_t u8[8] = {0};
    mreq.prediction = pred4(z24, 2, 1, 2, 2);
    mreq.target = tgt3(u8, 2, 2, 2);
    CHECK_INT(sl_score(&mreq, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_INT(res->mode, SL_MODE_BINARY);
        CHECK_INT(res->classes, 1);
        sl_result_free(res);
    }
}

static const struct check_test tests[] = {
    CHECK_TEST(test_cross_entropy),
    CHECK_TEST(test_focal),
    CHECK_TEST(test_region_logits),
    CHECK_TEST(test_region_probabilities),
    CHECK_TEST(test_lovasz_single),
    CHECK_TEST(test_lovasz_batch),
    CHECK_TEST(test_lovasz_logits),
    CHECK_TEST(test_metrics),
    CHECK_TEST(test_multilabel),
    CHECK_TEST(test_many_pixels),
    CHECK_TEST(test_volume_combo_labels),
    CHECK_TEST(test_multilabel_ignore_focal),
    CHECK_TEST(test_errors),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_multiclass", tests);
}
