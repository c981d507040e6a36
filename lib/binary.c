/* binary.c - binary mode: one fused pass per image for every pixel loss, the soft sums and the
 * confusion counts; Lovász hinge with one sort per image; reduction to per-image and batch
 * values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BLOCK 1024
#define MAX_FOCAL 16

/* Per-image sums, all in double. The CE family is linear in its two halves, so every
 * cross-entropy variant is recovered from ce_pos and ce_neg after the pass. */
struct acc {
    double count;            /* counted (not ignored) pixels */
    double ce_pos, ce_neg;   /* sum w * -y log p, sum w * -(1-y) log(1-p) */
    double sp, sy, spy, sp2; /* sum p, sum y, sum p*y, sum p*p */
    double focal_pos[MAX_FOCAL], focal_neg[MAX_FOCAL];
    struct sl_confusion cm;
    double lovasz; /* per-image Lovász hinge */
    bool oom;      /* the image's Lovász buffer could not be allocated */
};

/* What the pass must compute, derived once from the request. */
struct plan {
    const struct sl_request *req;
    const struct sl__geom *g;
    bool need_ce, need_soft, need_cm, need_lovasz_img, need_lovasz_batch;
    int nfocal;
    double focal_gamma[MAX_FOCAL];
    double thr_logit; /* hard prediction on logits: x >= thr_logit */
    struct acc *accs; /* one per image */
};

/* Index of the focal accumulator for gamma, adding one if needed. */
static int focal_slot(struct plan *pl, double gamma)
{
    for (int i = 0; i < pl->nfocal; i++) {
        if (pl->focal_gamma[i] == gamma) {
            return i;
        }
    }
    if (pl->nfocal == MAX_FOCAL) {
        return -1;
    }
    pl->focal_gamma[pl->nfocal] = gamma;
    return pl->nfocal++;
}

static bool spec_per_image(const struct sl_spec *s, int param)
{
    return s->values[param].b;
}

static int plan_loss(struct plan *pl, const struct sl_spec *s)
{
    switch ((enum sl_loss_kind)s->def->kind) {
    case SL_LOSS_CROSS_ENTROPY:
    case SL_LOSS_WEIGHTED_CE:
    case SL_LOSS_BALANCED_CE:
        pl->need_ce = true;
        pl->need_soft = true; /* sy and count for balanced beta */
        return 0;
    case SL_LOSS_FOCAL:
        return focal_slot(pl, s->values[SL_P_FOCAL_GAMMA].num) < 0 ? SL_ETOOLARGE : 0;
    case SL_LOSS_DICE:
    case SL_LOSS_JACCARD:
    case SL_LOSS_TVERSKY:
        pl->need_soft = true;
        return 0;
    case SL_LOSS_LOVASZ_HINGE:
        if (spec_per_image(s, SL_P_LH_PER_IMAGE)) {
            pl->need_lovasz_img = true;
        } else {
            pl->need_lovasz_batch = true;
        }
        return 0;
    case SL_LOSS_COMBO:
        for (int i = 0; i < s->nterms; i++) {
            int rc = plan_loss(pl, &s->terms[i]);
            if (rc) {
                return rc;
            }
        }
        return 0;
    }
    return SL_EINTERNAL;
}

/* Loads a block of predictions as logits or probabilities into x (double). */
static void load_pred(const struct sl_tensor *t, int64_t off, int n, double *x)
{
    switch (t->dtype) {
    case SL_DT_F32: {
        const float *f = (const float *)t->data + off;
        for (int k = 0; k < n; k++) {
            x[k] = f[k];
        }
        return;
    }
    case SL_DT_F64:
        memcpy(x, (const double *)t->data + off, sizeof(double) * (size_t)n);
        return;
    default:
        for (int k = 0; k < n; k++) {
            x[k] = sl_tensor_get(t, off + k);
        }
        return;
    }
}

/* Loads a block of targets: y = 0/1, m = 1 counted / 0 ignored. */
static void load_target(const struct sl_request *req, int64_t off, int n, double *y, double *m)
{
    const struct sl_tensor *t = &req->target;
    if (t->dtype == SL_DT_U8 || t->dtype == SL_DT_BOOL) {
        const uint8_t *u = (const uint8_t *)t->data + off;
        int ign = req->has_ignore ? (int)req->ignore_index : -1;
        for (int k = 0; k < n; k++) {
            int v = u[k];
            m[k] = v == ign ? 0.0 : 1.0;
            y[k] = v == 1 && v != ign ? 1.0 : 0.0;
        }
        return;
    }
    for (int k = 0; k < n; k++) {
        double v = sl_tensor_get(t, off + k);
        bool ignored = req->has_ignore && v == (double)req->ignore_index;
        m[k] = ignored ? 0.0 : 1.0;
        y[k] = !ignored && v == 1 ? 1.0 : 0.0;
    }
}

/* log(1 + e^-|x|), the shared part of both stable log-sigmoid forms. */
static inline double log1p_exp_neg_abs(double x)
{
    return log1p(exp(-fabs(x)));
}

/* The fused pass over image i: every requested sum in one sweep of its pixels. */
static void pass_image(struct plan *pl, int64_t i)
{
    const struct sl_request *req = pl->req;
    const int64_t npix = pl->g->pixels;
    const int64_t base = i * npix;
    struct acc *a = &pl->accs[i];
    double x[BLOCK], y[BLOCK], m[BLOCK], w[BLOCK], p[BLOCK], lp[BLOCK], l1p[BLOCK];
    const bool logits = req->pred_type == SL_PRED_LOGITS;
    const bool u8prob =
        req->pred_type == SL_PRED_PROBABILITIES && req->prediction.dtype == SL_DT_U8;
    const bool need_logs = pl->need_ce || pl->nfocal > 0;
    memset(a, 0, sizeof *a);
    for (int64_t off = 0; off < npix; off += BLOCK) {
        int n = (int)(npix - off < BLOCK ? npix - off : BLOCK);
        load_pred(&req->prediction, base + off, n, x);
        load_target(req, base + off, n, y, m);
        if (req->weight.data) {
            load_pred(&req->weight, base + off, n, w);
        } else {
            for (int k = 0; k < n; k++) {
                w[k] = 1.0;
            }
        }
        if (u8prob) {
            for (int k = 0; k < n; k++) {
                x[k] /= 255.0;
            }
        }
        if (logits && need_logs) {
            for (int k = 0; k < n; k++) {
                /* stable: log p = -(log(1+e^-|x|) + max(-x, 0)), log(1-p) = -(.. + max(x, 0)) */
                double s = log1p_exp_neg_abs(x[k]);
                lp[k] = -(s + (x[k] < 0 ? -x[k] : 0.0));
                l1p[k] = -(s + (x[k] > 0 ? x[k] : 0.0));
                p[k] = exp(lp[k]);
            }
        } else if (logits) {
            if (pl->need_soft) {
                for (int k = 0; k < n; k++) {
                    p[k] = 1.0 / (1.0 + exp(-x[k]));
                }
            }
        } else {
            for (int k = 0; k < n; k++) {
                p[k] = x[k];
                if (need_logs) {
                    /* Keras: p clipped to [eps, 1 - eps] before the log */
                    double c = p[k] < SL_EPS ? SL_EPS : (p[k] > 1 - SL_EPS ? 1 - SL_EPS : p[k]);
                    lp[k] = log(c);
                    l1p[k] = log1p(-c);
                }
            }
        }
        for (int k = 0; k < n; k++) {
            a->count += m[k];
        }
        if (pl->need_ce) {
            double cp = 0, cn = 0;
            for (int k = 0; k < n; k++) {
                double mw = m[k] * w[k];
                cp -= mw * y[k] * lp[k];
                cn -= mw * (1 - y[k]) * l1p[k];
            }
            a->ce_pos += cp;
            a->ce_neg += cn;
        }
        for (int f = 0; f < pl->nfocal; f++) {
            /* (1-p)^gamma = exp(gamma log(1-p)): MONAI's exp(gamma * logsigmoid(-x)) form */
            double g = pl->focal_gamma[f], fp = 0, fn = 0;
            for (int k = 0; k < n; k++) {
                double mw = m[k] * w[k];
                if (y[k] > 0) {
                    fp -= mw * exp(g * l1p[k]) * lp[k];
                } else {
                    fn -= mw * exp(g * lp[k]) * l1p[k];
                }
            }
            a->focal_pos[f] += fp;
            a->focal_neg[f] += fn;
        }
        if (pl->need_soft) {
            double sp = 0, sy = 0, spy = 0, sp2 = 0;
            for (int k = 0; k < n; k++) {
                double mp = m[k] * p[k];
                sp += mp;
                sy += m[k] * y[k];
                spy += mp * y[k];
                sp2 += mp * p[k];
            }
            a->sp += sp;
            a->sy += sy;
            a->spy += spy;
            a->sp2 += sp2;
        }
        if (pl->need_cm) {
            int64_t tp = 0, fp = 0, fn = 0, tn = 0;
            for (int k = 0; k < n; k++) {
                if (m[k] == 0) {
                    continue;
                }
                bool h;
                if (logits) {
                    h = x[k] >= pl->thr_logit;
                } else if (req->pred_type == SL_PRED_LABELS) {
                    h = x[k] != 0;
                } else {
                    h = x[k] >= req->threshold;
                }
                bool t = y[k] > 0;
                tp += h && t;
                fp += h && !t;
                fn += !h && t;
                tn += !h && !t;
            }
            a->cm.tp += tp;
            a->cm.fp += fp;
            a->cm.fn += fn;
            a->cm.tn += tn;
        }
    }
}

/* Hinge errors 1 - x*sign(y) of the counted pixels of image i, appended at e/yl; returns how
 * many. Probabilities and labels become logits of the clipped probability. */
static int64_t lovasz_errors(const struct plan *pl, int64_t i, struct sl__ey *v)
{
    const struct sl_request *req = pl->req;
    const int64_t npix = pl->g->pixels;
    const int64_t base = i * npix;
    double x[BLOCK], y[BLOCK], m[BLOCK];
    int64_t n_out = 0;
    for (int64_t off = 0; off < npix; off += BLOCK) {
        int n = (int)(npix - off < BLOCK ? npix - off : BLOCK);
        load_pred(&req->prediction, base + off, n, x);
        load_target(req, base + off, n, y, m);
        for (int k = 0; k < n; k++) {
            if (m[k] == 0) {
                continue;
            }
            double logit = x[k];
            if (req->pred_type != SL_PRED_LOGITS) {
                double pr =
                    req->prediction.dtype == SL_DT_U8 && req->pred_type == SL_PRED_PROBABILITIES
                        ? x[k] / 255.0
                        : x[k];
                pr = pr < SL_EPS ? SL_EPS : (pr > 1 - SL_EPS ? 1 - SL_EPS : pr);
                logit = log(pr) - log1p(-pr);
            }
            double sign = y[k] > 0 ? 1.0 : -1.0;
            v[n_out].e = 1.0 - logit * sign;
            v[n_out].y = y[k] > 0;
            n_out++;
        }
    }
    return n_out;
}

static void image_task(void *arg, int64_t i)
{
    struct plan *pl = arg;
    pass_image(pl, i);
    if (pl->need_lovasz_img) {
        int64_t npix = pl->g->pixels;
        struct sl__ey *v = malloc(sizeof *v * (size_t)(npix > 0 ? npix : 1));
        if (!v) {
            pl->accs[i].oom = true;
            return;
        }
        pl->accs[i].lovasz = sl__lovasz_hinge_flat(v, lovasz_errors(pl, i, v));
        free(v);
    }
}

/* A ratio num/den whose zero denominator scores 1 (API.md: empty on empty is perfect). */
static double ratio1(double num, double den)
{
    return den == 0 ? 1.0 : num / den;
}

/* Region loss of one set of sums (an image's, or the batch's pooled). */
static double region_loss(const struct sl_spec *s, double count, double sp, double sy, double spy,
                          double sp2)
{
    (void)count;
    double score, value;
    bool use_log;
    switch ((enum sl_loss_kind)s->def->kind) {
    case SL_LOSS_DICE: {
        double sm = s->values[SL_P_DICE_SMOOTH].num;
        double den = (s->values[SL_P_DICE_SQUARED].b ? sp2 : sp) + sy + sm;
        score = ratio1(2 * spy + sm, den);
        use_log = s->values[SL_P_DICE_LOG].b;
        return use_log ? -log(fmax(score, SL_LOG_FLOOR)) : 1 - score;
    }
    case SL_LOSS_JACCARD: {
        double sm = s->values[SL_P_JAC_SMOOTH].num;
        score = ratio1(spy + sm, sp + sy - spy + sm);
        use_log = s->values[SL_P_JAC_LOG].b;
        return use_log ? -log(fmax(score, SL_LOG_FLOOR)) : 1 - score;
    }
    case SL_LOSS_TVERSKY: {
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
        double sm = s->values[SL_P_TV_SMOOTH].num;
        double fp = sp - spy, fn = sy - spy;
        score = ratio1(spy + sm, spy + a * fp + b * fn + sm);
        value = s->values[SL_P_TV_LOG].b ? -log(fmax(score, SL_LOG_FLOOR)) : 1 - score;
        /* focal Tversky (Abraham & Khan 2019; smp: loss ** gamma) */
        return pow(fmax(value, 0.0), s->values[SL_P_TV_GAMMA].num);
    }
    default:
        return NAN;
    }
}

/* Pixel-loss sum of one image under spec s; beta_batch is the batch's mean(1-y). */
static double pixel_sum(const struct plan *pl, const struct sl_spec *s, const struct acc *a,
                        double beta_batch)
{
    switch ((enum sl_loss_kind)s->def->kind) {
    case SL_LOSS_CROSS_ENTROPY:
        return a->ce_pos + a->ce_neg;
    case SL_LOSS_WEIGHTED_CE:
        return s->values[SL_P_WCE_BETA].num * a->ce_pos + a->ce_neg;
    case SL_LOSS_BALANCED_CE: {
        const struct sl_value *v = &s->values[SL_P_BCE_BETA];
        double beta;
        if (v->kind == SL_V_NUMBER) {
            beta = v->num;
        } else if (v->choice == SL_BETA_AUTO) {
            beta = beta_batch;
        } else {
            beta = a->count > 0 ? (a->count - a->sy) / a->count : 0.0;
        }
        return beta * a->ce_pos + (1 - beta) * a->ce_neg;
    }
    case SL_LOSS_FOCAL: {
        int f = 0;
        double g = s->values[SL_P_FOCAL_GAMMA].num;
        while (f < pl->nfocal && pl->focal_gamma[f] != g) {
            f++;
        }
        const struct sl_value *alpha = &s->values[SL_P_FOCAL_ALPHA];
        if (alpha->kind == SL_V_NULL) {
            return a->focal_pos[f] + a->focal_neg[f];
        }
        return alpha->num * a->focal_pos[f] + (1 - alpha->num) * a->focal_neg[f];
    }
    default:
        return NAN;
    }
}

static int reduction_of(const struct sl_spec *s)
{
    switch ((enum sl_loss_kind)s->def->kind) {
    case SL_LOSS_CROSS_ENTROPY:
        return s->values[SL_P_REDUCTION].choice;
    case SL_LOSS_WEIGHTED_CE:
        return s->values[SL_P_WCE_REDUCTION].choice;
    case SL_LOSS_BALANCED_CE:
        return s->values[SL_P_BCE_REDUCTION].choice;
    case SL_LOSS_FOCAL:
        return s->values[SL_P_FOCAL_REDUCTION].choice;
    default:
        return SL_RED_MEAN;
    }
}

struct batch_sums {
    double count, sp, sy, spy, sp2;
    double beta_auto; /* mean(1-y) over the batch's counted pixels */
    double lovasz_batch;
};

/* Fills per_image[N] and returns the batch value of loss s; *has_per_image is false when the
 * loss pools the whole batch. */
static double loss_values(const struct plan *pl, const struct sl_spec *s,
                          const struct batch_sums *b, double *per_image, bool *has_per_image)
{
    const int64_t N = pl->g->images;
    *has_per_image = true;
    switch ((enum sl_loss_kind)s->def->kind) {
    case SL_LOSS_CROSS_ENTROPY:
    case SL_LOSS_WEIGHTED_CE:
    case SL_LOSS_BALANCED_CE:
    case SL_LOSS_FOCAL: {
        /* image: mean over its counted pixels; batch: mean over all counted pixels (a fully
         * ignored image is 0 and adds no pixels) */
        bool sum = reduction_of(s) == SL_RED_SUM;
        double total = 0;
        for (int64_t i = 0; i < N; i++) {
            const struct acc *a = &pl->accs[i];
            double v = pixel_sum(pl, s, a, b->beta_auto);
            total += v;
            per_image[i] = sum ? v : (a->count > 0 ? v / a->count : 0.0);
        }
        return sum ? total : (b->count > 0 ? total / b->count : 0.0);
    }
    case SL_LOSS_DICE:
    case SL_LOSS_JACCARD:
    case SL_LOSS_TVERSKY: {
        int pi = s->def->kind == SL_LOSS_DICE      ? SL_P_DICE_PER_IMAGE
                 : s->def->kind == SL_LOSS_JACCARD ? SL_P_JAC_PER_IMAGE
                                                   : SL_P_TV_PER_IMAGE;
        double total = 0;
        for (int64_t i = 0; i < N; i++) {
            const struct acc *a = &pl->accs[i];
            per_image[i] = region_loss(s, a->count, a->sp, a->sy, a->spy, a->sp2);
            total += per_image[i];
        }
        if (s->values[pi].b) {
            return N > 0 ? total / (double)N : 0.0;
        }
        *has_per_image = false;
        return region_loss(s, b->count, b->sp, b->sy, b->spy, b->sp2);
    }
    case SL_LOSS_LOVASZ_HINGE: {
        if (!s->values[SL_P_LH_PER_IMAGE].b) {
            *has_per_image = false;
            return b->lovasz_batch;
        }
        double total = 0;
        for (int64_t i = 0; i < N; i++) {
            per_image[i] = pl->accs[i].lovasz;
            total += per_image[i];
        }
        return N > 0 ? total / (double)N : 0.0;
    }
    case SL_LOSS_COMBO: {
        double value = 0;
        double *tmp = malloc(sizeof(double) * (size_t)(N > 0 ? N : 1));
        if (!tmp) {
            return NAN;
        }
        for (int64_t i = 0; i < N; i++) {
            per_image[i] = 0;
        }
        for (int t = 0; t < s->nterms; t++) {
            const struct sl_spec *term = &s->terms[t];
            bool term_per_image;
            value += term->weight * loss_values(pl, term, b, tmp, &term_per_image);
            if (!term_per_image) {
                *has_per_image = false; /* a pooled term has no per-image value to add */
            }
            for (int64_t i = 0; i < N; i++) {
                per_image[i] += term->weight * tmp[i];
            }
        }
        free(tmp);
        return value;
    }
    }
    return NAN;
}

/* Value of a confusion-matrix metric. A ratio with a zero denominator takes the `empty` value
 * when prediction and target agree (FP = FN = 0: both masks empty, nothing to find and nothing
 * found); otherwise it is 0, the worst score (scikit-learn's zero_division=0). */
double sl__metric_value(const struct sl_spec *spec, const struct sl_confusion *c, enum sl_empty e)
{
    const double tp = (double)c->tp, fp = (double)c->fp, fn = (double)c->fn, tn = (double)c->tn;
    const double empty = e == SL_EMPTY_ONE ? 1.0 : e == SL_EMPTY_ZERO ? 0.0 : NAN;
    const double degenerate = (c->fp == 0 && c->fn == 0) ? empty : 0.0;
#define RATIO(num, den) ((den) == 0 ? degenerate : (num) / (den))
    switch ((enum sl_metric_kind)spec->def->kind) {
    case SL_METRIC_DICE:
        return RATIO(2 * tp, 2 * tp + fp + fn);
    case SL_METRIC_IOU:
        return RATIO(tp, tp + fp + fn);
    case SL_METRIC_PRECISION:
        return RATIO(tp, tp + fp);
    case SL_METRIC_RECALL:
        return RATIO(tp, tp + fn);
    case SL_METRIC_SPECIFICITY:
        return RATIO(tn, tn + fp);
    case SL_METRIC_ACCURACY:
        return RATIO(tp + tn, tp + tn + fp + fn);
    case SL_METRIC_BALANCED_ACCURACY:
        return (RATIO(tp, tp + fn) + RATIO(tn, tn + fp)) / 2;
    case SL_METRIC_MCC: {
        double den = sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
        return RATIO(tp * tn - fp * fn, den);
    }
    case SL_METRIC_FBETA: {
        double b2 = spec->values[SL_P_FBETA_BETA].num * spec->values[SL_P_FBETA_BETA].num;
        return RATIO((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp);
    }
    case SL_METRIC_CONFUSION:
        return NAN;
    }
#undef RATIO
    return NAN;
}

static void metric_values(const struct plan *pl, struct sl_metric_result *r)
{
    const int64_t N = pl->g->images;
    const struct sl_spec *s = r->spec;
    enum sl_empty e = pl->req->empty;
    struct sl_confusion total = {0, 0, 0, 0};
    double sum = 0;
    int defined = 0;
    r->undefined = 0;
    for (int64_t i = 0; i < N; i++) {
        const struct sl_confusion *c = &pl->accs[i].cm;
        total.tp += c->tp;
        total.fp += c->fp;
        total.fn += c->fn;
        total.tn += c->tn;
        if (s->def->kind == SL_METRIC_CONFUSION) {
            r->counts[i] = *c;
            r->per_image[i] = NAN;
            continue;
        }
        double v = sl__metric_value(s, c, e);
        r->per_image[i] = v;
        if (isnan(v)) {
            r->undefined++;
        } else {
            sum += v;
            defined++;
        }
    }
    r->total = total;
    if (s->def->kind == SL_METRIC_CONFUSION) {
        r->mean = NAN;
        r->global = NAN;
        return;
    }
    r->mean = defined ? sum / defined : NAN;
    r->global = sl__metric_value(s, &total, e);
}

int sl__score_binary(const struct sl_request *req, const struct sl__geom *g, struct sl_pool *pool,
                     struct sl_result *res, char *msg, size_t msglen)
{
    struct plan pl;
    struct batch_sums b;
    int rc = 0;
    memset(&pl, 0, sizeof pl);
    memset(&b, 0, sizeof b);
    pl.req = req;
    pl.g = g;
    pl.need_cm = req->nmetrics > 0;
    /* logit(threshold) in double; 0 -> -inf (all positive), 1 -> +inf */
    pl.thr_logit = log(req->threshold) - log1p(-req->threshold);
    for (int i = 0; i < req->nlosses; i++) {
        rc = plan_loss(&pl, &req->losses[i]);
        if (rc) {
            snprintf(msg, msglen, "losses: more than %d distinct focal gammas", MAX_FOCAL);
            return rc;
        }
    }
    pl.accs = calloc((size_t)(g->images > 0 ? g->images : 1), sizeof *pl.accs);
    if (!pl.accs) {
        snprintf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    sl_pool_parallel_for(pool, g->images, image_task, &pl);
    for (int64_t i = 0; i < g->images; i++) {
        const struct acc *a = &pl.accs[i];
        if (a->oom) {
            snprintf(msg, msglen, "out of memory for the Lovász sort of image %lld", (long long)i);
            rc = SL_ENOMEM;
            goto out;
        }
        b.count += a->count;
        b.sp += a->sp;
        b.sy += a->sy;
        b.spy += a->spy;
        b.sp2 += a->sp2;
    }
    b.beta_auto = b.count > 0 ? (b.count - b.sy) / b.count : 0.0;
    if (pl.need_lovasz_batch) {
        int64_t total = g->images * g->pixels;
        struct sl__ey *v = malloc(sizeof *v * (size_t)(total > 0 ? total : 1));
        if (!v) {
            snprintf(msg, msglen, "out of memory for the Lovász sort");
            rc = SL_ENOMEM;
            goto out;
        }
        int64_t n = 0;
        for (int64_t i = 0; i < g->images; i++) {
            n += lovasz_errors(&pl, i, v + n);
        }
        b.lovasz_batch = sl__lovasz_hinge_flat(v, n);
        free(v);
    }
    for (int i = 0; i < res->nlosses; i++) {
        struct sl_loss_result *r = &res->losses[i];
        r->value = loss_values(&pl, r->spec, &b, r->per_image, &r->has_per_image);
        if (isnan(r->value)) {
            snprintf(msg, msglen, "out of memory");
            rc = SL_ENOMEM;
            goto out;
        }
    }
    for (int i = 0; i < res->nmetrics; i++) {
        metric_values(&pl, &res->metrics[i]);
    }
out:
    free(pl.accs);
    return rc;
}
