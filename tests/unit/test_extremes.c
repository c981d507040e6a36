/* test_extremes.c - float32 logits and weights at the ends of float32's range: the fused
 * float32 pass answers what the double pass answers (and what MONAI / PyTorch in float64
 * answer), in binary and multilabel mode; multiclass (computed in double) likewise.
 *
 * Expected values are worked out by hand below from the definitions (README
 * "Conventions"), with libm's double exp/log1p standing for exact arithmetic:
 *   p = sigmoid(x) = e^x / (1 + e^x); for x = -90 that is 8.19e-40, a double but below the
 *   smallest normal float32 (1.18e-38), and p^2 for x = -60 is 7.7e-53.
 *   Dice with smooth 0 on an empty target: 1 - 2 sum(p y) / (sum p + sum y) = 1 - 0 / sum p = 1
 *   whenever sum p > 0 (MONAI DiceLoss(smooth_nr=0, smooth_dr=0) in float64 answers 1); the
 *   0/0 convention (loss 0) applies only when every p is exactly 0 (e^x underflows double,
 *   x < -745.1).
 *   Tversky with fp_weight 1, fn_weight 0 is 1 - sum(p y) / sum(p): pixels with y = 1 at
 *   x = -90 and as many with y = 0 at x = -91 give sum(p y) / sum(p) = 1 / (1 + e^-1), a ratio
 *   of sums of about 1e-38 that float32 terms cannot carry.
 *   CE of x = 3e38, y = 0 is x + log1p(e^-x) = x: a finite mean whose float32 lane sum of 8
 *   terms overflows. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "internal.h"

#define H 6
#define W 7
#define NPIX (H * W) /* 42: one full 16-lane step, two 8-lane steps and tails */

/* A binary [1, H, W] request (or multilabel [1, 2, H, W] when ml, both channels alike) with
 * float32 (f64 false) or float64 logits x, uint8 targets y, optional float32/float64 weights;
 * scores losses and returns the result (NULL on an error, printed). */
static struct sl_result *run(const float *x, const uint8_t *y, const float *w, bool ml, bool f64,
                             const struct sl_spec *losses, int nl)
{
    static double xd[2 * NPIX], wd[2 * NPIX];
    static float xf[2 * NPIX], wf[2 * NPIX];
    static uint8_t yy[2 * NPIX];
    const int planes = ml ? 2 : 1;
    for (int c = 0; c < planes; c++) {
        for (int k = 0; k < NPIX; k++) {
            xf[c * NPIX + k] = x[k];
            xd[c * NPIX + k] = x[k];
            yy[c * NPIX + k] = y[k];
            wf[c * NPIX + k] = w ? w[k] : 1;
            wd[c * NPIX + k] = w ? w[k] : 1;
        }
    }
    struct sl_request req;
    sl_request_init(&req);
    struct sl_tensor t = {NULL, SL_DT_F32, 3, {1, H, W}};
    if (ml) {
        t = (struct sl_tensor){NULL, SL_DT_F32, 4, {1, 2, H, W}};
    }
    req.prediction = t;
    req.prediction.data = f64 ? (const void *)xd : (const void *)xf;
    req.prediction.dtype = f64 ? SL_DT_F64 : SL_DT_F32;
    req.target = t;
    req.target.data = yy;
    req.target.dtype = SL_DT_U8;
    if (w) {
        req.weight = t;
        req.weight.data = f64 ? (const void *)wd : (const void *)wf;
        req.weight.dtype = f64 ? SL_DT_F64 : SL_DT_F32;
    }
    req.mode = ml ? SL_MODE_MULTILABEL : SL_MODE_AUTO;
    req.losses = losses;
    req.nlosses = nl;
    struct sl_result *res = NULL;
    char msg[256];
    if (sl_score(&req, NULL, &res, msg, sizeof msg) != 0) {
        fprintf(stderr, "sl_score: %s\n", msg);
        return NULL;
    }
    return res;
}

/* Loss k of res, or NaN. */
static double value(const struct sl_result *res, int k)
{
    return res ? res->losses[k].value : NAN;
}

/* Region losses with smooth 0 on an empty target with tiny p: loss 1 in float32 as in double. */
static void test_tiny_p_region(void)
{
    struct sl_spec l[5] = {loss("dice"), loss("jaccard"), loss("tversky"), loss("dice"),
                           loss("tversky")};
    set_bool(&l[3], "squared", true);
    set_num(&l[4], "fp_weight", 1);
    set_num(&l[4], "fn_weight", 0);
    float x[NPIX];
    uint8_t y[NPIX];
    /* x = -90 everywhere (sum p = 42 e^-90 > 0), x = -60 for squared Dice (sum p^2 = 42 e^-120),
     * x = -720 (p = e^-720 = 1.6e-313, a subnormal double), x = -800 (p = 0 in double too: the
     * 0/0 convention, loss 0) */
    const float xs[] = {-90.0f, -60.0f, -200.0f, -720.0f, -800.0f, -FLT_MAX};
    const double want[] = {1, 1, 1, 1, 0, 0};
    /* squared Dice: p^2 = e^-400 is a double, e^-1440 is 0 (below 4.9e-324) */
    const double want_sq[] = {1, 1, 1, 0, 0, 0};
    for (int ml = 0; ml < 2; ml++) {
        for (size_t v = 0; v < sizeof xs / sizeof xs[0]; v++) {
            for (int k = 0; k < NPIX; k++) {
                x[k] = xs[v];
                y[k] = 0;
            }
            for (int f64 = 0; f64 < 2; f64++) {
                struct sl_result *r = run(x, y, NULL, ml, f64, l, 4);
                for (int k = 0; k < 4; k++) {
                    const double wv = k == 3 ? want_sq[v] : want[v];
                    if (value(r, k) != wv) {
                        fprintf(stderr, "x = %g %s %s loss %d: %.17g, want %g\n", (double)xs[v],
                                ml ? "multilabel" : "binary", f64 ? "float64" : "float32", k,
                                value(r, k), wv);
                    }
                    CHECK(value(r, k) == wv);
                }
                sl_result_free(r);
            }
        }
        /* precision-like Tversky on tiny sums: y = 1 at -90, y = 0 at -91 */
        for (int k = 0; k < NPIX; k++) {
            y[k] = k % 2;
            x[k] = y[k] ? -90.0f : -91.0f;
        }
        const double want_tv = 1 - 1 / (1 + exp(-1.0)); /* 0.2689414213699951 */
        for (int f64 = 0; f64 < 2; f64++) {
            struct sl_result *r = run(x, y, NULL, ml, f64, &l[4], 1);
            CHECK_CLOSE(value(r, 0), want_tv, 1e-6, 0);
            sl_result_free(r);
        }
    }
}

/* Cross entropy and focal terms far below float32's normal range: the mean is the tiny
 * double value, not 0. */
static void test_tiny_terms(void)
{
    struct sl_spec l[2] = {loss("cross_entropy"), loss("focal")};
    float x[NPIX];
    uint8_t y[NPIX];
    for (int k = 0; k < NPIX; k++) {
        y[k] = k % 2;
        x[k] = y[k] ? 90.0f : -90.0f; /* every pixel right, -log p = log1p(e^-90) */
    }
    const double ce = log1p(exp(-90.0)); /* 8.19e-40 */
    /* MONAI focal, alpha 0.25, gamma 2: alpha (1-p)^2 (-log p) on y = 1, (1-alpha) p^2
     * (-log(1-p)) on y = 0; both (1-p) and p here are sigmoid(-90) */
    const double s = 1 / (1 + exp(90.0));
    const double focal = (0.25 * s * s * ce + 0.75 * s * s * ce) / 2;
    for (int ml = 0; ml < 2; ml++) {
        for (int f64 = 0; f64 < 2; f64++) {
            struct sl_result *r = run(x, y, NULL, ml, f64, l, 2);
            CHECK_CLOSE(value(r, 0), ce, 1e-6, 0);
            CHECK_CLOSE(value(r, 1), focal, 2e-6, 0);
            sl_result_free(r);
        }
    }
    /* x = +-30: (1-p)^2 (-log p) = e^-90-ish, a product of normal floats that is not one */
    for (int k = 0; k < NPIX; k++) {
        x[k] = y[k] ? 30.0f : -30.0f;
    }
    const double s30 = 1 / (1 + exp(30.0)), ce30 = log1p(exp(-30.0));
    /* gamma 5: p^5 (-log(1-p)) = e^-180-ish, the factor e^(5 log p) far below float32's range */
    struct sl_spec g5 = loss("focal");
    set_num(&g5, "gamma", 5);
    for (int f64 = 0; f64 < 2; f64++) {
        struct sl_result *r = run(x, y, NULL, false, f64, &l[1], 1);
        CHECK_CLOSE(value(r, 0), (0.25 + 0.75) * s30 * s30 * ce30 / 2, 2e-6, 0);
        sl_result_free(r);
        r = run(x, y, NULL, false, f64, &g5, 1);
        CHECK_CLOSE(value(r, 0), (0.25 + 0.75) * pow(s30, 5) * ce30 / 2, 2e-6, 0);
        sl_result_free(r);
    }
    /* the edge of float32's reach: x = +-39.5 with weights 1e-6, gamma 2 and 2.1 (products near
     * e^-120 and e^-124 times 1e-6) */
    float w[NPIX];
    for (int k = 0; k < NPIX; k++) {
        x[k] = y[k] ? 39.5f : -39.5f;
        w[k] = 1e-6f;
    }
    struct sl_spec g21 = loss("focal");
    set_num(&g21, "gamma", 2.1);
    const double s39 = 1 / (1 + exp(39.5)), ce39 = log1p(exp(-39.5)), w6 = (double)1e-6f;
    const double g21f = (double)2.1f; /* the float32 pass rounds gamma to float */
    for (int f64 = 0; f64 < 2; f64++) {
        struct sl_result *r = run(x, y, w, false, f64, &l[1], 1);
        CHECK_CLOSE(value(r, 0), w6 * s39 * s39 * ce39 / 2, 2e-6, 0);
        sl_result_free(r);
        r = run(x, y, w, false, f64, &g21, 1);
        CHECK_CLOSE(value(r, 0), w6 * pow(s39, f64 ? 2.1 : g21f) * ce39 / 2, 2e-5, 0);
        sl_result_free(r);
    }
}

/* A focal gamma beyond FLT_MAX (1e39, rounded to float: inf) where 1 - p is 1 in double
 * (x = -800, y = 1): (1 - p)^gamma = 1, the term alpha * 800; no NaN. */
static void test_huge_gamma(void)
{
    struct sl_spec l = loss("focal");
    set_num(&l, "gamma", 1e39);
    float x[NPIX];
    uint8_t y[NPIX];
    for (int k = 0; k < NPIX; k++) {
        x[k] = -800.0f;
        y[k] = 1;
    }
    for (int f64 = 0; f64 < 2; f64++) {
        struct sl_result *r = run(x, y, NULL, false, f64, &l, 1);
        CHECK_CLOSE(value(r, 0), 0.25 * 800, 1e-12, 0);
        sl_result_free(r);
    }
}

/* Logits and weights near FLT_MAX: finite cross entropy and focal, no overflow to null. */
static void test_huge(void)
{
    struct sl_spec l[3] = {loss("cross_entropy"), loss("focal"), loss("balanced_cross_entropy")};
    set_num(&l[2], "beta", 0.5);
    float x[NPIX], w[NPIX];
    uint8_t y[NPIX];
    for (int k = 0; k < NPIX; k++) {
        x[k] = 3e38f;
        y[k] = 0;
    }
    /* -log(1 - p) = x + log1p(e^-x) = x; focal: 0.75 p^2 x = 0.75 x */
    const double xv = (double)3e38f;
    for (int ml = 0; ml < 2; ml++) {
        for (int f64 = 0; f64 < 2; f64++) {
            struct sl_result *r = run(x, y, NULL, ml, f64, l, 3);
            CHECK_CLOSE(value(r, 0), xv, 1e-6, 0);
            CHECK_CLOSE(value(r, 1), 0.75 * xv, 2e-6, 0);
            CHECK_CLOSE(value(r, 2), 0.5 * xv, 1e-6, 0);
            sl_result_free(r);
        }
    }
    /* weight 1e38 at x = 10, y = 0 (and x = -10, y = 1): w (10 + log1p(e^-10)) per pixel */
    for (int k = 0; k < NPIX; k++) {
        y[k] = k % 2;
        x[k] = y[k] ? -10.0f : 10.0f;
        w[k] = 1e38f;
    }
    const double wv = (double)1e38f, lw = 10 + log1p(exp(-10.0));
    const double pw = 1 / (1 + exp(-10.0)); /* the wrong class's probability */
    const double fw = (0.25 * pw * pw * lw + 0.75 * pw * pw * lw) / 2;
    for (int ml = 0; ml < 2; ml++) {
        for (int f64 = 0; f64 < 2; f64++) {
            struct sl_result *r = run(x, y, w, ml, f64, l, 2);
            CHECK_CLOSE(value(r, 0), wv * lw, 1e-6, 0);
            CHECK_CLOSE(value(r, 1), wv * fw, 2e-6, 0);
            sl_result_free(r);
        }
    }
}

/* Multiclass float32 [1, 2, H, W] (softmax in double): logits +-3e38 give finite CE, and
 * logits 90 apart keep Dice's tiny sums. */
static void test_multiclass(void)
{
    static float x[2 * NPIX];
    static uint8_t y[NPIX];
    struct sl_spec l[2] = {loss("cross_entropy"), loss("dice")};
    for (int k = 0; k < NPIX; k++) {
        x[k] = 3e38f;       /* class 0 */
        x[NPIX + k] = 0.0f; /* class 1, the target */
        y[k] = 1;
    }
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 4, {1, 2, H, W}};
    req.target = (struct sl_tensor){y, SL_DT_U8, 3, {1, H, W}};
    req.losses = l;
    req.nlosses = 1;
    struct sl_result *r = NULL;
    char msg[256];
    CHECK(sl_score(&req, NULL, &r, msg, sizeof msg) == 0);
    /* -log softmax_1 = logsumexp(x) - x_1 = 3e38 */
    CHECK_CLOSE(value(r, 0), (double)3e38f, 1e-6, 0);
    sl_result_free(r);
    /* target all class 0, x_0 = 0, x_1 = -90: class 1 is absent from the target but has
     * sum p = 42 s > 0, s = e^-90 / (1 + e^-90), so its Dice loss is 1 - 0 / (42 s) = 1 (it
     * would be 0 by the 0/0 convention if p underflowed); class 0 scores 1 - 2 (1 - s) / (2 - s),
     * about 4e-40; the class mean is 0.5 */
    for (int k = 0; k < NPIX; k++) {
        x[k] = 0.0f;
        x[NPIX + k] = -90.0f;
        y[k] = 0;
    }
    req.losses = &l[1];
    CHECK(sl_score(&req, NULL, &r, msg, sizeof msg) == 0);
    CHECK_CLOSE(value(r, 0), 0.5, 1e-12, 0);
    sl_result_free(r);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_tiny_p_region), CHECK_TEST(test_tiny_terms), CHECK_TEST(test_huge),
    CHECK_TEST(test_huge_gamma),    CHECK_TEST(test_multiclass),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_extremes", tests);
}
