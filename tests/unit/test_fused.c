/* test_fused.c - the fused float32 pass (float32/float16/bfloat16 logits) against the generic
 * double pass (the same values as float64) on random inputs: every loss value and per-image value
 * within the stated tolerance, the confusion counts exactly; the validation the fused pass
 * takes over answers as full validation does; and the pool does not change a bit. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "fused_util.h"
#include "internal.h"

/* Relative tolerance of the fused pass against double (simd.c derives the worst cases: plane
 * sums within 7.5e-7 for cross entropy, 1.1e-6 for sum p^2, 1.5e-6 for focal; on random inputs
 * the rounding errors mostly cancel and the differences stay near 1e-7). */
#define RTOL 1e-6
#define RTOL_FOCAL 2e-6
#define ATOL 1e-9

struct inputs {
    int64_t n, c, h, w, npred, ntgt;
    float *xf;
    double *xd;
    uint16_t *xh;
    uint8_t *t8;
    int64_t *t64;
    float *wf;
    double *wd;
};

/* Random logits (a few far beyond the exp cut), targets with about 1/8 ignored (255 or -100),
 * weights in [0, 2). Multilabel when c > 1. Half-exact logits so float16 can be compared. */
static void make_inputs(struct inputs *in, int64_t n, int64_t c, int64_t h, int64_t w,
                        uint64_t seed)
{
    in->n = n;
    in->c = c;
    in->h = h;
    in->w = w;
    in->npred = n * c * h * w;
    in->ntgt = in->npred;
    in->xf = malloc(sizeof *in->xf * (size_t)in->npred);
    in->xd = malloc(sizeof *in->xd * (size_t)in->npred);
    in->xh = malloc(sizeof *in->xh * (size_t)in->npred);
    in->t8 = malloc((size_t)in->ntgt);
    in->t64 = malloc(sizeof *in->t64 * (size_t)in->ntgt);
    in->wf = malloc(sizeof *in->wf * (size_t)in->ntgt);
    in->wd = malloc(sizeof *in->wd * (size_t)in->ntgt);
    for (int64_t i = 0; i < in->npred; i++) {
        double v = 24 * (unit(&seed) - 0.5);
        if (next(&seed) % 500 == 0) {
            v = next(&seed) % 2 ? 120.0 : -120.0;
        }
        /* 10 significant bits: exact in float16 */
        int ex;
        double m = frexp(v, &ex);
        in->xf[i] = (float)ldexp(round(m * 2048) / 2048, ex);
        in->xd[i] = in->xf[i];
        in->xh[i] = to_half(in->xf[i]);
    }
    for (int64_t i = 0; i < in->ntgt; i++) {
        const bool ign = next(&seed) % 8 == 0, fg = next(&seed) % 3 == 0;
        in->t8[i] = ign ? 255 : fg;
        in->t64[i] = ign ? -100 : fg;
        in->wf[i] = (float)(2 * unit(&seed));
        in->wd[i] = in->wf[i];
    }
}

static void free_inputs(struct inputs *in)
{
    free(in->xf);
    free(in->xd);
    free(in->xh);
    free(in->t8);
    free(in->t64);
    free(in->wf);
    free(in->wd);
}

static struct sl_tensor tensor(const void *d, enum sl_dtype dt, const struct inputs *in,
                               bool with_c)
{
    struct sl_tensor t = {d, dt, 4, {in->n, in->c, in->h, in->w}};
    if (!with_c) {
        t.ndim = 3;
        t.shape[1] = in->h;
        t.shape[2] = in->w;
    }
    return t;
}

/* Scores specs with the prediction in dtype pdt (float32, float16 or float64), targets uint8
 * (ignore 255) or int64 (ignore -100), weights or not. */
static struct sl_result *score(const struct inputs *in, enum sl_dtype pdt, bool t64, bool weights,
                               const struct sl_spec *losses, int nl, const struct sl_spec *metrics,
                               int nm, struct sl_pool *pool)
{
    const bool ml = in->c > 1;
    struct sl_request req;
    sl_request_init(&req);
    const void *x = pdt == SL_DT_F32   ? (const void *)in->xf
                    : pdt == SL_DT_F16 ? (const void *)in->xh
                                       : (const void *)in->xd;
    req.prediction = tensor(x, pdt, in, ml);
    req.target = tensor(t64 ? (const void *)in->t64 : in->t8, t64 ? SL_DT_I64 : SL_DT_U8, in, ml);
    if (weights) {
        req.weight = tensor(pdt == SL_DT_F64 ? (const void *)in->wd : in->wf,
                            pdt == SL_DT_F64 ? SL_DT_F64 : SL_DT_F32, in, ml);
    }
    req.has_ignore = true;
    req.ignore_index = t64 ? -100 : 255;
    req.losses = losses;
    req.nlosses = nl;
    req.metrics = metrics;
    req.nmetrics = nm;
    struct sl_result *res = NULL;
    char msg[256];
    if (sl_score(&req, pool, &res, msg, sizeof msg) != 0) {
        fprintf(stderr, "sl_score: %s\n", msg);
        return NULL;
    }
    return res;
}

static double worst_rel; /* the largest relative difference seen, for the record */

static void close_rel(double got, double want, double rtol, const char *what)
{
    const double d = fabs(got - want);
    if (want != 0 && d / fabs(want) > worst_rel) {
        worst_rel = d / fabs(want);
    }
    if (d > ATOL + rtol * fabs(want)) {
        fprintf(stderr, "%s: fused %.17g, double %.17g (rel %.3g)\n", what, got, want,
                want != 0 ? d / fabs(want) : d);
    }
    CHECK(d <= ATOL + rtol * fabs(want));
}

/* How closely two results must agree. */
enum agree {
    AGREE_TOL,  /* the fused pass against double: RTOL (focal RTOL_FOCAL) */
    AGREE_NEAR, /* the same pixel values summed in other groups: 1e-12 */
    AGREE_BITS, /* bit for bit */
};

/* Every loss value, per-image value and metric of two results agree as asked; counts always
 * exactly. */
static void compare(const struct sl_result *a, const struct sl_result *b, enum agree how)
{
    CHECK(a && b);
    if (!a || !b) {
        return;
    }
    for (int i = 0; i < a->nlosses; i++) {
        const struct sl_loss_result *la = &a->losses[i], *lb = &b->losses[i];
        const double rtol = how == AGREE_NEAR                           ? 1e-12
                            : strcmp(la->spec->def->name, "focal") == 0 ? RTOL_FOCAL
                                                                        : RTOL;
        if (how == AGREE_BITS) {
            /* the same bits */
            CHECK(memcmp(&la->value, &lb->value, sizeof la->value) == 0);
            for (int64_t k = 0; k < a->images && la->has_per_image; k++) {
                CHECK(memcmp(&la->per_image[k], &lb->per_image[k], sizeof(double)) == 0);
            }
            continue;
        }
        close_rel(la->value, lb->value, rtol, la->spec->key);
        for (int64_t k = 0; k < a->images && la->has_per_image; k++) {
            close_rel(la->per_image[k], lb->per_image[k], rtol, la->spec->key);
        }
    }
    for (int i = 0; i < a->nmetrics; i++) {
        const struct sl_metric_result *ma = &a->metrics[i], *mb = &b->metrics[i];
        for (int64_t k = 0; k < a->images * a->classes; k++) {
            if (ma->counts) {
                CHECK(memcmp(&ma->counts[k], &mb->counts[k], sizeof ma->counts[k]) == 0);
            } else {
                CHECK(memcmp(&ma->per_image[k], &mb->per_image[k], sizeof(double)) == 0);
            }
        }
    }
}

static void test_against_double(void)
{
    struct sl_spec losses[10] = {loss("cross_entropy"),
                                 loss("weighted_cross_entropy"),
                                 loss("balanced_cross_entropy"),
                                 loss("focal"),
                                 loss("focal"),
                                 loss("focal"),
                                 loss("dice"),
                                 loss("jaccard"),
                                 loss("tversky"),
                                 loss("dice")};
    set_num(&losses[1], "beta", 3);
    set_num(&losses[4], "gamma", 0.5);
    set_num(&losses[4], "alpha", 0.25);
    set_num(&losses[5], "gamma", 0); /* a third gamma: a second pass of the kernel */
    set_bool(&losses[9], "squared", true);
    struct sl_spec metrics[3] = {metric("dice"), metric("iou"), metric("confusion")};
    /* shapes: tails of every kind, a chunked plane (> SL_CHUNK pixels), multilabel */
    const int64_t shapes[][4] = {{3, 1, 37, 23}, {2, 1, 1, 5}, {1, 1, 300, 260}, {2, 3, 17, 40}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        struct inputs in;
        make_inputs(&in, shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3], 11 + si);
        for (int variant = 0; variant < 4; variant++) {
            const bool t64 = variant & 1, weights = variant & 2;
            /* the CE family, focal and region losses; per_image false pools the batch */
            struct sl_result *d = score(&in, SL_DT_F64, t64, weights, losses, 10, metrics, 3, NULL);
            struct sl_result *f = score(&in, SL_DT_F32, t64, weights, losses, 10, metrics, 3, NULL);
            struct sl_result *h = score(&in, SL_DT_F16, t64, weights, losses, 10, metrics, 3, NULL);
            compare(f, d, AGREE_TOL);
            /* float16 is widened exactly, but fed to the kernel per block: other sum groups */
            compare(h, f, AGREE_NEAR);
            sl_result_free(d);
            sl_result_free(f);
            sl_result_free(h);
        }
        free_inputs(&in);
    }
    printf("fused against double: largest relative difference %.3g (tolerance %.0e, focal "
           "%.0e)\n",
           worst_rel, RTOL, RTOL_FOCAL);
}

/* The high half of float f, when f has at most 8 significant bits (exactly a bfloat16). */
static uint16_t to_bf16(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return (uint16_t)(b >> 16);
}

/* bfloat16 logits, and float16 or bfloat16 weights, score as float32 tensors of the same
 * values do (the fused kernel reads them widened per block: other sum groups, so within
 * 1e-12), and as the double pass does within RTOL. Inputs rounded to 8 significant bits. */
static void test_bfloat16_and_half_weights(void)
{
    struct sl_spec losses[5] = {loss("cross_entropy"), loss("focal"), loss("dice"),
                                loss("weighted_cross_entropy"), loss("tversky")};
    struct sl_spec metrics[2] = {metric("dice"), metric("confusion")};
    const int64_t shapes[][4] = {{3, 1, 37, 23}, {1, 1, 300, 260}, {2, 3, 17, 40}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        struct inputs in;
        make_inputs(&in, shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3], 71 + si);
        uint16_t *xb = malloc(sizeof *xb * (size_t)in.npred);
        uint16_t *wb = malloc(sizeof *wb * (size_t)in.ntgt);
        uint16_t *wh = malloc(sizeof *wh * (size_t)in.ntgt);
        for (int64_t i = 0; i < in.npred; i++) {
            int ex;
            double m = frexp(in.xd[i], &ex);
            in.xf[i] = (float)ldexp(round(m * 256) / 256, ex); /* 8 significant bits */
            in.xd[i] = in.xf[i];
            xb[i] = to_bf16(in.xf[i]);
        }
        for (int64_t i = 0; i < in.ntgt; i++) {
            int ex;
            double m = frexp(in.wd[i], &ex);
            in.wf[i] = (float)ldexp(round(m * 256) / 256, ex);
            if (in.wf[i] < 0x1p-14f) {
                in.wf[i] = 0; /* to_half takes normal halves only */
            }
            in.wd[i] = in.wf[i];
            wb[i] = to_bf16(in.wf[i]);
            wh[i] = to_half(in.wf[i]); /* weights in [0, 2): normal halves or 0 */
        }
        for (int variant = 0; variant < 4; variant++) {
            const bool t64 = variant & 1, weights = variant & 2;
            struct sl_result *d = score(&in, SL_DT_F64, t64, weights, losses, 5, metrics, 2, NULL);
            struct sl_result *f = score(&in, SL_DT_F32, t64, weights, losses, 5, metrics, 2, NULL);
            /* the same request with bfloat16 logits, then float16 / bfloat16 weights */
            struct sl_request req;
            const bool ml = in.c > 1;
            for (int k = 0; k < 3; k++) {
                if (k > 0 && !weights) {
                    break;
                }
                sl_request_init(&req);
                req.prediction = tensor(k == 0 ? (const void *)xb : in.xf,
                                        k == 0 ? SL_DT_BF16 : SL_DT_F32, &in, ml);
                req.target =
                    tensor(t64 ? (const void *)in.t64 : in.t8, t64 ? SL_DT_I64 : SL_DT_U8, &in, ml);
                if (weights) {
                    req.weight = k == 0   ? tensor(in.wf, SL_DT_F32, &in, ml)
                                 : k == 1 ? tensor(wh, SL_DT_F16, &in, ml)
                                          : tensor(wb, SL_DT_BF16, &in, ml);
                }
                req.has_ignore = true;
                req.ignore_index = t64 ? -100 : 255;
                req.losses = losses;
                req.nlosses = 5;
                req.metrics = metrics;
                req.nmetrics = 2;
                struct sl_result *r = NULL;
                char msg[256];
                CHECK_INT(sl_score(&req, NULL, &r, msg, sizeof msg), 0);
                compare(r, f, AGREE_NEAR);
                compare(r, d, AGREE_TOL);
                sl_result_free(r);
            }
            sl_result_free(d);
            sl_result_free(f);
        }
        free(xb);
        free(wb);
        free(wh);
        free_inputs(&in);
    }
}

/* Cross entropy with label smoothing (y becomes a + (1 - 2a) y): the fused pass (a <= 1/2)
 * against double within RTOL, the float16 logits near float32; a > 1/2 (smooth_factor above
 * 0.5, where a pixel's smoothed CE can be far smaller than its CE) answers as double does too.
 * With focal and dice in the same request: the kernel's other sums and a second gamma. */
static void test_label_smoothing_against_double(void)
{
    const struct {
        const char *param;
        double v;
    } cases[] = {{"label_smoothing", 0.1}, {"label_smoothing", 1}, {"smooth_factor", 0.05},
                 {"smooth_factor", 0.5},   {"smooth_factor", 0.9}, {"smooth_factor", 1}};
    const int64_t shapes[][4] = {{3, 1, 37, 23}, {1, 1, 300, 260}, {2, 3, 17, 40}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct sl_spec losses[4] = {loss("cross_entropy"), loss("focal"), loss("focal"),
                                    loss("dice")};
        set_num(&losses[0], cases[k].param, cases[k].v);
        set_num(&losses[2], "gamma", 0.5);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            struct inputs in;
            make_inputs(&in, shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3], 31 + si);
            for (int variant = 0; variant < 4; variant++) {
                const bool t64 = variant & 1, weights = variant & 2;
                for (int nl = 1; nl <= 4; nl += 3) {
                    struct sl_result *d =
                        score(&in, SL_DT_F64, t64, weights, losses, nl, NULL, 0, NULL);
                    struct sl_result *f =
                        score(&in, SL_DT_F32, t64, weights, losses, nl, NULL, 0, NULL);
                    struct sl_result *h =
                        score(&in, SL_DT_F16, t64, weights, losses, nl, NULL, 0, NULL);
                    compare(f, d, AGREE_TOL);
                    compare(h, f, AGREE_NEAR);
                    sl_result_free(d);
                    sl_result_free(f);
                    sl_result_free(h);
                }
            }
            free_inputs(&in);
        }
    }
}

/* Every pixel confidently wrong (float32 logit 12, target 0): the CE of a pixel is
 * softplus(12) = 12 + log1p(e^-12); smoothed to y_s = a it is softplus(12) - 12 a. At a = 1
 * (smooth_factor 1) that is log1p(e^-12) = 6.1e-6, far below the CE's float32 rounding (about
 * 1e-6): within 1e-9 relative only if computed in double. At a = 1/2 (label_smoothing 1) it is
 * 6 + log1p(e^-12), on the fused pass within RTOL. */
static void test_smoothing_cancellation(void)
{
    enum { P = 4096 };
    float *x = malloc(sizeof *x * P);
    uint8_t *t = calloc(P, 1);
    for (int k = 0; k < P; k++) {
        x[k] = 12;
    }
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 3, {1, 64, 64}};
    req.target = (struct sl_tensor){t, SL_DT_U8, 3, {1, 64, 64}};
    const double tail = log1p(exp(-12.0));
    const struct {
        const char *param;
        double v, want, rtol;
    } cases[] = {{"smooth_factor", 1, tail, 1e-9},
                 {"smooth_factor", 0.9, 12 * 0.1 + tail, 1e-9},
                 {"label_smoothing", 1, 6 + tail, RTOL}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct sl_spec s = loss("cross_entropy");
        set_num(&s, cases[k].param, cases[k].v);
        req.losses = &s;
        req.nlosses = 1;
        struct sl_result *res = NULL;
        char msg[256];
        CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
        if (res) {
            close_rel(res->losses[0].value, cases[k].want, cases[k].rtol, cases[k].param);
            sl_result_free(res);
        }
    }
    free(x);
    free(t);
}

/* The pool does not change a bit: the chunks are summed in their order. */
static void test_pool_identical(void)
{
    struct sl_pool *pool = sl_pool_new(2, 4);
    struct inputs in;
    make_inputs(&in, 3, 1, 300, 301, 5);
    struct sl_spec losses[3] = {loss("cross_entropy"), loss("dice"), loss("focal")};
    struct sl_spec metrics[1] = {metric("confusion")};
    struct sl_result *a = score(&in, SL_DT_F32, false, false, losses, 3, metrics, 1, NULL);
    struct sl_result *b = score(&in, SL_DT_F32, false, false, losses, 3, metrics, 1, pool);
    compare(a, b, AGREE_BITS);
    sl_result_free(a);
    sl_result_free(b);
    free_inputs(&in);
    sl_pool_free(pool);
}

/* Batch Lovász losses computed class by class on the pool equal the serial ones; classes
 * "all" and "present" (class 2 absent), with and without the background. */
static void test_lovasz_pool(void)
{
    struct sl_pool *pool = sl_pool_new(2, 4);
    const int64_t n = 2, c = 3, h = 200, w = 180, s = h * w;
    float *x = malloc(sizeof *x * (size_t)(n * c * s));
    uint8_t *t = malloc((size_t)(n * s));
    uint64_t seed = 77;
    for (int64_t i = 0; i < n * c * s; i++) {
        x[i] = (float)(6 * (unit(&seed) - 0.5));
    }
    for (int64_t i = 0; i < n * s; i++) {
        t[i] = (uint8_t)(next(&seed) % 2);
    }
    struct sl_spec losses[2] = {loss("lovasz_softmax"), loss("lovasz_softmax")};
    set_choice(&losses[1], "classes", SL_LSM_ALL);
    snprintf(losses[1].key, sizeof losses[1].key, "all");
    for (int bg = 0; bg < 2; bg++) {
        struct sl_request req;
        sl_request_init(&req);
        req.prediction = (struct sl_tensor){x, SL_DT_F32, 4, {n, c, h, w}};
        req.target = (struct sl_tensor){t, SL_DT_U8, 3, {n, h, w}};
        req.include_background = bg;
        req.losses = losses;
        req.nlosses = 2;
        struct sl_result *a = NULL, *b = NULL;
        char msg[256];
        CHECK_INT(sl_score(&req, NULL, &a, msg, sizeof msg), 0);
        CHECK_INT(sl_score(&req, pool, &b, msg, sizeof msg), 0);
        compare(a, b, AGREE_BITS);
        CHECK(a && a->losses[0].value != a->losses[1].value); /* class 2 counts in "all" only */
        sl_result_free(a);
        sl_result_free(b);
    }
    /* multilabel hinge over the batch: one sort per channel */
    struct sl_spec lh = loss("lovasz_hinge");
    set_bool(&lh, "per_image", false);
    uint8_t *tm = malloc((size_t)(n * c * s));
    for (int64_t i = 0; i < n * c * s; i++) {
        tm[i] = (uint8_t)(next(&seed) % 2);
    }
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 4, {n, c, h, w}};
    req.target = (struct sl_tensor){tm, SL_DT_U8, 4, {n, c, h, w}};
    req.losses = &lh;
    req.nlosses = 1;
    struct sl_result *a = NULL, *b = NULL;
    char msg[256];
    CHECK_INT(sl_score(&req, NULL, &a, msg, sizeof msg), 0);
    CHECK_INT(sl_score(&req, pool, &b, msg, sizeof msg), 0);
    compare(a, b, AGREE_BITS);
    sl_result_free(a);
    sl_result_free(b);
    free(tm);
    /* binary hinge over the batch: the images' errors made side by side and sorted on the pool
     * (|logit| < 1: every error counts, enough of them for the parallel passes) */
    struct inputs in;
    make_inputs(&in, 4, 1, 300, 300, 8);
    for (int64_t i = 0; i < in.npred; i++) {
        in.xf[i] = (float)(in.xf[i] / 130.0);
    }
    a = score(&in, SL_DT_F32, false, false, &lh, 1, NULL, 0, NULL);
    b = score(&in, SL_DT_F32, false, false, &lh, 1, NULL, 0, pool);
    compare(a, b, AGREE_BITS);
    sl_result_free(a);
    sl_result_free(b);
    free_inputs(&in);
    free(x);
    free(t);
    sl_pool_free(pool);
}

/* The fused pass checks the prediction's finiteness and the targets itself; what it meets is
 * answered as full validation answers it, in the same order. */
static void test_deferred_validation(void)
{
    struct inputs in;
    make_inputs(&in, 2, 1, 40, 40, 3);
    struct sl_spec s = loss("cross_entropy");
    for (int c = 0; c < 4; c++) {
        float xs = in.xf[1234];
        uint8_t ts = in.t8[1500];
        if (c == 0 || c == 2) {
            in.xf[1234] = c == 0 ? NAN : INFINITY;
        }
        if (c == 1 || c == 2) {
            in.t8[1500] = 7;
        }
        if (c == 3) {
            in.xf[3199] = -INFINITY; /* the last pixel */
        }
        struct sl_request req;
        sl_request_init(&req);
        req.prediction = tensor(in.xf, SL_DT_F32, &in, false);
        req.target = tensor(in.t8, SL_DT_U8, &in, false);
        req.has_ignore = true;
        req.ignore_index = 255;
        req.losses = &s;
        req.nlosses = 1;
        struct sl_result *res = NULL;
        char msg[256];
        int rc = sl_score(&req, NULL, &res, msg, sizeof msg);
        CHECK_INT(rc, SL_ERANGE);
        CHECK(res == NULL);
        if (c == 0) {
            CHECK_PREFIX(msg, "prediction[0, 30, 34] (flat index 1234) is nan");
        } else if (c == 1) {
            CHECK_PREFIX(msg, "target[0, 37, 20] (flat index 1500) is 7");
        } else if (c == 2) {
            CHECK_PREFIX(msg, "prediction[0, 30, 34] (flat index 1234) is inf");
        } else {
            CHECK_PREFIX(msg, "prediction[1, 39, 39] (flat index 3199) is -inf");
        }
        in.xf[1234] = xs;
        in.t8[1500] = ts;
        in.xf[3199] = 0;
    }
    free_inputs(&in);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_against_double),
    CHECK_TEST(test_label_smoothing_against_double),
    CHECK_TEST(test_bfloat16_and_half_weights),
    CHECK_TEST(test_smoothing_cancellation),
    CHECK_TEST(test_pool_identical),
    CHECK_TEST(test_lovasz_pool),
    CHECK_TEST(test_deferred_validation),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_fused", tests);
}
