/* softmax.c - multiclass: one fused pass per image computes the softmax once per pixel and, in
 * the same sweep, every class's cross-entropy and focal sums, soft sums, and the confusion
 * counts of the argmax; Lovász-Softmax errors come from the stored probabilities. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BLOCK 256
/* The row stride of a block's class rows, in doubles: rows 2 KiB apart would share two L1 sets
 * (the pass reads all C rows of one pixel at once); 64 bytes more spread them over all sets. */
#define ROW (BLOCK + 8)

/* Loads class indices of n target pixels from offset off: cls = class, m = 1 counted. */
static void load_classes(const struct sl_request *req, int64_t off, int n, int *cls, double *m)
{
    const struct sl_tensor *t = &req->target;
    for (int k = 0; k < n; k++) {
        double v =
            t->dtype == SL_DT_U8 ? ((const uint8_t *)t->data)[off + k] : sl_tensor_get(t, off + k);
        bool ignored = req->has_ignore && v == (double)req->ignore_index;
        m[k] = ignored ? 0.0 : 1.0;
        cls[k] = ignored ? 0 : (int)v;
    }
}

static void load_row(const struct sl_tensor *t, int64_t off, int n, double *x)
{
    if (t->dtype == SL_DT_F32) {
        const float *f = (const float *)t->data + off;
        for (int k = 0; k < n; k++) {
            x[k] = f[k];
        }
        return;
    }
    for (int k = 0; k < n; k++) {
        x[k] = sl_tensor_get(t, off + k);
    }
}

/* log q_y of the distribution q over classes 1..C-1 (y >= 1) from the log-probabilities
 * lp[c * ROW] of all C classes: lp_y - log sum_{c>=1} e^{lp_c}, the max subtracted. On
 * log-softmax values this is the log-softmax of logits 1..C-1 (the common term cancels); on
 * log-clipped probabilities it renormalises classes 1..C-1 to sum 1. */
static double log_softmax_nobg(const double *lp, int64_t C, int y)
{
    double mx = lp[ROW];
    for (int64_t c = 2; c < C; c++) {
        mx = lp[c * ROW] > mx ? lp[c * ROW] : mx;
    }
    double s = 0;
    for (int64_t c = 1; c < C; c++) {
        s += exp(lp[c * ROW] - mx);
    }
    return lp[y * ROW] - (mx + log(s));
}

/* Block of n pixels: x (C rows of ROW, the prediction) becomes p in place and lp log p. */
static void block_probs(double *x, double *lp, int n, int64_t C, bool logits, bool u8prob)
{
    if (logits) {
        /* log-softmax with the max subtracted: lp_c = (x_c - max) - log sum exp(x - max),
         * p_c = exp(x_c - max) / sum (one exp per class) */
        for (int k = 0; k < n; k++) {
            double mx = x[k];
            for (int64_t c = 1; c < C; c++) {
                mx = x[c * ROW + k] > mx ? x[c * ROW + k] : mx;
            }
            double s = 0;
            for (int64_t c = 0; c < C; c++) {
                const double d = x[c * ROW + k] - mx;
                const double ex = exp(d);
                lp[c * ROW + k] = d;
                x[c * ROW + k] = ex;
                s += ex;
            }
            const double ls = log(s);
            for (int64_t c = 0; c < C; c++) {
                lp[c * ROW + k] -= ls;
                x[c * ROW + k] /= s;
            }
        }
        return;
    }
    for (int64_t c = 0; c < C; c++) {
        double *xc = x + c * ROW;
        for (int k = 0; k < n; k++) {
            if (u8prob) {
                xc[k] /= 255.0;
            }
            lp[c * ROW + k] = log(sl__clip(xc[k])); /* Keras clip before the log */
        }
    }
}

/* Cross entropy and focal of a block: the target class's term only (PyTorch cross_entropy),
 * added to the planes a[C]; m: counted (0/1), w: pixel weights, cls: target classes. */
static void block_ce_focal(const struct sl__plan *pl, struct sl__acc *a, const double *x,
                           const double *lp, const double *m, const double *w, const int *cls,
                           int n, int64_t C)
{
    for (int k = 0; k < n; k++) {
        if (m[k] == 0) {
            continue;
        }
        int y = cls[k];
        const double l = lp[y * ROW + k], py = x[y * ROW + k];
        a[y].ce_pos -= w[k] * l;
        if (pl->need_ce_all) {
            /* label smoothing: every class's -log p_c (PyTorch's smooth_loss) */
            for (int64_t c = 0; c < C; c++) {
                a[c].lp_all -= w[k] * lp[c * ROW + k];
            }
        }
        /* MONAI FocalLoss(include_background=False) drops channel 0 before its softmax:
         * a class-0 pixel's one-hot row is then all 0 and adds nothing */
        double lq = 0, qy = 0;
        bool have_q = false;
        for (int f = 0; f < pl->nfocal; f++) {
            double lf = l, pf = py;
            if (pl->focal_nobg[f]) {
                if (y == 0) {
                    continue;
                }
                if (!have_q) {
                    lq = log_softmax_nobg(lp + k, C, y);
                    qy = exp(lq);
                    have_q = true;
                }
                lf = lq;
                pf = qy;
            }
            /* Lin et al. 2017: -(1 - p_t)^gamma log p_t */
            a[y].focal_pos[f] -= w[k] * pow(fmax(1.0 - pf, 0.0), pl->focal_gamma[f]) * lf;
        }
    }
}

/* Hard counts of a block: the argmax, first maximum on ties (numpy, torch), against the target
 * classes, into the planes a[C] and the C x C matrix (NULL: none). */
static void block_confusion(struct sl__acc *a, int64_t *matrix, const double *x, const double *m,
                            const int *cls, int n, int64_t C)
{
    int arg[BLOCK];
    for (int k = 0; k < n; k++) {
        int best = 0;
        double bv = x[k];
        for (int64_t c = 1; c < C; c++) {
            if (x[c * ROW + k] > bv) {
                bv = x[c * ROW + k];
                best = (int)c;
            }
        }
        arg[k] = best;
    }
    for (int k = 0; k < n; k++) {
        if (m[k] == 0) {
            continue;
        }
        int y = cls[k], h = arg[k];
        if (h == y) {
            a[y].cm.tp++;
        } else {
            a[h].cm.fp++;
            a[y].cm.fn++;
        }
        if (matrix) {
            matrix[y * C + h]++;
        }
    }
}

/* The per-image Lovász-Softmax of every class of image i into its planes a[C], the classes
 * side by side on the pool. */
static int image_lovasz(const struct sl__plan *pl, int64_t i, struct sl__acc *a)
{
    const int64_t C = pl->g->classes;
    double *out = malloc(sizeof *out * (size_t)C);
    if (!out) {
        return SL_ENOMEM;
    }
    int rc = sl__lovasz_softmax_classes(pl, pl->pool, i, i + 1, NULL, out);
    for (int64_t c = 0; c < C && rc == 0; c++) {
        a[c].lovasz_fg = a[c].sy > 0;
        a[c].lovasz = out[c];
    }
    free(out);
    return rc;
}

int sl__pass_softmax(const struct sl__plan *pl, int64_t i)
{
    if (pl->mc_fast) {
        return sl__pass_softmax_fast(pl, i);
    }
    const struct sl_request *req = pl->req;
    const int64_t C = pl->g->classes, S = pl->g->pixels;
    const bool logits = req->pred_type == SL_PRED_LOGITS;
    const bool u8prob =
        req->pred_type == SL_PRED_PROBABILITIES && req->prediction.dtype == SL_DT_U8;
    struct sl__acc *a = &pl->accs[i * C];
    int64_t *matrix = pl->matrix ? pl->matrix + i * C * C : NULL;
    double *x = malloc(sizeof(double) * (size_t)(2 * C * ROW));
    if (!x) {
        return SL_ENOMEM;
    }
    double *lp = x + C * ROW; /* log p; x becomes p in place */
    double m[BLOCK], w[BLOCK];
    int cls[BLOCK];
    double count = 0;
    memset(a, 0, sizeof *a * (size_t)C);
    for (int64_t off = 0; off < S; off += BLOCK) {
        int n = (int)(S - off < BLOCK ? S - off : BLOCK);
        for (int64_t c = 0; c < C; c++) {
            load_row(&req->prediction, (i * C + c) * S + off, n, x + c * ROW);
        }
        load_classes(req, i * S + off, n, cls, m);
        if (req->weight.data) {
            load_row(&req->weight, i * S + off, n, w);
        } else {
            for (int k = 0; k < n; k++) {
                w[k] = 1.0;
            }
        }
        for (int k = 0; k < n; k++) {
            count += m[k];
        }
        block_probs(x, lp, n, C, logits, u8prob);
        if (pl->need_ce || pl->nfocal) {
            block_ce_focal(pl, a, x, lp, m, w, cls, n, C);
        }
        if (pl->need_soft) {
            for (int64_t c = 0; c < C; c++) {
                const double *pc = x + c * ROW;
                double sp = 0, sp2 = 0;
                for (int k = 0; k < n; k++) {
                    sp += m[k] * pc[k];
                    sp2 += m[k] * pc[k] * pc[k];
                }
                a[c].sp += sp;
                a[c].sp2 += sp2;
            }
        }
        for (int k = 0; k < n; k++) {
            if (m[k] != 0) {
                a[cls[k]].sy += 1;
                a[cls[k]].spy += x[cls[k] * ROW + k];
            }
        }
        if (pl->need_cm) {
            block_confusion(a, matrix, x, m, cls, n, C);
        }
        if (pl->probs) {
            for (int64_t c = 0; c < C; c++) {
                float *dst = pl->probs + (i * C + c) * S + off;
                for (int k = 0; k < n; k++) {
                    dst[k] = (float)x[c * ROW + k];
                }
            }
        }
    }
    free(x);
    for (int64_t c = 0; c < C; c++) {
        a[c].count = count;
        a[c].cm.tn = (int64_t)count - a[c].cm.tp - a[c].cm.fp - a[c].cm.fn;
    }
    return pl->need_lsm_img ? image_lovasz(pl, i, a) : 0;
}

void sl__softmax_errors(const struct sl__plan *pl, int64_t i, int64_t c, uint32_t *v, int64_t cap,
                        int64_t *nfg, int64_t *nbg, int64_t *gts)
{
    const struct sl_request *req = pl->req;
    const int64_t C = pl->g->classes, S = pl->g->pixels;
    const uint32_t *p = (const uint32_t *)(const void *)(pl->probs + (i * C + c) * S);
    const uint32_t one = 0x3f800000u; /* the bits of 1.0f */
    int64_t nf = *nfg, top = cap - 1 - *nbg, fgs = 0;
    /* Berman et al. lovasz_softmax_flat: errors = |fg - p_c|, those > 0 only. Both slots are
     * written and the one the pixel belongs to kept: with one free slot left they coincide and
     * get the same bits. */
    if (req->target.dtype == SL_DT_U8) {
        const uint8_t *t = (const uint8_t *)req->target.data + i * S;
        const bool ign = req->has_ignore && req->ignore_index >= 0 && req->ignore_index <= 255;
        const uint8_t ig = (uint8_t)(ign ? req->ignore_index : 0);
        for (int64_t k = 0; k < S; k++) {
            if (ign && t[k] == ig) {
                continue;
            }
            const uint32_t b = p[k] & 0x80000000u ? 0 : p[k];
            const bool fg = t[k] == c;
            v[top] = b;
            v[nf] = b;
            fgs += fg;
            nf += fg & (b < one);
            top -= !fg & (b != 0);
        }
    } else {
        double m[BLOCK];
        int cls[BLOCK];
        for (int64_t off = 0; off < S; off += BLOCK) {
            const int n = (int)(S - off < BLOCK ? S - off : BLOCK);
            load_classes(req, i * S + off, n, cls, m);
            for (int k = 0; k < n; k++) {
                if (m[k] == 0) {
                    continue;
                }
                const uint32_t b = p[off + k] & 0x80000000u ? 0 : p[off + k];
                const bool fg = cls[k] == c;
                v[top] = b;
                v[nf] = b;
                fgs += fg;
                nf += fg & (b < one);
                top -= !fg & (b != 0);
            }
        }
    }
    *nfg = nf;
    *nbg = cap - 1 - top;
    *gts += fgs;
}

/* Classes shared out to lanes: each lane takes the next class until none is left, with one
 * scratch for all its classes. */
struct lsm_lanes {
    const struct sl__plan *pl;
    int64_t i0, i1;
    const int64_t *classes;
    int64_t n;
    _Atomic int64_t next;
    _Atomic int rc;
    double *out;
};

/* One lane: classes taken in turn until none is left, their values into L->out; SL_ENOMEM into
 * L->rc when its scratch cannot be had. */
static void lsm_lane(void *arg, int64_t lane)
{
    (void)lane;
    struct lsm_lanes *L = arg;
    const int64_t cap = (L->i1 - L->i0) * L->pl->g->pixels;
    uint32_t *v = NULL; /* cap errors, then cap of sort scratch */
    for (;;) {
        const int64_t k = atomic_fetch_add(&L->next, 1);
        if (k >= L->n) {
            break;
        }
        if (!v && !(v = malloc(sizeof *v * (size_t)(2 * cap > 0 ? 2 * cap : 1)))) {
            atomic_store(&L->rc, SL_ENOMEM);
            break;
        }
        const int64_t c = L->classes[k];
        int64_t nfg = 0, nbg = 0, gts = 0;
        for (int64_t i = L->i0; i < L->i1; i++) {
            sl__softmax_errors(L->pl, i, c, v, cap, &nfg, &nbg, &gts);
        }
        L->out[c] = sl__lovasz_softmax_lists(v, nfg, v + cap - nbg, nbg, gts, v + cap);
    }
    free(v);
}

int sl__lovasz_softmax_classes(const struct sl__plan *pl, struct sl_pool *pool, int64_t i0,
                               int64_t i1, const bool *want, double *out)
{
    const int64_t C = pl->g->classes, cap = (i1 - i0) * pl->g->pixels;
    int64_t *classes = malloc(sizeof *classes * (size_t)C);
    if (!classes) {
        return SL_ENOMEM;
    }
    struct lsm_lanes L = {.pl = pl, .i0 = i0, .i1 = i1, .classes = classes, .out = out};
    for (int64_t c = 0; c < C; c++) {
        if (!want || want[c]) {
            classes[L.n++] = c;
        }
    }
    atomic_init(&L.next, 0);
    atomic_init(&L.rc, 0);
    /* one lane per thread, as many as the classes and the memory allow */
    int64_t lanes = (int64_t)sl_pool_threads(pool) + 1;
    const int64_t fit = SL_LOVASZ_PARALLEL_BYTES / (8 * (cap > 0 ? cap : 1));
    lanes = lanes < L.n ? lanes : L.n;
    lanes = lanes < fit ? lanes : fit > 1 ? fit : 1;
    sl_pool_parallel_for(lanes > 1 ? pool : NULL, lanes, lsm_lane, &L);
    free(classes);
    return atomic_load(&L.rc);
}

void sl__argmax_image(const struct sl__plan *pl, int64_t i, int *arg)
{
    const struct sl_request *req = pl->req;
    const int64_t C = pl->g->classes, S = pl->g->pixels;
    double best[BLOCK], x[BLOCK];
    for (int64_t off = 0; off < S; off += BLOCK) {
        int n = (int)(S - off < BLOCK ? S - off : BLOCK);
        load_row(&req->prediction, (i * C) * S + off, n, best);
        for (int k = 0; k < n; k++) {
            arg[off + k] = 0;
        }
        for (int64_t c = 1; c < C; c++) {
            load_row(&req->prediction, (i * C + c) * S + off, n, x);
            for (int k = 0; k < n; k++) {
                if (x[k] > best[k]) {
                    best[k] = x[k];
                    arg[off + k] = (int)c;
                }
            }
        }
    }
}

void sl__softmax_ce_smooth(const struct sl__plan *pl, const struct sl_spec *s, bool bg, int64_t i,
                           double *num, double *den)
{
    const double e = sl__ce_smoothing(s, true);
    sl__softmax_ce(pl, s, bg, i, num, den);
    if (e == 0) {
        return;
    }
    /* PyTorch cross_entropy with label_smoothing e: (1 - e) nll + (e / C) smooth, smooth the sum
     * over pixels of sum_c w_c (-log p_c), both divided by the same denominator (the counted
     * pixels, or the summed weights of the target classes) */
    const int64_t C = pl->g->classes;
    const struct sl_value *cw = &s->values[SL_P_CE_CLASS_WEIGHTS];
    double smooth = 0;
    for (int64_t c = 0; c < C; c++) {
        smooth += (cw->kind == SL_V_LIST ? cw->list[c] : 1.0) * pl->accs[i * C + c].lp_all;
    }
    *num = (1 - e) * *num + e / (double)C * smooth;
}
