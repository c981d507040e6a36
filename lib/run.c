/* run.c - plans what the passes compute, runs them over the pool (one task per image), and
 * hands the plane sums to reduce.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int sl__focal_slot(const struct sl__plan *pl, double gamma)
{
    for (int i = 0; i < pl->nfocal; i++) {
        if (pl->focal_gamma[i] == gamma) {
            return i;
        }
    }
    return -1;
}

int sl__dwce_slot(const struct sl__plan *pl, const struct sl_spec *s)
{
    for (int i = 0; i < pl->ndwce; i++) {
        if (pl->dwce[i] == s) {
            return i;
        }
    }
    return -1;
}

static int plan_loss(struct sl__plan *pl, const struct sl_spec *s)
{
    switch ((enum sl_loss_kind)s->def->kind) {
    case SL_LOSS_CROSS_ENTROPY:
    case SL_LOSS_WEIGHTED_CE:
    case SL_LOSS_BALANCED_CE:
        pl->need_ce = true;
        pl->need_soft = true; /* sy and count: balanced beta, class-weighted means */
        return 0;
    case SL_LOSS_FOCAL: {
        double g = s->values[SL_P_FOCAL_GAMMA].num;
        if (sl__focal_slot(pl, g) < 0) {
            if (pl->nfocal == SL_MAX_FOCAL) {
                return SL_ETOOLARGE;
            }
            pl->focal_gamma[pl->nfocal++] = g;
        }
        return 0;
    }
    case SL_LOSS_DICE:
    case SL_LOSS_JACCARD:
    case SL_LOSS_TVERSKY:
        pl->need_soft = true;
        return 0;
    case SL_LOSS_LOVASZ_HINGE:
        if (s->values[SL_P_LH_PER_IMAGE].b) {
            pl->need_hinge_img = true;
        } else {
            pl->need_hinge_batch = true;
        }
        return 0;
    case SL_LOSS_LOVASZ_SOFTMAX:
        if (s->values[SL_P_LSM_PER_IMAGE].b) {
            pl->need_lsm_img = true;
        } else {
            pl->need_lsm_batch = true;
        }
        return 0;
    case SL_LOSS_DWCE:
        if (pl->ndwce == SL_MAX_DWCE) {
            return SL_ETOOLARGE;
        }
        pl->dwce[pl->ndwce++] = s;
        pl->need_soft = true; /* the counted pixels */
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

/* Distance-weighted CE of image i (binary): the U-Net map of its target, then sum map * CE. */
static int dwce_image(struct sl__plan *pl, int64_t i)
{
    const struct sl_request *req = pl->req;
    const struct sl__geom *g = pl->g;
    const int64_t S = g->pixels;
    int rc = SL_ENOMEM;
    uint8_t *mask = malloc((size_t)S), *pred = malloc((size_t)S);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)S);
    float *map = malloc(sizeof(float) * (size_t)S);
    if (!mask || !pred || !labels || !map) {
        goto out;
    }
    sl__plane_masks(pl, i, 0, NULL, pred, mask);
    for (int k = 0; k < pl->ndwce; k++) {
        const struct sl_spec *s = pl->dwce[k];
        struct sl_weight_map_params p;
        sl_weight_map_params_init(&p);
        p.w0 = s->values[SL_P_DW_W0].num;
        p.sigma = s->values[SL_P_DW_SIGMA].num;
        if (s->values[SL_P_DW_CLASS_WEIGHTS].kind == SL_V_LIST) {
            p.class_weights[0] = s->values[SL_P_DW_CLASS_WEIGHTS].list[0];
            p.class_weights[1] = s->values[SL_P_DW_CLASS_WEIGHTS].list[1];
        }
        p.neighbors = (int)s->values[SL_P_DW_NEIGHBORS].num;
        p.connectivity = (int)s->values[SL_P_DW_CONNECTIVITY].num;
        if (p.connectivity == 0) {
            p.connectivity = g->nspatial == 2 ? 8 : 26;
        }
        p.nspacing = req->nspacing;
        memcpy(p.spacing, req->spacing, sizeof p.spacing);
        int64_t n = req->instances.data
                        ? sl__relabel(&req->instances, i * S, S, labels)
                        : sl__label(mask, g->nspatial, g->spatial, p.connectivity, labels);
        if (n < 0) {
            rc = (int)n;
            goto out;
        }
        if ((rc = sl__weight_map_image(mask, labels, n, g->nspatial, g->spatial, &p, map)) != 0) {
            goto out;
        }
        pl->accs[i].dwce[k] = sl__mapped_ce_sum(pl, i, 0, map);
    }
    rc = 0;
out:
    free(mask);
    free(pred);
    free(labels);
    free(map);
    return rc;
}

/* Surface-distance metrics of every plane of image i. */
static int surface_image(struct sl__plan *pl, int64_t i)
{
    const struct sl__geom *g = pl->g;
    const int64_t C = g->classes, S = g->pixels;
    const bool mc = g->mode == SL_MODE_MULTICLASS;
    int rc = SL_ENOMEM;
    uint8_t *pred = malloc((size_t)S), *tgt = malloc((size_t)S);
    int *arg = mc ? malloc(sizeof(int) * (size_t)S) : NULL;
    if (!pred || !tgt || (mc && !arg)) {
        goto out;
    }
    if (mc) {
        sl__argmax_image(pl, i, arg);
    }
    for (int64_t c = 0; c < C; c++) {
        sl__plane_masks(pl, i, c, arg, pred, tgt);
        rc = sl__surface_metrics(pred, tgt, g->nspatial, g->spatial,
                                 pl->req->nspacing ? pl->req->spacing : NULL, pl->surf, pl->nsurf,
                                 pl->surf_values + (i * C + c) * pl->nsurf);
        if (rc) {
            goto out;
        }
    }
    rc = 0;
out:
    free(pred);
    free(tgt);
    free(arg);
    return rc;
}

/* One image: every plane's fused pass, then the per-image Lovász sorts and distance work. */
static void image_task(void *arg, int64_t i)
{
    struct sl__plan *pl = arg;
    const int64_t C = pl->g->classes, S = pl->g->pixels;
    if (pl->nsurf && surface_image(pl, i) != 0) {
        pl->oom[i] = 1;
        return;
    }
    if (pl->g->mode == SL_MODE_MULTICLASS) {
        pl->oom[i] = sl__pass_softmax(pl, i) != 0;
        return;
    }
    for (int64_t c = 0; c < C; c++) {
        sl__pass_plane(pl, i, c);
    }
    if (pl->need_hinge_img) {
        struct sl__ey *v = malloc(sizeof *v * (size_t)(S > 0 ? S : 1));
        if (!v) {
            pl->oom[i] = 1;
            return;
        }
        for (int64_t c = 0; c < C; c++) {
            struct sl__acc *a = &pl->accs[i * C + c];
            a->lovasz = sl__lovasz_flat(v, sl__hinge_errors(pl, i, c, v));
        }
        free(v);
    }
    if (pl->ndwce && dwce_image(pl, i) != 0) {
        pl->oom[i] = 1;
    }
}

static bool wants_matrix(const struct sl_request *req)
{
    for (int i = 0; i < req->nmetrics; i++) {
        if (req->metrics[i].def->kind == SL_METRIC_CONFUSION) {
            return true;
        }
    }
    return false;
}

int sl__run(const struct sl_request *req, const struct sl__geom *g, struct sl_pool *pool,
            struct sl_result *res, char *msg, size_t msglen)
{
    struct sl__plan pl;
    int rc = 0;
    const int64_t N = g->images, C = g->classes, S = g->pixels;
    memset(&pl, 0, sizeof pl);
    pl.req = req;
    pl.g = g;
    pl.need_cm = req->nmetrics > 0;
    /* logit(threshold) in double; 0 -> -inf (all positive), 1 -> +inf */
    pl.thr_logit = log(req->threshold) - log1p(-req->threshold);
    for (int i = 0; i < req->nlosses; i++) {
        rc = plan_loss(&pl, &req->losses[i]);
        if (rc) {
            snprintf(msg, msglen,
                     "losses: more than %d distinct focal gammas or %d distance-weighted "
                     "cross entropies",
                     SL_MAX_FOCAL, SL_MAX_DWCE);
            return rc;
        }
    }
    for (int i = 0; i < req->nmetrics; i++) {
        int kind = req->metrics[i].def->kind;
        if (kind == SL_METRIC_HAUSDORFF || kind == SL_METRIC_ASSD || kind == SL_METRIC_NSD) {
            if (pl.nsurf == SL_MAX_SURFACE) {
                snprintf(msg, msglen, "metrics: more than %d surface-distance metrics",
                         SL_MAX_SURFACE);
                return SL_ETOOLARGE;
            }
            pl.surf[pl.nsurf++] = &req->metrics[i];
        }
    }
    bool mc = g->mode == SL_MODE_MULTICLASS;
    pl.need_matrix = mc && wants_matrix(req);
    pl.accs = calloc((size_t)(N * C > 0 ? N * C : 1), sizeof *pl.accs);
    pl.oom = calloc((size_t)(N > 0 ? N : 1), sizeof *pl.oom);
    if (pl.need_matrix) {
        pl.matrix = calloc((size_t)(N * C * C), sizeof *pl.matrix);
    }
    if (mc && (pl.need_lsm_img || pl.need_lsm_batch)) {
        pl.probs = malloc(sizeof *pl.probs * (size_t)(N * C * S));
    }
    if (pl.nsurf) {
        pl.surf_values = calloc((size_t)(N * C * pl.nsurf), sizeof *pl.surf_values);
    }
    if (!pl.accs || !pl.oom || (pl.need_matrix && !pl.matrix) || (pl.nsurf && !pl.surf_values) ||
        (mc && (pl.need_lsm_img || pl.need_lsm_batch) && !pl.probs)) {
        snprintf(msg, msglen, "out of memory for %lld images of %lld classes", (long long)N,
                 (long long)C);
        rc = SL_ENOMEM;
        goto out;
    }
    sl_pool_parallel_for(pool, N, image_task, &pl);
    for (int64_t i = 0; i < N; i++) {
        if (pl.oom[i]) {
            snprintf(msg, msglen, "out of memory while scoring image %lld", (long long)i);
            rc = SL_ENOMEM;
            goto out;
        }
    }
    rc = sl__reduce(&pl, res, msg, msglen);
out:
    free(pl.accs);
    free(pl.oom);
    free(pl.matrix);
    free(pl.probs);
    free(pl.surf_values);
    return rc;
}
