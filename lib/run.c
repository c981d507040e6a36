/* run.c - plans what the passes compute, runs them over the pool, and hands the plane sums to
 * reduce.c. Binary planes are cut in chunks of SL_CHUNK pixels, each summed on its own and the
 * chunks added in order afterwards, so the sums do not depend on the pool or its timing; the
 * fused multiclass kernel cuts a large image in parts of SL_MC_PART pixels the same way; then
 * the work that needs a whole image (sorts, distances, the multiclass pass or the addition of
 * its parts) runs, one task per image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

int sl__focal_slot(const struct sl__plan *pl, double gamma, bool nobg)
{
    for (int i = 0; i < pl->nfocal; i++) {
        if (pl->focal_gamma[i] == gamma && pl->focal_nobg[i] == nobg) {
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

int sl__plan_loss(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    return s->def->kernel->plan(pl, s, sl__include_bg(s, bg));
}

/* The CE family: the two halves of the CE; sy and count for balanced beta and class-weighted
 * means. */
int sl__plan_ce(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    (void)s;
    (void)bg;
    pl->need_ce = true;
    pl->need_soft = true;
    return 0;
}

/* Cross entropy: the CE family's sums, and with label smoothing the logs of every pixel (a
 * smoothed target puts weight on both terms of each pixel). */
int sl__plan_cross_entropy(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    if (sl__ce_smoothing(s, pl->g->mode == SL_MODE_MULTICLASS) > 0) {
        pl->need_ce_all = true;
    }
    return sl__plan_ce(pl, s, bg);
}

/* One focal accumulator per distinct (gamma, softmax without class 0). */
int sl__plan_focal(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    double g = s->values[SL_P_FOCAL_GAMMA].num;
    bool nobg = pl->g->mode == SL_MODE_MULTICLASS && !bg;
    if (sl__focal_slot(pl, g, nobg) < 0) {
        if (pl->nfocal == SL_MAX_FOCAL) {
            return SL_ETOOLARGE;
        }
        pl->focal_nobg[pl->nfocal] = nobg;
        pl->focal_gamma[pl->nfocal++] = g;
    }
    return 0;
}

/* Region losses: the soft sums. */
int sl__plan_soft(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    (void)s;
    (void)bg;
    pl->need_soft = true;
    return 0;
}

int sl__plan_lovasz_hinge(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    pl->lovasz_bg = pl->lovasz_bg || bg;
    if (s->values[SL_P_LH_PER_IMAGE].b) {
        pl->need_hinge_img = true;
    } else {
        pl->need_hinge_batch = true;
    }
    return 0;
}

int sl__plan_lovasz_softmax(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    pl->lovasz_bg = pl->lovasz_bg || bg;
    if (s->values[SL_P_LSM_PER_IMAGE].b) {
        pl->need_lsm_img = true;
    } else {
        pl->need_lsm_batch = true;
        pl->lsm_all = pl->lsm_all || s->values[SL_P_LSM_CLASSES].choice == SL_LSM_ALL;
    }
    return 0;
}

/* Distance-weighted CE: one map per spec, and the counted pixels. */
int sl__plan_dwce(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    (void)bg;
    if (pl->ndwce == SL_MAX_DWCE) {
        return SL_ETOOLARGE;
    }
    pl->dwce[pl->ndwce++] = s;
    pl->need_soft = true;
    return 0;
}

/* A sum of terms: each term's plan, inheriting bg. */
int sl__plan_terms(struct sl__plan *pl, const struct sl_spec *s, bool bg)
{
    for (int i = 0; i < s->nterms; i++) {
        int rc = sl__plan_loss(pl, &s->terms[i], bg);
        if (rc) {
            return rc;
        }
    }
    return 0;
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
                                 pl->req->nspacing ? pl->req->spacing : NULL, c, pl->req->empty,
                                 pl->surf, pl->nsurf, pl->surf_values + (i * C + c) * pl->nsurf);
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

/* One image's work that needs the whole image: surface distances, the multiclass softmax pass,
 * the per-image Lovász hinge sorts and the distance-weighted cross entropy. */
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
    if (pl->need_hinge_img) {
        /* packed items for float32 logits, else errors with their doubles */
        const bool items = sl__hinge_items_ok(pl);
        void *v =
            malloc((items ? sizeof(uint64_t) : sizeof(struct sl__ey)) * (size_t)(S > 0 ? S : 1));
        if (!v) {
            pl->oom[i] = 1;
            return;
        }
        for (int64_t c = 0; c < C; c++) {
            struct sl__acc *a = &pl->accs[i * C + c];
            int64_t gts = 0;
            if (items) {
                const int64_t n = sl__hinge_items(pl, i, c, v, &gts);
                a->lovasz = sl__lovasz_items(NULL, v, n, gts, false);
            } else {
                const int64_t n = sl__hinge_errors(pl, i, c, v, &gts);
                a->lovasz = sl__lovasz_flat(v, n, gts);
            }
        }
        free(v);
    }
    if (pl->ndwce && dwce_image(pl, i) != 0) {
        pl->oom[i] = 1;
    }
}

/* Chunk t of the binary planes, summed into its own slot of pl->parts. */
static void chunk_task(void *arg, int64_t t)
{
    struct sl__plan *pl = arg;
    const int64_t plane = t / pl->nchunks, j = t % pl->nchunks, S = pl->g->pixels;
    const int64_t start = j * SL_CHUNK, len = S - start < SL_CHUNK ? S - start : SL_CHUNK;
    sl__pass_range(pl, plane / pl->g->classes, plane % pl->g->classes, start, len, &pl->parts[t]);
}

/* The batch Lovász of class c, when a loss will ask for it: counted, and present in the target
 * unless some Lovász-Softmax wants every class. */
static void lovasz_batch_task(void *arg, int64_t c)
{
    struct sl__plan *pl = arg;
    const int64_t N = pl->g->images, C = pl->g->classes;
    bool fg = pl->lsm_all || pl->g->mode != SL_MODE_MULTICLASS;
    for (int64_t i = 0; i < N && !fg; i++) {
        fg = pl->accs[i * C + c].sy > 0;
    }
    if ((C == 1 || pl->lovasz_bg || c > 0) && fg) {
        pl->lovasz_batch_rc[c] = sl__lovasz_batch_class(pl, c, &pl->lovasz_batch[c]);
    }
}

/* Asks for transparent huge pages on the whole pages of [p, p + n) (Linux; a hint): the first
 * touch of a large fresh plane then faults once per 2 MiB instead of once per 4 KiB. */
static void huge_pages(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t page = 4096, a = ((uintptr_t)p + page - 1) & ~(page - 1);
    const uintptr_t e = ((uintptr_t)p + n) & ~(page - 1);
    if (p && n >= ((size_t)4 << 20) && e > a) {
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
#else
    (void)p;
    (void)n;
#endif
}

/* The batch Lovász-Softmax of every class a loss will ask for (lovasz_batch_task's rule), the
 * classes side by side on the pool; when that fails, the reduction computes them one by one. */
static void lsm_batch(struct sl__plan *pl, struct sl_pool *pool)
{
    const int64_t N = pl->g->images, C = pl->g->classes;
    bool *want = malloc(sizeof *want * (size_t)C);
    pl->lovasz_batch = malloc(sizeof *pl->lovasz_batch * (size_t)C);
    pl->lovasz_batch_rc = malloc(sizeof *pl->lovasz_batch_rc * (size_t)C);
    if (want && pl->lovasz_batch && pl->lovasz_batch_rc) {
        for (int64_t c = 0; c < C; c++) {
            bool fg = pl->lsm_all;
            for (int64_t i = 0; i < N && !fg; i++) {
                fg = pl->accs[i * C + c].sy > 0;
            }
            want[c] = (pl->lovasz_bg || c > 0) && fg;
            pl->lovasz_batch_rc[c] = want[c] ? 0 : 1;
        }
        if (sl__lovasz_softmax_classes(pl, pool, 0, N, want, pl->lovasz_batch) == 0) {
            free(want);
            return;
        }
    }
    free(want);
    free(pl->lovasz_batch_rc);
    pl->lovasz_batch_rc = NULL;
}

/* Adds the sums of a chunk into its plane (not the Lovász and distance fields). */
static void add_part(struct sl__acc *a, const struct sl__acc *p, int nfocal)
{
    a->count += p->count;
    a->ce_pos += p->ce_pos;
    a->ce_neg += p->ce_neg;
    a->sp += p->sp;
    a->sy += p->sy;
    a->spy += p->spy;
    a->sp2 += p->sp2;
    a->lp_all += p->lp_all;
    a->l1p_all += p->l1p_all;
    for (int f = 0; f < nfocal; f++) {
        a->focal_pos[f] += p->focal_pos[f];
        a->focal_neg[f] += p->focal_neg[f];
    }
    a->cm.tp += p->cm.tp;
    a->cm.fp += p->cm.fp;
    a->cm.fn += p->cm.fn;
    a->cm.tn += p->cm.tn;
    a->invalid = a->invalid || p->invalid;
}

/* Whether loss s (or one of its terms) is a binary cross entropy whose smoothing a (y becomes
 * a + (1 - 2a) y) is above 1/2: smooth_factor above 0.5 (label_smoothing e is a = e / 2). */
static bool smooths_past_half(const struct sl_spec *s)
{
    if (s->def->kernel && s->def->kernel->plan == sl__plan_cross_entropy &&
        sl__ce_smoothing(s, false) > 0.5) {
        return true;
    }
    for (int i = 0; i < s->nterms; i++) {
        if (smooths_past_half(&s->terms[i])) {
            return true;
        }
    }
    return false;
}

/* Whether the binary planes can run the fused float32 kernel: float32 (or float16, bfloat16)
 * logits, weights absent or float32 (float16, bfloat16); targets of any dtype, but soft ones (which
 * the double pass reads as they are); label smoothing up to a = 1/2 (planes.c signed_logit_sum:
 * beyond, a pixel's smoothed CE can be far below its CE's float32 rounding, so the double pass sums
 * it). */
static bool f32_or_half(enum sl_dtype dt)
{
    return dt == SL_DT_F32 || dt == SL_DT_F16 || dt == SL_DT_BF16;
}

static bool fast_ok(const struct sl_request *req, const struct sl__geom *g)
{
    if (g->mode == SL_MODE_MULTICLASS || req->pred_type != SL_PRED_LOGITS ||
        !f32_or_half(req->prediction.dtype) ||
        (req->weight.data && !f32_or_half(req->weight.dtype)) || g->soft_target) {
        return false;
    }
    for (int i = 0; i < req->nlosses; i++) {
        if (smooths_past_half(&req->losses[i])) {
            return false;
        }
    }
    return true;
}

/* Whether the multiclass pass runs the fused kernel on uint8 targets with no surface metric
 * (which would read the data first): the losses planned as sl__run plans them. */
static bool mc_validates(const struct sl_request *req, const struct sl__geom *g)
{
    struct sl__plan pl;
    memset(&pl, 0, sizeof pl);
    pl.req = req;
    pl.g = g;
    if (g->mode != SL_MODE_MULTICLASS || req->target.dtype != SL_DT_U8) {
        return false;
    }
    for (int i = 0; i < req->nlosses; i++) {
        if (sl__plan_loss(&pl, &req->losses[i], req->include_background) != 0) {
            return false;
        }
    }
    for (int i = 0; i < req->nmetrics; i++) {
        if (req->metrics[i].def->flags & SL_DEF_DISTANCES) {
            return false;
        }
    }
    return sl__mc_fast_ok(req, g, &pl);
}

bool sl__run_validates(const struct sl_request *req, const struct sl__geom *g)
{
    return (fast_ok(req, g) &&
            (req->target.dtype == SL_DT_U8 || req->target.dtype == SL_DT_BOOL)) ||
           mc_validates(req, g);
}

static bool wants_matrix(const struct sl_request *req)
{
    for (int i = 0; i < req->nmetrics; i++) {
        if (req->metrics[i].def->flags & SL_DEF_COUNTS) {
            return true;
        }
    }
    return false;
}

/* pl->mc_parts for N x mc_nparts parts, their sums zeroed in one block (*store, which the
 * caller frees with pl->mc_parts). Returns 0 or SL_ENOMEM. */
static int mc_parts_alloc(struct sl__plan *pl, double **store)
{
    const int64_t N = pl->g->images, C = pl->g->classes, np = N * pl->mc_nparts;
    /* per part, in doubles: lanes, then counts (int32) and the matrix (int64) */
    const int64_t nl = C * (SL_MCQ_FOCAL + pl->nfocal) * 16, nc = (C * 3 * 16 + 1) / 2;
    const int64_t nm = pl->need_matrix ? C * C : 0, per = nl + nc + nm;
    pl->mc_parts = calloc((size_t)np, sizeof *pl->mc_parts);
    *store = calloc((size_t)(np * per), sizeof **store);
    if (!pl->mc_parts || !*store) {
        return SL_ENOMEM;
    }
    for (int64_t t = 0; t < np; t++) {
        double *at = *store + t * per;
        pl->mc_parts[t].lanes = at;
        pl->mc_parts[t].counts = (int32_t *)(void *)(at + nl);
        pl->mc_parts[t].matrix = nm ? (int64_t *)(void *)(at + nl + nc) : NULL;
    }
    return 0;
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
    pl.thr_f = (float)pl.thr_logit;
    if ((double)pl.thr_f < pl.thr_logit) {
        pl.thr_f = nextafterf(pl.thr_f, INFINITY);
    }
    for (int i = 0; i < req->nlosses; i++) {
        rc = sl__plan_loss(&pl, &req->losses[i], req->include_background);
        if (rc) {
            snprintf(msg, msglen,
                     "losses: more than %d distinct focal gammas or %d distance-weighted "
                     "cross entropies",
                     SL_MAX_FOCAL, SL_MAX_DWCE);
            return rc;
        }
    }
    for (int i = 0; i < req->nmetrics; i++) {
        if (req->metrics[i].def->flags & SL_DEF_DISTANCES) {
            if (pl.nsurf == SL_MAX_SURFACE) {
                snprintf(msg, msglen, "metrics: more than %d surface-distance metrics",
                         SL_MAX_SURFACE);
                return SL_ETOOLARGE;
            }
            pl.surf[pl.nsurf++] = &req->metrics[i];
        }
    }
    bool mc = g->mode == SL_MODE_MULTICLASS;
    pl.fast = fast_ok(req, g);
    pl.fast_what = (pl.need_soft ? SL_FZ_P : 0) | (pl.need_ce ? SL_FZ_LOG : 0);
    pl.need_matrix = mc && wants_matrix(req);
    pl.mc_fast = sl__mc_fast_ok(req, g, &pl);
    pl.nimg_tasks = mc || pl.need_hinge_img || pl.ndwce || pl.nsurf ? N : 0;
    pl.nchunks = mc ? 0 : (S + SL_CHUNK - 1) / SL_CHUNK;
    pl.mc_nparts = sl__mc_nparts(&pl);
    double *mc_store = NULL;
    if (pl.mc_nparts > 1) {
        rc = mc_parts_alloc(&pl, &mc_store);
        if (rc) {
            snprintf(msg, msglen, "out of memory for %lld images of %lld classes", (long long)N,
                     (long long)C);
            goto out;
        }
    }
    if (N * C * pl.nchunks > 0) {
        pl.parts = calloc((size_t)(N * C * pl.nchunks), sizeof *pl.parts);
    }
    pl.accs = calloc((size_t)(N * C > 0 ? N * C : 1), sizeof *pl.accs);
    pl.oom = calloc((size_t)(N > 0 ? N : 1), sizeof *pl.oom);
    if (pl.need_matrix) {
        pl.matrix = calloc((size_t)(N * C * C), sizeof *pl.matrix);
    }
    if (mc && (pl.need_lsm_img || pl.need_lsm_batch)) {
        pl.probs = malloc(sizeof *pl.probs * (size_t)(N * C * S));
        huge_pages(pl.probs, sizeof *pl.probs * (size_t)(N * C * S));
    }
    if (pl.nsurf) {
        pl.surf_values = calloc((size_t)(N * C * pl.nsurf), sizeof *pl.surf_values);
    }
    if (!pl.accs || !pl.oom || (N * C * pl.nchunks > 0 && !pl.parts) ||
        (pl.need_matrix && !pl.matrix) || (pl.nsurf && !pl.surf_values) ||
        (mc && (pl.need_lsm_img || pl.need_lsm_batch) && !pl.probs)) {
        snprintf(msg, msglen, "out of memory for %lld images of %lld classes", (long long)N,
                 (long long)C);
        rc = SL_ENOMEM;
        goto out;
    }
    /* a small request runs on the calling thread: waking a worker would cost more than it saves */
    if (N * C * S < SL_INLINE_PIXELS) {
        pool = NULL;
    }
    pl.pool = pool;
    /* the chunks first: when they validate the data, nothing else may read it before */
    sl_pool_parallel_for(pool, N * C * pl.nchunks, chunk_task, &pl);
    for (int64_t k = 0; k < N * C; k++) {
        for (int64_t j = 0; j < pl.nchunks; j++) {
            add_part(&pl.accs[k], &pl.parts[k * pl.nchunks + j], pl.nfocal);
        }
        if (pl.accs[k].invalid) {
            rc = SL_EAGAIN_CHECK;
            goto out;
        }
    }
    if (pl.mc_nparts > 1) {
        /* a large image's parts side by side (added in order by its image task) */
        sl_pool_parallel_for(pool, N * pl.mc_nparts, sl__mc_part_task, &pl);
    }
    sl_pool_parallel_for(pool, pl.nimg_tasks, image_task, &pl);
    if (mc && pl.need_lsm_batch) {
        lsm_batch(&pl, pool);
    } else if ((pl.need_hinge_batch || pl.need_lsm_batch) && C > 1 && pool) {
        /* one sort per class, each holding 16 bytes per pixel of the batch: side by side on
         * the pool while that stays under SL_LOVASZ_PARALLEL_BYTES, else one after another in
         * the reduction */
        const int64_t bytes = 16 * N * S * (int64_t)(sl_pool_threads(pool) + 1);
        pl.lovasz_batch = malloc(sizeof *pl.lovasz_batch * (size_t)C);
        pl.lovasz_batch_rc = malloc(sizeof *pl.lovasz_batch_rc * (size_t)C);
        if (bytes <= SL_LOVASZ_PARALLEL_BYTES && pl.lovasz_batch && pl.lovasz_batch_rc) {
            for (int64_t c = 0; c < C; c++) {
                pl.lovasz_batch_rc[c] = 1;
            }
            sl_pool_parallel_for(pool, C, lovasz_batch_task, &pl);
        } else {
            free(pl.lovasz_batch_rc);
            pl.lovasz_batch_rc = NULL;
        }
    }
    for (int64_t i = 0; i < N; i++) {
        if (pl.oom[i]) {
            snprintf(msg, msglen, "out of memory while scoring image %lld", (long long)i);
            rc = SL_ENOMEM;
            goto out;
        }
    }
    for (int64_t k = 0; pl.mc_fast && k < N * C; k++) {
        /* the multiclass kernel met a value that validation, deferred to it, would refuse */
        if (pl.accs[k].invalid) {
            rc = SL_EAGAIN_CHECK;
            goto out;
        }
    }
    rc = sl__reduce(&pl, res, msg, msglen);
out:
    free(pl.lovasz_batch);
    free(pl.lovasz_batch_rc);
    free(pl.parts);
    free(pl.accs);
    free(pl.oom);
    free(pl.matrix);
    free(pl.probs);
    free(pl.surf_values);
    free(pl.mc_parts);
    free(mc_store);
    return rc;
}
