/* test_fused_mcp.c - the fused multiclass kernel over probabilities (float32, float16,
 * bfloat16; simd_mcp.h) against the double pass (the same probabilities as float64) on random
 * inputs: softmax of random logits, C in {2, 3, 4, 19, 64}, weights, ignore_index, label
 * smoothing, class weights, focal gammas, every region loss and the confusion counts; the
 * kernel's sums bit for bit under every instruction set; its -log against libm's; a hand
 * calculation with clipped, tied and far pixels; validation deferred to the kernel answers as
 * full validation does. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "fused_util.h"
#include "internal.h"

/* The logits kernel's tolerances (test_fused_mc.c; simd.c derives the probabilities bound). */
#define RTOL 2e-6
#define RTOL_FOCAL 4e-6
#define ATOL 1e-9

enum { F32, F16, BF16, U8, NPT };

struct inputs {
    int64_t n, c, h, w, npix;
    float *pf[NPT];  /* the probabilities rounded to float32, float16, bfloat16 (as floats), and
                        uint8's u / 255 rounded to float32 */
    double *pd[NPT]; /* the same values as float64 (uint8: u / 255 in double) */
    uint16_t *ph, *pb;
    uint8_t *pu; /* u = p 255 rounded */
    uint8_t *t8;
    int64_t *t64;
    float *wf;
    double *wd;
};

/* Float16 bits of f, a float16 value already (normal or subnormal, >= 0). */
static uint16_t half_bits(float f)
{
    if (f == 0 || f >= 0x1p-14f) {
        return to_half(f);
    }
    return (uint16_t)ldexp(f, 24); /* subnormal: a multiple of 2^-24 */
}

/* v rounded to float16 (v in [0, 1]): 11 significant bits, multiples of 2^-24 below 2^-14. */
static float round_half(double v)
{
    if (v < 0x1p-14) {
        return (float)(nearbyint(ldexp(v, 24)) * 0x1p-24);
    }
    int ex;
    const double m = frexp(v, &ex);
    return (float)ldexp(nearbyint(m * 2048) / 2048, ex);
}

/* v rounded to bfloat16: 8 significant bits. */
static float round_bf16(double v)
{
    if (v == 0) {
        return 0;
    }
    int ex;
    const double m = frexp(v, &ex);
    return (float)ldexp(nearbyint(m * 256) / 256, ex);
}

/* Softmax of random logits in [-12, 12] (1 in 400 at +-60: probabilities below 2^-63, far;
 * 1 pixel in 300 one-hot: p = 0 and 1, clipped), targets with about 1/8 ignored (255 or -100),
 * weights in [0, 2). */
static void make_inputs(struct inputs *in, int64_t n, int64_t c, int64_t h, int64_t w,
                        uint64_t seed)
{
    in->n = n;
    in->c = c;
    in->h = h;
    in->w = w;
    in->npix = n * h * w;
    const int64_t np = in->npix * c, S = h * w;
    for (int k = 0; k < NPT; k++) {
        in->pf[k] = malloc(sizeof(float) * (size_t)np);
        in->pd[k] = malloc(sizeof(double) * (size_t)np);
    }
    in->ph = malloc(sizeof *in->ph * (size_t)np);
    in->pb = malloc(sizeof *in->pb * (size_t)np);
    in->pu = malloc((size_t)np);
    in->t8 = malloc((size_t)in->npix);
    in->t64 = malloc(sizeof *in->t64 * (size_t)in->npix);
    in->wf = malloc(sizeof *in->wf * (size_t)in->npix);
    in->wd = malloc(sizeof *in->wd * (size_t)in->npix);
    double *x = malloc(sizeof *x * (size_t)c);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < S; k++) {
            const bool onehot = next(&seed) % 300 == 0;
            const int64_t hot = (int64_t)(next(&seed) % (uint64_t)c);
            double mx = -1e300, s = 0;
            for (int64_t cc = 0; cc < c; cc++) {
                x[cc] = 24 * (unit(&seed) - 0.5);
                if (next(&seed) % 400 == 0) {
                    x[cc] = next(&seed) % 2 ? 60.0 : -60.0;
                }
                mx = x[cc] > mx ? x[cc] : mx;
            }
            for (int64_t cc = 0; cc < c; cc++) {
                s += exp(x[cc] - mx);
            }
            for (int64_t cc = 0; cc < c; cc++) {
                const int64_t at = (i * c + cc) * S + k;
                const double p = onehot ? (cc == hot ? 1.0 : 0.0) : exp(x[cc] - mx) / s;
                in->pf[F32][at] = (float)p;
                in->pf[F16][at] = round_half(p);
                in->pf[BF16][at] = round_bf16(p);
                in->pu[at] = (uint8_t)lround(p * 255);
                /* as the double pass reads uint8 probabilities (softmax.c), and as a float */
                in->pd[U8][at] = in->pu[at] / 255.0;
                in->pf[U8][at] = (float)in->pd[U8][at];
                for (int t = 0; t < U8; t++) {
                    in->pd[t][at] = in->pf[t][at];
                }
                in->ph[at] = half_bits(in->pf[F16][at]);
                uint32_t b;
                memcpy(&b, &in->pf[BF16][at], sizeof b);
                in->pb[at] = (uint16_t)(b >> 16);
            }
        }
    }
    free(x);
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
    for (int k = 0; k < NPT; k++) {
        free(in->pf[k]);
        free(in->pd[k]);
    }
    free(in->ph);
    free(in->pb);
    free(in->pu);
    free(in->t8);
    free(in->t64);
    free(in->wf);
    free(in->wd);
}

/* Scores specs on probabilities pt in dtype pdt (float32, float16 or bfloat16 bits, uint8, float64
 * values of them), targets uint8 (ignore 255) or int64 (ignore -100), weights or not. */
static struct sl_result *score(const struct inputs *in, int pt, enum sl_dtype pdt, bool t64,
                               bool weights, const struct sl_spec *losses, int nl,
                               const struct sl_spec *metrics, int nm, struct sl_pool *pool)
{
    struct sl_request req;
    sl_request_init(&req);
    const void *x = pdt == SL_DT_F32    ? (const void *)in->pf[pt]
                    : pdt == SL_DT_F16  ? (const void *)in->ph
                    : pdt == SL_DT_BF16 ? (const void *)in->pb
                    : pdt == SL_DT_U8   ? (const void *)in->pu
                                        : (const void *)in->pd[pt];
    req.prediction = (struct sl_tensor){x, pdt, 4, {in->n, in->c, in->h, in->w}};
    req.pred_type = SL_PRED_PROBABILITIES;
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

static double worst_rel, worst_rel_focal; /* the largest relative differences seen */

static void close_rel(double got, double want, double rtol, bool focal, const char *what)
{
    const double d = fabs(got - want);
    double *worst = focal ? &worst_rel_focal : &worst_rel;
    if (want != 0 && d / fabs(want) > *worst) {
        *worst = d / fabs(want);
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

/* Every loss value (per image when given) and metric within the tolerance (bits: exactly);
 * counts and matrices always exactly. */
static void compare(const struct sl_result *a, const struct sl_result *b, bool bits)
{
    CHECK(a && b);
    if (!a || !b) {
        return;
    }
    const int64_t N = a->images, C = a->classes;
    for (int i = 0; i < a->nlosses; i++) {
        const struct sl_loss_result *la = &a->losses[i], *lb = &b->losses[i];
        const bool focal = strcmp(la->spec->def->name, "focal") == 0;
        const double rtol = focal ? RTOL_FOCAL : RTOL;
        if (bits) {
            CHECK(same_bits(la->value, lb->value));
        } else {
            close_rel(la->value, lb->value, rtol, focal, la->spec->key);
        }
        for (int64_t k = 0; k < N && la->has_per_image; k++) {
            if (bits) {
                CHECK(same_bits(la->per_image[k], lb->per_image[k]));
            } else {
                close_rel(la->per_image[k], lb->per_image[k], rtol, focal, la->spec->key);
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

/* The losses: the CE family with class weights and label smoothing, focal of five gammas (0:
 * (1 - p)^0 = 1 even at p = 1; 8: far pixels where p_y nears 1), every region loss. */
enum { NLOSS = 14 };
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
    l[12] = loss("focal");
    set_num(&l[12], "gamma", 0);
    l[13] = loss("focal");
    set_num(&l[13], "gamma", 8); /* (1 - p_y) below e^(-86 / 8) = 2.1e-5: far */
}

static void test_against_double(void)
{
    /* C = 300: int64 targets go to the kernel as uint16 (uint8 ones wrap to other classes,
     * the same for both passes) */
    const int64_t shapes[][4] = {{2, 2, 37, 23},  {3, 3, 1, 5},    {1, 4, 300, 260},
                                 {2, 19, 33, 61}, {1, 64, 20, 45}, {2, 4, 128, 128},
                                 {1, 300, 9, 40}};
    struct sl_spec metrics[3] = {metric("dice"), metric("iou"), metric("confusion")};
    int runs = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        double cw[300];
        struct sl_spec losses[NLOSS];
        make_losses(losses, shapes[si][1], cw);
        struct inputs in;
        make_inputs(&in, shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3], 11 + si);
        for (int variant = 0; variant < 4; variant++) {
            const bool t64 = variant & 1, weights = variant & 2;
            static const enum sl_dtype dts[NPT] = {SL_DT_F32, SL_DT_F16, SL_DT_BF16, SL_DT_U8};
            for (int pt = 0; pt < NPT; pt++) {
                struct sl_result *d =
                    score(&in, pt, SL_DT_F64, t64, weights, losses, NLOSS, metrics, 3, NULL);
                struct sl_result *f =
                    score(&in, pt, dts[pt], t64, weights, losses, NLOSS, metrics, 3, NULL);
                compare(f, d, false);
                if (pt != F32) {
                    /* widened exactly (uint8: u / 255 rounded to float32), summed in the same
                     * lanes: as the float32 values */
                    struct sl_result *g =
                        score(&in, pt, SL_DT_F32, t64, weights, losses, NLOSS, metrics, 3, NULL);
                    compare(f, g, true);
                    sl_result_free(g);
                }
                if (variant == 2) {
                    /* without the squared Dice (sum p^2) probabilities below 2^-63 stay on the
                     * float path */
                    struct sl_spec l2[NLOSS];
                    memcpy(l2, losses, sizeof l2);
                    l2[6] = l2[NLOSS - 1];
                    struct sl_result *d2 =
                        score(&in, pt, SL_DT_F64, t64, weights, l2, NLOSS - 1, metrics, 3, NULL);
                    struct sl_result *f2 =
                        score(&in, pt, dts[pt], t64, weights, l2, NLOSS - 1, metrics, 3, NULL);
                    compare(f2, d2, false);
                    sl_result_free(d2);
                    sl_result_free(f2);
                    runs++;
                }
                sl_result_free(d);
                sl_result_free(f);
                runs++;
            }
        }
        free_inputs(&in);
    }
    printf("fused multiclass probabilities against double (%d requests): largest relative "
           "difference %.3g, focal %.3g (tolerance %.0e, focal %.0e)\n",
           runs, worst_rel, worst_rel_focal, RTOL, RTOL_FOCAL);
}

/* The pass really runs the float kernel for these requests (uint8 probabilities too, as
 * u / 255 rounded to float32). */
static void test_chosen(void)
{
    struct sl_request req;
    sl_request_init(&req);
    static float p[2 * 16];
    static uint8_t t[16];
    req.prediction = (struct sl_tensor){p, SL_DT_F32, 4, {1, 2, 4, 4}};
    req.pred_type = SL_PRED_PROBABILITIES;
    req.target = (struct sl_tensor){t, SL_DT_U8, 3, {1, 4, 4}};
    req.mode = SL_MODE_MULTICLASS;
    struct sl_spec l[1] = {loss("cross_entropy")};
    req.losses = l;
    req.nlosses = 1;
    struct sl__geom g;
    memset(&g, 0, sizeof g);
    g.mode = SL_MODE_MULTICLASS;
    g.classes = 2;
    g.pixels = 16;
    g.images = 1;
    CHECK(sl__run_validates(&req, &g));
    req.prediction.dtype = SL_DT_F16;
    CHECK(sl__run_validates(&req, &g));
    req.prediction.dtype = SL_DT_BF16;
    CHECK(sl__run_validates(&req, &g));
    req.prediction.dtype = SL_DT_U8;
    CHECK(sl__run_validates(&req, &g));
    req.prediction.dtype = SL_DT_F64;
    CHECK(!sl__run_validates(&req, &g));
}

/* The kernel's sums under each instruction set: the same bits (the CPU's best and below). */
static void test_isa_identical(void)
{
    const int classes[] = {2, 3, 4, 19, 64};
    for (size_t ci = 0; ci < sizeof classes / sizeof classes[0]; ci++) {
        const int C = classes[ci];
        struct inputs in;
        make_inputs(&in, 1, C, 7, 73, 200 + ci); /* 511 pixels: a tail block */
        const int nq = SL_MCQ_FOCAL + 4;
        double *lanes[3];
        int32_t *counts[3];
        int64_t *matrix[3], count[3];
        for (int isa = 0; isa < 3; isa++) {
            struct sl__mc_in mi;
            memset(&mi, 0, sizeof mi);
            mi.x = in.pf[F32];
            mi.xs = in.npix;
            mi.t = in.t8;
            mi.w = in.wf;
            mi.classes = C;
            mi.ign = 255;
            mi.nfocal = 4;
            mi.gamma[0] = 2;
            mi.gamma[1] = 0.5f;
            mi.gamma[2] = 3;
            mi.gamma[3] = 0;
            mi.what =
                SL_MC_SOFT | SL_MC_SP2 | SL_MC_CE | SL_MC_LS | SL_MC_FOCAL | SL_MC_W | SL_MC_CM;
            struct sl__mc_state st = {calloc((size_t)(C * nq * 16), sizeof(double)),
                                      calloc((size_t)(C * 48), sizeof(int32_t)),
                                      calloc((size_t)(C * C), sizeof(int64_t)),
                                      0,
                                      malloc(sizeof(float) * (size_t)(2 * C * SL_MC_BLOCK)),
                                      false};
            /* whole blocks in place, then the tail through a padded copy */
            const int64_t whole = in.npix / SL_MC_BLOCK * SL_MC_BLOCK, rest = in.npix - whole;
            mi.n = whole;
            sl__mc_probs(isa, &mi, &st);
            float *xb = calloc((size_t)(C * SL_MC_BLOCK), sizeof(float));
            float wb[SL_MC_BLOCK] = {0};
            uint8_t tb[SL_MC_BLOCK] = {0};
            for (int c = 0; c < C; c++) {
                memcpy(xb + c * SL_MC_BLOCK, in.pf[F32] + c * in.npix + whole,
                       sizeof(float) * (size_t)rest);
            }
            memcpy(wb, in.wf + whole, sizeof(float) * (size_t)rest);
            memcpy(tb, in.t8 + whole, (size_t)rest);
            mi.x = xb;
            mi.xs = SL_MC_BLOCK;
            mi.t = tb;
            mi.w = wb;
            mi.n = rest;
            sl__mc_probs(isa, &mi, &st);
            free(xb);
            free(st.e);
            CHECK(!st.bad);
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
        int64_t want = 0;
        for (int64_t k = 0; k < in.npix; k++) {
            want += in.t8[k] != 255;
        }
        CHECK(count[0] == want);
        for (int isa = 0; isa < 3; isa++) {
            free(lanes[isa]);
            free(counts[isa]);
            free(matrix[isa]);
        }
        free_inputs(&in);
    }
}

/* The kernel's -log z against libm's log in double: every 61st float of [SL_EPS, 1] (the
 * range the clip leaves), and the same bits from every instruction set. */
static void test_nlog(void)
{
    const float lo = 1e-7f;
    uint32_t b0, b1;
    const float one = 1.0f;
    memcpy(&b0, &lo, sizeof b0);
    memcpy(&b1, &one, sizeof b1);
    const int64_t n = ((int64_t)(b1 - b0) / 61 + 16) / 16 * 16;
    float *z = malloc(sizeof *z * (size_t)n), *out[3];
    for (int64_t k = 0; k < n; k++) {
        uint32_t b = b0 + (uint32_t)(k * 61);
        b = b > b1 ? b1 : b;
        memcpy(&z[k], &b, sizeof b);
    }
    double worst = 0;
    for (int isa = 0; isa < 3; isa++) {
        out[isa] = malloc(sizeof *out[isa] * (size_t)n);
        sl__nlog01_f32(isa, z, out[isa], n);
    }
    for (int64_t k = 0; k < n; k++) {
        const double want = -log((double)z[k]);
        const double d = fabs(out[0][k] - want);
        if (z[k] != 1 && d / want > worst) {
            worst = d / want;
        }
        if (z[k] == 1) {
            CHECK(out[0][k] == 0);
        }
    }
    CHECK(memcmp(out[0], out[1], sizeof(float) * (size_t)n) == 0);
    CHECK(memcmp(out[0], out[2], sizeof(float) * (size_t)n) == 0);
    /* 1 - 2^-24: -log = 2^-24 + 2^-49 + ..., a relative error of 2^-25 at most */
    float near1[16], r[16];
    for (int k = 0; k < 16; k++) {
        near1[k] = 1.0f - (float)(k + 1) * 0x1p-24f;
    }
    sl__nlog01_f32(-1, near1, r, 16);
    for (int k = 0; k < 16; k++) {
        CHECK_CLOSE(r[k], -log1p(-(double)(k + 1) * 0x1p-24), 3e-7, 0);
    }
    printf("-log z over %lld floats of [1e-7, 1]: largest relative error %.3g (%.2f x 2^-24)\n",
           (long long)n, worst, worst / 0x1p-24);
    CHECK(worst < 3e-7);
    for (int isa = 0; isa < 3; isa++) {
        free(out[isa]);
    }
    free(z);
}

/* A hand calculation, 4 classes, 5 counted pixels of 256 (the others ignored):
 *   pixel 0: p (1/2, 1/4, 1/4, 0), target 0: argmax 0
 *   pixel 1: p (0.4, 0.4, 0.2, 0), target 1: argmax 0 (ties to the lowest class)
 *   pixel 2: p (0, 1, 0, 0), target 2: -log p_y clipped to -log 1e-7, argmax 1
 *   pixel 3: p (1, 0, 0, 0), target 0: -log p_y clipped to -log(1 - 1e-7), argmax 0
 *   pixel 4: p (1e-30, 1/2, 1/2, 1e-40), target 1: argmax 1; 1e-40 is a subnormal float
 * (0.4 as the float nearest, p4 below).
 * CE = (log 2 - log p4 - log 1e-7 - log(1 - 1e-7) + log 2) / 5.
 * Focal gamma 2, alpha 0.25: 0.25 (1/4 log 2 + (1 - p4)^2 (-log p4) + 1 (-log 1e-7) + 0
 * + 1/4 log 2) / 5.
 * Soft sums: class 0 sum p 1.9 + 1e-30, sum p y 1.5, 2 pixels; class 1 2.15, 0.9, 2; class 2
 * 0.95, 0, 1; class 3 1e-40, 0, 0. Dice (smooth 0) 1 - 2 spy / (sp + sy): the mean of
 * 1 - 3 / 3.9, 1 - 1.8 / 4.15, 1 and 1 - 0 / 1e-40 = 1 (a sum p of 0 would make it 0 / 0).
 * Squared Dice 1 - 2 spy / (sp2 + sy): class 0 sp2 = 1/4 + p4^2 + 1 + 1e-60 (1e-30 below 2^-63:
 * far, in double), class 1 1/16 + p4^2 + 1 + 1/4, class 2 1/16 + 0.2^2 + 1/4, class 3 1e-80
 * (in double: 1 - 0 / 1e-80 = 1).
 * Confusion: class 0 tp 2 (pixels 0, 3) fp 1 (pixel 1) fn 0 tn 2; class 1 tp 1 (pixel 4) fp 1
 * (pixel 2) fn 1 (pixel 1) tn 2; class 2 tp 0 fp 0 fn 1 (pixel 2) tn 4; class 3 tn 5. */
static void test_hand(void)
{
    enum { S = 256, C = 4 };
    static float x[C * S];
    static double xd[C * S];
    static uint8_t t[S];
    memset(t, 255, sizeof t);
    const float rows[5][C] = {{0.5f, 0.25f, 0.25f, 0},
                              {0.4f, 0.4f, 0.2f, 0},
                              {0, 1, 0, 0},
                              {1, 0, 0, 0},
                              {1e-30f, 0.5f, 0.5f, 1e-40f}};
    const uint8_t ys[5] = {0, 1, 2, 0, 1};
    for (int k = 0; k < 5; k++) {
        for (int c = 0; c < C; c++) {
            x[c * S + k] = rows[k][c];
        }
        t[k] = ys[k];
    }
    for (int k = 0; k < C * S; k++) {
        xd[k] = x[k];
    }
    const double p4 = 0.4f, e30 = 1e-30f, e40 = 1e-40f;
    const double ce = (log(2) - log(p4) - log(1e-7) - log(1 - 1e-7) + log(2)) / 5;
    const double focal =
        0.25 * (0.25 * log(2) + (1 - p4) * (1 - p4) * -log(p4) - log(1e-7) + 0.25 * log(2)) / 5;
    const double d0 = 1 - 2 * 1.5 / (0.5 + p4 + 1 + e30 + 2);
    const double d1 = 1 - 2 * (p4 + 0.5) / (0.25 + p4 + 1 + 0.5 + 2);
    const double q0 = 1 - 2 * 1.5 / (0.25 + p4 * p4 + 1 + e30 * e30 + 2);
    const double q1 = 1 - 2 * (p4 + 0.5) / (0.0625 + p4 * p4 + 1 + 0.25 + 2);
    CHECK(e40 > 0 && e40 < 0x1p-126); /* subnormal */
    for (int pass = 0; pass < 2; pass++) {
        struct sl_request req;
        sl_request_init(&req);
        req.prediction = (struct sl_tensor){pass ? (const void *)xd : (const void *)x,
                                            pass ? SL_DT_F64 : SL_DT_F32,
                                            4,
                                            {1, C, 1, S}};
        req.pred_type = SL_PRED_PROBABILITIES;
        req.target = (struct sl_tensor){t, SL_DT_U8, 3, {1, 1, S}};
        req.mode = SL_MODE_MULTICLASS;
        req.has_ignore = true;
        req.ignore_index = 255;
        struct sl_spec l[3] = {loss("cross_entropy"), loss("dice"), loss("focal")};
        set_num(&l[1], "smooth", 0);
        struct sl_spec m[1] = {metric("confusion")};
        req.losses = l;
        req.nmetrics = 1;
        req.metrics = m;
        for (int sq = 0; sq < 2; sq++) {
            /* the Dice plain (no sum p^2: 1e-30 and 1e-40 on the float path), then squared */
            if (sq) {
                set_bool(&l[1], "squared", true);
            }
            req.nlosses = sq ? 2 : 3;
            struct sl_result *res = NULL;
            char msg[256];
            CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
            if (!res) {
                continue;
            }
            CHECK_CLOSE(res->losses[0].value, ce, 1e-6, 0);
            if (sq) {
                CHECK_CLOSE(res->losses[1].value, (q0 + q1 + 1 + 1) / 4, 1e-6, 0);
            } else {
                CHECK_CLOSE(res->losses[1].value, (d0 + d1 + 1 + 1) / 4, 1e-6, 0);
                CHECK_CLOSE(res->losses[2].value, focal, 1e-6, 0);
            }
            const struct sl_confusion *c = res->metrics[0].counts;
            CHECK(c[0].tp == 2 && c[0].fp == 1 && c[0].fn == 0 && c[0].tn == 2);
            CHECK(c[1].tp == 1 && c[1].fp == 1 && c[1].fn == 1 && c[1].tn == 2);
            CHECK(c[2].tp == 0 && c[2].fp == 0 && c[2].fn == 1 && c[2].tn == 4);
            CHECK(c[3].tp == 0 && c[3].fp == 0 && c[3].fn == 0 && c[3].tn == 5);
            sl_result_free(res);
        }
    }
}

/* Validation deferred to the kernel (float32 probabilities, uint8 targets) answers as full
 * validation does, the float64 request (validated up front) giving the same message: a value
 * above 1, below 0, NaN, infinite, -0 (accepted), at a counted pixel and at an ignored one, and
 * a target byte beyond the classes. */
static void test_deferred_validation(void)
{
    struct inputs in;
    make_inputs(&in, 2, 4, 30, 50, 3);
    struct sl_spec l[2] = {loss("cross_entropy"), loss("dice")};
    struct sl_spec m[1] = {metric("iou")};
    const float bad[] = {1.5f, -0.25f, NAN, INFINITY, 1.0000001f, -0.0f};
    const int nbad = (int)(sizeof bad / sizeof bad[0]);
    int64_t ignored = -1;
    for (int64_t k = 0; k < 1500 && ignored < 0; k++) {
        if (in.t8[k] == 255) {
            ignored = k;
        }
    }
    CHECK(ignored >= 0);
    for (int kind = 0; kind < 2 * nbad + 1; kind++) {
        /* image 0, class 1, pixel 277 (counted unless it is the ignored one) */
        const int64_t px = kind < nbad ? 277 : ignored, at = 1500 + px;
        const float keep = in.pf[F32][at];
        const uint8_t keep_t = in.t8[1234];
        if (kind < 2 * nbad) {
            in.pf[F32][at] = bad[kind % nbad];
        } else {
            in.t8[1234] = 7;
        }
        in.pd[F32][at] = in.pf[F32][at];
        struct sl_request req;
        sl_request_init(&req);
        req.prediction = (struct sl_tensor){in.pf[F32], SL_DT_F32, 4, {2, 4, 30, 50}};
        req.pred_type = SL_PRED_PROBABILITIES;
        req.target = (struct sl_tensor){in.t8, SL_DT_U8, 3, {2, 30, 50}};
        req.has_ignore = true;
        req.ignore_index = 255;
        req.losses = l;
        req.nlosses = 2;
        req.metrics = m;
        req.nmetrics = 1;
        struct sl_result *res = NULL, *res2 = NULL;
        char msg[256] = "", want[256] = "";
        const int rc = sl_score(&req, NULL, &res, msg, sizeof msg);
        req.prediction.data = in.pd[F32];
        req.prediction.dtype = SL_DT_F64;
        const int rc2 = sl_score(&req, NULL, &res2, want, sizeof want);
        if (kind % nbad == nbad - 1 && kind < 2 * nbad) {
            /* -0 is in [0, 1]: both score, alike */
            CHECK_INT(rc, 0);
            CHECK_INT(rc2, 0);
            if (res && res2) {
                close_rel(res->losses[0].value, res2->losses[0].value, RTOL, false, "-0");
            }
        } else {
            CHECK_INT(rc, SL_ERANGE);
            CHECK_INT(rc2, SL_ERANGE);
            CHECK(strcmp(msg, want) == 0);
            char where[64];
            snprintf(where, sizeof where, "prediction[0, 1, %lld, %lld]", (long long)(px / 50),
                     (long long)(px % 50));
            CHECK(strstr(msg, kind < 2 * nbad ? where : "target[0, 24, 34]") != NULL);
            if (kind < 2 * nbad && !isnan(bad[kind % nbad]) && !isinf(bad[kind % nbad])) {
                CHECK(strstr(msg, "probabilities must be in [0, 1]") != NULL);
            }
        }
        sl_result_free(res);
        sl_result_free(res2);
        in.pf[F32][at] = keep;
        in.pd[F32][at] = keep;
        in.t8[1234] = keep_t;
    }
    free_inputs(&in);
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
        struct sl_result *a =
            score(&in, F32, SL_DT_F32, false, true, losses, NLOSS, metrics, 1, NULL);
        for (int k = 0; k < 2; k++) {
            struct sl_result *b =
                score(&in, F32, SL_DT_F32, false, true, losses, NLOSS, metrics, 1, pools[k]);
            compare(a, b, true);
            sl_result_free(b);
        }
        sl_result_free(a);
        free_inputs(&in);
    }
    sl_pool_free(pools[0]);
    sl_pool_free(pools[1]);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_chosen),         CHECK_TEST(test_nlog),
    CHECK_TEST(test_hand),           CHECK_TEST(test_deferred_validation),
    CHECK_TEST(test_against_double), CHECK_TEST(test_isa_identical),
    CHECK_TEST(test_pool_identical),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_fused_mcp", tests);
}
