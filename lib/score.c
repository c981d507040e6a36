/* score.c - sl_score(): request validation, mode and shape inference, result lifetime. */
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
    }
    for (int i = 0; i < res->nmetrics; i++) {
        free(res->metrics[i].per_image);
        free(res->metrics[i].counts);
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

/* Binary geometry: prediction [N, *S] or [N, 1, *S]; target and weight [N, *S] or [N, 1, *S].
 * A 4-D [N, D, H, W] pair without a channel axis is 3-D binary only when mode is explicit. */
static int binary_geometry(const struct sl_request *req, struct sl__geom *g, char *msg,
                           size_t msglen)
{
    const struct sl_tensor *p = &req->prediction, *t = &req->target;
    char ps[96], ts[96];
    int64_t sp[SL_MAX_DIMS];
    int ns;
    sl_format_shape(p->shape, p->ndim, ps, sizeof ps);
    sl_format_shape(t->shape, t->ndim, ts, sizeof ts);
    /* strip a channel axis of size 1 when present */
    if (p->ndim >= 4 && p->shape[1] == 1) {
        ns = p->ndim - 2;
        memcpy(sp, p->shape + 2, sizeof(int64_t) * (size_t)ns);
    } else {
        ns = p->ndim - 1;
        memcpy(sp, p->shape + 1, sizeof(int64_t) * (size_t)ns);
    }
    if (ns < 2 || ns > 3) {
        snprintf(msg, msglen,
                 "prediction: shape %s has %d spatial dimensions; binary mode takes [N, H, W], "
                 "[N, 1, H, W], [N, D, H, W] or [N, 1, D, H, W]",
                 ps, ns);
        return SL_ESHAPE;
    }
    const struct sl_tensor *others[2] = {t, &req->weight};
    const char *names[2] = {"target", "weight"};
    for (int k = 0; k < 2; k++) {
        const struct sl_tensor *o = others[k];
        if (!o->data) {
            continue;
        }
        bool ok =
            (o->ndim == ns + 1 && o->shape[0] == p->shape[0] && same_dims(o->shape + 1, sp, ns)) ||
            (o->ndim == ns + 2 && o->shape[0] == p->shape[0] && o->shape[1] == 1 &&
             same_dims(o->shape + 2, sp, ns));
        if (!ok) {
            char os[96];
            sl_format_shape(o->shape, o->ndim, os, sizeof os);
            snprintf(msg, msglen,
                     "%s: shape %s does not match prediction %s (binary mode: expected [N, *S] "
                     "or [N, 1, *S] with N = %lld)",
                     names[k], os, ps, (long long)p->shape[0]);
            return SL_ESHAPE;
        }
    }
    g->images = p->shape[0];
    g->nspatial = ns;
    g->pixels = 1;
    for (int i = 0; i < ns; i++) {
        g->spatial[i] = sp[i];
        g->pixels *= sp[i];
    }
    return 0;
}

/* Infers the mode from the shapes (API.md "mode: inferred"). */
static enum sl_mode infer_mode(const struct sl_request *req)
{
    const struct sl_tensor *p = &req->prediction, *t = &req->target;
    if (p->ndim >= 2 && p->shape[1] == 1 && p->ndim >= 4) {
        return SL_MODE_BINARY;
    }
    if (p->ndim == t->ndim + 1 && p->ndim >= 4) {
        return SL_MODE_MULTICLASS;
    }
    if (p->ndim == t->ndim && p->ndim >= 4 && p->shape[1] >= 2) {
        return SL_MODE_MULTILABEL;
    }
    return SL_MODE_BINARY;
}

/* Checks values: prediction finite (and in [0, 1] for probabilities, 0/1 for labels), target
 * 0/1 or ignore_index, weight finite and >= 0. Names the first bad index. */
static int check_values(const struct sl_request *req, char *msg, size_t msglen)
{
    char idx[128];
    const struct sl_tensor *p = &req->prediction;
    int64_t bad = sl_tensor_find_nonfinite(p);
    if (bad >= 0) {
        sl__format_index(p->shape, p->ndim, bad, idx, sizeof idx);
        snprintf(msg, msglen, "prediction%s (flat index %lld) is %g: NaN and inf are not accepted",
                 idx, (long long)bad, sl_tensor_get(p, bad));
        return SL_ERANGE;
    }
    int64_t n = sl_tensor_numel(p);
    if (req->pred_type == SL_PRED_PROBABILITIES && p->dtype != SL_DT_U8) {
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
                snprintf(msg, msglen,
                         "prediction%s (flat index %lld) is %g: binary labels must be 0 or 1", idx,
                         (long long)i, v);
                return SL_ERANGE;
            }
        }
    }
    const struct sl_tensor *t = &req->target;
    n = sl_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == SL_DT_U8 || t->dtype == SL_DT_BOOL) {
            /* fast path for the common mask dtype: skip to the first value above 1 */
            const uint8_t *u = t->data;
            while (i < n && u[i] <= 1) {
                i++;
            }
            if (i == n) {
                break;
            }
        }
        double v = sl_tensor_get(t, i);
        if (v == 0 || v == 1 || (req->has_ignore && v == (double)req->ignore_index)) {
            continue;
        }
        sl__format_index(t->shape, t->ndim, i, idx, sizeof idx);
        snprintf(msg, msglen, "target%s (flat index %lld) is %g: binary targets must be 0 or 1%s",
                 idx, (long long)i, v, req->has_ignore ? " or ignore_index" : "");
        return SL_ERANGE;
    }
    const struct sl_tensor *w = &req->weight;
    if (w->data) {
        n = sl_tensor_numel(w);
        for (int64_t i = 0; i < n; i++) {
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
    if (mode != SL_MODE_BINARY) {
        char ps[96], ts[96];
        sl_format_shape(req->prediction.shape, req->prediction.ndim, ps, sizeof ps);
        sl_format_shape(req->target.shape, req->target.ndim, ts, sizeof ts);
        snprintf(msg, msglen,
                 "mode: %s (prediction %s, target %s) is not supported by this version; binary "
                 "mode takes prediction [N, *S] or [N, 1, *S] (give \"mode\": \"binary\" for a "
                 "3-D [N, D, H, W] pair)",
                 sl_mode_name(mode), ps, ts);
        return SL_EUNSUPPORTED;
    }
    rc = binary_geometry(req, &g, msg, msglen);
    if (rc) {
        return rc;
    }
    if (req->nspacing && req->nspacing != g.nspatial) {
        snprintf(msg, msglen, "spacing: has %d values but the images have %d spatial dimensions",
                 req->nspacing, g.nspatial);
        return SL_ESHAPE;
    }
    rc = check_values(req, msg, msglen);
    if (rc) {
        return rc;
    }
    res = calloc(1, sizeof *res);
    if (!res) {
        goto oom;
    }
    res->mode = mode;
    res->images = g.images;
    res->classes = 1;
    res->nspatial = g.nspatial;
    memcpy(res->spatial, g.spatial, sizeof g.spatial);
    res->nlosses = req->nlosses;
    res->nmetrics = req->nmetrics;
    res->losses = calloc((size_t)req->nlosses + 1, sizeof *res->losses);
    res->metrics = calloc((size_t)req->nmetrics + 1, sizeof *res->metrics);
    if (!res->losses || !res->metrics) {
        goto oom;
    }
    for (int i = 0; i < req->nlosses; i++) {
        res->losses[i].spec = &req->losses[i];
        res->losses[i].per_image = calloc((size_t)g.images, sizeof(double));
        if (!res->losses[i].per_image) {
            goto oom;
        }
    }
    for (int i = 0; i < req->nmetrics; i++) {
        res->metrics[i].spec = &req->metrics[i];
        res->metrics[i].per_image = calloc((size_t)g.images, sizeof(double));
        if (!res->metrics[i].per_image) {
            goto oom;
        }
        if (req->metrics[i].def->kind == SL_METRIC_CONFUSION) {
            res->metrics[i].counts = calloc((size_t)g.images, sizeof(struct sl_confusion));
            if (!res->metrics[i].counts) {
                goto oom;
            }
        }
    }
    rc = sl__score_binary(req, &g, pool, res, msg, msglen);
    if (rc) {
        sl_result_free(res);
        return rc;
    }
    *out = res;
    return 0;
oom:
    sl_result_free(res);
    snprintf(msg, msglen, "out of memory for %lld images", (long long)g.images);
    return SL_ENOMEM;
}
