/* test_soft.c - soft targets (binary and multilabel float targets in [0, 1]) and label
 * smoothing of cross entropy (label_smoothing, smooth_factor), against the peers' formulas
 * written out here and the literal cases of smp's tests/test_losses.py. */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "segloss.h"

static struct sl_tensor tensor(const void *d, enum sl_dtype dt, int64_t n, int64_t h, int64_t w)
{
    struct sl_tensor t = {d, dt, 3, {n, h, w}};
    return t;
}

/* Scores loss s (or metric m when s is NULL) and returns its batch value (loss) or its mean
 * (metric); NaN on error, with the message in msg. */
static double score(struct sl_request *req, const struct sl_spec *s, const struct sl_spec *m,
                    char *msg, size_t msglen, int *rc)
{
    struct sl_result *res;
    req->losses = s;
    req->nlosses = s ? 1 : 0;
    req->metrics = m;
    req->nmetrics = m ? 1 : 0;
    *rc = sl_score(req, NULL, &res, msg, msglen);
    if (*rc != 0) {
        return NAN;
    }
    double v = s ? res->losses[0].value : res->metrics[0].mean;
    sl_result_free(res);
    return v;
}

static double loss_value(struct sl_request *req, const struct sl_spec *s)
{
    char msg[512];
    int rc;
    double v = score(req, s, NULL, msg, sizeof msg, &rc);
    if (rc) {
        fprintf(stderr, "sl_score: %s\n", msg);
    }
    return v;
}

/* PyTorch binary_cross_entropy_with_logits, one pixel, soft y:
 * max(x, 0) - x y + log(1 + e^-|x|). */
static double bce_logit(double x, double y)
{
    return fmax(x, 0) - x * y + log1p(exp(-fabs(x)));
}

/* Binary cross entropy from probabilities, soft y: -(y log p + (1-y) log(1-p)). */
static double bce_prob(double p, double y)
{
    return -(y * log(p) + (1 - y) * log(1 - p));
}

static void test_soft_ce_probabilities(void)
{
    const double p[4] = {0.5, 0.6, 0.2, 0.1};
    const float y[4] = {0.3f, 1, 0.5f, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor(p, SL_DT_F64, 1, 2, 2);
    req.target = tensor(y, SL_DT_F32, 1, 2, 2);
    req.pred_type = SL_PRED_PROBABILITIES;
    double want = 0;
    for (int k = 0; k < 4; k++) {
        want += bce_prob(p[k], y[k]) / 4;
    }
    struct sl_spec s = loss("cross_entropy");
    CHECK_CLOSE(loss_value(&req, &s), want, 1e-12, 1e-12);
    /* TensorFlow weighted_cross_entropy_with_logits, pos_weight 3: -(3 y log p + (1-y) log(1-p)) */
    double wce = 0;
    for (int k = 0; k < 4; k++) {
        wce += -(3 * y[k] * log(p[k]) + (1 - y[k]) * log(1 - p[k])) / 4;
    }
    struct sl_spec w = loss("weighted_cross_entropy");
    set_num(&w, "beta", 3);
    CHECK_CLOSE(loss_value(&req, &w), wce, 1e-12, 1e-12);
    /* HED balanced CE, beta auto = mean(1 - y) = (0.7 + 0 + 0.5 + 1) / 4 = 0.55 */
    double beta = 0.55, bal = 0;
    for (int k = 0; k < 4; k++) {
        bal += -(beta * y[k] * log(p[k]) + (1 - beta) * (1 - y[k]) * log(1 - p[k])) / 4;
    }
    struct sl_spec b = loss("balanced_cross_entropy");
    CHECK_CLOSE(loss_value(&req, &b), bal, 1e-7, 1e-9);
}

static void test_soft_ce_logits_float32(void)
{
    /* float32 logits take the fused kernel with 0/1 targets; a soft target the double pass */
    const float x[8] = {2, -1, 0.5f, 0, -3, 4, 1.5f, -0.25f};
    const double y[8] = {0.8, 0.2, 1, 0, 0.5, 0.9, 0, 0.35};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor(x, SL_DT_F32, 2, 2, 2);
    req.target = tensor(y, SL_DT_F64, 2, 2, 2);
    double want = 0;
    for (int k = 0; k < 8; k++) {
        want += bce_logit(x[k], y[k]) / 8;
    }
    struct sl_spec s = loss("cross_entropy");
    CHECK_CLOSE(loss_value(&req, &s), want, 1e-12, 1e-12);
    set_choice(&s, "reduction", 1);
    CHECK_CLOSE(loss_value(&req, &s), want * 8, 1e-12, 1e-12);
}

/* smp soft_dice_score / soft_jaccard_score and MONAI DiceLoss (soft_label False): tp = sum p y,
 * sum p + sum y in the denominator, on the soft y as given. */
static void test_soft_region(void)
{
    const double p[4] = {0.9, 0.6, 0.2, 0.1};
    const double y[4] = {0.7, 1, 0.25, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor(p, SL_DT_F64, 1, 2, 2);
    req.target = tensor(y, SL_DT_F64, 1, 2, 2);
    req.pred_type = SL_PRED_PROBABILITIES;
    /* sum p = 1.8, sum y = 1.95, sum p y = 0.63 + 0.6 + 0.05 + 0 = 1.28 */
    const double sp = 1.8, sy = 1.95, spy = 1.28;
    struct sl_spec d = loss("dice");
    CHECK_CLOSE(loss_value(&req, &d), 1 - 2 * spy / (sp + sy), 1e-12, 1e-12);
    struct sl_spec j = loss("jaccard");
    CHECK_CLOSE(loss_value(&req, &j), 1 - spy / (sp + sy - spy), 1e-12, 1e-12);
    /* MONAI TverskyLoss alpha 0.3 (fp), beta 0.7 (fn): fp = sum p(1-y), fn = sum (1-p) y */
    struct sl_spec t = loss("tversky");
    set_num(&t, "fp_weight", 0.3);
    set_num(&t, "fn_weight", 0.7);
    CHECK_CLOSE(loss_value(&req, &t), 1 - spy / (spy + 0.3 * (sp - spy) + 0.7 * (sy - spy)), 1e-12,
                1e-12);
}

/* Metrics harden a soft target at y >= 0.5 (MONAI AsDiscrete(threshold=0.5)). */
static void test_soft_metrics_threshold(void)
{
    const double p[4] = {0.9, 0.6, 0.2, 0.1};
    const float y[4] = {0.3f, 1, 0.5f, 0.49f};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor(p, SL_DT_F64, 1, 2, 2);
    req.target = tensor(y, SL_DT_F32, 1, 2, 2);
    req.pred_type = SL_PRED_PROBABILITIES;
    /* prediction p >= 0.5: [1, 1, 0, 0]; target y >= 0.5: [0, 1, 1, 0] -> tp 1, fp 1, fn 1 */
    struct sl_spec m = metric("dice");
    char msg[256];
    int rc;
    CHECK_CLOSE(score(&req, NULL, &m, msg, sizeof msg, &rc), 2.0 / 4.0, 0, 1e-15);
    CHECK_INT(rc, 0);
    struct sl_spec r = metric("recall");
    CHECK_CLOSE(score(&req, NULL, &r, msg, sizeof msg, &rc), 0.5, 0, 1e-15);
}

/* A float target of exactly 0/1 answers as the uint8 one (today's path), to the formula. */
static void test_hard_float_target(void)
{
    const float x[4] = {1, -2, 0.5f, 3};
    const uint8_t yu[4] = {1, 0, 0, 1};
    const float yf[4] = {1, 0, 0, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor(x, SL_DT_F32, 1, 2, 2);
    double want = 0;
    for (int k = 0; k < 4; k++) {
        want += bce_logit(x[k], yu[k]) / 4;
    }
    struct sl_spec s = loss("cross_entropy");
    req.target = tensor(yu, SL_DT_U8, 1, 2, 2);
    CHECK_CLOSE(loss_value(&req, &s), want, 1e-6, 1e-9);
    req.target = tensor(yf, SL_DT_F32, 1, 2, 2);
    CHECK_CLOSE(loss_value(&req, &s), want, 1e-6, 1e-9);
    /* focal and lovasz_hinge take 0/1 float targets */
    struct sl_spec f = loss("focal");
    CHECK(!isnan(loss_value(&req, &f)));
    struct sl_spec l = loss("lovasz_hinge");
    CHECK(!isnan(loss_value(&req, &l)));
}

static void test_soft_refused(void)
{
    const float x[4] = {1, -2, 0.5f, 3};
    const float y[4] = {1, 0, 0.25f, 1};
    const float bad[4] = {1, 0, 1.5f, 1};
    const float nan_y[4] = {1, 0, NAN, 1};
    const double half[4] = {0, 1, 0.5, 1};
    char msg[512];
    int rc;
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor(x, SL_DT_F32, 1, 2, 2);
    req.target = tensor(y, SL_DT_F32, 1, 2, 2);
    const char *hard[] = {"focal", "lovasz_hinge", "distance_weighted_cross_entropy"};
    for (int i = 0; i < 3; i++) {
        struct sl_spec s = loss(hard[i]);
        score(&req, &s, NULL, msg, sizeof msg, &rc);
        CHECK_INT(rc, SL_ERANGE);
        CHECK_PREFIX(msg, "target[0, 1, 0] (flat index 2) is 0.25, a soft target, but ");
        CHECK_HAS(msg, hard[i]);
        CHECK_HAS(msg, "needs targets of exactly 0 or 1");
    }
    struct sl_spec d = loss("dice");
    set_bool(&d, "squared", true);
    score(&req, &d, NULL, msg, sizeof msg, &rc);
    CHECK_INT(rc, SL_ERANGE);
    CHECK_HAS(msg, "squared");
    /* in a combo: the term's path names it */
    struct sl_spec combo = loss("combo");
    struct sl_spec terms[2] = {loss("cross_entropy"), loss("focal")};
    strcpy(terms[1].path, "losses[0].terms[1]");
    combo.terms = terms;
    combo.nterms = 2;
    score(&req, &combo, NULL, msg, sizeof msg, &rc);
    CHECK_INT(rc, SL_ERANGE);
    CHECK_HAS(msg, "losses[0].terms[1] (focal)");
    /* out of [0, 1] or NaN: a 422 naming the target and the index, as for labels */
    struct sl_spec ce = loss("cross_entropy");
    req.target = tensor(bad, SL_DT_F32, 1, 2, 2);
    score(&req, &ce, NULL, msg, sizeof msg, &rc);
    CHECK_INT(rc, SL_ERANGE);
    CHECK_PREFIX(msg, "target[0, 1, 0] (flat index 2) is 1.5: binary float32 targets must be in "
                      "[0, 1]");
    req.target = tensor(nan_y, SL_DT_F32, 1, 2, 2);
    score(&req, &ce, NULL, msg, sizeof msg, &rc);
    CHECK_INT(rc, SL_ERANGE);
    CHECK_PREFIX(msg, "target[0, 1, 0] (flat index 2) is nan");
    /* multiclass targets stay class indices */
    const float x3[8] = {1, 0, 0, 1, 0, 1, 1, 0};
    req.prediction.data = x3;
    req.prediction.ndim = 4;
    req.prediction.shape[0] = 1;
    req.prediction.shape[1] = 2;
    req.prediction.shape[2] = 2;
    req.prediction.shape[3] = 2;
    req.mode = SL_MODE_MULTICLASS;
    req.target = tensor(half, SL_DT_F64, 1, 2, 2);
    score(&req, &ce, NULL, msg, sizeof msg, &rc);
    CHECK_INT(rc, SL_ERANGE);
    CHECK_HAS(msg, "multiclass targets are class indices");
}

/* Multilabel soft targets: per channel, the mean over channels x pixels. */
static void test_soft_multilabel(void)
{
    const double x[8] = {0.5, -1, 2, 0, /* channel 1 */ 1, 1, -2, 3};
    const double y[8] = {0.5, 0.1, 1, 0, /* channel 1 */ 0.75, 0.2, 0, 1};
    struct sl_request req;
    sl_request_init(&req);
    struct sl_tensor p = {x, SL_DT_F64, 4, {1, 2, 2, 2}};
    struct sl_tensor t = {y, SL_DT_F64, 4, {1, 2, 2, 2}};
    req.prediction = p;
    req.target = t;
    double want = 0;
    for (int k = 0; k < 8; k++) {
        want += bce_logit(x[k], y[k]) / 8;
    }
    struct sl_spec s = loss("cross_entropy");
    CHECK_CLOSE(loss_value(&req, &s), want, 1e-12, 1e-12);
    /* include_background false: channel 1 only */
    double want1 = 0;
    for (int k = 4; k < 8; k++) {
        want1 += bce_logit(x[k], y[k]) / 4;
    }
    req.include_background = false;
    CHECK_CLOSE(loss_value(&req, &s), want1, 1e-12, 1e-12);
}

/* Binary label smoothing: Keras BinaryCrossentropy(label_smoothing=e) y_s = y (1-e) + e/2;
 * smp SoftBCEWithLogitsLoss(smooth_factor=f) y_s = (1-y) f + y (1-f). The logits as float64
 * (the double pass, to 1e-12) and as float32 (hard targets run the fused float32 pass, which
 * README's "Numerics" and lib/simd.c bound at about 1e-6 relative; planes.c
 * signed_logit_sum: 1.5e-6 with smoothing). */
static void test_binary_label_smoothing(void)
{
    const double xd[4] = {1, -2, 0.5, 3};
    const float xf[4] = {1, -2, 0.5f, 3};
    const uint8_t y[4] = {1, 0, 0, 1};
    for (int f32 = 0; f32 < 2; f32++) {
        const double rtol = f32 ? 1.5e-6 : 1e-12;
        struct sl_request req;
        sl_request_init(&req);
        req.prediction = f32 ? tensor(xf, SL_DT_F32, 1, 2, 2) : tensor(xd, SL_DT_F64, 1, 2, 2);
        req.target = tensor(y, SL_DT_U8, 1, 2, 2);
        double keras = 0, smp = 0;
        for (int k = 0; k < 4; k++) {
            keras += bce_logit(xd[k], y[k] * (1 - 0.2) + 0.2 / 2) / 4;
            smp += bce_logit(xd[k], (1 - y[k]) * 0.05 + y[k] * (1 - 0.05)) / 4;
        }
        struct sl_spec s = loss("cross_entropy");
        set_num(&s, "label_smoothing", 0.2);
        CHECK_CLOSE(loss_value(&req, &s), keras, rtol, 1e-12);
        struct sl_spec f = loss("cross_entropy");
        set_num(&f, "smooth_factor", 0.05);
        CHECK_CLOSE(loss_value(&req, &f), smp, rtol, 1e-12);
        /* smooth_factor f is label_smoothing 2f */
        set_num(&f, "smooth_factor", 0.1);
        CHECK_CLOSE(loss_value(&req, &f), keras, rtol, 1e-12);
        /* smooth_factor 0.8 (above 0.5: the double pass, for float32 too): y_s = 0.8 - 0.6 y */
        double flip = 0;
        for (int k = 0; k < 4; k++) {
            flip += bce_logit(xd[k], 0.8 - 0.6 * y[k]) / 4;
        }
        set_num(&f, "smooth_factor", 0.8);
        CHECK_CLOSE(loss_value(&req, &f), flip, 1e-12, 1e-12);
        /* on a soft target (the double pass): the same map of y */
        const float ys[4] = {0.8f, 0.1f, 0.5f, 1};
        req.target = tensor(ys, SL_DT_F32, 1, 2, 2);
        double soft = 0;
        for (int k = 0; k < 4; k++) {
            soft += bce_logit(xd[k], (double)ys[k] * 0.8 + 0.1) / 4;
        }
        CHECK_CLOSE(loss_value(&req, &s), soft, 1e-12, 1e-12);
        /* with a pixel weight map: w times each pixel's smoothed CE */
        const float wf[4] = {2, 0.5f, 1, 0};
        const double wd[4] = {2, 0.5, 1, 0};
        req.target = tensor(y, SL_DT_U8, 1, 2, 2);
        req.weight = f32 ? tensor(wf, SL_DT_F32, 1, 2, 2) : tensor(wd, SL_DT_F64, 1, 2, 2);
        double wsum = 0;
        for (int k = 0; k < 4; k++) {
            wsum += wd[k] * bce_logit(xd[k], y[k] * 0.8 + 0.1) / 4;
        }
        CHECK_CLOSE(loss_value(&req, &s), wsum, rtol, 1e-12);
    }
}

/* smp tests/test_losses.py test_soft_bce_loss: SoftBCEWithLogitsLoss(smooth_factor=0.1,
 * ignore_index=-100) on x = [-9, 9, 1, 9, -9], y = [0, 1, -100, 1, 0] is 0.7201 (abs 1e-4).
 * smp's mean divides by all 5 pixels, the ignored one as 0; segloss's by the 4 counted pixels
 * (PyTorch's ignore_index rule), so segloss's value times 4/5 is smp's. Each counted pixel is
 * 0.9 softplus(-9) + 0.1 softplus(9). Float64 logits (double pass, 1e-12) and float32 (the
 * fused pass, 1.5e-6 relative as above). */
static void test_smp_soft_bce_case(void)
{
    const double xd[5] = {-9, 9, 1, 9, -9};
    const float xf[5] = {-9, 9, 1, 9, -9};
    const int32_t y[5] = {0, 1, -100, 1, 0};
    for (int f32 = 0; f32 < 2; f32++) {
        struct sl_request req;
        sl_request_init(&req);
        req.prediction = f32 ? tensor(xf, SL_DT_F32, 1, 1, 5) : tensor(xd, SL_DT_F64, 1, 1, 5);
        req.target = tensor(y, SL_DT_I32, 1, 1, 5);
        req.has_ignore = true;
        req.ignore_index = -100;
        struct sl_spec s = loss("cross_entropy");
        set_num(&s, "smooth_factor", 0.1);
        const double per = 0.9 * log1p(exp(-9.0)) + 0.1 * (9 + log1p(exp(-9.0)));
        double v = loss_value(&req, &s);
        CHECK_CLOSE(v, per, f32 ? 1.5e-6 : 1e-12, 1e-12);
        CHECK_CLOSE(v * 4 / 5, 0.7201, 0, 1e-4);
    }
}

/* PyTorch cross_entropy(label_smoothing=e), multiclass, one pixel:
 * (1-e) (-log p_y) + (e/C) sum_c (-log p_c); with weight=: w_y (-log p_y) and w_c (-log p_c),
 * the mean divided by sum of w_y over the counted pixels. */
static void test_multiclass_label_smoothing(void)
{
    /* [N=1, C=3, 1, 2]: pixel 0 logits (2, 0, -1) class 0, pixel 1 (0.5, 1.5, 0) class 2 */
    const double x[6] = {2, 0.5, 0, 1.5, -1, 0};
    const uint8_t y[2] = {0, 2};
    struct sl_request req;
    sl_request_init(&req);
    struct sl_tensor p = {x, SL_DT_F64, 4, {1, 3, 1, 2}};
    req.prediction = p;
    req.target = tensor(y, SL_DT_U8, 1, 1, 2);
    double lp[2][3];
    for (int k = 0; k < 2; k++) {
        double z = 0;
        for (int c = 0; c < 3; c++) {
            z += exp(x[c * 2 + k]);
        }
        for (int c = 0; c < 3; c++) {
            lp[k][c] = x[c * 2 + k] - log(z);
        }
    }
    const double e = 0.1;
    double want = 0;
    for (int k = 0; k < 2; k++) {
        want += ((1 - e) * -lp[k][y[k]] + e / 3 * -(lp[k][0] + lp[k][1] + lp[k][2])) / 2;
    }
    struct sl_spec s = loss("cross_entropy");
    set_num(&s, "label_smoothing", e);
    CHECK_CLOSE(loss_value(&req, &s), want, 1e-12, 1e-12);
    struct sl_spec f = loss("cross_entropy");
    set_num(&f, "smooth_factor", e); /* smp label_smoothed_nll_loss: the same rule */
    CHECK_CLOSE(loss_value(&req, &f), want, 1e-12, 1e-12);
    /* class weights w = (1, 2, 0.5) */
    const double w[3] = {1, 2, 0.5};
    set_list(&s, "class_weights", w, 3);
    double num = 0, den = 0;
    for (int k = 0; k < 2; k++) {
        num += (1 - e) * w[y[k]] * -lp[k][y[k]] +
               e / 3 * -(w[0] * lp[k][0] + w[1] * lp[k][1] + w[2] * lp[k][2]);
        den += w[y[k]];
    }
    CHECK_CLOSE(loss_value(&req, &s), num / den, 1e-12, 1e-12);
}

/* smp tests/test_losses.py test_soft_ce_loss: SoftCrossEntropyLoss(smooth_factor=0.1,
 * ignore_index=-100), logits +9 on the target class and -9 elsewhere (C = 4), targets
 * [0, 1, -100, 3]: 1.0125 (abs 1e-4). smp averages over all 4 pixels, the ignored one as 0;
 * segloss over the 3 counted ones (PyTorch's rule), so segloss's value times 3/4 is smp's. A
 * counted pixel: 0.9 (-log p_y) + 0.025 sum_c (-log p_c), -log p_y = log(1 + 3 e^-18),
 * -log p_other = 18 + log(1 + 3 e^-18). */
static void test_smp_soft_ce_case(void)
{
    double x[4 * 4]; /* [N=1, C=4, 1, 4] */
    const int64_t y[4] = {0, 1, -100, 3};
    for (int c = 0; c < 4; c++) {
        for (int k = 0; k < 4; k++) {
            x[c * 4 + k] = c == k ? 9 : -9;
        }
    }
    struct sl_request req;
    sl_request_init(&req);
    struct sl_tensor p = {x, SL_DT_F64, 4, {1, 4, 1, 4}};
    req.prediction = p;
    req.target = tensor(y, SL_DT_I64, 1, 1, 4);
    req.has_ignore = true;
    req.ignore_index = -100;
    struct sl_spec s = loss("cross_entropy");
    set_num(&s, "smooth_factor", 0.1);
    const double l = log1p(3 * exp(-18.0));
    const double per = 0.9 * l + 0.025 * (l + 3 * (18 + l));
    double v = loss_value(&req, &s);
    CHECK_CLOSE(v, per, 1e-12, 1e-12);
    CHECK_CLOSE(v * 3 / 4, 1.0125, 0, 1e-4);
}

/* Defaults unchanged: label_smoothing 0 is exactly today's CE. */
static void test_zero_smoothing_is_plain(void)
{
    const float x[4] = {1, -2, 0.5f, 3};
    const uint8_t y[4] = {1, 0, 0, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = tensor(x, SL_DT_F32, 1, 2, 2);
    req.target = tensor(y, SL_DT_U8, 1, 2, 2);
    struct sl_spec a = loss("cross_entropy");
    struct sl_spec b = loss("cross_entropy");
    set_num(&b, "label_smoothing", 0);
    CHECK(loss_value(&req, &a) == loss_value(&req, &b));
}

static const struct check_test tests[] = {
    CHECK_TEST(test_soft_ce_probabilities), CHECK_TEST(test_soft_ce_logits_float32),
    CHECK_TEST(test_soft_region),           CHECK_TEST(test_soft_metrics_threshold),
    CHECK_TEST(test_hard_float_target),     CHECK_TEST(test_soft_refused),
    CHECK_TEST(test_soft_multilabel),       CHECK_TEST(test_binary_label_smoothing),
    CHECK_TEST(test_smp_soft_bce_case),     CHECK_TEST(test_multiclass_label_smoothing),
    CHECK_TEST(test_smp_soft_ce_case),      CHECK_TEST(test_zero_smoothing_is_plain),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_soft", tests);
}
