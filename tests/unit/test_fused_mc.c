/* test_fused_mc.c - the fused multiclass softmax kernel (float32/float16 logits) against the
 * double pass (the same logits as float64) on random inputs: C in {2, 3, 4, 19, 64}, weights,
 * ignore_index, label smoothing, class weights, focal gammas, every region loss and the
 * confusion counts; the kernel's sums bit for bit under every instruction set; the pool and
 * float16 change no bit; a hand calculation with a far pixel (a logit 200 below the max). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "fused_util.h"
#include "internal.h"

/* Relative tolerance against double (simd.c derives the bound: per-class sums within 1.5e-6,
 * focal 3e-6; the differences seen on random inputs stay near 1e-7). */
#define RTOL 2e-6
#define RTOL_FOCAL 4e-6
#define ATOL 1e-9

struct inputs {
    int64_t n, c, h, w, npix;
    float *xf;
    double *xd;
    uint16_t *xh;
    uint8_t *t8;
    int64_t *t64;
    float *wf;
    double *wd;
};

/* Random logits in [-12, 12] (1 in 400 at +-60: far pixels), targets with about 1/8 ignored
 * (255 or -100), weights in [0, 2); logits with 10 significant bits (exact in float16). */
static void make_inputs(struct inputs *in, int64_t n, int64_t c, int64_t h, int64_t w,
                        uint64_t seed)
{
    in->n = n;
    in->c = c;
    in->h = h;
    in->w = w;
    in->npix = n * h * w;
    const int64_t np = in->npix * c;
    in->xf = malloc(sizeof *in->xf * (size_t)np);
    in->xd = malloc(sizeof *in->xd * (size_t)np);
    in->xh = malloc(sizeof *in->xh * (size_t)np);
    in->t8 = malloc((size_t)in->npix);
    in->t64 = malloc(sizeof *in->t64 * (size_t)in->npix);
    in->wf = malloc(sizeof *in->wf * (size_t)in->npix);
    in->wd = malloc(sizeof *in->wd * (size_t)in->npix);
    for (int64_t i = 0; i < np; i++) {
        double v = 24 * (unit(&seed) - 0.5);
        if (next(&seed) % 400 == 0) {
            v = next(&seed) % 2 ? 60.0 : -60.0;
        }
        if (fabs(v) < 0x1p-14) {
            v = 0; /* below float16's normal range */
        }
        int ex;
        double m = frexp(v, &ex);
        in->xf[i] = (float)ldexp(round(m * 2048) / 2048, ex);
        in->xd[i] = in->xf[i];
        in->xh[i] = to_half(in->xf[i]);
    }
    for (int64_t i = 0; i < in->npix; i++) {
        const bool ign = next(&seed) % 8 == 0;
        const int cls = (int)(next(&seed) % (uint64_t)c);
        in->t8[i] = ign ? 255 : (uint8_t)cls;
        in->t64[i] = ign ? -100 : cls;
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

/* Scores specs with logits in pdt (float32, float16, float64), targets uint8 (ignore 255) or
 * int64 (ignore -100), weights or not. */
static struct sl_result *score(const struct inputs *in, enum sl_dtype pdt, bool t64, bool weights,
                               const struct sl_spec *losses, int nl, const struct sl_spec *metrics,
                               int nm, struct sl_pool *pool)
{
    struct sl_request req;
    sl_request_init(&req);
    const void *x = pdt == SL_DT_F32   ? (const void *)in->xf
                    : pdt == SL_DT_F16 ? (const void *)in->xh
                                       : (const void *)in->xd;
    req.prediction = (struct sl_tensor){x, pdt, 4, {in->n, in->c, in->h, in->w}};
    req.target = (struct sl_tensor){
        t64 ? (const void *)in->t64 : in->t8, t64 ? SL_DT_I64 : SL_DT_U8, 3, {in->n, in->h, in->w}};
    if (weights) {
        req.weight = (struct sl_tensor){pdt == SL_DT_F64 ? (const void *)in->wd : in->wf,
                                        pdt == SL_DT_F64 ? SL_DT_F64 : SL_DT_F32,
                                        3,
                                        {in->n, in->h, in->w}};
    }
    req.mode = SL_MODE_MULTICLASS;
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
    if (!(d <= ATOL + rtol * fabs(want)) && !(isnan(got) && isnan(want))) {
        fprintf(stderr, "%s: fused %.17g, double %.17g (rel %.3g)\n", what, got, want,
                want != 0 ? d / fabs(want) : d);
        CHECK(0);
    } else {
        CHECK(1);
    }
}

static bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Every loss value (per image, per class when given) and metric within the tolerance (bits:
 * exactly); counts and matrices always exactly. */
static void compare(const struct sl_result *a, const struct sl_result *b, bool bits)
{
    CHECK(a && b);
    if (!a || !b) {
        return;
    }
    const int64_t N = a->images, C = a->classes;
    for (int i = 0; i < a->nlosses; i++) {
        const struct sl_loss_result *la = &a->losses[i], *lb = &b->losses[i];
        const double rtol = strcmp(la->spec->def->name, "focal") == 0 ? RTOL_FOCAL : RTOL;
        if (bits) {
            CHECK(same_bits(la->value, lb->value));
        } else {
            close_rel(la->value, lb->value, rtol, la->spec->key);
        }
        for (int64_t k = 0; k < N && la->has_per_image; k++) {
            if (bits) {
                CHECK(same_bits(la->per_image[k], lb->per_image[k]));
            } else {
                close_rel(la->per_image[k], lb->per_image[k], rtol, la->spec->key);
            }
        }
    }
    for (int i = 0; i < a->nmetrics; i++) {
        const struct sl_metric_result *ma = &a->metrics[i], *mb = &b->metrics[i];
        for (int64_t k = 0; k < N * C; k++) {
            if (ma->counts) {
                CHECK(memcmp(&ma->counts[k], &mb->counts[k], sizeof ma->counts[k]) == 0);
            } else {
                CHECK(same_bits(ma->per_image[k], mb->per_image[k]) ||
                      (isnan(ma->per_image[k]) && isnan(mb->per_image[k])));
            }
        }
        if (ma->matrix || mb->matrix) {
            CHECK(ma->matrix && mb->matrix &&
                  memcmp(ma->matrix, mb->matrix, sizeof *ma->matrix * (size_t)(C * C)) == 0);
        }
    }
}

/* The losses of the tests: the CE family with class weights and label smoothing, focal of three
 * gammas, every region loss. */
enum { NLOSS = 12 };
static void make_losses(struct sl_spec *l, int64_t C, double *cw)
{
    for (int64_t c = 0; c < C; c++) {
        cw[c] = 0.5 + (double)(c % 5) * 0.375;
    }
    l[0] = loss("cross_entropy");
    l[1] = loss("cross_entropy");
    set_list(&l[1], "class_weights", cw, (int)C);
    set_num(&l[1], "label_smoothing", 0.1);
    l[2] = loss("focal");
    l[3] = loss("focal");
    set_num(&l[3], "gamma", 0.5);
    set_num(&l[3], "alpha", 0.25);
    l[4] = loss("focal");
    set_num(&l[4], "gamma", 3);
    l[5] = loss("dice");
    l[6] = loss("dice");
    set_bool(&l[6], "squared", true);
    l[7] = loss("jaccard");
    l[8] = loss("tversky");
    l[9] = loss("generalized_dice");
    l[10] = loss("mcc");
    l[11] = loss("cross_entropy");
    set_num(&l[11], "label_smoothing", 0.3);
}

static void test_against_double(void)
{
    /* C = 300: int64 targets go to the kernel as uint16 (uint8 ones wrap to other classes,
     * the same for both passes) */
    const int64_t shapes[][4] = {{2, 2, 37, 23},  {3, 3, 1, 5},    {1, 4, 300, 260},
                                 {2, 19, 33, 61}, {1, 64, 20, 45}, {2, 4, 128, 128},
                                 {1, 300, 9, 40}};
    struct sl_spec metrics[3] = {metric("dice"), metric("iou"), metric("confusion")};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        double cw[300];
        struct sl_spec losses[NLOSS];
        make_losses(losses, shapes[si][1], cw);
        struct inputs in;
        make_inputs(&in, shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3], 7 + si);
        for (int variant = 0; variant < 4; variant++) {
            const bool t64 = variant & 1, weights = variant & 2;
            struct sl_result *d =
                score(&in, SL_DT_F64, t64, weights, losses, NLOSS, metrics, 3, NULL);
            struct sl_result *f =
                score(&in, SL_DT_F32, t64, weights, losses, NLOSS, metrics, 3, NULL);
            struct sl_result *h =
                score(&in, SL_DT_F16, t64, weights, losses, NLOSS, metrics, 3, NULL);
            compare(f, d, false);
            /* float16 is widened exactly and summed in the same lanes */
            compare(h, f, true);
            sl_result_free(d);
            sl_result_free(f);
            sl_result_free(h);
        }
        free_inputs(&in);
    }
    printf("fused multiclass against double: largest relative difference %.3g (tolerance "
           "%.0e, focal %.0e)\n",
           worst_rel, RTOL, RTOL_FOCAL);
}

/* Which requests run the fused kernel: any target dtype, C up to SL_MAX_CLASSES (int64 targets
 * with C > 255 as uint16). */
static void test_chosen(void)
{
    struct sl_request req;
    sl_request_init(&req);
    static float x[1];
    static int64_t t[1];
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 4, {1, 300, 1, 1}};
    req.pred_type = SL_PRED_LOGITS;
    req.target = (struct sl_tensor){t, SL_DT_I64, 3, {1, 1, 1}};
    req.mode = SL_MODE_MULTICLASS;
    struct sl__geom g;
    memset(&g, 0, sizeof g);
    g.mode = SL_MODE_MULTICLASS;
    g.images = 1;
    g.pixels = 1;
    struct sl__plan pl;
    memset(&pl, 0, sizeof pl);
    const int64_t cs[] = {2, 255, 256, 300, SL_MAX_CLASSES};
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        g.classes = cs[k];
        CHECK(sl__mc_fast_ok(&req, &g, &pl));
    }
    g.classes = SL_MAX_CLASSES + 1;
    CHECK(!sl__mc_fast_ok(&req, &g, &pl));
    req.prediction.dtype = SL_DT_F64;
    g.classes = 300;
    CHECK(!sl__mc_fast_ok(&req, &g, &pl));
}

/* The kernel's sums under each instruction set: the same bits (the CPU's best and below). */
static void test_isa_identical(void)
{
    const int classes[] = {2, 3, 4, 19, 64, 300};
    for (size_t ci = 0; ci < sizeof classes / sizeof classes[0]; ci++) {
        const int C = classes[ci];
        struct inputs in;
        make_inputs(&in, 1, C, 7, 73, 100 + ci); /* 511 pixels: a tail block */
        const int nq = SL_MCQ_FOCAL + 3;
        /* C > 255: uint16 targets, 65535 ignored (the int64 ones, -100 ignored) */
        uint16_t *t16 = NULL;
        if (C > 255) {
            t16 = malloc(sizeof *t16 * (size_t)in.npix);
            for (int64_t k = 0; k < in.npix; k++) {
                t16[k] = in.t64[k] < 0 ? 65535 : (uint16_t)in.t64[k];
            }
        }
        double *lanes[3];
        int32_t *counts[3];
        int64_t *matrix[3], count[3];
        for (int isa = 0; isa < 3; isa++) {
            struct sl__mc_in mi;
            memset(&mi, 0, sizeof mi);
            mi.x = in.xf;
            mi.xs = in.npix;
            mi.t = in.t8;
            mi.t16 = t16;
            mi.w = in.wf;
            mi.classes = C;
            mi.ign = t16 ? 65535 : 255;
            mi.nfocal = 3;
            mi.gamma[0] = 2;
            mi.gamma[1] = 0.5f;
            mi.gamma[2] = 3;
            mi.far_d = sl__mc_far_d(C, 3);
            mi.what =
                SL_MC_SOFT | SL_MC_SP2 | SL_MC_CE | SL_MC_LS | SL_MC_FOCAL | SL_MC_W | SL_MC_CM;
            struct sl__mc_state st = {calloc((size_t)(C * nq * 16), sizeof(double)),
                                      calloc((size_t)(C * 48), sizeof(int32_t)),
                                      calloc((size_t)(C * C), sizeof(int64_t)),
                                      0,
                                      malloc(sizeof(float) * (size_t)SL_MC_SCRATCH(C)),
                                      false};
            /* whole blocks in place, then the tail through a padded copy */
            const int64_t whole = in.npix / SL_MC_BLOCK * SL_MC_BLOCK, rest = in.npix - whole;
            mi.n = whole;
            sl__mc_logits(isa, &mi, &st);
            float *xb = calloc((size_t)(C * SL_MC_BLOCK), sizeof(float));
            float wb[SL_MC_BLOCK] = {0};
            uint8_t tb[SL_MC_BLOCK] = {0};
            uint16_t tb16[SL_MC_BLOCK] = {0};
            for (int c = 0; c < C; c++) {
                memcpy(xb + c * SL_MC_BLOCK, in.xf + c * in.npix + whole,
                       sizeof(float) * (size_t)rest);
            }
            memcpy(wb, in.wf + whole, sizeof(float) * (size_t)rest);
            memcpy(tb, in.t8 + whole, (size_t)rest);
            if (t16) {
                memcpy(tb16, t16 + whole, sizeof *tb16 * (size_t)rest);
                mi.t16 = tb16;
            }
            mi.x = xb;
            mi.xs = SL_MC_BLOCK;
            mi.t = tb;
            mi.w = wb;
            mi.n = rest;
            sl__mc_logits(isa, &mi, &st);
            free(xb);
            free(st.e);
            lanes[isa] = st.lanes;
            counts[isa] = st.counts;
            matrix[isa] = st.matrix;
            count[isa] = st.count;
        }
        for (int isa = 1; isa < 3; isa++) {
            CHECK(memcmp(lanes[0], lanes[isa], sizeof(double) * (size_t)(C * nq * 16)) == 0);
            CHECK(memcmp(counts[0], counts[isa], sizeof(int32_t) * (size_t)(C * 48)) == 0);
            CHECK(memcmp(matrix[0], matrix[isa], sizeof(int64_t) * (size_t)(C * C)) == 0);
            CHECK(count[0] == count[isa]);
        }
        /* the counted pixels: every target but the ignored */
        int64_t want = 0;
        for (int64_t k = 0; k < in.npix; k++) {
            want += C > 255 ? in.t64[k] >= 0 : in.t8[k] != 255;
        }
        free(t16);
        CHECK(count[0] == want);
        for (int isa = 0; isa < 3; isa++) {
            free(lanes[isa]);
            free(counts[isa]);
            free(matrix[isa]);
        }
        free_inputs(&in);
    }
}

/* One worker, two or three: the same bits, for images of one part and for an image of 3 parts
 * of SL_MC_PART pixels (the last one partial), summed side by side and added in part order. */
static void test_pool_identical(void)
{
    struct sl_pool *pools[2] = {sl_pool_new(2, 4), sl_pool_new(3, 4)};
    static const int64_t shapes[][4] = {{3, 19, 130, 301}, {1, 5, 300, 500}};
    for (int si = 0; si < 2; si++) {
        struct inputs in;
        const int64_t C = shapes[si][1];
        make_inputs(&in, shapes[si][0], C, shapes[si][2], shapes[si][3], 5);
        CHECK(si == 0 || shapes[si][2] * shapes[si][3] > 2 * SL_MC_PART);
        double cw[19];
        struct sl_spec losses[NLOSS];
        make_losses(losses, C, cw);
        struct sl_spec metrics[1] = {metric("confusion")};
        struct sl_result *a = score(&in, SL_DT_F32, false, true, losses, NLOSS, metrics, 1, NULL);
        for (int k = 0; k < 2; k++) {
            struct sl_result *b =
                score(&in, SL_DT_F32, false, true, losses, NLOSS, metrics, 1, pools[k]);
            compare(a, b, true);
            sl_result_free(b);
        }
        sl_result_free(a);
        free_inputs(&in);
    }
    sl_pool_free(pools[0]);
    sl_pool_free(pools[1]);
}

/* A hand calculation with far pixels: 3 classes, pixel 0 logits (0, -200, 0) target 0, pixel
 * 1 logits (5, 5, 5) target 2, 254 more pixels ignored. Softmax: pixel 0 (1/2, e^-200/2,
 * 1/2) (e^-200 is far below float32's range: the double pass keeps it), pixel 1 1/3 each.
 * CE = (log 2 + log 3) / 2. Argmax ties go to the lowest class: pixel 0 -> 0 (tp of class 0),
 * pixel 1 -> 0 (fp of 0, fn of 2). Dice (smooth 0, counting empty classes as computed):
 * class 0: 1 - 2 (1/2) / (1/2 + 1/3 + 1), class 1 (no target pixel): 1 - 0 / (e^-200/2 + 1/3)
 * = 1, class 2: 1 - 2 (1/3) / (1/2 + 1/3 + 1). */
static void test_far_hand(void)
{
    enum { S = 256 };
    static float x[3 * S];
    static uint8_t t[S];
    memset(t, 255, sizeof t);
    x[0] = 0;
    x[S] = -200;
    x[2 * S] = 0;
    x[1] = x[S + 1] = x[2 * S + 1] = 5;
    t[0] = 0;
    t[1] = 2;
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 4, {1, 3, 1, S}};
    req.target = (struct sl_tensor){t, SL_DT_U8, 3, {1, 1, S}};
    req.mode = SL_MODE_MULTICLASS;
    req.has_ignore = true;
    req.ignore_index = 255;
    struct sl_spec l[2] = {loss("cross_entropy"), loss("dice")};
    set_num(&l[1], "smooth", 0);
    struct sl_spec m[1] = {metric("confusion")};
    req.losses = l;
    req.nlosses = 2;
    req.metrics = m;
    req.nmetrics = 1;
    struct sl_result *res = NULL;
    char msg[256];
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->losses[0].value, (log(2) + log(3)) / 2, 1e-6, 0);
        const double den = 0.5 + 1.0 / 3 + 1;
        const double want = ((1 - 1.0 / den) + 1 + (1 - (2.0 / 3) / den)) / 3;
        CHECK_CLOSE(res->losses[1].value, want, 1e-6, 0);
        const struct sl_confusion *c = res->metrics[0].counts;
        CHECK(c[0].tp == 1 && c[0].fp == 1 && c[0].fn == 0 && c[0].tn == 0);
        CHECK(c[1].tp == 0 && c[1].fp == 0 && c[1].fn == 0 && c[1].tn == 2);
        CHECK(c[2].tp == 0 && c[2].fp == 0 && c[2].fn == 1 && c[2].tn == 1);
        sl_result_free(res);
    }
}

/* Validation deferred to the kernel (float32 logits, uint8 targets) answers as full
 * validation does: a NaN or infinite logit (at a counted pixel, or at an ignored one, which
 * full validation refuses as well), a target byte beyond the classes, each named by its index;
 * the float64 request (validated up front) gives the same message. */
static void test_deferred_validation(void)
{
    struct inputs in;
    make_inputs(&in, 2, 4, 30, 50, 3);
    struct sl_spec l[2] = {loss("cross_entropy"), loss("dice")};
    struct sl_spec m[1] = {metric("iou")};
    for (int kind = 0; kind < 7; kind++) {
        const int64_t at = 1777; /* image 0, class 1, pixel 277 */
        const float keep = in.xf[at];
        const uint8_t keep_t = in.t8[1234], keep_i = in.t8[277];
        if (kind >= 4) {
            in.t8[277] = 255; /* the pixel ignored */
        }
        if (kind == 0 || kind == 4) {
            in.xf[at] = NAN;
        } else if (kind == 1 || kind == 5) {
            in.xf[at] = INFINITY;
        } else if (kind == 2 || kind == 6) {
            in.xf[at] = -INFINITY;
        } else {
            in.t8[1234] = 7;
        }
        in.xd[at] = in.xf[at];
        struct sl_request req;
        sl_request_init(&req);
        req.prediction = (struct sl_tensor){in.xf, SL_DT_F32, 4, {2, 4, 30, 50}};
        req.target = (struct sl_tensor){in.t8, SL_DT_U8, 3, {2, 30, 50}};
        req.has_ignore = true;
        req.ignore_index = 255;
        req.losses = l;
        req.nlosses = 2;
        req.metrics = m;
        req.nmetrics = 1;
        struct sl_result *res = NULL;
        char msg[256], want[256];
        CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_ERANGE);
        req.prediction.data = in.xd;
        req.prediction.dtype = SL_DT_F64;
        CHECK_INT(sl_score(&req, NULL, &res, want, sizeof want), SL_ERANGE);
        CHECK(strcmp(msg, want) == 0);
        CHECK(strstr(msg, kind != 3 ? "prediction[0, 1, 5, 27]" : "target[0, 24, 34]") != NULL);
        in.xf[at] = keep;
        in.xd[at] = keep;
        in.t8[1234] = keep_t;
        in.t8[277] = keep_i;
    }
    free_inputs(&in);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_deferred_validation),
    CHECK_TEST(test_against_double),
    CHECK_TEST(test_chosen),
    CHECK_TEST(test_isa_identical),
    CHECK_TEST(test_pool_identical),
    CHECK_TEST(test_far_hand),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_fused_mc", tests);
}
