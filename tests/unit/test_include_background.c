/* test_include_background.c - include_background: false in every loss, against MONAI.
 *
 * The expected values come from MONAI's own test file and from MONAI's formulas written out
 * below (Project-MONAI/MONAI, monai/losses/focal_loss.py: FocalLoss.forward,
 * sigmoid_focal_loss, softmax_focal_loss; monai/losses/dice.py: DiceCELoss, DiceFocalLoss),
 * never from this library's output. MONAI drops channel 0 of input and target before the loss
 * when include_background is False (with one channel it warns and ignores the flag). */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "segloss.h"

/* MONAI's own case (tests/losses/test_focal_loss.py): input (1, 3, 2, 2), every channel
 * [[1, 1], [0.5, 0]]; target labels [[0, 1], [2, 0]], one-hot over 3 channels. */
static const double monai_x[12] = {1, 1, 0.5, 0, 1, 1, 0.5, 0, 1, 1, 0.5, 0};
static const uint8_t monai_labels[4] = {0, 1, 2, 0};
static const uint8_t monai_onehot[12] = {1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0};

static struct sl_tensor f64(const double *d, int ndim, int64_t a, int64_t b, int64_t c, int64_t e)
{
    struct sl_tensor t = {.data = d, .dtype = SL_DT_F64, .ndim = ndim, .shape = {a, b, c, e}};
    return t;
}

static struct sl_tensor u8(const uint8_t *d, int ndim, int64_t a, int64_t b, int64_t c, int64_t e)
{
    struct sl_tensor t = {.data = d, .dtype = SL_DT_U8, .ndim = ndim, .shape = {a, b, c, e}};
    return t;
}

/* Scores losses s[0..n); out[k] = batch value of loss k (NaN on error), per[k * N + i] its
 * per-image values when per is not NULL. Returns sl_score's code. */
static int score(struct sl_request *req, const struct sl_spec *s, int n, double *out, double *per,
                 char *msg, size_t msglen)
{
    struct sl_result *res = NULL;
    req->losses = s;
    req->nlosses = n;
    req->nmetrics = 0;
    int rc = sl_score(req, NULL, &res, msg, msglen);
    for (int k = 0; k < n; k++) {
        out[k] = rc ? NAN : res->losses[k].value;
        for (int64_t i = 0; per && !rc && i < res->images; i++) {
            per[k * res->images + i] = res->losses[k].per_image[i];
        }
    }
    sl_result_free(res);
    return rc;
}

static double score1(struct sl_request *req, const struct sl_spec *s)
{
    double v;
    char msg[256];
    if (score(req, s, 1, &v, NULL, msg, sizeof msg) != 0) {
        fprintf(stderr, "sl_score: %s\n", msg);
    }
    return v;
}

/* torch.nn.functional.logsigmoid: log(1 / (1 + e^-z)), stable */
static double logsigmoid(double z)
{
    return -(log1p(exp(-fabs(z))) + fmax(-z, 0.0));
}

/* MONAI sigmoid_focal_loss for one element: (x - x t - logsigmoid(x)) *
 * exp(gamma * logsigmoid(-x (2t - 1))), times t alpha + (1 - t)(1 - alpha) unless alpha is NaN
 * (None). gamma 0, no alpha: BCEWithLogits (MONAI test_consistency_with_cross_entropy_2d). */
static double monai_sigmoid_focal(double x, double t, double gamma, double alpha)
{
    double loss = x - x * t - logsigmoid(x);
    loss *= exp(logsigmoid(-x * (t * 2 - 1)) * gamma);
    if (!isnan(alpha)) {
        loss *= t * alpha + (1 - t) * (1 - alpha);
    }
    return loss;
}

/* TensorFlow weighted_cross_entropy_with_logits, as its documentation writes the stable form:
 * (1 - t) x + (1 + (q - 1) t) (log(1 + e^-|x|) + max(-x, 0)), q = pos_weight */
static double tf_weighted_ce(double x, double t, double q)
{
    return (1 - t) * x + (1 + (q - 1) * t) * (log1p(exp(-fabs(x))) + fmax(-x, 0.0));
}

/* HED (Xie & Tu 2015) balanced CE for one element: -(b t log p + (1 - b)(1 - t) log(1 - p)) */
static double hed_balanced_ce(double x, double t, double b)
{
    return -(b * t * logsigmoid(x) + (1 - b) * (1 - t) * logsigmoid(-x));
}

/* ---- 1. multilabel: MONAI's own focal cases ---------------------------------------------- */

static void test_monai_focal_case(void)
{
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(monai_x, 4, 1, 3, 2, 2);
    req.target = u8(monai_onehot, 4, 1, 3, 2, 2);
    req.mode = SL_MODE_MULTILABEL;
    struct sl_spec f = loss("focal");
    set_null(&f, "alpha"); /* MONAI FocalLoss's default alpha=None, gamma=2 */
    double all = 0, nobg = 0;
    for (int k = 0; k < 12; k++) {
        double e = monai_sigmoid_focal(monai_x[k], monai_onehot[k], 2, NAN);
        all += e;
        nobg += k >= 4 ? e : 0; /* channels 1, 2: elements 4..11 */
    }
    /* FocalLoss(to_onehot_y=True): 0.34959; with include_background=False: 0.36498 (MONAI's
     * expected values, atol = rtol = 1e-4 there); mean over 12 and over 8 elements */
    CHECK_CLOSE(score1(&req, &f), 0.34959, 1e-4, 1e-4);
    CHECK_CLOSE(score1(&req, &f), all / 12, 1e-12, 1e-12);
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &f), 0.36498, 1e-4, 1e-4);
    CHECK_CLOSE(score1(&req, &f), nobg / 8, 1e-12, 1e-12);

    /* alpha 0.8: MONAI's 0.08423 with background; without it the same alpha factor over the
     * 8 elements of channels 1, 2 */
    set_num(&f, "alpha", 0.8);
    double anobg = 0;
    for (int k = 4; k < 12; k++) {
        anobg += monai_sigmoid_focal(monai_x[k], monai_onehot[k], 2, 0.8);
    }
    CHECK_CLOSE(score1(&req, &f), anobg / 8, 1e-12, 1e-12);
    req.include_background = true;
    CHECK_CLOSE(score1(&req, &f), 0.08423, 1e-4, 1e-4);
}

/* ---- 2. multilabel: the cross-entropy family without channel 0 ----------------------------- */

static void test_multilabel_ce_family(void)
{
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(monai_x, 4, 1, 3, 2, 2);
    req.target = u8(monai_onehot, 4, 1, 3, 2, 2);
    req.mode = SL_MODE_MULTILABEL;
    req.include_background = false;

    /* cross_entropy: BCEWithLogits = MONAI FocalLoss(gamma=0), mean over channels 1, 2 */
    double bce = 0, wce = 0, hed = 0, cw = 0;
    /* balanced "auto": beta per channel = mean(1 - y) over the batch: channel 1 has targets
     * (0, 1, 0, 0), channel 2 (0, 0, 1, 0): 3/4 each */
    const double beta = 3.0 / 4.0, weights[3] = {5, 1, 2};
    for (int k = 4; k < 12; k++) {
        bce += monai_sigmoid_focal(monai_x[k], monai_onehot[k], 0, NAN);
        wce += tf_weighted_ce(monai_x[k], monai_onehot[k], 3);
        hed += hed_balanced_ce(monai_x[k], monai_onehot[k], beta);
        cw += weights[k / 4] * monai_sigmoid_focal(monai_x[k], monai_onehot[k], 0, NAN);
    }
    struct sl_spec ce = loss("cross_entropy");
    CHECK_CLOSE(score1(&req, &ce), bce / 8, 1e-12, 1e-12);
    /* class_weights keep C entries; channel 0's weight (5) is unused without background */
    set_list(&ce, "class_weights", weights, 3);
    CHECK_CLOSE(score1(&req, &ce), cw / 8, 1e-12, 1e-12);
    struct sl_spec w = loss("weighted_cross_entropy");
    set_num(&w, "beta", 3);
    CHECK_CLOSE(score1(&req, &w), wce / 8, 1e-12, 1e-12);
    struct sl_spec b = loss("balanced_cross_entropy");
    CHECK_CLOSE(score1(&req, &b), hed / 8, 1e-12, 1e-12);
    /* reduction sum: the sum over the kept elements */
    struct sl_spec s = loss("cross_entropy");
    set_choice(&s, "reduction", 1);
    CHECK_CLOSE(score1(&req, &s), bce, 1e-12, 1e-12);

    /* combo cross_entropy + dice(smooth 1e-5) = MONAI DiceFocalLoss(sigmoid=True, gamma=0,
     * include_background=False): include_background goes to both terms. Dice per kept
     * channel c: 1 - (2 sum p y + 1e-5) / (sum p + sum y + 1e-5), mean over channels 1, 2 */
    double dice = 0;
    for (int c = 1; c < 3; c++) {
        double sp = 0, sy = 0, spy = 0;
        for (int k = 0; k < 4; k++) {
            double p = 1 / (1 + exp(-monai_x[c * 4 + k])), y = monai_onehot[c * 4 + k];
            sp += p;
            sy += y;
            spy += p * y;
        }
        dice += 1 - (2 * spy + 1e-5) / (sp + sy + 1e-5);
    }
    struct sl_spec terms[2] = {loss("cross_entropy"), loss("dice")};
    set_num(&terms[1], "smooth", 1e-5);
    struct sl_spec combo = loss("combo");
    combo.terms = terms;
    combo.nterms = 2;
    CHECK_CLOSE(score1(&req, &combo), bce / 8 + dice / 2, 1e-12, 1e-12);
    /* focal (alpha None, gamma 2) + dice: DiceFocalLoss(sigmoid=True, include_background=False) */
    double fl = 0;
    for (int k = 4; k < 12; k++) {
        fl += monai_sigmoid_focal(monai_x[k], monai_onehot[k], 2, NAN);
    }
    terms[0] = loss("focal");
    set_null(&terms[0], "alpha");
    CHECK_CLOSE(score1(&req, &combo), fl / 8 + dice / 2, 1e-12, 1e-12);
}

/* ---- 3. multilabel: ignore_index, per image and batch ------------------------------------ */

static void test_multilabel_ignore_batch(void)
{
    /* two images: image 0 is MONAI's case; image 1 the negated logits with channel 1's pixel 3
     * ignored (255) and channel 0's pixel 0 ignored (outside the kept channels anyway). */
    double x[24];
    uint8_t y[24];
    for (int k = 0; k < 12; k++) {
        x[k] = monai_x[k];
        x[12 + k] = -monai_x[k] + 0.25 * k;
        y[k] = monai_onehot[k];
        y[12 + k] = monai_onehot[k];
    }
    y[12 + 4 + 3] = 255;
    y[12 + 0] = 255;
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(x, 4, 2, 3, 2, 2);
    req.target = u8(y, 4, 2, 3, 2, 2);
    req.mode = SL_MODE_MULTILABEL;
    req.has_ignore = true;
    req.ignore_index = 255;
    req.include_background = false;
    double s0 = 0, s1 = 0;
    int n0 = 0, n1 = 0;
    for (int k = 4; k < 12; k++) {
        s0 += monai_sigmoid_focal(x[k], y[k], 2, NAN);
        n0++;
        if (y[12 + k] != 255) {
            s1 += monai_sigmoid_focal(x[12 + k], y[12 + k], 2, NAN);
            n1++;
        }
    }
    CHECK_INT(n1, 7);
    struct sl_spec f = loss("focal");
    set_null(&f, "alpha");
    double v, per[2];
    char msg[256];
    CHECK_INT(score(&req, &f, 1, &v, per, msg, sizeof msg), 0);
    /* per image: the mean over its counted elements of channels 1, 2; the batch: the mean over
     * all of them together (8 + 7), not the mean of the two images */
    CHECK_CLOSE(per[0], s0 / n0, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], s1 / n1, 1e-12, 1e-12);
    CHECK_CLOSE(v, (s0 + s1) / (n0 + n1), 1e-12, 1e-12);
}

/* ---- 4. binary: one channel, the flag is ignored (MONAI warns and ignores it) -------------- */

static void test_binary_ignored(void)
{
    const double x[4] = {1, -2, 0.5, 3};
    const uint8_t y[4] = {1, 0, 0, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(x, 4, 1, 1, 2, 2);
    req.target = u8(y, 3, 1, 2, 2, 0);
    double bce = 0, fl = 0;
    for (int k = 0; k < 4; k++) {
        bce += monai_sigmoid_focal(x[k], y[k], 0, NAN);
        fl += monai_sigmoid_focal(x[k], y[k], 2, 0.25);
    }
    struct sl_spec ce = loss("cross_entropy"), f = loss("focal");
    for (int bg = 0; bg < 2; bg++) {
        req.include_background = bg;
        CHECK_CLOSE(score1(&req, &ce), bce / 4, 1e-12, 1e-12);
        CHECK_CLOSE(score1(&req, &f), fl / 4, 1e-12, 1e-12);
    }
}

/* ---- 5. multiclass: focal's softmax without class 0; cross entropy keeps every class ------- */

/* MONAI softmax_focal_loss summed over the [N, C', *S] elements after FocalLoss.forward kept
 * channels first..C-1 (first = 1 without background): log_softmax over the kept channels,
 * -(1 - e^ls)^gamma ls t with t the one-hot target. Pixels whose label is 255 are skipped. */
static double monai_softmax_focal_sum(const double *x, const uint8_t *lab, int64_t N, int64_t C,
                                      int64_t S, int64_t first, double gamma)
{
    double sum = 0;
    for (int64_t i = 0; i < N; i++) {
        for (int64_t k = 0; k < S; k++) {
            int t = lab[i * S + k];
            if (t == 255 || t < first) {
                continue; /* a one-hot row of zeros over the kept channels adds 0 */
            }
            double mx = -INFINITY, se = 0;
            for (int64_t c = first; c < C; c++) {
                mx = fmax(mx, x[(i * C + c) * S + k]);
            }
            for (int64_t c = first; c < C; c++) {
                se += exp(x[(i * C + c) * S + k] - mx);
            }
            double ls = x[(i * C + t) * S + k] - mx - log(se);
            sum += -pow(1 - exp(ls), gamma) * ls;
        }
    }
    return sum;
}

static void test_multiclass(void)
{
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(monai_x, 4, 1, 3, 2, 2);
    req.target = u8(monai_labels, 3, 1, 2, 2, 0);
    req.mode = SL_MODE_MULTICLASS;
    struct sl_spec f = loss("focal");
    set_null(&f, "alpha");
    /* segloss's multiclass focal is the mean over pixels of the target class's term; MONAI's
     * FocalLoss(use_softmax=True) is the mean over the N x C x S one-hot elements, so its value
     * is segloss's / C: MONAI's own case gives 0.16276, all logits equal, p = 1/3 everywhere,
     * (2/3)^2 log 3 per pixel */
    CHECK_CLOSE(score1(&req, &f) / 3, 0.16276, 1e-4, 1e-4);
    CHECK_CLOSE(score1(&req, &f), 4.0 / 9.0 * log(3.0), 1e-12, 1e-12);
    /* without background MONAI drops channel 0 first: softmax over channels 1, 2 gives 1/2 at
     * every pixel; pixels 1 (class 1) and 2 (class 2) add (1/2)^2 log 2 each, the class-0 pixels
     * 0 and 3 add 0 and still count: (2 * log(2) / 4) / 4 pixels. MONAI's mean divides by the
     * 2 x 4 kept elements instead: 0.0433217 (its formula run in float64), segloss / (C - 1) */
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &f), 2 * 0.25 * log(2.0) / 4, 1e-12, 1e-12);
    CHECK_CLOSE(score1(&req, &f) / 2, 0.0433217, 1e-5, 1e-6);

    /* a number alpha weighs every class, a list the target class (class 0's entry unused) */
    set_num(&f, "alpha", 0.25);
    CHECK_CLOSE(score1(&req, &f), 0.25 * 2 * 0.25 * log(2.0) / 4, 1e-12, 1e-12);
    const double al[3] = {9, 0.5, 2};
    set_list(&f, "alpha", al, 3);
    CHECK_CLOSE(score1(&req, &f), (0.5 + 2) * 0.25 * log(2.0) / 4, 1e-12, 1e-12);

    /* cross_entropy keeps all three classes (MONAI DiceCELoss's CE term is
     * nn.CrossEntropyLoss over every class whatever include_background): log 3 per pixel */
    struct sl_spec ce = loss("cross_entropy");
    CHECK_CLOSE(score1(&req, &ce), log(3.0), 1e-12, 1e-12);
    /* combo cross_entropy + dice(smooth 1e-5) = MONAI DiceCELoss(softmax=True, to_onehot_y=True,
     * include_background=False): CE over every class plus Dice over classes 1, 2, each with
     * sum p = 4/3, sum y = 1, sum p y = 1/3 */
    struct sl_spec terms[2] = {loss("cross_entropy"), loss("dice")};
    set_num(&terms[1], "smooth", 1e-5);
    struct sl_spec combo = loss("combo");
    combo.terms = terms;
    combo.nterms = 2;
    const double d = 1 - (2.0 / 3.0 + 1e-5) / (4.0 / 3.0 + 1 + 1e-5);
    CHECK_CLOSE(score1(&req, &combo), log(3.0) + d, 1e-12, 1e-12);

    /* weighted and balanced cross entropy stay binary/multilabel losses: a 422 in multiclass */
    struct sl_spec w = loss("weighted_cross_entropy");
    double v;
    char msg[256];
    CHECK(score(&req, &w, 1, &v, NULL, msg, sizeof msg) == SL_EINVAL);
    CHECK_HAS(msg, "is for binary and multilabel mode");
}

static void test_multiclass_general(void)
{
    /* N = 2, C = 4, 1x3 pixels, unequal logits; image 1 has an ignored pixel (255) */
    const double x[24] = {2,  0, -1, 0.5, 1, -2,  0, 3,  1, -1,  0.25, 2,
                          -1, 2, 0,  1,   0, 0.5, 3, -2, 1, 0.5, 1.5,  -0.5};
    const uint8_t lab[6] = {1, 3, 0, 2, 255, 3};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(x, 4, 2, 4, 1, 3);
    req.target = u8(lab, 3, 2, 1, 3, 0);
    req.mode = SL_MODE_MULTICLASS;
    req.has_ignore = true;
    req.ignore_index = 255;
    req.include_background = false;
    struct sl_spec f = loss("focal");
    set_null(&f, "alpha");
    set_num(&f, "gamma", 1.5);
    double v, per[2];
    char msg[256];
    CHECK_INT(score(&req, &f, 1, &v, per, msg, sizeof msg), 0);
    const double s0 = monai_softmax_focal_sum(x, lab, 1, 4, 3, 1, 1.5);
    const double s1 = monai_softmax_focal_sum(x + 12, lab + 3, 1, 4, 3, 1, 1.5);
    /* per image over its counted pixels (3 and 2), the batch over all 5 */
    CHECK_CLOSE(per[0], s0 / 3, 1e-12, 1e-12);
    CHECK_CLOSE(per[1], s1 / 2, 1e-12, 1e-12);
    CHECK_CLOSE(v, (s0 + s1) / 5, 1e-12, 1e-12);
    /* with background: MONAI's formula over all four channels */
    req.include_background = true;
    CHECK_CLOSE(score1(&req, &f), (monai_softmax_focal_sum(x, lab, 2, 4, 3, 0, 1.5)) / 5, 1e-12,
                1e-12);

    /* probabilities: the kept classes renormalised (the softmax of the kept logits); the
     * softmax of these logits given as probabilities scores as the logits do, up to the clip */
    double p[24];
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 3; k++) {
            double se = 0;
            for (int c = 0; c < 4; c++) {
                se += exp(x[(i * 4 + c) * 3 + k]);
            }
            for (int c = 0; c < 4; c++) {
                p[(i * 4 + c) * 3 + k] = exp(x[(i * 4 + c) * 3 + k]) / se;
            }
        }
    }
    req.prediction = f64(p, 4, 2, 4, 1, 3);
    req.pred_type = SL_PRED_PROBABILITIES;
    req.include_background = false;
    CHECK_CLOSE(score1(&req, &f), (s0 + s1) / 5, 1e-9, 1e-9);

    /* C = 2 without background: one kept channel, softmax 1, focal 0 (as MONAI) */
    const double x2[4] = {0.3, -1, 2, 0.5};
    const uint8_t l2[2] = {1, 0};
    req.prediction = f64(x2, 4, 1, 2, 1, 2);
    req.target = u8(l2, 3, 1, 1, 2, 0);
    req.pred_type = SL_PRED_LOGITS;
    req.has_ignore = false;
    CHECK_CLOSE(score1(&req, &f), 0, 0, 1e-15);
}

/* ---- 6. the per-loss parameter: overrides the request's (and a combo's) ------------------- */

static void set_bg(struct sl_spec *s, bool v)
{
    set_bool(s, "include_background", v);
}

static void test_per_loss(void)
{
    /* every loss but the binary-only distance-weighted CE takes it, with no default (absent:
     * the request's) */
    static const char *const takes[] = {"cross_entropy",
                                        "weighted_cross_entropy",
                                        "balanced_cross_entropy",
                                        "focal",
                                        "dice",
                                        "jaccard",
                                        "tversky",
                                        "lovasz_hinge",
                                        "lovasz_softmax",
                                        "combo"};
    for (size_t k = 0; k < sizeof takes / sizeof takes[0]; k++) {
        const struct sl_def *d = sl_find_loss(takes[k]);
        int i = sl_param_index(d, "include_background");
        CHECK(i >= 0);
        if (i >= 0) {
            CHECK(d->params[i].type == SL_PT_BOOL && d->params[i].def.kind == SL_V_ABSENT);
        }
    }
    CHECK(sl_param_index(sl_find_loss("distance_weighted_cross_entropy"), "include_background") <
          0);

    /* multilabel, MONAI's case: the spec's flag wins over the request's either way */
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(monai_x, 4, 1, 3, 2, 2);
    req.target = u8(monai_onehot, 4, 1, 3, 2, 2);
    struct sl_spec f[2] = {loss("focal"), loss("focal")};
    set_null(&f[0], "alpha");
    set_null(&f[1], "alpha");
    set_bg(&f[0], false);
    snprintf(f[1].key, sizeof f[1].key, "focal_default");
    double v[3];
    char msg[256];
    CHECK_INT(score(&req, f, 2, v, NULL, msg, sizeof msg), 0);
    CHECK_CLOSE(v[0], 0.36498, 1e-4, 1e-4);
    CHECK_CLOSE(v[1], 0.34959, 1e-4, 1e-4);
    req.include_background = false;
    set_bg(&f[0], true);
    CHECK_INT(score(&req, f, 2, v, NULL, msg, sizeof msg), 0);
    CHECK_CLOSE(v[0], 0.34959, 1e-4, 1e-4);
    CHECK_CLOSE(v[1], 0.36498, 1e-4, 1e-4);

    /* multiclass: two focal losses of the same gamma, one without class 0, in one request:
     * 4/9 log 3 with every class, (2 (1/2)^2 log 2) / 4 without (test_multiclass above) */
    sl_request_init(&req);
    req.prediction = f64(monai_x, 4, 1, 3, 2, 2);
    req.target = u8(monai_labels, 3, 1, 2, 2, 0);
    set_bg(&f[0], false);
    CHECK_INT(score(&req, f, 2, v, NULL, msg, sizeof msg), 0);
    CHECK_CLOSE(v[0], 2 * 0.25 * log(2.0) / 4, 1e-12, 1e-12);
    CHECK_CLOSE(v[1], 4.0 / 9.0 * log(3.0), 1e-12, 1e-12);

    /* a combo's flag reaches the terms that give none: DiceCELoss(include_background=False)
     * with the request's true: CE over every class + Dice over classes 1, 2 (sum p 4/3, sum y 1,
     * sum p y 1/3); a term's own true keeps class 0 in its Dice (class 0: sum p 4/3, sum y 2,
     * sum p y 2/3) */
    struct sl_spec terms[2] = {loss("cross_entropy"), loss("dice")};
    set_num(&terms[1], "smooth", 1e-5);
    struct sl_spec combo = loss("combo");
    combo.terms = terms;
    combo.nterms = 2;
    set_bg(&combo, false);
    const double d12 = 1 - (2.0 / 3.0 + 1e-5) / (4.0 / 3.0 + 1 + 1e-5);
    const double d0 = 1 - (4.0 / 3.0 + 1e-5) / (4.0 / 3.0 + 2 + 1e-5);
    CHECK_CLOSE(score1(&req, &combo), log(3.0) + d12, 1e-12, 1e-12);
    set_bg(&terms[1], true);
    CHECK_CLOSE(score1(&req, &combo), log(3.0) + (d0 + 2 * d12) / 3, 1e-12, 1e-12);

    /* multiclass cross_entropy with its own false: a 422 naming the key (softmax CE has no
     * class to leave out), alone or as a combo term; the request's or a combo's false is fine */
    struct sl_spec ce = loss("cross_entropy");
    snprintf(ce.path, sizeof ce.path, "losses[0]");
    set_bg(&ce, false);
    CHECK(score(&req, &ce, 1, v, NULL, msg, sizeof msg) == SL_EINVAL);
    CHECK_PREFIX(msg, "losses[0].include_background: false does not apply to multiclass");
    set_bg(&terms[1], false);
    terms[0] = ce;
    snprintf(terms[0].path, sizeof terms[0].path, "losses[0].terms[0]");
    CHECK(score(&req, &combo, 1, v, NULL, msg, sizeof msg) == SL_EINVAL);
    CHECK_PREFIX(msg, "losses[0].terms[0].include_background");
    set_bg(&ce, true);
    CHECK_CLOSE(score1(&req, &ce), log(3.0), 1e-12, 1e-12);

    /* binary: a loss's own false is accepted and has no effect (MONAI warns and ignores it) */
    const double xb[4] = {1, -2, 0.5, 3};
    const uint8_t yb[4] = {1, 0, 0, 1};
    sl_request_init(&req);
    req.prediction = f64(xb, 4, 1, 1, 2, 2);
    req.target = u8(yb, 3, 1, 2, 2, 0);
    double bce = 0;
    for (int k = 0; k < 4; k++) {
        bce += monai_sigmoid_focal(xb[k], yb[k], 0, NAN);
    }
    struct sl_spec cb = loss("cross_entropy");
    set_bg(&cb, false);
    CHECK_CLOSE(score1(&req, &cb), bce / 4, 1e-12, 1e-12);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_monai_focal_case),
    CHECK_TEST(test_multilabel_ce_family),
    CHECK_TEST(test_multilabel_ignore_batch),
    CHECK_TEST(test_binary_ignored),
    CHECK_TEST(test_multiclass),
    CHECK_TEST(test_multiclass_general),
    CHECK_TEST(test_per_loss),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_include_background", tests);
}
