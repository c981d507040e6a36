/* score.c - sl_score(): request validation, mode and shape inference, result lifetime. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void sl_result_free(struct sl_result *res)
{
    if (!res) {
        return;
    }
    for (int i = 0; i < res->nlosses; i++) {
        free(res->losses[i].per_image);
        free(res->losses[i].per_class);
        free(res->losses[i].per_image_class);
    }
    for (int i = 0; i < res->nmetrics; i++) {
        free(res->metrics[i].per_image);
        free(res->metrics[i].per_class);
        free(res->metrics[i].global);
        free(res->metrics[i].counts);
        free(res->metrics[i].total);
        free(res->metrics[i].matrix);
    }
    free(res->losses);
    free(res->metrics);
    free(res);
}

static bool same_dims(const int64_t *a, const int64_t *b, int n)
{
    for (int i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

/* Whether o (target or weight) is [N, *S] or [N, 1, *S] for prediction batch N, spatial sp. */
static bool plain_shape(const struct sl_tensor *o, int64_t n, const int64_t *sp, int ns)
{
    return (o->ndim == ns + 1 && o->shape[0] == n && same_dims(o->shape + 1, sp, ns)) ||
           (o->ndim == ns + 2 && o->shape[0] == n && o->shape[1] == 1 &&
            same_dims(o->shape + 2, sp, ns));
}

/* Whether axis 1 of the prediction is a channel axis (README "Shapes and
 * layouts"): spacing, when given, has one value per spatial axis, so the axes after N are
 * either exactly the spatial ones ([N, *S], binary) or a channel axis and them; without it,
 * binary [N, 1, *S] has one and binary [N, *S] (3-D, or 4-D with mode binary) has none, and
 * multiclass and multilabel always have one. */
static bool channel_axis(const struct sl_request *req, enum sl_mode mode)
{
    const struct sl_tensor *p = &req->prediction;
    if (req->nspacing) {
        return p->ndim - 1 != req->nspacing;
    }
    return mode != SL_MODE_BINARY || (p->ndim >= 4 && p->shape[1] == 1);
}

/* A shape the spacing contradicts: 0, or SL_ESHAPE with a message naming spacing. */
static int check_spacing_layout(const struct sl_request *req, enum sl_mode mode, char *msg,
                                size_t msglen)
{
    const struct sl_tensor *p = &req->prediction;
    const int s = req->nspacing, k = p->ndim - 1;
    char ps[96];
    if (!s) {
        return 0;
    }
    sl_format_shape(p->shape, p->ndim, ps, sizeof ps);
    if (k != s && k != s + 1) {
        snprintf(msg, msglen,
                 "spacing: has %d values but prediction %s has %d axes after N; spacing gives one "
                 "value per spatial axis ([N, *S] or [N, C, *S] with %d spatial axes)",
                 s, ps, k < 0 ? 0 : k, s);
        return SL_ESHAPE;
    }
    if (k == s && mode != SL_MODE_BINARY) {
        snprintf(msg, msglen,
                 "spacing: has %d values, so prediction %s has no channel axis, but %s mode takes "
                 "[N, C, *S] (with %d spacings: %d axes after N)",
                 s, ps, sl_mode_name(mode), s, s + 1);
        return SL_ESHAPE;
    }
    if (k == s + 1 && mode == SL_MODE_BINARY && p->shape[1] != 1) {
        snprintf(msg, msglen,
                 "spacing: has %d values, so axis 1 of prediction %s is a channel axis of %lld, "
                 "but binary mode takes C = 1 ([N, *S] or [N, 1, *S])",
                 s, ps, (long long)p->shape[1]);
        return SL_ESHAPE;
    }
    return 0;
}

/* Shapes per mode (README): binary prediction [N, *S] or [N, 1, *S], target and weight
 * [N, *S] or [N, 1, *S]; multiclass prediction [N, C, *S] (C >= 2), target and weight [N, *S]
 * or [N, 1, *S]; multilabel prediction and target [N, C, *S], weight [N, *S], [N, 1, *S] or
 * [N, C, *S]. Which axes are spatial: channel_axis. */
static int geometry(const struct sl_request *req, enum sl_mode mode, struct sl__geom *g, char *msg,
                    size_t msglen)
{
    const struct sl_tensor *p = &req->prediction, *t = &req->target, *w = &req->weight;
    char ps[96], ts[96], ws[96];
    int64_t sp[SL_MAX_DIMS];
    int ns;
    sl_format_shape(p->shape, p->ndim, ps, sizeof ps);
    sl_format_shape(t->shape, t->ndim, ts, sizeof ts);
    memset(g, 0, sizeof *g);
    g->mode = mode;
    g->classes = 1;
    int rc = check_spacing_layout(req, mode, msg, msglen);
    if (rc) {
        return rc;
    }
    if (!channel_axis(req, mode)) {
        ns = p->ndim - 1;
        memcpy(sp, p->shape + 1, sizeof(int64_t) * (size_t)(ns > 0 ? ns : 0));
    } else {
        ns = p->ndim - 2;
        memcpy(sp, p->shape + 2, sizeof(int64_t) * (size_t)(ns > 0 ? ns : 0));
        g->classes = p->ndim >= 2 ? p->shape[1] : 1;
    }
    if (ns < 2 || ns > 3) {
        snprintf(msg, msglen,
                 "prediction: shape %s has %d spatial dimensions; %s mode takes %s with 2 or 3 "
                 "spatial dimensions",
                 ps, ns < 0 ? 0 : ns, sl_mode_name(mode),
                 mode == SL_MODE_BINARY ? "[N, *S] or [N, 1, *S]" : "[N, C, *S]");
        return SL_ESHAPE;
    }
    if (mode == SL_MODE_MULTICLASS && g->classes < 2) {
        snprintf(msg, msglen, "prediction: shape %s has C = %lld; multiclass needs C >= 2", ps,
                 (long long)g->classes);
        return SL_ESHAPE;
    }
    /* the limits come before the shape checks: a request over one is refused as such */
    const int64_t n = p->shape[0];
    if (req->max_images > 0 && n > req->max_images) {
        snprintf(msg, msglen, "prediction has %lld images, over the limit of %lld (--max-images)",
                 (long long)n, (long long)req->max_images);
        return SL_ETOOLARGE;
    }
    const int64_t cmax = req->max_classes > 0 && req->max_classes < SL_MAX_CLASSES
                             ? req->max_classes
                             : SL_MAX_CLASSES;
    if (g->classes > cmax) {
        snprintf(msg, msglen, "prediction has %lld classes, over the limit of %lld (--max-classes)",
                 (long long)g->classes, (long long)cmax);
        return SL_ETOOLARGE;
    }
    bool tok = mode == SL_MODE_MULTILABEL
                   ? t->ndim == p->ndim && same_dims(t->shape, p->shape, p->ndim)
                   : plain_shape(t, n, sp, ns);
    if (!tok) {
        snprintf(msg, msglen,
                 "target: shape %s does not fit prediction %s (%s mode: target %s with N = %lld)",
                 ts, ps, sl_mode_name(mode),
                 mode == SL_MODE_MULTILABEL ? "[N, C, *S], the prediction's shape"
                                            : "[N, *S] or [N, 1, *S]",
                 (long long)n);
        return SL_ESHAPE;
    }
    g->target_has_c = mode == SL_MODE_MULTILABEL;
    if (w->data) {
        bool wc = mode == SL_MODE_MULTILABEL && w->ndim == p->ndim &&
                  same_dims(w->shape, p->shape, p->ndim);
        if (!wc && !plain_shape(w, n, sp, ns)) {
            sl_format_shape(w->shape, w->ndim, ws, sizeof ws);
            snprintf(msg, msglen,
                     "weight: shape %s does not fit prediction %s (expected [N, *S] or "
                     "[N, 1, *S]%s)",
                     ws, ps, mode == SL_MODE_MULTILABEL ? " or [N, C, *S]" : "");
            return SL_ESHAPE;
        }
        g->weight_has_c = wc && g->classes > 1;
    }
    if (req->instances.data && !plain_shape(&req->instances, n, sp, ns)) {
        sl_format_shape(req->instances.shape, req->instances.ndim, ws, sizeof ws);
        snprintf(msg, msglen, "instances: shape %s does not fit target %s", ws, ts);
        return SL_ESHAPE;
    }
    g->images = n;
    g->nspatial = ns;
    g->pixels = 1;
    for (int i = 0; i < ns; i++) {
        g->spatial[i] = sp[i];
        g->pixels *= sp[i];
    }
    return 0;
}

/* Infers the mode from the shapes (README "Shapes and layouts"): binary without a channel axis
 * (channel_axis) or with C = 1; else multilabel when the target has the prediction's shape,
 * multiclass otherwise. */
static enum sl_mode infer_mode(const struct sl_request *req)
{
    const struct sl_tensor *p = &req->prediction, *t = &req->target;
    if (p->ndim < 4 || p->shape[1] == 1 || (req->nspacing && p->ndim - 1 == req->nspacing)) {
        return SL_MODE_BINARY;
    }
    if (t->ndim == p->ndim && t->shape[1] == p->shape[1]) {
        return SL_MODE_MULTILABEL;
    }
    return SL_MODE_MULTICLASS;
}

/* Multiclass cross entropy: an explicit include_background false cannot apply, since softmax
 * CE has no class to leave out (the request's or a combo's flag is not this: MONAI DiceCELoss
 * keeps every class in its CE term). */
int sl__check_ce(const struct sl_spec *s, const struct sl__geom *g, const char *where, char *msg,
                 size_t msglen)
{
    const struct sl_value *v = &s->values[SL_P_CE_INCLUDE_BG];
    if (g->mode == SL_MODE_MULTICLASS && v->kind == SL_V_BOOL && !v->b) {
        snprintf(msg, msglen,
                 "%s.include_background: false does not apply to multiclass cross_entropy, "
                 "whose softmax keeps every class (as MONAI DiceCELoss's CE term); leave it "
                 "out, or use focal with gamma 0 and alpha null, whose softmax leaves class 0 "
                 "out",
                 where);
        return SL_EINVAL;
    }
    return 0;
}

/* The U-Net map is defined on a binary target: [background, foreground] weights, and a
 * connectivity of the images' dimension. */
int sl__check_dwce(const struct sl_spec *s, const struct sl__geom *g, const char *where, char *msg,
                   size_t msglen)
{
    const struct sl_value *cw = &s->values[SL_P_DW_CLASS_WEIGHTS];
    int conn = (int)s->values[SL_P_DW_CONNECTIVITY].num;
    if (cw->kind == SL_V_LIST && cw->nlist != 2) {
        snprintf(msg, msglen, "%s.class_weights: has %d values; it takes [background, foreground]",
                 where, cw->nlist);
        return SL_EINVAL;
    }
    if (conn != 0 && !(g->nspatial == 2 ? (conn == 4 || conn == 8) : (conn == 6 || conn == 26))) {
        snprintf(msg, msglen, "%s.connectivity: %d is not one of %s%s", where, conn,
                 g->nspatial == 2 ? "4, 8 (2-D)" : "6, 26 (3-D)",
                 g->nspatial == 2 && (conn == 6 || conn == 26)
                     ? "; these images are 2-D: a one-slice volume is [N, 1, 1, H, W], or "
                       "[N, 1, H, W] with 3 spacings"
                     : "");
        return SL_ERANGE;
    }
    return 0;
}

/* "binary and multilabel" for a set of mode bits. */
static void modes_text(unsigned modes, char *buf, size_t len)
{
    size_t used = 0;
    int n = 0;
    buf[0] = '\0';
    for (int m = SL_MODE_BINARY; m <= SL_MODE_MULTILABEL && used < len; m++) {
        if (modes & SL_MODE_BIT(m)) {
            used += (size_t)snprintf(buf + used, len - used, "%s%s", n++ ? " and " : "",
                                     sl_mode_name((enum sl_mode)m));
        }
    }
}

/* Checks that a loss or metric makes sense in mode (its row's modes and rules) and that its
 * per-class lists have C entries; recurses into combo terms. */
static int check_spec(const struct sl_spec *s, const struct sl__geom *g, char *msg, size_t msglen)
{
    const char *where = s->path[0] ? s->path : s->key;
    const enum sl_mode mode = g->mode;
    const struct sl_def *def = s->def;
    if (!(def->modes & SL_MODE_BIT(mode))) {
        char modes[64];
        modes_text(def->modes, modes, sizeof modes);
        snprintf(msg, msglen, "%s: %s is for %s mode (this request is %s%s%s)", where, def->name,
                 modes, sl_mode_name(mode), def->mode_hint ? "; " : "",
                 def->mode_hint ? def->mode_hint : "");
        return SL_EINVAL;
    }
    if (def->kernel && def->kernel->check) {
        int rc = def->kernel->check(s, g, where, msg, msglen);
        if (rc) {
            return rc;
        }
    }
    if (def->modes == SL_MODE_BIT(SL_MODE_BINARY)) {
        return 0; /* a binary-only loss has no per-class lists: its lists are its rule's */
    }
    for (int i = 0; i < s->def->nparams; i++) {
        const struct sl_value *v = &s->values[i];
        if (v->kind != SL_V_LIST) {
            continue;
        }
        if (mode == SL_MODE_BINARY) {
            snprintf(msg, msglen,
                     "%s.%s: a list of per-class values is for multiclass and "
                     "multilabel mode",
                     where, s->def->params[i].name);
            return SL_EINVAL;
        }
        if (v->nlist != g->classes) {
            snprintf(msg, msglen, "%s.%s: has %d values but the prediction has C = %lld classes",
                     where, s->def->params[i].name, v->nlist, (long long)g->classes);
            return SL_ESHAPE;
        }
    }
    for (int i = 0; i < s->nterms; i++) {
        int rc = check_spec(&s->terms[i], g, msg, msglen);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

/* Index of the first of bytes u[i..n) above top, or n; whole blocks are tested at once. */
static int64_t first_above(const uint8_t *u, int64_t i, int64_t n, double top)
{
    const uint8_t lim = top >= 255 ? 255 : (uint8_t)top;
    for (; i + 1024 <= n; i += 1024) {
        uint8_t mx = 0;
        for (int k = 0; k < 1024; k++) {
            mx = u[i + k] > mx ? u[i + k] : mx;
        }
        if (mx > lim) {
            break;
        }
    }
    while (i < n && u[i] <= lim) {
        i++;
    }
    return i;
}

/* Index of the first of float32 weights w[i..n) that is negative, NaN or infinite, or n. */
static int64_t first_bad_weight(const float *w, int64_t i, int64_t n)
{
    for (; i + 1024 <= n; i += 1024) {
        int bad = 0;
        for (int k = 0; k < 1024; k++) {
            bad |= !(w[i + k] >= 0 && w[i + k] <= FLT_MAX);
        }
        if (bad) {
            break;
        }
    }
    while (i < n && w[i] >= 0 && w[i] <= FLT_MAX) {
        i++;
    }
    return i;
}

/* Checks values: prediction finite (and in [0, 1] for probabilities, 0/1 for labels); targets
 * 0/1 (binary, multilabel) or 0..C-1 (multiclass) or ignore_index; weight finite and >= 0.
 * Names the first bad index. deferred: leave out the prediction's finiteness (and range) and the
 * targets, which the fused kernel checks as it reads them (sl__run_validates). */
static int check_values(const struct sl_request *req, const struct sl__geom *g, bool deferred,
                        char *msg, size_t msglen)
{
    char idx[128];
    const struct sl_tensor *p = &req->prediction;
    int64_t bad = deferred ? -1 : sl_tensor_find_nonfinite(p);
    if (bad >= 0) {
        sl__format_index(p->shape, p->ndim, bad, idx, sizeof idx);
        snprintf(msg, msglen, "prediction%s (flat index %lld) is %g: NaN and inf are not accepted",
                 idx, (long long)bad, sl_tensor_get(p, bad));
        return SL_ERANGE;
    }
    int64_t n = sl_tensor_numel(p);
    /* (deferred: the multiclass kernel checks the range of probabilities too) */
    if (req->pred_type == SL_PRED_PROBABILITIES && p->dtype != SL_DT_U8 && !deferred) {
        for (int64_t i = 0; i < n; i++) {
            double v = sl_tensor_get(p, i);
            if (!(v >= 0 && v <= 1)) {
                sl__format_index(p->shape, p->ndim, i, idx, sizeof idx);
                snprintf(msg, msglen,
                         "prediction%s (flat index %lld) is %g: probabilities must be in [0, 1]",
                         idx, (long long)i, v);
                return SL_ERANGE;
            }
        }
    } else if (req->pred_type == SL_PRED_LABELS) {
        for (int64_t i = 0; i < n; i++) {
            double v = sl_tensor_get(p, i);
            if (v != 0 && v != 1) {
                sl__format_index(p->shape, p->ndim, i, idx, sizeof idx);
                snprintf(msg, msglen, "prediction%s (flat index %lld) is %g: %s", idx, (long long)i,
                         v,
                         g->mode == SL_MODE_MULTICLASS
                             ? "multiclass labels are one-hot [N, C, *S] of 0 and 1"
                             : "labels must be 0 or 1");
                return SL_ERANGE;
            }
        }
    }
    const struct sl_tensor *t = &req->target;
    const double top = g->mode == SL_MODE_MULTICLASS ? (double)(g->classes - 1) : 1.0;
    /* binary and multilabel float targets may be soft: any value in [0, 1] (MONAI, smp) */
    const bool soft_ok = g->mode != SL_MODE_MULTICLASS && sl__dtype_is_float(t->dtype);
    n = deferred ? 0 : sl_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == SL_DT_U8 || t->dtype == SL_DT_BOOL) {
            /* fast path for the common mask dtype: skip to the first value above the top */
            i = first_above(t->data, i, n, top);
            if (i == n) {
                break;
            }
        }
        double v = sl_tensor_get(t, i);
        if ((v >= 0 && v <= top && (v == floor(v) || soft_ok)) ||
            (req->has_ignore && v == (double)req->ignore_index)) {
            continue;
        }
        sl__format_index(t->shape, t->ndim, i, idx, sizeof idx);
        if (g->mode == SL_MODE_MULTICLASS) {
            snprintf(msg, msglen,
                     "target%s (flat index %lld) is %g: multiclass targets are class indices "
                     "0..%lld%s",
                     idx, (long long)i, v, (long long)(g->classes - 1),
                     req->has_ignore ? " or ignore_index" : "");
        } else if (soft_ok) {
            snprintf(msg, msglen,
                     "target%s (flat index %lld) is %g: %s %s targets must be in [0, 1] (soft "
                     "targets)%s",
                     idx, (long long)i, v, sl_mode_name(g->mode), sl_dtype_name(t->dtype),
                     req->has_ignore ? " or ignore_index" : "");
        } else {
            snprintf(msg, msglen, "target%s (flat index %lld) is %g: %s targets must be 0 or 1%s",
                     idx, (long long)i, v, sl_mode_name(g->mode),
                     req->has_ignore ? " or ignore_index" : "");
        }
        return SL_ERANGE;
    }
    if (req->instances.data) {
        int rc = sl__check_instances(&req->instances, msg, msglen);
        if (rc) {
            return rc;
        }
    }
    const struct sl_tensor *w = &req->weight;
    if (w->data) {
        n = sl_tensor_numel(w);
        for (int64_t i = 0; i < n; i++) {
            if (w->dtype == SL_DT_F32) {
                i = first_bad_weight(w->data, i, n);
                if (i == n) {
                    break;
                }
            }
            double v = sl_tensor_get(w, i);
            if (!(v >= 0) || !isfinite(v)) {
                sl__format_index(w->shape, w->ndim, i, idx, sizeof idx);
                snprintf(msg, msglen,
                         "weight%s (flat index %lld) is %g: weights must be finite and >= 0", idx,
                         (long long)i, v);
                return SL_ERANGE;
            }
        }
    }
    return 0;
}

/* Index of the first soft value (strictly between 0 and 1, not ignored) of a binary or
 * multilabel float target that validation accepted, or -1. */
static int64_t first_soft(const struct sl_request *req, const struct sl__geom *g)
{
    const struct sl_tensor *t = &req->target;
    if (g->mode == SL_MODE_MULTICLASS || !sl__dtype_is_float(t->dtype)) {
        return -1;
    }
    const int64_t n = sl_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = sl_tensor_get(t, i);
        if (v > 0 && v < 1 && !(req->has_ignore && v == (double)req->ignore_index)) {
            return i;
        }
    }
    return -1;
}

/* Refuses loss s (or a term of it) when it needs targets of exactly 0 or 1 and the target has
 * the soft value at flat index k. Returns 0 or SL_ERANGE with a message naming the loss and the
 * index. */
static int check_hard_target(const struct sl_request *req, const struct sl_spec *s, int64_t k,
                             char *msg, size_t msglen)
{
    const struct sl__kernel *kn = s->def->kernel;
    const char *why = kn && kn->hard_target ? kn->hard_target(s) : NULL;
    const int sq = sl_param_index(s->def, "squared");
    if (!why && sq >= 0 && s->values[sq].kind == SL_V_BOOL && s->values[sq].b) {
        /* the V-Net denominator's sum y^2 is taken as sum y (MONAI squared_pred: sum y^2) */
        why = "squared: true takes sum(y) for sum(y^2), which only 0/1 targets make equal "
              "(leave squared out, or harden the target)";
    }
    if (why) {
        const struct sl_tensor *t = &req->target;
        char idx[128];
        sl__format_index(t->shape, t->ndim, k, idx, sizeof idx);
        snprintf(msg, msglen,
                 "target%s (flat index %lld) is %g, a soft target, but %s (%s) needs targets of "
                 "exactly 0 or 1: %s",
                 idx, (long long)k, sl_tensor_get(t, k), s->path[0] ? s->path : s->key,
                 s->def->name, why);
        return SL_ERANGE;
    }
    for (int i = 0; i < s->nterms; i++) {
        int rc = check_hard_target(req, &s->terms[i], k, msg, msglen);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

const char *sl__hard_focal(const struct sl_spec *s)
{
    (void)s;
    return "its modulating factor is defined on the true class's p_t (Lin et al. 2017), and the "
           "peers disagree on soft targets (smp focal_loss_with_logits takes p_t = exp(-BCE), "
           "MONAI FocalLoss the sign of 2y - 1)";
}

const char *sl__hard_lovasz(const struct sl_spec *s)
{
    (void)s;
    return "its hinge errors 1 - x (2y - 1) and its Jaccard gradient count the positives of a "
           "hard mask (Berman et al. 2018)";
}

const char *sl__hard_dwce(const struct sl_spec *s)
{
    (void)s;
    return "its U-Net weight map is built from the instances of a hard mask";
}

/* Allocates the result's arrays for geometry g. Returns 0 or SL_ENOMEM. */
static int alloc_result(const struct sl_request *req, const struct sl__geom *g,
                        struct sl_result *res)
{
    const size_t N = (size_t)g->images, C = (size_t)g->classes;
    res->mode = g->mode;
    res->images = g->images;
    res->classes = g->classes;
    res->nspatial = g->nspatial;
    memcpy(res->spatial, g->spatial, sizeof g->spatial);
    res->losses = calloc((size_t)req->nlosses + 1, sizeof *res->losses);
    res->metrics = calloc((size_t)req->nmetrics + 1, sizeof *res->metrics);
    if (!res->losses || !res->metrics) {
        return SL_ENOMEM;
    }
    for (int i = 0; i < req->nlosses; i++, res->nlosses++) {
        res->losses[i].spec = &req->losses[i];
        res->losses[i].per_image = calloc(N, sizeof(double));
        if (!res->losses[i].per_image) {
            return SL_ENOMEM;
        }
    }
    for (int i = 0; i < req->nmetrics; i++) {
        struct sl_metric_result *m = &res->metrics[i];
        res->nmetrics++;
        m->spec = &req->metrics[i];
        m->per_image = calloc(N * C, sizeof(double));
        m->per_class = calloc(C, sizeof(double));
        m->global = calloc(C, sizeof(double));
        if (!m->per_image || !m->per_class || !m->global) {
            return SL_ENOMEM;
        }
        if (req->metrics[i].def->flags & SL_DEF_COUNTS) {
            m->counts = calloc(N * C, sizeof *m->counts);
            m->total = calloc(C, sizeof *m->total);
            if (!m->counts || !m->total) {
                return SL_ENOMEM;
            }
            if (g->mode == SL_MODE_MULTICLASS) {
                m->matrix = calloc(C * C, sizeof *m->matrix);
                if (!m->matrix) {
                    return SL_ENOMEM;
                }
            }
        }
    }
    return 0;
}

int sl_score(const struct sl_request *req, struct sl_pool *pool, struct sl_result **out, char *msg,
             size_t msglen)
{
    int rc;
    struct sl_result *res = NULL;
    struct sl__geom g;
    *out = NULL;
    if (msglen) {
        msg[0] = '\0';
    }
    if (!req->prediction.data || !req->target.data) {
        snprintf(msg, msglen, "%s: required", req->prediction.data ? "target" : "prediction");
        return SL_EINVAL;
    }
    if (req->prediction.ndim < 1 || req->target.ndim < 1) {
        snprintf(msg, msglen, "prediction and target need a batch axis [N, ...]");
        return SL_ESHAPE;
    }
    enum sl_mode mode = req->mode == SL_MODE_AUTO ? infer_mode(req) : req->mode;
    rc = geometry(req, mode, &g, msg, msglen);
    if (rc) {
        return rc;
    }
    if (req->nspacing && req->nspacing != g.nspatial) {
        snprintf(msg, msglen, "spacing: has %d values but the images have %d spatial dimensions",
                 req->nspacing, g.nspatial);
        return SL_ESHAPE;
    }
    for (int i = 0; i < req->nlosses; i++) {
        rc = check_spec(&req->losses[i], &g, msg, msglen);
        if (rc) {
            return rc;
        }
    }
    /* metrics too: their per-class lists (the surface metrics' tolerance) */
    for (int i = 0; i < req->nmetrics; i++) {
        rc = check_spec(&req->metrics[i], &g, msg, msglen);
        if (rc) {
            return rc;
        }
    }
    /* a failed partial check answers with the first error in the full check's order */
    const bool deferred = sl__run_validates(req, &g);
    rc = check_values(req, &g, deferred, msg, msglen);
    if (rc && deferred) {
        rc = check_values(req, &g, false, msg, msglen);
    }
    if (rc) {
        return rc;
    }
    const int64_t soft = first_soft(req, &g);
    g.soft_target = soft >= 0;
    for (int i = 0; i < req->nlosses && soft >= 0; i++) {
        rc = check_hard_target(req, &req->losses[i], soft, msg, msglen);
        if (rc) {
            return rc;
        }
    }
    res = calloc(1, sizeof *res);
    if (!res || alloc_result(req, &g, res) != 0) {
        sl_result_free(res);
        snprintf(msg, msglen, "out of memory for %lld images", (long long)g.images);
        return SL_ENOMEM;
    }
    rc = sl__run(req, &g, pool, res, msg, msglen);
    if (rc == SL_EAGAIN_CHECK) {
        /* the kernel met a value that the deferred checks refuse: name it */
        rc = check_values(req, &g, false, msg, msglen);
        if (rc == 0) {
            snprintf(msg, msglen, "the fused pass and validation disagree");
            rc = SL_EINTERNAL;
        }
    }
    if (rc) {
        sl_result_free(res);
        return rc;
    }
    *out = res;
    return 0;
}
