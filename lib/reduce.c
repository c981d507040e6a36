/* reduce.c - from plane sums to loss and metric values: per image, per class, per batch.
 *
 * Conventions (the README's "Conventions"): pixel losses are means over counted pixels;
 * region losses are per image, averaged over the counted classes (class 0 left out when
 * include_background is false), each class's loss times its class weight (MONAI); Lovász
 * losses average over classes as the reference code does. Pixel losses leave channel 0 out in
 * multilabel mode and multiclass focal takes its softmax without class 0 when
 * include_background is false; multiclass cross entropy keeps every class (MONAI DiceCELoss). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool multiclass(const struct sl__plan *pl)
{
    return pl->g->mode == SL_MODE_MULTICLASS;
}

/* Whether class c counts in a mean over classes under include_background bg (one channel
 * always counts: MONAI ignores the flag for a single channel). */
static bool counted(const struct sl__plan *pl, bool bg, int64_t c)
{
    return pl->g->classes == 1 || bg || c > 0;
}

static int64_t ncounted(const struct sl__plan *pl, bool bg)
{
    int64_t n = 0;
    for (int64_t c = 0; c < pl->g->classes; c++) {
        n += counted(pl, bg, c);
    }
    return n;
}

static const struct sl__acc *plane(const struct sl__plan *pl, int64_t i, int64_t c)
{
    return &pl->accs[i * pl->g->classes + c];
}

/* A per-class value of a parameter that is a number or a list (1 when absent or null). */
static double per_class(const struct sl_value *v, int64_t c, double absent)
{
    if (v->kind == SL_V_LIST) {
        return v->list[c];
    }
    return v->kind == SL_V_NUMBER ? v->num : absent;
}

/* The loss's "reduction" (mean when it has none). */
static int reduction_of(const struct sl_spec *s)
{
    int k = sl_param_index(s->def, "reduction");
    return k >= 0 ? s->values[k].choice : SL_RED_MEAN;
}

/* Binary/multilabel plane sums of the pixel losses (struct sl__kernel.plane_sum). */

double sl__sum_ce(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                  const double *beta_auto)
{
    (void)beta_auto;
    const struct sl__acc *a = plane(pl, i, c);
    return per_class(&s->values[SL_P_CE_CLASS_WEIGHTS], c, 1) * (a->ce_pos + a->ce_neg);
}

double sl__sum_wce(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                   const double *beta_auto)
{
    (void)beta_auto;
    const struct sl__acc *a = plane(pl, i, c);
    return s->values[SL_P_WCE_BETA].num * a->ce_pos + a->ce_neg;
}

/* HED (Xie & Tu 2015): beta = fraction of negatives */
double sl__sum_bce(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                   const double *beta_auto)
{
    const struct sl__acc *a = plane(pl, i, c);
    const struct sl_value *v = &s->values[SL_P_BCE_BETA];
    double beta;
    if (v->kind == SL_V_NUMBER) {
        beta = v->num;
    } else if (v->choice == SL_BETA_AUTO) {
        beta = beta_auto[c];
    } else {
        beta = a->count > 0 ? (a->count - a->sy) / a->count : 0.0;
    }
    return beta * a->ce_pos + (1 - beta) * a->ce_neg;
}

double sl__sum_focal(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                     const double *beta_auto)
{
    (void)beta_auto;
    const struct sl__acc *a = plane(pl, i, c);
    int f = sl__focal_slot(pl, s->values[SL_P_FOCAL_GAMMA].num, false);
    const struct sl_value *alpha = &s->values[SL_P_FOCAL_ALPHA];
    if (alpha->kind == SL_V_NULL) {
        return a->focal_pos[f] + a->focal_neg[f];
    }
    double al = per_class(alpha, c, 1);
    return al * a->focal_pos[f] + (1 - al) * a->focal_neg[f];
}

double sl__sum_dwce(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                    const double *beta_auto)
{
    (void)beta_auto;
    return plane(pl, i, c)->dwce[sl__dwce_slot(pl, s)];
}

/* Multiclass: numerator and denominator of image i's cross entropy (PyTorch cross_entropy:
 * with class weights the mean divides by the summed weights of the targets). */
void sl__softmax_ce(const struct sl__plan *pl, const struct sl_spec *s, bool bg, int64_t i,
                    double *num, double *den)
{
    (void)bg;
    const int64_t C = pl->g->classes;
    const struct sl_value *cw = &s->values[SL_P_CE_CLASS_WEIGHTS];
    *num = 0;
    *den = cw->kind == SL_V_LIST ? 0 : plane(pl, i, 0)->count;
    for (int64_t c = 0; c < C; c++) {
        double wc = per_class(cw, c, 1);
        *num += wc * plane(pl, i, c)->ce_pos;
        if (cw->kind == SL_V_LIST) {
            *den += wc * plane(pl, i, c)->sy;
        }
    }
}

/* Multiclass focal: alpha_t weighs the target class's term (Lin et al.; a number weighs all).
 * Without background the pass took the softmax over classes 1..C-1 (MONAI FocalLoss drops
 * channel 0 first): class-0 pixels add 0 to the numerator but still count in the mean. */
void sl__softmax_focal(const struct sl__plan *pl, const struct sl_spec *s, bool bg, int64_t i,
                       double *num, double *den)
{
    const int64_t C = pl->g->classes;
    int f = sl__focal_slot(pl, s->values[SL_P_FOCAL_GAMMA].num, !bg);
    *num = 0;
    *den = plane(pl, i, 0)->count;
    for (int64_t c = 0; c < C; c++) {
        if (counted(pl, bg, c)) {
            *num += per_class(&s->values[SL_P_FOCAL_ALPHA], c, 1) * plane(pl, i, c)->focal_pos[f];
        }
    }
}

/* Pixel losses: the mean over counted pixels of each image and of the batch (or sums). */
static double pixel_loss(const struct sl__plan *pl, const struct sl_spec *s, bool bg,
                         double *per_image)
{
    const struct sl__kernel *k = s->def->kernel;
    const int64_t N = pl->g->images, C = pl->g->classes;
    const bool sum = reduction_of(s) == SL_RED_SUM;
    double beta_auto[SL_MAX_CLASSES];
    double tnum = 0, tden = 0;
    if (!multiclass(pl)) {
        for (int64_t c = 0; c < C; c++) {
            double cnt = 0, sy = 0;
            for (int64_t i = 0; i < N; i++) {
                cnt += plane(pl, i, c)->count;
                sy += plane(pl, i, c)->sy;
            }
            beta_auto[c] = cnt > 0 ? (cnt - sy) / cnt : 0.0;
        }
    }
    for (int64_t i = 0; i < N; i++) {
        double num = 0, den = 0;
        if (multiclass(pl)) {
            k->softmax_sum(pl, s, bg, i, &num, &den);
        } else {
            /* without background channel 0 is left out of numerator and denominator: the
             * mean over the kept channels x pixels (MONAI FocalLoss include_background=False) */
            for (int64_t c = 0; c < C; c++) {
                if (counted(pl, bg, c)) {
                    num += k->plane_sum(pl, s, i, c, beta_auto);
                    den += plane(pl, i, c)->count;
                }
            }
        }
        /* an image whose pixels are all ignored scores 0 and adds nothing to the batch */
        per_image[i] = sum ? num : (den > 0 ? num / den : 0.0);
        tnum += num;
        tden += den;
    }
    return sum ? tnum : (tden > 0 ? tnum / tden : 0.0);
}

/* A ratio num/den whose zero denominator scores 1 (README: empty on empty is perfect). */
static double ratio1(double num, double den)
{
    return den == 0 ? 1.0 : num / den;
}

/* The smoothing of loss s on the numerator (*nr) and the denominator (*dr): smooth_nr and
 * smooth_dr when given (MONAI DiceLoss, TverskyLoss, GeneralizedDiceLoss), else smooth on both. */
static void smoothing(const struct sl_spec *s, double *nr, double *dr)
{
    const int k = sl_param_index(s->def, "smooth"), a = sl_param_index(s->def, "smooth_nr"),
              b = sl_param_index(s->def, "smooth_dr");
    const double sm = k >= 0 && s->values[k].kind == SL_V_NUMBER ? s->values[k].num : 0.0;
    *nr = a >= 0 && s->values[a].kind == SL_V_NUMBER ? s->values[a].num : sm;
    *dr = b >= 0 && s->values[b].kind == SL_V_NUMBER ? s->values[b].num : sm;
}

/* Region scores of one class's soft sums (struct sl__kernel.score). */

/* MONAI DiceLoss: (2 tp + smooth_nr) / (sum p + sum y + smooth_dr) */
double sl__score_dice(const struct sl_spec *s, const struct sl__soft *u, bool *use_log)
{
    double nr, dr;
    smoothing(s, &nr, &dr);
    double den = (s->values[SL_P_DICE_SQUARED].b ? u->sp2 : u->sp) + u->sy + dr;
    *use_log = s->values[SL_P_DICE_LOG].b;
    return ratio1(2 * u->spy + nr, den);
}

/* smp JaccardLoss: (tp + smooth_nr) / (tp + fp + fn + smooth_dr) */
double sl__score_jaccard(const struct sl_spec *s, const struct sl__soft *u, bool *use_log)
{
    double nr, dr;
    smoothing(s, &nr, &dr);
    *use_log = s->values[SL_P_JAC_LOG].b;
    return ratio1(u->spy + nr, u->sp + u->sy - u->spy + dr);
}

/* MONAI TverskyLoss: (tp + smooth_nr) / (tp + alpha fp + beta fn + smooth_dr) */
double sl__score_tversky(const struct sl_spec *s, const struct sl__soft *u, bool *use_log)
{
    double a, b;
    if (s->values[SL_P_TV_FP].kind == SL_V_NUMBER) {
        a = s->values[SL_P_TV_FP].num;
        b = s->values[SL_P_TV_FN].num;
    } else {
        double beta =
            s->values[SL_P_TV_BETA].kind == SL_V_NUMBER ? s->values[SL_P_TV_BETA].num : 0.5;
        a = beta;
        b = 1 - beta;
    }
    double nr, dr;
    smoothing(s, &nr, &dr);
    *use_log = s->values[SL_P_TV_LOG].b;
    return ratio1(u->spy + nr, u->spy + a * (u->sp - u->spy) + b * (u->sy - u->spy) + dr);
}

/* smp MCCLoss (segmentation_models_pytorch/losses/mcc.py): the soft counts tp = sum p y,
 * tn = sum (1-p)(1-y), fp = sum p (1-y), fn = sum (1-p) y, each + eps, then
 * (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)); eps > 0 keeps the root positive. */
double sl__score_mcc(const struct sl_spec *s, const struct sl__soft *u, bool *use_log)
{
    const double eps = s->values[SL_P_MCC_EPS].num;
    /* each count is a sum of non-negative terms: rounding below 0 is clipped */
    const double tp = fmax(u->spy, 0.0) + eps, fp = fmax(u->sp - u->spy, 0.0) + eps,
                 fn = fmax(u->sy - u->spy, 0.0) + eps,
                 tn = fmax(u->n - u->sp - u->sy + u->spy, 0.0) + eps;
    *use_log = false;
    return (tp * tn - fp * fn) / sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
}

/* Focal Tversky (Abraham & Khan 2019): smp raises the class mean to gamma. */
double sl__finish_tversky(const struct sl_spec *s, double v)
{
    const double gamma = s->values[SL_P_TV_GAMMA].num;
    /* gamma 1 leaves v as it is (smooth_nr > smooth_dr may make it negative, as in MONAI) */
    return gamma == 1 ? v : pow(fmax(v, 0.0), gamma);
}

/* 1 - score (or -log score) of one class's soft sums, before any finish. */
static double region_value(const struct sl_spec *s, const struct sl__soft *u)
{
    bool use_log = false;
    double score = s->def->kernel->score(s, u, &use_log);
    return use_log ? -log(fmax(score, SL_LOG_FLOOR)) : 1 - score;
}

/* A loss's per-class weights ("class_weights"; absent: every class weighs 1). */
static const struct sl_value *region_class_weights(const struct sl_spec *s)
{
    static const struct sl_value none = {.kind = SL_V_NULL};
    int k = sl_param_index(s->def, "class_weights");
    return k >= 0 ? &s->values[k] : &none;
}

/* A loss's per_image (true when it has none). */
static bool region_per_image(const struct sl_spec *s)
{
    int k = sl_param_index(s->def, "per_image");
    return k < 0 || s->values[k].b;
}

/* Whether a class absent from the target adds 0 (absent_classes "zero", smp). */
static bool absent_zero(const struct sl_spec *s)
{
    int k = sl_param_index(s->def, "absent_classes");
    return k >= 0 && s->values[k].kind == SL_V_ENUM && s->values[k].choice == SL_ABSENT_ZERO;
}

static double region_finish(const struct sl_spec *s, double v)
{
    return s->def->kernel->finish ? s->def->kernel->finish(s, v) : v;
}

/* Plane (i, c)'s soft sums. */
static struct sl__soft soft_of(const struct sl__acc *a)
{
    return (struct sl__soft){a->count, a->sp, a->sy, a->spy, a->sp2};
}

/* Class c's soft sums pooled over the batch. */
static struct sl__soft soft_pooled(const struct sl__plan *pl, int64_t c)
{
    struct sl__soft u = {0, 0, 0, 0, 0};
    for (int64_t i = 0; i < pl->g->images; i++) {
        const struct sl__acc *a = plane(pl, i, c);
        u.n += a->count;
        u.sp += a->sp;
        u.sy += a->sy;
        u.spy += a->spy;
        u.sp2 += a->sp2;
    }
    return u;
}

/* Class c's loss from its sums u: its class weight times 1 - score, and 0 for a class absent
 * from the target under absent_classes "zero" (smp: loss *= y_true.sum(dims) > 0). */
static double class_loss(const struct sl_spec *s, int64_t c, const struct sl__soft *u)
{
    if (absent_zero(s) && !(u->sy > 0)) {
        return 0.0;
    }
    return per_class(region_class_weights(s), c, 1) * region_value(s, u);
}

/* The loss of one image (or of the pooled batch) from its class losses: their mean over the K
 * counted classes (MONAI reduction "mean", smp's mean over classes), or their sum ("sum"),
 * then the row's finish. */
static double region_reduce(const struct sl_spec *s, double sum, int64_t K)
{
    if (reduction_of(s) == SL_RED_SUM) {
        return region_finish(s, sum);
    }
    return region_finish(s, K ? sum / (double)K : 0.0);
}

int sl__value_region(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                     bool *has_per_image, double *value)
{
    const int64_t N = pl->g->images, C = pl->g->classes, K = ncounted(pl, bg);
    const bool sum = reduction_of(s) == SL_RED_SUM;
    double total = 0;
    for (int64_t i = 0; i < N; i++) {
        double v = 0;
        for (int64_t c = 0; c < C; c++) {
            if (counted(pl, bg, c)) {
                const struct sl__soft u = soft_of(plane(pl, i, c));
                v += class_loss(s, c, &u);
            }
        }
        per_image[i] = region_reduce(s, v, K);
        total += per_image[i];
    }
    if (region_per_image(s)) {
        *value = sum ? total : (N ? total / (double)N : 0.0);
        return 0;
    }
    /* per_image false: every class's sums pooled over the batch first (MONAI batch=True) */
    *has_per_image = false;
    double v = 0;
    for (int64_t c = 0; c < C; c++) {
        if (counted(pl, bg, c)) {
            const struct sl__soft u = soft_pooled(pl, c);
            v += class_loss(s, c, &u);
        }
    }
    *value = region_reduce(s, v, K);
    return 0;
}

void sl__region_per_class(const struct sl__plan *pl, const struct sl_spec *s, bool bg,
                          double *per_class, double *per_image_class)
{
    const int64_t N = pl->g->images, C = pl->g->classes;
    for (int64_t c = 0; c < C; c++) {
        if (!counted(pl, bg, c)) {
            per_class[c] = NAN;
            for (int64_t i = 0; per_image_class && i < N; i++) {
                per_image_class[i * C + c] = NAN;
            }
            continue;
        }
        if (!per_image_class) {
            const struct sl__soft u = soft_pooled(pl, c);
            per_class[c] = class_loss(s, c, &u);
            continue;
        }
        double sum = 0;
        for (int64_t i = 0; i < N; i++) {
            const struct sl__soft u = soft_of(plane(pl, i, c));
            per_image_class[i * C + c] = class_loss(s, c, &u);
            sum += per_image_class[i * C + c];
        }
        per_class[c] = N ? sum / (double)N : 0.0;
    }
}

/* Generalized Dice (Sudre et al. 2017) of the counted classes' sums u[0..C), MONAI
 * GeneralizedDiceLoss.forward: w_c = 1/g^2, 1/g or 1 of the target volume g = sum y_c; an
 * infinite weight (g = 0) becomes the largest finite weight of the counted classes (0 when
 * there is none); 1 - (2 sum w tp + smooth_nr) / (sum w (sum p + sum y) + smooth_dr), a zero
 * denominator scoring 1 (loss 0) as the other region losses. */
static double gdice_of(const struct sl__plan *pl, const struct sl_spec *s, bool bg,
                       const struct sl__soft *u)
{
    const int64_t C = pl->g->classes;
    const int type = s->values[SL_P_GD_W_TYPE].choice;
    double nr, dr, wmax = 0, num = 0, den = 0;
    smoothing(s, &nr, &dr);
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t c = 0; c < C; c++) {
            if (!counted(pl, bg, c)) {
                continue;
            }
            const double g = u[c].sy;
            double w = type == SL_GD_UNIFORM ? 1.0 : type == SL_GD_SIMPLE ? 1.0 / g : 1.0 / (g * g);
            if (pass == 0) {
                wmax = isfinite(w) ? fmax(wmax, w) : wmax;
                continue;
            }
            w = isfinite(w) ? w : wmax;
            num += w * u[c].spy;
            den += w * (u[c].sp + u[c].sy);
        }
    }
    return 1 - ratio1(2 * num + nr, den + dr);
}

int sl__value_gdice(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                    bool *has_per_image, double *value)
{
    const int64_t N = pl->g->images, C = pl->g->classes;
    const bool sum = reduction_of(s) == SL_RED_SUM;
    struct sl__soft *u = malloc(sizeof *u * (size_t)C);
    if (!u) {
        return SL_ENOMEM;
    }
    double total = 0;
    for (int64_t i = 0; i < N; i++) {
        for (int64_t c = 0; c < C; c++) {
            u[c] = soft_of(plane(pl, i, c));
        }
        per_image[i] = gdice_of(pl, s, bg, u);
        total += per_image[i];
    }
    if (region_per_image(s)) {
        *value = sum ? total : (N ? total / (double)N : 0.0);
    } else {
        /* MONAI batch=True: sums and weights of the whole batch, one ratio */
        *has_per_image = false;
        for (int64_t c = 0; c < C; c++) {
            u[c] = soft_pooled(pl, c);
        }
        *value = gdice_of(pl, s, bg, u);
    }
    free(u);
    return 0;
}

/* Region losses: reduction "sum" or "none" needs focal Tversky's gamma 1 (smp raises the mean
 * over classes to gamma, which has no per-class or summed form). */
int sl__check_region(const struct sl_spec *s, const struct sl__geom *g, const char *where,
                     char *msg, size_t msglen)
{
    (void)g;
    const int r = sl_param_index(s->def, "reduction"), k = sl_param_index(s->def, "gamma");
    if (r < 0 || k < 0 || s->values[r].kind != SL_V_ENUM || s->values[r].choice == SL_RED_MEAN) {
        return 0;
    }
    if (s->values[k].kind == SL_V_NUMBER && s->values[k].num != 1) {
        snprintf(msg, msglen,
                 "%s.reduction: \"%s\" needs gamma 1: focal Tversky raises the mean over classes "
                 "to gamma (smp), which has no per-class or summed form",
                 where, s->def->params[r].choices[s->values[r].choice]);
        return SL_EINVAL;
    }
    return 0;
}

/* The items of every image of one class, each written at its own image's offset. */
struct batch_items {
    const struct sl__plan *pl;
    int64_t c;
    uint64_t *it;
    int64_t *n, *gts; /* N: items and positives per image */
};

static void image_items(void *arg, int64_t i)
{
    struct batch_items *b = arg;
    uint64_t *at = b->it + i * b->pl->g->pixels;
    b->gts[i] = 0;
    b->n[i] = sl__hinge_items(b->pl, i, b->c, at, &b->gts[i]);
}

int sl__lovasz_batch_class(const struct sl__plan *pl, int64_t c, double *out)
{
    const int64_t N = pl->g->images, S = pl->g->pixels;
    int64_t n = 0, gts = 0;
    if (multiclass(pl)) {
        /* Lovász-Softmax: this class alone, on the calling thread */
        bool *want = calloc((size_t)pl->g->classes, sizeof *want);
        double *vals = malloc(sizeof *vals * (size_t)pl->g->classes);
        int rc = SL_ENOMEM;
        if (want && vals) {
            want[c] = true;
            rc = sl__lovasz_softmax_classes(pl, NULL, 0, N, want, vals);
            *out = rc == 0 ? vals[c] : 0.0;
        }
        free(want);
        free(vals);
        return rc;
    }
    if (!sl__hinge_items_ok(pl)) {
        /* errors with their doubles, one image after another */
        struct sl__ey *v = malloc(sizeof *v * (size_t)(N * S > 0 ? N * S : 1));
        if (!v) {
            return SL_ENOMEM;
        }
        for (int64_t i = 0; i < N; i++) {
            n += sl__hinge_errors(pl, i, c, v + n, &gts);
        }
        *out = sl__lovasz_flat(v, n, gts);
        free(v);
        return 0;
    }
    /* packed items, the images side by side on the pool, then packed together */
    struct batch_items b = {pl, c, NULL, NULL, NULL};
    b.it = malloc(sizeof *b.it * (size_t)(N * S > 0 ? N * S : 1));
    b.n = malloc(sizeof *b.n * (size_t)(2 * N > 0 ? 2 * N : 1));
    if (!b.it || !b.n) {
        free(b.it);
        free(b.n);
        return SL_ENOMEM;
    }
    b.gts = b.n + N;
    sl_pool_parallel_for(pl->pool, N, image_items, &b);
    for (int64_t i = 0; i < N; i++) {
        memmove(b.it + n, b.it + i * S, sizeof *b.it * (size_t)b.n[i]);
        n += b.n[i];
        gts += b.gts[i];
    }
    *out = sl__lovasz_items(pl->pool, b.it, n, gts, false);
    free(b.it);
    free(b.n);
    return 0;
}

/* Lovász hinge (binary, multilabel: mean over counted channels) and Lovász-Softmax (mean over
 * the counted classes, only those present in the target when classes is "present"; the
 * reference's mean of an empty list is 0). */
int sl__value_lovasz(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                     bool *has_per_image, double *value)
{
    const int64_t N = pl->g->images, C = pl->g->classes;
    const int cl = sl_param_index(s->def, "classes");
    const bool present = cl >= 0 && s->values[cl].choice == SL_LSM_PRESENT;
    const bool img = region_per_image(s);
    if (img) {
        double total = 0;
        for (int64_t i = 0; i < N; i++) {
            double sum = 0;
            int k = 0;
            for (int64_t c = 0; c < C; c++) {
                const struct sl__acc *a = plane(pl, i, c);
                if (counted(pl, bg, c) && (!present || a->lovasz_fg)) {
                    sum += a->lovasz;
                    k++;
                }
            }
            per_image[i] = k ? sum / k : 0.0;
            total += per_image[i];
        }
        *value = N ? total / (double)N : 0.0;
        return 0;
    }
    *has_per_image = false;
    double sum = 0;
    int k = 0;
    for (int64_t c = 0; c < C; c++) {
        bool fg = false;
        for (int64_t i = 0; i < N; i++) {
            fg = fg || plane(pl, i, c)->sy > 0;
        }
        if (!counted(pl, bg, c) || (present && !fg)) {
            continue;
        }
        double v;
        int rc = pl->lovasz_batch_rc ? pl->lovasz_batch_rc[c] : 1;
        if (rc == 0) {
            v = pl->lovasz_batch[c]; /* sl__run computed it on the pool */
        } else if (rc > 0) {
            rc = sl__lovasz_batch_class(pl, c, &v);
        }
        if (rc) {
            return rc;
        }
        sum += v;
        k++;
    }
    *value = k ? sum / k : 0.0;
    return 0;
}

/* Fills per_image[N] and *value for loss s with its row's kernel; *has_per_image is false when
 * it pools the batch. bg: the include_background s inherits (its combo's or the request's). */
static int loss_values(const struct sl__plan *pl, const struct sl_spec *s, bool bg,
                       double *per_image, bool *has_per_image, double *value)
{
    *has_per_image = true;
    return s->def->kernel->value(pl, s, sl__include_bg(s, bg), per_image, has_per_image, value);
}

int sl__value_pixel(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                    bool *has_per_image, double *value)
{
    (void)has_per_image;
    *value = pixel_loss(pl, s, bg, per_image);
    return 0;
}

/* A sum of terms: weight x each term's values; a pooled term leaves no per-image values. */
int sl__value_terms(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                    bool *has_per_image, double *value)
{
    const int64_t N = pl->g->images;
    double *tmp = malloc(sizeof(double) * (size_t)(N > 0 ? N : 1));
    if (!tmp) {
        return SL_ENOMEM;
    }
    memset(per_image, 0, sizeof(double) * (size_t)N);
    *value = 0;
    for (int t = 0; t < s->nterms; t++) {
        const struct sl_spec *term = &s->terms[t];
        bool term_img;
        double v;
        int rc = loss_values(pl, term, bg, tmp, &term_img, &v);
        if (rc) {
            free(tmp);
            return rc;
        }
        *value += term->weight * v;
        *has_per_image = *has_per_image && term_img;
        for (int64_t i = 0; i < N; i++) {
            per_image[i] += term->weight * tmp[i];
        }
    }
    free(tmp);
    return 0;
}

/* Confusion-matrix metric formulas (struct sl__kernel.from_counts). A ratio with a zero
 * denominator is dg: the `empty` value when prediction and target agree (FP = FN = 0: both
 * masks empty, nothing to find and nothing found); otherwise 0, the worst score
 * (scikit-learn's zero_division=0). */
static double ratio(double num, double den, double dg)
{
    return den == 0 ? dg : num / den;
}

double sl__m_dice(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s;
    (void)tn;
    return ratio(2 * tp, 2 * tp + fp + fn, dg);
}

double sl__m_iou(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s;
    (void)tn;
    return ratio(tp, tp + fp + fn, dg);
}

double sl__m_precision(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                       double dg)
{
    (void)s;
    (void)fn;
    (void)tn;
    return ratio(tp, tp + fp, dg);
}

double sl__m_recall(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s;
    (void)fp;
    (void)tn;
    return ratio(tp, tp + fn, dg);
}

double sl__m_specificity(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                         double dg)
{
    (void)s;
    (void)tp;
    (void)fn;
    return ratio(tn, tn + fp, dg);
}

double sl__m_accuracy(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                      double dg)
{
    (void)s;
    return ratio(tp + tn, tp + tn + fp + fn, dg);
}

double sl__m_balanced_accuracy(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                               double dg)
{
    (void)s;
    return (ratio(tp, tp + fn, dg) + ratio(tn, tn + fp, dg)) / 2;
}

/* Negative predictive value (MONAI ConfusionMatrixMetric "npv"). */
double sl__m_npv(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s;
    (void)tp;
    (void)fp;
    return ratio(tn, tn + fn, dg);
}

/* Matthews 1975 */
double sl__m_mcc(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s;
    double den = sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
    return ratio(tp * tn - fp * fn, den, dg);
}

double sl__m_fbeta(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)tn;
    double b2 = s->values[SL_P_FBETA_BETA].num * s->values[SL_P_FBETA_BETA].num;
    return ratio((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp, dg);
}

/* MONAI compute_confusion_matrix_metric (monai/metrics/confusion_matrix.py): a ratio whose
 * denominator is 0 is NaN, and so is every formula built on it. */
static double nan_ratio(double num, double den)
{
    return den == 0 ? NAN : num / den;
}

double sl__m_miss_rate(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                       double dg)
{
    (void)s, (void)fp, (void)tn, (void)dg;
    return nan_ratio(fn, tp + fn);
}

double sl__m_fall_out(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                      double dg)
{
    (void)s, (void)tp, (void)fn, (void)dg;
    return nan_ratio(fp, fp + tn);
}

double sl__m_fdr(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s, (void)fn, (void)tn, (void)dg;
    return nan_ratio(fp, fp + tp);
}

double sl__m_for(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s, (void)tp, (void)fp, (void)dg;
    return nan_ratio(fn, fn + tn);
}

/* Prevalence threshold (Balayla 2020), as MONAI: TPR and TNR NaN when their class is absent. */
double sl__m_pt(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s, (void)dg;
    const double tpr = nan_ratio(tp, tp + fn), tnr = nan_ratio(tn, tn + fp);
    return nan_ratio(sqrt(tpr * (1 - tnr)) + tnr - 1, tpr + tnr - 1);
}

double sl__m_ts(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s, (void)tn, (void)dg;
    return nan_ratio(tp, tp + fn + fp);
}

double sl__m_f1(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s, (void)tn, (void)dg;
    return nan_ratio(2 * tp, 2 * tp + fn + fp);
}

double sl__m_fm(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s, (void)tn, (void)dg;
    return sqrt(nan_ratio(tp, tp + fp) * nan_ratio(tp, tp + fn));
}

double sl__m_bm(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s, (void)dg;
    return nan_ratio(tp, tp + fn) + nan_ratio(tn, tn + fp) - 1;
}

double sl__m_mk(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg)
{
    (void)s, (void)dg;
    return nan_ratio(tp, tp + fp) + nan_ratio(tn, tn + fn) - 1;
}

double sl_metric_from_counts(const struct sl_spec *spec, const struct sl_confusion *c,
                             enum sl_empty e)
{
    const struct sl__kernel *k = spec->def->kernel;
    if (!k || !k->from_counts) {
        return NAN;
    }
    /* MONAI DiceMetric/MeanIoU ignore_empty: NaN whenever the target is empty */
    int ie = sl_param_index(spec->def, "ignore_empty");
    if (ie >= 0 && spec->values[ie].kind == SL_V_BOOL && spec->values[ie].b && c->tp + c->fn == 0) {
        return NAN;
    }
    const double empty = e == SL_EMPTY_ONE ? 1.0 : e == SL_EMPTY_ZERO ? 0.0 : NAN;
    double degenerate = (c->fp == 0 && c->fn == 0) ? empty : 0.0;
    /* scikit-learn's zero_division: one value for every zero denominator ("nan": MONAI's) */
    int zd = sl_param_index(spec->def, "zero_division");
    if (zd >= 0 && spec->values[zd].kind == SL_V_NUMBER) {
        degenerate = spec->values[zd].num;
    } else if (zd >= 0 && spec->values[zd].kind == SL_V_ENUM) {
        degenerate = NAN;
    }
    return k->from_counts(spec, (double)c->tp, (double)c->fp, (double)c->fn, (double)c->tn,
                          degenerate);
}

static void add_counts(struct sl_confusion *t, const struct sl_confusion *c)
{
    t->tp += c->tp;
    t->fp += c->fp;
    t->fn += c->fn;
    t->tn += c->tn;
}

static void metric_values(const struct sl__plan *pl, struct sl_metric_result *r)
{
    const int64_t N = pl->g->images, C = pl->g->classes;
    const struct sl_spec *s = r->spec;
    const enum sl_empty e = pl->req->empty;
    if (s->def->flags & SL_DEF_COUNTS) {
        for (int64_t c = 0; c < C; c++) {
            memset(&r->total[c], 0, sizeof r->total[c]);
            for (int64_t i = 0; i < N; i++) {
                r->counts[i * C + c] = plane(pl, i, c)->cm;
                add_counts(&r->total[c], &plane(pl, i, c)->cm);
            }
        }
        if (r->matrix) {
            for (int64_t i = 0; i < N; i++) {
                for (int64_t k = 0; k < C * C; k++) {
                    r->matrix[k] += pl->matrix[i * C * C + k];
                }
            }
        }
        r->mean = NAN;
        return;
    }
    r->undefined = 0;
    r->infinite = 0;
    double msum = 0;
    int mk = 0;
    int surf = -1;
    for (int k = 0; k < pl->nsurf; k++) {
        if (pl->surf[k] == s) {
            surf = k;
        }
    }
    for (int64_t c = 0; c < C; c++) {
        struct sl_confusion total = {0, 0, 0, 0};
        double sum = 0;
        int defined = 0;
        for (int64_t i = 0; i < N; i++) {
            const struct sl_confusion *cm = &plane(pl, i, c)->cm;
            double v = surf >= 0 ? pl->surf_values[(i * C + c) * pl->nsurf + surf]
                                 : sl_metric_from_counts(s, cm, e);
            add_counts(&total, cm);
            r->per_image[i * C + c] = v;
            if (!isfinite(v)) { /* NaN, or +inf under a MONAI/DeepMind empty rule */
                r->undefined++;
                r->infinite += isinf(v) ? 1 : 0;
            } else {
                sum += v;
                defined++;
            }
        }
        r->per_class[c] = defined ? sum / defined : NAN;
        /* surface distances have no batch-summed form */
        r->global[c] = surf >= 0 ? NAN : sl_metric_from_counts(s, &total, e);
        if (counted(pl, pl->req->include_background, c) && !isnan(r->per_class[c])) {
            msum += r->per_class[c];
            mk++;
        }
    }
    r->mean = mk ? msum / mk : NAN;
}

/* Adds v to *sum and counts it in *k unless it is NaN (MONAI's not_nans). */
static void add_defined(double v, double *sum, int64_t *k)
{
    if (!isnan(v)) {
        *sum += v;
        (*k)++;
    }
}

int64_t sl_metric_reduce(enum sl_metric_reduction r, const double *v, int64_t n, int64_t c,
                         double *out)
{
    switch (r) {
    case SL_MR_NONE:
        memcpy(out, v, sizeof(double) * (size_t)(n * c));
        return n * c;
    case SL_MR_MEAN: {
        /* per image over its defined classes, then over the images that have one */
        double total = 0;
        int64_t images = 0;
        for (int64_t i = 0; i < n; i++) {
            double sum = 0;
            int64_t k = 0;
            for (int64_t j = 0; j < c; j++) {
                add_defined(v[i * c + j], &sum, &k);
            }
            if (k) {
                total += sum / (double)k;
                images++;
            }
        }
        out[0] = images ? total / (double)images : 0.0;
        return 1;
    }
    case SL_MR_SUM: {
        double sum = 0;
        int64_t k = 0;
        for (int64_t i = 0; i < n * c; i++) {
            add_defined(v[i], &sum, &k);
        }
        out[0] = sum;
        return 1;
    }
    case SL_MR_MEAN_BATCH:
    case SL_MR_SUM_BATCH:
        for (int64_t j = 0; j < c; j++) {
            double sum = 0;
            int64_t k = 0;
            for (int64_t i = 0; i < n; i++) {
                add_defined(v[i * c + j], &sum, &k);
            }
            out[j] = r == SL_MR_SUM_BATCH ? sum : k ? sum / (double)k : 0.0;
        }
        return c;
    case SL_MR_MEAN_CHANNEL:
    case SL_MR_SUM_CHANNEL:
        for (int64_t i = 0; i < n; i++) {
            double sum = 0;
            int64_t k = 0;
            for (int64_t j = 0; j < c; j++) {
                add_defined(v[i * c + j], &sum, &k);
            }
            out[i] = r == SL_MR_SUM_CHANNEL ? sum : k ? sum / (double)k : 0.0;
        }
        return n;
    }
    return 0;
}

int sl__reduce(const struct sl__plan *pl, struct sl_result *res, char *msg, size_t msglen)
{
    for (int i = 0; i < res->nlosses; i++) {
        struct sl_loss_result *r = &res->losses[i];
        int rc = loss_values(pl, r->spec, pl->req->include_background, r->per_image,
                             &r->has_per_image, &r->value);
        if (rc) {
            snprintf(msg, msglen, "%s: out of memory for the Lovász sort", r->spec->path);
            return rc;
        }
        /* reduction "none" on a per-class region loss: MONAI's unreduced [N, C] */
        if (r->spec->def->kernel->score && reduction_of(r->spec) == SL_RED_NONE) {
            const int64_t N = pl->g->images, C = pl->g->classes;
            r->per_class = malloc(sizeof(double) * (size_t)C);
            r->per_image_class =
                r->has_per_image ? malloc(sizeof(double) * (size_t)(N * C > 0 ? N * C : 1)) : NULL;
            if (!r->per_class || (r->has_per_image && !r->per_image_class)) {
                snprintf(msg, msglen, "%s: out of memory for the per-class values", r->spec->path);
                return SL_ENOMEM;
            }
            sl__region_per_class(pl, r->spec, sl__include_bg(r->spec, pl->req->include_background),
                                 r->per_class, r->per_image_class);
        }
    }
    for (int i = 0; i < res->nmetrics; i++) {
        metric_values(pl, &res->metrics[i]);
    }
    return 0;
}
