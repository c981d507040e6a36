/* planes.c - binary and multilabel: one fused pass per plane (an image's channel) for every
 * pixel loss, the soft sums and the confusion counts; hinge errors for Lovász. */
#include <math.h>
#include <string.h>

#include "internal.h"

#define BLOCK 1024

/* Loads n <= BLOCK elements of t from offset off as doubles. */
static void load(const struct sl_tensor *t, int64_t off, int n, double *x)
{
    switch (t->dtype) {
    case SL_DT_F16:
    case SL_DT_BF16: {
        float f[BLOCK];
        sl__to_f32(-1, t->dtype, (const uint16_t *)t->data + off, n, f);
        for (int k = 0; k < n; k++) {
            x[k] = f[k];
        }
        return;
    }
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

/* Loads n binary targets from offset off: y = 0/1 (a float target: its value in [0, 1] as
 * given, a soft target), m = 1 counted / 0 ignored. */
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
    /* validation let a float target through only with values in [0, 1] (or ignore_index) */
    const bool soft = sl__dtype_is_float(t->dtype);
    for (int k = 0; k < n; k++) {
        double v = sl_tensor_get(t, off + k);
        bool ignored = req->has_ignore && v == (double)req->ignore_index;
        m[k] = ignored ? 0.0 : 1.0;
        y[k] = ignored ? 0.0 : soft ? v : v == 1 ? 1.0 : 0.0;
    }
}

/* A target read by load_target as a hard label: a soft one is positive from 0.5 on (MONAI's
 * AsDiscrete(threshold=0.5), y >= 0.5); 0/1 targets are themselves. */
static bool hard_label(double y)
{
    return y >= 0.5;
}

/* Element offsets of plane (i, c) in the prediction, the target and the weight map. */
static void plane_offsets(const struct sl__plan *pl, int64_t i, int64_t c, int64_t *pred,
                          int64_t *tgt, int64_t *w)
{
    const struct sl__geom *g = pl->g;
    *pred = (i * g->classes + c) * g->pixels;
    *tgt = g->target_has_c ? *pred : i * g->pixels;
    *w = g->weight_has_c ? *pred : i * g->pixels;
}

/* Loads pixels [off, off + n) of a plane whose prediction, target and weight start at po, to
 * and wo: predictions x (uint8 probabilities scaled to [0, 1]), targets y with counted flags m,
 * and weights w (all 1 without a weight map; w NULL: not wanted). */
static void load_block(const struct sl_request *req, int64_t po, int64_t to, int64_t wo,
                       int64_t off, int n, double *x, double *y, double *m, double *w)
{
    load(&req->prediction, po + off, n, x);
    if (req->pred_type == SL_PRED_PROBABILITIES && req->prediction.dtype == SL_DT_U8) {
        for (int k = 0; k < n; k++) {
            x[k] /= 255.0;
        }
    }
    load_target(req, to + off, n, y, m);
    if (!w) {
        return;
    }
    if (req->weight.data) {
        load(&req->weight, wo + off, n, w);
    } else {
        for (int k = 0; k < n; k++) {
            w[k] = 1.0;
        }
    }
}

/* Target bytes the fused kernel reads for pixels [off, off + n) of the target from offset to:
 * the tensor's own bytes (uint8, bool), else codes 0, 1 and 2 = ignored written into buf. */
static const uint8_t *fast_targets(const struct sl_request *req, int64_t to, int64_t off, int n,
                                   uint8_t *buf)
{
    const struct sl_tensor *t = &req->target;
    if (t->dtype == SL_DT_U8 || t->dtype == SL_DT_BOOL) {
        return (const uint8_t *)t->data + to + off;
    }
    for (int k = 0; k < n; k++) {
        double v = sl_tensor_get(t, to + off + k);
        buf[k] = req->has_ignore && v == (double)req->ignore_index ? 2 : v == 1;
    }
    return buf;
}

/* Label smoothing on the fused pass: sum of w (2y - 1) x over the counted pixels of in (target
 * codes 0 and 1; other bytes are the kernel's to report). With logits, -log p = -log(1-p) - x,
 * so the CE of y smoothed to a + (1 - 2a) y is the CE of y plus a (2y - 1) x per pixel: the
 * plane's logs of every pixel add up to 2 CE + this sum (struct sl__acc lp_all). Accuracy: a
 * pixel's smoothed CE is at least (1 - a) times its CE (CE >= |x|), so the kernel's 7.5e-7 on
 * the CE becomes 7.5e-7 / (1 - a), 1.5e-6 at most for a <= 1/2; run.c fast_ok sends a > 1/2
 * to the double pass. The sum itself is in double (x, w are floats). */
static double signed_logit_sum(const struct sl__fused_in *in)
{
    /* branch-free (targets are random to the branch predictor), four sums side by side */
    double s[4] = {0, 0, 0, 0};
    const int64_t n = in->n;
    for (int64_t k = 0; k < n; k += 4) {
        for (int j = 0; j < 4 && k + j < n; j++) {
            const int t = in->t[k + j];
            const double sign = (double)(((t == 1) - (t == 0)) * (t != in->ign));
            const double wk = in->w ? (double)in->w[k + j] : 1.0;
            s[j] += wk * sign * (double)in->x[k + j];
        }
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* The fused float32 kernel over pixels [off, off + len) of a plane (pl->fast): float32 tensors
 * read in place, float16 and bfloat16 ones (predictions, weights) widened per block. */
static void pass_fast(const struct sl__plan *pl, int64_t po, int64_t to, int64_t wo, int64_t off,
                      int64_t len, struct sl__acc *a)
{
    const struct sl_request *req = pl->req;
    const bool u8 = req->target.dtype == SL_DT_U8 || req->target.dtype == SL_DT_BOOL;
    const enum sl_dtype pdt = req->prediction.dtype, wdt = req->weight.dtype;
    const bool f32 = pdt == SL_DT_F32, wf32 = !req->weight.data || wdt == SL_DT_F32;
    struct sl__fused_out o[SL_MAX_FOCAL];
    struct sl__fused_in in;
    double sx = 0;
    memset(o, 0, sizeof o);
    memset(&in, 0, sizeof in);
    in.ign = !req->has_ignore                                     ? -1
             : !u8                                                ? 2
             : req->ignore_index >= 0 && req->ignore_index <= 255 ? (int)req->ignore_index
                                                                  : -1;
    in.thr = pl->thr_f;
    /* whole range at once when the kernel reads the tensors directly, else per block */
    const int64_t step = f32 && u8 && wf32 ? len : BLOCK;
    for (int64_t b = off; b < off + len; b += step) {
        const int n = (int)(off + len - b < step ? off + len - b : step);
        float xb[BLOCK], wb[BLOCK];
        uint8_t tb[BLOCK];
        if (f32) {
            in.x = (const float *)req->prediction.data + po + b;
        } else {
            sl__to_f32(-1, pdt, (const uint16_t *)req->prediction.data + po + b, n, xb);
            in.x = xb;
        }
        if (!req->weight.data) {
            in.w = NULL;
        } else if (wf32) {
            in.w = (const float *)req->weight.data + wo + b;
        } else {
            sl__to_f32(-1, wdt, (const uint16_t *)req->weight.data + wo + b, n, wb);
            in.w = wb;
        }
        in.t = fast_targets(req, to, b, n, tb);
        in.n = n;
        if (pl->need_ce_all) {
            sx += signed_logit_sum(&in);
        }
        /* the first call computes everything and the first focal gamma, the others one gamma
         * each */
        for (int f = 0; f < (pl->nfocal > 1 ? pl->nfocal : 1); f++) {
            in.what = f == 0 ? pl->fast_what : 0;
            if (f < pl->nfocal) {
                in.gamma = (float)pl->focal_gamma[f];
                in.what |= pl->focal_gamma[f] == 2 ? SL_FZ_FOCAL_SQ : SL_FZ_FOCAL_EXP;
            }
            in.what |= SL_FZ_W;
            sl__fused_logits(-1, &in, &o[f]);
        }
    }
    a->count += o[0].count;
    a->ce_pos += o[0].ce_pos;
    a->ce_neg += o[0].ce_neg;
    a->sp += o[0].sp;
    a->sy += o[0].sy;
    a->spy += o[0].spy;
    a->sp2 += o[0].sp2;
    if (pl->need_ce_all) {
        /* both logs of every pixel, as their sum (signed_logit_sum) */
        a->lp_all += 2 * (o[0].ce_pos + o[0].ce_neg) + sx;
    }
    for (int f = 0; f < pl->nfocal; f++) {
        a->focal_pos[f] += o[f].f_pos;
        a->focal_neg[f] += o[f].f_neg;
    }
    /* every counted pixel is in exactly one cell: tp + fn = sy, tp + fp = sum h */
    const int64_t tp = (int64_t)o[0].tp, sh = (int64_t)o[0].sh, sy = (int64_t)o[0].sy;
    a->cm.tp += tp;
    a->cm.fp += sh - tp;
    a->cm.fn += sy - tp;
    a->cm.tn += (int64_t)o[0].count - sh - (sy - tp);
    a->invalid = a->invalid || o[0].bad;
}

void sl__pass_range(const struct sl__plan *pl, int64_t i, int64_t c, int64_t start, int64_t len,
                    struct sl__acc *a)
{
    const struct sl_request *req = pl->req;
    double x[BLOCK], y[BLOCK], m[BLOCK], w[BLOCK], p[BLOCK], lp[BLOCK], l1p[BLOCK];
    const bool logits = req->pred_type == SL_PRED_LOGITS;
    const bool need_logs = pl->need_ce || pl->nfocal > 0;
    int64_t po, to, wo;
    plane_offsets(pl, i, c, &po, &to, &wo);
    if (pl->fast) {
        pass_fast(pl, po, to, wo, start, len, a);
        return;
    }
    for (int64_t off = start; off < start + len; off += BLOCK) {
        int n = (int)(start + len - off < BLOCK ? start + len - off : BLOCK);
        load_block(req, po, to, wo, off, n, x, y, m, w);
        if (logits && need_logs) {
            for (int k = 0; k < n; k++) {
                /* stable: log p = -(log(1+e^-|x|) + max(-x, 0)), log(1-p) = -(.. + max(x, 0)) */
                double s = log1p(exp(-fabs(x[k])));
                lp[k] = -(s + (x[k] < 0 ? -x[k] : 0.0));
                l1p[k] = -(s + (x[k] > 0 ? x[k] : 0.0));
                p[k] = exp(lp[k]);
            }
        } else if (logits) {
            if (pl->need_soft) {
                for (int k = 0; k < n; k++) {
                    /* e/(1+e), e = e^-|x|, below 0: positive down to x = -745 (as exp(lp)
                     * above and the float32 kernel), where 1/(1+e^-x) would overflow to 0 */
                    const double e = exp(-fabs(x[k]));
                    p[k] = x[k] >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
                }
            }
        } else {
            for (int k = 0; k < n; k++) {
                p[k] = x[k];
                if (need_logs) {
                    /* Keras: p clipped to [eps, 1 - eps] before the log */
                    double cp = sl__clip(p[k]);
                    lp[k] = log(cp);
                    l1p[k] = log1p(-cp);
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
        if (pl->need_ce_all) {
            double la = 0, l1a = 0;
            for (int k = 0; k < n; k++) {
                double mw = m[k] * w[k];
                la -= mw * lp[k];
                l1a -= mw * l1p[k];
            }
            a->lp_all += la;
            a->l1p_all += l1a;
        }
        for (int f = 0; f < pl->nfocal; f++) {
            /* (1-p)^gamma = exp(gamma log(1-p)): MONAI's exp(gamma * logsigmoid(-x)) form */
            double gm = pl->focal_gamma[f], fp = 0, fn = 0;
            for (int k = 0; k < n; k++) {
                double mw = m[k] * w[k];
                if (y[k] > 0) {
                    fp -= mw * exp(gm * l1p[k]) * lp[k];
                } else {
                    fn -= mw * exp(gm * lp[k]) * l1p[k];
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
                bool t = hard_label(y[k]);
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

bool sl__hinge_items_ok(const struct sl__plan *pl)
{
    const struct sl_request *req = pl->req;
    return req->pred_type == SL_PRED_LOGITS && req->prediction.dtype == SL_DT_F32 &&
           (req->target.dtype == SL_DT_U8 || req->target.dtype == SL_DT_BOOL);
}

int64_t sl__hinge_items(const struct sl__plan *pl, int64_t i, int64_t c, uint64_t *v, int64_t *gts)
{
    const struct sl_request *req = pl->req;
    const int64_t npix = pl->g->pixels;
    int64_t n_out = 0, pos = 0, po, to, wo;
    plane_offsets(pl, i, c, &po, &to, &wo);
    const float *x = (const float *)req->prediction.data + po;
    const uint8_t *t = (const uint8_t *)req->target.data + to;
    const int ign = req->has_ignore && req->ignore_index >= 0 && req->ignore_index <= 255
                        ? (int)req->ignore_index
                        : -1;
    for (int64_t k = 0; k < npix; k++) {
        /* Berman et al.: errors = 1 - logits * signs, signs = 2y - 1; as k = -logit * sign the
         * error is 1 + k, > 0 iff k > -1 */
        const bool counted = t[k] != ign, fg = counted && t[k] == 1;
        const float kf = fg ? -x[k] : x[k];
        pos += fg;
        v[n_out] = (uint64_t)sl__key_desc(kf) << 32 | (uint64_t)fg;
        n_out += counted && kf > -1.0f;
    }
    *gts += pos;
    return n_out;
}

int64_t sl__hinge_errors(const struct sl__plan *pl, int64_t i, int64_t c, struct sl__ey *v,
                         int64_t *gts)
{
    const struct sl_request *req = pl->req;
    const int64_t npix = pl->g->pixels;
    double x[BLOCK], y[BLOCK], m[BLOCK];
    int64_t n_out = 0, pos = 0, po, to, wo;
    plane_offsets(pl, i, c, &po, &to, &wo);
    for (int64_t off = 0; off < npix; off += BLOCK) {
        int n = (int)(npix - off < BLOCK ? npix - off : BLOCK);
        load_block(req, po, to, wo, off, n, x, y, m, NULL);
        for (int k = 0; k < n; k++) {
            if (m[k] == 0) {
                continue;
            }
            double logit = x[k];
            if (req->pred_type != SL_PRED_LOGITS) {
                /* probabilities and labels: the logit of the clipped probability */
                double pr = sl__clip(x[k]);
                logit = log(pr) - log1p(-pr);
            }
            /* Berman et al.: errors = 1 - logits * signs, signs = 2y - 1 */
            const double e = 1.0 - logit * (y[k] > 0 ? 1.0 : -1.0);
            pos += y[k] > 0;
            v[n_out].e = e;
            v[n_out].y = y[k] > 0;
            n_out += e > 0;
        }
    }
    *gts += pos;
    return n_out;
}

void sl__plane_masks(const struct sl__plan *pl, int64_t i, int64_t c, const int *arg, uint8_t *pred,
                     uint8_t *tgt)
{
    const struct sl_request *req = pl->req;
    const int64_t npix = pl->g->pixels;
    const bool mc = pl->g->mode == SL_MODE_MULTICLASS;
    double x[BLOCK], y[BLOCK], m[BLOCK];
    int64_t po, to, wo;
    plane_offsets(pl, i, c, &po, &to, &wo);
    for (int64_t off = 0; off < npix; off += BLOCK) {
        int n = (int)(npix - off < BLOCK ? npix - off : BLOCK);
        if (mc) {
            /* target class c; ignored pixels are background in both masks */
            for (int k = 0; k < n; k++) {
                double v = sl_tensor_get(&req->target, i * npix + off + k);
                bool ignored = req->has_ignore && v == (double)req->ignore_index;
                tgt[off + k] = !ignored && v == (double)c;
                pred[off + k] = !ignored && arg[off + k] == c;
            }
            continue;
        }
        load_block(req, po, to, wo, off, n, x, y, m, NULL);
        for (int k = 0; k < n; k++) {
            bool h;
            if (req->pred_type == SL_PRED_LOGITS) {
                h = x[k] >= pl->thr_logit;
            } else if (req->pred_type == SL_PRED_LABELS) {
                h = x[k] != 0;
            } else {
                h = x[k] >= req->threshold;
            }
            pred[off + k] = m[k] != 0 && h;
            tgt[off + k] = m[k] != 0 && hard_label(y[k]);
        }
    }
}

double sl__mapped_ce_sum(const struct sl__plan *pl, int64_t i, int64_t c, const float *map)
{
    const struct sl_request *req = pl->req;
    const int64_t npix = pl->g->pixels;
    double x[BLOCK], y[BLOCK], m[BLOCK], w[BLOCK];
    double sum = 0;
    int64_t po, to, wo;
    plane_offsets(pl, i, c, &po, &to, &wo);
    for (int64_t off = 0; off < npix; off += BLOCK) {
        int n = (int)(npix - off < BLOCK ? npix - off : BLOCK);
        load_block(req, po, to, wo, off, n, x, y, m, w);
        for (int k = 0; k < n; k++) {
            double lp, l1p;
            if (req->pred_type == SL_PRED_LOGITS) {
                double s = log1p(exp(-fabs(x[k])));
                lp = -(s + (x[k] < 0 ? -x[k] : 0.0));
                l1p = -(s + (x[k] > 0 ? x[k] : 0.0));
            } else {
                double cp = sl__clip(x[k]);
                lp = log(cp);
                l1p = log1p(-cp);
            }
            sum -= m[k] * w[k] * (double)map[off + k] * (y[k] * lp + (1 - y[k]) * l1p);
        }
    }
    return sum;
}

double sl__ce_smoothing(const struct sl_spec *s, bool mc)
{
    const double e = s->values[SL_P_CE_LABEL_SMOOTHING].num;
    const double f = s->values[SL_P_CE_SMOOTH_FACTOR].num;
    if (mc) {
        /* smp label_smoothed_nll_loss's epsilon is PyTorch's label_smoothing */
        return e > 0 ? e : f;
    }
    /* Keras: y (1 - e) + e / 2; smp SoftBCEWithLogitsLoss: (1 - y) f + y (1 - f) */
    return e > 0 ? e / 2 : f;
}

double sl__sum_ce_smooth(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                         const double *beta_auto)
{
    const double a = sl__ce_smoothing(s, false);
    if (a == 0) {
        return sl__sum_ce(pl, s, i, c, beta_auto);
    }
    const struct sl__acc *p = &pl->accs[i * pl->g->classes + c];
    const struct sl_value *cw = &s->values[SL_P_CE_CLASS_WEIGHTS];
    const double wc = cw->kind == SL_V_LIST ? cw->list[c] : 1.0;
    /* y_s = a + (1 - 2a) y and 1 - y_s = a + (1 - 2a)(1 - y): the CE with y_s is a times the
     * logs of every pixel plus (1 - 2a) times the CE with y */
    return wc * (a * (p->lp_all + p->l1p_all) + (1 - 2 * a) * (p->ce_pos + p->ce_neg));
}
